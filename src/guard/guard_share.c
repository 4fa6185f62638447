#include "guard_share.h"

#include "core/cleanup.h"
#include "core/log.h"
#include "guard_fleet.h"
#include "guard_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARE_LAST_ID_KEY "fleet.last_id"
#define SHARE_EPOCH_KEY "fleet.epoch"
/* The widest prefixes a peer's ban may cover (a /16 of IPv4, a /32 of IPv6: one provider). */
#define SHARE_PREFIX_MIN4 16
#define SHARE_PREFIX_MIN6 32
/* A batch bigger than this is applied in parts: memory stays bounded whatever a fetch holds. */
#define SHARE_BATCH_MAX 16384

struct share_batch {
	struct guard_ban *bans;
	struct guard_nft_elem *elems;
	size_t n;
	int64_t last_id; /* of the rows handled, applied or not */
};

struct guard_share {
	struct guard_store *store;
	struct guard_writer *writer;
	guard_share_exempt_fn exempt;
	void *data;
	char name[GUARD_FLEET_NAME_MAX];
	bool accept_ban, accept_permanent;
	char **peers;
	size_t npeers;
	struct guard_fleet *fleet;
	struct share_batch batch;
	uint64_t applied, rejected, expired;
	int64_t seq_base; /* added to the store's history ids: see guard_share_seq_base */
};

static bool
share_peer_ok(const struct guard_share *s, const char *machine)
{
	for (size_t i = 0; i < s->npeers; i++)
		if (!strcmp(s->peers[i], machine))
			return true;
	return s->npeers == 0;
}

static void
share_reject(struct guard_share *s, const struct guard_fleet_event *e, const char *why)
{
	s->rejected++;
	log_warn("guard: fleet row not applied id=%lld machine=\"%.63s\" prefix=\"%.63s\" why=%s",
	         (long long)e->id, e->machine, e->prefix, why);
}

/* The batch's bans into the store and the sets, each in one transaction; the cursor after. */
static void
share_flush(struct guard_share *s)
{
	struct share_batch *b = &s->batch;
	int r = 0;
	if (b->n) {
		r = guard_store_ban_many(s->store, b->bans, b->n);
		if (r >= 0)
			r = guard_writer_ban(s->writer, b->elems, b->n);
		if (r < 0)
			log_error("guard: cannot apply fleet bans count=%zu error=\"%s\"", b->n,
			          strerror(-r));
		else
			s->applied += b->n;
	}
	/* a failed batch is fetched again after the next restart: the cursor stays */
	if (r >= 0 && b->last_id)
		guard_store_kv_set(s->store, SHARE_LAST_ID_KEY, b->last_id);
	b->n = 0;
}

static void
share_on_batch_end(void *data)
{
	share_flush(data);
}

/* A ban's kind and expiry as a guard writes them: permanent without an expiry, timed with one
 * nftables takes (a longer one would fail the whole batch, and every start after it). */
static bool
share_expiry_ok(const struct guard_fleet_event *e)
{
	if (e->action != GUARD_FLEET_BAN)
		return true;
	if (e->permanent)
		return e->expires_ms == 0;
	int64_t now = guard_now_ms();
	return e->expires_ms > 0 && (e->expires_ms <= now ||
	                             (uint64_t)(e->expires_ms - now) <= GUARD_NFT_TIMEOUT_MAX_MS);
}

/* The row's prefix, checked as any untrusted input; 0, or why not. */
static const char *
share_check(struct guard_share *s, const struct guard_fleet_event *e, struct net_cidr *net)
{
	char canon[NET_CIDR_STRLEN];
	if (!e->prefix[0] || net_cidr_parse(e->prefix, net) < 0)
		return "bad-address";
	/* host bits set or another spelling: not what a guard writes */
	if (net_cidr_format(net, canon, sizeof(canon)) < 0 || strcmp(canon, e->prefix))
		return "bad-address";
	/* kind 'ban' without an expiry would be a permanent ban past share.accept */
	if (!share_expiry_ok(e))
		return "bad-expiry";
	/* one peer must not be able to drop whole continents here */
	if (net->prefix < (net->addr.family == AF_INET ? SHARE_PREFIX_MIN4 : SHARE_PREFIX_MIN6))
		return "too-wide";
	if (!share_peer_ok(s, e->machine))
		return "machine-not-accepted";
	if (e->action == GUARD_FLEET_BAN && !(e->permanent ? s->accept_permanent : s->accept_ban))
		return "kind-not-accepted";
	if (e->action == GUARD_FLEET_BAN && s->exempt(net, s->data))
		return "whitelisted-or-trusted";
	return NULL;
}

