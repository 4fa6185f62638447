/*
 * Unit tests for src/mail/dmarc: record parsing (RFC 7489 §6.3, §6.6.3 step 6), alignment
 * (§3.1), policy discovery with the Organizational Domain fallback, sp and pct, DNS errors
 * (§6.6.3) over in-memory zones (core/dns), and the Authentication-Results text.
 */
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dmarc.h"
#include "mail/dmarc_psl.h"

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

static struct dmarc_psl *psl;

static int
setup(void **state)
{
	/* Debian's publicsuffix is a test dependency (Makefile DEBS_TEST) */
	return dmarc_psl_load(NULL, 0, &psl) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	dmarc_psl_free(psl);
	return 0;
}

struct zrec {
	const char *owner;
	int status; /* 0: the TXT record text; DNS_TIMEOUT / DNS_SERVFAIL: the owner fails */
	const char *text;
};

static struct dns_resolver *
zone(const struct zrec *z, size_t n)
{
	struct dns_zone *zn;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&zn), 0);
	for (size_t i = 0; i < n; i++) {
		int e = z[i].status
		            ? dns_zone_add_failure(zn, z[i].owner, z[i].status)
		            : dns_zone_add_txt(zn, z[i].owner, z[i].text, strlen(z[i].text));
		if (e != 0)
			fail_msg("zone: %s: %d", z[i].owner, e);
	}
	assert_int_equal(dns_resolver_from_zone(zn, &r), 0);
	return r;
}

#define ZONE(...)                                                                                  \
	({                                                                                         \
		static const struct zrec z_[] = {__VA_ARGS__};                                     \
		zone(z_, sizeof(z_) / sizeof(z_[0]));                                              \
	})

/* One message: From domain, SPF (domain or NULL, pass), DKIM "d:pass"/"d:fail" list. */
static struct dmarc_outcome
check(struct dns_resolver *r, const char *from, const char *spf, bool spf_pass, unsigned roll,
      const char *const *dkim)
{
	struct dmarc_dkim sigs[8];
	char doms[8][256];
	struct dmarc_input in = {.from_domain = from,
	                         .spf_domain = spf,
	                         .spf_pass = spf_pass,
	                         .dkim = sigs,
	                         .roll = roll};
	for (size_t i = 0; dkim && dkim[i] && i < 8; i++, in.n_dkim++) {
		const char *colon = strrchr(dkim[i], ':');
		assert_non_null(colon);
		snprintf(doms[i], sizeof(doms[i]), "%.*s", (int)(colon - dkim[i]), dkim[i]);
		sigs[i] = (struct dmarc_dkim){doms[i], strcmp(colon + 1, "pass") == 0};
	}
	struct dmarc_outcome o;
	int e = dmarc_check(r, psl, &in, &o);
	if (e != 0)
		fail_msg("dmarc_check(%s): %d (%s)", from, e, o.reason);
	return o;
}

#define DKIM(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
expect(const struct dmarc_outcome *o, enum dmarc_result res, enum dmarc_policy pol,
       enum dmarc_policy dis)
{
	if (o->result != res || o->policy != pol || o->disposition != dis)
		fail_msg("%s: %s p=%s dis=%s, want %s p=%s dis=%s (%s)", o->from_domain,
		         dmarc_result_name(o->result), dmarc_policy_name(o->policy),
		         dmarc_policy_name(o->disposition), dmarc_result_name(res),
		         dmarc_policy_name(pol), dmarc_policy_name(dis), o->reason);
}

static struct dmarc_record
parse_ok(const char *txt)
{
	struct dmarc_record rec;
	int e = dmarc_record_parse(txt, strlen(txt), &rec);
	if (e != 0)
		fail_msg("%s: %d", txt, e);
	return rec;
}

static int
parse_err(const char *txt)
{
	struct dmarc_record rec;
	return dmarc_record_parse(txt, strlen(txt), &rec);
}

