#include "ev.h"

#include "cleanup.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 64

struct ev_sig {
	ev_signal_cb cb;
	void *data;
};

struct ev_loop {
	int epfd;
	uint64_t now_ns;
	bool broke;
	int break_code;

	/*
	 * The current epoll_wait batch lives here so ev_io_stop can forget entries that are
	 * still to be dispatched: their watcher may be freed right after the stop.
	 */
	struct epoll_event batch[EV_BATCH];
	int batch_len;

	struct ev_timer **heap;
	size_t heap_len;
	size_t heap_cap;

	int sigfd;
	struct ev_io sig_io;
	sigset_t sig_set;
	sigset_t sig_orig_mask;
	bool sig_mask_saved;
	struct ev_sig sigs[NSIG];

	ev_hook_cb before_sleep;
	void *before_sleep_data;
	ev_wait_cb waiter;
	void *waiter_data;
};

uint64_t
ev_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
ev_now_ns(const struct ev_loop *loop)
{
	return loop->now_ns;
}

int
ev_loop_new(struct ev_loop **out)
{
	_cleanup_free_ struct ev_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->sigfd = -1;
	sigemptyset(&loop->sig_set);
	loop->now_ns = ev_clock_ns();
	*out = TAKE_PTR(loop);
	return 0;
}

void
ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	if (loop->sig_mask_saved)
		pthread_sigmask(SIG_SETMASK, &loop->sig_orig_mask, NULL);
	free(loop->heap);
	free(loop);
}

/* ---- fd watchers ---- */

static uint32_t
ev_to_epoll(uint32_t events)
{
	return ((events & EV_READ) ? EPOLLIN : 0) | ((events & EV_WRITE) ? EPOLLOUT : 0) |
	       ((events & EV_EDGE) ? EPOLLET : 0) | ((events & EV_RDHUP) ? EPOLLRDHUP : 0);
}

/* Errors and hangups also report the wanted directions: the next read or write sees them. */
static uint32_t
ev_from_epoll(uint32_t ep, uint32_t wanted)
{
	uint32_t got = ((ep & EPOLLIN) ? EV_READ : 0) | ((ep & EPOLLOUT) ? EV_WRITE : 0) |
	               ((ep & EPOLLRDHUP) ? EV_RDHUP : 0);
	if (ep & (EPOLLERR | EPOLLHUP))
		got |= EV_ERROR | wanted;
	return got & (wanted | EV_ERROR) & ~(uint32_t)EV_EDGE;
}

void
ev_io_init(struct ev_io *io, int fd, uint32_t events, ev_io_cb cb, void *data)
{
	*io = (struct ev_io){.fd = fd, .events = events, .cb = cb, .data = data};
}

int
ev_io_start(struct ev_loop *loop, struct ev_io *io)
{
	if (io->active)
		return ev_io_set(loop, io, io->events);
	struct epoll_event ev = {.events = ev_to_epoll(io->events), .data.ptr = io};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
		return -errno;
	io->active = true;
	return 0;
}

int
ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	if (io->active) {
		struct epoll_event ev = {.events = ev_to_epoll(events), .data.ptr = io};
		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
			return -errno;
	}
	io->events = events;
	return 0;
}

static void
ev_io_forget(struct ev_loop *loop, struct ev_io *io)
{
	io->active = false;
	for (int i = 0; i < loop->batch_len; i++)
		if (loop->batch[i].data.ptr == io)
			loop->batch[i].data.ptr = NULL;
}

void
ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
	if (!io->active)
		return;
	/* fails only when the fd was already closed, which removed it from the set anyway */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	ev_io_forget(loop, io);
}

void
ev_io_close(struct ev_loop *loop, struct ev_io *io)
{
	if (io->active)
		ev_io_forget(loop, io);
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

/* ---- timers: binary min-heap on when_ns ---- */

static void
ev_heap_put(struct ev_loop *loop, size_t idx, struct ev_timer *t)
{
	loop->heap[idx] = t;
	t->heap_idx = idx;
}

static void
ev_heap_up(struct ev_loop *loop, size_t idx)
{
	struct ev_timer *t = loop->heap[idx];
	while (idx > 0) {
		size_t parent = (idx - 1) / 2;
		if (loop->heap[parent]->when_ns <= t->when_ns)
			break;
		ev_heap_put(loop, idx, loop->heap[parent]);
		idx = parent;
	}
	ev_heap_put(loop, idx, t);
}

static void
ev_heap_down(struct ev_loop *loop, size_t idx)
{
	struct ev_timer *t = loop->heap[idx];
	for (;;) {
		size_t child = 2 * idx + 1;
		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    loop->heap[child + 1]->when_ns < loop->heap[child]->when_ns)
			child++;
		if (t->when_ns <= loop->heap[child]->when_ns)
			break;
		ev_heap_put(loop, idx, loop->heap[child]);
		idx = child;
	}
	ev_heap_put(loop, idx, t);
}

/* A moved or replaced entry may have to go either way. */
static void
ev_heap_fix(struct ev_loop *loop, size_t idx)
{
	if (idx > 0 && loop->heap[(idx - 1) / 2]->when_ns > loop->heap[idx]->when_ns)
		ev_heap_up(loop, idx);
	else
		ev_heap_down(loop, idx);
}

static int
ev_heap_push(struct ev_loop *loop, struct ev_timer *t)
{
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct ev_timer **heap = reallocarray(loop->heap, cap, sizeof(*heap));
		if (!heap)
			return -ENOMEM;
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	ev_heap_put(loop, loop->heap_len++, t);
	ev_heap_up(loop, loop->heap_len - 1);
	return 0;
}

static bool
ev_timer_in_heap(const struct ev_loop *loop, const struct ev_timer *t)
{
	return t->active && t->heap_idx < loop->heap_len && loop->heap[t->heap_idx] == t;
}

