/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A minimal HTTP/1.x server on a thread of its own, shared by the agent's
 * endpoints that must answer whatever the event loop is doing: metrics
 * (--prometheus-serve-addr) and health (--agent-health-port).
 *
 * One request per connection, clients served one at a time with a 2 s
 * deadline each, so a client that connects and sends nothing delays the next
 * client by at most that and never the agent. GET and HEAD only; anything
 * else gets 405, an unparsable request 400. The handler runs on the server's
 * thread: it may touch only what is safe from there (a snapshot the agent's
 * thread published under a lock, atomics, its own fds) and must not log per
 * request (a stuck log reader must not stop the answers).
 */
#ifndef AXON_HTTPD_H
#define AXON_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct httpd;

struct httpd_request {
	int fd;
	const char *path; /* without the query string */
	bool head;	  /* HEAD: headers only */
};

/* Answer req once, with httpd_respond(). */
typedef void (*httpd_handler_fn)(void *ctx, const struct httpd_request *req);

/* Listen on addr ("[HOST]:PORT"; ":9962" is every address, port 0 any free
 * one) and start the thread. name is for logs ("metrics"). Returns 0 or
 * -errno (-EADDRINUSE: the port is taken). */
int httpd_start(struct httpd **out, const char *addr, const char *name, httpd_handler_fn fn,
		void *ctx);
/* Write one complete response (Connection: close). */
void httpd_respond(const struct httpd_request *req, int code, const char *type, const char *body,
		   size_t len);
/* The same with extra header lines (each ending in "\r\n"), for the
 * kube-proxy-compatible answers' X-Content-Type-Options and the like. */
void httpd_respond_headers(const struct httpd_request *req, int code, const char *type,
			   const char *headers, const char *body, size_t len);
/* The port bound (useful after port 0). */
int httpd_port(const struct httpd *h);
/* Stop the thread and close the socket; NULL is fine. */
void httpd_stop(struct httpd *h);

#endif /* AXON_HTTPD_H */
