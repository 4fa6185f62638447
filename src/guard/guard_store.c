/* Ban state in SQLite: schema v1, statements prepared once per handle, -errno results. */
#include "guard_store.h"

#include "core/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_VERSION 2
/* Long enough for `rampart guard ban` to wait out the daemon's bulk restore of thousands. */
#define STORE_BUSY_MS 5000
#define STORE_PATH_MAX 4096

static const char store_schema[] =
    "CREATE TABLE offenders ("
    " prefix TEXT PRIMARY KEY NOT NULL,"
    " family INTEGER NOT NULL CHECK (family IN (4, 6)),"
    " count INTEGER NOT NULL CHECK (count >= 0),"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL CHECK (expires_ms >= 0),"
    " origin TEXT NOT NULL CHECK (origin IN ('auto', 'manual')),"
    " reason TEXT NOT NULL,"
    " machine TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX offenders_expires ON offenders (expires_ms);"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY,"
    " prefix TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " action TEXT NOT NULL CHECK (action IN ('ban', 'unban')),"
    " expires_ms INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " origin TEXT NOT NULL CHECK (origin IN ('auto', 'manual')),"
    " reason TEXT NOT NULL,"
    " machine TEXT NOT NULL DEFAULT '',"
    " share INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX history_prefix ON history (prefix, id);"
    "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trusted ("
    " addr TEXT PRIMARY KEY NOT NULL,"
    " until_ms INTEGER NOT NULL);"
    "PRAGMA user_version = 2;";

/* v1 -> v2: bans from fleet peers (machine), what this machine shares (share), the fleet's
 * cursor (kv). */
static const char store_migrate_v2[] =
    "ALTER TABLE offenders ADD COLUMN machine TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE history ADD COLUMN machine TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE history ADD COLUMN share INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "PRAGMA user_version = 2;";

/* Sources that logged in (trust-logged-in); added after the first stores were made. */
static const char store_trusted[] = "CREATE TABLE IF NOT EXISTS trusted ("
                                    " addr TEXT PRIMARY KEY NOT NULL,"
                                    " until_ms INTEGER NOT NULL);";

enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_UPSERT,
	ST_HISTORY_ADD,
	ST_GET,
	ST_DELETE,
	ST_ACTIVE,
	ST_HISTORY,
	ST_TRUST_SET,
	ST_TRUST_PRUNE,
	ST_TRUST_EACH,
	ST_PENDING,
	ST_KV_GET,
	ST_KV_SET,
	ST_COUNT
};

/*
 * Both writes name their parameters alike so that one binder serves them. Both walks return
 * the same columns, the second being family or action.
 */
