#include "dkim_b64.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

enum { B64_PAD = 64, B64_WS = 65, B64_BAD = 66 };

/* 0-63 for the alphabet, B64_PAD for "=", B64_WS for FWS, B64_BAD for the rest */
/* clang-format off */
static const unsigned char b64_class[256] = {
	66, 66, 66, 66, 66, 66, 66, 66, 66, 65, 65, 66, 66, 65, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 62, 66, 66, 66, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 66, 66, 66, 64, 66, 66,
	66,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 66, 66, 66, 66, 66,
	66, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
	66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
};
/* clang-format on */

/* Emits the bytes of one group of 4 sextets of which pad are "=". */
static int
emit_group(const unsigned char q[4], unsigned pad, unsigned char *out, size_t size, size_t *o)
{
	unsigned long v =
	    (unsigned long)q[0] << 18 | (unsigned long)q[1] << 12 | (unsigned long)q[2] << 6 | q[3];
	size_t n = 3 - pad;
	if (size - *o < n)
		return -ENOBUFS;
	for (size_t i = 0; i < n; i++)
		out[(*o)++] = (unsigned char)(v >> (16 - 8 * i));
	return 0;
}

/* Four alphabet characters, the common case, decoded at once; false for anything else. */
static bool
quad(const char *in, unsigned char *out)
{
	uint32_t a = b64_class[(unsigned char)in[0]], b = b64_class[(unsigned char)in[1]];
	uint32_t c = b64_class[(unsigned char)in[2]], d = b64_class[(unsigned char)in[3]];
	if ((a | b | c | d) >= 64)
		return false;
	uint32_t v = a << 18 | b << 12 | c << 6 | d;
	out[0] = (unsigned char)(v >> 16);
	out[1] = (unsigned char)(v >> 8);
	out[2] = (unsigned char)v;
	return true;
}

int
dkim_b64_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	unsigned char q[4];
	unsigned nq = 0, pad = 0;
	size_t o = 0;
	bool done = false;

	for (size_t i = 0; i < len; i++) {
		/* between groups, whole groups at a time */
		while (nq == 0 && !done && len - i >= 4 && size - o >= 3 && quad(in + i, out + o)) {
			o += 3;
			i += 4;
		}
		if (i >= len)
			break;
		unsigned char c = b64_class[(unsigned char)in[i]];
		if (c == B64_WS)
			continue;
		/* "=" only ends the last group: "xx==" or "xxx=" */
		if (c == B64_BAD || done || (c == B64_PAD && nq < 2) || (pad && c != B64_PAD))
			return -EINVAL;
		if (c == B64_PAD)
			pad++;
		q[nq++] = c == B64_PAD ? 0 : c;
		if (nq < 4)
			continue;
		int r = emit_group(q, pad, out, size, &o);
		if (r < 0)
			return r;
		nq = 0;
		done = pad > 0;
	}
	if (nq != 0 || o > INT_MAX)
		return -EINVAL;
	return (int)o;
}

int
dkim_b64_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	if (len > INT_MAX / 2 || size <= DKIM_B64_LEN(len))
		return -ENOBUFS;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}
