// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An informer: LIST then WATCH one resource, keeping a table of what it
 * holds (namespace/name -> resourceVersion) so that a relist can tell the
 * caller what vanished and skip what did not change.
 *
 * The state machine, driven by k8s_client_run_once():
 *   LISTING  --last page, or the initial-events-end bookmark-->  WATCHING
 *   WATCHING --stream ends-->  WATCHING (resume at rv)
 *   WATCHING --410 / ERROR 410-->  LISTING
 *   any      --failure-->  BACKOFF  --timer-->  LISTING or WATCHING
 *
 * LISTING is a watch-list (one WATCH with sendInitialEvents=true whose
 * initial ADDED events are the list; after the annotated bookmark the same
 * stream is the watch) unless one failed in this cycle (refused with 400 or
 * 422: WatchList gate off, or older than 1.27; or cut short), then pages of
 * `limit` objects joined by `continue` tokens. The next relist tries watch-list
 * again, so an upgraded apiserver is used as soon as it can serve it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "k8s/internal.h"
#include "k8s/json.h"
#include "k8s/objects.h"

/* "namespace/name": the longest namespace, '/', the longest name. */
#define KEY_MAX (K8S_NS_MAX + K8S_NAME_MAX)

static const char *const state_names[] = {
    [K8S_INF_LISTING] = "listing",
    [K8S_INF_WATCHING] = "watching",
    [K8S_INF_BACKOFF] = "backoff",
};

static void set_due_now(struct k8s_informer *inf, bool list)
{
	inf->want_list = list;
	inf->state = list ? K8S_INF_LISTING : K8S_INF_WATCHING;
	inf->due_ms = k8s_now_ms();
}

static void start_relist(struct k8s_informer *inf)
{
	free(inf->continue_token);
	inf->continue_token = NULL;
	set_due_now(inf, true);
}

/* Come back after a jittered exponential delay, or at once (now). */
static void backoff(struct k8s_informer *inf, bool list, bool now, unsigned int retry_after)
{
	struct k8s_client *c = inf->c;
	uint64_t delay = 0;

	if (!now) {
		inf->attempts++;
		delay = k8s_backoff_ms(inf->attempts, c->cfg.backoff_base_ms, c->cfg.backoff_max_ms,
				       k8s_client_rand(c), retry_after);
	}
	if (list) {
		free(inf->continue_token);
		inf->continue_token = NULL;
	}
	inf->want_list = list;
	inf->state = K8S_INF_BACKOFF;
	inf->due_ms = k8s_now_ms() + delay;
	pr_warn("k8s request failed", "informer=%s request=%s error=\"%s\" retry_in_ms=%llu",
		inf->name, list ? "list" : "watch", inf->last_error, (unsigned long long)delay);
}

/* A failed request: count it, keep the reason, back off. now: another
 * server is untried, go there without waiting. */
