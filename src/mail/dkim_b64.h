/*
 * Base64 as DKIM and DomainKeys use it (b=, bh=, p=): folding whitespace may appear anywhere
 * and is ignored; everything else is strict (alphabet, padding, length).
 */
#pragma once

#include <stddef.h>

/* Encoded length of n bytes, without a NUL. */
#define DKIM_B64_LEN(n) (((n) + 2) / 3 * 4)

/*
 * Decodes in[0..len) into out (at most size bytes), skipping SP, HTAB, CR and LF. Returns the
 * decoded length, -EINVAL for anything that is not base64 (a bad character, a lone or
 * misplaced "=", a length that is not a multiple of 4), -ENOBUFS when out is too small.
 */
int dkim_b64_decode(const char *in, size_t len, unsigned char *out, size_t size);
/* Encodes into out with a NUL: -ENOBUFS unless size > DKIM_B64_LEN(len). */
int dkim_b64_encode(const unsigned char *in, size_t len, char *out, size_t size);
