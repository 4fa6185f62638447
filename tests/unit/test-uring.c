#include "core/ev.h"
#include "core/uring.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

#define TEST_URING_BUFS 2
#define TEST_URING_BUFSIZE 64

struct test_uring {
	struct ev_loop *loop;
	struct ev_timer guard;
	struct uring *u;
	int stop_at; /* callbacks after which the loop stops */
	int calls;
	struct {
		struct uring_op *op;
		int res;
		char *buf;
	} got[8];
};

static void
test_uring_guard_cb(struct ev_loop *loop, struct ev_timer *t)
{
	fail_msg("guard timer fired: a completion never came");
}

static void
test_uring_flush(struct ev_loop *loop, void *data)
{
	uring_flush(data);
}

static void
test_uring_cb(struct uring_op *op, int res, char *buf)
{
	struct test_uring *t = op->data;
	assert_true(t->calls < 8);
	t->got[t->calls].op = op;
	t->got[t->calls].res = res;
	t->got[t->calls].buf = buf;
	if (++t->calls == t->stop_at)
		ev_break(t->loop, 0);
}

static int
test_uring_make(void **state, unsigned max_bufs)
{
	struct test_uring *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(ev_loop_new(&t->loop), 0);
	ev_timer_init(&t->guard, test_uring_guard_cb, NULL);
	assert_int_equal(ev_timer_start(t->loop, &t->guard, EV_SEC(5)), 0);
	int r = uring_new(t->loop, 64, TEST_URING_BUFS, max_bufs, TEST_URING_BUFSIZE, &t->u);
	if (r < 0) {
		/* the kernel or a sandbox refuses io_uring: the module's callers fall back */
		ev_loop_free(t->loop);
		free(t);
		return -1;
	}
	ev_set_before_sleep(t->loop, test_uring_flush, t->u);
	*state = t;
	return 0;
}

/* a pool of TEST_URING_BUFS that cannot grow */
static int
test_uring_setup(void **state)
{
	return test_uring_make(state, TEST_URING_BUFS);
}

static int
test_uring_setup_growing(void **state)
{
	return test_uring_make(state, 2 * TEST_URING_BUFS);
}

static int
test_uring_teardown(void **state)
{
	struct test_uring *t = *state;
	uring_free(t->u);
	ev_loop_free(t->loop);
	free(t);
	return 0;
}

static void
test_uring_run_until(struct test_uring *t, int calls)
{
	t->stop_at = calls;
	assert_int_equal(ev_run(t->loop), 0);
	assert_int_equal(t->calls, calls);
}

static void
test_uring_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

/* n pairs whose far end has written one byte ('a' + i), each with a receive armed */
static void
test_uring_armed(struct test_uring *t, int p[][2], struct uring_op *rx, int n)
{
	for (int i = 0; i < n; i++) {
		test_uring_pair(p[i]);
		char c = (char)('a' + i);
		assert_int_equal(write(p[i][1], &c, 1), 1);
		rx[i] = (struct uring_op){.cb = test_uring_cb, .data = t};
		assert_int_equal(uring_recv(t->u, &rx[i], p[i][0], 0), 0);
	}
}

/* The one of rx[0..n) that has no callback among the first n - 1. */
static struct uring_op *
test_uring_not_called(struct test_uring *t, struct uring_op *rx, int n)
{
	for (int i = 0; i < n; i++) {
		bool called = false;
		for (int j = 0; j < n - 1; j++)
			called |= t->got[j].op == &rx[i];
		if (!called)
			return &rx[i];
	}
	fail_msg("every receive was called back");
	return NULL;
}

static void
test_uring_close_pairs(int p[][2], int n)
{
	for (int i = 0; i < n; i++)
		close(p[i][0]), close(p[i][1]);
}

static void
test_uring_recv_send_linked(void **state)
{
	struct test_uring *t = *state;
	int a[2], b[2];
	test_uring_pair(a);
	test_uring_pair(b);
	struct uring_op rx = {.cb = test_uring_cb, .data = t}, tx = rx;
	assert_int_equal(uring_recv(t->u, &rx, a[0], 0), 0);
	assert_int_equal(write(a[1], "hello", 5), 5);
	test_uring_run_until(t, 1);
	assert_ptr_equal(t->got[0].op, &rx);
	assert_int_equal(t->got[0].res, 5);
	assert_non_null(t->got[0].buf);
	assert_memory_equal(t->got[0].buf, "hello", 5);
	/* the send, and behind it the next receive, which sees the EOF */
	assert_int_equal(uring_send(t->u, &tx, b[0], t->got[0].buf, 5, 0, true), 0);
	assert_int_equal(uring_recv(t->u, &rx, a[0], 0), 0);
	close(a[1]);
	test_uring_run_until(t, 3);
	assert_ptr_equal(t->got[1].op, &tx);
	assert_int_equal(t->got[1].res, 5);
	assert_ptr_equal(t->got[2].op, &rx);
	assert_int_equal(t->got[2].res, 0);
	assert_null(t->got[2].buf);
	uring_buf_put(t->u, t->got[0].buf);
	char out[8];
	assert_int_equal(read(b[1], out, sizeof(out)), 5);
	assert_memory_equal(out, "hello", 5);
	close(a[0]), close(b[0]), close(b[1]);
}

