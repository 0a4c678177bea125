/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking for the tc programs (layout and meaning in
 * include/axon/ct.h).
 *
 * Contract:
 * - Keys carry the tuple as the packet carries it; a reply is looked up with
 *   the reversed tuple and the flag its flow was created with.
 * - ct4_account() books one packet on an entry: tx_* when it comes from the
 *   flow's initiator, rx_* from the responder; TCP flags seen per side;
 *   FIN/RST sets the side's *_CLOSING flag; CT_F_SEEN_NON_SYN once both
 *   sides sent a segment without SYN. The lifetime becomes now + the timeout
 *   of the state: close once any closing flag is set, else established with
 *   CT_F_SEEN_NON_SYN, else SYN; non-TCP any. A SYN (without ACK) on an
 *   entry with a closing flag reopens it: closing, non-SYN and flags-seen
 *   state reset (NAT and NodePort flags, which describe the translation,
 *   stay), REASON_CT_REOPENED counted.
 * - ct4_set_xlate(): the entry of a reused tuple takes the translation (rev-NAT
 *   index, CT_F_NODE_PORT) of the packet's connection.
 * - ct4_create() writes a new entry for the packet's flow (the packet is the
 *   initiator's first) and counts REASON_CT_NEW; -DROP_CT_MAP_UPDATE if the
 *   map refuses.
 * Entries are written in place without locks: counters with atomic adds,
 * flags and lifetime with plain stores only when they change (so an
 * established flow dirties the entry's cache line once per second at most
 * besides its counters).
 */
#ifndef AXON_BPF_CONNTRACK_H
#define AXON_BPF_CONNTRACK_H

#include "common.h"
#include "maps_dp.h"
#include "metrics.h"
#include "dp.h"

#define CT_DIR_TX 0 /* packet from the initiator */
#define CT_DIR_RX 1 /* packet from the responder */

#define CT_F_CLOSING   (CT_F_TX_CLOSING | CT_F_RX_CLOSING)
#define CT_F_TCP_STATE (CT_F_CLOSING | CT_F_SEEN_NON_SYN | CT_F_TX_NON_SYN | CT_F_RX_NON_SYN)

static __always_inline void ct4_key_fwd(struct ct4_key *key, const struct pkt4 *p, __u8 flags)
{
	key->daddr = p->daddr;
	key->saddr = p->saddr;
	key->dport = p->dport;
	key->sport = p->sport;
	key->nexthdr = p->proto;
	key->flags = flags;
	key->pad = 0;
}

static __always_inline void ct4_key_rev(struct ct4_key *key, const struct pkt4 *p, __u8 flags)
{
	key->daddr = p->saddr;
	key->saddr = p->daddr;
	key->dport = p->sport;
	key->sport = p->dport;
	key->nexthdr = p->proto;
	key->flags = flags;
	key->pad = 0;
}

/*
 * The entry of @key, or NULL. An entry past its lifetime is gone as far as
 * packets are concerned, whether or not the agent's GC has deleted it yet
 * (the GC deletes exactly those, lifetime < now): a new flow on its tuple
 * starts afresh (a new backend choice, new state, new counters) instead of
 * inheriting an old flow's, and a late reply finds no translation, as it
 * would after the GC. ct4_create() overwrites it.
 */
static __always_inline struct ct4_entry *ct4_lookup(const struct dp_ctx *c,
						    const struct ct4_key *key)
{
	struct ct4_entry *e;

	if (key->nexthdr == IPPROTO_TCP)
		e = bpf_map_lookup_elem(&ct4_tcp, key);
	else
		e = bpf_map_lookup_elem(&ct4_any, key);
	if (e && e->lifetime < c->now)
		return NULL;
	return e;
}

/* New TCP state flags of an entry in @flags after a segment with @tcp_flags
 * from side @dir; sets *reopened when a SYN reopens a closing entry. */
