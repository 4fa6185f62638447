/* inet_diag dumps over libmnl: a request per protocol and family, answers into port_sock. */
#include "port_diag.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
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
port_diag_bytecode(uint16_t port, void *bc)
{
	/*
	 * "sport >= port && sport <= port": S_GE/S_LE exist in every kernel, S_EQ only since
	 * 4.16. The program accepts when it runs exactly to its end; "no" jumps 4 bytes past
	 * the end, which rejects.
	 */
	const struct inet_diag_bc_op ops[4] = {
	    {.code = INET_DIAG_BC_S_GE, .yes = 8, .no = PORT_DIAG_BYTECODE_LEN + 4},
	    {.no = port},
	    {.code = INET_DIAG_BC_S_LE, .yes = 8, .no = 8 + 4},
	    {.no = port},
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
	if (!port_filter_match(ctx->f, &s)) /* the address: the kernel filtered the rest */
		return MNL_CB_OK;
	ctx->err = port_sock_list_add(ctx->out, &s);
	return ctx->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int
send_request(struct mnl_socket *nl, int family, uint8_t ipproto, uint32_t states, uint16_t port,
             uint32_t seq)
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
	if (port) {
		char bc[PORT_DIAG_BYTECODE_LEN];
		port_diag_bytecode(port, bc);
		mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(bc), bc);
	}
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

static int
dump_one(struct mnl_socket *nl, int family, const struct port_filter *f, struct dump_ctx *ctx)
{
	static uint32_t seq_base;
	char buf[DIAG_RECV_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	uint8_t ipproto = ctx->proto == PORT_PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;

	if (!seq_base)
		seq_base = (uint32_t)time(NULL);
	uint32_t seq = ++seq_base;
	int r = send_request(nl, family, ipproto, port_filter_states(f, ctx->proto), f->port, seq);
	if (r < 0)
		return r;
	unsigned portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
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

int
port_diag_dump(struct mnl_socket *nl, const struct port_filter *f, uint64_t netns,
               struct port_sock_list *out, unsigned *missing)
{
	static const uint8_t protos[] = {PORT_PROTO_TCP, PORT_PROTO_UDP};
	static const int families[] = {AF_INET, AF_INET6};

	*missing = 0;
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
