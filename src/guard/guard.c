#include "guard.h"

#include "core/cleanup.h"
#include "core/log.h"
#include "guard_match.h"
#include "guard_policy.h"
#include "guard_score.h"
#include "guard_share.h"
#include "guard_source.h"
#include "guard_store.h"
#include "guard_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUARD_SOURCES_MAX 32
#define GUARD_TRACKED_MAX 100000
#define GUARD_TRUSTED_MAX 4096
#define GUARD_SWEEP_NS (60ull * 1000000000)

struct guard_trusted {
	struct net_addr addr;
	int64_t until_ms;
};

struct guard_counters {
	uint64_t lines, events, logins, bans, would_ban, spared, ban_errors;
};

struct guard {
	struct ev_loop *loop;
	struct guard_cfg cfg;
	unsigned flags; /* GUARD_MATCH_* */
	struct guard_store *store;
	struct guard_writer *writer; /* NULL in observe mode */
	struct guard_score *score;
	struct guard_source *sources[GUARD_SOURCES_MAX];
	size_t nsources;
	struct net_cidr *allow;
	size_t nallow;
	struct guard_trusted *trusted;
	size_t ntrusted;
	struct ev_timer sweep;
	struct guard_counters c;
	size_t blocklisted;
	struct guard_share *share; /* guard.share: NULL when not configured */
};

static void
guard_format(const struct net_cidr *c, char *buf, size_t len)
{
	bool host = c->prefix == (c->addr.family == AF_INET ? 32u : 128u);
	if (host ? net_addr_format(&c->addr, false, buf, len) < 0
	         : net_cidr_format(c, buf, len) < 0)
		snprintf(buf, len, "?");
}

static void
guard_format_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "permanent");
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else
		snprintf(buf, len, "%llus", (unsigned long long)((ms + 999) / 1000));
}

/* --- trust: sources that logged in ------------------------------------------------------ */

static struct guard_trusted *
guard_trust_find(struct guard *g, const struct net_addr *a, int64_t now)
{
	for (size_t i = 0; i < g->ntrusted; i++)
		if (g->trusted[i].until_ms > now && net_addr_equal(&g->trusted[i].addr, a))
			return &g->trusted[i];
	return NULL;
}

static void
guard_trust_prune(struct guard *g, int64_t now)
{
	size_t w = 0;
	for (size_t i = 0; i < g->ntrusted; i++)
		if (g->trusted[i].until_ms > now)
			g->trusted[w++] = g->trusted[i];
	g->ntrusted = w;
}

static void
guard_trust(struct guard *g, const struct net_addr *a, int64_t now)
{
	char addr[NET_ADDR_STRLEN], len[32];
	struct guard_trusted *t = guard_trust_find(g, a, now);
	if (!g->cfg.trust_ms)
		return;
	if (!t) {
		guard_trust_prune(g, now);
		if (g->ntrusted == GUARD_TRUSTED_MAX) /* the oldest trust ends first */
			memmove(g->trusted, g->trusted + 1, --g->ntrusted * sizeof(*g->trusted));
		t = &g->trusted[g->ntrusted++];
		t->addr = *a;
		net_addr_format(a, false, addr, sizeof(addr));
		guard_format_ms(g->cfg.trust_ms, len, sizeof(len));
		log_info("guard: trusting source=%s for=%s reason=logged-in", addr, len);
	}
	t->until_ms = now + (int64_t)g->cfg.trust_ms;
	int r = g->store ? guard_store_trust(g->store, a, t->until_ms, now) : 0;
	if (r < 0)
		log_error("guard: cannot record a logged-in source error=\"%s\"", strerror(-r));
	r = g->writer ? guard_writer_trust(g->writer, a, g->cfg.trust_ms) : 0;
	if (r < 0)
		log_error("guard: cannot exempt a logged-in source error=\"%s\"", strerror(-r));
}

/* --- bans -------------------------------------------------------------------------------- */

static int
guard_apply(struct guard *g, const struct guard_ban *b, int64_t now)
{
	struct guard_nft_elem e = {.net = b->net};
	if (b->expires_ms)
		e.timeout_ms =
		    b->expires_ms > now ? guard_timeout_cap((uint64_t)(b->expires_ms - now)) : 1;
	int64_t seq = 0;
	int r = guard_store_ban_seq(g->store, b, &seq);
	if (r >= 0)
		r = guard_writer_ban(g->writer, &e, 1);
	if (r >= 0)
		guard_share_publish(g->share, b, false, seq);
	return r;
}

