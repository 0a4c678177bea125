// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The desired-state diff: store -> reconciler -> maps, against a fake map
 * that checks, after every single write, what a packet would see.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "axon/lb.h"
#include "agent.h"
#include "lb/reconcile.h"
#include "store/store.h"
#include "log.h"
#include "fake_maps.c.inc"

#include "lb_fixture.c.inc"

static void put_service(struct fixture *fx, const char *ns, const char *name, const char *ip,
			const char *ports_json)
{
	char json[2048];
	struct k8s_service svc = {};
	char err[256] = "";
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"%s\",\"clusterIPs\":[\"%s\"],"
		 "\"ports\":%s}}",
		 ns, name, ip, ip, ports_json);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	assert_int_equal(k8s_service_from_json(obj, &svc, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_int_equal(store_set_service(&fx->store, &svc), 0);
}

/* endpoints_json: the "endpoints" array. */
static void put_slice(struct fixture *fx, const char *ns, const char *name, const char *svc,
		      const char *ports_json, const char *endpoints_json)
{
	char json[4096];
	struct k8s_endpointslice eps = {};
	char err[256] = "";
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"resourceVersion\":\"1\","
		 "\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},"
		 "\"addressType\":\"IPv4\",\"ports\":%s,\"endpoints\":%s}",
		 ns, name, svc, ports_json, endpoints_json);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)))
		fail_msg("slice: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_slice(&fx->store, &eps), 0);
}

static int sync_all(struct fixture *fx)
{
	uint64_t next;

	return lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms(), &next);
}

static const struct lb4_service *slot_in(struct fixture *fx, const char *ip, int port,
					 __u8 proto, __u8 scope, __u16 s)
{
	struct lb4_key k = { .dport = htons(port), .proto = proto, .scope = scope,
			     .backend_slot = s };

	inet_pton(AF_INET, ip, &k.address);
	return fake_lookup(&fx->maps, LB_MAP_SERVICES, &k);
}

static const struct lb4_service *slot(struct fixture *fx, const char *ip, int port, __u8 proto,
				      __u16 s)
{
	return slot_in(fx, ip, port, proto, LB_SCOPE_EXT, s);
}

static const struct lb4_backend *backend(struct fixture *fx, __u32 id)
{
	return fake_lookup(&fx->maps, LB_MAP_BACKENDS, &id);
}

/* The backend addresses a frontend scope's slots resolve to, as "a:p,a:p" sorted by slot. */
static void scope_backends(struct fixture *fx, const char *ip, int port, __u8 proto, __u8 scope,
			   char *out, size_t len)
{
	const struct lb4_service *s0 = slot_in(fx, ip, port, proto, scope, 0);
	size_t off = 0;

	out[0] = '\0';
	assert_non_null(s0);
	for (__u16 i = 1; i <= s0->count; i++) {
		const struct lb4_service *s = slot_in(fx, ip, port, proto, scope, i);
		const struct lb4_backend *b;
		char a[INET_ADDRSTRLEN];

		assert_non_null(s);
		assert_int_equal(s->rev_nat_index, s0->rev_nat_index);
		b = backend(fx, s->backend_id);
		assert_non_null(b);
		inet_ntop(AF_INET, &b->address, a, sizeof(a));
		off += snprintf(out + off, len - off, "%s%s:%d", off ? "," : "", a, ntohs(b->port));
	}
}

static void frontend_backends(struct fixture *fx, const char *ip, int port, __u8 proto, char *out,
			      size_t len)
{
	scope_backends(fx, ip, port, proto, LB_SCOPE_EXT, out, len);
}

#define WEB_PORTS "[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]"
#define WEB_EPS_PORTS "[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]"
#define EP(ip, ready) "{\"addresses\":[\"" ip "\"],\"conditions\":{\"ready\":" ready "}}"

static void test_service_with_backends(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","
		  EP("10.244.0.7", "false") "]");
	assert_int_equal(sync_all(fx), 0);

	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080");
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 3);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_REVNAT), 1);
	assert_true(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->flags & SVC_FLAG_CLUSTER_IP);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_slice_before_service(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 0);

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
}

static void test_unchanged_writes_nothing(void **state)
{
	struct fixture *fx = *state;
	size_t before;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	before = fx->maps.n_ops;

	/* The same objects again (a relist, a no-op update). */
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_ops, before);
}

static void test_scale_up_and_down_minimal(void **state)
{
	struct fixture *fx = *state;
	char got[256];
	size_t before;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);

	/* Up: one backend, one slot, the count. Nothing deleted. */
	before = fx->maps.n_ops;
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","
		  EP("10.244.0.7", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_ops - before, 3);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080");

	/* Down: the first goes; the last moves into its slot. */
	before = fx->maps.n_ops;
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.6", "true") "," EP("10.244.0.7", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.7:8080,10.244.0.6:8080");
	/* slot 1 rewritten, count lowered, slot 3 deleted, backend deleted */
	assert_int_equal(fx->maps.n_ops - before, 4);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);
	assert_int_equal(fx->maps.inconsistencies, 0);

	/* To zero: the service stays, with count 0 (connects are refused). */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.6", "false") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->count, 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 1);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* What the backend_removed hook (socket LB termination) was told,
 * "a:p/proto@rev_nat,..." (rev_nat 0: deleted from the backends map). */
struct removed_log {
	char s[512];
	size_t off;
	bool in_map_any;	/* a backend was still in the map when told "any frontend" */
	struct fake_maps *maps;
};

static void log_removed(void *ctx, __u32 rev_nat, const struct lb_backend *b)
{
	struct removed_log *l = ctx;
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &b->addr, a, sizeof(a));
	l->off += snprintf(l->s + l->off, sizeof(l->s) - l->off, "%s%s:%d/%u@%u",
			   l->off ? "," : "", a, ntohs(b->port), b->proto, rev_nat);
	l->in_map_any = l->in_map_any ||
			(!rev_nat && fake_lookup(l->maps, LB_MAP_BACKENDS, &b->id));
}

static __u32 revnat_of(struct fixture *fx, const char *ip)
{
	const struct lb4_service *s0 = slot(fx, ip, 80, IPPROTO_TCP, 0);

	assert_non_null(s0);
	assert_int_not_equal(s0->rev_nat_index, 0);
	return s0->rev_nat_index;
}

/* The hook fires per (frontend, backend): when a backend leaves one service
 * while another still has it (for that service's frontend only), not while it
 * is kept terminating, when its service is deleted; and once more for "any
 * frontend" after its map entry is gone. */
