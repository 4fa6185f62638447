#include "dkim_sign.h"

#include "core/cleanup.h"
#include "dkim_b64.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* folded lines of the signature field stay within this many columns */
#define LINE_WIDTH 78
#define SIG_BYTES_MAX 1024

const char *const dkim_sign_default_headers[] = {
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    NULL,
};

static const char *const oversign_from[] = {"from", NULL};

struct sbody {
	struct dkim_canon_body c;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen;
};

struct sspec {
	struct dkim_sign_opts o;
	struct sbody *body;
};

struct dkim_sign {
	struct sspec spec[DKIM_SIGN_MAX];
	size_t n;
	struct sbody *body[DKIM_SIGN_MAX];
	size_t nbody;
	bool finished;
};

/* The field being built: CRLF line ends (the form that is hashed), folded at LINE_WIDTH. */
struct line {
	struct buf *b;
	size_t col;
	int err;
};

bool
dkim_sign_valid_name(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		bool ldh = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		           (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
		if (*p == '.' && (label == 0 || p[1] == '.'))
			return false;
		if (*p != '.' && !ldh)
			return false;
		label = *p == '.' ? 0 : label + 1;
		if (label > 63)
			return false;
	}
	return true;
}

/* ftext, not empty (RFC 5322 §3.6.8) */
static bool
valid_field_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
			return false;
	return true;
}

static bool
names_valid(const char *const *names)
{
	for (; names && *names; names++)
		if (!valid_field_name(*names))
			return false;
	return true;
}

static bool
identity_valid(const char *id, const char *domain)
{
	const char *at = strrchr(id, '@');
	if (!at || !dkim_sign_valid_name(at + 1))
		return false;
	size_t il = strlen(at + 1), dl = strlen(domain);
	if (il == dl)
		return strcasecmp(at + 1, domain) == 0;
	return il > dl && at[il - dl] == '.' && strcasecmp(at + 1 + il - dl, domain) == 0;
}

static int
check_opts(const struct dkim_sign_opts *o)
{
	if (!o->key || !o->key->pkey || !o->domain || !o->selector)
		return -EINVAL;
	if (!dkim_sign_valid_name(o->domain) || !dkim_sign_valid_name(o->selector))
		return -EINVAL;
	if (o->identity && !identity_valid(o->identity, o->domain))
		return -EINVAL;
	if (!names_valid(o->headers) || !names_valid(o->oversign))
		return -EINVAL;
	if ((o->hc != DKIM_CANON_SIMPLE && o->hc != DKIM_CANON_RELAXED) ||
	    (o->bc != DKIM_CANON_SIMPLE && o->bc != DKIM_CANON_RELAXED))
		return -EINVAL;
	if (o->key->type == DKIM_KEY_RSA &&
	    (o->key->bits < DKIM_KEY_RSA_MIN || o->key->bits > DKIM_KEY_RSA_MAX))
		return -ERANGE;
	return 0;
}

/* Signatures with the same body canonicalisation share one body hash (all are SHA-256). */
static int
attach_body(struct dkim_sign *s, struct sspec *sp)
{
	for (size_t i = 0; i < s->nbody; i++) {
		if (s->body[i]->c.canon == sp->o.bc) {
			sp->body = s->body[i];
			return 0;
		}
	}
	struct sbody *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	s->body[s->nbody++] = b;
	sp->body = b;
	return dkim_canon_body_init(&b->c, sp->o.bc, DKIM_HASH_SHA256, DKIM_CANON_NO_LIMIT);
}

int
dkim_sign_new(const struct dkim_sign_opts *opts, size_t n, struct dkim_sign **out)
{
	if (n == 0 || n > DKIM_SIGN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int r = check_opts(&opts[i]);
		if (r < 0)
			return r;
	}
	struct dkim_sign *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s->spec[i].o = opts[i];
		int r = attach_body(s, &s->spec[i]);
		s->n++;
		if (r < 0) {
			dkim_sign_free(s);
			return r;
		}
	}
	*out = s;
	return 0;
}

void
dkim_sign_free(struct dkim_sign *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nbody; i++) {
		dkim_canon_body_free(&s->body[i]->c);
		free(s->body[i]);
	}
	free(s);
}

