#include "guard_config.h"

#include "guard_match.h"
#include "guard_nft.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const guard_modes[] = {"enforce", "observe", NULL};
static const char *const guard_source_types[] = {"journal", "file", NULL};

#define RATE(k, t, m) .key = k, .type = t, .offset = offsetof(struct guard_rate_cfg, m)
static const struct cfg_field guard_rate_fields[] = {
    {RATE("port", CFG_INT, port), .min = 1, .max = 65535, .help = "TCP port (or ports:)"},
    {RATE("ports", CFG_LIST, ports), .elem = CFG_INT, .min = 1, .max = 65535,
     .help = "TCP ports sharing one list, as one --name does"},
    {RATE("seconds", CFG_INT, seconds), .def = "180", .min = 1, .max = 86400 * 7,
     .help = "--seconds: the window"},
    {RATE("hitcount", CFG_INT, hitcount), .def = "4", .min = 1, .max = GUARD_NFT_HITCOUNT_MAX,
     .help = "--hitcount: this many new connections in the window pass, the next is dropped"},
    {0},
};

static void
guard_config_check_rate(void *obj, struct cfg_check *chk)
{
	const struct guard_rate_cfg *r = obj;
	if (!r->port == !r->ports.n)
		cfg_check_error(chk, "port", "give either port or ports");
	else if (r->ports.n > GUARD_NFT_PORTS_MAX)
		cfg_check_error(chk, "ports", "at most %d ports", GUARD_NFT_PORTS_MAX);
}

static const struct cfg_schema guard_rate_schema = {
    .name = "rate",
    .size = sizeof(struct guard_rate_cfg),
    .fields = guard_rate_fields,
    .check = guard_config_check_rate,
};

#define SRC(k, t, m) .key = k, .type = t, .offset = offsetof(struct guard_source_cfg, m)
static const struct cfg_field guard_source_fields[] = {
    {SRC("type", CFG_ENUM, type), .choices = guard_source_types, .flags = CFG_F_REQUIRED,
     .help = "journal or file"},
    {SRC("match", CFG_STRING, match),
     .help = "journal: syslog identifier (sshd: also sshd-session)"},
    {SRC("path", CFG_STRING, path), .help = "file: the log file, followed across rotation"},
    {SRC("directory", CFG_STRING, directory),
     .help = "journal: read the journal files in this directory (journalctl -D)"},
    {0},
};

static void
guard_config_check_source(void *obj, struct cfg_check *chk)
{
	const struct guard_source_cfg *s = obj;
	if (s->type == GUARD_SOURCE_FILE && (!s->path || !*s->path))
		cfg_check_error(chk, "path", "a file source needs path");
	else if (s->type == GUARD_SOURCE_FILE && (s->match || s->directory))
		cfg_check_error(chk, s->match ? "match" : "directory", "only for a journal source");
	else if (s->type == GUARD_SOURCE_JOURNAL && s->path)
		cfg_check_error(chk, "path", "only for a file source (journal: directory)");
	else if (s->type == GUARD_SOURCE_JOURNAL && s->match && !*s->match)
		cfg_check_error(chk, "match", "expected a syslog identifier");
}

static const struct cfg_schema guard_source_schema = {
    .name = "sources",
    .size = sizeof(struct guard_source_cfg),
    .fields = guard_source_fields,
    .check = guard_config_check_source,
};

#define BAN(k, t, m) .key = k, .type = t, .offset = offsetof(struct guard_ban_cfg, m)
static const struct cfg_field guard_ban_fields[] = {
    {BAN("threshold", CFG_INT, threshold), .def = "30", .min = 1, .max = 1000000,
     .help = "danger that bans (most failures score 10)"},
    {BAN("window", CFG_DURATION, window_ms), .def = "30m", .min = 1000, .max = 7ull * 86400000,
     .help = "danger older than this no longer counts"},
    {BAN("time", CFG_DURATION, time_ms), .def = "2m", .min = 1000, .max = 365ull * 86400000,
     .help = "the first ban's length"},
    {BAN("escalate", CFG_STRING, escalate_text), .def = "2.0",
     .help = "each repeat ban lasts this many times longer (1.0: never longer)"},
    {BAN("max-time", CFG_DURATION, max_time_ms), .def = "7d", .min = 1000, .max = 365ull * 86400000,
     .help = "escalation stops at this length"},
    {BAN("permanent-after", CFG_INT, permanent_after), .def = "5", .min = 0, .max = 1000,
     .help = "the ban that makes this many is permanent (0: none is)"},
    {0},
};

static void
guard_config_check_ban(void *obj, struct cfg_check *chk)
{
	struct guard_ban_cfg *b = obj;
	char *end = NULL;
	double e = b->escalate_text ? strtod(b->escalate_text, &end) : 0;
	if (!end || end == b->escalate_text || *end || !isfinite(e) || e < 1.0 || e > 100.0)
		cfg_check_error(chk, "escalate", "expected a number from 1.0 to 100");
	else
		b->escalate = e;
	if (b->max_time_ms < b->time_ms)
		cfg_check_error(chk, "max-time", "shorter than time");
}

static const struct cfg_schema guard_ban_schema = {
    .name = "ban",
    .size = sizeof(struct guard_ban_cfg),
    .fields = guard_ban_fields,
    .check = guard_config_check_ban,
};

