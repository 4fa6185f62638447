/* `rampart mail check`: the SPF and Sender ID rows. */
#include "core/cleanup.h"
#include "mail_check.h"
#include "spf_eval.h"
#include "spf_record.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* How deep include/redirect chains are followed: past the lookup limit already. */
#define WALK_DEPTH_MAX (SPF_LOOKUP_MAX + 2)

/* What following a policy's include and redirect chain found. */
struct spf_walk {
	unsigned lookups, voids, records, macros;
	bool cut;                         /* stopped at the record or depth bound */
	int all;                          /* the qualifier of the all that ends evaluation; -1 */
	char broken[MAIL_CHECK_TEXT_MAX]; /* the first include/redirect without a usable record */
	char void_name[DNS_NAME_MAX];     /* the first name that does not exist */
};

static bool
is_spf1(const struct dns_rr *rr)
{
	const char *s = rr->u.txt.data;
	return rr->u.txt.len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 &&
	       (rr->u.txt.len == 6 || s[6] == ' ');
}

static bool
is_spf2(const struct dns_rr *rr)
{
	return rr->u.txt.len >= 5 && strncasecmp(rr->u.txt.data, "spf2.", 5) == 0;
}

static size_t
count(const struct dns_answer *a, bool (*is)(const struct dns_rr *), size_t *first)
{
	size_t n = 0;
	for (size_t i = 0; a->status == DNS_OK && i < a->n; i++)
		if (a->rr[i].type == DNS_T_TXT && is(&a->rr[i]) && n++ == 0)
			*first = i;
	return n;
}

/* The name a term queries: 0 with name set, 1 for a macro (known only at evaluation). */
static int
target(const struct spf_record *rec, struct spf_span spec, const char *cur, char *name)
{
	const char *s = rec->text + spec.off;
	size_t n = spec.len;
	if (n == 0) {
		snprintf(name, DNS_NAME_MAX, "%s", cur);
		return 0;
	}
	if (memchr(s, '%', n))
		return 1;
	if (s[n - 1] == '.')
		n--;
	snprintf(name, DNS_NAME_MAX, "%.*s", (int)(n < DNS_NAME_MAX ? n : DNS_NAME_MAX - 1), s);
	return 0;
}

static void
note_void(struct spf_walk *w, const char *name)
{
	if (w->voids++ == 0)
		snprintf(w->void_name, sizeof(w->void_name), "%s", name);
}

static void
note_broken(struct spf_walk *w, const char *what, const char *name, const char *why)
{
	if (!w->broken[0])
		snprintf(w->broken, sizeof(w->broken), "%s:%s: %s", what, name, why);
}

/* The one v=spf1 record of name, parsed; *rec NULL with why set when there is none usable. */
static int
fetch(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w, const char *name,
      struct spf_record **rec, const char **why)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	struct spf_error err;
	size_t first = 0;
	*rec = NULL;
	int r = mail_check_query(dns, out, name, DNS_T_TXT, &a);
	if (r < 0)
		return r;
	size_t n = count(&a, is_spf1, &first);
	if (a.status != DNS_OK)
		note_void(w, name);
	if (n != 1) {
		*why = n == 0 ? "no SPF record (permerror)" : "two or more SPF records (permerror)";
		return 0;
	}
	r = spf_record_parse(a.rr[first].u.txt.data, a.rr[first].u.txt.len, rec, &err);
	if (r == -ENOMEM)
		return r;
	*why = r < 0 ? "a syntax error in its record (permerror)" : NULL;
	return 0;
}

static int walk(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w,
                const struct spf_record *rec, const char *cur, unsigned depth, bool top);

static int
follow(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w,
       const char *what, const char *name, unsigned depth, bool top)
{
	_cleanup_(spf_record_freep) struct spf_record *rec = NULL;
	const char *why = NULL;
	if (depth > WALK_DEPTH_MAX || w->records >= MAIL_CHECK_SPF_RECORDS_MAX) {
		w->cut = true;
		return 0;
	}
	w->records++;
	int r = fetch(dns, out, w, name, &rec, &why);
	if (r < 0)
		return r;
	if (!rec) {
		note_broken(w, what, name, why);
		return 0;
	}
	return walk(dns, out, w, rec, name, depth, top);
}

