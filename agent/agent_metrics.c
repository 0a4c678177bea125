// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The agent's state, copied for the metrics thread (metrics/collect.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"

uint64_t agent_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void agent_policy_event(struct agent_watch *w)
{
	if (w->synced && !w->agent->pol_event_ns)
		w->agent->pol_event_ns = agent_mono_ns();
}

static void policy_publish(struct agent *a, struct metrics_state *st)
{
	const struct pol_reconciler *r = &a->dpx.pol;

	st->pol.compute = a->dpx.pol_compute;
	st->pol.enforce = a->dpx.pol_enforce;
	if (!r->endpoints.buckets)
		return;
	for (struct ht_entry *e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e)) {
		const struct pol_endpoint *pe = e->value;

		if (pe->err)
			st->pol.endpoints_failed++;
		else
			metrics_hist_observe(&st->pol.entries, metrics_pol_entries_bounds,
					     metrics_pol_entries_n, pe->n_entries);
	}
}

static void publishing_publish(struct agent *a, struct metrics_state *st)
{
	const struct lep_mgr *m = &a->leps;

	if (!a->leps_ready)
		return;
	for (struct ht_entry *e = ht_first(&m->eps); e; e = ht_next(&m->eps, e)) {
		const struct lep *ep = e->value;

		if ((unsigned int)ep->state < 3)
			st->pub.endpoints[ep->state]++;
	}
	st->pub.ces_creates = m->pub.creates;
	st->pub.ces_updates = m->pub.updates;
	st->pub.ces_deletes = m->pub.deletes;
	st->pub.ces_errors = m->pub.errors;
	st->pub.id_creates = m->alloc.creates;
	st->pub.id_adopted = m->alloc.adopted;
	st->pub.id_errors = m->alloc.errors;
	st->pub.id_collected = m->gc_deleted;
}

void agent_metrics_publish(struct agent *a)
{
	struct agent_watch *ws[AGENT_WATCHES];
	size_t n = agent_watches(a, ws);
	struct metrics_state st = {};

	if (!a->metrics)
		return;
	st.rec[METRICS_REC_LB].errors = a->lb.stats.errors;
	st.rec[METRICS_REC_LB].retries = a->lb.stats.retries;
	st.rec[METRICS_REC_LB].unrealized = a->lb.failures.count;
	st.rec[METRICS_REC_ENDPOINTS].errors = a->dpx.ep.stats.errors;
	st.rec[METRICS_REC_ENDPOINTS].retries = a->dpx.ep.stats.retries;
	st.rec[METRICS_REC_ENDPOINTS].unrealized = a->dpx.ep.failures.count;
	st.rec[METRICS_REC_ROUTES].errors = a->dpx.routes.errors;
	st.rec[METRICS_REC_ROUTES].retries = METRICS_NOT_TRACKED;
	st.rec[METRICS_REC_ROUTES].unrealized = a->dpx.routes.failures.count;
	for (size_t i = 0; i < n && i < METRICS_WATCHES_MAX; i++) {
		struct metrics_watch *w = &st.watch[st.n_watch];
		struct k8s_informer_status is;

		if (!ws[i]->informer)
			continue;
		k8s_informer_status(ws[i]->informer, &is);
		snprintf(w->resource, sizeof(w->resource), "%s", is.name);
		w->lists = is.lists;
		w->events = is.events;
		w->errors = is.errors;
		w->objects = is.objects;
		w->synced = ws[i]->synced;
		st.n_watch++;
	}
	st.skipped_objects = a->skipped_total;
	publishing_publish(a, &st);
	policy_publish(a, &st);
	st.ready = a->health.ready;
	{
		struct lb_sock_term_stats ts;

		lb_sock_term_stats(&a->sock_term, &ts);
		st.sockets_destroyed_tcp = ts.destroyed_tcp;
		st.sockets_destroyed_udp = ts.destroyed_udp;
	}
	metrics_server_publish(a->metrics, &st);
}
