/* guard's nftables table, written as nft command text run through libnftables. */
#include "guard_nft.h"

#include "core/buf.h"
#include "core/cleanup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T "inet " GUARD_NFT_TABLE
/* Room for one element's text: an IPv6 CIDR and a timeout like "3650d23h59m59s999ms". */
#define ELEM_TEXT_MAX 96
#define CMD_FIXED_MAX (256u * 1024)
#define NAMES_MAX 8192
#define NAME_MAX_LEN 64

struct guard_nft {
	struct nft_ctx *ctx;
	unsigned v6_prefix;
	char err[GUARD_NFT_ERROR_MAX];
};

/*
 * Sets whose elements outlive guard_nft_setup: bans, trust and the blocklist. The blocklist
 * and the bans wider than a host are one plain hash set per family and prefix length
 * (block4_24, bannet4_24: /24 networks, matched as `ip saddr & 255.255.255.0`), not interval
 * sets: nft 1.0.6 reads every interval set's elements back from the kernel before any `add
 * element`, anywhere, so a 100,000-prefix interval set made every ban take 0.6 s
 * (bench/README.md, "guard restore"); and an interval set refuses a ban overlapping another
 * (or merges it, timeout and all), where two bans of different lengths must each keep theirs.
 * The interval sets bannet4 and bannet6 of earlier versions are not kept: setup deletes them,
 * and the daemon puts the stored bans back after setup.
 */
static const char *const kept_sets[] = {"ban4", "ban6", "trust4", "trust6"};

static const char kept_defs[] = "add table " T "\n"
                                "add set " T " ban4 { type ipv4_addr; flags timeout; }\n"
                                "add set " T " ban6 { type ipv6_addr; flags timeout; }\n"
                                "add set " T " trust4 { type ipv4_addr; flags timeout; }\n"
                                "add set " T " trust6 { type ipv6_addr; flags timeout; }\n";

int
guard_nft_new(struct guard_nft **out)
{
	_cleanup_free_ struct guard_nft *n = calloc(1, sizeof(*n));

	if (!out)
		return -EINVAL;
	if (!n)
		return -ENOMEM;
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx)
		return -ENOMEM;
	if (nft_ctx_buffer_output(n->ctx) < 0 || nft_ctx_buffer_error(n->ctx) < 0) {
		nft_ctx_free(n->ctx);
		return -ENOMEM;
	}
	n->v6_prefix = 64;
	*out = TAKE_PTR(n);
	return 0;
}

void
guard_nft_free(struct guard_nft *n)
{
	if (!n)
		return;
	nft_ctx_free(n->ctx);
	free(n);
}

const char *
guard_nft_error(const struct guard_nft *n)
{
	return n ? n->err : "";
}

/* nft reports the kernel's errno only as strerror text inside its message. */
static int
errno_of_message(const char *msg)
{
	static const int known[] = {EPERM,      EACCES, ENOENT,   EEXIST,  EBUSY,  ENOSPC,   ENOMEM,
	                            EOPNOTSUPP, E2BIG,  EMSGSIZE, ENOBUFS, ERANGE, EOVERFLOW};

	if (strstr(msg, "overlaps"))
		return -EEXIST;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strstr(msg, strerror(known[i])))
			return -known[i];
	return -EINVAL;
}

/* Keeps the start of nft's message on one line: the echo of a long element list is cut. */
static void
keep_error(struct guard_nft *n, const char *msg)
{
	size_t j = 0;

	for (size_t i = 0; msg[i] && j + 1 < sizeof(n->err); i++)
		n->err[j++] = (msg[i] == '\n' || msg[i] == '\t') ? ' ' : msg[i];
	while (j > 0 && n->err[j - 1] == ' ')
		j--;
	n->err[j] = '\0';
}

static int
run(struct guard_nft *n, const struct buf *cmd)
{
	n->err[0] = '\0';
	int r = nft_run_cmd_from_buffer(n->ctx, buf_cstr(cmd));
	const char *msg = nft_ctx_get_error_buffer(n->ctx);
	if (r == 0)
		return 0;
	if (!msg || !*msg)
		msg = "nft failed without a message";
	keep_error(n, msg);
	return errno_of_message(msg);
}

static unsigned
family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

