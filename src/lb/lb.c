#include "lb.h"

#include "core/cleanup.h"
#include "core/log.h"
#include "lb_check.h"
#include "lb_ctl.h"
#include "lb_stats.h"
#include "lb_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A listening address, one SO_REUSEPORT socket per worker, kept across reloads. */
struct lb_bound {
	struct net_addr addr;
	int *fds;
	bool used; /* by the generation being built */
};

struct lb {
	struct ev_loop *loop;
	unsigned nthreads;
	struct lb_worker *workers;
	_Atomic int64_t conns;
	struct lb_gen *gen;
	uint64_t next_id;
	struct lb_check **checks;
	size_t nchecks;
	struct lb_ctl *ctl;
	char *ctl_path;
	struct lb_stats_server *stats;
	struct net_addr stats_addr;
	struct lb_bound *bound;
	size_t nbound;
};

static void
lb_bound_close(struct lb *lb, struct lb_bound *b)
{
	for (unsigned t = 0; b->fds && t < lb->nthreads; t++)
		if (b->fds[t] >= 0)
			close(b->fds[t]);
	free(b->fds);
	b->fds = NULL;
}

static bool
lb_addr_is_any(const struct net_addr *a)
{
	static const uint8_t zero[16];
	return !memcmp(a->u.bytes, zero, a->family == AF_INET6 ? 16 : 4);
}

/* One of our sockets shares addr's port with a wildcard on either side: a bind test would
 * find that one. */
static bool
lb_holds_overlap(const struct lb *lb, const struct net_addr *addr)
{
	for (size_t i = 0; i < lb->nbound; i++) {
		const struct net_addr *b = &lb->bound[i].addr;
		if (b->family == addr->family && b->port == addr->port &&
		    (lb_addr_is_any(b) || lb_addr_is_any(addr)))
			return true;
	}
	return false;
}

/* SO_REUSEPORT lets any process of the same user bind a listening address too and take part
 * of its connections, unseen: a bind without it tells whether anyone holds addr. It binds
 * only (a connection attempt meanwhile is refused, as before we listen) and SO_REUSEADDR
 * passes over connections of an earlier run. Our own socket of an overlapping address would
 * answer too: then the test is skipped. */
static int
lb_addr_probe(const struct lb *lb, const struct net_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	if (lb_holds_overlap(lb, addr))
		return 0;
	int r = net_addr_to_sockaddr(addr, &ss, &sl);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	return 0;
}

/* The sockets for addr: kept ones, or new ones bound on every worker (appended to lb->bound,
 * closed by the caller on failure). */
