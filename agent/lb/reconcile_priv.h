/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Between reconcile.c and resync.c: the counted map operations and the
 * mirror's lookups, so the periodic full pass checks the maps against the
 * same mirror the incremental path writes. */
#ifndef AXON_LB_RECONCILE_PRIV_H
#define AXON_LB_RECONCILE_PRIV_H

#include "axon/lb.h"
#include "reconcile.h"

int lb_map_update(struct lb_reconciler *r, enum lb_map_id map, const void *key,
		  const void *value);
/* -ENOENT counts as done. */
int lb_map_delete(struct lb_reconciler *r, enum lb_map_id map, const void *key);
struct lb4_key lb_slot_key(const struct lb_frontend *rf, __u16 slot);
struct lb_backend *lb_backend_by_id(struct lb_reconciler *r, __u32 id);
struct lb_backend *lb_backend_find(const struct lb_reconciler *r, __be32 addr, __be16 port,
				   __u8 proto);
bool lb_revnat_is_used(const struct lb_reconciler *r, __u32 id);

#endif /* AXON_LB_RECONCILE_PRIV_H */
