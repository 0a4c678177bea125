// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "status_health.h"

#define DASH " \u2014 "

/* The watch that holds the sync up: the first not synced. */
static const cJSON *unsynced_watch(const cJSON *k8s)
{
	const cJSON *w;

	cJSON_ArrayForEach(
	    w, cJSON_GetObjectItem(
		   k8s, "watches")) if (!cJSON_IsTrue(cJSON_GetObjectItem(w, "synced"))) return w;
	return NULL;
}

/* The object kind a watch lists, for "install the X CRD". */
static const char *watch_kind(const char *name)
{
	static const struct {
		const char *name, *kind;
	} kinds[] = {
	    {"services", "Service"},
	    {"endpointslices", "EndpointSlice"},
	    {"nodes", "Node"},
	    {"ciliumendpointslices", "CiliumEndpointSlice"},
	    {"networkpolicies", "NetworkPolicy"},
	    {"ciliumnetworkpolicies", "CiliumNetworkPolicy"},
	    {"ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy"},
	    {"ciliumidentities", "CiliumIdentity"},
	    {"namespaces", "Namespace"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].name, name))
			return kinds[i].kind;
	return name;
}

static void k8s_watch_problem(const cJSON *doc, const cJSON *m, char *buf, size_t len)
{
	const cJSON *w = unsynced_watch(cJSON_GetObjectItem(doc, "kubernetes"));
	const char *name = json_str(w, "name"), *err = json_str(w, "last_error");

	if (!w) {
		snprintf(buf, len, "k8s-watch: %s" DASH "see 'agentctl status'",
			 json_str(m, "message"));
	} else if (cJSON_IsTrue(cJSON_GetObjectItem(w, "not_installed"))) {
		/* Cilium's resources are CRDs the chart installs (helm/axon/crds). */
		if (!strncmp(json_str(w, "path"), "/apis/cilium.io/", 16))
			snprintf(buf, len,
				 "k8s-watch: waiting for sync (%s: resource not installed)" DASH
				 "install the %s CRD",
				 name, watch_kind(name));
		else
			snprintf(buf, len,
				 "k8s-watch: waiting for sync (%s: resource not installed)" DASH
				 "check that the apiserver serves %s",
				 name, json_str(w, "path"));
	} else if (strstr(err, "403") || strstr(err, "orbidden")) {
		snprintf(buf, len,
			 "k8s-watch: waiting for sync (%s: %s)" DASH "grant the agent's "
			 "ServiceAccount list and watch on %s (its ClusterRole)",
			 name, err, name);
	} else if (strstr(err, "401") || strstr(err, "nauthorized")) {
		snprintf(buf, len,
			 "k8s-watch: waiting for sync (%s: %s)" DASH "check the agent's "
			 "credentials (token, client certificate)",
			 name, err);
	} else if (*err) {
		snprintf(buf, len,
			 "k8s-watch: waiting for sync (%s: %s)" DASH "check the apiserver "
			 "and the agent's log",
			 name, err);
	} else {
		snprintf(buf, len,
			 "k8s-watch: waiting for sync (%s: %s)" DASH "wait for the initial "
			 "list; if it does not end, see the agent's log",
			 name, json_str(w, "state"));
	}
}

static void lb_problem(const cJSON *doc, const cJSON *m, char *buf, size_t len)
{
	const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "unrealized"), 0);
	const char *err = json_str(f, "error");
	const char *advice = "see 'agentctl status --verbose' and the agent's log";

	if (strstr(err, "map full"))
		advice =
		    "raise --bpf-lb-map-max (or the map's own flag), then 'agentctl cleanup' and "
		    "restart: a pinned map keeps its size";
	else if (strstr(err, "already used by service"))
		advice = "two Services claim one frontend: change one's address";
	if (f)
		snprintf(buf, len, "lb-reconciler: %s (%s: %s)" DASH "%s", json_str(m, "message"),
			 json_str(f, "service"), err, advice);
	else
		snprintf(buf, len, "lb-reconciler: %s" DASH "%s", json_str(m, "message"), advice);
}

