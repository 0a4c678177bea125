/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load-time configuration of the tc programs: one const volatile
 * `struct datapath_config CONFIG` in the BPF object, filled by the agent
 * between skeleton open and load (a change of any field means loading the
 * programs again and updating the links in place).
 */
#ifndef AXON_CONFIG_H
#define AXON_CONFIG_H

#include "types.h"

/* datapath_config.flags */
#define CFG_MASQUERADE		(1 << 0)	/* --enable-bpf-masquerade */
#define CFG_SOCK_LB		(1 << 1)	/* --bpf-lb-sock: socket LB handles pods' service traffic */
#define CFG_NODE_PORT		(1 << 2)	/* NodePort frontends served on native devices */
#define CFG_TRACE_EVENTS	(1 << 3)	/* send trace events, not just drops */
#define CFG_HOST_ROUTING	(1 << 4)	/* BPF host routing (redirect_peer / FIB); off: hand to the stack */

struct datapath_config {
	__be32 node_ip;			/* primary node address: SNAT source, NodePort frontend */
	__be32 native_cidr;		/* --ipv4-native-routing-cidr: not masqueraded to */
	__u8 native_cidr_len;		/* 0: no native-routing CIDR (everything off-node masqueraded) */
	__u8 pad0;
	__u16 flags;			/* CFG_* */
	__u16 node_port_min;		/* --node-port-range, host order */
	__u16 node_port_max;
	__u16 nat_port_min;		/* masquerade source ports, host order */
	__u16 nat_port_max;
	__u32 ct_lifetime_tcp;		/* seconds; see include/axon/ct.h */
	__u32 ct_lifetime_syn;
	__u32 ct_lifetime_close;
	__u32 ct_lifetime_any;
	__u32 events_rate;		/* events per second per CPU */
	__u32 events_burst;
};

#define NODE_PORT_MIN_DEFAULT	30000
#define NODE_PORT_MAX_DEFAULT	32767

#endif /* AXON_CONFIG_H */