static void test_backend_removed_hook(void **state)
{
	struct fixture *fx = *state;
	struct removed_log l = {.maps = &fx->maps};
	char want[512];
	__u32 web, api;

	fx->lb.backend_removed = log_removed;
	fx->lb.backend_removed_ctx = &l;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_service(fx, "shop", "api", "10.96.0.11", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	put_slice(fx, "shop", "api-abc", "api", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(l.s, "");
	web = revnat_of(fx, "10.96.0.10");
	api = revnat_of(fx, "10.96.0.11");
	assert_int_not_equal(web, api);

	/* .5 leaves web but stays in api: web's sockets to it only. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	snprintf(want, sizeof(want), "10.244.0.5:8080/6@%u", web);
	assert_string_equal(l.s, want);

	/* .6 terminating but serving: kept for existing flows, nothing yet. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.7", "true") ",{\"addresses\":[\"10.244.0.6\"],\"conditions\":"
		  "{\"ready\":false,\"serving\":true,\"terminating\":true}}]");
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(l.s, want);

	/* .6 gone from the slice: web's sockets, then any (deleted from the map). */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.7", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	snprintf(want, sizeof(want),
		 "10.244.0.5:8080/6@%u,10.244.0.6:8080/6@%u,10.244.0.6:8080/6@0", web, web);
	assert_string_equal(l.s, want);

	/* api deleted with its slice: the sockets through it, and its last
	 * backend .5 goes from the map. */
	assert_int_equal(store_delete_service(&fx->store, "shop", "api"), 0);
	assert_int_equal(sync_all(fx), 0);
	snprintf(want, sizeof(want),
		 "10.244.0.5:8080/6@%u,10.244.0.6:8080/6@%u,10.244.0.6:8080/6@0,"
		 "10.244.0.5:8080/6@%u,10.244.0.5:8080/6@0", web, web, api);
	assert_string_equal(l.s, want);
	assert_false(l.in_map_any);

	/* web deleted while .7 is also in no other service. */
	assert_int_equal(store_delete_service(&fx->store, "shop", "web"), 0);
	assert_int_equal(sync_all(fx), 0);
	snprintf(want, sizeof(want), ",10.244.0.7:8080/6@%u,10.244.0.7:8080/6@0", web);
	assert_non_null(strstr(l.s, want));
}

static void test_terminating_fallback(void **state)
{
	struct fixture *fx = *state;
	const struct lb4_service *s;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[{\"addresses\":[\"10.244.0.5\"],\"conditions\":{\"ready\":false,"
		  "\"serving\":true,\"terminating\":true}},"
		  "{\"addresses\":[\"10.244.0.6\"],\"conditions\":{\"ready\":false,"
		  "\"serving\":false,\"terminating\":true}}]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->count, 1);
	s = slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 1);
	assert_non_null(s);
	assert_int_equal(backend(fx, s->backend_id)->state, BACKEND_STATE_TERMINATING);
}

static void test_delete_service_leaves_nothing(void **state)
{
	struct fixture *fx = *state;

	put_service(fx, "shop", "dns", "10.96.0.53",
		    "[{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},"
		    "{\"name\":\"dns-tcp\",\"port\":53,\"protocol\":\"TCP\"}]");
	put_slice(fx, "shop", "dns-1", "dns",
		  "[{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"},"
		  "{\"name\":\"dns-tcp\",\"port\":5353,\"protocol\":\"TCP\"}]",
		  "[" EP("10.244.0.21", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 4);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);

	assert_int_equal(store_delete_service(&fx->store, "shop", "dns"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_REVNAT), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_shared_backend_refcount(void **state)
{
	struct fixture *fx = *state;

	/* Two services, one pod: one backend entry, removed with the last user. */
	put_service(fx, "shop", "a", "10.96.0.1", WEB_PORTS);
	put_service(fx, "shop", "b", "10.96.0.2", WEB_PORTS);
	put_slice(fx, "shop", "a-1", "a", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	put_slice(fx, "shop", "b-1", "b", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 1);
	assert_int_equal(store_delete_service(&fx->store, "shop", "a"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 1);
	assert_int_equal(store_delete_slice(&fx->store, "shop", "b-1"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 0);
}

static void test_conflicting_frontend_reported(void **state)
{
	struct fixture *fx = *state;
	const struct lb_failure *f;

	put_service(fx, "shop", "a", "10.96.0.1", WEB_PORTS);
	assert_int_equal(sync_all(fx), 0);
	put_service(fx, "shop", "b", "10.96.0.1", WEB_PORTS);
	assert_int_equal(sync_all(fx), 1);
	f = ht_get(&fx->lb.failures, "shop/b", 6);
	assert_non_null(f);
	assert_non_null(strstr(f->msg, "already used by service shop/a"));
	/* The first service is untouched. */
	assert_non_null(slot(fx, "10.96.0.1", 80, IPPROTO_TCP, 0));
}

static void test_map_full_reported_and_recovered(void **state)
{
	struct fixture *fx = *state;
	const struct lb_failure *f;
	uint64_t next;
	char got[256];

	fx->maps.capacity[LB_MAP_BACKENDS] = 1;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 1);
	f = ht_get(&fx->lb.failures, "shop/web", 8);
	assert_non_null(f);
	assert_int_equal(f->err, -E2BIG);
	assert_non_null(strstr(f->msg, "backend 10.244.0.6:8080/TCP in lb4_backends: map full"));
	assert_int_equal(fx->maps.inconsistencies, 0);

	/* Backing off: not retried before its time. */
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms(), &next), 1);
	assert_true(next > lb_now_ms());

	/* Room is made; the retry (when due) realizes it fully. */
	fx->maps.capacity[LB_MAP_BACKENDS] = 16;
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, next, &next), 0);
	assert_null(ht_get(&fx->lb.failures, "shop/web", 8));
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080");
}

/* The services map filled by the slots of a service whose slot 0 never fit:
 * after a scale-down the stale slots go first, so slot 0 fits. */
static void test_scale_down_after_slots_filled_the_map(void **state)
{
	struct fixture *fx = *state;
	char eps[4096], got[512];
	size_t off = 0;
	uint64_t next;

	fx->maps.capacity[LB_MAP_SERVICES] = 16;
	put_service(fx, "shop", "big", "10.96.0.10", WEB_PORTS);
	off += snprintf(eps + off, sizeof(eps) - off, "[");
	for (int i = 0; i < 20; i++)
		off += snprintf(eps + off, sizeof(eps) - off, "%s{\"addresses\":[\"10.244.0.%d\"],"
				"\"conditions\":{\"ready\":true}}", i ? "," : "", 10 + i);
	snprintf(eps + off, sizeof(eps) - off, "]");
	put_slice(fx, "shop", "big-1", "big", WEB_EPS_PORTS, eps);
	assert_int_equal(sync_all(fx), 1);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 16);
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0));

	/* Ten endpoints: 11 entries, which fit once the stale slots are gone. */
	eps[0] = '\0';
	off = snprintf(eps, sizeof(eps), "[");
	for (int i = 0; i < 10; i++)
		off += snprintf(eps + off, sizeof(eps) - off, "%s{\"addresses\":[\"10.244.0.%d\"],"
				"\"conditions\":{\"ready\":true}}", i ? "," : "", 10 + i);
	snprintf(eps + off, sizeof(eps) - off, "]");
	put_slice(fx, "shop", "big-1", "big", WEB_EPS_PORTS, eps);
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, UINT64_MAX / 2, &next), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 11);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->count, 10);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_transient_error_keeps_mirror_true(void **state)
{
	struct fixture *fx = *state;
	char got[256];
	uint64_t next;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	fx->maps.fail_next = -EBUSY;
	assert_int_equal(sync_all(fx), 1);
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms() + 60000, &next), 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080");
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);
}

