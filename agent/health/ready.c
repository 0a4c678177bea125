// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Readiness from the agent's state, published to the health endpoint. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "health.h"
#include "log.h"

static bool watches_synced(struct agent *a, char *reason, size_t len)
{
	struct agent_watch *ws[AGENT_WATCHES];
	size_t count = agent_watches(a, ws);
	char names[256] = "";
	size_t n = 0;

	for (size_t i = 0; i < count; i++) {
		struct k8s_informer_status st;

		if (!ws[i]->informer) {
			snprintf(reason, len, "starting: no watches yet");
			return false;
		}
		if (ws[i]->synced || agent_watch_not_installed(ws[i]))
			continue;
		k8s_informer_status(ws[i]->informer, &st);
		n += snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, "%s%s",
			      n ? ", " : "", st.name);
	}
	if (!n)
		return true;
	snprintf(reason, len, "waiting for initial sync: %s", names);
	return false;
}

bool agent_ready(struct agent *a, char *reason, size_t len)
{
	bool sock_lb = a->dp.n_attach > 0;

	if (!watches_synced(a, reason, len))
		return false;
	if (strcmp(a->dpx.state, "ready")) {
		snprintf(reason, len, "datapath not programmed: %s", a->dpx.state);
		return false;
	}
	if (sock_lb != a->cfg.bpf_lb_sock) {
		snprintf(reason, len, "socket LB %s (--bpf-lb-sock=%s)",
			 sock_lb ? "still attached" : "not attached",
			 a->cfg.bpf_lb_sock ? "true" : "false");
		return false;
	}
	if (!a->pruned) {
		snprintf(reason, len, "load-balancing maps not realized yet");
		return false;
	}
	if (a->lb.failures.count) {
		snprintf(reason, len, "load-balancing maps: %zu service(s) not realized",
			 a->lb.failures.count);
		return false;
	}
	snprintf(reason, len, "ok");
	return true;
}

int agent_health_open(struct agent *a)
{
	struct agent_health *h = &a->health;
	char addr[32];
	int err;

	node_taint_init(&h->taint, a->cfg.node_name, a->cfg.not_ready_taint_key);
	snprintf(h->reason, sizeof(h->reason), "starting");
	if (!a->cfg.health_port)
		return 0;
	/* Loopback only: the kubelet probes from the host's network namespace,
	 * where a host-network agent's 127.0.0.1 is; nobody else needs it. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", a->cfg.health_port);
	err = health_server_start(&h->server, addr);
	if (err) {
		pr_err("cannot serve health checks", "addr=%s error=\"%s\"%s", addr, strerror(-err),
		       err == -EADDRINUSE ? " hint=\"another agent on this node, or pick another "
					    "--agent-health-port\""
					  : "");
		return err;
	}
	pr_info("serving health checks", "addr=%s paths=/healthz,/livez", addr);
	return 0;
}

void agent_health_publish(struct agent *a)
{
	struct agent_health *h = &a->health;
	uint64_t now = health_now_ms();

	h->ready = agent_ready(a, h->reason, sizeof(h->reason));
	if (h->ready && !h->was_ready) {
		h->was_ready = true;
		pr_info("agent ready", "node=%s", a->cfg.node_name);
	}
	health_server_publish(h->server, h->ready, h->reason, now);
	node_taint_run(&h->taint, a->k8s, h->ready, now);
}

void agent_health_close(struct agent *a)
{
	health_server_stop(a->health.server);
	a->health.server = NULL;
	node_taint_stop(&a->health.taint);
}

cJSON *agent_health_status(struct agent *a)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "port", a->cfg.health_port);
	cJSON_AddBoolToObject(o, "ready", a->health.ready);
	cJSON_AddStringToObject(o, "reason", a->health.reason);
	return o;
}

cJSON *agent_taint_status(struct agent *a)
{
	const struct node_taint *t = &a->health.taint;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "key", t->key ? t->key : "");
	cJSON_AddStringToObject(o, "state", node_taint_state_name(t));
	cJSON_AddNumberToObject(o, "removed", t->state == NODE_TAINT_REMOVED ? t->removed : 0);
	cJSON_AddNumberToObject(o, "reads", t->reads);
	cJSON_AddNumberToObject(o, "patches", t->patches);
	cJSON_AddNumberToObject(o, "conflicts", t->conflicts);
	cJSON_AddStringToObject(o, "error", t->error);
	return o;
}
