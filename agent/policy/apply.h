/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The engine's entries into an endpoint's policy trie (policy/map.h), for
 * code that cannot include map.h: it sees the model (rules.h), whose
 * struct policy_entry is another struct than the map value's.
 */
#ifndef AXON_POLICY_APPLY_H
#define AXON_POLICY_APPLY_H

#include <stddef.h>
#include <linux/types.h>

#include "policy/engine_entry.h"

struct policy_maps;

/* NULL when out of memory. */
struct policy_maps *policy_apply_maps_new(int outer_fd, __u32 map_max);
void policy_apply_maps_free(struct policy_maps *pm);
/* policy_map_set(); *changed: entries added, updated or deleted. */
int policy_apply_set(const struct policy_maps *pm, __u16 id, const struct engine_entry *e, size_t n,
		     unsigned int *changed);
int policy_apply_delete(const struct policy_maps *pm, __u16 id);

#endif /* AXON_POLICY_APPLY_H */