static void
guard_ban(struct guard *g, const struct net_cidr *key, const struct guard_event *ev, uint64_t sum,
          int64_t now)
{
	char src[NET_CIDR_STRLEN], len[32];
	struct guard_ban prev, b = {.net = *key, .created_ms = now, .count = 1};
	guard_format(key, src, sizeof(src));
	int had = g->store ? guard_store_get(g->store, key, &prev) : 0;
	if (had > 0 && (prev.expires_ms == 0 || prev.expires_ms > now) && prev.count) {
		log_debug("guard: already banned source=%s", src);
		return;
	}
	if (had > 0)
		b.count = prev.count + 1;
	uint64_t ms = guard_ban_length(&g->cfg.ban, b.count);
	b.expires_ms = ms ? now + (int64_t)ms : 0;
	snprintf(b.reason, sizeof(b.reason), "%s danger=%llu", ev->what, (unsigned long long)sum);
	b.share = g->cfg.share.enabled;
	guard_format_ms(ms, len, sizeof(len));
	if (!g->writer) {
		g->c.would_ban++;
		log_info("guard: would ban source=%s for=%s count=%u danger=%llu last=%s (observe)",
		         src, len, b.count, (unsigned long long)sum, ev->what);
		return;
	}
	int r = guard_apply(g, &b, now);
	if (r < 0) {
		g->c.ban_errors++;
		log_error("guard: cannot ban source=%s error=\"%s\"", src, strerror(-r));
		return;
	}
	g->c.bans++;
	size_t killed = 0;
	r = g->cfg.kill_connections ? guard_writer_kill(g->writer, key, 1, &killed) : 0;
	if (r < 0)
		log_warn("guard: cannot close the connections of source=%s error=\"%s\"", src,
		         strerror(-r));
	char closed[32] = "";
	if (g->cfg.kill_connections && r >= 0)
		snprintf(closed, sizeof(closed), " closed=%zu", killed);
	log_info("guard: banned source=%s for=%s count=%u danger=%llu last=%s%s", src, len, b.count,
	         (unsigned long long)sum, ev->what, closed);
}

static void
guard_on_event(struct guard *g, const struct guard_event *ev)
{
	int64_t now = guard_now_ms();
	struct net_cidr key;
	uint64_t sum = 0;
	char src[NET_ADDR_STRLEN];

	g->c.events++;
	if (ev->kind == GUARD_EV_LOGIN) {
		g->c.logins++;
		guard_trust(g, &ev->addr, now);
		return;
	}
	guard_key(&g->cfg, &ev->addr, &key);
	int r = guard_score_add(g->score, &key, ev->danger, (uint64_t)now, &sum);
	net_addr_format(&ev->addr, false, src, sizeof(src));
	log_debug("guard: event source=%s what=%s danger=%u sum=%llu", src, ev->what, ev->danger,
	          (unsigned long long)sum);
	if (r <= 0)
		return;
	const char *why = guard_allow_match(g->allow, g->nallow, &ev->addr) ? "whitelisted"
	                  : guard_trust_find(g, &ev->addr, now)             ? "logged-in"
	                                                                    : NULL;
	if (why) {
		g->c.spared++;
		log_info("guard: not banning source=%s reason=%s danger=%llu last=%s", src, why,
		         (unsigned long long)sum, ev->what);
		return;
	}
	guard_ban(g, &key, ev, sum, now);
}

static void
guard_on_line(const struct guard_line *line, const char *raw, size_t raw_len, void *data)
{
	struct guard *g = data;
	struct guard_line split;
	struct guard_event ev;
	g->c.lines++;
	if (!line || !line->msg) {
		if (!raw || guard_match_split(raw, raw_len, &split) < 0)
			return;
		line = &split;
	}
	if (guard_match(line, g->flags, &ev) > 0)
		guard_on_event(g, &ev);
}

/* --- start, reload, stop ------------------------------------------------------------------ */

struct guard_restore {
	struct guard_nft_elem *v;
	size_t n, cap;
	int64_t now;
	size_t v4, v6;
};

