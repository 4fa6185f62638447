/* Unit tests for src/guard/guard_store: the SQLite ban store, each test in its own temp dir. */
#include "core/net.h"
#include "guard/guard_store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define MANY 5000

struct fixture {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-guard_store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/guard.db", f->dir);
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return r;
}

static struct guard_ban
make_ban(const char *cidr, int64_t created, int64_t expires, uint32_t count, const char *reason)
{
	struct guard_ban b = {.created_ms = created, .expires_ms = expires, .count = count};
	assert_int_equal(net_cidr_parse(cidr, &b.net), 0);
	snprintf(b.reason, sizeof(b.reason), "%s", reason);
	return b;
}

static struct net_cidr
cidr(const char *s)
{
	struct net_cidr c;
	assert_int_equal(net_cidr_parse(s, &c), 0);
	return c;
}

static void
assert_cidr(const struct net_cidr *c, const char *want)
{
	char buf[NET_CIDR_STRLEN];
	assert_true(net_cidr_format(c, buf, sizeof(buf)) >= 0);
	assert_string_equal(buf, want);
}

static void
assert_mode(const char *path, mode_t want)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, want);
}

/* Collects what a walk hands over; stop_at > 0 stops after that many with 7. */
struct seen {
	struct guard_ban v[MANY + 8];
	size_t n;
	size_t stop_at;
};

