// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc attachment (agent/datapath/tc_attach.c) on veths in a private network
 * namespace: tcx links pinned and updated in place, legacy clsact filters
 * recorded and removed without touching anyone else's, the probe, and moving
 * an attachment between the two modes.
 *
 * Programs are two-instruction SCHED_CLS programs loaded by the test; what is
 * attached where is read back from the kernel (BPF_PROG_QUERY for tcx, the tc
 * filter query for legacy), never from Axon's own bookkeeping alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dp_fixture.h"
#include "datapath/tc_attach.h"

#define TCX_INGRESS 46 /* enum bpf_attach_type, Linux >= 6.6 */
#define TCX_EGRESS  47

static int prog_a = -1, prog_b = -1;

static struct tc_attach_ctx ctx_of(enum tc_mode mode)
{
	return (struct tc_attach_ctx){
	    .bpf_root = dp_fx.bpf_root,
	    .state_dir = dp_fx.state_dir,
	    .mode = mode,
	};
}

/* Programs attached with tcx on @ifname/@type: their count, the first id. */
static int tcx_query(const char *ifname, int type, __u32 *first_id)
{
	__u32 ids[8] = {}, cnt = 8;
	int ifindex = if_nametoindex(ifname);

	if (bpf_prog_query(ifindex, type, 0, NULL, ids, &cnt))
		return -errno;
	if (first_id)
		*first_id = ids[0];
	return cnt;
}

static __u32 link_id_at(const char *pin)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(pin);
	__u32 id = 0;

	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		id = info.id;
	close(fd);
	return id;
}

/* Program id of the legacy filter at prio/handle on @ifname, 0 if none. */
static __u32 legacy_filter(const char *ifname, bool ingress, __u32 prio, __u32 handle)
{
	struct bpf_tc_hook hook = {
	    .sz = sizeof(hook),
	    .ifindex = if_nametoindex(ifname),
	    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS,
	};
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .priority = prio, .handle = handle);

	return bpf_tc_query(&hook, &opts) ? 0 : opts.prog_id;
}

static bool has_clsact(const char *ifname)
{
	char cmd[128], out[1024];

	snprintf(cmd, sizeof(cmd), "tc qdisc show dev %s", ifname);
	return !sh_out(out, sizeof(out), cmd) && strstr(out, "clsact");
}

