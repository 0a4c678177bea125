/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security identities of the addresses a packet carries, for conntrack
 * (src_identity) and network policy. Reserved numbers in
 * include/axon/ipcache.h.
 *
 * Contract:
 * - identity_ipcache(): what the IP cache says for the address (its longest
 *   prefix), IDENTITY_WORLD when it says nothing or 0 (a pod CIDR whose
 *   endpoint is not known yet).
 * - identity_not_host(): IDENTITY_HOST becomes IDENTITY_WORLD. For sources
 *   of packets that did not come from the node's own stack (the wire, a
 *   pod's device): a packet there claiming a node address is not the node,
 *   and must not get what the node is allowed.
 * - identity_local(): the identity of an address as the node sees it: the
 *   node's own addresses (CONFIG.node_ip, endpoints with ENDPOINT_F_HOST)
 *   IDENTITY_HOST, a local pod its endpoint's identity, anything else the IP
 *   cache's.
 */
#ifndef AXON_BPF_IDENTITY_H
#define AXON_BPF_IDENTITY_H

#include "common.h"
#include "maps_dp.h"
#include "dp.h"

static __always_inline __u32 identity_ipcache(__be32 addr)
{
	struct ipcache_key key = {.prefixlen = IPCACHE_PREFIX_LEN(32), .address = addr};
	const struct ipcache_value *ic = bpf_map_lookup_elem(&ipcache, &key);

	return ic && ic->identity ? ic->identity : IDENTITY_WORLD;
}

static __always_inline __u32 identity_not_host(__u32 identity)
{
	return identity == IDENTITY_HOST ? IDENTITY_WORLD : identity;
}

static __always_inline __u32 identity_local(__be32 addr)
{
	struct endpoint_key key = {.address = addr};
	const struct endpoint_info *ep;

	if (CONFIG.node_ip && addr == CONFIG.node_ip)
		return IDENTITY_HOST;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (ep && (ep->flags & ENDPOINT_F_HOST))
		return IDENTITY_HOST;
	if (ep && ep->identity)
		return ep->identity;
	return identity_ipcache(addr);
}

#endif /* AXON_BPF_IDENTITY_H */