static const char *const store_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_UPSERT] = "INSERT INTO offenders (prefix, family, count, created_ms, expires_ms, origin,"
                  " reason, machine) VALUES (:prefix, :family, :count, :at, :expires, :origin,"
                  " :reason, :machine)"
                  " ON CONFLICT (prefix) DO UPDATE SET count = excluded.count,"
                  " created_ms = excluded.created_ms, expires_ms = excluded.expires_ms,"
                  " origin = excluded.origin, reason = excluded.reason,"
                  " machine = excluded.machine",
    [ST_HISTORY_ADD] = "INSERT INTO history (prefix, at_ms, action, expires_ms, count, origin,"
                       " reason, machine, share) VALUES (:prefix, :at, :action, :expires, :count,"
                       " :origin, :reason, :machine, :share)",
    [ST_GET] = "SELECT prefix, family, count, created_ms, expires_ms, origin, reason, machine"
               " FROM offenders WHERE prefix = ?1",
    [ST_DELETE] = "DELETE FROM offenders WHERE prefix = ?1",
    [ST_ACTIVE] = "SELECT prefix, family, count, created_ms, expires_ms, origin, reason, machine"
                  " FROM offenders WHERE expires_ms = 0 OR expires_ms > ?1"
                  " ORDER BY created_ms, prefix",
    [ST_HISTORY] = "SELECT prefix, action, count, at_ms, expires_ms, origin, reason, machine,"
                   " id, share FROM history WHERE prefix = ?1 ORDER BY id",
    [ST_TRUST_SET] = "INSERT INTO trusted (addr, until_ms) VALUES (?1, ?2)"
                     " ON CONFLICT (addr) DO UPDATE SET until_ms = excluded.until_ms",
    [ST_TRUST_PRUNE] = "DELETE FROM trusted WHERE until_ms <= ?1",
    [ST_TRUST_EACH] = "SELECT addr, until_ms FROM trusted WHERE until_ms > ?1 ORDER BY until_ms",
    [ST_PENDING] = "SELECT prefix, action, count, at_ms, expires_ms, origin, reason, machine,"
                   " id, share FROM history WHERE id > ?1 AND share = 1 AND machine = ''"
                   " ORDER BY id LIMIT ?2",
    [ST_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [ST_KV_SET] = "INSERT INTO kv (key, value) VALUES (?1, ?2)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

struct guard_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

/* One row as bound: the prefix in canonical text and the reason with its length. */
struct store_row {
	char prefix[NET_CIDR_STRLEN];
	int family;
	int64_t count, at_ms, expires_ms;
	const char *origin, *reason, *action, *machine;
	int reason_len;
	int64_t share;
};

DEFINE_CLEANUP_FUNC(struct guard_store, guard_store_close)

static int
store_err(sqlite3 *db, int rc)
{
	int sys;

	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_FORMAT:
		return -EBADMSG;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		sys = db ? sqlite3_system_errno(db) : 0;
		return sys > 0 ? -sys : -EIO;
	default:
		return -EIO;
	}
}

/* Reset as well as clear: a bound reason points into the caller's memory. */
static void
stmt_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int
step_done(struct guard_store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	stmt_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(s->db, rc);
}

static int
exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_err(db, rc);
}

/* One integer from a one-row query (a pragma, a count). */
static int
query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*out = sqlite3_column_int64(st, 0);
	}
	int r = rc == SQLITE_ROW ? 0 : store_err(db, rc);
	sqlite3_finalize(st);
	return r;
}

static int
make_parent(const char *path)
{
	char dir[STORE_PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path)
		return 0;
	size_t n = (size_t)(slash - path);
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Creating the file ourselves fixes its mode, which SQLite's -wal and -shm files copy. */
static int
create_file(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	/* The umask may have taken bits from 0600; set the mode exactly. */
	if (fchmod(fd, 0600) < 0)
		return -errno;
	return 0;
}

static int
switch_to_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		r = store_err(db, rc);
	else if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
		r = -ENOTSUP; /* e.g. a file system without shared memory for the WAL index */
	sqlite3_finalize(st);
	return r;
}

/* Creates schema v1 unless a concurrent opener did; a foreign database is refused. */
static int
create_schema(sqlite3 *db)
{
	int64_t version = 0, objects = 0;
	int r = exec(db, "BEGIN IMMEDIATE");

	if (r < 0)
		return r;
	r = query_int(db, "PRAGMA user_version", &version);
	if (r >= 0 && version == 0)
		r = query_int(db, "SELECT count(*) FROM sqlite_master", &objects);
	if (r >= 0 && version == 0 && objects > 0)
		r = -EBADMSG;
	if (r >= 0 && version == 0)
		r = exec(db, store_schema);
	if (r >= 0 && version > STORE_VERSION)
		r = -EPROTO;
	if (r >= 0)
		r = exec(db, "COMMIT");
	if (r < 0)
		exec(db, "ROLLBACK");
	return r;
}

static int
prepare_all(struct guard_store *s)
{
	for (size_t i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                            &s->st[i], NULL);
		/* A missing table or column: not our schema after all. */
		if (rc == SQLITE_ERROR)
			return -EBADMSG;
		if (rc != SQLITE_OK)
			return store_err(s->db, rc);
	}
	return 0;
}