static void fail(struct k8s_informer *inf, bool list, bool now, unsigned int retry_after,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void fail(struct k8s_informer *inf, bool list, bool now, unsigned int retry_after,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(inf->last_error, sizeof(inf->last_error), fmt, ap);
	va_end(ap);
	inf->errors++;
	backoff(inf, list, now, retry_after);
}

/*
 * The watch's resourceVersion is too old (410): list again. One that expires
 * before a single event since the LIST means the server forgets faster than
 * we list: back off instead of relisting in a tight loop.
 */
static void expired(struct k8s_informer *inf)
{
	pr_info("k8s watch expired", "informer=%s rv=%s", inf->name, inf->rv);
	if (inf->watch_events) {
		start_relist(inf);
		return;
	}
	fail(inf, true, false, 0, "watch expired (410) right after a LIST");
}

static int object_key(const cJSON *obj, struct k8s_meta *m, char *key, size_t *klen,
		      struct k8s_informer *inf)
{
	char err[256];
	int n;

	if (k8s_meta_from_json(obj, m, err, sizeof(err))) {
		inf->errors++;
		pr_warn("k8s object skipped", "informer=%s error=\"%s\"", inf->name, err);
		return -EINVAL;
	}
	n = snprintf(key, KEY_MAX, "%s/%s", m->namespace, m->name);
	*klen = (size_t)n;
	return 0;
}

static void notify_delete(struct k8s_informer *inf, const char *ns, const char *name)
{
	int ret;

	if (!inf->ops.on_delete)
		return;
	ret = inf->ops.on_delete(inf->ctx, ns, name);
	if (ret < 0)
		pr_warn("k8s object delete failed", "informer=%s object=%s/%s error=\"%s\"",
			inf->name, ns, name, strerror(-ret));
}

/* An object was listed or added/modified: hold it, tell the caller if new. */
static void deliver_upsert(struct k8s_informer *inf, const cJSON *obj)
{
	char key[KEY_MAX];
	struct k8s_held *h;
	struct k8s_meta m;
	size_t klen;
	int ret;

	if (object_key(obj, &m, key, &klen, inf))
		return;
	h = ht_get(&inf->held, key, klen);
	/* Same resourceVersion, same object: relists cost nothing downstream. */
	if (h && m.resource_version[0] && !strcmp(h->rv, m.resource_version)) {
		h->gen = inf->list_gen;
		return;
	}
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h || ht_put(&inf->held, key, klen, h, NULL)) {
			free(h);
			inf->errors++;
			pr_err("k8s object dropped",
			       "informer=%s object=%s error=\"out of memory\"", inf->name, key);
			return;
		}
	}
	snprintf(h->rv, sizeof(h->rv), "%s", m.resource_version);
	h->gen = inf->list_gen;
	if (!inf->ops.on_upsert)
		return;
	ret = inf->ops.on_upsert(inf->ctx, obj);
	if (ret < 0)
		pr_warn("k8s object rejected", "informer=%s object=%s error=\"%s\"", inf->name, key,
			strerror(-ret));
}

static void deliver_delete(struct k8s_informer *inf, const cJSON *obj)
{
	char key[KEY_MAX];
	struct k8s_held *h;
	struct k8s_meta m;
	size_t klen;

	if (object_key(obj, &m, key, &klen, inf))
		return;
	h = ht_del(&inf->held, key, klen);
	/* Never held (never listed, or added and deleted while we were away):
	 * the caller has nothing to forget. */
	if (!h)
		return;
	free(h);
	notify_delete(inf, m.namespace, m.name);
}

/* After the last page: whatever this LIST did not see is gone. */
static void sweep(struct k8s_informer *inf)
{
	struct ht_entry *e = ht_first(&inf->held);

	while (e) {
		struct k8s_held *h = e->value;
		char key[KEY_MAX];
		char *slash;

		if (h->gen == inf->list_gen) {
			e = ht_next(&inf->held, e);
			continue;
		}
		memcpy(key, e->key, e->klen);
		key[e->klen] = '\0';
		free(h);
		e = ht_del_iter(&inf->held, e);
		slash = strchr(key, '/');
		*slash = '\0';
		notify_delete(inf, key, slash + 1);
	}
}

/* The whole collection has been delivered, as of rv: drop what it lacked
 * and watch from rv. */
static void list_complete(struct k8s_informer *inf, const char *rv, bool streamed)
{
	sweep(inf);
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	inf->last_error[0] = '\0';
	inf->lists++;
	inf->watch_events = 0;
	inf->continue_expired = 0;
	inf->wl_refused = false;
	inf->list_streamed = streamed;
	inf->synced = true;
	pr_info("k8s list synced", "informer=%s objects=%zu rv=%s mode=%s", inf->name,
		inf->held.count, inf->rv, streamed ? "watch-list" : "paginated");
	set_due_now(inf, false);
	if (inf->ops.on_synced)
		inf->ops.on_synced(inf->ctx);
}

