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

#include "log.h"
#include "httpd.h"

#define REQUEST_MAX	  8192
#define CLIENT_DEADLINE_S 2

struct httpd {
	int listen_fd;
	int stop_pipe[2];
	int port;
	const char *name;
	httpd_handler_fn fn;
	void *ctx;
	pthread_t thread;
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
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res, *ai;
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
		/* Lets a restarted agent bind past TIME_WAIT; a live listener
		 * on the port still makes bind fail with EADDRINUSE. */
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

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return; /* the client went away or stalled */
		p += n;
		len -= n;
	}
}

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

void httpd_respond(const struct httpd_request *req, int code, const char *type, const char *body,
		   size_t len)
{
	httpd_respond_headers(req, code, type, "", body, len);
}

void httpd_respond_headers(const struct httpd_request *req, int code, const char *type,
			   const char *headers, const char *body, size_t len)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 code, reason_phrase(code), type, len, headers);

	if (n < 0 || (size_t)n >= sizeof(hdr))
		return;
	write_all(req->fd, hdr, n);
	if (!req->head)
		write_all(req->fd, body, len);
}

static void serve(struct httpd *h, int fd)
{
	struct timeval tv = {.tv_sec = CLIENT_DEADLINE_S};
	char req[REQUEST_MAX + 1], method[8], path[256];
	struct httpd_request r = {.fd = fd, .path = path};
	size_t len = 0;

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
		httpd_respond(&r, 400, "text/plain", "bad request\n", 12);
		return;
	}
	r.head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !r.head) {
		httpd_respond(&r, 405, "text/plain", "GET only\n", 9);
		return;
	}
	path[strcspn(path, "?")] = '\0';
	h->fn(h->ctx, &r);
}

static void *run(void *arg)
{
	struct httpd *h = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = h->listen_fd, .events = POLLIN},
				      {.fd = h->stop_pipe[0], .events = POLLIN}};
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("http server: poll failed", "server=%s error=\"%s\"", h->name,
			       strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(h, fd);
		close(fd);
	}
}

int httpd_start(struct httpd **out, const char *addr, const char *name, httpd_handler_fn fn,
		void *ctx)
{
	struct httpd *h = calloc(1, sizeof(*h));
	int err;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->name = name;
	h->fn = fn;
	h->ctx = ctx;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	h->listen_fd = listen_on(addr);
	if (h->listen_fd < 0) {
		err = h->listen_fd;
		goto fail;
	}
	h->port = bound_port(h->listen_fd);
	if (h->port < 0) {
		err = h->port;
		goto fail;
	}
	if (pipe2(h->stop_pipe, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	err = -pthread_create(&h->thread, NULL, run, h);
	if (err)
		goto fail;
	*out = h;
	return 0;
fail:
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->stop_pipe[0] >= 0) {
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
	}
	free(h);
	return err;
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (write(h->stop_pipe[1], "x", 1) == 1)
		pthread_join(h->thread, NULL);
	close(h->listen_fd);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	free(h);
}
