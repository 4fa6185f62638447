/*
 * io_uring for one event loop's thread. Operations queued during a loop turn go to the kernel
 * together when the owner calls uring_flush before the loop sleeps (one system call for the
 * whole turn instead of one per recv and send), and completions are reaped there too. The
 * ring is set up with DEFER_TASKRUN: the kernel finishes a receive whose socket became
 * readable when we ask for events, batched, instead of interrupting the thread for each.
 * The loop's thread sleeps in the ring (ev_set_waiter), which also polls the loop's epoll fd:
 * a completion or an fd event wakes it at once.
 *
 * Receives take a buffer from a pool when data arrives, so a connection waiting for data
 * holds none; a receive that finds the pool empty grows it, or at its cap waits inside this
 * module for a buffer to come back and is then retried. Every operation started ends in
 * exactly one callback.
 */
#pragma once

#include "core/ev.h"

#include <stdbool.h>
#include <stddef.h>

struct uring;
struct uring_op;

/* res: bytes, 0 at EOF (receive), or -errno (-ECANCELED after uring_cancel); buf: the pool
 * buffer a receive filled, which the owner gives back with uring_buf_put (else NULL). */
typedef void (*uring_cb)(struct uring_op *op, int res, char *buf);

/* The owner's handle for one operation at a time; it must outlive the operation. */
struct uring_op {
	uring_cb cb;
	void *data;
	/* this module's */
	int fd;
	unsigned len; /* a receive's limit */
	bool recv;    /* the operation is a receive (one from the pool can be starved) */
	unsigned gen; /* the pool's generation when the receive was submitted */
	bool starved; /* a receive waiting for a pool buffer, on the starved or done list */
	struct uring_op *next;
};

/* A ring of `entries` submissions, watched by loop, with a pool of receive buffers of
 * bufsize bytes: nbufs at first, nbufs more each time a receive finds none free, up to
 * max_bufs (a power of two); address space for max_bufs is reserved, memory is used only as
 * buffers are. -errno when the kernel offers no usable io_uring (old kernel,
 * io_uring_disabled, a seccomp filter): the caller goes on without. */
int uring_new(struct ev_loop *loop, unsigned entries, unsigned nbufs, unsigned max_bufs,
              size_t bufsize, struct uring **out);
/* NULL-safe. Operations still in the kernel are cancelled without callbacks. */
void uring_free(struct uring *u);
size_t uring_bufsize(const struct uring *u);

/* Receives what fd has, at most len bytes (0 or more than bufsize: bufsize), into a pool
 * buffer. 0 or -EBUSY (no room). */
int uring_recv(struct uring *u, struct uring_op *op, int fd, size_t len);
/* Sends all n bytes of p (MSG_WAITALL: a short result means a failure), with send(2) flags
 * (MSG_MORE) added. With link, the next operation queued starts only once this one succeeded
 * (and fails with -ECANCELED if not). */
int uring_send(struct uring *u, struct uring_op *op, int fd, const char *p, size_t n, int flags,
               bool link);
void uring_buf_put(struct uring *u, char *buf);
/* Ends op's pending operations early: -ECANCELED, or their result if they finished first. */
int uring_cancel(struct uring *u, struct uring_op *op);
/* An idle loop polls its ring up to max_ns before it sleeps, adapting the time to how soon
 * its wake-ups came (0, the default: never), and not while its thread has to wait for a CPU.
 * One ring of the process polls at a time. Called from the ring's thread. */
void uring_set_busy_poll(struct uring *u, unsigned max_ns);
/* Submits what was queued and runs the callbacks of what completed, a few rounds; for the
 * loop's before-sleep hook. Costs nothing when no operation is pending. */
void uring_flush(struct uring *u);
