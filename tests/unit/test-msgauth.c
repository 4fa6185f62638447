/*
 * Unit tests for src/mail/msgauth (one message through the milter, without libmilter),
 * milter_keys and authres: a message signed for an internal client with RSA and Ed25519 is
 * then verified as inbound mail over an in-memory zone holding the published keys and SPF and
 * DMARC records; forged Authentication-Results; the actions (reject, tempfail, DMARC policy);
 * OpenDKIM tables.
 */
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/authres.h"
#include "mail/dkim_key.h"
#include "mail/dmarc_psl.h"
#include "mail/milter.h"
#include "mail/milter_config.h"
#include "mail/milter_keys.h"
#include "mail/msgauth.h"

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

static char tmpdir[] = "/tmp/test-msgauth-XXXXXX";
static char rsa_path[128], ed_path[128];
static struct buf rsa_rec, ed_rec;
static struct dmarc_psl *psl;

static void
write_key(enum dkim_key_type type, const char *path, struct buf *rec)
{
	struct dkim_key_private k;
	struct buf pem = BUF_INIT(1 << 16);
	assert_int_equal(dkim_key_private_generate(type, 2048, &k), 0);
	assert_int_equal(dkim_key_private_pem(&k, &pem), 0);
	assert_int_equal(dkim_key_private_record(&k, rec), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(pem.data, 1, pem.len, f), pem.len);
	fclose(f);
	buf_free(&pem);
	dkim_key_private_clear(&k);
}

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(rsa_path, sizeof(rsa_path), "%s/s1.private", tmpdir);
	snprintf(ed_path, sizeof(ed_path), "%s/ed.private", tmpdir);
	buf_init(&rsa_rec, 1 << 16);
	buf_init(&ed_rec, 1 << 16);
	write_key(DKIM_KEY_RSA, rsa_path, &rsa_rec);
	write_key(DKIM_KEY_ED25519, ed_path, &ed_rec);
	return dmarc_psl_load(NULL, 0, &psl);
}

static int
teardown(void **state)
{
	(void)state;
	unlink(rsa_path);
	unlink(ed_path);
	rmdir(tmpdir);
	buf_free(&rsa_rec);
	buf_free(&ed_rec);
	dmarc_psl_free(psl);
	return 0;
}

/* The zone every test starts from; extra records (owner, TXT) and failing owners added. */
static struct dns_resolver *
zone(const char *const *txt, const char *const *failing)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(
	    dns_zone_add_txt(z, "s1._domainkey.example.com", rsa_rec.data, rsa_rec.len), 0);
	assert_int_equal(dns_zone_add_txt(z, "ed._domainkey.example.com", ed_rec.data, ed_rec.len),
	                 0);
	for (; txt && *txt; txt += 2)
		assert_int_equal(dns_zone_add_txt(z, txt[0], txt[1], strlen(txt[1])), 0);
	for (; failing && *failing; failing++)
		assert_int_equal(dns_zone_add_failure(z, *failing, DNS_TIMEOUT), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	return r;
}

struct env {
	struct milter_cfg cfg;
	struct milter_keys *keys;
	struct dkim_key_cache *cache;
	struct dns_resolver *dns;
	struct msgauth_env e;
};

static void
env_init(struct env *v, const char *extra, struct dns_resolver *dns)
{
	char yaml[2048];
	struct cfg_errors errs = {0};
	char why[256] = "";
	snprintf(yaml, sizeof(yaml),
	         "milter: { listen: 'inet:1@127.0.0.1' }\n"
	         "authserv-id: mx.test\n"
	         "sign:\n"
	         "  - { domain: example.com, selector: s1, key: '%s' }\n"
	         "  - { domain: example.com, selector: ed, key: '%s' }\n%s",
	         rsa_path, ed_path, extra ? extra : "");
	int r = cfg_load_string("test", yaml, strlen(yaml), &milter_config_schema, &v->cfg, &errs);
	if (r < 0)
		fail_msg("config: %s", errs.n ? errs.v[0].msg : "?");
	if (milter_keys_load(&v->cfg, &v->keys, why, sizeof(why)) < 0)
		fail_msg("keys: %s", why);
	assert_int_equal(dkim_key_cache_new(&v->cache), 0);
	v->dns = dns;
	v->e = (struct msgauth_env){.cfg = &v->cfg,
	                            .dns = dns,
	                            .psl = psl,
	                            .keys = v->keys,
	                            .key_cache = v->cache,
	                            .authserv_id = "mx.test"};
}

static void
env_free(struct env *v)
{
	milter_keys_free(v->keys);
	dkim_key_cache_free(v->cache);
	dns_resolver_free(v->dns);
	cfg_free(&milter_config_schema, &v->cfg);
}

/* A header field as "Name: value", split the way a milter gets it. */
struct field {
	const char *name, *value;
};

