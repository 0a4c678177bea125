// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Network policy in the tc datapath (bpf/lib/policy.h, include/axon/policy.h)
 * on crafted packets through the real entry programs.
 *
 * Every test loads a fresh tc_datapath skeleton (nothing pinned or
 * attached), adds two local pods whose endpoints carry an id and the
 * directions their policy is enforced in, writes their policy tries straight
 * from the include/axon structs (an LPM trie per endpoint, put in the
 * endpoint's slot of the "policy" array of maps), runs packets with
 * BPF_PROG_TEST_RUN and checks the verdict, the drop reason, the counters in
 * the matched entry, the conntrack entry's verdict flags, the metrics and the
 * policy-verdict events.
 *
 * The node, in a private network namespace (bpf_fib_lookup looks in the
 * caller's): nd0 192.168.1.1/24 (CONFIG.node_ip) with a gateway to the world
 * (203.0.113.0/24, 198.51.100.0/24) and a peer node 192.168.1.2 whose pods
 * are 10.2.0.0/16; lxca / lxcb the host sides of pods A 10.1.0.10 (endpoint
 * 1, identity 1001) and B 10.1.0.11 (endpoint 2, identity 1002). The IP
 * cache knows the pods and the remote pod 10.2.0.5 (identity 2005); the
 * world is unknown to it (identity WORLD).
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
#include <axon/policy.h>
#include <axon/reasons.h>

#include "pkt_craft.h"
#include "policy/map.h"
#include "tc_datapath.skel.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7

#define NODE_IP	   "192.168.1.1"
#define POD_A	   "10.1.0.10"
#define POD_B	   "10.1.0.11"
#define REMOTE_POD "10.2.0.5"
#define WORLD	   "203.0.113.10"
#define VIP	   "10.96.0.10"

#define EP_A	  1
#define EP_B	  2
#define ID_A	  1001
#define ID_B	  1002
#define ID_REMOTE 2005

#define ING   POLICY_DIR_INGRESS
#define EGR   POLICY_DIR_EGRESS
#define ALLOW false
#define DENY  true

static const __u8 MAC_POD_A[6] = {0x0a, 0, 0, 0, 0, 0x0a};
static const __u8 MAC_LXC_A[6] = {0x0e, 0, 0, 0, 0, 0x0a};
static const __u8 MAC_POD_B[6] = {0x0a, 0, 0, 0, 0, 0x0b};
static const __u8 MAC_LXC_B[6] = {0x0e, 0, 0, 0, 0, 0x0b};

enum prog_id { FROM_CONTAINER, TO_CONTAINER, FROM_NETDEV, TO_NETDEV };

static struct {
	struct tc_datapath *skel;
	int ncpus;
	int if_nd0, if_lxca, if_lxcb;
	int inner[3]; /* policy tries by endpoint id (this test's, -1: none) */
} fx;

/* ---- the test node ------------------------------------------------------ */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "test_policy: `%s` failed (%d)\n", cmd, rc);
	return rc ? -1 : 0;
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
	    "ip route add 10.1.0.10/32 dev lxca",
	    "ip route add 10.1.0.11/32 dev lxcb",
	    "echo 1 > /proc/sys/net/ipv4/ip_forward",
	};
	cpu_set_t cpus;

	(void)state;
	fx.ncpus = libbpf_num_possible_cpus();
	if (fx.ncpus <= 0)
		return -1;
	/* One CPU: the per-CPU event limiter is one bucket. */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "test_policy: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (sh(cmds[i]))
			return -1;
	fx.if_nd0 = if_nametoindex("nd0");
	fx.if_lxca = if_nametoindex("lxca");
	fx.if_lxcb = if_nametoindex("lxcb");
	return fx.if_nd0 && fx.if_lxca && fx.if_lxcb ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return 0; /* the namespace goes with the process */
}

static __be32 ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

#define MAP(name) bpf_map__fd(fx.skel->maps.name)

static void ipcache_add(const char *ip, __u32 identity)
{
	struct ipcache_key k = {.prefixlen = 32, .address = ip4(ip)};
	struct ipcache_value v = {.identity = identity};

	assert_int_equal(bpf_map_update_elem(MAP(ipcache), &k, &v, BPF_ANY), 0);
}

/* Local pod @ip on @ifindex: endpoint @id, @identity, policy enforced in
 * @policy (ENDPOINT_POLICY_*). */
static void endpoint_set(const char *ip, int ifindex, const __u8 *mac, const __u8 *node_mac,
			 __u32 identity, __u16 id, __u8 policy)
{
	struct endpoint_key k = {.address = ip4(ip)};
	struct endpoint_info v = {
	    .ifindex = ifindex, .identity = identity, .id = id, .policy = policy};

	memcpy(v.mac, mac, 6);
	memcpy(v.node_mac, node_mac, 6);
	assert_int_equal(bpf_map_update_elem(MAP(endpoints), &k, &v, BPF_ANY), 0);
	ipcache_add(ip, identity);
}

static void enforce(__u8 policy_a, __u8 policy_b)
{
	endpoint_set(POD_A, fx.if_lxca, MAC_POD_A, MAC_LXC_A, ID_A, EP_A, policy_a);
	endpoint_set(POD_B, fx.if_lxcb, MAC_POD_B, MAC_LXC_B, ID_B, EP_B, policy_b);
}

static void dp_unload(void)
{
	for (int i = 0; i < 3; i++) {
		if (fx.inner[i] >= 0)
			close(fx.inner[i]);
		fx.inner[i] = -1;
	}
	tc_datapath__destroy(fx.skel);
	fx.skel = NULL;
}

static void dp_load(__u16 flags)
{
	struct bpf_map *map;
	int err;

	if (fx.skel)
		dp_unload();
	fx.skel = tc_datapath__open();
	assert_non_null(fx.skel);
	fx.skel->rodata->CONFIG = (struct datapath_config){
	    .node_ip = ip4(NODE_IP),
	    .native_cidr = ip4("10.0.0.0"),
	    .native_cidr_len = 8,
	    .flags = flags,
	    .events_rate = 1000,
	    .events_burst = 100,
	};
	bpf_object__for_each_map(map, fx.skel->obj)
	{
		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF && bpf_map__max_entries(map) > 4096)
			assert_int_equal(bpf_map__set_max_entries(map, 4096), 0);
	}
	err = tc_datapath__load(fx.skel);
	if (err)
		fail_msg("tc_datapath load (verifier): %s", strerror(-err));
	enforce(0, 0);
	ipcache_add(REMOTE_POD, ID_REMOTE);
}

