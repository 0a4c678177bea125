/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdict counters. Every translation and every failure a program causes is
 * counted here by (reason, direction); this, not bpf_printk, is how the
 * datapath is observed (agentctl turns the reasons back into names).
 */
#ifndef AXON_BPF_METRICS_H
#define AXON_BPF_METRICS_H

#include "common.h"
#include "maps.h"

/* Count one verdict of @bytes bytes (0 for socket hooks, which count calls). */
static __always_inline void metrics_count(__u8 reason, __u8 dir, __u64 bytes)
{
	struct metrics_key key = {.reason = reason, .dir = dir};
	struct metrics_value init = {.packets = 1, .bytes = bytes};
	struct metrics_value *val;

	val = bpf_map_lookup_elem(&metrics, &key);
	if (!val) {
		/* First of its kind: create it. Another CPU may win the race,
		 * in which case the entry now exists and we add to it. */
		if (!bpf_map_update_elem(&metrics, &key, &init, BPF_NOEXIST))
			return;
		val = bpf_map_lookup_elem(&metrics, &key);
		if (!val)
			return;
	}
	/* Per-CPU, but a softirq program may interrupt this one on the same
	 * CPU and count too: atomic adds (no fetch, so plain BPF_XADD). */
	__sync_fetch_and_add(&val->packets, 1);
	if (bytes)
		__sync_fetch_and_add(&val->bytes, bytes);
}

#endif /* AXON_BPF_METRICS_H */
