/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet state of a tc datapath program and its configuration.
 *
 * The including program defines `const volatile struct datapath_config
 * CONFIG` before including this header (a const volatile global must live in
 * the object that the agent configures between open and load); the cfg_*()
 * accessors apply the documented defaults for fields left 0.
 *
 * Return convention of the helpers: 0 to go on, a TC_ACT_* verdict where a
 * helper ends the packet's path (with dp_ctx.reason set to the verdict's
 * reason), or -DROP_X; the entry program turns a negative code into the
 * counted drop, the drop event and TC_ACT_SHOT (dp_finish()).
 */
#ifndef AXON_BPF_DP_H
#define AXON_BPF_DP_H

#include "common.h"
#include "pkt.h"

#include <axon/config.h>
#include <axon/ct.h>
#include <axon/events.h>
#include <axon/nat.h>

struct dp_ctx {
	struct __sk_buff *skb;
	struct pkt4 pkt;
	struct ct4_entry *ct; /* the flow's entry, when one was found or made */
	__u32 len;	      /* skb->len at entry: the bytes counted */
	__u32 now;	      /* CLOCK_MONOTONIC seconds */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ifindex_out;   /* device the packet is redirected to, 0 if none */
	__u32 rev_nat_index; /* service of a DNAT done on this packet */
	__u8 dir;	     /* enum axon_metric_dir of the program */
	__u8 reason;	     /* reason of the final (non-drop) verdict */
	__u8 translated;     /* the packet was NATed here: route it, do not pass it up */
	__u8 node_port;	     /* the DNAT was of a NodePort frontend */
	__u8 ct_new;	     /* the flow's entry was created by this packet */
	__u16 policy_ct_flags; /* CT_F_*_ALLOWED: verdicts for the entry this packet creates */
};

#define NSEC_PER_SEC 1000000000ULL

static __always_inline __u32 cfg_ct_lifetime_tcp(void)
{
	return CONFIG.ct_lifetime_tcp ?: CT_LIFETIME_TCP_DEFAULT;
}

static __always_inline __u32 cfg_ct_lifetime_syn(void)
{
	return CONFIG.ct_lifetime_syn ?: CT_LIFETIME_SYN_DEFAULT;
}

static __always_inline __u32 cfg_ct_lifetime_close(void)
{
	return CONFIG.ct_lifetime_close ?: CT_LIFETIME_CLOSE_DEFAULT;
}

static __always_inline __u32 cfg_ct_lifetime_any(void)
{
	return CONFIG.ct_lifetime_any ?: CT_LIFETIME_ANY_DEFAULT;
}

static __always_inline __u16 cfg_node_port_min(void)
{
	return CONFIG.node_port_min ?: NODE_PORT_MIN_DEFAULT;
}

static __always_inline __u16 cfg_node_port_max(void)
{
	return CONFIG.node_port_max ?: NODE_PORT_MAX_DEFAULT;
}

static __always_inline __u64 cfg_events_rate(void)
{
	return CONFIG.events_rate ?: EVENTS_RATE_DEFAULT;
}

static __always_inline __u64 cfg_events_burst(void)
{
	return CONFIG.events_burst ?: EVENTS_BURST_DEFAULT;
}

static __always_inline bool cfg_has(__u16 flag)
{
	return CONFIG.flags & flag;
}

#endif /* AXON_BPF_DP_H */
