/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack garbage collection: delete the entries of ct4_tcp and ct4_any
 * whose lifetime has passed (CLOCK_MONOTONIC seconds, include/axon/ct.h),
 * and with each expired entry that was source-NATed its nat4 pair.
 *
 * The interval adapts as Cilium's does: when a pass deletes a large share of
 * what it scanned the next pass comes sooner (down to min_interval), when it
 * deletes little it comes later (up to max_interval).
 */
#ifndef AXON_CT_GC_H
#define AXON_CT_GC_H

#include <stdint.h>
#include <linux/types.h>

struct ct_gc {
	int ct_tcp_fd, ct_any_fd, nat_fd;	/* map fds (not owned) */
	unsigned int min_interval_ms;		/* --conntrack-gc-interval floor */
	unsigned int max_interval_ms;		/* --conntrack-gc-max-interval */
	unsigned int interval_ms;		/* next pass after this long */
	/* Last pass, for status and logs. */
	uint64_t last_scanned, last_deleted, last_nat_deleted;
	uint64_t last_duration_us;
	uint64_t total_deleted, passes;
};

void ct_gc_init(struct ct_gc *gc, int ct_tcp_fd, int ct_any_fd, int nat_fd,
		unsigned int min_interval_ms, unsigned int max_interval_ms);
/* One pass at @now_s (CLOCK_MONOTONIC seconds; 0: read the clock). Updates
 * the stats and gc->interval_ms; returns 0 or a negative errno. */
int ct_gc_run(struct ct_gc *gc, __u32 now_s);
/* Delete every entry of both conntrack maps and the NAT map (agentctl bpf ct
 * flush goes through the maps directly; this is for --flush-on-exit). */
int ct_gc_flush(struct ct_gc *gc);

#endif /* AXON_CT_GC_H */
