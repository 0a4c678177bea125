// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf endpoint list: the local endpoints map (include/axon/endpoint.h)
 * from its pin, one pod per row, sorted by address:
 *
 *   IPv4 ADDRESS   IFINDEX   DEVICE    MAC                 NODE MAC            IDENTITY   FLAGS
 *   10.244.1.10    12        lxc1a2b   0a:58:0a:f4:01:0a   6e:1f:..:..:..:..   12345      <none>
 *
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
	cJSON *o = cJSON_CreateObject(), *flags;
	char a[ADDR_STR_MAX], mac[18], ifname[IF_NAMESIZE];

	cJSON_AddStringToObject(o, "address", format_addr(a, sizeof(a), k->address));
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
	return o;
}

static void endpoint_text(const cJSON *doc)
{
	struct table *t = table_new(7, "IPv4 ADDRESS", "IFINDEX", "DEVICE", "MAC", "NODE MAC",
				    "IDENTITY", "FLAGS");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc) {
		char ifindex[16], id[16], flags[64];
		const char *dev = json_str(o, "device");

		snprintf(ifindex, sizeof(ifindex), "%.0f", json_num(o, "ifindex"));
		snprintf(id, sizeof(id), "%.0f", json_num(o, "identity"));
		cli_join_strings(cJSON_GetObjectItem(o, "flag_names"), ",", flags, sizeof(flags));
		table_row(t, json_str(o, "address"), ifindex, dev[0] ? dev : "-",
			  json_str(o, "mac"), json_str(o, "node_mac"), id,
			  flags[0] ? flags : "<none>");
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
