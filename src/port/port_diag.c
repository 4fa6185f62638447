/* inet_diag dumps over libmnl: a request per protocol and family, answers into port_sock. */
#include "port_diag.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Dumps come in multi-part messages; a big buffer means fewer recvmsg calls. */
#define DIAG_RECV_SIZE 32768

struct dump_ctx {
	const struct port_filter *f;
	struct port_sock_list *out;
	uint64_t netns;
	uint8_t proto;
	int err;
};

int
port_diag_open(struct mnl_socket **out)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		mnl_socket_close(nl);
		return r;
	}
	*out = nl;
	return 0;
}

void
port_diag_close(struct mnl_socket *nl)
{
	if (nl)
		mnl_socket_close(nl);
}

void
port_diag_bytecode(uint16_t lo, uint16_t hi, void *bc)
{
	/*
	 * "sport >= lo && sport <= hi": S_GE/S_LE exist in every kernel, S_EQ only since
	 * 4.16. The program accepts when it runs exactly to its end; "no" jumps 4 bytes past
	 * the end, which rejects.
	 */
	const struct inet_diag_bc_op ops[4] = {
	    {.code = INET_DIAG_BC_S_GE, .yes = 8, .no = PORT_DIAG_BYTECODE_LEN + 4},
	    {.no = lo},
	    {.code = INET_DIAG_BC_S_LE, .yes = 8, .no = 8 + 4},
	    {.no = hi},
	};
	_Static_assert(sizeof(ops) == PORT_DIAG_BYTECODE_LEN, "bytecode size");
	memcpy(bc, ops, sizeof(ops));
}

static int
attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type == INET_DIAG_SKV6ONLY && mnl_attr_validate(attr, MNL_TYPE_U8) == 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static void
fill_addr(struct net_addr *a, int family, const __be32 *words, __be16 port)
{
	a->family = family;
	memcpy(a->u.bytes, words, family == AF_INET ? 4 : 16);
	a->port = ntohs(port);
}

static int
msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *ctx = data;
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[INET_DIAG_MAX + 1] = {0};
	struct port_sock s = {.netns = ctx->netns, .proto = ctx->proto};

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
		return MNL_CB_OK;
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*m), attr_cb, tb);
	fill_addr(&s.local, m->idiag_family, m->id.idiag_src, m->id.idiag_sport);
	fill_addr(&s.remote, m->idiag_family, m->id.idiag_dst, m->id.idiag_dport);
	s.state = m->idiag_state;
	s.uid = m->idiag_uid;
	s.inode = m->idiag_inode;
	s.v6only = tb[INET_DIAG_SKV6ONLY] && mnl_attr_get_u8(tb[INET_DIAG_SKV6ONLY]);
	if (!port_filter_match(ctx->f, &s)) /* what the kernel could not filter */
		return MNL_CB_OK;
	ctx->err = port_sock_list_add(ctx->out, &s);
	return ctx->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int
send_request(struct mnl_socket *nl, int family, uint8_t ipproto, uint32_t states,
             const struct port_filter *f, uint32_t seq)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	struct inet_diag_req_v2 *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = (uint8_t)family;
	req->sdiag_protocol = ipproto;
	req->idiag_states = states;
	if (f->ntargets == 1 && !f->inodes) { /* several: filtered here, in msg_cb */
		char bc[PORT_DIAG_BYTECODE_LEN];
		port_diag_bytecode(f->targets[0].lo, f->targets[0].hi, bc);
		mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(bc), bc);
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

static uint32_t
next_seq(void)
{
	static uint32_t seq_base;

	if (!seq_base)
		seq_base = (uint32_t)time(NULL);
	return ++seq_base;
}

/* Reads the answers to request seq until the dump's end, through cb. */
static int
recv_dump(struct mnl_socket *nl, uint32_t seq, mnl_cb_t cb, struct dump_ctx *ctx)
{
	char buf[DIAG_RECV_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	unsigned portid = mnl_socket_get_portid(nl);

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ctx->err = 0;
		int r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, ctx);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0)
			return ctx->err < 0 ? ctx->err : -errno;
	}
}