static void
run(const struct env *v, const char *ip, const char *mail_from, bool auth, const struct field *f,
    size_t nf, const char *body, struct msgauth_outcome *o)
{
	struct msgauth *m;
	struct msgauth_envelope e = {
	    .helo = "mail.example.com", .mail_from = mail_from, .authenticated = auth};
	if (ip)
		assert_int_equal(net_addr_parse(ip, NET_PORT_NONE, &e.client), 0);
	assert_int_equal(msgauth_begin(&v->e, &e, &m), 0);
	for (size_t i = 0; i < nf; i++)
		assert_int_equal(msgauth_header(m, f[i].name, f[i].value), 0);
	assert_int_equal(msgauth_eoh(m), 0);
	assert_int_equal(msgauth_body(m, body, strlen(body)), 0);
	assert_int_equal(msgauth_eom(m, o), 0);
	msgauth_free(m);
}

static const char *
field_value(const struct msgauth_outcome *o, const char *name, size_t nth, char *buf, size_t size)
{
	for (size_t i = 0; i < o->nfields; i++) {
		if (strcmp(o->fields[i].name, name) || nth-- > 0)
			continue;
		snprintf(buf, size, "%.*s", (int)o->fields[i].value_len,
		         o->text.data + o->fields[i].value_off);
		return buf;
	}
	return NULL;
}

static const struct field base[] = {
    {"From", " Alice <alice@example.com>"},
    {"To", " bob@example.net"},
    {"Subject", " test\n\tfolded"},
    {"Message-ID", " <1@example.com>"},
};
static const char body[] = "hello\r\n8-bit: \xc3\xa9t\xc3\xa9\r\n";

static const char *const records[] = {"example.com", "v=spf1 ip4:192.0.2.1 -all",
                                      "_dmarc.example.com", "v=DMARC1; p=reject", NULL};

/* Signs for an internal client, then verifies the signed message as inbound mail. */
static void
sign_then_verify(const char *extra_verify, const char *ip, const char *extra_fields_name,
                 const char *extra_fields_value, struct msgauth_outcome *vo)
{
	struct env s, v;
	struct msgauth_outcome so;
	struct field f[8];
	char sig[2][8192];
	env_init(&s, NULL, zone(records, NULL));
	run(&s, "127.0.0.1", "alice@example.com", false, base, 4, body, &so);
	assert_true(so.signed_);
	assert_int_equal(so.nsig, 2);
	assert_int_equal(so.verdict, MSGAUTH_ACCEPT);
	assert_non_null(field_value(&so, "DKIM-Signature", 0, sig[0], sizeof(sig[0])));
	assert_non_null(field_value(&so, "DKIM-Signature", 1, sig[1], sizeof(sig[1])));
	assert_null(field_value(&so, "Authentication-Results", 0, sig[0], 1));
	size_t n = 0;
	f[n++] = (struct field){"DKIM-Signature", sig[0]};
	f[n++] = (struct field){"DKIM-Signature", sig[1]};
	if (extra_fields_name)
		f[n++] = (struct field){extra_fields_name, extra_fields_value};
	for (size_t i = 0; i < 4; i++)
		f[n++] = base[i];
	env_init(&v, extra_verify, zone(records, NULL));
	run(&v, ip, "alice@example.com", false, f, n, body, vo);
	msgauth_outcome_free(&so);
	env_free(&s);
	env_free(&v);
}

static void
test_sign_then_verify(void **state)
{
	(void)state;
	struct msgauth_outcome o;
	char ar[8192], spf[4096];
	sign_then_verify(NULL, "192.0.2.1", NULL, NULL, &o);
	assert_false(o.signed_);
	assert_int_equal(o.verdict, MSGAUTH_ACCEPT);
	assert_non_null(field_value(&o, "Authentication-Results", 0, ar, sizeof(ar)));
	assert_non_null(strstr(ar, " mx.test;"));
	assert_non_null(strstr(ar, "spf=pass smtp.mailfrom=alice@example.com"));
	assert_non_null(strstr(ar, "dkim=pass header.d=example.com header.s=s1"));
	assert_non_null(strstr(ar, "dkim=pass header.d=example.com header.s=ed"));
	assert_non_null(strstr(ar, "dmarc=pass"));
	assert_non_null(field_value(&o, "Received-SPF", 0, spf, sizeof(spf)));
	assert_true(!strncmp(spf, " Pass", 5));
	assert_string_equal(o.dmarc, "pass");
	msgauth_outcome_free(&o);
}

