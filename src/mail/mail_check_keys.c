/* `rampart mail check`: the DKIM, DomainKeys and DMARC rows. */
#include "core/cleanup.h"
#include "dkim_key.h"
#include "dkim_result.h"
#include "dkim_tag.h"
#include "dmarc.h"
#include "dmarc_psl.h"
#include "mail_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One selector's checks: the record's owner and the prefix of its row names. */
struct selector {
	const char *s;
	char owner[DNS_NAME_MAX];
	char name[MAIL_CHECK_NAME_MAX];
};

/* "dkim.S.what" */
static const char *
row_name(struct selector *sel, const char *what)
{
	snprintf(sel->name, sizeof(sel->name), "dkim.%s.%s", sel->s, what);
	return sel->name;
}

static int
row_type(struct selector *sel, const struct dkim_key *k, struct mail_check_report *out)
{
	static const char fix[] =
	    "generate a 2048-bit RSA key (rampart dkim keygen) and publish it";
	if (k->type == DKIM_KEY_ED25519)
		return mail_check_add(out, row_name(sel, "type"), MAIL_CHECK_OK,
		                      "sign with an RSA key as well: not every receiver verifies "
		                      "Ed25519",
		                      "ed25519 (RFC 8463)");
	if (k->bits < DKIM_KEY_RSA_MIN)
		return mail_check_add(out, row_name(sel, "type"), MAIL_CHECK_FAIL, fix,
		                      "rsa %u bits: under 1024, receivers ignore the signature "
		                      "(RFC 8301)",
		                      k->bits);
	if (k->bits < DKIM_KEY_RSA_WARN)
		return mail_check_add(out, row_name(sel, "type"), MAIL_CHECK_WARN, fix,
		                      "rsa %u bits: 2048 or more is recommended (RFC 8301)",
		                      k->bits);
	return mail_check_add(out, row_name(sel, "type"), MAIL_CHECK_OK, NULL, "rsa %u bits",
	                      k->bits);
}

static int
row_testing(struct selector *sel, const struct dkim_key *k, struct mail_check_report *out)
{
	if (k->testing)
		return mail_check_add(out, row_name(sel, "testing"), MAIL_CHECK_WARN,
		                      "remove t=y once signing works",
		                      "t=y: receivers treat failures as if unsigned");
	return mail_check_add(out, row_name(sel, "testing"), MAIL_CHECK_OK, NULL, "no t=y");
}

/* The published key is the public half of a local private key: key material, not text. */
static int
row_local_key(struct selector *sel, const struct dkim_key *k, const struct mail_check_input *in,
              struct mail_check_report *out)
{
	if (in->n_keys == 0)
		return 0;
	for (size_t i = 0; i < in->n_keys; i++)
		if (dkim_key_matches(k, &in->keys[i]))
			return mail_check_add(out, row_name(sel, "local-key"), MAIL_CHECK_OK, NULL,
			                      "the public half of local key %zu", i + 1);
	return mail_check_add(out, row_name(sel, "local-key"), MAIL_CHECK_FAIL,
	                      "publish the record of the key the server signs with (rampart mail "
	                      "setup prints it), or sign with the key published",
	                      "the key at %s is not the public half of %s: signatures "
	                      "will fail",
	                      sel->owner, in->n_keys == 1 ? "the local key" : "any local key");
}

static int
key_rows(struct selector *sel, const struct dns_rr *rr, const struct mail_check_input *in,
         struct mail_check_report *out)
{
	struct dkim_key key;
	struct dkim_tag_list l;
	char why[128];
	static const char fix[] = "publish the record rampart mail setup prints for the key";
	if (dkim_tag_parse(rr->u.txt.data, rr->u.txt.len, &l) < 0)
		return mail_check_add(out, row_name(sel, "syntax"), MAIL_CHECK_FAIL, fix,
		                      "not a tag=value list");
	const struct dkim_tag *p = dkim_tag_find(&l, "p");
	if (p && p->value_len == 0)
		return mail_check_add(out, row_name(sel, "syntax"), MAIL_CHECK_OK, NULL,
		                      "a key record")
		           ?: mail_check_add(
		                  out, row_name(sel, "revoked"), MAIL_CHECK_FAIL,
		                  "publish the current key, or stop signing with this selector",
		                  "empty p=: the key is revoked, signatures with it fail");
	int r = dkim_key_parse(rr->u.txt.data, rr->u.txt.len, &key, why, sizeof(why));
	if (r < 0)
		return r;
	if (r != DKIM_RESULT_PASS)
		return mail_check_add(out, row_name(sel, "syntax"), MAIL_CHECK_FAIL, fix, "%s",
		                      why);
	r = mail_check_add(out, row_name(sel, "syntax"), MAIL_CHECK_OK, NULL, "a valid key record");
	r = r
	        ?: mail_check_add(out, row_name(sel, "revoked"), MAIL_CHECK_OK, NULL,
	                          "p= holds a key");
	r = r ?: row_type(sel, &key, out);
	r = r ?: row_testing(sel, &key, out);
	r = r ?: row_local_key(sel, &key, in, out);
	dkim_key_clear(&key);
	return r;
}

