/*
 * The guard matcher: one log line in, at most one event out.
 *
 * Every scanner reads the address from the place the daemon itself writes it, never from the
 * first "from" it meets: user names, client banners, PAM's ruser and Dropbear's quoted user are
 * attacker text and may carry "from 1.2.3.4", "rhost=1.2.3.4" or "[1.2.3.4]". Where the
 * attacker text precedes the address, the scanners read from the end of the message backwards;
 * where the address sits at a fixed offset, they read it there and check what follows.
 * Nothing here allocates, and the message is bounded by its length (NUL bytes are data).
 */
#include "guard/guard_match.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

/* A message under scan: [p, e). */
struct span {
	const char *p;
	const char *e;
};

#define LIT(s) (s), (sizeof(s) - 1)

static bool
has_prefix(const struct span *s, const char *lit, size_t n)
{
	return (size_t)(s->e - s->p) >= n && memcmp(s->p, lit, n) == 0;
}

/* Consumes lit when the span starts with it. */
static bool
eat(struct span *s, const char *lit, size_t n)
{
	if (!has_prefix(s, lit, n))
		return false;
	s->p += n;
	return true;
}

static bool
has_suffix(const struct span *s, const char *lit, size_t n)
{
	return (size_t)(s->e - s->p) >= n && memcmp(s->e - n, lit, n) == 0;
}

static bool
eat_suffix(struct span *s, const char *lit, size_t n)
{
	if (!has_suffix(s, lit, n))
		return false;
	s->e -= n;
	return true;
}

static void
trim_right(struct span *s)
{
	while (s->e > s->p && (s->e[-1] == ' ' || s->e[-1] == '\t'))
		s->e--;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Consumes 1..5 digits; false when there are none. */
static bool
eat_digits(struct span *s)
{
	const char *start = s->p;
	while (s->p < s->e && is_digit(*s->p) && s->p - start < 6)
		s->p++;
	return s->p > start && s->p - start <= 5;
}

static const char *
find(const char *p, const char *e, const char *lit, size_t n)
{
	if (p >= e)
		return NULL;
	return memmem(p, (size_t)(e - p), lit, n);
}

static const char *
find_last(const char *p, const char *e, const char *lit, size_t n)
{
	const char *last = NULL;
	for (const char *q = find(p, e, lit, n); q; q = find(q + 1, e, lit, n))
		last = q;
	return last;
}

static const char *
find_char_last(const char *p, const char *e, char c)
{
	return p < e ? memrchr(p, c, (size_t)(e - p)) : NULL;
}

/* Strict dotted quad: no leading zeros ("192.030.0.6" is octal to inet_aton), 0..255. */
static bool
parse_v4(const char *p, size_t n, uint8_t out[4])
{
	const char *e = p + n;
	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;
		const char *start = p;
		while (p < e && is_digit(*p) && digits < 4) {
			v = v * 10 + (unsigned)(*p - '0');
			digits++;
			p++;
		}
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && *start == '0'))
			return false;
		out[i] = (uint8_t)v;
		if (i < 3) {
			if (p >= e || *p != '.')
				return false;
			p++;
		}
	}
	return p == e;
}

/* An address token exactly [p, p+n): IPv4, or IPv6 with an optional zone id (dropped). */
static bool
parse_ip(const char *p, size_t n, struct net_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (n == 0)
		return false;
	if (!memchr(p, ':', n)) {
		if (!parse_v4(p, n, out->u.bytes))
			return false;
		out->family = AF_INET;
		return true;
	}
	const char *zone = memchr(p, '%', n);
	if (zone) {
		if (zone + 1 == p + n)
			return false;
		n = (size_t)(zone - p);
	}
	char buf[INET6_ADDRSTRLEN];
	if (n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
		      c == '.'))
			return false;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, &out->u.v6) != 1)
		return false;
	out->family = AF_INET6;
	net_addr_normalize(out);
	if (out->family == AF_INET && memchr(p, '.', n)) {
		/* The dotted quad of a mapped address, as strictly as a plain one. */
		const char *dot = memrchr(p, ':', n);
		if (!parse_v4(dot + 1, (size_t)(p + n - dot - 1), out->u.bytes))
			return false;
	}
	return true;
}

/* The token starting at p, up to a space or the end. */
static const char *
token_end(const char *p, const char *e)
{
	const char *sp = p < e ? memchr(p, ' ', (size_t)(e - p)) : NULL;
	return sp ? sp : e;
}

