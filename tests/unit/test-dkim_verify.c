/*
 * Unit tests for src/mail/dkim_sign and src/mail/dkim_verify together: round trips for every
 * key type and canonicalisation, l=, oversigning, several signatures, LF-only messages; and
 * every way a signature or key can be wrong, each with its own result and reason; bounded
 * work on hostile messages (10,000 signatures, a 1 MB field).
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dkim_key.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define MSG                                                                                        \
	"From: Joe <joe@example.com>\r\n"                                                          \
	"To: Suzie <suzie@example.net>\r\n"                                                        \
	"Subject: Is dinner ready?\r\n"                                                            \
	"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"                                                \
	"Message-ID: <1@example.com>\r\n"                                                          \
	"\r\n"                                                                                     \
	"Hi.\r\n"                                                                                  \
	"\r\n"                                                                                     \
	"We lost  the game.  Are you hungry yet?\r\n"                                              \
	"\r\n"                                                                                     \
	"Joe.\r\n"

#define MAX_RESULTS 16

struct results {
	struct dkim_sig_result r[MAX_RESULTS];
	size_t n, ignored;
};

static struct dkim_key_private rsa, ed;
static struct dns_resolver *resolver;

/* "v=DKIM1; " extra "k=...; p=..." for k's public half */
static char *
record(const struct dkim_key_private *k, const char *extra)
{
	_cleanup_buf_ struct buf rec = BUF_INIT(4096), out = BUF_INIT(4096);
	assert_int_equal(dkim_key_private_record(k, &rec), 0);
	assert_int_equal(buf_printf(&out, "v=DKIM1; %s%s", extra, rec.data + 9), 0);
	return buf_steal(&out);
}

static void
add(struct dns_zone *z, const char *sel, char *txt)
{
	char name[128];
	snprintf(name, sizeof(name), "%s._domainkey.example.com", sel);
	assert_int_equal(dns_zone_add_txt(z, name, txt, strlen(txt)), 0);
	free(txt);
}

static char *replace(char *s, const char *from, const char *to);

static int
setup(void **state)
{
	struct dns_zone *z;
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_RSA, 1024, &rsa), 0);
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_ED25519, 0, &ed), 0);
	assert_int_equal(dns_zone_new(&z), 0);
	add(z, "rsa", record(&rsa, ""));
	add(z, "ed", record(&ed, ""));
	add(z, "edasrsa", replace(record(&ed, ""), "k=ed25519", "k=rsa"));
	add(z, "rsaased", replace(record(&rsa, ""), "k=rsa", "k=ed25519"));
	add(z, "strict", record(&rsa, "t=s; "));
	add(z, "testing", record(&rsa, "t=y; "));
	add(z, "sha1only", record(&rsa, "h=sha1; "));
	add(z, "granular", record(&rsa, "g=joe; "));
	assert_int_equal(dns_zone_add_txt(z, "revoked._domainkey.example.com", "v=DKIM1; p=", 11),
	                 0);
	assert_int_equal(dns_zone_add_failure(z, "slow._domainkey.example.com", DNS_TIMEOUT), 0);
	assert_int_equal(dns_resolver_from_zone(z, &resolver), 0);
	return 0;
}

static int
teardown(void **state)
{
	dkim_key_private_clear(&rsa);
	dkim_key_private_clear(&ed);
	dns_resolver_free(resolver);
	return 0;
}

static size_t
read_header(const char *msg, size_t len, struct rfc5322_header *h)
{
	struct rfc5322_reader rd;
	size_t used = len;
	rfc5322_header_init(h, 0, 0);
	rfc5322_reader_init(&rd, h);
	int r = rfc5322_reader_feed(&rd, msg, len, &used);
	assert_true(r >= 0);
	if (r == 0)
		assert_int_equal(rfc5322_reader_end(&rd), 0);
	rfc5322_reader_free(&rd);
	return used;
}

