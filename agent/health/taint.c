// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/ratelimit.h"
#include "log.h"
#include "server.h"
#include "taint.h"

/* Another writer won the race: read again soon. */
#define CONFLICT_BASE_MS 200
#define CONFLICT_MAX_MS	 5000
/* RBAC, server errors, no answer: not soon. */
#define ERROR_BASE_MS 1000
#define ERROR_MAX_MS  60000

#define JSON_PATCH_TYPE "application/json-patch+json"

static cJSON *patch_op(const char *op, const char *path, cJSON *value)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "op", op);
	cJSON_AddStringToObject(o, "path", path);
	if (value)
		cJSON_AddItemToObject(o, "value", value);
	return o;
}

int node_taint_patch(const cJSON *node, const char *key, char **patch, unsigned int *removed)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(node, "spec");
	const cJSON *taints = cJSON_GetObjectItemCaseSensitive(spec, "taints"), *t;
	cJSON *ops = NULL, *left = NULL;
	unsigned int n = 0;
	int ret;

	*patch = NULL;
	*removed = 0;
	if (!cJSON_IsString(rv) || !rv->valuestring[0])
		return -EINVAL;
	if (!taints || cJSON_IsNull(taints))
		return -ENOENT;
	if (!cJSON_IsArray(taints))
		return -EINVAL;
	left = cJSON_CreateArray();
	if (!left)
		return -ENOMEM;
	cJSON_ArrayForEach(t, taints)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");

		if (!cJSON_IsObject(t) || !cJSON_IsString(k)) {
			ret = -EINVAL;
			goto cleanup;
		}
		if (!strcmp(k->valuestring, key))
			n++;
		else
			cJSON_AddItemToArray(left, cJSON_Duplicate(t, true));
	}
	if (!n) {
		ret = -ENOENT;
		goto cleanup;
	}
	ops = cJSON_CreateArray();
	cJSON_AddItemToArray(ops, patch_op("test", "/metadata/resourceVersion",
					   cJSON_CreateString(rv->valuestring)));
	cJSON_AddItemToArray(ops, patch_op("test", "/spec/taints", cJSON_Duplicate(taints, true)));
	if (cJSON_GetArraySize(left)) {
		cJSON_AddItemToArray(ops, patch_op("replace", "/spec/taints", left));
	} else {
		/* None left: no taints field, as the apiserver stores an empty list. */
		cJSON_AddItemToArray(ops, patch_op("remove", "/spec/taints", NULL));
		cJSON_Delete(left);
	}
	left = NULL;
	*patch = cJSON_PrintUnformatted(ops);
	ret = *patch ? 0 : -ENOMEM;
	if (!ret)
		*removed = n;
cleanup:
	cJSON_Delete(left);
	cJSON_Delete(ops);
	return ret;
}

static void read_node(struct node_taint *t);

static void retry(struct node_taint *t, bool conflict, const char *why)
{
	uint64_t delay;

	t->attempts++;
	delay = conflict ? k8s_backoff_ms(t->attempts, CONFLICT_BASE_MS, CONFLICT_MAX_MS,
					  k8s_rand_next(&t->rnd), 0)
			 : k8s_backoff_ms(t->attempts, ERROR_BASE_MS, ERROR_MAX_MS,
					  k8s_rand_next(&t->rnd), 0);
	t->state = NODE_TAINT_RETRY;
	t->failing = !conflict;
	t->due_ms = health_now_ms() + delay;
	snprintf(t->error, sizeof(t->error), "%s", why);
	if (conflict)
		pr_info("node changed while removing the not-ready taint, reading it again",
			"node=%s key=%s retry_ms=%llu", t->node, t->key, (unsigned long long)delay);
	else
		pr_warn("cannot remove the not-ready taint",
			"node=%s key=%s error=\"%s\" retry_ms=%llu", t->node, t->key, why,
			(unsigned long long)delay);
}

static void patched(void *ctx, const struct k8s_call_result *res)
{
	struct node_taint *t = ctx;

	t->call = NULL;
	if (res->status == 409 || res->status == 422) {
		t->conflicts++;
		retry(t, true, res->error);
		return;
	}
	if (res->status != 200) {
		retry(t, false, res->error);
		return;
	}
	t->state = NODE_TAINT_REMOVED;
	t->failing = false;
	t->error[0] = '\0';
	pr_info("agent ready: not-ready taint removed", "node=%s key=%s taints=%u", t->node, t->key,
		t->removed);
}

static void got_node(void *ctx, const struct k8s_call_result *res)
{
	struct node_taint *t = ctx;
	char path[320], *patch = NULL, err[64];
	cJSON *node;
	int ret;

	t->call = NULL;
	if (res->status != 200) {
		retry(t, false, res->error);
		return;
	}
	node = cJSON_ParseWithLength(res->body, res->len);
	ret = node ? node_taint_patch(node, t->key, &patch, &t->removed) : -EINVAL;
	cJSON_Delete(node);
	if (ret == -ENOENT) {
		t->state = NODE_TAINT_ABSENT;
		t->failing = false;
		t->error[0] = '\0';
		pr_info("agent ready: no not-ready taint on the Node", "node=%s key=%s", t->node,
			t->key);
		return;
	}
	if (ret) {
		snprintf(err, sizeof(err), "the Node read is not a Node: %s", strerror(-ret));
		retry(t, false, err);
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", t->node);
	t->call = k8s_call_start(t->k8s, "PATCH", path, JSON_PATCH_TYPE, patch, strlen(patch),
				 patched, t);
	free(patch);
	if (!t->call) {
		retry(t, false, "out of memory");
		return;
	}
	t->state = NODE_TAINT_PATCHING;
	t->patches++;
}

static void read_node(struct node_taint *t)
{
	char path[320];

	snprintf(path, sizeof(path), "/api/v1/nodes/%s", t->node);
	t->call = k8s_call_start(t->k8s, "GET", path, NULL, NULL, 0, got_node, t);
	if (!t->call) {
		retry(t, false, "out of memory");
		return;
	}
	t->state = NODE_TAINT_READING;
	t->reads++;
}

void node_taint_init(struct node_taint *t, const char *node, const char *key)
{
	*t = (struct node_taint){
	    .node = node,
	    .key = key,
	    .state = key && key[0] ? NODE_TAINT_WAITING : NODE_TAINT_OFF,
	    .rnd = (uint32_t)health_now_ms() | 1,
	};
}

void node_taint_run(struct node_taint *t, struct k8s_client *c, bool ready, uint64_t now_ms)
{
	if (!c)
		return;
	if (t->state == NODE_TAINT_WAITING && ready) {
		t->k8s = c;
		read_node(t);
	} else if (t->state == NODE_TAINT_RETRY && now_ms >= t->due_ms) {
		read_node(t);
	}
}

void node_taint_stop(struct node_taint *t)
{
	if (t->call)
		k8s_call_cancel(t->k8s, t->call);
	t->call = NULL;
}

const char *node_taint_state_name(const struct node_taint *t)
{
	switch (t->state) {
	case NODE_TAINT_OFF:
		return "off";
	case NODE_TAINT_WAITING:
		return "waiting";
	case NODE_TAINT_READING:
	case NODE_TAINT_PATCHING:
	case NODE_TAINT_RETRY:
		return t->failing ? "error" : "removing";
	case NODE_TAINT_REMOVED:
		return "removed";
	case NODE_TAINT_ABSENT:
		return "absent";
	}
	return "unknown";
}
