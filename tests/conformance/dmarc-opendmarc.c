/*
 * Differential: mail/dmarc against Debian's libopendmarc (1.4.2) on the same From domain, SPF
 * and DKIM results and _dmarc records, both with the same public suffix list file.
 *
 * Usage: dmarc-opendmarc LIST.dat
 *
 * libopendmarc does its DNS itself (opendmarc_policy_query_dmarc); here the driver hands it
 * the record instead (opendmarc_policy_store_dmarc) after the lookup that query_dmarc would
 * have made: the first TXT record at _dmarc.<From domain> that contains "v=DMARC" (as its
 * dmarc_dns_get_record does), else the first at _dmarc.<its organizational domain> (from its
 * own opendmarc_get_tld). store_dmarc's third argument becomes the From domain libopendmarc
 * aligns against (it replaces what store_from_domain stored), so it is always the From domain;
 * the fourth is the organizational domain only when the record came from there, which is what
 * makes libopendmarc apply sp. Ours runs over an in-memory zone holding the same records.
 *
 * Compared: the result (pass / fail / none / permerror: libopendmarc's parse errors are what
 * the OpenDMARC milter reports as permerror), SPF and DKIM alignment, and the policy (p or sp)
 * that applies. pct is not compared: libopendmarc leaves the sampling to the milter.
 *
 * Disagreements tolerated (each case says which one; the test fails if such a case stops
 * disagreeing, so this list stays true):
 * D1 Strict alignment (aspf=s, adkim=s) of two different names with one Organizational
 *    Domain (parent, child or sibling): libopendmarc 1.4.2 calls several of them aligned (its
 *    opendmarc_policy_check_alignment answers "aligned" in strict mode for any two names that
 *    share an organizational domain). RFC 7489 §3.1.1 and §3.1.2: in strict mode "only an
 *    exact match" between the two domains counts as aligned.
 * D2 Several DMARC records at one name: libopendmarc uses the first one returned. RFC 7489
 *    §6.6.3 step 5: "If the remaining set contains multiple records ... policy discovery
 *    terminates and DMARC processing is not applied to this message" (we: none).
 * D3 A TXT record that does not start with v=DMARC1 ("p=reject; v=DMARC1", "v=DMARC2; ..."):
 *    libopendmarc takes any record containing "v=DMARC", accepts v anywhere, and reports a
 *    parse error for another version. RFC 7489 §6.3 (v "MUST be the first tag", its value
 *    "MUST match precisely") and §6.6.3 step 2: such records are discarded, as if absent; we
 *    say none, or use the organizational domain's record when there is one (step 3).
 * D4 Policy words abbreviated (p=rej): libopendmarc accepts any prefix. RFC 7489 §6.4 allows
 *    only "none" / "quarantine" / "reject"; a record without a valid p then falls under
 *    §6.6.3 step 6 (no valid rua: no DMARC processing, which we report as permerror).
 * D5 An invalid value of an optional tag (pct=150, adkim=x): libopendmarc rejects the whole
 *    record. RFC 7489 §6.3: "Syntax errors in the remainder of the record SHOULD be discarded
 *    in favor of default values (if any) or ignored outright": we keep the default.
 * D6 No valid p but a valid rua URI: libopendmarc rejects the record. RFC 7489 §6.6.3 step
 *    6.1: act "as if a record containing a valid "v" tag and "p=none" was retrieved, and
 *    continue processing": we evaluate with p=none.
 * D7 Relaxed alignment where one side is a public suffix (d=com for From example.com, or
 *    d=example.com for From com): libopendmarc aligns a name with any of its parent or child
 *    names. RFC 7489 §3.1.1 and §3.1.2: relaxed alignment needs the same Organizational
 *    Domain (§3.2); a public suffix has none, and is not example.com's.
 * D8 The Organizational Domain under wildcard rules and Unicode rules of the list:
 *    libopendmarc's opendmarc_get_tld answers c.kobe.jp for a.b.c.kobe.jp (rule *.kobe.jp)
 *    and xn--55qx5d.cn for x.xn--85x722f.xn--55qx5d.cn (rule 公司.cn), so it looks for the
 *    record at the wrong name. RFC 7489 §3.2: the Organizational Domain is the public suffix
 *    plus one label, by the public suffix list's algorithm, whose own tests (test_psl.txt,
 *    run by dmarc-psl) give b.c.kobe.jp and xn--85x722f.xn--55qx5d.cn.
 */
