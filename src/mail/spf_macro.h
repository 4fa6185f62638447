/*
 * SPF macros (RFC 7208 §7): syntax checks of domain-specs, modifier values and explanation
 * strings, and their expansion. No DNS here: the evaluator supplies %{p} through a callback.
 */
#pragma once

#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is being checked or expanded. */
enum spf_macro_kind {
	SPF_MACRO_DOMAIN, /* domain-spec: c, r, t forbidden; ends in a macro or "." toplabel */
	SPF_MACRO_STRING, /* value of an unknown modifier: macro-string, c, r, t forbidden */
	SPF_MACRO_EXP,    /* explanation text: every letter, spaces too */
};

/* A macro value longer than this is cut (a sender is at most 256 octets per RFC 5321). */
#define SPF_MACRO_VALUE_MAX 1024
/* Room for an expanded domain name: 253 characters plus NUL. */
#define SPF_MACRO_NAME_MAX 254

struct spf_macro_vars {
	const char *sender;        /* s: "local@domain", postmaster substituted for no local part */
	size_t local_len;          /* l: the first local_len bytes of sender */
	const char *sender_domain; /* o */
	const char *domain;        /* d: the domain being checked */
	const char *helo;          /* h */
	const char *receiver;      /* r */
	const struct net_addr *ip; /* i, c, v: IPv4-mapped addresses already made IPv4 */
	const char *ip_text;       /* c: ip as text; NULL: formatted here */
	uint64_t now;              /* t: seconds since the epoch */
	/* p: the validated domain name of ip, or "unknown"; NULL callback: "unknown" */
	const char *(*validated)(void *arg);
	void *arg;
};

/* 0 when s (len bytes, may hold NULs) is valid for kind; -EINVAL otherwise. */
int spf_macro_check(const char *s, size_t len, enum spf_macro_kind kind);

/*
 * Expands s into out (size cap, always NUL-terminated). A domain loses one final dot and, when
 * longer than 253 characters, whole labels from the left (§7.3); -ENAMETOOLONG when no such
 * cut fits. An explanation is cut at cap - 1 bytes. -EINVAL when the syntax is bad.
 */
int spf_macro_expand(const char *s, size_t len, enum spf_macro_kind kind,
                     const struct spf_macro_vars *v, char *out, size_t cap);

/* True when c may appear in a toplabel / domain label we accept: ASCII letter or digit. */
bool spf_macro_is_alnum(int c);
