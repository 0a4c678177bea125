// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * IPv4 BIG TCP on devices (agent/datapath/bigtcp.c over link_gso.c), in a
 * private network namespace: a pod's veth whose peer lives in a namespace
 * that is pinned nowhere (a child process's, found through /proc), bridges
 * without ports standing in for devices that cannot take 196608 (their
 * tso_max_size is 64 KiB), and what the module leaves alone.
 *
 * Sizes are checked with tests/tools/link_sizes.py (raw rtnetlink, not the
 * code under test), run inside the namespace that holds the device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <netlink/netlink.h>

#include "dp_fixture.h"
#include "log.h"
#include "datapath/bigtcp.h"
#include "datapath/link_gso.h"

#define BIG	BIG_TCP_IPV4_MAX_SIZE
#define DEFAULT BIG_TCP_DEFAULT_MAX_SIZE

static struct {
	char *log;
	size_t loglen;
	FILE *logf;
} fx;

/* A pod: veth <name> here, its peer <name>p in the pod namespace (one
 * namespace holds every test pod's end). */
static int pod_add(const char *name)
{
	return sh("ip link add %s type veth peer name %sp && ip link set %sp netns %d && "
		  "ip link set %s up",
		  name, name, name, dp_fx.pod_pid, name);
}

/* IPv4 GSO and GRO maximum of @dev, in the pod's namespace when @in_pod,
 * read by the independent tool; -1 each when it fails. */
static void sizes(const char *dev, bool in_pod, long *gso, long *gro)
{
	char cmd[256], out[512], *p;

	*gso = *gro = -1;
	if (in_pod)
		snprintf(cmd, sizeof(cmd), "nsenter -t %d -n /usr/bin/python3 "
			 "tests/tools/link_sizes.py show %s", dp_fx.pod_pid, dev);
	else
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/link_sizes.py show %s",
			 dev);
	if (sh_out(out, sizeof(out), cmd))
		return;
	p = strstr(out, "\"gso_ipv4_max_size\": ");
	if (p)
		*gso = strtol(p + 21, NULL, 10);
	p = strstr(out, "\"gro_ipv4_max_size\": ");
	if (p)
		*gro = strtol(p + 21, NULL, 10);
}

static void assert_sizes(const char *dev, bool in_pod, long want)
{
	long gso, gro;

	sizes(dev, in_pod, &gso, &gro);
	if (gso != want || gro != want)
		fail_msg("%s%s: gso_ipv4_max_size %ld gro_ipv4_max_size %ld, want %ld", dev,
			 in_pod ? " (in the pod)" : "", gso, gro, want);
}

/* Capture the module's log lines. */
static void log_capture(void)
{
	fx.logf = open_memstream(&fx.log, &fx.loglen);
	assert_non_null(fx.logf);
	log_set_stream(fx.logf);
}

