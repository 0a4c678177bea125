/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Local endpoints: the pods on this node, keyed by IPv4 address. The agent
 * fills it from the CiliumEndpointSlices whose endpoints live on this node
 * (networking.node = a node address) and the host-side device it finds for
 * each (the CNI's /32 route). The tc programs use it to deliver to a pod with
 * bpf_redirect_peer; an address that is not here is not a local pod and goes
 * to the FIB (or the stack), never to a black hole.
 *
 * Network policy (include/axon/policy.h): `policy` says in which directions
 * the endpoint's policy is enforced (a direction no policy selects the
 * endpoint for allows everything), `id` which slot of the "policy" map holds
 * its policy. An enforced direction without a map there denies everything.
 * The two fields took the high byte of a 16-bit flags field and its padding,
 * both always 0 before: entries written by an older agent read as "not
 * enforced", and the map keeps its layout.
 */
#ifndef AXON_ENDPOINT_H
#define AXON_ENDPOINT_H

#include "types.h"

/* endpoint_info.flags */
#define ENDPOINT_F_HOST		(1 << 0)	/* the node itself (its own addresses) */

/* endpoint_info.policy: directions in which policy is enforced */
#define ENDPOINT_POLICY_INGRESS	(1 << 0)
#define ENDPOINT_POLICY_EGRESS	(1 << 1)

struct endpoint_key {
	__be32 address;		/* pod IPv4 */
};

struct endpoint_info {
	__u32 ifindex;		/* host-side device (the veth peer in the node namespace) */
	__u32 identity;		/* security identity (CiliumEndpoint .id) */
	__u8 mac[6];		/* the pod's interface MAC */
	__u8 node_mac[6];	/* the host-side device's MAC */
	__u8 flags;		/* ENDPOINT_F_* */
	__u8 policy;		/* ENDPOINT_POLICY_*: directions enforced */
	__u16 id;		/* endpoint id: its slot in the "policy" map; 0: none */
};

#endif /* AXON_ENDPOINT_H */
