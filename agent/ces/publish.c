// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ces/publish.h"
#include "log.h"

#define RETRY_BASE_MS 500
#define RETRY_MAX_MS  30000
#define MERGE_PATCH   "application/merge-patch+json"

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

void ces_slice_name(char *out, size_t len, const char *prefix, const char *ns, unsigned int index)
{
	char tail[24];

	snprintf(tail, sizeof(tail), "%08x-%u", fnv1a(ns), index);
	/* The prefix leaves room for the tail (ces_pub_init). */
	if (snprintf(out, len, "%s%s", prefix, tail) >= (int)len)
		out[0] = '\0';
}

void ces_node_prefix(const char *node, char *out, size_t len)
{
	/* Room for "-xxxxxxxx-nnnnn" in a 253-byte name: a long node name is
	 * cut and its hash added, so two such nodes still differ. */
	if (strlen(node) <= 200)
		snprintf(out, len, "axon-%s-", node);
	else
		snprintf(out, len, "axon-%.190s-%08x-", node, fnv1a(node));
}

int ces_pub_init(struct ces_pub *p, struct k8s_client *c, ident_call_start_fn start,
		 ident_call_cancel_fn cancel, const struct store *s, const char *node)
{
	int ret;

	memset(p, 0, sizeof(*p));
	p->c = c;
	p->call_start = start;
	p->call_cancel = cancel;
	p->store = s;
	p->flush_delay_ms = CES_FLUSH_DELAY_MS;
	snprintf(p->node, sizeof(p->node), "%s", node);
	ces_node_prefix(node, p->prefix, sizeof(p->prefix));
	if ((ret = ht_init(&p->eps)) || (ret = ht_init(&p->slices)) || (ret = ht_init(&p->hints))) {
		ces_pub_destroy(p);
		return ret;
	}
	return 0;
}

static void ep_free(struct ces_ep *ep)
{
	free(ep->ports);
	free(ep);
}

static void slice_free(struct ces_slice *sl)
{
	if (sl->call)
		sl->pub->call_cancel(sl->pub->c, sl->call);
	free(sl);
}

void ces_pub_destroy(struct ces_pub *p)
{
	if (p->eps.buckets)
		for (struct ht_entry *e = ht_first(&p->eps); e; e = ht_next(&p->eps, e))
			ep_free(e->value);
	if (p->slices.buckets)
		for (struct ht_entry *e = ht_first(&p->slices); e; e = ht_next(&p->slices, e))
			slice_free(e->value);
	if (p->hints.buckets)
		for (struct ht_entry *e = ht_first(&p->hints); e; e = ht_next(&p->hints, e))
			free(e->value);
	ht_destroy(&p->eps);
	ht_destroy(&p->slices);
	ht_destroy(&p->hints);
}

static void mark_dirty(struct ces_slice *sl, uint64_t now_ms)
{
	if (sl->dirty)
		return;
	sl->dirty = true;
	sl->dirty_since = now_ms;
}

static struct ces_slice *slice_new(struct ces_pub *p, const char *name, const char *ns,
				   unsigned int index)
{
	struct ces_slice *sl = calloc(1, sizeof(*sl));

	if (!sl)
		return NULL;
	snprintf(sl->name, sizeof(sl->name), "%s", name);
	snprintf(sl->ns, sizeof(sl->ns), "%s", ns);
	sl->index = index;
	sl->pub = p;
	if (ht_puts(&p->slices, sl->name, strlen(sl->name), sl)) {
		free(sl);
		return NULL;
	}
	return sl;
}

bool ces_slice_owned(const char *prefix, const char *name)
{
	size_t plen = strlen(prefix), digits;
	const char *t = name + plen;

	/* prefix, 8 hex digits, '-', a decimal index: "axon-a-" must not take
	 * node "a-b"'s "axon-a-b-1f2e3d4c-0". */
	if (strncmp(name, prefix, plen) || strspn(t, "0123456789abcdef") != 8 || t[8] != '-')
		return false;
	digits = strspn(t + 9, "0123456789");
	return digits && digits <= 10 && !t[9 + digits];
}

void ces_pub_forget_hints(struct ces_pub *p)
{
	for (struct ht_entry *e = ht_first(&p->hints); e; e = ht_del_iter(&p->hints, e))
		free(e->value);
}