/* Valid: a known family, prefix in range, no host bits, no port. */
static bool
cidr_ok(const struct net_cidr *c)
{
	unsigned bits = family_bits(c->addr.family);
	struct net_addr m = c->addr;

	if (bits == 0 || c->prefix > bits || c->addr.port != 0)
		return false;
	if (net_addr_mask(&m, c->prefix) < 0)
		return false;
	return memcmp(m.u.bytes, c->addr.u.bytes, bits / 8) == 0;
}

/* ::ffff:a.b.c.d/P (P >= 96) is the IPv4 a.b.c.d/(P-96): that is how it arrives on the wire. */
static struct net_cidr
unmap(const struct net_cidr *c)
{
	struct net_cidr r = *c;

	if (c->addr.family == AF_INET6 && c->prefix >= 96 && net_addr_is_v4_mapped(&c->addr)) {
		net_addr_normalize(&r.addr);
		r.prefix = c->prefix - 96;
	}
	return r;
}

static int
rate_check(const struct guard_nft_rate *r)
{
	if (r->nports == 0 || r->nports > GUARD_NFT_PORTS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i] == 0)
			return -EINVAL;
	if (r->seconds == 0 || r->seconds > GUARD_NFT_SECONDS_MAX)
		return -EINVAL;
	if (r->hitcount == 0 || r->hitcount > GUARD_NFT_HITCOUNT_MAX)
		return -EINVAL;
	return 0;
}

int
guard_nft_layout_check(const struct guard_nft_layout *l)
{
	if (!l || l->nrates > GUARD_NFT_RATES_MAX || (l->nrates > 0 && !l->rates))
		return -EINVAL;
	if (l->v6_prefix == 0 || l->v6_prefix > 128)
		return -EINVAL;
	if (l->set_size == 0 || l->set_size > GUARD_NFT_SET_SIZE_MAX)
		return -EINVAL;
	if (l->nallow > GUARD_NFT_ALLOW_MAX || (l->nallow > 0 && !l->allow))
		return -EINVAL;
	for (size_t i = 0; i < l->nrates; i++)
		if (rate_check(&l->rates[i]) < 0)
			return -EINVAL;
	for (size_t i = 0; i < l->nallow; i++)
		if (!cidr_ok(&l->allow[i]))
			return -EINVAL;
	return 0;
}

/* "1d2h3m4s5ms": nft refuses a plain millisecond count past 2^31. */
static int
append_timeout(struct buf *b, uint64_t ms)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
	int r = buf_append_str(b, " timeout ");

	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(units); i++) {
		uint64_t q = ms / units[i].ms;
		ms %= units[i].ms;
		if (q > 0)
			r = buf_printf(b, "%llu%s", (unsigned long long)q, units[i].unit);
	}
	return r < 0 ? r : 0;
}

static int
append_cidr(struct buf *b, const struct net_cidr *c)
{
	char text[NET_CIDR_STRLEN];
	int r;

	if (c->prefix == family_bits(c->addr.family))
		r = net_addr_format(&c->addr, false, text, sizeof(text));
	else
		r = net_cidr_format(c, text, sizeof(text));
	if (r < 0)
		return r;
	return buf_append_str(b, text);
}

/* One element list, with timeouts when with_timeout (0 ms: none). */
static int
append_elems(struct buf *b, const char *verb, const char *set, const struct guard_nft_elem *v,
             size_t count, bool with_timeout)
{
	int r = buf_printf(b, "%s element " T " %s { ", verb, set);

	for (size_t i = 0; r >= 0 && i < count; i++) {
		if (i > 0)
			r = buf_append_str(b, ", ");
		if (r >= 0)
			r = append_cidr(b, &v[i].net);
		if (r >= 0 && with_timeout && v[i].timeout_ms > 0)
			r = append_timeout(b, v[i].timeout_ms);
	}
	if (r >= 0)
		r = buf_append_str(b, " }\n");
	return r < 0 ? r : 0;
}

static int
elem_cmp(const void *pa, const void *pb)
{
	const struct guard_nft_elem *a = pa, *b = pb;

	if (a->net.addr.family != b->net.addr.family)
		return a->net.addr.family < b->net.addr.family ? -1 : 1;
	int c = memcmp(a->net.addr.u.bytes, b->net.addr.u.bytes, 16);
	if (c != 0)
		return c;
	if (a->net.prefix != b->net.prefix)
		return a->net.prefix < b->net.prefix ? -1 : 1;
	return 0;
}

