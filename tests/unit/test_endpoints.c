// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * From Nodes and CiliumEndpointSlices in the store to the ipcache and
 * endpoints maps and the node routes, against fakes for the maps, the
 * devices and the kernel's routes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "endpoints/reconcile.h"
#include "nodes/routes_sync.h"
#include "store/store.h"
#include "log.h"

/* ---- fakes ---- */

#define FAKE_N 256

struct fake_ep_maps {
	struct {
		bool used;
		_Alignas(8) unsigned char key[8];
		_Alignas(8) unsigned char value[24];
	} e[EP_MAP__NR][FAKE_N];
	size_t capacity[EP_MAP__NR];
	unsigned long updates, deletes;
	int fail_next;
};

static const size_t ksz[EP_MAP__NR] = { sizeof(struct ipcache_key), sizeof(struct endpoint_key) };
static const size_t vsz[EP_MAP__NR] = { sizeof(struct ipcache_value),
					sizeof(struct endpoint_info) };

static int fm_find(struct fake_ep_maps *f, enum ep_map_id m, const void *k)
{
	for (int i = 0; i < FAKE_N; i++)
		if (f->e[m][i].used && !memcmp(f->e[m][i].key, k, ksz[m]))
			return i;
	return -1;
}

static size_t fm_count(struct fake_ep_maps *f, enum ep_map_id m)
{
	size_t n = 0;

	for (int i = 0; i < FAKE_N; i++)
		n += f->e[m][i].used;
	return n;
}

static int fm_update(void *ctx, enum ep_map_id m, const void *k, const void *v)
{
	struct fake_ep_maps *f = ctx;
	int i = fm_find(f, m, k);

	if (f->fail_next) {
		int err = f->fail_next;

		f->fail_next = 0;
		return err;
	}
	if (i < 0) {
		if (fm_count(f, m) >= f->capacity[m])
			return -E2BIG;
		for (i = 0; f->e[m][i].used; i++)
			;
		f->e[m][i].used = true;
		memcpy(f->e[m][i].key, k, ksz[m]);
	}
	memcpy(f->e[m][i].value, v, vsz[m]);
	f->updates++;
	return 0;
}

static int fm_delete(void *ctx, enum ep_map_id m, const void *k)
{
	struct fake_ep_maps *f = ctx;
	int i = fm_find(f, m, k);

	if (i < 0)
		return -ENOENT;
	f->e[m][i].used = false;
	f->deletes++;
	return 0;
}

static int fm_dump(void *ctx, enum ep_map_id m, ep_dump_cb cb, void *cb_ctx)
{
	struct fake_ep_maps *f = ctx;

	for (int i = 0; i < FAKE_N; i++)
		if (f->e[m][i].used) {
			int err = cb(cb_ctx, f->e[m][i].key, f->e[m][i].value);

			if (err)
				return err;
		}
	return 0;
}

static const struct ep_map_ops fm_ops = { fm_update, fm_delete, fm_dump };

/* Devices: pod IP -> ifindex; unknown IPs have no route yet. */
struct fake_devs {
	__be32 ip[16];
	int ifindex[16];
	int n;
	int lookups;
};

static int fd_pod_device(void *ctx, __be32 ip, struct ep_host_dev *out)
{
	struct fake_devs *d = ctx;

	d->lookups++;
	for (int i = 0; i < d->n; i++)
		if (d->ip[i] == ip) {
			out->ifindex = d->ifindex[i];
			snprintf(out->ifname, sizeof(out->ifname), "lxc%d", d->ifindex[i]);
			memset(out->mac, 0xee, 6);
			memset(out->pod_mac, d->ifindex[i], 6);
			return 0;
		}
	return -ENOENT;
}

static const struct ep_dev_ops fd_ops = { fd_pod_device };