void ces_pub_adopt(struct ces_pub *p, uint64_t now_ms)
{
	if (p->adopted)
		return;
	p->adopted = true;
	for (struct ht_entry *e = ht_first(&p->store->ces); e; e = ht_next(&p->store->ces, e)) {
		const struct store_ces *sc = e->value;
		const struct k8s_cilium_endpointslice *ces = &sc->ces;
		struct ces_slice *sl;

		if (!ces_slice_owned(p->prefix, sc->name) ||
		    ht_get(&p->slices, sc->name, strlen(sc->name)))
			continue;
		sl = slice_new(p, sc->name, ces->namespace, 0);
		if (!sl)
			continue;
		/* Compared (and emptied, or deleted) once the endpoints are in. */
		mark_dirty(sl, now_ms);
		for (size_t i = 0; i < ces->n_endpoints; i++) {
			char key[STORE_KEY_MAX];
			char *name;

			if (store_key(key, sizeof(key), ces->namespace, ces->endpoints[i].name))
				continue;
			name = strdup(sc->name);
			if (name && ht_puts(&p->hints, key, strlen(key), name))
				free(name);
		}
	}
}

/* The slice an endpoint of ns goes to: its adopted one, else the fullest with
 * room, else a new one under the lowest free index. */
static struct ces_slice *place(struct ces_pub *p, const char *key, const char *ns)
{
	struct ces_slice *best = NULL;
	char *hint = ht_del(&p->hints, key, strlen(key));
	char name[K8S_NAME_MAX];

	if (hint) {
		best = ht_get(&p->slices, hint, strlen(hint));
		free(hint);
		if (best && !strcmp(best->ns, ns) && best->n < CES_SLICE_MAX)
			return best;
		best = NULL;
	}
	for (struct ht_entry *e = ht_first(&p->slices); e; e = ht_next(&p->slices, e)) {
		struct ces_slice *sl = e->value;

		if (strcmp(sl->ns, ns) || sl->n >= CES_SLICE_MAX)
			continue;
		if (!best || sl->n > best->n ||
		    (sl->n == best->n && strcmp(sl->name, best->name) < 0))
			best = sl;
	}
	if (best)
		return best;
	for (unsigned int i = 0;; i++) {
		ces_slice_name(name, sizeof(name), p->prefix, ns, i);
		if (!ht_get(&p->slices, name, strlen(name)))
			return slice_new(p, name, ns, i);
	}
}

static bool ep_same(const struct ces_ep *ep, __be32 ipv4, __u32 identity,
		    const struct k8s_named_port *ports, size_t n_ports)
{
	return ep->ipv4 == ipv4 && ep->identity == identity && ep->n_ports == n_ports &&
	       (!n_ports || !memcmp(ep->ports, ports, n_ports * sizeof(*ports)));
}

int ces_pub_set(struct ces_pub *p, const char *ns, const char *name, __be32 ipv4, __u32 identity,
		const struct k8s_named_port *ports, size_t n_ports, uint64_t now_ms)
{
	char key[STORE_KEY_MAX];
	struct k8s_named_port *copy = NULL;
	struct ces_ep *ep;
	int ret;

	ret = store_key(key, sizeof(key), ns, name);
	if (ret)
		return ret;
	ep = ht_get(&p->eps, key, strlen(key));
	if (ep && ep_same(ep, ipv4, identity, ports, n_ports))
		return 0;
	if (n_ports) {
		copy = calloc(n_ports, sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, ports, n_ports * sizeof(*copy));
	}
	if (!ep) {
		ep = calloc(1, sizeof(*ep));
		if (!ep)
			goto nomem;
		snprintf(ep->ns, sizeof(ep->ns), "%s", ns);
		snprintf(ep->name, sizeof(ep->name), "%s", name);
		ep->slice = place(p, key, ns);
		if (!ep->slice || ht_puts(&p->eps, key, strlen(key), ep)) {
			free(ep);
			goto nomem;
		}
		ep->slice->n++;
	}
	free(ep->ports);
	ep->ports = copy;
	ep->n_ports = n_ports;
	ep->ipv4 = ipv4;
	ep->identity = identity;
	mark_dirty(ep->slice, now_ms);
	return 0;
nomem:
	free(copy);
	return -ENOMEM;
}

void ces_pub_remove(struct ces_pub *p, const char *ns, const char *name, uint64_t now_ms)
{
	char key[STORE_KEY_MAX];
	struct ces_ep *ep;

	if (store_key(key, sizeof(key), ns, name))
		return;
	free(ht_del(&p->hints, key, strlen(key)));
	ep = ht_del(&p->eps, key, strlen(key));
	if (!ep)
		return;
	ep->slice->n--;
	mark_dirty(ep->slice, now_ms);
	ep_free(ep);
}

static int ep_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct ces_ep *const *)a)->name,
		      (*(const struct ces_ep *const *)b)->name);
}

/* The slice's endpoints sorted by name (malloc'ed array of sl->n). */
static const struct ces_ep **members(const struct ces_pub *p, const struct ces_slice *sl)
{
	const struct ces_ep **m = calloc(sl->n ? sl->n : 1, sizeof(*m));
	size_t n = 0;

	if (!m)
		return NULL;
	for (struct ht_entry *e = ht_first(&p->eps); e && n < sl->n; e = ht_next(&p->eps, e)) {
		const struct ces_ep *ep = e->value;

		if (ep->slice == sl)
			m[n++] = ep;
	}
	qsort(m, n, sizeof(*m), ep_cmp);
	return m;
}

