// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One HTTP transfer to the apiserver: a curl easy handle on the client's multi. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "k8s/internal.h"

#define CONNECT_TIMEOUT_MS 10000
/* A LIST or /version that takes longer than this is stuck, not slow. */
#define REQUEST_TIMEOUT_S 120
/* How long past the watch's own timeoutSeconds before we call it dead. */
#define WATCH_GRACE_S 60

static int body_append(struct k8s_req *r, const char *data, size_t len)
{
	if (len > r->max - r->len) {
		/* An error body is only read for its message: keep the head. */
		if (r->status != 200) {
			len = r->max - r->len;
		} else {
			r->abort = K8S_ABORT_OVERSIZE;
			return -EMSGSIZE;
		}
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *nb;

		while (cap < r->len + len + 1)
			cap *= 2;
		nb = realloc(r->body, cap);
		if (!nb) {
			r->abort = K8S_ABORT_NOMEM;
			return -ENOMEM;
		}
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct k8s_req *r = userp;
	size_t len = size * nmemb;

	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->kind == K8S_REQ_WATCH && r->status == 200) {
		/* The informer marks the request streaming (and clears its
		 * last error) on the first bytes. Returning short makes curl
		 * end the transfer: r->abort says why. */
		return k8s_informer_watch_data(r->inf, r, data, len) ? 0 : len;
	}
	return body_append(r, data, len) ? 0 : len;
}

/*
 * Headers: the server answered. A watch may then stream for minutes without
 * ending, so this, not the end of the transfer, is when the client learns
 * that the server it moved to is alive (status "connected").
 */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct k8s_req *r = userp;

	(void)data;
	if (!r->status) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		if (r->status)
			k8s_client_note_answer(r->c, r);
	}
	return size * nmemb;
}

static int set_tls(struct k8s_req *r, const struct k8s_client_config *cfg)
{
	CURL *e = r->easy;
	struct curl_blob blob;
	CURLcode rc = CURLE_OK;

	if (cfg->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cfg->ca_file)
		rc = curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
	if (!rc && cfg->ca_data) {
		blob = (struct curl_blob){cfg->ca_data, strlen(cfg->ca_data), CURL_BLOB_COPY};
		rc = curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (!rc && cfg->cert_file)
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
	if (!rc && cfg->cert_data) {
		blob = (struct curl_blob){cfg->cert_data, strlen(cfg->cert_data), CURL_BLOB_COPY};
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
	}
	if (!rc && cfg->key_file)
		rc = curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
	if (!rc && cfg->key_data) {
		blob = (struct curl_blob){cfg->key_data, strlen(cfg->key_data), CURL_BLOB_COPY};
		rc = curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
	}
	if (rc) {
		pr_err("k8s tls setup failed", "error=\"%s\"", curl_easy_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

/* Append one header line, formatted, to *h; -ENOMEM leaves *h as it was. */
static int __attribute__((format(printf, 2, 3)))
add_header(struct curl_slist **h, const char *fmt, ...)
{
	struct curl_slist *n;
	char *line;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -ENOMEM;
	n = curl_slist_append(*h, line);
	free(line);
	if (!n)
		return -ENOMEM;
	*h = n;
	return 0;
}

static int set_headers(struct k8s_req *r, const char *token, const char *content_type)
{
	struct curl_slist *h = NULL;
	int err;

	err = add_header(&h, "Accept: application/json");
	if (!err)
		err = add_header(&h, "User-Agent: axon-agent");
	if (!err && content_type)
		err = add_header(&h, "Content-Type: %s", content_type);
	if (!err && token && *token)
		err = add_header(&h, "Authorization: Bearer %s", token);
	if (err) {
		curl_slist_free_all(h);
		return err;
	}
	r->headers = h;
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, h);
	return 0;
}

static struct k8s_req *req_start(struct k8s_client *c, struct k8s_informer *inf,
				 enum k8s_req_kind kind, const char *path_query,
				 const struct k8s_call *call)
{
	const struct k8s_client_config *cfg = &c->cfg;
	struct k8s_req *r;
	char *url = NULL;
	long timeout;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->c = c;
	r->inf = inf;
	r->kind = kind;
	r->server = c->server;
	r->max = kind == K8S_REQ_WATCH ? K8S_ERRBODY_MAX : K8S_BODY_MAX;
	r->easy = curl_easy_init();
	if (!r->easy)
		goto fail;
	if (asprintf(&url, "%s%s", cfg->servers[r->server], path_query) < 0) {
		url = NULL;
		goto fail;
	}
	timeout = kind == K8S_REQ_WATCH ? cfg->watch_timeout_s + WATCH_GRACE_S : REQUEST_TIMEOUT_S;
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	/* HTTP/2 where TLS lets us negotiate it, so that every LIST and WATCH
	 * of the client shares one connection; PIPEWAIT makes a new transfer
	 * wait for that connection rather than open another. */
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, timeout);
	/* A watch is idle for minutes; keepalives find a dead peer sooner. */
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
	if (call && strcmp(call->method, "GET"))
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, call->method);
	if (call && call->content_type) {
		/* Copied: the call may be cancelled while curl still sends. */
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->len);
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, call->body);
	}
	free(url);
	url = NULL;
	k8s_client_refresh_token(c);
	if (set_tls(r, cfg) || set_headers(r, c->token, call ? call->content_type : NULL))
		goto fail;
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
		goto fail;
	return r;
fail:
	free(url);
	k8s_req_free(r);
	return NULL;
}

struct k8s_req *k8s_req_start(struct k8s_client *c, struct k8s_informer *inf,
			      enum k8s_req_kind kind, const char *path_query)
{
	return req_start(c, inf, kind, path_query, NULL);
}

struct k8s_req *k8s_req_start_call(struct k8s_client *c, struct k8s_call *call)
{
	struct k8s_req *r = req_start(c, NULL, K8S_REQ_CALL, call->path, call);

	if (r)
		r->call = call;
	return r;
}

void k8s_req_free(struct k8s_req *r)
{
	if (!r)
		return;
	if (r->easy) {
		/* Harmless when the handle is not (or no longer) on the multi. */
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}

unsigned int k8s_req_retry_after(const struct k8s_req *r)
{
	curl_off_t secs = 0;

	if (r->status != 429 && r->status != 503)
		return 0;
	if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs < 0)
		return 0;
	return secs > 86400 ? 86400 : (unsigned int)secs;
}

void k8s_req_describe_error(const struct k8s_req *r, CURLcode res, char *out, size_t outlen)
{
	char reason[64], msg[200];
	int code;

	if (!r->status) {
		snprintf(out, outlen, "%s: %s", r->c->cfg.servers[r->server],
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		return;
	}
	/* A LIST of a resource the server does not serve answers a plain-text
	 * 404: typically a CRD (CiliumEndpointSlice) that is not installed. */
	if (r->status == 404 && (r->kind == K8S_REQ_LIST || r->kind == K8S_REQ_WATCH)) {
		snprintf(out, outlen, "resource not installed (404)");
		return;
	}
	k8s_status_parse(r->body, r->len, &code, reason, sizeof(reason), msg, sizeof(msg));
	snprintf(out, outlen, "HTTP %ld: %s", r->status, msg[0] ? msg : reason[0] ? reason : "-");
}
