/*
 * YAML configuration decoding.
 *
 * libyaml's event API builds a small tree first, then the tree is walked with the schema. The
 * tree makes duplicate keys, "first at line N", positions for check callbacks and for missing
 * keys cheap; the document API is not used because it expands aliases silently and its
 * composer stops at the first problem. Aliases are never expanded (alias bombs cost nothing)
 * and are reported as errors, as are anchors and merge keys.
 *
 * Tags (!!str, !!int, !foo) are ignored: the schema alone decides what a value means, so a tag
 * can neither change nor break decoding.
 *
 * Null rules: an empty value for a string is the empty string (null and ~ are taken as text,
 * since a string field has no "absent" value); for other scalars it is an error; for a
 * section, list or map a null value (empty, ~, null) is the same as an absent key: defaults.
 */
#include "cfg.h"

#include "cleanup.h"
#include "file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MSG_MAX 1024
#define CFG_PATH_MAX 512
/* Bytes of a value or key echoed in a message; longer ones end in "...". */
#define CFG_QUOTE_MAX 64
#define CFG_QUOTE_BUF (CFG_QUOTE_MAX + 4)
/* cfg_load's size for a path that is no regular file (no text is that long) */
#define CFG_SIZE_NOT_REGULAR (UINT64_MAX - 1)

static const char cfg_duration_hint[] = "(use e.g. 500ms, 3s, 2m, 1h)";
static const char cfg_size_hint[] = "(use e.g. 512, 16k, 1m, 2g)";

enum cfg_node_kind {
	CFG_NODE_SCALAR,
	CFG_NODE_MAP,
	CFG_NODE_SEQ,
	CFG_NODE_BAD, /* an alias: already reported, decoders skip it silently */
};

struct cfg_node {
	enum cfg_node_kind kind;
	bool plain;         /* plain scalar style: only these can be null */
	unsigned line, col; /* 1-based */
	char *text;         /* scalar, NUL-terminated; may hold NULs from "\0" escapes */
	size_t len;
	struct cfg_node **kids; /* map: key, value, key, value...; sequence: items */
	size_t n, cap;
};

struct cfg_pos {
	unsigned line, col;
};

struct cfg_ctx {
	const char *name;
	struct cfg_errors *errs;
	char path[CFG_PATH_MAX];
	size_t path_len;
	bool in_default; /* decoding schema default text: positions would point nowhere */
	unsigned depth;  /* sections being decoded: a schema that contains itself must end */
	/* errors in the section being decoded, outside its sub-sections: only these stop its check
	 * callback, so rules across items (duplicate names) are reported beside the items' own
	 * errors in one run */
	size_t own_errs;
	bool oom;
};

struct cfg_check {
	struct cfg_ctx *ctx;
	const struct cfg_node *map; /* NULL when the mapping came from defaults */
	struct cfg_pos pos;
};

static void
cfg_node_free(struct cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		cfg_node_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}
DEFINE_CLEANUP_FUNC(struct cfg_node, cfg_node_free)

static struct cfg_pos
cfg_node_pos(const struct cfg_node *n)
{
	return (struct cfg_pos){n->line, n->col};
}

/* Control characters would break the one-line-per-error output. */
static const char *
cfg_sanitize(char *dst, size_t size, const char *s, size_t len)
{
	size_t n = len > CFG_QUOTE_MAX ? CFG_QUOTE_MAX : len;

	if (size < CFG_QUOTE_BUF)
		return "";
	/* do not cut a UTF-8 sequence in half */
	while (n < len && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
	return dst;
}

static void
cfg_path_append(struct cfg_ctx *ctx, const char *s, size_t len)
{
	size_t room = sizeof(ctx->path) - 1 - ctx->path_len;

	if (len > room)
		len = room;
	memcpy(ctx->path + ctx->path_len, s, len);
	ctx->path_len += len;
	ctx->path[ctx->path_len] = '\0';
}

static size_t
cfg_path_push_key(struct cfg_ctx *ctx, const char *key, size_t len)
{
	size_t old = ctx->path_len;
	char q[CFG_QUOTE_BUF];

	cfg_sanitize(q, sizeof(q), key, len);
	if (old > 0)
		cfg_path_append(ctx, ".", 1);
	cfg_path_append(ctx, q, strlen(q));
	return old;
}

static size_t
cfg_path_push_index(struct cfg_ctx *ctx, size_t i)
{
	size_t old = ctx->path_len;
	char b[32];
	int k = snprintf(b, sizeof(b), "[%zu]", i);

	if (k > 0 && (size_t)k < sizeof(b))
		cfg_path_append(ctx, b, (size_t)k);
	return old;
}

static void
cfg_path_pop(struct cfg_ctx *ctx, size_t old)
{
	ctx->path_len = old;
	ctx->path[old] = '\0';
}

static size_t
cfg_err_total(const struct cfg_ctx *ctx)
{
	return ctx->errs->n + ctx->errs->dropped;
}

static void
cfg_error_add(struct cfg_ctx *ctx, struct cfg_pos pos, const char *msg)
{
	struct cfg_errors *errs = ctx->errs;

	if (errs->n >= CFG_ERRORS_MAX) {
		errs->dropped++;
		return;
	}
	if (!errs->v) {
		errs->v = calloc(CFG_ERRORS_MAX, sizeof(*errs->v));
		if (!errs->v) {
			ctx->oom = true;
			return;
		}
	}
	char *file = strdup(ctx->name), *m = strdup(msg);
	if (!file || !m) {
		free(file);
		free(m);
		ctx->oom = true;
		return;
	}
	errs->v[errs->n++] = (struct cfg_error){file, pos.line, pos.col, m};
}

static void cfg_err(struct cfg_ctx *ctx, struct cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current key path: "lb.listeners[0].port: must be between 1 and 65535". */
static void
cfg_err(struct cfg_ctx *ctx, struct cfg_pos pos, const char *fmt, ...)
{
	char msg[CFG_MSG_MAX], full[CFG_MSG_MAX + CFG_PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s%s%s%s", ctx->path, ctx->path_len ? ": " : "",
	         ctx->in_default ? "bad built-in default: " : "", msg);
	if (ctx->in_default)
		pos = (struct cfg_pos){0, 0};
	ctx->own_errs++;
	cfg_error_add(ctx, pos, full);
}

/* ---- scalar parsers ---- */

/* Decimal digits at *p; -EINVAL if there are none, -ERANGE past UINT64_MAX (still consumed). */
static int
cfg_digits(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	bool range = false;

	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			range = true;
		v = v * 10 + d;
	}
	if (s == *p)
		return -EINVAL;
	*p = s;
	*out = v;
	return range ? -ERANGE : 0;
}

int
cfg_parse_int(const char *s, int64_t *out)
{
	if (!s)
		return -EINVAL;
	bool neg = *s == '-';
	const char *p = s + neg;
	uint64_t v, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	int r = cfg_digits(&p, &v);

	if (r == -EINVAL || *p)
		return -EINVAL;
	if (r < 0 || v > lim)
		return -ERANGE;
	*out = !neg ? (int64_t)v : v == lim ? INT64_MIN : -(int64_t)v;
	return 0;
}

int
cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Milliseconds per unit at p ("ms" before "m"); 0 when p holds no unit. */
static uint64_t
cfg_duration_unit(const char **p)
{
	static const struct {
		char name[3];
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		size_t len = strlen(units[i].name);
		if (strncmp(*p, units[i].name, len) == 0) {
			*p += len;
			return units[i].ms;
		}
	}
	return 0;
}

/* Compound durations must run from large to small units, each at most once ("1h30m"): any
 * other order is more likely a typo than intent. */
int
cfg_parse_duration(const char *s, uint64_t *ms)
{
	const char *p = s;
	uint64_t total = 0, last = UINT64_MAX;
	bool range = false;

	if (!s || !*s)
		return -EINVAL;
	do {
		uint64_t n, mul;
		int r = cfg_digits(&p, &n);
		if (r == -EINVAL)
			return r;
		mul = cfg_duration_unit(&p);
		if (mul == 0 && last == UINT64_MAX && !*p)
			mul = 1000; /* a bare integer is seconds */
		if (mul == 0 || mul >= last)
			return -EINVAL;
		last = mul;
		if (r < 0 || n > UINT64_MAX / mul || n * mul > UINT64_MAX - total)
			range = true;
		else
			total += n * mul;
	} while (*p);
	if (range)
		return -ERANGE;
	*ms = total;
	return 0;
}

static char
cfg_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* "k" / "K" / "kb" / "KiB"...; returns the shift, -EINVAL on a bad suffix. */
static int
cfg_size_suffix(const char *p)
{
	static const char units[] = "kmgtp";
	const char *u = *p ? strchr(units, cfg_lower(*p)) : NULL;
	int shift = 0;

	if (u) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if (cfg_lower(*p) == 'i' && cfg_lower(p[1]) == 'b')
			p += 2;
		else if (cfg_lower(*p) == 'b')
			p++;
	} else if (cfg_lower(*p) == 'b') {
		p++;
	}
	return *p ? -EINVAL : shift;
}

