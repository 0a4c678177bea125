/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Prometheus text exposition format 0.0.4, written into a growing buffer.
 *
 *   # HELP axon_bpf_map_pressure Fill of a BPF map: entries / max_entries.
 *   # TYPE axon_bpf_map_pressure gauge
 *   axon_bpf_map_pressure{map_name="ct4_tcp"} 0.25
 *
 * Label values are escaped as the format requires (\ -> \\, " -> \",
 * newline -> \n); HELP text escapes \ and newline. Each family is opened once
 * with expo_family() and followed by its samples. An allocation failure is
 * remembered (e->err) and makes every later call a no-op.
 */
#ifndef AXON_METRICS_EXPO_H
#define AXON_METRICS_EXPO_H

#include <stddef.h>

struct expo {
	char *buf;
	size_t len, cap;
	int err;		/* 0 or -ENOMEM */
};

struct expo_label {
	const char *name;
	const char *value;
};

void expo_init(struct expo *e);
void expo_free(struct expo *e);

/* type: "gauge" or "counter". */
void expo_family(struct expo *e, const char *name, const char *type, const char *help);
void expo_sample(struct expo *e, const char *name, const struct expo_label *labels,
		 size_t n_labels, double value);

#endif /* AXON_METRICS_EXPO_H */
