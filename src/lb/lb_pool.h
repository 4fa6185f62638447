/*
 * A listener's server pool: the servers from the config plus their runtime state, shared by
 * every worker thread. Config fields are immutable for the pool's life (a reload builds a new
 * pool); runtime fields are atomics written by the checker, the proxies and `lb ctl`.
 * pool->version changes whenever the set of usable servers or a weight changes, so per-thread
 * balancer state (tables) knows when to rebuild.
 */
#pragma once

#include "core/net.h"
#include "lb_config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LB_SERVERS_MAX 1024
#define LB_WEIGHT_MAX 256

enum lb_health {
	LB_HEALTH_UP,
	LB_HEALTH_DOWN,
};

enum lb_admin {
	LB_ADMIN_READY,
	LB_ADMIN_DRAIN, /* no new requests or connections; those in flight finish */
	LB_ADMIN_MAINT, /* disabled: nothing new */
};

struct lb_server {
	/* config */
	char *name;
	struct net_addr addr;
	struct sockaddr_storage sa;
	socklen_t salen;
	unsigned index; /* position in pool->servers */
	bool backup;
	int send_proxy; /* enum lb_proxy_proto */
	int64_t maxconn;
	bool cfg_disabled;   /* disabled: true in the config */
	unsigned cfg_weight; /* weight: in the config */

	/* runtime, shared */
	_Atomic int health;              /* enum lb_health */
	_Atomic int admin;               /* enum lb_admin */
	_Atomic unsigned weight;         /* configured, changed by `lb ctl weight` */
	_Atomic uint64_t up_since_ns;    /* monotonic; slow start ramps weight from here */
	_Atomic int64_t active;          /* connections (tcp) or requests (http) in flight */
	_Atomic unsigned passive_errors; /* consecutive */
	_Atomic uint64_t ejected_at_ns;  /* passive ejection time, 0 if not ejected */
	_Atomic uint64_t ewma_ns;        /* peak-EWMA latency */
	_Atomic uint64_t ewma_stamp_ns;
	/* counters */
	_Atomic uint64_t total;        /* requests or connections sent */
	_Atomic uint64_t failures;     /* connect errors, resets, timeouts */
	_Atomic uint64_t responses[6]; /* by status class: [1]=1xx .. [5]=5xx, [0] other */
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t transitions; /* up <-> down changes */
	/* owned by the checker */
	int check_ok, check_fail; /* consecutive results */
	char check_last[96];      /* last result, for `lb ctl show servers` */
};

struct lb_pool {
	char *listener; /* name */
	struct lb_server *servers;
	size_t n;
	uint64_t slow_start_ns;
	unsigned passive_errors; /* 0: passive ejection off */
	uint64_t passive_cooldown_ns;
	bool count_5xx;
	bool has_check; /* an active check brings ejected servers back */
	_Atomic uint64_t version;
	_Atomic int all_down_logged;
	_Atomic int64_t clients; /* client connections of the listener, all threads */
	int64_t maxclients;      /* listener maxconn; 0: none */
	_Atomic int64_t queued;  /* sessions waiting for a server slot, all threads */
	/* roundrobin with balance-scope listener: the position in the turn order (primaries,
	 * backups) that every worker's balancer takes its turns from, so that the order is exact
	 * across workers (rr_shared false: each keeps its own) */
	bool rr_shared;
	_Atomic uint64_t rr_pos[2];
	/* wakes every worker to look at its queues (a slot freed elsewhere); set by the owner */
	void (*wake_all)(void *data);
	void *wake_data;
};

/* Builds the pool of one listener from its config (servers start UP, or MAINT if disabled). */
int lb_pool_new(const struct lb_listener_cfg *cfg, struct lb_pool **out);
void lb_pool_free(struct lb_pool *pool);
struct lb_server *lb_pool_find(struct lb_pool *pool, const char *name);

/* Takes new clients: health up (or its passive cooldown passed), admin READY, weight > 0. */
bool lb_server_usable(const struct lb_pool *pool, const struct lb_server *s, uint64_t now_ns);
/* Configured weight, ramped linearly over slow start after coming up (at least 1 if usable). */
unsigned lb_server_weight(const struct lb_pool *pool, const struct lb_server *s, uint64_t now_ns);
/* The maxconn slot check: true if one more may be sent now. */
bool lb_server_has_slot(const struct lb_server *s);

/*
 * Changes health; returns true when it changed (the caller logs the transition).
 * Bumps pool->version and, on going up, restarts slow start.
 */
bool lb_pool_set_health(struct lb_pool *pool, struct lb_server *s, enum lb_health h,
                        uint64_t now_ns);
bool lb_pool_set_admin(struct lb_pool *pool, struct lb_server *s, enum lb_admin a);
int lb_pool_set_weight(struct lb_pool *pool, struct lb_server *s, int64_t weight);

/*
 * Passive health, called by the proxies: a success clears the error streak (and brings back
 * a half-open server when no active check runs); the Nth consecutive error marks the server
 * down. Returns LB_PASSIVE_EJECTED or LB_PASSIVE_RECOVERED when this call changed its health.
 */
enum {
	LB_PASSIVE_NONE,
	LB_PASSIVE_EJECTED,
	LB_PASSIVE_RECOVERED,
};
int lb_pool_passive(struct lb_pool *pool, struct lb_server *s, bool ok, uint64_t now_ns);
/* Peak-EWMA latency sample (decay 10 s). */
void lb_server_observe_latency(struct lb_server *s, uint64_t latency_ns, uint64_t now_ns);

const char *lb_health_name(int h);
const char *lb_admin_name(int a);
