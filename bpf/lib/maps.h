/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every BPF map, defined once.
 *
 * A map's variable name is its MAP_* name in include/axon/maps.h: the agent's
 * loader finds maps in a skeleton by that name and pins them under
 * <bpf-root>/maps/<name>, where agentctl reads them. Sizes are the *_MAX
 * defaults; the loader may resize a map between open and load.
 */
#ifndef AXON_BPF_MAPS_H
#define AXON_BPF_MAPS_H

#include "common.h"

/* Service frontends and their backend slots (layout in include/axon/lb.h).
 * Written by the agent; read by the socket load balancer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(max_entries, LB4_SERVICES_MAX);
} lb4_services SEC(".maps");

/* Backend id -> pod address, port, protocol, state. Written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_backend);
	__uint(max_entries, LB4_BACKENDS_MAX);
} lb4_backends SEC(".maps");

/* rev_nat_index -> frontend. Written by the agent; read by the reverse
 * socket hooks to check that a frontend a socket was translated from still
 * exists before showing it to the application. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_reverse_nat);
	__uint(max_entries, LB4_REVERSE_NAT_MAX);
} lb4_reverse_nat SEC(".maps");

/*
 * (socket cookie, backend or 0 for the connected peer) -> frontend the socket
 * asked for (key layout in include/axon/lb.h). Written by connect4/sendmsg4,
 * read by recvmsg4/getpeername4, deleted by sock_release (and by sendmsg4 when
 * a socket's track ring wraps, connect4 when a socket reconnects elsewhere).
 *
 * A plain HASH, not an LRU: every entry has an owner (the socket whose cookie
 * it holds) and is deleted when that socket is released, so the map holds at
 * most 1 + SOCK_REV_PER_SOCKET entries per open translated socket and never
 * needs eviction. An LRU would hide a leak rather than fix it
 * (cilium#38649: entries were never deleted and the map sat near full), and
 * under pressure it evicts entries of live sockets, silently breaking their
 * getpeername()/recvmsg() (cilium#42658); its per-CPU free lists also evict
 * well before the map is full. With a HASH a full map is visible: the
 * translation fails with ENOMEM and DROP_SOCK_REV_MAP_FULL is counted.
 * Preallocated (the default) so connect() never allocates here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_sock_rev_key);
	__type(value, struct lb4_sock_rev_value);
	__uint(max_entries, LB4_SOCK_REV_MAX);
} lb4_sock_rev SEC(".maps");

/*
 * Per-socket record of the lb4_sock_rev keys an unconnected sendmsg() created,
 * a ring of SOCK_REV_PER_SOCKET (backend address, port) pairs (the cookie is
 * the socket's own). Private to the BPF side: written by sendmsg4, read by
 * sock_release; the kernel frees it with the socket. The lock serialises
 * threads sending on the same unconnected UDP socket, so two of them never
 * claim the same slot and leak the key the other wrote.
 */
struct sock_track_slot {
	__be32 address; /* backend address; 0: slot unused */
	__be16 port;	/* backend port */
	__u16 pad;
};

struct sock_track {
	struct bpf_spin_lock lock;
	__u32 next; /* slot to (over)write next, 0..SOCK_REV_PER_SOCKET-1 */
	struct sock_track_slot slot[SOCK_REV_PER_SOCKET];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_track);
} lb4_sock_track SEC(".maps");

/* sessionAffinity: ClientIP (include/axon/lb.h): the tc LB's entries keyed
 * by client address, the socket LB's by network namespace. Written by both;
 * read by agentctl. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity_value);
	__uint(max_entries, LB4_AFFINITY_MAX);
} lb4_affinity SEC(".maps");

/* (reason, direction) -> calls/packets and bytes, per CPU. Written by every
 * program for every verdict it takes; read (summed over CPUs) by the agent and
 * agentctl. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_MAX);
} metrics SEC(".maps");

#endif /* AXON_BPF_MAPS_H */
