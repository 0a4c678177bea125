// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pods' host ports as load-balancer frontends (hostport.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "axon/lb.h"
#include "addr.h"
#include "endpoints/desired.h"
#include "log.h"
#include "lb/hostport.h"

bool lb_host_port_key(const char *key, __u16 *port, __u8 *proto)
{
	char name[8], check[STORE_KEY_MAX];
	unsigned int p;

	if (strncmp(key, "HostPort/", 9) || sscanf(key + 9, "%7[A-Z]/%5u", name, &p) != 2 || !p ||
	    p > 65535 || k8s_proto_from_string(name, proto))
		return false;
	*port = (__u16)p;
	/* Exactly the canonical form, nothing trailing. */
	return !store_host_port_key(check, sizeof(check), *port, *proto) && !strcmp(check, key);
}

/* The pod's address: status.podIP, else the CNI's endpoint named after it
 * (the plugin knows it before the kubelet reports it). 0: none yet. */
static __be32 pod_ip(const struct store *s, const struct store_pod *sp)
{
	if (sp->pod.ipv4)
		return sp->pod.ipv4;
	if (!s->cni_endpoints)
		return 0;
	for (struct ht_entry *e = ht_first(s->cni_endpoints); e; e = ht_next(s->cni_endpoints, e)) {
		const struct local_endpoint *le = e->value;

		if (!strcmp(le->name, sp->key))
			return le->ip;
	}
	return 0;
}

/* Which pod owns a host port on one address. */
struct hp_claim {
	const struct store_pod *sp;
	const struct k8s_host_port *hp;
	__be32 ip;
};

static bool claim_before(const struct store_pod *a, const struct store_pod *b)
{
	int c = strcmp(a->pod.created, b->pod.created);

	return c ? c < 0 : strcmp(a->key, b->key) < 0;
}

/* The addresses host ports are served on: this node's, then loopback. */
static size_t host_port_addrs(const struct store *s, __be32 *addrs)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_self_ips; i++)
		addrs[n++] = s->self_ips[i];
	addrs[n++] = htonl(INADDR_LOOPBACK);
	return n;
}

/* claims[i]: the winner for addrs[i] among the pods that want (port, proto). */
static void host_port_claims(const struct store *s, __u16 port, __u8 proto, const __be32 *addrs,
			     size_t n_addrs, struct hp_claim *claims)
{
	memset(claims, 0, n_addrs * sizeof(*claims));
	for (struct ht_entry *e = ht_first(&s->pods); e; e = ht_next(&s->pods, e)) {
		const struct store_pod *sp = e->value;
		__be32 ip;

		if (!sp->pod.n_host_ports || sp->pod.host_network || k8s_pod_finished(&sp->pod) ||
		    !(ip = pod_ip(s, sp)))
			continue;
		for (size_t i = 0; i < sp->pod.n_host_ports; i++) {
			const struct k8s_host_port *hp = &sp->pod.host_ports[i];

			if (hp->host_port != port || hp->proto != proto)
				continue;
			for (size_t a = 0; a < n_addrs; a++) {
				if (hp->host_ip && hp->host_ip != addrs[a])
					continue;
				/* The same pod twice: its first listing holds. */
				if (claims[a].sp &&
				    (claims[a].sp == sp || claim_before(claims[a].sp, sp)))
					continue;
				claims[a] = (struct hp_claim){.sp = sp, .hp = hp, .ip = ip};
			}
		}
	}
}

int lb_desired_host_port(const struct store *s, const char *key, struct lb_service_spec *spec,
			 const struct store_pod **owners)
{
	struct hp_claim claims[LB_HOST_PORT_FRONTENDS_MAX];
	__be32 addrs[LB_HOST_PORT_FRONTENDS_MAX];
	size_t n_addrs;
	__u16 port;
	__u8 proto;

	memset(spec, 0, sizeof(*spec));
	if (!lb_host_port_key(key, &port, &proto))
		return 0;
	n_addrs = host_port_addrs(s, addrs);
	host_port_claims(s, port, proto, addrs, n_addrs, claims);
	for (size_t a = 0; a < n_addrs; a++) {
		struct lb_frontend_spec *fe;

		if (!claims[a].sp)
			continue;
		if (!spec->frontends) {
			spec->frontends = calloc(n_addrs, sizeof(*spec->frontends));
			if (!spec->frontends)
				goto nomem;
		}
		fe = &spec->frontends[spec->n_frontends];
		*fe = (struct lb_frontend_spec){
		    .addr = addrs[a],
		    .port = htons(port),
		    .proto = proto,
		    .flags = SVC_FLAG_HOST_PORT,
		};
		fe->backends = malloc(sizeof(*fe->backends));
		if (!fe->backends)
			goto nomem;
		fe->backends[0] = (struct lb_backend_spec){
		    .addr = claims[a].ip,
		    .port = htons(claims[a].hp->container_port),
		    .proto = proto,
		    .state = BACKEND_STATE_ACTIVE,
		};
		fe->n_backends = 1;
		if (owners)
			owners[spec->n_frontends] = claims[a].sp;
		spec->n_frontends++;
	}
	return 0;
nomem:
	lb_service_spec_free(spec);
	return -ENOMEM;
}

void lb_host_port_log_pod(const struct store *s, const struct k8s_pod *pod)
{
	struct hp_claim claims[LB_HOST_PORT_FRONTENDS_MAX];
	__be32 addrs[LB_HOST_PORT_FRONTENDS_MAX];
	size_t n_addrs = host_port_addrs(s, addrs);

	if (pod->host_port_skipped)
		pr_warn("host port not served", "pod=%s/%s error=\"%s\"", pod->namespace, pod->name,
			pod->host_port_skipped);
	for (size_t i = 0; i < pod->n_host_ports; i++) {
		const struct k8s_host_port *hp = &pod->host_ports[i];

		host_port_claims(s, hp->host_port, hp->proto, addrs, n_addrs, claims);
		for (size_t a = 0; a < n_addrs; a++) {
			char fe[ADDR_STR_MAX];

			if (!claims[a].sp || (hp->host_ip && hp->host_ip != addrs[a]) ||
			    (!strcmp(claims[a].sp->pod.namespace, pod->namespace) &&
			     !strcmp(claims[a].sp->pod.name, pod->name)))
				continue;
			pr_warn("host port conflict: held by another pod",
				"pod=%s/%s frontend=%s holder=%s", pod->namespace, pod->name,
				format_addr_port(fe, sizeof(fe), addrs[a], htons(hp->host_port),
						 hp->proto),
				claims[a].sp->key);
		}
	}
}