static void test_restart_keeps_wanted_prunes_stale(void **state)
{
	struct fixture *fx = *state;
	struct removed_log l = {.maps = &fx->maps};
	struct lb_reconciler fresh;
	struct store st2;
	struct k8s_service svc = {};
	char want[128];
	__u32 gone_revnat;
	size_t before;
	char err[256];
	cJSON *obj;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_service(fx, "shop", "gone", "10.96.0.11", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	put_slice(fx, "shop", "gone-1", "gone", WEB_EPS_PORTS, "[" EP("10.244.0.9", "true") "]");
	assert_int_equal(sync_all(fx), 0);

	gone_revnat = revnat_of(fx, "10.96.0.11");

	/* A new agent: same maps, a fresh store in which "gone" is gone. */
	assert_int_equal(lb_reconciler_init(&fresh, &fake_ops, &fx->maps), 0);
	assert_int_equal(lb_reconciler_restore(&fresh), 0);
	fresh.backend_removed = log_removed;
	fresh.backend_removed_ctx = &l;
	assert_int_equal(lb_reconciler_frontends(&fresh), 2);
	assert_int_equal(store_init(&st2), 0);
	obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"},"
			  "\"spec\":{\"clusterIP\":\"10.96.0.10\",\"ports\":" WEB_PORTS "}}");
	assert_int_equal(k8s_service_from_json(obj, &svc, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_int_equal(store_set_service(&st2, &svc), 0);
	{
		struct k8s_endpointslice eps = {};

		obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web-abc\","
				  "\"labels\":{\"kubernetes.io/service-name\":\"web\"}},"
				  "\"addressType\":\"IPv4\",\"ports\":" WEB_EPS_PORTS ","
				  "\"endpoints\":[" EP("10.244.0.6", "true") ","
				  EP("10.244.0.5", "true") "]}");
		assert_int_equal(k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)), 0);
		cJSON_Delete(obj);
		assert_int_equal(store_set_slice(&st2, &eps), 0);
	}
	before = fx->maps.n_ops;
	{
		uint64_t next;

		assert_int_equal(lb_reconcile_dirty(&fresh, &st2, lb_now_ms(), &next), 0);
	}
	/* Still-wanted entries untouched: not one write, no removal told. */
	assert_int_equal(fx->maps.n_ops, before);
	assert_string_equal(l.s, "");
	/* The prune removes the stale frontend: the sockets through it go. */
	assert_int_equal(lb_reconciler_prune(&fresh), 0);
	snprintf(want, sizeof(want), "10.244.0.9:8080/6@%u,10.244.0.9:8080/6@0", gone_revnat);
	assert_string_equal(l.s, want);
	assert_null(slot(fx, "10.96.0.11", 80, IPPROTO_TCP, 0));
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 3);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_REVNAT), 1);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_SERVICES), 5);
	assert_int_equal(fx->maps.inconsistencies, 0);
	lb_reconciler_destroy(&fresh);
	store_destroy(&st2);
}

/* ---- NodePort, traffic policies, affinity, terminating, Maglev ---- */

static void put_node_self(struct fixture *fx, const char *name, const char *internal,
			  const char *external)
{
	char json[1024], err[256] = "";
	struct k8s_node node;
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"%s\"},\"status\":{\"addresses\":["
		 "{\"type\":\"InternalIP\",\"address\":\"%s\"},"
		 "{\"type\":\"ExternalIP\",\"address\":\"%s\"}]}}",
		 name, internal, external);
	obj = cJSON_Parse(json);
	assert_int_equal(k8s_node_from_json(obj, &node, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_int_equal(store_set_node(&fx->store, &node), 0);
}

/* A service from its whole "spec" JSON, and optional annotations JSON. */
static void put_service_spec(struct fixture *fx, const char *name, const char *spec,
			     const char *annotations)
{
	char json[4096], err[256] = "";
	struct k8s_service svc = {};
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"%s\",\"annotations\":%s},"
		 "\"spec\":%s}", name, annotations ? annotations : "{}", spec);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_service_from_json(obj, &svc, err, sizeof(err)))
		fail_msg("service: %s", err);
	assert_int_equal(store_set_service_algo(&fx->store, &svc, agent_service_lb_algorithm(obj)),
			 0);
	cJSON_Delete(obj);
}

#define EPN(ip, node, ready) \
	"{\"addresses\":[\"" ip "\"],\"nodeName\":\"" node "\",\"conditions\":{\"ready\":" ready "}}"
#define NP_SPEC(policy) \
	"{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.20\",\"externalIPs\":[\"203.0.113.9\"]," \
	"\"externalTrafficPolicy\":\"" policy "\",\"ports\":[{\"name\":\"http\",\"port\":80," \
	"\"nodePort\":30080,\"protocol\":\"TCP\"}]}"

static void np_cluster(struct fixture *fx, const char *policy_spec)
{
	store_set_self_name(&fx->store, "node-a");
	put_node_self(fx, "node-a", "192.168.1.10", "198.51.100.10");
	put_service_spec(fx, "np", policy_spec, NULL);
	put_slice(fx, "shop", "np-1", "np", WEB_EPS_PORTS,
		  "[" EPN("10.244.0.5", "node-a", "true") "," EPN("10.244.1.6", "node-b", "true")
		  "]");
}

