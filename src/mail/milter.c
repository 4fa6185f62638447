#include "milter.h"

#include "authres.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "dmarc_psl.h"
#include "milter_keys.h"
#include "msgauth.h"
#include "rfc5322.h"
#include "spf_eval.h"

#include <errno.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One loaded configuration; connections hold a reference for their whole life. */
struct milter_conf {
	atomic_int refs;
	struct milter_cfg cfg;
	struct dns_resolver *dns;
	struct dmarc_psl *psl;
	struct milter_keys *keys;
	struct dkim_key_cache *key_cache;
	char authserv_id[AUTHRES_ID_MAX];
	struct msgauth_env env;
};

enum { MILTER_LAT_BUCKETS = 10 };
static const unsigned milter_lat_ms[MILTER_LAT_BUCKETS] = {1,   5,   10,   25,   50,
                                                           100, 250, 1000, 5000, 30000};

#define MILTER_METHODS 6
#define MILTER_RESULTS 9
static const char *const milter_methods[MILTER_METHODS] = {"spf",  "helo",       "sender-id",
                                                           "dkim", "domainkeys", "dmarc"};
static const char *const milter_results[MILTER_RESULTS] = {
    "none", "pass", "fail", "softfail", "neutral", "temperror", "permerror", "policy", "other"};

struct milter_stats {
	_Atomic int64_t results[MILTER_METHODS][MILTER_RESULTS];
	_Atomic int64_t verdicts[4];
	_Atomic int64_t lat[MILTER_LAT_BUCKETS + 1];
	_Atomic int64_t lat_sum_us, messages, signatures, errors;
};

struct milter {
	pthread_mutex_t lock;
	struct milter_conf *conf;
	pthread_t thread;
	bool running;
	char *listen;
};

/* static: libmilter's threads may still end a message while the milter stops */
static struct milter_stats milter_stats;

/* libmilter's callbacks carry no user pointer: the process's one milter. */
static struct milter *milter_self;

struct milter_conn {
	struct milter_conf *conf;
	struct net_addr client;
	char helo[DNS_NAME_MAX + 2];
	char mail_from[SPF_SENDER_MAX];
	bool leadspc; /* the MTA sends (and takes) header values with their leading space */
	struct msgauth *msg;
	uint64_t t0;
	bool failed; /* an internal error in this message: on-error decides */
};

static void
milter_conf_unref(struct milter_conf *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	dns_resolver_free(c->dns);
	dmarc_psl_free(c->psl);
	milter_keys_free(c->keys);
	dkim_key_cache_free(c->key_cache);
	cfg_free(&milter_config_schema, &c->cfg);
	free(c);
}

DEFINE_CLEANUP_FUNC(struct milter_conf, milter_conf_unref)

static int
milter_conf_load(const struct milter_cfg *cfg, const struct dns_options *dns,
                 struct milter_conf **out, char *why, size_t whylen)
{
	_cleanup_(milter_conf_unrefp) struct milter_conf *c = calloc(1, sizeof(*c));
	_cleanup_free_ char *dnserr = NULL;
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	int r = cfg_copy(&milter_config_schema, &c->cfg, cfg);
	if (r < 0)
		return r;
	if (cfg->authserv_id)
		snprintf(c->authserv_id, sizeof(c->authserv_id), "%s", cfg->authserv_id);
	else if (gethostname(c->authserv_id, sizeof(c->authserv_id) - 1) < 0)
		snprintf(c->authserv_id, sizeof(c->authserv_id), "localhost");
	if (!authres_valid_id(c->authserv_id)) {
		snprintf(why, whylen, "authserv-id \"%.64s\" is not a token", c->authserv_id);
		return -EINVAL;
	}
	if ((r = milter_keys_load(cfg, &c->keys, why, whylen)) < 0)
		return r;
	if ((r = dmarc_psl_load(cfg->public_suffix_list, 0, &c->psl)) < 0) {
		snprintf(why, whylen, "%s: %s", cfg->public_suffix_list, strerror(-r));
		return r;
	}
	if ((r = dkim_key_cache_new(&c->key_cache)) < 0)
		return r;
	if ((r = dns_resolver_open(dns, &c->dns, &dnserr)) < 0) {
		snprintf(why, whylen, "DNS: %s", dnserr ? dnserr : strerror(-r));
		return r;
	}
	c->env = (struct msgauth_env){.cfg = &c->cfg,
	                              .dns = c->dns,
	                              .psl = c->psl,
	                              .keys = c->keys,
	                              .key_cache = c->key_cache,
	                              .authserv_id = c->authserv_id};
	*out = TAKE_PTR(c);
	return 0;
}