static uint64_t
longer_timeout(uint64_t a, uint64_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return a > b ? a : b;
}

/*
 * Sorts, then drops every element inside the one before it (nft refuses overlapping intervals
 * in one list, and the same element twice in a delete); a dropped element's longer timeout
 * goes to the one that covers it. Returns the new count.
 */
static size_t
sort_unique(struct guard_nft_elem *v, size_t count)
{
	size_t out = 0;

	qsort(v, count, sizeof(*v), elem_cmp);
	for (size_t i = 0; i < count; i++) {
		if (out > 0 && net_cidr_match(&v[out - 1].net, &v[i].net.addr) &&
		    v[out - 1].net.addr.family == v[i].net.addr.family) {
			v[out - 1].timeout_ms =
			    longer_timeout(v[out - 1].timeout_ms, v[i].timeout_ms);
			continue;
		}
		v[out++] = v[i];
	}
	return out;
}

/* Element lists: ban4, ban6 and the wider bans of every length (or allow4, allow6). */
enum { G_HOST4, G_HOST6, G_WIDE, G_COUNT };

struct groups {
	struct guard_nft_elem *v[G_COUNT];
	size_t n[G_COUNT];
};

static void
groups_free(struct groups *g)
{
	for (size_t i = 0; i < G_COUNT; i++)
		free(g->v[i]);
}

static int
groups_alloc(struct groups *g, size_t count)
{
	for (size_t i = 0; i < G_COUNT; i++) {
		g->v[i] = calloc(count ? count : 1, sizeof(*g->v[i]));
		if (!g->v[i])
			return -ENOMEM;
	}
	return 0;
}

/* Which set a ban goes to; IPv6 at or past v6_prefix is widened to it. */
static int
classify_ban(const struct guard_nft_elem *in, unsigned v6_prefix, struct guard_nft_elem *out)
{
	if (!cidr_ok(&in->net) || in->timeout_ms > GUARD_NFT_TIMEOUT_MAX_MS)
		return -EINVAL;
	*out = (struct guard_nft_elem){.net = unmap(&in->net), .timeout_ms = in->timeout_ms};
	if (out->net.addr.family == AF_INET)
		return out->net.prefix == 32 ? G_HOST4 : G_WIDE;
	if (out->net.prefix < v6_prefix)
		return G_WIDE;
	net_addr_mask(&out->net.addr, v6_prefix);
	/* ban6 holds masked addresses, matched as `ip6 saddr & mask`: element is a host */
	out->net.prefix = 128;
	return G_HOST6;
}

static size_t
cmd_cap(size_t count)
{
	return CMD_FIXED_MAX + count * 3 * ELEM_TEXT_MAX;
}

/* add + delete (so the delete never misses), then add again with the timeouts when refresh. */
static int
append_replace(struct buf *b, const char *set, const struct guard_nft_elem *v, size_t count,
               bool refresh)
{
	int r = append_elems(b, "add", set, v, count, false);

	if (r >= 0)
		r = append_elems(b, "delete", set, v, count, false);
	if (r >= 0 && refresh)
		r = append_elems(b, "add", set, v, count, true);
	return r;
}

int
guard_nft_trust(struct guard_nft *n, const struct net_addr *a, uint64_t timeout_ms)
{
	_cleanup_buf_ struct buf cmd = BUF_INIT(CMD_FIXED_MAX);
	struct guard_nft_elem e = {.timeout_ms = timeout_ms};

	if (n)
		n->err[0] = '\0';
	if (!n || !a || timeout_ms > GUARD_NFT_TIMEOUT_MAX_MS)
		return -EINVAL;
	e.net.addr = *a;
	e.net.prefix = family_bits(a->family);
	if (!cidr_ok(&e.net))
		return -EINVAL;
	e.net = unmap(&e.net);
	int r =
	    append_replace(&cmd, e.net.addr.family == AF_INET ? "trust4" : "trust6", &e, 1, true);
	return r < 0 ? r : run(n, &cmd);
}

/* ---- what is in the table ---- */

struct names {
	char (*v)[NAME_MAX_LEN];
	size_t n;
	bool chain[NAMES_MAX];
};

