/* One socket as sock_diag or /proc/net reports it, lists of them, and the query filter. */
#pragma once

#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol bits of port_filter.protos; port_sock.proto holds one of them. */
enum {
	PORT_PROTO_TCP = 1,
	PORT_PROTO_UDP = 2,
	PORT_PROTO_ALL = PORT_PROTO_TCP | PORT_PROTO_UDP,
	PORT_PROTO_UNIX = 4, /* asked for by name only: "port unix" */
};

/* Most targets on one command line, and most ports in one range ("8000-8100"). */
#define PORT_TARGETS_MAX 64
#define PORT_RANGE_MAX 4096
/* Longest unix socket name kept (the kernel's sun_path is 108 bytes). */
#define PORT_UNIX_NAME_MAX 128

/*
 * Cap on one list: far above what a host can hold in open files, low enough that a runaway
 * dump cannot take the machine's memory.
 */
#define PORT_SOCK_MAX (1u << 22)

struct port_sock {
	struct net_addr local; /* as bound, with the port; v4-mapped is kept */
	struct net_addr remote;
	uint64_t netns;      /* inode of the network namespace it lives in */
	uint32_t inode;      /* 0: no file behind it (TIME-WAIT, request, orphan) */
	uint32_t uid;        /* of the socket, which is who created it */
	uint32_t peer_inode; /* unix: the inode of the other end; 0 when none */
	char *name;    /* unix: the bound path, "@..." when abstract; NULL: unbound. The list's */
	uint8_t proto; /* PORT_PROTO_TCP, PORT_PROTO_UDP or PORT_PROTO_UNIX */
	uint8_t type;  /* unix: SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET */
	uint8_t state; /* TCP_ESTABLISHED..TCP_CLOSING numbering, as the kernel uses for both */
	bool v6only;   /* an IPv6 wildcard that does not take IPv4 */
};

struct port_sock_list {
	struct port_sock *v;
	size_t n;
	size_t cap;
};

/* One word of the command line: a local port range, maybe an address; or a unix path. */
struct port_target {
	uint16_t lo, hi;      /* local ports, inclusive */
	struct net_addr addr; /* local address; family 0 for any */
	const char *path;     /* unix: the bound name; NULL for inet targets */
};

struct port_filter {
	unsigned protos; /* PORT_PROTO_* bits */
	bool all_states; /* false: TCP LISTEN, unconnected (bound) UDP, listening unix only */
	size_t ntargets; /* 0: every port */
	struct port_target targets[PORT_TARGETS_MAX];
	const uint32_t *inodes; /* non-NULL: only these sockets (sorted), whatever their state */
	size_t ninodes;
};

/* Takes s->name (it is freed with the list, or here on failure). */
int port_sock_list_add(struct port_sock_list *l, const struct port_sock *s);
void port_sock_list_free(struct port_sock_list *l);
/* Output order: protocol, family, address, port, namespace. */
void port_sock_list_sort(struct port_sock_list *l);

/* "LISTEN", "ESTAB", "UNCONN"... as ss(8) spells them; "UNKNOWN" past the table. */
const char *port_sock_state_name(uint8_t state);
/* "tcp", "udp" or "unix" */
const char *port_sock_proto_name(uint8_t proto);
/* A unix socket's type: "stream", "dgram", "seqpacket"; "unknown" otherwise. */
const char *port_sock_type_name(uint8_t type);

/* Bit mask of kernel socket states (1 << TCP_*) that f asks for in protocol proto. */
uint32_t port_filter_states(const struct port_filter *f, uint8_t proto);
/*
 * Whether s answers f. An address in f matches sockets bound to it (v4-mapped or not) and
 * the wildcard sockets that would receive its traffic: 0.0.0.0 for IPv4, :: for IPv6 and,
 * unless IPV6_V6ONLY, for IPv4 too.
 */
bool port_filter_match(const struct port_filter *f, const struct port_sock *s);
