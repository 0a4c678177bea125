// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Behaviour of the socket load balancer (bpf/sock_lb.bpf.c) with real sockets.
 *
 * Like the kernel's prog_tests/connect_force_port.c: the test moves itself
 * into a private network namespace (only lo, where all of 127.0.0.0/8 is
 * local, so backends are servers on 127.0.0.2..5) and into its own cgroup
 * /sys/fs/cgroup/unified/axon-test-<pid> (or /sys/fs/cgroup/... on a pure v2
 * host), loads the skeleton (maps not pinned), attaches the five programs to
 * that cgroup only, and writes services straight into the maps with the
 * include/axon structs.
 *
 * Service VIPs are in 10.96.0.0/16, which has no route in the namespace: a
 * connect() that is not translated fails with ENETUNREACH, so reaching a
 * server at all proves the translation, and ECONNREFUSED from a VIP can only
 * come from the program.
 *
 * Run as root from the repo root. The cgroup is removed in the group teardown,
 * which cmocka runs after failed tests too, and on SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <axon/lb.h>
#include <axon/maps.h>
#include <axon/reasons.h>

#include "sock_lb.skel.h"

#define BACKEND_IP "127.0.0.2"

static struct {
	const char *cg_root; /* cgroup v2 mount */
	struct sock_lb *skel;
	int cg_fd;
	char cg_path[128];
	char parent_procs[256]; /* cgroup.procs of the cgroup we came from */
	bool joined;
	int ncpus;
} fx = {.cg_fd = -1};

/* ---- namespace and cgroup plumbing ------------------------------------- */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int join_cgroup(const char *procs)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_str(procs, pid);
}

/* This machine mounts cgroup v2 at /sys/fs/cgroup/unified (hybrid); a pure
 * v2 machine at /sys/fs/cgroup. */
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

