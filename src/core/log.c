#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level_cur = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;
static int log_journal = -1; /* -1: not yet detected */

static const char *const log_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities journald reads from a "<N>" line prefix */
static const int log_syslog_prio[] = {3, 4, 6, 7};

void
log_set_level(enum log_level level)
{
	log_level_cur = level;
}

enum log_level
log_get_level(void)
{
	return log_level_cur;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -EINVAL;
}

const char *
log_level_name(enum log_level level)
{
	return (unsigned)level < 4 ? log_names[level] : "?";
}

void
log_set_fd(int fd)
{
	log_fd = fd;
	log_journal = -1;
}

/* systemd sets JOURNAL_STREAM=dev:ino of the stream it gave us; only then is it journald's. */
void
log_detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;

	log_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(log_fd, &st) == 0 &&
	              (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The pid of the prefix, asked once: getpid(2) is a system call (glibc keeps no cache), one
 * per access line. A forked child forgets the parent's. */
static _Atomic pid_t log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void
log_pid_forget(void)
{
	atomic_store_explicit(&log_pid, 0, memory_order_relaxed);
}

static void
log_pid_watch(void)
{
	pthread_atfork(NULL, NULL, log_pid_forget);
}

static pid_t
log_getpid(void)
{
	pid_t pid = atomic_load_explicit(&log_pid, memory_order_relaxed);
	if (!pid) {
		pthread_once(&log_pid_once, log_pid_watch);
		pid = getpid();
		atomic_store_explicit(&log_pid, pid, memory_order_relaxed);
	}
	return pid;
}

static size_t
log_prefix(char *line, size_t n, enum log_level level)
{
	if (log_journal)
		return (size_t)snprintf(line, n, "<%d>", log_syslog_prio[level]);

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t len = strftime(line, n, "%Y-%m-%dT%H:%M:%S", &tm);
	len +=
	    (size_t)snprintf(line + len, n - len, ".%03ld rampart[%ld] %s: ", ts.tv_nsec / 1000000,
	                     (long)log_getpid(), log_names[level]);
	return len;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level > log_level_cur)
		return;
	int saved = errno;
	if (log_journal < 0)
		log_detect_journal();

	char line[LOG_LINE_MAX + 1];
	size_t len = log_prefix(line, LOG_LINE_MAX, level);
	/* %m wants the caller's errno; fstat and the first localtime_r may have changed it */
	errno = saved;
	int r = vsnprintf(line + len, LOG_LINE_MAX - len, fmt, ap);
	if (r < 0)
		r = 0;
	if ((size_t)r >= LOG_LINE_MAX - len) {
		len = LOG_LINE_MAX - 4;
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)r;
	}
	/* a message must stay one line, whatever the caller passed in */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	/* one write per line keeps lines from several threads whole */
	while (write(log_fd, line, len) < 0 && errno == EINTR)
		;
	errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

_Noreturn void
log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Bytes written escaped inside quotes; with ascii (bytes from outside) all past 0x7f too. */
static int
log_escaped(unsigned char c, int ascii)
{
	return c < ' ' || c == '"' || c == '\\' || c == 0x7f || (ascii && c >= 0x80);
}

static int
log_needs_quote(const unsigned char *p, size_t len, int ascii)
{
	if (!len)
		return 1;
	for (size_t i = 0; i < len; i++)
		if (p[i] == ' ' || p[i] == '=' || log_escaped(p[i], ascii))
			return 1;
	return 0;
}

/* c as it stands in a quoted value, into out; its length (1, 2 or 4). */
static size_t
log_escape(unsigned char c, int ascii, char out[4])
{
	static const char hex[] = "0123456789abcdef";
	out[0] = (char)c;
	if (!log_escaped(c, ascii))
		return 1;
	out[0] = '\\';
	out[1] = c == '\n' ? 'n' : c == '\t' ? 't' : (char)c;
	if (c == '"' || c == '\\' || c == '\n' || c == '\t')
		return 2;
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 15];
	return 4;
}

/* Output that counts what it needs and writes what fits, leaving room for the NUL. */
struct log_out {
	char *dst;
	size_t n, len;
};

static void
log_out_put(struct log_out *o, const char *p, size_t k)
{
	for (size_t i = 0; i < k; i++, o->len++)
		if (o->len + 1 < o->n)
			o->dst[o->len] = p[i];
}

static size_t
log_out_end(struct log_out *o)
{
	if (o->n)
		o->dst[o->len < o->n ? o->len : o->n - 1] = '\0';
	return o->len;
}

static void
log_out_escaped(struct log_out *o, const unsigned char *p, size_t len, int ascii)
{
	char e[4];
	for (size_t i = 0; i < len; i++)
		log_out_put(o, e, log_escape(p[i], ascii, e));
}

/* p[0, len) as a field value: bare when nothing in it needs quoting, else quoted. */
static size_t
log_out_value(struct log_out *o, const unsigned char *p, size_t len, int ascii)
{
	int quote = log_needs_quote(p, len, ascii);
	if (quote)
		log_out_put(o, "\"", 1);
	log_out_escaped(o, p, len, ascii);
	if (quote)
		log_out_put(o, "\"", 1);
	return log_out_end(o);
}

size_t
log_quote(char *dst, size_t n, const char *value)
{
	struct log_out o = {.dst = dst, .n = n};
	return log_out_value(&o, (const unsigned char *)value, strlen(value), 0);
}

size_t
log_quote_mem(char *dst, size_t n, const void *value, size_t len)
{
	const unsigned char *p = value;
	struct log_out o = {.dst = dst, .n = n};
	if (log_out_value(&o, p, len, 1) < n)
		return o.len;
	o.len = 0;
	if (n < sizeof("\"...\""))
		return log_out_end(&o);
	/* the longest prefix whose escapes fit between the quotes, before "..." */
	size_t room = n - sizeof("\"...\""), k = 0, w = 0;
	char e[4];
	for (; k < len && w + log_escape(p[k], 1, e) <= room; k++)
		w += log_escape(p[k], 1, e);
	log_out_put(&o, "\"", 1);
	log_out_escaped(&o, p, k, 1);
	log_out_put(&o, "...\"", 4);
	return log_out_end(&o);
}
