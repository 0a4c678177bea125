// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl map list: every map pinned under <bpf-root>/maps with its fill. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "axon/maps.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_count.h"
#include "pin.h"

static const char *map_type_name(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:		return "hash";
	case BPF_MAP_TYPE_LRU_HASH:	return "lru_hash";
	case BPF_MAP_TYPE_PERCPU_HASH:	return "percpu_hash";
	case BPF_MAP_TYPE_LPM_TRIE:	return "lpm_trie";
	case BPF_MAP_TYPE_ARRAY:	return "array";
	case BPF_MAP_TYPE_SK_STORAGE:	return "sk_storage";
	case BPF_MAP_TYPE_RINGBUF:	return "ringbuf";
	case BPF_MAP_TYPE_ARRAY_OF_MAPS: return "array_of_maps";
	default:			return "other";
	}
}

static void maps_text(const cJSON *doc)
{
	struct table *t = table_new(5, "NAME", "TYPE", "ENTRIES", "MAX", "FILL");
	const cJSON *m;

	cJSON_ArrayForEach(m, doc) {
		const cJSON *entries = cJSON_GetObjectItem(m, "entries");
		char e[24] = "-", max[24], fill[16] = "-";

		if (entries) {
			snprintf(e, sizeof(e), "%.0f", entries->valuedouble);
			snprintf(fill, sizeof(fill), "%.1f%%",
				 cJSON_GetObjectItem(m, "fill_percent")->valuedouble);
		}
		snprintf(max, sizeof(max), "%.0f",
			 cJSON_GetObjectItem(m, "max_entries")->valuedouble);
		table_row(t, cJSON_GetObjectItem(m, "name")->valuestring,
			  cJSON_GetObjectItem(m, "type")->valuestring, e, max, fill);
	}
	table_print(t);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cmd_map_list(int argc, char **argv)
{
	char dir[4096], *names[256];
	struct dirent *de;
	size_t n = 0;
	cJSON *arr;
	DIR *d;
	int err = cmd_flags(argc, argv, NULL, NULL, 0);

	if (err)
		return err;
	snprintf(dir, sizeof(dir), "%s/%s", cli.bpf_root, AXON_MAPS_DIR);
	d = opendir(dir);
	if (!d)
		return cli_error("cannot open %s: %s (has the agent run with this --bpf-root?)",
				 dir, strerror(errno));
	while ((de = readdir(d)) && n < 256)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		cJSON *o;
		long cnt;
		int fd = names[i] ? pin_map_open(cli.bpf_root, names[i]) : -ENOMEM;

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
			if (fd >= 0)
				close(fd);
			free(names[i]);
			continue;
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", names[i]);
		cJSON_AddStringToObject(o, "type", map_type_name(info.type));
		cJSON_AddNumberToObject(o, "key_size", info.key_size);
		cJSON_AddNumberToObject(o, "value_size", info.value_size);
		cJSON_AddNumberToObject(o, "max_entries", info.max_entries);
		cnt = map_count_entries(fd);	/* lib/map_count.h: batched, honest */
		if (cnt >= 0) {
			cJSON_AddNumberToObject(o, "entries", cnt);
			cJSON_AddNumberToObject(o, "fill_percent",
						info.max_entries ? 100.0 * cnt / info.max_entries : 0);
		}
		cJSON_AddItemToArray(arr, o);
		close(fd);
		free(names[i]);
	}
	return cli_print(arr, maps_text);
}
