/*
 * Event loop: epoll for fds, a min-heap of timers on CLOCK_MONOTONIC, signals through
 * signalfd, a hook run before each sleep, optionally a waiter that sleeps instead of epoll. One
 * loop per thread; nothing here is shared. Watchers are owned by the caller and must outlive their
 * registration.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void (*ev_io_cb)(struct ev_loop *loop, struct ev_io *io, uint32_t events);
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_timer *t);
typedef void (*ev_signal_cb)(struct ev_loop *loop, int signo, void *data);
typedef void (*ev_hook_cb)(struct ev_loop *loop, void *data);
/* Sleeps in place of epoll_wait, at most timeout_ms (-1: no limit): 1 when the loop's fds may
 * have events (collected then without waiting), 0 when they have none, or -errno. */
typedef int (*ev_wait_cb)(struct ev_loop *loop, int timeout_ms, void *data);

/* event bits; EV_ERROR is reported (never requested) on EPOLLERR/EPOLLHUP */
enum {
	EV_READ = 1u << 0,
	EV_WRITE = 1u << 1,
	EV_ERROR = 1u << 2,
	/* requested with READ/WRITE: edge-triggered, reported once per change; the owner keeps
	 * the readiness until read/write says EAGAIN (saves an epoll_ctl per state change) */
	EV_EDGE = 1u << 3,
	/* requested and reported: the peer shut its writing (EOF is next after the data); with
	 * EV_EDGE a short read then does not mean the socket is drained */
	EV_RDHUP = 1u << 4,
};

struct ev_io {
	int fd;
	uint32_t events; /* EV_READ | EV_WRITE wanted */
	bool active;
	ev_io_cb cb;
	void *data;
};

struct ev_timer {
	uint64_t when_ns; /* absolute, monotonic */
	size_t heap_idx;  /* position in the heap while active */
	bool active;
	ev_timer_cb cb;
	void *data;
};

int ev_loop_new(struct ev_loop **out);
/* NULL-safe. Closes the epoll and signal fds; restores the signal mask it changed. */
void ev_loop_free(struct ev_loop *loop);

void ev_io_init(struct ev_io *io, int fd, uint32_t events, ev_io_cb cb, void *data);
int ev_io_start(struct ev_loop *loop, struct ev_io *io);
/* Changes the wanted events of an active watcher. */
int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events);
/* Safe from inside any callback, including for a watcher with events still pending. */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);
/* Stops io and closes its fd in one step: closing drops the fd from epoll by itself, so no
 * epoll_ctl is spent (the fd must not have been dup'ed). */
void ev_io_close(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *data);
/* (Re)arms t to fire once after after_ns; a running timer is moved. */
int ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ns);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);

/* Blocks signo in this thread and delivers it through the loop's signalfd. */
int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *data);
/* One hook; cb NULL removes it. Runs before every wait, after callbacks. */
void ev_set_before_sleep(struct ev_loop *loop, ev_hook_cb cb, void *data);
/* One waiter; cb NULL puts epoll_wait back. For an owner that must sleep somewhere else (an
 * io_uring, whose deferred completions wake only a thread waiting in it): it watches
 * ev_epoll_fd and says when the fds have events. */
void ev_set_waiter(struct ev_loop *loop, ev_wait_cb cb, void *data);
int ev_epoll_fd(const struct ev_loop *loop);

/* Runs until ev_break; returns the code given to ev_break, or -errno if epoll fails. */
int ev_run(struct ev_loop *loop);
void ev_break(struct ev_loop *loop, int code);
/* Monotonic time cached at the start of this iteration. */
uint64_t ev_now_ns(const struct ev_loop *loop);
/* Reads CLOCK_MONOTONIC now. */
uint64_t ev_clock_ns(void);

#define EV_MSEC(ms) ((uint64_t)(ms)*1000000ull)
#define EV_SEC(s) ((uint64_t)(s)*1000000000ull)
