/*
 * Fuzz target for src/mail/rfc5322 (the message reader) and the body canonicalisation that
 * reads what follows it. The first byte picks a chunk size: the header read in chunks must
 * equal the header read whole; every field is in CRLF form. The body, streamed in chunks
 * through each canonicalisation, must hash as a plain line-by-line reference does. Then the
 * message goes through both verifiers (no keys: every signature gets a result, no crash).
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dk_verify.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_verify.h"
#include "mail/rfc5322.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSG_MAX (256 * 1024)

/* Returns where the body starts, or SIZE_MAX when the reader refused the header. */
static size_t
read_header(const char *msg, size_t len, size_t step, struct rfc5322_header *h)
{
	struct rfc5322_reader r;
	size_t p = 0, body = len;
	int e = 0;
	rfc5322_header_init(h, 64, 4096);
	rfc5322_reader_init(&r, h);
	while (p < len && e == 0) {
		size_t n = step < len - p ? step : len - p, used;
		e = rfc5322_reader_feed(&r, msg + p, n, &used);
		if (e == 1)
			body = p + used;
		else if (e == 0 && used != n)
			abort();
		p += n;
	}
	if (e == 0)
		e = rfc5322_reader_end(&r);
	rfc5322_reader_free(&r);
	return e < 0 ? SIZE_MAX : body;
}

/* relaxed (RFC 6376 §3.4.2) done plainly: unfold, WSP runs as one SP, trim, name lower-cased */
static void
reference_header(const char *raw, size_t len, struct buf *out)
{
	const char *colon = memchr(raw, ':', len);
	size_t ne = (size_t)(colon - raw);
	bool wsp = false, any = false;
	while (ne > 0 && (raw[ne - 1] == ' ' || raw[ne - 1] == '\t'))
		ne--;
	for (size_t i = 0; i < ne; i++) {
		char c = raw[i] >= 'A' && raw[i] <= 'Z' ? (char)(raw[i] + 32) : raw[i];
		buf_append(out, &c, 1);
	}
	buf_append(out, ":", 1);
	for (size_t i = (size_t)(colon - raw) + 1; i < len; i++) {
		if (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n') {
			i++;
		} else if (raw[i] == ' ' || raw[i] == '\t') {
			wsp = any;
		} else {
			if (wsp)
				buf_append(out, " ", 1);
			buf_append(out, raw + i, 1);
			wsp = false;
			any = true;
		}
	}
	buf_append(out, "\r\n", 2);
}

static void
check_header_canon(const struct rfc5322_field *f)
{
	_cleanup_buf_ struct buf want = BUF_INIT(2 * FUZZ_MSG_MAX),
	                         got = BUF_INIT(2 * FUZZ_MSG_MAX);
	if (!memchr(f->raw, ':', f->len))
		return;
	reference_header(f->raw, f->len, &want);
	if (dkim_canon_header(DKIM_CANON_RELAXED, f->raw, f->len, &got) < 0 ||
	    got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
		abort();
}

static void
check_fields(const struct rfc5322_header *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct rfc5322_field *f = &h->f[i];
		if (f->len < 2 || memcmp(f->raw + f->len - 2, "\r\n", 2) != 0)
			abort();
		for (size_t k = 0; k < f->len; k++)
			if (f->raw[k] == '\n' && (k == 0 || f->raw[k - 1] != '\r'))
				abort();
		char after = f->name_len ? f->raw[f->name_len] : ':';
		if (after != ':' && after != ' ' && after != '\t')
			abort();
		char addr[256];
		rfc5322_first_address(f->raw, f->len, addr, sizeof(addr));
		check_header_canon(f);
	}
}

/* One line (no line end) in form c, appended to out. */
static void
reference_line(enum dkim_canon c, const char *in, size_t len, struct buf *out)
{
	bool wsp = false;
	for (size_t i = 0; i < len; i++) {
		bool is_wsp = in[i] == ' ' || in[i] == '\t';
		if ((c == DKIM_CANON_RELAXED && is_wsp) ||
		    (c == DK_CANON_NOFWS && (is_wsp || in[i] == '\r'))) {
			wsp = c == DKIM_CANON_RELAXED;
			continue;
		}
		if (wsp)
			buf_append(out, " ", 1);
		wsp = false;
		buf_append(out, in + i, 1);
	}
}

