// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `services`: the frontends the store asks for (lb/desired.c, the same
 * derivation the reconciler writes from), each with whether the maps hold it
 * exactly so (lb_reconciler_realized). Sorted by service, frontends in the
 * order the service lists them. A Service Axon does not serve (lb_service_unserved)
 * is listed too, as one row without a frontend: "served": false and the reason.
 * Then the pods' host ports (lb/hostport.h), by port and protocol, type
 * "HostPort", each row named after the pod that holds the frontend.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "axon/lb.h"
#include "addr.h"
#include "agent.h"
#include "api/commands.h"
#include "lb/hostport.h"

static const char *frontend_type(__u8 flags)
{
	if (flags & SVC_FLAG_HOST_PORT)
		return "HostPort";
	if (flags & SVC_FLAG_NODE_PORT)
		return "NodePort";
	if (flags & SVC_FLAG_LOAD_BALANCER)
		return "LoadBalancer";
	if (flags & SVC_FLAG_EXTERNAL_IP)
		return "ExternalIP";
	return "ClusterIP";
}

static const char *backend_state(__u8 state)
{
	switch (state) {
	case BACKEND_STATE_ACTIVE:
		return "active";
	case BACKEND_STATE_TERMINATING:
		return "terminating";
	default:
		return "maintenance";
	}
}

static void add_backends(cJSON *arr, const struct lb_backend_spec *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cJSON *b = cJSON_CreateObject();
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &v[i].addr, a, sizeof(a));
		cJSON_AddStringToObject(b, "address", a);
		cJSON_AddNumberToObject(b, "port", ntohs(v[i].port));
		cJSON_AddStringToObject(b, "state", backend_state(v[i].state));
		cJSON_AddItemToArray(arr, b);
	}
}

/* Who a row is about: the Service (or pod, for a host port) it names, and
 * the key the reconciler realizes it under. */
struct fe_owner {
	const char *key, *namespace, *name;
	const char *lb_key;
};

static cJSON *frontend_json(struct agent *a, const struct fe_owner *ow,
			    const struct lb_frontend_spec *fe)
{
	cJSON *o = cJSON_CreateObject(), *backends;
	char buf[ADDR_STR_MAX], ip[INET_ADDRSTRLEN];
	bool local = fe->flags & (SVC_FLAG_EXT_LOCAL | SVC_FLAG_INT_LOCAL);

	cJSON_AddStringToObject(o, "service", ow->key);
	cJSON_AddStringToObject(o, "namespace", ow->namespace);
	cJSON_AddStringToObject(o, "name", ow->name);
	cJSON_AddStringToObject(o, "type", frontend_type(fe->flags));
	cJSON_AddStringToObject(o, "frontend",
				format_addr_port(buf, sizeof(buf), fe->addr, fe->port, fe->proto));
	inet_ntop(AF_INET, &fe->addr, ip, sizeof(ip));
	cJSON_AddStringToObject(o, "address", ip);
	cJSON_AddNumberToObject(o, "port", ntohs(fe->port));
	cJSON_AddStringToObject(o, "protocol", k8s_proto_name(fe->proto));
	cJSON_AddStringToObject(o, "traffic_policy", local ? "Local" : "Cluster");
	cJSON_AddBoolToObject(o, "session_affinity", fe->flags & SVC_FLAG_AFFINITY);
	cJSON_AddStringToObject(o, "algorithm",
				fe->flags2 & SVC_FLAG2_MAGLEV ? "maglev" : "random");
	/* Slots first (picked for new connections), then the terminating
	 * backends kept for the flows they already have. */
	backends = cJSON_AddArrayToObject(o, "backends");
	add_backends(backends, fe->backends, fe->n_backends);
	add_backends(backends, fe->kept, fe->n_kept);
	cJSON_AddBoolToObject(o, "realized", lb_reconciler_realized(&a->lb, ow->lb_key, fe));
	cJSON_AddBoolToObject(o, "served", true);
	return o;
}

