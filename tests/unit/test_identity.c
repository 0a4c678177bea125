// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Identities and published slices: a Pod's decoding, Cilium's label filter
 * and identity labels (agent/identity/labels.c), the allocator's decisions
 * against a fake apiserver (alloc.c: reuse, create, 409 adopt or move on,
 * errors), and the CiliumEndpointSlice publisher (ces/publish.c: packing,
 * naming, coalescing, skipping writes equal to the stored copy, adoption).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ces/orphans.h"
#include "ces/publish.h"
#include "identity/alloc.h"
#include "identity/endpoints.h"
#include "identity/labels.h"
#include "store/store.h"

/* ---- a fake apiserver: calls are queued, the test answers them ---- */

#define FAKE_MAX 64

struct fake_call {
	char method[8];
	char path[512];
	char *body;
	k8s_call_fn done;
	void *ctx;
	bool answered, cancelled;
};

static struct fake_call calls[FAKE_MAX];
static size_t n_calls;

static struct k8s_call *fake_start(struct k8s_client *c, const char *method, const char *path,
				   const char *ctype, const char *body, size_t len,
				   k8s_call_fn done, void *ctx)
{
	struct fake_call *f = &calls[n_calls++];

	(void)c;
	(void)ctype;
	assert_true(n_calls <= FAKE_MAX);
	memset(f, 0, sizeof(*f));
	snprintf(f->method, sizeof(f->method), "%s", method);
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->body = body ? strndup(body, len) : NULL;
	f->done = done;
	f->ctx = ctx;
	return (struct k8s_call *)f;
}

static void fake_cancel(struct k8s_client *c, struct k8s_call *call)
{
	(void)c;
	((struct fake_call *)call)->cancelled = true;
}

static void fake_reset(void)
{
	for (size_t i = 0; i < n_calls; i++)
		free(calls[i].body);
	n_calls = 0;
}

static void answer(size_t i, long status, const char *body)
{
	struct k8s_call_result r = {.status = status,
				    .body = body ? body : "",
				    .len = body ? strlen(body) : 0,
				    .error = status >= 300 ? "HTTP error" : NULL};

	assert_true(i < n_calls);
	assert_false(calls[i].answered);
	calls[i].answered = true;
	calls[i].done(calls[i].ctx, &r);
}

/* ---- helpers ---- */

static void pod_from(const char *json, struct k8s_pod *pod)
{
	cJSON *j = cJSON_Parse(json);
	char err[256] = "";

	assert_non_null(j);
	if (k8s_pod_from_json(j, pod, err, sizeof(err)))
		fail_msg("%s", err);
	cJSON_Delete(j);
}

static void ns_from(const char *json, struct k8s_namespace *ns)
{
	cJSON *j = cJSON_Parse(json);
	char err[256] = "";

	assert_non_null(j);
	if (k8s_namespace_from_json(j, ns, err, sizeof(err)))
		fail_msg("%s", err);
	cJSON_Delete(j);
}

