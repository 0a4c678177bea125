/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Network policy maps: the contract between the agent, which writes each
 * local endpoint's policy, the tc programs, which enforce it on the first
 * packet of every flow, and agentctl, which dumps it. Key and value are
 * Cilium's (policy_key / policy_entry of its per-endpoint LPM policy map),
 * so its semantics carry over: an entry allows (or denies) traffic with one
 * remote identity, in one direction, for one protocol and a power-of-two
 * range of destination ports.
 *
 * One LPM trie per endpoint ("inner" map, --bpf-policy-map-max entries),
 * created by the agent. One program serves every endpoint, so it reaches an
 * endpoint's trie through the pinned ARRAY_OF_MAPS "policy" at index
 * endpoint_info.id. An empty slot for an endpoint whose policy is enforced
 * is a deny (fail closed).
 *
 * The trie matches the first prefixlen bits after the prefixlen field:
 * sec_label and the direction always (POLICY_PREFIX_STATIC bits), then the
 * protocol (8 bits) and the port (up to 16), so that:
 *   prefix 0        any protocol, any port (protocol and port must be 0);
 *   prefix 8        one protocol, any port;
 *   prefix 8+n      one protocol, the ports sharing the port's first n bits
 *                   (8080/13 = 8080-8087); 8+16 one port.
 * A protocol cannot be wildcarded under a port (a port belongs to one
 * protocol). sec_label 0 is "any identity": the datapath looks up the remote
 * identity first, then 0 (see bpf/lib/policy.h for the precedence: a deny
 * from either lookup wins, else the longer prefix, else the identity's own).
 *
 * Within one lookup the trie returns the longest matching prefix only, so
 * an allow under a wider deny of the same identity would hide that deny:
 * the agent never writes one (agent/policy/map.c drops such allows).
 */
#ifndef AXON_POLICY_H
#define AXON_POLICY_H

#include "types.h"

/* policy_key.egress: the direction, seen from the local endpoint. */
#define POLICY_DIR_INGRESS	0
#define POLICY_DIR_EGRESS	1

struct policy_key {
	__u32 prefixlen;	/* bits of what follows that must match: POLICY_KEY_PREFIXLEN() */
	__u32 sec_label;	/* remote identity; 0: any */
	__u8 egress;		/* POLICY_DIR_* */
	__u8 protocol;		/* IPPROTO_*; 0: any (with the port) */
	__be16 dport;		/* destination port, network order (ICMP: the type) */
};

/* Prefix lengths: the identity and direction are always matched; the
 * protocol-and-port prefix (0..POLICY_PREFIX_L4_FULL) is what varies. */
#define POLICY_PREFIX_STATIC	40
#define POLICY_PREFIX_PROTO	8
#define POLICY_PREFIX_L4_FULL	24
#define POLICY_KEY_PREFIXLEN(l4_prefix)	(POLICY_PREFIX_STATIC + (l4_prefix))

/* policy_entry.flags */
#define POLICY_F_DENY		(1 << 0)

struct policy_entry {
	__be16 proxy_port;	/* L7 proxy redirect: not supported, 0 */
	__u8 flags;		/* POLICY_F_* */
	__u8 auth_type;		/* mutual authentication: not supported, 0 */
	/* The key's protocol-and-port prefix (0..24): a lookup returns the
	 * value, not the key that matched, and the precedence needs it. */
	__u8 lpm_prefix_length;
	__u8 pad1;
	__u16 pad2;
	/* What this entry decided: new flows' first packets and their bytes
	 * (a flow's later packets follow conntrack, never the policy). Atomic
	 * adds: a trie cannot be per-CPU. Reset when the agent rewrites the
	 * entry with another value. */
	__u64 packets;
	__u64 bytes;
};

/* How the chosen entry matched (Cilium's numbers, policy-verdict events). */
#define POLICY_MATCH_NONE	0	/* nothing matched, or no policy map */
#define POLICY_MATCH_L3_ONLY	1	/* identity, any protocol and port */
#define POLICY_MATCH_L3_L4	2	/* identity and port */
#define POLICY_MATCH_L4_ONLY	3	/* any identity, port */
#define POLICY_MATCH_ALL	4	/* any identity, any protocol and port */
#define POLICY_MATCH_L3_PROTO	5	/* identity and protocol, any port */
#define POLICY_MATCH_PROTO_ONLY	6	/* any identity, protocol, any port */

/* Policy-verdict events: the action taken. */
#define POLICY_ACTION_ALLOW	1
#define POLICY_ACTION_DENY	2

/* Entries per endpoint map (--bpf-policy-map-max: Cilium's default and range). */
#define POLICY_MAP_MAX		16384
#define POLICY_MAP_MAX_MIN	256
#define POLICY_MAP_MAX_MAX	65536

/* Slots of the outer map: endpoint ids 1..65535 (0: no id, never a map). */
#define POLICY_ENDPOINTS_MAX	65536

#endif /* AXON_POLICY_H */
