/* IPv4/IPv6 addresses with optional ports, CIDR prefixes, v4-mapped normalisation. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Longer than any valid address, address:port or CIDR; anything longer is refused unread. */
#define NET_INPUT_MAX 64

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static unsigned
family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

/* Copies s into a capped local buffer, refusing oversized input before reading all of it. */
static int
copy_input(const char *s, char *dst, size_t size)
{
	if (!s)
		return -EINVAL;
	size_t n = strnlen(s, size);
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(dst, s, n + 1);
	return 0;
}

/*
 * Decimal without sign, space or leading zeros, at most max. Leading zeros are refused so each
 * value has one spelling and nothing ever reads "010" as octal (as strtol base 0 and
 * inet_aton would), which keeps parse -> format -> parse exact.
 */
static int
parse_decimal(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i = 0;

	if (s[0] == '0' && s[1] != '\0')
		return -EINVAL;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return -EINVAL;
	}
	if (i == 0 || s[i] != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int
net_port_parse(const char *s, unsigned mode, uint16_t *out)
{
	unsigned long v;

	if (!s || !out || parse_decimal(s, 65535, &v) < 0)
		return -EINVAL;
	if (v == 0 && !(mode & NET_PORT_ZERO_OK))
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* Dotted quad text check that does not rely on the libc's inet_pton being strict. */
static bool
v4_text_ok(const char *s)
{
	unsigned dots = 0;

	for (size_t i = 0; s[i]; i++) {
		bool start = i == 0 || s[i - 1] == '.';
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			return false;
		else if (start && s[i] == '0' && s[i + 1] >= '0' && s[i + 1] <= '9')
			return false;
	}
	return dots == 3;
}

/* A bare address: no brackets, no port, no zone. */
static int
parse_host(const char *s, struct net_addr *out)
{
	struct net_addr a = {0};

	if (strchr(s, ':')) {
		const char *tail = strrchr(s, ':') + 1;
		if (strchr(tail, '.') && !v4_text_ok(tail))
			return -EINVAL;
		if (inet_pton(AF_INET6, s, &a.u.v6) != 1)
			return -EINVAL;
		a.family = AF_INET6;
	} else {
		if (!v4_text_ok(s) || inet_pton(AF_INET, s, &a.u.v4) != 1)
			return -EINVAL;
		a.family = AF_INET;
	}
	*out = a;
	return 0;
}

/*
 * Splits "[v6]", "[v6]:port" or "v4:port" in place; *port is NULL when none is written.
 * A bare IPv6 address has several colons and is returned whole, never split.
 */
static int
split_host_port(char *s, char **host, char **port, bool *bracketed)
{
	*port = NULL;
	*bracketed = s[0] == '[';
	if (*bracketed) {
		char *end = strchr(s, ']');
		if (!end || (end[1] != '\0' && end[1] != ':'))
			return -EINVAL;
		*host = s + 1;
		if (end[1] == ':')
			*port = end + 2;
		*end = '\0';
		return 0;
	}
	*host = s;
	char *colon = strchr(s, ':');
	if (colon && !strchr(colon + 1, ':')) {
		*colon = '\0';
		*port = colon + 1;
	}
	return 0;
}

static bool
mode_valid(unsigned mode)
{
	unsigned kind = mode & ~(unsigned)NET_PORT_ZERO_OK;
	return kind == NET_PORT_NONE || kind == NET_PORT_OPTIONAL || kind == NET_PORT_REQUIRED;
}

int
net_addr_parse(const char *s, unsigned mode, struct net_addr *out)
{
	char tmp[NET_INPUT_MAX + 1];
	char *host, *port;
	bool bracketed;
	struct net_addr a;
	unsigned kind = mode & ~(unsigned)NET_PORT_ZERO_OK;

	if (!out || !mode_valid(mode) || copy_input(s, tmp, sizeof(tmp)) < 0)
		return -EINVAL;
	if (split_host_port(tmp, &host, &port, &bracketed) < 0)
		return -EINVAL;
	if ((port && kind == NET_PORT_NONE) || (!port && kind == NET_PORT_REQUIRED))
		return -EINVAL;
	if (parse_host(host, &a) < 0)
		return -EINVAL;
	/* Brackets are for IPv6 only; an IPv4 address takes its port after a plain colon. */
	if (bracketed != (a.family == AF_INET6) && (bracketed || port))
		return -EINVAL;
	if (port && net_port_parse(port, mode, &a.port) < 0)
		return -EINVAL;
	*out = a;
	return 0;
}

/* Formats into tmp first so buf is written only when everything fits. */
static int
copy_output(const char *tmp, int n, char *buf, size_t len)
{
	if (n < 0)
		return -EINVAL;
	if (!buf || (size_t)n >= len)
		return -ENOSPC;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

int
net_addr_format(const struct net_addr *a, bool with_port, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	char tmp[NET_ADDR_STRLEN];
	int n;

	if (!a || family_bits(a->family) == 0)
		return -EINVAL;
	if (!inet_ntop(a->family, a->u.bytes, host, sizeof(host)))
		return -EINVAL;
	if (!with_port || a->port == 0)
		n = snprintf(tmp, sizeof(tmp), "%s", host);
	else if (a->family == AF_INET)
		n = snprintf(tmp, sizeof(tmp), "%s:%u", host, (unsigned)a->port);
	else
		n = snprintf(tmp, sizeof(tmp), "[%s]:%u", host, (unsigned)a->port);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -EINVAL;
	return copy_output(tmp, n, buf, len);
}

bool
net_addr_is_v4_mapped(const struct net_addr *a)
{
	return a && a->family == AF_INET6 &&
	       memcmp(a->u.bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

void
net_addr_normalize(struct net_addr *a)
{
	if (!net_addr_is_v4_mapped(a))
		return;
	uint8_t v4[4];
	memcpy(v4, a->u.bytes + 12, sizeof(v4));
	memset(a->u.bytes, 0, sizeof(a->u.bytes));
	memcpy(a->u.bytes, v4, sizeof(v4));
	a->family = AF_INET;
}

bool
net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
	if (!a || !b || a->family != b->family || a->port != b->port)
		return false;
	return memcmp(a->u.bytes, b->u.bytes, family_bits(a->family) / 8) == 0;
}

static void
to_sockaddr_in(const struct net_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(a->port)};
	memcpy(&sin.sin_addr, a->u.bytes, sizeof(sin.sin_addr));
	memcpy(ss, &sin, sizeof(sin));
	*len = sizeof(sin);
}

static void
to_sockaddr_in6(const struct net_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(a->port)};
	memcpy(&sin6.sin6_addr, a->u.bytes, sizeof(sin6.sin6_addr));
	memcpy(ss, &sin6, sizeof(sin6));
	*len = sizeof(sin6);
}

int
net_addr_to_sockaddr(const struct net_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	if (!a || !ss || !len || family_bits(a->family) == 0)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET)
		to_sockaddr_in(a, ss, len);
	else
		to_sockaddr_in6(a, ss, len);
	return 0;
}

/*
 * The IPv6 scope id is dropped: struct net_addr cannot carry a zone (the parser refuses
 * them too), and refusing link-local peers outright would be worse for callers.
 */
int
net_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct net_addr *out)
{
	struct net_addr a = {0};

	if (!sa || !out || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		memcpy(a.u.bytes, &sin.sin_addr, sizeof(sin.sin_addr));
		a.port = ntohs(sin.sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(a.u.bytes, &sin6.sin6_addr, sizeof(sin6.sin6_addr));
		a.port = ntohs(sin6.sin6_port);
	} else {
		return sa->sa_family == AF_INET || sa->sa_family == AF_INET6 ? -EINVAL
		                                                             : -EAFNOSUPPORT;
	}
	a.family = sa->sa_family;
	*out = a;
	return 0;
}

static void
mask_bytes(uint8_t *bytes, size_t size, unsigned prefix)
{
	for (size_t i = 0; i < size; i++) {
		unsigned bit = (unsigned)i * 8;
		if (prefix <= bit)
			bytes[i] = 0;
		else if (prefix < bit + 8)
			bytes[i] &= (uint8_t)(0xff << (bit + 8 - prefix));
	}
}

int
net_addr_mask(struct net_addr *a, unsigned prefix)
{
	if (!a)
		return -EINVAL;
	unsigned bits = family_bits(a->family);
	if (bits == 0 || prefix > bits)
		return -EINVAL;
	mask_bytes(a->u.bytes, bits / 8, prefix);
	return 0;
}

int
net_cidr_parse(const char *s, struct net_cidr *out)
{
	char tmp[NET_INPUT_MAX + 1];
	struct net_cidr c = {0};
	unsigned long prefix;

	if (!out || copy_input(s, tmp, sizeof(tmp)) < 0)
		return -EINVAL;
	char *slash = strchr(tmp, '/');
	if (slash)
		*slash = '\0';
	if (parse_host(tmp, &c.addr) < 0)
		return -EINVAL;
	prefix = family_bits(c.addr.family);
	if (slash && parse_decimal(slash + 1, prefix, &prefix) < 0)
		return -EINVAL;
	c.prefix = (unsigned)prefix;
	if (net_addr_mask(&c.addr, c.prefix) < 0)
		return -EINVAL;
	*out = c;
	return 0;
}

int
net_cidr_format(const struct net_cidr *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	char tmp[NET_CIDR_STRLEN];

	if (!c || c->prefix > family_bits(c->addr.family))
		return -EINVAL;
	int r = net_addr_format(&c->addr, false, host, sizeof(host));
	if (r < 0)
		return r;
	int n = snprintf(tmp, sizeof(tmp), "%s/%u", host, c->prefix);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -EINVAL;
	return copy_output(tmp, n, buf, len);
}

/* Whether the first prefix bits of x and y agree. */
static bool
prefix_equal(const uint8_t *x, const uint8_t *y, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(x, y, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return ((x[full] ^ y[full]) & mask) == 0;
}

/*
 * An IPv4 address is compared as its v4-mapped form against IPv6 prefixes, and a v4-mapped
 * address as plain IPv4 against IPv4 prefixes, so one address spelt either way matches the
 * same rules (it follows that ::/0 matches IPv4 addresses too).
 */
bool
net_cidr_match(const struct net_cidr *c, const struct net_addr *a)
{
	uint8_t v6[16];

	if (!c || !a || c->prefix > family_bits(c->addr.family) || family_bits(a->family) == 0)
		return false;
	if (c->addr.family == a->family)
		return prefix_equal(c->addr.u.bytes, a->u.bytes, c->prefix);
	if (c->addr.family == AF_INET)
		return net_addr_is_v4_mapped(a) &&
		       prefix_equal(c->addr.u.bytes, a->u.bytes + 12, c->prefix);
	memcpy(v6, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	memcpy(v6 + 12, a->u.bytes, 4);
	return prefix_equal(c->addr.u.bytes, v6, c->prefix);
}

int
net_listen_tcp(const struct net_addr *a, unsigned flags, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	int r = net_addr_to_sockaddr(a, &ss, &sl);
	if (r < 0)
		return r;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    ((flags & NET_LISTEN_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (ss.ss_family == AF_INET6 && (flags & NET_LISTEN_V6ONLY) &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
