/*
 * The `lb:` section of rampart.yaml: listeners, each with its server pool, balancing
 * algorithm, health check, timeouts and limits. Decoded by core/cfg through lb_config_schema.
 */
#pragma once

#include "core/cfg.h"
#include "core/net.h"

#include <stdbool.h>
#include <stdint.h>

/* A listener or server name: `lb ctl` addresses a server as LISTENER/SERVER, one word. */
#define LB_NAME_MAX 64
#define LB_CTL_SOCKET_DEFAULT "/run/rampart/lb.sock"

enum lb_mode {
	LB_MODE_HTTP,
	LB_MODE_TCP,
};

/* Where roundrobin keeps its position: shared by the listener's workers, or one per worker. */
enum lb_balance_scope {
	LB_BALANCE_SCOPE_LISTENER,
	LB_BALANCE_SCOPE_WORKER,
};

enum lb_balance {
	LB_BALANCE_ROUNDROBIN, /* smooth weighted round-robin */
	LB_BALANCE_RANDOM,     /* weighted random */
	LB_BALANCE_LEASTCONN,  /* weighted least connections (requests in flight in http) */
	LB_BALANCE_SOURCE,     /* client address hash on a Maglev table */
	LB_BALANCE_URI,        /* request path (without query) hash on a Maglev table */
	LB_BALANCE_HEADER,     /* hash of the header named by hash-header; source when absent */
	LB_BALANCE_RANDOM_TWO, /* power of two random choices, fewer in flight wins */
	LB_BALANCE_EWMA,       /* peak-EWMA of response latency times in flight */
};

enum lb_check_type {
	LB_CHECK_NONE,
	LB_CHECK_TCP,  /* connect */
	LB_CHECK_HTTP, /* request, expected status range, optional body substring */
	LB_CHECK_SEND, /* send bytes, expect a substring in the reply */
};

enum lb_proxy_proto {
	LB_PROXY_NONE,
	LB_PROXY_V1,
	LB_PROXY_V2,
};

/* a check's PROXY header: AUTO follows the server's send-proxy unless the check has its own
 * port (haproxy's rule); the others are LB_PROXY_* + 1 (haproxy's check-send-proxy) */
enum lb_check_proxy {
	LB_CHECK_PROXY_AUTO,
	LB_CHECK_PROXY_NONE,
	LB_CHECK_PROXY_V1,
	LB_CHECK_PROXY_V2,
};

struct lb_check_cfg {
	int type; /* enum lb_check_type */
	uint64_t interval_ms, timeout_ms;
	int64_t rise, fall;
	int64_t jitter_pct; /* each interval is spread by up to +-jitter percent */
	char *method, *path, *host;
	int64_t status_min, status_max; /* from expect-status "200-399" or "200" */
	char *expect_status;            /* text as written, decoded by the check callback */
	char *expect_body;              /* substring the body must contain; NULL: any */
	char *send, *expect;            /* LB_CHECK_SEND */
	int64_t port;                   /* 0: the server's port */
	int send_proxy;                 /* enum lb_check_proxy */
};

struct lb_passive_cfg {
	int64_t errors;       /* consecutive connect errors / 5xx that eject; 0: off */
	uint64_t cooldown_ms; /* without an active check, an ejected server is retried after */
	bool count_5xx;
};

struct lb_timeouts_cfg {
	uint64_t connect_ms;   /* server connect */
	uint64_t client_ms;    /* client silent while we wait for it (body, tcp idle) */
	uint64_t server_ms;    /* server silent while we wait for its response */
	uint64_t request_ms;   /* whole request head must arrive within (slowloris) */
	uint64_t idle_ms;      /* keep-alive client between requests */
	uint64_t queue_ms;     /* wait for a server slot */
	uint64_t tunnel_ms;    /* upgraded (WebSocket) and tcp connections idle */
	uint64_t pool_idle_ms; /* idle pooled server connection kept */
};

struct lb_server_cfg {
	char *name;
	struct net_addr address;
	int64_t weight;  /* 0..256; 0 gets nothing */
	bool backup;     /* only when no other server is usable */
	int64_t maxconn; /* 0: unlimited; past it requests wait in the queue */
	int send_proxy;  /* enum lb_proxy_proto */
	bool disabled;   /* starts in maintenance */
};

struct lb_listener_cfg {
	char *name;
	struct net_addr bind;
	int mode;          /* enum lb_mode */
	int balance;       /* enum lb_balance */
	int balance_scope; /* enum lb_balance_scope */
	char *hash_header;
	struct lb_check_cfg check;
	struct lb_passive_cfg passive;
	struct lb_timeouts_cfg timeout;
	int64_t retries;     /* connect attempts after the first */
	bool redispatch;     /* a retry goes to another server */
	int64_t maxconn;     /* client connections on this listener; 0: the global limit only */
	int64_t queue_max;   /* requests waiting for a server slot */
	uint64_t max_header; /* request head bytes; past it 431 */
	uint64_t slow_start_ms;
	bool forwarded;               /* add X-Forwarded-For/-Proto and Forwarded */
	struct cfg_list accept_proxy; /* struct net_cidr: peers whose PROXY header is read */
	bool transparent;             /* connect from the client's address (IP_TRANSPARENT) */
	bool defer_accept;            /* http: accept once the request's first bytes are in */
	bool smart_accept;            /* http: a request's ACK waits to go with the response */
	bool access_log;
	struct cfg_list servers; /* struct lb_server_cfg */
};

struct lb_stats_cfg {
	struct net_addr listen; /* family 0: off. GET /stats (JSON), /metrics (Prometheus) */
};

struct lb_cfg {
	bool enabled;      /* true when the section is present with listeners */
	int64_t threads;   /* 0 = auto: one per CPU */
	int64_t maxconn;   /* all client connections */
	bool io_uring;     /* I/O through io_uring where the kernel allows */
	int64_t busy_poll; /* µs an idle ring worker may poll before sleeping; 0: never */
	char *ctl_socket;
	char *user; /* `rampart lb` started as root drops to this user once bound; NULL: stays */
	struct lb_stats_cfg stats;
	struct cfg_list listeners; /* struct lb_listener_cfg */
};

extern const struct cfg_schema lb_config_schema;
extern const char *const lb_balance_names[];
extern const char *const lb_balance_scope_names[];
extern const char *const lb_mode_names[];