static void put_identity(struct store *s, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	struct k8s_identity id;
	char err[256] = "";

	assert_non_null(j);
	if (k8s_identity_from_json(j, &id, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(store_set_identity(s, &id), 0);
	k8s_identity_free(&id);
	cJSON_Delete(j);
}

static void put_ces(struct store *s, const cJSON *obj)
{
	struct k8s_cilium_endpointslice ces;
	char err[256] = "";

	if (k8s_cilium_endpointslice_from_json(obj, &ces, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(store_set_ces(s, &ces), 0);
	k8s_cilium_endpointslice_free(&ces);
}

static const char *POD_WEB =
    "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\",\"labels\":{"
    "\"app\":\"web\",\"pod-template-hash\":\"5d9c7\",\"controller-revision-hash\":\"x\","
    "\"statefulset.kubernetes.io/pod-name\":\"web-1\",\"app.kubernetes.io/name\":\"web\","
    "\"io.kubernetes.pod.namespace\":\"spoofed\"}},"
    "\"spec\":{\"nodeName\":\"n1\",\"serviceAccountName\":\"web-sa\",\"containers\":["
    "{\"name\":\"c\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080},"
    "{\"containerPort\":9090},{\"name\":\"dns\",\"containerPort\":53,\"protocol\":\"UDP\"}]},"
    "{\"name\":\"d\",\"ports\":[{\"name\":\"http\",\"containerPort\":81}]}]},"
    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"podIPs\":["
    "{\"ip\":\"fd00::5\"},{\"ip\":\"10.0.0.5\"}]}}";

static const char *NS_SHOP =
    "{\"metadata\":{\"name\":\"shop\",\"labels\":{\"kubernetes.io/metadata.name\":\"shop\","
    "\"team\":\"red\"}}}";

/* ---- Pods ---- */

static void test_pod_decode(void **state)
{
	struct k8s_pod pod;

	(void)state;
	pod_from(POD_WEB, &pod);
	assert_string_equal(pod.namespace, "shop");
	assert_string_equal(pod.name, "web-1");
	assert_string_equal(pod.node_name, "n1");
	assert_string_equal(pod.service_account, "web-sa");
	assert_int_equal(pod.ipv4, inet_addr("10.0.0.5"));
	assert_false(pod.host_network);
	assert_false(pod.deleting);
	assert_false(k8s_pod_finished(&pod));
	/* Named ports only, sorted, the first of a name kept. */
	assert_int_equal(pod.n_named_ports, 2);
	assert_string_equal(pod.named_ports[0].name, "dns");
	assert_int_equal(pod.named_ports[0].proto, IPPROTO_UDP);
	assert_string_equal(pod.named_ports[1].name, "http");
	assert_int_equal(pod.named_ports[1].port, 8080);
	k8s_pod_free(&pod);

	pod_from("{\"metadata\":{\"name\":\"p\",\"namespace\":\"d\","
		 "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
		 "\"spec\":{\"hostNetwork\":true},\"status\":{\"phase\":\"Failed\"}}",
		 &pod);
	assert_string_equal(pod.service_account, "default");
	assert_true(pod.host_network && pod.deleting && k8s_pod_finished(&pod));
	assert_int_equal(pod.ipv4, 0);
	k8s_pod_free(&pod);
}

static void test_pod_malformed(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
	    {"{\"metadata\":{\"name\":\"p\"}}", "metadata.namespace: missing"},
	    {"{\"metadata\":{\"name\":\"p\",\"namespace\":\"d\"},\"status\":{\"podIPs\":"
	     "[{\"ip\":\"300.1.1.1\"}]}}",
	     "status.podIPs[0].ip"},
	    {"{\"metadata\":{\"name\":\"p\",\"namespace\":\"d\"},\"spec\":{\"containers\":"
	     "[{\"ports\":[{\"name\":\"http\",\"containerPort\":70000}]}]}}",
	     "spec.containers[0].ports[0].containerPort"},
	    {"{\"metadata\":{\"name\":\"p\",\"namespace\":\"d\",\"labels\":{\"a\":5}}}",
	     "metadata.labels.a"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *j = cJSON_Parse(cases[i].json);
		struct k8s_pod pod;
		char err[256] = "";

		assert_int_equal(k8s_pod_from_json(j, &pod, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].err))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].err);
		cJSON_Delete(j);
	}
}

/* ---- labels ---- */

static void test_label_filter(void **state)
{
	(void)state;
	/* Cilium's defaults: kept */
	assert_true(ident_label_relevant("app"));
	assert_true(ident_label_relevant("app.kubernetes.io/name"));
	assert_true(ident_label_relevant("io.kubernetes.pod.namespace"));
	assert_true(
	    ident_label_relevant("io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name"));
	assert_true(ident_label_relevant("io.cilium.k8s.policy.cluster"));
	assert_true(ident_label_relevant("io.cilium.k8s.policy.serviceaccount"));
	assert_true(ident_label_relevant("my.kubernetes.io/x")); /* matched at the start only */
	/* ... and dropped */
	assert_false(ident_label_relevant("pod-template-hash"));
	assert_false(ident_label_relevant("controller-revision-hash"));
	assert_false(ident_label_relevant("pod-template-generation"));
	assert_false(ident_label_relevant("statefulset.kubernetes.io/pod-name"));
	assert_false(ident_label_relevant("apps.kubernetes.io/pod-index"));
	assert_false(ident_label_relevant("batch.kubernetes.io/job-completion-index"));
	assert_false(ident_label_relevant("io.kubernetes.container.name"));
	assert_false(ident_label_relevant("kubernetes.io/hostname"));
	assert_false(ident_label_relevant("k8s.io/x"));
	assert_false(ident_label_relevant("node.beta.kubernetes.io/instance-type"));
	assert_false(ident_label_relevant("annotation.foo"));
	assert_false(ident_label_relevant("etcd_node"));
}

static void test_labels_from_pod(void **state)
{
	struct k8s_namespace ns;
	struct ident_labels l;
	struct k8s_pod pod;
	char buf[256];
	static const char *const want[] = {
	    "k8s:app=web",
	    "k8s:app.kubernetes.io/name=web",
	    "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop",
	    "k8s:io.cilium.k8s.namespace.labels.team=red",
	    "k8s:io.cilium.k8s.policy.cluster=default",
	    "k8s:io.cilium.k8s.policy.serviceaccount=web-sa",
	    "k8s:io.kubernetes.pod.namespace=shop",
	};
	cJSON *obj;

	(void)state;
	pod_from(POD_WEB, &pod);
	ns_from(NS_SHOP, &ns);
	assert_int_equal(ident_labels_from_pod(&pod, &ns, IDENT_CLUSTER_DEFAULT, &l), 0);
	assert_int_equal(l.set.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < l.set.n; i++) {
		label_format(&l.set.labels[i], buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
	}
	/* The CiliumIdentity object: name, security-labels. */
	obj = ident_labels_object(&l.set, 4242);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name")->valuestring, "4242");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "security-labels"),
						"k8s:io.kubernetes.pod.namespace")
				->valuestring,
			    "shop");
	/* The same key as that identity's labels read back from the apiserver. */
	{
		struct k8s_identity id;
		char err[256] = "", *key;

		assert_int_equal(k8s_identity_from_json(obj, &id, err, sizeof(err)), 0);
		key = ident_labels_key(&id.labels);
		assert_string_equal(key, l.key);
		free(key);
		k8s_identity_free(&id);
	}
	cJSON_Delete(obj);
	ident_labels_free(&l);
	k8s_namespace_free(&ns);
	k8s_pod_free(&pod);
}

