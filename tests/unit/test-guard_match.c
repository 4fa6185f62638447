/*
 * Unit tests for src/guard/guard_match: every failure kind, logins, log-line splitting, address
 * forms (IPv6, zone ids, v4-mapped, invalid), log-injection vectors (the three DenyHosts CVEs
 * re-expressed, and more), long, truncated and NUL-carrying lines, other programs' lines.
 */
#include "core/net.h"
#include "guard/guard_match.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define ALL (GUARD_MATCH_POSTFIX | GUARD_MATCH_DOVECOT)

static int
match(const char *line, unsigned flags, struct guard_event *ev)
{
	return guard_match_text(line, strlen(line), flags, ev);
}

/* line gives an event of kind/service for addr with danger. */
static void
expect_event(const char *line, unsigned flags, enum guard_event_kind kind, enum guard_service svc,
             const char *addr, unsigned danger)
{
	struct guard_event ev;
	char got[NET_ADDR_STRLEN];
	if (match(line, flags, &ev) != 1)
		fail_msg("no event for: %s", line);
	assert_int_equal(net_addr_format(&ev.addr, false, got, sizeof(got)), 0);
	if (strcmp(got, addr) != 0)
		fail_msg("%s: got %s, want %s", line, got, addr);
	assert_int_equal(ev.kind, kind);
	assert_int_equal(ev.service, svc);
	assert_int_equal(ev.danger, danger);
	assert_int_equal(ev.addr.port, 0);
	assert_non_null(ev.what);
}

static void
expect_ssh(const char *msg, const char *addr, unsigned danger)
{
	char line[2048];
	snprintf(line, sizeof(line), "Dec  1 06:25:27 host sshd[123]: %s", msg);
	expect_event(line, 0, GUARD_EV_ATTACK, GUARD_SVC_SSH, addr, danger);
	/* OpenSSH 9.8+ logs the per-connection part as sshd-session. */
	snprintf(line, sizeof(line), "Dec  1 06:25:27 host sshd-session[123]: %s", msg);
	expect_event(line, 0, GUARD_EV_ATTACK, GUARD_SVC_SSH, addr, danger);
}

static void
expect_none_flags(const char *line, unsigned flags)
{
	struct guard_event ev;
	if (match(line, flags, &ev) != 0) {
		char got[NET_ADDR_STRLEN] = "?";
		net_addr_format(&ev.addr, false, got, sizeof(got));
		fail_msg("unexpected event (%s, %s) for: %s", ev.what, got, line);
	}
}

static void
expect_none(const char *line)
{
	expect_none_flags(line, ALL);
}

static void
expect_ssh_none(const char *msg)
{
	char line[2048];
	snprintf(line, sizeof(line), "Dec  1 06:25:27 host sshd[123]: %s", msg);
	expect_none(line);
}

static void
test_failed_auth(void **state)
{
	(void)state;
	expect_ssh("Failed password for root from 192.0.2.1 port 56502 ssh2", "192.0.2.1", 10);
	expect_ssh("Failed password for invalid user admin from 192.0.2.2 port 1 ssh2", "192.0.2.2",
	           10);
	expect_ssh("Failed publickey for invalid user git from 192.0.2.3 port 2 ssh2: RSA "
	           "SHA256:v3dpapGleDaUKf$4V1vKyR9ZyUgjaJAmoCTcb2PLljI",
	           "192.0.2.3", 10);
	expect_ssh("Failed keyboard-interactive/pam for invalid user x from 192.0.2.4 port 3 ssh2",
	           "192.0.2.4", 10);
	expect_ssh("Failed keyboard-interactive for james from 192.0.2.5 port 4 ssh2", "192.0.2.5",
	           10);
	expect_ssh("Failed none for invalid user admin from 192.0.2.6 port 5 ssh2", "192.0.2.6",
	           10);
	expect_ssh("Failed hostbased for dan from 192.0.2.7 port 6 ssh2: RSA 8c:e3, client user "
	           "\"dan\", client host \"localhost\"",
	           "192.0.2.7", 10);
	/* Old sshd: no port, or no protocol. */
	expect_ssh("Failed password for invalid user ROOT from 192.0.2.8", "192.0.2.8", 10);
	expect_ssh("Failed password for invalid user ROOT from 192.0.2.9 port 12345", "192.0.2.9",
	           10);
	/* Solaris and kernel-ish prefixes before the message. */
	expect_ssh("[ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from "
	           "192.0.2.10 port 42742 ssh2",
	           "192.0.2.10", 10);
	expect_ssh("kernel:[  970.699396]: Failed password for a from 192.0.2.11 port 1 ssh2",
	           "192.0.2.11", 10);
	expect_ssh("kernel: [  970.699397] Failed password for a from 192.0.2.12 port 1 ssh2",
	           "192.0.2.12", 10);
}

