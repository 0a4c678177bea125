// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "axon/reasons.h"
#include "collect.h"
#include "map_ops.h"
#include "version.h"

static const char *const reconciler_names[METRICS_REC__NR] = {
	[METRICS_REC_LB] = "lb",
	[METRICS_REC_ENDPOINTS] = "endpoints",
	[METRICS_REC_ROUTES] = "routes",
};

/* From 1 ms (a pass over a few endpoints) to 10 s (a full recomputation at
 * scale); time to enforce's target is 100 ms at p99. */
const double metrics_pol_seconds_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					      0.25, 0.5, 1, 2.5, 5, 10 };
const size_t metrics_pol_seconds_n =
	sizeof(metrics_pol_seconds_bounds) / sizeof(metrics_pol_seconds_bounds[0]);
/* Powers of 4 up to --bpf-policy-map-max's ceiling (65536). */
const double metrics_pol_entries_bounds[] = { 0, 4, 16, 64, 256, 1024, 4096, 16384, 65536 };
const size_t metrics_pol_entries_n =
	sizeof(metrics_pol_entries_bounds) / sizeof(metrics_pol_entries_bounds[0]);

static void render_maps(struct expo *e, struct map_fill *fill)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{ "axon_bpf_map_pressure", "Fill of a BPF map: entries / max_entries, counted "
					   "from the map at scrape time." },
		{ "axon_bpf_map_entries", "Entries in a BPF map, counted from the map." },
		{ "axon_bpf_map_capacity", "max_entries of a BPF map." },
	};
	struct map_fill_row rows[MAP_FILL_MAX];
	int n = map_fill_read(fill, rows, MAP_FILL_MAX);

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		expo_family(e, fam[f].name, "gauge", fam[f].help);
		for (int i = 0; i < n; i++) {
			struct expo_label l = { "map_name", rows[i].name };
			double v;

			if (f < 2 && rows[i].entries < 0)
				continue;	/* no fill (ring buffer, socket storage, array) */
			if (f == 0)
				v = rows[i].max_entries ? (double)rows[i].entries /
							  rows[i].max_entries : 0;
			else if (f == 1)
				v = rows[i].entries;
			else
				v = rows[i].max_entries;
			expo_sample(e, fam[f].name, &l, 1, v);
		}
	}
}

static void map_op_sample(void *ctx, const char *map, const char *op, const char *outcome,
			  uint64_t value)
{
	struct expo_label l[] = { { "map_name", map }, { "operation", op },
				  { "outcome", outcome } };

	expo_sample(ctx, "axon_bpf_map_ops_total", l, 3, value);
}

static void map_batch_sample(void *ctx, const char *map, const char *outcome, uint64_t value)
{
	struct expo_label l[] = { { "map_name", map }, { "outcome", outcome } };

	expo_sample(ctx, "axon_bpf_map_batches_total", l, 2, value);
}

struct verdict {
	struct metrics_key key;
	uint64_t packets, bytes;
};

static int verdict_cmp(const void *pa, const void *pb)
{
	const struct verdict *a = pa, *b = pb;

	if (a->key.reason != b->key.reason)
		return a->key.reason < b->key.reason ? -1 : 1;
	return a->key.dir < b->key.dir ? -1 : a->key.dir > b->key.dir;
}

/* The metrics map summed over CPUs, sorted (a stable order for readers). */
static int read_verdicts(int fd, struct verdict *out, int max)
{
	int cpus = libbpf_num_possible_cpus(), n = 0;
	struct metrics_key key, next, *prev = NULL;
	struct metrics_value *v;

	if (fd < 0 || cpus <= 0)
		return 0;
	v = calloc(cpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while (n < max && !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, v))
			continue;
		out[n] = (struct verdict){ .key = key };
		for (int c = 0; c < cpus; c++) {
			out[n].packets += v[c].packets;
			out[n].bytes += v[c].bytes;
		}
		n++;
	}
	free(v);
	qsort(out, n, sizeof(*out), verdict_cmp);
	return n;
}