int
dkim_sign_body(struct dkim_sign *s, const char *data, size_t len)
{
	for (size_t i = 0; i < s->nbody; i++) {
		int r = dkim_canon_body_update(&s->body[i]->c, data, len);
		if (r < 0)
			return r;
	}
	return 0;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool
in_list(const char *const *list, const char *name, size_t upto)
{
	for (size_t i = 0; list && list[i] && i < upto; i++)
		if (lower(list[i][0]) == lower(name[0]) && strcasecmp(list[i], name) == 0)
			return true;
	return false;
}

static size_t
instances(const struct rfc5322_header *h, const char *name)
{
	size_t k = 0, len = strlen(name);
	for (size_t i = 0; i < h->n; i++) {
		const struct rfc5322_field *f = &h->f[i];
		k += f->name_len == len && lower(f->raw[0]) == lower(name[0]) &&
		     strncasecmp(f->raw, name, len) == 0;
	}
	return k;
}

static int
push_name(const char *name, size_t times, struct dkim_canon_name *names, size_t *n)
{
	for (size_t k = 0; k < times; k++) {
		if (*n >= DKIM_SIGN_MAX_NAMES)
			return -E2BIG;
		names[(*n)++] = (struct dkim_canon_name){name, strlen(name)};
	}
	return 0;
}

/* h=: each listed name once per instance present, oversigned names once more; From always. */
static int
build_names(const struct dkim_sign_opts *o, const struct rfc5322_header *h,
            struct dkim_canon_name *names, size_t *n)
{
	const char *const *list = o->headers ? o->headers : dkim_sign_default_headers;
	const char *const *over = o->oversign ? o->oversign : oversign_from;
	int r = 0;
	*n = 0;
	for (size_t i = 0; list[i] && r == 0; i++)
		if (!in_list(list, list[i], i))
			r = push_name(list[i],
			              instances(h, list[i]) + in_list(over, list[i], SIZE_MAX),
			              names, n);
	for (size_t i = 0; over[i] && r == 0; i++)
		if (!in_list(list, over[i], SIZE_MAX) && !in_list(over, over[i], i))
			r = push_name(over[i], instances(h, over[i]) + 1, names, n);
	if (r == 0 && !in_list(list, "from", SIZE_MAX) && !in_list(over, "from", SIZE_MAX))
		r = push_name("from", instances(h, "from") ?: 1, names, n);
	return r;
}

/* Appends text, folding first when it would pass the width. */
static void
put(struct line *l, const char *s, size_t n, bool space)
{
	if (l->err)
		return;
	if (l->col + n + space > LINE_WIDTH && l->col > 8) {
		l->err = buf_append(l->b, "\r\n\t", 3);
		l->col = 8;
		space = false;
	}
	if (space && !l->err)
		l->err = buf_append(l->b, " ", 1);
	if (!l->err)
		l->err = buf_append(l->b, s, n);
	l->col += n + space;
}

/* name value ";" as one piece (values here are short: names, numbers, base64 of a hash) */
static void
tag(struct line *l, const char *name, const char *value)
{
	char text[512];
	size_t nl = strlen(name), vl = strlen(value);
	if (nl + vl + 1 > sizeof(text)) {
		l->err = -ENOBUFS;
		return;
	}
	memcpy(text, name, nl);
	memcpy(text + nl, value, vl);
	text[nl + vl] = ';';
	put(l, text, nl + vl + 1, true);
}

static void
tag_number(struct line *l, const char *name, uint64_t v)
{
	char digits[24];
	size_t i = sizeof(digits) - 1;
	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	tag(l, name, digits + i);
}

/* i= in dkim-quoted-printable: ";", "=", spaces, controls and 8-bit bytes as =XX. */
static void
tag_identity(struct line *l, const char *id)
{
	char text[512] = "i=";
	size_t o = 2;
	for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 < sizeof(text); p++) {
		if (*p > 0x20 && *p < 0x7f && *p != ';' && *p != '=')
			text[o++] = (char)*p;
		else
			o += (size_t)snprintf(text + o, sizeof(text) - o, "=%02X", *p);
	}
	text[o++] = ';';
	put(l, text, o, true);
}

static void
tag_h(struct line *l, const struct dkim_canon_name *names, size_t n)
{
	char piece[300];
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(piece, sizeof(piece), "%s%.*s%c", i ? "" : "h=", (int)names[i].len,
		                 names[i].name, i + 1 < n ? ':' : ';');
		put(l, piece, (size_t)k, i == 0);
	}
}

/* Everything up to and including "b=". */
static void
field_head(struct line *l, const struct sspec *sp, const struct dkim_canon_name *names, size_t n)
{
	const struct dkim_sign_opts *o = &sp->o;
	char bh[DKIM_B64_LEN(EVP_MAX_MD_SIZE) + 1];
	int64_t t = o->timestamp ? o->timestamp : (int64_t)time(NULL);
	put(l, "DKIM-Signature:", 15, false);
	tag(l, "v=", "1");
	tag(l, "a=", o->key->type == DKIM_KEY_RSA ? "rsa-sha256" : "ed25519-sha256");
	tag(l, "c=",
	    o->hc == DKIM_CANON_RELAXED
	        ? (o->bc == DKIM_CANON_RELAXED ? "relaxed/relaxed" : "relaxed/simple")
	        : (o->bc == DKIM_CANON_RELAXED ? "simple/relaxed" : "simple/simple"));
	tag(l, "d=", o->domain);
	tag(l, "s=", o->selector);
	if (o->identity)
		tag_identity(l, o->identity);
	tag_number(l, "t=", (uint64_t)t);
	if (o->expire)
		tag_number(l, "x=", (uint64_t)t + o->expire);
	if (o->body_length)
		tag_number(l, "l=", sp->body->c.length);
	tag_h(l, names, n);
	if (dkim_b64_encode(sp->body->digest, sp->body->dlen, bh, sizeof(bh)) < 0)
		l->err = -EIO;
	tag(l, "bh=", bh);
	put(l, "b=", 2, true);
}