static void
names_free(struct names *s)
{
	free(s->v);
}

/* "block4_24" (base "block") -> AF_INET, 24; else 0. */
static int
prefix_set(const char *name, const char *base, unsigned *prefix)
{
	size_t len = strlen(base);
	int family = 0;
	char *end = NULL;

	if (strncmp(name, base, len) != 0)
		return 0;
	name += len;
	family = name[0] == '4' ? AF_INET : name[0] == '6' ? AF_INET6 : 0;
	if (!family || name[1] != '_' || name[2] < '0' || name[2] > '9')
		return 0;
	unsigned long p = strtoul(name + 2, &end, 10);
	if (*end || p > family_bits(family))
		return 0;
	*prefix = (unsigned)p;
	return family;
}

static void
set_name(char *out, size_t size, const char *base, int family, unsigned prefix)
{
	snprintf(out, size, "%s%c_%u", base, family == AF_INET ? '4' : '6', prefix);
}

static bool
is_kept(const char *name)
{
	unsigned prefix;

	for (size_t i = 0; i < ARRAY_SIZE(kept_sets); i++)
		if (strcmp(name, kept_sets[i]) == 0)
			return true;
	return prefix_set(name, "block", &prefix) != 0 || prefix_set(name, "bannet", &prefix) != 0;
}

/* Reads "set NAME {" and "chain NAME {" lines inside "table inet rampart {". */
static int
parse_listing(const char *text, struct names *s)
{
	bool ours = false;

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *q = p + strspn(p, " \t");
		if (strncmp(q, "table ", 6) == 0) {
			ours = strncmp(q, "table " T " {", strlen("table " T " {")) == 0;
			continue;
		}
		bool chain = strncmp(q, "chain ", 6) == 0;
		if (!ours || (!chain && strncmp(q, "set ", 4) != 0))
			continue;
		q += chain ? 6 : 4;
		size_t len = strcspn(q, " \n{");
		if (len == 0 || len >= NAME_MAX_LEN || s->n >= NAMES_MAX)
			return -E2BIG;
		memcpy(s->v[s->n], q, len);
		s->v[s->n][len] = '\0';
		s->chain[s->n++] = chain;
	}
	return 0;
}

/*
 * Names of our table's chains and sets; none when there is no table. Terse listings of sets
 * and chains only: listing the table would read every element back.
 */
static int
list_names(struct guard_nft *n, struct names *s)
{
	static const char *const cmds[] = {"list sets table " T "\n", "list chains inet\n"};
	unsigned flags = nft_ctx_output_get_flags(n->ctx);
	int r = 0;

	s->v = calloc(NAMES_MAX, sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	nft_ctx_output_set_flags(n->ctx, flags | NFT_CTX_OUTPUT_TERSE);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(cmds); i++) {
		/* no table yet: setup's own errors tell the rest */
		if (nft_run_cmd_from_buffer(n->ctx, cmds[i]) != 0)
			break;
		r = parse_listing(nft_ctx_get_output_buffer(n->ctx), s);
	}
	nft_ctx_output_set_flags(n->ctx, flags);
	return r;
}

static int
append_mask(struct buf *b, int family, unsigned prefix)
{
	struct net_addr m = {.family = family};
	char text[INET6_ADDRSTRLEN];

	memset(m.u.bytes, 0xff, 16);
	net_addr_mask(&m, prefix);
	if (!inet_ntop(family, m.u.bytes, text, sizeof(text)))
		return -EINVAL;
	return buf_printf(b, " & %s ==", text);
}

/* `ip saddr & MASK == @SET drop` (no mask for a whole address). */
static int
append_masked_drop(struct buf *b, const char *chain, int family, unsigned prefix, const char *set)
{
	int r = buf_printf(b, "add rule " T " %s %s", chain,
	                   family == AF_INET ? "ip saddr" : "ip6 saddr");

	if (r >= 0 && prefix < family_bits(family))
		r = append_mask(b, family, prefix);
	return r < 0 ? r : buf_printf(b, " @%s drop\n", set);
}

