// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CNI's IPAM (agent/ipam/): never the network, broadcast or router
 * address; round-robin after the last address handed out; a repeated ADD
 * keeps its address; the exhaustion error names the range and the count;
 * allocations survive a restart (files under the directory); 8 threads
 * allocating at once get distinct addresses. The agent side (ADD/DEL through
 * the plugin) is tests/e2e/test_cni.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipam/ipam.h"
#include "log.h"

static char dir[64];

static struct ipv4_prefix prefix(const char *addr, __u8 len)
{
	return (struct ipv4_prefix){ .addr = inet_addr(addr), .len = len };
}

static const char *ip_str(__be32 ip)
{
	static char buf[INET_ADDRSTRLEN];

	return inet_ntop(AF_INET, &ip, buf, sizeof(buf));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/axon-ipam-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_allocation_skips_reserved(void **state)
{
	struct ipv4_prefix pool = prefix("10.244.1.0", 29);
	struct ipam p;
	size_t used, cap;
	char err[128];
	__be32 ip;

	(void)state;
	assert_int_equal(ipam_init(&p, NULL), 0);
	assert_int_equal(ipam_allocate(&p, "c0", "eth0", "", &ip, err, sizeof(err)), -EAGAIN);
	assert_string_equal(err, "no pod CIDR for this node yet");
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	ipam_usage(&p, &used, &cap);
	assert_int_equal(used, 1);	/* the router's */
	assert_int_equal(cap, 6);
	assert_int_equal(ipam_release(&p, inet_addr("10.244.1.1")), -EPERM);
	/* .0 network, .1 router, .7 broadcast: pods get .2 to .6 in order. */
	for (int i = 2; i <= 6; i++) {
		char owner[8], want[16];

		snprintf(owner, sizeof(owner), "c%d", i);
		snprintf(want, sizeof(want), "10.244.1.%d", i);
		assert_int_equal(ipam_allocate(&p, owner, "eth0", "ns/p", &ip, err, sizeof(err)), 0);
		assert_string_equal(ip_str(ip), want);
	}
	/* The same container and interface again: the same address. */
	assert_int_equal(ipam_allocate(&p, "c4", "eth0", "ns/p", &ip, err, sizeof(err)), 0);
	assert_string_equal(ip_str(ip), "10.244.1.4");
	assert_int_equal(ipam_lookup(&p, "c4", "eth0"), inet_addr("10.244.1.4"));
	assert_int_equal(ipam_lookup(&p, "c4", "eth1"), 0);
	assert_int_equal(ipam_allocate(&p, "c7", "eth0", "", &ip, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "no IP addresses available in range 10.244.1.0/29 (6 allocated)");
	/* Released: .3 comes back, after the scan wraps past .6. */
	assert_int_equal(ipam_release(&p, inet_addr("10.244.1.3")), 0);
	assert_int_equal(ipam_release(&p, inet_addr("10.244.1.3")), -ENOENT);
	assert_int_equal(ipam_allocate(&p, "c7", "eth0", "", &ip, err, sizeof(err)), 0);
	assert_string_equal(ip_str(ip), "10.244.1.3");

	/* The Node's CIDR changes: pods keep their addresses, the old router's goes. */
	pool = prefix("10.244.9.0", 30);
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	assert_int_equal(ipam_lookup(&p, IPAM_ROUTER_OWNER, ""), inet_addr("10.244.9.1"));
	assert_int_equal(ipam_lookup(&p, "c4", "eth0"), inet_addr("10.244.1.4"));
	ipam_usage(&p, &used, &cap);
	assert_int_equal(used, 1);
	assert_int_equal(cap, 2);
	assert_int_equal(p.allocs.count, 6);	/* 5 pods + the new router */
	ipam_destroy(&p);

	/* /31 and /32 have no host addresses to give. */
	assert_int_equal(ipam_init(&p, NULL), 0);
	pool = prefix("10.0.0.0", 31);
	assert_int_equal(ipam_set_pool(&p, &pool), -EINVAL);
	ipam_destroy(&p);
}

static void test_round_robin_and_exhaustion_text(void **state)
{
	struct ipv4_prefix pool = prefix("10.244.1.0", 24);
	struct ipam p;
	size_t used, cap;
	char err[128], owner[16];
	__be32 ip, first;

	(void)state;
	assert_int_equal(ipam_init(&p, NULL), 0);
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	assert_int_equal(ipam_allocate(&p, "a", "eth0", "", &first, err, sizeof(err)), 0);
	assert_int_equal(ipam_release(&p, first), 0);
	/* Not reused at once: the next address comes. */
	assert_int_equal(ipam_allocate(&p, "b", "eth0", "", &ip, err, sizeof(err)), 0);
	assert_string_equal(ip_str(ip), "10.244.1.3");
	for (int i = 0; i < 252; i++) {
		snprintf(owner, sizeof(owner), "x%d", i);
		assert_int_equal(ipam_allocate(&p, owner, "eth0", "", &ip, err, sizeof(err)), 0);
	}
	ipam_usage(&p, &used, &cap);
	assert_int_equal(used, 254);
	assert_int_equal(cap, 254);
	assert_int_equal(ipam_allocate(&p, "y", "eth0", "", &ip, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "no IP addresses available in range 10.244.1.0/24 (254 allocated)");
	ipam_destroy(&p);
}

static void test_persistence(void **state)
{
	struct ipv4_prefix pool = prefix("10.244.2.0", 24);
	struct ipam_alloc *list;
	struct ipam p;
	char err[128], path[128];
	size_t n;
	__be32 a, b, c;

	(void)state;
	assert_int_equal(ipam_init(&p, dir), 0);
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	assert_int_equal(ipam_allocate(&p, "ca", "eth0", "default/web", &a, err, sizeof(err)), 0);
	assert_int_equal(ipam_allocate(&p, "cb", "net1", "kube-system/dns", &b, err,
					sizeof(err)), 0);
	assert_int_equal(ipam_allocate(&p, "cc", "eth0", "", &c, err, sizeof(err)), 0);
	assert_int_equal(ipam_release(&p, c), 0);
	ipam_destroy(&p);
	/* One file per address, none for the released one. */
	snprintf(path, sizeof(path), "%s/10.244.2.2", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, ip_str(c));
	assert_int_equal(access(path, F_OK), -1);

	/* A restart: the allocations come back with their owners. */
	assert_int_equal(ipam_init(&p, dir), 0);
	assert_int_equal(ipam_list(&p, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].ip, a);
	assert_string_equal(list[0].owner, "ca");
	assert_string_equal(list[0].ifname, "eth0");
	assert_string_equal(list[0].pod, "default/web");
	assert_int_equal(list[1].ip, b);
	assert_string_equal(list[1].pod, "kube-system/dns");
	free(list);
	assert_int_equal(ipam_lookup(&p, "cb", "net1"), b);
	/* The pool again: the router's is reserved again (it is not kept), and
	 * allocation resumes after the highest address in use. */
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	assert_int_equal(ipam_allocate(&p, "cd", "eth0", "", &c, err, sizeof(err)), 0);
	assert_string_equal(ip_str(c), "10.244.2.4");
	assert_int_equal(ipam_list(&p, &list, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(ip_str(list[0].ip), "10.244.2.1");
	assert_string_equal(list[0].owner, IPAM_ROUTER_OWNER);
	free(list);
	ipam_destroy(&p);
	/* Nothing but allocations on disk, and no directory before the first one. */
	snprintf(path, sizeof(path), "%s/10.244.2.1", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(ipam_init(&p, path), 0);
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	assert_int_equal(access(path, F_OK), -1);
	ipam_destroy(&p);
}

#define THREADS 8
#define PER_THREAD 30

struct worker {
	struct ipam *p;
	int id;
	__be32 got[PER_THREAD];
	int failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char owner[32], err[128];

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(owner, sizeof(owner), "t%d-%d", w->id, i);
		if (ipam_allocate(w->p, owner, "eth0", "", &w->got[i], err, sizeof(err)))
			w->failed++;
	}
	return NULL;
}

static int cmp_be32(const void *a, const void *b)
{
	__u32 x = ntohl(*(const __be32 *)a), y = ntohl(*(const __be32 *)b);

	return x < y ? -1 : x > y;
}

static void test_concurrent_allocations(void **state)
{
	struct ipv4_prefix pool = prefix("10.244.3.0", 24);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	__be32 all[THREADS * PER_THREAD];
	size_t used, cap;
	struct ipam p;

	(void)state;
	assert_int_equal(ipam_init(&p, dir), 0);
	assert_int_equal(ipam_set_pool(&p, &pool), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .p = &p, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failed, 0);
		memcpy(&all[i * PER_THREAD], w[i].got, sizeof(w[i].got));
	}
	qsort(all, THREADS * PER_THREAD, sizeof(all[0]), cmp_be32);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		assert_int_not_equal(all[i - 1], all[i]);
	ipam_usage(&p, &used, &cap);
	assert_int_equal(used, THREADS * PER_THREAD + 1);
	ipam_destroy(&p);
	/* Every one of them was kept. */
	assert_int_equal(ipam_init(&p, dir), 0);
	ipam_usage(&p, &used, &cap);
	assert_int_equal(cap, 0);	/* no pool until the Node says */
	assert_int_equal(p.allocs.count, THREADS * PER_THREAD);
	ipam_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allocation_skips_reserved),
	    cmocka_unit_test(test_round_robin_and_exhaustion_text),
	    cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_allocations, setup, teardown),
	};

	if (!getenv("AXON_TEST_VERBOSE"))
		log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
