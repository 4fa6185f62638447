/*
 * The milter's signing keys: the `sign:` entries of the config and OpenDKIM's KeyTable and
 * SigningTable (so a site moves over without rewriting them), loaded once per (re)load and
 * shared read-only by every connection.
 */
#pragma once

#include "dkim_key.h"
#include "milter_config.h"

#include <stddef.h>

/* Signatures one message gets at most. */
#define MILTER_KEYS_PER_MESSAGE 8
#define MILTER_KEY_FILE_MAX (64u << 10)
#define MILTER_TABLE_FILE_MAX (4u << 20)

struct milter_key {
	char *pattern;  /* what the sender address must match: a domain, or a refile: glob */
	bool glob;      /* pattern is an OpenDKIM refile: glob over the whole address */
	char *domain;   /* d= */
	char *selector; /* s= */
	struct dkim_key_private key;
};

struct milter_keys {
	size_t n;
	struct milter_key *k;
};

/* -EINVAL, -ENOENT...: *what says which file and line (static text in why, len whylen). */
int milter_keys_load(const struct milter_cfg *cfg, struct milter_keys **out, char *why,
                     size_t whylen);
void milter_keys_free(struct milter_keys *ks);
/* The keys for a sender address (the From address): up to max, in table order. */
size_t milter_keys_match(const struct milter_keys *ks, const char *address,
                         const struct milter_key **out, size_t max);
