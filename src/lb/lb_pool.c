#include "lb_pool.h"

#include "core/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const lb_health_names[] = {"up", "down"};
static const char *const lb_admin_names[] = {"ready", "drain", "maint"};

static int
lb_pool_add_server(struct lb_pool *pool, size_t i, const struct lb_server_cfg *c)
{
	struct lb_server *s = &pool->servers[i];
	s->name = strdup(c->name);
	if (!s->name)
		return -ENOMEM;
	s->addr = c->address;
	int r = net_addr_to_sockaddr(&s->addr, &s->sa, &s->salen);
	if (r < 0)
		return r;
	s->index = (unsigned)i;
	s->backup = c->backup;
	s->send_proxy = c->send_proxy;
	s->maxconn = c->maxconn;
	s->cfg_disabled = c->disabled;
	s->cfg_weight = (unsigned)c->weight;
	atomic_init(&s->health, LB_HEALTH_UP);
	atomic_init(&s->admin, c->disabled ? LB_ADMIN_MAINT : LB_ADMIN_READY);
	atomic_init(&s->weight, (unsigned)c->weight);
	return 0;
}

int
lb_pool_new(const struct lb_listener_cfg *cfg, struct lb_pool **out)
{
	const struct lb_server_cfg *sc = cfg->servers.items;
	if (cfg->servers.n == 0 || cfg->servers.n > LB_SERVERS_MAX)
		return -EINVAL;
	struct lb_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->servers = calloc(cfg->servers.n, sizeof(*pool->servers));
	pool->listener = strdup(cfg->name ? cfg->name : "");
	int r = pool->servers && pool->listener ? 0 : -ENOMEM;
	pool->n = cfg->servers.n;
	for (size_t i = 0; r >= 0 && i < pool->n; i++)
		r = lb_pool_add_server(pool, i, &sc[i]);
	if (r < 0) {
		lb_pool_free(pool);
		return r;
	}
	pool->slow_start_ns = cfg->slow_start_ms * 1000000ull;
	pool->passive_errors = (unsigned)cfg->passive.errors;
	pool->passive_cooldown_ns = cfg->passive.cooldown_ms * 1000000ull;
	pool->count_5xx = cfg->passive.count_5xx;
	pool->has_check = cfg->check.type != LB_CHECK_NONE;
	pool->maxclients = cfg->maxconn;
	pool->rr_shared = cfg->balance_scope == LB_BALANCE_SCOPE_LISTENER;
	*out = pool;
	return 0;
}

void
lb_pool_free(struct lb_pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; pool->servers && i < pool->n; i++)
		free(pool->servers[i].name);
	free(pool->servers);
	free(pool->listener);
	free(pool);
}

struct lb_server *
lb_pool_find(struct lb_pool *pool, const char *name)
{
	for (size_t i = 0; i < pool->n; i++)
		if (!strcmp(pool->servers[i].name, name))
			return &pool->servers[i];
	return NULL;
}

static void
lb_pool_changed(struct lb_pool *pool)
{
	atomic_fetch_add_explicit(&pool->version, 1, memory_order_release);
}

bool
lb_server_usable(const struct lb_pool *pool, const struct lb_server *s, uint64_t now_ns)
{
	if (atomic_load_explicit(&s->admin, memory_order_relaxed) != LB_ADMIN_READY ||
	    atomic_load_explicit(&s->weight, memory_order_relaxed) == 0)
		return false;
	if (atomic_load_explicit(&s->health, memory_order_relaxed) == LB_HEALTH_UP)
		return true;
	/* without an active check a passive ejection ends after the cooldown (half-open) */
	uint64_t at = atomic_load_explicit(&s->ejected_at_ns, memory_order_relaxed);
	return !pool->has_check && at && now_ns - at >= pool->passive_cooldown_ns;
}

unsigned
lb_server_weight(const struct lb_pool *pool, const struct lb_server *s, uint64_t now_ns)
{
	unsigned w = atomic_load_explicit(&s->weight, memory_order_relaxed);
	uint64_t since = atomic_load_explicit(&s->up_since_ns, memory_order_relaxed);
	if (!pool->slow_start_ns || !since || now_ns - since >= pool->slow_start_ns || w == 0)
		return w;
	uint64_t ramp = (uint64_t)w * (now_ns - since) / pool->slow_start_ns;
	return ramp ? (unsigned)ramp : 1;
}