static void test_node_port_frontends(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	np_cluster(fx, NP_SPEC("Cluster"));
	assert_int_equal(sync_all(fx), 0);
	/* On both node addresses, at the nodePort, with all backends. */
	frontend_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");
	frontend_backends(fx, "198.51.100.10", 30080, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");
	assert_int_equal(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0)->flags,
			 SVC_FLAG_NODE_PORT);
	assert_int_equal(slot(fx, "10.96.0.20", 80, IPPROTO_TCP, 0)->flags, SVC_FLAG_CLUSTER_IP);
	assert_null(slot(fx, "192.168.1.10", 80, IPPROTO_TCP, 0));

	/* The node's address changes: the NodePort frontends move with it. */
	put_node_self(fx, "node-a", "192.168.1.99", "198.51.100.10");
	assert_int_equal(sync_all(fx), 0);
	assert_null(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0));
	assert_non_null(slot(fx, "192.168.1.99", 30080, IPPROTO_TCP, 0));
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* A type change rewrites the frontends; ExternalName and IPv6-only leave none. */
static void test_type_changes_and_unserved_services(void **state)
{
	struct fixture *fx = *state;
	const struct store_service *ss;
	char got[256];

	np_cluster(fx, NP_SPEC("Cluster"));
	assert_int_equal(sync_all(fx), 0);
	assert_non_null(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0));
	put_service_spec(fx, "np",
			 "{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.20\",\"ports\":[{"
			 "\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]}", NULL);
	assert_int_equal(sync_all(fx), 0);
	assert_null(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0));
	assert_null(slot(fx, "203.0.113.9", 80, IPPROTO_TCP, 0));
	frontend_backends(fx, "10.96.0.20", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");

	put_service_spec(fx, "np", "{\"type\":\"ExternalName\",\"externalName\":\"x.example\"}",
			 NULL);
	assert_int_equal(sync_all(fx), 0);
	assert_null(slot(fx, "10.96.0.20", 80, IPPROTO_TCP, 0));
	ss = store_get_service(&fx->store, "shop/np");
	assert_string_equal(lb_service_unserved(&ss->svc), "ExternalName");

	put_service_spec(fx, "np", "{\"clusterIPs\":[\"fd00::20\"],\"ports\":[{\"port\":80}]}",
			 NULL);
	ss = store_get_service(&fx->store, "shop/np");
	assert_string_equal(lb_service_unserved(&ss->svc), "IPv6-only");
	put_service_spec(fx, "np", "{\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}", NULL);
	ss = store_get_service(&fx->store, "shop/np");
	assert_string_equal(lb_service_unserved(&ss->svc), "headless");
	put_service_spec(fx, "np", "{\"clusterIP\":\"10.96.0.20\"}", NULL);
	ss = store_get_service(&fx->store, "shop/np");
	assert_string_equal(lb_service_unserved(&ss->svc), "no ports");
	put_service_spec(fx, "np",
			 "{\"clusterIP\":\"10.96.0.20\",\"ports\":[{\"port\":80,"
			 "\"protocol\":\"SCTP\"}]}", NULL);
	ss = store_get_service(&fx->store, "shop/np");
	assert_string_equal(lb_service_unserved(&ss->svc), "no TCP or UDP port");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* publishNotReadyAddresses: not-ready endpoints are backends like ready ones. */
static void test_publish_not_ready_addresses(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	store_set_self_name(&fx->store, "node-a");
	put_service_spec(fx, "web",
			 "{\"clusterIP\":\"10.96.0.30\",\"ports\":[{\"name\":\"http\","
			 "\"port\":80,\"protocol\":\"TCP\"}]}", NULL);
	put_slice(fx, "shop", "web-1", "web", WEB_EPS_PORTS,
		  "[" EPN("10.244.0.5", "node-a", "false") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.30", 80, IPPROTO_TCP, 0)->count, 0);
	put_service_spec(fx, "web",
			 "{\"clusterIP\":\"10.96.0.30\",\"publishNotReadyAddresses\":true,"
			 "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]}",
			 NULL);
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.30", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
}

static void test_external_traffic_policy_local(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	np_cluster(fx, NP_SPEC("Local"));
	assert_int_equal(sync_all(fx), 0);
	/* NodePort and externalIP: local backends only, flagged. */
	frontend_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	assert_int_equal(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0)->flags,
			 SVC_FLAG_NODE_PORT | SVC_FLAG_EXT_LOCAL);
	frontend_backends(fx, "203.0.113.9", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	assert_true(slot(fx, "203.0.113.9", 80, IPPROTO_TCP, 0)->flags & SVC_FLAG_EXT_LOCAL);
	/* The ClusterIP is internal traffic: every backend, no flag. */
	frontend_backends(fx, "10.96.0.20", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");
	assert_int_equal(slot(fx, "10.96.0.20", 80, IPPROTO_TCP, 0)->flags, SVC_FLAG_CLUSTER_IP);

	/* The local pod goes: count 0 (the datapath drops with a reason). */
	put_slice(fx, "shop", "np-1", "np", WEB_EPS_PORTS, "[" EPN("10.244.1.6", "node-b", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0)->count, 0);
	assert_int_equal(slot(fx, "10.96.0.20", 80, IPPROTO_TCP, 0)->count, 1);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* externalTrafficPolicy: Local binds outside clients only: the node's own pods
 * and host reach every endpoint through the external frontends' internal
 * scope (kube-proxy sends them to the cluster-wide endpoints, whatever
 * internalTrafficPolicy says). */
static void test_external_traffic_policy_local_internal_scope(void **state)
{
	struct fixture *fx = *state;
	const struct lb4_service *ext, *in;
	struct lb_reconciler fresh;
	size_t before;
	char got[256];

	np_cluster(fx, NP_SPEC("Local"));
	assert_int_equal(sync_all(fx), 0);
	scope_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");
	scope_backends(fx, "203.0.113.9", 80, IPPROTO_TCP, LB_SCOPE_INT, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");
	ext = slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0);
	in = slot_in(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, 0);
	/* The external entry says there are two scopes; the internal one is
	 * Cluster (no EXT_LOCAL: none left means a reject, not a local drop). */
	assert_int_equal(ext->flags, SVC_FLAG_NODE_PORT | SVC_FLAG_EXT_LOCAL);
	assert_int_equal(in->flags, SVC_FLAG_NODE_PORT);
	assert_int_not_equal(in->rev_nat_index, ext->rev_nat_index);
	/* The ClusterIP has one scope. */
	assert_null(slot_in(fx, "10.96.0.20", 80, IPPROTO_TCP, LB_SCOPE_INT, 0));

	/* internalTrafficPolicy: Local as well: the ClusterIP goes local, the
	 * internal scope of the NodePort does not. */
	put_service_spec(fx, "np",
			 "{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.20\","
			 "\"externalIPs\":[\"203.0.113.9\"],\"externalTrafficPolicy\":\"Local\","
			 "\"internalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\","
			 "\"port\":80,\"nodePort\":30080,\"protocol\":\"TCP\"}]}", NULL);
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.20", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	scope_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.1.6:8080");

	/* The local endpoint terminates (still serving): outside clients get it,
	 * no ready one being left here; the node's own clients the ready one. */
	put_slice(fx, "shop", "np-1", "np", WEB_EPS_PORTS,
		  "[{\"addresses\":[\"10.244.0.5\"],\"nodeName\":\"node-a\",\"conditions\":"
		  "{\"ready\":false,\"serving\":true,\"terminating\":true}},"
		  EPN("10.244.1.6", "node-b", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	scope_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, got, sizeof(got));
	assert_string_equal(got, "10.244.1.6:8080");

	/* A restarted agent finds both scopes in the maps and writes nothing. */
	assert_int_equal(lb_reconciler_init(&fresh, &fake_ops, &fx->maps), 0);
	assert_int_equal(lb_reconciler_restore(&fresh), 0);
	assert_int_equal(lb_reconciler_frontends(&fresh), lb_reconciler_frontends(&fx->lb));
	before = fx->maps.n_ops;
	assert_int_equal(lb_reconcile_service(&fresh, &fx->store, "shop/np"), 0);
	assert_int_equal(fx->maps.n_ops, before);
	assert_int_equal(lb_reconciler_prune(&fresh), 0);
	assert_int_equal(fx->maps.n_ops, before);
	assert_non_null(slot_in(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, 0));
	lb_reconciler_destroy(&fresh);

	/* Back to Cluster: the internal scopes go. */
	put_service_spec(fx, "np", NP_SPEC("Cluster"), NULL);
	assert_int_equal(sync_all(fx), 0);
	assert_null(slot_in(fx, "192.168.1.10", 30080, IPPROTO_TCP, LB_SCOPE_INT, 0));
	assert_null(slot_in(fx, "203.0.113.9", 80, IPPROTO_TCP, LB_SCOPE_INT, 0));
	frontend_backends(fx, "192.168.1.10", 30080, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.1.6:8080");
	assert_int_equal(slot(fx, "192.168.1.10", 30080, IPPROTO_TCP, 0)->flags,
			 SVC_FLAG_NODE_PORT);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_internal_traffic_policy_local_and_affinity(void **state)
{
	struct fixture *fx = *state;
	const struct lb4_service *s0;
	char got[256];

	store_set_self_name(&fx->store, "node-a");
	put_service_spec(fx, "itp",
			 "{\"clusterIP\":\"10.96.0.30\",\"internalTrafficPolicy\":\"Local\","
			 "\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":"
			 "{\"timeoutSeconds\":600}},\"ports\":" WEB_PORTS "}", NULL);
	put_slice(fx, "shop", "itp-1", "itp", WEB_EPS_PORTS,
		  "[" EPN("10.244.0.5", "node-a", "true") "," EPN("10.244.1.6", "node-b", "true")
		  "]");
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.30", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	s0 = slot(fx, "10.96.0.30", 80, IPPROTO_TCP, 0);
	assert_int_equal(s0->flags, SVC_FLAG_CLUSTER_IP | SVC_FLAG_INT_LOCAL | SVC_FLAG_AFFINITY);
	assert_int_equal(s0->affinity_timeout, 600);
}

static void test_terminating_backends_kept_for_existing_flows(void **state)
{
	struct fixture *fx = *state;
	struct lb4_backend *b;
	char got[256];
	__u32 id;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	/* .6 starts terminating, still serving: out of the slots, still a backend. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") ",{\"addresses\":[\"10.244.0.6\"],\"conditions\":"
		  "{\"ready\":false,\"serving\":true,\"terminating\":true}}]");
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 2);
	b = NULL;
	for (id = 1; id < 16 && !b; id++) {
		const struct lb4_backend *c = backend(fx, id);

		if (c && c->address == htonl(0x0af40006))
			b = (struct lb4_backend *)c;
	}
	assert_non_null(b);
	assert_int_equal(b->state, BACKEND_STATE_TERMINATING);
	/* It stops serving: now it goes. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") ",{\"addresses\":[\"10.244.0.6\"],\"conditions\":"
		  "{\"ready\":false,\"serving\":false,\"terminating\":true}}]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 1);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* Whether every frontend of the service is realized, as agentctl service list asks. */
static bool realized(struct fixture *fx, const char *key)
{
	struct lb_service_spec spec;
	bool all = true;

	assert_int_equal(lb_desired_service(&fx->store, key, false, &spec), 0);
	assert_true(spec.n_frontends > 0);
	for (size_t i = 0; i < spec.n_frontends; i++)
		all = all && lb_reconciler_realized(&fx->lb, key, &spec.frontends[i]);
	lb_service_spec_free(&spec);
	return all;
}

static void test_realized_follows_the_maps(void **state)
{
	struct fixture *fx = *state;
	uint64_t next;

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_false(realized(fx, "shop/web"));		/* not reconciled yet */
	assert_int_equal(sync_all(fx), 0);
	assert_true(realized(fx, "shop/web"));

	/* A new endpoint the maps do not have yet. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","
		  EP("10.244.0.7", "true") "]");
	assert_false(realized(fx, "shop/web"));
	/* The map is full: the write fails and the frontend stays unrealized. */
	fx->maps.capacity[LB_MAP_BACKENDS] = 2;
	assert_int_equal(sync_all(fx), 1);
	assert_false(realized(fx, "shop/web"));
	fx->maps.capacity[LB_MAP_BACKENDS] = 16;
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, UINT64_MAX / 2, &next), 0);
	assert_true(realized(fx, "shop/web"));

	/* A terminating, serving endpoint: kept, in state terminating. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") ",{\"addresses\":[\"10.244.0.6\"],\"conditions\":"
		  "{\"ready\":false,\"serving\":true,\"terminating\":true}}]");
	assert_false(realized(fx, "shop/web"));
	assert_int_equal(sync_all(fx), 0);
	assert_true(realized(fx, "shop/web"));

	/* Another service claiming the same frontend is never realized by it. */
	put_service(fx, "shop", "web2", "10.96.0.10", WEB_PORTS);
	assert_int_equal(sync_all(fx), 1);
	assert_false(realized(fx, "shop/web2"));
	assert_true(realized(fx, "shop/web"));
}

static const struct lb4_maglev_table *maglev_of(struct fixture *fx, const char *ip, int port)
{
	const struct lb4_service *s0 = slot(fx, ip, port, IPPROTO_TCP, 0);

	assert_non_null(s0);
	return fake_lookup(&fx->maps, LB_MAP_MAGLEV, &s0->rev_nat_index);
}

static void test_maglev_tables(void **state)
{
	struct fixture *fx = *state;
	const struct lb4_maglev_table *t;
	const struct lb4_service *s0;
	size_t i, before, first_table_op = 0, first_slot0_op = 0;

	/* By annotation, while the agent default is random. */
	put_service_spec(fx, "mg", "{\"clusterIP\":\"10.96.0.40\",\"ports\":" WEB_PORTS "}",
			 "{\"service.cilium.io/lb-algorithm\":\"maglev\"}");
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "mg-1", "mg", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	s0 = slot(fx, "10.96.0.40", 80, IPPROTO_TCP, 0);
	assert_int_equal(s0->flags2, SVC_FLAG2_MAGLEV);
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->flags2, 0);
	t = maglev_of(fx, "10.96.0.40", 80);
	assert_non_null(t);
	for (i = 0; i < LB_MAGLEV_TABLE_SIZE; i++)
		assert_true(t->backend_ids[i] == slot(fx, "10.96.0.40", 80, IPPROTO_TCP, 1)->backend_id ||
			    t->backend_ids[i] == slot(fx, "10.96.0.40", 80, IPPROTO_TCP, 2)->backend_id);
	/* Written whole before slot 0 named the flag. */
	for (i = 0; i < fx->maps.n_ops; i++) {
		if (fx->maps.log[i].map == LB_MAP_MAGLEV && !first_table_op)
			first_table_op = i + 1;
		if (fx->maps.log[i].map == LB_MAP_SERVICES && !first_slot0_op) {
			struct lb4_key k;

			memcpy(&k, fx->maps.log[i].key, sizeof(k));
			if (k.backend_slot == 0 && k.address == htonl(0x0a600028))
				first_slot0_op = i + 1;
		}
	}
	assert_true(first_table_op && first_table_op < first_slot0_op);

	/* Unchanged backends: the table is not rewritten. */
	before = fake_ops_count(&fx->maps, 'U', LB_MAP_MAGLEV);
	put_slice(fx, "shop", "mg-1", "mg", WEB_EPS_PORTS,
		  "[" EP("10.244.0.6", "true") "," EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_MAGLEV), before);

	/* A backend added: rewritten (once) and consistent at every step. */
	put_slice(fx, "shop", "mg-1", "mg", WEB_EPS_PORTS,
		  "[" EP("10.244.0.6", "true") "," EP("10.244.0.5", "true") ","
		  EP("10.244.0.7", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_MAGLEV), before + 1);

	/* Back to random: the flag goes first, then the table. */
	put_service_spec(fx, "mg", "{\"clusterIP\":\"10.96.0.40\",\"ports\":" WEB_PORTS "}",
			 "{\"service.cilium.io/lb-algorithm\":\"random\"}");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.40", 80, IPPROTO_TCP, 0)->flags2, 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_MAGLEV), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_maglev_default_restart_and_delete(void **state)
{
	struct fixture *fx = *state;
	struct lb_reconciler fresh;
	size_t before;
	uint64_t next;

	fx->lb.maglev_default = true;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_non_null(maglev_of(fx, "10.96.0.10", 80));

	/* A restarted agent: same table, not rewritten. */
	assert_int_equal(lb_reconciler_init(&fresh, &fake_ops, &fx->maps), 0);
	fresh.maglev_default = true;
	assert_int_equal(lb_reconciler_restore(&fresh), 0);
	before = fx->maps.n_ops;
	store_mark_dirty(&fx->store, "shop/web");
	assert_int_equal(lb_reconcile_dirty(&fresh, &fx->store, lb_now_ms(), &next), 0);
	assert_int_equal(lb_reconciler_prune(&fresh), 0);
	assert_int_equal(fx->maps.n_ops, before);

	/* Deleted: slot 0 first, the table after it. */
	assert_int_equal(store_delete_service(&fx->store, "shop", "web"), 0);
	assert_int_equal(lb_reconcile_dirty(&fresh, &fx->store, lb_now_ms(), &next), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_MAGLEV), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
	lb_reconciler_destroy(&fresh);
}

static void test_maglev_table_write_failure_retried(void **state)
{
	struct fixture *fx = *state;
	uint64_t next;

	fx->lb.maglev_default = true;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	fx->maps.fail_next = -ENOMEM;
	fx->maps.fail_map_next = LB_MAP_MAGLEV;
	fx->maps.fail_map_set = true;
	assert_int_equal(sync_all(fx), 1);
	/* Slot 0 never named a table that is not there. */
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0));
	assert_non_null(strstr(((struct lb_failure *)ht_get(&fx->lb.failures, "shop/web", 8))->msg,
			       "table in lb4_maglev"));
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms() + 60000, &next), 0);
	assert_non_null(maglev_of(fx, "10.96.0.10", 80));
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_maglev_without_map_falls_back_to_random(void **state)
{
	struct fixture *fx = *state;

	/* No tc datapath yet: the service is served (random), not refused. */
	fx->lb.maglev_default = true;
	fx->lb.maglev_available = false;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->flags2, 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_MAGLEV), 0);
	/* The map arrives: every service is looked at again. */
	fx->lb.maglev_available = true;
	store_mark_all_dirty(&fx->store);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0)->flags2, SVC_FLAG2_MAGLEV);
	assert_non_null(maglev_of(fx, "10.96.0.10", 80));
	assert_int_equal(fx->maps.inconsistencies, 0);
}


