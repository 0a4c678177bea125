// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* discovery.k8s.io/v1 EndpointSlice -> struct k8s_endpointslice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"
#define HEADLESS_LABEL	   "service.kubernetes.io/headless"
/* A zone is a label value: at most 63 characters. */
#define ZONE_NAME_MAX	   63
/* The API allows 8 forZones per endpoint. */
#define MAX_FOR_ZONES	   8

void k8s_endpointslice_free(struct k8s_endpointslice *eps)
{
	free(eps->addrs);
	free(eps->hint_zones);
	free(eps->endpoints);
	free(eps->ports);
	k8s_strpool_free(&eps->strs);
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
	const cJSON *labels;
	int ret;

	ret = k8s_json_labels(obj, &labels, err, errlen);
	if (ret)
		return ret;
	eps->headless_label = k8s_json_get(labels, HEADLESS_LABEL) != NULL;
	return k8s_json_string_pool(labels, "metadata.labels", SERVICE_NAME_LABEL, false,
				    K8S_NAME_MAX - 1, &eps->strs, &eps->service_name, err, errlen);
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

/* The IPv4 addresses go to *next in the slice's addrs (room was counted). */
static int parse_addresses(const cJSON *it, const char *path, enum k8s_address_type type,
			   struct k8s_eps_endpoint *ep, __be32 **next, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], ap[K8S_PATH_MAX];
	const cJSON *arr, *a;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(it, path, "addresses", true, K8S_MAX_EPS_ADDRS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(p, sizeof(p), path, "addresses");
	if (!n)
		return k8s_json_fail(err, errlen, p, NULL, "must not be empty");
	ep->addrs = *next;
	cJSON_ArrayForEach(a, arr)
	{
		__be32 addr;
		bool v4;

		k8s_json_index(ap, sizeof(ap), p, i++);
		/* IPv6 and FQDN slices are ignored by the caller; only check shape. */
		if (type != K8S_ADDR_IPV4) {
			if (!cJSON_IsString(a))
				return k8s_json_fail(err, errlen, ap, NULL, "expected a string");
			continue;
		}
		ret = k8s_json_ip(a, ap, &addr, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4)
			(*next)[ep->n_addrs++] = addr;
	}
	if (!ep->n_addrs) {
		ep->addrs = NULL;	/* and *next may be NULL: no arithmetic on it */
		return 0;
	}
	*next += ep->n_addrs;
	return 0;
}

/* Room for every endpoint's addresses (an over-count when some are not
 * arrays or not IPv4: those fail or are skipped while parsing). */
static size_t count_addresses(const cJSON *arr)
{
	const cJSON *it;
	size_t n = 0;

	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *a = cJSON_IsObject(it) ? k8s_json_get(it, "addresses") : NULL;

		if (cJSON_IsArray(a)) {
			int k = cJSON_GetArraySize(a);

			n += k > K8S_MAX_EPS_ADDRS ? K8S_MAX_EPS_ADDRS : (size_t)k;
		}
	}
	return n;
}

/* nodeName into the slice's pool, shared with an earlier endpoint on the
 * same node (slices hold at most 1000 endpoints: the scan is bounded). */
static int parse_node_name(const cJSON *it, const char *path, struct k8s_endpointslice *eps,
			   struct k8s_eps_endpoint *ep, char *err, size_t errlen)
{
	const char *s;
	int ret;

	ret = k8s_json_string_ref(it, path, "nodeName", false, &s, err, errlen);
	if (ret)
		return ret;
	ep->node_name = "";
	if (!s || !*s)
		return 0;
	for (size_t i = eps->n_endpoints - 1; i-- > 0;) {
		if (!strcmp(eps->endpoints[i].node_name, s)) {
			ep->node_name = eps->endpoints[i].node_name;
			return 0;
		}
	}
	return k8s_json_string_pool(it, path, "nodeName", false, K8S_NAME_MAX - 1, &eps->strs,
				    &ep->node_name, err, errlen);
}

