/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kubernetes API client: connection configuration, and informers that LIST
 * then WATCH one resource and hand every object to a callback.
 *
 * Everything runs on the caller's thread: k8s_client_run_once() waits (with
 * curl_multi_poll) for apiserver traffic, timers and the caller's own extra
 * file descriptors, moves every transfer forward, and calls the informers'
 * callbacks. No threads, no locks.
 *
 * An informer's life: LIST -> on_upsert for each object, on_delete for each
 * object it held before that the new list no longer has, then on_synced ->
 * WATCH from the list's resourceVersion with
 * bookmarks -> on_upsert/on_delete per event. A watch that ends (timeout,
 * dropped connection) resumes from the last resourceVersion seen; a 410 Gone
 * (status or ERROR event) relists. Failures back off exponentially with
 * jitter and honour Retry-After.
 *
 * The LIST is a watch-list where the server serves one (KEP-3157: a WATCH
 * with sendInitialEvents=true streams the current state as ADDED events, then
 * a bookmark annotated k8s.io/initial-events-end, then carries on as the
 * watch): one request per resource instead of a page per `limit` objects,
 * each object decoded as it arrives. A server that refuses it (400/422, the
 * WatchList gate off or a server older than 1.27) gets the paginated LIST
 * (limit/continue) for that cycle, as client-go falls back.
 *
 * Besides informers, a caller may send requests of its own (k8s_call_start:
 * a GET of one object, a PATCH, ...): same servers, credentials, rate limit
 * and loop; the answer comes back through a callback.
 */
#ifndef AXON_K8S_CLIENT_H
#define AXON_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

struct k8s_client_config {
	char **servers;		/* base URLs, tried in turn: "https://10.0.0.1:6443" */
	size_t n_servers;
	char *ca_file;		/* PEM bundle to verify the server; NULL = system CAs */
	char *ca_data;		/* PEM text (kubeconfig certificate-authority-data, decoded) */
	char *token;		/* bearer token */
	char *token_file;	/* bearer token file, re-read when it changes */
	char *cert_file;	/* client certificate (PEM) */
	char *key_file;		/* client key (PEM) */
	char *cert_data;	/* client certificate PEM text (decoded) */
	char *key_data;		/* client key PEM text (decoded) */
	bool insecure;		/* skip TLS verification: logged loudly */
	double qps;		/* client-side rate limit, default 10 */
	int burst;		/* default 20 */
	int backoff_base_ms;	/* default 1000 */
	int backoff_max_ms;	/* default 120000 */
	int list_limit;		/* LIST page size, default 500 */
	int watch_timeout_s;	/* timeoutSeconds asked of the server, default 300 */
	bool no_watch_list;	/* initial state by paginated LIST only, never watch-list */
};

/* Fill cfg from a kubeconfig file (current-context; server, CA file or data,
 * token or tokenFile, client cert/key files or data). Returns 0 or -errno
 * with a reason in err. */
int k8s_config_from_kubeconfig(const char *path, struct k8s_client_config *cfg, char *err,
			       size_t errlen);
/* Fill cfg from KUBERNETES_SERVICE_HOST/PORT and the service-account files
 * under dir (NULL = /var/run/secrets/kubernetes.io/serviceaccount). */
int k8s_config_in_cluster(const char *dir, struct k8s_client_config *cfg, char *err,
			  size_t errlen);
/* The token file and CA of the pod's service account under dir (NULL =
 * /var/run/secrets/kubernetes.io/serviceaccount), no server: for a server
 * given by flag. Both must be readable. */
int k8s_config_service_account(const char *dir, struct k8s_client_config *cfg, char *err,
			       size_t errlen);
/* An apiserver base URL: http(s)://, and one libcurl can parse, with a host
 * ("https://[::1" or "https://h:99999" are refused here, not at the first
 * request). Returns 0 or -EINVAL with the reason in err. */
int k8s_url_check(const char *url, char *err, size_t errlen);
/* Defaults for every numeric field left 0. */
void k8s_config_defaults(struct k8s_client_config *cfg);
void k8s_config_free(struct k8s_client_config *cfg);

struct k8s_client;
struct k8s_informer;
struct k8s_call;

struct k8s_informer_ops {
	/* An object was listed, added or modified. obj is the object's JSON.
	 * Return 0, or -errno to have the informer log the object by
	 * namespace/name and skip it (it still counts as held). */
	int (*on_upsert)(void *ctx, const cJSON *obj);
	/* An object was deleted, or vanished across a relist. ns is "" for
	 * cluster-scoped objects. */
	int (*on_delete)(void *ctx, const char *ns, const char *name);
	/* The initial LIST (and every relist) has been fully delivered. */
	void (*on_synced)(void *ctx);
};

