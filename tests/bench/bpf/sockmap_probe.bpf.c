// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark only, never loaded by the agent: socket-level redirection between
 * two local pods (sockmap), to measure what it would give and what it costs,
 * for bench_datapath.py's "sockmap" path and its receive-queue check.
 *
 * sock_ops, on the pods' cgroup: every established IPv4 TCP socket (or IPv6
 * socket with v4-mapped addresses, as a server on [::] accepts) goes into
 * probe_socks under its own (local, remote) tuple. sk_msg, on that map: a
 * sendmsg() whose peer is in the map is queued straight on the peer socket's
 * receive side (BPF_F_INGRESS), skipping TCP/IP on both ends. A socket that
 * sent anything through TCP keeps doing so (probe_passed), or its peer would
 * read redirected data before the TCP data sent earlier.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

struct probe_tuple {
	__u32 local_ip, remote_ip;
	__u32 local_port, remote_port;	/* host order */
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4096);
	__type(key, struct probe_tuple);
	__type(value, __u64);
} probe_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} probe_passed SEC(".maps");

/* The IPv4 address in a v4-mapped IPv6 one (::ffff:a.b.c.d), or 0. */
static __always_inline __u32 mapped_v4(__u32 a0, __u32 a1, __u32 a2, __u32 a3)
{
	return a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff) ? a3 : 0;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *ops)
{
	struct probe_tuple t = {};

	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (ops->family == AF_INET) {
		t.local_ip = ops->local_ip4;
		t.remote_ip = ops->remote_ip4;
	} else if (ops->family == AF_INET6) {
		t.local_ip = mapped_v4(ops->local_ip6[0], ops->local_ip6[1], ops->local_ip6[2],
				       ops->local_ip6[3]);
		t.remote_ip = mapped_v4(ops->remote_ip6[0], ops->remote_ip6[1],
					ops->remote_ip6[2], ops->remote_ip6[3]);
		if (!t.local_ip || !t.remote_ip)
			return 1;
	} else {
		return 1;
	}
	t.local_port = ops->local_port;
	t.remote_port = bpf_ntohl(ops->remote_port);
	bpf_sock_hash_update(ops, &probe_socks, &t, BPF_ANY);
	return 1;
}

SEC("sk_msg")
int probe_msg(struct sk_msg_md *msg)
{
	struct probe_tuple peer = {};
	__u8 *passed;

	if (!msg->sk)
		return SK_PASS;
	passed = bpf_sk_storage_get(&probe_passed, msg->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!passed || *passed)
		return SK_PASS;
	if (msg->family == AF_INET) {
		peer.local_ip = msg->remote_ip4;
		peer.remote_ip = msg->local_ip4;
	} else {
		peer.local_ip = mapped_v4(msg->remote_ip6[0], msg->remote_ip6[1],
					  msg->remote_ip6[2], msg->remote_ip6[3]);
		peer.remote_ip = mapped_v4(msg->local_ip6[0], msg->local_ip6[1],
					   msg->local_ip6[2], msg->local_ip6[3]);
	}
	peer.local_port = bpf_ntohl(msg->remote_port);
	peer.remote_port = msg->local_port;
	if (bpf_msg_redirect_hash(msg, &probe_socks, &peer, BPF_F_INGRESS) != SK_PASS)
		*passed = 1;	/* no peer: through TCP, now and from now on */
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