static void
test_failed_publickey_valid_user_ignored(void **state)
{
	(void)state;
	/* A valid user's agent offering several keys must not ban the admin (fail2ban gh-1263). */
	expect_ssh_none("Failed publickey for git from 192.0.2.1 port 57904 ssh2: ECDSA 0e:ff:xx");
	expect_ssh_none("Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]");
}

static void
test_invalid_user_and_not_allowed(void **state)
{
	(void)state;
	expect_ssh("Invalid user ftp from 192.0.2.1", "192.0.2.1", 10);
	expect_ssh("Invalid user ftp from 192.0.2.2 port 37220", "192.0.2.2", 10);
	expect_ssh("Invalid user  from 192.0.2.68 port 34916", "192.0.2.68", 10);
	expect_ssh("Illegal user x from 192.0.2.3", "192.0.2.3", 10);
	expect_ssh("User root from 192.0.2.4 not allowed because not listed in AllowUsers",
	           "192.0.2.4", 10);
	expect_ssh("User root from 192.0.2.5 not allowed because listed in DenyUsers", "192.0.2.5",
	           10);
	expect_ssh("User root from 192.0.2.6 not allowed because none of user's groups are listed "
	           "in AllowGroups",
	           "192.0.2.6", 10);
	expect_ssh_none("User root not allowed because account is locked");
	expect_ssh_none("input_userauth_request: invalid user root [preauth]");
	/* A host name is not an address: never resolve what the attacker's DNS says. */
	expect_ssh_none("User root from example.com not allowed because not listed in AllowUsers");
}

static void
test_max_auth_and_disconnects(void **state)
{
	(void)state;
	expect_ssh("error: maximum authentication attempts exceeded for root from 192.0.2.1 port "
	           "49940 ssh2 [preauth]",
	           "192.0.2.1", 10);
	expect_ssh("error: maximum authentication attempts exceeded for invalid user xxx from "
	           "2001:db8::7 port 49941 ssh2 [preauth]",
	           "2001:db8::7", 10);
	/* Logged right after "maximum authentication attempts exceeded": counted there. */
	expect_ssh_none("Disconnecting invalid user xxx 192.0.2.7 port 49941: Too many "
	                "authentication failures [preauth]");
	/* No address in the line (the matcher is one line in, one event out). */
	expect_ssh_none("Disconnecting: Too many authentication failures for root [preauth]");
	expect_ssh(
	    "Disconnecting invalid user user 10.42.42.42 port 38987: Change of username or "
	    "service not allowed: (user,ssh-connection) -> (manager,ssh-connection) [preauth]",
	    "10.42.42.42", 10);
	expect_ssh("Disconnecting authenticating user root 192.0.2.3 port 1: Change of username or "
	           "service not allowed: (root,ssh-connection) -> (x,ssh-connection) [preauth]",
	           "192.0.2.3", 10);
}

static void
test_preauth_closes(void **state)
{
	(void)state;
	expect_ssh("Connection closed by 192.0.2.1 [preauth]", "192.0.2.1", 2);
	expect_ssh("Connection closed by 192.0.2.2 port 22 [preauth]", "192.0.2.2", 2);
	expect_ssh("Connection closed by authenticating user root 192.0.2.3 port 42728 [preauth]",
	           "192.0.2.3", 2);
	expect_ssh("Connection closed by invalid user gpadmin 192.0.2.4 port 9224 [preauth]",
	           "192.0.2.4", 2);
	expect_ssh("Connection closed by invalid user  192.0.2.5 port 34916 [preauth]", "192.0.2.5",
	           2);
	expect_ssh("Connection reset by invalid user username 192.0.2.6 port 55895 [preauth]",
	           "192.0.2.6", 2);
	expect_ssh("Connection reset by 192.0.2.7 port 14282 [preauth]", "192.0.2.7", 2);
	expect_ssh("Disconnected from authenticating user root 192.0.2.8 port 57142 [preauth]",
	           "192.0.2.8", 10);
	expect_ssh("Disconnected from invalid user support 192.0.2.9 port 56636 [preauth]",
	           "192.0.2.9", 10);
	expect_ssh("Disconnected from 192.0.2.10 port 30761 [preauth]", "192.0.2.10", 10);
	/* After authentication: ordinary logouts. */
	expect_ssh_none("Connection closed by 192.0.2.5");
	expect_ssh_none("Disconnected from 1.2.3.4 port 60058");
	expect_ssh_none("Disconnected from user root 1.2.3.4 port 60058");
	expect_ssh_none("Received disconnect from 1.2.3.4 port 60058:11: disconnected by user");
	expect_ssh_none("Received disconnect from 1.2.3.4: 11: Bye Bye [preauth]");
	expect_ssh_none("Connection closed by 1.2.3.4 port 5 something [preauth]");
}