static int test_setup(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		fx.inner[i] = -1;
	dp_load(CFG_HOST_ROUTING | CFG_NODE_PORT);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	dp_unload();
	return 0;
}

/* ---- policy maps -------------------------------------------------------- */

/* Endpoint @ep's trie, created and put in its slot the first time. */
static int policy_trie(__u16 ep)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	__u32 slot = ep;

	if (fx.inner[ep] < 0) {
		fx.inner[ep] =
		    bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "test_policy", sizeof(struct policy_key),
				   sizeof(struct policy_entry), 64, &opts);
		assert_true(fx.inner[ep] >= 0);
		assert_int_equal(bpf_map_update_elem(MAP(policy), &slot, &fx.inner[ep], BPF_ANY),
				 0);
	}
	return fx.inner[ep];
}

static struct policy_key pkey(__u32 identity, __u8 dir, __u8 proto, __u16 port, __u8 l4_prefix)
{
	struct policy_key k = {
	    .prefixlen = POLICY_KEY_PREFIXLEN(l4_prefix),
	    .sec_label = identity,
	    .egress = dir,
	    .protocol = proto,
	    .dport = htons(port),
	};

	return k;
}

/* One entry in endpoint @ep's policy: @identity (0: any), @dir, @proto (0:
 * any), the ports sharing @port's first (l4_prefix - 8) bits. */
static void rule(__u16 ep, __u32 identity, __u8 dir, __u8 proto, __u16 port, __u8 l4_prefix,
		 bool deny)
{
	struct policy_key k = pkey(identity, dir, proto, port, l4_prefix);
	struct policy_entry v = {.flags = deny ? POLICY_F_DENY : 0, .lpm_prefix_length = l4_prefix};

	assert_int_equal(bpf_map_update_elem(policy_trie(ep), &k, &v, BPF_ANY), 0);
}

static struct policy_entry rule_get(__u16 ep, __u32 identity, __u8 dir, __u8 proto, __u16 port,
				    __u8 l4_prefix)
{
	struct policy_key k = pkey(identity, dir, proto, port, l4_prefix), next, *prev = NULL;
	struct policy_entry v;
	int fd = policy_trie(ep);

	/* A lookup returns the longest match up to the key's prefix: make
	 * sure the entry itself is there, so that is what it returns. */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!memcmp(&next, &k, sizeof(k))) {
			assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
			return v;
		}
		prev = &next;
	}
	fail_msg("no policy entry %u/%u/%u/%u prefix %u", identity, dir, proto, port, l4_prefix);
	return v;
}

static void rule_del(__u16 ep, __u32 identity, __u8 dir, __u8 proto, __u16 port, __u8 l4_prefix)
{
	struct policy_key k = pkey(identity, dir, proto, port, l4_prefix);

	assert_int_equal(bpf_map_delete_elem(policy_trie(ep), &k), 0);
}

/* ---- running programs --------------------------------------------------- */

struct flow {
	const char *src;
	__u16 sport;
	const char *dst;
	__u16 dport;
	__u8 proto;
};

struct run {
	int verdict;
	size_t len; /* of the packet sent */
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

static void run_pkt(enum prog_id id, int ifindex, const __u8 *pkt, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	memset(r, 0, sizeof(*r));
	if (bpf_prog_test_run_opts(bpf_program__fd(prog_of(id)), &opts))
		fail_msg("BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->verdict = opts.retval;
	r->len = len;
	pkt_parse(r->out, opts.data_size_out, &r->v);
}

/* The packet of @f with @tcp_flags (ICMP: an echo request) through @id on
 * @ifindex. */
static void send_flow(enum prog_id id, int ifindex, const struct flow *f, __u8 tcp_flags,
		      struct run *r)
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
	__u8 buf[PKT_MAX];
	size_t len;

	memcpy(s.src_mac, MAC_POD_A, 6);
	memcpy(s.dst_mac, MAC_LXC_A, 6);
	len = pkt_build(&s, buf, sizeof(buf));
	assert_true(len > 0);
	run_pkt(id, ifindex, buf, len, r);
}

static struct flow reversed(const struct flow *f)
{
	struct flow r = {f->dst, f->dport, f->src, f->sport, f->proto};

	return r;
}

/* ---- maps --------------------------------------------------------------- */

static __u64 metric(__u8 reason, __u8 dir)
{
	struct metrics_key key = {.reason = reason, .dir = dir};
	struct metrics_value vals[fx.ncpus];
	__u64 n = 0;

	if (bpf_map_lookup_elem(MAP(metrics), &key, vals))
		return 0;
	for (int i = 0; i < fx.ncpus; i++)
		n += vals[i].packets;
	return n;
}

static int ct_get(const struct flow *f, __u8 dir, struct ct4_entry *e)
{
	struct ct4_key k = {
	    .daddr = ip4(f->dst),
	    .saddr = ip4(f->src),
	    .dport = htons(f->dport),
	    .sport = htons(f->sport),
	    .nexthdr = f->proto,
	    .flags = dir,
	};

	return bpf_map_lookup_elem(f->proto == IPPROTO_TCP ? MAP(ct4_tcp) : MAP(ct4_any), &k, e)
		   ? -errno
		   : 0;
}

static struct ct4_entry ct_must(const struct flow *f, __u8 dir)
{
	struct ct4_entry e;

	if (ct_get(f, dir, &e))
		fail_msg("no conntrack entry %s:%u -> %s:%u dir %u", f->src, f->sport, f->dst,
			 f->dport, dir);
	return e;
}

struct events {
	int n;
	struct event_hdr ev[64];
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct events *evs = ctx;

