/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The client's insides, shared by client.c (the CURLM loop, servers, token,
 * /version), request.c (one HTTP transfer) and informer.c (LIST/WATCH state
 * machine). Not for use outside agent/k8s.
 *
 * Ownership: the client owns its informers and the callers' pending calls
 * (call.c); an informer or a call owns at most one request in flight; a
 * request is freed by whoever handles its completion.
 * Callbacks into the informer's ops run inside k8s_client_run_once(), from
 * curl's write callback for watch events: they must not call back into the
 * client except k8s_informer_add(), k8s_informer_status() and the getters.
 */
#ifndef AXON_K8S_INTERNAL_H
#define AXON_K8S_INTERNAL_H

#include <stdint.h>
#include <time.h>
#include <sys/types.h>
#include <curl/curl.h>

#include "htable.h"
#include "k8s/client.h"
#include "k8s/ratelimit.h"
#include "k8s/stream.h"

/* Bodies that are read whole (LIST pages, /version, error Status). */
#define K8S_BODY_MAX	(64u << 20)
#define K8S_ERRBODY_MAX (64u << 10)
#define K8S_VERSION_MAX 64

enum k8s_req_kind {
	K8S_REQ_VERSION = 0,
	K8S_REQ_LIST,
	K8S_REQ_WATCH,
	K8S_REQ_CALL,	/* a caller's own request (k8s_call_start) */
};

/* Why our own callbacks cut a transfer short (it then ends with
 * CURLE_WRITE_ERROR, and this says what to do about it). */
enum k8s_abort {
	K8S_ABORT_NONE = 0,
	K8S_ABORT_RELIST,    /* ERROR event 410: list again */
	K8S_ABORT_ERROR,     /* ERROR event other than 410 */
	K8S_ABORT_MALFORMED, /* undecodable line */
	K8S_ABORT_OVERSIZE,  /* event or body over its cap */
	K8S_ABORT_NOMEM,
};

struct k8s_req {
	struct k8s_client *c;
	struct k8s_informer *inf; /* NULL for /version and calls */
	struct k8s_call *call;	  /* K8S_REQ_CALL only */
	enum k8s_req_kind kind;
	CURL *easy;
	struct curl_slist *headers;
	size_t server;	/* index into the client's servers */
	long status;	/* HTTP status, 0 until headers arrive */
	bool streaming; /* a 200 watch: bytes go to the stream */
	enum k8s_abort abort;
	char *body; /* non-streamed body */
	size_t len, cap, max;
	char errbuf[CURL_ERROR_SIZE];
};

struct k8s_informer {
	struct k8s_client *c;
	struct k8s_informer *next;
	char *name;
	char *path;
	char *selector; /* NULL = none */
	char *field_selector; /* NULL = none */
	struct k8s_informer_ops ops;
	void *ctx;

	enum k8s_informer_state state;
	bool want_list;	       /* next request is a LIST (else a WATCH) */
	uint64_t due_ms;       /* earliest start of the next request */
	struct k8s_req *req;   /* in flight, or NULL */
	unsigned int attempts; /* consecutive failures, for backoff */

	/* Watch-list (a WATCH with sendInitialEvents=true in place of the
	 * paginated LIST): the request in flight is one whose initial state
	 * has not ended yet; the server refused one in this LIST cycle. */
	bool wl_initial;
	bool wl_refused;
	bool list_streamed;    /* the last completed LIST was a watch-list */
	char *continue_token;  /* next LIST page, NULL on the first */
	unsigned int list_gen; /* stamps what each LIST saw */
	struct htable held;    /* "ns/name" -> struct k8s_held */
	struct k8s_stream stream;

	bool synced;
	unsigned long events, lists, errors;
	unsigned long watch_events;    /* events since the last LIST completed */
	unsigned int continue_expired; /* 410s on continue tokens in this LIST */
	time_t last_event;
	char rv[32];
	char last_error[256];
};

/* A caller's request (client.h: k8s_call_start), waiting for its turn under
 * the rate limit or in flight. */