static char *record_text(void)
{
	static char buf[8192];
	char path[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tc-legacy.json", dp_fx.state_dir);
	f = fopen(path, "r");
	if (!f)
		return strcpy(buf, "");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_probe_picks_tcx_and_leaves_nothing(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_AUTO);
	struct tc_attach_ctx forced = ctx_of(TC_MODE_LEGACY);

	(void)state;
	assert_int_equal(veth_add("probe0"), 0);
	assert_int_equal(tc_probe_tcx(&ctx, if_nametoindex("probe0")), 0);
	assert_int_equal(ctx.mode, TC_MODE_TCX);
	assert_int_equal(tcx_query("probe0", TCX_INGRESS, NULL), 0);
	/* A forced mode is not probed over. */
	assert_int_equal(tc_probe_tcx(&forced, if_nametoindex("probe0")), 0);
	assert_int_equal(forced.mode, TC_MODE_LEGACY);
}

static void test_tcx_attach_pins_and_updates_in_place(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_TCX);
	struct tc_attachment att, list[4];
	char pin[256];
	__u32 id, link1, link2;
	int ifindex;

	(void)state;
	assert_int_equal(veth_add("tcx0"), 0);
	ifindex = if_nametoindex("tcx0");
	snprintf(pin, sizeof(pin), "%s/links/tc-tcx0-ingress", dp_fx.bpf_root);

	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "tcx0", TC_INGRESS, &att), 0);
	assert_false(att.updated);
	assert_int_equal(att.mode, TC_MODE_TCX);
	link1 = link_id_at(pin);
	assert_int_not_equal(link1, 0);
	assert_int_equal(tcx_query("tcx0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(prog_a));
	assert_int_equal(tcx_query("tcx0", TCX_EGRESS, NULL), 0);

	/* Again with another program: the same link, the new program. */
	assert_int_equal(tc_attach(&ctx, prog_b, "prog_b", ifindex, "tcx0", TC_INGRESS, &att), 0);
	assert_true(att.updated);
	link2 = link_id_at(pin);
	assert_int_equal(link2, link1);
	assert_int_equal(tcx_query("tcx0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(prog_b));

	assert_int_equal(tc_list(&ctx, list, 4), 1);
	assert_string_equal(list[0].ifname, "tcx0");
	assert_string_equal(list[0].program, "prog_b");
	assert_int_equal(list[0].ifindex, ifindex);
	assert_int_equal(list[0].dir, TC_INGRESS);
	assert_int_equal(list[0].mode, TC_MODE_TCX);

	assert_int_equal(tc_detach(&ctx, "tcx0", TC_INGRESS), 0);
	assert_int_equal(access(pin, F_OK), -1);
	assert_int_equal(tcx_query("tcx0", TCX_INGRESS, NULL), 0);
	assert_int_equal(tc_detach(&ctx, "tcx0", TC_INGRESS), -ENOENT);
	assert_int_equal(tc_list(&ctx, list, 4), 0);
}

static void test_tcx_device_recreated_gets_new_link(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_TCX);
	struct tc_attachment att;
	__u32 id;
	int old_ifindex, ifindex;

	(void)state;
	assert_int_equal(veth_add("tcx1"), 0);
	old_ifindex = if_nametoindex("tcx1");
	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", old_ifindex, "tcx1", TC_EGRESS, &att),
			 0);
	assert_int_equal(sh("ip link del tcx1"), 0);
	assert_int_equal(veth_add("tcx1"), 0);
	ifindex = if_nametoindex("tcx1");
	assert_int_not_equal(ifindex, old_ifindex);

	assert_int_equal(tc_attach(&ctx, prog_b, "prog_b", ifindex, "tcx1", TC_EGRESS, &att), 0);
	assert_false(att.updated);
	assert_int_equal(tcx_query("tcx1", TCX_EGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(prog_b));
	assert_int_equal(tc_detach(&ctx, "tcx1", TC_EGRESS), 0);
}

#define FOREIGN_PRIO 5

static void test_legacy_records_and_spares_foreign_filters(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_LEGACY);
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .attach_point = BPF_TC_INGRESS};
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, foreign, .priority = FOREIGN_PRIO, .handle = 1);
	struct tc_attachment att, list[4];
	int ifindex, foreign_prog;
	__u32 foreign_id;
	char *rec;

	(void)state;
	assert_int_equal(veth_add("leg0"), 0);
	ifindex = if_nametoindex("leg0");
	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "leg0", TC_INGRESS, &att), 0);
	assert_false(att.updated);
	assert_int_equal(att.mode, TC_MODE_LEGACY);
	assert_true(has_clsact("leg0"));
	assert_int_equal(legacy_filter("leg0", true, 0xa0, 0xa0), prog_id_of(prog_a));
	rec = record_text();
	assert_non_null(strstr(rec, "\"leg0\""));
	assert_non_null(strstr(rec, "\"ingress\""));
	assert_non_null(strstr(rec, "\"prog_a\""));

	/* Someone else's filter on the same hook. */
	foreign_prog = tc_prog_load("foreign", 0);
	assert_true(foreign_prog >= 0);
	hook.ifindex = ifindex;
	foreign.prog_fd = foreign_prog;
	assert_int_equal(bpf_tc_attach(&hook, &foreign), 0);
	foreign_id = prog_id_of(foreign_prog);

	/* Replace in place. */
	assert_int_equal(tc_attach(&ctx, prog_b, "prog_b", ifindex, "leg0", TC_INGRESS, &att), 0);
	assert_true(att.updated);
	assert_int_equal(legacy_filter("leg0", true, 0xa0, 0xa0), prog_id_of(prog_b));
	assert_int_equal(tc_list(&ctx, list, 4), 1);
	assert_string_equal(list[0].program, "prog_b");
	assert_int_equal(list[0].mode, TC_MODE_LEGACY);

	assert_int_equal(tc_detach(&ctx, "leg0", TC_INGRESS), 0);
	assert_int_equal(legacy_filter("leg0", true, 0xa0, 0xa0), 0);
	assert_int_equal(legacy_filter("leg0", true, FOREIGN_PRIO, 1), foreign_id);
	assert_true(has_clsact("leg0")); /* ours, but still in use */
	assert_null(strstr(record_text(), "\"leg0\""));
	assert_int_equal(tc_detach(&ctx, "leg0", TC_INGRESS), -ENOENT);
	close(foreign_prog);
}

