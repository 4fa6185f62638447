#include "rfc5322.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void
rfc5322_header_init(struct rfc5322_header *h, size_t max_fields, size_t max_bytes)
{
	*h = (struct rfc5322_header){
	    .max_fields = max_fields ? max_fields : RFC5322_MAX_FIELDS,
	    .max_bytes = max_bytes ? max_bytes : RFC5322_MAX_BYTES,
	};
}

/* One allocation for many fields, not one each. */
struct rfc5322_block {
	struct rfc5322_block *next;
	size_t used, size;
	char data[];
};

void
rfc5322_header_free(struct rfc5322_header *h)
{
	if (!h)
		return;
	while (h->blocks) {
		struct rfc5322_block *b = h->blocks;
		h->blocks = b->next;
		free(b);
	}
	free(h->f);
	rfc5322_header_init(h, h->max_fields, h->max_bytes);
}

/* The name is ftext (printable ASCII but ":"), ending at the ":" less any WSP before it. */
static size_t
field_name_len(const char *raw, size_t len, size_t *value_off)
{
	const char *colon = memchr(raw, ':', len);
	if (!colon)
		return 0;
	size_t end = (size_t)(colon - raw);
	*value_off = end + 1;
	while (end > 0 && (raw[end - 1] == ' ' || raw[end - 1] == '\t'))
		end--;
	for (size_t i = 0; i < end; i++)
		if ((unsigned char)raw[i] < 33 || (unsigned char)raw[i] > 126)
			return 0;
	return end;
}

static char *
block_copy(struct rfc5322_header *h, const char *raw, size_t len)
{
	struct rfc5322_block *b = h->blocks;
	if (!b || b->size - b->used < len) {
		size_t size = len > RFC5322_BLOCK / 4 ? len : RFC5322_BLOCK;
		if (!(b = malloc(sizeof(*b) + size)))
			return NULL;
		*b = (struct rfc5322_block){.next = h->blocks, .size = size};
		h->blocks = b;
	}
	char *p = b->data + b->used;
	memcpy(p, raw, len);
	b->used += len;
	return p;
}

/* Copies raw (CRLF form, ending in CRLF) in as the next field. */
static int
header_push(struct rfc5322_header *h, const char *raw, size_t len)
{
	if (h->n >= h->max_fields || len > h->max_bytes - h->bytes)
		return -E2BIG;
	if (h->n == h->alloc) {
		size_t alloc = h->alloc ? h->alloc * 2 : 32;
		struct rfc5322_field *f = reallocarray(h->f, alloc, sizeof(*f));
		if (!f)
			return -ENOMEM;
		h->f = f;
		h->alloc = alloc;
	}
	char *copy = block_copy(h, raw, len);
	if (!copy)
		return -ENOMEM;
	struct rfc5322_field *f = &h->f[h->n++];
	*f = (struct rfc5322_field){.raw = copy, .len = len};
	f->name_len = field_name_len(raw, len, &f->value_off);
	if (f->name_len == 0)
		f->value_off = 0;
	h->bytes += len;
	return 0;
}

/* Ends a line in b: a CR before the LF is the line end's, a lone LF gets one. */
static int
end_line(struct buf *b)
{
	if (b->len > 0 && b->data[b->len - 1] == '\r')
		return buf_append(b, "\n", 1);
	return buf_append(b, "\r\n", 2);
}

int
rfc5322_header_add(struct rfc5322_header *h, const char *raw, size_t len)
{
	_cleanup_buf_ struct buf b = BUF_INIT(h->max_bytes);
	int r = 0;
	for (size_t p = 0; p < len && r == 0;) {
		const char *nl = memchr(raw + p, '\n', len - p);
		size_t n = nl ? (size_t)(nl - raw) - p : len - p;
		r = buf_append(&b, raw + p, n);
		if (r == 0 && nl)
			r = end_line(&b);
		p += n + (nl != NULL);
	}
	if (r == 0 && (b.len < 2 || memcmp(b.data + b.len - 2, "\r\n", 2) != 0))
		r = end_line(&b);
	if (r < 0)
		return r == -ENOBUFS ? -E2BIG : r;
	return header_push(h, b.data, b.len);
}

bool
rfc5322_field_is(const struct rfc5322_field *f, const char *name)
{
	size_t len = strlen(name);
	return f->name_len == len && strncasecmp(f->raw, name, len) == 0;
}