static int list_page(struct k8s_informer *inf, struct k8s_req *r, char *err, size_t errlen)
{
	const char *rv = NULL, *cont = NULL;
	const cJSON *md, *items, *it;
	cJSON *root;
	size_t n;
	int ret = -EINVAL;

	root = cJSON_ParseWithLength(r->body ? r->body : "", r->len);
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "LIST response is not a JSON object");
		goto cleanup;
	}
	if (k8s_json_object(root, NULL, "metadata", true, &md, err, errlen) ||
	    k8s_json_string_ref(md, "metadata", "resourceVersion", true, &rv, err, errlen) ||
	    k8s_json_string_ref(md, "metadata", "continue", false, &cont, err, errlen) ||
	    k8s_json_array(root, NULL, "items", false, (size_t)-1, &items, &n, err, errlen))
		goto cleanup;
	if (strlen(rv) >= sizeof(inf->rv)) {
		snprintf(err, errlen, "metadata.resourceVersion: longer than %zu bytes",
			 sizeof(inf->rv) - 1);
		goto cleanup;
	}
	cJSON_ArrayForEach(it, items) deliver_upsert(inf, it);
	inf->last_error[0] = '\0';
	inf->last_event = time(NULL);
	if (cont && *cont) {
		char *tok = strdup(cont);

		if (!tok) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
		free(inf->continue_token);
		inf->continue_token = tok;
		set_due_now(inf, true);
		ret = 0;
		goto cleanup;
	}
	free(inf->continue_token);
	inf->continue_token = NULL;
	list_complete(inf, rv, false);
	ret = 0;
cleanup:
	cJSON_Delete(root);
	return ret;
}

static void list_done(struct k8s_informer *inf, struct k8s_req *r, CURLcode res, bool failover)
{
	char err[256];

	if (res == CURLE_OK && r->status == 200) {
		if (list_page(inf, r, err, sizeof(err)))
			fail(inf, true, false, 0, "%s", err);
		return;
	}
	/* The snapshot a continue token pins is compacted away: start over,
	 * at once the first time; a LIST that keeps expiring backs off. */
	if (r->status == 410 && inf->continue_token) {
		pr_info("k8s list continue expired", "informer=%s", inf->name);
		if (!inf->continue_expired++) {
			start_relist(inf);
			return;
		}
	}
	if (r->abort == K8S_ABORT_NOMEM) {
		fail(inf, true, false, 0, "out of memory reading the LIST");
		return;
	}
	if (r->abort == K8S_ABORT_OVERSIZE) {
		fail(inf, true, false, 0, "LIST page larger than %u bytes", K8S_BODY_MAX);
		return;
	}
	k8s_req_describe_error(r, res, err, sizeof(err));
	fail(inf, true, failover, k8s_req_retry_after(r), "%s", err);
}

/*
 * An event of a watch-list's initial state: the objects are the list (in no
 * particular order, so their resourceVersions say nothing about where to
 * resume); the annotated bookmark ends it with the list's resourceVersion.
 */
static int on_initial_event(struct k8s_informer *inf, const struct k8s_event *ev)
{
	switch (ev->type) {
	case K8S_EV_ADDED:
	case K8S_EV_MODIFIED:
		deliver_upsert(inf, ev->object);
		return 0;
	case K8S_EV_DELETED:
		deliver_delete(inf, ev->object);
		return 0;
	case K8S_EV_BOOKMARK:
		if (ev->initial_events_end) {
			inf->wl_initial = false;
			list_complete(inf, ev->resource_version, true);
		}
		return 0;
	case K8S_EV_ERROR:
		break;
	}
	inf->errors++;
	snprintf(inf->last_error, sizeof(inf->last_error), "watch-list ERROR event %d: %.200s",
		 ev->code, ev->message);
	inf->req->abort = K8S_ABORT_ERROR;
	return -ECANCELED;
}

/*
 * 504 "Too large resource version": the server has not reached our
 * resourceVersion and never will if it was restored from an older etcd
 * backup. Resuming again waits forever; client-go relists, and so do we (a
 * list has no resourceVersion, so it is the server's current state, and the
 * sweep removes what the backup lacks).
 */
static bool rv_too_large(const struct k8s_event *ev)
{
	return ev->code == 504 && strstr(ev->message, "Too large resource version");
}

