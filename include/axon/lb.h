/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load-balancing maps: the contract between the agent, which writes
 * them, the BPF programs, which read them, and agentctl, which dumps them.
 *
 * A service frontend (VIP, port, protocol) is a run of entries in the services
 * map that share address/dport/proto/scope and differ in backend_slot:
 *   slot 0      the service entry: count = number of backend slots,
 *               rev_nat_index, flags, affinity timeout;
 *   slot 1..N   one per backend: backend_id points into the backends map.
 * Writers keep the run consistent by adding backend slots before raising
 * count and lowering count before deleting slots, so a reader that picks
 * slot (random % count) + 1 always finds a valid backend.
 *
 * The rev-NAT map turns rev_nat_index back into the frontend, which is what
 * replies (and getpeername) must show to the client.
 */
#ifndef AXON_LB_H
#define AXON_LB_H

#include "types.h"

/* lb4_key.scope: which traffic a frontend entry serves. Every frontend has an
 * LB_SCOPE_EXT entry; one with exactly one of SVC_FLAG_EXT_LOCAL and
 * SVC_FLAG_INT_LOCAL in it may have an LB_SCOPE_INT entry too, for clients on
 * this node (the agent writes one for externalTrafficPolicy: Local: every
 * backend, as kube-proxy gives the node's own clients). */
#define LB_SCOPE_EXT	0
#define LB_SCOPE_INT	1

struct lb4_key {
	__be32 address;		/* frontend IPv4 address (ClusterIP, node IP, ...) */
	__be16 dport;		/* frontend L4 port */
	__u16 backend_slot;	/* 0: service entry, 1..count: backend slots */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope;		/* LB_SCOPE_* */
	__u8 pad[2];
};

/* lb4_service.flags */
#define SVC_FLAG_CLUSTER_IP	(1 << 0)	/* frontend is a ClusterIP */
#define SVC_FLAG_NODE_PORT	(1 << 1)	/* frontend is a NodePort on a node address */
#define SVC_FLAG_EXTERNAL_IP	(1 << 2)	/* frontend is one of spec.externalIPs */
#define SVC_FLAG_LOAD_BALANCER	(1 << 3)	/* frontend is a status.loadBalancer ingress IP */
#define SVC_FLAG_AFFINITY	(1 << 4)	/* sessionAffinity: ClientIP */
#define SVC_FLAG_EXT_LOCAL	(1 << 5)	/* externalTrafficPolicy: Local */
#define SVC_FLAG_INT_LOCAL	(1 << 6)	/* internalTrafficPolicy: Local */
#define SVC_FLAG_HOST_PORT	(1 << 7)	/* a pod's hostPort: node address or 127.0.0.1 */

/* lb4_service.flags2 */
#define SVC_FLAG2_MAGLEV	(1 << 0)	/* pick backends from lb4_maglev, not at random */
#define SVC_FLAG2_SOURCE_RANGE	(1 << 1)	/* clients from outside: only lb4_source_range's */

struct lb4_service {
	union {
		__u32 backend_id;	/* slot > 0: key into the backends map */
		__u32 affinity_timeout;	/* slot 0: ClientIP affinity, seconds */
	};
	/* 32 bits, not Cilium's 16: a node may carry more than 65535
	 * frontends (100,000 services is a target). */
	__u32 rev_nat_index;	/* key into the rev-NAT map; same in every slot */
	__u16 count;		/* slot 0: number of backend slots */
	__u8 flags;		/* SVC_FLAG_*, slot 0 */
	__u8 flags2;		/* SVC_FLAG2_*, slot 0 */
};

/* lb4_backend.state */
#define BACKEND_STATE_ACTIVE		0	/* ready: chosen for new connections */
#define BACKEND_STATE_TERMINATING	1	/* serving but terminating */
#define BACKEND_STATE_MAINTENANCE	2	/* not chosen */

struct lb4_backend {
	__be32 address;		/* backend pod IPv4 */
	__be16 port;		/* backend L4 port (the endpoint port) */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 state;		/* BACKEND_STATE_* */
};

/* rev-NAT map: __u32 rev_nat_index -> frontend. */
struct lb4_reverse_nat {
	__be32 address;		/* frontend address shown to the client */
	__be16 port;		/* frontend port shown to the client */
	__u16 pad;
};