/* Where /proc/self/cgroup says we are on the unified hierarchy ("0::/path"). */
static int find_parent_cgroup(void)
{
	char line[256], *path = NULL;
	FILE *f = fopen("/proc/self/cgroup", "r");
	int n;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "0::", 3)) {
			path = line + 3;
			path[strcspn(path, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
	if (!path)
		return -ENOENT;
	n = snprintf(fx.parent_procs, sizeof(fx.parent_procs), "%s%s%scgroup.procs", fx.cg_root,
		     path, path[strlen(path) - 1] == '/' ? "" : "/");
	return n < (int)sizeof(fx.parent_procs) ? 0 : -ENAMETOOLONG;
}

static void leave_cgroup(void)
{
	if (fx.joined && !join_cgroup(fx.parent_procs))
		fx.joined = false;
	if (fx.cg_path[0] && !fx.joined && !rmdir(fx.cg_path))
		fx.cg_path[0] = '\0';
}

static void on_signal(int sig)
{
	/* Only async-signal-safe calls: open/write/close/rmdir. */
	leave_cgroup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int lo_up(void)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int group_teardown(void **state)
{
	(void)state;
	/* Destroying the skeleton detaches the links before the cgroup goes. */
	sock_lb__destroy(fx.skel);
	fx.skel = NULL;
	if (fx.cg_fd >= 0)
		close(fx.cg_fd);
	fx.cg_fd = -1;
	leave_cgroup();
	if (fx.cg_path[0])
		fprintf(stderr, "test_sock_lb: could not remove %s\n", fx.cg_path);
	return 0;
}

#define ATTACH(prog)                                                                               \
	do {                                                                                       \
		fx.skel->links.prog = bpf_program__attach_cgroup(fx.skel->progs.prog, fx.cg_fd);   \
		if (!fx.skel->links.prog) {                                                        \
			fprintf(stderr, "test_sock_lb: attach " #prog ": %s\n", strerror(errno));  \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static __u64 netns_cookie(void)
{
	socklen_t len = sizeof(__u64);
	__u64 cookie = 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	if (fd >= 0)
		close(fd);
	return cookie;
}

static int group_setup(void **state)
{
	int err;

	(void)state;
	fx.ncpus = libbpf_num_possible_cpus();
	if (fx.ncpus <= 0)
		return -1;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "test_sock_lb: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	err = lo_up();
	if (err) {
		fprintf(stderr, "test_sock_lb: bring lo up: %s\n", strerror(-err));
		return -1;
	}

	fx.cg_root = cgroup2_root();
	if (!fx.cg_root) {
		fprintf(stderr, "test_sock_lb: no cgroup v2 mount at /sys/fs/cgroup[/unified]\n");
		return -1;
	}
	err = find_parent_cgroup();
	if (err) {
		fprintf(stderr, "test_sock_lb: no cgroup v2 membership: %s\n", strerror(-err));
		return -1;
	}
	snprintf(fx.cg_path, sizeof(fx.cg_path), "%s/axon-test-%d", fx.cg_root, getpid());
	if (mkdir(fx.cg_path, 0755)) {
		fprintf(stderr, "test_sock_lb: mkdir %s: %s\n", fx.cg_path, strerror(errno));
		fx.cg_path[0] = '\0';
		return -1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	{
		char procs[160];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", fx.cg_path);
		err = join_cgroup(procs);
		if (err) {
			fprintf(stderr, "test_sock_lb: join %s: %s\n", fx.cg_path, strerror(-err));
			goto fail;
		}
		fx.joined = true;
	}
	fx.cg_fd = open(fx.cg_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx.cg_fd < 0)
		goto fail;

	fx.skel = sock_lb__open();
	if (!fx.skel) {
		fprintf(stderr, "test_sock_lb: open skeleton: %s\n", strerror(errno));
		goto fail;
	}
	/* The test's namespace plays the node's (loopback host ports). */
	fx.skel->rodata->sock_host_netns_cookie = netns_cookie();
	err = sock_lb__load(fx.skel);
	if (err) {
		fprintf(stderr, "test_sock_lb: load (verifier): %s\n", strerror(-err));
		goto fail;
	}
	ATTACH(sock4_connect);
	ATTACH(sock4_sendmsg);
	ATTACH(sock4_recvmsg);
	ATTACH(sock4_getpeername);
	ATTACH(sock_release);
	return 0;

fail:
	group_teardown(state);
	return -1;
}

/* ---- map helpers -------------------------------------------------------- */

static int map_fd(struct bpf_map *map)
{
	return bpf_map__fd(map);
}

static __be32 ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void map_clear(struct bpf_map *map)
{
	size_t ksz = bpf_map__key_size(map);
	char *keys = malloc(ksz * bpf_map__max_entries(map));
	int fd = map_fd(map);
	__u32 n = 0;

	/* Collect, then delete: restarting the walk after each delete would be
	 * quadratic on a full lb4_sock_rev. */
	assert_non_null(keys);
	while (n < bpf_map__max_entries(map) &&
	       !bpf_map_get_next_key(fd, n ? keys + (n - 1) * ksz : NULL, keys + n * ksz))
		n++;
	if (n)
		assert_int_equal(bpf_map_delete_batch(fd, keys, &n, NULL), 0);
	free(keys);
}

/* Each test starts from empty maps (metrics are compared as deltas) and ends
 * by asserting lb4_sock_rev is empty again; clearing it here only keeps a
 * failed test's open sockets from failing the tests after it. */
static int test_setup(void **state)
{
	(void)state;
	map_clear(fx.skel->maps.lb4_services);
	map_clear(fx.skel->maps.lb4_backends);
	map_clear(fx.skel->maps.lb4_reverse_nat);
	map_clear(fx.skel->maps.lb4_sock_rev);
	map_clear(fx.skel->maps.lb4_affinity);
	return 0;
}

static void backend_add(__u32 id, const char *ip, __u16 port, __u8 proto)
{
	struct lb4_backend be = {
	    .address = ip4(ip),
	    .port = htons(port),
	    .proto = proto,
	    .state = BACKEND_STATE_ACTIVE,
	};

	assert_int_equal(bpf_map_update_elem(map_fd(fx.skel->maps.lb4_backends), &id, &be, BPF_ANY),
			 0);
}

/* Frontend vip:port/proto with backends ids[0..n), written in the order the
 * agent must use: slots, then the service entry, then rev-NAT. */
static void service_add(const char *vip, __u16 port, __u8 proto, __u32 rev_nat_index,
			const __u32 *ids, __u16 n)
{
	struct lb4_key key = {
	    .address = ip4(vip),
	    .dport = htons(port),
	    .proto = proto,
	    .scope = LB_SCOPE_EXT,
	};
	struct lb4_service svc = {.rev_nat_index = rev_nat_index};
	struct lb4_reverse_nat rnat = {.address = key.address, .port = key.dport};
	int fd = map_fd(fx.skel->maps.lb4_services);

	for (__u16 i = 1; i <= n; i++) {
		key.backend_slot = i;
		svc.backend_id = ids[i - 1];
		assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	}
	key.backend_slot = 0;
	memset(&svc, 0, sizeof(svc));
	svc.count = n;
	svc.rev_nat_index = rev_nat_index;
	svc.flags = SVC_FLAG_CLUSTER_IP;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(map_fd(fx.skel->maps.lb4_reverse_nat), &rev_nat_index,
					     &rnat, BPF_ANY),
			 0);
}

static __u64 metric(__u8 reason)
{
	struct metrics_key key = {.reason = reason, .dir = METRIC_DIR_SERVICE};
	struct metrics_value vals[fx.ncpus];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(map_fd(fx.skel->maps.metrics), &key, vals))
		return 0;
	for (int i = 0; i < fx.ncpus; i++)
		sum += vals[i].packets;
	return sum;
}

static __u64 cookie_of(int fd)
{
	__u64 cookie = 0;
	socklen_t len = sizeof(cookie);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
	return cookie;
}

/* Entries in lb4_sock_rev; only those of @cookie unless it is 0. */
static int rev_count(__u64 cookie)
{
	struct lb4_sock_rev_key key, *prev = NULL;
	int fd = map_fd(fx.skel->maps.lb4_sock_rev), n = 0;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		if (!cookie || key.cookie == cookie)
			n++;
		prev = &key;
	}
	return n;
}

/* The entry an unconnected sendmsg() to backend @ip:@port recorded. */
static int rev_lookup(__u64 cookie, const char *ip, __u16 port, struct lb4_sock_rev_value *val)
{
	struct lb4_sock_rev_key key = {.cookie = cookie, .address = ip4(ip), .port = htons(port)};

	return bpf_map_lookup_elem(map_fd(fx.skel->maps.lb4_sock_rev), &key, val) ? -errno : 0;
}

/* The entry connect() recorded for the socket's peer. */
static int rev_lookup_peer(__u64 cookie, struct lb4_sock_rev_value *val)
{
	struct lb4_sock_rev_key key = {.cookie = cookie};

	return bpf_map_lookup_elem(map_fd(fx.skel->maps.lb4_sock_rev), &key, val) ? -errno : 0;
}

/* ---- socket helpers ----------------------------------------------------- */

static struct sockaddr_in sin4(const char *ip, __u16 port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

	sa.sin_addr.s_addr = ip4(ip);
	return sa;
}

#define SA(p) ((struct sockaddr *)(p))

static void assert_addr(const struct sockaddr_in *sa, const char *ip, __u16 port)
{
	char got[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sa->sin_addr, got, sizeof(got));
	assert_string_equal(got, ip);
	assert_int_equal(ntohs(sa->sin_port), port);
}

static int sock_new(int type)
{
	struct timeval tv = {.tv_sec = 2};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	/* A missing reply fails the test instead of hanging it. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static int server_new(int type, const char *ip, __u16 port)
{
	struct sockaddr_in sa = sin4(ip, port);
	int fd = sock_new(type), one = 1;

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, SA(&sa), sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 1024), 0);
	return fd;
}

static int connect_to(int fd, const char *ip, __u16 port)
{
	struct sockaddr_in sa = sin4(ip, port);

	return connect(fd, SA(&sa), sizeof(sa)) ? -errno : 0;
}

static int sendto_addr(int fd, const char *msg, const char *ip, __u16 port)
{
	struct sockaddr_in sa = sin4(ip, port);
	ssize_t n = sendto(fd, msg, strlen(msg), 0, SA(&sa), sizeof(sa));

	return n < 0 ? -errno : (int)n;
}

/* Close with RST instead of FIN: 10,000 loopback connections leave no TIME_WAIT. */
static void close_abort(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void assert_recv(int fd, const char *want, struct sockaddr_in *from)
{
	char buf[64] = {};
	socklen_t len = sizeof(*from);
	ssize_t n;

	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, SA(from), from ? &len : NULL);
	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

/* ---- tests -------------------------------------------------------------- */

/* TCP to VIP:port lands on the backend's server, data round-trips, the client
 * sees VIP:port as its peer, the server sees the real client and its own
 * backend address; the reverse entry lives exactly as long as the socket. */
static void test_tcp_connect_reaches_backend(void **state)
{
	struct sockaddr_in a, b;
	socklen_t len = sizeof(a);
	struct lb4_sock_rev_value rev;
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	__u64 rev_xlated = metric(REASON_SOCK_LB_REV_XLATED);
	__u32 id = 1;
	int srv, cli, acc;
	__u64 cookie;

	(void)state;
	backend_add(id, BACKEND_IP, 8080, IPPROTO_TCP);
	service_add("10.96.0.10", 80, IPPROTO_TCP, 1, &id, 1);
	srv = server_new(SOCK_STREAM, BACKEND_IP, 8080);

	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "10.96.0.10", 80), 0);
	acc = accept(srv, NULL, NULL);
	assert_true(acc >= 0);
	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated + 1);

	assert_int_equal(getpeername(cli, SA(&a), &len), 0);
	assert_addr(&a, "10.96.0.10", 80);
	assert_int_equal(metric(REASON_SOCK_LB_REV_XLATED), rev_xlated + 1);

	len = sizeof(a);
	assert_int_equal(getsockname(acc, SA(&a), &len), 0);
	assert_addr(&a, BACKEND_IP, 8080);
	len = sizeof(a);
	assert_int_equal(getsockname(cli, SA(&a), &len), 0);
	len = sizeof(b);
	assert_int_equal(getpeername(acc, SA(&b), &len), 0);
	assert_memory_equal(&a.sin_addr, &b.sin_addr, sizeof(a.sin_addr));
	assert_int_equal(a.sin_port, b.sin_port);

	assert_int_equal(write(cli, "ping", 4), 4);
	assert_recv(acc, "ping", NULL);
	assert_int_equal(write(acc, "pong", 4), 4);
	assert_recv(cli, "pong", NULL);

	cookie = cookie_of(cli);
	assert_int_equal(rev_lookup_peer(cookie, &rev), 0);
	assert_int_equal(rev.address, ip4("10.96.0.10"));
	assert_int_equal(rev.port, htons(80));
	assert_int_equal(rev.rev_nat_index, 1);
	assert_int_equal(rev.backend_address, ip4(BACKEND_IP));
	assert_int_equal(rev.backend_port, htons(8080));
	assert_int_equal(rev_count(cookie), 1);

	close(cli);
	assert_int_equal(rev_lookup_peer(cookie, &rev), -ENOENT);
	assert_int_equal(rev_count(0), 0);
	close(acc);
	close(srv);
}

/* 200 connects over 3 backends: each gets a fair share (expected 66.7, sd 6.7;
 * below 30 is a 5.5-sigma event). */
static void test_tcp_random_spread(void **state)
{
	static const char *ips[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
	__u32 ids[] = {11, 12, 13};
	int srv[3], hits[3] = {}, total = 0;

	(void)state;
	for (int b = 0; b < 3; b++) {
		backend_add(ids[b], ips[b], 8081, IPPROTO_TCP);
		srv[b] = server_new(SOCK_STREAM, ips[b], 8081);
		assert_int_equal(fcntl(srv[b], F_SETFL, O_NONBLOCK), 0);
	}
	service_add("10.96.0.11", 80, IPPROTO_TCP, 2, ids, 3);

	for (int i = 0; i < 200; i++) {
		int cli = sock_new(SOCK_STREAM);

		assert_int_equal(connect_to(cli, "10.96.0.11", 80), 0);
		/* On loopback the handshake is done when connect() returns. */
		for (int b = 0; b < 3; b++) {
			int acc = accept(srv[b], NULL, NULL);

			if (acc >= 0) {
				hits[b]++;
				total++;
				close(acc);
			}
		}
		close_abort(cli);
	}
	assert_int_equal(total, 200);
	for (int b = 0; b < 3; b++) {
		if (hits[b] < 30)
			fail_msg("backend %s got %d of 200 connections", ips[b], hits[b]);
		close(srv[b]);
	}
	assert_int_equal(rev_count(0), 0);
}

/* Unconnected UDP: sendto(VIP) reaches the backend; the reply's source reads
 * VIP:port. */
static void test_udp_sendto_reply_from_vip(void **state)
{
	struct sockaddr_in peer, from;
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	__u64 rev_xlated = metric(REASON_SOCK_LB_REV_XLATED);
	__u32 id = 21;
	int srv, cli;

	(void)state;
	backend_add(id, BACKEND_IP, 5353, IPPROTO_UDP);
	service_add("10.96.0.20", 53, IPPROTO_UDP, 3, &id, 1);
	srv = server_new(SOCK_DGRAM, BACKEND_IP, 5353);

	cli = sock_new(SOCK_DGRAM);
	assert_int_equal(sendto_addr(cli, "query", "10.96.0.20", 53), 5);
	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated + 1);
	assert_recv(srv, "query", &peer);
	assert_int_equal(sendto(srv, "answer", 6, 0, SA(&peer), sizeof(peer)), 6);
	assert_recv(cli, "answer", &from);
	assert_addr(&from, "10.96.0.20", 53);
	assert_int_equal(metric(REASON_SOCK_LB_REV_XLATED), rev_xlated + 1);
	assert_int_equal(rev_count(cookie_of(cli)), 1);

	/* Sending again to the same service: still one entry. */
	assert_int_equal(sendto_addr(cli, "again", "10.96.0.20", 53), 5);
	assert_recv(srv, "again", &peer);
	assert_int_equal(rev_count(cookie_of(cli)), 1);

	close(cli);
	assert_int_equal(rev_count(0), 0);
	close(srv);
}

/* If the frontend is deleted while the socket lives (its rev-NAT entry gone,
 * or reused for another frontend), replies show the real source instead of a
 * service that no longer exists. */
static void test_udp_reply_frontend_gone(void **state)
{
	struct lb4_reverse_nat other = {.address = ip4("10.96.9.9"), .port = htons(53)};
	struct sockaddr_in peer, from;
	__u32 rev_nat_index = 4;
	__u32 id = 22;
	int srv, cli;

	(void)state;
	backend_add(id, BACKEND_IP, 5354, IPPROTO_UDP);
	service_add("10.96.0.22", 53, IPPROTO_UDP, rev_nat_index, &id, 1);
	srv = server_new(SOCK_DGRAM, BACKEND_IP, 5354);
	cli = sock_new(SOCK_DGRAM);

	assert_int_equal(sendto_addr(cli, "q", "10.96.0.22", 53), 1);
	assert_recv(srv, "q", &peer);

	/* The rev-NAT index now names another frontend (deleted and reused). */
	assert_int_equal(bpf_map_update_elem(map_fd(fx.skel->maps.lb4_reverse_nat), &rev_nat_index,
					     &other, BPF_ANY),
			 0);
	assert_int_equal(sendto(srv, "a", 1, 0, SA(&peer), sizeof(peer)), 1);
	assert_recv(cli, "a", &from);
	assert_addr(&from, BACKEND_IP, 5354);

	/* The rev-NAT index is gone altogether. */
	assert_int_equal(bpf_map_delete_elem(map_fd(fx.skel->maps.lb4_reverse_nat), &rev_nat_index),
			 0);
	assert_int_equal(sendto(srv, "b", 1, 0, SA(&peer), sizeof(peer)), 1);
	assert_recv(cli, "b", &from);
	assert_addr(&from, BACKEND_IP, 5354);

	close(cli);
	close(srv);
	assert_int_equal(rev_count(0), 0);
}

/* Connected UDP: connect(VIP) picks the backend once; getpeername, recvfrom
 * and plain recv all behave as if the peer were VIP:port. */
static void test_udp_connected(void **state)
{
	struct sockaddr_in peer, from;
	socklen_t len = sizeof(peer);
	__u32 id = 23;
	int srv, cli;

	(void)state;
	backend_add(id, BACKEND_IP, 5355, IPPROTO_UDP);
	service_add("10.96.0.21", 53, IPPROTO_UDP, 5, &id, 1);
	srv = server_new(SOCK_DGRAM, BACKEND_IP, 5355);

	cli = sock_new(SOCK_DGRAM);
	assert_int_equal(connect_to(cli, "10.96.0.21", 53), 0);
	assert_int_equal(getpeername(cli, SA(&peer), &len), 0);
	assert_addr(&peer, "10.96.0.21", 53);

	assert_int_equal(send(cli, "q1", 2, 0), 2);
	assert_recv(srv, "q1", &peer);
	assert_int_equal(sendto(srv, "a1", 2, 0, SA(&peer), sizeof(peer)), 2);
	assert_recv(cli, "a1", &from);
	assert_addr(&from, "10.96.0.21", 53);
	assert_int_equal(sendto(srv, "a2", 2, 0, SA(&peer), sizeof(peer)), 2);
	assert_recv(cli, "a2", NULL);

	/* Re-connecting to the same service does not grow the map. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(connect_to(cli, "10.96.0.21", 53), 0);
	assert_int_equal(rev_count(cookie_of(cli)), 1);

	close(cli);
	close(srv);
	assert_int_equal(rev_count(0), 0);
}

/* A connected UDP socket re-connect()ing to another service: its one peer
 * entry is overwritten, and getpeername()/recvfrom() follow the new service.
 * Re-connecting to a plain address shows that address, not a stale VIP. */
static void test_udp_reconnect_other_service(void **state)
{
	struct sockaddr_in peer, from;
	socklen_t len = sizeof(peer);
	struct lb4_sock_rev_value rev;
	__u32 id1 = 91, id2 = 92;
	int srv1, srv2, cli;
	__u64 cookie;

	(void)state;
	backend_add(id1, BACKEND_IP, 5391, IPPROTO_UDP);
	backend_add(id2, BACKEND_IP, 5392, IPPROTO_UDP);
	service_add("10.96.0.91", 53, IPPROTO_UDP, 91, &id1, 1);
	service_add("10.96.0.92", 53, IPPROTO_UDP, 92, &id2, 1);
	srv1 = server_new(SOCK_DGRAM, BACKEND_IP, 5391);
	srv2 = server_new(SOCK_DGRAM, BACKEND_IP, 5392);

	cli = sock_new(SOCK_DGRAM);
	cookie = cookie_of(cli);
	assert_int_equal(connect_to(cli, "10.96.0.91", 53), 0);
	assert_int_equal(connect_to(cli, "10.96.0.92", 53), 0);
	assert_int_equal(rev_count(cookie), 1);
	assert_int_equal(rev_lookup_peer(cookie, &rev), 0);
	assert_int_equal(rev.address, ip4("10.96.0.92"));
	assert_int_equal(rev.backend_port, htons(5392));
	assert_int_equal(getpeername(cli, SA(&peer), &len), 0);
	assert_addr(&peer, "10.96.0.92", 53);

	assert_int_equal(send(cli, "q", 1, 0), 1);
	assert_recv(srv2, "q", &peer);
	assert_int_equal(sendto(srv2, "a", 1, 0, SA(&peer), sizeof(peer)), 1);
	assert_recv(cli, "a", &from);
	assert_addr(&from, "10.96.0.92", 53);

	/* Straight to the first service's backend: the real address, because
	 * the entry names another backend. */
	assert_int_equal(connect_to(cli, BACKEND_IP, 5391), 0);
	len = sizeof(peer);
	assert_int_equal(getpeername(cli, SA(&peer), &len), 0);
	assert_addr(&peer, BACKEND_IP, 5391);

	close(cli);
	close(srv1);
	close(srv2);
	assert_int_equal(rev_count(0), 0);
}

/* A connected UDP socket that also sendto()s another service: the datagram
 * goes to that service's backend, the peer entry and the sendmsg entry live
 * side by side (the kernel only delivers the connected peer's replies, which
 * still show its VIP), and close removes both. */
static void test_udp_connected_and_sendto(void **state)
{
	struct sockaddr_in peer, from;
	__u32 id1 = 93, id2 = 94;
	int srv1, srv2, cli;
	__u64 cookie;

	(void)state;
	backend_add(id1, BACKEND_IP, 5393, IPPROTO_UDP);
	backend_add(id2, BACKEND_IP, 5394, IPPROTO_UDP);
	service_add("10.96.0.93", 53, IPPROTO_UDP, 93, &id1, 1);
	service_add("10.96.0.94", 53, IPPROTO_UDP, 94, &id2, 1);
	srv1 = server_new(SOCK_DGRAM, BACKEND_IP, 5393);
	srv2 = server_new(SOCK_DGRAM, BACKEND_IP, 5394);

	cli = sock_new(SOCK_DGRAM);
	cookie = cookie_of(cli);
	assert_int_equal(connect_to(cli, "10.96.0.93", 53), 0);
	assert_int_equal(sendto_addr(cli, "x", "10.96.0.94", 53), 1);
	assert_int_equal(rev_count(cookie), 2);

	assert_recv(srv2, "x", NULL);

	assert_int_equal(send(cli, "p", 1, 0), 1);
	assert_recv(srv1, "p", &peer);
	assert_int_equal(sendto(srv1, "q", 1, 0, SA(&peer), sizeof(peer)), 1);
	assert_recv(cli, "q", &from);
	assert_addr(&from, "10.96.0.93", 53);

	close(cli);
	close(srv1);
	close(srv2);
	assert_int_equal(rev_count(0), 0);
}

/* No backends: connect() and sendto() fail with ECONNREFUSED (kube-proxy's
 * REJECT), counted as DROP_NO_SERVICE_BACKEND, and nothing is recorded. */
static void test_no_backend_refused(void **state)
{
	__u64 drops = metric(DROP_NO_SERVICE_BACKEND);
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	int tcp, udp;

	(void)state;
	service_add("10.96.0.30", 80, IPPROTO_TCP, 6, NULL, 0);
	service_add("10.96.0.30", 53, IPPROTO_UDP, 7, NULL, 0);

	tcp = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(tcp, "10.96.0.30", 80), -ECONNREFUSED);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND), drops + 1);
	assert_int_equal(rev_count(cookie_of(tcp)), 0);

	udp = sock_new(SOCK_DGRAM);
	assert_int_equal(sendto_addr(udp, "q", "10.96.0.30", 53), -ECONNREFUSED);
	assert_int_equal(connect_to(udp, "10.96.0.30", 53), -ECONNREFUSED);
	assert_int_equal(metric(DROP_NO_SERVICE_BACKEND), drops + 3);
	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated);
	assert_int_equal(rev_count(0), 0);
	close(tcp);
	close(udp);
}