static void render_verdicts(struct expo *e, int fd)
{
	static const struct {
		const char *name, *help;
		bool drop, bytes;
	} fam[] = {
		{ "axon_drop_count_total", "Packets (socket hooks: calls) the datapath dropped, "
					   "by reason and direction.", true, false },
		{ "axon_drop_bytes_total", "Bytes the datapath dropped, by reason and direction.",
		  true, true },
		{ "axon_forward_count_total", "Packets (socket hooks: calls) the datapath passed "
					      "on, by verdict reason and direction.", false, false },
		{ "axon_forward_bytes_total", "Bytes the datapath passed on, by verdict reason "
					      "and direction.", false, true },
	};
	struct verdict *v = calloc(REASON_MAX * METRIC_DIR_MAX, sizeof(*v));
	int n = v ? read_verdicts(fd, v, REASON_MAX * METRIC_DIR_MAX) : 0;

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		expo_family(e, fam[f].name, "counter", fam[f].help);
		for (int i = 0; i < n; i++) {
			struct expo_label l[] = {
				{ "reason", axon_reason_name(v[i].key.reason) },
				{ "direction", axon_metric_dir_name(v[i].key.dir) },
			};

			if (!!axon_reason_is_drop(v[i].key.reason) != fam[f].drop)
				continue;
			expo_sample(e, fam[f].name, l, 2,
				    fam[f].bytes ? v[i].bytes : v[i].packets);
		}
	}
	free(v);
}

static void render_publishing(struct expo *e, const struct metrics_state *st)
{
	static const char *const states[] = { "waiting-for-identity", "ready", "disconnecting" };
	const struct {
		const char *family, *op;
		uint64_t v;
	} writes[] = {
		{ "axon_ciliumendpointslice_writes_total", "create", st->pub.ces_creates },
		{ "axon_ciliumendpointslice_writes_total", "update", st->pub.ces_updates },
		{ "axon_ciliumendpointslice_writes_total", "delete", st->pub.ces_deletes },
		{ "axon_ciliumendpointslice_writes_total", "error", st->pub.ces_errors },
		{ "axon_identity_allocations_total", "created", st->pub.id_creates },
		{ "axon_identity_allocations_total", "adopted", st->pub.id_adopted },
		{ "axon_identity_allocations_total", "error", st->pub.id_errors },
	};

	expo_family(e, "axon_endpoints", "gauge", "This node's endpoints (Pods), by state.");
	for (size_t i = 0; i < 3; i++) {
		struct expo_label l = { "state", states[i] };

		expo_sample(e, "axon_endpoints", &l, 1, st->pub.endpoints[i]);
	}
	expo_family(e, "axon_ciliumendpointslice_writes_total", "counter",
		    "Writes of this node's CiliumEndpointSlices, by operation; error: failed.");
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		struct expo_label l = { i < 4 ? "op" : "result", writes[i].op };

		if (i == 4)
			expo_family(e, "axon_identity_allocations_total", "counter",
				    "CiliumIdentities this agent created, adopted after losing a "
				    "race, or failed to allocate.");
		expo_sample(e, writes[i].family, &l, 1, writes[i].v);
	}
	expo_family(e, "axon_identities_collected_total", "counter",
		    "Unused CiliumIdentities this agent deleted (identity GC).");
	expo_sample(e, "axon_identities_collected_total", NULL, 0, st->pub.id_collected);
}