static void
test_probes(void **state)
{
	(void)state;
	expect_ssh("Did not receive identification string from 192.0.2.1", "192.0.2.1", 10);
	expect_ssh("Did not receive identification string from 192.0.2.2 port 35836", "192.0.2.2",
	           10);
	expect_ssh("Bad protocol version identification 'dummy string' from 192.0.2.3 port 31778",
	           "192.0.2.3", 10);
	expect_ssh("Bad protocol version identification XYZ from 2001:db8::3", "2001:db8::3", 10);
	expect_ssh("banner exchange: Connection from 192.0.2.4 port 65403: invalid format",
	           "192.0.2.4", 10);
	expect_ssh("banner exchange: Connection from 192.0.2.5 port 1: could not read protocol "
	           "version",
	           "192.0.2.5", 10);
	expect_ssh("Unable to negotiate with 192.0.2.6 port 55419: no matching cipher found. Their "
	           "offer: aes256-cbc [preauth]",
	           "192.0.2.6", 10);
	expect_ssh("fatal: Unable to negotiate with 192.0.2.7 port 2222: no matching key exchange "
	           "method found.",
	           "192.0.2.7", 10);
	expect_ssh("ROOT LOGIN REFUSED FROM 192.0.2.8", "192.0.2.8", 10);
	expect_ssh("ROOT LOGIN REFUSED FROM 192.0.2.9 port 12345 [preauth]", "192.0.2.9", 10);
	expect_ssh("ROOT LOGIN REFUSED FROM ::ffff:192.0.2.10", "192.0.2.10", 10);
	expect_ssh("refused connect from _U2FsdGVk_@::ffff:192.0.2.11 (::ffff:192.0.2.11)",
	           "192.0.2.11", 10);
	expect_ssh("reverse mapping checking getaddrinfo for a.example [192.0.2.12] failed - "
	           "POSSIBLE BREAK-IN ATTEMPT!",
	           "192.0.2.12", 2);
	expect_ssh_none("Address 1.2.3.4 maps to a.example, but this does not map back to the "
	                "address - POSSIBLE BREAK-IN ATTEMPT!");
	expect_ssh("Timeout before authentication for connection from 192.0.2.13 to 192.168.0.2, "
	           "pid = 35557",
	           "192.0.2.13", 1);
	expect_ssh("fatal: Timeout before authentication for 192.0.2.14 port 55555", "192.0.2.14",
	           1);
	expect_ssh("drop connection #0 from [192.0.2.15]:48602 on [1.1.1.1]:22 penalty: exceeded "
	           "LoginGraceTime",
	           "192.0.2.15", 1);
	expect_ssh("drop connection #3 from [2001:db8::f]:48602 on [2001:db8::1]:22 penalty: "
	           "failed authentication",
	           "2001:db8::f", 1);
	expect_ssh_none("error: kex_exchange_identification: Connection closed by remote host");
	expect_ssh_none("Connection from 192.0.2.10 port 62004 on 192.0.2.10 port 22");
}

static void
test_pam(void **state)
{
	(void)state;
	expect_ssh("error: PAM: Authentication failure for x from 192.0.2.1", "192.0.2.1", 10);
	expect_ssh("error: PAM: authentication error for james from 192.0.2.2 via 192.168.1.201",
	           "192.0.2.2", 10);
	expect_ssh("error: PAM: User not known to the underlying authentication module for illegal "
	           "user k from 192.0.2.3 ",
	           "192.0.2.3", 10);
	expect_ssh("error: PAM: unknown user for illegal user mario from 2001:db8::4%vbr1",
	           "2001:db8::4", 10);
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser= rhost=192.0.2.5  user=root",
	           "192.0.2.5", 2);
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser= rhost=192.0.2.15 user=workshop",
	           "192.0.2.15", 2);
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser=rda rhost=192.0.2.6 [preauth]",
	           "192.0.2.6", 2);
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser= rhost=2001:db8::7",
	           "2001:db8::7", 2);
	expect_ssh_none("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
	                "tty=ssh ruser= rhost=");
	expect_ssh_none("pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)");
	expect_ssh_none("error: PAM: Authentication failure for x from 192.030.0.6");
}

