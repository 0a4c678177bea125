// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "axon/maps.h"
#include "http/httpd.h"
#include "pin.h"
#include "server.h"

struct metrics_server {
	struct httpd *http;
	int metrics_fd;			/* the datapath's metrics map */
	struct map_fill *fill;
	pthread_mutex_t lock;		/* guards state */
	struct metrics_state state;
};

/* On the HTTP server's thread. */
static void serve(void *ctx, const struct httpd_request *req)
{
	struct metrics_server *s = ctx;
	struct metrics_state st;
	struct expo e;

	if (strcmp(req->path, "/metrics")) {
		httpd_respond(req, 404, "text/plain", "metrics are at /metrics\n", 24);
		return;
	}
	pthread_mutex_lock(&s->lock);
	st = s->state;
	pthread_mutex_unlock(&s->lock);
	expo_init(&e);
	metrics_render(&e, s->fill, s->metrics_fd, &st);
	if (e.err)
		httpd_respond(req, 500, "text/plain", "out of memory\n", 14);
	else
		httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", e.buf, e.len);
	expo_free(&e);
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
	pthread_mutex_init(&s->lock, NULL);
	s->metrics_fd = pin_map_open(bpf_root, MAP_METRICS);	/* -errno: no verdicts */
	err = httpd_start(&s->http, addr, "metrics", serve, s);
	if (err) {
		if (s->metrics_fd >= 0)
			close(s->metrics_fd);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return err;
	}
	*out = s;
	return 0;
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
	httpd_stop(s->http);
	if (s->metrics_fd >= 0)
		close(s->metrics_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
