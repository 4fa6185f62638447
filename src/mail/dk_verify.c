#include "dk_verify.h"

#include "core/cleanup.h"
#include "dkim_b64.h"
#include "dkim_tag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_MAX 1024

struct dsig {
	struct dkim_sig_result res;
	bool pending;
	struct dkim_canon_body *body; /* headers, then the body: one SHA-1 over both */
	unsigned char b[SIG_MAX];
	int b_len;
	char local[256];
};

struct dk_verify {
	struct dk_verify_opts o;
	struct dns_resolver *r;
	struct dsig *sig;
	size_t n, ignored;
};

int
dk_verify_new(const struct dk_verify_opts *o, struct dns_resolver *r, struct dk_verify **out)
{
	struct dk_verify *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->o = *o;
	if (!v->o.max_signatures)
		v->o.max_signatures = DK_VERIFY_MAX_SIGS;
	if (!v->o.min_rsa_bits)
		v->o.min_rsa_bits = DKIM_KEY_RSA_MIN;
	v->r = r;
	if (!(v->sig = calloc(v->o.max_signatures, sizeof(*v->sig)))) {
		free(v);
		return -ENOMEM;
	}
	*out = v;
	return 0;
}

void
dk_verify_free(struct dk_verify *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->sig[i].body)
			dkim_canon_body_free(v->sig[i].body);
		free(v->sig[i].body);
	}
	free(v->sig);
	free(v);
}

/* Sets a final result: the signature is out of the running. */
#define verdict DKIM_RESULT_FINAL

static bool
name_is(const struct rfc5322_field *f, const struct dkim_canon_name *n)
{
	return f->name_len == n->len && strncasecmp(f->raw, n->name, n->len) == 0;
}

/* Occurrences of names[p]'s name among names[0..p). */
static size_t
earlier(const struct dkim_canon_name *names, size_t p)
{
	size_t k = 0;
	for (size_t i = 0; i < p; i++)
		k += names[i].len == names[p].len &&
		     strncasecmp(names[i].name, names[p].name, names[p].len) == 0;
	return k;
}

/*
 * Walks h= from its end: a name listed again earlier takes its last instance left; its first
 * mention takes all instances left. Built back to front, then reversed (as Mail::DKIM does).
 */
static size_t
select_named(const struct rfc5322_header *h, size_t sig, const struct dkim_canon_name *names,
             size_t n, bool *taken, size_t *idx)
{
	size_t k = 0;
	for (size_t p = n; p-- > 0;) {
		bool all = earlier(names, p) == 0;
		for (size_t i = h->n; i-- > sig + 1;) {
			if (taken[i] || !name_is(&h->f[i], &names[p]))
				continue;
			taken[i] = true;
			idx[k++] = i;
			if (!all)
				break;
		}
	}
	for (size_t a = 0, z = k; a + 1 < z; a++, z--) {
		size_t t = idx[a];
		idx[a] = idx[z - 1];
		idx[z - 1] = t;
	}
	return k;
}

int
dk_verify_select(const struct rfc5322_header *h, size_t sig, const struct dkim_canon_name *names,
                 size_t n, size_t *idx, size_t *count)
{
	*count = 0;
	if (n == 0) {
		for (size_t i = sig + 1; i < h->n; i++)
			idx[(*count)++] = i;
		return 0;
	}
	_cleanup_free_ bool *taken = calloc(h->n + 1, sizeof(bool));
	if (!taken)
		return -ENOMEM;
	*count = select_named(h, sig, names, n, taken, idx);
	return 0;
}

int
dk_verify_hash_header(struct dkim_canon_body *b, const struct rfc5322_header *h, const size_t *idx,
                      size_t n)
{
	_cleanup_buf_ struct buf data = BUF_INIT(h->bytes + 2 * n + 16);
	for (size_t i = 0; i < n; i++) {
		int r = dkim_canon_header(b->canon, h->f[idx[i]].raw, h->f[idx[i]].len, &data);
		if (r < 0)
			return r;
	}
	if (data.len && EVP_DigestUpdate(b->md, data.data, data.len) != 1)
		return -EIO;
	/* the separator line counts as a body line: dropped with an empty body */
	return dkim_canon_body_update(b, "\r\n", 2);
}

static void
copy_value(const struct dkim_tag *t, char *out, size_t size, bool lower)
{
	if (!t || dkim_tag_value_copy(t, out, size) < 0)
		out[0] = '\0';
	for (; lower && *out; out++)
		if (*out >= 'A' && *out <= 'Z')
			*out = (char)(*out + 32);
}