/* A slot naming a backend that is not (yet / any more) in the backends map:
 * the same refusal, counted as DROP_BACKEND_NOT_FOUND. */
static void test_missing_backend_refused(void **state)
{
	__u64 drops = metric(DROP_BACKEND_NOT_FOUND);
	__u32 id = 999;
	int tcp;

	(void)state;
	service_add("10.96.0.31", 80, IPPROTO_TCP, 8, &id, 1);
	tcp = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(tcp, "10.96.0.31", 80), -ECONNREFUSED);
	assert_int_equal(metric(DROP_BACKEND_NOT_FOUND), drops + 1);
	close(tcp);
	assert_int_equal(rev_count(0), 0);
}

/* externalTrafficPolicy: Local on a node address with no local backend: the
 * external entry (EXT_LOCAL, count 0) is for outside clients; a socket is a
 * client on this node and gets the internal scope's backend (its rev-NAT id),
 * the frontend as its peer. Without an internal entry, the external one rules. */
static void test_ext_local_internal_scope(void **state)
{
	struct lb4_key key = {.address = ip4("10.96.0.32"), .dport = htons(80),
			      .proto = IPPROTO_TCP, .scope = LB_SCOPE_INT, .backend_slot = 1};
	struct lb4_service svc = {.backend_id = 21, .rev_nat_index = 10};
	int fd = map_fd(fx.skel->maps.lb4_services);
	struct lb4_sock_rev_value rev;
	struct lb4_reverse_nat rnat;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	__u32 id = 21, rnat_id = 10;
	int srv, cli, acc;

	(void)state;
	backend_add(id, BACKEND_IP, 8080, IPPROTO_TCP);
	service_add("10.96.0.32", 80, IPPROTO_TCP, 9, NULL, 0);
	/* The external entry as the agent writes it: local only, none here. */
	key.scope = LB_SCOPE_EXT;
	key.backend_slot = 0;
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &svc), 0);
	svc.flags = SVC_FLAG_NODE_PORT | SVC_FLAG_EXT_LOCAL;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "10.96.0.32", 80), -ECONNREFUSED);
	close(cli);

	/* The internal scope: slot, service entry, its own rev-NAT entry. */
	rnat = (struct lb4_reverse_nat){.address = key.address, .port = key.dport};
	assert_int_equal(bpf_map_update_elem(map_fd(fx.skel->maps.lb4_reverse_nat), &rnat_id,
					     &rnat, BPF_ANY),
			 0);
	key.scope = LB_SCOPE_INT;
	key.backend_slot = 1;
	svc = (struct lb4_service){.backend_id = id, .rev_nat_index = 10};
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	key.backend_slot = 0;
	svc = (struct lb4_service){.rev_nat_index = 10, .count = 1, .flags = SVC_FLAG_NODE_PORT};
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);

	srv = server_new(SOCK_STREAM, BACKEND_IP, 8080);
	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "10.96.0.32", 80), 0);
	acc = accept(srv, NULL, NULL);
	assert_true(acc >= 0);
	assert_int_equal(getpeername(cli, SA(&a), &len), 0);
	assert_addr(&a, "10.96.0.32", 80);
	assert_int_equal(rev_lookup_peer(cookie_of(cli), &rev), 0);
	assert_int_equal(rev.rev_nat_index, 10);
	close(acc);
	close(cli);
	close(srv);
	assert_int_equal(bpf_map_delete_elem(fd, &key), 0);
	key.backend_slot = 1;
	assert_int_equal(bpf_map_delete_elem(fd, &key), 0);
}

