#include "dkim_canon.h"

#include "core/cleanup.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static EVP_MD *md_sha1, *md_sha256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

/* An explicit fetch once: EVP_sha256() would make OpenSSL 3 look it up on every init. */
static void
md_fetch(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *
dkim_canon_md(enum dkim_hash hash)
{
	pthread_once(&md_once, md_fetch);
	return hash == DKIM_HASH_SHA1 ? md_sha1 : md_sha256;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The name lower-cased, without the WSP before the colon; returns where the value starts. */
static size_t
relaxed_name(const char *raw, size_t len, char *o, size_t *olen)
{
	const char *colon = memchr(raw, ':', len);
	size_t end = colon ? (size_t)(colon - raw) : len;
	while (!colon && end > 0 && (raw[end - 1] == '\r' || raw[end - 1] == '\n'))
		end--;
	while (end > 0 && is_wsp(raw[end - 1]))
		end--;
	for (size_t i = 0; i < end; i++)
		o[i] = raw[i] >= 'A' && raw[i] <= 'Z' ? (char)(raw[i] + 32) : raw[i];
	o[end] = ':';
	*olen = end + 1;
	return colon ? (size_t)(colon - raw) + 1 : len;
}

#if defined(__SSE2__)
/* The first byte relaxed changes in a field: HTAB, CR, or SP before SP, HTAB or CR; or n. */
static size_t
next_field_special(const char *p, size_t n)
{
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), cr = _mm_set1_epi8('\r');
	size_t i = 0;
	for (; i + 17 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i next = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
		__m128i next_ws =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(next, sp), _mm_cmpeq_epi8(next, tab)),
		                 _mm_cmpeq_epi8(next, cr));
		__m128i m =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(a, tab), _mm_cmpeq_epi8(a, cr)),
		                 _mm_and_si128(_mm_cmpeq_epi8(a, sp), next_ws));
		int bits = _mm_movemask_epi8(m);
		if (bits)
			return i + (size_t)__builtin_ctz((unsigned)bits);
	}
	for (; i < n; i++)
		if (p[i] == '\t' || p[i] == '\r' ||
		    (p[i] == ' ' && (i + 1 == n || is_wsp(p[i + 1]) || p[i + 1] == '\r')))
			return i;
	return n;
}
#else
static size_t
next_field_special(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\t' || p[i] == '\r' ||
		    (p[i] == ' ' && (i + 1 == n || is_wsp(p[i + 1]) || p[i + 1] == '\r')))
			return i;
	return n;
}
#endif

/*
 * name ":" value with the folding CRLFs gone, WSP runs as one SP, none at either end. Runs
 * of words with single spaces between them are copied as they are.
 */
static int
header_relaxed(const char *raw, size_t len, struct buf *out)
{
	int r = buf_reserve(out, len + 3);
	if (r < 0)
		return r;
	char *o = out->data + out->len, *start = o;
	size_t n;
	size_t i = relaxed_name(raw, len, o, &n);
	o += n;
	bool pending = false, any = false;
	while (i < len) {
		if (is_wsp(raw[i])) {
			/* the whole run: its last SP must not start the next copy */
			while (i < len && is_wsp(raw[i]))
				i++;
			pending = any;
			continue;
		}
		if (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n') {
			i += 2;
			continue;
		}
		/* a bare CR is data: copied alone; anything else up to the next change */
		size_t k = raw[i] == '\r' ? 1 : next_field_special(raw + i, len - i);
		if (pending)
			*o++ = ' ';
		memcpy(o, raw + i, k);
		o += k;
		i += k;
		pending = false;
		any = true;
	}
	memcpy(o, "\r\n", 3);
	out->len += (size_t)(o - start) + 2;
	return 0;
}

/* Every SP, HTAB, CR and LF dropped, then one CRLF. */
static int
header_nofws(const char *raw, size_t len, struct buf *out)
{
	int r = buf_reserve(out, len + 2);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++)
		if (!is_wsp(raw[i]) && raw[i] != '\r' && raw[i] != '\n')
			out->data[out->len++] = raw[i];
	memcpy(out->data + out->len, "\r\n", 3);
	out->len += 2;
	return 0;
}

int
dkim_canon_header(enum dkim_canon c, const char *raw, size_t len, struct buf *out)
{
	switch (c) {
	case DKIM_CANON_RELAXED:
		return header_relaxed(raw, len, out);
	case DK_CANON_NOFWS:
		return header_nofws(raw, len, out);
	default:
		return buf_append(out, raw, len);
	}
}

