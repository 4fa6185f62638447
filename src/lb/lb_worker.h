/*
 * Worker threads: each runs its own event loop with its own SO_REUSEPORT listening sockets,
 * accepts clients and drives their sessions. The main thread hands over a new generation
 * (reload) or a stop through a mailbox and an eventfd; a worker switches at its next turn and
 * old sessions finish on the generation they started with.
 */
#pragma once

#include "lb_session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct uring;

struct lb_listen {
	struct lb_worker *w;
	unsigned li;
	int fd;
	struct ev_io io;
	bool paused;
};

enum lb_msg_type {
	LB_MSG_SWITCH,
	LB_MSG_STOP,
};

struct lb_msg {
	int type;
	struct lb_gen *gen; /* SWITCH: a reference handed to the worker */
	int *fds;           /* SWITCH: listening socket per listener of gen, for this worker */
	int *close_fds;     /* sockets of listeners gone, closed by the worker */
	size_t nclose;
};

struct lb_worker {
	unsigned id;
	pthread_t thread;
	bool started;
	_Atomic int poked; /* another thread asked for a look at the queues */
	struct ev_loop *loop;
	int efd;
	struct ev_io eio;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct lb_msg *msg;
	bool done; /* msg handled */
	struct lb_wgen *cur;
	struct lb_listen *listens;
	size_t nlistens;
	struct lb_bufs *free_bufs;
	size_t nfree_bufs;
	int *free_pipes; /* pairs */
	size_t nfree_pipes;
	struct ev_timer tick;
	struct lb_session *sessions;   /* list */
	struct lb_session *again;      /* sessions to run at the next turn */
	struct lb_session *held;       /* sessions to send at the end of this turn */
	size_t nheld;                  /* on that list, at most LB_HELD_MAX */
	bool flushing;                 /* the held sessions are running */
	struct lb_wgen *wgens;         /* live generations, current first */
	struct ev_timer kick;          /* 0-delay: queues and again list at the next turn */
	_Atomic int64_t *global_conns; /* shared across workers */
	int64_t global_max;
	uint64_t seed;
	bool want_ring;        /* set before start: I/O through io_uring if it can be had */
	unsigned busy_poll_us; /* set before start: see uring_set_busy_poll */
	struct uring *ring;    /* NULL: epoll, read/send and splice */
	struct lb_sconn *dead; /* closed server connections waiting for ring completions */
};

int lb_worker_init(struct lb_worker *w, unsigned id, _Atomic int64_t *global_conns,
                   int64_t global_max);
int lb_worker_start(struct lb_worker *w);
/* Hands msg to the worker and waits until it was applied. */
void lb_worker_send(struct lb_worker *w, struct lb_msg *msg);
/* Stops the thread, closing every session and listening socket. */
void lb_worker_halt(struct lb_worker *w);
/* Halts it if running, and frees what init made. */
void lb_worker_destroy(struct lb_worker *w);

/* For the session code: every paused listener may accept again (a slot freed). */
void lb_worker_resume(struct lb_worker *w);
/* Queues and the again list are looked at in the next loop turn. */
void lb_worker_kick(struct lb_worker *w);
/* The same, from any thread (through the worker's eventfd when it is another one). */
void lb_worker_poke(struct lb_worker *w);
struct lb_bufs *lb_worker_bufs_get(struct lb_worker *w, size_t csize);
void lb_worker_bufs_put(struct lb_worker *w, struct lb_bufs *b);
int lb_worker_pipe_get(struct lb_worker *w, int *rd, int *wr);
void lb_worker_pipe_put(struct lb_worker *w, int rd, int wr);

/* Generations */
void lb_gen_ref(struct lb_gen *g);
void lb_gen_unref(struct lb_gen *g);
void lb_wgen_unref(struct lb_wgen *wg);