static __be32 ip4(const char *s)
{
	__be32 a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void fd_add(struct fake_devs *d, const char *ip, int ifindex)
{
	d->ip[d->n] = ip4(ip);
	d->ifindex[d->n++] = ifindex;
}

/* ---- fixture ---- */

struct fixture {
	struct store store;
	struct ep_reconciler ep;
	struct fake_ep_maps maps;
	struct fake_devs devs;
};

static struct fixture fx_storage;

static int setup(void **state)
{
	struct fixture *fx = &fx_storage;

	log_set_level(LOG_LEVEL_ERROR);
	memset(fx, 0, sizeof(*fx));
	fx->maps.capacity[EP_MAP_IPCACHE] = FAKE_N;
	fx->maps.capacity[EP_MAP_ENDPOINTS] = FAKE_N;
	assert_int_equal(store_init(&fx->store), 0);
	store_set_self_name(&fx->store, "node-a");
	assert_int_equal(ep_reconciler_init(&fx->ep, &fm_ops, &fx->maps, &fd_ops, &fx->devs), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ep_reconciler_destroy(&fx->ep);
	store_destroy(&fx->store);
	return 0;
}

static void put_node(struct store *s, const char *name, const char *ip, const char *cidr)
{
	char json[1024], err[256] = "";
	struct k8s_node node;
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"podCIDRs\":[\"%s\"]},"
		 "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"},"
		 "{\"type\":\"Hostname\",\"address\":\"%s\"}]}}",
		 name, cidr, ip, name);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_node_from_json(obj, &node, err, sizeof(err)))
		fail_msg("node: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_node(s, &node), 0);
}

/* eps: comma-separated "name=ip@node#id" */
static void put_ces(struct store *s, const char *name, const char *ns, const char *eps)
{
	char json[4096], err[256] = "", buf[512];
	struct k8s_cilium_endpointslice ces;
	size_t off;
	cJSON *obj;
	char *save = NULL, *tok;

	off = snprintf(json, sizeof(json),
		       "{\"apiVersion\":\"cilium.io/v2alpha1\",\"kind\":\"CiliumEndpointSlice\","
		       "\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"1\"},"
		       "\"namespace\":\"%s\",\"endpoints\":[", name, ns);
	snprintf(buf, sizeof(buf), "%s", eps);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char n[64], ip[32], node[32];
		unsigned int id;

		assert_int_equal(sscanf(tok, "%63[^=]=%31[^@]@%31[^#]#%u", n, ip, node, &id), 4);
		off += snprintf(json + off, sizeof(json) - off,
				"%s{\"name\":\"%s\",\"id\":%u,\"networking\":{\"addressing\":"
				"[{\"ipv4\":\"%s\"}],\"node\":\"%s\"}}",
				json[off - 1] == '[' ? "" : ",", n, id, ip, node);
	}
	snprintf(json + off, sizeof(json) - off, "]}");
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_cilium_endpointslice_from_json(obj, &ces, err, sizeof(err)))
		fail_msg("ces: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_ces(s, &ces), 0);
}

static const struct ipcache_value *ipc(struct fixture *fx, const char *ip, int len)
{
	struct ipcache_key k = ipcache_key_of(ip4(ip), len);
	int i = fm_find(&fx->maps, EP_MAP_IPCACHE, &k);

	return i < 0 ? NULL : (const void *)fx->maps.e[EP_MAP_IPCACHE][i].value;
}

static const struct endpoint_info *epi(struct fixture *fx, const char *ip)
{
	struct endpoint_key k = { .address = ip4(ip) };
	int i = fm_find(&fx->maps, EP_MAP_ENDPOINTS, &k);

	return i < 0 ? NULL : (const void *)fx->maps.e[EP_MAP_ENDPOINTS][i].value;
}

/* The reconcilers take "now" from the caller; tests use a fixed clock. */
static int run(struct fixture *fx)
{
	uint64_t next;

	return ep_reconcile(&fx->ep, &fx->store, 1000000, &next);
}

static void cluster(struct fixture *fx)
{
	put_node(&fx->store, "node-a", "192.168.1.10", "10.244.0.0/24");
	put_node(&fx->store, "node-b", "192.168.1.11", "10.244.1.0/24");
	put_ces(&fx->store, "ces-1", "shop",
		"web-1=10.244.0.5@192.168.1.10#1001,web-2=10.244.1.7@192.168.1.11#1001,"
		"db-1=10.244.0.9@192.168.1.10#2002");
}

