// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "pin.h"
#include "server.h"

/* A CNI GC request lists every attachment on the node (~100 bytes each). */
#define API_REQUEST_MAX (64 * 1024)
#define API_DEADLINE_MS 1000
#define API_BURST_MS 200	/* more waiting requests served while under this */

int api_server_open(struct api_server *srv, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(srv->path)];
	int fd, err;

	srv->fd = -1;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	err = mkdir_p(dirname(dir));
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a previous agent (killed) is ours to replace. */
	unlink(path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, 0600) ||
	    listen(fd, 16)) {
		err = -errno;
		close(fd);
		return err;
	}
	srv->fd = fd;
	return 0;
}

static void reply(int fd, cJSON *resp)
{
	char *text = cJSON_PrintUnformatted(resp);
	size_t len, off = 0;

	if (!text)
		return;
	len = strlen(text);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n <= 0)
			break;
		off += n;
	}
	if (write(fd, "\n", 1) < 0) {
		/* The client went away; nothing to do. */
	}
	free(text);
}

static cJSON *error_response(const char *msg)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "error", msg);
	return r;
}

void api_server_serve_one(struct api_server *srv, api_handler_fn fn, void *ctx)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = API_DEADLINE_MS * 1000 };
	static char buf[API_REQUEST_MAX + 1];	/* one thread serves */
	size_t len = 0;
	cJSON *req = NULL, *resp;
	const cJSON *cmd;
	int fd;

	fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 5;	/* large responses to a slow reader get longer */
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < API_REQUEST_MAX) {
		ssize_t n = read(fd, buf + len, API_REQUEST_MAX - len);

		if (n <= 0)
			break;
		len += n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	req = cJSON_Parse(buf);
	cmd = cJSON_GetObjectItemCaseSensitive(req, "cmd");
	if (!req || !cJSON_IsString(cmd)) {
		resp = error_response("request must be a JSON object with a string \"cmd\"");
	} else {
		resp = fn(ctx, cmd->valuestring, req);
		if (!resp)
			resp = error_response("unknown command");
		pr_debug("api request", "cmd=%s", cmd->valuestring);
	}
	reply(fd, resp);
	cJSON_Delete(resp);
	cJSON_Delete(req);
	close(fd);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void api_server_serve_pending(struct api_server *srv, api_handler_fn fn, void *ctx, int max)
{
	struct pollfd p = { .fd = srv->fd, .events = POLLIN };
	uint64_t start = mono_ms();

	api_server_serve_one(srv, fn, ctx);
	/* Bounded: a burst holds the loop at most API_BURST_MS and one more
	 * client's deadline, however many clients wait (or send nothing). */
	while (--max > 0 && mono_ms() - start < API_BURST_MS && poll(&p, 1, 0) == 1 &&
	       (p.revents & POLLIN))
		api_server_serve_one(srv, fn, ctx);
}

void api_server_close(struct api_server *srv)
{
	if (srv->fd < 0)
		return;
	close(srv->fd);
	unlink(srv->path);
	srv->fd = -1;
}