/* ---- the periodic full pass ---- */

/* A copy of the fake maps' entries, to compare before and after. */
static bool maps_equal(const struct fake_maps *a, const struct fake_maps *b)
{
	for (int m = 0; m < LB_MAP__NR; m++) {
		if (fake_count(a, m) != fake_count(b, m))
			return false;
		for (size_t i = 0; i < FAKE_MAX_ENTRIES; i++) {
			const void *v;

			if (!a->e[m][i].used)
				continue;
			v = fake_lookup(b, m, a->e[m][i].key);
			if (!v)
				return false;
			if (m == LB_MAP_MAGLEV ? memcmp(v, &a->maglev[i], sizeof(a->maglev[i]))
					       : memcmp(v, a->e[m][i].value, fake_value_size[m]))
				return false;
		}
	}
	return true;
}

/* Behind the agent's back, as bpftool would. */
static void poke_delete(struct fixture *fx, enum lb_map_id m, const void *key)
{
	struct fake_entry *e = fake_find(&fx->maps, m, key);

	assert_non_null(e);
	e->used = false;
}

static void *poke_value(struct fixture *fx, enum lb_map_id m, const void *key)
{
	struct fake_entry *e = fake_find(&fx->maps, m, key);

	assert_non_null(e);
	return m == LB_MAP_MAGLEV ? (void *)&fx->maps.maglev[e - fx->maps.e[m]] : e->value;
}