	if (size >= sizeof(struct event_hdr) && evs->n < 64)
		memcpy(&evs->ev[evs->n++], data, sizeof(struct event_hdr));
	return 0;
}

/* The events sent since the last call, of @type only (0: all). */
static void events_read(struct events *evs, __u8 type)
{
	struct events all = {};
	struct ring_buffer *rb = ring_buffer__new(MAP(events), on_event, &all, NULL);

	assert_non_null(rb);
	assert_true(ring_buffer__consume(rb) >= 0);
	ring_buffer__free(rb);
	memset(evs, 0, sizeof(*evs));
	for (int i = 0; i < all.n; i++)
		if (!type || all.ev[i].type == type)
			evs->ev[evs->n++] = all.ev[i];
}

/* A policy-verdict event with these fields, and the packet it captured. */
static void assert_verdict_event(const struct event_hdr *e, __u16 ep, __u8 dir, __u32 remote,
				 __u8 action, __u8 match, __u8 reason, const struct flow *f)
{
	struct pkt_view v;

	assert_int_equal(e->type, EVENT_POLICY_VERDICT);
	assert_int_equal(e->endpoint_id, ep);
	assert_int_equal(e->dir, dir == EGR ? METRIC_DIR_EGRESS : METRIC_DIR_INGRESS);
	assert_int_equal(e->remote_identity, remote);
	assert_int_equal(e->action, action);
	assert_int_equal(e->match_type, match);
	assert_int_equal(e->reason, reason);
	assert_true(e->cap_len > 0);
	assert_int_equal(pkt_parse((__u8 *)e->data, e->cap_len, &v), 0);
	assert_int_equal(v.saddr, ip4(f->src));
	assert_int_equal(v.daddr, ip4(f->dst));
	assert_int_equal(v.sport, f->sport);
	assert_int_equal(v.dport, f->dport);
	assert_int_equal(v.proto, f->proto);
}

/* ---- which entry decides ------------------------------------------------ */

/* B's ingress allows A by identity alone: any protocol, any port. */
static void test_allow_l3(void **state)
{
	struct flow tcp = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow udp = {POD_A, 40001, POD_B, 53, IPPROTO_UDP};
	struct flow remote = {REMOTE_POD, 40002, POD_B, 8080, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, 0, 0, 0, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &tcp, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_memory_equal(r.out, MAC_POD_B, 6);
	send_flow(FROM_CONTAINER, fx.if_lxca, &udp, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 2);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_ONLY,
			     REASON_POLICY_ALLOWED, &tcp);

	/* Another identity is not allowed. */
	send_flow(FROM_NETDEV, fx.if_nd0, &remote, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 1);
}

/* Identity and port: that port only. */
static void test_allow_l3_l4(void **state)
{
	struct flow ok = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow other_port = {POD_A, 40001, POD_B, 8081, IPPROTO_TCP};
	struct flow other_proto = {POD_A, 40002, POD_B, 8080, IPPROTO_UDP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, POLICY_PREFIX_L4_FULL, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &ok, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &other_port, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &other_proto, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 3);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_L4,
			     REASON_POLICY_ALLOWED, &ok);
	assert_verdict_event(&evs.ev[1], EP_B, ING, ID_A, POLICY_ACTION_DENY, POLICY_MATCH_NONE,
			     DROP_POLICY, &other_port);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 2);
	/* Denied flows leave no conntrack entry. */
	assert_int_equal(ct_get(&other_port, CT_EGRESS, &(struct ct4_entry){}), -ENOENT);
}

/* Any identity, one port: from a remote pod and from the world alike. */
static void test_allow_l4_only(void **state)
{
	struct flow remote = {REMOTE_POD, 40000, POD_B, 80, IPPROTO_TCP};
	struct flow world = {WORLD, 40001, POD_B, 80, IPPROTO_TCP};
	struct flow other = {WORLD, 40002, POD_B, 81, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, 0, ING, IPPROTO_TCP, 80, POLICY_PREFIX_L4_FULL, ALLOW);

	send_flow(FROM_NETDEV, fx.if_nd0, &remote, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &world, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &other, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 3);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_REMOTE, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L4_ONLY, REASON_POLICY_ALLOWED, &remote);
	assert_verdict_event(&evs.ev[1], EP_B, ING, IDENTITY_WORLD, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L4_ONLY, REASON_POLICY_ALLOWED, &world);
}

/* 8080/13 is 8080-8087: one entry for the range. */
static void test_port_range_prefix(void **state)
{
	static const struct {
		__u16 port;
		int verdict;
	} cases[] = {{8079, TC_ACT_SHOT},     {8080, TC_ACT_REDIRECT}, {8083, TC_ACT_REDIRECT},
		     {8087, TC_ACT_REDIRECT}, {8088, TC_ACT_SHOT},     {40960, TC_ACT_SHOT}};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, POLICY_PREFIX_PROTO + 13, ALLOW);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow f = {POD_A, (__u16)(41000 + i), POD_B, cases[i].port, IPPROTO_TCP};

		send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
		if (r.verdict != cases[i].verdict)
			fail_msg("port %u: verdict %d, want %d", cases[i].port, r.verdict,
				 cases[i].verdict);
	}
	assert_int_equal(rule_get(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 21).packets, 3);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.ev[1].match_type, POLICY_MATCH_L3_L4);
}

/* Identity 0, prefix 0: everything, from everyone ("all"); and a protocol
 * alone for any identity. */
