/* `rampart guard`: the daemon, and the commands that work on its bans and its matcher. */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "guard/guard_match.h"
#include "guard/guard_nft.h"
#include "guard/guard_policy.h"
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
	bool permanent, json, quiet;
};

enum { OPT_FOR = 0x100, OPT_PERMANENT, OPT_REASON, OPT_JSON, OPT_QUIET };

static int
guard_parse(const char *verb, int argc, char **argv, struct guard_opts *o)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"for", required_argument, NULL, OPT_FOR},
	    {"permanent", no_argument, NULL, OPT_PERMANENT},
	    {"reason", required_argument, NULL, OPT_REASON},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"quiet", no_argument, NULL, 'q'},
	    {0},
	};
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":c:q", opts, NULL)) != -1) {
		if (c == 'c')
			o->config = optarg;
		else if (c == OPT_FOR && (cfg_parse_duration(optarg, &o->for_ms) < 0 || !o->for_ms))
			return cmd_usage_error(verb,
			                       "--for: expected a duration such as 10m, 2h, 7d");
		else if (c == OPT_PERMANENT)
			o->permanent = true;
		else if (c == OPT_REASON)
			o->reason = optarg;
		else if (c == OPT_JSON)
			o->json = true;
		else if (c == 'q')
			o->quiet = true;
		else if (c != OPT_FOR)
			return cmd_bad_option(verb, argc, argv, c);
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
	for (size_t i = 0; i < n; i++)
		if (net_cidr_match(net, &allow[i].addr) || net_cidr_match(&allow[i], &net->addr)) {
			char w[NET_CIDR_STRLEN];
			net_cidr_format(&allow[i], w, sizeof(w));
			cmd_error(verb,
			          "%s is never banned: it covers %s (whitelist, loopback or an "
			          "address of this host)",
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

static int
guard_cmd_ban(int argc, char **argv)
{
	const char *verb = VERB " ban";
	struct guard_opts o = {.config = cmd_default_config()};
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	struct net_cidr net;
	int r = guard_parse(verb, argc, argv, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one ADDR");
	const char *text = argv[optind];
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK)
		return r;
	if ((r = guard_target(verb, &cfg.guard, text, &net)) ||
	    (r = guard_refuse_allowed(verb, &cfg, &net, text)))
		return r;
	struct guard_ban prev, b = {.net = net, .count = 1, .origin = GUARD_ORIGIN_MANUAL};
	int64_t now = guard_now_ms();
	if (guard_store_get(store, &net, &prev) > 0)
		b.count = prev.count + 1;
	uint64_t ms = o.permanent ? 0
	              : o.for_ms  ? o.for_ms
	                          : guard_ban_length(&cfg.guard.ban, b.count);
	b.created_ms = now;
	b.expires_ms = ms ? now + (int64_t)ms : 0;
	snprintf(b.reason, sizeof(b.reason), "%s", o.reason ? o.reason : "manual");
	if ((r = guard_store_ban(store, &b)) < 0) {
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
		return CMD_EXIT_OK;
	}
	struct guard_nft_elem e = {.net = net, .timeout_ms = ms};
	if ((r = guard_apply_nft(&cfg.guard, &e)) < 0) {
		cmd_error(verb,
		          "recorded, but cannot add %s to table inet rampart: %s (guard applies "
		          "it at its next start)",
		          what, strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	printf("banned %s %s (ban %u)\n", what, len, b.count);
	return CMD_EXIT_OK;
}

static int
guard_cmd_unban(int argc, char **argv)
{
	const char *verb = VERB " unban";
	struct guard_opts o = {.config = cmd_default_config()};
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	_cleanup_(guard_nft_freep) struct guard_nft *nft = NULL;
	struct net_cidr net;
	char what[NET_CIDR_STRLEN];
	int r = guard_parse(verb, argc, argv, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one ADDR");
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK ||
	    (r = guard_target(verb, &cfg.guard, argv[optind], &net)))
		return r;
	net_cidr_format(&net, what, sizeof(what));
	int was = guard_store_unban(store, &net, guard_now_ms());
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
	printf("%s %s\n", was ? "unbanned" : "was not banned:", what);
	return was ? CMD_EXIT_OK : CMD_EXIT_NEGATIVE;
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
	net_cidr_format(&b->net, net, sizeof(net));
	const char *origin = b->origin == GUARD_ORIGIN_MANUAL ? "manual" : "auto";
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
			r = buf_append_str(l->out, "}");
	} else {
		uint64_t ms = b->expires_ms ? (uint64_t)(b->expires_ms - l->now) : 0;
		guard_length_text(ms, left, sizeof(left));
		r = buf_printf(l->out, "%-43s %-16s %5u  %-6s  %s\n", net,
		               ms ? left + 4 : "permanent", b->count, origin, b->reason);
	}
	l->n++;
	return r;
}

static int
guard_cmd_list(int argc, char **argv)
{
	const char *verb = VERB " list";
	struct guard_opts o = {.config = cmd_default_config()};
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(guard_store_closep) struct guard_store *store = NULL;
	_cleanup_buf_ struct buf out = BUF_INIT(256 * 1024 * 1024);
	int r = guard_parse(verb, argc, argv, &o);
	if (r)
		return r;
	if (argc != optind)
		return cmd_usage_error(verb, "unexpected argument '%s'", argv[optind]);
	if ((r = guard_load(verb, &o, &cfg, &store)) != CMD_EXIT_OK)
		return r;
	struct guard_list l = {.out = &out, .json = o.json, .now = guard_now_ms()};
	r = buf_append_str(&out, o.json ? "[" : "");
	if (r >= 0 && !o.json)
		r = buf_printf(&out, "%-43s %-16s %5s  %-6s  %s\n", "PREFIX", "LEFT", "BANS",
		               "ORIGIN", "REASON");
	if (r >= 0)
		r = guard_store_each_active(store, l.now, guard_list_one, &l);
	if (r >= 0 && o.json)
		r = buf_append_str(&out, "]\n");
	if (r < 0) {
		cmd_error(verb, "cannot list the bans in %s: %s", cfg.guard.state, strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	fwrite(out.data, 1, out.len, stdout);
	return CMD_EXIT_OK;
}

struct guard_hit {
	struct net_addr addr;
	unsigned danger;
	bool login;
};

struct guard_hits {
	struct guard_hit *v;
	size_t n, cap;
};

static int
guard_hit_cmp(const void *pa, const void *pb)
{
	const struct guard_hit *a = pa, *b = pb;
	if (a->addr.family != b->addr.family)
		return a->addr.family - b->addr.family;
	return memcmp(a->addr.u.bytes, b->addr.u.bytes, 16);
}

static int
guard_hits_add(struct guard_hits *h, const struct guard_event *ev)
{
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 1024;
		struct guard_hit *nv =
		    ncap > 16 * 1024 * 1024 ? NULL : reallocarray(h->v, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cap = ncap;
	}
	h->v[h->n++] = (struct guard_hit){
	    .addr = ev->addr, .danger = ev->danger, .login = ev->kind == GUARD_EV_LOGIN};
	return 0;
}

/* Per source: failures, danger, logins, and whether the danger would reach the threshold (the
 * file's time stamps are not read: the window is not applied). */
static void
guard_hits_summary(struct guard_hits *h, const struct guard_cfg *cfg)
{
	qsort(h->v, h->n, sizeof(*h->v), guard_hit_cmp);
	printf("\n%-40s %8s %8s %6s  %s\n", "SOURCE", "FAILURES", "DANGER", "LOGINS", "VERDICT");
	for (size_t i = 0, j; i < h->n; i = j) {
		uint64_t danger = 0, fails = 0, logins = 0;
		for (j = i; j < h->n && !guard_hit_cmp(&h->v[i], &h->v[j]); j++) {
			danger += h->v[j].login ? 0 : h->v[j].danger;
			fails += !h->v[j].login;
			logins += h->v[j].login;
		}
		char a[NET_ADDR_STRLEN];
		net_addr_format(&h->v[i].addr, false, a, sizeof(a));
		printf("%-40s %8" PRIu64 " %8" PRIu64 " %6" PRIu64 "  %s\n", a, fails, danger,
		       logins,
		       logins && cfg->trust_ms                  ? "trusted (logged in)"
		       : danger >= (uint64_t)cfg->ban.threshold ? "would ban"
		                                                : "-");
	}
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
	_cleanup_(parts_cfg_freep) struct parts_cfg cfg = {0};
	_cleanup_(file_closep) FILE *f = NULL;
	struct guard_hits hits = {0};
	char line[GUARD_TESTLOG_LINE_MAX];
	uint64_t lines = 0, attacks = 0, logins = 0;
	int r = guard_parse(verb, argc, argv, &o);
	if (r)
		return r;
	if (argc - optind != 1)
		return cmd_usage_error(verb, "expected one FILE (- for standard input)");
	const char *path = argv[optind];
	if (o.config ? parts_load_config(verb, o.config, &cfg) < 0
	             : cfg_load_defaults(&parts_root_schema, &cfg, NULL) < 0)
		return CMD_EXIT_USAGE;
	f = strcmp(path, "-") ? fopen(path, "re") : NULL;
	if (!f && strcmp(path, "-"))
		return cmd_error(verb, "cannot read %s: %s", path, strerror(errno)), CMD_EXIT_USAGE;
	FILE *in = f ? f : stdin;
	unsigned flags = guard_config_match_flags(&cfg.guard);
	bool cut = false;
	while (fgets(line, sizeof(line), in)) {
		size_t len = strlen(line);
		bool whole = len && line[len - 1] == '\n';
		bool skip = cut; /* the rest of an overlong line is not a line of its own */
		cut = !whole && !feof(in);
		if (skip)
			continue;
		lines++;
		struct guard_event ev;
		if (guard_match_text(line, len - whole, flags, &ev) <= 0)
			continue;
		*(ev.kind == GUARD_EV_LOGIN ? &logins : &attacks) += 1;
		if (guard_hits_add(&hits, &ev) < 0)
			break;
		char a[NET_ADDR_STRLEN];
		net_addr_format(&ev.addr, false, a, sizeof(a));
		if (!o.quiet)
			printf("%" PRIu64 ": %s %s %s danger=%u %s\n", lines,
			       ev.kind == GUARD_EV_LOGIN ? "login" : "attack",
			       ev.service == GUARD_SVC_DROPBEAR  ? "dropbear"
			       : ev.service == GUARD_SVC_POSTFIX ? "postfix"
			       : ev.service == GUARD_SVC_DOVECOT ? "dovecot"
			                                         : "sshd",
			       a, ev.kind == GUARD_EV_LOGIN ? 0 : ev.danger, ev.what);
	}
	bool failed = ferror(in) || hits.n == hits.cap;
	printf("%slines=%" PRIu64 " attacks=%" PRIu64 " logins=%" PRIu64 "\n", o.quiet ? "" : "\n",
	       lines, attacks, logins);
	guard_hits_summary(&hits, &cfg.guard);
	free(hits.v);
	if (failed && ferror(in)) {
		cmd_error(verb, "cannot read %s", path);
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
