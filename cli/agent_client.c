// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli.h"

#define RESPONSE_MAX (64 << 20)

cJSON *cli_agent_request(const char *cmd, int *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	char req[256], *buf = NULL;
	size_t len = 0, cap = 0;
	cJSON *resp;
	int fd;

	if (strlen(cli.socket_path) >= sizeof(sun.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	strcpy(sun.sun_path, cli.socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		*err = -errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}\n", cmd);
	if (write(fd, req, strlen(req)) < 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *p;

			cap = cap ? cap * 2 : 65536;
			p = cap > RESPONSE_MAX ? NULL : realloc(buf, cap);
			if (!p) {
				*err = -E2BIG;
				goto fail;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			*err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (!buf) {
		*err = -ECONNRESET;
		return NULL;
	}
	buf[len] = '\0';
	resp = cJSON_Parse(buf);
	free(buf);
	if (!resp)
		*err = -EPROTO;
	return resp;
fail:
	free(buf);
	close(fd);
	return NULL;
}