/* " port N" (optional) then " ssh1"/" ssh2" (optional). */
static bool
eat_port_proto(struct span *s)
{
	bool port = false;
	if (eat(s, LIT(" port "))) {
		if (!eat_digits(s))
			return false;
		port = true;
	}
	if (has_prefix(s, LIT(" ssh")) && s->e - s->p >= 5 && is_digit(s->p[4]))
		s->p += 5;
	return port;
}

enum {
	TAIL_VIA = 1u << 0,  /* "PAM: ... from ADDR via LOCALADDR" (macOS) */
	TAIL_INFO = 1u << 1, /* sshd may append ": AUTH-INFO" after "ssh2" */
};

/*
 * A candidate " from " at s->p (after the word): ADDR, optional port and protocol, then the end
 * of the message or " [preauth]"; with TAIL_INFO also ": INFO", with TAIL_VIA " via LOCAL".
 */
static bool
from_candidate(struct span s, unsigned how, struct net_addr *addr, bool *has_port)
{
	const char *te = token_end(s.p, s.e);
	if (!parse_ip(s.p, (size_t)(te - s.p), addr))
		return false;
	s.p = te;
	*has_port = eat_port_proto(&s);
	trim_right(&s);
	if (s.p == s.e)
		return true;
	if ((how & TAIL_INFO) && (eat(&s, LIT(": ")) || (*s.p == ':' && s.p + 1 == s.e)))
		return true;
	if ((how & TAIL_VIA) && has_prefix(&s, LIT(" via ")))
		return true;
	return eat(&s, LIT(" [preauth]")) && s.p == s.e;
}

/*
 * sshd's "... for USER from ADDR port N ssh2[: INFO]". USER precedes the address and is attacker
 * text, so without TAIL_INFO the last well-formed candidate is sshd's own. With TAIL_INFO a user
 * name ending in "from X port N ssh2:" makes two well-formed candidates that no reader can tell
 * apart from an INFO ending in "from Y port N ssh2": then nothing is reported rather than
 * perhaps the injected address (the same source's "Invalid user", "maximum authentication
 * attempts" and preauth lines still count). One with a port beats one without: only sshd
 * versions old enough to omit the port wrote free text ("ruser ... from X") after it.
 */
static bool
from_tail(struct span s, unsigned how, struct net_addr *out)
{
	unsigned n_port = 0, n_bare = 0;
	struct net_addr with_port, bare;
	for (const char *q = find(s.p, s.e, LIT(" from ")); q;
	     q = find(q + 1, s.e, LIT(" from "))) {
		struct net_addr a;
		bool port;
		struct span c = {q + 6, s.e};
		if (!from_candidate(c, how, &a, &port))
			continue;
		if (port) {
			with_port = a;
			n_port++;
		} else {
			bare = a;
			n_bare++;
		}
	}
	unsigned n = n_port ? n_port : n_bare;
	if (n == 0 || ((how & TAIL_INFO) && n > 1))
		return false;
	*out = n_port ? with_port : bare;
	return true;
}

/* "[invalid user U |authenticating user U ]ADDR[ port N]" ending the span exactly. */
static bool
user_addr_tail(struct span s, struct net_addr *out)
{
	struct span t = s;
	const char *sp = find_char_last(t.p, t.e, ' ');
	const char *tok = sp ? sp + 1 : t.p;
	if (sp && sp - t.p >= 5 && memcmp(sp - 5, " port", 5) == 0) {
		struct span d = {tok, t.e};
		if (!eat_digits(&d) || d.p != d.e)
			return false;
		t.e = sp - 5;
		sp = find_char_last(t.p, t.e, ' ');
		tok = sp ? sp + 1 : t.p;
	}
	if (!parse_ip(tok, (size_t)(t.e - tok), out))
		return false;
	struct span pre = {s.p, tok};
	return pre.p == pre.e || eat(&pre, LIT("invalid user ")) ||
	       eat(&pre, LIT("authenticating user "));
}

/* "ADDR" alone or "ADDR port N", starting at s.p, then the rest must satisfy the caller. */
static bool
addr_token(struct span *s, struct net_addr *out)
{
	const char *te = token_end(s->p, s->e);
	if (!parse_ip(s->p, (size_t)(te - s->p), out))
		return false;
	s->p = te;
	return true;
}

