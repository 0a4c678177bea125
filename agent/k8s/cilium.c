// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cilium.io/v2alpha1 CiliumEndpointSlice -> struct k8s_cilium_endpointslice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

void k8s_cilium_endpointslice_free(struct k8s_cilium_endpointslice *ces)
{
	for (size_t i = 0; i < ces->n_endpoints; i++)
		free(ces->endpoints[i].named_ports);
	free(ces->endpoints);
	k8s_strpool_free(&ces->strs);
	memset(ces, 0, sizeof(*ces));
}

static int parse_named_ports(const cJSON *it, const char *path, struct k8s_cilium_endpoint *ep,
			     char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *arr, *np;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(it, path, "named-ports", false, K8S_MAX_NAMED_PORTS, &arr, &n, err,
			     errlen);
	if (ret || !n)
		return ret;
	ep->named_ports = calloc(n, sizeof(*ep->named_ports));
	if (!ep->named_ports)
		return -ENOMEM;
	k8s_json_path(p, sizeof(p), path, "named-ports");
	cJSON_ArrayForEach(np, arr)
	{
		struct k8s_named_port *out = &ep->named_ports[i];

		k8s_json_index(ip, sizeof(ip), p, i);
		ret = k8s_port_from_json(np, ip, out->name, sizeof(out->name), &out->proto,
					 &out->port, err, errlen);
		if (ret)
			return ret;
		if (!out->name[0])
			return k8s_json_fail(err, errlen, ip, "name", "must not be empty");
		ep->n_named_ports = ++i;
	}
	return 0;
}

static int parse_networking(const cJSON *it, const char *path, struct k8s_cilium_endpoint *ep,
			    char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], lp[K8S_PATH_MAX], ap[K8S_PATH_MAX], fp[K8S_PATH_MAX];
	const cJSON *net, *arr, *a, *v;
	size_t n, i = 0;
	__be32 addr;
	bool v4;
	int ret;

	ret = k8s_json_object(it, path, "networking", false, &net, err, errlen);
	if (ret || !net)
		return ret;
	k8s_json_path(p, sizeof(p), path, "networking");
	ret = k8s_json_array(net, p, "addressing", false, K8S_MAX_EPS_ADDRS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(lp, sizeof(lp), p, "addressing");
	cJSON_ArrayForEach(a, arr)
	{
		k8s_json_index(ap, sizeof(ap), lp, i++);
		if (!cJSON_IsObject(a))
			return k8s_json_fail(err, errlen, ap, NULL, "expected an object");
		v = k8s_json_get(a, "ipv4");
		if (!v)
			continue;
		k8s_json_path(fp, sizeof(fp), ap, "ipv4");
		ret = k8s_json_ip(v, fp, &addr, &v4, err, errlen);
		if (ret)
			return ret;
		if (!v4)
			return k8s_json_fail(err, errlen, fp, NULL, "not an IPv4 address");
		if (!ep->ipv4)
			ep->ipv4 = addr;
	}
	v = k8s_json_get(net, "node");
	if (!v)
		return 0;
	k8s_json_path(fp, sizeof(fp), p, "node");
	ret = k8s_json_ip(v, fp, &addr, &v4, err, errlen);
	if (ret)
		return ret;
	if (v4)
		ep->node_ip = addr;
	return 0;
}

static int parse_endpoints(const cJSON *obj, struct k8s_cilium_endpointslice *ces, char *err,
			   size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n;
	int ret;

	ret = k8s_json_array(obj, NULL, "endpoints", false, K8S_MAX_CES_ENDPOINTS, &arr, &n, err,
			     errlen);
	if (ret || !n)
		return ret;
	ces->endpoints = calloc(n, sizeof(*ces->endpoints));
	if (!ces->endpoints)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		struct k8s_cilium_endpoint *ep = &ces->endpoints[ces->n_endpoints++];
		long long id;

		k8s_json_index(p, sizeof(p), "endpoints", ces->n_endpoints - 1);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, p, NULL, "expected an object");
		ret = k8s_json_string_pool(it, p, "name", true, K8S_NAME_MAX - 1, &ces->strs, &ep->name,
					   err, errlen);
		if (ret)
			return ret;
		ret = k8s_json_int(it, p, "id", true, 0, 0xffffffffLL, &id, err, errlen);
		if (ret)
			return ret;
		ep->identity = (__u32)id;
		ret = parse_networking(it, p, ep, err, errlen);
		if (ret)
			return ret;
		ret = parse_named_ports(it, p, ep, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int k8s_cilium_endpointslice_from_json(const cJSON *obj, struct k8s_cilium_endpointslice *ces,
				       char *err, size_t errlen)
{
	int ret;

	memset(ces, 0, sizeof(*ces));
	ret = k8s_obj_meta_from_json(obj, &ces->meta, &ces->strs, err, errlen);
	if (ret)
		goto cleanup;
	ret = k8s_json_string_pool(obj, NULL, "namespace", true, K8S_NS_MAX - 1, &ces->strs,
				   &ces->namespace, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_endpoints(obj, ces, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	k8s_cilium_endpointslice_free(ces);
	return ret;
}
