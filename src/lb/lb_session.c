#include "lb_session.h"

#include "core/log.h"
#include "lb_proxyproto.h"
#include "lb_tcp.h"
#include "lb_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ev_loop *
lb_session_loop(const struct lb_session *s)
{
	return s->wg->w->loop;
}

/* ---- a side through the worker's io_uring ---- */

/* Arms a receive of at most len bytes (0: a pool buffer's worth): 0, or -errno (also kept in
 * end, for the next read to report). */
static int
lb_side_ring_arm(struct lb_side *sd, size_t len)
{
	struct lb_side_ring *r = &sd->r;
	if (r->rx_busy || r->stash || r->end <= 0 || sd->fd < 0)
		return 0;
	int e = uring_recv(r->u, &r->rx, sd->fd, len);
	if (e < 0) {
		r->end = e;
		return e;
	}
	r->rx_busy = true;
	r->ops++;
	return 0;
}

/* A receive is armed only when the reader has room, for at most that room: what it brings
 * fits at the next read, so no pool buffer stays held by a reader that stopped (a client that
 * does not read its response). rd is false only while a receive is armed. */
static ssize_t
lb_side_ring_read(struct lb_side *sd, char *p, size_t n)
{
	struct lb_side_ring *r = &sd->r;
	if (r->stash) {
		size_t k = r->len - r->off < n ? r->len - r->off : n;
		memcpy(p, r->stash + r->off, k);
		r->off += (uint32_t)k;
		if (r->off == r->len) {
			uring_buf_put(r->u, r->stash);
			r->stash = NULL;
		}
		return (ssize_t)k;
	}
	if (r->end == 0) {
		sd->rd = false;
		sd->eof = true;
		return 0;
	}
	if (r->direct) {
		r->direct = false;
		ssize_t k = recv(sd->fd, p, n, MSG_DONTWAIT);
		if (k > 0)
			return k;
		if (k == 0 || errno != EAGAIN)
			r->end = k == 0 ? 0 : -errno;
		return lb_side_ring_read(sd, p, n);
	}
	int e = r->end < 0 ? r->end : lb_side_ring_arm(sd, n);
	sd->rd = false;
	if (e < 0) {
		sd->err = true;
		return e;
	}
	return -EAGAIN;
}

/* The first call hands the bytes to the kernel (-EAGAIN); the call after the completion gets
 * its result. */
static ssize_t
lb_side_ring_send(struct lb_side *sd, const char *p, size_t n, int flags)
{
	struct lb_side_ring *r = &sd->r;
	if (r->tx_done) {
		r->tx_done = false;
		if (r->tx_res < 0)
			sd->err = true;
		return r->tx_res;
	}
	sd->wr = false;
	if (r->tx_busy)
		return -EAGAIN;
	int e = uring_send(r->u, &r->tx, sd->fd, p, n, flags, false);
	if (e < 0) {
		sd->err = true;
		return e;
	}
	r->tx_busy = true;
	r->ops++;
	return -EAGAIN;
}

/* A completion of sd's: what it brought waits for the next read or write call. */
static void
lb_side_ring_done(struct lb_side *sd, struct uring_op *op, int res, char *buf)
{
	struct lb_side_ring *r = &sd->r;
	r->ops--;
	if (op == &r->tx) {
		r->tx_busy = false;
		r->tx_done = true;
		r->tx_res = res;
		sd->wr = true;
		return;
	}
	r->rx_busy = false;
	if (buf && res > 0) {
		r->stash = buf;
		r->off = 0;
		r->len = (uint32_t)res;
	} else {
		if (buf)
			uring_buf_put(r->u, buf);
		r->end = res;
	}
	sd->rd = true;
}

static void
lb_side_ring_start(struct lb_side *sd, struct ev_loop *loop, struct uring *u, uring_cb cb,
                   void *data)
{
	if (sd->io.active)
		ev_io_stop(loop, &sd->io);
	sd->ring = true;
	sd->r = (struct lb_side_ring){
	    .u = u, .rx = {.cb = cb, .data = data}, .tx = {.cb = cb, .data = data}, .end = 1};
	sd->rd = sd->wr = true;
}

