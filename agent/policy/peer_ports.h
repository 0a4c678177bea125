/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What egress named ports resolve to: every (identity, named port) of the
 * store's CiliumEndpointSlices, as the policy engine takes them
 * (struct engine_peer_port, engine.h). Rebuilt when the slices change; an
 * endpoint without an identity (id 0) names nothing.
 */
#ifndef AXON_POLICY_PEER_PORTS_H
#define AXON_POLICY_PEER_PORTS_H

#include <stddef.h>

#include "policy/engine.h"
#include "store/store.h"

struct peer_ports {
	struct engine_peer_port *items; /* sorted, no duplicates */
	size_t n;
};

/* Replace pp's items with the store's; -ENOMEM leaves pp as it was. */
int peer_ports_build(struct peer_ports *pp, const struct store *s);
void peer_ports_free(struct peer_ports *pp);

#endif /* AXON_POLICY_PEER_PORTS_H */