bool
lb_server_has_slot(const struct lb_server *s)
{
	return !s->maxconn || atomic_load_explicit(&s->active, memory_order_relaxed) < s->maxconn;
}

bool
lb_pool_set_health(struct lb_pool *pool, struct lb_server *s, enum lb_health h, uint64_t now_ns)
{
	int old = atomic_exchange(&s->health, (int)h);
	if (old == (int)h)
		return false;
	if (h == LB_HEALTH_UP) {
		atomic_store(&s->up_since_ns, now_ns ? now_ns : 1);
		atomic_store(&s->ejected_at_ns, 0);
		atomic_store(&s->passive_errors, 0);
		atomic_store(&pool->all_down_logged, 0);
	}
	atomic_fetch_add(&s->transitions, 1);
	lb_pool_changed(pool);
	return true;
}

bool
lb_pool_set_admin(struct lb_pool *pool, struct lb_server *s, enum lb_admin a)
{
	int old = atomic_exchange(&s->admin, (int)a);
	if (old == (int)a)
		return false;
	if (a == LB_ADMIN_READY)
		atomic_store(&pool->all_down_logged, 0);
	lb_pool_changed(pool);
	return true;
}

int
lb_pool_set_weight(struct lb_pool *pool, struct lb_server *s, int64_t weight)
{
	if (weight < 0 || weight > LB_WEIGHT_MAX)
		return -ERANGE;
	atomic_store(&s->weight, (unsigned)weight);
	lb_pool_changed(pool);
	return 0;
}

int
lb_pool_passive(struct lb_pool *pool, struct lb_server *s, bool ok, uint64_t now_ns)
{
	if (ok) {
		if (atomic_load_explicit(&s->passive_errors, memory_order_relaxed))
			atomic_store_explicit(&s->passive_errors, 0, memory_order_relaxed);
		/* a half-open server that answered is back */
		if (!pool->has_check &&
		    atomic_load_explicit(&s->ejected_at_ns, memory_order_relaxed) &&
		    lb_pool_set_health(pool, s, LB_HEALTH_UP, now_ns))
			return LB_PASSIVE_RECOVERED;
		return LB_PASSIVE_NONE;
	}
	atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
	if (!pool->passive_errors)
		return LB_PASSIVE_NONE;
	unsigned n = atomic_fetch_add(&s->passive_errors, 1) + 1;
	uint64_t at = atomic_load(&s->ejected_at_ns);
	if (at && !pool->has_check) {
		/* the half-open try failed: another cooldown */
		atomic_store(&s->ejected_at_ns, now_ns ? now_ns : 1);
		return LB_PASSIVE_NONE;
	}
	if (n < pool->passive_errors)
		return LB_PASSIVE_NONE;
	atomic_store(&s->ejected_at_ns, now_ns ? now_ns : 1);
	return lb_pool_set_health(pool, s, LB_HEALTH_DOWN, now_ns) ? LB_PASSIVE_EJECTED
	                                                           : LB_PASSIVE_NONE;
}

/* Peak-EWMA (as in Finagle/linkerd): a slower sample is taken at once, faster ones decay in. */
void
lb_server_observe_latency(struct lb_server *s, uint64_t latency_ns, uint64_t now_ns)
{
	const double tau_ns = 10e9;
	uint64_t prev = atomic_load_explicit(&s->ewma_ns, memory_order_relaxed);
	uint64_t stamp = atomic_exchange_explicit(&s->ewma_stamp_ns, now_ns, memory_order_relaxed);
	uint64_t next = latency_ns;
	if (prev && latency_ns < prev) {
		double dt = stamp && now_ns > stamp ? (double)(now_ns - stamp) : 0;
		double w = dt >= tau_ns ? 0 : 1.0 - dt / tau_ns;
		next = (uint64_t)((double)prev * w + (double)latency_ns * (1.0 - w));
	}
	atomic_store_explicit(&s->ewma_ns, next, memory_order_relaxed);
}

const char *
lb_health_name(int h)
{
	return h >= 0 && h <= LB_HEALTH_DOWN ? lb_health_names[h] : "?";
}

const char *
lb_admin_name(int a)
{
	return a >= 0 && a <= LB_ADMIN_MAINT ? lb_admin_names[a] : "?";
}
