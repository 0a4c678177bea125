/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A chained hash table with byte-string keys (copied in) and pointer values
 * (owned by the caller). Grows as it fills; O(1) get/put/del.
 *
 * Iteration: for (it = ht_first(h); it; it = ht_next(h, it)); deleting the
 * entry `it` points at is allowed only through ht_del_iter().
 */
#ifndef AXON_HTABLE_H
#define AXON_HTABLE_H

#include <stddef.h>
#include <stdint.h>

struct ht_entry {
	struct ht_entry *next;
	uint64_t hash;
	void *value;
	size_t klen;
	unsigned char key[];
};

struct htable {
	struct ht_entry **buckets;
	size_t nbuckets;	/* power of two */
	size_t count;
};

int ht_init(struct htable *h);
/* Frees entries; values are the caller's (free them first, e.g. by iterating). */
void ht_destroy(struct htable *h);
/* Frees every value with @free_value, then the table. Safe on a zeroed,
 * never-initialized table. */
void ht_destroy_with(struct htable *h, void (*free_value)(void *));

void *ht_get(const struct htable *h, const void *key, size_t klen);
/* Insert or replace. On replace, *old (if non-NULL) receives the previous
 * value. Returns 0 or -ENOMEM. */
int ht_put(struct htable *h, const void *key, size_t klen, void *value, void **old);
/* Remove; returns the value or NULL if absent. */
void *ht_del(struct htable *h, const void *key, size_t klen);

struct ht_entry *ht_first(const struct htable *h);
struct ht_entry *ht_next(const struct htable *h, const struct ht_entry *e);
/* Remove the entry e points at and return the next one. */
struct ht_entry *ht_del_iter(struct htable *h, struct ht_entry *e);

/* The values in key order (cmp NULL: the keys' bytes, which orders string
 * keys as strcmp does) or as cmp(value_a, value_b) orders them: an array of
 * h->count values and a NULL, which the caller frees; NULL when out of
 * memory. For listings that must not depend on hash order. */
void **ht_sorted_values(const struct htable *h, int (*cmp)(const void *a, const void *b));

static inline int ht_puts(struct htable *h, const char *key, size_t klen, void *value)
{
	return ht_put(h, key, klen, value, NULL);
}

#endif /* AXON_HTABLE_H */
