#include "msgauth.h"

#include "authres.h"
#include "core/cleanup.h"
#include "dk_verify.h"
#include "dkim_sign.h"
#include "dkim_verify.h"
#include "dmarc.h"
#include "rfc5322.h"
#include "senderid.h"
#include "spf_header.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct dkim_sig_result *msgauth_dkim_get(const void *v, size_t i);
static const struct dkim_sig_result *msgauth_dk_get(const void *v, size_t i);

struct msgauth_spf {
	struct spf_request req;
	struct spf_outcome out;
	bool done;
};

struct msgauth {
	const struct msgauth_env *env;
	struct net_addr client;
	char helo[DNS_NAME_MAX + 2];
	char mail_from[SPF_SENDER_MAX];
	bool authenticated, internal;
	struct rfc5322_header hdr;
	unsigned ar_seen;
	size_t nremove;
	unsigned remove[MSGAUTH_REMOVE_MAX];
	char from[SPF_SENDER_MAX]; /* the first From address; "" when none */
	bool sign, verify;
	struct dkim_sign *signer;
	size_t nsig;
	struct dkim_verify *dkim;
	struct dk_verify *dk;
	/* the DNS thread: SPF (MAIL FROM and HELO) and Sender ID, started at the header's end */
	pthread_t thread;
	bool thread_running;
	uint64_t deadline_ms;
	struct msgauth_spf spf, spf_helo;
	struct senderid_outcome sid;
	bool sid_done;
	struct buf head_text; /* the header as text, for Sender ID's PRA */
};

int
msgauth_begin(const struct msgauth_env *env, const struct msgauth_envelope *e, struct msgauth **out)
{
	struct msgauth *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->env = env;
	m->client = e->client;
	m->authenticated = e->authenticated;
	snprintf(m->helo, sizeof(m->helo), "%s", e->helo ? e->helo : "");
	snprintf(m->mail_from, sizeof(m->mail_from), "%s", e->mail_from ? e->mail_from : "");
	/* no client address: the host's own submission (Postfix's non_smtpd_milters) */
	m->internal = !e->client.family;
	const struct net_cidr *nets = env->cfg->internal_networks.items;
	for (size_t i = 0; e->client.family && i < env->cfg->internal_networks.n; i++)
		m->internal |= net_cidr_match(&nets[i], &e->client);
	rfc5322_header_init(&m->hdr, 0, 0);
	buf_init(&m->head_text, RFC5322_MAX_BYTES);
	m->deadline_ms = dns_monotonic_ms() + env->cfg->budget_ms;
	*out = m;
	return 0;
}

void
msgauth_free(struct msgauth *m)
{
	if (!m)
		return;
	/* its queries stop at the deadline, so the wait is bounded by the budget */
	if (m->thread_running)
		pthread_join(m->thread, NULL);
	dkim_sign_free(m->signer);
	dkim_verify_free(m->dkim);
	dk_verify_free(m->dk);
	rfc5322_header_free(&m->hdr);
	buf_free(&m->head_text);
	free(m);
}

DEFINE_CLEANUP_FUNC(struct msgauth, msgauth_free)

int
msgauth_header(struct msgauth *m, const char *name, const char *value)
{
	_cleanup_buf_ struct buf raw = BUF_INIT(RFC5322_MAX_BYTES);
	int r = buf_printf(&raw, "%s:%s", name, value);
	if (r < 0)
		return r;
	if (!strcasecmp(name, "Authentication-Results")) {
		m->ar_seen++;
		if (authres_claims(value, strlen(value), m->env->authserv_id) &&
		    m->nremove < MSGAUTH_REMOVE_MAX)
			m->remove[m->nremove++] = m->ar_seen;
	}
	return rfc5322_header_add(&m->hdr, raw.data, raw.len);
}

