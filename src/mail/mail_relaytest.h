/*
 * Open-relay test: an SMTP client that tries outside recipients and the classic relay tricks
 * (percent hack, source routes, bang paths, quoted local parts, unqualified names) against a
 * server, one MAIL FROM / RCPT TO / RSET per trick, and never sends DATA. Every reply, line
 * and buffer is size-capped; server text is kept with control characters escaped.
 */
#pragma once

#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One reply line: RFC 5321 allows 512 octets; some servers send longer ones. */
#define MAIL_RELAYTEST_LINE_MAX 1000
/* Lines of one reply (an EHLO reply has a dozen). */
#define MAIL_RELAYTEST_REPLY_LINES 64
/* Escaped text kept of one reply (the rest is dropped, truncated is set). */
#define MAIL_RELAYTEST_TEXT_MAX 1024
/* A host name, an address as sent ("<...>"), an argument of one command. */
#define MAIL_RELAYTEST_NAME_MAX 254
#define MAIL_RELAYTEST_LOCAL_MAX 64
#define MAIL_RELAYTEST_PATH_MAX 700
#define MAIL_RELAYTEST_TRICKS_MAX 24
/* Addresses of a host name tried in turn. */
#define MAIL_RELAYTEST_ADDRS_MAX 8

/* One SMTP reply. text: the lines without their codes, joined by "\n", escaped. */
struct mail_relaytest_reply {
	int code; /* 200..599 */
	char text[MAIL_RELAYTEST_TEXT_MAX];
	size_t lines;
	bool truncated;
};

/* HOST[:PORT] as given on the command line. */
struct mail_relaytest_target {
	char host[MAIL_RELAYTEST_NAME_MAX]; /* the name, or the address without brackets */
	bool is_addr;                       /* addr holds it (port included) */
	struct net_addr addr;
	uint16_t port;
};

/* What the tricks are built from. */
struct mail_relaytest_params {
	const char *from;    /* outside sender, local@domain */
	const char *to;      /* outside recipient, local@domain */
	const char *domain;  /* the server's own domain, or "[literal]" */
	const char *literal; /* the server's address as a domain literal: "[1.2.3.4]" */
};

struct mail_relaytest_trick {
	const char *name;                        /* short, stable: "plain", "percent", ... */
	const char *what;                        /* one line for people */
	char mail_from[MAIL_RELAYTEST_PATH_MAX]; /* argument of MAIL FROM: as sent */
	char rcpt_to[MAIL_RELAYTEST_PATH_MAX];   /* argument of RCPT TO: as sent */
	bool relay; /* accepting it means relaying outside (false: a local name, for the record) */
};

enum mail_relaytest_stage {
	MAIL_RELAYTEST_NOT_RUN,
	MAIL_RELAYTEST_AT_MAIL, /* MAIL FROM was refused: reply holds that refusal */
	MAIL_RELAYTEST_AT_RCPT, /* reply is the RCPT TO reply */
};

struct mail_relaytest_outcome {
	struct mail_relaytest_trick trick;
	enum mail_relaytest_stage stage;
	struct mail_relaytest_reply reply;
	bool accepted; /* RCPT TO answered 250 or 251 */
};

struct mail_relaytest_options {
	const char *helo;
	uint64_t step_ms;     /* each connect, read and write */
	uint64_t deadline_ms; /* absolute, on dns_monotonic_ms()'s clock; 0: none */
	bool no_tls;
	const char *domain;    /* the server's domain; NULL: from its EHLO reply or greeting */
	const char *fallback;  /* the domain when neither names one (the host name given); NULL:
	                          the address literal */
	const char *sni;       /* host name sent in the TLS handshake; NULL: none */
	const char *from, *to; /* outside addresses, local@domain */
};

struct mail_relaytest_tls {
	bool offered, used;
	char refused[MAIL_RELAYTEST_TEXT_MAX]; /* the reply when STARTTLS was refused, else "" */
	char version[32], cipher[64];
	int bits;
	char subject[256]; /* the server certificate's subject, escaped */
};

struct mail_relaytest_result {
	struct net_addr addr;                     /* the address that answered */
	struct mail_relaytest_reply banner;       /* of the first session */
	struct mail_relaytest_reply ehlo;         /* EHLO (or HELO) reply of the first session */
	bool esmtp;                               /* EHLO worked (else HELO) */
	char domain[MAIL_RELAYTEST_NAME_MAX + 2]; /* the server domain the tricks used */
	struct mail_relaytest_tls tls;
	struct mail_relaytest_outcome out[MAIL_RELAYTEST_TRICKS_MAX];
	size_t n;        /* tricks built */
	size_t sessions; /* SMTP sessions opened */
	char error[512]; /* why the test could not finish, when mail_relaytest_run failed */
};

/*
 * Parses one complete reply from the start of data (CRLF or LF line ends). Returns the bytes
 * it spans, 0 when more input is needed, -EBADMSG for text that is not an SMTP reply (bad
 * code, lines with different codes, NUL bytes), -EMSGSIZE for a line longer than
 * MAIL_RELAYTEST_LINE_MAX or more than MAIL_RELAYTEST_REPLY_LINES lines.
 */
int mail_relaytest_reply_parse(const char *data, size_t len, struct mail_relaytest_reply *out);
/* Appends src[0..len) to dst (NUL-terminated, cap bytes) with \\, \xNN for control and
 * non-ASCII bytes; returns false when it had to cut. */
bool mail_relaytest_escape(char *dst, size_t cap, const char *src, size_t len);

/* "name", "name:25", "1.2.3.4", "1.2.3.4:25", "::1", "[::1]", "[::1]:2525"; default port 25.
 * -EINVAL for anything else (a bad name, a port out of 1..65535). */
int mail_relaytest_target_parse(const char *s, struct mail_relaytest_target *out);
/* A host name: letters, digits, hyphens, dots; not all digits in the last label. */
bool mail_relaytest_name_valid(const char *s);
/* local@domain with a plain local part (no quotes, %, !, @) and a host-name domain. */
bool mail_relaytest_addr_valid(const char *s);
/* "[1.2.3.4]", "[IPv6:::1]". */
int mail_relaytest_literal(const struct net_addr *a, char *buf, size_t len);
/* The server's domain named by a greeting or EHLO reply's first word, "" when it names none. */
void mail_relaytest_reply_domain(const struct mail_relaytest_reply *r, char *buf, size_t len);

/* The tricks, in the order they are tried; -EINVAL for bad addresses, -ENAMETOOLONG. */
int mail_relaytest_tricks(const struct mail_relaytest_params *p, struct mail_relaytest_trick *out,
                          size_t max, size_t *n);

/*
 * Runs every trick against the first of addrs that answers, over as many sessions as it takes
 * (a new one every few tricks, and after the server closes one). Returns 0 when every trick
 * got an answer, else -errno with result->error saying why (tricks answered before that are
 * kept): -ECONNREFUSED, -ETIMEDOUT, -EPROTO (not SMTP, or a refusal to talk: 421, 554),
 * -ECONNRESET (closed), -ENOBUFS (a reply past the caps), -EIO (TLS failure).
 */
int mail_relaytest_run(const struct net_addr *addrs, size_t naddrs,
                       const struct mail_relaytest_options *o,
                       struct mail_relaytest_result *result);
/* Relay tricks the server accepted. */
size_t mail_relaytest_open_count(const struct mail_relaytest_result *r);
