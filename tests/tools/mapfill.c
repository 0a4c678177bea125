// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mapfill: create Axon's datapath maps under a private bpffs root and write
 * known entries into them with the include/axon structs, so tests can run
 * agentctl against exact map contents without an agent or a datapath.
 *
 *   mapfill ROOT create [MAP...]     create and pin (default: every map agentctl reads)
 *   mapfill ROOT put MAP JSON        write one entry (fields below; absent = 0)
 *   mapfill ROOT emit JSON           send one event into the pinned "events" ring
 *   mapfill ROOT count MAP           print the number of entries
 *
 * put fields, by map (addresses dotted quads, ports and numbers in host order):
 *   ct4_tcp, ct4_any  saddr daddr sport dport proto dir(0 OUT,1 IN,2 SVC) rx_packets rx_bytes
 *                     tx_packets tx_bytes lifetime | lifetime_in (now + N, CLOCK_MONOTONIC s)
 *                     flags tx_flags_seen rx_flags_seen rev_nat backend_id src_identity
 *                     last_report nat_addr nat_port
 *   nat4              saddr daddr sport dport proto dir to_addr to_port
 *                     created | created_ago, needed | needed_ago
 *   ipcache           prefix ("10.0.0.0/24") identity tunnel_endpoint flags
 *   endpoints         address ifindex identity mac node_mac ("aa:bb:cc:dd:ee:ff") flags
 *                     id policy
 *   metrics           reason dir packets bytes (arrays: one number per CPU, from CPU 0)
 *   policy            endpoint (its trie is created the first time) identity dir
 *                     (0 ingress, 1 egress) proto port port_prefix (0-16; ignored
 *                     without proto) deny (bool) proxy_port auth_type packets bytes
 * emit fields: type dir reason ifindex ifindex_out ts_ns (default now) orig_len
 *   src_identity dst_identity data (hex of the captured bytes) cap_len (default: bytes
 *   of data) size (bytes of the record to send, default the whole struct event_hdr:
 *   less makes a short, malformed event); policy verdicts also endpoint_id match_type
 *   action remote_identity flow_hash.
 *
 * Userspace cannot write into a BPF ring buffer, so emit loads a tiny tc
 * program that copies its test packet (the crafted event) to the stack and
 * into the ring with bpf_ringbuf_output, and runs it once with
 * BPF_PROG_TEST_RUN.
 *
 * Map sizes are small (the CLI does not care); key and value sizes and map
 * types are the real ones. Exit 0 on success, 1 with a message on error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "axon/ct.h"
#include "axon/endpoint.h"
#include "axon/events.h"
#include "axon/ipcache.h"
#include "axon/maps.h"
#include "axon/nat.h"
#include "axon/policy.h"
#include "axon/reasons.h"
#include "pin.h"

#define TEST_MAP_MAX	1024
#define TEST_RING_SIZE	(1 << 16)

struct map_spec {
	const char *name;
	enum bpf_map_type type;
	__u32 key_size, value_size, flags;
};

static const struct map_spec specs[] = {
	{ MAP_CT4_TCP, BPF_MAP_TYPE_LRU_HASH, sizeof(struct ct4_key), sizeof(struct ct4_entry), 0 },
	{ MAP_CT4_ANY, BPF_MAP_TYPE_LRU_HASH, sizeof(struct ct4_key), sizeof(struct ct4_entry), 0 },
	{ MAP_NAT4, BPF_MAP_TYPE_LRU_HASH, sizeof(struct nat4_key), sizeof(struct nat4_entry), 0 },
	{ MAP_IPCACHE, BPF_MAP_TYPE_LPM_TRIE, sizeof(struct ipcache_key),
	  sizeof(struct ipcache_value), BPF_F_NO_PREALLOC },
	{ MAP_ENDPOINTS, BPF_MAP_TYPE_HASH, sizeof(struct endpoint_key),
	  sizeof(struct endpoint_info), 0 },
	{ MAP_METRICS, BPF_MAP_TYPE_PERCPU_HASH, sizeof(struct metrics_key),
	  sizeof(struct metrics_value), 0 },
	{ MAP_EVENTS, BPF_MAP_TYPE_RINGBUF, 0, 0, 0 },
	/* Its values are policy tries (created with a template trie). */
	{ MAP_POLICY, BPF_MAP_TYPE_ARRAY_OF_MAPS, sizeof(__u32), sizeof(__u32), 0 },
};

static const char *root;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mapfill: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const struct map_spec *find_spec(const char *name)
{
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (!strcmp(specs[i].name, name))
			return &specs[i];
	return NULL;
}

