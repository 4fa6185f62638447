#include "core/ev.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/* Guards against a broken loop hanging the test run: every test arms one. */
#define TEST_EV_GUARD_MS 5000

static void
test_ev_guard_cb(struct ev_loop *loop, struct ev_timer *t)
{
	fail_msg("guard timer fired: the loop did not stop by itself");
}

struct test_ev_fixture {
	struct ev_loop *loop;
	struct ev_timer guard;
};

static int
test_ev_setup(void **state)
{
	struct test_ev_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	ev_timer_init(&f->guard, test_ev_guard_cb, NULL);
	assert_int_equal(ev_timer_start(f->loop, &f->guard, EV_MSEC(TEST_EV_GUARD_MS)), 0);
	*state = f;
	return 0;
}

static int
test_ev_teardown(void **state)
{
	struct test_ev_fixture *f = *state;
	ev_loop_free(f->loop);
	free(f);
	return 0;
}

static struct ev_loop *
test_ev_loop(void **state)
{
	return ((struct test_ev_fixture *)*state)->loop;
}

static void
test_ev_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* ---- fd watchers ---- */

struct test_ev_io_rec {
	int calls;
	uint32_t events;
	char buf[16];
	ssize_t n;
};

static void
test_ev_read_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_ev_io_rec *rec = io->data;
	rec->calls++;
	rec->events = events;
	rec->n = read(io->fd, rec->buf, sizeof(rec->buf));
	ev_break(loop, 42);
}

static void
test_ev_io_read(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int p[2];
	test_ev_pipe(p);
	struct test_ev_io_rec rec = {0};
	struct ev_io io;
	ev_io_init(&io, p[0], EV_READ, test_ev_read_cb, &rec);
	assert_int_equal(ev_io_start(loop, &io), 0);
	assert_true(io.active);
	assert_int_equal(write(p[1], "ping", 4), 4);

	assert_int_equal(ev_run(loop), 42);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.events, EV_READ);
	assert_int_equal(rec.n, 4);
	assert_memory_equal(rec.buf, "ping", 4);

	ev_io_stop(loop, &io);
	assert_false(io.active);
	ev_io_stop(loop, &io); /* twice is harmless */
	close(p[0]);
	close(p[1]);
}

/* Edge-triggered with EV_RDHUP: data and the peer's shutdown are reported together, once;
 * with nothing new, a second turn reports nothing (the guard timer would fire). */
static void
test_ev_edge_rdhup_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_ev_io_rec *rec = io->data;
	rec->calls++;
	rec->events |= events;
	rec->n = read(io->fd, rec->buf, 2); /* leave bytes unread: no new edge for them */
}

static void
test_ev_stop_cb(struct ev_loop *loop, struct ev_timer *t)
{
	ev_break(loop, 7);
}

static void
test_ev_io_edge_rdhup(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	struct test_ev_io_rec rec = {0};
	struct ev_io io;
	ev_io_init(&io, sp[0], EV_READ | EV_EDGE | EV_RDHUP, test_ev_edge_rdhup_cb, &rec);
	assert_int_equal(ev_io_start(loop, &io), 0);
	assert_int_equal(write(sp[1], "ping", 4), 4);
	assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
	struct ev_timer stop;
	ev_timer_init(&stop, test_ev_stop_cb, NULL);
	assert_int_equal(ev_timer_start(loop, &stop, EV_MSEC(200)), 0);
	assert_int_equal(ev_run(loop), 7);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.events, EV_READ | EV_RDHUP);
	assert_int_equal(rec.n, 2);
	ev_io_close(loop, &io);
	assert_false(io.active);
	assert_int_equal(io.fd, -1);
	close(sp[1]);
}

static void
test_ev_write_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_ev_io_rec *rec = io->data;
	rec->calls++;
	rec->events = events;
	ev_break(loop, 7);
}

