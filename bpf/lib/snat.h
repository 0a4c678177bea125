/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT with the nat4 map (layout in include/axon/nat.h): masquerade of
 * pod traffic leaving the node, and the SNAT of NodePort traffic sent on to a
 * backend on another node.
 *
 * Contract:
 * - snat4_alloc(): for the packet's tuple (the original, pre-SNAT one), pick
 *   a source port in [nat_port_min, nat_port_max] (0: NAT_PORT_*_DEFAULT):
 *   up to NAT_COLLISION_RETRIES random picks, each checked against the
 *   NAT_DIR_INGRESS key the reply will carry (saddr = dst, daddr = @nat_addr,
 *   sport = dport, dport = port; ICMP echo: the identifier is both ports) and
 *   claimed with BPF_NOEXIST so two CPUs cannot take the same port. Then the
 *   NAT_DIR_EGRESS entry (original tuple -> @nat_addr:port) is written.
 *   -DROP_NAT_NO_PORT when every pick collided, -DROP_NAT_MAP_UPDATE when the
 *   map refused (nothing is left behind).
 * - snat4_drop_stale(): before snat4_alloc() for a tuple with no live
 *   conntrack entry, the reply (ingress) entry of a pair an expired flow on
 *   that tuple left is deleted (if it still restores the tuple).
 * - snat4_rev(): a packet whose tuple is a NAT_DIR_INGRESS key gets its
 *   destination restored (REASON_REV_SNAT). Returns 1 if it was, 0 if not.
 * - snat4_masq_wanted(): masquerade applies to a packet from a local pod
 *   (endpoints, not ENDPOINT_F_HOST, or ipcache IPCACHE_F_LOCAL) to an
 *   address outside the native-routing CIDR (every address when its length
 *   is 0), with CFG_MASQUERADE.
 */
#ifndef AXON_BPF_SNAT_H
#define AXON_BPF_SNAT_H

#include "common.h"
#include "maps_dp.h"
#include "metrics.h"
#include "dp.h"

#define EEXIST 17

static __always_inline void nat4_key_fwd(struct nat4_key *key, const struct pkt4 *p, __u8 dir)
{
	key->daddr = p->daddr;
	key->saddr = p->saddr;
	key->dport = p->dport;
	key->sport = p->sport;
	key->nexthdr = p->proto;
	key->dir = dir;
	key->pad = 0;
}

static __always_inline int snat4_alloc(struct dp_ctx *c, __be32 nat_addr, __be16 *nat_port)
{
	const struct pkt4 *p = &c->pkt;
	struct nat4_entry ingress = {}, egress = {};
	struct nat4_key ikey, ekey;
	__u32 min = CONFIG.nat_port_min, max = CONFIG.nat_port_max;
	__u32 range, i;
	__be16 port;
	int err;

	if (!min || !max || max < min) {
		min = NAT_PORT_MIN_DEFAULT;
		max = NAT_PORT_MAX_DEFAULT;
	}
	range = max - min + 1;

	ikey.daddr = nat_addr;
	ikey.saddr = p->daddr;
	ikey.sport = p->dport;
	ikey.nexthdr = p->proto;
	ikey.dir = NAT_DIR_INGRESS;
	ikey.pad = 0;
	ingress.created = c->now;
	ingress.needed = c->now;
	ingress.to_addr = p->saddr;
	ingress.to_port = p->sport;

	for (i = 0; i < NAT_COLLISION_RETRIES; i++) {
		port = bpf_htons(min + bpf_get_prandom_u32() % range);
		ikey.dport = port;
		if (p->proto == IPPROTO_ICMP)
			ikey.sport = port;
		if (bpf_map_lookup_elem(&nat4, &ikey))
			continue;
		err = bpf_map_update_elem(&nat4, &ikey, &ingress, BPF_NOEXIST);
		if (err == -EEXIST)
			continue;
		if (err)
			return -DROP_NAT_MAP_UPDATE;

		nat4_key_fwd(&ekey, p, NAT_DIR_EGRESS);
		egress.created = c->now;
		egress.needed = c->now;
		egress.to_addr = nat_addr;
		egress.to_port = port;
		if (bpf_map_update_elem(&nat4, &ekey, &egress, BPF_ANY)) {
			bpf_map_delete_elem(&nat4, &ikey);
			return -DROP_NAT_MAP_UPDATE;
		}
		*nat_port = port;
		return 0;
	}
	return -DROP_NAT_NO_PORT;
}

/*
 * Before a new SNAT for the packet's tuple: delete the ingress entry of the
 * pair an earlier flow on the same tuple left (its conntrack entry expired,
 * the GC has not run yet: a client reusing its source port). snat4_alloc()
 * overwrites the egress entry, and the GC frees only the pair the new
 * conntrack entry names, so that ingress entry would hold its port until LRU
 * eviction. A new port rather than the old one: the GC may be deleting this
 * very pair meanwhile, and would take the new flow's reply entry with it.
 */
static __always_inline void snat4_drop_stale(struct dp_ctx *c)
{
	const struct pkt4 *p = &c->pkt;
	const struct nat4_entry *egress, *ingress;
	struct nat4_key key;

	nat4_key_fwd(&key, p, NAT_DIR_EGRESS);
	egress = bpf_map_lookup_elem(&nat4, &key);
	if (!egress)
		return;
	key.daddr = egress->to_addr;
	key.saddr = p->daddr;
	key.dport = egress->to_port;
	key.sport = p->proto == IPPROTO_ICMP ? egress->to_port : p->dport;
	key.dir = NAT_DIR_INGRESS;
	ingress = bpf_map_lookup_elem(&nat4, &key);
	/* Only while it restores this tuple, as the GC checks. */
	if (ingress && ingress->to_addr == p->saddr && ingress->to_port == p->sport)
		bpf_map_delete_elem(&nat4, &key);
}

