/*
 * `rampart mail setup`: the text of what a domain publishes and configures, built from the
 * inputs alone (no DNS): the DNS records in zone-file syntax (SPF, the Sender ID note, DKIM,
 * the DomainKeys policy, DMARC), the `mail:` section of rampart.yaml and the Postfix main.cf
 * lines. Also the two pieces `rampart dkim keygen` shares: TXT records in zone-file syntax and
 * files written whole under their final name.
 */
#pragma once

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MAIL_SETUP_IPS_MAX 32
#define MAIL_SETUP_MX_MAX 16
#define MAIL_SETUP_KEYS_MAX 2
/* RFC 7208 §4.6.4 */
#define MAIL_SETUP_SPF_LOOKUPS_MAX 10
/* RFC 1035 character-string */
#define MAIL_SETUP_TXT_STRING_MAX 255
/* an SPF record past this may not fit a 512-byte UDP answer (RFC 7208 §3.4) */
#define MAIL_SETUP_SPF_UDP_MAX 450
/* the selector when none is given: stable, so that re-running finds the same keys */
#define MAIL_SETUP_SELECTOR_DEFAULT "rampart"
/* the second selector of --type both */
#define MAIL_SETUP_ED25519_SUFFIX "-ed25519"
#define MAIL_SETUP_YAML "rampart-mail.yaml"
#define MAIL_SETUP_POSTFIX "postfix-main.cf"

struct mail_setup_key {
	const char *selector;
	const char *record; /* "v=DKIM1; k=rsa; p=..." */
	const char *path;   /* the private key file, absolute */
	const char *what;   /* "RSA 2048-bit", for the comment */
	bool reused;        /* found in the directory, not generated */
};

struct mail_setup {
	const char *domain;                  /* valid (mail_setup_valid_domain), no trailing dot */
	const char *ips[MAIL_SETUP_IPS_MAX]; /* addresses or CIDR prefixes, v4 or v6 */
	size_t n_ips;
	const char *mx[MAIL_SETUP_MX_MAX]; /* host names, no trailing dot */
	size_t n_mx;
	bool softfail;   /* ~all instead of -all */
	const char *rua; /* an address, with or without mailto:; NULL: dmarc-reports@domain */
	struct mail_setup_key keys[MAIL_SETUP_KEYS_MAX];
	size_t n_keys;
};

/* A host name of two labels or more, at most 253 bytes: letters, digits, '-' (not at a
 * label's ends); the last label not all digits. */
bool mail_setup_valid_domain(const char *s);
/* An --ip: an IPv4 or IPv6 address or prefix, not /0. */
bool mail_setup_valid_ip(const char *s);
/* An address for rua= ("a@b.example" or "mailto:a@b.example"), without ',', ';', '!',
 * spaces, quotes or backslashes, its domain valid. */
bool mail_setup_valid_rua(const char *s);

/*
 * Appends "v=spf1 ... -all" and sets *lookups to the number of its terms that make DNS queries,
 * counted by the SPF parser, which has accepted the record. -EINVAL for an --ip that is not an
 * address or prefix or an --mx that is not a host name; -E2BIG when *lookups is over
 * MAIL_SETUP_SPF_LOOKUPS_MAX (a permerror for every receiver). With no IPs and no MX, the
 * domain's own MX hosts are allowed ("mx").
 */
int mail_setup_spf(const struct mail_setup *s, struct buf *out, size_t *lookups);
/* Appends "v=DMARC1; p=none; rua=mailto:...", checked by the DMARC parser. -EINVAL: bad rua. */
int mail_setup_dmarc(const struct mail_setup *s, struct buf *out);
/* Appends "NAME. IN TXT ( "..." "..." )\n": text in strings of at most 255 bytes. NAME is
 * made absolute. -EINVAL when text holds '"', '\\' or a byte outside printable ASCII. */
int mail_setup_txt(const char *name, const char *text, struct buf *out);
/* Appends every record with its comments. -EINVAL, -E2BIG: as mail_setup_spf and
 * mail_setup_dmarc, or a key path with a control character. */
int mail_setup_records(const struct mail_setup *s, struct buf *out);
/* Appends the `mail:` section: the milter listener and one sign entry per key. -EINVAL for a
 * path with a control character. */
int mail_setup_yaml(const struct mail_setup *s, struct buf *out);
/* Appends the main.cf lines that hand mail to the milter. */
int mail_setup_postfix(struct buf *out);

/*
 * Writes data to dir/name with mode, whole or not at all: under a temporary name first, then
 * renamed over name (replace) or linked to it, which fails with -EEXIST when name exists, even
 * when another process made it a moment ago. -errno otherwise.
 */
int mail_setup_write_file(const char *dir, const char *name, const struct buf *data, mode_t mode,
                          bool replace);