/* ---- allocation ---- */

#define ID_WEB_JSON(n)                                                                             \
	"{\"metadata\":{\"name\":\"" n "\"},\"security-labels\":{\"k8s:app\":\"web\","             \
	"\"k8s:io.cilium.k8s.policy.cluster\":\"default\","                                        \
	"\"k8s:io.cilium.k8s.policy.serviceaccount\":\"default\","                                 \
	"\"k8s:io.kubernetes.pod.namespace\":\"shop\"}}"

static void web_labels(struct ident_labels *l)
{
	struct k8s_pod pod;

	pod_from("{\"metadata\":{\"name\":\"w\",\"namespace\":\"shop\",\"labels\":{\"app\":"
		 "\"web\"}},\"status\":{\"podIP\":\"10.0.0.9\"}}",
		 &pod);
	assert_int_equal(ident_labels_from_pod(&pod, NULL, IDENT_CLUSTER_DEFAULT, l), 0);
	k8s_pod_free(&pod);
}

static void test_alloc_reuses_lowest(void **state)
{
	struct ident_alloc a;
	struct ident_labels l;
	struct store s;

	(void)state;
	store_init(&s);
	put_identity(&s, ID_WEB_JSON("9000"));
	put_identity(&s, ID_WEB_JSON("7000"));
	web_labels(&l);
	ident_alloc_init(&a, NULL, fake_start, fake_cancel, &s);
	assert_int_equal(ident_alloc_lookup(&a, &l, 0), 7000);
	assert_int_equal(n_calls, 0); /* no write */
	ident_alloc_destroy(&a);
	ident_labels_free(&l);
	store_destroy(&s);
	fake_reset();
}

static void test_alloc_create_conflict_adopt(void **state)
{
	char body[1024], path[128];
	struct ident_alloc a;
	struct ident_labels l;
	struct store s;
	__u32 first, taken;

	(void)state;
	store_init(&s);
	web_labels(&l);
	first = ident_alloc_first(l.key);
	/* The hashed number is held by other labels: the next one is tried. */
	snprintf(body, sizeof(body),
		 "{\"metadata\":{\"name\":\"%u\"},\"security-labels\":"
		 "{\"k8s:app\":\"other\"}}",
		 first);
	put_identity(&s, body);
	ident_alloc_init(&a, NULL, fake_start, fake_cancel, &s);
	assert_int_equal(ident_alloc_lookup(&a, &l, 0), 0);
	assert_int_equal(n_calls, 1);
	assert_string_equal(calls[0].method, "POST");
	assert_string_equal(calls[0].path, IDENT_PATH);
	taken = first == IDENT_MAX ? IDENT_MIN : first + 1;
	snprintf(path, sizeof(path), "\"name\":\"%u\"", taken);
	assert_non_null(strstr(calls[0].body, path));
	assert_non_null(strstr(calls[0].body, "\"k8s:app\":\"web\""));
	/* Asked again while in flight: no second request. */
	assert_int_equal(ident_alloc_lookup(&a, &l, 0), 0);
	assert_int_equal(n_calls, 1);

	/* 409: another agent won that name. Its labels are read ... */
	answer(0, 409, NULL);
	assert_int_equal(n_calls, 2);
	assert_string_equal(calls[1].method, "GET");
	snprintf(path, sizeof(path), IDENT_PATH "/%u", taken);
	assert_string_equal(calls[1].path, path);
	/* ... and they are ours: adopted, no third write. */
	snprintf(body, sizeof(body),
		 "{\"metadata\":{\"name\":\"%u\"},\"security-labels\":"
		 "{\"k8s:app\":\"web\",\"k8s:io.cilium.k8s.policy.cluster\":\"default\","
		 "\"k8s:io.cilium.k8s.policy.serviceaccount\":\"default\","
		 "\"k8s:io.kubernetes.pod.namespace\":\"shop\"}}",
		 taken);
	answer(1, 200, body);
	assert_int_equal(n_calls, 2);
	assert_int_equal(a.adopted, 1);
	assert_int_equal(ident_alloc_lookup(&a, &l, 0), taken);
	ident_alloc_destroy(&a);
	ident_labels_free(&l);
	store_destroy(&s);
	fake_reset();
}

