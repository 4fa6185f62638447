#include "cmd.h"
#include "cmd/cmd_version_commit.h"
#include "cmd/cmd_version_libs.h"
#include "config.h"
#include "core/buf.h"
#include "core/json.h"

#include <getopt.h>
#include <libmilter/mfapi.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unbound.h>
#include <yaml.h>

#define VERSION_JSON_MAX 4096
#define VERSION_TEXT_MAX 32

struct version_lib {
	const char *name;
	const char *built;                /* pkg-config's version at build time */
	void (*run)(char *buf, size_t n); /* the library's own word at run time, if it has one */
};

static void
version_openssl(char *buf, size_t n)
{
	snprintf(buf, n, "%s", OpenSSL_version(OPENSSL_VERSION_STRING));
}

static void
version_unbound(char *buf, size_t n)
{
	snprintf(buf, n, "%s", ub_version());
}

static void
version_yaml(char *buf, size_t n)
{
	snprintf(buf, n, "%s", yaml_get_version_string());
}

static void
version_sqlite(char *buf, size_t n)
{
	snprintf(buf, n, "%s", sqlite3_libversion());
}

/* 150020 is 15.20; before 10, 90624 was 9.6.24 */
static void
version_pq(char *buf, size_t n)
{
	int v = PQlibVersion();
	if (v >= 100000)
		snprintf(buf, n, "%d.%d", v / 10000, v % 10000);
	else
		snprintf(buf, n, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

static void
version_milter(char *buf, size_t n)
{
	unsigned major = 0, minor = 0, patch = 0;
	smfi_version(&major, &minor, &patch);
	snprintf(buf, n, "%u.%u.%u", major, minor, patch);
}

/* liburing 2.3, libnftables, libsystemd and libmnl say nothing at run time */
static const struct version_lib version_libs[] = {
    {"OpenSSL", RAMPART_BUILD_OPENSSL, version_openssl},
    {"libunbound", RAMPART_BUILD_UNBOUND, version_unbound},
    {"libyaml", RAMPART_BUILD_YAML, version_yaml},
    {"liburing", RAMPART_BUILD_URING, NULL},
    {"libnftables", RAMPART_BUILD_NFTABLES, NULL},
    {"SQLite", RAMPART_BUILD_SQLITE, version_sqlite},
    {"libpq", RAMPART_BUILD_PQ, version_pq},
    {"libsystemd", RAMPART_BUILD_SYSTEMD, NULL},
    {"libmnl", RAMPART_BUILD_MNL, NULL},
    {"libmilter", NULL, version_milter},
    {NULL, NULL, NULL},
};

static void
version_text(void)
{
	printf("rampart %s\ncommit %s\nlibraries:\n", RAMPART_VERSION, RAMPART_COMMIT);
	for (const struct version_lib *l = version_libs; l->name; l++) {
		char run[VERSION_TEXT_MAX] = "";
		if (l->run)
			l->run(run, sizeof(run));
		printf("  %-12s %s", l->name, l->run ? run : l->built);
		if (!l->run)
			printf(" (at build time)");
		else if (l->built && strcmp(run, l->built) != 0)
			printf(" (built with %s)", l->built);
		putchar('\n');
	}
}

static int
version_json_lib(struct buf *b, const struct version_lib *l)
{
	char run[VERSION_TEXT_MAX] = "";
	if (l->run)
		l->run(run, sizeof(run));
	int r = buf_append_str(b, "{") ?: json_member(b, "name", l->name)
	                                 ?: buf_append_str(b, ",\"version\":")
	                                 ?: (l->run ? json_string(b, run) : buf_append_str(b, "null"))
	                                 ?: buf_append_str(b, ",\"built\":")
	                                 ?: (l->built ? json_string(b, l->built)
	                                              : buf_append_str(b, "null"));
	return r ?: buf_append_str(b, "}");
}

static int
version_json(void)
{
	_cleanup_buf_ struct buf b = BUF_INIT(VERSION_JSON_MAX);
	int r = buf_append_str(&b, "{") ?: json_member(&b, "version", RAMPART_VERSION)
	                                  ?: buf_append_str(&b, ",")
	                                  ?: json_member(&b, "commit", RAMPART_COMMIT)
	                                  ?: buf_append_str(&b, ",\"libraries\":[");
	for (const struct version_lib *l = version_libs; r == 0 && l->name; l++)
		r = (l == version_libs ? 0 : buf_append_str(&b, ",")) ?: version_json_lib(&b, l);
	r = r ?: buf_append_str(&b, "]}\n");
	if (r == 0)
		fputs(buf_cstr(&b), stdout);
	return r;
}

int
cmd_version(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	bool json = false;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
		if (c != 'j')
			return cmd_bad_option("version", argc, argv, c);
		json = true;
	}
	if (optind < argc)
		return cmd_usage_error("version", "unexpected argument '%s'", argv[optind]);
	if (!json) {
		version_text();
		return CMD_EXIT_OK;
	}
	if (version_json() < 0) {
		cmd_error("version", "the JSON text is too long");
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}
