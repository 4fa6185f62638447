/*
 * The writer child and its protocol. Each request is one or more SOCK_SEQPACKET messages
 * (chunks): a wire_hdr, for the first chunk of a setup a wire_layout, then hdr.count wire_elem
 * records. Every chunk is answered with a wire_reply (status, then nft's message if any); the
 * last chunk's answer is the result of the whole request, applied in one transaction. A kill
 * (cidrs, like an unban) is not nftables: its last answer's status is the count of sockets
 * destroyed when not negative, the only status above 0.
 */
#include "guard_writer.h"

#include "core/cleanup.h"
#include "core/proc.h"

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum wire_op {
	OP_SETUP = 1,
	OP_BAN = 2,
	OP_UNBAN = 3,
	OP_TRUST = 4,
	OP_BLOCKLIST = 5,
	OP_REMOVE = 6,
	OP_KILL = 7,
};

enum {
	WF_FIRST = 1u << 0,
	WF_LAST = 1u << 1,
};

struct wire_hdr {
	uint32_t op;
	uint32_t flags;
	uint32_t count; /* records in this chunk */
	uint32_t total; /* records in the whole request (first chunk) */
};

struct wire_elem {
	uint8_t family; /* 4 or 6 */
	uint8_t prefix;
	uint8_t pad[6];
	uint8_t addr[16];
	uint64_t timeout_ms;
};

struct wire_rate {
	uint16_t ports[GUARD_NFT_PORTS_MAX];
	uint32_t nports;
	uint32_t seconds;
	uint32_t hitcount;
	uint32_t pad;
};

struct wire_layout {
	uint32_t nrates;
	uint32_t v6_prefix;
	uint32_t set_size;
	uint32_t pad;
	struct wire_rate rates[GUARD_NFT_RATES_MAX];
};

struct wire_reply {
	int32_t status;
	char text[GUARD_NFT_ERROR_MAX];
};

#define CHUNK_ELEMS 1024u
#define MSG_MAX (sizeof(struct wire_hdr) + sizeof(struct wire_layout) + CHUNK_ELEMS * 32u)

_Static_assert(sizeof(struct wire_elem) == 32, "wire_elem is 32 bytes");

struct guard_writer {
	int fd;
	pid_t pid;
	char err[GUARD_NFT_ERROR_MAX];
};

/* ---- both sides: conversions ---- */

