#include "core/metrics.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static int
collect_servers(struct buf *out, void *data)
{
	return buf_printf(out, "# TYPE x_up gauge\nx_up{server=\"%s\"} 1\n", (const char *)data);
}

static void
test_render(void **state)
{
	struct metrics *m;
	struct metrics_value c = {"x_requests_total", "Requests.", METRICS_COUNTER, 0};
	struct metrics_value g = {"x_conns", "Open connections.", METRICS_GAUGE, 0};
	_cleanup_buf_ struct buf out = BUF_INIT(4096);

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_register(m, &c), 0);
	assert_int_equal(metrics_register(m, &g), 0);
	assert_int_equal(metrics_add_collector(m, collect_servers, "s1"), 0);
	metrics_add(&c, 3);
	metrics_add(&c, 2);
	metrics_set(&g, -7);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_string_equal(buf_cstr(&out), "# HELP x_requests_total Requests.\n"
	                                    "# TYPE x_requests_total counter\n"
	                                    "x_requests_total 5\n"
	                                    "# HELP x_conns Open connections.\n"
	                                    "# TYPE x_conns gauge\n"
	                                    "x_conns -7\n"
	                                    "# TYPE x_up gauge\n"
	                                    "x_up{server=\"s1\"} 1\n");
	metrics_free(m);
}

static void
test_render_cap(void **state)
{
	struct metrics *m;
	struct metrics_value c = {"x_total", "Help.", METRICS_COUNTER, 1};
	struct buf out = BUF_INIT(16);
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_register(m, &c), 0);
	assert_int_equal(metrics_render(m, &out), -ENOBUFS);
	buf_free(&out);
	metrics_free(m);
}

static int
collect_page(struct buf *out, void *data)
{
	return buf_printf(out, "{\"page\":\"%s\"}\n", (const char *)data);
}

static void
test_add_page(void **state)
{
	struct metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add_page(m, "/stats", "application/json", collect_page, "a"), 0);
	assert_int_equal(metrics_add_page(m, "/stats", "application/json", collect_page, "b"),
	                 -EEXIST);
	assert_int_equal(metrics_add_page(m, "/metrics", "text/plain", collect_page, "c"), -EEXIST);
	metrics_free(m);
}

struct client {
	struct net_addr addr;
	const char *request;
	size_t request_len;
	char reply[8192];
	size_t reply_len;
	int done_fd;
};

/* Blocking client in its own thread; tells the loop through a pipe when it has the reply. */
static void *
client_run(void *arg)
{
	struct client *cl = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	net_addr_to_sockaddr(&cl->addr, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0) {
		if (cl->request_len)
			send(fd, cl->request, cl->request_len, MSG_NOSIGNAL);
		ssize_t n;
		while ((n = recv(fd, cl->reply + cl->reply_len,
		                 sizeof(cl->reply) - 1 - cl->reply_len, 0)) > 0)
			cl->reply_len += (size_t)n;
	}
	cl->reply[cl->reply_len] = '\0';
	if (fd >= 0)
		close(fd);
	char one = 1;
	if (write(cl->done_fd, &one, 1) < 0)
		abort();
	return NULL;
}

static void
on_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	ev_break(loop, 0);
}

/* Serves one exchange with a real socket and returns what the client received. */
static void
exchange(const char *request, size_t request_len, uint64_t timeout_ms, struct client *cl)
{
	struct ev_loop *loop;
	struct metrics *m;
	struct metrics_value c = {"x_total", "Things.", METRICS_COUNTER, 42};
	struct net_addr bind;
	int pipefd[2];
	struct ev_io done;
	pthread_t t;

	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_register(m, &c), 0);
	assert_int_equal(metrics_add_page(m, "/stats", "application/json", collect_page, "s"), 0);
	assert_int_equal(net_addr_parse("127.0.0.1:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, &bind),
	                 0);
	assert_int_equal(metrics_listen(m, loop, &bind, timeout_ms), 0);
	memset(cl, 0, sizeof(*cl));
	assert_int_equal(metrics_local(m, &cl->addr), 0);
	assert_int_not_equal(cl->addr.port, 0);
	assert_int_equal(pipe(pipefd), 0);
	cl->request = request;
	cl->request_len = request_len;
	cl->done_fd = pipefd[1];
	ev_io_init(&done, pipefd[0], EV_READ, on_done, NULL);
	assert_int_equal(ev_io_start(loop, &done), 0);
	assert_int_equal(pthread_create(&t, NULL, client_run, cl), 0);
	assert_int_equal(ev_run(loop), 0);
	pthread_join(t, NULL);
	ev_io_stop(loop, &done);
	close(pipefd[0]);
	close(pipefd[1]);
	metrics_free(m);
	ev_loop_free(loop);
}