/* a, mx, exists: a name without the records asked for is a void lookup (§4.6.4). */
static int
probe(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w, uint8_t mech,
      const char *name)
{
	enum dns_type types[2] = {mech == SPF_M_MX ? DNS_T_MX : DNS_T_A, DNS_T_AAAA};
	size_t n = mech == SPF_M_A ? 2 : 1;
	for (size_t i = 0; i < n; i++) {
		_cleanup_(dns_answer_free) struct dns_answer a = {0};
		int r = mail_check_query(dns, out, name, types[i], &a);
		if (r < 0 || a.status == DNS_OK)
			return r;
	}
	note_void(w, name);
	return 0;
}

static int
term(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w,
     const struct spf_record *rec, const struct spf_term *t, const char *cur, unsigned depth)
{
	char name[DNS_NAME_MAX];
	w->lookups++;
	if (target(rec, t->spec, cur, name) != 0) {
		w->macros++;
		return 0;
	}
	switch (t->mech) {
	case SPF_M_INCLUDE:
		return follow(dns, out, w, "include", name, depth + 1, false);
	case SPF_M_A:
	case SPF_M_MX:
	case SPF_M_EXISTS:
		return probe(dns, out, w, t->mech, name);
	default: /* ptr: its names depend on the client address */
		return 0;
	}
}

static int
walk(struct dns_resolver *dns, struct mail_check_report *out, struct spf_walk *w,
     const struct spf_record *rec, const char *cur, unsigned depth, bool top)
{
	char name[DNS_NAME_MAX];
	for (size_t i = 0; i < rec->n; i++) {
		const struct spf_term *t = &rec->terms[i];
		if (t->mech == SPF_M_ALL) {
			/* evaluation ends here: later terms and redirect= never run */
			if (top)
				w->all = t->qual;
			return 0;
		}
		if (t->mech == SPF_M_IP4 || t->mech == SPF_M_IP6)
			continue;
		int r = term(dns, out, w, rec, t, cur, depth);
		if (r < 0)
			return r;
	}
	if (!rec->has_redirect)
		return 0;
	w->lookups++;
	if (target(rec, rec->redirect, cur, name) != 0) {
		w->macros++;
		return 0;
	}
	return follow(dns, out, w, "redirect", name, depth + 1, top);
}

static int
row_lookups(const struct spf_walk *w, struct mail_check_report *out)
{
	char macros[64] = "";
	if (w->macros)
		snprintf(macros, sizeof(macros), "; %u with macros not followed", w->macros);
	if (w->lookups > SPF_LOOKUP_MAX || w->cut)
		return mail_check_add(
		    out, "spf.lookups", MAIL_CHECK_FAIL,
		    "flatten includes into ip4:/ip6: terms, or drop some, until at "
		    "most 10 terms query DNS",
		    "%s%u DNS-querying terms through include/redirect%s: over the "
		    "limit of 10 (RFC 7208 §4.6.4), receivers return permerror",
		    w->cut ? "at least " : "", w->lookups,
		    w->cut ? " (a loop or too deep)" : macros);
	return mail_check_add(out, "spf.lookups", MAIL_CHECK_OK, NULL,
	                      "%u of at most 10 DNS-querying terms (RFC 7208 §4.6.4)%s", w->lookups,
	                      macros);
}

static int
row_voids(const struct spf_walk *w, struct mail_check_report *out)
{
	if (w->voids == 0)
		return mail_check_add(out, "spf.void-lookups", MAIL_CHECK_OK, NULL,
		                      "every name in the policy exists");
	return mail_check_add(out, "spf.void-lookups",
	                      w->voids > SPF_VOID_MAX ? MAIL_CHECK_FAIL : MAIL_CHECK_WARN,
	                      "remove the terms naming hosts that do not exist",
	                      "%u name%s without records (first: %s); more than 2 is a permerror "
	                      "(RFC 7208 §4.6.4)",
	                      w->voids, w->voids == 1 ? "" : "s", w->void_name);
}

static int
row_all(const struct spf_walk *w, const char *domain, struct mail_check_report *out)
{
	static const char fix[] = "end the record with -all (~all while you test)";
	switch (w->all) {
	case SPF_PASS:
		return mail_check_add(out, "spf.all", MAIL_CHECK_FAIL, fix,
		                      "+all: every host on the internet may send as %s", domain);
	case SPF_NEUTRAL:
		return mail_check_add(
		    out, "spf.all", MAIL_CHECK_WARN, fix,
		    "?all: hosts not listed get neutral, as if there were no policy");
	case SPF_SOFTFAIL:
		return mail_check_add(out, "spf.all", MAIL_CHECK_OK,
		                      "-all once every sending host is listed",
		                      "~all: hosts not listed soft-fail");
	case SPF_FAIL:
		return mail_check_add(out, "spf.all", MAIL_CHECK_OK, NULL,
		                      "-all: hosts not listed fail");
	default:
		return mail_check_add(out, "spf.all", MAIL_CHECK_WARN, fix,
		                      "no all: hosts not listed get neutral");
	}
}

