/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The periodic full reconcile (--reconcile-interval, default 5 min): every
 * interval, once the first sync has been pruned, each reconciler is made to
 * check its targets against the desired state rather than trusting its
 * mirror: every service is realized again from the store (a diff against
 * the mirror: no writes when nothing changed), then the LB maps, the ipcache
 * and endpoints maps and the node routes are read back and drift is
 * repaired (lb/reconcile.h, endpoints/reconcile.h, nodes/routes_sync.h).
 * Repairs are counted per module and shown in status ("full_reconcile").
 */
#ifndef AXON_RESYNC_H
#define AXON_RESYNC_H

#include <stdint.h>
#include <time.h>
#include <cjson/cJSON.h>

struct agent;

struct agent_resync {
	uint64_t next_ms;		/* CLOCK_MONOTONIC; 0: not scheduled yet */
	unsigned long passes;
	uint64_t last_duration_ms;
	time_t last_pass;
	int last_err;			/* -errno of the latest pass's first failure */
	char last_err_module[32];
};

/* Run the full pass when due; lowers *next_ms to the next one. */
void agent_resync_run(struct agent *a, uint64_t now_ms, uint64_t *next_ms);
cJSON *agent_resync_status(struct agent *a);

#endif /* AXON_RESYNC_H */
