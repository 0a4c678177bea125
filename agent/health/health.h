/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's health, as the kubelet and the scheduler see it: the endpoint
 * (server.h), the readiness it reports, and the not-ready taint (taint.h).
 *
 * Ready means: every watch has delivered its initial list (a resource that is
 * not installed, answering 404, does not hold it up: the datapath works
 * without it, see dpsync.h), and the datapath is programmed: the tc datapath's
 * state is "ready", the socket LB is attached as --bpf-lb-sock says, and the
 * load-balancing maps hold every Service (the first full pass is done and
 * none is failing). Computed once per loop turn; it can turn false again
 * (a reconciler failing), while the taint, once removed, stays removed.
 */
#ifndef AXON_HEALTH_H
#define AXON_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "health/server.h"
#include "health/taint.h"

struct agent;

struct agent_health {
	struct health_server *server; /* --agent-health-port; NULL: off */
	struct node_taint taint;
	bool ready;
	bool was_ready;			/* ready at least once (logged once) */
	char reason[HEALTH_REASON_MAX]; /* "ok", or what readiness waits for */
};

/* Start the endpoint: early and cheap, so a port in use fails the start
 * before anything is attached. Returns 0 or -errno (logged). */
int agent_health_open(struct agent *a);
/* Once per loop turn: compute readiness, publish it with the turn's time,
 * drive the taint removal. */
void agent_health_publish(struct agent *a);
/* Stop the endpoint and the taint request in flight (before the client goes). */
void agent_health_close(struct agent *a);

/* Whether the agent is ready; when not, why, in reason (one line). */
bool agent_ready(struct agent *a, char *reason, size_t len);

/* For status: {"port", "ready", "reason"} and {"key", "state", ...}. */
cJSON *agent_health_status(struct agent *a);
cJSON *agent_taint_status(struct agent *a);

#endif /* AXON_HEALTH_H */
