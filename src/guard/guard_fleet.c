/*
 * guard_fleet: bans shared through PostgreSQL with libpq's asynchronous API on the event loop.
 * One connection, one query in flight; everything else waits in a bounded FIFO. One timer does
 * three jobs by phase: the reconnect backoff (IDLE), the connect and per-query limit
 * (CONNECTING, SETUP, a query in flight when READY) and the deferred start of the next query
 * (READY and idle), so no callback of ours ever runs inside guard_fleet_publish.
 */
#include "guard_fleet.h"

#include "core/cleanup.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_BATCH 256  /* rows per INSERT */
#define FLEET_FETCH 1000 /* rows per catch-up SELECT */
#define FLEET_BACKOFF_MIN_MS 500
#define FLEET_BACKOFF_MAX_MS 10000
#define FLEET_ROW_PARAMS 7 /* per row; the machine is $1 for every row */
#define FLEET_ERR_MAX 256

/*
 * Created and migrated under a transaction-scoped advisory lock, so daemons starting together
 * take turns. Each version's step runs once (IF v < N). Ids come from a BEFORE trigger that
 * takes a second advisory lock held to commit: ids are then handed out in commit order, so a
 * reader that has seen id N has seen every committed id below it (a plain bigserial lets a
 * slow transaction commit a lower id after a higher one was read, and the reader skips it).
 */
#define FLEET_SCHEMA_SQL                                                                           \
	"BEGIN;\n"                                                                                 \
	"SELECT pg_advisory_xact_lock(8245197310550337);\n"                                        \
	"CREATE TABLE IF NOT EXISTS rampart_guard_schema (version integer NOT NULL);\n"            \
	"DO $m$\n"                                                                                 \
	"DECLARE v integer;\n"                                                                     \
	"BEGIN\n"                                                                                  \
	"  SELECT coalesce(max(version), 0) INTO v FROM rampart_guard_schema;\n"                   \
	"  IF v > 1 THEN\n"                                                                        \
	"    RAISE EXCEPTION 'rampart_guard schema version % is newer than this rampart (1)', "    \
	"v;\n"                                                                                     \
	"  END IF;\n"                                                                              \
	"  IF v < 1 THEN\n"                                                                        \
	"    CREATE TABLE rampart_guard_history (\n"                                               \
	"      id bigserial PRIMARY KEY,\n"                                                        \
	"      machine text NOT NULL,\n"                                                           \
	"      seq bigint NOT NULL,\n"                                                             \
	"      action text NOT NULL CHECK (action IN ('ban', 'unban')),\n"                         \
	"      kind text NOT NULL CHECK (kind IN ('ban', 'permanent')),\n"                         \
	"      prefix text NOT NULL,\n"                                                            \
	"      reason text NOT NULL DEFAULT '',\n"                                                 \
	"      created_ms bigint NOT NULL,\n"                                                      \
	"      expires_ms bigint NOT NULL DEFAULT 0,\n"                                            \
	"      UNIQUE (machine, seq));\n"                                                          \
	"    CREATE TABLE rampart_guard_bans (\n"                                                  \
	"      machine text NOT NULL,\n"                                                           \
	"      prefix text NOT NULL,\n"                                                            \
	"      kind text NOT NULL,\n"                                                              \
	"      reason text NOT NULL,\n"                                                            \
	"      created_ms bigint NOT NULL,\n"                                                      \
	"      expires_ms bigint NOT NULL,\n"                                                      \
	"      PRIMARY KEY (machine, prefix));\n"                                                  \
	"    CREATE FUNCTION rampart_guard_history_id() RETURNS trigger LANGUAGE plpgsql AS $f$\n" \
	"    BEGIN\n"                                                                              \
	"      PERFORM pg_advisory_xact_lock(8245197310550338);\n"                                 \
	"      NEW.id := nextval('rampart_guard_history_id_seq');\n"                               \
	"      RETURN NEW;\n"                                                                      \
	"    END $f$;\n"                                                                           \
	"    CREATE FUNCTION rampart_guard_history_added() RETURNS trigger LANGUAGE plpgsql AS "   \
	"$f$\n"                                                                                    \
	"    BEGIN\n"                                                                              \
	"      IF NEW.action = 'ban' THEN\n"                                                       \
	"        INSERT INTO rampart_guard_bans VALUES (NEW.machine, NEW.prefix, NEW.kind,\n"      \
	"            NEW.reason, NEW.created_ms, NEW.expires_ms)\n"                                \
	"          ON CONFLICT (machine, prefix) DO UPDATE SET kind = EXCLUDED.kind,\n"            \
	"            reason = EXCLUDED.reason, created_ms = EXCLUDED.created_ms,\n"                \
	"            expires_ms = EXCLUDED.expires_ms;\n"                                          \
	"      ELSE\n"                                                                             \
	"        DELETE FROM rampart_guard_bans WHERE machine = NEW.machine\n"                     \
	"          AND prefix = NEW.prefix;\n"                                                     \
	"      END IF;\n"                                                                          \
	"      PERFORM pg_notify('rampart_guard', NEW.id::text);\n"                                \
	"      RETURN NULL;\n"                                                                     \
	"    END $f$;\n"                                                                           \
	"    CREATE TRIGGER rampart_guard_history_id BEFORE INSERT ON rampart_guard_history\n"     \
	"      FOR EACH ROW EXECUTE FUNCTION rampart_guard_history_id();\n"                        \
	"    CREATE TRIGGER rampart_guard_history_added AFTER INSERT ON rampart_guard_history\n"   \
	"      FOR EACH ROW EXECUTE FUNCTION rampart_guard_history_added();\n"                     \
	"    DELETE FROM rampart_guard_schema;\n"                                                  \
	"    INSERT INTO rampart_guard_schema VALUES (1);\n"                                       \
	"  END IF;\n"                                                                              \
	"END $m$;\n"                                                                               \
	"COMMIT;\n"

