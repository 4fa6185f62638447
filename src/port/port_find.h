/* The whole lookup: sockets from the kernel (or /proc/net), then their owning processes. */
#pragma once

#include "port_netns.h"
#include "port_proc.h"
#include "port_sock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct port_query {
	struct port_filter filter;
	bool all_netns;   /* also every other network namespace */
	bool no_diag;     /* read /proc/net text even when sock_diag works */
	int32_t pid;      /* > 0: only the sockets this process holds (all_netns is ignored) */
	unsigned threads; /* for the /proc scan; 0: one per CPU */
};

struct port_result {
	struct port_sock_list socks;   /* sorted for output */
	struct port_owner_list owners; /* see port_owner_find */
	struct port_netns_list netns;  /* with all_netns: every namespace, for names */
	uint64_t self_netns;
	int proc_fd;         /* /proc, open for port_proc_info_read; -1 after free */
	size_t denied_procs; /* processes whose descriptors we could not read */
	size_t denied_netns; /* namespaces found but not entered */
	size_t hidden_netns; /* processes whose namespace we could not see */
	bool fallback;       /* some sockets came from /proc/net text */
};

/*
 * Fills r (which the caller frees with port_result_free even on failure). With q->pid:
 * -ESRCH when there is no such process, -EACCES/-EPERM when its files or namespace may not
 * be read. -EPROTONOSUPPORT: unix sockets were asked for and there is no sock_diag for them.
 */
int port_find(const struct port_query *q, struct port_result *r);
void port_result_free(struct port_result *r);