static void
elem_to_wire(const struct net_cidr *c, uint64_t timeout_ms, struct wire_elem *w)
{
	*w = (struct wire_elem){.prefix = (uint8_t)c->prefix, .timeout_ms = timeout_ms};
	w->family = c->addr.family == AF_INET ? 4 : c->addr.family == AF_INET6 ? 6 : 0;
	if (c->prefix > 255)
		w->prefix = 255;
	memcpy(w->addr, c->addr.u.bytes, w->family == 4 ? 4 : 16);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Structural checks; guard_nft checks ranges and host bits again. */
static int
elem_from_wire(const struct wire_elem *w, struct guard_nft_elem *e)
{
	size_t len = w->family == 4 ? 4 : 16;

	if ((w->family != 4 && w->family != 6) || !all_zero(w->pad, sizeof(w->pad)))
		return -EINVAL;
	if (w->prefix > len * 8 || !all_zero(w->addr + len, 16 - len))
		return -EINVAL;
	if (w->timeout_ms > GUARD_NFT_TIMEOUT_MAX_MS)
		return -EINVAL;
	*e = (struct guard_nft_elem){.timeout_ms = w->timeout_ms};
	e->net.addr.family = w->family == 4 ? AF_INET : AF_INET6;
	memcpy(e->net.addr.u.bytes, w->addr, len);
	e->net.prefix = w->prefix;
	return 0;
}

static int
layout_to_wire(const struct guard_nft_layout *l, struct wire_layout *w)
{
	if (!l || l->nrates > GUARD_NFT_RATES_MAX || (l->nrates && !l->rates) ||
	    l->nallow > GUARD_NFT_ALLOW_MAX || (l->nallow && !l->allow))
		return -EINVAL;
	*w = (struct wire_layout){
	    .nrates = (uint32_t)l->nrates, .v6_prefix = l->v6_prefix, .set_size = l->set_size};
	for (size_t i = 0; i < l->nrates; i++) {
		const struct guard_nft_rate *r = &l->rates[i];
		if (r->nports > GUARD_NFT_PORTS_MAX)
			return -EINVAL;
		memcpy(w->rates[i].ports, r->ports, sizeof(r->ports));
		w->rates[i].nports = (uint32_t)r->nports;
		w->rates[i].seconds = r->seconds;
		w->rates[i].hitcount = r->hitcount;
	}
	return 0;
}

static int
layout_from_wire(const struct wire_layout *w, struct guard_nft_rate *rates,
                 struct guard_nft_layout *l)
{
	if (w->nrates > GUARD_NFT_RATES_MAX || w->pad)
		return -EINVAL;
	for (size_t i = 0; i < w->nrates; i++) {
		if (w->rates[i].nports > GUARD_NFT_PORTS_MAX || w->rates[i].pad)
			return -EINVAL;
		rates[i] = (struct guard_nft_rate){.nports = w->rates[i].nports,
		                                   .seconds = w->rates[i].seconds,
		                                   .hitcount = w->rates[i].hitcount};
		memcpy(rates[i].ports, w->rates[i].ports, sizeof(rates[i].ports));
	}
	*l = (struct guard_nft_layout){.rates = rates,
	                               .nrates = w->nrates,
	                               .v6_prefix = w->v6_prefix,
	                               .set_size = w->set_size};
	return guard_nft_layout_check(l);
}

/* ---- the child ---- */

struct pending {
	uint32_t op;
	uint32_t total;
	uint32_t got;
	struct guard_nft_elem *v;
	struct guard_nft_rate rates[GUARD_NFT_RATES_MAX];
	struct guard_nft_layout layout;
};

static uint32_t
op_cap(uint32_t op)
{
	switch (op) {
	case OP_SETUP:
		return GUARD_NFT_ALLOW_MAX;
	case OP_TRUST:
	case OP_REMOVE:
		return 1;
	case OP_BAN:
	case OP_UNBAN:
	case OP_BLOCKLIST:
		return GUARD_NFT_ELEMS_MAX;
	case OP_KILL:
		return GUARD_KILL_CIDRS_MAX;
	default:
		return 0;
	}
}

static void
pending_reset(struct pending *p)
{
	free(p->v);
	*p = (struct pending){0};
}

static int
pending_start(struct pending *p, const struct wire_hdr *h, const uint8_t **body, size_t *left)
{
	uint32_t cap = op_cap(h->op);

	if (cap == 0 || h->total > cap || (h->op == OP_TRUST && h->total != 1) ||
	    (h->op == OP_REMOVE && h->total != 0))
		return -EINVAL;
	p->op = h->op;
	p->total = h->total;
	p->v = calloc(h->total ? h->total : 1, sizeof(*p->v));
	if (!p->v)
		return -ENOMEM;
	if (h->op != OP_SETUP)
		return 0;
	if (*left < sizeof(struct wire_layout))
		return -EBADMSG;
	struct wire_layout wl;
	memcpy(&wl, *body, sizeof(wl));
	*body += sizeof(wl);
	*left -= sizeof(wl);
	return layout_from_wire(&wl, p->rates, &p->layout);
}

/* Only a ban carries timeouts; a trust is one whole address. */
static bool
elem_fits_op(uint32_t op, const struct guard_nft_elem *e)
{
	unsigned bits = e->net.addr.family == AF_INET ? 32 : 128;

	if (op != OP_BAN && op != OP_TRUST && e->timeout_ms != 0)
		return false;
	return op != OP_TRUST || e->net.prefix == bits;
}

static int
pending_add(struct pending *p, const struct wire_hdr *h, const uint8_t *body, size_t left)
{
	if (h->count > CHUNK_ELEMS || left != (size_t)h->count * sizeof(struct wire_elem) ||
	    h->count > p->total - p->got)
		return -EBADMSG;
	for (uint32_t i = 0; i < h->count; i++) {
		struct wire_elem w;
		memcpy(&w, body + (size_t)i * sizeof(w), sizeof(w));
		struct guard_nft_elem *e = &p->v[p->got + i];
		if (elem_from_wire(&w, e) < 0 || !elem_fits_op(p->op, e))
			return -EINVAL;
	}
	p->got += h->count;
	return 0;
}

/* The count (at most GUARD_KILL_MAX, so it fits the status) or -errno. */
static int
apply_kill(const struct net_cidr *c, size_t n)
{
	size_t killed = 0;
	int r = guard_kill(c, n, &killed);

	return r < 0 ? r : (int)killed;
}

static int
pending_apply(struct pending *p, struct guard_nft *n)
{
	_cleanup_free_ struct net_cidr *c = calloc(p->got ? p->got : 1, sizeof(*c));

	if (p->got != p->total)
		return -EBADMSG;
	if (!c)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->got; i++)
		c[i] = p->v[i].net;
	switch (p->op) {
	case OP_SETUP:
		p->layout.allow = c;
		p->layout.nallow = p->got;
		return guard_nft_setup(n, &p->layout);
	case OP_BAN:
		return guard_nft_ban(n, p->v, p->got);
	case OP_UNBAN:
		return guard_nft_unban(n, c, p->got);
	case OP_TRUST:
		return guard_nft_trust(n, &c[0].addr, p->v[0].timeout_ms);
	case OP_BLOCKLIST:
		return guard_nft_blocklist(n, c, p->got);
	case OP_REMOVE: {
		int r = guard_nft_remove(n);
		return r == -ENOENT ? 0 : r;
	}
	case OP_KILL:
		return apply_kill(c, p->got);
	default:
		return -EINVAL;
	}
}

