/* Unit tests for src/mail/spf_macro: RFC 7208 §7 syntax, expansion, escaping, truncation. */
#include "mail/spf_macro.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static struct net_addr ip4, ip6;

static const char *
fixed_p(void *arg)
{
	return arg;
}

/* RFC 7208 §7.4: sender strong-bad@email.example.com, ip 192.0.2.3. */
static struct spf_macro_vars
vars_for(const struct net_addr *ip)
{
	return (struct spf_macro_vars){
	    .sender = "strong-bad@email.example.com",
	    .local_len = 10,
	    .sender_domain = "email.example.com",
	    .domain = "email.example.com",
	    .helo = "mx.example.org",
	    .receiver = "mx.example.net",
	    .ip = ip,
	    .now = 1700000000,
	    .validated = fixed_p,
	    .arg = "mx.example.org",
	};
}

static int
setup(void **state)
{
	assert_int_equal(net_addr_parse("192.0.2.3", NET_PORT_NONE, &ip4), 0);
	assert_int_equal(net_addr_parse("2001:db8::cb01", NET_PORT_NONE, &ip6), 0);
	return 0;
}

static void
expect(const struct net_addr *ip, enum spf_macro_kind kind, const char *in, const char *want)
{
	struct spf_macro_vars v = vars_for(ip);
	char out[1024];
	int r = spf_macro_expand(in, strlen(in), kind, &v, out, sizeof(out));
	if (r != 0)
		fail_msg("expand(\"%s\") = %d", in, r);
	if (strcmp(out, want) != 0)
		fail_msg("expand(\"%s\") = \"%s\", want \"%s\"", in, out, want);
}