#define SHARE(k, t, m) .key = k, .type = t, .offset = offsetof(struct guard_share_cfg, m)
static const struct cfg_field guard_share_fields[] = {
    {SHARE("postgres", CFG_STRING, postgres),
     .help = "libpq connection string of the fleet's database (TLS as libpq offers)"},
    {SHARE("name", CFG_STRING, name), .help = "this machine in the fleet (default: host name)"},
    {SHARE("accept", CFG_LIST, accept), .elem = CFG_STRING, .def = "[ban, permanent]",
     .help = "which kinds of the peers' bans are applied here: ban, permanent"},
    {SHARE("peers", CFG_LIST, peers), .elem = CFG_STRING,
     .help = "apply only these machines' bans (default: every machine's)"},
    {0},
};

static void
guard_config_check_share(void *obj, struct cfg_check *chk)
{
	struct guard_share_cfg *c = obj;
	c->enabled = c->postgres != NULL;
	c->accept_ban = c->accept_permanent = false;
	for (size_t i = 0; i < c->accept.n; i++) {
		const char *k = ((char **)c->accept.items)[i];
		if (!strcmp(k, "ban"))
			c->accept_ban = true;
		else if (!strcmp(k, "permanent"))
			c->accept_permanent = true;
		else
			cfg_check_error(chk, "accept", "expected ban or permanent, got \"%s\"", k);
	}
	if (c->postgres && !*c->postgres)
		cfg_check_error(chk, "postgres", "expected a libpq connection string");
	if (c->name && (!*c->name || strlen(c->name) >= 64))
		cfg_check_error(chk, "name", "expected 1 to 63 characters");
	if (!c->postgres && (c->name || c->peers.n))
		cfg_check_error(chk, "postgres", "share needs postgres");
}

static const struct cfg_schema guard_share_schema = {
    .name = "share",
    .size = sizeof(struct guard_share_cfg),
    .fields = guard_share_fields,
    .check = guard_config_check_share,
};

#define FLD(k, t, m) .key = k, .type = t, .offset = offsetof(struct guard_cfg, m)
static const struct cfg_field guard_fields[] = {
    {FLD("mode", CFG_ENUM, mode), .choices = guard_modes, .def = "enforce",
     .help = "enforce, or observe: log \"would ban\" and leave the firewall alone"},
    {FLD("rate", CFG_LIST, rate), .elem = CFG_SECTION, .schema = &guard_rate_schema,
     .help = "kernel rules: {port, seconds, hitcount} as iptables -m recent --update"},
    {FLD("sources", CFG_LIST, sources), .elem = CFG_SECTION, .schema = &guard_source_schema,
     .help = "logs read for authentication failures"},
    {FLD("whitelist", CFG_LIST, whitelist), .elem = CFG_STRING,
     .help = "CIDRs, addresses and host names never banned nor rate-limited"},
    {FLD("trust-logged-in", CFG_DURATION, trust_ms), .def = "24h", .max = 30ull * 86400000,
     .help = "a source that logged in is exempt this long (0: off)"},
    {FLD("ban", CFG_SECTION, ban), .schema = &guard_ban_schema},
    {FLD("ipv6-prefix", CFG_INT, ipv6_prefix), .def = "64", .min = 16, .max = 128,
     .help = "IPv6 sources are scored and banned per prefix of this length"},
    {FLD("blocklists", CFG_LIST, blocklists), .elem = CFG_STRING,
     .help = "files of addresses and CIDRs dropped always (reloaded on SIGHUP)"},
    {FLD("postfix", CFG_BOOL, postfix), .def = "false",
     .help = "also count Postfix SASL authentication failures"},
    {FLD("dovecot", CFG_BOOL, dovecot), .def = "false",
     .help = "also count Dovecot authentication failures"},
    {FLD("keep-table", CFG_BOOL, keep_table), .def = "true",
     .help = "leave table inet rampart and its bans in place when guard stops"},
    {FLD("kill-connections", CFG_BOOL, kill_connections), .def = "false",
     .help = "a ban also closes the source's open TCP connections (sock_diag SOCK_DESTROY)"},
    {FLD("state", CFG_STRING, state), .def = "/var/lib/rampart/guard.db",
     .help = "SQLite file with every ban and its history"},
    {FLD("user", CFG_STRING, user),
     .help = "rampart guard started as root reads logs as this user"},
    {FLD("share", CFG_SECTION, share), .schema = &guard_share_schema,
     .help = "share bans with the other machines of a fleet through PostgreSQL"},
    {FLD("set-size", CFG_INT, set_size), .def = "65535", .min = 16, .max = GUARD_NFT_SET_SIZE_MAX,
     .help = "sources each rate set can hold"},
    {0},
};

static void
guard_config_check(void *obj, struct cfg_check *chk)
{
	struct guard_cfg *c = obj;
	c->enabled = cfg_check_present(chk);
	if (c->rate.n > GUARD_NFT_RATES_MAX)
		cfg_check_error(chk, "rate", "at most %d rules", GUARD_NFT_RATES_MAX);
	if (c->state && !*c->state)
		cfg_check_error(chk, "state", "expected a file name");
	for (size_t i = 0; i < c->whitelist.n; i++)
		if (!((char **)c->whitelist.items)[i][0])
			cfg_check_error(chk, "whitelist", "entry %zu is empty", i + 1);
}

const struct cfg_schema guard_config_schema = {
    .name = "guard",
    .size = sizeof(struct guard_cfg),
    .fields = guard_fields,
    .check = guard_config_check,
};

unsigned
guard_config_match_flags(const struct guard_cfg *c)
{
	return (c->postfix ? GUARD_MATCH_POSTFIX : 0) | (c->dovecot ? GUARD_MATCH_DOVECOT : 0);
}