static void
test_ev_io_write(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int p[2];
	test_ev_pipe(p);
	struct test_ev_io_rec rec = {0};
	struct ev_io io;
	ev_io_init(&io, p[1], EV_WRITE, test_ev_write_cb, &rec);
	assert_int_equal(ev_io_start(loop, &io), 0);
	assert_int_equal(ev_run(loop), 7);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.events, EV_WRITE);
	ev_io_stop(loop, &io);
	close(p[0]);
	close(p[1]);
}

/* A pipe write end watched for READ never fires; switched to WRITE, it does. */
static void
test_ev_io_set(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int p[2];
	test_ev_pipe(p);
	struct test_ev_io_rec rec = {0};
	struct ev_io io;
	ev_io_init(&io, p[1], EV_READ, test_ev_write_cb, &rec);
	assert_int_equal(ev_io_start(loop, &io), 0);
	assert_int_equal(ev_io_set(loop, &io, EV_WRITE), 0);
	assert_int_equal(io.events, EV_WRITE);
	assert_int_equal(ev_run(loop), 7);
	assert_int_equal(rec.events, EV_WRITE);
	ev_io_stop(loop, &io);
	close(p[0]);
	close(p[1]);
}

static void
test_ev_io_hangup(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int p[2];
	test_ev_pipe(p);
	struct test_ev_io_rec rec = {0};
	struct ev_io io;
	ev_io_init(&io, p[0], EV_READ, test_ev_read_cb, &rec);
	assert_int_equal(ev_io_start(loop, &io), 0);
	close(p[1]);
	assert_int_equal(ev_run(loop), 42);
	assert_int_equal(rec.events, EV_READ | EV_ERROR);
	assert_int_equal(rec.n, 0); /* EOF */
	ev_io_stop(loop, &io);
	close(p[0]);
}

static void
test_ev_io_errors(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct ev_io io;
	ev_io_init(&io, 1000000, EV_READ, test_ev_read_cb, NULL);
	assert_int_equal(ev_io_start(loop, &io), -EBADF);
	assert_false(io.active);

	/* epoll refuses regular files */
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ev_io_init(&io, fd, EV_READ, test_ev_read_cb, NULL);
	assert_int_equal(ev_io_start(loop, &io), -EPERM);
	close(fd);
}

/* Two watchers ready in the same batch: whichever runs first stops and frees the other. */
struct test_ev_peer {
	struct ev_io io;
	struct test_ev_peer **other; /* slot holding the other watcher, NULL once freed */
	struct test_ev_peer **self;
	int *calls;
};

static void
test_ev_peer_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_ev_peer *me = io->data;
	(*me->calls)++;
	struct test_ev_peer *other = *me->other;
	if (other) {
		ev_io_stop(loop, &other->io);
		*other->self = NULL;
		free(other);
	}
}

static void
test_ev_break_cb(struct ev_loop *loop, struct ev_timer *t)
{
	ev_break(loop, (int)(intptr_t)t->data);
}

static void
test_ev_io_stop_pending(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int a[2], b[2], calls = 0;
	test_ev_pipe(a);
	test_ev_pipe(b);
	struct test_ev_peer *slot[2];
	for (int i = 0; i < 2; i++) {
		slot[i] = calloc(1, sizeof(*slot[i]));
		assert_non_null(slot[i]);
		slot[i]->other = &slot[1 - i];
		slot[i]->self = &slot[i];
		slot[i]->calls = &calls;
		ev_io_init(&slot[i]->io, i ? b[0] : a[0], EV_READ, test_ev_peer_cb, slot[i]);
		assert_int_equal(ev_io_start(loop, &slot[i]->io), 0);
	}
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	/* a due timer ends the iteration after the fd batch, not in the middle of it */
	struct ev_timer t;
	ev_timer_init(&t, test_ev_break_cb, (void *)(intptr_t)1);
	assert_int_equal(ev_timer_start(loop, &t, 0), 0);

	assert_int_equal(ev_run(loop), 1);
	assert_int_equal(calls, 1);
	assert_true((slot[0] == NULL) != (slot[1] == NULL));
	struct test_ev_peer *left = slot[0] ? slot[0] : slot[1];
	ev_io_stop(loop, &left->io);
	free(left);
	close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

/* ---- timers ---- */

struct test_ev_order {
	int fired[16];
	int n;
	uint64_t start_ns;
	uint64_t at_ns[16];
	int stop_after;
};

struct test_ev_tagged {
	struct ev_timer t;
	int tag;
	struct test_ev_order *order;
};

static void
test_ev_order_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_ev_tagged *tt = t->data;
	struct test_ev_order *o = tt->order;
	assert_true(o->n < 16);
	o->at_ns[o->n] = ev_now_ns(loop);
	o->fired[o->n++] = tt->tag;
	if (o->n == o->stop_after)
		ev_break(loop, 0);
}