/* Destinations that are not a frontend (other address, other port, other
 * protocol) are left exactly as the application gave them. */
static void test_non_service_untouched(void **state)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	__u32 id = 41;
	int srv, cli, acc, udp;

	(void)state;
	backend_add(id, BACKEND_IP, 8082, IPPROTO_TCP);
	service_add("10.96.0.40", 80, IPPROTO_TCP, 9, &id, 1);

	srv = server_new(SOCK_STREAM, "127.0.0.5", 8083);
	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "127.0.0.5", 8083), 0);
	acc = accept(srv, NULL, NULL);
	assert_true(acc >= 0);
	assert_int_equal(getpeername(cli, SA(&a), &len), 0);
	assert_addr(&a, "127.0.0.5", 8083);
	len = sizeof(a);
	assert_int_equal(getsockname(acc, SA(&a), &len), 0);
	assert_addr(&a, "127.0.0.5", 8083);
	assert_int_equal(rev_count(cookie_of(cli)), 0);
	close(cli);
	close(acc);
	close(srv);

	/* Same VIP, other port: untranslated, so unroutable here. */
	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "10.96.0.40", 81), -ENETUNREACH);
	close(cli);
	/* Same VIP and port, but the service is TCP only. */
	udp = sock_new(SOCK_DGRAM);
	assert_int_equal(sendto_addr(udp, "q", "10.96.0.40", 80), -ENETUNREACH);
	close(udp);

	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated);
	assert_int_equal(rev_count(0), 0);
}

