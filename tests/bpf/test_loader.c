// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The loader (agent/datapath/loader.c) with both BPF objects: the socket LB
 * and the tc datapath share every map through the pins; the tc object gets
 * its CONFIG at load; datapath_tc_load() swaps the programs on every device
 * in place (tcx link update, legacy filter replace); a restart reuses the
 * pins and the links.
 *
 * A private network namespace, bpffs directory and cgroup
 * (/sys/fs/cgroup/unified/axon-test-<pid>, no process in it) make the node.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include <cmocka.h>

#include "dp_fixture.h"
#include "axon/ct.h"
#include "axon/maps.h"
#include "axon/policy.h"
#include "log.h"
#include "pin.h"
#include "datapath/loader.h"
#include "sock_lb.skel.h"
#include "tc_datapath.skel.h"

#define TCX_INGRESS 46
#define TCX_EGRESS  47
#define LEGACY_PRIO 0xa0 /* Axon's legacy filter slot (tc_attach.c) */

static struct {
	char cg_path[128];
	struct datapath dp;
	bool loaded;
	__u32 services_id;
	__u32 trie_id; /* a policy trie put in endpoint 7's slot */
} fx;

static const char *cgroup2_root(void)
{
	static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	struct statfs st;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (!statfs(roots[i], &st) && st.f_type == CGROUP2_SUPER_MAGIC)
			return roots[i];
	}
	return NULL;
}

static struct loader_config loader_cfg(const struct datapath_config *tc_config)
{
	static struct map_sizes sizes;
	static const struct map_size_flags flags = {
	    .lb_map_max = 1024,
	    .max = {[MS_LB4_SOCK_REV] = 4096},
	};

	if (map_sizes_resolve(&flags, 0, &sizes, NULL, 0))
		fail_msg("map sizes");
	return (struct loader_config){
	    .bpf_root = dp_fx.bpf_root,
	    .cgroup_root = fx.cg_path,
	    .sizes = &sizes,
	    .state_dir = dp_fx.state_dir,
	    .tc_mode = TC_MODE_AUTO,
	    .tc_config = tc_config,
	};
}

/* A policy trie of @value_size-byte values, 0 on failure. */
static int trie_create(__u32 value_size)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);

	return bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "test_trie", sizeof(struct policy_key),
			      value_size, 16, &opts);
}

/* The id of the map in slot @slot of the pinned policy array, 0 if none. */
static __u32 policy_slot_id(__u32 slot)
{
	int fd = pin_map_open(dp_fx.bpf_root, MAP_POLICY);
	__u32 id = 0;

	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &slot, &id))
		id = 0;
	close(fd);
	return id;
}

static __u32 pinned_map_id(const char *name)
{
	int fd = pin_map_open(dp_fx.bpf_root, name);
	__u32 id;

	if (fd < 0)
		return 0;
	id = map_id_of(fd);
	close(fd);
	return id;
}

static int tcx_prog(const char *ifname, int type, __u32 *id)
{
	__u32 ids[4] = {}, cnt = 4;

	if (bpf_prog_query(if_nametoindex(ifname), type, 0, NULL, ids, &cnt))
		return -errno;
	*id = ids[0];
	return cnt;
}

static __u32 legacy_prog(const char *ifname, bool ingress)
{
	struct bpf_tc_hook hook;
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .priority = LEGACY_PRIO, .handle = LEGACY_PRIO);

	memset(&hook, 0, sizeof(hook));
	hook.sz = sizeof(hook);
	hook.ifindex = if_nametoindex(ifname);
	hook.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
	return bpf_tc_query(&hook, &opts) ? 0 : opts.prog_id;
}

static __u32 link_id_at(const char *ifname, const char *dir)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info), id = 0;
	char pin[256];
	int fd;

	snprintf(pin, sizeof(pin), "%s/links/tc-%s-%s", dp_fx.bpf_root, ifname, dir);
	fd = bpf_obj_get(pin);
	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		id = info.id;
	close(fd);
	return id;
}