/* Fixed-position "ADDR[ port N][ [preauth]]" that ends the message. */
static bool
addr_port_end(struct span s, struct net_addr *out)
{
	if (!addr_token(&s, out))
		return false;
	eat_port_proto(&s);
	eat(&s, LIT(" [preauth]"));
	trim_right(&s);
	return s.p == s.e;
}

struct verdict {
	enum guard_event_kind kind;
	unsigned danger;
	const char *what;
};

static const struct verdict V_INVALID_USER = {GUARD_EV_ATTACK, 10, "invalid-user"};
static const struct verdict V_FAILED = {GUARD_EV_ATTACK, 10, "failed-auth"};
static const struct verdict V_LOGIN = {GUARD_EV_LOGIN, 0, "login"};

static int
emit(struct guard_event *ev, enum guard_service svc, const struct net_addr *a,
     const struct verdict *v)
{
	ev->kind = v->kind;
	ev->service = svc;
	ev->addr = *a;
	ev->addr.port = 0;
	ev->danger = v->danger;
	ev->what = v->what;
	return 1;
}

static int
attack(struct guard_event *ev, enum guard_service svc, const struct net_addr *a, unsigned danger,
       const char *what)
{
	struct verdict v = {GUARD_EV_ATTACK, danger, what};
	return emit(ev, svc, a, &v);
}

/* "Failed METHOD for [invalid user ]USER from ADDR ..." */
static int
ssh_failed(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	const char *me = token_end(s.p, s.e);
	struct span method = {s.p, me};
	struct span rest = {me, s.e};
	if (!eat(&rest, LIT(" for ")))
		return 0;
	/*
	 * A valid user whose agent offers several keys logs one "Failed publickey" per key before
	 * "Accepted"; counting those would ban the admin (fail2ban gh-1263). Key guessing ends in
	 * "maximum authentication attempts exceeded", which counts.
	 */
	if (method.e - method.p == 9 && memcmp(method.p, "publickey", 9) == 0 &&
	    !has_prefix(&rest, LIT("invalid user ")))
		return 0;
	if (!from_tail((struct span){rest.p - 1, rest.e}, TAIL_INFO, &a))
		return 0;
	return emit(ev, GUARD_SVC_SSH, &a, &V_FAILED);
}

static int
ssh_accepted(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	const char *me = token_end(s.p, s.e);
	struct span rest = {me, s.e};
	if (!eat(&rest, LIT(" for ")) ||
	    !from_tail((struct span){rest.p - 1, rest.e}, TAIL_INFO, &a))
		return 0;
	return emit(ev, GUARD_SVC_SSH, &a, &V_LOGIN);
}

/* "User U from ADDR not allowed because REASON": the reason is sshd's own text. */
static int
ssh_not_allowed(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	const char *na = find_last(s.p, s.e, LIT(" not allowed because "));
	if (!na)
		return 0;
	const char *sp = find_char_last(s.p, na, ' ');
	if (!sp || sp - s.p < 5 || memcmp(sp - 5, " from", 5) != 0)
		return 0;
	if (!parse_ip(sp + 1, (size_t)(na - sp - 1), &a))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, 10, "not-allowed");
}

/* "Connection closed by ...", "Connection reset by ...", "Disconnected from ...": preauth only */
static int
ssh_preauth_close(struct span s, unsigned danger, const char *what, struct guard_event *ev)
{
	struct net_addr a;
	trim_right(&s);
	if (!eat_suffix(&s, LIT(" [preauth]")) || !user_addr_tail(s, &a))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, danger, what);
}

/*
 * "Disconnecting (invalid|authenticating) user U ADDR port N: Change of username or service not
 * allowed: (U,svc) -> (U2,svc2)". U and U2 are attacker text on both sides of the address, so
 * only a line with the reason text exactly once is read (an injected copy in U appears twice,
 * since sshd repeats U); the address is then the token before " port N". ": Too many
 * authentication failures" is not counted: sshd logged "maximum authentication attempts
 * exceeded" for the same connection just before.
 */
static int
ssh_disconnecting(struct span s, struct guard_event *ev)
{
	static const char reason[] = ": Change of username or service not allowed: (";
	struct net_addr a;
	const char *c = find(s.p, s.e, LIT(reason));
	if (!c || find(c + 1, s.e, LIT(reason)))
		return 0;
	const char *sp = find_char_last(s.p, c, ' ');
	if (!sp || sp - s.p < 5 || memcmp(sp - 5, " port", 5) != 0)
		return 0;
	struct span d = {sp + 1, c};
	if (!eat_digits(&d) || d.p != d.e)
		return 0;
	const char *ae = sp - 5;
	const char *as = find_char_last(s.p, ae, ' ');
	as = as ? as + 1 : s.p;
	if (!parse_ip(as, (size_t)(ae - as), &a))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, 10, "change-of-user");
}

