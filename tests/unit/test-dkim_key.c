/*
 * Unit tests for src/mail/dkim_key: key records (every tag, bad data, RSA as SPKI and bare
 * PKCS#1, Ed25519), granularity, lookups through an in-memory zone (errors, several
 * records, the cache), private keys (generate, PEM, record, sign and verify).
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dkim_b64.h"
#include "mail/dkim_key.h"
#include "mail/dkim_result.h"

#include <errno.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

/* dkimpy's test key (the RFC 8463 example's RSA key), 1024 bits */
#define RSA_SPKI                                                                                   \
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi" \
	"Y/"                                                                                       \
	"J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/"                                                 \
	"8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYL"                                        \
	"zBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define ED_KEY "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static int
parse(const char *txt, struct dkim_key *k, char *why)
{
	return dkim_key_parse(txt, strlen(txt), k, why, 160);
}

static void
assert_ok(const char *txt, enum dkim_key_type type, unsigned bits)
{
	struct dkim_key k;
	char why[160] = "";
	int r = parse(txt, &k, why);
	if (r != DKIM_RESULT_PASS)
		fail_msg("%s: %s", txt, why);
	assert_int_equal(k.type, type);
	assert_int_equal(k.bits, bits);
	dkim_key_clear(&k);
}

static void
assert_bad(const char *txt, const char *reason)
{
	struct dkim_key k;
	char why[160] = "";
	assert_int_equal(parse(txt, &k, why), DKIM_RESULT_PERMERROR);
	assert_null(k.pkey);
	if (!strstr(why, reason))
		fail_msg("%s: reason '%s' lacks '%s'", txt, why, reason);
}

static void
test_parse_good(void **state)
{
	struct dkim_key k;
	char why[160];
	assert_ok("v=DKIM1; k=rsa; p=" RSA_SPKI, DKIM_KEY_RSA, 1024);
	assert_ok("p=" RSA_SPKI, DKIM_KEY_RSA, 1024);
	assert_ok("v=DKIM1; k=ed25519; p=" ED_KEY, DKIM_KEY_ED25519, 256);
	assert_ok("v=DKIM1; n=notes; x1 = extra ; s=email:*; p=" RSA_SPKI " ;", DKIM_KEY_RSA, 1024);
	/* some publish a bare RSAPublicKey (dkimpy's eximtest) */
	assert_ok("v=DKIM1; p=MIGJAoGBALVI635dLK4cJJAH3Lx6upo3X/Lm1tQz3mezcWTA3BUBnyIsdnRf57aD5BtN"
	          "mhPrYYDlWlzw3UgnKisIxktkk5+iMQMlFtAS10JB8L3YadXNJY+JBcbeSi5TgJe4WFzNgW95FWDAuS"
	          "TRXSWZfA/8xjflbTLDx0euFZOM7C4T0GwLAgMBAAE=",
	          DKIM_KEY_RSA, 1024);
	assert_int_equal(parse("v=DKIM1; t=y:s:x; h=sha256:foo; p=" RSA_SPKI, &k, why),
	                 DKIM_RESULT_PASS);
	assert_true(k.testing && k.strict);
	assert_true(dkim_key_allows(&k, DKIM_HASH_SHA256));
	assert_false(dkim_key_allows(&k, DKIM_HASH_SHA1));
	dkim_key_clear(&k);
}

static void
test_parse_bad(void **state)
{
	assert_bad("v=DKIM1; k=rsa; p=", "revoked");
	assert_bad("v=DKIM3; p=" RSA_SPKI, "version");
	assert_bad("k=rsa; v=DKIM1; p=" RSA_SPKI, "first tag");
	assert_bad("k=foobar; p=" RSA_SPKI, "key type");
	assert_bad("s=chat; p=" RSA_SPKI, "not for email");
	assert_bad("k=rsa; t; p=" RSA_SPKI, "syntax");
	assert_bad("v=DKIM1; k=rsa", "no p=");
	assert_bad("p=" RSA_SPKI "!", "base64");
	assert_bad("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTz", "not a valid RSA key");
	assert_bad("k=ed25519; p=MCowBQYDK2VwAyEA3SUqa9UbfciWkk7tlcJ9P1VD5pXAasg0JUn/OgjVbKE=",
	           "not 32");
	/* an Ed25519 key where RSA is said */
	assert_bad("k=rsa; p=" ED_KEY, "not a valid RSA key");
	assert_bad("", "no p=");
	assert_bad("garbage\x01", "syntax");
}

