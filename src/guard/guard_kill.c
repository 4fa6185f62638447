/*
 * sock_diag over libmnl: dump TCP sockets per family, collect the ones whose peer is banned,
 * then destroy them one by one by their id (cookie included, so a socket that went away and
 * whose 4-tuple was reused is not hit). Destroying only after the dump keeps the kernel's
 * hash walk from skipping sockets while the table changes under it.
 */
#include "guard_kill.h"

#include "core/cleanup.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Dumps come in multi-part messages; a big buffer means fewer recvmsg calls. */
#define KILL_RECV_SIZE 32768
/* TCP_NEW_SYN_RECV (12: request sockets) is not in netinet/tcp.h. */
#define KILL_STATE_MAX 12
#define KILL_STATES (((1u << (KILL_STATE_MAX + 1)) - 2u) & ~(1u << TCP_LISTEN))

struct target {
	uint8_t family;
	struct inet_diag_sockid id;
};

struct targets {
	struct target *v;
	size_t n, cap;
};

struct dump_ctx {
	const struct net_cidr *cidrs;
	size_t ncidrs;
	struct targets *t;
	int err;
};

static void
targets_free(struct targets *t)
{
	free(t->v);
}

static int
targets_add(struct targets *t, uint8_t family, const struct inet_diag_sockid *id)
{
	if (t->n == GUARD_KILL_MAX)
		return 0; /* the rest waits for the next call */
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		if (cap > GUARD_KILL_MAX)
			cap = GUARD_KILL_MAX;
		struct target *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (struct target){.family = family, .id = *id};
	return 0;
}

static bool
peer_banned(const struct dump_ctx *ctx, int family, const __be32 *dst)
{
	struct net_addr a = {.family = family};

	memcpy(a.u.bytes, dst, family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < ctx->ncidrs; i++)
		if (net_cidr_match(&ctx->cidrs[i], &a))
			return true;
	return false;
}

static int
msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *ctx = data;
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
		return MNL_CB_OK;
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return MNL_CB_OK;
	if (m->idiag_state == TCP_LISTEN || !peer_banned(ctx, m->idiag_family, m->id.idiag_dst))
		return MNL_CB_OK;
	ctx->err = targets_add(ctx->t, m->idiag_family, &m->id);
	return ctx->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static uint32_t
next_seq(void)
{
	static uint32_t seq;

	if (!seq)
		seq = (uint32_t)time(NULL);
	return ++seq;
}

/* A SOCK_DIAG_BY_FAMILY dump or a SOCK_DESTROY of one id; the request's seq. */
static int
send_req(struct mnl_socket *nl, uint16_t type, uint8_t family, const struct inet_diag_sockid *id,
         uint32_t *seq)
{
	char buf[256] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | (id ? NLM_F_ACK : NLM_F_DUMP);
	nlh->nlmsg_seq = *seq = next_seq();
	struct inet_diag_req_v2 *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = KILL_STATES;
	if (id)
		req->id = *id;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

static int
dump_family(struct mnl_socket *nl, uint8_t family, struct dump_ctx *ctx)
{
	_cleanup_free_ char *buf = malloc(KILL_RECV_SIZE);
	uint32_t seq;

	if (!buf)
		return -ENOMEM;
	int r = send_req(nl, SOCK_DIAG_BY_FAMILY, family, NULL, &seq);
	if (r < 0)
		return r;
	unsigned portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, KILL_RECV_SIZE);
		if (n < 0)
			return -errno;
		ctx->err = 0;
		r = mnl_cb_run(buf, (size_t)n, seq, portid, msg_cb, ctx);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0)
			return ctx->err < 0 ? ctx->err : -errno;
	}
}

/* 0, or the kernel's -errno for this socket. */
static int
destroy_one(struct mnl_socket *nl, const struct target *t)
{
	char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
	uint32_t seq;
	int r = send_req(nl, SOCK_DESTROY, t->family, &t->id, &seq);

	if (r < 0)
		return r;
	ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	r = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), NULL, NULL);
	return r < 0 ? -errno : 0;
}

/*
 * Gone meanwhile (ENOENT), or its 4-tuple now another socket's (ESTALE): nothing to do. A
 * kernel may refuse some states (TIME_WAIT before tcp_abort knew it): -EOPNOTSUPP only when
 * it refused them all.
 */
static int
destroy_all(struct mnl_socket *nl, const struct targets *t, size_t *killed)
{
	int first = 0;
	bool unsupported = false;

	for (size_t i = 0; i < t->n; i++) {
		int r = destroy_one(nl, &t->v[i]);
		if (r == 0)
			(*killed)++;
		else if (r == -EPERM)
			return r; /* the same answer for every socket */
		else if (r == -EOPNOTSUPP)
			unsupported = true;
		else if (r != -ENOENT && r != -ESTALE && first == 0)
			first = r;
	}
	if (first == 0 && unsupported && *killed == 0)
		return -EOPNOTSUPP;
	return first;
}

static int
cidrs_check(const struct net_cidr *v, size_t n)
{
	if (n > GUARD_KILL_CIDRS_MAX || (n && !v))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct net_addr a = v[i].addr;
		if (a.family != AF_INET && a.family != AF_INET6)
			return -EINVAL;
		if (net_addr_mask(&a, v[i].prefix) < 0 || memcmp(&a.u, &v[i].addr.u, sizeof(a.u)))
			return -EINVAL;
	}
	return 0;
}

static void
mnl_closep(struct mnl_socket **nl)
{
	if (*nl)
		mnl_socket_close(*nl);
}

int
guard_kill(const struct net_cidr *v, size_t n, size_t *killed)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	_cleanup_(targets_free) struct targets t = {0};
	_cleanup_(mnl_closep) struct mnl_socket *nl = NULL;

	if (!killed)
		return -EINVAL;
	*killed = 0;
	int r = cidrs_check(v, n);
	if (r < 0 || n == 0)
		return r;
	nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	struct dump_ctx ctx = {.cidrs = v, .ncidrs = n, .t = &t};
	for (size_t i = 0; i < sizeof(families); i++)
		if ((r = dump_family(nl, families[i], &ctx)) < 0)
			return r;
	return destroy_all(nl, &t, killed);
}
