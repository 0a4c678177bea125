/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading Axon's pinned maps from agentctl: open by name under --bpf-root
 * with the one error operators see when a map is missing, snapshot every
 * entry, delete every entry.
 *
 * Maps are read while the datapath writes them: an entry may vanish between
 * listing its key and reading its value (it is skipped), and a snapshot is
 * not atomic across entries. Nothing here is a hot path.
 */
#ifndef AXON_CLI_MAP_READ_H
#define AXON_CLI_MAP_READ_H

#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

/*
 * Open <bpf-root>/maps/<name> and check that its key and value sizes are the
 * ones this agentctl was built with (value_size is per CPU for per-CPU maps).
 * Returns 0 with *fd set, or an exit code after printing one error line.
 */
int cli_map_open(const char *name, __u32 key_size, __u32 value_size, int *fd);

/* Every entry of a map: n keys of key_size bytes and n values of value_len
 * bytes (value_size times the possible CPUs for per-CPU maps). */
struct map_dump {
	size_t n;
	size_t key_size, value_len;
	unsigned char *keys;
	unsigned char *values;
};

static inline void *map_dump_key(const struct map_dump *d, size_t i)
{
	return d->keys + i * d->key_size;
}

static inline void *map_dump_value(const struct map_dump *d, size_t i)
{
	return d->values + i * d->value_len;
}

/* Snapshot fd into d; returns 0 or -errno. Free with map_dump_free(). */
int map_dump_read(int fd, size_t key_size, size_t value_len, struct map_dump *d);
/* Sort the snapshot's entries by their keys with cmp (keys and values move together). */
void map_dump_sort(struct map_dump *d, int (*cmp)(const void *ka, const void *kb));
void map_dump_free(struct map_dump *d);

/* One entry of a listed map as JSON (ctx: the caller's, e.g. the time now). */
typedef cJSON *(*map_entry_json_fn)(const void *key, const void *value, const void *ctx);

/* `agentctl bpf X list`: open the map pinned as @name (layout checked), read
 * it whole, sort by @cmp, and print one to_json() object per entry with
 * @text (or as JSON). Returns the command's exit status. */
int cli_map_list(const char *name, __u32 key_size, __u32 value_size,
		 int (*cmp)(const void *ka, const void *kb), map_entry_json_fn to_json,
		 const void *ctx, void (*text)(const cJSON *doc));

/* Delete every entry of fd (keys listed first, then deleted, so concurrent
 * inserts cannot keep the walk going). Returns how many this call deleted
 * (entries that vanished meanwhile are not counted), or -errno. */
long map_flush(int fd, size_t key_size);

/* Seconds of CLOCK_MONOTONIC, the clock conntrack and NAT times use. */
__u64 mono_now_s(void);

#endif /* AXON_CLI_MAP_READ_H */