static void
test_granularity(void **state)
{
	struct dkim_key k = {.has_g = true};
	snprintf(k.g, sizeof(k.g), "jl*g");
	assert_true(dkim_key_granularity(&k, "jlong", false));
	assert_true(dkim_key_granularity(&k, "jlg", false));
	assert_false(dkim_key_granularity(&k, "jl", false));
	assert_false(dkim_key_granularity(&k, "JLong", false));
	snprintf(k.g, sizeof(k.g), "bob");
	assert_true(dkim_key_granularity(&k, "bob", false));
	assert_false(dkim_key_granularity(&k, "", false));
	k.g[0] = '\0';
	assert_false(dkim_key_granularity(&k, "", false));
	assert_true(dkim_key_granularity(&k, "anyone", true));
	k.has_g = false;
	assert_true(dkim_key_granularity(&k, "anyone", false));
}

static struct dns_resolver *
zone(void)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	const char *good = "v=DKIM1; p=" RSA_SPKI;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add_txt(z, "s._domainkey.example.com", good, strlen(good)), 0);
	assert_int_equal(dns_zone_add_txt(z, "two._domainkey.example.com", "junk", 4), 0);
	assert_int_equal(dns_zone_add_txt(z, "two._domainkey.example.com", good, strlen(good)), 0);
	assert_int_equal(dns_zone_add_txt(z, "bad._domainkey.example.com", "p=AAAA", 6), 0);
	assert_int_equal(dns_zone_add_txt(z, "nul._domainkey.example.com", "p=\0AAA", 6), 0);
	assert_int_equal(dns_zone_add_failure(z, "slow._domainkey.example.com", DNS_TIMEOUT), 0);
	assert_int_equal(dns_zone_add_failure(z, "fail._domainkey.example.com", DNS_SERVFAIL), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	return r;
}

static void
assert_fetch(struct dns_resolver *r, struct dkim_key_cache *c, const char *sel, int want,
             const char *reason)
{
	struct dkim_key k;
	char why[160] = "";
	assert_int_equal(dkim_key_fetch(r, c, sel, "example.com", &k, why, sizeof(why)), want);
	if (want == DKIM_RESULT_PASS)
		assert_non_null(k.pkey);
	else if (!strstr(why, reason))
		fail_msg("%s: reason '%s' lacks '%s'", sel, why, reason);
	dkim_key_clear(&k);
}

static void
test_fetch(void **state)
{
	struct dns_resolver *r = zone();
	struct dkim_key_cache *c;
	assert_int_equal(dkim_key_cache_new(&c), 0);
	for (int i = 0; i < 2; i++) {
		assert_fetch(r, c, "s", DKIM_RESULT_PASS, NULL);
		assert_fetch(r, c, "two", DKIM_RESULT_PASS, NULL);
		assert_fetch(r, c, "none", DKIM_RESULT_PERMERROR, "NXDOMAIN");
		assert_fetch(r, c, "bad", DKIM_RESULT_PERMERROR, "not a valid RSA key");
		assert_fetch(r, c, "nul", DKIM_RESULT_PERMERROR, "syntax");
		assert_fetch(r, c, "slow", DKIM_RESULT_TEMPERROR, "TIMEOUT");
		assert_fetch(r, c, "fail", DKIM_RESULT_TEMPERROR, "SERVFAIL");
		assert_fetch(r, c, "a.b", DKIM_RESULT_PERMERROR, "NXDOMAIN");
	}
	/* the cache hands out the same parsed key */
	struct dkim_key a, b;
	char why[160];
	assert_int_equal(dkim_key_fetch(r, c, "s", "example.com", &a, why, sizeof(why)), 0 + 1);
	assert_int_equal(dkim_key_fetch(r, c, "s", "example.com", &b, why, sizeof(why)), 1);
	assert_ptr_equal(a.pkey, b.pkey);
	dkim_key_clear(&a);
	dkim_key_clear(&b);
	dkim_key_cache_free(c);
	dns_resolver_free(r);
}

