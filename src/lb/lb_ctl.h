/*
 * `rampart lb ctl`: a unix stream socket taking one command line per connection and
 * answering "ok" or "error: <what>" on the first line, then the output, then closing.
 *   show servers [LISTENER]       the lb_stats_table
 *   show json                     the lb_stats_json document
 *   show prometheus               the Prometheus text
 *   disable LISTENER/SERVER       maintenance: no new requests
 *   enable LISTENER/SERVER        back to ready
 *   drain LISTENER/SERVER         no new clients, in-flight ones finish
 *   weight LISTENER/SERVER N      0..256
 * A refused command is answered "error: what", a line that is not a command (unknown verb,
 * wrong arguments, more than one line) "error: usage: what".
 * The socket is created mode 0600 (owner only); a stale socket file is replaced.
 */
#pragma once

#include "core/buf.h"
#include "core/ev.h"
#include "lb_stats.h"

#include <sys/types.h>

#define LB_CTL_LINE_MAX 1024
#define LB_CTL_REPLY_MAX (4 * 1024 * 1024)

struct lb_ctl;

int lb_ctl_listen(struct ev_loop *loop, const char *path, lb_view_cb view, void *data,
                  struct lb_ctl **out);
/* Gives the socket file to uid:gid (a process about to drop to that user), if it is still
 * ours; -ESTALE when another file took its place. */
int lb_ctl_chown(struct lb_ctl *c, uid_t uid, gid_t gid);
/* Closes the socket and removes its file. NULL-safe. */
void lb_ctl_free(struct lb_ctl *c);

/* The client: sends line, reads the whole reply into out. -errno on connect/IO failure,
 * -ETIMEDOUT after timeout_ms. */
int lb_ctl_request(const char *path, const char *line, uint64_t timeout_ms, struct buf *out);