static struct milter_conf *
milter_conf_get(struct milter *m)
{
	pthread_mutex_lock(&m->lock);
	struct milter_conf *c = m->conf;
	atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&m->lock);
	return c;
}

static struct milter_conn *
milter_conn(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* The connection's state, made at the first callback (negotiation, or connect for an MTA that
 * does not negotiate). */
static struct milter_conn *
milter_conn_make(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);
	if (c || !milter_self || !(c = calloc(1, sizeof(*c))))
		return c;
	c->conf = milter_conf_get(milter_self);
	smfi_setpriv(ctx, c);
	return c;
}

static sfsistat
milter_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                 unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
                 unsigned long *pf3)
{
	(void)f2, (void)f3;
	/* DATA is not skipped: Postfix sends its macros anyway, and without the command behind
	 * them nothing answers, so its next write waits out a delayed ACK (40 ms a message) */
	const unsigned long skip = SMFIP_NORCPT | SMFIP_NOUNKNOWN;
	struct milter_conn *c = milter_conn_make(ctx);
	if (!c)
		return SMFIS_TEMPFAIL;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
	*pf1 = f1 & (skip | SMFIP_HDR_LEADSPC);
	*pf2 = *pf3 = 0;
	c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
	return SMFIS_CONTINUE;
}

static sfsistat
milter_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	(void)hostname;
	struct milter_conn *c = milter_conn_make(ctx);
	if (!c)
		return SMFIS_TEMPFAIL;
	c->client = (struct net_addr){0};
	/* Postfix's own submissions (non_smtpd_milters) come without an address */
	if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		net_addr_from_sockaddr(sa,
		                       sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                                : sizeof(struct sockaddr_in6),
		                       &c->client);
	c->client.port = 0;
	net_addr_normalize(&c->client);
	return SMFIS_CONTINUE;
}

static sfsistat
milter_helo(SMFICTX *ctx, char *helo)
{
	struct milter_conn *c = milter_conn(ctx);
	if (c)
		snprintf(c->helo, sizeof(c->helo), "%s", helo ? helo : "");
	return SMFIS_CONTINUE;
}

/* "<a@b>" (with ESMTP parameters in argv[1..]) to "a@b"; "<>" to "". */
static void
milter_path(const char *arg, char *out, size_t size)
{
	size_t n = strlen(arg);
	if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
		arg++;
		n -= 2;
	}
	snprintf(out, size, "%.*s", (int)n, arg);
}

/* The message in progress is over (ended, aborted, or a new MAIL FROM). */
static void
milter_end_message(struct milter_conn *c)
{
	msgauth_free(c->msg);
	c->msg = NULL;
}

static sfsistat
milter_envfrom(SMFICTX *ctx, char **argv)
{
	struct milter_conn *c = milter_conn(ctx);
	if (!c)
		return SMFIS_TEMPFAIL;
	milter_end_message(c);
	c->failed = false;
	c->t0 = dns_monotonic_ms();
	milter_path(argv && argv[0] ? argv[0] : "", c->mail_from, sizeof(c->mail_from));
	const char *auth = smfi_getsymval(ctx, "{auth_authen}");
	const struct msgauth_envelope e = {.client = c->client,
	                                   .helo = c->helo,
	                                   .mail_from = c->mail_from,
	                                   .authenticated = auth && *auth};
	c->failed = msgauth_begin(&c->conf->env, &e, &c->msg) < 0;
	return SMFIS_CONTINUE;
}