static int trie_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);

	return bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "policy_trie", sizeof(struct policy_key),
			      sizeof(struct policy_entry), TEST_MAP_MAX, &opts);
}

static int create_map(const struct map_spec *s)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = s->flags);
	char path[4096];
	int fd, ret, tmpl = -1;

	pin_map_path(path, sizeof(path), root, s->name);
	if (s->type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
		tmpl = trie_create();
		if (tmpl < 0)
			return fail("create %s's template: %s", s->name, strerror(errno));
		opts.inner_map_fd = tmpl;
	}
	fd = bpf_map_create(s->type, s->name, s->key_size, s->value_size,
			    s->type == BPF_MAP_TYPE_RINGBUF ? TEST_RING_SIZE : TEST_MAP_MAX, &opts);
	if (tmpl >= 0)
		close(tmpl);
	if (fd < 0)
		return fail("create %s: %s", s->name, strerror(errno));
	ret = bpf_obj_pin(fd, path) ? -errno : 0;
	close(fd);
	if (ret)
		return fail("pin %s: %s", path, strerror(-ret));
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/%s", root, AXON_MAPS_DIR);
	if (mkdir_p(dir))
		return fail("mkdir %s: %s", dir, strerror(errno));
	if (argc == 0) {
		for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
			if (create_map(&specs[i]))
				return 1;
		return 0;
	}
	for (int i = 0; i < argc; i++) {
		const struct map_spec *s = find_spec(argv[i]);

		if (!s)
			return fail("unknown map %s", argv[i]);
		if (create_map(s))
			return 1;
	}
	return 0;
}

/* JSON accessors: absent fields are zero, so a test states only what matters. */
static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static bool has(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItem(o, key) != NULL;
}

static __be32 addr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	struct in_addr in = {};

	if (cJSON_IsString(v))
		inet_pton(AF_INET, v->valuestring, &in);
	return in.s_addr;
}

static void mac(const cJSON *o, const char *key, __u8 *out)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	unsigned int b[6] = {};

	if (cJSON_IsString(v))
		sscanf(v->valuestring, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4],
		       &b[5]);
	for (int i = 0; i < 6; i++)
		out[i] = (__u8)b[i];
}

static __u64 now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int put_ct(int fd, const cJSON *o)
{
	struct ct4_key k = {
		.saddr = addr(o, "saddr"), .daddr = addr(o, "daddr"),
		.sport = htons(num(o, "sport")), .dport = htons(num(o, "dport")),
		.nexthdr = num(o, "proto"), .flags = num(o, "dir"),
	};
	struct ct4_entry e = {
		.rx_packets = num(o, "rx_packets"), .rx_bytes = num(o, "rx_bytes"),
		.tx_packets = num(o, "tx_packets"), .tx_bytes = num(o, "tx_bytes"),
		.lifetime = has(o, "lifetime_in") ? now_s() + num(o, "lifetime_in")
						  : num(o, "lifetime"),
		.flags = num(o, "flags"), .tx_flags_seen = num(o, "tx_flags_seen"),
		.rx_flags_seen = num(o, "rx_flags_seen"), .rev_nat_index = num(o, "rev_nat"),
		.backend_id = num(o, "backend_id"), .src_identity = num(o, "src_identity"),
		.last_report = num(o, "last_report"), .nat_addr = addr(o, "nat_addr"),
		.nat_port = htons(num(o, "nat_port")),
	};

	return bpf_map_update_elem(fd, &k, &e, BPF_ANY) ? -errno : 0;
}

static int put_nat(int fd, const cJSON *o)
{
	__u64 now = now_s();
	struct nat4_key k = {
		.saddr = addr(o, "saddr"), .daddr = addr(o, "daddr"),
		.sport = htons(num(o, "sport")), .dport = htons(num(o, "dport")),
		.nexthdr = num(o, "proto"), .dir = num(o, "dir"),
	};
	struct nat4_entry e = {
		.created = has(o, "created_ago") ? now - num(o, "created_ago") : num(o, "created"),
		.needed = has(o, "needed_ago") ? now - num(o, "needed_ago") : num(o, "needed"),
		.to_addr = addr(o, "to_addr"), .to_port = htons(num(o, "to_port")),
	};

	return bpf_map_update_elem(fd, &k, &e, BPF_ANY) ? -errno : 0;
}

static int put_ipcache(int fd, const cJSON *o)
{
	const cJSON *p = cJSON_GetObjectItem(o, "prefix");
	struct ipcache_key k = {};
	struct ipcache_value v = {
		.identity = num(o, "identity"), .tunnel_endpoint = addr(o, "tunnel_endpoint"),
		.flags = num(o, "flags"),
	};
	char buf[64], *slash;

	if (!cJSON_IsString(p))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", p->valuestring);
	slash = strchr(buf, '/');
	k.prefixlen = slash ? (__u32)atoi(slash + 1) : 32;
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, &k.address) != 1)
		return -EINVAL;
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