static void test_wildcard_identity(void **state)
{
	struct flow world = {WORLD, 40000, POD_B, 9999, IPPROTO_UDP};
	struct flow pod = {POD_A, 40001, POD_B, 22, IPPROTO_TCP};
	struct flow icmp = {POD_A, 77, WORLD, 77, IPPROTO_ICMP};
	struct flow udp_out = {POD_A, 40002, WORLD, 53, IPPROTO_UDP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, 0, ING, 0, 0, 0, ALLOW);
	rule(EP_A, 0, EGR, IPPROTO_ICMP, 0, POLICY_PREFIX_PROTO, ALLOW);
	rule(EP_A, ID_B, EGR, 0, 0, 0, ALLOW);

	send_flow(FROM_NETDEV, fx.if_nd0, &world, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &pod, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &icmp, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &udp_out, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 5);
	assert_verdict_event(&evs.ev[0], EP_B, ING, IDENTITY_WORLD, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_ALL, REASON_POLICY_ALLOWED, &world);
	/* pod -> pod: A's egress (L3-only), then B's ingress (all). */
	assert_verdict_event(&evs.ev[1], EP_A, EGR, ID_B, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_ONLY,
			     REASON_POLICY_ALLOWED, &pod);
	assert_verdict_event(&evs.ev[2], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_ALL,
			     REASON_POLICY_ALLOWED, &pod);
	assert_verdict_event(&evs.ev[3], EP_A, EGR, IDENTITY_WORLD, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_PROTO_ONLY, REASON_POLICY_ALLOWED, &icmp);
	assert_verdict_event(&evs.ev[4], EP_A, EGR, IDENTITY_WORLD, POLICY_ACTION_DENY,
			     POLICY_MATCH_NONE, DROP_POLICY, &udp_out);
}

/* A deny wins over an allow that matches more narrowly: a deny of any
 * identity on TCP 0-1023 over an allow of A on TCP 80; the allow still
 * holds where the deny does not reach; a deny of A's own identity on any
 * port over an allow of everyone on that port. */
static void test_deny_over_allow(void **state)
{
	struct flow low = {POD_A, 40000, POD_B, 80, IPPROTO_TCP};
	struct flow high = {POD_A, 40001, POD_B, 8080, IPPROTO_TCP};
	struct flow remote = {REMOTE_POD, 40002, POD_B, 8080, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, 0, ING, IPPROTO_TCP, 0, POLICY_PREFIX_PROTO + 6, DENY);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 80, POLICY_PREFIX_L4_FULL, ALLOW);
	rule(EP_B, ID_A, ING, 0, 0, 0, ALLOW);
	rule(EP_B, 0, ING, IPPROTO_TCP, 8080, POLICY_PREFIX_L4_FULL, ALLOW);
	rule(EP_B, ID_REMOTE, ING, 0, 0, 0, DENY);

	send_flow(FROM_CONTAINER, fx.if_lxca, &low, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &high, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &remote, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);

	assert_int_equal(metric(DROP_POLICY_DENY, METRIC_DIR_INGRESS), 2);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 0);
	assert_int_equal(rule_get(EP_B, 0, ING, IPPROTO_TCP, 0, 14).packets, 1);
	assert_int_equal(rule_get(EP_B, ID_A, ING, IPPROTO_TCP, 80, 24).packets, 0);
	/* 8080 from A: the port entry (24 bits) beats A's identity alone (0). */
	assert_int_equal(rule_get(EP_B, 0, ING, IPPROTO_TCP, 8080, 24).packets, 1);
	assert_int_equal(rule_get(EP_B, ID_A, ING, 0, 0, 0).packets, 0);
	assert_int_equal(rule_get(EP_B, ID_REMOTE, ING, 0, 0, 0).packets, 1);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 3);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_A, POLICY_ACTION_DENY, POLICY_MATCH_L4_ONLY,
			     DROP_POLICY_DENY, &low);
	assert_verdict_event(&evs.ev[1], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_L4_ONLY,
			     REASON_POLICY_ALLOWED, &high);
	assert_verdict_event(&evs.ev[2], EP_B, ING, ID_REMOTE, POLICY_ACTION_DENY,
			     POLICY_MATCH_L3_ONLY, DROP_POLICY_DENY, &remote);
}

/* ---- enforcement and the map -------------------------------------------- */

/* An enforced direction whose trie has no matching entry: DROP_POLICY. */
static void test_map_miss_drops(void **state)
{
	struct flow f = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow out = {POD_A, 40001, WORLD, 443, IPPROTO_TCP};
	struct events evs;
	struct run r;
	int drops = 0;

	(void)state;
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_REMOTE, ING, 0, 0, 0, ALLOW);	 /* another identity */
	rule(EP_A, ID_B, EGR, IPPROTO_UDP, 0, 8, ALLOW); /* another protocol */

	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &out, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 0);
	events_read(&evs, 0);
	for (int i = 0; i < evs.n; i++) {
		if (evs.ev[i].type != EVENT_DROP)
			continue;
		assert_int_equal(evs.ev[i].reason, DROP_POLICY);
		assert_int_equal(evs.ev[i].dir, METRIC_DIR_EGRESS);
		drops++;
	}
	assert_int_equal(drops, 2);
}

/* No enforcement: everything passes, no lookup (an empty trie is there),
 * nothing counted, no verdict event, no verdict in conntrack. */
static void test_enforcement_off_allows(void **state)
{
	struct flow f = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow in = {WORLD, 40001, POD_B, 80, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	policy_trie(EP_A);
	policy_trie(EP_B);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &in, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(metric(REASON_POLICY_ALLOWED, METRIC_DIR_INGRESS) +
			     metric(REASON_POLICY_ALLOWED, METRIC_DIR_EGRESS),
			 0);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 0);
	assert_int_equal(
	    ct_must(&f, CT_EGRESS).flags & (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED), 0);

	/* Egress enforced on A only: B's side is still open. */
	enforce(ENDPOINT_POLICY_EGRESS, 0);
	rule(EP_A, ID_B, EGR, 0, 0, 0, ALLOW);
	f.sport++;
	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(ct_must(&f, CT_EGRESS).flags &
			     (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED),
			 CT_F_EGRESS_ALLOWED);
}

/* Enforced, and no trie in the endpoint's slot (not written yet, or the
 * endpoint has no id): fail closed. */
static void test_missing_map_fails_closed(void **state)
{
	struct flow f = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow in = {WORLD, 40001, POD_A, 80, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_INGRESS, ENDPOINT_POLICY_INGRESS);
	endpoint_set(POD_A, fx.if_lxca, MAC_POD_A, MAC_LXC_A, ID_A, 0, ENDPOINT_POLICY_INGRESS);

	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_NETDEV, fx.if_nd0, &in, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 2);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 2);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_A, POLICY_ACTION_DENY, POLICY_MATCH_NONE,
			     DROP_POLICY, &f);
	assert_verdict_event(&evs.ev[1], 0, ING, IDENTITY_WORLD, POLICY_ACTION_DENY,
			     POLICY_MATCH_NONE, DROP_POLICY, &in);

	/* The map arrives: the same flow passes. */
	rule(EP_B, ID_A, ING, 0, 0, 0, ALLOW);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
}