int
cfg_parse_size(const char *s, uint64_t *bytes)
{
	const char *p = s;
	uint64_t n;
	int r, shift;

	if (!s)
		return -EINVAL;
	r = cfg_digits(&p, &n);
	if (r == -EINVAL)
		return r;
	shift = cfg_size_suffix(p);
	if (shift < 0)
		return shift;
	if (r < 0 || n > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = n << shift;
	return 0;
}

static void
cfg_format_duration(uint64_t ms, char *buf, size_t size)
{
	static const struct {
		char name[3];
		uint64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	size_t len = 0;

	snprintf(buf, size, "0s");
	for (size_t i = 0; i < ARRAY_SIZE(units) && len < size; i++) {
		if (ms < units[i].ms)
			continue;
		int k = snprintf(buf + len, size - len, "%" PRIu64 "%s", ms / units[i].ms,
		                 units[i].name);
		if (k < 0)
			return;
		len += (size_t)k;
		ms %= units[i].ms;
	}
}

static void
cfg_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char units[] = "kmgtp";
	int i = -1;

	while (bytes && i < 4 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, size, "%" PRIu64, bytes);
	else
		snprintf(buf, size, "%" PRIu64 "%c", bytes, units[i]);
}

/* ---- YAML events to tree ---- */

struct cfg_builder {
	struct cfg_ctx *ctx;
	const char *text;
	size_t len;
	struct cfg_node *root;
	struct cfg_node *stack[CFG_DEPTH_MAX];
	unsigned depth;
	unsigned docs;
	bool done, fatal;
};

static struct cfg_node *
cfg_node_new(enum cfg_node_kind kind, const yaml_mark_t *m)
{
	struct cfg_node *n = calloc(1, sizeof(*n));

	if (n) {
		n->kind = kind;
		n->line = (unsigned)m->line + 1;
		n->col = (unsigned)m->column + 1;
	}
	return n;
}

static int
cfg_node_add(struct cfg_node *parent, struct cfg_node *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct cfg_node **k = reallocarray(parent->kids, cap, sizeof(*k));
		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

/* Takes kid; it is freed on failure. */
static int
cfg_builder_attach(struct cfg_builder *b, struct cfg_node *kid)
{
	int r = 0;

	if (!kid)
		return -ENOMEM;
	if (b->depth == 0 && !b->root) {
		b->root = kid;
		return 0;
	}
	if (b->depth > 0) {
		r = cfg_node_add(b->stack[b->depth - 1], kid);
	} else {
		/* libyaml sends one root per document; if it ever did not, fail loudly */
		cfg_err(b->ctx, cfg_node_pos(kid),
		        "YAML syntax error: more than one top-level node");
		b->fatal = true;
	}
	if (r < 0 || b->fatal)
		cfg_node_free(kid);
	return r;
}

/* The key path of the element about to be added, from the open collections. After a syntax
 * error (partial) there may be no next element: only a pending key is named then. */
static void
cfg_builder_path(struct cfg_builder *b, bool partial)
{
	for (unsigned i = 0; i < b->depth; i++) {
		const struct cfg_node *m = b->stack[i];
		bool inner = i + 1 == b->depth;
		size_t cur = inner ? m->n : m->n - 1;

		if (m->kind == CFG_NODE_SEQ && !(inner && partial)) {
			cfg_path_push_index(b->ctx, cur);
		} else if (m->kind == CFG_NODE_MAP && cur % 2 == 1) {
			const struct cfg_node *k = m->kids[cur - 1];
			if (k->kind == CFG_NODE_SCALAR)
				cfg_path_push_key(b->ctx, k->text, k->len);
			else
				cfg_path_push_key(b->ctx, "?", 1);
		}
	}
}

static void cfg_builder_err(struct cfg_builder *b, struct cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cfg_builder_err(struct cfg_builder *b, struct cfg_pos pos, const char *fmt, ...)
{
	char msg[CFG_MSG_MAX];
	size_t old = b->ctx->path_len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_builder_path(b, b->fatal); /* fatal: called for a syntax error */
	cfg_err(b->ctx, pos, "%s", msg);
	cfg_path_pop(b->ctx, old);
}

static struct cfg_pos
cfg_mark_pos(const yaml_mark_t *m)
{
	return (struct cfg_pos){(unsigned)m->line + 1, (unsigned)m->column + 1};
}

static void
cfg_builder_anchor(struct cfg_builder *b, const yaml_char_t *anchor, const yaml_mark_t *m)
{
	char q[CFG_QUOTE_BUF];

	if (anchor)
		cfg_builder_err(
		    b, cfg_mark_pos(m), "YAML anchors are not supported (&%s)",
		    cfg_sanitize(q, sizeof(q), (const char *)anchor, strlen((const char *)anchor)));
}

static int
cfg_builder_alias(struct cfg_builder *b, const yaml_event_t *ev)
{
	const char *a = (const char *)ev->data.alias.anchor;
	char q[CFG_QUOTE_BUF];

	cfg_builder_err(b, cfg_mark_pos(&ev->start_mark), "YAML aliases are not supported (*%s)",
	                cfg_sanitize(q, sizeof(q), a ? a : "", a ? strlen(a) : 0));
	return cfg_builder_attach(b, cfg_node_new(CFG_NODE_BAD, &ev->start_mark));
}

static int
cfg_builder_scalar(struct cfg_builder *b, const yaml_event_t *ev)
{
	_cleanup_(cfg_node_freep) struct cfg_node *n = NULL;
	size_t len = ev->data.scalar.length;

	cfg_builder_anchor(b, ev->data.scalar.anchor, &ev->start_mark);
	n = cfg_node_new(CFG_NODE_SCALAR, &ev->start_mark);
	if (!n)
		return -ENOMEM;
	n->text = malloc(len + 1);
	if (!n->text)
		return -ENOMEM;
	if (len > 0)
		memcpy(n->text, ev->data.scalar.value, len);
	n->text[len] = '\0';
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return cfg_builder_attach(b, TAKE_PTR(n));
}

static int
cfg_builder_open(struct cfg_builder *b, const yaml_event_t *ev, enum cfg_node_kind kind,
                 const yaml_char_t *anchor)
{
	struct cfg_node *n;
	int r;

	cfg_builder_anchor(b, anchor, &ev->start_mark);
	if (b->depth == CFG_DEPTH_MAX) {
		cfg_builder_err(b, cfg_mark_pos(&ev->start_mark),
		                "nested too deeply (more than %d levels)", CFG_DEPTH_MAX);
		b->fatal = true;
		return 0;
	}
	n = cfg_node_new(kind, &ev->start_mark);
	r = cfg_builder_attach(b, n);
	if (r < 0)
		return r;
	b->stack[b->depth++] = n;
	return 0;
}

static int
cfg_builder_event(struct cfg_builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->docs++ > 0) {
			cfg_err(b->ctx, cfg_mark_pos(&ev->start_mark),
			        "multiple YAML documents in one file are not supported");
			b->done = true;
		}
		return 0;
	case YAML_STREAM_END_EVENT:
		b->done = true;
		return 0;
	case YAML_ALIAS_EVENT:
		return cfg_builder_alias(b, ev);
	case YAML_SCALAR_EVENT:
		return cfg_builder_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return cfg_builder_open(b, ev, CFG_NODE_SEQ, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return cfg_builder_open(b, ev, CFG_NODE_MAP, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	default:
		return 0;
	}
}

/* Byte offset of a libyaml mark (0-based line, column in characters), counting line breaks as
 * libyaml does: \n, \r\n and a lone \r. */
static size_t
cfg_mark_offset(const char *text, size_t len, size_t line, size_t col)
{
	size_t i = 0;

	for (size_t l = 0; l < line && i < len; i++) {
		if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n')))
			l++;
	}
	for (; i < len && col > 0; i++) {
		if (((unsigned char)text[i] & 0xc0) != 0x80)
			col--;
	}
	while (i < len && ((unsigned char)text[i] & 0xc0) == 0x80)
		i++;
	return i;
}

/* Position of a byte offset, for reader errors (bad encoding) that come without a mark. */
static struct cfg_pos
cfg_offset_pos(const char *text, size_t len, size_t off)
{
	struct cfg_pos pos = {1, 1};

	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			pos.line++;
			pos.col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			pos.col++;
		}
	}
	return pos;
}

static bool
cfg_is_tab_error(const struct cfg_builder *b, const yaml_parser_t *p)
{
	size_t off;

	if (p->problem && strstr(p->problem, "tab"))
		return true;
	off = cfg_mark_offset(b->text, b->len, p->problem_mark.line, p->problem_mark.column);
	return off < b->len && b->text[off] == '\t';
}

static int
cfg_builder_syntax(struct cfg_builder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	struct cfg_pos pos = cfg_mark_pos(&p->problem_mark);

	b->fatal = true;
	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR) {
		/* problem_value: the bad byte or code point, -1 when there is none */
		pos = cfg_offset_pos(b->text, b->len, p->problem_offset);
		if (p->problem_value >= 0)
			cfg_err(b->ctx, pos, "YAML syntax error: %s (0x%02x)", problem,
			        (unsigned)p->problem_value);
		else
			cfg_err(b->ctx, pos, "YAML syntax error: %s", problem);
	} else if (cfg_is_tab_error(b, p)) {
		cfg_builder_err(b, pos,
		                "tab characters are not allowed for indentation (use spaces)");
	} else if (p->context) {
		cfg_builder_err(b, pos, "YAML syntax error: %s (%s at line %zu)", problem,
		                p->context, p->context_mark.line + 1);
	} else {
		cfg_builder_err(b, pos, "YAML syntax error: %s", problem);
	}
	return 0;
}