static const char *service_type(enum k8s_service_type t)
{
	static const char *const names[] = {
	    [K8S_SVC_CLUSTER_IP] = "ClusterIP",
	    [K8S_SVC_NODE_PORT] = "NodePort",
	    [K8S_SVC_LOAD_BALANCER] = "LoadBalancer",
	    [K8S_SVC_EXTERNAL_NAME] = "ExternalName",
	};

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* One row for a Service Axon leaves alone: no frontend, and why. */
static cJSON *unserved_json(const struct store_service *ss, const char *reason)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "service", ss->key);
	cJSON_AddStringToObject(o, "namespace", ss->svc.meta.namespace);
	cJSON_AddStringToObject(o, "name", ss->svc.meta.name);
	cJSON_AddStringToObject(o, "type", service_type(ss->svc.type));
	cJSON_AddArrayToObject(o, "backends");
	cJSON_AddBoolToObject(o, "served", false);
	cJSON_AddStringToObject(o, "reason", reason);
	return o;
}

static int host_port_key_cmp(const void *a, const void *b)
{
	__u16 pa, pb;
	__u8 ta, tb;

	lb_host_port_key(*(char *const *)a, &pa, &ta);
	lb_host_port_key(*(char *const *)b, &pb, &tb);
	return pa != pb ? pa - pb : ta - tb;
}

/* The host ports of this node's pods, one key each, by port then protocol. */
static void add_host_ports(struct agent *a, cJSON *arr)
{
	struct htable seen;
	char **keys = NULL;
	size_t n = 0;

	if (ht_init(&seen))
		return;
	for (struct ht_entry *e = ht_first(&a->store.pods); e; e = ht_next(&a->store.pods, e)) {
		const struct k8s_pod *pod = &((const struct store_pod *)e->value)->pod;

		for (size_t i = 0; i < pod->n_host_ports; i++) {
			char key[STORE_KEY_MAX], **p;

			if (store_host_port_key(key, sizeof(key), pod->host_ports[i].host_port,
						pod->host_ports[i].proto) ||
			    ht_get(&seen, key, strlen(key)))
				continue;
			p = realloc(keys, (n + 1) * sizeof(*keys));
			if (!p)
				goto cleanup;
			keys = p;
			if (!(keys[n] = strdup(key)) ||
			    ht_put(&seen, keys[n], strlen(key), keys[n], NULL)) {
				free(keys[n]);
				goto cleanup;
			}
			n++;
		}
	}
	qsort(keys, n, sizeof(*keys), host_port_key_cmp);
	for (size_t k = 0; k < n; k++) {
		const struct store_pod *owners[LB_HOST_PORT_FRONTENDS_MAX];
		struct lb_service_spec spec;

		if (lb_desired_host_port(&a->store, keys[k], &spec, owners))
			continue;
		for (size_t j = 0; j < spec.n_frontends; j++) {
			struct fe_owner ow = { owners[j]->key, owners[j]->pod.namespace,
					       owners[j]->pod.name, keys[k] };

			cJSON_AddItemToArray(arr, frontend_json(a, &ow, &spec.frontends[j]));
		}
		lb_service_spec_free(&spec);
	}
cleanup:
	ht_destroy(&seen);
	for (size_t k = 0; k < n; k++)
		free(keys[k]);
	free(keys);
}

cJSON *api_cmd_services(struct agent *a)
{
	cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "services");
	void **v = ht_sorted_values(&a->store.services, NULL); /* by namespace/name */

	if (!v) {
		cJSON_Delete(r);
		return NULL;
	}
	for (size_t i = 0; v[i]; i++) {
		const struct store_service *ss = v[i];
		const char *reason = lb_service_unserved(&ss->svc);
		struct lb_service_spec spec;

		if (reason) {
			cJSON_AddItemToArray(arr, unserved_json(ss, reason));
			continue;
		}
		if (lb_desired_service(&a->store, ss->key, a->lb.maglev_default, &spec))
			continue;
		/* One row per frontend: its internal scope (clients on this
		 * node) shows in `bpf lb list`. */
		for (size_t j = 0; j < spec.n_frontends; j++) {
			struct fe_owner ow = { ss->key, ss->svc.meta.namespace, ss->svc.meta.name,
					       ss->key };

			if (spec.frontends[j].scope != LB_SCOPE_EXT)
				continue;
			cJSON_AddItemToArray(arr, frontend_json(a, &ow, &spec.frontends[j]));
		}
		lb_service_spec_free(&spec);
	}
	free(v);
	add_host_ports(a, arr);
	return r;
}
