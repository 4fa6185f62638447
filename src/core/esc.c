/* Terminal-safe text: see esc.h for the rule. */
#include "esc.h"

#include "json.h"

#include <string.h>

/* Bytes at s kept as they are (a run of printable UTF-8), or 0 when *s needs an escape. */
static size_t
esc_plain(const unsigned char *s)
{
	size_t n = json_utf8_len(s);

	if (n == 0 || s[0] < 0x20 || s[0] == 0x7f || s[0] == '\\')
		return 0;
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0) /* U+0080..U+009F */
		return 0;
	return n;
}

/* Calls put(piece, len, arg) for each character kept and each escape of s, in order. */
static int
esc_walk(const char *s, int (*put)(const char *, size_t, void *), void *arg)
{
	const unsigned char *p = (const unsigned char *)s;
	int r = 0;

	while (r >= 0 && *p) {
		size_t n = esc_plain(p);
		if (n) {
			r = put((const char *)p, n, arg);
			p += n;
			continue;
		}
		/* a C1 control is two bytes, both escaped; anything else is one */
		size_t k = json_utf8_len(p) == 2 ? 2 : 1;
		for (size_t i = 0; r >= 0 && i < k; i++, p++) {
			char e[5];
			if (*p == '\\')
				snprintf(e, sizeof(e), "\\\\");
			else
				snprintf(e, sizeof(e), "\\x%02x", *p);
			r = put(e, strlen(e), arg);
		}
	}
	return r;
}

static int
put_buf(const char *p, size_t n, void *arg)
{
	return buf_append(arg, p, n);
}

int
esc_text(struct buf *b, const char *s)
{
	return esc_walk(s, put_buf, b);
}

static int
put_file(const char *p, size_t n, void *arg)
{
	fwrite(p, 1, n, arg);
	return 0;
}

void
esc_fputs(const char *s, FILE *f)
{
	esc_walk(s, put_file, f);
}

struct esc_out {
	char *p;
	size_t size, len, want;
};

static int
put_copy(const char *p, size_t n, void *arg)
{
	struct esc_out *o = arg;

	/* a character or an escape is kept whole or not at all; nothing after a cut */
	if (o->len == o->want && o->len + n < o->size) {
		memcpy(o->p + o->len, p, n);
		o->len += n;
	}
	o->want += n;
	return 0;
}

size_t
esc_copy(char *out, size_t size, const char *s)
{
	struct esc_out o = {.p = out, .size = size};

	esc_walk(s, put_copy, &o);
	if (size)
		out[o.len] = '\0';
	return o.want;
}