/* Builds the first document's tree. -EINVAL (errors reported) when it could not be built. */
static int
cfg_tree_parse(struct cfg_ctx *ctx, const char *text, size_t len, struct cfg_node **root)
{
	struct cfg_builder b = {.ctx = ctx, .text = text, .len = len};
	yaml_parser_t p;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (r == 0 && !b.done && !b.fatal) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			r = cfg_builder_syntax(&b, &p);
			break;
		}
		r = cfg_builder_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (r < 0 || b.fatal) {
		cfg_node_free(b.root);
		return r < 0 ? r : -EINVAL;
	}
	*root = b.root;
	return 0;
}

/* ---- tree to values ---- */

static bool
cfg_node_is_null(const struct cfg_node *n)
{
	if (!n)
		return true;
	if (n->kind != CFG_NODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

static const char *
cfg_node_describe(const struct cfg_node *n, char *buf, size_t size)
{
	char q[CFG_QUOTE_BUF];

	if (!n || (n->kind == CFG_NODE_SCALAR && n->len == 0))
		return "an empty value";
	if (n->kind == CFG_NODE_MAP)
		return "a mapping";
	if (n->kind == CFG_NODE_SEQ)
		return "a sequence";
	if (n->kind == CFG_NODE_BAD)
		return "an alias";
	if (cfg_node_is_null(n))
		return "null";
	snprintf(buf, size, "\"%s\"", cfg_sanitize(q, sizeof(q), n->text, n->len));
	return buf;
}

static void
cfg_err_expected(struct cfg_ctx *ctx, const struct cfg_node *n, struct cfg_pos pos,
                 const char *noun)
{
	char what[CFG_QUOTE_BUF + 4];

	cfg_err(ctx, n ? cfg_node_pos(n) : pos, "expected %s, got %s", noun,
	        cfg_node_describe(n, what, sizeof(what)));
}

/* Appends s to buf with a separator, truncating safely. */
static void
cfg_join_add(char *buf, size_t size, size_t *len, const char *s)
{
	int k = snprintf(buf + *len, size - *len, "%s%s", *len ? ", " : "", s);

	if (k > 0)
		*len = *len + (size_t)k < size ? *len + (size_t)k : size - 1;
}

static const char *
cfg_choices_join(const char *const *choices, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices && choices[i]; i++)
		cfg_join_add(buf, size, &len, choices[i]);
	return buf;
}

static size_t
cfg_type_size(enum cfg_type t, const struct cfg_schema *s)
{
	switch (t) {
	case CFG_STRING:
		return sizeof(char *);
	case CFG_INT:
		return sizeof(int64_t);
	case CFG_BOOL:
		return sizeof(bool);
	case CFG_DURATION:
	case CFG_SIZE:
		return sizeof(uint64_t);
	case CFG_ADDR:
		return sizeof(struct net_addr);
	case CFG_CIDR:
		return sizeof(struct net_cidr);
	case CFG_ENUM:
		return sizeof(int);
	case CFG_SECTION:
		return s ? s->size : 0;
	default:
		return 0; /* lists of lists or maps are not supported */
	}
}

static bool
cfg_is_container(enum cfg_type t)
{
	return t == CFG_SECTION || t == CFG_LIST || t == CFG_MAP;
}

/* Limits: both 0 = any int64; max < min (only min set) = no upper bound. */
static void
cfg_int_check(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n, int64_t v,
              int64_t *dst)
{
	bool limited = f->min || f->max, nomax = f->max < f->min;

	if (limited && nomax && v < f->min)
		cfg_err(ctx, cfg_node_pos(n), "must be at least %" PRId64 ", got %" PRId64, f->min,
		        v);
	else if (limited && !nomax && (v < f->min || v > f->max))
		cfg_err(ctx, cfg_node_pos(n),
		        "must be between %" PRId64 " and %" PRId64 ", got %" PRId64, f->min, f->max,
		        v);
	else
		*dst = v;
}

static void
cfg_decode_int(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
               int64_t *dst)
{
	bool autook = f->flags & CFG_F_AUTO;
	char q[CFG_QUOTE_BUF];
	int64_t v;
	int r;

	if (autook && strcmp(n->text, "auto") == 0) {
		*dst = 0;
		return;
	}
	r = cfg_parse_int(n->text, &v);
	if (r == -ERANGE)
		cfg_err(ctx, cfg_node_pos(n), "integer %s is out of range",
		        cfg_sanitize(q, sizeof(q), n->text, n->len));
	else if (r < 0)
		cfg_err_expected(ctx, n, cfg_node_pos(n),
		                 autook ? "an integer or \"auto\"" : "an integer");
	else
		cfg_int_check(ctx, f, n, v, dst);
}

static void
cfg_decode_bool(struct cfg_ctx *ctx, const struct cfg_node *n, bool *dst)
{
	if (cfg_parse_bool(n->text, dst) < 0)
		cfg_err_expected(ctx, n, cfg_node_pos(n), "a boolean (true/false, yes/no, on/off)");
}

/* Durations and sizes: an unsigned amount read with a unit, limited by the field's min/max. */
struct cfg_amount_kind {
	const char *noun;
	const char *hint;
	int (*parse)(const char *s, uint64_t *out);
	void (*format)(uint64_t v, char *buf, size_t size);
};

static void
cfg_decode_amount(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
                  const struct cfg_amount_kind *k, uint64_t *dst)
{
	char q[CFG_QUOTE_BUF], a[64], b[64];
	uint64_t v;
	int r = k->parse(n->text, &v);

	cfg_sanitize(q, sizeof(q), n->text, n->len);
	if (r == -ERANGE) {
		cfg_err(ctx, cfg_node_pos(n), "%s \"%s\" is too large", k->noun, q);
	} else if (r < 0) {
		cfg_err(ctx, cfg_node_pos(n), "bad %s \"%s\" %s", k->noun, q, k->hint);
	} else if ((f->min > 0 && v < (uint64_t)f->min) || (f->max > 0 && v > (uint64_t)f->max)) {
		bool low = f->min > 0 && v < (uint64_t)f->min;
		k->format((uint64_t)(low ? f->min : f->max), a, sizeof(a));
		k->format(v, b, sizeof(b));
		cfg_err(ctx, cfg_node_pos(n), "must be at %s %s, got %s", low ? "least" : "most", a,
		        b);
	} else {
		*dst = v;
	}
}

static const struct cfg_amount_kind cfg_duration_kind = {"duration", cfg_duration_hint,
                                                         cfg_parse_duration, cfg_format_duration};
static const struct cfg_amount_kind cfg_size_kind = {"size", cfg_size_hint, cfg_parse_size,
                                                     cfg_format_size};

static const char *
cfg_addr_hint(unsigned mode)
{
	switch (mode & 3) {
	case NET_PORT_NONE:
		return "(use e.g. 192.0.2.1 or 2001:db8::1, without a port)";
	case NET_PORT_REQUIRED:
		return "(use e.g. 192.0.2.1:80 or [2001:db8::1]:80)";
	default:
		return "(use e.g. 192.0.2.1, 192.0.2.1:80 or [2001:db8::1]:80)";
	}
}

static void
cfg_decode_addr(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
                struct net_addr *dst)
{
	char q[CFG_QUOTE_BUF];
	struct net_addr a;

	if (net_addr_parse(n->text, f->addr_mode, &a) < 0) {
		cfg_err(ctx, cfg_node_pos(n), "bad address \"%s\" %s",
		        cfg_sanitize(q, sizeof(q), n->text, n->len), cfg_addr_hint(f->addr_mode));
		return;
	}
	*dst = a;
}

static void
cfg_decode_cidr(struct cfg_ctx *ctx, const struct cfg_node *n, struct net_cidr *dst)
{
	char q[CFG_QUOTE_BUF];
	struct net_cidr c;

	if (net_cidr_parse(n->text, &c) < 0) {
		cfg_err(ctx, cfg_node_pos(n), "bad CIDR prefix \"%s\" (use e.g. 10.0.0.0/8 or %s)",
		        cfg_sanitize(q, sizeof(q), n->text, n->len), "2001:db8::/32");
		return;
	}
	*dst = c;
}

static void
cfg_decode_enum(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n, int *dst)
{
	char q[CFG_QUOTE_BUF], list[CFG_MSG_MAX / 2];

	for (size_t i = 0; f->choices && f->choices[i]; i++) {
		if (strcmp(n->text, f->choices[i]) == 0) {
			*dst = (int)i;
			return;
		}
	}
	cfg_err(ctx, cfg_node_pos(n), "\"%s\" is not one of: %s",
	        cfg_sanitize(q, sizeof(q), n->text, n->len),
	        cfg_choices_join(f->choices, list, sizeof(list)));
}

static const char *
cfg_scalar_noun(const struct cfg_field *f, enum cfg_type t, char *buf, size_t size)
{
	static const char *const nouns[] = {
	    [CFG_STRING] = "a string",
	    [CFG_INT] = "an integer",
	    [CFG_BOOL] = "a boolean (true/false, yes/no, on/off)",
	    [CFG_DURATION] = "a duration",
	    [CFG_SIZE] = "a size",
	    [CFG_ADDR] = "an address",
	    [CFG_CIDR] = "a CIDR prefix",
	};
	char list[CFG_MSG_MAX / 2];

	if (t == CFG_ENUM) {
		snprintf(buf, size, "one of: %s", cfg_choices_join(f->choices, list, sizeof(list)));
		return buf;
	}
	return (size_t)t < ARRAY_SIZE(nouns) && nouns[t] ? nouns[t] : "a value";
}

/* A value for a scalar type must be a scalar, non-empty unless a string, without NULs. */
static bool
cfg_scalar_usable(struct cfg_ctx *ctx, const struct cfg_field *f, enum cfg_type t,
                  const struct cfg_node *n)
{
	char noun[CFG_MSG_MAX];

	if (!n || n->kind != CFG_NODE_SCALAR || (t != CFG_STRING && n->len == 0)) {
		cfg_err_expected(ctx, n, (struct cfg_pos){0, 0},
		                 cfg_scalar_noun(f, t, noun, sizeof(noun)));
		return false;
	}
	if (strlen(n->text) != n->len) {
		cfg_err(ctx, cfg_node_pos(n), "value contains a NUL character");
		return false;
	}
	return true;
}

static void
cfg_decode_scalar(struct cfg_ctx *ctx, const struct cfg_field *f, enum cfg_type t,
                  const struct cfg_node *n, void *dst)
{
	if (!cfg_scalar_usable(ctx, f, t, n))
		return;
	switch (t) {
	case CFG_STRING:
		*(char **)dst = strdup(n->text);
		ctx->oom |= !*(char **)dst;
		break;
	case CFG_INT:
		cfg_decode_int(ctx, f, n, dst);
		break;
	case CFG_BOOL:
		cfg_decode_bool(ctx, n, dst);
		break;
	case CFG_DURATION:
		cfg_decode_amount(ctx, f, n, &cfg_duration_kind, dst);
		break;
	case CFG_SIZE:
		cfg_decode_amount(ctx, f, n, &cfg_size_kind, dst);
		break;
	case CFG_ADDR:
		cfg_decode_addr(ctx, f, n, dst);
		break;
	case CFG_CIDR:
		cfg_decode_cidr(ctx, n, dst);
		break;
	case CFG_ENUM:
		cfg_decode_enum(ctx, f, n, dst);
		break;
	default:
		cfg_err(ctx, cfg_node_pos(n), "unsupported type in schema");
	}
}

static void cfg_decode_section(struct cfg_ctx *ctx, const struct cfg_schema *s,
                               const struct cfg_node *n, struct cfg_pos pos, void *obj);
static void cfg_decode_list(struct cfg_ctx *ctx, const struct cfg_field *f,
                            const struct cfg_node *n, struct cfg_list *l);
static void cfg_decode_map(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
                           struct cfg_map *m);

/* Decodes n as type t (the field's own type, or its elem for list and map items). */
static void
cfg_decode_value(struct cfg_ctx *ctx, const struct cfg_field *f, enum cfg_type t,
                 const struct cfg_node *n, struct cfg_pos pos, void *dst)
{
	if (n && n->kind == CFG_NODE_BAD)
		return;
	switch (t) {
	case CFG_SECTION:
		if (!f->schema)
			cfg_err(ctx, pos, "schema has no sub-schema for this section");
		else
			cfg_decode_section(ctx, f->schema, n, pos, dst);
		return;
	case CFG_LIST:
		cfg_decode_list(ctx, f, n, dst);
		return;
	case CFG_MAP:
		cfg_decode_map(ctx, f, n, dst);
		return;
	default:
		cfg_decode_scalar(ctx, f, t, n, dst);
	}
}

/* Schema defaults: scalars take the text as written; sections, lists and maps parse it as
 * YAML (e.g. "[80, 443]"). */
static void
cfg_apply_default(struct cfg_ctx *ctx, const struct cfg_field *f, struct cfg_pos pos, void *obj)
{
	void *dst = (char *)obj + f->offset;
	bool was = ctx->in_default;

	if (!f->def) {
		if (f->type == CFG_SECTION)
			cfg_decode_value(ctx, f, f->type, NULL, pos, dst);
		return;
	}
	ctx->in_default = true;
	if (cfg_is_container(f->type)) {
		_cleanup_(cfg_node_freep) struct cfg_node *root = NULL;
		int r = cfg_tree_parse(ctx, f->def, strlen(f->def), &root);
		ctx->oom |= r == -ENOMEM;
		if (r == 0)
			cfg_decode_value(ctx, f, f->type, root, pos, dst);
	} else {
		struct cfg_node n = {.kind = CFG_NODE_SCALAR, .plain = true, .len = strlen(f->def)};
		n.text = (char *)f->def;
		cfg_decode_value(ctx, f, f->type, &n, pos, dst);
	}
	ctx->in_default = was;
}

static bool
cfg_key_ok(struct cfg_ctx *ctx, const struct cfg_node *k)
{
	char what[CFG_QUOTE_BUF + 4];

	if (k->kind == CFG_NODE_BAD)
		return false;
	if (k->kind != CFG_NODE_SCALAR) {
		cfg_err(ctx, cfg_node_pos(k), "expected a key, got %s",
		        cfg_node_describe(k, what, sizeof(what)));
		return false;
	}
	if (k->plain && strcmp(k->text, "<<") == 0) {
		cfg_err(ctx, cfg_node_pos(k), "YAML merge keys are not supported");
		return false;
	}
	if (strlen(k->text) != k->len) {
		cfg_err(ctx, cfg_node_pos(k), "key contains a NUL character");
		return false;
	}
	return true;
}

static size_t
cfg_field_count(const struct cfg_schema *s)
{
	size_t n = 0;

	while (s->fields && s->fields[n].key)
		n++;
	return n;
}

static long
cfg_field_find(const struct cfg_schema *s, const char *key)
{
	for (size_t i = 0; s->fields && s->fields[i].key; i++) {
		if (strcmp(s->fields[i].key, key) == 0)
			return (long)i;
	}
	return -1;
}

static void
cfg_err_unknown(struct cfg_ctx *ctx, const struct cfg_schema *s, const struct cfg_node *k)
{
	char q[CFG_QUOTE_BUF], known[CFG_MSG_MAX / 2];
	size_t len = 0;

	known[0] = '\0';
	for (size_t i = 0; s->fields && s->fields[i].key; i++)
		cfg_join_add(known, sizeof(known), &len, s->fields[i].key);
	cfg_err(ctx, cfg_node_pos(k), "unknown key \"%s\" (known: %s)",
	        cfg_sanitize(q, sizeof(q), k->text, k->len), len ? known : "none");
}

static void
cfg_err_duplicate(struct cfg_ctx *ctx, const struct cfg_node *k, const struct cfg_node *first)
{
	char q[CFG_QUOTE_BUF];

	cfg_err(ctx, cfg_node_pos(k), "duplicate key \"%s\" (first at line %u)",
	        cfg_sanitize(q, sizeof(q), k->text, k->len), first->line);
}

/* Decodes the keys present in m, in document order; seen[i] gets field i's key node. */
static void
cfg_decode_pairs(struct cfg_ctx *ctx, const struct cfg_schema *s, const struct cfg_node *m,
                 void *obj, const struct cfg_node **seen)
{
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const struct cfg_node *k = m->kids[i], *v = m->kids[i + 1];
		long fi;

		if (!cfg_key_ok(ctx, k))
			continue;
		fi = cfg_field_find(s, k->text);
		if (fi < 0) {
			cfg_err_unknown(ctx, s, k);
			continue;
		}
		if (seen[fi]) {
			cfg_err_duplicate(ctx, k, seen[fi]);
			continue;
		}
		seen[fi] = k;
		const struct cfg_field *f = &s->fields[fi];
		size_t old = cfg_path_push_key(ctx, k->text, k->len);
		if (cfg_is_container(f->type) && cfg_node_is_null(v))
			cfg_apply_default(ctx, f, cfg_node_pos(k), obj);
		else
			cfg_decode_value(ctx, f, f->type, v, cfg_node_pos(v),
			                 (char *)obj + f->offset);
		cfg_path_pop(ctx, old);
	}
}

