// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>

#include "hist.h"

void metrics_hist_observe(struct metrics_hist *h, const double *bounds, size_t n, double v)
{
	if (n > METRICS_HIST_MAX)
		n = METRICS_HIST_MAX;
	for (size_t i = 0; i < n; i++) {
		if (v <= bounds[i]) {
			h->bucket[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
}

void expo_histogram(struct expo *e, const char *name, const char *help,
		    const struct metrics_hist *h, const double *bounds, size_t n)
{
	char sample[128], le[32];
	struct expo_label l = {"le", le};
	uint64_t cum = 0;

	if (n > METRICS_HIST_MAX)
		n = METRICS_HIST_MAX;
	expo_family(e, name, "histogram", help);
	snprintf(sample, sizeof(sample), "%s_bucket", name);
	for (size_t i = 0; i < n; i++) {
		cum += h->bucket[i];
		snprintf(le, sizeof(le), "%g", bounds[i]);
		expo_sample(e, sample, &l, 1, cum);
	}
	snprintf(le, sizeof(le), "+Inf");
	expo_sample(e, sample, &l, 1, h->count);
	snprintf(sample, sizeof(sample), "%s_sum", name);
	expo_sample(e, sample, NULL, 0, h->sum);
	snprintf(sample, sizeof(sample), "%s_count", name);
	expo_sample(e, sample, NULL, 0, h->count);
}