#include "mail/dmarc.h"

#include "core/dns.h"
#include "mail/dmarc_psl.h"

/* libopendmarc's header defines DMARC_POLICY_NONE and friends as macros of its own: keep
 * ours under other names before it is included. */
static const enum dmarc_policy OUR_NONE = DMARC_POLICY_NONE;
static const enum dmarc_policy OUR_QUARANTINE = DMARC_POLICY_QUARANTINE;
static const enum dmarc_policy OUR_REJECT = DMARC_POLICY_REJECT;

#include <errno.h>
#include <opendmarc/dmarc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exported by libopendmarc, not declared in its header. */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

#define MAX_RECS 4
#define MAX_DKIM 3

struct txt {
	const char *name; /* "_dmarc.example.com" */
	const char *text;
};

struct dcase {
	const char *from;
	const char *spf;            /* "domain:pass" / "domain:fail"; NULL: no SPF result */
	const char *dkim[MAX_DKIM]; /* "d:pass" / "d:fail" */
	struct txt rec[MAX_RECS];
	const char *tolerate; /* NULL: must agree; else "Dn" from the list above */
};

enum res { R_NONE, R_PASS, R_FAIL, R_PERMERROR, R_TEMPERROR };
static const char *const res_name[] = {"none", "pass", "fail", "permerror", "temperror"};

struct view {
	enum res result;
	bool spf_aligned, dkim_aligned;
	enum dmarc_policy policy; /* meaningful for pass and fail */
};

#define REC(n, t)                                                                                  \
	{                                                                                          \
		"_dmarc." n, t                                                                     \
	}

