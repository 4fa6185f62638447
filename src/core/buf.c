/* Growable byte buffer with a hard size cap; the data is always NUL-terminated. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* First allocation: small strings should not cost a realloc per append. */
#define BUF_MIN_ALLOC 64

void
buf_init(struct buf *b, size_t max)
{
	*b = BUF_INIT(max);
}

void
buf_free(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	*b = BUF_INIT(b->max);
}

/* The largest allocation ever useful: the cap plus its NUL. */
static size_t
alloc_limit(const struct buf *b)
{
	return b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;
}

/* Geometric growth so n appends cost O(n) copies, clamped so we never hold more than the cap. */
static size_t
grow_size(const struct buf *b, size_t need)
{
	size_t limit = alloc_limit(b);
	size_t size = b->alloc > SIZE_MAX / 2 ? SIZE_MAX : b->alloc * 2;

	if (size < BUF_MIN_ALLOC)
		size = BUF_MIN_ALLOC;
	if (size < need)
		size = need;
	return size < limit ? size : limit;
}

int
buf_reserve(struct buf *b, size_t extra)
{
	if (!b || b->len > b->max || extra > b->max - b->len)
		return -ENOBUFS;
	size_t used = b->len + extra;
	if (used == SIZE_MAX)
		return -ENOMEM; /* no room left for the NUL */
	if (b->data && used + 1 <= b->alloc)
		return 0;
	size_t size = grow_size(b, used + 1);
	char *p = realloc(b->data, size);
	if (!p)
		return -ENOMEM;
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->alloc = size;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

/*
 * The first pass prints straight into the spare room; only when that is too small do we
 * reserve the exact size and print again. Arguments must not point into b itself.
 */
int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int r = buf_reserve(b, 0);
	if (r < 0)
		return r;

	size_t room = b->alloc - b->len;
	va_copy(aq, ap);
	int n = vsnprintf(b->data + b->len, room, fmt, aq);
	va_end(aq);
	if (n >= 0 && (size_t)n < room) {
		b->len += (size_t)n;
		return 0;
	}
	b->data[b->len] = '\0'; /* undo the partial first pass */
	if (n < 0)
		return -EINVAL;
	r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	if (vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap) != n) {
		b->data[b->len] = '\0';
		return -EINVAL;
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (!b->data)
		return;
	if (n >= b->len)
		n = b->len;
	else
		memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

const char *
buf_cstr(const struct buf *b)
{
	return b->data ? b->data : "";
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data;
	if (!p)
		p = calloc(1, 1);
	if (!p)
		return NULL;
	*b = BUF_INIT(b->max);
	return p;
}
