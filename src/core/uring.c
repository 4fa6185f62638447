#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define URING_BGID 0
/* submit-and-reap rounds per flush before the loop gets a turn for its other events */
#define URING_ROUNDS 16

struct uring {
	struct io_uring ring;
	struct ev_loop *loop;
	/* the loop's epoll fd, watched by a poll in the ring: the thread sleeps in the ring */
	struct uring_op epoll_op;
	bool epoll_armed, epoll_ready;
	struct io_uring_buf_ring *br;
	char *bufs;     /* max buffers of address space, touched only as buffers are used */
	unsigned nbufs; /* buffers added at a time */
	unsigned added; /* buffers in the pool so far */
	unsigned max;
	unsigned gen; /* counts buffers given to the kernel, so a receive sees if one came since */
	size_t bufsize;
	struct uring_op *starved, **starved_tail;
	struct uring_op *done;         /* starved receives cancelled or failed, to call back */
	unsigned poll_ns, poll_max_ns; /* busy-poll budget before sleeping, and its cap */
	/* the thread's /proc schedstat: time it waited for a CPU says the CPUs are wanted */
	int sched_fd;
	uint64_t sched_at, sched_delay;
	bool contended;
};

/* rings of this process busy-polling now: at most one, so polling never takes every CPU */
static atomic_int uring_spinners;

/* Adds up to nbufs more buffers to the pool: false when it is at its size cap. */
static bool
uring_pool_grow(struct uring *u)
{
	if (u->added >= u->max)
		return false;
	int mask = io_uring_buf_ring_mask(u->max), n = 0;
	for (; n < (int)u->nbufs && u->added < u->max; n++, u->added++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)u->added * u->bufsize,
		                      (unsigned)u->bufsize, (unsigned short)u->added, mask, n);
	io_uring_buf_ring_advance(u->br, n);
	u->gen++;
	return true;
}

static int
uring_pool(struct uring *u)
{
	u->br = mmap(NULL, u->max * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
	             MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return -errno;
	}
	u->bufs = mmap(NULL, u->max * u->bufsize, PROT_READ | PROT_WRITE,
	               MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (u->bufs == MAP_FAILED) {
		u->bufs = NULL;
		return -errno;
	}
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uintptr_t)u->br, .ring_entries = u->max, .bgid = URING_BGID};
	int r = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (r < 0)
		return r;
	io_uring_buf_ring_init(u->br);
	uring_pool_grow(u);
	return 0;
}

static void uring_epoll_cb(struct uring_op *op, int res, char *buf);
static int uring_wait(struct ev_loop *loop, int timeout_ms, void *data);

int
uring_new(struct ev_loop *loop, unsigned entries, unsigned nbufs, unsigned max_bufs, size_t bufsize,
          struct uring **out)
{
	if (!nbufs || nbufs > max_bufs || (max_bufs & (max_bufs - 1)) || max_bufs > 32768 ||
	    !bufsize || bufsize > UINT32_MAX)
		return -EINVAL;
	struct uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->epoll_op = (struct uring_op){.cb = uring_epoll_cb, .data = u};
	u->nbufs = nbufs;
	u->max = max_bufs;
	u->bufsize = bufsize;
	u->starved_tail = &u->starved;
	u->sched_fd = -1;
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
	                                     IORING_SETUP_DEFER_TASKRUN |
	                                     IORING_SETUP_TASKRUN_FLAG};
	int r = io_uring_queue_init_params(entries, &u->ring, &p);
	if (r < 0) {
		free(u);
		return r;
	}
	r = uring_pool(u);
	if (r >= 0)
		ev_set_waiter(loop, uring_wait, u);
	if (r < 0) {
		uring_free(u);
		return r;
	}
	*out = u;
	return 0;
}

void
uring_free(struct uring *u)
{
	if (!u)
		return;
	ev_set_waiter(u->loop, NULL, NULL);
	if (u->sched_fd >= 0)
		close(u->sched_fd);
	io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->max * sizeof(struct io_uring_buf));
	if (u->bufs)
		munmap(u->bufs, u->max * u->bufsize);
	free(u);
}

size_t
uring_bufsize(const struct uring *u)
{
	return u->bufsize;
}

/* need: entries the caller is about to queue together (a linked pair must not be split by a
 * submission) */
static struct io_uring_sqe *
uring_sqe(struct uring *u, unsigned need)
{
	if (io_uring_sq_space_left(&u->ring) < need)
		io_uring_submit(&u->ring);
	return io_uring_get_sqe(&u->ring);
}