/* A peer's ban, unless this machine already holds one at least as long. */
static void
share_add(struct guard_share *s, const struct guard_fleet_event *e, const struct net_cidr *net)
{
	int64_t now = guard_now_ms();
	struct guard_ban old;
	if (e->expires_ms && e->expires_ms <= now) {
		s->expired++;
		return;
	}
	if (guard_store_get(s->store, net, &old) > 0 &&
	    (old.expires_ms == 0 || (e->expires_ms && old.expires_ms >= e->expires_ms)))
		return;
	if (s->batch.n == SHARE_BATCH_MAX)
		share_flush(s);
	struct guard_ban *b = &s->batch.bans[s->batch.n];
	*b = (struct guard_ban){.net = *net,
	                        .created_ms = e->created_ms,
	                        .expires_ms = e->permanent ? 0 : e->expires_ms,
	                        .count = 1,
	                        .origin = GUARD_ORIGIN_AUTO};
	snprintf(b->machine, sizeof(b->machine), "%s", e->machine);
	snprintf(b->reason, sizeof(b->reason), "%s", e->reason);
	s->batch.elems[s->batch.n++] = (struct guard_nft_elem){
	    .net = *net, .timeout_ms = b->expires_ms ? (uint64_t)(b->expires_ms - now) : 0};
}

static void
share_remove(struct guard_share *s, const struct guard_fleet_event *e, const struct net_cidr *net)
{
	share_flush(s); /* a ban earlier in the batch comes first */
	int was = guard_store_unban(s->store, net, guard_now_ms(), e->machine, false, NULL);
	int r = was > 0 ? guard_writer_unban(s->writer, net, 1) : was;
	if (r < 0)
		log_error("guard: cannot apply a fleet unban prefix=%s error=\"%s\"", e->prefix,
		          strerror(-r));
	else if (was > 0)
		s->applied++;
}

static void
share_on_event(const struct guard_fleet_event *e, void *data)
{
	struct guard_share *s = data;
	struct net_cidr net;
	const char *why = share_check(s, e, &net);
	if (why)
		share_reject(s, e, why);
	else if (e->action == GUARD_FLEET_BAN)
		share_add(s, e, &net);
	else
		share_remove(s, e, &net);
	if (e->id > s->batch.last_id)
		s->batch.last_id = e->id;
}

struct share_pending {
	struct guard_share *s;
	struct guard_fleet_event *out;
	size_t n, max;
};

void
guard_share_event(const char *name, const struct guard_ban *b, bool unban, int64_t seq,
                  struct guard_fleet_event *e)
{
	*e = (struct guard_fleet_event){.seq = seq,
	                                .action = unban ? GUARD_FLEET_UNBAN : GUARD_FLEET_BAN,
	                                .permanent = !unban && b->expires_ms == 0,
	                                .created_ms = b->created_ms,
	                                .expires_ms = unban ? 0 : b->expires_ms};
	snprintf(e->machine, sizeof(e->machine), "%s", name);
	snprintf(e->reason, sizeof(e->reason), "%s", b->reason);
	if (net_cidr_format(&b->net, e->prefix, sizeof(e->prefix)) < 0)
		e->prefix[0] = 0;
}

static int
share_pending_one(const struct guard_ban *b, void *data)
{
	struct share_pending *p = data;
	guard_share_event(p->s->name, b, b->unban, b->seq, &p->out[p->n++]);
	return p->n == p->max;
}

static size_t
share_on_pending(int64_t after, struct guard_fleet_event *out, size_t max, void *data)
{
	struct share_pending p = {.s = data, .out = out, .max = max};
	/* the fleet's last number from an earlier state file is below our base: push all */
	int64_t after_id = after >= p.s->seq_base ? after - p.s->seq_base : 0;
	if (!max || guard_store_each_pending(p.s->store, after_id, max, share_pending_one, &p) < 0)
		return 0;
	for (size_t i = 0; i < p.n; i++)
		out[i].seq += p.s->seq_base;
	return p.n;
}

static void
share_on_state(bool up, const char *why, void *data)
{
	struct guard_share *s = data;
	if (up)
		log_info("guard: fleet connected name=%s", s->name);
	else
		log_warn("guard: fleet disconnected, blocking goes on locally why=\"%s\"",
		         why ? why : "?");
}

void
guard_share_publish(struct guard_share *s, const struct guard_ban *b, bool unban, int64_t seq)
{
	struct guard_fleet_event e;
	if (!s || seq <= 0)
		return;
	guard_share_event(s->name, b, unban, s->seq_base + seq, &e);
	/* when it cannot go now it goes from the store's history after the reconnect */
	guard_fleet_publish(s->fleet, &e);
}

const char *
guard_share_name(const struct guard_share *s)
{
	return s->name;
}