static void render_state(struct expo *e, const struct metrics_state *st)
{
	expo_family(e, "axon_reconciler_errors_total", "counter",
		    "Failed operations of a reconciler (map writes, routes).");
	for (int i = 0; i < METRICS_REC__NR; i++) {
		struct expo_label l = { "reconciler", reconciler_names[i] };

		expo_sample(e, "axon_reconciler_errors_total", &l, 1, st->rec[i].errors);
	}
	expo_family(e, "axon_reconciler_retries_total", "counter",
		    "Attempts a reconciler made on objects that were failing.");
	for (int i = 0; i < METRICS_REC__NR; i++) {
		struct expo_label l = { "reconciler", reconciler_names[i] };

		if (st->rec[i].retries != METRICS_NOT_TRACKED)
			expo_sample(e, "axon_reconciler_retries_total", &l, 1,
				    st->rec[i].retries);
	}
	expo_family(e, "axon_reconciler_unrealized", "gauge",
		    "Objects a reconciler is failing to realize now (retried with backoff).");
	for (int i = 0; i < METRICS_REC__NR; i++) {
		struct expo_label l = { "reconciler", reconciler_names[i] };

		expo_sample(e, "axon_reconciler_unrealized", &l, 1, st->rec[i].unrealized);
	}

	expo_family(e, "axon_k8s_lists_total", "counter", "LISTs an informer completed.");
	for (int i = 0; i < st->n_watch; i++) {
		struct expo_label l = { "resource", st->watch[i].resource };

		expo_sample(e, "axon_k8s_lists_total", &l, 1, st->watch[i].lists);
	}
	expo_family(e, "axon_k8s_watch_events_total", "counter",
		    "Watch events an informer received.");
	for (int i = 0; i < st->n_watch; i++) {
		struct expo_label l = { "resource", st->watch[i].resource };

		expo_sample(e, "axon_k8s_watch_events_total", &l, 1, st->watch[i].events);
	}
	expo_family(e, "axon_k8s_request_errors_total", "counter",
		    "Failed apiserver requests of an informer.");
	for (int i = 0; i < st->n_watch; i++) {
		struct expo_label l = { "resource", st->watch[i].resource };

		expo_sample(e, "axon_k8s_request_errors_total", &l, 1, st->watch[i].errors);
	}
	expo_family(e, "axon_k8s_objects", "gauge", "Objects an informer holds.");
	for (int i = 0; i < st->n_watch; i++) {
		struct expo_label l = { "resource", st->watch[i].resource };

		expo_sample(e, "axon_k8s_objects", &l, 1, st->watch[i].objects);
	}
	expo_family(e, "axon_k8s_synced", "gauge", "1 once an informer's LIST is delivered.");
	for (int i = 0; i < st->n_watch; i++) {
		struct expo_label l = { "resource", st->watch[i].resource };

		expo_sample(e, "axon_k8s_synced", &l, 1, st->watch[i].synced);
	}
	expo_family(e, "axon_skipped_objects_total", "counter",
		    "Malformed Kubernetes objects the agent refused.");
	expo_sample(e, "axon_skipped_objects_total", NULL, 0, st->skipped_objects);
	render_publishing(e, st);
	expo_histogram(e, "axon_policy_computation_seconds",
		       "Time the policy engine spent per pass: selector cache updates and the "
		       "computation of the local endpoints the changes reach, map writes excluded.",
		       &st->pol.compute, metrics_pol_seconds_bounds, metrics_pol_seconds_n);
	expo_histogram(e, "axon_policy_time_to_enforce_seconds",
		       "From a policy, identity or namespace event's delivery by its informer "
		       "to every affected endpoint's trie and enforcement written.",
		       &st->pol.enforce, metrics_pol_seconds_bounds, metrics_pol_seconds_n);
	expo_histogram(e, "axon_policy_entries",
		       "Entries per local endpoint's policy trie, as realized now (one "
		       "observation per endpoint, recounted at every publication).",
		       &st->pol.entries, metrics_pol_entries_bounds, metrics_pol_entries_n);
	expo_family(e, "axon_policy_endpoints_failed", "gauge",
		    "Local endpoints whose policy is not realized (retried with backoff).");
	expo_sample(e, "axon_policy_endpoints_failed", NULL, 0, st->pol.endpoints_failed);
	expo_family(e, "axon_lb_sockets_destroyed_total", "counter",
		    "Connected sockets the socket LB sent to a backend, destroyed when the "
		    "backend was deleted (socket LB termination), by protocol.");
	expo_sample(e, "axon_lb_sockets_destroyed_total", &(struct expo_label){ "proto", "tcp" },
		    1, st->sockets_destroyed_tcp);
	expo_sample(e, "axon_lb_sockets_destroyed_total", &(struct expo_label){ "proto", "udp" },
		    1, st->sockets_destroyed_udp);
	expo_family(e, "axon_agent_ready", "gauge",
		    "1 when the agent is ready (every watch synced, the datapath programmed): "
		    "what GET /healthz answers 200 for.");
	expo_sample(e, "axon_agent_ready", NULL, 0, st->ready);
}

static void render_build(struct expo *e)
{
	struct expo_label l[] = { { "version", axon_version }, { "commit", axon_git_commit } };

	expo_family(e, "axon_build_info", "gauge",
		    "Always 1; the labels name the agent's version and commit.");
	expo_sample(e, "axon_build_info", l, 2, 1);
}


void metrics_render(struct expo *e, struct map_fill *fill, int metrics_fd,
		    const struct metrics_state *st)
{
	render_build(e);
	render_maps(e, fill);
	expo_family(e, "axon_bpf_map_ops_total", "counter",
		    "The agent's operations on BPF maps, by map, operation and outcome.");
	map_ops_visit(map_op_sample, e);
	expo_family(e, "axon_bpf_map_batches_total", "counter",
		    "The agent's batched BPF map calls (each element is also in "
		    "axon_bpf_map_ops_total), by map and outcome.");
	map_batches_visit(map_batch_sample, e);
	render_verdicts(e, metrics_fd);
	render_state(e, st);
}