static void datapath_problem(const cJSON *doc, const cJSON *m, char *buf, size_t len)
{
	const cJSON *dp = cJSON_GetObjectItem(doc, "datapath");
	const char *msg = json_str(m, "message");
	const char *detail = json_str(dp, "attach_error")[0] ? json_str(dp, "attach_error")
							     : json_str(dp, "native_devices_error");

	if (strstr(msg, "to have an address"))
		snprintf(buf, len,
			 "datapath: %s" DASH "the Node needs an InternalIP or ExternalIP "
			 "in status.addresses",
			 msg);
	else if (!strncmp(msg, "waiting for Node ", 17))
		snprintf(buf, len,
			 "datapath: %s" DASH "check that --node-name (or NODE_NAME) names "
			 "this node's Node object",
			 msg);
	else if (!strncmp(msg, "waiting", 7))
		snprintf(buf, len, "datapath: %s" DASH "wait for the initial sync (see k8s-watch)",
			 msg);
	else if (!strncmp(msg, "loading", 7))
		snprintf(buf, len,
			 "datapath: %s" DASH "see the agent's log for the verifier's "
			 "message",
			 msg);
	else if (*detail)
		snprintf(buf, len, "datapath: %s (%s)" DASH "check --devices and the agent's log",
			 msg, detail);
	else
		snprintf(buf, len, "datapath: %s" DASH "see 'agentctl status' and the agent's log",
			 msg);
}

static void module_problem(const cJSON *doc, const cJSON *m, char *buf, size_t len)
{
	const char *name = json_str(m, "name"), *msg = json_str(m, "message");

	if (!strcmp(name, "k8s-watch"))
		k8s_watch_problem(doc, m, buf, len);
	else if (!strcmp(name, "lb-reconciler"))
		lb_problem(doc, m, buf, len);
	else if (!strcmp(name, "datapath"))
		datapath_problem(doc, m, buf, len);
	else if (!strcmp(name, "endpoints-reconciler"))
		snprintf(buf, len,
			 "%s: %s" DASH "see the agent's log for the entries and their "
			 "errors",
			 name, msg);
	else if (!strcmp(name, "routes-reconciler"))
		snprintf(buf, len,
			 "%s: %s" DASH "see 'agentctl node list'; each node's address must "
			 "be reachable through a native device (--devices)",
			 name, msg);
	else if (!strcmp(name, "policy-reconciler"))
		snprintf(buf, len,
			 "%s: %s" DASH "see 'agentctl endpoint list' for each endpoint's error; "
			 "\"No space left on device\": raise --bpf-policy-map-max",
			 name, msg);
	else if (!strcmp(name, "big-tcp") && strstr(msg, "refused"))
		snprintf(buf, len,
			 "%s: %s" DASH "that device's driver refuses the size: it keeps "
			 "its own, the others carry BIG TCP",
			 name, msg);
	else if (!strcmp(name, "big-tcp"))
		snprintf(buf, len, "%s: %s" DASH "BIG TCP needs kernel 6.3+; see the agent's log",
			 name, msg);
	else
		snprintf(buf, len, "%s: %s: %s" DASH "see 'agentctl status'", name,
			 json_str(m, "health"), msg);
}

bool status_health(const cJSON *doc, char *buf, size_t len)
{
	const cJSON *k8s = cJSON_GetObjectItem(doc, "kubernetes"), *m;

	if (!cJSON_IsTrue(cJSON_GetObjectItem(k8s, "connected"))) {
		const cJSON *w = unsynced_watch(k8s);
		const char *err = json_str(w, "last_error");

		snprintf(buf, len,
			 "kubernetes: disconnected from %s%s%s%s" DASH "check that the "
			 "apiserver is reachable from the node and the agent's credentials "
			 "(--kubeconfig, --k8s-api-server-urls)",
			 json_str(k8s, "server"), *err ? " (" : "", err, *err ? ")" : "");
		return false;
	}
	cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "modules"))
	{
		if (strcmp(json_str(m, "health"), "ok")) {
			module_problem(doc, m, buf, len);
			return false;
		}
	}
	snprintf(buf, len, "OK");
	return true;
}