/* The daemon's connection also listens; a notify during setup only asks for a fetch. */
static const char fleet_setup_sql[] = FLEET_SCHEMA_SQL "LISTEN rampart_guard;\n";
static const char fleet_schema_sql[] = FLEET_SCHEMA_SQL;

static const char fleet_insert_head[] =
    "INSERT INTO rampart_guard_history (machine, seq, action, kind, prefix, reason, "
    "created_ms, expires_ms) VALUES ";
static const char fleet_insert_tail[] = " ON CONFLICT (machine, seq) DO NOTHING";
static const char fleet_maxseq_sql[] =
    "SELECT coalesce(max(seq), 0) FROM rampart_guard_history WHERE machine = $1";
static const char fleet_fetch_sql[] =
    "SELECT id, seq, machine, action, kind, prefix, reason, created_ms, expires_ms "
    "FROM rampart_guard_history WHERE id > $1::bigint AND machine <> $2 ORDER BY id LIMIT 1000";
static const char fleet_list_sql[] =
    "SELECT machine, prefix, kind, reason, created_ms, expires_ms FROM rampart_guard_bans "
    "WHERE expires_ms = 0 OR expires_ms > $1::bigint ORDER BY created_ms, machine, prefix";

enum fleet_phase {
	FLEET_IDLE,       /* no connection; the timer is the backoff */
	FLEET_CONNECTING, /* PQconnectPoll */
	FLEET_SETUP,      /* schema, LISTEN, backlog push */
	FLEET_READY,
};

enum fleet_job {
	FLEET_JOB_NONE,
	FLEET_JOB_SCHEMA,
	FLEET_JOB_MAXSEQ,
	FLEET_JOB_PUSH,
	FLEET_JOB_FETCH,
	FLEET_JOB_PUBLISH,
};

/* One multi-row INSERT's text and parameters; values point into the events and nums. */
struct fleet_batch {
	char sql[sizeof(fleet_insert_head) + sizeof(fleet_insert_tail) + FLEET_BATCH * 80];
	const char *values[1 + FLEET_BATCH * FLEET_ROW_PARAMS];
	char nums[FLEET_BATCH][3][24];
	int nparams;
};

struct guard_fleet {
	struct ev_loop *loop;
	struct guard_fleet_ops ops;
	void *data;
	char *conninfo;
	char name[GUARD_FLEET_NAME_MAX];
	size_t queue_max;
	uint64_t timeout_ns;

	PGconn *conn;
	struct ev_io io;
	struct ev_timer timer;
	enum fleet_phase phase;
	enum fleet_job job;
	bool job_failed;
	size_t job_rows; /* rows of the INSERT in flight */
	bool fetch_wanted;
	bool last_was_fetch;
	bool ever_up;
	int reported; /* last state told: -1 none yet, 0 down, 1 up */
	unsigned backoff_ms;
	int64_t last_id;
	int64_t pushed_seq;
	char err[FLEET_ERR_MAX];