int
uring_recv(struct uring *u, struct uring_op *op, int fd, size_t len)
{
	struct io_uring_sqe *sqe = uring_sqe(u, 1);
	if (!sqe)
		return -EBUSY;
	if (!len || len > u->bufsize)
		len = u->bufsize;
	/* with a selected buffer the kernel reads at most the smaller of len and its size */
	io_uring_prep_recv(sqe, fd, NULL, len, 0);
	/* callers receive when they have just found nothing, or just sent a request whose answer
	 * cannot be there yet: waiting for readiness first saves a receive that would fail */
	sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data(sqe, op);
	op->fd = fd;
	op->len = (unsigned)len;
	op->recv = true;
	op->gen = u->gen;
	op->starved = false;
	return 0;
}

int
uring_send(struct uring *u, struct uring_op *op, int fd, const char *p, size_t n, int flags,
           bool link)
{
	struct io_uring_sqe *sqe = uring_sqe(u, link ? 2 : 1);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, fd, p, n, MSG_NOSIGNAL | MSG_WAITALL | flags);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data(sqe, op);
	op->recv = false;
	return 0;
}

static void
uring_done_push(struct uring *u, struct uring_op *op)
{
	op->starved = true;
	op->next = u->done;
	u->done = op;
}

void
uring_buf_put(struct uring *u, char *buf)
{
	size_t bid = (size_t)(buf - u->bufs) / u->bufsize;
	io_uring_buf_ring_add(u->br, buf, (unsigned)u->bufsize, (unsigned short)bid,
	                      io_uring_buf_ring_mask(u->max), 0);
	io_uring_buf_ring_advance(u->br, 1);
	u->gen++;
	struct uring_op *op = u->starved;
	if (!op)
		return;
	u->starved = op->next;
	if (!u->starved)
		u->starved_tail = &u->starved;
	if (uring_recv(u, op, op->fd, op->len) < 0)
		uring_done_push(u, op);
}

int
uring_cancel(struct uring *u, struct uring_op *op)
{
	if (op->starved) {
		struct uring_op **pp = &u->starved;
		while (*pp && *pp != op)
			pp = &(*pp)->next;
		if (!*pp)
			return 0; /* already on the done list */
		*pp = op->next;
		if (u->starved_tail == &op->next)
			u->starved_tail = pp;
		uring_done_push(u, op);
		return 0;
	}
	struct io_uring_sqe *sqe = uring_sqe(u, 1);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, op, IORING_ASYNC_CANCEL_ALL);
	/* its own completion (the count, or -ENOENT) is of no interest: user data NULL */
	io_uring_sqe_set_data(sqe, NULL);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return 0;
}

static void
uring_deliver(struct uring *u, struct uring_op *op, int res, unsigned flags)
{
	char *buf = NULL;
	if (flags & IORING_CQE_F_BUFFER)
		buf = u->bufs + (size_t)(flags >> IORING_CQE_BUFFER_SHIFT) * u->bufsize;
	else if (res == -ENOBUFS && op->recv) {
		/* data came but the pool was empty: again at once if a buffer came since, or with
		 * a bigger pool; at its cap, wait for a buffer to come back */
		if ((op->gen != u->gen || uring_pool_grow(u)) &&
		    uring_recv(u, op, op->fd, op->len) == 0)
			return;
		op->starved = true;
		op->next = NULL;
		*u->starved_tail = op;
		u->starved_tail = &op->next;
		return;
	}
	op->cb(op, res, buf);
}

static void
uring_reap(struct uring *u)
{
	struct io_uring_cqe *cqe;
	while (io_uring_cq_ready(&u->ring) && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct uring_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;
		io_uring_cqe_seen(&u->ring, cqe);
		if (op)
			uring_deliver(u, op, res, flags);
	}
	for (struct uring_op *op; (op = u->done);) {
		u->done = op->next;
		op->starved = false;
		op->cb(op, -ECANCELED, NULL);
	}
}

