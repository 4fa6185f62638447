/*
 * Unit tests for src/mail/mail_check*: the audit of a domain over in-memory zones (core/dns):
 * a zone shaped like `rampart mail setup`'s output passes every check; each broken variant
 * gives its own named row; DNS failures stop the run with -EAGAIN and never become a row.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dkim_key.h"
#include "mail/mail_check.h"

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

#define HEAD                                                                                       \
	"$ORIGIN example.com.\n$TTL 300\n"                                                         \
	"@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 127.0.0.1\n"
#define SPF_OK "@ TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"
#define DK_OK "_domainkey TXT \"o=~\"\n"
#define DMARC_OK "_dmarc TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com\"\n"
#define MX_OK "@ MX 10 mail\nmail A 192.0.2.10\n"
#define REV "$ORIGIN 2.0.192.in-addr.arpa.\n10 PTR mail.example.com.\n"
/* every record but the DKIM key, which each test adds */
#define ALL_OK HEAD SPF_OK DK_OK DMARC_OK MX_OK REV

/* the local key (RSA 2048) and another one */
static struct dkim_key_private local_key, other_key;
static char local_record[1024], other_record[1024];

static void
record_of(const struct dkim_key_private *k, char *out, size_t len)
{
	_cleanup_buf_ struct buf b = BUF_INIT(len - 1);
	assert_int_equal(dkim_key_private_record(k, &b), 0);
	snprintf(out, len, "%s", buf_cstr(&b));
}

static int
setup(void **state)
{
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_RSA, 2048, &local_key), 0);
	assert_int_equal(dkim_key_private_generate(DKIM_KEY_RSA, 2048, &other_key), 0);
	record_of(&local_key, local_record, sizeof(local_record));
	record_of(&other_key, other_record, sizeof(other_record));
	return 0;
}

static int
teardown(void **state)
{
	dkim_key_private_clear(&local_key);
	dkim_key_private_clear(&other_key);
	return 0;
}

/* A resolver for text, with the key record dkim at rampart._domainkey (NULL: none). */
static struct dns_resolver *
zone_with(const char *text, const char *dkim)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	char *err = NULL;
	assert_int_equal(dns_zone_new(&z), 0);
	if (dns_zone_load_string(z, "test", text, strlen(text), &err) != 0)
		fail_msg("zone: %s", err ? err : "?");
	if (dkim)
		assert_int_equal(
		    dns_zone_add_txt(z, "rampart._domainkey.example.com", dkim, strlen(dkim)), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	return r;
}

struct run {
	struct mail_check_report rep;
	int ret;
};

/* Runs every check of example.com with selector rampart, --ip 192.0.2.10 and the local key. */
static struct run
check_zone(const char *text, const char *dkim)
{
	static const char *const sel[] = {"rampart"};
	struct mail_check_input in = {.domain = "example.com",
	                              .selectors = sel,
	                              .n_selectors = 1,
	                              .have_ip = true,
	                              .keys = &local_key,
	                              .n_keys = 1};
	struct run run = {0};
	struct dns_resolver *r = zone_with(text, dkim);
	assert_int_equal(net_addr_parse("192.0.2.10", NET_PORT_NONE, &in.ip), 0);
	run.ret = mail_check_run(r, &in, &run.rep);
	dns_resolver_free(r);
	return run;
}

static void
dump(const struct mail_check_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		print_message("  %s %s: %s\n", rep->rows[i].name,
		              mail_check_status_name(rep->rows[i].status), rep->rows[i].reason);
}

/* Row name has status want (and, when given, a reason containing text). */
static void
expect_row(const struct mail_check_report *rep, const char *name, enum mail_check_status want,
           const char *text)
{
	const struct mail_check_row *row = mail_check_find(rep, name);
	if (!row) {
		dump(rep);
		fail_msg("no row %s", name);
	}
	if (row->status != want || (text && !strstr(row->reason, text))) {
		dump(rep);
		fail_msg("%s: %s (%s), want %s%s%s", name, mail_check_status_name(row->status),
		         row->reason, mail_check_status_name(want), text ? " with " : "",
		         text ? text : "");
	}
}

