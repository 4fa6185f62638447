/*
 * Recording an SPF or Sender ID result: the Received-SPF header field (RFC 7208 §9.1) and the
 * spf= / sender-id= methods of Authentication-Results (RFC 8601 §2.7.2, RFC 7208 §9.2).
 * The Received-SPF text follows pyspf's wording so the two can be compared line for line.
 */
#pragma once

#include "spf_eval.h"

#include <stddef.h>

/* Fits every header we build (the inputs are capped by struct spf_outcome). */
#define SPF_HEADER_MAX 4096

/* "domain of example.com designates 192.0.2.1 as permitted sender" and the like. */
int spf_header_comment(const struct spf_request *req, const struct spf_outcome *o, char *buf,
                       size_t len);

/*
 * The Received-SPF field body (without "Received-SPF: "): result, comment, then client-ip,
 * envelope-from, helo, receiver, problem, mechanism and identity. receiver NULL: the
 * request's, else "unknown". -ENOBUFS when len is too small.
 */
int spf_header_received(const struct spf_request *req, const struct spf_outcome *o,
                        const char *receiver, char *buf, size_t len);

/* "spf=pass smtp.mailfrom=user@example.com" or "spf=none smtp.helo=mail.example.com". */
int spf_header_authres(const struct spf_request *req, const struct spf_outcome *o, char *buf,
                       size_t len);

/* value as a Received-SPF value: bare when a dot-atom, else a quoted-string. */
int spf_header_quote(const char *value, char *buf, size_t len);
