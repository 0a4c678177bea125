/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-level load balancing (IPv4, TCP and UDP), for the cgroup sock_addr
 * hooks in sock_lb.bpf.c.
 *
 * Forward: connect() and unconnected sendmsg() to a service frontend are
 * rewritten to a backend, so the packets carry the backend address from the
 * start and need no per-packet NAT.
 *
 * Reverse: the socket must still see the frontend it asked for, in
 * getpeername() and in the source of UDP replies. The forward path records
 * backend -> frontend in lb4_sock_rev; the reverse hooks look it up;
 * sock_release deletes it. Every entry is owned by one open socket, so the map
 * cannot fill up with the dead (cilium#38649).
 *
 * connect() records under (cookie, 0, 0): a connected socket has one peer,
 * and finding the entry again at release needs nothing but the cookie. This
 * is the hot path (every TCP connection) and costs one hash update; it used
 * to go through socket storage as well, whose creation alone measured ~1 us
 * per connect here (tests/bench, BPF run-time stats).
 *
 * Unconnected sendmsg() records under (cookie, backend, port), and names the
 * key in the socket's lb4_sock_track ring so sock_release can find it. The
 * ring keeps the per-socket count at SOCK_REV_PER_SOCKET: a UDP socket
 * talking to more backends forgets the oldest (deleting its lb4_sock_rev entry
 * first), so no socket can grow the map without bound.
 *
 * Ordering that keeps the map free of orphans under concurrent senders on one
 * socket: insert into lb4_sock_rev first, then make sure the key is in the
 * ring (under the ring's lock), then delete what the ring evicted. A key can
 * leave the ring only through an eviction, which is always followed by a
 * delete, so every entry in the map is named by its socket's ring or is about
 * to be deleted. (A racing eviction can drop a key a sender still uses; its
 * replies then show the backend address. That needs more than
 * SOCK_REV_PER_SOCKET destinations in flight on one socket.)
 */
#ifndef AXON_BPF_SOCK_H
#define AXON_BPF_SOCK_H

#include "common.h"
#include "maps.h"
#include "lb.h"
#include "metrics.h"

/* The network namespace of the node (the agent's), set between open and load.
 * A pod's hostPort on 127.0.0.1 is for the node's loopback only: a pod's own
 * 127.0.0.1 is its own. 0 (unknown): loopback host ports are not served. */
const volatile __u64 sock_host_netns_cookie = 0;

/* Whether the frontend @svc at @daddr serves the socket @ctx: a host port on
 * a loopback address only in the node's own namespace. */
static __always_inline bool sock4_frontend_serves(struct bpf_sock_addr *ctx,
						  const struct lb4_service *svc, __be32 daddr)
{
	/* 127.0.0.0/8: the first octet, which network order stores first. */
	if (!(svc->flags & SVC_FLAG_HOST_PORT) || ((const __u8 *)&daddr)[0] != 127)
		return true;
	return sock_host_netns_cookie && bpf_get_netns_cookie(ctx) == sock_host_netns_cookie;
}

static __always_inline __be16 ctx_user_port(const struct bpf_sock_addr *ctx)
{
	/* user_port is a __u32 holding the __be16 port in its first two bytes. */
	return (__be16)ctx->user_port;
}

static __always_inline void sock4_rev_key_init(struct lb4_sock_rev_key *key, __u64 cookie,
					       __be32 address, __be16 port)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->cookie = cookie;
	key->address = address;
	key->port = port;
}

/*
 * Record that unconnected socket @ctx sent to backend (@address, @port) on
 * behalf of frontend @fe. Returns 0, or the DROP_* reason it could not:
 *   DROP_SOCK_STORAGE_FAIL  no per-socket ring (allocation failed);
 *   DROP_SOCK_REV_MAP_FULL  lb4_sock_rev is full.
 * Either way nothing was recorded that sock_release would not find.
 */
static __always_inline __u8 sock4_rev_record_dest(struct bpf_sock_addr *ctx, __be32 address, __be16 port,
					     const struct lb4_sock_rev_value *fe)
{
	struct sock_track_slot evicted = {};
	const struct lb4_sock_rev_value *old;
	struct lb4_sock_rev_key key;
	struct sock_track *track;
	bool known = false;
	__u32 i, next;

	track = bpf_sk_storage_get(&lb4_sock_track, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!track)
		return DROP_SOCK_STORAGE_FAIL;

	sock4_rev_key_init(&key, bpf_get_socket_cookie(ctx), address, port);

	/* A UDP socket sending to the same service again: nothing to write. */
	old = bpf_map_lookup_elem(&lb4_sock_rev, &key);
	if (old && old->address == fe->address && old->port == fe->port &&
	    old->rev_nat_index == fe->rev_nat_index)
		return 0;

	if (bpf_map_update_elem(&lb4_sock_rev, &key, fe, BPF_ANY))
		return DROP_SOCK_REV_MAP_FULL;

	bpf_spin_lock(&track->lock);
#pragma unroll
	for (i = 0; i < SOCK_REV_PER_SOCKET; i++) {
		if (track->slot[i].address == address && track->slot[i].port == port)
			known = true;
	}
	if (!known) {
		next = track->next % SOCK_REV_PER_SOCKET;
		evicted = track->slot[next];
		track->slot[next].address = address;
		track->slot[next].port = port;
		track->next = (next + 1) % SOCK_REV_PER_SOCKET;
	}
	bpf_spin_unlock(&track->lock);

	if (evicted.address) {
		key.address = evicted.address;
		key.port = evicted.port;
		bpf_map_delete_elem(&lb4_sock_rev, &key);
	}
	return 0;
}

/*
 * Record that connecting socket @ctx's peer, backend @fe->backend_*, stands
 * for frontend @fe. Returns 0 or DROP_SOCK_REV_MAP_FULL. Overwrites what an
 * earlier connect() of the same socket recorded.
 */
static __always_inline __u8 sock4_rev_record_peer(struct bpf_sock_addr *ctx,
						  const struct lb4_sock_rev_value *fe)
{
	struct lb4_sock_rev_key key;

	sock4_rev_key_init(&key, bpf_get_socket_cookie(ctx), 0, 0);
	if (bpf_map_update_elem(&lb4_sock_rev, &key, fe, BPF_ANY))
		return DROP_SOCK_REV_MAP_FULL;
	return 0;
}

/*
 * A backend of @svc for the socket @ctx: while the service has
 * sessionAffinity: ClientIP, the one its network namespace was last sent to
 * (lb.h; keyed by netns cookie, not address: connect() runs before the socket
 * has a source address, and all of a pod's sockets share its netns), else a
 * random one. Same returns as lb4_select_backend().
 */
static __always_inline const struct lb4_backend *
sock4_select_backend(struct bpf_sock_addr *ctx, struct lb4_key *key,
		     const struct lb4_service *svc, __u8 *reason)
{
	struct lb4_affinity_key akey;

	if (!(svc->flags & SVC_FLAG_AFFINITY))
		return lb4_select_backend(key, svc, reason);
	__builtin_memset(&akey, 0, sizeof(akey));
	akey.rev_nat_index = svc->rev_nat_index;
	akey.netns_cookie = bpf_get_netns_cookie(ctx);
	return lb4_select_backend_affinity(key, svc, &akey, reason);
}

/*
 * connect4 (@connect) / sendmsg4: if the destination in @ctx is a service
 * frontend, rewrite it to a backend (sock4_select_backend) and record the
 * reverse entry.
 * Returns 0 (translated,
 * or not a service and untouched) or the negative errno the syscall must fail
 * with:
 *   -ECONNREFUSED  no backend: what kube-proxy's REJECT rule gives clients of
 *                  a service without endpoints, and what a missing backend
 *                  during an update looks like to them too (retryable);
 *   -ENOMEM        the reverse entry could not be recorded; translating anyway
 *                  would show the application the backend address (and, for
 *                  UDP, replies from an address it never sent to).
 */
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx, bool connect)
{
	const struct lb4_backend *backend;
	const struct lb4_service *svc;
	struct lb4_sock_rev_value fe;
	__be32 daddr = ctx->user_ip4;
	__be16 dport = ctx_user_port(ctx);
	__u32 proto = ctx->protocol;
	__be32 backend_addr;
	__be16 backend_port;
	struct lb4_key key;
	__u8 reason = 0;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;

	lb4_key_init(&key, daddr, dport, proto);
	/* Every socket here is a client on this node. */
	svc = lb4_lookup_service_internal(&key);
	if (!svc || !sock4_frontend_serves(ctx, svc, daddr))
		return 0;

	/* Whole-struct init: the padding is stored in the map too. */
	fe = (struct lb4_sock_rev_value){
		.address = daddr,
		.port = dport,
		.rev_nat_index = svc->rev_nat_index,
	};

	backend = sock4_select_backend(ctx, &key, svc, &reason);
	if (!backend) {
		metrics_count(reason, METRIC_DIR_SERVICE, 0);
		return -ECONNREFUSED;
	}
	backend_addr = backend->address;
	backend_port = backend->port;
	fe.backend_address = backend_addr;
	fe.backend_port = backend_port;

	if (connect)
		reason = sock4_rev_record_peer(ctx, &fe);
	else
		reason = sock4_rev_record_dest(ctx, backend_addr, backend_port, &fe);
	if (reason) {
		metrics_count(reason, METRIC_DIR_SERVICE, 0);
		return -ENOMEM;
	}

	ctx->user_ip4 = backend_addr;
	ctx->user_port = backend_port; /* a full 4-byte store, as the verifier requires */
	metrics_count(REASON_SOCK_LB_XLATED, METRIC_DIR_SERVICE, 0);
	return 0;
}

