/*
 * Unit tests for src/lb/http1: request and response heads, keep-alive, upgrade, hop-by-hop
 * marking, smuggling vectors, incremental feeding, chunked framing.
 */
#include "core/cleanup.h"
#include "lb/http1.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

/* A string literal with its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

static struct http1_msg msg;

static int
req(const char *s)
{
	return http1_parse_request(s, strlen(s), &msg);
}

static int
resp(const char *s, int method)
{
	return http1_parse_response(s, strlen(s), method, &msg);
}

static void
assert_field(const char *buf, const struct http1_header *h, const char *name, const char *value)
{
	assert_int_equal(h->name_len, strlen(name));
	assert_memory_equal(buf + h->name_off, name, h->name_len);
	assert_int_equal(h->value_len, strlen(value));
	assert_memory_equal(buf + h->value_off, value, h->value_len);
}

/*
 * Every prefix of s must give 0 or the answer for the whole; a complete head must give 0
 * for every prefix shorter than it and its length for every longer one.
 */
static void
assert_split(const char *s, size_t len, bool response, int method)
{
	struct http1_msg part;
	int whole = response ? http1_parse_response(s, len, method, &msg)
	                     : http1_parse_request(s, len, &msg);
	for (size_t k = 0; k < len; k++) {
		int r = response ? http1_parse_response(s, k, method, &part)
		                 : http1_parse_request(s, k, &part);
		if (whole > 0 && k < (size_t)whole && r != 0)
			fail_msg("prefix %zu of \"%s\" gives %d, want 0", k, s, r);
		if (whole > 0 && k >= (size_t)whole && r != whole)
			fail_msg("prefix %zu of \"%s\" gives %d, want %d", k, s, r, whole);
		if (whole <= 0 && r != 0 && r != whole)
			fail_msg("prefix %zu of \"%s\" gives %d, want 0 or %d", k, s, r, whole);
	}
}

static void
test_simple_get(void **state)
{
	const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
	                "User-Agent: t/1.0\r\nAccept:  */*  \r\nX-Forwarded-Proto: http\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_int_equal(msg.head_len, strlen(s));
	assert_int_equal(msg.method, HTTP1_GET);
	assert_memory_equal(s + msg.method_off, "GET", msg.method_len);
	assert_int_equal(msg.target_len, strlen("/index.html?q=1"));
	assert_memory_equal(s + msg.target_off, "/index.html?q=1", msg.target_len);
	assert_int_equal(msg.path_len, strlen("/index.html"));
	assert_int_equal(msg.minor, 1);
	assert_int_equal(msg.body, HTTP1_BODY_NONE);
	assert_true(msg.keep_alive);
	assert_false(msg.upgrade);
	assert_false(msg.expect_continue);
	assert_true(msg.has_host);
	assert_memory_equal(s + msg.host_off, "example.com", msg.host_len);
	assert_int_equal(msg.nheaders, 4);
	assert_field(s, &msg.headers[0], "Host", "example.com");
	assert_int_equal(msg.headers[0].flags, HTTP1_H_HOST);
	assert_field(s, &msg.headers[1], "User-Agent", "t/1.0");
	assert_int_equal(msg.headers[1].flags, 0);
	assert_field(s, &msg.headers[2], "Accept", "*/*");
	assert_int_equal(msg.headers[3].flags, HTTP1_H_XFP);
	assert_ptr_equal(http1_find(&msg, s, "user-agent"), &msg.headers[1]);
	assert_ptr_equal(http1_find(&msg, s, "ACCEPT"), &msg.headers[2]);
	assert_null(http1_find(&msg, s, "Accept-Encoding"));
}