/* TCP connect() again on the same socket after the backend refused (connect4
 * runs again): the reverse key is not duplicated, and close still cleans up. */
static void test_tcp_reconnect_after_refusal(void **state)
{
	__u32 id = 51;
	int cli;
	__u64 cookie;

	(void)state;
	backend_add(id, BACKEND_IP, 8099, IPPROTO_TCP); /* nobody listens there */
	service_add("10.96.0.51", 80, IPPROTO_TCP, 10, &id, 1);

	cli = sock_new(SOCK_STREAM);
	cookie = cookie_of(cli);
	for (int i = 0; i < 3; i++)
		assert_int_equal(connect_to(cli, "10.96.0.51", 80), -ECONNREFUSED);
	assert_int_equal(rev_count(cookie), 1);
	close(cli);
	assert_int_equal(rev_count(0), 0);
}

/*
 * Two services sharing one backend, one UDP socket alternating between them:
 * the reverse key (cookie, backend) is the same, so the socket holds one entry
 * (naming the frontend it sent to last) and its ring does not fill up with
 * copies of that key, whose eviction would delete the live entry.
 */
static void test_udp_shared_backend_one_entry(void **state)
{
	struct lb4_sock_rev_value rev;
	struct sockaddr_in peer, from;
	__u32 id = 71;
	int srv, cli;

	(void)state;
	backend_add(id, BACKEND_IP, 5371, IPPROTO_UDP);
	service_add("10.96.0.71", 53, IPPROTO_UDP, 71, &id, 1);
	service_add("10.96.0.72", 53, IPPROTO_UDP, 72, &id, 1);
	srv = server_new(SOCK_DGRAM, BACKEND_IP, 5371);
	cli = sock_new(SOCK_DGRAM);

	for (int i = 0; i < 2 * SOCK_REV_PER_SOCKET + 1; i++) {
		assert_int_equal(sendto_addr(cli, "q", i % 2 ? "10.96.0.72" : "10.96.0.71", 53), 1);
		assert_recv(srv, "q", &peer);
	}
	assert_int_equal(rev_count(cookie_of(cli)), 1);
	assert_int_equal(rev_lookup(cookie_of(cli), BACKEND_IP, 5371, &rev), 0);
	assert_int_equal(rev.address, ip4("10.96.0.71"));
	assert_int_equal(rev.rev_nat_index, 71);
	assert_int_equal(sendto(srv, "a", 1, 0, SA(&peer), sizeof(peer)), 1);
	assert_recv(cli, "a", &from);
	assert_addr(&from, "10.96.0.71", 53);

	close(cli);
	close(srv);
	assert_int_equal(rev_count(0), 0);
}

/* Fill lb4_sock_rev with entries of a cookie no socket has; returns how many. */
static __u32 rev_fill(void)
{
	int fd = map_fd(fx.skel->maps.lb4_sock_rev);
	__u32 n = bpf_map__max_entries(fx.skel->maps.lb4_sock_rev);
	struct lb4_sock_rev_value val = {.address = ip4("10.96.9.9"), .port = htons(1)};
	struct lb4_sock_rev_key *keys = calloc(n, sizeof(*keys));
	struct lb4_sock_rev_value *vals = calloc(n, sizeof(*vals));
	__u32 count = n;

	assert_non_null(keys);
	assert_non_null(vals);
	for (__u32 i = 0; i < n; i++) {
		keys[i].cookie = ~0ull;
		keys[i].address = htonl(0x0a000000 + i);
		keys[i].port = htons(1);
		vals[i] = val;
	}
	assert_int_equal(bpf_map_update_batch(fd, keys, vals, &count, NULL), 0);
	free(keys);
	free(vals);
	return count;
}

