/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Prometheus endpoint (--prometheus-serve-addr): GET /metrics over plain
 * HTTP/1.x, one request per connection, on a thread of its own.
 *
 * Its own thread, unlike the local API socket: the port is reachable from the
 * network, and a client that connects and sends nothing must not stall the
 * agent's event loop (the API socket is root-only). The thread touches only
 * what is safe from another thread: the maps (its own fds, map_fill.h), the
 * atomic map-op counters, and the last struct metrics_state the agent's
 * thread published (copied under a mutex). The HTTP side is http/httpd.h
 * (clients one at a time, a 2 s deadline each).
 */
#ifndef AXON_METRICS_SERVER_H
#define AXON_METRICS_SERVER_H

#include "collect.h"
#include "map_fill.h"

struct metrics_server;

/* Listen on addr ("[HOST]:PORT"; ":9962" is every address) and start the
 * thread. fill must outlive the server. Returns 0 or -errno. */
int metrics_server_start(struct metrics_server **out, const char *addr, struct map_fill *fill,
			 const char *bpf_root);
/* Publish the agent's state (call from the agent's thread). */
void metrics_server_publish(struct metrics_server *s, const struct metrics_state *st);
/* Stop the thread and close the socket; NULL is fine. */
void metrics_server_stop(struct metrics_server *s);

#endif /* AXON_METRICS_SERVER_H */
