// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_bench: nanoseconds per packet of the tc datapath, measured with
 * BPF_PROG_TEST_RUN, for a flow's first packet and an established flow's,
 * with network policy off and on.
 *
 *   tc_bench [--repeat N] [--rounds N] [--flows N]
 *	prints one line per path, the median over the rounds (the paths are
 *	interleaved within each round):
 *	  path=from_container flow=established policy=off ns_per_packet=N
 *	  ...
 *
 * Paths:
 *   from_container  pod -> pod on the node, a TCP segment delivered with
 *                   redirect_peer;
 *   from_netdev     an outside client -> a pod, arriving on the native device.
 * Flows:
 *   established     an ACK of a flow whose handshake went through first; the
 *                   kernel runs the program --repeat times on the one packet
 *                   and reports the mean. Each run is rewritten only in its
 *                   MACs, which repeats idempotently, so every run takes the
 *                   same path.
 *   new             --flows SYNs, each of another flow (source port), each
 *                   run once (the first run would make the rest established);
 *                   the mean of the kernel's per-run times. Conntrack is
 *                   emptied between rounds so every round creates as many
 *                   entries.
 * Policy:
 *   off             the pods' endpoints enforce nothing;
 *   on              the source pod's egress and the destination pod's ingress
 *                   are enforced (from_netdev: the ingress), each trie holding
 *                   the allow that matches plus 256 other entries (identities,
 *                   ports, a range, a deny); a new flow is looked up, counted,
 *                   and sends its policy-verdict events (past the limiter's
 *                   burst these are suppressed and counted, as in a flood).
 *                   An established flow is never looked up.
 * Afterwards the counters must show the path was taken: the verdict, the
 * TO_ENDPOINT count, one CT_NEW per new flow and, with policy on, one
 * POLICY_ALLOWED per enforced direction of each new flow. A number is never
 * printed for a path that was not taken.
 *
 * The datapath is loaded from the skeleton (nothing pinned or attached) in a
 * private network namespace, so its FIB lookups see an empty node.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <axon/config.h>
#include <axon/ct.h>
#include <axon/endpoint.h>
#include <axon/ipcache.h>
#include <axon/policy.h>
#include <axon/reasons.h>

#include "../bpf/pkt_craft.h"
#include "tc_datapath.skel.h"

#define TC_ACT_REDIRECT 7

#define POD_A	0x0a01000a /* 10.1.0.10: policy off */
#define POD_B	0x0a01000b /* 10.1.0.11 */
#define POD_C	0x0a01000c /* 10.1.0.12: policy on, endpoint 3 */
#define POD_D	0x0a01000d /* 10.1.0.13: policy on, endpoint 4 */
#define CLIENT	0xc6336414 /* 198.51.100.20 */
#define NODE_IP 0xc0a80101 /* 192.168.1.1 */

#define ID_C 1012
#define ID_D 1013

#define MAX_ROUNDS 64

enum { PATH_FROM_CONTAINER, PATH_FROM_NETDEV, NPATHS };

struct bench {
	const char *path;
	bool established;
	bool policy;
	struct bpf_program *prog;
	__u8 dir; /* metrics direction of the program */
	__u32 saddr, daddr;
	__u16 sport, dport;
	__u32 enforced;	   /* policy directions decided per new flow */
	__u8 pkt[PKT_MAX]; /* established: the timed packet */
	size_t len;
	__u64 ns[MAX_ROUNDS];
};

static struct {
	struct tc_datapath *skel;
	int ncpus;
	unsigned long repeat, rounds, flows;
} g;

static int endpoint_add(__u32 addr, __u32 ifindex, __u8 last, __u32 identity, __u16 id, __u8 policy)
{
	struct endpoint_key key = {.address = htonl(addr)};
	struct endpoint_info info = {
	    .ifindex = ifindex, .identity = identity, .id = id, .policy = policy};
	struct ipcache_key ck = {.prefixlen = 32, .address = key.address};
	struct ipcache_value cv = {.identity = identity, .flags = IPCACHE_F_LOCAL};

	memcpy(info.mac, (__u8[6]){0x0a, 0, 0, 0, 0, last}, 6);
	memcpy(info.node_mac, (__u8[6]){0x0e, 0, 0, 0, 0, last}, 6);
	if (bpf_map_update_elem(bpf_map__fd(g.skel->maps.endpoints), &key, &info, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(g.skel->maps.ipcache), &ck, &cv, BPF_ANY))
		return -errno;
	return 0;
}

