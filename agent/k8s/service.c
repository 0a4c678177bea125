// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* core/v1 Service -> struct k8s_service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

/* The API's default for sessionAffinityConfig.clientIP.timeoutSeconds. */
#define AFFINITY_TIMEOUT_DEFAULT 10800
#define AFFINITY_TIMEOUT_MAX	 86400
#define PROXY_NAME_LABEL	 "service.kubernetes.io/service-proxy-name"
#define TOPOLOGY_MODE_ANN	 "service.kubernetes.io/topology-mode"
#define TOPOLOGY_HINTS_ANN	 "service.kubernetes.io/topology-aware-hints"

void k8s_service_free(struct k8s_service *svc)
{
	free(svc->cluster_ips);
	free(svc->external_ips);
	free(svc->lb_ips);
	free(svc->src_ranges);
	free(svc->ports);
	k8s_strpool_free(&svc->strs);
	memset(svc, 0, sizeof(*svc));
}

/* Map a string enum field onto an index of names[]; absent = def. */
static int enum_field(const cJSON *obj, const char *path, const char *key, const char *const *names,
		      int n, int def, int *out, char *err, size_t errlen)
{
	char shown[64];
	const char *s;
	int ret;

	ret = k8s_json_string_ref(obj, path, key, false, &s, err, errlen);
	if (ret)
		return ret;
	if (!s) {
		*out = def;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	k8s_json_quote(shown, sizeof(shown), s);
	return k8s_json_fail(err, errlen, path, key, "unknown value \"%s\"", shown);
}

static int parse_type(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	static const char *const types[] = {
	    [K8S_SVC_CLUSTER_IP] = "ClusterIP",
	    [K8S_SVC_NODE_PORT] = "NodePort",
	    [K8S_SVC_LOAD_BALANCER] = "LoadBalancer",
	    [K8S_SVC_EXTERNAL_NAME] = "ExternalName",
	};
	int v = 0, ret;

	ret = enum_field(spec, "spec", "type", types, 4, K8S_SVC_CLUSTER_IP, &v, err, errlen);
	if (ret)
		return ret;
	svc->type = v;
	return 0;
}

/*
 * spec.clusterIPs supersedes spec.clusterIP (they agree on the first entry
 * when both are set). "None" in either means headless.
 */
static int parse_cluster_ips(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	const cJSON *arr, *single;
	__be32 addr;
	size_t n;
	bool v4;
	int ret;

	/* ExternalName services have no virtual IP: nothing to program. */
	if (svc->type == K8S_SVC_EXTERNAL_NAME)
		return 0;
	ret = k8s_json_array(spec, "spec", "clusterIPs", false, K8S_MAX_SVC_IPS, &arr, &n, err,
			     errlen);
	if (ret)
		return ret;
	if (n) {
		const cJSON *first = cJSON_GetArrayItem(arr, 0);

		if (cJSON_IsString(first) && !strcmp(first->valuestring, "None")) {
			svc->headless = true;
			return 0;
		}
		ret = k8s_ipv4_list(arr, n, "spec.clusterIPs", &svc->cluster_ips,
				    &svc->n_cluster_ips, err, errlen);
		svc->ipv6_only = !ret && !svc->n_cluster_ips;
		return ret;
	}
	single = k8s_json_get(spec, "clusterIP");
	if (!single)
		return 0;
	if (cJSON_IsString(single) && !strcmp(single->valuestring, "None")) {
		svc->headless = true;
		return 0;
	}
	ret = k8s_json_ip(single, "spec.clusterIP", &addr, &v4, err, errlen);
	svc->ipv6_only = !ret && !v4;
	if (ret || !v4)
		return ret;
	svc->cluster_ips = malloc(sizeof(*svc->cluster_ips));
	if (!svc->cluster_ips)
		return -ENOMEM;
	svc->cluster_ips[0] = addr;
	svc->n_cluster_ips = 1;
	return 0;
}

static int parse_ports(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret =
	    k8s_json_array(spec, "spec", "ports", false, K8S_MAX_SVC_PORTS, &arr, &n, err, errlen);
	if (ret || !n)
		return ret;
	svc->ports = calloc(n, sizeof(*svc->ports));
	if (!svc->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		struct k8s_service_port *sp = &svc->ports[i];
		long long np = 0;

		k8s_json_index(p, sizeof(p), "spec.ports", i);
		ret = k8s_port_from_json(it, p, sp->name, sizeof(sp->name), &sp->proto, &sp->port,
					 err, errlen);
		if (ret)
			return ret;
		/* 0 is what an unallocated nodePort looks like in some clients. */
		ret = k8s_json_int(it, p, "nodePort", false, 0, 65535, &np, err, errlen);
		if (ret)
			return ret;
		sp->node_port = (__u16)np;
		/* The apiserver refuses both of these; so do we, so that a
		 * (port, protocol) or a name always means one port. */
		for (size_t j = 0; j < i; j++) {
			if (svc->ports[j].port == sp->port && svc->ports[j].proto == sp->proto)
				return k8s_json_fail(err, errlen, p, NULL, "duplicate port %u/%s",
						     sp->port, k8s_proto_name(sp->proto));
			if (sp->name[0] && !strcmp(svc->ports[j].name, sp->name))
				return k8s_json_fail(err, errlen, p, "name",
						     "duplicate port name \"%s\"", sp->name);
		}
		svc->n_ports = ++i;
	}
	return 0;
}

static int parse_affinity(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	static const char *const modes[] = {"None", "ClientIP"};
	const cJSON *cfg, *cip;
	long long t = AFFINITY_TIMEOUT_DEFAULT;
	int v = 0, ret;

	ret = enum_field(spec, "spec", "sessionAffinity", modes, 2, 0, &v, err, errlen);
	if (ret)
		return ret;
	svc->affinity_client_ip = v == 1;
	if (!svc->affinity_client_ip)
		return 0;
	ret = k8s_json_object(spec, "spec", "sessionAffinityConfig", false, &cfg, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_object(cfg, "spec.sessionAffinityConfig", "clientIP", false, &cip, err,
			      errlen);
	if (ret)
		return ret;
	ret = k8s_json_int(cip, "spec.sessionAffinityConfig.clientIP", "timeoutSeconds", false, 1,
			   AFFINITY_TIMEOUT_MAX, &t, err, errlen);
	if (ret)
		return ret;
	svc->affinity_timeout = (__u32)t;
	return 0;
}

static int parse_policies(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	/* "Global" is the pre-1.22 spelling of Cluster, still accepted by the API. */
	static const char *const ext[] = {"Cluster", "Local", "Global"};
	static const char *const in[] = {"Cluster", "Local"};
	long long hc = 0;
	int v = 0, ret;

	ret = enum_field(spec, "spec", "externalTrafficPolicy", ext, 3, 0, &v, err, errlen);
	if (ret)
		return ret;
	svc->ext_traffic_local = v == 1;
	ret = enum_field(spec, "spec", "internalTrafficPolicy", in, 2, 0, &v, err, errlen);
	if (ret)
		return ret;
	svc->int_traffic_local = v == 1;
	ret = k8s_json_int(spec, "spec", "healthCheckNodePort", false, 0, 65535, &hc, err, errlen);
	svc->health_check_node_port = (__u16)hc;
	return ret;
}

static int parse_lb_ingress(const cJSON *obj, struct k8s_service *svc, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *status, *lb, *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_object(obj, NULL, "status", false, &status, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_object(status, "status", "loadBalancer", false, &lb, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_array(lb, "status.loadBalancer", "ingress", false, K8S_MAX_EXT_IPS, &arr, &n,
			     err, errlen);
	if (ret || !n)
		return ret;
	svc->lb_ips = calloc(n, sizeof(*svc->lb_ips));
	if (!svc->lb_ips)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		char ipp[K8S_PATH_MAX];
		const cJSON *ip;
		__be32 a;
		bool v4;

		k8s_json_index(p, sizeof(p), "status.loadBalancer.ingress", i++);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, p, NULL, "expected an object");
		/* Ingress points may be hostnames only (cloud LBs): nothing to do. */
		ip = k8s_json_get(it, "ip");
		if (!ip)
			continue;
		k8s_json_path(ipp, sizeof(ipp), p, "ip");
		ret = k8s_json_ip(ip, ipp, &a, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4)
			svc->lb_ips[svc->n_lb_ips++] = a;
	}
	return 0;
}

/* Labels and flags that decide whether Axon serves the Service at all. */
static int parse_serving(const cJSON *obj, const cJSON *spec, struct k8s_service *svc, char *err,
			 size_t errlen)
{
	const cJSON *labels;
	int ret;

	ret = k8s_json_labels(obj, &labels, err, errlen);
	if (ret)
		return ret;
	svc->proxy_name_label = k8s_json_get(labels, PROXY_NAME_LABEL) != NULL;
	return k8s_json_bool(spec, "spec", "publishNotReadyAddresses", &svc->publish_not_ready,
			     NULL, err, errlen);
}

/*
 * Topology aware routing, as kube-proxy reads it: spec.trafficDistribution
 * PreferClose (1.30+), else the topology-mode annotation (1.27+), else the
 * topology-aware-hints one (1.23-1.26); an annotation enables it with any
 * value but "" and "disabled" (kube-proxy 1.26's rule). Other values of
 * trafficDistribution are not errors: newer APIs add some.
 */
static int parse_topology(const cJSON *obj, const cJSON *spec, struct k8s_service *svc, char *err,
			  size_t errlen)
{
	const cJSON *md, *ann;
	const char *td = NULL, *v = NULL;
	int ret;

	ret = k8s_json_string_ref(spec, "spec", "trafficDistribution", false, &td, err, errlen);
	if (ret)
		return ret;
	if (td && !strcmp(td, "PreferClose")) {
		svc->topology_aware = true;
		return 0;
	}
	ret = k8s_json_object(obj, NULL, "metadata", true, &md, err, errlen);
	if (!ret)
		ret = k8s_json_object(md, "metadata", "annotations", false, &ann, err, errlen);
	if (!ret)
		ret = k8s_json_string_ref(ann, "metadata.annotations", TOPOLOGY_MODE_ANN, false, &v,
					  err, errlen);
	if (!ret && !v)
		ret = k8s_json_string_ref(ann, "metadata.annotations", TOPOLOGY_HINTS_ANN, false,
					  &v, err, errlen);
	if (ret)
		return ret;
	svc->topology_aware = v && v[0] && strcmp(v, "disabled") && strcmp(v, "Disabled");
	return 0;
}

/* spec.loadBalancerSourceRanges: the clients a LoadBalancer's frontends
 * accept from outside (none listed: all). IPv6 ranges are valid and not kept. */
static int parse_src_ranges(const cJSON *spec, struct k8s_service *svc, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(spec, "spec", "loadBalancerSourceRanges", false, K8S_MAX_EXT_IPS,
			     &arr, &n, err, errlen);
	if (ret || !n)
		return ret;
	svc->src_ranges = calloc(n, sizeof(*svc->src_ranges));
	if (!svc->src_ranges)
		return -ENOMEM;
	for (it = arr->child; it && i < n; it = it->next, i++) {
		struct ipv4_prefix pfx;
		bool v4;

		k8s_json_index(p, sizeof(p), "spec.loadBalancerSourceRanges", i);
		ret = k8s_json_cidr(it, p, &pfx.addr, &pfx.len, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4)
			svc->src_ranges[svc->n_src_ranges++] = pfx;
	}
	return 0;
}

int k8s_service_from_json(const cJSON *obj, struct k8s_service *svc, char *err, size_t errlen)
{
	const cJSON *spec, *arr;
	size_t n;
	int ret;

	memset(svc, 0, sizeof(*svc));
	ret = k8s_obj_meta_from_json(obj, &svc->meta, &svc->strs, err, errlen);
	if (ret)
		goto cleanup;
	ret = k8s_json_object(obj, NULL, "spec", true, &spec, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_serving(obj, spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_type(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_cluster_ips(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = k8s_json_array(spec, "spec", "externalIPs", false, K8S_MAX_EXT_IPS, &arr, &n, err,
			     errlen);
	if (ret)
		goto cleanup;
	ret = k8s_ipv4_list(arr, n, "spec.externalIPs", &svc->external_ips, &svc->n_external_ips,
			    err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_ports(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_affinity(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_policies(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_lb_ingress(obj, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_src_ranges(spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_topology(obj, spec, svc, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	k8s_service_free(svc);
	return ret;
}