static void test_load_shares_pinned_maps(void **state)
{
	struct loader_config cfg = loader_cfg(NULL);
	struct datapath *dp = &fx.dp;
	static const char *const shared[] = {MAP_LB4_SERVICES, MAP_LB4_BACKENDS,
					     MAP_LB4_REVERSE_NAT, MAP_LB4_SOCK_REV, MAP_METRICS};

	(void)state;
	assert_int_equal(datapath_load(dp, &cfg), 0);
	fx.loaded = true;
	assert_non_null(dp->tc);

	/* One map, seen from both objects and from the pin. */
	fx.services_id = map_id_of(bpf_map__fd(dp->sock->maps.lb4_services));
	assert_int_not_equal(fx.services_id, 0);
	assert_int_equal(map_id_of(bpf_map__fd(dp->tc->maps.lb4_services)), fx.services_id);
	assert_int_equal(pinned_map_id(MAP_LB4_SERVICES), fx.services_id);
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		struct bpf_map *s = bpf_object__find_map_by_name(dp->sock->obj, shared[i]);
		struct bpf_map *t = bpf_object__find_map_by_name(dp->tc->obj, shared[i]);

		assert_non_null(s);
		assert_non_null(t);
		assert_int_equal(map_id_of(bpf_map__fd(s)), map_id_of(bpf_map__fd(t)));
		assert_int_equal(map_id_of(bpf_map__fd(t)), pinned_map_id(shared[i]));
	}
	/* The sizes the agent asked for, in both objects. */
	assert_int_equal(bpf_map__max_entries(dp->tc->maps.lb4_services), 1024);
	assert_int_equal(bpf_map__max_entries(dp->tc->maps.lb4_sock_rev), 4096);

	/* The tc-only maps: the datapath's fds are the pinned maps. */
	assert_int_equal(map_id_of(dp->endpoints_fd), pinned_map_id(MAP_ENDPOINTS));
	assert_int_equal(map_id_of(dp->ipcache_fd), pinned_map_id(MAP_IPCACHE));
	assert_int_equal(map_id_of(dp->ct4_tcp_fd), pinned_map_id(MAP_CT4_TCP));
	assert_int_equal(map_id_of(dp->ct4_any_fd), pinned_map_id(MAP_CT4_ANY));
	assert_int_equal(map_id_of(dp->nat4_fd), pinned_map_id(MAP_NAT4));
	assert_int_equal(map_id_of(dp->lb4_affinity_fd), pinned_map_id(MAP_LB4_AFFINITY));
	assert_int_equal(map_id_of(dp->lb4_maglev_fd), pinned_map_id(MAP_LB4_MAGLEV));
	assert_int_equal(map_id_of(dp->events_fd), pinned_map_id(MAP_EVENTS));
	assert_int_equal(map_id_of(dp->policy_fd), pinned_map_id(MAP_POLICY));
	assert_int_not_equal(pinned_map_id(MAP_ENDPOINTS), 0);
	/* One slot per endpoint id; it takes the agent's tries of any size. */
	assert_int_equal(bpf_map__max_entries(dp->tc->maps.policy), POLICY_ENDPOINTS_MAX);
	{
		int trie = trie_create(sizeof(struct policy_entry));
		__u32 slot = 7;

		assert_true(trie >= 0);
		assert_int_equal(bpf_map_update_elem(dp->policy_fd, &slot, &trie, BPF_ANY), 0);
		fx.trie_id = map_id_of(trie);
		close(trie); /* the array holds it */
	}
	for (int i = 0; i < DP_PROG_MAX; i++)
		assert_true(dp->prog_fd[i] >= 0);

	/* No configuration given: the defaults went into CONFIG. */
	assert_int_equal(dp->tc->rodata->CONFIG.node_port_min, NODE_PORT_MIN_DEFAULT);
	assert_int_equal(dp->tc->rodata->CONFIG.ct_lifetime_tcp, CT_LIFETIME_TCP_DEFAULT);
	/* The socket LB is attached to our cgroup (five links pinned). */
	assert_int_equal(dp->n_attach, 5);
}

