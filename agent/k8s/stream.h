/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The watch stream: newline-delimited JSON events, as the apiserver sends
 * them to ?watch=1, split out of whatever fragments the transport hands us,
 * and decoded one at a time.
 *
 * Contract: k8s_stream_feed() accepts any split of the byte stream (an event
 * may be cut anywhere, many may arrive together) and calls the line callback
 * once per complete line, in order, without the newline. A line longer than
 * max_event bytes is an error (-EMSGSIZE): the caller drops the connection
 * and resumes, the stream must then be reset. Blank lines are skipped.
 */
#ifndef AXON_K8S_STREAM_H
#define AXON_K8S_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* One event's cap: the apiserver's own request limit is 3 MiB per object,
 * with room for the event envelope and escaping. */
#define K8S_STREAM_MAX_EVENT (16u << 20)

/* Return 0 to go on, or a negative errno to stop feeding (returned as is). */
typedef int (*k8s_line_fn)(void *ctx, const char *line, size_t len);

struct k8s_stream {
	char *buf; /* the incomplete last line */
	size_t len;
	size_t cap;
	size_t max_event;
};

void k8s_stream_init(struct k8s_stream *s, size_t max_event);
void k8s_stream_reset(struct k8s_stream *s); /* drop buffered bytes, keep memory */
void k8s_stream_free(struct k8s_stream *s);

int k8s_stream_feed(struct k8s_stream *s, const char *data, size_t len, k8s_line_fn fn, void *ctx);
/* Bytes of an unfinished line left at the end of the stream: the server
 * never ends a stream mid-event, so nonzero means a truncated event. */
size_t k8s_stream_pending(const struct k8s_stream *s);

enum k8s_event_type {
	K8S_EV_ADDED = 0,
	K8S_EV_MODIFIED,
	K8S_EV_DELETED,
	K8S_EV_BOOKMARK,
	K8S_EV_ERROR,
};

struct k8s_event {
	enum k8s_event_type type;
	cJSON *root;	     /* owns the tree; k8s_event_free() */
	const cJSON *object; /* root's "object" */
	/* BOOKMARK, ADDED, MODIFIED, DELETED: metadata.resourceVersion
	 * ("" if the object has none; bookmarks must have one). */
	const char *resource_version;
	/* BOOKMARK: annotated "k8s.io/initial-events-end": "true", the end of
	 * a watch-list's initial state (sendInitialEvents). */
	bool initial_events_end;
	/* ERROR: the Status. */
	int code;	     /* e.g. 410; 0 when missing */
	const char *reason;  /* "Expired", "" when missing */
	const char *message; /* "" when missing */
};

/*
 * Decode one line into ev. Returns 0, or -EINVAL with err naming what is
 * wrong (not JSON, unknown type, object missing, bookmark without
 * resourceVersion). On error nothing is left allocated.
 */
int k8s_event_decode(const char *line, size_t len, struct k8s_event *ev, char *err, size_t errlen);
void k8s_event_free(struct k8s_event *ev);
const char *k8s_event_type_name(enum k8s_event_type type);

/* The Status object of an error response body (a Status, or plain text as
 * for an unknown resource); fills code/reason/message with "" defaults and
 * the plain text, cut to msglen, as message when the body is not a Status. */
void k8s_status_parse(const char *body, size_t len, int *code, char *reason, size_t reasonlen,
		      char *message, size_t msglen);

#endif /* AXON_K8S_STREAM_H */