static void test_alloc_conflict_other_labels_moves_on(void **state)
{
	char body[512];
	struct ident_alloc a;
	struct ident_labels l;
	struct store s;
	__u32 first;

	(void)state;
	store_init(&s);
	web_labels(&l);
	first = ident_alloc_first(l.key);
	ident_alloc_init(&a, NULL, fake_start, fake_cancel, &s);
	ident_alloc_lookup(&a, &l, 0);
	answer(0, 409, NULL);
	snprintf(body, sizeof(body),
		 "{\"metadata\":{\"name\":\"%u\"},\"security-labels\":"
		 "{\"k8s:app\":\"db\"}}",
		 first);
	answer(1, 200, body);
	/* Not ours: the next number is created. */
	assert_int_equal(n_calls, 3);
	assert_string_equal(calls[2].method, "POST");
	answer(2, 201, "{}");
	assert_int_equal(ident_alloc_lookup(&a, &l, 0), first == IDENT_MAX ? IDENT_MIN : first + 1);
	assert_int_equal(a.creates, 1);
	assert_int_equal(a.conflicts, 1);

	/* An error backs off: nothing is sent until due. */
	{
		struct ident_labels l2;
		struct k8s_pod pod;
		uint64_t next = UINT64_MAX, now = ident_now_ms();

		pod_from("{\"metadata\":{\"name\":\"x\",\"namespace\":\"shop\"}}", &pod);
		ident_labels_from_pod(&pod, NULL, IDENT_CLUSTER_DEFAULT, &l2);
		k8s_pod_free(&pod);
		ident_alloc_lookup(&a, &l2, now);
		answer(3, 403, NULL);
		assert_string_equal(ident_alloc_error(&a, l2.key), "HTTP error");
		ident_alloc_run(&a, now, &next);
		assert_int_equal(n_calls, 4);
		assert_true(next > now && next != UINT64_MAX);
		ident_alloc_run(&a, next, &next);
		assert_int_equal(n_calls, 5);
		ident_labels_free(&l2);
	}
	ident_alloc_destroy(&a);
	assert_true(calls[4].cancelled);
	ident_labels_free(&l);
	store_destroy(&s);
	fake_reset();
}

/* ---- publishing ---- */

static void set_self(struct store *s, const char *node, const char *ip)
{
	char json[256];
	struct k8s_node n;
	char err[128];
	cJSON *j;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"%s\"},\"status\":{\"addresses\":"
		 "[{\"type\":\"InternalIP\",\"address\":\"%s\"}]}}",
		 node, ip);
	j = cJSON_Parse(json);
	assert_int_equal(k8s_node_from_json(j, &n, err, sizeof(err)), 0);
	store_set_self_name(s, node);
	assert_int_equal(store_set_node(s, &n), 0);
	k8s_node_free(&n);
	cJSON_Delete(j);
}

static void test_ces_names(void **state)
{
	char a[K8S_NAME_MAX], b[K8S_NAME_MAX], c[K8S_NAME_MAX];
	char long_node[260];
	struct ces_pub p;
	struct store s;

	(void)state;
	ces_slice_name(a, sizeof(a), "axon-n1-", "shop", 0);
	ces_slice_name(b, sizeof(b), "axon-n1-", "shop", 1);
	ces_slice_name(c, sizeof(c), "axon-n1-", "other", 0);
	assert_true(!strncmp(a, "axon-n1-", 8) && !strcmp(a + strlen(a) - 2, "-0"));
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_memory_equal(a, b, strlen(a) - 1); /* same namespace hash */
	/* Only this node's: node "n1" does not take node "n1-x"'s slices. */
	assert_true(ces_slice_owned("axon-n1-", a));
	assert_true(ces_slice_owned("axon-n1-", "axon-n1-0123abcd-17"));
	assert_false(ces_slice_owned("axon-n1-", "axon-n1-x-0123abcd-0"));
	assert_false(ces_slice_owned("axon-n1-", "axon-n1-0123abcd-"));
	assert_false(ces_slice_owned("axon-n1-", "axon-n1-0123abcd-1x"));
	assert_false(ces_slice_owned("axon-n1-", "ces-n1"));
	/* A 253-byte node name still makes names of at most 253. */
	memset(long_node, 'n', 253);
	long_node[253] = '\0';
	store_init(&s);
	ces_pub_init(&p, NULL, fake_start, fake_cancel, &s, long_node);
	ces_slice_name(a, sizeof(a), p.prefix, "shop", 12345);
	assert_true(strlen(a) <= 253 && a[0]);
	ces_pub_destroy(&p);
	store_destroy(&s);
}