static int
send_reply(int fd, int status, const char *text)
{
	struct wire_reply rep = {.status = status};
	size_t len = text ? strnlen(text, sizeof(rep.text)) : 0;

	memcpy(rep.text, text ? text : "", len);
	ssize_t w = send(fd, &rep, offsetof(struct wire_reply, text) + len, MSG_NOSIGNAL);
	return w < 0 ? -errno : 0;
}

/* One chunk: 0 taken (more to come), 1 last chunk taken, -errno refused. */
static int
child_chunk(struct pending *p, const uint8_t *msg, size_t len)
{
	struct wire_hdr h;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, msg, sizeof(h));
	const uint8_t *body = msg + sizeof(h);
	size_t left = len - sizeof(h);
	if (h.flags & ~(uint32_t)(WF_FIRST | WF_LAST))
		return -EINVAL;
	if (!!(h.flags & WF_FIRST) != (p->op == 0) || (p->op && h.op != p->op))
		return -EPROTO;
	int r = (h.flags & WF_FIRST) ? pending_start(p, &h, &body, &left) : 0;
	if (r >= 0)
		r = pending_add(p, &h, body, left);
	if (r < 0)
		return r;
	return (h.flags & WF_LAST) ? 1 : 0;
}

/* Answers every message until the socket closes; a refused chunk drops its request. */
static int
child_serve(int fd, struct guard_nft *n)
{
	_cleanup_free_ uint8_t *msg = malloc(MSG_MAX);
	struct pending p = {0};

	if (!msg)
		return -ENOMEM;
	for (;;) {
		struct iovec iov = {.iov_base = msg, .iov_len = MSG_MAX};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t len = recvmsg(fd, &mh, 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			break;
		int r = (mh.msg_flags & MSG_TRUNC) ? -EMSGSIZE : child_chunk(&p, msg, (size_t)len);
		const char *text = NULL;
		bool done = r != 0;
		int status = r < 0 ? r : 0;
		if (r == 1) {
			r = pending_apply(&p, n);
			status = r < 0 || p.op == OP_KILL ? r : 0;
			text = r < 0 && p.op != OP_KILL ? guard_nft_error(n) : NULL;
		}
		if (done)
			pending_reset(&p);
		if (send_reply(fd, status, text) < 0)
			break;
	}
	pending_reset(&p);
	return 0;
}

static int
capset_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	data[0].effective = data[0].permitted = 1u << CAP_NET_ADMIN;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	if (data[0].effective != 1u << CAP_NET_ADMIN || data[1].effective || data[1].permitted)
		return -EPERM;
	return 0;
}

