/*
 * Fuzz target for src/lb/http1. The first byte picks the response's request method and seeds
 * the split points; the rest is parsed as a request head, as a response head and as a
 * chunked body. Checked: offsets stay inside the head, every prefix of the input gives 0 or
 * the whole input's answer, and the chunked walker gives the same answer in pieces as in one.
 */
#include "core/cleanup.h"
#include "lb/http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Past this, prefixes are sampled rather than all tried. */
#define FUZZ_HTTP1_ALL_PREFIXES 256

static void
check_span(uint32_t off, uint32_t len, size_t head_len)
{
	if (off > head_len || len > head_len - off)
		abort();
}

static void
check_msg(const struct http1_msg *m, int r, size_t len, bool response)
{
	if (r == 0 || r == HTTP1_E400 || r == HTTP1_E431 || r == HTTP1_E501 || r == HTTP1_E505)
		return;
	if (r < 0 || (size_t)r > len || m->head_len != (size_t)r || m->nheaders > HTTP1_HEADERS_MAX)
		abort();
	if ((m->minor != 0 && m->minor != 1) || m->body < HTTP1_BODY_NONE ||
	    m->body > HTTP1_BODY_CLOSE)
		abort();
	for (size_t i = 0; i < m->nheaders; i++) {
		check_span(m->headers[i].name_off, m->headers[i].name_len, m->head_len);
		check_span(m->headers[i].value_off, m->headers[i].value_len, m->head_len);
		if (m->headers[i].name_len == 0)
			abort();
	}
	check_span(m->host_off, m->host_len, m->head_len);
	if (response) {
		if (m->status < 100 || m->status > 999 ||
		    (m->body == HTTP1_BODY_CLOSE && m->keep_alive))
			abort();
		return;
	}
	check_span(m->method_off, m->method_len, m->head_len);
	check_span(m->target_off, m->target_len, m->head_len);
	if (m->method_len == 0 || m->target_len == 0 || m->path_len > m->target_len ||
	    m->body == HTTP1_BODY_CLOSE || (m->minor == 1 && !m->has_host))
		abort();
}

static int
parse(const char *p, size_t len, int method, bool response, struct http1_msg *m)
{
	return response ? http1_parse_response(p, len, method, m) : http1_parse_request(p, len, m);
}

/* A prefix gives 0 or the whole's answer; a whole head is found by any longer prefix. */
static void
check_prefixes(const char *p, size_t len, int method, bool response, int whole)
{
	static struct http1_msg m;
	size_t step = len <= FUZZ_HTTP1_ALL_PREFIXES ? 1 : len / 64 + 1;
	for (size_t k = 0; k < len; k += step) {
		int r = parse(p, k, method, response, &m);
		check_msg(&m, r, k, response);
		if (whole > 0 && r != (k < (size_t)whole ? 0 : whole))
			abort();
		if (whole <= 0 && r != 0 && r != whole)
			abort();
	}
}

static void
check_head(const char *p, size_t len, int method, bool response)
{
	static struct http1_msg m;
	int r = parse(p, len, method, response, &m);
	check_msg(&m, r, len, response);
	check_prefixes(p, len, method, response, r);
	if (r <= 0)
		return;
	for (size_t i = 0; i < m.nheaders; i++) {
		/* http1_find wants a C string: names are tokens, so never hold a NUL. */
		char name[256];
		size_t n = m.headers[i].name_len;
		if (n >= sizeof(name))
			continue;
		memcpy(name, p + m.headers[i].name_off, n);
		name[n] = '\0';
		const struct http1_header *h = http1_find(&m, p, name);
		if (!h || h > &m.headers[i])
			abort();
	}
}

/* The chunked walker over the input in pieces whose sizes come from seed. */
static ssize_t
scan_pieces(const char *p, size_t len, uint32_t seed, bool *done)
{
	struct http1_chunked c = {0};
	size_t off = 0;
	*done = false;
	while (off < len && !*done) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % 17;
		if (n > len - off)
			n = len - off;
		ssize_t r = http1_chunked_scan(&c, p + off, n, done);
		if (r < 0)
			return r;
		if ((size_t)r > n || (!*done && (size_t)r != n))
			abort();
		off += (size_t)r;
	}
	return (ssize_t)off;
}

static void
check_chunked(const char *p, size_t len, uint32_t seed)
{
	struct http1_chunked c = {0};
	bool done, done2;
	ssize_t whole = http1_chunked_scan(&c, p, len, &done);
	if (whole > (ssize_t)len || (whole >= 0 && !done && whole != (ssize_t)len))
		abort();
	if (whole < 0 && whole != HTTP1_E400)
		abort();
	if (scan_pieces(p, len, seed, &done2) != whole || done != done2)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;
	int method = data[0] % (HTTP1_OTHER + 1);
	check_head(p, len, method, false);
	check_head(p, len, method, true);
	check_chunked(p, len, data[0]);
	return 0;
}