static void
test_ev_tagged_start(struct ev_loop *loop, struct test_ev_tagged *tt, struct test_ev_order *o,
                     int ms)
{
	tt->tag = ms;
	tt->order = o;
	ev_timer_init(&tt->t, test_ev_order_cb, tt);
	assert_int_equal(ev_timer_start(loop, &tt->t, EV_MSEC(ms)), 0);
	assert_true(tt->t.active);
}

static void
test_ev_timer_order(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_order o = {.stop_after = 3, .start_ns = ev_clock_ns()};
	struct test_ev_tagged t[3];
	test_ev_tagged_start(loop, &t[0], &o, 30);
	test_ev_tagged_start(loop, &t[1], &o, 10);
	test_ev_tagged_start(loop, &t[2], &o, 20);

	assert_int_equal(ev_run(loop), 0);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.fired[0], 10);
	assert_int_equal(o.fired[1], 20);
	assert_int_equal(o.fired[2], 30);
	/* never early: each fired at least its delay after it was started */
	for (int i = 0; i < 3; i++)
		assert_true(o.at_ns[i] - o.start_ns >= EV_MSEC(o.fired[i]));
	for (int i = 0; i < 3; i++)
		assert_false(t[i].t.active);
}

static void
test_ev_timer_restart(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_order o = {.stop_after = 2};
	struct test_ev_tagged a, b;
	test_ev_tagged_start(loop, &a, &o, 10);
	test_ev_tagged_start(loop, &b, &o, 20);
	/* moving a behind b */
	assert_int_equal(ev_timer_start(loop, &a.t, EV_MSEC(40)), 0);
	assert_int_equal(ev_run(loop), 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.fired[0], 20);
	assert_int_equal(o.fired[1], 10);
}

static void
test_ev_timer_stop(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_order o = {.stop_after = 2};
	struct test_ev_tagged a, b, c;
	test_ev_tagged_start(loop, &a, &o, 10);
	test_ev_tagged_start(loop, &b, &o, 20);
	test_ev_tagged_start(loop, &c, &o, 30);
	ev_timer_stop(loop, &a.t);
	assert_false(a.t.active);
	ev_timer_stop(loop, &a.t); /* stopping a stopped timer is harmless */

	assert_int_equal(ev_run(loop), 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.fired[0], 20);
	assert_int_equal(o.fired[1], 30);
}

/* Two timers due together: whichever fires first stops the other, which must not fire. */
struct test_ev_rival {
	struct ev_timer t;
	struct ev_timer *other;
	int *calls;
};

static void
test_ev_rival_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_ev_rival *r = t->data;
	(*r->calls)++;
	ev_timer_stop(loop, r->other);
}

static void
test_ev_timer_stop_due(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int calls = 0;
	struct test_ev_rival a = {.calls = &calls}, b = {.calls = &calls};
	a.other = &b.t;
	b.other = &a.t;
	ev_timer_init(&a.t, test_ev_rival_cb, &a);
	ev_timer_init(&b.t, test_ev_rival_cb, &b);
	assert_int_equal(ev_timer_start(loop, &a.t, 0), 0);
	assert_int_equal(ev_timer_start(loop, &b.t, 0), 0);
	struct ev_timer end;
	ev_timer_init(&end, test_ev_break_cb, (void *)(intptr_t)3);
	assert_int_equal(ev_timer_start(loop, &end, EV_MSEC(20)), 0);
	assert_int_equal(ev_run(loop), 3);
	assert_int_equal(calls, 1);
}