static bool
name_matches(const struct rfc5322_field *f, const struct dkim_canon_name *n)
{
	return f->name_len == n->len && strncasecmp(f->raw, n->name, n->len) == 0;
}

int
dkim_canon_select(const struct rfc5322_header *h, const struct dkim_canon_name *names, size_t n,
                  size_t skip, enum dkim_canon c, struct buf *out)
{
	_cleanup_free_ bool *taken = calloc(h->n + 1, sizeof(bool));
	if (!taken)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		for (size_t i = h->n; i-- > 0;) {
			if (i == skip || taken[i] || !name_matches(&h->f[i], &names[k]))
				continue;
			taken[i] = true;
			int r = dkim_canon_header(c, h->f[i].raw, h->f[i].len, out);
			if (r < 0)
				return r;
			break;
		}
	}
	return 0;
}

int
dkim_canon_body_init(struct dkim_canon_body *b, enum dkim_canon c, enum dkim_hash hash,
                     uint64_t limit)
{
	const EVP_MD *md = dkim_canon_md(hash);
	b->md = EVP_MD_CTX_new();
	b->canon = c;
	b->limit = limit;
	b->hashed = b->length = b->empty_lines = 0;
	b->cr = b->in_line = b->wsp = false;
	b->err = 0;
	b->run = NULL;
	b->run_len = b->staged = 0;
	if (!b->md)
		return -ENOMEM;
	if (!md || EVP_DigestInit_ex(b->md, md, NULL) != 1)
		return -EIO;
	return 0;
}

void
dkim_canon_body_free(struct dkim_canon_body *b)
{
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
}

static void
stage_flush(struct dkim_canon_body *b)
{
	if (b->staged && EVP_DigestUpdate(b->md, b->stage, b->staged) != 1)
		b->err = -EIO;
	b->staged = 0;
}

/* Canonical bytes to the digest, up to the limit; small pieces through the stage. */
static void
hash_bytes(struct dkim_canon_body *b, const void *p, size_t n)
{
	b->length += n;
	if (b->limit - b->hashed < n)
		n = (size_t)(b->limit - b->hashed);
	b->hashed += n;
	if (n >= DKIM_CANON_STAGE / 4) {
		stage_flush(b);
		if (EVP_DigestUpdate(b->md, p, n) != 1)
			b->err = -EIO;
		return;
	}
	if (DKIM_CANON_STAGE - b->staged < n)
		stage_flush(b);
	memcpy(b->stage + b->staged, p, n);
	b->staged += n;
}

static void
run_flush(struct dkim_canon_body *b)
{
	if (b->run_len)
		hash_bytes(b, b->run, b->run_len);
	b->run = NULL;
	b->run_len = 0;
}

/* Input bytes that are canonical as they are: hashed later, in one piece with their
 * neighbours when they are contiguous. */
static void
run_extend(struct dkim_canon_body *b, const char *p, size_t n)
{
	if (b->run && b->run + b->run_len == p) {
		b->run_len += n;
		return;
	}
	run_flush(b);
	b->run = p;
	b->run_len = n;
}

static void
emit(struct dkim_canon_body *b, const void *p, size_t n)
{
	if (b->run_len)
		run_flush(b);
	hash_bytes(b, p, n);
}

/* Empty lines held back are part of the body after all: content follows them. */
static void
flush_empty_lines(struct dkim_canon_body *b)
{
	static const char crlf[] =
	    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
	while (b->empty_lines > 0) {
		uint64_t k = b->empty_lines < sizeof(crlf) / 2 ? b->empty_lines : sizeof(crlf) / 2;
		emit(b, crlf, (size_t)k * 2);
		b->empty_lines -= k;
	}
}

static void
line_end(struct dkim_canon_body *b)
{
	b->wsp = false;
	if (!b->in_line) {
		b->empty_lines++;
		return;
	}
	emit(b, "\r\n", 2);
	b->in_line = false;
}

static void
content(struct dkim_canon_body *b, char c)
{
	if (!b->in_line) {
		flush_empty_lines(b);
		b->in_line = true;
	}
	if (b->wsp) {
		emit(b, " ", 1);
		b->wsp = false;
	}
	emit(b, &c, 1);
}