static int
collect(const struct guard_ban *b, void *data)
{
	struct seen *s = data;
	assert_true(s->n < MANY + 8);
	s->v[s->n++] = *b;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

/* Not by assignment: a compound literal this size would sit on the stack. */
static void
seen_reset(struct seen *s, size_t stop_at)
{
	memset(s, 0, sizeof(*s));
	s->stop_at = stop_at;
}

static struct seen *
seen_new(void)
{
	struct seen *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	return s;
}

/* Created in a missing parent (0750), mode 0600 whatever the umask; data survives reopening. */
static void
test_open_create_reopen(void **state)
{
	struct fixture *f = *state;
	char sub[128], path[160], wal[176];
	struct guard_store *s = NULL;
	struct guard_ban got;

	snprintf(sub, sizeof(sub), "%s/state", f->dir);
	snprintf(path, sizeof(path), "%s/guard.db", sub);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	mode_t old = umask(022);
	assert_int_equal(guard_store_open(path, &s), 0);
	umask(old);
	assert_mode(sub, 0750);
	assert_mode(path, 0600);

	struct guard_ban b = make_ban("198.51.100.7", 1000, 0, 5, "too many failures");
	b.origin = GUARD_ORIGIN_MANUAL;
	assert_int_equal(guard_store_ban(s, &b), 0);
	guard_store_close(s);

	s = NULL;
	assert_int_equal(guard_store_open(path, &s), 0);
	struct net_cidr key = cidr("198.51.100.7");
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_cidr(&got.net, "198.51.100.7/32");
	assert_int_equal(got.created_ms, 1000);
	assert_int_equal(got.expires_ms, 0);
	assert_int_equal(got.count, 5);
	assert_int_equal(got.origin, GUARD_ORIGIN_MANUAL);
	assert_string_equal(got.reason, "too many failures");
	/* The WAL takes the database's mode, not the umask's. */
	assert_mode(wal, 0600);
	guard_store_close(s);
}

static void
test_mode_ignores_umask(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;

	mode_t old = umask(0277);
	int r = guard_store_open(f->path, &s);
	umask(old);
	assert_int_equal(r, 0);
	assert_mode(f->path, 0600);
	guard_store_close(s);

	/* An existing file keeps the mode its admin gave it. */
	assert_int_equal(chmod(f->path, 0640), 0);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	assert_mode(f->path, 0640);
	guard_store_close(s);
}

static void
test_ban_get_unban(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct guard_ban got;

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct net_cidr key = cidr("203.0.113.9");
	assert_int_equal(guard_store_get(s, &key, &got), 0);

	struct guard_ban b = make_ban("203.0.113.9", 100, 5000, 1, "first");
	assert_int_equal(guard_store_ban(s, &b), 0);
	b = make_ban("203.0.113.9", 6000, 20000, 2, "second");
	assert_int_equal(guard_store_ban(s, &b), 0);
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_int_equal(got.count, 2);
	assert_int_equal(got.created_ms, 6000);
	assert_int_equal(got.expires_ms, 20000);
	assert_int_equal(got.origin, GUARD_ORIGIN_AUTO);
	assert_string_equal(got.reason, "second");

	/* The unban forgets the count: the next ban starts over. */
	assert_int_equal(guard_store_unban(s, &key, 7000, NULL, false, NULL), 1);
	assert_int_equal(guard_store_get(s, &key, &got), 0);
	assert_int_equal(guard_store_unban(s, &key, 7000, NULL, false, NULL), 0);
	b = make_ban("203.0.113.9", 8000, 9000, 1, "third");
	assert_int_equal(guard_store_ban(s, &b), 0);
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_int_equal(got.count, 1);

	/* Expired: not banned any more, but the row (and its count) goes all the same. */
	assert_int_equal(guard_store_unban(s, &key, 9000, NULL, false, NULL), 0);
	assert_int_equal(guard_store_get(s, &key, &got), 0);
	guard_store_close(s);
}

/* Host bits and a port never make a second key for the same prefix. */
static void
test_prefix_is_canonical(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct guard_ban got;

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban b = make_ban("10.1.2.0/24", 1, 0, 1, "net");
	b.net.addr.u.bytes[3] = 77; /* host bits set behind net_cidr_parse's back */
	b.net.addr.port = 22;
	assert_int_equal(guard_store_ban(s, &b), 0);
	struct net_cidr key = cidr("10.1.2.0/24");
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_cidr(&got.net, "10.1.2.0/24");
	assert_int_equal(got.net.addr.port, 0);
	key = cidr("10.1.2.0/25");
	assert_int_equal(guard_store_get(s, &key, &got), 0);
	guard_store_close(s);
}

static void
test_rejects_bad_bans(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct seen *seen = seen_new();

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban b = make_ban("192.0.2.1", 1, 0, 1, "x");
	b.net.prefix = 33;
	assert_int_equal(guard_store_ban(s, &b), -EINVAL);
	b = make_ban("192.0.2.1", 1, 0, 1, "x");
	b.net.addr.family = 0;
	assert_int_equal(guard_store_ban(s, &b), -EINVAL);
	b = make_ban("192.0.2.1", 1, -5, 1, "x");
	assert_int_equal(guard_store_ban(s, &b), -EINVAL);
	b = make_ban("192.0.2.1", 1, 0, 1, "x");
	b.origin = (enum guard_origin)9;
	assert_int_equal(guard_store_ban(s, &b), -EINVAL);
	assert_int_equal(guard_store_ban(s, NULL), -EINVAL);
	assert_int_equal(guard_store_each_active(s, 0, collect, seen), 0);
	assert_int_equal(seen->n, 0);
	guard_store_close(s);
	free(seen);
}

static void
test_each_active(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct seen *seen = seen_new();
	const int64_t now = 10000;

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban v[] = {
	    make_ban("192.0.2.3", 300, 0, 5, "permanent"),
	    make_ban("192.0.2.1", 100, now + 1, 1, "live"),
	    make_ban("192.0.2.2", 200, now - 1, 1, "expired"),
	    make_ban("192.0.2.4", 400, now, 1, "expires now"),
	    make_ban("2001:db8::5", 50, now + 60000, 2, "live v6"),
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(guard_store_ban(s, &v[i]), 0);

	assert_int_equal(guard_store_each_active(s, now, collect, seen), 0);
	assert_int_equal(seen->n, 3);
	assert_cidr(&seen->v[0].net, "2001:db8::5/128");
	assert_cidr(&seen->v[1].net, "192.0.2.1/32");
	assert_cidr(&seen->v[2].net, "192.0.2.3/32");
	assert_int_equal(seen->v[2].expires_ms, 0);
	assert_string_equal(seen->v[2].reason, "permanent");

	/* A non-zero callback result stops the walk and comes back; the next walk starts over. */
	seen_reset(seen, 2);
	assert_int_equal(guard_store_each_active(s, now, collect, seen), 7);
	assert_int_equal(seen->n, 2);
	seen_reset(seen, 0);
	assert_int_equal(guard_store_each_active(s, 0, collect, seen), 0);
	assert_int_equal(seen->n, 5);
	guard_store_close(s);
	free(seen);
}

static void
test_history_order(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct seen *seen = seen_new();

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban b = make_ban("192.0.2.10", 100, 150, 1, "one");
	assert_int_equal(guard_store_ban(s, &b), 0);
	b = make_ban("192.0.2.99", 110, 0, 1, "someone else");
	assert_int_equal(guard_store_ban(s, &b), 0);
	b = make_ban("192.0.2.10", 200, 400, 2, "two");
	assert_int_equal(guard_store_ban(s, &b), 0);
	struct net_cidr key = cidr("192.0.2.10");
	assert_int_equal(guard_store_unban(s, &key, 300, NULL, false, NULL), 1);
	b = make_ban("192.0.2.10", 400, 0, 1, "three");
	b.origin = GUARD_ORIGIN_MANUAL;
	assert_int_equal(guard_store_ban(s, &b), 0);

	assert_int_equal(guard_store_each_history(s, &key, collect, seen), 0);
	assert_int_equal(seen->n, 4);
	const int64_t at[] = {100, 200, 300, 400};
	const uint32_t count[] = {1, 2, 2, 1};
	for (size_t i = 0; i < 4; i++) {
		assert_cidr(&seen->v[i].net, "192.0.2.10/32");
		assert_int_equal(seen->v[i].created_ms, at[i]);
		assert_int_equal(seen->v[i].count, count[i]);
		assert_int_equal(seen->v[i].unban, i == 2);
	}
	assert_string_equal(seen->v[0].reason, "one");
	assert_int_equal(seen->v[0].expires_ms, 150);
	assert_string_equal(seen->v[2].reason, "unban");
	assert_int_equal(seen->v[2].expires_ms, 0);
	assert_int_equal(seen->v[2].origin, GUARD_ORIGIN_MANUAL);
	assert_int_equal(seen->v[3].origin, GUARD_ORIGIN_MANUAL);

	seen_reset(seen, 0);
	key = cidr("192.0.2.11");
	assert_int_equal(guard_store_each_history(s, &key, collect, seen), 0);
	assert_int_equal(seen->n, 0);
	guard_store_close(s);
	free(seen);
}

static void
fill_many(struct guard_ban *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char p[NET_CIDR_STRLEN];
		if (i % 2)
			snprintf(p, sizeof(p), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255, i & 255);
		else
			snprintf(p, sizeof(p), "2001:db8:%zx:%zx::/64", i >> 16, i & 0xffff);
		/* Created newest first, so that the walk's order is not the insertion order. */
		v[i] = make_ban(p, (int64_t)(n - i) * 10, i % 3 ? 1000000 + (int64_t)i : 0,
		                (uint32_t)(i % 5 + 1), "imported");
	}
}

static void
test_ban_many(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct seen *seen = seen_new();
	struct guard_ban *v = calloc(MANY, sizeof(*v));
	assert_non_null(v);

	fill_many(v, MANY);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	assert_int_equal(guard_store_ban_many(s, v, MANY), 0);
	assert_int_equal(guard_store_each_active(s, 999999, collect, seen), 0);
	assert_int_equal(seen->n, MANY);
	for (size_t i = 0; i < MANY; i++) {
		const struct guard_ban *want = &v[MANY - 1 - i], *got = &seen->v[i];
		assert_int_equal(got->created_ms, want->created_ms);
		assert_int_equal(got->net.prefix, want->net.prefix);
		assert_memory_equal(&got->net.addr, &want->net.addr, sizeof(got->net.addr));
		assert_int_equal(got->expires_ms, want->expires_ms);
		assert_int_equal(got->count, want->count);
	}

	/* All or none: one bad entry leaves none of its batch behind. */
	struct guard_ban batch[3] = {
	    make_ban("198.18.0.1", 1, 0, 1, "a"),
	    make_ban("198.18.0.2", 1, 0, 1, "b"),
	    make_ban("198.18.0.3", 1, 0, 1, "c"),
	};
	batch[2].net.prefix = 40;
	assert_int_equal(guard_store_ban_many(s, batch, 3), -EINVAL);
	struct guard_ban got;
	struct net_cidr key = cidr("198.18.0.1");
	assert_int_equal(guard_store_get(s, &key, &got), 0);
	assert_int_equal(guard_store_ban_many(s, NULL, 0), 0);
	guard_store_close(s);
	free(v);
	free(seen);
}

struct cross {
	struct guard_store *other;
	int ban_result;
	size_t n;
};

static int
ban_from_other(const struct guard_ban *b, void *data)
{
	struct cross *c = data;
	if (c->n++ == 0) {
		struct guard_ban nb = make_ban("192.0.2.200", 5, 0, 1, "while reading");
		c->ban_result = guard_store_ban(c->other, &nb);
	}
	return 0;
}

/* Two handles on one file, as the daemon and `rampart guard ban`: each sees the other's
 * writes, and a write does not wait for the other's open read (WAL). */
static void
test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct guard_store *a = NULL, *b = NULL;
	struct guard_ban got;
	char wal[160];

	assert_int_equal(guard_store_open(f->path, &a), 0);
	assert_int_equal(guard_store_open(f->path, &b), 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(access(wal, F_OK), 0);

	struct guard_ban ban = make_ban("2001:db8:aa::/64", 1, 0, 1, "from a");
	assert_int_equal(guard_store_ban(a, &ban), 0);
	struct net_cidr key = cidr("2001:db8:aa::/64");
	assert_int_equal(guard_store_get(b, &key, &got), 1);
	assert_string_equal(got.reason, "from a");

	struct cross c = {.other = b, .ban_result = -1};
	assert_int_equal(guard_store_each_active(a, 0, ban_from_other, &c), 0);
	assert_int_equal(c.ban_result, 0);
	key = cidr("192.0.2.200");
	assert_int_equal(guard_store_get(a, &key, &got), 1);
	assert_int_equal(guard_store_unban(a, &key, 10, NULL, false, NULL), 1);
	assert_int_equal(guard_store_get(b, &key, &got), 0);
	guard_store_close(a);
	guard_store_close(b);
}

static void
write_file(const char *path, const void *data, size_t len, off_t at)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	close(fd);
}

