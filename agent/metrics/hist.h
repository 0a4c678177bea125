/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A Prometheus histogram with fixed upper bounds, kept by the agent's thread
 * and copied whole into struct metrics_state (no locking of its own).
 *
 * Buckets are counted apart and rendered cumulative, with the +Inf bucket
 * equal to _count, as the exposition format requires:
 *
 *   axon_x_bucket{le="0.001"} 3
 *   axon_x_bucket{le="+Inf"} 5
 *   axon_x_sum 0.0132
 *   axon_x_count 5
 */
#ifndef AXON_METRICS_HIST_H
#define AXON_METRICS_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "expo.h"

#define METRICS_HIST_MAX 16

struct metrics_hist {
	uint64_t bucket[METRICS_HIST_MAX]; /* [i]: bounds[i-1] < v <= bounds[i] */
	uint64_t count;
	double sum;
};

/* bounds: ascending, at most METRICS_HIST_MAX; above the last: +Inf only. */
void metrics_hist_observe(struct metrics_hist *h, const double *bounds, size_t n, double v);

/* The family (TYPE histogram) and its samples. */
void expo_histogram(struct expo *e, const char *name, const char *help,
		    const struct metrics_hist *h, const double *bounds, size_t n);

#endif /* AXON_METRICS_HIST_H */
