/*
 * Configuration: a YAML document decoded into typed C structs through schemas.
 *
 * Each part describes its section with a struct cfg_schema (fields with type, offset into
 * the part's struct, default as config text, limits). Core knows no part: the command layer
 * assembles the root schema from the parts' schemas. Decoding collects every error, each with
 * file:line:column and the key path; unknown keys, duplicate keys, tabs, aliases and files over
 * CFG_FILE_MAX are errors. A schema's check callback runs unless the mapping's own fields have
 * errors; errors inside its sub-sections (list items) do not stop it, so it must accept items
 * left zero (NULL strings, family 0 addresses) by a failed decode.
 */
#pragma once

#include "net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_FILE_MAX (1024 * 1024)
#define CFG_DEPTH_MAX 32
#define CFG_ERRORS_MAX 100

enum cfg_type {
	CFG_STRING,   /* char * (owned, freed by cfg_free) */
	CFG_INT,      /* int64_t within [min, max]; CFG_F_AUTO accepts "auto" as 0 */
	CFG_BOOL,     /* bool: true/false, yes/no, on/off */
	CFG_DURATION, /* uint64_t milliseconds: 500ms, 3s, 2m, 1h, 1d, 1h30m; bare integer = s */
	CFG_SIZE,     /* uint64_t bytes: 512, 16k, 1m, 2g (powers of 1024; optional b / ib) */
	CFG_ADDR,     /* struct net_addr, parsed with addr_mode (NET_PORT_*) */
	CFG_CIDR,     /* struct net_cidr */
	CFG_ENUM,     /* int: index into choices */
	CFG_SECTION,  /* nested mapping decoded with schema into the struct at offset */
	CFG_LIST,     /* struct cfg_list: a sequence of elem (scalar type, or CFG_SECTION) */
	CFG_MAP,      /* struct cfg_map: mapping of free keys to elem values */
};

enum {
	CFG_F_REQUIRED = 1u << 0, /* missing key is an error (def is ignored) */
	CFG_F_AUTO = 1u << 1,     /* CFG_INT: "auto" decodes as 0 */
};

struct cfg_schema;
struct cfg_check;

struct cfg_field {
	const char *key;
	enum cfg_type type;
	size_t offset;
	unsigned flags;
	/* Default as config text, decoded like a value from the file; NULL = zero/empty. */
	const char *def;
	/* CFG_INT: limits (both 0 = any int64). CFG_DURATION/CFG_SIZE: each applies if nonzero. */
	int64_t min, max;
	const char *const *choices;      /* CFG_ENUM: NULL-terminated */
	const struct cfg_schema *schema; /* CFG_SECTION; CFG_LIST/CFG_MAP of CFG_SECTION */
	enum cfg_type elem;              /* CFG_LIST, CFG_MAP: element type */
	unsigned addr_mode;              /* CFG_ADDR (also as elem): NET_PORT_* */
	const char *help;                /* one line, for docs and errors */
};

struct cfg_schema {
	const char *name;
	size_t size;                    /* sizeof the struct, for list/map elements */
	const struct cfg_field *fields; /* ends with a field whose key is NULL */
	/* Optional cross-field validation after the mapping is decoded; report with
	 * cfg_check_error. */
	void (*check)(void *obj, struct cfg_check *chk);
};

struct cfg_list {
	size_t n;
	void *items; /* n elements, each of the element type's C size */
};

struct cfg_map {
	size_t n;
	char **keys;
	void *values; /* n elements, as in cfg_list */
};

struct cfg_error {
	char *file;
	unsigned line, col; /* 1-based; 0 when the error has no position */
	char *msg;          /* "key.path[1].sub: what is wrong" */
};

struct cfg_errors {
	size_t n;
	size_t dropped; /* errors past CFG_ERRORS_MAX, counted not stored */
	struct cfg_error *v;
};

/*
 * Decodes the file into out (a struct described by schema). Returns 0, -EINVAL when the
 * document has errors (all in errs), or -errno when the file cannot be read (errs empty).
 * Only a regular file is read: a FIFO or a device is an error in errs (it could block).
 * On any failure out holds nothing to free.
 */
int cfg_load_file(const char *path, const struct cfg_schema *schema, void *out,
                  struct cfg_errors *errs);
/* As cfg_load_file, from memory; name is used in error positions. */
int cfg_load_string(const char *name, const char *text, size_t len, const struct cfg_schema *schema,
                    void *out, struct cfg_errors *errs);
/* Fills out with the schema's defaults, as for an empty document. */
int cfg_load_defaults(const struct cfg_schema *schema, void *out, struct cfg_errors *errs);
/* Deep copy of a decoded struct (schema->size bytes); on -ENOMEM dst holds nothing to free. */
int cfg_copy(const struct cfg_schema *schema, void *dst, const void *src);
/* Frees what decoding allocated inside obj (not obj itself). NULL-safe. */
void cfg_free(const struct cfg_schema *schema, void *obj);

void cfg_errors_free(struct cfg_errors *errs);
/* One "FILE:LINE:COL: message" line per error (no position: "FILE: message"). */
void cfg_errors_print(const struct cfg_errors *errs, int fd);

/* For schema check callbacks: reports an error at key's position in the mapping being checked
 * (the mapping's own position when key is NULL or absent). */
void cfg_check_error(struct cfg_check *chk, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For schema check callbacks: reports an error at sub's value in item index of the sequence at
 * key (e.g. "servers", 2, "name": the duplicate itself, path servers[2].name); the item, then
 * key, when those are absent. */
void cfg_check_item_error(struct cfg_check *chk, const char *key, size_t index, const char *sub,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The line of what cfg_check_item_error would point at; 0 when it is not in the file. */
unsigned cfg_check_item_line(const struct cfg_check *chk, const char *key, size_t index,
                             const char *sub);

/* For schema check callbacks: whether the mapping was in the file (false when it came from
 * defaults: an absent or empty section). */
bool cfg_check_present(const struct cfg_check *chk);

/* Scalar parsers shared with command-line options; -EINVAL on bad text, -ERANGE on overflow. */
int cfg_parse_duration(const char *s, uint64_t *ms);
int cfg_parse_size(const char *s, uint64_t *bytes);
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_int(const char *s, int64_t *out);
