/* JSON text for `rampart port --json`. */
#pragma once

#include "core/buf.h"

/*
 * Appends s as a JSON string with its quotes. Control characters become \uXXXX; bytes that
 * are not valid UTF-8 (command lines may hold any) become \u00XX, so the output always
 * parses. -ENOBUFS past the buffer's cap.
 */
int port_json_string(struct buf *b, const char *s);