	struct guard_fleet_event *ring; /* the publish FIFO */
	size_t ring_cap, ring_head, ring_len;

	struct guard_fleet_event pend[FLEET_BATCH];
	const struct guard_fleet_event *rows[FLEET_BATCH];
	struct fleet_batch batch;
	struct guard_fleet_stats stats;
};

/* ---- text helpers ---- */

static void
fleet_errcpy(char *dst, size_t len, const char *msg)
{
	if (!len)
		return;
	snprintf(dst, len, "%s", msg ? msg : "");
	size_t n = strlen(dst);
	while (n && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

static bool
fleet_str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool
fleet_event_ok(const struct guard_fleet_event *e)
{
	return (e->action == GUARD_FLEET_BAN || e->action == GUARD_FLEET_UNBAN) &&
	       fleet_str_ok(e->prefix, sizeof(e->prefix)) && e->prefix[0] &&
	       fleet_str_ok(e->reason, sizeof(e->reason));
}

/* Whole field or nothing: a value that does not fit marks the row invalid. */
static bool
fleet_copy(char *dst, size_t size, const char *v)
{
	size_t n = strlen(v);
	if (n >= size) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, v, n + 1);
	return true;
}

static bool
fleet_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

/* ---- the INSERT ---- */

static int
fleet_batch_row(struct fleet_batch *b, size_t i, const struct guard_fleet_event *e, size_t *pos)
{
	char *num = b->nums[i][0];
	snprintf(b->nums[i][0], sizeof(b->nums[i][0]), "%" PRId64, e->seq);
	snprintf(b->nums[i][1], sizeof(b->nums[i][1]), "%" PRId64, e->created_ms);
	snprintf(b->nums[i][2], sizeof(b->nums[i][2]), "%" PRId64, e->expires_ms);
	const char **v = &b->values[b->nparams];
	v[0] = num;
	v[1] = e->action == GUARD_FLEET_BAN ? "ban" : "unban";
	v[2] = e->permanent ? "permanent" : "ban";
	v[3] = e->prefix;
	v[4] = e->reason;
	v[5] = b->nums[i][1];
	v[6] = b->nums[i][2];
	int p = b->nparams + 1; /* $n of v[0] */
	int n = snprintf(b->sql + *pos, sizeof(b->sql) - *pos,
	                 "%s($1,$%d::bigint,$%d,$%d,$%d,$%d,$%d::bigint,$%d::bigint)", i ? "," : "",
	                 p, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6);
	if (n < 0 || (size_t)n >= sizeof(b->sql) - *pos)
		return -ENOBUFS;
	*pos += (size_t)n;
	b->nparams += FLEET_ROW_PARAMS;
	return 0;
}

/* One INSERT of rows[0..n) as machine name; every value a parameter. */
static int
fleet_batch_build(struct fleet_batch *b, const char *name,
                  const struct guard_fleet_event *const *rows, size_t n)
{
	if (n == 0 || n > FLEET_BATCH)
		return -EINVAL;
	size_t pos = sizeof(fleet_insert_head) - 1;
	memcpy(b->sql, fleet_insert_head, pos);
	b->values[0] = name;
	b->nparams = 1;
	for (size_t i = 0; i < n; i++) {
		int r = fleet_batch_row(b, i, rows[i], &pos);
		if (r < 0)
			return r;
	}
	if (sizeof(b->sql) - pos < sizeof(fleet_insert_tail))
		return -ENOBUFS;
	memcpy(b->sql + pos, fleet_insert_tail, sizeof(fleet_insert_tail));
	return 0;
}

/* A history row (fetch columns) or a bans row (list columns) into e; prefix "" if invalid. */
static void
fleet_parse_history(const PGresult *r, int i, struct guard_fleet_event *e)
{
	memset(e, 0, sizeof(*e));
	bool ok = fleet_i64(PQgetvalue(r, i, 0), &e->id);
	ok &= fleet_i64(PQgetvalue(r, i, 1), &e->seq);
	ok &= fleet_copy(e->machine, sizeof(e->machine), PQgetvalue(r, i, 2));
	const char *action = PQgetvalue(r, i, 3), *kind = PQgetvalue(r, i, 4);
	if (!strcmp(action, "ban"))
		e->action = GUARD_FLEET_BAN;
	else if (!strcmp(action, "unban"))
		e->action = GUARD_FLEET_UNBAN;
	else
		ok = false;
	e->permanent = !strcmp(kind, "permanent");
	ok &= e->permanent || !strcmp(kind, "ban");
	ok &= fleet_copy(e->reason, sizeof(e->reason), PQgetvalue(r, i, 6));
	ok &= fleet_i64(PQgetvalue(r, i, 7), &e->created_ms);
	ok &= fleet_i64(PQgetvalue(r, i, 8), &e->expires_ms);
	if (!fleet_copy(e->prefix, sizeof(e->prefix), PQgetvalue(r, i, 5)) || !ok)
		e->prefix[0] = '\0';
}

static void
fleet_parse_ban(const PGresult *r, int i, struct guard_fleet_event *e)
{
	memset(e, 0, sizeof(*e));
	e->action = GUARD_FLEET_BAN;
	bool ok = fleet_copy(e->machine, sizeof(e->machine), PQgetvalue(r, i, 0));
	const char *kind = PQgetvalue(r, i, 2);
	e->permanent = !strcmp(kind, "permanent");
	ok &= e->permanent || !strcmp(kind, "ban");
	ok &= fleet_copy(e->reason, sizeof(e->reason), PQgetvalue(r, i, 3));
	ok &= fleet_i64(PQgetvalue(r, i, 4), &e->created_ms);
	ok &= fleet_i64(PQgetvalue(r, i, 5), &e->expires_ms);
	if (!fleet_copy(e->prefix, sizeof(e->prefix), PQgetvalue(r, i, 1)) || !ok)
		e->prefix[0] = '\0';
}

/* ---- connection parameters ---- */

/* Our defaults first, the user's string (dbname, expanded) last: libpq keeps the last value of
 * a repeated keyword, so the user's settings win. Keep-alives notice a server that vanished. */
#define FLEET_CONN_PARAMS(conninfo, timeout)                                                       \
	const char *keys[] = {"keepalives",                                                        \
	                      "keepalives_idle",                                                   \
	                      "keepalives_interval",                                               \
	                      "keepalives_count",                                                  \
	                      "application_name",                                                  \
	                      "connect_timeout",                                                   \
	                      "dbname",                                                            \
	                      NULL};                                                               \
	const char *vals[] = {"1", "10", "5", "3", "rampart-guard", timeout, conninfo, NULL}

/* libpq prints notices (and a server's closing FATAL) to stderr; the module does not log:
 * what matters reaches the daemon through ops->state. */
static void
fleet_notice_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* ---- the asynchronous connection ---- */

static void fleet_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events);