/* Chain base's rules, one per set named base4_LEN or base6_LEN in s (block, bannet). */
static int
append_set_rules(struct buf *b, const struct names *s, const char *base)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->n; i++) {
		unsigned prefix;
		int family = s->chain[i] ? 0 : prefix_set(s->v[i], base, &prefix);
		if (family)
			r = append_masked_drop(b, base, family, prefix, s->v[i]);
	}
	return r;
}

/* Groups of one family and prefix length, as sort_unique leaves them, to sets and rules. */
static int
append_block_sets(struct buf *b, struct guard_nft_elem *v, size_t count)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < count;) {
		size_t j = i;
		int family = v[i].net.addr.family;
		unsigned prefix = v[i].net.prefix;
		char set[NAME_MAX_LEN];
		/* as elements of a plain set, networks are their masked addresses */
		for (; j < count && v[j].net.addr.family == family && v[j].net.prefix == prefix;
		     j++)
			;
		set_name(set, sizeof(set), "block", family, prefix);
		r = buf_printf(b, "add set " T " %s { type %s; }\n", set,
		               family == AF_INET ? "ipv4_addr" : "ipv6_addr");
		for (size_t k = i; r >= 0 && k < j; k++)
			v[k].net.prefix = family_bits(family);
		if (r >= 0)
			r = append_elems(b, "add", set, v + i, j - i, false);
		for (size_t k = i; k < j; k++)
			v[k].net.prefix = prefix;
		if (r >= 0)
			r = append_masked_drop(b, "block", family, prefix, set);
		i = j;
	}
	return r;
}

static int
prefix_cmp(const void *pa, const void *pb)
{
	const struct guard_nft_elem *a = pa, *b = pb;

	if (a->net.addr.family != b->net.addr.family)
		return a->net.addr.family < b->net.addr.family ? -1 : 1;
	if (a->net.prefix != b->net.prefix)
		return a->net.prefix < b->net.prefix ? -1 : 1;
	return memcmp(a->net.addr.u.bytes, b->net.addr.u.bytes, 16);
}

int
guard_nft_blocklist(struct guard_nft *n, const struct net_cidr *v, size_t count)
{
	_cleanup_free_ struct guard_nft_elem *e = NULL;
	_cleanup_(names_free) struct names s = {0};
	_cleanup_buf_ struct buf cmd = BUF_INIT(cmd_cap(count));
	int r;

	if (n)
		n->err[0] = '\0';
	if (!n || (count > 0 && !v) || count > GUARD_NFT_ELEMS_MAX)
		return -EINVAL;
	e = calloc(count ? count : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		if (!cidr_ok(&v[i]))
			return -EINVAL;
		e[i].net = unmap(&v[i]);
	}
	count = sort_unique(e, count);
	qsort(e, count, sizeof(*e), prefix_cmp);
	r = list_names(n, &s);
	if (r >= 0)
		r = buf_append_str(&cmd, "flush chain " T " block\n");
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		unsigned prefix;
		if (!s.chain[i] && prefix_set(s.v[i], "block", &prefix))
			r = buf_printf(&cmd, "delete set " T " %s\n", s.v[i]);
	}
	if (r >= 0)
		r = append_block_sets(&cmd, e, count);
	return r < 0 ? r : run(n, &cmd);
}

/* ---- bans ---- */

static bool
names_has(const struct names *s, bool chain, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->chain[i] == chain && strcmp(s->v[i], name) == 0)
			return true;
	return false;
}

/*
 * The wide bans of one family and prefix length (sorted, deduplicated) into bannet4_LEN or
 * bannet6_LEN; a ban makes the set and its drop rule when s says the set is not there yet.
 */
