// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket LB termination (include/axon/sock_term.h): socket iterators that
 * destroy the connected sockets the socket LB sent to a backend that is gone.
 *
 * An iterator walks the sockets of the network namespace of the process that
 * created it (bpf_iter_create()), so the agent runs these once per namespace.
 * Each runs with the socket locked, as bpf_sock_destroy() requires. The
 * programs print nothing: reading the iterator only runs them.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/common.h"
#include "lib/maps.h"
#include <axon/sock_term.h>

#define AF_INET 2

int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* (backend, frontend) pairs whose sockets are to go. Written and emptied by
 * the agent around each run; the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sock_term_key);
	__type(value, __u8);
	__uint(max_entries, SOCK_TERM_MAX);
} lb4_sock_term SEC(".maps");

/* Sockets destroyed and bpf_sock_destroy() failures, by SOCK_TERM_*: the
 * agent reads the difference a run made. */
__u64 destroyed[2];
__u64 failed[2];

/*
 * Is @sk, a socket of protocol @proto, connected to a listed backend through
 * a listed frontend by the socket LB? Its lb4_sock_rev peer entry (written by
 * connect4, deleted at release) must name its remote as the backend, and the
 * pair (remote, the entry's rev_nat_index) or (remote, any frontend) must be
 * listed.
 */
static __always_inline bool sock_term_match(const struct sock_common *sk, __u8 proto)
{
	const struct lb4_sock_rev_value *fe;
	struct lb4_sock_rev_key rkey = {};
	struct sock_term_key key = {};

	if (sk->skc_family != AF_INET || !sk->skc_daddr)
		return false;
	rkey.cookie = bpf_get_socket_cookie((void *)sk);
	fe = bpf_map_lookup_elem(&lb4_sock_rev, &rkey);
	if (!fe || fe->backend_address != sk->skc_daddr || fe->backend_port != sk->skc_dport)
		return false;
	key.address = sk->skc_daddr;
	key.port = sk->skc_dport;
	key.proto = proto;
	key.rev_nat_index = fe->rev_nat_index;
	if (key.rev_nat_index && bpf_map_lookup_elem(&lb4_sock_term, &key))
		return true;
	key.rev_nat_index = 0;
	return bpf_map_lookup_elem(&lb4_sock_term, &key);
}

static __always_inline void sock_term(struct sock_common *sk, __u32 which)
{
	if (which > SOCK_TERM_UDP)
		return;
	if (bpf_sock_destroy(sk))
		__sync_fetch_and_add(&failed[which], 1);
	else
		__sync_fetch_and_add(&destroyed[which], 1);
}

SEC("iter/tcp")
int sock_term_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *sk = ctx->sk_common;

	if (!sk)
		return 0;
	/* Listeners, handshakes a server has not accepted and TIME_WAIT
	 * remnants are not an application's connection. */
	if (sk->skc_state == TCP_LISTEN || sk->skc_state == TCP_NEW_SYN_RECV ||
	    sk->skc_state == TCP_TIME_WAIT || sk->skc_state == TCP_CLOSE)
		return 0;
	if (sock_term_match(sk, IPPROTO_TCP))
		sock_term(sk, SOCK_TERM_TCP);
	return 0;
}

SEC("iter/udp")
int sock_term_udp(struct bpf_iter__udp *ctx)
{
	struct sock_common *sk = (struct sock_common *)ctx->udp_sk;

	if (!sk)
		return 0;
	if (sock_term_match(sk, IPPROTO_UDP))
		sock_term(sk, SOCK_TERM_UDP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
