// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Behaviour of the tc datapath (bpf/tc_datapath.bpf.c) on crafted packets.
 *
 * Every test loads a fresh tc_datapath skeleton (CONFIG set between open and
 * load, maps shrunk, nothing pinned or attached), fills the maps the agent
 * would fill (endpoints, ipcache, services) straight from the include/axon
 * structs, runs one of the four programs with BPF_PROG_TEST_RUN on packets
 * built by pkt_craft.h, and checks the verdict, the packet that comes out
 * (addresses, ports, MACs, checksums) and the maps after (conntrack, NAT,
 * affinity, metrics summed over CPUs, the events ring buffer).
 *
 * bpf_fib_lookup() in BPF_PROG_TEST_RUN looks in the caller's network
 * namespace, so the process first moves into a private one (unshare) and
 * builds a small node there with `ip` (children inherit the namespace; the
 * root namespace is never touched, and everything goes away with the process):
 *
 *   nd0   native device 192.168.1.1/24 (CONFIG.node_ip), forwarding on;
 *         gateway 192.168.1.254 and a peer node 192.168.1.2 as permanent
 *         neighbours; 203.0.113.0/24 and 198.51.100.0/24 via the gateway
 *         ("the world", NodePort clients), 10.2.0.0/16 (the peer's pods) via
 *         the peer; 192.0.2.0/24 via the gateway with `mtu lock 1400` (a
 *         narrower way out than the pods' 1500); nothing routes 198.18.0.0/15.
 *   lxca, lxcb   host sides of local pods A 10.1.0.10 and B 10.1.0.11.
 *
 * The redirect helpers only record their target in a test run and return
 * TC_ACT_REDIRECT, which is what the tests check, with the MACs written.
 * The process pins itself to one CPU so per-CPU state (event limiter) is one.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <axon/config.h>
#include <axon/ct.h>
#include <axon/endpoint.h>
#include <axon/events.h>
#include <axon/ipcache.h>
#include <axon/lb.h>
#include <axon/nat.h>
#include <axon/reasons.h>

#include "pkt_craft.h"
#include "tc_datapath.skel.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7

#define NODE_IP	     "192.168.1.1"
#define GW_IP	     "192.168.1.254"
#define PEER_NODE_IP "192.168.1.2"
#define POD_A	     "10.1.0.10"
#define POD_B	     "10.1.0.11"
#define REMOTE_POD   "10.2.0.5"	     /* on the peer node */
#define WORLD	     "203.0.113.10"  /* outside the native-routing CIDR, via the gateway */
#define CLIENT	     "198.51.100.20" /* a NodePort client, via the gateway */
#define UNROUTED     "198.18.0.1"    /* no route in the test namespace */
#define NARROW	     "192.0.2.10"    /* via the gateway, route `mtu lock 1400` */
#define VIP	     "10.96.0.10"

#define NAT_MIN	 40000
#define NAT_MAX	 40063
#define LT_TCP	 7000 /* lifetimes in the default test CONFIG: not ct.h's defaults */
#define LT_SYN	 50
#define LT_CLOSE 9
#define LT_ANY	 55

static const __u8 MAC_ND0[6] = {0x02, 0, 0, 0, 0x01, 0x01};
static const __u8 MAC_GW[6] = {0x02, 0, 0, 0, 0x01, 0xfe};
static const __u8 MAC_PEER[6] = {0x02, 0, 0, 0, 0x02, 0x01};
static const __u8 MAC_POD_A[6] = {0x0a, 0, 0, 0, 0, 0x0a};
static const __u8 MAC_LXC_A[6] = {0x0e, 0, 0, 0, 0, 0x0a};
static const __u8 MAC_POD_B[6] = {0x0a, 0, 0, 0, 0, 0x0b};
static const __u8 MAC_LXC_B[6] = {0x0e, 0, 0, 0, 0, 0x0b};

enum prog_id { FROM_CONTAINER, TO_CONTAINER, FROM_NETDEV, TO_NETDEV, NPROGS };

static const char *const prog_name[NPROGS] = {"from_container", "to_container", "from_netdev",
					      "to_netdev"};
static const __u8 prog_dir[NPROGS] = {METRIC_DIR_EGRESS, METRIC_DIR_INGRESS, METRIC_DIR_INGRESS,
				      METRIC_DIR_EGRESS};

static struct {
	struct tc_datapath *skel;
	int ncpus;
	int if_nd0, if_lxca, if_lxcb;
} fx;

/* ---- the test node ------------------------------------------------------ */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "test_tc_datapath: `%s` failed (%d)\n", cmd, rc);
	return rc ? -1 : 0;
}

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -errno;
	rc = fputs(s, f) < 0 ? -EIO : 0;
	if (fclose(f))
		rc = -errno;
	return rc;
}

static int group_setup(void **state)
{
	static const char *const cmds[] = {
	    "ip link set lo up",
	    "ip link add nd0 address 02:00:00:00:01:01 type veth peer name nd0p",
	    "ip link add lxca address 0e:00:00:00:00:0a type veth peer name pa",
	    "ip link add lxcb address 0e:00:00:00:00:0b type veth peer name pb",
	    "ip link set nd0 up && ip link set nd0p up && ip link set lxca up && "
	    "ip link set pa up && ip link set lxcb up && ip link set pb up",
	    "ip addr add 192.168.1.1/24 dev nd0",
	    "ip neigh replace 192.168.1.254 lladdr 02:00:00:00:01:fe dev nd0 nud permanent",
	    "ip neigh replace 192.168.1.2 lladdr 02:00:00:00:02:01 dev nd0 nud permanent",
	    "ip route add 203.0.113.0/24 via 192.168.1.254 dev nd0",
	    "ip route add 198.51.100.0/24 via 192.168.1.254 dev nd0",
	    "ip route add 10.2.0.0/16 via 192.168.1.2 dev nd0",
	    "ip route add 192.0.2.0/24 via 192.168.1.254 dev nd0 mtu lock 1400",
	    "ip route add 10.1.0.10/32 dev lxca",
	    "ip route add 10.1.0.11/32 dev lxcb",
	};
	cpu_set_t cpus;

	(void)state;
	fx.ncpus = libbpf_num_possible_cpus();
	if (fx.ncpus <= 0)
		return -1;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		fprintf(stderr, "test_tc_datapath: pin to CPU 0: %s\n", strerror(errno));

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "test_tc_datapath: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	/* From here on every `ip` runs in the private namespace. */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (sh(cmds[i]))
			return -1;
	}
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1")) {
		fprintf(stderr, "test_tc_datapath: enable forwarding in the test namespace\n");
		return -1;
	}
	fx.if_nd0 = if_nametoindex("nd0");
	fx.if_lxca = if_nametoindex("lxca");
	fx.if_lxcb = if_nametoindex("lxcb");
	if (!fx.if_nd0 || !fx.if_lxca || !fx.if_lxcb)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	/* The namespace and its devices go with the process. */
	return 0;
}

/* ---- loading ------------------------------------------------------------ */

static __be32 ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static struct datapath_config default_config(void)
{
	struct datapath_config cfg = {
	    .node_ip = ip4(NODE_IP),
	    .native_cidr = ip4("10.0.0.0"),
	    .native_cidr_len = 8,
	    .flags = CFG_MASQUERADE | CFG_NODE_PORT | CFG_HOST_ROUTING,
	    .node_port_min = NODE_PORT_MIN_DEFAULT,
	    .node_port_max = NODE_PORT_MAX_DEFAULT,
	    .nat_port_min = NAT_MIN,
	    .nat_port_max = NAT_MAX,
	    .ct_lifetime_tcp = LT_TCP,
	    .ct_lifetime_syn = LT_SYN,
	    .ct_lifetime_close = LT_CLOSE,
	    .ct_lifetime_any = LT_ANY,
	    .events_rate = 1000,
	    .events_burst = 100,
	};

	return cfg;
}

static int mapfd(struct bpf_map *map)
{
	return bpf_map__fd(map);
}

#define MAP(name) mapfd(fx.skel->maps.name)

static void endpoint_add(const char *ip, int ifindex, const __u8 *mac, const __u8 *node_mac,
			 __u32 identity)
{
	struct endpoint_key key = {.address = ip4(ip)};
	struct endpoint_info info = {.ifindex = ifindex, .identity = identity};
	struct ipcache_key ck = {.prefixlen = IPCACHE_PREFIX_LEN(32), .address = key.address};
	struct ipcache_value cv = {
	    .identity = identity, .tunnel_endpoint = ip4(NODE_IP), .flags = IPCACHE_F_LOCAL};

	memcpy(info.mac, mac, 6);
	memcpy(info.node_mac, node_mac, 6);
	assert_int_equal(bpf_map_update_elem(MAP(endpoints), &key, &info, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(MAP(ipcache), &ck, &cv, BPF_ANY), 0);
}

static void dp_unload(void)
{
	tc_datapath__destroy(fx.skel);
	fx.skel = NULL;
}

/* Load a fresh datapath with @cfg and the node's two local pods. Big maps are
 * shrunk: a test holds a handful of flows, and a load stays cheap. */
static void dp_load(const struct datapath_config *cfg)
{
	struct ipcache_key ck = {.prefixlen = 16, .address = ip4("10.2.0.0")};
	struct ipcache_value cv = {.tunnel_endpoint = ip4(PEER_NODE_IP),
				   .flags = IPCACHE_F_POD_CIDR};
	struct bpf_map *map;
	int err;

	if (fx.skel)
		dp_unload();
	fx.skel = tc_datapath__open();
	assert_non_null(fx.skel);
	fx.skel->rodata->CONFIG = *cfg;
	bpf_object__for_each_map(map, fx.skel->obj)
	{
		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF && bpf_map__max_entries(map) > 4096)
			assert_int_equal(bpf_map__set_max_entries(map, 4096), 0);
	}
	err = tc_datapath__load(fx.skel);
	if (err)
		fail_msg("tc_datapath load (verifier): %s", strerror(-err));

	endpoint_add(POD_A, fx.if_lxca, MAC_POD_A, MAC_LXC_A, 1001);
	endpoint_add(POD_B, fx.if_lxcb, MAC_POD_B, MAC_LXC_B, 1002);
	assert_int_equal(bpf_map_update_elem(MAP(ipcache), &ck, &cv, BPF_ANY), 0);
}

static int test_setup(void **state)
{
	struct datapath_config cfg = default_config();

	(void)state;
	dp_load(&cfg);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	dp_unload();
	return 0;
}

/* ---- running programs --------------------------------------------------- */

struct run {
	int verdict;
	__u32 len;
	__u8 out[PKT_MAX];
	struct pkt_view v;
};

static struct bpf_program *prog_of(enum prog_id id)
{
	switch (id) {
	case FROM_CONTAINER:
		return fx.skel->progs.from_container;
	case TO_CONTAINER:
		return fx.skel->progs.to_container;
	case FROM_NETDEV:
		return fx.skel->progs.from_netdev;
	default:
		return fx.skel->progs.to_netdev;
	}
}

/* The device a program runs on in the test node, by default. */
static int default_ifindex(enum prog_id id)
{
	return id == FROM_NETDEV || id == TO_NETDEV ? fx.if_nd0 : fx.if_lxca;
}

static void run_on(enum prog_id id, int ifindex, const __u8 *pkt, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	memset(r, 0, sizeof(*r));
	err = bpf_prog_test_run_opts(bpf_program__fd(prog_of(id)), &opts);
	if (err)
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", prog_name[id], strerror(-err));
	r->verdict = opts.retval;
	r->len = opts.data_size_out;
	pkt_parse(r->out, r->len, &r->v);
}

static void run(enum prog_id id, const __u8 *pkt, size_t len, struct run *r)
{
	run_on(id, default_ifindex(id), pkt, len, r);
}

/* As run(), for an skb the stack marked GSO (gso_size and gso_segs in the
 * context, as BPF_PROG_TEST_RUN takes them). */
static void run_gso(enum prog_id id, const __u8 *pkt, size_t len, __u32 gso_size, __u16 segs,
		    struct run *r)
{
	struct __sk_buff ctx = {.ifindex = default_ifindex(id), .gso_size = gso_size,
				.gso_segs = segs};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	memset(r, 0, sizeof(*r));
	err = bpf_prog_test_run_opts(bpf_program__fd(prog_of(id)), &opts);
	if (err)
		fail_msg("%s: BPF_PROG_TEST_RUN (gso_size %u): %s", prog_name[id], gso_size,
			 strerror(-err));
	r->verdict = opts.retval;
	r->len = opts.data_size_out;
}

/* The packet that came out is well formed with valid checksums. */
static void assert_valid(struct run *r)
{
	const char *err = pkt_verify(r->out, r->len, &r->v);

	if (err)
		fail_msg("output packet: %s", err);
}

static void assert_ip_port(__be32 addr, __u16 port, const char *want_ip, __u16 want_port)
{
	char got[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addr, got, sizeof(got));
	if (strcmp(got, want_ip) || port != want_port)
		fail_msg("got %s:%u, want %s:%u", got, port, want_ip, want_port);
}

static void assert_src(struct run *r, const char *ip, __u16 port)
{
	assert_ip_port(r->v.saddr, r->v.sport, ip, port);
}

static void assert_dst(struct run *r, const char *ip, __u16 port)
{
	assert_ip_port(r->v.daddr, r->v.dport, ip, port);
}

static void assert_macs(struct run *r, const __u8 *dst, const __u8 *src)
{
	assert_memory_equal(r->out, dst, 6);
	assert_memory_equal(r->out + 6, src, 6);
}

/* After a FIB redirect: either the MACs are left for bpf_redirect_neigh() to
 * fill in (unchanged from the input, whose MACs are spec_of()'s), or the
 * datapath wrote the FIB's next hop and the output device's MAC. */
static void assert_fib_macs(struct run *r, const __u8 *dst, const __u8 *src)
{
	if (!memcmp(r->out, MAC_LXC_A, 6) && !memcmp(r->out + 6, MAC_POD_A, 6))
		return;
	assert_macs(r, dst, src);
}

/* ---- packets ------------------------------------------------------------ */

struct flow {
	const char *src;
	__u16 sport;
	const char *dst;
	__u16 dport;
	__u8 proto;
};

static struct pkt_spec spec_of(const struct flow *f, __u8 tcp_flags)
{
	struct pkt_spec s = {
	    .saddr = ip4(f->src),
	    .daddr = ip4(f->dst),
	    .proto = f->proto,
	    .sport = f->sport,
	    .dport = f->dport,
	    .tcp_flags = tcp_flags,
	    .payload_len = 16,
	};

	memcpy(s.src_mac, MAC_POD_A, 6);
	memcpy(s.dst_mac, MAC_LXC_A, 6);
	return s;
}

static size_t build(const struct pkt_spec *s, __u8 *buf)
{
	size_t len = pkt_build(s, buf, PKT_MAX);

	assert_true(len > 0);
	return len;
}

/* Build the packet of flow @f with @tcp_flags and run it through @id. */
static void send_flow(enum prog_id id, int ifindex, const struct flow *f, __u8 tcp_flags,
		      struct run *r)
{
	struct pkt_spec s = spec_of(f, tcp_flags);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);

	run_on(id, ifindex ? ifindex : default_ifindex(id), buf, len, r);
}

static struct flow reversed(const struct flow *f)
{
	struct flow r = {f->dst, f->dport, f->src, f->sport, f->proto};

	return r;
}

/* ---- maps --------------------------------------------------------------- */

static struct metrics_value metric_dir(__u8 reason, __u8 dir)
{
	struct metrics_key key = {.reason = reason, .dir = dir};
	struct metrics_value vals[fx.ncpus], sum = {};

	if (bpf_map_lookup_elem(MAP(metrics), &key, vals))
		return sum;
	for (int i = 0; i < fx.ncpus; i++) {
		sum.packets += vals[i].packets;
		sum.bytes += vals[i].bytes;
	}
	return sum;
}

static __u64 metric(__u8 reason, __u8 dir)
{
	return metric_dir(reason, dir).packets;
}

