/*
 * Fuzz target for src/core/cfg: decodes the input against a schema that uses every type
 * (nested sections with a check, lists and maps of scalars and of sections), prints the errors
 * and frees everything, so leaks and bad frees on any error path show up under ASan. The first
 * line of the input is also fed to the scalar parsers.
 */
#include "core/cfg.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_check {
	bool on;
	uint64_t every;
	char *path;
};

struct fuzz_item {
	char *name;
	struct net_addr addr;
	int64_t weight;
	struct fuzz_check check;
	struct cfg_list tags;
};

struct fuzz_root {
	char *s;
	int64_t i, a;
	bool b;
	uint64_t d, z;
	struct net_addr addr;
	struct net_cidr cidr;
	int e;
	struct fuzz_check sec;
	struct cfg_list strs, ints, bools, durs, sizes, addrs, cidrs, enums, items;
	struct cfg_map m, ms;
};

static const char *const fuzz_choices[] = {"roundrobin", "random", "leastconn", NULL};

static void
fuzz_check_cb(void *obj, struct cfg_check *chk)
{
	const struct fuzz_check *c = obj;

	if (c->on && c->every == 0)
		cfg_check_error(chk, "every", "must be set when on");
	if (c->path && c->path[0] == '!')
		cfg_check_error(chk, NULL, "path %s is reserved", c->path);
}

#define F(k, t, st, m, ...)                                                                        \
	{                                                                                          \
		.key = k, .type = t, .offset = offsetof(st, m), __VA_ARGS__                        \
	}

static const struct cfg_field fuzz_check_fields[] = {
    F("on", CFG_BOOL, struct fuzz_check, on, .def = "off"),
    F("every", CFG_DURATION, struct fuzz_check, every, .def = "1s", .max = 86400000),
    F("path", CFG_STRING, struct fuzz_check, path),
    {0},
};
static const struct cfg_schema fuzz_check_schema = {"check", sizeof(struct fuzz_check),
                                                    fuzz_check_fields, fuzz_check_cb};

static const struct cfg_field fuzz_item_fields[] = {
    F("name", CFG_STRING, struct fuzz_item, name, .flags = CFG_F_REQUIRED),
    F("addr", CFG_ADDR, struct fuzz_item, addr, .addr_mode = NET_PORT_REQUIRED,
      .def = "127.0.0.1:80"),
    F("weight", CFG_INT, struct fuzz_item, weight, .def = "1", .min = 1, .max = 256),
    F("check", CFG_SECTION, struct fuzz_item, check, .schema = &fuzz_check_schema),
    F("tags", CFG_LIST, struct fuzz_item, tags, .elem = CFG_STRING, .def = "[a, b]"),
    {0},
};
static const struct cfg_schema fuzz_item_schema = {"item", sizeof(struct fuzz_item),
                                                   fuzz_item_fields, NULL};

static const struct cfg_field fuzz_root_fields[] = {
    F("s", CFG_STRING, struct fuzz_root, s, .def = "x"),
    F("i", CFG_INT, struct fuzz_root, i, .min = -5, .max = 65535),
    F("a", CFG_INT, struct fuzz_root, a, .flags = CFG_F_AUTO, .def = "auto"),
    F("b", CFG_BOOL, struct fuzz_root, b, .def = "yes"),
    F("d", CFG_DURATION, struct fuzz_root, d, .def = "1h30m"),
    F("z", CFG_SIZE, struct fuzz_root, z, .def = "16k", .max = 1 << 30),
    F("addr", CFG_ADDR, struct fuzz_root, addr, .addr_mode = NET_PORT_OPTIONAL),
    F("cidr", CFG_CIDR, struct fuzz_root, cidr, .def = "10.0.0.0/8"),
    F("e", CFG_ENUM, struct fuzz_root, e, .choices = fuzz_choices, .def = "random"),
    F("sec", CFG_SECTION, struct fuzz_root, sec, .schema = &fuzz_check_schema),
    F("strs", CFG_LIST, struct fuzz_root, strs, .elem = CFG_STRING),
    F("ints", CFG_LIST, struct fuzz_root, ints, .elem = CFG_INT, .def = "[1, 2]"),
    F("bools", CFG_LIST, struct fuzz_root, bools, .elem = CFG_BOOL),
    F("durs", CFG_LIST, struct fuzz_root, durs, .elem = CFG_DURATION),
    F("sizes", CFG_LIST, struct fuzz_root, sizes, .elem = CFG_SIZE),
    F("addrs", CFG_LIST, struct fuzz_root, addrs, .elem = CFG_ADDR, .addr_mode = NET_PORT_NONE),
    F("cidrs", CFG_LIST, struct fuzz_root, cidrs, .elem = CFG_CIDR),
    F("enums", CFG_LIST, struct fuzz_root, enums, .elem = CFG_ENUM, .choices = fuzz_choices),
    F("items", CFG_LIST, struct fuzz_root, items, .elem = CFG_SECTION, .schema = &fuzz_item_schema),
    F("m", CFG_MAP, struct fuzz_root, m, .elem = CFG_STRING),
    F("ms", CFG_MAP, struct fuzz_root, ms, .elem = CFG_SECTION, .schema = &fuzz_item_schema),
    {0},
};
static const struct cfg_schema fuzz_root_schema = {"root", sizeof(struct fuzz_root),
                                                   fuzz_root_fields, NULL};

static void
fuzz_scalars(const uint8_t *data, size_t size)
{
	char line[128];
	size_t n = 0;
	uint64_t u;
	int64_t i;
	bool b;

	while (n < size && n < sizeof(line) - 1 && data[n] != '\n')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	cfg_parse_duration(line, &u);
	cfg_parse_size(line, &u);
	cfg_parse_int(line, &i);
	cfg_parse_bool(line, &b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int null_fd = -2;
	struct fuzz_root root;
	struct cfg_errors errs;

	if (null_fd == -2)
		null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fuzz_scalars(data, size);
	if (cfg_load_string("fuzz.yaml", (const char *)data, size, &fuzz_root_schema, &root,
	                    &errs) == 0)
		cfg_free(&fuzz_root_schema, &root);
	if (null_fd >= 0)
		cfg_errors_print(&errs, null_fd);
	cfg_errors_free(&errs);
	return 0;
}