/* The base64 signature after "b=", folded; FWS in b= is ignored by verifiers. */
static void
field_b(struct line *l, const char *b64)
{
	size_t len = strlen(b64), i = 0;
	while (i < len && !l->err) {
		size_t room = l->col < LINE_WIDTH ? LINE_WIDTH - l->col : 0;
		if (room < 8) {
			l->err = buf_append(l->b, "\r\n\t", 3);
			l->col = 8;
			continue;
		}
		size_t k = len - i < room ? len - i : room;
		l->err = buf_append(l->b, b64 + i, k);
		l->col += k;
		i += k;
	}
}

/* Signs the header hash: the selected fields, then this field up to "b=" (no CRLF). */
static int
sign_field(const struct sspec *sp, const struct rfc5322_header *h,
           const struct dkim_canon_name *names, size_t n, struct buf *field, char *b64,
           size_t b64size)
{
	_cleanup_buf_ struct buf data = BUF_INIT(h->bytes + 4 * n + field->len + 16);
	unsigned char digest[EVP_MAX_MD_SIZE], sig[SIG_BYTES_MAX];
	unsigned dlen;
	size_t slen = sizeof(sig);
	int r = dkim_canon_select(h, names, n, SIZE_MAX, sp->o.hc, &data);
	if (r == 0)
		r = buf_append(field, "\r\n", 2);
	if (r == 0)
		r = dkim_canon_header(sp->o.hc, field->data, field->len, &data);
	if (r < 0)
		return r;
	field->data[field->len -= 2] = '\0';
	data.len -= 2;
	if (EVP_Digest(data.data, data.len, digest, &dlen, dkim_canon_md(DKIM_HASH_SHA256), NULL) !=
	    1)
		return -EIO;
	r = dkim_key_private_sign(sp->o.key, DKIM_HASH_SHA256, digest, dlen, sig, &slen);
	return r < 0 ? r : dkim_b64_encode(sig, slen, b64, b64size);
}

/* Copies the CRLF-form field to out with eol as the line end. */
static int
put_eol(const struct buf *field, const char *eol, struct buf *out)
{
	size_t el = strlen(eol);
	if (strcmp(eol, "\r\n") == 0)
		return buf_append(out, field->data, field->len);
	for (size_t i = 0; i < field->len;) {
		const char *cr = memmem(field->data + i, field->len - i, "\r\n", 2);
		size_t n = cr ? (size_t)(cr - field->data) - i : field->len - i;
		int r = buf_append(out, field->data + i, n);
		if (r == 0 && cr)
			r = buf_append(out, eol, el);
		if (r < 0)
			return r;
		i += n + (cr ? 2 : 0);
	}
	return 0;
}

static int
sign_one(const struct sspec *sp, const struct rfc5322_header *h, const char *eol, struct buf *out)
{
	_cleanup_free_ struct dkim_canon_name *names = calloc(DKIM_SIGN_MAX_NAMES, sizeof(*names));
	_cleanup_buf_ struct buf field = BUF_INIT(64 * 1024);
	char b64[DKIM_B64_LEN(SIG_BYTES_MAX) + 1];
	struct line l = {.b = &field};
	size_t n;
	if (!names)
		return -ENOMEM;
	int r = build_names(&sp->o, h, names, &n);
	if (r < 0)
		return r;
	field_head(&l, sp, names, n);
	if (l.err)
		return l.err;
	if ((r = sign_field(sp, h, names, n, &field, b64, sizeof(b64))) < 0)
		return r;
	field_b(&l, b64);
	if (l.err == 0)
		l.err = buf_append(&field, "\r\n", 2);
	return l.err ? l.err : put_eol(&field, eol, out);
}

int
dkim_sign_finish(struct dkim_sign *s, const struct rfc5322_header *h, const char *eol,
                 struct buf *out)
{
	if (s->finished)
		return -EALREADY;
	s->finished = true;
	for (size_t i = 0; i < s->nbody; i++) {
		int r =
		    dkim_canon_body_final(&s->body[i]->c, s->body[i]->digest, &s->body[i]->dlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < s->n; i++) {
		int r = sign_one(&s->spec[i], h, eol, out);
		if (r < 0)
			return r;
	}
	return 0;
}