/* When the reverse map is full the translation fails visibly (ENOMEM,
 * DROP_SOCK_REV_MAP_FULL) instead of handing the application a socket whose
 * peer it cannot recognise; nothing is left behind. */
static void test_sock_rev_full_refused(void **state)
{
	__u64 drops = metric(DROP_SOCK_REV_MAP_FULL);
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	__u32 id = 81, n;
	int tcp, udp;

	(void)state;
	backend_add(id, BACKEND_IP, 8081, IPPROTO_TCP);
	backend_add(id + 1, BACKEND_IP, 5381, IPPROTO_UDP);
	service_add("10.96.0.81", 80, IPPROTO_TCP, 81, &id, 1);
	id++;
	service_add("10.96.0.81", 53, IPPROTO_UDP, 82, &id, 1);
	n = rev_fill();
	assert_int_equal(n, bpf_map__max_entries(fx.skel->maps.lb4_sock_rev));

	tcp = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(tcp, "10.96.0.81", 80), -ENOMEM);
	udp = sock_new(SOCK_DGRAM);
	assert_int_equal(sendto_addr(udp, "q", "10.96.0.81", 53), -ENOMEM);
	assert_int_equal(metric(DROP_SOCK_REV_MAP_FULL), drops + 2);
	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated);
	assert_int_equal(rev_count(cookie_of(tcp)) + rev_count(cookie_of(udp)), 0);
	close(tcp);
	close(udp);

	/* With room again, the same service works. */
	map_clear(fx.skel->maps.lb4_sock_rev);
	udp = sock_new(SOCK_DGRAM);
	assert_int_equal(sendto_addr(udp, "q", "10.96.0.81", 53), 1);
	assert_int_equal(rev_count(cookie_of(udp)), 1);
	close(udp);
	assert_int_equal(rev_count(0), 0);
}

/*
 * cilium#38649: the reverse map must not fill up with entries of sockets that
 * are gone. 100 sockets held open hold 100 entries; 10,000 sockets (TCP and
 * connected UDP) opened, translated and closed leave the map empty.
 */
static void test_sock_rev_empty_after_10000_sockets(void **state)
{
	enum { HELD = 100, CHURN = 10000 };
	__u64 xlated = metric(REASON_SOCK_LB_XLATED);
	__u32 tcp_id = 61, udp_id = 62;
	int held[HELD], srv;

	(void)state;
	backend_add(tcp_id, BACKEND_IP, 8090, IPPROTO_TCP);
	backend_add(udp_id, BACKEND_IP, 5390, IPPROTO_UDP);
	service_add("10.96.0.50", 80, IPPROTO_TCP, 11, &tcp_id, 1);
	service_add("10.96.0.50", 53, IPPROTO_UDP, 12, &udp_id, 1);
	srv = server_new(SOCK_STREAM, BACKEND_IP, 8090);

	for (int i = 0; i < HELD; i++) {
		held[i] = sock_new(SOCK_DGRAM);
		assert_int_equal(connect_to(held[i], "10.96.0.50", 53), 0);
	}
	assert_int_equal(rev_count(0), HELD);
	for (int i = 0; i < HELD; i++)
		close(held[i]);
	assert_int_equal(rev_count(0), 0);

	for (int i = 0; i < CHURN; i++) {
		if (i % 2) {
			int udp = sock_new(SOCK_DGRAM);

			assert_int_equal(connect_to(udp, "10.96.0.50", 53), 0);
			close(udp);
		} else {
			int cli = sock_new(SOCK_STREAM), acc;

			assert_int_equal(connect_to(cli, "10.96.0.50", 80), 0);
			acc = accept(srv, NULL, NULL);
			assert_true(acc >= 0);
			close(acc);
			close_abort(cli);
		}
	}
	assert_int_equal(metric(REASON_SOCK_LB_XLATED), xlated + HELD + CHURN);
	assert_int_equal(rev_count(0), 0);
	close(srv);
}

/* One unconnected UDP socket sending to more backends than it may remember
 * keeps exactly SOCK_REV_PER_SOCKET entries, the most recent ones. */
static void test_udp_many_backends_bounded(void **state)
{
	enum { N = SOCK_REV_PER_SOCKET + 4 };
	struct lb4_sock_rev_value rev;
	char vip[N][16];
	__u64 cookie;
	int cli;

	(void)state;
	for (int i = 0; i < N; i++) {
		__u32 id = 100 + i;

		snprintf(vip[i], sizeof(vip[i]), "10.96.1.%d", i + 1);
		backend_add(id, BACKEND_IP, 6000 + i, IPPROTO_UDP);
		service_add(vip[i], 53, IPPROTO_UDP, 100 + i, &id, 1);
	}

	cli = sock_new(SOCK_DGRAM);
	cookie = cookie_of(cli);
	for (int i = 0; i < N; i++) {
		assert_int_equal(sendto_addr(cli, "q", vip[i], 53), 1);
		assert_true(rev_count(cookie) <= SOCK_REV_PER_SOCKET);
	}
	assert_int_equal(rev_count(cookie), SOCK_REV_PER_SOCKET);
	assert_int_equal(rev_count(0), SOCK_REV_PER_SOCKET);
	for (int i = 0; i < N; i++) {
		int want = i < N - SOCK_REV_PER_SOCKET ? -ENOENT : 0;

		assert_int_equal(rev_lookup(cookie, BACKEND_IP, 6000 + i, &rev), want);
		if (!want)
			assert_int_equal(rev.address, ip4(vip[i]));
	}

	/* Coming back to a forgotten one evicts the oldest remembered. */
	assert_int_equal(sendto_addr(cli, "q", vip[0], 53), 1);
	assert_int_equal(rev_count(cookie), SOCK_REV_PER_SOCKET);
	assert_int_equal(rev_lookup(cookie, BACKEND_IP, 6000, &rev), 0);
	assert_int_equal(rev_lookup(cookie, BACKEND_IP, 6000 + N - SOCK_REV_PER_SOCKET, &rev),
			 -ENOENT);

	close(cli);
	assert_int_equal(rev_count(0), 0);
}

/* ---- sessionAffinity: ClientIP, keyed by network namespace --------------- */

#define AFF_VIP "10.96.0.40"
#define AFF_TIMEOUT 100