static void
fleet_arm(struct guard_fleet *f, uint64_t after_ns)
{
	ev_timer_start(f->loop, &f->timer, after_ns);
}

static void
fleet_drop_queue(struct guard_fleet *f)
{
	f->stats.dropped += f->ring_len;
	f->ring_head = f->ring_len = 0;
}

/* Frees the connection, tells the daemon once, and schedules the next attempt. */
static void
fleet_down(struct guard_fleet *f, const char *why)
{
	char msg[FLEET_ERR_MAX];
	fleet_errcpy(msg, sizeof(msg), why && *why ? why : "connection lost");
	ev_io_stop(f->loop, &f->io);
	PQfinish(f->conn);
	f->conn = NULL;
	f->phase = FLEET_IDLE;
	f->job = FLEET_JOB_NONE;
	f->stats.connected = false;
	f->stats.errors++;
	fleet_drop_queue(f);
	fleet_arm(f, EV_MSEC(f->backoff_ms));
	f->backoff_ms =
	    f->backoff_ms * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : f->backoff_ms * 2;
	if (f->reported != 0) {
		f->reported = 0;
		if (f->ops.state)
			f->ops.state(false, msg, f->data);
	}
}

static void
fleet_down_conn(struct guard_fleet *f)
{
	fleet_down(f, PQerrorMessage(f->conn));
}

/* libpq may open a new socket for each address it tries, possibly under the old number. */
static int
fleet_watch(struct guard_fleet *f, uint32_t events)
{
	int fd = PQsocket(f->conn);
	ev_io_stop(f->loop, &f->io);
	if (fd < 0)
		return -EBADF;
	ev_io_init(&f->io, fd, events, fleet_io_cb, f);
	return ev_io_start(f->loop, &f->io);
}