static int
store_setup(struct guard_store *s)
{
	int64_t version = 0;

	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	/* Read before changing anything: the first read is what rejects a non-SQLite file. */
	int r = query_int(s->db, "PRAGMA user_version", &version);
	if (r < 0)
		return r;
	if (version > STORE_VERSION)
		return -EPROTO;
	r = switch_to_wal(s->db);
	if (r < 0)
		return r;
	r = exec(s->db, "PRAGMA synchronous = NORMAL");
	if (r < 0)
		return r;
	if (version == 1) {
		r = exec(s->db, "BEGIN IMMEDIATE");
		if (r >= 0)
			r = query_int(s->db, "PRAGMA user_version", &version);
		if (r >= 0 && version == 1)
			r = exec(s->db, store_migrate_v2);
		r = exec(s->db, r >= 0 ? "COMMIT" : "ROLLBACK") < 0 && r >= 0 ? -EIO : r;
		if (r < 0)
			return r;
	} else if (version < STORE_VERSION) {
		r = create_schema(s->db);
		if (r < 0)
			return r;
	}
	r = exec(s->db, store_trusted);
	return r < 0 ? r : prepare_all(s);
}

int
guard_store_open(const char *path, struct guard_store **out)
{
	if (!path || !out || !*path || strnlen(path, STORE_PATH_MAX) >= STORE_PATH_MAX)
		return -EINVAL;
	int r = make_parent(path);
	if (r < 0)
		return r;
	r = create_file(path);
	if (r < 0)
		return r;

	_cleanup_(guard_store_closep) struct guard_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK)
		return store_err(s->db, rc);
	r = store_setup(s);
	if (r < 0)
		return r;
	*out = TAKE_PTR(s);
	return 0;
}

