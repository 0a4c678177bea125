// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: every object parser over one JSON input (and over each
 * item when the input is a List). Each must either succeed or fail cleanly;
 * ASan/UBSan and LeakSanitizer judge the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "k8s/objects.h"

static void parse_all(const cJSON *obj)
{
	struct k8s_cilium_endpointslice ces;
	struct k8s_endpointslice eps;
	struct k8s_service svc;
	struct k8s_node node;
	struct k8s_meta meta;
	char err[256];

	if (!k8s_service_from_json(obj, &svc, err, sizeof(err)))
		k8s_service_free(&svc);
	if (!k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)))
		k8s_endpointslice_free(&eps);
	if (!k8s_cilium_endpointslice_from_json(obj, &ces, err, sizeof(err)))
		k8s_cilium_endpointslice_free(&ces);
	if (!k8s_node_from_json(obj, &node, err, sizeof(err)))
		k8s_node_free(&node);
	k8s_meta_from_json(obj, &meta, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const cJSON *items, *it;
	cJSON *root;

	root = cJSON_ParseWithLength((const char *)data, size);
	if (!root)
		return 0;
	parse_all(root);
	items = cJSON_GetObjectItemCaseSensitive(root, "items");
	cJSON_ArrayForEach(it, items) parse_all(it);
	cJSON_Delete(root);
	return 0;
}
