/* `rampart guard`: the daemon, and the commands that work on its bans and its matcher. */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/esc.h"
#include "core/json.h"
#include "guard/guard_kill.h"
#include "guard/guard_match.h"
#include "guard/guard_nft.h"
#include "guard/guard_policy.h"
#include "guard/guard_share.h"
#include "guard/guard_store.h"
#include "parts.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERB "guard"
#define GUARD_TESTLOG_LINE_MAX 8192
#define GUARD_TESTLOG_SOURCES_MAX 100000

struct guard_opts {
	const char *config;
	const char *reason;
	uint64_t for_ms;
	bool permanent, json, quiet, fleet;
};

enum { OPT_FOR = 0x100, OPT_PERMANENT, OPT_REASON, OPT_JSON, OPT_FLEET };

/* Which options a subcommand takes: another's option is a usage error, not ignored. */
enum {
	TAKES_BAN = 1u << 0,   /* --for, --permanent, --reason */
	TAKES_JSON = 1u << 1,  /* --json */
	TAKES_QUIET = 1u << 2, /* -q */
	TAKES_FLEET = 1u << 3  /* --fleet */
};

static bool
guard_takes(int c, unsigned takes)
{
	switch (c) {
	case 'c':
		return true;
	case OPT_FOR:
	case OPT_PERMANENT:
	case OPT_REASON:
		return takes & TAKES_BAN;
	case OPT_JSON:
		return takes & TAKES_JSON;
	case OPT_FLEET:
		return takes & TAKES_FLEET;
	case 'q':
		return takes & TAKES_QUIET;
	default:
		return false;
	}
}

static int
guard_parse(const char *verb, int argc, char **argv, unsigned takes, struct guard_opts *o)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"for", required_argument, NULL, OPT_FOR},
	    {"permanent", no_argument, NULL, OPT_PERMANENT},
	    {"reason", required_argument, NULL, OPT_REASON},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"fleet", no_argument, NULL, OPT_FLEET},
	    {"quiet", no_argument, NULL, 'q'},
	    {0},
	};
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":c:q", opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return cmd_bad_option(verb, argc, argv, c);
		if (!guard_takes(c, takes))
			return cmd_usage_error(verb, "%s is not an option of this command",
			                       c == OPT_FOR         ? "--for"
			                       : c == OPT_PERMANENT ? "--permanent"
			                       : c == OPT_REASON    ? "--reason"
			                       : c == OPT_JSON      ? "--json"
			                       : c == OPT_FLEET     ? "--fleet"
			                                            : "-q");
		if (c == 'c')
			o->config = optarg;
		else if (c == OPT_FOR && (cfg_parse_duration(optarg, &o->for_ms) < 0 ||
		                          !o->for_ms || o->for_ms > GUARD_NFT_TIMEOUT_MAX_MS))
			return cmd_usage_error(verb,
			                       "--for: expected a duration such as 10m, 2h, 7d "
			                       "(at most 3650d; --permanent for longer)");
		else if (c == OPT_PERMANENT)
			o->permanent = true;
		else if (c == OPT_REASON)
			o->reason = optarg;
		else if (c == OPT_JSON)
			o->json = true;
		else if (c == OPT_FLEET)
			o->fleet = true;
		else if (c == 'q')
			o->quiet = true;
	}
	if (o->permanent && o->for_ms)
		return cmd_usage_error(verb, "--for and --permanent do not go together");
	return 0;
}

static void
guard_store_closep(struct guard_store **s)
{
	guard_store_close(*s);
}

static void
guard_nft_freep(struct guard_nft **n)
{
	guard_nft_free(*n);
}

static void
parts_cfg_freep(struct parts_cfg *c)
{
	cfg_free(&parts_root_schema, c);
}

/* ADDR as the daemon keys it: a host becomes its ban prefix (IPv6: ipv6-prefix); a CIDR stays. */
static int
guard_target(const char *verb, const struct guard_cfg *cfg, const char *text, struct net_cidr *out)
{
	struct net_addr a;
	if (net_addr_parse(text, NET_PORT_NONE, &a) >= 0) {
		net_addr_normalize(&a);
		guard_key(cfg, &a, out);
		return 0;
	}
	if (net_cidr_parse(text, out) >= 0)
		return 0;
	return cmd_usage_error(verb, "'%s' is not an IPv4 or IPv6 address or CIDR", text);
}