void
guard_store_close(struct guard_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

static const char *
origin_name(enum guard_origin o)
{
	switch (o) {
	case GUARD_ORIGIN_AUTO:
		return "auto";
	case GUARD_ORIGIN_MANUAL:
		return "manual";
	}
	return NULL;
}

/* The prefix as net_cidr_format writes it, host bits cleared: the table's key. */
static int
canon_prefix(const struct net_cidr *net, char *buf, size_t len, int *family)
{
	if (!net || (net->addr.family != AF_INET && net->addr.family != AF_INET6))
		return -EINVAL;
	struct net_cidr c = *net;
	c.addr.port = 0;
	int r = net_addr_mask(&c.addr, c.prefix);
	if (r < 0)
		return r;
	*family = c.addr.family == AF_INET ? 4 : 6;
	r = net_cidr_format(&c, buf, len);
	return r < 0 ? r : 0;
}

static int
row_from_ban(const struct guard_ban *b, struct store_row *row)
{
	if (!b || b->expires_ms < 0 || b->created_ms < 0)
		return -EINVAL;
	*row = (struct store_row){
	    .count = b->count,
	    .at_ms = b->created_ms,
	    .expires_ms = b->expires_ms,
	    .origin = origin_name(b->origin),
	    .reason = b->reason,
	    .reason_len = (int)strnlen(b->reason, GUARD_REASON_MAX - 1),
	    .action = "ban",
	    .machine = b->machine,
	    .share = b->share,
	};
	if (!row->origin)
		return -EINVAL;
	return canon_prefix(&b->net, row->prefix, sizeof(row->prefix), &row->family);
}

/* By name: a parameter the statement lacks is skipped. */
static int
bind_text(sqlite3_stmt *st, const char *name, const char *text, int len)
{
	int i = sqlite3_bind_parameter_index(st, name);
	return i == 0 ? SQLITE_OK : sqlite3_bind_text(st, i, text, len, SQLITE_STATIC);
}

static int
bind_int64(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	return i == 0 ? SQLITE_OK : sqlite3_bind_int64(st, i, v);
}

static int
bind_row(struct guard_store *s, sqlite3_stmt *st, const struct store_row *row)
{
	int rc = bind_text(st, ":prefix", row->prefix, -1);
	if (rc == SQLITE_OK)
		rc = bind_int64(st, ":family", row->family);
	if (rc == SQLITE_OK)
		rc = bind_int64(st, ":count", row->count);
	if (rc == SQLITE_OK)
		rc = bind_int64(st, ":at", row->at_ms);
	if (rc == SQLITE_OK)
		rc = bind_int64(st, ":expires", row->expires_ms);
	if (rc == SQLITE_OK)
		rc = bind_text(st, ":origin", row->origin, -1);
	/* With its length, so that any bytes go in as text. */
	if (rc == SQLITE_OK)
		rc = bind_text(st, ":reason", row->reason, row->reason_len);
	if (rc == SQLITE_OK)
		rc = bind_text(st, ":action", row->action, -1);
	if (rc == SQLITE_OK)
		rc = bind_text(st, ":machine", row->machine ? row->machine : "", -1);
	if (rc == SQLITE_OK)
		rc = bind_int64(st, ":share", row->share);
	if (rc == SQLITE_OK)
		return 0;
	stmt_reset(st);
	return store_err(s->db, rc);
}

static int
write_row(struct guard_store *s, enum store_stmt which, const struct store_row *row)
{
	sqlite3_stmt *st = s->st[which];
	int r = bind_row(s, st, row);
	return r < 0 ? r : step_done(s, st);
}

static int
ban_one(struct guard_store *s, const struct guard_ban *b)
{
	struct store_row row;
	int r = row_from_ban(b, &row);

	if (r >= 0)
		r = write_row(s, ST_UPSERT, &row);
	if (r >= 0)
		r = write_row(s, ST_HISTORY_ADD, &row);
	return r;
}

/* The history id of the row just written: the machine's own sequence number in the fleet. */
static int64_t
last_seq(struct guard_store *s)
{
	return (int64_t)sqlite3_last_insert_rowid(s->db);
}

static int
tx_begin(struct guard_store *s)
{
	return step_done(s, s->st[ST_BEGIN]);
}

/* Commits when r says so, else (or when the commit fails) rolls back; returns r or the error. */
static int
tx_end(struct guard_store *s, int r)
{
	if (r >= 0) {
		int c = step_done(s, s->st[ST_COMMIT]);
		if (c >= 0)
			return r;
		r = c;
	}
	step_done(s, s->st[ST_ROLLBACK]);
	return r;
}

int
guard_store_ban(struct guard_store *s, const struct guard_ban *b)
{
	return guard_store_ban_seq(s, b, NULL);
}

int
guard_store_ban_seq(struct guard_store *s, const struct guard_ban *b, int64_t *seq)
{
	if (!s || !b)
		return -EINVAL;
	int r = tx_begin(s);
	if (r < 0)
		return r;
	r = ban_one(s, b);
	if (seq)
		*seq = r >= 0 ? last_seq(s) : 0;
	return tx_end(s, r);
}

int
guard_store_ban_many(struct guard_store *s, const struct guard_ban *v, size_t n)
{
	if (!s || (!v && n > 0))
		return -EINVAL;
	if (n == 0)
		return 0;
	int r = tx_begin(s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++)
		r = ban_one(s, &v[i]);
	return tx_end(s, r);
}

static int
parse_origin(const unsigned char *text, enum guard_origin *out)
{
	if (!text)
		return -EBADMSG;
	if (strcmp((const char *)text, "auto") == 0)
		*out = GUARD_ORIGIN_AUTO;
	else if (strcmp((const char *)text, "manual") == 0)
		*out = GUARD_ORIGIN_MANUAL;
	else
		return -EBADMSG;
	return 0;
}

/* Columns: prefix, family or action, count, time, expires, origin, reason. */
static int
read_row(sqlite3_stmt *st, struct guard_ban *b)
{
	*b = (struct guard_ban){0};
	const unsigned char *prefix = sqlite3_column_text(st, 0);
	if (!prefix || net_cidr_parse((const char *)prefix, &b->net) < 0)
		return -EBADMSG;
	int64_t count = sqlite3_column_int64(st, 2);
	b->created_ms = sqlite3_column_int64(st, 3);
	b->expires_ms = sqlite3_column_int64(st, 4);
	if (count < 0 || count > UINT32_MAX || b->expires_ms < 0)
		return -EBADMSG;
	b->count = (uint32_t)count;
	if (parse_origin(sqlite3_column_text(st, 5), &b->origin) < 0)
		return -EBADMSG;
	const void *reason = sqlite3_column_text(st, 6);
	size_t len = (size_t)sqlite3_column_bytes(st, 6);
	if (!reason)
		return len == 0 ? 0 : -ENOMEM;
	if (len > GUARD_REASON_MAX - 1)
		len = GUARD_REASON_MAX - 1;
	memcpy(b->reason, reason, len);
	const unsigned char *machine = sqlite3_column_text(st, 7);
	if (machine)
		snprintf(b->machine, sizeof(b->machine), "%s", (const char *)machine);
	return 0;
}

static int
read_history_row(sqlite3_stmt *st, struct guard_ban *b)
{
	int r = read_row(st, b);
	if (r < 0)
		return r;
	const unsigned char *action = sqlite3_column_text(st, 1);
	if (!action)
		return -EBADMSG;
	b->unban = strcmp((const char *)action, "unban") == 0;
	b->seq = sqlite3_column_int64(st, 8);
	b->share = sqlite3_column_int64(st, 9) != 0;
	return 0;
}

/* Steps a bound query, handing each row to cb; always leaves st reset. */
static int
walk(struct guard_store *s, sqlite3_stmt *st, bool history, guard_store_cb cb, void *data)
{
	int r = 0, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct guard_ban b;
		r = history ? read_history_row(st, &b) : read_row(st, &b);
		if (r == 0)
			r = cb(&b, data);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_err(s->db, rc);
	stmt_reset(st);
	return r;
}

int
guard_store_each_active(struct guard_store *s, int64_t now_ms, guard_store_cb cb, void *data)
{
	if (!s || !cb)
		return -EINVAL;
	sqlite3_stmt *st = s->st[ST_ACTIVE];
	/* A callback walking again would reset the walk it is called from. */
	if (sqlite3_stmt_busy(st))
		return -EBUSY;
	int rc = sqlite3_bind_int64(st, 1, now_ms);
	if (rc != SQLITE_OK)
		return store_err(s->db, rc);
	return walk(s, st, false, cb, data);
}

int
guard_store_each_history(struct guard_store *s, const struct net_cidr *net, guard_store_cb cb,
                         void *data)
{
	char prefix[NET_CIDR_STRLEN];
	int family;

	if (!s || !cb)
		return -EINVAL;
	int r = canon_prefix(net, prefix, sizeof(prefix), &family);
	if (r < 0)
		return r;
	sqlite3_stmt *st = s->st[ST_HISTORY];
	if (sqlite3_stmt_busy(st))
		return -EBUSY;
	int rc = sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		return store_err(s->db, rc);
	return walk(s, st, true, cb, data);
}

/* The prefix's row into *out: 1 found, 0 none. */
static int
get_row(struct guard_store *s, const char *prefix, struct guard_ban *out)
{
	sqlite3_stmt *st = s->st[ST_GET];
	int rc = sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	int r;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = read_row(st, out);
		r = r < 0 ? r : 1;
	} else {
		r = rc == SQLITE_DONE ? 0 : store_err(s->db, rc);
	}
	stmt_reset(st);
	return r;
}

