/*
 * Unit tests for src/mail/dk_sign and src/mail/dk_verify (DomainKeys, RFC 4870): round trips
 * in both canonicalisations, which fields a signature covers and in what order, the signing
 * identity (Sender, else From), key checks.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dk_sign.h"
#include "mail/dk_verify.h"
#include "mail/dkim_key.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define MSG                                                                                        \
	"Received: from a by b\r\n"                                                                \
	"From: Joe <joe@example.com>\r\n"                                                          \
	"To: Suzie <suzie@example.net>\r\n"                                                        \
	"Subject: dinner\r\n"                                                                      \
	"\r\n"                                                                                     \
	"We lost  the game.\r\n"                                                                   \
	"\r\n\r\n"

static struct dkim_key_private rsa;
static struct dns_resolver *resolver;

static void
add(struct dns_zone *z, const char *sel, const char *extra)
{
	_cleanup_buf_ struct buf rec = BUF_INIT(4096);
	char name[128];
	assert_int_equal(dkim_key_private_record(&rsa, &rec), 0);
	assert_int_equal(buf_append_str(&rec, extra), 0);
	snprintf(name, sizeof(name), "%s._domainkey.example.com", sel);
	assert_int_equal(dns_zone_add_txt(z, name, rec.data, rec.len), 0);
}

static int
setup(void **state)
{
	struct dns_zone *z;
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_RSA, 1024, &rsa), 0);
	assert_int_equal(dns_zone_new(&z), 0);
	add(z, "s", "");
	add(z, "gjoe", "; g=joe");
	add(z, "gempty", "; g=");
	add(z, "gjim", "; g=jim");
	assert_int_equal(dns_resolver_from_zone(z, &resolver), 0);
	return 0;
}

static int
teardown(void **state)
{
	dkim_key_private_clear(&rsa);
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

static char *
sign(const char *msg, const char *sel, enum dkim_canon c, const char *const *headers)
{
	const struct dk_sign_opts o = {
	    .domain = "example.com", .selector = sel, .key = &rsa, .canon = c, .headers = headers};
	struct rfc5322_header h;
	struct dk_sign *s;
	_cleanup_buf_ struct buf out = BUF_INIT(1 << 20);
	size_t len = strlen(msg), body = read_header(msg, len, &h);
	assert_int_equal(dk_sign_new(&o, &s), 0);
	assert_int_equal(dk_sign_header(s, &h), 0);
	assert_int_equal(dk_sign_body(s, msg + body, len - body), 0);
	assert_int_equal(dk_sign_finish(s, "\r\n", &out), 0);
	dk_sign_free(s);
	rfc5322_header_free(&h);
	assert_int_equal(buf_append_str(&out, msg), 0);
	return buf_steal(&out);
}

static struct dkim_sig_result
verify(const char *msg)
{
	struct rfc5322_header h;
	struct dk_verify *v;
	struct dk_verify_opts o = {0};
	size_t len = strlen(msg), body = read_header(msg, len, &h);
	assert_int_equal(dk_verify_new(&o, resolver, &v), 0);
	assert_int_equal(dk_verify_header(v, &h), 0);
	for (size_t i = body; i < len; i++)
		assert_int_equal(dk_verify_body(v, msg + i, 1), 0);
	assert_int_equal(dk_verify_finish(v), 0);
	assert_int_equal(dk_verify_count(v), 1);
	struct dkim_sig_result r = *dk_verify_result(v, 0);
	dk_verify_free(v);
	rfc5322_header_free(&h);
	return r;
}

static void
assert_result(const struct dkim_sig_result *r, enum dkim_result want, const char *reason)
{
	if (r->result != want || (reason && !strstr(r->reason, reason)))
		fail_msg("%s (%s), expected %s (%s)", dkim_result_name(r->result), r->reason,
		         dkim_result_name(want), reason ? reason : "");
	assert_true(r->dk);
}

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
	for (int c = 0; c < 2; c++) {
		enum dkim_canon canon = c ? DK_CANON_NOFWS : DK_CANON_SIMPLE;
		char *m = sign(MSG, "s", canon, NULL);
		assert_non_null(strstr(m, "h=Received:From:To:Subject;"));
		struct dkim_sig_result r = verify(m);
		assert_result(&r, DKIM_RESULT_PASS, NULL);
		assert_string_equal(r.identity, "joe@example.com");
		assert_false(r.identity_sender);
		/* nofws forgives whitespace; simple does not */
		m = replace(m, "lost  the", "lost the");
		r = verify(m);
		assert_result(&r, c ? DKIM_RESULT_PASS : DKIM_RESULT_FAIL, NULL);
		m = replace(m, "dinner", "lunch");
		r = verify(m);
		assert_result(&r, DKIM_RESULT_FAIL, "did not verify");
		free(m);
	}
}

static void
test_covered_fields(void **state)
{
	const char *list[] = {"from", "subject", NULL};
	char *m = sign(MSG, "s", DK_CANON_NOFWS, list);
	assert_non_null(strstr(m, "h=From:Subject;"));
	/* fields above the signature and unlisted ones are not covered */
	m = replace(m, "DomainKey", "X-Above: 1\r\nDomainKey");
	m = replace(m, "To: Suzie", "To: Mallory");
	struct dkim_sig_result r = verify(m);
	assert_result(&r, DKIM_RESULT_PASS, NULL);
	/* every instance of a listed name is covered, one added below too */
	m = replace(m, "Subject: dinner", "Subject: dinner\r\nSubject: again");
	r = verify(m);
	assert_result(&r, DKIM_RESULT_FAIL, NULL);
	free(m);
}

