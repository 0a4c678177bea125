// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "axon/lb.h"
#include "desired.h"
#include "lb/topology.h"
#include "hostport.h"

void lb_service_spec_free(struct lb_service_spec *spec)
{
	for (size_t i = 0; i < spec->n_frontends; i++) {
		free(spec->frontends[i].backends);
		free(spec->frontends[i].kept);
	}
	free(spec->frontends);
	memset(spec, 0, sizeof(*spec));
}

struct be_list {
	struct lb_backend_spec **v;
	size_t *n, cap;
};

static bool be_has(const struct lb_backend_spec *v, size_t n, __be32 addr, __be16 port)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].addr == addr && v[i].port == port)
			return true;
	return false;
}

static int be_add(struct be_list *l, __be32 addr, __be16 port, __u8 proto, __u8 state)
{
	if (be_has(*l->v, *l->n, addr, port))
		return 0;
	if (*l->n == l->cap) {
		size_t n = l->cap ? l->cap * 2 : 4;
		struct lb_backend_spec *p = realloc(*l->v, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*l->v = p;
		l->cap = n;
	}
	(*l->v)[(*l->n)++] = (struct lb_backend_spec){
		.addr = addr, .port = port, .proto = proto, .state = state,
	};
	return 0;
}

static const struct k8s_eps_port *slice_port(const struct k8s_endpointslice *eps,
					     const struct k8s_service_port *sp)
{
	for (size_t i = 0; i < eps->n_ports; i++)
		if (eps->ports[i].proto == sp->proto && !strcmp(eps->ports[i].name, sp->name))
			return &eps->ports[i];
	return NULL;
}

enum pick { PICK_READY, PICK_SERVING_TERMINATING, PICK_KEPT };

/* One pass over the service's slices for port sp: add the endpoints the pick
 * selects (local ones only when local_node is set) to l. */
static int pick_backends(const struct store_slice_set *set, const struct k8s_service *svc,
			 const struct k8s_service_port *sp, enum pick pick, const char *local_node,
			 struct be_list *l, const struct lb_frontend_spec *fe)
{
	int err;

	for (size_t i = 0; set && i < set->n; i++) {
		const struct k8s_endpointslice *eps = &set->slices[i]->eps;
		const struct k8s_eps_port *ep;

		if (eps->address_type != K8S_ADDR_IPV4 || !(ep = slice_port(eps, sp)))
			continue;
		for (size_t j = 0; j < eps->n_endpoints; j++) {
			const struct k8s_eps_endpoint *e = &eps->endpoints[j];
			/* publishNotReadyAddresses: every endpoint counts as ready, as
			 * the endpointslice controller itself publishes them. */
			bool ready = e->ready || svc->publish_not_ready;
			bool use = pick == PICK_READY ? ready : e->serving && e->terminating;

			if (!use || (local_node && strcmp(e->node_name, local_node)))
				continue;
			for (size_t k = 0; k < e->n_addrs; k++) {
				/* Kept: only what the slots do not already hold. */
				if (pick == PICK_KEPT &&
				    be_has(fe->backends, fe->n_backends, e->addrs[k], htons(ep->port)))
					continue;
				err = be_add(l, e->addrs[k], htons(ep->port), sp->proto,
					     pick == PICK_READY ? BACKEND_STATE_ACTIVE
								: BACKEND_STATE_TERMINATING);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

/* Backends of one frontend: ready endpoints, else serving-terminating ones
 * (Kubernetes' graceful termination); local ones only under a Local policy.
 * Then the serving-terminating endpoints (any node) the slots do not hold. */
static int port_backends(const struct store *s, const struct store_slice_set *set,
			 const struct k8s_service *svc, const struct k8s_service_port *sp,
			 bool local_only, struct lb_frontend_spec *fe)
{
	struct be_list slots = { .v = &fe->backends, .n = &fe->n_backends };
	struct be_list kept = { .v = &fe->kept, .n = &fe->n_kept };
	/* An unknown node name matches no endpoint: no local backends. */
	const char *local = local_only ? s->self_name : NULL;
	int err;

	err = pick_backends(set, svc, sp, PICK_READY, local, &slots, fe);
	/* Zone hints narrow the Cluster policy's ready backends (lb/topology.h). */
	if (!err && !local_only)
		lb_topology_filter(s, set, svc, sp, fe);
	if (!err && fe->n_backends == 0)
		err = pick_backends(set, svc, sp, PICK_SERVING_TERMINATING, local, &slots, fe);
	if (!err)
		err = pick_backends(set, svc, sp, PICK_KEPT, NULL, &kept, fe);
	return err;
}

/* The internal scope of the external frontend just added (the last one):
 * the same frontend for clients on this node, with the Cluster choice of
 * backends; no source ranges, which bind outside clients only. */
static int add_internal_scope(const struct store *s, const struct store_slice_set *set,
			      const struct k8s_service *svc, const struct k8s_service_port *sp,
			      struct lb_service_spec *spec)
{
	const struct lb_frontend_spec *ext = &spec->frontends[spec->n_frontends - 1];
	struct lb_frontend_spec *fe = &spec->frontends[spec->n_frontends];

	*fe = (struct lb_frontend_spec){
		.addr = ext->addr,
		.port = ext->port,
		.proto = ext->proto,
		.scope = LB_SCOPE_INT,
		.flags = ext->flags & ~SVC_FLAG_EXT_LOCAL,
		.flags2 = ext->flags2 & ~SVC_FLAG2_SOURCE_RANGE,
		.affinity_timeout = ext->affinity_timeout,
	};
	spec->n_frontends++;
	return port_backends(s, set, svc, sp, false, fe);
}

static bool use_maglev(const struct store_service *ss, bool maglev_default)
{
	switch (ss->lb_algorithm) {
	case STORE_LB_ALGO_MAGLEV:	return true;
	case STORE_LB_ALGO_RANDOM:	return false;
	default:			return maglev_default;
	}
}

struct fe_kind {
	__u8 flag;		/* SVC_FLAG_CLUSTER_IP, ... */
	bool node_port;		/* frontend port is the nodePort */
};

static int add_frontends(const struct store *s, const struct store_service *ss,
			 const __be32 *addrs, size_t n_addrs, struct fe_kind kind,
			 bool maglev_default, struct lb_service_spec *spec)
{
	const struct k8s_service *svc = &ss->svc;
	const struct store_slice_set *set = store_service_slices(s, ss->key);
	bool cluster_ip = kind.flag == SVC_FLAG_CLUSTER_IP;
	bool local = cluster_ip ? svc->int_traffic_local : svc->ext_traffic_local;
	/* externalTrafficPolicy: Local binds external clients only: clients on
	 * this node (its pods, its host) get an internal scope with every
	 * endpoint, whatever internalTrafficPolicy says, as kube-proxy sends
	 * them to the cluster-wide endpoints. */
	bool two_scopes = local && !cluster_ip;
	size_t n = spec->n_frontends + n_addrs * svc->n_ports * (two_scopes ? 2 : 1);
	bool ranged = svc->type == K8S_SVC_LOAD_BALANCER && svc->n_src_ranges &&
		      (kind.flag == SVC_FLAG_LOAD_BALANCER || kind.flag == SVC_FLAG_NODE_PORT);
	struct lb_frontend_spec *p;
	int err;

	if (n == spec->n_frontends)
		return 0;
	p = realloc(spec->frontends, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	spec->frontends = p;
	for (size_t a = 0; a < n_addrs; a++) {
		for (size_t i = 0; i < svc->n_ports; i++) {
			const struct k8s_service_port *sp = &svc->ports[i];
			struct lb_frontend_spec *fe = &spec->frontends[spec->n_frontends];
			__u8 flags = kind.flag;

			/* Socket LB and tc speak TCP and UDP; SCTP ports are skipped. */
			if (sp->proto != IPPROTO_TCP && sp->proto != IPPROTO_UDP)
				continue;
			if (kind.node_port && !sp->node_port)
				continue;
			if (svc->affinity_client_ip)
				flags |= SVC_FLAG_AFFINITY;
			if (local)
				flags |= cluster_ip ? SVC_FLAG_INT_LOCAL : SVC_FLAG_EXT_LOCAL;
			*fe = (struct lb_frontend_spec){
				.addr = addrs[a],
				.port = htons(kind.node_port ? sp->node_port : sp->port),
				.proto = sp->proto,
				.flags = flags,
				.flags2 = use_maglev(ss, maglev_default) ? SVC_FLAG2_MAGLEV : 0,
				.affinity_timeout = svc->affinity_client_ip ? svc->affinity_timeout : 0,
			};
			if (ranged) {
				fe->flags2 |= SVC_FLAG2_SOURCE_RANGE;
				fe->src_ranges = svc->src_ranges;
				fe->n_src_ranges = svc->n_src_ranges;
			}
			spec->n_frontends++;
			err = port_backends(s, set, svc, sp, local, fe);
			if (!err && two_scopes)
				err = add_internal_scope(s, set, svc, sp, spec);
			if (err)
				return err;
		}
	}
	return 0;
}

const char *lb_service_unserved(const struct k8s_service *svc)
{
	bool tcp_or_udp = false;

	if (svc->proxy_name_label)
		return "service-proxy-name label";
	if (svc->type == K8S_SVC_EXTERNAL_NAME)
		return "ExternalName";
	if (svc->headless)
		return "headless";
	/* The datapath is IPv4, like a single-stack IPv4 kube-proxy. */
	if (svc->ipv6_only)
		return "IPv6-only";
	if (!svc->n_ports)
		return "no ports";
	for (size_t i = 0; i < svc->n_ports; i++)
		tcp_or_udp |= svc->ports[i].proto == IPPROTO_TCP || svc->ports[i].proto == IPPROTO_UDP;
	return tcp_or_udp ? NULL : "no TCP or UDP port";
}

int lb_desired_service(const struct store *s, const char *svc_key, bool maglev_default,
		       struct lb_service_spec *spec)
{
	const struct store_service *ss = store_get_service(s, svc_key);
	const struct k8s_service *svc;
	int err;

	if (!ss)	/* no Service; maybe the pods' host ports (hostport.h) */
		return lb_desired_host_port(s, svc_key, spec, NULL);
	memset(spec, 0, sizeof(*spec));
	if (lb_service_unserved(&ss->svc))
		return 0;
	svc = &ss->svc;
	err = add_frontends(s, ss, svc->cluster_ips, svc->n_cluster_ips,
			    (struct fe_kind){ SVC_FLAG_CLUSTER_IP, false }, maglev_default, spec);
	if (!err)
		err = add_frontends(s, ss, svc->external_ips, svc->n_external_ips,
				    (struct fe_kind){ SVC_FLAG_EXTERNAL_IP, false }, maglev_default,
				    spec);
	if (!err && svc->type == K8S_SVC_LOAD_BALANCER)
		err = add_frontends(s, ss, svc->lb_ips, svc->n_lb_ips,
				    (struct fe_kind){ SVC_FLAG_LOAD_BALANCER, false },
				    maglev_default, spec);
	if (!err && (svc->type == K8S_SVC_NODE_PORT || svc->type == K8S_SVC_LOAD_BALANCER))
		err = add_frontends(s, ss, s->self_ips, s->n_self_ips,
				    (struct fe_kind){ SVC_FLAG_NODE_PORT, true }, maglev_default,
				    spec);
	if (err)
		lb_service_spec_free(spec);
	return err;
}
