/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The strings of one decoded object, sized to content.
 *
 * A decoded object keeps its names (namespace, name, node names, pod names)
 * in a pool it owns: a short chain of blocks the strings are appended to,
 * freed all at once with the object. Strings never move, so pointers into
 * the pool stay valid for the object's life. This replaces fixed 254-byte
 * buffers, which cost ~50 MiB at 150,000 endpoints (README, Benchmarks).
 *
 * A zeroed pool is empty and valid; k8s_strpool_free() leaves it so.
 */
#ifndef AXON_K8S_STRPOOL_H
#define AXON_K8S_STRPOOL_H

#include <stddef.h>

struct k8s_strblock;

struct k8s_strpool {
	struct k8s_strblock *head;	/* newest block first */
};

/* A copy of s[0..len) (NUL-terminated) in the pool; NULL when out of memory. */
const char *k8s_strpool_add(struct k8s_strpool *p, const char *s, size_t len);
void k8s_strpool_free(struct k8s_strpool *p);

#endif /* AXON_K8S_STRPOOL_H */
