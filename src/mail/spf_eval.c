#include "spf_eval.h"

#include "core/cleanup.h"
#include "spf_macro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One check_host() run: the request, the counters of §4.6.4 and the outcome being built. */
struct spf_ctx {
	struct dns_resolver *dns;
	const struct spf_request *req;
	struct spf_outcome *out;
	struct net_addr ip; /* IPv4-mapped made IPv4 */
	struct spf_macro_vars vars;
	uint64_t deadline_ms;
	unsigned depth; /* for the trace */
	bool p_done;
	char p[DNS_NAME_MAX];
};

/* What evaluating a term (or a record) came to. */
enum {
	T_NOMATCH = 0,
	T_MATCH = 1,
	T_ERROR = -1, /* c->out->result, reason and problem say which */
};

/* The coarse clock is enough for a budget of seconds and costs less per query. */
static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
copy_text(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Records the first error of the check; later ones are consequences. */
static int
fail(struct spf_ctx *c, enum spf_result r, const char *reason, const char *problem, size_t plen)
{
	if (c->out->result != SPF_PERMERROR && c->out->result != SPF_TEMPERROR) {
		c->out->result = r;
		c->out->reason = reason;
		copy_text(c->out->problem, sizeof(c->out->problem), problem ? problem : "",
		          problem ? plen : 0);
	}
	return T_ERROR;
}

static int
fail_str(struct spf_ctx *c, enum spf_result r, const char *reason, const char *problem)
{
	return fail(c, r, reason, problem, problem ? strlen(problem) : 0);
}

/* Labels of 1..63 bytes, 253 characters at most: something DNS can be asked about. */
static bool
name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.') {
			if (++label > 63)
				return false;
		} else if (label == 0) {
			return false;
		} else {
			label = 0;
		}
	}
	return true;
}

bool
spf_eval_domain_ok(const char *domain)
{
	size_t len = domain ? strlen(domain) : 0, label = 0;
	bool dot = false;
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || domain[0] == '[')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)domain[i];
		if (ch < 0x21 || ch > 0x7e)
			return false;
		if (ch != '.') {
			if (++label > 63)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
		dot = true;
	}
	return label > 0 && dot;
}

static void
trace(struct spf_ctx *c, enum spf_trace_kind kind, const char *text, size_t len,
      const struct spf_trace *extra)
{
	struct spf_trace t = extra ? *extra : (struct spf_trace){0};
	t.kind = kind;
	t.depth = c->depth;
	t.text = text;
	t.len = len;
	c->req->trace(c->req->trace_arg, &t);
}

#define TRACE(c, ...)                                                                              \
	do {                                                                                       \
		if ((c)->req->trace)                                                               \
			trace(c, __VA_ARGS__);                                                     \
	} while (0)

/*
 * One DNS query within the budget. A name DNS cannot carry is answered as not existing, as
 * §4.3 does for the initial domain. 0, or T_ERROR (temperror) when the budget is spent.
 */
static int
query(struct spf_ctx *c, const char *name, enum dns_type type, struct dns_answer *a)
{
	*a = (struct dns_answer){.status = DNS_NXDOMAIN};
	if (!name_ok(name))
		return 0;
	if (now_ms() >= c->deadline_ms) {
		TRACE(c, SPF_TRACE_QUERY, name, strlen(name), &(struct spf_trace){.type = type});
		return fail_str(c, SPF_TEMPERROR, "time limit for the check exceeded", name);
	}
	c->out->queries++;
	int r = dns_query(c->dns, name, type, a);
	TRACE(c, SPF_TRACE_QUERY, name, strlen(name),
	      &(struct spf_trace){.type = type, .answer = r == 0 ? a : NULL});
	if (r == -EINVAL) {
		*a = (struct dns_answer){.status = DNS_NXDOMAIN};
		return 0;
	}
	if (r < 0)
		return fail_str(c, SPF_TEMPERROR, "resolver failure", name);
	return 0;
}

static bool
dns_temporary(const struct dns_answer *a)
{
	return a->status == DNS_TIMEOUT || a->status == DNS_SERVFAIL;
}

