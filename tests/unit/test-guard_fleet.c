/*
 * Unit tests for src/guard/guard_fleet against a real PostgreSQL 15 the test starts with
 * tests/pg-test-server.sh (PG_TEST_SERVER, set by meson). A missing PostgreSQL fails the test.
 * The ev loop only ever runs bounded: a timer checks the awaited condition and a deadline.
 */
#include "core/cleanup.h"
#include "core/ev.h"
#include "guard/guard_fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define MANY 10000

static char pg_dir[64];
static char pg_conninfo[512];

/* ---- the server ---- */

static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	close(fd);
	return ntohs(sa.sin_port);
}

/* Runs the helper; its last output line (the conninfo for start) into out. */
static int
pg_ctl(const char *verb, char *out, size_t outlen)
{
	const char *script = getenv("PG_TEST_SERVER");
	if (!script)
		return -ENOENT;
	char cmd[512];
	if (!strcmp(verb, "init"))
		snprintf(cmd, sizeof(cmd), "sh '%s' start '%s' %d", script, pg_dir, free_port());
	else
		snprintf(cmd, sizeof(cmd), "sh '%s' %s '%s'", script, verb, pg_dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -errno;
	char line[512] = "";
	while (fgets(line, sizeof(line), p))
		if (out)
			snprintf(out, outlen, "%s", line);
	int st = pclose(p);
	if (out) {
		size_t n = strlen(out);
		if (n && out[n - 1] == '\n')
			out[n - 1] = '\0';
	}
	return st == 0 ? 0 : -EIO;
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/test-guard_fleet-XXXXXX");
	if (!mkdtemp(pg_dir))
		return -1;
	if (pg_ctl("init", pg_conninfo, sizeof(pg_conninfo)) < 0) {
		fprintf(stderr, "cannot start PostgreSQL (PG_TEST_SERVER=%s)\n",
		        getenv("PG_TEST_SERVER") ? getenv("PG_TEST_SERVER") : "unset");
		pg_ctl("destroy", NULL, 0);
		rmdir(pg_dir);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	pg_ctl("destroy", NULL, 0);
	return 0;
}

/* ---- a blocking client ---- */

static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *
db(void)
{
	PGconn *c = PQconnectdb(pg_conninfo);
	PQsetNoticeProcessor(c, quiet, NULL);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

static void
db_exec(const char *sql)
{
	PGconn *c = db();
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static int64_t
db_int(const char *sql, const char *param)
{
	PGconn *c = db();
	const char *v[] = {param};
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

static int
reset(void **state)
{
	(void)state;
	db_exec("DROP TABLE IF EXISTS rampart_guard_history, rampart_guard_bans, "
	        "rampart_guard_schema CASCADE");
	db_exec("DROP FUNCTION IF EXISTS rampart_guard_history_id(), "
	        "rampart_guard_history_added() CASCADE");
	return 0;
}

/* ---- a fleet member under test ---- */

struct peer {
	char name[GUARD_FLEET_NAME_MAX];
	struct guard_fleet *f;
	struct guard_fleet_event *got;
	size_t ngot, capgot;
	int ups, downs;
	char why[256];
	struct guard_fleet_event *mine; /* what pending() hands out */
	size_t nmine;
	int64_t first_after;
	int pending_calls;
};

static void
peer_event(const struct guard_fleet_event *e, void *data)
{
	struct peer *p = data;
	if (p->ngot == p->capgot) {
		p->capgot = p->capgot ? p->capgot * 2 : 64;
		p->got = realloc(p->got, p->capgot * sizeof(*p->got));
		assert_non_null(p->got);
	}
	p->got[p->ngot++] = *e;
}

static size_t
peer_pending(int64_t after, struct guard_fleet_event *out, size_t max, void *data)
{
	struct peer *p = data;
	if (p->pending_calls++ == 0)
		p->first_after = after;
	size_t n = 0;
	for (size_t i = 0; i < p->nmine && n < max; i++)
		if (p->mine[i].seq > after)
			out[n++] = p->mine[i];
	return n;
}

static void
peer_state(bool up, const char *why, void *data)
{
	struct peer *p = data;
	if (up) {
		assert_null(why);
		p->ups++;
	} else {
		assert_non_null(why);
		p->downs++;
		snprintf(p->why, sizeof(p->why), "%s", why);
	}
}

static const struct guard_fleet_ops peer_ops = {
    .event = peer_event, .pending = peer_pending, .state = peer_state};

static void
peer_start(struct ev_loop *loop, struct peer *p, const char *name, const char *conninfo,
           int64_t last_id, size_t queue_max, unsigned timeout_ms)
{
	snprintf(p->name, sizeof(p->name), "%s", name);
	struct guard_fleet_cfg cfg = {.conninfo = conninfo ? conninfo : pg_conninfo,
	                              .name = name,
	                              .queue_max = queue_max,
	                              .timeout_ms = timeout_ms};
	assert_int_equal(guard_fleet_new(loop, &cfg, &peer_ops, p, last_id, &p->f), 0);
}

static void
peer_free(struct peer *p)
{
	guard_fleet_free(p->f);
	free(p->got);
	free(p->mine);
	memset(p, 0, sizeof(*p));
}

static struct guard_fleet_event
ev_make(int64_t seq, const char *prefix, bool permanent)
{
	struct guard_fleet_event e = {
	    .seq = seq, .action = GUARD_FLEET_BAN, .permanent = permanent};
	snprintf(e.prefix, sizeof(e.prefix), "%s", prefix);
	snprintf(e.reason, sizeof(e.reason), "sshd %" PRId64, seq);
	e.created_ms = 1700000000000 + seq;
	e.expires_ms = permanent ? 0 : 1700003600000 + seq;
	return e;
}

static struct guard_fleet_event
ev_seq(int64_t seq)
{
	char prefix[GUARD_FLEET_PREFIX_MAX];
	snprintf(prefix, sizeof(prefix), "10.%d.%d.%d/32", (int)(seq >> 16) & 255,
	         (int)(seq >> 8) & 255, (int)seq & 255);
	return ev_make(seq, prefix, false);
}

/* ---- bounded loop runs ---- */

typedef bool (*cond_fn)(void *ctx);

struct waiter {
	struct ev_timer t;
	cond_fn cond;
	void *ctx;
	uint64_t deadline;
};

static void
waiter_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct waiter *w = t->data;
	if (w->cond && w->cond(w->ctx))
		ev_break(loop, 1);
	else if (ev_clock_ns() >= w->deadline)
		ev_break(loop, 0);
	else
		ev_timer_start(loop, t, EV_MSEC(5));
}

/* Runs loop until cond holds (true) or max_ms passed (false); cond NULL: just run max_ms. */
static bool
run_until(struct ev_loop *loop, cond_fn cond, void *ctx, unsigned max_ms)
{
	struct waiter w = {.cond = cond, .ctx = ctx, .deadline = ev_clock_ns() + EV_MSEC(max_ms)};
	ev_timer_init(&w.t, waiter_cb, &w);
	ev_timer_start(loop, &w.t, 0);
	int r = ev_run(loop);
	ev_timer_stop(loop, &w.t);
	return r == 1 || (cond && cond(ctx));
}

struct want {
	struct peer *p[3];
	int ups, downs;
	size_t got;
};

static bool
want_met(void *ctx)
{
	const struct want *w = ctx;
	for (int i = 0; i < 3 && w->p[i]; i++)
		if (w->p[i]->ups < w->ups || w->p[i]->downs < w->downs || w->p[i]->ngot < w->got)
			return false;
	return true;
}

static void
wait_for(struct ev_loop *loop, struct want w, unsigned max_ms)
{
	assert_true(run_until(loop, want_met, &w, max_ms));
}

static struct ev_loop *
loop_new(void)
{
	struct ev_loop *l = NULL;
	assert_int_equal(ev_loop_new(&l), 0);
	return l;
}

static int
publish_once_as(const char *name, const struct guard_fleet_event *e)
{
	struct guard_fleet_cfg cfg = {.conninfo = pg_conninfo, .name = name};
	char err[256];
	int r = guard_fleet_publish_once(&cfg, e, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "publish_once: %s\n", err);
	return r;
}

/* ---- tests ---- */

/* Two daemons starting at once: one schema, version 1, the two triggers, no error. */
static void
test_schema_concurrent(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, "a", NULL, 0, 0, 0);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	assert_int_equal(a.downs + b.downs, 0);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_schema", NULL), 1);
	assert_int_equal(db_int("SELECT version FROM rampart_guard_schema", NULL), 1);
	assert_int_equal(db_int("SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
	                        "'rampart_guard_%'",
	                        NULL),
	                 2);
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_true(st.connected);
	assert_int_equal(st.errors, 0);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

/* A's rows reach B by NOTIFY in id order with every field; A never gets its own back. */
static void
test_notify_order(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, "a", NULL, 0, 0, 0);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	for (int i = 1; i <= 5; i++) {
		struct guard_fleet_event e = ev_seq(i);
		e.permanent = i == 3;
		if (i == 5)
			e.action = GUARD_FLEET_UNBAN;
		assert_int_equal(guard_fleet_publish(a.f, &e), 0);
	}
	wait_for(loop, (struct want){{&b}, .got = 5}, 30000);
	assert_int_equal(b.ngot, 5);
	for (size_t i = 0; i < 5; i++) {
		struct guard_fleet_event want = ev_seq((int64_t)i + 1);
		const struct guard_fleet_event *g = &b.got[i];
		if (i)
			assert_true(g->id > b.got[i - 1].id);
		assert_int_equal(g->seq, want.seq);
		assert_string_equal(g->machine, "a");
		assert_string_equal(g->prefix, want.prefix);
		assert_string_equal(g->reason, want.reason);
		assert_int_equal(g->created_ms, want.created_ms);
		assert_int_equal(g->expires_ms, want.expires_ms);
		assert_int_equal(g->permanent, i == 2);
		assert_int_equal(g->action, i == 4 ? GUARD_FLEET_UNBAN : GUARD_FLEET_BAN);
	}
	/* B's row comes after A's in id order: had A been sent its own, they would come first */
	struct guard_fleet_event e = ev_seq(1);
	assert_int_equal(guard_fleet_publish(b.f, &e), 0);
	wait_for(loop, (struct want){{&a}, .got = 1}, 30000);
	assert_int_equal(a.ngot, 1);
	assert_string_equal(a.got[0].machine, "b");
	assert_true(a.got[0].id > b.got[4].id);
	/* the trigger kept the bans in force: seq 5 was an unban of a prefix never banned */
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_bans", NULL), 5);
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_int_equal(st.published, 5);
	assert_int_equal(st.received, 1);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

/* A new member starting from last_id gets exactly the peers' rows after it, then new ones. */
static void
test_catchup_last_id(void **state)
{
	(void)state;
	for (int i = 1; i <= 10; i++) {
		struct guard_fleet_event e = ev_seq(i);
		assert_int_equal(publish_once_as("c", &e), 0);
	}
	int64_t fourth =
	    db_int("SELECT id FROM rampart_guard_history ORDER BY id OFFSET 3 LIMIT 1", NULL);
	struct ev_loop *loop = loop_new();
	struct peer b = {0};
	peer_start(loop, &b, "b", NULL, fourth, 0, 0);
	wait_for(loop, (struct want){{&b}, .ups = 1, .got = 6}, 30000);
	assert_int_equal(b.ngot, 6);
	assert_int_equal(b.got[0].seq, 5);
	assert_true(b.got[0].id > fourth);
	struct guard_fleet_event e = ev_seq(11);
	assert_int_equal(publish_once_as("c", &e), 0);
	wait_for(loop, (struct want){{&b}, .got = 7}, 30000);
	assert_int_equal(b.ngot, 7);
	assert_int_equal(b.got[6].seq, 11);
	peer_free(&b);
	ev_loop_free(loop);
}

static void
terminate_backends(void)
{
	db_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	        "WHERE application_name = 'rampart-guard'");
}

/* The backlog is asked for after what the table holds; reconnects push nothing twice. */
static void
test_pending_push(void **state)
{
	(void)state;
	for (int i = 1; i <= 10; i++) {
		struct guard_fleet_event e = ev_seq(i);
		assert_int_equal(publish_once_as("a", &e), 0);
	}
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	a.nmine = 20;
	a.mine = calloc(a.nmine, sizeof(*a.mine));
	assert_non_null(a.mine);
	for (size_t i = 0; i < a.nmine; i++)
		a.mine[i] = ev_seq((int64_t)i + 1);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	peer_start(loop, &a, "a", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	assert_int_equal(a.first_after, 10);
	assert_int_equal(
	    db_int("SELECT count(*) FROM rampart_guard_history WHERE machine = 'a'", NULL), 20);
	wait_for(loop, (struct want){{&b}, .got = 20}, 30000);
	/* the server drops the connections: both notice, come back, push and fetch nothing new */
	terminate_backends();
	wait_for(loop, (struct want){{&a, &b}, .ups = 2, .downs = 1}, 30000);
	assert_int_equal(a.downs, 1);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_history", NULL), 20);
	assert_int_equal(db_int("SELECT count(DISTINCT seq) FROM rampart_guard_history", NULL), 20);
	/* a second publish of a (machine, seq) is a no-op, from the daemon or a command */
	struct guard_fleet_event dup = ev_seq(7);
	assert_int_equal(guard_fleet_publish(a.f, &dup), 0);
	assert_int_equal(publish_once_as("a", &dup), 0);
	struct guard_fleet_event fresh = ev_seq(21);
	assert_int_equal(guard_fleet_publish(a.f, &fresh), 0);
	wait_for(loop, (struct want){{&b}, .got = 21}, 30000);
	assert_int_equal(b.ngot, 21);
	assert_int_equal(b.got[20].seq, 21);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_history", NULL), 21);
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(st.published, 11); /* seq 11..20 pushed, 21 published, 7 not again */
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

/* PostgreSQL stopped and started: down once, back up, and rows written meanwhile by another
 * client are caught up on; publishing while down is dropped, never blocks. */
static void
test_server_restart(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, "a", NULL, 0, 0, 0);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	assert_int_equal(pg_ctl("stop", NULL, 0), 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1, .downs = 1}, 30000);
	assert_true(a.why[0]);
	struct guard_fleet_event e = ev_seq(1);
	assert_int_equal(guard_fleet_publish(a.f, &e), 0);
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_false(st.connected);
	assert_int_equal(st.dropped, 1);
	/* failed attempts while down are not reported again */
	run_until(loop, NULL, NULL, 1200);
	assert_int_equal(a.downs, 1);
	assert_int_equal(pg_ctl("start", NULL, 0), 0);
	for (int i = 1; i <= 3; i++) {
		struct guard_fleet_event c = ev_seq(i);
		assert_int_equal(publish_once_as("c", &c), 0);
	}
	wait_for(loop, (struct want){{&a, &b}, .ups = 2, .downs = 1, .got = 3}, 30000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(a.got[i].seq, i + 1);
		assert_int_equal(b.got[i].seq, i + 1);
		assert_string_equal(b.got[i].machine, "c");
	}
	assert_int_equal(a.ups, 2);
	assert_int_equal(a.downs, 1);
	assert_int_equal(b.downs, 1);
	guard_fleet_stats(b.f, &st);
	assert_true(st.connected);
	assert_int_equal(st.reconnects, 1);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

/* Quotes, semicolons and comments in names, reasons and prefixes are data. */
static void
test_injection(void **state)
{
	(void)state;
	const char *name = "a'; DROP TABLE rampart_guard_bans; --";
	const char *reason = "x'); DROP TABLE rampart_guard_history; -- \\ $1 $$";
	const char *prefix = "1.2.3.4/32' OR '1'='1";
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, name, NULL, 0, 0, 0);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	struct guard_fleet_event e = ev_make(1, prefix, false);
	snprintf(e.reason, sizeof(e.reason), "%s", reason);
	assert_int_equal(guard_fleet_publish(a.f, &e), 0);
	wait_for(loop, (struct want){{&b}, .got = 1}, 30000);
	assert_string_equal(b.got[0].machine, name);
	assert_string_equal(b.got[0].reason, reason);
	assert_string_equal(b.got[0].prefix, prefix);
	assert_int_equal(
	    db_int("SELECT count(*) FROM rampart_guard_history WHERE machine = $1", name), 1);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_bans WHERE machine = $1", name),
	                 1);
	PGconn *c = db();
	PGresult *r = PQexec(c, "SELECT reason, prefix FROM rampart_guard_history");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), reason);
	assert_string_equal(PQgetvalue(r, 0, 1), prefix);
	PQclear(r);
	PQfinish(c);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

struct listed {
	struct guard_fleet_event e[8];
	size_t n;
};

static int
listed_cb(const struct guard_fleet_event *e, void *data)
{
	struct listed *l = data;
	assert_true(l->n < ARRAY_SIZE(l->e));
	l->e[l->n++] = *e;
	return 0;
}

static int
listed_stop(const struct guard_fleet_event *e, void *data)
{
	(void)e;
	(void)data;
	return 7;
}

/* The commands' helpers: a fresh database gets its schema; expired and unbanned are not
 * listed; bad input and an unreachable server are errors with a message. */
static void
test_once(void **state)
{
	(void)state;
	int64_t now = 1700000000000;
	struct guard_fleet_event e = ev_make(1, "198.51.100.1/32", true);
	assert_int_equal(publish_once_as("ops", &e), 0);
	e = ev_make(2, "198.51.100.2/32", false);
	e.expires_ms = now + 3600000;
	assert_int_equal(publish_once_as("ops", &e), 0);
	e = ev_make(3, "198.51.100.3/32", false);
	e.expires_ms = now - 1;
	assert_int_equal(publish_once_as("ops", &e), 0);
	e = ev_make(4, "198.51.100.4/32", false);
	e.expires_ms = now + 3600000;
	assert_int_equal(publish_once_as("ops", &e), 0);
	e.seq = 5;
	e.action = GUARD_FLEET_UNBAN;
	assert_int_equal(publish_once_as("ops", &e), 0);
	struct guard_fleet_cfg cfg = {.conninfo = pg_conninfo, .name = "web1"};
	struct listed l = {0};
	char err[256];
	assert_int_equal(guard_fleet_list_once(&cfg, now, listed_cb, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.e[0].prefix, "198.51.100.1/32");
	assert_true(l.e[0].permanent);
	assert_int_equal(l.e[0].expires_ms, 0);
	assert_string_equal(l.e[1].prefix, "198.51.100.2/32");
	assert_false(l.e[1].permanent);
	assert_int_equal(l.e[1].expires_ms, now + 3600000);
	assert_string_equal(l.e[1].machine, "ops");
	assert_string_equal(l.e[1].reason, "sshd 2");
	assert_int_equal(guard_fleet_list_once(&cfg, now, listed_stop, NULL, err, sizeof(err)), 7);

	e.prefix[0] = '\0';
	assert_int_equal(guard_fleet_publish_once(&cfg, &e, err, sizeof(err)), -EINVAL);
	char bad[128];
	snprintf(bad, sizeof(bad), "host=127.0.0.1 port=%d dbname=rampart user=guard", free_port());
	struct guard_fleet_cfg down = {.conninfo = bad, .name = "web1"};
	e = ev_seq(1);
	err[0] = '\0';
	assert_true(guard_fleet_publish_once(&down, &e, err, sizeof(err)) < 0);
	assert_true(err[0]);
	assert_true(guard_fleet_list_once(&down, now, listed_cb, &l, err, sizeof(err)) < 0);
}

/* A row another writer put in that does not fit the fields reaches the daemon with prefix ""
 * (to be rejected there); the rows after it still come, in order. */
static void
test_invalid_rows(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer b = {0};
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&b}, .ups = 1}, 30000);
	db_exec("INSERT INTO rampart_guard_history (machine, seq, action, kind, prefix, reason, "
	        "created_ms, expires_ms) VALUES ('c', 1, 'ban', 'ban', '192.0.2.1/32', "
	        "repeat('x', 200), 1, 2), ('c', 2, 'ban', 'ban', repeat('1', 100), 'r', 1, 2), "
	        "(repeat('m', 100), 3, 'ban', 'ban', '192.0.2.3/32', 'r', 1, 2), "
	        "('c', 4, 'ban', 'permanent', '192.0.2.4/32', 'ok', 1, 0)");
	wait_for(loop, (struct want){{&b}, .got = 4}, 30000);
	for (int i = 0; i < 3; i++)
		assert_string_equal(b.got[i].prefix, "");
	assert_string_equal(b.got[3].prefix, "192.0.2.4/32");
	assert_true(b.got[3].permanent);
	assert_string_equal(b.got[3].reason, "ok");
	peer_free(&b);
	ev_loop_free(loop);
}

