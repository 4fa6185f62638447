/*
 * The Purported Responsible Address of a message (RFC 4407 §2): from the first Resent-Sender,
 * the first Resent-From, the single Sender or the single From header, with the rules for
 * multiple and malformed headers. A self-contained header reader: unfolds fields, skips a
 * leading mbox "From " line, stops at the first empty line.
 */
#pragma once

#include <stddef.h>

#define SENDERID_ADDR_MAX 512
/* Header section read at most (the rest of a huge header is not looked at). */
#define SENDERID_HEADER_MAX (1024 * 1024)

struct senderid_pra {
	char address[SENDERID_ADDR_MAX]; /* local-part@domain: quotes and comments removed */
	const char *header;              /* "Resent-Sender", "Resent-From", "Sender" or "From" */
};

/*
 * 0 with *out filled; -ENOENT when the message has no PRA (RFC 4407 §2 step 6), with *why
 * saying which rule failed.
 */
int senderid_pra_find(const char *msg, size_t len, struct senderid_pra *out, const char **why);

/*
 * The one mailbox of a header field value (mailbox or mailbox-list holding exactly one
 * mailbox, with a domain name): 0 with its addr-spec in out, -EINVAL otherwise.
 */
int senderid_pra_mailbox(const char *value, size_t len, char *out, size_t cap);