/* The signed message: the signature fields, then msg; NULL when signing fails (*err). */
static char *
sign_n(const char *msg, const struct dkim_sign_opts *o, size_t n, int *err)
{
	struct rfc5322_header h;
	struct dkim_sign *s;
	_cleanup_buf_ struct buf out = BUF_INIT(64u << 20);
	size_t len = strlen(msg), body = read_header(msg, len, &h);
	*err = dkim_sign_new(o, n, &s);
	if (*err == 0) {
		assert_int_equal(dkim_sign_body(s, msg + body, len - body), 0);
		*err = dkim_sign_finish(s, &h, h.lf_only ? "\n" : "\r\n", &out);
		dkim_sign_free(s);
	}
	rfc5322_header_free(&h);
	if (*err)
		return NULL;
	assert_int_equal(buf_append_str(&out, msg), 0);
	return buf_steal(&out);
}

static struct dkim_sign_opts
opts(const struct dkim_key_private *k, const char *sel)
{
	return (struct dkim_sign_opts){.domain = "example.com",
	                               .selector = sel,
	                               .key = k,
	                               .hc = DKIM_CANON_RELAXED,
	                               .bc = DKIM_CANON_RELAXED};
}

static char *
sign(const char *msg, const struct dkim_sign_opts *o)
{
	int err;
	char *s = sign_n(msg, o, 1, &err);
	assert_int_equal(err, 0);
	return s;
}

static void
verify_with(const char *msg, size_t len, const struct dkim_verify_opts *o, struct results *out)
{
	struct rfc5322_header h;
	struct dkim_verify *v;
	size_t body = read_header(msg, len, &h);
	assert_int_equal(dkim_verify_new(o, resolver, &v), 0);
	assert_int_equal(dkim_verify_header(v, &h), 0);
	/* the body in two pieces: chunking must not matter */
	assert_int_equal(dkim_verify_body(v, msg + body, (len - body) / 2), 0);
	assert_int_equal(
	    dkim_verify_body(v, msg + body + (len - body) / 2, len - body - (len - body) / 2), 0);
	assert_int_equal(dkim_verify_finish(v), 0);
	out->n = dkim_verify_count(v) < MAX_RESULTS ? dkim_verify_count(v) : MAX_RESULTS;
	for (size_t i = 0; i < out->n; i++)
		out->r[i] = *dkim_verify_result(v, i);
	out->ignored = dkim_verify_ignored(v);
	dkim_verify_free(v);
	rfc5322_header_free(&h);
}

static void
verify(const char *msg, struct results *out)
{
	struct dkim_verify_opts o = {0};
	verify_with(msg, strlen(msg), &o, out);
}

static void
assert_result(const struct results *res, size_t i, enum dkim_result want, const char *reason)
{
	assert_true(i < res->n);
	if (res->r[i].result != want || (reason && !strstr(res->r[i].reason, reason)))
		fail_msg("signature %zu: %s (%s), expected %s (%s)", i,
		         dkim_result_name(res->r[i].result), res->r[i].reason,
		         dkim_result_name(want), reason ? reason : "");
}

/* Replaces the first from in s by to (same length or not); s is malloc'd. */
static char *
replace(char *s, const char *from, const char *to)
{
	char *at = strstr(s, from);
	assert_non_null(at);
	size_t fl = strlen(from), tl = strlen(to), len = strlen(s);
	char *out = malloc(len - fl + tl + 1);
	assert_non_null(out);
	memcpy(out, s, (size_t)(at - s));
	memcpy(out + (at - s), to, tl);
	memcpy(out + (at - s) + tl, at + fl, len - (size_t)(at - s) - fl + 1);
	free(s);
	return out;
}

static void
test_roundtrip(void **state)
{
	static const enum dkim_canon canon[] = {DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED};
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 4; i++) {
			struct dkim_sign_opts o = opts(k ? &ed : &rsa, k ? "ed" : "rsa");
			struct results res;
			o.hc = canon[i / 2];
			o.bc = canon[i % 2];
			char *m = sign(MSG, &o);
			verify(m, &res);
			assert_int_equal(res.n, 1);
			assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
			assert_string_equal(res.r[0].algorithm,
			                    k ? "ed25519-sha256" : "rsa-sha256");
			assert_string_equal(res.r[0].domain, "example.com");
			assert_false(res.r[0].weak);
			/* the body changed */
			m = replace(m, "Joe.", "Jim.");
			verify(m, &res);
			assert_result(&res, 0, DKIM_RESULT_FAIL, "body hash");
			/* a signed field changed */
			m = replace(m, "Jim.", "Joe.");
			m = replace(m, "dinner", "dimmer");
			verify(m, &res);
			assert_result(&res, 0, DKIM_RESULT_FAIL, "signature did not verify");
			free(m);
		}
	}
}