static void
test_logins(void **state)
{
	(void)state;
	expect_event("Dec  1 06:25:27 server sshd[19956]: Accepted publickey for User from 1.2.3.4 "
	             "port 21563 ssh2: RSA SHA256:abc",
	             0, GUARD_EV_LOGIN, GUARD_SVC_SSH, "1.2.3.4", 0);
	expect_event("Dec  1 06:25:27 server sshd-session[1]: Accepted password for root from "
	             "2001:db8::1 port 1 ssh2",
	             0, GUARD_EV_LOGIN, GUARD_SVC_SSH, "2001:db8::1", 0);
	expect_event("Dec  1 06:25:27 server sshd[1]: Accepted keyboard-interactive/pam for a from "
	             "::ffff:192.0.2.9 port 1 ssh2",
	             0, GUARD_EV_LOGIN, GUARD_SVC_SSH, "192.0.2.9", 0);
}

static void
test_dropbear(void **state)
{
	(void)state;
	static const struct {
		const char *line, *addr;
		unsigned danger;
	} cases[] = {
	    {"Mar 24 15:25:51 b dropbear[4092]: bad password attempt for 'root' from "
	     "198.51.100.87:5543",
	     "198.51.100.87", 10},
	    {"Jul 27 01:04:12 t dropbear[1335]: Bad password attempt for 'root' from 1.2.3.4:60588",
	     "1.2.3.4", 10},
	    {"x dropbear[1]: Bad PAM password attempt for 'u' from ::ffff:1.2.3.4:55992", "1.2.3.4",
	     10},
	    {"Feb 11 15:23:17 dropbear[1252]: login attempt for nonexistent user from "
	     "::ffff:198.51.100.215:60495",
	     "198.51.100.215", 10},
	    {"h dropbear[1]: Login attempt for nonexistent user from [2001:db8::1]:22",
	     "2001:db8::1", 10},
	    {"h dropbear[1]: Login attempt for nonexistent user from 2001:db8::2:22", "2001:db8::2",
	     10},
	    {"h dropbear[1773]: Exit before auth from <::ffff:10.42.42.135:46154>: (user 'root', 0 "
	     "fails): Exited normally",
	     "10.42.42.135", 2},
	    {"h dropbear[1335]: Exit before auth (user 'root', 10 fails): Max auth tries reached - "
	     "user 'root' from 1.2.3.4:60588",
	     "1.2.3.4", 2},
	    {"Jul 10 23:53:52 t dropbear[825]: [825] Jul 10 23:53:52 Bad password attempt for "
	     "'root' "
	     "from 1.2.3.4:52289",
	     "1.2.3.4", 10},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_event(cases[i].line, 0, GUARD_EV_ATTACK, GUARD_SVC_DROPBEAR, cases[i].addr,
		             cases[i].danger);
	/* The quoted user is the client's text. */
	expect_event("h dropbear[1]: Bad password attempt for 'x' from 6.6.6.6:1' from 1.2.3.4:5",
	             0, GUARD_EV_ATTACK, GUARD_SVC_DROPBEAR, "1.2.3.4", 10);
	expect_none("h dropbear[1]: Exit before auth (user 'root', 0 fails): Exited normally");
	expect_none("h dropbear[1]: Child connection from 1.2.3.4:5");
}

static void
test_postfix_dovecot_flags(void **state)
{
	(void)state;
	const char *sasl =
	    "Oct 19 19:56:07 lb postfix/smtpd[2309]: warning: unknown[199.19.110.207]: "
	    "SASL LOGIN authentication failed: UGFzc3dvcmQ6";
	expect_none_flags(sasl, 0);
	expect_event(sasl, GUARD_MATCH_POSTFIX, GUARD_EV_ATTACK, GUARD_SVC_POSTFIX,
	             "199.19.110.207", 10);
	expect_event("2022-04-14T00:36:03.150Z m postfix/smtps/smtpd[30543]: warning: "
	             "a.example[2001:db8::a]:48123: SASL PLAIN authentication failed: x",
	             GUARD_MATCH_POSTFIX, GUARD_EV_ATTACK, GUARD_SVC_POSTFIX, "2001:db8::a", 10);
	expect_none("Oct 19 19:56:07 lb postfix/smtpd[2309]: warning: unknown[1.2.3.4]: "
	            "lost connection after AUTH");
	const char *dove =
	    "Oct 19 19:56:07 mx dovecot[1]: imap-login: Aborted login (auth failed, 6 "
	    "attempts): user=<x>, rip=6.6.6.0, lip=127.0.0.1";
	expect_none_flags(dove, GUARD_MATCH_POSTFIX);
	expect_event(dove, GUARD_MATCH_DOVECOT, GUARD_EV_ATTACK, GUARD_SVC_DOVECOT, "6.6.6.0", 10);
	/* user=<...> is the client's: only dovecot's own last rip= counts. */
	expect_event("h dovecot[1]: submission-login: Disconnected: Aborted login by logging out "
	             "(auth failed, 1 attempts in 2 secs): user=<a, rip=6.6.6.6, >, method=LOGIN, "
	             "rip=1.2.3.4, lip=1.1.1.1, TLS, session=<cIMEtT>",
	             GUARD_MATCH_DOVECOT, GUARD_EV_ATTACK, GUARD_SVC_DOVECOT, "1.2.3.4", 10);
	expect_event("h dovecot[1]: pam_unix(dovecot:auth): authentication failure; logname= uid=0 "
	             "euid=0 tty=dovecot ruser=a@b.c rhost=80.94.95.229",
	             GUARD_MATCH_DOVECOT, GUARD_EV_ATTACK, GUARD_SVC_DOVECOT, "80.94.95.229", 10);
	expect_none("h dovecot[1]: imap-login: Login: user=<a>, method=PLAIN, rip=1.2.3.4, "
	            "lip=1.1.1.1");
}

/*
 * The DenyHosts log-injection CVEs, re-expressed as our own vectors (10.0.0.66 is the victim the
 * attacker wants banned, 203.0.113.x the attacker's real address):
 * - CVE-2006-6301: a login name carrying "from VICTIM" (ssh -l 'x from VICTIM').
 * - CVE-2007-5715: "User ... from VICTIM not allowed because" matched anywhere in a line, fed
 *   through the client's banner in "Bad protocol version identification '...'".
 * - CVE-2013-6890: a login name that is itself a whole "Invalid user root from VICTIM" message,
 *   which also lands in input_userauth_request's line (that one has no address of its own).
 */
static void
test_injection_denyhosts_cves(void **state)
{
	(void)state;
	/* CVE-2006-6301 */
	expect_ssh("Invalid user x from 10.0.0.66 from 203.0.113.5", "203.0.113.5", 10);
	expect_ssh("Invalid user x from 10.0.0.66 port 22 from 203.0.113.5 port 4000",
	           "203.0.113.5", 10);
	expect_ssh("Failed password for invalid user x from 10.0.0.66 from 203.0.113.6 port 4001 "
	           "ssh2",
	           "203.0.113.6", 10);
	expect_ssh(
	    "Failed password for invalid user x from 10.0.0.66 port 22 ssh2 from 203.0.113.6 "
	    "port 4001 ssh2",
	    "203.0.113.6", 10);
	expect_ssh("Connection closed by invalid user x from 10.0.0.66 203.0.113.6 port 4001 "
	           "[preauth]",
	           "203.0.113.6", 2);
	/* CVE-2007-5715 */
	expect_ssh("Bad protocol version identification 'User root from 10.0.0.66 not allowed "
	           "because none' from 203.0.113.7 port 4002",
	           "203.0.113.7", 10);
	expect_ssh("Bad protocol version identification 'Invalid user root from 10.0.0.66' from "
	           "203.0.113.7",
	           "203.0.113.7", 10);
	expect_ssh("User x from 10.0.0.66 not allowed because y from 203.0.113.8 not allowed "
	           "because not listed in AllowUsers",
	           "203.0.113.8", 10);
	/* CVE-2013-6890 */
	expect_ssh("Invalid user Invalid user root from 10.0.0.66 from 203.0.113.9", "203.0.113.9",
	           10);
	expect_ssh_none("input_userauth_request: invalid user Invalid user root from 10.0.0.66 "
	                "[preauth]");
	expect_ssh("Connection closed by 203.0.113.9 [preauth]", "203.0.113.9", 2);
	expect_ssh("Failed password for invalid user Invalid user root from 10.0.0.66 from "
	           "203.0.113.9 port 4003 ssh2",
	           "203.0.113.9", 10);
	/* The same idea against PAM's line: "rhost=VICTIM" inside ruser. */
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser=x rhost=10.0.0.66 rhost=203.0.113.10",
	           "203.0.113.10", 2);
	expect_ssh("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
	           "ruser=x rhost=10.0.0.66  user=root rhost=203.0.113.11  user=root",
	           "203.0.113.11", 2);
	expect_ssh("Failed password for x rhost=10.0.0.66 from 203.0.113.12 port 4 ssh2",
	           "203.0.113.12", 10);
}

