// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Watch handlers: decode objects from the apiserver into the store.
 *
 * Services and EndpointSlices feed the load balancer; Nodes and
 * CiliumEndpointSlices feed the ipcache, the local endpoints and the node
 * routes; NetworkPolicies, CiliumNetworkPolicies, CCNPs, CiliumIdentities and
 * Namespaces feed the policy model (agent/policy, store/policy.c). A CRD that
 * is not installed answers 404: the informer reports it in status and
 * retries with backoff, and everything that does not need it keeps working.
 *
 * A malformed object is logged with its name, counted in status and skipped;
 * the last good version of it (if any) stays in effect, as Cilium keeps a
 * policy's previous rules when an update fails to parse.
 */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "lb/hostport.h"
#include "log.h"
#include "policy/rules.h"

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
	/* Before the store takes the object's strings (it moves the pool). */
	agent_k8s_service_seen(w->agent, &svc);
	ret = store_set_service_algo(&w->agent->store, &svc, agent_service_lb_algorithm(obj));
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
	/* Like kube-proxy's EndpointSlice informer (selector !headless label):
	 * labelling a held slice removes it, as a delete would. */
	if (eps.headless_label) {
		ret = store_delete_slice(&w->agent->store, eps.meta.namespace, eps.meta.name);
		k8s_endpointslice_free(&eps);
		return ret == -ENOENT ? 0 : ret;
	}
	if (eps.hints_error[0])
		pr_warn("ignoring malformed topology hints", "slice=%s/%s error=\"%s\"",
			eps.meta.namespace, eps.meta.name, eps.hints_error);
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

enum store_lb_algorithm agent_service_lb_algorithm(const cJSON *obj)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, SERVICE_LB_ALGORITHM_ANNOTATION);

	if (!cJSON_IsString(v))
		return STORE_LB_ALGO_DEFAULT;
	if (!strcmp(v->valuestring, "maglev"))
		return STORE_LB_ALGO_MAGLEV;
	if (!strcmp(v->valuestring, "random"))
		return STORE_LB_ALGO_RANDOM;
	/* Anything else: the agent's default, as Cilium does. */
	return STORE_LB_ALGO_DEFAULT;
}

static int node_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_node node = {};
	char err[256] = "";
	int ret;

	ret = k8s_node_from_json(obj, &node, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = store_set_node(&w->agent->store, &node);
	k8s_node_free(&node);
	return ret;
}

static int node_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret;

	(void)ns;
	ret = store_delete_node(&w->agent->store, name);
	return ret == -ENOENT ? 0 : ret;
}

static int ces_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_cilium_endpointslice ces = {};
	char err[256] = "";
	int ret;

	ret = k8s_cilium_endpointslice_from_json(obj, &ces, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = store_set_ces(&w->agent->store, &ces);
	k8s_cilium_endpointslice_free(&ces);
	return ret;
}

static int ces_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret;

	(void)ns;
	ret = store_delete_ces(&w->agent->store, name);
	return ret == -ENOENT ? 0 : ret;
}