/* One byte of a line (never a line end), as the canonicalisation sees it. */
static void
line_byte(struct dkim_canon_body *b, char c)
{
	switch (b->canon) {
	case DKIM_CANON_RELAXED:
		if (is_wsp(c))
			b->wsp = true;
		else
			content(b, c);
		return;
	case DK_CANON_NOFWS:
		if (!is_wsp(c) && c != '\r')
			content(b, c);
		return;
	default:
		content(b, c);
	}
}

#if defined(__SSE2__)
/* Where relaxed changes p[0..n): the first HTAB or SP followed by WSP; n when nowhere. */
static size_t
next_special(const char *p, size_t n)
{
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	size_t i = 0;
	for (; i + 17 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i next = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
		__m128i next_wsp =
		    _mm_or_si128(_mm_cmpeq_epi8(next, sp), _mm_cmpeq_epi8(next, tab));
		__m128i bad = _mm_or_si128(_mm_cmpeq_epi8(a, tab),
		                           _mm_and_si128(_mm_cmpeq_epi8(a, sp), next_wsp));
		int m = _mm_movemask_epi8(bad);
		if (m)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
	for (; i < n; i++)
		if (p[i] == '\t' || (p[i] == ' ' && i + 1 < n && is_wsp(p[i + 1])))
			return i;
	return n;
}
#else
static size_t
next_special(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\t' || (p[i] == ' ' && i + 1 < n && is_wsp(p[i + 1])))
			return i;
	return n;
}
#endif

/* Relaxed content without trailing WSP: runs between the changes are copied as they are,
 * each WSP run becomes one SP. */
static void
relaxed_segments(struct dkim_canon_body *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = next_special(p + i, n - i);
		if (k)
			emit(b, p + i, k);
		i += k;
		if (i >= n)
			return;
		while (i < n && is_wsp(p[i]))
			i++;
		emit(b, " ", 1);
	}
}

/*
 * The rest of the current line, p up to its LF at nl, for every form but nofws. Lines that
 * are canonical as they are, with a CRLF, join the run instead of being copied.
 */
static void
line_rest(struct dkim_canon_body *b, const char *p, const char *nl)
{
	bool crlf = nl > p && nl[-1] == '\r';
	size_t full = (size_t)(nl - p) - crlf, n = full;
	if (b->canon == DKIM_CANON_RELAXED)
		while (n > 0 && is_wsp(p[n - 1]))
			n--;
	if (n == 0) {
		line_end(b);
		return;
	}
	if (!b->in_line) {
		flush_empty_lines(b);
		b->in_line = true;
	}
	if (b->canon == DKIM_CANON_RELAXED && next_special(p, n) < n) {
		relaxed_segments(b, p, n);
	} else if (crlf && n == full) {
		run_extend(b, p, n + 2);
		b->in_line = false;
		return;
	} else {
		emit(b, p, n);
	}
	emit(b, "\r\n", 2);
	b->in_line = false;
}

/* Byte by byte up to and including the next line end; returns where it stopped. */
static const char *
slow_line(struct dkim_canon_body *b, const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p == '\n') {
			line_end(b);
			return p + 1;
		}
		if (*p == '\r') {
			if (p + 1 == end) {
				b->cr = true;
				return end;
			}
			if (p[1] == '\n') {
				line_end(b);
				return p + 2;
			}
		}
		line_byte(b, *p);
	}
	return end;
}

#if defined(__SSE2__)
/* Bytes that end a verbatim span, 16 at a time: what follows each byte decides. */
static int
special_mask(const char *p, bool relaxed)
{
	const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
	const __m128i prev = _mm_loadu_si128((const __m128i *)(const void *)(p - 1));
	const __m128i next = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
	const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	__m128i a_lf = _mm_cmpeq_epi8(a, lf);
	__m128i n_eol = _mm_or_si128(_mm_cmpeq_epi8(next, lf), _mm_cmpeq_epi8(next, cr));
	/* an LF alone, or one that an empty line follows */
	__m128i bad = _mm_and_si128(
	    a_lf, _mm_or_si128(n_eol, _mm_xor_si128(_mm_cmpeq_epi8(prev, cr), _mm_set1_epi8(-1))));
	if (relaxed) {
		__m128i n_wsp = _mm_or_si128(
		    _mm_or_si128(_mm_cmpeq_epi8(next, sp), _mm_cmpeq_epi8(next, tab)), n_eol);
		__m128i cr_alone =
		    _mm_andnot_si128(_mm_cmpeq_epi8(next, lf), _mm_cmpeq_epi8(a, cr));
		bad = _mm_or_si128(bad, _mm_cmpeq_epi8(a, tab));
		bad = _mm_or_si128(bad, _mm_and_si128(_mm_cmpeq_epi8(a, sp), n_wsp));
		bad = _mm_or_si128(bad, cr_alone);
	}
	return _mm_movemask_epi8(bad);
}