static int
check_selector(struct dns_resolver *dns, const struct mail_check_input *in, const char *s,
               struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	struct selector sel = {.s = s};
	snprintf(sel.owner, sizeof(sel.owner), "%s._domainkey.%s", s, in->domain);
	int r = mail_check_query(dns, out, sel.owner, DNS_T_TXT, &a);
	if (r < 0)
		return r;
	if (a.status != DNS_OK)
		return mail_check_add(
		    out, row_name(&sel, "present"), MAIL_CHECK_FAIL,
		    "publish the selector's key record (rampart mail setup prints "
		    "it)",
		    "no TXT record at %s", sel.owner);
	if (a.n > 1)
		r = mail_check_add(out, row_name(&sel, "present"), MAIL_CHECK_WARN,
		                   "keep one record per selector",
		                   "%zu TXT records at %s: verifiers may use any", a.n, sel.owner);
	else
		r = mail_check_add(out, row_name(&sel, "present"), MAIL_CHECK_OK, NULL,
		                   "key record at %s", sel.owner);
	return r ?: key_rows(&sel, &a.rr[0], in, out);
}

int
mail_check_dkim(struct dns_resolver *dns, const struct mail_check_input *in,
                struct mail_check_report *out)
{
	for (size_t i = 0; i < in->n_selectors; i++) {
		int r = check_selector(dns, in, in->selectors[i], out);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
policy_rows(const struct dns_rr *rr, size_t n, struct mail_check_report *out)
{
	static const char fix[] = "publish \"o=~\" (or \"o=-\" when every message is signed)";
	struct dkim_tag_list l;
	if (dkim_tag_parse(rr->u.txt.data, rr->u.txt.len, &l) < 0)
		return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_FAIL, fix,
		                      "not a tag=value list");
	const struct dkim_tag *o = dkim_tag_find(&l, "o"), *t = dkim_tag_find(&l, "t");
	if (o && !dkim_tag_value_is(o, "~", false) && !dkim_tag_value_is(o, "-", false))
		return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_FAIL, fix,
		                      "o=%.*s: must be ~ or - (RFC 4870 §3.6.2)",
		                      (int)(o->value_len > 32 ? 32 : o->value_len), o->value);
	if (t && dkim_tag_value_is(t, "y", false))
		return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_WARN,
		                      "remove t=y once signing works", "t=y: testing mode");
	if (n > 1)
		return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_WARN,
		                      "keep one policy record", "%zu policy records", n);
	bool all = o && dkim_tag_value_is(o, "-", false);
	return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_OK, NULL, "%s",
	                      all ? "o=-: every message is signed"
	                          : "o=~: some mail may be unsigned");
}

int
mail_check_domainkeys(struct dns_resolver *dns, const struct mail_check_input *in,
                      struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	char owner[DNS_NAME_MAX];
	snprintf(owner, sizeof(owner), "_domainkey.%s", in->domain);
	int r = mail_check_query(dns, out, owner, DNS_T_TXT, &a);
	if (r < 0)
		return r;
	if (a.status != DNS_OK)
		return mail_check_add(out, "domainkeys.policy", MAIL_CHECK_OK,
		                      "publish \"o=~\" at _domainkey for old DomainKeys verifiers",
		                      "no policy at %s: o=~ is assumed (DomainKeys, RFC 4870, is "
		                      "historic)",
		                      owner);
	return policy_rows(&a.rr[0], a.n, out);
}

