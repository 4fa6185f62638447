/*
 * bench/guard/match runs this: reads a log file and runs guard_match_text over every line,
 * printing "lines N attacks A logins L seconds S" for the fastest of --rounds passes. Each
 * pass reads the file anew (from the page cache), as a log follower would, and counts that too.
 *
 * Usage: bench-guard-match FILE [ROUNDS]
 */
#include "guard/guard_match.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILE_CAP (1024L * 1024 * 1024)

struct tally {
	unsigned long lines, attacks, logins;
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
pass(const char *path, char *buf, long cap, struct tally *t)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	size_t len = fread(buf, 1, (size_t)cap, f);
	fclose(f);
	memset(t, 0, sizeof(*t));
	const char *p = buf, *e = buf + len;
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;
		struct guard_event ev;
		t->lines++;
		if (guard_match_text(p, (size_t)(le - p), 0, &ev) == 1) {
			if (ev.kind == GUARD_EV_ATTACK)
				t->attacks++;
			else
				t->logins++;
		}
		p = le + 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench-guard-match FILE [ROUNDS]\n");
		return 2;
	}
	int rounds = argc == 3 ? (int)strtol(argv[2], NULL, 10) : 3;
	if (rounds < 1 || rounds > 100)
		rounds = 3;
	char *buf = malloc(FILE_CAP);
	if (!buf)
		return 1;
	double best = 0;
	struct tally t = {0};
	for (int i = 0; i < rounds; i++) {
		double t0 = now();
		int r = pass(argv[1], buf, FILE_CAP, &t);
		double dt = now() - t0;
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[1], strerror(-r));
			free(buf);
			return 1;
		}
		if (i == 0 || dt < best)
			best = dt;
	}
	printf("lines %lu attacks %lu logins %lu seconds %.6f\n", t.lines, t.attacks, t.logins,
	       best);
	free(buf);
	return 0;
}
