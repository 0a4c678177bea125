// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The answer to `agentctl status`: everything an on-call engineer asks first. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "axon/maps.h"
#include "agent.h"
#include "status/kpr.h"
#include "version.h"

static const char *informer_state_name(enum k8s_informer_state st)
{
	switch (st) {
	case K8S_INF_LISTING:	return "listing";
	case K8S_INF_WATCHING:	return "watching";
	case K8S_INF_BACKOFF:	return "backoff";
	default:		return "unknown";
	}
}

static void add_time(cJSON *obj, const char *key, time_t t)
{
	char buf[32];
	struct tm tm;

	if (!t) {
		cJSON_AddNullToObject(obj, key);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(obj, key, buf);
}

static cJSON *kubernetes_status(struct agent *a)
{
	cJSON *k = cJSON_CreateObject(), *watches = cJSON_AddArrayToObject(k, "watches");
	struct agent_watch *ws[AGENT_WATCHES];
	size_t n = agent_watches(a, ws);
	time_t last = 0;

	cJSON_AddStringToObject(k, "server", k8s_client_server(a->k8s));
	agent_status_servers(k, a->k8s);
	cJSON_AddStringToObject(k, "version", k8s_client_version(a->k8s));
	cJSON_AddBoolToObject(k, "connected", k8s_client_connected(a->k8s));
	for (size_t i = 0; i < n; i++) {
		struct k8s_informer_status st;
		cJSON *w = cJSON_CreateObject();

		k8s_informer_status(ws[i]->informer, &st);
		cJSON_AddStringToObject(w, "name", st.name);
		cJSON_AddStringToObject(w, "path", st.path);
		cJSON_AddStringToObject(w, "state", informer_state_name(st.state));
		cJSON_AddBoolToObject(w, "synced", ws[i]->synced);
		cJSON_AddNumberToObject(w, "objects", st.objects);
		cJSON_AddNumberToObject(w, "events", st.events);
		cJSON_AddNumberToObject(w, "lists", st.lists);
		/* How the last LIST came: one watch-list stream, or pages. */
		cJSON_AddStringToObject(w, "list_mode", !st.lists	      ? "" :
							st.list_streamed ? "watch-list" :
									   "paginated");
		cJSON_AddNumberToObject(w, "errors", st.errors);
		cJSON_AddStringToObject(w, "resource_version", st.resource_version);
		cJSON_AddStringToObject(w, "last_error", st.last_error);
		/* A CRD that is not installed answers 404: retried, not fatal. */
		cJSON_AddBoolToObject(w, "not_installed", agent_watch_not_installed(ws[i]));
		add_time(w, "last_event", st.last_event);
		if (st.last_event > last)
			last = st.last_event;
		cJSON_AddItemToArray(watches, w);
	}
	add_time(k, "last_event", last);
	return k;
}

/* Size and fill of every map, counted from the maps (metrics/map_fill.h). */
static cJSON *maps_status(struct agent *a)
{
	struct map_fill_row rows[MAP_FILL_MAX];
	int n = map_fill_read(&a->fill, rows, MAP_FILL_MAX);
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; i < n; i++) {
		const struct map_fill_row *m = &rows[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddNumberToObject(o, "max_entries", m->max_entries);
		/* A pinned map keeps its size (loader.c): show what was asked. */
		if (m->configured)
			cJSON_AddNumberToObject(o, "configured_max_entries", m->configured);
		if (m->entries >= 0) {
			cJSON_AddNumberToObject(o, "entries", m->entries);
			cJSON_AddNumberToObject(o, "fill_percent",
						m->max_entries ? 100.0 * m->entries /
						m->max_entries : 0);
			cJSON_AddNumberToObject(o, "count_us", m->walk_us);
		}
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* Where each sized map's size came from (flag, dynamic, default). */
static cJSON *map_sizes_status(struct agent *a)
{
	const struct map_sizes *ms = &a->cfg.map_sizes;
	cJSON *o = cJSON_CreateObject(), *arr;

	cJSON_AddNumberToObject(o, "dynamic_size_ratio", ms->dynamic_ratio);
	if (ms->dynamic_ratio > 0)
		cJSON_AddNumberToObject(o, "total_memory", (double)ms->total_memory);
	arr = cJSON_AddArrayToObject(o, "maps");
	for (int i = 0; i < MS__NR; i++) {
		cJSON *m = cJSON_CreateObject();

		cJSON_AddStringToObject(m, "name", map_size_map_name(i));
		cJSON_AddNumberToObject(m, "max_entries", ms->max[i]);
		cJSON_AddStringToObject(m, "source", map_size_source_name(ms->source[i]));
		cJSON_AddStringToObject(m, "flag", map_size_flag_name(i));
		cJSON_AddItemToArray(arr, m);
	}
	return o;
}

static cJSON *attach_status(struct agent *a)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; i < a->dp.n_attach; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "program", a->dp.attach[i].program);
		cJSON_AddStringToObject(o, "hook", a->dp.attach[i].hook);
		cJSON_AddStringToObject(o, "target", a->dp.attach[i].target);
		cJSON_AddStringToObject(o, "mode", "link");
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* --enable-ipv4-big-tcp: on or off, the size, how many devices carry it. */
static cJSON *big_tcp_status(struct agent *a)
{
	const struct big_tcp *bt = &a->dpx.big_tcp;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ipv4", bt->enabled);
	cJSON_AddBoolToObject(o, "active", bt->enabled && bt->supported);
	if (bt->enabled && bt->supported) {
		cJSON_AddNumberToObject(o, "gso_ipv4_max_size", bt->size);
		cJSON_AddNumberToObject(o, "gro_ipv4_max_size", bt->size);
	} else {
		cJSON_AddNullToObject(o, "gso_ipv4_max_size");
		cJSON_AddNullToObject(o, "gro_ipv4_max_size");
	}
	cJSON_AddNumberToObject(o, "devices", big_tcp_devices(bt));
	cJSON_AddNumberToObject(o, "refused", bt->refused);
	cJSON_AddNumberToObject(o, "native_left_alone", bt->skipped);
	cJSON_AddStringToObject(o, "last_error", bt->last_error);
	cJSON_AddStringToObject(o, "message", bt->message);
	return o;
}

static void big_tcp_module(struct agent *a, cJSON *arr)
{
	const struct big_tcp *bt = &a->dpx.big_tcp;
	cJSON *m = cJSON_CreateObject();
	char msg[320];

	if (!bt->enabled)
		snprintf(msg, sizeof(msg), "off (--enable-ipv4-big-tcp)");
	else if (!bt->supported)
		snprintf(msg, sizeof(msg), "on, not active: %s", bt->message);
	else
		snprintf(msg, sizeof(msg), "IPv4 GSO/GRO max %u on %u device(s)%s%.200s", bt->size,
			 big_tcp_devices(bt), bt->refused ? "; refused: " : "", bt->last_error);
	cJSON_AddStringToObject(m, "name", "big-tcp");
	/* Off is a choice, as routes-reconciler's "disabled" is: healthy. */
	cJSON_AddStringToObject(m, "health",
				!bt->enabled || (bt->supported && !bt->refused) ? "ok" : "degraded");
	cJSON_AddStringToObject(m, "message", msg);
	cJSON_AddItemToArray(arr, m);
}

/* The k8s-watch module: every watch synced, or the first that is not. */
static void watch_module(struct agent *a, cJSON *arr)
{
	struct agent_watch *ws[AGENT_WATCHES], *missing = NULL;
	size_t n = agent_watches(a, ws);
	cJSON *m = cJSON_CreateObject();
	bool synced = true;
	char msg[128];

	for (size_t i = 0; i < n; i++) {
		if (ws[i]->synced)
			continue;
		synced = false;
		if (!missing && agent_watch_not_installed(ws[i]))
			missing = ws[i];
	}
	cJSON_AddStringToObject(m, "name", "k8s-watch");
	cJSON_AddStringToObject(m, "health", !synced ? "degraded" : "ok");
	if (missing) {
		struct k8s_informer_status st;

		/* Not fatal: everything that does not need it works without it. */
		k8s_informer_status(missing->informer, &st);
		snprintf(msg, sizeof(msg), "%s: resource not installed (404), retrying", st.name);
		cJSON_AddStringToObject(m, "message", msg);
	} else {
		cJSON_AddStringToObject(m, "message",
					synced ? "all watches synced" : "waiting for sync");
	}
	cJSON_AddItemToArray(arr, m);
}

static cJSON *modules_status(struct agent *a)
{
	cJSON *arr = cJSON_CreateArray(), *m;
	char msg[128];
	size_t ep_fail = a->dpx.ep.failures.count, rt_fail = a->dpx.routes.failures.count;

	watch_module(a, arr);

	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", "lb-reconciler");
	cJSON_AddStringToObject(m, "health", a->lb.failures.count ? "degraded" : "ok");
	snprintf(msg, sizeof(msg), "%zu service(s) not realized", a->lb.failures.count);
	cJSON_AddStringToObject(m, "message", a->lb.failures.count ? msg : "all services realized");
	cJSON_AddItemToArray(arr, m);

	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", "endpoints-reconciler");
	cJSON_AddStringToObject(m, "health", ep_fail ? "degraded" : "ok");
	snprintf(msg, sizeof(msg), "%zu ipcache/endpoint entries not realized, %zu endpoint(s) "
		 "waiting for a device", ep_fail, a->dpx.ep.pending.count);
	cJSON_AddStringToObject(m, "message", msg);
	cJSON_AddItemToArray(arr, m);

	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", "routes-reconciler");
	cJSON_AddStringToObject(m, "health", rt_fail ? "degraded" : "ok");
	snprintf(msg, sizeof(msg), "%zu node route(s) not realized", rt_fail);
	cJSON_AddStringToObject(m, "message", rt_fail ? msg
					      : a->cfg.auto_direct_node_routes ? "all node routes realized"
									       : "disabled");
	cJSON_AddItemToArray(arr, m);

	/* One endpoint's policy failing is its own (fail closed), not the node's
	 * readiness: degraded here, never in the datapath state /healthz reads. */
	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", "policy-reconciler");
	cJSON_AddStringToObject(m, "health", a->dpx.pol_failing > 0 ? "degraded" : "ok");
	snprintf(msg, sizeof(msg),
		 "%d endpoint(s) whose policy is not realized (revision %llu of %llu realized)",
		 a->dpx.pol_failing, (unsigned long long)a->dpx.pol.realized_rev,
		 (unsigned long long)pol_revision(&a->store));
	cJSON_AddStringToObject(m, "message", msg);
	cJSON_AddItemToArray(arr, m);

	m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", "datapath");
	cJSON_AddStringToObject(m, "health", !strcmp(a->dpx.state, "ready") ? "ok"
					     : !strncmp(a->dpx.state, "waiting", 7) ? "waiting"
					     : "degraded");
	cJSON_AddStringToObject(m, "message", a->dpx.state);
	cJSON_AddItemToArray(arr, m);

	big_tcp_module(a, arr);
	return arr;
}

static cJSON *failures_status(struct agent *a)
{
	cJSON *arr = cJSON_CreateArray();
	struct htable *h = &a->lb.failures;

	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e)) {
		const struct lb_failure *f = e->value;
		cJSON *o = cJSON_CreateObject();
		char key[STORE_KEY_MAX];

		snprintf(key, sizeof(key), "%.*s", (int)e->klen, (const char *)e->key);
		cJSON_AddStringToObject(o, "service", key);
		cJSON_AddStringToObject(o, "error", f->msg);
		cJSON_AddNumberToObject(o, "attempts", f->attempts);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static cJSON *skipped_status(struct agent *a)
{
	cJSON *arr = cJSON_CreateArray();
	unsigned long n = a->skipped_total < AGENT_SKIPPED_MAX ? a->skipped_total
							       : AGENT_SKIPPED_MAX;

	for (unsigned long i = a->skipped_total - n; i < a->skipped_total; i++) {
		const struct skipped_object *s = &a->skipped[i % AGENT_SKIPPED_MAX];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "kind", s->kind);
		cJSON_AddStringToObject(o, "name", s->name);
		cJSON_AddStringToObject(o, "error", s->error);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

cJSON *agent_status(struct agent *a)
{
	cJSON *r = cJSON_CreateObject(), *lb;

	cJSON_AddStringToObject(r, "version", axon_version);
	cJSON_AddStringToObject(r, "commit", axon_git_commit);
	add_time(r, "started", a->started);
	cJSON_AddItemToObject(r, "kubernetes", kubernetes_status(a));
	cJSON_AddItemToObject(r, "node", agent_node_status(a));
	lb = cJSON_AddObjectToObject(r, "load_balancing");
	cJSON_AddNumberToObject(lb, "services", a->store.services.count);
	cJSON_AddNumberToObject(lb, "endpoint_slices", a->store.slices.count);
	cJSON_AddNumberToObject(lb, "endpoints", a->store.n_endpoints);
	cJSON_AddNumberToObject(lb, "frontends", lb_reconciler_frontends(&a->lb));
	cJSON_AddNumberToObject(lb, "backends", lb_reconciler_backends(&a->lb));
	cJSON_AddNumberToObject(lb, "map_updates", a->lb.stats.updates);
	cJSON_AddNumberToObject(lb, "map_deletes", a->lb.stats.deletes);
	cJSON_AddNumberToObject(lb, "map_errors", a->lb.stats.errors);
	cJSON_AddItemToObject(r, "policy", agent_policy_status(a));
	cJSON_AddItemToObject(r, "ipam", agent_cni_ipam_status(a));
	cJSON_AddItemToObject(r, "maps", maps_status(a));
	cJSON_AddItemToObject(r, "map_sizes", map_sizes_status(a));
	cJSON_AddItemToObject(r, "attach", attach_status(a));
	cJSON_AddItemToObject(r, "modules", modules_status(a));
	cJSON_AddItemToObject(r, "unrealized", failures_status(a));
	cJSON_AddItemToObject(r, "datapath", agent_datapath_status(a));
	cJSON_AddItemToObject(r, "big_tcp", big_tcp_status(a));
	cJSON_AddItemToObject(r, "full_reconcile", agent_resync_status(a));
	cJSON_AddItemToObject(r, "health", agent_health_status(a));
	cJSON_AddItemToObject(r, "taint", agent_taint_status(a));
	cJSON_AddItemToObject(r, "kube_proxy_replacement", agent_kpr_status(a));
	cJSON_AddNumberToObject(r, "skipped_objects_total", a->skipped_total);
	cJSON_AddItemToObject(r, "skipped_objects", skipped_status(a));
	return r;
}