/* Through the agent's writer (agent/policy/map.c): a deny of A on TCP
 * 0-1023 beats the allow of A on TCP 80 though the trie would return the
 * longer allow, because the writer leaves that allow out; A's other ports
 * are allowed by A's identity alone. */
static void test_writer_deny_precedence_same_identity(void **state)
{
	const struct policy_map_entry e[] = {
	    {.identity = ID_A,
	     .dir = ING,
	     .proto = IPPROTO_TCP,
	     .port = 0,
	     .port_prefix = 6,
	     .deny = true},
	    {.identity = ID_A, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	    {.identity = ID_A, .dir = ING},
	};
	struct flow low = {POD_A, 40000, POD_B, 80, IPPROTO_TCP};
	struct flow high = {POD_A, 40001, POD_B, 8080, IPPROTO_TCP};
	struct policy_map_result res;
	struct policy_maps pm;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	policy_maps_init(&pm, MAP(policy), 64);
	assert_int_equal(policy_map_set(&pm, EP_B, e, 3, &res), 0);
	assert_int_equal(res.shadowed, 1);
	send_flow(FROM_CONTAINER, fx.if_lxca, &low, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY_DENY, METRIC_DIR_INGRESS), 1);
	send_flow(FROM_CONTAINER, fx.if_lxca, &high, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);

	/* The endpoint's map removed while it is enforced: fail closed. */
	assert_int_equal(policy_map_delete(&pm, EP_B), 0);
	high.sport++;
	send_flow(FROM_CONTAINER, fx.if_lxca, &high, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 1);
}

/* ---- once per flow: conntrack carries the verdict ----------------------- */

/* The first packet is looked up; with the entries gone, the reply and the
 * flow's later packets still pass (conntrack), while a new flow does not. */
static void test_reply_and_later_packets_skip_lookup(void **state)
{
	struct flow f = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow reply = reversed(&f);
	struct flow f2 = {POD_A, 40001, POD_B, 8080, IPPROTO_TCP};
	struct flow in = {REMOTE_POD, 40002, POD_B, 8080, IPPROTO_TCP};
	struct flow in_reply = reversed(&in);
	struct policy_entry pe;
	struct events evs;
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_EGRESS | ENDPOINT_POLICY_INGRESS);
	rule(EP_A, ID_B, EGR, IPPROTO_TCP, 8080, 24, ALLOW);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24, ALLOW);
	rule(EP_B, 0, ING, IPPROTO_TCP, 8080, 24, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &in, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	rule_del(EP_A, ID_B, EGR, IPPROTO_TCP, 8080, 24);
	rule_del(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24);
	rule_del(EP_B, 0, ING, IPPROTO_TCP, 8080, 24);

	/* B's replies: B's egress is enforced and allows nothing. */
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_memory_equal(r.out, MAC_POD_A, 6);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &in_reply, PKT_SYN | PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	for (int i = 0; i < 3; i++) {
		send_flow(FROM_CONTAINER, fx.if_lxca, &f, PKT_ACK, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
		send_flow(FROM_NETDEV, fx.if_nd0, &in, PKT_ACK, &r);
		assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	}
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 3); /* A egress, B ingress; B ingress: the two SYNs */
	assert_int_equal(metric(REASON_POLICY_ALLOWED, METRIC_DIR_INGRESS), 2);
	assert_int_equal(metric(REASON_POLICY_ALLOWED, METRIC_DIR_EGRESS), 1);

	/* A new flow finds no entry now. */
	send_flow(FROM_CONTAINER, fx.if_lxca, &f2, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 1);

	/* Put back, the counters start again at the new flow. */
	rule(EP_A, ID_B, EGR, IPPROTO_TCP, 8080, 24, ALLOW);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24, ALLOW);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f2, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f2, PKT_ACK, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	pe = rule_get(EP_A, ID_B, EGR, IPPROTO_TCP, 8080, 24);
	assert_int_equal(pe.packets, 1);
}

/* The matched entry counts the packets it decided, with their bytes; the
 * flows' later packets add nothing. */
static void test_counters_in_matched_entry(void **state)
{
	struct flow f1 = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow f2 = {POD_A, 40001, POD_B, 8080, IPPROTO_TCP};
	struct flow f3 = {POD_A, 40002, POD_B, 9090, IPPROTO_TCP};
	struct policy_entry port, any;
	size_t len;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24, ALLOW);
	rule(EP_B, ID_A, ING, 0, 0, 0, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &f1, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	len = r.len;
	send_flow(FROM_CONTAINER, fx.if_lxca, &f1, PKT_ACK, &r);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f2, PKT_SYN, &r);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f3, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	port = rule_get(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24);
	any = rule_get(EP_B, ID_A, ING, 0, 0, 0);
	assert_int_equal(port.packets, 2);
	assert_int_equal(port.bytes, 2 * len);
	assert_int_equal(any.packets, 1);
	assert_int_equal(any.bytes, len);
}

/* The conntrack entry records which policies let the flow through. */
static void test_ct_entry_carries_verdict(void **state)
{
	struct flow pod = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow in = {WORLD, 40001, POD_B, 8080, IPPROTO_UDP};
	struct flow out = {POD_A, 40002, REMOTE_POD, 53, IPPROTO_UDP};
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	rule(EP_A, 0, EGR, 0, 0, 0, ALLOW);
	rule(EP_B, 0, ING, 0, 0, 0, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &pod, PKT_SYN, &r);
	send_flow(FROM_NETDEV, fx.if_nd0, &in, 0, &r);
	send_flow(FROM_CONTAINER, fx.if_lxca, &out, 0, &r);
	assert_int_equal(ct_must(&pod, CT_EGRESS).flags &
			     (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED),
			 CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED);
	assert_int_equal(ct_must(&in, CT_INGRESS).flags &
			     (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED),
			 CT_F_INGRESS_ALLOWED);
	assert_int_equal(ct_must(&out, CT_EGRESS).flags &
			     (CT_F_INGRESS_ALLOWED | CT_F_EGRESS_ALLOWED),
			 CT_F_EGRESS_ALLOWED);
	/* The TCP state machine leaves the verdict alone. */
	send_flow(FROM_CONTAINER, fx.if_lxca, &pod, PKT_FIN | PKT_ACK, &r);
	assert_true(ct_must(&pod, CT_EGRESS).flags & CT_F_TX_CLOSING);
	assert_true(ct_must(&pod, CT_EGRESS).flags & CT_F_EGRESS_ALLOWED);
}

