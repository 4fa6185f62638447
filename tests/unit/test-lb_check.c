#include "core/cleanup.h"
#include "core/ev.h"
#include "core/log.h"
#include "lb/lb_check.h"
#include "lb/lb_pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/*
 * Real loopback sockets on one loop: the checker and a small server it checks. Waits are
 * bounded but generous and end as soon as the state is seen; nothing asserts on timing.
 */
#define TEST_WAIT_MS 5000
#define TEST_CONNS_MAX 64

enum test_srv_mode {
	TEST_SRV_HTTP,   /* answer `response` once the request head is in */
	TEST_SRV_SEND,   /* answer `response` once a line is in */
	TEST_SRV_SILENT, /* read and never answer */
};

struct test_conn {
	struct test_srv *srv;
	struct ev_io io;
	char buf[2048];
	size_t len;
	bool used;
};

struct test_srv {
	struct ev_loop *loop;
	struct ev_io lis; /* fd -1 while closed: connects are refused */
	uint16_t port;
	int mode;
	const char *response;
	unsigned accepted;
	char last_req[2048];
	struct test_conn conns[TEST_CONNS_MAX];
};

struct test_fx {
	struct ev_loop *loop;
	struct test_srv srv;
	struct lb_pool *pool;
	struct lb_check *check;
	struct lb_check_cfg cfg;
	int log_pipe[2];
	char log[16384];
	size_t log_len;
	const char *want_last; /* for test_last_is */
};

static void
test_conn_close(struct test_conn *k)
{
	ev_io_stop(k->srv->loop, &k->io);
	close(k->io.fd);
	k->used = false;
}

static bool
test_conn_complete(const struct test_conn *k)
{
	if (k->srv->mode == TEST_SRV_HTTP)
		return strstr(k->buf, "\r\n\r\n") != NULL;
	return k->srv->mode == TEST_SRV_SEND && strchr(k->buf, '\n') != NULL;
}

static void
test_conn_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_conn *k = io->data;
	size_t room = sizeof(k->buf) - 1 - k->len;
	ssize_t n = room ? read(io->fd, k->buf + k->len, room) : 0;
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		test_conn_close(k);
		return;
	}
	k->len += (size_t)n;
	k->buf[k->len] = '\0';
	if (!test_conn_complete(k))
		return;
	snprintf(k->srv->last_req, sizeof(k->srv->last_req), "%s", k->buf);
	/* small enough for the socket buffer: one write does it */
	assert_int_equal(write(io->fd, k->srv->response, strlen(k->srv->response)),
	                 (ssize_t)strlen(k->srv->response));
	test_conn_close(k);
}

static void
test_srv_accept_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct test_srv *srv = io->data;
	int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	srv->accepted++;
	for (size_t i = 0; i < TEST_CONNS_MAX; i++) {
		struct test_conn *k = &srv->conns[i];
		if (k->used)
			continue;
		*k = (struct test_conn){.srv = srv, .used = true};
		ev_io_init(&k->io, fd, EV_READ, test_conn_cb, k);
		assert_int_equal(ev_io_start(loop, &k->io), 0);
		return;
	}
	close(fd);
}

/* Listens on 127.0.0.1:port (0: any free port, remembered for reopening). */
static void
test_srv_open(struct test_srv *srv)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int one = 1;
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(srv->port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	srv->port = ntohs(sin.sin_port);
	ev_io_init(&srv->lis, fd, EV_READ, test_srv_accept_cb, srv);
	assert_int_equal(ev_io_start(srv->loop, &srv->lis), 0);
}

static void
test_srv_close(struct test_srv *srv)
{
	if (srv->lis.fd < 0)
		return;
	ev_io_stop(srv->loop, &srv->lis);
	close(srv->lis.fd);
	srv->lis.fd = -1;
}

/* A port nobody listens on: bound once, then closed. */
static uint16_t
test_refused_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int
test_setup(void **state)
{
	struct test_fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	f->srv.loop = f->loop;
	f->srv.response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	test_srv_open(&f->srv);
	f->cfg = (struct lb_check_cfg){
	    .type = LB_CHECK_TCP,
	    .interval_ms = 100,
	    .timeout_ms = 100,
	    .rise = 2,
	    .fall = 2,
	    .jitter_pct = 10,
	    .method = "GET",
	    .path = "/health",
	    .status_min = 200,
	    .status_max = 399,
	};
	assert_int_equal(pipe2(f->log_pipe, O_CLOEXEC), 0);
	assert_int_equal(fcntl(f->log_pipe[0], F_SETFL, O_NONBLOCK), 0);
	log_set_fd(f->log_pipe[1]);
	log_set_level(LOG_LEVEL_INFO);
	*state = f;
	return 0;
}