/* Pushes libpq's output; wants WRITE only while some is left. -1: went down. */
static int
fleet_flush(struct guard_fleet *f)
{
	int r = PQflush(f->conn);
	if (r < 0 || ev_io_set(f->loop, &f->io, r ? EV_READ | EV_WRITE : EV_READ) < 0) {
		fleet_down_conn(f);
		return -1;
	}
	return 0;
}

static int
fleet_sent(struct guard_fleet *f, int ok, enum fleet_job job)
{
	if (!ok) {
		fleet_down_conn(f);
		return -1;
	}
	f->job = job;
	f->job_failed = false;
	fleet_arm(f, f->timeout_ns);
	return fleet_flush(f);
}

static int
fleet_send_insert(struct guard_fleet *f, size_t n, enum fleet_job job)
{
	if (fleet_batch_build(&f->batch, f->name, f->rows, n) < 0) {
		fleet_down(f, "insert too large");
		return -1;
	}
	f->job_rows = n;
	int ok = PQsendQueryParams(f->conn, f->batch.sql, f->batch.nparams, NULL, f->batch.values,
	                           NULL, NULL, 0);
	return fleet_sent(f, ok, job);
}

static void
fleet_ready(struct guard_fleet *f)
{
	f->phase = FLEET_READY;
	f->stats.connected = true;
	f->backoff_ms = FLEET_BACKOFF_MIN_MS;
	if (f->ever_up)
		f->stats.reconnects++;
	f->ever_up = true;
	f->fetch_wanted = true; /* catch up on what the peers did meanwhile */
	fleet_arm(f, 0);
	if (f->reported != 1) {
		f->reported = 1;
		if (f->ops.state)
			f->ops.state(true, NULL, f->data);
	}
}

/* The next batch of this machine's backlog, or READY when the daemon has none left. */
static void
fleet_push(struct guard_fleet *f)
{
	for (;;) {
		size_t n = f->ops.pending
		               ? f->ops.pending(f->pushed_seq, f->pend, FLEET_BATCH, f->data)
		               : 0;
		if (n > FLEET_BATCH)
			n = FLEET_BATCH;
		if (n == 0 || f->pend[n - 1].seq <= f->pushed_seq)
			break;
		f->pushed_seq = f->pend[n - 1].seq;
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (fleet_event_ok(&f->pend[i]))
				f->rows[k++] = &f->pend[i];
			else
				f->stats.dropped++;
		}
		if (k) {
			fleet_send_insert(f, k, FLEET_JOB_PUSH);
			return;
		}
	}
	fleet_ready(f);
}

static void
fleet_send_fetch(struct guard_fleet *f)
{
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, f->last_id);
	const char *v[] = {id, f->name};
	f->fetch_wanted = false;
	f->last_was_fetch = true;
	fleet_sent(f, PQsendQueryParams(f->conn, fleet_fetch_sql, 2, NULL, v, NULL, NULL, 0),
	           FLEET_JOB_FETCH);
}

static void
fleet_send_publish(struct guard_fleet *f)
{
	size_t n = f->ring_len < FLEET_BATCH ? f->ring_len : FLEET_BATCH;
	for (size_t i = 0; i < n; i++)
		f->rows[i] = &f->ring[(f->ring_head + i) % f->ring_cap];
	f->last_was_fetch = false;
	if (fleet_send_insert(f, n, FLEET_JOB_PUBLISH) < 0)
		return;
	/* libpq has copied the values into its output buffer */
	f->ring_head = (f->ring_head + n) % f->ring_cap;
	f->ring_len -= n;
}

/* READY and idle: a fetch when one is wanted (alternating with publishes when both wait). */
static void
fleet_next(struct guard_fleet *f)
{
	if (f->phase != FLEET_READY || f->job != FLEET_JOB_NONE)
		return;
	if (f->fetch_wanted && (f->ring_len == 0 || !f->last_was_fetch))
		fleet_send_fetch(f);
	else if (f->ring_len)
		fleet_send_publish(f);
	else
		ev_timer_stop(f->loop, &f->timer);
}

static void
fleet_connected(struct guard_fleet *f)
{
	f->phase = FLEET_SETUP;
	if (PQsetnonblocking(f->conn, 1) < 0 || fleet_watch(f, EV_READ) < 0) {
		fleet_down_conn(f);
		return;
	}
	fleet_sent(f, PQsendQuery(f->conn, fleet_setup_sql), FLEET_JOB_SCHEMA);
}

