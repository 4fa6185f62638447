/*
 * Guard policy shared by the daemon and the `rampart guard` commands: the key a source is
 * banned by, how long its n-th ban lasts, the nftables layout a config asks for, who is
 * never banned (whitelist, loopback, the host's own addresses), and blocklist files.
 */
#pragma once

#include "core/dns.h"
#include "core/net.h"
#include "guard_config.h"
#include "guard_nft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key a source is scored and banned by: the address (/32, /128), or for IPv6 its
 * ipv6-prefix network. */
void guard_key(const struct guard_cfg *cfg, const struct net_addr *a, struct net_cidr *out);
/* The length of the count-th ban (1: the first): time × escalate^(count-1), capped at
 * max-time; 0 when it is permanent (count reached permanent-after). */
uint64_t guard_ban_length(const struct guard_ban_cfg *b, uint32_t count);
/* A ban's time left as nftables can hold it (GUARD_NFT_TIMEOUT_MAX_MS at most). */
uint64_t guard_timeout_cap(uint64_t ms);
/* Wall clock in Unix milliseconds: bans keep their expiry across restarts. */
int64_t guard_now_ms(void);
/* The rate rules and v6 prefix of cfg as the nftables layout takes them; rates must hold
 * cfg->rate.n entries. allow/nallow are the caller's. */
void guard_layout(const struct guard_cfg *cfg, struct guard_nft_rate *rates,
                  const struct net_cidr *allow, size_t nallow, struct guard_nft_layout *out);
/* Reads a blocklist file: one address or CIDR per line, "#" and ";" start comments (Spamhaus
 * DROP lists carry "; SBL..."). Appends to *v (capacity *cap, *n used). *bad gets the count of
 * unreadable lines and bad_line the first one's number. */
int guard_blocklist_read(const char *path, struct net_cidr **v, size_t *n, size_t *cap, size_t *bad,
                         size_t *bad_line);
/* The same over text already in memory (len bytes, NUL bytes allowed). */
int guard_blocklist_parse(const char *text, size_t len, struct net_cidr **v, size_t *n, size_t *cap,
                          size_t *bad, size_t *bad_line);
/*
 * The never-banned list: loopback, every address of the host's interfaces, and the whitelist
 * (CIDRs, addresses, host names resolved through dns: A and AAAA). A name that does not
 * resolve is reported in *unresolved (the first one) and skipped; -errno on other errors.
 */
int guard_allow_build(const struct guard_cfg *cfg, const struct dns_options *dns,
                      struct net_cidr **out, size_t *n, char *unresolved, size_t unresolved_len);
bool guard_allow_match(const struct net_cidr *allow, size_t n, const struct net_addr *a);
/* The entry of allow that a ban of net would cover (or that covers net), or NULL. */
const struct net_cidr *guard_allow_overlaps(const struct net_cidr *allow, size_t n,
                                            const struct net_cidr *net);