static void
test_methods(void **state)
{
	static const struct {
		const char *name;
		int method;
	} cases[] = {
	    {"GET", HTTP1_GET},        {"HEAD", HTTP1_HEAD},       {"POST", HTTP1_POST},
	    {"PUT", HTTP1_PUT},        {"DELETE", HTTP1_DELETE},   {"OPTIONS", HTTP1_OPTIONS},
	    {"TRACE", HTTP1_TRACE},    {"CONNECT", HTTP1_CONNECT}, {"PATCH", HTTP1_PATCH},
	    {"PROPFIND", HTTP1_OTHER}, {"get", HTTP1_OTHER},       {"GETS", HTTP1_OTHER},
	    {"M-SEARCH", HTTP1_OTHER},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char s[128];
		const char *target = cases[i].method == HTTP1_CONNECT ? "h:443" : "/";
		snprintf(s, sizeof(s), "%s %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].name, target);
		assert_int_equal(req(s), strlen(s));
		assert_int_equal(msg.method, cases[i].method);
		assert_int_equal(msg.method_len, strlen(cases[i].name));
	}
	const char *options = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_int_equal(req(options), strlen(options));
	assert_int_equal(msg.target_len, 1);
	const char *connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
	assert_int_equal(req(connect), strlen(connect));
	assert_int_equal(msg.method, HTTP1_CONNECT);
	assert_int_equal(msg.path_len, strlen("example.com:443"));
}

static void
test_pipelined(void **state)
{
#define PIPE_1 "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
#define PIPE_2 "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
	const char *s = PIPE_1 PIPE_2 "abc"
	                              "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
	int first = req(s);
	assert_int_equal(first, strlen(PIPE_1));
	assert_int_equal(msg.head_len, strlen(PIPE_1));
	int second = http1_parse_request(s + first, strlen(s) - (size_t)first, &msg);
	assert_int_equal(second, strlen(PIPE_2));
	assert_int_equal(msg.method, HTTP1_POST);
	assert_int_equal(msg.body, HTTP1_BODY_LENGTH);
	assert_int_equal(msg.content_length, 3);
	const char *third = s + first + second + 3;
	assert_int_equal(req(third), strlen(third));
	assert_memory_equal(third + msg.target_off, "/c", 2);
}

static void
test_leading_empty_lines(void **state)
{
	const char *s = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_int_equal(msg.method_off, 5);
	assert_int_equal(req("\r\n"), 0);
	assert_int_equal(req("\r"), 0);
	assert_int_equal(req("\rG"), HTTP1_E400);
	assert_int_equal(req(""), 0);
}

static void
test_bare_lf(void **state)
{
	const char *s = "GET / HTTP/1.1\nHost: h\nX: y\r\n\n";
	assert_int_equal(req(s), strlen(s));
	assert_int_equal(msg.nheaders, 2);
	assert_field(s, &msg.headers[1], "X", "y");
}

static const char *const split_requests[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "\r\n\r\nGET /x?y HTTP/1.0\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 12, 12\r\nContent-Length: 012\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip , CHUNKED \r\n\r\n",
    "GET /c HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: ws\r\n\r\n",
    "GET / HTTP/1.1\nHost: [::1]:80\n\n",
    /* errors: each prefix gives 0 or the same error */
    "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chu nked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunk\x01\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
};

static void
test_split(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(split_requests); i++)
		assert_split(split_requests[i], strlen(split_requests[i]), false, HTTP1_GET);
	assert_split(S("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), false, HTTP1_GET);
	static const char *const responses[] = {
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	    "HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
	    "HTTP/1.1 101 \r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
	    "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(responses); i++)
		assert_split(responses[i], strlen(responses[i]), true, HTTP1_GET);
}

static const struct {
	const char *version, *connection;
	bool keep_alive;
} keep_alive_cases[] = {
    {"1.1", NULL, true},
    {"1.1", "close", false},
    {"1.1", "Close", false},
    {"1.1", "keep-alive", true},
    {"1.1", "foo, CLOSE", false},
    {"1.1", "keep-alive, close", false},
    {"1.1", "closed", true},
    {"1.0", NULL, false},
    {"1.0", "keep-alive", true},
    {"1.0", "Keep-Alive", true},
    {"1.0", " upgrade ,keep-alive ", true},
    {"1.0", "keep-alive, close", false},
    {"1.0", "close", false},
    {"1.0", "keep-alive-ish", false},
};

static void
test_keep_alive(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(keep_alive_cases); i++) {
		char s[256];
		if (keep_alive_cases[i].connection)
			snprintf(s, sizeof(s), "GET / HTTP/%s\r\nHost: h\r\nConnection: %s\r\n\r\n",
			         keep_alive_cases[i].version, keep_alive_cases[i].connection);
		else
			snprintf(s, sizeof(s), "GET / HTTP/%s\r\nHost: h\r\n\r\n",
			         keep_alive_cases[i].version);
		assert_int_equal(req(s), strlen(s));
		if (msg.keep_alive != keep_alive_cases[i].keep_alive)
			fail_msg("%s: keep_alive %d", s, msg.keep_alive);
	}
	/* The same rules for responses; a body running to close ends the connection. */
	assert_true(resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP1_GET) > 0);
	assert_true(msg.keep_alive);
	assert_true(resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	                 HTTP1_GET) > 0);
	assert_false(msg.keep_alive);
	assert_true(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP1_GET) > 0);
	assert_false(msg.keep_alive);
	assert_true(resp("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
	                 HTTP1_GET) > 0);
	assert_true(msg.keep_alive);
	assert_true(resp("HTTP/1.1 200 OK\r\n\r\n", HTTP1_GET) > 0);
	assert_int_equal(msg.body, HTTP1_BODY_CLOSE);
	assert_false(msg.keep_alive);
}

