// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The tc datapath's part of `agentctl status` (field names in dpsync.h's users' terms). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "agent.h"


#define STATUS_ATTACH_MAX 256
#define STATUS_LIST_MAX 64	/* pending endpoints / routes listed in full */

static void add_ip(cJSON *o, const char *key, __be32 ip)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	cJSON_AddStringToObject(o, key, a);
}

static const char *prefix_str(char *buf, size_t len, __be32 ip, unsigned int plen)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, plen);
	return buf;
}

static void add_prefix(cJSON *o, const char *key, __be32 ip, unsigned int len)
{
	char buf[INET_ADDRSTRLEN + 4];

	cJSON_AddStringToObject(o, key, prefix_str(buf, sizeof(buf), ip, len));
}

static const char *mode_name(enum tc_mode m)
{
	return m == TC_MODE_TCX ? "tcx" : m == TC_MODE_LEGACY ? "legacy" : "auto";
}

cJSON *agent_node_status(struct agent *a)
{
	const struct store *s = &a->store;
	const struct store_node *sn = store_get_node(s, s->self_name);
	cJSON *n = cJSON_CreateObject(), *ips, *cidrs;

	cJSON_AddStringToObject(n, "name", s->self_name);
	cJSON_AddBoolToObject(n, "known", s->self_known);
	if (s->self_ip)
		add_ip(n, "ip", s->self_ip);
	else
		cJSON_AddNullToObject(n, "ip");
	ips = cJSON_AddArrayToObject(n, "ips");
	for (size_t i = 0; i < s->n_self_ips; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &s->self_ips[i], a, sizeof(a));
		cJSON_AddItemToArray(ips, cJSON_CreateString(a));
	}
	cidrs = cJSON_AddArrayToObject(n, "pod_cidrs");
	for (size_t i = 0; sn && i < sn->node.n_pod_cidrs; i++) {
		char buf[INET_ADDRSTRLEN + 4];

		prefix_str(buf, sizeof(buf), sn->node.pod_cidrs[i].addr, sn->node.pod_cidrs[i].len);
		cJSON_AddItemToArray(cidrs, cJSON_CreateString(buf));
	}
	cJSON_AddNumberToObject(n, "nodes", s->nodes.count);
	cJSON_AddNumberToObject(n, "cilium_endpoint_slices", s->ces.count);
	cJSON_AddNumberToObject(n, "cilium_endpoints", s->n_ces_endpoints);
	return n;
}

static cJSON *config_status(struct agent *a)
{
	const struct agent_config *c = &a->cfg;
	cJSON *o = cJSON_CreateObject();
	char buf[32];

	cJSON_AddBoolToObject(o, "enable_tcx", c->enable_tcx);
	cJSON_AddBoolToObject(o, "bpf_lb_sock", c->bpf_lb_sock);
	cJSON_AddBoolToObject(o, "enable_bpf_masquerade", c->enable_bpf_masquerade);
	cJSON_AddBoolToObject(o, "auto_direct_node_routes", c->auto_direct_node_routes);
	if (c->has_native_cidr)
		add_prefix(o, "ipv4_native_routing_cidr", c->native_cidr.addr, c->native_cidr.len);
	else
		cJSON_AddNullToObject(o, "ipv4_native_routing_cidr");
	snprintf(buf, sizeof(buf), "%u-%u", c->node_port_min, c->node_port_max);
	cJSON_AddStringToObject(o, "node_port_range", buf);
	cJSON_AddStringToObject(o, "bpf_lb_algorithm",
				c->lb_algorithm == LB_ALGO_MAGLEV ? "maglev" : "random");
	cJSON_AddStringToObject(o, "devices", c->devices);
	cJSON_AddNumberToObject(o, "ct_timeout_tcp_s", c->ct_timeout_tcp_s);
	cJSON_AddNumberToObject(o, "ct_timeout_tcp_syn_s", c->ct_timeout_syn_s);
	cJSON_AddNumberToObject(o, "ct_timeout_tcp_fin_s", c->ct_timeout_fin_s);
	cJSON_AddNumberToObject(o, "ct_timeout_any_s", c->ct_timeout_any_s);
	return o;
}

static cJSON *attachments_status(struct agent_dp *d)
{
	static struct tc_attachment list[STATUS_ATTACH_MAX];
	cJSON *arr = cJSON_CreateArray();
	int n;

	if (!d->tc_loaded)
		return arr;
	n = tc_list(&d->tc, list, STATUS_ATTACH_MAX);
	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "device", list[i].ifname);
		cJSON_AddNumberToObject(o, "ifindex", list[i].ifindex);
		cJSON_AddStringToObject(o, "direction",
					list[i].dir == TC_INGRESS ? "ingress" : "egress");
		cJSON_AddStringToObject(o, "program", list[i].program);
		cJSON_AddStringToObject(o, "mode", mode_name(list[i].mode));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static cJSON *failures_list(struct htable *h, size_t what_off, size_t msg_off, size_t att_off)
{
	cJSON *arr = cJSON_CreateArray();

	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e)) {
		const char *v = e->value;
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "what", v + what_off);
		cJSON_AddStringToObject(o, "error", v + msg_off);
		cJSON_AddNumberToObject(o, "attempts", *(const unsigned int *)(v + att_off));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

