// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `nodes`: every Node the agent holds, sorted by name: its addresses, its
 * IPv4 pod CIDRs, and per CIDR the route to it (nodes/routes_sync.h):
 * "self" for this node, "installed" when Axon's route to it via the node's
 * address is in place, "failed" with the reason, "pending" before the route
 * pass ran, "off" without --auto-direct-node-routes, "no address" for a Node
 * without one.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "api/commands.h"

static void add_ip(cJSON *o, const char *key, __be32 ip)
{
	char a[INET_ADDRSTRLEN];

	if (!ip) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	inet_ntop(AF_INET, &ip, a, sizeof(a));
	cJSON_AddStringToObject(o, key, a);
}

static const char *route_state(struct agent *a, const struct store_node *sn,
			       const struct ipv4_prefix *cidr, const char **why)
{
	const struct route_sync *rs = &a->dpx.routes;
	const struct route_want *have;
	const struct route_failure *f;
	__be32 via = store_node_ip(&sn->node);

	*why = "";
	if (!strcmp(sn->name, a->store.self_name))
		return "self";
	if (!rs->enabled)
		return "off";
	if (!via)
		return "no address";
	have = route_sync_installed(rs, cidr);
	if (have && have->route.via == via && !strcmp(have->node, sn->name))
		return "installed";
	f = route_sync_failure(rs, cidr);
	if (f) {
		*why = f->msg;
		return "failed";
	}
	return "pending";
}

static cJSON *node_json(struct agent *a, const struct store_node *sn)
{
	cJSON *o = cJSON_CreateObject(), *cidrs, *routes;
	bool all = sn->node.n_pod_cidrs > 0;

	cJSON_AddStringToObject(o, "name", sn->name);
	cJSON_AddBoolToObject(o, "self", !strcmp(sn->name, a->store.self_name));
	add_ip(o, "internal_ip", sn->node.internal_ip);
	add_ip(o, "external_ip", sn->node.external_ip);
	cidrs = cJSON_AddArrayToObject(o, "pod_cidrs");
	routes = cJSON_AddArrayToObject(o, "routes");
	for (size_t i = 0; i < sn->node.n_pod_cidrs; i++) {
		const struct ipv4_prefix *p = &sn->node.pod_cidrs[i];
		char a4[INET_ADDRSTRLEN], buf[INET_ADDRSTRLEN + 4];
		cJSON *r = cJSON_CreateObject();
		const char *why, *state = route_state(a, sn, p, &why);

		inet_ntop(AF_INET, &p->addr, a4, sizeof(a4));
		snprintf(buf, sizeof(buf), "%s/%u", a4, p->len);
		cJSON_AddItemToArray(cidrs, cJSON_CreateString(buf));
		cJSON_AddStringToObject(r, "pod_cidr", buf);
		cJSON_AddStringToObject(r, "state", state);
		if (*why)
			cJSON_AddStringToObject(r, "error", why);
		cJSON_AddItemToArray(routes, r);
		all = all && !strcmp(state, "installed");
	}
	/* Whether traffic to every pod CIDR of the node has its route. */
	cJSON_AddBoolToObject(o, "route_installed", all);
	return o;
}

cJSON *api_cmd_nodes(struct agent *a)
{
	cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "nodes");
	void **v = ht_sorted_values(&a->store.nodes, NULL); /* by name */

	if (!v) {
		cJSON_Delete(r);
		return NULL;
	}
	for (size_t i = 0; v[i]; i++)
		cJSON_AddItemToArray(arr, node_json(a, v[i]));
	free(v);
	return r;
}