static sfsistat
milter_header(SMFICTX *ctx, char *name, char *value)
{
	struct milter_conn *c = milter_conn(ctx);
	if (!c || !c->msg || c->failed)
		return SMFIS_CONTINUE;
	/* without SMFIP_HDR_LEADSPC the MTA dropped the space after the colon */
	_cleanup_buf_ struct buf spaced = BUF_INIT(RFC5322_MAX_BYTES);
	if (!c->leadspc && buf_printf(&spaced, " %s", value) < 0)
		c->failed = true;
	else
		c->failed =
		    msgauth_header(c->msg, name, c->leadspc ? value : buf_cstr(&spaced)) < 0;
	return SMFIS_CONTINUE;
}

static sfsistat
milter_eoh(SMFICTX *ctx)
{
	struct milter_conn *c = milter_conn(ctx);
	if (c && c->msg && !c->failed)
		c->failed = msgauth_eoh(c->msg) < 0;
	return SMFIS_CONTINUE;
}

static sfsistat
milter_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	struct milter_conn *c = milter_conn(ctx);
	if (c && c->msg && !c->failed)
		c->failed = msgauth_body(c->msg, (const char *)data, len) < 0;
	return SMFIS_CONTINUE;
}

static int
milter_result_index(const char *r)
{
	for (int i = 0; r && i < MILTER_RESULTS - 1; i++)
		if (!strcmp(milter_results[i], r))
			return i;
	return MILTER_RESULTS - 1;
}

static void
milter_count(struct milter_stats *s, const struct msgauth_outcome *o, uint64_t ms)
{
	const char *const res[MILTER_METHODS] = {o->spf,  o->helo,       o->senderid,
	                                         o->dkim, o->domainkeys, o->dmarc};
	for (size_t i = 0; i < MILTER_METHODS; i++)
		if (res[i])
			atomic_fetch_add(&s->results[i][milter_result_index(res[i])], 1);
	atomic_fetch_add(&s->verdicts[o->verdict], 1);
	atomic_fetch_add(&s->signatures, (int64_t)o->nsig);
	atomic_fetch_add(&s->messages, 1);
	atomic_fetch_add(&s->lat_sum_us, (int64_t)ms * 1000);
	size_t b = 0;
	while (b < MILTER_LAT_BUCKETS && ms > milter_lat_ms[b])
		b++;
	atomic_fetch_add(&s->lat[b], 1);
}

/* Postfix takes multi-line header values with LF alone between the lines. */
static int
milter_insert(SMFICTX *ctx, const struct milter_conn *c, const struct msgauth_outcome *o,
              const struct msgauth_field *f)
{
	_cleanup_buf_ struct buf v = BUF_INIT(o->text.len + 1);
	const char *p = o->text.data + f->value_off, *end = p + f->value_len;
	if (!c->leadspc && p < end && *p == ' ')
		p++;
	for (; p < end; p++)
		if (*p != '\r' && buf_append(&v, p, 1) < 0)
			return -ENOMEM;
	return smfi_insheader(ctx, 0, (char *)f->name, (char *)buf_cstr(&v)) == MI_SUCCESS ? 0
	                                                                                   : -EIO;
}

