/*
 * Fuzz target for what `rampart mail relaytest` reads from an SMTP server it does not trust:
 * replies (src/mail/mail_relaytest) and the HOST[:PORT] it is given. A parsed reply must have
 * a code in 200..599 and terminated text; a parsed target a port.
 */
#include "mail/mail_relaytest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct mail_relaytest_reply reply;
	char esc[256];
	int r = mail_relaytest_reply_parse(text, size, &reply);
	if (r > 0 &&
	    (reply.code < 200 || reply.code > 599 || !memchr(reply.text, '\0', sizeof(reply.text))))
		abort();
	(void)mail_relaytest_escape(esc, sizeof(esc), text, size);
	if (!memchr(esc, '\0', sizeof(esc)))
		abort();
	char host[MAIL_RELAYTEST_NAME_MAX + 8];
	size_t n = size < sizeof(host) - 1 ? size : sizeof(host) - 1;
	memcpy(host, data, n);
	host[n] = '\0';
	struct mail_relaytest_target t;
	if (mail_relaytest_target_parse(host, &t) == 0 && t.port == 0)
		abort();
	return 0;
}
