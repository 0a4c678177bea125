/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Local endpoints: the pods on this node, keyed by IPv4 address. The agent
 * fills it from the CiliumEndpointSlices whose endpoints live on this node
 * (networking.node = a node address) and the host-side device it finds for
 * each (the CNI's /32 route). The tc programs use it to deliver to a pod with
 * bpf_redirect_peer; an address that is not here is not a local pod and goes
 * to the FIB (or the stack), never to a black hole.
 */
#ifndef AXON_ENDPOINT_H
#define AXON_ENDPOINT_H

#include "types.h"

/* endpoint_info.flags */
#define ENDPOINT_F_HOST		(1 << 0)	/* the node itself (its own addresses) */

struct endpoint_key {
	__be32 address;		/* pod IPv4 */
};

struct endpoint_info {
	__u32 ifindex;		/* host-side device (the veth peer in the node namespace) */
	__u32 identity;		/* security identity (CiliumEndpoint .id) */
	__u8 mac[6];		/* the pod's interface MAC */
	__u8 node_mac[6];	/* the host-side device's MAC */
	__u16 flags;		/* ENDPOINT_F_* */
	__u16 pad;
};

#endif /* AXON_ENDPOINT_H */
