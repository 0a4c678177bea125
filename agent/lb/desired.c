// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "axon/lb.h"
#include "desired.h"

void lb_service_spec_free(struct lb_service_spec *spec)
{
	for (size_t i = 0; i < spec->n_frontends; i++)
		free(spec->frontends[i].backends);
	free(spec->frontends);
	memset(spec, 0, sizeof(*spec));
}

static int backend_add(struct lb_frontend_spec *fe, size_t *cap, __be32 addr, __be16 port,
		       __u8 state)
{
	for (size_t i = 0; i < fe->n_backends; i++)
		if (fe->backends[i].addr == addr && fe->backends[i].port == port)
			return 0;
	if (fe->n_backends == *cap) {
		size_t n = *cap ? *cap * 2 : 4;
		struct lb_backend_spec *p = realloc(fe->backends, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		fe->backends = p;
		*cap = n;
	}
	fe->backends[fe->n_backends++] = (struct lb_backend_spec){
		.addr = addr, .port = port, .proto = fe->proto, .state = state,
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

/* Backends of one service port: ready endpoints, else serving-terminating. */
static int port_backends(const struct store_slice_set *set, const struct k8s_service_port *sp,
			 struct lb_frontend_spec *fe)
{
	size_t cap = 0;
	int pass, err;

	if (!set)
		return 0;
	for (pass = 0; pass < 2 && fe->n_backends == 0; pass++) {
		for (size_t i = 0; i < set->n; i++) {
			const struct k8s_endpointslice *eps = &set->slices[i]->eps;
			const struct k8s_eps_port *ep;

			if (eps->address_type != K8S_ADDR_IPV4 || !(ep = slice_port(eps, sp)))
				continue;
			for (size_t j = 0; j < eps->n_endpoints; j++) {
				const struct k8s_eps_endpoint *e = &eps->endpoints[j];
				bool use = pass == 0 ? e->ready : e->serving && e->terminating;

				if (!use)
					continue;
				for (size_t k = 0; k < e->n_addrs; k++) {
					err = backend_add(fe, &cap, e->addrs[k], htons(ep->port),
							  pass == 0 ? BACKEND_STATE_ACTIVE
								    : BACKEND_STATE_TERMINATING);
					if (err)
						return err;
				}
			}
		}
	}
	return 0;
}

static __u8 service_flags(const struct k8s_service *svc)
{
	__u8 flags = 0;

	if (svc->affinity_client_ip)
		flags |= SVC_FLAG_AFFINITY;
	if (svc->ext_traffic_local)
		flags |= SVC_FLAG_EXT_LOCAL;
	if (svc->int_traffic_local)
		flags |= SVC_FLAG_INT_LOCAL;
	return flags;
}

static int add_frontends(const struct store *s, const struct store_service *ss,
			 const __be32 *addrs, size_t n_addrs, __u8 kind,
			 struct lb_service_spec *spec)
{
	const struct k8s_service *svc = &ss->svc;
	const struct store_slice_set *set = store_service_slices(s, ss->key);
	size_t n = spec->n_frontends + n_addrs * svc->n_ports;
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

			/* Socket LB and tc speak TCP and UDP; SCTP ports are skipped. */
			if (sp->proto != IPPROTO_TCP && sp->proto != IPPROTO_UDP)
				continue;
			*fe = (struct lb_frontend_spec){
				.addr = addrs[a],
				.port = htons(sp->port),
				.proto = sp->proto,
				.flags = kind | service_flags(svc),
				.affinity_timeout = svc->affinity_client_ip ? svc->affinity_timeout : 0,
			};
			spec->n_frontends++;
			err = port_backends(set, sp, fe);
			if (err)
				return err;
		}
	}
	return 0;
}

int lb_desired_service(const struct store *s, const char *svc_key, struct lb_service_spec *spec)
{
	const struct store_service *ss = store_get_service(s, svc_key);
	int err;

	memset(spec, 0, sizeof(*spec));
	if (!ss || ss->svc.type == K8S_SVC_EXTERNAL_NAME || ss->svc.headless)
		return 0;
	err = add_frontends(s, ss, ss->svc.cluster_ips, ss->svc.n_cluster_ips,
			    SVC_FLAG_CLUSTER_IP, spec);
	if (!err)
		err = add_frontends(s, ss, ss->svc.external_ips, ss->svc.n_external_ips,
				    SVC_FLAG_EXTERNAL_IP, spec);
	if (!err && ss->svc.type == K8S_SVC_LOAD_BALANCER)
		err = add_frontends(s, ss, ss->svc.lb_ips, ss->svc.n_lb_ips,
				    SVC_FLAG_LOAD_BALANCER, spec);
	if (err)
		lb_service_spec_free(spec);
	return err;
}