/* "pam_unix(SVC:auth): authentication failure; ... ruser=R rhost=ADDR[  user=U]" */
static bool
pam_unix_rhost(struct span s, struct net_addr *out)
{
	const char *close = find(s.p, s.e, LIT(":auth): authentication failure; "));
	if (!close)
		return false;
	trim_right(&s);
	eat_suffix(&s, LIT(" [preauth]"));
	trim_right(&s);
	/* user= is written only for an existing account, whose name holds no space. */
	const char *u = find_last(close, s.e, LIT(" user="));
	if (u && !memchr(u + 6, ' ', (size_t)(s.e - u - 6))) {
		s.e = u;
		trim_right(&s);
	}
	const char *rh = find_last(close, s.e, LIT(" rhost="));
	if (!rh)
		return false;
	return parse_ip(rh + 7, (size_t)(s.e - rh - 7), out);
}

static int
ssh_pam(struct span s, struct guard_event *ev)
{
	static const struct {
		const char *lit;
		size_t n;
	} kinds[] = {
	    {LIT("Authentication failure for ")},
	    {LIT("authentication failure for ")},
	    {LIT("Authentication error for ")},
	    {LIT("authentication error for ")},
	    {LIT("User not known to the underlying authentication module for ")},
	    {LIT("unknown user for ")},
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct net_addr a;
		struct span r = s;
		if (!eat(&r, kinds[i].lit, kinds[i].n))
			continue;
		if (!from_tail((struct span){r.p - 1, r.e}, TAIL_VIA, &a))
			return 0;
		return attack(ev, GUARD_SVC_SSH, &a, 10, "pam-failure");
	}
	return 0;
}

/* "Bad protocol version identification 'BANNER' from ADDR[ port N]": the banner is the client's. */
static int
ssh_bad_banner(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	trim_right(&s);
	struct span t = s;
	const char *sp = find_char_last(t.p, t.e, ' ');
	if (sp && sp - t.p >= 5 && memcmp(sp - 5, " port", 5) == 0) {
		struct span d = {sp + 1, t.e};
		if (!eat_digits(&d) || d.p != d.e)
			return 0;
		t.e = sp - 5;
	}
	sp = find_char_last(t.p, t.e, ' ');
	if (!sp || sp - t.p < 5 || memcmp(sp - 5, " from", 5) != 0)
		return 0;
	if (!parse_ip(sp + 1, (size_t)(t.e - sp - 1), &a))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, 10, "bad-protocol");
}

/* "ADDR port N: ..." at a fixed offset (banner exchange, Unable to negotiate). */
static bool
addr_port_colon(struct span s, struct net_addr *out)
{
	if (!addr_token(&s, out))
		return false;
	return eat(&s, LIT(" port ")) && eat_digits(&s) && has_prefix(&s, LIT(":"));
}

static int
ssh_timeout(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (eat(&s, LIT("connection from "))) {
		/* "... from ADDR to LOCAL, pid = N" */
		if (!addr_token(&s, &a) || !has_prefix(&s, LIT(" to ")))
			return 0;
	} else if (!addr_port_end(s, &a)) {
		return 0;
	}
	return attack(ev, GUARD_SVC_SSH, &a, 1, "login-timeout");
}

/* "drop connection #N from [ADDR]:PORT on [LOCAL]:PORT penalty: REASON" (OpenSSH 9.8+) */
static int
ssh_penalty(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (!eat_digits(&s) || !eat(&s, LIT(" from [")))
		return 0;
	const char *rb = s.p < s.e ? memchr(s.p, ']', (size_t)(s.e - s.p)) : NULL;
	if (!rb || !parse_ip(s.p, (size_t)(rb - s.p), &a))
		return 0;
	s.p = rb + 1;
	if (!eat(&s, LIT(":")) || !eat_digits(&s) || !eat(&s, LIT(" on ")) ||
	    !find(s.p, s.e, LIT(" penalty: ")))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, 1, "penalty");
}

