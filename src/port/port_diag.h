/* Sockets from the kernel through NETLINK_SOCK_DIAG (inet_diag), filtered in the kernel. */
#pragma once

#include "port_sock.h"

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;

/* Bytes of the bytecode port_diag_bytecode writes. */
#define PORT_DIAG_BYTECODE_LEN 16

/* A sock_diag socket in the calling thread's current network namespace. */
int port_diag_open(struct mnl_socket **out);
/* NULL-safe. */
void port_diag_close(struct mnl_socket *nl);

/*
 * Appends the sockets f asks for, tagged with netns, to out: one dump per protocol and
 * family (one for unix sockets), the kernel keeping only the wanted states and, with one
 * target, the wanted local ports; the rest is filtered here.
 * -ENOENT when the kernel has no diag module for a protocol f asks for; *missing then holds
 * the PORT_PROTO_* bits that were not dumped (others were).
 */
int port_diag_dump(struct mnl_socket *nl, const struct port_filter *f, uint64_t netns,
                   struct port_sock_list *out, unsigned *missing);

/* The inet_diag program "lo <= local port <= hi", PORT_DIAG_BYTECODE_LEN bytes, into bc. */
void port_diag_bytecode(uint16_t lo, uint16_t hi, void *bc);