/* Calls off sd's operations; with no room to ask, a shutdown of the socket ends them. */
static void
lb_side_ring_cancel(struct lb_side *sd)
{
	struct lb_side_ring *r = &sd->r;
	int e = 0;
	if (r->rx_busy)
		e |= uring_cancel(r->u, &r->rx);
	if (r->tx_busy)
		e |= uring_cancel(r->u, &r->tx);
	if (e < 0)
		shutdown(sd->fd, SHUT_RDWR);
}

/* Gives back what sd holds of the ring (nothing when the ring is gone: u NULL). */
static void
lb_side_ring_release(struct lb_side *sd, const struct uring *u)
{
	if (!sd->ring)
		return;
	if (u && sd->r.stash)
		uring_buf_put(sd->r.u, sd->r.stash);
	sd->r.stash = NULL;
	sd->r.ops = 0;
	sd->r.rx_busy = sd->r.tx_busy = false;
}

bool
lb_side_sending(const struct lb_side *sd)
{
	return sd->ring && (sd->r.tx_busy || sd->r.tx_done);
}

bool
lb_side_unread(const struct lb_side *sd)
{
	return sd->ring ? sd->r.stash || sd->r.end <= 0 : sd->rd;
}

/* ---- a side through read(2) and send(2), readiness from epoll ---- */

ssize_t
lb_side_read(struct lb_side *sd, char *p, size_t n)
{
	if (sd->ring)
		return lb_side_ring_read(sd, p, n);
	ssize_t r = read(sd->fd, p, n);
	if (r > 0) {
		/* a short read drained the socket; the next arrival raises a new edge (but a
		 * pending EOF raises none: it was announced with EV_RDHUP) */
		if ((size_t)r < n && !sd->hup)
			sd->rd = false;
		return r;
	}
	if (r == 0) {
		sd->eof = true;
		sd->rd = false;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR) {
		sd->rd = false;
		return -EAGAIN;
	}
	sd->err = true;
	sd->rd = false;
	return -errno;
}

static ssize_t
lb_side_wrote(struct lb_side *sd, ssize_t r, size_t n)
{
	if (r >= 0) {
		if ((size_t)r < n)
			sd->wr = false;
		return r;
	}
	if (errno == EAGAIN || errno == EINTR) {
		sd->wr = false;
		return -EAGAIN;
	}
	sd->err = true;
	sd->wr = false;
	return -errno;
}

ssize_t
lb_side_send(struct lb_side *sd, const char *p, size_t n, int flags)
{
	if (sd->ring)
		return lb_side_ring_send(sd, p, n, flags);
	return lb_side_wrote(sd, send(sd->fd, p, n, MSG_NOSIGNAL | flags), n);
}

ssize_t
lb_side_write(struct lb_side *sd, const char *p, size_t n)
{
	return lb_side_send(sd, p, n, 0);
}

ssize_t
lb_side_writev(struct lb_side *sd, const struct iovec *iov, int n)
{
	if (sd->ring) {
		/* one piece at a time, the next held back (MSG_MORE) to go in the same segment */
		int i = 0, more = 0;
		while (i < n - 1 && !iov[i].iov_len)
			i++;
		for (int j = i + 1; j < n; j++)
			if (iov[j].iov_len)
				more = MSG_MORE;
		return lb_side_ring_send(sd, iov[i].iov_base, iov[i].iov_len, more);
	}
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	return lb_side_wrote(sd, sendmsg(sd->fd, &mh, MSG_NOSIGNAL), total);
}

void
lb_side_close(struct ev_loop *loop, struct lb_side *sd)
{
	if (sd->fd < 0)
		return;
	ev_io_close(loop, &sd->io);
	sd->fd = -1;
}

static void
lb_side_events(struct lb_side *sd, uint32_t events)
{
	if (events & EV_RDHUP)
		sd->hup = true;
	if (events & (EV_READ | EV_ERROR | EV_RDHUP))
		sd->rd = true;
	if (events & (EV_WRITE | EV_ERROR))
		sd->wr = true;
}

