/*
 * DKIM verification (RFC 6376 §6, RFC 8301, RFC 8463): every DKIM-Signature field of a message
 * up to a limit, each with its own result and reason. The body is streamed; signatures that
 * share a body canonicalisation, hash and l= share one body hash.
 *
 * Use: dkim_verify_new, dkim_verify_header once the header is read, dkim_verify_body for each
 * body chunk, dkim_verify_finish (key lookups happen here), then the results.
 */
#pragma once

#include "core/dns.h"
#include "dkim_key.h"
#include "dkim_result.h"
#include "rfc5322.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DKIM_VERIFY_MAX_SIGS 8
/* seconds a t= may lie in the future (clocks differ) */
#define DKIM_VERIFY_CLOCK_SKEW 300
/* h= entries a signature may list */
#define DKIM_VERIFY_MAX_H 1024

struct dkim_verify_opts {
	size_t max_signatures; /* 0: DKIM_VERIFY_MAX_SIGS; the rest are counted, not checked */
	unsigned min_rsa_bits; /* 0: 1024 (RFC 8301); shorter keys give "policy" */
	bool reject_sha1;      /* rsa-sha1 gives "policy"; default: verified, marked weak */
	bool drafts;           /* also accept pre-RFC 4871 signatures: no v=, v=0.5, q=dns */
	int64_t now;           /* verification time (Unix seconds); 0: the clock */
	uint32_t clock_skew;   /* 0: DKIM_VERIFY_CLOCK_SKEW */
	struct dkim_key_cache *cache; /* parsed keys shared across messages; may be NULL */
};

struct dkim_verify;

/* r is borrowed and must outlive v. */
int dkim_verify_new(const struct dkim_verify_opts *o, struct dns_resolver *r,
                    struct dkim_verify **out);
void dkim_verify_free(struct dkim_verify *v);
/* Reads the signatures of the complete header h (h need not outlive the call). */
int dkim_verify_header(struct dkim_verify *v, const struct rfc5322_header *h);
int dkim_verify_body(struct dkim_verify *v, const char *data, size_t len);
/* Looks the keys up and completes every result; -ENOMEM, -EIO. */
int dkim_verify_finish(struct dkim_verify *v);

/* Signatures checked (at most max_signatures) and their results, in message order. */
size_t dkim_verify_count(const struct dkim_verify *v);
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i);
/* Signatures past the limit, not checked. */
size_t dkim_verify_ignored(const struct dkim_verify *v);
