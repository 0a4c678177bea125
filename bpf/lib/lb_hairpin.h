/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hairpin on the tc LB path: a pod whose connection to a service frontend
 * the tc LB (lb_tc.h) sent back to the pod itself, its own backend. DNAT
 * alone would hand the pod a packet from its own address, which its kernel
 * drops as a martian; so the source becomes NAT_HAIRPIN_ADDR
 * (include/axon/nat.h, 169.254.42.1, Cilium's IPV4_LOOPBACK) with a port of
 * the nat4 map, and the pod answers that address through its default route,
 * i.e. back on its own host-side device. Both ways the packet is reflected
 * into the pod it came from (bpf_redirect_peer on the device it came in on,
 * Ethernet addresses swapped), whatever CFG_HOST_ROUTING says: the stack
 * would only route it back out of the same device, through to_container,
 * which would take the translated flow for a new one.
 *
 * State: the flow's CT_EGRESS entry, keyed by the post-DNAT, pre-SNAT tuple
 * (pod:sport -> pod:backend port), carries rev_nat_index and CT_F_SNAT with
 * nat_addr NAT_HAIRPIN_ADDR and nat_port, and names the flow's nat4 pair as
 * every SNAT entry does (so the agent's GC frees it with the entry):
 *   NAT_DIR_EGRESS   pod:sport -> pod:bport      => 169.254.42.1:nat_port
 *   NAT_DIR_INGRESS  pod:bport -> 169.254.42.1:nat_port => pod:sport
 *
 * Policy: none is enforced on a hairpinned flow, either way (as Cilium skips
 * it for its loopback flows). Both ends are the same pod: its egress policy
 * would judge the pod's own identity as the destination, its ingress policy
 * the same identity as the source, and a policy that selects a pod seldom
 * allows the pod's own labels (NetworkPolicy has no notion of "itself").
 * Yet the pod reaches itself over its own address through loopback, which
 * no policy sees; reaching itself through its own Service is the same
 * conversation, so it is allowed too. The entry carries no CT_F_*_ALLOWED
 * flag, and nothing is counted under REASON_POLICY_ALLOWED.
 *
 * Contract:
 * - lb4_hairpin_fwd(): for a packet lb4_tc_fwd() DNATed whose destination
 *   is now its own source (lb4_is_hairpin()), from a pod's device: the
 *   flow's entry (created on its first packet: snat4_drop_stale(),
 *   snat4_alloc(), REASON_CT_NEW; CT_F_NODE_PORT for a NodePort frontend)
 *   is accounted, the source rewritten to 169.254.42.1:nat_port
 *   (REASON_SNAT) and the packet reflected (TC_ACT_REDIRECT,
 *   REASON_TO_ENDPOINT). Drops: snat4_alloc()'s, -DROP_CT_MAP_UPDATE,
 *   -DROP_REDIRECT.
 * - lb4_hairpin_rev(): for a packet from a pod's device to 169.254.42.1. A
 *   reply whose tuple is a NAT_DIR_INGRESS key gets its destination restored
 *   (REASON_REV_SNAT), then its source the frontend (lb4_rev_dnat(),
 *   REASON_LB_REV_XLATED) and is reflected; an ICMP error quoting a
 *   hairpinned packet gets both translations in the quote and the frontend
 *   as its source (snat4_rev_icmp_error(), lb4_rev_icmp_error()). Returns
 *   the verdict, a drop, or 0 when the packet is no hairpinned flow's (the
 *   caller goes on as for any other destination).
 */
#ifndef AXON_BPF_LB_HAIRPIN_H
#define AXON_BPF_LB_HAIRPIN_H

#include "common.h"
#include "dp.h"
#include "conntrack.h"
#include "identity.h"
#include "lb_tc.h"
#include "metrics.h"
#include "snat.h"

#include <axon/nat.h>

static __always_inline __be32 lb4_hairpin_addr(void)
{
	return bpf_htonl(NAT_HAIRPIN_ADDR);
}

/* After DNAT: the backend chosen is the client itself. */
static __always_inline bool lb4_is_hairpin(const struct pkt4 *p)
{
	return p->daddr == p->saddr;
}

/* Back into the pod behind the device the packet came in on. */
static __always_inline int lb4_hairpin_reflect(struct dp_ctx *c)
{
	__u32 ifindex = c->skb->ifindex;
	__u8 mac[ETH_ALEN];
	struct ethhdr *eth;

	eth = ctx_data(c->skb);
	if ((void *)(eth + 1) > ctx_data_end(c->skb))
		return -DROP_INVALID_HDR;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	if (bpf_redirect_peer(ifindex, 0) != TC_ACT_REDIRECT)
		return -DROP_REDIRECT;
	c->dst_identity = c->src_identity;
	c->ifindex_out = ifindex;
	c->reason = REASON_TO_ENDPOINT;
	return TC_ACT_REDIRECT;
}

static __always_inline int lb4_hairpin_fwd(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	__be32 nat_addr = lb4_hairpin_addr();
	struct ct4_entry *e, tmpl = {};
	struct ct4_key key;
	__be16 nat_port;
	int ret;

	ct4_key_fwd(&key, p, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (e && (e->flags & CT_F_SNAT) && e->nat_addr == nat_addr) {
		ct4_set_xlate(e, c->rev_nat_index, c->node_port);
		ct4_account(c, e, CT_DIR_TX);
		nat_port = e->nat_port;
	} else {
		if (!c->src_identity)
			c->src_identity = identity_ipcache(p->saddr);
		snat4_drop_stale(c);
		ret = snat4_alloc(c, nat_addr, &nat_port);
		if (ret)
			return ret;
		tmpl.rev_nat_index = c->rev_nat_index;
		tmpl.flags = CT_F_SNAT | (c->node_port ? CT_F_NODE_PORT : 0);
		tmpl.nat_addr = nat_addr;
		tmpl.nat_port = nat_port;
		ret = ct4_create(c, &key, &tmpl);
		if (ret)
			return ret;
	}
	ret = snat4_apply(c, nat_addr, nat_port);
	if (ret)
		return ret;
	return lb4_hairpin_reflect(c);
}

static __always_inline int lb4_hairpin_rev(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	struct ct4_entry *e;
	struct ct4_key key;
	int ret;

	if (p->proto == IPPROTO_ICMP && !p->has_ports) {
		ret = snat4_rev_icmp_error(c);
		if (ret <= 0)
			return ret;
		ret = lb4_rev_icmp_error(c);
		if (ret < 0)
			return ret;
		return lb4_hairpin_reflect(c);
	}
	if (!p->has_ports)
		return 0;
	ret = snat4_rev(c);
	if (ret <= 0)
		return ret;
	/* Now pod:bport -> pod:sport, the reply of the flow's entry. */
	ct4_key_rev(&key, p, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		ct4_account(c, e, CT_DIR_RX);
		ret = lb4_rev_dnat(c, e);
		if (ret)
			return ret;
		c->src_identity = e->src_identity;
	}
	return lb4_hairpin_reflect(c);
}

#endif /* AXON_BPF_LB_HAIRPIN_H */
