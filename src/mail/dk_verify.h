/*
 * DomainKeys verification (RFC 4870): every DomainKey-Signature field up to a limit, each with
 * its own result ("domainkeys=" in Authentication-Results). A signature covers the fields
 * below it (those h= names, when h= is given) and the body, in one SHA-1 hash; the signing
 * identity is the Sender, else the From address, and must be at d= or under it.
 */
#pragma once

#include "core/dns.h"
#include "dkim_canon.h"
#include "dkim_key.h"
#include "dkim_result.h"
#include "rfc5322.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DK_VERIFY_MAX_SIGS 8
/* h= entries a signature may list */
#define DK_VERIFY_MAX_H 1024

struct dk_verify_opts {
	size_t max_signatures; /* 0: DK_VERIFY_MAX_SIGS */
	unsigned min_rsa_bits; /* 0: 1024 (RFC 8301); shorter keys give "policy" */
	struct dkim_key_cache *cache;
};

struct dk_verify;

int dk_verify_new(const struct dk_verify_opts *o, struct dns_resolver *r, struct dk_verify **out);
void dk_verify_free(struct dk_verify *v);
int dk_verify_header(struct dk_verify *v, const struct rfc5322_header *h);
int dk_verify_body(struct dk_verify *v, const char *data, size_t len);
int dk_verify_finish(struct dk_verify *v);
size_t dk_verify_count(const struct dk_verify *v);
const struct dkim_sig_result *dk_verify_result(const struct dk_verify *v, size_t i);
size_t dk_verify_ignored(const struct dk_verify *v);

/*
 * The fields a DomainKeys signature at index sig covers, in hashing order, into idx (room for
 * h->n) and their number into *count: those below it; with h= (names, n > 0), only fields so
 * named, ordered by their first name in h= (every instance of a name counts). -ENOMEM.
 */
int dk_verify_select(const struct rfc5322_header *h, size_t sig,
                     const struct dkim_canon_name *names, size_t n, size_t *idx, size_t *count);
/* Hashes the covered fields and the separator CRLF into b (a fresh SHA-1 body hash). */
int dk_verify_hash_header(struct dkim_canon_body *b, const struct rfc5322_header *h,
                          const size_t *idx, size_t n);