void
ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *data)
{
	*t = (struct ev_timer){.cb = cb, .data = data};
}

int
ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ns)
{
	/* the fresh clock, not the cached one: a timer must never fire before after_ns */
	uint64_t now = ev_clock_ns();
	t->when_ns = after_ns > UINT64_MAX - now ? UINT64_MAX : now + after_ns;
	if (ev_timer_in_heap(loop, t)) {
		ev_heap_fix(loop, t->heap_idx);
		return 0;
	}
	int r = ev_heap_push(loop, t);
	if (r < 0)
		return r;
	t->active = true;
	return 0;
}

void
ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	if (!ev_timer_in_heap(loop, t))
		return;
	size_t idx = t->heap_idx;
	struct ev_timer *last = loop->heap[--loop->heap_len];
	if (idx < loop->heap_len) {
		ev_heap_put(loop, idx, last);
		ev_heap_fix(loop, idx);
	}
	t->active = false;
}

static void
ev_run_timers(struct ev_loop *loop)
{
	while (loop->heap_len > 0 && loop->heap[0]->when_ns <= loop->now_ns) {
		struct ev_timer *t = loop->heap[0];
		ev_timer_stop(loop, t);
		t->cb(loop, t);
		if (loop->broke)
			return;
	}
}

/* Rounded up: epoll counts whole milliseconds and a timer must not fire early. */
static int
ev_timeout_ms(const struct ev_loop *loop)
{
	if (loop->heap_len == 0)
		return -1;
	uint64_t now = ev_clock_ns();
	uint64_t when = loop->heap[0]->when_ns;
	if (when <= now)
		return 0;
	uint64_t ms = (when - now + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ---- signals ---- */

/* One siginfo per read so a break leaves the rest queued in the signalfd, not lost. */
static void
ev_signal_read(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct signalfd_siginfo si;
	while (!loop->broke && read(loop->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		struct ev_sig *s = &loop->sigs[si.ssi_signo < NSIG ? si.ssi_signo : 0];
		if (s->cb)
			s->cb(loop, (int)si.ssi_signo, s->data);
	}
}

static int
ev_signal_fd_update(struct ev_loop *loop, const sigset_t *set)
{
	int fd = signalfd(loop->sigfd, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (loop->sigfd >= 0)
		return 0;
	ev_io_init(&loop->sig_io, fd, EV_READ, ev_signal_read, NULL);
	int r = ev_io_start(loop, &loop->sig_io);
	if (r < 0) {
		close(fd);
		return r;
	}
	loop->sigfd = fd;
	return 0;
}

int
ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *data)
{
	if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP || !cb)
		return -EINVAL;
	sigset_t set = loop->sig_set;
	sigaddset(&set, signo);
	/* the fd first: a signal blocked without a reader would stay pending forever */
	int r = ev_signal_fd_update(loop, &set);
	if (r < 0)
		return r;
	sigset_t one, old;
	sigemptyset(&one);
	sigaddset(&one, signo);
	r = pthread_sigmask(SIG_BLOCK, &one, &old);
	if (r != 0)
		return -r;
	if (!loop->sig_mask_saved) {
		loop->sig_orig_mask = old;
		loop->sig_mask_saved = true;
	}
	loop->sig_set = set;
	loop->sigs[signo] = (struct ev_sig){.cb = cb, .data = data};
	return 0;
}

void
ev_set_before_sleep(struct ev_loop *loop, ev_hook_cb cb, void *data)
{
	loop->before_sleep = cb;
	loop->before_sleep_data = cb ? data : NULL;
}

/* ---- running ---- */

void
ev_set_waiter(struct ev_loop *loop, ev_wait_cb cb, void *data)
{
	loop->waiter = cb;
	loop->waiter_data = cb ? data : NULL;
}

int
ev_epoll_fd(const struct ev_loop *loop)
{
	return loop->epfd;
}

void
ev_break(struct ev_loop *loop, int code)
{
	loop->broke = true;
	loop->break_code = code;
}

static void
ev_dispatch_io(struct ev_loop *loop)
{
	for (int i = 0; i < loop->batch_len && !loop->broke; i++) {
		struct ev_io *io = loop->batch[i].data.ptr;
		if (!io)
			continue;
		uint32_t got = ev_from_epoll(loop->batch[i].events, io->events);
		if (got)
			io->cb(loop, io, got);
	}
	loop->batch_len = 0;
}

/* One iteration: hook, wait, fd callbacks, due timers. */
static int
ev_iterate(struct ev_loop *loop)
{
	if (loop->before_sleep) {
		loop->before_sleep(loop, loop->before_sleep_data);
		if (loop->broke)
			return 0;
	}
	int n = 0;
	if (!loop->waiter) {
		n = epoll_wait(loop->epfd, loop->batch, EV_BATCH, ev_timeout_ms(loop));
	} else {
		int r = loop->waiter(loop, ev_timeout_ms(loop), loop->waiter_data);
		if (r < 0 && r != -EINTR)
			return r;
		if (r > 0)
			n = epoll_wait(loop->epfd, loop->batch, EV_BATCH, 0);
	}
	if (n < 0 && errno != EINTR)
		return -errno;
	loop->batch_len = n < 0 ? 0 : n;
	loop->now_ns = ev_clock_ns();
	ev_dispatch_io(loop);
	if (!loop->broke)
		ev_run_timers(loop);
	return 0;
}

int
ev_run(struct ev_loop *loop)
{
	loop->broke = false;
	loop->now_ns = ev_clock_ns();
	while (!loop->broke) {
		int r = ev_iterate(loop);
		if (r < 0)
			return r;
	}
	return loop->break_code;
}
