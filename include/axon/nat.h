/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT (masquerade of pod traffic leaving the node, SNAT of NodePort
 * traffic sent on to a backend on another node, and of a pod's service
 * connection the tc LB sent back to the pod itself). One LRU hash, two
 * entries per translated flow:
 *   NAT_DIR_EGRESS   original tuple (pod:port -> dst:port) -> the node
 *                    address and port it is rewritten to;
 *   NAT_DIR_INGRESS  reply tuple as it arrives (dst:port -> node:nat_port) ->
 *                    the original pod address and port to restore.
 * Both are created together and deleted together, with the flow's conntrack
 * entry (the agent's garbage collector removes the NAT pair of every CT entry
 * it expires).
 */
#ifndef AXON_NAT_H
#define AXON_NAT_H

#include "types.h"

#define NAT_DIR_EGRESS	0
#define NAT_DIR_INGRESS	1

struct nat4_key {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 dir;		/* NAT_DIR_* */
	__u16 pad;
};

struct nat4_entry {
	__u64 created;		/* CLOCK_MONOTONIC second */
	__u64 needed;		/* CLOCK_MONOTONIC second of last use */
	__be32 to_addr;		/* EGRESS: new source; INGRESS: original source, restored as destination */
	__be16 to_port;
	__u16 pad;
};

/* Source ports masquerade may allocate, and how many random picks are tried
 * before the packet is dropped with DROP_NAT_NO_PORT. */
#define NAT_PORT_MIN_DEFAULT	32768
#define NAT_PORT_MAX_DEFAULT	60999
#define NAT_COLLISION_RETRIES	32

#define NAT4_MAX	524288

/*
 * The source a hairpinned service connection gets (a pod whose connection to
 * a service frontend the tc LB sent back to the pod itself; Cilium's
 * IPV4_LOOPBACK, --ipv4-service-loopback-address): link-local, so no pod or
 * node has it, and the pod's default route through its gateway takes the
 * replies back to its host-side device. Host order: 169.254.42.1.
 */
#define NAT_HAIRPIN_ADDR	0xa9fe2a01U

#endif /* AXON_NAT_H */