static void
cfg_fill_missing(struct cfg_ctx *ctx, const struct cfg_schema *s, const struct cfg_node **seen,
                 struct cfg_pos pos, void *obj)
{
	for (size_t i = 0; s->fields && s->fields[i].key; i++) {
		const struct cfg_field *f = &s->fields[i];

		if (seen[i])
			continue;
		if (f->flags & CFG_F_REQUIRED) {
			cfg_err(ctx, pos, "missing required key \"%s\"", f->key);
			continue;
		}
		size_t old = cfg_path_push_key(ctx, f->key, strlen(f->key));
		cfg_apply_default(ctx, f, pos, obj);
		cfg_path_pop(ctx, old);
	}
}

static void
cfg_decode_section_body(struct cfg_ctx *ctx, const struct cfg_schema *s, const struct cfg_node *n,
                        struct cfg_pos pos, void *obj)
{
	_cleanup_free_ const struct cfg_node **seen = NULL;

	if (cfg_node_is_null(n)) {
		n = NULL;
	} else if (n->kind != CFG_NODE_MAP) {
		cfg_err_expected(ctx, n, pos, "a mapping");
		return;
	} else {
		pos = cfg_node_pos(n);
	}
	seen = calloc(cfg_field_count(s) + 1, sizeof(*seen));
	if (!seen || ctx->depth >= CFG_DEPTH_MAX) {
		if (seen)
			cfg_err(ctx, pos, "schema nested too deeply");
		ctx->oom |= !seen;
		return;
	}
	ctx->depth++;
	if (n)
		cfg_decode_pairs(ctx, s, n, obj, seen);
	cfg_fill_missing(ctx, s, seen, pos, obj);
	ctx->depth--;
	if (s->check && ctx->own_errs == 0 && !ctx->oom) {
		struct cfg_check chk = {.ctx = ctx, .map = n, .pos = pos};
		s->check(obj, &chk);
	}
}

