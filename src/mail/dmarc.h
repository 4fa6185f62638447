/*
 * DMARC (RFC 7489): record parsing (§6.3, §6.4), policy discovery (§6.6.3) over core/dns,
 * identifier alignment (§3.1) with the Organizational Domain from the public suffix list
 * (§3.2, mail/dmarc_psl), the p/sp/pct policy (§6.3, §6.6.4), and the dmarc= method of
 * Authentication-Results (§11.2, RFC 8601).
 *
 * The caller brings the SPF and DKIM results; this module only looks up _dmarc records.
 */
#pragma once

#include "core/dns.h"
#include "dmarc_psl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMARC_URIS_MAX 512 /* rua= and ruf= values kept, as written */
#define DMARC_REASON_MAX 128
#define DMARC_DOMAIN_MAX DNS_NAME_MAX

enum dmarc_result {
	DMARC_RESULT_NONE,      /* no policy record (or no DMARC processing, §6.6.3) */
	DMARC_RESULT_PASS,      /* an aligned identifier passed */
	DMARC_RESULT_FAIL,      /* none did */
	DMARC_RESULT_TEMPERROR, /* the _dmarc lookup timed out or failed (SERVFAIL) */
	DMARC_RESULT_PERMERROR, /* the record found is unusable (§6.6.3 step 6.2) */
};

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_align {
	DMARC_ALIGN_RELAXED,
	DMARC_ALIGN_STRICT,
};

struct dmarc_record {
	enum dmarc_policy p, sp; /* sp is p when the record has none */
	bool has_sp;
	bool p_assumed; /* p=none assumed for an invalid p/sp with a valid rua (§6.6.3 6.1) */
	unsigned pct;   /* 0..100, default 100 */
	enum dmarc_align adkim, aspf;
	uint32_t ri;              /* default 86400 */
	char fo[16];              /* default "0" */
	char rf[32];              /* default "afrf" */
	char rua[DMARC_URIS_MAX]; /* "" when absent; cut at DMARC_URIS_MAX - 1 */
	char ruf[DMARC_URIS_MAX];
};

struct dmarc_dkim {
	const char *domain; /* d= */
	bool pass;
};

struct dmarc_input {
	const char *from_domain; /* RFC5322.From domain */
	const char *spf_domain;  /* the domain SPF checked (MAIL FROM, or HELO); may be NULL */
	bool spf_pass;
	size_t n_dkim;
	const struct dmarc_dkim *dkim;
	unsigned roll; /* 0..99, uniformly random in production: pct applies when roll < pct */
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;           /* p or sp, whichever applies to the From domain */
	enum dmarc_policy disposition;      /* what to do: policy after pct; none on pass */
	bool has_record;                    /* rec holds the record found */
	bool spf_aligned, dkim_aligned;     /* a passing identifier aligned with the From domain */
	char from_domain[DMARC_DOMAIN_MAX]; /* normalized: lower case, no final dot */
	char policy_domain[DMARC_DOMAIN_MAX]; /* where the record was found; "" if none */
	char org_domain[DMARC_DOMAIN_MAX];    /* the From domain's; itself if a public suffix */
	struct dmarc_record rec;
	char reason[DMARC_REASON_MAX];
};

/*
 * Parses a TXT record. 0: a usable policy record in *rec. -ENOMSG: not a DMARC record (it
 * does not start with v=DMARC1, §6.6.3 step 2). -EINVAL: a DMARC record without a valid p
 * (or with an invalid sp) and no valid rua URI (§6.6.3 step 6.2); *rec is then unusable.
 */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec);
/* Whether txt starts with the v=DMARC1 tag (§6.6.3 step 2). */
bool dmarc_record_is_dmarc(const char *txt, size_t len);

/* §3.1: whether a and b are aligned in mode (relaxed: same Organizational Domain). */
bool dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b,
                   enum dmarc_align mode);

/*
 * Evaluates DMARC for a message. Always fills out; returns -EINVAL only for unusable input
 * (no or malformed From domain, roll over 99; out->result is then permerror) and -ENOMEM.
 */
int dmarc_check(struct dns_resolver *dns, const struct dmarc_psl *psl, const struct dmarc_input *in,
                struct dmarc_outcome *out);

/*
 * The dmarc= method of Authentication-Results: "dmarc=fail (p=reject sp=none dis=reject)
 * header.from=example.com", the comment as OpenDMARC writes it (present when a record was
 * found). -ENOBUFS when len is too small (buf still terminated).
 */
int dmarc_authres(const struct dmarc_outcome *o, char *buf, size_t len);

const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);
