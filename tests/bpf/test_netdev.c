// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Devices (agent/datapath/netdev.c) and direct node routes
 * (agent/datapath/routes.c) through libnl-3, in a private network namespace:
 * native devices by name and by the default route, a pod's device by its /32
 * route and the pod's MAC through the veth peer in another namespace, change
 * notifications applied to the caches one by one (what changed, and a pod's
 * route found or gone with no re-read); node routes replaced, listed and deleted without touching
 * routes Axon did not install.
 *
 * The "pod" namespace is a child process's (it unshares and waits; it dies
 * with the test through PR_SET_PDEATHSIG, and is killed in teardown).
 */
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dp_fixture.h"
#include "log.h"
#include "datapath/netdev.h"
#include "datapath/routes.h"

static struct {
	struct netdev_ctx *nd;
	char pod_mac[32]; /* lxc0p's MAC as `ip` prints it */
} fx;

/* "aa:bb:.." of @dev as `ip` sees it, into buf. */
static int mac_of(const char *dev, char *buf, size_t len)
{
	char cmd[128], out[256], *tok, *save;
	int i = 0;

	snprintf(cmd, sizeof(cmd), "ip -br link show dev %s", dev);
	if (sh_out(out, sizeof(out), cmd))
		return -1;
	for (tok = strtok_r(out, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (++i == 3) {
			snprintf(buf, len, "%s", tok);
			return 0;
		}
	}
	return -1;
}

static void mac_str(const __u8 mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

static int group_setup(void **state)
{
	(void)state;
	if (dp_fx_enter("test_netdev"))
		return -1;
	dp_fx.extra_cleanup = dp_fx_pod_kill;
	if (veth_add("nat0") || veth_add("nat1") || veth_add("lxc0") ||
	    sh("ip addr add 192.168.50.2/24 dev nat0 && ip addr add 192.168.60.2/24 dev nat1 && "
	       "ip route add default via 192.168.50.1 dev nat0") ||
	    mac_of("lxc0p", fx.pod_mac, sizeof(fx.pod_mac)) || dp_fx_pod_start() ||
	    sh("ip link set lxc0p netns %d && ip route add 10.244.0.5/32 dev lxc0", dp_fx.pod_pid)) {
		dp_fx_leave();
		return -1;
	}
	if (netdev_open(&fx.nd)) {
		fprintf(stderr, "test_netdev: netdev_open failed\n");
		dp_fx_leave();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	netdev_close(fx.nd);
	dp_fx_leave();
	return 0;
}

static void test_native_from_default_route(void **state)
{
	struct netdev devs[NETDEV_MAX_NATIVE];
	char mac[32], want[32];

	(void)state;
	assert_int_equal(netdev_native(fx.nd, NULL, devs, NETDEV_MAX_NATIVE), 1);
	assert_string_equal(devs[0].name, "nat0");
	assert_int_equal(devs[0].ifindex, if_nametoindex("nat0"));
	assert_int_equal(devs[0].ipv4, inet_addr("192.168.50.2"));
	mac_str(devs[0].mac, mac, sizeof(mac));
	assert_int_equal(mac_of("nat0", want, sizeof(want)), 0);
	assert_string_equal(mac, want);
	assert_int_equal(netdev_native(fx.nd, "", devs, NETDEV_MAX_NATIVE), 1);
}

static void test_native_by_name_and_missing_device(void **state)
{
	struct netdev devs[NETDEV_MAX_NATIVE];
	char *logbuf = NULL;
	size_t loglen = 0;
	FILE *log;

	(void)state;
	assert_int_equal(netdev_native(fx.nd, "nat1, nat0", devs, NETDEV_MAX_NATIVE), 2);
	assert_string_equal(devs[0].name, "nat1");
	assert_int_equal(devs[0].ipv4, inet_addr("192.168.60.2"));
	assert_string_equal(devs[1].name, "nat0");

	log = open_memstream(&logbuf, &loglen);
	assert_non_null(log);
	log_set_stream(log);
	assert_int_equal(netdev_native(fx.nd, "nat0,nope0", devs, NETDEV_MAX_NATIVE), -ENODEV);
	log_set_stream(stderr);
	fclose(log);
	assert_non_null(strstr(logbuf, "device=nope0"));
	free(logbuf);
}

static void test_pod_device_by_host_route(void **state)
{
	struct netdev dev;
	__u8 pod_mac[6];
	char mac[32];

	(void)state;
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.5"), &dev, pod_mac), 0);
	assert_string_equal(dev.name, "lxc0");
	assert_int_equal(dev.ifindex, if_nametoindex("lxc0"));
	/* The peer lives in the pod's namespace: learned across it. */
	mac_str(pod_mac, mac, sizeof(mac));
	assert_string_equal(mac, fx.pod_mac);
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.6"), &dev, pod_mac), -ENOENT);
	assert_int_equal(netdev_by_name(fx.nd, "nope0", &dev), -ENODEV);
}

/* Whether ch holds a change of kind on ifindex (routes: of prefixlen). */
static bool has_change(const struct netdev_changes *ch, enum netdev_change_kind kind,
		       int ifindex, int prefixlen, bool gone)
{
	for (unsigned int i = 0; i < ch->n; i++) {
		const struct netdev_change *c = &ch->v[i];

		if (c->kind == kind && c->ifindex == ifindex && c->gone == gone &&
		    (prefixlen < 0 || (int)c->prefixlen == prefixlen))
			return true;
	}
	return false;
}

static struct netdev_changes ch;

/* Wait for the kernel's notifications, then apply them. */
static void settle(void)
{
	struct pollfd pfd = {.fd = netdev_fd(fx.nd), .events = POLLIN};

	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_int_equal(netdev_process(fx.nd, &ch), 0);
	assert_false(ch.all);
}

static void test_changes_are_notified(void **state)
{
	struct netdev devs[NETDEV_MAX_NATIVE], dev;

	(void)state;
	assert_int_equal(netdev_process(fx.nd, &ch), 0); /* drain */
	assert_int_equal(netdev_by_name(fx.nd, "new0", &dev), -ENODEV);
	assert_int_equal(veth_add("new0"), 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_LINK, if_nametoindex("new0"), -1, false));
	assert_int_equal(netdev_by_name(fx.nd, "new0", &dev), 0);
	assert_int_equal(dev.ifindex, if_nametoindex("new0"));
	assert_int_equal(netdev_process(fx.nd, &ch), 0);
	assert_int_equal(ch.n, 0);

	/* The default route moves: so does the native device. */
	assert_int_equal(sh("ip route replace default via 192.168.60.1 dev nat1"), 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_ROUTE, if_nametoindex("nat1"), 0, false));
	assert_int_equal(netdev_native(fx.nd, NULL, devs, NETDEV_MAX_NATIVE), 1);
	assert_string_equal(devs[0].name, "nat1");

	assert_int_equal(sh("ip route del default"), 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_ROUTE, if_nametoindex("nat1"), 0, true));
	assert_int_equal(netdev_native(fx.nd, NULL, devs, NETDEV_MAX_NATIVE), -ENOENT);
	assert_int_equal(sh("ip route add default via 192.168.50.1 dev nat0"), 0);
	assert_int_equal(netdev_refresh(fx.nd), 0);
	assert_int_equal(netdev_native(fx.nd, NULL, devs, NETDEV_MAX_NATIVE), 1);
	assert_string_equal(devs[0].name, "nat0");
	/* An address and an MTU, as the caches now hold them. */
	assert_int_equal(sh("ip link set new0 mtu 1400 && ip addr add 192.168.70.2/24 dev new0"),
			 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_ADDR, if_nametoindex("new0"), -1, false));
	assert_int_equal(netdev_by_name(fx.nd, "new0", &dev), 0);
	assert_int_equal(dev.mtu, 1400);
	assert_int_equal(dev.ipv4, inet_addr("192.168.70.2"));
}

