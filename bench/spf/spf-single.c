/*
 * Bench-only program (built by bench/spf/batch, not by Meson): single SPF checks in one
 * process over the resolver `rampart spf check` opens (the zone file with --dns-offline) and
 * a parsed-record cache: the baselines the batch mode's per-query rate is compared with.
 *
 *   spf-single MODE ZONEFILE QUERIES N
 *
 * QUERIES lines: "IP SENDER EXPECTED". Opens the resolver on the zone, then runs N checks
 * cycling over the queries, every result checked; per check, MODE "eval" is the evaluation
 * alone (spf_eval_check), "text" the evaluation and the result's text, as a library user
 * reporting a result builds it and as `spf check` prints it after the result word (the
 * explanation of a fail, else the comment of spf_header_comment). Prints "loop N_PER_SECOND":
 * the checks' rate, timed around the loop only; bench/spf/batch also times the whole process
 * (start, zone load, loop), as it times `rampart spf check --batch`.
 */
#include "core/dns.h"
#include "core/net.h"
#include "mail/spf_eval.h"
#include "mail/spf_header.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERIES_MAX 16

struct query {
	char ip[64], sender[256], expected[32];
	struct net_addr addr;
};

static struct query queries[QUERIES_MAX];
static size_t n_queries;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "spf-single: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(2);
}

static void
load_queries(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	if (!f)
		die("cannot open", path);
	while (fgets(line, sizeof(line), f) && n_queries < QUERIES_MAX) {
		struct query *q = &queries[n_queries];
		if (sscanf(line, "%63s %255s %31s", q->ip, q->sender, q->expected) != 3)
			continue;
		if (net_addr_parse(q->ip, NET_PORT_NONE, &q->addr) < 0)
			die("bad address", q->ip);
		n_queries++;
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct dns_resolver *r;
	struct spf_record_cache *cache;
	struct spf_outcome out;
	char text[SPF_HEADER_MAX];
	if (argc != 5 || (strcmp(argv[1], "eval") != 0 && strcmp(argv[1], "text") != 0))
		die("usage: spf-single eval|text ZONEFILE QUERIES N", NULL);
	bool with_text = strcmp(argv[1], "text") == 0;
	long n = strtol(argv[4], NULL, 10);
	struct dns_options opt = {.zone_file = argv[2], .no_network = true};
	if (dns_resolver_open(&opt, &r, NULL) < 0 || spf_record_cache_new(1024, &cache) < 0)
		die("cannot open the zone", argv[2]);
	load_queries(argv[3]);
	if (n_queries == 0 || n < 1)
		die("no queries", argv[3]);
	double start = now();
	for (long i = 0; i < n; i++) {
		const struct query *q = &queries[(size_t)i % n_queries];
		struct spf_request req = {.ip = q->addr,
		                          .sender = q->sender,
		                          .helo = "client.example.net",
		                          .receiver = "bench",
		                          .identity = SPF_ID_MAILFROM,
		                          .scope = SPF_SCOPE_SPF1,
		                          .cache = cache};
		if (spf_eval_check(r, &req, &out) < 0)
			die("check failed", q->ip);
		if (strcmp(spf_result_name(out.result), q->expected) != 0)
			die("wrong result for", q->ip);
		/* a fail's text is its explanation, already in out */
		if (with_text && out.result != SPF_FAIL &&
		    spf_header_comment(&req, &out, text, sizeof(text)) < 0)
			die("no comment for", q->ip);
	}
	printf("loop %.0f\n", (double)n / (now() - start));
	spf_record_cache_free(cache);
	dns_resolver_free(r);
	return 0;
}
