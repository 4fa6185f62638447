/*
 * DNS lookups for every part: libunbound (cache, DNSSEC validation, resolv.conf forwarders by
 * default) behind a resolver handle, with an RFC 1035 zone file whose records take precedence
 * (--dns-zone, `dns: zone-file:`). Every zone declared by an SOA in the file is answered from
 * the file alone. Tests and conformance drivers build an in-memory zone, which can also
 * simulate TIMEOUT and SERVFAIL for a name.
 *
 * A query never blocks longer than its timeout; a timeout or SERVFAIL is a temporary error,
 * never an empty answer.
 *
 * Answers from the network are kept in an in-process cache (a libunbound call costs tens of
 * microseconds even when unbound's own cache answers): positive answers for their TTL,
 * NXDOMAIN and NODATA for the negative TTL of RFC 2308 (the SOA's, as libunbound reports it),
 * never TIMEOUT or SERVFAIL. Zone-file answers are not cached (they are in memory already).
 */
#pragma once

#include "net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* presentation form without the final dot, plus NUL */
#define DNS_NAME_MAX 254
/* concatenated strings of one TXT record */
#define DNS_TXT_MAX 65536
/* records kept from one answer */
#define DNS_ANSWER_MAX 256

enum dns_type {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_DS = 43,
	DNS_T_DNSKEY = 48,
	DNS_T_TLSA = 52,
	DNS_T_SPF = 99,
	DNS_T_CAA = 257,
};

enum dns_status {
	DNS_OK,       /* records of the type asked for are in rr (n >= 1) */
	DNS_NODATA,   /* the name exists, no records of that type (n == 0) */
	DNS_NXDOMAIN, /* the name does not exist (n == 0) */
	DNS_TIMEOUT,  /* no answer in time: temporary */
	DNS_SERVFAIL, /* server failure, refused, bogus DNSSEC, network error: temporary */
};

struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	union {
		struct net_addr addr; /* A, AAAA */
		struct {
			uint16_t pref;
			char host[DNS_NAME_MAX];
		} mx;
		char name[DNS_NAME_MAX]; /* PTR, CNAME, NS: lower case, no final dot */
		struct {
			uint16_t priority, weight, port;
			char target[DNS_NAME_MAX];
		} srv;
		struct dns_bytes {
			char *
			    data; /* character-strings of one record concatenated, NUL-terminated */
			size_t len;   /* may hold NUL bytes: use len */
			size_t nstr;  /* TXT: its nstr strings' lengths are the nstr bytes after the
			                 NUL; 0 when not known (one string per 255 bytes) */
		} txt;                /* TXT, SPF */
		struct dns_bytes raw; /* DS, DNSKEY, TLSA, CAA: the wire-format rdata (nstr 0),
		                         checked for its fixed fields (dns_rdata_parse) */
	} u;
};

struct dns_answer {
	enum dns_status status;
	bool secure; /* DNSSEC-validated (AD) */
	size_t n;
	struct dns_rr *rr;
};

struct dns_options {
	const char *zone_file;     /* records that take precedence; NULL: none */
	const char *zone_origin;   /* origin of relative names before any $ORIGIN in zone_file;
	                              NULL: such names are errors */
	const char *const *server; /* NULL-terminated "ADDR" / "ADDR:PORT" / "[v6]:PORT" forwarders;
	                              NULL: /etc/resolv.conf */
	bool dnssec;               /* validate with the root trust anchor when it is installed */
	uint64_t timeout_ms;       /* per query; 0: 3000 */
	bool no_network;           /* answer from the zone only; names outside it: NXDOMAIN */
	const char *trust_anchor;  /* with dnssec: a file of DS/DNSKEY records trusted besides
	                              the root's (a private signed zone); NULL: none */
	size_t cache_entries;      /* answers cached; 0: 10000 (at most 1000000) */
	bool no_cache;             /* no in-process answer cache (libunbound's own remains) */
};

struct dns_stats {
	uint64_t hits;   /* dns_query answered from the in-process cache */
	uint64_t misses; /* dns_query that went to libunbound (zone answers are neither) */
	uint64_t joined; /* of the misses, those that waited for a query already in flight */
	size_t entries;  /* answers held now (expired ones count until evicted) */
	size_t bytes;    /* records and TXT data held now */
};

struct dns_resolver;
struct dns_zone;

/*
 * Opens a resolver. A zone file with errors fails with -EINVAL and one "FILE:LINE: message"
 * per problem in *err (malloc'd, caller frees; may be NULL). A zone file that cannot be read
 * fails with open's -errno (-ENOENT, -EACCES...), -EISDIR, or -ENODEV when it is not a regular
 * file (a FIFO, a device); a bad zone_origin with -EDOM. Other failures are the resolver's:
 * -EIO, -EINVAL without *err, -ENOMEM.
 */
int dns_resolver_open(const struct dns_options *opt, struct dns_resolver **out, char **err);
/* A resolver answering from zone alone (names outside it: NXDOMAIN). Takes ownership of zone. */
int dns_resolver_from_zone(struct dns_zone *zone, struct dns_resolver **out);
void dns_resolver_free(struct dns_resolver *r);
/*
 * Answers TXT queries for owner with this one record, whatever the zone file or the network
 * say (testing a record before publishing it). Only before the first query: not thread-safe.
 * 0, -EINVAL (a bad name, a CNAME there), -ENOMEM.
 */