/* Verdicts by reason and the policy's direction: the ingress policy of a
 * pod-to-pod flow is decided in from_container (an EGRESS program) and
 * counted INGRESS. */
static void test_metrics_per_direction(void **state)
{
	struct flow ok = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow in_denied = {POD_A, 40001, POD_B, 22, IPPROTO_TCP};
	struct flow out_denied = {POD_A, 40002, WORLD, 22, IPPROTO_TCP};
	struct flow out_deny = {POD_A, 40003, WORLD, 25, IPPROTO_TCP};
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	rule(EP_A, ID_B, EGR, 0, 0, 0, ALLOW);
	rule(EP_A, 0, EGR, IPPROTO_TCP, 25, 24, DENY);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &ok, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &in_denied, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &out_denied, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &out_deny, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);

	/* ok: A's egress and B's ingress; in_denied: A's egress, then B's
	 * ingress denies. */
	assert_int_equal(metric(REASON_POLICY_ALLOWED, METRIC_DIR_EGRESS), 2);
	assert_int_equal(metric(REASON_POLICY_ALLOWED, METRIC_DIR_INGRESS), 1);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 1);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(DROP_POLICY_DENY, METRIC_DIR_EGRESS), 1);
	assert_int_equal(metric(DROP_POLICY_DENY, METRIC_DIR_INGRESS), 0);
}

/* One verdict event per new flow, none for its later packets or replies. */
static void test_verdict_event_once_per_flow(void **state)
{
	struct flow f = {WORLD, 40000, POD_B, 443, IPPROTO_TCP};
	struct flow reply = reversed(&f);
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, IDENTITY_WORLD, ING, IPPROTO_TCP, 443, 24, ALLOW);

	send_flow(FROM_NETDEV, fx.if_nd0, &f, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxcb, &reply, PKT_SYN | PKT_ACK, &r);
	for (int i = 0; i < 5; i++)
		send_flow(FROM_NETDEV, fx.if_nd0, &f, PKT_ACK, &r);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 1);
	assert_verdict_event(&evs.ev[0], EP_B, ING, IDENTITY_WORLD, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L3_L4, REASON_POLICY_ALLOWED, &f);
	assert_int_equal(evs.ev[0].ifindex, fx.if_nd0);
	assert_int_equal(evs.ev[0].src_identity, IDENTITY_WORLD);
	assert_int_equal(evs.ev[0].dst_identity, ID_B);
	assert_int_not_equal(evs.ev[0].flow_hash, 0);
}

/* ---- enforcement points ------------------------------------------------- */

/* Egress policy sees the backend a service translated to, not the VIP. */
static void test_egress_after_service_translation(void **state)
{
	struct flow svc = {POD_A, 40000, VIP, 80, IPPROTO_TCP};
	struct flow post = {POD_A, 40000, POD_B, 8080, IPPROTO_TCP};
	struct lb4_key k = {.address = ip4(VIP), .dport = htons(80), .proto = IPPROTO_TCP};
	struct lb4_service s = {.count = 1, .rev_nat_index = 7, .flags = SVC_FLAG_CLUSTER_IP};
	struct lb4_backend be = {.address = ip4(POD_B), .port = htons(8080), .proto = IPPROTO_TCP};
	struct lb4_reverse_nat rn = {.address = ip4(VIP), .port = htons(80)};
	struct events evs;
	__u32 id = 1, rev = 7;
	struct run r;

	(void)state;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_backends), &id, &be, BPF_ANY), 0);
	k.backend_slot = 1;
	assert_int_equal(bpf_map_update_elem(
			     MAP(lb4_services), &k,
			     &(struct lb4_service){.backend_id = 1, .rev_nat_index = 7}, BPF_ANY),
			 0);
	k.backend_slot = 0;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_services), &k, &s, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(MAP(lb4_reverse_nat), &rev, &rn, BPF_ANY), 0);
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	rule(EP_A, 0, EGR, IPPROTO_TCP, 80, 24, ALLOW); /* the VIP's port: not what counts */

	send_flow(FROM_CONTAINER, fx.if_lxca, &svc, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 1);

	rule(EP_A, ID_B, EGR, IPPROTO_TCP, 8080, 24, ALLOW);
	rule(EP_B, ID_A, ING, IPPROTO_TCP, 8080, 24, ALLOW);
	send_flow(FROM_CONTAINER, fx.if_lxca, &svc, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(r.v.daddr, ip4(POD_B));
	assert_true(ct_must(&post, CT_EGRESS).flags & CT_F_EGRESS_ALLOWED);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 3);
	assert_verdict_event(&evs.ev[1], EP_A, EGR, ID_B, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_L4,
			     REASON_POLICY_ALLOWED, &post);
	assert_verdict_event(&evs.ev[2], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_L4,
			     REASON_POLICY_ALLOWED, &post);
}

/* NodePort to a local backend: the backend's ingress policy, after DNAT,
 * with the client's identity. */
