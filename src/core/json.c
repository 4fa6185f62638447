/* JSON string escaping that yields valid UTF-8 output for any input bytes. */
#include "json.h"

#include <stdint.h>
#include <string.h>

size_t
json_utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and past U+10FFFF are not valid */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int
json_escape_byte(struct buf *b, unsigned char c)
{
	switch (c) {
	case '"':
		return buf_append_str(b, "\\\"");
	case '\\':
		return buf_append_str(b, "\\\\");
	case '\n':
		return buf_append_str(b, "\\n");
	case '\t':
		return buf_append_str(b, "\\t");
	case '\r':
		return buf_append_str(b, "\\r");
	default:
		if (c < 0x20 || c == 0x7f)
			return buf_printf(b, "\\u%04x", c);
		return buf_append_str(b, "\\ufffd"); /* not UTF-8: see json.h */
	}
}

int
json_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int r = buf_append(b, "\"", 1);

	while (r >= 0 && *p) {
		size_t n = json_utf8_len(p);
		if (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\' && *p != 0x7f) {
			size_t run = 1; /* copy plain ASCII runs in one go */
			while (p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
				run++;
			r = buf_append(b, p, run);
			p += run;
		} else if (n > 1) {
			r = buf_append(b, p, n);
			p += n;
		} else {
			r = json_escape_byte(b, *p++);
		}
	}
	return r < 0 ? r : buf_append(b, "\"", 1);
}

bool
json_utf8_valid(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = json_utf8_len(p);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

int
json_base64(struct buf *b, const void *p, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
		if (i + 1 >= n)
			q[2] = '=';
		if (i + 2 >= n)
			q[3] = '=';
		r = buf_append(b, q, sizeof(q));
	}
	return r;
}

int
json_member(struct buf *b, const char *key, const char *s)
{
	int r = buf_printf(b, "\"%s\":", key);
	if (r >= 0)
		r = json_string(b, s);
	if (r >= 0 && !json_utf8_valid(s)) {
		r = buf_printf(b, ",\"%s_raw\":\"", key);
		if (r >= 0)
			r = json_base64(b, s, strlen(s));
		if (r >= 0)
			r = buf_append(b, "\"", 1);
	}
	return r;
}