static void
test_absolute_form(void **state)
{
	/* The authority stands for Host, which may differ (RFC 9112 3.2.2); path and query
	 * are the origin-form to send on. */
	const char *s = "GET http://example.com:8080/a/b?x=1&y=2 HTTP/1.1\r\n"
	                "Host: other.example\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_true(msg.absolute);
	assert_true(msg.has_host);
	assert_int_equal(msg.target_len, strlen("http://example.com:8080/a/b?x=1&y=2"));
	assert_int_equal(msg.origin_len, strlen("/a/b?x=1&y=2"));
	assert_memory_equal(s + msg.origin_off, "/a/b?x=1&y=2", msg.origin_len);
	assert_int_equal(msg.path_len, strlen("/a/b"));
	assert_int_equal(msg.host_len, strlen("example.com:8080"));
	assert_memory_equal(s + msg.host_off, "example.com:8080", msg.host_len);
	assert_split(s, strlen(s), false, 0);
	/* Any case of the scheme; an empty path; HTTP/1.0 needs no Host. */
	const char *t = "GET HTTPS://[2001:db8::1]:8443 HTTP/1.0\r\n\r\n";
	assert_int_equal(req(t), strlen(t));
	assert_true(msg.absolute);
	assert_false(msg.has_host);
	assert_int_equal(msg.origin_len, 0);
	assert_int_equal(msg.path_len, 0);
	assert_memory_equal(t + msg.host_off, "[2001:db8::1]:8443", msg.host_len);
	/* origin-form: the whole target */
	const char *o = "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_int_equal(req(o), strlen(o));
	assert_false(msg.absolute);
	assert_int_equal(msg.origin_off, msg.target_off);
	assert_int_equal(msg.origin_len, msg.target_len);
	assert_memory_equal(o + msg.host_off, "h", msg.host_len);
}

/* Targets that are not one of RFC 9112's four forms, or that a server could misread. */
static const struct {
	const char *line;
	int r;
} target_cases[] = {
    {"GET noslash HTTP/1.1", HTTP1_E400},
    {"GET evil.example:80 HTTP/1.1", HTTP1_E400},
    {"GET * HTTP/1.1", HTTP1_E400},
    {"POST * HTTP/1.1", HTTP1_E400},
    {"OPTIONS *x HTTP/1.1", HTTP1_E400},
    {"OPTIONS * HTTP/1.1", 1},
    {"OPTIONS /x HTTP/1.1", 1},
    {"CONNECT h:443 HTTP/1.1", 1},
    {"CONNECT [::1]:443 HTTP/1.1", 1},
    {"CONNECT /x HTTP/1.1", HTTP1_E400},
    {"CONNECT u@h:443 HTTP/1.1", HTTP1_E400},
    {"GET http://u:p@h/ HTTP/1.1", HTTP1_E400},
    {"GET http://h@evil.example/ HTTP/1.1", HTTP1_E400},
    {"GET http:///x HTTP/1.1", HTTP1_E400},
    {"GET http://:80/x HTTP/1.1", HTTP1_E400},
    {"GET http://h:8o/x HTTP/1.1", HTTP1_E400},
    {"GET http://[::1/x HTTP/1.1", HTTP1_E400},
    {"GET http://[::1]x/ HTTP/1.1", HTTP1_E400},
    {"GET http://h?a HTTP/1.1", HTTP1_E400},
    {"GET http:h/x HTTP/1.1", HTTP1_E400},
    {"GET http:/h/x HTTP/1.1", HTTP1_E400},
    {"GET ftp://h/x HTTP/1.1", HTTP1_E400},
    {"GET httpx://h/x HTTP/1.1", HTTP1_E400},
    {"GET mailto:a@b HTTP/1.1", HTTP1_E400},
    {"GET http://h:/x HTTP/1.1", 1},
    {"GET http://h.example./x HTTP/1.1", 1},
    {"GET /a#frag HTTP/1.1", HTTP1_E400},
    {"GET # HTTP/1.1", HTTP1_E400},
    {"GET http://h/#x HTTP/1.1", HTTP1_E400},
    {"GET /caf\xc3\xa9 HTTP/1.1", HTTP1_E400},
    {"GET http://\xc3\xa9/ HTTP/1.1", HTTP1_E400},
    /* the word-at-a-time scan meets '#' and obs-text past its first 8 bytes */
    {"GET /aaaaaaaaaaaaaaaaaaaaaaa#bbbbbbbbbbbbbbbb HTTP/1.1", HTTP1_E400},
    {"GET /aaaaaaaaaaaaaaaaaaaaaaa\x80"
     "bbbbbbbbbbbbbbbb HTTP/1.1",
     HTTP1_E400},
    {"GET /aaaaaaaaaaaaaaaaaaaaaaa\xff"
     "bbbbbbbbbbbbbbbb HTTP/1.1",
     HTTP1_E400},
    {"GET /aaaaaaaaaaaaaaaaaaaaaaa%23bbbbbbbbbbbbbbbb HTTP/1.1", 1},
    {"GET /a{b}|c^d`\\e\"<f> HTTP/1.1", 1},
};

