/*
 * Sockets first, processes second: the kernel filters sockets by port and state (cheap), and
 * only then do we walk /proc, comparing each socket descriptor's inode with the few wanted.
 */
#include "port_find.h"

#include "core/cleanup.h"
#include "port_diag.h"
#include "port_fallback.h"
#include "port_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sockets of our own namespace, from sock_diag or, where it is missing, from /proc/net. */
static int
find_own(const struct port_query *q, const struct port_filter *f, struct port_result *r)
{
	struct mnl_socket *nl = NULL;
	unsigned missing = f->protos;
	int ret = 0;

	if (!q->no_diag && port_diag_open(&nl) == 0) {
		ret = port_diag_dump(nl, f, r->self_netns, &r->socks, &missing);
		port_diag_close(nl);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	if (!missing)
		return 0;
	r->fallback = true;
	ret = port_fallback_dump(r->proc_fd, 0, f, missing, r->self_netns, &r->socks);
	/* /proc/net/unix has no state filter we trust nor uids: unix sockets need sock_diag */
	return ret >= 0 && (missing & PORT_PROTO_UNIX) ? -EPROTONOSUPPORT : ret;
}

static int
find_in_netns(const struct port_query *q, const struct port_filter *f, struct port_result *r,
              int self_fd, const struct port_netns *ns)
{
	struct mnl_socket *nl = NULL;
	unsigned missing = f->protos;

	int ret =
	    q->no_diag ? -EPROTONOSUPPORT : port_netns_diag_open(r->proc_fd, self_fd, ns, &nl);
	if (ret == -ENOTRECOVERABLE)
		return ret;
	if (ret == -EPERM || ret == -EACCES) {
		r->denied_netns++;
		return 0;
	}
	if (ret == 0) {
		ret = port_diag_dump(nl, f, ns->inode, &r->socks, &missing);
		port_diag_close(nl);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	} else if (ret != -EPROTONOSUPPORT) {
		return 0; /* the namespace went away with its last process */
	}
	if (!missing || ns->pid <= 0)
		return 0;
	r->fallback = true;
	return port_fallback_dump(r->proc_fd, ns->pid, f, missing, ns->inode, &r->socks);
}

static int
find_other(const struct port_query *q, struct port_result *r)
{
	int ret = port_netns_list(r->proc_fd, &r->netns, &r->hidden_netns);
	if (ret < 0)
		return ret;
	_cleanup_close_ int self_fd = openat(r->proc_fd, "self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		return -errno;
	for (size_t i = 0; i < r->netns.n; i++) {
		if (r->netns.v[i].inode == r->self_netns)
			continue;
		ret = find_in_netns(q, &q->filter, r, self_fd, &r->netns.v[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int
u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return (a > b) - (a < b);
}

/* The sorted, unique, non-zero inodes of r->socks, then one /proc pass for their owners. */
static int
find_owners(const struct port_query *q, struct port_result *r)
{
	_cleanup_free_ uint32_t *inodes = calloc(r->socks.n ? r->socks.n : 1, sizeof(*inodes));
	size_t n = 0;
	struct port_scan_stats st;

	if (!inodes)
		return -ENOMEM;
	for (size_t i = 0; i < r->socks.n; i++)
		if (r->socks.v[i].inode)
			inodes[n++] = r->socks.v[i].inode;
	if (n == 0)
		return 0;
	qsort(inodes, n, sizeof(*inodes), u32_cmp);
	size_t u = 1;
	for (size_t i = 1; i < n; i++)
		if (inodes[i] != inodes[u - 1])
			inodes[u++] = inodes[i];
	int ret = port_scan(r->proc_fd, inodes, u, q->threads, &r->owners, &st);
	r->denied_procs = st.denied;
	return ret;
}

/* The unique inodes of owners (sorted by inode) into *out. */
static int
owner_inodes(const struct port_owner_list *l, uint32_t **out, size_t *n)
{
	*n = 0;
	*out = calloc(l->n ? l->n : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		if (*n == 0 || l->v[i].inode != (*out)[*n - 1])
			(*out)[(*n)++] = l->v[i].inode;
	return 0;
}

/* The sockets one process holds, looked up in the namespace it is in. */
static int
find_of_pid(const struct port_query *q, struct port_result *r)
{
	_cleanup_free_ struct port_filter *f = malloc(sizeof(*f));
	_cleanup_free_ uint32_t *inodes = NULL;
	struct port_netns ns = {.pid = q->pid};
	struct stat st;

	if (!f)
		return -ENOMEM;
	*f = q->filter;
	int ret = port_proc_fd_sockets(r->proc_fd, q->pid, &r->owners);
	if (ret < 0)
		return ret == -ENOENT ? -ESRCH : ret;
	if ((ret = owner_inodes(&r->owners, &inodes, &f->ninodes)) < 0 || f->ninodes == 0)
		return ret;
	f->inodes = inodes;
	snprintf(ns.path, sizeof(ns.path), "%d/ns/net", (int)q->pid);
	if (fstatat(r->proc_fd, ns.path, &st, 0) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ns.inode = st.st_ino;
	if (ns.inode == r->self_netns)
		return find_own(q, f, r);
	_cleanup_close_ int self_fd = openat(r->proc_fd, "self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		return -errno;
	ret = find_in_netns(q, f, r, self_fd, &ns);
	return ret >= 0 && r->denied_netns ? -EPERM : ret;
}

int
port_find(const struct port_query *q, struct port_result *r)
{
	*r = (struct port_result){.proc_fd = -1};
	r->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->proc_fd < 0)
		return -errno;
	int ret = port_netns_self(r->proc_fd, &r->self_netns);
	if (ret >= 0 && q->pid > 0)
		ret = find_of_pid(q, r);
	else if (ret >= 0)
		ret = find_own(q, &q->filter, r);
	if (ret >= 0 && q->all_netns && q->pid <= 0)
		ret = find_other(q, r);
	else if (ret >= 0)
		ret = port_netns_named(r->proc_fd, &r->netns);
	if (ret >= 0 && r->socks.n && q->pid <= 0)
		ret = find_owners(q, r);
	port_sock_list_sort(&r->socks);
	return ret < 0 ? ret : 0;
}

void
port_result_free(struct port_result *r)
{
	if (!r)
		return;
	port_sock_list_free(&r->socks);
	port_owner_list_free(&r->owners);
	port_netns_list_free(&r->netns);
	if (r->proc_fd >= 0)
		close(r->proc_fd);
	r->proc_fd = -1;
}
