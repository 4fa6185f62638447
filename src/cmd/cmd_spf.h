/* Shared by `rampart spf` and `rampart senderid`: printing a result. */
#pragma once

#include "core/buf.h"
#include "mail/spf_eval.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Option codes and long options both commands take (after them, CMD_SPF_OPT_NEXT). */
enum {
	CMD_SPF_OPT_IP = 0x100,
	CMD_SPF_OPT_SENDER,
	CMD_SPF_OPT_HELO,
	CMD_SPF_OPT_RECEIVER,
	CMD_SPF_OPT_AUTHRES,
	CMD_SPF_OPT_JSON,
	CMD_SPF_OPT_TIME_LIMIT,
	CMD_SPF_OPT_NEXT,
};

#define CMD_SPF_LONGOPTS                                                                           \
	{"ip", required_argument, NULL, CMD_SPF_OPT_IP},                                           \
	    {"sender", required_argument, NULL, CMD_SPF_OPT_SENDER},                               \
	    {"helo", required_argument, NULL, CMD_SPF_OPT_HELO},                                   \
	    {"receiver", required_argument, NULL, CMD_SPF_OPT_RECEIVER},                           \
	    {"authres", no_argument, NULL, CMD_SPF_OPT_AUTHRES},                                   \
	    {"json", no_argument, NULL, CMD_SPF_OPT_JSON},                                         \
	{                                                                                          \
		"time-limit", required_argument, NULL, CMD_SPF_OPT_TIME_LIMIT                      \
	}

struct cmd_spf_print {
	bool json;
	bool received_spf;                 /* a Received-SPF: line (SPF only) */
	bool authres;                      /* an Authentication-Results method line */
	const char *authres_text;          /* "spf=pass smtp.mailfrom=..." */
	const char *pra_header, *pra_addr; /* Sender ID scope pra, when found */
	const char *trace_json;            /* JSON: the "trace" array; NULL: none */
	unsigned batch_line;               /* --batch: the input line (text: IP SENDER first) */
};

/*
 * --trace: every step of a check (spf_request.trace), as ";; " lines on stderr, indented by
 * include depth, or gathered into a JSON array for cmd_spf_print.trace_json.
 */
struct cmd_spf_trace {
	bool json;
	struct buf *out; /* json: the array being built */
	int err;         /* json: the first error building it */
	size_t n;
};
void cmd_spf_trace_cb(void *arg, const struct spf_trace *t);
/* Starts a check's trace (json: empties out, opens the array); closes it with _end. */
void cmd_spf_trace_begin(struct cmd_spf_trace *tr);
const char *cmd_spf_trace_end(struct cmd_spf_trace *tr);

/* The first line "RESULT TEXT", then the optional lines; or one JSON object. */
int cmd_spf_report(const char *verb, const struct spf_request *req, const struct spf_outcome *o,
                   const struct cmd_spf_print *p);
/* Exit code for a result: 0 pass, 3 temperror, 1 anything else. */
int cmd_spf_exit(enum spf_result r);

/* Parses `VERB check [options]`: the subcommand word, then each option through fn
 * (called with the getopt_long code; optarg set). Returns 0 or the exit code. */
int cmd_spf_getopt(const char *verb, int argc, char **argv, const struct option *longopts,
                   int (*fn)(int c, int argc, char **argv, void *ctx), void *ctx);
/* --ip ADDR into *ip, setting *have_ip. Returns 0 or the usage exit code. */
int cmd_spf_parse_ip(const char *verb, const char *arg, struct net_addr *ip, bool *have_ip);
/* --time-limit DURATION (up to an hour) into *budget_ms. Returns 0 or the usage exit code. */
int cmd_spf_parse_time_limit(const char *verb, const char *arg, uint64_t *budget_ms);
/*
 * The checks after the options: an empty sender needs a HELO name (when
 * helo_for_empty), both names fit; an unset *receiver becomes this host's name, kept in
 * buf. Returns 0 or the usage exit code.
 */
int cmd_spf_check_names(const char *verb, const char *sender, const char *helo, bool helo_for_empty,
                        const char **receiver, char *buf, size_t len);
