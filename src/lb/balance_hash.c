/*
 * source, uri and header: Maglev consistent hashing (Eisenbud et al., NSDI 2016). Each
 * server walks its own permutation of a prime-sized table, taking `weight` free entries per
 * round, so the table splits by weight and losing one of N servers moves about 1/N of keys.
 * Permutations come from the server's name, not its position, so reordering the config does
 * not move clients, and the hash key is fixed so the mapping survives restarts.
 */
#include "balance_ops.h"
#include "lb_config.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BALANCE_HASH_M 65537u /* prime, so every skip walks the whole table */
#define BALANCE_HASH_NONE 0xffffu
/* entries tried after the key's own before the plain candidate scan decides */
#define BALANCE_HASH_PROBES 64
/* while a server slow-starts, the table follows its weight at this pace */
#define BALANCE_HASH_RAMP_NS 1000000000ull

struct balance_hash_table {
	uint64_t version; /* pool->version the entries were built at */
	bool built;
	uint64_t due_ns;         /* rebuild then even without a version change */
	uint32_t *offset, *skip; /* per server index, from its name */
	uint32_t *pos;           /* per server index, build scratch */
	uint16_t entry[BALANCE_HASH_M];
};

/* Fixed keys: the mapping must be the same in every process and after every restart. */
static const uint64_t balance_hash_key_name[2] = {0x52414d5041525431ull, 0x6d61676c65762d6eull};
static const uint64_t balance_hash_key_req[2] = {0x52414d5041525432ull, 0x6d61676c65762d6bull};

static inline uint64_t
balance_hash_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void
balance_hash_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = balance_hash_rotl(v[1], 13) ^ v[0];
	v[0] = balance_hash_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = balance_hash_rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = balance_hash_rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = balance_hash_rotl(v[1], 17) ^ v[2];
	v[2] = balance_hash_rotl(v[2], 32);
}

/* SipHash-1-3, little-endian on every host so that the mapping is portable too. */
static uint64_t
balance_hash_bytes(const uint64_t k[2], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ull, k[1] ^ 0x646f72616e646f6dull,
	                 k[0] ^ 0x6c7967656e657261ull, k[1] ^ 0x7465646279746573ull};
	uint64_t m;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		m = le64toh(m);
		v[3] ^= m;
		balance_hash_round(v);
		v[0] ^= m;
	}
	m = (uint64_t)len << 56;
	for (size_t j = 0; i + j < len; j++)
		m |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= m;
	balance_hash_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (int r = 0; r < 3; r++)
		balance_hash_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static int
balance_hash_init(struct balance *b)
{
	size_t n = b->pool->n;
	struct balance_hash_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	b->hash = t;
	t->offset = calloc(n, sizeof(*t->offset));
	t->skip = calloc(n, sizeof(*t->skip));
	t->pos = calloc(n, sizeof(*t->pos));
	if (!t->offset || !t->skip || !t->pos)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = b->pool->servers[i].name;
		uint64_t h = balance_hash_bytes(balance_hash_key_name, name, strlen(name));
		t->offset[i] = (uint32_t)((h & 0xffffffffu) % BALANCE_HASH_M);
		t->skip[i] = (uint32_t)((h >> 32) % (BALANCE_HASH_M - 1) + 1);
	}
	return 0;
}

static void
balance_hash_fini(struct balance *b)
{
	struct balance_hash_table *t = b->hash;
	if (!t)
		return;
	free(t->offset);
	free(t->skip);
	free(t->pos);
	free(t);
	b->hash = NULL;
}

/* The candidates the table is built from: usable primaries, else usable backups. */
static size_t
balance_hash_members(struct balance *b, uint64_t now_ns)
{
	const struct lb_pool *pool = b->pool;
	size_t n = 0;
	for (int backup = 0; backup < 2 && n == 0; backup++) {
		for (size_t i = 0; i < pool->n; i++) {
			struct lb_server *s = &pool->servers[i];
			if (s->backup != (bool)backup || !lb_server_usable(pool, s, now_ns))
				continue;
			b->cand[n].s = s;
			b->cand[n++].w = lb_server_weight(pool, s, now_ns);
		}
	}
	return n;
}

static uint64_t
balance_hash_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * When the table must be rebuilt though pool->version has not changed: the pool does not
 * bump it while a slow start ramps or when a passive ejection's cooldown ends, and without
 * a rebuild an ejected server would never get its half-open retry here.
 */