static bool
published_all(void *ctx)
{
	const struct peer *p = ctx;
	struct guard_fleet_stats st;
	guard_fleet_stats(p->f, &st);
	return st.published == MANY && st.queued == 0;
}

/* 10,000 bans from A, all received by B once, in A's order. */
static void
test_many(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, "a", NULL, 0, 0, 0);
	peer_start(loop, &b, "b", NULL, 0, 0, 0);
	wait_for(loop, (struct want){{&a, &b}, .ups = 1}, 30000);
	for (int i = 1; i <= MANY; i++) {
		struct guard_fleet_event e = ev_seq(i);
		assert_int_equal(guard_fleet_publish(a.f, &e), 0);
	}
	wait_for(loop, (struct want){{&b}, .got = MANY}, 120000);
	/* B can fetch the last batch before A's loop has read the result of its commit. */
	assert_true(run_until(loop, published_all, &a, 30000));
	assert_int_equal(b.ngot, MANY);
	for (size_t i = 0; i < MANY; i++) {
		assert_int_equal(b.got[i].seq, (int64_t)i + 1);
		if (i)
			assert_true(b.got[i].id > b.got[i - 1].id);
	}
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_int_equal(st.published, MANY);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_bans", NULL), MANY);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
}

/* The publish queue is bounded: beyond it -ENOBUFS, and what was queued still goes out. */
static void
test_queue_full(void **state)
{
	(void)state;
	struct ev_loop *loop = loop_new();
	struct peer a = {0};
	peer_start(loop, &a, "a", NULL, 0, 10, 0);
	wait_for(loop, (struct want){{&a}, .ups = 1}, 30000);
	for (int i = 1; i <= 10; i++) {
		struct guard_fleet_event e = ev_seq(i);
		assert_int_equal(guard_fleet_publish(a.f, &e), 0);
	}
	struct guard_fleet_event e = ev_seq(11);
	assert_int_equal(guard_fleet_publish(a.f, &e), -ENOBUFS);
	e.prefix[0] = '\0';
	assert_int_equal(guard_fleet_publish(a.f, &e), -EINVAL);
	struct guard_fleet_stats st;
	guard_fleet_stats(a.f, &st);
	assert_int_equal(st.queued, 10);
	for (int tries = 0; tries < 100 && st.published < 10; tries++) {
		run_until(loop, NULL, NULL, 50);
		guard_fleet_stats(a.f, &st);
	}
	assert_int_equal(st.published, 10);
	assert_int_equal(db_int("SELECT count(*) FROM rampart_guard_history", NULL), 10);
	peer_free(&a);
	ev_loop_free(loop);
}