static sfsistat
milter_apply(SMFICTX *ctx, struct milter_conn *c, struct msgauth_outcome *o)
{
	for (size_t i = 0; i < o->nremove; i++)
		smfi_chgheader(ctx, "Authentication-Results", (int)o->remove[i], NULL);
	/* each goes on top: the last first, so they read in order */
	for (size_t i = o->nfields; i-- > 0;)
		if (milter_insert(ctx, c, o, &o->fields[i]) < 0)
			return SMFIS_TEMPFAIL;
	switch (o->verdict) {
	case MSGAUTH_REJECT:
		smfi_setreply(ctx, o->rcode, o->xcode, o->reply);
		return SMFIS_REJECT;
	case MSGAUTH_TEMPFAIL:
		smfi_setreply(ctx, o->rcode, o->xcode, o->reply);
		return SMFIS_TEMPFAIL;
	case MSGAUTH_QUARANTINE:
		smfi_quarantine(ctx, o->reply);
		return SMFIS_CONTINUE;
	case MSGAUTH_ACCEPT:
		break;
	}
	return SMFIS_CONTINUE;
}

static const char *const milter_verdicts[] = {"accept", "reject", "tempfail", "quarantine"};

static void
milter_log(const struct milter_conn *c, const char *qid, const struct msgauth_outcome *o)
{
	char addr[NET_ADDR_STRLEN] = "local";
	if (c->client.family)
		net_addr_format(&c->client, false, addr, sizeof(addr));
	if (o->signed_)
		log_info("milter qid=%s client=%s signed=%zu action=%s", qid, addr, o->nsig,
		         milter_verdicts[o->verdict]);
	else
		log_info("milter qid=%s client=%s spf=%s helo=%s sender-id=%s dkim=%s "
		         "domainkeys=%s dmarc=%s removed=%zu action=%s",
		         qid, addr, o->spf ? o->spf : "-", o->helo ? o->helo : "-",
		         o->senderid ? o->senderid : "-", o->dkim ? o->dkim : "-",
		         o->domainkeys ? o->domainkeys : "-", o->dmarc ? o->dmarc : "-", o->nremove,
		         milter_verdicts[o->verdict]);
}

static sfsistat
milter_failed(struct milter_conn *c, const char *qid)
{
	atomic_fetch_add(&milter_stats.errors, 1);
	bool tempfail = c->conf->cfg.actions.on_error == MILTER_ON_ERROR_TEMPFAIL;
	log_error("milter qid=%s internal error, message %s", qid,
	          tempfail ? "tempfailed" : "accepted unchanged");
	return tempfail ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}

static sfsistat
milter_eom(SMFICTX *ctx)
{
	struct milter_conn *c = milter_conn(ctx);
	const char *qid = smfi_getsymval(ctx, "i");
	struct msgauth_outcome o;
	qid = qid ? qid : "-";
	if (!c)
		return SMFIS_TEMPFAIL;
	if (!c->msg || c->failed || msgauth_eom(c->msg, &o) < 0) {
		milter_end_message(c);
		return milter_failed(c, qid);
	}
	sfsistat s = milter_apply(ctx, c, &o);
	milter_count(&milter_stats, &o, dns_monotonic_ms() - c->t0);
	milter_log(c, qid, &o);
	msgauth_outcome_free(&o);
	milter_end_message(c);
	return s;
}

static sfsistat
milter_abort(SMFICTX *ctx)
{
	struct milter_conn *c = milter_conn(ctx);
	if (c)
		milter_end_message(c);
	return SMFIS_CONTINUE;
}