/* A forged field claiming our authserv-id goes; another verifier's stays. */
static void
test_forged_authres_removed(void **state)
{
	(void)state;
	struct env v;
	struct msgauth_outcome o;
	const struct field f[] = {
	    {"Authentication-Results", " other.example; dkim=pass"},
	    {"From", " alice@example.com"},
	    {"Authentication-Results", " MX.test; dkim=pass header.d=example.com"},
	    {"Authentication-Results", " (comment) \"mx.test\"; spf=pass"},
	};
	env_init(&v, NULL, zone(records, NULL));
	run(&v, "192.0.2.1", "alice@example.com", false, f, 4, body, &o);
	assert_int_equal(o.nremove, 2);
	assert_int_equal(o.remove[0], 3); /* highest first */
	assert_int_equal(o.remove[1], 2);
	assert_string_equal(o.dkim, "none");
	msgauth_outcome_free(&o);
	env_free(&v);
}

/* A tampered body fails DKIM; SPF from the wrong address fails; DMARC p=reject applies. */
static void
test_dmarc_policy_reject(void **state)
{
	(void)state;
	struct env v;
	struct msgauth_outcome o;
	env_init(&v, "actions: { dmarc-policy: true }\n", zone(records, NULL));
	run(&v, "198.51.100.9", "alice@example.com", false, base, 4, body, &o);
	assert_string_equal(o.spf, "fail");
	assert_string_equal(o.dmarc, "fail");
	assert_int_equal(o.verdict, MSGAUTH_REJECT);
	assert_string_equal(o.rcode, "550");
	assert_non_null(strstr(o.reply, "example.com"));
	msgauth_outcome_free(&o);
	env_free(&v);
}

static void
test_spf_reject_and_header_default(void **state)
{
	(void)state;
	struct env v, h;
	struct msgauth_outcome o;
	env_init(&v, "actions: { spf: reject }\n", zone(records, NULL));
	run(&v, "198.51.100.9", "alice@example.com", false, base, 4, body, &o);
	assert_int_equal(o.verdict, MSGAUTH_REJECT);
	assert_string_equal(o.xcode, "5.7.23");
	msgauth_outcome_free(&o);
	env_free(&v);
	env_init(&h, NULL, zone(records, NULL));
	run(&h, "198.51.100.9", "alice@example.com", false, base, 4, body, &o);
	assert_int_equal(o.verdict, MSGAUTH_ACCEPT);
	assert_string_equal(o.spf, "fail");
	msgauth_outcome_free(&o);
	env_free(&h);
}

/* A DNS failure is temperror, never pass; with temperror: tempfail the message gets 4xx. */
static void
test_dns_failure(void **state)
{
	(void)state;
	static const char *const failing[] = {"example.com", "_dmarc.example.com",
	                                      "s1._domainkey.example.com", NULL};
	static const char *const none[] = {NULL};
	struct env v, t;
	struct msgauth_outcome o;
	struct field f[6];
	char sig[8192];
	struct msgauth_outcome so;
	struct env s;
	env_init(&s, NULL, zone(none, NULL));
	run(&s, "127.0.0.1", "alice@example.com", false, base, 4, body, &so);
	assert_non_null(field_value(&so, "DKIM-Signature", 0, sig, sizeof(sig)));
	f[0] = (struct field){"DKIM-Signature", sig};
	memcpy(f + 1, base, sizeof(base));
	env_init(&v, NULL, zone(none, failing));
	run(&v, "192.0.2.1", "alice@example.com", false, f, 5, body, &o);
	assert_string_equal(o.spf, "temperror");
	assert_string_equal(o.dkim, "temperror");
	assert_string_equal(o.dmarc, "temperror");
	assert_int_equal(o.verdict, MSGAUTH_ACCEPT);
	msgauth_outcome_free(&o);
	env_init(&t, "actions: { temperror: tempfail }\n", zone(none, failing));
	run(&t, "192.0.2.1", "alice@example.com", false, f, 5, body, &o);
	assert_int_equal(o.verdict, MSGAUTH_TEMPFAIL);
	assert_true(o.rcode[0] == '4');
	msgauth_outcome_free(&o);
	msgauth_outcome_free(&so);
	env_free(&s);
	env_free(&v);
	env_free(&t);
}

/* Authenticated but not internal: signed. Neither, with keys: verified, not signed. */
static void
test_who_is_signed(void **state)
{
	(void)state;
	struct env v;
	struct msgauth_outcome o;
	const struct field other[] = {{"From", " x@other.example"}};
	env_init(&v, NULL, zone(records, NULL));
	run(&v, "203.0.113.5", "alice@example.com", true, base, 4, body, &o);
	assert_true(o.signed_);
	assert_int_equal(o.nsig, 2);
	msgauth_outcome_free(&o);
	run(&v, "203.0.113.5", "alice@example.com", false, base, 4, body, &o);
	assert_false(o.signed_);
	assert_non_null(o.spf);
	msgauth_outcome_free(&o);
	/* no client address (a local submission): signed */
	run(&v, NULL, "alice@example.com", false, base, 4, body, &o);
	assert_true(o.signed_);
	msgauth_outcome_free(&o);
	/* internal, but no key for the From domain: neither signed nor verified */
	run(&v, "127.0.0.1", "x@other.example", false, other, 1, body, &o);
	assert_false(o.signed_);
	assert_int_equal(o.nfields, 0);
	msgauth_outcome_free(&o);
	env_free(&v);
}

