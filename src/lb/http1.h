/*
 * HTTP/1.1 message heads (RFC 9112) as a load balancer must read them: strict where a lax
 * reading lets a request be smuggled past us (conflicting framing, bad chunk sizes, obs-fold,
 * bare CR), and without copying: every string is an offset into the caller's buffer.
 * Bodies are never buffered here; http1_chunked_scan walks chunked framing as it streams by.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP1_HEADERS_MAX 128
/* Longest chunk-size line (size, extensions) and trailer section accepted. */
#define HTTP1_CHUNK_LINE_MAX 4096
#define HTTP1_TRAILERS_MAX 16384

/* Parser errors; the proxy answers the status in the name. */
enum {
	HTTP1_E400 = -400, /* malformed, or a smuggling vector */
	HTTP1_E431 = -431, /* too many header fields */
	HTTP1_E501 = -501, /* a transfer coding we do not know */
	HTTP1_E505 = -505, /* not HTTP/1.x */
};

enum http1_method {
	HTTP1_GET,
	HTTP1_HEAD,
	HTTP1_POST,
	HTTP1_PUT,
	HTTP1_DELETE,
	HTTP1_OPTIONS,
	HTTP1_TRACE,
	HTTP1_CONNECT,
	HTTP1_PATCH,
	HTTP1_OTHER,
};

enum http1_body {
	HTTP1_BODY_NONE,    /* no body (request without framing; HEAD/1xx/204/304 response) */
	HTTP1_BODY_LENGTH,  /* content_length bytes */
	HTTP1_BODY_CHUNKED, /* chunked framing, walk with http1_chunked_scan */
	HTTP1_BODY_CLOSE,   /* response only: until the server closes */
};

/* Header flags */
enum {
	HTTP1_H_HOP = 1u << 0,  /* hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE,
	                           Trailer, Upgrade and every field named in Connection; a proxy
	                           does not forward it */
	HTTP1_H_XFP = 1u << 1,  /* X-Forwarded-Proto: replaced by the proxy's own */
	HTTP1_H_HOST = 1u << 2, /* Host */
	HTTP1_H_CL = 1u << 3,   /* Content-Length */
	HTTP1_H_TE = 1u << 4,   /* Transfer-Encoding */
};

struct http1_header {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len; /* without surrounding whitespace */
	unsigned flags;
};

struct http1_msg {
	size_t head_len; /* bytes of the head, through the empty line */
	int minor;       /* HTTP/1.minor: 0, or 1 for 1.1 to 1.9 */
	/* request */
	int method; /* enum http1_method */
	uint32_t method_off, method_len;
	uint32_t target_off, target_len;
	/* The target without scheme and authority when absolute-form (path and query, maybe
	 * empty), else all of it. */
	uint32_t origin_off, origin_len;
	uint32_t path_len; /* origin up to '?' or the end */
	bool absolute;     /* absolute-form: host_off/len is its authority, not the Host field */
	/* response */
	int status;
	/* both */
	int body; /* enum http1_body */
	uint64_t content_length;
	bool keep_alive; /* after this message the connection stays open (version + Connection) */
	bool upgrade;    /* Connection: upgrade with an Upgrade field (request), or 101 */
	bool expect_continue;        /* request: Expect: 100-continue */
	bool has_host;               /* a Host field */
	uint32_t host_off, host_len; /* its value, or an absolute-form target's authority */
	size_t nheaders;
	struct http1_header headers[HTTP1_HEADERS_MAX];
};

/*
 * Parses a request head at the start of buf. Returns the head length (> 0) when the whole
 * head is there, 0 when more bytes are needed, or an HTTP1_E* error. The caller enforces its
 * size limit (431) on a head still incomplete. Transfer-Encoding is a framing field, not
 * hop-by-hop here: a chunked body is forwarded as it came (the framing fields are flagged
 * HTTP1_H_CL and HTTP1_H_TE so that a proxy can write them afresh).
 * Rejected (400): bad request line or method token; a target with controls, spaces, '#' or
 * bytes above 0x7f, or not in origin-form, "*" for OPTIONS, host:port for CONNECT or an
 * http(s) absolute-form without userinfo and with a host; HTTP/1.1 without exactly one Host;
 * a Host not host[:port]; field name with invalid characters or whitespace before the colon,
 * controls (but HTAB) or NUL in values, obs-fold, bare CR, Content-Length not a decimal or
 * different values, Content-Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0 or
 * not just chunked (a coding other than chunked: 501). HTTP/1.2 to 1.9 are read as 1.1,
 * another major version is 505.
 * Leading empty lines before the request line are skipped (RFC 9112 2.2); lines may end in
 * CRLF or a bare LF.
 */
int http1_parse_request(const char *buf, size_t len, struct http1_msg *m);

/*
 * Parses a response head. req_method is the request's (HEAD gets no body) and status
 * 1xx/204/304 have none; without Content-Length or chunked, the body runs to close.
 * Returns as http1_parse_request.
 */
int http1_parse_response(const char *buf, size_t len, int req_method, struct http1_msg *m);

/* The header with this name (case-insensitive), or NULL. */
const struct http1_header *http1_find(const struct http1_msg *m, const char *buf, const char *name);

struct http1_chunked {
	int state;
	uint64_t remaining; /* data bytes left in the current chunk */
	size_t line;        /* bytes of the current size line or trailer section */
};

/*
 * Walks chunked framing over the next len bytes of a body. Returns how many bytes belong to
 * the body (< len only when the body ended inside p: *done is set), or HTTP1_E400 for a bad
 * size (not hex, overflow past 2^62, empty), a missing CRLF after data, a bare CR or LF in
 * framing, or a size line or trailers past their limits.
 */
ssize_t http1_chunked_scan(struct http1_chunked *c, const char *p, size_t len, bool *done);
