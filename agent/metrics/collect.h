/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a scrape returns, rendered with expo.h from four sources:
 *  - the maps themselves, read at scrape time by the metrics thread: fill and
 *    pressure of every map (map_fill.h), the datapath's verdict counters
 *    (the metrics map, summed over CPUs);
 *  - lock-free counters of map operations (map_ops.h);
 *  - a snapshot of the agent's own state (reconcilers, watches), which only
 *    the agent's thread may read: it publishes a struct metrics_state after
 *    every loop iteration (metrics_server_publish), and the scrape renders the
 *    latest copy;
 *  - histograms the agent keeps (hist.h), copied with that snapshot;
 *  - the build: axon_build_info{version,commit} (lib/version.h).
 */
#ifndef AXON_METRICS_COLLECT_H
#define AXON_METRICS_COLLECT_H

#include <stdbool.h>
#include <stdint.h>

#include "expo.h"
#include "hist.h"
#include "map_fill.h"

enum metrics_reconciler {
	METRICS_REC_LB = 0,
	METRICS_REC_ENDPOINTS,
	METRICS_REC_ROUTES,
	METRICS_REC__NR,
};

struct metrics_watch {
	char resource[48];		/* "services" */
	uint64_t lists, events, errors, objects;
	bool synced;
};

#define METRICS_WATCHES_MAX 16
#define METRICS_NOT_TRACKED UINT64_MAX	/* a counter a module does not keep */

struct metrics_state {
	struct {
		uint64_t errors;	/* failed operations */
		uint64_t retries;	/* attempts on objects already failing */
		uint64_t unrealized;	/* objects failing now */
	} rec[METRICS_REC__NR];
	struct metrics_watch watch[METRICS_WATCHES_MAX];
	int n_watch;
	uint64_t skipped_objects;
	/* Network policy (policy/reconcile.h), bucketed with the bounds below. */
	struct {
		struct metrics_hist compute;	/* seconds of engine work per pass */
		struct metrics_hist enforce;	/* seconds from event to maps written */
		struct metrics_hist entries;	/* entries per endpoint trie, now */
		uint64_t endpoints_failed;	/* endpoints whose policy is not realized */
	} pol;
	/* This node's endpoints and what the agent publishes (identity/endpoints.h). */
	struct {
		uint64_t endpoints[3];		/* by enum lep_state */
		uint64_t ces_creates, ces_updates, ces_deletes, ces_errors;
		uint64_t id_creates, id_adopted, id_collected, id_errors;
	} pub;
	/* Sockets destroyed because their backend was deleted (lb/sock_term.h). */
	uint64_t sockets_destroyed_tcp, sockets_destroyed_udp;
	bool ready;			/* what /healthz answers (health/health.h) */
};

extern const double metrics_pol_seconds_bounds[];	/* compute and enforce */
extern const size_t metrics_pol_seconds_n;
extern const double metrics_pol_entries_bounds[];
extern const size_t metrics_pol_entries_n;

/* Render everything into e. metrics_fd: the datapath's metrics map (-1: none). */
void metrics_render(struct expo *e, struct map_fill *fill, int metrics_fd,
		    const struct metrics_state *st);

#endif /* AXON_METRICS_COLLECT_H */
