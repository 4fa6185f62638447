/*
 * Unit tests for src/mail/rfc5322: fields (folded, duplicate, 8-bit, NUL, malformed), line
 * ends, where the body starts whatever the chunking, caps, adding fields, addresses.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

/* Reads msg in chunks of size step; returns where the body starts. */
static size_t
read_header(const char *msg, size_t len, size_t step, struct rfc5322_header *h)
{
	struct rfc5322_reader r;
	size_t p = 0, body = len;
	rfc5322_header_init(h, 0, 0);
	rfc5322_reader_init(&r, h);
	while (p < len) {
		size_t n = step < len - p ? step : len - p, used;
		int e = rfc5322_reader_feed(&r, msg + p, n, &used);
		assert_true(e >= 0);
		if (e == 1) {
			body = p + used;
			break;
		}
		assert_int_equal(used, n);
		p += n;
	}
	if (body == len)
		assert_int_equal(rfc5322_reader_end(&r), 0);
	rfc5322_reader_free(&r);
	return body;
}

/* raw is a string literal: its size, not strlen, counts (it may hold NUL bytes) */
#define assert_field(h, i, raw, name_len) assert_field_n(h, i, raw, sizeof(raw) - 1, name_len)

static void
assert_field_n(const struct rfc5322_header *h, size_t i, const char *raw, size_t len,
               size_t name_len)
{
	assert_true(i < h->n);
	assert_int_equal(h->f[i].len, len);
	assert_memory_equal(h->f[i].raw, raw, len);
	assert_int_equal(h->f[i].name_len, name_len);
}

static void
test_fields(void **state)
{
	static const char msg[] = "From: a@b\r\nSubject: one\r\n two\r\n\tthree\r\nTo : c\r\n"
	                          "X-8bit: caf\xc3\xa9\r\nbad line\r\n\r\nbody\r\n";
	for (size_t step = 1; step <= sizeof(msg); step++) {
		struct rfc5322_header h;
		size_t body = read_header(msg, sizeof(msg) - 1, step, &h);
		assert_string_equal(msg + body, "body\r\n");
		assert_int_equal(h.n, 5);
		assert_false(h.lf_only);
		assert_field(&h, 0, "From: a@b\r\n", 4);
		assert_field(&h, 1, "Subject: one\r\n two\r\n\tthree\r\n", 7);
		assert_field(&h, 2, "To : c\r\n", 2);
		assert_true(rfc5322_field_is(&h.f[2], "TO"));
		assert_field(&h, 3, "X-8bit: caf\xc3\xa9\r\n", 6);
		assert_field(&h, 4, "bad line\r\n", 0);
		rfc5322_header_free(&h);
	}
}

static void
test_lf_only(void **state)
{
	static const char msg[] = "From: a\nSubject: x\n y\n\nbody\n";
	struct rfc5322_header h;
	size_t body = read_header(msg, sizeof(msg) - 1, 3, &h);
	assert_true(h.lf_only);
	assert_string_equal(msg + body, "body\n");
	assert_field(&h, 1, "Subject: x\r\n y\r\n", 7);
	rfc5322_header_free(&h);
}

static void
test_no_body_and_nul(void **state)
{
	static const char msg[] = "A: 1\r\nB: \0x\r\nC: last";
	struct rfc5322_header h;
	size_t body = read_header(msg, sizeof(msg) - 1, 4, &h);
	assert_int_equal(body, sizeof(msg) - 1);
	assert_int_equal(h.n, 3);
	assert_field(&h, 1, "B: \0x\r\n", 1);
	assert_field(&h, 2, "C: last\r\n", 1);
	rfc5322_header_free(&h);
}

static void
test_empty_header(void **state)
{
	struct rfc5322_header h;
	size_t body = read_header("\r\nbody", 6, 1, &h);
	assert_int_equal(body, 2);
	assert_int_equal(h.n, 0);
	rfc5322_header_free(&h);
	body = read_header("\nbody", 5, 5, &h);
	assert_int_equal(body, 1);
	rfc5322_header_free(&h);
}