static int
dns_error(struct spf_ctx *c, const struct dns_answer *a, const char *name)
{
	uint64_t deadline = dns_deadline_get();
	if (a->status == DNS_TIMEOUT && deadline && dns_monotonic_ms() >= deadline)
		return fail_str(c, SPF_TEMPERROR, "time limit for the check exceeded", name);
	return fail_str(c, SPF_TEMPERROR, a->status == DNS_TIMEOUT ? "DNS timeout" : "DNS failure",
	                name);
}

/* A DNS-querying term (§4.6.4): the eleventh is a permerror. */
static int
count_lookup(struct spf_ctx *c, const char *term, size_t len)
{
	if (++c->out->lookups > SPF_LOOKUP_MAX)
		return fail(c, SPF_PERMERROR, "Too many DNS lookups", term, len);
	return 0;
}

/* A term whose lookup found nothing (§4.6.4): the third is a permerror. */
static int
count_void(struct spf_ctx *c, const struct dns_answer *a, const char *name)
{
	if (a->status != DNS_NXDOMAIN && a->status != DNS_NODATA)
		return 0;
	if (++c->out->voids > SPF_VOID_MAX)
		return fail_str(c, SPF_PERMERROR, "Void lookup limit of 2 exceeded", name);
	return 0;
}

static enum dns_type
addr_type(const struct spf_ctx *c)
{
	return c->ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
}

/* Is the client inside bytes/prefix (an address of the client's family)? */
static bool
prefix_match(const struct spf_ctx *c, const uint8_t *bytes, unsigned prefix)
{
	const uint8_t *ip = c->ip.u.bytes;
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(ip, bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return ((ip[full] ^ bytes[full]) & mask) == 0;
}

static bool
addr_match(const struct spf_ctx *c, const struct net_addr *a, unsigned cidr4, unsigned cidr6)
{
	if (a->family != c->ip.family)
		return false;
	return prefix_match(c, a->u.bytes, a->family == AF_INET6 ? cidr6 : cidr4);
}

static bool
answer_matches(const struct spf_ctx *c, const struct dns_answer *a, unsigned cidr4, unsigned cidr6)
{
	for (size_t i = 0; a->status == DNS_OK && i < a->n; i++)
		if ((a->rr[i].type == DNS_T_A || a->rr[i].type == DNS_T_AAAA) &&
		    addr_match(c, &a->rr[i].u.addr, cidr4, cidr6))
			return true;
	return false;
}

/* The target of a term: its domain-spec expanded, or the current domain. */
static int
target(struct spf_ctx *c, const struct spf_record *rec, struct spf_span spec, const char *cur,
       char out[DNS_NAME_MAX])
{
	if (spec.len == 0) {
		copy_text(out, DNS_NAME_MAX, cur, strlen(cur));
		return 0;
	}
	/* no macro: the name as written, less a final dot (the grammar was checked at parse) */
	if (!memchr(rec->text + spec.off, '%', spec.len) && spec.len < DNS_NAME_MAX) {
		size_t n = spec.len - (rec->text[spec.off + spec.len - 1] == '.');
		copy_text(out, DNS_NAME_MAX, rec->text + spec.off, n);
		return 0;
	}
	c->vars.domain = cur;
	int r = spf_macro_expand(rec->text + spec.off, spec.len, SPF_MACRO_DOMAIN, &c->vars, out,
	                         DNS_NAME_MAX);
	/* too long to be a name after §7.3 truncation: a name that does not exist */
	if (r == -ENAMETOOLONG)
		out[0] = '\0';
	else if (r < 0)
		return fail(c, SPF_PERMERROR, "Invalid domain found (use FQDN)",
		            rec->text + spec.off, spec.len);
	return 0;
}

/* Does name have an address record equal to the client's? Errors count as no (§5.5). */
static bool
name_has_ip(struct spf_ctx *c, const char *name)
{
	struct dns_answer a;
	bool yes = query(c, name, addr_type(c), &a) == 0 && answer_matches(c, &a, 32, 128);
	dns_answer_free(&a);
	return yes;
}

static bool
is_subdomain(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n == d)
		return strncasecmp(name, domain, n) == 0;
	return n > d && name[n - d - 1] == '.' && strncasecmp(name + n - d, domain, d) == 0;
}

