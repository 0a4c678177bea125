// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/httpd.h"
#include "server.h"

struct health_server {
	struct httpd *http;
	pthread_mutex_t lock; /* guards the snapshot below */
	bool ready;
	char reason[HEALTH_REASON_MAX];
	uint64_t turn_ms;
};

uint64_t health_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int health_livez(uint64_t turn_ms, uint64_t now_ms, char *body, size_t len)
{
	uint64_t idle = now_ms > turn_ms ? now_ms - turn_ms : 0;

	if (idle > HEALTH_STALL_MS) {
		snprintf(body, len, "event loop stalled: no turn for %llu.%llus",
			 (unsigned long long)(idle / 1000),
			 (unsigned long long)(idle % 1000 / 100));
		return 503;
	}
	snprintf(body, len, "ok");
	return 200;
}

int health_healthz(bool ready, const char *reason, uint64_t turn_ms, uint64_t now_ms, char *body,
		   size_t len)
{
	if (health_livez(turn_ms, now_ms, body, len) != 200)
		return 503;
	if (!ready) {
		snprintf(body, len, "%s", reason);
		return 503;
	}
	snprintf(body, len, "ok");
	return 200;
}

/* On the HTTP server's thread. */
static void serve(void *ctx, const struct httpd_request *req)
{
	struct health_server *s = ctx;
	char reason[HEALTH_REASON_MAX], body[HEALTH_REASON_MAX + 64];
	uint64_t turn_ms, now = health_now_ms();
	bool ready;
	int code;

	pthread_mutex_lock(&s->lock);
	ready = s->ready;
	turn_ms = s->turn_ms;
	memcpy(reason, s->reason, sizeof(reason));
	pthread_mutex_unlock(&s->lock);
	if (!strcmp(req->path, "/healthz")) {
		code = health_healthz(ready, reason, turn_ms, now, body, sizeof(body));
	} else if (!strcmp(req->path, "/livez")) {
		code = health_livez(turn_ms, now, body, sizeof(body));
	} else {
		code = 404;
		snprintf(body, sizeof(body), "health checks are at /healthz and /livez");
	}
	httpd_respond(req, code, "text/plain; charset=utf-8", body, strlen(body));
}

int health_server_start(struct health_server **out, const char *addr)
{
	struct health_server *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->reason, sizeof(s->reason), "starting");
	/* Startup counts as a turn: the loop has until HEALTH_STALL_MS after
	 * this to publish its first. */
	s->turn_ms = health_now_ms();
	err = httpd_start(&s->http, addr, "health", serve, s);
	if (err) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void health_server_publish(struct health_server *s, bool ready, const char *reason,
			   uint64_t turn_ms)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->ready = ready;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	s->turn_ms = turn_ms;
	pthread_mutex_unlock(&s->lock);
}

int health_server_port(const struct health_server *s)
{
	return httpd_port(s->http);
}

void health_server_stop(struct health_server *s)
{
	if (!s)
		return;
	httpd_stop(s->http);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