static sfsistat
milter_close(SMFICTX *ctx)
{
	struct milter_conn *c = milter_conn(ctx);
	if (!c)
		return SMFIS_CONTINUE;
	msgauth_free(c->msg);
	milter_conf_unref(c->conf);
	free(c);
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static int
milter_collect(struct buf *out, void *data)
{
	struct milter_stats *s = data;
	int r = buf_append_str(out, "# HELP rampart_milter_results_total Messages verified, by "
	                            "method and result.\n"
	                            "# TYPE rampart_milter_results_total counter\n");
	for (size_t i = 0; r >= 0 && i < MILTER_METHODS; i++)
		for (size_t j = 0; r >= 0 && j < MILTER_RESULTS; j++)
			r = buf_printf(out,
			               "rampart_milter_results_total{method=\"%s\",result=\"%s\"} "
			               "%lld\n",
			               milter_methods[i], milter_results[j],
			               (long long)atomic_load(&s->results[i][j]));
	if (r >= 0)
		r = buf_append_str(out, "# HELP rampart_milter_messages_total Messages ended, by "
		                        "action.\n# TYPE rampart_milter_messages_total counter\n");
	for (size_t i = 0; r >= 0 && i < 4; i++)
		r = buf_printf(out, "rampart_milter_messages_total{action=\"%s\"} %lld\n",
		               milter_verdicts[i], (long long)atomic_load(&s->verdicts[i]));
	if (r >= 0)
		r = buf_printf(out,
		               "# HELP rampart_milter_signatures_total DKIM signatures made.\n"
		               "# TYPE rampart_milter_signatures_total counter\n"
		               "rampart_milter_signatures_total %lld\n"
		               "# HELP rampart_milter_errors_total Messages with an internal error "
		               "(on-error applied).\n# TYPE rampart_milter_errors_total counter\n"
		               "rampart_milter_errors_total %lld\n"
		               "# HELP rampart_milter_message_seconds From MAIL FROM to the end of "
		               "the message's checks.\n# TYPE rampart_milter_message_seconds "
		               "histogram\n",
		               (long long)atomic_load(&s->signatures),
		               (long long)atomic_load(&s->errors));
	int64_t cum = 0;
	for (size_t b = 0; r >= 0 && b <= MILTER_LAT_BUCKETS; b++) {
		cum += atomic_load(&s->lat[b]);
		if (b < MILTER_LAT_BUCKETS)
			r = buf_printf(out,
			               "rampart_milter_message_seconds_bucket{le=\"%g\"} %lld\n",
			               milter_lat_ms[b] / 1000.0, (long long)cum);
		else
			r = buf_printf(out,
			               "rampart_milter_message_seconds_bucket{le=\"+Inf\"} %lld\n",
			               (long long)cum);
	}
	if (r >= 0)
		r = buf_printf(out,
		               "rampart_milter_message_seconds_sum %.6f\n"
		               "rampart_milter_message_seconds_count %lld\n",
		               (double)atomic_load(&s->lat_sum_us) / 1e6,
		               (long long)atomic_load(&s->messages));
	return r;
}

/*
 * libmilter's smfi_main starts a thread that sigwait()s for SIGHUP, SIGTERM and SIGINT and
 * stops the milter on any of them: SIGHUP would end it instead of reloading, and that thread
 * would race the process's signalfd for every signal. The binary is linked with
 * --wrap=sigwait (libmilter is linked statically), and this is libmilter's only sigwait: it
 * never returns, so the event loop's signalfd receives every signal and decides. Stopping
 * goes through smfi_stop.
 */
int __wrap_sigwait(const sigset_t *set, int *sig);
int
__wrap_sigwait(const sigset_t *set, int *sig)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
	(void)set, (void)sig;
	pthread_mutex_lock(&lock);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return 0;
}

/*
 * libmilter writes a reply in several small writes (an insert, then the final reply): with
 * Nagle's algorithm the second waits for the MTA's delayed ACK, 40 ms a message. Linked with
 * --wrap=accept, and libmilter is the binary's only caller of accept (ours use accept4).
 */
