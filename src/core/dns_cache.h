/*
 * Private to src/core/dns*.c: the answer cache in front of libunbound. Keys are a normalized
 * name and a type; time is passed in (milliseconds, monotonic) so the expiry rules can be
 * tested without waiting. Thread-safe: its own lock, held only around the table.
 */
#pragma once

#include "dns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* an answer is kept at most this long, whatever its TTL */
#define DNS_CACHE_TTL_MAX 86400u
#define DNS_CACHE_ENTRIES_DEFAULT 10000u
#define DNS_CACHE_ENTRIES_MAX 1000000u
/* records and TXT data held at most; one answer may use a quarter of it */
#define DNS_CACHE_BYTES_MAX (16u << 20)

struct dns_cache;

/* max_entries 0: DNS_CACHE_ENTRIES_DEFAULT; max_bytes 0: DNS_CACHE_BYTES_MAX. */
int dns_cache_new(size_t max_entries, size_t max_bytes, struct dns_cache **out);
void dns_cache_free(struct dns_cache *c);

/*
 * 1: *out is a copy of the cached answer, every rr->ttl the seconds it has left (rounded
 * up); 0: no live entry (*out untouched); -ENOMEM. With count, a hit or a miss is counted.
 */
int dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type, uint64_t now_ms,
                  bool count, struct dns_answer *out);

/*
 * Keeps a copy of a for ttl seconds (capped at DNS_CACHE_TTL_MAX), evicting the least recently
 * used answers when full. Nothing is kept for ttl 0, a status other than OK, NODATA and
 * NXDOMAIN, or an answer over a quarter of the byte cap. 0 or -ENOMEM.
 */
int dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type,
                  const struct dns_answer *a, uint32_t ttl, uint64_t now_ms);

/* hits, misses, entries, bytes (joined is the resolver's). */
void dns_cache_stats(struct dns_cache *c, struct dns_stats *out);