/* Packets counted under @reason in any direction. */
static __u64 metric_any_dir(__u8 reason)
{
	__u64 n = 0;

	for (__u8 d = 0; d < METRIC_DIR_MAX; d++)
		n += metric(reason, d);
	return n;
}

static struct ct4_key ct_key(const struct flow *f, __u8 dir)
{
	struct ct4_key k = {
	    .daddr = ip4(f->dst),
	    .saddr = ip4(f->src),
	    .dport = htons(f->dport),
	    .sport = htons(f->sport),
	    .nexthdr = f->proto,
	    .flags = dir,
	};

	return k;
}

static int ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? MAP(ct4_tcp) : MAP(ct4_any);
}

/* The conntrack entry of flow @f (tuple as written) in direction @dir. */
static int ct_get(const struct flow *f, __u8 dir, struct ct4_entry *e)
{
	struct ct4_key k = ct_key(f, dir);

	return bpf_map_lookup_elem(ct_map(f->proto), &k, e) ? -errno : 0;
}

static struct ct4_entry ct_must(const struct flow *f, __u8 dir)
{
	struct ct4_entry e;

	if (ct_get(f, dir, &e))
		fail_msg("no conntrack entry %s:%u -> %s:%u proto %u dir %u", f->src, f->sport,
			 f->dst, f->dport, f->proto, dir);
	return e;
}

static int map_count(int fd)
{
	__u8 key[64], prev[64];
	int n = 0;

	while (!bpf_map_get_next_key(fd, n ? prev : NULL, key)) {
		memcpy(prev, key, sizeof(prev));
		n++;
	}
	return n;
}

static __u32 now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The entry's lifetime is what @seconds from a moment in [t0, t1] gives. */
static void assert_lifetime(const struct ct4_entry *e, __u32 t0, __u32 t1, __u32 seconds)
{
	if (e->lifetime < t0 + seconds || e->lifetime > t1 + seconds)
		fail_msg("lifetime %u, want now+%u in [%u, %u]", e->lifetime, seconds, t0 + seconds,
			 t1 + seconds);
}

static void backend_add(__u32 id, const char *ip, __u16 port, __u8 proto)
{
	struct lb4_backend be = {
	    .address = ip4(ip), .port = htons(port), .proto = proto, .state = BACKEND_STATE_ACTIVE};

	assert_int_equal(bpf_map_update_elem(MAP(lb4_backends), &id, &be, BPF_ANY), 0);
}

struct svc_opts {
	__u8 scope;
	__u8 flags;
	__u8 flags2;
	__u32 affinity_timeout;
};

/* Frontend ip:port/proto with backends ids[0..n), in the agent's order:
 * slots, the service entry, rev-NAT. */
static void service_add_opts(const char *ip, __u16 port, __u8 proto, __u32 rev_nat_index,
			     const __u32 *ids, __u16 n, const struct svc_opts *o)
{
	struct lb4_key key = {
	    .address = ip4(ip), .dport = htons(port), .proto = proto, .scope = o->scope};
	struct lb4_service svc = {.rev_nat_index = rev_nat_index};
	struct lb4_reverse_nat rnat = {.address = key.address, .port = key.dport};
	int fd = MAP(lb4_services);

	for (__u16 i = 1; i <= n; i++) {
		key.backend_slot = i;
		svc.backend_id = ids[i - 1];
		assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	}
	key.backend_slot = 0;
	memset(&svc, 0, sizeof(svc));
	svc.affinity_timeout = o->affinity_timeout;
	svc.count = n;
	svc.rev_nat_index = rev_nat_index;
	svc.flags = o->flags;
	svc.flags2 = o->flags2;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(MAP(lb4_reverse_nat), &rev_nat_index, &rnat, BPF_ANY),
			 0);
}

static void service_add(const char *ip, __u16 port, __u8 proto, __u32 rev_nat_index,
			const __u32 *ids, __u16 n)
{
	struct svc_opts o = {.flags = SVC_FLAG_CLUSTER_IP};

	service_add_opts(ip, port, proto, rev_nat_index, ids, n, &o);
}

static struct nat4_key nat_key(const char *saddr, __u16 sport, const char *daddr, __u16 dport,
			       __u8 proto, __u8 dir)
{
	struct nat4_key k = {
	    .daddr = ip4(daddr),
	    .saddr = ip4(saddr),
	    .dport = htons(dport),
	    .sport = htons(sport),
	    .nexthdr = proto,
	    .dir = dir,
	};

	return k;
}

static void assert_nat_pair(const struct flow *f, __u16 nat_port);

/* ---- the packet crafter itself ------------------------------------------ */

/* Known answer (the IPv4 header of RFC 1071-style textbook examples) and a
 * corruption of each checksummed field is caught: the verifier the other
 * tests rely on can fail. */
static void test_pkt_craft_checksums(void **state)
{
	static const __u8 hdr[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
				     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	static const __u8 protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};
	__u8 buf[PKT_MAX];
	struct pkt_view v;

	(void)state;
	assert_int_equal(pkt_csum_fold(pkt_csum_add(0, hdr, sizeof(hdr))), 0xb861);
	for (size_t i = 0; i < sizeof(protos); i++) {
		struct flow f = {POD_A, 1234, WORLD, 443, protos[i]};
		struct pkt_spec s = spec_of(&f, PKT_SYN);
		size_t len;

		s.opt_len = 8;
		len = build(&s, buf);
		assert_null(pkt_verify(buf, len, &v));
		assert_int_equal(v.l4, ETH_HLEN + 28);
		assert_int_equal(v.sport, 1234);
		buf[ETH_HLEN + 8]--; /* TTL: IP checksum */
		assert_non_null(pkt_verify(buf, len, &v));
		buf[ETH_HLEN + 8]++;
		buf[len - 1] ^= 0x40; /* payload: L4 checksum */
		assert_non_null(pkt_verify(buf, len, &v));
		buf[len - 1] ^= 0x40;
		if (protos[i] != IPPROTO_ICMP) {
			buf[ETH_HLEN + 12] ^= 1; /* saddr: pseudo header */
			pkt_fix_ip_csum((struct iphdr *)(buf + ETH_HLEN));
			assert_non_null(pkt_verify(buf, len, &v));
		}
	}
}

/* ---- parsing and malformed packets -------------------------------------- */

/* A good TCP packet from pod A to pod B, for tests to break. */
static size_t good_tcp(__u8 *buf)
{
	struct flow f = {POD_A, 1234, POD_B, 8080, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);

	return build(&s, buf);
}

/* Runs @pkt on all four programs: each drops it as DROP_INVALID_HDR, counted
 * in its own direction with the packet's bytes, and creates no state. */
static void assert_invalid_everywhere(const __u8 *pkt, size_t len)
{
	struct run r;

	for (int id = 0; id < NPROGS; id++) {
		struct metrics_value before = metric_dir(DROP_INVALID_HDR, prog_dir[id]), after;

		run((enum prog_id)id, pkt, len, &r);
		if (r.verdict != TC_ACT_SHOT)
			fail_msg("%s: verdict %d, want TC_ACT_SHOT", prog_name[id], r.verdict);
		after = metric_dir(DROP_INVALID_HDR, prog_dir[id]);
		if (after.packets != before.packets + 1 || after.bytes != before.bytes + len)
			fail_msg(
			    "%s: DROP_INVALID_HDR dir %u counted %llu/%llu bytes, want +1/+%zu",
			    prog_name[id], prog_dir[id],
			    (unsigned long long)(after.packets - before.packets),
			    (unsigned long long)(after.bytes - before.bytes), len);
	}
	assert_int_equal(map_count(MAP(ct4_tcp)) + map_count(MAP(ct4_any)), 0);
	assert_int_equal(map_count(MAP(nat4)), 0);
}

/* Frames shorter than Ethernet (14 bytes), and IPv4 frames shorter than
 * Ethernet + a 20-byte IPv4 header, cannot be tested here: BPF_PROG_TEST_RUN
 * refuses them with EINVAL before any program runs (kernel 6.18), as the
 * stack never hands such an skb to tc. Every header the kernel does not check
 * (ihl, tot_len, the L4 headers) is tested below. */
static void test_parse_ihl_below_5(void **state)
{
	__u8 buf[PKT_MAX];
	size_t len = good_tcp(buf);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);

	(void)state;
	ip->ihl = 4;
	pkt_fix_ip_csum(ip);
	assert_invalid_everywhere(buf, len);
}

static void test_parse_tot_len_below_ihl(void **state)
{
	__u8 buf[PKT_MAX];
	size_t len = good_tcp(buf);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);

	(void)state;
	ip->tot_len = htons(19);
	pkt_fix_ip_csum(ip);
	assert_invalid_everywhere(buf, len);
}

static void test_parse_tot_len_beyond_packet(void **state)
{
	__u8 buf[PKT_MAX];
	size_t len = good_tcp(buf);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);

	(void)state;
	ip->tot_len = htons(ntohs(ip->tot_len) + 1);
	pkt_fix_ip_csum(ip);
	assert_invalid_everywhere(buf, len);
}

/* BIG TCP: the stack builds IPv4 GSO packets over 64 KiB with tot_len 0 (the
 * length is the skb's). BPF_PROG_TEST_RUN takes at most a page of data, so the
 * packet here is small; what is checked is the rule: with gso_size set,
 * tot_len 0 stands for the frame's length and the packet is delivered to the
 * local pod as it came (tot_len still 0, the payload untouched); without
 * gso_size, tot_len 0 is a malformed header. The >64 KiB packets themselves
 * are in tests/e2e/test_big_tcp.py. */
static void test_parse_big_tcp_tot_len_zero(void **state)
{
	struct flow f = {POD_A, 45010, POD_B, 8080, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_ACK | PKT_PSH);
	struct iphdr *ip, *out_ip;
	__u8 buf[PKT_MAX];
	size_t len, l4;
	struct run r;

	(void)state;
	s.payload_len = 1200;
	len = build(&s, buf);
	ip = (struct iphdr *)(buf + ETH_HLEN);
	ip->tot_len = 0;
	pkt_fix_ip_csum(ip);
	l4 = ETH_HLEN + ip->ihl * 4;

	run_gso(FROM_CONTAINER, buf, len, 400, 3, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(r.len, len);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	out_ip = (struct iphdr *)(r.out + ETH_HLEN);
	assert_int_equal(out_ip->tot_len, 0);
	assert_memory_equal(r.out + l4, buf + l4, len - l4);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_dir(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS).bytes, len);
	assert_int_equal(metric_dir(DROP_INVALID_HDR, METRIC_DIR_EGRESS).packets, 0);

	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric_dir(DROP_INVALID_HDR, METRIC_DIR_EGRESS).packets, 1);
}

/* IPv4 says the packet ends inside the L4 header (the frame may be longer:
 * Ethernet padding must not be read as header). */
static void truncate_l4(__u8 proto, size_t keep)
{
	struct flow f = {POD_A, 1234, POD_B, 8080, proto};
	struct pkt_spec s = spec_of(&f, PKT_ACK);
	__u8 buf[PKT_MAX];
	size_t len;
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);

	s.payload_len = 0;
	len = build(&s, buf);
	ip->tot_len = htons(sizeof(*ip) + keep);
	pkt_fix_ip_csum(ip);
	/* IP and frame agree ... */
	assert_invalid_everywhere(buf, ETH_HLEN + sizeof(*ip) + keep);
	/* ... or the frame carries padding past the IP length. */
	assert_invalid_everywhere(buf, len);
}

static void test_parse_truncated_tcp(void **state)
{
	(void)state;
	truncate_l4(IPPROTO_TCP, 10);
	truncate_l4(IPPROTO_TCP, 19);
}

static void test_parse_truncated_udp(void **state)
{
	(void)state;
	truncate_l4(IPPROTO_UDP, 4);
	truncate_l4(IPPROTO_UDP, 7);
}

static void test_parse_truncated_icmp(void **state)
{
	(void)state;
	truncate_l4(IPPROTO_ICMP, 2);
	truncate_l4(IPPROTO_ICMP, 7);
}

/* Any fragment, first (MF) or later (offset), of a pod's UDP flow to another
 * pod: dropped as DROP_FRAG_NOT_SUPPORTED by each program in @progs. */
static void assert_fragments_dropped(const enum prog_id *progs, size_t n)
{
	static const __u16 frags[] = {PKT_IP_MF, PKT_IP_MF | 185, 185};
	struct flow f = {POD_A, 5000, POD_B, 53, IPPROTO_UDP};
	__u8 buf[PKT_MAX];
	struct run r;

	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		struct pkt_spec s = spec_of(&f, 0);
		size_t len;

		s.frag = frags[i];
		len = build(&s, buf);
		for (size_t j = 0; j < n; j++) {
			enum prog_id id = progs[j];
			__u64 before = metric(DROP_FRAG_NOT_SUPPORTED, prog_dir[id]);

			run(id, buf, len, &r);
			if (r.verdict != TC_ACT_SHOT)
				fail_msg("%s: fragment 0x%x: verdict %d, want TC_ACT_SHOT",
					 prog_name[id], frags[i], r.verdict);
			if (metric(DROP_FRAG_NOT_SUPPORTED, prog_dir[id]) != before + 1)
				fail_msg("%s: fragment 0x%x not counted as DROP_FRAG_NOT_SUPPORTED",
					 prog_name[id], frags[i]);
		}
	}
	assert_int_equal(map_count(MAP(ct4_any)), 0);
}

static void test_parse_fragments_dropped_from(void **state)
{
	static const enum prog_id progs[] = {FROM_CONTAINER, FROM_NETDEV};

	(void)state;
	assert_fragments_dropped(progs, 2);
}

/* The same at the egress programs (the contract: any fragment is dropped). */
static void test_parse_fragments_dropped_to(void **state)
{
	static const enum prog_id progs[] = {TO_CONTAINER, TO_NETDEV};

	(void)state;
	assert_fragments_dropped(progs, 2);
}

/* ARP and IPv6 go to the stack untouched, counted REASON_TO_STACK. */
static void test_parse_non_ipv4_to_stack(void **state)
{
	static const __u16 types[] = {ETH_P_ARP, ETH_P_IPV6};
	__u8 buf[PKT_MAX];
	struct run r;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct pkt_spec s = {.eth_proto = types[i], .payload_len = 60};
		size_t len;

		memcpy(s.src_mac, MAC_POD_A, 6);
		memset(s.dst_mac, 0xff, 6);
		len = build(&s, buf);
		for (int id = 0; id < NPROGS; id++) {
			__u64 before = metric(REASON_TO_STACK, prog_dir[id]);

			run((enum prog_id)id, buf, len, &r);
			if (r.verdict != TC_ACT_OK)
				fail_msg("%s: EtherType 0x%04x: verdict %d, want TC_ACT_OK",
					 prog_name[id], types[i], r.verdict);
			assert_int_equal(r.len, len);
			assert_memory_equal(r.out, buf, len);
			if (metric(REASON_TO_STACK, prog_dir[id]) != before + 1)
				fail_msg("%s: EtherType 0x%04x not counted REASON_TO_STACK",
					 prog_name[id], types[i]);
		}
	}
}

/* GRE from pod A to pod B: not parsed beyond IP, routed on L3 to the pod. */
static void test_parse_unknown_l4_routed(void **state)
{
	struct flow f = {POD_A, 0, POD_B, 0, 47};
	struct pkt_spec s = spec_of(&f, 0);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;

	(void)state;
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.proto, 47);
	assert_int_equal(r.v.daddr, ip4(POD_B));
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	assert_memory_equal(r.out + r.v.l4, buf + r.v.l4, s.payload_len);
	assert_int_equal(metric(REASON_UNKNOWN_L4_PASSED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_any_dir(DROP_INVALID_HDR), 0);
}

/* IPv4 options (ihl 6 and 15): TCP to a service is DNATed with the ports
 * found after the options, the options are kept, checksums stay valid. */
