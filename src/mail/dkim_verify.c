#include "dkim_verify.h"

#include "core/cleanup.h"
#include "dkim_b64.h"
#include "dkim_canon.h"
#include "dkim_tag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A signature of an 8192-bit key; longer keys are refused anyway. */
#define SIG_MAX 1024

struct vbody {
	struct dkim_canon_body c;
	enum dkim_hash hash;
	/* draft-ietf-dkim-base-00 (no bh=): one hash over the header fields, CRLF, the body,
	 * CRLF and the signature field (tail); such a body is never shared */
	bool whole;
	struct buf tail;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen;
};

struct sig {
	struct dkim_sig_result res;
	bool pending; /* passed every check so far: key, body hash and signature remain */
	enum dkim_hash hash;
	enum dkim_key_type ktype;
	enum dkim_canon hc, bc;
	uint64_t limit;
	int64_t t, x; /* -1: absent */
	struct vbody *body;
	char ilocal[256], idomain[256]; /* as long as res.identity */
	unsigned char bh[EVP_MAX_MD_SIZE];
	int bh_len;
	unsigned char b[SIG_MAX];
	int b_len;
	unsigned char hd[EVP_MAX_MD_SIZE]; /* digest of the signed header fields */
	unsigned hd_len;
	struct dkim_key key;
	int key_res;
	char key_why[160];
};

struct dkim_verify {
	struct dkim_verify_opts o;
	struct dns_resolver *r;
	struct sig **sig; /* allocated as signatures are found: most messages have one or two */
	size_t n, ignored;
	struct vbody **body;
	size_t nbody;
	bool no_from; /* the message has no From field */
};

/* What one signature says, tag by tag, while it is checked. */
struct sigtags {
	struct dkim_tag_list l;
	bool draft; /* no v= (pre-RFC 4871 drafts) */
};

int
dkim_verify_new(const struct dkim_verify_opts *o, struct dns_resolver *r, struct dkim_verify **out)
{
	struct dkim_verify *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->o = *o;
	if (!v->o.max_signatures)
		v->o.max_signatures = DKIM_VERIFY_MAX_SIGS;
	if (!v->o.min_rsa_bits)
		v->o.min_rsa_bits = DKIM_KEY_RSA_MIN;
	if (!v->o.clock_skew)
		v->o.clock_skew = DKIM_VERIFY_CLOCK_SKEW;
	if (!v->o.now)
		v->o.now = (int64_t)time(NULL);
	v->r = r;
	/* both pointer arrays in one allocation */
	v->sig = calloc(2 * v->o.max_signatures, sizeof(void *));
	if (!v->sig) {
		free(v);
		return -ENOMEM;
	}
	v->body = (struct vbody **)(v->sig + v->o.max_signatures);
	*out = v;
	return 0;
}

void
dkim_verify_free(struct dkim_verify *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nbody; i++) {
		dkim_canon_body_free(&v->body[i]->c);
		buf_free(&v->body[i]->tail);
		free(v->body[i]);
	}
	for (size_t i = 0; i < v->n; i++) {
		dkim_key_clear(&v->sig[i]->key);
		free(v->sig[i]);
	}
	free(v->sig);
	free(v);
}

/* Sets a final result: the signature is out of the running. */
#define verdict DKIM_RESULT_FINAL

static void
copy_lower(const struct dkim_tag *t, char *out, size_t size)
{
	if (!t || dkim_tag_value_copy(t, out, size) < 0)
		out[0] = '\0';
	for (; *out; out++)
		if (*out >= 'A' && *out <= 'Z')
			*out = (char)(*out + 32);
}

/* d=, s=, a= and the start of b=, for the report, whatever else is wrong. */
static void
sig_ids(struct sig *s, const struct dkim_tag_list *l)
{
	const struct dkim_tag *b = dkim_tag_find(l, "b");
	size_t k = 0;
	copy_lower(dkim_tag_find(l, "d"), s->res.domain, sizeof(s->res.domain));
	copy_lower(dkim_tag_find(l, "a"), s->res.algorithm, sizeof(s->res.algorithm));
	if (dkim_tag_find(l, "s") && dkim_tag_value_copy(dkim_tag_find(l, "s"), s->res.selector,
	                                                 sizeof(s->res.selector)) < 0)
		s->res.selector[0] = '\0';
	for (size_t i = 0; b && i < b->value_len && k + 1 < sizeof(s->res.b); i++)
		if (!dkim_tag_is_fws(b->value[i]))
			s->res.b[k++] = b->value[i];
	s->res.b[k] = '\0';
}