/* Generated keys: PEM back and forth, the record parses, signatures verify. */
static void
roundtrip(enum dkim_key_type type, unsigned bits)
{
	struct dkim_key_private k, loaded;
	struct dkim_key pub;
	_cleanup_buf_ struct buf pem = BUF_INIT(16384), rec = BUF_INIT(4096);
	unsigned char digest[32] = {1, 2, 3}, sig[1024];
	size_t slen = sizeof(sig);
	char why[160];
	assert_int_equal(dkim_key_private_generate(type, bits, &k), 0);
	assert_int_equal(dkim_key_private_pem(&k, &pem), 0);
	assert_int_equal(dkim_key_private_load(pem.data, pem.len, &loaded), 0);
	assert_int_equal(loaded.type, type);
	assert_int_equal(dkim_key_private_record(&loaded, &rec), 0);
	assert_int_equal(dkim_key_parse(rec.data, rec.len, &pub, why, sizeof(why)),
	                 DKIM_RESULT_PASS);
	assert_int_equal(dkim_key_private_sign(&loaded, DKIM_HASH_SHA256, digest, 32, sig, &slen),
	                 0);
	assert_int_equal(dkim_key_verify(&pub, DKIM_HASH_SHA256, digest, 32, sig, slen), 1);
	digest[0] ^= 1;
	assert_int_equal(dkim_key_verify(&pub, DKIM_HASH_SHA256, digest, 32, sig, slen), 0);
	assert_int_equal(dkim_key_verify(&pub, DKIM_HASH_SHA256, digest, 32, sig, 3), 0);
	dkim_key_clear(&pub);
	dkim_key_private_clear(&k);
	dkim_key_private_clear(&loaded);
}

static void
test_private(void **state)
{
	struct dkim_key_private k;
	roundtrip(DKIM_KEY_RSA, 1024);
	roundtrip(DKIM_KEY_ED25519, 0);
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_RSA, 512, &k), -EINVAL);
	assert_int_equal(dkim_key_private_load("junk", 4, &k), -EINVAL);
	/* a valid key of another type */
	struct dkim_key_private ec = {.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")};
	_cleanup_buf_ struct buf pem = BUF_INIT(4096);
	assert_non_null(ec.pkey);
	assert_int_equal(dkim_key_private_pem(&ec, &pem), 0);
	assert_int_equal(dkim_key_private_load(pem.data, pem.len, &k), -EOPNOTSUPP);
	dkim_key_private_clear(&ec);
}

/* Record options (t=, s=, n= in dkim-quoted-printable), key comparison, revoked records. */
static void
test_record_opts(void **state)
{
	struct dkim_key_private k, other;
	struct dkim_key pub;
	_cleanup_buf_ struct buf rec = BUF_INIT(4096), bad = BUF_INIT(4096);
	char why[160], note[DKIM_KEY_NOTE_MAX + 2];
	const struct dkim_key_record_opts o = {
	    .testing = true, .email_only = true, .note = "a; b=\"c\"\\ \xc3\xa9"};
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_ED25519, 0, &k), 0);
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_ED25519, 0, &other), 0);
	assert_int_equal(dkim_key_private_record_opts(&k, &o, &rec), 0);
	assert_true(
	    strncmp(rec.data,
	            "v=DKIM1; k=ed25519; t=y; s=email; n=a=3B=20b=3D=22c=22=5C=20=C3=A9; p=", 70) ==
	    0);
	assert_int_equal(dkim_key_parse(rec.data, rec.len, &pub, why, sizeof(why)),
	                 DKIM_RESULT_PASS);
	assert_true(pub.testing);
	assert_true(dkim_key_matches(&pub, &k));
	assert_false(dkim_key_matches(&pub, &other));
	dkim_key_clear(&pub);
	memset(note, 'x', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	const struct dkim_key_record_opts big = {.note = note};
	assert_int_equal(dkim_key_private_record_opts(&k, &big, &bad), -EINVAL);
	assert_true(dkim_key_record_revoked("v=DKIM1; p=", 11));
	assert_true(dkim_key_record_revoked("v=DKIM1; p= ; t=y", 17));
	assert_false(dkim_key_record_revoked(rec.data, rec.len));
	assert_false(dkim_key_record_revoked("v=DKIM1", 7));
	assert_false(dkim_key_record_revoked("garbage;;=", 10));
	dkim_key_private_clear(&k);
	dkim_key_private_clear(&other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),  cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_granularity), cmocka_unit_test(test_fetch),
	    cmocka_unit_test(test_private),     cmocka_unit_test(test_record_opts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
