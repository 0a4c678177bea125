// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli.h"
#include "cmd_util.h"

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

const char *cli_unreachable_msg(int err, char *buf, size_t len)
{
	switch (-err) {
	case ENOENT:
	case ECONNREFUSED:
		/* No socket, or no one behind it: the agent is not running. */
		snprintf(buf, len, "Agent unreachable at %s: is axon-agent running?",
			 cli.socket_path);
		break;
	case EACCES:
	case EPERM:
		snprintf(buf, len, "Agent unreachable at %s: %s (the socket is root's)",
			 cli.socket_path, strerror(-err));
		break;
	case ETIMEDOUT:
		snprintf(buf, len, "Agent unreachable at %s: no answer within 10 s (is it stuck? "
			 "see its log)", cli.socket_path);
		break;
	default:
		snprintf(buf, len, "Agent unreachable at %s: %s", cli.socket_path, strerror(-err));
	}
	return buf;
}

cJSON *cli_agent_list(const char *cmd, const char *key, int *exit_code)
{
	cJSON *doc, *arr, *e;
	char msg[512];
	int err = 0;

	doc = cli_agent_request(cmd, &err);
	if (!doc) {
		cli_error("%s", cli_unreachable_msg(err, msg, sizeof(msg)));
		*exit_code = CLI_EXIT_UNREACHABLE;
		return NULL;
	}
	e = cJSON_GetObjectItem(doc, "error");
	arr = cJSON_DetachItemFromObject(doc, key);
	if (cJSON_IsString(e) || !cJSON_IsArray(arr)) {
		if (cJSON_IsString(e) && !strcmp(e->valuestring, "unknown command"))
			cli_error("agent: unknown command '%s' (an agent older than this agentctl? "
				  "see 'agentctl version')", cmd);
		else
			cli_error("agent: %s", cJSON_IsString(e) ? e->valuestring
							 : "answer without the list");
		*exit_code = CLI_EXIT_FAIL;
		cJSON_Delete(arr);
		arr = NULL;
	}
	cJSON_Delete(doc);
	return arr;
}

int cli_agent_list_command(int argc, char **argv, const char *cmd, const char *key,
			   void (*text)(const cJSON *doc))
{
	int ret = cmd_flags(argc, argv, NULL, NULL, 0);
	cJSON *list;

	if (ret)
		return ret;
	list = cli_agent_list(cmd, key, &ret);
	if (!list)
		return ret;
	return cli_print(list, text);
}