/* The body as lines, each canonicalised, trailing empty lines dropped (RFC 6376 §3.4). */
static void
reference(enum dkim_canon c, const char *in, size_t len, struct buf *out)
{
	size_t pending = 0;
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(in + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - in) : len, stop = end;
		if (nl && stop > p && in[stop - 1] == '\r')
			stop--;
		_cleanup_buf_ struct buf line = BUF_INIT(len + 1);
		reference_line(c, in + p, stop - p, &line);
		if (line.len == 0) {
			pending++;
		} else {
			for (; pending; pending--)
				buf_append(out, "\r\n", 2);
			buf_append(out, line.data, line.len);
			buf_append(out, "\r\n", 2);
		}
		p = end + 1;
	}
	if (c == DKIM_CANON_SIMPLE && out->len == 0)
		buf_append(out, "\r\n", 2);
}

static void
check_canon(enum dkim_canon c, const char *body, size_t len, size_t step)
{
	_cleanup_buf_ struct buf ref = BUF_INIT(3 * FUZZ_MSG_MAX);
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned wl, gl;
	struct dkim_canon_body *b = malloc(sizeof(*b));
	if (!b)
		return;
	reference(c, body, len, &ref);
	if (dkim_canon_body_init(b, c, DKIM_HASH_SHA256, DKIM_CANON_NO_LIMIT) == 0) {
		for (size_t p = 0; p < len; p += step)
			dkim_canon_body_update(b, body + p, step < len - p ? step : len - p);
		if (dkim_canon_body_final(b, got, &gl) < 0 ||
		    EVP_Digest(ref.data ? ref.data : "", ref.len, want, &wl, EVP_sha256(), NULL) !=
		        1 ||
		    memcmp(want, got, wl) != 0 || b->length != ref.len)
			abort();
	}
	dkim_canon_body_free(b);
	free(b);
}

static void
verify(const struct rfc5322_header *h, const char *body, size_t len, struct dns_resolver *r)
{
	struct dkim_verify *v = NULL;
	struct dk_verify *dv = NULL;
	if (dkim_verify_new(&(struct dkim_verify_opts){0}, r, &v) == 0 &&
	    dk_verify_new(&(struct dk_verify_opts){0}, r, &dv) == 0 &&
	    dkim_verify_header(v, h) == 0 && dk_verify_header(dv, h) == 0 &&
	    dkim_verify_body(v, body, len) == 0 && dk_verify_body(dv, body, len) == 0 &&
	    dkim_verify_finish(v) == 0)
		dk_verify_finish(dv);
	dkim_verify_free(v);
	dk_verify_free(dv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_resolver *r;
	struct rfc5322_header whole, chunked;
	if (size < 1 || size > FUZZ_MSG_MAX)
		return 0;
	if (!r) {
		struct dns_zone *z;
		if (dns_zone_new(&z) < 0 || dns_resolver_from_zone(z, &r) < 0)
			abort();
	}
	size_t step = (size_t)data[0] % 67 + 1;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	size_t b1 = read_header(msg, len, len ? len : 1, &whole);
	size_t b2 = read_header(msg, len, step, &chunked);
	if (b1 != b2 || whole.n != chunked.n || whole.lf_only != chunked.lf_only)
		abort();
	for (size_t i = 0; i < whole.n; i++)
		if (whole.f[i].len != chunked.f[i].len ||
		    memcmp(whole.f[i].raw, chunked.f[i].raw, whole.f[i].len) != 0)
			abort();
	if (b1 != SIZE_MAX) {
		check_fields(&whole);
		for (int c = DKIM_CANON_SIMPLE; c <= DK_CANON_NOFWS; c++)
			check_canon((enum dkim_canon)c, msg + b1, len - b1, step);
		verify(&whole, msg + b1, len - b1, r);
	}
	rfc5322_header_free(&whole);
	rfc5322_header_free(&chunked);
	return 0;
}
