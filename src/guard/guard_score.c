#include "guard_score.h"

#include "core/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct guard_score_event {
	uint64_t at_ms;
	uint32_t danger;
};

struct guard_score_src {
	struct net_cidr key;
	struct guard_score_src *next_hash;
	struct guard_score_src *lru_prev, *lru_next; /* least recently active first */
	uint64_t last_ms;
	unsigned head, n; /* ring of events: head is the oldest */
	struct guard_score_event ev[GUARD_SCORE_EVENTS];
};

struct guard_score {
	struct guard_score_opts o;
	struct guard_score_src **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	struct guard_score_src *lru_head, *lru_tail;
};

int
guard_score_new(const struct guard_score_opts *o, struct guard_score **out)
{
	_cleanup_free_ struct guard_score *s = calloc(1, sizeof(*s));
	if (!s || !o->max_sources)
		return s ? -EINVAL : -ENOMEM;
	s->o = *o;
	s->nbuckets = 64;
	while (s->nbuckets < o->max_sources / 2 && s->nbuckets < (1u << 20))
		s->nbuckets <<= 1;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets)
		return -ENOMEM;
	*out = TAKE_PTR(s);
	return 0;
}

void
guard_score_free(struct guard_score *s)
{
	if (!s)
		return;
	for (struct guard_score_src *e = s->lru_head, *next; e; e = next) {
		next = e->lru_next;
		free(e);
	}
	free(s->buckets);
	free(s);
}

void
guard_score_set(struct guard_score *s, const struct guard_score_opts *o)
{
	s->o.threshold = o->threshold;
	s->o.window_ms = o->window_ms;
	s->o.max_sources = o->max_sources ? o->max_sources : s->o.max_sources;
}

size_t
guard_score_count(const struct guard_score *s)
{
	return s->count;
}

/* FNV-1a over the family, prefix and address bytes. */
static size_t
guard_score_hash(const struct guard_score *s, const struct net_cidr *k)
{
	size_t len = k->addr.family == AF_INET ? 4 : 16;
	uint64_t h = 1469598103934665603ull ^ (uint64_t)k->addr.family ^ ((uint64_t)k->prefix << 8);
	for (size_t i = 0; i < len; i++)
		h = (h ^ k->addr.u.bytes[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (s->nbuckets - 1);
}

static bool
guard_score_same(const struct net_cidr *a, const struct net_cidr *b)
{
	return a->prefix == b->prefix && net_addr_equal(&a->addr, &b->addr);
}

static struct guard_score_src **
guard_score_slot(struct guard_score *s, const struct net_cidr *k)
{
	struct guard_score_src **p = &s->buckets[guard_score_hash(s, k)];
	while (*p && !guard_score_same(&(*p)->key, k))
		p = &(*p)->next_hash;
	return p;
}

static void
guard_score_lru_unlink(struct guard_score *s, struct guard_score_src *e)
{
	*(e->lru_prev ? &e->lru_prev->lru_next : &s->lru_head) = e->lru_next;
	*(e->lru_next ? &e->lru_next->lru_prev : &s->lru_tail) = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
guard_score_lru_append(struct guard_score *s, struct guard_score_src *e)
{
	e->lru_prev = s->lru_tail;
	*(s->lru_tail ? &s->lru_tail->lru_next : &s->lru_head) = e;
	s->lru_tail = e;
}

static void
guard_score_remove(struct guard_score *s, struct guard_score_src *e)
{
	struct guard_score_src **p = guard_score_slot(s, &e->key);
	*p = e->next_hash;
	guard_score_lru_unlink(s, e);
	s->count--;
	free(e);
}

void
guard_score_forget(struct guard_score *s, const struct net_cidr *key)
{
	struct guard_score_src *e = *guard_score_slot(s, key);
	if (e)
		guard_score_remove(s, e);
}

void
guard_score_expire(struct guard_score *s, uint64_t now_ms)
{
	/* least recently active first: the walk stops at the first source still in its window */
	while (s->lru_head && s->lru_head->last_ms + s->o.window_ms <= now_ms)
		guard_score_remove(s, s->lru_head);
}

static struct guard_score_src *
guard_score_get(struct guard_score *s, const struct net_cidr *key, uint64_t now_ms)
{
	struct guard_score_src **p = guard_score_slot(s, key);
	if (*p)
		return *p;
	if (s->count >= s->o.max_sources) {
		guard_score_expire(s, now_ms);
		if (s->count >= s->o.max_sources)
			guard_score_remove(s, s->lru_head);
		p = guard_score_slot(s, key);
	}
	struct guard_score_src *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *key;
	*p = e;
	guard_score_lru_append(s, e);
	s->count++;
	return e;
}

int
guard_score_add(struct guard_score *s, const struct net_cidr *key, unsigned danger, uint64_t now_ms,
                uint64_t *sum)
{
	struct guard_score_src *e = guard_score_get(s, key, now_ms);
	if (!e)
		return -ENOMEM;
	if (e->n == GUARD_SCORE_EVENTS) { /* the oldest event drops out */
		e->head = (e->head + 1) % GUARD_SCORE_EVENTS;
		e->n--;
	}
	e->ev[(e->head + e->n++) % GUARD_SCORE_EVENTS] = (struct guard_score_event){now_ms, danger};
	e->last_ms = now_ms > e->last_ms ? now_ms : e->last_ms;
	guard_score_lru_unlink(s, e);
	guard_score_lru_append(s, e);
	uint64_t total = 0;
	for (unsigned i = 0; i < e->n; i++) {
		const struct guard_score_event *v = &e->ev[(e->head + i) % GUARD_SCORE_EVENTS];
		if (v->at_ms + s->o.window_ms > now_ms)
			total += v->danger;
	}
	*sum = total;
	if (total < s->o.threshold)
		return 0;
	guard_score_remove(s, e);
	return 1;
}
