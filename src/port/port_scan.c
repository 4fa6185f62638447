/*
 * The hot path of `rampart port`: a readlinkat per descriptor of every process. Each lookup
 * is relative to an open /proc/PID/fd (one path component), with getdents64 into a stack
 * buffer, no stdio and no allocation per entry.
 *
 * It runs on every CPU. The unit of work is one getdents64 batch of one fd directory: a job
 * that fills its batch hands the rest of the directory (its d_off, the next fd number) to
 * whichever thread is free before reading its own links, so one process with thousands of
 * sockets is shared out as well as thousands of small processes are.
 */
#include "port_scan.h"

#include "core/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One batch: some 340 descriptors, enough to be worth a hand-over. */
#define BATCH_SIZE 8192
/* Largest fd directory entry: header, 10 digits, NUL, 8-byte aligned. */
#define FD_DIRENT_MAX 32
#define PROC_DENTS_SIZE 32768
#define SOCKET_PREFIX_LEN (sizeof(PORT_PROC_SOCKET_PREFIX) - 1)

struct job {
	int32_t pid;
	int64_t pos; /* directory offset to start from; 0 for the whole directory */
};

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int proc_fd;
	const uint32_t *inodes;
	size_t n;
	int32_t *pids; /* every process, from one read of /proc */
	size_t npids;
	size_t next;                            /* the first process not yet taken */
	struct job rest[PORT_SCAN_THREADS_MAX]; /* directories handed over, at most one each */
	size_t nrest;
	unsigned busy; /* threads inside a job */
	int err;
};

struct worker {
	struct shared *sh;
	struct port_owner_list out;
	struct port_scan_stats st;
	pthread_t thread;
};

/* Decimal without sign or leading zero that fits an int32; -1 otherwise. */
static int32_t
parse_id(const char *s)
{
	int64_t v = 0;

	if (s[0] < '1' || s[0] > '9')
		return s[0] == '0' && s[1] == '\0' ? 0 : -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > INT32_MAX)
			return -1;
	}
	return (int32_t)v;
}

