/*
 * The proxy's runtime objects, owned by one worker thread each: configuration generations
 * (shared, refcounted), a worker's view of a generation (balancers, idle server connections,
 * queues), client sessions and server connections. lb_http and lb_tcp drive sessions;
 * lb_session holds what both need: buffers, deadlines, server choice, connect, retries.
 */
#pragma once

#include "balance.h"
#include "core/ev.h"
#include "core/net.h"
#include "core/uring.h"
#include "http1.h"
#include "lb_config.h"
#include "lb_pool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Server-to-client buffer; the client-to-server one is max-header-size (at least this). */
#define LB_BUF_SIZE (16 * 1024)
/* requests held to the end of a loop turn, at most (lb_session_hold) */
#define LB_HELD_MAX 256
/* The rewritten request head: the client's head plus what we add. */
#define LB_HEAD_EXTRA 1024
/* Idle server connections kept per server per worker. */
#define LB_IDLE_MAX 256
/* What a rewritten response head can grow by: per field ": " and CRLF where the server wrote
 * ":" and LF, and our Connection field in place of the empty line. */
#define LB_SPILL (2 * HTTP1_HEADERS_MAX + 32)

/* One configuration, shared by every thread; freed with its last reference. */
struct lb_gen {
	_Atomic int refs;
	uint64_t id;
	struct lb_cfg cfg;      /* decoded config, owned */
	struct lb_pool **pools; /* one per listener */
	size_t n;
};

struct lb_worker;
struct lb_session;

/* A worker's state for one generation: sessions of an old generation keep it alive. */
struct lb_wgen {
	struct lb_gen *gen;
	struct lb_worker *w;
	unsigned refs; /* sessions plus one while current */
	struct balance **bal;
	struct lb_sconn **idle; /* stacks, per listener per server: idle_off[l] + server index */
	size_t *idle_off;
	unsigned *idle_n;
	struct lb_session **qhead, **qtail; /* per listener: sessions waiting for a slot */
	size_t *qlen;
	struct lb_wgen *wnext; /* worker's live generations */
};

/* A side whose reads and writes go through the worker's io_uring (http mode): a read that
 * finds nothing arms a receive for the room it has, and a write is a send the kernel may
 * still be doing: its bytes stay put until the next write call takes its result. */
struct lb_side_ring {
	struct uring *u;
	struct uring_op rx, tx;
	char *stash; /* the pool buffer a receive filled, read from [off, len) */
	uint32_t off, len;
	int end;      /* how receiving ended: 1 not yet, 0 EOF, -errno */
	int tx_res;   /* the send's result, for the next write call */
	unsigned ops; /* operations in the kernel: the owner is freed after the last */
	bool rx_busy; /* a receive is armed */
	bool tx_busy; /* a send is in the kernel: its bytes must not move */
	bool tx_done; /* tx_res is waiting */
	bool direct;  /* the next read is a plain recv(2): bytes known to be in already */
};

struct lb_side {
	int fd;
	struct ev_io io;
	bool rd, wr; /* edge-triggered readiness kept until EAGAIN; ring: rd false only while a
	              * receive is armed, wr only while a send is in the kernel */
	bool eof;    /* read returned 0 */
	bool hup;    /* the peer shut its writing: a short read does not drain it */
	bool err;
	bool shut; /* we shut down our writing */
	bool ring; /* I/O through r, not read/send (and no epoll) */
	struct lb_side_ring r;
};

struct lb_sconn {
	struct lb_side sd;
	struct lb_server *srv;
	struct lb_wgen *wg; /* while alive (a dead connection may outlive it) */
	struct lb_worker *w;
	unsigned li;
	struct lb_session *owner; /* NULL while idle in the pool */
	struct lb_sconn *next;    /* idle stack */
	uint64_t idle_since;
	bool connecting;
	bool reused;  /* served a request before: a failure before any response byte is retried
	               * on a new connection (lb_session_reconnect) */
	bool noreuse; /* PROXY header sent, or transparent: never pooled */
	bool dead;    /* closed, on the worker's dead list until its last ring operation */
};

struct lb_bufs {
	struct lb_bufs *next; /* worker free list */
	size_t csize;
	char *c; /* client to server: request heads and bodies, or tunnel bytes */
	size_t c_start, c_end;
	char s[LB_BUF_SIZE]; /* server to client */
	size_t s_start, s_end;
	/* server bytes a grown response head pushed out of s: they go back first, as room
	 * frees, so a response streams whatever its size */
	char spill[LB_SPILL];
	size_t spill_off, spill_len;
	size_t h_len, h_sent; /* rewritten request head in h, or a PROXY header */
	struct http1_msg req;
	char h[]; /* csize + LB_HEAD_EXTRA */
};

/* A tcp tunnel through io_uring: per direction ([0] client to server) a receive, then its
 * send linked with the next receive. */
