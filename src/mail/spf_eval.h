/*
 * check_host() (RFC 7208 §4): evaluates a domain's SPF policy for a client address and a
 * sender, over the core DNS resolver. The evaluator counts its own lookups (§4.6.4: 10
 * DNS-querying terms, 2 void lookups, 10 MX and PTR names) and keeps a time budget for the
 * whole check; a DNS timeout or the budget running out is a temperror.
 */
#pragma once

#include "core/dns.h"
#include "core/net.h"
#include "spf_record.h"
#include "spf_result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 7208 §4.6.4 */
#define SPF_LOOKUP_MAX 10
#define SPF_VOID_MAX 2
#define SPF_MX_MAX 10
#define SPF_PTR_MAX 10
/* "Such a limit SHOULD allow at least 20 seconds." */
#define SPF_BUDGET_MS_DEFAULT 20000

/* Longest sender address we accept (RFC 5321 reverse-path: 256 octets, with room to spare). */
#define SPF_SENDER_MAX 512
#define SPF_EXPLANATION_MAX 1024
#define SPF_TEXT_MAX 512

enum spf_identity {
	SPF_ID_MAILFROM, /* MAIL FROM (RFC 7208 §2.4) */
	SPF_ID_HELO,     /* HELO/EHLO (RFC 7208 §2.3) */
	SPF_ID_PRA,      /* Sender ID purported responsible address (RFC 4407) */
};

/* What a trace callback is told, in the order it happens. */
enum spf_trace_kind {
	SPF_TRACE_CHECK,  /* check_host() of text starts (an include, a redirect) */
	SPF_TRACE_QUERY,  /* a DNS query of text/type was made: answer (NULL: not sent, the
	                     time limit had passed) */
	SPF_TRACE_RECORD, /* text is the SPF record found */
	SPF_TRACE_TERM,   /* the term text (as written) was evaluated: match */
	SPF_TRACE_RESULT, /* check_host() of text came to result */
};

struct spf_trace {
	enum spf_trace_kind kind;
	unsigned depth; /* includes above this point */
	const char *text;
	size_t len;
	enum dns_type type;              /* QUERY */
	const struct dns_answer *answer; /* QUERY */
	int match;                       /* TERM: 1 match, 0 no match, -1 error */
	enum spf_result result;          /* RESULT */
};

struct spf_request {
	struct net_addr ip;   /* the SMTP client; IPv4-mapped IPv6 is treated as IPv4 */
	const char *sender;   /* MAIL FROM (or the PRA); "" or NULL: postmaster@helo */
	const char *helo;     /* HELO/EHLO name; may be NULL */
	const char *receiver; /* %{r} and Received-SPF receiver=; NULL: "unknown" */
	enum spf_identity identity;
	enum spf_scope scope; /* SPF_SCOPE_SPF1 for SPF; MFROM or PRA for Sender ID */
	uint64_t budget_ms;   /* whole-check time budget; 0: SPF_BUDGET_MS_DEFAULT */
	uint64_t now;         /* %{t}; 0: the current time */
	/* explanation for a fail without a usable exp= (a macro string; NULL: a built-in one) */
	const char *default_exp;
	/* parsed records to reuse (one per thread); NULL: parse every record fetched */
	struct spf_record_cache *cache;
	/* told every step of the check (spfquery's debug output); NULL: none */
	void (*trace)(void *arg, const struct spf_trace *t);
	void *trace_arg;
};

struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;
	char client_ip[46];          /* the client, IPv4-mapped shown as IPv4 (RFC 5952) */
	char domain[SPF_SENDER_MAX]; /* the domain checked (sender's or HELO), as given */
	char sender[SPF_SENDER_MAX]; /* as used for %{s} (postmaster substituted) */
	char explanation[SPF_EXPLANATION_MAX]; /* fail: exp= text or the default; else a note */
	char mechanism[SPF_TEXT_MAX]; /* the term that decided it, as written; "" for none */
	const char *reason;           /* permerror/temperror: why (static text) */
	char problem[SPF_TEXT_MAX];   /* permerror: the text at fault; "" when none */
	unsigned lookups;             /* DNS-querying terms evaluated */
	unsigned voids;               /* void lookups */
	unsigned queries;             /* DNS queries made */
};

/*
 * Runs check_host() for req. Always fills out (result permerror/temperror for problems of the
 * policy or of DNS); returns -EINVAL only for a request that cannot be evaluated (no address,
 * sender too long) and -ENOMEM.
 */
int spf_eval_check(struct dns_resolver *dns, const struct spf_request *req,
                   struct spf_outcome *out);

/* "none" when the domain of sender (or helo) is not something SPF can check (§4.3). */
bool spf_eval_domain_ok(const char *domain);