cJSON *ces_slice_json(const struct ces_pub *p, const struct ces_slice *sl)
{
	const struct ces_ep **m = members(p, sl);
	cJSON *o = cJSON_CreateObject(), *md, *eps;
	char node[INET_ADDRSTRLEN], ip[INET_ADDRSTRLEN];

	if (!o || !m)
		goto fail;
	inet_ntop(AF_INET, &p->store->self_ip, node, sizeof(node));
	cJSON_AddStringToObject(o, "apiVersion", "cilium.io/v2alpha1");
	cJSON_AddStringToObject(o, "kind", "CiliumEndpointSlice");
	md = cJSON_AddObjectToObject(o, "metadata");
	if (!md || !cJSON_AddStringToObject(md, "name", sl->name) ||
	    !cJSON_AddStringToObject(o, "namespace", sl->ns))
		goto fail;
	eps = cJSON_AddArrayToObject(o, "endpoints");
	if (!eps)
		goto fail;
	for (size_t i = 0; i < sl->n; i++) {
		const struct ces_ep *ep = m[i];
		cJSON *j = cJSON_CreateObject(), *net, *addrs, *a, *np;

		if (!j)
			goto fail;
		cJSON_AddItemToArray(eps, j);
		inet_ntop(AF_INET, &ep->ipv4, ip, sizeof(ip));
		cJSON_AddStringToObject(j, "name", ep->name);
		cJSON_AddNumberToObject(j, "id", ep->identity);
		net = cJSON_AddObjectToObject(j, "networking");
		addrs = net ? cJSON_AddArrayToObject(net, "addressing") : NULL;
		a = cJSON_CreateObject();
		if (!addrs || !a)
			goto fail_a;
		cJSON_AddItemToArray(addrs, a);
		cJSON_AddStringToObject(a, "ipv4", ip);
		cJSON_AddStringToObject(net, "node", node);
		if (!ep->n_ports)
			continue;
		np = cJSON_AddArrayToObject(j, "named-ports");
		for (size_t k = 0; np && k < ep->n_ports; k++) {
			cJSON *port = cJSON_CreateObject();

			if (!port)
				goto fail;
			cJSON_AddItemToArray(np, port);
			cJSON_AddStringToObject(port, "name", ep->ports[k].name);
			cJSON_AddNumberToObject(port, "port", ep->ports[k].port);
			cJSON_AddStringToObject(port, "protocol",
						k8s_proto_name(ep->ports[k].proto));
		}
		continue;
	fail_a:
		cJSON_Delete(a);
		goto fail;
	}
	free(m);
	return o;
fail:
	free(m);
	cJSON_Delete(o);
	return NULL;
}

bool ces_slice_equal(const struct ces_pub *p, const struct ces_slice *sl,
		     const struct k8s_cilium_endpointslice *have)
{
	const struct ces_ep **m;
	bool eq;

	if (strcmp(have->namespace, sl->ns) || have->n_endpoints != sl->n)
		return false;
	m = members(p, sl);
	if (!m)
		return false;
	eq = true;
	for (size_t i = 0; eq && i < sl->n; i++) {
		const struct k8s_cilium_endpoint *h = &have->endpoints[i];
		const struct ces_ep *ep = m[i];

		eq = !strcmp(h->name, ep->name) && h->identity == ep->identity &&
		     h->ipv4 == ep->ipv4 && h->node_ip == p->store->self_ip &&
		     h->n_named_ports == ep->n_ports;
		for (size_t k = 0; eq && k < ep->n_ports; k++)
			eq = !strcmp(h->named_ports[k].name, ep->ports[k].name) &&
			     h->named_ports[k].port == ep->ports[k].port &&
			     h->named_ports[k].proto == ep->ports[k].proto;
	}
	free(m);
	return eq;
}

static void write_failed(struct ces_slice *sl, const char *why)
{
	struct ces_pub *p = sl->pub;
	uint64_t delay = (uint64_t)RETRY_BASE_MS << (sl->failures < 6 ? sl->failures : 6);

	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	sl->failures++;
	p->errors++;
	sl->retry_ms = ident_now_ms() + delay;
	snprintf(p->last_error, sizeof(p->last_error), "%s: %s", sl->name, why);
	pr_warn("cannot write CiliumEndpointSlice", "name=%s error=\"%s\" retry_ms=%llu", sl->name,
		why, (unsigned long long)delay);
	mark_dirty(sl, 0);
}

