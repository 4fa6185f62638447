/*
 * Ends a banned source's existing TCP connections: a nftables ban only stops new packets from
 * being accepted, so an attacker's open session would otherwise live on. Uses sock_diag's
 * SOCK_DESTROY (CAP_NET_ADMIN, CONFIG_INET_DIAG_DESTROY) in the caller's network namespace.
 */
#pragma once

#include "core/net.h"

#include <stddef.h>

/* Prefixes per call: every socket is matched against each in userspace. */
#define GUARD_KILL_CIDRS_MAX 4096u
/* Sockets destroyed per call at most; matches past it stay (call again). */
#define GUARD_KILL_MAX 65536u

/*
 * Destroys every IPv4 and IPv6 TCP socket but listeners whose remote address is inside one of
 * v[0..n) (v4-mapped peers of IPv6 sockets match IPv4 prefixes); the local end reads
 * ECONNABORTED, the peer gets a reset. *killed is how many were destroyed, also on error.
 * Sockets that close meanwhile are no error. -EINVAL for a prefix with host bits set, more
 * than GUARD_KILL_CIDRS_MAX prefixes or no killed; -EPERM without CAP_NET_ADMIN;
 * -EOPNOTSUPP when the kernel cannot destroy sockets (CONFIG_INET_DIAG_DESTROY off).
 */
int guard_kill(const struct net_cidr *v, size_t n, size_t *killed);
