/*
 * The matcher: one log line in, at most one event out. Hand-written scanners (no regex), one
 * per message shape, so that attacker text (user names, banners) can never supply the address:
 * only the address in its fixed position counts.
 */
#pragma once

#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>

/* Service codes as sshguard numbers them (src/common/attack.h), so tests.txt compares as is. */
enum guard_service {
	GUARD_SVC_SSH = 100,
	GUARD_SVC_DROPBEAR = 101,
	GUARD_SVC_POSTFIX = 260, /* SASL failures */
	GUARD_SVC_DOVECOT = 210,
};

/* Which optional services count; OpenSSH and Dropbear always do. */
enum {
	GUARD_MATCH_POSTFIX = 1u << 0,
	GUARD_MATCH_DOVECOT = 1u << 1,
};

enum guard_event_kind {
	GUARD_EV_ATTACK = 1, /* an authentication failure or a probe: adds danger */
	GUARD_EV_LOGIN = 2,  /* a successful login: the source is trusted (trust-logged-in) */
};

struct guard_event {
	enum guard_event_kind kind;
	enum guard_service service;
	struct net_addr addr; /* port 0; v4-mapped IPv6 normalised to IPv4 */
	unsigned danger;      /* as sshguard scores the same line (10 for most) */
	/*
	 * Static: "invalid-user", "failed-auth", "not-allowed", "max-auth-tries", "change-of-user",
	 * "preauth-close", "preauth-reset", "preauth-disconnect", "no-ident", "bad-protocol",
	 * "banner-exchange", "no-kex", "root-refused", "refused-connect", "reverse-mapping",
	 * "pam-failure", "pam-unix", "login-timeout", "penalty", "bad-password",
	 * "exit-before-auth", "sasl-failure", "auth-failed", or "login" for GUARD_EV_LOGIN.
	 */
	const char *what;
};

/* A line split into its syslog identifier (program, without "[pid]") and message. */
struct guard_line {
	const char *ident;
	size_t ident_len;
	const char *msg;
	size_t msg_len;
};

/*
 * Splits a log-file line: RFC 3164 ("Mmm dd hh:mm:ss host ident[pid]: msg", with or without
 * "<PRI>", with or without the host, "[ident]: msg"), RFC 3339 time stamps
 * ("2024-01-02T03:04:05.123+00:00 host ident[pid]: msg"), journalctl's short form without a
 * time ("host ident[pid]: msg"), RFC 5424 ("<PRI>1 TIME HOST APP PROCID MSGID SD msg"). A
 * trailing newline is dropped; NUL bytes are data. Pointers refer into line. 0, or -EINVAL when
 * no identifier is found.
 */
int guard_match_split(const char *line, size_t len, struct guard_line *out);

/*
 * 1 and *ev filled when the message is an event of an enabled service, 0 when not. Only the
 * identifiers sshd, sshd-session, sshd-auth, dropbear, postfix.../smtpd (GUARD_MATCH_POSTFIX)
 * and dovecot (GUARD_MATCH_DOVECOT) are read. An sshd message of 1023 bytes or more gives no
 * event: sshd cuts its messages there, possibly inside the address.
 */
int guard_match(const struct guard_line *line, unsigned flags, struct guard_event *ev);

/* guard_match_split then guard_match: 1, 0, or 0 for a line that does not split. */
int guard_match_text(const char *line, size_t len, unsigned flags, struct guard_event *ev);
