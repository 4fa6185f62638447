/*
 * DomainKeys signing (RFC 4870): one rsa-sha1 DomainKey-Signature over the header fields below
 * it and the body. DomainKeys is historic and SHA-1 only; it is here for the receivers that
 * still check it. The header is hashed first, so it is given before the body.
 *
 * Use: dk_sign_new, dk_sign_header, dk_sign_body for each chunk, dk_sign_finish.
 */
#pragma once

#include "core/buf.h"
#include "dkim_canon.h"
#include "dkim_key.h"
#include "rfc5322.h"

#include <stddef.h>

/* field names in h= */
#define DK_SIGN_MAX_NAMES 512

struct dk_sign_opts {
	const char *domain;                 /* d= */
	const char *selector;               /* s= */
	const struct dkim_key_private *key; /* RSA */
	enum dkim_canon canon;              /* DK_CANON_SIMPLE or DK_CANON_NOFWS */
	/* Names of the fields to sign; NULL: every field. h= lists each field signed, in order. */
	const char *const *headers;
};

struct dk_sign;

/* -EINVAL: bad domain, selector or field name, or a key that is not RSA; -ERANGE: bits. */
int dk_sign_new(const struct dk_sign_opts *o, struct dk_sign **out);
void dk_sign_free(struct dk_sign *s);
/* The header of the message; the signature goes on top of it. */
int dk_sign_header(struct dk_sign *s, const struct rfc5322_header *h);
int dk_sign_body(struct dk_sign *s, const char *data, size_t len);
/* Appends the DomainKey-Signature field, lines ending in eol. */
int dk_sign_finish(struct dk_sign *s, const char *eol, struct buf *out);