static bool
inode_wanted(const uint32_t *inodes, size_t n, uint64_t inode)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (inodes[mid] == inode)
			return true;
		if (inodes[mid] < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
pid_add(struct shared *sh, size_t *cap, int32_t pid)
{
	if (sh->npids == *cap) {
		size_t ncap = *cap ? *cap * 2 : 512;
		if (ncap > PORT_SCAN_PIDS_MAX)
			return -ENOBUFS;
		int32_t *v = reallocarray(sh->pids, ncap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		sh->pids = v;
		*cap = ncap;
	}
	sh->pids[sh->npids++] = pid;
	return 0;
}

/* The numeric entries of /proc, in one go before the threads start. */
static int
list_pids(struct shared *sh)
{
	char dents[PROC_DENTS_SIZE] __attribute__((aligned(8)));
	size_t cap = 0;

	if (lseek(sh->proc_fd, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		ssize_t len = getdents64(sh->proc_fd, dents, sizeof(dents));
		if (len <= 0)
			return len < 0 ? -errno : 0;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *d = (const void *)(dents + off);
			off += d->d_reclen;
			int32_t pid = parse_id(d->d_name);
			int r = pid > 0 ? pid_add(sh, &cap, pid) : 0;
			if (r < 0)
				return r;
		}
	}
}

/* Waits for work: a handed-over directory first, then the next process. */
static bool
job_take(struct shared *sh, struct job *job)
{
	bool got = false;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		if (sh->err)
			break;
		if (sh->nrest || sh->next < sh->npids) {
			*job = sh->nrest ? sh->rest[--sh->nrest]
			                 : (struct job){.pid = sh->pids[sh->next++]};
			sh->busy++;
			got = true;
			break;
		}
		if (sh->busy == 0)
			break; /* nothing left and nobody can hand anything over */
		pthread_cond_wait(&sh->cond, &sh->lock);
	}
	pthread_mutex_unlock(&sh->lock);
	return got;
}

static void
job_done(struct shared *sh, int r)
{
	pthread_mutex_lock(&sh->lock);
	sh->busy--;
	if (r < 0 && !sh->err)
		sh->err = r;
	if (sh->busy == 0 || sh->err)
		pthread_cond_broadcast(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
}

/* false when the hand-over list is full: the caller reads on by itself. */
static bool
job_hand_over(struct shared *sh, int32_t pid, int64_t pos)
{
	bool ok = false;

	pthread_mutex_lock(&sh->lock);
	if (sh->nrest < PORT_SCAN_THREADS_MAX) {
		sh->rest[sh->nrest++] = (struct job){.pid = pid, .pos = pos};
		pthread_cond_signal(&sh->cond);
		ok = true;
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

/*
 * One entry of /proc/PID/fd: 0, or 1 when the links may not be read (listing a directory
 * needs less than reading its links: ptrace access). Only allocation failure is an error.
 */
static int
scan_entry(struct worker *w, int dfd, const char *name, int32_t pid)
{
	char link[40]; /* "socket:[4294967295]" fits; longer targets are cut, which is fine */
	uint64_t inode;

	ssize_t len = readlinkat(dfd, name, link, sizeof(link));
	if (len < 0 && (errno == EACCES || errno == EPERM))
		return 1;
	if (len <= (ssize_t)SOCKET_PREFIX_LEN || link[0] != 's')
		return 0;
	if (port_proc_socket_link(link, (size_t)len, &inode) < 0)
		return 0;
	if (!inode_wanted(w->sh->inodes, w->sh->n, inode))
		return 0;
	return port_owner_list_add(&w->out, (uint32_t)inode, pid, parse_id(name));
}

static int
scan_batch(struct worker *w, int dfd, int32_t pid, const char *dents, ssize_t len)
{
	for (ssize_t off = 0; off < len;) {
		const struct dirent64 *d = (const void *)(dents + off);
		off += d->d_reclen;
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue; /* "." and ".." */
		int r = scan_entry(w, dfd, d->d_name, pid);
		if (r != 0)
			return r;
	}
	return 0;
}

/* The last entry's d_off: where the next batch starts. */
static int64_t
batch_end(const char *dents, ssize_t len)
{
	const struct dirent64 *last = NULL;

	for (ssize_t off = 0; off < len; off += last->d_reclen)
		last = (const void *)(dents + off);
	return last ? last->d_off : 0;
}

/* A process that exits while we read it just ends its listing: only -ENOMEM/-ENOBUFS fail. */
static int
job_run(struct worker *w, const struct job *job)
{
	char path[32], dents[BATCH_SIZE] __attribute__((aligned(8)));

	snprintf(path, sizeof(path), "%d/fd", (int)job->pid);
	_cleanup_close_ int dfd = openat(w->sh->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		w->st.denied += job->pos == 0 && (errno == EACCES || errno == EPERM);
		return 0;
	}
	w->st.procs += job->pos == 0;
	if (job->pos && lseek(dfd, job->pos, SEEK_SET) < 0)
		return 0;
	for (;;) {
		ssize_t len = getdents64(dfd, dents, sizeof(dents));
		if (len <= 0)
			return 0;
		/* getdents64 stops early only when the next entry does not fit */
		bool more = sizeof(dents) - (size_t)len < FD_DIRENT_MAX;
		bool handed = more && job_hand_over(w->sh, job->pid, batch_end(dents, len));
		int r = scan_batch(w, dfd, job->pid, dents, len);
		if (r > 0) { /* the rest of this process is unreadable too */
			w->st.denied += job->pos == 0;
			return 0;
		}
		if (r < 0 || !more || handed)
			return r;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job job;

	while (job_take(w->sh, &job))
		job_done(w->sh, job_run(w, &job));
	return NULL;
}

static unsigned
cpu_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n < 1 ? 1 : (unsigned)n;
}

/* Moves every worker's owners into out, sorted. */
static int
merge(struct worker *ws, unsigned nw, struct port_owner_list *out, struct port_scan_stats *st)
{
	int r = 0;

	for (unsigned i = 0; i < nw; i++) {
		for (size_t k = 0; r == 0 && k < ws[i].out.n; k++)
			r = port_owner_list_add(out, ws[i].out.v[k].inode, ws[i].out.v[k].pid,
			                        ws[i].out.v[k].fd);
		st->procs += ws[i].st.procs;
		st->denied += ws[i].st.denied;
		port_owner_list_free(&ws[i].out);
	}
	if (r == 0 && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), port_owner_cmp);
	return r;
}

static int
run_workers(struct shared *sh, unsigned threads, struct port_owner_list *out,
            struct port_scan_stats *st)
{
	struct worker ws[PORT_SCAN_THREADS_MAX] = {0};
	unsigned started = 1;

	for (unsigned i = 0; i < threads; i++)
		ws[i].sh = sh;
	/* the calling thread is worker 0; a thread that fails to start just is not there */
	for (; started < threads; started++)
		if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0)
			break;
	worker_main(&ws[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	int r = merge(ws, started, out, st);
	return sh->err ? sh->err : r;
}

int
port_scan(int proc_fd, const uint32_t *inodes, size_t n, unsigned threads,
          struct port_owner_list *out, struct port_scan_stats *st)
{
	struct shared sh = {
	    .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER,
	    .proc_fd = proc_fd,
	    .inodes = inodes,
	    .n = n,
	};

	*st = (struct port_scan_stats){0};
	if (threads == 0)
		threads = cpu_count();
	if (threads > PORT_SCAN_THREADS_MAX)
		threads = PORT_SCAN_THREADS_MAX;
	int r = list_pids(&sh);
	if (r == 0)
		r = run_workers(&sh, threads, out, st);
	free(sh.pids);
	pthread_mutex_destroy(&sh.lock);
	pthread_cond_destroy(&sh.cond);
	return r;
}
