/* Unit tests for src/core/cfg: scalar parsers, schema decoding, error positions and paths. */
#include "core/cfg.h"
#include "core/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/* ---- test schema: every type, nested sections, lists and maps of sections ---- */

struct t_check {
	bool enabled;
	uint64_t interval;
	char *path;
};

struct t_server {
	char *name;
	struct net_addr addr;
	int64_t weight;
	struct t_check check;
};

struct t_listener {
	struct net_addr listen;
	int mode;
	struct cfg_list servers; /* struct t_server */
};

struct t_limits {
	int64_t low, high;
};

struct t_root {
	char *name;
	int64_t port;
	int64_t workers;
	bool verbose;
	uint64_t timeout;
	uint64_t bufsize;
	struct net_addr listen;
	struct net_cidr allow;
	int balance;
	struct t_limits limits;
	struct cfg_list tags;      /* char * */
	struct cfg_list ports;     /* int64_t */
	struct cfg_list nets;      /* struct net_cidr */
	struct cfg_list listeners; /* struct t_listener */
	struct cfg_map weights;    /* int64_t */
	struct cfg_map backends;   /* struct t_server */
	struct cfg_list defports;  /* int64_t, default "[80, 443]" */
};

static const char *const balance_choices[] = {"roundrobin", "random", NULL};
static const char *const mode_choices[] = {"tcp", "http", NULL};

static const struct cfg_field check_fields[] = {
    {.key = "enabled", .type = CFG_BOOL, .offset = offsetof(struct t_check, enabled), .def = "yes"},
    {.key = "interval",
     .type = CFG_DURATION,
     .offset = offsetof(struct t_check, interval),
     .def = "2s",
     .max = 3600000},
    {.key = "path", .type = CFG_STRING, .offset = offsetof(struct t_check, path), .def = "/"},
    {0},
};
static const struct cfg_schema check_schema = {"check", sizeof(struct t_check), check_fields, NULL};

static const struct cfg_field server_fields[] = {
    {.key = "name",
     .type = CFG_STRING,
     .offset = offsetof(struct t_server, name),
     .flags = CFG_F_REQUIRED},
    {.key = "addr",
     .type = CFG_ADDR,
     .offset = offsetof(struct t_server, addr),
     .addr_mode = NET_PORT_OPTIONAL,
     .def = "127.0.0.1"},
    {.key = "weight",
     .type = CFG_INT,
     .offset = offsetof(struct t_server, weight),
     .def = "1",
     .min = 1,
     .max = 100},
    {.key = "check",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_server, check),
     .schema = &check_schema},
    {0},
};
static const struct cfg_schema server_schema = {"server", sizeof(struct t_server), server_fields,
                                                NULL};

static const struct cfg_field listener_fields[] = {
    {.key = "listen",
     .type = CFG_ADDR,
     .offset = offsetof(struct t_listener, listen),
     .addr_mode = NET_PORT_REQUIRED,
     .flags = CFG_F_REQUIRED},
    {.key = "mode",
     .type = CFG_ENUM,
     .offset = offsetof(struct t_listener, mode),
     .choices = mode_choices,
     .def = "tcp"},
    {.key = "servers",
     .type = CFG_LIST,
     .offset = offsetof(struct t_listener, servers),
     .elem = CFG_SECTION,
     .schema = &server_schema},
    {0},
};
static const struct cfg_schema listener_schema = {"listener", sizeof(struct t_listener),
                                                  listener_fields, NULL};

static unsigned limits_checks; /* how often limits_check ran */

static void
limits_check(void *obj, struct cfg_check *chk)
{
	const struct t_limits *l = obj;

	limits_checks++;
	if (l->low > l->high)
		cfg_check_error(chk, "low", "must not be above high (%lld > %lld)",
		                (long long)l->low, (long long)l->high);
}

static const struct cfg_field limits_fields[] = {
    {.key = "low", .type = CFG_INT, .offset = offsetof(struct t_limits, low), .def = "10"},
    {.key = "high", .type = CFG_INT, .offset = offsetof(struct t_limits, high), .def = "20"},
    {0},
};
static const struct cfg_schema limits_schema = {"limits", sizeof(struct t_limits), limits_fields,
                                                limits_check};

static const struct cfg_field root_fields[] = {
    {.key = "name", .type = CFG_STRING, .offset = offsetof(struct t_root, name), .def = "rampart"},
    {.key = "port",
     .type = CFG_INT,
     .offset = offsetof(struct t_root, port),
     .def = "8080",
     .min = 1,
     .max = 65535},
    {.key = "workers",
     .type = CFG_INT,
     .offset = offsetof(struct t_root, workers),
     .flags = CFG_F_AUTO,
     .def = "auto",
     .min = 0,
     .max = 64},
    {.key = "verbose", .type = CFG_BOOL, .offset = offsetof(struct t_root, verbose)},
    {.key = "timeout",
     .type = CFG_DURATION,
     .offset = offsetof(struct t_root, timeout),
     .def = "3s",
     .min = 10,
     .max = 3600000},
    {.key = "bufsize",
     .type = CFG_SIZE,
     .offset = offsetof(struct t_root, bufsize),
     .def = "16k",
     .max = 1 << 20},
    {.key = "listen",
     .type = CFG_ADDR,
     .offset = offsetof(struct t_root, listen),
     .addr_mode = NET_PORT_OPTIONAL,
     .def = "127.0.0.1:8080"},
    {.key = "allow",
     .type = CFG_CIDR,
     .offset = offsetof(struct t_root, allow),
     .def = "10.0.0.0/8"},
    {.key = "balance",
     .type = CFG_ENUM,
     .offset = offsetof(struct t_root, balance),
     .choices = balance_choices,
     .def = "random"},
    {.key = "limits",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_root, limits),
     .schema = &limits_schema},
    {.key = "tags", .type = CFG_LIST, .offset = offsetof(struct t_root, tags), .elem = CFG_STRING},
    {.key = "ports",
     .type = CFG_LIST,
     .offset = offsetof(struct t_root, ports),
     .elem = CFG_INT,
     .min = 1,
     .max = 65535},
    {.key = "nets", .type = CFG_LIST, .offset = offsetof(struct t_root, nets), .elem = CFG_CIDR},
    {.key = "listeners",
     .type = CFG_LIST,
     .offset = offsetof(struct t_root, listeners),
     .elem = CFG_SECTION,
     .schema = &listener_schema},
    {.key = "weights",
     .type = CFG_MAP,
     .offset = offsetof(struct t_root, weights),
     .elem = CFG_INT},
    {.key = "backends",
     .type = CFG_MAP,
     .offset = offsetof(struct t_root, backends),
     .elem = CFG_SECTION,
     .schema = &server_schema},
    {.key = "defports",
     .type = CFG_LIST,
     .offset = offsetof(struct t_root, defports),
     .elem = CFG_INT,
     .def = "[80, 443]"},
    {0},
};
static const struct cfg_schema root_schema = {"root", sizeof(struct t_root), root_fields, NULL};

/* A schema with a required key, for "missing" errors. */
struct t_req {
	char *id;
	struct t_limits limits;
};
static const struct cfg_field req_fields[] = {
    {.key = "id",
     .type = CFG_STRING,
     .offset = offsetof(struct t_req, id),
     .flags = CFG_F_REQUIRED},
    {.key = "limits",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_req, limits),
     .schema = &limits_schema},
    {0},
};
static const struct cfg_schema req_schema = {"req", sizeof(struct t_req), req_fields, NULL};

