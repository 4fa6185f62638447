#include "core/log.h"

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
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

struct test_log_pipe {
	int rfd;
	int wfd;
	char buf[2 * LOG_LINE_MAX];
	size_t len;
};

static int
test_log_setup(void **state)
{
	struct test_log_pipe *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	p->rfd = fds[0];
	p->wfd = fds[1];
	assert_int_equal(fcntl(p->rfd, F_SETFL, O_NONBLOCK), 0);
	unsetenv("JOURNAL_STREAM");
	log_set_fd(p->wfd);
	log_set_level(LOG_LEVEL_INFO);
	*state = p;
	return 0;
}

static int
test_log_teardown(void **state)
{
	struct test_log_pipe *p = *state;
	log_set_fd(STDERR_FILENO);
	unsetenv("JOURNAL_STREAM");
	log_set_level(LOG_LEVEL_INFO);
	close(p->rfd);
	close(p->wfd);
	free(p);
	return 0;
}

/* Everything written so far, NUL-terminated; each log call is one write, so it is all there. */
static const char *
test_log_drain(void **state)
{
	struct test_log_pipe *p = *state;
	p->len = 0;
	ssize_t r;
	while ((r = read(p->rfd, p->buf + p->len, sizeof(p->buf) - 1 - p->len)) > 0)
		p->len += (size_t)r;
	p->buf[p->len] = '\0';
	return p->buf;
}

static void
test_log_assert_one_line(void **state)
{
	struct test_log_pipe *p = *state;
	assert_true(p->len > 0);
	assert_int_equal(p->buf[p->len - 1], '\n');
	assert_ptr_equal(strchr(p->buf, '\n'), p->buf + p->len - 1);
}

/*
 * Must run first: the first localtime_r() of the process loads the time zone and may set
 * errno (main points TZ at a missing zone so it does); %m must still print the caller's.
 */
static void
test_log_errno_kept(void **state)
{
	errno = EACCES;
	log_error("open failed: %m");
	assert_int_equal(errno, EACCES);
	const char *line = test_log_drain(state);
	assert_non_null(strstr(line, "open failed: Permission denied\n"));
}

static void
test_log_format(void **state)
{
	log_info("listening port=%d", 25);
	const char *line = test_log_drain(state);
	test_log_assert_one_line(state);
	char want[64];
	snprintf(want, sizeof(want), " rampart[%ld] info: listening port=25\n", (long)getpid());
	assert_non_null(strstr(line, want));
	/* starts with an ISO-8601 local timestamp: 2024-01-02T03:04:05.678 */
	assert_true(strlen(line) > 23);
	assert_true(line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[13] == ':' &&
	            line[19] == '.');

	log_error("boom");
	assert_non_null(strstr(test_log_drain(state), " error: boom\n"));
	log_warn("careful");
	assert_non_null(strstr(test_log_drain(state), " warn: careful\n"));
}

static void
test_log_filter(void **state)
{
	log_set_level(LOG_LEVEL_WARN);
	assert_int_equal(log_get_level(), LOG_LEVEL_WARN);
	log_info("hidden");
	log_debug("hidden");
	assert_string_equal(test_log_drain(state), "");
	log_warn("shown");
	assert_non_null(strstr(test_log_drain(state), "warn: shown\n"));
	log_error("shown");
	assert_non_null(strstr(test_log_drain(state), "error: shown\n"));

	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("now shown");
	assert_non_null(strstr(test_log_drain(state), "debug: now shown\n"));

	log_set_level(LOG_LEVEL_ERROR);
	log_warn("hidden");
	assert_string_equal(test_log_drain(state), "");
}

static void
test_log_newline_flattened(void **state)
{
	log_info("first\nsecond\r\nthird");
	const char *line = test_log_drain(state);
	test_log_assert_one_line(state);
	assert_non_null(strstr(line, "info: first second  third\n"));
}

static void
test_log_truncated(void **state)
{
	struct test_log_pipe *p = *state;
	size_t n = 3 * LOG_LINE_MAX;
	char *msg = malloc(n + 1);
	assert_non_null(msg);
	memset(msg, 'x', n);
	msg[n] = '\0';
	log_info("%s", msg);
	free(msg);

	test_log_drain(state);
	test_log_assert_one_line(state);
	assert_true(p->len <= LOG_LINE_MAX + 1);
	assert_true(p->len > LOG_LINE_MAX / 2);
	assert_memory_equal(p->buf + p->len - 5, "x...\n", 5);

	/* a message that just fits is left alone */
	log_info("short");
	assert_null(strstr(test_log_drain(state), "..."));
}

static void
test_log_set_journal(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char v[64];
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
	log_detect_journal();
}

