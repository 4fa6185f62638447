/*
 * Conformance driver over signed samples from other implementations:
 *   - RFC 8463 Appendix A (dkim-dkimpy/rfc6376.signed.msg): an Ed25519 and an RSA signature,
 *     keys from the RFC (brisbane, and test as dkimpy's test.txt publishes it): both pass;
 *   - Exim's Ed25519 signature from dkimpy's tests (ed25519test2.msg, eximtest.dns): pass;
 *   - stalwart mail-auth's samples (dkim-arc-mail-auth/dkim/NNN.txt: key lines, a blank line,
 *     the message), verified at the time upstream uses: every signature passes. That time is
 *     before 004's t= (upstream does not check t=), so the allowed clock skew is a day here.
 * Each message is also checked once more with one body byte changed: no signature passes.
 * Prints one line per mismatch and a summary; exits 1 on any.
 */
#include "core/cleanup.h"
#include "dkim-common.h"

#include <stdio.h>
#include <string.h>

#define STALWART_NOW 1667843664
#define STALWART_SKEW 86400
#define RFC8463_BRISBANE "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

struct tally {
	unsigned messages, signatures, fail;
};

/* Every signature passes; then, with the body altered, none does. */
static void
check(const char *name, const char *msg, size_t len, struct dns_resolver *r, int64_t now,
      size_t want, struct tally *t)
{
	struct dkc_profile p = {.dkim = {.now = now, .clock_skew = now ? STALWART_SKEW : 0}};
	struct dkc_results res;
	t->messages++;
	if (dkc_verify(msg, len, r, &p, &res) < 0 || res.n != want) {
		printf("FAIL %s: %zu signatures read, expected %zu\n", name, res.n, want);
		t->fail++;
		return;
	}
	for (size_t i = 0; i < res.n; i++) {
		t->signatures++;
		if (res.r[i].result != DKIM_RESULT_PASS) {
			printf("FAIL %s: signature %zu does not pass\n", name, i + 1);
			dkc_print(&res);
			t->fail++;
		}
	}
	_cleanup_free_ char *bad = strndup(msg, len);
	char *body = bad ? strstr(bad, "\n\n") : NULL;
	body = body ? body : (bad ? strstr(bad, "\r\n\r\n") : NULL);
	if (!body || body[4] == '\0')
		return;
	body[4] ^= 0x01;
	if (dkc_verify(bad, len, r, &p, &res) < 0 || dkc_best(&res) == DKIM_RESULT_PASS) {
		printf("FAIL %s: still passes with the body altered\n", name);
		t->fail++;
	}
}

static struct dns_resolver *
resolver_of(const char *text, size_t len)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	if (dns_zone_new(&z) < 0)
		return NULL;
	if (dkc_zone_add_lines(z, text, len) < 0 || dns_resolver_from_zone(z, &r) < 0) {
		dns_zone_free(z);
		return NULL;
	}
	return r;
}

static int
load(const char *dir, const char *file, char **out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	long n = dkc_read_file(path, out);
	if (n < 0)
		printf("FAIL %s: cannot read\n", path);
	return (int)n;
}

static void
rfc8463(const char *dir, struct tally *t)
{
	_cleanup_free_ char *msg = NULL, *test = NULL, *zone = NULL;
	int len = load(dir, "dkim-dkimpy/rfc6376.signed.msg", &msg);
	int tl = load(dir, "dkim-dkimpy/test.txt", &test);
	if (len < 0 || tl < 0 ||
	    asprintf(&zone,
	             "brisbane._domainkey.football.example.com %s\n"
	             "test._domainkey.football.example.com %.*s\n",
	             RFC8463_BRISBANE, tl, test) < 0) {
		t->fail++;
		return;
	}
	struct dns_resolver *r = resolver_of(zone, strlen(zone));
	if (r)
		check("RFC 8463 Appendix A", msg, (size_t)len, r, 0, 2, t);
	dns_resolver_free(r);
}

static void
exim(const char *dir, struct tally *t)
{
	_cleanup_free_ char *msg = NULL, *key = NULL, *zone = NULL;
	int len = load(dir, "dkim-dkimpy/ed25519test2.msg", &msg);
	int kl = load(dir, "dkim-dkimpy/eximtest.dns", &key);
	if (len < 0 || kl < 0 || asprintf(&zone, "sed._domainkey.test.ex %.*s\n", kl, key) < 0) {
		t->fail++;
		return;
	}
	struct dns_resolver *r = resolver_of(zone, strlen(zone));
	if (r)
		check("dkimpy ed25519test2.msg (Exim)", msg, (size_t)len, r, 0, 1, t);
	dns_resolver_free(r);
}

/* Key lines up to the first blank line, then the message. */
static void
stalwart_one(const char *dir, const char *file, struct tally *t)
{
	_cleanup_free_ char *text = NULL;
	int len = load(dir, file, &text);
	char *sep = len > 0 ? strstr(text, "\n\n") : NULL;
	if (!sep) {
		t->fail++;
		return;
	}
	struct dns_resolver *r = resolver_of(text, (size_t)(sep - text));
	const char *msg = sep + 2;
	size_t n = strncmp(msg, "DKIM-Signature:", 15) == 0;
	for (const char *p = msg; (p = strstr(p, "\nDKIM-Signature:")); p++)
		n++;
	if (r)
		check(file, msg, (size_t)len - (size_t)(msg - text), r, STALWART_NOW, n, t);
	dns_resolver_free(r);
}

int
main(int argc, char **argv)
{
	const char *dir = dkc_testdata(argc, argv);
	struct tally t = {0};
	rfc8463(dir, &t);
	exim(dir, &t);
	for (int i = 1; i <= 6; i++) {
		char file[64];
		snprintf(file, sizeof(file), "dkim-arc-mail-auth/dkim/%03d.txt", i);
		stalwart_one(dir, file, &t);
	}
	printf("dkim-samples: %u messages, %u signatures, %u failures\n", t.messages, t.signatures,
	       t.fail);
	return t.fail ? 1 : 0;
}
