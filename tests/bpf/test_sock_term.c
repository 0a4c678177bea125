// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket LB termination (bpf/sock_term.bpf.c, agent/lb/sock_term.c) with
 * real sockets, in a private network namespace (only lo; servers on
 * 127.0.0.2..4) and a "pod" namespace held by a child.
 *
 * The socket LB is not attached: a socket it would have connected is made
 * by hand, a connect() to the backend plus the lb4_sock_rev peer entry
 * connect4 writes for it (keyed by the socket's SO_COOKIE). The skeleton is
 * loaded with maps of its own (not pinned).
 *
 * Asserted: a socket is destroyed (its blocked reader gets ECONNABORTED)
 * exactly when its remote is a listed backend and its lb4_sock_rev entry
 * names that backend and a listed frontend (rev_nat_index, or 0 for any); a
 * socket to the same backend through another frontend stays; the worker does
 * it in another namespace than its own and purges exactly the UDP CT_SERVICE
 * entries of the (backend, frontend) pair; the sock_diag fallback makes the
 * same choice.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "dp_fixture.h"
#include "axon/ct.h"
#include "axon/lb.h"
#include "axon/sock_term.h"
#include "datapath/loader.h"
#include "lb/sock_term.h"
#include "log.h"
#include "sock_lb.skel.h"
#include "sock_term.skel.h"

static struct {
	struct sock_term *skel;
	struct bpf_link *link[2];
} fx;

static __be32 ip(const char *s)
{
	return inet_addr(s);
}

static int tcp_listener(const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = ip(addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (void *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

static int connected(int type, const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, type, 0);

	sa.sin_addr.s_addr = ip(addr);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (void *)&sa, sizeof(sa)), 0);
	return fd;
}

/* The entry connect4 writes for a socket it sent to backend @addr:@port
 * through the frontend of rev-NAT id @rev_nat, in lb4_sock_rev @map. */
static void rev_peer_in(int map, int fd, const char *addr, int port, __u32 rev_nat)
{
	struct lb4_sock_rev_key key = {};
	struct lb4_sock_rev_value val = {
		.address = ip("10.96.0.10"), .port = htons(80), .rev_nat_index = rev_nat,
		.backend_address = ip(addr), .backend_port = htons(port),
	};
	socklen_t len = sizeof(key.cookie);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &key.cookie, &len), 0);
	assert_int_equal(bpf_map_update_elem(map, &key, &val, BPF_ANY), 0);
}

static void rev_peer(int fd, const char *addr, int port, __u32 rev_nat)
{
	rev_peer_in(bpf_map__fd(fx.skel->maps.lb4_sock_rev), fd, addr, port, rev_nat);
}

static void filter_add(const char *addr, int port, __u8 proto, __u32 rev_nat)
{
	struct sock_term_key key = {.address = ip(addr), .port = htons(port), .proto = proto,
				    .rev_nat_index = rev_nat};
	__u8 one = 1;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx.skel->maps.lb4_sock_term), &key, &one,
					     BPF_ANY), 0);
}

static void filter_del(const char *addr, int port, __u8 proto, __u32 rev_nat)
{
	struct sock_term_key key = {.address = ip(addr), .port = htons(port), .proto = proto,
				    .rev_nat_index = rev_nat};

	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(fx.skel->maps.lb4_sock_term), &key), 0);
}

/* What a non-blocking read on @fd says: 0 data or EOF, else the errno. */
static int read_errno(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) < 0 ? errno : 0;
}

