#include "lb_config.h"

#include "lb_pool.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const lb_mode_names[] = {"http", "tcp", NULL};
const char *const lb_balance_scope_names[] = {"listener", "worker", NULL};
const char *const lb_balance_names[] = {"roundrobin", "random",     "leastconn", "source", "uri",
                                        "header",     "random-two", "ewma",      NULL};
static const char *const lb_check_names[] = {"none", "tcp", "http", "send", NULL};
static const char *const lb_proxy_names[] = {"none", "v1", "v2", NULL};
static const char *const lb_check_proxy_names[] = {"auto", "none", "v1", "v2", NULL};

#define DUR(k, member, d, h)                                                                       \
	{                                                                                          \
		.key = k, .type = CFG_DURATION,                                                    \
		.offset = offsetof(struct lb_timeouts_cfg, member), .def = d, .min = 1,            \
		.max = 7 * 24 * 3600 * 1000LL, .help = h                                           \
	}

static const struct cfg_field lb_timeout_fields[] = {
    DUR("connect", connect_ms, "5s", "a server connection not established by then is a failure"),
    DUR("client", client_ms, "30s", "a client silent this long while we wait for it is closed"),
    DUR("server", server_ms, "30s", "a server silent this long while we wait for it: 504"),
    DUR("request", request_ms, "10s", "the whole request head must arrive within (slowloris)"),
    DUR("idle", idle_ms, "60s", "keep-alive client connection idle between requests"),
    DUR("queue", queue_ms, "5s", "a request waiting for a server slot this long: 503"),
    DUR("tunnel", tunnel_ms, "1h", "idle upgraded (WebSocket) or tcp connection"),
    DUR("pool-idle", pool_idle_ms, "30s", "idle kept-alive server connection kept in the pool"),
    {0},
};

static const struct cfg_schema lb_timeout_schema = {
    .name = "timeout",
    .size = sizeof(struct lb_timeouts_cfg),
    .fields = lb_timeout_fields,
};

#define CHK(k, t, member) .key = k, .type = t, .offset = offsetof(struct lb_check_cfg, member)

static const struct cfg_field lb_check_fields[] = {
    {CHK("type", CFG_ENUM, type), .def = "none", .choices = lb_check_names,
     .help = "none, tcp (connect), http (request and status) or send (send/expect)"},
    {CHK("interval", CFG_DURATION, interval_ms), .def = "2s", .min = 10, .max = 3600 * 1000,
     .help = "time between two checks of a server"},
    {CHK("timeout", CFG_DURATION, timeout_ms), .def = "1s", .min = 1, .max = 600 * 1000,
     .help = "a check not answered by then fails"},
    {CHK("rise", CFG_INT, rise), .def = "2", .min = 1, .max = 100,
     .help = "consecutive successes that bring a server up"},
    {CHK("fall", CFG_INT, fall), .def = "3", .min = 1, .max = 100,
     .help = "consecutive failures that take a server down"},
    {CHK("jitter", CFG_INT, jitter_pct), .def = "10", .min = 0, .max = 50,
     .help = "percent by which each interval is spread, so checks do not align"},
    {CHK("method", CFG_STRING, method), .def = "GET", .help = "http check: request method"},
    {CHK("path", CFG_STRING, path), .def = "/", .help = "http check: request target"},
    {CHK("host", CFG_STRING, host), .help = "http check: Host field (default: the server address)"},
    {CHK("expect-status", CFG_STRING, expect_status), .def = "200-399",
     .help = "http check: status or range that passes, e.g. 200 or 200-399"},
    {CHK("expect-body", CFG_STRING, expect_body),
     .help = "http check: a substring the body must contain"},
    {CHK("send", CFG_STRING, send), .help = "send check: bytes sent (\\r\\n escapes allowed)"},
    {CHK("expect", CFG_STRING, expect), .help = "send check: substring the reply must contain"},
    {CHK("port", CFG_INT, port), .def = "0", .min = 0, .max = 65535,
     .help = "check this port instead of the server's"},
    {CHK("send-proxy", CFG_ENUM, send_proxy), .def = "auto", .choices = lb_check_proxy_names,
     .help = "PROXY header on http/send checks: auto (as the server, unless port is set), none, "
             "v1 or v2"},
    {0},
};

static int
lb_config_status_range(const char *s, int64_t *lo, int64_t *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b = a;
	if (end == s)
		return -1;
	if (*end == '-') {
		const char *t = end + 1;
		b = strtol(t, &end, 10);
		if (end == t)
			return -1;
	}
	if (*end || a < 100 || b > 599 || a > b)
		return -1;
	*lo = a;
	*hi = b;
	return 0;
}