static void
fleet_connect_step(struct guard_fleet *f)
{
	switch (PQconnectPoll(f->conn)) {
	case PGRES_POLLING_READING:
		if (fleet_watch(f, EV_READ) < 0)
			fleet_down_conn(f);
		break;
	case PGRES_POLLING_WRITING:
		if (fleet_watch(f, EV_WRITE) < 0)
			fleet_down_conn(f);
		break;
	case PGRES_POLLING_OK:
		fleet_connected(f);
		break;
	default:
		fleet_down_conn(f);
		break;
	}
}

static void
fleet_start(struct guard_fleet *f)
{
	FLEET_CONN_PARAMS(f->conninfo, "0");
	f->conn = PQconnectStartParams(keys, vals, 1);
	if (!f->conn) {
		fleet_down(f, "out of memory");
		return;
	}
	f->phase = FLEET_CONNECTING;
	PQsetNoticeProcessor(f->conn, fleet_notice_quiet, NULL);
	if (PQstatus(f->conn) == CONNECTION_BAD) {
		fleet_down_conn(f);
		return;
	}
	/* libpq's connect_timeout is not applied to PQconnectPoll: the timer is */
	fleet_arm(f, f->timeout_ns);
	if (fleet_watch(f, EV_WRITE) < 0)
		fleet_down_conn(f);
}

/* ---- results ---- */

static void
fleet_result_error(struct guard_fleet *f, const PGresult *r)
{
	if (!f->job_failed)
		fleet_errcpy(f->err, sizeof(f->err), PQresultErrorMessage(r));
	f->job_failed = true;
}

static void
fleet_result_fetch(struct guard_fleet *f, const PGresult *r)
{
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		struct guard_fleet_event e;
		fleet_parse_history(r, i, &e);
		if (e.id <= f->last_id)
			continue;
		f->last_id = e.id;
		f->stats.received++;
		if (f->ops.event)
			f->ops.event(&e, f->data);
	}
	if (n && f->ops.batch_end)
		f->ops.batch_end(f->data);
	if (n >= FLEET_FETCH)
		f->fetch_wanted = true;
}

static void
fleet_result(struct guard_fleet *f, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fleet_result_error(f, r);
		return;
	}
	int64_t v;
	switch (f->job) {
	case FLEET_JOB_MAXSEQ:
		if (PQntuples(r) == 1 && fleet_i64(PQgetvalue(r, 0, 0), &v))
			f->pushed_seq = v;
		else
			fleet_result_error(f, r);
		break;
	case FLEET_JOB_PUSH:
	case FLEET_JOB_PUBLISH:
		if (fleet_i64(PQcmdTuples(r), &v) && v > 0)
			f->stats.published += (uint64_t)v;
		break;
	case FLEET_JOB_FETCH:
		fleet_result_fetch(f, r);
		break;
	default:
		break;
	}
}

static void
fleet_send_maxseq(struct guard_fleet *f)
{
	const char *v[] = {f->name};
	fleet_sent(f, PQsendQueryParams(f->conn, fleet_maxseq_sql, 1, NULL, v, NULL, NULL, 0),
	           FLEET_JOB_MAXSEQ);
}

/* The query in flight has returned all its results. */
static void
fleet_job_done(struct guard_fleet *f)
{
	enum fleet_job job = f->job;
	f->job = FLEET_JOB_NONE;
	if (f->job_failed) {
		if (job != FLEET_JOB_PUBLISH) {
			fleet_down(f, f->err);
			return;
		}
		/* a bad row must not cost the connection; the rows are lost to the fleet */
		f->stats.errors++;
		f->stats.dropped += f->job_rows;
	}
	switch (job) {
	case FLEET_JOB_SCHEMA:
		fleet_send_maxseq(f);
		break;
	case FLEET_JOB_MAXSEQ:
	case FLEET_JOB_PUSH:
		fleet_push(f);
		break;
	default:
		fleet_next(f);
		break;
	}
}

/* Results as far as they have arrived; -1 when the connection went down meanwhile. */
static int
fleet_results(struct guard_fleet *f)
{
	while (f->conn && f->job != FLEET_JOB_NONE && !PQisBusy(f->conn)) {
		PGresult *r = PQgetResult(f->conn);
		if (!r) {
			fleet_job_done(f);
			continue;
		}
		fleet_result(f, r);
		PQclear(r);
	}
	return f->conn ? 0 : -1;
}

