/* Command-line words of `rampart port`; every failure has its own code for its own message. */
#include "port_args.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

int
port_args_proto(const char *s, unsigned *proto)
{
	if (strcmp(s, "tcp") == 0)
		*proto = PORT_PROTO_TCP;
	else if (strcmp(s, "udp") == 0)
		*proto = PORT_PROTO_UDP;
	else if (strcmp(s, "unix") == 0)
		*proto = PORT_PROTO_UNIX;
	else
		return -EINVAL;
	return 0;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "PORT" or "LO-HI" of n bytes; a leading '-' is a negative number, out of range. */
static bool
looks_ports(const char *s, size_t n)
{
	const char *dash = memchr(s + 1, '-', n > 1 ? n - 1 : 0);

	if (n && s[0] == '-')
		return all_digits(s + 1, n - 1);
	if (!dash)
		return all_digits(s, n);
	return all_digits(s, (size_t)(dash - s)) &&
	       all_digits(dash + 1, n - (size_t)(dash - s) - 1);
}

static int
one_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (s[0] == '-')
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return -ERANGE;
	}
	if (v == 0)
		return -ERANGE;
	if (s[0] == '0')
		return -EILSEQ;
	*out = (uint16_t)v;
	return 0;
}

/* s holds n bytes that looks_ports accepted. */
static int
port_range(const char *s, size_t n, struct port_target *t)
{
	const char *dash = s[0] == '-' ? NULL : memchr(s, '-', n);
	size_t n1 = dash ? (size_t)(dash - s) : n;
	int r = one_port(s, n1, &t->lo);

	if (r < 0)
		return r;
	t->hi = t->lo;
	if (dash && (r = one_port(dash + 1, n - n1 - 1, &t->hi)) < 0)
		return r;
	if (t->hi < t->lo)
		return -EDOM;
	return (unsigned)(t->hi - t->lo) + 1 > PORT_RANGE_MAX ? -E2BIG : 0;
}

static bool
is_host_name(const char *s, size_t n)
{
	bool letter = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			letter = true;
		else if (!(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_')
			return false;
	}
	return n > 0 && letter;
}

/* The host part of HOST:PORT (n bytes, brackets kept) into out[]; the count, or -errno. */
static int
host_part(const char *s, size_t n, struct port_target out[2])
{
	char host[NET_ADDR_STRLEN + 2];

	if (n == 9 && strncasecmp(s, "localhost", 9) == 0) {
		net_addr_parse("127.0.0.1", NET_PORT_NONE, &out[0].addr);
		net_addr_parse("::1", NET_PORT_NONE, &out[1].addr);
		return 2;
	}
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		s++, n -= 2;
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (net_addr_parse(host, NET_PORT_NONE, &out[0].addr) == 0)
		return 1;
	return is_host_name(s, n) ? -EADDRNOTAVAIL : -EINVAL;
}

int
port_args_target(const char *s, struct port_target out[2])
{
	struct port_target t[2] = {0};
	const char *colon = strrchr(s, ':');
	struct net_addr bare;

	if (colon == s)
		s++, colon = NULL;
	if (!colon) {
		if (looks_ports(s, strlen(s))) {
			int r = port_range(s, strlen(s), &t[0]);
			if (r == 0)
				out[0] = t[0];
			return r < 0 ? r : 1;
		}
		if (strcasecmp(s, "localhost") == 0 || net_addr_parse(s, NET_PORT_NONE, &bare) == 0)
			return -EDESTADDRREQ;
		return -EINVAL;
	}
	if (net_addr_parse(s, NET_PORT_NONE, &bare) == 0)
		return -EDESTADDRREQ; /* "::1": its last group is not a port */
	if (!looks_ports(colon + 1, strlen(colon + 1)))
		return -EINVAL;
	int n = host_part(s, (size_t)(colon - s), t);
	if (n < 0)
		return n;
	int r = port_range(colon + 1, strlen(colon + 1), &t[0]);
	if (r < 0)
		return r;
	for (int i = 0; i < n; i++) {
		t[i].lo = t[0].lo, t[i].hi = t[0].hi;
		t[i].addr.port = t[0].lo;
		out[i] = t[i];
	}
	return n;
}

static int
signal_number(const char *s, int *sig)
{
	int v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
		if (v >= NSIG)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*sig = v;
	return 0;
}

int
port_args_signal(const char *s, int *sig)
{
	if (s[0] >= '0' && s[0] <= '9')
		return signal_number(s, sig);
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *name = sigabbrev_np(i);
		if (name && strcasecmp(name, s) == 0) {
			*sig = i;
			return 0;
		}
	}
	return -EINVAL;
}
