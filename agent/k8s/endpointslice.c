// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* discovery.k8s.io/v1 EndpointSlice -> struct k8s_endpointslice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

void k8s_endpointslice_free(struct k8s_endpointslice *eps)
{
	for (size_t i = 0; i < eps->n_endpoints; i++)
		free(eps->endpoints[i].addrs);
	free(eps->endpoints);
	free(eps->ports);
	memset(eps, 0, sizeof(*eps));
}

static int parse_address_type(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
			      size_t errlen)
{
	char shown[64];
	const char *s;
	int ret;

	ret = k8s_json_string_ref(obj, NULL, "addressType", true, &s, err, errlen);
	if (ret)
		return ret;
	if (!strcmp(s, "IPv4"))
		eps->address_type = K8S_ADDR_IPV4;
	else if (!strcmp(s, "IPv6"))
		eps->address_type = K8S_ADDR_IPV6;
	else if (!strcmp(s, "FQDN"))
		eps->address_type = K8S_ADDR_FQDN;
	else {
		k8s_json_quote(shown, sizeof(shown), s);
		return k8s_json_fail(err, errlen, NULL, "addressType", "unknown value \"%s\"",
				     shown);
	}
	return 0;
}

static int parse_service_name(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
			      size_t errlen)
{
	const cJSON *md, *labels;
	int ret;

	ret = k8s_json_object(obj, NULL, "metadata", true, &md, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_object(md, "metadata", "labels", false, &labels, err, errlen);
	if (ret)
		return ret;
	return k8s_json_string(labels, "metadata.labels", SERVICE_NAME_LABEL, false,
			       eps->service_name, sizeof(eps->service_name), err, errlen);
}

static int parse_ports(const cJSON *obj, struct k8s_endpointslice *eps, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(obj, NULL, "ports", false, K8S_MAX_EPS_PORTS, &arr, &n, err, errlen);
	if (ret || !n)
		return ret;
	eps->ports = calloc(n, sizeof(*eps->ports));
	if (!eps->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		struct k8s_eps_port *ep = &eps->ports[eps->n_ports];

		k8s_json_index(p, sizeof(p), "ports", i++);
		/* A port without a number means "all ports" to the API; a
		 * load balancer cannot use that, so it is left out, not fatal. */
		if (cJSON_IsObject(it) && !k8s_json_get(it, "port"))
			continue;
		ret = k8s_port_from_json(it, p, ep->name, sizeof(ep->name), &ep->proto, &ep->port,
					 err, errlen);
		if (ret)
			return ret;
		eps->n_ports++;
	}
	return 0;
}

static int parse_conditions(const cJSON *it, const char *path, struct k8s_eps_endpoint *ep,
			    char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *cond;
	bool present;
	int ret;

	ret = k8s_json_object(it, path, "conditions", false, &cond, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(p, sizeof(p), path, "conditions");
	/* The API's defaults: unknown readiness counts as ready, serving
	 * follows ready, and only an explicit terminating is terminating. */
	ep->ready = true;
	ret = k8s_json_bool(cond, p, "ready", &ep->ready, NULL, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_bool(cond, p, "serving", &ep->serving, &present, err, errlen);
	if (ret)
		return ret;
	if (!present)
		ep->serving = ep->ready;
	ep->terminating = false;
	return k8s_json_bool(cond, p, "terminating", &ep->terminating, NULL, err, errlen);
}

static int parse_addresses(const cJSON *it, const char *path, enum k8s_address_type type,
			   struct k8s_eps_endpoint *ep, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *a;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(it, path, "addresses", true, K8S_MAX_EPS_ADDRS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(p, sizeof(p), path, "addresses");
	if (!n)
		return k8s_json_fail(err, errlen, p, NULL, "must not be empty");
	if (type == K8S_ADDR_IPV4)
		return k8s_ipv4_list(arr, n, p, &ep->addrs, &ep->n_addrs, err, errlen);
	/* IPv6 and FQDN slices are ignored by the caller; only check shape. */
	cJSON_ArrayForEach(a, arr)
	{
		char ap[K8S_PATH_MAX];

		k8s_json_index(ap, sizeof(ap), p, i++);
		if (!cJSON_IsString(a))
			return k8s_json_fail(err, errlen, ap, NULL, "expected a string");
	}
	return 0;
}

static int parse_endpoints(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
			   size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n;
	int ret;

	/* An empty slice is written as "endpoints": null. */
	ret = k8s_json_array(obj, NULL, "endpoints", false, K8S_MAX_EPS_ENDPOINTS, &arr, &n, err,
			     errlen);
	if (ret || !n)
		return ret;
	eps->endpoints = calloc(n, sizeof(*eps->endpoints));
	if (!eps->endpoints)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		/* Counted before parsing so that free() sees partial addrs. */
		struct k8s_eps_endpoint *ep = &eps->endpoints[eps->n_endpoints++];

		k8s_json_index(p, sizeof(p), "endpoints", eps->n_endpoints - 1);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, p, NULL, "expected an object");
		ret = parse_addresses(it, p, eps->address_type, ep, err, errlen);
		if (ret)
			return ret;
		ret = parse_conditions(it, p, ep, err, errlen);
		if (ret)
			return ret;
		ret = k8s_json_string(it, p, "nodeName", false, ep->node_name,
				      sizeof(ep->node_name), err, errlen);
		if (ret)
			return ret;
		ret =
		    k8s_json_string(it, p, "zone", false, ep->zone, sizeof(ep->zone), err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int k8s_endpointslice_from_json(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
				size_t errlen)
{
	int ret;

	memset(eps, 0, sizeof(*eps));
	ret = k8s_meta_from_json(obj, &eps->meta, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_service_name(obj, eps, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_address_type(obj, eps, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_ports(obj, eps, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_endpoints(obj, eps, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	k8s_endpointslice_free(eps);
	return ret;
}