/* ---- session life ---- */

/* Takes s off one of the worker's lists, linked through the field at offset off. */
static bool
lb_session_unlink(struct lb_session **pp, struct lb_session *s, size_t off)
{
	for (; *pp; pp = (struct lb_session **)((char *)*pp + off))
		if (*pp == s) {
			*pp = *(struct lb_session **)((char *)s + off);
			return true;
		}
	return false;
}

static void
lb_session_free(struct lb_session *s)
{
	struct lb_worker *w = s->wg->w;
	lb_session_release_server(s, false);
	lb_side_ring_release(&s->c, w->ring);
	lb_side_close(w->loop, &s->c);
	ev_timer_stop(w->loop, &s->timer);
	for (int i = 0; i < 2; i++)
		if (s->pipe_r[i] >= 0) {
			if (s->pipe_fill[i])
				close(s->pipe_r[i]), close(s->pipe_w[i]);
			else
				lb_worker_pipe_put(w, s->pipe_r[i], s->pipe_w[i]);
		}
	if (s->b)
		lb_worker_bufs_put(w, s->b);
	free(s->ring);
	if (s->again)
		lb_session_unlink(&w->again, s, offsetof(struct lb_session, again_next));
	if (s->held && lb_session_unlink(&w->held, s, offsetof(struct lb_session, held_next)))
		w->nheld--;
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	atomic_fetch_sub_explicit(w->global_conns, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&s->pool->clients, 1, memory_order_relaxed);
	lb_wgen_unref(s->wg);
	free(s);
	lb_worker_resume(w);
}

void
lb_session_run(struct lb_session *s)
{
	for (int i = 0; !s->closed; i++) {
		if (i == 64) {
			lb_session_again(s);
			return;
		}
		if (!s->step(s))
			return;
	}
}

/* The client joins the epoll set only once the session waits on it: a request read at
 * accept and answered with a close (an HTTP `Connection: close` client) never costs an
 * epoll_ctl, as in HAProxy. Edge-triggered, the ADD reports what is already ready. */
static void
lb_session_watch(struct lb_session *s)
{
	if (s->closed || s->c.ring || s->c.io.active || (s->waits_client && !s->waits_client(s)))
		return;
	if (ev_io_start(lb_session_loop(s), &s->c.io) < 0)
		lb_session_close(s);
}

/* Every way into a session (io, timer, held and again lists, queue): fn runs with freeing
 * deferred, then the client is watched if the session now waits on it. */
static void
lb_session_enter(struct lb_session *s, void (*fn)(struct lb_session *s))
{
	s->running = true;
	fn(s);
	lb_session_watch(s);
	s->running = false;
	lb_session_settle(s);
}

/* Ring operations that use the session's memory: the client's, and a send to its server
 * (from its buffers). */
static bool
lb_session_ring_busy(const struct lb_session *s)
{
	return s->ring_ops || (s->c.ring && (s->c.r.ops || (s->s && s->s->sd.r.tx_busy)));
}

void
lb_session_settle(struct lb_session *s)
{
	if (s->closed && !s->running && !s->queued && !lb_session_ring_busy(s))
		lb_session_free(s);
}

void
lb_session_dispatch(struct lb_session *s)
{
	if (!s->closed)
		lb_session_enter(s, lb_session_run);
}

void
lb_session_close(struct lb_session *s)
{
	if (!s->closed && s->ring_ops)
		lb_tcp_ring_cancel(s);
	if (!s->closed && s->c.ring) {
		lb_side_ring_cancel(&s->c);
		if (s->s && s->s->sd.ring)
			lb_side_ring_cancel(&s->s->sd);
	}
	s->closed = true;
	lb_session_settle(s);
}

static void
lb_session_client_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct lb_session *s = io->data;
	lb_side_events(&s->c, events);
	lb_session_dispatch(s);
}

static void
lb_session_ring_io(struct uring_op *op, int res, char *buf)
{
	struct lb_session *s = op->data;
	lb_side_ring_done(&s->c, op, res, buf);
	if (s->closed)
		lb_session_settle(s);
	else
		lb_session_dispatch(s);
}