static void
test_target_forms(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(target_cases); i++) {
		char s[256];
		snprintf(s, sizeof(s), "%s\r\nHost: h\r\n\r\n", target_cases[i].line);
		int r = req(s);
		if (target_cases[i].r > 0 ? r != (int)strlen(s) : r != target_cases[i].r)
			fail_msg("%s gives %d", target_cases[i].line, r);
		assert_split(s, strlen(s), false, 0);
	}
	/* An error as soon as no target could follow: no 0 while the target is read. */
	assert_int_equal(req("GET x"), HTTP1_E400);
	assert_int_equal(req("GET *"), HTTP1_E400);
	assert_int_equal(req("GET http:x"), HTTP1_E400);
	assert_int_equal(req("GET http://u@"), HTTP1_E400);
	assert_int_equal(req("GET http:///"), HTTP1_E400);
	assert_int_equal(req("GET http://:"), HTTP1_E400);
	assert_int_equal(req("GET /a#"), HTTP1_E400);
	assert_int_equal(req("GET HtTp"), 0);
	assert_int_equal(req("GET https:/"), 0);
	assert_int_equal(req("GET http://[::1"), 0);
	assert_int_equal(req("GET http://h:8"), 0);
	assert_int_equal(req("OPTIONS *"), 0);
}