/*
 * Socket-level reverse translation (recvmsg4, getpeername4): for a socket
 * (cookie) that was translated to a backend, which frontend to show instead.
 *
 * Two kinds of key share the map:
 *   (cookie, 0, 0)              the peer of a connect()ed socket: a connected
 *                               socket has exactly one, so a reconnect simply
 *                               overwrites it and sock_release deletes it by
 *                               cookie alone, with no per-socket bookkeeping;
 *   (cookie, backend, port)     a destination of an unconnected UDP sendmsg();
 *                               the socket's storage names these (at most
 *                               SOCK_REV_PER_SOCKET) so sock_release finds them.
 * The value names the backend as well, so a connected entry is applied only
 * to the peer it was made for.
 */
struct lb4_sock_rev_key {
	__u64 cookie;		/* socket cookie */
	__be32 address;		/* backend address (0: the connected peer) */
	__be16 port;		/* backend port (0: the connected peer) */
	__u16 pad;
};

struct lb4_sock_rev_value {
	__be32 address;		/* frontend address */
	__be16 port;		/* frontend port */
	__u16 pad;
	__u32 rev_nat_index;
	__be32 backend_address;	/* the backend the socket was sent to */
	__be16 backend_port;
	__u16 pad2;
};

/* How many sendmsg() destinations one unconnected UDP socket remembers for
 * reverse lookups; one sending to more services than this forgets the oldest
 * (its replies then show the backend). */
#define SOCK_REV_PER_SOCKET	8

/*
 * sessionAffinity: ClientIP. The backend a client was last sent to, per
 * service; honoured while it is younger than the service's affinity_timeout
 * (and only while the service has SVC_FLAG_AFFINITY, so entries left behind
 * by a service whose affinity was switched off or that was deleted are never
 * read). An LRU: an evicted entry costs only the affinity, not the connection.
 *
 * Two kinds of client share the map, told apart by which field is set:
 *   tc LB      (client, rev_nat_index, 0): the packet's source IPv4;
 *   socket LB  (0, rev_nat_index, netns_cookie): the network namespace of the
 *              socket, as Cilium does: connect() runs before the socket has a
 *              source address, and every socket of a pod shares its netns.
 * One map rather than two: one size to configure (--bpf-lb-affinity-map-max),
 * one pin for agentctl, one LRU whose entries compete on recency alone; the
 * two kinds never collide, as a socket LB key has no client address and a tc
 * LB key no cookie. A client that reaches a service through both LBs has an
 * entry for each, as in Cilium.
 */
struct lb4_affinity_key {
	__be32 client;		/* tc LB: client IPv4; socket LB: 0 */
	__u32 rev_nat_index;	/* the service frontend */
	__u64 netns_cookie;	/* socket LB: bpf_get_netns_cookie(); tc LB: 0 */
};

struct lb4_affinity_value {
	__u64 last_used;	/* CLOCK_MONOTONIC second */
	__u32 backend_id;
	/* Socket LB: the service slot the backend was in. It is reused only
	 * while that slot still names it, which proves it is still one of the
	 * service's backends at O(1) (backend ids are shared between
	 * services, so lb4_backends alone does not). tc LB: 0. */
	__u16 backend_slot;
	__u16 pad;
};

/*
 * Maglev: per service with SVC_FLAG2_MAGLEV, a table of LB_MAGLEV_TABLE_SIZE
 * backend ids (a prime) computed by the agent with Maglev's permutation
 * algorithm; a flow hashes to a slot. Tables of services whose backends
 * change are rewritten whole (one map update, so a reader never sees half).
 */
#define LB_MAGLEV_TABLE_SIZE	16381

struct lb4_maglev_table {
	__u32 backend_ids[LB_MAGLEV_TABLE_SIZE];
};

/*
 * loadBalancerSourceRanges: per frontend (a LoadBalancer ingress IP, or a
 * NodePort of a LoadBalancer Service, with SVC_FLAG2_SOURCE_RANGE), the
 * client prefixes it accepts from outside the node. An LPM trie: the
 * frontend is the fixed part of every key, the client prefix the rest, so
 * prefixlen = LB_SRC_RANGE_PREFIX(client prefix length). The value is unused
 * (1). Written by the agent before the flag, deleted after it.
 */
struct lb4_src_range_key {
	__u32 prefixlen;
	__be32 fe_address;	/* frontend */
	__be16 fe_port;
	__u8 proto;
	__u8 pad;
	__be32 client;		/* client prefix, network order */
};

#define LB_SRC_RANGE_FIXED_BITS	64
#define LB_SRC_RANGE_PREFIX(n)	(LB_SRC_RANGE_FIXED_BITS + (n))
#define LB4_SRC_RANGE_MAX	16384

#endif /* AXON_LB_H */
