/* `rampart mail check`: the report, the DNS helper, the run, and the MX and reverse DNS
 * checks. SPF and Sender ID are in mail_check_spf.c, DKIM, DomainKeys and DMARC in
 * mail_check_keys.c. */
#include "mail_check.h"

#include "core/cleanup.h"
#include "dkim_sign.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
type_name(enum dns_type t)
{
	switch (t) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_MX:
		return "MX";
	case DNS_T_PTR:
		return "PTR";
	case DNS_T_TXT:
		return "TXT";
	default:
		return "DNS";
	}
}

int
mail_check_add(struct mail_check_report *r, const char *name, enum mail_check_status s,
               const char *fix, const char *fmt, ...)
{
	if (r->n >= MAIL_CHECK_ROWS_MAX)
		return -E2BIG;
	/* grows by doubling; the cap bounds it */
	if ((r->n & (r->n - 1)) == 0) {
		size_t want = r->n ? r->n * 2 : 16;
		struct mail_check_row *p = realloc(r->rows, want * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->rows = p;
	}
	struct mail_check_row *row = &r->rows[r->n++];
	va_list ap;
	*row = (struct mail_check_row){.status = s};
	snprintf(row->name, sizeof(row->name), "%s", name);
	snprintf(row->fix, sizeof(row->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(row->reason, sizeof(row->reason), fmt, ap);
	va_end(ap);
	return 0;
}

int
mail_check_query(struct dns_resolver *dns, struct mail_check_report *r, const char *name,
                 enum dns_type type, struct dns_answer *a)
{
	int e = dns_query(dns, name, type, a);
	if (e == -EINVAL) {
		*a = (struct dns_answer){.status = DNS_NXDOMAIN};
		return 0;
	}
	if (e < 0)
		return e;
	if (a->status != DNS_TIMEOUT && a->status != DNS_SERVFAIL)
		return 0;
	snprintf(r->dns_error, sizeof(r->dns_error), "%s lookup of %s: %s", type_name(type), name,
	         a->status == DNS_TIMEOUT ? "timed out" : "server failure");
	dns_answer_free(a);
	return -EAGAIN;
}

void
mail_check_report_free(struct mail_check_report *r)
{
	if (!r)
		return;
	free(r->rows);
	*r = (struct mail_check_report){0};
}

const struct mail_check_row *
mail_check_find(const struct mail_check_report *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->rows[i].name, name) == 0)
			return &r->rows[i];
	return NULL;
}

enum mail_check_status
mail_check_worst(const struct mail_check_report *r)
{
	enum mail_check_status w = MAIL_CHECK_OK;
	for (size_t i = 0; i < r->n; i++)
		if (r->rows[i].status > w)
			w = r->rows[i].status;
	return w;
}

const char *
mail_check_status_name(enum mail_check_status s)
{
	return s == MAIL_CHECK_OK ? "ok" : s == MAIL_CHECK_WARN ? "warn" : "fail";
}

bool
mail_check_valid_domain(const char *s)
{
	return s && dkim_sign_valid_name(s) && strchr(s, '.');
}

bool
mail_check_valid_selector(const char *s)
{
	return s && strlen(s) <= MAIL_CHECK_SELECTOR_MAX && dkim_sign_valid_name(s);
}

/* NXDOMAIN for the domain itself: nothing below it exists either (RFC 8020). */
static int
check_exists(struct dns_resolver *dns, const struct mail_check_input *in,
             struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	int r = mail_check_query(dns, out, in->domain, DNS_T_TXT, &a);
	if (r < 0 || a.status != DNS_NXDOMAIN)
		return r;
	out->no_domain = true;
	return mail_check_add(out, "domain.exists", MAIL_CHECK_FAIL,
	                      "check the spelling, or register the domain and publish its zone",
	                      "%s does not exist (NXDOMAIN)", in->domain);
}

static bool
valid_input(const struct mail_check_input *in)
{
	if (!mail_check_valid_domain(in->domain) || in->n_selectors > MAIL_CHECK_SELECTORS_MAX ||
	    in->n_keys > MAIL_CHECK_SELECTORS_MAX)
		return false;
	for (size_t i = 0; i < in->n_selectors; i++)
		if (!mail_check_valid_selector(in->selectors[i]) ||
		    strlen(in->selectors[i]) + strlen(in->domain) + 13 > 253)
			return false;
	return true;
}

int
mail_check_run(struct dns_resolver *dns, const struct mail_check_input *in,
               struct mail_check_report *out)
{
	static int (*const checks[])(struct dns_resolver *, const struct mail_check_input *,
	                             struct mail_check_report *) = {
	    mail_check_spf,   mail_check_senderid, mail_check_dkim,   mail_check_domainkeys,
	    mail_check_dmarc, mail_check_mx,       mail_check_fcrdns,
	};
	if (!valid_input(in))
		return -EINVAL;
	int r = check_exists(dns, in, out);
	for (size_t i = 0; r == 0 && !out->no_domain && i < ARRAY_SIZE(checks); i++)
		r = checks[i](dns, in, out);
	return r;
}

/* Does name have an address (A or AAAA)? *has; -EAGAIN. */
static int
has_address(struct dns_resolver *dns, struct mail_check_report *out, const char *name, bool *has)
{
	static const enum dns_type types[] = {DNS_T_A, DNS_T_AAAA};
	*has = false;
	for (size_t i = 0; i < ARRAY_SIZE(types) && !*has; i++) {
		_cleanup_(dns_answer_free) struct dns_answer a = {0};
		int r = mail_check_query(dns, out, name, types[i], &a);
		if (r < 0)
			return r;
		*has = a.status == DNS_OK;
	}
	return 0;
}

/* No MX: mail for the domain goes to its address (RFC 5321 §5.1), if it has one. */
static int
check_implicit_mx(struct dns_resolver *dns, const struct mail_check_input *in,
                  struct mail_check_report *out)
{
	bool has;
	int r = has_address(dns, out, in->domain, &has);
	if (r < 0)
		return r;
	if (has)
		return mail_check_add(
		    out, "mx.present", MAIL_CHECK_OK, NULL,
		    "no MX: mail to %s goes to its A/AAAA address (RFC 5321 §5.1)", in->domain);
	return mail_check_add(
	    out, "mx.present", MAIL_CHECK_WARN, "publish an MX record for the domain's mail server",
	    "no MX and no address: bounces and DMARC reports to @%s cannot be delivered, and "
	    "receivers that check the sender domain (Postfix reject_unknown_sender_domain) refuse "
	    "its mail",
	    in->domain);
}

static int
check_mx_hosts(struct dns_resolver *dns, const struct dns_answer *mx, struct mail_check_report *out)
{
	size_t n = mx->n < MAIL_CHECK_NAMES_MAX ? mx->n : MAIL_CHECK_NAMES_MAX, bad = 0;
	const char *first_bad = NULL;
	for (size_t i = 0; i < n; i++) {
		bool has;
		int r = has_address(dns, out, mx->rr[i].u.mx.host, &has);
		if (r < 0)
			return r;
		if (!has && bad++ == 0)
			first_bad = mx->rr[i].u.mx.host;
	}
	if (bad == 0)
		return mail_check_add(out, "mx.resolve", MAIL_CHECK_OK, NULL,
		                      "%zu MX host%s, each with an address", n, n == 1 ? "" : "s");
	return mail_check_add(out, "mx.resolve", bad == n ? MAIL_CHECK_FAIL : MAIL_CHECK_WARN,
	                      "give every MX host an A or AAAA record, or remove it",
	                      "%zu of %zu MX hosts have no address (%s)", bad, n, first_bad);
}

int
mail_check_mx(struct dns_resolver *dns, const struct mail_check_input *in,
              struct mail_check_report *out)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	int r = mail_check_query(dns, out, in->domain, DNS_T_MX, &a);
	if (r < 0)
		return r;
	if (a.status != DNS_OK)
		return check_implicit_mx(dns, in, out);
	if (a.n == 1 && a.rr[0].u.mx.host[0] == '\0')
		return mail_check_add(out, "mx.present", MAIL_CHECK_FAIL,
		                      "remove the null MX, or send from another domain",
		                      "null MX (RFC 7505): the domain takes no mail, and receivers "
		                      "may refuse mail from it");
	r = mail_check_add(out, "mx.present", MAIL_CHECK_OK, NULL, "%zu MX record%s", a.n,
	                   a.n == 1 ? "" : "s");
	return r ?: check_mx_hosts(dns, &a, out);
}