static int
guard_restore_one(const struct guard_ban *b, void *data)
{
	struct guard_restore *rs = data;
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 1024;
		struct guard_nft_elem *nv = reallocarray(rs->v, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rs->v = nv;
		rs->cap = ncap;
	}
	struct guard_nft_elem *e = &rs->v[rs->n++];
	*e = (struct guard_nft_elem){.net = b->net};
	/* nftables' longest timeout: a row further out (an old or forged one) still restores */
	if (b->expires_ms)
		e->timeout_ms = guard_timeout_cap((uint64_t)(b->expires_ms - rs->now));
	*(b->net.addr.family == AF_INET ? &rs->v4 : &rs->v6) += 1;
	return 0;
}

static int
guard_restore_trusted(const struct net_addr *a, int64_t until_ms, void *data)
{
	struct guard *g = data;
	int64_t now = guard_now_ms();
	if (g->ntrusted == GUARD_TRUSTED_MAX || until_ms <= now)
		return 0;
	g->trusted[g->ntrusted++] = (struct guard_trusted){.addr = *a, .until_ms = until_ms};
	return g->writer ? guard_writer_trust(g->writer, a, (uint64_t)(until_ms - now)) : 0;
}

/* Every ban still active goes back into the sets with the time it has left, in one go. */
static int
guard_restore(struct guard *g)
{
	struct guard_restore rs = {.now = guard_now_ms()};
	uint64_t t0 = ev_clock_ns();
	int r = guard_store_each_active(g->store, rs.now, guard_restore_one, &rs);
	if (r >= 0 && rs.n && g->writer)
		r = guard_writer_ban(g->writer, rs.v, rs.n);
	free(rs.v);
	if (r >= 0 && g->cfg.trust_ms)
		r = guard_store_each_trusted(g->store, rs.now, guard_restore_trusted, g);
	if (r >= 0 && rs.n)
		log_info("guard: restored bans=%zu ipv4=%zu ipv6=%zu ms=%llu%s", rs.n, rs.v4, rs.v6,
		         (unsigned long long)((ev_clock_ns() - t0) / 1000000),
		         g->writer ? "" : " (observe: not applied)");
	return r;
}

struct guard_blocklist {
	struct net_cidr *v;
	size_t n, cap;
};

/* Reads every blocklist file of cfg; nothing is applied yet, so a bad file changes nothing. */
static int
guard_blocklists_read(const struct guard_cfg *cfg, struct guard_blocklist *bl, char *why,
                      size_t whylen)
{
	for (size_t i = 0; i < cfg->blocklists.n; i++) {
		const char *path = ((char **)cfg->blocklists.items)[i];
		size_t bad, bad_line;
		int r = guard_blocklist_read(path, &bl->v, &bl->n, &bl->cap, &bad, &bad_line);
		if (r < 0) {
			snprintf(why, whylen, "blocklist %s: %s", path, strerror(-r));
			return r;
		}
		if (bad)
			log_warn("guard: blocklist lines skipped file=%s count=%zu first_line=%zu",
			         path, bad, bad_line);
	}
	return 0;
}

static int
guard_blocklists_apply(struct guard *g, const struct guard_cfg *cfg,
                       const struct guard_blocklist *bl, char *why, size_t whylen)
{
	if (!cfg->blocklists.n && !g->blocklisted)
		return 0;
	int r = g->writer ? guard_writer_blocklist(g->writer, bl->v, bl->n) : 0;
	if (r < 0) {
		snprintf(why, whylen, "cannot load the blocklists: %s", strerror(-r));
		return r;
	}
	g->blocklisted = bl->n;
	log_info("guard: blocklists loaded files=%zu prefixes=%zu%s", cfg->blocklists.n, bl->n,
	         g->writer ? "" : " (observe: not applied)");
	return 0;
}

static void
guard_sources_free(struct guard_source **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		guard_source_free(v[i]);
}