bool
rfc5322_header_has(const struct rfc5322_header *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (rfc5322_field_is(&h->f[i], name))
			return true;
	return false;
}

int
rfc5322_field_value(const struct rfc5322_field *f, struct buf *out)
{
	size_t start = out->len;
	bool lead = true;
	for (size_t i = f->value_off; i < f->len; i++) {
		char c = f->raw[i];
		if (c == '\r' || c == '\n' || (lead && (c == ' ' || c == '\t')))
			continue;
		lead = false;
		int r = buf_append(out, &c, 1);
		if (r < 0)
			return r;
	}
	while (out->len > start &&
	       (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
		out->data[--out->len] = '\0';
	return 0;
}

void
rfc5322_reader_init(struct rfc5322_reader *r, struct rfc5322_header *h)
{
	*r = (struct rfc5322_reader){.h = h, .field = BUF_INIT(h->max_bytes)};
}

void
rfc5322_reader_free(struct rfc5322_reader *r)
{
	buf_free(&r->field);
}

static int
finish_field(struct rfc5322_reader *r)
{
	if (r->field.len == 0)
		return 0;
	int e = header_push(r->h, r->field.data, r->field.len);
	buf_reset(&r->field);
	return e;
}

static int
append(struct rfc5322_reader *r, const char *p, size_t n)
{
	if (n > r->h->max_bytes - r->h->bytes - r->field.len)
		return -E2BIG;
	return buf_append(&r->field, p, n) == 0 ? 0 : -ENOMEM;
}

/* Ends the line: a CR before the LF belongs to the line end, a lone LF gets one. */
static int
field_line_end(struct rfc5322_reader *r)
{
	bool cr = r->field.len > 0 && r->field.data[r->field.len - 1] == '\r';
	if (!r->first_line_seen)
		r->h->lf_only = !cr;
	r->first_line_seen = true;
	return cr ? append(r, "\n", 1) : append(r, "\r\n", 2);
}

/* The rest of the current line from data; *p moves past its LF when there is one. */
static int
read_line(struct rfc5322_reader *r, const char *data, size_t len, size_t *p)
{
	const char *nl = memchr(data + *p, '\n', len - *p);
	size_t n = nl ? (size_t)(nl - data) - *p : len - *p;
	int e = append(r, data + *p, n);
	*p += n;
	if (e < 0 || !nl)
		return e;
	(*p)++;
	r->state = RFC5322_LINE_START;
	return field_line_end(r);
}

/* At the start of a line: the blank line ends the header, WSP continues the field. */
static int
line_start(struct rfc5322_reader *r, char c, size_t *p)
{
	if (c == '\n') {
		(*p)++;
		r->state = RFC5322_DONE;
		return finish_field(r);
	}
	if (c == '\r') {
		(*p)++;
		r->state = RFC5322_LINE_CR;
		return 0;
	}
	r->state = RFC5322_IN_LINE;
	return c == ' ' || c == '\t' ? 0 : finish_field(r);
}

/* After a CR at a line start: CRLF is the blank line; else the CR begins a malformed line. */
static int
line_cr(struct rfc5322_reader *r, char c, size_t *p)
{
	if (c == '\n') {
		(*p)++;
		r->state = RFC5322_DONE;
		return finish_field(r);
	}
	r->state = RFC5322_IN_LINE;
	int e = finish_field(r);
	return e < 0 ? e : append(r, "\r", 1);
}

int
rfc5322_reader_feed(struct rfc5322_reader *r, const char *data, size_t len, size_t *used)
{
	size_t p = 0;
	int e = 0;
	while (p < len && r->state != RFC5322_DONE && e == 0) {
		if (r->state == RFC5322_LINE_START)
			e = line_start(r, data[p], &p);
		else if (r->state == RFC5322_LINE_CR)
			e = line_cr(r, data[p], &p);
		else
			e = read_line(r, data, len, &p);
	}
	*used = p;
	if (e < 0)
		return e;
	return r->state == RFC5322_DONE;
}

int
rfc5322_reader_end(struct rfc5322_reader *r)
{
	int e = 0;
	if (r->state == RFC5322_IN_LINE && r->field.len > 0)
		e = field_line_end(r);
	if (e == 0)
		e = finish_field(r);
	r->state = RFC5322_DONE;
	return e;
}

/* Copies value without comments; quoted strings keep their content, escapes included. */
static int
strip_comments(const char *v, size_t len, struct buf *out)
{
	unsigned depth = 0;
	bool quoted = false;
	int r = 0;
	for (size_t i = 0; i < len && r == 0; i++) {
		char c = v[i];
		if (depth > 0) {
			i += c == '\\';
			depth += c == '(';
			depth -= c == ')';
			continue;
		}
		if (!quoted && c == '(') {
			depth = 1;
			continue;
		}
		bool esc = quoted && c == '\\' && i + 1 < len;
		quoted ^= c == '"';
		r = buf_append(out, v + i, esc ? 2 : 1);
		i += esc;
	}
	return r;
}

/* End of the first list element: a "," or ";" outside quotes and angle brackets. */
static size_t
element_end(const char *s, size_t len, size_t start)
{
	bool quoted = false, angle = false;
	for (size_t i = start; i < len; i++) {
		if (s[i] == '\\' && quoted)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '<')
			angle = true;
		else if (!quoted && s[i] == '>')
			angle = false;
		else if (!quoted && !angle && (s[i] == ',' || s[i] == ';'))
			return i;
	}
	return len;
}

/* Past "display-name:" when the list starts with a group. */
static size_t
skip_group_name(const char *s, size_t len)
{
	bool quoted = false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && quoted)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && (s[i] == '<' || s[i] == '@' || s[i] == ','))
			return 0;
		else if (!quoted && s[i] == ':')
			return i + 1;
	}
	return 0;
}

