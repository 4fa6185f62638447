#include "lb_worker.h"

#include "core/cleanup.h"
#include "core/log.h"
#include "core/uring.h"
#include "lb_http.h"
#include "lb_tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* Spare buffers and pipes a worker keeps for the next sessions. */
#define LB_SPARE_BUFS 256
#define LB_SPARE_PIPES 256
#define LB_ACCEPT_BATCH 64
/* io_uring: submissions per turn before an early submit, and receive buffers (LB_BUF_SIZE
 * each, touched only when used): a buffer is held only between a receive and its send, so
 * the pool grows past 256 only while sends are blocked (clients not reading); 4 MiB, at
 * most 64 MiB per worker */
#define LB_RING_ENTRIES 1024
#define LB_RING_BUFS 256
#define LB_RING_BUFS_MAX 4096

/* ---- generations ---- */

void
lb_gen_ref(struct lb_gen *g)
{
	atomic_fetch_add(&g->refs, 1);
}

void
lb_gen_unref(struct lb_gen *g)
{
	if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	for (size_t i = 0; g->pools && i < g->n; i++)
		lb_pool_free(g->pools[i]);
	free(g->pools);
	cfg_free(&lb_config_schema, &g->cfg);
	free(g);
}

static void
lb_wgen_free(struct lb_wgen *wg)
{
	lb_session_drop_idle(wg);
	for (size_t i = 0; wg->bal && i < wg->gen->n; i++)
		balance_free(wg->bal[i]);
	struct lb_wgen **pp = &wg->w->wgens;
	for (; *pp; pp = &(*pp)->wnext)
		if (*pp == wg) {
			*pp = wg->wnext;
			break;
		}
	free(wg->bal);
	free(wg->idle);
	free(wg->idle_off);
	free(wg->idle_n);
	free(wg->qhead);
	free(wg->qtail);
	free(wg->qlen);
	lb_gen_unref(wg->gen);
	free(wg);
}

void
lb_wgen_unref(struct lb_wgen *wg)
{
	if (--wg->refs == 0)
		lb_wgen_free(wg);
}

static int
lb_wgen_new(struct lb_worker *w, struct lb_gen *gen, struct lb_wgen **out)
{
	struct lb_wgen *wg = calloc(1, sizeof(*wg));
	if (!wg)
		return -ENOMEM;
	size_t n = gen->n, total = 0;
	wg->w = w;
	wg->gen = gen;
	wg->refs = 1;
	wg->bal = calloc(n + 1, sizeof(*wg->bal));
	wg->idle_off = calloc(n + 1, sizeof(*wg->idle_off));
	wg->qhead = calloc(n + 1, sizeof(*wg->qhead));
	wg->qtail = calloc(n + 1, sizeof(*wg->qtail));
	wg->qlen = calloc(n + 1, sizeof(*wg->qlen));
	for (size_t i = 0; i < n; i++) {
		wg->idle_off[i] = total;
		total += gen->pools[i]->n;
	}
	wg->idle = calloc(total + 1, sizeof(*wg->idle));
	wg->idle_n = calloc(total + 1, sizeof(*wg->idle_n));
	int r =
	    wg->bal && wg->idle_off && wg->qhead && wg->qtail && wg->qlen && wg->idle && wg->idle_n
	        ? 0
	        : -ENOMEM;
	const struct lb_listener_cfg *lc = gen->cfg.listeners.items;
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = balance_new(lc[i].balance, gen->pools[i], w->seed + i, &wg->bal[i]);
	lb_gen_ref(gen);
	wg->wnext = w->wgens;
	w->wgens = wg;
	if (r < 0) {
		lb_wgen_free(wg);
		return r;
	}
	*out = wg;
	return 0;
}

/* ---- buffers and pipes ---- */