static void
test_record_defaults_and_tags(void **state)
{
	struct dmarc_record r = parse_ok("v=DMARC1; p=reject");
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_REJECT); /* sp absent: p applies to subdomains */
	assert_false(r.has_sp);
	assert_int_equal(r.pct, 100);
	assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.ri, 86400);
	assert_string_equal(r.fo, "0");
	assert_string_equal(r.rf, "afrf");
	assert_string_equal(r.rua, "");

	r = parse_ok("v=DMARC1;p=quarantine;sp=none;pct=25;adkim=s;aspf=s;ri=3600;fo=1:d;"
	             "rf=afrf;rua=mailto:a@example.com,mailto:b@example.net!10m;"
	             "ruf=mailto:f@example.com;future=tag");
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true(r.has_sp);
	assert_int_equal(r.pct, 25);
	assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);
	assert_int_equal(r.aspf, DMARC_ALIGN_STRICT);
	assert_int_equal(r.ri, 3600);
	assert_string_equal(r.fo, "1:d");
	assert_string_equal(r.rua, "mailto:a@example.com,mailto:b@example.net!10m");
	assert_string_equal(r.ruf, "mailto:f@example.com");
	assert_false(r.p_assumed);

	/* whitespace around tags, names and policy words case-insensitive, trailing ';' */
	r = parse_ok("v = DMARC1 ;\tP = Reject ; SP=QUARANTINE ; pct=0;");
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.pct, 0);
	/* p need not be second (§6.6.3 step 6 asks only for a valid p) */
	r = parse_ok("v=DMARC1; rua=mailto:x@example.com; p=none");
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_false(r.p_assumed);
}

static void
test_record_optional_errors(void **state)
{
	/* §6.3: syntax errors in the remainder fall back to the defaults */
	struct dmarc_record r =
	    parse_ok("v=DMARC1; p=reject; pct=101; adkim=x; aspf=relaxed; ri=-1; fo=9; rf=iodef");
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.pct, 100);
	assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.ri, 86400);
	assert_string_equal(r.fo, "0");
	assert_string_equal(r.rf, "afrf");
	r = parse_ok("v=DMARC1; p=reject; pct=abc; ri=99999999999; noequals");
	assert_int_equal(r.pct, 100);
	assert_int_equal(r.ri, 86400);
	r = parse_ok("v=DMARC1; p=none; pct=1000");
	assert_int_equal(r.pct, 100);
}

static void
test_record_not_dmarc(void **state)
{
	/* §6.6.3 step 2: records that do not start with v=DMARC1 are not DMARC records */
	assert_int_equal(parse_err("p=reject; v=DMARC1"), -ENOMSG);
	assert_int_equal(parse_err("v=DMARC2; p=reject"), -ENOMSG);
	assert_int_equal(parse_err("v=dmarc1; p=reject"), -ENOMSG); /* "MUST match precisely" */
	assert_int_equal(parse_err("v=DMARC1x; p=reject"), -ENOMSG);
	assert_int_equal(parse_err("v=DMARC1 p=reject"), -ENOMSG);
	assert_int_equal(parse_err(" v=DMARC1; p=reject"), -ENOMSG);
	assert_int_equal(parse_err("v=spf1 -all"), -ENOMSG);
	assert_int_equal(parse_err(""), -ENOMSG);
	assert_true(dmarc_record_is_dmarc("v=DMARC1", 8));
	assert_true(dmarc_record_is_dmarc("V=DMARC1;p=none", 15));
	assert_false(dmarc_record_is_dmarc("v=DMARC1", 7));
}

static void
test_record_bad_p(void **state)
{
	/* §6.6.3 step 6.2: no valid p (or a bad sp) and no valid rua: unusable */
	assert_int_equal(parse_err("v=DMARC1"), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; sp=reject"), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; p=rej"), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; p="), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; p=reject; sp=bogus"), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; p=bogus; rua=not a uri"), -EINVAL);
	assert_int_equal(parse_err("v=DMARC1; p=bogus; rua=mailto:"), -EINVAL);
	/* step 6.1: ... with a valid rua URI, as if p=none */
	struct dmarc_record r = parse_ok("v=DMARC1; p=bogus; rua=junk, mailto:d@example.com");
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true(r.p_assumed);
	r = parse_ok("v=DMARC1; p=reject; sp=bogus; rua=https://example.com/r");
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	r = parse_ok("v=DMARC1; rua=mailto:d@example.com");
	assert_true(r.p_assumed);
}

