// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "k8s/strpool.h"

/* The first block fits a namespace and a name without waste; later ones
 * double (an object with many endpoints makes few allocations), capped so
 * that one long string does not make every later block large. */
#define BLOCK_MIN 48
#define BLOCK_MAX 4096

struct k8s_strblock {
	struct k8s_strblock *next;
	size_t used, cap;
	char data[];
};

const char *k8s_strpool_add(struct k8s_strpool *p, const char *s, size_t len)
{
	struct k8s_strblock *b = p->head;
	char *out;

	if (!b || b->cap - b->used < len + 1) {
		size_t cap = b ? b->cap * 2 : BLOCK_MIN;

		if (cap > BLOCK_MAX)
			cap = BLOCK_MAX;
		if (cap < len + 1)
			cap = len + 1;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = p->head;
		b->used = 0;
		b->cap = cap;
		p->head = b;
	}
	out = b->data + b->used;
	memcpy(out, s, len);
	out[len] = '\0';
	b->used += len + 1;
	return out;
}

void k8s_strpool_free(struct k8s_strpool *p)
{
	struct k8s_strblock *b = p->head;

	while (b) {
		struct k8s_strblock *next = b->next;

		free(b);
		b = next;
	}
	p->head = NULL;
}