struct k8s_call {
	struct k8s_call *next;
	char *method;
	char *path;
	char *content_type;	/* NULL: no body */
	char *body;
	size_t len;
	k8s_call_fn done;
	void *ctx;
	uint64_t due_ms;	/* earliest start (pacing) */
	unsigned int tries;	/* servers tried without an answer (GET only) */
	struct k8s_req *req;	/* in flight, or NULL */
};

struct k8s_held {
	char rv[32];
	unsigned int gen;
};

struct k8s_client {
	struct k8s_client_config cfg; /* deep copy, defaults applied */
	CURLM *multi;
	struct k8s_informer *informers;
	struct k8s_informer **tail;
	size_t n_informers;
	struct k8s_call *calls;	/* pending and in flight, in order of arrival */
	struct k8s_bucket bucket;
	uint32_t rnd;

	size_t n_configured;   /* servers from the config; one more is the preferred */
	size_t server;	       /* index in use */
	size_t servers_failed; /* consecutive unreachable servers */
	bool connected;

	char *token; /* current bearer token */
	struct timespec token_mtime;
	dev_t token_dev;
	ino_t token_ino;
	off_t token_size;

	char version[K8S_VERSION_MAX];
	struct k8s_req *version_req;
	uint64_t version_due;
	unsigned int version_attempts;
};

uint64_t k8s_now_ms(void);

/* config.c: deep copy of a config (dst is overwritten); -ENOMEM leaves dst empty. */
int k8s_config_copy(struct k8s_client_config *dst, const struct k8s_client_config *src);

/* client.c */
/* Take a rate-limit token: 0, or ms until one is available. */
uint64_t k8s_client_pace(struct k8s_client *c);
uint32_t k8s_client_rand(struct k8s_client *c);
/* Re-read the token file if it changed since last time. */
void k8s_client_refresh_token(struct k8s_client *c);
/*
 * Account for a finished request against the server it used: a transfer that
 * got no HTTP response at all moves the client to the next server. Returns
 * true when the caller should retry at once (a server not yet tried since
 * the last response remains), false to back off.
 */
bool k8s_client_note_result(struct k8s_client *c, const struct k8s_req *r);
/* r got an HTTP status: its server is alive (request.c, from the headers). */
void k8s_client_note_answer(struct k8s_client *c, const struct k8s_req *r);

/* request.c */
/* Build and start a GET of path_query on the client's current server. */
struct k8s_req *k8s_req_start(struct k8s_client *c, struct k8s_informer *inf,
			      enum k8s_req_kind kind, const char *path_query);
/* The same for a call: its method, and its body when it has a content type. */
struct k8s_req *k8s_req_start_call(struct k8s_client *c, struct k8s_call *call);
void k8s_req_free(struct k8s_req *r);
/* The Retry-After of a finished request, in seconds, 0 if none. */
unsigned int k8s_req_retry_after(const struct k8s_req *r);
/* One-line description of a failed request for last_error. */
void k8s_req_describe_error(const struct k8s_req *r, CURLcode res, char *out, size_t outlen);

/* call.c */
void k8s_calls_start_due(struct k8s_client *c, uint64_t now);
/* The earliest due_ms of a call not in flight (UINT64_MAX: none). */
uint64_t k8s_calls_next_due(const struct k8s_client *c);
void k8s_call_done(struct k8s_client *c, struct k8s_req *r, CURLcode res);
void k8s_calls_free(struct k8s_client *c);

/* informer.c */
void k8s_informer_start_due(struct k8s_informer *inf, uint64_t now);
void k8s_informer_done(struct k8s_informer *inf, struct k8s_req *r, CURLcode res);
/* Bytes of a 200 watch response (called from curl's write callback). */
int k8s_informer_watch_data(struct k8s_informer *inf, struct k8s_req *r, const char *data,
			    size_t len);
void k8s_informer_free(struct k8s_informer *inf);

#endif /* AXON_K8S_INTERNAL_H */