/*
 * A pod's /32 route is found as soon as its notification is applied, with
 * no re-read; and gone as soon as the route is, including when the kernel
 * drops it without a notification because its device went down or away.
 */
static void test_pod_routes_follow_notifications(void **state)
{
	struct netdev dev;

	(void)state;
	assert_int_equal(netdev_process(fx.nd, &ch), 0); /* drain */
	assert_int_equal(veth_add("lxc1") || sh("ip route add 10.244.0.7/32 dev lxc1"), 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_ROUTE, if_nametoindex("lxc1"), 32, false));
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.7"), &dev, NULL), 0);
	assert_string_equal(dev.name, "lxc1");

	/* Replaced onto another device: the index follows. */
	assert_int_equal(sh("ip route replace 10.244.0.7/32 dev lxc0"), 0);
	settle();
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.7"), &dev, NULL), 0);
	assert_string_equal(dev.name, "lxc0");
	assert_int_equal(sh("ip route del 10.244.0.7/32"), 0);
	settle();
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.7"), &dev, NULL), -ENOENT);

	/* Down: the kernel drops the route silently. */
	assert_int_equal(sh("ip route add 10.244.0.8/32 dev lxc1"), 0);
	settle();
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.8"), &dev, NULL), 0);
	assert_int_equal(sh("ip link set lxc1 down"), 0);
	settle();
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.8"), &dev, NULL), -ENOENT);

	/* Deleted: likewise, and the link goes from the cache. */
	assert_int_equal(sh("ip link set lxc1 up && ip route add 10.244.0.9/32 dev lxc1"), 0);
	settle();
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.9"), &dev, NULL), 0);
	assert_int_equal(sh("ip link del lxc1"), 0);
	settle();
	assert_true(has_change(&ch, NETDEV_CHANGE_LINK, dev.ifindex, -1, true));
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.9"), &dev, NULL), -ENOENT);
	assert_int_equal(netdev_by_name(fx.nd, "lxc1", &dev), -ENODEV);
	/* The first pod is still found. */
	assert_int_equal(netdev_pod_device(fx.nd, inet_addr("10.244.0.5"), &dev, NULL), 0);
	assert_string_equal(dev.name, "lxc0");
}

