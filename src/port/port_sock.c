/* Socket lists, state names and the filter shared by the diag and /proc/net readers. */
#include "port_sock.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

int
port_sock_list_add(struct port_sock_list *l, const struct port_sock *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		if (cap > PORT_SOCK_MAX)
			cap = PORT_SOCK_MAX;
		if (cap <= l->n)
			return -ENOBUFS;
		struct port_sock *v = reallocarray(l->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
	return 0;
}

void
port_sock_list_free(struct port_sock_list *l)
{
	if (!l)
		return;
	free(l->v);
	*l = (struct port_sock_list){0};
}

static int
cmp_u64(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int
sock_cmp(const void *pa, const void *pb)
{
	const struct port_sock *a = pa, *b = pb;
	int r;

	if ((r = cmp_u64(a->proto, b->proto)) || (r = cmp_u64(a->local.family, b->local.family)))
		return r;
	if ((r = memcmp(a->local.u.bytes, b->local.u.bytes, sizeof(a->local.u.bytes))))
		return r;
	if ((r = cmp_u64(a->local.port, b->local.port)) || (r = cmp_u64(a->netns, b->netns)))
		return r;
	if ((r = memcmp(a->remote.u.bytes, b->remote.u.bytes, sizeof(a->remote.u.bytes))))
		return r;
	if ((r = cmp_u64(a->remote.port, b->remote.port)))
		return r;
	return cmp_u64(a->inode, b->inode);
}

void
port_sock_list_sort(struct port_sock_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), sock_cmp);
}

const char *
port_sock_state_name(uint8_t state)
{
	static const char *const names[] = {
	    [TCP_ESTABLISHED] = "ESTAB",    [TCP_SYN_SENT] = "SYN-SENT",
	    [TCP_SYN_RECV] = "SYN-RECV",    [TCP_FIN_WAIT1] = "FIN-WAIT-1",
	    [TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
	    [TCP_CLOSE] = "UNCONN",         [TCP_CLOSE_WAIT] = "CLOSE-WAIT",
	    [TCP_LAST_ACK] = "LAST-ACK",    [TCP_LISTEN] = "LISTEN",
	    [TCP_CLOSING] = "CLOSING",      [TCP_CLOSING + 1] = "SYN-RECV", /* NEW_SYN_RECV */
	};
	if (state < sizeof(names) / sizeof(names[0]) && names[state])
		return names[state];
	return "UNKNOWN";
}

const char *
port_sock_proto_name(uint8_t proto)
{
	return proto == PORT_PROTO_UDP ? "udp" : "tcp";
}

uint32_t
port_filter_states(const struct port_filter *f, uint8_t proto)
{
	if (f->all_states)
		return ~(uint32_t)0;
	/* An unconnected UDP socket is in TCP_CLOSE: that is "listening" for ss -l too. */
	return proto == PORT_PROTO_UDP ? 1u << TCP_CLOSE : 1u << TCP_LISTEN;
}

static bool
is_wildcard(const struct net_addr *a)
{
	size_t n = a->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < n; i++)
		if (a->u.bytes[i])
			return false;
	return true;
}

static bool
addr_match(const struct net_addr *want, const struct port_sock *s)
{
	struct net_addr q = *want, l = s->local;

	net_addr_normalize(&q);
	net_addr_normalize(&l);
	if (q.family == l.family) {
		size_t n = q.family == AF_INET ? 4 : 16;
		if (memcmp(q.u.bytes, l.u.bytes, n) == 0)
			return true;
	}
	if (!is_wildcard(&l))
		return false;
	if (l.family == AF_INET)
		return q.family == AF_INET;
	return q.family == AF_INET6 || !s->v6only;
}

bool
port_filter_match(const struct port_filter *f, const struct port_sock *s)
{
	if (!(f->protos & s->proto))
		return false;
	if (s->state >= 32 || !(port_filter_states(f, s->proto) & (1u << s->state)))
		return false;
	if (f->port && s->local.port != f->port)
		return false;
	return f->addr.family == 0 || addr_match(&f->addr, s);
}