static void test_parse_ip_options_dnat(void **state)
{
	static const __u8 opt_lens[] = {4, 40};
	__u32 id = 1;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);
	for (size_t i = 0; i < 2; i++) {
		struct flow f = {POD_A, 3000 + i, VIP, 80, IPPROTO_TCP};
		struct pkt_spec s = spec_of(&f, PKT_SYN);
		__u8 buf[PKT_MAX];
		size_t len;
		struct run r;

		s.opt_len = opt_lens[i];
		len = build(&s, buf);
		run(FROM_CONTAINER, buf, len, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		assert_int_equal(r.v.ip->ihl, 5 + opt_lens[i] / 4);
		assert_memory_equal(r.out + ETH_HLEN + 20, buf + ETH_HLEN + 20, opt_lens[i]);
		assert_src(&r, POD_A, 3000 + i);
		assert_dst(&r, POD_B, 8080);
		assert_memory_equal(r.out + r.v.l4 + PKT_TCP_HLEN, buf + r.v.l4 + PKT_TCP_HLEN,
				    s.payload_len);
	}
	assert_int_equal(metric(REASON_LB_XLATED, METRIC_DIR_EGRESS), 2);
}

/* IPv4 options on a packet masqueraded at to_netdev: the source port after
 * the options is the one translated, and the reply finds its way back. */
static void test_parse_ip_options_snat(void **state)
{
	struct flow f = {POD_A, 46100, WORLD, 443, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len;
	struct run r;
	__u16 port;

	(void)state;
	s.opt_len = 12;
	len = build(&s, buf);
	run(TO_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_valid(&r);
	assert_int_equal(r.v.ip->ihl, 8);
	assert_int_equal(r.v.saddr, ip4(NODE_IP));
	assert_dst(&r, WORLD, 443);
	port = r.v.sport;
	assert_in_range(port, NAT_MIN, NAT_MAX);
	assert_nat_pair(&f, port);

	s.saddr = ip4(WORLD);
	s.daddr = ip4(NODE_IP);
	s.sport = 443;
	s.dport = port;
	s.tcp_flags = PKT_SYN | PKT_ACK;
	len = build(&s, buf);
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_dst(&r, POD_A, 46100);
}

/* ---- conntrack ---------------------------------------------------------- */

/* SYN from pod A to pod B creates A's CT_EGRESS entry (tuple as on the wire)
 * with the SYN lifetime; the SYN-ACK from B counts as the responder's on the
 * same entry and creates none of its own; when both sides sent a non-SYN the
 * entry is established. */
static void test_ct_tcp_handshake(void **state)
{
	struct flow f = {POD_A, 41000, POD_B, 8080, IPPROTO_TCP};
	struct flow rf = reversed(&f);
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t syn_len = build(&s, buf);
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	t0 = now_sec();
	run(FROM_CONTAINER, buf, syn_len, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_lifetime(&e, t0, t1, LT_SYN);
	assert_int_equal(e.tx_packets, 1);
	assert_int_equal(e.tx_bytes, syn_len);
	assert_int_equal(e.rx_packets, 0);
	assert_true(e.tx_flags_seen & PKT_SYN);
	assert_false(e.flags & (CT_F_SEEN_NON_SYN | CT_F_TX_CLOSING | CT_F_RX_CLOSING));
	assert_int_equal(e.rev_nat_index, 0);
	assert_int_equal(ct_get(&f, CT_INGRESS, &e), -ENOENT);

	/* B answers from its own device. */
	send_flow(FROM_CONTAINER, fx.if_lxcb, &rf, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(ct_get(&rf, CT_EGRESS, &e), -ENOENT);
	e = ct_must(&f, CT_EGRESS);
	assert_int_equal(e.tx_packets, 1);
	assert_int_equal(e.rx_packets, 1);
	assert_true(e.rx_bytes > 0);
	assert_int_equal(e.rx_flags_seen & (PKT_SYN | PKT_ACK), PKT_SYN | PKT_ACK);
	assert_false(e.flags & CT_F_SEEN_NON_SYN);

	/* ACK from A, then data from B: established. */
	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	t0 = now_sec();
	send_flow(FROM_CONTAINER, fx.if_lxcb, &rf, PKT_ACK | PKT_PSH, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_true(e.flags & CT_F_SEEN_NON_SYN);
	assert_lifetime(&e, t0, t1, LT_TCP);
	assert_int_equal(e.tx_packets, 2);
	assert_int_equal(e.rx_packets, 2);
	assert_int_equal(map_count(MAP(ct4_tcp)), 1);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 4);
}

/* Only one side sending non-SYN packets is not established yet. */
static void test_ct_one_sided_not_established(void **state)
{
	struct flow f = {POD_A, 41001, POD_B, 8080, IPPROTO_TCP};
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
	t1 = now_sec();
	e = ct_must(&f, CT_EGRESS);
	assert_false(e.flags & CT_F_SEEN_NON_SYN);
	assert_lifetime(&e, t0, t1, LT_SYN);
}

/* FIN from the initiator and RST from the responder: close lifetime and the
 * closing flags of each side. */
static void test_ct_fin_rst_close(void **state)
{
	struct flow f = {POD_A, 41002, POD_B, 8080, IPPROTO_TCP};
	struct flow rf = reversed(&f);
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &rf, PKT_SYN | PKT_ACK, &r);
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &rf, PKT_ACK, &r);

	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &f, PKT_FIN | PKT_ACK, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_true(e.flags & CT_F_TX_CLOSING);
	assert_false(e.flags & CT_F_RX_CLOSING);
	assert_lifetime(&e, t0, t1, LT_CLOSE);

	send_flow(FROM_CONTAINER, fx.if_lxcb, &rf, PKT_RST, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_int_equal(e.flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING),
			 CT_F_TX_CLOSING | CT_F_RX_CLOSING);
	assert_true(e.rx_flags_seen & PKT_RST);
	assert_true(e.lifetime <= now_sec() + LT_CLOSE);
}

/* A SYN on a closing entry reopens it: REASON_CT_REOPENED, closing flags
 * cleared, SYN lifetime again. */
static void test_ct_syn_reopens_closing(void **state)
{
	struct flow f = {POD_A, 41003, POD_B, 8080, IPPROTO_TCP};
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	send_flow(FROM_CONTAINER, 0, &f, PKT_RST, &r);
	e = ct_must(&f, CT_EGRESS);
	assert_true(e.flags & CT_F_TX_CLOSING);
	assert_int_equal(metric(REASON_CT_REOPENED, METRIC_DIR_EGRESS), 0);

	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_false(e.flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING));
	assert_lifetime(&e, t0, t1, LT_SYN);
	assert_int_equal(metric(REASON_CT_REOPENED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(map_count(MAP(ct4_tcp)), 1);
}

/* UDP and ICMP echo go to ct4_any with the non-TCP lifetime; the echo id is
 * both ports; the reply counts as rx on the same entry. */
static void test_ct_udp_icmp_any(void **state)
{
	struct flow u = {POD_A, 5353, POD_B, 53, IPPROTO_UDP};
	struct flow ru = reversed(&u);
	struct flow ic = {POD_A, 0x4242, POD_B, 0x4242, IPPROTO_ICMP};
	struct pkt_spec s = spec_of(&ic, 0);
	__u8 buf[PKT_MAX];
	size_t len;
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &u, 0, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&u, CT_EGRESS);
	assert_lifetime(&e, t0, t1, LT_ANY);
	assert_int_equal(e.tx_packets, 1);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &ru, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&u, CT_EGRESS);
	assert_int_equal(e.rx_packets, 1);
	assert_int_equal(ct_get(&ru, CT_EGRESS, &e), -ENOENT);

	len = build(&s, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	e = ct_must(&ic, CT_EGRESS);
	assert_int_equal(e.tx_packets, 1);
	s.saddr = ip4(POD_B);
	s.daddr = ip4(POD_A);
	s.icmp_type = ICMP_ECHOREPLY;
	len = build(&s, buf);
	run_on(FROM_CONTAINER, fx.if_lxcb, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&ic, CT_EGRESS);
	assert_int_equal(e.rx_packets, 1);
	assert_int_equal(map_count(MAP(ct4_any)), 2);
	assert_int_equal(map_count(MAP(ct4_tcp)), 0);
}

/* CONFIG lifetimes of 0 mean ct.h's defaults. */
static void test_ct_default_lifetimes(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow t = {POD_A, 41004, POD_B, 8080, IPPROTO_TCP};
	struct flow u = {POD_A, 5354, POD_B, 53, IPPROTO_UDP};
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	cfg.ct_lifetime_tcp = cfg.ct_lifetime_syn = 0;
	cfg.ct_lifetime_close = cfg.ct_lifetime_any = 0;
	dp_load(&cfg);

	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &t, PKT_SYN, &r);
	send_flow(FROM_CONTAINER, 0, &u, 0, &r);
	t1 = now_sec();
	e = ct_must(&t, CT_EGRESS);
	assert_lifetime(&e, t0, t1, CT_LIFETIME_SYN_DEFAULT);
	e = ct_must(&u, CT_EGRESS);
	assert_lifetime(&e, t0, t1, CT_LIFETIME_ANY_DEFAULT);

	send_flow(FROM_CONTAINER, fx.if_lxcb, &(struct flow){POD_B, 8080, POD_A, 41004, 6},
		  PKT_SYN | PKT_ACK, &r);
	send_flow(FROM_CONTAINER, 0, &t, PKT_ACK, &r);
	t0 = now_sec();
	send_flow(FROM_CONTAINER, fx.if_lxcb, &(struct flow){POD_B, 8080, POD_A, 41004, 6}, PKT_ACK,
		  &r);
	t1 = now_sec();
	e = ct_must(&t, CT_EGRESS);
	assert_lifetime(&e, t0, t1, CT_LIFETIME_TCP_DEFAULT);
	t0 = now_sec();
	send_flow(FROM_CONTAINER, 0, &t, PKT_FIN | PKT_ACK, &r);
	t1 = now_sec();
	e = ct_must(&t, CT_EGRESS);
	assert_lifetime(&e, t0, t1, CT_LIFETIME_CLOSE_DEFAULT);
}

/* An entry past its lifetime is gone for packets before the GC deletes it: a
 * packet on its tuple starts a new entry (fresh counters and state), it is
 * not booked on the old flow's. */
static void test_ct_expired_entry_is_not_reused(void **state)
{
	struct flow f = {POD_A, 41100, POD_B, 8080, IPPROTO_TCP};
	struct ct4_key k = ct_key(&f, CT_EGRESS);
	struct ct4_entry e;
	struct run r;

	(void)state;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
	e = ct_must(&f, CT_EGRESS);
	assert_int_equal(e.tx_packets, 2);
	assert_int_equal(metric(REASON_CT_NEW, METRIC_DIR_EGRESS), 1);

	/* Still live a second from now: booked on the entry. */
	e.lifetime = now_sec() + 1;
	assert_int_equal(bpf_map_update_elem(ct_map(f.proto), &k, &e, BPF_EXIST), 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
	assert_int_equal(ct_must(&f, CT_EGRESS).tx_packets, 3);

	/* Expired (the GC has not run): a new entry from this packet on. */
	e = ct_must(&f, CT_EGRESS);
	e.lifetime = now_sec() - 2;
	assert_int_equal(bpf_map_update_elem(ct_map(f.proto), &k, &e, BPF_EXIST), 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	e = ct_must(&f, CT_EGRESS);
	assert_int_equal(e.tx_packets, 1);
	assert_true(e.lifetime >= now_sec());
	assert_int_equal(metric(REASON_CT_NEW, METRIC_DIR_EGRESS), 2);
}

/* A connection from outside to pod A arriving on the native device: a
 * CT_INGRESS entry; A's reply is counted on it, makes no CT_EGRESS entry,
 * and is not masqueraded on the way out. */
static void test_ct_ingress_from_netdev(void **state)
{
	struct flow f = {CLIENT, 5555, POD_A, 80, IPPROTO_TCP};
	struct flow rf = reversed(&f);
	struct ct4_entry e;
	struct run r;
	__u32 t0, t1;

	(void)state;
	t0 = now_sec();
	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	t1 = now_sec();
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_dst(&r, POD_A, 80);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_INGRESS), 1);
	e = ct_must(&f, CT_INGRESS);
	assert_lifetime(&e, t0, t1, LT_SYN);
	assert_int_equal(e.tx_packets, 1);

	send_flow(FROM_CONTAINER, fx.if_lxca, &rf, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_EGRESS), 1);
	e = ct_must(&f, CT_INGRESS);
	assert_int_equal(e.rx_packets, 1);
	assert_int_equal(ct_get(&rf, CT_EGRESS, &e), -ENOENT);

	/* Leaving through the native device: a reply, so never masqueraded. */
	send_flow(TO_NETDEV, 0, &rf, PKT_ACK, &r);
	assert_int_not_equal(r.verdict, TC_ACT_SHOT);
	assert_valid(&r);
	assert_src(&r, POD_A, 80);
	assert_dst(&r, CLIENT, 5555);
	assert_int_equal(map_count(MAP(nat4)), 0);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 0);
}

/* ---- service load balancing --------------------------------------------- */

/* Pod A to a ClusterIP whose one backend is pod B: DNAT with valid checksums,
 * delivered to B; the CT_SERVICE entry names the backend, the DNATed
 * CT_EGRESS entry carries the rev-NAT index. B's reply comes back from the
 * VIP. */
static void test_lb_dnat_and_reply(void **state)
{
	struct flow f = {POD_A, 42000, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 42000, POD_B, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&post);
	struct ct4_entry e;
	struct run r;
	__u32 id = 1;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, POD_A, 42000);
	assert_dst(&r, POD_B, 8080);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	assert_int_equal(metric(REASON_LB_XLATED, METRIC_DIR_EGRESS), 1);
	e = ct_must(&f, CT_SERVICE);
	assert_int_equal(e.backend_id, 1);
	assert_int_equal(e.rev_nat_index, 7);
	e = ct_must(&post, CT_EGRESS);
	assert_int_equal(e.rev_nat_index, 7);

	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, VIP, 80);
	assert_dst(&r, POD_A, 42000);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_EGRESS), 1);
	e = ct_must(&post, CT_EGRESS);
	assert_int_equal(e.rx_packets, 1);
}

/* UDP through a ClusterIP: DNAT and reverse with valid UDP checksums. */
static void test_lb_udp(void **state)
{
	struct flow f = {POD_A, 5300, VIP, 53, IPPROTO_UDP};
	struct flow reply = {POD_B, 5353, POD_A, 5300, IPPROTO_UDP};
	struct run r;
	__u32 id = 2;

	(void)state;
	backend_add(id, POD_B, 5353, IPPROTO_UDP);
	service_add(VIP, 53, IPPROTO_UDP, 8, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_dst(&r, POD_B, 5353);
	assert_int_not_equal(*(__u16 *)(r.out + r.v.l4 + 6), 0);
	assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, 2);

	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, VIP, 53);
	assert_dst(&r, POD_A, 5300);
}

/* A UDP datagram without a checksum (0) is translated and still has none: a
 * rewritten 0 would be a wrong checksum, not "no checksum". */
static void test_lb_udp_zero_checksum(void **state)
{
	struct flow f = {POD_A, 5301, VIP, 53, IPPROTO_UDP};
	struct pkt_spec s = spec_of(&f, 0);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct pkt_view v;
	struct run r;
	__u32 id = 2;

	(void)state;
	backend_add(id, POD_B, 5353, IPPROTO_UDP);
	service_add(VIP, 53, IPPROTO_UDP, 8, &id, 1);
	assert_int_equal(pkt_parse(buf, len, &v), 0);
	memset(buf + v.l4 + 6, 0, 2);

	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_dst(&r, POD_B, 5353);
	assert_int_equal(r.out[r.v.l4 + 6] | r.out[r.v.l4 + 7], 0);
}

/* The backend a flow got is kept for its later packets although the service
 * now lists only another backend. */