static void
lb_config_check_check(void *obj, struct cfg_check *chk)
{
	struct lb_check_cfg *c = obj;
	if (!c->expect_status ||
	    lb_config_status_range(c->expect_status, &c->status_min, &c->status_max) < 0)
		cfg_check_error(chk, "expect-status", "expected a status or range like 200-399");
	if (c->type == LB_CHECK_SEND && (!c->send || !*c->send))
		cfg_check_error(chk, "send", "a send check needs the bytes to send");
	if (c->timeout_ms > c->interval_ms)
		cfg_check_error(chk, "timeout", "must not be longer than the interval");
}

static const struct cfg_schema lb_check_schema = {
    .name = "check",
    .size = sizeof(struct lb_check_cfg),
    .fields = lb_check_fields,
    .check = lb_config_check_check,
};

#define PAS(k, t, member) .key = k, .type = t, .offset = offsetof(struct lb_passive_cfg, member)

static const struct cfg_field lb_passive_fields[] = {
    {PAS("errors", CFG_INT, errors), .def = "5", .min = 0, .max = 1000,
     .help = "consecutive connection errors (and 5xx) that take a server out; 0: never"},
    {PAS("cooldown", CFG_DURATION, cooldown_ms), .def = "10s", .min = 1, .max = 3600 * 1000,
     .help = "without an active check, an ejected server is tried again after"},
    {PAS("count-5xx", CFG_BOOL, count_5xx), .def = "true", .help = "5xx responses count as errors"},
    {0},
};

static const struct cfg_schema lb_passive_schema = {
    .name = "passive",
    .size = sizeof(struct lb_passive_cfg),
    .fields = lb_passive_fields,
};

#define SRV(k, t, member) .key = k, .type = t, .offset = offsetof(struct lb_server_cfg, member)

static const struct cfg_field lb_server_fields[] = {
    {SRV("name", CFG_STRING, name), .flags = CFG_F_REQUIRED, .help = "unique in the listener"},
    {SRV("address", CFG_ADDR, address), .flags = CFG_F_REQUIRED, .addr_mode = NET_PORT_REQUIRED,
     .help = "address:port of the server"},
    {SRV("weight", CFG_INT, weight), .def = "1", .min = 0, .max = LB_WEIGHT_MAX,
     .help = "share of new requests, 0 to 256; 0 sends nothing"},
    {SRV("backup", CFG_BOOL, backup), .def = "false",
     .help = "used only when no other server is usable"},
    {SRV("maxconn", CFG_INT, maxconn), .def = "0", .min = 0, .max = 1000000,
     .help = "requests in flight; more wait in the queue; 0: no limit"},
    {SRV("send-proxy", CFG_ENUM, send_proxy), .def = "none", .choices = lb_proxy_names,
     .help = "PROXY protocol header sent first: none, v1 or v2"},
    {SRV("disabled", CFG_BOOL, disabled), .def = "false", .help = "start in maintenance"},
    {0},
};

/* A name `lb ctl` can address: LISTENER/SERVER is one word split at its first '/'. */
static void
lb_config_check_name(const char *name, struct cfg_check *chk)
{
	if (!name)
		return; /* required: reported as missing */
	size_t n = strlen(name);
	bool blank = false;
	for (size_t i = 0; i < n; i++)
		blank |= (unsigned char)name[i] <= ' ' || name[i] == 0x7f;
	if (!n)
		cfg_check_error(chk, "name", "must not be empty");
	else if (n > LB_NAME_MAX)
		cfg_check_error(chk, "name", "must not be longer than %d bytes", LB_NAME_MAX);
	else if (strchr(name, '/'))
		cfg_check_error(chk, "name",
		                "must not contain '/' (lb ctl names a server LISTENER/SERVER)");
	else if (blank)
		cfg_check_error(chk, "name", "must not contain blanks or control characters");
}

static void
lb_config_check_server(void *obj, struct cfg_check *chk)
{
	const struct lb_server_cfg *s = obj;
	lb_config_check_name(s->name, chk);
}

static const struct cfg_schema lb_server_schema = {
    .name = "server",
    .size = sizeof(struct lb_server_cfg),
    .fields = lb_server_fields,
    .check = lb_config_check_server,
};

#define LIS(k, t, member) .key = k, .type = t, .offset = offsetof(struct lb_listener_cfg, member)