static void test_ipcache_from_ces_and_nodes(void **state)
{
	struct fixture *fx = *state;
	const struct ipcache_value *v;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	assert_int_equal(run(fx), 0);

	/* 3 endpoints + node-b's pod CIDR; not our own pod CIDR. */
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 4);
	v = ipc(fx, "10.244.0.5", 32);
	assert_non_null(v);
	assert_int_equal(v->identity, 1001);
	assert_int_equal(v->tunnel_endpoint, ip4("192.168.1.10"));
	assert_int_equal(v->flags, IPCACHE_F_LOCAL);
	v = ipc(fx, "10.244.1.7", 32);
	assert_non_null(v);
	assert_int_equal(v->tunnel_endpoint, ip4("192.168.1.11"));
	assert_int_equal(v->flags, 0);
	v = ipc(fx, "10.244.1.0", 24);
	assert_non_null(v);
	assert_int_equal(v->identity, 0);
	assert_int_equal(v->tunnel_endpoint, ip4("192.168.1.11"));
	assert_int_equal(v->flags, IPCACHE_F_POD_CIDR);
	assert_null(ipc(fx, "10.244.0.0", 24));
}

static void test_local_endpoints_and_pending(void **state)
{
	struct fixture *fx = *state;
	const struct endpoint_info *e;
	const struct ep_pending *p;
	__be32 ip;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);	/* db-1 has no device yet */
	assert_int_equal(run(fx), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_ENDPOINTS), 1);
	e = epi(fx, "10.244.0.5");
	assert_non_null(e);
	assert_int_equal(e->ifindex, 11);
	assert_int_equal(e->identity, 1001);
	assert_int_equal(e->mac[0], 11);
	assert_int_equal(e->node_mac[0], 0xee);
	/* The remote endpoint is not local. */
	assert_null(epi(fx, "10.244.1.7"));
	ip = ip4("10.244.0.9");
	p = ht_get(&fx->ep.pending, &ip, sizeof(ip));
	assert_non_null(p);
	assert_string_equal(p->name, "shop/db-1");
	assert_true(p->logged);

	/* Nothing moved: no pass, no lookups. */
	fx->devs.lookups = 0;
	assert_int_equal(run(fx), 0);
	assert_int_equal(fx->devs.lookups, 0);

	/* The CNI finishes: netdev reports a change, the endpoint appears. */
	fd_add(&fx->devs, "10.244.0.9", 12);
	ep_reconciler_devices_changed(&fx->ep);
	assert_int_equal(run(fx), 0);
	assert_non_null(epi(fx, "10.244.0.9"));
	assert_int_equal(fx->ep.pending.count, 0);
}

/* Endpoints the CNI plugin registered (store->cni_endpoints) are local ones,
 * reserved:init until a slice lists the address; then the slice's entry wins. */
static void test_cni_endpoints(void **state)
{
	struct fixture *fx = *state;
	struct local_endpoint a = { .ip = ip4("10.244.0.5"), .identity = IDENTITY_INIT,
				    .name = "shop/web-1" };
	struct local_endpoint b = { .ip = ip4("10.244.0.20"), .identity = IDENTITY_INIT,
				    .name = "shop/new" };
	struct htable cni;

	assert_int_equal(ht_init(&cni), 0);
	assert_int_equal(ht_put(&cni, &a.ip, sizeof(a.ip), &a, NULL), 0);
	assert_int_equal(ht_put(&cni, &b.ip, sizeof(b.ip), &b, NULL), 0);
	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	fd_add(&fx->devs, "10.244.0.20", 13);
	assert_int_equal(run(fx), 0);
	assert_null(epi(fx, "10.244.0.20"));
	fx->store.cni_endpoints = &cni;
	fx->store.cni_revision++;
	assert_int_equal(run(fx), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_ENDPOINTS), 3);
	assert_int_equal(epi(fx, "10.244.0.5")->identity, 1001);
	assert_int_equal(epi(fx, "10.244.0.20")->identity, IDENTITY_INIT);
	assert_int_equal(epi(fx, "10.244.0.20")->ifindex, 13);
	/* Released by the plugin: the entry goes on the next pass. */
	ht_del(&cni, &b.ip, sizeof(b.ip));
	fx->store.cni_revision++;
	assert_int_equal(run(fx), 0);
	assert_null(epi(fx, "10.244.0.20"));
	assert_int_equal(fm_count(&fx->maps, EP_MAP_ENDPOINTS), 2);
	fx->store.cni_endpoints = NULL;
	ht_destroy(&cni);
}