int dns_resolver_set_txt(struct dns_resolver *r, const char *owner, const char *data, size_t len);

/*
 * Looks name up (case-insensitive; a final dot is optional) for type; CNAME chains are followed
 * (up to 8), in zones as in libunbound. Returns 0 with
 * out->status set, or -errno for a bad name (-EINVAL) or no memory; the caller frees out with
 * dns_answer_free. Thread-safe: one resolver may serve several threads.
 */
int dns_query(struct dns_resolver *r, const char *name, enum dns_type type, struct dns_answer *out);
void dns_answer_free(struct dns_answer *a);

/*
 * Starts the lookup of name/type without waiting, so that all lookups of a message run in
 * parallel. Its answer fills the cache when it arrives; it is read off the socket by the next
 * dns_query on this resolver that waits for the network (from any thread). A dns_query for
 * the same name and type meanwhile waits for this lookup instead of sending a second one.
 * Nothing is sent for a name the zone file answers, an answer already cached, a lookup
 * already in flight, or past this thread's deadline. A lookup nobody waits for is cancelled
 * once its timeout has passed. 0, -EINVAL for a bad name, -EAGAIN when 4096 lookups are in
 * flight already, -EIO when libunbound refuses the query, -ENOMEM.
 */
int dns_prefetch(struct dns_resolver *r, const char *name, enum dns_type type);

/*
 * A per-thread budget (one message's lookups): deadline_ms is an absolute time on
 * dns_monotonic_ms()'s clock, 0 for none. Every dns_query of this thread then waits at most
 * min(its timeout, deadline - now); once the deadline has passed, a query the zone file or
 * the cache cannot answer returns DNS_TIMEOUT at once, without sending anything.
 */
void dns_deadline_set(uint64_t deadline_ms);
/* This thread's deadline; 0: none. */
uint64_t dns_deadline_get(void);
/* Milliseconds on CLOCK_MONOTONIC: a clock step never stretches a budget. */
uint64_t dns_monotonic_ms(void);
/* Counters since the resolver was opened; all zero for a zone-only resolver. */
void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);
/* The PTR name for an address: 4.3.2.1.in-addr.arpa, nibbles.ip6.arpa. */
int dns_reverse_name(const struct net_addr *a, char *buf, size_t len);
const char *dns_status_name(enum dns_status s);

/* Types whose data is in u.txt / u.raw (malloc'd, owned by the record). */
static inline bool
dns_type_has_bytes(uint16_t type)
{
	return type == DNS_T_TXT || type == DNS_T_SPF || type == DNS_T_DS || type == DNS_T_DNSKEY ||
	       type == DNS_T_TLSA || type == DNS_T_CAA;
}
/* Bytes of the record's data allocation (0 for types without). */
static inline size_t
dns_rr_bytes(const struct dns_rr *rr)
{
	return dns_type_has_bytes(rr->type) ? rr->u.txt.len + 1 + rr->u.txt.nstr : 0;
}

/* Zones: an RFC 1035 master file ($ORIGIN, $TTL, @, relative names, ( ) continuation,
 * quoted strings with \DDD escapes, comments; types A AAAA MX TXT SPF PTR CNAME NS SOA). */
int dns_zone_new(struct dns_zone **out);
void dns_zone_free(struct dns_zone *z);
/*
 * Appends "FILE:LINE: message" lines to *err on -EINVAL. A relative name before any $ORIGIN
 * is an error, as in BIND, unless dns_zone_set_origin gave one. Only regular files: -EISDIR,
 * -ENODEV for anything else, -errno of open/read.
 */
int dns_zone_load_file(struct dns_zone *z, const char *path, char **err);
/* As a file, except that relative names without an origin are rooted at "." (zones built in
 * code and tests). */
int dns_zone_load_string(struct dns_zone *z, const char *name, const char *text, size_t len,
                         char **err);
/* The origin of relative names in files loaded from now on ("." : the root; NULL: none).
 * -EINVAL for a bad name. */
int dns_zone_set_origin(struct dns_zone *z, const char *origin);
/* One record in presentation form: ("example.com", DNS_T_MX, "10 mx.example.com"). TXT rdata
 * is one or more quoted strings. */
int dns_zone_add(struct dns_zone *z, const char *owner, enum dns_type type, const char *rdata);
/* TXT record from raw bytes (split into 255-byte strings as needed); len may hold NULs. */
int dns_zone_add_txt(struct dns_zone *z, const char *owner, const char *data, size_t len);
/* Replaces owner's TXT and SPF records with this one TXT record (rampart spf --record). */
int dns_zone_replace_txt(struct dns_zone *z, const char *owner, const char *data, size_t len);
/* Every query for owner (any type) answers status (DNS_TIMEOUT or DNS_SERVFAIL). */
int dns_zone_add_failure(struct dns_zone *z, const char *owner, enum dns_status status);
/* Declares owner a zone apex, as an SOA would: names under it not in the zone are NXDOMAIN. */
int dns_zone_add_apex(struct dns_zone *z, const char *owner);
