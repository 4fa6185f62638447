/* Network namespaces: finding them through /proc/PID/ns/net and /run/netns, entering them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;

/* Cap on namespaces listed. */
#define PORT_NETNS_MAX 65536

struct port_netns {
	uint64_t inode; /* what `ls -L -i /proc/PID/ns/net` shows; lsns(8) lists the same */
	int32_t pid;    /* a process inside; 0 when only /run/netns names it */
	char name[256]; /* the `ip netns` name, "" when none */
	char path[300]; /* to open it: "PID/ns/net" under /proc, or "/run/netns/NAME" */
};

struct port_netns_list {
	struct port_netns *v; /* sorted by inode, unique */
	size_t n;
	size_t cap;
};

/* The inode of our own network namespace. */
int port_netns_self(int proc_fd, uint64_t *inode);
/*
 * Every network namespace a process is in or /run/netns names, ours included. *denied counts
 * processes whose namespace we may not look at.
 */
int port_netns_list(int proc_fd, struct port_netns_list *out, size_t *denied);
/* Only the namespaces /run/netns names (cheap: for showing names, not for entering). */
int port_netns_named(int proc_fd, struct port_netns_list *out);
void port_netns_list_free(struct port_netns_list *l);
const struct port_netns *port_netns_find(const struct port_netns_list *l, uint64_t inode);

/*
 * Opens a sock_diag socket inside ns (a socket stays in the namespace it was made in) and
 * comes back to the namespace of self_fd. -EPERM without CAP_SYS_ADMIN. -ENOTRECOVERABLE
 * when it could not come back: the caller must not go on.
 */
int port_netns_diag_open(int proc_fd, int self_fd, const struct port_netns *ns,
                         struct mnl_socket **out);