static void test_changes_and_deletes(void **state)
{
	struct fixture *fx = *state;
	unsigned long before;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	assert_int_equal(run(fx), 0);

	/* The same objects again: nothing written. */
	before = fx->maps.updates + fx->maps.deletes;
	cluster(fx);
	assert_int_equal(run(fx), 0);
	assert_int_equal(fx->maps.updates + fx->maps.deletes, before);

	/* db-1 goes, web-1's identity changes. */
	put_ces(&fx->store, "ces-1", "shop",
		"web-1=10.244.0.5@192.168.1.10#1005,web-2=10.244.1.7@192.168.1.11#1001");
	assert_int_equal(run(fx), 0);
	assert_null(ipc(fx, "10.244.0.9", 32));
	assert_null(epi(fx, "10.244.0.9"));
	assert_int_equal(ipc(fx, "10.244.0.5", 32)->identity, 1005);
	assert_int_equal(epi(fx, "10.244.0.5")->identity, 1005);

	/* node-b goes: its CIDR goes (its endpoints' CES is still there). */
	assert_int_equal(store_delete_node(&fx->store, "node-b"), 0);
	assert_int_equal(run(fx), 0);
	assert_null(ipc(fx, "10.244.1.0", 24));
	assert_int_equal(store_delete_ces(&fx->store, "ces-1"), 0);
	assert_int_equal(run(fx), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_ENDPOINTS), 0);
}

static void test_nothing_local_without_own_node(void **state)
{
	struct fixture *fx = *state;

	put_node(&fx->store, "node-b", "192.168.1.11", "10.244.1.0/24");
	put_ces(&fx->store, "ces-1", "shop", "web-1=10.244.0.5@192.168.1.10#1001");
	fd_add(&fx->devs, "10.244.0.5", 11);
	assert_int_equal(run(fx), 0);
	assert_int_equal(ipc(fx, "10.244.0.5", 32)->flags, 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_ENDPOINTS), 0);
	/* Our Node arrives: the endpoint becomes local. */
	put_node(&fx->store, "node-a", "192.168.1.10", "10.244.0.0/24");
	assert_int_equal(fx->store.self_ip, ip4("192.168.1.10"));
	assert_int_equal(run(fx), 0);
	assert_int_equal(ipc(fx, "10.244.0.5", 32)->flags, IPCACHE_F_LOCAL);
	assert_non_null(epi(fx, "10.244.0.5"));
}

static void test_map_full_retried(void **state)
{
	struct fixture *fx = *state;
	const struct ep_failure *f;
	uint64_t next;

	fx->maps.capacity[EP_MAP_IPCACHE] = 2;
	cluster(fx);
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1000, &next), 2);
	assert_int_equal(fx->ep.failures.count, 2);
	f = ht_first(&fx->ep.failures)->value;
	assert_non_null(strstr(f->msg, ": update: map full"));
	assert_int_equal(next, 1000 + 500);
	/* Not due yet: nothing happens. */
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1200, &next), 2);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 2);
	/* Room made; the retry realizes everything and clears the failures. */
	fx->maps.capacity[EP_MAP_IPCACHE] = FAKE_N;
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1500, &next), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 4);
	assert_int_equal(fx->ep.failures.count, 0);
}

/* A pod added on this node moves the endpoints map, not the cluster's ipcache:
 * the ipcache pass is left to its own changes and retries, its failures kept
 * and counted meanwhile. */
