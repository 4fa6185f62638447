#include "dk_sign.h"

#include "core/cleanup.h"
#include "dk_verify.h"
#include "dkim_b64.h"
#include "dkim_sign.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_WIDTH 78
/* h= is folded only to keep within RFC 5322's 998: not every DomainKeys verifier takes FWS
 * in it */
#define H_WIDTH 900
#define SIG_BYTES_MAX 1024

struct dk_sign {
	struct dk_sign_opts o;
	struct dkim_canon_body body; /* the header fields, then the body: one SHA-1 */
	struct buf head;             /* the field up to "b=", CRLF form */
	bool have_header, finished;
};

static bool
valid_names(const char *const *names)
{
	for (; names && *names; names++) {
		if (!**names)
			return false;
		for (const char *p = *names; *p; p++)
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == ':')
				return false;
	}
	return true;
}

int
dk_sign_new(const struct dk_sign_opts *o, struct dk_sign **out)
{
	if (!o->key || !o->key->pkey || o->key->type != DKIM_KEY_RSA || !o->domain ||
	    !o->selector || !dkim_sign_valid_name(o->domain) ||
	    !dkim_sign_valid_name(o->selector) ||
	    (o->canon != DK_CANON_SIMPLE && o->canon != DK_CANON_NOFWS) || !valid_names(o->headers))
		return -EINVAL;
	if (o->key->bits < DKIM_KEY_RSA_MIN || o->key->bits > DKIM_KEY_RSA_MAX)
		return -ERANGE;
	struct dk_sign *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->head = BUF_INIT(256 * 1024);
	int r = dkim_canon_body_init(&s->body, o->canon, DKIM_HASH_SHA1, DKIM_CANON_NO_LIMIT);
	if (r < 0) {
		dk_sign_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void
dk_sign_free(struct dk_sign *s)
{
	if (!s)
		return;
	dkim_canon_body_free(&s->body);
	buf_free(&s->head);
	free(s);
}

static bool
wanted(const struct dk_sign_opts *o, const struct rfc5322_field *f)
{
	if (f->name_len == 0)
		return false;
	for (const char *const *n = o->headers; n && *n; n++)
		if (rfc5322_field_is(f, *n))
			return true;
	return !o->headers;
}

/* Appends text to the field, folding first when it would pass width. */
static int
put(struct buf *b, size_t *col, const char *s, size_t n, bool space, size_t width)
{
	int r = 0;
	if (*col + n + space > width && *col > 8) {
		r = buf_append(b, "\r\n\t", 3);
		*col = 8;
		space = false;
	}
	if (r == 0 && space)
		r = buf_append(b, " ", 1);
	*col += n + space;
	return r < 0 ? r : buf_append(b, s, n);
}

/* "DomainKey-Signature: a=rsa-sha1; q=dns; c=..; s=..; d=..; h=a:b:..; b=" */
static int
build_head(struct dk_sign *s, const struct rfc5322_header *h, const size_t *idx, size_t n)
{
	char text[600];
	size_t col = 0;
	int r = put(&s->head, &col, "DomainKey-Signature:", 20, false, LINE_WIDTH);
	snprintf(text, sizeof(text), "a=rsa-sha1; q=dns; c=%s;",
	         s->o.canon == DK_CANON_NOFWS ? "nofws" : "simple");
	if (r == 0)
		r = put(&s->head, &col, text, strlen(text), true, LINE_WIDTH);
	snprintf(text, sizeof(text), "s=%s; d=%s;", s->o.selector, s->o.domain);
	if (r == 0)
		r = put(&s->head, &col, text, strlen(text), true, LINE_WIDTH);
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct rfc5322_field *f = &h->f[idx[i]];
		snprintf(text, sizeof(text), "%s%.*s%s", i ? "" : "h=", (int)f->name_len, f->raw,
		         i + 1 < n ? ":" : ";");
		r = put(&s->head, &col, text, strlen(text), i == 0, i == 0 ? LINE_WIDTH : H_WIDTH);
	}
	return r < 0 ? r : put(&s->head, &col, "b=", 2, true, LINE_WIDTH);
}

int
dk_sign_header(struct dk_sign *s, const struct rfc5322_header *h)
{
	_cleanup_free_ size_t *idx = calloc(h->n + 1, sizeof(size_t));
	size_t n = 0;
	if (!idx)
		return -ENOMEM;
	if (s->have_header)
		return -EALREADY;
	s->have_header = true;
	for (size_t i = 0; i < h->n && n < DK_SIGN_MAX_NAMES; i++)
		if (wanted(&s->o, &h->f[i]))
			idx[n++] = i;
	int r = build_head(s, h, idx, n);
	return r < 0 ? r : dk_verify_hash_header(&s->body, h, idx, n);
}

int
dk_sign_body(struct dk_sign *s, const char *data, size_t len)
{
	return s->have_header ? dkim_canon_body_update(&s->body, data, len) : -EINVAL;
}

/* The field with eol line ends and the base64 signature folded after "b=". */
static int
put_field(const struct buf *head, const char *b64, const char *eol, struct buf *out)
{
	size_t col = 0, el = strlen(eol);
	int r = 0;
	for (size_t i = 0; i < head->len && r == 0; i++) {
		if (head->data[i] == '\r' && i + 1 < head->len && head->data[i + 1] == '\n') {
			r = buf_append(out, eol, el);
			i++;
			col = 0;
		} else {
			r = buf_append(out, head->data + i, 1);
			col += head->data[i] == '\t' ? 8 : 1;
		}
	}
	for (size_t i = 0, len = strlen(b64); i < len && r == 0;) {
		size_t room = col < LINE_WIDTH ? LINE_WIDTH - col : 0;
		if (room < 8) {
			r = buf_append(out, eol, el);
			r = r < 0 ? r : buf_append(out, "\t", 1);
			col = 8;
			continue;
		}
		size_t k = len - i < room ? len - i : room;
		r = buf_append(out, b64 + i, k);
		col += k;
		i += k;
	}
	return r < 0 ? r : buf_append(out, eol, el);
}

int
dk_sign_finish(struct dk_sign *s, const char *eol, struct buf *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE], sig[SIG_BYTES_MAX];
	char b64[DKIM_B64_LEN(SIG_BYTES_MAX) + 1];
	unsigned dlen;
	size_t slen = sizeof(sig);
	if (!s->have_header || s->finished)
		return -EINVAL;
	s->finished = true;
	int r = dkim_canon_body_final(&s->body, digest, &dlen);
	if (r == 0)
		r = dkim_key_private_sign(s->o.key, DKIM_HASH_SHA1, digest, dlen, sig, &slen);
	if (r == 0)
		r = dkim_b64_encode(sig, slen, b64, sizeof(b64));
	return r < 0 ? r : put_field(&s->head, b64, eol, out);
}
