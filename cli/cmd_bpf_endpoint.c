// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf endpoint list: the local endpoints map (include/axon/endpoint.h)
 * from its pin, one pod per row, sorted by address:
 *
 *   IPv4 ADDRESS   ID   IFINDEX   DEVICE    MAC ...   IDENTITY   POLICY           FLAGS
 *   10.244.1.10    12   12        lxc1a2b   0a:58 ...   12345      ingress,egress   <none>
 *
 * (MAC and NODE MAC left out here).
 * ID is the endpoint id (its slot in the "policy" map, `bpf policy get ID`),
 * POLICY the directions its network policy is enforced in (<none>: all
 * allowed).
 * DEVICE is the name of the host-side ifindex in agentctl's network namespace,
 * "-" when no device there has it (agentctl runs in another namespace than the
 * agent, or the pod went away).
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "axon/endpoint.h"
#include "axon/maps.h"
#include "addr.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"

static int endpoint_key_cmp(const void *pa, const void *pb)
{
	const struct endpoint_key *a = pa, *b = pb;

	return ntohl(a->address) < ntohl(b->address) ? -1 : ntohl(a->address) > ntohl(b->address);
}

static char *format_mac(char *buf, size_t len, const __u8 *mac)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}

static cJSON *endpoint_json(const void *key, const void *value,
			    const void *ctx __attribute__((unused)))
{
	const struct endpoint_key *k = key;
	const struct endpoint_info *v = value;
	cJSON *o = cJSON_CreateObject(), *flags, *policy;
	char a[ADDR_STR_MAX], mac[18], ifname[IF_NAMESIZE];

	cJSON_AddStringToObject(o, "address", format_addr(a, sizeof(a), k->address));
	cJSON_AddNumberToObject(o, "id", v->id);
	cJSON_AddNumberToObject(o, "ifindex", v->ifindex);
	if (v->ifindex && if_indextoname(v->ifindex, ifname))
		cJSON_AddStringToObject(o, "device", ifname);
	else
		cJSON_AddNullToObject(o, "device");
	cJSON_AddStringToObject(o, "mac", format_mac(mac, sizeof(mac), v->mac));
	cJSON_AddStringToObject(o, "node_mac", format_mac(mac, sizeof(mac), v->node_mac));
	cJSON_AddNumberToObject(o, "identity", v->identity);
	cJSON_AddNumberToObject(o, "flags", v->flags);
	flags = cJSON_AddArrayToObject(o, "flag_names");
	if (v->flags & ENDPOINT_F_HOST)
		cJSON_AddItemToArray(flags, cJSON_CreateString("host"));
	policy = cJSON_AddArrayToObject(o, "policy_enforced");
	if (v->policy & ENDPOINT_POLICY_INGRESS)
		cJSON_AddItemToArray(policy, cJSON_CreateString("ingress"));
	if (v->policy & ENDPOINT_POLICY_EGRESS)
		cJSON_AddItemToArray(policy, cJSON_CreateString("egress"));
	return o;
}

static void endpoint_text(const cJSON *doc)
{
	struct table *t = table_new(9, "IPv4 ADDRESS", "ID", "IFINDEX", "DEVICE", "MAC",
				    "NODE MAC", "IDENTITY", "POLICY", "FLAGS");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc) {
		char ep[8], ifindex[16], id[16], flags[64], policy[32];
		const char *dev = json_str(o, "device");

		snprintf(ep, sizeof(ep), "%d", json_int(o, "id"));
		snprintf(ifindex, sizeof(ifindex), "%.0f", json_num(o, "ifindex"));
		snprintf(id, sizeof(id), "%.0f", json_num(o, "identity"));
		cli_join_strings(cJSON_GetObjectItem(o, "flag_names"), ",", flags, sizeof(flags));
		cli_join_strings(cJSON_GetObjectItem(o, "policy_enforced"), ",", policy,
				 sizeof(policy));
		table_row(t, json_str(o, "address"), ep, ifindex, dev[0] ? dev : "-",
			  json_str(o, "mac"), json_str(o, "node_mac"), id,
			  policy[0] ? policy : "<none>", flags[0] ? flags : "<none>");
	}
	table_print(t);
}

int cmd_bpf_endpoint_list(int argc, char **argv)
{
	int ret = cmd_flags(argc, argv, NULL, NULL, 0);

	if (ret)
		return ret;
	return cli_map_list(MAP_ENDPOINTS, sizeof(struct endpoint_key),
			    sizeof(struct endpoint_info), endpoint_key_cmp, endpoint_json, NULL,
			    endpoint_text);
}