static void test_cni_change_leaves_the_ipcache_alone(void **state)
{
	struct fixture *fx = *state;
	struct local_endpoint a = { .ip = ip4("10.244.0.20"), .identity = IDENTITY_INIT,
				    .name = "shop/new" };
	struct htable cni;
	uint64_t next;
	unsigned long before;

	assert_int_equal(ht_init(&cni), 0);
	fx->maps.capacity[EP_MAP_IPCACHE] = 2;
	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	fd_add(&fx->devs, "10.244.0.20", 13);
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1000, &next), 2);
	assert_int_equal(next, 1500);
	/* The room is there now, but only the CNI moved: no ipcache write
	 * before the retry is due, the two failures still held and counted. */
	fx->maps.capacity[EP_MAP_IPCACHE] = FAKE_N;
	assert_int_equal(ht_put(&cni, &a.ip, sizeof(a.ip), &a, NULL), 0);
	fx->store.cni_endpoints = &cni;
	fx->store.cni_revision++;
	before = fm_count(&fx->maps, EP_MAP_IPCACHE);
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1200, &next), 2);
	assert_int_equal(next, 1500); /* the retry keeps its time */
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), before);
	assert_int_equal(fx->ep.failures.count, 2);
	assert_int_equal(epi(fx, "10.244.0.20")->identity, IDENTITY_INIT);
	assert_int_equal(epi(fx, "10.244.0.20")->ifindex, 13);
	/* The retry takes it all. */
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1500, &next), 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 4);
	assert_int_equal(fx->ep.failures.count, 0);
	fx->store.cni_endpoints = NULL;
	ht_destroy(&cni);
}

static void test_restart_writes_nothing_prunes_stale(void **state)
{
	struct fixture *fx = *state;
	struct ep_reconciler fresh;
	struct ipcache_key stale = ipcache_key_of(ip4("10.9.9.9"), 32);
	struct ipcache_value sv = { .identity = 7 };
	unsigned long before;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	assert_int_equal(run(fx), 0);
	assert_int_equal(fm_update(&fx->maps, EP_MAP_IPCACHE, &stale, &sv), 0);

	assert_int_equal(ep_reconciler_init(&fresh, &fm_ops, &fx->maps, &fd_ops, &fx->devs), 0);
	assert_int_equal(ep_reconciler_restore(&fresh), 0);
	before = fx->maps.updates;
	{
		uint64_t next;

		assert_int_equal(ep_reconcile(&fresh, &fx->store, 1000, &next), 0);
	}
	assert_int_equal(fx->maps.updates, before);
	assert_null(ipc(fx, "10.9.9.9", 32));
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 4);
	ep_reconciler_destroy(&fresh);
}


/* CIDR prefixes of the policies (policy/cidr.h): written with their
 * identity and no tunnel endpoint, a pod's /32 on the same key keeps its
 * entry, a failed write is reported back, and a restart gives the prefixes
 * their identities back from the map and writes nothing. */