static void
test_log_journal(void **state)
{
	struct test_log_pipe *p = *state;
	test_log_set_journal(p->wfd);
	log_info("hello");
	assert_string_equal(test_log_drain(state), "<6>hello\n");
	log_error("bad");
	assert_string_equal(test_log_drain(state), "<3>bad\n");
	log_warn("hmm");
	assert_string_equal(test_log_drain(state), "<4>hmm\n");

	/* a stream that is not ours: plain lines */
	test_log_set_journal(STDIN_FILENO);
	log_info("hello");
	const char *line = test_log_drain(state);
	assert_true(line[0] != '<');
	assert_non_null(strstr(line, "info: hello\n"));

	assert_int_equal(setenv("JOURNAL_STREAM", "garbage", 1), 0);
	log_detect_journal();
	log_info("hello");
	assert_true(test_log_drain(state)[0] != '<');
}

static void
test_log_level_parse(void **state)
{
	static const struct {
		const char *s;
		enum log_level level;
	} good[] = {
	    {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN},
	    {"info", LOG_LEVEL_INFO},   {"debug", LOG_LEVEL_DEBUG},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		enum log_level l = (enum log_level) - 1;
		assert_int_equal(log_level_parse(good[i].s, &l), 0);
		assert_int_equal(l, good[i].level);
	}
	static const char *const bad[] = {"", "INFO", "inf", "information", "debug ", "3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum log_level l = LOG_LEVEL_DEBUG;
		assert_int_equal(log_level_parse(bad[i], &l), -EINVAL);
		assert_int_equal(l, LOG_LEVEL_DEBUG); /* untouched on failure */
	}
	assert_string_equal(log_level_name(LOG_LEVEL_ERROR), "error");
	assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
	assert_string_equal(log_level_name(LOG_LEVEL_INFO), "info");
	assert_string_equal(log_level_name(LOG_LEVEL_DEBUG), "debug");
	assert_string_equal(log_level_name((enum log_level)99), "?");
}

static void
test_log_quote_one(const char *in, const char *want)
{
	char buf[128];
	memset(buf, '#', sizeof(buf));
	assert_int_equal(log_quote(buf, sizeof(buf), in), strlen(want));
	assert_string_equal(buf, want);
}

static void
test_log_quote(void **state)
{
	test_log_quote_one("mx1.example.com", "mx1.example.com");
	test_log_quote_one("ümlaut", "ümlaut"); /* UTF-8 passes through */
	test_log_quote_one("two words", "\"two words\"");
	test_log_quote_one("say \"hi\"", "\"say \\\"hi\\\"\"");
	test_log_quote_one("back\\slash", "\"back\\\\slash\"");
	test_log_quote_one("line\nbreak", "\"line\\nbreak\"");
	test_log_quote_one("tab\there", "\"tab\\there\"");
	test_log_quote_one("bell\a", "\"bell\\x07\"");
	test_log_quote_one("del\x7f", "\"del\\x7f\"");
	test_log_quote_one("cr\r", "\"cr\\x0d\"");
	test_log_quote_one("", "\"\"");
	/* "=" is quoted too, so a value can never read as a further key=value */
	test_log_quote_one("k=v", "\"k=v\"");
}

