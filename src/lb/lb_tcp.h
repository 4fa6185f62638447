/*
 * TCP proxying of one client connection: a server chosen at accept, bytes both ways (through
 * a buffer while exchanges are small, splice(2) pipes for bulk), each half-close passed on,
 * closed when both directions are done or idle.
 */
#pragma once

#include "lb_session.h"

/* Takes over a new session of a tcp listener. */
void lb_tcp_start(struct lb_session *s);