static int
test_teardown(void **state)
{
	struct test_fx *f = *state;
	lb_check_free(f->check);
	lb_pool_free(f->pool);
	for (size_t i = 0; i < TEST_CONNS_MAX; i++)
		if (f->srv.conns[i].used)
			test_conn_close(&f->srv.conns[i]);
	test_srv_close(&f->srv);
	ev_loop_free(f->loop);
	log_set_fd(2);
	close(f->log_pipe[0]);
	close(f->log_pipe[1]);
	free(f);
	return 0;
}

/* A pool "web" of n servers s0.. on 127.0.0.1 at the given ports. */
static void
test_pool(struct test_fx *f, size_t n, const uint16_t *ports)
{
	struct lb_server_cfg sc[8] = {0};
	char names[8][8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "s%zu", i);
		sc[i].name = names[i];
		sc[i].weight = 1;
		sc[i].address.family = AF_INET;
		sc[i].address.u.v4.s_addr = htonl(INADDR_LOOPBACK);
		sc[i].address.port = ports[i];
	}
	struct lb_listener_cfg lc = {.name = "web", .check = f->cfg};
	lc.servers = (struct cfg_list){.n = n, .items = sc};
	assert_int_equal(lb_pool_new(&lc, &f->pool), 0);
}

static void
test_start(struct test_fx *f, size_t n, const uint16_t *ports)
{
	test_pool(f, n, ports);
	assert_int_equal(lb_check_start(f->loop, f->pool, &f->cfg, &f->check), 0);
	assert_non_null(f->check);
}

static void
test_start_one(struct test_fx *f)
{
	test_start(f, 1, &f->srv.port);
}

struct test_wait {
	struct ev_timer poll, deadline;
	bool (*pred)(struct test_fx *f, struct lb_server *s, long arg);
	struct test_fx *f;
	struct lb_server *s;
	long arg;
};

static void
test_wait_poll_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct test_wait *w = t->data;
	if (w->pred && w->pred(w->f, w->s, w->arg))
		ev_break(loop, 1);
	else
		ev_timer_start(loop, t, EV_MSEC(2));
}

static void
test_wait_deadline_cb(struct ev_loop *loop, struct ev_timer *t)
{
	ev_break(loop, 0);
}

/* Runs the loop until pred holds (true) or ms passed (false); pred NULL: just run ms. */
static bool
test_run(struct test_fx *f, bool (*pred)(struct test_fx *, struct lb_server *, long),
         struct lb_server *s, long arg, unsigned ms)
{
	struct test_wait w = {.pred = pred, .f = f, .s = s, .arg = arg};
	ev_timer_init(&w.poll, test_wait_poll_cb, &w);
	ev_timer_init(&w.deadline, test_wait_deadline_cb, &w);
	assert_int_equal(ev_timer_start(f->loop, &w.poll, 0), 0);
	assert_int_equal(ev_timer_start(f->loop, &w.deadline, EV_MSEC(ms)), 0);
	int r = ev_run(f->loop);
	ev_timer_stop(f->loop, &w.poll);
	ev_timer_stop(f->loop, &w.deadline);
	return r == 1;
}

static bool
test_is_health(struct test_fx *f, struct lb_server *s, long h)
{
	return atomic_load(&s->health) == h;
}

static bool
test_has_oks(struct test_fx *f, struct lb_server *s, long n)
{
	return s->check_ok >= n;
}

static bool
test_has_fails(struct test_fx *f, struct lb_server *s, long n)
{
	return s->check_fail >= n;
}

static bool
test_has_accepted(struct test_fx *f, struct lb_server *s, long n)
{
	return f->srv.accepted >= (unsigned)n;
}

static bool
test_last_is(struct test_fx *f, struct lb_server *s, long unused)
{
	return !strcmp(s->check_last, f->want_last);
}

static void
test_wait_health(struct test_fx *f, struct lb_server *s, int h)
{
	assert_true(test_run(f, test_is_health, s, h, TEST_WAIT_MS));
}

static void
test_wait_oks(struct test_fx *f, struct lb_server *s, int n)
{
	assert_true(test_run(f, test_has_oks, s, n, TEST_WAIT_MS));
}

static void
test_wait_fails(struct test_fx *f, struct lb_server *s, int n)
{
	assert_true(test_run(f, test_has_fails, s, n, TEST_WAIT_MS));
}

/* Everything logged so far, as one string. */
static const char *
test_log(struct test_fx *f)
{
	ssize_t n;
	while ((n = read(f->log_pipe[0], f->log + f->log_len, sizeof(f->log) - 1 - f->log_len)) > 0)
		f->log_len += (size_t)n;
	f->log[f->log_len] = '\0';
	return f->log;
}