int __real_accept(int fd, struct sockaddr *sa, socklen_t *len);
int __wrap_accept(int fd, struct sockaddr *sa, socklen_t *len);
int
__wrap_accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	int c = __real_accept(fd, sa, len), one = 1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (c >= 0 && getsockname(c, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

static void *
milter_thread(void *arg)
{
	(void)arg;
	if (smfi_main() != MI_SUCCESS)
		log_error("milter: libmilter stopped with an error");
	return NULL;
}

static struct smfiDesc milter_desc = {
    .xxfi_name = "rampart",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
    .xxfi_connect = milter_connect,
    .xxfi_helo = milter_helo,
    .xxfi_envfrom = milter_envfrom,
    .xxfi_header = milter_header,
    .xxfi_eoh = milter_eoh,
    .xxfi_body = milter_body,
    .xxfi_eom = milter_eom,
    .xxfi_abort = milter_abort,
    .xxfi_close = milter_close,
    .xxfi_negotiate = milter_negotiate,
};

/* A unix socket another process still listens on is busy: smfi_opensocket would unlink it
 * and quietly take its place. */
static bool
milter_unix_busy(const char *spec)
{
	const char *path = !strncmp(spec, "unix:", 5)    ? spec + 5
	                   : !strncmp(spec, "local:", 6) ? spec + 6
	                                                 : NULL;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (!path || strlen(path) >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, strlen(path));
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
}

static int
milter_open(const struct milter_cfg *cfg)
{
	if (milter_unix_busy(cfg->milter.listen))
		return -EADDRINUSE;
	int timeout = (int)(cfg->milter.timeout_ms / 1000);
	if (smfi_setconn(cfg->milter.listen) != MI_SUCCESS ||
	    smfi_settimeout(timeout > 0 ? timeout : 1) != MI_SUCCESS ||
	    smfi_register(milter_desc) != MI_SUCCESS)
		return -EINVAL;
	/* a unix socket left by a previous run is replaced */
	return smfi_opensocket(true) == MI_SUCCESS ? 0 : -EADDRINUSE;
}

int
milter_postfix_spec(const char *spec, char *out, size_t size)
{
	const char *at = strchr(spec, '@');
	bool v6 = !strncmp(spec, "inet6:", 6);
	size_t skip = v6 ? 6 : 5;
	int n;
	if ((v6 || !strncmp(spec, "inet:", 5)) && at)
		n = snprintf(out, size, v6 ? "inet:[%s]:%.*s" : "inet:%s:%.*s", at + 1,
		             (int)(at - spec - skip), spec + skip);
	else
		n = snprintf(out, size, "%s", spec);
	return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

int
milter_start(const struct milter_cfg *cfg, const struct dns_options *dns, struct metrics *metrics,
             struct milter **out, char *why, size_t whylen)
{
	if (milter_self)
		return -EBUSY;
	struct milter *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	int r = milter_conf_load(cfg, dns, &m->conf, why, whylen);
	if (r >= 0 && !(m->listen = strdup(cfg->milter.listen)))
		r = -ENOMEM;
	if (r >= 0 && (r = milter_open(cfg)) < 0)
		snprintf(why, whylen, "cannot listen on %s", cfg->milter.listen);
	if (r >= 0 && metrics)
		r = metrics_add_collector(metrics, milter_collect, &milter_stats);
	if (r >= 0) {
		milter_self = m;
		if ((r = -pthread_create(&m->thread, NULL, milter_thread, NULL)) < 0)
			milter_self = NULL;
	}
	if (r < 0) {
		milter_conf_unref(m->conf);
		free(m->listen);
		free(m);
		return r;
	}
	m->running = true;
	*out = m;
	return 0;
}

int
milter_reload(struct milter *m, const struct milter_cfg *cfg, const struct dns_options *dns,
              char *why, size_t whylen)
{
	struct milter_conf *next, *old;
	int r = milter_conf_load(cfg, dns, &next, why, whylen);
	if (r < 0)
		return r;
	if (strcmp(cfg->milter.listen, m->listen))
		log_warn("mail.milter.listen changed; it takes effect at the next start");
	pthread_mutex_lock(&m->lock);
	old = m->conf;
	m->conf = next;
	pthread_mutex_unlock(&m->lock);
	milter_conf_unref(old);
	return 0;
}

void
milter_stop(struct milter *m)
{
	if (!m)
		return;
	if (m->running) {
		smfi_stop();
		pthread_join(m->thread, NULL);
	}
	milter_self = NULL;
	milter_conf_unref(m->conf);
	pthread_mutex_destroy(&m->lock);
	free(m->listen);
	free(m);
}
