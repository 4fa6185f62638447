/*
 * One line per event on stderr, `key=value` fields after the message. Under systemd
 * (JOURNAL_STREAM names our stderr) lines carry a <N> syslog prefix so journald keeps the level.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Longest line written; longer messages are cut and end in "...". */
#define LOG_LINE_MAX 4096

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn"/"warning", "info", "debug" -> 0, else -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
/* Where lines go (default 2); tests point it at a pipe. */
void log_set_fd(int fd);
/* Re-reads JOURNAL_STREAM; called once at start and by tests. */
void log_detect_journal(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Start-up failures only: logs at error level and exits 1. */
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writes value into dst as a key=value field value: bare when it has no space, quote,
 * backslash, '=' or control character, else double-quoted with \" \\ \n \t and \xHH (other
 * controls) escapes, so a line parses back to the same fields. Always NUL-terminates when
 * n > 0; returns the length it needed (like snprintf).
 */
size_t log_quote(char *dst, size_t n, const char *value);
/*
 * The same for len bytes from outside (a request's path; NUL is a byte like any other), where
 * every byte past ASCII is escaped (\xHH) too. A value that does not fit is cut between two
 * bytes and written quoted with "..." before its closing quote, so the field stays whole.
 * Returns strlen(dst); n under 6 leaves dst empty.
 */
size_t log_quote_mem(char *dst, size_t n, const void *value, size_t len);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
