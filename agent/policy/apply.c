// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>

#include "policy/apply.h"
#include "policy/map.h"

/* The engine states entries in the map's own layout. */
_Static_assert(sizeof(struct engine_entry) == sizeof(struct policy_map_entry), "layout");
_Static_assert(offsetof(struct engine_entry, port_prefix) ==
		   offsetof(struct policy_map_entry, port_prefix),
	       "layout");
_Static_assert(offsetof(struct engine_entry, deny) == offsetof(struct policy_map_entry, deny),
	       "layout");
_Static_assert(ENGINE_DIR_INGRESS == POLICY_DIR_INGRESS && ENGINE_DIR_EGRESS == POLICY_DIR_EGRESS,
	       "directions");

struct policy_maps *policy_apply_maps_new(int outer_fd, __u32 map_max)
{
	struct policy_maps *pm = calloc(1, sizeof(*pm));

	if (pm)
		policy_maps_init(pm, outer_fd, map_max);
	return pm;
}

void policy_apply_maps_free(struct policy_maps *pm)
{
	free(pm);
}

int policy_apply_set(const struct policy_maps *pm, __u16 id, const struct engine_entry *e, size_t n,
		     unsigned int *changed)
{
	struct policy_map_result res = {0};
	int err;

	err = policy_map_set(pm, id, (const struct policy_map_entry *)e, n, &res);
	*changed = res.added + res.updated + res.deleted;
	return err;
}

int policy_apply_delete(const struct policy_maps *pm, __u16 id)
{
	return policy_map_delete(pm, id);
}