static const char *const aff_ips[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
static const __u32 aff_ids[] = {41, 42, 43};

static __u64 mono_sec(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return ts.tv_sec;
}

/* Switch sessionAffinity: ClientIP on (@timeout seconds) or off (0) on a
 * frontend service_add() wrote, as the agent does: slot 0 rewritten. */
static void service_affinity(const char *vip, __u16 port, __u8 proto, __u32 timeout)
{
	struct lb4_key key = {.address = ip4(vip), .dport = htons(port), .proto = proto};
	int fd = map_fd(fx.skel->maps.lb4_services);
	struct lb4_service svc;

	assert_int_equal(bpf_map_lookup_elem(fd, &key, &svc), 0);
	if (timeout)
		svc.flags |= SVC_FLAG_AFFINITY;
	else
		svc.flags &= ~SVC_FLAG_AFFINITY;
	svc.affinity_timeout = timeout;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
}

static int affinity_get(__u64 netns, __u32 rev_nat_index, struct lb4_affinity_value *val)
{
	struct lb4_affinity_key key = {.rev_nat_index = rev_nat_index, .netns_cookie = netns};

	return bpf_map_lookup_elem(map_fd(fx.skel->maps.lb4_affinity), &key, val) ? -errno : 0;
}

static void affinity_set(__u64 netns, __u32 rev_nat_index, __u32 backend_id, __u16 slot,
			 __u64 last_used)
{
	struct lb4_affinity_key key = {.rev_nat_index = rev_nat_index, .netns_cookie = netns};
	struct lb4_affinity_value val = {
	    .last_used = last_used, .backend_id = backend_id, .backend_slot = slot};

	assert_int_equal(
	    bpf_map_update_elem(map_fd(fx.skel->maps.lb4_affinity), &key, &val, BPF_ANY), 0);
}

static int affinity_count(void)
{
	struct lb4_affinity_key key, *prev = NULL;
	int fd = map_fd(fx.skel->maps.lb4_affinity), n = 0;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		n++;
		prev = &key;
	}
	return n;
}

/* Servers on the three affinity backends (TCP or UDP, @port) in the current
 * network namespace, non-blocking. */
static void aff_servers(int type, __u16 port, int srv[3])
{
	for (int b = 0; b < 3; b++) {
		srv[b] = server_new(type, aff_ips[b], port);
		assert_int_equal(fcntl(srv[b], F_SETFL, O_NONBLOCK), 0);
	}
}

static void aff_close(int srv[3])
{
	for (int b = 0; b < 3; b++)
		close(srv[b]);
}

/* One connect() to AFF_VIP:80 from the current netns: which of @srv got it. */
static int tcp_pick(int srv[3])
{
	int cli = sock_new(SOCK_STREAM), hit = -1;

	assert_int_equal(connect_to(cli, AFF_VIP, 80), 0);
	/* On loopback the handshake is done when connect() returns. */
	for (int b = 0; b < 3; b++) {
		int acc = accept(srv[b], NULL, NULL);

		if (acc < 0)
			continue;
		assert_int_equal(hit, -1);
		hit = b;
		close(acc);
	}
	close_abort(cli);
	assert_true(hit >= 0);
	return hit;
}

/* The backend @n connects in a row all went to, or -1 if they spread. */
static int tcp_stick(int srv[3], int n)
{
	int first = tcp_pick(srv);

	for (int i = 1; i < n; i++) {
		if (tcp_pick(srv) != first)
			return -1;
	}
	return first;
}

/* A new network namespace with lo up, left as @ns_out; the caller is back in
 * @home afterwards. */
static void netns_new(int home, int *ns_out)
{
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(lo_up(), 0);
	*ns_out = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(*ns_out >= 0);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
}

/* Two network namespaces in the same cgroup each keep their own backend over
 * 15 connects, in one lb4_affinity entry each, keyed by netns cookie with no
 * client address; entries written by hand steer each namespace separately. */
static void test_affinity_tcp_per_netns(void **state)
{
	struct lb4_affinity_value val;
	int home, other, srv_a[3], srv_b[3], a, b;
	__u64 ns_a, ns_b, now;

	(void)state;
	for (int i = 0; i < 3; i++)
		backend_add(aff_ids[i], aff_ips[i], 8080, IPPROTO_TCP);
	service_add(AFF_VIP, 80, IPPROTO_TCP, 40, aff_ids, 3);
	service_affinity(AFF_VIP, 80, IPPROTO_TCP, AFF_TIMEOUT);

	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(home >= 0);
	ns_a = netns_cookie();
	aff_servers(SOCK_STREAM, 8080, srv_a);
	netns_new(home, &other);
	assert_int_equal(setns(other, CLONE_NEWNET), 0);
	ns_b = netns_cookie();
	aff_servers(SOCK_STREAM, 8080, srv_b);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	assert_true(ns_a != ns_b);

	a = tcp_stick(srv_a, 15);
	assert_true(a >= 0);
	assert_int_equal(setns(other, CLONE_NEWNET), 0);
	b = tcp_stick(srv_b, 15);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	assert_true(b >= 0);

	assert_int_equal(affinity_count(), 2);
	assert_int_equal(affinity_get(ns_a, 40, &val), 0);
	assert_int_equal(val.backend_id, aff_ids[a]);
	assert_int_equal(val.backend_slot, a + 1);
	assert_int_equal(affinity_get(ns_b, 40, &val), 0);
	assert_int_equal(val.backend_id, aff_ids[b]);
	assert_int_equal(val.backend_slot, b + 1);

	/* Steered: A to the first backend, B to the third. */
	now = mono_sec();
	affinity_set(ns_a, 40, aff_ids[0], 1, now);
	affinity_set(ns_b, 40, aff_ids[2], 3, now);
	assert_int_equal(tcp_stick(srv_a, 15), 0);
	assert_int_equal(setns(other, CLONE_NEWNET), 0);
	assert_int_equal(tcp_stick(srv_b, 15), 2);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);

	aff_close(srv_a);
	aff_close(srv_b);
	close(other);
	close(home);
	assert_int_equal(rev_count(0), 0);
}

/* An entry is followed while younger than the timeout (and refreshed), not
 * once older; nor when its slot no longer names its backend; nor at all once
 * the service's affinity is off, which leaves the entry untouched. */
