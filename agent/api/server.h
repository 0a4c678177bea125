/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's local API: a unix stream socket (mode 0600, root only) where a
 * client writes one JSON request line, {"cmd": "status", ...}, and reads one
 * JSON response, after which the agent closes the connection.
 *
 * Requests are served on the agent's single thread between watch events;
 * each client gets a short deadline so a stuck client cannot stall the agent.
 */
#ifndef AXON_API_SERVER_H
#define AXON_API_SERVER_H

#include <cjson/cJSON.h>

#define AXON_DEFAULT_SOCKET "/var/run/axon/agent.sock"

/* Build the response for a request; return NULL for an unknown command. The
 * server owns and frees what is returned. */
typedef cJSON *(*api_handler_fn)(void *ctx, const char *cmd, const cJSON *req);

struct api_server {
	int fd;
	char path[108];
};

int api_server_open(struct api_server *srv, const char *path);
/* Accept and serve one pending client (call when fd is readable). */
void api_server_serve_one(struct api_server *srv, api_handler_fn fn, void *ctx);
/* Serve one, then those already waiting, at most max in all: clients that
 * came together (concurrent CNI ADDs) are not each kept a loop turn apart. */
void api_server_serve_pending(struct api_server *srv, api_handler_fn fn, void *ctx, int max);
void api_server_close(struct api_server *srv);

#endif /* AXON_API_SERVER_H */
