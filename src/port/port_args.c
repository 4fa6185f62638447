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
	else
		return -EINVAL;
	return 0;
}

/* Optional '-', then digits only: the user meant a number, whatever its value. */
static bool
looks_numeric(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int
port_args_target(const char *s, struct port_filter *f)
{
	struct net_addr a;
	uint16_t port;

	if (s[0] == ':' && looks_numeric(s + 1))
		s++;
	if (looks_numeric(s)) {
		if (s[0] == '-' || net_port_parse(s, NET_PORT_NONE, &port) < 0)
			return -ERANGE;
		f->port = port;
		f->addr = (struct net_addr){0};
		return 0;
	}
	if (net_addr_parse(s, NET_PORT_REQUIRED, &a) < 0) {
		struct net_addr bare;
		if (net_addr_parse(s, NET_PORT_NONE, &bare) == 0)
			return -EDESTADDRREQ;
		/* "1.2.3.4:0" and "[::1]:70000" parse once the port is let through unchecked */
		if (net_addr_parse(s, NET_PORT_OPTIONAL | NET_PORT_ZERO_OK, &bare) == 0 ||
		    (strrchr(s, ':') && looks_numeric(strrchr(s, ':') + 1)))
			return -ERANGE;
		return -EINVAL;
	}
	f->port = a.port;
	f->addr = a;
	return 0;
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
