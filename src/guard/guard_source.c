/* Log sources: files followed with inotify (plus a slow stat fallback) and sd-journal. */
#include "guard_source.h"

#include "core/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define SRC_CHUNK (64 * 1024)
#define SRC_POLL_NS EV_SEC(1)
#define SRC_IDENTS_MAX 16
#define SRC_IDENT_MAX 64

enum src_kind {
	SRC_FILE,
	SRC_JOURNAL,
};

struct src_file {
	char *path;
	char *dir;
	const char *base; /* in path */
	int fd;           /* -1 while the file is missing */
	dev_t dev;
	ino_t ino;
	off_t off;
	int ifd; /* -1 without inotify: the poll timer does it all */
	int wd_dir;
	int wd_file;
	struct ev_io inotify_io;
	bool discarding; /* inside an overlong (or cut at start) line: skip to its newline */
	size_t line_len;
	char line[GUARD_SOURCE_LINE_MAX];
	char chunk[SRC_CHUNK];
};

struct src_journal {
	sd_journal *j;
	struct ev_io io;
	size_t n_idents;
	char idents[SRC_IDENTS_MAX][SRC_IDENT_MAX];
};

struct guard_source {
	enum src_kind kind;
	struct ev_loop *loop;
	guard_source_cb cb;
	void *data;
	struct ev_timer poll;   /* the slow fallback (file) or sd_journal_get_timeout (journal) */
	struct ev_timer resume; /* the budget ran out: go on in the next iteration */
	/* per loop iteration (ev_now_ns tells one from the next), however many wakeups it has */
	uint64_t budget_at;
	size_t budget;
	union {
		struct src_file *f;
		struct src_journal *jr;
	};
};

DEFINE_CLEANUP_FUNC(struct guard_source, guard_source_free)

static struct guard_source *
src_alloc(struct ev_loop *loop, enum src_kind kind, guard_source_cb cb, void *data)
{
	struct guard_source *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->kind = kind;
	s->loop = loop;
	s->cb = cb;
	s->data = data;
	return s;
}

/* What is left of this iteration's budget, full budget for a new iteration. */
static size_t *
src_budget(struct guard_source *s, size_t full)
{
	uint64_t now = ev_now_ns(s->loop);
	if (s->budget_at != now) {
		s->budget_at = now;
		s->budget = full;
	}
	return &s->budget;
}

/* ---- file: lines ---- */

static void
file_deliver(struct guard_source *s, const char *p, size_t n)
{
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return;
	struct guard_line line;
	if (guard_match_split(p, n, &line) < 0)
		line = (struct guard_line){.ident = NULL, .ident_len = 0, .msg = p, .msg_len = n};
	s->cb(&line, p, n, s->data);
}

/* One piece of a line (up to its newline, when nl). Lines over the cap are dropped whole. */
static void
file_piece(struct guard_source *s, const char *p, size_t take, bool nl)
{
	struct src_file *f = s->f;
	if (f->discarding) {
		f->discarding = !nl;
		return;
	}
	if (take > GUARD_SOURCE_LINE_MAX - f->line_len) {
		f->line_len = 0;
		f->discarding = !nl;
		return;
	}
	if (nl && f->line_len == 0) {
		file_deliver(s, p, take);
		return;
	}
	memcpy(f->line + f->line_len, p, take);
	f->line_len += take;
	if (nl) {
		file_deliver(s, f->line, f->line_len);
		f->line_len = 0;
	}
}

static void
file_feed(struct guard_source *s, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		file_piece(s, p, take, nl != NULL);
		if (!nl)
			return;
		p += take + 1;
		n -= take + 1;
	}
}

static void
file_forget_line(struct src_file *f)
{
	f->line_len = 0;
	f->discarding = false;
}

/* ---- file: the open file ---- */

static void
file_watch_fd(struct src_file *f)
{
	if (f->ifd < 0)
		return;
	/* by the open fd, not the path: the path may already name a newer file */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->fd);
	f->wd_file = inotify_add_watch(
	    f->ifd, proc, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE);
}

