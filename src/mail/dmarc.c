/*
 * DMARC evaluation (RFC 7489). Sections cited are RFC 7489's unless said otherwise.
 */
#include "dmarc.h"

#include "core/cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX_LEN 63

struct span {
	const char *p;
	size_t n;
};

static bool
wsp(char c)
{
	return c == ' ' || c == '\t';
}

static struct span
trim(struct span s)
{
	while (s.n > 0 && wsp(s.p[0]))
		s.p++, s.n--;
	while (s.n > 0 && wsp(s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool
span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

/* Splits "tag = value" (already cut at ';'); false when there is no '='. */
static bool
split_tag(struct span seg, struct span *tag, struct span *value)
{
	const char *eq = memchr(seg.p, '=', seg.n);
	if (!eq)
		return false;
	*tag = trim((struct span){seg.p, (size_t)(eq - seg.p)});
	*value = trim((struct span){eq + 1, seg.n - (size_t)(eq + 1 - seg.p)});
	return true;
}

/* The next ';'-separated segment of *rest. */
static bool
next_segment(struct span *rest, struct span *seg)
{
	if (rest->p == NULL)
		return false;
	const char *semi = memchr(rest->p, ';', rest->n);
	if (!semi) {
		*seg = *rest;
		rest->p = NULL;
		return true;
	}
	*seg = (struct span){rest->p, (size_t)(semi - rest->p)};
	*rest = (struct span){semi + 1, rest->n - (size_t)(semi + 1 - rest->p)};
	return true;
}

/*
 * §6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31, first in the record,
 * then dmarc-sep or the end. The value is case-sensitive ("MUST match precisely", §6.3); the
 * tag name, a quoted ABNF string, is not.
 */
bool
dmarc_record_is_dmarc(const char *txt, size_t len)
{
	if (len == 0 || (txt[0] != 'v' && txt[0] != 'V'))
		return false;
	struct span rest = {txt, len}, seg, tag, value;
	next_segment(&rest, &seg);
	if (!split_tag(seg, &tag, &value) || !span_is(tag, "v"))
		return false;
	return value.n == 6 && memcmp(value.p, "DMARC1", 6) == 0;
}

static bool
parse_policy(struct span v, enum dmarc_policy *p)
{
	/* §6.4: ( "none" / "quarantine" / "reject" ), nothing shorter */
	if (span_is(v, "none"))
		*p = DMARC_POLICY_NONE;
	else if (span_is(v, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (span_is(v, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

static bool
parse_align(struct span v, enum dmarc_align *a)
{
	if (span_is(v, "r"))
		*a = DMARC_ALIGN_RELAXED;
	else if (span_is(v, "s"))
		*a = DMARC_ALIGN_STRICT;
	else
		return false;
	return true;
}

/* §6.4 dmarc-percent = "pct" *WSP "=" *WSP 1*3DIGIT, 0..100 (§6.3) */
static bool
parse_pct(struct span v, unsigned *pct)
{
	if (v.n < 1 || v.n > 3)
		return false;
	unsigned n = 0;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (unsigned)(v.p[i] - '0');
	}
	if (n > 100)
		return false;
	*pct = n;
	return true;
}

/* §6.4 dmarc-ainterval = "ri" *WSP "=" *WSP 1*DIGIT, a 32-bit unsigned integer (§6.3) */
static bool
parse_ri(struct span v, uint32_t *ri)
{
	if (v.n < 1 || v.n > 10)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	if (n > UINT32_MAX)
		return false;
	*ri = (uint32_t)n;
	return true;
}

/* Each ':'-separated item of v is one of the words in allowed ("0", "1", "d", "s"). */
static bool
colon_list_ok(struct span v, const char *const *allowed)
{
	struct span rest = v;
	if (v.n == 0)
		return false;
	while (rest.p) {
		const char *colon = memchr(rest.p, ':', rest.n);
		struct span item =
		    trim((struct span){rest.p, colon ? (size_t)(colon - rest.p) : rest.n});
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok |= span_is(item, allowed[i]);
		if (!ok)
			return false;
		rest = colon ? (struct span){colon + 1, rest.n - (size_t)(colon + 1 - rest.p)}
		             : (struct span){NULL, 0};
	}
	return true;
}

/* RFC 3986 §3.1: scheme ":" and something after it. */
static bool
uri_ok(struct span u)
{
	size_t i = 0;
	if (u.n == 0 || !((u.p[0] | 0x20) >= 'a' && (u.p[0] | 0x20) <= 'z'))
		return false;
	while (i < u.n && u.p[i] != ':') {
		char c = u.p[i];
		bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
		if (!alpha && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
			return false;
		i++;
	}
	if (i + 1 >= u.n)
		return false;
	for (i++; i < u.n; i++)
		if ((unsigned char)u.p[i] <= ' ' || u.p[i] == 0x7f)
			return false;
	return true;
}

/* §6.4 dmarc-auri: dmarc-uri *(*WSP "," *WSP dmarc-uri); whether one URI is valid. */
static bool
uris_have_valid(struct span v)
{
	struct span rest = v;
	while (rest.p && rest.n) {
		const char *comma = memchr(rest.p, ',', rest.n);
		struct span u =
		    trim((struct span){rest.p, comma ? (size_t)(comma - rest.p) : rest.n});
		/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]: the size limit aside
		 */
		const char *bang = memchr(u.p, '!', u.n);
		if (bang)
			u.n = (size_t)(bang - u.p);
		if (uri_ok(u))
			return true;
		rest = comma ? (struct span){comma + 1, rest.n - (size_t)(comma + 1 - rest.p)}
		             : (struct span){NULL, 0};
	}
	return false;
}

static void
copy_span(char *dst, size_t size, struct span v)
{
	size_t n = v.n < size - 1 ? v.n : size - 1;
	memcpy(dst, v.p, n);
	dst[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (dst[i] == '\0')
			dst[i] = ' ';
}

struct parse_state {
	bool p_seen, p_valid, sp_valid, rua_valid;
};

/*
 * One tag after v. §6.3: "Unknown tags MUST be ignored. Syntax errors in the remainder of the
 * record SHOULD be discarded in favor of default values (if any) or ignored outright": a bad
 * pct, adkim, aspf, ri, fo or rf keeps the default. A repeated tag: the later one wins.
 */
static void
parse_tag(struct span tag, struct span v, struct dmarc_record *rec, struct parse_state *st)
{
	static const char *const fo_words[] = {"0", "1", "d", "s", NULL};
	static const char *const rf_words[] = {"afrf", NULL};
	if (span_is(tag, "p")) {
		st->p_seen = true;
		st->p_valid = parse_policy(v, &rec->p);
	} else if (span_is(tag, "sp")) {
		rec->has_sp = true;
		st->sp_valid = parse_policy(v, &rec->sp);
	} else if (span_is(tag, "pct")) {
		if (!parse_pct(v, &rec->pct))
			rec->pct = 100;
	} else if (span_is(tag, "adkim")) {
		if (!parse_align(v, &rec->adkim))
			rec->adkim = DMARC_ALIGN_RELAXED;
	} else if (span_is(tag, "aspf")) {
		if (!parse_align(v, &rec->aspf))
			rec->aspf = DMARC_ALIGN_RELAXED;
	} else if (span_is(tag, "ri")) {
		if (!parse_ri(v, &rec->ri))
			rec->ri = 86400;
	} else if (span_is(tag, "fo")) {
		if (colon_list_ok(v, fo_words))
			copy_span(rec->fo, sizeof(rec->fo), v);
	} else if (span_is(tag, "rf")) {
		if (colon_list_ok(v, rf_words))
			copy_span(rec->rf, sizeof(rec->rf), v);
	} else if (span_is(tag, "rua")) {
		copy_span(rec->rua, sizeof(rec->rua), v);
		st->rua_valid = uris_have_valid(v);
	} else if (span_is(tag, "ruf")) {
		copy_span(rec->ruf, sizeof(rec->ruf), v);
	}
}

static void
record_defaults(struct dmarc_record *rec)
{
	*rec = (struct dmarc_record){.p = DMARC_POLICY_NONE, .pct = 100, .ri = 86400};
	memcpy(rec->fo, "0", 2);
	memcpy(rec->rf, "afrf", 5);
}

int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec)
{
	record_defaults(rec);
	if (!dmarc_record_is_dmarc(txt, len))
		return -ENOMSG;
	struct span rest = {txt, len}, seg, tag, value;
	struct parse_state st = {.sp_valid = true};
	next_segment(&rest, &seg); /* v=DMARC1 */
	while (next_segment(&rest, &seg)) {
		seg = trim(seg);
		if (seg.n == 0 || !split_tag(seg, &tag, &value))
			continue; /* "v=DMARC1; p=none;" ends with an empty one */
		parse_tag(tag, value, rec, &st);
	}
	if (!rec->has_sp || !st.sp_valid)
		rec->sp = rec->p;
	if (st.p_valid && st.sp_valid)
		return 0;
	/*
	 * §6.6.3 step 6: no valid p, or an invalid sp. With a syntactically valid rua URI, act as
	 * if "v=DMARC1; p=none" was retrieved (6.1); otherwise no DMARC processing (6.2).
	 */
	if (!st.rua_valid)
		return -EINVAL;
	rec->p = rec->sp = DMARC_POLICY_NONE;
	rec->has_sp = false;
	rec->p_assumed = true;
	return 0;
}

/* "Example.COM." -> "example.com"; false for what cannot be a domain name. */
static bool
normalize(const char *in, char out[DMARC_DOMAIN_MAX])
{
	size_t len = in ? strlen(in) : 0;
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len >= DMARC_DOMAIN_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= ' ' || c == 0x7f || c == '\\' || c == '@')
			return false;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > LABEL_MAX_LEN) {
			return false;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[len] = '\0';
	return label > 0;
}

/* The Organizational Domain of a normalized name; the name itself when it is a public suffix
 * (it has none, §3.2) so that relaxed alignment falls back to equality. */
static void
org_of(const struct dmarc_psl *psl, const char *name, char out[DMARC_DOMAIN_MAX])
{
	if (dmarc_psl_org_domain(psl, name, out, DMARC_DOMAIN_MAX) < 0)
		memcpy(out, name, strlen(name) + 1);
}

bool
dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b, enum dmarc_align mode)
{
	char na[DMARC_DOMAIN_MAX], nb[DMARC_DOMAIN_MAX];
	if (!normalize(a, na) || !normalize(b, nb))
		return false;
	if (strcmp(na, nb) == 0)
		return true;
	if (mode == DMARC_ALIGN_STRICT) /* §3.1.1, §3.1.2: exact match only */
		return false;
	char oa[DMARC_DOMAIN_MAX], ob[DMARC_DOMAIN_MAX];
	org_of(psl, na, oa);
	org_of(psl, nb, ob);
	return strcmp(oa, ob) == 0;
}

enum fetch {
	FETCH_NONE, /* no DMARC record at the name */
	FETCH_ONE,  /* exactly one: *txt */
	FETCH_MANY, /* more than one: §6.6.3 step 5 */
	FETCH_TEMP, /* TIMEOUT / SERVFAIL */
};

/* §6.6.3 steps 1-2 (or 3-4) for one domain: the TXT records at _dmarc.<domain> that start
 * with v=DMARC1. */
static int
fetch(struct dns_resolver *dns, const char *domain, struct dmarc_outcome *out, char **txt,
      size_t *txt_len, enum fetch *res)
{
	char name[DMARC_DOMAIN_MAX + 8];
	struct dns_answer a = {0};
	*res = FETCH_NONE;
	int n = snprintf(name, sizeof(name), "_dmarc.%s", domain);
	if (n < 0 || (size_t)n >= DNS_NAME_MAX)
		return 0; /* no such name can exist, so it holds no record */
	int e = dns_query(dns, name, DNS_T_TXT, &a);
	if (e == -EINVAL)
		return 0;
	if (e < 0)
		return e;
	if (a.status == DNS_TIMEOUT || a.status == DNS_SERVFAIL) {
		snprintf(out->reason, sizeof(out->reason), "DNS %s for %.100s",
		         dns_status_name(a.status), name);
		*res = FETCH_TEMP;
	}
	size_t found = 0;
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++) {
		if (a.rr[i].type != DNS_T_TXT ||
		    !dmarc_record_is_dmarc(a.rr[i].u.txt.data, a.rr[i].u.txt.len))
			continue;
		if (found++ == 0) {
			*txt = a.rr[i].u.txt.data;
			*txt_len = a.rr[i].u.txt.len;
			a.rr[i].u.txt.data = NULL; /* ours now */
		}
	}
	dns_answer_free(&a);
	if (found > 1) {
		snprintf(out->reason, sizeof(out->reason), "%zu DMARC records at %.80s", found,
		         name);
		*res = FETCH_MANY;
	} else if (found == 1) {
		memcpy(out->policy_domain, domain, strlen(domain) + 1);
		*res = FETCH_ONE;
	}
	return 0;
}

/* §6.6.3 steps 1-5: the one record that applies, if any, in *txt (caller frees). */
static int
discover(struct dns_resolver *dns, struct dmarc_outcome *out, char **txt, size_t *len,
         enum fetch *res)
{
	int e = fetch(dns, out->from_domain, out, txt, len, res);
	if (e < 0 || *res != FETCH_NONE)
		return e;
	/* step 3: the Organizational Domain, if different */
	if (strcmp(out->org_domain, out->from_domain) == 0)
		return 0;
	return fetch(dns, out->org_domain, out, txt, len, res);
}

static enum dmarc_policy
lesser(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

static void
evaluate(const struct dmarc_psl *psl, const struct dmarc_input *in, struct dmarc_outcome *out)
{
	const struct dmarc_record *rec = &out->rec;
	out->spf_aligned = in->spf_pass && in->spf_domain &&
	                   dmarc_aligned(psl, out->from_domain, in->spf_domain, rec->aspf);
	const char *dkim_d = NULL;
	for (size_t i = 0; i < in->n_dkim && !dkim_d; i++)
		if (in->dkim[i].pass && in->dkim[i].domain &&
		    dmarc_aligned(psl, out->from_domain, in->dkim[i].domain, rec->adkim))
			dkim_d = in->dkim[i].domain;
	out->dkim_aligned = dkim_d != NULL;
	/* sp: the record came from the Organizational Domain for a subdomain (§6.3, §6.6.3) */
	bool sub = strcmp(out->policy_domain, out->from_domain) != 0;
	out->policy = sub ? rec->sp : rec->p;
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RESULT_PASS;
		out->disposition = DMARC_POLICY_NONE;
		snprintf(out->reason, sizeof(out->reason), "aligned %s pass%s%.80s",
		         out->spf_aligned ? "SPF" : "DKIM",
		         dkim_d && !out->spf_aligned ? " d=" : "",
		         dkim_d && !out->spf_aligned ? dkim_d : "");
		return;
	}
	out->result = DMARC_RESULT_FAIL;
	/* §6.6.4 and pct in §6.3: mail not sampled gets the next policy down */
	out->disposition = in->roll < rec->pct ? out->policy : lesser(out->policy);
	snprintf(out->reason, sizeof(out->reason), "no aligned SPF or DKIM pass%s",
	         out->disposition != out->policy ? " (pct sampling lowered the policy)" : "");
}

static void
outcome_init(struct dmarc_outcome *out)
{
	*out = (struct dmarc_outcome){.result = DMARC_RESULT_NONE};
	record_defaults(&out->rec);
}

int
dmarc_check(struct dns_resolver *dns, const struct dmarc_psl *psl, const struct dmarc_input *in,
            struct dmarc_outcome *out)
{
	outcome_init(out);
	if (!in->from_domain || !normalize(in->from_domain, out->from_domain) || in->roll > 99 ||
	    (in->n_dkim > 0 && !in->dkim)) {
		out->from_domain[0] = '\0';
		out->result = DMARC_RESULT_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "unusable input (From domain or roll)");
		return -EINVAL;
	}
	org_of(psl, out->from_domain, out->org_domain);

	_cleanup_free_ char *txt = NULL;
	size_t len = 0;
	enum fetch res;
	int e = discover(dns, out, &txt, &len, &res);
	if (e < 0) {
		out->result = DMARC_RESULT_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "internal error: %s", strerror(-e));
		return e;
	}
	switch (res) {
	case FETCH_TEMP:
		out->result = DMARC_RESULT_TEMPERROR;
		return 0;
	case FETCH_MANY: /* step 5: DMARC processing is not applied */
		out->policy_domain[0] = '\0';
		return 0;
	case FETCH_NONE:
		snprintf(out->reason, sizeof(out->reason), "no DMARC record");
		return 0;
	case FETCH_ONE:
		break;
	}
	if (dmarc_record_parse(txt, len, &out->rec) < 0) {
		/* step 6.2; RFC 8601 §2.7.1 names this permerror */
		out->result = DMARC_RESULT_PERMERROR;
		snprintf(out->reason, sizeof(out->reason),
		         "record at _dmarc.%.60s: no valid p (or bad sp) and no valid rua",
		         out->policy_domain);
		record_defaults(&out->rec);
		return 0;
	}
	out->has_record = true;
	evaluate(psl, in, out);
	return 0;
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE:
		return "none";
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

/* A domain as an RFC 8601 pvalue: bare when made of letters, digits, '.', '-', '_' and
 * UTF-8; else a quoted-string. */
static bool
bare_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

struct text {
	char *p;
	size_t len, cap;
	bool over;
};

static void
put_s(struct text *t, const char *s)
{
	for (; *s; s++) {
		if (t->len + 1 >= t->cap) {
			t->over = true;
			return;
		}
		t->p[t->len++] = *s;
	}
}

int
dmarc_authres(const struct dmarc_outcome *o, char *buf, size_t len)
{
	struct text t = {buf, 0, len, len == 0};
	put_s(&t, "dmarc=");
	put_s(&t, dmarc_result_name(o->result));
	if (o->has_record) {
		put_s(&t, " (p=");
		put_s(&t, dmarc_policy_name(o->rec.p));
		put_s(&t, " sp=");
		put_s(&t, dmarc_policy_name(o->rec.sp));
		put_s(&t, " dis=");
		put_s(&t, dmarc_policy_name(o->disposition));
		put_s(&t, ")");
	}
	if (o->from_domain[0]) {
		put_s(&t, " header.from=");
		bool bare = bare_ok(o->from_domain);
		if (!bare)
			put_s(&t, "\"");
		for (const char *s = o->from_domain; *s && !t.over; s++) {
			char c[3] = {*s, 0, 0};
			if (*s == '"' || *s == '\\')
				c[0] = '\\', c[1] = *s;
			put_s(&t, c);
		}
		if (!bare)
			put_s(&t, "\"");
	}
	if (len)
		buf[t.len] = '\0';
	return t.over ? -ENOBUFS : 0;
}
