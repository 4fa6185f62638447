/*
 * Where log lines come from: the systemd journal (sd-journal, filtered by syslog identifier)
 * and log files followed across rotation (rename or unlink + new file) and truncation
 * (copytruncate). Each source hands whole lines to a callback from the event loop.
 */
#pragma once

#include "core/ev.h"
#include "guard_match.h"

#include <stdbool.h>
#include <stddef.h>

struct guard_source;

/*
 * Longest line (file) or MESSAGE (journal) delivered, without its newline. A longer one is
 * dropped whole, never cut: a cut would end attacker text (a user name) at a place the
 * attacker chose, and the piece after a cut would start with attacker text, so either could
 * carry a forged "from ADDR". No genuine sshd line comes close (OpenSSH caps its messages at
 * 1 KiB).
 */
#define GUARD_SOURCE_LINE_MAX 8192
/* Bytes a file source reads per loop iteration; the rest of a backlog waits for the next. */
#define GUARD_SOURCE_FILE_BUDGET (1024 * 1024)
/* Journal entries read per loop iteration. */
#define GUARD_SOURCE_JOURNAL_BUDGET 1024

/*
 * One line, valid only during the call. For a journal entry ident is SYSLOG_IDENTIFIER (or
 * _COMM when the entry has none), msg is MESSAGE (may hold any byte, NUL included), raw NULL
 * and raw_len 0. For a file line the source splits it with guard_match_split and raw/raw_len is
 * the whole line (without "\n" or "\r\n"); when the split fails ident is NULL (ident_len 0) and
 * msg/msg_len is the whole line, so the caller can still show it. The callback may call
 * ev_break but must not free the source.
 */
typedef void (*guard_source_cb)(const struct guard_line *line, const char *raw, size_t raw_len,
                                void *data);

/*
 * Follows path from its current end (lines already there are history: they were seen by the
 * previous run or are too old to matter; a last line without its newline yet is history too).
 * A missing file is waited for (0 is returned; the caller may log once) and read from its start
 * when it appears; a file that shrank was truncated and is read from its start; a new inode at
 * path (rotation by rename, or unlink + create) is read from its start after the rest of the
 * old one (a last line of the old file that never got its newline is dropped). inotify on the
 * file and its directory makes this immediate; a stat every second catches what inotify misses
 * (or everything, when no inotify instance is left). A truncation followed by writes past our
 * offset before we look is indistinguishable from appends (as for every follower).
 * -EINVAL when path exists and is not a regular file, -ENOMEM.
 */
int guard_source_file_new(struct ev_loop *loop, const char *path, guard_source_cb cb, void *data,
                          struct guard_source **out);

/*
 * Follows the local system journal (or the journal files in directory, when not NULL) from its
 * end, for entries whose SYSLOG_IDENTIFIER (or _COMM, when it has none) is one of idents
 * (NULL-terminated, at most 16, each shorter than 64 bytes; "sshd" also covers "sshd-session" and
 * "sshd-auth", the programs OpenSSH 9.8 and 10.0 split off).
 * -errno of sd_journal_open*; for the system journal, when no journal file can be read,
 * -EACCES if this machine's journal directory exists (no permission: not root nor in group
 * systemd-journal) and -ENOENT if not (no journald here). -EINVAL for bad idents.
 */
int guard_source_journal_new(struct ev_loop *loop, const char *directory, const char *const *idents,
                             guard_source_cb cb, void *data, struct guard_source **out);

/* Whether a file source is waiting for its file to appear (always false for the journal). */
bool guard_source_waiting(const struct guard_source *s);

/* NULL-safe. */
void guard_source_free(struct guard_source *s);
