// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "maglev.h"

/* splitmix64's finalizer: a good 64-bit mix for small keys. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t backend_hash(const struct maglev_backend *b, uint64_t seed)
{
	uint64_t k = (uint64_t)ntohl(b->addr) << 32 | (uint64_t)ntohs(b->port) << 8 | b->proto;

	return mix64(k ^ mix64(seed));
}

static int cmp_backend(const void *a, const void *b)
{
	const struct maglev_backend *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (int)x->proto - (int)y->proto;
}

int maglev_fill(const struct maglev_backend *backends, size_t n, __u32 *table, __u32 m)
{
	struct maglev_backend *b;
	uint64_t *offset, *skip, *next;
	int32_t *owner;
	size_t filled = 0;
	int err = -ENOMEM;

	if (!n || m < 2)
		return -EINVAL;
	b = malloc(n * sizeof(*b));
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	owner = malloc(m * sizeof(*owner));
	if (!b || !offset || !skip || !next || !owner)
		goto out;
	memcpy(b, backends, n * sizeof(*b));
	qsort(b, n, sizeof(*b), cmp_backend);
	for (size_t i = 0; i < n; i++) {
		offset[i] = backend_hash(&b[i], 0x6d61676c6576ull) % m;		/* "maglev" */
		skip[i] = backend_hash(&b[i], 0x736b6970ull) % (m - 1) + 1;	/* "skip" */
	}
	memset(owner, 0xff, m * sizeof(*owner));
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			uint64_t c = (offset[i] + next[i] * skip[i]) % m;

			/* skip < m and m prime: the walk visits every slot. */
			while (owner[c] >= 0) {
				next[i]++;
				c = (offset[i] + next[i] * skip[i]) % m;
			}
			owner[c] = i;
			next[i]++;
			if (++filled == m)
				goto done;
		}
	}
done:
	for (__u32 j = 0; j < m; j++)
		table[j] = b[owner[j]].id;
	err = 0;
out:
	free(b);
	free(offset);
	free(skip);
	free(next);
	free(owner);
	return err;
}

uint64_t maglev_digest(const __u32 *table, __u32 m)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (__u32 j = 0; j < m; j++)
		h = mix64(h ^ table[j]);
	return h;
}
