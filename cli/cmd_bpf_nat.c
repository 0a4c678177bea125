// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf nat list / bpf nat flush: the source-NAT map (include/axon/nat.h)
 * from its pin, in the layout of `cilium-dbg bpf nat list`:
 *
 *   TCP OUT 10.244.1.10:40000 -> 203.0.113.5:80 XLATE_SRC 192.168.50.10:32768
 *       Created=12sec ago NeededAt=3sec ago
 *   TCP IN 203.0.113.5:80 -> 192.168.50.10:32768 XLATE_DST 10.244.1.10:40000
 *       Created=12sec ago NeededAt=3sec ago
 *
 * (one line each).
 *
 * The tuple is the key as packets carry it; the ages are relative to now on
 * CLOCK_MONOTONIC, the clock the datapath stamps entries with. Egress entries
 * come first, each group sorted by tuple.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "axon/maps.h"
#include "axon/nat.h"
#include "addr.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"
#include "pin.h"

static int nat_key_cmp(const void *pa, const void *pb)
{
	const struct nat4_key *a = pa, *b = pb;

	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	if (a->saddr != b->saddr)
		return ntohl(a->saddr) < ntohl(b->saddr) ? -1 : 1;
	if (a->sport != b->sport)
		return ntohs(a->sport) < ntohs(b->sport) ? -1 : 1;
	if (a->daddr != b->daddr)
		return ntohl(a->daddr) < ntohl(b->daddr) ? -1 : 1;
	if (a->dport != b->dport)
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	return a->nexthdr < b->nexthdr ? -1 : a->nexthdr > b->nexthdr;
}

static cJSON *nat_entry_json(const void *key, const void *value, const void *ctx)
{
	const struct nat4_key *k = key;
	const struct nat4_entry *e = value;
	__u64 now = *(const __u64 *)ctx;
	cJSON *o = cJSON_CreateObject();
	char a[ADDR_STR_MAX], proto[8];
	bool egress = k->dir == NAT_DIR_EGRESS;

	cJSON_AddStringToObject(o, "protocol", cli_proto_name(k->nexthdr, proto, sizeof(proto)));
	cJSON_AddNumberToObject(o, "nexthdr", k->nexthdr);
	cJSON_AddStringToObject(o, "direction", egress ? "OUT" : k->dir == NAT_DIR_INGRESS ?
				"IN" : "?");
	cJSON_AddStringToObject(o, "source", format_addr(a, sizeof(a), k->saddr));
	cJSON_AddNumberToObject(o, "source_port", ntohs(k->sport));
	cJSON_AddStringToObject(o, "destination", format_addr(a, sizeof(a), k->daddr));
	cJSON_AddNumberToObject(o, "destination_port", ntohs(k->dport));
	/* Egress rewrites the source; ingress restores the original as destination. */
	cJSON_AddStringToObject(o, "xlate", egress ? "XLATE_SRC" : "XLATE_DST");
	cJSON_AddStringToObject(o, "to_address", format_addr(a, sizeof(a), e->to_addr));
	cJSON_AddNumberToObject(o, "to_port", ntohs(e->to_port));
	cJSON_AddNumberToObject(o, "created", e->created);
	cJSON_AddNumberToObject(o, "needed", e->needed);
	cJSON_AddNumberToObject(o, "created_ago", (double)now - (double)e->created);
	cJSON_AddNumberToObject(o, "needed_ago", (double)now - (double)e->needed);
	return o;
}

static void nat_text(const cJSON *doc)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, doc)
		printf("%s %s %s:%d -> %s:%d %s %s:%d Created=%.0fsec ago NeededAt=%.0fsec ago\n",
		       json_str(o, "protocol"), json_str(o, "direction"), json_str(o, "source"),
		       json_int(o, "source_port"), json_str(o, "destination"),
		       json_int(o, "destination_port"), json_str(o, "xlate"),
		       json_str(o, "to_address"), json_int(o, "to_port"),
		       json_num(o, "created_ago"), json_num(o, "needed_ago"));
}

int cmd_bpf_nat_list(int argc, char **argv)
{
	__u64 now = mono_now_s();
	int ret = cmd_flags(argc, argv, NULL, NULL, 0);

	if (ret)
		return ret;
	return cli_map_list(MAP_NAT4, sizeof(struct nat4_key), sizeof(struct nat4_entry),
			    nat_key_cmp, nat_entry_json, &now, nat_text);
}

static void flush_text(const cJSON *doc)
{
	printf("Flushed %.0f entries from %s\n", json_num(doc, "deleted"), json_str(doc, "path"));
}

int cmd_bpf_nat_flush(int argc, char **argv)
{
	char path[4096];
	cJSON *doc;
	long n;
	int fd, ret;

	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	ret = cli_map_open(MAP_NAT4, sizeof(struct nat4_key), sizeof(struct nat4_entry), &fd);
	if (ret)
		return ret;
	n = map_flush(fd, sizeof(struct nat4_key));
	close(fd);
	if (n < 0)
		return cli_error("flushing %s: %s", MAP_NAT4, strerror(-n));
	pin_map_path(path, sizeof(path), cli.bpf_root, MAP_NAT4);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "map", MAP_NAT4);
	cJSON_AddStringToObject(doc, "path", path);
	cJSON_AddNumberToObject(doc, "deleted", n);
	return cli_print(doc, flush_text);
}