/* n NULL or null: every field from its default. pos locates errors when n is absent. */
static void
cfg_decode_section(struct cfg_ctx *ctx, const struct cfg_schema *s, const struct cfg_node *n,
                   struct cfg_pos pos, void *obj)
{
	size_t parent_errs = ctx->own_errs;

	ctx->own_errs = 0;
	cfg_decode_section_body(ctx, s, n, pos, obj);
	ctx->own_errs = parent_errs;
}

static void
cfg_decode_list(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
                struct cfg_list *l)
{
	size_t esize = cfg_type_size(f->elem, f->schema);

	if (cfg_node_is_null(n))
		return;
	if (n->kind != CFG_NODE_SEQ) {
		cfg_err_expected(ctx, n, cfg_node_pos(n), "a sequence");
		return;
	}
	if (esize == 0) {
		cfg_err(ctx, cfg_node_pos(n), "unsupported list element type in schema");
		return;
	}
	if (n->n == 0)
		return;
	l->items = calloc(n->n, esize);
	if (!l->items) {
		ctx->oom = true;
		return;
	}
	l->n = n->n;
	for (size_t i = 0; i < n->n; i++) {
		size_t old = cfg_path_push_index(ctx, i);
		cfg_decode_value(ctx, f, f->elem, n->kids[i], cfg_node_pos(n->kids[i]),
		                 (char *)l->items + i * esize);
		cfg_path_pop(ctx, old);
	}
}

