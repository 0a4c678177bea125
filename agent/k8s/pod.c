// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * core/v1 Pod -> struct k8s_pod: name, namespace, labels (as identity
 * labels: source k8s), service account, node, phase, hostNetwork, deletion,
 * the first IPv4 pod address, the containers' named ports and host ports.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"
#include "k8s/pod.h"
#include "k8s/policy_priv.h"

#define K8S_MAX_CONTAINERS 1024
#define K8S_MAX_POD_IPS	   16

void k8s_pod_free(struct k8s_pod *pod)
{
	policy_arena_free(&pod->arena);
	memset(pod, 0, sizeof(*pod));
}

bool k8s_pod_finished(const struct k8s_pod *pod)
{
	return !strcmp(pod->phase, "Succeeded") || !strcmp(pod->phase, "Failed");
}

/* status.podIPs[].ip (or status.podIP): the first IPv4 one. */
static int parse_ips(const cJSON *status, struct k8s_pod *pod, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], fp[K8S_PATH_MAX];
	const cJSON *arr, *it, *ip;
	size_t n, i = 0;
	__be32 addr;
	bool v4;
	int ret;

	ret = k8s_json_array(status, "status", "podIPs", false, K8S_MAX_POD_IPS, &arr, &n, err,
			     errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(it, arr)
	{
		k8s_json_index(p, sizeof(p), "status.podIPs", i++);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, p, NULL, "expected an object");
		ip = k8s_json_get(it, "ip");
		if (!ip)
			return k8s_json_fail(err, errlen, p, "ip", "missing");
		k8s_json_path(fp, sizeof(fp), p, "ip");
		ret = k8s_json_ip(ip, fp, &addr, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4 && !pod->ipv4)
			pod->ipv4 = addr;
	}
	ip = k8s_json_get(status, "podIP");
	if (!n && ip) {
		ret = k8s_json_ip(ip, "status.podIP", &addr, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4)
			pod->ipv4 = addr;
	}
	return 0;
}

static int port_cmp(const void *a, const void *b)
{
	return strcmp(((const struct k8s_named_port *)a)->name,
		      ((const struct k8s_named_port *)b)->name);
}

/* Note the first host port left out, with why (the path names it). */
static int host_port_skip(struct k8s_pod *pod, const char *why)
{
	if (pod->host_port_skipped)
		return 0;
	pod->host_port_skipped = policy_arena_strdup(&pod->arena, why);
	return pod->host_port_skipped ? 0 : -ENOMEM;
}

/* The hostPort (and hostIP) of container port np at path: appended to
 * pod->host_ports, or skipped (host_port_skip) when the datapath cannot serve
 * it. Returns 0 or -ENOMEM. */
static int parse_host_port(const cJSON *port, const char *path, const struct k8s_named_port *np,
			   struct k8s_pod *pod)
{
	struct k8s_host_port hp = { .container_port = np->port, .proto = np->proto };
	const char *ip = NULL;
	struct in6_addr a6;
	char why[256];
	long long v = 0;

	if (k8s_json_int(port, path, "hostPort", false, 0, 65535, &v, why, sizeof(why)))
		return host_port_skip(pod, why);
	if (!v)
		return 0;	/* 0 is the API's "no host port" */
	hp.host_port = (__u16)v;
	if (k8s_json_string_ref(port, path, "hostIP", false, &ip, why, sizeof(why)))
		return host_port_skip(pod, why);
	if (ip && *ip && inet_pton(AF_INET, ip, &hp.host_ip) != 1) {
		k8s_json_fail(why, sizeof(why), path, "hostIP",
			      inet_pton(AF_INET6, ip, &a6) == 1 ? "\"%.64s\": IPv6 is not served"
								: "\"%.64s\" is not an IP address",
			      ip);
		return host_port_skip(pod, why);
	}
	if (hp.proto != IPPROTO_TCP && hp.proto != IPPROTO_UDP) {
		k8s_json_fail(why, sizeof(why), path, "protocol", "%s host ports are not served",
			      k8s_proto_name(hp.proto));
		return host_port_skip(pod, why);
	}
	pod->host_ports[pod->n_host_ports++] = hp;
	return 0;
}

/* spec.containers[].ports[] with a name; a name given twice keeps its first
 * port (the API only requires names unique within a container). */