static void
test_garbage_rejected(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	char text[4096];

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "not a database\n"[i % 15];
	write_file(f->path, text, sizeof(text), 0);
	assert_int_equal(guard_store_open(f->path, &s), -EBADMSG);
	assert_null(s);

	/* A store whose first page (the schema) is overwritten. */
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban b = make_ban("192.0.2.1", 1, 0, 1, "x");
	assert_int_equal(guard_store_ban(s, &b), 0);
	guard_store_close(s);
	s = NULL;
	memset(text, 0xa5, sizeof(text));
	write_file(f->path, text, 4000, 100);
	assert_int_equal(guard_store_open(f->path, &s), -EBADMSG);
	assert_null(s);
}

static void
sql_on(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void
test_foreign_database_rejected(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;

	sql_on(f->path, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
	assert_int_equal(guard_store_open(f->path, &s), -EBADMSG);
	assert_null(s);
}

static void
test_newer_version_rejected(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;

	assert_int_equal(guard_store_open(f->path, &s), 0);
	guard_store_close(s);
	s = NULL;
	sql_on(f->path, "PRAGMA user_version = 3");
	assert_int_equal(guard_store_open(f->path, &s), -EPROTO);
	assert_null(s);
}

static void
test_ipv6_and_reason_bytes(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct seen *seen = seen_new();
	struct guard_ban got;

	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban v[] = {
	    make_ban("2001:db8:1:2::/64", 1, 0, 1, ""),
	    make_ban("::1", 2, 0, 1, "loopback?"),
	    make_ban("2001:db8::/32", 3, 0, 1, "x"),
	    make_ban("fe80::1:2:3:4", 4, 0, 1, "x"),
	};
	/* Attacker text: not UTF-8, quotes, control bytes. */
	const char odd[] = "user \xff\xfe'; DROP TABLE offenders; --\n\x01\"from 1.2.3.4\"";
	memcpy(v[0].reason, odd, sizeof(odd));
	/* No terminator in the array at all: capped one byte short. */
	memset(v[3].reason, 'r', sizeof(v[3].reason));
	assert_int_equal(guard_store_ban_many(s, v, 4), 0);

	const char *want[] = {"2001:db8:1:2::/64", "::1/128", "2001:db8::/32", "fe80::1:2:3:4/128"};
	for (size_t i = 0; i < 4; i++) {
		struct net_cidr key = cidr(want[i]);
		assert_int_equal(guard_store_get(s, &key, &got), 1);
		assert_cidr(&got.net, want[i]);
		assert_int_equal(got.net.addr.family, AF_INET6);
		assert_memory_equal(&got.net, &v[i].net, sizeof(got.net));
	}
	struct net_cidr key = cidr("2001:db8:1:2::/64");
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_memory_equal(got.reason, odd, sizeof(odd));
	key = cidr("fe80::1:2:3:4");
	assert_int_equal(guard_store_get(s, &key, &got), 1);
	assert_int_equal(strlen(got.reason), GUARD_REASON_MAX - 1);

	assert_int_equal(guard_store_each_active(s, 100, collect, seen), 0);
	assert_int_equal(seen->n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_cidr(&seen->v[i].net, want[i]);
	guard_store_close(s);
	free(seen);
}

static int
collect_trusted(const struct net_addr *a, int64_t until_ms, void *data)
{
	char(*out)[64] = data;
	size_t i = 0;
	while (out[i][0])
		i++;
	char addr[NET_ADDR_STRLEN];
	assert_true(net_addr_format(a, false, addr, sizeof(addr)) >= 0);
	snprintf(out[i], sizeof(out[i]), "%s@%lld", addr, (long long)until_ms);
	return 0;
}

/* Logged-in sources outlive a restart; expired ones are neither listed nor kept. */
static void
test_trusted_survive_reopen(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct net_addr a, b, c;
	char got[8][64] = {{0}};
	assert_int_equal(net_addr_parse("192.0.2.5", NET_PORT_NONE, &a), 0);
	assert_int_equal(net_addr_parse("2001:db8::5", NET_PORT_NONE, &b), 0);
	assert_int_equal(net_addr_parse("198.51.100.1", NET_PORT_NONE, &c), 0);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	assert_int_equal(guard_store_trust(s, &c, 1500, 1000), 0);
	assert_int_equal(guard_store_trust(s, &a, 5000, 1000), 0);
	assert_int_equal(guard_store_trust(s, &b, 9000, 1000), 0);
	assert_int_equal(guard_store_trust(s, &a, 7000, 2000), 0); /* a new login extends it */
	guard_store_close(s);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	assert_int_equal(guard_store_each_trusted(s, 2000, collect_trusted, got), 0);
	assert_string_equal(got[0], "192.0.2.5@7000");
	assert_string_equal(got[1], "2001:db8::5@9000");
	assert_int_equal(got[2][0], 0);
	guard_store_close(s);
}

/* A store made by the first version (schema 1) is migrated in place, its bans kept. */
static void
test_migrates_v1(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	struct guard_ban got;
	sql_on(f->path,
	       "CREATE TABLE offenders (prefix TEXT PRIMARY KEY NOT NULL, family INTEGER NOT NULL,"
	       " count INTEGER NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
	       " origin TEXT NOT NULL CHECK (origin IN ('auto', 'manual')), reason TEXT NOT NULL);"
	       "CREATE TABLE history (id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, at_ms INTEGER"
	       " NOT NULL, action TEXT NOT NULL, expires_ms INTEGER NOT NULL, count INTEGER NOT"
	       " NULL, origin TEXT NOT NULL, reason TEXT NOT NULL);"
	       "INSERT INTO offenders VALUES ('192.0.2.1/32', 4, 2, 10, 0, 'auto', 'old');"
	       "PRAGMA user_version = 1;");
	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct net_cidr k = cidr("192.0.2.1/32");
	assert_int_equal(guard_store_get(s, &k, &got), 1);
	assert_int_equal(got.count, 2);
	assert_string_equal(got.reason, "old");
	assert_string_equal(got.machine, "");
	assert_int_equal(guard_store_kv_set(s, "fleet.last_id", 41), 0);
	guard_store_close(s);
	assert_int_equal(guard_store_open(f->path, &s), 0);
	int64_t v = 0;
	assert_int_equal(guard_store_kv_get(s, "fleet.last_id", &v), 1);
	assert_int_equal(v, 41);
	assert_int_equal(guard_store_kv_get(s, "nothing", &v), 0);
	guard_store_close(s);
}

struct pending_seen {
	int64_t seq[8];
	bool unban[8];
	size_t n;
};

static int
collect_pending(const struct guard_ban *b, void *data)
{
	struct pending_seen *p = data;
	assert_true(p->n < 8);
	p->seq[p->n] = b->seq;
	p->unban[p->n++] = b->unban;
	return 0;
}

/* What the fleet is told: this machine's shared entries after a sequence number, in order;
 * a peer's unban lifts only the ban that peer gave. */
static void
test_pending_and_peers(void **state)
{
	struct fixture *f = *state;
	struct guard_store *s = NULL;
	int64_t seq1 = 0, seq2 = 0, seq3 = 0, useq = 0;
	assert_int_equal(guard_store_open(f->path, &s), 0);
	struct guard_ban a = make_ban("192.0.2.1/32", 10, 0, 1, "auto");
	a.share = true;
	struct guard_ban local = make_ban("192.0.2.2/32", 11, 0, 1, "manual, not shared");
	struct guard_ban peer = make_ban("192.0.2.3/32", 12, 0, 1, "from web2");
	snprintf(peer.machine, sizeof(peer.machine), "web2");
	assert_int_equal(guard_store_ban_seq(s, &a, &seq1), 0);
	assert_int_equal(guard_store_ban_seq(s, &local, &seq2), 0);
	assert_int_equal(guard_store_ban_seq(s, &peer, &seq3), 0);
	assert_true(seq1 > 0 && seq2 > seq1 && seq3 > seq2);
	struct net_cidr k1 = cidr("192.0.2.1/32"), k3 = cidr("192.0.2.3/32");
	/* web3 did not ban 192.0.2.3: its unban changes nothing */
	assert_int_equal(guard_store_unban(s, &k3, 20, "web3", false, &useq), 0);
	assert_int_equal(useq, 0);
	assert_int_equal(guard_store_unban(s, &k3, 20, "web2", false, &useq), 1);
	assert_true(useq > seq3);
	assert_int_equal(guard_store_unban(s, &k1, 21, NULL, true, &useq), 1);
	struct pending_seen p = {0};
	assert_int_equal(guard_store_each_pending(s, 0, 100, collect_pending, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.seq[0], seq1);
	assert_false(p.unban[0]);
	assert_int_equal(p.seq[1], useq);
	assert_true(p.unban[1]);
	struct pending_seen q = {0};
	assert_int_equal(guard_store_each_pending(s, seq1, 100, collect_pending, &q), 0);
	assert_int_equal(q.n, 1);
	struct guard_ban got;
	assert_int_equal(guard_store_get(s, &k3, &got), 0);
	guard_store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_create_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_ignores_umask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ban_get_unban, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefix_is_canonical, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects_bad_bans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_each_active, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ban_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_database_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_newer_version_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6_and_reason_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trusted_survive_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_and_peers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