/* Rewrite the source to @addr:@port, counted as REASON_SNAT. */
static __always_inline int snat4_apply(struct dp_ctx *c, __be32 addr, __be16 port)
{
	int ret = pkt4_set_src(c->skb, &c->pkt, addr, port);

	if (ret)
		return ret;
	c->translated = 1;
	metrics_count(REASON_SNAT, c->dir, c->len);
	return 0;
}

static __always_inline int snat4_rev(struct dp_ctx *c)
{
	struct nat4_entry *e;
	struct nat4_key key;
	int ret;

	nat4_key_fwd(&key, &c->pkt, NAT_DIR_INGRESS);
	e = bpf_map_lookup_elem(&nat4, &key);
	if (!e)
		return 0;
	if (e->needed != c->now)
		e->needed = c->now;
	ret = pkt4_set_dst(c->skb, &c->pkt, e->to_addr, e->to_port);
	if (ret)
		return ret;
	c->translated = 1;
	metrics_count(REASON_REV_SNAT, c->dir, c->len);
	return 1;
}

/*
 * An ICMP error (destination unreachable, e.g. fragmentation needed, or time
 * exceeded) about a packet a masqueraded pod sent: its quoted header carries
 * the node's address and NAT port, so the pod would never match it to its
 * socket. Restores the outer destination and the quoted source to the pod's
 * (the quoted IPv4 checksum fixed, the ICMP checksum following the quoted
 * port; a quoted UDP checksum is left as it is: receivers do not check it).
 * Returns 1 if translated, 0 if not ours (or not for a local pod: those go to
 * the stack), or a drop.
 */
static __always_inline int snat4_rev_icmp_error(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	__u32 in_off = p->l4_off + sizeof(struct icmphdr), l4_off, port_off;
	__u32 icmp_csum = p->l4_off + offsetof(struct icmphdr, checksum);
	const struct endpoint_info *ep;
	struct endpoint_key ekey = {};
	struct nat4_entry *e;
	struct nat4_key key;
	struct iphdr inner;
	__be16 ports[2];

	if (pkt4_icmp_error_quote(c->skb, p, &inner, ports, &l4_off, &port_off))
		return 0;

	/* The reply tuple of the quoted packet is the NAT_DIR_INGRESS key. */
	key.saddr = inner.daddr;
	key.daddr = inner.saddr;
	key.sport = ports[1];
	key.dport = ports[0];
	key.nexthdr = inner.protocol;
	key.dir = NAT_DIR_INGRESS;
	key.pad = 0;
	e = bpf_map_lookup_elem(&nat4, &key);
	if (!e)
		return 0;
	ekey.address = e->to_addr;
	ep = bpf_map_lookup_elem(&endpoints, &ekey);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return 0;

	/* Quoted source address: its header checksum follows, so the quoted
	 * header still sums to the same and the ICMP checksum is unchanged. */
	if (bpf_l3_csum_replace(c->skb, in_off + offsetof(struct iphdr, check), inner.saddr,
				e->to_addr, sizeof(e->to_addr)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(c->skb, in_off + offsetof(struct iphdr, saddr), &e->to_addr,
				sizeof(e->to_addr), 0))
		return -DROP_CSUM_UPDATE;
	/* Quoted source port (echo identifier). */
	if (bpf_l4_csum_replace(c->skb, icmp_csum, ports[0], e->to_port, sizeof(e->to_port)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(c->skb, port_off, &e->to_port, sizeof(e->to_port), 0))
		return -DROP_CSUM_UPDATE;
	/* Outer destination (ICMP has no pseudo header). */
	if (pkt4_set_addr(c->skb, p, false, e->to_addr))
		return -DROP_CSUM_UPDATE;
	c->translated = 1;
	metrics_count(REASON_REV_SNAT, c->dir, c->len);
	return 1;
}

static __always_inline bool snat4_in_native_cidr(__be32 addr)
{
	__u32 len = CONFIG.native_cidr_len;
	__be32 mask;

	if (!len)
		return false;
	if (len > 32)
		len = 32;
	mask = bpf_htonl((__u32)(0xffffffffULL << (32 - len)));
	return (addr & mask) == (CONFIG.native_cidr & mask);
}

static __always_inline bool snat4_src_is_local_pod(__be32 saddr)
{
	struct endpoint_key ekey = {.address = saddr};
	struct ipcache_key ikey = {.prefixlen = 32, .address = saddr};
	const struct endpoint_info *ep;
	const struct ipcache_value *ic;

	ep = bpf_map_lookup_elem(&endpoints, &ekey);
	if (ep)
		return !(ep->flags & ENDPOINT_F_HOST);
	ic = bpf_map_lookup_elem(&ipcache, &ikey);
	return ic && (ic->flags & IPCACHE_F_LOCAL);
}

static __always_inline bool snat4_masq_wanted(const struct pkt4 *p)
{
	if (!cfg_has(CFG_MASQUERADE))
		return false;
	if (p->saddr == CONFIG.node_ip || snat4_in_native_cidr(p->daddr))
		return false;
	return snat4_src_is_local_pod(p->saddr);
}

#endif /* AXON_BPF_SNAT_H */
