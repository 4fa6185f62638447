/*
 * DKIM keys: key records in DNS (RFC 6376 §3.6.1, RFC 8463; g= of RFC 4871 and RFC 4870 for
 * old signatures), their lookup through the core resolver with a cache of parsed keys, and
 * private keys for signing (PEM), generated or loaded.
 */
#pragma once

#include "core/buf.h"
#include "core/dns.h"
#include "dkim_canon.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* RSA sizes we sign with (RFC 8301: at least 1024; 2048 recommended) */
#define DKIM_KEY_RSA_MIN 1024
#define DKIM_KEY_RSA_MAX 4096
#define DKIM_KEY_RSA_WARN 2048
/* verifying: keys longer than this are refused (a p= of 8192 bits is already 1.1 KB) */
#define DKIM_KEY_RSA_VERIFY_MAX 8192
/* parsed keys remembered by a cache */
#define DKIM_KEY_CACHE_SIZE 64

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

struct dkim_key_ctx;

/* A public key record. pkey is NULL only in a cleared key. Copies share pkey and ctx (RSA
 * verification contexts prepared once): make them with dkim_key_share. */
struct dkim_key {
	EVP_PKEY *pkey;
	struct dkim_key_ctx *ctx;
	enum dkim_key_type type;
	unsigned bits;
	bool testing;      /* t=y */
	bool strict;       /* t=s: the i= domain must be d itself */
	bool sha1, sha256; /* hashes h= allows (both without h=) */
	bool has_g;        /* g= present (granularity, RFC 4871/4870) */
	char g[64];
};

struct dkim_key_private {
	EVP_PKEY *pkey;
	struct dkim_key_ctx *ctx; /* signing contexts prepared once; NULL: made each time */
	enum dkim_key_type type;
	unsigned bits;
};

struct dkim_key_cache;

/*
 * Parses a key record. Returns DKIM_RESULT_PASS with *out set, or DKIM_RESULT_PERMERROR with
 * the reason in why (syntax, revoked, unsupported v=/k=, not for email, bad key data); -ENOMEM.
 */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *why, size_t whylen);
void dkim_key_clear(struct dkim_key *k);
/* to becomes a copy of from holding its own references. */
void dkim_key_share(const struct dkim_key *from, struct dkim_key *to);
/* The key lets hash be used (h=). */
bool dkim_key_allows(const struct dkim_key *k, enum dkim_hash hash);
/* The local part of the signing identity matches g=; an empty g= matches nothing, except
 * for DomainKeys (empty_is_any), where it matches everything. */
bool dkim_key_granularity(const struct dkim_key *k, const char *local, bool empty_is_any);

/*
 * Fetches and parses selector._domainkey.domain through r. Returns DKIM_RESULT_PASS with *out
 * set, DKIM_RESULT_TEMPERROR (DNS timeout or failure) or DKIM_RESULT_PERMERROR (no key, bad
 * key) with why set; -ENOMEM. cache may be NULL.
 */
int dkim_key_fetch(struct dns_resolver *r, struct dkim_key_cache *cache, const char *selector,
                   const char *domain, struct dkim_key *out, char *why, size_t whylen);

/* Checks sig over digest (a hash of kind hash): 1 valid, 0 not, -ENOMEM. Ed25519 signs the
 * SHA-256 digest itself (RFC 8463). */
int dkim_key_verify(const struct dkim_key *k, enum dkim_hash hash, const unsigned char *digest,
                    size_t dlen, const unsigned char *sig, size_t slen);

int dkim_key_cache_new(struct dkim_key_cache **out);
void dkim_key_cache_free(struct dkim_key_cache *c);

/* A PEM private key (PKCS#8 or PKCS#1, not encrypted): -EINVAL when it is none,
 * -EOPNOTSUPP for a type other than RSA and Ed25519. */
int dkim_key_private_load(const char *pem, size_t len, struct dkim_key_private *out);
/* bits: RSA only. -EINVAL outside DKIM_KEY_RSA_MIN..DKIM_KEY_RSA_MAX. */
int dkim_key_private_generate(enum dkim_key_type type, unsigned bits, struct dkim_key_private *out);
/* Signs digest into sig (*slen: room in, length out): -ENOBUFS, -EIO. */
int dkim_key_private_sign(const struct dkim_key_private *k, enum dkim_hash hash,
                          const unsigned char *digest, size_t dlen, unsigned char *sig,
                          size_t *slen);
/* Appends the PKCS#8 PEM text. */
int dkim_key_private_pem(const struct dkim_key_private *k, struct buf *out);
/* Appends the key record "v=DKIM1; k=rsa; p=..." of the public half. */
int dkim_key_private_record(const struct dkim_key_private *k, struct buf *out);

/* What a key record says besides the key (RFC 6376 §3.6.1). */
struct dkim_key_record_opts {
	bool testing;     /* t=y */
	bool email_only;  /* s=email */
	const char *note; /* n=, any bytes: written as dkim-quoted-printable; NULL: none */
};
/* The note's bytes at most (a record stays within a few TXT strings). */
#define DKIM_KEY_NOTE_MAX 200
/* dkim_key_private_record with those tags before p=: -EINVAL for a note too long. */
int dkim_key_private_record_opts(const struct dkim_key_private *k,
                                 const struct dkim_key_record_opts *o, struct buf *out);
/* The public key pub is the public half of priv (key material compared, not text). */
bool dkim_key_matches(const struct dkim_key *pub, const struct dkim_key_private *priv);
/* The record is a tag list with an empty p= (a revoked key, RFC 6376 §3.6.1). */
bool dkim_key_record_revoked(const char *txt, size_t len);
void dkim_key_private_clear(struct dkim_key_private *k);
