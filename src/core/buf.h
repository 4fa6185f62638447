/* Growable byte buffer with a hard size cap; the data is always NUL-terminated. */
#pragma once

#include "cleanup.h"

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;   /* NULL until the first append */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* cap on len; appends past it fail with -ENOBUFS */
};

#define BUF_INIT(cap) ((struct buf){.max = (cap)})

void buf_init(struct buf *b, size_t max);
/* Frees the data and resets to empty; the cap is kept. NULL-safe. */
void buf_free(struct buf *b);
/* Ensures room for extra more bytes: -ENOBUFS past the cap, -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (all if n >= len). */
void buf_consume(struct buf *b, size_t n);
/* Empties without freeing. */
void buf_reset(struct buf *b);
/* "" for an empty buffer, never NULL. */
const char *buf_cstr(const struct buf *b);
/* Hands the NUL-terminated data to the caller (NULL on allocation failure) and resets. */
char *buf_steal(struct buf *b);

#define _cleanup_buf_ _cleanup_(buf_free)
