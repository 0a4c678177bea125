/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Direct routes to other nodes' pod CIDRs (--auto-direct-node-routes):
 * "<podCIDR> via <node IP> dev <native device> proto axon". Installed and
 * removed through libnl-3. Routes carry Axon's own protocol number
 * (RTPROT_AXON, visible in `ip route` as proto 196), which is how the agent
 * knows which routes are its own: it lists, replaces and deletes only those,
 * never a route someone else installed.
 */
#ifndef AXON_ROUTES_H
#define AXON_ROUTES_H

#include <linux/types.h>

#include "k8s/objects.h"

#define RTPROT_AXON 196

struct node_route {
	struct ipv4_prefix dst;		/* a node's pod CIDR */
	__be32 via;			/* that node's address */
	int ifindex;			/* native device it is reached through */
};

/* Add or replace (idempotent). */
int node_route_replace(const struct node_route *r);
/* Delete our route to @dst; -ENOENT if we have none (someone else's route to
 * the same prefix is never touched). */
int node_route_delete(const struct ipv4_prefix *dst);
/* Our routes in the main table; fills up to @max, returns the count. */
int node_routes_list(struct node_route *out, int max);

#endif /* AXON_ROUTES_H */