/* Work the kernel finishes when asked for events (IORING_SQ_TASKRUN), or an overflow to flush. */
static bool
uring_kernel_work(struct uring *u)
{
	return IO_URING_READ_ONCE(*u->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

/* Completions to reap, now or once the kernel has run its work. */
static bool
uring_has_results(struct uring *u)
{
	return io_uring_cq_ready(&u->ring) || u->done || uring_kernel_work(u);
}

void
uring_flush(struct uring *u)
{
	for (int i = 0; i < URING_ROUNDS && (io_uring_sq_ready(&u->ring) || uring_has_results(u));
	     i++) {
		/* completions the waiter's io_uring_enter posted need no other call to be reaped */
		if (io_uring_sq_ready(&u->ring) || uring_kernel_work(u))
			io_uring_submit_and_get_events(&u->ring);
		uring_reap(u);
	}
	if (io_uring_sq_ready(&u->ring))
		io_uring_submit(&u->ring);
}

static void
uring_epoll_cb(struct uring_op *op, int res, char *buf)
{
	struct uring *u = op->data;
	u->epoll_armed = false;
	u->epoll_ready = true;
}

void
uring_set_busy_poll(struct uring *u, unsigned max_ns)
{
	u->poll_max_ns = max_ns;
	u->poll_ns = 0;
	if (max_ns && u->sched_fd < 0)
		u->sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
}

/* Polling pays only while a CPU would otherwise idle: when this thread has waited for a CPU
 * for more than a tenth of the last millisecond (its yields let others run, or it was
 * preempted), the CPUs are wanted, and polling would take from servers and clients what it
 * saves. Without schedstat (a kernel without CONFIG_SCHED_INFO) polling is not gated. */
static bool
uring_cpus_contended(struct uring *u, uint64_t now)
{
	if (u->sched_fd < 0 || now - u->sched_at < 1000000)
		return u->contended;
	char b[96];
	ssize_t n = pread(u->sched_fd, b, sizeof(b) - 1, 0);
	if (n <= 0)
		return u->contended;
	b[n] = '\0';
	char *p = strchr(b, ' ');
	uint64_t delay = p ? strtoull(p + 1, NULL, 10) : 0;
	u->contended = u->sched_at && (delay - u->sched_delay) * 10 > now - u->sched_at;
	u->sched_at = now;
	u->sched_delay = delay;
	return u->contended;
}

/* As the kernel's haltpoll governor: a sleep that ended within the cap says polling that long
 * would have caught its wake-up, so the budget grows towards it; a longer one (an idle worker)
 * puts it back to 0, so a quiet balancer never polls. */
static void
uring_poll_adapt(struct uring *u, uint64_t slept_ns)
{
	if (slept_ns > u->poll_max_ns)
		u->poll_ns = 0;
	else if (slept_ns > u->poll_ns)
		u->poll_ns = u->poll_ns ? u->poll_ns * 2 : u->poll_max_ns / 4;
	if (u->poll_ns > u->poll_max_ns)
		u->poll_ns = u->poll_max_ns;
}

static inline void
uring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Polls for completions (and the epoll set, which the ring watches) for the budget: waking a
 * sleeping thread costs tens of microseconds on a VM, more than a light load's whole hop. Yields
 * now and then so a thread that wants this CPU gets it. true: something came. */
static bool
uring_spin(struct uring *u, int timeout_ms)
{
	int idle = 0;
	if (!u->poll_ns || !timeout_ms)
		return false;
	uint64_t budget = u->poll_ns;
	if (timeout_ms > 0 && budget > (uint64_t)timeout_ms * 1000000)
		budget = (uint64_t)timeout_ms * 1000000; /* a timer due sooner is not made late */
	uint64_t now = ev_clock_ns(), end = now + budget;
	if (uring_cpus_contended(u, now) ||
	    !atomic_compare_exchange_strong(&uring_spinners, &idle, 1))
		return false;
	if (io_uring_sq_ready(&u->ring))
		io_uring_submit(&u->ring);
	bool hit = false;
	for (unsigned i = 1; now < end && !(hit = uring_has_results(u)); i++) {
		uring_cpu_relax();
		if (!(i % 64))
			sched_yield();
		now = ev_clock_ns();
	}
	atomic_store(&uring_spinners, 0);
	return hit;
}

/*
 * The loop's waiter. With DEFER_TASKRUN a completion is only run by a thread that asks for
 * events, and an eventfd registered on the ring is signalled late (after an RCU grace period:
 * 12-20 ms measured on 6.18), so a loop asleep in epoll_wait answered an idle client late.
 * A thread asleep in io_uring_enter is woken at once; the epoll fd, polled by the ring,
 * wakes it for the loop's other fds.
 */
static int
uring_wait(struct ev_loop *loop, int timeout_ms, void *data)
{
	struct uring *u = data;
	if (!u->epoll_armed) {
		struct io_uring_sqe *sqe = uring_sqe(u, 1);
		if (!sqe)
			return 1;
		io_uring_prep_poll_add(sqe, ev_epoll_fd(loop), POLLIN);
		io_uring_sqe_set_data(sqe, &u->epoll_op);
		u->epoll_op.recv = false;
		u->epoll_armed = true;
	}
	if (u->epoll_ready) {
		u->epoll_ready = false;
		return 1;
	}
	/* the next turn's flush takes them */
	if (uring_has_results(u))
		return 0;
	if (uring_spin(u, timeout_ms))
		return 0;
	uint64_t t0 = u->poll_max_ns ? ev_clock_ns() : 0; /* no clock read when polling is off */
	struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
	                               .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
	struct io_uring_cqe *cqe;
	int r =
	    io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
	if (u->poll_max_ns)
		uring_poll_adapt(u, ev_clock_ns() - t0);
	return r < 0 && r != -ETIME && r != -EINTR ? r : 0;
}