static int rule(int trie, __u32 identity, __u8 dir, __u8 proto, __u16 port, __u8 l4, bool deny)
{
	struct policy_key k = {.prefixlen = POLICY_KEY_PREFIXLEN(l4),
			       .sec_label = identity,
			       .egress = dir,
			       .protocol = proto,
			       .dport = htons(port)};
	struct policy_entry v = {.flags = deny ? POLICY_F_DENY : 0, .lpm_prefix_length = l4};

	return bpf_map_update_elem(trie, &k, &v, BPF_ANY) ? -errno : 0;
}

/* Endpoint @id's trie: the allows @allow adds, plus 256 others a real policy
 * might hold beside them (never matching the benchmark's flows). */
static int policy_add(__u16 id, int (*allow)(int trie))
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	__u32 slot = id;
	int trie, err = 0;

	trie = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "bench_policy", sizeof(struct policy_key),
			      sizeof(struct policy_entry), POLICY_MAP_MAX, &opts);
	if (trie < 0)
		return -errno;
	for (int i = 0; i < 64 && !err; i++) {
		__u8 dir = i & 1;

		err = rule(trie, 20000 + i, dir, 0, 0, 0, false);
		if (!err)
			err = rule(trie, 30000 + i, dir, IPPROTO_TCP, 1000 + i, 24, false);
		if (!err)
			err = rule(trie, 0, dir, IPPROTO_UDP, 2000 + i, 24, false);
		if (!err)
			err = rule(trie, 40000 + i, dir, IPPROTO_TCP, 9000 + 8 * i, 21, i % 8 == 0);
	}
	if (!err)
		err = allow(trie);
	if (!err && bpf_map_update_elem(bpf_map__fd(g.skel->maps.policy), &slot, &trie, BPF_ANY))
		err = -errno;
	close(trie);
	return err;
}

static int allow_c(int trie)
{
	return rule(trie, ID_D, POLICY_DIR_EGRESS, IPPROTO_TCP, 8080, 24, false);
}

static int allow_d(int trie)
{
	int err = rule(trie, ID_C, POLICY_DIR_INGRESS, IPPROTO_TCP, 8080, 24, false);

	return err ?: rule(trie, 0, POLICY_DIR_INGRESS, IPPROTO_TCP, 80, 24, false);
}

static size_t tcp_pkt(__u8 *buf, __u32 saddr, __u16 sport, __u32 daddr, __u16 dport, __u8 flags)
{
	struct pkt_spec s = {
	    .src_mac = {0x0a, 0, 0, 0, 0, 1},
	    .dst_mac = {0x0e, 0, 0, 0, 0, 1},
	    .saddr = htonl(saddr),
	    .daddr = htonl(daddr),
	    .proto = IPPROTO_TCP,
	    .sport = sport,
	    .dport = dport,
	    .tcp_flags = flags,
	    .payload_len = 64,
	};

	return pkt_build(&s, buf, PKT_MAX);
}

/* Run @prog on @pkt @repeat times; *ns gets the mean. Returns the verdict or -errno. */
static int run(struct bpf_program *prog, const __u8 *pkt, size_t len, __u32 repeat, __u64 *ns)
{
	__u8 out[PKT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts))
		return -errno;
	if (ns)
		*ns = opts.duration;
	return opts.retval;
}

/* One flow's handshake (SYN, SYN-ACK, ACK, ACK), so its entry is established. */
static int handshake(struct bpf_program *fwd, struct bpf_program *rev, __u32 a, __u16 ap, __u32 b,
		     __u16 bp)
{
	static const __u8 flags[4] = {PKT_SYN, PKT_SYN | PKT_ACK, PKT_ACK, PKT_ACK};
	__u8 pkt[PKT_MAX];
	size_t len;
	int ret;

	for (int i = 0; i < 4; i++) {
		len = i % 2 ? tcp_pkt(pkt, b, bp, a, ap, flags[i])
			    : tcp_pkt(pkt, a, ap, b, bp, flags[i]);
		ret = run(i % 2 ? rev : fwd, pkt, len, 1, NULL);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static __u64 count(__u8 reason, __u8 dir)
{
	struct metrics_key key = {.reason = reason, .dir = dir};
	struct metrics_value vals[g.ncpus];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(g.skel->maps.metrics), &key, vals))
		return 0;
	for (int i = 0; i < g.ncpus; i++)
		sum += vals[i].packets;
	return sum;
}

static __u64 policy_allowed(void)
{
	return count(REASON_POLICY_ALLOWED, METRIC_DIR_INGRESS) +
	       count(REASON_POLICY_ALLOWED, METRIC_DIR_EGRESS);
}