static int
append_wide_set(struct buf *b, const struct names *s, struct guard_nft_elem *v, size_t count,
                bool ban)
{
	int family = v[0].net.addr.family;
	unsigned prefix = v[0].net.prefix;
	char set[NAME_MAX_LEN];
	int r = 0;

	set_name(set, sizeof(set), "bannet", family, prefix);
	bool exists = names_has(s, false, set);
	if (!exists && !ban)
		return 0;
	if (!exists)
		r = buf_printf(b, "add set " T " %s { type %s; flags timeout; }\n", set,
		               family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	if (r >= 0 && !exists)
		r = append_masked_drop(b, "bannet", family, prefix, set);
	/* as elements of a plain set, networks are their masked addresses */
	for (size_t k = 0; k < count; k++)
		v[k].net.prefix = family_bits(family);
	return r < 0 ? r : append_replace(b, set, v, count, ban);
}

/* Only a request with a wide ban lists the table: the host path stays one transaction. */
static int
append_wide(struct guard_nft *n, struct buf *b, struct guard_nft_elem *v, size_t count, bool ban)
{
	_cleanup_(names_free) struct names s = {0};
	int r = list_names(n, &s);

	if (r < 0)
		return r;
	/* no table, or one an earlier version made: the caller sets it up, then bans again */
	if (ban && !names_has(&s, true, "bannet")) {
		keep_error(n, "table " T " has no chain bannet: No such file or directory");
		return -ENOENT;
	}
	qsort(v, count, sizeof(*v), prefix_cmp);
	for (size_t i = 0; r >= 0 && i < count;) {
		size_t j = i + 1;
		for (; j < count && v[j].net.addr.family == v[i].net.addr.family &&
		       v[j].net.prefix == v[i].net.prefix;
		     j++)
			;
		r = append_wide_set(b, &s, v + i, sort_unique(v + i, j - i), ban);
		i = j;
	}
	return r;
}

static const char *const host_sets[2] = {"ban4", "ban6"};

static int
ban_or_unban(struct guard_nft *n, const struct guard_nft_elem *v, size_t count, bool ban)
{
	_cleanup_(groups_free) struct groups g = {0};
	_cleanup_buf_ struct buf cmd = BUF_INIT(cmd_cap(count));
	int r;

	if (n)
		n->err[0] = '\0';
	if (!n || (count > 0 && !v) || count > GUARD_NFT_ELEMS_MAX)
		return -EINVAL;
	if (count == 0)
		return 0;
	r = groups_alloc(&g, count);
	for (size_t i = 0; r >= 0 && i < count; i++) {
		struct guard_nft_elem e;
		int k = classify_ban(&v[i], n->v6_prefix, &e);
		if (k < 0)
			return k;
		g.v[k][g.n[k]++] = e;
		/* banned before a setup made v6_prefix this short, it is in bannet6_LEN */
		struct net_cidr u = unmap(&v[i].net);
		if (!ban && k == G_HOST6 && u.prefix < 128)
			g.v[G_WIDE][g.n[G_WIDE]++] = (struct guard_nft_elem){.net = u};
	}
	for (size_t k = G_HOST4; r >= 0 && k <= G_HOST6; k++) {
		g.n[k] = sort_unique(g.v[k], g.n[k]);
		if (g.n[k] > 0)
			r = append_replace(&cmd, host_sets[k], g.v[k], g.n[k], ban);
	}
	if (r >= 0 && g.n[G_WIDE] > 0)
		r = append_wide(n, &cmd, g.v[G_WIDE], g.n[G_WIDE], ban);
	if (r < 0 || cmd.len == 0)
		return r;
	return run(n, &cmd);
}

int
guard_nft_ban(struct guard_nft *n, const struct guard_nft_elem *v, size_t count)
{
	return ban_or_unban(n, v, count, true);
}

int
guard_nft_unban(struct guard_nft *n, const struct net_cidr *v, size_t count)
{
	_cleanup_free_ struct guard_nft_elem *e = NULL;

	if (n)
		n->err[0] = '\0';
	if (!n || (count > 0 && !v) || count > GUARD_NFT_ELEMS_MAX)
		return -EINVAL;
	if (count == 0)
		return 0;
	e = calloc(count, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		e[i].net = v[i];
	return ban_or_unban(n, e, count, false);
}

/* ---- setup ---- */

int
guard_nft_remove(struct guard_nft *n)
{
	_cleanup_buf_ struct buf cmd = BUF_INIT(256);

	if (n)
		n->err[0] = '\0';
	if (!n)
		return -EINVAL;
	int r = buf_append_str(&cmd, "delete table " T "\n");
	return r < 0 ? r : run(n, &cmd);
}

static int
append_teardown(struct buf *b, const struct names *s)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->n; i++)
		if (s->chain[i])
			r = buf_printf(b, "flush chain " T " %s\n", s->v[i]);
	for (size_t i = 0; r >= 0 && i < s->n; i++)
		if (s->chain[i])
			r = buf_printf(b, "delete chain " T " %s\n", s->v[i]);
	for (size_t i = 0; r >= 0 && i < s->n; i++)
		if (!s->chain[i] && !is_kept(s->v[i]))
			r = buf_printf(b, "delete set " T " %s\n", s->v[i]);
	return r;
}