/* user's ids with CAP_NET_ADMIN alone: nothing else in the bounding set either. */
static int
drop_to(const char *user)
{
	for (int c = 0; c <= 63; c++)
		if (c != CAP_NET_ADMIN && c != CAP_SETPCAP && prctl(PR_CAPBSET_DROP, c) < 0 &&
		    errno != EINVAL)
			return -errno;
	if (prctl(PR_CAPBSET_DROP, CAP_SETPCAP) < 0)
		return -errno;
	if (prctl(PR_SET_KEEPCAPS, 1) < 0)
		return -errno;
	int r = proc_drop_privileges(user);
	if (r < 0)
		return r;
	r = capset_net_admin();
	if (r < 0)
		return r;
	if (prctl(PR_SET_KEEPCAPS, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* The parent may block signals (signalfd) and catch others; the child wants neither. */
static void
child_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
}

static _Noreturn void
child_main(int fd, const struct guard_nft_layout *l, const char *user)
{
	struct guard_nft *n = NULL;

	child_signals();
	if (fd != 3 && (dup2(fd, 3) < 0))
		_exit(1);
	close_range(4, ~0u, 0);
	int r = guard_nft_new(&n);
	if (r >= 0)
		r = guard_nft_setup(n, l);
	if (r < 0) {
		send_reply(3, r, n ? guard_nft_error(n) : NULL);
		_exit(1);
	}
	if (user && (r = drop_to(user)) < 0) {
		send_reply(3, r, "cannot drop to the writer's user with CAP_NET_ADMIN");
		_exit(1);
	}
	if (send_reply(3, 0, NULL) < 0)
		_exit(1);
	child_serve(3, n);
	guard_nft_free(n);
	_exit(0);
}

/* ---- the parent ---- */

static int
recv_reply(struct guard_writer *w)
{
	struct wire_reply rep;
	ssize_t len;

	do
		len = recv(w->fd, &rep, sizeof(rep), 0);
	while (len < 0 && errno == EINTR);
	if (len < 0)
		return -errno;
	if ((size_t)len < offsetof(struct wire_reply, text))
		return -EPIPE;
	size_t tl = (size_t)len - offsetof(struct wire_reply, text);
	if (tl >= sizeof(w->err))
		tl = sizeof(w->err) - 1;
	memcpy(w->err, rep.text, tl);
	w->err[tl] = '\0';
	return rep.status;
}

static int
send_chunk(struct guard_writer *w, const void *msg, size_t len)
{
	ssize_t n;

	do
		n = send(w->fd, msg, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return recv_reply(w);
}

/* Sends v (a request's records, after the optional layout) in chunks; the last answer counts:
 * 0 or -errno, or a kill's count. */
static int
request(struct guard_writer *w, uint32_t op, const struct wire_layout *wl,
        const struct wire_elem *v, size_t count)
{
	_cleanup_free_ uint8_t *msg = malloc(MSG_MAX);
	size_t done = 0;
	int r = 0;

	if (!w || w->fd < 0)
		return -EINVAL;
	if (!msg)
		return -ENOMEM;
	w->err[0] = '\0';
	do {
		size_t k = count - done < CHUNK_ELEMS ? count - done : CHUNK_ELEMS;
		struct wire_hdr h = {.op = op, .count = (uint32_t)k, .total = (uint32_t)count};
		size_t len = sizeof(h);
		h.flags = (done == 0 ? WF_FIRST : 0) | (done + k == count ? WF_LAST : 0);
		if (done == 0 && wl) {
			memcpy(msg + len, wl, sizeof(*wl));
			len += sizeof(*wl);
		}
		memcpy(msg, &h, sizeof(h));
		if (k)
			memcpy(msg + len, v + done, k * sizeof(*v));
		r = send_chunk(w, msg, len + k * sizeof(*v));
		if (r > 0 && (op != OP_KILL || done + k != count))
			r = -EPROTO;
		if (r < 0)
			return r;
		done += k;
	} while (done < count);
	return r;
}

static int
cidrs_request(struct guard_writer *w, uint32_t op, const struct wire_layout *wl,
              const struct net_cidr *v, size_t count)
{
	if (count > op_cap(op) || (count && !v))
		return -EINVAL;
	_cleanup_free_ struct wire_elem *e = calloc(count ? count : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		elem_to_wire(&v[i], 0, &e[i]);
	return request(w, op, wl, e, count);
}

int
guard_writer_setup(struct guard_writer *w, const struct guard_nft_layout *l)
{
	struct wire_layout wl;
	int r = layout_to_wire(l, &wl);

	return r < 0 ? r : cidrs_request(w, OP_SETUP, &wl, l->allow, l->nallow);
}

int
guard_writer_ban(struct guard_writer *w, const struct guard_nft_elem *v, size_t count)
{
	if (count > GUARD_NFT_ELEMS_MAX || (count && !v))
		return -EINVAL;
	_cleanup_free_ struct wire_elem *e = calloc(count ? count : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		elem_to_wire(&v[i].net, v[i].timeout_ms, &e[i]);
	return request(w, OP_BAN, NULL, e, count);
}

int
guard_writer_unban(struct guard_writer *w, const struct net_cidr *v, size_t count)
{
	return cidrs_request(w, OP_UNBAN, NULL, v, count);
}

int
guard_writer_trust(struct guard_writer *w, const struct net_addr *a, uint64_t timeout_ms)
{
	struct wire_elem e;

	if (!a)
		return -EINVAL;
	struct net_cidr c = {.addr = *a, .prefix = a->family == AF_INET ? 32 : 128};
	elem_to_wire(&c, timeout_ms, &e);
	return request(w, OP_TRUST, NULL, &e, 1);
}

int
guard_writer_blocklist(struct guard_writer *w, const struct net_cidr *v, size_t count)
{
	return cidrs_request(w, OP_BLOCKLIST, NULL, v, count);
}

int
guard_writer_kill(struct guard_writer *w, const struct net_cidr *v, size_t count, size_t *killed)
{
	if (!killed)
		return -EINVAL;
	*killed = 0;
	int r = cidrs_request(w, OP_KILL, NULL, v, count);
	if (r < 0)
		return r;
	*killed = (size_t)r;
	return 0;
}

int
guard_writer_remove(struct guard_writer *w)
{
	return request(w, OP_REMOVE, NULL, NULL, 0);
}

const char *
guard_writer_error(const struct guard_writer *w)
{
	return w ? w->err : "";
}

int
guard_writer_fd(const struct guard_writer *w)
{
	return w ? w->fd : -1;
}

pid_t
guard_writer_pid(const struct guard_writer *w)
{
	return w ? w->pid : -1;
}

int
guard_writer_start(const struct guard_nft_layout *l, const char *user, struct guard_writer **out)
{
	_cleanup_free_ struct guard_writer *w = calloc(1, sizeof(*w));
	int sv[2];

	if (!out || guard_nft_layout_check(l) < 0)
		return -EINVAL;
	if (!w)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0)
		child_main(sv[1], l, user);
	close(sv[1]);
	w->fd = sv[0];
	w->pid = pid;
	int r = recv_reply(w);
	if (r > 0)
		r = -EPROTO;
	if (r < 0) {
		guard_writer_stop(TAKE_PTR(w));
		return r;
	}
	*out = TAKE_PTR(w);
	return 0;
}

void
guard_writer_stop(struct guard_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	while (w->pid > 0 && waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(w);
}