static void test_tc_load_swaps_programs_in_place(void **state)
{
	struct datapath *dp = &fx.dp;
	struct tc_attach_ctx legacy;
	struct datapath_config cfg;
	__u32 old_in, old_out, old_legacy, link_in, link_out, id, ct_id;

	(void)state;
	assert_true(fx.loaded);
	assert_int_equal(veth_add("ld0"), 0);
	assert_int_equal(veth_add("ld1"), 0);
	assert_int_equal(tc_probe_tcx(&dp->tc_attach, if_nametoindex("ld0")), 0);
	assert_int_equal(dp->tc_attach.mode, TC_MODE_TCX);
	assert_int_equal(tc_attach(&dp->tc_attach, dp->prog_fd[DP_PROG_FROM_NETDEV],
				   dp_prog_names[DP_PROG_FROM_NETDEV], if_nametoindex("ld0"), "ld0",
				   TC_INGRESS, NULL),
			 0);
	assert_int_equal(tc_attach(&dp->tc_attach, dp->prog_fd[DP_PROG_TO_NETDEV],
				   dp_prog_names[DP_PROG_TO_NETDEV], if_nametoindex("ld0"), "ld0",
				   TC_EGRESS, NULL),
			 0);
	legacy = dp->tc_attach;
	legacy.mode = TC_MODE_LEGACY;
	assert_int_equal(tc_attach(&legacy, dp->prog_fd[DP_PROG_FROM_CONTAINER],
				   dp_prog_names[DP_PROG_FROM_CONTAINER], if_nametoindex("ld1"),
				   "ld1", TC_INGRESS, NULL),
			 0);
	old_in = prog_id_of(dp->prog_fd[DP_PROG_FROM_NETDEV]);
	old_out = prog_id_of(dp->prog_fd[DP_PROG_TO_NETDEV]);
	old_legacy = prog_id_of(dp->prog_fd[DP_PROG_FROM_CONTAINER]);
	assert_int_equal(tcx_prog("ld0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, old_in);
	assert_int_equal(legacy_prog("ld1", true), old_legacy);
	link_in = link_id_at("ld0", "ingress");
	link_out = link_id_at("ld0", "egress");
	assert_int_not_equal(link_in, 0);
	ct_id = map_id_of(dp->ct4_tcp_fd);

	datapath_config_defaults(&cfg);
	cfg.node_ip = inet_addr("10.1.2.3");
	assert_int_equal(datapath_tc_load(dp, &cfg), 0);

	/* New programs, the same links, and the filter replaced. */
	assert_int_not_equal(prog_id_of(dp->prog_fd[DP_PROG_FROM_NETDEV]), old_in);
	assert_int_equal(tcx_prog("ld0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(dp->prog_fd[DP_PROG_FROM_NETDEV]));
	assert_int_equal(tcx_prog("ld0", TCX_EGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(dp->prog_fd[DP_PROG_TO_NETDEV]));
	assert_int_not_equal(id, old_out);
	assert_int_equal(link_id_at("ld0", "ingress"), link_in);
	assert_int_equal(link_id_at("ld0", "egress"), link_out);
	assert_int_equal(legacy_prog("ld1", true), prog_id_of(dp->prog_fd[DP_PROG_FROM_CONTAINER]));
	assert_int_not_equal(legacy_prog("ld1", true), old_legacy);
	/* The new programs carry the new CONFIG; the maps are the same. */
	assert_int_equal(dp->tc->rodata->CONFIG.node_ip, inet_addr("10.1.2.3"));
	assert_int_equal(dp->tc_config.node_ip, inet_addr("10.1.2.3"));
	assert_int_equal(map_id_of(dp->ct4_tcp_fd), ct_id);
	assert_int_equal(map_id_of(bpf_map__fd(dp->tc->maps.ct4_tcp)), ct_id);
	assert_int_equal(map_id_of(bpf_map__fd(dp->tc->maps.lb4_services)), fx.services_id);
}

static void test_restart_reuses_pins_and_links(void **state)
{
	struct datapath *dp = &fx.dp;
	struct datapath_config tc_cfg;
	struct loader_config cfg;
	struct tc_attachment list[8];
	__u32 link_in, id;
	int n;

	(void)state;
	assert_true(fx.loaded);
	link_in = link_id_at("ld0", "ingress");
	datapath_close(dp);
	fx.loaded = false;
	/* The pods' device went away while the agent was down. */
	assert_int_equal(sh("ip link del ld1"), 0);

	datapath_config_defaults(&tc_cfg);
	tc_cfg.node_ip = inet_addr("10.9.9.9");
	cfg = loader_cfg(&tc_cfg);
	assert_int_equal(datapath_load(dp, &cfg), 0);
	fx.loaded = true;
	assert_int_equal(map_id_of(bpf_map__fd(dp->sock->maps.lb4_services)), fx.services_id);
	assert_int_equal(map_id_of(bpf_map__fd(dp->tc->maps.lb4_services)), fx.services_id);
	/* The endpoints' policies outlived the agent, and the layout probe
	 * left slot 0 empty. */
	assert_int_equal(policy_slot_id(7), fx.trie_id);
	assert_int_equal(policy_slot_id(0), 0);
	assert_int_equal(link_id_at("ld0", "ingress"), link_in);
	assert_int_equal(tcx_prog("ld0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(dp->prog_fd[DP_PROG_FROM_NETDEV]));
	assert_int_equal(dp->tc->rodata->CONFIG.node_ip, inet_addr("10.9.9.9"));
	/* What is left is exactly the two links on ld0; ld1's record went. */
	n = tc_list(&dp->tc_attach, list, 8);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_string_equal(list[i].ifname, "ld0");
		assert_int_equal(list[i].mode, TC_MODE_TCX);
	}
}

/* Pin, in place of map @name, the map an older Axon might have left there: the
 * same name and size but a value @value_delta bytes longer. Returns its id. */
static __u32 pin_old_layout(const char *name, int value_delta)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), id;
	char path[4096];
	int fd, old;

	assert_int_equal(pin_map_path(path, sizeof(path), dp_fx.bpf_root, name), 0);
	old = bpf_obj_get(path);
	assert_true(old >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(old, &info, &len), 0);
	close(old);
	assert_int_equal(unlink(path), 0);
	fd = bpf_map_create(info.type, name, info.key_size, info.value_size + value_delta,
			    info.max_entries, NULL);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	id = map_id_of(fd);
	close(fd);
	return id;
}

/* Pin, in place of the policy array, one whose tries had 8 bytes more per
 * value, holding such a trie in slot 3. Returns the array's id. */
static __u32 pin_old_policy_layout(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int trie = trie_create(sizeof(struct policy_entry) + 8), fd;
	char path[4096];
	__u32 id, slot = 3;

	assert_true(trie >= 0);
	assert_int_equal(pin_map_path(path, sizeof(path), dp_fx.bpf_root, MAP_POLICY), 0);
	assert_int_equal(unlink(path), 0);
	opts.inner_map_fd = trie;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, MAP_POLICY, sizeof(__u32), sizeof(__u32),
			    POLICY_ENDPOINTS_MAX, &opts);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_update_elem(fd, &slot, &trie, BPF_ANY), 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	id = map_id_of(fd);
	close(fd);
	close(trie);
	return id;
}

static __u32 map_value_size(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.value_size;
}

/* An upgrade whose maps changed layout: a pinned map libbpf cannot reuse is
 * replaced by a new one (logged, its entries lost) instead of the agent
 * failing to start; every other pin is reused. A map both objects share is
 * replaced once and shared again. */
static void test_changed_layout_recreates_the_map(void **state)
{
	struct datapath *dp = &fx.dp;
	struct loader_config cfg = loader_cfg(NULL);
	__u32 old_ct, old_revnat, old_policy, slot = 1;
	int trie;
	char *log = NULL;
	size_t log_len = 0;
	FILE *logf;

	(void)state;
	assert_true(fx.loaded);
	datapath_close(dp);
	fx.loaded = false;
	old_ct = pin_old_layout(MAP_CT4_ANY, 8);
	old_revnat = pin_old_layout(MAP_LB4_REVERSE_NAT, -4);
	old_policy = pin_old_policy_layout();

	logf = open_memstream(&log, &log_len);
	assert_non_null(logf);
	log_set_stream(logf);
	assert_int_equal(datapath_load(dp, &cfg), 0);
	log_set_stream(stderr);
	fclose(logf);
	fx.loaded = true;

	/* New maps with the layout the programs have, under the same pins. */
	assert_int_not_equal(pinned_map_id(MAP_CT4_ANY), old_ct);
	assert_int_equal(map_id_of(dp->ct4_any_fd), pinned_map_id(MAP_CT4_ANY));
	assert_int_equal(map_value_size(dp->ct4_any_fd), sizeof(struct ct4_entry));
	assert_int_not_equal(pinned_map_id(MAP_LB4_REVERSE_NAT), old_revnat);
	assert_int_equal(map_id_of(bpf_map__fd(dp->sock->maps.lb4_reverse_nat)),
			 pinned_map_id(MAP_LB4_REVERSE_NAT));
	assert_int_equal(map_id_of(bpf_map__fd(dp->tc->maps.lb4_reverse_nat)),
			 pinned_map_id(MAP_LB4_REVERSE_NAT));
	/* The policy array takes tries of today's layout, and only those. */
	assert_int_not_equal(pinned_map_id(MAP_POLICY), old_policy);
	assert_int_equal(map_id_of(dp->policy_fd), pinned_map_id(MAP_POLICY));
	assert_int_equal(policy_slot_id(3), 0);
	trie = trie_create(sizeof(struct policy_entry));
	assert_int_equal(bpf_map_update_elem(dp->policy_fd, &slot, &trie, BPF_ANY), 0);
	close(trie);
	trie = trie_create(sizeof(struct policy_entry) + 8);
	assert_int_equal(bpf_map_update_elem(dp->policy_fd, &slot, &trie, BPF_ANY), -EINVAL);
	close(trie);
	/* The rest is what it was. */
	assert_int_equal(pinned_map_id(MAP_LB4_SERVICES), fx.services_id);
	/* Each replacement said so, with the layouts. */
	assert_non_null(strstr(log, "pinned map holds maps of another layout"));
	assert_non_null(strstr(log, "map=policy"));
	assert_non_null(strstr(log, "map=ct4_any"));
	assert_non_null(strstr(log, "map=lb4_reverse_nat"));
	assert_non_null(strstr(log, "pinned map has another layout"));
	free(log);
}

static void cgroup_remove(void)
{
	if (fx.cg_path[0] && rmdir(fx.cg_path))
		fprintf(stderr, "test_loader: could not remove %s: %s\n", fx.cg_path,
			strerror(errno));
	fx.cg_path[0] = '\0';
}

static int group_setup(void **state)
{
	const char *root;

	(void)state;
	if (dp_fx_enter("test_loader"))
		return -1;
	root = cgroup2_root();
	if (!root) {
		fprintf(stderr, "test_loader: no cgroup v2 mount\n");
		dp_fx_leave();
		return -1;
	}
	snprintf(fx.cg_path, sizeof(fx.cg_path), "%s/axon-test-%d", root, getpid());
	if (mkdir(fx.cg_path, 0755)) {
		fprintf(stderr, "test_loader: mkdir %s: %s\n", fx.cg_path, strerror(errno));
		fx.cg_path[0] = '\0';
		dp_fx_leave();
		return -1;
	}
	dp_fx.extra_cleanup = cgroup_remove;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (fx.loaded)
		datapath_close(&fx.dp);
	dp_fx_leave(); /* detaches the links (the cgroup ones too), removes the cgroup */
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_shares_pinned_maps),
	    cmocka_unit_test(test_tc_load_swaps_programs_in_place),
	    cmocka_unit_test(test_restart_reuses_pins_and_links),
	    cmocka_unit_test(test_changed_layout_recreates_the_map),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