static void
msgauth_find_from(struct msgauth *m)
{
	_cleanup_buf_ struct buf v = BUF_INIT(RFC5322_MAX_BYTES);
	for (size_t i = 0; i < m->hdr.n; i++) {
		if (!rfc5322_field_is(&m->hdr.f[i], "From"))
			continue;
		if (rfc5322_field_value(&m->hdr.f[i], &v) < 0 ||
		    rfc5322_first_address(buf_cstr(&v), v.len, m->from, sizeof(m->from)) < 0)
			m->from[0] = '\0';
		return;
	}
}

static const char *
msgauth_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

static int
msgauth_start_signing(struct msgauth *m, const struct milter_key **keys, size_t n)
{
	struct dkim_sign_opts opts[MILTER_KEYS_PER_MESSAGE];
	for (size_t i = 0; i < n; i++)
		opts[i] = (struct dkim_sign_opts){.domain = keys[i]->domain,
		                                  .selector = keys[i]->selector,
		                                  .key = &keys[i]->key,
		                                  .hc = DKIM_CANON_RELAXED,
		                                  .bc = DKIM_CANON_RELAXED};
	m->nsig = n;
	return dkim_sign_new(opts, n, &m->signer);
}

/* What is left of the message's DNS budget; at least 1 ms (0 would mean the default). */
static uint64_t
msgauth_budget_left(const struct msgauth *m)
{
	uint64_t now = dns_monotonic_ms();
	return m->deadline_ms > now ? m->deadline_ms - now : 1;
}

static void
msgauth_spf_run(struct msgauth *m, struct msgauth_spf *s, enum spf_identity id)
{
	s->req = (struct spf_request){.ip = m->client,
	                              .sender = id == SPF_ID_HELO ? "" : m->mail_from,
	                              .helo = m->helo[0] ? m->helo : NULL,
	                              .receiver = m->env->authserv_id,
	                              .identity = id,
	                              .scope = SPF_SCOPE_SPF1,
	                              .budget_ms = msgauth_budget_left(m)};
	s->done = spf_eval_check(m->env->dns, &s->req, &s->out) == 0;
}

static void *
msgauth_dns_thread(void *arg)
{
	struct msgauth *m = arg;
	dns_deadline_set(m->deadline_ms);
	msgauth_spf_run(m, &m->spf, m->mail_from[0] ? SPF_ID_MAILFROM : SPF_ID_HELO);
	if (m->mail_from[0] && m->helo[0])
		msgauth_spf_run(m, &m->spf_helo, SPF_ID_HELO);
	struct senderid_request req = {.ip = m->client,
	                               .scope = SPF_SCOPE_PRA,
	                               .message = m->head_text.data,
	                               .message_len = m->head_text.len,
	                               .mfrom = m->mail_from,
	                               .helo = m->helo[0] ? m->helo : NULL,
	                               .receiver = m->env->authserv_id,
	                               .budget_ms = msgauth_budget_left(m)};
	m->sid_done = senderid_check(m->env->dns, &req, &m->sid) == 0;
	return NULL;
}

/* The key records of signatures (DKIM and DomainKeys alike: s._domainkey.d). */
static void
msgauth_prefetch_keys(struct msgauth *m, size_t n,
                      const struct dkim_sig_result *(*get)(const void *, size_t), const void *v)
{
	char name[DNS_NAME_MAX + 16];
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *res = get(v, i);
		if (res->domain[0] && res->selector[0] &&
		    (size_t)snprintf(name, sizeof(name), "%s._domainkey.%s", res->selector,
		                     res->domain) < sizeof(name))
			dns_prefetch(m->env->dns, name, DNS_T_TXT);
	}
}

/* Every lookup whose name the header gives starts now, in parallel with the body; the checks
 * at the end of the message find the answers in the cache or in flight. */
static void
msgauth_prefetch(struct msgauth *m)
{
	char name[DNS_NAME_MAX + 8], org[DNS_NAME_MAX];
	const char *from = msgauth_domain(m->from);
	dns_deadline_set(m->deadline_ms);
	msgauth_prefetch_keys(m, dkim_verify_count(m->dkim), msgauth_dkim_get, m->dkim);
	msgauth_prefetch_keys(m, dk_verify_count(m->dk), msgauth_dk_get, m->dk);
	if (*from && (size_t)snprintf(name, sizeof(name), "_dmarc.%s", from) < sizeof(name))
		dns_prefetch(m->env->dns, name, DNS_T_TXT);
	if (*from && m->env->psl &&
	    dmarc_psl_org_domain(m->env->psl, from, org, sizeof(org)) == 0 &&
	    strcasecmp(org, from) &&
	    (size_t)snprintf(name, sizeof(name), "_dmarc.%s", org) < sizeof(name))
		dns_prefetch(m->env->dns, name, DNS_T_TXT);
	dns_deadline_set(0);
}

