/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * axon-cni: the CNI plugin (spec 1.0.0 and 1.1.0). The runtime runs it once
 * per operation with CNI_* in the environment and the network config on
 * stdin; it checks both, sends the agent one request over its API socket
 * (agent/cni/cni.h does the work) and prints the result or the error JSON.
 *
 * The plugin's own config field: "agent-socket" (default
 * /var/run/axon/agent.sock). Error codes are the spec's; 100+ are Axon's.
 */
#ifndef AXON_CNI_PLUGIN_H
#define AXON_CNI_PLUGIN_H

#include <cjson/cJSON.h>

#define CNI_SUPPORTED_VERSIONS	{ "1.0.0", "1.1.0" }
#define CNI_DEFAULT_SOCKET	"/var/run/axon/agent.sock"

enum cni_code {
	CNI_OK = 0,
	CNI_E_INCOMPATIBLE_VERSION = 1,
	CNI_E_UNSUPPORTED_FIELD = 2,
	CNI_E_UNKNOWN_CONTAINER = 3,
	CNI_E_INVALID_ENV = 4,
	CNI_E_IO = 5,
	CNI_E_DECODE = 6,
	CNI_E_INVALID_CONFIG = 7,
	CNI_E_TRY_AGAIN_LATER = 11,
	CNI_E_NOT_AVAILABLE = 50,
};

/* One invocation: the environment and the parsed config. */
struct cni_call {
	const char *command;		/* CNI_COMMAND */
	const char *container_id;	/* CNI_CONTAINERID */
	const char *netns;		/* CNI_NETNS */
	const char *ifname;		/* CNI_IFNAME */
	char pod_namespace[64];		/* CNI_ARGS K8S_POD_NAMESPACE */
	char pod_name[254];		/* CNI_ARGS K8S_POD_NAME */
	cJSON *conf;			/* stdin */
	const char *version;		/* conf's cniVersion (after checks) */
	const char *socket;		/* conf's agent-socket, or the default */
};

/* The error document on stdout; returns the exit status (1). */
int cni_fail(const char *version, int code, const char *msg, const char *details);

/* env.c: CNI_* for the command, CNI_ARGS's pod; 0 or a cni_fail(). */
int cni_env_read(struct cni_call *c);
/* conf.c: stdin parsed and checked for c->command; 0 or a cni_fail(). */
int cni_conf_read(struct cni_call *c, const char *text);
int cni_version_supported(const char *v);

/* agent.c: one request; *resp is the agent's answer. 0 or a cni_fail(). */
int cni_agent_call(struct cni_call *c, cJSON *req, cJSON **resp);

#endif /* AXON_CNI_PLUGIN_H */
