/* IPv4/IPv6 addresses with optional ports, CIDR prefixes, v4-mapped normalisation. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct net_addr {
	int family; /* AF_INET or AF_INET6; 0 for none */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t bytes[16]; /* network order; first 4 for IPv4 */
	} u;
	uint16_t port; /* host order; 0 when absent */
};

struct net_cidr {
	struct net_addr addr; /* host bits cleared, port 0 */
	unsigned prefix;      /* 0..32 or 0..128 */
};

/* net_addr_parse modes */
enum {
	NET_PORT_NONE = 0,     /* "1.2.3.4", "::1" only */
	NET_PORT_OPTIONAL = 1, /* with or without ":80" / "[::1]:80" */
	NET_PORT_REQUIRED = 2, /* must carry a port */
	NET_PORT_ZERO_OK = 4,  /* or-ed in: port 0 (pick one) is accepted */
};

/* "[ffff:...:ffff]:65535" plus NUL */
#define NET_ADDR_STRLEN 56
/* address, "/", up to 3 digits, NUL */
#define NET_CIDR_STRLEN 52

/*
 * Parses "1.2.3.4", "1.2.3.4:80", "::1", "[::1]", "[::1]:80" per mode. Strict: no leading
 * zeros in IPv4 octets, no trailing garbage, port 1..65535 (0 with NET_PORT_ZERO_OK).
 * A bare IPv6 address is never read as address:port. -EINVAL on any error.
 */
int net_addr_parse(const char *s, unsigned mode, struct net_addr *out);
/* "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80"; the port only when with_port and port != 0. */
int net_addr_format(const struct net_addr *a, bool with_port, char *buf, size_t len);
/* ::ffff:a.b.c.d becomes a.b.c.d (port kept); anything else is left alone. */
void net_addr_normalize(struct net_addr *a);
bool net_addr_is_v4_mapped(const struct net_addr *a);
/* Address and port equal, after neither is normalised. */
bool net_addr_equal(const struct net_addr *a, const struct net_addr *b);
int net_addr_to_sockaddr(const struct net_addr *a, struct sockaddr_storage *ss, socklen_t *len);
int net_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct net_addr *out);
/* Clears the bits past prefix (a /64 of an IPv6 address); -EINVAL if prefix is too long. */
int net_addr_mask(struct net_addr *a, unsigned prefix);
/* Decimal 1..65535 (0 with NET_PORT_ZERO_OK in mode); -EINVAL for "", "0", "70000", "-5", "abc". */
int net_port_parse(const char *s, unsigned mode, uint16_t *out);

/* net_listen_tcp flags */
enum {
	NET_LISTEN_REUSEPORT = 1u << 0, /* one socket per thread on the same address */
	NET_LISTEN_V6ONLY = 1u << 1,    /* [::] leaves IPv4 to a listener of its own */
};

/* A non-blocking, close-on-exec TCP socket with SO_REUSEADDR listening on a (port 0 picks
 * one). fd or -errno. */
int net_listen_tcp(const struct net_addr *a, unsigned flags, int backlog);

/*
 * "10.0.0.0/8", "2001:db8::/32", or a bare address (/32, /128). Host bits set beyond the
 * prefix are cleared. -EINVAL for "1.2.3.4/33", "/8", "1.2.3.4/", "1.2.3.4/08".
 */
int net_cidr_parse(const char *s, struct net_cidr *out);
int net_cidr_format(const struct net_cidr *c, char *buf, size_t len);
/* v4-mapped addresses match IPv4 prefixes; the port is ignored. */
bool net_cidr_match(const struct net_cidr *c, const struct net_addr *a);