static void
test_opendkim_tables(void **state)
{
	(void)state;
	char kt[160], st[160], yaml[1024], why[256] = "";
	struct milter_cfg cfg;
	struct milter_keys *ks;
	struct cfg_errors errs = {0};
	const struct milter_key *k[4];
	snprintf(kt, sizeof(kt), "%s/KeyTable", tmpdir);
	snprintf(st, sizeof(st), "%s/SigningTable", tmpdir);
	FILE *f = fopen(kt, "w");
	fprintf(f, "# comment\nrsa example.com:s1:%s\ned example.com:ed:%s\n", rsa_path, ed_path);
	fclose(f);
	f = fopen(st, "w");
	fprintf(f, "*@example.com rsa\n*@example.com ed\n*@*.example.com rsa\n");
	fclose(f);
	snprintf(yaml, sizeof(yaml),
	         "milter: { listen: 'inet:1@127.0.0.1' }\n"
	         "sign-from-opendkim: { keytable: '%s', signingtable: 'refile:%s' }\n",
	         kt, st);
	assert_int_equal(
	    cfg_load_string("t", yaml, strlen(yaml), &milter_config_schema, &cfg, &errs), 0);
	assert_int_equal(milter_keys_load(&cfg, &ks, why, sizeof(why)), 0);
	assert_int_equal(milter_keys_match(ks, "Alice@Example.COM", k, 4), 2);
	assert_string_equal(k[0]->selector, "s1");
	assert_string_equal(k[1]->selector, "ed");
	assert_int_equal(milter_keys_match(ks, "a@sub.example.com", k, 4), 1);
	assert_int_equal(milter_keys_match(ks, "a@example.org", k, 4), 0);
	milter_keys_free(ks);
	/* a SigningTable line naming a key the KeyTable lacks is an error naming the file */
	f = fopen(st, "w");
	fprintf(f, "*@example.com missing\n");
	fclose(f);
	assert_int_equal(milter_keys_load(&cfg, &ks, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "missing"));
	cfg_free(&milter_config_schema, &cfg);
	unlink(kt);
	unlink(st);
}

static void
test_authres_id(void **state)
{
	(void)state;
	char id[AUTHRES_ID_MAX];
	assert_int_equal(authres_authserv_id(" mx.test; spf=pass", 18, id, sizeof(id)), 0);
	assert_string_equal(id, "mx.test");
	assert_int_equal(authres_authserv_id(" (c (nested)) mx.test 1; none", 29, id, sizeof(id)),
	                 0);
	assert_string_equal(id, "mx.test");
	assert_int_equal(authres_authserv_id(" \"mx.\\\"q\"; none", 15, id, sizeof(id)), 0);
	assert_string_equal(id, "mx.\"q");
	assert_int_equal(authres_authserv_id(" (unclosed mx.test", 18, id, sizeof(id)), -EINVAL);
	assert_int_equal(authres_authserv_id("   ", 3, id, sizeof(id)), -EINVAL);
	assert_int_equal(authres_authserv_id(" toolong", 8, id, 4), -ENOBUFS);
	assert_true(authres_claims(" MX.TEST;", 9, "mx.test"));
	assert_false(authres_claims(" mx.test.evil;", 14, "mx.test"));
	assert_false(authres_valid_id("a b"));
	assert_true(authres_valid_id("mx.example.com"));
}

static void
test_postfix_spec(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(milter_postfix_spec("inet:8891@127.0.0.1", out, sizeof(out)), 0);
	assert_string_equal(out, "inet:127.0.0.1:8891");
	assert_int_equal(milter_postfix_spec("inet6:8891@::1", out, sizeof(out)), 0);
	assert_string_equal(out, "inet:[::1]:8891");
	assert_int_equal(milter_postfix_spec("unix:/run/rampart/milter.sock", out, sizeof(out)), 0);
	assert_string_equal(out, "unix:/run/rampart/milter.sock");
	assert_int_equal(milter_postfix_spec("inet:8891@127.0.0.1", out, 8), -ENOBUFS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sign_then_verify),
	    cmocka_unit_test(test_forged_authres_removed),
	    cmocka_unit_test(test_dmarc_policy_reject),
	    cmocka_unit_test(test_spf_reject_and_header_default),
	    cmocka_unit_test(test_dns_failure),
	    cmocka_unit_test(test_who_is_signed),
	    cmocka_unit_test(test_opendkim_tables),
	    cmocka_unit_test(test_authres_id),
	    cmocka_unit_test(test_postfix_spec),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