struct lb_tcp_ring {
	struct uring_op rx[2], tx[2];
	char *buf[2]; /* the pool buffer being sent */
	size_t len[2];
	bool eof[2]; /* passed on (shutdown) */
	int bulk;    /* -1, or the direction that read a full buffer: the tunnel moves to splice */
};

enum lb_sess_state {
	LB_S_IDLE,     /* keep-alive: no byte of the next request yet */
	LB_S_HEAD,     /* reading a request head */
	LB_S_QUEUED,   /* waiting for a server slot */
	LB_S_CONNECT,  /* server connection being set up */
	LB_S_EXCHANGE, /* request going out and/or response coming back */
	LB_S_TUNNEL,   /* bytes both ways (tcp mode, upgraded http) */
	LB_S_CLOSING,  /* final bytes to the client, then close */
};

struct lb_session {
	struct lb_wgen *wg;
	unsigned li;
	const struct lb_listener_cfg *lc;
	struct lb_pool *pool;
	struct lb_side c;
	struct lb_sconn *s;
	struct lb_server *srv; /* holds an `active` slot while set */
	struct net_addr peer, local;
	struct ev_timer timer;
	uint64_t deadline;
	int state;
	bool proxy_pending; /* a PROXY header from a trusted peer is expected first */
	bool closed;
	bool running; /* inside lb_*_run: frees are deferred */
	bool queued;  /* in wg's queue: the queue walker frees it */
	bool again;   /* on the worker's again list */
	struct lb_session *again_next;
	bool held; /* on the worker's held list: its request goes out at the end of the turn */
	struct lb_session *held_next;
	struct lb_bufs *b;
	struct lb_session *qnext;
	struct lb_session *prev, *next; /* worker's session list */
	uint64_t excl[LB_SERVERS_MAX / 64];
	unsigned tries;
	struct lb_server *last; /* the server of the failed try (retry without redispatch) */
	uint64_t t_req;         /* request start, for the access log and EWMA */
	/* http */
	int req_body;      /* enum http1_body of the request in flight */
	uint64_t req_left; /* content-length bytes still to send */
	struct http1_chunked req_chunk;
	size_t req_body_end; /* c_end index up to which bytes are this request's body */
	bool req_done;       /* whole request received from the client */
	bool req_sent;       /* and sent on */
	bool resp_started;   /* a response byte arrived */
	bool resp_head;      /* final response head parsed */
	int resp_body;
	uint64_t resp_left;
	struct http1_chunked resp_chunk;
	size_t resp_end; /* s_end index up to which bytes are this response's */
	bool resp_done;
	bool keep_client;
	int client_minor; /* the client's HTTP/1.x */
	int status;
	uint64_t bytes_out; /* to the client */
	uint64_t bytes_in;  /* tcp: from the client, for the access log */
	int method;
	char method_name[16];   /* for the access log */
	const char *log_server; /* name of the server that answered */
	uint32_t key_uri_off, key_uri_len, key_hdr_off, key_hdr_len; /* hash keys, in b->h */
	bool has_key_hdr;
	bool server_keep; /* the server connection may be pooled after this response */
	bool upgrading;   /* 101 seen: tunnel once flushed */
	/* tcp splice pipes: [0] client->server, [1] server->client */
	int pipe_r[2], pipe_w[2];
	size_t pipe_fill[2];
	bool spliced[2];          /* this direction moved to splice(2) after a bulk read */
	struct lb_tcp_ring *ring; /* tcp tunnel through the worker's io_uring */
	unsigned ring_ops;        /* its operations in flight: freeing waits for them */
	bool (*step)(struct lb_session *s); /* one move of the mode (http, tcp); false: none */
	void (*on_timeout)(struct lb_session *s); /* the deadline passed */
	/* the session waits on the client; NULL: always (the client is watched from the start) */
	bool (*waits_client)(const struct lb_session *s);
};

/* Takes fd (a connected client); the mode's start function runs next. NULL on ENOMEM
 * (fd is closed). */
struct lb_session *lb_session_new(struct lb_wgen *wg, unsigned li, int fd,
                                  const struct net_addr *peer);
/* Closes the client and any server connection (not pooled); frees now or, inside run, after. */
void lb_session_close(struct lb_session *s);
/* The session times out after ms from now; a later deadline costs no timer operation. */
void lb_session_deadline(struct lb_session *s, uint64_t ms);
/* After work outside the session's own entry points (a ring completion): frees s if it was
 * closed and nothing holds it any more. */
void lb_session_settle(struct lb_session *s);
/* Makes sure s->b exists: -ENOMEM. */
int lb_session_bufs(struct lb_session *s);
/* Gives the buffers back when nothing is buffered (idle keep-alive costs no buffer). */
void lb_session_bufs_release(struct lb_session *s);
/* Runs s with deferred freeing, as the io and timer callbacks do. */
void lb_session_dispatch(struct lb_session *s);
/* Steps s until nothing moves; a session that keeps moving yields to the others after a
 * while (it runs again at the next loop turn). For callers that already hold s running. */
void lb_session_run(struct lb_session *s);