static int
row_length(const struct dns_rr *rr, struct mail_check_report *out)
{
	if (rr->u.txt.len > MAIL_CHECK_SPF_LEN_WARN)
		return mail_check_add(out, "spf.length", MAIL_CHECK_WARN,
		                      "shorten the record (move hosts into an include)",
		                      "%zu bytes: over 450, the answer may not fit a 512-byte UDP "
		                      "reply (RFC 7208 §3.4)",
		                      rr->u.txt.len);
	return mail_check_add(out, "spf.length", MAIL_CHECK_OK, NULL, "%zu bytes%s", rr->u.txt.len,
	                      rr->u.txt.len > 255 ? ", published as several strings (RFC 7208 §3.3)"
	                                          : "");
}

/* --ip: the real evaluator, as a receiver runs it for postmaster@domain. */
static int
row_ip(struct dns_resolver *dns, const struct mail_check_input *in, struct mail_check_report *out)
{
	char sender[DNS_NAME_MAX + 16];
	struct spf_outcome o;
	snprintf(sender, sizeof(sender), "postmaster@%s", in->domain);
	struct spf_request req = {.ip = in->ip,
	                          .sender = sender,
	                          .helo = in->domain,
	                          .identity = SPF_ID_MAILFROM,
	                          .scope = SPF_SCOPE_SPF1,
	                          .budget_ms = in->budget_ms};
	int r = spf_eval_check(dns, &req, &o);
	if (r < 0)
		return r;
	if (o.result == SPF_TEMPERROR) {
		snprintf(out->dns_error, sizeof(out->dns_error), "SPF evaluation for %s: %s",
		         o.client_ip, o.reason ? o.reason : "temporary error");
		return -EAGAIN;
	}
	if (o.result == SPF_PASS)
		return mail_check_add(out, "spf.ip", MAIL_CHECK_OK, NULL, "%s passes (%s)",
		                      o.client_ip, o.mechanism);
	char fix[MAIL_CHECK_TEXT_MAX];
	snprintf(fix, sizeof(fix), "add %s:%s to the record",
	         strchr(o.client_ip, ':') ? "ip6" : "ip4", o.client_ip);
	return mail_check_add(out, "spf.ip", MAIL_CHECK_FAIL, fix, "%s gets %s%s%s%s%s",
	                      o.client_ip, spf_result_name(o.result), o.reason ? ": " : "",
	                      o.reason ? o.reason : "", o.problem[0] ? " " : "", o.problem);
}

static int
check_policy(struct dns_resolver *dns, const struct mail_check_input *in,
             const struct spf_record *rec, struct mail_check_report *out)
{
	struct spf_walk w = {.all = -1};
	int r = walk(dns, out, &w, rec, in->domain, 0, true);
	if (r < 0)
		return r;
	r = row_lookups(&w, out) ?: row_voids(&w, out);
	if (r == 0 && w.broken[0])
		r = mail_check_add(out, "spf.include", MAIL_CHECK_FAIL,
		                   "point include/redirect at a domain with one valid SPF record",
		                   "%s", w.broken);
	else if (r == 0 && w.records == 0)
		r = mail_check_add(out, "spf.include", MAIL_CHECK_OK, NULL,
		                   "no include or redirect");
	else if (r == 0)
		r = mail_check_add(out, "spf.include", MAIL_CHECK_OK, NULL,
		                   "%u include/redirect record%s, each valid", w.records,
		                   w.records == 1 ? "" : "s");
	r = r ?: row_all(&w, in->domain, out);
	return r || !in->have_ip ? r : row_ip(dns, in, out);
}

