/* Unit tests for src/mail/spf_record: record selection and the RFC 7208 record grammar. */
#include "mail/spf_record.h"

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

static struct spf_record *
parse_ok(const char *text)
{
	struct spf_record *r = NULL;
	struct spf_error err;
	int e = spf_record_parse(text, strlen(text), &r, &err);
	if (e != 0)
		fail_msg("parse(\"%s\") = %d (%s)", text, e, err.msg ? err.msg : "");
	return r;
}

static void
test_terms(void **state)
{
	struct spf_record *r =
	    parse_ok("v=spf1 +a -mx:%{d}/24 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
	             "include:_spf.example.com exists:%{i}.x.example a//64 mx/30//56 all "
	             "redirect=other.example exp=why.example foo.bar-x_y=anything%%");
	assert_int_equal(r->n, 10);
	assert_int_equal(r->terms[0].mech, SPF_M_A);
	assert_int_equal(r->terms[0].qual, SPF_PASS);
	assert_int_equal(r->terms[0].spec.len, 0);
	assert_int_equal(r->terms[1].mech, SPF_M_MX);
	assert_int_equal(r->terms[1].qual, SPF_FAIL);
	assert_int_equal(r->terms[1].cidr4, 24);
	assert_int_equal(r->terms[1].cidr6, 128);
	assert_memory_equal(r->text + r->terms[1].spec.off, "%{d}", 4);
	assert_int_equal(r->terms[2].qual, SPF_SOFTFAIL);
	assert_int_equal(r->terms[3].qual, SPF_NEUTRAL);
	assert_int_equal(r->terms[3].cidr4, 24);
	assert_memory_equal(r->terms[3].addr, "\xc0\x00\x02\x00", 4);
	assert_int_equal(r->terms[4].mech, SPF_M_IP6);
	assert_int_equal(r->terms[4].cidr6, 32);
	assert_int_equal(r->terms[7].cidr4, 32);
	assert_int_equal(r->terms[7].cidr6, 64);
	assert_int_equal(r->terms[8].cidr4, 30);
	assert_int_equal(r->terms[8].cidr6, 56);
	assert_int_equal(r->terms[9].mech, SPF_M_ALL);
	assert_true(r->has_redirect && r->has_exp);
	assert_memory_equal(r->text + r->redirect.off, "other.example", r->redirect.len);
	assert_memory_equal(r->text + r->exp.off, "why.example", r->exp.len);
	assert_int_equal(spf_record_dns_terms(r), 8);
	spf_record_free(r);

	r = parse_ok("V=SpF1   A:Example.COM   -ALL   ");
	assert_int_equal(r->n, 2);
	spf_record_free(r);
	r = parse_ok("v=spf1");
	assert_int_equal(r->n, 0);
	spf_record_free(r);
	r = parse_ok("spf2.0/mfrom,pra ip4:192.0.2.1 -all");
	assert_int_equal(r->n, 2);
	spf_record_free(r);
}

/* Records from the openspf suite and RFC 7208 §4.6 that are syntax errors. */
static void
test_errors(void **state)
{
	static const char *const bad[] = {
	    "v=spf1 ip4:1.2.3.4 -all moo",
	    "v=spf1 moo.cow/far_out=man:dog/cat",
	    "v=spf1 moo.cow:far_out=man:dog/cat",
	    "v=spf1 redirect:t2.example.com",
	    "v=spf1 a:foo-bar -all",
	    "v=spf1 -all.",
	    "v=spf1 -all:foobar",
	    "v=spf1 -all/8",
	    "v=spf1 ptr/0 -all",
	    "v=spf1 ptr:",
	    "v=spf1 a//33 a//129",
	    "v=spf1 a/33 -all",
	    "v=spf1 a/24/64 -all",
	    "v=spf1 a:example.com:8080",
	    "v=spf1 a:abc.123",
	    "v=spf1 a:museum",
	    "v=spf1 a:museum.",
	    "v=spf1 a:",
	    "v=spf1 include -all",
	    "v=spf1 include:",
	    "v=spf1 include:ip5.example.com/24",
	    "v=spf1 exists",
	    "v=spf1 exists:",
	    "v=spf1 exists:mail.example.com/24",
	    "v=spf1 ip4",
	    "v=spf1 ip4:1.2.3.4/33",
	    "v=spf1 ip4:1.2.3.4/032",
	    "v=spf1 ip4:1.2.3.4//32",
	    "v=spf1 ip4:1.2.3.4:8080",
	    "v=spf1 ip4:1.2.3",
	    "v=spf1 ip4:1.2.03.4",
	    "v=spf1 ip4:1.2.3.444",
	    "v=spf1 -all ip6",
	    "v=spf1 ip6:::1.1.1.1/129",
	    "v=spf1 ip6:::1.1.1.1//33",
	    "v=spf1 ip6::CAFE::BABE",
	    "v=spf1 1up=foo",
	    "v=spf1 =all",
	    "v=spf1 exp= -all",
	    "v=spf1 exp=-all",
	    "v=spf1 redirect=-all ?all",
	    "v=spf1 ?all redirect=",
	    "v=spf1 exp=a.example exp=b.example",
	    "v=spf1 redirect=a.example redirect=b.example",
	    "v=spf1 -all foo=%abc",
	    "v=spf1 a:%{a}.example.com",
	    "v=spf1 -exists:%(ir).sbl.example.com",
	    "v=spf1 -all exp=%{r}.example.com",
	    "v=spf1 a:ctrl.example.com\rptr -all",
	    "v=spf1 \x80"
	    "a:example.net -all",
	    "v=spf1 a:example.net \x96"
	    "all",
	    "v=spf1 ip4:192.0.2.5\n include:x.example",
	    "v=spf1 +",
	    "v=spf1 +redirect=x.example",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct spf_record *r = NULL;
		struct spf_error err;
		int e = spf_record_parse(bad[i], strlen(bad[i]), &r, &err);
		if (e != -EINVAL)
			fail_msg("parse(\"%s\") = %d, want -EINVAL", bad[i], e);
		assert_non_null(err.msg);
		assert_null(r);
	}
}