static int
test_log_count(struct test_fx *f, const char *needle)
{
	int n = 0;
	for (const char *p = test_log(f); (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void
test_none(void **state)
{
	struct test_fx *f = *state;
	f->cfg.type = LB_CHECK_NONE;
	test_pool(f, 1, &f->srv.port);
	struct lb_check *c = (struct lb_check *)f; /* must be overwritten */
	assert_int_equal(lb_check_start(f->loop, f->pool, &f->cfg, &c), 0);
	assert_null(c);
	lb_check_free(NULL);
}

static void
test_tcp_up_down_up(void **state)
{
	struct test_fx *f = *state;
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	/* a new server is up until fall failures */
	assert_int_equal(atomic_load(&s->health), LB_HEALTH_UP);
	test_wait_oks(f, s, 2);
	assert_string_equal(s->check_last, "ok");
	assert_int_equal(atomic_load(&s->health), LB_HEALTH_UP);
	assert_int_equal(atomic_load(&s->transitions), 0);

	test_srv_close(&f->srv);
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "connection refused");
	assert_true(s->check_fail >= 2);
	assert_int_equal(s->check_ok, 0);
	assert_int_equal(atomic_load(&s->transitions), 1);
	/* more failures: no more lines */
	test_wait_fails(f, s, 4);
	assert_int_equal(test_log_count(f, "server down listener=web server=s0 "
	                                   "reason=\"connection refused\""),
	                 1);
	assert_int_equal(test_log_count(f, "no server available listener=web"), 1);

	test_srv_open(&f->srv);
	test_wait_health(f, s, LB_HEALTH_UP);
	assert_true(s->check_ok >= 2);
	assert_int_equal(s->check_fail, 0);
	assert_int_equal(atomic_load(&s->transitions), 2);
	assert_int_equal(test_log_count(f, "server up listener=web server=s0 checks=2"), 1);
	assert_int_equal(atomic_load(&f->pool->all_down_logged), 0);
}

/* With a check port the server's own (closed) port is not what is checked. */
static void
test_tcp_check_port(void **state)
{
	struct test_fx *f = *state;
	uint16_t closed = test_refused_port();
	f->cfg.port = f->srv.port;
	test_start(f, 1, &closed);
	struct lb_server *s = &f->pool->servers[0];
	test_wait_oks(f, s, 3);
	assert_int_equal(atomic_load(&s->health), LB_HEALTH_UP);
	assert_int_equal(s->check_fail, 0);
}

static void
test_http_status(void **state)
{
	struct test_fx *f = *state;
	f->cfg.type = LB_CHECK_HTTP;
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	test_wait_oks(f, s, 2);
	assert_string_equal(s->check_last, "ok: status 200");
	char want[256];
	snprintf(want, sizeof(want),
	         "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: rampart-check\r\n"
	         "Connection: close\r\n\r\n",
	         f->srv.port);
	assert_string_equal(f->srv.last_req, want);

	f->srv.response = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "status 503");
	assert_int_equal(test_log_count(f, "reason=\"status 503\""), 1);

	/* 302 is inside 200-399 */
	f->srv.response = "HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n";
	test_wait_health(f, s, LB_HEALTH_UP);
	assert_string_equal(s->check_last, "ok: status 302");

	f->srv.response = "SSH-2.0-OpenSSH_9.2\r\n";
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "bad response");
	assert_int_equal(atomic_load(&s->transitions), 3);
}

static void
test_http_narrow_range(void **state)
{
	struct test_fx *f = *state;
	f->cfg.type = LB_CHECK_HTTP;
	f->cfg.status_min = f->cfg.status_max = 204;
	f->cfg.host = "health.example";
	f->srv.response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "status 200");
	assert_non_null(strstr(f->srv.last_req, "\r\nHost: health.example\r\n"));
	f->srv.response = "HTTP/1.1 204 No Content\r\n\r\n";
	test_wait_health(f, s, LB_HEALTH_UP);
	assert_string_equal(s->check_last, "ok: status 204");
}

static void
test_http_expect_body(void **state)
{
	struct test_fx *f = *state;
	f->cfg.type = LB_CHECK_HTTP;
	f->cfg.expect_body = "healthy";
	f->srv.response = "HTTP/1.1 200 OK\r\nX-State: healthy\r\n\r\nall healthy here";
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	test_wait_oks(f, s, 2);
	assert_string_equal(s->check_last, "ok: status 200");

	/* the substring in a header field is not in the body */
	f->srv.response = "HTTP/1.1 200 OK\r\nX-State: healthy\r\n\r\nsick";
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "body mismatch");

	f->srv.response = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy";
	test_wait_health(f, s, LB_HEALTH_UP);
	assert_string_equal(s->check_last, "ok: status 200");
}