static void test_cidr_prefixes(void **state)
{
	struct fixture *fx = *state;
	struct cidr_ids cidr, again;
	struct ep_reconciler fresh;
	const struct ipcache_value *v;
	const struct cidr_prefix *p;
	unsigned long before;
	uint64_t next;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	assert_int_equal(cidr_ids_init(&cidr, CIDR_IDS_MAX), 0);
	assert_int_equal(cidr_ids_restore(&cidr, ip4("172.16.0.0"), 12, IDENTITY_CIDR_MIN + 3), 0);
	assert_int_equal(cidr_ids_restore(&cidr, ip4("10.244.0.5"), 32, IDENTITY_CIDR_MIN + 4), 0);
	fx->ep.cidr = &cidr;
	assert_int_equal(run(fx), 0);
	v = ipc(fx, "172.16.0.0", 12);
	assert_non_null(v);
	assert_int_equal(v->identity, IDENTITY_CIDR_MIN + 3);
	assert_int_equal(v->tunnel_endpoint, 0);
	assert_int_equal(v->flags, 0);
	/* The pod keeps its /32. */
	v = ipc(fx, "10.244.0.5", 32);
	assert_int_equal(v->identity, 1001);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 5);
	/* A new prefix, and the map full: reported back to the policies. */
	fx->maps.capacity[EP_MAP_IPCACHE] = 5;
	assert_int_equal(cidr_ids_restore(&cidr, ip4("8.8.0.0"), 16, IDENTITY_CIDR_MIN + 5), 0);
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1000000 + 1, &next), 1);
	p = cidr_ids_find(&cidr, ip4("8.8.0.0"), 16);
	assert_int_equal(p->err, -E2BIG);
	assert_false(p->written);
	assert_true(cidr.dirty);
	assert_null(ipc(fx, "8.8.0.0", 16));
	fx->maps.capacity[EP_MAP_IPCACHE] = FAKE_N;
	assert_int_equal(ep_reconcile(&fx->ep, &fx->store, 1000000 + 60000, &next), 0);
	assert_non_null(ipc(fx, "8.8.0.0", 16));
	assert_int_equal(cidr_ids_find(&cidr, ip4("8.8.0.0"), 16)->err, 0);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 6);

	/* Restart: the identities come back from the map, nothing is written. */
	assert_int_equal(cidr_ids_init(&again, CIDR_IDS_MAX), 0);
	assert_int_equal(ep_reconciler_init(&fresh, &fm_ops, &fx->maps, &fd_ops, &fx->devs), 0);
	fresh.cidr = &again;
	assert_int_equal(ep_reconciler_restore(&fresh), 0);
	assert_int_equal(cidr_ids_find(&again, ip4("172.16.0.0"), 12)->id, IDENTITY_CIDR_MIN + 3);
	assert_int_equal(cidr_ids_find(&again, ip4("8.8.0.0"), 16)->id, IDENTITY_CIDR_MIN + 5);
	/* The pod's /32 is the pod's, not a CIDR entry. */
	assert_null(cidr_ids_find(&again, ip4("10.244.0.5"), 32));
	before = fx->maps.updates;
	assert_int_equal(ep_reconcile(&fresh, &fx->store, 1000, &next), 0);
	assert_int_equal(fx->maps.updates, before);
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 6);
	ep_reconciler_destroy(&fresh);
	cidr_ids_destroy(&again);
	fx->ep.cidr = NULL;
	cidr_ids_destroy(&cidr);
}

/* The full pass: entries deleted, changed or added behind the agent's back
 * (as bpftool would) are repaired; a pass over maps in sync writes nothing. */
static void test_resync_repairs_drift(void **state)
{
	struct fixture *fx = *state;
	struct ipcache_key k;
	struct endpoint_key ek;
	struct ipcache_value stray = { .identity = 77 };
	unsigned long updates, deletes;
	int i;

	cluster(fx);
	fd_add(&fx->devs, "10.244.0.5", 11);
	fd_add(&fx->devs, "10.244.0.9", 12);
	/* Before the first pass: nothing to compare with. */
	assert_int_equal(ep_reconciler_resync(&fx->ep), 0);
	assert_int_equal(run(fx), 0);
	updates = fx->maps.updates;
	deletes = fx->maps.deletes;
	assert_int_equal(ep_reconciler_resync(&fx->ep), 0);
	assert_int_equal(fx->maps.updates, updates);
	assert_int_equal(fx->maps.deletes, deletes);

	k = ipcache_key_of(ip4("10.244.1.7"), 32);
	fx->maps.e[EP_MAP_IPCACHE][fm_find(&fx->maps, EP_MAP_IPCACHE, &k)].used = false;
	k = ipcache_key_of(ip4("10.244.0.5"), 32);
	i = fm_find(&fx->maps, EP_MAP_IPCACHE, &k);
	((struct ipcache_value *)(void *)fx->maps.e[EP_MAP_IPCACHE][i].value)->identity = 9;
	ek = (struct endpoint_key){ .address = ip4("10.244.0.9") };
	i = fm_find(&fx->maps, EP_MAP_ENDPOINTS, &ek);
	((struct endpoint_info *)(void *)fx->maps.e[EP_MAP_ENDPOINTS][i].value)->ifindex = 99;
	k = ipcache_key_of(ip4("10.9.9.9"), 32);
	assert_int_equal(fm_ops.update(&fx->maps, EP_MAP_IPCACHE, &k, &stray), 0);

	assert_int_equal(ep_reconciler_resync(&fx->ep), 4);
	assert_int_equal(fx->ep.stats.repairs, 4);
	assert_int_equal(fx->ep.stats.last_repairs, 4);
	assert_non_null(ipc(fx, "10.244.1.7", 32));
	assert_int_equal(ipc(fx, "10.244.0.5", 32)->identity, 1001);
	assert_int_equal(epi(fx, "10.244.0.9")->ifindex, 12);
	assert_null(ipc(fx, "10.9.9.9", 32));
	assert_int_equal(fm_count(&fx->maps, EP_MAP_IPCACHE), 4);

	/* A failed rewrite is reported and retried by the next pass. */
	k = ipcache_key_of(ip4("10.244.1.7"), 32);
	fx->maps.e[EP_MAP_IPCACHE][fm_find(&fx->maps, EP_MAP_IPCACHE, &k)].used = false;
	fx->maps.fail_next = -EBUSY;
	assert_int_equal(ep_reconciler_resync(&fx->ep), -EBUSY);
	assert_int_equal(ep_reconciler_resync(&fx->ep), 1);
	assert_non_null(ipc(fx, "10.244.1.7", 32));
	assert_int_equal(ep_reconciler_resync(&fx->ep), 0);
}