static void
test_serve_get(void **state)
{
	struct client cl;
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	exchange(req, strlen(req), 5000, &cl);
	assert_non_null(strstr(cl.reply, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(cl.reply, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(cl.reply, "\r\n\r\n# HELP x_total Things.\n"));
	assert_non_null(strstr(cl.reply, "\nx_total 42\n"));
}

static void
test_serve_head_404_405(void **state)
{
	struct client cl;
	const char head[] = "HEAD /metrics HTTP/1.0\r\n\r\n";
	exchange(head, strlen(head), 5000, &cl);
	assert_non_null(strstr(cl.reply, "200 OK"));
	assert_null(strstr(cl.reply, "x_total"));

	const char nf[] = "GET /other HTTP/1.1\n\n";
	exchange(nf, strlen(nf), 5000, &cl);
	assert_true(strncmp(cl.reply, "HTTP/1.1 404 ", 13) == 0);

	const char post[] = "POST /metrics HTTP/1.1\r\n\r\n";
	exchange(post, strlen(post), 5000, &cl);
	assert_true(strncmp(cl.reply, "HTTP/1.1 405 ", 13) == 0);
}

static void
test_serve_page(void **state)
{
	struct client cl;
	const char req[] = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
	exchange(req, strlen(req), 5000, &cl);
	assert_non_null(strstr(cl.reply, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(cl.reply, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(cl.reply, "Content-Length: 13\r\n"));
	assert_non_null(strstr(cl.reply, "\r\n\r\n{\"page\":\"s\"}\n"));
	assert_null(strstr(cl.reply, "x_total"));

	const char query[] = "GET /stats?pretty HTTP/1.1\r\n\r\n";
	exchange(query, strlen(query), 5000, &cl);
	assert_non_null(strstr(cl.reply, "{\"page\":\"s\"}"));

	/* the metrics page is unchanged by the added one */
	const char metrics[] = "GET /metrics HTTP/1.1\r\n\r\n";
	exchange(metrics, strlen(metrics), 5000, &cl);
	assert_non_null(strstr(cl.reply, "Content-Type: text/plain; version=0.0.4"));
	assert_null(strstr(cl.reply, "page"));

	const char prefix[] = "GET /statsx HTTP/1.1\r\n\r\n";
	exchange(prefix, strlen(prefix), 5000, &cl);
	assert_true(strncmp(cl.reply, "HTTP/1.1 404 ", 13) == 0);
}

static void
test_serve_oversized_request(void **state)
{
	struct client cl;
	size_t n = METRICS_REQUEST_MAX + 100;
	char *req = malloc(n);
	assert_non_null(req);
	memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
	memset(req + 26, 'a', n - 26);
	exchange(req, n, 5000, &cl);
	free(req);
	assert_true(strncmp(cl.reply, "HTTP/1.1 431 ", 13) == 0);
}

static void
test_idle_client_disconnected(void **state)
{
	struct client cl;
	/* half a request, never finished: the server must hang up, not wait forever */
	exchange("GET /metrics", 12, 50, &cl);
	assert_int_equal(cl.reply_len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_render_cap),
	    cmocka_unit_test(test_add_page),
	    cmocka_unit_test(test_serve_get),
	    cmocka_unit_test(test_serve_page),
	    cmocka_unit_test(test_serve_head_404_405),
	    cmocka_unit_test(test_serve_oversized_request),
	    cmocka_unit_test(test_idle_client_disconnected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
