/* The words `rampart port` takes on its command line, parsed without printing anything. */
#pragma once

#include "port_sock.h"

/* "tcp", "udp" or "unix" -> PORT_PROTO_*; -EINVAL otherwise. */
int port_args_proto(const char *s, unsigned *proto);

/*
 * "PORT", "LO-HI", ":PORT", "ADDRESS:PORT[-HI]", "[IPV6]:PORT[-HI]" or "localhost:PORT[-HI]"
 * into out. Returns how many targets it filled: 1, or 2 for localhost (127.0.0.1 and ::1, as
 * /etc/hosts has it; no other name is looked up). Failures, each with its own message:
 * -ERANGE: a number outside 1..65535 ("0", "70000", "-5");
 * -EILSEQ: a leading zero ("09001"), which the user may have meant some other way;
 * -EDOM: a range that runs backwards ("90-80");
 * -E2BIG: a range of more than PORT_RANGE_MAX ports;
 * -EDESTADDRREQ: an address without a port ("::1", "10.0.0.1", "localhost");
 * -EADDRNOTAVAIL: a host name other than localhost ("example.com:80");
 * -EINVAL: anything else ("abc").
 */
int port_args_target(const char *s, struct port_target out[2]);

/* "TERM", "SIGTERM", "term", "15" -> SIGTERM; -EINVAL for unknown names and numbers. */
int port_args_signal(const char *s, int *sig);