static int
msgauth_start_verifying(struct msgauth *m)
{
	const struct dkim_verify_opts vo = {.cache = m->env->key_cache};
	const struct dk_verify_opts dko = {.cache = m->env->key_cache};
	int r = dkim_verify_new(&vo, m->env->dns, &m->dkim);
	if (r >= 0)
		r = dkim_verify_header(m->dkim, &m->hdr);
	if (r >= 0)
		r = dk_verify_new(&dko, m->env->dns, &m->dk);
	if (r >= 0)
		r = dk_verify_header(m->dk, &m->hdr);
	for (size_t i = 0; r >= 0 && i < m->hdr.n; i++)
		r = buf_append(&m->head_text, m->hdr.f[i].raw, m->hdr.f[i].len);
	if (r >= 0)
		r = buf_append(&m->head_text, "\r\n", 2);
	if (r < 0)
		return r;
	msgauth_prefetch(m);
	if (!m->client.family)
		return 0;
	r = -pthread_create(&m->thread, NULL, msgauth_dns_thread, m);
	m->thread_running = r == 0;
	return r;
}

int
msgauth_eoh(struct msgauth *m)
{
	const struct milter_key *keys[MILTER_KEYS_PER_MESSAGE];
	size_t n = 0;
	msgauth_find_from(m);
	if (m->authenticated || m->internal) {
		n = m->from[0]
		        ? milter_keys_match(m->env->keys, m->from, keys, MILTER_KEYS_PER_MESSAGE)
		        : 0;
		m->sign = n > 0;
		m->verify = m->env->cfg->verify_internal;
	} else {
		m->verify = true;
	}
	int r = m->sign ? msgauth_start_signing(m, keys, n) : 0;
	if (r >= 0 && m->verify)
		r = msgauth_start_verifying(m);
	return r;
}

int
msgauth_body(struct msgauth *m, const char *data, size_t len)
{
	int r = 0;
	if (m->signer)
		r = dkim_sign_body(m->signer, data, len);
	if (r >= 0 && m->dkim)
		r = dkim_verify_body(m->dkim, data, len);
	if (r >= 0 && m->dk)
		r = dk_verify_body(m->dk, data, len);
	return r;
}

/* Appends one field to o: name and the value " text" as given. */
static int
msgauth_field(struct msgauth_outcome *o, const char *name, const char *value, size_t len)
{
	if (o->nfields >= sizeof(o->fields) / sizeof(o->fields[0]))
		return -E2BIG;
	size_t off = o->text.len;
	int r = buf_append(&o->text, value, len);
	if (r < 0)
		return r;
	o->fields[o->nfields++] = (struct msgauth_field){name, off, len};
	return 0;
}

/* The signer's output is whole "DKIM-Signature: ..." fields: each becomes one insert. */
static int
msgauth_finish_signing(struct msgauth *m, struct msgauth_outcome *o)
{
	_cleanup_buf_ struct buf sigs = BUF_INIT(1u << 20);
	int r = dkim_sign_finish(m->signer, &m->hdr, "\r\n", &sigs);
	static const char name[] = "DKIM-Signature:";
	const char *p = buf_cstr(&sigs), *end = p + sigs.len;
	while (r >= 0 && p < end) {
		const char *next = p;
		/* a field ends at a CRLF not followed by WSP */
		while ((next = strstr(next, "\r\n")) && next + 2 < end &&
		       (next[2] == ' ' || next[2] == '\t'))
			next += 2;
		next = next ? next : end;
		if (strncasecmp(p, name, sizeof(name) - 1))
			return -EPROTO;
		r = msgauth_field(o, "DKIM-Signature", p + sizeof(name) - 1,
		                  (size_t)(next - p) - (sizeof(name) - 1));
		p = next + 2;
	}
	o->signed_ = r >= 0;
	o->nsig = m->nsig;
	return r;
}