#define TEST_EV_RANDOM 1000

struct test_ev_random {
	uint64_t last_when;
	int fired;
	bool ordered;
	bool early;
};

static void
test_ev_random_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_ev_random *r = t->data;
	if (t->when_ns < r->last_when)
		r->ordered = false;
	if (ev_now_ns(loop) < t->when_ns)
		r->early = true;
	r->last_when = t->when_ns;
	if (++r->fired == TEST_EV_RANDOM)
		ev_break(loop, 0);
}

static void
test_ev_timer_random(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_random r = {.ordered = true};
	struct ev_timer *t = calloc(TEST_EV_RANDOM, sizeof(*t));
	assert_non_null(t);
	srandom(12345);
	for (int i = 0; i < TEST_EV_RANDOM; i++) {
		ev_timer_init(&t[i], test_ev_random_cb, &r);
		assert_int_equal(ev_timer_start(loop, &t[i], (uint64_t)random() % EV_MSEC(50)), 0);
	}
	/* stop and restart a share of them so removal from the middle of the heap is covered */
	for (int i = 0; i < TEST_EV_RANDOM; i += 3)
		ev_timer_stop(loop, &t[i]);
	for (int i = 0; i < TEST_EV_RANDOM; i += 3)
		assert_int_equal(ev_timer_start(loop, &t[i], (uint64_t)random() % EV_MSEC(50)), 0);

	assert_int_equal(ev_run(loop), 0);
	assert_int_equal(r.fired, TEST_EV_RANDOM);
	assert_true(r.ordered);
	assert_false(r.early);
	for (int i = 0; i < TEST_EV_RANDOM; i++)
		assert_false(t[i].active);
	free(t);
}

struct test_ev_repeat {
	struct ev_timer t;
	int count;
	int limit;
};

static void
test_ev_repeat_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_ev_repeat *r = t->data;
	if (++r->count == r->limit) {
		ev_break(loop, r->count);
		return;
	}
	assert_int_equal(ev_timer_start(loop, t, EV_MSEC(2)), 0);
}

static void
test_ev_timer_self_restart(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_repeat r = {.limit = 10};
	ev_timer_init(&r.t, test_ev_repeat_cb, &r);
	uint64_t start = ev_clock_ns();
	assert_int_equal(ev_timer_start(loop, &r.t, EV_MSEC(2)), 0);
	assert_int_equal(ev_run(loop), 10);
	assert_int_equal(r.count, 10);
	assert_true(ev_clock_ns() - start >= EV_MSEC(20));
	assert_false(r.t.active);
}

/* ---- signals ---- */

struct test_ev_sigrec {
	int count[NSIG];
	int want;
	int got;
};

static void
test_ev_signal_cb(struct ev_loop *loop, int signo, void *data)
{
	struct test_ev_sigrec *s = data;
	s->count[signo]++;
	if (++s->got == s->want)
		ev_break(loop, signo);
}

static void
test_ev_raise_cb(struct ev_loop *loop, struct ev_timer *t)
{
	assert_int_equal(kill(getpid(), SIGHUP), 0);
}

static bool
test_ev_blocked(int signo)
{
	sigset_t cur;
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	return sigismember(&cur, signo);
}