/* HTTP/1.2 to 1.9 are 1.1 to us (RFC 9110 2.5); another major version is not HTTP/1. */
static void
test_version(void **state)
{
	const char *s = "GET / HTTP/1.2\r\nHost: h\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_int_equal(msg.minor, 1);
	assert_true(msg.keep_alive);
	assert_int_equal(req("GET / HTTP/1.9\r\n\r\n"), HTTP1_E400); /* 1.1 rules: Host */
	assert_true(req("GET / HTTP/1.9\r\nHost: h\r\n\r\n") > 0);
	assert_int_equal(msg.minor, 1);
	assert_true(req("GET / HTTP/1.0\r\n\r\n") > 0);
	assert_int_equal(msg.minor, 0);
	assert_true(resp("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP1_GET) > 0);
	assert_int_equal(msg.minor, 1);
	assert_int_equal(req("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), HTTP1_E505);
	assert_int_equal(req("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), HTTP1_E400);
}

static void
test_upgrade(void **state)
{
	const char *s = "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                "Sec-WebSocket-Version: 13\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_true(msg.upgrade);
	assert_true(msg.keep_alive);
	assert_int_equal(http1_find(&msg, s, "upgrade")->flags, HTTP1_H_HOP);
	assert_int_equal(http1_find(&msg, s, "connection")->flags, HTTP1_H_HOP);
	assert_int_equal(http1_find(&msg, s, "sec-websocket-key")->flags, 0);

	assert_true(req("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n") > 0);
	assert_false(msg.upgrade);
	assert_true(req("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n") > 0);
	assert_false(msg.upgrade);
	assert_true(req("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n") > 0);
	assert_false(msg.upgrade);
	assert_true(req("GET / HTTP/1.1\r\nHost: h\r\nUpgrade:\r\nConnection: upgrade\r\n\r\n") >
	            0);
	assert_false(msg.upgrade);

	assert_true(resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n\r\n",
	                 HTTP1_GET) > 0);
	assert_true(msg.upgrade);
	assert_int_equal(msg.body, HTTP1_BODY_NONE);
	assert_int_equal(msg.status, 101);
}

static void
test_expect(void **state)
{
	const char *s = "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
	                "Expect: 100-Continue\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_true(msg.expect_continue);
	assert_int_equal(msg.body, HTTP1_BODY_LENGTH);
	assert_int_equal(msg.content_length, 10);
	assert_true(req("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-x\r\n\r\n") > 0);
	assert_false(msg.expect_continue);
	/* RFC 9110 10.1.1: ignored in HTTP/1.0. */
	assert_true(req("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n") > 0);
	assert_false(msg.expect_continue);
	assert_true(resp("HTTP/1.1 100 Continue\r\n\r\n", HTTP1_PUT) > 0);
	assert_int_equal(msg.status, 100);
	assert_int_equal(msg.body, HTTP1_BODY_NONE);
}

static void
test_hop_by_hop(void **state)
{
	const char *s = "GET / HTTP/1.1\r\nHost: h\r\nX-Secret: 1\r\nContent-Length: 0\r\n"
	                "Transfer-Encoding-X: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
	                "Trailer: X\r\nProxy-Connection: keep-alive\r\nx-secret: 2\r\n"
	                "Connection: x-SECRET, Content-Length, Host,,Transfer-Encoding\r\n"
	                "Connection: transfer-encoding-x\r\nX-Forwarded-Proto: https\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	static const unsigned flags[] = {
	    HTTP1_H_HOST, HTTP1_H_HOP, HTTP1_H_CL,  HTTP1_H_HOP, HTTP1_H_HOP, HTTP1_H_HOP,
	    HTTP1_H_HOP,  HTTP1_H_HOP, HTTP1_H_HOP, HTTP1_H_HOP, HTTP1_H_HOP, HTTP1_H_XFP,
	};
	assert_int_equal(msg.nheaders, ARRAY_SIZE(flags));
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (msg.headers[i].flags != flags[i])
			fail_msg("header %zu flags %u, want %u", i, msg.headers[i].flags, flags[i]);
	assert_int_equal(msg.body, HTTP1_BODY_LENGTH);

	/* Transfer-Encoding named in Connection stays a framing field. */
	const char *t = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                "Connection: transfer-encoding\r\n\r\n";
	assert_int_equal(req(t), strlen(t));
	assert_int_equal(msg.headers[1].flags, HTTP1_H_TE);
	assert_int_equal(msg.body, HTTP1_BODY_CHUNKED);
}

static const struct {
	const char *value;
	int r;
	uint64_t len;
} cl_cases[] = {
    {"0", 1, 0},
    {"42", 1, 42},
    {"007", 1, 7},
    {"42,42", 1, 42},
    {"42 ,\t42, 042", 1, 42},
    {"9999999999999999999", 1, UINT64_C(9999999999999999999)},
    {"18446744073709551616", HTTP1_E400, 0},
    {"00000000000000000001", HTTP1_E400, 0},
    {"", HTTP1_E400, 0},
    {"+5", HTTP1_E400, 0},
    {"-5", HTTP1_E400, 0},
    {"5 5", HTTP1_E400, 0},
    {"0x5", HTTP1_E400, 0},
    {"5a", HTTP1_E400, 0},
    {"a", HTTP1_E400, 0},
    {"5,", HTTP1_E400, 0},
    {",5", HTTP1_E400, 0},
    {"5,,5", HTTP1_E400, 0},
    {"5, 6", HTTP1_E400, 0},
    {"5;", HTTP1_E400, 0},
    {"1e3", HTTP1_E400, 0},
};

static void
test_content_length(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(cl_cases); i++) {
		char s[256];
		snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n",
		         cl_cases[i].value);
		int r = req(s);
		if (cl_cases[i].r > 0 ? r != (int)strlen(s) : r != cl_cases[i].r)
			fail_msg("Content-Length: %s gives %d", cl_cases[i].value, r);
		if (r > 0 &&
		    (msg.body != HTTP1_BODY_LENGTH || msg.content_length != cl_cases[i].len))
			fail_msg("Content-Length: %s reads as %llu", cl_cases[i].value,
			         (unsigned long long)msg.content_length);
	}
	assert_true(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
	                "\r\n") > 0);
	assert_int_equal(msg.content_length, 3);
}

static const struct {
	const char *value;
	int r;
} te_cases[] = {
    {"chunked", 1},
    {"Chunked", 1},
    {"chunked ", 1},
    /* other codings are valid, but a request's body is chunked and nothing else */
    {"gzip, chunked", HTTP1_E501},
    {"x-gzip,deflate,compress ,\tchunked", HTTP1_E501},
    {"chunked, identity", HTTP1_E400},
    {"chunked, gzip", HTTP1_E400},
    {"chunked, chunked", HTTP1_E400},
    {"chunked,", HTTP1_E400},
    {",chunked", HTTP1_E400},
    {"", HTTP1_E400},
    {"gzip", HTTP1_E501},
    {"chunked;q=1", HTTP1_E400},
    {"\"chunked\"", HTTP1_E400},
    {"identity", HTTP1_E501},
    {"xchunked", HTTP1_E501},
    {"chunkedx", HTTP1_E501},
    {"chunk", HTTP1_E501},
    {"br, chunked", HTTP1_E501},
};

static void
test_transfer_encoding(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(te_cases); i++) {
		char s[256];
		snprintf(s, sizeof(s),
		         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n",
		         te_cases[i].value);
		int r = req(s);
		if (te_cases[i].r > 0 ? r != (int)strlen(s) : r != te_cases[i].r)
			fail_msg("Transfer-Encoding: %s gives %d", te_cases[i].value, r);
		if (r > 0 && msg.body != HTTP1_BODY_CHUNKED)
			fail_msg("Transfer-Encoding: %s body %d", te_cases[i].value, msg.body);
	}
	/* Two fields make one list. */
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n"),
	                 HTTP1_E501);
	/* A response may have codings before chunked. */
	assert_true(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP1_GET) >
	            0);
	assert_int_equal(msg.body, HTTP1_BODY_CHUNKED);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n"),
	                 HTTP1_E400);
}

struct bad_case {
	const char *s;
	size_t len;
	int r;
};