static int on_event_line(void *ctx, const char *line, size_t len)
{
	struct k8s_informer *inf = ctx;
	struct k8s_req *r = inf->req;
	struct k8s_event ev;
	char err[256];
	int ret = 0;

	if (k8s_event_decode(line, len, &ev, err, sizeof(err))) {
		inf->errors++;
		snprintf(inf->last_error, sizeof(inf->last_error), "malformed watch event: %.200s",
			 err);
		pr_warn("k8s watch event malformed", "informer=%s rv=%s error=\"%s\"", inf->name,
			inf->rv, err);
		r->abort = K8S_ABORT_MALFORMED;
		return -EBADMSG;
	}
	inf->events++;
	inf->last_event = time(NULL);
	if (inf->wl_initial) {
		ret = on_initial_event(inf, &ev);
		goto cleanup;
	}
	/* Only a watch that delivers counts as recovered: a LIST that works
	 * followed by a watch that fails at once is still a failing cycle. */
	if (ev.type != K8S_EV_ERROR) {
		inf->watch_events++;
		inf->attempts = 0;
	}
	switch (ev.type) {
	case K8S_EV_ADDED:
	case K8S_EV_MODIFIED:
		deliver_upsert(inf, ev.object);
		break;
	case K8S_EV_DELETED:
		deliver_delete(inf, ev.object);
		break;
	case K8S_EV_BOOKMARK:
		break;
	case K8S_EV_ERROR:
		if (ev.code == 410 || rv_too_large(&ev)) {
			pr_debug("k8s watch ERROR event", "informer=%s code=%d message=\"%s\"",
				 inf->name, ev.code, ev.message);
			if (ev.code != 410)
				pr_warn("k8s watch resourceVersion ahead of the apiserver, relisting",
					"informer=%s rv=%s message=\"%s\"", inf->name, inf->rv,
					ev.message);
			r->abort = K8S_ABORT_RELIST;
		} else {
			inf->errors++;
			snprintf(inf->last_error, sizeof(inf->last_error),
				 "watch ERROR event %d: %.200s", ev.code, ev.message);
			r->abort = K8S_ABORT_ERROR;
		}
		ret = -ECANCELED;
		goto cleanup;
	}
	/* Events carry the object's own resourceVersion; resuming from it
	 * loses nothing and repeats nothing. */
	if (ev.resource_version[0])
		snprintf(inf->rv, sizeof(inf->rv), "%s", ev.resource_version);
cleanup:
	k8s_event_free(&ev);
	return ret;
}

int k8s_informer_watch_data(struct k8s_informer *inf, struct k8s_req *r, const char *data,
			    size_t len)
{
	int ret;

	if (!r->streaming) {
		r->streaming = true;
		inf->last_error[0] = '\0';
	}
	ret = k8s_stream_feed(&inf->stream, data, len, on_event_line, inf);
	if (ret == -EMSGSIZE)
		r->abort = K8S_ABORT_OVERSIZE;
	else if (ret == -ENOMEM)
		r->abort = K8S_ABORT_NOMEM;
	return ret;
}

/*
 * A watch-list that ended before its initial state did. A server that does
 * not serve watch-list says so with 400 or 422 (the WatchList gate off, or
 * resourceVersionMatch refused on a watch before 1.27): list by pages now.
 * Anything else failed the LIST: what arrived is kept (those objects are
 * real) and the sweep waits for a list that completes. A stream that was
 * served but ended before its initial-events-end bookmark is retried by
 * pages, as client-go falls back: a server that ignores sendInitialEvents
 * never sends that bookmark, and must not keep the informer from syncing.
 * An error answer (429, 5xx, no answer) is retried as a watch-list.
 */
static void watch_list_done(struct k8s_informer *inf, struct k8s_req *r, CURLcode res,
			    bool failover)
{
	char err[256];

	inf->wl_initial = false;
	if (r->status == 400 || r->status == 422) {
		k8s_req_describe_error(r, res, err, sizeof(err));
		inf->wl_refused = true;
		pr_info("k8s watch-list refused, listing by pages", "informer=%s error=\"%s\"",
			inf->name, err);
		set_due_now(inf, true);
		return;
	}
	switch (r->abort) {
	case K8S_ABORT_MALFORMED:
		inf->wl_refused = true;		/* a stream we cannot read: try pages */
		/* fallthrough */
	case K8S_ABORT_ERROR:
		/* Already counted and described where it was seen. */
		backoff(inf, true, false, 0);
		return;
	case K8S_ABORT_RELIST:
		fail(inf, true, false, 0, "watch-list expired (410) before its initial state ended");
		return;
	case K8S_ABORT_OVERSIZE:
		inf->wl_refused = true;
		fail(inf, true, false, 0, "watch event larger than %zu bytes", inf->stream.max_event);
		return;
	case K8S_ABORT_NOMEM:
		fail(inf, true, false, 0, "out of memory");
		return;
	case K8S_ABORT_NONE:
		break;
	}
	if (r->streaming || r->status == 200) {
		inf->wl_refused = true;
		fail(inf, true, false, 0,
		     "watch-list ended before its initial-events-end bookmark (%zu objects held)",
		     inf->held.count);
		return;
	}
	k8s_req_describe_error(r, res, err, sizeof(err));
	fail(inf, true, failover, k8s_req_retry_after(r), "%s", err);
}

