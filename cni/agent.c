// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cni.h"

/* An ADD waits for the agent to write the endpoint and attach programs, and
 * behind other ADDs (the agent serves one at a time); the runtime's own
 * timeout is minutes. */
#define CNI_AGENT_TIMEOUT_S 60
#define CNI_ANSWER_MAX (1 << 20)

int agent_call(const char *path, const char *req, struct buf *out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CNI_AGENT_TIMEOUT_S };
	size_t len = strlen(req), off = 0;
	int fd, err = 0;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		ssize_t n = write(fd, req + off, len - off);

		if (n <= 0) {
			err = n < 0 ? -errno : -EPIPE;
			goto out;
		}
		off += n;
	}
	for (;;) {
		char chunk[8192];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (!n)
			break;
		buf_add(out, chunk, n);
		if (out->oom || out->len > CNI_ANSWER_MAX) {
			err = -E2BIG;
			goto out;
		}
	}
	if (!out->len)
		err = -ECONNRESET;
out:
	close(fd);
	return err;
}