/*
 * How many bytes from p are their own canonical form: no empty line, no LF without CR and,
 * for relaxed, no HTAB, bare CR, or SP before WSP or a line end. p[0] is known not to be a
 * line end or WSP. Never ends between a CR and its LF.
 */
static size_t
verbatim_span(const char *p, size_t n, bool relaxed)
{
	size_t i = 1;
	for (; i + 17 <= n; i += 16) {
		int m = special_mask(p + i, relaxed);
		if (m) {
			i += (size_t)__builtin_ctz((unsigned)m);
			break;
		}
	}
	if (i > 0 && p[i - 1] == '\r')
		i--;
	return i;
}
#else
static size_t
verbatim_span(const char *p, size_t n, bool relaxed)
{
	return 0;
}
#endif

/* Where the vectorised span applies: DKIM's forms, at a byte that starts content. */
static bool
span_start(const struct dkim_canon_body *b, const char *p, const char *end)
{
	if (end - p < 64 || b->wsp || b->canon == DK_CANON_NOFWS)
		return false;
	if (*p == '\n' || *p == '\r')
		return false;
	if (b->canon != DKIM_CANON_RELAXED)
		return true;
	return *p != '\t' && (*p != ' ' || !(is_wsp(p[1]) || p[1] == '\r' || p[1] == '\n'));
}

/*
 * A WSP run inside a relaxed line with content: one SP when content follows, nothing before
 * the line end. Returns where the run ends; NULL when the chunk ends first.
 */
static const char *
wsp_run_at(struct dkim_canon_body *b, const char *p, const char *end)
{
	const char *q = p;
	while (q < end && is_wsp(*q))
		q++;
	if (q == end || (*q == '\r' && q + 1 == end))
		return NULL;
	if (*q != '\n' && !(*q == '\r' && q[1] == '\n'))
		emit(b, " ", 1);
	return q;
}

int
dkim_canon_body_update(struct dkim_canon_body *b, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	/* past l= the body is still measured (not hashed): a verifier says what is unsigned */
	if (len == 0)
		return b->err;
	if (b->cr) {
		b->cr = false;
		if (*p == '\n') {
			line_end(b);
			p++;
		} else {
			line_byte(b, '\r');
		}
	}
	while (p < end) {
		size_t k;
		if (span_start(b, p, end) &&
		    (k = verbatim_span(p, (size_t)(end - p), b->canon == DKIM_CANON_RELAXED)) > 0) {
			if (!b->in_line)
				flush_empty_lines(b);
			run_extend(b, p, k);
			b->in_line = p[k - 1] != '\n';
			p += k;
			continue;
		}
		if (b->canon == DKIM_CANON_RELAXED && b->in_line && !b->wsp && is_wsp(*p)) {
			const char *q = wsp_run_at(b, p, end);
			if (q) {
				p = q;
				continue;
			}
		}
		if (!b->wsp && b->canon != DK_CANON_NOFWS) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (nl) {
				line_rest(b, p, nl);
				p = nl + 1;
				continue;
			}
		}
		p = slow_line(b, p, end);
	}
	run_flush(b);
	return b->err;
}

int
dkim_canon_body_end(struct dkim_canon_body *b)
{
	if (b->cr) {
		b->cr = false;
		line_byte(b, '\r');
	}
	if (b->in_line)
		line_end(b);
	/* RFC 6376 §3.4.3: the simple form of an empty body is one CRLF */
	if (b->canon == DKIM_CANON_SIMPLE && b->length == 0)
		emit(b, "\r\n", 2);
	b->empty_lines = 0;
	stage_flush(b);
	return b->err;
}

int
dkim_canon_body_final(struct dkim_canon_body *b, unsigned char *digest, unsigned *len)
{
	int r = dkim_canon_body_end(b);
	if (r < 0)
		return r;
	return EVP_DigestFinal_ex(b->md, digest, len) == 1 ? 0 : -EIO;
}