static void test_ces_packing_coalescing_and_diff(void **state)
{
	struct k8s_named_port http = {.name = "http", .proto = IPPROTO_TCP, .port = 80};
	char name[32];
	struct ces_pub p;
	struct store s;
	uint64_t next = UINT64_MAX;
	cJSON *obj;

	(void)state;
	store_init(&s);
	set_self(&s, "n1", "192.168.1.1");
	ces_pub_init(&p, NULL, fake_start, fake_cancel, &s, "n1");
	ces_pub_adopt(&p, 0);
	/* 150 in shop, 1 in db: slices of 100 + 50 and 1. */
	for (int i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "p%03d", i);
		assert_int_equal(ces_pub_set(&p, "shop", name, htonl(0x0a000001 + i), 300,
					     i ? NULL : &http, i ? 0 : 1, 1000),
				 0);
	}
	ces_pub_set(&p, "db", "d0", inet_addr("10.1.0.1"), 301, NULL, 0, 1000);
	assert_int_equal(p.slices.count, 3);
	/* Nothing is written before the delay ... */
	ces_pub_run(&p, 1000 + CES_FLUSH_DELAY_MS - 1, &next);
	assert_int_equal(n_calls, 0);
	assert_int_equal(next, 1000 + CES_FLUSH_DELAY_MS);
	/* ... then one create per slice for the whole burst. */
	ces_pub_run(&p, 1000 + CES_FLUSH_DELAY_MS, &next);
	assert_int_equal(n_calls, 3);
	for (size_t i = 0; i < 3; i++) {
		cJSON *o = cJSON_Parse(calls[i].body);
		const cJSON *eps = cJSON_GetObjectItem(o, "endpoints");
		const char *ns = cJSON_GetObjectItem(o, "namespace")->valuestring;
		int n = cJSON_GetArraySize(eps);

		assert_string_equal(calls[i].method, "POST");
		assert_true(!strcmp(ns, "db") ? n == 1 : n == 100 || n == 50);
		if (!strcmp(ns, "shop") && n == 100) {
			const cJSON *e0 = cJSON_GetArrayItem(eps, 0);
			const cJSON *net = cJSON_GetObjectItem(e0, "networking");

			assert_string_equal(cJSON_GetObjectItem(e0, "name")->valuestring, "p000");
			assert_int_equal(cJSON_GetObjectItem(e0, "id")->valueint, 300);
			assert_string_equal(cJSON_GetObjectItem(net, "node")->valuestring,
					    "192.168.1.1");
			assert_string_equal(
			    cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(net, "addressing"), 0),
				"ipv4")
				->valuestring,
			    "10.0.0.1");
			assert_string_equal(
			    cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(e0, "named-ports"), 0),
				"name")
				->valuestring,
			    "http");
		}
		cJSON_Delete(o);
		answer(i, 201, "{}");
	}
	assert_int_equal(p.creates, 3);

	/* The watch reads them back into the store; an unchanged set writes nothing. */
	for (struct ht_entry *e = ht_first(&p.slices); e; e = ht_next(&p.slices, e)) {
		obj = ces_slice_json(&p, e->value);
		put_ces(&s, obj);
		assert_true(ces_slice_equal(&p, e->value,
					    &((const struct store_ces *)ht_get(
						  &s.ces, ((struct ces_slice *)e->value)->name,
						  strlen(((struct ces_slice *)e->value)->name)))
						 ->ces));
		cJSON_Delete(obj);
	}
	ces_pub_set(&p, "shop", "p001", htonl(0x0a000002), 300, NULL, 0, 2000);
	ces_pub_run(&p, 3000, &next);
	assert_int_equal(n_calls, 3);

	/* One removal and one identity change in the first slice: one PATCH. */
	ces_pub_remove(&p, "shop", "p002", 4000);
	ces_pub_set(&p, "shop", "p003", htonl(0x0a000004), 999, NULL, 0, 4010);
	ces_pub_run(&p, 4000 + CES_FLUSH_DELAY_MS, &next);
	assert_int_equal(n_calls, 4);
	assert_string_equal(calls[3].method, "PATCH");
	assert_null(strstr(calls[3].body, "\"p002\""));
	assert_non_null(strstr(calls[3].body, "\"id\":999"));
	answer(3, 200, "{}");
	/* A new pod fills the fullest slice with room, not a new one. */
	ces_pub_set(&p, "shop", "q", htonl(0x0a0000ff), 300, NULL, 0, 5000);
	assert_int_equal(p.slices.count, 3);
	/* The db slice emptied: deleted. */
	ces_pub_remove(&p, "db", "d0", 5000);
	ces_pub_run(&p, 5000 + CES_FLUSH_DELAY_MS, &next);
	assert_int_equal(n_calls, 6);
	for (size_t i = 4; i < 6; i++) {
		if (!strcmp(calls[i].method, "DELETE")) {
			const char *deleted = strrchr(calls[i].path, '/') + 1;

			assert_true(!strncmp(deleted, "axon-n1-", 8));
			answer(i, 200, "{}");
			/* Kept until the watch has seen the delete. */
			ces_pub_run(&p, 6000, &next);
			assert_int_equal(p.slices.count, 3);
			assert_int_equal(store_delete_ces(&s, deleted), 0);
			continue;
		}
		assert_string_equal(calls[i].method, "PATCH");
		answer(i, 200, "{}");
	}
	ces_pub_run(&p, 6000, &next);
	assert_int_equal(p.slices.count, 2);
	ces_pub_destroy(&p);

	/* A restarted agent adopts the slices: each endpoint back where it was, and
	 * what equals the stored copy is not written (the store holds the two shop
	 * slices as first created, the db one is gone). */
	fake_reset();
	ces_pub_init(&p, NULL, fake_start, fake_cancel, &s, "n1");
	ces_pub_adopt(&p, 0);
	for (int i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "p%03d", i);
		ces_pub_set(&p, "shop", name, htonl(0x0a000001 + i), 300, i ? NULL : &http,
			    i ? 0 : 1, 0);
	}
	next = UINT64_MAX;
	ces_pub_run(&p, CES_FLUSH_DELAY_MS, &next);
	assert_int_equal(n_calls, 0);
	assert_int_equal(p.skipped, 2);
	ces_pub_destroy(&p);
	store_destroy(&s);
	fake_reset();
}

