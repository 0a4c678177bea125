// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sock_bench: cost of a TCP connect() + close(), to compare connecting to a
 * ClusterIP through Axon's socket load balancer with connecting straight to
 * the pod.
 *
 *   sock_bench --addr IP:PORT [--count N] [--warmup N]
 *	connect()+close() N times (after N warmup rounds) and print one line:
 *	addr=IP:PORT count=N mean_ns=... p50_ns=... p99_ns=... max_ns=...
 *   sock_bench --serve IP:PORT
 *	accept and close connections until killed.
 *
 * Each round times socket() + connect() + close(). The client closes with
 * SO_LINGER 0 (RST), so no TIME_WAIT piles up and long runs do not run out
 * of ephemeral ports; the same close is used on both paths being compared.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, colon - s);
	ip[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One round: returns 0 or -errno. */
static int connect_close(const struct sockaddr_in *sa)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		err = -errno;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return err;
}

static int run_client(const char *addr, const struct sockaddr_in *sa, long count, long warmup)
{
	uint64_t *lat, sum = 0;
	int err;

	lat = calloc(count, sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "sock_bench: out of memory for %ld samples\n", count);
		return 1;
	}
	for (long i = 0; i < warmup + count; i++) {
		uint64_t t0 = now_ns();

		err = connect_close(sa);
		if (err) {
			fprintf(stderr, "sock_bench: connect %s (round %ld): %s\n", addr, i,
				strerror(-err));
			free(lat);
			return 1;
		}
		if (i >= warmup)
			lat[i - warmup] = now_ns() - t0;
	}
	for (long i = 0; i < count; i++)
		sum += lat[i];
	qsort(lat, count, sizeof(*lat), cmp_u64);
	printf("addr=%s count=%ld mean_ns=%llu p50_ns=%llu p99_ns=%llu max_ns=%llu\n", addr, count,
	       (unsigned long long)(sum / count), (unsigned long long)lat[count / 2],
	       (unsigned long long)lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1],
	       (unsigned long long)lat[count - 1]);
	free(lat);
	return 0;
}

static int run_server(const char *addr, const struct sockaddr_in *sa)
{
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) || listen(fd, 4096)) {
		fprintf(stderr, "sock_bench: serve %s: %s\n", addr, strerror(errno));
		return 1;
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c >= 0) {
			close(c);
			continue;
		}
		if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE && errno != ENFILE) {
			fprintf(stderr, "sock_bench: accept on %s: %s\n", addr, strerror(errno));
			return 1;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sock_bench --addr IP:PORT [--count N] [--warmup N]\n"
		   "       sock_bench --serve IP:PORT\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"addr", required_argument, NULL, 'a'},   {"count", required_argument, NULL, 'c'},
	    {"warmup", required_argument, NULL, 'w'}, {"serve", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},	      {},
	};
	const char *addr = NULL, *serve = NULL;
	long count = 10000, warmup = 100;
	struct sockaddr_in sa;
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "a:c:w:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 's':
			serve = optarg;
			break;
		case 'c':
		case 'w':
			errno = 0;
			*(opt == 'c' ? &count : &warmup) = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "sock_bench: --%s wants a number, not '%s'\n",
					opt == 'c' ? "count" : "warmup", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!!addr == !!serve || optind != argc || count < 1 || warmup < 0) {
		usage(stderr);
		return 2;
	}
	if (parse_addr(addr ? addr : serve, &sa)) {
		fprintf(stderr, "sock_bench: '%s' is not IPv4-ADDRESS:PORT\n", addr ? addr : serve);
		return 2;
	}
	return addr ? run_client(addr, &sa, count, warmup) : run_server(serve, &sa);
}