/* Same Organizational Domain (RFC 7489 §3.2); without the public suffix list, only a domain
 * and the names under it count as the same. */
static bool
same_org(const char *a, const char *b)
{
	if (dkim_tag_is_subdomain(a, b) || dkim_tag_is_subdomain(b, a))
		return true;
	struct dmarc_psl *psl = NULL;
	char oa[DNS_NAME_MAX], ob[DNS_NAME_MAX];
	if (dmarc_psl_load(NULL, 0, &psl) < 0)
		return false;
	bool same = dmarc_psl_org_domain(psl, a, oa, sizeof(oa)) == 0 &&
	            dmarc_psl_org_domain(psl, b, ob, sizeof(ob)) == 0 && strcasecmp(oa, ob) == 0;
	dmarc_psl_free(psl);
	return same;
}

/* The report domain agrees to take the domain's reports (RFC 7489 §7.1). */
static int
external_ok(struct dns_resolver *dns, struct mail_check_report *out, const char *domain,
            const char *rdom, bool *ok)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	char owner[DNS_NAME_MAX];
	*ok = false;
	if (snprintf(owner, sizeof(owner), "%s._report._dmarc.%s", domain, rdom) >=
	    (int)sizeof(owner))
		return 0;
	int r = mail_check_query(dns, out, owner, DNS_T_TXT, &a);
	for (size_t i = 0; r == 0 && a.status == DNS_OK && i < a.n; i++)
		*ok |= dmarc_record_is_dmarc(a.rr[i].u.txt.data, a.rr[i].u.txt.len);
	return r;
}

/* One report URI: "mailto:local@domain[!size]". *bad describes a problem (status in *st). */
static int
check_uri(struct dns_resolver *dns, const struct mail_check_input *in, const char *uri, size_t len,
          enum mail_check_status *st, char *bad, size_t badlen, struct mail_check_report *out)
{
	char addr[DNS_NAME_MAX + 72];
	size_t n = 0;
	if (len < 7 || strncasecmp(uri, "mailto:", 7) != 0) {
		*st = MAIL_CHECK_WARN;
		snprintf(bad, badlen, "'%.*s': receivers send reports to mailto: only", (int)len,
		         uri);
		return 0;
	}
	while (7 + n < len && uri[7 + n] != '!' && n + 1 < sizeof(addr))
		n++;
	snprintf(addr, sizeof(addr), "%.*s", (int)n, uri + 7);
	const char *at = strrchr(addr, '@');
	if (!at || at == addr || strpbrk(addr, " <>\"") || !mail_check_valid_domain(at + 1)) {
		*st = MAIL_CHECK_FAIL;
		snprintf(bad, badlen, "'%.*s' is not a mail address", (int)len, uri);
		return 0;
	}
	if (same_org(at + 1, in->domain))
		return 0;
	bool ok;
	int r = external_ok(dns, out, in->domain, at + 1, &ok);
	if (r == 0 && !ok) {
		*st = MAIL_CHECK_WARN;
		snprintf(bad, badlen,
		         "%s is another domain and publishes no %s._report._dmarc.%s record: "
		         "receivers will not report there (RFC 7489 §7.1)",
		         at + 1, in->domain, at + 1);
	}
	return r;
}

/* rua= and ruf=: comma-separated URIs; the first problem found is reported. */
static int
check_uris(struct dns_resolver *dns, const struct mail_check_input *in, const char *list,
           enum mail_check_status *st, char *bad, size_t badlen, struct mail_check_report *out)
{
	size_t uris = 0;
	for (const char *p = list; *p && uris < MAIL_CHECK_NAMES_MAX; uris++) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0 && *st == MAIL_CHECK_OK) {
			int r = check_uri(dns, in, p, len, st, bad, badlen, out);
			if (r < 0)
				return r;
		}
		p += strcspn(p, ",");
	}
	return 0;
}