static struct lb4_key svc_k(const char *ip, int port, __u16 s)
{
	struct lb4_key k = { .dport = htons(port), .proto = IPPROTO_TCP, .backend_slot = s };

	inet_pton(AF_INET, ip, &k.address);
	return k;
}

static void test_resync_repairs_drift(void **state)
{
	struct fixture *fx = *state;
	static struct fake_maps want;
	struct lb4_key k0 = svc_k("10.96.0.10", 80, 0), k2 = svc_k("10.96.0.10", 80, 2);
	struct lb4_key kmg = svc_k("10.96.0.40", 80, 0), k3 = svc_k("10.96.0.10", 80, 3);
	struct lb4_key kmg1 = svc_k("10.96.0.40", 80, 1), kmg2 = svc_k("10.96.0.40", 80, 2);
	struct lb4_service *sv;
	struct lb4_backend *bv, stray_be = { .address = htonl(0x0afe0001), .port = htons(1) };
	struct lb4_service stray0 = { .count = 1, .rev_nat_index = 999 };
	struct lb4_service stray1 = { .backend_id = 7777, .rev_nat_index = 999 };
	struct lb4_key sk0 = svc_k("10.96.9.9", 80, 0), sk1 = svc_k("10.96.9.9", 80, 1);
	__u32 stray_id = 7777, be_id, rev, mg_rev;
	struct lb4_maglev_table *t;
	size_t ops;
	char got[256];

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-1", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","
		  EP("10.244.0.7", "true") "]");
	put_service_spec(fx, "mg", "{\"clusterIP\":\"10.96.0.40\",\"ports\":" WEB_PORTS "}",
			 "{\"service.cilium.io/lb-algorithm\":\"maglev\"}");
	put_slice(fx, "shop", "mg-1", "mg", WEB_EPS_PORTS,
		  "[" EP("10.244.1.5", "true") "," EP("10.244.1.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	/* Before the prune, a pass checks nothing (restored state unclaimed). */
	ops = fx->maps.n_ops;
	assert_int_equal(lb_reconciler_resync(&fx->lb), 0);
	assert_int_equal(lb_reconciler_prune(&fx->lb), 0);
	/* In sync: a pass reads only. */
	assert_int_equal(lb_reconciler_resync(&fx->lb), 0);
	assert_int_equal(fx->maps.n_ops, ops);
	want = fx->maps;

	/* Missing: a slot, a backend (its slot kept pointing at it: the pass
	 * writes the backend back before anything else), the rev-NAT entry,
	 * slot 0, the Maglev table. Changed: a slot's backend id, slot 0's
	 * count, a backend's port, a table. */
	sv = poke_value(fx, LB_MAP_SERVICES, &k2);
	be_id = sv->backend_id;
	poke_delete(fx, LB_MAP_BACKENDS, &be_id);
	rev = sv->rev_nat_index;
	poke_delete(fx, LB_MAP_REVNAT, &rev);
	sv = poke_value(fx, LB_MAP_SERVICES, &k3);
	sv->backend_id = 4242;
	sv = poke_value(fx, LB_MAP_SERVICES, &k0);
	sv->count = 9;
	mg_rev = ((struct lb4_service *)poke_value(fx, LB_MAP_SERVICES, &kmg))->rev_nat_index;
	t = poke_value(fx, LB_MAP_MAGLEV, &mg_rev);
	t->backend_ids[17] = 4242;
	sv = poke_value(fx, LB_MAP_SERVICES, &kmg1);
	bv = poke_value(fx, LB_MAP_BACKENDS, &sv->backend_id);
	bv->port = htons(1);
	poke_delete(fx, LB_MAP_SERVICES, &kmg2);
	/* Stale: a whole service the store does not hold, its backend. */
	assert_int_equal(fake_ops.update(&fx->maps, LB_MAP_BACKENDS, &stray_id, &stray_be), 0);
	assert_int_equal(fake_ops.update(&fx->maps, LB_MAP_SERVICES, &sk1, &stray1), 0);
	assert_int_equal(fake_ops.update(&fx->maps, LB_MAP_SERVICES, &sk0, &stray0), 0);
	fx->maps.inconsistencies = 0;
	ops = fx->maps.n_ops;

	/* 7 rewritten (backend, rev-NAT, slot 3, slot 0, table, backend port,
	 * mg slot 2) and 3 deleted (the stray slot 0, slot 1, backend). */
	assert_int_equal(lb_reconciler_resync(&fx->lb), 10);
	assert_int_equal(fx->lb.stats.repairs, 10);
	assert_int_equal(fx->lb.stats.last_repairs, 10);
	assert_true(maps_equal(&fx->maps, &want));
	/* The drift itself left readers inconsistent states; the repair order
	 * ends them: the backend first, slot 0 last of the rewrites; the stray
	 * service's slot 0 deleted before its slot, its slot before its backend. */
	fx->maps.inconsistencies = 0;
	fake_check(&fx->maps);
	assert_int_equal(fx->maps.inconsistencies, 0);
	{
		size_t be_w = 0, s0_w = 0, st0 = 0, st1 = 0, stb = 0;

		for (size_t i = ops; i < fx->maps.n_ops; i++) {
			const struct fake_op *o = &fx->maps.log[i];
			struct lb4_key k;

			memcpy(&k, o->key, sizeof(k));
			if (o->op == 'U' && o->map == LB_MAP_BACKENDS && !be_w)
				be_w = i + 1;
			if (o->op == 'U' && o->map == LB_MAP_SERVICES && !memcmp(&k, &k0, sizeof(k)))
				s0_w = i + 1;
			if (o->op == 'D' && o->map == LB_MAP_SERVICES)
				*(k.backend_slot ? &st1 : &st0) = i + 1;
			if (o->op == 'D' && o->map == LB_MAP_BACKENDS)
				stb = i + 1;
		}
		assert_true(be_w && be_w < s0_w && s0_w < st0);
		assert_true(st0 < st1 && st1 < stb);
	}
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080");

	/* Repaired: the next pass finds nothing, writes nothing. */
	ops = fx->maps.n_ops;
	assert_int_equal(lb_reconciler_resync(&fx->lb), 0);
	assert_int_equal(fx->maps.n_ops, ops);
	assert_int_equal(fx->lb.stats.last_repairs, 0);

	/* The incremental path still works on the repaired mirror. */
	put_slice(fx, "shop", "web-1", "web", WEB_EPS_PORTS, "[" EP("10.244.0.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.6:8080");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_resync_write_failure_reported(void **state)
{
	struct fixture *fx = *state;
	struct lb4_key k1 = svc_k("10.96.0.10", 80, 1);

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-1", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_prune(&fx->lb), 0);
	poke_delete(fx, LB_MAP_SERVICES, &k1);
	fx->maps.fail_next = -EBUSY;
	assert_int_equal(lb_reconciler_resync(&fx->lb), -EBUSY);
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 1));
	/* The next pass tries again. */
	assert_int_equal(lb_reconciler_resync(&fx->lb), 1);
	assert_non_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 1));
}