/* The PTR names of the client, at most SPF_PTR_MAX of them (§4.6.4). */
static int
ptr_names(struct spf_ctx *c, struct dns_answer *a)
{
	char rev[DNS_NAME_MAX];
	if (dns_reverse_name(&c->ip, rev, sizeof(rev)) < 0)
		return fail_str(c, SPF_PERMERROR, "cannot build the reverse name", NULL);
	return query(c, rev, DNS_T_PTR, a);
}

/* %{p} (§7.3): the domain itself, else a subdomain of it, else any validated name. */
static const char *
validated_name(void *arg)
{
	struct spf_ctx *c = arg;
	struct dns_answer a;
	const char *d = c->vars.domain;
	int best = 0; /* 3 equal, 2 subdomain, 1 other */

	if (c->p_done)
		return c->p;
	c->p_done = true;
	copy_text(c->p, sizeof(c->p), "unknown", 7);
	if (ptr_names(c, &a) < 0 || a.status != DNS_OK)
		goto out;
	for (size_t i = 0; i < a.n && i < SPF_PTR_MAX && best < 3; i++) {
		const char *name = a.rr[i].u.name;
		int rank = strcasecmp(name, d) == 0 ? 3 : is_subdomain(name, d) ? 2 : 1;
		if (a.rr[i].type != DNS_T_PTR || rank <= best || !name_has_ip(c, name))
			continue;
		best = rank;
		copy_text(c->p, sizeof(c->p), name, strlen(name));
	}
out:
	dns_answer_free(&a);
	return c->p;
}

static int
term_ptr(struct spf_ctx *c, const char *name)
{
	struct dns_answer a;
	int r = ptr_names(c, &a);
	if (r == 0 && dns_temporary(&a))
		r = T_NOMATCH; /* §5.5: a PTR lookup error is no match */
	else if (r == 0 && (r = count_void(c, &a, name)) == 0)
		for (size_t i = 0; a.status == DNS_OK && i < a.n && i < SPF_PTR_MAX; i++)
			if (a.rr[i].type == DNS_T_PTR && is_subdomain(a.rr[i].u.name, name) &&
			    name_has_ip(c, a.rr[i].u.name)) {
				r = T_MATCH;
				break;
			}
	dns_answer_free(&a);
	return r;
}

static int
term_a(struct spf_ctx *c, const char *name, const struct spf_term *t)
{
	struct dns_answer a;
	int r = query(c, name, addr_type(c), &a);
	if (r == 0 && dns_temporary(&a))
		r = dns_error(c, &a, name);
	else if (r == 0 && (r = count_void(c, &a, name)) == 0)
		r = answer_matches(c, &a, t->cidr4, t->cidr6) ? T_MATCH : T_NOMATCH;
	dns_answer_free(&a);
	return r;
}

static int
term_exists(struct spf_ctx *c, const char *name)
{
	struct dns_answer a;
	/* §5.7: an A query whatever the client's address family */
	int r = query(c, name, DNS_T_A, &a);
	if (r == 0 && dns_temporary(&a))
		r = dns_error(c, &a, name);
	else if (r == 0 && (r = count_void(c, &a, name)) == 0)
		r = a.status == DNS_OK && a.n > 0 ? T_MATCH : T_NOMATCH;
	dns_answer_free(&a);
	return r;
}

/* Indexes of the MX records of a, lowest preference first (stable). */
static size_t
mx_order(const struct dns_answer *a, uint16_t *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->rr[i].type != DNS_T_MX)
			continue;
		size_t j = n++;
		for (; j > 0 && a->rr[idx[j - 1]].u.mx.pref > a->rr[i].u.mx.pref; j--)
			idx[j] = idx[j - 1];
		idx[j] = (uint16_t)i;
	}
	return n;
}