/* Most cases agree and leave tolerate (and trailing records) out. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
static const struct dcase cases[] = {
    /* basics: result, policy, both mechanisms */
    {"example.com", "example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", "example.com:fail", {NULL}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"example.com:pass"}, {REC("example.com", "v=DMARC1; p=quarantine")}},
    {"example.com", NULL, {"example.com:fail"}, {REC("example.com", "v=DMARC1; p=quarantine")}},
    {"example.com", "other.net:pass", {"other.net:pass"}, {REC("example.com", "v=DMARC1; p=none")}},
    {"example.com", "example.com:pass", {"example.com:pass"}, {REC("example.com", "v=DMARC1; p=none")}},
    {"example.com", "example.com:fail", {"example.com:fail"}, {{NULL, NULL}}},
    {"example.com", "example.com:pass", {NULL}, {REC("other.com", "v=DMARC1; p=reject")}},
    /* relaxed alignment (the default) */
    {"example.com", "mail.example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"mail.example.com", "example.com:pass", {NULL}, {REC("mail.example.com", "v=DMARC1; p=reject")}},
    {"a.example.com", "b.example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"sig.example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"a.example.com", NULL, {"b.example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"example.net:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.co.uk", NULL, {"other.co.uk:pass"}, {REC("example.co.uk", "v=DMARC1; p=reject")}},
    {"a.example.co.uk", "example.co.uk:pass", {NULL}, {REC("example.co.uk", "v=DMARC1; p=reject")}},
    /* strict alignment */
    {"example.com", "example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject; aspf=s")}},
    {"mail.example.com", "example.com:pass", {NULL}, {REC("mail.example.com", "v=DMARC1; p=reject; aspf=s")}},
    {"example.com", "mail.example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject; aspf=s")}, "D1"},
    {"example.com", NULL, {"sig.example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject; adkim=s")}, "D1"},
    {"a.example.com", NULL, {"b.example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject; adkim=s")}, "D1"},
    {"a.example.com", NULL, {"a.example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject; adkim=s")}},
    {"example.com", "mail.example.com:pass", {"example.com:pass"},
     {REC("example.com", "v=DMARC1; p=reject; aspf=s; adkim=r")}, "D1"},
    /* organizational-domain fallback and sp */
    {"mail.example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; sp=quarantine")}},
    {"mail.example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=quarantine")}},
    {"mail.example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; sp=none")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; sp=none")}},
    {"mail.example.com", NULL, {NULL},
     {REC("mail.example.com", "v=DMARC1; p=none"), REC("example.com", "v=DMARC1; p=reject")}},
    {"x.y.example.com", "example.com:pass", {NULL}, {REC("example.com", "v=DMARC1; p=reject; sp=quarantine")}},
    {"x.y.example.com", NULL, {NULL},
     {REC("y.example.com", "v=DMARC1; p=none"), REC("example.com", "v=DMARC1; p=reject")}},
    {"mail.example.co.uk", NULL, {NULL}, {REC("example.co.uk", "v=DMARC1; p=reject; sp=quarantine")}},
    {"a.b.c.kobe.jp", NULL, {NULL}, {REC("b.c.kobe.jp", "v=DMARC1; p=quarantine; sp=reject")}, "D8"},
    {"x.xn--85x722f.xn--55qx5d.cn", NULL, {NULL}, {REC("xn--55qx5d.cn", "v=DMARC1; p=reject")}, "D8"},
    {"x.xn--85x722f.xn--55qx5d.cn", NULL, {"xn--85x722f.xn--55qx5d.cn:pass"},
     {REC("x.xn--85x722f.xn--55qx5d.cn", "v=DMARC1; p=reject")}},
    {"www.city.kobe.jp", "city.kobe.jp:pass", {NULL}, {REC("city.kobe.jp", "v=DMARC1; p=reject; sp=quarantine")}},
    {"a.example.blogspot.com", NULL, {"example.blogspot.com:pass"},
     {REC("example.blogspot.com", "v=DMARC1; p=reject")}},
    {"a.example.blogspot.com", NULL, {"other.blogspot.com:pass"},
     {REC("example.blogspot.com", "v=DMARC1; p=reject; sp=quarantine")}},
    {"mail.example.com", NULL, {NULL},
     {REC("mail.example.com", "not dmarc"), REC("example.com", "v=DMARC1; p=reject")}},
    /* the record's text */
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1;p=reject;pct=50;rua=mailto:d@example.com")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1 ; p = quarantine ; ")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; unknown=tag; x")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; P=Reject")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC2; p=reject")}, "D3"},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=bogus")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; sp=reject")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=rej")}, "D4"},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; pct=150")}, "D5"},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=reject; adkim=x")}, "D5"},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=DMARC1; p=bogus; rua=mailto:dmarc@example.com")}, "D6"},
    {"example.com", NULL, {NULL}, {REC("example.com", "v=dmarc1; p=reject")}},
    {"example.com", NULL, {NULL}, {REC("example.com", "p=reject; v=DMARC1")}, "D3"},
    {"mail.example.com", NULL, {NULL},
     {REC("mail.example.com", "p=none; v=DMARC1"), REC("example.com", "v=DMARC1; p=reject")}, "D3"},
    {"example.com", NULL, {NULL},
     {REC("example.com", "v=DMARC1; p=reject"), REC("example.com", "v=DMARC1; p=none")}, "D2"},
    {"example.com", NULL, {NULL},
     {REC("example.com", "v=spf1 -all"), REC("example.com", "v=DMARC1; p=quarantine")}},
    /* several DKIM signatures */
    {"example.com", NULL, {"other.net:pass", "example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"example.com:fail", "example.com:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"example.com:pass", "other.net:fail"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"example.com:fail", "other.net:pass"}, {REC("example.com", "v=DMARC1; p=reject")}},
    {"example.com", NULL, {"other.net:pass", "sig.example.com:fail", "sig.example.com:pass"},
     {REC("example.com", "v=DMARC1; p=reject")}},
    /* public suffixes */
    {"example.com", NULL, {"com:pass"}, {REC("example.com", "v=DMARC1; p=reject")}, "D7"},
    {"com", "com:pass", {NULL}, {REC("com", "v=DMARC1; p=reject")}},
    {"com", NULL, {"example.com:pass"}, {REC("com", "v=DMARC1; p=reject")}, "D7"},
    {"www.ck", "www.ck:pass", {NULL}, {REC("www.ck", "v=DMARC1; p=reject")}},
};
// clang-format on
#pragma GCC diagnostic pop

static bool
split_result(const char *spec, char *domain, size_t size, bool *pass)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= size)
		return false;
	memcpy(domain, spec, (size_t)(colon - spec));
	domain[colon - spec] = '\0';
	*pass = strcmp(colon + 1, "pass") == 0;
	return true;
}

