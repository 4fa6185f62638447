/* The `rampart` command: verb table and helpers shared by the cmd_<verb>.c files. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* Exit codes (DESIGN.md) */
enum {
	CMD_EXIT_OK = 0,       /* success, found */
	CMD_EXIT_NEGATIVE = 1, /* not found, verification failed */
	CMD_EXIT_USAGE = 2,    /* usage or input error */
	CMD_EXIT_TEMP = 3,     /* temporary failure (DNS timeout) */
};

struct cmd_verb {
	const char *name;
	/* argv[0] is the verb; returns an exit code. NULL: not yet available in this build. */
	int (*run)(int argc, char **argv);
	const char *summary; /* one line for `rampart help` */
	const char *usage;   /* full text for `rampart help VERB`, starts with "usage:" */
};

const struct cmd_verb *cmd_verb_find(const char *name);
/* Every verb, NULL-terminated by name. */
extern const struct cmd_verb cmd_verbs[];

/* "rampart: VERB: message" on stderr. */
void cmd_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cmd_error plus a pointer to `rampart help VERB`; returns CMD_EXIT_USAGE. */
int cmd_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the verb's usage text to stdout; returns CMD_EXIT_OK. */
int cmd_print_usage(const char *verb);
/* Our message for what getopt_long (with opterr = 0) returned as '?' or ':' (missing value,
 * when the option string starts with ':'); returns CMD_EXIT_USAGE. */
int cmd_bad_option(const char *verb, int argc, char **argv, int ret);

const char *cmd_default_config(void);

