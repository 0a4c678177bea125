// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_bench: nanoseconds per packet of the tc datapath's established-flow
 * path, measured with BPF_PROG_TEST_RUN (the kernel runs the program
 * --repeat times on one packet and reports the mean).
 *
 *   tc_bench [--repeat N] [--rounds N]
 *	prints one line per path, the median over the rounds (the paths are
 *	interleaved within each round):
 *	  path=from_container ns_per_packet=N
 *	  path=from_netdev ns_per_packet=N
 *
 * Paths:
 *   from_container  pod A -> pod B on the node, a TCP ACK of a flow whose
 *                   handshake went through first (conntrack established),
 *                   delivered with redirect_peer;
 *   from_netdev     an outside client -> pod A, the same, arriving on the
 *                   native device.
 * Each packet is rewritten only in its MACs, which repeats idempotently, so
 * every one of the N runs takes the same path; that is checked afterwards
 * (verdict and the TO_ENDPOINT counter), so a number is never printed for a
 * path that was not taken.
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

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <axon/config.h>
#include <axon/endpoint.h>
#include <axon/reasons.h>

#include "../bpf/pkt_craft.h"
#include "tc_datapath.skel.h"

#define TC_ACT_REDIRECT 7

#define POD_A	0x0a01000a /* 10.1.0.10 */
#define POD_B	0x0a01000b /* 10.1.0.11 */
#define CLIENT	0xc6336414 /* 198.51.100.20 */
#define NODE_IP 0xc0a80101 /* 192.168.1.1 */

enum { PATH_FROM_CONTAINER, PATH_FROM_NETDEV, NPATHS };

struct path {
	const char *name;
	struct bpf_program *prog;
	__u8 dir;	   /* metrics direction of the program */
	__u8 pkt[PKT_MAX]; /* the timed packet */
	size_t len;
	__u64 ns[64]; /* per round */
};

static int endpoint_add(struct tc_datapath *skel, __u32 addr, __u32 ifindex, __u8 last)
{
	struct endpoint_key key = {.address = htonl(addr)};
	struct endpoint_info info = {.ifindex = ifindex, .identity = 1000 + last};

	memcpy(info.mac, (__u8[6]){0x0a, 0, 0, 0, 0, last}, 6);
	memcpy(info.node_mac, (__u8[6]){0x0e, 0, 0, 0, 0, last}, 6);
	return bpf_map_update_elem(bpf_map__fd(skel->maps.endpoints), &key, &info, BPF_ANY) ? -errno
											    : 0;
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

static __u64 to_endpoint_count(struct tc_datapath *skel, __u8 dir, int ncpus)
{
	struct metrics_key key = {.reason = REASON_TO_ENDPOINT, .dir = dir};
	struct metrics_value vals[ncpus];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.metrics), &key, vals))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += vals[i].packets;
	return sum;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: tc_bench [--repeat N (>= 1000000)] [--rounds N (1..64)]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repeat", required_argument, NULL, 'r'},
	    {"rounds", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct path paths[NPATHS] = {
	    [PATH_FROM_CONTAINER] = {.name = "from_container", .dir = METRIC_DIR_EGRESS},
	    [PATH_FROM_NETDEV] = {.name = "from_netdev", .dir = METRIC_DIR_INGRESS},
	};
	unsigned long repeat = 1000000, rounds = 5;
	struct tc_datapath *skel = NULL;
	struct bpf_map *map;
	int ncpus, err, c, ret = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repeat = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			rounds = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (repeat < 1000000 || repeat > 0xffffffffUL || rounds < 1 || rounds > 64) {
		usage();
		return 2;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return 1;
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "tc_bench: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return 1;
	}

	skel = tc_datapath__open();
	if (!skel) {
		fprintf(stderr, "tc_bench: open skeleton: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->CONFIG = (struct datapath_config){
	    .node_ip = htonl(NODE_IP),
	    .native_cidr = htonl(0x0a000000),
	    .native_cidr_len = 8,
	    .flags = CFG_HOST_ROUTING | CFG_NODE_PORT | CFG_MASQUERADE,
	};
	/* The flows fit in a few entries; big preallocated maps only slow the load. */
	bpf_object__for_each_map(map, skel->obj)
	{
		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF && bpf_map__max_entries(map) > 4096)
			bpf_map__set_max_entries(map, 4096);
	}
	err = tc_datapath__load(skel);
	if (err) {
		fprintf(stderr, "tc_bench: load: %s\n", strerror(-err));
		goto cleanup;
	}
	err = endpoint_add(skel, POD_A, 2, 0x0a);
	if (!err)
		err = endpoint_add(skel, POD_B, 3, 0x0b);
	if (err) {
		fprintf(stderr, "tc_bench: endpoints map: %s\n", strerror(-err));
		goto cleanup;
	}

	paths[PATH_FROM_CONTAINER].prog = skel->progs.from_container;
	paths[PATH_FROM_NETDEV].prog = skel->progs.from_netdev;
	err = handshake(skel->progs.from_container, skel->progs.from_container, POD_A, 40000, POD_B,
			8080);
	if (!err)
		err = handshake(skel->progs.from_netdev, skel->progs.from_container, CLIENT, 50000,
				POD_A, 80);
	if (err) {
		fprintf(stderr, "tc_bench: preload conntrack: %s\n", strerror(-err));
		goto cleanup;
	}
	paths[PATH_FROM_CONTAINER].len =
	    tcp_pkt(paths[PATH_FROM_CONTAINER].pkt, POD_A, 40000, POD_B, 8080, PKT_ACK);
	paths[PATH_FROM_NETDEV].len =
	    tcp_pkt(paths[PATH_FROM_NETDEV].pkt, CLIENT, 50000, POD_A, 80, PKT_ACK);

	for (unsigned long r = 0; r < rounds; r++) {
		for (int p = 0; p < NPATHS; p++) {
			__u64 before = to_endpoint_count(skel, paths[p].dir, ncpus);
			int verdict =
			    run(paths[p].prog, paths[p].pkt, paths[p].len, repeat, &paths[p].ns[r]);

			if (verdict < 0) {
				fprintf(stderr, "tc_bench: %s: BPF_PROG_TEST_RUN: %s\n",
					paths[p].name, strerror(-verdict));
				goto cleanup;
			}
			if (verdict != TC_ACT_REDIRECT ||
			    to_endpoint_count(skel, paths[p].dir, ncpus) - before != repeat) {
				fprintf(stderr,
					"tc_bench: %s: not the established delivery path (verdict "
					"%d, %llu of %lu runs counted TO_ENDPOINT)\n",
					paths[p].name, verdict,
					(unsigned long long)(to_endpoint_count(skel, paths[p].dir,
									       ncpus) -
							     before),
					repeat);
				goto cleanup;
			}
		}
	}
	for (int p = 0; p < NPATHS; p++) {
		qsort(paths[p].ns, rounds, sizeof(paths[p].ns[0]), cmp_u64);
		printf("path=%s ns_per_packet=%llu\n", paths[p].name,
		       (unsigned long long)paths[p].ns[rounds / 2]);
	}
	ret = 0;
cleanup:
	tc_datapath__destroy(skel);
	return ret;
}