/* The first record at name containing "v=DMARC", as libopendmarc's DNS code picks it. */
static const char *
od_lookup(const struct dcase *c, const char *domain)
{
	char name[300];
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	for (size_t i = 0; i < MAX_RECS && c->rec[i].name; i++)
		if (strcasecmp(c->rec[i].name, name) == 0 && strstr(c->rec[i].text, "v=DMARC"))
			return c->rec[i].text;
	return NULL;
}

static enum dmarc_policy
od_policy(int p)
{
	return p == DMARC_RECORD_P_REJECT       ? OUR_REJECT
	       : p == DMARC_RECORD_P_QUARANTINE ? OUR_QUARANTINE
	                                        : OUR_NONE;
}

static void
od_store_auth(DMARC_POLICY_T *ctx, const struct dcase *c)
{
	char d[300];
	bool pass;
	if (c->spf && split_result(c->spf, d, sizeof(d), &pass))
		opendmarc_policy_store_spf(ctx, (u_char *)d,
		                           pass ? DMARC_POLICY_SPF_OUTCOME_PASS
		                                : DMARC_POLICY_SPF_OUTCOME_FAIL,
		                           DMARC_POLICY_SPF_ORIGIN_MAILFROM, NULL);
	for (size_t i = 0; i < MAX_DKIM && c->dkim[i]; i++)
		if (split_result(c->dkim[i], d, sizeof(d), &pass))
			opendmarc_policy_store_dkim(ctx, (u_char *)d, (u_char *)"sel",
			                            pass ? DMARC_POLICY_DKIM_OUTCOME_PASS
			                                 : DMARC_POLICY_DKIM_OUTCOME_FAIL,
			                            NULL);
}

static void
od_policy_of_pass(DMARC_POLICY_T *ctx, bool fallback, struct view *v)
{
	int p = 0, sp = 0;
	opendmarc_policy_fetch_p(ctx, &p);
	opendmarc_policy_fetch_sp(ctx, &sp);
	v->policy = od_policy(fallback && sp != DMARC_RECORD_P_UNSPECIFIED ? sp : p);
}

static int
run_opendmarc(const struct dcase *c, struct view *v)
{
	*v = (struct view){.result = R_NONE};
	DMARC_POLICY_T *ctx = opendmarc_policy_connect_init((u_char *)"192.0.2.1", 0);
	if (!ctx)
		return -ENOMEM;
	opendmarc_policy_store_from_domain(ctx, (u_char *)c->from);
	u_char org[300] = "";
	const char *rec = od_lookup(c, c->from);
	bool fallback = false;
	if (!rec && opendmarc_get_tld((u_char *)c->from, org, sizeof(org)) == 0 && org[0]) {
		rec = od_lookup(c, (const char *)org);
		fallback = rec != NULL;
	}
	int st = DMARC_PARSE_OKAY;
	if (rec)
		st = opendmarc_policy_store_dmarc(ctx, (u_char *)rec, (u_char *)c->from,
		                                  fallback ? org : NULL);
	od_store_auth(ctx, c);
	if (st != DMARC_PARSE_OKAY) {
		v->result = R_PERMERROR;
		opendmarc_policy_connect_shutdown(ctx);
		return 0;
	}
	int pol = opendmarc_get_policy_to_enforce(ctx);
	int da = 0, sa = 0;
	opendmarc_policy_fetch_alignment(ctx, &da, &sa);
	v->dkim_aligned = da == DMARC_POLICY_DKIM_ALIGNMENT_PASS;
	v->spf_aligned = sa == DMARC_POLICY_SPF_ALIGNMENT_PASS;
	switch (pol) {
	case DMARC_POLICY_PASS:
		v->result = R_PASS;
		od_policy_of_pass(ctx, fallback, v);
		break;
	case DMARC_POLICY_REJECT:
	case DMARC_POLICY_QUARANTINE:
	case DMARC_POLICY_NONE:
		v->result = R_FAIL;
		v->policy = pol == DMARC_POLICY_REJECT       ? OUR_REJECT
		            : pol == DMARC_POLICY_QUARANTINE ? OUR_QUARANTINE
		                                             : OUR_NONE;
		break;
	default: /* DMARC_POLICY_ABSENT and the like */
		v->result = R_NONE;
		break;
	}
	opendmarc_policy_connect_shutdown(ctx);
	return 0;
}