static void
fleet_notifies(struct guard_fleet *f)
{
	PGnotify *n;
	while ((n = PQnotifies(f->conn))) {
		int64_t id;
		/* a payload that is not an id still says something changed */
		if (!fleet_i64(n->extra, &id) || id > f->last_id)
			f->fetch_wanted = true;
		PQfreemem(n);
	}
	if (f->fetch_wanted && f->phase == FLEET_READY && f->job == FLEET_JOB_NONE)
		fleet_next(f);
}

static void
fleet_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	struct guard_fleet *f = io->data;
	if (f->phase == FLEET_CONNECTING) {
		fleet_connect_step(f);
		return;
	}
	if ((events & (EV_READ | EV_ERROR)) && !PQconsumeInput(f->conn)) {
		fleet_down_conn(f);
		return;
	}
	if ((events & EV_WRITE) && fleet_flush(f) < 0)
		return;
	if (fleet_results(f) < 0)
		return;
	fleet_notifies(f);
	if (f->conn && PQstatus(f->conn) == CONNECTION_BAD)
		fleet_down_conn(f);
}

static void
fleet_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	struct guard_fleet *f = t->data;
	switch (f->phase) {
	case FLEET_IDLE:
		fleet_start(f);
		break;
	case FLEET_CONNECTING:
		fleet_down(f, "connection timed out");
		break;
	case FLEET_SETUP:
		fleet_down(f, "setup timed out");
		break;
	case FLEET_READY:
		if (f->job != FLEET_JOB_NONE)
			fleet_down(f, "query timed out");
		else
			fleet_next(f);
		break;
	}
}

/* ---- the API ---- */

int
guard_fleet_new(struct ev_loop *loop, const struct guard_fleet_cfg *cfg,
                const struct guard_fleet_ops *ops, void *data, int64_t last_id,
                struct guard_fleet **out)
{
	if (!loop || !cfg || !cfg->conninfo || !cfg->name || !cfg->name[0] || !ops || !out ||
	    strlen(cfg->name) >= GUARD_FLEET_NAME_MAX)
		return -EINVAL;
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(cfg->conninfo, &perr);
	if (!opts) {
		PQfreemem(perr);
		return -EINVAL;
	}
	PQconninfoFree(opts);
	_cleanup_free_ struct guard_fleet *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->conninfo = strdup(cfg->conninfo);
	if (!f->conninfo)
		return -ENOMEM;
	snprintf(f->name, sizeof(f->name), "%s", cfg->name);
	f->loop = loop;
	f->ops = *ops;
	f->data = data;
	f->queue_max = cfg->queue_max ? cfg->queue_max : GUARD_FLEET_QUEUE_MAX;
	f->timeout_ns = EV_MSEC(cfg->timeout_ms ? cfg->timeout_ms : GUARD_FLEET_TIMEOUT_MS);
	f->last_id = last_id;
	f->reported = -1;
	f->backoff_ms = FLEET_BACKOFF_MIN_MS;
	f->phase = FLEET_IDLE;
	ev_io_init(&f->io, -1, 0, fleet_io_cb, f);
	ev_timer_init(&f->timer, fleet_timer_cb, f);
	/* the first attempt from the loop, so no callback runs inside this call */
	fleet_arm(f, 0);
	*out = TAKE_PTR(f);
	return 0;
}

void
guard_fleet_free(struct guard_fleet *f)
{
	if (!f)
		return;
	ev_io_stop(f->loop, &f->io);
	ev_timer_stop(f->loop, &f->timer);
	PQfinish(f->conn);
	free(f->ring);
	free(f->conninfo);
	free(f);
}

/* Doubles the ring up to queue_max, unwrapping it. */
static int
fleet_ring_grow(struct guard_fleet *f)
{
	size_t cap = f->ring_cap ? f->ring_cap * 2 : 64;
	if (cap > f->queue_max)
		cap = f->queue_max;
	struct guard_fleet_event *r = calloc(cap, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < f->ring_len; i++)
		r[i] = f->ring[(f->ring_head + i) % f->ring_cap];
	free(f->ring);
	f->ring = r;
	f->ring_cap = cap;
	f->ring_head = 0;
	return 0;
}