static void
test_caps(void **state)
{
	struct rfc5322_header h;
	struct rfc5322_reader r;
	size_t used;
	rfc5322_header_init(&h, 2, 0);
	rfc5322_reader_init(&r, &h);
	/* the third field is complete at the next line start */
	assert_int_equal(rfc5322_reader_feed(&r, "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", 20, &used),
	                 -E2BIG);
	rfc5322_reader_free(&r);
	rfc5322_header_free(&h);

	rfc5322_header_init(&h, 0, 16);
	rfc5322_reader_init(&r, &h);
	assert_int_equal(rfc5322_reader_feed(&r, "Subject: 0123456789\r\n", 21, &used), -E2BIG);
	rfc5322_reader_free(&r);
	rfc5322_header_free(&h);
}

/* A one-megabyte line is one field. */
static void
test_long_line(void **state)
{
	size_t n = 1 << 20;
	char *msg = malloc(n + 16);
	struct rfc5322_header h;
	assert_non_null(msg);
	memcpy(msg, "X: ", 3);
	memset(msg + 3, 'a', n);
	memcpy(msg + 3 + n, "\r\n\r\n", 4);
	size_t body = read_header(msg, n + 7, 65536, &h);
	assert_int_equal(body, n + 7);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.f[0].len, n + 5);
	rfc5322_header_free(&h);
	free(msg);
}

static void
test_add_and_value(void **state)
{
	struct rfc5322_header h;
	_cleanup_buf_ struct buf v = BUF_INIT(100);
	rfc5322_header_init(&h, 0, 0);
	assert_int_equal(rfc5322_header_add(&h, "Subject: a\n\tb  ", 15), 0);
	assert_field(&h, 0, "Subject: a\r\n\tb  \r\n", 7);
	assert_int_equal(rfc5322_field_value(&h.f[0], &v), 0);
	assert_string_equal(buf_cstr(&v), "a\tb");
	rfc5322_header_free(&h);
}

static void
assert_address(const char *value, const char *want)
{
	char out[256];
	int r = rfc5322_first_address(value, strlen(value), out, sizeof(out));
	if (!want) {
		assert_int_equal(r, -ENOENT);
		return;
	}
	assert_int_equal(r, 0);
	assert_string_equal(out, want);
}

static void
test_addresses(void **state)
{
	assert_address(" Jason Long <jlong@messiah.edu>", "jlong@messiah.edu");
	assert_address("jlong@messiah.edu (Jason)", "jlong@messiah.edu");
	assert_address("\"Long, Jason\" <j@x.org>, other@y.org", "j@x.org");
	assert_address("a@b.c, d@e.f", "a@b.c");
	assert_address("team: a@b.c, d@e.f;", "a@b.c");
	assert_address("<@route.example:u@x.org>", "u@x.org");
	assert_address("(only a comment)", NULL);
	assert_address("", NULL);
}

/* The whole reading loop over a pipe: header callback once, then the body. */
struct seen {
	size_t headers, body;
};

static int
on_header(void *ctx, const struct rfc5322_header *h)
{
	((struct seen *)ctx)->headers++;
	return 0;
}

static int
on_body(void *ctx, const char *data, size_t len)
{
	((struct seen *)ctx)->body += len;
	return 0;
}

static void
test_read_fd(void **state)
{
	int fds[2];
	struct seen seen = {0};
	struct rfc5322_header h;
	const struct rfc5322_read_ops ops = {.header = on_header, .body = on_body};
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "A: 1\n\nhello\n", 12), 12);
	close(fds[1]);
	rfc5322_header_init(&h, 0, 0);
	assert_int_equal(rfc5322_read_fd(fds[0], &h, &ops, &seen), 0);
	close(fds[0]);
	assert_int_equal(seen.headers, 1);
	assert_int_equal(seen.body, 6);
	assert_int_equal(h.n, 1);
	rfc5322_header_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_lf_only),
	    cmocka_unit_test(test_no_body_and_nul),
	    cmocka_unit_test(test_empty_header),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_add_and_value),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_read_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