static int put_endpoint(int fd, const cJSON *o)
{
	struct endpoint_key k = { .address = addr(o, "address") };
	struct endpoint_info v = {
		.ifindex = num(o, "ifindex"), .identity = num(o, "identity"),
		.flags = num(o, "flags"), .policy = num(o, "policy"), .id = num(o, "id"),
	};

	mac(o, "mac", v.mac);
	mac(o, "node_mac", v.node_mac);
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

static int put_metrics(int fd, const cJSON *o)
{
	int ncpus = libbpf_num_possible_cpus();
	const cJSON *pk = cJSON_GetObjectItem(o, "packets"), *by = cJSON_GetObjectItem(o, "bytes");
	struct metrics_key k = { .reason = num(o, "reason"), .dir = num(o, "dir") };
	struct metrics_value *v;
	int ret;

	if (ncpus <= 0)
		return ncpus;
	if (cJSON_GetArraySize(pk) > ncpus || cJSON_GetArraySize(by) > ncpus)
		return -ERANGE;
	v = calloc(ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (int c = 0; c < cJSON_GetArraySize(pk); c++)
		v[c].packets = cJSON_GetArrayItem(pk, c)->valuedouble;
	for (int c = 0; c < cJSON_GetArraySize(by); c++)
		v[c].bytes = cJSON_GetArrayItem(by, c)->valuedouble;
	ret = bpf_map_update_elem(fd, &k, v, BPF_ANY) ? -errno : 0;
	free(v);
	return ret;
}

/* One entry into an endpoint's trie, as the agent's writer would lay it out
 * (plus counters, as the datapath would have left them). */
static int put_policy(int fd, const cJSON *o)
{
	const cJSON *deny = cJSON_GetObjectItem(o, "deny");
	__u32 slot = num(o, "endpoint"), id;
	__u8 proto = num(o, "proto");
	__u8 l4 = proto ? POLICY_PREFIX_PROTO + (__u8)num(o, "port_prefix") : 0;
	struct policy_key k = {
		.prefixlen = POLICY_KEY_PREFIXLEN(l4), .sec_label = num(o, "identity"),
		.egress = num(o, "dir"), .protocol = proto, .dport = htons(num(o, "port")),
	};
	struct policy_entry v = {
		.proxy_port = htons(num(o, "proxy_port")), .auth_type = num(o, "auth_type"),
		.flags = cJSON_IsTrue(deny) ? POLICY_F_DENY : 0, .lpm_prefix_length = l4,
		.packets = num(o, "packets"), .bytes = num(o, "bytes"),
	};
	int trie, ret;

	if (!bpf_map_lookup_elem(fd, &slot, &id)) {
		trie = bpf_map_get_fd_by_id(id);
	} else {
		trie = trie_create();
		if (trie >= 0 && bpf_map_update_elem(fd, &slot, &trie, BPF_ANY)) {
			ret = -errno;
			close(trie);
			return ret;
		}
	}
	if (trie < 0)
		return -errno;
	ret = bpf_map_update_elem(trie, &k, &v, BPF_ANY) ? -errno : 0;
	close(trie);
	return ret;
}

static int cmd_put(const char *name, const char *json)
{
	cJSON *o = cJSON_Parse(json);
	int fd, ret;

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return fail("put %s: not a JSON object: %s", name, json);
	}
	fd = pin_map_open(root, name);
	if (fd < 0) {
		cJSON_Delete(o);
		return fail("open %s: %s", name, strerror(-fd));
	}
	if (!strcmp(name, MAP_CT4_TCP) || !strcmp(name, MAP_CT4_ANY))
		ret = put_ct(fd, o);
	else if (!strcmp(name, MAP_NAT4))
		ret = put_nat(fd, o);
	else if (!strcmp(name, MAP_IPCACHE))
		ret = put_ipcache(fd, o);
	else if (!strcmp(name, MAP_ENDPOINTS))
		ret = put_endpoint(fd, o);
	else if (!strcmp(name, MAP_METRICS))
		ret = put_metrics(fd, o);
	else if (!strcmp(name, MAP_POLICY))
		ret = put_policy(fd, o);
	else
		ret = -EOPNOTSUPP;
	close(fd);
	cJSON_Delete(o);
	return ret ? fail("put %s: %s", name, strerror(-ret)) : 0;
}

/* Raw BPF instructions: the program is too small to be worth an object file. */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
						.off = (o), .imm = (i) })

