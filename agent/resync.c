// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"

static void note_err(struct agent_resync *rs, const char *module, int ret)
{
	if (ret >= 0 || rs->last_err)
		return;
	rs->last_err = ret;
	snprintf(rs->last_err_module, sizeof(rs->last_err_module), "%s", module);
}

void agent_resync_run(struct agent *a, uint64_t now_ms, uint64_t *next_ms)
{
	struct agent_resync *rs = &a->resync;
	uint64_t next, t0;

	if (!a->cfg.reconcile_interval_ms || !a->pruned)
		return;
	if (!rs->next_ms)
		rs->next_ms = now_ms + a->cfg.reconcile_interval_ms;
	if (rs->next_ms > now_ms)
		goto out;
	t0 = lb_now_ms();
	rs->last_err = 0;
	rs->last_err_module[0] = '\0';
	/* Desired state against the mirror: every service realized again. */
	store_mark_all_dirty(&a->store);
	lb_reconcile_dirty(&a->lb, &a->store, now_ms, &next);
	/* The mirror against the maps and routes. */
	note_err(rs, "lb", lb_reconciler_resync(&a->lb));
	if (a->dpx.tc_loaded)
		note_err(rs, "endpoints", ep_reconciler_resync(&a->dpx.ep));
	note_err(rs, "routes", route_sync_resync(&a->dpx.routes));
	rs->passes++;
	rs->last_pass = time(NULL);
	rs->last_duration_ms = lb_now_ms() - t0;
	rs->next_ms = now_ms + a->cfg.reconcile_interval_ms;
	if (rs->last_err)
		pr_warn("full reconcile incomplete; retried next pass", "module=%s error=\"%s\"",
			rs->last_err_module, strerror(-rs->last_err));
	pr_debug("full reconcile done", "duration_ms=%llu lb_repairs=%lu ep_repairs=%lu "
		 "route_repairs=%lu", (unsigned long long)rs->last_duration_ms,
		 a->lb.stats.last_repairs, a->dpx.ep.stats.last_repairs,
		 a->dpx.routes.last_repairs);
out:
	if (rs->next_ms < *next_ms)
		*next_ms = rs->next_ms;
}

static cJSON *repairs(unsigned long lb, unsigned long ep, unsigned long routes)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "lb", lb);
	cJSON_AddNumberToObject(o, "endpoints", ep);
	cJSON_AddNumberToObject(o, "routes", routes);
	return o;
}

cJSON *agent_resync_status(struct agent *a)
{
	struct agent_resync *rs = &a->resync;
	cJSON *o = cJSON_CreateObject();
	char when[32] = "";
	struct tm tm;

	cJSON_AddNumberToObject(o, "interval_ms", a->cfg.reconcile_interval_ms);
	cJSON_AddNumberToObject(o, "passes", rs->passes);
	if (rs->last_pass) {
		gmtime_r(&rs->last_pass, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	cJSON_AddStringToObject(o, "last_pass", when);
	cJSON_AddNumberToObject(o, "last_duration_ms", rs->last_duration_ms);
	cJSON_AddItemToObject(o, "repairs", repairs(a->lb.stats.repairs, a->dpx.ep.stats.repairs,
						    a->dpx.routes.repairs));
	cJSON_AddItemToObject(o, "last_repairs",
			      repairs(a->lb.stats.last_repairs, a->dpx.ep.stats.last_repairs,
				      a->dpx.routes.last_repairs));
	if (rs->last_err) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s: %s", rs->last_err_module, strerror(-rs->last_err));
		cJSON_AddStringToObject(o, "last_error", msg);
	} else {
		cJSON_AddStringToObject(o, "last_error", "");
	}
	return o;
}