/* "refused connect from NAME@ADDR (ADDR)" (tcp wrappers): the parenthesised one is libwrap's. */
static int
ssh_refused(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	trim_right(&s);
	if (!eat_suffix(&s, LIT(")")))
		return 0;
	const char *lp = find_char_last(s.p, s.e, '(');
	if (!lp || lp == s.p || lp[-1] != ' ' || !parse_ip(lp + 1, (size_t)(s.e - lp - 1), &a))
		return 0;
	return attack(ev, GUARD_SVC_SSH, &a, 10, "refused-connect");
}

/* "reverse mapping checking getaddrinfo for NAME [ADDR] failed - POSSIBLE BREAK-IN ATTEMPT!" */
static int
ssh_reverse_mapping(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	trim_right(&s);
	eat_suffix(&s, LIT("!"));
	if (!eat_suffix(&s, LIT("] failed - POSSIBLE BREAK-IN ATTEMPT")))
		return 0;
	const char *lb = find_char_last(s.p, s.e, '[');
	if (!lb || lb == s.p || lb[-1] != ' ' || !parse_ip(lb + 1, (size_t)(s.e - lb - 1), &a))
		return 0;
	/* Often a DNS misconfiguration rather than an attack; no reference scores it. */
	return attack(ev, GUARD_SVC_SSH, &a, 2, "reverse-mapping");
}

/* Prefixes that syslog, Solaris or sshd itself put before the message proper. */
static void
ssh_skip_prefixes(struct span *s)
{
	for (;;) {
		if (eat(s, LIT("error: ")) || eat(s, LIT("fatal: ")))
			continue;
		if (has_prefix(s, LIT("[ID "))) {
			const char *rb = memchr(s->p, ']', (size_t)(s->e - s->p));
			if (rb && rb + 1 < s->e && rb[1] == ' ') {
				s->p = rb + 2;
				continue;
			}
		}
		if (has_prefix(s, LIT("kernel:"))) {
			/* "kernel:[  970.699396]: ", "kernel: [  970.6] ", "kernel:[12970.6] " */
			struct span t = *s;
			t.p += 7;
			eat(&t, LIT(" "));
			const char *rb =
			    has_prefix(&t, LIT("[")) ? memchr(t.p, ']', (size_t)(t.e - t.p)) : NULL;
			if (rb) {
				t.p = rb + 1;
				eat(&t, LIT(":"));
				if (eat(&t, LIT(" "))) {
					*s = t;
					continue;
				}
			}
		}
		return;
	}
}

static int
ssh_match_b(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (eat(&s, LIT("banner exchange: Connection from ")) && addr_port_colon(s, &a))
		return attack(ev, GUARD_SVC_SSH, &a, 10, "banner-exchange");
	return 0;
}

static int
ssh_match_c(struct span s, struct guard_event *ev)
{
	if (eat(&s, LIT("Connection closed by ")))
		return ssh_preauth_close(s, 2, "preauth-close", ev);
	if (eat(&s, LIT("Connection reset by ")))
		return ssh_preauth_close(s, 2, "preauth-reset", ev);
	return 0;
}

static int
ssh_match_d(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (eat(&s, LIT("Did not receive identification string from ")))
		return addr_port_end(s, &a) ? attack(ev, GUARD_SVC_SSH, &a, 10, "no-ident") : 0;
	if (eat(&s, LIT("Disconnected from ")))
		return ssh_preauth_close(s, 10, "preauth-disconnect", ev);
	if (eat(&s, LIT("Disconnecting invalid user ")) ||
	    eat(&s, LIT("Disconnecting authenticating user ")))
		return ssh_disconnecting(s, ev);
	return 0;
}

static int
ssh_match_upper(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	switch (*s.p) {
	case 'A':
		return eat(&s, LIT("Accepted ")) ? ssh_accepted(s, ev) : 0;
	case 'B':
		return eat(&s, LIT("Bad protocol version identification ")) ? ssh_bad_banner(s, ev)
		                                                            : 0;
	case 'C':
		return ssh_match_c(s, ev);
	case 'D':
		return ssh_match_d(s, ev);
	case 'F':
		return eat(&s, LIT("Failed ")) ? ssh_failed(s, ev) : 0;
	case 'I':
		if (eat(&s, LIT("Invalid user ")) || eat(&s, LIT("Illegal user ")))
			return from_tail((struct span){s.p - 1, s.e}, 0, &a)
			           ? emit(ev, GUARD_SVC_SSH, &a, &V_INVALID_USER)
			           : 0;
		return 0;
	case 'P':
		return eat(&s, LIT("PAM: ")) ? ssh_pam(s, ev) : 0;
	case 'R':
		if (eat(&s, LIT("ROOT LOGIN REFUSED FROM ")) && addr_port_end(s, &a))
			return attack(ev, GUARD_SVC_SSH, &a, 10, "root-refused");
		return 0;
	case 'T':
		return eat(&s, LIT("Timeout before authentication for ")) ? ssh_timeout(s, ev) : 0;
	case 'U':
		if (eat(&s, LIT("Unable to negotiate with ")))
			return addr_port_colon(s, &a) ? attack(ev, GUARD_SVC_SSH, &a, 10, "no-kex")
			                              : 0;
		return eat(&s, LIT("User ")) ? ssh_not_allowed(s, ev) : 0;
	}
	return 0;
}

