/*
 * Canonicalisation (RFC 6376 §3.4, RFC 4870 §3.4) of header fields and of the body, the body
 * streamed in chunks of any size straight into a digest: a body is never held in memory.
 * Input line ends may be CRLF or LF alone; the canonical form always uses CRLF.
 */
#pragma once

#include "core/buf.h"
#include "rfc5322.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
	DK_CANON_SIMPLE, /* DomainKeys: an empty body stays empty */
	DK_CANON_NOFWS,  /* DomainKeys: every SP, HTAB and bare CR dropped */
};

enum dkim_hash {
	DKIM_HASH_SHA1,
	DKIM_HASH_SHA256,
};

/* Body bytes gathered before one digest update: small pieces cost more than the copy. */
#define DKIM_CANON_STAGE 4096
#define DKIM_CANON_NO_LIMIT UINT64_MAX

struct dkim_canon_body {
	EVP_MD_CTX *md;
	enum dkim_canon canon;
	uint64_t limit;       /* l=: bytes of canonical body hashed at most */
	uint64_t hashed;      /* bytes given to the digest */
	uint64_t length;      /* canonical body length, past the limit too */
	uint64_t empty_lines; /* held back: trailing empty lines are not part of the body */
	bool cr;              /* the last chunk ended in CR: the next may start with LF */
	bool in_line;         /* the current line has canonical content */
	bool wsp;             /* relaxed: a WSP run waits for the next non-WSP byte */
	int err;
	const char *run; /* input bytes that are their own canonical form, not yet hashed */
	size_t run_len;
	size_t staged;
	unsigned char stage[DKIM_CANON_STAGE];
};

/* A header field name as h= lists it (not NUL-terminated). */
struct dkim_canon_name {
	const char *name;
	size_t len;
};

/* The digest for hash, fetched once: NULL only when OpenSSL lacks it. */
const EVP_MD *dkim_canon_md(enum dkim_hash hash);

/* Appends the canonical form of a field (CRLF form, ending in CRLF, as rfc5322 keeps it). */
int dkim_canon_header(enum dkim_canon c, const char *raw, size_t len, struct buf *out);

/*
 * Appends the canonical forms of the fields names selects, as RFC 6376 §5.4.2 does: each name
 * takes the last instance not taken yet (a name with no instance left adds nothing). Field
 * skip (the signature being verified; SIZE_MAX for none) is never taken.
 */
int dkim_canon_select(const struct rfc5322_header *h, const struct dkim_canon_name *names, size_t n,
                      size_t skip, enum dkim_canon c, struct buf *out);

/* limit: DKIM_CANON_NO_LIMIT or the l= value. -ENOMEM, -EIO (OpenSSL). */
int dkim_canon_body_init(struct dkim_canon_body *b, enum dkim_canon c, enum dkim_hash hash,
                         uint64_t limit);
int dkim_canon_body_update(struct dkim_canon_body *b, const char *data, size_t len);
/* Ends the canonical body (pending lines are settled); the digest stays open, for the
 * pre-RFC drafts that hash more after the body. Idempotent. */
int dkim_canon_body_end(struct dkim_canon_body *b);
/* Ends the body and writes the digest (EVP_MAX_MD_SIZE bytes of room) and its length. */
int dkim_canon_body_final(struct dkim_canon_body *b, unsigned char *digest, unsigned *len);
void dkim_canon_body_free(struct dkim_canon_body *b);