void
lb_session_ring_client(struct lb_session *s, bool direct)
{
	struct lb_worker *w = s->wg->w;
	lb_side_ring_start(&s->c, w->loop, w->ring, lb_session_ring_io, s);
	s->c.r.direct = direct;
}

static void
lb_session_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct lb_session *s = t->data;
	uint64_t now = ev_now_ns(loop);
	if (now < s->deadline) {
		ev_timer_start(loop, t, s->deadline - now);
		return;
	}
	lb_session_enter(s, s->on_timeout);
}

void
lb_session_deadline(struct lb_session *s, uint64_t ms)
{
	struct ev_loop *loop = lb_session_loop(s);
	uint64_t now = ev_now_ns(loop);
	s->deadline = now + ms * 1000000ull;
	if (!s->timer.active || s->timer.when_ns > s->deadline)
		ev_timer_start(loop, &s->timer, s->deadline - now);
}

struct lb_session *
lb_session_new(struct lb_wgen *wg, unsigned li, int fd, const struct net_addr *peer)
{
	struct lb_session *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return NULL;
	}
	struct lb_worker *w = wg->w;
	s->wg = wg;
	wg->refs++;
	s->li = li;
	s->lc = &((const struct lb_listener_cfg *)wg->gen->cfg.listeners.items)[li];
	s->pool = wg->gen->pools[li];
	s->peer = *peer;
	s->pipe_r[0] = s->pipe_r[1] = -1;
	ev_timer_init(&s->timer, lb_session_timer, s);
	s->c = (struct lb_side){.fd = fd};
	ev_io_init(&s->c.io, fd, EV_READ | EV_WRITE | EV_EDGE | EV_RDHUP, lb_session_client_io, s);
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	atomic_fetch_add_explicit(w->global_conns, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->pool->clients, 1, memory_order_relaxed);
	return s;
}

int
lb_session_bufs(struct lb_session *s)
{
	if (s->b)
		return 0;
	size_t csize = s->lc->max_header + 1 > LB_BUF_SIZE ? s->lc->max_header + 1 : LB_BUF_SIZE;
	s->b = lb_worker_bufs_get(s->wg->w, csize);
	if (!s->b)
		return -ENOMEM;
	s->b->spill_off = s->b->spill_len = 0;
	return 0;
}

void
lb_session_bufs_release(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	if (!b || b->c_end != b->c_start || b->s_end != b->s_start || b->h_sent != b->h_len ||
	    b->spill_len)
		return;
	lb_worker_bufs_put(s->wg->w, b);
	s->b = NULL;
}

/* ---- server connections ---- */

/* A connection with ring operations in the kernel is freed after the last of them. */
static void
lb_sconn_free(struct lb_sconn *sc)
{
	struct lb_worker *w = sc->w;
	if (sc->sd.ring && sc->sd.r.ops && w->ring) {
		if (!sc->dead) {
			lb_side_ring_cancel(&sc->sd);
			sc->dead = true;
			sc->owner = NULL;
			sc->wg = NULL;
			sc->next = w->dead;
			w->dead = sc;
		}
		return;
	}
	if (sc->dead) {
		struct lb_sconn **pp = &w->dead;
		while (*pp != sc)
			pp = &(*pp)->next;
		*pp = sc->next;
	}
	lb_side_ring_release(&sc->sd, w->ring);
	lb_side_close(w->loop, &sc->sd);
	free(sc);
}

void
lb_session_ring_gone(struct lb_worker *w)
{
	for (struct lb_session *s = w->sessions; s; s = s->next) {
		s->ring_ops = 0;
		lb_side_ring_release(&s->c, NULL);
		if (s->s)
			lb_side_ring_release(&s->s->sd, NULL);
	}
	while (w->dead)
		lb_sconn_free(w->dead);
}

static void
lb_idle_remove(struct lb_sconn *sc)
{
	struct lb_wgen *wg = sc->wg;
	struct lb_sconn **pp = &wg->idle[wg->idle_off[sc->li] + sc->srv->index];
	for (; *pp; pp = &(*pp)->next)
		if (*pp == sc) {
			*pp = sc->next;
			wg->idle_n[wg->idle_off[sc->li] + sc->srv->index]--;
			return;
		}
}

