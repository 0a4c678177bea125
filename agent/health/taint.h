/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Removing the agent-not-ready taint (--agent-not-ready-taint-key) from this
 * node's Node once the agent is ready, so the scheduler places pods only on
 * nodes whose datapath is programmed. Once per agent start; never added back.
 *
 * Safe against concurrent writers of the Node (kubelet, other controllers):
 * GET the Node, then a JSON patch (RFC 6902) that tests the resourceVersion
 * and the taints read, and replaces the taints with those that remain (or
 * removes the field when none do). Any write in between fails the test: the
 * apiserver answers 422 (or 409 on a resourceVersion conflict), and the Node
 * is read again after a short backoff. A Node without the taint gets no write.
 * Other failures (403: RBAC without patch on nodes; 5xx; no answer) are
 * retried with a longer backoff, shown in status as "error".
 */
#ifndef AXON_HEALTH_TAINT_H
#define AXON_HEALTH_TAINT_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "k8s/client.h"

#define NODE_TAINT_KEY_DEFAULT "node.axon.io/agent-not-ready"

enum node_taint_state {
	NODE_TAINT_OFF = 0,  /* no key configured */
	NODE_TAINT_WAITING,  /* the agent is not ready yet */
	NODE_TAINT_READING,  /* GET of the Node in flight */
	NODE_TAINT_PATCHING, /* the JSON patch in flight */
	NODE_TAINT_RETRY,    /* read again at due_ms (after a conflict or an error) */
	NODE_TAINT_REMOVED,  /* done: this run removed it */
	NODE_TAINT_ABSENT,   /* done: the Node had no such taint */
};

struct node_taint {
	const char *node; /* the Node's name */
	const char *key;  /* "" or NULL: off */
	enum node_taint_state state;
	struct k8s_client *k8s; /* of the call in flight */
	struct k8s_call *call;
	uint64_t due_ms;
	unsigned int attempts; /* consecutive failures, for backoff */
	unsigned long reads, patches, conflicts;
	unsigned int removed; /* taints removed (one per effect) */
	uint32_t rnd;	      /* jitter */
	bool failing;	      /* the last attempt failed, not by a conflict */
	char error[320];      /* last failure or conflict; "" once done */
};

/* node and key must outlive t. */
void node_taint_init(struct node_taint *t, const char *node, const char *key);
/* Once per loop turn: starts the first time ready is true, then retries when
 * due. now_ms: health_now_ms(). */
void node_taint_run(struct node_taint *t, struct k8s_client *c, bool ready, uint64_t now_ms);
/* Cancel the request in flight (before the client is freed). */
void node_taint_stop(struct node_taint *t);
/* For status: "off", "waiting", "removing" (also while retrying after a
 * conflict), "error" (retrying after a failure), "removed", "absent". */
const char *node_taint_state_name(const struct node_taint *t);

/*
 * The JSON patch that removes every taint with key from node (a Node object):
 * 0 with *patch (malloc'ed, compact JSON) and *removed, -ENOENT when the Node
 * has no such taint (nothing to write), -EINVAL when node has no
 * metadata.resourceVersion or its spec.taints is not a list of taints.
 */
int node_taint_patch(const cJSON *node, const char *key, char **patch, unsigned int *removed);

#endif /* AXON_HEALTH_TAINT_H */
