#include "guard_policy.h"

#include "core/cleanup.h"
#include "core/file.h"

#include <errno.h>
#include <ifaddrs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A blocklist is a published list (Spamhaus DROP: ~1,500 lines; big country lists: ~100k). */
#define GUARD_BLOCKLIST_FILE_MAX (64 * 1024 * 1024)
#define GUARD_BLOCKLIST_MAX 4000000
#define GUARD_ALLOW_MAX 65536

void
guard_key(const struct guard_cfg *cfg, const struct net_addr *a, struct net_cidr *out)
{
	*out = (struct net_cidr){.addr = *a};
	out->addr.port = 0;
	out->prefix = a->family == AF_INET ? 32 : (unsigned)cfg->ipv6_prefix;
	net_addr_mask(&out->addr, out->prefix);
}

uint64_t
guard_ban_length(const struct guard_ban_cfg *b, uint32_t count)
{
	if (b->permanent_after > 0 && count >= (uint64_t)b->permanent_after)
		return 0;
	double len = (double)b->time_ms;
	for (uint32_t i = 1; i < count && len < (double)b->max_time_ms; i++)
		len *= b->escalate;
	return len >= (double)b->max_time_ms ? b->max_time_ms : (uint64_t)len;
}

uint64_t
guard_timeout_cap(uint64_t ms)
{
	return ms > GUARD_NFT_TIMEOUT_MAX_MS ? GUARD_NFT_TIMEOUT_MAX_MS : ms;
}

int64_t
guard_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
guard_layout(const struct guard_cfg *cfg, struct guard_nft_rate *rates,
             const struct net_cidr *allow, size_t nallow, struct guard_nft_layout *out)
{
	for (size_t i = 0; i < cfg->rate.n; i++) {
		const struct guard_rate_cfg *r =
		    &((const struct guard_rate_cfg *)cfg->rate.items)[i];
		struct guard_nft_rate *o = &rates[i];
		*o = (struct guard_nft_rate){.seconds = (uint32_t)r->seconds,
		                             .hitcount = (uint32_t)r->hitcount};
		if (r->port)
			o->ports[o->nports++] = (uint16_t)r->port;
		for (size_t j = 0; j < r->ports.n && o->nports < GUARD_NFT_PORTS_MAX; j++)
			o->ports[o->nports++] = (uint16_t)((const int64_t *)r->ports.items)[j];
	}
	*out = (struct guard_nft_layout){.rates = rates,
	                                 .nrates = cfg->rate.n,
	                                 .v6_prefix = (unsigned)cfg->ipv6_prefix,
	                                 .allow = allow,
	                                 .nallow = nallow,
	                                 .set_size = (uint32_t)cfg->set_size};
}

static int
guard_push(struct net_cidr **v, size_t *n, size_t *cap, size_t max, const struct net_cidr *c)
{
	if (*n == *cap) {
		if (*cap >= max)
			return -E2BIG;
		size_t ncap = *cap ? *cap * 2 : 64;
		struct net_cidr *nv = reallocarray(*v, ncap, sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *c;
	return 0;
}

/* One blocklist line: the first word, up to a comment; 1 parsed, 0 blank, -EINVAL bad. */
static int
guard_blocklist_line(const char *p, size_t len, struct net_cidr *out)
{
	char word[NET_CIDR_STRLEN];
	size_t i = 0, w = 0;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	if (i == len || p[i] == '#' || p[i] == ';')
		return 0;
	while (i < len && !strchr(" \t\r#;", p[i]) && p[i]) {
		if (w + 1 >= sizeof(word))
			return -EINVAL;
		word[w++] = p[i++];
	}
	word[w] = 0;
	return net_cidr_parse(word, out) < 0 ? -EINVAL : 1;
}

int
guard_blocklist_parse(const char *text, size_t len, struct net_cidr **v, size_t *n, size_t *cap,
                      size_t *bad, size_t *bad_line)
{
	size_t line = 0;
	*bad = 0;
	*bad_line = 0;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - text) : len;
		struct net_cidr c;
		line++;
		int r = guard_blocklist_line(text + off, end - off, &c);
		if (r < 0 && !(*bad)++)
			*bad_line = line;
		if (r > 0 && (r = guard_push(v, n, cap, GUARD_BLOCKLIST_MAX, &c)) < 0)
			return r;
		off = end + 1;
	}
	return 0;
}

