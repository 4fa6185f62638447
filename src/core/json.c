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
		return buf_printf(b, "\\u%04x", c);
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
