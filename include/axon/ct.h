/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: the state the tc programs keep per flow, so that every
 * packet of a flow gets the decision (backend, NAT) its first packet got, and
 * replies are translated back.
 *
 * Two LRU hashes with the same key and value: ct4_tcp for TCP, ct4_any for
 * everything else. A flow has one entry per direction the datapath sees it
 * in, keyed by the tuple as the packet carries it:
 *   CT_EGRESS   a flow a local pod (or the node) opened, tuple as it leaves;
 *   CT_INGRESS  a flow opened towards a local pod from elsewhere;
 *   CT_SERVICE  the pre-DNAT tuple of a flow to a service frontend (client ->
 *               VIP:port), whose entry names the backend chosen; the DNATed
 *               flow has an ordinary CT_EGRESS/CT_INGRESS entry carrying
 *               rev_nat_index for the reply's reverse translation.
 * A reply is looked up by the reversed tuple and the same direction flag.
 *
 * Times are seconds of CLOCK_MONOTONIC (bpf_ktime_get_ns() / 1e9), which the
 * agent's garbage collector compares against clock_gettime(CLOCK_MONOTONIC).
 */
#ifndef AXON_CT_H
#define AXON_CT_H

#include "types.h"

/* ct4_key.flags: the direction of the tuple */
#define CT_EGRESS	0
#define CT_INGRESS	1
#define CT_SERVICE	2

struct ct4_key {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;		/* ICMP: echo id in both ports */
	__be16 sport;
	__u8 nexthdr;		/* IPPROTO_* */
	__u8 flags;		/* CT_EGRESS / CT_INGRESS / CT_SERVICE */
	__u16 pad;
};

/* ct4_entry.flags */
#define CT_F_RX_CLOSING		(1 << 0)	/* FIN or RST seen from the responder */
#define CT_F_TX_CLOSING		(1 << 1)	/* FIN or RST seen from the initiator */
#define CT_F_SEEN_NON_SYN	(1 << 2)	/* handshake done: established timeout */
#define CT_F_NODE_PORT		(1 << 3)	/* arrived on a NodePort frontend */
#define CT_F_SNAT		(1 << 4)	/* source translated (masquerade/NodePort SNAT) */
#define CT_F_DSR_LOCAL		(1 << 5)	/* reserved */
#define CT_F_PROXY_REDIRECT	(1 << 6)	/* reserved */
#define CT_F_TX_NON_SYN		(1 << 7)	/* initiator sent a packet without SYN */
#define CT_F_RX_NON_SYN		(1 << 8)	/* responder sent a packet without SYN */
/* Network policy's verdict on the flow, taken on its first packet (an entry
 * exists only for flows that were let through; neither flag: no policy was
 * enforced on it). Later packets and replies follow the entry, never the
 * policy. */
#define CT_F_INGRESS_ALLOWED	(1 << 9)	/* the destination endpoint's ingress policy allowed it */
#define CT_F_EGRESS_ALLOWED	(1 << 10)	/* the source endpoint's egress policy allowed it */

struct ct4_entry {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u32 lifetime;		/* expires at this CLOCK_MONOTONIC second */
	__u16 flags;		/* CT_F_* */
	__u8 tx_flags_seen;	/* TCP flags seen from the initiator (TH_* bits) */
	__u8 rx_flags_seen;	/* TCP flags seen from the responder */
	__u32 rev_nat_index;	/* lb4_reverse_nat id of the frontend; 0 if none */
	__u32 backend_id;	/* CT_SERVICE: backend chosen for the flow */
	__u32 src_identity;	/* identity of the source at creation */
	__u32 last_report;	/* second of the last trace event for the flow */
	/* CT_F_SNAT: the flow's nat4 pair is EGRESS = this entry's key tuple,
	 * INGRESS = (saddr key.daddr, daddr nat_addr, sport key.dport, dport
	 * nat_port; ICMP echo: sport nat_port too). */
	__be32 nat_addr;	/* CT_F_SNAT: the address the source was translated to */
	__be16 nat_port;	/* CT_F_SNAT: the port it was translated to */
	__u16 ifindex;		/* reserved */
};

/* Defaults (seconds), Cilium's: configurable through the agent's flags and
 * handed to the programs in datapath_config. */
#define CT_LIFETIME_TCP_DEFAULT		8000	/* established */
#define CT_LIFETIME_SYN_DEFAULT		60	/* handshake not complete */
#define CT_LIFETIME_CLOSE_DEFAULT	10	/* FIN or RST seen */
#define CT_LIFETIME_ANY_DEFAULT		60	/* UDP, ICMP, other */

#define CT4_TCP_MAX	524288
#define CT4_ANY_MAX	262144

#endif /* AXON_CT_H */