/* §5.4, §4.6.4: the address records of at most SPF_MX_MAX exchanges. */
static int
mx_hosts(struct spf_ctx *c, const struct dns_answer *mx, const struct spf_term *t)
{
	uint16_t idx[DNS_ANSWER_MAX];
	size_t n = mx_order(mx, idx);
	for (size_t i = 0; i < n; i++) {
		const char *host = mx->rr[idx[i]].u.mx.host;
		if (i >= SPF_MX_MAX)
			return fail_str(c, SPF_PERMERROR, "More than 10 MX records returned", host);
		if (!*host || strcmp(host, ".") == 0)
			continue; /* null MX (RFC 7505): no address */
		struct dns_answer a;
		int r = query(c, host, addr_type(c), &a);
		if (r == 0 && dns_temporary(&a))
			r = dns_error(c, &a, host);
		else if (r == 0)
			r = answer_matches(c, &a, t->cidr4, t->cidr6) ? T_MATCH : T_NOMATCH;
		dns_answer_free(&a);
		if (r != T_NOMATCH)
			return r;
	}
	return T_NOMATCH;
}

static int
term_mx(struct spf_ctx *c, const char *name, const struct spf_term *t)
{
	struct dns_answer a;
	int r = query(c, name, DNS_T_MX, &a);
	if (r == 0 && dns_temporary(&a))
		r = dns_error(c, &a, name);
	else if (r == 0 && (r = count_void(c, &a, name)) == 0)
		r = a.status == DNS_OK ? mx_hosts(c, &a, t) : T_NOMATCH;
	dns_answer_free(&a);
	return r;
}

static bool
ip_term_match(const struct spf_ctx *c, const struct spf_term *t)
{
	if (c->ip.family != (t->mech == SPF_M_IP4 ? AF_INET : AF_INET6))
		return false;
	return prefix_match(c, t->addr, t->mech == SPF_M_IP4 ? t->cidr4 : t->cidr6);
}

static int check_host(struct spf_ctx *c, const char *domain, unsigned depth, bool redirect);

/* §5.2: pass matches; fail, softfail, neutral do not; errors and none end the check. */
static int
term_include(struct spf_ctx *c, const char *name, unsigned depth)
{
	int r = check_host(c, name, depth + 1, false);
	if (r == SPF_NONE)
		return fail_str(c, SPF_PERMERROR, "No valid SPF record for included domain", name);
	if (r < 0)
		return T_ERROR;
	return r == SPF_PASS ? T_MATCH : T_NOMATCH;
}

static int
eval_term(struct spf_ctx *c, const struct spf_record *rec, const struct spf_term *t,
          const char *cur, unsigned depth)
{
	char name[DNS_NAME_MAX];
	if (t->mech == SPF_M_ALL)
		return T_MATCH;
	if (t->mech == SPF_M_IP4 || t->mech == SPF_M_IP6)
		return ip_term_match(c, t) ? T_MATCH : T_NOMATCH;
	if (count_lookup(c, rec->text + t->text.off, t->text.len) < 0 ||
	    target(c, rec, t->spec, cur, name) < 0)
		return T_ERROR;
	switch (t->mech) {
	case SPF_M_A:
		return term_a(c, name, t);
	case SPF_M_MX:
		return term_mx(c, name, t);
	case SPF_M_PTR:
		return term_ptr(c, name);
	case SPF_M_EXISTS:
		return term_exists(c, name);
	default:
		return term_include(c, name, depth);
	}
}

/*
 * The record of domain (§4.4, §4.5): T_MATCH with *rec set, SPF_NONE as T_NOMATCH, or
 * T_ERROR for temperror and permerror.
 */