static int
lb_bound_get(struct lb *lb, const struct net_addr *addr, struct lb_bound **out)
{
	for (size_t i = 0; i < lb->nbound; i++)
		if (!lb->bound[i].used && net_addr_equal(&lb->bound[i].addr, addr)) {
			lb->bound[i].used = true;
			*out = &lb->bound[i];
			return 0;
		}
	int r = lb_addr_probe(lb, addr);
	if (r < 0)
		return r;
	struct lb_bound *nb = realloc(lb->bound, (lb->nbound + 1) * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	lb->bound = nb;
	struct lb_bound *b = &nb[lb->nbound];
	*b = (struct lb_bound){.addr = *addr, .used = true};
	b->fds = malloc(lb->nthreads * sizeof(int));
	if (!b->fds)
		return -ENOMEM;
	lb->nbound++;
	for (unsigned t = 0; t < lb->nthreads; t++)
		b->fds[t] = -1;
	for (unsigned t = 0; t < lb->nthreads; t++)
		if ((b->fds[t] =
		         net_listen_tcp(addr, NET_LISTEN_REUSEPORT | NET_LISTEN_V6ONLY, 4096)) < 0)
			return b->fds[t];
	*out = b;
	return 0;
}

/* A server kept by a reload keeps its health (a dead one stays out) and the admin state and
 * weight set through ctl; a change of its disabled: or weight: key in the file wins. */
static void
lb_carry_state(struct lb_pool *np, const struct lb_gen *old)
{
	for (size_t p = 0; old && p < old->n; p++) {
		struct lb_pool *op = old->pools[p];
		if (strcmp(op->listener, np->listener))
			continue;
		for (size_t i = 0; i < np->n; i++) {
			struct lb_server *ns = &np->servers[i];
			struct lb_server *os = lb_pool_find(op, ns->name);
			if (!os || !net_addr_equal(&os->addr, &ns->addr))
				continue;
			atomic_store(&ns->health, atomic_load(&os->health));
			atomic_store(&ns->ejected_at_ns, atomic_load(&os->ejected_at_ns));
			atomic_store(&ns->up_since_ns, atomic_load(&os->up_since_ns));
			int oa = atomic_load(&os->admin);
			if (os->cfg_disabled == ns->cfg_disabled &&
			    oa != (os->cfg_disabled ? LB_ADMIN_MAINT : LB_ADMIN_READY))
				atomic_store(&ns->admin, oa);
			unsigned ow = atomic_load(&os->weight);
			if (os->cfg_weight == ns->cfg_weight && ow != os->cfg_weight)
				atomic_store(&ns->weight, ow);
			ns->check_ok = os->check_ok;
			ns->check_fail = os->check_fail;
			memcpy(ns->check_last, os->check_last, sizeof(ns->check_last));
		}
	}
}

/* A server slot freed on one thread may serve a session queued on any: all look. */
static void
lb_wake_workers(void *data)
{
	struct lb *lb = data;
	for (unsigned t = 0; t < lb->nthreads; t++)
		lb_worker_poke(&lb->workers[t]);
}

static int
lb_gen_build(struct lb *lb, const struct lb_cfg *cfg, struct lb_gen **out)
{
	struct lb_gen *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	atomic_init(&g->refs, 1);
	g->id = ++lb->next_id;
	int r = cfg_copy(&lb_config_schema, &g->cfg, cfg);
	if (r < 0) {
		free(g);
		return r;
	}
	g->n = g->cfg.listeners.n;
	g->pools = calloc(g->n + 1, sizeof(*g->pools));
	if (!g->pools)
		r = -ENOMEM;
	const struct lb_listener_cfg *lc = g->cfg.listeners.items;
	for (size_t i = 0; r >= 0 && i < g->n; i++)
		if ((r = lb_pool_new(&lc[i], &g->pools[i])) >= 0) {
			lb_carry_state(g->pools[i], lb->gen);
			g->pools[i]->wake_all = lb_wake_workers;
			g->pools[i]->wake_data = lb;
		}
	if (r < 0) {
		lb_gen_unref(g);
		return r;
	}
	*out = g;
	return 0;
}

/* Binds what gen needs; fds[l * nthreads + t]. New sockets are appended to lb->bound. */
static int
lb_bind_gen(struct lb *lb, const struct lb_gen *g, int *fds, char *err, size_t errlen)
{
	const struct lb_listener_cfg *lc = g->cfg.listeners.items;
	for (size_t i = 0; i < lb->nbound; i++)
		lb->bound[i].used = false;
	for (size_t l = 0; l < g->n; l++) {
		struct lb_bound *b = NULL;
		int r = lb_bound_get(lb, &lc[l].bind, &b);
		if (r < 0) {
			char a[NET_ADDR_STRLEN] = "?";
			net_addr_format(&lc[l].bind, true, a, sizeof(a));
			snprintf(err, errlen, "cannot listen on %s (listener %s): %s", a,
			         lc[l].name, strerror(-r));
			return r;
		}
		for (unsigned t = 0; t < lb->nthreads; t++)
			fds[l * lb->nthreads + t] = b->fds[t];
	}
	return 0;
}

static void
lb_view(void *data, struct lb_view *out)
{
	struct lb *lb = data;
	*out = (struct lb_view){.pools = lb->gen ? lb->gen->pools : NULL,
	                        .n = lb->gen ? lb->gen->n : 0};
}

static void
lb_checks_free(struct lb_check **checks, size_t n)
{
	for (size_t i = 0; checks && i < n; i++)
		lb_check_free(checks[i]);
	free(checks);
}

static void
lb_checks_stop(struct lb *lb)
{
	lb_checks_free(lb->checks, lb->nchecks);
	lb->checks = NULL;
	lb->nchecks = 0;
}

/* Armed on the main loop, they run once the caller returns to it: after the switch. */
static int
lb_checks_new(struct lb *lb, struct lb_gen *g, struct lb_check ***out)
{
	const struct lb_listener_cfg *lc = g->cfg.listeners.items;
	struct lb_check **checks = calloc(g->n + 1, sizeof(*checks));
	if (!checks)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		int r = lb_check_start(lb->loop, g->pools[i], &lc[i].check, &checks[i]);
		if (r < 0) {
			lb_checks_free(checks, i);
			return r;
		}
	}
	*out = checks;
	return 0;
}