static void test_ces_write_errors(void **state)
{
	struct ces_pub p;
	struct store s;
	uint64_t next = UINT64_MAX, now = ident_now_ms();

	(void)state;
	store_init(&s);
	ces_pub_init(&p, NULL, fake_start, fake_cancel, &s, "n1");
	ces_pub_adopt(&p, 0);
	ces_pub_set(&p, "shop", "a", inet_addr("10.0.0.1"), 300, NULL, 0, now);
	/* The node's address is not known yet: nothing is written. */
	ces_pub_run(&p, now + 1000, &next);
	assert_int_equal(n_calls, 0);
	set_self(&s, "n1", "192.168.1.1");
	ces_pub_run(&p, now + 1000, &next);
	assert_int_equal(n_calls, 1);
	/* 409 on create: it exists (an earlier write): updated instead, at once. */
	answer(0, 409, NULL);
	ces_pub_run(&p, now + 1000, &next);
	assert_int_equal(n_calls, 2);
	assert_string_equal(calls[1].method, "PATCH");
	/* 404 on update: gone: created again. */
	answer(1, 404, NULL);
	ces_pub_run(&p, now + 1000, &next);
	assert_int_equal(n_calls, 3);
	assert_string_equal(calls[2].method, "POST");
	/* 500: retried after a backoff. */
	answer(2, 500, NULL);
	next = UINT64_MAX;
	ces_pub_run(&p, now, &next);
	assert_int_equal(n_calls, 3);
	assert_int_equal(p.errors, 1);
	ces_pub_run(&p, now + 1000 + 60000, &next);
	assert_int_equal(n_calls, 4);
	answer(3, 201, "{}");
	/* The watch reads it back; the node's address changes: rewritten with it. */
	{
		cJSON *o = ces_slice_json(&p, ht_first(&p.slices)->value);

		put_ces(&s, o);
		cJSON_Delete(o);
	}
	set_self(&s, "n1", "192.168.1.2");
	ces_pub_run(&p, now + 70000, &next);
	ces_pub_run(&p, now + 70000 + CES_FLUSH_DELAY_MS, &next);
	assert_int_equal(n_calls, 5);
	assert_string_equal(calls[4].method, "PATCH");
	assert_non_null(strstr(calls[4].body, "\"node\":\"192.168.1.2\""));
	answer(4, 200, "{}");
	/* Emptied and deleted, then the same pod back before the watch has seen the
	 * delete: the stale copy equals it, yet it is created again. */
	ces_pub_remove(&p, "shop", "a", now + 80000);
	ces_pub_run(&p, now + 81000, &next);
	assert_int_equal(n_calls, 6);
	assert_string_equal(calls[5].method, "DELETE");
	answer(5, 200, "{}");
	ces_pub_set(&p, "shop", "a", inet_addr("10.0.0.1"), 300, NULL, 0, now + 82000);
	ces_pub_run(&p, now + 83000, &next);
	assert_int_equal(n_calls, 7);
	assert_string_equal(calls[6].method, "POST");
	ces_pub_destroy(&p);
	assert_true(calls[6].cancelled);
	store_destroy(&s);
	fake_reset();
}

static void put_pod(struct store *s, const char *app, const char *extra)
{
	char json[512];
	struct k8s_pod pod;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\",\"labels\":"
		 "{\"app\":\"%s\"}%s},\"status\":{\"podIP\":\"10.0.0.5\"}}",
		 app, extra);
	pod_from(json, &pod);
	assert_int_equal(store_set_pod(s, &pod), 0);
	k8s_pod_free(&pod);
}

static const struct ces_ep *published_ep(const struct lep_mgr *m)
{
	return ht_get(&m->pub.eps, "shop/web-1", strlen("shop/web-1"));
}

/* A label change allocates first and switches after: the endpoint is never
 * without an identity, and is never published under the new one early. */