struct lb_bufs *
lb_worker_bufs_get(struct lb_worker *w, size_t csize)
{
	struct lb_bufs *b = w->free_bufs;
	if (b && b->csize == csize) {
		w->free_bufs = b->next;
		w->nfree_bufs--;
	} else {
		b = malloc(sizeof(*b) + csize + LB_HEAD_EXTRA + csize);
		if (!b)
			return NULL;
		b->csize = csize;
		b->c = b->h + csize + LB_HEAD_EXTRA;
	}
	b->next = NULL;
	b->c_start = b->c_end = b->s_start = b->s_end = b->h_len = b->h_sent = 0;
	return b;
}

void
lb_worker_bufs_put(struct lb_worker *w, struct lb_bufs *b)
{
	if (w->nfree_bufs >= LB_SPARE_BUFS || (w->free_bufs && w->free_bufs->csize != b->csize)) {
		free(b);
		return;
	}
	b->next = w->free_bufs;
	w->free_bufs = b;
	w->nfree_bufs++;
}

int
lb_worker_pipe_get(struct lb_worker *w, int *rd, int *wr)
{
	if (w->nfree_pipes) {
		w->nfree_pipes--;
		*rd = w->free_pipes[2 * w->nfree_pipes];
		*wr = w->free_pipes[2 * w->nfree_pipes + 1];
		return 0;
	}
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	*rd = p[0];
	*wr = p[1];
	return 0;
}

void
lb_worker_pipe_put(struct lb_worker *w, int rd, int wr)
{
	if (w->nfree_pipes >= LB_SPARE_PIPES) {
		close(rd);
		close(wr);
		return;
	}
	w->free_pipes[2 * w->nfree_pipes] = rd;
	w->free_pipes[2 * w->nfree_pipes + 1] = wr;
	w->nfree_pipes++;
}

/* ---- accepting ---- */

static bool
lb_worker_full(struct lb_worker *w)
{
	return atomic_load_explicit(w->global_conns, memory_order_relaxed) >= w->global_max;
}

static void
lb_listen_pause(struct lb_listen *L)
{
	if (L->paused)
		return;
	ev_io_stop(L->w->loop, &L->io);
	L->paused = true;
}

void
lb_worker_resume(struct lb_worker *w)
{
	if (lb_worker_full(w))
		return;
	for (size_t i = 0; i < w->nlistens; i++) {
		struct lb_listen *L = &w->listens[i];
		if (L->paused && ev_io_start(w->loop, &L->io) == 0)
			L->paused = false;
	}
}

static void
lb_worker_new_client(struct lb_worker *w, unsigned li, int fd, const struct sockaddr_storage *ss,
                     socklen_t sl)
{
	struct net_addr peer = {0};
	net_addr_from_sockaddr((const struct sockaddr *)ss, sl, &peer);
	net_addr_normalize(&peer);
	struct lb_session *s = lb_session_new(w->cur, li, fd, &peer);
	if (!s)
		return;
	if (s->lc->mode == LB_MODE_HTTP)
		lb_http_start(s);
	else
		lb_tcp_start(s);
}

static void
lb_listen_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct lb_listen *L = io->data;
	const struct lb_pool *pool = L->w->cur->gen->pools[L->li];
	for (int i = 0; i < LB_ACCEPT_BATCH; i++) {
		if (lb_worker_full(L->w) ||
		    (pool->maxclients && atomic_load(&pool->clients) >= pool->maxclients)) {
			lb_listen_pause(L);
			return;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(L->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			lb_worker_new_client(L->w, L->li, fd, &ss, sl);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* out of descriptors: wait for the tick instead of spinning */
			char l[128];
			log_quote(l, sizeof(l), L->w->cur->gen->pools[L->li]->listener);
			log_warn("cannot accept listener=%s error=\"%s\"", l, strerror(errno));
			lb_listen_pause(L);
		}
		return;
	}
}

/* ---- generation switch ---- */