cJSON *agent_datapath_status(struct agent *a)
{
	struct agent_dp *d = &a->dpx;
	cJSON *r = cJSON_CreateObject(), *o, *arr;
	size_t i = 0;

	cJSON_AddStringToObject(r, "state", d->state);
	cJSON_AddBoolToObject(r, "tc_loaded", d->tc_loaded);
	cJSON_AddNumberToObject(r, "loads", d->loads);
	/* The node address the loaded programs carry (NodePort, SNAT). */
	if (d->tc_loaded)
		add_ip(r, "programs_node_ip", d->cfg.node_ip);
	cJSON_AddStringToObject(r, "load_error", d->load_err ? strerror(-d->load_err) : "");
	cJSON_AddStringToObject(r, "tc_mode", mode_name(d->tc.mode));
	cJSON_AddItemToObject(r, "config", config_status(a));

	arr = cJSON_AddArrayToObject(r, "native_devices");
	for (int k = 0; k < d->n_native; k++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", d->native[k].name);
		cJSON_AddNumberToObject(o, "ifindex", d->native[k].ifindex);
		add_ip(o, "ipv4", d->native[k].ipv4);
		cJSON_AddItemToArray(arr, o);
	}
	cJSON_AddStringToObject(r, "native_devices_error", d->native_error);
	cJSON_AddItemToObject(r, "attachments", attachments_status(d));
	cJSON_AddNumberToObject(r, "attach_errors", d->attach_errors);
	cJSON_AddStringToObject(r, "attach_error", d->attach_error);

	o = cJSON_AddObjectToObject(r, "local_endpoints");
	cJSON_AddNumberToObject(o, "count", d->ep.endpoints.count);
	cJSON_AddNumberToObject(o, "pending_count", d->ep.pending.count);
	arr = cJSON_AddArrayToObject(o, "pending");
	for (struct ht_entry *e = ht_first(&d->ep.pending); e && i < STATUS_LIST_MAX;
	     e = ht_next(&d->ep.pending, e), i++) {
		const struct ep_pending *p = e->value;
		cJSON *po = cJSON_CreateObject();

		cJSON_AddStringToObject(po, "name", p->name);
		add_ip(po, "ip", p->ip);
		cJSON_AddStringToObject(po, "error", strerror(-p->err));
		cJSON_AddItemToArray(arr, po);
	}

	o = cJSON_AddObjectToObject(r, "ipcache");
	cJSON_AddNumberToObject(o, "entries", d->ep.ipcache.count);
	cJSON_AddNumberToObject(o, "passes", d->ep.stats.passes);
	cJSON_AddNumberToObject(o, "map_updates", d->ep.stats.updates);
	cJSON_AddNumberToObject(o, "map_deletes", d->ep.stats.deletes);
	cJSON_AddNumberToObject(o, "map_errors", d->ep.stats.errors);

	o = cJSON_AddObjectToObject(r, "node_routes");
	cJSON_AddBoolToObject(o, "enabled", d->routes.enabled);
	cJSON_AddNumberToObject(o, "count", d->routes.routes.count);
	cJSON_AddNumberToObject(o, "replaced", d->routes.replaced);
	cJSON_AddNumberToObject(o, "deleted", d->routes.deleted);
	cJSON_AddNumberToObject(o, "errors", d->routes.errors);
	arr = cJSON_AddArrayToObject(o, "routes");
	i = 0;
	for (struct ht_entry *e = ht_first(&d->routes.routes); e && i < STATUS_LIST_MAX;
	     e = ht_next(&d->routes.routes, e), i++) {
		const struct route_want *w = e->value;
		cJSON *ro = cJSON_CreateObject();

		add_prefix(ro, "dst", w->route.dst.addr, w->route.dst.len);
		add_ip(ro, "via", w->route.via);
		cJSON_AddNumberToObject(ro, "ifindex", w->route.ifindex);
		cJSON_AddStringToObject(ro, "node", w->node);
		cJSON_AddItemToArray(arr, ro);
	}

	o = cJSON_AddObjectToObject(r, "conntrack_gc");
	cJSON_AddBoolToObject(o, "running", d->gc_ready);
	cJSON_AddNumberToObject(o, "passes", d->gc.passes);
	cJSON_AddNumberToObject(o, "interval_ms", d->gc.interval_ms);
	cJSON_AddNumberToObject(o, "last_scanned", d->gc.last_scanned);
	cJSON_AddNumberToObject(o, "last_deleted", d->gc.last_deleted);
	cJSON_AddNumberToObject(o, "last_nat_deleted", d->gc.last_nat_deleted);
	cJSON_AddNumberToObject(o, "last_duration_us", d->gc.last_duration_us);
	cJSON_AddNumberToObject(o, "total_deleted", d->gc.total_deleted);

	arr = failures_list(&d->ep.failures, offsetof(struct ep_failure, what),
			    offsetof(struct ep_failure, msg), offsetof(struct ep_failure, attempts));
	{
		cJSON *more = failures_list(&d->routes.failures,
					    offsetof(struct route_failure, what),
					    offsetof(struct route_failure, msg),
					    offsetof(struct route_failure, attempts));
		cJSON *it;

		while ((it = cJSON_DetachItemFromArray(more, 0)))
			cJSON_AddItemToArray(arr, it);
		cJSON_Delete(more);
	}
	cJSON_AddItemToObject(r, "unrealized", arr);
	cJSON_AddItemToObject(r, "policy", pol_reconciler_status(&d->pol));
	return r;
}
