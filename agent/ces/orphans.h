/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The CiliumEndpointSlices of nodes that are gone. An agent deletes its own
 * slices as its pods go, but a node removed from the cluster (its Node
 * deleted) takes its agent with it, and its slices would keep its pods in
 * every other node's ipcache, routes and policy. Cilium's operator collects
 * them; Axon has no operator, so the agents do.
 *
 * A slice is Axon's when its name has the form ces/publish.h gives
 * ("axon-<node>-<8 hex>-<n>"); it is an orphan when no Node in the store
 * owns that prefix. Slices of other writers (Cilium's own) are never
 * touched. An orphan is deleted once it has stayed one for
 * CES_ORPHAN_GRACE_MS (the Node watch lagging a brand-new node's first
 * slice is the only way a live node's slice can look orphaned, and that
 * lasts well under it), by the live node whose name sorts first, so one
 * agent writes rather than all; after CES_ORPHAN_FALLBACK_MS any agent does
 * (that node's agent may be down). A DELETE answered 404 is done.
 */
#ifndef AXON_CES_ORPHANS_H
#define AXON_CES_ORPHANS_H

#include <stdbool.h>
#include <stdint.h>

#include "htable.h"
#include "identity/alloc.h"
#include "store/store.h"

#define CES_ORPHAN_GRACE_MS	10000
#define CES_ORPHAN_FALLBACK_MS	600000
#define CES_ORPHAN_RETRY_MS	5000

struct ces_orphans {
	struct k8s_client *c;
	ident_call_start_fn call_start;
	ident_call_cancel_fn call_cancel;
	const struct store *store;
	char self[K8S_NAME_MAX];
	/* slice name (with its NUL) -> (uintptr_t) ms first seen orphaned + 1 */
	struct htable since;
	uint64_t seen_nodes, seen_ces;	/* the store's revisions at the last look */
	uint64_t next_due_ms;		/* the next orphan due (0: none) */
	bool looked;
	struct k8s_call *call;	/* the one DELETE in flight */
	char deleting[K8S_NAME_MAX];
	unsigned long deleted, errors;
};

int ces_orphans_init(struct ces_orphans *o, struct k8s_client *c, ident_call_start_fn start,
		     ident_call_cancel_fn cancel, const struct store *s, const char *self);
void ces_orphans_destroy(struct ces_orphans *o);

/* The node a slice name of Axon's form belongs to, as its name prefix
 * ("axon-<node>-", see ces_node_prefix()) into out; false when the name is
 * not of that form. */
bool ces_slice_prefix(const char *name, char *out, size_t len);

/* After the Node and CiliumEndpointSlice watches have listed: note orphans,
 * delete those due. *next_ms lowered to the next one due. */
void ces_orphans_run(struct ces_orphans *o, uint64_t now_ms, uint64_t *next_ms);

#endif /* AXON_CES_ORPHANS_H */
