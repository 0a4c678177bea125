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
 *   time exceeded). Any other result (local destination, forwarding
 *   disabled, unreachable, blackhole, MTU, errors): TC_ACT_OK,
 *   REASON_TO_STACK. Delivery into a local pod keeps the TTL (one L2 hop).
 * - route4_to_stack(): TC_ACT_OK, REASON_TO_STACK.
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

static __always_inline int route4_fib(struct dp_ctx *c)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	const struct pkt4 *p = &c->pkt;
	long ret;

	if (!cfg_has(CFG_HOST_ROUTING))
		return route4_to_stack(c);
	fib.family = AF_INET;
	fib.tos = p->tos;
	fib.l4_protocol = p->proto;
	fib.sport = p->has_ports ? p->sport : 0;
	fib.dport = p->has_ports ? p->dport : 0;
	/* tot_len 0: the kernel checks the skb itself against the egress MTU
	 * (is_skb_forwardable, which knows GSO): a 64 KiB GSO packet, or a BIG
	 * TCP one whose IPv4 length is 0, is forwardable; a length given here
	 * would be compared with the MTU as is and send every GSO packet to
	 * the stack (BPF_FIB_LKUP_RET_FRAG_NEEDED). */
	fib.tot_len = 0;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = c->skb->ingress_ifindex ?: c->skb->ifindex;

	ret = bpf_fib_lookup(c->skb, &fib, sizeof(fib), 0);
	if ((ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	    c->pkt.ttl <= 1)
		return route4_to_stack(c);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		int err = pkt4_dec_ttl(c->skb, &c->pkt);

		if (err)
			return err;
	}
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		ret = bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	} else if (ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
		ret = bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	} else {
		return route4_to_stack(c);
	}
	if (ret != TC_ACT_REDIRECT)
		return -DROP_REDIRECT;
	c->ifindex_out = fib.ifindex;
	c->reason = REASON_FIB_FORWARDED;
	return TC_ACT_REDIRECT;
}

#endif /* AXON_BPF_ROUTE_H */
