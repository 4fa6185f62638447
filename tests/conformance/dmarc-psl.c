/*
 * The public suffix list's own test cases (Debian publicsuffix:
 * /usr/share/doc/publicsuffix/examples/test_psl.txt) against mail/dmarc_psl.
 *
 * Usage: dmarc-psl LIST.dat test_psl.txt
 *
 * Each line checkPublicSuffix(domain, expected) gives the registrable domain (our
 * Organizational Domain), or null for none. Every case must pass. How inputs outside plain
 * lower-case A-labels are treated, case by case:
 * - null input: dmarc_psl_org_domain(NULL) is -EINVAL, i.e. no registrable domain: null.
 * - Mixed case ('WwW.example.COM'): ASCII is lower-cased before matching, as DNS names are
 *   case-insensitive (RFC 4343); the answer is in lower case, as the tests expect.
 * - Leading dot ('.example.com'): not a domain name (an empty label); -EINVAL, i.e. null,
 *   which is what the tests expect. DMARC never sees such a From domain as valid either.
 * - Unicode ('食狮.公司.cn'): matched as given, byte for byte, against the list's rules, which
 *   the list writes in Unicode. No case folding beyond ASCII (these scripts have none).
 * - Punycode ('xn--85x722f.xn--55qx5d.cn'): matched against the A-label form we compute for
 *   each Unicode rule at load time (RFC 3492), so mail's A-label domains find them.
 * The commented-out cases of the file (.local) are comments and are not run.
 */
#include "mail/dmarc_psl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 1024

/* The next argument at *p: 'quoted' (into buf) or null (*is_null). */
static bool
arg(const char **p, char *buf, size_t size, bool *is_null)
{
	const char *s = *p;
	while (*s == ' ' || *s == ',' || *s == '(')
		s++;
	*is_null = strncmp(s, "null", 4) == 0;
	if (*is_null) {
		*p = s + 4;
		return true;
	}
	if (*s != '\'')
		return false;
	const char *end = strchr(s + 1, '\'');
	if (!end || (size_t)(end - s - 1) >= size)
		return false;
	memcpy(buf, s + 1, (size_t)(end - s - 1));
	buf[end - s - 1] = '\0';
	*p = end + 1;
	return true;
}

static int
run_case(const struct dmarc_psl *psl, const char *line, unsigned *pass, unsigned *failed)
{
	char in[LINE_MAX_LEN], want[LINE_MAX_LEN], got[256];
	bool in_null, want_null;
	const char *p = line + strlen("checkPublicSuffix");
	if (!arg(&p, in, sizeof(in), &in_null) || !arg(&p, want, sizeof(want), &want_null)) {
		fprintf(stderr, "cannot parse: %s", line);
		return -EINVAL;
	}
	int e = dmarc_psl_org_domain(psl, in_null ? NULL : in, got, sizeof(got));
	bool got_null = e < 0;
	if (e < 0 && e != -ENOENT && e != -EINVAL) {
		fprintf(stderr, "%s: error %d\n", in, e);
		return e;
	}
	if (got_null == want_null && (got_null || strcmp(got, want) == 0)) {
		(*pass)++;
		return 0;
	}
	(*failed)++;
	printf("FAIL %s: got %s, want %s\n", in_null ? "null" : in, got_null ? "null" : got,
	       want_null ? "null" : want);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: dmarc-psl LIST.dat test_psl.txt\n");
		return 2;
	}
	struct dmarc_psl *psl;
	int e = dmarc_psl_load(argv[1], 0, &psl);
	if (e < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	FILE *f = fopen(argv[2], "r");
	if (!f) {
		fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
		dmarc_psl_free(psl);
		return 1;
	}
	char line[LINE_MAX_LEN];
	unsigned pass = 0, failed = 0;
	while (e == 0 && fgets(line, sizeof(line), f))
		if (strncmp(line, "checkPublicSuffix(", 18) == 0)
			e = run_case(psl, line, &pass, &failed);
	fclose(f);
	printf("rules loaded: %zu\n", dmarc_psl_size(psl));
	dmarc_psl_free(psl);
	printf("%u passed, %u failed\n", pass, failed);
	/* an empty run proves nothing */
	return e == 0 && failed == 0 && pass >= 70 ? 0 : 1;
}
