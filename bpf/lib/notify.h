/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Drop and trace events to userspace through the `events` ring buffer
 * (include/axon/events.h), rate-limited per CPU.
 *
 * Contract: notify_event() sends one struct event_hdr with up to
 * EVENT_CAPTURE_LEN bytes of the packet. Traces only with CFG_TRACE_EVENTS.
 * The limiter is a token bucket in events_limit (per CPU): it refills at
 * CONFIG.events_rate tokens per second up to CONFIG.events_burst (0: the
 * EVENTS_*_DEFAULT), and starts full. An event without a token, or without
 * room in the ring, is not sent: it is counted as REASON_EVENTS_SUPPRESSED
 * (metrics, and event_limit.suppressed).
 */
#ifndef AXON_BPF_NOTIFY_H
#define AXON_BPF_NOTIFY_H

#include "common.h"
#include "maps_dp.h"
#include "metrics.h"
#include "dp.h"

/* Take a token; false if the bucket is empty. */
static __always_inline bool notify_take_token(struct event_limit *lim, __u64 now_ns)
{
	__u64 rate = cfg_events_rate(), burst = cfg_events_burst();
	__u64 elapsed = now_ns - lim->last_ns, add;

	/* Cap the interval so elapsed * rate cannot overflow: 4 s fills any
	 * bucket whose burst is below 4 s worth of rate. */
	if (elapsed > 4 * NSEC_PER_SEC || !lim->last_ns)
		elapsed = 4 * NSEC_PER_SEC;
	add = elapsed * rate / NSEC_PER_SEC;
	if (add) {
		if (lim->tokens + add >= burst || !lim->last_ns) {
			lim->tokens = burst;
			lim->last_ns = now_ns;
		} else {
			lim->tokens += add;
			/* Keep the remainder of the interval for the next refill. */
			lim->last_ns += add * NSEC_PER_SEC / rate;
		}
	}
	if (!lim->tokens)
		return false;
	lim->tokens--;
	return true;
}

static __always_inline void notify_event(struct dp_ctx *c, __u8 type, __u8 reason)
{
	struct event_limit *lim;
	struct event_hdr *e;
	__u32 zero = 0, cap;
	__u64 now_ns;

	if (type == EVENT_TRACE && !cfg_has(CFG_TRACE_EVENTS))
		return;
	lim = bpf_map_lookup_elem(&events_limit, &zero);
	if (!lim)
		return;
	now_ns = bpf_ktime_get_ns();
	if (!notify_take_token(lim, now_ns))
		goto suppressed;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto suppressed;

	e->type = type;
	e->dir = c->dir;
	e->reason = reason;
	e->ifindex = c->skb->ifindex;
	e->ts_ns = now_ns;
	e->orig_len = c->skb->len;
	e->src_identity = c->src_identity;
	e->dst_identity = c->dst_identity;
	e->ifindex_out = c->ifindex_out;
	e->pad = 0;
	cap = c->skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	if (cap < 1 || bpf_skb_load_bytes(c->skb, 0, e->data, cap))
		cap = 0;
	e->cap_len = cap;
	bpf_ringbuf_submit(e, 0);
	return;

suppressed:
	lim->suppressed++;
	metrics_count(REASON_EVENTS_SUPPRESSED, c->dir, c->len);
}

#endif /* AXON_BPF_NOTIFY_H */