static void test_lb_flow_keeps_backend(void **state)
{
	struct flow f = {POD_A, 42001, VIP, 80, IPPROTO_TCP};
	__u32 ids[2] = {1, 2};
	struct lb4_key key = {.address = ip4(VIP), .dport = htons(80), .proto = IPPROTO_TCP};
	struct lb4_service slot = {.rev_nat_index = 7};
	struct run r;
	__be32 first;
	__u32 other;

	(void)state;
	backend_add(1, POD_B, 8080, IPPROTO_TCP);
	backend_add(2, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, ids, 2);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	first = r.v.daddr;
	assert_true(first == ip4(POD_B) || first == ip4(REMOTE_POD));
	other = first == ip4(POD_B) ? 2 : 1;

	/* The agent replaces the backends: only the other one is left. */
	key.backend_slot = 1;
	slot.backend_id = other;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_services), &key, &slot, BPF_ANY), 0);
	key.backend_slot = 0;
	assert_int_equal(bpf_map_lookup_elem(MAP(lb4_services), &key, &slot), 0);
	slot.count = 1;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_services), &key, &slot, BPF_ANY), 0);
	key.backend_slot = 2;
	assert_int_equal(bpf_map_delete_elem(MAP(lb4_services), &key), 0);

	for (int i = 0; i < 4; i++) {
		send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		assert_int_equal(r.v.daddr, first);
	}
	/* A new flow gets the remaining backend. */
	f.sport++;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_valid(&r);
	assert_int_not_equal(r.v.daddr, first);
}

/* A client port reused: a connection straight to pod B on the tuple an
 * earlier connection through the ClusterIP had after its DNAT, then through
 * the ClusterIP again. B's answers must come from the address each connection
 * was made to, so the flow entry takes the translation of the connection now
 * using it (a stale rev-NAT index turned a direct SYN-ACK into one from the
 * VIP, which the client answered with a reset, on every retry). */
static void test_lb_tuple_reused_direct_and_through_service(void **state)
{
	struct flow svc = {POD_A, 42010, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 42010, POD_B, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&post);
	struct run r;
	__u32 id = 1;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);

	send_flow(FROM_CONTAINER, 0, &svc, PKT_SYN, &r);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_src(&r, VIP, 80);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_FIN | PKT_ACK, &r);
	send_flow(FROM_CONTAINER, 0, &svc, PKT_FIN | PKT_ACK, &r);

	/* Straight to B from the same port. */
	send_flow(FROM_CONTAINER, 0, &post, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, POD_B, 8080);
	assert_int_equal(ct_must(&post, CT_EGRESS).rev_nat_index, 0);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_FIN | PKT_ACK, &r);
	send_flow(FROM_CONTAINER, 0, &post, PKT_FIN | PKT_ACK, &r);

	/* Through the ClusterIP again: answered from the VIP again. */
	send_flow(FROM_CONTAINER, 0, &svc, PKT_SYN, &r);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_valid(&r);
	assert_src(&r, VIP, 80);
	assert_int_equal(ct_must(&post, CT_EGRESS).rev_nat_index, 7);
}

/* The reply of a remote backend arrives on the native device and leaves
 * towards pod A from the VIP. */
static void test_lb_remote_backend_reply_at_netdev(void **state)
{
	struct flow f = {POD_A, 42002, VIP, 80, IPPROTO_TCP};
	struct flow reply = {REMOTE_POD, 8080, POD_A, 42002, IPPROTO_TCP};
	struct run r;
	__u32 id = 3;

	(void)state;
	backend_add(id, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 9, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_dst(&r, REMOTE_POD, 8080);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_EGRESS), 1);

	send_flow(FROM_NETDEV, 0, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, VIP, 80);
	assert_dst(&r, POD_A, 42002);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_INGRESS), 1);
}

/* No backends: refused (a RST, DROP_SVC_NO_BACKEND_REJECTED; the reject
 * tests below look at the answer); with a traffic policy of Local dropped as
 * DROP_NO_LOCAL_BACKEND, as kube-proxy drops those. */
static void test_lb_no_backend(void **state)
{
	struct svc_opts ext = {.flags = SVC_FLAG_CLUSTER_IP | SVC_FLAG_EXT_LOCAL};
	struct svc_opts int_ext = {.flags = SVC_FLAG_CLUSTER_IP | SVC_FLAG_INT_LOCAL};
	struct svc_opts int_int = {.scope = LB_SCOPE_INT,
				   .flags = SVC_FLAG_CLUSTER_IP | SVC_FLAG_INT_LOCAL};
	struct flow f = {POD_A, 42003, VIP, 80, IPPROTO_TCP};
	struct run r;

	(void)state;
	service_add(VIP, 80, IPPROTO_TCP, 7, NULL, 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS), 1);

	service_add_opts("10.96.0.11", 80, IPPROTO_TCP, 10, NULL, 0, &ext);
	f.dst = "10.96.0.11";
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_LOCAL_BACKEND, METRIC_DIR_EGRESS), 1);

	/* internalTrafficPolicy: Local, in whichever scope the lookup uses. */
	service_add_opts("10.96.0.12", 80, IPPROTO_TCP, 11, NULL, 0, &int_ext);
	service_add_opts("10.96.0.12", 80, IPPROTO_TCP, 11, NULL, 0, &int_int);
	f.dst = "10.96.0.12";
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_LOCAL_BACKEND, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 0);
	assert_int_equal(map_count(MAP(ct4_tcp)), 0);
}

static void nodeport_add(__u16 port, __u32 rev, __u32 *ids, __u16 n, __u8 extra_flags);

/* A TCP segment that is not a bare SYN, to a frontend with backends, with no
 * flow entry (it expired, was flushed, or never was): dropped as
 * DROP_SVC_INVALID_STATE rather than handed to a backend that knows nothing
 * of it, from a pod and from outside; the SYN then opens the flow and its
 * later segments pass. */
static void test_lb_invalid_state_dropped(void **state)
{
	struct flow f = {POD_A, 42020, VIP, 80, IPPROTO_TCP};
	struct flow np = {CLIENT, 5620, NODE_IP, 30085, IPPROTO_TCP};
	static const __u8 bad[] = {PKT_ACK, PKT_ACK | PKT_PSH, PKT_FIN | PKT_ACK, PKT_SYN | PKT_ACK,
				   PKT_RST};
	struct run r;
	__u32 id = 1, id2 = 2;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);
	backend_add(id2, POD_B, 8081, IPPROTO_TCP);
	nodeport_add(30085, 23, &id2, 1, 0);

	for (size_t i = 0; i < sizeof(bad); i++) {
		send_flow(FROM_CONTAINER, 0, &f, bad[i], &r);
		assert_int_equal(r.verdict, TC_ACT_SHOT);
		send_flow(FROM_NETDEV, 0, &np, bad[i], &r);
		assert_int_equal(r.verdict, TC_ACT_SHOT);
	}
	assert_int_equal(metric(DROP_SVC_INVALID_STATE, METRIC_DIR_EGRESS), sizeof(bad));
	assert_int_equal(metric(DROP_SVC_INVALID_STATE, METRIC_DIR_INGRESS), sizeof(bad));
	assert_int_equal(metric_any_dir(REASON_LB_XLATED), 0);
	assert_int_equal(map_count(MAP(ct4_tcp)), 0);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK | PKT_PSH, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_NETDEV, 0, &np, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, 0, &np, PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8081);
	assert_int_equal(metric_any_dir(DROP_SVC_INVALID_STATE), 2 * sizeof(bad));
}

/* sessionAffinity: ClientIP: new flows of one client all go to one backend,
 * recorded in lb4_affinity. */
static void test_lb_affinity(void **state)
{
	struct svc_opts o = {.flags = SVC_FLAG_CLUSTER_IP | SVC_FLAG_AFFINITY,
			     .affinity_timeout = 300};
	struct lb4_affinity_key ak = {.client = ip4(POD_A), .rev_nat_index = 12};
	struct lb4_affinity_value av;
	__u32 ids[2] = {21, 22};
	__be32 first = 0;
	struct run r;

	(void)state;
	backend_add(21, POD_B, 8080, IPPROTO_TCP);
	backend_add(22, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add_opts("10.96.0.20", 80, IPPROTO_TCP, 12, ids, 2, &o);

	for (__u16 i = 0; i < 16; i++) {
		struct flow f = {POD_A, 43000 + i, "10.96.0.20", 80, IPPROTO_TCP};

		send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		if (!i)
			first = r.v.daddr;
		assert_int_equal(r.v.daddr, first);
	}
	assert_int_equal(bpf_map_lookup_elem(MAP(lb4_affinity), &ak, &av), 0);
	assert_int_equal(av.backend_id, first == ip4(POD_B) ? 21 : 22);
	assert_true(av.last_used <= now_sec() && av.last_used + 5 >= now_sec());
}

/* An affinity entry is followed only while the slot it was picked from still
 * names its backend: a backend taken out of the service (slots rewritten, count
 * lowered) but kept in lb4_backends by another service is not. */
static void test_lb_affinity_backend_left_the_service(void **state)
{
	struct svc_opts o = {.flags = SVC_FLAG_CLUSTER_IP | SVC_FLAG_AFFINITY,
			     .affinity_timeout = 300};
	struct lb4_affinity_key ak = {.client = ip4(POD_A), .rev_nat_index = 14};
	struct lb4_affinity_value av = {.last_used = now_sec(), .backend_id = 42,
					.backend_slot = 2};
	struct lb4_key stale = {.address = ip4("10.96.0.40"), .dport = htons(80),
				.proto = IPPROTO_TCP, .backend_slot = 2};
	__u32 ids[2] = {41, 42};
	struct run r;

	(void)state;
	backend_add(41, POD_B, 8080, IPPROTO_TCP);
	backend_add(42, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add_opts("10.96.0.40", 80, IPPROTO_TCP, 14, ids, 2, &o);

	/* While slot 2 names 42, the client sticks to it. */
	assert_int_equal(bpf_map_update_elem(MAP(lb4_affinity), &ak, &av, BPF_ANY), 0);
	for (__u16 i = 0; i < 4; i++) {
		struct flow f = {POD_A, 44000 + i, "10.96.0.40", 80, IPPROTO_TCP};

		send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_dst(&r, REMOTE_POD, 8080);
	}
	/* 42 leaves the service (count 1, slot 2 deleted), backend 42 stays. */
	service_add_opts("10.96.0.40", 80, IPPROTO_TCP, 14, ids, 1, &o);
	assert_int_equal(bpf_map_delete_elem(MAP(lb4_services), &stale), 0);
	for (__u16 i = 0; i < 8; i++) {
		struct flow f = {POD_A, 44100 + i, "10.96.0.40", 80, IPPROTO_TCP};

		send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_dst(&r, POD_B, 8080);
	}
	assert_int_equal(bpf_map_lookup_elem(MAP(lb4_affinity), &ak, &av), 0);
	assert_int_equal(av.backend_id, 41);
	assert_int_equal(av.backend_slot, 1);
}

/* Maglev: the backend comes from the service's table (here every entry names
 * backend 32), not from a random slot. */
static void test_lb_maglev(void **state)
{
	struct svc_opts o = {.flags = SVC_FLAG_CLUSTER_IP, .flags2 = SVC_FLAG2_MAGLEV};
	struct lb4_maglev_table *table = calloc(1, sizeof(*table));
	__u32 ids[2] = {31, 32}, rev = 13;
	struct run r;

	(void)state;
	assert_non_null(table);
	backend_add(31, POD_B, 8080, IPPROTO_TCP);
	backend_add(32, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add_opts("10.96.0.30", 80, IPPROTO_TCP, rev, ids, 2, &o);
	for (int i = 0; i < LB_MAGLEV_TABLE_SIZE; i++)
		table->backend_ids[i] = 32;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_maglev), &rev, table, BPF_ANY), 0);
	free(table);

	for (__u16 i = 0; i < 16; i++) {
		struct flow f = {POD_A, 44000 + i, "10.96.0.30", 80, IPPROTO_TCP};

		send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		assert_dst(&r, REMOTE_POD, 8080);
		assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, 32);
	}
}

/* ---- routing ------------------------------------------------------------ */

/* Pod to pod on the node: redirected with the endpoint's MACs, the IP packet
 * otherwise as sent. */
static void test_route_to_local_endpoint(void **state)
{
	struct flow f = {POD_A, 45000, POD_B, 8080, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;

	(void)state;
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	assert_src(&r, POD_A, 45000);
	assert_dst(&r, POD_B, 8080);
	assert_int_equal(r.len, len);
	assert_memory_equal(r.out + r.v.l4, buf + r.v.l4, len - r.v.l4);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_dir(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS).bytes, len);
}

/* An endpoint without a known pod MAC (all zero) keeps the frame's dst MAC. */
static void test_route_endpoint_without_mac(void **state)
{
	static const __u8 zero[6];
	struct flow f = {POD_A, 45001, "10.1.0.12", 80, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len;
	struct run r;

	(void)state;
	endpoint_add("10.1.0.12", fx.if_lxcb, zero, MAC_LXC_B, 1003);
	len = build(&s, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_macs(&r, s.dst_mac, MAC_LXC_B);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 1);
}

/* To an address the FIB routes (through the gateway): redirected, counted
 * REASON_FIB_FORWARDED. */
static void test_route_fib_forwarded(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 45002, WORLD, 443, IPPROTO_TCP};
	struct run r;

	(void)state;
	cfg.flags &= ~CFG_MASQUERADE;
	dp_load(&cfg);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, POD_A, 45002);
	assert_dst(&r, WORLD, 443);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_EGRESS), 1);
	assert_fib_macs(&r, MAC_GW, MAC_ND0);
}

/* To an address the FIB does not forward (no route; the node's own address):
 * handed to the stack, never dropped. */
static void test_route_fib_not_forwarded(void **state)
{
	struct flow f = {POD_A, 45003, UNROUTED, 80, IPPROTO_TCP};
	struct run r;

	(void)state;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_valid(&r);
	assert_dst(&r, UNROUTED, 80);
	f.dst = NODE_IP;
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_int_equal(metric(REASON_TO_STACK, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric_any_dir(REASON_FIB_FORWARDED), 0);
}

/* Host routing off: even a local pod is left to the stack. */
static void test_route_host_routing_off(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 45004, POD_B, 8080, IPPROTO_TCP};
	struct run r;

	(void)state;
	cfg.flags &= ~CFG_HOST_ROUTING;
	dp_load(&cfg);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_int_equal(metric(REASON_TO_STACK, METRIC_DIR_EGRESS), 1);
}

/* ---- masquerade --------------------------------------------------------- */

static void assert_nat_pair(const struct flow *f, __u16 nat_port)
{
	struct nat4_key k = nat_key(f->src, f->sport, f->dst, f->dport, f->proto, NAT_DIR_EGRESS);
	struct nat4_entry e;

	assert_int_equal(bpf_map_lookup_elem(MAP(nat4), &k, &e), 0);
	assert_int_equal(e.to_addr, ip4(NODE_IP));
	assert_int_equal(ntohs(e.to_port), nat_port);
	k = nat_key(f->dst, f->dport, NODE_IP, nat_port, f->proto, NAT_DIR_INGRESS);
	assert_int_equal(bpf_map_lookup_elem(MAP(nat4), &k, &e), 0);
	assert_int_equal(e.to_addr, ip4(f->src));
	assert_int_equal(ntohs(e.to_port), f->sport);
}

/* Pod A to the world, leaving through the native device: source rewritten to
 * node_ip:port in the NAT range, both NAT entries, the same port for the
 * flow's next packet; the reply is restored to pod A. */
