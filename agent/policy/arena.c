// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/arena.h"

/* Blocks double from a size that holds a small policy whole, up to a cap so
 * that a large object does not make every later block large. */
#define BLOCK_MIN 512
#define BLOCK_MAX (64u << 10)
#define ALIGN	  alignof(max_align_t)

struct policy_block {
	struct policy_block *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

void *policy_arena_alloc(struct policy_arena *a, size_t n, size_t size)
{
	struct policy_block *b = a->head;
	size_t len, off;
	void *out;

	if (size && n > SIZE_MAX / size)
		return NULL;
	len = n * size;
	if (len > POLICY_ARENA_MAX)
		return NULL;
	off = b ? (b->used + ALIGN - 1) & ~(ALIGN - 1) : 0;
	if (!b || off > b->cap || b->cap - off < len) {
		size_t cap = b ? b->cap * 2 : BLOCK_MIN;

		if (cap > BLOCK_MAX)
			cap = BLOCK_MAX;
		if (cap < len)
			cap = len;
		if (a->bytes + cap > POLICY_ARENA_MAX)
			return NULL;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
		a->bytes += cap;
		off = 0;
	}
	out = b->data + off;
	memset(out, 0, len);
	b->used = off + len;
	return out;
}

const char *policy_arena_strndup(struct policy_arena *a, const char *s, size_t len)
{
	char *out;

	if (len == SIZE_MAX)
		return NULL;
	out = policy_arena_alloc(a, len + 1, 1);
	if (!out)
		return NULL;
	memcpy(out, s, len);
	return out;
}

const char *policy_arena_strdup(struct policy_arena *a, const char *s)
{
	return policy_arena_strndup(a, s, strlen(s));
}

void policy_arena_free(struct policy_arena *a)
{
	struct policy_block *b = a->head;

	while (b) {
		struct policy_block *next = b->next;

		free(b);
		b = next;
	}
	a->head = NULL;
	a->bytes = 0;
}
