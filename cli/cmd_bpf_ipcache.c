// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf ipcache list: the IP cache LPM trie (include/axon/ipcache.h)
 * from its pin, one prefix per row, sorted by address then prefix length:
 *
 *   IP PREFIX/ADDRESS   IDENTITY   TUNNEL ENDPOINT   FLAGS
 *   10.244.1.0/24       0          192.168.50.11     pod-cidr
 *   10.244.1.10/32      12345      192.168.50.11     local
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "axon/ipcache.h"
#include "axon/maps.h"
#include "addr.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"

static int ipcache_key_cmp(const void *pa, const void *pb)
{
	const struct ipcache_key *a = pa, *b = pb;

	if (a->address != b->address)
		return ntohl(a->address) < ntohl(b->address) ? -1 : 1;
	return a->prefixlen < b->prefixlen ? -1 : a->prefixlen > b->prefixlen;
}

static cJSON *ipcache_entry_json(const void *key, const void *value,
				 const void *ctx __attribute__((unused)))
{
	const struct ipcache_key *k = key;
	const struct ipcache_value *v = value;
	cJSON *o = cJSON_CreateObject(), *flags;
	char a[ADDR_STR_MAX], prefix[ADDR_STR_MAX + 12];

	snprintf(prefix, sizeof(prefix), "%s/%u", format_addr(a, sizeof(a), k->address),
		 k->prefixlen);
	cJSON_AddStringToObject(o, "prefix", prefix);
	cJSON_AddStringToObject(o, "address", a);
	cJSON_AddNumberToObject(o, "prefix_len", k->prefixlen);
	cJSON_AddNumberToObject(o, "identity", v->identity);
	cJSON_AddStringToObject(o, "tunnel_endpoint",
				format_addr(a, sizeof(a), v->tunnel_endpoint));
	cJSON_AddNumberToObject(o, "flags", v->flags);
	flags = cJSON_AddArrayToObject(o, "flag_names");
	if (v->flags & IPCACHE_F_LOCAL)
		cJSON_AddItemToArray(flags, cJSON_CreateString("local"));
	if (v->flags & IPCACHE_F_POD_CIDR)
		cJSON_AddItemToArray(flags, cJSON_CreateString("pod-cidr"));
	/* A prefix a network policy names, with its CIDR identity. */
	if (v->identity >= IDENTITY_LOCAL_FLAG)
		cJSON_AddItemToArray(flags, cJSON_CreateString("cidr"));
	return o;
}

static void ipcache_text(const cJSON *doc)
{
	struct table *t = table_new(4, "IP PREFIX/ADDRESS", "IDENTITY", "TUNNEL ENDPOINT",
				    "FLAGS");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc) {
		char id[16], flags[64];

		snprintf(id, sizeof(id), "%.0f", json_num(o, "identity"));
		cli_join_strings(cJSON_GetObjectItem(o, "flag_names"), ",", flags, sizeof(flags));
		table_row(t, json_str(o, "prefix"), id, json_str(o, "tunnel_endpoint"),
			  flags[0] ? flags : "<none>");
	}
	table_print(t);
}

int cmd_bpf_ipcache_list(int argc, char **argv)
{
	int ret = cmd_flags(argc, argv, NULL, NULL, 0);

	if (ret)
		return ret;
	/* An LPM trie walks with get_next_key like a hash (kernel >= 4.16). */
	return cli_map_list(MAP_IPCACHE, sizeof(struct ipcache_key),
			    sizeof(struct ipcache_value), ipcache_key_cmp, ipcache_entry_json, NULL,
			    ipcache_text);
}
