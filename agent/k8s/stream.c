// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/json.h"
#include "k8s/stream.h"

#define STREAM_MIN_CAP 4096

void k8s_stream_init(struct k8s_stream *s, size_t max_event)
{
	memset(s, 0, sizeof(*s));
	s->max_event = max_event ? max_event : K8S_STREAM_MAX_EVENT;
}

void k8s_stream_reset(struct k8s_stream *s)
{
	s->len = 0;
}

void k8s_stream_free(struct k8s_stream *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

size_t k8s_stream_pending(const struct k8s_stream *s)
{
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] != ' ' && s->buf[i] != '\t' && s->buf[i] != '\r')
			return s->len;
	}
	return 0;
}

static int append(struct k8s_stream *s, const char *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : STREAM_MIN_CAP;
		char *nb;

		while (cap < s->len + n)
			cap *= 2;
		/* Never more than one capped event (the caller checked it). */
		if (cap > s->max_event)
			cap = s->max_event;
		nb = realloc(s->buf, cap);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	}
	return true;
}

int k8s_stream_feed(struct k8s_stream *s, const char *data, size_t len, k8s_line_fn fn, void *ctx)
{
	const char *p = data, *end = data + len;
	int ret;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t chunk = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *line;
		size_t n;

		if (chunk > s->max_event - s->len)
			return -EMSGSIZE;
		if (!nl)
			return append(s, p, chunk);
		/* Whole lines inside this fragment are handed over in place;
		 * only a line that spans fragments is copied. */
		if (s->len) {
			ret = append(s, p, chunk);
			if (ret)
				return ret;
			line = s->buf;
			n = s->len;
		} else {
			line = p;
			n = chunk;
		}
		p = nl + 1;
		s->len = 0;
		if (n && line[n - 1] == '\r')
			n--;
		if (blank(line, n))
			continue;
		ret = fn(ctx, line, n);
		if (ret)
			return ret;
	}
	return 0;
}

static const char *const event_names[] = {
    [K8S_EV_ADDED] = "ADDED",	    [K8S_EV_MODIFIED] = "MODIFIED", [K8S_EV_DELETED] = "DELETED",
    [K8S_EV_BOOKMARK] = "BOOKMARK", [K8S_EV_ERROR] = "ERROR",
};

const char *k8s_event_type_name(enum k8s_event_type type)
{
	return (unsigned)type < 5 ? event_names[type] : "?";
}

void k8s_event_free(struct k8s_event *ev)
{
	cJSON_Delete(ev->root);
	memset(ev, 0, sizeof(*ev));
}

static int decode_status(struct k8s_event *ev, char *err, size_t errlen)
{
	const char *s;
	long long code = 0;
	int ret;

	ret = k8s_json_int(ev->object, "object", "code", false, 0, 999, &code, err, errlen);
	if (ret)
		return ret;
	ev->code = (int)code;
	ret = k8s_json_string_ref(ev->object, "object", "reason", false, &s, err, errlen);
	if (ret)
		return ret;
	ev->reason = s ? s : "";
	ret = k8s_json_string_ref(ev->object, "object", "message", false, &s, err, errlen);
	if (ret)
		return ret;
	ev->message = s ? s : "";
	return 0;
}

/* A bookmark's metadata.annotations["k8s.io/initial-events-end"]. */
static int decode_initial_events_end(struct k8s_event *ev, const cJSON *md, char *err,
				     size_t errlen)
{
	const cJSON *ann;
	const char *end;
	int ret;

	ret = k8s_json_object(md, "object.metadata", "annotations", false, &ann, err, errlen);
	if (ret || !ann)
		return ret;
	ret = k8s_json_string_ref(ann, "object.metadata.annotations", "k8s.io/initial-events-end",
				  false, &end, err, errlen);
	if (ret)
		return ret;
	ev->initial_events_end = end && !strcmp(end, "true");
	return 0;
}