static int
check_record(struct dns_resolver *dns, const struct mail_check_input *in, const struct dns_rr *rr,
             struct mail_check_report *out)
{
	_cleanup_(spf_record_freep) struct spf_record *rec = NULL;
	struct spf_error err;
	int r = spf_record_parse(rr->u.txt.data, rr->u.txt.len, &rec, &err);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return mail_check_add(
		    out, "spf.syntax", MAIL_CHECK_FAIL,
		    "correct the record (RFC 7208 §12); `rampart spf check` shows "
		    "the same error",
		    "%s%s%.*s%s", err.msg ? err.msg : "syntax error", err.at.len ? " at '" : "",
		    (int)(err.at.len > 80 ? 80 : err.at.len), rr->u.txt.data + err.at.off,
		    err.at.len ? "'" : "");
	r = mail_check_add(out, "spf.syntax", MAIL_CHECK_OK, NULL, "parses: %zu mechanism%s%s",
	                   rec->n, rec->n == 1 ? "" : "s",
	                   rec->has_redirect ? " and redirect=" : "");
	r = r ?: row_length(rr, out);
	return r ?: check_policy(dns, in, rec, out);
}

/* The domain's TXT records in *a; *n of them are what is() picks, the first at *first. */
static int
domain_txt(struct dns_resolver *dns, const struct mail_check_input *in,
           struct mail_check_report *out, bool (*is)(const struct dns_rr *), struct dns_answer *a,
           size_t *n, size_t *first)
{
	int r = mail_check_query(dns, out, in->domain, DNS_T_TXT, a);
	*n = r == 0 ? count(a, is, first) : 0;
	return r;
}

int
mail_check_spf(struct dns_resolver *dns, const struct mail_check_input *in,
               struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	size_t first = 0, n;
	int r = domain_txt(dns, in, out, is_spf1, &a, &n, &first);
	if (r < 0)
		return r;
	if (n == 0)
		return mail_check_add(out, "spf.present", MAIL_CHECK_FAIL,
		                      "publish \"v=spf1 ip4:YOUR-SERVER -all\" (rampart mail setup "
		                      "prints it)",
		                      "no v=spf1 TXT record at %s", in->domain);
	r = mail_check_add(out, "spf.present", MAIL_CHECK_OK, NULL, "v=spf1 TXT record at %s",
	                   in->domain);
	if (r == 0 && n > 1)
		return mail_check_add(
		    out, "spf.single", MAIL_CHECK_FAIL, "merge them into one record",
		    "%zu v=spf1 records: receivers return permerror (RFC 7208 §4.5)", n);
	r = r ?: mail_check_add(out, "spf.single", MAIL_CHECK_OK, NULL, "exactly one");
	return r ?: check_record(dns, in, &a.rr[first], out);
}

static int
senderid_rows(const struct dns_answer *a, size_t n, struct mail_check_report *out)
{
	static const char fix[] = "correct the spf2.0 record, or remove it (receivers then use "
	                          "v=spf1)";
	struct spf_error err;
	for (size_t i = 0; i < a->n; i++) {
		_cleanup_(spf_record_freep) struct spf_record *rec = NULL;
		if (a->rr[i].type != DNS_T_TXT || !is_spf2(&a->rr[i]))
			continue;
		int r = spf_record_parse(a->rr[i].u.txt.data, a->rr[i].u.txt.len, &rec, &err);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return mail_check_add(out, "senderid.syntax", MAIL_CHECK_FAIL, fix,
			                      "spf2.0 record: %s",
			                      err.msg ? err.msg : "syntax error");
	}
	if (spf_record_select(a, SPF_SCOPE_PRA, &err) == -ENOTUNIQ ||
	    spf_record_select(a, SPF_SCOPE_MFROM, &err) == -ENOTUNIQ)
		return mail_check_add(out, "senderid.syntax", MAIL_CHECK_FAIL, fix,
		                      "two records for one Sender ID scope (pra or mfrom): "
		                      "permerror (RFC 4406 §4.4)");
	return mail_check_add(out, "senderid.syntax", MAIL_CHECK_OK, NULL,
	                      "%zu spf2.0 record%s parse", n, n == 1 ? "" : "s");
}

int
mail_check_senderid(struct dns_resolver *dns, const struct mail_check_input *in,
                    struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	size_t first = 0, n;
	int r = domain_txt(dns, in, out, is_spf2, &a, &n, &first);
	if (r < 0)
		return r;
	if (n == 0)
		return mail_check_add(out, "senderid.syntax", MAIL_CHECK_OK, NULL,
		                      "no spf2.0 record: SPF serves Sender ID (RFC 4406 §3.4)");
	return senderid_rows(&a, n, out);
}
