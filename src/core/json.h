/* JSON text for every --json output. */
#pragma once

#include "buf.h"

/*
 * Appends s as a JSON string with its quotes. Control characters become \uXXXX; bytes that
 * are not valid UTF-8 (command lines may hold any) become \u00XX, so the output always
 * parses. -ENOBUFS past the buffer's cap.
 */
int json_string(struct buf *b, const char *s);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
size_t json_utf8_len(const unsigned char *s);