struct cfg_keyref {
	const struct cfg_node *key;
	size_t pair;
};

static int
cfg_keyref_cmp(const void *a, const void *b)
{
	const struct cfg_keyref *x = a, *y = b;
	int c = strcmp(x->key->text, y->key->text);

	if (c)
		return c;
	return x->pair < y->pair ? -1 : x->pair > y->pair;
}

/* first[i] = pair index of the first occurrence of pair i's key; sorting keeps big maps from
 * being quadratic. Pairs whose key is not a usable scalar keep first[i] = i. */
static int
cfg_map_first(const struct cfg_node *m, size_t *first)
{
	size_t pairs = m->n / 2, nrefs = 0;
	_cleanup_free_ struct cfg_keyref *refs = calloc(pairs + 1, sizeof(*refs));

	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < pairs; i++) {
		const struct cfg_node *k = m->kids[2 * i];
		first[i] = i;
		if (k->kind == CFG_NODE_SCALAR && strlen(k->text) == k->len)
			refs[nrefs++] = (struct cfg_keyref){k, i};
	}
	qsort(refs, nrefs, sizeof(*refs), cfg_keyref_cmp);
	for (size_t i = 1; i < nrefs; i++) {
		if (strcmp(refs[i].key->text, refs[i - 1].key->text) == 0)
			first[refs[i].pair] = first[refs[i - 1].pair];
	}
	return 0;
}

/* Stores key and value of one map entry; m->n counts entries cfg_free must release. */
static void
cfg_map_entry(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *k,
              const struct cfg_node *v, struct cfg_map *m, size_t esize)
{
	char *key = strdup(k->text);

	if (!key) {
		ctx->oom = true;
		return;
	}
	m->keys[m->n] = key;
	void *dst = (char *)m->values + m->n * esize;
	m->n++;
	size_t old = cfg_path_push_key(ctx, k->text, k->len);
	cfg_decode_value(ctx, f, f->elem, v, cfg_node_pos(v), dst);
	cfg_path_pop(ctx, old);
}

static int
cfg_map_alloc(const struct cfg_node *n, size_t esize, struct cfg_map *m, size_t **first)
{
	size_t pairs = n->n / 2;

	*first = calloc(pairs, sizeof(**first));
	m->keys = calloc(pairs, sizeof(*m->keys));
	m->values = calloc(pairs, esize);
	if (!*first || !m->keys || !m->values)
		return -ENOMEM;
	return cfg_map_first(n, *first);
}

static void
cfg_decode_map(struct cfg_ctx *ctx, const struct cfg_field *f, const struct cfg_node *n,
               struct cfg_map *m)
{
	size_t esize = cfg_type_size(f->elem, f->schema);
	_cleanup_free_ size_t *first = NULL;

	if (cfg_node_is_null(n))
		return;
	if (n->kind != CFG_NODE_MAP) {
		cfg_err_expected(ctx, n, cfg_node_pos(n), "a mapping");
		return;
	}
	if (esize == 0) {
		cfg_err(ctx, cfg_node_pos(n), "unsupported map element type in schema");
		return;
	}
	if (n->n == 0)
		return;
	if (cfg_map_alloc(n, esize, m, &first) < 0) {
		ctx->oom = true;
		return;
	}
	for (size_t i = 0; i < n->n / 2 && !ctx->oom; i++) {
		const struct cfg_node *k = n->kids[2 * i];
		if (!cfg_key_ok(ctx, k))
			continue;
		if (first[i] != i)
			cfg_err_duplicate(ctx, k, n->kids[2 * first[i]]);
		else
			cfg_map_entry(ctx, f, k, n->kids[2 * i + 1], m, esize);
	}
}

