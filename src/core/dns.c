/*
 * The resolver: zone records first (dns_zone.c), then libunbound. Queries run on one ub_ctx
 * in its threaded async mode; a caller waits on the context's fd with poll so that every
 * query has a hard deadline, whatever unbound's own retry schedule is. Several threads share
 * the context: one of them polls at a time and runs ub_process, which completes the others'
 * queries too; the rest sleep on a condition variable.
 *
 * Every network query is an entry of r->inflight (under r->lock) until its answer is taken:
 * a second caller for the same name and type, or a dns_query after a dns_prefetch, waits for
 * it instead of sending another. Answers enter the cache (dns_cache.c, its own lock) in the
 * completion callback, so a prefetched answer lands there whoever polls.
 */
#include "dns.h"

#include "cleanup.h"
#include "dns_cache.h"
#include "dns_zone.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

#define DNS_TIMEOUT_DEFAULT_MS 3000
#define DNS_ROOT_KEY "/usr/share/dns/root.key"
#define DNS_CLASS_IN 1
#define DNS_RCODE_NXDOMAIN 3
#define DNS_INFLIGHT_MAX 4096

struct ub_query;

struct dns_resolver {
	struct dns_zone *zone;
	struct ub_ctx *ub; /* NULL: zone only */
	uint64_t timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* a poller finished a round */
	bool polling;              /* a thread is in poll() on ub_fd */
	struct ub_query *inflight; /* under lock */
	size_t n_inflight;
	struct dns_cache *cache; /* NULL: none */
	atomic_uint_fast64_t joined;
};

struct ub_query {
	struct ub_query *next; /* r->inflight */
	struct dns_resolver *r;
	uint64_t expires_ms; /* a query nobody waits for is cancelled after this */
	unsigned waiters;    /* dns_query callers waiting; 0: freed when answered */
	int id;
	bool done;
	int err; /* when done: converting the answer failed (-ENOMEM) */
	enum dns_type type;
	struct dns_answer ans; /* when done */
	char name[DNS_NAME_MAX];
};

static _Thread_local uint64_t thread_deadline_ms;

uint64_t
dns_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
dns_deadline_set(uint64_t deadline_ms)
{
	thread_deadline_ms = deadline_ms;
}

uint64_t
dns_deadline_get(void)
{
	return thread_deadline_ms;
}

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "NOERROR";
	case DNS_NODATA:
		return "NODATA";
	case DNS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_TIMEOUT:
		return "TIMEOUT";
	case DNS_SERVFAIL:
		return "SERVFAIL";
	}
	return "UNKNOWN";
}

int
dns_reverse_name(const struct net_addr *a, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char name[DNS_NAME_MAX];
	size_t k = 0;
	if (a->family == AF_INET) {
		const uint8_t *b = a->u.bytes;
		snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
	} else if (a->family == AF_INET6) {
		for (int i = 15; i >= 0; i--) {
			name[k++] = hex[a->u.bytes[i] & 0xf];
			name[k++] = '.';
			name[k++] = hex[a->u.bytes[i] >> 4];
			name[k++] = '.';
		}
		memcpy(name + k, "ip6.arpa", sizeof("ip6.arpa"));
	} else {
		return -EAFNOSUPPORT;
	}
	size_t need = strlen(name) + 1;
	if (need > len)
		return -ENOBUFS;
	memcpy(buf, name, need);
	return 0;
}

