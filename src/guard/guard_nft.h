/*
 * Our firewall state, all in `table inet rampart` (libnftables):
 *   - the rate rule: the exact semantics of xt_recent's `--set` + `--update --seconds S
 *     --hitcount H --rsource` pair, built from 2H dynamic timeout sets per family (H slot sets
 *     holding each source's last H new connections, and H-1 cursor sets saying which slot is
 *     the oldest); a source is dropped when it is in all H slot sets; every new connection,
 *     passed or dropped, overwrites the oldest slot with a fresh timeout S;
 *   - bans: timeout sets for IPv4 hosts and IPv6 prefixes (ban4, ban6: the ban prefix, /64
 *     by default, matched as `ip6 saddr & mask`), and for wider manual bans one timeout set
 *     per family and prefix length (bannet4_24, bannet6_48, made by the first ban of that
 *     length, matched in chain bannet), so overlapping bans of different lengths are
 *     independent elements, each with its own timeout;
 *   - blocklists: one plain set per family and prefix length (block4_24, matched as
 *     `ip saddr & 255.255.255.0`), replaced in one transaction; neither these nor the bans
 *     are interval sets, whose elements nft 1.0.6 reads back before every `add element`
 *     (0.6 s per ban with 100,000), and which refuse or merge overlapping elements;
 *   - allow: whitelist, loopback and the host's own addresses (interval sets), and trust
 *     (sources that logged in; timeout sets): never dropped, exempt from the rate rule.
 * The base chain hooks input at priority filter - 10, so its drops bite whatever another
 * table accepts (an established-accept rule in `inet filter` cannot let a banned source in).
 */
#pragma once

#include "core/net.h"

#include <stddef.h>
#include <stdint.h>

#define GUARD_NFT_TABLE "rampart"
#define GUARD_NFT_PORTS_MAX 16
#define GUARD_NFT_HITCOUNT_MAX 20 /* xt_recent's ip_pkt_list_tot default */
#define GUARD_NFT_RATES_MAX 16
#define GUARD_NFT_SECONDS_MAX (86400u * 365)
#define GUARD_NFT_SET_SIZE_MAX 1048576u
#define GUARD_NFT_ALLOW_MAX 65536u
/* Cap on the elements of one call (a blocklist, a restore). */
#define GUARD_NFT_ELEMS_MAX 1048576u
/* Longest element timeout: 10 years (nft has no "forever" besides no timeout). */
#define GUARD_NFT_TIMEOUT_MAX_MS (3650ull * 86400 * 1000)
/* Longest error text kept for guard_nft_error. */
#define GUARD_NFT_ERROR_MAX 1024

struct guard_nft_rate {
	uint16_t ports[GUARD_NFT_PORTS_MAX];
	size_t nports;
	uint32_t seconds;  /* 1.. */
	uint32_t hitcount; /* 1..GUARD_NFT_HITCOUNT_MAX */
};

struct guard_nft_layout {
	const struct guard_nft_rate *rates;
	size_t nrates;
	unsigned v6_prefix;           /* IPv6 ban granularity, 1..128 (64) */
	const struct net_cidr *allow; /* whitelist + loopback + own addresses */
	size_t nallow;
	uint32_t set_size; /* cap on each dynamic rate set (65535) */
};

struct guard_nft_elem {
	struct net_cidr net;
	uint64_t timeout_ms; /* 0: no timeout (permanent) */
};

struct guard_nft;

/*
 * Every call below checks its arguments (-EINVAL: a port 0, hitcount or seconds out of range,
 * a prefix too long, host bits set, a timeout past GUARD_NFT_TIMEOUT_MAX_MS, a count past its
 * cap) before it builds one nft transaction; nft's failures come back as -errno (-EPERM without
 * CAP_NET_ADMIN, -ENOENT without the table, -EINVAL otherwise) with nft's message kept for
 * guard_nft_error.
 */
int guard_nft_new(struct guard_nft **out);
void guard_nft_free(struct guard_nft *n);
/* nft's message for the last failed call ("" when it succeeded), cut to GUARD_NFT_ERROR_MAX. */
const char *guard_nft_error(const struct guard_nft *n);
/* The checks guard_nft_setup makes, for a caller (the writer) that wants them first. */
int guard_nft_layout_check(const struct guard_nft_layout *l);

/*
 * Creates the table or brings an existing one to layout in one transaction: chains, rate sets
 * and allow sets are rebuilt; ban, trust and blocklist sets and their elements are kept (bans
 * survive restarts and reloads). The interval sets bannet4 and bannet6 of earlier versions
 * are deleted: the caller puts its stored bans back after setup.
 */
int guard_nft_setup(struct guard_nft *n, const struct guard_nft_layout *l);
/*
 * Adds (or refreshes the timeout of) every element in one transaction. IPv6 hosts are widened
 * to the v6_prefix of the last setup (64 before any); wider prefixes go to the set of their
 * family and length, made (with its rule) in the same transaction when new. Only a request
 * with such a prefix lists the table's sets first; -ENOENT when the table has no chain bannet
 * (none, or one an earlier version made): set up, then ban again.
 */
int guard_nft_ban(struct guard_nft *n, const struct guard_nft_elem *v, size_t count);
/* Removes; an element that is not there (or a length never banned) is no error. */
int guard_nft_unban(struct guard_nft *n, const struct net_cidr *v, size_t count);
/* Exempts a (logged-in) source for timeout_ms. */
int guard_nft_trust(struct guard_nft *n, const struct net_addr *a, uint64_t timeout_ms);
/* Replaces the blocklist sets' contents with v, in one transaction. */
int guard_nft_blocklist(struct guard_nft *n, const struct net_cidr *v, size_t count);
/* Deletes the table (bans and all); -ENOENT when there is none. */
int guard_nft_remove(struct guard_nft *n);
