/* Sockets from the text of /proc/net/{tcp,tcp6,udp,udp6}: for kernels without inet_diag. */
#pragma once

#include "port_sock.h"

#include <stdint.h>
#include <sys/types.h>

/* Longest line accepted; real ones are about 150 bytes. */
#define PORT_FALLBACK_LINE_MAX 512

/*
 * One entry line ("  0: 0100007F:0016 00000000:0000 0A ... uid timeout inode ...") of a
 * family's file into out (proto and netns left alone). -EINVAL for the header or junk.
 */
int port_fallback_parse_line(const char *line, int family, struct port_sock *out);

/*
 * Appends the sockets f asks for in the network namespace of pid (0 for our own), tagged
 * netns, reading /proc/PID/net. Only the protocols in protos are read.
 */
int port_fallback_dump(int proc_fd, pid_t pid, const struct port_filter *f, unsigned protos,
                       uint64_t netns, struct port_sock_list *out);
