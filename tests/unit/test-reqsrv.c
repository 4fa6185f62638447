/* Unit tests for src/core/reqsrv: one request per connection, answered, closed; caps. */
#include "core/net.h"
#include "core/reqsrv.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static size_t
line_complete(const char *in, size_t len, bool eof)
{
	const char *lf = memchr(in, '\n', len);
	return lf ? (size_t)(lf - in) + 1 : eof ? len : 0;
}

static void
shout(void *data, char *req, size_t len, bool too_big, struct buf *out)
{
	(*(int *)data)++;
	if (too_big) {
		buf_append_str(out, "too big\n");
		return;
	}
	for (size_t i = 0; i < len; i++)
		buf_printf(out, "%c", req[i] >= 'a' && req[i] <= 'z' ? req[i] - 32 : req[i]);
}

struct client {
	uint16_t port;
	const char *send;
	bool half_close;
	char got[256];
	atomic_bool done;
};

static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct net_addr a;
	struct sockaddr_storage ss;
	socklen_t sl;
	net_addr_parse("127.0.0.1:1", NET_PORT_REQUIRED, &a);
	a.port = c->port;
	net_addr_to_sockaddr(&a, &ss, &sl);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
		send(fd, c->send, strlen(c->send), 0);
		if (c->half_close)
			shutdown(fd, SHUT_WR);
		size_t n = 0;
		ssize_t r;
		while (n < sizeof(c->got) - 1 &&
		       (r = recv(fd, c->got + n, sizeof(c->got) - 1 - n, 0)) > 0)
			n += (size_t)r;
	}
	close(fd);
	atomic_store(&c->done, true);
	return NULL;
}

static void
stop_when_done(struct ev_loop *loop, struct ev_timer *t)
{
	struct client *c = t->data;
	if (atomic_load(&c->done))
		ev_break(loop, 0);
	else
		ev_timer_start(loop, t, EV_MSEC(5));
}

/* Serves one client exchange; returns how many answers were built. */
static int
exchange(struct client *c, size_t in_max)
{
	struct ev_loop *loop;
	struct reqsrv *srv;
	struct net_addr any, local;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int answers = 0;
	assert_int_equal(ev_loop_new(&loop), 0);
	net_addr_parse("127.0.0.1:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, &any);
	int fd = net_listen_tcp(&any, 0, 8);
	assert_true(fd >= 0);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	net_addr_from_sockaddr((struct sockaddr *)&ss, sl, &local);
	const struct reqsrv_cfg cfg = {.in_max = in_max,
	                               .out_max = 1024,
	                               .conns_max = 4,
	                               .timeout_ms = 5000,
	                               .complete = line_complete,
	                               .answer = shout,
	                               .data = &answers};
	assert_int_equal(reqsrv_start(loop, fd, &cfg, &srv), 0);
	assert_int_equal(reqsrv_fd(srv), fd);
	c->port = local.port;
	pthread_t th;
	struct ev_timer t;
	ev_timer_init(&t, stop_when_done, c);
	ev_timer_start(loop, &t, EV_MSEC(5));
	pthread_create(&th, NULL, client_main, c);
	assert_int_equal(ev_run(loop), 0);
	pthread_join(th, NULL);
	reqsrv_free(srv);
	ev_loop_free(loop);
	return answers;
}

static void
test_line_answered_then_closed(void **state)
{
	struct client c = {.send = "hello\nignored\n"};
	assert_int_equal(exchange(&c, 64), 1);
	assert_string_equal(c.got, "HELLO\n");
}

static void
test_eof_ends_the_request(void **state)
{
	struct client c = {.send = "no newline", .half_close = true};
	assert_int_equal(exchange(&c, 64), 1);
	assert_string_equal(c.got, "NO NEWLINE");
}

static void
test_too_big(void **state)
{
	struct client c = {.send = "0123456789abcdef\n"};
	assert_int_equal(exchange(&c, 8), 1);
	assert_string_equal(c.got, "too big\n");
}

static void
test_silent_eof_gets_nothing(void **state)
{
	struct client c = {.send = "", .half_close = true};
	assert_int_equal(exchange(&c, 64), 0);
	assert_string_equal(c.got, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_answered_then_closed),
	    cmocka_unit_test(test_eof_ends_the_request),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_silent_eof_gets_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