static int
lb_worker_set_listens(struct lb_worker *w, struct lb_gen *gen, const int *fds)
{
	struct lb_listen *nl = calloc(gen->n + 1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < w->nlistens; i++)
		if (!w->listens[i].paused)
			ev_io_stop(w->loop, &w->listens[i].io);
	for (size_t i = 0; i < gen->n; i++) {
		nl[i] = (struct lb_listen){.w = w, .li = (unsigned)i, .fd = fds[i], .paused = true};
		ev_io_init(&nl[i].io, fds[i], EV_READ, lb_listen_io, &nl[i]);
	}
	free(w->listens);
	w->listens = nl;
	w->nlistens = gen->n;
	lb_worker_resume(w);
	return 0;
}

static void
lb_worker_switch(struct lb_worker *w, struct lb_msg *m)
{
	struct lb_wgen *wg;
	int r = lb_wgen_new(w, m->gen, &wg);
	if (r >= 0 && (r = lb_worker_set_listens(w, m->gen, m->fds)) < 0)
		lb_wgen_unref(wg);
	if (r < 0) {
		log_error("worker cannot switch configuration worker=%u error=\"%s\"", w->id,
		          strerror(-r));
		return;
	}
	struct lb_wgen *old = w->cur;
	w->cur = wg;
	if (old) {
		lb_session_drop_idle(old);
		lb_wgen_unref(old);
	}
	for (size_t i = 0; i < m->nclose; i++)
		close(m->close_fds[i]);
}

static void
lb_worker_stop_all(struct lb_worker *w)
{
	/* the kernel cancels what the ring still has, without completions */
	uring_free(w->ring);
	w->ring = NULL;
	lb_session_ring_gone(w);
	while (w->sessions) {
		struct lb_session *s = w->sessions;
		if (s->queued)
			lb_session_unqueue(s);
		s->running = false;
		lb_session_close(s);
	}
	lb_worker_set_listens(w, &(struct lb_gen){0}, NULL);
	if (w->cur)
		lb_wgen_unref(w->cur);
	w->cur = NULL;
	ev_break(w->loop, 0);
}