static void
test_injection_more(void **state)
{
	(void)state;
	struct guard_event ev;
	/* fail2ban's vectors. */
	expect_ssh("Failed password for invalid user from 10.10.1.1 from 127.0.0.1 port 58946 ssh2",
	           "127.0.0.1", 10);
	expect_ssh("Failed password for user from 127.0.0.1 port 20000 ssh1: ruser from 1.2.3.4",
	           "127.0.0.1", 10);
	expect_ssh("Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 "
	           "port 46039 [preauth]",
	           "192.0.2.11", 2);
	expect_ssh("Bad protocol version identification 'dummy string' from 192.0.2.1' from "
	           "69.61.56.115 port 31778",
	           "69.61.56.115", 10);
	/* A user name ending in "...ssh2:" is ambiguous with auth info: no event, never a guess. */
	expect_ssh_none("Failed password for invalid user t from 10.10.1.2 port 5 ssh2: from "
	                "127.0.0.1 port 58946 ssh2");
	/* The "Change of username" reason repeats the first user: the real split is the one that
	 * matches. */
	expect_ssh_none(
	    "Disconnecting invalid user a 6.6.6.6 port 1: Change of username or service "
	    "not allowed: (a,x 1.2.3.4 port 2: Change of username or service not "
	    "allowed: (a 6.6.6.6 port 1: Change of username or service not allowed: "
	    "(a,x,s) -> (b,s) [preauth]");
	expect_ssh("Disconnecting invalid user a 6.6.6.6 port 1 1.2.3.4 port 2: Change of username "
	           "or service not allowed: (a 6.6.6.6 port 1,s) -> (b,s) [preauth]",
	           "1.2.3.4", 10);
	expect_ssh("Connection closed by invalid user 6.6.6.6 [preauth] 192.0.2.1 port 1 [preauth]",
	           "192.0.2.1", 2);
	expect_ssh("Did not receive identification string from 192.0.2.2 port 35836", "192.0.2.2",
	           10);
	expect_ssh_none("Did not receive identification string from 192.0.2.2 from 6.6.6.6");
	expect_ssh("reverse mapping checking getaddrinfo for x [6.6.6.6] failed - POSSIBLE "
	           "BREAK-IN ATTEMPT! [192.0.2.3] failed - POSSIBLE BREAK-IN ATTEMPT!",
	           "192.0.2.3", 2);
	/* Only sshd's own lines: another program cannot speak for it. */
	expect_none("Dec  1 06:25:27 host cron[1]: Invalid user a from 1.2.3.4 port 5");
	expect_none(
	    "Dec  1 06:25:27 host logger: Failed password for root from 1.2.3.4 port 5 ssh2");
	expect_none("Dec  1 06:25:27 host sshdx[1]: Failed password for root from 1.2.3.4 port 5");
	expect_none("Dec  1 06:25:27 host su[1]: pam_unix(su:auth): authentication failure; "
	            "logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4");
	/* The message of a non-sshd line starting with "sshd[1]: " is still that program's. */
	assert_int_equal(
	    match("Dec  1 06:25:27 host CRON[1]: sshd[1]: Invalid user a from 1.2.3.4", ALL, &ev),
	    0);
}