/*
 * Chooses a server and a connection to it: a pooled idle one (http) or a new non-blocking
 * connect. Failures are retried up to retries times, on another server with redispatch.
 * Returns 0 (s->s set; s->s->connecting while the connect runs), -EAGAIN when queued for a
 * slot (run is called again later), -ENOBUFS when the queue is full, -EHOSTUNREACH when no
 * server is usable or retries ran out.
 */
int lb_session_assign(struct lb_session *s, const struct balance_key *key);
/* Connect completion: 1 connected, 0 still connecting, or -errno (then call _server_failed). */
int lb_session_connected(struct lb_session *s);
/* The server connection failed before any response: passive error, connection closed, slot
 * given back; returns as lb_session_assign for the retry (key as before). */
int lb_session_server_failed(struct lb_session *s, const struct balance_key *key);
/* A pooled connection failed before any response byte: the server closed it as idle while the
 * request was on its way, a race of every pool and no failure of the server's. The same server
 * again on a new connection, with the same slot: no try counted, no passive error, the server
 * not excluded. Returns as lb_session_assign (a failed connect is an ordinary failed try). */
int lb_session_reconnect(struct lb_session *s, const struct balance_key *key);
/* The request is over: the slot is given back and the connection pooled when reuse. */
void lb_session_release_server(struct lb_session *s, bool reuse);

/* read/write on a side: >0 bytes, 0 at EOF (read), -EAGAIN (readiness cleared), -errno. */
ssize_t lb_side_read(struct lb_side *sd, char *p, size_t n);
ssize_t lb_side_write(struct lb_side *sd, const char *p, size_t n);
/* lb_side_write with send(2) flags (MSG_MORE). */
ssize_t lb_side_send(struct lb_side *sd, const char *p, size_t n, int flags);
ssize_t lb_side_writev(struct lb_side *sd, const struct iovec *iov, int n);
void lb_side_close(struct ev_loop *loop, struct lb_side *sd);
/* A send of sd's is in the kernel, or its result not taken yet: the bytes it was given must
 * stay where they are. */
bool lb_side_sending(const struct lb_side *sd);
/* sd is known to have something unread (bytes, or its EOF). */
bool lb_side_unread(const struct lb_side *sd);
/* The client's I/O goes through the worker's io_uring from now on. */
/* direct: the first read is a plain recv(2) (the request is in: defer-accept) */
void lb_session_ring_client(struct lb_session *s, bool direct);
/* The same for the connected server connection (kept when it is pooled). */
void lb_session_ring_server(struct lb_session *s);
/* The worker's ring is gone (its operations with it): frees what waited for them. */
void lb_session_ring_gone(struct lb_worker *w);
struct ev_loop *lb_session_loop(const struct lb_session *s);
/* One direction of a tunnel through a buffer: from's bytes in buf[*start, *end) go to to. */
struct lb_pump {
	char *buf;
	size_t size;
	size_t *start, *end;
	bool filled;  /* set when a read filled all the room: a bulk transfer */
	size_t moved; /* bytes written to `to` by this call */
};

/* Reads what from has, writes what to takes, passes a finished side's EOF on as a shutdown;
 * true when something moved or ended. */
bool lb_session_pump(struct lb_side *from, struct lb_side *to, struct lb_pump *pm);
/* Waiting sessions of wg's queues try again (a slot may have freed). */
void lb_session_run_queue(struct lb_wgen *wg);
/* Takes s out of its queue (timeout). */
void lb_session_unqueue(struct lb_session *s);
/* Closes idle server connections older than pool-idle (all with UINT64_MAX). */
void lb_session_reap_idle(struct lb_wgen *wg, uint64_t now_ns);
void lb_session_drop_idle(struct lb_wgen *wg);
/* Runs s again at the next loop turn (fairness: one session does not hog the loop). */
void lb_session_again(struct lb_session *s);
/* Puts off s's sending towards its server until the end of the loop turn: true when held
 * (run comes again then), false when it may send now (the held sessions are running). */
bool lb_session_hold(struct lb_session *s);
/* Runs the held sessions, grouped by server; the worker calls it before it waits. */
void lb_session_flush_held(struct lb_worker *w);
/* The peer is in the listener's accept-proxy list: a PROXY header comes first. */
bool lb_session_trusted(const struct lb_session *s);
/* Between two requests: a session of an older generation moves to the current one (a
 * listener of the same name and mode), so a kept-alive client sees a reload at once. */
void lb_session_rebase(struct lb_session *s);
/* The PROXY header (the server's send-proxy version) announcing the client's connection to
 * us; its length or -errno. */
int lb_session_proxy_header(struct lb_session *s, uint8_t *out, size_t len);
/* Passive health of srv after a try, with the transition logged. */
void lb_session_passive(struct lb_session *s, struct lb_server *srv, bool ok);
/* Logs, once per outage, that a listener has no usable server. */
void lb_session_log_no_server(struct lb_session *s);
