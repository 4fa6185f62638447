/*
 * `rampart milter`: the Postfix milter (libmilter) that verifies inbound mail (SPF, Sender ID,
 * DKIM, DomainKeys, DMARC; one Authentication-Results field) and signs mail from internal or
 * authenticated clients. libmilter runs its own threads (one per MTA connection); this module
 * gives them the running configuration, which a reload replaces without dropping a
 * connection: each connection keeps the configuration it started with.
 */
#pragma once

#include "core/dns.h"
#include "core/metrics.h"
#include "milter_config.h"

struct milter;

/*
 * Opens the listener and starts serving. -EADDRINUSE and the like when the listener cannot be
 * opened, -EINVAL with why filled for a configuration that cannot be loaded (a key, a table).
 * One milter per process: libmilter's state is global.
 */
int milter_start(const struct milter_cfg *cfg, const struct dns_options *dns,
                 struct metrics *metrics, struct milter **out, char *why, size_t whylen);
/* Loads keys and tables anew; on failure the running configuration stays (why says why). */
int milter_reload(struct milter *m, const struct milter_cfg *cfg, const struct dns_options *dns,
                  char *why, size_t whylen);
/* The listener as Postfix's smtpd_milters writes it: inet:PORT@HOST is inet:HOST:PORT,
 * inet6:PORT@HOST is inet:[HOST]:PORT, unix:PATH stays. -ENOBUFS when size is too small. */
int milter_postfix_spec(const char *spec, char *out, size_t size);
/* Stops accepting, lets libmilter finish, frees m. NULL-safe. */
void milter_stop(struct milter *m);
