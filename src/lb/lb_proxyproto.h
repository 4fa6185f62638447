/*
 * PROXY protocol v1 (text) and v2 (binary), haproxy's spec (doc/proxy-protocol.txt): built
 * for servers that want the client's address, and read from trusted upstreams in front of us.
 */
#pragma once

#include "core/net.h"

#include <stddef.h>
#include <stdint.h>

/* v1 is at most 107 bytes; v2 with IPv6 and no TLVs is 52. */
#define LB_PROXYPROTO_MAX 232

/*
 * Writes the header announcing a TCP connection from src to dst (both with ports; v4-mapped
 * addresses are written as IPv4; mixed families use IPv6 for both, v1 "TCP6"). version is
 * LB_PROXY_V1 or LB_PROXY_V2. Returns the length, or -EINVAL / -ENOBUFS (len too small).
 */
int lb_proxyproto_build(int version, const struct net_addr *src, const struct net_addr *dst,
                        uint8_t *out, size_t len);

/*
 * Reads a header at the start of buf. Returns its length (> 0) with src and dst set (family 0
 * for v1 "UNKNOWN" and v2 LOCAL/UNSPEC: keep the real peer), 0 when more bytes are needed,
 * or -EBADMSG when buf does not start with a valid v1 or v2 header (v1 over 107 bytes, bad
 * addresses or ports, v2 bad version/command/length; v2 TLVs are skipped).
 */
int lb_proxyproto_parse(const uint8_t *buf, size_t len, struct net_addr *src, struct net_addr *dst);