static int route_lines(const char *dst, char *out, size_t len)
{
	char cmd[128];
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ip route show %s", dst);
	if (sh_out(out, len, cmd))
		return -1;
	for (char *p = out; *p; p++)
		n += *p == '\n';
	return n;
}

static struct node_route route(const char *cidr, int len, const char *via, const char *dev)
{
	struct node_route r = {
	    .dst = {.addr = inet_addr(cidr), .len = len},
	    .via = inet_addr(via),
	    .ifindex = if_nametoindex(dev),
	};
	return r;
}

static void test_node_routes_replace_list_delete_only_ours(void **state)
{
	struct node_route r = route("10.245.1.0", 24, "192.168.50.3", "nat0"), list[8];
	struct ipv4_prefix dst = r.dst;
	char out[1024];

	(void)state;
	assert_int_equal(sh("ip route add 10.246.0.0/16 via 192.168.50.9 proto static"), 0);

	assert_int_equal(node_route_replace(&r), 0);
	assert_int_equal(route_lines("10.245.1.0/24", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "via 192.168.50.3 dev nat0 proto 196"));
	/* Idempotent, and a new next hop replaces the old one. */
	assert_int_equal(node_route_replace(&r), 0);
	r.via = inet_addr("192.168.50.4");
	assert_int_equal(node_route_replace(&r), 0);
	assert_int_equal(route_lines("10.245.1.0/24", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "via 192.168.50.4"));

	assert_int_equal(node_routes_list(list, 8), 1);
	assert_int_equal(list[0].dst.addr, inet_addr("10.245.1.0"));
	assert_int_equal(list[0].dst.len, 24);
	assert_int_equal(list[0].via, inet_addr("192.168.50.4"));
	assert_int_equal(list[0].ifindex, if_nametoindex("nat0"));

	/* Someone else's route to the same prefix (another metric) stays. */
	assert_int_equal(sh("ip route add 10.245.1.0/24 via 192.168.50.9 metric 100 proto static"),
			 0);
	assert_int_equal(node_route_delete(&dst), 0);
	assert_int_equal(route_lines("10.245.1.0/24", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "via 192.168.50.9"));
	assert_non_null(strstr(out, "metric 100"));
	assert_int_equal(node_route_delete(&dst), -ENOENT);
	assert_int_equal(route_lines("10.245.1.0/24", out, sizeof(out)), 1);
	assert_int_equal(node_routes_list(list, 8), 0);

	/* The unrelated foreign route was never touched. */
	assert_int_equal(route_lines("10.246.0.0/16", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "via 192.168.50.9"));
}

static void test_node_route_never_replaces_a_foreign_route(void **state)
{
	struct node_route r = route("10.247.0.0", 24, "192.168.50.3", "nat0");
	char out[1024];

	(void)state;
	assert_int_equal(sh("ip route add 10.247.0.0/24 via 192.168.50.9 proto static"), 0);
	assert_int_equal(node_route_replace(&r), -EEXIST);
	assert_int_equal(route_lines("10.247.0.0/24", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "via 192.168.50.9"));
	assert_null(strstr(out, "proto 196"));
	assert_int_equal(node_route_delete(&r.dst), -ENOENT);
	assert_int_equal(route_lines("10.247.0.0/24", out, sizeof(out)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_native_from_default_route),
	    cmocka_unit_test(test_native_by_name_and_missing_device),
	    cmocka_unit_test(test_pod_device_by_host_route),
	    cmocka_unit_test(test_changes_are_notified),
	    cmocka_unit_test(test_pod_routes_follow_notifications),
	    cmocka_unit_test(test_node_routes_replace_list_delete_only_ours),
	    cmocka_unit_test(test_node_route_never_replaces_a_foreign_route),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