/* The default socket lives in /run/rampart, which systemd's RuntimeDirectory= makes; by hand
 * the directory may be missing. */
static void
lb_ctl_mkdir(const char *path)
{
	char dir[256];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	mkdir(dir, 0755);
}

/* What a start or a reload needs, all bound and opened before anything running changes, so
 * that a failure leaves the running configuration whole. */
struct lb_next {
	struct lb_gen *gen;
	int *fds;      /* fds[l * nthreads + t] */
	int *wfds;     /* one worker's row of fds, handed over in turn */
	int *closing;  /* one worker's sockets of addresses no longer used */
	size_t nbound; /* lb->nbound before: the sockets past it are new */
	struct lb_check **checks;
	bool new_stats; /* stats replaces lb->stats (NULL: none) */
	struct lb_stats_server *stats;
	char *ctl_path; /* set: ctl replaces lb->ctl (NULL: none) */
	struct lb_ctl *ctl;
};

static void
lb_next_drop(struct lb *lb, struct lb_next *nx)
{
	while (lb->nbound > nx->nbound)
		lb_bound_close(lb, &lb->bound[--lb->nbound]);
	if (nx->gen)
		lb_checks_free(nx->checks, nx->gen->n);
	lb_gen_unref(nx->gen);
	free(nx->fds);
	free(nx->wfds);
	free(nx->closing);
	lb_stats_server_free(nx->stats);
	lb_ctl_free(nx->ctl);
	free(nx->ctl_path);
	*nx = (struct lb_next){.nbound = lb->nbound};
}

/* The stats listener follows the config; one on the same address is kept. */
static int
lb_stats_prepare(struct lb *lb, const struct lb_cfg *cfg, struct lb_next *nx, char *err,
                 size_t errlen)
{
	char a[NET_ADDR_STRLEN] = "?";
	if (net_addr_equal(&lb->stats_addr, &cfg->stats.listen))
		return 0;
	nx->new_stats = true;
	if (!cfg->stats.listen.family)
		return 0;
	int r = lb_stats_listen(lb->loop, &cfg->stats.listen, lb_view, lb, &nx->stats);
	if (r < 0) {
		net_addr_format(&cfg->stats.listen, true, a, sizeof(a));
		snprintf(err, errlen, "cannot serve stats on %s: %s", a, strerror(-r));
	}
	return r;
}

/* The ctl socket follows the config; one of the same path is kept. */
static int
lb_ctl_prepare(struct lb *lb, const struct lb_cfg *cfg, struct lb_next *nx, char *err,
               size_t errlen)
{
	const char *path = cfg->ctl_socket ? cfg->ctl_socket : "";
	if (lb->ctl_path && !strcmp(lb->ctl_path, path))
		return 0;
	nx->ctl_path = strdup(path);
	int r = nx->ctl_path ? 0 : -ENOMEM;
	if (r < 0 || !*path)
		return r;
	lb_ctl_mkdir(path);
	r = lb_ctl_listen(lb->loop, path, lb_view, lb, &nx->ctl);
	if (r < 0)
		snprintf(err, errlen, "cannot open the ctl socket %s: %s", path, strerror(-r));
	return r;
}