static __always_inline __u16 ct4_tcp_flags(__u16 flags, __u8 tcp_flags, int dir, bool *reopened)
{
	if ((tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN && (flags & CT_F_CLOSING)) {
		flags &= ~CT_F_TCP_STATE;
		*reopened = true;
	}
	if (!(tcp_flags & TH_SYN))
		flags |= dir == CT_DIR_TX ? CT_F_TX_NON_SYN : CT_F_RX_NON_SYN;
	if ((flags & (CT_F_TX_NON_SYN | CT_F_RX_NON_SYN)) == (CT_F_TX_NON_SYN | CT_F_RX_NON_SYN))
		flags |= CT_F_SEEN_NON_SYN;
	if (tcp_flags & (TH_FIN | TH_RST))
		flags |= dir == CT_DIR_TX ? CT_F_TX_CLOSING : CT_F_RX_CLOSING;
	return flags;
}

static __always_inline __u32 ct4_timeout(__u8 proto, __u16 flags)
{
	if (proto != IPPROTO_TCP)
		return cfg_ct_lifetime_any();
	if (flags & CT_F_CLOSING)
		return cfg_ct_lifetime_close();
	if (flags & CT_F_SEEN_NON_SYN)
		return cfg_ct_lifetime_tcp();
	return cfg_ct_lifetime_syn();
}

/* Book the packet of @c on entry @e, seen from side @dir. */
static __always_inline void ct4_account(struct dp_ctx *c, struct ct4_entry *e, int dir)
{
	const struct pkt4 *p = &c->pkt;
	bool reopened = false;
	__u16 flags = e->flags;
	__u32 lifetime;

	if (dir == CT_DIR_TX) {
		__sync_fetch_and_add(&e->tx_packets, 1);
		__sync_fetch_and_add(&e->tx_bytes, c->len);
	} else {
		__sync_fetch_and_add(&e->rx_packets, 1);
		__sync_fetch_and_add(&e->rx_bytes, c->len);
	}
	if (p->proto == IPPROTO_TCP) {
		flags = ct4_tcp_flags(flags, p->tcp_flags, dir, &reopened);
		if (reopened) {
			e->tx_flags_seen = 0;
			e->rx_flags_seen = 0;
			metrics_count(REASON_CT_REOPENED, c->dir, c->len);
		}
		if (dir == CT_DIR_TX) {
			if ((e->tx_flags_seen | p->tcp_flags) != e->tx_flags_seen)
				e->tx_flags_seen |= p->tcp_flags;
		} else {
			if ((e->rx_flags_seen | p->tcp_flags) != e->rx_flags_seen)
				e->rx_flags_seen |= p->tcp_flags;
		}
		if (flags != e->flags)
			e->flags = flags;
	}
	lifetime = c->now + ct4_timeout(p->proto, flags);
	if (e->lifetime != lifetime)
		e->lifetime = lifetime;
	c->ct = e;
}

/*
 * Make @e, the entry a packet found for its (post-DNAT) tuple, carry the
 * translation of the connection that packet belongs to: @rev_nat_index of the
 * frontend it was DNATed from (0: sent to this address itself), @node_port.
 * A client that reuses its source port finds the entry of its earlier
 * connection on the same tuple, which may have gone through another frontend
 * or none; the replies would come from that one and the client reset them.
 * Stores only when something differs, so an established flow's packets leave
 * the entry's cache line alone.
 */
static __always_inline void ct4_set_xlate(struct ct4_entry *e, __u32 rev_nat_index, bool node_port)
{
	__u16 flags = node_port ? e->flags | CT_F_NODE_PORT : e->flags & ~CT_F_NODE_PORT;

	if (e->rev_nat_index != rev_nat_index)
		e->rev_nat_index = rev_nat_index;
	if (e->flags != flags)
		e->flags = flags;
}

/*
 * Create the entry @key for the flow whose first packet is @c's, from the
 * fields the caller set in @tmpl (rev_nat_index, backend_id, flags, NAT).
 * Returns 0 or -DROP_CT_MAP_UPDATE.
 */
static __always_inline int ct4_create(struct dp_ctx *c, const struct ct4_key *key,
				      struct ct4_entry *tmpl)
{
	const struct pkt4 *p = &c->pkt;
	bool reopened = false;
	void *map = &ct4_any;

	tmpl->tx_packets = 1;
	tmpl->tx_bytes = c->len;
	if (p->proto == IPPROTO_TCP) {
		map = &ct4_tcp;
		tmpl->flags = ct4_tcp_flags(tmpl->flags, p->tcp_flags, CT_DIR_TX, &reopened);
		tmpl->tx_flags_seen = p->tcp_flags;
	}
	tmpl->lifetime = c->now + ct4_timeout(p->proto, tmpl->flags);
	if (!tmpl->src_identity)
		tmpl->src_identity = c->src_identity;
	if (bpf_map_update_elem(map, key, tmpl, BPF_ANY))
		return -DROP_CT_MAP_UPDATE;
	metrics_count(REASON_CT_NEW, c->dir, c->len);
	c->ct_new = 1;
	return 0;
}

#endif /* AXON_BPF_CONNTRACK_H */