static void test_affinity_timeout_slot_and_flag(void **state)
{
	struct lb4_affinity_value val;
	bool moved = false;
	int srv[3], seen = 0;
	__u64 ns, now;

	(void)state;
	for (int i = 0; i < 3; i++)
		backend_add(aff_ids[i], aff_ips[i], 8080, IPPROTO_TCP);
	service_add(AFF_VIP, 80, IPPROTO_TCP, 40, aff_ids, 3);
	service_affinity(AFF_VIP, 80, IPPROTO_TCP, AFF_TIMEOUT);
	aff_servers(SOCK_STREAM, 8080, srv);
	ns = netns_cookie();

	now = mono_sec();
	affinity_set(ns, 40, aff_ids[0], 1, now - AFF_TIMEOUT / 2);
	assert_int_equal(tcp_stick(srv, 20), 0);
	assert_int_equal(affinity_get(ns, 40, &val), 0);
	assert_true(val.last_used >= now);

	/* Expired: chosen afresh each time, so 30 tries leave backend 0 at least
	 * once (all 30 on it: (1/3)^30), and the new choice is recorded. */
	for (int i = 0; i < 30; i++) {
		int got;

		now = mono_sec();
		affinity_set(ns, 40, aff_ids[0], 1, now - AFF_TIMEOUT - 2);
		got = tcp_pick(srv);
		moved = moved || got != 0;
		assert_int_equal(affinity_get(ns, 40, &val), 0);
		assert_int_equal(val.backend_id, aff_ids[got]);
		assert_int_equal(val.backend_slot, got + 1);
		assert_true(val.last_used >= now);
	}
	assert_true(moved);

	/* Slot 2 names another backend now: the entry is not followed. */
	for (int i = 0; i < 30; i++) {
		affinity_set(ns, 40, aff_ids[0], 2, mono_sec());
		seen |= 1 << tcp_pick(srv);
	}
	assert_true(seen != 1);
	/* A slot past count likewise. */
	seen = 0;
	for (int i = 0; i < 30; i++) {
		affinity_set(ns, 40, aff_ids[0], 4, mono_sec());
		seen |= 1 << tcp_pick(srv);
	}
	assert_true(seen != 1 && seen != 2 && seen != 4);

	/* Affinity off: the fresh entry is ignored and left as it was. */
	service_affinity(AFF_VIP, 80, IPPROTO_TCP, 0);
	now = mono_sec() - 5;
	affinity_set(ns, 40, aff_ids[0], 1, now);
	seen = 0;
	for (int i = 0; i < 30; i++)
		seen |= 1 << tcp_pick(srv);
	assert_true(seen != 1 && seen != 2 && seen != 4);
	assert_int_equal(affinity_get(ns, 40, &val), 0);
	assert_int_equal(val.last_used, now);
	assert_int_equal(val.backend_id, aff_ids[0]);
	assert_int_equal(affinity_count(), 1);

	aff_close(srv);
	assert_int_equal(rev_count(0), 0);
}

/* Unconnected UDP sendmsg() sticks too: 15 new sockets and 15 datagrams on
 * one socket all reach one backend. */
static void test_affinity_udp_sendmsg(void **state)
{
	struct lb4_affinity_value val;
	int srv[3], first = -1, one;

	(void)state;
	for (int i = 0; i < 3; i++)
		backend_add(aff_ids[i], aff_ips[i], 5400, IPPROTO_UDP);
	service_add(AFF_VIP, 53, IPPROTO_UDP, 41, aff_ids, 3);
	service_affinity(AFF_VIP, 53, IPPROTO_UDP, AFF_TIMEOUT);
	aff_servers(SOCK_DGRAM, 5400, srv);

	one = sock_new(SOCK_DGRAM);
	for (int i = 0; i < 30; i++) {
		struct pollfd pfd[3];
		int cli = i < 15 ? sock_new(SOCK_DGRAM) : one, hit = -1;
		char buf[8];

		assert_int_equal(sendto_addr(cli, "q", AFF_VIP, 53), 1);
		for (int b = 0; b < 3; b++)
			pfd[b] = (struct pollfd){.fd = srv[b], .events = POLLIN};
		assert_int_equal(poll(pfd, 3, 2000), 1);
		for (int b = 0; b < 3; b++) {
			if (recv(srv[b], buf, sizeof(buf), 0) == 1)
				hit = b;
		}
		assert_true(hit >= 0);
		if (first < 0)
			first = hit;
		assert_int_equal(hit, first);
		if (cli != one)
			close(cli);
	}
	close(one);
	assert_int_equal(affinity_get(netns_cookie(), 41, &val), 0);
	assert_int_equal(val.backend_id, aff_ids[first]);
	assert_int_equal(affinity_count(), 1);
	aff_close(srv);
}

/* A pod's hostPort on 127.0.0.1 is the node's loopback: translated for the
 * sockets of the node's network namespace (the one the programs were loaded
 * for), not for a pod's in the same cgroup tree, whose 127.0.0.1 is its own:
 * there the connect() reaches the pod's own server on that port (translated,
 * it would be refused: the pod has no server at the backend's port). */
static void test_loopback_host_port_node_netns_only(void **state)
{
	struct lb4_key key = {.address = ip4("127.0.0.1"), .dport = htons(18080),
			      .proto = IPPROTO_TCP, .scope = LB_SCOPE_EXT};
	struct lb4_service svc;
	int fd = map_fd(fx.skel->maps.lb4_services), srv, cli, acc, status;
	__u32 id = 1;
	pid_t pid;

	(void)state;
	assert_true(fx.skel->rodata->sock_host_netns_cookie != 0);
	backend_add(id, BACKEND_IP, 8080, IPPROTO_TCP);
	service_add("127.0.0.1", 18080, IPPROTO_TCP, 1, &id, 1);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &svc), 0);
	svc.flags = SVC_FLAG_HOST_PORT;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
	srv = server_new(SOCK_STREAM, BACKEND_IP, 8080);

	cli = sock_new(SOCK_STREAM);
	assert_int_equal(connect_to(cli, "127.0.0.1", 18080), 0);
	acc = accept(srv, NULL, NULL);
	assert_true(acc >= 0);
	close(acc);
	close(cli);

	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(18080),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int l, c;

		if (unshare(CLONE_NEWNET) || lo_up())
			_exit(2);
		l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0 || c < 0 || bind(l, SA(&sa), sizeof(sa)) || listen(l, 1))
			_exit(2);
		_exit(connect(c, SA(&sa), sizeof(sa)) ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(srv);
	assert_int_equal(rev_count(0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_tcp_connect_reaches_backend, test_setup),
	    cmocka_unit_test_setup(test_tcp_random_spread, test_setup),
	    cmocka_unit_test_setup(test_udp_sendto_reply_from_vip, test_setup),
	    cmocka_unit_test_setup(test_udp_reply_frontend_gone, test_setup),
	    cmocka_unit_test_setup(test_udp_connected, test_setup),
	    cmocka_unit_test_setup(test_udp_reconnect_other_service, test_setup),
	    cmocka_unit_test_setup(test_udp_connected_and_sendto, test_setup),
	    cmocka_unit_test_setup(test_no_backend_refused, test_setup),
	    cmocka_unit_test_setup(test_missing_backend_refused, test_setup),
	    cmocka_unit_test_setup(test_ext_local_internal_scope, test_setup),
	    cmocka_unit_test_setup(test_non_service_untouched, test_setup),
	    cmocka_unit_test_setup(test_tcp_reconnect_after_refusal, test_setup),
	    cmocka_unit_test_setup(test_udp_shared_backend_one_entry, test_setup),
	    cmocka_unit_test_setup(test_sock_rev_full_refused, test_setup),
	    cmocka_unit_test_setup(test_sock_rev_empty_after_10000_sockets, test_setup),
	    cmocka_unit_test_setup(test_udp_many_backends_bounded, test_setup),
	    cmocka_unit_test_setup(test_affinity_tcp_per_netns, test_setup),
	    cmocka_unit_test_setup(test_affinity_timeout_slot_and_flag, test_setup),
	    cmocka_unit_test_setup(test_affinity_udp_sendmsg, test_setup),
	    cmocka_unit_test_setup(test_loopback_host_port_node_netns_only, test_setup),
	};

	return cmocka_run_group_tests_name("sock_lb", tests, group_setup, group_teardown);
}