static void test_endpoint_label_change_switches_after_allocation(void **state)
{
	struct k8s_namespace ns;
	struct lep_mgr m;
	struct store s;
	uint64_t next = UINT64_MAX;
	const struct lep *ep;
	__u32 created;
	char *p;

	(void)state;
	store_init(&s);
	set_self(&s, "n1", "192.168.1.1");
	ns_from("{\"metadata\":{\"name\":\"shop\"}}", &ns);
	store_set_namespace(&s, &ns);
	k8s_namespace_free(&ns);
	put_identity(&s, ID_WEB_JSON("5000"));
	put_pod(&s, "web", "");
	assert_int_equal(lep_mgr_init(&m, NULL, fake_start, fake_cancel, &s, "n1", 0, 0), 0);

	/* Not synced: nothing derived. */
	lep_mgr_run(&m, false, 1000, &next);
	assert_int_equal(m.eps.count, 0);
	/* The labels' identity exists: reused, no identity write. */
	lep_mgr_run(&m, true, 1000, &next);
	ep = ht_get(&m.eps, "shop/web-1", strlen("shop/web-1"));
	assert_non_null(ep);
	assert_int_equal(ep->identity, 5000);
	assert_int_equal(ep->state, LEP_READY);
	assert_int_equal(published_ep(&m)->identity, 5000);
	assert_int_equal(n_calls, 0);

	/* app=api: its identity is created (calls[0]; calls[1] is the slice's
	 * first write, due since 1200); meanwhile web-1 stays on 5000. */
	put_pod(&s, "api", "");
	lep_mgr_run(&m, true, 2000, &next);
	assert_int_equal(n_calls, 2);
	assert_string_equal(calls[0].method, "POST");
	assert_string_equal(calls[0].path, IDENT_PATH);
	assert_non_null(strstr(calls[0].body, "\"k8s:app\":\"api\""));
	assert_string_equal(calls[1].path, CES_PATH);
	assert_non_null(strstr(calls[1].body, "\"id\":5000"));
	assert_int_equal(ep->identity, 5000);
	assert_int_equal(ep->state, LEP_READY);
	assert_string_equal(ep->reason, "allocating");
	assert_int_equal(published_ep(&m)->identity, 5000);
	p = strstr(calls[0].body, "\"name\":\"");
	assert_non_null(p);
	created = (__u32)strtoul(p + 8, NULL, 10);
	answer(0, 201, "{}");
	lep_mgr_run(&m, true, 2100, &next);
	assert_int_equal(ep->identity, created);
	assert_int_equal(published_ep(&m)->identity, created);

	/* Deleting: still published, disconnecting. Gone: unpublished. */
	put_pod(&s, "api", ",\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"");
	lep_mgr_run(&m, true, 3000, &next);
	assert_int_equal(ep->state, LEP_DISCONNECTING);
	assert_non_null(published_ep(&m));
	store_delete_pod(&s, "shop", "web-1");
	lep_mgr_run(&m, true, 4000, &next);
	assert_int_equal(m.eps.count, 0);
	assert_null(published_ep(&m));
	lep_mgr_destroy(&m);
	store_destroy(&s);
	fake_reset();
}

static void test_identity_gc_after_heartbeat_timeout(void **state)
{
	struct lep_mgr m;
	struct store s;
	uint64_t next = UINT64_MAX;

	(void)state;
	store_init(&s);
	set_self(&s, "n1", "192.168.1.1");
	put_identity(&s, ID_WEB_JSON("5000"));
	put_identity(&s, ID_WEB_JSON("5001"));
	{
		/* 5001 is another node's endpoint's. */
		cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"ces-x\"},\"namespace\":\"shop\","
				       "\"endpoints\":[{\"name\":\"r\",\"id\":5001}]}");

		put_ces(&s, o);
		cJSON_Delete(o);
	}
	assert_int_equal(lep_mgr_init(&m, NULL, fake_start, fake_cancel, &s, "n1", 1000, 3000), 0);
	lep_mgr_run(&m, true, 10000, &next); /* first GC due at 11000 */
	assert_int_equal(next, 11000);
	lep_mgr_run(&m, true, 11000, &next); /* 5000 marked */
	assert_int_equal(m.unused.count, 1);
	assert_int_equal(n_calls, 0);
	lep_mgr_run(&m, true, 12000, &next);
	lep_mgr_run(&m, true, 13000, &next); /* 2 s unused: not yet */
	assert_int_equal(n_calls, 0);
	lep_mgr_run(&m, true, 14000, &next); /* 3 s: deleted */
	assert_int_equal(n_calls, 1);
	assert_string_equal(calls[0].method, "DELETE");
	assert_string_equal(calls[0].path, IDENT_PATH "/5000");
	answer(0, 200, "{}");
	assert_int_equal(m.gc_deleted, 1);
	lep_mgr_destroy(&m);
	store_destroy(&s);
	fake_reset();
}

/* ---- slices of nodes that are gone ---- */

static void put_slice(struct store *s, const char *name)
{
	char json[256];
	cJSON *j;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"%s\"},\"namespace\":\"shop\",\"endpoints\":"
		 "[{\"name\":\"p\",\"id\":300,\"networking\":{\"addressing\":[{\"ipv4\":"
		 "\"10.9.0.1\"}],\"node\":\"192.168.1.9\"}}]}",
		 name);
	j = cJSON_Parse(json);
	assert_non_null(j);
	put_ces(s, j);
	cJSON_Delete(j);
}

static void test_ces_slice_prefix(void **state)
{
	char p[K8S_NAME_MAX];

	(void)state;
	assert_true(ces_slice_prefix("axon-n1-0123abcd-0", p, sizeof(p)));
	assert_string_equal(p, "axon-n1-");
	assert_true(ces_slice_prefix("axon-a-b-0123abcd-12", p, sizeof(p)));
	assert_string_equal(p, "axon-a-b-");
	assert_false(ces_slice_prefix("ces-n1", p, sizeof(p)));
	assert_false(ces_slice_prefix("axon-0123abcd-0", p, sizeof(p)));
	assert_false(ces_slice_prefix("axon-n1-0123abcX-0", p, sizeof(p)));
	assert_false(ces_slice_prefix("axon-n1-0123abcd-", p, sizeof(p)));
	assert_false(ces_slice_prefix("cilium-n1-0123abcd-0", p, sizeof(p)));
}