bool
cfg_check_present(const struct cfg_check *chk)
{
	return chk->map != NULL;
}

/* Index in m->kids of key's key node (its value follows), or -1. */
static long
cfg_map_find(const struct cfg_node *m, const char *key)
{
	for (size_t i = 0; key && m && m->kind == CFG_NODE_MAP && i + 1 < m->n; i += 2) {
		const struct cfg_node *k = m->kids[i];
		if (k->kind == CFG_NODE_SCALAR && strcmp(k->text, key) == 0)
			return (long)i;
	}
	return -1;
}

static const struct cfg_node *
cfg_map_key(const struct cfg_node *m, const char *key)
{
	long i = cfg_map_find(m, key);
	return i < 0 ? NULL : m->kids[i];
}

static const struct cfg_node *
cfg_map_value(const struct cfg_node *m, const char *key)
{
	long i = cfg_map_find(m, key);
	return i < 0 ? NULL : m->kids[i + 1];
}

/* Item index of the sequence at key, and sub's value in it (or the item itself). */
static const struct cfg_node *
cfg_check_item(const struct cfg_check *chk, const char *key, size_t index, const char *sub)
{
	const struct cfg_node *seq = cfg_map_value(chk->map, key);
	if (!seq || seq->kind != CFG_NODE_SEQ || index >= seq->n)
		return NULL;
	const struct cfg_node *item = seq->kids[index], *v = cfg_map_value(item, sub);
	return v ? v : item;
}

/* index SIZE_MAX: the error is about key itself, not one of its items. */
static void __attribute__((format(printf, 5, 0)))
cfg_check_verror(struct cfg_check *chk, const char *key, size_t index, const char *sub,
                 const char *fmt, va_list ap)
{
	char msg[CFG_MSG_MAX];
	struct cfg_pos pos = chk->pos;
	const struct cfg_node *k = cfg_map_key(chk->map, key), *v = NULL;
	size_t old = chk->ctx->path_len;

	if (index != SIZE_MAX)
		v = cfg_check_item(chk, key, index, sub);
	if (v || k)
		pos = cfg_node_pos(v ? v : k);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (key)
		cfg_path_push_key(chk->ctx, key, strlen(key));
	if (key && index != SIZE_MAX)
		cfg_path_push_index(chk->ctx, index);
	if (key && index != SIZE_MAX && sub)
		cfg_path_push_key(chk->ctx, sub, strlen(sub));
	cfg_err(chk->ctx, pos, "%s", msg);
	cfg_path_pop(chk->ctx, old);
}

void
cfg_check_error(struct cfg_check *chk, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (!chk)
		return;
	va_start(ap, fmt);
	cfg_check_verror(chk, key, SIZE_MAX, NULL, fmt, ap);
	va_end(ap);
}

void
cfg_check_item_error(struct cfg_check *chk, const char *key, size_t index, const char *sub,
                     const char *fmt, ...)
{
	va_list ap;

	if (!chk || !key || index == SIZE_MAX)
		return;
	va_start(ap, fmt);
	cfg_check_verror(chk, key, index, sub, fmt, ap);
	va_end(ap);
}

unsigned
cfg_check_item_line(const struct cfg_check *chk, const char *key, size_t index, const char *sub)
{
	const struct cfg_node *v = chk ? cfg_check_item(chk, key, index, sub) : NULL;
	return v ? v->line : 0;
}

/* ---- freeing ---- */

static void cfg_free_value(const struct cfg_field *f, enum cfg_type t, void *p);

static void
cfg_free_items(const struct cfg_field *f, void *items, size_t n)
{
	size_t esize = cfg_type_size(f->elem, f->schema);

	if (!items || esize == 0 || (f->elem != CFG_STRING && f->elem != CFG_SECTION))
		return;
	for (size_t i = 0; i < n; i++)
		cfg_free_value(f, f->elem, (char *)items + i * esize);
}

static void
cfg_free_value(const struct cfg_field *f, enum cfg_type t, void *p)
{
	if (t == CFG_STRING) {
		free(*(char **)p);
		*(char **)p = NULL;
	} else if (t == CFG_SECTION) {
		cfg_free(f->schema, p);
	} else if (t == CFG_LIST) {
		struct cfg_list *l = p;
		cfg_free_items(f, l->items, l->n);
		free(l->items);
		*l = (struct cfg_list){0};
	} else if (t == CFG_MAP) {
		struct cfg_map *m = p;
		cfg_free_items(f, m->values, m->n);
		for (size_t i = 0; m->keys && i < m->n; i++)
			free(m->keys[i]);
		free(m->keys);
		free(m->values);
		*m = (struct cfg_map){0};
	}
}

void
cfg_free(const struct cfg_schema *schema, void *obj)
{
	if (!schema || !obj)
		return;
	for (size_t i = 0; schema->fields && schema->fields[i].key; i++) {
		const struct cfg_field *f = &schema->fields[i];
		cfg_free_value(f, f->type, (char *)obj + f->offset);
	}
}

/* ---- copying ---- */

static int cfg_copy_value(const struct cfg_field *f, enum cfg_type t, void *dst, const void *src);

static int
cfg_copy_items(const struct cfg_field *f, void **dst, const void *src, size_t n)
{
	size_t esize = cfg_type_size(f->elem, f->schema);
	*dst = NULL;
	if (!src || !n || !esize)
		return 0;
	*dst = calloc(n, esize);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * esize);
	if (f->elem != CFG_STRING && f->elem != CFG_SECTION)
		return 0;
	int r = 0;
	/* on failure the rest must hold no borrowed pointer, or freeing would double-free */
	for (size_t i = 0; i < n; i++) {
		void *d = (char *)*dst + i * esize;
		if (r < 0)
			memset(d, 0, esize);
		else
			r = cfg_copy_value(f, f->elem, d, (const char *)src + i * esize);
	}
	return r;
}

static int
cfg_copy_map_keys(struct cfg_map *d, const struct cfg_map *m)
{
	d->keys = calloc(m->n ? m->n : 1, sizeof(*d->keys));
	if (!d->keys)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++)
		if (!(d->keys[i] = strdup(m->keys[i])))
			return -ENOMEM;
	return 0;
}

static int
cfg_copy_value(const struct cfg_field *f, enum cfg_type t, void *dst, const void *src)
{
	if (t == CFG_STRING) {
		const char *s = *(char *const *)src;
		*(char **)dst = s ? strdup(s) : NULL;
		return !s || *(char **)dst ? 0 : -ENOMEM;
	}
	if (t == CFG_SECTION)
		return cfg_copy(f->schema, dst, src);
	if (t == CFG_LIST) {
		const struct cfg_list *l = src;
		struct cfg_list *d = dst;
		d->n = l->n;
		return cfg_copy_items(f, &d->items, l->items, l->n);
	}
	if (t == CFG_MAP) {
		const struct cfg_map *m = src;
		struct cfg_map *d = dst;
		*d = (struct cfg_map){.n = m->n};
		int r = cfg_copy_items(f, &d->values, m->values, m->n);
		return r < 0 ? r : cfg_copy_map_keys(d, m);
	}
	return 0; /* scalars came with the memcpy of the whole struct or item array */
}

