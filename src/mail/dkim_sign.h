/*
 * DKIM signing (RFC 6376 §5, RFC 8301, RFC 8463): rsa-sha256 or ed25519-sha256 (never sha1),
 * one or several signatures per message (dual RSA and Ed25519), the body streamed once for
 * all of them. The result is the DKIM-Signature fields to put on top of the message.
 *
 * Use: dkim_sign_new, dkim_sign_body for each body chunk, dkim_sign_finish with the header.
 */
#pragma once

#include "core/buf.h"
#include "dkim_canon.h"
#include "dkim_key.h"
#include "rfc5322.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* signatures one signer makes */
#define DKIM_SIGN_MAX 8
/* field names in h= */
#define DKIM_SIGN_MAX_NAMES 256

struct dkim_sign_opts {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	const struct dkim_key_private *key;
	enum dkim_canon hc, bc; /* DKIM_CANON_SIMPLE or DKIM_CANON_RELAXED */
	/* Field names to sign, each instance present; NULL: dkim_sign_default_headers. */
	const char *const *headers;
	/* Names listed once more than present, so that adding one breaks the signature.
	 * NULL: From only; an empty list: none. */
	const char *const *oversign;
	const char *identity; /* i= (an address at d= or under it); NULL: none */
	bool body_length;     /* l= with the body length: content appended later is unsigned */
	int64_t timestamp;    /* t=; 0: now */
	uint64_t expire;      /* x= this many seconds after t=; 0: none */
};

/* RFC 6376 §5.4.1, plus Sender, Message-ID and the fields that say how to read the body. */
extern const char *const dkim_sign_default_headers[];

struct dkim_sign;

/* One signature per opts[i]. -EINVAL: a bad domain, selector, identity or field name;
 * -ERANGE: an RSA key outside DKIM_KEY_RSA_MIN..DKIM_KEY_RSA_MAX bits. */
int dkim_sign_new(const struct dkim_sign_opts *opts, size_t n, struct dkim_sign **out);
void dkim_sign_free(struct dkim_sign *s);
int dkim_sign_body(struct dkim_sign *s, const char *data, size_t len);
/* Appends the signature fields for header h, the first signature first, lines ending in eol
 * ("\r\n" or "\n"). */
int dkim_sign_finish(struct dkim_sign *s, const struct rfc5322_header *h, const char *eol,
                     struct buf *out);
/* A domain name or selector as DKIM can look it up: LDH labels of 1-63, 253 in all. */
bool dkim_sign_valid_name(const char *s);
