// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "";
}

/* "K=V;K=V": the pod's namespace and name (unknown keys are the runtime's
 * business, as IgnoreUnknown=1 says). */
static int args_read(struct cni_call *c, const char *args)
{
	char *dup = strdup(args), *save = NULL;

	if (!dup)
		return cni_fail(c->version, CNI_E_IO, "out of memory", NULL);
	for (char *kv = strtok_r(dup, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			free(dup);
			return cni_fail(c->version, CNI_E_INVALID_ENV,
					"CNI_ARGS: each argument must be KEY=VALUE", args);
		}
		*eq = '\0';
		if (!strcmp(kv, "K8S_POD_NAMESPACE"))
			snprintf(c->pod_namespace, sizeof(c->pod_namespace), "%s", eq + 1);
		else if (!strcmp(kv, "K8S_POD_NAME"))
			snprintf(c->pod_name, sizeof(c->pod_name), "%s", eq + 1);
	}
	free(dup);
	return 0;
}

int cni_env_read(struct cni_call *c)
{
	bool attach = !strcmp(c->command, "ADD") || !strcmp(c->command, "DEL") ||
		      !strcmp(c->command, "CHECK");

	c->container_id = env("CNI_CONTAINERID");
	c->netns = env("CNI_NETNS");
	c->ifname = env("CNI_IFNAME");
	if (!attach)
		return 0;
	if (!*c->container_id)
		return cni_fail(c->version, CNI_E_INVALID_ENV, "CNI_CONTAINERID is required",
				NULL);
	if (!*c->ifname)
		return cni_fail(c->version, CNI_E_INVALID_ENV, "CNI_IFNAME is required", NULL);
	/* DEL may come after the namespace is gone: it needs none. */
	if (!*c->netns && strcmp(c->command, "DEL"))
		return cni_fail(c->version, CNI_E_INVALID_ENV, "CNI_NETNS is required", NULL);
	return args_read(c, env("CNI_ARGS"));
}