static int
dump_one(struct mnl_socket *nl, int family, const struct port_filter *f, struct dump_ctx *ctx)
{
	uint8_t ipproto = ctx->proto == PORT_PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	uint32_t seq = next_seq();
	int r = send_request(nl, family, ipproto, port_filter_states(f, ctx->proto), f, seq);

	return r < 0 ? r : recv_dump(nl, seq, msg_cb, ctx);
}

static int
unix_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type == UNIX_DIAG_NAME || ((type == UNIX_DIAG_PEER || type == UNIX_DIAG_UID) &&
	                               mnl_attr_validate(attr, MNL_TYPE_U32) == 0))
		tb[type] = attr;
	return MNL_CB_OK;
}

/* The bound name as ss shows it: the path (up to its NUL), or "@" and the abstract name. */
static char *
unix_name(const struct nlattr *attr)
{
	size_t n = mnl_attr_get_payload_len(attr);
	const char *p = mnl_attr_get_payload(attr);

	if (n && p[0])
		n = strnlen(p, n);
	errno = 0;
	if (n == 0 || n >= PORT_UNIX_NAME_MAX)
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0') /* abstract: the leading NUL and any inside, as ss shows them */
			s[i] = '@';
	return s;
}

static int
unix_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *ctx = data;
	const struct unix_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[UNIX_DIAG_MAX + 1] = {0};
	struct port_sock s = {.netns = ctx->netns, .proto = PORT_PROTO_UNIX, .uid = (uint32_t)-1};

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m) || m->udiag_family != AF_UNIX)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*m), unix_attr_cb, tb);
	s.type = m->udiag_type;
	s.state = m->udiag_state;
	s.inode = m->udiag_ino;
	if (tb[UNIX_DIAG_PEER])
		s.peer_inode = mnl_attr_get_u32(tb[UNIX_DIAG_PEER]);
	if (tb[UNIX_DIAG_UID])
		s.uid = mnl_attr_get_u32(tb[UNIX_DIAG_UID]);
	if (tb[UNIX_DIAG_NAME] && !(s.name = unix_name(tb[UNIX_DIAG_NAME])) && errno == ENOMEM) {
		ctx->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (!port_filter_match(ctx->f, &s)) {
		free(s.name);
		return MNL_CB_OK;
	}
	ctx->err = port_sock_list_add(ctx->out, &s);
	return ctx->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int
dump_unix(struct mnl_socket *nl, const struct port_filter *f, struct dump_ctx *ctx)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	uint32_t seq = next_seq();

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	struct unix_diag_req *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = AF_UNIX;
	req->udiag_states = port_filter_states(f, PORT_PROTO_UNIX);
	req->udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_UID;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return recv_dump(nl, seq, unix_msg_cb, ctx);
}

int
port_diag_dump(struct mnl_socket *nl, const struct port_filter *f, uint64_t netns,
               struct port_sock_list *out, unsigned *missing)
{
	static const uint8_t protos[] = {PORT_PROTO_TCP, PORT_PROTO_UDP};
	static const int families[] = {AF_INET, AF_INET6};

	*missing = 0;
	if (f->protos & PORT_PROTO_UNIX) {
		struct dump_ctx ctx = {.f = f, .out = out, .netns = netns};
		int r = dump_unix(nl, f, &ctx);
		if (r == -ENOENT)
			*missing |= PORT_PROTO_UNIX;
		else if (r < 0)
			return r;
	}
	for (size_t i = 0; i < sizeof(protos); i++) {
		if (!(f->protos & protos[i]))
			continue;
		struct dump_ctx ctx = {.f = f, .out = out, .netns = netns, .proto = protos[i]};
		for (size_t j = 0; j < 2; j++) {
			int r = dump_one(nl, families[j], f, &ctx);
			if (r == -ENOENT) {
				*missing |= protos[i];
				break;
			}
			if (r < 0)
				return r;
		}
	}
	return *missing ? -ENOENT : 0;
}