static int policy_upsert(struct agent_watch *w, const cJSON *obj, enum policy_kind kind)
{
	struct policy p = {};
	char err[256] = "", what[256];
	int ret;

	ret = kind == POLICY_KIND_NP ? k8s_network_policy_from_json(obj, &p, err, sizeof(err))
				     : k8s_cilium_policy_from_json(obj, kind == POLICY_KIND_CCNP, &p,
								   err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	if (p.unsupported) {
		policy_unsupported_text(p.unsupported, what, sizeof(what));
		pr_warn("policy has parts Axon does not enforce",
			"kind=%s name=%s/%s unsupported=\"%s\"", w->kind, p.namespace, p.name, what);
	}
	agent_policy_event(w);
	ret = store_set_policy(&w->agent->store, &p);
	policy_free(&p);
	return ret;
}

static int netpol_upsert(void *ctx, const cJSON *obj)
{
	return policy_upsert(ctx, obj, POLICY_KIND_NP);
}

static int cnp_upsert(void *ctx, const cJSON *obj)
{
	return policy_upsert(ctx, obj, POLICY_KIND_CNP);
}

static int ccnp_upsert(void *ctx, const cJSON *obj)
{
	return policy_upsert(ctx, obj, POLICY_KIND_CCNP);
}

static int policy_delete(struct agent_watch *w, enum policy_kind kind, const char *ns,
			 const char *name)
{
	int ret;

	agent_policy_event(w);
	ret = store_delete_policy(&w->agent->store, kind, ns, name);
	return ret == -ENOENT ? 0 : ret;
}

static int netpol_delete(void *ctx, const char *ns, const char *name)
{
	return policy_delete(ctx, POLICY_KIND_NP, ns, name);
}

static int cnp_delete(void *ctx, const char *ns, const char *name)
{
	return policy_delete(ctx, POLICY_KIND_CNP, ns, name);
}

static int ccnp_delete(void *ctx, const char *ns, const char *name)
{
	(void)ns;
	return policy_delete(ctx, POLICY_KIND_CCNP, "", name);
}

static int identity_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_identity id = {};
	char err[256] = "";
	int ret;

	ret = k8s_identity_from_json(obj, &id, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	agent_policy_event(w);
	ret = store_set_identity(&w->agent->store, &id);
	k8s_identity_free(&id);
	return ret;
}

static int identity_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	unsigned long long id;
	char *end;
	int ret;

	(void)ns;
	/* A name that is no number was never held (it was refused). */
	errno = 0;
	id = strtoull(name, &end, 10);
	if (errno || *end || !*name || id > 0xffffffffULL)
		return 0;
	agent_policy_event(w);
	ret = store_delete_identity(&w->agent->store, (__u32)id);
	return ret == -ENOENT ? 0 : ret;
}

static int namespace_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_namespace ns = {};
	char err[256] = "";
	int ret;

	ret = k8s_namespace_from_json(obj, &ns, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	agent_policy_event(w);
	ret = store_set_namespace(&w->agent->store, &ns);
	k8s_namespace_free(&ns);
	return ret;
}

static int namespace_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret;

	(void)ns;
	agent_policy_event(w);
	ret = store_delete_namespace(&w->agent->store, name);
	return ret == -ENOENT ? 0 : ret;
}