static void
test_error_position(void **state)
{
	const char *text = "v=spf1 a:examplea.com:8080";
	struct spf_record *r;
	struct spf_error err;
	assert_int_equal(spf_record_parse(text, strlen(text), &r, &err), -EINVAL);
	assert_string_equal(err.msg, "Invalid domain found (use FQDN)");
	assert_int_equal(err.at.len, strlen("examplea.com:8080"));
	assert_memory_equal(text + err.at.off, "examplea.com:8080", err.at.len);
	/* NUL bytes inside the record are data, not an end */
	assert_int_equal(spf_record_parse("v=spf1 a:foo.example.com\0", 25, &r, &err), -EINVAL);
}

static void
test_not_spf(void **state)
{
	static const char *const texts[] = {"v=spf10",     "v=spf1mx", "spf2.0/ -all",
	                                    "v=spf2 -all", "x v=spf1", ""};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct spf_record *r = NULL;
		struct spf_error err;
		assert_int_equal(spf_record_parse(texts[i], strlen(texts[i]), &r, &err), -EINVAL);
	}
}

static void
test_too_many_terms(void **state)
{
	size_t n = 5000 * 12 + 8;
	char *text = malloc(n);
	size_t len = (size_t)snprintf(text, n, "v=spf1");
	for (int i = 0; i < 5000; i++)
		len += (size_t)snprintf(text + len, n - len, " ip4:1.2.3.4");
	struct spf_record *r = NULL;
	struct spf_error err;
	assert_int_equal(spf_record_parse(text, len, &r, &err), -E2BIG);
	free(text);
}

/* An answer of TXT strings for spf_record_select. */
static void
select_case(const char *const *txt, size_t n, enum spf_scope scope, int want)
{
	struct dns_rr rr[8];
	struct dns_answer a = {.status = DNS_OK, .n = n, .rr = rr};
	struct spf_error err;
	for (size_t i = 0; i < n; i++)
		rr[i] = (struct dns_rr){.type = DNS_T_TXT,
		                        .u.txt = {.data = (char *)txt[i], .len = strlen(txt[i])}};
	int got = spf_record_select(&a, scope, &err);
	if (got != want)
		fail_msg("select(%s, ... scope %d) = %d, want %d", txt[0], scope, got, want);
}

static void
test_select(void **state)
{
	const char *one[] = {"hello", "v=spf1 -all", "v=spf10"};
	select_case(one, 3, SPF_SCOPE_SPF1, 1);
	const char *two[] = {"v=spf1 -all", "V=sPf1 +all"};
	select_case(two, 2, SPF_SCOPE_SPF1, -ENOTUNIQ);
	const char *none[] = {"v=spf10", "spf2.0/pra -all"};
	select_case(none, 2, SPF_SCOPE_SPF1, -ENOENT);
	/* RFC 4406: spf2.0 for the scope first, v=spf1 as the fallback */
	const char *v2v1[] = {"v=spf1 +all", "spf2.0/mfrom -all"};
	select_case(v2v1, 2, SPF_SCOPE_MFROM, 1);
	select_case(v2v1, 2, SPF_SCOPE_PRA, 0);
	select_case(v2v1, 2, SPF_SCOPE_SPF1, 0);
	const char *v2v2[] = {"spf2.0/mfrom -all", "spf2.0/mfrom,pra -all", "v=spf1 -all"};
	select_case(v2v2, 3, SPF_SCOPE_MFROM, -ENOTUNIQ);
	select_case(v2v2, 3, SPF_SCOPE_PRA, 1);
	const char *odd[] = {"spf2.0/pra,", "spf2.0/pra/mfrom -all", "spf2.0/PRA"};
	select_case(odd, 3, SPF_SCOPE_PRA, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_terms),          cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_error_position), cmocka_unit_test(test_not_spf),
	    cmocka_unit_test(test_too_many_terms), cmocka_unit_test(test_select),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
