/*
 * JSON text for every --json output.
 *
 * One rule for bytes that are not UTF-8 (command lines, paths and DNS text may hold any):
 * each such byte becomes U+FFFD, the Unicode replacement character, so the output is always
 * valid UTF-8 and says openly that something was replaced; nothing is turned into another,
 * plausible character. Where the exact bytes matter, json_member also writes KEY_raw: the
 * original bytes in base64 (RFC 4648), only when a replacement happened.
 */
#pragma once

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Appends s as a JSON string with its quotes. Control characters become \uXXXX; each byte that
 * is not valid UTF-8 becomes \ufffd. -ENOBUFS past the buffer's cap.
 */
int json_string(struct buf *b, const char *s);
/*
 * "key":"s" and, when s is not valid UTF-8, ,"key_raw":"BASE64 of s". No leading comma; key
 * is written as given (a plain ASCII name).
 */
int json_member(struct buf *b, const char *key, const char *s);
/* Whether every byte of s is part of a valid UTF-8 sequence. */
bool json_utf8_valid(const char *s);
/* Appends the base64 (RFC 4648, padded) of n bytes, without quotes. */
int json_base64(struct buf *b, const void *p, size_t n);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
size_t json_utf8_len(const unsigned char *s);
