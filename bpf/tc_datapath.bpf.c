// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tc datapath: host routing, service load balancing for packets that did
 * not pass the socket hooks, conntrack and NAT. Four entry points:
 *
 *   from_container  ingress of a pod's host-side device (packets from the pod)
 *   to_container    egress of a pod's host-side device (packets the stack
 *                   sends to the pod)
 *   from_netdev     ingress of a native device (packets from the network)
 *   to_netdev       egress of a native device (packets leaving the node)
 *
 * Configuration is CONFIG (include/axon/config.h), set by the agent between
 * open and load.
 *
 * INTERFACE SKELETON: program names, maps and CONFIG are fixed; the logic is
 * being written (issue 3).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include <axon/config.h>

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/maps_dp.h"

#define TC_ACT_OK 0

const volatile struct datapath_config CONFIG = {};

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