static void
file_close(struct src_file *f)
{
	if (f->wd_file >= 0)
		inotify_rm_watch(f->ifd, f->wd_file);
	f->wd_file = -1;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	file_forget_line(f);
}

/* A line cut by starting at the end is history's tail: skip it up to its newline. */
static void
file_start_at_end(struct src_file *f, off_t size)
{
	char last = '\n';
	f->off = size;
	if (size > 0 && pread(f->fd, &last, 1, size - 1) != 1)
		last = '\n';
	f->discarding = last != '\n';
}

/* 0 and f->fd open, -ENOENT (missing), -EINVAL (not a regular file) or -errno. */
static int
file_open(struct src_file *f, bool at_end)
{
	_cleanup_(cleanup_closep) int fd =
	    open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	f->fd = TAKE_FD(fd);
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->off = 0;
	file_forget_line(f);
	if (at_end)
		file_start_at_end(f, st.st_size);
	file_watch_fd(f);
	return 0;
}

/* Reads what is there within *budget: 0 at the end, 1 when the budget ran out, or -errno. */
static int
file_read_avail(struct guard_source *s, size_t *budget)
{
	struct src_file *f = s->f;
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (st.st_size < f->off) {
		f->off = 0; /* truncated (copytruncate) */
		file_forget_line(f);
	}
	while (*budget > 0) {
		size_t want = *budget < SRC_CHUNK ? *budget : SRC_CHUNK;
		ssize_t n = pread(f->fd, f->chunk, want, f->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		f->off += n;
		*budget -= (size_t)n;
		file_feed(s, f->chunk, (size_t)n);
	}
	return 1;
}

/* Whether path now names another file than the one we hold (or one at all, when we hold none). */
static bool
file_replaced(const struct src_file *f)
{
	struct stat st;
	if (stat(f->path, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	return f->fd < 0 || st.st_dev != f->dev || st.st_ino != f->ino;
}

static void
file_add_dir_watch(struct src_file *f)
{
	if (f->ifd >= 0 && f->wd_dir < 0)
		f->wd_dir = inotify_add_watch(f->ifd, f->dir,
		                              IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
		                                  IN_ONLYDIR);
}

/*
 * Reads the current file to its end, then, if path names a new file, switches to it (from its
 * start) and reads that. Stops at the byte budget and resumes in the next iteration.
 */
static void
file_check(struct guard_source *s)
{
	struct src_file *f = s->f;
	size_t *budget = src_budget(s, GUARD_SOURCE_FILE_BUDGET);
	for (int pass = 0; pass < 2; pass++) {
		if (f->fd >= 0 && file_read_avail(s, budget) > 0) {
			ev_timer_start(s->loop, &s->resume, 0);
			return;
		}
		if (!file_replaced(f))
			return;
		file_close(f);
		if (file_open(f, false) < 0)
			return;
	}
	/* a third file in one go: rare, the next iteration takes it */
	ev_timer_start(s->loop, &s->resume, 0);
}

/* ---- file: wakeups ---- */

static bool
file_event_relevant(const struct src_file *f, const struct inotify_event *e)
{
	if (e->mask & IN_Q_OVERFLOW)
		return true;
	if (e->wd == f->wd_dir)
		return e->len > 0 && strcmp(e->name, f->base) == 0;
	return e->wd == f->wd_file;
}

static void
file_inotify_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct guard_source *s = io->data;
	struct src_file *f = s->f;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	/* bounded: the fd is level-triggered, what is left wakes us again */
	for (int reads = 0; reads < 16; reads++) {
		ssize_t n = read(f->ifd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n;) {
			const struct inotify_event *e = (const struct inotify_event *)(buf + i);
			relevant |= file_event_relevant(f, e);
			if ((e->mask & IN_IGNORED) && e->wd == f->wd_dir)
				f->wd_dir =
				    -1; /* the directory went away; the poll timer re-adds it */
			i += (ssize_t)(sizeof(*e) + e->len);
		}
	}
	if (relevant)
		file_check(s);
}

static void
file_poll_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct guard_source *s = t->data;
	file_add_dir_watch(s->f);
	file_check(s);
	ev_timer_start(loop, t, SRC_POLL_NS);
}

static void
file_resume_cb(struct ev_loop *loop, struct ev_timer *t)
{
	file_check(t->data);
}

/* inotify is an optimisation: without an instance (limits) the poll timer does the work. */
static void
file_inotify_init(struct guard_source *s)
{
	struct src_file *f = s->f;
	f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->ifd < 0)
		return;
	ev_io_init(&f->inotify_io, f->ifd, EV_READ, file_inotify_cb, s);
	if (ev_io_start(s->loop, &f->inotify_io) < 0) {
		close(f->ifd);
		f->ifd = -1;
		return;
	}
	file_add_dir_watch(f);
}

