// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cni.h"

int cni_version_supported(const char *v)
{
	static const char *const versions[] = CNI_SUPPORTED_VERSIONS;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(v, versions[i]))
			return 1;
	return 0;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The spec's network name: an alphanumeric, then also '_', '.', '-'. */
static int valid_name(const char *n)
{
	if (!n || !isalnum((unsigned char)n[0]))
		return 0;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && !strchr("_.-", *n))
			return 0;
	return 1;
}

int cni_conf_read(struct cni_call *c, const char *text)
{
	const char *v, *type;

	c->conf = cJSON_Parse(text);
	if (!cJSON_IsObject(c->conf))
		return cni_fail(NULL, CNI_E_DECODE, "cannot decode the network configuration",
				"stdin is not a JSON object");
	v = str(c->conf, "cniVersion");
	if (!v)
		return cni_fail(NULL, CNI_E_INVALID_CONFIG, "network configuration without "
				"cniVersion", NULL);
	if (!cni_version_supported(v))
		return cni_fail(NULL, CNI_E_INCOMPATIBLE_VERSION, "incompatible CNI version",
				"axon-cni supports cniVersion 1.0.0 and 1.1.0");
	c->version = v;
	if (!strcmp(c->command, "VERSION"))
		return 0;
	if (!valid_name(str(c->conf, "name")))
		return cni_fail(v, CNI_E_INVALID_CONFIG, "network configuration needs a valid "
				"name", NULL);
	type = str(c->conf, "type");
	if (!type || strcmp(type, "axon-cni"))
		return cni_fail(v, CNI_E_INVALID_CONFIG, "network configuration is not of type "
				"axon-cni", type);
	/* The agent allocates from this node's pod CIDR: another IPAM would
	 * give addresses the datapath does not route. */
	if (cJSON_GetObjectItemCaseSensitive(c->conf, "ipam"))
		return cni_fail(v, CNI_E_UNSUPPORTED_FIELD, "unsupported field: ipam",
				"axon-cni allocates pod addresses itself (this node's pod CIDR)");
	c->socket = str(c->conf, "agent-socket");
	if (cJSON_GetObjectItemCaseSensitive(c->conf, "agent-socket") &&
	    (!c->socket || !*c->socket))
		return cni_fail(v, CNI_E_INVALID_CONFIG, "agent-socket must be a path", NULL);
	if (!c->socket)
		c->socket = CNI_DEFAULT_SOCKET;
	return 0;
}