static int
lb_prepare(struct lb *lb, const struct lb_cfg *cfg, struct lb_next *nx, char *err, size_t errlen)
{
	struct lb_gen *g;
	nx->nbound = lb->nbound;
	int r = lb_gen_build(lb, cfg, &g);
	if (r >= 0) {
		nx->gen = g;
		nx->fds = calloc(g->n * lb->nthreads + 1, sizeof(int));
		nx->wfds = calloc(g->n + 1, sizeof(int));
		r = nx->fds && nx->wfds ? 0 : -ENOMEM;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	if ((r = lb_bind_gen(lb, g, nx->fds, err, errlen)) < 0)
		return r;
	if (!(nx->closing = calloc(lb->nbound + 1, sizeof(int)))) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	if ((r = lb_checks_new(lb, g, &nx->checks)) < 0) {
		snprintf(err, errlen, "cannot start health checks: %s", strerror(-r));
		return r;
	}
	if ((r = lb_stats_prepare(lb, cfg, nx, err, errlen)) < 0)
		return r;
	if ((r = lb_ctl_prepare(lb, cfg, nx, err, errlen)) < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

/* Set on kept sockets too: the mode or the keys may have changed. Only savings: a kernel
 * that refuses one costs nothing else. Accepted sockets inherit QUICKACK and NODELAY. */
static void
lb_listen_opts(int fd, const struct lb_listener_cfg *lc)
{
	bool http = lc->mode == LB_MODE_HTTP;
	/* an HTTP client speaks first: its connection is woken once, with its request (a
	 * server may speak first in tcp mode) */
	int defer = http && lc->defer_accept;
	/* off, the ACK of a request goes with the response instead of alone (HAProxy's
	 * tcp-smart-accept); the delayed-ACK timer acks one whose response is slow */
	int quickack = !(http && lc->smart_accept);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &quickack, sizeof(quickack));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Hands g to every worker with its sockets; sockets no longer used are closed by them. */
static void
lb_switch(struct lb *lb, struct lb_next *nx)
{
	struct lb_gen *g = nx->gen;
	for (unsigned t = 0; t < lb->nthreads; t++) {
		size_t nclose = 0;
		for (size_t l = 0; l < g->n; l++)
			nx->wfds[l] = nx->fds[l * lb->nthreads + t];
		for (size_t i = 0; i < lb->nbound; i++)
			if (!lb->bound[i].used)
				nx->closing[nclose++] = lb->bound[i].fds[t];
		lb_gen_ref(g);
		struct lb_msg m = {.type = LB_MSG_SWITCH,
		                   .gen = g,
		                   .fds = nx->wfds,
		                   .close_fds = nx->closing,
		                   .nclose = nclose};
		lb_worker_send(&lb->workers[t], &m);
		lb_gen_unref(g); /* the worker took its own reference */
	}
	/* the workers closed them */
	size_t j = 0;
	for (size_t i = 0; i < lb->nbound; i++) {
		if (lb->bound[i].used)
			lb->bound[j++] = lb->bound[i];
		else
			free(lb->bound[i].fds);
	}
	lb->nbound = j;
}

static void
lb_log_stats_addr(const struct lb *lb)
{
	struct net_addr local;
	char a[NET_ADDR_STRLEN];
	if (lb->stats && lb_stats_local(lb->stats, &local) >= 0 &&
	    net_addr_format(&local, true, a, sizeof(a)) >= 0)
		log_info("lb stats listening addr=%s", a);
}

/* Cannot fail: everything was made by lb_prepare. */
static void
lb_commit(struct lb *lb, struct lb_next *nx)
{
	struct lb_gen *g = nx->gen;
	const struct lb_listener_cfg *lc = g->cfg.listeners.items;
	for (size_t l = 0; l < g->n; l++)
		for (unsigned t = 0; t < lb->nthreads; t++)
			lb_listen_opts(nx->fds[l * lb->nthreads + t], &lc[l]);
	lb_switch(lb, nx);
	lb_checks_stop(lb);
	lb->checks = TAKE_PTR(nx->checks);
	lb->nchecks = g->n;
	lb_gen_unref(lb->gen);
	lb->gen = TAKE_PTR(nx->gen);
	if (nx->new_stats) {
		lb_stats_server_free(lb->stats);
		lb->stats = TAKE_PTR(nx->stats);
		lb->stats_addr = g->cfg.stats.listen;
		lb_log_stats_addr(lb);
	}
	if (nx->ctl_path) {
		lb_ctl_free(lb->ctl);
		lb->ctl = TAKE_PTR(nx->ctl);
		free(lb->ctl_path);
		lb->ctl_path = TAKE_PTR(nx->ctl_path);
	}
	nx->nbound = lb->nbound;
	lb_next_drop(lb, nx);
}

static unsigned
lb_threads(const struct lb_cfg *cfg)
{
	long n = cfg->threads ? cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (unsigned)n;
}

static int
lb_collect(struct buf *out, void *data)
{
	struct lb_view v;
	lb_view(data, &v);
	return lb_stats_prometheus(&v, ev_clock_ns(), out);
}

int
lb_start(struct ev_loop *loop, const struct lb_cfg *cfg, struct metrics *metrics, struct lb **out)
{
	struct lb *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	/* splice(2) into a socket the peer reset raises SIGPIPE; EPIPE is handled */
	signal(SIGPIPE, SIG_IGN);
	lb->loop = loop;
	lb->nthreads = lb_threads(cfg);
	lb->workers = calloc(lb->nthreads, sizeof(*lb->workers));
	int r = lb->workers ? 0 : -ENOMEM;
	for (unsigned t = 0; r >= 0 && t < lb->nthreads; t++)
		lb->workers[t].efd = -1; /* destroy must not close fd 0 of one never set up */
	for (unsigned t = 0; r >= 0 && t < lb->nthreads; t++)
		if ((r = lb_worker_init(&lb->workers[t], t, &lb->conns, cfg->maxconn)) >= 0) {
			lb->workers[t].want_ring = cfg->io_uring;
			lb->workers[t].busy_poll_us = (unsigned)cfg->busy_poll;
			r = lb_worker_start(&lb->workers[t]);
		}
	char err[256] = "";
	struct lb_next nx = {0};
	if (r >= 0)
		r = lb_prepare(lb, cfg, &nx, err, sizeof(err));
	/* at start the balancer runs without its ctl socket rather than not at all */
	if (r < 0 && nx.ctl_path && !nx.ctl) {
		log_error("cannot open the ctl socket, `rampart lb ctl` will not reach us path=%s "
		          "error=\"%s\"",
		          nx.ctl_path, strerror(-r));
		r = 0;
	}
	if (r < 0 && err[0])
		log_error("lb cannot start error=\"%s\"", err);
	if (r >= 0)
		lb_commit(lb, &nx);
	else
		lb_next_drop(lb, &nx);
	if (r >= 0 && metrics)
		r = metrics_add_collector(metrics, lb_collect, lb);
	if (r < 0) {
		lb_stop(lb);
		return r;
	}
	log_info("lb started listeners=%zu threads=%u", lb->gen->n, lb->nthreads);
	*out = lb;
	return 0;
}

int
lb_reload(struct lb *lb, const struct lb_cfg *cfg)
{
	char err[256] = "";
	struct lb_next nx = {0};
	int r = lb_prepare(lb, cfg, &nx, err, sizeof(err));
	if (r < 0) {
		lb_next_drop(lb, &nx);
		log_error("lb reload failed, keeping the running configuration error=\"%s\"", err);
		return r;
	}
	lb_commit(lb, &nx);
	if (lb_threads(cfg) != lb->nthreads)
		log_warn("lb threads changed; it takes effect at the next start");
	log_info("lb reloaded generation=%llu listeners=%zu", (unsigned long long)lb->gen->id,
	         lb->gen->n);
	return 0;
}

int
lb_give_ctl(struct lb *lb, uid_t uid, gid_t gid)
{
	return lb->ctl ? lb_ctl_chown(lb->ctl, uid, gid) : 0;
}

void
lb_stop(struct lb *lb)
{
	if (!lb)
		return;
	lb_checks_stop(lb);
	lb_ctl_free(lb->ctl);
	lb_stats_server_free(lb->stats);
	/* all halt before any is freed: a running one may still poke the others */
	for (unsigned t = 0; lb->workers && t < lb->nthreads; t++)
		lb_worker_halt(&lb->workers[t]);
	for (unsigned t = 0; lb->workers && t < lb->nthreads; t++)
		lb_worker_destroy(&lb->workers[t]);
	for (size_t i = 0; i < lb->nbound; i++)
		lb_bound_close(lb, &lb->bound[i]);
	free(lb->bound);
	free(lb->workers);
	lb_gen_unref(lb->gen);
	free(lb->ctl_path);
	free(lb);
}