/* ---- routes ---- */

struct fake_routes {
	struct node_route r[32];
	int n;
	int replaces, deletes;
	int fail_replace;
};

static int fr_find(struct fake_routes *f, const struct ipv4_prefix *p)
{
	for (int i = 0; i < f->n; i++)
		if (f->r[i].dst.addr == p->addr && f->r[i].dst.len == p->len)
			return i;
	return -1;
}

static int fr_replace(void *ctx, const struct node_route *r)
{
	struct fake_routes *f = ctx;
	int i = fr_find(f, &r->dst);

	if (f->fail_replace) {
		f->fail_replace--;
		return -EBUSY;
	}
	f->replaces++;
	if (i < 0)
		i = f->n++;
	f->r[i] = *r;
	return 0;
}

static int fr_delete(void *ctx, const struct ipv4_prefix *p)
{
	struct fake_routes *f = ctx;
	int i = fr_find(f, p);

	if (i < 0)
		return -ENOENT;
	f->deletes++;
	f->r[i] = f->r[--f->n];
	return 0;
}

static int fr_list(void *ctx, struct node_route *out, int max)
{
	struct fake_routes *f = ctx;
	int n = f->n < max ? f->n : max;

	memcpy(out, f->r, n * sizeof(*out));
	return n;
}

/* 192.168.1.0/24 is reached through ifindex 2; nothing else. */
static int fr_device_for(void *ctx, __be32 via)
{
	(void)ctx;
	return (ntohl(via) >> 8) == 0xc0a801 ? 2 : -ENETUNREACH;
}

static const struct route_ops fr_ops = { fr_replace, fr_delete, fr_list, fr_device_for };

