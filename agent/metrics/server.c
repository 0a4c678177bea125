// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "axon/maps.h"
#include "log.h"
#include "pin.h"
#include "server.h"

#define REQUEST_MAX	8192
#define CLIENT_DEADLINE_S 2

struct metrics_server {
	int listen_fd;
	int stop_pipe[2];
	int metrics_fd;			/* the datapath's metrics map */
	struct map_fill *fill;
	pthread_t thread;
	pthread_mutex_t lock;		/* guards state */
	struct metrics_state state;
};

/* "[HOST]:PORT" -> host ("" for any) and port. */
static int split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (!colon || !colon[1])
		return -EINVAL;
	n = colon - addr;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= hlen || strlen(colon + 1) >= plen)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int listen_on(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
			*res, *ai;
	char host[256], port[16];
	int fd = -1, err, one = 1, zero = 0;

	err = split_addr(addr, host, sizeof(host), port, sizeof(port));
	if (err)
		return err;
	/* Any address: one IPv6 socket that also takes IPv4, else IPv4. */
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err && !host[0]) {
		hints.ai_family = AF_INET;
		err = getaddrinfo(NULL, port, &hints, &res);
	}
	if (err)
		return -EADDRNOTAVAIL;
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !host[0])
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 16))
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return;		/* the client went away or stalled */
		p += n;
		len -= n;
	}
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body,
		    size_t len, bool head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", code, reason, type, len);

	write_all(fd, hdr, n);
	if (!head)
		write_all(fd, body, len);
}

static void serve(struct metrics_server *s, int fd)
{
	struct timeval tv = { .tv_sec = CLIENT_DEADLINE_S };
	char req[REQUEST_MAX + 1], method[8], path[256];
	size_t len = 0;
	bool head;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < REQUEST_MAX) {
		ssize_t n = read(fd, req + len, REQUEST_MAX - len);

		if (n <= 0)
			return;
		len += n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	if (sscanf(req, "%7s %255s", method, path) != 2) {
		respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, false);
		return;
	}
	head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		respond(fd, 405, "Method Not Allowed", "text/plain", "GET only\n", 9, false);
		return;
	}
	path[strcspn(path, "?")] = '\0';
	if (strcmp(path, "/metrics")) {
		respond(fd, 404, "Not Found", "text/plain", "metrics are at /metrics\n", 24, head);
		return;
	}
	{
		struct metrics_state st;
		struct expo e;

		pthread_mutex_lock(&s->lock);
		st = s->state;
		pthread_mutex_unlock(&s->lock);
		expo_init(&e);
		metrics_render(&e, s->fill, s->metrics_fd, &st);
		if (e.err)
			respond(fd, 500, "Internal Server Error", "text/plain", "out of memory\n",
				14, head);
		else
			respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", e.buf,
				e.len, head);
		expo_free(&e);
	}
}

static void *run(void *arg)
{
	struct metrics_server *s = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN },
				       { .fd = s->stop_pipe[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("metrics server: poll failed", "error=\"%s\"", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(s, fd);
		close(fd);
	}
}

int metrics_server_start(struct metrics_server **out, const char *addr, struct map_fill *fill,
			 const char *bpf_root)
{
	struct metrics_server *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->fill = fill;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->metrics_fd = pin_map_open(bpf_root, MAP_METRICS);	/* -errno: no verdicts */
	s->listen_fd = listen_on(addr);
	if (s->listen_fd < 0) {
		err = s->listen_fd;
		goto fail;
	}
	if (pipe2(s->stop_pipe, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	err = -pthread_create(&s->thread, NULL, run, s);
	if (err)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
	if (s->metrics_fd >= 0)
		close(s->metrics_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return err;
}

void metrics_server_publish(struct metrics_server *s, const struct metrics_state *st)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->state = *st;
	pthread_mutex_unlock(&s->lock);
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	if (write(s->stop_pipe[1], "x", 1) == 1)
		pthread_join(s->thread, NULL);
	close(s->listen_fd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	if (s->metrics_fd >= 0)
		close(s->metrics_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