/*
 * OpenSSH formats a log message into 1024 bytes (MSGBUFSIZ) and cuts what does not fit: a
 * message that long may end inside an address ("1.2.3.45" cut to "1.2.3.4"), and the client
 * chooses the user-name length that puts the cut there.
 */
#define SSHD_MSG_CUT 1023

static int
ssh_match(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (s.e - s.p >= SSHD_MSG_CUT)
		return 0;
	ssh_skip_prefixes(&s);
	if (s.p >= s.e)
		return 0;
	switch (*s.p) {
	case 'b':
		return ssh_match_b(s, ev);
	case 'd':
		return eat(&s, LIT("drop connection #")) ? ssh_penalty(s, ev) : 0;
	case 'm':
		if (eat(&s, LIT("maximum authentication attempts exceeded for ")) &&
		    from_tail((struct span){s.p - 1, s.e}, 0, &a))
			return attack(ev, GUARD_SVC_SSH, &a, 10, "max-auth-tries");
		return 0;
	case 'p':
		/* sshd logs "Failed password" for the same attempt: full weight would count it
		 * twice */
		if (has_prefix(&s, LIT("pam_unix(")) && pam_unix_rhost(s, &a))
			return attack(ev, GUARD_SVC_SSH, &a, 2, "pam-unix");
		return 0;
	case 'r':
		if (eat(&s, LIT("refused connect from ")))
			return ssh_refused(s, ev);
		if (eat(&s, LIT("reverse mapping checking getaddrinfo for ")))
			return ssh_reverse_mapping(s, ev);
		return 0;
	default:
		return ssh_match_upper(s, ev);
	}
}

/* Dropbear's "ADDR:PORT" (IPv6 without brackets, "::ffff:1.2.3.4:55990"), ending the span. */
static bool
dropbear_addr_port(const char *p, const char *e, struct net_addr *out)
{
	const char *colon = find_char_last(p, e, ':');
	if (!colon)
		return false;
	struct span d = {colon + 1, e};
	if (!eat_digits(&d) || d.p != d.e)
		return false;
	if (colon - p >= 2 && *p == '[' && colon[-1] == ']')
		return parse_ip(p + 1, (size_t)(colon - p - 2), out);
	return parse_ip(p, (size_t)(colon - p), out);
}

/* "... from ADDR:PORT" ending the message; the quoted user name before it is the client's. */
static bool
dropbear_from_end(struct span s, struct net_addr *out)
{
	trim_right(&s);
	const char *sp = find_char_last(s.p, s.e, ' ');
	if (!sp || sp - s.p < 5 || memcmp(sp - 5, " from", 5) != 0)
		return false;
	return dropbear_addr_port(sp + 1, s.e, out);
}

static int
dropbear_match(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	/* Journald may keep Dropbear's own "[pid] Mmm dd hh:mm:ss " prefix. */
	if (has_prefix(&s, LIT("["))) {
		struct span t = s;
		t.p++;
		if (eat_digits(&t) && eat(&t, LIT("] ")) && t.e - t.p > 16 && t.p[15] == ' ')
			s.p = t.p + 16;
	}
	if (eat(&s, LIT("Bad password attempt for ")) ||
	    eat(&s, LIT("bad password attempt for ")) ||
	    eat(&s, LIT("Bad PAM password attempt for ")))
		return dropbear_from_end(s, &a)
		           ? attack(ev, GUARD_SVC_DROPBEAR, &a, 10, "bad-password")
		           : 0;
	if (eat(&s, LIT("Login attempt for nonexistent user")) ||
	    eat(&s, LIT("login attempt for nonexistent user")))
		return dropbear_from_end(s, &a)
		           ? attack(ev, GUARD_SVC_DROPBEAR, &a, 10, "invalid-user")
		           : 0;
	if (eat(&s, LIT("Exit before auth from <"))) {
		const char *gt = memchr(s.p, '>', (size_t)(s.e - s.p));
		if (gt && dropbear_addr_port(s.p, gt, &a))
			return attack(ev, GUARD_SVC_DROPBEAR, &a, 2, "exit-before-auth");
		return 0;
	}
	/* Older: "Exit before auth (user 'U', N fails): REASON - user 'U' from ADDR:PORT" */
	if (eat(&s, LIT("Exit before auth (")) && dropbear_from_end(s, &a))
		return attack(ev, GUARD_SVC_DROPBEAR, &a, 2, "exit-before-auth");
	return 0;
}