static int
fetch_record(struct spf_ctx *c, const char *domain, struct spf_record **rec)
{
	struct dns_answer a;
	struct spf_error err;
	int r = query(c, domain, DNS_T_TXT, &a);

	*rec = NULL;
	if (r < 0)
		return T_ERROR;
	if (dns_temporary(&a)) {
		r = dns_error(c, &a, domain);
	} else if (a.status != DNS_OK) {
		r = T_NOMATCH;
	} else if ((r = spf_record_select(&a, c->req->scope, &err)) == -ENOENT) {
		r = T_NOMATCH;
	} else if (r < 0) {
		r = fail_str(c, SPF_PERMERROR, err.msg, NULL);
	} else {
		const struct dns_rr *rr = &a.rr[r];
		r = spf_record_cache_parse(c->req->cache, rr->u.txt.data, rr->u.txt.len, rec, &err);
		if (r == -ENOMEM)
			r = fail_str(c, SPF_TEMPERROR, "out of memory", NULL);
		else if (r < 0)
			r = fail(c, SPF_PERMERROR, err.msg, rr->u.txt.data + err.at.off,
			         err.at.len);
		else
			r = T_MATCH;
	}
	dns_answer_free(&a);
	return r;
}

/* §6.2: the explanation of a fail, from the exp= of the record that decided it. */
static bool
explain(struct spf_ctx *c, const struct spf_record *rec, const char *cur)
{
	char name[DNS_NAME_MAX];
	struct dns_answer a;
	bool ok = false;

	c->vars.domain = cur;
	if (spf_macro_expand(rec->text + rec->exp.off, rec->exp.len, SPF_MACRO_DOMAIN, &c->vars,
	                     name, sizeof(name)) < 0)
		return false;
	/* not a term: no lookup or void counted; any problem means "no exp" */
	if (query(c, name, DNS_T_TXT, &a) < 0)
		return false;
	if (a.status == DNS_OK && a.n == 1 && a.rr[0].type == DNS_T_TXT)
		ok =
		    spf_macro_expand(a.rr[0].u.txt.data, a.rr[0].u.txt.len, SPF_MACRO_EXP, &c->vars,
		                     c->out->explanation, sizeof(c->out->explanation)) == 0;
	dns_answer_free(&a);
	return ok;
}

/* A mechanism matched in rec: its qualifier is the result (§4.6.2). */
static int
matched(struct spf_ctx *c, const struct spf_record *rec, const struct spf_term *t, const char *cur,
        unsigned depth)
{
	if (depth > 0)
		return t->qual;
	copy_text(c->out->mechanism, sizeof(c->out->mechanism), rec->text + t->text.off,
	          t->text.len);
	if (t->qual == SPF_FAIL && rec->has_exp && !explain(c, rec, cur))
		c->out->explanation[0] = '\0';
	return t->qual;
}

/* Evaluates the mechanisms of rec in order; -2 when none matched. */
static int
eval_record(struct spf_ctx *c, const struct spf_record *rec, const char *cur, unsigned depth)
{
	for (size_t i = 0; i < rec->n; i++) {
		const struct spf_term *t = &rec->terms[i];
		int r = eval_term(c, rec, t, cur, depth);
		TRACE(c, SPF_TRACE_TERM, rec->text + t->text.off, t->text.len,
		      &(struct spf_trace){.match = r});
		if (r == T_ERROR)
			return T_ERROR;
		if (r == T_MATCH)
			return matched(c, rec, &rec->terms[i], cur, depth);
	}
	return -2;
}

/* §6.1: redirect= names the domain whose policy replaces this one. */
static int
follow_redirect(struct spf_ctx *c, const struct spf_record *rec, char cur[DNS_NAME_MAX])
{
	char next[DNS_NAME_MAX];
	if (count_lookup(c, rec->text + rec->redirect.off - 9, rec->redirect.len + 9) < 0 ||
	    target(c, rec, rec->redirect, cur, next) < 0)
		return T_ERROR;
	memcpy(cur, next, DNS_NAME_MAX);
	return 0;
}

/*
 * check_host() for domain: an SPF result (SPF_NONE included) or T_ERROR. depth counts the
 * includes above; redirect says a redirect= led here, where "none" is a permerror.
 */