int
guard_fleet_publish(struct guard_fleet *f, const struct guard_fleet_event *e)
{
	if (!fleet_event_ok(e))
		return -EINVAL;
	if (f->phase != FLEET_READY) {
		f->stats.dropped++;
		return 0;
	}
	if (f->ring_len >= f->queue_max)
		return -ENOBUFS;
	if (f->ring_len == f->ring_cap) {
		int r = fleet_ring_grow(f);
		if (r < 0)
			return r;
	}
	struct guard_fleet_event *slot = &f->ring[(f->ring_head + f->ring_len) % f->ring_cap];
	*slot = *e;
	slot->id = 0;
	snprintf(slot->machine, sizeof(slot->machine), "%s", f->name);
	f->ring_len++;
	if (f->job == FLEET_JOB_NONE && !f->timer.active)
		fleet_arm(f, 0);
	return 0;
}

void
guard_fleet_stats(const struct guard_fleet *f, struct guard_fleet_stats *out)
{
	*out = f->stats;
	out->queued = f->ring_len;
}

/* ---- one-shot helpers ---- */

static void
fleet_pqfinishp(PGconn **c)
{
	PQfinish(*c);
}

static void
fleet_pqclearp(PGresult **r)
{
	PQclear(*r);
}

static int
fleet_once_connect(const struct guard_fleet_cfg *cfg, PGconn **out, char *err, size_t errlen)
{
	if (!cfg || !cfg->conninfo || !cfg->name || strlen(cfg->name) >= GUARD_FLEET_NAME_MAX) {
		fleet_errcpy(err, errlen, "bad fleet configuration");
		return -EINVAL;
	}
	char timeout[16];
	unsigned ms = cfg->timeout_ms ? cfg->timeout_ms : GUARD_FLEET_TIMEOUT_MS;
	snprintf(timeout, sizeof(timeout), "%u", (ms + 999) / 1000);
	FLEET_CONN_PARAMS(cfg->conninfo, timeout);
	_cleanup_(fleet_pqfinishp) PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		fleet_errcpy(err, errlen, "out of memory");
		return -ENOMEM;
	}
	PQsetNoticeProcessor(c, fleet_notice_quiet, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		fleet_errcpy(err, errlen, PQerrorMessage(c));
		return -ECONNREFUSED;
	}
	_cleanup_(fleet_pqclearp) PGresult *r = PQexec(c, fleet_schema_sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fleet_errcpy(err, errlen, PQerrorMessage(c));
		return -EIO;
	}
	*out = TAKE_PTR(c);
	return 0;
}

int
guard_fleet_publish_once(const struct guard_fleet_cfg *cfg, const struct guard_fleet_event *e,
                         char *err, size_t errlen)
{
	fleet_errcpy(err, errlen, "");
	if (!e || !fleet_event_ok(e)) {
		fleet_errcpy(err, errlen, "bad event");
		return -EINVAL;
	}
	_cleanup_(fleet_pqfinishp) PGconn *c = NULL;
	int ret = fleet_once_connect(cfg, &c, err, errlen);
	if (ret < 0)
		return ret;
	_cleanup_free_ struct fleet_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	const struct guard_fleet_event *rows[] = {e};
	ret = fleet_batch_build(b, cfg->name, rows, 1);
	if (ret < 0)
		return ret;
	_cleanup_(fleet_pqclearp) PGresult *r =
	    PQexecParams(c, b->sql, b->nparams, NULL, b->values, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fleet_errcpy(err, errlen, PQerrorMessage(c));
		return -EIO;
	}
	return 0;
}

int
guard_fleet_list_once(const struct guard_fleet_cfg *cfg, int64_t now_ms, guard_fleet_row_cb cb,
                      void *data, char *err, size_t errlen)
{
	fleet_errcpy(err, errlen, "");
	if (!cb)
		return -EINVAL;
	_cleanup_(fleet_pqfinishp) PGconn *c = NULL;
	int ret = fleet_once_connect(cfg, &c, err, errlen);
	if (ret < 0)
		return ret;
	char now[24];
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	const char *v[] = {now};
	_cleanup_(fleet_pqclearp) PGresult *r =
	    PQexecParams(c, fleet_list_sql, 1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fleet_errcpy(err, errlen, PQerrorMessage(c));
		return -EIO;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct guard_fleet_event e;
		fleet_parse_ban(r, i, &e);
		ret = cb(&e, data);
		if (ret)
			return ret;
	}
	return 0;
}