static void
test_addresses(void **state)
{
	(void)state;
	expect_ssh("Invalid user inexu from 2001:db8::a11:beef:7ac0%abcdefgh1234567",
	           "2001:db8::a11:beef:7ac0", 10);
	expect_ssh("Failed XYZ for XYZ from 2001:db8::a11:beef:7ac0%enp3s0 port 14423 ssh2",
	           "2001:db8::a11:beef:7ac0", 10);
	expect_ssh("Invalid user a from ::ffff:198.51.100.1 port 1", "198.51.100.1", 10);
	expect_ssh("Invalid user a from fe80::1%eth0", "fe80::1", 10);
	expect_ssh("Invalid user a from ::ffff:c000:202 port 1", "192.0.2.2", 10);
	expect_ssh("Invalid user a from 0.0.0.0", "0.0.0.0", 10);
	static const char *const bad[] = {
	    "192.030.0.6",
	    "256.1.1.1",
	    "1.2.3",
	    "1.2.3.4.5",
	    "1..2.3",
	    "01.2.3.4",
	    "1.2.3.4%x",
	    "2001:db8::g",
	    "::ffff:1.2.3.04",
	    "fe80::1%",
	    "1:2:3:4:5:6:7:8:9",
	    "1.2.3.4a",
	    "example.com",
	    "",
	    "1.2.3.-4",
	    "1.2.3.1000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[256];
		snprintf(msg, sizeof(msg), "Invalid user a from %s port 1", bad[i]);
		expect_ssh_none(msg);
		snprintf(msg, sizeof(msg), "ROOT LOGIN REFUSED FROM %s", bad[i]);
		expect_ssh_none(msg);
	}
}