/* relaxed forgives whitespace changes, simple does not */
static void
test_whitespace_changes(void **state)
{
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct results res;
	char *m = sign(MSG, &o);
	m = replace(m, "Subject: Is dinner", "Subject:  Is\r\n\tdinner");
	m = replace(m, "lost  the", "lost \t the");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	free(m);
	o.hc = o.bc = DKIM_CANON_SIMPLE;
	m = sign(MSG, &o);
	m = replace(m, "lost  the", "lost the");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_FAIL, "body hash");
	free(m);
}

static void
test_length(void **state)
{
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct results res;
	o.body_length = true;
	char *m = sign(MSG, &o);
	assert_non_null(strstr(m, " l="));
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	assert_false(res.r[0].past_l);
	assert_string_equal(res.r[0].reason, "");
	/* content appended after l= is not covered: still a pass, but said */
	size_t len = strlen(m);
	m = realloc(m, len + 64);
	assert_non_null(m);
	memcpy(m + len, "Appended advertising.\r\n", 24);
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, "body extends past l=");
	assert_true(res.r[0].past_l);
	/* a body cut short of l= */
	m = replace(m, "Joe.\r\nAppended advertising.\r\n", "");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_FAIL, "shorter than l=");
	free(m);
}

/* A message without From: a signature that verifies is refused (policy), a broken one fails. */
static void
test_no_from(void **state)
{
	static const char msg[] = "Subject: no author\r\n\r\nbody\r\n";
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct results res;
	char *m = sign(msg, &o);
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_POLICY, "no From field");
	m = replace(m, "body", "bodY");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_FAIL, "body hash");
	free(m);
}

/* From is signed once more than present: a From added on top breaks the signature. */
static void
test_oversign(void **state)
{
	struct dkim_sign_opts o = opts(&ed, "ed");
	struct results res;
	char *m = sign(MSG, &o);
	assert_non_null(strstr(m, "h=from:from:"));
	m = replace(m, "From: Joe", "From: Mallory <m@evil.example>\r\nFrom: Joe");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_FAIL, "signature did not verify");
	free(m);
	/* a field that is not signed may be added */
	m = sign(MSG, &o);
	m = replace(m, "From: Joe", "X-Added: yes\r\nFrom: Joe");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	free(m);
}

static void
test_dual(void **state)
{
	struct dkim_sign_opts o[2] = {opts(&rsa, "rsa"), opts(&ed, "ed")};
	struct results res;
	int err;
	o[1].identity = "joe@example.com";
	o[1].expire = 3600;
	char *m = sign_n(MSG, o, 2, &err);
	assert_int_equal(err, 0);
	verify(m, &res);
	assert_int_equal(res.n, 2);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	assert_result(&res, 1, DKIM_RESULT_PASS, NULL);
	assert_string_equal(res.r[1].identity, "joe@example.com");
	free(m);
}