static void
lb_sconn_ring_io(struct uring_op *op, int res, char *buf)
{
	struct lb_sconn *sc = op->data;
	lb_side_ring_done(&sc->sd, op, res, buf);
	if (sc->dead) {
		if (!sc->sd.r.ops)
			lb_sconn_free(sc);
		return;
	}
	struct lb_session *s = sc->owner;
	if (!s) {
		/* idle: the server closed it, or sent what nobody asked for */
		lb_idle_remove(sc);
		lb_sconn_free(sc);
	} else if (s->closed) {
		lb_session_settle(s);
	} else {
		lb_session_dispatch(s);
	}
}

void
lb_session_ring_server(struct lb_session *s)
{
	struct lb_worker *w = s->wg->w;
	lb_side_ring_start(&s->s->sd, w->loop, w->ring, lb_sconn_ring_io, s->s);
}

static void
lb_sconn_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct lb_sconn *sc = io->data;
	if (!sc->owner) {
		/* idle: the server closed it, or sent what nobody asked for */
		if (events & (EV_READ | EV_ERROR)) {
			lb_idle_remove(sc);
			lb_sconn_free(sc);
		}
		return;
	}
	lb_side_events(&sc->sd, events);
	lb_session_dispatch(sc->owner);
}

static int
lb_sconn_open(struct lb_session *s, struct lb_server *srv, struct lb_sconn **out)
{
	int fd = socket(srv->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->lc->transparent) {
		struct sockaddr_storage ss;
		socklen_t sl;
		struct net_addr src = s->peer;
		src.port = 0;
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 ||
		    net_addr_to_sockaddr(&src, &ss, &sl) < 0 ||
		    bind(fd, (struct sockaddr *)&ss, sl) < 0) {
			int e = -errno;
			close(fd);
			return e ? e : -EINVAL;
		}
	}
	bool pending = connect(fd, (struct sockaddr *)&srv->sa, srv->salen) < 0;
	if (pending && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct lb_sconn *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		close(fd);
		return -ENOMEM;
	}
	*sc = (struct lb_sconn){.sd = {.fd = fd},
	                        .srv = srv,
	                        .wg = s->wg,
	                        .w = s->wg->w,
	                        .li = s->li,
	                        .connecting = pending,
	                        .noreuse = srv->send_proxy != LB_PROXY_NONE || s->lc->transparent};
	ev_io_init(&sc->sd.io, fd, EV_READ | EV_WRITE | EV_EDGE | EV_RDHUP, lb_sconn_io, sc);
	int r = ev_io_start(s->wg->w->loop, &sc->sd.io);
	if (r < 0) {
		lb_sconn_free(sc);
		return r;
	}
	*out = sc;
	return 0;
}

static struct lb_sconn *
lb_idle_take(struct lb_session *s, struct lb_server *srv)
{
	struct lb_wgen *wg = s->wg;
	size_t i = wg->idle_off[s->li] + srv->index;
	struct lb_sconn *sc = wg->idle[i];
	if (!sc)
		return NULL;
	wg->idle[i] = sc->next;
	wg->idle_n[i]--;
	sc->next = NULL;
	sc->sd.rd = sc->sd.eof = sc->sd.err = sc->sd.hup = sc->sd.r.tx_done = false;
	sc->sd.wr = true;
	return sc;
}

static void
lb_session_queue(struct lb_session *s)
{
	struct lb_wgen *wg = s->wg;
	s->queued = true;
	s->qnext = NULL;
	if (wg->qtail[s->li])
		wg->qtail[s->li]->qnext = s;
	else
		wg->qhead[s->li] = s;
	wg->qtail[s->li] = s;
	wg->qlen[s->li]++;
	atomic_fetch_add_explicit(&s->pool->queued, 1, memory_order_relaxed);
	s->state = LB_S_QUEUED;
	lb_session_deadline(s, s->lc->timeout.queue_ms);
}

