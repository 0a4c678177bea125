/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host routing in BPF: delivery into a local pod with bpf_redirect_peer, and
 * forwarding of everything else by FIB lookup and bpf_redirect_neigh. What
 * the FIB cannot forward goes to the stack, never into a black hole.
 *
 * Contract (each returns the verdict and sets c->reason, or a drop):
 * - route4_to_pod(): Ethernet destination = endpoint.mac (when not zero),
 *   source = endpoint.node_mac, bpf_redirect_peer(endpoint.ifindex, 0):
 *   TC_ACT_REDIRECT, REASON_TO_ENDPOINT; -DROP_REDIRECT if refused.
 * - route4_fib(): bpf_fib_lookup (input lookup on skb->ingress_ifindex, or
 *   skb->ifindex when that is 0; no flags). SUCCESS: bpf_redirect_neigh(
 *   fib ifindex, NULL); NO_NEIGH: bpf_redirect_neigh with the FIB's nexthop;
 *   both TC_ACT_REDIRECT, REASON_FIB_FORWARDED, the TTL decremented as by
 *   any router (a TTL of 1 or less goes to the stack, which answers with
 *   time exceeded). A packet too long for the way out (route4_mtu_exceeded)
 *   goes to the stack, which answers a DF one with ICMP fragmentation needed
 *   and fragments the others: TC_ACT_OK, REASON_TO_STACK_MTU. Any other
 *   result (local destination, forwarding disabled, unreachable, blackhole,
 *   errors): TC_ACT_OK, REASON_TO_STACK. Delivery into a local pod keeps the
 *   TTL (one L2 hop).
 * - route4_to_stack(): TC_ACT_OK, REASON_TO_STACK.
 *
 * MTU: a redirected packet meets no ICMP or fragmentation on its way out (a
 * veth's xmit drops an over-MTU frame without a word), so the check is here.
 * A non-GSO packet gives the FIB its IPv4 length, which the FIB compares
 * with the route's MTU (an `mtu` metric, else the device's) before its
 * neighbour lookup, so NO_NEIGH is covered too. A GSO packet (64 KiB, or a
 * BIG TCP one with IPv4 length 0) would fail that as a whole, so it gives no
 * length and its segments are checked against the egress device's MTU with
 * bpf_check_mtu(BPF_MTU_CHK_SEGS) (skb_gso_validate_network_len, as the
 * stack's forwarding does); a route's `mtu` metric is not seen for GSO.
 * With CFG_HOST_ROUTING off, route4_to_pod() and route4_fib() hand the packet
 * to the stack instead.
 */
#ifndef AXON_BPF_ROUTE_H
#define AXON_BPF_ROUTE_H

#include "common.h"
#include "maps_dp.h"
#include "dp.h"

static __always_inline int route4_to_stack(struct dp_ctx *c)
{
	c->reason = REASON_TO_STACK;
	return TC_ACT_OK;
}

/* The local pod at @addr, or NULL (not local, or the node's own address). */
static __always_inline const struct endpoint_info *route4_local_pod(__be32 addr)
{
	struct endpoint_key key = {.address = addr};
	const struct endpoint_info *ep;

	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (ep && (ep->flags & ENDPOINT_F_HOST))
		return NULL;
	return ep;
}

static __always_inline bool mac_is_zero(const __u8 *mac)
{
	return !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

static __always_inline int route4_to_pod(struct dp_ctx *c, const struct endpoint_info *ep)
{
	__u32 ifindex = ep->ifindex;
	struct ethhdr *eth;
	long ret;

	if (!cfg_has(CFG_HOST_ROUTING))
		return route4_to_stack(c);
	c->dst_identity = ep->identity;
	/* Direct writes: cheaper than bpf_skb_store_bytes() on the hot path
	 * (the verifier's prologue unclones the skb for programs that write). */
	eth = ctx_data(c->skb);
	if ((void *)(eth + 1) > ctx_data_end(c->skb))
		return -DROP_INVALID_HDR;
	if (!mac_is_zero(ep->mac))
		__builtin_memcpy(eth->h_dest, ep->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->node_mac, ETH_ALEN);
	ret = bpf_redirect_peer(ifindex, 0);
	if (ret != TC_ACT_REDIRECT)
		return -DROP_REDIRECT;
	c->ifindex_out = ifindex;
	c->reason = REASON_TO_ENDPOINT;
	return TC_ACT_REDIRECT;
}

static __always_inline int route4_to_stack_mtu(struct dp_ctx *c)
{
	c->reason = REASON_TO_STACK_MTU;
	return TC_ACT_OK;
}

/* A GSO packet whose segments exceed @ifindex's MTU. One helper call, for
 * GSO packets only (the FIB checked the others). */
static __always_inline bool route4_gso_too_big(struct __sk_buff *skb, __u32 ifindex)
{
	__u32 mtu = 0;	/* BPF_MTU_CHK_SEGS wants 0 in, no len_diff */

	return bpf_check_mtu(skb, ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) ==
	       BPF_MTU_CHK_RET_SEGS_TOOBIG;
}

static __always_inline int route4_fib(struct dp_ctx *c)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	const struct pkt4 *p = &c->pkt;
	bool gso = c->skb->gso_size;
	long ret;
	int err;

	if (!cfg_has(CFG_HOST_ROUTING))
		return route4_to_stack(c);
	fib.family = AF_INET;
	fib.tos = p->tos;
	fib.l4_protocol = p->proto;
	fib.sport = p->has_ports ? p->sport : 0;
	fib.dport = p->has_ports ? p->dport : 0;
	/* See "MTU" above: 0 for GSO, else the FIB checks this length. */
	fib.tot_len = gso ? 0 : p->tot_len;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = c->skb->ingress_ifindex ?: c->skb->ifindex;

	ret = bpf_fib_lookup(c->skb, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return route4_to_stack_mtu(c);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return route4_to_stack(c);
	if (gso && route4_gso_too_big(c->skb, fib.ifindex))
		return route4_to_stack_mtu(c);
	if (c->pkt.ttl <= 1)
		return route4_to_stack(c);
	err = pkt4_dec_ttl(c->skb, &c->pkt);
	if (err)
		return err;

	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		ret = bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	} else {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
		ret = bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	if (ret != TC_ACT_REDIRECT)
		return -DROP_REDIRECT;
	c->ifindex_out = fib.ifindex;
	c->reason = REASON_FIB_FORWARDED;
	return TC_ACT_REDIRECT;
}

#endif /* AXON_BPF_ROUTE_H */
