#include "core/log.h"
#include "lb/lb_ctl.h"
#include "lb/lb_stats.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

/* ---- fixture: two listeners ---- */

struct env {
	struct lb_pool *pools[2];
	size_t n;
	struct ev_loop *loop;
	struct lb_ctl *ctl;
	char dir[64];
	char path[128];
	int done[2]; /* client threads signal the loop here */
	struct ev_io done_io;
};

static struct lb_pool *
pool_make(const char *listener, const char *const *names, const char *const *addrs, size_t n,
          uint64_t slow_start_ms)
{
	struct lb_server_cfg sc[LB_SERVERS_MAX];
	struct lb_listener_cfg cfg = {.name = (char *)listener, .slow_start_ms = slow_start_ms};
	struct lb_pool *p;
	memset(sc, 0, n * sizeof(sc[0]));
	for (size_t i = 0; i < n; i++) {
		sc[i].name = (char *)names[i];
		sc[i].weight = 10;
		assert_int_equal(net_addr_parse(addrs[i], NET_PORT_REQUIRED, &sc[i].address), 0);
	}
	cfg.servers = (struct cfg_list){n, sc};
	assert_int_equal(lb_pool_new(&cfg, &p), 0);
	return p;
}

static void
env_pools(struct env *e)
{
	static const char *const web[] = {"a", "b"};
	static const char *const web_addr[] = {"127.0.0.1:8080", "127.0.0.2:8081"};
	static const char *const api[] = {"q\"x\\y"};
	static const char *const api_addr[] = {"[::1]:9000"};
	e->pools[0] = pool_make("web", web, web_addr, 2, 0);
	e->pools[1] = pool_make("api", api, api_addr, 1, 0);
	e->n = 2;

	struct lb_server *a = &e->pools[0]->servers[0], *b = &e->pools[0]->servers[1];
	atomic_store(&a->total, 120);
	atomic_store(&a->active, 3);
	atomic_store(&a->responses[2], 100);
	atomic_store(&a->responses[5], 7);
	atomic_store(&a->responses[0], 1);
	atomic_store(&a->bytes_in, 5000);
	atomic_store(&a->bytes_out, 600);
	memcpy(a->check_last, "http 200 in 3ms", 16);
	atomic_store(&b->health, LB_HEALTH_DOWN);
	atomic_store(&b->admin, LB_ADMIN_DRAIN);
	atomic_store(&b->weight, 5);
	atomic_store(&b->failures, 4);
	atomic_store(&b->transitions, 2);
	b->backup = true;
	memcpy(b->check_last, "connect refused", 16);
}

static void
env_view(void *data, struct lb_view *out)
{
	struct env *e = data;
	*out = (struct lb_view){e->pools, e->n};
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	env_pools(e);
	assert_int_equal(ev_loop_new(&e->loop), 0);
	memcpy(e->dir, "/tmp/rampart-lbctl-XXXXXX", 26);
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/ctl.sock", e->dir);
	assert_int_equal(pipe(e->done), 0);
	log_set_level(LOG_LEVEL_ERROR); /* the state changes log at info */
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	lb_ctl_free(e->ctl);
	unlink(e->path);
	rmdir(e->dir);
	close(e->done[0]);
	close(e->done[1]);
	ev_loop_free(e->loop);
	for (size_t i = 0; i < e->n; i++)
		lb_pool_free(e->pools[i]);
	free(e);
	return 0;
}

/* ---- renderings ---- */

static void
test_table(void **state)
{
	struct env *e = *state;
	struct lb_view v = {e->pools, e->n};
	_cleanup_buf_ struct buf out = BUF_INIT(65536);
	assert_int_equal(lb_stats_table(&v, 1, &out), 0);
	assert_string_equal(buf_cstr(&out), "LISTENER  SERVER  ADDRESS         HEALTH  ADMIN  "
	                                    "WEIGHT  ACTIVE  TOTAL  FAILURES  5XX  "
	                                    "CHECK\n"
	                                    "web       a       127.0.0.1:8080  up      ready  10   "
	                                    "   3       120    0         7    "
	                                    "http 200 in 3ms\n"
	                                    "web       b       127.0.0.2:8081  down    drain  5    "
	                                    "   0       0      4         0    "
	                                    "connect refused\n"
	                                    "api       q\"x\\y   [::1]:9000      up      ready  10 "
	                                    "     0       0      0         0    "
	                                    "-\n");
}