static void masq_roundtrip(__u8 proto)
{
	struct flow f = {POD_A, 46000, WORLD, 443, proto};
	struct run r;
	__u16 port;

	send_flow(TO_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(NODE_IP));
	assert_dst(&r, WORLD, 443);
	port = r.v.sport;
	assert_in_range(port, NAT_MIN, NAT_MAX);
	assert_nat_pair(&f, port);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(map_count(MAP(nat4)), 2);

	send_flow(TO_NETDEV, 0, &f, PKT_ACK, &r);
	assert_valid(&r);
	assert_src(&r, NODE_IP, port);
	assert_int_equal(map_count(MAP(nat4)), 2);

	{
		struct flow reply = {WORLD, 443, NODE_IP, port, proto};

		send_flow(FROM_NETDEV, 0, &reply, PKT_SYN | PKT_ACK, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		assert_src(&r, WORLD, 443);
		assert_dst(&r, POD_A, 46000);
		assert_macs(&r, MAC_POD_A, MAC_LXC_A);
		assert_int_equal(metric(REASON_REV_SNAT, METRIC_DIR_INGRESS), 1);
	}
}

static void test_masq_tcp(void **state)
{
	(void)state;
	masq_roundtrip(IPPROTO_TCP);
}

static void test_masq_udp(void **state)
{
	(void)state;
	masq_roundtrip(IPPROTO_UDP);
}

/* ---- ICMP errors --------------------------------------------------------- */

#define ICMP_QUOTE_LEN 28 /* the quoted IPv4 header and 8 bytes of L4 */

/* An ICMP error (@type, @code, @mtu for fragmentation needed) from @from to
 * @to quoting flow @quoted's packet, every checksum valid. */
static size_t icmp_error(const char *from, const char *to, __u8 type, __u8 code, __u16 mtu,
			 const struct flow *quoted, __u8 *buf)
{
	struct flow outer = {from, 0, to, 0, IPPROTO_ICMP};
	struct pkt_spec q = spec_of(quoted, PKT_ACK), s = spec_of(&outer, 0);
	__u8 qbuf[PKT_MAX];
	struct pkt_view v;
	__be16 be_mtu = htons(mtu);
	size_t len;

	build(&q, qbuf);
	s.icmp_type = type;
	s.payload_len = ICMP_QUOTE_LEN;
	len = build(&s, buf);
	assert_int_equal(pkt_parse(buf, len, &v), 0);
	buf[v.l4 + 1] = code;
	memset(buf + v.l4 + 4, 0, 4);
	memcpy(buf + v.l4 + 6, &be_mtu, 2);
	memcpy(buf + v.l4 + 8, qbuf + ETH_HLEN, ICMP_QUOTE_LEN);
	pkt_fix_l4_csum(buf, &v);
	return len;
}

/* The quoted header of the ICMP error in @r: its checksum is valid and it
 * carries @src:@sport -> @dst:@dport. */
static void assert_quote(struct run *r, const char *src, __u16 sport, const char *dst,
			 __u16 dport)
{
	const __u8 *q = r->out + r->v.l4 + 8;
	struct iphdr ip;
	__u16 ports[2];
	__u32 sum = 0;

	memcpy(&ip, q, sizeof(ip));
	for (size_t i = 0; i < sizeof(ip); i += 2)
		sum += (__u32)q[i] << 8 | q[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		fail_msg("quoted IPv4 header checksum is wrong");
	memcpy(ports, q + sizeof(ip), sizeof(ports));
	assert_ip_port(ip.saddr, ntohs(ports[0]), src, sport);
	assert_ip_port(ip.daddr, ntohs(ports[1]), dst, dport);
}

/* A backend here answers a translated UDP flow with port unreachable: the
 * client gets it from the frontend, quoting the frontend, so its socket (which
 * sent to the VIP) sees ECONNREFUSED. */
static void test_lb_icmp_error_from_backend(void **state)
{
	struct flow f = {POD_A, 5300, VIP, 53, IPPROTO_UDP};
	struct flow post = {POD_A, 5300, POD_B, 5353, IPPROTO_UDP};
	__u8 buf[PKT_MAX];
	struct run r;
	size_t len;
	__u32 id = 1;

	(void)state;
	backend_add(id, POD_B, 5353, IPPROTO_UDP);
	service_add(VIP, 53, IPPROTO_UDP, 5, &id, 1);
	send_flow(FROM_CONTAINER, 0, &f, 0, &r);
	assert_dst(&r, POD_B, 5353);

	len = icmp_error(POD_B, POD_A, ICMP_DEST_UNREACH, 3, 0, &post, buf);
	run_on(FROM_CONTAINER, fx.if_lxcb, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(VIP));
	assert_int_equal(r.v.daddr, ip4(POD_A));
	assert_quote(&r, POD_A, 5300, VIP, 53);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_EGRESS), 1);
}

/* A router between here and a remote backend says "fragmentation needed":
 * the quote gets the frontend back, the router stays the sender, and the MTU
 * reaches the client intact. */
static void test_lb_icmp_frag_needed_from_router(void **state)
{
	struct flow f = {POD_A, 42003, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 42003, REMOTE_POD, 8080, IPPROTO_TCP};
	__u8 buf[PKT_MAX];
	__be16 mtu;
	struct run r;
	size_t len;
	__u32 id = 3;

	(void)state;
	backend_add(id, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 9, &id, 1);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_dst(&r, REMOTE_POD, 8080);

	len = icmp_error(WORLD, POD_A, ICMP_DEST_UNREACH, 4, 1400, &post, buf);
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(WORLD));
	assert_quote(&r, POD_A, 42003, VIP, 80);
	memcpy(&mtu, r.out + r.v.l4 + 6, 2);
	assert_int_equal(ntohs(mtu), 1400);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_INGRESS), 1);

	/* An error about a flow nobody translated is delivered as it is. */
	post.sport = 42004;
	len = icmp_error(WORLD, POD_A, ICMP_DEST_UNREACH, 4, 1400, &post, buf);
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_quote(&r, POD_A, 42004, REMOTE_POD, 8080);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_INGRESS), 1);
}

/* Masquerade: an error from the outside about a masqueraded packet quotes
 * the node's address and NAT port; the pod gets its own back. */
static void test_masq_icmp_error(void **state)
{
	struct flow f = {POD_A, 46010, WORLD, 443, IPPROTO_TCP};
	__u8 buf[PKT_MAX];
	struct run r;
	size_t len;
	__u16 port;

	(void)state;
	send_flow(TO_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.v.saddr, ip4(NODE_IP));
	port = r.v.sport;
	{
		struct flow quoted = {NODE_IP, port, WORLD, 443, IPPROTO_TCP};

		len = icmp_error(WORLD, NODE_IP, ICMP_DEST_UNREACH, 4, 1280, &quoted, buf);
	}
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(WORLD));
	assert_int_equal(r.v.daddr, ip4(POD_A));
	assert_quote(&r, POD_A, 46010, WORLD, 443);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_REV_SNAT, METRIC_DIR_INGRESS), 1);
}

/* ICMP echo: the identifier is the port. */
static void test_masq_icmp_echo(void **state)
{
	struct flow f = {POD_A, 0x3131, WORLD, 0x3131, IPPROTO_ICMP};
	struct pkt_spec s = spec_of(&f, 0);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;
	__u16 id;

	(void)state;
	run(TO_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(NODE_IP));
	assert_int_equal(r.v.icmp_type, ICMP_ECHO);
	id = r.v.sport;
	assert_in_range(id, NAT_MIN, NAT_MAX);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 1);

	s.saddr = ip4(WORLD);
	s.daddr = ip4(NODE_IP);
	s.icmp_type = ICMP_ECHOREPLY;
	s.sport = id;
	len = build(&s, buf);
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.daddr, ip4(POD_A));
	assert_int_equal(r.v.sport, 0x3131);
	assert_int_equal(metric(REASON_REV_SNAT, METRIC_DIR_INGRESS), 1);
}

/* Inside the native-routing CIDR, or from an address that is not a local
 * pod: not masqueraded. */
static void test_masq_not_applied(void **state)
{
	struct flow in_cidr = {POD_A, 46001, REMOTE_POD, 8080, IPPROTO_TCP};
	struct flow not_pod = {"192.168.1.1", 46002, WORLD, 443, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&in_cidr, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;

	(void)state;
	run(TO_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_int_equal(r.len, len);
	assert_memory_equal(r.out, buf, len);

	s = spec_of(&not_pod, PKT_SYN);
	len = build(&s, buf);
	run(TO_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_memory_equal(r.out, buf, len);
	assert_int_equal(map_count(MAP(nat4)), 0);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 0);
}

/* Masquerade off: nothing translated. */
static void test_masq_disabled(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 46003, WORLD, 443, IPPROTO_TCP};
	struct run r;

	(void)state;
	cfg.flags &= ~CFG_MASQUERADE;
	dp_load(&cfg);
	send_flow(TO_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_src(&r, POD_A, 46003);
	assert_int_equal(map_count(MAP(nat4)), 0);
}

/* Every port of a one-port range taken towards the destination: the packet
 * is dropped as DROP_NAT_NO_PORT and nothing is written. Another
 * destination still gets the port. */
static void test_masq_no_free_port(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 46004, WORLD, 443, IPPROTO_TCP};
	struct nat4_key k = nat_key(WORLD, 443, NODE_IP, 40000, IPPROTO_TCP, NAT_DIR_INGRESS);
	struct nat4_entry taken = {.to_addr = ip4(POD_B), .to_port = htons(999)};
	struct run r;

	(void)state;
	cfg.nat_port_min = cfg.nat_port_max = 40000;
	dp_load(&cfg);
	assert_int_equal(bpf_map_update_elem(MAP(nat4), &k, &taken, BPF_ANY), 0);

	send_flow(TO_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NAT_NO_PORT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(map_count(MAP(nat4)), 1);

	f.dst = "203.0.113.11";
	send_flow(TO_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_valid(&r);
	assert_src(&r, NODE_IP, 40000);
}

/* ---- NodePort ----------------------------------------------------------- */

static void nodeport_add(__u16 port, __u32 rev, __u32 *ids, __u16 n, __u8 extra_flags)
{
	struct svc_opts o = {.flags = SVC_FLAG_NODE_PORT | extra_flags};

	service_add_opts(NODE_IP, port, IPPROTO_TCP, rev, ids, n, &o);
}

/* NodePort with a backend on this node: DNAT to it, delivered with its MACs,
 * the client's address kept. */
static void test_nodeport_local_backend(void **state)
{
	struct flow f = {CLIENT, 5555, NODE_IP, 30080, IPPROTO_TCP};
	struct flow reply = {POD_B, 8080, CLIENT, 5555, IPPROTO_TCP};
	struct run r;
	__u32 id = 41;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	nodeport_add(30080, 20, &id, 1, 0);

	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, CLIENT, 5555);
	assert_dst(&r, POD_B, 8080);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	/* Counted as a service translation, a NodePort one, or both. */
	assert_in_range(metric(REASON_LB_XLATED, METRIC_DIR_INGRESS) +
			    metric(REASON_NODE_PORT, METRIC_DIR_INGRESS),
			1, 2);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_INGRESS), 1);
	assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, id);
	assert_int_equal(map_count(MAP(nat4)), 0);

	/* B's reply leaves from node_ip:30080. */
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, NODE_IP, 30080);
	assert_dst(&r, CLIENT, 5555);
}

/* NodePort with the backend on another node: DNAT and SNAT to the node IP
 * (a NAT pair, a port in the NAT range), sent by the FIB; the backend's reply
 * arriving on the native device is translated back to node_ip:nodePort ->
 * the client. */
static void test_nodeport_remote_backend_snat(void **state)
{
	struct flow f = {CLIENT, 5556, NODE_IP, 30081, IPPROTO_TCP};
	struct flow post = {CLIENT, 5556, REMOTE_POD, 8080, IPPROTO_TCP};
	struct run r;
	__u32 id = 42;
	__u16 port;

	(void)state;
	backend_add(id, REMOTE_POD, 8080, IPPROTO_TCP);
	nodeport_add(30081, 21, &id, 1, 0);

	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(NODE_IP));
	assert_dst(&r, REMOTE_POD, 8080);
	port = r.v.sport;
	assert_in_range(port, NAT_MIN, NAT_MAX);
	assert_nat_pair(&post, port);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_INGRESS), 1);
	assert_fib_macs(&r, MAC_PEER, MAC_ND0);

	/* Same flow, same translation. */
	send_flow(FROM_NETDEV, 0, &f, PKT_ACK, &r);
	assert_valid(&r);
	assert_src(&r, NODE_IP, port);
	assert_dst(&r, REMOTE_POD, 8080);

	{
		struct flow reply = {REMOTE_POD, 8080, NODE_IP, port, IPPROTO_TCP};

		send_flow(FROM_NETDEV, 0, &reply, PKT_SYN | PKT_ACK, &r);
		assert_true(r.verdict == TC_ACT_REDIRECT || r.verdict == TC_ACT_OK);
		assert_valid(&r);
		assert_src(&r, NODE_IP, 30081);
		assert_dst(&r, CLIENT, 5556);
	}
}

/* A port in the NodePort range without a service goes to the stack. */
static void test_nodeport_no_service_to_stack(void **state)
{
	struct flow f = {CLIENT, 5557, NODE_IP, 31000, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;

	(void)state;
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_memory_equal(r.out, buf, len);
	assert_int_equal(metric(REASON_TO_STACK, METRIC_DIR_INGRESS), 1);
}

/* A pod's hostPort on the node address, outside the NodePort range: served
 * (DNAT to the pod, the client kept) because its frontend says host port. A
 * frontend at such a port without the flag is not looked at: the packet goes
 * to the stack untouched, as every other port of the node's own. */
static void test_host_port_outside_node_port_range(void **state)
{
	struct flow f = {CLIENT, 5560, NODE_IP, 18080, IPPROTO_TCP};
	struct flow other = {CLIENT, 5561, NODE_IP, 18081, IPPROTO_TCP};
	struct svc_opts hp = {.flags = SVC_FLAG_HOST_PORT};
	struct svc_opts plain = {.flags = SVC_FLAG_NODE_PORT};
	struct pkt_spec s = spec_of(&other, PKT_SYN);
	__u8 buf[PKT_MAX];
	size_t len = build(&s, buf);
	struct run r;
	__u32 id = 45;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add_opts(NODE_IP, 18080, IPPROTO_TCP, 25, &id, 1, &hp);
	service_add_opts(NODE_IP, 18081, IPPROTO_TCP, 26, &id, 1, &plain);

	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, CLIENT, 5560);
	assert_dst(&r, POD_B, 8080);
	assert_int_equal(metric(REASON_LB_XLATED, METRIC_DIR_INGRESS), 1);
	assert_int_equal(metric(REASON_NODE_PORT, METRIC_DIR_INGRESS), 0);
	assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, id);

	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_memory_equal(r.out, buf, len);
	assert_int_equal(metric(REASON_TO_STACK, METRIC_DIR_INGRESS), 1);
}

/* externalTrafficPolicy: Local with no backend here: dropped with its reason. */
static void test_nodeport_ext_local_no_backend(void **state)
{
	struct flow f = {CLIENT, 5558, NODE_IP, 30082, IPPROTO_TCP};
	struct run r;

	(void)state;
	nodeport_add(30082, 22, NULL, 0, SVC_FLAG_EXT_LOCAL);
	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_LOCAL_BACKEND, METRIC_DIR_INGRESS), 1);
}

/* ---- events ------------------------------------------------------------- */

struct events {
	int n;
	struct event_hdr ev[64];
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct events *evs = ctx;

	if (size < offsetof(struct event_hdr, data) || evs->n >= 64)
		return 0;
	memset(&evs->ev[evs->n], 0, sizeof(evs->ev[0]));
	memcpy(&evs->ev[evs->n], data, size < sizeof(evs->ev[0]) ? size : sizeof(evs->ev[0]));
	evs->n++;
	return 0;
}

static void events_read(struct events *evs)
{
	struct ring_buffer *rb;

	memset(evs, 0, sizeof(*evs));
	rb = ring_buffer__new(MAP(events), on_event, evs, NULL);
	assert_non_null(rb);
	assert_true(ring_buffer__consume(rb) >= 0);
	ring_buffer__free(rb);
}

/* ---- hairpin: a pod that is its own service's backend ------------------- */

#define HAIRPIN "169.254.42.1"

/* The flow's nat4 pair for a hairpin: pod:sport -> pod:bport is rewritten to
 * the hairpin address and @nat_port, and the reply to that is restored. */