static int log_count(const char *needle)
{
	int n = 0;

	fflush(fx.logf);
	for (const char *p = fx.log; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static int test_teardown(void **state)
{
	(void)state;
	log_set_stream(stderr);
	if (fx.logf)
		fclose(fx.logf);
	free(fx.log);
	fx.logf = NULL;
	fx.log = NULL;
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (dp_fx_enter("test_big_tcp"))
		return -1;
	dp_fx.extra_cleanup = dp_fx_pod_kill;
	if (access("tests/tools/link_sizes.py", R_OK)) {
		fprintf(stderr, "test_big_tcp: run from the repository root\n");
		dp_fx_leave();
		return -1;
	}
	if (dp_fx_pod_start() ||
	    sh("ip link add axbr0 type bridge && ip link add axbr1 type bridge && "
	       "ip link set axbr0 up && ip link set axbr1 up")) {
		dp_fx_leave();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dp_fx_leave();
	return 0;
}

static void test_read_a_veth_across_namespaces(void **state)
{
	struct nl_sock *sk;
	struct link_gso host, peer, br;

	(void)state;
	assert_int_equal(pod_add("lxr0"), 0);
	assert_int_equal(link_gso_open(&sk), 0);
	assert_int_equal(link_gso_read(sk, -1, if_nametoindex("lxr0"), &host), 0);
	assert_string_equal(host.name, "lxr0");
	assert_true(host.veth);
	assert_int_equal(host.gso_ipv4_max, DEFAULT);
	assert_int_equal(host.gro_ipv4_max, DEFAULT);
	assert_true(host.tso_max >= BIG); /* veth: 512 KiB */
	assert_true(host.peer_ifindex > 0);
	assert_true(host.peer_netnsid >= 0);
	/* The peer, read in the pod's namespace by its id from here. */
	assert_int_equal(link_gso_read(sk, host.peer_netnsid, host.peer_ifindex, &peer), 0);
	assert_string_equal(peer.name, "lxr0p");
	assert_true(peer.veth);
	assert_int_equal(peer.gso_ipv4_max, DEFAULT);
	/* A bridge without ports: no peer, and TSO no larger than 64 KiB. */
	assert_int_equal(link_gso_read(sk, -1, if_nametoindex("axbr0"), &br), 0);
	assert_false(br.veth);
	assert_true(br.tso_max < BIG);
	assert_int_equal(link_gso_read(sk, -1, 99999, &br), -ENODEV);
	link_gso_close(sk);
}

static void test_kernel_refusal_and_its_reason(void **state)
{
	struct nl_sock *sk;
	char why[128];

	(void)state;
	assert_int_equal(link_gso_open(&sk), 0);
	assert_int_equal(link_gso_set_ipv4(sk, if_nametoindex("axbr1"), BIG, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "gso_ipv4_max_size"));
	assert_sizes("axbr1", false, DEFAULT);
	link_gso_close(sk);
}

static void test_pod_device_gets_both_ends(void **state)
{
	struct big_tcp bt;

	(void)state;
	assert_int_equal(pod_add("lxc0"), 0);
	log_capture();
	assert_int_equal(big_tcp_init(&bt, true), 0);
	assert_true(bt.supported);
	big_tcp_pod_device(&bt, if_nametoindex("lxc0"), "lxc0");
	assert_sizes("lxc0", false, BIG);
	/* The pod's end, in a namespace pinned nowhere: found through /proc. */
	assert_sizes("lxc0p", true, BIG);
	assert_int_equal(big_tcp_devices(&bt), 2);
	assert_int_equal(bt.refused, 0);
	assert_int_equal(log_count("role=host-side"), 1);
	assert_int_equal(log_count("dev=lxc0p@lxc0 role=pod-side"), 1);
	/* Once: the next sync finds the record fresh and does nothing. */
	big_tcp_pod_device(&bt, if_nametoindex("lxc0"), "lxc0");
	assert_int_equal(log_count("IPv4 BIG TCP set"), 2);
	big_tcp_destroy(&bt);
}

static void test_native_device_left_alone_refusal_counted_once(void **state)
{
	struct big_tcp bt;

	(void)state;
	assert_int_equal(veth_add("nat0"), 0);
	log_capture();
	assert_int_equal(big_tcp_init(&bt, true), 0);
	big_tcp_native_device(&bt, if_nametoindex("nat0"), "nat0");
	big_tcp_native_device(&bt, if_nametoindex("axbr0"), "axbr0");
	big_tcp_pod_device(&bt, if_nametoindex("axbr1"), "axbr1");
	assert_sizes("nat0", false, BIG);
	assert_sizes("nat0p", false, DEFAULT); /* the native device's peer is not ours */
	assert_sizes("axbr0", false, DEFAULT);
	assert_sizes("axbr1", false, DEFAULT);
	assert_int_equal(big_tcp_devices(&bt), 1);
	assert_int_equal(bt.skipped, 1);
	assert_int_equal(bt.refused, 1);
	assert_non_null(strstr(bt.last_error, "axbr1 (host-side): Invalid argument"));
	assert_int_equal(log_count("dev=axbr0 role=native tso_max_size=65536"), 1);
	assert_int_equal(log_count("dev=axbr1 role=host-side error=\"Invalid argument\" errno=22"),
			 1);
	/* A link change reads everything again; neither is tried or warned again. */
	big_tcp_devices_changed(&bt);
	big_tcp_native_device(&bt, if_nametoindex("axbr0"), "axbr0");
	big_tcp_pod_device(&bt, if_nametoindex("axbr1"), "axbr1");
	assert_int_equal(bt.refused, 1);
	assert_int_equal(bt.skipped, 1);
	assert_int_equal(log_count("dev=axbr0"), 1);
	assert_int_equal(log_count("dev=axbr1"), 1);
	big_tcp_destroy(&bt);
	assert_int_equal(sh("ip link del nat0"), 0);
}

static void test_link_change_restores_and_forgets(void **state)
{
	struct big_tcp bt;

	(void)state;
	assert_int_equal(pod_add("lxc1"), 0);
	assert_int_equal(pod_add("lxc2"), 0);
	log_capture();
	assert_int_equal(big_tcp_init(&bt, true), 0);
	big_tcp_pod_device(&bt, if_nametoindex("lxc1"), "lxc1");
	big_tcp_pod_device(&bt, if_nametoindex("lxc2"), "lxc2");
	assert_int_equal(big_tcp_devices(&bt), 4);
	/* Someone lowers one: after the link change it is set again. */
	assert_int_equal(sh("/usr/bin/python3 tests/tools/link_sizes.py set lxc1 65536"), 0);
	big_tcp_devices_changed(&bt);
	big_tcp_pod_device(&bt, if_nametoindex("lxc1"), "lxc1");
	assert_sizes("lxc1", false, BIG);
	/* The same, told of that one link only. */
	assert_int_equal(sh("/usr/bin/python3 tests/tools/link_sizes.py set lxc1 65536"), 0);
	big_tcp_link_changed(&bt, if_nametoindex("lxc1"));
	big_tcp_pod_device(&bt, if_nametoindex("lxc1"), "lxc1");
	assert_sizes("lxc1", false, BIG);
	/* A pod goes: its record with it. */
	assert_int_equal(sh("ip link del lxc2"), 0);
	big_tcp_devices_changed(&bt);
	assert_int_equal(big_tcp_devices(&bt), 2);
	/* And told of that link alone. */
	{
		int ifindex = if_nametoindex("lxc1");

		assert_int_equal(sh("ip link del lxc1"), 0);
		big_tcp_link_changed(&bt, ifindex);
	}
	assert_int_equal(big_tcp_devices(&bt), 0);
	assert_int_equal(bt.refused, 0);
	big_tcp_destroy(&bt);
}

static void test_off_touches_nothing(void **state)
{
	struct big_tcp bt;

	(void)state;
	assert_int_equal(pod_add("lxc3"), 0);
	log_capture();
	assert_int_equal(big_tcp_init(&bt, false), 0);
	big_tcp_native_device(&bt, if_nametoindex("axbr0"), "axbr0");
	big_tcp_pod_device(&bt, if_nametoindex("lxc3"), "lxc3");
	big_tcp_devices_changed(&bt);
	assert_sizes("lxc3", false, DEFAULT);
	assert_sizes("lxc3p", true, DEFAULT);
	assert_int_equal(big_tcp_devices(&bt), 0);
	assert_int_equal(log_count("BIG TCP"), 0);
	big_tcp_destroy(&bt);
}

#define T(fn) cmocka_unit_test_teardown(fn, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_read_a_veth_across_namespaces),
	    T(test_kernel_refusal_and_its_reason),
	    T(test_pod_device_gets_both_ends),
	    T(test_native_device_left_alone_refusal_counted_once),
	    T(test_link_change_restores_and_forgets),
	    T(test_off_touches_nothing),
	};

	return cmocka_run_group_tests_name("big_tcp", tests, group_setup, group_teardown);
}
