/*
 * Text that came from someone else (command lines, paths, DNS records) made safe for a
 * terminal, as ss(8) and ps(1) do: printable UTF-8 is kept; control bytes (C0, DEL and the
 * C1 range U+0080..U+009F, which some terminals obey as escape sequences) and bytes that are
 * not valid UTF-8 become \xHH (lower-case hex); a backslash becomes \\ so that the escaped
 * text is unambiguous and can be turned back into the original bytes.
 */
#pragma once

#include "buf.h"

#include <stdio.h>

/* Appends the escaped text of s. -ENOBUFS past the buffer's cap. */
int esc_text(struct buf *b, const char *s);
/* Writes the escaped text of s to f; the stream's error, if any, stays for the caller. */
void esc_fputs(const char *s, FILE *f);
/*
 * The escaped text of s into out (size bytes, NUL-terminated), cut at a whole escape when it
 * does not fit. Returns the length it would have had (as snprintf does).
 */
size_t esc_copy(char *out, size_t size, const char *s);
