/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Direct routes to the other nodes' pod CIDRs (--auto-direct-node-routes):
 * for every Node but this one, each IPv4 pod CIDR via that node's address
 * (InternalIP, else ExternalIP), out of the native device that reaches the
 * address.
 *
 * The first pass (after the Node watch synced) lists the routes Axon owns
 * (ops->list: proto axon, datapath/routes.h) and deletes those that match no
 * node, so routes of nodes deleted while the agent was down do not linger;
 * later passes diff against the mirror. With the flag off the desired set is
 * empty: routes a previous run installed are removed. A failed netlink
 * operation is kept (status), counted, and retried with backoff; a node
 * whose address no native device reaches is reported the same way.
 *
 * The periodic full pass (route_sync_resync) lists Axon's routes again:
 * one missing or changed (deleted or replaced with `ip route`) is replaced
 * from the mirror, one the mirror does not hold is deleted, each counted.
 */
#ifndef AXON_NODES_ROUTES_SYNC_H
#define AXON_NODES_ROUTES_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath/routes.h"
#include "htable.h"
#include "store/store.h"

struct route_ops {
	int (*replace)(void *ctx, const struct node_route *r);
	int (*delete)(void *ctx, const struct ipv4_prefix *dst);
	int (*list)(void *ctx, struct node_route *out, int max);
	/* The native device through which @via is reached: its ifindex, or
	 * -ENETUNREACH when none of the native devices does. */
	int (*device_for)(void *ctx, __be32 via);
};

/* Desired route, with the node it is for. */
struct route_want {
	struct node_route route;	/* ifindex 0 until resolved */
	char node[K8S_NAME_MAX];
};

struct route_failure {
	char what[64];			/* "route 10.244.1.0/24" */
	char msg[256];
	int err;
	unsigned int attempts;
};

struct route_sync {
	const struct route_ops *ops;
	void *ops_ctx;
	bool enabled;			/* --auto-direct-node-routes */
	struct htable routes;		/* struct ipv4_prefix -> struct route_want (installed) */
	struct htable failures;		/* what -> struct route_failure */
	bool listed;			/* the start-up listing has been done */
	uint64_t seen_nodes_rev;
	bool ran, devices_changed;
	uint64_t next_retry_ms;
	unsigned int attempts;
	unsigned long replaced, deleted, errors;
	unsigned long resyncs, repairs, last_repairs;
};

/* The desired routes from the store, sorted by prefix; *out is malloc'ed. */
int node_routes_desired(const struct store *s, struct route_want **out, size_t *n);

int route_sync_init(struct route_sync *rs, const struct route_ops *ops, void *ctx, bool enabled);
void route_sync_destroy(struct route_sync *rs);
static inline void route_sync_devices_changed(struct route_sync *rs)
{
	rs->devices_changed = true;
}
/* A pass if nodes moved, devices changed or a retry is due; call once the
 * Node watch has synced. Returns the number failing; *next_ms as for the
 * other reconcilers. */
int route_sync_run(struct route_sync *rs, const struct store *s, uint64_t now_ms,
		   uint64_t *next_ms);

/* The full pass (after the first route_sync_run): returns the number of
 * routes repaired, or -errno (the next pass tries again). */
int route_sync_resync(struct route_sync *rs);

/* The route to dst as installed (the mirror of the kernel's Axon routes),
 * or NULL; and its pending failure, or NULL. For agentctl node list. */
const struct route_want *route_sync_installed(const struct route_sync *rs,
					      const struct ipv4_prefix *dst);
const struct route_failure *route_sync_failure(const struct route_sync *rs,
					       const struct ipv4_prefix *dst);

#endif /* AXON_NODES_ROUTES_SYNC_H */