/* Opens every source of cfg into v (*n of them); on failure none stays open. */
static int
guard_sources_open(struct guard *g, const struct guard_cfg *cfg, struct guard_source **v, size_t *n,
                   char *why, size_t whylen)
{
	*n = 0;
	for (size_t i = 0; i < cfg->sources.n && i < GUARD_SOURCES_MAX; i++) {
		const struct guard_source_cfg *s =
		    &((struct guard_source_cfg *)cfg->sources.items)[i];
		const char *idents[] = {s->match ? s->match : "sshd", NULL};
		bool file = s->type == GUARD_SOURCE_FILE;
		int r = file ? guard_source_file_new(g->loop, s->path, guard_on_line, g, &v[*n])
		             : guard_source_journal_new(g->loop, s->directory, idents,
		                                        guard_on_line, g, &v[*n]);
		if (r < 0 && !file) {
			/* a machine without journald still has its files */
			log_warn(
			    "guard: cannot read the journal, source skipped match=%s error=\"%s\"",
			    idents[0], strerror(-r));
			continue;
		}
		if (r < 0) {
			snprintf(why, whylen, "source %s: %s", s->path, strerror(-r));
			guard_sources_free(v, *n);
			*n = 0;
			return r;
		}
		log_info("guard: following source=%s:%s%s", file ? "file" : "journal",
		         file ? s->path : idents[0],
		         guard_source_waiting(v[*n]) ? " (missing: read once it appears)" : "");
		(*n)++;
	}
	return 0;
}

/* Allow list and layout for cfg, and the writer brought to it (started in enforce mode). */
static int
guard_firewall(struct guard *g, const struct guard_cfg *cfg, const struct dns_options *dns,
               char *why, size_t whylen)
{
	_cleanup_free_ struct net_cidr *allow = NULL;
	struct guard_nft_rate rates[64];
	struct guard_nft_layout l;
	char unresolved[256];
	size_t nallow = 0;
	int r = cfg->rate.n > 64
	            ? -E2BIG
	            : guard_allow_build(cfg, dns, &allow, &nallow, unresolved, sizeof(unresolved));
	if (r < 0) {
		snprintf(why, whylen, "cannot build the whitelist: %s", strerror(-r));
		return r;
	}
	if (unresolved[0])
		log_warn("guard: whitelist name does not resolve, not exempted name=%s",
		         unresolved);
	guard_layout(cfg, rates, allow, nallow, &l);
	if (cfg->mode == GUARD_MODE_ENFORCE)
		r = g->writer ? guard_writer_setup(g->writer, &l)
		              : guard_writer_start(&l, cfg->user, &g->writer);
	if (r < 0) {
		snprintf(why, whylen, "cannot set up table inet rampart: %s", strerror(-r));
		return r;
	}
	free(g->allow);
	g->allow = TAKE_PTR(allow);
	g->nallow = nallow;
	return 0;
}

static int
guard_count_active(const struct guard_ban *b, void *data)
{
	size_t *n = data;
	n[b->net.addr.family == AF_INET ? 0 : 1]++;
	return 0;
}

static int
guard_collect(struct buf *out, void *data)
{
	struct guard *g = data;
	size_t active[2] = {0, 0};
	if (g->store)
		guard_store_each_active(g->store, guard_now_ms(), guard_count_active, active);
	const struct {
		const char *name, *help;
		uint64_t v;
	} c[] = {
	    {"lines", "log lines read", g->c.lines},
	    {"events", "authentication failures and logins matched", g->c.events},
	    {"logins", "successful logins seen (trusted sources)", g->c.logins},
	    {"bans", "bans applied", g->c.bans},
	    {"would_ban", "bans not applied in observe mode", g->c.would_ban},
	    {"spared", "whitelisted or trusted sources that reached the threshold", g->c.spared},
	    {"ban_errors", "bans that could not be applied", g->c.ban_errors},
	};
	int r = 0;
	for (size_t i = 0; r >= 0 && i < sizeof(c) / sizeof(c[0]); i++)
		r = buf_printf(
		    out,
		    "# HELP rampart_guard_%s_total %s\n# TYPE rampart_guard_%s_total counter\n"
		    "rampart_guard_%s_total %llu\n",
		    c[i].name, c[i].help, c[i].name, c[i].name, (unsigned long long)c[i].v);
	if (r >= 0)
		r = buf_printf(
		    out,
		    "# HELP rampart_guard_active_bans Bans in force by address family\n"
		    "# TYPE rampart_guard_active_bans gauge\n"
		    "rampart_guard_active_bans{family=\"ipv4\"} %zu\n"
		    "rampart_guard_active_bans{family=\"ipv6\"} %zu\n"
		    "# HELP rampart_guard_blocklist_prefixes Blocklist prefixes loaded\n"
		    "# TYPE rampart_guard_blocklist_prefixes gauge\n"
		    "rampart_guard_blocklist_prefixes %zu\n"
		    "# HELP rampart_guard_tracked_sources Sources with danger in the window\n"
		    "# TYPE rampart_guard_tracked_sources gauge\n"
		    "rampart_guard_tracked_sources %zu\n",
		    active[0], active[1], g->blocklisted, guard_score_count(g->score));
	if (r >= 0 && g->share)
		r = guard_share_collect(out, g->share);
	return r;
}