int cmd_help(int argc, char **argv);
/* The verb list of `rampart help`, to out (stderr when rampart is run without a verb). */
void cmd_help_list(FILE *out);
int cmd_version(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_milter(int argc, char **argv);
/* `rampart up` restricted to one part when only is set (`rampart lb`). */
int cmd_up_run(const char *verb, const char *only, int argc, char **argv);
int cmd_lb(int argc, char **argv);
int cmd_guard(int argc, char **argv);
/* `rampart mail`: setup, check and relaytest (cmd_mail_*.c). */
int cmd_mail(int argc, char **argv);
int cmd_mail_setup(int argc, char **argv);
int cmd_mail_check(int argc, char **argv);
int cmd_mail_relaytest(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_dkim(int argc, char **argv);
int cmd_dk(int argc, char **argv);
int cmd_dns(int argc, char **argv);
int cmd_spf(int argc, char **argv);
int cmd_senderid(int argc, char **argv);

/* DNS options shared by the verbs that look things up (spf, senderid, dkim, dk, dns). */
#include "core/dns.h"

#define CMD_DNS_SERVERS_MAX 8

enum {
	CMD_OPT_DNS_ZONE = 0x1000,
	CMD_OPT_DNS_SERVER,
	CMD_OPT_DNS_TIMEOUT,
	CMD_OPT_NO_DNSSEC,
	CMD_OPT_DNS_OFFLINE,
	CMD_OPT_DNS_ORIGIN,
};

/* Put inside a verb's struct option array. */
#define CMD_DNS_LONGOPTS                                                                           \
	{"dns-zone", required_argument, NULL, CMD_OPT_DNS_ZONE},                                   \
	    {"dns-server", required_argument, NULL, CMD_OPT_DNS_SERVER},                           \
	    {"dns-timeout", required_argument, NULL, CMD_OPT_DNS_TIMEOUT},                         \
	    {"dns-origin", required_argument, NULL, CMD_OPT_DNS_ORIGIN},                           \
	    {"no-dnssec", no_argument, NULL, CMD_OPT_NO_DNSSEC},                                   \
	{                                                                                          \
		"dns-offline", no_argument, NULL, CMD_OPT_DNS_OFFLINE                              \
	}

/* For usage texts. */
#define CMD_DNS_USAGE                                                                              \
	"      --dns-zone FILE      answer from this zone file first (its SOA zones only)\n"       \
	"      --dns-origin NAME    origin of the zone file's relative names before any $ORIGIN\n" \
	"      --dns-server ADDR    ask this server (repeatable; ADDR, ADDR:PORT, [v6]:PORT)\n"    \
	"                           instead of the resolv.conf ones\n"                             \
	"      --dns-timeout TIME   per-query timeout (default 3s, at most 1h)\n"                  \
	"      --no-dnssec          do not validate DNSSEC\n"                                      \
	"      --dns-offline        answer from --dns-zone only; other names do not exist\n"

struct cmd_dns_opts {
	struct dns_options dns;
	const char *servers[CMD_DNS_SERVERS_MAX + 1];
	size_t n_servers;
};

void cmd_dns_opts_init(struct cmd_dns_opts *o);
/* A record type's name ("TXT"); "?" for one rampart does not know. */
const char *cmd_dns_type_name(enum dns_type t);
/* A record's data in zone-file form, appended to b. */
struct buf;
int cmd_dns_rdata(struct buf *b, const struct dns_rr *rr);
/* A duration option of 1 ms .. 1 h into *out (ms). 0 or CMD_EXIT_USAGE, reported. */
int cmd_dns_parse_duration(const char *verb, const char *opt, const char *arg, uint64_t *out);
/* 1: c was a DNS option and is taken; 0: not one; CMD_EXIT_USAGE: bad value, reported. */
int cmd_dns_option(const char *verb, int c, const char *arg, struct cmd_dns_opts *o);
/* Opens the resolver; on failure reports it and returns CMD_EXIT_USAGE (bad zone file) or
 * CMD_EXIT_TEMP (resolver could not start). */
int cmd_dns_open(const char *verb, struct cmd_dns_opts *o, struct dns_resolver **out);

/* Shared by the dkim and dk verbs (cmd_dkim.c). */
#include <stdint.h>
#include <sys/types.h>

struct buf;
struct option;
struct dkim_key_private;
struct dkim_sig_result;
struct rfc5322_header;
struct rfc5322_read_ops;

/* The message being signed, to write out after the signature: stdin itself when it can seek
 * back to start, else an unlinked temporary copy (own). */
struct cmd_dkim_spool {
	int fd;
	off_t start;
	bool own;
};

/* Reads a PEM private key file; reports problems (and a warning under 2048 bits). */
int cmd_dkim_load_key(const char *verb, const char *path, struct dkim_key_private *k);
/* "a:b,c d" into a NULL-terminated lower-case list (cmd_dkim_free_names). */
int cmd_dkim_split_names(const char *verb, const char *opt, const char *list, char ***out);
void cmd_dkim_free_names(char **names);
int cmd_dkim_spool_open(const char *verb, struct cmd_dkim_spool *s);
int cmd_dkim_spool_raw(struct cmd_dkim_spool *s, const char *data, size_t len);
/* Writes fields, then the message as read. */
int cmd_dkim_spool_emit(const char *verb, struct cmd_dkim_spool *s, const struct buf *fields);
void cmd_dkim_spool_close(struct cmd_dkim_spool *s);
/* Reads standard input as a message; reports a failure (exit code 2). */
int cmd_dkim_read_message(const char *verb, struct rfc5322_header *h,
                          const struct rfc5322_read_ops *ops, void *ctx);
/* The options of the verify commands. */
int cmd_dkim_verify_args(const char *verb, int argc, char **argv, struct cmd_dns_opts *dns,
                         bool *json, size_t *max, int64_t *now);
/* One Authentication-Results line per result (or a JSON array); returns the exit code: 0 when
 * one passes, 3 when all are temporary errors, else 1. */
int cmd_dkim_print_results(const char *verb, const struct dkim_sig_result *const *res, size_t n,
                           size_t ignored, bool json, bool dk);

/* The options both sign commands take, for their struct option arrays. */
#define CMD_DKIM_SIGN_LONGOPTS(HEADERS)                                                            \
	{"domain", required_argument, NULL, 'd'}, {"selector", required_argument, NULL, 's'},      \
	    {"key", required_argument, NULL, 'k'}, {"canon", required_argument, NULL, 'c'},        \
	{                                                                                          \
		"headers", required_argument, NULL, HEADERS                                        \
	}
/* Runs getopt_long over the sign command's argv (argv[0] is "sign") with option for each
 * one, then refuses operands; returns the exit code. */
int cmd_dkim_sign_getopt(const char *verb, int argc, char **argv, const struct option *longopts,
                         int (*option)(int c, int argc, char **argv, void *o), void *o);

/* A signer (dkim_sign or dk_sign) as the sign commands drive it. */
struct cmd_dkim_signer {
	int (*header)(void *signer, const struct rfc5322_header *h); /* NULL: none */
	int (*body)(void *signer, const char *data, size_t len);
	int (*finish)(void *signer, const struct rfc5322_header *h, const char *eol,
	              struct buf *fields);
};
/* Reads standard input through signer and writes the signature fields, then the message;
 * reports a failure and returns the exit code. */
int cmd_dkim_sign_message(const char *verb, const struct cmd_dkim_signer *ops, void *signer);

/* A verifier (dkim_verify or dk_verify) as the verify commands drive it. */
struct cmd_dkim_verifier {
	bool dk; /* DomainKeys results */
	int (*create)(struct dns_resolver *res, size_t max_signatures, int64_t now, void **out);
	void (*destroy)(void *v);
	int (*header)(void *v, const struct rfc5322_header *h);
	int (*body)(void *v, const char *data, size_t len);
	int (*finish)(void *v);
	const struct dkim_sig_result *(*result)(const void *v, size_t i); /* NULL past the end */
	size_t (*ignored)(const void *v);
};
/* A whole verify command (argv[0] is "verify"): options, standard input, the results; returns
 * the exit code. */
int cmd_dkim_verify(const char *verb, const struct cmd_dkim_verifier *ops, int argc, char **argv);
/* Defines the struct cmd_dkim_verifier NAME over PREFIX_verify_free, _header, _body, _finish,
 * _result and _ignored (PREFIX dkim or dk), with CREATE. */
#define CMD_DKIM_VERIFIER(NAME, PREFIX, DK, CREATE)                                                \
	static void NAME##_destroy(void *v)                                                        \
	{                                                                                          \
		PREFIX##_verify_free(v);                                                           \
	}                                                                                          \
	static int NAME##_header(void *v, const struct rfc5322_header *h)                          \
	{                                                                                          \
		return PREFIX##_verify_header(v, h);                                               \
	}                                                                                          \
	static int NAME##_body(void *v, const char *data, size_t len)                              \
	{                                                                                          \
		return PREFIX##_verify_body(v, data, len);                                         \
	}                                                                                          \
	static int NAME##_finish(void *v)                                                          \
	{                                                                                          \
		return PREFIX##_verify_finish(v);                                                  \
	}                                                                                          \
	static const struct dkim_sig_result *NAME##_result(const void *v, size_t i)                \
	{                                                                                          \
		return PREFIX##_verify_result(v, i);                                               \
	}                                                                                          \
	static size_t NAME##_ignored(const void *v)                                                \
	{                                                                                          \
		return PREFIX##_verify_ignored(v);                                                 \
	}                                                                                          \
	static const struct cmd_dkim_verifier NAME = {.dk = DK,                                    \
	                                              .create = CREATE,                            \
	                                              .destroy = NAME##_destroy,                   \
	                                              .header = NAME##_header,                     \
	                                              .body = NAME##_body,                         \
	                                              .finish = NAME##_finish,                     \
	                                              .result = NAME##_result,                     \
	                                              .ignored = NAME##_ignored}
