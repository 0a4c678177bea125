/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Datapath events: drops and traces sent to userspace through one BPF ring
 * buffer ("events"), which `agentctl monitor` reads. Sending is rate-limited
 * in the datapath (a token bucket per CPU, datapath_config.events_rate per
 * second, burst events_burst) so a flood of drops cannot flood the ring or
 * the CPU; what the limiter suppresses is counted, not lost silently.
 * Policy verdicts (one per new flow an enforced policy decides) take tokens
 * from a bucket of their own with the same rate and burst.
 */
#ifndef AXON_EVENTS_H
#define AXON_EVENTS_H

#include "types.h"

#define EVENT_DROP		1
#define EVENT_TRACE		2
#define EVENT_POLICY_VERDICT	3	/* an enforced policy decided a new flow */

/* Bytes of the packet copied into each event (its headers). */
#define EVENT_CAPTURE_LEN	128

struct event_hdr {
	__u8 type;		/* EVENT_* */
	__u8 dir;		/* enum axon_metric_dir (policy verdict: the policy's) */
	__u16 reason;		/* enum axon_reason (policy verdict: allowed, or the drop) */
	__u32 ifindex;		/* device the program ran on */
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u32 orig_len;		/* packet length */
	__u32 cap_len;		/* bytes of data[] that are valid */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ifindex_out;	/* trace: device the packet was sent to, 0 if none */
	/* Policy verdicts only (0 otherwise): */
	__u16 endpoint_id;	/* the local endpoint whose policy decided */
	__u8 match_type;	/* POLICY_MATCH_* (include/axon/policy.h) */
	__u8 action;		/* POLICY_ACTION_* */
	__u32 remote_identity;	/* the identity the policy was looked up with */
	__u32 flow_hash;	/* the skb's flow hash, to tell flows apart */
	__u8 data[EVENT_CAPTURE_LEN];
};

/* The limiter's per-CPU state (events_limit map; policy_events_limit for
 * policy verdicts, so a burst of new flows never starves the drops). */
struct event_limit {
	__u64 last_ns;		/* last refill */
	__u64 tokens;		/* events that may be sent now */
	__u64 suppressed;	/* events the limiter dropped */
};

#define EVENTS_RINGBUF_SIZE	(1 << 20)
#define EVENTS_RATE_DEFAULT	1000	/* per second per CPU */
#define EVENTS_BURST_DEFAULT	100

#endif /* AXON_EVENTS_H */
