/*
 * `rampart mail check`: audits what a domain publishes for mail authentication (SPF, Sender
 * ID, DKIM keys, DomainKeys policy, DMARC, MX, forward-confirmed reverse DNS) over core/dns.
 * Every finding is a row: ok, warn or fail, with the reason and the fix. DNS trouble is not a
 * finding: the run stops with -EAGAIN and says which lookup failed.
 *
 * Row names are stable (scripts match them): spf.present, spf.single, spf.syntax, spf.length,
 * spf.lookups, spf.void-lookups, spf.include, spf.all, spf.ip, senderid.syntax,
 * dkim.S.present, dkim.S.syntax, dkim.S.revoked, dkim.S.type, dkim.S.testing,
 * dkim.S.local-key, domainkeys.policy, dmarc.present, dmarc.syntax, dmarc.policy, dmarc.rua,
 * mx.present, mx.resolve, fcrdns, and domain.exists (only when the domain does not exist).
 * A check that cannot apply leaves its row out: the rows after a failure they depend on,
 * spf.ip and fcrdns without an address, dkim.S.local-key without local keys.
 */
#pragma once

#include "core/dns.h"
#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>

#define MAIL_CHECK_NAME_MAX 96
#define MAIL_CHECK_TEXT_MAX 320
/* rows of one report: a handful per selector, a dozen otherwise */
#define MAIL_CHECK_ROWS_MAX 512
/* selectors and local keys one run takes */
#define MAIL_CHECK_SELECTORS_MAX 16
/* a selector's length, so that "dkim.S.local-key" fits a row name */
#define MAIL_CHECK_SELECTOR_MAX 64
/* SPF include/redirect records followed when counting lookups */
#define MAIL_CHECK_SPF_RECORDS_MAX 64
/* RFC 7208 §3.4: a record that keeps the answer under 512 bytes */
#define MAIL_CHECK_SPF_LEN_WARN 450
/* MX hosts, PTR names and report addresses looked at */
#define MAIL_CHECK_NAMES_MAX 10

enum mail_check_status {
	MAIL_CHECK_OK,
	MAIL_CHECK_WARN,
	MAIL_CHECK_FAIL,
};

struct mail_check_row {
	char name[MAIL_CHECK_NAME_MAX];
	enum mail_check_status status;
	char reason[MAIL_CHECK_TEXT_MAX];
	char fix[MAIL_CHECK_TEXT_MAX]; /* "" when nothing is to be done */
};

struct mail_check_report {
	struct mail_check_row *rows;
	size_t n;
	bool no_domain;                      /* the domain does not exist (NXDOMAIN) */
	char dns_error[MAIL_CHECK_TEXT_MAX]; /* set with -EAGAIN: the lookup that failed */
};

struct dkim_key_private;

struct mail_check_input {
	const char *domain;           /* mail_check_valid_domain */
	const char *const *selectors; /* n_selectors DKIM selectors (mail_check_valid_selector) */
	size_t n_selectors;
	bool have_ip; /* the sending address: SPF authorisation and reverse DNS */
	struct net_addr ip;
	const struct dkim_key_private *keys; /* local private keys; a selector's key must be one */
	size_t n_keys;
	uint64_t budget_ms; /* the SPF evaluation's time budget; 0: SPF_BUDGET_MS_DEFAULT */
};

/*
 * Runs every check of in over dns into out (zero it first; free with mail_check_report_free).
 * 0: out holds the rows (a domain that does not exist is one failed row, domain.exists, and
 * out->no_domain). -EAGAIN: a lookup timed out or failed (out->dns_error says which; the rows
 * so far stay). -EINVAL: a domain or selector that is not a DNS name. -ENOMEM, -E2BIG (rows).
 */
int mail_check_run(struct dns_resolver *dns, const struct mail_check_input *in,
                   struct mail_check_report *out);

/* The checks one by one (mail_check_run calls them in this order); same returns. */
int mail_check_spf(struct dns_resolver *dns, const struct mail_check_input *in,
                   struct mail_check_report *out);
int mail_check_senderid(struct dns_resolver *dns, const struct mail_check_input *in,
                        struct mail_check_report *out);
int mail_check_dkim(struct dns_resolver *dns, const struct mail_check_input *in,
                    struct mail_check_report *out);
int mail_check_domainkeys(struct dns_resolver *dns, const struct mail_check_input *in,
                          struct mail_check_report *out);
int mail_check_dmarc(struct dns_resolver *dns, const struct mail_check_input *in,
                     struct mail_check_report *out);
int mail_check_mx(struct dns_resolver *dns, const struct mail_check_input *in,
                  struct mail_check_report *out);
int mail_check_fcrdns(struct dns_resolver *dns, const struct mail_check_input *in,
                      struct mail_check_report *out);

void mail_check_report_free(struct mail_check_report *r);
/* The row named name, or NULL. */
const struct mail_check_row *mail_check_find(const struct mail_check_report *r, const char *name);
/* The worst status of the report (MAIL_CHECK_OK when empty). */
enum mail_check_status mail_check_worst(const struct mail_check_report *r);
const char *mail_check_status_name(enum mail_check_status s);

/* A host name of two labels or more, without a final dot (dkim_sign_valid_name). */
bool mail_check_valid_domain(const char *s);
/* A DKIM selector (dkim_sign_valid_name) of at most MAIL_CHECK_SELECTOR_MAX bytes. */
bool mail_check_valid_selector(const char *s);

/* For the check functions (mail_check*.c). */

/* Appends a row; reason is a format. fix may be NULL. -ENOMEM, -E2BIG past the row cap. */
int mail_check_add(struct mail_check_report *r, const char *name, enum mail_check_status s,
                   const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * dns_query for the checks: 0 with a->status OK, NODATA or NXDOMAIN (a name DNS cannot carry
 * is NXDOMAIN); -EAGAIN for a timeout or server failure, with r->dns_error naming the lookup.
 */
int mail_check_query(struct dns_resolver *dns, struct mail_check_report *r, const char *name,
                     enum dns_type type, struct dns_answer *a);