static const struct cfg_field lb_listener_fields[] = {
    {LIS("name", CFG_STRING, name), .flags = CFG_F_REQUIRED, .help = "unique listener name"},
    {LIS("bind", CFG_ADDR, bind), .flags = CFG_F_REQUIRED, .addr_mode = NET_PORT_REQUIRED,
     .help = "address:port clients connect to"},
    {LIS("mode", CFG_ENUM, mode), .def = "http", .choices = lb_mode_names,
     .help = "http (HTTP/1.1 proxy) or tcp (bytes both ways)"},
    {LIS("balance", CFG_ENUM, balance), .def = "roundrobin", .choices = lb_balance_names,
     .help = "how a server is chosen"},
    {LIS("balance-scope", CFG_ENUM, balance_scope), .def = "listener",
     .choices = lb_balance_scope_names,
     .help = "roundrobin: one position for all worker threads (exact order), or one per worker"},
    {LIS("hash-header", CFG_STRING, hash_header), .help = "balance header: the field hashed"},
    {LIS("check", CFG_SECTION, check), .schema = &lb_check_schema},
    {LIS("passive", CFG_SECTION, passive), .schema = &lb_passive_schema},
    {LIS("timeout", CFG_SECTION, timeout), .schema = &lb_timeout_schema},
    {LIS("retries", CFG_INT, retries), .def = "3", .min = 0, .max = 100,
     .help = "connection attempts after the first failed one"},
    {LIS("redispatch", CFG_BOOL, redispatch), .def = "true",
     .help = "a retry goes to another server"},
    {LIS("maxconn", CFG_INT, maxconn), .def = "0", .min = 0, .max = 10000000,
     .help = "client connections on this listener; 0: the global limit only"},
    {LIS("queue", CFG_INT, queue_max), .def = "1024", .min = 0, .max = 1000000,
     .help = "requests waiting for a server slot; past it 503"},
    {LIS("max-header-size", CFG_SIZE, max_header), .def = "16k", .min = 1024, .max = 1024 * 1024,
     .help = "largest request head; past it 431"},
    {LIS("slow-start", CFG_DURATION, slow_start_ms), .def = "0s", .max = 3600 * 1000,
     .help = "a recovered server's weight ramps up over this time; 0: at once"},
    {LIS("forwarded", CFG_BOOL, forwarded), .def = "true",
     .help = "add X-Forwarded-For, X-Forwarded-Proto and Forwarded"},
    {LIS("accept-proxy", CFG_LIST, accept_proxy), .elem = CFG_CIDR,
     .help = "peers whose PROXY protocol v1/v2 header is read (trusted upstreams)"},
    {LIS("transparent", CFG_BOOL, transparent), .def = "false",
     .help = "connect to servers from the client's address (IP_TRANSPARENT)"},
    {LIS("defer-accept", CFG_BOOL, defer_accept), .def = "true",
     .help = "http mode: accept a connection once its request's first bytes are in"},
    {LIS("smart-accept", CFG_BOOL, smart_accept), .def = "true",
     .help = "http mode: a request's ACK waits to go with the response (TCP_QUICKACK off)"},
    {LIS("access-log", CFG_BOOL, access_log), .def = "true",
     .help = "one log line per request (http) or connection (tcp)"},
    {LIS("servers", CFG_LIST, servers), .elem = CFG_SECTION, .schema = &lb_server_schema,
     .flags = CFG_F_REQUIRED, .help = "the pool"},
    {0},
};

static void
lb_config_check_listener(void *obj, struct cfg_check *chk)
{
	const struct lb_listener_cfg *l = obj;
	const struct lb_server_cfg *s = l->servers.items;
	lb_config_check_name(l->name, chk);
	if (l->servers.n == 0)
		cfg_check_error(chk, "servers", "a listener needs at least one server");
	if (l->servers.n > LB_SERVERS_MAX)
		cfg_check_error(chk, "servers", "at most %d servers", LB_SERVERS_MAX);
	for (size_t i = 0; i < l->servers.n; i++)
		for (size_t j = 0; j < i; j++)
			if (s[i].name && s[j].name && !strcmp(s[i].name, s[j].name)) {
				cfg_check_item_error(
				    chk, "servers", i, "name",
				    "server name '%s' is used twice (first at line %u)", s[i].name,
				    cfg_check_item_line(chk, "servers", j, "name"));
				break;
			}
	if (l->balance == LB_BALANCE_HEADER && (!l->hash_header || !*l->hash_header))
		cfg_check_error(chk, "hash-header", "balance header needs hash-header");
	if (l->mode == LB_MODE_TCP &&
	    (l->balance == LB_BALANCE_URI || l->balance == LB_BALANCE_HEADER))
		cfg_check_error(chk, "balance", "uri and header balancing need mode http");
}

static const struct cfg_schema lb_listener_schema = {
    .name = "listener",
    .size = sizeof(struct lb_listener_cfg),
    .fields = lb_listener_fields,
    .check = lb_config_check_listener,
};

