/*
 * Unit tests for src/mail/dmarc_psl: the public suffix list's rules (normal, wildcard,
 * exception), the PRIVATE section, input forms, A-labels computed for Unicode rules, bounds
 * and errors; then a few names against Debian's list.
 */
#include "core/cleanup.h"
#include "mail/dmarc_psl.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static const char small_list[] =
    "// a list in the format of public_suffix_list.dat\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "\n"
    "// ck : wildcard with an exception\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "*.kobe.jp\n"
    "!city.kobe.jp\n"
    "cn\n"
    "公司.cn\n"
    "bücher.example\n"
    "MüNCHEN.Example   trailing text after whitespace is not part of the rule\n"
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "blogspot.com\r\n"
    "// ===END PRIVATE DOMAINS===\n";

static char *
write_list(const char *text)
{
	char *path = strdup("/tmp/test-dmarc_psl-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static struct dmarc_psl *
load_text(const char *text, unsigned flags)
{
	_cleanup_free_ char *path = write_list(text);
	struct dmarc_psl *psl = NULL;
	int e = dmarc_psl_load(path, flags, &psl);
	unlink(path);
	assert_int_equal(e, 0);
	return psl;
}

static void
expect_org(const struct dmarc_psl *psl, const char *domain, const char *want)
{
	char out[256];
	int e = dmarc_psl_org_domain(psl, domain, out, sizeof(out));
	if (!want) {
		if (e != -ENOENT)
			fail_msg("%s: %d (%s), want -ENOENT", domain, e, e == 0 ? out : "");
		return;
	}
	if (e != 0 || strcmp(out, want) != 0)
		fail_msg("%s: %d %s, want %s", domain, e, e == 0 ? out : "", want);
}

static void
test_rules(void **state)
{
	struct dmarc_psl *psl = load_text(small_list, 0);
	expect_org(psl, "com", NULL);
	expect_org(psl, "example.com", "example.com");
	expect_org(psl, "a.b.example.com", "example.com");
	expect_org(psl, "co.uk", NULL);
	expect_org(psl, "www.example.co.uk", "example.co.uk");
	/* unlisted TLD: the implicit "*" rule */
	expect_org(psl, "example", NULL);
	expect_org(psl, "a.b.example.test", "example.test");
	/* wildcard and exception */
	expect_org(psl, "ck", NULL);
	expect_org(psl, "test.ck", NULL);
	expect_org(psl, "a.b.test.ck", "b.test.ck");
	expect_org(psl, "www.ck", "www.ck");
	expect_org(psl, "www.www.ck", "www.ck");
	expect_org(psl, "c.kobe.jp", NULL);
	expect_org(psl, "a.b.c.kobe.jp", "b.c.kobe.jp");
	expect_org(psl, "www.city.kobe.jp", "city.kobe.jp");
	/* the PRIVATE section is used by default, as OpenDMARC does */
	expect_org(psl, "blogspot.com", NULL);
	expect_org(psl, "a.foo.blogspot.com", "foo.blogspot.com");
	/* 13 names (*.ck under "ck", !www.ck under "www.ck") + 3 A-labels */
	assert_int_equal(dmarc_psl_size(psl), 16);
	dmarc_psl_free(psl);
}

static void
test_icann_only(void **state)
{
	struct dmarc_psl *psl = load_text(small_list, DMARC_PSL_ICANN_ONLY);
	expect_org(psl, "a.foo.blogspot.com", "blogspot.com");
	expect_org(psl, "a.example.co.uk", "example.co.uk");
	assert_int_equal(dmarc_psl_size(psl), 15);
	dmarc_psl_free(psl);
}

static void
test_input_forms(void **state)
{
	struct dmarc_psl *psl = load_text(small_list, 0);
	char out[256];
	expect_org(psl, "WwW.Example.COM", "example.com");
	expect_org(psl, "www.example.com.", "example.com");
	expect_org(psl, "COM.", NULL);
	assert_int_equal(dmarc_psl_org_domain(psl, ".example.com", out, sizeof(out)), -EINVAL);
	assert_int_equal(dmarc_psl_org_domain(psl, "a..example.com", out, sizeof(out)), -EINVAL);
	assert_int_equal(dmarc_psl_org_domain(psl, "", out, sizeof(out)), -EINVAL);
	assert_int_equal(dmarc_psl_org_domain(psl, ".", out, sizeof(out)), -EINVAL);
	assert_int_equal(dmarc_psl_org_domain(psl, NULL, out, sizeof(out)), -EINVAL);
	assert_int_equal(dmarc_psl_org_domain(psl, "example.com..", out, sizeof(out)), -EINVAL);
	char label[80];
	memset(label, 'a', 64);
	memcpy(label + 64, ".com", 5);
	assert_int_equal(dmarc_psl_org_domain(psl, label, out, sizeof(out)), -EINVAL);
	char longname[300] = "";
	for (int i = 0; i < 127; i++)
		strncat(longname, "a.", sizeof(longname) - strlen(longname) - 1);
	strncat(longname, "com", sizeof(longname) - strlen(longname) - 1); /* 257 bytes */
	assert_int_equal(dmarc_psl_org_domain(psl, longname, out, sizeof(out)), -EINVAL);
	/* a 253-byte name is fine */
	assert_int_equal(dmarc_psl_org_domain(psl, longname + 4, out, sizeof(out)), 0);
	assert_string_equal(out, "a.com");
	assert_int_equal(dmarc_psl_org_domain(psl, "www.example.com", out, 11), -ENOBUFS);
	assert_int_equal(dmarc_psl_org_domain(psl, "www.example.com", out, 12), 0);
	assert_string_equal(out, "example.com");
	size_t n;
	assert_int_equal(dmarc_psl_suffix_labels(psl, "a.b.c.kobe.jp", &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(dmarc_psl_suffix_labels(psl, "x.www.ck", &n), 0);
	assert_int_equal(n, 1);
	dmarc_psl_free(psl);
}

static void
test_idn(void **state)
{
	struct dmarc_psl *psl = load_text(small_list, 0);
	/* Unicode as given, and the A-label computed at load (RFC 3492) */
	expect_org(psl, "www.食狮.公司.cn", "食狮.公司.cn");
	expect_org(psl, "公司.cn", NULL);
	expect_org(psl, "xn--55qx5d.cn", NULL);
	expect_org(psl, "www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn");
	/* RFC 3492-style vectors: bücher -> xn--bcher-kva, münchen -> xn--mnchen-3ya */
	expect_org(psl, "a.b.xn--bcher-kva.example", "b.xn--bcher-kva.example");
	expect_org(psl, "xn--bcher-kva.example", NULL);
	expect_org(psl, "a.xn--mnchen-3ya.example", "a.xn--mnchen-3ya.example");
	/* ASCII is lower-cased in rules and input; other bytes are compared as written */
	expect_org(psl, "b.a.MüNCHEN.example", "a.münchen.example");
	expect_org(psl, "münchen.example", NULL);
	dmarc_psl_free(psl);
}

static void
test_load_errors(void **state)
{
	struct dmarc_psl *psl = NULL;
	assert_int_equal(dmarc_psl_load("/nonexistent/psl.dat", 0, &psl), -ENOENT);
	assert_null(psl);
	_cleanup_free_ char *empty = write_list("// only comments\n\n");
	assert_int_equal(dmarc_psl_load(empty, 0, &psl), -EINVAL);
	unlink(empty);
	/* rules that cannot be names are skipped, the rest loads */
	_cleanup_free_ char *odd = write_list("a..b\n.lead\n*\nmid.*.x\n!\nok\n");
	assert_int_equal(dmarc_psl_load(odd, 0, &psl), 0);
	unlink(odd);
	assert_int_equal(dmarc_psl_size(psl), 1);
	expect_org(psl, "a.b.ok", "b.ok");
	dmarc_psl_free(psl);
	dmarc_psl_free(NULL);
}

static void
test_many_rules(void **state)
{
	/* enough rules to grow the table several times */
	size_t cap = 5000 * 16;
	_cleanup_free_ char *text = malloc(cap);
	assert_non_null(text);
	size_t len = 0;
	for (int i = 0; i < 5000; i++)
		len += (size_t)snprintf(text + len, cap - len, "r%d.test\n", i);
	struct dmarc_psl *psl = load_text(text, 0);
	assert_int_equal(dmarc_psl_size(psl), 5000);
	expect_org(psl, "a.b.r4999.test", "b.r4999.test");
	expect_org(psl, "r0.test", NULL);
	expect_org(psl, "a.b.r5000.test", "r5000.test");
	dmarc_psl_free(psl);
}

static void
test_debian_list(void **state)
{
	struct dmarc_psl *psl = NULL;
	/* the publicsuffix package is a test dependency (Makefile DEBS_TEST) */
	assert_int_equal(dmarc_psl_load(NULL, 0, &psl), 0);
	assert_true(dmarc_psl_size(psl) > 5000);
	expect_org(psl, "mail.example.com", "example.com");
	expect_org(psl, "mail.example.co.uk", "example.co.uk");
	expect_org(psl, "a.b.c.kobe.jp", "b.c.kobe.jp");
	expect_org(psl, "a.foo.blogspot.com", "foo.blogspot.com");
	expect_org(psl, "co.uk", NULL);
	expect_org(psl, "shishi.xn--fiqs8s", "shishi.xn--fiqs8s");
	dmarc_psl_free(psl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),       cmocka_unit_test(test_icann_only),
	    cmocka_unit_test(test_input_forms), cmocka_unit_test(test_idn),
	    cmocka_unit_test(test_load_errors), cmocka_unit_test(test_many_rules),
	    cmocka_unit_test(test_debian_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