/* Empty conntrack: every key listed first, then deleted (a walk from the
 * start after each deletion would rescan the emptied buckets every time). */
static int ct_flush(void)
{
	int fds[] = {bpf_map__fd(g.skel->maps.ct4_tcp), bpf_map__fd(g.skel->maps.ct4_any)};
	size_t cap = 2 * g.flows + 64;
	struct ct4_key *keys = calloc(cap, sizeof(*keys));
	int err = 0;

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]) && !err; i++) {
		size_t n = 0;

		while (n < cap && !bpf_map_get_next_key(fds[i], n ? &keys[n - 1] : NULL, &keys[n]))
			n++;
		for (size_t k = 0; k < n && !err; k++)
			if (bpf_map_delete_elem(fds[i], &keys[k]))
				err = -errno;
	}
	free(keys);
	return err;
}

/* One round of bench @b into b->ns[r]; 0, or -1 after saying why. */
static int measure(struct bench *b, unsigned long r)
{
	__u64 to_ep = count(REASON_TO_ENDPOINT, b->dir), ct_new = count(REASON_CT_NEW, b->dir);
	__u64 allowed = policy_allowed(), total = 0, ns, runs = b->established ? g.repeat : g.flows;
	int verdict = TC_ACT_REDIRECT;

	if (b->established) {
		verdict = run(b->prog, b->pkt, b->len, g.repeat, &total);
		total *= g.repeat;
	} else {
		for (unsigned long i = 0; i < g.flows && verdict == TC_ACT_REDIRECT; i++) {
			b->len = tcp_pkt(b->pkt, b->saddr, (__u16)(b->sport + i), b->daddr,
					 b->dport, PKT_SYN);
			verdict = run(b->prog, b->pkt, b->len, 1, &ns);
			total += ns;
		}
	}
	if (verdict < 0) {
		fprintf(stderr, "tc_bench: %s: BPF_PROG_TEST_RUN: %s\n", b->path,
			strerror(-verdict));
		return -1;
	}
	if (verdict != TC_ACT_REDIRECT || count(REASON_TO_ENDPOINT, b->dir) - to_ep != runs ||
	    count(REASON_CT_NEW, b->dir) - ct_new != (b->established ? 0 : runs) ||
	    policy_allowed() - allowed != (b->established ? 0 : runs * b->enforced)) {
		fprintf(
		    stderr,
		    "tc_bench: %s flow=%s policy=%s: not the path measured (verdict %d; of %llu "
		    "runs %llu delivered, %llu new flows, %llu policy allows)\n",
		    b->path, b->established ? "established" : "new", b->policy ? "on" : "off",
		    verdict, (unsigned long long)runs,
		    (unsigned long long)(count(REASON_TO_ENDPOINT, b->dir) - to_ep),
		    (unsigned long long)(count(REASON_CT_NEW, b->dir) - ct_new),
		    (unsigned long long)(policy_allowed() - allowed));
		return -1;
	}
	b->ns[r] = total / runs;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tc_bench [--repeat N (>= 1000000)] [--rounds N (1..%d)] "
		"[--flows N (1000..60000)]\n",
		MAX_ROUNDS);
}