static int
file_names(struct src_file *f, const char *path)
{
	f->path = strdup(path);
	const char *slash = strrchr(path, '/');
	if (!slash)
		f->dir = strdup(".");
	else if (slash == path)
		f->dir = strdup("/");
	else
		f->dir = strndup(path, (size_t)(slash - path));
	if (!f->path || !f->dir)
		return -ENOMEM;
	f->base = f->path + (slash ? slash - path + 1 : 0);
	return *f->base ? 0 : -EINVAL;
}

int
guard_source_file_new(struct ev_loop *loop, const char *path, guard_source_cb cb, void *data,
                      struct guard_source **out)
{
	_cleanup_(guard_source_freep) struct guard_source *s = src_alloc(loop, SRC_FILE, cb, data);
	if (!s || !(s->f = calloc(1, sizeof(*s->f))))
		return -ENOMEM;
	struct src_file *f = s->f;
	f->fd = f->ifd = f->wd_dir = f->wd_file = -1;
	int r = file_names(f, path);
	if (r < 0)
		return r;
	file_inotify_init(s);
	r = file_open(f, true);
	if (r < 0 && r != -ENOENT)
		return r;
	ev_timer_init(&s->poll, file_poll_cb, s);
	ev_timer_init(&s->resume, file_resume_cb, s);
	r = ev_timer_start(loop, &s->poll, SRC_POLL_NS);
	if (r < 0)
		return r;
	*out = TAKE_PTR(s);
	return 0;
}

static void
file_free(struct guard_source *s)
{
	struct src_file *f = s->f;
	if (!f)
		return;
	file_close(f);
	if (f->ifd >= 0)
		ev_io_close(s->loop, &f->inotify_io);
	free(f->path);
	free(f->dir);
	free(f);
}

/* ---- journal ---- */

/* The value of field in the current entry, without "FIELD=": 0, or -errno (-ENOENT: none). */
static int
journal_field(sd_journal *j, const char *field, const char **val, size_t *len)
{
	const void *d;
	size_t l;
	int r = sd_journal_get_data(j, field, &d, &l);
	if (r < 0)
		return r;
	size_t skip = strlen(field) + 1;
	if (l < skip)
		return -EBADMSG;
	*val = (const char *)d + skip;
	*len = l - skip;
	return 0;
}

/* Our copy of the entry's identifier, or NULL when it is none of ours. */
static const char *
journal_ident(struct src_journal *jr)
{
	const char *v;
	size_t l;
	if (journal_field(jr->j, "SYSLOG_IDENTIFIER", &v, &l) < 0 &&
	    journal_field(jr->j, "_COMM", &v, &l) < 0)
		return NULL;
	for (size_t i = 0; i < jr->n_idents; i++)
		if (strlen(jr->idents[i]) == l && memcmp(jr->idents[i], v, l) == 0)
			return jr->idents[i];
	return NULL;
}