/* ---- batched updates (lb_map_ops.update_batch) ---- */

#define FOUR_EPS                                                                   \
	"[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","              \
	EP("10.244.0.7", "true") "," EP("10.244.0.8", "true") "]"

static size_t updates_logged(const struct fake_maps *f)
{
	size_t n = 0;

	for (int m = 0; m < LB_MAP__NR; m++)
		n += fake_ops_count(f, 'U', m);
	return n;
}

static void test_batched_writes_keep_order(void **state)
{
	struct fixture *fx = *state;
	size_t last_backend = 0, first_slot = SIZE_MAX, slot0_at = 0;
	char got[256];

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 0);
	/* One batch of backends, one of slots; rev-NAT and slot 0 alone. */
	assert_int_equal(fx->maps.n_batches, 2);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_BACKENDS), 4);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_SERVICES), 5);
	for (size_t i = 0; i < fx->maps.n_ops; i++) {
		const struct fake_op *o = &fx->maps.log[i];
		struct lb4_key k;

		if (o->map == LB_MAP_BACKENDS)
			last_backend = i;
		if (o->map != LB_MAP_SERVICES)
			continue;
		memcpy(&k, o->key, sizeof(k));
		if (k.backend_slot && i < first_slot)
			first_slot = i;
		if (!k.backend_slot)
			slot0_at = i;
	}
	assert_true(last_backend < first_slot);
	assert_int_equal(slot0_at, fx->maps.n_ops - 1);
	/* Every element was checked as the datapath would see it. */
	assert_int_equal(fx->maps.inconsistencies, 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080,10.244.0.8:8080");
	/* Counted per element, as single writes are. */
	assert_int_equal(fx->lb.stats.updates, updates_logged(&fx->maps));

	/* Two more: their backends in one batch, their slots in another. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS,
		  "[" EP("10.244.0.5", "true") "," EP("10.244.0.6", "true") ","
		  EP("10.244.0.7", "true") "," EP("10.244.0.8", "true") ","
		  EP("10.244.0.9", "true") "," EP("10.244.0.10", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_batches, 4);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_BACKENDS), 6);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_SERVICES), 8);
	assert_int_equal(fx->maps.inconsistencies, 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080,10.244.0.8:8080,"
				 "10.244.0.9:8080,10.244.0.10:8080");
}

/* Slots the count no longer exposes go in one batched delete, highest first;
 * a batch that stops partway leaves the rest to single deletes. */
static void test_batched_slot_deletes(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_delete_batches, 0);

	/* Four backends to one: slots 4, 3, 2 in one call, after slot 0 says 1. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, "[" EP("10.244.0.5", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_delete_batches, 1);
	assert_non_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 1));
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 2));
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 4));
	assert_int_equal(fx->maps.inconsistencies, 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080");

	/* Back to four, then the batch stops at its second key: the rest one by one. */
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 0);
	fx->maps.batch_fail_err = -EBUSY;
	fx->maps.batch_fail_map = LB_MAP_SERVICES;
	fx->maps.batch_fail_at = 1;
	assert_int_equal(store_delete_service(&fx->store, "shop", "web"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_delete_batches, 2);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
	assert_int_equal(fx->lb.stats.deletes, fake_ops_count(&fx->maps, 'D', LB_MAP_SERVICES) +
						    fake_ops_count(&fx->maps, 'D', LB_MAP_BACKENDS) +
						    fake_ops_count(&fx->maps, 'D', LB_MAP_REVNAT) +
						    fake_ops_count(&fx->maps, 'D', LB_MAP_MAGLEV));
}

