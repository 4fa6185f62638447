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
#include <stdlib.h>
#include <unistd.h>

/* Sockets of our own namespace, from sock_diag or, where it is missing, from /proc/net. */
static int
find_own(const struct port_query *q, struct port_result *r)
{
	struct mnl_socket *nl = NULL;
	unsigned missing = q->filter.protos;
	int ret = 0;

	if (!q->no_diag && port_diag_open(&nl) == 0) {
		ret = port_diag_dump(nl, &q->filter, r->self_netns, &r->socks, &missing);
		port_diag_close(nl);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	if (!missing)
		return 0;
	r->fallback = true;
	return port_fallback_dump(r->proc_fd, 0, &q->filter, missing, r->self_netns, &r->socks);
}

static int
find_in_netns(const struct port_query *q, struct port_result *r, int self_fd,
              const struct port_netns *ns)
{
	struct mnl_socket *nl = NULL;
	unsigned missing = q->filter.protos;

	int ret =
	    q->no_diag ? -EPROTONOSUPPORT : port_netns_diag_open(r->proc_fd, self_fd, ns, &nl);
	if (ret == -ENOTRECOVERABLE)
		return ret;
	if (ret == -EPERM || ret == -EACCES) {
		r->denied_netns++;
		return 0;
	}
	if (ret == 0) {
		ret = port_diag_dump(nl, &q->filter, ns->inode, &r->socks, &missing);
		port_diag_close(nl);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	} else if (ret != -EPROTONOSUPPORT) {
		return 0; /* the namespace went away with its last process */
	}
	if (!missing || ns->pid <= 0)
		return 0;
	r->fallback = true;
	return port_fallback_dump(r->proc_fd, ns->pid, &q->filter, missing, ns->inode, &r->socks);
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
		ret = find_in_netns(q, r, self_fd, &r->netns.v[i]);
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

int
port_find(const struct port_query *q, struct port_result *r)
{
	*r = (struct port_result){.proc_fd = -1};
	r->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->proc_fd < 0)
		return -errno;
	int ret = port_netns_self(r->proc_fd, &r->self_netns);
	if (ret >= 0)
		ret = find_own(q, r);
	if (ret >= 0 && q->all_netns)
		ret = find_other(q, r);
	if (ret >= 0 && r->socks.n)
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