/* a= (rsa-sha1, the default: early Yahoo signatures omit it), q= (dns), c=, d=, s=, b=. */
static bool
check_tags(struct dsig *s, const struct dkim_tag_list *l, enum dkim_canon *c)
{
	const struct dkim_tag *t;
	copy_value(dkim_tag_find(l, "d"), s->res.domain, sizeof(s->res.domain), true);
	copy_value(dkim_tag_find(l, "s"), s->res.selector, sizeof(s->res.selector), false);
	snprintf(s->res.algorithm, sizeof(s->res.algorithm), "rsa-sha1");
	if ((t = dkim_tag_find(l, "a")) && !dkim_tag_value_is(t, "rsa-sha1", true))
		return verdict(s, DKIM_RESULT_PERMERROR, "unsupported algorithm a=%.*s",
		               (int)(t->value_len > 32 ? 32 : t->value_len), t->value);
	/* rsa-sha1 (RFC 8301) is said only of a signature whose a= was read */
	s->res.weak = true;
	if ((t = dkim_tag_find(l, "q")) && !dkim_tag_value_is(t, "dns", true))
		return verdict(s, DKIM_RESULT_PERMERROR, "unsupported query method q=%.*s",
		               (int)(t->value_len > 32 ? 32 : t->value_len), t->value);
	*c = DK_CANON_SIMPLE;
	if ((t = dkim_tag_find(l, "c")) && dkim_tag_value_is(t, "nofws", true))
		*c = DK_CANON_NOFWS;
	else if (t && !dkim_tag_value_is(t, "simple", true))
		return verdict(s, DKIM_RESULT_PERMERROR, "unsupported canonicalization c=%.*s",
		               (int)(t->value_len > 32 ? 32 : t->value_len), t->value);
	if (!s->res.domain[0] || !s->res.selector[0] || !(t = dkim_tag_find(l, "b")))
		return verdict(s, DKIM_RESULT_PERMERROR, "missing %s= tag",
		               !s->res.domain[0]     ? "d"
		               : !s->res.selector[0] ? "s"
		                                     : "b");
	s->b_len = dkim_b64_decode(t->value, t->value_len, s->b, sizeof(s->b));
	if (s->b_len < 0)
		return verdict(s, DKIM_RESULT_NEUTRAL, "bad base64 in b=");
	return true;
}

/* h= names; false with a verdict when the list is malformed. */
static bool
parse_h(struct dsig *s, const struct dkim_tag *t, struct dkim_canon_name *names, size_t *n)
{
	size_t pos = 0, len;
	const char *item;
	*n = 0;
	while (t && dkim_tag_list_next(t, &pos, &item, &len)) {
		if (len == 0)
			return verdict(s, DKIM_RESULT_NEUTRAL, "empty name in h=");
		if (*n >= DK_VERIFY_MAX_H)
			return verdict(s, DKIM_RESULT_PERMERROR, "h= lists too many fields");
		names[(*n)++] = (struct dkim_canon_name){item, len};
	}
	return true;
}

/* The last Sender among the covered fields, else the last From; its domain is at d=. */
static bool
check_identity(struct dsig *s, const struct rfc5322_header *h, const size_t *idx, size_t n)
{
	const struct rfc5322_field *from = NULL, *sender = NULL;
	for (size_t i = 0; i < n; i++) {
		if (rfc5322_field_is(&h->f[idx[i]], "Sender"))
			sender = &h->f[idx[i]];
		else if (rfc5322_field_is(&h->f[idx[i]], "From"))
			from = &h->f[idx[i]];
	}
	const struct rfc5322_field *f = sender ? sender : from;
	s->res.identity_sender = sender != NULL;
	if (!f || rfc5322_first_address(f->raw + f->value_off, f->len - f->value_off,
	                                s->res.identity, sizeof(s->res.identity)) < 0)
		return verdict(s, DKIM_RESULT_PERMERROR, "no signed Sender or From address");
	const char *at = strrchr(s->res.identity, '@');
	if (!at || !dkim_tag_is_subdomain(at + 1, s->res.domain))
		return verdict(s, DKIM_RESULT_PERMERROR, "%s address is not at d= or under it",
		               sender ? "Sender" : "From");
	snprintf(s->local, sizeof(s->local), "%.*s", (int)(at - s->res.identity), s->res.identity);
	return true;
}

/* Hashes the covered fields into a fresh SHA-1 that the body then continues. */
static int
start_hash(struct dsig *s, const struct rfc5322_header *h, enum dkim_canon c, const size_t *idx,
           size_t n)
{
	if (!(s->body = calloc(1, sizeof(*s->body))))
		return -ENOMEM;
	int r = dkim_canon_body_init(s->body, c, DKIM_HASH_SHA1, DKIM_CANON_NO_LIMIT);
	return r < 0 ? r : dk_verify_hash_header(s->body, h, idx, n);
}