static void
test_table_slow_start(void **state)
{
	static const char *const names[] = {"s"};
	static const char *const addrs[] = {"10.0.0.1:80"};
	struct lb_pool *p = pool_make("slow", names, addrs, 1, 1000);
	struct lb_view v = {&p, 1};
	_cleanup_buf_ struct buf out = BUF_INIT(4096);
	lb_pool_set_health(p, &p->servers[0], LB_HEALTH_DOWN, EV_SEC(10));
	lb_pool_set_health(p, &p->servers[0], LB_HEALTH_UP, EV_SEC(10));
	/* half way through a one-second ramp */
	assert_int_equal(lb_stats_table(&v, EV_SEC(10) + EV_MSEC(500), &out), 0);
	assert_non_null(strstr(buf_cstr(&out), "  5/10  "));
	buf_reset(&out);
	assert_int_equal(lb_stats_json(&v, EV_SEC(10) + EV_MSEC(500), &out), 0);
	assert_non_null(strstr(buf_cstr(&out), "\"weight\":10,\"effective_weight\":5,"));
	lb_pool_free(p);
}

static void
test_json(void **state)
{
	struct env *e = *state;
	struct lb_view v = {e->pools, e->n};
	_cleanup_buf_ struct buf out = BUF_INIT(65536);
	assert_int_equal(lb_stats_json(&v, 1, &out), 0);
	assert_string_equal(
	    buf_cstr(&out),
	    "{\"listeners\":[{\"name\":\"web\",\"servers\":["
	    "{\"name\":\"a\",\"address\":\"127.0.0.1:8080\",\"health\":\"up\",\"admin\":\"ready\","
	    "\"weight\":10,\"effective_weight\":10,\"backup\":false,\"active\":3,\"total\":120,"
	    "\"failures\":0,\"responses\":{\"1xx\":0,\"2xx\":100,\"3xx\":0,\"4xx\":0,\"5xx\":7,"
	    "\"other\":1},\"bytes_in\":5000,\"bytes_out\":600,\"transitions\":0,"
	    "\"check\":\"http 200 in 3ms\"},"
	    "{\"name\":\"b\",\"address\":\"127.0.0.2:8081\",\"health\":\"down\",\"admin\":"
	    "\"drain\","
	    "\"weight\":5,\"effective_weight\":5,\"backup\":true,\"active\":0,\"total\":0,"
	    "\"failures\":4,\"responses\":{\"1xx\":0,\"2xx\":0,\"3xx\":0,\"4xx\":0,\"5xx\":0,"
	    "\"other\":0},\"bytes_in\":0,\"bytes_out\":0,\"transitions\":2,"
	    "\"check\":\"connect refused\"}]},"
	    "{\"name\":\"api\",\"servers\":["
	    "{\"name\":\"q\\\"x\\\\y\",\"address\":\"[::1]:9000\",\"health\":\"up\",\"admin\":"
	    "\"ready\",\"weight\":10,\"effective_weight\":10,\"backup\":false,\"active\":0,"
	    "\"total\":0,\"failures\":0,\"responses\":{\"1xx\":0,\"2xx\":0,\"3xx\":0,\"4xx\":0,"
	    "\"5xx\":0,\"other\":0},\"bytes_in\":0,\"bytes_out\":0,\"transitions\":0,"
	    "\"check\":null}]}]}\n");
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void
test_prometheus(void **state)
{
	struct env *e = *state;
	struct lb_view v = {e->pools, e->n};
	_cleanup_buf_ struct buf out = BUF_INIT(65536);
	assert_int_equal(lb_stats_prometheus(&v, 1, &out), 0);
	const char *t = buf_cstr(&out);
	static const char *const families[] = {
	    "rampart_lb_server_up gauge",
	    "rampart_lb_server_admin_state gauge",
	    "rampart_lb_server_weight gauge",
	    "rampart_lb_server_active gauge",
	    "rampart_lb_server_requests_total counter",
	    "rampart_lb_server_failures_total counter",
	    "rampart_lb_server_responses_total counter",
	    "rampart_lb_server_bytes_in_total counter",
	    "rampart_lb_server_bytes_out_total counter",
	};
	char line[128];
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# TYPE %s\n", families[i]);
		assert_int_equal(count(t, line), 1);
	}
	assert_int_equal(count(t, "# HELP rampart_lb_server_up "), 1);
	assert_non_null(strstr(t, "\nrampart_lb_server_up{listener=\"web\",server=\"a\"} 1\n"));
	assert_non_null(strstr(t, "\nrampart_lb_server_up{listener=\"web\",server=\"b\"} 0\n"));
	assert_non_null(
	    strstr(t, "\nrampart_lb_server_up{listener=\"api\",server=\"q\\\"x\\\\y\"} 1\n"));
	assert_non_null(strstr(
	    t,
	    "\nrampart_lb_server_admin_state{listener=\"web\",server=\"b\",state=\"drain\"} 1\n"));
	assert_non_null(strstr(
	    t,
	    "\nrampart_lb_server_admin_state{listener=\"web\",server=\"b\",state=\"ready\"} 0\n"));
	assert_non_null(strstr(t, "\nrampart_lb_server_weight{listener=\"web\",server=\"b\"} 5\n"));
	assert_non_null(strstr(t, "\nrampart_lb_server_active{listener=\"web\",server=\"a\"} 3\n"));
	assert_non_null(
	    strstr(t, "\nrampart_lb_server_requests_total{listener=\"web\",server=\"a\"} 120\n"));
	assert_non_null(
	    strstr(t, "\nrampart_lb_server_failures_total{listener=\"web\",server=\"b\"} 4\n"));
	assert_non_null(strstr(t, "\nrampart_lb_server_responses_total{listener=\"web\",server="
	                          "\"a\",code=\"2xx\"} 100\n"));
	assert_non_null(strstr(
	    t,
	    "\nrampart_lb_server_responses_total{listener=\"web\",server=\"a\",code=\"5xx\"} 7\n"));
	assert_non_null(strstr(t, "\nrampart_lb_server_responses_total{listener=\"web\",server="
	                          "\"a\",code=\"other\"} 1\n"));
	assert_non_null(
	    strstr(t, "\nrampart_lb_server_bytes_in_total{listener=\"web\",server=\"a\"} 5000\n"));
	assert_non_null(
	    strstr(t, "\nrampart_lb_server_bytes_out_total{listener=\"web\",server=\"a\"} 600\n"));
	/* every line is a comment or a sample ending in a value */
	assert_int_equal(t[out.len - 1], '\n');
}