static void watch_done(struct k8s_informer *inf, struct k8s_req *r, CURLcode res, bool failover)
{
	char err[256];

	if (inf->wl_initial) {
		watch_list_done(inf, r, res, failover);
		return;
	}
	switch (r->abort) {
	case K8S_ABORT_RELIST:
		expired(inf);
		return;
	case K8S_ABORT_ERROR:
	case K8S_ABORT_MALFORMED:
		/* Already counted and described where it was seen. */
		backoff(inf, false, false, 0);
		return;
	case K8S_ABORT_OVERSIZE:
		fail(inf, false, false, 0, "watch event larger than %zu bytes",
		     inf->stream.max_event);
		return;
	case K8S_ABORT_NOMEM:
		fail(inf, false, false, 0, "out of memory");
		return;
	case K8S_ABORT_NONE:
		break;
	}
	/* A 200 is a watch that started, even if it ended (dropped, or the
	 * server going away) before its first event: resume it like any other. */
	if (r->streaming || r->status == 200) {
		if (k8s_stream_pending(&inf->stream)) {
			fail(inf, false, false, 0, "watch stream ended inside an event");
			return;
		}
		/* The server's timeoutSeconds, or a dropped connection: pick
		 * up where we were. A dead server shows on the next attempt. */
		if (res != CURLE_OK)
			pr_info("k8s watch interrupted", "informer=%s rv=%s error=\"%s\"",
				inf->name, inf->rv,
				r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		set_due_now(inf, false);
		return;
	}
	if (r->status == 410) {
		expired(inf);
		return;
	}
	k8s_req_describe_error(r, res, err, sizeof(err));
	fail(inf, false, failover, k8s_req_retry_after(r), "%s", err);
}

void k8s_informer_done(struct k8s_informer *inf, struct k8s_req *r, CURLcode res)
{
	bool failover = k8s_client_note_result(inf->c, r);

	inf->req = NULL;
	if (r->kind == K8S_REQ_LIST)
		list_done(inf, r, res, failover);
	else
		watch_done(inf, r, res, failover);
	k8s_req_free(r);
}

/* Append "&key=escaped(value)" to buf at *off. */
static int add_param(char *buf, size_t size, size_t *off, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	int n;

	if (!esc)
		return -ENOMEM;
	n = snprintf(buf + *off, size - *off, "&%s=%s", key, esc);
	curl_free(esc);
	if (n < 0 || (size_t)n >= size - *off)
		return -E2BIG;
	*off += n;
	return 0;
}

/* The next LIST is a watch-list: not a further page, and not refused yet. */
static bool list_by_watch(const struct k8s_informer *inf)
{
	return inf->want_list && !inf->c->cfg.no_watch_list && !inf->wl_refused &&
	       !inf->continue_token;
}

static int build_query(struct k8s_informer *inf, char *buf, size_t size)
{
	const struct k8s_client_config *cfg = &inf->c->cfg;
	size_t off;
	int n, ret = 0;

	/* No resourceVersion: a consistent read, the state as of the request
	 * (NotOlderThan is what the server requires with sendInitialEvents). */
	if (list_by_watch(inf))
		n = snprintf(buf, size,
			     "%s?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
			     "&allowWatchBookmarks=true&timeoutSeconds=%d",
			     inf->path, cfg->watch_timeout_s);
	else if (inf->want_list)
		n = snprintf(buf, size, "%s?limit=%d", inf->path, cfg->list_limit);
	else
		n = snprintf(buf, size, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d",
			     inf->path, cfg->watch_timeout_s);
	if (n < 0 || (size_t)n >= size)
		return -E2BIG;
	off = n;
	if (inf->want_list && inf->continue_token)
		ret = add_param(buf, size, &off, "continue", inf->continue_token);
	if (!ret && !inf->want_list && inf->rv[0])
		ret = add_param(buf, size, &off, "resourceVersion", inf->rv);
	if (!ret && inf->selector)
		ret = add_param(buf, size, &off, "labelSelector", inf->selector);
	if (!ret && inf->field_selector)
		ret = add_param(buf, size, &off, "fieldSelector", inf->field_selector);
	return ret;
}

void k8s_informer_start_due(struct k8s_informer *inf, uint64_t now)
{
	char query[4096];
	uint64_t wait;
	bool streamed;

	if (inf->req || now < inf->due_ms)
		return;
	wait = k8s_client_pace(inf->c);
	if (wait) {
		inf->due_ms = now + wait;
		return;
	}
	if (build_query(inf, query, sizeof(query))) {
		fail(inf, inf->want_list, false, 0, "request URL too long");
		return;
	}
	inf->state = inf->want_list ? K8S_INF_LISTING : K8S_INF_WATCHING;
	/* A new LIST (not a further page) gets a new stamp for the sweep. */
	if (inf->want_list && !inf->continue_token)
		inf->list_gen++;
	inf->wl_initial = list_by_watch(inf);
	streamed = inf->wl_initial || !inf->want_list;
	if (streamed)
		k8s_stream_reset(&inf->stream);
	inf->req = k8s_req_start(inf->c, inf, streamed ? K8S_REQ_WATCH : K8S_REQ_LIST, query);
	if (!inf->req) {
		inf->wl_initial = false;
		fail(inf, inf->want_list, false, 0, "cannot start request");
	}
}

struct k8s_informer *k8s_informer_add(struct k8s_client *c, const char *name, const char *path,
				      const char *label_selector,
				      const struct k8s_informer_ops *ops, void *ctx)
{
	struct k8s_informer *inf;

	if (!c || !name || !path || path[0] != '/' || !ops)
		return NULL;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return NULL;
	inf->c = c;
	inf->name = strdup(name);
	inf->path = strdup(path);
	inf->selector = label_selector && *label_selector ? strdup(label_selector) : NULL;
	if (!inf->name || !inf->path || (label_selector && *label_selector && !inf->selector) ||
	    ht_init(&inf->held))
		goto fail;
	inf->ops = *ops;
	inf->ctx = ctx;
	k8s_stream_init(&inf->stream, 0);
	set_due_now(inf, true);
	inf->due_ms = 0;
	*c->tail = inf;
	c->tail = &inf->next;
	c->n_informers++;
	pr_debug("k8s informer added", "informer=%s path=%s", name, path);
	return inf;
fail:
	free(inf->name);
	free(inf->path);
	free(inf->selector);
	free(inf);
	return NULL;
}

void k8s_informer_free(struct k8s_informer *inf)
{
	struct ht_entry *e;

	k8s_req_free(inf->req);
	for (e = ht_first(&inf->held); e; e = ht_next(&inf->held, e))
		free(e->value);
	ht_destroy(&inf->held);
	k8s_stream_free(&inf->stream);
	free(inf->continue_token);
	free(inf->name);
	free(inf->path);
	free(inf->selector);
	free(inf->field_selector);
	free(inf);
}

int k8s_informer_set_field_selector(struct k8s_informer *inf, const char *field_selector)
{
	char *s = field_selector && *field_selector ? strdup(field_selector) : NULL;

	if (field_selector && *field_selector && !s)
		return -ENOMEM;
	free(inf->field_selector);
	inf->field_selector = s;
	return 0;
}

void k8s_informer_status(const struct k8s_informer *inf, struct k8s_informer_status *st)
{
	memset(st, 0, sizeof(*st));
	st->name = inf->name;
	st->path = inf->path;
	st->state = inf->state;
	st->synced = inf->synced;
	st->objects = inf->held.count;
	st->events = inf->events;
	st->lists = inf->lists;
	st->list_streamed = inf->list_streamed;
	st->errors = inf->errors;
	st->last_event = inf->last_event;
	snprintf(st->resource_version, sizeof(st->resource_version), "%s", inf->rv);
	snprintf(st->last_error, sizeof(st->last_error), "%s", inf->last_error);
}

const char *k8s_informer_state_name(enum k8s_informer_state state)
{
	return (unsigned)state < 3 ? state_names[state] : "?";
}