/* The zone gives ret 0 and row name with status want; every other row is ok. */
static void
expect_only(const char *text, const char *dkim, const char *name, enum mail_check_status want,
            const char *reason)
{
	struct run run = check_zone(text, dkim);
	assert_int_equal(run.ret, 0);
	expect_row(&run.rep, name, want, reason);
	for (size_t i = 0; i < run.rep.n; i++)
		if (strcmp(run.rep.rows[i].name, name) != 0 &&
		    run.rep.rows[i].status != MAIL_CHECK_OK) {
			dump(&run.rep);
			fail_msg("%s is not ok besides %s", run.rep.rows[i].name, name);
		}
	mail_check_report_free(&run.rep);
}

static void
test_all_ok(void **state)
{
	static const char *const names[] = {
	    "spf.present",
	    "spf.single",
	    "spf.syntax",
	    "spf.length",
	    "spf.lookups",
	    "spf.void-lookups",
	    "spf.include",
	    "spf.all",
	    "spf.ip",
	    "senderid.syntax",
	    "dkim.rampart.present",
	    "dkim.rampart.syntax",
	    "dkim.rampart.revoked",
	    "dkim.rampart.type",
	    "dkim.rampart.testing",
	    "dkim.rampart.local-key",
	    "domainkeys.policy",
	    "dmarc.present",
	    "dmarc.syntax",
	    "dmarc.policy",
	    "dmarc.rua",
	    "mx.present",
	    "mx.resolve",
	    "fcrdns",
	};
	struct run run = check_zone(ALL_OK, local_record);
	assert_int_equal(run.ret, 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_row(&run.rep, names[i], MAIL_CHECK_OK, NULL);
	assert_int_equal(run.rep.n, sizeof(names) / sizeof(names[0]));
	assert_int_equal(mail_check_worst(&run.rep), MAIL_CHECK_OK);
	assert_false(run.rep.no_domain);
	/* p=none with rua= is ok but says it only monitors */
	expect_row(&run.rep, "dmarc.policy", MAIL_CHECK_OK, "monitoring only");
	mail_check_report_free(&run.rep);
}

static void
test_two_spf(void **state)
{
	expect_only(ALL_OK "$ORIGIN example.com.\n@ TXT \"v=spf1 ip4:192.0.2.11 -all\"\n",
	            local_record, "spf.single", MAIL_CHECK_FAIL, "2 v=spf1 records");
}

/* 2 includes + 4 a + 5 mx (the limit of 10 is on the whole tree, RFC 7208 §4.6.4) */
#define LOOKUP_TREE(MORE)                                                                          \
	HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 include:_s1.example.com include:_s2.example.com "      \
	     "-all\"\n"                                                                            \
	     "_s1 TXT \"v=spf1 a:h.example.com a:h.example.com a:h.example.com a:h.example.com "   \
	     "-all\"\n"                                                                            \
	     "_s2 TXT \"v=spf1 mx:example.com mx:example.com mx:example.com mx:example.com " MORE  \
	     " -all\"\n"                                                                           \
	     "h A 192.0.2.20\n" DK_OK DMARC_OK MX_OK REV

static void
test_lookups(void **state)
{
	expect_only(LOOKUP_TREE("a:h.example.com"), local_record, "spf.lookups", MAIL_CHECK_FAIL,
	            "11 DNS-querying terms");
	/* exactly 10 is still within the limit */
	struct run run = check_zone(LOOKUP_TREE(""), local_record);
	assert_int_equal(run.ret, 0);
	expect_row(&run.rep, "spf.lookups", MAIL_CHECK_OK, "10 of at most 10");
	expect_row(&run.rep, "spf.include", MAIL_CHECK_OK, "2 include/redirect records");
	mail_check_report_free(&run.rep);
}

static void
test_include_loop(void **state)
{
	struct run run = check_zone(
	    HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 include:_l.example.com "
	         "-all\"\n_l TXT \"v=spf1 include:_l.example.com -all\"\n" DK_OK DMARC_OK MX_OK REV,
	    local_record);
	assert_int_equal(run.ret, 0);
	expect_row(&run.rep, "spf.lookups", MAIL_CHECK_FAIL, "a loop");
	mail_check_report_free(&run.rep);
}

static void
test_include_missing(void **state)
{
	/* a TXT lookup without an answer is a void lookup as well (RFC 7208 §4.6.4) */
	struct run run = check_zone(HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 include:_none.example.com "
	                                 "-all\"\n_none A 192.0.2.1\n" DK_OK DMARC_OK MX_OK REV,
	                            local_record);
	assert_int_equal(run.ret, 0);
	expect_row(&run.rep, "spf.include", MAIL_CHECK_FAIL, "include:_none.example.com");
	expect_row(&run.rep, "spf.void-lookups", MAIL_CHECK_WARN, "_none.example.com");
	mail_check_report_free(&run.rep);
}

static void
test_revoked(void **state)
{
	expect_only(ALL_OK, "v=DKIM1; k=rsa; p=", "dkim.rampart.revoked", MAIL_CHECK_FAIL,
	            "revoked");
}

static void
test_local_key(void **state)
{
	expect_only(ALL_OK, other_record, "dkim.rampart.local-key", MAIL_CHECK_FAIL,
	            "not the public half");
}

static void
test_no_dmarc(void **state)
{
	struct run run = check_zone(HEAD SPF_OK DK_OK MX_OK REV, local_record);
	assert_int_equal(run.ret, 0);
	expect_row(&run.rep, "dmarc.present", MAIL_CHECK_FAIL, NULL);
	assert_null(mail_check_find(&run.rep, "dmarc.policy"));
	assert_int_equal(mail_check_worst(&run.rep), MAIL_CHECK_FAIL);
	mail_check_report_free(&run.rep);
}

static void
test_all_qualifiers(void **state)
{
	expect_only(HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 +all\"\n" DK_OK DMARC_OK MX_OK REV,
	            local_record, "spf.all", MAIL_CHECK_FAIL, "+all");
	expect_only(HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 ?all\"\n" DK_OK DMARC_OK MX_OK REV,
	            local_record, "spf.all", MAIL_CHECK_WARN, "?all");
	expect_only(HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 ~all\"\n" DK_OK DMARC_OK MX_OK REV,
	            local_record, "spf.all", MAIL_CHECK_OK, "~all");
	/* the all of a redirect= target is the one that applies */
	expect_only(HEAD "@ TXT \"v=spf1 redirect=_r.example.com\"\n_r TXT \"v=spf1 "
	                 "ip4:192.0.2.10 +all\"\n" DK_OK DMARC_OK MX_OK REV,
	            local_record, "spf.all", MAIL_CHECK_FAIL, "+all");
}

static void
test_testing(void **state)
{
	char rec[1100];
	snprintf(rec, sizeof(rec), "%s; t=y", local_record);
	expect_only(ALL_OK, rec, "dkim.rampart.testing", MAIL_CHECK_WARN, "t=y");
}

static void
test_void_lookups(void **state)
{
	expect_only(
	    HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 a:n1.example.com -all\"\n" DK_OK DMARC_OK MX_OK REV,
	    local_record, "spf.void-lookups", MAIL_CHECK_WARN, "n1.example.com");
	expect_only(HEAD "@ TXT \"v=spf1 ip4:192.0.2.10 a:n1.example.com mx:n2.example.com "
	                 "exists:n3.example.com -all\"\n" DK_OK DMARC_OK MX_OK REV,
	            local_record, "spf.void-lookups", MAIL_CHECK_FAIL, "3 names");
}

static void
test_servfail(void **state)
{
	static const char *const sel[] = {"rampart"};
	struct mail_check_input in = {.domain = "example.com", .selectors = sel, .n_selectors = 1};
	struct mail_check_report rep = {0};
	struct dns_zone *z;
	struct dns_resolver *r;
	char *err = NULL;
	const char *text = HEAD SPF_OK DK_OK MX_OK;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_string(z, "test", text, strlen(text), &err), 0);
	assert_int_equal(dns_zone_add_txt(z, "rampart._domainkey.example.com", local_record,
	                                  strlen(local_record)),
	                 0);
	assert_int_equal(dns_zone_add_failure(z, "_dmarc.example.com", DNS_SERVFAIL), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	assert_int_equal(mail_check_run(r, &in, &rep), -EAGAIN);
	assert_non_null(strstr(rep.dns_error, "_dmarc.example.com"));
	/* the rows before it stand; the failed lookup is neither a pass nor a failed check */
	expect_row(&rep, "spf.present", MAIL_CHECK_OK, NULL);
	assert_null(mail_check_find(&rep, "dmarc.present"));
	mail_check_report_free(&rep);
	dns_resolver_free(r);

	/* the domain itself times out: no row at all */
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add_failure(z, "example.com", DNS_TIMEOUT), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	assert_int_equal(mail_check_run(r, &in, &rep), -EAGAIN);
	assert_int_equal(rep.n, 0);
	assert_non_null(strstr(rep.dns_error, "timed out"));
	mail_check_report_free(&rep);
	dns_resolver_free(r);
}

static void
test_unknown_domain(void **state)
{
	static const char *const sel[] = {"rampart"};
	struct mail_check_input in = {
	    .domain = "nope.example.com", .selectors = sel, .n_selectors = 1};
	struct mail_check_report rep = {0};
	struct dns_resolver *r = zone_with(ALL_OK, local_record);
	assert_int_equal(mail_check_run(r, &in, &rep), 0);
	assert_true(rep.no_domain);
	assert_int_equal(rep.n, 1);
	expect_row(&rep, "domain.exists", MAIL_CHECK_FAIL, "NXDOMAIN");
	mail_check_report_free(&rep);
	/* input that is not a name */
	in.domain = "exa mple.com";
	assert_int_equal(mail_check_run(r, &in, &rep), -EINVAL);
	in.domain = "com";
	assert_int_equal(mail_check_run(r, &in, &rep), -EINVAL);
	in.domain = "example.com";
	in.selectors = (const char *const[]){"bad selector"};
	assert_int_equal(mail_check_run(r, &in, &rep), -EINVAL);
	assert_int_equal(rep.n, 0);
	dns_resolver_free(r);
}

static void
test_ip_and_reverse(void **state)
{
	/* another IP: SPF fails for it, and it has no PTR */
	static const char *const sel[] = {"rampart"};
	struct mail_check_input in = {
	    .domain = "example.com", .selectors = sel, .n_selectors = 1, .have_ip = true};
	struct mail_check_report rep = {0};
	struct dns_resolver *r = zone_with(ALL_OK "11 PTR elsewhere.example.com.\n", local_record);
	assert_int_equal(net_addr_parse("192.0.2.99", NET_PORT_NONE, &in.ip), 0);
	assert_int_equal(mail_check_run(r, &in, &rep), 0);
	expect_row(&rep, "spf.ip", MAIL_CHECK_FAIL, "fail");
	expect_row(&rep, "fcrdns", MAIL_CHECK_FAIL, "no PTR");
	/* no --key: no local-key row */
	assert_null(mail_check_find(&rep, "dkim.rampart.local-key"));
	mail_check_report_free(&rep);
	/* a PTR whose name does not resolve back */
	assert_int_equal(net_addr_parse("192.0.2.11", NET_PORT_NONE, &in.ip), 0);
	assert_int_equal(mail_check_run(r, &in, &rep), 0);
	expect_row(&rep, "fcrdns", MAIL_CHECK_FAIL, "does not resolve back");
	mail_check_report_free(&rep);
	/* without an address neither row appears */
	in.have_ip = false;
	assert_int_equal(mail_check_run(r, &in, &rep), 0);
	assert_null(mail_check_find(&rep, "spf.ip"));
	assert_null(mail_check_find(&rep, "fcrdns"));
	assert_int_equal(mail_check_worst(&rep), MAIL_CHECK_OK);
	mail_check_report_free(&rep);
	dns_resolver_free(r);
}

static void
test_dmarc_variants(void **state)
{
	struct run run = check_zone(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=none\"\n" MX_OK REV,
	                            local_record);
	expect_row(&run.rep, "dmarc.policy", MAIL_CHECK_WARN, "neither enforced");
	expect_row(&run.rep, "dmarc.rua", MAIL_CHECK_WARN, "no rua=");
	assert_int_equal(mail_check_worst(&run.rep), MAIL_CHECK_WARN);
	mail_check_report_free(&run.rep);
	expect_only(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com; "
	                              "ruf=mailto:f@example.com\"\n" MX_OK REV,
	            local_record, "dmarc.policy", MAIL_CHECK_OK, "p=reject");
	expect_only(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=reject; pct=20; "
	                              "rua=mailto:d@example.com\"\n" MX_OK REV,
	            local_record, "dmarc.policy", MAIL_CHECK_WARN, "20%");
	expect_only(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=frob\"\n" MX_OK REV, local_record,
	            "dmarc.syntax", MAIL_CHECK_FAIL, "no valid p=");
	expect_only(HEAD SPF_OK DK_OK
	            "_dmarc TXT \"v=DMARC1; p=quarantine; rua=mailto:nobody\"\n" MX_OK REV,
	            local_record, "dmarc.rua", MAIL_CHECK_FAIL, "not a mail address");
	/* reports to another domain: it has to agree (RFC 7489 §7.1) */
	expect_only(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=reject; "
	                              "rua=mailto:r@reports.example.net\"\n" MX_OK REV,
	            local_record, "dmarc.rua", MAIL_CHECK_WARN, "_report._dmarc");
	expect_only(HEAD SPF_OK DK_OK "_dmarc TXT \"v=DMARC1; p=reject; "
	                              "rua=mailto:r@reports.example.net\"\n" MX_OK REV
	                              "$ORIGIN reports.example.net.\n"
	                              "example.com._report._dmarc TXT \"v=DMARC1\"\n",
	            local_record, "dmarc.rua", MAIL_CHECK_OK, "reports.example.net");
	expect_only(HEAD SPF_OK DK_OK
	            "_dmarc TXT \"v=DMARC1; p=none; rua=mailto:a@example.com\"\n"
	            "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:a@example.com\"\n" MX_OK REV,
	            local_record, "dmarc.present", MAIL_CHECK_FAIL, "2 DMARC records");
}

static void
test_key_variants(void **state)
{
	struct dkim_key_private small = {.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512)};
	char rec[1024];
	assert_non_null(small.pkey);
	record_of(&small, rec, sizeof(rec));
	dkim_key_private_clear(&small);
	struct run run = check_zone(ALL_OK, rec);
	expect_row(&run.rep, "dkim.rampart.type", MAIL_CHECK_FAIL, "512 bits");
	mail_check_report_free(&run.rep);

	run = check_zone(ALL_OK, NULL);
	expect_row(&run.rep, "dkim.rampart.present", MAIL_CHECK_FAIL, NULL);
	assert_null(mail_check_find(&run.rep, "dkim.rampart.syntax"));
	mail_check_report_free(&run.rep);

	expect_only(ALL_OK, "v=DKIM1; k=rsa; p=AAAA", "dkim.rampart.syntax", MAIL_CHECK_FAIL,
	            "not a valid RSA key");
	expect_only(ALL_OK, "v=DKIM1; k=dsa; p=AAAA", "dkim.rampart.syntax", MAIL_CHECK_FAIL,
	            "unsupported key type");
}