static int
guard_load(const char *verb, const struct guard_opts *o, struct parts_cfg *cfg,
           struct guard_store **store)
{
	if (parts_load_config(verb, o->config, cfg) < 0)
		return CMD_EXIT_USAGE;
	int r = guard_store_open(cfg->guard.state, store);
	if (r < 0) {
		cmd_error(verb, "cannot open the state %s: %s", cfg->guard.state, strerror(-r));
		return r == -EACCES || r == -EPERM ? CMD_EXIT_USAGE : CMD_EXIT_NEGATIVE;
	}
	return CMD_EXIT_OK;
}

/* Never the admin: a ban that would cover a whitelisted, loopback or own address is refused. */
static int
guard_refuse_allowed(const char *verb, const struct parts_cfg *cfg, const struct net_cidr *net,
                     const char *text)
{
	_cleanup_free_ struct net_cidr *allow = NULL;
	const char *servers[PARTS_DNS_SERVERS_MAX + 1];
	struct dns_options dns;
	char unresolved[256];
	size_t n = 0;
	parts_dns_options(cfg, servers, &dns);
	int r = guard_allow_build(&cfg->guard, &dns, &allow, &n, unresolved, sizeof(unresolved));
	if (r < 0) {
		cmd_error(verb, "cannot build the whitelist: %s", strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	const struct net_cidr *hit = guard_allow_overlaps(allow, n, net);
	if (hit) {
		char w[NET_CIDR_STRLEN];
		net_cidr_format(hit, w, sizeof(w));
		cmd_error(verb,
		          "%s is never banned: it covers %s (whitelist, loopback or an address of "
		          "this host)",
		          text, w);
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

/* Puts the ban into table inet rampart, creating the table when guard never ran. */
static int
guard_apply_nft(const struct guard_cfg *cfg, const struct guard_nft_elem *e)
{
	_cleanup_(guard_nft_freep) struct guard_nft *nft = NULL;
	int r = guard_nft_new(&nft);
	if (r >= 0)
		r = guard_nft_ban(nft, e, 1);
	if (r == -ENOENT) {
		struct guard_nft_rate rates[64];
		struct guard_nft_layout l;
		if (cfg->rate.n > 64)
			return -E2BIG;
		guard_layout(cfg, rates, NULL, 0, &l);
		r = guard_nft_setup(nft, &l);
		if (r >= 0)
			r = guard_nft_ban(nft, e, 1);
	}
	return r;
}

/* Cut to the field, never inside a UTF-8 character: the list and its JSON stay readable. */
static void
guard_reason_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Time left as a person reads it: 45s, 3m58s, 2h5m, 6d23h. */
static void
guard_left_text(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = (ms + 999) / 1000;
	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

static void
guard_length_text(uint64_t ms, char *buf, size_t len)
{
	if (!ms)
		snprintf(buf, len, "permanently");
	else if (ms % 86400000 == 0)
		snprintf(buf, len, "for %" PRIu64 "d", ms / 86400000);
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "for %" PRIu64 "h", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "for %" PRIu64 "m", ms / 60000);
	else
		snprintf(buf, len, "for %" PRIu64 "s", (ms + 999) / 1000);
}

/* --fleet: the decision goes to the fleet's database at once. */
static int
guard_tell_fleet(const char *verb, const struct guard_cfg *cfg, struct guard_store *store,
                 const struct guard_ban *b, bool unban, int64_t seq)
{
	char name[GUARD_FLEET_NAME_MAX], err[512] = "";
	struct guard_fleet_event e;
	int64_t base = 0;
	int r = guard_share_machine(cfg, name, sizeof(name));
	if (r >= 0 && (r = guard_share_seq_base(store, &base)) >= 0) {
		seq += base;
		struct guard_fleet_cfg fc = {.conninfo = cfg->share.postgres, .name = name};
		guard_share_event(name, b, unban, seq, &e);
		r = guard_fleet_publish_once(&fc, &e, err, sizeof(err));
	}
	if (r < 0) {
		cmd_error(verb, "done on this machine, but not shared with the fleet: %s",
		          err[0] ? err : strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	printf("shared with the fleet as %s\n", name);
	return CMD_EXIT_OK;
}

/* --fleet without guard.share is a usage error, found before anything changes. */
static int
guard_fleet_configured(const char *verb, const struct guard_opts *o, const struct guard_cfg *cfg)
{
	if (o->fleet && !cfg->share.enabled)
		return cmd_usage_error(verb, "--fleet needs guard.share.postgres in %s", o->config);
	return CMD_EXIT_OK;
}

static int
guard_cmd_ban(int argc, char **argv)
{
	const char *verb = VERB " ban";
	struct guard_opts o = {.config = cmd_default_config()};
	const unsigned takes = TAKES_BAN | TAKES_FLEET;
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	struct net_cidr net;
	int r = guard_parse(verb, argc, argv, takes, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one ADDR");
	const char *text = argv[optind];
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK)
		return r;
	if ((r = guard_fleet_configured(verb, &o, &cfg.guard)) ||
	    (r = guard_target(verb, &cfg.guard, text, &net)) ||
	    (r = guard_refuse_allowed(verb, &cfg, &net, text)))
		return r;
	struct guard_ban prev,
	    b = {.net = net, .count = 1, .origin = GUARD_ORIGIN_MANUAL, .share = o.fleet};
	int64_t seq = 0;
	int64_t now = guard_now_ms();
	if (guard_store_get(store, &net, &prev) > 0)
		b.count = prev.count + 1;
	uint64_t ms = o.permanent ? 0
	              : o.for_ms  ? o.for_ms
	                          : guard_ban_length(&cfg.guard.ban, b.count);
	b.created_ms = now;
	b.expires_ms = ms ? now + (int64_t)ms : 0;
	guard_reason_copy(b.reason, sizeof(b.reason), o.reason ? o.reason : "manual");
	if ((r = guard_store_ban_seq(store, &b, &seq)) < 0) {
		cmd_error(verb, "cannot record the ban in %s: %s", cfg.guard.state, strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	char len[32], what[NET_CIDR_STRLEN];
	guard_length_text(ms, len, sizeof(len));
	net_cidr_format(&net, what, sizeof(what));
	if (cfg.guard.mode == GUARD_MODE_OBSERVE) {
		printf(
		    "recorded a ban of %s %s (ban %u); guard.mode is observe: nftables unchanged\n",
		    what, len, b.count);
		return o.fleet ? guard_tell_fleet(verb, &cfg.guard, store, &b, false, seq)
		               : CMD_EXIT_OK;
	}
	struct guard_nft_elem e = {.net = net, .timeout_ms = ms};
	if ((r = guard_apply_nft(&cfg.guard, &e)) < 0) {
		cmd_error(verb,
		          "recorded, but cannot add %s to table inet rampart: %s (guard applies "
		          "it at its next start)",
		          what, strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	size_t killed = 0;
	if (cfg.guard.kill_connections && (r = guard_kill(&net, 1, &killed)) < 0)
		cmd_error(verb, "banned, but cannot close the open connections of %s: %s", what,
		          strerror(-r));
	printf("banned %s %s (ban %u)", what, len, b.count);
	if (cfg.guard.kill_connections && r >= 0)
		printf("; closed %zu connection%s", killed, killed == 1 ? "" : "s");
	printf("\n");
	return o.fleet ? guard_tell_fleet(verb, &cfg.guard, store, &b, false, seq) : CMD_EXIT_OK;
}

static int
guard_cmd_unban(int argc, char **argv)
{
	const char *verb = VERB " unban";
	struct guard_opts o = {.config = cmd_default_config()};
	const unsigned takes = TAKES_FLEET;
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	_cleanup_(guard_nft_freep) struct guard_nft *nft = NULL;
	struct net_cidr net;
	char what[NET_CIDR_STRLEN];
	int r = guard_parse(verb, argc, argv, takes, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one ADDR");
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK ||
	    (r = guard_fleet_configured(verb, &o, &cfg.guard)) ||
	    (r = guard_target(verb, &cfg.guard, argv[optind], &net)))
		return r;
	net_cidr_format(&net, what, sizeof(what));
	int64_t seq = 0;
	int was = guard_store_unban(store, &net, guard_now_ms(), NULL, o.fleet, &seq);
	if (was < 0) {
		cmd_error(verb, "cannot record the unban in %s: %s", cfg.guard.state,
		          strerror(-was));
		return CMD_EXIT_NEGATIVE;
	}
	if (cfg.guard.mode == GUARD_MODE_ENFORCE && (r = guard_nft_new(&nft)) >= 0)
		r = guard_nft_unban(nft, &net, 1);
	if (r < 0 && r != -ENOENT) {
		cmd_error(verb, "cannot remove %s from table inet rampart: %s", what, strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	if (!was) {
		cmd_error(verb, "%s was not banned", what);
		return CMD_EXIT_NEGATIVE;
	}
	printf("unbanned %s\n", what);
	struct guard_ban b = {.net = net, .created_ms = guard_now_ms()};
	snprintf(b.reason, sizeof(b.reason), "unban");
	return o.fleet ? guard_tell_fleet(verb, &cfg.guard, store, &b, true, seq) : CMD_EXIT_OK;
}

struct guard_list {
	struct buf *out;
	bool json;
	int64_t now;
	size_t n;
};

static int
guard_list_one(const struct guard_ban *b, void *data)
{
	struct guard_list *l = data;
	char net[NET_CIDR_STRLEN], left[32];
	char origin[GUARD_STORE_MACHINE_MAX + 8];
	net_cidr_format(&b->net, net, sizeof(net));
	/* a peer's ban names the machine that gave it */
	snprintf(origin, sizeof(origin), "%s%s",
	         b->machine[0]                      ? "fleet:"
	         : b->origin == GUARD_ORIGIN_MANUAL ? "manual"
	                                            : "auto",
	         b->machine);
	int r;
	if (l->json) {
		char expires[32] = "null";
		if (b->expires_ms)
			snprintf(expires, sizeof(expires), "%" PRId64, b->expires_ms);
		r = buf_printf(l->out, "%s{\"prefix\":", l->n ? "," : "");
		if (r >= 0)
			r = json_string(l->out, net);
		if (r >= 0)
			r = buf_printf(l->out,
			               ",\"created_ms\":%" PRId64 ",\"expires_ms\":%s,\"count\":%u,"
			               "\"origin\":\"%s\",\"reason\":",
			               b->created_ms, expires, b->count, origin);
		if (r >= 0)
			r = json_string(l->out, b->reason);
		if (r >= 0)
			r = buf_append_str(l->out, ",\"machine\":");
		if (r >= 0)
			r = b->machine[0] ? json_string(l->out, b->machine)
			                  : buf_append_str(l->out, "null");
		if (r >= 0)
			r = buf_append_str(l->out, "}");
	} else {
		uint64_t ms = b->expires_ms ? (uint64_t)(b->expires_ms - l->now) : 0;
		/* a peer's reason or name on a terminal: escapes, and newlines that would fake a
		 * row, shown as \xHH (JSON escapes them itself) */
		char reason[4 * GUARD_REASON_MAX], shown[4 * sizeof(origin)];
		guard_left_text(ms, left, sizeof(left));
		esc_copy(shown, sizeof(shown), origin);
		esc_copy(reason, sizeof(reason), b->reason);
		r = buf_printf(l->out, "%-43s %-16s %5u  %-14s  %s\n", net, ms ? left : "permanent",
		               b->count, shown, reason);
	}
	l->n++;
	return r;
}

/* A fleet row as the list shows a ban: every machine's, its own name as the origin. */
static int
guard_list_fleet_one(const struct guard_fleet_event *e, void *data)
{
	struct guard_ban b = {.created_ms = e->created_ms, .expires_ms = e->expires_ms};
	if (net_cidr_parse(e->prefix, &b.net) < 0)
		return 0; /* not a ban any guard applies */
	snprintf(b.machine, sizeof(b.machine), "%s", e->machine);
	snprintf(b.reason, sizeof(b.reason), "%s", e->reason);
	return guard_list_one(&b, data);
}

static int
guard_list_fleet(const char *verb, const struct guard_cfg *cfg, struct guard_list *l)
{
	char name[GUARD_FLEET_NAME_MAX], err[512] = "";
	int r = guard_share_machine(cfg, name, sizeof(name));
	struct guard_fleet_cfg fc = {.conninfo = cfg->share.postgres, .name = name};
	if (r >= 0)
		r = guard_fleet_list_once(&fc, l->now, guard_list_fleet_one, l, err, sizeof(err));
	if (r < 0) {
		cmd_error(verb, "cannot list the fleet's bans: %s", err[0] ? err : strerror(-r));
		return -ECONNREFUSED; /* said already */
	}
	return 0;
}

static int
guard_cmd_list(int argc, char **argv)
{
	const char *verb = VERB " list";
	struct guard_opts o = {.config = cmd_default_config()};
	const unsigned takes = TAKES_JSON | TAKES_FLEET;
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	_cleanup_buf_ struct buf out = BUF_INIT(256 * 1024 * 1024);
	int r = guard_parse(verb, argc, argv, takes, &o);
	if (r)
		return r;
	if (argc != optind)
		return cmd_usage_error(verb, "unexpected argument '%s'", argv[optind]);
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK ||
	    (r = guard_fleet_configured(verb, &o, &cfg.guard)))
		return r;
	struct guard_list l = {.out = &out, .json = o.json, .now = guard_now_ms()};
	r = buf_append_str(&out, o.json ? "[" : "");
	if (r >= 0 && !o.json)
		r = buf_printf(&out, "%-43s %-16s %5s  %-14s  %s\n", "PREFIX", "LEFT", "BANS",
		               "ORIGIN", "REASON");
	if (r >= 0 && o.fleet)
		r = guard_list_fleet(verb, &cfg.guard, &l);
	else if (r >= 0)
		r = guard_store_each_active(store, l.now, guard_list_one, &l);
	if (r >= 0 && o.json)
		r = buf_append_str(&out, "]\n");
	if (r < 0) {
		if (r != -ECONNREFUSED)
			cmd_error(verb, "cannot list the bans in %s: %s", cfg.guard.state,
			          strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	fwrite(out.data, 1, out.len, stdout);
	return CMD_EXIT_OK;
}

struct guard_hit {
	struct net_cidr key; /* as the daemon scores: the address, or the IPv6 prefix */
	unsigned danger;
	bool login;
};

struct guard_testlog {
	const struct guard_cfg *cfg;
	unsigned flags;
	bool quiet;
	struct guard_hit *v;
	size_t n, cap;
	uint64_t lines, attacks, logins;
	int err;
};

static int
guard_hit_cmp(const void *pa, const void *pb)
{
	const struct guard_hit *a = pa, *b = pb;
	if (a->key.addr.family != b->key.addr.family)
		return a->key.addr.family - b->key.addr.family;
	int c = memcmp(a->key.addr.u.bytes, b->key.addr.u.bytes, 16);
	return c ? c : (int)a->key.prefix - (int)b->key.prefix;
}

static int
guard_hits_add(struct guard_testlog *t, const struct guard_event *ev)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 1024;
		struct guard_hit *nv =
		    ncap > 16 * 1024 * 1024 ? NULL : reallocarray(t->v, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	struct guard_hit *h = &t->v[t->n++];
	*h = (struct guard_hit){.danger = ev->danger, .login = ev->kind == GUARD_EV_LOGIN};
	guard_key(t->cfg, &ev->addr, &h->key);
	return 0;
}

/* Per source: failures, danger, logins, and whether the danger would reach the threshold (the
 * file's time stamps are not read: the window is not applied). */
static void
guard_hits_summary(struct guard_testlog *t)
{
	qsort(t->v, t->n, sizeof(*t->v), guard_hit_cmp);
	printf("\n%-43s %8s %8s %6s  %s\n", "SOURCE", "FAILURES", "DANGER", "LOGINS", "VERDICT");
	for (size_t i = 0, j; i < t->n; i = j) {
		uint64_t danger = 0, fails = 0, logins = 0;
		for (j = i; j < t->n && !guard_hit_cmp(&t->v[i], &t->v[j]); j++) {
			danger += t->v[j].login ? 0 : t->v[j].danger;
			fails += !t->v[j].login;
			logins += t->v[j].login;
		}
		char a[NET_CIDR_STRLEN];
		const struct net_cidr *k = &t->v[i].key;
		if (k->prefix == (k->addr.family == AF_INET ? 32u : 128u))
			net_addr_format(&k->addr, false, a, sizeof(a));
		else
			net_cidr_format(k, a, sizeof(a));
		printf("%-43s %8" PRIu64 " %8" PRIu64 " %6" PRIu64 "  %s\n", a, fails, danger,
		       logins,
		       logins && t->cfg->trust_ms                  ? "trusted (logged in)"
		       : danger >= (uint64_t)t->cfg->ban.threshold ? "would ban"
		                                                   : "-");
	}
}

static const char *
guard_service_name(enum guard_service s)
{
	return s == GUARD_SVC_DROPBEAR  ? "dropbear"
	       : s == GUARD_SVC_POSTFIX ? "postfix"
	       : s == GUARD_SVC_DOVECOT ? "dovecot"
	                                : "sshd";
}

static void
guard_testlog_line(struct guard_testlog *t, const char *line, size_t len)
{
	struct guard_event ev;
	char a[NET_ADDR_STRLEN];
	t->lines++;
	if (t->err || guard_match_text(line, len, t->flags, &ev) <= 0)
		return;
	*(ev.kind == GUARD_EV_LOGIN ? &t->logins : &t->attacks) += 1;
	t->err = guard_hits_add(t, &ev);
	net_addr_format(&ev.addr, false, a, sizeof(a));
	if (!t->quiet)
		printf("%" PRIu64 ": %s %s %s danger=%u %s\n", t->lines,
		       ev.kind == GUARD_EV_LOGIN ? "login" : "attack",
		       guard_service_name(ev.service), a, ev.kind == GUARD_EV_LOGIN ? 0 : ev.danger,
		       ev.what);
}

/* Lines by their length, NUL bytes and all; a line over the cap counts but is not matched,
 * as the daemon's file source drops it. */
static int
guard_testlog_read(struct guard_testlog *t, FILE *in)
{
	static char buf[2 * GUARD_TESTLOG_LINE_MAX];
	size_t have = 0, n;
	bool drop = false;
	do {
		n = fread(buf + have, 1, sizeof(buf) - have, in);
		have += n;
		size_t off = 0;
		for (char *nl; (nl = memchr(buf + off, '\n', have - off)); off = nl - buf + 1) {
			if (!drop)
				guard_testlog_line(t, buf + off, nl - (buf + off));
			drop = false;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (have > GUARD_TESTLOG_LINE_MAX) {
			t->lines += !drop;
			drop = true;
			have = 0;
		}
	} while (n > 0);
	if (have && !drop)
		guard_testlog_line(t, buf, have);
	return ferror(in) ? -EIO : t->err;
}

static void
file_closep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static int
guard_cmd_test_log(int argc, char **argv)
{
	const char *verb = VERB " test-log";
	struct guard_opts o = {.config = NULL};
	const unsigned takes = TAKES_QUIET;
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(file_closep) FILE *f = NULL;
	int r = guard_parse(verb, argc, argv, takes, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one FILE (- for standard input)");
	const char *path = argv[optind];
	if (o.config ? parts_load_config(verb, o.config, &cfg) < 0
	             : cfg_load_defaults(&parts_root_schema, &cfg, NULL) < 0)
		return CMD_EXIT_USAGE;
	if (strcmp(path, "-") && !(f = fopen(path, "re"))) {
		cmd_error(verb, "cannot read %s: %s", path, strerror(errno));
		return CMD_EXIT_USAGE;
	}
	struct guard_testlog t = {
	    .cfg = &cfg.guard, .flags = guard_config_match_flags(&cfg.guard), .quiet = o.quiet};
	r = guard_testlog_read(&t, f ? f : stdin);
	printf("%slines=%" PRIu64 " attacks=%" PRIu64 " logins=%" PRIu64 "\n", o.quiet ? "" : "\n",
	       t.lines, t.attacks, t.logins);
	guard_hits_summary(&t);
	free(t.v);
	if (r < 0) {
		cmd_error(verb, "cannot read all of %s: %s", path, strerror(-r));
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

int
cmd_guard(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} sub[] = {
	    {"ban", guard_cmd_ban},
	    {"unban", guard_cmd_unban},
	    {"list", guard_cmd_list},
	    {"test-log", guard_cmd_test_log},
	};
	for (size_t i = 0; argc > 1 && i < sizeof(sub) / sizeof(sub[0]); i++)
		if (!strcmp(argv[1], sub[i].name))
			return sub[i].run(argc - 1, argv + 1);
	return cmd_up_run(VERB, "guard", argc, argv);
}
