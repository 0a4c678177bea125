/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IP cache: every endpoint address in the cluster (and every node's pod
 * CIDR) -> its security identity and the node that hosts it. An LPM trie, so
 * a /32 endpoint entry wins over its node's pod CIDR. Written by the agent
 * from CiliumEndpointSlices and Nodes; read by the tc programs (identity for
 * policy, tunnel_endpoint for the node that owns an address).
 */
#ifndef AXON_IPCACHE_H
#define AXON_IPCACHE_H

#include "types.h"

/* Prefix length of ipcache_key as the trie counts it: the bits of
 * ipcache_key after prefixlen, i.e. of address. */
#define IPCACHE_PREFIX_LEN(len)	(len)

struct ipcache_key {
	__u32 prefixlen;	/* struct bpf_lpm_trie_key's header: 0..32 */
	__be32 address;		/* IPv4 prefix, host bits zero */
};

/* ipcache_value.flags */
#define IPCACHE_F_LOCAL		(1 << 0)	/* hosted on this node */
#define IPCACHE_F_POD_CIDR	(1 << 1)	/* a node's pod CIDR, not one endpoint */

struct ipcache_value {
	__u32 identity;		/* security identity; 0 when unknown (pod CIDRs) */
	__be32 tunnel_endpoint;	/* IPv4 of the node hosting the address */
	__u8 flags;		/* IPCACHE_F_* */
	__u8 pad[3];
};

/* Identities the datapath knows without being told (Cilium's numbers). */
#define IDENTITY_UNKNOWN	0
#define IDENTITY_HOST		1
#define IDENTITY_WORLD		2
#define IDENTITY_REMOTE_NODE	6

#endif /* AXON_IPCACHE_H */