static int decode_rv(struct k8s_event *ev, char *err, size_t errlen)
{
	const cJSON *md;
	const char *rv;
	int ret;

	ret = k8s_json_object(ev->object, "object", "metadata", ev->type == K8S_EV_BOOKMARK, &md,
			      err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string_ref(md, "object.metadata", "resourceVersion",
				  ev->type == K8S_EV_BOOKMARK, &rv, err, errlen);
	if (ret)
		return ret;
	if (rv && strlen(rv) >= 32)
		return k8s_json_fail(err, errlen, "object.metadata", "resourceVersion",
				     "longer than 31 bytes");
	if (ev->type == K8S_EV_BOOKMARK && !rv[0])
		return k8s_json_fail(err, errlen, "object.metadata", "resourceVersion",
				     "must not be empty");
	ev->resource_version = rv ? rv : "";
	if (ev->type == K8S_EV_BOOKMARK)
		return decode_initial_events_end(ev, md, err, errlen);
	return 0;
}

int k8s_event_decode(const char *line, size_t len, struct k8s_event *ev, char *err, size_t errlen)
{
	const char *end = NULL, *type;
	char shown[64];
	int ret = -EINVAL;

	memset(ev, 0, sizeof(*ev));
	ev->root = cJSON_ParseWithLengthOpts(line, len, &end, false);
	if (!ev->root) {
		snprintf(err, errlen, "not JSON (error at byte %zu)",
			 end && end >= line ? (size_t)(end - line) : (size_t)0);
		goto cleanup;
	}
	if (end && !blank(end, len - (end - line))) {
		snprintf(err, errlen, "trailing bytes after the event at byte %zu",
			 (size_t)(end - line));
		goto cleanup;
	}
	if (!cJSON_IsObject(ev->root)) {
		snprintf(err, errlen, "event: expected a JSON object");
		goto cleanup;
	}
	ret = k8s_json_string_ref(ev->root, NULL, "type", true, &type, err, errlen);
	if (ret)
		goto cleanup;
	ret = -EINVAL;
	for (ev->type = 0; ev->type <= K8S_EV_ERROR; ev->type++) {
		if (!strcmp(type, event_names[ev->type]))
			break;
	}
	if (ev->type > K8S_EV_ERROR) {
		k8s_json_quote(shown, sizeof(shown), type);
		snprintf(err, errlen, "type: unknown event type \"%s\"", shown);
		goto cleanup;
	}
	ret = k8s_json_object(ev->root, NULL, "object", true, &ev->object, err, errlen);
	if (ret)
		goto cleanup;
	ret =
	    ev->type == K8S_EV_ERROR ? decode_status(ev, err, errlen) : decode_rv(ev, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	k8s_event_free(ev);
	return ret;
}

static void copy_text(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t i;

	if (!dstlen)
		return;
	/* Error bodies end up in logs and status: one printable line. */
	for (i = 0; i < n && i < dstlen - 1; i++) {
		unsigned char ch = src[i];

		dst[i] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? ' ' : ch;
	}
	while (i && dst[i - 1] == ' ')
		i--;
	dst[i] = '\0';
}

void k8s_status_parse(const char *body, size_t len, int *code, char *reason, size_t reasonlen,
		      char *message, size_t msglen)
{
	const cJSON *it;
	cJSON *root;

	*code = 0;
	if (reasonlen)
		reason[0] = '\0';
	if (msglen)
		message[0] = '\0';
	root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
	if (!cJSON_IsObject(root)) {
		copy_text(message, msglen, body ? body : "", body ? len : 0);
		goto cleanup;
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "code");
	if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1000)
		*code = (int)it->valuedouble;
	it = cJSON_GetObjectItemCaseSensitive(root, "reason");
	if (cJSON_IsString(it))
		copy_text(reason, reasonlen, it->valuestring, strlen(it->valuestring));
	it = cJSON_GetObjectItemCaseSensitive(root, "message");
	if (cJSON_IsString(it))
		copy_text(message, msglen, it->valuestring, strlen(it->valuestring));
cleanup:
	cJSON_Delete(root);
}