static int pod_upsert(void *ctx, const cJSON *obj)
{
	struct agent_watch *w = ctx;
	struct k8s_pod pod = {};
	char err[256] = "", key[STORE_KEY_MAX];
	const struct store_pod *sp;
	int ret;

	ret = k8s_pod_from_json(obj, &pod, err, sizeof(err));
	if (ret) {
		skip_object(w->agent, w->kind, obj, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = store_key(key, sizeof(key), pod.namespace, pod.name);
	if (!ret)
		ret = store_set_pod(&w->agent->store, &pod);
	k8s_pod_free(&pod);
	sp = store_get_pod(&w->agent->store, key);
	if (!ret && sp)
		lb_host_port_log_pod(&w->agent->store, &sp->pod);
	return ret;
}

static int pod_delete(void *ctx, const char *ns, const char *name)
{
	struct agent_watch *w = ctx;
	int ret = store_delete_pod(&w->agent->store, ns, name);

	return ret == -ENOENT ? 0 : ret;
}

bool agent_watch_not_installed(const struct agent_watch *w)
{
	struct k8s_informer_status st;

	if (!w->informer)
		return false;
	k8s_informer_status(w->informer, &st);
	/* request.c's wording for a 404 on a list or watch. */
	return strstr(st.last_error, "(404)") != NULL;
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

static const struct k8s_informer_ops node_ops = {
	.on_upsert = node_upsert,
	.on_delete = node_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops ces_ops = {
	.on_upsert = ces_upsert,
	.on_delete = ces_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops netpol_ops = {
	.on_upsert = netpol_upsert,
	.on_delete = netpol_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops cnp_ops = {
	.on_upsert = cnp_upsert,
	.on_delete = cnp_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops ccnp_ops = {
	.on_upsert = ccnp_upsert,
	.on_delete = ccnp_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops identity_ops = {
	.on_upsert = identity_upsert,
	.on_delete = identity_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops pod_ops = {
	.on_upsert = pod_upsert,
	.on_delete = pod_delete,
	.on_synced = watch_synced,
};

static const struct k8s_informer_ops namespace_ops = {
	.on_upsert = namespace_upsert,
	.on_delete = namespace_delete,
	.on_synced = watch_synced,
};

/* The network-policy watches: what they list, under which informer name. */
static const struct {
	size_t off;			/* offsetof(struct agent, <watch>) */
	const char *kind, *name, *path;
	const struct k8s_informer_ops *ops;
} policy_watches[] = {
	{ offsetof(struct agent, netpols), "NetworkPolicy", "networkpolicies",
	  "/apis/networking.k8s.io/v1/networkpolicies", &netpol_ops },
	{ offsetof(struct agent, cnps), "CiliumNetworkPolicy", "ciliumnetworkpolicies",
	  "/apis/cilium.io/v2/ciliumnetworkpolicies", &cnp_ops },
	{ offsetof(struct agent, ccnps), "CiliumClusterwideNetworkPolicy",
	  "ciliumclusterwidenetworkpolicies", "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies",
	  &ccnp_ops },
	{ offsetof(struct agent, identities), "CiliumIdentity", "ciliumidentities",
	  "/apis/cilium.io/v2/ciliumidentities", &identity_ops },
	{ offsetof(struct agent, namespaces), "Namespace", "namespaces", "/api/v1/namespaces",
	  &namespace_ops },
};

size_t agent_watches(struct agent *a, struct agent_watch **ws)
{
	size_t n = 0;

	ws[n++] = &a->services;
	ws[n++] = &a->slices;
	ws[n++] = &a->nodes;
	ws[n++] = &a->ces;
	for (size_t i = 0; i < sizeof(policy_watches) / sizeof(policy_watches[0]); i++)
		ws[n++] = (struct agent_watch *)((char *)a + policy_watches[i].off);
	ws[n++] = &a->pods;
	return n;
}

static int agent_pods_add(struct agent *a);

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
	a->nodes = (struct agent_watch){ .agent = a, .kind = "Node" };
	a->ces = (struct agent_watch){ .agent = a, .kind = "CiliumEndpointSlice" };
	a->nodes.informer = k8s_informer_add(a->k8s, "nodes", "/api/v1/nodes", NULL, &node_ops,
					     &a->nodes);
	a->ces.informer = k8s_informer_add(a->k8s, "ciliumendpointslices",
					   "/apis/cilium.io/v2alpha1/ciliumendpointslices", NULL,
					   &ces_ops, &a->ces);
	if (!a->services.informer || !a->slices.informer || !a->nodes.informer ||
	    !a->ces.informer)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(policy_watches) / sizeof(policy_watches[0]); i++) {
		struct agent_watch *w = (struct agent_watch *)((char *)a + policy_watches[i].off);

		*w = (struct agent_watch){ .agent = a, .kind = policy_watches[i].kind };
		w->informer = k8s_informer_add(a->k8s, policy_watches[i].name,
					       policy_watches[i].path, NULL, policy_watches[i].ops,
					       w);
		if (!w->informer)
			return -ENOMEM;
	}
	return agent_pods_add(a);
}

/* This node's Pods only: what it publishes as endpoints. */
static int agent_pods_add(struct agent *a)
{
	char sel[K8S_NAME_MAX + 16];
	int ret;

	snprintf(sel, sizeof(sel), "spec.nodeName=%s", a->cfg.node_name);
	a->pods = (struct agent_watch){ .agent = a, .kind = "Pod" };
	a->pods.informer = k8s_informer_add(a->k8s, "pods", "/api/v1/pods", NULL, &pod_ops,
					    &a->pods);
	if (!a->pods.informer || k8s_informer_set_field_selector(a->pods.informer, sel))
		return -ENOMEM;
	ret = lep_mgr_init(&a->leps, a->k8s, k8s_call_start, k8s_call_cancel, &a->store,
			   a->cfg.node_name, a->cfg.identity_gc_interval_ms,
			   a->cfg.identity_heartbeat_ms);
	if (ret)
		return ret;
	a->leps_ready = true;
	return 0;
}

/* Endpoints, identities and the slices they are published in (identity/endpoints.h). */
static void endpoints_run(struct agent *a, uint64_t now, uint64_t *next)
{
	bool synced = a->pods.synced && a->ces.synced && a->identities.synced &&
		      a->namespaces.synced && a->nodes.synced;

	if (a->leps_ready)
		lep_mgr_run(&a->leps, synced, now, next);
}

/*
 * Before every list is in, on a node whose LB maps held nothing at start:
 * realize the services that already have EndpointSlices, while the rest of
 * the lists are still arriving (the agent waits on the apiserver for much of
 * that time). A frontend nobody could reach yet loses nothing by being
 * written with the backends known so far; a later slice marks the service
 * dirty again. After a restart (pinned state) nothing is realized before
 * the lists are complete, as below. Waits for the tc datapath, whose load
 * decides Maglev and marks every service dirty.
 */
static void reconcile_early(struct agent *a)
{
	struct ht_entry *e;

	if (!a->lb_fresh || !a->dpx.tc_loaded || a->early_rev == a->store.revision)
		return;
	a->early_rev = a->store.revision;
	for (e = ht_first(&a->store.dirty); e;) {
		char key[STORE_KEY_MAX];

		snprintf(key, sizeof(key), "%.*s", (int)e->klen, (const char *)e->key);
		/* Failures wait for the regular pass and its backoff. */
		if (!store_get_service(&a->store, key) || !store_service_slices(&a->store, key) ||
		    ht_get(&a->lb.failures, key, strlen(key)) ||
		    lb_reconcile_service(&a->lb, &a->store, key)) {
			e = ht_next(&a->store.dirty, e);
			continue;
		}
		e = ht_del_iter(&a->store.dirty, e);
	}
}

static void endpoints_run(struct agent *a, uint64_t now, uint64_t *next);

int agent_reconcile(struct agent *a)
{
	uint64_t now = lb_now_ms(), next = UINT64_MAX;

	/* Nothing is realized until every watch has delivered its first full
	 * list: Services may arrive before their EndpointSlices, and realizing
	 * them in between would empty the backends a restarted agent found
	 * pinned, refusing connections for a moment during every upgrade. */
	endpoints_run(a, now, &next);
	if (!a->services.synced || !a->slices.synced) {
		uint64_t dp_next = next;

		agent_datapath_sync(a, now, &dp_next);
		reconcile_early(a);
		return dp_next == UINT64_MAX ? -1 : dp_next > now ? (int)(dp_next - now) : 0;
	}
	bool first_sync = false;

	if (store_has_dirty(&a->store))
		lb_reconcile_dirty(&a->lb, &a->store, now, &next);
	/* Prune once every service has been tried, so each has claimed its
	 * frontends: what is left unclaimed the cluster no longer holds. Host
	 * ports come from the Pods: their frontends are claimed once those are
	 * listed. */
	if (!a->pruned && (!a->pods.informer || a->pods.synced)) {
		lb_reconciler_prune(&a->lb);
		a->pruned = true;
		first_sync = true;
		pr_info("datapath in sync with the cluster", "frontends=%zu backends=%zu",
			lb_reconciler_frontends(&a->lb), lb_reconciler_backends(&a->lb));
	}
	/* The node's own datapath: config, attachments, ipcache, endpoints,
	 * routes, conntrack GC (agent/dpsync.c). */
	agent_datapath_sync(a, now, &next);
	agent_resync_run(a, now, &next);
	/* The initial LISTs leave the heap holding freed response bodies and
	 * JSON trees between what the store keeps; glibc only gives back the
	 * top of the heap by itself. Return the rest once (8-10 MiB at 10,000
	 * services, README "Benchmarks"). */
	if (first_sync)
		malloc_trim(0);
	if (next == UINT64_MAX)
		return -1;
	return next > now ? (int)(next - now) : 0;
}