static void
test_other_rows(void **state)
{
	/* Sender ID */
	expect_only(ALL_OK "$ORIGIN example.com.\n@ TXT \"spf2.0/pra ip4:192.0.2.10 -all\"\n",
	            local_record, "senderid.syntax", MAIL_CHECK_OK, "1 spf2.0 record");
	expect_only(ALL_OK "$ORIGIN example.com.\n@ TXT \"spf2.0/pra ip4:192.0.2.300 -all\"\n",
	            local_record, "senderid.syntax", MAIL_CHECK_FAIL, "spf2.0 record");
	expect_only(ALL_OK "$ORIGIN example.com.\n@ TXT \"spf2.0/pra ip4:192.0.2.10 -all\"\n"
	                   "@ TXT \"spf2.0/pra,mfrom ip4:192.0.2.10 -all\"\n",
	            local_record, "senderid.syntax", MAIL_CHECK_FAIL, "one Sender ID scope");
	/* DomainKeys policy */
	expect_only(HEAD SPF_OK DMARC_OK MX_OK REV, local_record, "domainkeys.policy",
	            MAIL_CHECK_OK, "o=~ is assumed");
	expect_only(HEAD SPF_OK "_domainkey TXT \"o=!\"\n" DMARC_OK MX_OK REV, local_record,
	            "domainkeys.policy", MAIL_CHECK_FAIL, "o=!");
	expect_only(HEAD SPF_OK "_domainkey TXT \"o=-\"\n" DMARC_OK MX_OK REV, local_record,
	            "domainkeys.policy", MAIL_CHECK_OK, "o=-");
	/* MX */
	expect_only(HEAD SPF_OK DK_OK DMARC_OK "@ MX 0 .\nmail A 192.0.2.10\n" REV, local_record,
	            "mx.present", MAIL_CHECK_FAIL, "null MX");
	expect_only(HEAD SPF_OK DK_OK DMARC_OK "@ MX 10 gone\nmail A 192.0.2.10\n" REV,
	            local_record, "mx.resolve", MAIL_CHECK_FAIL, "gone.example.com");
	expect_only(HEAD SPF_OK DK_OK DMARC_OK "@ A 192.0.2.10\nmail A 192.0.2.10\n" REV,
	            local_record, "mx.present", MAIL_CHECK_OK, "RFC 5321");
	expect_only(HEAD SPF_OK DK_OK DMARC_OK "mail A 192.0.2.10\n" REV, local_record,
	            "mx.present", MAIL_CHECK_WARN, "no MX and no address");
	/* a long record */
	char spf[600] = "v=spf1 ip4:192.0.2.10";
	for (int i = 1; strlen(spf) < 460; i++)
		snprintf(spf + strlen(spf), sizeof(spf) - strlen(spf), " ip4:198.51.100.%d", i);
	snprintf(spf + strlen(spf), sizeof(spf) - strlen(spf), " -all");
	struct dns_zone *z;
	struct dns_resolver *r;
	struct mail_check_report rep = {0};
	char *err = NULL;
	const char *rest = HEAD DK_OK DMARC_OK MX_OK;
	static const char *const sel[] = {"rampart"};
	struct mail_check_input in = {.domain = "example.com", .selectors = sel, .n_selectors = 1};
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_string(z, "test", rest, strlen(rest), &err), 0);
	assert_int_equal(dns_zone_add_txt(z, "example.com", spf, strlen(spf)), 0);
	assert_int_equal(dns_zone_add_txt(z, "rampart._domainkey.example.com", local_record,
	                                  strlen(local_record)),
	                 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	assert_int_equal(mail_check_run(r, &in, &rep), 0);
	expect_row(&rep, "spf.length", MAIL_CHECK_WARN, "over 450");
	mail_check_report_free(&rep);
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_ok),          cmocka_unit_test(test_two_spf),
	    cmocka_unit_test(test_lookups),         cmocka_unit_test(test_include_loop),
	    cmocka_unit_test(test_include_missing), cmocka_unit_test(test_revoked),
	    cmocka_unit_test(test_local_key),       cmocka_unit_test(test_no_dmarc),
	    cmocka_unit_test(test_all_qualifiers),  cmocka_unit_test(test_testing),
	    cmocka_unit_test(test_void_lookups),    cmocka_unit_test(test_servfail),
	    cmocka_unit_test(test_unknown_domain),  cmocka_unit_test(test_ip_and_reverse),
	    cmocka_unit_test(test_dmarc_variants),  cmocka_unit_test(test_key_variants),
	    cmocka_unit_test(test_other_rows),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
