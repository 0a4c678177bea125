// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark only, never loaded by the agent: the least a host-routing datapath
 * can do per packet. On a pod's host-side device (tc ingress): look the IPv4
 * destination up in the node's FIB (the kernel path's own /32 routes) and, for
 * a pod route, bpf_redirect_peer() into that pod; everything else goes to the
 * stack. No conntrack, no endpoint map, no counters, no TTL or MAC rewrite.
 * bench_datapath.py's "floor" path: what any eBPF host routing could gain over
 * the kernel's routing for the same pods, with nothing of its own to do.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define AF_INET 2
#define TC_ACT_OK 0

SEC("tc")
int redirect_floor(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	fib.family = AF_INET;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;
	/* A pod's route is a /32 on its host-side veth, no gateway (the lookup
	 * leaves the destination as the next hop): that veth's peer is the pod.
	 * The MACs stay as sent: the frame was PACKET_HOST on arrival, and a
	 * redirect to a peer keeps that. */
	if (fib.ipv4_dst != ip->daddr || fib.ifindex == skb->ingress_ifindex)
		return TC_ACT_OK;
	return bpf_redirect_peer(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