static void test_legacy_removes_only_its_own_qdisc(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_LEGACY);
	int ifindex;

	(void)state;
	/* Axon created the qdisc: gone with Axon's last filter on it. */
	assert_int_equal(veth_add("leg1"), 0);
	ifindex = if_nametoindex("leg1");
	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "leg1", TC_INGRESS, NULL), 0);
	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "leg1", TC_EGRESS, NULL), 0);
	assert_int_equal(legacy_filter("leg1", false, 0xa0, 0xa0), prog_id_of(prog_a));
	assert_int_equal(tc_detach(&ctx, "leg1", TC_INGRESS), 0);
	assert_true(has_clsact("leg1")); /* egress filter still there */
	assert_int_equal(tc_detach(&ctx, "leg1", TC_EGRESS), 0);
	assert_false(has_clsact("leg1"));

	/* Someone else's qdisc stays, even with no filter left on it. */
	assert_int_equal(veth_add("leg2"), 0);
	assert_int_equal(sh("tc qdisc add dev leg2 clsact"), 0);
	ifindex = if_nametoindex("leg2");
	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "leg2", TC_INGRESS, NULL), 0);
	assert_int_equal(tc_detach(&ctx, "leg2", TC_INGRESS), 0);
	assert_int_equal(legacy_filter("leg2", true, 0xa0, 0xa0), 0);
	assert_true(has_clsact("leg2"));
}

static void test_legacy_refuses_unrecorded_filter_in_its_slot(void **state)
{
	struct tc_attach_ctx ctx = ctx_of(TC_MODE_LEGACY);
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .attach_point = BPF_TC_INGRESS};
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, squatter, .priority = 0xa0, .handle = 0xa0);
	int ifindex, prog;

	(void)state;
	assert_int_equal(veth_add("leg3"), 0);
	ifindex = if_nametoindex("leg3");
	prog = tc_prog_load("squatter", 0);
	assert_true(prog >= 0);
	hook.ifindex = ifindex;
	assert_int_equal(bpf_tc_hook_create(&hook), 0);
	squatter.prog_fd = prog;
	assert_int_equal(bpf_tc_attach(&hook, &squatter), 0);

	assert_int_equal(tc_attach(&ctx, prog_a, "prog_a", ifindex, "leg3", TC_INGRESS, NULL),
			 -EBUSY);
	assert_int_equal(legacy_filter("leg3", true, 0xa0, 0xa0), prog_id_of(prog));
	assert_int_equal(tc_detach(&ctx, "leg3", TC_INGRESS), -ENOENT);
	assert_int_equal(legacy_filter("leg3", true, 0xa0, 0xa0), prog_id_of(prog));
	close(prog);
}