static void test_ingress_nodeport_after_dnat(void **state)
{
	struct flow np = {WORLD, 40000, NODE_IP, 30080, IPPROTO_TCP};
	struct flow post = {WORLD, 40000, POD_B, 8080, IPPROTO_TCP};
	struct lb4_key k = {.address = ip4(NODE_IP), .dport = htons(30080), .proto = IPPROTO_TCP};
	struct lb4_service s = {.count = 1, .rev_nat_index = 8, .flags = SVC_FLAG_NODE_PORT};
	struct lb4_backend be = {.address = ip4(POD_B), .port = htons(8080), .proto = IPPROTO_TCP};
	struct lb4_reverse_nat rn = {.address = ip4(NODE_IP), .port = htons(30080)};
	struct events evs;
	__u32 id = 2, rev = 8;
	struct run r;

	(void)state;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_backends), &id, &be, BPF_ANY), 0);
	k.backend_slot = 1;
	assert_int_equal(bpf_map_update_elem(
			     MAP(lb4_services), &k,
			     &(struct lb4_service){.backend_id = 2, .rev_nat_index = 8}, BPF_ANY),
			 0);
	k.backend_slot = 0;
	assert_int_equal(bpf_map_update_elem(MAP(lb4_services), &k, &s, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(MAP(lb4_reverse_nat), &rev, &rn, BPF_ANY), 0);
	enforce(0, ENDPOINT_POLICY_INGRESS);

	send_flow(FROM_NETDEV, fx.if_nd0, &np, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(ct_get(&post, CT_INGRESS, &(struct ct4_entry){}), -ENOENT);

	rule(EP_B, IDENTITY_WORLD, ING, IPPROTO_TCP, 8080, 24, ALLOW);
	send_flow(FROM_NETDEV, fx.if_nd0, &np, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_int_equal(r.v.daddr, ip4(POD_B));
	assert_true(ct_must(&post, CT_INGRESS).flags & CT_F_INGRESS_ALLOWED);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 2);
	assert_verdict_event(&evs.ev[1], EP_B, ING, IDENTITY_WORLD, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L3_L4, REASON_POLICY_ALLOWED, &post);
}

/* to_container: what the node's stack sends is HOST and allowed
 * (allow-localhost), with no lookup; a remote pod's packet the stack routed
 * is looked up. */
static void test_ingress_to_container(void **state)
{
	struct flow host = {NODE_IP, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow remote = {REMOTE_POD, 40001, POD_B, 8080, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	policy_trie(EP_B);

	send_flow(TO_CONTAINER, fx.if_lxcb, &host, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_int_equal(ct_must(&host, CT_INGRESS).flags & CT_F_INGRESS_ALLOWED, 0);
	send_flow(TO_CONTAINER, fx.if_lxcb, &remote, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_INGRESS), 1);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 1);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_REMOTE, POLICY_ACTION_DENY,
			     POLICY_MATCH_NONE, DROP_POLICY, &remote);

	rule(EP_B, ID_REMOTE, ING, 0, 0, 0, ALLOW);
	send_flow(TO_CONTAINER, fx.if_lxcb, &remote, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	assert_true(ct_must(&remote, CT_INGRESS).flags & CT_F_INGRESS_ALLOWED);
}

/* Off the wire, a source claiming the node's address is the world, not
 * the host; and without host routing, a pod-to-pod flow's ingress policy is
 * to_container's (the stack delivers it), not from_container's. */
static void test_host_identity_only_from_stack(void **state)
{
	struct flow spoof = {NODE_IP, 40000, POD_B, 8080, IPPROTO_TCP};
	struct flow pod = {POD_A, 40001, POD_B, 8080, IPPROTO_TCP};
	struct events evs;
	struct run r;

	(void)state;
	enforce(0, ENDPOINT_POLICY_INGRESS);
	policy_trie(EP_B);
	ipcache_add(NODE_IP, IDENTITY_HOST);
	send_flow(FROM_NETDEV, fx.if_nd0, &spoof, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 1);
	assert_int_equal(evs.ev[0].remote_identity, IDENTITY_WORLD);

	dp_load(CFG_NODE_PORT);
	enforce(0, ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, 0, 0, 0, ALLOW);
	send_flow(FROM_CONTAINER, fx.if_lxca, &pod, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK); /* to the stack */
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 0);
	send_flow(TO_CONTAINER, fx.if_lxcb, &pod, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_OK);
	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 1);
	assert_verdict_event(&evs.ev[0], EP_B, ING, ID_A, POLICY_ACTION_ALLOW, POLICY_MATCH_L3_ONLY,
			     REASON_POLICY_ALLOWED, &pod);
}

/* An ICMP error about a flow conntrack tracks belongs to that flow: B's
 * port unreachable for A's UDP datagram passes B's egress and A's ingress
 * policy, neither of which allows ICMP. An unrelated one does not. */