static bool
check_version(const struct dkim_verify *v, struct sig *s, struct sigtags *st)
{
	const struct dkim_tag *t = dkim_tag_find(&st->l, "v");
	st->draft = !t;
	if (!t)
		return v->o.drafts || verdict(s, DKIM_RESULT_PERMERROR, "missing v= tag");
	if (dkim_tag_value_is(t, "1", false))
		return true;
	if (v->o.drafts && dkim_tag_value_is(t, "0.5", false))
		return true;
	return verdict(s, DKIM_RESULT_PERMERROR, "unsupported version v=%.*s",
	               (int)(t->value_len > 16 ? 16 : t->value_len), t->value);
}

static bool
check_required(struct sig *s, const struct sigtags *st)
{
	static const char *const req[] = {"a", "b", "bh", "d", "h", "s"};
	for (size_t i = 0; i < ARRAY_SIZE(req); i++)
		if (!dkim_tag_find(&st->l, req[i]) && !(st->draft && strcmp(req[i], "bh") == 0))
			return verdict(s, DKIM_RESULT_PERMERROR, "missing %s= tag", req[i]);
	if (!s->res.domain[0] || !s->res.selector[0])
		return verdict(s, DKIM_RESULT_PERMERROR, "empty %s= tag",
		               s->res.domain[0] ? "s" : "d");
	return true;
}

static bool
check_algorithm(const struct dkim_verify *v, struct sig *s)
{
	const char *a = s->res.algorithm;
	if (strcmp(a, "rsa-sha256") == 0) {
		s->ktype = DKIM_KEY_RSA, s->hash = DKIM_HASH_SHA256;
	} else if (strcmp(a, "ed25519-sha256") == 0) {
		s->ktype = DKIM_KEY_ED25519, s->hash = DKIM_HASH_SHA256;
	} else if (strcmp(a, "rsa-sha1") == 0) {
		s->ktype = DKIM_KEY_RSA, s->hash = DKIM_HASH_SHA1;
		s->res.weak = true;
		if (v->o.reject_sha1)
			return verdict(s, DKIM_RESULT_POLICY, "rsa-sha1 refused (RFC 8301)");
	} else {
		return verdict(s, DKIM_RESULT_PERMERROR, "unsupported algorithm a=%s", a);
	}
	return true;
}

