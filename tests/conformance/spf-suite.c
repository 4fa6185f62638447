/*
 * Conformance driver for SPF and Sender ID over ../shared/testdata:
 *
 *   spf-suite openspf FILE.yml     openspf YAML (rfc7208-tests.yml, pyspf's test.yml)
 *   spf-suite senderid FILE.yml    the same format, checked as Sender ID (scope mfrom)
 *   spf-suite stalwart DIR         stalwart mail-auth's line-oriented *.yml files
 *
 * Each scenario's zonedata becomes an in-memory zone (core/dns); SPF-type data is copied to
 * TXT unless the name lists TXT itself, as the openspf drivers do. Prints one line per
 * mismatch and a summary; exits 1 on any mismatch not listed (with its RFC argument) in
 * divergences[] below.
 */
#include "spf-suite.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Where we differ from a test on purpose. Each entry names the suite file and the test and
 * carries the argument from the RFC text; the summary prints them.
 */
static const struct {
	const char *file, *test, *why;
} divergences[] = {
    {"test.yml", "default-modifier",
     "pyspf lax mode (strict: 0) honours the pre-RFC default= modifier; RFC 7208 §6 has no "
     "default= and says unrecognized modifiers MUST be ignored, so the result is neutral "
     "(rfc7208-tests default-modifier-obsolete expects exactly that)"},
    {"test.yml", "default-modifier-harsh",
     "pyspf harsh mode (strict: 2) answers 'ambiguous', which is not an SPF result "
     "(RFC 7208 §2.6 lists none, neutral, pass, fail, softfail, temperror, permerror)"},
    {"basic.yml", "DNS Lookup Limits#1",
     "ten a: mechanisms on names that do not exist are ten void lookups; RFC 7208 §4.6.4 "
     "says SPF implementations SHOULD limit void lookups to two and exceeding the limit "
     "produces permerror (rfc7208-tests void-over-limit expects permerror)"},
    {"ip.yml", "IPv6 match#4",
     "an IPv4 client never matches ip6: RFC 7208 §5 'SPF verifiers MUST treat IPv4-mapped "
     "IPv6 addresses as IPv4 addresses' and §5.6 ip6 matches IPv6 clients only "
     "(rfc7208-tests cidr6-0-ip4 and cidr6-ip4 expect neutral)"},
    {"all.yml", "All test#1",
     "'ip:10.0.0.1' is not a mechanism: RFC 7208 §4.6 'any syntax errors anywhere in the "
     "record MUST be detected' and §5 ends check_host() with permerror for an unknown "
     "mechanism, even after 'all' (rfc7208-tests detect-errors-anywhere expects permerror)"},
    {"macro.yml", "Macro expansion 2#2",
     "the exists: target has AAAA records only; RFC 7208 §5.7 looks up A records even for "
     "an IPv6 client, so it does not match and -all gives fail (rfc7208-tests "
     "exists-ip6only expects fail)"},
    {"exists.yml", "Exists#2",
     "exists: looks up A records only: RFC 7208 §5.7 'The resulting domain name is used for "
     "a DNS A RR lookup (even when the connection type is IPv6)'; a name with AAAA records "
     "only does not match (rfc7208-tests exists-ip6only expects fail)"},
};

bool verbose;

static const char *
divergence(const char *file, const char *test)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	for (size_t i = 0; i < ARRAY_SIZE(divergences); i++)
		if (strcmp(divergences[i].file, base) == 0 &&
		    strcmp(divergences[i].test, test) == 0)
			return divergences[i].why;
	return NULL;
}

void
report(struct tally *t, const char *file, const char *test, const char *fmt, ...)
{
	va_list ap;
	const char *why = divergence(file, test);
	if (why) {
		t->diverged++;
		printf("DIVERGE %s: %s: ", file, test);
	} else {
		t->fail++;
		printf("FAIL %s: %s: ", file, test);
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (why)
		printf("        argued: %s\n", why);
}

int
run_check(struct dns_zone *zone, const struct spf_request *req, struct spf_outcome *out)
{
	struct dns_resolver *r;
	int e = dns_resolver_from_zone(zone, &r);
	if (e < 0)
		return e;
	e = spf_eval_check(r, req, out);
	dns_resolver_free(r);
	return e;
}

static int
usage(void)
{
	fprintf(stderr, "usage: spf-suite [-v] openspf|senderid FILE.yml | stalwart DIR\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct tally t = {0};
	int r;
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = true;
		argc--;
		argv++;
	}
	if (argc != 3)
		return usage();
	if (strcmp(argv[1], "openspf") == 0)
		r = openspf_file(argv[2], SPF_SCOPE_SPF1, &t);
	else if (strcmp(argv[1], "senderid") == 0)
		r = openspf_file(argv[2], SPF_SCOPE_MFROM, &t);
	else if (strcmp(argv[1], "stalwart") == 0)
		r = stalwart_dir(argv[2], &t);
	else
		return usage();
	if (r < 0) {
		fprintf(stderr, "spf-suite: %s: %s\n", argv[2], strerror(-r));
		return 2;
	}
	printf("%s %s: %u of %u passed", argv[1], argv[2], t.pass, t.pass + t.fail + t.diverged);
	if (t.diverged)
		printf(", %u argued divergences", t.diverged);
	printf(", %u failed\n", t.fail);
	return t.fail ? 1 : 0;
}
