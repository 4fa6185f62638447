/*
 * TCP proxying of one client connection: a server chosen at accept, bytes both ways (through
 * a buffer while exchanges are small, splice(2) pipes for bulk), each half-close passed on,
 * closed when both directions are done or idle. With the worker's io_uring, small exchanges
 * go through it instead of a buffer and epoll: a turn's receives and sends cost one system
 * call together; a tunnel that reads a full buffer moves to epoll and splice.
 */
#pragma once

#include "lb_session.h"

/* Takes over a new session of a tcp listener. */
void lb_tcp_start(struct lb_session *s);
/* The session is being closed: its ring operations end early (it is freed after the last). */
void lb_tcp_ring_cancel(struct lb_session *s);