static void
test_render_cap(void **state)
{
	struct env *e = *state;
	struct lb_view v = {e->pools, e->n};
	_cleanup_buf_ struct buf out = BUF_INIT(64);
	assert_int_equal(lb_stats_json(&v, 1, &out), -ENOBUFS);
	assert_int_equal(lb_stats_prometheus(&v, 1, &out), -ENOBUFS);
	assert_int_equal(lb_stats_table(&v, 1, &out), -ENOBUFS);
}

/* ---- ctl over a real socket: the loop runs here, each client in a thread ---- */

struct call {
	struct env *e;
	const char *line;
	struct buf reply;
	int r;
};

static void *
call_run(void *arg)
{
	struct call *c = arg;
	c->r = lb_ctl_request(c->e->path, c->line, 10000, &c->reply);
	char one = 1;
	if (write(c->e->done[1], &one, 1) < 0)
		abort();
	return NULL;
}

static void
on_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	char one;
	if (read(io->fd, &one, 1) < 0)
		abort();
	ev_break(loop, 0);
}

/* Runs the loop until the thread started with fn signals it is done. */
static void
run_until_done(struct env *e, void *(*fn)(void *), void *arg)
{
	pthread_t t;
	ev_io_init(&e->done_io, e->done[0], EV_READ, on_done, NULL);
	assert_int_equal(ev_io_start(e->loop, &e->done_io), 0);
	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	assert_int_equal(ev_run(e->loop), 0);
	pthread_join(t, NULL);
	ev_io_stop(e->loop, &e->done_io);
}

/* Sends line and returns the reply (caller frees); asserts the request itself worked. */
static char *
ctl(struct env *e, const char *line)
{
	struct call c = {.e = e, .line = line, .reply = BUF_INIT(LB_CTL_REPLY_MAX)};
	run_until_done(e, call_run, &c);
	assert_int_equal(c.r, 0);
	char *s = buf_steal(&c.reply);
	assert_non_null(s);
	return s;
}

static void
ctl_expect(struct env *e, const char *line, const char *want)
{
	char *got = ctl(e, line);
	assert_string_equal(got, want);
	free(got);
}