static size_t
cfg_field_size(const struct cfg_field *f)
{
	if (f->type == CFG_LIST)
		return sizeof(struct cfg_list);
	if (f->type == CFG_MAP)
		return sizeof(struct cfg_map);
	return cfg_type_size(f->type, f->schema);
}

int
cfg_copy(const struct cfg_schema *schema, void *dst, const void *src)
{
	int r = 0;
	memcpy(dst, src, schema->size);
	/* every owned member is replaced (or cleared) before a failure can free dst */
	for (size_t i = 0; schema->fields && schema->fields[i].key; i++) {
		const struct cfg_field *f = &schema->fields[i];
		void *d = (char *)dst + f->offset;
		if (r < 0)
			memset(d, 0, cfg_field_size(f));
		else
			r = cfg_copy_value(f, f->type, d, (const char *)src + f->offset);
	}
	if (r < 0)
		cfg_free(schema, dst);
	return r;
}

void
cfg_errors_free(struct cfg_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; errs->v && i < errs->n; i++) {
		free(errs->v[i].file);
		free(errs->v[i].msg);
	}
	free(errs->v);
	*errs = (struct cfg_errors){0};
}

/* ---- loading ---- */

static void
cfg_decode_document(struct cfg_ctx *ctx, const struct cfg_schema *schema, const char *text,
                    size_t len, void *obj)
{
	_cleanup_(cfg_node_freep) struct cfg_node *root = NULL;
	char what[CFG_QUOTE_BUF + 4];
	int r = cfg_tree_parse(ctx, text, len, &root);

	ctx->oom |= r == -ENOMEM;
	if (r < 0 || (root && root->kind == CFG_NODE_BAD))
		return;
	if (!cfg_node_is_null(root) && root->kind != CFG_NODE_MAP) {
		cfg_err(ctx, cfg_node_pos(root), "expected a mapping at the top level, got %s",
		        cfg_node_describe(root, what, sizeof(what)));
		return;
	}
	cfg_decode_section(ctx, schema, root, (struct cfg_pos){1, 1}, obj);
}

/* size: the input's real size when known (UINT64_MAX: more than was read; or
 * CFG_SIZE_NOT_REGULAR). */
static int
cfg_load(const char *name, const char *text, size_t len, uint64_t size,
         const struct cfg_schema *schema, void *out, struct cfg_errors *errs)
{
	struct cfg_ctx ctx = {.name = name ? name : "(config)", .errs = errs};
	_cleanup_free_ void *obj = calloc(1, schema->size ? schema->size : 1);
	int r;

	if (!obj)
		return -ENOMEM;
	if (size == CFG_SIZE_NOT_REGULAR)
		cfg_err(
		    &ctx, (struct cfg_pos){0, 0},
		    "not a regular file (a FIFO or a device is not read: it could block for ever)");
	else if (size == UINT64_MAX)
		cfg_err(&ctx, (struct cfg_pos){1, 1}, "file too large (more than %d bytes)",
		        CFG_FILE_MAX);
	else if (size > CFG_FILE_MAX)
		cfg_err(&ctx, (struct cfg_pos){1, 1},
		        "file too large (%" PRIu64 " bytes, limit %d)", size, CFG_FILE_MAX);
	else
		cfg_decode_document(&ctx, schema, text ? text : "", text ? len : 0, obj);
	r = ctx.oom ? -ENOMEM : cfg_err_total(&ctx) ? -EINVAL : 0;
	if (r < 0) {
		cfg_free(schema, obj);
		if (r == -ENOMEM)
			cfg_errors_free(errs);
		return r;
	}
	memcpy(out, obj, schema->size);
	return 0;
}

/* Wraps cfg_load: errs may be NULL; out is zeroed on failure so it holds nothing to free. */
static int
cfg_load_checked(const char *name, const char *text, size_t len, uint64_t size,
                 const struct cfg_schema *schema, void *out, struct cfg_errors *errs)
{
	struct cfg_errors local = {0};
	int r;

	if (!schema || !out)
		return -EINVAL;
	if (errs)
		*errs = (struct cfg_errors){0};
	r = cfg_load(name, text, len, size, schema, out, errs ? errs : &local);
	cfg_errors_free(&local);
	if (r < 0)
		memset(out, 0, schema->size);
	return r;
}

int
cfg_load_string(const char *name, const char *text, size_t len, const struct cfg_schema *schema,
                void *out, struct cfg_errors *errs)
{
	return cfg_load_checked(name, text, len, len, schema, out, errs);
}

int
cfg_load_defaults(const struct cfg_schema *schema, void *out, struct cfg_errors *errs)
{
	return cfg_load_checked("(defaults)", "", 0, 0, schema, out, errs);
}

/* A file over CFG_FILE_MAX or one that is not a regular file is not read: *size says so, for
 * cfg_load to report. */
static int
cfg_read_file(const char *path, char **text, size_t *len, uint64_t *size)
{
	int r = file_read_path(path, CFG_FILE_MAX, text, len);
	struct stat st;

	if (r == -EINVAL) {
		*size = CFG_SIZE_NOT_REGULAR;
		return 0;
	}
	if (r == -EFBIG) {
		/* the size in the message when stat still says it is too large (it may shrink) */
		bool known = stat(path, &st) == 0 && (uint64_t)st.st_size > CFG_FILE_MAX;
		*size = known ? (uint64_t)st.st_size : UINT64_MAX;
		return 0;
	}
	if (r == 0)
		*size = *len;
	return r;
}

int
cfg_load_file(const char *path, const struct cfg_schema *schema, void *out, struct cfg_errors *errs)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	uint64_t size = 0;
	int r;

	if (errs)
		*errs = (struct cfg_errors){0};
	if (!path || !schema || !out)
		return -EINVAL;
	r = cfg_read_file(path, &text, &len, &size);
	if (r < 0) {
		memset(out, 0, schema->size);
		return r;
	}
	return cfg_load_checked(path, text, len, size, schema, out, errs);
}

static int
cfg_write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

void
cfg_errors_print(const struct cfg_errors *errs, int fd)
{
	char line[CFG_MSG_MAX * 2 + 4096 + 64];

	for (size_t i = 0; errs && i < errs->n; i++) {
		const struct cfg_error *e = &errs->v[i];
		int k = e->line ? snprintf(line, sizeof(line), "%s:%u:%u: %s\n", e->file, e->line,
		                           e->col, e->msg)
		                : snprintf(line, sizeof(line), "%s: %s\n", e->file, e->msg);
		if (k < 0)
			continue;
		if ((size_t)k >= sizeof(line)) {
			k = (int)sizeof(line) - 1;
			line[k - 1] = '\n';
		}
		if (cfg_write_all(fd, line, (size_t)k) < 0)
			return;
	}
	if (errs && errs->dropped && errs->n) {
		int k = snprintf(line, sizeof(line), "%s: %zu more errors not shown\n",
		                 errs->v[0].file, errs->dropped);
		if (k > 0 && (size_t)k < sizeof(line))
			cfg_write_all(fd, line, (size_t)k);
	}
}
