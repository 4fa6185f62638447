/*
 * Private to src/core/dns*.c: the zone store's lookup, shared by the zone-only resolver and
 * the libunbound one (whose zone records take precedence). The public API is dns.h.
 */
#pragma once

#include "dns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CNAME links followed in one query before it is called a loop */
#define DNS_CNAME_MAX 8

/*
 * "Example.COM." -> "example.com": one final dot dropped, lower case, labels 1..63 bytes of
 * bytes other than controls and backslash (spaces too), at most 253 characters. -EINVAL
 * otherwise.
 */
int dns_name_normalize(const char *in, char out[DNS_NAME_MAX]);

/*
 * Answers a normalized name from the zone. 1: *out is the answer. 0: the zone has nothing to
 * say and the network may be asked for next (the name itself, or the end of a CNAME chain
 * that leaves the zone). With network false every name gets an answer (never 0).
 * -ENOMEM. z may be NULL (an empty zone).
 */
int dns_zone_answer(const struct dns_zone *z, const char *name, enum dns_type type, bool network,
                    struct dns_answer *out, char next[DNS_NAME_MAX]);

/* Copies n records (TXT data duplicated) into a fresh answer; n is capped at DNS_ANSWER_MAX. */
int dns_answer_set(struct dns_answer *out, enum dns_status status, const struct dns_rr *rr,
                   size_t n);

/*
 * One record's wire-format rdata (names uncompressed, as libunbound hands them) into *rr.
 * Every length is checked; -EBADMSG for anything malformed or names rampart cannot hold.
 * On success a TXT rr owns its data (free rr->u.txt.data).
 */
int dns_rdata_parse(enum dns_type type, const uint8_t *p, size_t len, struct dns_rr *rr);