static int
append_allow(struct buf *b, const struct guard_nft_layout *l)
{
	_cleanup_(groups_free) struct groups g = {0};
	int r = groups_alloc(&g, l->nallow);

	if (r >= 0)
		r = buf_append_str(b, "add set " T " allow4 { type ipv4_addr; flags interval; "
		                      "auto-merge; }\n"
		                      "add set " T " allow6 { type ipv6_addr; flags interval; "
		                      "auto-merge; }\n");
	for (size_t i = 0; r >= 0 && i < l->nallow; i++) {
		struct net_cidr c = unmap(&l->allow[i]);
		size_t k = c.addr.family == AF_INET ? 0 : 1;
		g.v[k][g.n[k]++] = (struct guard_nft_elem){.net = c};
	}
	for (size_t k = 0; r >= 0 && k < 2; k++) {
		g.n[k] = sort_unique(g.v[k], g.n[k]);
		if (g.n[k] > 0)
			r = append_elems(b, "add", k == 0 ? "allow4" : "allow6", g.v[k], g.n[k],
			                 false);
	}
	return r;
}

struct fam {
	const char *tag;   /* in names: "v4" */
	const char *proto; /* meta nfproto */
	const char *type;  /* set type */
	const char *saddr; /* match expression */
};

static const struct fam fams[2] = {{"v4", "ipv4", "ipv4_addr", "ip saddr"},
                                   {"v6", "ipv6", "ipv6_addr", "ip6 saddr"}};

static int
append_ports(struct buf *b, const struct guard_nft_rate *rt)
{
	if (rt->nports == 1)
		return buf_printf(b, "tcp dport %u", rt->ports[0]);
	int r = buf_append_str(b, "tcp dport { ");
	for (size_t i = 0; r >= 0 && i < rt->nports; i++)
		r = buf_printf(b, "%s%u", i ? ", " : "", rt->ports[i]);
	return r < 0 ? r : buf_append_str(b, " }");
}

/*
 * One rate entry for one family: slot sets s0..s{H-1} hold a source's last H new connections
 * (timeout S each), cursor c_i says slot i is the next to overwrite (none: slot 0). A source
 * in every slot had H connections within S: xt_recent's --update matches. Either way the new
 * connection overwrites the oldest slot, as xt_recent adds a stamp on --set and --update.
 */
static int
append_rate(struct buf *b, size_t g, const struct fam *f, const struct guard_nft_rate *rt,
            uint32_t size)
{
	unsigned h = rt->hitcount;
	const char *sa = f->saddr;
	int r = 0;

	for (unsigned i = 0; r >= 0 && i < h; i++)
		r = buf_printf(b,
		               "add set " T " rate%zu_%s_s%u { type %s; flags dynamic,timeout; "
		               "timeout %us; size %u; }\n",
		               g, f->tag, i, f->type, rt->seconds, size);
	for (unsigned i = 1; r >= 0 && i < h; i++)
		r = buf_printf(b,
		               "add set " T " rate%zu_%s_c%u { type %s; flags dynamic,timeout; "
		               "timeout %us; size %u; }\n",
		               g, f->tag, i, f->type, rt->seconds, size);
	if (r >= 0)
		r = buf_printf(b, "add chain " T " rate%zu_%s_rec\n", g, f->tag);
	for (unsigned i = 1; r >= 0 && i < h; i++) {
		r = buf_printf(b,
		               "add rule " T " rate%zu_%s_rec %s @rate%zu_%s_c%u update "
		               "@rate%zu_%s_s%u { %s } delete @rate%zu_%s_c%u { %s }",
		               g, f->tag, sa, g, f->tag, i, g, f->tag, i, sa, g, f->tag, i, sa);
		if (r >= 0 && i + 1 < h)
			r = buf_printf(b, " update @rate%zu_%s_c%u { %s }", g, f->tag, i + 1, sa);
		if (r >= 0)
			r = buf_append_str(b, " return\n");
	}
	if (r >= 0)
		r = buf_printf(b, "add rule " T " rate%zu_%s_rec update @rate%zu_%s_s0 { %s }", g,
		               f->tag, g, f->tag, sa);
	if (r >= 0 && h > 1)
		r = buf_printf(b, " update @rate%zu_%s_c1 { %s }", g, f->tag, sa);
	if (r >= 0)
		r = buf_printf(b,
		               "\nadd chain " T " rate%zu_%s_drop\n"
		               "add rule " T " rate%zu_%s_drop jump rate%zu_%s_rec\n"
		               "add rule " T " rate%zu_%s_drop drop\n",
		               g, f->tag, g, f->tag, g, f->tag, g, f->tag);
	return r;
}

