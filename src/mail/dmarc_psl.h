/*
 * The public suffix list (https://publicsuffix.org/list/) for DMARC's Organizational Domain
 * (RFC 7489 §3.2): the rules of Debian's `publicsuffix` file in a hash table, wildcards and
 * exceptions per the list's own algorithm. Rules written in Unicode are also stored in their
 * A-label (xn--) form, since mail carries domains in that form.
 *
 * A loaded list is read-only: one may serve several threads.
 */
#pragma once

#include <stddef.h>

#define DMARC_PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
/* Bounds on what a list may hold (Debian's: ~230 KB, ~9,500 rules). */
#define DMARC_PSL_FILE_MAX (16u << 20)
#define DMARC_PSL_RULES_MAX 262144u

enum dmarc_psl_flags {
	/* Skip the PRIVATE section. OpenDMARC uses the whole file, and so do we by default. */
	DMARC_PSL_ICANN_ONLY = 1u << 0,
};

struct dmarc_psl;

/*
 * Loads the list at path (NULL: DMARC_PSL_DEFAULT_PATH). -errno from open/read, -EFBIG past
 * the bounds above, -EINVAL for a file without a single rule, -ENOMEM.
 */
int dmarc_psl_load(const char *path, unsigned flags, struct dmarc_psl **out);
void dmarc_psl_free(struct dmarc_psl *psl);
/* Number of rules stored (A-label copies included). */
size_t dmarc_psl_size(const struct dmarc_psl *psl);

/*
 * The public suffix of domain: its number of labels in *labels. Input is lower-cased (ASCII),
 * one final dot is accepted; -EINVAL for an empty name, an empty label (leading dot, ".."),
 * a label over 63 bytes or a name over 253.
 */
int dmarc_psl_suffix_labels(const struct dmarc_psl *psl, const char *domain, size_t *labels);

/*
 * The Organizational Domain (RFC 7489 §3.2): the public suffix plus one label, lower case,
 * without a final dot. -ENOENT when domain is itself a public suffix, -EINVAL as above,
 * -ENOBUFS when size is too small.
 */
int dmarc_psl_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t size);
