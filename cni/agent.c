// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cni.h"

/* An ADD waits for the agent to write the endpoint and attach programs;
 * the runtime's own timeout (minutes) is far above this. */
#define CNI_AGENT_TIMEOUT_S 60
#define CNI_RESPONSE_MAX (1 << 20)

static int unreachable(struct cni_call *c, int err)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s: %s", c->socket, strerror(err));
	/* STATUS answers "not available"; the rest "try again later". */
	return cni_fail(c->version, strcmp(c->command, "STATUS") ? CNI_E_TRY_AGAIN_LATER
								 : CNI_E_NOT_AVAILABLE,
			"axon-agent unreachable", msg);
}

int cni_agent_call(struct cni_call *c, cJSON *req, cJSON **resp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CNI_AGENT_TIMEOUT_S };
	char *text, *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, ret = 0;

	*resp = NULL;
	if (strlen(c->socket) >= sizeof(sun.sun_path))
		return cni_fail(c->version, CNI_E_INVALID_CONFIG, "agent-socket path too long",
				c->socket);
	strcpy(sun.sun_path, c->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return unreachable(c, errno);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = unreachable(c, errno);
		close(fd);
		return ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	text = cJSON_PrintUnformatted(req);
	if (!text || write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0) {
		ret = unreachable(c, text ? errno : ENOMEM);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *p = cap * 2 > CNI_RESPONSE_MAX ? NULL : realloc(buf, cap ? cap * 2 : 8192);

			if (!p) {
				ret = cni_fail(c->version, CNI_E_IO, "agent answer too large", NULL);
				goto out;
			}
			buf = p;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			ret = unreachable(c, errno == EAGAIN ? ETIMEDOUT : errno);
			goto out;
		}
		if (!n)
			break;
		len += n;
	}
	buf[len] = '\0';
	*resp = cJSON_Parse(buf);
	if (!*resp)
		ret = cni_fail(c->version, CNI_E_TRY_AGAIN_LATER, "axon-agent gave no answer",
			       len ? "the answer is not JSON" : "the connection closed");
out:
	free(text);
	free(buf);
	close(fd);
	return ret;
}
