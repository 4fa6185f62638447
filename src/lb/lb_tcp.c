#include "lb_tcp.h"

#include "core/log.h"
#include "lb_proxyproto.h"
#include "lb_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* What one splice moves at most: the default pipe capacity. */
#define LB_TCP_PIPE_CAP 65536

static void
lb_tcp_end(struct lb_session *s)
{
	if (s->lc->access_log && !s->closed) {
		char peer[NET_ADDR_STRLEN] = "-";
		net_addr_format(&s->peer, true, peer, sizeof(peer));
		uint64_t ms = (ev_now_ns(lb_session_loop(s)) - s->t_req) / 1000000;
		/* names may hold '"', '=' or '\\': quoted as in http mode, the line parses back */
		char lis[256], srv[256];
		log_quote(lis, sizeof(lis), s->pool->listener);
		log_quote(srv, sizeof(srv), s->log_server ? s->log_server : "-");
		log_info(
		    "access listener=%s client=%s server=%s bytes_in=%llu bytes_out=%llu ms=%llu",
		    lis, peer, srv, (unsigned long long)s->bytes_in,
		    (unsigned long long)s->bytes_out, (unsigned long long)ms);
	}
	lb_session_close(s);
}

/* socket -> pipe: true when something moved or ended. */
static bool
lb_tcp_fill(struct lb_session *s, int d, struct lb_side *from)
{
	if (!from->rd || from->eof || from->err || s->pipe_fill[d] >= LB_TCP_PIPE_CAP)
		return false;
	if (s->pipe_r[d] < 0 && lb_worker_pipe_get(s->wg->w, &s->pipe_r[d], &s->pipe_w[d]) < 0) {
		from->err = true;
		return true;
	}
	ssize_t n = splice(from->fd, NULL, s->pipe_w[d], NULL, LB_TCP_PIPE_CAP - s->pipe_fill[d],
	                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	/* a short splice or EAGAIN may mean the pipe is out of slots (one per skb fragment, so
	 * it fills before 64 KiB), not that the socket is drained: only EAGAIN into an empty pipe
	 * does */
	if (n > 0) {
		s->pipe_fill[d] += (size_t)n;
		return true;
	}
	if (n == 0) {
		from->eof = true;
		from->rd = false;
		return true;
	}
	if (errno != EAGAIN && errno != EINTR) {
		from->err = true;
		from->rd = false;
		return true;
	}
	if (!s->pipe_fill[d])
		from->rd = false;
	return false;
}

/* pipe -> socket */
static bool
lb_tcp_drain(struct lb_session *s, int d, struct lb_side *to)
{
	size_t fill = s->pipe_fill[d];
	if (!fill || !to->wr)
		return false;
	ssize_t n =
	    splice(s->pipe_r[d], NULL, to->fd, NULL, fill, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		s->pipe_fill[d] -= (size_t)n;
		if ((size_t)n < fill)
			to->wr = false;
		if (d == 1)
			s->bytes_out += (uint64_t)n;
		else
			s->bytes_in += (uint64_t)n;
		if (!s->pipe_fill[d]) {
			/* an idle connection holds no pipe */
			lb_worker_pipe_put(s->wg->w, s->pipe_r[d], s->pipe_w[d]);
			s->pipe_r[d] = s->pipe_w[d] = -1;
		}
		return true;
	}
	to->wr = false;
	if (errno != EAGAIN && errno != EINTR)
		to->err = true;
	return to->err;
}

/* Through a buffer (recv/send) while the exchange is small; splice(2) once a read fills the
 * buffer: a bulk transfer, where moving pages beats copying them (HAProxy's splice-auto). */
static bool
lb_tcp_copy(struct lb_session *s, int d, struct lb_side *from, struct lb_side *to)
{
	if (lb_session_bufs(s) < 0) {
		from->err = true;
		return true;
	}
	struct lb_bufs *b = s->b;
	struct lb_pump pm = {.buf = d ? b->s : b->c,
	                     .size = d ? LB_BUF_SIZE : b->csize,
	                     .start = d ? &b->s_start : &b->c_start,
	                     .end = d ? &b->s_end : &b->c_end};
	bool p = lb_session_pump(from, to, &pm);
	if (d)
		s->bytes_out += pm.moved;
	else
		s->bytes_in += pm.moved;
	if (pm.filled)
		s->spliced[d] = true; /* takes over once the buffer is empty */
	return p;
}

static bool
lb_tcp_dir(struct lb_session *s, int d, struct lb_side *from, struct lb_side *to)
{
	struct lb_bufs *b = s->b;
	bool buffered = b && (d ? b->s_start != b->s_end : b->c_start != b->c_end);
	if (!s->spliced[d] || buffered)
		return lb_tcp_copy(s, d, from, to);
	bool p = lb_tcp_fill(s, d, from);
	p |= lb_tcp_drain(s, d, to);
	if ((from->eof || from->err) && !s->pipe_fill[d] && !to->shut) {
		shutdown(to->fd, SHUT_WR);
		to->shut = true;
		p = true;
	}
	return p;
}

static bool
lb_tcp_tunnel(struct lb_session *s)
{
	struct lb_side *sv = &s->s->sd;
	bool p = lb_tcp_dir(s, 0, &s->c, sv);
	p |= lb_tcp_dir(s, 1, sv, &s->c);
	lb_session_bufs_release(s); /* an idle connection holds no buffer */
	if (s->c.err || sv->err || (s->c.shut && sv->shut)) {
		lb_tcp_end(s);
		return false;
	}
	if (p)
		lb_session_deadline(s, s->lc->timeout.tunnel_ms);
	return p;
}

/* ---- the tunnel through io_uring ---- */

/* Direction d's reading side (from) or writing side; d 0 is client to server. */
static struct lb_side *
lb_tcp_side(struct lb_session *s, int d, bool from)
{
	return (d == 0) == from ? &s->c : &s->s->sd;
}

static int
lb_tcp_ring_recv(struct lb_session *s, int d)
{
	int r = uring_recv(s->wg->w->ring, &s->ring->rx[d], lb_tcp_side(s, d, true)->fd, 0);
	if (r >= 0)
		s->ring_ops++;
	return r;
}

static void
lb_tcp_ring_sent(struct lb_session *s, int d, int res)
{
	struct lb_tcp_ring *r = s->ring;
	uring_buf_put(s->wg->w->ring, r->buf[d]);
	r->buf[d] = NULL;
	if (res < 0 || (size_t)res != r->len[d]) {
		lb_tcp_end(s);
		return;
	}
	if (d)
		s->bytes_out += (uint64_t)res;
	else
		s->bytes_in += (uint64_t)res;
}

static void
lb_tcp_ring_eof(struct lb_session *s, int d)
{
	shutdown(lb_tcp_side(s, d, false)->fd, SHUT_WR);
	s->ring->eof[d] = true;
	if (s->ring->eof[!d])
		lb_tcp_end(s);
}

/* Sends what a receive brought, with the next receive linked behind it; a full buffer means
 * a bulk transfer: the other direction's receive is called off so the tunnel can move. */
static void
lb_tcp_ring_received(struct lb_session *s, int d, int res, char *buf)
{
	struct lb_tcp_ring *r = s->ring;
	struct uring *u = s->wg->w->ring;
	if (res <= 0 || s->closed) {
		if (buf)
			uring_buf_put(u, buf);
		if (res == 0 && !s->closed)
			lb_tcp_ring_eof(s, d);
		else if (res < 0 && res != -ECANCELED)
			lb_tcp_end(s);
		return;
	}
	lb_session_deadline(s, s->lc->timeout.tunnel_ms);
	if (r->bulk < 0 && (size_t)res == uring_bufsize(u)) {
		r->bulk = d;
		uring_cancel(u, &r->rx[!d]);
	}
	bool more = r->bulk < 0;
	r->buf[d] = buf;
	r->len[d] = (size_t)res;
	if (uring_send(u, &r->tx[d], lb_tcp_side(s, d, false)->fd, buf, (size_t)res, 0, more) < 0) {
		uring_buf_put(u, buf);
		r->buf[d] = NULL;
		lb_tcp_end(s);
		return;
	}
	s->ring_ops++;
	if (more && lb_tcp_ring_recv(s, d) < 0)
		lb_tcp_end(s);
}

/* Every ring operation is over after a bulk read: the tunnel goes on through epoll, spliced
 * in that direction, with what was passed on so far. */
static void
lb_tcp_ring_leave(struct lb_session *s)
{
	struct lb_tcp_ring *r = s->ring;
	struct lb_side *sv = &s->s->sd;
	s->spliced[r->bulk] = true;
	for (int d = 0; d < 2; d++)
		if (r->eof[d]) {
			lb_tcp_side(s, d, true)->eof = true;
			lb_tcp_side(s, d, false)->shut = true;
		}
	free(r);
	s->ring = NULL;
	s->c.rd = s->c.wr = sv->rd = sv->wr = true;
	if (ev_io_start(lb_session_loop(s), &sv->io) < 0)
		lb_tcp_end(s);
}

static void
lb_tcp_ring_done(struct uring_op *op, int res, char *buf)
{
	struct lb_session *s = op->data;
	struct lb_tcp_ring *r = s->ring;
	s->ring_ops--;
	s->running = true;
	if (op == &r->tx[0] || op == &r->tx[1])
		lb_tcp_ring_sent(s, op == &r->tx[1], res);
	else
		lb_tcp_ring_received(s, op == &r->rx[1], res, buf);
	s->running = false;
	if (!s->closed && r->bulk >= 0 && !s->ring_ops) {
		lb_tcp_ring_leave(s);
		lb_session_dispatch(s);
		return;
	}
	lb_session_settle(s);
}

/* Neither side stays in the epoll set: the ring watches them from now on. */
static int
lb_tcp_ring_start(struct lb_session *s)
{
	struct lb_tcp_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->bulk = -1;
	for (int d = 0; d < 2; d++)
		r->rx[d] = r->tx[d] = (struct uring_op){.cb = lb_tcp_ring_done, .data = s};
	s->ring = r;
	struct ev_loop *loop = lb_session_loop(s);
	if (s->c.io.active)
		ev_io_stop(loop, &s->c.io);
	if (s->s->sd.io.active)
		ev_io_stop(loop, &s->s->sd.io);
	int e = lb_tcp_ring_recv(s, 0);
	return e < 0 ? e : lb_tcp_ring_recv(s, 1);
}

void
lb_tcp_ring_cancel(struct lb_session *s)
{
	struct uring *u = s->wg->w->ring;
	if (!s->ring || !u)
		return;
	int r = 0;
	for (int d = 0; d < 2; d++)
		r |= uring_cancel(u, &s->ring->rx[d]) | uring_cancel(u, &s->ring->tx[d]);
	/* no room to ask: the sockets' shutdown ends their operations as well */
	if (r < 0) {
		shutdown(s->c.fd, SHUT_RDWR);
		shutdown(s->s->sd.fd, SHUT_RDWR);
	}
}

/* A PROXY header from a trusted peer, read without buffering: 1 done, 0 wait, -1 bad. */
static int
lb_tcp_proxy_header(struct lb_session *s)
{
	uint8_t buf[LB_PROXYPROTO_MAX];
	struct net_addr src, dst;
	if (!s->c.rd)
		return 0;
	ssize_t n = recv(s->c.fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		s->c.rd = false;
		return 0;
	}
	if (n <= 0)
		return -1;
	int r = lb_proxyproto_parse(buf, (size_t)n, &src, &dst);
	if (r == 0 && (size_t)n < sizeof(buf)) {
		s->c.rd = false; /* the rest comes with the next edge */
		return 0;
	}
	if (r <= 0 || recv(s->c.fd, buf, (size_t)r, 0) != r)
		return -1;
	if (src.family)
		s->peer = src;
	s->proxy_pending = false;
	return 1;
}

static bool
lb_tcp_assign(struct lb_session *s, int r)
{
	if (r == -EAGAIN)
		return false;
	if (r < 0) {
		if (r != -ENOBUFS)
			lb_session_log_no_server(s);
		lb_tcp_end(s);
		return false;
	}
	s->log_server = s->srv->name;
	return true;
}

static bool
lb_tcp_connect_step(struct lb_session *s)
{
	struct balance_key key = {.client = &s->peer};
	int r = lb_session_connected(s);
	if (r == 0)
		return false;
	if (r < 0)
		return lb_tcp_assign(s, lb_session_server_failed(s, &key));
	if (s->srv->send_proxy != LB_PROXY_NONE) {
		uint8_t pp[LB_PROXYPROTO_MAX];
		int n = lb_session_proxy_header(s, pp, sizeof(pp));
		/* a fresh socket's buffer takes a header this small whole */
		if (n <= 0 || send(s->s->sd.fd, pp, (size_t)n, MSG_NOSIGNAL) != n) {
			lb_tcp_end(s);
			return false;
		}
	}
	lb_session_passive(s, s->srv, true);
	s->state = LB_S_TUNNEL;
	lb_session_deadline(s, s->lc->timeout.tunnel_ms);
	if (s->wg->w->ring && lb_tcp_ring_start(s) < 0) {
		lb_tcp_end(s);
		return false;
	}
	return true;
}

static bool
lb_tcp_step(struct lb_session *s)
{
	struct balance_key key = {.client = &s->peer};
	switch (s->state) {
	case LB_S_IDLE: {
		int r = s->proxy_pending ? lb_tcp_proxy_header(s) : 1;
		if (r < 0)
			lb_session_close(s);
		if (r <= 0)
			return false;
		s->state = LB_S_QUEUED;
		return lb_tcp_assign(s, lb_session_assign(s, &key));
	}
	case LB_S_QUEUED:
		return !s->queued && lb_tcp_assign(s, lb_session_assign(s, &key));
	case LB_S_CONNECT:
		return lb_tcp_connect_step(s);
	default:
		return !s->ring && lb_tcp_tunnel(s);
	}
}

static void
lb_tcp_timeout(struct lb_session *s)
{
	struct balance_key key = {.client = &s->peer};
	if (s->state == LB_S_QUEUED)
		lb_session_unqueue(s);
	if (s->state != LB_S_CONNECT) {
		lb_tcp_end(s);
		return;
	}
	if (lb_tcp_assign(s, lb_session_server_failed(s, &key)))
		lb_session_run(s);
}

/* Not while a server is found and connected (nothing is read then), nor while the ring
 * watches it. */
static bool
lb_tcp_waits_client(const struct lb_session *s)
{
	return !s->ring && s->state != LB_S_QUEUED && s->state != LB_S_CONNECT;
}

void
lb_tcp_start(struct lb_session *s)
{
	s->step = lb_tcp_step;
	s->waits_client = lb_tcp_waits_client;
	s->on_timeout = lb_tcp_timeout;
	s->state = LB_S_IDLE;
	s->t_req = ev_now_ns(lb_session_loop(s));
	s->proxy_pending = lb_session_trusted(s);
	lb_session_deadline(s, s->lc->timeout.request_ms);
	lb_session_dispatch(s);
}