static void
test_log_quote_truncated(void **state)
{
	char buf[8];
	memset(buf, '#', sizeof(buf));
	/* needs "\"two words\"" = 11 */
	assert_int_equal(log_quote(buf, 5, "two words"), 11);
	assert_string_equal(buf, "\"two");
	assert_int_equal(buf[5], '#'); /* nothing written past n */

	assert_int_equal(log_quote(buf, 1, "abc"), 3);
	assert_string_equal(buf, "");
	assert_int_equal(log_quote(NULL, 0, "abc"), 3);

	/* exactly enough room */
	assert_int_equal(log_quote(buf, 4, "abc"), 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(log_quote(buf, 3, "abc"), 3);
	assert_string_equal(buf, "ab");
}

static void
test_log_quote_mem_one(const void *in, size_t len, const char *want)
{
	char buf[128];
	memset(buf, '#', sizeof(buf));
	assert_int_equal(log_quote_mem(buf, sizeof(buf), in, len), strlen(want));
	assert_string_equal(buf, want);
}

#define QM(lit, want) test_log_quote_mem_one(lit, sizeof(lit) - 1, want)

/* A quoted or bare field value back to its bytes: the reading a log parser does. */
static size_t
test_log_unquote(const char *v, unsigned char *out)
{
	size_t n = 0, len = strlen(v);
	if (v[0] != '"') {
		memcpy(out, v, len);
		return len;
	}
	assert_int_equal(v[len - 1], '"');
	for (size_t i = 1; i < len - 1; i++) {
		if (v[i] != '\\') {
			assert_true(v[i] != '"'); /* a quote inside is always escaped */
			out[n++] = (unsigned char)v[i];
			continue;
		}
		char c = v[++i];
		if (c == 'x') {
			unsigned hi =
			    (unsigned)(strchr("0123456789abcdef", v[i + 1]) - "0123456789abcdef");
			unsigned lo =
			    (unsigned)(strchr("0123456789abcdef", v[i + 2]) - "0123456789abcdef");
			out[n++] = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else {
			out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : (unsigned char)c;
		}
	}
	return n;
}

static void
test_log_quote_mem(void **state)
{
	QM("/index.html", "/index.html");
	/* what a client can put in a request target: none of it may forge a field */
	QM("/a\"b=c", "\"/a\\\"b=c\"");
	QM("/a b=c", "\"/a b=c\"");
	QM("/back\\slash", "\"/back\\\\slash\"");
	QM("/a\xff", "\"/a\\xff\"");
	QM("/\xc3\xbc", "\"/\\xc3\\xbc\""); /* even valid UTF-8: bytes from outside */
	QM("/a\x00z", "\"/a\\x00z\"");      /* the length counts, not a NUL */
	QM("a\r\nb\tc\x1b", "\"a\\x0d\\nb\\tc\\x1b\"");
	QM("", "\"\"");

	/* every byte value survives the trip through the log and back */
	unsigned char all[256], back[256];
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	char buf[4 * 256 + 3];
	size_t n = log_quote_mem(buf, sizeof(buf), all, sizeof(all));
	assert_int_equal(n, strlen(buf));
	for (size_t i = 0; i < n; i++)
		assert_true(buf[i] > ' ' || (buf[i] == ' ' && i > 0)); /* nothing to split a line */
	assert_int_equal(test_log_unquote(buf, back), sizeof(all));
	assert_memory_equal(back, all, sizeof(all));
	(void)state;
}

static void
test_log_quote_mem_cut(void **state)
{
	char buf[16];
	memset(buf, '#', sizeof(buf));
	/* 10 bytes fit between the quotes and "..." in 16 */
	assert_int_equal(log_quote_mem(buf, sizeof(buf), "abcdefghijklmnop", 16), 15);
	assert_string_equal(buf, "\"abcdefghij...\"");
	/* an escape is never cut in two */
	assert_int_equal(log_quote_mem(buf, sizeof(buf), "\xff\xff\xff\xff", 4), 13);
	assert_string_equal(buf, "\"\\xff\\xff...\"");
	/* exactly enough room: not cut */
	assert_int_equal(log_quote_mem(buf, sizeof(buf), "abcdefghijklmno", 15), 15);
	assert_string_equal(buf, "abcdefghijklmno");
	memset(buf, '#', sizeof(buf));
	assert_int_equal(log_quote_mem(buf, 5, "abcdefgh", 8), 0);
	assert_string_equal(buf, "");
	assert_int_equal(buf[5], '#'); /* nothing written past n */
	assert_int_equal(log_quote_mem(buf, 6, "abcdefgh", 8), 5);
	assert_string_equal(buf, "\"...\"");
	(void)state;
}

static void
test_log_fatal_exits(void **state)
{
	struct test_log_pipe *p = *state;
	fflush(NULL); /* else the child would flush our buffered output again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		log_fatal("cannot start reason=%s", "test");
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_non_null(strstr(test_log_drain(state), "error: cannot start reason=test\n"));
	test_log_assert_one_line(state);
	(void)p;
}

/* The pid in the prefix is asked once per process: a forked child writes its own. */
static void
test_log_pid_after_fork(void **state)
{
	log_info("parent");
	char want[64];
	snprintf(want, sizeof(want), " rampart[%ld] info: parent\n", (long)getpid());
	assert_non_null(strstr(test_log_drain(state), want));
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		log_info("child");
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(want, sizeof(want), " rampart[%ld] info: child\n", (long)pid);
	assert_non_null(strstr(test_log_drain(state), want));
	log_info("parent again");
	snprintf(want, sizeof(want), " rampart[%ld] info: parent again\n", (long)getpid());
	assert_non_null(strstr(test_log_drain(state), want));
}

#define TEST_LOG(fn) cmocka_unit_test_setup_teardown(fn, test_log_setup, test_log_teardown)

int
main(void)
{
	/* a zone that cannot be loaded: the first localtime_r then leaves errno set */
	setenv("TZ", "Rampart/No_Such_Zone", 1);
	const struct CMUnitTest tests[] = {
	    TEST_LOG(test_log_errno_kept),
	    TEST_LOG(test_log_format),
	    TEST_LOG(test_log_filter),
	    TEST_LOG(test_log_newline_flattened),
	    TEST_LOG(test_log_truncated),
	    TEST_LOG(test_log_journal),
	    TEST_LOG(test_log_level_parse),
	    cmocka_unit_test(test_log_quote),
	    cmocka_unit_test(test_log_quote_truncated),
	    cmocka_unit_test(test_log_quote_mem),
	    cmocka_unit_test(test_log_quote_mem_cut),
	    TEST_LOG(test_log_fatal_exits),
	    TEST_LOG(test_log_pid_after_fork),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