static void
journal_entry(struct guard_source *s)
{
	struct src_journal *jr = s->jr;
	/* the copy: sd_journal_get_data invalidates the previous field's data */
	const char *ident = journal_ident(jr);
	const char *msg;
	size_t len;
	if (!ident || journal_field(jr->j, "MESSAGE", &msg, &len) < 0 ||
	    len > GUARD_SOURCE_LINE_MAX)
		return;
	struct guard_line line = {
	    .ident = ident, .ident_len = strlen(ident), .msg = msg, .msg_len = len};
	s->cb(&line, NULL, 0, s->data);
}

static void
journal_rearm(struct guard_source *s)
{
	uint64_t until = UINT64_MAX, after = SRC_POLL_NS;
	if (sd_journal_get_timeout(s->jr->j, &until) >= 0 && until != UINT64_MAX) {
		uint64_t now = ev_clock_ns() / 1000; /* both CLOCK_MONOTONIC, µs */
		uint64_t us = until > now ? until - now : 0;
		if (us * 1000 < after)
			after = us * 1000;
	}
	ev_timer_start(s->loop, &s->poll, after);
}

static void
journal_read(struct guard_source *s)
{
	size_t *budget = src_budget(s, GUARD_SOURCE_JOURNAL_BUDGET);
	for (; *budget > 0; --*budget) {
		if (sd_journal_next(s->jr->j) <= 0)
			return;
		journal_entry(s);
	}
	ev_timer_start(s->loop, &s->resume, 0);
}

/* New data or not, sd_journal_process consumes the wakeup (its inotify fd is level-triggered). */
static void
journal_wake(struct guard_source *s)
{
	sd_journal_process(s->jr->j);
	journal_read(s);
	journal_rearm(s);
}

static void
journal_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	journal_wake(io->data);
}

static void
journal_poll_cb(struct ev_loop *loop, struct ev_timer *t)
{
	journal_wake(t->data);
}

static void
journal_resume_cb(struct ev_loop *loop, struct ev_timer *t)
{
	journal_read(t->data);
}

static int
journal_add_ident(struct src_journal *jr, const char *ident)
{
	size_t l = strlen(ident);
	if (l == 0 || l >= SRC_IDENT_MAX || jr->n_idents == SRC_IDENTS_MAX)
		return -EINVAL;
	memcpy(jr->idents[jr->n_idents++], ident, l + 1);
	return 0;
}

static int
journal_set_idents(struct src_journal *jr, const char *const *idents)
{
	for (size_t i = 0; idents && idents[i]; i++) {
		int r = journal_add_ident(jr, idents[i]);
		/* OpenSSH 9.8 moved the session, 10.0 the pre-auth work to their own programs */
		if (r == 0 && strcmp(idents[i], "sshd") == 0)
			r = journal_add_ident(jr, "sshd-session");
		if (r == 0 && strcmp(idents[i], "sshd") == 0)
			r = journal_add_ident(jr, "sshd-auth");
		if (r < 0)
			return r;
	}
	return jr->n_idents > 0 ? 0 : -EINVAL;
}