/* "warning: HOST[ADDR]: SASL M authentication failed" (or "[ADDR]:PORT: "). */
static int
postfix_match(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (!eat(&s, LIT("warning: ")))
		return 0;
	/* Postfix only logs a verified host name, which never holds a bracket. */
	const char *lb = memchr(s.p, '[', (size_t)(s.e - s.p));
	const char *rb = lb ? memchr(lb, ']', (size_t)(s.e - lb)) : NULL;
	if (!rb || !parse_ip(lb + 1, (size_t)(rb - lb - 1), &a))
		return 0;
	s.p = rb + 1;
	if (s.e - s.p >= 2 && s.p[0] == ':' && is_digit(s.p[1])) {
		s.p++;
		eat_digits(&s);
	}
	if (!has_prefix(&s, LIT(": SASL ")) || !find(s.p, s.e, LIT(" authentication failed")))
		return 0;
	return attack(ev, GUARD_SVC_POSTFIX, &a, 10, "sasl-failure");
}

static int
dovecot_match(struct span s, struct guard_event *ev)
{
	struct net_addr a;
	if (has_prefix(&s, LIT("pam_unix(")))
		return pam_unix_rhost(s, &a) ? attack(ev, GUARD_SVC_DOVECOT, &a, 10, "pam-unix")
		                             : 0;
	const char *colon = memchr(s.p, ':', (size_t)(s.e - s.p));
	if (!colon || colon - s.p < 6 || memcmp(colon - 6, "-login", 6) != 0)
		return 0;
	if (!find(colon, s.e, LIT("(auth failed, ")))
		return 0;
	/* user=<...> is the client's; rip= is followed only by dovecot's own fields. */
	const char *rip = find_last(colon, s.e, LIT(" rip="));
	if (!rip)
		return 0;
	const char *p = rip + 5;
	const char *end = memchr(p, ',', (size_t)(s.e - p));
	if (!end)
		end = token_end(p, s.e);
	if (!parse_ip(p, (size_t)(end - p), &a))
		return 0;
	return attack(ev, GUARD_SVC_DOVECOT, &a, 10, "auth-failed");
}

static bool
ident_is(const struct guard_line *l, const char *lit, size_t n)
{
	return l->ident_len == n && memcmp(l->ident, lit, n) == 0;
}

static bool
ident_is_postfix_smtpd(const struct guard_line *l)
{
	return l->ident_len >= 13 && memcmp(l->ident, "postfix", 7) == 0 &&
	       memcmp(l->ident + l->ident_len - 6, "/smtpd", 6) == 0;
}

int
guard_match(const struct guard_line *line, unsigned flags, struct guard_event *ev)
{
	if (!line->msg || line->msg_len == 0 || !line->ident)
		return 0;
	struct span s = {line->msg, line->msg + line->msg_len};
	if (ident_is(line, LIT("sshd")) || ident_is(line, LIT("sshd-session")) ||
	    ident_is(line, LIT("sshd-auth")))
		return ssh_match(s, ev);
	if (ident_is(line, LIT("dropbear")))
		return dropbear_match(s, ev);
	if ((flags & GUARD_MATCH_POSTFIX) && ident_is_postfix_smtpd(line))
		return postfix_match(s, ev);
	if ((flags & GUARD_MATCH_DOVECOT) && ident_is(line, LIT("dovecot")))
		return dovecot_match(s, ev);
	return 0;
}

static bool
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

/* "hh:mm:ss" */
static bool
is_clock(const char *p, const char *e)
{
	return e - p >= 8 && is_digit(p[0]) && is_digit(p[1]) && p[2] == ':' && is_digit(p[3]) &&
	       is_digit(p[4]) && p[5] == ':' && is_digit(p[6]) && is_digit(p[7]);
}