/* The verdict of one method's bad result, when it is worse than what is already decided. */
static void
msgauth_decide(struct msgauth_outcome *o, enum milter_action a, const char *rcode,
               const char *xcode, const char *text)
{
	enum msgauth_verdict v = a == MILTER_ACTION_REJECT       ? MSGAUTH_REJECT
	                         : a == MILTER_ACTION_QUARANTINE ? MSGAUTH_QUARANTINE
	                                                         : MSGAUTH_ACCEPT;
	if (v == MSGAUTH_ACCEPT || o->verdict == MSGAUTH_REJECT ||
	    (o->verdict == MSGAUTH_QUARANTINE && v == MSGAUTH_QUARANTINE))
		return;
	o->verdict = v;
	snprintf(o->rcode, sizeof(o->rcode), "%s", rcode);
	snprintf(o->xcode, sizeof(o->xcode), "%s", xcode);
	snprintf(o->reply, sizeof(o->reply), "%s", text);
}

static void
msgauth_temp(struct msgauth_outcome *o, const struct milter_cfg *cfg, const char *xcode,
             const char *what)
{
	/* a reject stands; the first temporary error names the reply */
	if (cfg->actions.temperror != MILTER_TEMP_TEMPFAIL || o->verdict == MSGAUTH_REJECT ||
	    o->verdict == MSGAUTH_TEMPFAIL)
		return;
	o->verdict = MSGAUTH_TEMPFAIL;
	snprintf(o->rcode, sizeof(o->rcode), "451");
	snprintf(o->xcode, sizeof(o->xcode), "%s", xcode);
	snprintf(o->reply, sizeof(o->reply), "temporary DNS failure checking %s, try again later",
	         what);
}

static int
msgauth_add_spf(struct msgauth *m, struct msgauth_outcome *o, struct buf *ar, size_t *nm)
{
	char text[SPF_HEADER_MAX];
	const struct milter_cfg *cfg = m->env->cfg;
	struct msgauth_spf *list[] = {&m->spf, &m->spf_helo};
	for (size_t i = 0; i < 2; i++) {
		struct msgauth_spf *s = list[i];
		if (!s->done)
			continue;
		int r = spf_header_authres(&s->req, &s->out, text, sizeof(text));
		if (r < 0 || (r = authres_add(ar, text)) < 0)
			return r;
		(*nm)++;
		*(i ? &o->helo : &o->spf) = spf_result_name(s->out.result);
		if (s->out.result == SPF_TEMPERROR)
			msgauth_temp(o, cfg, "4.7.24", "SPF");
		if (s->out.result == SPF_FAIL) {
			char reply[MSGAUTH_REPLY_MAX];
			snprintf(reply, sizeof(reply), "SPF fail: %.400s", s->out.explanation);
			msgauth_decide(o, cfg->actions.spf, "550", "5.7.23", reply);
		}
	}
	return 0;
}

static int
msgauth_add_senderid(struct msgauth *m, struct msgauth_outcome *o, struct buf *ar, size_t *nm)
{
	char text[SPF_HEADER_MAX];
	if (!m->sid_done)
		return 0;
	int r = senderid_authres(&m->sid, text, sizeof(text));
	if (r < 0 || (r = authres_add(ar, text)) < 0)
		return r;
	(*nm)++;
	o->senderid = spf_result_name(m->sid.spf.result);
	if (m->sid.spf.result == SPF_TEMPERROR)
		msgauth_temp(o, m->env->cfg, "4.7.0", "Sender ID");
	if (m->sid.spf.result == SPF_FAIL)
		msgauth_decide(
		    o, m->env->cfg->actions.senderid, "550", "5.7.1",
		    "Sender ID fail: the purported responsible address is not permitted");
	return 0;
}