enum k8s_informer_state {
	K8S_INF_LISTING = 0,
	K8S_INF_WATCHING,
	K8S_INF_BACKOFF,
};

struct k8s_informer_status {
	const char *name;		/* "services" */
	const char *path;		/* "/api/v1/services" */
	enum k8s_informer_state state;
	bool synced;			/* initial list delivered */
	size_t objects;			/* objects held */
	unsigned long events;		/* watch events received */
	unsigned long lists;		/* LISTs completed */
	bool list_streamed;		/* the last one was a watch-list, not paginated */
	unsigned long errors;		/* failed requests */
	time_t last_event;		/* wall clock of the last event or list, 0 = never */
	char resource_version[32];
	char last_error[256];		/* "" when the last request succeeded */
};

struct k8s_client *k8s_client_new(const struct k8s_client_config *cfg, char *err, size_t errlen);
void k8s_client_free(struct k8s_client *c);

/* Add an informer for path (e.g. "/api/v1/services"); label_selector may be
 * NULL. name is for logs and status. Starts on the next run_once. */
struct k8s_informer *k8s_informer_add(struct k8s_client *c, const char *name, const char *path,
				      const char *label_selector,
				      const struct k8s_informer_ops *ops, void *ctx);

/* Select by field as well ("spec.nodeName=n1"), before the informer starts. */
int k8s_informer_set_field_selector(struct k8s_informer *inf, const char *field_selector);

/* Wait up to timeout_ms for apiserver traffic, timers or one of extra's fds,
 * then do all the work that is due. extra[i].revents is filled in as by
 * curl_multi_poll. Returns 0 or -errno on an unrecoverable error. */
int k8s_client_run_once(struct k8s_client *c, struct curl_waitfd *extra, unsigned int n_extra,
			int timeout_ms);
/* Make a blocked run_once return early (safe from a signal handler). */
void k8s_client_wakeup(struct k8s_client *c);

/* How a call ended. status: the HTTP status, or 0 when no server answered
 * (refused, reset, timed out, cut short). body: the response, NUL-terminated
 * ("" when none). error: one line when status is not 2xx ("HTTP 422: ..."). */
struct k8s_call_result {
	long status;
	const char *body;
	size_t len;
	const char *error;
};

typedef void (*k8s_call_fn)(void *ctx, const struct k8s_call_result *res);

/*
 * Send one request: method ("GET", "PATCH", "PUT", "POST", "DELETE"), path
 * (absolute, with its query: "/api/v1/nodes/n1"), and a body when
 * content_type is not NULL ("application/json-patch+json"). It waits its turn
 * under the client's rate limit like every request, and goes to the server
 * in use. A GET that no server answers is sent again at once to the next
 * server while there is one not tried yet; any other method is handed back
 * with status 0 (the client has moved to its next server, so the caller's
 * retry goes there): whether a write may be repeated is the caller's to say.
 * done runs once, inside k8s_client_run_once(), and may start new calls.
 * Returns the call (for k8s_call_cancel) or NULL on -ENOMEM.
 */
struct k8s_call *k8s_call_start(struct k8s_client *c, const char *method, const char *path,
				const char *content_type, const char *body, size_t len,
				k8s_call_fn done, void *ctx);
/* Drop a call that has not completed; done is not called. */
void k8s_call_cancel(struct k8s_client *c, struct k8s_call *call);

void k8s_informer_status(const struct k8s_informer *inf, struct k8s_informer_status *st);
/* "listing", "watching", "backoff". */
const char *k8s_informer_state_name(enum k8s_informer_state state);
size_t k8s_client_informers(const struct k8s_client *c, struct k8s_informer **out, size_t max);
const char *k8s_client_server(const struct k8s_client *c);	/* URL in use */
/*
 * Add url (an http(s):// base URL) as the preferred server, after the
 * configured ones, and move new requests to it at once (transfers in flight
 * finish where they are). When it stops answering the client moves on to the
 * configured servers in turn, as for any server, and comes back to it only
 * when they fail too. Calling again with the same URL changes nothing (so a
 * relist does not undo a failover); a different URL replaces it and is tried
 * at once. Returns 0, or -EINVAL (not an http(s) URL) / -ENOMEM.
 */
int k8s_client_prefer_server(struct k8s_client *c, const char *url);
/* Every server, configured first then the preferred one; n_servers out. */
const char *const *k8s_client_servers(const struct k8s_client *c, size_t *n_servers);
const char *k8s_client_version(const struct k8s_client *c);	/* gitVersion, "" until known */
bool k8s_client_connected(const struct k8s_client *c);

#endif /* AXON_K8S_CLIENT_H */