static void
test_ev_signal(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_sigrec s = {.want = 3};
	assert_false(test_ev_blocked(SIGUSR1));
	assert_int_equal(ev_signal_add(loop, SIGUSR1, test_ev_signal_cb, &s), 0);
	assert_int_equal(ev_signal_add(loop, SIGHUP, test_ev_signal_cb, &s), 0);
	assert_int_equal(ev_signal_add(loop, SIGTERM, test_ev_signal_cb, &s), 0);
	assert_true(test_ev_blocked(SIGUSR1));
	assert_true(test_ev_blocked(SIGTERM));

	/* two before the loop runs, one from inside it */
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(raise(SIGTERM), 0);
	struct ev_timer t;
	ev_timer_init(&t, test_ev_raise_cb, NULL);
	assert_int_equal(ev_timer_start(loop, &t, EV_MSEC(5)), 0);

	assert_true(ev_run(loop) > 0);
	assert_int_equal(s.count[SIGUSR1], 1);
	assert_int_equal(s.count[SIGHUP], 1);
	assert_int_equal(s.count[SIGTERM], 1);
	sigset_t pending;
	assert_int_equal(sigpending(&pending), 0);
	assert_false(sigismember(&pending, SIGUSR1) || sigismember(&pending, SIGHUP) ||
	             sigismember(&pending, SIGTERM));
}

/* Runs after test_ev_signal's loop was freed: its signals must be unblocked again. */
static void
test_ev_signal_mask_restored(void **state)
{
	assert_false(test_ev_blocked(SIGUSR1));
	assert_false(test_ev_blocked(SIGHUP));
	assert_false(test_ev_blocked(SIGTERM));
}

static void
test_ev_signal_errors(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct test_ev_sigrec s = {0};
	assert_int_equal(ev_signal_add(loop, SIGKILL, test_ev_signal_cb, &s), -EINVAL);
	assert_int_equal(ev_signal_add(loop, 0, test_ev_signal_cb, &s), -EINVAL);
	assert_int_equal(ev_signal_add(loop, NSIG, test_ev_signal_cb, &s), -EINVAL);
	assert_false(test_ev_blocked(SIGKILL));
}

/* ---- hook, break, now ---- */

static void
test_ev_hook_cb(struct ev_loop *loop, void *data)
{
	(*(int *)data)++;
}

static void
test_ev_before_sleep(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	int hooks = 0;
	ev_set_before_sleep(loop, test_ev_hook_cb, &hooks);
	struct test_ev_repeat r = {.limit = 3};
	ev_timer_init(&r.t, test_ev_repeat_cb, &r);
	assert_int_equal(ev_timer_start(loop, &r.t, EV_MSEC(1)), 0);
	assert_int_equal(ev_run(loop), 3);
	/* at least one wait per firing */
	assert_true(hooks >= 3);

	ev_set_before_sleep(loop, NULL, NULL);
	int before = hooks;
	r.count = 0;
	assert_int_equal(ev_timer_start(loop, &r.t, EV_MSEC(1)), 0);
	assert_int_equal(ev_run(loop), 3);
	assert_int_equal(hooks, before);
}

/* A break from the first of two due timers stops the loop before the second runs. */
static void
test_ev_break_code(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	struct ev_timer a, b;
	ev_timer_init(&a, test_ev_break_cb, (void *)(intptr_t)-7);
	ev_timer_init(&b, test_ev_break_cb, (void *)(intptr_t)9);
	assert_int_equal(ev_timer_start(loop, &a, 0), 0);
	assert_int_equal(ev_timer_start(loop, &b, EV_MSEC(1)), 0);
	uint64_t start = ev_clock_ns();
	while (ev_clock_ns() - start < EV_MSEC(3))
		; /* both due before the loop first looks */
	assert_int_equal(ev_run(loop), -7);
	assert_true(b.active);
	assert_int_equal(ev_run(loop), 9);
	assert_false(b.active);
}

static void
test_ev_now_cb(struct ev_loop *loop, struct ev_timer *t)
{
	uint64_t *seen = t->data;
	seen[0] = ev_now_ns(loop);
	seen[1] = ev_clock_ns();
	seen[2] = ev_now_ns(loop);
	ev_break(loop, 0);
}