/* A receive's limit: it takes no more than asked, and the rest waits for the next. */
static void
test_uring_recv_takes_at_most_len(void **state)
{
	struct test_uring *t = *state;
	int a[2];
	test_uring_pair(a);
	struct uring_op rx = {.cb = test_uring_cb, .data = t};
	assert_int_equal(write(a[1], "hello", 5), 5);
	assert_int_equal(uring_recv(t->u, &rx, a[0], 3), 0);
	test_uring_run_until(t, 1);
	assert_int_equal(t->got[0].res, 3);
	assert_memory_equal(t->got[0].buf, "hel", 3);
	assert_int_equal(uring_recv(t->u, &rx, a[0], 100000), 0); /* past bufsize: bufsize */
	test_uring_run_until(t, 2);
	assert_int_equal(t->got[1].res, 2);
	assert_memory_equal(t->got[1].buf, "lo", 2);
	uring_buf_put(t->u, t->got[0].buf);
	uring_buf_put(t->u, t->got[1].buf);
	close(a[0]), close(a[1]);
}

static void
test_uring_failed_send_cancels_linked(void **state)
{
	struct test_uring *t = *state;
	int a[2], b[2];
	test_uring_pair(a);
	test_uring_pair(b);
	close(b[1]); /* the send's peer is gone: EPIPE */
	struct uring_op rx = {.cb = test_uring_cb, .data = t}, tx = rx;
	assert_int_equal(uring_send(t->u, &tx, b[0], "x", 1, 0, true), 0);
	assert_int_equal(uring_recv(t->u, &rx, a[0], 0), 0);
	test_uring_run_until(t, 2);
	assert_ptr_equal(t->got[0].op, &tx);
	assert_int_equal(t->got[0].res, -EPIPE);
	assert_ptr_equal(t->got[1].op, &rx);
	assert_int_equal(t->got[1].res, -ECANCELED);
	close(a[0]), close(a[1]), close(b[0]);
}

/* n - 1 of the n receives of rx were served: the one left waits until the first buffer
 * comes back, then gets its byte. */
static void
test_uring_waiting_served(struct test_uring *t, struct uring_op *rx, int n)
{
	struct uring_op *waiting = test_uring_not_called(t, rx, n);
	uring_buf_put(t->u, t->got[0].buf);
	test_uring_run_until(t, n);
	assert_ptr_equal(t->got[n - 1].op, waiting);
	assert_int_equal(t->got[n - 1].res, 1);
	assert_int_equal(t->got[n - 1].buf[0], 'a' + (int)(waiting - rx));
}

/* After test_uring_waiting_served: the other buffers go back, the pairs are closed. */
static void
test_uring_release(struct test_uring *t, int p[][2], int n)
{
	for (int i = 1; i < n; i++)
		uring_buf_put(t->u, t->got[i].buf);
	test_uring_close_pairs(p, n);
}

/* Three receives with data and a pool of two buffers: the third waits until one comes back. */
static void
test_uring_starved_receive_waits_for_a_buffer(void **state)
{
	struct test_uring *t = *state;
	int p[3][2];
	struct uring_op rx[3];
	test_uring_armed(t, p, rx, 3);
	test_uring_run_until(t, 2);
	assert_non_null(t->got[0].buf);
	assert_non_null(t->got[1].buf);
	test_uring_waiting_served(t, rx, 3);
	test_uring_release(t, p, 3);
}

/* Five receives with data and a pool of two that may double: four are served at once, the
 * fifth waits for a buffer to come back. */
static void
test_uring_pool_grows_to_its_cap(void **state)
{
	struct test_uring *t = *state;
	int p[5][2];
	struct uring_op rx[5];
	test_uring_armed(t, p, rx, 5);
	test_uring_run_until(t, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t->got[i].res, 1);
		assert_int_equal(t->got[i].buf[0], 'a' + (int)(t->got[i].op - rx));
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(t->got[i].buf, t->got[j].buf);
	}
	test_uring_waiting_served(t, rx, 5);
	assert_ptr_equal(t->got[4].buf, t->got[0].buf);
	test_uring_release(t, p, 5);
}