static void test_node_routes(void **state)
{
	struct fixture *fx = *state;
	struct fake_routes fr = {};
	struct route_sync rs;
	struct ipv4_prefix p;
	uint64_t next;
	int i;

	/* Left over from a previous run: a node deleted while we were down. */
	fr.r[fr.n++] = (struct node_route){ .dst = { ip4("10.244.7.0"), 24 },
					    .via = ip4("192.168.1.17"), .ifindex = 2 };
	cluster(fx);
	put_node(&fx->store, "node-c", "172.16.0.5", "10.244.2.0/24");	/* unreachable */
	assert_int_equal(route_sync_init(&rs, &fr_ops, &fr, true), 0);
	assert_int_equal(route_sync_run(&rs, &fx->store, 1000, &next), 1);
	p = (struct ipv4_prefix){ ip4("10.244.7.0"), 24 };
	assert_int_equal(fr_find(&fr, &p), -1);
	p = (struct ipv4_prefix){ ip4("10.244.1.0"), 24 };
	i = fr_find(&fr, &p);
	assert_true(i >= 0);
	assert_int_equal(fr.r[i].via, ip4("192.168.1.11"));
	assert_int_equal(fr.r[i].ifindex, 2);
	/* Not our own CIDR. */
	p = (struct ipv4_prefix){ ip4("10.244.0.0"), 24 };
	assert_int_equal(fr_find(&fr, &p), -1);
	assert_int_equal(fr.n, 1);
	/* node-c is reported, with a retry. */
	assert_int_equal(rs.failures.count, 1);
	assert_non_null(strstr(((struct route_failure *)ht_first(&rs.failures)->value)->msg,
			       "route 10.244.2.0/24 via 172.16.0.5 (node node-c): no native device"));
	assert_true(next != UINT64_MAX);

	/* node-c goes away: its failure goes with it; node-b changes address. */
	assert_int_equal(store_delete_node(&fx->store, "node-c"), 0);
	put_node(&fx->store, "node-b", "192.168.1.21", "10.244.1.0/24");
	assert_int_equal(route_sync_run(&rs, &fx->store, 2000, &next), 0);
	assert_int_equal(rs.failures.count, 0);
	i = fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.1.0"), 24 });
	assert_int_equal(fr.r[i].via, ip4("192.168.1.21"));

	/* Nothing moved: no netlink traffic. */
	fr.replaces = 0;
	assert_int_equal(route_sync_run(&rs, &fx->store, 3000, &next), 0);
	assert_int_equal(fr.replaces, 0);

	/* A failed replace is retried with backoff. */
	put_node(&fx->store, "node-d", "192.168.1.30", "10.244.3.0/24");
	fr.fail_replace = 1;
	assert_int_equal(route_sync_run(&rs, &fx->store, 4000, &next), 1);
	assert_int_equal(next, 4500);
	assert_int_equal(route_sync_run(&rs, &fx->store, 4500, &next), 0);
	assert_true(fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.3.0"), 24 }) >= 0);
	route_sync_destroy(&rs);

	/* With the flag off, a new agent removes what an earlier one installed. */
	assert_int_equal(route_sync_init(&rs, &fr_ops, &fr, false), 0);
	assert_int_equal(route_sync_run(&rs, &fx->store, 5000, &next), 0);
	assert_int_equal(fr.n, 0);
	route_sync_destroy(&rs);
}


static void test_routes_resync_repairs_drift(void **state)
{
	struct fixture *fx = *state;
	struct fake_routes fr = {};
	struct route_sync rs;
	uint64_t next;
	int i;

	cluster(fx);
	put_node(&fx->store, "node-d", "192.168.1.30", "10.244.3.0/24");
	assert_int_equal(route_sync_init(&rs, &fr_ops, &fr, true), 0);
	assert_int_equal(route_sync_resync(&rs), 0);	/* before the first pass */
	assert_int_equal(route_sync_run(&rs, &fx->store, 1000, &next), 0);
	assert_int_equal(fr.n, 2);
	fr.replaces = fr.deletes = 0;
	assert_int_equal(route_sync_resync(&rs), 0);
	assert_int_equal(fr.replaces + fr.deletes, 0);

	/* `ip route del`, a route changed to another gateway, a stray one. */
	assert_int_equal(fr_delete(&fr, &(struct ipv4_prefix){ ip4("10.244.1.0"), 24 }), 0);
	i = fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.3.0"), 24 });
	fr.r[i].via = ip4("192.168.1.99");
	fr.r[fr.n++] = (struct node_route){ .dst = { ip4("10.244.9.0"), 24 },
					    .via = ip4("192.168.1.9"), .ifindex = 2 };
	fr.replaces = fr.deletes = 0;
	assert_int_equal(route_sync_resync(&rs), 3);
	assert_int_equal(rs.repairs, 3);
	assert_int_equal(fr.n, 2);
	i = fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.1.0"), 24 });
	assert_true(i >= 0);
	assert_int_equal(fr.r[i].via, ip4("192.168.1.11"));
	i = fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.3.0"), 24 });
	assert_int_equal(fr.r[i].via, ip4("192.168.1.30"));
	assert_int_equal(fr_find(&fr, &(struct ipv4_prefix){ ip4("10.244.9.0"), 24 }), -1);
	assert_int_equal(route_sync_resync(&rs), 0);
	route_sync_destroy(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ipcache_from_ces_and_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_endpoints_and_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cni_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_local_without_own_node, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cni_change_leaves_the_ipcache_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_writes_nothing_prunes_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cidr_prefixes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_repairs_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes_resync_repairs_drift, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