/* (SYSLOG_IDENTIFIER=a OR ...) OR (_COMM=a OR ...); journal_ident picks the entry's own. */
static int
journal_add_matches(struct src_journal *jr)
{
	static const char *const fields[] = {"SYSLOG_IDENTIFIER", "_COMM"};
	for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
		for (size_t i = 0; i < jr->n_idents; i++) {
			char m[SRC_IDENT_MAX + 32];
			int n = snprintf(m, sizeof(m), "%s=%s", fields[f], jr->idents[i]);
			int r = sd_journal_add_match(jr->j, m, (size_t)n);
			if (r < 0)
				return r;
		}
		int r = f + 1 < ARRAY_SIZE(fields) ? sd_journal_add_disjunction(jr->j) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* sd_journal_open skips files it may not read: no file at all needs a reason. */
static int
journal_system_usable(sd_journal *j)
{
	if (sd_journal_has_runtime_files(j) > 0 || sd_journal_has_persistent_files(j) > 0)
		return 0;
	sd_id128_t id;
	if (sd_id128_get_machine(&id) < 0)
		return -ENOENT;
	char dir[128];
	struct stat st;
	snprintf(dir, sizeof(dir), "/var/log/journal/" SD_ID128_FORMAT_STR,
	         SD_ID128_FORMAT_VAL(id));
	if (stat(dir, &st) == 0)
		return -EACCES;
	snprintf(dir, sizeof(dir), "/run/log/journal/" SD_ID128_FORMAT_STR,
	         SD_ID128_FORMAT_VAL(id));
	return stat(dir, &st) == 0 ? -EACCES : -ENOENT;
}

static int
journal_open(struct src_journal *jr, const char *directory)
{
	int r = directory ? sd_journal_open_directory(&jr->j, directory, 0)
	                  : sd_journal_open(&jr->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (r < 0)
		return r;
	if (!directory && (r = journal_system_usable(jr->j)) < 0)
		return r;
	/* one byte over the cap (sizeof counts the NUL): a longer MESSAGE shows as longer and is
	 * dropped, never delivered cut */
	r = sd_journal_set_data_threshold(jr->j, sizeof("MESSAGE=") + GUARD_SOURCE_LINE_MAX);
	if (r < 0)
		return r;
	r = journal_add_matches(jr);
	if (r < 0)
		return r;
	r = sd_journal_seek_tail(jr->j);
	if (r < 0)
		return r;
	/* on the last entry, so that sd_journal_next gives the first new one */
	r = sd_journal_previous(jr->j);
	if (r != 0)
		return r < 0 ? r : 0;
	/* Nothing of ours yet: all that comes is new. At the tail sd_journal_next would start a
	 * file that appears later at its last entry, skipping the others. */
	return sd_journal_seek_head(jr->j);
}

static int
journal_watch(struct guard_source *s)
{
	int fd = sd_journal_get_fd(s->jr->j);
	if (fd < 0)
		return fd;
	int ev = sd_journal_get_events(s->jr->j);
	if (ev < 0)
		return ev;
	ev_io_init(&s->jr->io, fd, EV_READ, journal_io_cb, s);
	int r = ev_io_start(s->loop, &s->jr->io);
	if (r < 0)
		return r;
	ev_timer_init(&s->poll, journal_poll_cb, s);
	ev_timer_init(&s->resume, journal_resume_cb, s);
	journal_rearm(s);
	return 0;
}

int
guard_source_journal_new(struct ev_loop *loop, const char *directory, const char *const *idents,
                         guard_source_cb cb, void *data, struct guard_source **out)
{
	_cleanup_(guard_source_freep) struct guard_source *s =
	    src_alloc(loop, SRC_JOURNAL, cb, data);
	if (!s || !(s->jr = calloc(1, sizeof(*s->jr))))
		return -ENOMEM;
	int r = journal_set_idents(s->jr, idents);
	if (r < 0)
		return r;
	r = journal_open(s->jr, directory);
	if (r < 0)
		return r;
	r = journal_watch(s);
	if (r < 0)
		return r;
	*out = TAKE_PTR(s);
	return 0;
}

static void
journal_free(struct guard_source *s)
{
	struct src_journal *jr = s->jr;
	if (!jr)
		return;
	if (jr->io.active)
		ev_io_stop(s->loop, &jr->io);
	sd_journal_close(jr->j); /* closes the fd io watched */
	free(jr);
}

bool
guard_source_waiting(const struct guard_source *s)
{
	return s->kind == SRC_FILE && s->f->fd < 0;
}

void
guard_source_free(struct guard_source *s)
{
	if (!s)
		return;
	ev_timer_stop(s->loop, &s->poll);
	ev_timer_stop(s->loop, &s->resume);
	if (s->kind == SRC_FILE)
		file_free(s);
	else
		journal_free(s);
	free(s);
}