static int
sig_prepare(struct dsig *s, const struct rfc5322_header *h, size_t at)
{
	const struct rfc5322_field *f = &h->f[at];
	_cleanup_free_ struct dkim_tag_list *l = calloc(1, sizeof(*l));
	_cleanup_free_ struct dkim_canon_name *names = calloc(DK_VERIFY_MAX_H, sizeof(*names));
	_cleanup_free_ size_t *idx = calloc(h->n + 1, sizeof(size_t));
	enum dkim_canon c = DK_CANON_SIMPLE;
	size_t nn, n;
	if (!l || !names || !idx)
		return -ENOMEM;
	s->res.dk = s->pending = true;
	int r = dkim_tag_parse(f->raw + f->value_off, f->len - f->value_off - 2, l);
	if (r < 0) {
		verdict(s, DKIM_RESULT_NEUTRAL, "%s",
		        r == -EEXIST ? "duplicate tag in signature" : "signature syntax error");
		return 0;
	}
	if (!check_tags(s, l, &c) || !parse_h(s, dkim_tag_find(l, "h"), names, &nn))
		return 0;
	if ((r = dk_verify_select(h, at, names, nn, idx, &n)) < 0)
		return r;
	if (!check_identity(s, h, idx, n))
		return 0;
	return start_hash(s, h, c, idx, n);
}

int
dk_verify_header(struct dk_verify *v, const struct rfc5322_header *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (!rfc5322_field_is(&h->f[i], "DomainKey-Signature"))
			continue;
		if (v->n >= v->o.max_signatures) {
			v->ignored++;
			continue;
		}
		int r = sig_prepare(&v->sig[v->n++], h, i);
		if (r < 0)
			return r;
	}
	return 0;
}

int
dk_verify_body(struct dk_verify *v, const char *data, size_t len)
{
	for (size_t i = 0; i < v->n; i++) {
		if (!v->sig[i].pending)
			continue;
		int r = dkim_canon_body_update(v->sig[i].body, data, len);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool
check_key(const struct dk_verify *v, struct dsig *s, const struct dkim_key *k)
{
	s->res.key_bits = k->bits;
	s->res.testing = k->testing;
	if (k->type != DKIM_KEY_RSA)
		return verdict(s, DKIM_RESULT_PERMERROR, "key is not an RSA key");
	if (!dkim_key_allows(k, DKIM_HASH_SHA1))
		return verdict(s, DKIM_RESULT_PERMERROR, "key does not allow sha1 (h=)");
	if (!dkim_key_granularity(k, s->local, true))
		return verdict(s, DKIM_RESULT_PERMERROR, "key granularity g= does not match");
	if (k->bits < v->o.min_rsa_bits)
		return verdict(s, DKIM_RESULT_POLICY, "RSA key of %u bits, under %u (RFC 8301)",
		               k->bits, v->o.min_rsa_bits);
	if (k->bits > DKIM_KEY_RSA_VERIFY_MAX)
		return verdict(s, DKIM_RESULT_PERMERROR, "RSA key of %u bits is too large",
		               k->bits);
	return true;
}

static int
sig_complete(struct dk_verify *v, struct dsig *s)
{
	_cleanup_(dkim_key_clear) struct dkim_key k = {0};
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen;
	char why[160];
	int r = dkim_canon_body_final(s->body, digest, &dlen);
	if (r == 0)
		r = dkim_key_fetch(v->r, v->o.cache, s->res.selector, s->res.domain, &k, why,
		                   sizeof(why));
	if (r < 0)
		return r;
	if (r != DKIM_RESULT_PASS) {
		verdict(s, (enum dkim_result)r, "%s", why);
		return 0;
	}
	if (!check_key(v, s, &k))
		return 0;
	if ((r = dkim_key_verify(&k, DKIM_HASH_SHA1, digest, dlen, s->b, (size_t)s->b_len)) < 0)
		return r;
	if (r == 0)
		verdict(s, DKIM_RESULT_FAIL, "signature did not verify");
	else
		verdict(s, DKIM_RESULT_PASS, "%s", k.testing ? "key in testing mode (t=y)" : "");
	return 0;
}

int
dk_verify_finish(struct dk_verify *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (!v->sig[i].pending)
			continue;
		int r = sig_complete(v, &v->sig[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

size_t
dk_verify_count(const struct dk_verify *v)
{
	return v->n;
}

const struct dkim_sig_result *
dk_verify_result(const struct dk_verify *v, size_t i)
{
	return i < v->n ? &v->sig[i].res : NULL;
}

size_t
dk_verify_ignored(const struct dk_verify *v)
{
	return v->ignored;
}