static void
test_alignment(void **state)
{
	assert_true(dmarc_aligned(psl, "example.com", "EXAMPLE.com.", DMARC_ALIGN_STRICT));
	assert_false(dmarc_aligned(psl, "example.com", "mail.example.com", DMARC_ALIGN_STRICT));
	assert_true(dmarc_aligned(psl, "example.com", "mail.example.com", DMARC_ALIGN_RELAXED));
	assert_true(dmarc_aligned(psl, "a.example.com", "b.example.com", DMARC_ALIGN_RELAXED));
	assert_false(dmarc_aligned(psl, "example.com", "example.net", DMARC_ALIGN_RELAXED));
	assert_false(dmarc_aligned(psl, "a.co.uk", "b.co.uk", DMARC_ALIGN_RELAXED));
	assert_true(dmarc_aligned(psl, "x.a.co.uk", "a.co.uk", DMARC_ALIGN_RELAXED));
	/* a public suffix has no Organizational Domain: only equal names align */
	assert_false(dmarc_aligned(psl, "example.com", "com", DMARC_ALIGN_RELAXED));
	assert_true(dmarc_aligned(psl, "com", "COM", DMARC_ALIGN_RELAXED));
	assert_false(dmarc_aligned(psl, "example.com", "", DMARC_ALIGN_RELAXED));
	assert_false(dmarc_aligned(psl, "example.com", NULL, DMARC_ALIGN_RELAXED));
}

static void
test_pass_fail(void **state)
{
	struct dns_resolver *r = ZONE({"_dmarc.example.com", 0, "v=DMARC1; p=reject"});
	struct dmarc_outcome o = check(r, "example.com", "example.com", true, 0, NULL);
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_true(o.spf_aligned);
	assert_false(o.dkim_aligned);
	assert_true(o.has_record);
	assert_string_equal(o.policy_domain, "example.com");
	assert_string_equal(o.org_domain, "example.com");

	o = check(r, "Example.COM.", "example.com", false, 0, DKIM("example.com:fail"));
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(o.from_domain, "example.com");
	/* an authenticated but unaligned identifier does not help */
	o = check(r, "example.com", "example.net", true, 0, DKIM("example.net:pass"));
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	/* any aligned DKIM pass among several signatures */
	o = check(r, "example.com", NULL, false, 0,
	          DKIM("other.net:pass", "example.com:fail", "mail.example.com:pass"));
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_true(o.dkim_aligned);
	assert_false(o.spf_aligned);
	dns_resolver_free(r);
}

