/*
 * HTTP/1.1 proxying of one client connection: request heads parsed and rewritten (hop-by-hop
 * fields dropped, X-Forwarded-For/-Proto and Forwarded added), bodies streamed with their
 * framing checked, responses streamed back, server connections pooled between requests,
 * pipelined requests answered in order, Upgrade tunnelled.
 */
#pragma once

#include "lb_session.h"

/* Takes over a new session of an http listener. */
void lb_http_start(struct lb_session *s);
