/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IP cache: every endpoint address in the cluster (and every node's pod
 * CIDR) -> its security identity and the node that hosts it; every prefix a
 * network policy names -> its CIDR identity (no node). An LPM trie, so a /32
 * endpoint entry wins over its node's pod CIDR and over a policy's prefix, and
 * a policy's except over its CIDR. Written by the agent from
 * CiliumEndpointSlices, Nodes and policies; read by the tc programs (identity
 * for policy, tunnel_endpoint for the node that owns an address).
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

/* Reserved identities (Cilium's numbers). The datapath gives HOST to what
 * the node's own stack sends and WORLD to an address the IP cache does not
 * know. */
#define IDENTITY_UNKNOWN	0
#define IDENTITY_HOST		1
#define IDENTITY_WORLD		2
#define IDENTITY_UNMANAGED	3
#define IDENTITY_HEALTH		4
#define IDENTITY_INIT		5
#define IDENTITY_REMOTE_NODE	6
#define IDENTITY_KUBE_APISERVER	7
#define IDENTITY_RESERVED_MAX	7

/* Cilium's local identity scope (numbers with bit 24 set, never allocated
 * cluster-wide): the CIDR identities the agent gives the prefixes policies
 * name (agent/policy/cidr.h), IDENTITY_CIDR_MIN..IDENTITY_CIDR_MAX. */
#define IDENTITY_LOCAL_FLAG	(1u << 24)
#define IDENTITY_CIDR_MIN	(IDENTITY_LOCAL_FLAG | 1)
#define IDENTITY_CIDR_MAX	(IDENTITY_LOCAL_FLAG | 0xffffffu)

#ifndef __bpf__
/* Cilium's name of a reserved identity ("host", "world"), NULL for others. */
static inline const char *axon_identity_reserved_name(__u32 id)
{
	static const char *const names[IDENTITY_RESERVED_MAX + 1] = {
		[IDENTITY_UNKNOWN] = "unknown",
		[IDENTITY_HOST] = "host",
		[IDENTITY_WORLD] = "world",
		[IDENTITY_UNMANAGED] = "unmanaged",
		[IDENTITY_HEALTH] = "health",
		[IDENTITY_INIT] = "init",
		[IDENTITY_REMOTE_NODE] = "remote-node",
		[IDENTITY_KUBE_APISERVER] = "kube-apiserver",
	};

	return id <= IDENTITY_RESERVED_MAX ? names[id] : NULL;
}
#endif

#endif /* AXON_IPCACHE_H */