/* Gives back the failed try's server and connection; 1 to try again, or -EHOSTUNREACH. */
static int
lb_session_fail_try(struct lb_session *s)
{
	struct lb_server *srv = s->srv;
	if (!srv)
		return -EHOSTUNREACH;
	lb_session_passive(s, srv, false);
	s->excl[srv->index / 64] |= 1ull << (srv->index % 64);
	s->last = srv;
	lb_session_release_server(s, false);
	return ++s->tries <= (unsigned)s->lc->retries ? 1 : -EHOSTUNREACH;
}

/* One server for this try: 1 chosen, 0 queue it, -EHOSTUNREACH none. */
static int
lb_session_choose(struct lb_session *s, const struct balance_key *key)
{
	bool full = false;
	uint64_t now = ev_now_ns(lb_session_loop(s));
	struct lb_server *srv;
	if (s->last && !s->lc->redispatch)
		srv = lb_server_usable(s->pool, s->last, now) ? s->last : NULL;
	else
		srv = balance_pick(s->wg->bal[s->li], key, now, s->excl, &full);
	if (!srv)
		return full ? 0 : -EHOSTUNREACH;
	s->srv = srv;
	atomic_fetch_add_explicit(&srv->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&srv->total, 1, memory_order_relaxed);
	return 1;
}

/* sc is the session's server connection from now on; the connect timeout runs. */
static void
lb_session_attach(struct lb_session *s, struct lb_sconn *sc)
{
	sc->owner = s;
	s->s = sc;
	s->state = LB_S_CONNECT;
	lb_session_deadline(s, s->lc->timeout.connect_ms);
}

int
lb_session_assign(struct lb_session *s, const struct balance_key *key)
{
	for (;;) {
		int r = lb_session_choose(s, key);
		if (r == 0) {
			if (atomic_load_explicit(&s->pool->queued, memory_order_relaxed) >=
			    s->lc->queue_max)
				return -ENOBUFS;
			lb_session_queue(s);
			return -EAGAIN;
		}
		if (r < 0)
			return r;
		struct lb_sconn *sc = s->lc->mode == LB_MODE_HTTP ? lb_idle_take(s, s->srv) : NULL;
		if (sc) {
			sc->reused = true;
		} else if (lb_sconn_open(s, s->srv, &sc) < 0) {
			if ((r = lb_session_fail_try(s)) < 0)
				return r;
			continue;
		}
		lb_session_attach(s, sc);
		return 0;
	}
}

int
lb_session_server_failed(struct lb_session *s, const struct balance_key *key)
{
	int r = lb_session_fail_try(s);
	return r < 0 ? r : lb_session_assign(s, key);
}

int
lb_session_reconnect(struct lb_session *s, const struct balance_key *key)
{
	struct lb_sconn *sc = s->s, *fresh;
	s->s = NULL;
	lb_sconn_free(sc);
	if (lb_sconn_open(s, s->srv, &fresh) < 0)
		return lb_session_server_failed(s, key);
	lb_session_attach(s, fresh);
	return 0;
}

int
lb_session_connected(struct lb_session *s)
{
	struct lb_sconn *sc = s->s;
	if (!sc->connecting)
		return 1;
	if (!sc->sd.wr)
		return 0;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(sc->sd.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err)
		return -err;
	sc->connecting = false;
	return 1;
}

static void
lb_idle_put(struct lb_session *s, struct lb_sconn *sc)
{
	struct lb_wgen *wg = s->wg;
	size_t i = wg->idle_off[s->li] + sc->srv->index;
	if (sc->noreuse || sc->sd.eof || sc->sd.err || (sc->sd.ring && lb_side_unread(&sc->sd)) ||
	    wg->idle_n[i] >= LB_IDLE_MAX || wg->w->cur != wg) {
		lb_sconn_free(sc);
		return;
	}
	/* a receive watches it while pooled: the server closing it frees it at once */
	if (sc->sd.ring && lb_side_ring_arm(&sc->sd, 0) < 0) {
		lb_sconn_free(sc);
		return;
	}
	sc->owner = NULL;
	sc->idle_since = ev_now_ns(wg->w->loop);
	sc->next = wg->idle[i];
	wg->idle[i] = sc;
	wg->idle_n[i]++;
}