static int parse_ports(const cJSON *spec, struct k8s_pod *pod, char *err, size_t errlen)
{
	char cp[K8S_PATH_MAX], pp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *containers, *c, *ports, *port;
	size_t nc, np, ci = 0, total = 0;
	int ret;

	ret = k8s_json_array(spec, "spec", "containers", false, K8S_MAX_CONTAINERS, &containers,
			     &nc, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(c, containers)
	{
		k8s_json_index(cp, sizeof(cp), "spec.containers", ci++);
		if (!cJSON_IsObject(c))
			return k8s_json_fail(err, errlen, cp, NULL, "expected an object");
		ret = k8s_json_array(c, cp, "ports", false, K8S_POD_NAMED_PORTS_MAX, &ports, &np,
				     err, errlen);
		if (ret)
			return ret;
		total += np;
	}
	if (total > K8S_POD_NAMED_PORTS_MAX)
		return k8s_json_fail(err, errlen, "spec.containers", NULL, "more than %d ports",
				     K8S_POD_NAMED_PORTS_MAX);
	pod->named_ports = policy_arena_alloc(&pod->arena, total, sizeof(*pod->named_ports));
	pod->host_ports = policy_arena_alloc(&pod->arena, total, sizeof(*pod->host_ports));
	if (!pod->named_ports || !pod->host_ports)
		return -ENOMEM;
	ci = 0;
	cJSON_ArrayForEach(c, containers)
	{
		size_t pi = 0;

		k8s_json_index(cp, sizeof(cp), "spec.containers", ci++);
		k8s_json_path(pp, sizeof(pp), cp, "ports");
		cJSON_ArrayForEach(port, k8s_json_get(c, "ports"))
		{
			struct k8s_named_port np1 = {};
			const cJSON *cport;
			long long v;
			bool dup = false;

			k8s_json_index(ip, sizeof(ip), pp, pi++);
			if (!cJSON_IsObject(port))
				return k8s_json_fail(err, errlen, ip, NULL, "expected an object");
			ret = k8s_json_string(port, ip, "name", false, np1.name, sizeof(np1.name),
					      err, errlen);
			if (ret)
				return ret;
			cport = k8s_json_get(port, "containerPort");
			if (!cport)
				return k8s_json_fail(err, errlen, ip, "containerPort", "missing");
			ret = k8s_json_int(port, ip, "containerPort", true, 1, 65535, &v, err,
					   errlen);
			if (ret)
				return ret;
			np1.port = (__u16)v;
			{
				const char *proto = NULL;

				ret = k8s_json_string_ref(port, ip, "protocol", false, &proto, err,
							  errlen);
				if (ret)
					return ret;
				if (k8s_proto_from_string(proto, &np1.proto))
					return k8s_json_fail(err, errlen, ip, "protocol",
							     "must be TCP, UDP or SCTP");
			}
			ret = parse_host_port(port, ip, &np1, pod);
			if (ret)
				return ret;
			if (!np1.name[0])
				continue;
			if (!k8s_port_name_valid(np1.name, false))
				return k8s_json_fail(err, errlen, ip, "name",
						     "\"%s\" is not a valid port name", np1.name);
			for (size_t k = 0; k < pod->n_named_ports; k++)
				dup |= !strcmp(pod->named_ports[k].name, np1.name);
			if (!dup)
				pod->named_ports[pod->n_named_ports++] = np1;
		}
	}
	qsort(pod->named_ports, pod->n_named_ports, sizeof(*pod->named_ports), port_cmp);
	return 0;
}

int k8s_pod_from_json(const cJSON *obj, struct k8s_pod *pod, char *err, size_t errlen)
{
	const cJSON *md, *spec, *status;
	const char *s = NULL;
	struct k8s_meta m;
	bool present = false;
	int ret;

	memset(pod, 0, sizeof(*pod));
	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		goto cleanup;
	if (!m.namespace[0]) {
		ret = k8s_json_fail(err, errlen, "metadata", "namespace", "missing");
		goto cleanup;
	}
	pod->namespace = policy_arena_strdup(&pod->arena, m.namespace);
	pod->name = policy_arena_strdup(&pod->arena, m.name);
	if (!pod->namespace || !pod->name) {
		ret = -ENOMEM;
		goto cleanup;
	}
	md = k8s_json_get(obj, "metadata");
	ret = k8s_labels_from_meta(md, &pod->arena, "", &pod->labels, err, errlen);
	if (ret)
		goto cleanup;
	pod->deleting = k8s_json_get(md, "deletionTimestamp") != NULL;
	ret = k8s_json_string_ref(md, "metadata", "creationTimestamp", false, &s, err, errlen);
	if (ret)
		goto cleanup;
	/* RFC 3339 in UTC, as the apiserver writes it: ordered as text. */
	pod->created = policy_arena_strdup(&pod->arena, s ? s : "");
	s = NULL;
	ret = k8s_json_object(obj, NULL, "spec", false, &spec, err, errlen);
	if (!ret)
		ret = k8s_json_object(obj, NULL, "status", false, &status, err, errlen);
	if (ret)
		goto cleanup;
	ret = k8s_json_string_ref(spec, "spec", "nodeName", false, &s, err, errlen);
	if (ret)
		goto cleanup;
	pod->node_name = policy_arena_strdup(&pod->arena, s ? s : "");
	s = NULL;
	ret = k8s_json_string_ref(spec, "spec", "serviceAccountName", false, &s, err, errlen);
	if (ret)
		goto cleanup;
	if (s && strlen(s) >= K8S_NAME_MAX) {
		ret = k8s_json_fail(err, errlen, "spec", "serviceAccountName", "too long");
		goto cleanup;
	}
	/* The API defaults it to "default"; Cilium labels the identity with it. */
	pod->service_account = policy_arena_strdup(&pod->arena, s && *s ? s : "default");
	ret = k8s_json_bool(spec, "spec", "hostNetwork", &pod->host_network, &present, err, errlen);
	if (ret)
		goto cleanup;
	s = NULL;
	ret = k8s_json_string_ref(status, "status", "phase", false, &s, err, errlen);
	if (ret)
		goto cleanup;
	pod->phase = policy_arena_strdup(&pod->arena, s ? s : "");
	if (!pod->node_name || !pod->service_account || !pod->phase || !pod->created) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (status)
		ret = parse_ips(status, pod, err, errlen);
	if (!ret && spec)
		ret = parse_ports(spec, pod, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	k8s_pod_free(pod);
	return ret;
}