/* The bit of zone name in the slice's hint_zones, added when new. */
static int hint_zone_bit(struct k8s_endpointslice *eps, const char *path, const char *name,
			 __u32 *bit, char *err, size_t errlen)
{
	const char **v;
	size_t len = strlen(name);

	for (__u8 i = 0; i < eps->n_hint_zones; i++) {
		if (!strcmp(eps->hint_zones[i], name)) {
			*bit = 1u << i;
			return 0;
		}
	}
	if (eps->n_hint_zones == K8S_EPS_HINT_ZONES_MAX)
		return k8s_json_fail(err, errlen, path, NULL, "more than %d distinct zones",
				     K8S_EPS_HINT_ZONES_MAX);
	v = realloc(eps->hint_zones, (eps->n_hint_zones + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	eps->hint_zones = v;
	v[eps->n_hint_zones] = k8s_strpool_add(&eps->strs, name, len);
	if (!v[eps->n_hint_zones])
		return -ENOMEM;
	*bit = 1u << eps->n_hint_zones++;
	return 0;
}

/*
 * hints.forZones[].name into ep->hint_zones. -EINVAL (err filled) when the
 * hints are malformed: the caller then ignores every hint of the slice.
 */
static int parse_hints(const cJSON *it, const char *path, struct k8s_endpointslice *eps,
		       struct k8s_eps_endpoint *ep, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], fp[K8S_PATH_MAX], zp[K8S_PATH_MAX];
	const cJSON *hints, *arr, *z;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_object(it, path, "hints", false, &hints, err, errlen);
	if (ret || !hints)
		return ret;
	k8s_json_path(p, sizeof(p), path, "hints");
	ret = k8s_json_array(hints, p, "forZones", false, MAX_FOR_ZONES, &arr, &n, err, errlen);
	if (ret || !n)
		return ret;
	k8s_json_path(fp, sizeof(fp), p, "forZones");
	cJSON_ArrayForEach(z, arr)
	{
		char name[ZONE_NAME_MAX + 1];
		__u32 bit = 0;

		k8s_json_index(zp, sizeof(zp), fp, i++);
		if (!cJSON_IsObject(z))
			return k8s_json_fail(err, errlen, zp, NULL, "expected an object");
		ret = k8s_json_string(z, zp, "name", true, name, sizeof(name), err, errlen);
		if (ret)
			return ret;
		if (!name[0])
			return k8s_json_fail(err, errlen, zp, "name", "must not be empty");
		ret = hint_zone_bit(eps, zp, name, &bit, err, errlen);
		if (ret)
			return ret;
		ep->hint_zones |= bit;
	}
	return 0;
}

/* Malformed hints cost the slice its hints, not the slice: its endpoints are
 * still served, with every endpoint of the Service (kube-proxy's fallback). */
static int drop_hints(struct k8s_endpointslice *eps, const char *why)
{
	for (size_t i = 0; i < eps->n_endpoints; i++)
		eps->endpoints[i].hint_zones = 0;
	free(eps->hint_zones);
	eps->hint_zones = NULL;
	eps->n_hint_zones = 0;
	eps->hints_error = k8s_strpool_add(&eps->strs, why, strlen(why));
	return eps->hints_error ? 0 : -ENOMEM;
}

static int parse_endpoints(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
			   size_t errlen)
{
	char p[K8S_PATH_MAX], hints_err[192] = "";
	const cJSON *arr, *it;
	__be32 *next;
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
	if (eps->address_type == K8S_ADDR_IPV4) {
		size_t n_addrs = count_addresses(arr);

		eps->addrs = n_addrs ? calloc(n_addrs, sizeof(*eps->addrs)) : NULL;
		if (n_addrs && !eps->addrs)
			return -ENOMEM;
	}
	next = eps->addrs;
	cJSON_ArrayForEach(it, arr)
	{
		struct k8s_eps_endpoint *ep = &eps->endpoints[eps->n_endpoints++];

		k8s_json_index(p, sizeof(p), "endpoints", eps->n_endpoints - 1);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, p, NULL, "expected an object");
		ret = parse_addresses(it, p, eps->address_type, ep, &next, err, errlen);
		if (ret)
			return ret;
		ret = parse_conditions(it, p, ep, err, errlen);
		if (ret)
			return ret;
		ret = parse_node_name(it, p, eps, ep, err, errlen);
		if (ret)
			return ret;
		if (hints_err[0])
			continue;
		ret = parse_hints(it, p, eps, ep, hints_err, sizeof(hints_err));
		if (ret == -ENOMEM)
			return ret;
	}
	return hints_err[0] ? drop_hints(eps, hints_err) : 0;
}

int k8s_endpointslice_from_json(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
				size_t errlen)
{
	int ret;

	memset(eps, 0, sizeof(*eps));
	eps->hints_error = "";
	ret = k8s_obj_meta_from_json(obj, &eps->meta, &eps->strs, err, errlen);
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
