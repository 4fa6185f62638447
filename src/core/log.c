#include "log.h"

#include <errno.h>
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
	                     (long)getpid(), log_names[level]);
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

static int
log_needs_quote(const char *v)
{
	if (!*v)
		return 1;
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || *v == '"' || *v == '\\' || *v == 0x7f || *v == '=')
			return 1;
	return 0;
}

size_t
log_quote(char *dst, size_t n, const char *value)
{
	size_t len = 0;
#define LOG_PUT(c)                                                                                 \
	do {                                                                                       \
		if (len + 1 < n)                                                                   \
			dst[len] = (c);                                                            \
		len++;                                                                             \
	} while (0)
	int quote = log_needs_quote(value);
	if (quote)
		LOG_PUT('"');
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (!quote || (*p >= ' ' && *p != '"' && *p != '\\' && *p != 0x7f)) {
			LOG_PUT((char)*p);
			continue;
		}
		static const char hex[] = "0123456789abcdef";
		LOG_PUT('\\');
		if (*p == '"' || *p == '\\') {
			LOG_PUT((char)*p);
		} else if (*p == '\n') {
			LOG_PUT('n');
		} else if (*p == '\t') {
			LOG_PUT('t');
		} else {
			LOG_PUT('x');
			LOG_PUT(hex[*p >> 4]);
			LOG_PUT(hex[*p & 15]);
		}
	}
	if (quote)
		LOG_PUT('"');
#undef LOG_PUT
	if (n)
		dst[len < n ? len : n - 1] = '\0';
	return len;
}