/* A peer's ban must not cover an address this machine never bans, nor a logged-in source. */
static bool
guard_exempt(const struct net_cidr *net, void *data)
{
	struct guard *g = data;
	int64_t now = guard_now_ms();
	if (guard_allow_overlaps(g->allow, g->nallow, net))
		return true;
	for (size_t i = 0; i < g->ntrusted; i++)
		if (g->trusted[i].until_ms > now && net_cidr_match(net, &g->trusted[i].addr))
			return true;
	return false;
}

static void
guard_on_sweep(struct ev_loop *loop, struct ev_timer *t)
{
	struct guard *g = t->data;
	int64_t now = guard_now_ms();
	guard_score_expire(g->score, (uint64_t)now);
	guard_trust_prune(g, now);
	ev_timer_start(loop, t, GUARD_SWEEP_NS);
}

/* The database (and its WAL files) must stay writable once we run as cfg->user. */
static int
guard_state_give(const struct guard_cfg *cfg)
{
	struct passwd pw, *found = NULL;
	char buf[4096], path[4096];
	if (!cfg->user || !*cfg->user || geteuid() != 0)
		return 0;
	if (getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s", cfg->state);
	if (chown(dirname(path), pw.pw_uid, pw.pw_gid) < 0)
		return -errno;
	static const char *const suffix[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", cfg->state, suffix[i]);
		if (chown(path, pw.pw_uid, pw.pw_gid) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static void
guard_score_opts_of(const struct guard_cfg *cfg, struct guard_score_opts *o)
{
	*o = (struct guard_score_opts){.threshold = (uint64_t)cfg->ban.threshold,
	                               .window_ms = cfg->ban.window_ms,
	                               .max_sources = GUARD_TRACKED_MAX};
}

void
guard_stop(struct guard *g)
{
	if (!g)
		return;
	ev_timer_stop(g->loop, &g->sweep);
	guard_sources_free(g->sources, g->nsources);
	guard_share_stop(g->share);
	int r = g->writer && !g->cfg.keep_table ? guard_writer_remove(g->writer) : 0;
	if (r < 0)
		log_error("guard: cannot remove table inet rampart error=\"%s\"", strerror(-r));
	else if (g->writer && !g->cfg.keep_table)
		log_info("guard: removed table inet rampart (keep-table: false)");
	guard_writer_stop(g->writer);
	guard_store_close(g->store);
	guard_score_free(g->score);
	cfg_free(&guard_config_schema, &g->cfg);
	free(g->allow);
	free(g->trusted);
	free(g);
}

static int
guard_start_parts(struct guard *g, const struct guard_cfg *cfg, const struct dns_options *dns,
                  char *why, size_t whylen)
{
	struct guard_score_opts so;
	guard_score_opts_of(cfg, &so);
	/* observe changes nothing, the state included: `make run` works without /var/lib */
	int r = cfg->mode == GUARD_MODE_OBSERVE ? 0 : guard_store_open(cfg->state, &g->store);
	if (r < 0) {
		snprintf(why, whylen, "cannot open the state %s: %s", cfg->state, strerror(-r));
		return r;
	}
	if (g->store && (r = guard_state_give(cfg)) < 0) {
		snprintf(why, whylen, "cannot give %s to user %s: %s", cfg->state, cfg->user,
		         strerror(-r));
		return r;
	}
	if ((r = guard_score_new(&so, &g->score)) < 0 ||
	    (r = guard_firewall(g, cfg, dns, why, whylen)) < 0)
		return r;
	if (g->store && (r = guard_restore(g)) < 0) {
		snprintf(why, whylen, "cannot restore the stored bans: %s", strerror(-r));
		return r;
	}
	struct guard_blocklist bl = {0};
	r = guard_blocklists_read(cfg, &bl, why, whylen);
	if (r >= 0)
		r = guard_blocklists_apply(g, cfg, &bl, why, whylen);
	free(bl.v);
	if (r < 0)
		return r;
	r = guard_sources_open(g, cfg, g->sources, &g->nsources, why, whylen);
	if (r >= 0 && cfg->share.enabled && !g->writer)
		log_info("guard: not sharing with the fleet in observe mode");
	if (r >= 0 && cfg->share.enabled && g->writer &&
	    (r = guard_share_start(g->loop, cfg, g->store, g->writer, guard_exempt, g, &g->share)) <
	        0)
		snprintf(why, whylen, "cannot start sharing with the fleet: %s", strerror(-r));
	return r;
}

int
guard_start(struct ev_loop *loop, const struct guard_cfg *cfg, const struct dns_options *dns,
            struct metrics *metrics, struct guard **out, char *why, size_t whylen)
{
	struct guard *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->loop = loop;
	g->flags = guard_config_match_flags(cfg);
	ev_timer_init(&g->sweep, guard_on_sweep, g);
	int r = cfg_copy(&guard_config_schema, &g->cfg, cfg);
	if (r >= 0 && !(g->trusted = calloc(GUARD_TRUSTED_MAX, sizeof(*g->trusted))))
		r = -ENOMEM;
	if (r >= 0)
		r = guard_start_parts(g, cfg, dns, why, whylen);
	if (r >= 0)
		r = ev_timer_start(loop, &g->sweep, GUARD_SWEEP_NS);
	if (r >= 0 && metrics)
		r = metrics_add_collector(metrics, guard_collect, g);
	if (r < 0) {
		if (!why[0])
			snprintf(why, whylen, "%s", strerror(-r));
		guard_stop(g);
		return r;
	}
	log_info("guard: ready mode=%s rate_rules=%zu sources=%zu never_banned=%zu state=%s",
	         cfg->mode == GUARD_MODE_ENFORCE ? "enforce" : "observe", cfg->rate.n, g->nsources,
	         g->nallow, cfg->state);
	*out = g;
	return 0;
}

static bool
guard_sources_same(const struct guard_cfg *a, const struct guard_cfg *b)
{
	if (a->sources.n != b->sources.n)
		return false;
	for (size_t i = 0; i < a->sources.n; i++) {
		const struct guard_source_cfg *x =
		    &((struct guard_source_cfg *)a->sources.items)[i];
		const struct guard_source_cfg *y =
		    &((struct guard_source_cfg *)b->sources.items)[i];
		if (x->type != y->type || strcmp(x->path ? x->path : "", y->path ? y->path : "") ||
		    strcmp(x->match ? x->match : "", y->match ? y->match : "") ||
		    strcmp(x->directory ? x->directory : "", y->directory ? y->directory : ""))
			return false;
	}
	return true;
}

int
guard_reload(struct guard *g, const struct guard_cfg *cfg, const struct dns_options *dns, char *why,
             size_t whylen)
{
	struct guard_cfg next = {0};
	struct guard_score_opts so;
	struct guard_source *src[GUARD_SOURCES_MAX];
	size_t nsrc = 0;
	bool same = guard_sources_same(cfg, &g->cfg);
	if (strcmp(cfg->state, g->cfg.state) || cfg->mode != g->cfg.mode) {
		snprintf(why, whylen, "a change of %s needs a restart",
		         cfg->mode != g->cfg.mode ? "mode" : "state");
		return -EINVAL;
	}
	struct guard_blocklist bl = {0};
	int r = cfg_copy(&guard_config_schema, &next, cfg);
	if (r >= 0)
		r = guard_blocklists_read(cfg, &bl, why, whylen);
	if (r >= 0 && !same)
		r = guard_sources_open(g, cfg, src, &nsrc, why, whylen);
	/* what can fail on bad input is done; the firewall changes from here on */
	if (r >= 0)
		r = guard_firewall(g, cfg, dns, why, whylen);
	if (r >= 0)
		r = guard_blocklists_apply(g, cfg, &bl, why, whylen);
	free(bl.v);
	if (r < 0) {
		guard_sources_free(src, nsrc);
		cfg_free(&guard_config_schema, &next);
		return r;
	}
	if (!same) {
		guard_sources_free(g->sources, g->nsources);
		memcpy(g->sources, src, nsrc * sizeof(*src));
		g->nsources = nsrc;
	}
	guard_score_opts_of(cfg, &so);
	guard_score_set(g->score, &so);
	cfg_free(&guard_config_schema, &g->cfg);
	g->cfg = next;
	g->flags = guard_config_match_flags(cfg);
	log_info("guard: reloaded mode=%s sources=%zu never_banned=%zu",
	         cfg->mode == GUARD_MODE_ENFORCE ? "enforce" : "observe", g->nsources, g->nallow);
	return 0;
}