static void
test_send_expect(void **state)
{
	struct test_fx *f = *state;
	f->cfg.type = LB_CHECK_SEND;
	f->cfg.send = "PING\\t1\\\\\\r\\n";
	f->cfg.expect = "+PONG";
	f->srv.mode = TEST_SRV_SEND;
	f->srv.response = "+PONG\r\n";
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	test_wait_oks(f, s, 2);
	assert_string_equal(s->check_last, "ok");
	assert_string_equal(f->srv.last_req, "PING\t1\\\r\n");

	f->srv.mode = TEST_SRV_SILENT;
	test_wait_health(f, s, LB_HEALTH_DOWN);
	assert_string_equal(s->check_last, "timeout");

	f->srv.mode = TEST_SRV_SEND;
	f->srv.response = "-ERR\r\n";
	f->want_last = "expect mismatch";
	assert_true(test_run(f, test_last_is, s, 0, TEST_WAIT_MS));
	assert_int_equal(atomic_load(&s->health), LB_HEALTH_DOWN);

	f->srv.response = "+PONG\r\n";
	test_wait_health(f, s, LB_HEALTH_UP);
	assert_int_equal(atomic_load(&s->transitions), 2);
}

static void
test_maint_not_probed(void **state)
{
	struct test_fx *f = *state;
	uint16_t ports[2] = {f->srv.port, f->srv.port};
	test_pool(f, 2, ports);
	struct lb_server *ready = &f->pool->servers[0], *maint = &f->pool->servers[1];
	lb_pool_set_admin(f->pool, maint, LB_ADMIN_MAINT);
	assert_int_equal(lb_check_start(f->loop, f->pool, &f->cfg, &f->check), 0);
	/* three checks of the other server: the one in maintenance had as many chances */
	test_wait_oks(f, ready, 3);
	assert_int_equal(maint->check_ok, 0);
	assert_int_equal(maint->check_fail, 0);
	assert_string_equal(maint->check_last, "");
	/* every connection the server saw came from the other server's probes */
	assert_true(f->srv.accepted <= (unsigned)(ready->check_ok + ready->check_fail));

	lb_pool_set_admin(f->pool, maint, LB_ADMIN_READY);
	test_wait_oks(f, maint, 1);
	assert_string_equal(maint->check_last, "ok");
}

/* A server ejected by passive health needs rise fresh successes, not the old streak. */
static void
test_rise_after_passive(void **state)
{
	struct test_fx *f = *state;
	f->cfg.rise = 3;
	test_start_one(f);
	struct lb_server *s = &f->pool->servers[0];
	f->pool->passive_errors = 1;
	test_wait_oks(f, s, 4);
	assert_int_equal(lb_pool_passive(f->pool, s, false, ev_now_ns(f->loop)),
	                 LB_PASSIVE_EJECTED);
	assert_int_equal(atomic_load(&s->health), LB_HEALTH_DOWN);

	test_wait_health(f, s, LB_HEALTH_UP);
	assert_true(s->check_ok >= 3);
	/* the line carries the streak at the transition: 3, not the pre-ejection one */
	assert_int_equal(test_log_count(f, "server up listener=web server=s0 checks=3"), 1);
	assert_int_equal(test_log_count(f, "server down"), 0);
	assert_int_equal(atomic_load(&s->ejected_at_ns), 0);
}

static int
test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void
test_free_in_flight(void **state)
{
	struct test_fx *f = *state;
	uint16_t ports[8];
	for (size_t i = 0; i < 8; i++)
		ports[i] = f->srv.port;
	f->srv.mode = TEST_SRV_SILENT;
	f->cfg.type = LB_CHECK_HTTP;
	f->cfg.interval_ms = f->cfg.timeout_ms = 1000;
	test_pool(f, 8, ports);
	int fds = test_count_fds();
	assert_int_equal(lb_check_start(f->loop, f->pool, &f->cfg, &f->check), 0);
	/* the server never answers and the timeout is long: these probes are in flight */
	assert_true(test_run(f, test_has_accepted, NULL, 2, TEST_WAIT_MS));
	lb_check_free(TAKE_PTR(f->check));
	/* nothing of the checker may fire now; the server sees the closes and ends its side */
	test_run(f, NULL, NULL, 0, 300);
	assert_int_equal(test_count_fds(), fds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_none, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_up_down_up, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_check_port, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_http_status, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_http_narrow_range, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_http_expect_body, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_send_expect, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_maint_not_probed, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_rise_after_passive, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_free_in_flight, test_setup, test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