/* Copies s[a..b) without whitespace (obsolete syntax allows it around "@" and "."). */
static int
copy_addr(const char *s, size_t a, size_t b, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = a; i < b; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			continue;
		if (o + 1 >= size)
			return -ENOBUFS;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return o > 0 ? 0 : -ENOENT;
}

int
rfc5322_first_address(const char *value, size_t len, char *out, size_t size)
{
	_cleanup_buf_ struct buf b = BUF_INIT(len + 1);
	if (size == 0)
		return -ENOBUFS;
	int r = strip_comments(value, len, &b);
	if (r < 0)
		return r;
	const char *s = buf_cstr(&b);
	size_t start = skip_group_name(s, b.len), end = element_end(s, b.len, start);
	const char *lt = memchr(s + start, '<', end - start);
	if (lt) {
		size_t a = (size_t)(lt - s) + 1;
		const char *gt = memchr(s + a, '>', end - a);
		size_t z = gt ? (size_t)(gt - s) : end;
		/* an obsolete route "@a,@b:" comes before the address */
		const char *colon = memchr(s + a, ':', z - a);
		return copy_addr(s, colon ? (size_t)(colon - s) + 1 : a, z, out, size);
	}
	return copy_addr(s, start, end, out, size);
}

/* Header bytes of a chunk to the reader; on completion the header callback, then the rest
 * of the chunk as body. */
static int
read_chunk(struct rfc5322_reader *rd, const struct rfc5322_read_ops *ops, void *ctx, const char *p,
           size_t n)
{
	size_t used = 0;
	if (rd->state != RFC5322_DONE) {
		int r = rfc5322_reader_feed(rd, p, n, &used);
		if (r <= 0)
			return r;
		if (ops->header && (r = ops->header(ctx, rd->h)) < 0)
			return r;
	}
	if (used < n && ops->body)
		return ops->body(ctx, p + used, n - used);
	return 0;
}

int
rfc5322_read_fd(int fd, struct rfc5322_header *h, const struct rfc5322_read_ops *ops, void *ctx)
{
	_cleanup_free_ char *chunk = malloc(RFC5322_READ_CHUNK);
	struct rfc5322_reader rd;
	int r = 0;
	if (!chunk)
		return -ENOMEM;
	rfc5322_reader_init(&rd, h);
	for (;;) {
		ssize_t n = read(fd, chunk, RFC5322_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		if (ops->raw && (r = ops->raw(ctx, chunk, (size_t)n)) < 0)
			break;
		if ((r = read_chunk(&rd, ops, ctx, chunk, (size_t)n)) < 0)
			break;
	}
	if (r == 0 && rd.state != RFC5322_DONE) {
		r = rfc5322_reader_end(&rd);
		if (r == 0 && ops->header)
			r = ops->header(ctx, h);
	}
	rfc5322_reader_free(&rd);
	return r;
}
