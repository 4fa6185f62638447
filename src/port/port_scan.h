/* Which processes hold which sockets: one pass over every /proc/PID/fd, on every CPU. */
#pragma once

#include "port_proc.h"

#include <stddef.h>
#include <stdint.h>

/* Most threads a scan uses (readlink per descriptor is the cost; it scales with CPUs). */
#define PORT_SCAN_THREADS_MAX 8
/* Most processes a scan visits: the kernel's own pid_max ceiling. */
#define PORT_SCAN_PIDS_MAX (4u << 20)

struct port_scan_stats {
	size_t procs;  /* processes looked at */
	size_t denied; /* processes whose descriptors we may not read */
};

/*
 * Reads every /proc/PID/fd under proc_fd (an open /proc) and keeps in out, sorted with
 * port_owner_cmp, each descriptor whose "socket:[INODE]" names one of inodes (sorted
 * ascending). threads 0 means one per CPU we may run on. Processes that vanish meanwhile
 * are skipped; those we may not read are counted in st->denied.
 */
int port_scan(int proc_fd, const uint32_t *inodes, size_t n, unsigned threads,
              struct port_owner_list *out, struct port_scan_stats *st);