static void
skip_spaces(struct span *s)
{
	while (s->p < s->e && *s->p == ' ')
		s->p++;
}

static void
skip_token(struct span *s)
{
	s->p = token_end(s->p, s->e);
	skip_spaces(s);
}

/* "Mmm dd hh:mm:ss[.frac] ", "YYYY-MM-DDThh:mm:ss... ", "YYYY-MM-DD hh:mm:ss "; or nothing. */
static void
skip_timestamp(struct span *s)
{
	const char *p = s->p;
	if (s->e - p >= 15 && is_upper(p[0]) && is_lower(p[1]) && is_lower(p[2]) && p[3] == ' ') {
		struct span t = {p + 4, s->e};
		skip_spaces(&t);
		if (!eat_digits(&t) || !eat(&t, LIT(" ")) || !is_clock(t.p, t.e))
			return;
		s->p = t.p;
		skip_token(s);
		return;
	}
	if (s->e - p >= 10 && is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) &&
	    is_digit(p[3]) && p[4] == '-' && is_digit(p[5]) && is_digit(p[6]) && p[7] == '-') {
		skip_token(s);
		if (is_clock(s->p, s->e))
			skip_token(s);
	}
}

/* "name[pid]:", "name:", "[name]:" or "[name]" into the ident; false for anything else. */
static bool
ident_token(const char *p, const char *e, struct guard_line *out)
{
	if (e > p && e[-1] == ':')
		e--;
	if (e > p && *p == '[') {
		if (e[-1] != ']')
			return false;
		p++;
		e--;
	} else if (e > p && e[-1] == ']') {
		const char *lb = memchr(p, '[', (size_t)(e - p));
		if (!lb)
			return false;
		e = lb;
	}
	if (e <= p)
		return false;
	out->ident = p;
	out->ident_len = (size_t)(e - p);
	return true;
}

static bool
ends_ident(const char *p, const char *e)
{
	return e > p && (e[-1] == ':' || *p == '[');
}

/* "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG" */
static int
split_rfc5424(struct span s, struct guard_line *out)
{
	skip_token(&s); /* timestamp */
	skip_token(&s); /* host */
	const char *app = s.p, *app_e = token_end(s.p, s.e);
	if (app_e == app)
		return -EINVAL;
	s.p = app_e;
	skip_spaces(&s);
	skip_token(&s); /* procid */
	skip_token(&s); /* msgid */
	if (eat(&s, LIT("-"))) {
		skip_spaces(&s);
	} else {
		bool quoted = false, in = false;
		while (s.p < s.e) {
			char c = *s.p++;
			if (quoted && c == '\\' && s.p < s.e)
				s.p++;
			else if (in && c == '"')
				quoted = !quoted;
			else if (!quoted && c == '[')
				in = true;
			else if (!quoted && c == ']')
				in = false;
			else if (!in && c == ' ')
				break;
		}
	}
	out->ident = app;
	out->ident_len = (size_t)(app_e - app);
	out->msg = s.p;
	out->msg_len = (size_t)(s.e - s.p);
	return 0;
}

int
guard_match_split(const char *line, size_t len, struct guard_line *out)
{
	struct span s = {line, line + len};
	memset(out, 0, sizeof(*out));
	while (s.e > s.p && (s.e[-1] == '\n' || s.e[-1] == '\r'))
		s.e--;
	if (has_prefix(&s, LIT("<"))) {
		struct span t = {s.p + 1, s.e};
		if (!eat_digits(&t) || !eat(&t, LIT(">")))
			return -EINVAL;
		if (eat(&t, LIT("1 ")))
			return split_rfc5424(t, out);
		s.p = t.p;
	}
	skip_timestamp(&s);
	const char *w1 = s.p, *w1e = token_end(s.p, s.e);
	if (!ends_ident(w1, w1e)) {
		s.p = w1e;
		skip_spaces(&s);
		w1 = s.p;
		w1e = token_end(s.p, s.e);
		if (!ends_ident(w1, w1e))
			return -EINVAL;
	}
	if (!ident_token(w1, w1e, out))
		return -EINVAL;
	s.p = w1e;
	skip_spaces(&s);
	out->msg = s.p;
	out->msg_len = (size_t)(s.e - s.p);
	return 0;
}

int
guard_match_text(const char *line, size_t len, unsigned flags, struct guard_event *ev)
{
	struct guard_line l;
	if (guard_match_split(line, len, &l) < 0)
		return 0;
	return guard_match(&l, flags, ev);
}