static void assert_hairpin_nat_pair(const struct flow *post, __u16 nat_port)
{
	struct nat4_key k =
	    nat_key(post->src, post->sport, post->dst, post->dport, post->proto, NAT_DIR_EGRESS);
	struct nat4_entry e;

	assert_int_equal(bpf_map_lookup_elem(MAP(nat4), &k, &e), 0);
	assert_int_equal(e.to_addr, htonl(NAT_HAIRPIN_ADDR));
	assert_int_equal(ntohs(e.to_port), nat_port);
	k = nat_key(post->dst, post->dport, HAIRPIN, nat_port, post->proto, NAT_DIR_INGRESS);
	assert_int_equal(bpf_map_lookup_elem(MAP(nat4), &k, &e), 0);
	assert_int_equal(e.to_addr, ip4(post->src));
	assert_int_equal(ntohs(e.to_port), post->sport);
}

/* Pod A connects to a ClusterIP whose one backend is pod A: DNAT to itself
 * and SNAT to the hairpin address, reflected into pod A (MACs swapped); the
 * conntrack entry of the post-DNAT tuple names the NAT (the GC frees the pair
 * with it). The reply to the hairpin address goes back to pod A from the
 * frontend; the flow's next packet keeps its NAT port. */
static void test_hairpin_tcp_snat_and_reverse(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 42000, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 42000, POD_A, 8080, IPPROTO_TCP};
	struct flow reply;
	struct events evs;
	struct ct4_entry e;
	struct run r;
	__u32 id = 1;
	__u16 port;

	(void)state;
	cfg.flags |= CFG_TRACE_EVENTS;
	dp_load(&cfg);
	backend_add(id, POD_A, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, htonl(NAT_HAIRPIN_ADDR));
	port = r.v.sport;
	assert_in_range(port, NAT_MIN, NAT_MAX);
	assert_dst(&r, POD_A, 8080);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_LB_XLATED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, 1);
	e = ct_must(&post, CT_EGRESS);
	assert_int_equal(e.rev_nat_index, 7);
	assert_true(e.flags & CT_F_SNAT);
	assert_int_equal(e.flags & (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED), 0);
	assert_int_equal(e.nat_addr, htonl(NAT_HAIRPIN_ADDR));
	assert_int_equal(ntohs(e.nat_port), port);
	assert_int_equal(e.src_identity, 1001);
	assert_hairpin_nat_pair(&post, port);
	events_read(&evs);
	assert_int_equal(evs.n, 1);
	assert_int_equal(evs.ev[0].type, EVENT_TRACE);
	assert_int_equal(evs.ev[0].reason, REASON_TO_ENDPOINT);
	assert_int_equal(evs.ev[0].ifindex_out, fx.if_lxca);

	/* The server in pod A answers the hairpin address, on the same device. */
	reply = (struct flow){POD_A, 8080, HAIRPIN, port, IPPROTO_TCP};
	send_flow(FROM_CONTAINER, 0, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, VIP, 80);
	assert_dst(&r, POD_A, 42000);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(REASON_REV_SNAT, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_EGRESS), 1);
	e = ct_must(&post, CT_EGRESS);
	assert_int_equal(e.rx_packets, 1);
	assert_int_equal(e.rx_flags_seen, PKT_SYN | PKT_ACK);

	/* The client's ACK: the same translation, no new NAT entries. */
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, HAIRPIN, port);
	assert_dst(&r, POD_A, 8080);
	assert_int_equal(map_count(MAP(nat4)), 2);
	e = ct_must(&post, CT_EGRESS);
	assert_int_equal(e.tx_packets, 2);
	assert_true(e.flags & CT_F_TX_NON_SYN);
	assert_int_equal(metric(REASON_SNAT, METRIC_DIR_EGRESS), 2);
}

/* UDP: the datagram and its reply translated with valid checksums; the port
 * unreachable the pod sends the hairpin address comes back from the frontend,
 * quoting the client's own datagram, so its socket matches it. */
static void test_hairpin_udp_and_icmp_error(void **state)
{
	struct flow f = {POD_A, 5300, VIP, 53, IPPROTO_UDP};
	struct flow post = {POD_A, 5300, POD_A, 5353, IPPROTO_UDP};
	struct flow reply, quoted;
	__u8 buf[PKT_MAX];
	struct run r;
	__u32 id = 2;
	size_t len;
	__u16 port;

	(void)state;
	backend_add(id, POD_A, 5353, IPPROTO_UDP);
	service_add(VIP, 53, IPPROTO_UDP, 8, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, htonl(NAT_HAIRPIN_ADDR));
	port = r.v.sport;
	assert_dst(&r, POD_A, 5353);
	assert_hairpin_nat_pair(&post, port);

	reply = (struct flow){POD_A, 5353, HAIRPIN, port, IPPROTO_UDP};
	send_flow(FROM_CONTAINER, 0, &reply, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, VIP, 53);
	assert_dst(&r, POD_A, 5300);

	quoted = (struct flow){HAIRPIN, port, POD_A, 5353, IPPROTO_UDP};
	len = icmp_error(POD_A, HAIRPIN, ICMP_DEST_UNREACH, 3, 0, &quoted, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, ip4(VIP));
	assert_int_equal(r.v.daddr, ip4(POD_A));
	assert_quote(&r, POD_A, 5300, VIP, 53);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
}

/* Pod A's policy is enforced both ways with nothing allowed (no policy map:
 * fail closed). A flow to pod B is dropped; its connection through its own
 * Service to itself is not judged (lib/lb_hairpin.h) and goes through. */
static void test_hairpin_policy_not_enforced(void **state)
{
	struct endpoint_key key = {.address = ip4(POD_A)};
	struct flow other = {POD_A, 42100, POD_B, 8080, IPPROTO_TCP};
	struct flow f = {POD_A, 42101, VIP, 80, IPPROTO_TCP};
	struct endpoint_info info;
	struct run r;
	__u32 id = 1;

	(void)state;
	assert_int_equal(bpf_map_lookup_elem(MAP(endpoints), &key, &info), 0);
	info.policy = ENDPOINT_POLICY_INGRESS | ENDPOINT_POLICY_EGRESS;
	info.id = 5;
	assert_int_equal(bpf_map_update_elem(MAP(endpoints), &key, &info, BPF_ANY), 0);
	backend_add(id, POD_A, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);

	send_flow(FROM_CONTAINER, 0, &other, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 1);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(r.v.saddr, htonl(NAT_HAIRPIN_ADDR));
	assert_dst(&r, POD_A, 8080);
	assert_int_equal(metric_any_dir(DROP_POLICY), 1);
	assert_int_equal(metric_any_dir(REASON_POLICY_ALLOWED), 0);
}

/* Without host routing the hairpin is still reflected into the pod (the
 * stack would route it back out through to_container as a new flow); a
 * packet to the hairpin address that is no hairpinned flow's reply is left
 * alone and goes the way of any other (here: to the stack). */