/* One method entry per signature, "dkim=none" without any; *pass: one passed. */
static int
msgauth_add_sigs(struct buf *ar, size_t *nm, size_t n,
                 const struct dkim_sig_result *(*get)(const void *, size_t), const void *v,
                 const char *none, bool *pass, bool *temp)
{
	_cleanup_buf_ struct buf text = BUF_INIT(4096);
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct dkim_sig_result *res = get(v, i);
		buf_reset(&text);
		*pass |= res->result == DKIM_RESULT_PASS;
		*temp |= res->result == DKIM_RESULT_TEMPERROR;
		if ((r = dkim_result_format(res, &text)) >= 0)
			r = authres_add(ar, buf_cstr(&text));
		(*nm)++;
	}
	if (r >= 0 && n == 0 && none) {
		r = authres_add(ar, none);
		(*nm)++;
	}
	return r;
}

static const struct dkim_sig_result *
msgauth_dkim_get(const void *v, size_t i)
{
	return dkim_verify_result(v, i);
}

static const struct dkim_sig_result *
msgauth_dk_get(const void *v, size_t i)
{
	return dk_verify_result(v, i);
}

static int
msgauth_add_dkim(struct msgauth *m, struct msgauth_outcome *o, struct buf *ar, size_t *nm)
{
	const struct milter_cfg *cfg = m->env->cfg;
	bool pass = false, temp = false;
	size_t n = dkim_verify_count(m->dkim);
	int r = msgauth_add_sigs(ar, nm, n, msgauth_dkim_get, m->dkim, "dkim=none", &pass, &temp);
	o->dkim = n == 0 ? "none" : pass ? "pass" : temp ? "temperror" : "fail";
	if (r >= 0 && n && !pass && temp)
		msgauth_temp(o, cfg, "4.7.5", "DKIM");
	else if (r >= 0 && n && !pass)
		msgauth_decide(o, cfg->actions.dkim, "550", "5.7.20",
		               "no passing DKIM signature found");
	pass = temp = false;
	n = dk_verify_count(m->dk);
	if (r >= 0)
		r = msgauth_add_sigs(ar, nm, n, msgauth_dk_get, m->dk, NULL, &pass, &temp);
	o->domainkeys = n == 0 ? "none" : pass ? "pass" : temp ? "temperror" : "fail";
	if (r >= 0 && n && !pass && temp)
		msgauth_temp(o, cfg, "4.7.5", "DomainKeys");
	else if (r >= 0 && n && !pass)
		msgauth_decide(o, cfg->actions.domainkeys, "550", "5.7.1",
		               "no passing DomainKeys signature found");
	return r;
}

static void
msgauth_dmarc_verdict(struct msgauth *m, struct msgauth_outcome *o, const struct dmarc_outcome *d)
{
	const struct milter_cfg *cfg = m->env->cfg;
	char reply[MSGAUTH_REPLY_MAX];
	if (d->result == DMARC_RESULT_TEMPERROR)
		msgauth_temp(o, cfg, "4.7.0", "DMARC");
	if (d->result != DMARC_RESULT_FAIL)
		return;
	snprintf(reply, sizeof(reply), "rejected by the DMARC policy of %s", d->policy_domain);
	if (!cfg->actions.dmarc_policy)
		msgauth_decide(o, cfg->actions.dmarc, "550", "5.7.1", reply);
	else if (d->disposition == DMARC_POLICY_REJECT)
		msgauth_decide(o, MILTER_ACTION_REJECT, "550", "5.7.1", reply);
	else if (d->disposition == DMARC_POLICY_QUARANTINE)
		msgauth_decide(o, MILTER_ACTION_QUARANTINE, "550", "5.7.1", reply);
}