static void
ctl_listen(struct env *e)
{
	assert_int_equal(lb_ctl_listen(e->loop, e->path, env_view, e, &e->ctl), 0);
}

static void
test_ctl_show(void **state)
{
	struct env *e = *state;
	struct lb_view v = {e->pools, e->n};
	_cleanup_buf_ struct buf want = BUF_INIT(65536);
	ctl_listen(e);

	char *got = ctl(e, "show servers");
	assert_true(strncmp(got, "ok\nLISTENER  SERVER", 19) == 0);
	assert_non_null(strstr(got, "\nweb       b  "));
	assert_non_null(strstr(got, "\napi       q\"x\\y"));
	free(got);

	got = ctl(e, "show servers api");
	assert_true(strncmp(got, "ok\nLISTENER  SERVER", 19) == 0);
	assert_null(strstr(got, "\nweb"));
	assert_non_null(strstr(got, "\napi  "));
	free(got);

	buf_append_str(&want, "ok\n");
	assert_int_equal(lb_stats_json(&v, ev_now_ns(e->loop), &want), 0);
	ctl_expect(e, "show json", buf_cstr(&want));
	/* CRLF and extra blanks are fine */
	ctl_expect(e, "  show \t json\r", buf_cstr(&want));

	got = ctl(e, "show prometheus");
	assert_true(strncmp(got, "ok\n# HELP rampart_lb_server_up ", 31) == 0);
	free(got);
}

static void
test_ctl_state_changes(void **state)
{
	struct env *e = *state;
	struct lb_server *a = &e->pools[0]->servers[0];
	struct lb_server *q = &e->pools[1]->servers[0];
	uint64_t version = atomic_load(&e->pools[0]->version);
	ctl_listen(e);

	/* logged once, at the change; a repeat changes nothing and logs nothing */
	int logp[2];
	char logged[1024];
	assert_int_equal(pipe2(logp, O_NONBLOCK), 0);
	log_set_fd(logp[1]);
	log_set_level(LOG_LEVEL_INFO);
	ctl_expect(e, "drain web/a", "ok\n");
	ctl_expect(e, "drain web/a", "ok\n");
	log_set_level(LOG_LEVEL_ERROR);
	log_set_fd(2);
	ssize_t n = read(logp[0], logged, sizeof(logged) - 1);
	assert_true(n > 0);
	logged[n] = '\0';
	close(logp[0]);
	close(logp[1]);
	assert_int_equal(count(logged, "\n"), 1);
	assert_non_null(
	    strstr(logged, "server state changed listener=web server=a admin=drain by=ctl\n"));
	assert_int_equal(atomic_load(&a->admin), LB_ADMIN_DRAIN);
	assert_true(atomic_load(&e->pools[0]->version) != version);
	ctl_expect(e, "disable web/a", "ok\n");
	assert_int_equal(atomic_load(&a->admin), LB_ADMIN_MAINT);
	ctl_expect(e, "enable web/a", "ok\n");
	assert_int_equal(atomic_load(&a->admin), LB_ADMIN_READY);
	ctl_expect(e, "weight web/a 0", "ok\n");
	assert_int_equal(atomic_load(&a->weight), 0);
	ctl_expect(e, "weight web/a 256", "ok\n");
	assert_int_equal(atomic_load(&a->weight), 256);
	ctl_expect(e, "disable api/q\"x\\y", "ok\n");
	assert_int_equal(atomic_load(&q->admin), LB_ADMIN_MAINT);

	char *got = ctl(e, "show servers web");
	assert_non_null(strstr(got, "  ready  256  "));
	free(got);
}

/* The view is asked for on every command: a reload that swaps pools is seen at once. */
static void
test_ctl_reload(void **state)
{
	struct env *e = *state;
	static const char *const names[] = {"new"};
	static const char *const addrs[] = {"10.1.1.1:80"};
	ctl_listen(e);
	ctl_expect(e, "drain web/new", "error: no server 'web/new'\n");
	struct lb_pool *old = e->pools[0];
	e->pools[0] = pool_make("web", names, addrs, 1, 0);
	lb_pool_free(old);
	ctl_expect(e, "drain web/new", "ok\n");
	assert_int_equal(atomic_load(&e->pools[0]->servers[0].admin), LB_ADMIN_DRAIN);
}