/* Does name resolve to ip? */
static int
name_has_ip(struct dns_resolver *dns, struct mail_check_report *out, const char *name,
            const struct net_addr *ip, bool *has)
{
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	int r = mail_check_query(dns, out, name, ip->family == AF_INET ? DNS_T_A : DNS_T_AAAA, &a);
	*has = false;
	for (size_t i = 0; r == 0 && a.status == DNS_OK && i < a.n && !*has; i++)
		*has = a.rr[i].u.addr.family == ip->family &&
		       memcmp(a.rr[i].u.addr.u.bytes, ip->u.bytes,
		              ip->family == AF_INET ? 4 : 16) == 0;
	return r;
}

static int
fcrdns_names(struct dns_resolver *dns, const struct dns_answer *ptr, const struct net_addr *ip,
             const char *text, struct mail_check_report *out)
{
	size_t n = ptr->n < MAIL_CHECK_NAMES_MAX ? ptr->n : MAIL_CHECK_NAMES_MAX;
	for (size_t i = 0; i < n; i++) {
		bool has;
		int r = name_has_ip(dns, out, ptr->rr[i].u.name, ip, &has);
		if (r < 0)
			return r;
		if (has)
			return mail_check_add(out, "fcrdns", MAIL_CHECK_OK, NULL,
			                      "%s has PTR %s, which resolves back to it", text,
			                      ptr->rr[i].u.name);
	}
	return mail_check_add(out, "fcrdns", MAIL_CHECK_FAIL,
	                      "give the PTR name an address record for this IP, or point the PTR "
	                      "at a name that has one",
	                      "PTR %s of %s does not resolve back to %s", ptr->rr[0].u.name, text,
	                      text);
}

int
mail_check_fcrdns(struct dns_resolver *dns, const struct mail_check_input *in,
                  struct mail_check_report *out)
{
	char rev[DNS_NAME_MAX], text[NET_ADDR_STRLEN];
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	if (!in->have_ip)
		return 0;
	struct net_addr ip = in->ip;
	net_addr_normalize(&ip);
	ip.port = 0;
	int r = dns_reverse_name(&ip, rev, sizeof(rev));
	if (r < 0 || net_addr_format(&ip, false, text, sizeof(text)) < 0)
		return -EINVAL;
	if ((r = mail_check_query(dns, out, rev, DNS_T_PTR, &a)) < 0)
		return r;
	if (a.status != DNS_OK)
		return mail_check_add(out, "fcrdns", MAIL_CHECK_FAIL,
		                      "ask the provider of the address to set its PTR to the mail "
		                      "server's name (which must resolve back to it)",
		                      "%s has no PTR record: many receivers refuse or score mail "
		                      "from it",
		                      text);
	return fcrdns_names(dns, &a, &ip, text, out);
}
