/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Network policy enforcement for the tc programs (maps, key layout and
 * prefixes in include/axon/policy.h), on the first packet of a flow only:
 * the caller asks before it creates the flow's conntrack entry, a denied
 * packet creates none, and the entry carries the verdict
 * (CT_F_INGRESS_ALLOWED / CT_F_EGRESS_ALLOWED) for the flow's later packets
 * and its replies, which follow conntrack and never come here. Nor does a
 * pod's connection through a service back to itself (hairpin): lb_hairpin.h
 * says why neither of its policies judges it.
 *
 * Contract:
 * - policy_enforce(c, ep, dir, remote): the policy of local endpoint @ep in
 *   direction @dir (POLICY_DIR_*) for the packet of @c, whose other end has
 *   identity @remote; the packet as it is now (after any DNAT: the backend).
 *   Not enforced in that direction (ep->policy): 0, nothing counted.
 *   Enforced, and allowed without a lookup (no count, no event):
 *     ingress from IDENTITY_HOST, what the node's own stack sends (Cilium's
 *     allow-localhost=always);
 *     an ICMP error (unreachable, time exceeded) quoting a packet of a flow
 *     conntrack tracks: it belongs to that flow, already let through.
 *   Otherwise the lookup below decides. The verdict is counted in metrics
 *   under the policy's direction: REASON_POLICY_ALLOWED, or the drop (the
 *   entry program counts it: c->dir is set to the policy's direction, as
 *   the ingress policy of a pod-to-pod flow is decided in from_container);
 *   the chosen entry's packets and bytes are added to; a policy-verdict
 *   event is sent (notify.h, policy_events_limit); an allow adds its
 *   direction's CT flag to c->policy_ct_flags. Returns 0, -DROP_POLICY or
 *   -DROP_POLICY_DENY.
 * - The lookup, Cilium's: no trie in the endpoint's slot of "policy" is
 *   -DROP_POLICY (fail closed: an endpoint whose map is not written yet
 *   gets nothing). Else two LPM lookups with the full key (the remote
 *   identity, direction, protocol and destination port; ICMP: its type as
 *   the port, other L4 without ports: 0): first with the remote identity,
 *   then with identity 0 (any). A deny found by either wins (the first
 *   lookup's ends it). Between two allows the longer protocol-and-port
 *   prefix wins, the identity's own on a tie. Nothing: -DROP_POLICY; a deny:
 *   -DROP_POLICY_DENY.
 */
#ifndef AXON_BPF_POLICY_H
#define AXON_BPF_POLICY_H

#include "common.h"
#include "maps_dp.h"
#include "metrics.h"
#include "notify.h"
#include "conntrack.h"
#include "dp.h"

#include <axon/policy.h>

static __always_inline __u8 policy_match_type(bool l3, __u8 prefix)
{
	if (l3)
		return prefix > POLICY_PREFIX_PROTO ? POLICY_MATCH_L3_L4
		       : prefix			    ? POLICY_MATCH_L3_PROTO
						    : POLICY_MATCH_L3_ONLY;
	return prefix > POLICY_PREFIX_PROTO ? POLICY_MATCH_L4_ONLY
	       : prefix			    ? POLICY_MATCH_PROTO_ONLY
					    : POLICY_MATCH_ALL;
}

/* Endpoint @ep_id's verdict for the packet of @c; *match: how it matched. */
static __always_inline int policy_lookup(struct dp_ctx *c, __u16 ep_id, __u32 remote, __u8 dir,
					 __u8 *match)
{
	const struct pkt4 *p = &c->pkt;
	struct policy_key key = {
	    .prefixlen = POLICY_KEY_PREFIXLEN(POLICY_PREFIX_L4_FULL),
	    .sec_label = remote,
	    .egress = dir,
	    .protocol = p->proto,
	};
	struct policy_entry *l3, *l4, *chosen;
	__u32 id = ep_id;
	bool is_l3;
	void *map;

	*match = POLICY_MATCH_NONE;
	map = bpf_map_lookup_elem(&policy, &id);
	if (!map)
		return -DROP_POLICY;
	if (p->has_ports && p->proto != IPPROTO_ICMP)
		key.dport = p->dport;
	else if (p->proto == IPPROTO_ICMP)
		key.dport = bpf_htons(p->icmp_type);

	l3 = bpf_map_lookup_elem(map, &key);
	if (l3 && (l3->flags & POLICY_F_DENY)) {
		chosen = l3;
		is_l3 = true;
	} else {
		key.sec_label = 0;
		l4 = bpf_map_lookup_elem(map, &key);
		if (l4 && ((l4->flags & POLICY_F_DENY) || !l3 ||
			   l4->lpm_prefix_length > l3->lpm_prefix_length)) {
			chosen = l4;
			is_l3 = false;
		} else if (l3) {
			chosen = l3;
			is_l3 = true;
		} else {
			return -DROP_POLICY;
		}
	}
	*match = policy_match_type(is_l3 && remote, chosen->lpm_prefix_length);
	__sync_fetch_and_add(&chosen->packets, 1);
	__sync_fetch_and_add(&chosen->bytes, c->len);
	return chosen->flags & POLICY_F_DENY ? -DROP_POLICY_DENY : 0;
}

/* An ICMP error about a packet of a flow conntrack tracks (either way it
 * was opened). */
static __always_inline bool policy_icmp_related(struct dp_ctx *c)
{
	struct iphdr inner;
	__u32 l4_off, port_off;
	struct ct4_key key;
	__be16 ports[2];

	if (pkt4_icmp_error_quote(c->skb, &c->pkt, &inner, ports, &l4_off, &port_off))
		return false;
	key.daddr = inner.daddr;
	key.saddr = inner.saddr;
	key.dport = ports[1];
	key.sport = ports[0];
	key.nexthdr = inner.protocol;
	key.flags = CT_EGRESS;
	key.pad = 0;
	if (ct4_lookup(c, &key))
		return true;
	key.flags = CT_INGRESS;
	return ct4_lookup(c, &key);
}

static __always_inline void policy_notify(struct dp_ctx *c, const struct endpoint_info *ep,
					  __u8 dir, __u32 remote, __u8 match, int ret)
{
	__u8 mdir = dir == POLICY_DIR_EGRESS ? METRIC_DIR_EGRESS : METRIC_DIR_INGRESS;
	struct event_hdr *e;
	__u64 now_ns;

	e = notify_reserve(c, &policy_events_limit, &now_ns);
	if (!e)
		return;
	e->src_identity = dir == POLICY_DIR_EGRESS ? ep->identity : remote;
	e->dst_identity = dir == POLICY_DIR_EGRESS ? remote : ep->identity;
	e->endpoint_id = ep->id;
	e->match_type = match;
	e->action = ret ? POLICY_ACTION_DENY : POLICY_ACTION_ALLOW;
	e->remote_identity = remote;
	e->flow_hash = bpf_get_hash_recalc(c->skb);
	notify_submit(c, e, EVENT_POLICY_VERDICT, mdir, ret ? -ret : REASON_POLICY_ALLOWED, now_ns);
}

static __always_inline int policy_enforce(struct dp_ctx *c, const struct endpoint_info *ep,
					  __u8 dir, __u32 remote)
{
	bool egress = dir == POLICY_DIR_EGRESS;
	__u8 mdir = egress ? METRIC_DIR_EGRESS : METRIC_DIR_INGRESS;
	__u8 match;
	int ret;

	if (!(ep->policy & (egress ? ENDPOINT_POLICY_EGRESS : ENDPOINT_POLICY_INGRESS)))
		return 0;
	if (!egress && remote == IDENTITY_HOST)
		return 0;
	if (c->pkt.proto == IPPROTO_ICMP && !c->pkt.has_ports && policy_icmp_related(c))
		return 0;
	ret = policy_lookup(c, ep->id, remote, dir, &match);
	policy_notify(c, ep, dir, remote, match, ret);
	if (ret) {
		c->dir = mdir;
		return ret;
	}
	metrics_count(REASON_POLICY_ALLOWED, mdir, c->len);
	c->policy_ct_flags |= egress ? CT_F_EGRESS_ALLOWED : CT_F_INGRESS_ALLOWED;
	return 0;
}

#endif /* AXON_BPF_POLICY_H */