static void test_hairpin_host_routing_off(void **state)
{
	struct datapath_config cfg = default_config();
	struct flow f = {POD_A, 42200, VIP, 80, IPPROTO_TCP};
	struct flow stray = {POD_A, 8080, HAIRPIN, 41000, IPPROTO_TCP};
	struct run r;
	__u32 id = 1;

	(void)state;
	cfg.flags &= ~CFG_HOST_ROUTING;
	dp_load(&cfg);
	backend_add(id, POD_A, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 7, &id, 1);

	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(r.v.saddr, htonl(NAT_HAIRPIN_ADDR));
	assert_int_equal(metric(REASON_TO_ENDPOINT, METRIC_DIR_EGRESS), 1);

	send_flow(FROM_CONTAINER, 0, &stray, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_src(&r, POD_A, 8080);
	assert_dst(&r, HAIRPIN, 41000);
	assert_int_equal(metric_any_dir(REASON_REV_SNAT), 0);
	assert_int_equal(metric(REASON_TO_STACK, METRIC_DIR_EGRESS), 1);
}

/* ---- loadBalancerSourceRanges -------------------------------------------- */

static void src_range_add(const char *fe, __u16 port, __u8 proto, const char *client, __u8 len)
{
	struct lb4_src_range_key k = {.prefixlen = LB_SRC_RANGE_PREFIX(len),
				      .fe_address = ip4(fe),
				      .fe_port = htons(port),
				      .proto = proto,
				      .client = ip4(client)};
	__u8 one = 1;

	assert_int_equal(bpf_map_update_elem(MAP(lb4_source_range), &k, &one, BPF_ANY), 0);
}

/* A LoadBalancer IP and its NodePort with source ranges: a client from outside
 * inside a range is served, one outside is dropped as DROP_SVC_SOURCE_RANGE
 * (no conntrack entry); a pod of the node is not checked; a frontend without
 * the flag takes anyone. */
static void test_lb_source_ranges(void **state)
{
	struct svc_opts lb = {.flags = SVC_FLAG_LOAD_BALANCER, .flags2 = SVC_FLAG2_SOURCE_RANGE};
	struct svc_opts np = {.flags = SVC_FLAG_NODE_PORT, .flags2 = SVC_FLAG2_SOURCE_RANGE};
	struct svc_opts open_lb = {.flags = SVC_FLAG_LOAD_BALANCER};
	struct flow in = {CLIENT, 5700, "172.16.0.10", 80, IPPROTO_TCP};
	struct flow out = {WORLD, 5701, "172.16.0.10", 80, IPPROTO_TCP};
	struct flow np_in = {CLIENT, 5702, NODE_IP, 30086, IPPROTO_TCP};
	struct flow np_out = {WORLD, 5703, NODE_IP, 30086, IPPROTO_TCP};
	struct flow pod = {POD_A, 5704, "172.16.0.10", 80, IPPROTO_TCP};
	struct flow other = {WORLD, 5705, "172.16.0.11", 80, IPPROTO_TCP};
	struct run r;
	__u32 id = 1;

	(void)state;
	backend_add(id, POD_B, 8080, IPPROTO_TCP);
	service_add_opts("172.16.0.10", 80, IPPROTO_TCP, 40, &id, 1, &lb);
	service_add_opts(NODE_IP, 30086, IPPROTO_TCP, 41, &id, 1, &np);
	service_add_opts("172.16.0.11", 80, IPPROTO_TCP, 42, &id, 1, &open_lb);
	/* CLIENT is 198.51.100.20: allowed by 198.51.100.0/24; WORLD is not. */
	src_range_add("172.16.0.10", 80, IPPROTO_TCP, "198.51.100.0", 24);
	src_range_add(NODE_IP, 30086, IPPROTO_TCP, "198.51.100.16", 28);
	/* A range of another frontend allows nothing here. */
	src_range_add("172.16.0.12", 80, IPPROTO_TCP, "203.0.113.0", 24);

	send_flow(FROM_NETDEV, 0, &in, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_NETDEV, 0, &np_in, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);

	send_flow(FROM_NETDEV, 0, &out, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_NETDEV, 0, &np_out, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_SVC_SOURCE_RANGE, METRIC_DIR_INGRESS), 2);
	assert_int_equal(ct_get(&out, CT_SERVICE, &(struct ct4_entry){}), -ENOENT);

	send_flow(FROM_CONTAINER, 0, &pod, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_dst(&r, POD_B, 8080);
	send_flow(FROM_NETDEV, 0, &other, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(metric_any_dir(DROP_SVC_SOURCE_RANGE), 2);
}

/* ---- no backend: refused ------------------------------------------------ */

/* The TCP answer of a refused segment: a 54-byte RST from the frontend back
 * to the client, MACs swapped, checksums valid. */
static void assert_rst(struct run *r, const struct flow *f, __u8 flags, __u32 seq, __u32 ack)
{
	__u32 be;

	assert_int_equal(r->verdict, TC_ACT_REDIRECT);
	assert_int_equal(r->len, ETH_HLEN + sizeof(struct iphdr) + PKT_TCP_HLEN);
	assert_valid(r);
	assert_int_equal(r->v.proto, IPPROTO_TCP);
	assert_src(r, f->dst, f->dport);
	assert_dst(r, f->src, f->sport);
	assert_macs(r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(r->v.tcp_flags, flags);
	memcpy(&be, r->out + r->v.l4 + 4, 4);
	assert_int_equal(ntohl(be), seq);
	memcpy(&be, r->out + r->v.l4 + 8, 4);
	assert_int_equal(ntohl(be), ack);
	assert_int_equal(r->v.ip->ttl, 64);
}

/* A pod's SYN to a ClusterIP without backends (socket LB not in the way):
 * RST|ACK acking the SYN, into the pod (redirect_peer), one
 * DROP_SVC_NO_BACKEND_REJECTED and a drop event quoting the SYN itself. */
static void test_reject_tcp_syn_from_pod(void **state)
{
	struct flow f = {POD_A, 42010, VIP, 80, IPPROTO_TCP};
	struct pkt_spec s = spec_of(&f, PKT_SYN);
	__u8 buf[PKT_MAX];
	struct events evs;
	struct run r;
	size_t len;

	(void)state;
	service_add(VIP, 80, IPPROTO_TCP, 7, NULL, 0);
	s.seq = 1000;
	s.payload_len = 0;
	len = build(&s, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_rst(&r, &f, PKT_RST | PKT_ACK, 0, 1001);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_dir(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS).bytes, len);
	assert_int_equal(metric_any_dir(DROP_NO_SERVICE_BACKEND), 0);
	assert_int_equal(map_count(MAP(ct4_tcp)), 0);
	events_read(&evs);
	assert_int_equal(evs.n, 1);
	assert_int_equal(evs.ev[0].type, EVENT_DROP);
	assert_int_equal(evs.ev[0].reason, DROP_SVC_NO_BACKEND_REJECTED);
	assert_int_equal(evs.ev[0].orig_len, len);
	assert_memory_equal(evs.ev[0].data, buf, evs.ev[0].cap_len);
}

/* A segment with ACK and data (a flow whose backends went away): RST with
 * seq = its ack, no ACK flag (RFC 9293 3.10.7.1). */
static void test_reject_tcp_ack_segment(void **state)
{
	struct flow f = {POD_A, 42011, VIP, 80, IPPROTO_TCP};
	struct run r;

	(void)state;
	service_add(VIP, 80, IPPROTO_TCP, 7, NULL, 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_ACK | PKT_PSH, &r);
	assert_rst(&r, &f, PKT_RST, 0x1000, 0);
}

/* A RST is never answered: a plain DROP_NO_SERVICE_BACKEND. */
static void test_reject_not_for_rst(void **state)
{
	struct flow f = {POD_A, 42012, VIP, 80, IPPROTO_TCP};
	struct run r;

	(void)state;
	service_add(VIP, 80, IPPROTO_TCP, 7, NULL, 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_RST, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_any_dir(DROP_SVC_NO_BACKEND_REJECTED), 0);
}

/* The ICMP answer of a refused datagram: port unreachable from the frontend,
 * quoting the datagram's IPv4 header and UDP header as sent. */
static void assert_port_unreach(struct run *r, const struct flow *f, const __u8 *in,
				const __u8 *dst_mac, const __u8 *src_mac)
{
	assert_int_equal(r->verdict, TC_ACT_REDIRECT);
	assert_int_equal(r->len, ETH_HLEN + 2 * sizeof(struct iphdr) + 8 + PKT_UDP_HLEN);
	assert_valid(r);
	assert_int_equal(r->v.proto, IPPROTO_ICMP);
	assert_int_equal(r->v.icmp_type, 3);
	assert_int_equal(r->out[r->v.l4 + 1], 3);
	assert_ip_port(r->v.saddr, 0, f->dst, 0);
	assert_ip_port(r->v.daddr, 0, f->src, 0);
	assert_macs(r, dst_mac, src_mac);
	assert_int_equal(r->v.ip->tos, 0xc0);
	assert_memory_equal(r->out + r->v.l4 + 8, in + ETH_HLEN, sizeof(struct iphdr) + 8);
}

/* A pod's datagram to a UDP ClusterIP without backends: port unreachable. */
static void test_reject_udp_from_pod(void **state)
{
	struct flow f = {POD_A, 5310, VIP, 53, IPPROTO_UDP};
	struct pkt_spec s = spec_of(&f, 0);
	__u8 buf[PKT_MAX];
	struct run r;
	size_t len;

	(void)state;
	service_add(VIP, 53, IPPROTO_UDP, 8, NULL, 0);
	s.payload_len = 200;
	len = build(&s, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_port_unreach(&r, &f, buf, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(map_count(MAP(ct4_any)), 0);
}

/* From outside to a NodePort without backends: the answer goes back out of
 * the device it came in by (bpf_redirect), TCP and UDP. */
static void test_reject_nodeport_from_outside(void **state)
{
	struct svc_opts o = {.flags = SVC_FLAG_NODE_PORT};
	struct flow t = {CLIENT, 5600, NODE_IP, 30090, IPPROTO_TCP};
	struct flow u = {CLIENT, 5601, NODE_IP, 30091, IPPROTO_UDP};
	struct pkt_spec s = spec_of(&u, 0);
	__u8 buf[PKT_MAX];
	struct run r;
	size_t len;

	(void)state;
	service_add_opts(NODE_IP, 30090, IPPROTO_TCP, 30, NULL, 0, &o);
	service_add_opts(NODE_IP, 30091, IPPROTO_UDP, 31, NULL, 0, &o);
	/* A SYN with 16 bytes of data (spec_of()) at seq 0: acked up to 17. */
	send_flow(FROM_NETDEV, 0, &t, PKT_SYN, &r);
	assert_rst(&r, &t, PKT_RST | PKT_ACK, 0, 17);

	len = build(&s, buf);
	run(FROM_NETDEV, buf, len, &r);
	assert_port_unreach(&r, &u, buf, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_INGRESS), 2);
	assert_int_equal(map_count(MAP(ct4_tcp)) + map_count(MAP(ct4_any)), 0);
}

/* A datagram with IPv4 options gets no answer (the quote would not be the
 * fixed 28 bytes), nor a GSO one (the answer would keep its gso_size): plain
 * drops. */
static void test_reject_not_for_ip_options_or_gso(void **state)
{
	struct flow f = {POD_A, 5311, VIP, 53, IPPROTO_UDP};
	struct pkt_spec s = spec_of(&f, 0);
	__u8 buf[PKT_MAX];
	struct run r;
	size_t len;

	(void)state;
	service_add(VIP, 53, IPPROTO_UDP, 8, NULL, 0);
	s.opt_len = 8;
	len = build(&s, buf);
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 1);

	s.opt_len = 0;
	s.payload_len = 1400;
	len = build(&s, buf);
	run_gso(FROM_CONTAINER, buf, len, 700, 2, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric_any_dir(DROP_SVC_NO_BACKEND_REJECTED), 0);
}

/* The answers' budget: 1000 a second per CPU. With the second's budget spent,
 * the SYN is dropped unanswered (DROP_NO_SERVICE_BACKEND) and counted held
 * back; with one left, one answer and then a drop. */
static void test_reject_rate_limited(void **state)
{
	struct flow f = {POD_A, 42013, VIP, 80, IPPROTO_TCP};
	struct event_limit lim[fx.ncpus];
	struct timespec ts;
	struct run r;
	__u32 zero = 0;
	__u64 held = 0;

	(void)state;
	service_add(VIP, 80, IPPROTO_TCP, 7, NULL, 0);
	/* Start early in a second, so the window set below stays current. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_nsec > 500000000L)
		usleep((1000000000L - ts.tv_nsec) / 1000 + 1000);
	for (int i = 0; i < fx.ncpus; i++)
		lim[i] = (struct event_limit){.last_ns = now_sec(), .tokens = 1000};
	assert_int_equal(bpf_map_update_elem(MAP(reject_limit), &zero, lim, BPF_ANY), 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 1);

	assert_int_equal(bpf_map_lookup_elem(MAP(reject_limit), &zero, lim), 0);
	for (int i = 0; i < fx.ncpus; i++)
		lim[i].tokens = 999;
	assert_int_equal(bpf_map_update_elem(MAP(reject_limit), &zero, lim, BPF_ANY), 0);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric(DROP_SVC_NO_BACKEND_REJECTED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(bpf_map_lookup_elem(MAP(reject_limit), &zero, lim), 0);
	for (int i = 0; i < fx.ncpus; i++)
		held += lim[i].suppressed;
	assert_int_equal(held, 2);
}

/* A drop sends one EVENT_DROP with the reason, the device, the direction and
 * the packet's first bytes. */
static void test_event_on_drop(void **state)
{
	__u8 buf[PKT_MAX];
	size_t len = good_tcp(buf);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);
	struct events evs;
	struct run r;

	(void)state;
	ip->ihl = 4;
	pkt_fix_ip_csum(ip);
	run(FROM_NETDEV, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	events_read(&evs);
	assert_int_equal(evs.n, 1);
	assert_int_equal(evs.ev[0].type, EVENT_DROP);
	assert_int_equal(evs.ev[0].reason, DROP_INVALID_HDR);
	assert_int_equal(evs.ev[0].dir, METRIC_DIR_INGRESS);
	assert_int_equal(evs.ev[0].ifindex, fx.if_nd0);
	assert_int_equal(evs.ev[0].orig_len, len);
	assert_int_equal(evs.ev[0].cap_len, len < EVENT_CAPTURE_LEN ? len : EVENT_CAPTURE_LEN);
	assert_memory_equal(evs.ev[0].data, buf, evs.ev[0].cap_len);
	assert_true(evs.ev[0].ts_ns > 0);

	/* A packet that is not dropped sends no drop event. */
	send_flow(FROM_CONTAINER, 0, &(struct flow){POD_A, 1, POD_B, 2, IPPROTO_UDP}, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	events_read(&evs);
	for (int i = 0; i < evs.n; i++)
		assert_int_not_equal(evs.ev[i].type, EVENT_DROP);
}

/* A burst of drops: events_burst events, the rest suppressed and counted. */
static void test_event_rate_limited(void **state)
{
	struct datapath_config cfg = default_config();
	__u8 buf[PKT_MAX];
	size_t len = good_tcp(buf);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);
	struct events evs;
	struct run r;

	(void)state;
	cfg.events_rate = 1;
	cfg.events_burst = 3;
	dp_load(&cfg);
	ip->ihl = 4;
	pkt_fix_ip_csum(ip);
	for (int i = 0; i < 10; i++) {
		run(FROM_CONTAINER, buf, len, &r);
		assert_int_equal(r.verdict, TC_ACT_SHOT);
	}
	events_read(&evs);
	assert_int_equal(evs.n, 3);
	for (int i = 0; i < evs.n; i++)
		assert_int_equal(evs.ev[i].reason, DROP_INVALID_HDR);
	assert_int_equal(metric(DROP_INVALID_HDR, METRIC_DIR_EGRESS), 10);
	assert_int_equal(metric_any_dir(REASON_EVENTS_SUPPRESSED), 7);
	{
		struct event_limit lim[fx.ncpus];
		__u32 zero = 0;
		__u64 suppressed = 0;

		assert_int_equal(bpf_map_lookup_elem(MAP(events_limit), &zero, lim), 0);
		for (int i = 0; i < fx.ncpus; i++)
			suppressed += lim[i].suppressed;
		assert_int_equal(suppressed, 7);
	}
}

/* ---- client source-port reuse through tc LB ----------------------------- */

/*
 * A client that reuses its source port finds the flow entry of its earlier
 * connection on the (post-DNAT) tuple, live or closing. These sequences check
 * that the entry takes the translation of the connection now using it, on the
 * paths test_lb_tuple_reused_direct_and_through_service does not take: a
 * client outside the node (NodePort, from_netdev), a backend on another node
 * (NodePort SNAT; a ClusterIP from a pod with socket LB off).
 */

#define CLIENT2	   "198.51.100.21" /* a second NodePort client, via the gateway */
#define CT_CLOSING (CT_F_TX_CLOSING | CT_F_RX_CLOSING)

/* A NodePort frontend on node_ip:@port whose one backend is @id. */
static void nodeport_one(__u16 port, __u32 rev, __u32 id)
{
	nodeport_add(port, rev, &id, 1, 0);
}

/* The reply @rf of a local backend (sent on its device @ifindex) leaves for
 * the client from @src:@sport, valid, routed by the FIB to the gateway. */
static void assert_local_reply(int ifindex, const struct flow *rf, __u8 tcp_flags, const char *src,
			       __u16 sport)
{
	struct run r;

	send_flow(FROM_CONTAINER, ifindex, rf, tcp_flags, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, src, sport);
	assert_dst(&r, rf->dst, rf->dport);
	assert_fib_macs(&r, MAC_GW, MAC_ND0);
}

/* The reply of a remote backend @backend:8080 to NAT port @nat_port arrives on
 * nd0 and leaves for @client:@cport from @src:@sport, valid. */
static void assert_remote_reply(const char *backend, __u16 nat_port, __u8 tcp_flags,
				const char *src, __u16 sport, const char *client, __u16 cport)
{
	struct flow rf = {backend, 8080, NODE_IP, nat_port, IPPROTO_TCP};
	struct run r;

	send_flow(FROM_NETDEV, 0, &rf, tcp_flags, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, src, sport);
	assert_dst(&r, client, cport);
	assert_fib_macs(&r, MAC_GW, MAC_ND0);
}

/* A SYN of @f through nd0 DNATed to @be:@bport from @src:@sport; returns the
 * source port it leaves with. */
static __u16 nodeport_syn(const struct flow *f, const char *be, __u16 bport, const char *src)
{
	struct run r;

	send_flow(FROM_NETDEV, 0, f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_dst(&r, be, bport);
	assert_int_equal(r.v.saddr, ip4(src));
	return r.v.sport;
}

/* (a) NodePort, backend here: the client reuses its port while the closed
 * connection's entries are still there. The SYN reopens them and keeps the
 * recorded backend; once that backend is gone the next reuse gets the other
 * one. Every reply leaves from node_ip:nodePort, never from the backend. */
static void test_reuse_nodeport_local_backend(void **state)
{
	struct flow f = {CLIENT, 5600, NODE_IP, 30080, IPPROTO_TCP};
	struct flow post_b = {CLIENT, 5600, POD_B, 8080, IPPROTO_TCP};
	struct flow post_a = {CLIENT, 5600, POD_A, 8080, IPPROTO_TCP};
	struct flow reply_b = reversed(&post_b), reply_a = reversed(&post_a);
	struct lb4_key key = {.address = ip4(NODE_IP),
			      .dport = htons(30080),
			      .proto = IPPROTO_TCP,
			      .backend_slot = 1};
	struct lb4_service slot = {.backend_id = 43, .rev_nat_index = 20};
	__u32 gone = 41;
	struct ct4_entry e;
	struct run r;

	(void)state;
	backend_add(41, POD_B, 8080, IPPROTO_TCP);
	backend_add(43, POD_A, 8080, IPPROTO_TCP);
	nodeport_one(30080, 20, 41);

	nodeport_syn(&f, POD_B, 8080, CLIENT);
	assert_local_reply(fx.if_lxcb, &reply_b, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	send_flow(FROM_NETDEV, 0, &f, PKT_FIN | PKT_ACK, &r);
	assert_dst(&r, POD_B, 8080);
	assert_local_reply(fx.if_lxcb, &reply_b, PKT_FIN | PKT_ACK, NODE_IP, 30080);
	assert_int_equal(ct_must(&post_b, CT_INGRESS).flags & CT_CLOSING, CT_CLOSING);

	/* Same port again: the closing entries are reopened, same backend. */
	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, CLIENT, 5600);
	assert_dst(&r, POD_B, 8080);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	e = ct_must(&post_b, CT_INGRESS);
	assert_false(e.flags & CT_CLOSING);
	assert_true(e.flags & CT_F_NODE_PORT);
	assert_int_equal(e.rev_nat_index, 20);
	assert_false(ct_must(&f, CT_SERVICE).flags & CT_CLOSING);
	assert_true(metric(REASON_CT_REOPENED, METRIC_DIR_INGRESS) >= 1);
	assert_local_reply(fx.if_lxcb, &reply_b, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	send_flow(FROM_NETDEV, 0, &f, PKT_RST, &r);
	assert_dst(&r, POD_B, 8080);

	/* The agent replaces B by A: the recorded backend is gone, the reused
	 * tuple gets A, answered from the NodePort too. */
	assert_int_equal(bpf_map_update_elem(MAP(lb4_services), &key, &slot, BPF_ANY), 0);
	assert_int_equal(bpf_map_delete_elem(MAP(lb4_backends), &gone), 0);
	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, CLIENT, 5600);
	assert_dst(&r, POD_A, 8080);
	assert_macs(&r, MAC_POD_A, MAC_LXC_A);
	assert_int_equal(ct_must(&f, CT_SERVICE).backend_id, 43);
	assert_int_equal(ct_must(&post_a, CT_INGRESS).rev_nat_index, 20);
	assert_local_reply(fx.if_lxca, &reply_a, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	assert_int_equal(map_count(MAP(nat4)), 0);
}

/* (b) The same client port first through the NodePort, then straight to the
 * backend pod's own address, then through the NodePort again. The direct
 * connection is not translated and B's answers to it keep B's address (a
 * stale rev-NAT index would send them from the NodePort, and the client would
 * reset); the NodePort connection after it is answered from the NodePort
 * again (an entry left without one would answer from B). */
static void test_reuse_nodeport_then_direct_to_backend(void **state)
{
	struct flow f = {CLIENT, 5610, NODE_IP, 30080, IPPROTO_TCP};
	struct flow direct = {CLIENT, 5610, POD_B, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&direct);
	__u64 xlated, rev_xlated;
	struct ct4_entry e;
	struct run r;

	(void)state;
	backend_add(41, POD_B, 8080, IPPROTO_TCP);
	nodeport_one(30080, 20, 41);

	nodeport_syn(&f, POD_B, 8080, CLIENT);
	assert_local_reply(fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	send_flow(FROM_NETDEV, 0, &f, PKT_FIN | PKT_ACK, &r);
	assert_local_reply(fx.if_lxcb, &reply, PKT_FIN | PKT_ACK, NODE_IP, 30080);

	/* Straight to B from the same port: delivered as it came. */
	xlated = metric(REASON_LB_XLATED, METRIC_DIR_INGRESS);
	rev_xlated = metric(REASON_LB_REV_XLATED, METRIC_DIR_EGRESS);
	send_flow(FROM_NETDEV, 0, &direct, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, CLIENT, 5610);
	assert_dst(&r, POD_B, 8080);
	assert_macs(&r, MAC_POD_B, MAC_LXC_B);
	e = ct_must(&direct, CT_INGRESS);
	assert_int_equal(e.rev_nat_index, 0);
	assert_false(e.flags & CT_F_NODE_PORT);
	assert_local_reply(fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, POD_B, 8080);
	send_flow(FROM_NETDEV, 0, &direct, PKT_ACK, &r);
	assert_dst(&r, POD_B, 8080);
	assert_local_reply(fx.if_lxcb, &reply, PKT_ACK, POD_B, 8080);
	assert_int_equal(metric(REASON_LB_XLATED, METRIC_DIR_INGRESS), xlated);
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_EGRESS), rev_xlated);
	send_flow(FROM_NETDEV, 0, &direct, PKT_FIN | PKT_ACK, &r);
	assert_local_reply(fx.if_lxcb, &reply, PKT_FIN | PKT_ACK, POD_B, 8080);

	/* Through the NodePort again: answered from it again. */
	nodeport_syn(&f, POD_B, 8080, CLIENT);
	e = ct_must(&direct, CT_INGRESS);
	assert_int_equal(e.rev_nat_index, 20);
	assert_true(e.flags & CT_F_NODE_PORT);
	assert_local_reply(fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	assert_int_equal(map_count(MAP(nat4)), 0);
}

/* (a) Two NodePorts with the same backend, B and a remote pod in turn: the
 * client reuses its port on the second NodePort after closing on the first.
 * The post-DNAT tuple is the same, so is the flow entry: the replies must
 * come from the NodePort the client connected to now. */
static void test_reuse_nodeport_other_frontend_same_backend(void **state)
{
	struct flow f1 = {CLIENT, 5620, NODE_IP, 30080, IPPROTO_TCP};
	struct flow f2 = {CLIENT, 5620, NODE_IP, 30090, IPPROTO_TCP};
	struct flow post = {CLIENT, 5620, POD_B, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&post);
	struct flow g1 = {CLIENT, 5621, NODE_IP, 30081, IPPROTO_TCP};
	struct flow g2 = {CLIENT, 5621, NODE_IP, 30091, IPPROTO_TCP};
	struct flow rpost = {CLIENT, 5621, REMOTE_POD, 8080, IPPROTO_TCP};
	struct run r;
	__u16 p1, p2;

	(void)state;
	backend_add(41, POD_B, 8080, IPPROTO_TCP);
	backend_add(42, REMOTE_POD, 8080, IPPROTO_TCP);
	nodeport_one(30080, 20, 41);
	nodeport_one(30090, 23, 41);
	nodeport_one(30081, 21, 42);
	nodeport_one(30091, 24, 42);

	/* Local backend. */
	nodeport_syn(&f1, POD_B, 8080, CLIENT);
	assert_local_reply(fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, NODE_IP, 30080);
	send_flow(FROM_NETDEV, 0, &f1, PKT_FIN | PKT_ACK, &r);
	assert_local_reply(fx.if_lxcb, &reply, PKT_FIN | PKT_ACK, NODE_IP, 30080);
	nodeport_syn(&f2, POD_B, 8080, CLIENT);
	assert_int_equal(ct_must(&post, CT_INGRESS).rev_nat_index, 23);
	assert_local_reply(fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, NODE_IP, 30090);

	/* Remote backend, SNAT: the reopened entry keeps its NAT port. */
	p1 = nodeport_syn(&g1, REMOTE_POD, 8080, NODE_IP);
	assert_remote_reply(REMOTE_POD, p1, PKT_SYN | PKT_ACK, NODE_IP, 30081, CLIENT, 5621);
	send_flow(FROM_NETDEV, 0, &g1, PKT_FIN | PKT_ACK, &r);
	assert_remote_reply(REMOTE_POD, p1, PKT_FIN | PKT_ACK, NODE_IP, 30081, CLIENT, 5621);
	p2 = nodeport_syn(&g2, REMOTE_POD, 8080, NODE_IP);
	assert_int_equal(p2, p1);
	assert_nat_pair(&rpost, p1);
	assert_int_equal(ct_must(&rpost, CT_INGRESS).rev_nat_index, 24);
	assert_remote_reply(REMOTE_POD, p1, PKT_SYN | PKT_ACK, NODE_IP, 30091, CLIENT, 5621);
	assert_int_equal(map_count(MAP(nat4)), 2);
}

/* (c) NodePort, backend on another node (SNAT to the node): the client
 * reuses its port while the closed flow's entry is there: the entry is
 * reopened with its NAT port, the pair unchanged, the new connection's reply
 * restored to the client. A second client with the same source port gets
 * another NAT port (the reply tuples would collide otherwise) and each reply
 * goes to its own client. Once the first client's entry has expired (the GC
 * not run yet), a reuse gets a NAT pair again, and the map holds one pair per
 * client tuple: none left behind that no entry names. */
static void test_reuse_nodeport_remote_backend_snat(void **state)
{
	struct flow f = {CLIENT, 5630, NODE_IP, 30081, IPPROTO_TCP};
	struct flow post = {CLIENT, 5630, REMOTE_POD, 8080, IPPROTO_TCP};
	struct flow f2 = {CLIENT2, 5630, NODE_IP, 30081, IPPROTO_TCP};
	struct flow post2 = {CLIENT2, 5630, REMOTE_POD, 8080, IPPROTO_TCP};
	struct ct4_key k;
	struct ct4_entry e;
	struct run r;
	__u16 p1, p2, p3;

	(void)state;
	backend_add(42, REMOTE_POD, 8080, IPPROTO_TCP);
	nodeport_one(30081, 21, 42);

	p1 = nodeport_syn(&f, REMOTE_POD, 8080, NODE_IP);
	assert_in_range(p1, NAT_MIN, NAT_MAX);
	assert_nat_pair(&post, p1);
	assert_remote_reply(REMOTE_POD, p1, PKT_SYN | PKT_ACK, NODE_IP, 30081, CLIENT, 5630);
	send_flow(FROM_NETDEV, 0, &f, PKT_FIN | PKT_ACK, &r);
	assert_src(&r, NODE_IP, p1);
	assert_remote_reply(REMOTE_POD, p1, PKT_FIN | PKT_ACK, NODE_IP, 30081, CLIENT, 5630);
	assert_int_equal(ct_must(&post, CT_INGRESS).flags & CT_CLOSING, CT_CLOSING);

	/* Reused while closing: same NAT port, same pair. */
	send_flow(FROM_NETDEV, 0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_src(&r, NODE_IP, p1);
	assert_dst(&r, REMOTE_POD, 8080);
	assert_fib_macs(&r, MAC_PEER, MAC_ND0);
	e = ct_must(&post, CT_INGRESS);
	assert_false(e.flags & CT_CLOSING);
	assert_true(e.flags & CT_F_SNAT);
	assert_int_equal(ntohs(e.nat_port), p1);
	assert_nat_pair(&post, p1);
	assert_int_equal(map_count(MAP(nat4)), 2);
	assert_remote_reply(REMOTE_POD, p1, PKT_SYN | PKT_ACK, NODE_IP, 30081, CLIENT, 5630);

	/* Another client, same source port: another NAT port. */
	p2 = nodeport_syn(&f2, REMOTE_POD, 8080, NODE_IP);
	assert_in_range(p2, NAT_MIN, NAT_MAX);
	assert_int_not_equal(p2, p1);
	assert_nat_pair(&post2, p2);
	assert_nat_pair(&post, p1);
	assert_int_equal(map_count(MAP(nat4)), 4);
	assert_remote_reply(REMOTE_POD, p2, PKT_SYN | PKT_ACK, NODE_IP, 30081, CLIENT2, 5630);
	assert_remote_reply(REMOTE_POD, p1, PKT_ACK, NODE_IP, 30081, CLIENT, 5630);

	/* The first client's flow expires (both its entries), the GC has not
	 * run; the client comes back from the same port. */
	k = ct_key(&post, CT_INGRESS);
	e = ct_must(&post, CT_INGRESS);
	e.lifetime = now_sec() - 2;
	assert_int_equal(bpf_map_update_elem(MAP(ct4_tcp), &k, &e, BPF_EXIST), 0);
	k = ct_key(&f, CT_SERVICE);
	e = ct_must(&f, CT_SERVICE);
	e.lifetime = now_sec() - 2;
	assert_int_equal(bpf_map_update_elem(MAP(ct4_tcp), &k, &e, BPF_EXIST), 0);
	p3 = nodeport_syn(&f, REMOTE_POD, 8080, NODE_IP);
	assert_in_range(p3, NAT_MIN, NAT_MAX);
	assert_int_not_equal(p3, p2);
	e = ct_must(&post, CT_INGRESS);
	assert_int_equal(e.tx_packets, 1);
	assert_int_equal(ntohs(e.nat_port), p3);
	assert_nat_pair(&post, p3);
	assert_nat_pair(&post2, p2);
	assert_int_equal(map_count(MAP(nat4)), 4);
	assert_remote_reply(REMOTE_POD, p3, PKT_SYN | PKT_ACK, NODE_IP, 30081, CLIENT, 5630);
	assert_remote_reply(REMOTE_POD, p2, PKT_ACK, NODE_IP, 30081, CLIENT2, 5630);
}

/* (d) A ClusterIP whose backend is on another node, from pod A with socket
 * LB off (DNAT at from_container, the reply back through from_netdev): the
 * same port through the ClusterIP, straight to the remote pod, through the
 * ClusterIP again. Each reply comes from the address its connection went to. */
static void test_reuse_clusterip_remote_backend_direct(void **state)
{
	struct flow svc = {POD_A, 42030, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 42030, REMOTE_POD, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&post);
	struct run r;
	__u32 id = 3;

	(void)state;
	backend_add(id, REMOTE_POD, 8080, IPPROTO_TCP);
	service_add(VIP, 80, IPPROTO_TCP, 9, &id, 1);

	for (int round = 0; round < 3; round++) {
		bool direct = round == 1;

		send_flow(FROM_CONTAINER, 0, direct ? &post : &svc, PKT_SYN, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		assert_src(&r, POD_A, 42030);
		assert_dst(&r, REMOTE_POD, 8080);
		assert_fib_macs(&r, MAC_PEER, MAC_ND0);
		assert_int_equal(ct_must(&post, CT_EGRESS).rev_nat_index, direct ? 0 : 9);

		send_flow(FROM_NETDEV, 0, &reply, PKT_SYN | PKT_ACK, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		assert_valid(&r);
		if (direct)
			assert_src(&r, REMOTE_POD, 8080);
		else
			assert_src(&r, VIP, 80);
		assert_dst(&r, POD_A, 42030);
		assert_macs(&r, MAC_POD_A, MAC_LXC_A);

		send_flow(FROM_CONTAINER, 0, direct ? &post : &svc, PKT_FIN | PKT_ACK, &r);
		send_flow(FROM_NETDEV, 0, &reply, PKT_FIN | PKT_ACK, &r);
		assert_int_equal(ct_must(&post, CT_EGRESS).flags & CT_CLOSING, CT_CLOSING);
	}
	assert_int_equal(metric(REASON_LB_REV_XLATED, METRIC_DIR_INGRESS), 4);
	assert_int_equal(map_count(MAP(nat4)), 0);
}

/* ---- MTU on the FIB path ------------------------------------------------ */

/* A UDP packet from pod A to NARROW (route MTU 1400) of @ip_len bytes. */
static size_t narrow_udp(__u8 *buf, size_t ip_len)
{
	struct flow f = {POD_A, 45020, NARROW, 9000, IPPROTO_UDP};
	struct pkt_spec s = spec_of(&f, 0);

	s.payload_len = ip_len - 28;
	return build(&s, buf);
}

static struct datapath_config no_masq_config(void)
{
	struct datapath_config cfg = default_config();

	cfg.flags &= ~CFG_MASQUERADE;
	return cfg;
}

/* Over the route's MTU (1500 > 1400): to the stack, which answers a DF packet
 * with fragmentation needed; never redirected to be dropped on the way out. */
static void test_route_fib_over_mtu_to_stack(void **state)
{
	struct datapath_config cfg = no_masq_config();
	__u8 buf[PKT_MAX];
	size_t len;
	struct run r;

	(void)state;
	dp_load(&cfg);
	len = narrow_udp(buf, 1500);
	run(FROM_CONTAINER, buf, len, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_int_equal(metric(REASON_TO_STACK_MTU, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_dir(REASON_TO_STACK_MTU, METRIC_DIR_EGRESS).bytes, len);
	assert_int_equal(metric_any_dir(REASON_FIB_FORWARDED), 0);
	/* Handed on as it came: the TTL is the stack's to decrement. */
	assert_int_equal(r.len, len);
	assert_memory_equal(r.out + ETH_HLEN, buf + ETH_HLEN, len - ETH_HLEN);
}

/* At the route's MTU exactly: redirected. */
static void test_route_fib_at_mtu_forwarded(void **state)
{
	struct datapath_config cfg = no_masq_config();
	__u8 buf[PKT_MAX];
	struct run r;

	(void)state;
	dp_load(&cfg);
	run(FROM_CONTAINER, buf, narrow_udp(buf, 1400), &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_valid(&r);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_any_dir(REASON_TO_STACK_MTU), 0);
}

/* A GSO packet is not judged by its whole length (the FIB gets none) but by
 * its segments against the egress device (nd0, 1500): segments of 1000 fit,
 * so it is redirected though its length is over the route's 1400. */
static void test_route_fib_gso_judged_by_segments(void **state)
{
	struct datapath_config cfg = no_masq_config();
	__u8 buf[PKT_MAX];
	size_t len;
	struct run r;

	(void)state;
	dp_load(&cfg);
	len = narrow_udp(buf, 1500);
	run_gso(FROM_CONTAINER, buf, len, 1000, 2, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(metric(REASON_FIB_FORWARDED, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric_any_dir(REASON_TO_STACK_MTU), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkt_craft_checksums),
	    T(test_parse_ihl_below_5),
	    T(test_parse_tot_len_below_ihl),
	    T(test_parse_tot_len_beyond_packet),
	    T(test_parse_big_tcp_tot_len_zero),
	    T(test_parse_truncated_tcp),
	    T(test_parse_truncated_udp),
	    T(test_parse_truncated_icmp),
	    T(test_parse_fragments_dropped_from),
	    T(test_parse_fragments_dropped_to),
	    T(test_parse_non_ipv4_to_stack),
	    T(test_parse_unknown_l4_routed),
	    T(test_parse_ip_options_dnat),
	    T(test_parse_ip_options_snat),
	    T(test_ct_tcp_handshake),
	    T(test_ct_one_sided_not_established),
	    T(test_ct_fin_rst_close),
	    T(test_ct_syn_reopens_closing),
	    T(test_ct_udp_icmp_any),
	    T(test_ct_default_lifetimes),
	    T(test_ct_expired_entry_is_not_reused),
	    T(test_ct_ingress_from_netdev),
	    T(test_lb_dnat_and_reply),
	    T(test_lb_udp),
	    T(test_lb_udp_zero_checksum),
	    T(test_lb_flow_keeps_backend),
	    T(test_lb_tuple_reused_direct_and_through_service),
	    T(test_lb_remote_backend_reply_at_netdev),
	    T(test_lb_no_backend),
	    T(test_lb_invalid_state_dropped),
	    T(test_lb_affinity),
	    T(test_lb_affinity_backend_left_the_service),
	    T(test_lb_maglev),
	    T(test_route_to_local_endpoint),
	    T(test_route_endpoint_without_mac),
	    T(test_route_fib_forwarded),
	    T(test_route_fib_not_forwarded),
	    T(test_route_host_routing_off),
	    T(test_masq_tcp),
	    T(test_masq_udp),
	    T(test_masq_icmp_echo),
	    T(test_masq_icmp_error),
	    T(test_lb_icmp_error_from_backend),
	    T(test_lb_icmp_frag_needed_from_router),
	    T(test_masq_not_applied),
	    T(test_masq_disabled),
	    T(test_masq_no_free_port),
	    T(test_nodeport_local_backend),
	    T(test_nodeport_remote_backend_snat),
	    T(test_nodeport_no_service_to_stack),
	    T(test_host_port_outside_node_port_range),
	    T(test_nodeport_ext_local_no_backend),
	    T(test_hairpin_tcp_snat_and_reverse),
	    T(test_hairpin_udp_and_icmp_error),
	    T(test_hairpin_policy_not_enforced),
	    T(test_hairpin_host_routing_off),
	    T(test_lb_source_ranges),
	    T(test_reject_tcp_syn_from_pod),
	    T(test_reject_tcp_ack_segment),
	    T(test_reject_not_for_rst),
	    T(test_reject_udp_from_pod),
	    T(test_reject_nodeport_from_outside),
	    T(test_reject_not_for_ip_options_or_gso),
	    T(test_reject_rate_limited),
	    T(test_event_on_drop),
	    T(test_event_rate_limited),
	    T(test_reuse_nodeport_local_backend),
	    T(test_reuse_nodeport_then_direct_to_backend),
	    T(test_reuse_nodeport_other_frontend_same_backend),
	    T(test_reuse_nodeport_remote_backend_snat),
	    T(test_reuse_clusterip_remote_backend_direct),
	    T(test_route_fib_over_mtu_to_stack),
	    T(test_route_fib_at_mtu_forwarded),
	    T(test_route_fib_gso_judged_by_segments),
	};

	return cmocka_run_group_tests_name("tc_datapath", tests, group_setup, group_teardown);
}
