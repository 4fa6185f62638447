/* The words `rampart port` takes on its command line, parsed without printing anything. */
#pragma once

#include "port_sock.h"

/* "tcp" or "udp" -> PORT_PROTO_*; -EINVAL otherwise. */
int port_args_proto(const char *s, unsigned *proto);

/*
 * "PORT", ":PORT", "ADDRESS:PORT" or "[IPV6]:PORT" into f->port and f->addr.
 * -ERANGE: a number outside 1..65535 ("0", "70000", "-5");
 * -EDESTADDRREQ: an address without a port ("::1", "10.0.0.1");
 * -EINVAL: anything else ("abc").
 */
int port_args_target(const char *s, struct port_filter *f);

/* "TERM", "SIGTERM", "term", "15" -> SIGTERM; -EINVAL for unknown names and numbers. */
int port_args_signal(const char *s, int *sig);