static bool
errors_at_least_3(void *ctx)
{
	struct guard_fleet_stats st;
	guard_fleet_stats(ctx, &st);
	return st.errors >= 3;
}

/* A server that accepts TCP but never answers: the attempt times out and is retried; a refused
 * port is reported down once however often it is retried. */
static void
test_timeouts(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	char mute[160];
	snprintf(mute, sizeof(mute),
	         "host=127.0.0.1 port=%d dbname=rampart user=guard sslmode=disable",
	         ntohs(sa.sin_port));
	struct ev_loop *loop = loop_new();
	struct peer a = {0}, b = {0};
	peer_start(loop, &a, "a", mute, 0, 0, 300);
	wait_for(loop, (struct want){{&a}, .downs = 1}, 10000);
	assert_int_equal(a.ups, 0);
	assert_non_null(strstr(a.why, "timed out"));

	char refused[160];
	snprintf(refused, sizeof(refused), "host=127.0.0.1 port=%d dbname=rampart user=guard",
	         free_port());
	peer_start(loop, &b, "b", refused, 0, 0, 0);
	assert_true(run_until(loop, errors_at_least_3, b.f, 20000));
	assert_int_equal(b.downs, 1);
	assert_int_equal(b.ups, 0);
	assert_true(b.why[0]);
	peer_free(&a);
	peer_free(&b);
	ev_loop_free(loop);
	close(lfd);

	struct guard_fleet *f = NULL;
	struct ev_loop *l2 = loop_new();
	struct guard_fleet_cfg cfg = {.conninfo = "nonsense", .name = "a"};
	assert_int_equal(guard_fleet_new(l2, &cfg, &peer_ops, NULL, 0, &f), -EINVAL);
	cfg.conninfo = pg_conninfo;
	cfg.name = "";
	assert_int_equal(guard_fleet_new(l2, &cfg, &peer_ops, NULL, 0, &f), -EINVAL);
	ev_loop_free(l2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_schema_concurrent, reset),
	    cmocka_unit_test_setup(test_notify_order, reset),
	    cmocka_unit_test_setup(test_catchup_last_id, reset),
	    cmocka_unit_test_setup(test_pending_push, reset),
	    cmocka_unit_test_setup(test_server_restart, reset),
	    cmocka_unit_test_setup(test_injection, reset),
	    cmocka_unit_test_setup(test_once, reset),
	    cmocka_unit_test_setup(test_invalid_rows, reset),
	    cmocka_unit_test_setup(test_many, reset),
	    cmocka_unit_test_setup(test_queue_full, reset),
	    cmocka_unit_test(test_timeouts),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