static int
resolver_new(struct dns_resolver **out)
{
	pthread_condattr_t attr;
	struct dns_resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->timeout_ms = DNS_TIMEOUT_DEFAULT_MS;
	/* deadlines are on the monotonic clock: a clock step must not stretch a query */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (!r)
		return;
	if (r->ub)
		ub_ctx_delete(r->ub);
	for (struct ub_query *q = r->inflight, *next; q; q = next) {
		next = q->next;
		dns_answer_free(&q->ans);
		free(q);
	}
	dns_cache_free(r->cache);
	dns_zone_free(r->zone);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

DEFINE_CLEANUP_FUNC(struct dns_resolver, dns_resolver_free)

int
dns_resolver_from_zone(struct dns_zone *zone, struct dns_resolver **out)
{
	struct dns_resolver *r;
	int e = resolver_new(&r);
	if (e < 0) {
		dns_zone_free(zone);
		return e;
	}
	r->zone = zone;
	*out = r;
	return 0;
}

int
dns_resolver_set_txt(struct dns_resolver *r, const char *owner, const char *data, size_t len)
{
	int e = r->zone ? 0 : dns_zone_new(&r->zone);
	return e ?: dns_zone_replace_txt(r->zone, owner, data, len);
}

/* "ADDR", "ADDR:PORT", "[v6]:PORT" -> unbound's "ADDR@PORT". */
static int
ub_add_server(struct ub_ctx *ub, const char *server)
{
	struct net_addr a;
	char addr[NET_ADDR_STRLEN], fwd[NET_ADDR_STRLEN + 8];
	if (net_addr_parse(server, NET_PORT_OPTIONAL, &a) < 0 ||
	    net_addr_format(&(struct net_addr){.family = a.family, .u = a.u}, false, addr,
	                    sizeof(addr)) < 0)
		return -EINVAL;
	if (a.port)
		snprintf(fwd, sizeof(fwd), "%s@%u", addr, a.port);
	else
		snprintf(fwd, sizeof(fwd), "%s", addr);
	return ub_ctx_set_fwd(ub, fwd) == 0 ? 0 : -EINVAL;
}

/*
 * With forwarders, the reverse zones of private and documentation ranges (RFC 6303) and the
 * test. domain are theirs to answer, as a LAN's resolver often does: unbound would otherwise say
 * NXDOMAIN itself. Those zones are unsigned by nature, hence also insecure-lan-zones.
 */
static int
ub_forward_lan_zones(struct ub_ctx *ub)
{
	if (ub_ctx_set_option(ub, "unblock-lan-zones:", "yes") != 0 ||
	    ub_ctx_set_option(ub, "insecure-lan-zones:", "yes") != 0)
		return -EIO;
	/* RFC 6761's test. is for labs: a forwarder may well serve it, as it may the LAN's
	 * reverse zones; unbound would answer NXDOMAIN itself (its default local-zone; "nodefault"
	 * does not undo that through ub_ctx_set_option, "transparent" does) */
	if (ub_ctx_set_option(ub, "local-zone:", "test. transparent") != 0 ||
	    ub_ctx_set_option(ub, "domain-insecure:", "test.") != 0)
		return -EIO;
	return 0;
}

static int
ub_trust(struct ub_ctx *ub, const struct dns_options *opt)
{
	if (access(DNS_ROOT_KEY, R_OK) == 0 && ub_ctx_add_ta_file(ub, DNS_ROOT_KEY) != 0)
		return -EIO;
	if (!opt->trust_anchor)
		return 0;
	if (access(opt->trust_anchor, R_OK) < 0)
		return -errno;
	return ub_ctx_add_ta_file(ub, opt->trust_anchor) == 0 ? 0 : -EINVAL;
}

static int
ub_setup(struct ub_ctx *ub, const struct dns_options *opt)
{
	bool forwarding = true;
	/* the default async mode forks a process: no place for that in a threaded daemon */
	if (ub_ctx_async(ub, 1) != 0)
		return -EIO;
	if (opt->server) {
		for (const char *const *s = opt->server; *s; s++) {
			int r = ub_add_server(ub, *s);
			if (r < 0)
				return r;
		}
	} else {
		/* without resolv.conf unbound recurses from the root itself: still useful */
		forwarding = ub_ctx_resolvconf(ub, NULL) == 0;
	}
	if (forwarding && ub_forward_lan_zones(ub) < 0)
		return -EIO;
	return opt->dnssec ? ub_trust(ub, opt) : 0;
}

int
dns_resolver_open(const struct dns_options *opt, struct dns_resolver **out, char **err)
{
	_cleanup_(dns_resolver_freep) struct dns_resolver *r = NULL;
	int e = resolver_new(&r);
	if (e < 0)
		return e;
	if (opt->timeout_ms)
		r->timeout_ms = opt->timeout_ms;
	if (opt->zone_file) {
		if ((e = dns_zone_new(&r->zone)) < 0)
			return e;
		if (opt->zone_origin && dns_zone_set_origin(r->zone, opt->zone_origin) < 0)
			return -EDOM;
		if ((e = dns_zone_load_file(r->zone, opt->zone_file, err)) < 0)
			return e;
	}
	if (!opt->no_network) {
		if (!(r->ub = ub_ctx_create()))
			return -ENOMEM;
		if ((e = ub_setup(r->ub, opt)) < 0)
			return e;
		if (!opt->no_cache && (e = dns_cache_new(opt->cache_entries, 0, &r->cache)) < 0)
			return e;
	}
	*out = TAKE_PTR(r);
	return 0;
}

/* Wire-format rdata, read with a bounds check on every byte. */

struct rd {
	const uint8_t *p;
	size_t len, pos;
};

/* An uncompressed name (unbound hands rdata decompressed); "" for the root. */
static int
rd_name(struct rd *d, char out[DNS_NAME_MAX])
{
	char text[DNS_NAME_MAX];
	size_t o = 0;
	for (;;) {
		if (d->pos >= d->len)
			return -EBADMSG;
		size_t l = d->p[d->pos++];
		if (l == 0)
			break;
		if (l > 63 || l > d->len - d->pos || o + l + 1 >= DNS_NAME_MAX)
			return -EBADMSG;
		if (o > 0)
			text[o++] = '.';
		memcpy(text + o, d->p + d->pos, l);
		if (memchr(text + o, '.', l))
			return -EBADMSG;
		o += l;
		d->pos += l;
	}
	text[o] = '\0';
	if (o == 0) {
		out[0] = '\0';
		return 0;
	}
	return memchr(text, '\0', o) || dns_name_normalize(text, out) < 0 ? -EBADMSG : 0;
}

/* The strings concatenated, then the NUL, then each string's length (one byte each). */
static int
rd_txt(struct rd *d, struct dns_rr *rr)
{
	size_t total = 0, nstr = 0;
	for (size_t pos = 0; pos < d->len; pos += 1 + d->p[pos], nstr++) {
		if (d->p[pos] > d->len - pos - 1)
			return -EBADMSG;
		total += d->p[pos];
	}
	if (d->len == 0 || total >= DNS_TXT_MAX)
		return -EBADMSG;
	char *data = malloc(total + 1 + nstr);
	if (!data)
		return -ENOMEM;
	size_t o = 0, k = 0;
	for (size_t pos = 0; pos < d->len; pos += 1 + d->p[pos]) {
		memcpy(data + o, d->p + pos + 1, d->p[pos]);
		o += d->p[pos];
		data[total + 1 + k++] = (char)d->p[pos];
	}
	data[o] = '\0';
	rr->u.txt = (struct dns_bytes){.data = data, .len = o, .nstr = nstr};
	d->pos = d->len;
	return 0;
}

/* Least rdata of each type kept raw: the fixed fields before the variable part. */
static size_t
raw_min(uint16_t type)
{
	switch (type) {
	case DNS_T_DS:
	case DNS_T_DNSKEY:
		return 5; /* 4 bytes of fields and a digest or key */
	case DNS_T_TLSA:
		return 4;
	default: /* CAA: flags, the tag's length, a tag of 1 or more */
		return 3;
	}
}

static int
rd_raw(struct rd *d, struct dns_rr *rr)
{
	if (d->len < raw_min(rr->type) || d->len >= DNS_TXT_MAX)
		return -EBADMSG;
	if (rr->type == DNS_T_CAA && (d->p[1] == 0 || d->p[1] > d->len - 2))
		return -EBADMSG;
	char *data = malloc(d->len + 1);
	if (!data)
		return -ENOMEM;
	memcpy(data, d->p, d->len);
	data[d->len] = '\0';
	rr->u.raw = (struct dns_bytes){.data = data, .len = d->len};
	d->pos = d->len;
	return 0;
}

static int
rd_parse(struct rd *d, struct dns_rr *rr)
{
	char rname[DNS_NAME_MAX];
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (d->len != (rr->type == DNS_T_A ? 4u : 16u))
			return -EBADMSG;
		rr->u.addr = (struct net_addr){.family = rr->type == DNS_T_A ? AF_INET : AF_INET6};
		memcpy(rr->u.addr.u.bytes, d->p, d->len);
		d->pos = d->len;
		return 0;
	case DNS_T_MX:
		if (d->len < 3)
			return -EBADMSG;
		rr->u.mx.pref = (uint16_t)(d->p[0] << 8 | d->p[1]);
		d->pos = 2;
		return rd_name(d, rr->u.mx.host);
	case DNS_T_TXT:
	case DNS_T_SPF:
		return rd_txt(d, rr);
	case DNS_T_SRV:
		if (d->len < 7)
			return -EBADMSG;
		rr->u.srv.priority = (uint16_t)(d->p[0] << 8 | d->p[1]);
		rr->u.srv.weight = (uint16_t)(d->p[2] << 8 | d->p[3]);
		rr->u.srv.port = (uint16_t)(d->p[4] << 8 | d->p[5]);
		d->pos = 6;
		return rd_name(d, rr->u.srv.target);
	case DNS_T_DS:
	case DNS_T_DNSKEY:
	case DNS_T_TLSA:
	case DNS_T_CAA:
		return rd_raw(d, rr);
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		return rd_name(d, rr->u.name);
	case DNS_T_SOA: /* the mname is kept; the rest is checked for shape */
		if (rd_name(d, rr->u.name) < 0 || rd_name(d, rname) < 0 || d->len - d->pos != 20)
			return -EBADMSG;
		d->pos = d->len;
		return 0;
	}
	return -EBADMSG;
}

