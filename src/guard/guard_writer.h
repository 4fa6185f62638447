/*
 * The privileged half of guard: a child process that keeps only CAP_NET_ADMIN (running as the
 * unprivileged user) and applies to nftables what the daemon sends it over a socketpair, after
 * validating every message (addresses, prefixes, timeouts); anything else is refused and
 * logged. The daemon itself reads logs and matches with no capability at all.
 */
#pragma once

#include "guard_kill.h"
#include "guard_nft.h"

#include <sys/types.h>

struct guard_writer;

/* Forks the writer, which sets up the table with layout before it answers; user NULL keeps
 * root (tests, `rampart up` run by hand without the user). Call it before starting threads:
 * the child runs libnftables after fork(). Requests go in chunks of 1024 records, applied in
 * one transaction when the last arrives. */
int guard_writer_start(const struct guard_nft_layout *l, const char *user,
                       struct guard_writer **out);
/* Each call is one request and one answer: 0 or the writer's -errno. */
int guard_writer_setup(struct guard_writer *w, const struct guard_nft_layout *l);
int guard_writer_ban(struct guard_writer *w, const struct guard_nft_elem *v, size_t count);
int guard_writer_unban(struct guard_writer *w, const struct net_cidr *v, size_t count);
int guard_writer_trust(struct guard_writer *w, const struct net_addr *a, uint64_t timeout_ms);
int guard_writer_blocklist(struct guard_writer *w, const struct net_cidr *v, size_t count);
/* guard_kill in the writer (it has CAP_NET_ADMIN): destroys the TCP connections whose peer is in
 * v; *killed is the count, 0 on error. At most GUARD_KILL_CIDRS_MAX prefixes. */
int guard_writer_kill(struct guard_writer *w, const struct net_cidr *v, size_t count,
                      size_t *killed);
/* The writer's message for the last failed call (nft's text, cut), "" after a success. */
const char *guard_writer_error(const struct guard_writer *w);
/* The child, for logs; and its socket, for tests that send it malformed messages (every
 * message is answered by one whose first 4 bytes are an int32 status: 0 or -errno, or for a
 * kill's last message the count of sockets destroyed). */
pid_t guard_writer_pid(const struct guard_writer *w);
int guard_writer_fd(const struct guard_writer *w);
/* Deletes table inet rampart (bans and all); no table is no error. */
int guard_writer_remove(struct guard_writer *w);
/* Closes the socket and reaps the child. */
void guard_writer_stop(struct guard_writer *w);