static void
test_alignment_modes(void **state)
{
	struct dns_resolver *r =
	    ZONE({"_dmarc.relaxed.test", 0, "v=DMARC1; p=reject"},
	         {"_dmarc.strict.test", 0, "v=DMARC1; p=reject; aspf=s; adkim=s"},
	         {"_dmarc.mixed.test", 0, "v=DMARC1; p=quarantine; aspf=s"});
	struct dmarc_outcome o;
	/* relaxed: same Organizational Domain, either direction */
	o = check(r, "relaxed.test", "bounce.relaxed.test", true, 0, NULL);
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	o = check(r, "news.relaxed.test", NULL, false, 0, DKIM("relaxed.test:pass"));
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	/* strict SPF and DKIM: exact names only */
	o = check(r, "strict.test", "bounce.strict.test", true, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_false(o.spf_aligned);
	o = check(r, "strict.test", NULL, false, 0, DKIM("sig.strict.test:pass"));
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	o = check(r, "strict.test", "STRICT.test", true, 0, DKIM("strict.test:pass"));
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_true(o.spf_aligned && o.dkim_aligned);
	/* strict SPF, relaxed DKIM */
	o = check(r, "mixed.test", "bounce.mixed.test", true, 0, DKIM("sig.mixed.test:pass"));
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	assert_false(o.spf_aligned);
	assert_true(o.dkim_aligned);
	dns_resolver_free(r);
}

static void
test_org_fallback_and_sp(void **state)
{
	struct dns_resolver *r =
	    ZONE({"_dmarc.example.com", 0, "v=DMARC1; p=reject; sp=quarantine"},
	         {"_dmarc.example.net", 0, "v=DMARC1; p=quarantine"},
	         {"_dmarc.own.example.com", 0, "v=DMARC1; p=none"},
	         {"_dmarc.example.co.uk", 0, "v=DMARC1; p=reject; sp=none"});
	/* from the Organizational Domain: sp for a subdomain */
	struct dmarc_outcome o = check(r, "mail.example.com", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	assert_string_equal(o.policy_domain, "example.com");
	assert_string_equal(o.org_domain, "example.com");
	o = check(r, "a.b.c.example.com", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	/* the Organizational Domain itself: p */
	o = check(r, "example.com", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	/* a subdomain with its own record: that record's p, not the parent's sp */
	o = check(r, "own.example.com", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(o.policy_domain, "own.example.com");
	/* no sp: p applies to subdomains */
	o = check(r, "mail.example.net", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	/* under a multi-label public suffix */
	o = check(r, "www.example.co.uk", "example.co.uk", false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(o.org_domain, "example.co.uk");
	dns_resolver_free(r);
}

static void
test_pct(void **state)
{
	struct dns_resolver *r = ZONE({"_dmarc.r30.test", 0, "v=DMARC1; p=reject; pct=30"},
	                              {"_dmarc.q50.test", 0, "v=DMARC1; p=quarantine; pct=50"},
	                              {"_dmarc.r0.test", 0, "v=DMARC1; p=reject; pct=0"},
	                              {"_dmarc.r100.test", 0, "v=DMARC1; p=reject"});
	struct dmarc_outcome o;
	/* §6.6.4: pct% of failing mail gets the policy, the rest the next lower one */
	o = check(r, "r30.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	o = check(r, "r30.test", NULL, false, 29, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	o = check(r, "r30.test", NULL, false, 30, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_QUARANTINE);
	o = check(r, "r30.test", NULL, false, 99, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_QUARANTINE);
	o = check(r, "q50.test", NULL, false, 49, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	o = check(r, "q50.test", NULL, false, 50, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	o = check(r, "r0.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_QUARANTINE);
	o = check(r, "r100.test", NULL, false, 99, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	/* pass is never subject to pct */
	o = check(r, "r30.test", "r30.test", true, 99, NULL);
	expect(&o, DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	dns_resolver_free(r);
}

static void
test_discovery_sets(void **state)
{
	struct dns_resolver *r = ZONE(
	    {"_dmarc.two.test", 0, "v=DMARC1; p=reject"},
	    {"_dmarc.two.test", 0, "v=DMARC1; p=none"}, {"_dmarc.mixed.test", 0, "v=spf1 -all"},
	    {"_dmarc.mixed.test", 0, "some verification token"},
	    {"_dmarc.mixed.test", 0, "v=DMARC1; p=quarantine"},
	    {"_dmarc.sub.vlast.test", 0, "p=none; v=DMARC1"},
	    {"_dmarc.vlast.test", 0, "v=DMARC1; p=reject"},
	    {"_dmarc.badp.test", 0, "v=DMARC1; p=rejected"},
	    {"_dmarc.badprua.test", 0, "v=DMARC1; p=rejected; rua=mailto:r@badprua.test"},
	    {"_dmarc.sub.parent.test", 0, "v=DMARC1; p=none"},
	    {"_dmarc.parent.test", 0, "v=DMARC1; p=reject"},
	    {"_dmarc.sub.twoorg.test", 0, "not dmarc"},
	    {"_dmarc.twoorg.test", 0, "v=DMARC1; p=reject"},
	    {"_dmarc.twoorg.test", 0, "v=DMARC1; p=reject"});
	struct dmarc_outcome o;
	/* step 5: more than one record: no DMARC processing */
	o = check(r, "two.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_false(o.has_record);
	assert_non_null(strstr(o.reason, "2 DMARC records"));
	/* two at the Organizational Domain, found by fallback: none as well */
	o = check(r, "sub.twoorg.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	/* step 2: other TXT records are discarded before counting */
	o = check(r, "mixed.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	/* a record with v not first is discarded: the Organizational Domain's applies */
	o = check(r, "sub.vlast.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(o.policy_domain, "vlast.test");
	/* no record anywhere */
	o = check(r, "nothing.test", "nothing.test", true, 0, NULL);
	expect(&o, DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(o.policy_domain, "");
	o = check(r, "a.b.nothing.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	/* step 6.2: bad p, no rua: permerror, nothing enforced */
	o = check(r, "badp.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_PERMERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_false(o.has_record);
	/* step 6.1: bad p with rua: evaluated as p=none */
	o = check(r, "badprua.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_true(o.rec.p_assumed);
	/* the From domain's own record wins over its Organizational Domain's */
	o = check(r, "sub.parent.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	dns_resolver_free(r);
}

static void
test_dns_errors(void **state)
{
	struct dns_resolver *r = ZONE({"_dmarc.slow.test", DNS_TIMEOUT, NULL},
	                              {"_dmarc.broken.test", DNS_SERVFAIL, NULL},
	                              {"_dmarc.orgslow.test", DNS_TIMEOUT, NULL},
	                              {"_dmarc.sub.slow2.test", DNS_TIMEOUT, NULL},
	                              {"_dmarc.slow2.test", 0, "v=DMARC1; p=reject"});
	struct dmarc_outcome o;
	o = check(r, "slow.test", "slow.test", true, 0, NULL);
	expect(&o, DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_non_null(strstr(o.reason, "TIMEOUT"));
	o = check(r, "broken.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_non_null(strstr(o.reason, "SERVFAIL"));
	/* the Organizational Domain's lookup failing is a temperror too */
	o = check(r, "mail.orgslow.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	/* a failed From-domain lookup does not fall back to the parent's record */
	o = check(r, "sub.slow2.test", NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	dns_resolver_free(r);
}

static void
test_public_suffix_from(void **state)
{
	struct dns_resolver *r = ZONE({"_dmarc.co.uk", 0, "v=DMARC1; p=reject"},
	                              {"_dmarc.uk", 0, "v=DMARC1; p=quarantine"});
	struct dmarc_outcome o;
	/* a public suffix has no Organizational Domain: only its own record counts */
	o = check(r, "co.uk", "co.uk", false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(o.org_domain, "co.uk");
	o = check(r, "com", "com", true, 0, NULL);
	expect(&o, DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	/* ... and nothing else aligns with it in relaxed mode */
	o = check(r, "uk", "example.uk", true, 0, DKIM("example.uk:pass"));
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	dns_resolver_free(r);
}

static void
test_bad_input(void **state)
{
	struct dns_resolver *r = ZONE({"_dmarc.example.com", 0, "v=DMARC1; p=reject"});
	struct dmarc_outcome o;
	const char *bad[] = {NULL, "", ".", "a..b", ".example.com", "user@example.com", "a b.com"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dmarc_input in = {.from_domain = bad[i]};
		assert_int_equal(dmarc_check(r, psl, &in, &o), -EINVAL);
		assert_int_equal(o.result, DMARC_RESULT_PERMERROR);
		assert_int_equal(o.disposition, DMARC_POLICY_NONE);
	}
	struct dmarc_input in = {.from_domain = "example.com", .roll = 100};
	assert_int_equal(dmarc_check(r, psl, &in, &o), -EINVAL);
	/* a From domain too long for "_dmarc." + it: no record can exist there */
	char name[260] = "";
	for (int i = 0; i < 62; i++)
		strncat(name, "abc.", sizeof(name) - strlen(name) - 1);
	strncat(name, "example.com", sizeof(name) - strlen(name) - 1); /* 259 > 253 */
	in = (struct dmarc_input){.from_domain = name};
	assert_int_equal(dmarc_check(r, psl, &in, &o), -EINVAL);
	/* n_dkim without signatures */
	in = (struct dmarc_input){.from_domain = "example.com", .n_dkim = 1};
	assert_int_equal(dmarc_check(r, psl, &in, &o), -EINVAL);
	dns_resolver_free(r);
}

static void
test_long_from_falls_back(void **state)
{
	/* 247 bytes: "_dmarc." + it exceeds 253, so only the Organizational Domain is asked */
	struct dns_resolver *r = ZONE({"_dmarc.example.com", 0, "v=DMARC1; p=reject; sp=none"});
	char name[256] = "";
	for (int i = 0; i < 59; i++)
		strncat(name, "abc.", sizeof(name) - strlen(name) - 1);
	strncat(name, "example.com", sizeof(name) - strlen(name) - 1);
	assert_int_equal(strlen(name), 247);
	struct dmarc_outcome o = check(r, name, NULL, false, 0, NULL);
	expect(&o, DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(o.policy_domain, "example.com");
	dns_resolver_free(r);
}

static void
test_authres(void **state)
{
	struct dns_resolver *r =
	    ZONE({"_dmarc.example.com", 0, "v=DMARC1; p=reject; sp=none; pct=50"},
	         {"_dmarc.slow.test", DNS_TIMEOUT, NULL});
	char buf[256];
	struct dmarc_outcome o = check(r, "example.com", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	                    "dmarc=fail (p=reject sp=none dis=reject) header.from=example.com");
	o = check(r, "example.com", NULL, false, 50, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	                    "dmarc=fail (p=reject sp=none dis=quarantine) header.from=example.com");
	o = check(r, "Mail.Example.com", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	                    "dmarc=fail (p=reject sp=none dis=none) header.from=mail.example.com");
	o = check(r, "example.com", "example.com", true, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "dmarc=pass (p=reject sp=none dis=none) header.from=example.com");
	o = check(r, "example.net", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "dmarc=none header.from=example.net");
	o = check(r, "slow.test", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "dmarc=temperror header.from=slow.test");
	/* a From domain that is not a bare token is quoted */
	o = check(r, "we!rd.example.com", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, sizeof(buf)), 0);
	assert_string_equal(
	    buf, "dmarc=fail (p=reject sp=none dis=none) header.from=\"we!rd.example.com\"");
	/* too small: -ENOBUFS, still terminated */
	o = check(r, "example.com", NULL, false, 0, NULL);
	assert_int_equal(dmarc_authres(&o, buf, 20), -ENOBUFS);
	assert_int_equal(strlen(buf), 19);
	assert_int_equal(dmarc_authres(&o, buf, 0), -ENOBUFS);
	assert_string_equal(dmarc_result_name(DMARC_RESULT_PERMERROR), "permerror");
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_defaults_and_tags),
	    cmocka_unit_test(test_record_optional_errors),
	    cmocka_unit_test(test_record_not_dmarc),
	    cmocka_unit_test(test_record_bad_p),
	    cmocka_unit_test(test_alignment),
	    cmocka_unit_test(test_pass_fail),
	    cmocka_unit_test(test_alignment_modes),
	    cmocka_unit_test(test_org_fallback_and_sp),
	    cmocka_unit_test(test_pct),
	    cmocka_unit_test(test_discovery_sets),
	    cmocka_unit_test(test_dns_errors),
	    cmocka_unit_test(test_public_suffix_from),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_long_from_falls_back),
	    cmocka_unit_test(test_authres),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
