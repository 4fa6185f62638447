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
};

/*
 * Cap on one list: far above what a host can hold in open files, low enough that a runaway
 * dump cannot take the machine's memory.
 */
#define PORT_SOCK_MAX (1u << 22)

struct port_sock {
	struct net_addr local; /* as bound, with the port; v4-mapped is kept */
	struct net_addr remote;
	uint64_t netns; /* inode of the network namespace it lives in */
	uint32_t inode; /* 0: no file behind it (TIME-WAIT, request, orphan) */
	uint32_t uid;   /* of the socket, which is who created it */
	uint8_t proto;  /* PORT_PROTO_TCP or PORT_PROTO_UDP */
	uint8_t state;  /* TCP_ESTABLISHED..TCP_CLOSING numbering, as the kernel uses for both */
	bool v6only;    /* an IPv6 wildcard that does not take IPv4 */
};

struct port_sock_list {
	struct port_sock *v;
	size_t n;
	size_t cap;
};

struct port_filter {
	unsigned protos;      /* PORT_PROTO_* bits */
	bool all_states;      /* false: TCP LISTEN and unconnected (bound) UDP only */
	uint16_t port;        /* local port; 0 for any */
	struct net_addr addr; /* local address; family 0 for any */
};

int port_sock_list_add(struct port_sock_list *l, const struct port_sock *s);
void port_sock_list_free(struct port_sock_list *l);
/* Output order: protocol, family, address, port, namespace. */
void port_sock_list_sort(struct port_sock_list *l);

/* "LISTEN", "ESTAB", "UNCONN"... as ss(8) spells them; "UNKNOWN" past the table. */
const char *port_sock_state_name(uint8_t state);
/* "tcp" or "udp" */
const char *port_sock_proto_name(uint8_t proto);

/* Bit mask of kernel socket states (1 << TCP_*) that f asks for in protocol proto. */
uint32_t port_filter_states(const struct port_filter *f, uint8_t proto);
/*
 * Whether s answers f. An address in f matches sockets bound to it (v4-mapped or not) and
 * the wildcard sockets that would receive its traffic: 0.0.0.0 for IPv4, :: for IPv6 and,
 * unless IPV6_V6ONLY, for IPv4 too.
 */
bool port_filter_match(const struct port_filter *f, const struct port_sock *s);
