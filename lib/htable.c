// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "htable.h"

#define HT_MIN_BUCKETS 16

/* FNV-1a, 64-bit: keys are short (names, addresses), so simple is fast. */
static uint64_t ht_hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int ht_init(struct htable *h)
{
	h->buckets = calloc(HT_MIN_BUCKETS, sizeof(*h->buckets));
	if (!h->buckets)
		return -ENOMEM;
	h->nbuckets = HT_MIN_BUCKETS;
	h->count = 0;
	return 0;
}

void ht_destroy_with(struct htable *h, void (*free_value)(void *))
{
	if (!h->buckets)
		return;
	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e))
		free_value(e->value);
	ht_destroy(h);
}

void ht_destroy(struct htable *h)
{
	if (!h->buckets)
		return;
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct ht_entry *e = h->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = h->count = 0;
}

static struct ht_entry **ht_slot(const struct htable *h, const void *key, size_t klen,
				 uint64_t hash)
{
	struct ht_entry **pp = &h->buckets[hash & (h->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == hash && (*pp)->klen == klen && !memcmp((*pp)->key, key, klen))
			break;
	return pp;
}

void *ht_get(const struct htable *h, const void *key, size_t klen)
{
	struct ht_entry *e = *ht_slot(h, key, klen, ht_hash(key, klen));

	return e ? e->value : NULL;
}

static void ht_grow(struct htable *h)
{
	size_t n = h->nbuckets * 2;
	struct ht_entry **b = calloc(n, sizeof(*b));

	/* Not growing only costs speed; keep going with longer chains. */
	if (!b)
		return;
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct ht_entry *e = h->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = n;
}

int ht_put(struct htable *h, const void *key, size_t klen, void *value, void **old)
{
	uint64_t hash = ht_hash(key, klen);
	struct ht_entry **pp = ht_slot(h, key, klen, hash), *e;

	if (*pp) {
		if (old)
			*old = (*pp)->value;
		(*pp)->value = value;
		return 0;
	}
	if (old)
		*old = NULL;
	e = malloc(sizeof(*e) + klen);
	if (!e)
		return -ENOMEM;
	e->hash = hash;
	e->klen = klen;
	e->value = value;
	memcpy(e->key, key, klen);
	e->next = NULL;
	*pp = e;
	if (++h->count > h->nbuckets)
		ht_grow(h);
	return 0;
}

void *ht_del(struct htable *h, const void *key, size_t klen)
{
	struct ht_entry **pp = ht_slot(h, key, klen, ht_hash(key, klen)), *e = *pp;
	void *value;

	if (!e)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	h->count--;
	return value;
}

static struct ht_entry *ht_scan(const struct htable *h, size_t from)
{
	for (size_t i = from; i < h->nbuckets; i++)
		if (h->buckets[i])
			return h->buckets[i];
	return NULL;
}

struct ht_entry *ht_first(const struct htable *h)
{
	return h->buckets ? ht_scan(h, 0) : NULL;
}

struct ht_entry *ht_next(const struct htable *h, const struct ht_entry *e)
{
	return e->next ? e->next : ht_scan(h, (e->hash & (h->nbuckets - 1)) + 1);
}

struct ht_entry *ht_del_iter(struct htable *h, struct ht_entry *e)
{
	struct ht_entry *next = ht_next(h, e);

	ht_del(h, e->key, e->klen);
	return next;
}

struct sort_by {
	int (*cmp)(const void *a, const void *b);
};

static int entry_cmp(const void *x, const void *y, void *arg)
{
	const struct ht_entry *a = *(const struct ht_entry *const *)x;
	const struct ht_entry *b = *(const struct ht_entry *const *)y;
	const struct sort_by *by = arg;
	int r;

	if (by->cmp)
		return by->cmp(a->value, b->value);
	r = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return r ? r : (a->klen > b->klen) - (a->klen < b->klen);
}

void **ht_sorted_values(const struct htable *h, int (*cmp)(const void *a, const void *b))
{
	struct ht_entry **entries = calloc(h->count + 1, sizeof(*entries));
	void **values = calloc(h->count + 1, sizeof(*values));
	struct sort_by by = {cmp};
	size_t n = 0;

	if (!entries || !values) {
		free(entries);
		free(values);
		return NULL;
	}
	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e))
		entries[n++] = e;
	qsort_r(entries, n, sizeof(*entries), entry_cmp, &by);
	for (size_t i = 0; i < n; i++)
		values[i] = entries[i]->value;
	free(entries);
	return values;
}