/* ---- helpers ---- */

static struct t_root root;
static struct cfg_errors errs;

static int
setup(void **state)
{
	memset(&root, 0, sizeof(root));
	memset(&errs, 0, sizeof(errs));
	limits_checks = 0;
	return 0;
}

static int
teardown(void **state)
{
	cfg_free(&root_schema, &root);
	cfg_errors_free(&errs);
	return 0;
}

static void
dump_errors(void)
{
	for (size_t i = 0; i < errs.n; i++)
		print_message("error %zu: %u:%u: %s\n", i, errs.v[i].line, errs.v[i].col,
		              errs.v[i].msg);
}

static int
load(const char *text)
{
	int r = cfg_load_string("t.yaml", text, strlen(text), &root_schema, &root, &errs);

	if (getenv("TEST_CFG_VERBOSE"))
		dump_errors();
	return r;
}

/* Asserts that error i is exactly "line:col: msg". */
static void
expect_error(size_t i, unsigned line, unsigned col, const char *msg)
{
	assert_true(i < errs.n);
	assert_string_equal(errs.v[i].file, "t.yaml");
	assert_string_equal(errs.v[i].msg, msg);
	assert_int_equal(errs.v[i].line, line);
	assert_int_equal(errs.v[i].col, col);
}

/* Loads text, expecting exactly one error at line:col with msg. */
static void
expect_one_error(const char *text, unsigned line, unsigned col, const char *msg)
{
	assert_int_equal(load(text), -EINVAL);
	if (errs.n != 1)
		dump_errors();
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.dropped, 0);
	expect_error(0, line, col, msg);
	cfg_errors_free(&errs);
}

static void
assert_zeroed(const void *p, size_t n)
{
	static const char zero[sizeof(struct t_root)];

	assert_true(n <= sizeof(zero));
	assert_memory_equal(p, zero, n);
}

static bool
addr_is(const struct net_addr *a, const char *text, unsigned mode)
{
	struct net_addr b;

	return net_addr_parse(text, mode, &b) == 0 && net_addr_equal(a, &b);
}

/* ---- scalar parsers ---- */

