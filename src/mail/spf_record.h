/*
 * SPF records: choosing the one record of a domain (RFC 7208 §4.5, RFC 4406 §4.4) and parsing
 * it (RFC 7208 §4.6, §5, §6). A record is checked in full before evaluation: any syntax error
 * anywhere makes it a permerror (§4.6).
 */
#pragma once

#include "core/cleanup.h"
#include "core/dns.h"
#include "spf_result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Terms in one record. The RFC sets no number; a record past this is refused as hostile. */
#define SPF_TERMS_MAX 1024

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
};

/* Which records a check selects (Sender ID scopes; v=spf1 counts as "mfrom,pra" there). */
enum spf_scope {
	SPF_SCOPE_SPF1,  /* RFC 7208: v=spf1 only */
	SPF_SCOPE_MFROM, /* RFC 4406: spf2.0/...mfrom..., else v=spf1 */
	SPF_SCOPE_PRA,   /* RFC 4406: spf2.0/...pra..., else v=spf1 */
};

/* A byte range of the record text. */
struct spf_span {
	uint32_t off, len;
};

struct spf_term {
	uint8_t mech;         /* enum spf_mech */
	uint8_t qual;         /* SPF_PASS, SPF_FAIL, SPF_SOFTFAIL or SPF_NEUTRAL */
	uint8_t cidr4, cidr6; /* a, mx, ip4, ip6 prefix lengths (defaults 32 and 128) */
	struct spf_span text; /* the whole term, qualifier included */
	struct spf_span spec; /* domain-spec; len 0: the current domain (a, mx, ptr) */
	uint8_t addr[16];     /* ip4 (first 4 bytes), ip6 */
};

struct spf_record {
	unsigned refs;    /* owners: the parser's caller, and a cache holding it */
	const char *text; /* the record, NUL-terminated, owned by the record */
	size_t len;
	size_t n;
	struct spf_term *terms; /* mechanisms only, in order */
	bool has_redirect, has_exp;
	struct spf_span redirect, exp; /* their domain-specs */
};

/* Why a record is a permerror: a fixed message plus the piece of text at fault. */
struct spf_error {
	const char *msg;
	struct spf_span at; /* in the record text; len 0: no particular piece */
};

/*
 * Picks the one record for scope among the TXT records of a (status DNS_OK). Returns its
 * index, -ENOENT when there is none (result none), -ENOTUNIQ when there are several
 * (permerror); err->msg says which.
 */
int spf_record_select(const struct dns_answer *a, enum spf_scope scope, struct spf_error *err);

/*
 * Parses a whole record, version included. 0 with *out set (free with spf_record_free);
 * -EINVAL with err describing the first syntax error (err->at relative to text);
 * -E2BIG past SPF_TERMS_MAX terms; -ENOMEM.
 */
int spf_record_parse(const char *text, size_t len, struct spf_record **out, struct spf_error *err);
/* Drops one reference; the last one frees. */
void spf_record_free(struct spf_record *r);
DEFINE_CLEANUP_FUNC(struct spf_record, spf_record_free)

/*
 * Parsed records kept by their text, so a busy MTA parses each policy once (warm DNS caches
 * hand out the same TXT strings again and again). Bounded; the least recently used goes.
 * Not thread-safe: one cache per thread.
 */
struct spf_record_cache;

int spf_record_cache_new(size_t max, struct spf_record_cache **out);
void spf_record_cache_free(struct spf_record_cache *c);
DEFINE_CLEANUP_FUNC(struct spf_record_cache, spf_record_cache_free)
/* spf_record_parse through the cache c (NULL: no cache); free *out with spf_record_free. */
int spf_record_cache_parse(struct spf_record_cache *c, const char *text, size_t len,
                           struct spf_record **out, struct spf_error *err);
/* Terms of r that make DNS queries (include, a, mx, ptr, exists, redirect). */
size_t spf_record_dns_terms(const struct spf_record *r);