static void
test_split(void **state)
{
	(void)state;
	struct guard_line l;
	static const struct {
		const char *line, *ident, *msg;
	} cases[] = {
	    {"Feb 25 14:34:10 belka sshd[31602]: Failed x", "sshd", "Failed x"},
	    {"Feb 7 16:01:07 linux-m899 sshd[5106]: User root", "sshd", "User root"},
	    {"Nov 23 21:50:19 sshd[8148]: Disconnecting", "sshd", "Disconnecting"},
	    {"Mar  3 00:17:22 [sshd]: User root", "sshd", "User root"},
	    {"Jun 25 23:53:34 [sshd] User root", "sshd", "User root"},
	    {"srv sshd[13709]: error: PAM: x", "sshd", "error: PAM: x"},
	    {"2015-04-16T18:02:50.321974+00:00 host sshd[2716]: pam_unix(sshd:auth): x", "sshd",
	     "pam_unix(sshd:auth): x"},
	    {"2019-10-15 08:08:52 mx dovecot: imap-login: x", "dovecot", "imap-login: x"},
	    {"<38>Feb 25 14:34:10 belka sshd[31602]: m", "sshd", "m"},
	    {"<38>1 2019-07-08T17:40:16.954167-04:00 h.example.com sshd 57915 - - Failed x", "sshd",
	     "Failed x"},
	    {"<38>1 2019-07-08T17:40:17.9-04:00 h sshd 5 - [a b=\"1\"][x@1 t=\"[br]ack\\\"\"] "
	     "Failed y",
	     "sshd", "Failed y"},
	    {"Oct 19 19:56:07 lb postfix/submission/smtpd[20201]: warning: x",
	     "postfix/submission/smtpd", "warning: x"},
	    {"Jul  3 14:59:17 host sshd-session[1571]: m\n", "sshd-session", "m"},
	    {"Jul  3 14:59:17 host sshd-session[1571]: m\r\n", "sshd-session", "m"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (guard_match_split(cases[i].line, strlen(cases[i].line), &l) != 0)
			fail_msg("no split: %s", cases[i].line);
		if (l.ident_len != strlen(cases[i].ident) ||
		    memcmp(l.ident, cases[i].ident, l.ident_len) != 0 ||
		    l.msg_len != strlen(cases[i].msg) ||
		    memcmp(l.msg, cases[i].msg, l.msg_len) != 0)
			fail_msg("%s: ident '%.*s' msg '%.*s'", cases[i].line, (int)l.ident_len,
			         l.ident, (int)l.msg_len, l.msg);
	}
	static const char *const bad[] = {"",        "Invalid user a from 1.2.3.4", "<38",
	                                  "<x>a b:", "Feb 25 14:34:10 belka",       "a b c"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (guard_match_split(bad[i], strlen(bad[i]), &l) == 0)
			fail_msg("split: %s", bad[i]);
}

static void
test_long_truncated_nul(void **state)
{
	(void)state;
	struct guard_event ev;
	/* A user name as long as sshd lets through, before the real address. */
	static char line[4096];
	int n = snprintf(line, sizeof(line), "Dec  1 06:25:27 h sshd[1]: Invalid user ");
	for (int i = 0; i < 60; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "from 6.6.6.%d ", i % 250);
	snprintf(line + n, sizeof(line) - (size_t)n, "from 192.0.2.77 port 1");
	assert_true(strlen(strstr(line, "Invalid")) < 1000);
	expect_event(line, 0, GUARD_EV_ATTACK, GUARD_SVC_SSH, "192.0.2.77", 10);
	/* sshd cuts at 1023 bytes: a message that long may end inside the address. */
	static char cut[2048];
	n = snprintf(cut, sizeof(cut), "Dec  1 06:25:27 h sshd[1]: Invalid user ");
	while (n < 1023 + 27 - (int)strlen(" from 192.0.2.7"))
		cut[n++] = 'x';
	snprintf(cut + n, sizeof(cut) - (size_t)n, " from 192.0.2.7");
	assert_int_equal(strlen(strstr(cut, "Invalid")), 1023);
	expect_none(cut);
	/* One byte shorter, it cannot have been cut. */
	char *x = strchr(cut, 'x');
	memmove(x, x + 1, strlen(x + 1) + 1);
	expect_event(cut, 0, GUARD_EV_ATTACK, GUARD_SVC_SSH, "192.0.2.7", 10);

	/* Every truncation of real lines: never an event for a line cut inside the address. */
	static const char *const full[] = {
	    "Dec  1 06:25:27 h sshd[1]: Failed password for root from 192.0.2.123 port 56502 ssh2",
	    "Dec  1 06:25:27 h sshd[1]: Connection closed by 192.0.2.123 port 22 [preauth]",
	    "Dec  1 06:25:27 h dropbear[1]: Bad password attempt for 'root' from 192.0.2.123:5543",
	};
	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
		size_t len = strlen(full[i]);
		const char *addr = strstr(full[i], "192.0.2.123");
		for (size_t cut_len = 0; cut_len < len; cut_len++) {
			int r = guard_match_text(full[i], cut_len, 0, &ev);
			assert_true(r == 0 || r == 1);
			if (r == 1) {
				char got[NET_ADDR_STRLEN];
				net_addr_format(&ev.addr, false, got, sizeof(got));
				/* Cut before the address's end: at most the cut address (sshd's own
				 * cut is handled above), never text from elsewhere in the line. */
				if (full[i] + cut_len >= addr + 11)
					assert_string_equal(got, "192.0.2.123");
				else
					assert_memory_equal(got, "192.0.2.123", strlen(got));
			}
		}
	}

	/* NUL bytes are data: they neither end the line nor become part of an address. */
	static const char nul1[] = "Dec  1 06:25:27 h sshd[1]: Invalid user a\0b from 192.0.2.5";
	expect_event("Dec  1 06:25:27 h sshd[1]: Invalid user a from 192.0.2.5", 0, GUARD_EV_ATTACK,
	             GUARD_SVC_SSH, "192.0.2.5", 10);
	assert_int_equal(guard_match_text(nul1, sizeof(nul1) - 1, 0, &ev), 1);
	static const char nul2[] = "Dec  1 06:25:27 h sshd[1]: Invalid user a from 192.0.2.5\0";
	assert_int_equal(guard_match_text(nul2, sizeof(nul2) - 1, 0, &ev), 0);
	static const char nul3[] = "Dec  1 06:25:27 h sshd[1]: Invalid user a from 192.0\0.2.5";
	assert_int_equal(guard_match_text(nul3, sizeof(nul3) - 1, 0, &ev), 0);
	static const char nul4[] = "Dec  1 06:25:27 h ss\0hd[1]: Invalid user a from 192.0.2.5";
	assert_int_equal(guard_match_text(nul4, sizeof(nul4) - 1, 0, &ev), 0);
}

static void
test_unrelated(void **state)
{
	(void)state;
	static const char *const lines[] = {
	    "Dec  1 06:25:01 h CRON[1]: pam_unix(cron:session): session opened for user root",
	    "Dec  1 06:25:01 h systemd[1]: Started Session 5 of User root.",
	    "Dec  1 06:25:01 h kernel: [  1.0] eth0: link up",
	    "Dec  1 06:25:01 h sshd[1]: Server listening on 0.0.0.0 port 22.",
	    "Dec  1 06:25:01 h sshd[1]: pam_unix(sshd:session): session closed for user root",
	    "Dec  1 06:25:01 h sshd[1]: Received signal 15; terminating.",
	    "Dec  1 06:25:01 h sshd[1]: Connection from 1.2.3.4 port 5 on 10.0.0.1 port 22",
	    ("Dec  1 06:25:01 h sshd[1]: Starting session: shell on pts/0 for root from 1.2.3.4 "
	     "port 5 id 0"),
	    "Dec  1 06:25:01 h sshd[1]:",
	    "Dec  1 06:25:01 h sshd[1]: ",
	    "",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		expect_none(lines[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failed_auth),
	    cmocka_unit_test(test_failed_publickey_valid_user_ignored),
	    cmocka_unit_test(test_invalid_user_and_not_allowed),
	    cmocka_unit_test(test_max_auth_and_disconnects),
	    cmocka_unit_test(test_preauth_closes),
	    cmocka_unit_test(test_probes),
	    cmocka_unit_test(test_pam),
	    cmocka_unit_test(test_logins),
	    cmocka_unit_test(test_dropbear),
	    cmocka_unit_test(test_postfix_dovecot_flags),
	    cmocka_unit_test(test_injection_denyhosts_cves),
	    cmocka_unit_test(test_injection_more),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_long_truncated_nul),
	    cmocka_unit_test(test_unrelated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