static bool
canon_word(const char *w, size_t len, enum dkim_canon *c)
{
	if (len == 6 && strncasecmp(w, "simple", 6) == 0)
		*c = DKIM_CANON_SIMPLE;
	else if (len == 7 && strncasecmp(w, "relaxed", 7) == 0)
		*c = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

static bool
check_canon(struct sig *s, const struct sigtags *st)
{
	const struct dkim_tag *t = dkim_tag_find(&st->l, "c");
	s->hc = s->bc = DKIM_CANON_SIMPLE;
	if (!t)
		return true;
	const char *slash = memchr(t->value, '/', t->value_len);
	size_t hl = slash ? (size_t)(slash - t->value) : t->value_len;
	if (canon_word(t->value, hl, &s->hc) &&
	    (!slash || canon_word(slash + 1, t->value_len - hl - 1, &s->bc)))
		return true;
	return verdict(s, DKIM_RESULT_PERMERROR, "unsupported canonicalization c=%.*s",
	               (int)(t->value_len > 32 ? 32 : t->value_len), t->value);
}

/* q= lists query methods; ours is dns/txt (plain "dns" in the drafts). */
static bool
check_query(struct sig *s, const struct sigtags *st)
{
	const struct dkim_tag *t = dkim_tag_find(&st->l, "q");
	if (!t)
		return true;
	for (size_t i = 0; i <= t->value_len;) {
		size_t j = i;
		while (j < t->value_len && t->value[j] != ':')
			j++;
		const char *w = t->value + i;
		size_t wl = j - i;
		if ((wl == 7 && strncasecmp(w, "dns/txt", 7) == 0) ||
		    (st->draft && wl == 3 && strncasecmp(w, "dns", 3) == 0))
			return true;
		i = j + 1;
	}
	return verdict(s, DKIM_RESULT_PERMERROR, "unsupported query method q=%.*s",
	               (int)(t->value_len > 32 ? 32 : t->value_len), t->value);
}

/* Decimal digits only; false on anything else or overflow. */
static bool
parse_number(const struct dkim_tag *t, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;
	if (t->value_len == 0)
		return false;
	for (size_t i = 0; i < t->value_len; i++) {
		unsigned d = (unsigned)(t->value[i] - '0');
		if (d > 9 || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

static bool
check_numbers(struct sig *s, const struct sigtags *st)
{
	static const char *const names[] = {"l", "t", "x"};
	uint64_t n[3];
	for (size_t i = 0; i < 3; i++) {
		const struct dkim_tag *t = dkim_tag_find(&st->l, names[i]);
		n[i] = UINT64_MAX;
		if (t && !parse_number(t, i == 0 ? UINT64_MAX - 1 : INT64_MAX, &n[i]))
			return verdict(s, DKIM_RESULT_NEUTRAL, "bad %s= value", names[i]);
	}
	s->limit = n[0] == UINT64_MAX ? DKIM_CANON_NO_LIMIT : n[0];
	s->t = n[1] == UINT64_MAX ? -1 : (int64_t)n[1];
	s->x = n[2] == UINT64_MAX ? -1 : (int64_t)n[2];
	return true;
}

static bool
check_times(const struct dkim_verify *v, struct sig *s)
{
	if (s->t >= 0 && s->t > v->o.now + (int64_t)v->o.clock_skew)
		return verdict(s, DKIM_RESULT_PERMERROR, "signature timestamp t= in the future");
	if (s->x >= 0 && s->t >= 0 && s->x < s->t)
		return verdict(s, DKIM_RESULT_PERMERROR, "signature expires (x=) before t=");
	if (s->x >= 0 && s->x < v->o.now)
		return verdict(s, DKIM_RESULT_PERMERROR, "signature expired (x=)");
	return true;
}

static bool
check_base64(struct sig *s, const struct sigtags *st)
{
	const struct dkim_tag *b = dkim_tag_find(&st->l, "b"), *bh = dkim_tag_find(&st->l, "bh");
	s->b_len = dkim_b64_decode(b->value, b->value_len, s->b, sizeof(s->b));
	if (s->b_len < 0)
		return verdict(s, DKIM_RESULT_NEUTRAL, "bad base64 in b=");
	s->bh_len = bh ? dkim_b64_decode(bh->value, bh->value_len, s->bh, sizeof(s->bh)) : 0;
	if (s->bh_len < 0)
		return verdict(s, DKIM_RESULT_NEUTRAL, "bad base64 in bh=");
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* dkim-quoted-printable: "=XX" stands for a byte; FWS is dropped. */
static bool
qp_decode(const struct dkim_tag *t, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (dkim_tag_is_fws(c))
			continue;
		if (c == '=') {
			if (i + 2 >= t->value_len)
				return false;
			int hi = hex_value(t->value[i + 1]), lo = hex_value(t->value[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0' || o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* i= is the identity: its domain is d= or under it. Without i=, "@" d. */
static bool
check_identity(struct sig *s, const struct sigtags *st)
{
	const struct dkim_tag *t = dkim_tag_find(&st->l, "i");
	char *id = s->res.identity;
	if (!t) {
		id[0] = '@';
		memcpy(id + 1, s->res.domain, strlen(s->res.domain) + 1);
	} else if (!qp_decode(t, id, sizeof(s->res.identity))) {
		return verdict(s, DKIM_RESULT_NEUTRAL, "bad i= value");
	}
	const char *at = strrchr(id, '@');
	if (!at)
		return verdict(s, DKIM_RESULT_PERMERROR, "i= has no @");
	/* identity is shorter than either buffer */
	memcpy(s->ilocal, id, (size_t)(at - id));
	s->ilocal[at - id] = '\0';
	memcpy(s->idomain, at + 1, strlen(at + 1) + 1);
	if (!dkim_tag_is_subdomain(s->idomain, s->res.domain))
		return verdict(s, DKIM_RESULT_PERMERROR, "i= domain is not d= or under it");
	return true;
}

/* h= into names (FWS allowed around the colons); From must be among them (RFC 6376 §5.4). */
static bool
parse_h(struct sig *s, const struct dkim_tag *t, struct dkim_canon_name *names, size_t *n)
{
	bool from = false;
	size_t pos = 0, len;
	const char *item;
	*n = 0;
	while (dkim_tag_list_next(t, &pos, &item, &len)) {
		if (len == 0)
			return verdict(s, DKIM_RESULT_NEUTRAL, "empty name in h=");
		if (*n >= DKIM_VERIFY_MAX_H)
			return verdict(s, DKIM_RESULT_PERMERROR, "h= lists too many fields");
		names[(*n)++] = (struct dkim_canon_name){item, len};
		from |= len == 4 && strncasecmp(item, "from", 4) == 0;
	}
	return from || verdict(s, DKIM_RESULT_PERMERROR, "From field not signed (h=)");
}

/* The signature field as hashed: the value of b= deleted, no final CRLF. */
static int
hash_signature_field(const struct rfc5322_field *f, const struct dkim_tag *b, enum dkim_canon c,
                     struct buf *data)
{
	_cleanup_buf_ struct buf tmp = BUF_INIT(f->len);
	size_t cut = f->value_off + b->raw_start, resume = f->value_off + b->raw_end;
	int r = buf_append(&tmp, f->raw, cut);
	if (r == 0)
		r = buf_append(&tmp, f->raw + resume, f->len - resume);
	if (r == 0)
		r = dkim_canon_header(c, tmp.data, tmp.len, data);
	if (r == 0)
		data->data[data->len -= 2] = '\0';
	return r;
}

/* A body hash owned by v (freed with it). */
static struct vbody *
vbody_new(struct dkim_verify *v, enum dkim_hash hash)
{
	struct vbody *b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	b->c.md = NULL;
	b->hash = hash;
	b->whole = false;
	b->tail = BUF_INIT(0);
	b->dlen = 0;
	v->body[v->nbody++] = b;
	return b;
}

/* Signatures with the same body canonicalisation, hash and l= share one body hash. */
static int
attach_body(struct dkim_verify *v, struct sig *s)
{
	for (size_t i = 0; i < v->nbody; i++) {
		struct vbody *b = v->body[i];
		if (!b->whole && b->c.canon == s->bc && b->hash == s->hash &&
		    b->c.limit == s->limit) {
			s->body = b;
			return 0;
		}
	}
	if (!(s->body = vbody_new(v, s->hash)))
		return -ENOMEM;
	return dkim_canon_body_init(&s->body->c, s->bc, s->hash, s->limit);
}

/* draft-00: the header fields and a CRLF start the hash the body continues. */
static int
start_whole(struct dkim_verify *v, struct sig *s, const struct buf *fields, struct buf *sigfield)
{
	struct vbody *b = vbody_new(v, s->hash);
	if (!b)
		return -ENOMEM;
	b->whole = true;
	b->tail = *sigfield;
	*sigfield = BUF_INIT(0);
	s->body = b;
	int r = dkim_canon_body_init(&b->c, s->bc, s->hash, s->limit);
	if (r == 0 && fields->len && EVP_DigestUpdate(b->c.md, fields->data, fields->len) != 1)
		r = -EIO;
	if (r == 0 && EVP_DigestUpdate(b->c.md, "\r\n", 2) != 1)
		r = -EIO;
	return r;
}

static int
hash_header(struct dkim_verify *v, struct sig *s, const struct rfc5322_header *h, size_t idx,
            const struct sigtags *st)
{
	const struct dkim_tag *h_tag = dkim_tag_find(&st->l, "h");
	size_t n, max = 1;
	for (size_t i = 0; i < h_tag->value_len && max <= DKIM_VERIFY_MAX_H; i++)
		max += h_tag->value[i] == ':';
	/* the usual dozen names on the stack, a long list on the heap */
	struct dkim_canon_name few[32];
	_cleanup_free_ struct dkim_canon_name *many =
	    max > ARRAY_SIZE(few) ? malloc(max * sizeof(*many)) : NULL;
	struct dkim_canon_name *names = max > ARRAY_SIZE(few) ? many : few;
	if (!names)
		return -ENOMEM;
	if (!parse_h(s, h_tag, names, &n))
		return 0;
	/* canonical fields are no longer than the raw ones, plus ":" and CRLF each */
	_cleanup_buf_ struct buf data = BUF_INIT(h->bytes + 4 * n + 16);
	_cleanup_buf_ struct buf sigfield = BUF_INIT(h->f[idx].len + 16);
	int r = buf_reserve(&data, data.max < 4096 ? data.max : 4096);
	if (r == 0)
		r = dkim_canon_select(h, names, n, idx, s->hc, &data);
	if (r == 0)
		r = hash_signature_field(&h->f[idx], dkim_tag_find(&st->l, "b"), s->hc, &sigfield);
	if (r < 0)
		return r;
	if (!dkim_tag_find(&st->l, "bh"))
		return start_whole(v, s, &data, &sigfield);
	if ((r = buf_append(&data, sigfield.data, sigfield.len)) < 0)
		return r;
	if (EVP_Digest(data.data, data.len, s->hd, &s->hd_len, dkim_canon_md(s->hash), NULL) != 1)
		return -EIO;
	return attach_body(v, s);
}

static bool
check_tags(const struct dkim_verify *v, struct sig *s, struct sigtags *st)
{
	return check_version(v, s, st) && check_required(s, st) && check_algorithm(v, s) &&
	       check_canon(s, st) && check_query(s, st) && check_numbers(s, st) &&
	       check_base64(s, st) && check_identity(s, st) && check_times(v, s);
}

/* Checks one DKIM-Signature field h->f[idx] as far as the header allows. */
static int
sig_prepare(struct dkim_verify *v, struct sig *s, const struct rfc5322_header *h, size_t idx)
{
	const struct rfc5322_field *f = &h->f[idx];
	struct sigtags tags, *st = &tags;
	s->pending = true;
	int r = dkim_tag_parse(f->raw + f->value_off, f->len - f->value_off - 2, &st->l);
	if (r < 0) {
		verdict(s, DKIM_RESULT_NEUTRAL, "%s",
		        r == -EEXIST ? "duplicate tag in signature" : "signature syntax error");
		return 0;
	}
	sig_ids(s, &st->l);
	if (!check_tags(v, s, st))
		return 0;
	return hash_header(v, s, h, idx, st);
}

int
dkim_verify_header(struct dkim_verify *v, const struct rfc5322_header *h)
{
	/* a signature of a message without From authenticates no author (DMARC and readers go
	 * by From): one that verifies is refused (policy), one that does not still fails */
	v->no_from = !rfc5322_header_has(h, "From");
	for (size_t i = 0; i < h->n; i++) {
		if (!rfc5322_field_is(&h->f[i], "DKIM-Signature"))
			continue;
		if (v->n >= v->o.max_signatures) {
			v->ignored++;
			continue;
		}
		struct sig *s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		v->sig[v->n++] = s;
		int r = sig_prepare(v, s, h, i);
		if (r < 0)
			return r;
	}
	return 0;
}

int
dkim_verify_body(struct dkim_verify *v, const char *data, size_t len)
{
	for (size_t i = 0; i < v->nbody; i++) {
		int r = dkim_canon_body_update(&v->body[i]->c, data, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One lookup per selector and domain, whatever the number of signatures using it. */
static int
fetch_key(struct dkim_verify *v, struct sig *s)
{
	for (size_t i = 0; i < v->n && v->sig[i] != s; i++) {
		const struct sig *o = v->sig[i];
		if (!o->key.pkey && !o->key_res)
			continue;
		if (strcasecmp(o->res.domain, s->res.domain) != 0 ||
		    strcmp(o->res.selector, s->res.selector) != 0)
			continue;
		s->key_res = o->key_res;
		memcpy(s->key_why, o->key_why, sizeof(s->key_why));
		dkim_key_share(&o->key, &s->key);
		return 0;
	}
	int r = dkim_key_fetch(v->r, v->o.cache, s->res.selector, s->res.domain, &s->key,
	                       s->key_why, sizeof(s->key_why));
	if (r < 0)
		return r;
	s->key_res = r;
	return 0;
}

static bool
check_key(const struct dkim_verify *v, struct sig *s)
{
	const struct dkim_key *k = &s->key;
	if (s->key_res != DKIM_RESULT_PASS)
		return verdict(s, (enum dkim_result)s->key_res, "%s", s->key_why);
	s->res.key_bits = k->bits;
	s->res.testing = k->testing;
	if (k->type != s->ktype)
		return verdict(s, DKIM_RESULT_PERMERROR, "key type does not match a=");
	if (!dkim_key_allows(k, s->hash))
		return verdict(s, DKIM_RESULT_PERMERROR, "key does not allow %s (h=)",
		               s->hash == DKIM_HASH_SHA1 ? "sha1" : "sha256");
	if (!dkim_key_granularity(k, s->ilocal, false))
		return verdict(s, DKIM_RESULT_PERMERROR, "key granularity g= does not match i=");
	if (k->strict && strcasecmp(s->idomain, s->res.domain) != 0)
		return verdict(s, DKIM_RESULT_PERMERROR,
		               "key is for d= only (t=s), i= is under it");
	if (k->type == DKIM_KEY_RSA && k->bits < v->o.min_rsa_bits)
		return verdict(s, DKIM_RESULT_POLICY, "RSA key of %u bits, under %u (RFC 8301)",
		               k->bits, v->o.min_rsa_bits);
	if (k->type == DKIM_KEY_RSA && k->bits > DKIM_KEY_RSA_VERIFY_MAX)
		return verdict(s, DKIM_RESULT_PERMERROR, "RSA key of %u bits is too large",
		               k->bits);
	return true;
}

/* A pass, with what a receiver should still know in its reason. */
static void
pass(struct sig *s)
{
	const char *notes[3] = {
	    s->res.weak ? "rsa-sha1 is not secure (RFC 8301)" : NULL,
	    s->res.testing ? "key in testing mode (t=y)" : NULL,
	    /* OpenDKIM and Mail::DKIM flag it too: text after l= can be anything */
	    s->res.past_l ? "body extends past l=" : NULL,
	};
	size_t off = 0;
	s->res.reason[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(notes); i++) {
		if (!notes[i] || off >= sizeof(s->res.reason))
			continue;
		int n = snprintf(s->res.reason + off, sizeof(s->res.reason) - off, "%s%s",
		                 off ? "; " : "", notes[i]);
		off += n > 0 ? (size_t)n : 0;
	}
	s->res.result = DKIM_RESULT_PASS;
	s->pending = false;
}

static int
sig_complete(struct dkim_verify *v, struct sig *s)
{
	int r = fetch_key(v, s);
	if (r < 0 || !check_key(v, s))
		return r;
	struct vbody *b = s->body;
	if (s->limit != DKIM_CANON_NO_LIMIT && b->c.length < s->limit) {
		verdict(s, DKIM_RESULT_FAIL, "body shorter than l=");
		return 0;
	}
	s->res.past_l = s->limit != DKIM_CANON_NO_LIMIT && b->c.length > s->limit;
	if (b->whole) {
		memcpy(s->hd, b->digest, b->dlen);
		s->hd_len = b->dlen;
	} else if ((unsigned)s->bh_len != b->dlen || memcmp(s->bh, b->digest, b->dlen) != 0) {
		verdict(s, DKIM_RESULT_FAIL, "body hash did not verify");
		return 0;
	}
	r = dkim_key_verify(&s->key, s->hash, s->hd, s->hd_len, s->b, (size_t)s->b_len);
	if (r < 0)
		return r;
	if (r == 0)
		verdict(s, DKIM_RESULT_FAIL, "signature did not verify");
	else if (v->no_from)
		verdict(s, DKIM_RESULT_POLICY,
		        "verified, but the message has no From field (RFC 5322 3.6, RFC 6376 5.4)");
	else
		pass(s);
	return 0;
}

static int
body_final(struct vbody *b)
{
	if (!b->whole)
		return dkim_canon_body_final(&b->c, b->digest, &b->dlen);
	int r = dkim_canon_body_end(&b->c);
	if (r < 0)
		return r;
	if (EVP_DigestUpdate(b->c.md, "\r\n", 2) != 1 ||
	    (b->tail.len && EVP_DigestUpdate(b->c.md, b->tail.data, b->tail.len) != 1) ||
	    EVP_DigestFinal_ex(b->c.md, b->digest, &b->dlen) != 1)
		return -EIO;
	return 0;
}

int
dkim_verify_finish(struct dkim_verify *v)
{
	for (size_t i = 0; i < v->nbody; i++) {
		int r = body_final(v->body[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < v->n; i++) {
		if (!v->sig[i]->pending)
			continue;
		int r = sig_complete(v, v->sig[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

size_t
dkim_verify_count(const struct dkim_verify *v)
{
	return v->n;
}

const struct dkim_sig_result *
dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	return i < v->n ? &v->sig[i]->res : NULL;
}

size_t
dkim_verify_ignored(const struct dkim_verify *v)
{
	return v->ignored;
}
