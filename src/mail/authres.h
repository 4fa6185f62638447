/*
 * Authentication-Results (RFC 8601): the field a verifier adds, and the authserv-id of a field
 * already in a message, so that ours can be told from one a sender forged (§5: a field that
 * claims our authserv-id before we add ours must be removed).
 */
#pragma once

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest authserv-id we read or write (a host name, with room). */
#define AUTHRES_ID_MAX 256

/*
 * Starts a field value: " authserv-id" (the leading space kept: milters insert the value as
 * is). Methods are appended with authres_add; with none, authres_finish adds "; none".
 */
int authres_begin(struct buf *out, const char *authserv_id);
/* Appends ";\r\n\t" and method (one resinfo, "spf=pass smtp.mailfrom=a@b"). */
int authres_add(struct buf *out, const char *method);
int authres_finish(struct buf *out, size_t methods);
/*
 * The authserv-id of a field value (what follows "Authentication-Results:"): CFWS skipped, a
 * token or quoted-string. -EINVAL when there is none, -ENOBUFS when longer than size - 1.
 */
int authres_authserv_id(const char *value, size_t len, char *out, size_t size);
/* The value's authserv-id is id (ASCII case-insensitive, as host names compare). */
bool authres_claims(const char *value, size_t len, const char *id);
/* A name usable as authserv-id: a token (RFC 2045) of 1..AUTHRES_ID_MAX - 1 bytes. */
bool authres_valid_id(const char *id);
