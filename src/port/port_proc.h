/* Which processes hold which sockets, and facts about a process, from /proc. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Cap on owners kept from one scan (each is an open file descriptor somewhere). */
#define PORT_OWNER_MAX (1u << 22)
/* Longest command line kept; longer ones end in "...". */
#define PORT_CMDLINE_MAX 4096
/* What readlink of /proc/PID/fd/N starts with for a socket. */
#define PORT_PROC_SOCKET_PREFIX "socket:["

struct port_owner {
	uint32_t inode; /* socket inode */
	int32_t pid;
	int32_t fd;
};

struct port_owner_list {
	struct port_owner *v; /* sorted by inode, pid, fd after a scan */
	size_t n;
	size_t cap;
};

struct port_proc_info {
	uint32_t uid;   /* effective */
	char comm[64];  /* the process name */
	char unit[256]; /* with full: see port_cgroup_unit; "" when none */
	char *cmdline;  /* with full: arguments joined by spaces; [comm] for kernel threads */
	char *exe;      /* with full: NULL when unreadable */
};

int port_owner_list_add(struct port_owner_list *l, uint32_t inode, int32_t pid, int32_t fd);
void port_owner_list_free(struct port_owner_list *l);
/* qsort order of port_owner: inode, pid, fd. */
int port_owner_cmp(const void *a, const void *b);
/* The owners of inode: a run of l (sorted) that *n counts; NULL when none. */
const struct port_owner *port_owner_find(const struct port_owner_list *l, uint32_t inode,
                                         size_t *n);

/*
 * comm and uid; with full also cmdline, exe and unit (free them with port_proc_info_free).
 * -ENOENT when the process is gone.
 */
int port_proc_info_read(int proc_fd, pid_t pid, bool full, struct port_proc_info *out);
/* NULL-safe. */
void port_proc_info_free(struct port_proc_info *p);

/*
 * Every socket descriptor of process pid into out, sorted with port_owner_cmp. -ENOENT: no
 * such process; -EACCES/-EPERM: its descriptors may not be read.
 */
int port_proc_fd_sockets(int proc_fd, pid_t pid, struct port_owner_list *out);

/* "socket:[12345]" of len bytes (not NUL-terminated) -> 12345; -EINVAL for anything else. */
int port_proc_socket_link(const char *s, size_t len, uint64_t *inode);
/* NUL-separated arguments (len bytes) into a line of space-joined arguments, in place. */
void port_proc_cmdline_join(char *s, size_t len);
/* The effective uid from /proc/PID/status text; -EINVAL without a Uid: line. */
int port_proc_status_uid(const char *status, uint32_t *uid);