static int emit_prog(int ring_fd, __u32 size)
{
	/* Packet pointers may not be handed to bpf_ringbuf_output: copy the
	 * packet to the stack with bpf_skb_load_bytes first. */
	const __s16 buf = -(__s16)((sizeof(struct event_hdr) + 7) & ~7UL);
	struct bpf_insn insns[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, buf),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, (__s32)size),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_skb_load_bytes),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 7, 0),	/* goto out */
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, ring_fd),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, buf),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, (__s32)size),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output),
		/* out: */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "mapfill_emit", "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), &opts);
	if (fd < 0)
		fprintf(stderr, "mapfill: verifier log:\n%s\n", log);
	return fd < 0 ? -errno : fd;
}

static int hex_decode(const char *hex, __u8 *out, size_t max, size_t *len)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = (__u8)b;
	}
	*len = n / 2;
	return 0;
}

static int cmd_emit(const char *json)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *data;
	/* The test packet must hold an Ethernet header at least. */
	__u8 pkt[sizeof(struct event_hdr) + 64] = {};
	struct event_hdr *e = (struct event_hdr *)pkt;
	struct timespec ts;
	size_t cap = 0;
	__u32 size;
	int ring_fd = -1, prog_fd = -1, ret = 0;
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .repeat = 1);

	if (!cJSON_IsObject(o)) {
		ret = fail("emit: not a JSON object: %s", json);
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	e->type = num(o, "type");
	e->dir = num(o, "dir");
	e->reason = num(o, "reason");
	e->ifindex = num(o, "ifindex");
	e->ifindex_out = num(o, "ifindex_out");
	e->ts_ns = has(o, "ts_ns") ? num(o, "ts_ns")
				   : (__u64)ts.tv_sec * 1000000000 + ts.tv_nsec;
	e->orig_len = num(o, "orig_len");
	e->src_identity = num(o, "src_identity");
	e->dst_identity = num(o, "dst_identity");
	e->endpoint_id = num(o, "endpoint_id");
	e->match_type = num(o, "match_type");
	e->action = num(o, "action");
	e->remote_identity = num(o, "remote_identity");
	e->flow_hash = num(o, "flow_hash");
	data = cJSON_GetObjectItem(o, "data");
	if (cJSON_IsString(data) && hex_decode(data->valuestring, e->data, sizeof(e->data), &cap)) {
		ret = fail("emit: data is not hex of at most %d bytes", EVENT_CAPTURE_LEN);
		goto cleanup;
	}
	e->cap_len = has(o, "cap_len") ? num(o, "cap_len") : cap;
	size = has(o, "size") ? num(o, "size") : sizeof(*e);
	if (size == 0 || size > sizeof(*e)) {
		ret = fail("emit: size must be 1..%zu", sizeof(*e));
		goto cleanup;
	}
	ring_fd = pin_map_open(root, MAP_EVENTS);
	if (ring_fd < 0) {
		ret = fail("open %s: %s", MAP_EVENTS, strerror(-ring_fd));
		goto cleanup;
	}
	prog_fd = emit_prog(ring_fd, size);
	if (prog_fd < 0) {
		ret = fail("load emit program: %s", strerror(-prog_fd));
		goto cleanup;
	}
	run.data_size_in = size < 64 ? 64 : size;
	if (bpf_prog_test_run_opts(prog_fd, &run)) {
		ret = fail("test run: %s", strerror(errno));
		goto cleanup;
	}
cleanup:
	if (prog_fd >= 0)
		close(prog_fd);
	if (ring_fd >= 0)
		close(ring_fd);
	cJSON_Delete(o);
	return ret;
}

static int cmd_count(const char *name)
{
	__u8 key[64], next[64];
	void *prev = NULL;
	long n = 0;
	int fd = pin_map_open(root, name);

	if (fd < 0)
		return fail("open %s: %s", name, strerror(-fd));
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	close(fd);
	printf("%ld\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		goto usage;
	root = argv[1];
	if (!strcmp(argv[2], "create"))
		return cmd_create(argc - 3, argv + 3);
	if (!strcmp(argv[2], "put") && argc == 5)
		return cmd_put(argv[3], argv[4]);
	if (!strcmp(argv[2], "emit") && argc == 4)
		return cmd_emit(argv[3]);
	if (!strcmp(argv[2], "count") && argc == 4)
		return cmd_count(argv[3]);
usage:
	fprintf(stderr, "usage: mapfill ROOT create [MAP...] | put MAP JSON | emit JSON | "
			"count MAP\n");
	return 2;
}