static int
run_ours(const struct dmarc_psl *psl, const struct dcase *c, struct view *v)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	int e = dns_zone_new(&z);
	for (size_t i = 0; e == 0 && i < MAX_RECS && c->rec[i].name; i++)
		e = dns_zone_add_txt(z, c->rec[i].name, c->rec[i].text, strlen(c->rec[i].text));
	if (e < 0 || (e = dns_resolver_from_zone(z, &r)) < 0) {
		dns_zone_free(z);
		return e;
	}
	char spf[300], dk[MAX_DKIM][300];
	struct dmarc_dkim dkim[MAX_DKIM];
	struct dmarc_input in = {.from_domain = c->from, .dkim = dkim, .roll = 0};
	if (c->spf && split_result(c->spf, spf, sizeof(spf), &in.spf_pass))
		in.spf_domain = spf;
	for (size_t i = 0; i < MAX_DKIM && c->dkim[i]; i++, in.n_dkim++) {
		split_result(c->dkim[i], dk[i], sizeof(dk[i]), &dkim[i].pass);
		dkim[i].domain = dk[i];
	}
	struct dmarc_outcome o;
	e = dmarc_check(r, psl, &in, &o);
	dns_resolver_free(r);
	if (e < 0)
		return e;
	static const enum res map[] = {
	    [DMARC_RESULT_NONE] = R_NONE,           [DMARC_RESULT_PASS] = R_PASS,
	    [DMARC_RESULT_FAIL] = R_FAIL,           [DMARC_RESULT_TEMPERROR] = R_TEMPERROR,
	    [DMARC_RESULT_PERMERROR] = R_PERMERROR,
	};
	*v = (struct view){.result = map[o.result],
	                   .spf_aligned = o.spf_aligned,
	                   .dkim_aligned = o.dkim_aligned,
	                   .policy = o.policy};
	return 0;
}

static bool
same(const struct view *a, const struct view *b)
{
	if (a->result != b->result)
		return false;
	if (a->result != R_PASS && a->result != R_FAIL)
		return true;
	return a->spf_aligned == b->spf_aligned && a->dkim_aligned == b->dkim_aligned &&
	       a->policy == b->policy;
}

static void
show(const char *who, const struct view *v)
{
	printf("    %-10s %s", who, res_name[v->result]);
	if (v->result == R_PASS || v->result == R_FAIL)
		printf(" spf_aligned=%d dkim_aligned=%d policy=%s", v->spf_aligned, v->dkim_aligned,
		       dmarc_policy_name(v->policy));
	printf("\n");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: dmarc-opendmarc LIST.dat\n");
		return 2;
	}
	OPENDMARC_LIB_T lib = {.tld_type = OPENDMARC_TLD_TYPE_MOZILLA};
	snprintf((char *)lib.tld_source_file, sizeof(lib.tld_source_file), "%s", argv[1]);
	if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY) {
		fprintf(stderr, "libopendmarc: cannot load %s\n", argv[1]);
		return 1;
	}
	struct dmarc_psl *psl;
	int e = dmarc_psl_load(argv[1], 0, &psl);
	if (e < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	unsigned pass = 0, failed = 0, tolerated = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase *c = &cases[i];
		struct view od, us;
		if (run_opendmarc(c, &od) < 0 || (e = run_ours(psl, c, &us)) < 0) {
			printf("case %zu (%s): error\n", i, c->from);
			failed++;
			continue;
		}
		bool agree = same(&od, &us);
		bool ok = c->tolerate ? !agree : agree;
		tolerated += c->tolerate && ok;
		if (ok && !getenv("VERBOSE")) {
			pass++;
			continue;
		}
		ok ? pass++ : failed++;
		printf("%s case %zu: From %s, SPF %s, DKIM %s%s%s, record %s%s\n",
		       ok ? "ok" : "FAIL", i, c->from, c->spf ? c->spf : "-",
		       c->dkim[0] ? c->dkim[0] : "-", c->dkim[1] ? " " : "",
		       c->dkim[1] ? c->dkim[1] : "", c->rec[0].text ? c->rec[0].text : "-",
		       c->tolerate ? (agree ? " (listed as a difference, but they agree)"
		                            : " (known difference)")
		                   : "");
		show("opendmarc", &od);
		show("rampart", &us);
	}
	dmarc_psl_free(psl);
	opendmarc_policy_library_shutdown(&lib);
	printf("%u cases, %u of them known differences\n", pass + failed, tolerated);
	printf("%u passed, %u failed\n", pass, failed);
	return failed == 0 && pass >= 40 ? 0 : 1;
}