static void
test_ev_now(void **state)
{
	struct ev_loop *loop = test_ev_loop(state);
	uint64_t seen[3];
	struct ev_timer t;
	ev_timer_init(&t, test_ev_now_cb, seen);
	uint64_t start = ev_clock_ns();
	assert_int_equal(ev_timer_start(loop, &t, EV_MSEC(2)), 0);
	assert_int_equal(ev_run(loop), 0);
	assert_true(seen[0] >= start + EV_MSEC(2));
	assert_true(seen[1] >= seen[0]);
	assert_int_equal(seen[0], seen[2]); /* cached for the iteration */
}

/* ---- one loop per thread ---- */

struct test_ev_thread {
	pthread_t tid;
	int code;
	int reads;
	int timer_count;
	int signals;
	int result;
};

static void
test_ev_thread_read_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_ev_thread *th = io->data;
	char c;
	if (read(io->fd, &c, 1) == 1)
		th->reads++;
}

static void
test_ev_thread_sig_cb(struct ev_loop *loop, int signo, void *data)
{
	struct test_ev_thread *th = data;
	th->signals++;
}

static void
test_ev_thread_tick(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_ev_thread *th = t->data;
	if (++th->timer_count == 10) {
		ev_break(loop, th->code);
		return;
	}
	if (th->timer_count == 5)
		raise(SIGUSR1); /* thread-directed: only this thread's signalfd may see it */
	ev_timer_start(loop, t, EV_MSEC(1));
}

/* Runs a loop with its own pipe, timer and SIGUSR1; no cmocka asserts off the main thread. */
static void *
test_ev_thread_main(void *arg)
{
	struct test_ev_thread *th = arg;
	struct ev_loop *loop;
	int p[2];
	if (ev_loop_new(&loop) < 0 || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return NULL;
	struct ev_io io;
	struct ev_timer t;
	ev_io_init(&io, p[0], EV_READ, test_ev_thread_read_cb, th);
	ev_timer_init(&t, test_ev_thread_tick, th);
	if (ev_io_start(loop, &io) == 0 && ev_timer_start(loop, &t, EV_MSEC(1)) == 0 &&
	    ev_signal_add(loop, SIGUSR1, test_ev_thread_sig_cb, th) == 0 &&
	    write(p[1], "ab", 2) == 2)
		th->result = ev_run(loop);
	ev_io_stop(loop, &io);
	ev_loop_free(loop);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void
test_ev_two_threads(void **state)
{
	struct test_ev_thread th[2] = {{.code = 11, .result = -1}, {.code = 22, .result = -1}};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i].tid, NULL, test_ev_thread_main, &th[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i].tid, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(th[i].result, th[i].code);
		assert_int_equal(th[i].timer_count, 10);
		assert_int_equal(th[i].reads, 2);
		assert_int_equal(th[i].signals, 1);
	}
}

static void
test_ev_free_null(void **state)
{
	ev_loop_free(NULL);
}

#define TEST_EV(fn) cmocka_unit_test_setup_teardown(fn, test_ev_setup, test_ev_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST_EV(test_ev_io_read),
	    TEST_EV(test_ev_io_edge_rdhup),
	    TEST_EV(test_ev_io_write),
	    TEST_EV(test_ev_io_set),
	    TEST_EV(test_ev_io_hangup),
	    TEST_EV(test_ev_io_errors),
	    TEST_EV(test_ev_io_stop_pending),
	    TEST_EV(test_ev_timer_order),
	    TEST_EV(test_ev_timer_restart),
	    TEST_EV(test_ev_timer_stop),
	    TEST_EV(test_ev_timer_stop_due),
	    TEST_EV(test_ev_timer_random),
	    TEST_EV(test_ev_timer_self_restart),
	    TEST_EV(test_ev_signal),
	    cmocka_unit_test(test_ev_signal_mask_restored),
	    TEST_EV(test_ev_signal_errors),
	    TEST_EV(test_ev_before_sleep),
	    TEST_EV(test_ev_break_code),
	    TEST_EV(test_ev_now),
	    cmocka_unit_test(test_ev_two_threads),
	    cmocka_unit_test(test_ev_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
