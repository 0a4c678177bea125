/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps only the tc datapath (tc_datapath.bpf.c) uses, defined once. The
 * service maps and metrics it shares with the socket load balancer are in
 * maps.h; the agent's loader pins every map of both objects under
 * <bpf-root>/maps/<name>, so the two objects share one copy of each.
 */
#ifndef AXON_BPF_MAPS_DP_H
#define AXON_BPF_MAPS_DP_H

#include "common.h"
#include "maps.h"

#include <axon/ct.h>
#include <axon/endpoint.h>
#include <axon/events.h>
#include <axon/ipcache.h>
#include <axon/nat.h>
#include <axon/policy.h>

/* Pod IP -> host-side device and MACs, for the pods on this node. Written by
 * the agent; read by every tc program to deliver with bpf_redirect_peer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} endpoints SEC(".maps");

/* Every endpoint and pod CIDR in the cluster -> identity, hosting node.
 * Written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

/* Conntrack (include/axon/ct.h). Written by the tc programs; expired entries
 * deleted by the agent's garbage collector; LRU so a flood of new flows
 * evicts the oldest instead of failing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct4_key);
	__type(value, struct ct4_entry);
	__uint(max_entries, CT4_TCP_MAX);
} ct4_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct4_key);
	__type(value, struct ct4_entry);
	__uint(max_entries, CT4_ANY_MAX);
} ct4_any SEC(".maps");

/* Source NAT pairs (include/axon/nat.h). Written by the tc programs; removed
 * with their conntrack entry by the agent's garbage collector. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct nat4_key);
	__type(value, struct nat4_entry);
	__uint(max_entries, NAT4_MAX);
} nat4 SEC(".maps");

/* rev_nat_index -> Maglev table, for services with SVC_FLAG2_MAGLEV. Written
 * by the agent (whole tables); not preallocated (64 KiB per entry). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_maglev_table);
	__uint(max_entries, LB4_MAGLEV_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_maglev SEC(".maps");

/* Drop and trace events for `agentctl monitor` (include/axon/events.h). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RINGBUF_SIZE);
} events SEC(".maps");

/* Per-CPU token bucket limiting events (include/axon/events.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_limit);
	__uint(max_entries, 1);
} events_limit SEC(".maps");

/* The same for policy-verdict events: a bucket of their own. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_limit);
	__uint(max_entries, 1);
} policy_events_limit SEC(".maps");

/*
 * Network policy (include/axon/policy.h): endpoint id -> that endpoint's
 * LPM trie. The agent creates each trie (the template below gives its
 * layout; its size is --bpf-policy-map-max) and puts it in the endpoint's
 * slot; the tc programs read it on a flow's first packet and add to the
 * matched entry's counters. Sizes, not BTF types, for the template: clang
 * emits a struct reached only through the outer map's pointers as a forward
 * declaration, which libbpf cannot size.
 */
struct policy_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(key_size, sizeof(struct policy_key));
	__uint(value_size, sizeof(struct policy_entry));
	__uint(max_entries, POLICY_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, POLICY_ENDPOINTS_MAX);
	__array(values, struct policy_map);
} policy SEC(".maps");

#endif /* AXON_BPF_MAPS_DP_H */