void
lb_session_release_server(struct lb_session *s, bool reuse)
{
	struct lb_sconn *sc = s->s;
	struct lb_server *srv = s->srv;
	s->s = NULL;
	s->srv = NULL;
	if (sc) {
		if (reuse)
			lb_idle_put(s, sc);
		else
			lb_sconn_free(sc);
	}
	if (srv) {
		atomic_fetch_sub_explicit(&srv->active, 1, memory_order_relaxed);
		/* the freed slot may serve a session queued on another thread */
		if (atomic_load_explicit(&s->pool->queued, memory_order_relaxed) > 0 &&
		    s->pool->wake_all)
			s->pool->wake_all(s->pool->wake_data);
	}
}

/* Reaps idle server connections of wg kept longer than the listener's pool-idle time. */
void
lb_session_reap_idle(struct lb_wgen *wg, uint64_t now_ns)
{
	for (size_t l = 0; l < wg->gen->n; l++) {
		const struct lb_listener_cfg *lc =
		    &((const struct lb_listener_cfg *)wg->gen->cfg.listeners.items)[l];
		uint64_t max = lc->timeout.pool_idle_ms * 1000000ull;
		for (size_t i = 0; i < wg->gen->pools[l]->n; i++) {
			struct lb_sconn **pp = &wg->idle[wg->idle_off[l] + i];
			while (*pp) {
				struct lb_sconn *sc = *pp;
				if (now_ns - sc->idle_since < max) {
					pp = &sc->next;
					continue;
				}
				*pp = sc->next;
				wg->idle_n[wg->idle_off[l] + i]--;
				lb_sconn_free(sc);
			}
		}
	}
}

/* Closes every idle connection of wg (its generation is being left). */
void
lb_session_drop_idle(struct lb_wgen *wg)
{
	lb_session_reap_idle(wg, UINT64_MAX);
}

/* ---- queue, again list, logging ---- */

void
lb_session_unqueue(struct lb_session *s)
{
	struct lb_wgen *wg = s->wg;
	struct lb_session **pp = &wg->qhead[s->li], *prev = NULL;
	for (; *pp; prev = *pp, pp = &(*pp)->qnext)
		if (*pp == s) {
			*pp = s->qnext;
			if (wg->qtail[s->li] == s)
				wg->qtail[s->li] = prev;
			wg->qlen[s->li]--;
			atomic_fetch_sub_explicit(&s->pool->queued, 1, memory_order_relaxed);
			break;
		}
	s->queued = false;
	s->qnext = NULL;
}

void
lb_session_run_queue(struct lb_wgen *wg)
{
	for (size_t l = 0; l < wg->gen->n; l++) {
		for (size_t n = wg->qlen[l]; n && wg->qhead[l]; n--) {
			struct lb_session *s = wg->qhead[l];
			lb_session_unqueue(s);
			if (s->closed) {
				lb_session_free(s);
				continue;
			}
			lb_session_dispatch(s);
		}
	}
}

void
lb_session_again(struct lb_session *s)
{
	struct lb_worker *w = s->wg->w;
	if (s->again)
		return;
	s->again = true;
	s->again_next = w->again;
	w->again = s;
	lb_worker_kick(w);
}

/*
 * Requests are read from every ready client first and sent on at the end of the turn,
 * grouped by server: a backend woken by the first of its requests finds the others already
 * there, where sending each as it is read wakes it (and lets it preempt us) once per request.
 * Measured: a fifth less CPU per keep-alive request for the machine as a whole. Past
 * LB_HELD_MAX held sessions the rest go at once: the list is walked on every insert.
 */
bool
lb_session_hold(struct lb_session *s)
{
	struct lb_worker *w = s->wg->w;
	if (s->held)
		return true;
	if (w->flushing || w->nheld >= LB_HELD_MAX)
		return false;
	struct lb_session **pp = &w->held, **at = NULL;
	for (; *pp; pp = &(*pp)->held_next)
		if ((*pp)->srv == s->srv)
			at = &(*pp)->held_next;
	if (!at)
		at = pp;
	s->held_next = *at;
	*at = s;
	s->held = true;
	w->nheld++;
	return true;
}