static int
check_host_run(struct spf_ctx *c, const char *domain, unsigned depth, bool redirect)
{
	char cur[DNS_NAME_MAX];
	/* §4.3: a malformed domain (too long included) has no policy */
	if (!spf_eval_domain_ok(domain))
		return redirect
		           ? fail_str(c, SPF_PERMERROR, "redirect domain has no SPF record", domain)
		           : SPF_NONE;
	copy_text(cur, sizeof(cur), domain, strlen(domain));
	for (;;) {
		_cleanup_(spf_record_freep) struct spf_record *rec = NULL;
		int r = spf_eval_domain_ok(cur) ? fetch_record(c, cur, &rec) : T_NOMATCH;
		if (r == T_NOMATCH && redirect)
			return fail_str(c, SPF_PERMERROR, "redirect domain has no SPF record", cur);
		if (r != T_MATCH)
			return r == T_NOMATCH ? SPF_NONE : T_ERROR;
		TRACE(c, SPF_TRACE_RECORD, rec->text, strlen(rec->text), NULL);
		r = eval_record(c, rec, cur, depth);
		if (r != -2)
			return r;
		if (!rec->has_redirect)
			return SPF_NEUTRAL;
		if (follow_redirect(c, rec, cur) < 0)
			return T_ERROR;
		TRACE(c, SPF_TRACE_CHECK, cur, strlen(cur), NULL);
		redirect = true;
	}
}

/* What the trace sees of a check_host() that ended in error: the check's error so far. */
static enum spf_result
trace_result(const struct spf_ctx *c, int r)
{
	if (r >= 0)
		return (enum spf_result)r;
	return c->out->result == SPF_TEMPERROR ? SPF_TEMPERROR : SPF_PERMERROR;
}

static int
check_host(struct spf_ctx *c, const char *domain, unsigned depth, bool redirect)
{
	if (!c->req->trace)
		return check_host_run(c, domain, depth, redirect);
	unsigned outer = c->depth;
	c->depth = depth;
	trace(c, SPF_TRACE_CHECK, domain, strlen(domain), NULL);
	int r = check_host_run(c, domain, depth, redirect);
	trace(c, SPF_TRACE_RESULT, domain, strlen(domain),
	      &(struct spf_trace){.result = trace_result(c, r)});
	c->depth = outer;
	return r;
}

/* "local@domain" into out->sender, with postmaster for a missing local part (§4.3). */
static int
set_sender(struct spf_ctx *c, const char *sender, const char *helo)
{
	struct spf_outcome *o = c->out;
	const char *at = sender && *sender ? strrchr(sender, '@') : NULL;
	const char *local = at ? sender : "", *domain = at ? at + 1 : sender;
	size_t llen = at ? (size_t)(at - sender) : 0;

	if (!sender || !*sender) {
		o->identity = SPF_ID_HELO;
		domain = helo ? helo : "";
	}
	if (llen == 0) {
		local = "postmaster";
		llen = 10;
	}
	size_t dlen = strlen(domain);
	if (llen + 1 + dlen >= sizeof(o->sender))
		return -EINVAL;
	memcpy(o->sender, local, llen);
	o->sender[llen] = '@';
	memcpy(o->sender + llen + 1, domain, dlen + 1);
	copy_text(o->domain, sizeof(o->domain), domain, strlen(domain));
	c->vars.sender = o->sender;
	c->vars.local_len = llen;
	c->vars.sender_domain = o->sender + llen + 1;
	return 0;
}

static void
default_explanation(struct spf_ctx *c)
{
	const char *exp = c->req->default_exp;
	if (!exp)
		exp = "domain of %{o} does not designate %{c} as permitted sender";
	c->vars.domain = c->out->domain;
	if (spf_macro_expand(exp, strlen(exp), SPF_MACRO_EXP, &c->vars, c->out->explanation,
	                     sizeof(c->out->explanation)) < 0)
		copy_text(c->out->explanation, sizeof(c->out->explanation), exp, strlen(exp));
}