static void
test_uring_cancel(void **state)
{
	struct test_uring *t = *state;
	int a[2], p[3][2];
	test_uring_pair(a);
	struct uring_op idle = {.cb = test_uring_cb, .data = t};
	assert_int_equal(uring_recv(t->u, &idle, a[0], 0), 0);
	/* fill the pool, so that a third receive with data is starved inside the module */
	struct uring_op rx[3];
	test_uring_armed(t, p, rx, 3);
	test_uring_run_until(t, 2);
	struct uring_op *starved = test_uring_not_called(t, rx, 3);
	assert_int_equal(uring_cancel(t->u, &idle), 0);
	assert_int_equal(uring_cancel(t->u, starved), 0);
	test_uring_run_until(t, 4);
	for (int i = 2; i < 4; i++) {
		assert_true(t->got[i].op == &idle || t->got[i].op == starved);
		assert_int_equal(t->got[i].res, -ECANCELED);
		assert_null(t->got[i].buf);
	}
	assert_ptr_not_equal(t->got[2].op, t->got[3].op);
	uring_buf_put(t->u, t->got[0].buf);
	uring_buf_put(t->u, t->got[1].buf);
	close(a[0]), close(a[1]);
	test_uring_close_pairs(p, 3);
}

#define TEST_URING_ROUNDS 300

/* The far end of a ping-pong: answers each byte with the next, at once, so the loop's waits
 * are a few microseconds, where busy polling takes over. */
static void *
test_uring_echo(void *arg)
{
	const int *fds = arg; /* the pair's end, and an fd of the loop's to poke half-way */
	int fd = fds[0];
	for (int i = 0; i < TEST_URING_ROUNDS; i++) {
		if (i == TEST_URING_ROUNDS / 2)
			assert_int_equal(write(fds[1], "x", 1), 1);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char c;
		assert_true(poll(&pfd, 1, 5000) == 1);
		assert_int_equal(read(fd, &c, 1), 1);
		c++;
		assert_int_equal(write(fd, &c, 1), 1);
	}
	return NULL;
}

struct test_uring_pp {
	struct test_uring *t;
	struct uring_op rx, tx;
	int fd, round;
	char out;
	struct ev_io io; /* an fd event the loop must see while it polls */
	int io_seen;
};

static void
test_uring_pp_cb(struct uring_op *op, int res, char *buf)
{
	struct test_uring_pp *pp = op->data;
	if (op == &pp->tx) {
		assert_int_equal(res, 1);
		return;
	}
	assert_int_equal(res, 1);
	assert_int_equal(buf[0], (char)(pp->out + 1));
	uring_buf_put(pp->t->u, buf);
	if (++pp->round == TEST_URING_ROUNDS) {
		ev_break(pp->t->loop, 0);
		return;
	}
	pp->out = (char)(buf[0] + 1);
	assert_int_equal(uring_send(pp->t->u, &pp->tx, pp->fd, &pp->out, 1, 0, false), 0);
	assert_int_equal(uring_recv(pp->t->u, &pp->rx, pp->fd, 0), 0);
}

static void
test_uring_pp_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_uring_pp *pp = io->data;
	char c;
	while (read(io->fd, &c, 1) == 1)
		pp->io_seen++;
}

/* With busy polling on, a quick ping-pong gets every answer, in order, and the loop's other
 * fds are still served while the ring polls. */
static void
test_uring_busy_poll(void **state)
{
	struct test_uring *t = *state;
	uring_set_busy_poll(t->u, 200000);
	int a[2], e[2];
	test_uring_pair(a);
	test_uring_pair(e);
	struct test_uring_pp pp = {.t = t, .fd = a[0], .out = 0};
	pp.rx = (struct uring_op){.cb = test_uring_pp_cb, .data = &pp};
	pp.tx = pp.rx;
	ev_io_init(&pp.io, e[0], EV_READ, test_uring_pp_io, &pp);
	assert_int_equal(ev_io_start(t->loop, &pp.io), 0);
	int fds[2] = {a[1], e[1]};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, test_uring_echo, fds), 0);
	assert_int_equal(uring_send(t->u, &pp.tx, a[0], &pp.out, 1, 0, false), 0);
	assert_int_equal(uring_recv(t->u, &pp.rx, a[0], 0), 0);
	assert_int_equal(ev_run(t->loop), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pp.round, TEST_URING_ROUNDS);
	assert_int_equal(pp.io_seen, 1);
	ev_io_stop(t->loop, &pp.io);
	close(a[0]), close(a[1]), close(e[0]), close(e[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_uring_recv_send_linked, test_uring_setup,
	                                    test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_recv_takes_at_most_len, test_uring_setup,
	                                    test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_failed_send_cancels_linked, test_uring_setup,
	                                    test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_starved_receive_waits_for_a_buffer,
	                                    test_uring_setup, test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_pool_grows_to_its_cap,
	                                    test_uring_setup_growing, test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_cancel, test_uring_setup,
	                                    test_uring_teardown),
	    cmocka_unit_test_setup_teardown(test_uring_busy_poll, test_uring_setup,
	                                    test_uring_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
