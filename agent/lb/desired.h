/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a Service should look like in the load-balancing maps, derived from
 * the store: one frontend per (service address, port, protocol), each with
 * the backends the datapath may pick for new connections.
 *
 * Backend choice follows Kubernetes: endpoints whose `ready` condition is true;
 * when a port has none, endpoints that are serving and terminating (graceful
 * termination), so a rolling restart never turns a service into a black hole.
 * The backend port is the EndpointSlice port with the Service port's name and
 * protocol. Duplicate addresses across slices (seen while slices are being
 * rebalanced) are merged.
 */
#ifndef AXON_LB_DESIRED_H
#define AXON_LB_DESIRED_H

#include <stddef.h>
#include <linux/types.h>

#include "store/store.h"

struct lb_backend_spec {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 state;	/* BACKEND_STATE_* */
};

struct lb_frontend_spec {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 flags;	/* SVC_FLAG_* */
	__u32 affinity_timeout;
	struct lb_backend_spec *backends;
	size_t n_backends;
};

struct lb_service_spec {
	struct lb_frontend_spec *frontends;
	size_t n_frontends;
};

/* Fill spec for the service with this key; a service that is not in the store
 * (or has no addresses, e.g. headless or ExternalName) gets no frontends.
 * Returns 0 or -ENOMEM. */
int lb_desired_service(const struct store *s, const char *svc_key, struct lb_service_spec *spec);
void lb_service_spec_free(struct lb_service_spec *spec);

#endif /* AXON_LB_DESIRED_H */