static void
test_rfc_examples(void **state)
{
	static const char *const cases[][2] = {
	    {"%{s}", "strong-bad@email.example.com"},
	    {"%{o}", "email.example.com"},
	    {"%{d}", "email.example.com"},
	    {"%{d4}", "email.example.com"},
	    {"%{d3}", "email.example.com"},
	    {"%{d2}", "example.com"},
	    {"%{d1}", "com"},
	    {"%{dr}", "com.example.email"},
	    {"%{d2r}", "example.email"},
	    {"%{l}", "strong-bad"},
	    {"%{l-}", "strong.bad"},
	    {"%{lr}", "strong-bad"},
	    {"%{lr-}", "bad.strong"},
	    {"%{l1r-}", "strong"},
	    {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
	    {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
	    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
	    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
	    {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
	    {"%{p}.trusted.example.net", "mx.example.org.trusted.example.net"},
	    {"%{p2}.x.example", "example.org.x.example"},
	    {"%{h}.x.example", "mx.example.org.x.example"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect(&ip4, SPF_MACRO_DOMAIN, cases[i][0], cases[i][1]);
}

static void
test_ipv6(void **state)
{
	/* nibbles upper case, as pyspf and the openspf suite (v-macro-ip6) have them */
	expect(
	    &ip6, SPF_MACRO_DOMAIN, "%{ir}.%{v}._spf.%{d2}",
	    "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
	expect(&ip6, SPF_MACRO_EXP, "%{c} is %{i}",
	       "2001:db8::cb01 is 2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1");
	expect(&ip4, SPF_MACRO_EXP, "%{c} %{i}", "192.0.2.3 192.0.2.3");
}

static void
test_escapes_and_exp_letters(void **state)
{
	expect(&ip4, SPF_MACRO_EXP, "%% %_ %- x", "%   %20 x");
	expect(&ip4, SPF_MACRO_EXP, "%{r} at %{t}", "mx.example.net at 1700000000");
	expect(&ip4, SPF_MACRO_EXP, "trailing dot stays.", "trailing dot stays.");
	expect(&ip4, SPF_MACRO_DOMAIN, "%{d}.example.com.", "email.example.com.example.com");
	expect(&ip4, SPF_MACRO_DOMAIN, "a%%b.example.com", "a%b.example.com");
}

static void
test_url_escaping(void **state)
{
	struct spf_macro_vars v = vars_for(&ip4);
	char out[256];
	v.sender = "~jack&jill=up-a_b3.c@e8.example.com";
	v.local_len = strlen("~jack&jill=up-a_b3.c");
	const char *in = "http://example.com/why.html?l=%{L}";
	assert_int_equal(spf_macro_expand(in, strlen(in), SPF_MACRO_EXP, &v, out, sizeof(out)), 0);
	assert_string_equal(out, "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c");
	in = "%{S}";
	assert_int_equal(spf_macro_expand(in, strlen(in), SPF_MACRO_EXP, &v, out, sizeof(out)), 0);
	assert_string_equal(out, "~jack%26jill%3Dup-a_b3.c%40e8.example.com");
}

static void
test_delimiters(void **state)
{
	struct spf_macro_vars v = vars_for(&ip4);
	char out[256];
	v.sender = "foo-bar+zip+quux@e12.example.com";
	v.local_len = 16;
	const char *in = "%{l2r+-}.user.%{d2}";
	assert_int_equal(spf_macro_expand(in, strlen(in), SPF_MACRO_DOMAIN, &v, out, sizeof(out)),
	                 0);
	assert_string_equal(out, "bar.foo.user.example.com");
	in = "%{l1000}.x.example";
	assert_int_equal(spf_macro_expand(in, strlen(in), SPF_MACRO_DOMAIN, &v, out, sizeof(out)),
	                 0);
	assert_string_equal(out, "foo-bar+zip+quux.x.example");
}

static void
test_syntax(void **state)
{
	static const struct {
		const char *s;
		enum spf_macro_kind kind;
		int want;
	} cases[] = {
	    {"example.com", SPF_MACRO_DOMAIN, 0},
	    {"%{d}", SPF_MACRO_DOMAIN, 0},
	    {"%{d}.", SPF_MACRO_DOMAIN, -EINVAL}, /* ends in "." without a toplabel */
	    {"foo.example.com.", SPF_MACRO_DOMAIN, 0},
	    {"museum", SPF_MACRO_DOMAIN, -EINVAL},
	    {"museum.", SPF_MACRO_DOMAIN, -EINVAL},
	    {"abc.123", SPF_MACRO_DOMAIN, -EINVAL},
	    {"example.-com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"example.com-", SPF_MACRO_DOMAIN, -EINVAL},
	    {"foo.xn--zckzah", SPF_MACRO_DOMAIN, 0},
	    {"foo.1-2", SPF_MACRO_DOMAIN, 0},
	    {"foo:bar/baz.example.com", SPF_MACRO_DOMAIN, 0},
	    {"example.com:8080", SPF_MACRO_DOMAIN, -EINVAL},
	    {"", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{c}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{r}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{t}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{c}%{r}%{t}", SPF_MACRO_EXP, 0},
	    {"%{a}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%(ir).example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"foo%.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"foo.example.com%", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{d0}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{d00r}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{d1r.-+,/_=}.example.com", SPF_MACRO_DOMAIN, 0},
	    {"%{d1r:}.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{d", SPF_MACRO_DOMAIN, -EINVAL},
	    {"%{D2R}", SPF_MACRO_DOMAIN, 0},
	    {"%%", SPF_MACRO_DOMAIN, 0}, /* "%%" is a macro-expand, so a domain-end */
	    {"a b.example.com", SPF_MACRO_DOMAIN, -EINVAL},
	    {"has spaces", SPF_MACRO_EXP, 0},
	    {"", SPF_MACRO_STRING, 0},
	    {"%abc", SPF_MACRO_STRING, -EINVAL},
	    {"ctl\x01", SPF_MACRO_EXP, -EINVAL},
	    {"\xc3\xa9t\xc3\xa9", SPF_MACRO_EXP, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = spf_macro_check(cases[i].s, strlen(cases[i].s), cases[i].kind);
		if (r != cases[i].want)
			fail_msg("check(\"%s\", %d) = %d, want %d", cases[i].s, cases[i].kind, r,
			         cases[i].want);
	}
	/* a NUL byte is not a macro-literal */
	assert_int_equal(spf_macro_check("a.example.com\0", 14, SPF_MACRO_DOMAIN), -EINVAL);
}

/* §7.3: labels are dropped from the left until at most 253 characters remain. */
static void
test_truncation(void **state)
{
	struct spf_macro_vars v = vars_for(&ip4);
	char in[512], out[SPF_MACRO_NAME_MAX];
	size_t n = 0;
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%%{o}.");
	n += (size_t)snprintf(in + n, sizeof(in) - n, "example.com");
	assert_int_equal(spf_macro_expand(in, n, SPF_MACRO_DOMAIN, &v, out, sizeof(out)), 0);
	assert_true(strlen(out) <= 253);
	assert_true(strlen(out) > 253 - 64);
	assert_true(strncmp(out, "email.", 6) == 0 || strncmp(out, "example.", 8) == 0 ||
	            strncmp(out, "com.", 4) == 0);
	assert_string_equal(out + strlen(out) - 12, ".example.com");

	/* a 300-character label is dropped whole; with no dot to cut at, nothing fits */
	memset(in, 'a', 300);
	memcpy(in + 300, ".com", 4);
	assert_int_equal(spf_macro_expand(in, 304, SPF_MACRO_DOMAIN, &v, out, sizeof(out)), 0);
	assert_string_equal(out, "com");
	memcpy(in + 300, "%{d}", 4);
	assert_int_equal(spf_macro_expand(in, 304, SPF_MACRO_DOMAIN, &v, out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	memcpy(in + 300, "%{l}", 4);
	assert_int_equal(spf_macro_expand(in, 304, SPF_MACRO_DOMAIN, &v, out, sizeof(out)),
	                 -ENAMETOOLONG);
	memset(in + 300, 'b', 4);
	assert_int_equal(spf_macro_check(in, 304, SPF_MACRO_DOMAIN), -EINVAL);
}

/* A macro bomb: thousands of expansions into a bounded buffer. */
static void
test_bomb(void **state)
{
	struct spf_macro_vars v = vars_for(&ip6);
	static char in[60000];
	char out[SPF_MACRO_NAME_MAX], exp[256];
	size_t n = 0;
	while (n + 20 < sizeof(in))
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%%{S}%%{ir}.");
	n += (size_t)snprintf(in + n, sizeof(in) - n, "x.example");
	assert_int_equal(spf_macro_expand(in, n, SPF_MACRO_DOMAIN, &v, out, sizeof(out)), 0);
	assert_true(strlen(out) <= 253);
	assert_string_equal(out + strlen(out) - 10, ".x.example");
	assert_int_equal(spf_macro_expand(in, n, SPF_MACRO_EXP, &v, exp, sizeof(exp)), 0);
	assert_int_equal(strlen(exp), sizeof(exp) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_examples),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_escapes_and_exp_letters),
	    cmocka_unit_test(test_url_escaping),
	    cmocka_unit_test(test_delimiters),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_bomb),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
