/*
 * Internet message reader (RFC 5322): the header section is read into fields, the body is
 * left to the caller to stream. Line ends may be CRLF or LF alone; fields are kept in the
 * CRLF form that DKIM and DomainKeys canonicalise (SMTP's wire form). Header bytes are kept
 * as they are: 8-bit, NUL, duplicate names, malformed lines.
 */
#pragma once

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Defaults for the caps: room for 10,000 signature fields and a 1 MB line, bounded memory. */
#define RFC5322_MAX_FIELDS 20000
#define RFC5322_MAX_BYTES (16u << 20)
/* fields' text is kept in blocks of this size (a larger field gets its own) */
#define RFC5322_BLOCK (16u << 10)
/* bytes rfc5322_read_fd reads at a time */
#define RFC5322_READ_CHUNK (256u << 10)

struct rfc5322_field {
	char *raw;        /* name ":" value, folded lines joined by CRLF, ending in CRLF */
	size_t len;       /* of raw, NUL bytes included */
	size_t name_len;  /* name without the WSP before ":"; 0 when the line is no field */
	size_t value_off; /* first byte after the ":" */
};

struct rfc5322_block;

struct rfc5322_header {
	struct rfc5322_field *f;
	size_t n, alloc;
	struct rfc5322_block *blocks; /* where the fields' text lives */
	size_t bytes;                 /* sum of f[].len */
	size_t max_fields, max_bytes;
	bool lf_only; /* the first line ended in LF alone */
};

enum rfc5322_state {
	RFC5322_LINE_START,
	RFC5322_LINE_CR, /* a line started with CR: the blank line, or a malformed line */
	RFC5322_IN_LINE,
	RFC5322_DONE,
};

struct rfc5322_reader {
	struct rfc5322_header *h;
	struct buf field; /* the field being read, already in CRLF form */
	enum rfc5322_state state;
	bool first_line_seen;
};

/* Caps of 0 take the defaults above. */
void rfc5322_header_init(struct rfc5322_header *h, size_t max_fields, size_t max_bytes);
void rfc5322_header_free(struct rfc5322_header *h);
/* Appends a whole field given as text (lines end in LF or CRLF; a final line end is added
 * when missing), as a milter receives it: -E2BIG past a cap, -ENOMEM. */
int rfc5322_header_add(struct rfc5322_header *h, const char *raw, size_t len);
/* The field's name is name (ASCII case-insensitive). */
bool rfc5322_field_is(const struct rfc5322_field *f, const char *name);
/* The header has a field named name. */
bool rfc5322_header_has(const struct rfc5322_header *h, const char *name);
/* The field's value unfolded (CR and LF dropped), WSP trimmed at both ends, appended to out. */
int rfc5322_field_value(const struct rfc5322_field *f, struct buf *out);

void rfc5322_reader_init(struct rfc5322_reader *r, struct rfc5322_header *h);
void rfc5322_reader_free(struct rfc5322_reader *r);
/*
 * Reads header bytes from data. Returns 1 when the header section is complete (*used bytes,
 * the blank line included, were header; the rest is body), 0 when all of data was taken and
 * more is needed, -E2BIG past a cap of the header, -ENOMEM.
 */
int rfc5322_reader_feed(struct rfc5322_reader *r, const char *data, size_t len, size_t *used);
/* The input ended inside the header section (a message without body): completes it. */
int rfc5322_reader_end(struct rfc5322_reader *r);

/* What rfc5322_read_fd hands on; each may be NULL; a negative return stops the reading. */
struct rfc5322_read_ops {
	int (*raw)(void *ctx, const char *data, size_t len);      /* every byte, as read */
	int (*header)(void *ctx, const struct rfc5322_header *h); /* once, header complete */
	int (*body)(void *ctx, const char *data, size_t len);     /* the body, in chunks */
};

/* Reads a message from fd to its end: the header into h, the rest streamed. Returns 0, -E2BIG
 * (header past a cap of h), -errno of read(2) or of a callback. */
int rfc5322_read_fd(int fd, struct rfc5322_header *h, const struct rfc5322_read_ops *ops,
                    void *ctx);

/*
 * The address of the first mailbox in an address-list value ("Name <a@b>", "a@b (comment)",
 * "group: a@b;"), into out with a NUL: -ENOENT when there is none, -ENOBUFS when too long.
 */
int rfc5322_first_address(const char *value, size_t len, char *out, size_t size);
