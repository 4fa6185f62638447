/*
 * Fuzz target for src/mail/senderid_pra: the header reader and the mailbox parser. A PRA
 * found must be a NUL-terminated local@domain from a known header.
 */
#include "mail/senderid_pra.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct senderid_pra p;
	const char *why;
	char box[64];
	int r = senderid_pra_find((const char *)data, size, &p, &why);
	if (r == 0) {
		if (strnlen(p.address, sizeof(p.address)) >= sizeof(p.address) || !p.header ||
		    !strchr(p.address, '@'))
			abort();
	} else if (r != -ENOENT || !why) {
		abort();
	}
	r = senderid_pra_mailbox((const char *)data, size, box, sizeof(box));
	if (r == 0 && (strnlen(box, sizeof(box)) >= sizeof(box) || !strchr(box, '@')))
		abort();
	return 0;
}
