// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf metrics list: the per-CPU metrics map (include/axon/reasons.h)
 * summed over every possible CPU, one (reason, direction) per row, sorted by
 * reason code then direction, so traces come first and drops (>= 130) last;
 * drops are marked "[drop]":
 *
 *   REASON                          DIRECTION   PACKETS   BYTES
 *   Delivered to local endpoint     INGRESS     12        840
 *   Invalid packet header [drop]    INGRESS     3         180
 *
 * A code this build has no name for shows as "Unknown reason (N)".
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "axon/maps.h"
#include "axon/reasons.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"

static int metrics_key_cmp(const void *pa, const void *pb)
{
	const struct metrics_key *a = pa, *b = pb;

	if (a->reason != b->reason)
		return a->reason < b->reason ? -1 : 1;
	return a->dir < b->dir ? -1 : a->dir > b->dir;
}

static cJSON *metrics_json(const struct metrics_key *k, const struct metrics_value *per_cpu,
			   int ncpus)
{
	cJSON *o = cJSON_CreateObject();
	__u64 packets = 0, bytes = 0;

	for (int c = 0; c < ncpus; c++) {
		packets += per_cpu[c].packets;
		bytes += per_cpu[c].bytes;
	}
	cJSON_AddNumberToObject(o, "reason", k->reason);
	cJSON_AddStringToObject(o, "reason_name", axon_reason_name(k->reason));
	cJSON_AddBoolToObject(o, "drop", axon_reason_is_drop(k->reason));
	cJSON_AddNumberToObject(o, "direction", k->dir);
	cJSON_AddStringToObject(o, "direction_name", axon_metric_dir_name(k->dir));
	cJSON_AddNumberToObject(o, "packets", packets);
	cJSON_AddNumberToObject(o, "bytes", bytes);
	return o;
}

static void metrics_text(const cJSON *doc)
{
	struct table *t = table_new(4, "REASON", "DIRECTION", "PACKETS", "BYTES");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc) {
		char reason[96], packets[24], bytes[24];
		int code = json_int(o, "reason");
		const char *name = json_str(o, "reason_name");

		if (!strcmp(name, axon_reason_name(REASON_MAX)))
			snprintf(reason, sizeof(reason), "%s (%d)", name, code);
		else
			snprintf(reason, sizeof(reason), "%s", name);
		if (cJSON_IsTrue(cJSON_GetObjectItem(o, "drop")))
			strncat(reason, " [drop]", sizeof(reason) - strlen(reason) - 1);
		snprintf(packets, sizeof(packets), "%.0f", json_num(o, "packets"));
		snprintf(bytes, sizeof(bytes), "%.0f", json_num(o, "bytes"));
		table_row(t, reason, json_str(o, "direction_name"), packets, bytes);
	}
	table_print(t);
}

int cmd_bpf_metrics_list(int argc, char **argv)
{
	int ncpus = libbpf_num_possible_cpus(), fd, ret;
	struct map_dump d;
	cJSON *arr;

	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	if (ncpus <= 0)
		return cli_error("cannot count possible CPUs: %s", strerror(-ncpus));
	ret = cli_map_open(MAP_METRICS, sizeof(struct metrics_key), sizeof(struct metrics_value),
			   &fd);
	if (ret)
		return ret;
	/* A per-CPU lookup fills one value per possible CPU, each 8-byte aligned
	 * (struct metrics_value is 16 bytes, so no padding between them). */
	ret = map_dump_read(fd, sizeof(struct metrics_key),
			    sizeof(struct metrics_value) * (size_t)ncpus, &d);
	close(fd);
	if (ret)
		return cli_error("reading %s: %s", MAP_METRICS, strerror(-ret));
	map_dump_sort(&d, metrics_key_cmp);
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < d.n; i++)
		cJSON_AddItemToArray(arr, metrics_json(map_dump_key(&d, i), map_dump_value(&d, i),
						       ncpus));
	map_dump_free(&d);
	return cli_print(arr, metrics_text);
}
