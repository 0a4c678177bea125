/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loadBalancerSourceRanges (include/axon/lb.h, struct lb4_src_range_key):
 * a frontend with SVC_FLAG2_SOURCE_RANGE accepts a new flow from outside the
 * node only from a client inside one of its prefixes. The agent writes the
 * prefixes before it sets the flag and deletes them after clearing it, so a
 * frontend never checks against a half-written list.
 *
 * Contract: lb4_src_range_allowed() is true when @svc has no ranges or the
 * client matches one of @key's frontend. Checked by lb4_tc_fwd() for flows
 * from outside (from_netdev) on their first packet only; pods of the node
 * and the node itself are not checked (as Cilium), nor are flows already in
 * conntrack when the ranges change.
 */
#ifndef AXON_BPF_LB_SRC_RANGE_H
#define AXON_BPF_LB_SRC_RANGE_H

#include "common.h"

/* (frontend, client prefix) -> 1. Written by the agent (agent/lb/src_range.c). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lb4_src_range_key);
	__type(value, __u8);
	__uint(max_entries, LB4_SRC_RANGE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_source_range SEC(".maps");

static __always_inline bool lb4_src_range_allowed(const struct lb4_key *key,
						  const struct lb4_service *svc, __be32 client)
{
	struct lb4_src_range_key k = {
	    .prefixlen = LB_SRC_RANGE_PREFIX(32),
	    .fe_address = key->address,
	    .fe_port = key->dport,
	    .proto = key->proto,
	    .client = client,
	};

	if (!(svc->flags2 & SVC_FLAG2_SOURCE_RANGE))
		return true;
	return bpf_map_lookup_elem(&lb4_source_range, &k) != NULL;
}

#endif /* AXON_BPF_LB_SRC_RANGE_H */