/* With h=, fields are hashed in the order of their names' first mention. */
static void
test_select_order(void **state)
{
	struct rfc5322_header h;
	size_t idx[8], n;
	const struct dkim_canon_name names[] = {{"b", 1}, {"a", 1}, {"b", 1}};
	rfc5322_header_init(&h, 0, 0);
	assert_int_equal(rfc5322_header_add(&h, "Sig: x\r\n", 8), 0);
	assert_int_equal(rfc5322_header_add(&h, "a: 1\r\n", 6), 0);
	assert_int_equal(rfc5322_header_add(&h, "b: 2\r\n", 6), 0);
	assert_int_equal(rfc5322_header_add(&h, "c: 3\r\n", 6), 0);
	assert_int_equal(rfc5322_header_add(&h, "b: 4\r\n", 6), 0);
	assert_int_equal(dk_verify_select(&h, 0, names, 3, idx, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 2);
	assert_int_equal(idx[1], 1);
	assert_int_equal(idx[2], 4);
	assert_int_equal(dk_verify_select(&h, 0, names, 0, idx, &n), 0);
	assert_int_equal(n, 4);
	rfc5322_header_free(&h);
}

static void
test_identity(void **state)
{
	char *m = sign("From: joe@example.com\r\nSender: list@lists.example.com\r\n\r\nx\r\n", "s",
	               DK_CANON_SIMPLE, NULL);
	struct dkim_sig_result r = verify(m);
	assert_result(&r, DKIM_RESULT_PASS, NULL);
	assert_true(r.identity_sender);
	assert_string_equal(r.identity, "list@lists.example.com");
	free(m);
	m = sign("From: joe@example.org\r\n\r\nx\r\n", "s", DK_CANON_SIMPLE, NULL);
	r = verify(m);
	assert_result(&r, DKIM_RESULT_PERMERROR, "From address");
	free(m);
	m = sign("To: joe@example.com\r\n\r\nx\r\n", "s", DK_CANON_SIMPLE, NULL);
	r = verify(m);
	assert_result(&r, DKIM_RESULT_PERMERROR, "no signed Sender or From");
	free(m);
}

static void
test_granularity(void **state)
{
	char *m = sign(MSG, "gjoe", DK_CANON_NOFWS, NULL);
	struct dkim_sig_result r = verify(m);
	assert_result(&r, DKIM_RESULT_PASS, NULL);
	free(m);
	m = sign(MSG, "gempty", DK_CANON_NOFWS, NULL);
	r = verify(m);
	assert_result(&r, DKIM_RESULT_PASS, NULL);
	free(m);
	m = sign(MSG, "gjim", DK_CANON_NOFWS, NULL);
	r = verify(m);
	assert_result(&r, DKIM_RESULT_PERMERROR, "granularity");
	free(m);
}

static void
check_field(const char *value, enum dkim_result want, const char *reason)
{
	_cleanup_buf_ struct buf m = BUF_INIT(4096);
	assert_int_equal(buf_printf(&m, "DomainKey-Signature: %s\r\n%s", value, MSG), 0);
	struct dkim_sig_result r = verify(m.data);
	assert_result(&r, want, reason);
}

static void
test_bad_fields(void **state)
{
	check_field("a=rsa-sha1; q=dns; c=nofws; d=example.com; s=s; b=AAAA", DKIM_RESULT_FAIL,
	            NULL);
	check_field("a=rsa-sha256; q=dns; d=example.com; s=s; b=AAAA", DKIM_RESULT_PERMERROR,
	            "algorithm");
	check_field("q=; d=example.com; s=s; b=AAAA", DKIM_RESULT_PERMERROR, "query");
	check_field("c=fancy; d=example.com; s=s; b=AAAA", DKIM_RESULT_PERMERROR, "canonical");
	check_field("d=example.com; s=s", DKIM_RESULT_PERMERROR, "missing b=");
	check_field("d=example.com; s=s; b=A", DKIM_RESULT_NEUTRAL, "base64");
	check_field("d=example.com; s; b=AAAA", DKIM_RESULT_NEUTRAL, "syntax");
	check_field("d=example.com; s=nosuch; b=AAAA", DKIM_RESULT_PERMERROR, "NXDOMAIN");
}

static void
test_sign_errors(void **state)
{
	struct dkim_key_private ed;
	struct dk_sign *s;
	struct dk_sign_opts o = {
	    .domain = "example.com", .selector = "s", .key = &rsa, .canon = DKIM_CANON_RELAXED};
	assert_int_equal(dk_sign_new(&o, &s), -EINVAL);
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_ED25519, 0, &ed), 0);
	o.canon = DK_CANON_SIMPLE;
	o.key = &ed;
	assert_int_equal(dk_sign_new(&o, &s), -EINVAL);
	dkim_key_private_clear(&ed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_covered_fields),
	    cmocka_unit_test(test_select_order), cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_granularity),  cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_sign_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
