/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The memory of one decoded policy object (or identity, or namespace): every
 * array and string of its model is carved from a short chain of blocks the
 * object owns, and freed at once with it. A policy is a tree of small arrays
 * (rules, peers, selectors, values); one owner for all of them makes a parse
 * that fails halfway leave nothing behind with a single free, and keeps the
 * model's structs plain pointers and counts.
 *
 * Allocations are zeroed and aligned for any type. Nothing is freed on its
 * own; a zeroed arena is empty and valid, and policy_arena_free() leaves it so.
 */
#ifndef AXON_POLICY_ARENA_H
#define AXON_POLICY_ARENA_H

#include <stddef.h>

struct policy_block;

struct policy_arena {
	struct policy_block *head; /* newest block first */
	size_t bytes;		   /* what the blocks hold, for status */
};

/* n items of size bytes, zeroed; NULL when out of memory, on overflow, or
 * past POLICY_ARENA_MAX bytes in all (a bound on one hostile object). n == 0
 * gives a valid pointer to nothing. */
void *policy_arena_alloc(struct policy_arena *a, size_t n, size_t size);
/* A NUL-terminated copy of s[0..len); NULL when out of memory. */
const char *policy_arena_strndup(struct policy_arena *a, const char *s, size_t len);
const char *policy_arena_strdup(struct policy_arena *a, const char *s);
void policy_arena_free(struct policy_arena *a);

/* The most one object may take: far above any real policy (a NetworkPolicy
 * with 1000 peers of 10 labels each is under 1 MiB). */
#define POLICY_ARENA_MAX (16u << 20)

#endif /* AXON_POLICY_ARENA_H */
