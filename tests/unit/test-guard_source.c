/*
 * Unit tests for src/guard/guard_source: files followed across appends, partial lines,
 * truncation, rotation and re-creation, overlong lines and big backlogs; the journal source on
 * journal files that systemd-journal-remote writes while we follow them.
 */
#include "guard/guard_source.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/* Every run is bounded: a loop that does not see its stop line fails the test, never hangs. */
#define TEST_GUARD_MS 5000
#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"

struct fx {
	struct ev_loop *loop;
	struct ev_timer guard;
	struct guard_source *src;
	char dir[64];
	char path[128];
	const char *stop; /* the message that ends a run */
	char **msgs;      /* raw for files, MESSAGE for the journal */
	char **idents;    /* "-" when the line did not split */
	size_t n, cap;
	size_t iter_bytes, max_iter_bytes, iterations;
};

static void
fx_guard_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct fx *f = t->data;
	fail_msg("no \"%s\" within %d ms (%zu lines so far)", f->stop, TEST_GUARD_MS, f->n);
}

static void
fx_before_sleep(struct ev_loop *loop, void *data)
{
	struct fx *f = data;
	if (f->iter_bytes > f->max_iter_bytes)
		f->max_iter_bytes = f->iter_bytes;
	f->iter_bytes = 0;
	f->iterations++;
}

static char *
dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void
fx_line_cb(const struct guard_line *line, const char *raw, size_t raw_len, void *data)
{
	struct fx *f = data;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->msgs = realloc(f->msgs, f->cap * sizeof(*f->msgs));
		f->idents = realloc(f->idents, f->cap * sizeof(*f->idents));
		assert_true(f->msgs && f->idents);
	}
	if (raw) {
		/* a file line: msg is inside raw */
		assert_true(line->msg >= raw && line->msg + line->msg_len <= raw + raw_len);
		f->msgs[f->n] = dup_n(raw, raw_len);
	} else {
		f->msgs[f->n] = dup_n(line->msg, line->msg_len);
	}
	f->idents[f->n] = line->ident ? dup_n(line->ident, line->ident_len) : dup_n("-", 1);
	f->iter_bytes += raw_len + 1;
	f->n++;
	if (f->stop && strcmp(f->msgs[f->n - 1], f->stop) == 0)
		ev_break(f->loop, 0);
}