int
guard_store_get(struct guard_store *s, const struct net_cidr *net, struct guard_ban *out)
{
	char prefix[NET_CIDR_STRLEN];
	struct guard_ban b;
	int family;

	if (!s || !out)
		return -EINVAL;
	int r = canon_prefix(net, prefix, sizeof(prefix), &family);
	if (r < 0)
		return r;
	r = get_row(s, prefix, &b);
	if (r == 1)
		*out = b;
	return r;
}

static int
delete_row(struct guard_store *s, const char *prefix)
{
	sqlite3_stmt *st = s->st[ST_DELETE];
	int rc = sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		return store_err(s->db, rc);
	return step_done(s, st);
}

static int
unban_locked(struct guard_store *s, const struct store_row *key, int64_t now_ms)
{
	struct guard_ban old;
	int r = get_row(s, key->prefix, &old);
	if (r <= 0)
		return r;
	/* a peer lifts only the ban it gave; this machine's own decisions lift any */
	if (key->machine && key->machine[0] && strcmp(old.machine, key->machine))
		return 0;

	struct store_row row = *key;
	row.count = old.count;
	row.at_ms = now_ms;
	row.expires_ms = 0;
	row.origin = "manual";
	row.reason = "unban";
	row.reason_len = -1;
	row.action = "unban";
	row.machine = key->machine;
	row.share = key->share;
	r = delete_row(s, key->prefix);
	if (r >= 0)
		r = write_row(s, ST_HISTORY_ADD, &row);
	if (r < 0)
		return r;
	return old.expires_ms == 0 || old.expires_ms > now_ms;
}