int
guard_blocklist_read(const char *path, struct net_cidr **v, size_t *n, size_t *cap, size_t *bad,
                     size_t *bad_line)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = file_read_path(path, GUARD_BLOCKLIST_FILE_MAX, &text, &len);
	return r < 0 ? r : guard_blocklist_parse(text, len, v, n, cap, bad, bad_line);
}

bool
guard_allow_match(const struct net_cidr *allow, size_t n, const struct net_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (net_cidr_match(&allow[i], a))
			return true;
	return false;
}

const struct net_cidr *
guard_allow_overlaps(const struct net_cidr *allow, size_t n, const struct net_cidr *net)
{
	for (size_t i = 0; i < n; i++)
		if (net_cidr_match(net, &allow[i].addr) || net_cidr_match(&allow[i], &net->addr))
			return &allow[i];
	return NULL;
}

static int
guard_allow_own(struct net_cidr **v, size_t *n, size_t *cap)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	int r = 0;
	for (struct ifaddrs *i = ifa; i && r >= 0; i = i->ifa_next) {
		struct net_cidr c = {0};
		if (!i->ifa_addr ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		socklen_t sl = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                                 : sizeof(struct sockaddr_in6);
		if (net_addr_from_sockaddr(i->ifa_addr, sl, &c.addr) < 0)
			continue;
		c.addr.port = 0;
		c.prefix = c.addr.family == AF_INET ? 32 : 128;
		r = guard_push(v, n, cap, GUARD_ALLOW_MAX, &c);
	}
	freeifaddrs(ifa);
	return r;
}

static void
dns_resolver_freep(struct dns_resolver **r)
{
	dns_resolver_free(*r);
}

/* A and AAAA of name; 1 when any address came back, 0 when none did. */
static int
guard_allow_name(struct dns_resolver *res, const char *name, struct net_cidr **v, size_t *n,
                 size_t *cap)
{
	static const enum dns_type types[] = {DNS_T_A, DNS_T_AAAA};
	int found = 0;
	for (size_t t = 0; t < 2; t++) {
		struct dns_answer ans = {0};
		int r = dns_query(res, name, types[t], &ans);
		for (size_t i = 0; r >= 0 && ans.status == DNS_OK && i < ans.n; i++) {
			struct net_cidr c = {.addr = ans.rr[i].u.addr};
			c.addr.port = 0;
			c.prefix = c.addr.family == AF_INET ? 32 : 128;
			r = guard_push(v, n, cap, GUARD_ALLOW_MAX, &c);
			found = r >= 0;
		}
		dns_answer_free(&ans);
		if (r < 0)
			return r;
	}
	return found;
}

int
guard_allow_build(const struct guard_cfg *cfg, const struct dns_options *dns, struct net_cidr **out,
                  size_t *n, char *unresolved, size_t unresolved_len)
{
	_cleanup_free_ struct net_cidr *v = NULL;
	_cleanup_(dns_resolver_freep) struct dns_resolver *res = NULL;
	size_t cnt = 0, cap = 0;
	struct net_cidr lo4, lo6;
	int r = net_cidr_parse("127.0.0.0/8", &lo4);
	if (r >= 0 && (r = net_cidr_parse("::1/128", &lo6)) >= 0 &&
	    (r = guard_push(&v, &cnt, &cap, GUARD_ALLOW_MAX, &lo4)) >= 0)
		r = guard_push(&v, &cnt, &cap, GUARD_ALLOW_MAX, &lo6);
	if (r >= 0)
		r = guard_allow_own(&v, &cnt, &cap);
	if (unresolved_len)
		unresolved[0] = 0;
	for (size_t i = 0; r >= 0 && i < cfg->whitelist.n; i++) {
		const char *w = ((char **)cfg->whitelist.items)[i];
		struct net_cidr c;
		if (net_cidr_parse(w, &c) >= 0) {
			r = guard_push(&v, &cnt, &cap, GUARD_ALLOW_MAX, &c);
			continue;
		}
		char *err = NULL;
		if (!res && (r = dns_resolver_open(dns, &res, &err)) < 0) {
			free(err);
			break;
		}
		r = guard_allow_name(res, w, &v, &cnt, &cap);
		if (r == 0 && unresolved_len && !unresolved[0])
			snprintf(unresolved, unresolved_len, "%s", w);
	}
	if (r < 0)
		return r;
	*out = TAKE_PTR(v);
	*n = cnt;
	return 0;
}