static void
test_ctl_errors(void **state)
{
	struct env *e = *state;
	struct lb_server *a = &e->pools[0]->servers[0];
	char *long_line = malloc(LB_CTL_LINE_MAX + 100);
	ctl_listen(e);

	/* not a command at all: "usage: " after "error: " (the client exits 2) */
	char *got = ctl(e, "frobnicate now");
	assert_true(
	    strncmp(got, "error: usage: unknown command 'frobnicate' (try: show servers", 61) == 0);
	assert_int_equal(count(got, "\n"), 1);
	free(got);
	got = ctl(e, "");
	assert_true(strncmp(got, "error: ", 7) == 0);
	free(got);
	ctl_expect(e, "drain web/zz", "error: no server 'web/zz'\n");
	ctl_expect(e, "drain nope/a", "error: no server 'nope/a'\n");
	ctl_expect(e, "show servers nope", "error: no listener 'nope'\n");
	ctl_expect(e, "weight web/a 300", "error: weight must be 0..256, not '300'\n");
	ctl_expect(e, "weight web/a -1", "error: weight must be 0..256, not '-1'\n");
	ctl_expect(e, "weight web/a 1x", "error: weight must be 0..256, not '1x'\n");
	assert_int_equal(atomic_load(&a->weight), 10);
	got = ctl(e, "weight web/a");
	assert_true(strncmp(got, "error: usage: weight", 20) == 0);
	free(got);
	got = ctl(e, "drain web/a web/b");
	assert_true(strncmp(got, "error: usage: ", 14) == 0);
	free(got);
	ctl_expect(e, "drain web", "error: usage: expected LISTENER/SERVER, not 'web'\n");
	assert_int_equal(atomic_load(&a->admin), LB_ADMIN_READY);

	assert_non_null(long_line);
	memset(long_line, 'x', LB_CTL_LINE_MAX + 99);
	long_line[LB_CTL_LINE_MAX + 99] = '\0';
	ctl_expect(e, long_line, "error: line too long\n");
	/* exactly the limit is read as a line (here, an unknown command) */
	long_line[LB_CTL_LINE_MAX] = '\0';
	got = ctl(e, long_line);
	assert_true(strncmp(got, "error: usage: unknown command 'xxx", 34) == 0);
	free(got);
	long_line[LB_CTL_LINE_MAX] = 'x';
	long_line[LB_CTL_LINE_MAX + 1] = '\0';
	ctl_expect(e, long_line, "error: line too long\n");
	free(long_line);
}