static void iter_run(int which)
{
	char buf[16];
	int fd = bpf_iter_create(bpf_link__fd(fx.link[which]));

	assert_true(fd >= 0);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/* TCP: only the socket connected to the listed backend through the socket
 * LB goes; one connected there directly, and one whose entry names another
 * backend, stay. */
static void test_tcp_match(void **state)
{
	int srv = tcp_listener("127.0.0.2", 8080), srv4 = tcp_listener("127.0.0.4", 8080);
	int lb = connected(SOCK_STREAM, "127.0.0.2", 8080);
	int direct = connected(SOCK_STREAM, "127.0.0.2", 8080);
	int other = connected(SOCK_STREAM, "127.0.0.4", 8080);
	__u64 before = fx.skel->bss->destroyed[SOCK_TERM_TCP];

	(void)state;
	rev_peer(lb, "127.0.0.2", 8080, 1);
	rev_peer(other, "127.0.0.2", 8080, 1);	/* entry and remote disagree */
	filter_add("127.0.0.2", 8080, IPPROTO_TCP, 0);	/* any frontend */
	filter_add("127.0.0.4", 8080, IPPROTO_UDP, 0);	/* another protocol */
	iter_run(SOCK_TERM_TCP);
	filter_del("127.0.0.2", 8080, IPPROTO_TCP, 0);
	filter_del("127.0.0.4", 8080, IPPROTO_UDP, 0);

	assert_int_equal(read_errno(lb), ECONNABORTED);
	assert_int_equal(read_errno(direct), EAGAIN);
	assert_int_equal(read_errno(other), EAGAIN);
	assert_int_equal(fx.skel->bss->destroyed[SOCK_TERM_TCP] - before, 1);
	close(lb);
	close(direct);
	close(other);
	close(srv);
	close(srv4);
}

/* Two services (rev-NAT ids 1 and 2) over the same backend: the backend
 * left service 1 only, so the socket through it goes and the one through
 * service 2 stays, as does one whose entry names a frontend not listed. */
static void test_tcp_match_per_frontend(void **state)
{
	int srv = tcp_listener("127.0.0.2", 8082);
	int via1 = connected(SOCK_STREAM, "127.0.0.2", 8082);
	int via2 = connected(SOCK_STREAM, "127.0.0.2", 8082);
	int via3 = connected(SOCK_STREAM, "127.0.0.2", 8082);
	__u64 before = fx.skel->bss->destroyed[SOCK_TERM_TCP];

	(void)state;
	rev_peer(via1, "127.0.0.2", 8082, 1);
	rev_peer(via2, "127.0.0.2", 8082, 2);
	rev_peer(via3, "127.0.0.2", 8082, 3);
	filter_add("127.0.0.2", 8082, IPPROTO_TCP, 1);
	filter_add("127.0.0.2", 8083, IPPROTO_TCP, 2);	/* service 2's other backend */
	iter_run(SOCK_TERM_TCP);

	assert_int_equal(read_errno(via1), ECONNABORTED);
	assert_int_equal(read_errno(via2), EAGAIN);
	assert_int_equal(read_errno(via3), EAGAIN);
	assert_int_equal(fx.skel->bss->destroyed[SOCK_TERM_TCP] - before, 1);
	/* service 2 still talks over its socket */
	assert_int_equal(send(via2, "x", 1, 0), 1);
	filter_del("127.0.0.2", 8082, IPPROTO_TCP, 1);
	filter_del("127.0.0.2", 8083, IPPROTO_TCP, 2);
	close(via1);
	close(via2);
	close(via3);
	close(srv);
}

/* Enter the namespace of pid (or our own, through @home). */
static void netns_enter_pid(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	close(fd);
}

static void ct_put(int fd, __u8 proto, __u8 dir, __be16 sport, __u32 backend_id, __u32 rev_nat)
{
	struct ct4_key key = {.daddr = ip("10.96.0.10"), .saddr = ip("10.244.0.5"),
			      .dport = htons(53), .sport = sport, .nexthdr = proto, .flags = dir};
	struct ct4_entry e = {.lifetime = UINT32_MAX, .backend_id = backend_id,
			      .rev_nat_index = rev_nat};

	assert_int_equal(bpf_map_update_elem(fd, &key, &e, BPF_ANY), 0);
}

static bool ct_has(int fd, __u8 proto, __u8 dir, __be16 sport)
{
	struct ct4_key key = {.daddr = ip("10.96.0.10"), .saddr = ip("10.244.0.5"),
			      .dport = htons(53), .sport = sport, .nexthdr = proto, .flags = dir};
	struct ct4_entry e;

	return !bpf_map_lookup_elem(fd, &key, &e);
}

/* UDP through the agent's worker: sockets in the pod's namespace (not the
 * worker's), and the conntrack purge of the (backend id, frontend) pair only:
 * the backend left the frontend of rev-NAT id 1, not that of 2. */
static void test_udp_worker_pod_netns(void **state)
{
	struct datapath dp = {.term = fx.skel, .term_link = {fx.link[0], fx.link[1]}};
	struct lb_backend gone = {.addr = ip("127.0.0.3"), .port = htons(5353),
				  .proto = IPPROTO_UDP, .id = 7};
	struct lb_sock_term t;
	struct lb_sock_term_stats st;
	int home = open("/proc/thread-self/ns/net", O_RDONLY), lb, lb2, direct, ct;

	(void)state;
	assert_true(home >= 0);
	assert_int_equal(dp_fx_pod_start(), 0);
	netns_enter_pid(dp_fx.pod_pid);
	assert_int_equal(sh("ip link set lo up"), 0);
	lb = connected(SOCK_DGRAM, "127.0.0.3", 5353);
	lb2 = connected(SOCK_DGRAM, "127.0.0.3", 5353);
	direct = connected(SOCK_DGRAM, "127.0.0.3", 5353);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	close(home);
	rev_peer(lb, "127.0.0.3", 5353, 1);
	rev_peer(lb2, "127.0.0.3", 5353, 2);	/* through another service */

	ct = bpf_map_create(BPF_MAP_TYPE_HASH, "ct_test", sizeof(struct ct4_key),
			    sizeof(struct ct4_entry), 64, NULL);
	assert_true(ct >= 0);
	ct_put(ct, IPPROTO_UDP, CT_SERVICE, htons(1000), 7, 1);	/* purged */
	ct_put(ct, IPPROTO_UDP, CT_SERVICE, htons(1001), 8, 1);	/* another backend */
	ct_put(ct, IPPROTO_UDP, CT_EGRESS, htons(1002), 7, 1);	/* not the service entry */
	ct_put(ct, IPPROTO_TCP, CT_SERVICE, htons(1003), 7, 1);	/* not UDP */
	ct_put(ct, IPPROTO_UDP, CT_SERVICE, htons(1004), 7, 2);	/* another frontend */
	dp.ct4_any_fd = ct;

	assert_int_equal(lb_sock_term_start(&t, &dp, true), 0);
	lb_sock_term_backend_removed(&t, 1, &gone);
	for (int i = 0; i < 500; i++) {
		lb_sock_term_stats(&t, &st);
		if (st.runs)
			break;
		usleep(10000);
	}
	lb_sock_term_stop(&t);

	assert_int_equal(st.runs, 1);
	assert_true(st.enabled);
	assert_int_equal(st.destroyed_udp, 1);
	assert_int_equal(st.destroyed_tcp, 0);
	assert_int_equal(st.ct_deleted, 1);
	assert_int_equal(st.last_err, 0);
	assert_true(st.netns >= 2);	/* ours and the pod's, at least */
	assert_int_equal(read_errno(lb), ECONNABORTED);
	assert_int_equal(read_errno(lb2), EAGAIN);
	assert_int_equal(read_errno(direct), EAGAIN);
	assert_false(ct_has(ct, IPPROTO_UDP, CT_SERVICE, htons(1000)));
	assert_true(ct_has(ct, IPPROTO_UDP, CT_SERVICE, htons(1004)));
	assert_true(ct_has(ct, IPPROTO_UDP, CT_SERVICE, htons(1001)));
	assert_true(ct_has(ct, IPPROTO_UDP, CT_EGRESS, htons(1002)));
	assert_true(ct_has(ct, IPPROTO_TCP, CT_SERVICE, htons(1003)));
	/* The worker took its backend out of the filter after the run. */
	{
		struct sock_term_key k = {.address = gone.addr, .port = gone.port,
					  .proto = IPPROTO_UDP, .rev_nat_index = 1};
		__u8 v;

		assert_int_not_equal(bpf_map_lookup_elem(bpf_map__fd(fx.skel->maps.lb4_sock_term),
							 &k, &v), 0);
	}
	close(lb);
	close(lb2);
	close(direct);
	close(ct);
	dp_fx_pod_kill();
}

/* Without the iterators (bpf_sock_destroy() missing): the same match over sock_diag
 * SOCK_DESTROY, TCP and UDP, in the pod's namespace: the TCP backend left the
 * frontend of rev-NAT id 1 only (a socket through 2 stays), the UDP one left
 * the load balancer (any frontend). */
static void test_sock_diag_fallback(void **state)
{
	struct sock_lb *lb = sock_lb__open_and_load();
	struct datapath dp = {.term_err = -ENOENT, .ct4_any_fd = -1};
	struct lb_backend gone[] = {
		{.addr = ip("127.0.0.2"), .port = htons(8081), .proto = IPPROTO_TCP, .id = 1},
		{.addr = ip("127.0.0.3"), .port = htons(5354), .proto = IPPROTO_UDP, .id = 2},
	};
	int home = open("/proc/thread-self/ns/net", O_RDONLY), srv, tcp_lb, tcp_lb2, tcp_direct;
	int udp_lb, udp_direct, rev;
	struct lb_sock_term_stats st;
	struct lb_sock_term t;

	(void)state;
	assert_non_null(lb);
	dp.sock = lb;
	rev = bpf_map__fd(lb->maps.lb4_sock_rev);
	assert_true(home >= 0);
	assert_int_equal(dp_fx_pod_start(), 0);
	netns_enter_pid(dp_fx.pod_pid);
	assert_int_equal(sh("ip link set lo up"), 0);
	srv = tcp_listener("127.0.0.2", 8081);
	tcp_lb = connected(SOCK_STREAM, "127.0.0.2", 8081);
	tcp_lb2 = connected(SOCK_STREAM, "127.0.0.2", 8081);
	tcp_direct = connected(SOCK_STREAM, "127.0.0.2", 8081);
	udp_lb = connected(SOCK_DGRAM, "127.0.0.3", 5354);
	udp_direct = connected(SOCK_DGRAM, "127.0.0.3", 5354);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	close(home);
	rev_peer_in(rev, tcp_lb, "127.0.0.2", 8081, 1);
	rev_peer_in(rev, tcp_lb2, "127.0.0.2", 8081, 2);
	rev_peer_in(rev, udp_lb, "127.0.0.3", 5354, 3);

	assert_int_equal(lb_sock_term_start(&t, &dp, true), 0);
	lb_sock_term_stats(&t, &st);
	assert_true(st.enabled);
	assert_string_equal(st.mode, "sock_diag");
	lb_sock_term_backend_removed(&t, 1, &gone[0]);
	lb_sock_term_backend_removed(&t, 0, &gone[1]);
	for (int i = 0; i < 500; i++) {
		lb_sock_term_stats(&t, &st);
		if (st.backends == 2)
			break;
		usleep(10000);
	}
	lb_sock_term_stop(&t);

	assert_int_equal(st.backends, 2);
	assert_int_equal(st.destroyed_tcp, 1);
	assert_int_equal(st.destroyed_udp, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.last_err, 0);
	assert_int_equal(read_errno(tcp_lb), ECONNABORTED);
	assert_int_equal(read_errno(tcp_lb2), EAGAIN);
	assert_int_equal(read_errno(tcp_direct), EAGAIN);
	assert_int_equal(read_errno(udp_lb), ECONNABORTED);
	assert_int_equal(read_errno(udp_direct), EAGAIN);
	close(tcp_lb);
	close(tcp_lb2);
	close(tcp_direct);
	close(udp_lb);
	close(udp_direct);
	close(srv);
	dp_fx_pod_kill();
	sock_lb__destroy(lb);
}

static int setup(void **state)
{
	(void)state;
	if (dp_fx_enter("test_sock_term"))
		return -1;
	fx.skel = sock_term__open_and_load();
	if (!fx.skel) {
		fprintf(stderr, "test_sock_term: cannot load sock_term (bpf_sock_destroy needs "
			"Linux 6.5): %s\n", strerror(errno));
		return -1;
	}
	fx.link[0] = bpf_program__attach_iter(fx.skel->progs.sock_term_tcp, NULL);
	fx.link[1] = bpf_program__attach_iter(fx.skel->progs.sock_term_udp, NULL);
	return fx.link[0] && fx.link[1] ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	bpf_link__destroy(fx.link[0]);
	bpf_link__destroy(fx.link[1]);
	sock_term__destroy(fx.skel);
	dp_fx_pod_kill();
	dp_fx_leave();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_match),
		cmocka_unit_test(test_tcp_match_per_frontend),
		cmocka_unit_test(test_udp_worker_pod_netns),
		cmocka_unit_test(test_sock_diag_fallback),
	};

	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
