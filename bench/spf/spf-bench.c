/*
 * Bench-only program (built by bench/spf/run, not by Meson): SPF evaluations per second of
 * rampart's evaluator (src/mail/spf_eval) and libspf2, in one process, over the same
 * in-memory DNS data: rampart's zone resolver (core/dns) and libspf2's zone layer
 * (SPF_dns_zone). Rounds alternate between the two; every answer is checked.
 *
 *   spf-bench ZONEDATA ROUNDS SECONDS_PER_ROUND
 *
 * ZONEDATA lines: "NAME TYPE VALUE" (TYPE A, AAAA or TXT; TXT value the rest of the line), then
 * query lines "? IP SENDER EXPECTED". Prints "rampart N", "libspf2 N" and "rampart-noreuse N"
 * (rampart without its parsed-record cache): median evaluations per second over the rounds.
 */
#define _GNU_SOURCE
#include "core/dns.h"
#include "mail/spf_eval.h"
#include "mail/spf_header.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERIES_MAX 16

struct query {
	char ip[64], sender[256], expected[32];
};

static struct query queries[QUERIES_MAX];
static size_t n_queries;
/* rampart's parsed-record cache (a daemon keeps one per thread); measured with and without */
static struct spf_record_cache *cache;

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
	fprintf(stderr, "spf-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(2);
}

static void
load(const char *path, struct dns_zone *z, SPF_dns_server_t *lz)
{
	FILE *f = fopen(path, "r");
	char line[4096], name[256], type[16];
	int off;
	if (!f)
		die("cannot open", path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '?' && n_queries < QUERIES_MAX) {
			struct query *q = &queries[n_queries++];
			if (sscanf(line, "? %63s %255s %31s", q->ip, q->sender, q->expected) != 3)
				die("bad query line", line);
			continue;
		}
		if (sscanf(line, "%255s %15s %n", name, type, &off) != 2)
			continue;
		const char *v = line + off;
		ns_type t = strcmp(type, "A") == 0      ? ns_t_a
		            : strcmp(type, "AAAA") == 0 ? ns_t_aaaa
		                                        : ns_t_txt;
		int r = t == ns_t_txt
		            ? dns_zone_add_txt(z, name, v, strlen(v))
		            : dns_zone_add(z, name, t == ns_t_a ? DNS_T_A : DNS_T_AAAA, v);
		if (r < 0 || SPF_dns_zone_add_str(lz, name, t, NETDB_SUCCESS, v) != SPF_E_SUCCESS)
			die("cannot add", line);
	}
	fclose(f);
}

static const char *
rampart_eval(struct dns_resolver *r, const struct query *q, struct spf_record_cache *rc)
{
	static char header[SPF_HEADER_MAX];
	struct spf_request req = {.sender = q->sender,
	                          .helo = "client.example.net",
	                          .receiver = "mx.bench.test",
	                          .cache = rc};
	struct spf_outcome out;
	if (net_addr_parse(q->ip, NET_PORT_NONE, &req.ip) < 0 || spf_eval_check(r, &req, &out) < 0)
		die("rampart cannot evaluate", q->ip);
	/* libspf2 builds its Received-SPF text on every query: so do we */
	spf_header_received(&req, &out, NULL, header, sizeof(header));
	return spf_result_name(out.result);
}

static const char *
libspf2_eval(SPF_server_t *s, const struct query *q)
{
	SPF_request_t *req = SPF_request_new(s);
	SPF_response_t *resp = NULL;
	int v6 = strchr(q->ip, ':') != NULL;
	if ((v6 ? SPF_request_set_ipv6_str(req, q->ip) : SPF_request_set_ipv4_str(req, q->ip)) ||
	    SPF_request_set_helo_dom(req, "client.example.net") ||
	    SPF_request_set_env_from(req, q->sender))
		die("libspf2 rejects the request", q->ip);
	SPF_request_query_mailfrom(req, &resp);
	const char *res = SPF_strresult(SPF_response_result(resp));
	SPF_response_free(resp);
	SPF_request_free(req);
	return res;
}

/* Evaluations per second over one round of about seconds. */
static double
round_rampart(struct dns_resolver *r, struct spf_record_cache *rc, double seconds)
{
	double start = now(), t;
	unsigned long n = 0;
	do {
		for (size_t i = 0; i < n_queries; i++, n++)
			if (strcmp(rampart_eval(r, &queries[i], rc), queries[i].expected) != 0)
				die("rampart gives a wrong result for", queries[i].ip);
	} while ((t = now() - start) < seconds);
	return (double)n / t;
}

static double
round_libspf2(SPF_server_t *s, double seconds)
{
	double start = now(), t;
	unsigned long n = 0;
	do {
		for (size_t i = 0; i < n_queries; i++, n++)
			if (strcmp(libspf2_eval(s, &queries[i]), queries[i].expected) != 0)
				die("libspf2 gives a wrong result for", queries[i].ip);
	} while ((t = now() - start) < seconds);
	return (double)n / t;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	double a[64], b[64], c[64];
	if (argc != 4)
		die("usage: spf-bench ZONEDATA ROUNDS SECONDS", NULL);
	if (spf_record_cache_new(256, &cache) < 0)
		die("out of memory", NULL);
	int rounds = (int)strtol(argv[2], NULL, 10);
	double seconds = strtod(argv[3], NULL);
	if (rounds < 1 || rounds > 64 || seconds <= 0)
		die("bad ROUNDS or SECONDS", NULL);
	SPF_dns_server_t *lz = SPF_dns_zone_new(NULL, "bench", 0);
	if (dns_zone_new(&z) < 0 || !lz)
		die("out of memory", NULL);
	load(argv[1], z, lz);
	SPF_server_t *s = SPF_server_new_dns(lz, 0);
	if (!s || dns_resolver_from_zone(z, &r) < 0 || n_queries == 0)
		die("cannot set up", NULL);
	round_rampart(r, cache, seconds / 4); /* warm-up */
	round_libspf2(s, seconds / 4);
	for (int i = 0; i < rounds; i++) {
		a[i] = round_rampart(r, cache, seconds);
		b[i] = round_libspf2(s, seconds);
		c[i] = round_rampart(r, NULL, seconds);
	}
	qsort(a, (size_t)rounds, sizeof(double), cmp_double);
	qsort(b, (size_t)rounds, sizeof(double), cmp_double);
	qsort(c, (size_t)rounds, sizeof(double), cmp_double);
	printf("rampart %.0f\nlibspf2 %.0f\nrampart-noreuse %.0f\n", a[rounds / 2], b[rounds / 2],
	       c[rounds / 2]);
	dns_resolver_free(r);
	spf_record_cache_free(cache);
	SPF_server_free(s);
	return 0;
}