static int
msgauth_add_dmarc(struct msgauth *m, struct msgauth_outcome *o, struct buf *ar, size_t *nm)
{
	struct dmarc_dkim dk[DKIM_VERIFY_MAX_SIGS];
	struct dmarc_outcome d;
	char text[1024];
	size_t n = dkim_verify_count(m->dkim);
	if (!m->from[0] || !m->env->psl)
		return 0;
	for (size_t i = 0; i < n && i < DKIM_VERIFY_MAX_SIGS; i++) {
		const struct dkim_sig_result *res = dkim_verify_result(m->dkim, i);
		dk[i] = (struct dmarc_dkim){res->domain, res->result == DKIM_RESULT_PASS};
	}
	const struct dmarc_input in = {
	    .from_domain = msgauth_domain(m->from),
	    .spf_domain = m->mail_from[0] ? msgauth_domain(m->mail_from) : m->helo,
	    .spf_pass = m->spf.done && m->spf.out.result == SPF_PASS,
	    .n_dkim = n < DKIM_VERIFY_MAX_SIGS ? n : DKIM_VERIFY_MAX_SIGS,
	    .dkim = dk,
	    .roll = (unsigned)(arc4random_uniform(100)),
	};
	/* -EINVAL: a From domain DMARC cannot use, which d records as permerror */
	int r = dmarc_check(m->env->dns, m->env->psl, &in, &d);
	if ((r < 0 && r != -EINVAL) || (r = dmarc_authres(&d, text, sizeof(text))) < 0 ||
	    (r = authres_add(ar, text)) < 0)
		return r;
	(*nm)++;
	o->dmarc = dmarc_result_name(d.result);
	msgauth_dmarc_verdict(m, o, &d);
	return 0;
}

static int
msgauth_received_spf(struct msgauth *m, struct msgauth_outcome *o)
{
	char text[SPF_HEADER_MAX + 1];
	if (!m->env->cfg->received_spf || !m->spf.done)
		return 0;
	text[0] = ' ';
	int r = spf_header_received(&m->spf.req, &m->spf.out, m->env->authserv_id, text + 1,
	                            sizeof(text) - 1);
	return r < 0 ? r : msgauth_field(o, "Received-SPF", text, strlen(text));
}

static int
msgauth_finish_verifying(struct msgauth *m, struct msgauth_outcome *o)
{
	_cleanup_buf_ struct buf ar = BUF_INIT(64u << 10);
	size_t nm = 0;
	int r = authres_begin(&ar, m->env->authserv_id);
	dns_deadline_set(m->deadline_ms);
	if (r >= 0)
		r = dkim_verify_finish(m->dkim);
	if (r >= 0)
		r = dk_verify_finish(m->dk);
	if (m->thread_running) {
		pthread_join(m->thread, NULL);
		m->thread_running = false;
	}
	if (r >= 0)
		r = msgauth_add_spf(m, o, &ar, &nm);
	if (r >= 0)
		r = msgauth_add_senderid(m, o, &ar, &nm);
	if (r >= 0)
		r = msgauth_add_dkim(m, o, &ar, &nm);
	if (r >= 0)
		r = msgauth_add_dmarc(m, o, &ar, &nm);
	dns_deadline_set(0);
	if (r >= 0)
		r = authres_finish(&ar, nm);
	if (r >= 0)
		r = msgauth_field(o, "Authentication-Results", ar.data, ar.len);
	return r < 0 ? r : msgauth_received_spf(m, o);
}

int
msgauth_eom(struct msgauth *m, struct msgauth_outcome *o)
{
	*o = (struct msgauth_outcome){.verdict = MSGAUTH_ACCEPT};
	buf_init(&o->text, 4u << 20);
	memcpy(o->remove, m->remove, m->nremove * sizeof(m->remove[0]));
	o->nremove = m->nremove;
	/* deleting the last first keeps the earlier indices valid */
	for (size_t i = 0; i < o->nremove / 2; i++) {
		unsigned t = o->remove[i];
		o->remove[i] = o->remove[o->nremove - 1 - i];
		o->remove[o->nremove - 1 - i] = t;
	}
	int r = m->signer ? msgauth_finish_signing(m, o) : 0;
	if (r >= 0 && m->verify)
		r = msgauth_finish_verifying(m, o);
	return r;
}

void
msgauth_outcome_free(struct msgauth_outcome *o)
{
	buf_free(&o->text);
}