static void
test_parse_int(void **state)
{
	int64_t v = 7;

	assert_int_equal(cfg_parse_int("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cfg_parse_int("-42", &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(cfg_parse_int("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(cfg_parse_int("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(cfg_parse_int("9223372036854775808", &v), -ERANGE);
	assert_int_equal(cfg_parse_int("-9223372036854775809", &v), -ERANGE);
	assert_int_equal(cfg_parse_int("99999999999999999999999", &v), -ERANGE);
	const char *bad[] = {"", "-", "+1", " 1", "1 ", "0x10", "1.0", "abc", "1e3", "--1", "1-"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(cfg_parse_int(bad[i], &v), -EINVAL);
	assert_true(v == INT64_MIN); /* failures leave the output alone */
	assert_int_equal(cfg_parse_int(NULL, &v), -EINVAL);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
	    {"500ms", 500},   {"3s", 3000},       {"2m", 120000},    {"1h", 3600000},
	    {"1d", 86400000}, {"1h30m", 5400000}, {"90", 90000},     {"0", 0},
	    {"0ms", 0},       {"1m30s", 90000},   {"2s500ms", 2500}, {"1d2h3m4s5ms", 93784005},
	};
	uint64_t ms;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		ms = 1;
		assert_int_equal(cfg_parse_duration(good[i].s, &ms), 0);
		assert_true(ms == good[i].ms);
	}
	const char *bad[] = {"-1s",  "3 parsecs", "1.5s", "",    "s",   "1x", "30m1h", "1h1h",
	                     "1h30", "1S",        " 1s",  "1s ", "1 s", "ms", "1sec",  "+1s"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(cfg_parse_duration(bad[i], &ms), -EINVAL);
	assert_int_equal(cfg_parse_duration("18446744073709551615s", &ms), -ERANGE);
	assert_int_equal(cfg_parse_duration("99999999999999999999", &ms), -ERANGE);
	assert_int_equal(cfg_parse_duration("213503982335d", &ms), -ERANGE);
	assert_int_equal(cfg_parse_duration("18446744073709551615ms", &ms), 0);
	assert_true(ms == UINT64_MAX);
	assert_int_equal(cfg_parse_duration("18446744073709551615ms1", &ms), -EINVAL);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} good[] = {
	    {"512", 512},
	    {"0", 0},
	    {"16k", 16384},
	    {"1m", 1048576},
	    {"2g", 2147483648ULL},
	    {"16K", 16384},
	    {"16kb", 16384},
	    {"16KiB", 16384},
	    {"1MB", 1048576},
	    {"1t", 1ULL << 40},
	    {"1p", 1ULL << 50},
	    {"100b", 100},
	    {"100B", 100},
	    {"3Gib", 3ULL << 30},
	    {"16777215t", 16777215ULL << 40},
	};
	uint64_t b;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		b = 1;
		assert_int_equal(cfg_parse_size(good[i].s, &b), 0);
		assert_true(b == good[i].bytes);
	}
	const char *bad[] = {"16x",  "1.5m", "-1",   "",     "k",   "16kbb", "16ib",
	                     "16 k", " 16k", "16k ", "0x10", "16e", "kb",    "16bi"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(cfg_parse_size(bad[i], &b), -EINVAL);
	assert_int_equal(cfg_parse_size("16777216t", &b), -ERANGE);
	assert_int_equal(cfg_parse_size("17179869184g", &b), -ERANGE);
	assert_int_equal(cfg_parse_size("18446744073709551616", &b), -ERANGE);
	assert_int_equal(cfg_parse_size("18446744073709551615", &b), 0);
	assert_true(b == UINT64_MAX);
}

static void
test_parse_bool(void **state)
{
	const char *yes[] = {"true", "yes", "on", "True", "YES", "On"};
	const char *no[] = {"false", "no", "off", "False", "NO", "oFF"};
	const char *bad[] = {"", "1", "0", "y", "n", "maybe", "truee", " true", "true "};
	bool v;

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		v = false;
		assert_int_equal(cfg_parse_bool(yes[i], &v), 0);
		assert_true(v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		v = true;
		assert_int_equal(cfg_parse_bool(no[i], &v), 0);
		assert_false(v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(cfg_parse_bool(bad[i], &v), -EINVAL);
}

/* ---- decoding good documents ---- */

static const char full_doc[] = "# a complete config\n"
                               "name: edge-1\n"
                               "port: 443\n"
                               "workers: 4\n"
                               "verbose: on\n"
                               "timeout: 45m30s\n"
                               "bufsize: 64KiB\n"
                               "listen: '[2001:db8::1]:8443'\n"
                               "allow: 192.168.1.77/24\n"
                               "balance: roundrobin\n"
                               "limits: {low: 1, high: 2}\n"
                               "tags: [a, \"b c\", '']\n"
                               "ports:\n"
                               "  - 80\n"
                               "  - 443\n"
                               "nets: [10.0.0.0/8, '2001:db8::/32']\n"
                               "listeners:\n"
                               "  - listen: 0.0.0.0:80\n"
                               "    mode: http\n"
                               "    servers:\n"
                               "      - name: web1\n"
                               "        addr: 192.0.2.10:8080\n"
                               "        weight: 5\n"
                               "        check:\n"
                               "          interval: 500ms\n"
                               "          path: /health\n"
                               "      - name: web2\n"
                               "weights:\n"
                               "  alpha: 3\n"
                               "  beta: -1\n"
                               "backends:\n"
                               "  db:\n"
                               "    name: pg\n"
                               "    check: {enabled: false}\n"
                               "  cache:\n"
                               "    name: redis\n"
                               "defports: [1]\n";

static void
test_load_full(void **state)
{
	/* whatever out and errs held before is overwritten, not read or freed */
	memset(&root, 0xa5, sizeof(root));
	memset(&errs, 0xa5, sizeof(errs));
	assert_int_equal(load(full_doc), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(root.name, "edge-1");
	assert_int_equal(root.port, 443);
	assert_int_equal(root.workers, 4);
	assert_true(root.verbose);
	assert_true(root.timeout == 2730000);
	assert_true(root.bufsize == 65536);
	assert_true(addr_is(&root.listen, "[2001:db8::1]:8443", NET_PORT_OPTIONAL));
	assert_int_equal(root.allow.prefix, 24);
	assert_true(addr_is(&root.allow.addr, "192.168.1.0", NET_PORT_NONE));
	assert_int_equal(root.balance, 0);
	assert_int_equal(root.limits.low, 1);
	assert_int_equal(root.limits.high, 2);
	assert_int_equal(limits_checks, 1);

	assert_int_equal(root.tags.n, 3);
	char **tags = root.tags.items;
	assert_string_equal(tags[0], "a");
	assert_string_equal(tags[1], "b c");
	assert_string_equal(tags[2], "");
	assert_int_equal(root.ports.n, 2);
	assert_int_equal(((int64_t *)root.ports.items)[0], 80);
	assert_int_equal(((int64_t *)root.ports.items)[1], 443);
	assert_int_equal(root.nets.n, 2);
	assert_int_equal(((struct net_cidr *)root.nets.items)[1].prefix, 32);
	assert_int_equal(((struct net_cidr *)root.nets.items)[1].addr.family, AF_INET6);
	assert_int_equal(root.defports.n, 1);
}

static void
test_load_full_lists_of_sections(void **state)
{
	assert_int_equal(load(full_doc), 0);
	assert_int_equal(root.listeners.n, 1);
	struct t_listener *l = root.listeners.items;
	assert_true(addr_is(&l->listen, "0.0.0.0:80", NET_PORT_REQUIRED));
	assert_int_equal(l->mode, 1);
	assert_int_equal(l->servers.n, 2);
	struct t_server *s = l->servers.items;
	assert_string_equal(s[0].name, "web1");
	assert_true(addr_is(&s[0].addr, "192.0.2.10:8080", NET_PORT_OPTIONAL));
	assert_int_equal(s[0].weight, 5);
	assert_true(s[0].check.enabled); /* default inside a given section */
	assert_true(s[0].check.interval == 500);
	assert_string_equal(s[0].check.path, "/health");
	/* an element with only its required key: everything else from defaults */
	assert_string_equal(s[1].name, "web2");
	assert_true(addr_is(&s[1].addr, "127.0.0.1", NET_PORT_NONE));
	assert_int_equal(s[1].weight, 1);
	assert_true(s[1].check.enabled);
	assert_true(s[1].check.interval == 2000);
	assert_string_equal(s[1].check.path, "/");
}

static void
test_load_full_maps(void **state)
{
	assert_int_equal(load(full_doc), 0);
	assert_int_equal(root.weights.n, 2);
	assert_string_equal(root.weights.keys[0], "alpha");
	assert_string_equal(root.weights.keys[1], "beta");
	assert_int_equal(((int64_t *)root.weights.values)[0], 3);
	assert_int_equal(((int64_t *)root.weights.values)[1], -1);
	assert_int_equal(root.backends.n, 2);
	struct t_server *b = root.backends.values;
	assert_string_equal(root.backends.keys[0], "db");
	assert_string_equal(b[0].name, "pg");
	assert_false(b[0].check.enabled);
	assert_true(b[0].check.interval == 2000);
	assert_string_equal(root.backends.keys[1], "cache");
	assert_string_equal(b[1].name, "redis");
	assert_int_equal(b[1].weight, 1);
	assert_true(b[1].check.enabled);
	assert_string_equal(b[1].check.path, "/");
}

/* A deep copy owns everything: freeing the original leaves it whole (ASan checks the rest). */
static void
test_copy(void **state)
{
	struct t_root copy;
	assert_int_equal(load(full_doc), 0);
	assert_int_equal(cfg_copy(&root_schema, &copy, &root), 0);
	cfg_free(&root_schema, &root);
	memset(&root, 0, sizeof(root));
	assert_int_equal(copy.weights.n, 2);
	assert_string_equal(copy.weights.keys[1], "beta");
	assert_int_equal(((int64_t *)copy.weights.values)[1], -1);
	struct t_server *b = copy.backends.values;
	assert_string_equal(b[1].name, "redis");
	assert_string_equal(b[1].check.path, "/");
	assert_int_equal(copy.listeners.n, 1);
	struct t_listener *l = copy.listeners.items;
	assert_int_equal(l->servers.n, 2);
	assert_string_equal(((struct t_server *)l->servers.items)[0].check.path, "/health");
	cfg_free(&root_schema, &copy);
}

static void
check_defaults(void)
{
	assert_string_equal(root.name, "rampart");
	assert_int_equal(root.port, 8080);
	assert_int_equal(root.workers, 0); /* "auto" */
	assert_false(root.verbose);
	assert_true(root.timeout == 3000);
	assert_true(root.bufsize == 16384);
	assert_true(addr_is(&root.listen, "127.0.0.1:8080", NET_PORT_REQUIRED));
	assert_int_equal(root.allow.prefix, 8);
	assert_int_equal(root.balance, 1);
	assert_int_equal(root.limits.low, 10);
	assert_int_equal(root.limits.high, 20);
	assert_int_equal(limits_checks, 1); /* checks run on defaulted sections too */
	assert_int_equal(root.tags.n, 0);
	assert_null(root.tags.items);
	assert_int_equal(root.listeners.n, 0);
	assert_int_equal(root.weights.n, 0);
	assert_null(root.weights.keys);
	assert_int_equal(root.defports.n, 2);
	assert_int_equal(((int64_t *)root.defports.items)[0], 80);
	assert_int_equal(((int64_t *)root.defports.items)[1], 443);
}

static void
test_defaults_empty_document(void **state)
{
	assert_int_equal(load(""), 0);
	assert_int_equal(errs.n, 0);
	check_defaults();
}

static void
test_defaults_comments_only(void **state)
{
	assert_int_equal(load("# nothing here\n\n# at all\n"), 0);
	check_defaults();
	cfg_free(&root_schema, &root);
	limits_checks = 0;
	assert_int_equal(load("---\n...\n"), 0);
	check_defaults();
}

static void
test_defaults_load_defaults(void **state)
{
	assert_int_equal(cfg_load_defaults(&root_schema, &root, &errs), 0);
	assert_int_equal(errs.n, 0);
	check_defaults();
}

static void
test_null_section_list_map(void **state)
{
	/* null for a section/list/map = absent: defaults */
	assert_int_equal(load("limits:\ntags: ~\ndefports: null\nbackends:\n"), 0);
	check_defaults();
	cfg_free(&root_schema, &root);
	/* an explicitly empty list is empty, not the default */
	assert_int_equal(load("defports: []\nlimits: {}\n"), 0);
	assert_int_equal(root.defports.n, 0);
	assert_int_equal(root.limits.high, 20);
}

static void
test_string_empty_and_null(void **state)
{
	assert_int_equal(load("name:\n"), 0);
	assert_string_equal(root.name, "");
	cfg_free(&root_schema, &root);
	assert_int_equal(load("name: ''\n"), 0);
	assert_string_equal(root.name, "");
	cfg_free(&root_schema, &root);
	/* strings take their text as written, tags are ignored */
	assert_int_equal(load("name: !!str 123\ntags: [null, ~, 'x: y', true]\n"), 0);
	assert_string_equal(root.name, "123");
	char **t = root.tags.items;
	assert_string_equal(t[0], "null");
	assert_string_equal(t[1], "~");
	assert_string_equal(t[2], "x: y");
	assert_string_equal(t[3], "true");
}

static void
test_int_auto_and_range(void **state)
{
	assert_int_equal(load("workers: 64\nport: 1\n"), 0);
	assert_int_equal(root.workers, 64);
	assert_int_equal(root.port, 1);
	cfg_free(&root_schema, &root);
	expect_one_error("port: 70000\n", 1, 7, "port: must be between 1 and 65535, got 70000");
	expect_one_error("port: 0\n", 1, 7, "port: must be between 1 and 65535, got 0");
	expect_one_error("port: auto\n", 1, 7, "port: expected an integer, got \"auto\"");
	expect_one_error("workers: many\n", 1, 10,
	                 "workers: expected an integer or \"auto\", got \"many\"");
	expect_one_error("port: 99999999999999999999\n", 1, 7,
	                 "port: integer 99999999999999999999 is out of range");
	expect_one_error("port: 80.5\n", 1, 7, "port: expected an integer, got \"80.5\"");
	expect_one_error("port: '+80'\n", 1, 7, "port: expected an integer, got \"+80\"");
	expect_one_error("port:\n", 1, 6, "port: expected an integer, got an empty value");
	expect_one_error("port: null\n", 1, 7, "port: expected an integer, got null");
}

/* ---- errors: types, paths, positions ---- */

static void
test_bad_duration_in_nested_list(void **state)
{
	static const char doc[] = "listeners:\n"
	                          "  - listen: 1.2.3.4:80\n"
	                          "    servers:\n"
	                          "      - name: a\n"
	                          "        check:\n"
	                          "          interval: 3 parsecs\n";

	expect_one_error(doc, 6, 21,
	                 "listeners[0].servers[0].check.interval: bad duration \"3 parsecs\" "
	                 "(use e.g. 500ms, 3s, 2m, 1h)");
}

static void
test_bad_durations(void **state)
{
	expect_one_error("timeout: -1s\n", 1, 10,
	                 "timeout: bad duration \"-1s\" (use e.g. 500ms, 3s, 2m, 1h)");
	expect_one_error("timeout: 1.5s\n", 1, 10,
	                 "timeout: bad duration \"1.5s\" (use e.g. 500ms, 3s, 2m, 1h)");
	expect_one_error("timeout: ''\n", 1, 10,
	                 "timeout: expected a duration, got an empty value");
	expect_one_error("timeout:\n", 1, 9, "timeout: expected a duration, got an empty value");
	expect_one_error("timeout: 99999999999999999999d\n", 1, 10,
	                 "timeout: duration \"99999999999999999999d\" is too large");
	expect_one_error("timeout: 2h\n", 1, 10, "timeout: must be at most 1h, got 2h");
	expect_one_error("timeout: 5ms\n", 1, 10, "timeout: must be at least 10ms, got 5ms");
	expect_one_error("timeout: [1s]\n", 1, 10, "timeout: expected a duration, got a sequence");
}

static void
test_sizes(void **state)
{
	assert_int_equal(load("bufsize: 1M\n"), 0);
	assert_true(root.bufsize == 1048576);
	cfg_free(&root_schema, &root);
	expect_one_error("bufsize: 2m\n", 1, 10, "bufsize: must be at most 1m, got 2m");
	expect_one_error("bufsize: 1.5k\n", 1, 10,
	                 "bufsize: bad size \"1.5k\" (use e.g. 512, 16k, 1m, 2g)");
	expect_one_error("bufsize: 99999999999p\n", 1, 10,
	                 "bufsize: size \"99999999999p\" is too large");
}

static void
test_bools(void **state)
{
	assert_int_equal(load("verbose: yes\n"), 0);
	assert_true(root.verbose);
	cfg_free(&root_schema, &root);
	assert_int_equal(load("verbose: off\n"), 0);
	assert_false(root.verbose);
	cfg_free(&root_schema, &root);
	expect_one_error("verbose: maybe\n", 1, 10,
	                 "verbose: expected a boolean (true/false, yes/no, on/off), got \"maybe\"");
	expect_one_error("verbose: {a: 1}\n", 1, 10,
	                 "verbose: expected a boolean (true/false, yes/no, on/off), got a mapping");
}

static void
test_bad_addresses(void **state)
{
	expect_one_error("listen: 300.1.1.1\n", 1, 9,
	                 "listen: bad address \"300.1.1.1\" (use e.g. 192.0.2.1, 192.0.2.1:80 or "
	                 "[2001:db8::1]:80)");
	expect_one_error("listen: '::1::'\n", 1, 9,
	                 "listen: bad address \"::1::\" (use e.g. 192.0.2.1, 192.0.2.1:80 or "
	                 "[2001:db8::1]:80)");
	/* the listener's address needs a port */
	expect_one_error("listeners:\n- listen: 10.0.0.1\n", 2, 11,
	                 "listeners[0].listen: bad address \"10.0.0.1\" (use e.g. 192.0.2.1:80 or "
	                 "[2001:db8::1]:80)");
	expect_one_error("allow: 1.2.3.4/33\n", 1, 8,
	                 "allow: bad CIDR prefix \"1.2.3.4/33\" (use e.g. 10.0.0.0/8 or "
	                 "2001:db8::/32)");
	expect_one_error("nets: [10.0.0.0/8, 10.0.0.0/08]\n", 1, 20,
	                 "nets[1]: bad CIDR prefix \"10.0.0.0/08\" (use e.g. 10.0.0.0/8 or "
	                 "2001:db8::/32)");
}

static void
test_bad_enum(void **state)
{
	expect_one_error("balance: leastconn\n", 1, 10,
	                 "balance: \"leastconn\" is not one of: roundrobin, random");
	expect_one_error("balance: RANDOM\n", 1, 10,
	                 "balance: \"RANDOM\" is not one of: roundrobin, random");
	expect_one_error("balance: [random]\n", 1, 10,
	                 "balance: expected one of: roundrobin, random, got a sequence");
}

static void
test_unknown_key(void **state)
{
	expect_one_error("name: x\nfoo: 1\n", 2, 1,
	                 "unknown key \"foo\" (known: name, port, workers, verbose, timeout, "
	                 "bufsize, listen, allow, balance, limits, tags, ports, nets, listeners, "
	                 "weights, backends, defports)");
	expect_one_error("limits:\n  low: 1\n  hihg: 2\n", 3, 3,
	                 "limits: unknown key \"hihg\" (known: low, high)");
	/* keys are case-sensitive */
	expect_one_error("limits: {Low: 1}\n", 1, 10,
	                 "limits: unknown key \"Low\" (known: low, high)");
}

static void
test_duplicate_key(void **state)
{
	expect_one_error("port: 1\nname: a\nport: 2\n", 3, 1,
	                 "duplicate key \"port\" (first at line 1)");
	expect_one_error("weights:\n  a: 1\n  b: 2\n  a: 3\n", 4, 3,
	                 "weights: duplicate key \"a\" (first at line 2)");
	/* the first value of a duplicated key is the one decoded */
	assert_int_equal(load("port: 1\nport: 2\n"), -EINVAL);
	assert_int_equal(root.port, 0); /* and out is left zeroed */
}

static void
test_wrong_types(void **state)
{
	expect_one_error("limits: [1, 2]\n", 1, 9, "limits: expected a mapping, got a sequence");
	expect_one_error("limits: 5\n", 1, 9, "limits: expected a mapping, got \"5\"");
	expect_one_error("tags: a, b\n", 1, 7, "tags: expected a sequence, got \"a, b\"");
	expect_one_error("weights: [a]\n", 1, 10, "weights: expected a mapping, got a sequence");
	expect_one_error("name: [a]\n", 1, 7, "name: expected a string, got a sequence");
	expect_one_error("ports: [80, {a: 1}]\n", 1, 13,
	                 "ports[1]: expected an integer, got a mapping");
	expect_one_error("listeners: [5]\n", 1, 13, "listeners[0]: expected a mapping, got \"5\"");
	expect_one_error("- a\n- b\n", 1, 1, "expected a mapping at the top level, got a sequence");
	expect_one_error("just text\n", 1, 1,
	                 "expected a mapping at the top level, got \"just text\"");
	expect_one_error("[a]: 1\n", 1, 1, "expected a key, got a sequence");
	expect_one_error("name: \"a\\0b\"\n", 1, 7, "name: value contains a NUL character");
}

static void
test_tabs(void **state)
{
	expect_one_error("limits:\n\tlow: 1\n", 2, 1,
	                 "limits: tab characters are not allowed for indentation (use spaces)");
	expect_one_error("limits:\n  low: 1\n\thigh: 2\n", 3, 1,
	                 "limits.low: tab characters are not allowed for indentation (use spaces)");
	expect_one_error("\tname: x\n", 1, 1,
	                 "tab characters are not allowed for indentation (use spaces)");
	/* a tab inside a value is fine */
	assert_int_equal(load("name: \"a\\tb\"\ntags: ['\tx']\n"), 0);
	assert_string_equal(root.name, "a\tb");
	assert_string_equal(((char **)root.tags.items)[0], "\tx");
}

static void
test_syntax_errors(void **state)
{
	expect_one_error("tags: [a, b\n", 2, 1,
	                 "tags: YAML syntax error: did not find expected ',' or ']' (while parsing "
	                 "a flow sequence at line 1)");
	expect_one_error("name: a\n  port: 2\n", 2, 7,
	                 "YAML syntax error: mapping values are not allowed in this context");
	expect_one_error(
	    "name: \"abc\n", 2, 1,
	    "name: YAML syntax error: found unexpected end of stream (while scanning a "
	    "quoted scalar at line 1)");
	expect_one_error("name: a\x01\n", 1, 8,
	                 "YAML syntax error: control characters are not allowed (0x01)");
	expect_one_error("port: 1\nname: \xff\n", 2, 7,
	                 "YAML syntax error: invalid leading UTF-8 octet (0xff)");
}

static void
test_aliases(void **state)
{
	assert_int_equal(load("name: &n x\ntags: [*n]\n"), -EINVAL);
	assert_int_equal(errs.n, 2);
	expect_error(0, 1, 7, "name: YAML anchors are not supported (&n)");
	expect_error(1, 2, 8, "tags[0]: YAML aliases are not supported (*n)");
	cfg_errors_free(&errs);
	assert_int_equal(load("limits: &l {low: 1}\nbackends:\n  x:\n    <<: *l\n"), -EINVAL);
	assert_int_equal(errs.n, 4);
	expect_error(0, 1, 9, "limits: YAML anchors are not supported (&l)");
	expect_error(1, 4, 9, "backends.x.<<: YAML aliases are not supported (*l)");
	expect_error(2, 4, 5, "backends.x: YAML merge keys are not supported");
	expect_error(3, 4, 5, "backends.x: missing required key \"name\"");
}

static void
test_alias_bomb(void **state)
{
	char doc[4096];
	size_t len = 0;

	len += (size_t)snprintf(doc + len, sizeof(doc) - len, "a0: &a0 [x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 10; i++)
		len += (size_t)snprintf(doc + len, sizeof(doc) - len,
		                        "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
		                        i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	assert_true(len < sizeof(doc));
	assert_int_equal(load(doc), -EINVAL);
	/* 10 anchors, 63 aliases, 10 unknown keys: all reported, nothing expanded */
	assert_int_equal(errs.n + errs.dropped, 83);
	assert_int_equal(errs.n, CFG_ERRORS_MAX < 83 ? CFG_ERRORS_MAX : 83);
}

static void
test_deep_nesting(void **state)
{
	char doc[256], msg[256];
	size_t len = 0, mlen = 0;

	len += (size_t)snprintf(doc + len, sizeof(doc) - len, "tags: ");
	for (int i = 0; i < 40; i++)
		doc[len++] = '[';
	doc[len] = '\0';
	/* the root mapping is level 1, so the 32nd '[' (col 38) opens level 33 */
	mlen += (size_t)snprintf(msg, sizeof(msg), "tags");
	for (int i = 0; i < 31; i++)
		mlen += (size_t)snprintf(msg + mlen, sizeof(msg) - mlen, "[0]");
	snprintf(msg + mlen, sizeof(msg) - mlen, ": nested too deeply (more than 32 levels)");
	expect_one_error(doc, 1, 38, msg);
	/* 32 levels are fine (and a wrong type here) */
	len = (size_t)snprintf(doc, sizeof(doc), "tags: ");
	for (int i = 0; i < 31; i++)
		doc[len++] = '[';
	for (int i = 0; i < 31; i++)
		doc[len++] = ']';
	doc[len] = '\0';
	expect_one_error(doc, 1, 8, "tags[0]: expected a string, got a sequence");
}

static void
test_multiple_documents(void **state)
{
	expect_one_error("port: 1\n---\nport: 2\n", 2, 1,
	                 "multiple YAML documents in one file are not supported");
	/* errors in the first document are still all reported */
	assert_int_equal(load("port: x\n---\nport: 2\n"), -EINVAL);
	assert_int_equal(errs.n, 2);
	expect_error(0, 2, 1, "multiple YAML documents in one file are not supported");
	expect_error(1, 1, 7, "port: expected an integer, got \"x\"");
}

static void
test_multiple_errors(void **state)
{
	static const char doc[] = "port: 0\n"
	                          "timeout: 3 parsecs\n"
	                          "foo: bar\n"
	                          "listeners:\n"
	                          "  - mode: udp\n"
	                          "    servers:\n"
	                          "      - weight: 200\n"
	                          "  - listen: 1.2.3.4:80\n"
	                          "    listen: 1.2.3.4:81\n"
	                          "limits: {low: 5, high: 1}\n"
	                          "weights: {a: x}\n";

	assert_int_equal(load(doc), -EINVAL);
	assert_int_equal(errs.n, 10);
	assert_int_equal(errs.dropped, 0);
	expect_error(0, 1, 7, "port: must be between 1 and 65535, got 0");
	expect_error(1, 2, 10, "timeout: bad duration \"3 parsecs\" (use e.g. 500ms, 3s, 2m, 1h)");
	expect_error(2, 3, 1,
	             "unknown key \"foo\" (known: name, port, workers, verbose, timeout, "
	             "bufsize, listen, allow, balance, limits, tags, ports, nets, "
	             "listeners, weights, backends, defports)");
	expect_error(3, 5, 11, "listeners[0].mode: \"udp\" is not one of: tcp, http");
	expect_error(4, 7, 17,
	             "listeners[0].servers[0].weight: must be between 1 and 100, got 200");
	expect_error(5, 7, 9, "listeners[0].servers[0]: missing required key \"name\"");
	expect_error(6, 5, 5, "listeners[0]: missing required key \"listen\"");
	expect_error(7, 9, 5, "listeners[1]: duplicate key \"listen\" (first at line 8)");
	/* limits had no errors of its own, so its check ran */
	expect_error(8, 10, 10, "limits.low: must not be above high (5 > 1)");
	expect_error(9, 11, 14, "weights.a: expected an integer, got \"x\"");
	assert_int_equal(limits_checks, 1);
	assert_zeroed(&root, sizeof(root));
}

static void
test_error_cap(void **state)
{
	char *doc = malloc(200 * 16);
	size_t len = 0;

	assert_non_null(doc);
	len += (size_t)snprintf(doc, 16, "ports:\n");
	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(doc + len, 200 * 16 - len, "- x%d\n", i);
	assert_int_equal(cfg_load_string("t.yaml", doc, len, &root_schema, &root, &errs), -EINVAL);
	free(doc);
	assert_int_equal(errs.n, CFG_ERRORS_MAX);
	assert_int_equal(errs.dropped, 150 - CFG_ERRORS_MAX);
	expect_error(99, 101, 3, "ports[99]: expected an integer, got \"x99\"");
}

/* ---- required keys and check callbacks ---- */

static void
test_required_missing(void **state)
{
	struct t_req req;

	memset(&req, 0x5a, sizeof(req));
	assert_int_equal(cfg_load_string("t.yaml", "", 0, &req_schema, &req, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	expect_error(0, 1, 1, "missing required key \"id\"");
	cfg_errors_free(&errs);
	assert_int_equal(cfg_load_defaults(&req_schema, &req, &errs), -EINVAL);
	assert_string_equal(errs.v[0].file, "(defaults)");
	cfg_errors_free(&errs);
	static const char doc[] = "# comment\n\n  limits: {low: 1}\n";
	assert_int_equal(cfg_load_string("t.yaml", doc, strlen(doc), &req_schema, &req, &errs),
	                 -EINVAL);
	assert_int_equal(errs.n, 1);
	expect_error(0, 3, 3, "missing required key \"id\"");
	assert_zeroed(&req, sizeof(req));
	cfg_errors_free(&errs);
	assert_int_equal(cfg_load_string("t.yaml", "id: x", 5, &req_schema, &req, &errs), 0);
	assert_string_equal(req.id, "x");
	cfg_free(&req_schema, &req);
	assert_null(req.id);
}

static void
test_check_callback(void **state)
{
	expect_one_error("name: x\nlimits:\n  high: 1\n  low: 5\n", 4, 3,
	                 "limits.low: must not be above high (5 > 1)");
	/* key absent from the mapping: reported at the mapping */
	expect_one_error("limits:\n  high: 1\n", 2, 3,
	                 "limits.low: must not be above high (10 > 1)");
	/* a default that fails a check has no position in the file */
	struct t_req req;
	static const struct cfg_field f[] = {
	    {.key = "limits",
	     .type = CFG_SECTION,
	     .offset = 0,
	     .schema = &limits_schema,
	     .def = "{low: 30}"},
	    {0},
	};
	static const struct cfg_schema s = {"x", sizeof(struct t_limits), f, NULL};
	assert_int_equal(cfg_load_string("t.yaml", "\n\n", 2, &s, &req, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].msg,
	                    "limits.low: bad built-in default: must not be above high (30 > 20)");
	assert_int_equal(errs.v[0].line, 0);
}

static const struct cfg_field inverted_fields[] = {
    {.key = "low", .type = CFG_INT, .offset = offsetof(struct t_limits, low), .def = "30"},
    {.key = "high", .type = CFG_INT, .offset = offsetof(struct t_limits, high), .def = "20"},
    {0},
};
static const struct cfg_schema inverted_schema = {"inverted", sizeof(struct t_limits),
                                                  inverted_fields, limits_check};

static void
test_check_on_absent_section(void **state)
{
	static const struct cfg_field f[] = {
	    {.key = "id", .type = CFG_STRING, .offset = offsetof(struct t_req, id)},
	    {.key = "limits",
	     .type = CFG_SECTION,
	     .offset = offsetof(struct t_req, limits),
	     .schema = &inverted_schema},
	    {0},
	};
	static const struct cfg_schema s = {"x", sizeof(struct t_req), f, NULL};
	static const char doc[] = "\n  id: x\n";
	struct t_req req;

	/* the section is not in the file: the error goes to the enclosing mapping */
	assert_int_equal(cfg_load_string("t.yaml", doc, strlen(doc), &s, &req, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	expect_error(0, 2, 3, "limits.low: must not be above high (30 > 20)");
	cfg_errors_free(&errs);
	/* a null section is all defaults too: reported at its key */
	static const char doc2[] = "id: x\nlimits: ~\n";
	assert_int_equal(cfg_load_string("t.yaml", doc2, strlen(doc2), &s, &req, &errs), -EINVAL);
	expect_error(0, 2, 1, "limits.low: must not be above high (30 > 20)");
}

struct t_pair {
	int64_t n;
	char *label;
};

static void
pair_check(void *obj, struct cfg_check *chk)
{
	const struct t_pair *p = obj;

	if (p->label && strcmp(p->label, "bad") == 0)
		cfg_check_error(chk, NULL, "label and n=%lld do not fit", (long long)p->n);
}

static void
test_check_whole_mapping_and_min_only(void **state)
{
	static const struct cfg_field pf[] = {
	    /* only a lower limit: no upper bound */
	    {.key = "n", .type = CFG_INT, .offset = offsetof(struct t_pair, n), .min = 1},
	    {.key = "label", .type = CFG_STRING, .offset = offsetof(struct t_pair, label)},
	    {0},
	};
	static const struct cfg_schema ps = {"pair", sizeof(struct t_pair), pf, pair_check};
	static const struct cfg_field f[] = {
	    {.key = "pairs", .type = CFG_LIST, .elem = CFG_SECTION, .schema = &ps},
	    {0},
	};
	static const struct cfg_schema s = {"x", sizeof(struct cfg_list), f, NULL};
	static const char doc[] = "pairs:\n"
	                          "  - n: 9223372036854775807\n"
	                          "  - {n: 0}\n"
	                          "  - label: bad\n"
	                          "    n: 5\n";
	struct cfg_list l;

	assert_int_equal(cfg_load_string("t.yaml", doc, strlen(doc), &s, &l, &errs), -EINVAL);
	assert_int_equal(errs.n, 2);
	expect_error(0, 3, 9, "pairs[1].n: must be at least 1, got 0");
	/* no key named: the error is at the mapping, under the mapping's path */
	expect_error(1, 4, 5, "pairs[2]: label and n=5 do not fit");
	cfg_errors_free(&errs);
	static const char good[] = "pairs: [{n: 9223372036854775807}, {label: ok}]";
	assert_int_equal(cfg_load_string("t.yaml", good, strlen(good), &s, &l, &errs), 0);
	assert_int_equal(l.n, 2);
	assert_true(((struct t_pair *)l.items)[0].n == INT64_MAX);
	cfg_free(&s, &l);
}

static void
test_check_skipped_on_errors(void **state)
{
	limits_checks = 0;
	expect_one_error("limits: {low: 50, high: x}\n", 1, 25,
	                 "limits.high: expected an integer, got \"x\"");
	assert_int_equal(limits_checks, 0);
}

/* ---- size limits and files ---- */

static void
test_too_large_in_memory(void **state)
{
	size_t len = 10 * 1024 * 1024;
	char *big = malloc(len);

	assert_non_null(big);
	for (size_t i = 0; i < len; i += 16)
		memcpy(big + i, "name: xxxxxxxxx\n", 16);
	assert_int_equal(cfg_load_string("t.yaml", big, len, &root_schema, &root, &errs), -EINVAL);
	free(big);
	assert_int_equal(errs.n, 1);
	expect_error(0, 1, 1, "file too large (10485760 bytes, limit 1048576)");
	assert_zeroed(&root, sizeof(root));
	cfg_errors_free(&errs);
	/* one byte over the limit is too large; exactly the limit is parsed */
	big = malloc(CFG_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, '#', CFG_FILE_MAX + 1);
	assert_int_equal(
	    cfg_load_string("t.yaml", big, CFG_FILE_MAX + 1, &root_schema, &root, &errs), -EINVAL);
	expect_error(0, 1, 1, "file too large (1048577 bytes, limit 1048576)");
	cfg_errors_free(&errs);
	assert_int_equal(cfg_load_string("t.yaml", big, CFG_FILE_MAX, &root_schema, &root, &errs),
	                 0);
	free(big);
}

static int
write_temp(char *path, size_t size, const char *data, size_t len, size_t repeat)
{
	snprintf(path, size, "/tmp/test-cfg-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < repeat; i++) {
		if (write(fd, data, len) != (ssize_t)len) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

static void
test_load_file(void **state)
{
	char path[64], msg[128];

	assert_int_equal(write_temp(path, sizeof(path), full_doc, strlen(full_doc), 1), 0);
	assert_int_equal(cfg_load_file(path, &root_schema, &root, &errs), 0);
	assert_string_equal(root.name, "edge-1");
	cfg_free(&root_schema, &root);
	unlink(path);

	assert_int_equal(write_temp(path, sizeof(path), "port: x\n", 8, 1), 0);
	assert_int_equal(cfg_load_file(path, &root_schema, &root, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].file, path);
	assert_int_equal(errs.v[0].line, 1);
	assert_int_equal(errs.v[0].col, 7);
	unlink(path);
	cfg_errors_free(&errs);

	/* 10 MB file: one error, sized from the file without reading it */
	char *chunk = malloc(65536);
	assert_non_null(chunk);
	for (size_t i = 0; i < 65536; i += 16)
		memcpy(chunk + i, "name: xxxxxxxxx\n", 16);
	int r = write_temp(path, sizeof(path), chunk, 65536, 160);
	free(chunk);
	assert_int_equal(r, 0);
	assert_int_equal(cfg_load_file(path, &root_schema, &root, &errs), -EINVAL);
	unlink(path);
	assert_int_equal(errs.n, 1);
	snprintf(msg, sizeof(msg), "file too large (10485760 bytes, limit 1048576)");
	assert_string_equal(errs.v[0].msg, msg);
	assert_int_equal(errs.v[0].line, 1);
	assert_int_equal(errs.v[0].col, 1);
}

static const char not_regular[] =
    "not a regular file (a FIFO or a device is not read: it could block for ever)";

static void
test_load_file_unbounded(void **state)
{
	/* an endless character device is not read at all */
	assert_int_equal(cfg_load_file("/dev/zero", &root_schema, &root, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].msg, not_regular);
	assert_int_equal(errs.v[0].line, 0);
}

static void
test_load_file_fifo(void **state)
{
	char dir[] = "/tmp/test-cfg-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* no writer: a blocking open would wait for ever */
	assert_int_equal(cfg_load_file(path, &root_schema, &root, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].file, path);
	assert_string_equal(errs.v[0].msg, not_regular);
	assert_zeroed(&root, sizeof(root));
	unlink(path);
	rmdir(dir);
}

/* ---- checks across list items ---- */

struct t_pool {
	struct cfg_list servers; /* struct t_server */
};

static void
pool_check(void *obj, struct cfg_check *chk)
{
	const struct t_pool *p = obj;
	const struct t_server *s = p->servers.items;
	for (size_t i = 0; i < p->servers.n; i++)
		for (size_t j = 0; j < i; j++)
			if (s[i].name && s[j].name && !strcmp(s[i].name, s[j].name)) {
				cfg_check_item_error(
				    chk, "servers", i, "name",
				    "'%s' is used twice (first at line %u)", s[i].name,
				    cfg_check_item_line(chk, "servers", j, "name"));
				break;
			}
	if (p->servers.n > 3)
		/* sub absent in the item: the item itself */
		cfg_check_item_error(chk, "servers", 3, "weight", "one too many");
}

static const struct cfg_field pool_fields[] = {
    {.key = "servers",
     .type = CFG_LIST,
     .offset = offsetof(struct t_pool, servers),
     .elem = CFG_SECTION,
     .schema = &server_schema},
    {0},
};
static const struct cfg_schema pool_schema = {"pool", sizeof(struct t_pool), pool_fields,
                                              pool_check};

static int
load_pool(const char *text, struct t_pool *p)
{
	int r = cfg_load_string("t.yaml", text, strlen(text), &pool_schema, p, &errs);
	if (getenv("TEST_CFG_VERBOSE"))
		dump_errors();
	return r;
}

static void
test_check_runs_beside_item_errors(void **state)
{
	/* errors inside the items no longer hide the duplicate: all in one run, each at its
	 * own value */
	static const char doc[] = "servers:\n"
	                          "  - name: a\n"
	                          "    weight: x\n"
	                          "  - name: a\n"
	                          "  - {name: b, weight: 500}\n"
	                          "  - {name: b}\n";
	struct t_pool p;
	assert_int_equal(load_pool(doc, &p), -EINVAL);
	assert_int_equal(errs.n, 5);
	expect_error(0, 3, 13, "servers[0].weight: expected an integer, got \"x\"");
	expect_error(1, 5, 23, "servers[2].weight: must be between 1 and 100, got 500");
	expect_error(2, 4, 11, "servers[1].name: 'a' is used twice (first at line 2)");
	expect_error(3, 6, 12, "servers[3].name: 'b' is used twice (first at line 5)");
	/* sub absent in the item: at the item */
	expect_error(4, 6, 5, "servers[3].weight: one too many");
	cfg_errors_free(&errs);
	static const char doc2[] = "servers: [{name: a}, {name: b}, {name: c},\n  {name: d}]\n";
	assert_int_equal(load_pool(doc2, &p), -EINVAL);
	assert_int_equal(errs.n, 1);
	expect_error(0, 2, 3, "servers[3].weight: one too many");
}

static void
test_check_skipped_on_own_errors(void **state)
{
	/* a mapping whose own field failed: its check would read a value that is not there */
	struct t_pool p;
	assert_int_equal(load_pool("servers: x\n", &p), -EINVAL);
	assert_int_equal(errs.n, 1);
	expect_error(0, 1, 10, "servers: expected a sequence, got \"x\"");
}

static void
test_load_file_errors(void **state)
{
	assert_int_equal(cfg_load_file("/nonexistent/rampart.yaml", &root_schema, &root, &errs),
	                 -ENOENT);
	assert_int_equal(errs.n, 0);
	assert_null(errs.v);
	assert_zeroed(&root, sizeof(root));
	assert_int_equal(cfg_load_file("/tmp", &root_schema, &root, &errs), -EISDIR);
	assert_int_equal(errs.n, 0);
}

/* ---- output, ownership ---- */

static void
test_errors_print(void **state)
{
	char path[64], out[1024] = "";

	assert_int_equal(load("port: 0\nfoo: 1\n"), -EINVAL);
	assert_int_equal(write_temp(path, sizeof(path), "", 0, 0), 0);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	unlink(path);
	cfg_errors_print(&errs, fd);
	struct cfg_errors e = {1, 3, &(struct cfg_error){"d.yaml", 0, 0, "no position"}};
	cfg_errors_print(&e, fd);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_true(read(fd, out, sizeof(out) - 1) > 0);
	close(fd);
	assert_string_equal(out, "t.yaml:1:7: port: must be between 1 and 65535, got 0\n"
	                         "t.yaml:2:1: unknown key \"foo\" (known: name, port, workers, "
	                         "verbose, timeout, bufsize, listen, allow, balance, limits, tags, "
	                         "ports, nets, listeners, weights, backends, defports)\n"
	                         "d.yaml: no position\n"
	                         "d.yaml: 3 more errors not shown\n");
}

static void
test_free_and_reuse(void **state)
{
	assert_int_equal(load(full_doc), 0);
	cfg_free(&root_schema, &root);
	assert_null(root.name);
	assert_int_equal(root.listeners.n, 0);
	assert_null(root.listeners.items);
	assert_null(root.backends.keys);
	cfg_free(&root_schema, &root); /* twice is harmless */
	cfg_free(&root_schema, NULL);
	cfg_free(NULL, &root);
	cfg_errors_free(NULL);
	/* errs may be NULL: the result alone says it failed */
	assert_int_equal(cfg_load_string("t", "port: x", 7, &root_schema, &root, NULL), -EINVAL);
	assert_int_equal(cfg_load_string("t", "port: 9", 7, &root_schema, &root, NULL), 0);
	assert_int_equal(root.port, 9);
}

static void
test_bad_builtin_default(void **state)
{
	struct t_bad {
		uint64_t d;
		struct cfg_list l;
	} v;
	static const struct cfg_field f[] = {
	    {.key = "d", .type = CFG_DURATION, .offset = offsetof(struct t_bad, d), .def = "soon"},
	    {.key = "l",
	     .type = CFG_LIST,
	     .offset = offsetof(struct t_bad, l),
	     .elem = CFG_INT,
	     .def = "[1, x"},
	    {0},
	};
	static const struct cfg_schema s = {"bad", sizeof(v), f, NULL};

	assert_int_equal(cfg_load_string("t.yaml", "", 0, &s, &v, &errs), -EINVAL);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.v[0].msg, "d: bad built-in default: bad duration \"soon\" "
	                                   "(use e.g. 500ms, 3s, 2m, 1h)");
	assert_int_equal(errs.v[0].line, 0);
	assert_int_equal(strncmp(errs.v[1].msg, "l: ", 3), 0);
	assert_non_null(strstr(errs.v[1].msg, ": bad built-in default: YAML syntax error: "));
	assert_int_equal(errs.v[1].line, 0);
	/* a file value replaces the broken default and is fine */
	cfg_errors_free(&errs);
	assert_int_equal(cfg_load_string("t.yaml", "d: 1s\nl: [7]", 12, &s, &v, &errs), 0);
	assert_true(v.d == 1000);
	assert_int_equal(v.l.n, 1);
	cfg_free(&s, &v);
}

struct t_rec {
	struct cfg_list kids; /* struct t_rec */
};
static const struct cfg_schema rec_schema;
static const struct cfg_field rec_fields[] = {
    /* a schema bug: every default element has a default element of its own */
    {.key = "kids",
     .type = CFG_LIST,
     .offset = offsetof(struct t_rec, kids),
     .elem = CFG_SECTION,
     .schema = &rec_schema,
     .def = "[{}]"},
    {0},
};
static const struct cfg_schema rec_schema = {"rec", sizeof(struct t_rec), rec_fields, NULL};

static void
test_recursive_schema_ends(void **state)
{
	struct t_rec r;

	assert_int_equal(cfg_load_string("t.yaml", "kids: []", 8, &rec_schema, &r, &errs), 0);
	assert_int_equal(r.kids.n, 0);
	assert_int_equal(cfg_load_string("t.yaml", "", 0, &rec_schema, &r, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.v[0].msg, "schema nested too deeply"));
	assert_int_equal(strncmp(errs.v[0].msg, "kids[0].kids[0].kids[0]", 23), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_parse_int),
	    T(test_parse_duration),
	    T(test_parse_size),
	    T(test_parse_bool),
	    T(test_load_full),
	    T(test_load_full_lists_of_sections),
	    T(test_load_full_maps),
	    T(test_copy),
	    T(test_defaults_empty_document),
	    T(test_defaults_comments_only),
	    T(test_defaults_load_defaults),
	    T(test_null_section_list_map),
	    T(test_string_empty_and_null),
	    T(test_int_auto_and_range),
	    T(test_bad_duration_in_nested_list),
	    T(test_bad_durations),
	    T(test_sizes),
	    T(test_bools),
	    T(test_bad_addresses),
	    T(test_bad_enum),
	    T(test_unknown_key),
	    T(test_duplicate_key),
	    T(test_wrong_types),
	    T(test_tabs),
	    T(test_syntax_errors),
	    T(test_aliases),
	    T(test_alias_bomb),
	    T(test_deep_nesting),
	    T(test_multiple_documents),
	    T(test_multiple_errors),
	    T(test_error_cap),
	    T(test_required_missing),
	    T(test_check_callback),
	    T(test_check_on_absent_section),
	    T(test_check_whole_mapping_and_min_only),
	    T(test_check_skipped_on_errors),
	    T(test_too_large_in_memory),
	    T(test_load_file),
	    T(test_load_file_unbounded),
	    T(test_load_file_fifo),
	    T(test_check_runs_beside_item_errors),
	    T(test_check_skipped_on_own_errors),
	    T(test_load_file_errors),
	    T(test_errors_print),
	    T(test_free_and_reuse),
	    T(test_bad_builtin_default),
	    T(test_recursive_schema_ends),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