static void
lb_worker_mail(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct lb_worker *w = io->data;
	uint64_t v;
	if (read(w->efd, &v, sizeof(v)) < 0 && errno == EAGAIN)
		return;
	if (atomic_exchange(&w->poked, 0))
		lb_worker_kick(w);
	pthread_mutex_lock(&w->mu);
	struct lb_msg *m = w->msg;
	w->msg = NULL;
	if (m && m->type == LB_MSG_SWITCH)
		lb_worker_switch(w, m);
	else if (m)
		lb_worker_stop_all(w);
	if (m) {
		w->done = true;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

void
lb_worker_poke(struct lb_worker *w)
{
	if (pthread_equal(pthread_self(), w->thread)) {
		lb_worker_kick(w);
		return;
	}
	uint64_t one = 1;
	/* one wakeup however many slots free before it runs */
	if (!atomic_exchange(&w->poked, 1) && write(w->efd, &one, sizeof(one)) < 0)
		atomic_store(&w->poked, 0);
}

void
lb_worker_send(struct lb_worker *w, struct lb_msg *msg)
{
	uint64_t one = 1;
	pthread_mutex_lock(&w->mu);
	w->msg = msg;
	w->done = false;
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("cannot wake worker=%u error=\"%s\"", w->id, strerror(errno));
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* ---- timers and the thread ---- */

/* Queued sessions try again (and with now_ns, idle server connections are reaped). A wg whose
 * last session ends in its queue is freed: a reference is held across its turn. */
static void
lb_worker_each_wgen(struct lb_worker *w, uint64_t now_ns)
{
	for (struct lb_wgen *wg = w->wgens; wg;) {
		wg->refs++;
		if (now_ns)
			lb_session_reap_idle(wg, now_ns);
		lb_session_run_queue(wg);
		struct lb_wgen *next = wg->wnext;
		lb_wgen_unref(wg);
		wg = next;
	}
}

static void
lb_worker_kick_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct lb_worker *w = t->data;
	struct lb_session *s = w->again;
	w->again = NULL;
	while (s) {
		struct lb_session *next = s->again_next;
		s->again = false;
		lb_session_dispatch(s);
		s = next;
	}
	lb_worker_each_wgen(w, 0);
}

void
lb_worker_kick(struct lb_worker *w)
{
	if (!w->kick.active)
		ev_timer_start(w->loop, &w->kick, 0);
}

static void
lb_worker_flush(struct ev_loop *loop, void *data)
{
	struct lb_worker *w = data;
	lb_session_flush_held(w);
	if (w->ring) {
		/* sessions run by completions send at once: they are past the held flush */
		w->flushing = true;
		uring_flush(w->ring);
		w->flushing = false;
	}
}

static void
lb_worker_tick(struct ev_loop *loop, struct ev_timer *t)
{
	struct lb_worker *w = t->data;
	lb_worker_each_wgen(w, ev_now_ns(loop));
	lb_worker_resume(w);
	ev_timer_start(loop, t, EV_SEC(1));
}

static void *
lb_worker_main(void *arg)
{
	struct lb_worker *w = arg;
	static atomic_bool warned;
	/* made here: the ring's submissions must all come from the thread that waits on it */
	int r = w->want_ring ? uring_new(w->loop, LB_RING_ENTRIES, LB_RING_BUFS, LB_RING_BUFS_MAX,
	                                 LB_BUF_SIZE, &w->ring)
	                     : 0;
	if (r < 0 && !atomic_exchange(&warned, true))
		log_warn("io_uring unavailable, using epoll error=\"%s\"", strerror(-r));
	if (w->ring)
		uring_set_busy_poll(w->ring, w->busy_poll_us * 1000u);
	r = ev_run(w->loop);
	if (r < 0)
		log_error("worker event loop failed worker=%u error=\"%s\"", w->id, strerror(-r));
	return NULL;
}

int
lb_worker_init(struct lb_worker *w, unsigned id, _Atomic int64_t *global_conns, int64_t global_max)
{
	*w = (struct lb_worker){
	    .id = id, .global_conns = global_conns, .global_max = global_max, .efd = -1};
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (getrandom(&w->seed, sizeof(w->seed), 0) != sizeof(w->seed))
		w->seed = (uint64_t)id * 0x9e3779b97f4a7c15ull + 1;
	w->free_pipes = calloc(2 * LB_SPARE_PIPES, sizeof(int));
	if (!w->free_pipes)
		return -ENOMEM;
	int r = ev_loop_new(&w->loop);
	if (r < 0)
		return r;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0)
		return -errno;
	ev_io_init(&w->eio, w->efd, EV_READ, lb_worker_mail, w);
	ev_timer_init(&w->kick, lb_worker_kick_cb, w);
	ev_set_before_sleep(w->loop, lb_worker_flush, w);
	ev_timer_init(&w->tick, lb_worker_tick, w);
	r = ev_io_start(w->loop, &w->eio);
	if (r >= 0)
		r = ev_timer_start(w->loop, &w->tick, EV_SEC(1));
	return r;
}

int
lb_worker_start(struct lb_worker *w)
{
	int r = pthread_create(&w->thread, NULL, lb_worker_main, w);
	if (r)
		return -r;
	w->started = true;
	return 0;
}

void
lb_worker_halt(struct lb_worker *w)
{
	if (w->started) {
		struct lb_msg stop = {.type = LB_MSG_STOP};
		lb_worker_send(w, &stop);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
}

void
lb_worker_destroy(struct lb_worker *w)
{
	lb_worker_halt(w);
	while (w->free_bufs) {
		struct lb_bufs *b = w->free_bufs;
		w->free_bufs = b->next;
		free(b);
	}
	for (size_t i = 0; i < 2 * w->nfree_pipes; i++)
		close(w->free_pipes[i]);
	free(w->free_pipes);
	free(w->listens);
	if (w->loop) {
		ev_io_stop(w->loop, &w->eio);
		ev_timer_stop(w->loop, &w->tick);
		ev_timer_stop(w->loop, &w->kick);
	}
	ev_loop_free(w->loop);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}
