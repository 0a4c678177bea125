// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpd.h"
#include "kpr_health.h"
#include "lb/desired.h"
#include "log.h"
#include "store/store.h"

#define KPR_HEADERS "X-Content-Type-Options: nosniff\r\n"

/* One service listener. Freed only after its server stopped (httpd_stop
 * joins the thread), so the handler's ctx is always live. */
struct kpr_hc {
	struct kpr_hc *next;
	struct kpr_health *owner;
	struct httpd *http; /* NULL: the port could not be bound */
	__u16 port;
	int count;   /* local ready endpoints; under owner->lock */
	bool wanted; /* scratch for sync */
	char key[STORE_KEY_MAX];
	char ns[64];
	char name[254];
};

int kpr_health_service_body(char *buf, size_t len, const char *ns, const char *name, int count,
			    bool healthy)
{
	return snprintf(
	    buf, len,
	    "{\n\t\"service\": {\n\t\t\"namespace\": \"%s\",\n\t\t\"name\": \"%s\"\n\t},"
	    "\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %s\n}",
	    ns, name, count, healthy ? "true" : "false");
}

/* Go's time.Time.String() in UTC: fractional seconds without trailing zeros. */
static void go_time(char *buf, size_t len, const struct timespec *ts)
{
	char frac[16] = "";
	struct tm tm;
	size_t n;

	gmtime_r(&ts->tv_sec, &tm);
	if (ts->tv_nsec) {
		snprintf(frac, sizeof(frac), ".%09ld", ts->tv_nsec);
		for (n = strlen(frac); frac[n - 1] == '0'; n--)
			frac[n - 1] = '\0';
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d%s +0000 UTC", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int kpr_health_proxy_body(char *buf, size_t len, const struct timespec *last,
			  const struct timespec *now)
{
	char l[64], c[64];

	go_time(l, sizeof(l), last);
	go_time(c, sizeof(c), now);
	return snprintf(buf, len,
			"{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", "
			"\"nodeEligible\": true}",
			l, c);
}

/* On a service listener's thread: any path, as kube-proxy's. */
static void serve_service(void *ctx, const struct httpd_request *req)
{
	struct kpr_hc *hc = ctx;
	char body[512], headers[128];
	bool healthy;
	int count;

	pthread_mutex_lock(&hc->owner->lock);
	count = hc->count;
	healthy = hc->owner->ready;
	pthread_mutex_unlock(&hc->owner->lock);
	kpr_health_service_body(body, sizeof(body), hc->ns, hc->name, count, healthy);
	snprintf(headers, sizeof(headers), KPR_HEADERS "X-Load-Balancing-Endpoint-Weight: %d\r\n",
		 count);
	httpd_respond_headers(req, count && healthy ? 200 : 503, "application/json", headers, body,
			      strlen(body));
}

/* On the proxy healthz thread. */
static void serve_proxy(void *ctx, const struct httpd_request *req)
{
	struct kpr_health *h = ctx;
	struct timespec now, last;
	char body[256];
	bool ready;

	if (strcmp(req->path, "/healthz")) {
		httpd_respond(req, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&h->lock);
	ready = h->ready;
	last = h->last_ready;
	pthread_mutex_unlock(&h->lock);
	/* kube-proxy: when healthy, lastUpdated is now. */
	kpr_health_proxy_body(body, sizeof(body), ready ? &now : &last, &now);
	httpd_respond_headers(req, ready ? 200 : 503, "application/json", KPR_HEADERS, body,
			      strlen(body));
}

int kpr_health_open(struct kpr_health *h, const char *addr)
{
	int err;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	if (!addr || !addr[0])
		return 0;
	err = httpd_start(&h->proxy, addr, "kube-proxy-healthz", serve_proxy, h);
	if (err) {
		pr_err("cannot serve kube-proxy healthz", "addr=%s error=\"%s\"", addr,
		       strerror(-err));
		return err;
	}
	pr_info("serving kube-proxy healthz", "addr=%s path=/healthz", addr);
	return 0;
}

/* The Service's ready endpoints on this node, each address once: what
 * kube-proxy reports as localEndpoints. */
static int local_ready(const struct store *s, const struct store_service *ss)
{
	const struct store_slice_set *set = store_service_slices(s, ss->key);
	__be32 seen[256];
	int n = 0;

	for (size_t i = 0; set && i < set->n; i++) {
		const struct k8s_endpointslice *eps = &set->slices[i]->eps;

		if (eps->address_type != K8S_ADDR_IPV4)
			continue;
		for (size_t j = 0; j < eps->n_endpoints; j++) {
			const struct k8s_eps_endpoint *e = &eps->endpoints[j];

			if (!(e->ready || ss->svc.publish_not_ready) ||
			    strcmp(e->node_name, s->self_name))
				continue;
			for (size_t k = 0; k < e->n_addrs; k++) {
				bool dup = false;

				for (int m = 0; m < n && m < 256; m++)
					dup |= seen[m] == e->addrs[k];
				if (dup)
					continue;
				if (n < 256)
					seen[n] = e->addrs[k];
				n++;
			}
		}
	}
	return n;
}

static bool wants_health_check(const struct k8s_service *svc)
{
	return !lb_service_unserved(svc) && svc->type == K8S_SVC_LOAD_BALANCER &&
	       svc->ext_traffic_local && svc->health_check_node_port;
}

static struct kpr_hc *find(struct kpr_health *h, const char *key, __u16 port)
{
	for (struct kpr_hc *hc = h->services; hc; hc = hc->next)
		if (hc->port == port && !strcmp(hc->key, key))
			return hc;
	return NULL;
}

static struct kpr_hc *open_hc(struct kpr_health *h, const struct store_service *ss)
{
	struct kpr_hc *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return NULL;
	hc->owner = h;
	hc->port = ss->svc.health_check_node_port;
	snprintf(hc->key, sizeof(hc->key), "%s", ss->key);
	snprintf(hc->ns, sizeof(hc->ns), "%s", ss->svc.meta.namespace);
	snprintf(hc->name, sizeof(hc->name), "%s", ss->svc.meta.name);
	hc->next = h->services;
	h->services = hc;
	return hc;
}

/* Listen on the entry's port, all of the node's addresses. A port that cannot
 * be bound (held by another process) is tried again at the next change. */
static void listen_hc(struct kpr_hc *hc)
{
	char addr[16];
	int err;

	snprintf(addr, sizeof(addr), ":%u", hc->port);
	err = httpd_start(&hc->http, addr, "service-health", serve_service, hc);
	if (err)
		pr_warn("cannot serve service health check", "service=%s port=%u error=\"%s\"",
			hc->key, hc->port, strerror(-err));
	else
		pr_info("serving service health check", "service=%s port=%u", hc->key, hc->port);
}

static void close_unwanted(struct kpr_health *h)
{
	struct kpr_hc **pp = &h->services;

	while (*pp) {
		struct kpr_hc *hc = *pp;

		if (hc->wanted) {
			pp = &hc->next;
			continue;
		}
		*pp = hc->next;
		httpd_stop(hc->http);
		pr_info("closed service health check", "service=%s port=%u", hc->key, hc->port);
		free(hc);
	}
}

void kpr_health_sync(struct kpr_health *h, const struct store *s, bool ready)
{
	struct kpr_hc *hc;

	pthread_mutex_lock(&h->lock);
	h->ready = ready;
	if (ready)
		clock_gettime(CLOCK_REALTIME, &h->last_ready);
	pthread_mutex_unlock(&h->lock);
	if (h->synced_once && h->revision == s->revision)
		return;
	h->synced_once = true;
	h->revision = s->revision;
	for (hc = h->services; hc; hc = hc->next)
		hc->wanted = false;
	for (struct ht_entry *e = ht_first(&s->services); e; e = ht_next(&s->services, e)) {
		const struct store_service *ss = e->value;
		int count;

		if (!wants_health_check(&ss->svc))
			continue;
		hc = find(h, ss->key, ss->svc.health_check_node_port);
		if (!hc)
			hc = open_hc(h, ss);
		if (!hc)
			continue;
		if (!hc->http)
			listen_hc(hc);
		count = local_ready(s, ss);
		hc->wanted = true;
		pthread_mutex_lock(&h->lock);
		hc->count = count;
		pthread_mutex_unlock(&h->lock);
	}
	close_unwanted(h);
}

void kpr_health_close(struct kpr_health *h)
{
	for (struct kpr_hc *hc = h->services; hc; hc = hc->next)
		hc->wanted = false;
	close_unwanted(h);
	httpd_stop(h->proxy);
	h->proxy = NULL;
	pthread_mutex_destroy(&h->lock);
}

cJSON *kpr_health_status(struct kpr_health *h)
{
	cJSON *arr = cJSON_CreateArray();

	pthread_mutex_lock(&h->lock);
	for (struct kpr_hc *hc = h->services; hc; hc = hc->next) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "service", hc->key);
		cJSON_AddNumberToObject(o, "port", hc->port);
		cJSON_AddNumberToObject(o, "local_endpoints", hc->count);
		cJSON_AddBoolToObject(o, "listening", hc->http != NULL);
		cJSON_AddItemToArray(arr, o);
	}
	pthread_mutex_unlock(&h->lock);
	return arr;
}