static void test_mode_change_moves_the_attachment(void **state)
{
	struct tc_attach_ctx legacy = ctx_of(TC_MODE_LEGACY);
	struct tc_attach_ctx tcx = ctx_of(TC_MODE_TCX);
	struct tc_attachment list[4];
	char pin[256];
	int ifindex;
	__u32 id;

	(void)state;
	assert_int_equal(veth_add("mode0"), 0);
	ifindex = if_nametoindex("mode0");
	snprintf(pin, sizeof(pin), "%s/links/tc-mode0-ingress", dp_fx.bpf_root);

	assert_int_equal(tc_attach(&legacy, prog_a, "prog_a", ifindex, "mode0", TC_INGRESS, NULL),
			 0);
	assert_int_equal(tc_attach(&tcx, prog_b, "prog_b", ifindex, "mode0", TC_INGRESS, NULL), 0);
	assert_int_equal(tcx_query("mode0", TCX_INGRESS, &id), 1);
	assert_int_equal(id, prog_id_of(prog_b));
	assert_int_equal(legacy_filter("mode0", true, 0xa0, 0xa0), 0);
	assert_int_equal(tc_list(&tcx, list, 4), 1);
	assert_int_equal(list[0].mode, TC_MODE_TCX);

	/* And back: the link goes, the filter comes. */
	assert_int_equal(tc_attach(&legacy, prog_a, "prog_a", ifindex, "mode0", TC_INGRESS, NULL),
			 0);
	assert_int_equal(tcx_query("mode0", TCX_INGRESS, NULL), 0);
	assert_int_equal(access(pin, F_OK), -1);
	assert_int_equal(legacy_filter("mode0", true, 0xa0, 0xa0), prog_id_of(prog_a));
	assert_int_equal(tc_detach(&legacy, "mode0", TC_INGRESS), 0);
	assert_false(has_clsact("mode0"));
}

static void test_detach_all_removes_both_kinds(void **state)
{
	struct tc_attach_ctx legacy = ctx_of(TC_MODE_LEGACY);
	struct tc_attach_ctx tcx = ctx_of(TC_MODE_TCX);
	struct tc_attachment list[4];

	(void)state;
	assert_int_equal(veth_add("all0"), 0);
	assert_int_equal(veth_add("all1"), 0);
	assert_int_equal(
	    tc_attach(&tcx, prog_a, "prog_a", if_nametoindex("all0"), "all0", TC_EGRESS, NULL), 0);
	assert_int_equal(
	    tc_attach(&legacy, prog_b, "prog_b", if_nametoindex("all1"), "all1", TC_INGRESS, NULL),
	    0);
	assert_int_equal(tc_list(&tcx, list, 4), 2);
	assert_int_equal(tc_detach_all(&tcx), 2);
	assert_int_equal(tc_list(&tcx, list, 4), 0);
	assert_int_equal(tcx_query("all0", TCX_EGRESS, NULL), 0);
	assert_int_equal(legacy_filter("all1", true, 0xa0, 0xa0), 0);
	assert_false(has_clsact("all1"));
}

static int group_setup(void **state)
{
	(void)state;
	if (dp_fx_enter("test_tc_attach"))
		return -1;
	prog_a = tc_prog_load("prog_a", -1);
	prog_b = tc_prog_load("prog_b", -1);
	if (prog_a < 0 || prog_b < 0) {
		fprintf(stderr, "test_tc_attach: load test programs: %s\n", strerror(errno));
		dp_fx_leave();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dp_fx_leave();
	close(prog_a);
	close(prog_b);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe_picks_tcx_and_leaves_nothing),
	    cmocka_unit_test(test_tcx_attach_pins_and_updates_in_place),
	    cmocka_unit_test(test_tcx_device_recreated_gets_new_link),
	    cmocka_unit_test(test_legacy_records_and_spares_foreign_filters),
	    cmocka_unit_test(test_legacy_removes_only_its_own_qdisc),
	    cmocka_unit_test(test_legacy_refuses_unrecorded_filter_in_its_slot),
	    cmocka_unit_test(test_mode_change_moves_the_attachment),
	    cmocka_unit_test(test_detach_all_removes_both_kinds),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