static void test_batch_partial_failure_attributed(void **state)
{
	struct fixture *fx = *state;
	const struct lb_failure *f;
	size_t before;
	uint64_t next;
	char got[256];

	/* Rev-NAT is its own map: slots 1..3 fit, slot 4 does not. */
	fx->maps.capacity[LB_MAP_SERVICES] = 3;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 1);
	f = ht_get(&fx->lb.failures, "shop/web", 8);
	assert_non_null(f);
	assert_int_equal(f->err, -E2BIG);
	assert_non_null(strstr(f->msg, "slot 4 in lb4_services: map full"));
	assert_null(slot(fx, "10.96.0.10", 80, IPPROTO_TCP, 0));
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 3);
	/* The batch wrote 3, the single retry of the 4th failed: one error. */
	assert_int_equal(fx->lb.stats.errors, 1);
	assert_int_equal(fx->lb.stats.updates, updates_logged(&fx->maps));

	/* The mirror took slots 1..3: the retry writes slot 4 and slot 0 only. */
	fx->maps.capacity[LB_MAP_SERVICES] = 16;
	before = fake_ops_count(&fx->maps, 'U', LB_MAP_SERVICES);
	assert_int_equal(lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms() + 60000, &next), 0);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_SERVICES) - before, 2);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080,10.244.0.8:8080");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_batch_transient_failure_finished_singly(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	/* The backends batch stops after 2 (EBUSY); the rest go one by one. */
	fx->maps.batch_fail_err = -EBUSY;
	fx->maps.batch_fail_map = LB_MAP_BACKENDS;
	fx->maps.batch_fail_at = 2;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fake_ops_count(&fx->maps, 'U', LB_MAP_BACKENDS), 4);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 4);
	assert_int_equal(lb_reconciler_backends(&fx->lb), 4);
	assert_int_equal(fx->lb.stats.updates, updates_logged(&fx->maps));
	assert_int_equal(fx->lb.stats.errors, 0);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080,10.244.0.8:8080");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_batch_failure_then_single_failure_undone(void **state)
{
	struct fixture *fx = *state;
	const struct lb_failure *f;

	/* Batch stops at the 2nd backend, and its single write fails too
	 * (the map is full after one): only the first stays, then is swept. */
	fx->maps.capacity[LB_MAP_BACKENDS] = 1;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 1);
	f = ht_get(&fx->lb.failures, "shop/web", 8);
	assert_non_null(f);
	assert_non_null(strstr(f->msg, "backend 10.244.0.6:8080/TCP in lb4_backends: map full"));
	/* Mirror and map agree: the unwritten three were never kept. */
	assert_int_equal(lb_reconciler_backends(&fx->lb), fake_count(&fx->maps, LB_MAP_BACKENDS));
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_batch_refused_falls_back(void **state)
{
	struct fixture *fx = *state;
	char got[256];

	fx->maps.batch_refuse = -ENOTSUPP;
	put_service(fx, "shop", "web", "10.96.0.10", WEB_PORTS);
	put_slice(fx, "shop", "web-abc", "web", WEB_EPS_PORTS, FOUR_EPS);
	assert_int_equal(sync_all(fx), 0);
	/* Tried once per map, then entry by entry. */
	assert_int_equal(fx->maps.n_batches, 2);
	assert_true(fx->lb.no_batch[LB_MAP_BACKENDS] && fx->lb.no_batch[LB_MAP_SERVICES]);
	frontend_backends(fx, "10.96.0.10", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080,10.244.0.8:8080");
	assert_int_equal(fx->lb.stats.errors, 0);

	put_service(fx, "shop", "api", "10.96.0.11", WEB_PORTS);
	put_slice(fx, "shop", "api-abc", "api", WEB_EPS_PORTS,
		  "[" EP("10.244.1.5", "true") "," EP("10.244.1.6", "true") "]");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(fx->maps.n_batches, 2);
	frontend_backends(fx, "10.96.0.11", 80, IPPROTO_TCP, got, sizeof(got));
	assert_string_equal(got, "10.244.1.5:8080,10.244.1.6:8080");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_service_with_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slice_before_service, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_up_and_down_minimal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminating_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_service_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_backend_refcount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflicting_frontend_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full_reported_and_recovered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transient_error_keeps_mirror_true, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_wanted_prunes_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_node_port_frontends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_type_changes_and_unserved_services, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_publish_not_ready_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_traffic_policy_local, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_external_traffic_policy_local_internal_scope,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_traffic_policy_local_and_affinity,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminating_backends_kept_for_existing_flows,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_realized_follows_the_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_down_after_slots_filled_the_map, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_maglev_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maglev_default_restart_and_delete, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_maglev_table_write_failure_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resync_repairs_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_write_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maglev_without_map_falls_back_to_random, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batched_writes_keep_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batched_slot_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_partial_failure_attributed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_transient_failure_finished_singly,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_failure_then_single_failure_undone,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_refused_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_removed_hook, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