static int
row_rua(struct dns_resolver *dns, const struct mail_check_input *in, const struct dmarc_record *d,
        struct mail_check_report *out)
{
	enum mail_check_status st = MAIL_CHECK_OK;
	char bad[MAIL_CHECK_TEXT_MAX] = "";
	if (!d->rua[0])
		return mail_check_add(out, "dmarc.rua", MAIL_CHECK_WARN,
		                      "add rua=mailto:dmarc-reports@ your domain",
		                      "no rua=: you get no aggregate reports");
	int r = check_uris(dns, in, d->rua, &st, bad, sizeof(bad), out);
	r = r ?: check_uris(dns, in, d->ruf, &st, bad, sizeof(bad), out);
	if (r < 0)
		return r;
	if (st != MAIL_CHECK_OK)
		return mail_check_add(
		    out, "dmarc.rua", st,
		    "use mailto: addresses of your domain, or have the other domain "
		    "publish the _report._dmarc record",
		    "%s", bad);
	return mail_check_add(out, "dmarc.rua", MAIL_CHECK_OK, NULL, "reports go to %s%s%s", d->rua,
	                      d->ruf[0] ? ", failure reports to " : "", d->ruf);
}

static int
row_policy(const struct dmarc_record *d, struct mail_check_report *out)
{
	static const char tighten[] = "when the reports show all your mail passes, move to "
	                              "p=quarantine, then p=reject";
	if (d->p == DMARC_POLICY_NONE && !d->rua[0])
		return mail_check_add(
		    out, "dmarc.policy", MAIL_CHECK_WARN,
		    "add rua= to monitor, then tighten to p=quarantine or p=reject",
		    "p=none without rua=: neither enforced nor monitored");
	if (d->p == DMARC_POLICY_NONE)
		return mail_check_add(out, "dmarc.policy", MAIL_CHECK_OK, tighten,
		                      "p=none: monitoring only, receivers report but do not act");
	if (d->pct < 100)
		return mail_check_add(out, "dmarc.policy", MAIL_CHECK_WARN, "raise pct to 100",
		                      "p=%s applies to %u%% of failing mail only",
		                      dmarc_policy_name(d->p), d->pct);
	return mail_check_add(out, "dmarc.policy", MAIL_CHECK_OK, NULL, "p=%s",
	                      dmarc_policy_name(d->p));
}

static int
dmarc_rows(struct dns_resolver *dns, const struct mail_check_input *in, const struct dns_rr *rr,
           struct mail_check_report *out)
{
	struct dmarc_record d;
	static const char fix[] = "publish \"v=DMARC1; p=none; rua=mailto:dmarc-reports@DOMAIN\" "
	                          "(rampart mail setup prints it)";
	if (dmarc_record_parse(rr->u.txt.data, rr->u.txt.len, &d) < 0)
		return mail_check_add(out, "dmarc.syntax", MAIL_CHECK_FAIL, fix,
		                      "no valid p= tag (and no rua= to fall back on): receivers "
		                      "ignore the record (RFC 7489 §6.6.3)");
	int r = d.p_assumed ? mail_check_add(out, "dmarc.syntax", MAIL_CHECK_WARN, fix,
	                                     "invalid p= or sp=: p=none is assumed")
	                    : mail_check_add(out, "dmarc.syntax", MAIL_CHECK_OK, NULL, "parses");
	r = r ?: row_policy(&d, out);
	return r ?: row_rua(dns, in, &d, out);
}

int
mail_check_dmarc(struct dns_resolver *dns, const struct mail_check_input *in,
                 struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	char owner[DNS_NAME_MAX];
	size_t n = 0, first = 0;
	snprintf(owner, sizeof(owner), "_dmarc.%s", in->domain);
	int r = mail_check_query(dns, out, owner, DNS_T_TXT, &a);
	if (r < 0)
		return r;
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++)
		if (dmarc_record_is_dmarc(a.rr[i].u.txt.data, a.rr[i].u.txt.len) && n++ == 0)
			first = i;
	if (n == 0)
		return mail_check_add(
		    out, "dmarc.present", MAIL_CHECK_FAIL,
		    "publish \"v=DMARC1; p=none; rua=mailto:dmarc-reports@...\" at "
		    "_dmarc (rampart mail setup prints it)",
		    "no DMARC record at %s", owner);
	if (n > 1)
		return mail_check_add(out, "dmarc.present", MAIL_CHECK_FAIL, "keep one record",
		                      "%zu DMARC records at %s: receivers use none (RFC 7489 "
		                      "§6.6.3)",
		                      n, owner);
	r = mail_check_add(out, "dmarc.present", MAIL_CHECK_OK, NULL, "record at %s", owner);
	return r ?: dmarc_rows(dns, in, &a.rr[first], out);
}
