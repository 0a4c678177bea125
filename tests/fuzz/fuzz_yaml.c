// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer target: a kubeconfig's YAML into a cJSON tree (libyaml, yaml_doc.c). */
#include <stddef.h>
#include <stdint.h>

#include "k8s/yaml_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	cJSON *root;

	root = k8s_yaml_parse((const char *)data, size, err, sizeof(err));
	cJSON_Delete(root);
	return 0;
}
