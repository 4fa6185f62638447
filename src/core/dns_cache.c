/*
 * The answer cache: a chained hash table of answers with a least-recently-used list through
 * them. Expired entries are dropped when looked up or evicted; the entry and byte caps bound
 * the memory whatever the TTLs.
 */
#include "dns_cache.h"

#include "dns_zone.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS_MAX (1u << 20)

struct entry {
	struct entry *hnext;       /* bucket chain */
	struct entry *prev, *next; /* LRU list: head is the most recently used */
	uint64_t expires_ms;
	size_t bytes;
	uint16_t type;
	struct dns_answer ans;
	char name[DNS_NAME_MAX];
};

struct dns_cache {
	pthread_mutex_t lock;
	struct entry **bucket;
	size_t mask; /* buckets - 1, a power of two */
	size_t max_entries, max_bytes, entries, bytes;
	struct entry *head, *tail;
	uint64_t hits, misses;
};

int
dns_cache_new(size_t max_entries, size_t max_bytes, struct dns_cache **out)
{
	struct dns_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max_entries = max_entries ? max_entries : DNS_CACHE_ENTRIES_DEFAULT;
	if (c->max_entries > DNS_CACHE_ENTRIES_MAX)
		c->max_entries = DNS_CACHE_ENTRIES_MAX;
	c->max_bytes = max_bytes ? max_bytes : DNS_CACHE_BYTES_MAX;
	size_t n = 16;
	while (n < c->max_entries && n < BUCKETS_MAX)
		n <<= 1;
	if (!(c->bucket = calloc(n, sizeof(*c->bucket)))) {
		free(c);
		return -ENOMEM;
	}
	c->mask = n - 1;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void
entry_free(struct entry *e)
{
	dns_answer_free(&e->ans);
	free(e);
}

void
dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->bucket);
	free(c);
}

/* FNV-1a over the name and the type */
static size_t
key_hash(const char *name, uint16_t type)
{
	uint64_t h = 14695981039346656037u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	h = (h ^ (type & 0xff)) * 1099511628211u;
	h = (h ^ (type >> 8)) * 1099511628211u;
	return (size_t)h;
}

static struct entry **
slot_of(struct dns_cache *c, const char *name, uint16_t type)
{
	struct entry **s = &c->bucket[key_hash(name, type) & c->mask];
	while (*s && ((*s)->type != type || strcmp((*s)->name, name) != 0))
		s = &(*s)->hnext;
	return s;
}

static void
lru_unlink(struct dns_cache *c, struct entry *e)
{
	*(e->prev ? &e->prev->next : &c->head) = e->next;
	*(e->next ? &e->next->prev : &c->tail) = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct dns_cache *c, struct entry *e)
{
	e->next = c->head;
	*(c->head ? &c->head->prev : &c->tail) = e;
	c->head = e;
}

static void
entry_drop(struct dns_cache *c, struct entry *e)
{
	struct entry **s = slot_of(c, e->name, e->type);
	*s = e->hnext;
	lru_unlink(c, e);
	c->entries--;
	c->bytes -= e->bytes;
	entry_free(e);
}

static int
answer_copy(const struct dns_answer *a, struct dns_answer *out)
{
	int r = dns_answer_set(out, a->status, a->rr, a->n);
	out->secure = a->secure;
	return r;
}

int
dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type, uint64_t now_ms,
              bool count, struct dns_answer *out)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	struct entry *e = *slot_of(c, name, (uint16_t)type);
	if (e && e->expires_ms <= now_ms) {
		entry_drop(c, e);
		e = NULL;
	}
	if (e && (r = answer_copy(&e->ans, out)) == 0) {
		uint64_t left = (e->expires_ms - now_ms + 999) / 1000;
		for (size_t i = 0; i < out->n; i++)
			out->rr[i].ttl = (uint32_t)left;
		lru_unlink(c, e);
		lru_push(c, e);
		r = 1;
	}
	if (count && r >= 0)
		*(r ? &c->hits : &c->misses) += 1;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static size_t
answer_bytes(const struct dns_answer *a)
{
	size_t b = a->n * sizeof(*a->rr);
	for (size_t i = 0; i < a->n; i++)
		b += dns_rr_bytes(&a->rr[i]);
	return b;
}

static bool
cacheable(const struct dns_cache *c, const struct dns_answer *a, uint32_t ttl)
{
	if (ttl == 0 ||
	    (a->status != DNS_OK && a->status != DNS_NODATA && a->status != DNS_NXDOMAIN))
		return false;
	return answer_bytes(a) <= c->max_bytes / 4;
}

int
dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type, const struct dns_answer *a,
              uint32_t ttl, uint64_t now_ms)
{
	if (!cacheable(c, a, ttl))
		return 0;
	/* the copy is made before the lock: only table updates happen under it */
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (answer_copy(a, &e->ans) < 0) {
		free(e);
		return -ENOMEM;
	}
	size_t len = strlen(name);
	memcpy(e->name, name, len < DNS_NAME_MAX ? len + 1 : DNS_NAME_MAX);
	e->name[DNS_NAME_MAX - 1] = '\0';
	e->type = (uint16_t)type;
	e->bytes = answer_bytes(a);
	e->expires_ms =
	    now_ms + 1000 * (uint64_t)(ttl < DNS_CACHE_TTL_MAX ? ttl : DNS_CACHE_TTL_MAX);

	pthread_mutex_lock(&c->lock);
	struct entry *old = *slot_of(c, e->name, e->type);
	if (old)
		entry_drop(c, old);
	while (c->tail && (c->entries >= c->max_entries || c->bytes + e->bytes > c->max_bytes))
		entry_drop(c, c->tail);
	struct entry **s = slot_of(c, e->name, e->type);
	*s = e;
	lru_push(c, e);
	c->entries++;
	c->bytes += e->bytes;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void
dns_cache_stats(struct dns_cache *c, struct dns_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->hits = c->hits;
	out->misses = c->misses;
	out->entries = c->entries;
	out->bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
}
