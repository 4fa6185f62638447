/* Socket lists, state names and the filter shared by the diag and /proc/net readers. */
#include "port_sock.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int
port_sock_list_add(struct port_sock_list *l, const struct port_sock *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		if (cap > PORT_SOCK_MAX)
			cap = PORT_SOCK_MAX;
		struct port_sock *v = cap <= l->n ? NULL : reallocarray(l->v, cap, sizeof(*v));
		if (!v) {
			free(s->name);
			return cap <= l->n ? -ENOBUFS : -ENOMEM;
		}
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
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
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
	if (a->proto == PORT_PROTO_UNIX &&
	    (r = strcmp(a->name ? a->name : "", b->name ? b->name : "")))
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
	return proto == PORT_PROTO_UNIX ? "unix" : proto == PORT_PROTO_UDP ? "udp" : "tcp";
}

const char *
port_sock_type_name(uint8_t type)
{
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "unknown";
	}
}

uint32_t
port_filter_states(const struct port_filter *f, uint8_t proto)
{
	if (f->all_states || f->inodes)
		return ~(uint32_t)0;
	if (proto == PORT_PROTO_UNIX) /* listening, and bound datagram sockets (as UDP) */
		return 1u << TCP_LISTEN | 1u << TCP_CLOSE;
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

static bool
inode_wanted(const struct port_filter *f, uint32_t inode)
{
	size_t lo = 0, hi = f->ninodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->inodes[mid] == inode)
			return true;
		if (f->inodes[mid] < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool
target_match(const struct port_target *t, const struct port_sock *s)
{
	if (s->proto == PORT_PROTO_UNIX)
		return t->path && s->name && strcmp(t->path, s->name) == 0;
	if (t->path || s->local.port < t->lo || s->local.port > t->hi)
		return false;
	return t->addr.family == 0 || addr_match(&t->addr, s);
}

static bool
targets_match(const struct port_filter *f, const struct port_sock *s)
{
	for (size_t i = 0; i < f->ntargets; i++)
		if (target_match(&f->targets[i], s))
			return true;
	return f->ntargets == 0;
}

bool
port_filter_match(const struct port_filter *f, const struct port_sock *s)
{
	if (!(f->protos & s->proto))
		return false;
	if (f->inodes) /* a process's sockets, in every state */
		return s->inode && inode_wanted(f, s->inode) && targets_match(f, s);
	if (s->state >= 32 || !(port_filter_states(f, s->proto) & (1u << s->state)))
		return false;
	if (s->proto == PORT_PROTO_UNIX && !f->all_states && s->state == TCP_CLOSE && !s->name)
		return false;
	return targets_match(f, s);
}
