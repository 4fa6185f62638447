/*
 * The outcome of one DKIM or DomainKeys signature, and its Authentication-Results form
 * (RFC 8601 method syntax: "dkim=pass header.d=example.com header.s=s1 ...") or JSON.
 */
#pragma once

#include "core/buf.h"
#include "core/dns.h"

#include <stdbool.h>

enum dkim_result {
	DKIM_RESULT_NONE,      /* no signature */
	DKIM_RESULT_PASS,      /* verified */
	DKIM_RESULT_FAIL,      /* signature or body hash did not verify */
	DKIM_RESULT_NEUTRAL,   /* the signature field cannot be read (syntax) */
	DKIM_RESULT_POLICY,    /* verifiable, but refused by local policy (key too short) */
	DKIM_RESULT_TEMPERROR, /* key lookup failed for now (DNS timeout, SERVFAIL) */
	DKIM_RESULT_PERMERROR, /* cannot be verified: unsupported, no key, bad key, bad tags */
};

struct dkim_sig_result {
	enum dkim_result result;
	bool dk;      /* DomainKeys (method "domainkeys") rather than DKIM */
	bool testing; /* the key says t=y: the domain is testing DKIM */
	bool weak;    /* rsa-sha1 (RFC 8301): verified, but not secure */
	bool past_l;  /* the body goes on past l=: what follows it is not signed */
	unsigned key_bits;
	char reason[192];
	char domain[DNS_NAME_MAX];   /* d= */
	char selector[DNS_NAME_MAX]; /* s= */
	char algorithm[32];          /* a= */
	char identity[256];          /* DKIM: i= (decoded); DK: the Sender or From address */
	bool identity_sender;        /* DK: identity came from Sender (else From) */
	char b[9];                   /* the first 8 characters of b=, to tell signatures apart */
};

const char *dkim_result_name(enum dkim_result r);
/* Sets result and reason (printf format). */
void dkim_result_set(struct dkim_sig_result *res, enum dkim_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For a verifier's signature state s (with members res and pending): dkim_result_set on s->res
 * and s->pending = false; evaluates to false. */
#define DKIM_RESULT_FINAL(s, ...) (dkim_result_set(&(s)->res, __VA_ARGS__), (s)->pending = false)
/* Appends the Authentication-Results method form, one line without line end. */
int dkim_result_format(const struct dkim_sig_result *r, struct buf *out);
/* Appends one JSON object. */
int dkim_result_json(const struct dkim_sig_result *r, struct buf *out);
