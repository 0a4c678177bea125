// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* core/v1 Node -> struct k8s_node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

#define ZONE_LABEL "topology.kubernetes.io/zone"
/* A label value: at most 63 characters. */
#define ZONE_MAX   63

void k8s_node_free(struct k8s_node *node)
{
	free(node->pod_cidrs);
	k8s_strpool_free(&node->strs);
	memset(node, 0, sizeof(*node));
}

static int parse_addresses(const cJSON *obj, struct k8s_node *node, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], ap[K8S_PATH_MAX];
	const cJSON *status, *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_object(obj, NULL, "status", false, &status, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_array(status, "status", "addresses", false, K8S_MAX_NODE_ADDRS, &arr, &n,
			     err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(it, arr)
	{
		const char *type;
		__be32 addr, *slot;
		bool v4;

		k8s_json_index(p, sizeof(p), "status.addresses", i++);
		ret = k8s_json_string_ref(it, p, "type", true, &type, err, errlen);
		if (ret)
			return ret;
		if (!strcmp(type, "InternalIP"))
			slot = &node->internal_ip;
		else if (!strcmp(type, "ExternalIP"))
			slot = &node->external_ip;
		else
			continue; /* Hostname, InternalDNS, ...: not addresses */
		k8s_json_path(ap, sizeof(ap), p, "address");
		ret = k8s_json_ip(k8s_json_get(it, "address"), ap, &addr, &v4, err, errlen);
		if (ret)
			return ret;
		/* The first IPv4 address of each type is the node's. */
		if (v4 && !*slot)
			*slot = addr;
	}
	return 0;
}

static int parse_pod_cidrs(const cJSON *obj, struct k8s_node *node, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *spec, *arr, *it;
	const char *base = "spec.podCIDRs";
	size_t n, i = 0;
	int ret;

	ret = k8s_json_object(obj, NULL, "spec", false, &spec, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_array(spec, "spec", "podCIDRs", false, K8S_MAX_POD_CIDRS, &arr, &n, err,
			     errlen);
	if (ret)
		return ret;
	/* podCIDRs supersedes podCIDR; older objects only have the latter. */
	if (!n && k8s_json_get(spec, "podCIDR")) {
		arr = NULL;
		n = 1;
		base = "spec.podCIDR";
	}
	if (!n)
		return 0;
	node->pod_cidrs = calloc(n, sizeof(*node->pod_cidrs));
	if (!node->pod_cidrs)
		return -ENOMEM;
	for (it = arr ? arr->child : k8s_json_get(spec, "podCIDR"); it && i < n; i++) {
		struct ipv4_prefix pfx;
		bool v4;

		if (arr)
			k8s_json_index(p, sizeof(p), base, i);
		else
			snprintf(p, sizeof(p), "%s", base);
		ret = k8s_json_cidr(it, p, &pfx.addr, &pfx.len, &v4, err, errlen);
		if (ret)
			return ret;
		if (v4)
			node->pod_cidrs[node->n_pod_cidrs++] = pfx;
		it = arr ? it->next : NULL;
	}
	if (!node->n_pod_cidrs) {
		free(node->pod_cidrs);
		node->pod_cidrs = NULL;
	}
	return 0;
}

/* The zone label: which of a Service's topology hints this node follows. */
static int parse_zone(const cJSON *obj, struct k8s_node *node, char *err, size_t errlen)
{
	const cJSON *labels;
	int ret;

	ret = k8s_json_labels(obj, &labels, err, errlen);
	if (ret)
		return ret;
	return k8s_json_string_pool(labels, "metadata.labels", ZONE_LABEL, false, ZONE_MAX,
				    &node->strs, &node->zone, err, errlen);
}

int k8s_node_from_json(const cJSON *obj, struct k8s_node *node, char *err, size_t errlen)
{
	int ret;

	memset(node, 0, sizeof(*node));
	ret = k8s_obj_meta_from_json(obj, &node->meta, &node->strs, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_addresses(obj, node, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_pod_cidrs(obj, node, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_zone(obj, node, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	k8s_node_free(node);
	return ret;
}