static uint64_t
balance_hash_due(const struct balance *b, uint64_t now_ns)
{
	const struct lb_pool *pool = b->pool;
	uint64_t due = UINT64_MAX, len = pool->slow_start_ns;
	for (size_t i = 0; i < pool->n; i++) {
		const struct lb_server *s = &pool->servers[i];
		uint64_t since = atomic_load_explicit(&s->up_since_ns, memory_order_relaxed);
		uint64_t at = atomic_load_explicit(&s->ejected_at_ns, memory_order_relaxed);
		if (len && since && now_ns - since < len)
			due = balance_hash_min(
			    due, balance_hash_min(now_ns + BALANCE_HASH_RAMP_NS, since + len));
		if (!pool->has_check && at && !lb_server_usable(pool, s, now_ns))
			due = balance_hash_min(due, at + pool->passive_cooldown_ns);
	}
	return due;
}

/* Takes the next free entry on server idx's permutation. */
static void
balance_hash_take(struct balance_hash_table *t, unsigned idx)
{
	uint32_t p = t->pos[idx];
	while (t->entry[p] != BALANCE_HASH_NONE) {
		p += t->skip[idx];
		if (p >= BALANCE_HASH_M)
			p -= BALANCE_HASH_M;
	}
	t->entry[p] = (uint16_t)idx;
	t->pos[idx] = p;
}

static void
balance_hash_fill(struct balance_hash_table *t, const struct balance_cand *cand, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t->pos[cand[i].s->index] = t->offset[cand[i].s->index];
	size_t filled = 0;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			for (unsigned turn = 0; turn < cand[i].w; turn++) {
				balance_hash_take(t, cand[i].s->index);
				if (++filled == BALANCE_HASH_M)
					return;
			}
		}
	}
}

static void
balance_hash_build(struct balance *b, uint64_t version, uint64_t now_ns)
{
	struct balance_hash_table *t = b->hash;
	size_t n = balance_hash_members(b, now_ns);
	memset(t->entry, 0xff, sizeof(t->entry));
	if (n)
		balance_hash_fill(t, b->cand, n);
	t->version = version;
	t->built = true;
	t->due_ns = balance_hash_due(b, now_ns);
}

static void
balance_hash_refresh(struct balance *b, uint64_t now_ns)
{
	struct balance_hash_table *t = b->hash;
	uint64_t v = atomic_load_explicit(&b->pool->version, memory_order_acquire);
	if (!t->built || v != t->version || now_ns >= t->due_ns)
		balance_hash_build(b, v, now_ns);
}

static uint64_t
balance_hash_addr(const struct net_addr *a)
{
	if (!a || (a->family != AF_INET && a->family != AF_INET6))
		return balance_hash_bytes(balance_hash_key_req, "", 0);
	/* a v4-mapped client is the same client as its IPv4 address */
	if (a->family == AF_INET)
		return balance_hash_bytes(balance_hash_key_req, a->u.bytes, 4);
	if (net_addr_is_v4_mapped(a))
		return balance_hash_bytes(balance_hash_key_req, a->u.bytes + 12, 4);
	return balance_hash_bytes(balance_hash_key_req, a->u.bytes, 16);
}

static uint64_t
balance_hash_of(const struct balance *b, const struct balance_key *key)
{
	if (!key)
		return balance_hash_addr(NULL);
	if (b->algo == LB_BALANCE_URI && key->uri && key->uri_len)
		return balance_hash_bytes(balance_hash_key_req, key->uri, key->uri_len);
	if (b->algo == LB_BALANCE_HEADER && key->header && key->header_len)
		return balance_hash_bytes(balance_hash_key_req, key->header, key->header_len);
	/* without its uri or header a request still sticks, to its client */
	return balance_hash_addr(key->client);
}

static struct lb_server *
balance_hash_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                  const uint64_t *exclude, bool *all_full)
{
	balance_hash_refresh(b, now_ns);
	const struct balance_hash_table *t = b->hash;
	uint64_t h = balance_hash_of(b, key);
	uint32_t p = (uint32_t)(h % BALANCE_HASH_M);
	for (int probe = 0; probe < BALANCE_HASH_PROBES; probe++) {
		unsigned idx = t->entry[p];
		if (idx == BALANCE_HASH_NONE)
			break;
		struct lb_server *s = &b->pool->servers[idx];
		if (balance_fits(b, s, now_ns, exclude))
			return s;
		p = p + 1 < BALANCE_HASH_M ? p + 1 : 0;
	}
	/* nothing near the key's entry fits: any candidate, still chosen by the key */
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	return n ? b->cand[(h >> 32) % n].s : NULL;
}

const struct balance_ops balance_hash_ops = {
    .init = balance_hash_init,
    .fini = balance_hash_fini,
    .pick = balance_hash_pick,
};
