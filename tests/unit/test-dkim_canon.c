/*
 * Unit tests for src/mail/dkim_canon: header forms, the RFC 6376 examples, and the streamed
 * body forms checked against a plain reference (whole body, line by line) on random bodies
 * cut into random chunks, l= included.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/dkim_canon.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
assert_header(enum dkim_canon c, const char *raw, const char *want)
{
	_cleanup_buf_ struct buf out = BUF_INIT(4096);
	assert_int_equal(dkim_canon_header(c, raw, strlen(raw), &out), 0);
	assert_string_equal(buf_cstr(&out), want);
}

static void
test_header_forms(void **state)
{
	/* RFC 6376 §3.4.5 */
	assert_header(DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n");
	assert_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
	assert_header(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n");
	assert_header(DKIM_CANON_RELAXED, "Subject:\r\n\tfolded  start\r\n",
	              "subject:folded start\r\n");
	assert_header(DKIM_CANON_RELAXED, "X-Empty:   \r\n", "x-empty:\r\n");
	/* a bare CR is data, not a fold */
	assert_header(DKIM_CANON_RELAXED, "X: a\rb\r\n", "x:a\rb\r\n");
	assert_header(DK_CANON_NOFWS, "From : A B <a@b>\r\n\tx\r\n", "From:AB<a@b>x\r\n");
	assert_header(DK_CANON_SIMPLE, "From : A\r\n", "From : A\r\n");
	assert_header(DKIM_CANON_RELAXED, "NoColon\r\n", "nocolon:\r\n");
}

/* The reference relaxed field: name lower-cased to the colon less its WSP; the value
 * unfolded (CRLF pairs gone), WSP runs as one SP, trimmed. */
static void
reference_header(const char *raw, size_t len, struct buf *out)
{
	const char *colon = memchr(raw, ':', len);
	assert_non_null(colon);
	size_t ne = (size_t)(colon - raw);
	while (ne > 0 && (raw[ne - 1] == ' ' || raw[ne - 1] == '\t'))
		ne--;
	for (size_t i = 0; i < ne; i++) {
		char c = raw[i] >= 'A' && raw[i] <= 'Z' ? (char)(raw[i] + 32) : raw[i];
		buf_append(out, &c, 1);
	}
	buf_append(out, ":", 1);
	_cleanup_buf_ struct buf v = BUF_INIT(len + 1);
	for (size_t i = (size_t)(colon - raw) + 1; i < len; i++) {
		if (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n')
			i++;
		else
			buf_append(&v, raw + i, 1);
	}
	bool wsp = false, any = false;
	for (size_t i = 0; i < v.len; i++) {
		bool w = v.data[i] == ' ' || v.data[i] == '\t';
		if (w) {
			wsp = any;
			continue;
		}
		if (wsp)
			buf_append(out, " ", 1);
		buf_append(out, v.data + i, 1);
		wsp = false;
		any = true;
	}
	buf_append(out, "\r\n", 2);
}

static void
test_header_random(void **state)
{
	static const char alphabet[] = "aBc  \t\t\r\n:x";
	unsigned seed = 3;
	for (int n = 0; n < 20000; n++) {
		char raw[200];
		size_t len = (size_t)rand_r(&seed) % 150, i;
		memcpy(raw, "Na me :", 7);
		for (i = 7; i < 7 + len; i++)
			raw[i] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
		memcpy(raw + i, "\r\n", 2);
		_cleanup_buf_ struct buf want = BUF_INIT(512), got = BUF_INIT(512);
		reference_header(raw, i + 2, &want);
		assert_int_equal(dkim_canon_header(DKIM_CANON_RELAXED, raw, i + 2, &got), 0);
		if (want.len != got.len || memcmp(want.data, got.data, want.len) != 0)
			fail_msg("field %.*s: '%s' != '%s'", (int)(i + 2), raw, want.data,
			         got.data);
	}
}

/* The reference: the body as lines, each line canonicalised, trailing empty lines dropped. */
static void
reference(enum dkim_canon c, const char *in, size_t len, struct buf *out)
{
	size_t lines_out = 0, pending = 0;
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(in + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - in) : len, stop = end;
		if (nl && stop > p && in[stop - 1] == '\r')
			stop--;
		_cleanup_buf_ struct buf line = BUF_INIT(len + 1);
		bool wsp = false;
		for (size_t i = p; i < stop; i++) {
			char ch = in[i];
			bool is_wsp = ch == ' ' || ch == '\t';
			if (c == DKIM_CANON_RELAXED && is_wsp) {
				wsp = true;
				continue;
			}
			if (c == DK_CANON_NOFWS && (is_wsp || ch == '\r'))
				continue;
			if (wsp)
				buf_append(&line, " ", 1);
			wsp = false;
			buf_append(&line, &ch, 1);
		}
		if (line.len == 0) {
			pending++;
		} else {
			for (; pending; pending--)
				buf_append(out, "\r\n", 2);
			buf_append(out, line.data, line.len);
			buf_append(out, "\r\n", 2);
			lines_out++;
		}
		p = end + 1;
	}
	if (c == DKIM_CANON_SIMPLE && out->len == 0)
		buf_append(out, "\r\n", 2);
}

static void
digest_of(const char *p, size_t n, unsigned char *d)
{
	unsigned len;
	assert_int_equal(EVP_Digest(p, n, d, &len, EVP_sha256(), NULL), 1);
}

/* Streams in into the canonicaliser in random chunks; checks the digest and the length. */
static void
check_body(enum dkim_canon c, const char *in, size_t len, uint64_t limit, unsigned *seed)
{
	_cleanup_buf_ struct buf ref = BUF_INIT(2 * len + 16);
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned glen;
	reference(c, in, len, &ref);
	size_t hashed = limit < ref.len ? (size_t)limit : ref.len;
	digest_of(ref.data ? ref.data : "", hashed, want);

	struct dkim_canon_body *b = malloc(sizeof(*b));
	assert_non_null(b);
	assert_int_equal(dkim_canon_body_init(b, c, DKIM_HASH_SHA256, limit), 0);
	for (size_t p = 0; p < len;) {
		size_t n = (size_t)(rand_r(seed) % 97) + 1;
		if (rand_r(seed) % 4 == 0)
			n = (size_t)(rand_r(seed) % 4000) + 1;
		n = n > len - p ? len - p : n;
		assert_int_equal(dkim_canon_body_update(b, in + p, n), 0);
		p += n;
	}
	assert_int_equal(dkim_canon_body_final(b, got, &glen), 0);
	if (memcmp(want, got, 32) != 0)
		fail_msg("canon %d limit %llu: digest differs for %zu bytes", c,
		         (unsigned long long)limit, len);
	if (limit == DKIM_CANON_NO_LIMIT)
		assert_int_equal(b->length, ref.len);
	else
		assert_true(b->length >= hashed);
	dkim_canon_body_free(b);
	free(b);
}

/* Bodies from a small alphabet: every special case shows up often. */
static size_t
random_body(char *out, size_t max, unsigned *seed, const char *alphabet)
{
	size_t n = (size_t)rand_r(seed) % max, k = strlen(alphabet);
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[(size_t)rand_r(seed) % k];
	return n;
}

static void
test_body_random(void **state)
{
	static const char *const alphabets[] = {
	    "ab \t\r\n",
	    "abcdefgh  \r\n",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bcd\r\n",
	    "x\n",
	    " \t",
	    "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz\r\n\n",
	};
	static const enum dkim_canon canons[] = {DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED,
	                                         DK_CANON_SIMPLE, DK_CANON_NOFWS};
	char body[6000];
	unsigned seed = 42;
	for (int i = 0; i < 6000; i++) {
		const char *a = alphabets[i % ARRAY_SIZE(alphabets)];
		size_t n = random_body(body, i % 3 ? 300 : sizeof(body), &seed, a);
		enum dkim_canon c = canons[(i / 7) % ARRAY_SIZE(canons)];
		check_body(c, body, n, DKIM_CANON_NO_LIMIT, &seed);
		if (c == DKIM_CANON_SIMPLE || c == DKIM_CANON_RELAXED)
			check_body(c, body, n, (uint64_t)rand_r(&seed) % (n + 8), &seed);
	}
}

static void
assert_body(enum dkim_canon c, const char *in, const char *want_canonical)
{
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned len;
	struct dkim_canon_body *b = malloc(sizeof(*b));
	assert_non_null(b);
	digest_of(want_canonical, strlen(want_canonical), want);
	assert_int_equal(dkim_canon_body_init(b, c, DKIM_HASH_SHA256, DKIM_CANON_NO_LIMIT), 0);
	assert_int_equal(dkim_canon_body_update(b, in, strlen(in)), 0);
	assert_int_equal(dkim_canon_body_final(b, got, &len), 0);
	assert_memory_equal(want, got, 32);
	dkim_canon_body_free(b);
	free(b);
}

static void
test_body_examples(void **state)
{
	/* RFC 6376 §3.4.5 */
	assert_body(DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	assert_body(DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
	/* empty bodies (RFC 6376 errata 3192: relaxed gives nothing) */
	assert_body(DKIM_CANON_SIMPLE, "", "\r\n");
	assert_body(DKIM_CANON_RELAXED, "", "");
	assert_body(DKIM_CANON_RELAXED, "\r\n\r\n \r\n", "");
	assert_body(DK_CANON_SIMPLE, "\r\n\r\n", "");
	/* a last line without its line end gets one; LF alone is a line end */
	assert_body(DKIM_CANON_SIMPLE, "a\nb", "a\r\nb\r\n");
	assert_body(DKIM_CANON_RELAXED, "a  b \nc", "a b\r\nc\r\n");
	assert_body(DK_CANON_NOFWS, "a b\r\n\r\n c \r\n\r\n", "ab\r\n\r\nc\r\n");
}

/* Past l= the body is measured but not hashed, in any chunking; trailing empty lines are no
 * body (a verifier says "body extends past l=" from this length). */
static void
assert_length(enum dkim_canon c, const char *in, uint64_t limit, uint64_t want)
{
	unsigned char want_md[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned len;
	size_t n = strlen(in);
	for (size_t cut = 0; cut <= n; cut++) {
		struct dkim_canon_body *b = malloc(sizeof(*b));
		assert_non_null(b);
		assert_int_equal(dkim_canon_body_init(b, c, DKIM_HASH_SHA256, limit), 0);
		assert_int_equal(dkim_canon_body_update(b, in, cut), 0);
		assert_int_equal(dkim_canon_body_update(b, in + cut, n - cut), 0);
		assert_int_equal(dkim_canon_body_final(b, got, &len), 0);
		if (b->length != want)
			fail_msg("%s cut at %zu: length %llu, want %llu", in, cut,
			         (unsigned long long)b->length, (unsigned long long)want);
		assert_int_equal(b->hashed, limit < want ? limit : want);
		dkim_canon_body_free(b);
		free(b);
	}
	digest_of(in, limit, want_md);
	assert_memory_equal(want_md, got, 32);
}

static void
test_body_length_past_limit(void **state)
{
	assert_length(DKIM_CANON_SIMPLE, "hello\r\nworld\r\n", 7, 14);
	assert_length(DKIM_CANON_RELAXED, "hello\r\nworld\r\n", 7, 14);
	assert_length(DKIM_CANON_RELAXED, "hello\r\n\r\n \r\n", 7, 7);
	assert_length(DKIM_CANON_SIMPLE, "hello\r\n\r\n\r\n", 7, 7);
	assert_length(DKIM_CANON_SIMPLE, "hello\r\n\r\nx\r\n", 7, 12);
}

/* Large bodies in one piece and byte by byte: the vectorised and the plain path agree. */
static void
test_body_paths_agree(void **state)
{
	size_t n = 1 << 20;
	char *body = malloc(n);
	unsigned seed = 7;
	assert_non_null(body);
	for (size_t i = 0; i < n; i++) {
		unsigned r = (unsigned)rand_r(&seed) % 100;
		body[i] = r < 12    ? ' '
		          : r == 12 ? '\t'
		          : r < 15  ? '\r'
		          : r < 17  ? '\n'
		                    : (char)('a' + r % 26);
	}
	for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++)
		check_body((enum dkim_canon)c, body, n, DKIM_CANON_NO_LIMIT, &seed);
	free(body);
}

static void
test_select_bottom_up(void **state)
{
	struct rfc5322_header h;
	_cleanup_buf_ struct buf out = BUF_INIT(4096);
	const struct dkim_canon_name names[] = {
	    {"from", 4}, {"x", 1}, {"x", 1}, {"x", 1}, {"to", 2}};
	rfc5322_header_init(&h, 0, 0);
	assert_int_equal(rfc5322_header_add(&h, "X: 1\r\n", 6), 0);
	assert_int_equal(rfc5322_header_add(&h, "From: a\r\n", 9), 0);
	assert_int_equal(rfc5322_header_add(&h, "x: 2\r\n", 6), 0);
	/* the last x is the newest: taken first; the third "x" finds none left */
	assert_int_equal(dkim_canon_select(&h, names, 5, SIZE_MAX, DKIM_CANON_RELAXED, &out), 0);
	assert_string_equal(buf_cstr(&out), "from:a\r\nx:2\r\nx:1\r\n");
	buf_reset(&out);
	assert_int_equal(dkim_canon_select(&h, names, 3, 2, DKIM_CANON_SIMPLE, &out), 0);
	assert_string_equal(buf_cstr(&out), "From: a\r\nX: 1\r\n");
	rfc5322_header_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_forms),     cmocka_unit_test(test_header_random),
	    cmocka_unit_test(test_body_examples),    cmocka_unit_test(test_body_random),
	    cmocka_unit_test(test_body_paths_agree), cmocka_unit_test(test_body_length_past_limit),
	    cmocka_unit_test(test_select_bottom_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