static void written(void *ctx, const struct k8s_call_result *res)
{
	struct ces_slice *sl = ctx;
	struct ces_pub *p = sl->pub;
	int op = sl->op;
	bool ok = res->status >= 200 && res->status < 300;

	sl->call = NULL;
	sl->op = CES_OP_NONE;
	if (op == CES_OP_CREATE && res->status == 409) {
		/* There already (adopted late, or our own earlier write). */
		sl->created = true;
		mark_dirty(sl, 0);
		return;
	}
	if (op == CES_OP_UPDATE && res->status == 404) {
		/* Gone although the watch has not said so yet: create it. */
		sl->created = false;
		sl->gone = true;
		mark_dirty(sl, 0);
		return;
	}
	if (op == CES_OP_DELETE && res->status == 404)
		ok = true;
	if (!ok) {
		write_failed(sl, res->error);
		return;
	}
	sl->failures = 0;
	sl->retry_ms = 0;
	if (op == CES_OP_CREATE) {
		p->creates++;
		sl->created = true;
		sl->gone = false;
	} else if (op == CES_OP_UPDATE) {
		p->updates++;
	} else {
		p->deletes++;
		sl->created = false;
		/* Kept (empty) until the watch has seen it go: until then the
		 * store's stale copy must not pass for the apiserver's. */
		sl->gone = true;
	}
}

/* Start sl's write; false when nothing was left to write. */
static bool flush(struct ces_pub *p, struct ces_slice *sl, uint64_t now_ms)
{
	const struct store_ces *have = ht_get(&p->store->ces, sl->name, strlen(sl->name));
	bool exists = sl->created || (have && !sl->gone);
	char path[sizeof(CES_PATH) + K8S_NAME_MAX];
	char *body = NULL;
	cJSON *o;

	(void)now_ms;
	sl->dirty = false;
	snprintf(path, sizeof(path), CES_PATH "/%s", sl->name);
	if (!sl->n) {
		if (!exists)
			return false;
		sl->op = CES_OP_DELETE;
		sl->call = p->call_start(p->c, "DELETE", path, NULL, NULL, 0, written, sl);
		goto started;
	}
	if (have && !sl->gone && ces_slice_equal(p, sl, &have->ces)) {
		p->skipped++;
		sl->created = true;
		return true;
	}
	o = ces_slice_json(p, sl);
	if (!o) {
		write_failed(sl, "out of memory");
		return true;
	}
	if (exists) {
		cJSON *patch = cJSON_CreateObject();

		/* A merge patch replaces the arrays whole: the content as a whole. */
		if (patch) {
			cJSON_AddItemReferenceToObject(patch, "namespace",
						       cJSON_GetObjectItem(o, "namespace"));
			cJSON_AddItemReferenceToObject(patch, "endpoints",
						       cJSON_GetObjectItem(o, "endpoints"));
			body = cJSON_PrintUnformatted(patch);
			cJSON_Delete(patch);
		}
		sl->op = CES_OP_UPDATE;
		if (body)
			sl->call = p->call_start(p->c, "PATCH", path, MERGE_PATCH, body,
						 strlen(body), written, sl);
	} else {
		body = cJSON_PrintUnformatted(o);
		sl->op = CES_OP_CREATE;
		if (body)
			sl->call = p->call_start(p->c, "POST", CES_PATH, "application/json", body,
						 strlen(body), written, sl);
	}
	cJSON_Delete(o);
	free(body);
started:
	if (!sl->call) {
		sl->op = CES_OP_NONE;
		write_failed(sl, "out of memory");
	}
	return true;
}

void ces_pub_run(struct ces_pub *p, uint64_t now_ms, uint64_t *next_ms)
{
	if (!p->store->self_ip)
		return; /* networking.node is not known yet */
	if (p->store->self_ip != p->node_ip) {
		/* Every endpoint's networking.node changes with it. */
		for (struct ht_entry *e = ht_first(&p->slices); e; e = ht_next(&p->slices, e))
			mark_dirty(e->value, now_ms);
		p->node_ip = p->store->self_ip;
	}
	for (struct ht_entry *e = ht_first(&p->slices); e;) {
		struct ces_slice *sl = e->value;
		uint64_t due = sl->dirty_since + p->flush_delay_ms;

		if (!sl->n && !sl->dirty && !sl->call &&
		    !ht_get(&p->store->ces, sl->name, strlen(sl->name))) {
			/* Empty, written, and gone from the apiserver's view too. */
			e = ht_del_iter(&p->slices, e);
			free(sl);
			continue;
		}
		if (sl->retry_ms > due)
			due = sl->retry_ms;
		if (!sl->dirty || sl->call) {
			e = ht_next(&p->slices, e);
			continue;
		}
		if (due > now_ms) {
			if (due < *next_ms)
				*next_ms = due;
			e = ht_next(&p->slices, e);
			continue;
		}
		flush(p, sl, now_ms);
		e = ht_next(&p->slices, e);
	}
}
