#include "dkim_tag.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

bool
dkim_tag_is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool
dkim_tag_list_next(const struct dkim_tag *t, size_t *pos, const char **item, size_t *len)
{
	size_t i = *pos, j = i;
	if (i > t->value_len)
		return false;
	while (j < t->value_len && t->value[j] != ':')
		j++;
	size_t a = i, b = j;
	while (a < b && dkim_tag_is_fws(t->value[a]))
		a++;
	while (b > a && dkim_tag_is_fws(t->value[b - 1]))
		b--;
	*item = t->value + a;
	*len = b - a;
	*pos = j + 1;
	return true;
}

bool
dkim_tag_is_subdomain(const char *sub, const char *dom)
{
	size_t sl = strlen(sub), dl = strlen(dom);
	if (sl == dl)
		return strcasecmp(sub, dom) == 0;
	return sl > dl && sub[sl - dl - 1] == '.' && strcasecmp(sub + sl - dl, dom) == 0;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_name_char(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR (%x21-3A / %x3C-7E), plus 8-bit bytes, which RFC 8616 lets UTF-8 use. */
static bool
is_value_char(char c)
{
	unsigned char u = (unsigned char)c;
	return (u >= 0x21 && u <= 0x7e && u != ';') || u >= 0x80;
}

#if defined(__SSE2__)
/* How many bytes from p are value characters (a long b= is hundreds), 16 at a time. */
static size_t
value_run(const char *p, size_t n)
{
	const __m128i semi = _mm_set1_epi8(';'), del = _mm_set1_epi8(0x7f);
	const __m128i low = _mm_set1_epi8(0x21), neg = _mm_set1_epi8(-1);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		/* signed: bytes 0x80-0xff are negative and allowed; 0x00-0x20 are not */
		__m128i ctl = _mm_and_si128(_mm_cmplt_epi8(a, low), _mm_cmpgt_epi8(a, neg));
		__m128i bad = _mm_or_si128(
		    _mm_or_si128(_mm_cmpeq_epi8(a, semi), _mm_cmpeq_epi8(a, del)), ctl);
		int m = _mm_movemask_epi8(bad);
		if (m)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
	while (i < n && is_value_char(p[i]))
		i++;
	return i;
}
#else
static size_t
value_run(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && is_value_char(p[i]))
		i++;
	return i;
}
#endif

static size_t
skip_fws(const char *s, size_t len, size_t pos)
{
	while (pos < len && dkim_tag_is_fws(s[pos]))
		pos++;
	return pos;
}

static bool
name_is_new(const struct dkim_tag_list *l, const char *name, size_t name_len)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->tag[i].name_len == name_len && memcmp(l->tag[i].name, name, name_len) == 0)
			return false;
	return true;
}

/* One tag-spec from pos (at a tag name) up to the ";" or the end; *pos moves past it. */
static int
parse_spec(const char *s, size_t len, size_t *pos, struct dkim_tag *t)
{
	size_t p = *pos;
	if (!is_alpha(s[p]))
		return -EINVAL;
	t->name = s + p;
	while (p < len && is_name_char(s[p]))
		p++;
	t->name_len = (size_t)(s + p - t->name);
	p = skip_fws(s, len, p);
	if (p >= len || s[p] != '=')
		return -EINVAL;
	t->raw_start = ++p;
	p = skip_fws(s, len, p);
	t->value = s + p;
	size_t end = p;
	while (p < len && s[p] != ';') {
		size_t k = value_run(s + p, len - p);
		if (k > 0) {
			p += k;
			end = p;
		} else if (dkim_tag_is_fws(s[p])) {
			p++;
		} else {
			return -EINVAL;
		}
	}
	t->value_len = end - (size_t)(t->value - s);
	t->raw_end = p;
	*pos = p;
	return 0;
}

int
dkim_tag_parse(const char *s, size_t len, struct dkim_tag_list *out)
{
	size_t pos = 0;
	out->n = 0;
	for (;;) {
		pos = skip_fws(s, len, pos);
		if (pos >= len)
			return 0;
		if (s[pos] == ';') {
			pos++;
			continue;
		}
		struct dkim_tag t;
		int r = parse_spec(s, len, &pos, &t);
		if (r < 0)
			return r;
		if (!name_is_new(out, t.name, t.name_len))
			return -EEXIST;
		if (out->n >= DKIM_TAG_MAX)
			return -E2BIG;
		out->tag[out->n++] = t;
	}
}

const struct dkim_tag *
dkim_tag_find(const struct dkim_tag_list *l, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < l->n; i++) {
		const struct dkim_tag *t = &l->tag[i];
		if (t->name_len == len && t->name[0] == name[0] && memcmp(t->name, name, len) == 0)
			return t;
	}
	return NULL;
}

bool
dkim_tag_value_is(const struct dkim_tag *t, const char *s, bool nocase)
{
	size_t len = strlen(s);
	if (t->value_len != len)
		return false;
	return nocase ? strncasecmp(t->value, s, len) == 0 : memcmp(t->value, s, len) == 0;
}

int
dkim_tag_value_copy(const struct dkim_tag *t, char *buf, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c == '\0')
			return -EINVAL;
		if (dkim_tag_is_fws(c))
			continue;
		if (o + 1 >= size)
			return -ENOBUFS;
		buf[o++] = c;
	}
	if (size == 0)
		return -ENOBUFS;
	buf[o] = '\0';
	return 0;
}