static int load(void)
{
	struct bpf_map *map;
	int err;

	g.skel = tc_datapath__open();
	if (!g.skel) {
		fprintf(stderr, "tc_bench: open skeleton: %s\n", strerror(errno));
		return -1;
	}
	g.skel->rodata->CONFIG = (struct datapath_config){
	    .node_ip = htonl(NODE_IP),
	    .native_cidr = htonl(0x0a000000),
	    .native_cidr_len = 8,
	    .flags = CFG_HOST_ROUTING | CFG_NODE_PORT | CFG_MASQUERADE,
	};
	/* The flows fit in a few entries (conntrack: a round's new flows);
	 * big preallocated maps only slow the load. */
	bpf_object__for_each_map(map, g.skel->obj)
	{
		__u32 want = map == g.skel->maps.ct4_tcp ? 2 * g.flows + 64 : 4096;

		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF && bpf_map__max_entries(map) > want)
			bpf_map__set_max_entries(map, want);
	}
	err = tc_datapath__load(g.skel);
	if (err) {
		fprintf(stderr, "tc_bench: load: %s\n", strerror(-err));
		return -1;
	}
	err = endpoint_add(POD_A, 2, 0x0a, 1010, 1, 0);
	if (!err)
		err = endpoint_add(POD_B, 3, 0x0b, 1011, 2, 0);
	if (!err)
		err = endpoint_add(POD_C, 4, 0x0c, ID_C, 3, ENDPOINT_POLICY_EGRESS);
	if (!err)
		err = endpoint_add(POD_D, 5, 0x0d, ID_D, 4,
				   ENDPOINT_POLICY_INGRESS | ENDPOINT_POLICY_EGRESS);
	if (!err)
		err = policy_add(3, allow_c);
	if (!err)
		err = policy_add(4, allow_d);
	if (err) {
		fprintf(stderr, "tc_bench: endpoints and policies: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repeat", required_argument, NULL, 'r'},
	    {"rounds", required_argument, NULL, 'n'},
	    {"flows", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	/* established and new, policy off and on, for each program */
#define BENCH(p, e, pol, d, sa, da, sp, dp, en)                                                    \
	{                                                                                          \
		.path = p, .established = e, .policy = pol, .dir = d, .saddr = sa, .daddr = da,    \
		.sport = sp, .dport = dp, .enforced = en,                                          \
	}
	struct bench b[] = {
	    BENCH("from_container", true, false, METRIC_DIR_EGRESS, POD_A, POD_B, 40000, 8080, 0),
	    BENCH("from_container", true, true, METRIC_DIR_EGRESS, POD_C, POD_D, 40000, 8080, 0),
	    BENCH("from_container", false, false, METRIC_DIR_EGRESS, POD_A, POD_B, 1024, 8080, 0),
	    BENCH("from_container", false, true, METRIC_DIR_EGRESS, POD_C, POD_D, 1024, 8080, 2),
	    BENCH("from_netdev", true, false, METRIC_DIR_INGRESS, CLIENT, POD_B, 50000, 80, 0),
	    BENCH("from_netdev", true, true, METRIC_DIR_INGRESS, CLIENT, POD_D, 50000, 80, 0),
	    BENCH("from_netdev", false, false, METRIC_DIR_INGRESS, CLIENT, POD_B, 1024, 80, 0),
	    BENCH("from_netdev", false, true, METRIC_DIR_INGRESS, CLIENT, POD_D, 1024, 80, 1),
	};
#undef BENCH
	const size_t n = sizeof(b) / sizeof(b[0]);
	int c, ret = 1;

	g.repeat = 1000000;
	g.rounds = 5;
	g.flows = 20000;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			g.repeat = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			g.rounds = strtoul(optarg, NULL, 10);
			break;
		case 'f':
			g.flows = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (g.repeat < 1000000 || g.repeat > 0xffffffffUL || g.rounds < 1 ||
	    g.rounds > MAX_ROUNDS || g.flows < 1000 || g.flows > 60000) {
		usage();
		return 2;
	}
	g.ncpus = libbpf_num_possible_cpus();
	if (g.ncpus <= 0)
		return 1;
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "tc_bench: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return 1;
	}
	if (load())
		goto cleanup;

	for (size_t i = 0; i < n; i++) {
		bool netdev = !strcmp(b[i].path, "from_netdev");
		int err = 0;

		b[i].prog = netdev ? g.skel->progs.from_netdev : g.skel->progs.from_container;
		if (!b[i].established)
			continue;
		err = handshake(b[i].prog, g.skel->progs.from_container, b[i].saddr, b[i].sport,
				b[i].daddr, b[i].dport);
		if (err) {
			fprintf(stderr, "tc_bench: preload conntrack: %s\n", strerror(-err));
			goto cleanup;
		}
		b[i].len =
		    tcp_pkt(b[i].pkt, b[i].saddr, b[i].sport, b[i].daddr, b[i].dport, PKT_ACK);
	}
	for (unsigned long r = 0; r < g.rounds; r++) {
		for (size_t i = 0; i < n; i++)
			if (measure(&b[i], r))
				goto cleanup;
		/* The new flows again next round; the established ones' handshakes
		 * again too, their entries go with the rest. */
		if (ct_flush())
			goto cleanup;
		for (size_t i = 0; i < n; i++) {
			if (b[i].established &&
			    handshake(b[i].prog, g.skel->progs.from_container, b[i].saddr,
				      b[i].sport, b[i].daddr, b[i].dport))
				goto cleanup;
		}
	}
	for (size_t i = 0; i < n; i++) {
		qsort(b[i].ns, g.rounds, sizeof(b[i].ns[0]), cmp_u64);
		printf("path=%s flow=%s policy=%s ns_per_packet=%llu\n", b[i].path,
		       b[i].established ? "established" : "new", b[i].policy ? "on" : "off",
		       (unsigned long long)b[i].ns[g.rounds / 2]);
	}
	ret = 0;
cleanup:
	tc_datapath__destroy(g.skel);
	return ret;
}