static const struct bad_case smuggling[] = {
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 0\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"), HTTP1_E501},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"), HTTP1_E501},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0b\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n"), HTTP1_E400},
    {S("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\rHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"), HTTP1_E400},
    {S("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("G\0T / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: \x7f\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX: \x1b[0m\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n"), HTTP1_E400},
    {S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX-Y\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: h\r\nX(: 1\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: a]b\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\nHost: [a[b]\r\n\r\n"), HTTP1_E400},
    {S("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.1\r\n"), 0},
    {S("GET / http/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/11\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("GET /\r\n\r\n"), HTTP1_E400},
    {S("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), HTTP1_E505},
    {S("GET / HTTP/3.1\r\nHost: h\r\n\r\n"), HTTP1_E505},
    {S("GET / HTTP/0.9\r\n\r\n"), HTTP1_E505},
    {S("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
    {S("/ HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP1_E400},
};

static void
test_smuggling(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(smuggling); i++) {
		const struct bad_case *c = &smuggling[i];
		int r = http1_parse_request(c->s, c->len, &msg);
		if (r != c->r)
			fail_msg("case %zu (%.*s) gives %d, want %d", i, (int)c->len, c->s, r,
			         c->r);
		assert_split(c->s, c->len, false, HTTP1_GET);
	}
}

static void
test_early_reject(void **state)
{
	/* An error comes as soon as no more bytes could make the head valid. */
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nX: \x01"), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb"), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\n "), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x"), HTTP1_E400);
	assert_int_equal(
	    req("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding:"),
	    HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: id"), HTTP1_E501);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, g"),
	                 HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nHost:"), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a,"), 0);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a "), 0);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a b"), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r"), 0);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6"), 0);
	assert_int_equal(req("GET / HTTP/1.0\r\nTransfer-Encoding"), 0);
	assert_int_equal(req("GET / HTTP/1.0\r\nTransfer-Encoding:"), HTTP1_E400);
	assert_int_equal(req("GET / HTTP/2"), HTTP1_E505);
	assert_int_equal(req("GET / HTT"), 0);
	assert_int_equal(req("GET / HTX"), HTTP1_E400);
	assert_int_equal(req("GET"), 0);
	assert_int_equal(req("GET\r"), HTTP1_E400);
}

static void
test_host(void **state)
{
	const char *s = "GET / HTTP/1.1\r\nHost:\r\n\r\n";
	assert_int_equal(req(s), strlen(s));
	assert_true(msg.has_host);
	assert_int_equal(msg.host_len, 0);
	assert_true(req("GET / HTTP/1.1\r\nHost: \t \r\n\r\n") > 0);
	assert_int_equal(msg.host_len, 0);
	assert_true(req("GET / HTTP/1.1\r\nhOST: [2001:db8::1]:8080\r\n\r\n") > 0);
	assert_int_equal(msg.host_len, strlen("[2001:db8::1]:8080"));
	assert_true(req("GET / HTTP/1.0\r\n\r\n") > 0);
	assert_false(msg.has_host);
	assert_int_equal(msg.host_len, 0);
}

static void
test_too_many_headers(void **state)
{
	char s[8192];
	size_t n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < HTTP1_HEADERS_MAX; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: %d\r\n", i, i);
	memcpy(s + n, "\r\n", 3);
	assert_int_equal(req(s), n + 2);
	assert_int_equal(msg.nheaders, HTTP1_HEADERS_MAX);
	memcpy(s + n, "X: y\r\n\r\n", 9);
	assert_int_equal(req(s), HTTP1_E431);
	memcpy(s + n, "X", 2);
	assert_int_equal(req(s), HTTP1_E431);
}

static const struct {
	const char *s;
	int method, r, status, body;
	uint64_t len;
} response_cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_LENGTH, 12},
    {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", HTTP1_HEAD, 1, 200, HTTP1_BODY_NONE, 12},
    {"HTTP/1.1 404 Not Found Here\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_GET, 1, 404,
     HTTP1_BODY_CHUNKED, 0},
    {"HTTP/1.1 200 \r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.1 200\r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.0 200 OK\r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.1 204 No Content\r\n\r\n", HTTP1_GET, 1, 204, HTTP1_BODY_NONE, 0},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", HTTP1_GET, 1, 304, HTTP1_BODY_NONE,
     9},
    {"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", HTTP1_GET, 1, 103, HTTP1_BODY_NONE, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP1_GET, 1, 200,
     HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.1 200 Connection established\r\n\r\n", HTTP1_CONNECT, 1, 200, HTTP1_BODY_NONE, 0},
    {"HTTP/1.1 200 OK\r\nHost: a\r\nHost: a b\r\n\r\n", HTTP1_GET, 1, 200, HTTP1_BODY_CLOSE, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_GET,
     HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", HTTP1_HEAD,
     HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HTTP1_GET, HTTP1_E400, 0,
     0, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0,
     0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", HTTP1_GET, HTTP1_E501, 0, 0, 0},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 2000 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 20 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 099 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1  200 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 200 O\rK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"HTTP/2 200 OK\r\n\r\n", HTTP1_GET, HTTP1_E505, 0, 0, 0},
    {"HTTP/1.1\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
    {"ICY 200 OK\r\n\r\n", HTTP1_GET, HTTP1_E400, 0, 0, 0},
};

static void
test_response(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(response_cases); i++) {
		int r = resp(response_cases[i].s, response_cases[i].method);
		if (response_cases[i].r > 0 ? r != (int)strlen(response_cases[i].s)
		                            : r != response_cases[i].r)
			fail_msg("case %zu gives %d", i, r);
		if (r > 0 &&
		    (msg.status != response_cases[i].status || msg.body != response_cases[i].body ||
		     msg.content_length != response_cases[i].len))
			fail_msg("case %zu: status %d body %d length %llu", i, msg.status, msg.body,
			         (unsigned long long)msg.content_length);
		assert_split(response_cases[i].s, strlen(response_cases[i].s), true,
		             response_cases[i].method);
	}
}

/* Scans body in one call, then in every two-piece split, then byte by byte. */
static ssize_t
scan_all_ways(const char *body, size_t len, bool *done)
{
	struct http1_chunked c = {0};
	ssize_t whole = http1_chunked_scan(&c, body, len, done);
	bool whole_done = *done;
	for (size_t k = 0; k <= len; k++) {
		struct http1_chunked d = {0};
		bool d1 = false, d2 = false;
		ssize_t a = http1_chunked_scan(&d, body, k, &d1), b = 0;
		if (a >= 0 && !d1)
			b = http1_chunked_scan(&d, body + k, len - k, &d2);
		ssize_t total = a < 0 ? a : b < 0 ? b : a + b;
		if (total != whole || (d1 || d2) != whole_done)
			fail_msg("split at %zu: %zd done %d, whole %zd done %d", k, total, d1 || d2,
			         whole, whole_done);
	}
	struct http1_chunked e = {0};
	ssize_t total = 0;
	bool d = false;
	for (size_t k = 0; k < len && !d && total >= 0; k++) {
		ssize_t r = http1_chunked_scan(&e, body + k, 1, &d);
		total = r < 0 ? r : total + r;
	}
	if (total != whole || d != whole_done)
		fail_msg("byte by byte: %zd, whole %zd", total, whole);
	return whole;
}

static void
test_chunked_valid(void **state)
{
	static const char *const bodies[] = {
	    "0\r\n\r\n",
	    "000\r\n\r\n",
	    "5\r\nhello\r\n0\r\n\r\n",
	    "5\r\nhello\r\na\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n",
	    "5;name=value;n2=\"quoted ; string\"\r\nhello\r\n0;last\r\n\r\n",
	    "5 ; ext\r\nhello\r\n0\t;x\r\n\r\n",
	    "1\r\n\r\r\n0\r\nTrailer-One: 1\r\nX:\r\nChecksum: abc def\r\n\r\n",
	    "00000000000000000000001\r\nx\r\n0\r\n\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		bool done;
		ssize_t r = scan_all_ways(bodies[i], strlen(bodies[i]), &done);
		if (r != (ssize_t)strlen(bodies[i]) || !done)
			fail_msg("body %zu: %zd done %d", i, r, done);
	}
	/* The body ends inside the buffer: the rest is the next message. */
	const char *s = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	bool done;
	assert_int_equal(scan_all_ways(s, strlen(s), &done), 13);
	assert_true(done);
	struct http1_chunked c = {0};
	assert_int_equal(http1_chunked_scan(&c, s, 13, &done), 13);
	assert_true(done);
	assert_int_equal(http1_chunked_scan(&c, s + 13, 5, &done), 0);
	assert_true(done);
}

static void
test_chunked_large(void **state)
{
	/* The largest size (15 hex digits) is accepted and its data skipped in one step. */
	struct http1_chunked c = {0};
	bool done;
	const char *s = "fffffffffffffff\r\n";
	assert_int_equal(http1_chunked_scan(&c, s, strlen(s), &done), strlen(s));
	assert_false(done);
	assert_true(c.remaining == UINT64_C(0xfffffffffffffff));
	static char data[65536];
	assert_int_equal(http1_chunked_scan(&c, data, sizeof(data), &done), sizeof(data));
	assert_true(c.remaining == UINT64_C(0xfffffffffffffff) - sizeof(data));
	assert_false(done);

	struct http1_chunked d = {0};
	const char *up = "ABCDEF\r\n";
	assert_int_equal(http1_chunked_scan(&d, up, strlen(up), &done), strlen(up));
	assert_true(d.remaining == 0xabcdef);
}

static const struct bad_case bad_chunks[] = {
    {S("\r\n\r\n"), HTTP1_E400},
    {S("g\r\nxxxxxxxxxxxxxxxx\r\n0\r\n\r\n"), HTTP1_E400},
    {S("-5\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("+5\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S(" 5\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5 \r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("0x5\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5g\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("1000000000000000\r\n"), HTTP1_E400},
    {S("ffffffffffffffff\r\n"), HTTP1_E400},
    {S("10000000000000000000000000000000005\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5\r\nhelloX\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5\r\nhello0\r\n\r\n"), HTTP1_E400},
    {S("5\r\nhello\n0\r\n\r\n"), HTTP1_E400},
    {S("5\r\nhello\n\n0\r\n\r\n"), HTTP1_E400},
    {S("0\n\n"), HTTP1_E400},
    {S("5\r\nhello\r0\r\n\r\n"), HTTP1_E400},
    {S("5\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5\rhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5;a\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5;a\rb\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("5;a\0\r\nhello\r\n0\r\n\r\n"), HTTP1_E400},
    {S("0\r\n\n"), HTTP1_E400},
    {S("0\r\n\r\r"), HTTP1_E400},
    {S("0\n\r\n"), HTTP1_E400},
    {S("0\r\nX: 1\n\r\n"), HTTP1_E400},
    {S("0\r\n X: 1\r\n\r\n"), HTTP1_E400},
    {S("0\r\nX : 1\r\n\r\n"), HTTP1_E400},
    {S("0\r\nX\r\n\r\n"), HTTP1_E400},
    {S("0\r\nX: \x01\r\n\r\n"), HTTP1_E400},
};

static void
test_chunked_bad(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_chunks); i++) {
		bool done;
		ssize_t r = scan_all_ways(bad_chunks[i].s, bad_chunks[i].len, &done);
		if (r != bad_chunks[i].r)
			fail_msg("bad chunk %zu gives %zd", i, r);
		assert_false(done);
	}
	/* After an error the walker stays failed. */
	struct http1_chunked c = {0};
	bool done;
	assert_int_equal(http1_chunked_scan(&c, "x", 1, &done), HTTP1_E400);
	assert_int_equal(http1_chunked_scan(&c, "0\r\n\r\n", 5, &done), HTTP1_E400);
}

static void
test_chunked_limits(void **state)
{
	static char line[HTTP1_CHUNK_LINE_MAX + 64];
	bool done;
	/* A size line of exactly HTTP1_CHUNK_LINE_MAX bytes (CRLF included) passes. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "0;", 2);
	memcpy(line + HTTP1_CHUNK_LINE_MAX - 2, "\r\n\r\n", 4);
	assert_int_equal(scan_all_ways(line, HTTP1_CHUNK_LINE_MAX + 2, &done),
	                 HTTP1_CHUNK_LINE_MAX + 2);
	assert_true(done);
	memset(line, 'a', sizeof(line));
	memcpy(line, "0;", 2);
	memcpy(line + HTTP1_CHUNK_LINE_MAX - 1, "\r\n\r\n", 4);
	struct http1_chunked c = {0};
	assert_int_equal(http1_chunked_scan(&c, line, HTTP1_CHUNK_LINE_MAX + 3, &done), HTTP1_E400);

	static char tr[HTTP1_TRAILERS_MAX + 64];
	memset(tr, 'b', sizeof(tr));
	memcpy(tr, "0\r\nX:", 5);
	memcpy(tr + 3 + HTTP1_TRAILERS_MAX - 4, "\r\n\r\n", 4);
	size_t len = 3 + HTTP1_TRAILERS_MAX;
	struct http1_chunked d = {0};
	assert_int_equal(http1_chunked_scan(&d, tr, len, &done), len);
	assert_true(done);
	memset(tr, 'b', sizeof(tr));
	memcpy(tr, "0\r\nX:", 5);
	memcpy(tr + 3 + HTTP1_TRAILERS_MAX - 3, "\r\n\r\n", 4);
	struct http1_chunked e = {0};
	assert_int_equal(http1_chunked_scan(&e, tr, len + 1, &done), HTTP1_E400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),        cmocka_unit_test(test_methods),
	    cmocka_unit_test(test_pipelined),         cmocka_unit_test(test_leading_empty_lines),
	    cmocka_unit_test(test_bare_lf),           cmocka_unit_test(test_split),
	    cmocka_unit_test(test_keep_alive),        cmocka_unit_test(test_absolute_form),
	    cmocka_unit_test(test_target_forms),      cmocka_unit_test(test_version),
	    cmocka_unit_test(test_upgrade),           cmocka_unit_test(test_expect),
	    cmocka_unit_test(test_hop_by_hop),        cmocka_unit_test(test_content_length),
	    cmocka_unit_test(test_transfer_encoding), cmocka_unit_test(test_smuggling),
	    cmocka_unit_test(test_early_reject),      cmocka_unit_test(test_host),
	    cmocka_unit_test(test_too_many_headers),  cmocka_unit_test(test_response),
	    cmocka_unit_test(test_chunked_valid),     cmocka_unit_test(test_chunked_large),
	    cmocka_unit_test(test_chunked_bad),       cmocka_unit_test(test_chunked_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