static void test_icmp_error_related(void **state)
{
	struct flow f = {POD_A, 40000, POD_B, 5353, IPPROTO_UDP};
	struct pkt_spec orig = {.saddr = ip4(POD_A),
				.daddr = ip4(POD_B),
				.proto = IPPROTO_UDP,
				.sport = 40000,
				.dport = 5353,
				.payload_len = 8};
	__u8 quote[PKT_MAX], err[PKT_MAX];
	struct udphdr *udp;
	size_t qlen, elen;
	struct run r;

	(void)state;
	enforce(ENDPOINT_POLICY_INGRESS, ENDPOINT_POLICY_EGRESS | ENDPOINT_POLICY_INGRESS);
	rule(EP_B, ID_A, ING, IPPROTO_UDP, 5353, 24, ALLOW);
	policy_trie(EP_A);
	send_flow(FROM_CONTAINER, fx.if_lxca, &f, 0, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);

	/* B -> A: ICMP port unreachable quoting A's datagram. */
	qlen = pkt_build(&orig, quote, sizeof(quote));
	assert_true(qlen > 0);
	{
		struct pkt_spec s = {.saddr = ip4(POD_B),
				     .daddr = ip4(POD_A),
				     .proto = IPPROTO_ICMP,
				     .icmp_type = 3,
				     .payload_len = (__u16)(qlen - ETH_HLEN)};

		elen = pkt_build(&s, err, sizeof(err));
	}
	assert_true(elen > 0);
	memcpy(err + ETH_HLEN + 20 + 8, quote + ETH_HLEN, qlen - ETH_HLEN);
	err[ETH_HLEN + 20 + 1] = 3; /* code: port unreachable */
	{
		struct pkt_view v;

		assert_int_equal(pkt_parse(err, elen, &v), 0);
		pkt_fix_l4_csum(err, &v);
	}
	run_pkt(FROM_CONTAINER, fx.if_lxcb, err, elen, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	assert_memory_equal(r.out, MAC_POD_A, 6);

	/* No conntrack entry for the error itself: the next one is judged
	 * afresh. The same error about a flow A never opened (another port)
	 * is B's own ICMP, which B's egress policy does not allow. */
	assert_int_equal(ct_get(&(struct flow){POD_B, 0, POD_A, 0, IPPROTO_ICMP}, CT_EGRESS,
				&(struct ct4_entry){}),
			 -ENOENT);
	udp = (struct udphdr *)(err + ETH_HLEN + 20 + 8 + 20);
	udp->dest = htons(9999);
	{
		struct pkt_view v;

		assert_int_equal(pkt_parse(err, elen, &v), 0);
		pkt_fix_l4_csum(err, &v);
	}
	run_pkt(FROM_CONTAINER, fx.if_lxcb, err, elen, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	assert_int_equal(metric(DROP_POLICY, METRIC_DIR_EGRESS), 1);
}

/* CIDR identities (agent/policy/cidr.h): prefixes a policy names are in the
 * IP cache with their own identity, and the trie resolves an address to its
 * longest prefix: a pod's /32, then an except, then the CIDR; an address no
 * prefix covers is world. */
static void test_cidr_identities_by_longest_prefix(void **state)
{
	const __u32 cidr24 = IDENTITY_CIDR_MIN, except28 = IDENTITY_CIDR_MIN + 1,
		    pods16 = IDENTITY_CIDR_MIN + 2;
	struct flow in_cidr = {POD_A, 40000, "203.0.113.10", 80, IPPROTO_TCP};
	struct flow in_except = {POD_A, 40001, "203.0.113.20", 80, IPPROTO_TCP};
	struct flow outside = {POD_A, 40002, "198.51.100.10", 80, IPPROTO_TCP};
	struct flow remote_pod = {POD_A, 40003, REMOTE_POD, 80, IPPROTO_TCP};
	struct flow from_cidr = {"203.0.113.10", 40004, POD_B, 80, IPPROTO_TCP};
	struct flow from_except = {"203.0.113.20", 40005, POD_B, 80, IPPROTO_TCP};
	const struct {
		const char *addr;
		__u32 len, identity;
	} prefixes[] = {
	    {"203.0.113.0", 24, cidr24}, {"203.0.113.16", 28, except28}, {"10.2.0.0", 16, pods16}};
	struct events evs;
	struct run r;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct ipcache_key k = {.prefixlen = prefixes[i].len,
					.address = ip4(prefixes[i].addr)};
		struct ipcache_value v = {.identity = prefixes[i].identity};

		assert_int_equal(bpf_map_update_elem(MAP(ipcache), &k, &v, BPF_ANY), 0);
	}
	enforce(ENDPOINT_POLICY_EGRESS, ENDPOINT_POLICY_INGRESS);
	/* 203.0.113.0/24 except 203.0.113.16/28, both ways; 10.2.0.0/16 on egress. */
	rule(EP_A, cidr24, EGR, 0, 0, 0, ALLOW);
	rule(EP_A, pods16, EGR, 0, 0, 0, ALLOW);
	rule(EP_B, cidr24, ING, 0, 0, 0, ALLOW);

	send_flow(FROM_CONTAINER, fx.if_lxca, &in_cidr, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &in_except, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_CONTAINER, fx.if_lxca, &outside, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	/* The remote pod's /32 carries its own identity: the CIDR over it
	 * does not make it 10.2.0.0/16's. */
	send_flow(FROM_CONTAINER, fx.if_lxca, &remote_pod, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);
	send_flow(FROM_NETDEV, fx.if_nd0, &from_cidr, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_REDIRECT);
	send_flow(FROM_NETDEV, fx.if_nd0, &from_except, PKT_SYN, &r);
	assert_int_equal(r.verdict, TC_ACT_SHOT);

	events_read(&evs, EVENT_POLICY_VERDICT);
	assert_int_equal(evs.n, 6);
	assert_verdict_event(&evs.ev[0], EP_A, EGR, cidr24, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L3_ONLY, REASON_POLICY_ALLOWED, &in_cidr);
	assert_verdict_event(&evs.ev[1], EP_A, EGR, except28, POLICY_ACTION_DENY, POLICY_MATCH_NONE,
			     DROP_POLICY, &in_except);
	assert_verdict_event(&evs.ev[2], EP_A, EGR, IDENTITY_WORLD, POLICY_ACTION_DENY,
			     POLICY_MATCH_NONE, DROP_POLICY, &outside);
	assert_verdict_event(&evs.ev[3], EP_A, EGR, ID_REMOTE, POLICY_ACTION_DENY,
			     POLICY_MATCH_NONE, DROP_POLICY, &remote_pod);
	assert_verdict_event(&evs.ev[4], EP_B, ING, cidr24, POLICY_ACTION_ALLOW,
			     POLICY_MATCH_L3_ONLY, REASON_POLICY_ALLOWED, &from_cidr);
	assert_verdict_event(&evs.ev[5], EP_B, ING, except28, POLICY_ACTION_DENY, POLICY_MATCH_NONE,
			     DROP_POLICY, &from_except);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_allow_l3),
	    T(test_allow_l3_l4),
	    T(test_allow_l4_only),
	    T(test_port_range_prefix),
	    T(test_wildcard_identity),
	    T(test_deny_over_allow),
	    T(test_writer_deny_precedence_same_identity),
	    T(test_map_miss_drops),
	    T(test_enforcement_off_allows),
	    T(test_missing_map_fails_closed),
	    T(test_reply_and_later_packets_skip_lookup),
	    T(test_counters_in_matched_entry),
	    T(test_ct_entry_carries_verdict),
	    T(test_metrics_per_direction),
	    T(test_verdict_event_once_per_flow),
	    T(test_egress_after_service_translation),
	    T(test_ingress_nodeport_after_dnat),
	    T(test_ingress_to_container),
	    T(test_host_identity_only_from_stack),
	    T(test_icmp_error_related),
	    T(test_cidr_identities_by_longest_prefix),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
