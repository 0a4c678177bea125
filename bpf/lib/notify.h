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
 * (metrics, and event_limit.suppressed). Policy verdicts (policy.h) are
 * built with notify_reserve()/notify_submit() on policy_events_limit.
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

/* An event record, after a token from @limit (events_limit or
 * policy_events_limit); NULL, counted as suppressed, when there is no token
 * or no room in the ring. *now_ns: the time the token was taken at. */
static __always_inline struct event_hdr *notify_reserve(struct dp_ctx *c, void *limit,
							__u64 *now_ns)
{
	struct event_limit *lim;
	struct event_hdr *e;
	__u32 zero = 0;

	lim = bpf_map_lookup_elem(limit, &zero);
	if (!lim)
		return NULL;
	*now_ns = bpf_ktime_get_ns();
	if (notify_take_token(lim, *now_ns)) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e)
			return e;
	}
	lim->suppressed++;
	metrics_count(REASON_EVENTS_SUPPRESSED, c->dir, c->len);
	return NULL;
}

/* Fill in what every event carries (the caller set the rest), copy the
 * packet's first bytes and send it. */
static __always_inline void notify_submit(struct dp_ctx *c, struct event_hdr *e, __u8 type,
					  __u8 dir, __u8 reason, __u64 now_ns)
{
	__u32 cap;

	e->type = type;
	e->dir = dir;
	e->reason = reason;
	e->ifindex = c->skb->ifindex;
	e->ts_ns = now_ns;
	e->orig_len = c->skb->len;
	e->ifindex_out = c->ifindex_out;
	cap = c->skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	if (cap < 1 || bpf_skb_load_bytes(c->skb, 0, e->data, cap))
		cap = 0;
	e->cap_len = cap;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void notify_event(struct dp_ctx *c, __u8 type, __u8 reason)
{
	struct event_hdr *e;
	__u64 now_ns;

	if (type == EVENT_TRACE && !cfg_has(CFG_TRACE_EVENTS))
		return;
	e = notify_reserve(c, &events_limit, &now_ns);
	if (!e)
		return;
	e->src_identity = c->src_identity;
	e->dst_identity = c->dst_identity;
	e->endpoint_id = 0;
	e->match_type = 0;
	e->action = 0;
	e->remote_identity = 0;
	e->flow_hash = 0;
	notify_submit(c, e, type, c->dir, reason, now_ns);
}

#endif /* AXON_BPF_NOTIFY_H */