static void test_orphan_slices_deleted_by_the_first_node_after_the_grace(void **state)
{
	struct ces_orphans first, other;
	uint64_t next = UINT64_MAX, t = 1000;
	struct store s;

	(void)state;
	fake_reset();
	store_init(&s);
	set_self(&s, "n2", "192.168.1.2");
	set_self(&s, "n1", "192.168.1.1");
	put_slice(&s, "axon-n1-0123abcd-0");
	put_slice(&s, "axon-n2-0123abcd-0");
	put_slice(&s, "axon-gone-0123abcd-0");
	put_slice(&s, "axon-zz-0123abcd-0");
	put_slice(&s, "ces-by-cilium");
	ces_orphans_init(&first, NULL, fake_start, fake_cancel, &s, "n1");
	ces_orphans_init(&other, NULL, fake_start, fake_cancel, &s, "n2");

	/* Seen, not deleted yet; both know when they are due. */
	ces_orphans_run(&first, t, &next);
	assert_int_equal(n_calls, 0);
	assert_int_equal(first.since.count, 2);
	assert_int_equal(next, t + CES_ORPHAN_GRACE_MS);
	next = UINT64_MAX;
	ces_orphans_run(&other, t, &next);
	assert_int_equal(next, t + CES_ORPHAN_FALLBACK_MS);

	/* Node "zz" shows up within the grace: its slice is no orphan (and n1 still
	 * sorts first). */
	set_self(&s, "zz", "192.168.1.3");
	ces_orphans_run(&first, t + 1, &next);
	assert_int_equal(first.since.count, 1);

	/* Due for the first node by name; the other one waits. */
	ces_orphans_run(&other, t + CES_ORPHAN_GRACE_MS, &next);
	assert_int_equal(n_calls, 0);
	ces_orphans_run(&first, t + CES_ORPHAN_GRACE_MS, &next);
	assert_int_equal(n_calls, 1);
	assert_string_equal(calls[0].method, "DELETE");
	assert_string_equal(calls[0].path, CES_PATH "/axon-gone-0123abcd-0");

	/* A failure is retried; a 404 counts as done. */
	answer(0, 500, NULL);
	assert_int_equal(first.errors, 1);
	assert_int_equal(first.deleted, 0);
	ces_orphans_run(&first, t + CES_ORPHAN_GRACE_MS + 1, &next);
	assert_int_equal(n_calls, 1);
	ces_orphans_run(&first, first.next_due_ms, &next);
	assert_int_equal(n_calls, 2);
	answer(1, 404, NULL);
	assert_int_equal(first.deleted, 1);
	assert_int_equal(first.since.count, 0);

	/* The watch's delete: nothing more to do, by either node. */
	assert_int_equal(store_delete_ces(&s, "axon-gone-0123abcd-0"), 0);
	ces_orphans_run(&first, t + CES_ORPHAN_FALLBACK_MS, &next);
	ces_orphans_run(&other, t + CES_ORPHAN_FALLBACK_MS, &next);
	assert_int_equal(n_calls, 2);
	assert_int_equal(other.since.count, 0);

	ces_orphans_destroy(&first);
	ces_orphans_destroy(&other);
	store_destroy(&s);
	fake_reset();
}

static void test_orphan_slices_fall_to_any_node_after_the_fallback(void **state)
{
	struct ces_orphans o;
	uint64_t next = UINT64_MAX;
	struct store s;

	(void)state;
	fake_reset();
	store_init(&s);
	set_self(&s, "a", "192.168.1.1");
	set_self(&s, "b", "192.168.1.2");
	put_slice(&s, "axon-x-0123abcd-0");
	ces_orphans_init(&o, NULL, fake_start, fake_cancel, &s, "b");
	ces_orphans_run(&o, 0, &next);
	ces_orphans_run(&o, CES_ORPHAN_FALLBACK_MS - 1, &next);
	assert_int_equal(n_calls, 0);
	ces_orphans_run(&o, CES_ORPHAN_FALLBACK_MS, &next);
	assert_int_equal(n_calls, 1);
	answer(0, 200, "{}");
	assert_int_equal(o.deleted, 1);
	ces_orphans_destroy(&o);
	store_destroy(&s);
	fake_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pod_decode),
	    cmocka_unit_test(test_pod_malformed),
	    cmocka_unit_test(test_label_filter),
	    cmocka_unit_test(test_labels_from_pod),
	    cmocka_unit_test(test_alloc_reuses_lowest),
	    cmocka_unit_test(test_alloc_create_conflict_adopt),
	    cmocka_unit_test(test_alloc_conflict_other_labels_moves_on),
	    cmocka_unit_test(test_ces_names),
	    cmocka_unit_test(test_ces_packing_coalescing_and_diff),
	    cmocka_unit_test(test_ces_write_errors),
	    cmocka_unit_test(test_endpoint_label_change_switches_after_allocation),
	    cmocka_unit_test(test_identity_gc_after_heartbeat_timeout),
	    cmocka_unit_test(test_ces_slice_prefix),
	    cmocka_unit_test(test_orphan_slices_deleted_by_the_first_node_after_the_grace),
	    cmocka_unit_test(test_orphan_slices_fall_to_any_node_after_the_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