static const struct cfg_field lb_stats_fields[] = {
    {.key = "listen",
     .type = CFG_ADDR,
     .offset = offsetof(struct lb_stats_cfg, listen),
     .addr_mode = NET_PORT_REQUIRED | NET_PORT_ZERO_OK,
     .help = "address:port serving GET /stats (JSON) and /metrics; absent: off"},
    {0},
};

static const struct cfg_schema lb_stats_schema = {
    .name = "stats",
    .size = sizeof(struct lb_stats_cfg),
    .fields = lb_stats_fields,
};

/* Reported at the duplicate, once; items that failed to decode (NULL name, no bind) are
 * skipped: listener checks run beside the items' own errors. */
static void
lb_config_check_unique(const struct lb_listener_cfg *l, size_t i, struct cfg_check *chk)
{
	bool name = false, bind = false;
	for (size_t j = 0; j < i; j++) {
		if (!name && l[i].name && l[j].name && !strcmp(l[i].name, l[j].name)) {
			name = true;
			cfg_check_item_error(chk, "listeners", i, "name",
			                     "listener name '%s' is used twice (first at line %u)",
			                     l[i].name,
			                     cfg_check_item_line(chk, "listeners", j, "name"));
		}
		if (!bind && l[i].bind.family && net_addr_equal(&l[i].bind, &l[j].bind)) {
			bind = true;
			cfg_check_item_error(
			    chk, "listeners", i, "bind",
			    "two listeners bind the same address (first at line %u)",
			    cfg_check_item_line(chk, "listeners", j, "bind"));
		}
	}
}

static void
lb_config_check(void *obj, struct cfg_check *chk)
{
	struct lb_cfg *c = obj;
	const struct lb_listener_cfg *l = c->listeners.items;
	/* a relative path would resolve against each process's working directory: the lb's
	 * and that of every `rampart lb ctl` */
	if (c->ctl_socket && *c->ctl_socket && *c->ctl_socket != '/')
		cfg_check_error(chk, "ctl-socket", "must be an absolute path (or \"\" for none)");
	for (size_t i = 0; i < c->listeners.n; i++)
		lb_config_check_unique(l, i, chk);
	c->enabled = c->listeners.n > 0;
}

static const struct cfg_field lb_fields[] = {
    {.key = "threads",
     .type = CFG_INT,
     .offset = offsetof(struct lb_cfg, threads),
     .flags = CFG_F_AUTO,
     .def = "auto",
     .min = 0,
     .max = 256,
     .help = "worker threads, one event loop each (SO_REUSEPORT); auto: one per CPU"},
    {.key = "maxconn",
     .type = CFG_INT,
     .offset = offsetof(struct lb_cfg, maxconn),
     .def = "100000",
     .min = 1,
     .max = 10000000,
     .help = "client connections in all; past it new ones wait in the kernel backlog"},
    {.key = "io-uring",
     .type = CFG_BOOL,
     .offset = offsetof(struct lb_cfg, io_uring),
     .def = "true",
     .help = "connections move bytes through io_uring (epoll, read/send and splice if "
             "false or unavailable); read at start, not on reload"},
    {.key = "busy-poll",
     .type = CFG_INT,
     .offset = offsetof(struct lb_cfg, busy_poll),
     .def = "100",
     .min = 0,
     .max = 10000,
     .help = "microseconds an idle io_uring worker polls before it sleeps, while its wake-ups "
             "come that fast (adaptive; one worker at a time); 0: never; read at start"},
    {.key = "ctl-socket",
     .type = CFG_STRING,
     .offset = offsetof(struct lb_cfg, ctl_socket),
     .def = LB_CTL_SOCKET_DEFAULT,
     .help = "unix socket of `rampart lb ctl`, an absolute path; empty: none"},
    {.key = "user",
     .type = CFG_STRING,
     .offset = offsetof(struct lb_cfg, user),
     .help = "rampart lb started as root runs as this user once its sockets are open"},
    {.key = "stats",
     .type = CFG_SECTION,
     .offset = offsetof(struct lb_cfg, stats),
     .schema = &lb_stats_schema},
    {.key = "listeners",
     .type = CFG_LIST,
     .offset = offsetof(struct lb_cfg, listeners),
     .elem = CFG_SECTION,
     .schema = &lb_listener_schema,
     .help = "addresses clients connect to, each with its pool"},
    {0},
};

const struct cfg_schema lb_config_schema = {
    .name = "lb",
    .size = sizeof(struct lb_cfg),
    .fields = lb_fields,
    .check = lb_config_check,
};