/*
 * recvmsg4 / getpeername4 (@peer_only): if @ctx's address is a backend this
 * socket was translated to, show the frontend instead, provided the frontend
 * still exists (its rev-NAT entry is there and still names it). A frontend
 * that is gone is not resurrected: the application sees the real peer.
 * getpeername() concerns the connected peer only; recvmsg() may also see a
 * reply to an unconnected sendmsg().
 */
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx, bool peer_only)
{
	__be32 addr = ctx->user_ip4;
	__be16 port = ctx_user_port(ctx);
	const struct lb4_sock_rev_value *fe = NULL;
	const struct lb4_reverse_nat *rnat;
	struct lb4_sock_rev_key key;
	__u64 cookie;
	__u32 index;

	cookie = bpf_get_socket_cookie(ctx);
	if (!peer_only) {
		sock4_rev_key_init(&key, cookie, addr, port);
		fe = bpf_map_lookup_elem(&lb4_sock_rev, &key);
	}
	if (!fe) {
		sock4_rev_key_init(&key, cookie, 0, 0);
		fe = bpf_map_lookup_elem(&lb4_sock_rev, &key);
		if (!fe || fe->backend_address != addr || fe->backend_port != port)
			return;
	}

	index = fe->rev_nat_index;
	rnat = bpf_map_lookup_elem(&lb4_reverse_nat, &index);
	if (!rnat || rnat->address != fe->address || rnat->port != fe->port)
		return;

	ctx->user_ip4 = fe->address;
	ctx->user_port = fe->port;
	metrics_count(REASON_SOCK_LB_REV_XLATED, METRIC_DIR_SERVICE, 0);
}

/* sock_release: delete socket @sk's connected-peer entry and every entry
 * its ring names. The ring itself goes with the socket. Nothing else runs on
 * a socket being released, so the ring is read without its lock. */
static __always_inline void sock4_rev_release(struct bpf_sock *sk)
{
	struct lb4_sock_rev_key key;
	struct sock_track *track;
	__u32 i;

	/* Most sockets never connect()ed to a service: a lockless lookup is
	 * cheaper than a delete that finds nothing. */
	sock4_rev_key_init(&key, bpf_get_socket_cookie(sk), 0, 0);
	if (bpf_map_lookup_elem(&lb4_sock_rev, &key))
		bpf_map_delete_elem(&lb4_sock_rev, &key);

	track = bpf_sk_storage_get(&lb4_sock_track, sk, NULL, 0);
	if (!track)
		return;
#pragma unroll
	for (i = 0; i < SOCK_REV_PER_SOCKET; i++) {
		if (!track->slot[i].address)
			continue;
		key.address = track->slot[i].address;
		key.port = track->slot[i].port;
		bpf_map_delete_elem(&lb4_sock_rev, &key);
	}
}

#endif /* AXON_BPF_SOCK_H */
