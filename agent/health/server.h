/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The health endpoint (--agent-health-port): GET /healthz and /livez on
 * 127.0.0.1, for the kubelet's probes.
 *
 *   /healthz  200 "ok" when the agent's thread last said it is ready (initial
 *             sync complete, datapath programmed: health/ready.c), else 503
 *             and the reason it gave, one line;
 *   /livez    200 while the agent's event loop keeps turning, 503 when it has
 *             not completed a turn for more than HEALTH_STALL_MS.
 *
 * The answers come from a thread of its own (http/httpd.h), so they are given
 * even when the event loop is stuck, which is when /livez matters. The loop
 * publishes a snapshot (ready, reason, the time of the turn) under a mutex
 * once per turn; the loop wakes at least once a second, so a snapshot older
 * than HEALTH_STALL_MS means a loop that is stuck, not idle. A stuck loop is
 * also not ready: what it last said is stale.
 */
#ifndef AXON_HEALTH_SERVER_H
#define AXON_HEALTH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_STALL_MS	    30000
#define HEALTH_PORT_DEFAULT 9879
#define HEALTH_REASON_MAX   256

struct health_server;

/* Listen on addr ("127.0.0.1:9879"; port 0: any free one) and start
 * answering: 503 "starting" until the first publish. Returns 0 or -errno. */
int health_server_start(struct health_server **out, const char *addr);
/* From the agent's thread, once per loop turn; turn_ms from health_now_ms(). */
void health_server_publish(struct health_server *s, bool ready, const char *reason,
			   uint64_t turn_ms);
int health_server_port(const struct health_server *s);
/* Stop answering; NULL is fine. */
void health_server_stop(struct health_server *s);

/* CLOCK_MONOTONIC in milliseconds: the clock turns are stamped with. */
uint64_t health_now_ms(void);

/* The answers, from a snapshot and the time now: the HTTP status, and the
 * body (one line, no newline) in body. */
int health_livez(uint64_t turn_ms, uint64_t now_ms, char *body, size_t len);
int health_healthz(bool ready, const char *reason, uint64_t turn_ms, uint64_t now_ms, char *body,
		   size_t len);

#endif /* AXON_HEALTH_SERVER_H */