static void
test_ctl_socket_file(void **state)
{
	struct env *e = *state;
	struct stat st;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, e->path, strlen(e->path) + 1);

	/* a stale file, left by a server that died, is replaced */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(e->path, &st), 0);
	ctl_listen(e);
	assert_int_equal(stat(e->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	ctl_expect(e, "enable web/a", "ok\n");

	/* given away only while the file is still ours */
	char moved[160];
	snprintf(moved, sizeof(moved), "%s.moved", e->path);
	assert_int_equal(lb_ctl_chown(e->ctl, getuid(), getgid()), 0);
	assert_int_equal(rename(e->path, moved), 0);
	fd = open(e->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(lb_ctl_chown(e->ctl, getuid() + 1, getgid() + 1), -ESTALE);
	assert_int_equal(stat(e->path, &st), 0);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(rename(moved, e->path), 0);

	/* a live one is not taken over */
	struct lb_ctl *second = NULL;
	assert_int_equal(lb_ctl_listen(e->loop, e->path, env_view, e, &second), -EADDRINUSE);
	ctl_expect(e, "enable web/a", "ok\n");

	lb_ctl_free(e->ctl);
	e->ctl = NULL;
	assert_int_equal(access(e->path, F_OK), -1);
	_cleanup_buf_ struct buf none = BUF_INIT(16);
	assert_int_equal(lb_ctl_request(e->path, "show json", 1000, &none), -ENOENT);
	assert_int_equal(none.len, 0);

	/* something that is not a socket is never removed */
	fd = open(e->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(lb_ctl_listen(e->loop, e->path, env_view, e, &second), -EEXIST);
	assert_int_equal(access(e->path, F_OK), 0);
}

/* ---- a big reply to a slow reader does not hold up other clients ---- */

struct slow {
	struct env *e;
	int fd;
	size_t got;
	char head[8];
};

static void *
slow_read(void *arg)
{
	struct slow *s = arg;
	char chunk[65536];
	ssize_t n;
	while ((n = recv(s->fd, chunk, sizeof(chunk), 0)) > 0) {
		if (s->got < sizeof(s->head))
			memcpy(s->head + s->got, chunk,
			       (size_t)n < sizeof(s->head) - s->got ? (size_t)n
			                                            : sizeof(s->head) - s->got);
		s->got += (size_t)n;
	}
	char one = 1;
	if (write(s->e->done[1], &one, 1) < 0)
		abort();
	return NULL;
}

static void
test_ctl_slow_reader(void **state)
{
	struct env *e = *state;
	static char names[LB_SERVERS_MAX][16];
	static const char *name_p[LB_SERVERS_MAX], *addr_p[LB_SERVERS_MAX];
	for (size_t i = 0; i < LB_SERVERS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "server-%zu", i);
		name_p[i] = names[i];
		addr_p[i] = "192.0.2.1:80";
	}
	lb_pool_free(e->pools[1]);
	e->pools[1] = pool_make("big", name_p, addr_p, LB_SERVERS_MAX, 0);
	ctl_listen(e);

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, e->path, strlen(e->path) + 1);
	struct slow s = {.e = e, .fd = socket(AF_UNIX, SOCK_STREAM, 0)};
	assert_int_equal(connect(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(s.fd, "show json\n", 10, 0), 10);
	/* the slow client fills its socket and waits: the next one still gets its answer
	 * (which of the two runs first is up to epoll; "drain" and "ready" are as long) */
	ctl_expect(e, "drain big/server-7", "ok\n");

	_cleanup_buf_ struct buf want = BUF_INIT(LB_CTL_REPLY_MAX);
	struct lb_view v = {e->pools, e->n};
	assert_int_equal(lb_stats_json(&v, 1, &want), 0);
	assert_true(want.len > 250000); /* more than a unix socket buffer (wmem_default) */
	run_until_done(e, slow_read, &s);
	close(s.fd);
	assert_int_equal(s.got, want.len + 3);
	assert_memory_equal(s.head, "ok\n{\"lis", 8);
}

/* ---- the stats listener ---- */

struct http {
	struct env *e;
	struct net_addr addr;
	const char *request;
	char reply[65536];
	size_t len;
};

static void *
http_run(void *arg)
{
	struct http *h = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	net_addr_to_sockaddr(&h->addr, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	h->len = 0;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0) {
		send(fd, h->request, strlen(h->request), MSG_NOSIGNAL);
		ssize_t n;
		while ((n = recv(fd, h->reply + h->len, sizeof(h->reply) - 1 - h->len, 0)) > 0)
			h->len += (size_t)n;
	}
	h->reply[h->len] = '\0';
	if (fd >= 0)
		close(fd);
	char one = 1;
	if (write(h->e->done[1], &one, 1) < 0)
		abort();
	return NULL;
}

static void
test_stats_listener(void **state)
{
	struct env *e = *state;
	struct lb_stats_server *srv;
	struct net_addr bind;
	struct http *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->e = e;
	assert_int_equal(net_addr_parse("127.0.0.1:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, &bind),
	                 0);
	assert_int_equal(lb_stats_listen(e->loop, &bind, env_view, e, &srv), 0);
	assert_int_equal(lb_stats_local(srv, &h->addr), 0);
	assert_int_not_equal(h->addr.port, 0);

	h->request = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
	run_until_done(e, http_run, h);
	assert_true(strncmp(h->reply, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(h->reply, "Content-Type: application/json\r\n"));
	assert_non_null(
	    strstr(h->reply, "\r\n\r\n{\"listeners\":[{\"name\":\"web\",\"servers\":[{"));
	assert_string_equal(h->reply + h->len - 4, "}]}\n");

	h->request = "GET /metrics HTTP/1.1\r\n\r\n";
	run_until_done(e, http_run, h);
	assert_true(strncmp(h->reply, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(h->reply, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(
	    strstr(h->reply, "\nrampart_lb_server_up{listener=\"web\",server=\"b\"} 0\n"));

	h->request = "GET /nope HTTP/1.1\r\n\r\n";
	run_until_done(e, http_run, h);
	assert_true(strncmp(h->reply, "HTTP/1.1 404 ", 13) == 0);

	lb_stats_server_free(srv);
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_slow_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prometheus, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_render_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_show, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_state_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_socket_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctl_slow_reader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats_listener, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