/* LF-only messages sign with LF line ends and verify as their CRLF form would. */
static void
test_lf_only(void **state)
{
	static const char msg[] = "From: a@example.com\nSubject: x\n y\n\nbody  line\n\n\n";
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct results res;
	o.hc = o.bc = DKIM_CANON_SIMPLE;
	char *m = sign(msg, &o);
	assert_null(strchr(m, '\r'));
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	_cleanup_buf_ struct buf crlf = BUF_INIT(1 << 20);
	for (const char *p = m; *p; p++)
		buf_append(&crlf, *p == '\n' ? "\r\n" : p, *p == '\n' ? 2 : 1);
	verify(crlf.data, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	free(m);
}

static void
test_empty_body(void **state)
{
	static const char msg[] = "From: a@example.com\r\n\r\n";
	for (int c = 0; c < 2; c++) {
		struct dkim_sign_opts o = opts(&ed, "ed");
		struct results res;
		o.bc = c ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
		char *m = sign(msg, &o);
		verify(m, &res);
		assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
		free(m);
	}
}

/* One DKIM-Signature field with this value on MSG: its result. */
static void
check_field(const char *value, enum dkim_result want, const char *reason)
{
	_cleanup_buf_ struct buf m = BUF_INIT(1 << 20);
	struct results res;
	assert_int_equal(buf_printf(&m, "DKIM-Signature: %s\r\n%s", value, MSG), 0);
	verify_with(m.data, m.len, &(struct dkim_verify_opts){0}, &res);
	assert_int_equal(res.n, 1);
	assert_result(&res, 0, want, reason);
}

#define GOOD_TAGS "c=relaxed/relaxed; d=example.com; s=rsa; h=from:to; bh=AAAA; b=AAAA"

static void
test_bad_fields(void **state)
{
	check_field("v=1; a=rsa-sha256; " GOOD_TAGS, DKIM_RESULT_FAIL, "body hash");
	check_field("v=1; a=rsa-sha256; garbage", DKIM_RESULT_NEUTRAL, "syntax");
	check_field("v=1; v=1; a=rsa-sha256; " GOOD_TAGS, DKIM_RESULT_NEUTRAL, "duplicate");
	check_field("v=1; a=rsa-sha256; " GOOD_TAGS "; b2=ok; bh2=\x01", DKIM_RESULT_NEUTRAL,
	            "syntax");
	check_field("v=1; a=rsa-sha256; c=relaxed; d=example.com; s=rsa; h=from; bh=AAAA; b=A!AA",
	            DKIM_RESULT_NEUTRAL, "base64 in b=");
	check_field("v=1; a=rsa-sha256; c=relaxed; d=example.com; s=rsa; h=from; bh=A; b=AAAA",
	            DKIM_RESULT_NEUTRAL, "base64 in bh=");
	check_field("a=rsa-sha256; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "missing v=");
	check_field("v=2; a=rsa-sha256; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "version");
	check_field("v=1; a=rsa-md5; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "algorithm");
	check_field("v=1; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "missing a=");
	check_field("v=1; a=rsa-sha256; d=example.com; s=rsa; bh=AAAA; b=AAAA",
	            DKIM_RESULT_PERMERROR, "missing h=");
	check_field("v=1; a=rsa-sha256; c=relaxed; d=example.com; s=rsa; h=to:subject; bh=AAAA; "
	            "b=AAAA",
	            DKIM_RESULT_PERMERROR, "From");
	check_field("v=1; a=rsa-sha256; c=fancy/simple; d=example.com; s=rsa; h=from; bh=AAAA; "
	            "b=AAAA",
	            DKIM_RESULT_PERMERROR, "canonicalization");
	check_field("v=1; a=rsa-sha256; q=http; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "query");
	check_field("v=1; a=rsa-sha256; q=foo/bar:dns/txt; " GOOD_TAGS, DKIM_RESULT_FAIL, NULL);
	check_field("v=1; a=rsa-sha256; i=joe@example.org; " GOOD_TAGS, DKIM_RESULT_PERMERROR,
	            "i= domain");
	check_field("v=1; a=rsa-sha256; i=joe; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "no @");
	check_field("v=1; a=rsa-sha256; i=j=3Doe@mail.example.com; " GOOD_TAGS, DKIM_RESULT_FAIL,
	            NULL);
	check_field("v=1; a=rsa-sha256; i=j=ZZoe@example.com; " GOOD_TAGS, DKIM_RESULT_NEUTRAL,
	            "i=");
	check_field("v=1; a=rsa-sha256; l=12x; " GOOD_TAGS, DKIM_RESULT_NEUTRAL, "l=");
	check_field("v=1; a=rsa-sha256; t=99999999999999999999; " GOOD_TAGS, DKIM_RESULT_NEUTRAL,
	            "t=");
	check_field("v=1; a=rsa-sha256; x=1000; " GOOD_TAGS, DKIM_RESULT_PERMERROR, "expired");
	check_field("v=1; a=rsa-sha256; t=1000; x=999; " GOOD_TAGS, DKIM_RESULT_PERMERROR,
	            "before t=");
	check_field("v=1; a=rsa-sha256; t=99999999999; " GOOD_TAGS, DKIM_RESULT_PERMERROR,
	            "future");
	check_field("v=1; a=rsa-sha256; h=from::to; c=relaxed; d=example.com; s=rsa; bh=AAAA; "
	            "b=AAAA",
	            DKIM_RESULT_NEUTRAL, "h=");
	check_field("v=1; a=rsa-sha256; d=; s=rsa; h=from; bh=AAAA; b=AAAA", DKIM_RESULT_PERMERROR,
	            "empty d=");
}

static void
test_nul_in_field(void **state)
{
	static const char m[] = "DKIM-Signature: v=1; a=rsa-sha256; d=exa\0mple.com; s=rsa; "
	                        "h=from; bh=AAAA; b=AAAA\r\n" MSG;
	struct results res;
	verify_with(m, sizeof(m) - 1, &(struct dkim_verify_opts){0}, &res);
	assert_result(&res, 0, DKIM_RESULT_NEUTRAL, "syntax");
}

/* A field signed by a key, verified with the record of selector sel. */
static void
check_key(const struct dkim_key_private *k, const char *sel, const char *identity,
          enum dkim_result want, const char *reason)
{
	struct dkim_sign_opts o = opts(k, sel);
	struct results res;
	o.identity = identity;
	char *m = sign(MSG, &o);
	verify(m, &res);
	assert_result(&res, 0, want, reason);
	free(m);
}

static void
test_key_problems(void **state)
{
	check_key(&rsa, "revoked", NULL, DKIM_RESULT_PERMERROR, "revoked");
	check_key(&rsa, "nosuch", NULL, DKIM_RESULT_PERMERROR, "NXDOMAIN");
	check_key(&rsa, "slow", NULL, DKIM_RESULT_TEMPERROR, "TIMEOUT");
	check_key(&ed, "edasrsa", NULL, DKIM_RESULT_PERMERROR, "not a valid RSA key");
	check_key(&rsa, "rsaased", NULL, DKIM_RESULT_PERMERROR, "Ed25519 key of");
	check_key(&ed, "rsa", NULL, DKIM_RESULT_PERMERROR, "key type");
	check_key(&rsa, "sha1only", NULL, DKIM_RESULT_PERMERROR, "sha256");
	check_key(&rsa, "strict", "joe@mail.example.com", DKIM_RESULT_PERMERROR, "t=s");
	check_key(&rsa, "strict", "joe@example.com", DKIM_RESULT_PASS, NULL);
	check_key(&rsa, "granular", "joe@example.com", DKIM_RESULT_PASS, NULL);
	check_key(&rsa, "granular", "jim@example.com", DKIM_RESULT_PERMERROR, "granularity");
	check_key(&rsa, "testing", NULL, DKIM_RESULT_PASS, "testing");
}

/* RFC 8301: keys under 1024 bits are refused; here the limit is raised to see it work. */
static void
test_short_key(void **state)
{
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct dkim_verify_opts vo = {.min_rsa_bits = 2048};
	struct results res;
	char *m = sign(MSG, &o);
	verify_with(m, strlen(m), &vo, &res);
	assert_result(&res, 0, DKIM_RESULT_POLICY, "1024 bits");
	assert_int_equal(res.r[0].key_bits, 1024);
	free(m);
}

/* 10,000 signature fields: the first 8 are checked, the rest counted. */
static void
test_many_signatures(void **state)
{
	struct dkim_sign_opts o = opts(&ed, "ed");
	_cleanup_buf_ struct buf m = BUF_INIT(64u << 20);
	struct results res;
	char *one = sign(MSG, &o);
	size_t field = (size_t)(strstr(one, "From:") - one);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_append(&m, one, field), 0);
	assert_int_equal(buf_append_str(&m, one), 0);
	verify_with(m.data, m.len, &(struct dkim_verify_opts){0}, &res);
	assert_int_equal(res.n, 8);
	assert_int_equal(res.ignored, 10001 - 8);
	for (size_t i = 0; i < res.n; i++)
		assert_result(&res, i, DKIM_RESULT_PASS, NULL);
	verify_with(m.data, m.len, &(struct dkim_verify_opts){.max_signatures = 2}, &res);
	assert_int_equal(res.n, 2);
	free(one);
}

/* A 1 MB Subject is signed and verified like any other field. */
static void
test_huge_field(void **state)
{
	_cleanup_buf_ struct buf msg = BUF_INIT(4u << 20);
	struct results res;
	assert_int_equal(buf_append_str(&msg, "From: a@example.com\r\nSubject: "), 0);
	for (int i = 0; i < (1 << 20) / 8; i++)
		assert_int_equal(buf_append(&msg, "abc  de ", 8), 0);
	assert_int_equal(buf_append_str(&msg, "\r\n\r\nbody\r\n"), 0);
	for (int c = 0; c < 2; c++) {
		struct dkim_sign_opts o = opts(&rsa, "rsa");
		o.hc = c ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
		char *m = sign(msg.data, &o);
		verify(m, &res);
		assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
		free(m);
	}
}

static void
test_sign_errors(void **state)
{
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct dkim_sign *s;
	const char *bad_headers[] = {"from", "bad name", NULL};
	o.domain = "exa mple.com";
	assert_int_equal(dkim_sign_new(&o, 1, &s), -EINVAL);
	o = opts(&rsa, "-");
	o.selector = "a..b";
	assert_int_equal(dkim_sign_new(&o, 1, &s), -EINVAL);
	o = opts(&rsa, "rsa");
	o.identity = "joe@example.org";
	assert_int_equal(dkim_sign_new(&o, 1, &s), -EINVAL);
	o = opts(&rsa, "rsa");
	o.headers = bad_headers;
	assert_int_equal(dkim_sign_new(&o, 1, &s), -EINVAL);
	o = opts(&rsa, "rsa");
	assert_int_equal(dkim_sign_new(&o, 0, &s), -EINVAL);
	o.identity = "joe@mail.example.com";
	assert_int_equal(dkim_sign_new(&o, 1, &s), 0);
	dkim_sign_free(s);
}

/* Only the listed fields are signed; From always is. */
static void
test_header_list(void **state)
{
	const char *list[] = {"subject", NULL}, *none[] = {NULL};
	struct dkim_sign_opts o = opts(&rsa, "rsa");
	struct results res;
	o.headers = list;
	o.oversign = none;
	char *m = sign(MSG, &o);
	assert_non_null(strstr(m, "h=subject:from;"));
	m = replace(m, "To: Suzie", "To: Mallory");
	verify(m, &res);
	assert_result(&res, 0, DKIM_RESULT_PASS, NULL);
	free(m);
}

/* Several threads verify at once with one key cache, as the milter does. */
struct worker {
	const char *msg;
	struct dkim_key_cache *cache;
	int passed;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct dkim_verify_opts o = {.cache = w->cache};
	for (int i = 0; i < 50; i++) {
		struct results res;
		verify_with(w->msg, strlen(w->msg), &o, &res);
		w->passed += res.n == 2 && res.r[0].result == DKIM_RESULT_PASS &&
		             res.r[1].result == DKIM_RESULT_PASS;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct dkim_sign_opts o[2] = {opts(&rsa, "rsa"), opts(&ed, "ed")};
	struct worker w[4];
	pthread_t t[4];
	struct dkim_key_cache *cache;
	int err;
	char *m = sign_n(MSG, o, 2, &err);
	assert_int_equal(dkim_key_cache_new(&cache), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.msg = m, .cache = cache};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].passed, 50);
	}
	dkim_key_cache_free(cache);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_whitespace_changes),
	    cmocka_unit_test(test_length),          cmocka_unit_test(test_no_from),
	    cmocka_unit_test(test_oversign),        cmocka_unit_test(test_dual),
	    cmocka_unit_test(test_lf_only),         cmocka_unit_test(test_empty_body),
	    cmocka_unit_test(test_bad_fields),      cmocka_unit_test(test_nul_in_field),
	    cmocka_unit_test(test_key_problems),    cmocka_unit_test(test_short_key),
	    cmocka_unit_test(test_many_signatures), cmocka_unit_test(test_huge_field),
	    cmocka_unit_test(test_sign_errors),     cmocka_unit_test(test_header_list),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
