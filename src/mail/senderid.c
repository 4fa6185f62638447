#include "senderid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int
senderid_check(struct dns_resolver *dns, const struct senderid_request *req,
               struct senderid_outcome *out)
{
	const char *why;
	bool pra = req->scope == SPF_SCOPE_PRA;
	*out = (struct senderid_outcome){0};
	out->req = (struct spf_request){
	    .ip = req->ip,
	    .sender = req->mfrom,
	    .helo = req->helo,
	    .receiver = req->receiver,
	    .identity = pra ? SPF_ID_PRA : SPF_ID_MAILFROM,
	    .scope = pra ? SPF_SCOPE_PRA : SPF_SCOPE_MFROM,
	    .budget_ms = req->budget_ms,
	};
	if (!pra)
		return spf_eval_check(dns, &out->req, &out->spf);
	if (!req->message)
		return -EINVAL;
	if (senderid_pra_find(req->message, req->message_len, &out->pra, &why) < 0) {
		out->spf = (struct spf_outcome){.result = SPF_PERMERROR, .identity = SPF_ID_PRA};
		out->spf.reason = "no purported responsible address (RFC 4407)";
		snprintf(out->spf.problem, sizeof(out->spf.problem), "%s", why);
		return 0;
	}
	out->have_pra = true;
	out->req.sender = out->pra.address;
	return spf_eval_check(dns, &out->req, &out->spf);
}

int
senderid_authres(const struct senderid_outcome *o, char *buf, size_t len)
{
	char ptype[32];
	const char *value = o->spf.sender;
	int n;
	if (o->req.scope == SPF_SCOPE_PRA) {
		const char *h = o->have_pra ? o->pra.header : "from";
		size_t i = 0;
		for (; h[i] && i + 1 < sizeof(ptype); i++)
			ptype[i] = (char)tolower((unsigned char)h[i]);
		ptype[i] = '\0';
		value = o->have_pra ? o->pra.address : "";
		n = snprintf(buf, len, "sender-id=%s header.%s=%s", spf_result_name(o->spf.result),
		             ptype, value);
	} else {
		n = snprintf(buf, len, "sender-id=%s smtp.mailfrom=%s",
		             spf_result_name(o->spf.result), value);
	}
	return n >= 0 && (size_t)n < len ? 0 : -ENOBUFS;
}