/* The input chain's two rules for one rate entry and family. */
static int
append_rate_rules(struct buf *b, size_t g, const struct fam *f, const struct guard_nft_rate *rt)
{
	for (int drop = 1; drop >= 0; drop--) {
		int r = buf_append_str(b, "add rule " T " input ");
		if (r >= 0)
			r = append_ports(b, rt);
		/* the family test matters: the jump's chain keys on saddr at the v4 or v6 offset */
		if (r >= 0)
			r = buf_printf(b, " ct state new meta nfproto %s", f->proto);
		for (unsigned i = 0; r >= 0 && drop && i < rt->hitcount; i++)
			r = buf_printf(b, " %s @rate%zu_%s_s%u", f->saddr, g, f->tag, i);
		if (r >= 0)
			r = buf_printf(b, " %s rate%zu_%s_%s\n", drop ? "goto" : "jump", g, f->tag,
			               drop ? "drop" : "rec");
		if (r < 0)
			return r;
	}
	return 0;
}

/* allow and trust return; bans, then the blocklist, drop; then the rate rules. */
static int
append_input(struct buf *b, const struct guard_nft_layout *l)
{
	int r = buf_append_str(b, "add chain " T " input { type filter hook input priority "
	                          "filter - 10; policy accept; }\n"
	                          "add rule " T " input ip saddr @allow4 return\n"
	                          "add rule " T " input ip6 saddr @allow6 return\n"
	                          "add rule " T " input ip saddr @trust4 return\n"
	                          "add rule " T " input ip6 saddr @trust6 return\n"
	                          "add rule " T " input ip saddr @ban4 drop\n");
	if (r >= 0)
		r = append_masked_drop(b, "input", AF_INET6, l->v6_prefix, "ban6");
	if (r >= 0)
		r = buf_append_str(b, "add rule " T " input jump bannet\n"
		                      "add rule " T " input jump block\n");
	for (size_t g = 0; r >= 0 && g < l->nrates; g++)
		for (size_t k = 0; r >= 0 && k < 2; k++)
			r = append_rate_rules(b, g, &fams[k], &l->rates[g]);
	return r;
}

int
guard_nft_setup(struct guard_nft *n, const struct guard_nft_layout *l)
{
	_cleanup_(names_free) struct names s = {0};
	_cleanup_buf_ struct buf cmd = BUF_INIT(cmd_cap(l ? l->nallow : 0) + CMD_FIXED_MAX * 4);
	int r;

	if (n)
		n->err[0] = '\0';
	if (!n || guard_nft_layout_check(l) < 0)
		return -EINVAL;
	r = list_names(n, &s);
	if (r >= 0)
		r = buf_append_str(&cmd, kept_defs);
	if (r >= 0)
		r = append_teardown(&cmd, &s);
	if (r >= 0)
		r = buf_append_str(&cmd, "add chain " T " block\n");
	if (r >= 0)
		r = append_set_rules(&cmd, &s, "block");
	if (r >= 0)
		r = buf_append_str(&cmd, "add chain " T " bannet\n");
	if (r >= 0)
		r = append_set_rules(&cmd, &s, "bannet");
	if (r >= 0)
		r = append_allow(&cmd, l);
	for (size_t g = 0; r >= 0 && g < l->nrates; g++)
		for (size_t k = 0; r >= 0 && k < 2; k++)
			r = append_rate(&cmd, g, &fams[k], &l->rates[g], l->set_size);
	if (r >= 0)
		r = append_input(&cmd, l);
	if (r >= 0)
		r = run(n, &cmd);
	if (r >= 0)
		n->v6_prefix = l->v6_prefix;
	return r;
}