static void
fx_clear(struct fx *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->msgs[i]);
		free(f->idents[i]);
	}
	f->n = 0;
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	ev_timer_init(&f->guard, fx_guard_cb, f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-guard_source-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/auth.log", f->dir);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = {"auth.log", "auth.log.1", "x.journal", "y.journal"};
	guard_source_free(f->src);
	fx_clear(f);
	free(f->msgs);
	free(f->idents);
	ev_loop_free(f->loop);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char p[192];
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Runs the loop until the line stop arrives (or fails after TEST_GUARD_MS). */
static void
fx_run_until(struct fx *f, const char *stop)
{
	f->stop = stop;
	assert_int_equal(ev_timer_start(f->loop, &f->guard, EV_MSEC(TEST_GUARD_MS)), 0);
	assert_int_equal(ev_run(f->loop), 0);
	ev_timer_stop(f->loop, &f->guard);
}

/* The lines since the last check are exactly want (NULL-terminated), in order. */
static void
fx_expect(struct fx *f, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	for (size_t i = 0; i < f->n && i < n; i++)
		assert_string_equal(f->msgs[i], want[i]);
	assert_int_equal(f->n, n);
	fx_clear(f);
}

static void
write_file(const char *path, int flags, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void
append(const char *path, const char *text)
{
	write_file(path, O_APPEND, text, strlen(text));
}

static void
start_file(struct fx *f)
{
	assert_int_equal(guard_source_file_new(f->loop, f->path, fx_line_cb, f, &f->src), 0);
}

#define L(tail) "Dec  7 06:00:00 host sshd[42]: " tail

/* Lines already there are history; new ones arrive once each, in order, split. */
static void
test_file_appends(void **state)
{
	struct fx *f = *state;
	append(f->path, L("old 1") "\n" L("old 2") "\n");
	start_file(f);
	append(f->path, L("new 1") "\n");
	append(f->path, L("new 2") "\nno ident here\n" L("end") "\n");
	fx_run_until(f, L("end"));
	assert_string_equal(f->idents[0], "sshd");
	assert_string_equal(f->idents[2], "-");
	fx_expect(f,
	          (const char *const[]){L("new 1"), L("new 2"), "no ident here", L("end"), NULL});
	append(f->path, L("new 3") "\r\n\n" L("end 2") "\n");
	fx_run_until(f, L("end 2"));
	fx_expect(f, (const char *const[]){L("new 3"), L("end 2"), NULL});
}

/* A last line without its newline at start is history too: its completion is not a line. */
static void
test_file_starts_mid_line(void **state)
{
	struct fx *f = *state;
	append(f->path, "old\nhalf a li");
	start_file(f);
	append(f->path, "ne from 6.6.6.6\nnew\nend\n");
	fx_run_until(f, "end");
	fx_expect(f, (const char *const[]){"new", "end", NULL});
}

/* A line written in two parts arrives once, whole. */
static void
test_file_partial_line(void **state)
{
	struct fx *f = *state;
	append(f->path, "");
	start_file(f);
	append(f->path, "first\npart");
	fx_run_until(f, "first"); /* the read that gave "first" saw "part" too */
	append(f->path, "ial\nend\n");
	fx_run_until(f, "end");
	fx_expect(f, (const char *const[]){"first", "partial", "end", NULL});
}

/*
 * copytruncate: the file shrinks below our offset and is read again from its start; an
 * unfinished line from before is not glued to the first new one.
 */
static void
test_file_truncate(void **state)
{
	struct fx *f = *state;
	append(f->path, "");
	start_file(f);
	/* longer than what follows, so the shrink shows whenever the source looks */
	for (int i = 0; i < 50; i++)
		append(f->path, L("before the truncation") "\n");
	append(f->path, "end 1\nunfinished ");
	fx_run_until(f, "end 1");
	assert_int_equal(f->n, 51);
	fx_clear(f);
	assert_int_equal(truncate(f->path, 0), 0);
	append(f->path, "after\nend 2\n");
	fx_run_until(f, "end 2");
	fx_expect(f, (const char *const[]){"after", "end 2", NULL});
}

static void
rotated_path(const struct fx *f, char *out, size_t n)
{
	snprintf(out, n, "%s.1", f->path);
}

/* logrotate's default: rename, then a new file; the old one's rest comes first. */
static void
test_file_rotate_rename(void **state)
{
	struct fx *f = *state;
	char old[160];
	rotated_path(f, old, sizeof(old));
	append(f->path, "");
	start_file(f);
	append(f->path, "a1\nend a\n");
	fx_run_until(f, "end a");
	fx_clear(f);
	append(f->path, "a2\n");
	assert_int_equal(rename(f->path, old), 0);
	append(old, "a3\n"); /* a writer that has not reopened yet */
	append(f->path, "b1\nend b\n");
	fx_run_until(f, "end b");
	fx_expect(f, (const char *const[]){"a2", "a3", "b1", "end b", NULL});
	append(f->path, "b2\nend c\n");
	fx_run_until(f, "end c");
	fx_expect(f, (const char *const[]){"b2", "end c", NULL});
}

/* unlink + create: the old inode stays readable through our fd until the new file shows. */
static void
test_file_unlink_recreate(void **state)
{
	struct fx *f = *state;
	append(f->path, "");
	start_file(f);
	append(f->path, "a1\nend a\n");
	fx_run_until(f, "end a");
	fx_clear(f);
	append(f->path, "a2\n");
	assert_int_equal(unlink(f->path), 0);
	fx_run_until(f, "a2"); /* the rest of the unlinked file, read through our fd */
	assert_false(guard_source_waiting(f->src));
	append(f->path, "b1\nend b\n");
	fx_run_until(f, "end b");
	fx_expect(f, (const char *const[]){"a2", "b1", "end b", NULL});
}

/* A file missing at start is waited for and read from its start. */
static void
test_file_missing_at_start(void **state)
{
	struct fx *f = *state;
	start_file(f);
	assert_true(guard_source_waiting(f->src));
	append(f->path, "c1\nend\n");
	fx_run_until(f, "end");
	assert_false(guard_source_waiting(f->src));
	fx_expect(f, (const char *const[]){"c1", "end", NULL});
}

static char *
repeat(char c, size_t n, const char *tail)
{
	size_t t = strlen(tail);
	char *s = malloc(n + t + 1);
	assert_non_null(s);
	memset(s, c, n);
	memcpy(s + n, tail, t + 1);
	return s;
}

/* Over GUARD_SOURCE_LINE_MAX a line is dropped whole, also when it comes in pieces. */
static void
test_file_overlong(void **state)
{
	struct fx *f = *state;
	append(f->path, "");
	start_file(f);
	char *max = repeat('m', GUARD_SOURCE_LINE_MAX, "");
	char *over = repeat('x', GUARD_SOURCE_LINE_MAX + 1, "\n");
	char *forged =
	    repeat('y', GUARD_SOURCE_LINE_MAX, L("Failed password for root from 6.6.6.6"));
	append(f->path, "s1\n");
	append(f->path, over);
	append(f->path, forged);
	append(f->path, "\n");
	append(f->path, max);
	append(f->path, "\ns2\n");
	fx_run_until(f, "s2");
	fx_expect(f, (const char *const[]){"s1", max, "s2", NULL});
	/* the buffered path: an unfinished line grows past the cap over two reads */
	char *half = repeat('h', GUARD_SOURCE_LINE_MAX / 2 + 1, "");
	append(f->path, "s3\n");
	append(f->path, half);
	fx_run_until(f, "s3");
	append(f->path, half);
	append(f->path, "\ns4\n");
	fx_run_until(f, "s4");
	fx_expect(f, (const char *const[]){"s3", "s4", NULL});
	free(max);
	free(over);
	free(forged);
	free(half);
}

/* A backlog of several budgets arrives whole and in order, one budget per loop iteration. */
static void
test_file_backlog_bounded(void **state)
{
	struct fx *f = *state;
	enum { LINES = 80000 };
	append(f->path, "");
	start_file(f);
	size_t cap = (size_t)LINES * 48 + 16, len = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	for (int i = 0; i < LINES; i++)
		len += (size_t)snprintf(big + len, cap - len, L("line %06d") "\n", i);
	len += (size_t)snprintf(big + len, cap - len, "end\n");
	assert_true(len > 3 * GUARD_SOURCE_FILE_BUDGET);
	write_file(f->path, O_APPEND, big, len);
	free(big);
	ev_set_before_sleep(f->loop, fx_before_sleep, f);
	fx_run_until(f, "end");
	ev_set_before_sleep(f->loop, NULL, NULL);
	assert_int_equal(f->n, LINES + 1);
	for (int i = 0; i < LINES; i++) {
		char want[64];
		snprintf(want, sizeof(want), L("line %06d"), i);
		assert_string_equal(f->msgs[i], want);
	}
	/* a line finished in this iteration may have started in the last one */
	assert_true(f->max_iter_bytes <= GUARD_SOURCE_FILE_BUDGET + GUARD_SOURCE_LINE_MAX);
	assert_true(f->iterations >= 3);
}

static void
test_file_not_regular(void **state)
{
	struct fx *f = *state;
	struct guard_source *s = NULL;
	assert_int_equal(guard_source_file_new(f->loop, f->dir, fx_line_cb, f, &s), -EINVAL);
	assert_null(s);
}

/* ---- journal ---- */

struct jent {
	const char *ident; /* SYSLOG_IDENTIFIER, or NULL for none */
	const char *comm;  /* _COMM, or NULL */
	const char *msg;
};

static uint64_t jr_mono = 1000000;

/* Appends entries to dir/name through systemd-journal-remote (export format on stdin). */
static void
journal_write(const struct fx *f, const char *name, const struct jent *e, size_t n)
{
	char out[192];
	static char text[32768];
	size_t len = 0;
	snprintf(out, sizeof(out), "%s/%s", f->dir, name);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t rt = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	for (size_t i = 0; i < n; i++) {
		jr_mono += 1000;
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		                        "__REALTIME_TIMESTAMP=%llu\n__MONOTONIC_TIMESTAMP=%llu\n"
		                        "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
		                        "_HOSTNAME=host\nMESSAGE=%s\n",
		                        (unsigned long long)(rt + i), (unsigned long long)jr_mono,
		                        e[i].msg);
		if (e[i].ident)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
			                        "SYSLOG_IDENTIFIER=%s\n", e[i].ident);
		if (e[i].comm)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "_COMM=%s\n",
			                        e[i].comm);
		len += (size_t)snprintf(text + len, sizeof(text) - len, "\n");
		assert_true(len < sizeof(text));
	}
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[0], 0);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		close(p[1]);
		execl(JOURNAL_REMOTE, JOURNAL_REMOTE, "-o", out, "-", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	assert_int_equal(write(p[1], text, len), (ssize_t)len);
	close(p[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
start_journal(struct fx *f)
{
	static const char *const idents[] = {"sshd", NULL};
	assert_int_equal(guard_source_journal_new(f->loop, f->dir, idents, fx_line_cb, f, &f->src),
	                 0);
}

/*
 * Entries written before start are history; then only sshd and sshd-session entries arrive
 * (by SYSLOG_IDENTIFIER, or by _COMM when there is none), in order, from the file we follow
 * and from a journal file created later.
 */
static void
test_journal_follows(void **state)
{
	struct fx *f = *state;
	assert_int_equal(access(JOURNAL_REMOTE, X_OK), 0);
	journal_write(f, "x.journal",
	              (const struct jent[]){{"sshd", "sshd", "before 1"}, {"cron", "cron", "c0"}},
	              2);
	start_journal(f);
	journal_write(f, "x.journal",
	              (const struct jent[]){
	                  {"sshd", "sshd", "Invalid user admin from 192.0.2.1 port 22"},
	                  {"cron", "cron", "not ours"},
	                  {"sshd-session", "sshd-session", "session 1"},
	                  {NULL, "sshd", "by comm"},
	                  {"cron", "sshd", "ident wins over comm"},
	                  {"sshd2", "sshd2", "a prefix is not the name"},
	                  {"sshd-auth", "sshd-auth", "pre-auth"},
	                  {"sshd", "sshd", "end 1"},
	              },
	              8);
	fx_run_until(f, "end 1");
	assert_string_equal(f->idents[0], "sshd");
	assert_string_equal(f->idents[1], "sshd-session");
	assert_string_equal(f->idents[2], "sshd");
	assert_string_equal(f->idents[3], "sshd-auth");
	fx_expect(f, (const char *const[]){"Invalid user admin from 192.0.2.1 port 22", "session 1",
	                                   "by comm", "pre-auth", "end 1", NULL});
	assert_false(guard_source_waiting(f->src));
	journal_write(f, "y.journal",
	              (const struct jent[]){{"cron", "cron", "c1"},
	                                    {"sshd", "sshd", "in a new file"},
	                                    {"sshd", "sshd", "end 2"}},
	              3);
	journal_write(f, "x.journal", (const struct jent[]){{"sshd", "sshd", "end 3"}}, 1);
	fx_run_until(f, "end 3");
	fx_expect(f, (const char *const[]){"in a new file", "end 2", "end 3", NULL});
}

/* An empty directory at start: the first journal file is followed from its start. */
static void
test_journal_empty_dir(void **state)
{
	struct fx *f = *state;
	start_journal(f);
	journal_write(f, "x.journal",
	              (const struct jent[]){{"sshd", "sshd", "first"}, {"sshd", "sshd", "end"}}, 2);
	fx_run_until(f, "end");
	fx_expect(f, (const char *const[]){"first", "end", NULL});
}

/* A MESSAGE over the cap is dropped, not cut. */
static void
test_journal_overlong(void **state)
{
	struct fx *f = *state;
	journal_write(f, "x.journal", (const struct jent[]){{"sshd", "sshd", "before"}}, 1);
	start_journal(f);
	char *over = repeat('x', GUARD_SOURCE_LINE_MAX + 1, "");
	journal_write(f, "x.journal",
	              (const struct jent[]){{"sshd", "sshd", over}, {"sshd", "sshd", "end"}}, 2);
	free(over);
	fx_run_until(f, "end");
	fx_expect(f, (const char *const[]){"end", NULL});
}

static void
test_journal_errors(void **state)
{
	struct fx *f = *state;
	struct guard_source *s = NULL;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/none", f->dir);
	const char *const sshd[] = {"sshd", NULL}, *const none[] = {NULL};
	assert_true(guard_source_journal_new(f->loop, missing, sshd, fx_line_cb, f, &s) < 0);
	assert_int_equal(guard_source_journal_new(f->loop, f->dir, none, fx_line_cb, f, &s),
	                 -EINVAL);
	assert_null(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_file_appends, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_starts_mid_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_partial_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_truncate, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_rotate_rename, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_unlink_recreate, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_missing_at_start, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_overlong, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_backlog_bounded, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_file_not_regular, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_journal_follows, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_journal_empty_dir, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_journal_overlong, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_journal_errors, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
