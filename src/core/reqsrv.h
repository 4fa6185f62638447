/*
 * A server of one request per connection on an event loop, for the small control endpoints
 * (the metrics page, the lb ctl socket): read a request up to a cap, build the answer whole,
 * write it as the client takes it, close. A client silent (or not reading) for the timeout is
 * dropped; past the connection cap new ones are refused at once.
 */
#pragma once

#include "buf.h"
#include "ev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length of the whole request at the start of in, or 0 while more is needed; eof: the
 * client will send nothing more (answer what is there, or 0 to close without an answer). */
typedef size_t (*reqsrv_complete_cb)(const char *in, size_t len, bool eof);
/* The answer into out. req is NUL-terminated at len (the buffer has room for it); too_big:
 * the request passed in_max and req holds its first in_max bytes. */
typedef void (*reqsrv_answer_cb)(void *data, char *req, size_t len, bool too_big, struct buf *out);

struct reqsrv_cfg {
	size_t in_max, out_max, conns_max;
	uint64_t timeout_ms;
	reqsrv_complete_cb complete;
	reqsrv_answer_cb answer;
	void *data;
};

struct reqsrv;

/* Serves on listen_fd (taken, closed by reqsrv_free; also on failure). */
int reqsrv_start(struct ev_loop *loop, int listen_fd, const struct reqsrv_cfg *cfg,
                 struct reqsrv **out);
/* Closes the listening socket and every connection. NULL-safe. */
void reqsrv_free(struct reqsrv *s);
int reqsrv_fd(const struct reqsrv *s);
