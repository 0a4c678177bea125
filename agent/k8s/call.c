// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Callers' own requests (client.h: k8s_call_start): queued in order of
 * arrival, each started when the client's rate limit gives it a token, and
 * handed back through its callback when it ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "k8s/internal.h"

static void call_free(struct k8s_call *call)
{
	k8s_req_free(call->req);
	free(call->method);
	free(call->path);
	free(call->content_type);
	free(call->body);
	free(call);
}

static void unlink_call(struct k8s_client *c, struct k8s_call *call)
{
	for (struct k8s_call **p = &c->calls; *p; p = &(*p)->next) {
		if (*p == call) {
			*p = call->next;
			call->next = NULL;
			return;
		}
	}
}

struct k8s_call *k8s_call_start(struct k8s_client *c, const char *method, const char *path,
				const char *content_type, const char *body, size_t len,
				k8s_call_fn done, void *ctx)
{
	struct k8s_call *call = calloc(1, sizeof(*call)), **tail;

	if (!call)
		return NULL;
	call->method = strdup(method);
	call->path = strdup(path);
	call->done = done;
	call->ctx = ctx;
	if (content_type) {
		call->content_type = strdup(content_type);
		call->body = malloc(len + 1);
		if (call->body) {
			memcpy(call->body, body, len);
			call->body[len] = '\0';
		}
		call->len = len;
	}
	if (!call->method || !call->path ||
	    (content_type && (!call->content_type || !call->body))) {
		call_free(call);
		return NULL;
	}
	for (tail = &c->calls; *tail; tail = &(*tail)->next)
		;
	*tail = call;
	k8s_client_wakeup(c);
	return call;
}

void k8s_call_cancel(struct k8s_client *c, struct k8s_call *call)
{
	if (!call)
		return;
	unlink_call(c, call);
	call_free(call);
}

void k8s_calls_start_due(struct k8s_client *c, uint64_t now)
{
	for (struct k8s_call *call = c->calls; call; call = call->next) {
		uint64_t wait;

		if (call->req || now < call->due_ms)
			continue;
		wait = k8s_client_pace(c);
		if (wait) {
			call->due_ms = now + wait;
			continue;
		}
		call->req = k8s_req_start_call(c, call);
		if (!call->req)
			call->due_ms = now + c->cfg.backoff_base_ms; /* out of memory */
	}
}

uint64_t k8s_calls_next_due(const struct k8s_client *c)
{
	uint64_t next = UINT64_MAX;

	for (const struct k8s_call *call = c->calls; call; call = call->next)
		if (!call->req && call->due_ms < next)
			next = call->due_ms;
	return next;
}

void k8s_call_done(struct k8s_client *c, struct k8s_req *r, CURLcode res)
{
	struct k8s_call *call = r->call;
	struct k8s_call_result out = {.body = ""};
	bool answered = res == CURLE_OK && r->status, next_server;
	char err[320] = "";

	next_server = k8s_client_note_result(c, r);
	call->req = NULL;
	if (!answered && next_server && !strcmp(call->method, "GET") &&
	    ++call->tries < c->cfg.n_servers) {
		/* Nothing reached us: the next server gets the same GET. */
		pr_debug("k8s request unanswered, trying the next server", "method=%s path=%s",
			 call->method, call->path);
		call->due_ms = 0;
		k8s_req_free(r);
		return;
	}
	out.status = answered ? r->status : 0;
	if (r->body) {
		out.body = r->body;
		out.len = r->len;
	}
	if (out.status < 200 || out.status > 299) {
		if (answered)
			k8s_req_describe_error(r, res, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s: %s", c->cfg.servers[r->server],
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
	}
	out.error = err;
	unlink_call(c, call);
	/* The callback may start calls (appended to the list), not free this one. */
	call->done(call->ctx, &out);
	k8s_req_free(r);
	call_free(call);
}

void k8s_calls_free(struct k8s_client *c)
{
	while (c->calls) {
		struct k8s_call *call = c->calls;

		c->calls = call->next;
		call_free(call);
	}
}