int
guard_share_collect(struct buf *out, struct guard_share *s)
{
	struct guard_fleet_stats st;
	guard_fleet_stats(s->fleet, &st);
	return buf_printf(
	    out,
	    "# HELP rampart_guard_fleet_received_total Peers' rows received from the fleet\n"
	    "# TYPE rampart_guard_fleet_received_total counter\n"
	    "rampart_guard_fleet_received_total %llu\n"
	    "# HELP rampart_guard_fleet_applied_total Peers' bans and unbans applied here\n"
	    "# TYPE rampart_guard_fleet_applied_total counter\n"
	    "rampart_guard_fleet_applied_total %llu\n"
	    "# HELP rampart_guard_fleet_rejected_total Peers' rows refused (address, kind, machine,"
	    " whitelist)\n"
	    "# TYPE rampart_guard_fleet_rejected_total counter\n"
	    "rampart_guard_fleet_rejected_total %llu\n"
	    "# HELP rampart_guard_fleet_published_total This machine's rows written to the fleet\n"
	    "# TYPE rampart_guard_fleet_published_total counter\n"
	    "rampart_guard_fleet_published_total %llu\n"
	    "# HELP rampart_guard_fleet_connected Whether the fleet's database is connected\n"
	    "# TYPE rampart_guard_fleet_connected gauge\n"
	    "rampart_guard_fleet_connected %d\n"
	    "# HELP rampart_guard_fleet_reconnects_total Connections to the database lost\n"
	    "# TYPE rampart_guard_fleet_reconnects_total counter\n"
	    "rampart_guard_fleet_reconnects_total %llu\n",
	    (unsigned long long)st.received, (unsigned long long)s->applied,
	    (unsigned long long)s->rejected, (unsigned long long)st.published, st.connected ? 1 : 0,
	    (unsigned long long)st.reconnects);
}

void
guard_share_stop(struct guard_share *s)
{
	if (!s)
		return;
	guard_fleet_free(s->fleet);
	share_flush(s);
	for (size_t i = 0; i < s->npeers; i++)
		free(s->peers[i]);
	free(s->peers);
	free(s->batch.bans);
	free(s->batch.elems);
	free(s);
}

int
guard_share_seq_base(struct guard_store *store, int64_t *base)
{
	int64_t epoch = 0;
	int r = guard_store_kv_get(store, SHARE_EPOCH_KEY, &epoch);
	if (r == 0) {
		epoch = guard_now_ms() / 1000;
		r = guard_store_kv_set(store, SHARE_EPOCH_KEY, epoch);
	}
	if (r < 0)
		return r;
	*base = epoch << 32;
	return 0;
}

int
guard_share_machine(const struct guard_cfg *cfg, char *buf, size_t len)
{
	if (cfg->share.name)
		snprintf(buf, len, "%s", cfg->share.name);
	else if (gethostname(buf, len - 1) < 0)
		return -errno;
	buf[len - 1] = 0;
	return 0;
}

static int
share_copy_cfg(struct guard_share *s, const struct guard_cfg *cfg)
{
	const struct guard_share_cfg *c = &cfg->share;
	int r = guard_share_machine(cfg, s->name, sizeof(s->name));
	if (r < 0)
		return r;
	s->accept_ban = c->accept_ban;
	s->accept_permanent = c->accept_permanent;
	s->peers = calloc(c->peers.n ? c->peers.n : 1, sizeof(*s->peers));
	if (!s->peers)
		return -ENOMEM;
	for (size_t i = 0; i < c->peers.n; i++)
		if (!(s->peers[s->npeers++] = strdup(((char **)c->peers.items)[i])))
			return -ENOMEM;
	s->batch.bans = calloc(SHARE_BATCH_MAX, sizeof(*s->batch.bans));
	s->batch.elems = calloc(SHARE_BATCH_MAX, sizeof(*s->batch.elems));
	return s->batch.bans && s->batch.elems ? 0 : -ENOMEM;
}

int
guard_share_start(struct ev_loop *loop, const struct guard_cfg *cfg, struct guard_store *store,
                  struct guard_writer *writer, guard_share_exempt_fn exempt, void *data,
                  struct guard_share **out)
{
	static const struct guard_fleet_ops ops = {.event = share_on_event,
	                                           .batch_end = share_on_batch_end,
	                                           .pending = share_on_pending,
	                                           .state = share_on_state};
	struct guard_share *s = calloc(1, sizeof(*s));
	int64_t last_id = 0;
	if (!s)
		return -ENOMEM;
	*s = (struct guard_share){.store = store, .writer = writer, .exempt = exempt, .data = data};
	int r = share_copy_cfg(s, cfg);
	if (r >= 0)
		r = guard_store_kv_get(store, SHARE_LAST_ID_KEY, &last_id);
	if (r >= 0)
		r = guard_share_seq_base(store, &s->seq_base);
	struct guard_fleet_cfg fc = {.conninfo = cfg->share.postgres, .name = s->name};
	if (r >= 0)
		r = guard_fleet_new(loop, &fc, &ops, s, last_id, &s->fleet);
	if (r < 0) {
		guard_share_stop(s);
		return r;
	}
	log_info("guard: fleet sharing name=%s accept=%s%s%s last_id=%lld", s->name,
	         s->accept_ban ? "ban" : "", s->accept_ban && s->accept_permanent ? "," : "",
	         s->accept_permanent ? "permanent" : "", (long long)last_id);
	*out = s;
	return 0;
}
