/*
 * ss, fuser and lsof see only their own network namespace. The kernel gives no list of
 * namespaces, so we gather them from what holds them: processes and `ip netns` bind mounts.
 */
#include "port_netns.h"

#include "core/cleanup.h"
#include "port_diag.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RUN_NETNS "/run/netns"

int
port_netns_self(int proc_fd, uint64_t *inode)
{
	struct stat st;
	if (fstatat(proc_fd, "self/ns/net", &st, 0) < 0)
		return -errno;
	*inode = st.st_ino;
	return 0;
}

void
port_netns_list_free(struct port_netns_list *l)
{
	if (!l)
		return;
	free(l->v);
	*l = (struct port_netns_list){0};
}

static int
netns_add(struct port_netns_list *l, const struct port_netns *ns)
{
	for (size_t i = 0; i < l->n; i++) { /* few namespaces: a linear look is enough */
		if (l->v[i].inode != ns->inode)
			continue;
		if (!l->v[i].name[0] && ns->name[0]) /* a name beats a process for showing */
			memcpy(l->v[i].name, ns->name, sizeof(ns->name));
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		if (cap > PORT_NETNS_MAX)
			return -ENOBUFS;
		struct port_netns *v = reallocarray(l->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *ns;
	return 0;
}

static int
list_processes(int proc_fd, struct port_netns_list *out, size_t *denied)
{
	_cleanup_close_ int fd = openat(proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d)
		return -errno;
	TAKE_FD(fd);
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		struct port_netns ns = {0};
		struct stat st;
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end || pid > INT32_MAX)
			continue;
		snprintf(ns.path, sizeof(ns.path), "%ld/ns/net", pid);
		if (fstatat(proc_fd, ns.path, &st, 0) < 0) {
			*denied += errno == EACCES || errno == EPERM;
			continue;
		}
		ns.inode = st.st_ino;
		ns.pid = (int32_t)pid;
		r = netns_add(out, &ns);
	}
	closedir(d);
	return r;
}

/* `ip netns add` bind-mounts the namespace on /run/netns/NAME; an unmounted file is skipped. */
static int
list_named(dev_t nsfs, struct port_netns_list *out)
{
	DIR *d = opendir(RUN_NETNS);
	if (!d)
		return 0;
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		struct port_netns ns = {0};
		struct stat st;
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(ns.name))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0 || st.st_dev != nsfs)
			continue;
		ns.inode = st.st_ino;
		snprintf(ns.name, sizeof(ns.name), "%s", e->d_name);
		snprintf(ns.path, sizeof(ns.path), RUN_NETNS "/%s", e->d_name);
		r = netns_add(out, &ns);
	}
	closedir(d);
	return r;
}

static int
netns_cmp(const void *pa, const void *pb)
{
	const struct port_netns *a = pa, *b = pb;
	return (a->inode > b->inode) - (a->inode < b->inode);
}

int
port_netns_list(int proc_fd, struct port_netns_list *out, size_t *denied)
{
	struct stat st;

	*denied = 0;
	if (fstatat(proc_fd, "self/ns/net", &st, 0) < 0)
		return -errno;
	int r = list_processes(proc_fd, out, denied);
	if (r >= 0)
		r = list_named(st.st_dev, out);
	if (r < 0)
		return r;
	qsort(out->v, out->n, sizeof(*out->v), netns_cmp);
	return 0;
}

int
port_netns_named(int proc_fd, struct port_netns_list *out)
{
	struct stat st;

	if (fstatat(proc_fd, "self/ns/net", &st, 0) < 0)
		return -errno;
	int r = list_named(st.st_dev, out);
	if (r >= 0 && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), netns_cmp);
	return r;
}

const struct port_netns *
port_netns_find(const struct port_netns_list *l, uint64_t inode)
{
	struct port_netns key = {.inode = inode};
	if (!l->n)
		return NULL;
	return bsearch(&key, l->v, l->n, sizeof(*l->v), netns_cmp);
}

int
port_netns_diag_open(int proc_fd, int self_fd, const struct port_netns *ns, struct mnl_socket **out)
{
	_cleanup_close_ int fd = openat(proc_fd, ns->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		return -errno;
	int r = port_diag_open(out);
	if (setns(self_fd, CLONE_NEWNET) < 0) {
		if (r == 0)
			port_diag_close(*out);
		return -ENOTRECOVERABLE;
	}
	return r;
}