static char *
put_dec(char *p, unsigned v)
{
	if (v >= 100)
		*p++ = (char)('0' + v / 100);
	if (v >= 10)
		*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/* RFC 5952 text of an address (as inet_ntop, without its sprintf). */
static void
format_ip(const struct net_addr *a, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *b = a->u.bytes;
	size_t best = 8, best_len = 1, run = 0;
	char *p = out;
	if (a->family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			p = put_dec(p, b[i]);
			*p++ = '.';
		}
		p[-1] = '\0';
		return;
	}
	for (size_t g = 0; g < 8; g++) {
		run = b[2 * g] || b[2 * g + 1] ? 0 : run + 1;
		if (run > best_len) {
			best_len = run;
			best = g + 1 - run;
		}
	}
	for (size_t g = 0; g < 8; g++) {
		if (g == best) {
			*p++ = ':';
			if (g == 0)
				*p++ = ':';
			g += best_len - 1;
			continue;
		}
		unsigned v = (unsigned)b[2 * g] << 8 | b[2 * g + 1];
		bool lead = true;
		for (int sh = 12; sh >= 0; sh -= 4) {
			unsigned d = v >> sh & 15;
			if (d || !lead || sh == 0) {
				*p++ = hex[d];
				lead = false;
			}
		}
		if (g < 7)
			*p++ = ':';
	}
	*p = '\0';
}

static int
ctx_init(struct spf_ctx *c, struct dns_resolver *dns, const struct spf_request *req,
         struct spf_outcome *out)
{
	uint64_t budget = req->budget_ms ? req->budget_ms : SPF_BUDGET_MS_DEFAULT;
	/* field by field: zeroing the whole outcome (some 3 KB) showed in profiles */
	out->result = SPF_NONE;
	out->identity = req->identity;
	out->client_ip[0] = out->domain[0] = out->sender[0] = out->explanation[0] = '\0';
	out->mechanism[0] = out->problem[0] = '\0';
	out->reason = NULL;
	out->lookups = out->voids = out->queries = 0;
	*c = (struct spf_ctx){.dns = dns, .req = req, .out = out, .ip = req->ip};
	if (c->ip.family != AF_INET && c->ip.family != AF_INET6)
		return -EINVAL;
	/* §5: "SPF verifiers MUST treat IPv4-mapped IPv6 addresses as IPv4 addresses" */
	net_addr_normalize(&c->ip);
	c->ip.port = 0;
	format_ip(&c->ip, out->client_ip);
	c->vars = (struct spf_macro_vars){
	    .helo = req->helo ? req->helo : "",
	    .receiver = req->receiver,
	    .ip = &c->ip,
	    .ip_text = out->client_ip,
	    .now = req->now ? req->now : (uint64_t)time(NULL),
	    .validated = validated_name,
	    .arg = c,
	};
	c->deadline_ms = now_ms() + budget;
	return set_sender(c, req->sender, req->helo);
}

int
spf_eval_check(struct dns_resolver *dns, const struct spf_request *req, struct spf_outcome *out)
{
	struct spf_ctx c;
	int r = ctx_init(&c, dns, req, out);
	if (r < 0) {
		out->result = SPF_PERMERROR;
		out->reason = "request cannot be evaluated";
		return r;
	}
	/* the budget bounds each query too, not only the start of the next one; a caller's
	 * tighter deadline (the milter's per-message one) stands */
	uint64_t outer = dns_deadline_get(),
	         mine =
	             dns_monotonic_ms() + (req->budget_ms ? req->budget_ms : SPF_BUDGET_MS_DEFAULT);
	dns_deadline_set(outer && outer < mine ? outer : mine);
	r = check_host(&c, out->domain, 0, false);
	dns_deadline_set(outer);
	/* an error recorded on a side path (%{p} past the time budget) stands */
	if (out->result == SPF_TEMPERROR || out->result == SPF_PERMERROR)
		r = out->result;
	out->result = r < 0 ? SPF_PERMERROR : (enum spf_result)r;
	if (out->result == SPF_FAIL && !out->explanation[0])
		default_explanation(&c);
	if (out->result != SPF_FAIL)
		out->explanation[0] = '\0';
	return 0;
}
