// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sync_poll: watch Axon's pinned maps for expected entries and say when
 * (CLOCK_REALTIME, comparable with the test apiserver's time.time()) each
 * appeared, for the control-plane benchmark (tests/bench/bench_sync.py).
 *
 *   sync_poll ROOT all TIMEOUT_S      < expect    when every entry is there
 *   sync_poll ROOT each TIMEOUT_S     < expect    when each entry is there
 *
 * expect, one entry a line:
 *   svc ADDR PORT COUNT    lb4_services slot 0 of ADDR:PORT/TCP with count COUNT
 *                          (the agent writes slot 0 after the backends and slots
 *                          it exposes, so this means the service is complete)
 *   ipc ADDR               ipcache holds ADDR/32
 *
 * `all` prints "done_ns=N lookups=N" once all are there. `each` prints
 * "I N" (entry index, time) as each appears; it checks a window of the 256
 * earliest missing entries, as a benchmark writes changes in order. The
 * maps may not exist yet (the agent pins them on start): opened when they
 * appear. Between passes it sleeps 200 us. Lookups are by key, O(1) each:
 * no map walk competes with the agent for the CPU. Exit 0, or 1 on timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "axon/ipcache.h"
#include "axon/lb.h"
#include "axon/maps.h"

struct want {
	bool svc;
	__be32 addr;
	__be16 port;
	__u16 count;
	bool done;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_map(const char *root, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/maps/%s", root, name);
	return bpf_obj_get(path);
}

static bool present(int svc_fd, int ipc_fd, const struct want *w)
{
	if (w->svc) {
		struct lb4_key k = { .address = w->addr, .dport = w->port, .proto = IPPROTO_TCP };
		struct lb4_service v;

		return !bpf_map_lookup_elem(svc_fd, &k, &v) && v.count == w->count;
	} else {
		struct ipcache_key k = { .prefixlen = 32, .address = w->addr };
		struct ipcache_value v;

		return !bpf_map_lookup_elem(ipc_fd, &k, &v);
	}
}

static int read_expect(struct want **out, size_t *n_out)
{
	char line[128], kind[8], addr[32];
	size_t n = 0, cap = 0;
	struct want *v = NULL;

	while (fgets(line, sizeof(line), stdin)) {
		unsigned int port = 0, count = 0;
		int f = sscanf(line, "%7s %31s %u %u", kind, addr, &port, &count);
		struct want w = {};

		if (f < 2)
			continue;
		w.svc = !strcmp(kind, "svc");
		if ((w.svc && f != 4) || (!w.svc && strcmp(kind, "ipc")) ||
		    inet_pton(AF_INET, addr, &w.addr) != 1) {
			fprintf(stderr, "sync_poll: bad line: %s", line);
			return -EINVAL;
		}
		w.port = htons(port);
		w.count = count;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
		}
		v[n++] = w;
	}
	*out = v;
	*n_out = n;
	return 0;
}

int main(int argc, char **argv)
{
	int svc_fd = -1, ipc_fd = -1;
	size_t n, first = 0, left;
	long long deadline;
	unsigned long long lookups = 0;
	bool each, need_ipc = false;
	struct want *w;

	if (argc != 4 || (strcmp(argv[2], "all") && strcmp(argv[2], "each"))) {
		fprintf(stderr, "usage: sync_poll ROOT all|each TIMEOUT_S < expect\n");
		return 2;
	}
	each = !strcmp(argv[2], "each");
	if (read_expect(&w, &n))
		return 2;
	for (size_t i = 0; i < n; i++)
		need_ipc |= !w[i].svc;
	deadline = now_ns() + atoll(argv[3]) * 1000000000LL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	left = n;
	while (left) {
		size_t end = each && first + 256 < n ? first + 256 : n;

		if (now_ns() > deadline) {
			fprintf(stderr, "sync_poll: timeout, %zu of %zu entries missing\n", left, n);
			return 1;
		}
		if (svc_fd < 0)
			svc_fd = open_map(argv[1], MAP_LB4_SERVICES);
		if (need_ipc && ipc_fd < 0)
			ipc_fd = open_map(argv[1], MAP_IPCACHE);
		if (svc_fd < 0 || (need_ipc && ipc_fd < 0)) {
			usleep(1000);
			continue;
		}
		for (size_t i = first; i < end; i++) {
			if (w[i].done)
				continue;
			lookups++;
			if (!present(svc_fd, ipc_fd, &w[i])) {
				/* all: nothing later can be confirmed cheaper than
				 * coming back here. */
				if (!each)
					break;
				continue;
			}
			w[i].done = true;
			left--;
			if (each)
				printf("%zu %lld\n", i, now_ns());
		}
		while (first < n && w[first].done)
			first++;
		if (left)
			usleep(200);
	}
	if (!each)
		printf("done_ns=%lld lookups=%llu\n", now_ns(), lookups);
	free(w);
	return 0;
}
