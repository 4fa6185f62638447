/*
 * Fuzz target for the milter's header parsers: DMARC records (src/mail/dmarc) and the
 * authserv-id of Authentication-Results (src/mail/authres). A parsed record must keep its
 * fields in range and its strings terminated; an authserv-id must be a non-empty string that
 * fits its buffer.
 */
#include "mail/authres.h"
#include "mail/dmarc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const struct dmarc_record *r)
{
	if (r->pct > 100 || r->p > DMARC_POLICY_REJECT || r->sp > DMARC_POLICY_REJECT ||
	    r->adkim > DMARC_ALIGN_STRICT || r->aspf > DMARC_ALIGN_STRICT)
		abort();
	if (!memchr(r->rua, '\0', sizeof(r->rua)) || !memchr(r->ruf, '\0', sizeof(r->ruf)) ||
	    !memchr(r->fo, '\0', sizeof(r->fo)) || !memchr(r->rf, '\0', sizeof(r->rf)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct dmarc_record rec;
	char id[AUTHRES_ID_MAX];
	if (dmarc_record_parse(text, size, &rec) == 0)
		check_record(&rec);
	(void)dmarc_record_is_dmarc(text, size);
	if (authres_authserv_id(text, size, id, sizeof(id)) == 0 &&
	    (!id[0] || strlen(id) >= sizeof(id)))
		abort();
	return 0;
}