void
lb_session_flush_held(struct lb_worker *w)
{
	w->flushing = true;
	for (struct lb_session *s; (s = w->held);) {
		w->held = s->held_next;
		s->held = false;
		w->nheld--;
		lb_session_dispatch(s);
	}
	w->flushing = false;
}

void
lb_session_passive(struct lb_session *s, struct lb_server *srv, bool ok)
{
	int r = lb_pool_passive(s->pool, srv, ok, ev_now_ns(lb_session_loop(s)));
	if (r != LB_PASSIVE_EJECTED && r != LB_PASSIVE_RECOVERED)
		return;
	char lis[256], name[256];
	log_quote(lis, sizeof(lis), s->pool->listener);
	log_quote(name, sizeof(name), srv->name);
	if (r == LB_PASSIVE_EJECTED)
		log_warn("server down listener=%s server=%s reason=\"%u consecutive errors\"", lis,
		         name, s->pool->passive_errors);
	else
		log_info("server up listener=%s server=%s reason=\"answered after cooldown\"", lis,
		         name);
}

void
lb_session_log_no_server(struct lb_session *s)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&s->pool->all_down_logged, &expected, 1)) {
		char lis[256];
		log_quote(lis, sizeof(lis), s->pool->listener);
		log_error("no server available listener=%s", lis);
	}
}

bool
lb_session_trusted(const struct lb_session *s)
{
	const struct net_cidr *c = s->lc->accept_proxy.items;
	for (size_t i = 0; i < s->lc->accept_proxy.n; i++)
		if (net_cidr_match(&c[i], &s->peer))
			return true;
	return false;
}

void
lb_session_rebase(struct lb_session *s)
{
	struct lb_wgen *cur = s->wg->w->cur, *old = s->wg;
	if (!cur || cur == old || s->srv)
		return;
	const struct lb_listener_cfg *lc = cur->gen->cfg.listeners.items;
	for (size_t i = 0; i < cur->gen->n; i++) {
		if (strcmp(lc[i].name, s->lc->name) || lc[i].mode != s->lc->mode)
			continue;
		cur->refs++;
		atomic_fetch_sub(&s->pool->clients, 1);
		atomic_fetch_add(&cur->gen->pools[i]->clients, 1);
		s->wg = cur;
		s->li = (unsigned)i;
		s->lc = &lc[i];
		s->pool = cur->gen->pools[i];
		lb_wgen_unref(old);
		return;
	}
}

bool
lb_session_pump(struct lb_side *from, struct lb_side *to, struct lb_pump *pm)
{
	bool p = false;
	pm->filled = false;
	pm->moved = 0;
	if (*pm->start == *pm->end)
		*pm->start = *pm->end = 0;
	if (from->rd && !from->eof && *pm->end < pm->size) {
		size_t room = pm->size - *pm->end;
		ssize_t n = lb_side_read(from, pm->buf + *pm->end, room);
		if (n > 0) {
			*pm->end += (size_t)n;
			pm->filled = (size_t)n == room;
		}
		p = n != -EAGAIN;
	}
	if (to->wr && *pm->start < *pm->end) {
		ssize_t n = lb_side_write(to, pm->buf + *pm->start, *pm->end - *pm->start);
		if (n > 0) {
			*pm->start += (size_t)n;
			pm->moved = (size_t)n;
			p = true;
		}
	}
	if ((from->eof || from->err) && *pm->start == *pm->end && !to->shut) {
		shutdown(to->fd, SHUT_WR);
		to->shut = true;
		p = true;
	}
	return p;
}

int
lb_session_proxy_header(struct lb_session *s, uint8_t *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	/* our own address is looked up only for servers that want it */
	if (!s->local.family && getsockname(s->c.fd, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_from_sockaddr((struct sockaddr *)&ss, sl, &s->local);
	return lb_proxyproto_build(s->srv->send_proxy, &s->peer, &s->local, out, len);
}