int
guard_store_unban(struct guard_store *s, const struct net_cidr *net, int64_t now_ms,
                  const char *machine, bool share, int64_t *seq)
{
	struct store_row key = {.machine = machine, .share = share};

	if (!s)
		return -EINVAL;
	int r = canon_prefix(net, key.prefix, sizeof(key.prefix), &key.family);
	if (r < 0)
		return r;
	r = tx_begin(s);
	if (r < 0)
		return r;
	int64_t before = last_seq(s);
	r = unban_locked(s, &key, now_ms);
	if (seq)
		*seq = r >= 0 && last_seq(s) != before ? last_seq(s) : 0;
	return tx_end(s, r);
}

int
guard_store_trust(struct guard_store *s, const struct net_addr *a, int64_t until_ms, int64_t now_ms)
{
	char addr[NET_ADDR_STRLEN];
	if (!s || !a || net_addr_format(a, false, addr, sizeof(addr)) < 0)
		return -EINVAL;
	sqlite3_stmt *set = s->st[ST_TRUST_SET], *prune = s->st[ST_TRUST_PRUNE];
	int rc = sqlite3_bind_text(set, 1, addr, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(set, 2, until_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(prune, 1, now_ms);
	if (rc != SQLITE_OK) {
		stmt_reset(set);
		stmt_reset(prune);
		return store_err(s->db, rc);
	}
	int r = step_done(s, set);
	return r < 0 ? r : step_done(s, prune);
}

int
guard_store_each_trusted(struct guard_store *s, int64_t now_ms, guard_store_trust_cb cb, void *data)
{
	if (!s || !cb)
		return -EINVAL;
	sqlite3_stmt *st = s->st[ST_TRUST_EACH];
	int r = 0, rc = sqlite3_bind_int64(st, 1, now_ms);
	if (rc != SQLITE_OK)
		return store_err(s->db, rc);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct net_addr a;
		const char *text = (const char *)sqlite3_column_text(st, 0);
		if (text && net_addr_parse(text, NET_PORT_NONE, &a) >= 0)
			r = cb(&a, sqlite3_column_int64(st, 1), data);
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s->db, rc);
	stmt_reset(st);
	return r;
}

int
guard_store_each_pending(struct guard_store *s, int64_t after, size_t max, guard_store_cb cb,
                         void *data)
{
	if (!s || !cb)
		return -EINVAL;
	sqlite3_stmt *st = s->st[ST_PENDING];
	int rc = sqlite3_bind_int64(st, 1, after);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, (int64_t)max);
	if (rc != SQLITE_OK) {
		stmt_reset(st);
		return store_err(s->db, rc);
	}
	return walk(s, st, true, cb, data);
}

int
guard_store_kv_get(struct guard_store *s, const char *key, int64_t *value)
{
	if (!s || !key || !value)
		return -EINVAL;
	sqlite3_stmt *st = s->st[ST_KV_GET];
	int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_err(s->db, rc);
	if (r == 1)
		*value = sqlite3_column_int64(st, 0);
	stmt_reset(st);
	return r;
}

int
guard_store_kv_set(struct guard_store *s, const char *key, int64_t value)
{
	if (!s || !key)
		return -EINVAL;
	sqlite3_stmt *st = s->st[ST_KV_SET];
	int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, value);
	if (rc != SQLITE_OK) {
		stmt_reset(st);
		return store_err(s->db, rc);
	}
	return step_done(s, st);
}
