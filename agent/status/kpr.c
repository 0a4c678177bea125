// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <string.h>

#include "agent.h"
#include "lb/desired.h"
#include "status/kpr.h"

static void add_devices(struct agent *a, cJSON *r)
{
	const struct agent_dp *d = &a->dpx;
	cJSON *arr = cJSON_AddArrayToObject(r, "devices");

	for (int k = 0; k < d->n_native; k++) {
		cJSON *o = cJSON_CreateObject();
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &d->native[k].ipv4, ip, sizeof(ip));
		cJSON_AddStringToObject(o, "name", d->native[k].name);
		cJSON_AddStringToObject(o, "ipv4", d->native[k].ipv4 ? ip : "");
		/* The device holding the node address is where NodePort traffic
		 * arrives and is forwarded from (Cilium's "Direct Routing" one). */
		cJSON_AddBoolToObject(o, "direct_routing",
				      d->native[k].ipv4 && d->native[k].ipv4 == a->store.self_ip);
		cJSON_AddItemToArray(arr, o);
	}
}

/* Socket LB termination (lb/sock_term.h): sockets destroyed because their
 * backend was deleted, and the UDP conntrack entries purged with them. */
static void add_termination(struct agent *a, cJSON *sock)
{
	cJSON *o = cJSON_AddObjectToObject(sock, "termination");
	struct lb_sock_term_stats st;

	lb_sock_term_stats(&a->sock_term, &st);
	cJSON_AddBoolToObject(o, "enabled", st.enabled);
	if (st.enabled)
		cJSON_AddStringToObject(o, "mode", st.mode);	/* "bpf" or "sock_diag" */
	else
		cJSON_AddStringToObject(o, "reason", st.reason);
	cJSON_AddNumberToObject(o, "sockets_destroyed", (double)(st.destroyed_tcp + st.destroyed_udp));
	cJSON_AddNumberToObject(o, "tcp", (double)st.destroyed_tcp);
	cJSON_AddNumberToObject(o, "udp", (double)st.destroyed_udp);
	cJSON_AddNumberToObject(o, "failed", (double)st.failed);
	/* (frontend, backend) pairs whose sockets were looked for */
	cJSON_AddNumberToObject(o, "backend_removals", (double)st.backends);
	cJSON_AddNumberToObject(o, "netns_last_run", (double)st.netns);
	cJSON_AddNumberToObject(o, "udp_conntrack_purged", (double)st.ct_deleted);
	if (st.last_err)	/* of the latest run; the next one tries again */
		cJSON_AddStringToObject(o, "last_error", strerror(-st.last_err));
}

/* Served Services whose loadBalancerSourceRanges the datapath checks. */
static size_t source_range_services(struct agent *a)
{
	size_t n = 0;

	for (struct ht_entry *e = ht_first(&a->store.services); e; e = ht_next(&a->store.services, e)) {
		const struct store_service *ss = e->value;

		n += ss->svc.type == K8S_SVC_LOAD_BALANCER && ss->svc.n_src_ranges > 0;
	}
	return n;
}

/* Served Services that ask for topology aware routing (zone hints). */
static size_t topology_services(struct agent *a)
{
	const struct htable *svcs = &a->store.services;
	size_t n = 0;

	for (struct ht_entry *e = ht_first(svcs); e; e = ht_next(svcs, e)) {
		const struct store_service *ss = e->value;

		n += ss->svc.topology_aware && !lb_service_unserved(&ss->svc);
	}
	return n;
}

cJSON *agent_kpr_status(struct agent *a)
{
	const struct agent_config *c = &a->cfg;
	cJSON *r = cJSON_CreateObject(), *o;
	bool maglev = c->lb_algorithm == LB_ALGO_MAGLEV;

	cJSON_AddStringToObject(r, "status", "True");
	o = cJSON_AddObjectToObject(r, "socket_lb");
	cJSON_AddBoolToObject(o, "enabled", c->bpf_lb_sock);
	/* Attached at --cgroup-root, every pod and the host namespace alike. */
	cJSON_AddStringToObject(o, "coverage", "Full");
	cJSON_AddBoolToObject(o, "tracing", false);
	add_termination(a, o);
	add_devices(a, r);
	cJSON_AddStringToObject(r, "mode", "SNAT");
	o = cJSON_AddObjectToObject(r, "backend_selection");
	cJSON_AddStringToObject(o, "algorithm", maglev ? "Maglev" : "Random");
	if (maglev)
		cJSON_AddNumberToObject(o, "table_size", c->maglev_table_size);
	cJSON_AddBoolToObject(r, "session_affinity", true);
	cJSON_AddBoolToObject(r, "graceful_termination", true);
	cJSON_AddBoolToObject(r, "nat46_64", false);
	cJSON_AddStringToObject(r, "xdp_acceleration", "Disabled");
	o = cJSON_AddObjectToObject(r, "services");
	cJSON_AddBoolToObject(o, "cluster_ip", true);
	cJSON_AddBoolToObject(o, "node_port", true);
	cJSON_AddNumberToObject(o, "node_port_min", c->node_port_min);
	cJSON_AddNumberToObject(o, "node_port_max", c->node_port_max);
	cJSON_AddBoolToObject(o, "load_balancer", true);
	cJSON_AddBoolToObject(o, "external_ips", true);
	/* Pods' hostPorts: frontends on the node addresses and 127.0.0.1
	 * (lb/hostport.h), with NodePort's datapath. */
	cJSON_AddBoolToObject(o, "host_port", true);
	cJSON_AddNumberToObject(r, "source_range_services", (double)source_range_services(a));
	o = cJSON_AddObjectToObject(r, "topology_aware_hints");
	cJSON_AddStringToObject(o, "zone", a->store.self_zone);
	cJSON_AddNumberToObject(o, "services", (double)topology_services(a));
	cJSON_AddStringToObject(r, "healthz_bind_address", c->kpr_healthz_addr);
	cJSON_AddItemToObject(r, "health_check_node_ports", kpr_health_status(&a->kpr));
	return r;
}
