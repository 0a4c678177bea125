// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Watch handlers: decode objects from the apiserver into the store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"

/* Name an object we could not decode, as best its metadata allows. */
static void object_name(const cJSON *obj, char *buf, size_t len)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");

	snprintf(buf, len, "%.63s/%.200s", cJSON_IsString(ns) ? ns->valuestring : "",
		 cJSON_IsString(name) ? name->valuestring : "<unnamed>");
}

static void skip_object(struct agent *a, const char *kind, const cJSON *obj, const char *why)
{
	struct skipped_object *s = &a->skipped[a->skipped_total % AGENT_SKIPPED_MAX];

	snprintf(s->kind, sizeof(s->kind), "%s", kind);
	object_name(obj, s->name, sizeof(s->name));
	snprintf(s->error, sizeof(s->error), "%s", why);
	a->skipped_total++;
	pr_warn("skipping malformed object", "kind=%s name=%s error=\"%s\"", kind, s->name, why);
}

static int service_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_service svc = {};
	char err[256] = "";
	int ret;

	ret = k8s_service_from_json(obj, &svc, err, sizeof(err));
	if (ret) {
		/* The last good version (if any) stays in effect. */
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = store_set_service(&w->agent->store, &svc);
	k8s_service_free(&svc);
	return ret;
}

static int service_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret = store_delete_service(&w->agent->store, ns, name);

	return ret == -ENOENT ? 0 : ret;
}

static int slice_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_endpointslice eps = {};
	char err[256] = "";
	int ret;

	ret = k8s_endpointslice_from_json(obj, &eps, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = store_set_slice(&w->agent->store, &eps);
	k8s_endpointslice_free(&eps);
	return ret;
}

static int slice_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret = store_delete_slice(&w->agent->store, ns, name);

	return ret == -ENOENT ? 0 : ret;
}

static void watch_synced(void *ctx)
{
	struct agent_watch *w = ctx;

	if (!w->synced)
		pr_info("initial sync complete", "kind=%s", w->kind);
	w->synced = true;
}

static const struct k8s_informer_ops service_ops = {
	.on_upsert = service_upsert,
	.on_delete = service_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops slice_ops = {
	.on_upsert = slice_upsert,
	.on_delete = slice_delete,
	.on_synced = watch_synced,
};

int agent_watches_add(struct agent *a)
{
	a->services = (struct agent_watch){ .agent = a, .kind = "Service" };
	a->slices = (struct agent_watch){ .agent = a, .kind = "EndpointSlice" };
	a->services.informer = k8s_informer_add(a->k8s, "services", "/api/v1/services", NULL,
						&service_ops, &a->services);
	/* Only slices that belong to a Service matter to the load balancer. */
	a->slices.informer = k8s_informer_add(a->k8s, "endpointslices",
					      "/apis/discovery.k8s.io/v1/endpointslices",
					      "kubernetes.io/service-name", &slice_ops, &a->slices);
	return a->services.informer && a->slices.informer ? 0 : -ENOMEM;
}

int agent_reconcile(struct agent *a)
{
	uint64_t now = lb_now_ms(), next = UINT64_MAX;

	/* Nothing is realized until every watch has delivered its first full
	 * list: Services may arrive before their EndpointSlices, and realizing
	 * them in between would empty the backends a restarted agent found
	 * pinned, refusing connections for a moment during every upgrade. */
	if (!a->services.synced || !a->slices.synced)
		return -1;
	if (store_has_dirty(&a->store))
		lb_reconcile_dirty(&a->lb, &a->store, now, &next);
	/* Prune once every service has been tried, so each has claimed its
	 * frontends: what is left unclaimed the cluster no longer holds. */
	if (!a->pruned) {
		lb_reconciler_prune(&a->lb);
		a->pruned = true;
		pr_info("datapath in sync with the cluster", "frontends=%zu backends=%zu",
			lb_reconciler_frontends(&a->lb), lb_reconciler_backends(&a->lb));
	}
	if (next == UINT64_MAX)
		return -1;
	return next > now ? (int)(next - now) : 0;
}