int
dns_rdata_parse(enum dns_type type, const uint8_t *p, size_t len, struct dns_rr *rr)
{
	struct rd d = {.p = p, .len = len};
	*rr = (struct dns_rr){.type = (uint16_t)type};
	int e = rd_parse(&d, rr);
	if (e == 0 && d.pos != d.len) {
		if (dns_type_has_bytes(rr->type))
			free(rr->u.txt.data);
		e = -EBADMSG;
	}
	return e;
}

/* Malformed records are dropped one by one; the rest of the answer stands. */
static int
result_records(const struct ub_result *res, enum dns_type type, struct dns_answer *out)
{
	size_t n = 0;
	while (res->data && res->data[n] && n < DNS_ANSWER_MAX)
		n++;
	if (n == 0)
		return 0;
	if (!(out->rr = calloc(n, sizeof(*out->rr))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct dns_rr *rr = &out->rr[out->n];
		if (res->len[i] < 0)
			continue;
		int e =
		    dns_rdata_parse(type, (const uint8_t *)res->data[i], (size_t)res->len[i], rr);
		if (e == -ENOMEM)
			return e;
		if (e < 0)
			continue;
		rr->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
		out->n++;
	}
	return 0;
}

static int
result_answer(int err, const struct ub_result *res, enum dns_type type, struct dns_answer *out)
{
	*out = (struct dns_answer){.status = DNS_SERVFAIL};
	if (err || !res || res->bogus)
		return 0;
	out->secure = res->secure;
	if (res->rcode != 0 && res->rcode != DNS_RCODE_NXDOMAIN)
		return 0;
	if (res->nxdomain || res->rcode == DNS_RCODE_NXDOMAIN) {
		out->status = DNS_NXDOMAIN;
		return 0;
	}
	int e = res->havedata ? result_records(res, type, out) : 0;
	if (e < 0) {
		dns_answer_free(out);
		return e;
	}
	out->status = out->n > 0 ? DNS_OK : DNS_NODATA;
	return 0;
}

static void
inflight_remove(struct dns_resolver *r, struct ub_query *q)
{
	struct ub_query **p = &r->inflight;
	while (*p != q)
		p = &(*p)->next;
	*p = q->next;
	r->n_inflight--;
	dns_answer_free(&q->ans);
	free(q);
}

/* Seconds to keep an answer: its records' (the smallest), or the negative TTL unbound derived
 * from the SOA (RFC 2308 section 5: min of the SOA's TTL and MINIMUM); 0 when it had none. */
static uint32_t
answer_ttl(const struct ub_result *res, const struct dns_answer *a)
{
	if (a->status == DNS_OK) {
		uint32_t ttl = a->rr[0].ttl;
		for (size_t i = 1; i < a->n; i++)
			ttl = a->rr[i].ttl < ttl ? a->rr[i].ttl : ttl;
		return ttl;
	}
	return res && res->ttl > 0 ? (uint32_t)res->ttl : 0;
}

/* Runs in ub_process, r->lock held. */
static void
ub_done(void *arg, int err, struct ub_result *result)
{
	struct ub_query *q = arg;
	struct dns_resolver *r = q->r;
	q->err = result_answer(err, result, q->type, &q->ans);
	if (q->err == 0 && r->cache)
		(void)dns_cache_put(r->cache, q->name, q->type, &q->ans,
		                    answer_ttl(result, &q->ans), dns_monotonic_ms());
	ub_resolve_free(result);
	q->done = true;
	if (q->waiters == 0)
		inflight_remove(r, q);
}

/* Cancels the queries nobody waits for whose timeout has passed (prefetches not followed). */
static void
inflight_sweep(struct dns_resolver *r, uint64_t now)
{
	for (struct ub_query *q = r->inflight, *next; q; q = next) {
		next = q->next;
		if (q->waiters == 0 && !q->done && q->expires_ms <= now) {
			ub_cancel(r->ub, q->id);
			inflight_remove(r, q);
		}
	}
}

static struct ub_query *
inflight_find(struct dns_resolver *r, const char *name, enum dns_type type)
{
	for (struct ub_query *q = r->inflight; q; q = q->next)
		if (q->type == type && strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

/* Sends a query: 0, -ENOMEM, or -EIO when unbound refuses it. r->lock held. */
static int
inflight_start(struct dns_resolver *r, const char *name, enum dns_type type, uint64_t now,
               struct ub_query **out)
{
	struct ub_query *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = (struct ub_query){.r = r, .type = type, .expires_ms = now + r->timeout_ms};
	memcpy(q->name, name, strlen(name) + 1);
	if (ub_resolve_async(r->ub, name, (int)type, DNS_CLASS_IN, q, ub_done, &q->id) != 0) {
		free(q);
		return -EIO;
	}
	q->next = r->inflight;
	r->inflight = q;
	r->n_inflight++;
	*out = q;
	return 0;
}

/* One round with r->lock held: poll (lock released) and process, or wait for the poller. */
static void
ub_round(struct dns_resolver *r, uint64_t deadline)
{
	uint64_t now = dns_monotonic_ms(), left = now < deadline ? deadline - now : 0;
	if (r->polling) {
		struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
		                      .tv_nsec = (long)(deadline % 1000) * 1000000};
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		return;
	}
	struct pollfd pfd = {.fd = ub_fd(r->ub), .events = POLLIN};
	r->polling = true;
	pthread_mutex_unlock(&r->lock);
	poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	pthread_mutex_lock(&r->lock);
	r->polling = false;
	if (ub_poll(r->ub))
		ub_process(r->ub);
	pthread_cond_broadcast(&r->cond);
}

/* The query's own deadline cut to the thread's budget; 0 when the budget is spent. */
static uint64_t
query_deadline(const struct dns_resolver *r, uint64_t now)
{
	uint64_t d = now + r->timeout_ms, budget = thread_deadline_ms;
	if (budget && budget <= now)
		return 0;
	return budget && budget < d ? budget : d;
}

/* Asks unbound, or joins the same query in flight; out->status TIMEOUT when the deadline
 * passes first. */
static int
ub_query(struct dns_resolver *r, const char *name, enum dns_type type, struct dns_answer *out)
{
	uint64_t now = dns_monotonic_ms(), deadline = query_deadline(r, now);
	int e = 0;
	*out = (struct dns_answer){.status = deadline ? DNS_SERVFAIL : DNS_TIMEOUT};
	if (!deadline)
		return 0;
	pthread_mutex_lock(&r->lock);
	inflight_sweep(r, now);
	struct ub_query *q = inflight_find(r, name, type);
	if (q)
		atomic_fetch_add(&r->joined, 1);
	else if (inflight_start(r, name, type, now, &q) < 0) {
		pthread_mutex_unlock(&r->lock);
		return 0; /* SERVFAIL: a temporary error, whatever the cause */
	}
	q->waiters++;
	while (!q->done && dns_monotonic_ms() < deadline)
		ub_round(r, deadline);
	q->waiters--;
	if (q->done)
		e = q->err ?: dns_answer_set(out, q->ans.status, q->ans.rr, q->ans.n);
	else
		out->status = DNS_TIMEOUT;
	out->secure = q->done && q->ans.secure;
	if (q->waiters == 0) {
		if (!q->done)
			ub_cancel(r->ub, q->id);
		inflight_remove(r, q);
	}
	pthread_mutex_unlock(&r->lock);
	return e;
}

static int
cache_answer(struct dns_resolver *r, const char *name, enum dns_type type, bool count,
             struct dns_answer *out)
{
	if (!r->cache)
		return 0;
	return dns_cache_get(r->cache, name, type, dns_monotonic_ms(), count, out);
}

int
dns_query(struct dns_resolver *r, const char *name, enum dns_type type, struct dns_answer *out)
{
	char norm[DNS_NAME_MAX], next[DNS_NAME_MAX];
	*out = (struct dns_answer){.status = DNS_SERVFAIL};
	if (dns_name_normalize(name, norm) < 0)
		return -EINVAL;
	int e = dns_zone_answer(r->zone, norm, type, r->ub != NULL, out, next);
	if (e != 0)
		return e < 0 ? e : 0;
	if ((e = cache_answer(r, next, type, true, out)) != 0)
		return e < 0 ? e : 0;
	return ub_query(r, next, type, out);
}

int
dns_prefetch(struct dns_resolver *r, const char *name, enum dns_type type)
{
	char norm[DNS_NAME_MAX], next[DNS_NAME_MAX];
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	if (dns_name_normalize(name, norm) < 0)
		return -EINVAL;
	int e = dns_zone_answer(r->zone, norm, type, r->ub != NULL, &a, next);
	if (e != 0)
		return e < 0 ? e : 0;
	if ((e = cache_answer(r, next, type, false, &a)) != 0)
		return e < 0 ? e : 0;
	uint64_t now = dns_monotonic_ms();
	if (!query_deadline(r, now))
		return 0;
	pthread_mutex_lock(&r->lock);
	inflight_sweep(r, now);
	struct ub_query *q = inflight_find(r, next, type);
	if (!q)
		e = r->n_inflight >= DNS_INFLIGHT_MAX ? -EAGAIN
		                                      : inflight_start(r, next, type, now, &q);
	pthread_mutex_unlock(&r->lock);
	return e;
}

void
dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
	*out = (struct dns_stats){0};
	if (r->cache)
		dns_cache_stats(r->cache, out);
	out->joined = atomic_load(&r->joined);
}
