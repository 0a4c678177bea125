/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's side of the axon-cni plugin: the API commands the plugin sends
 * (one per invocation), the endpoints it created, and the conflist.
 *
 * The plugin forwards each invocation whole ("cni exec", exec.c: the CNI_*
 * environment and the network config), which is checked here and run as
 * one of these, with the fields the checks produced:
 *   cni add     {container_id, netns, ifname, pod_namespace, pod_name}:
 *               an address (ipam.h), the veth (veth.h), the endpoint
 *               registered and realized (endpoints map entry written,
 *               programs attached) before the answer: {"result": {...}}
 *   cni del     {container_id, ifname}: the veth, route, address, map entry
 *               gone; an unknown container is a success
 *   cni check   {container_id, netns, ifname}: interface, address, routes
 *   cni gc      {attachments: [{containerID, ifname}]}: every endpoint and
 *               allocation not listed is released
 *   cni status  ready to add pods, or why not
 * Failures answer {"cni_error": {"code", "msg", "details"}} with the CNI
 * spec's codes (cni/cni.h in the plugin): 11 while the agent cannot add pods
 * yet (no programs loaded, no Node, no pod CIDR).
 *
 * Registered endpoints are kept as one JSON file per (container, ifname)
 * under <state-dir>/cni/endpoints, and allocations under <state-dir>/cni/ipam:
 * a restarted agent knows them again, so DEL still releases everything.
 * The store sees them as store->cni_endpoints (endpoints/desired.h).
 *
 * Each loop turn (agent_cni_tick): the pool follows this Node's pod CIDR;
 * --write-cni-conf-when-ready writes the conflist once the agent is ready
 * and can add pods (the Node has a pod CIDR);
 * every minute, endpoints whose network namespace and host device are both
 * gone (a runtime that never called DEL) are released.
 */
#ifndef AXON_CNI_H
#define AXON_CNI_H

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include <cjson/cJSON.h>

#include "endpoints/desired.h"
#include "htable.h"
#include "ipam/ipam.h"

/* The spec's error codes the agent answers with. */
#define CNI_ERR_INVALID_ENV		4
#define CNI_ERR_DECODE			6
#define CNI_ERR_INVALID_CONFIG		7
#define CNI_ERR_TRY_AGAIN_LATER		11
#define CNI_ERR_NOT_AVAILABLE		50
/* Axon's own (100+). */
#define CNI_ERR_IPAM_EXHAUSTED		100
#define CNI_ERR_SETUP			101	/* a netlink or map step failed */
#define CNI_ERR_CHECK			102	/* CHECK found something missing */

#define CNI_LEAK_CHECK_MS		60000

struct agent;

struct cni_endpoint {
	char id[IPAM_OWNER_MAX];	/* CNI_CONTAINERID */
	char ifname[IFNAMSIZ];		/* CNI_IFNAME */
	char netns[256];		/* CNI_NETNS */
	char host_if[IFNAMSIZ];
	char pod[IPAM_POD_MAX];		/* "namespace/name" (K8S_POD_*), "" if not given */
	__be32 ip;
	struct local_endpoint le;	/* what the store sees (by_ip holds a copy) */
	unsigned int pod_missing_checks; /* leak checks in a row without its Pod */
};

struct agent_cni {
	bool inited;
	struct ipam ipam;
	char dir[256];			/* <state-dir>/cni/endpoints */
	struct htable eps;		/* "id/ifname" -> struct cni_endpoint */
	struct htable by_ip;		/* __be32 -> struct local_endpoint */
	bool conf_written;
	char conf_error[200];
	uint64_t next_leak_check_ms;
	unsigned long adds, dels, leaks_released;
};

int agent_cni_init(struct agent *a);
void agent_cni_close(struct agent *a);
void agent_cni_tick(struct agent *a);
/* "cni add" ... (cmd without the "cni " prefix); NULL for an unknown one. */
cJSON *agent_cni_handle(struct agent *a, const char *cmd, const cJSON *req);
/* Why pods cannot be added yet (no programs loaded, no Node, no pod CIDR);
 * NULL when they can. */
const char *agent_cni_not_ready(struct agent *a);
/* For status: {"pool", "allocated", "capacity", "allocations": [{ip, owner, pod}]}. */
cJSON *agent_cni_ipam_status(struct agent *a);

/* Tear down ep's device and programs, forget it, release its address
 * (commands.c); the datapath's next pass removes its map entry. */
void cni_release(struct agent *a, struct cni_endpoint *ep);

/* exec.c: "cni exec", an invocation forwarded whole by the plugin. */
cJSON *cni_exec(struct agent *a, const cJSON *req);

/* registry.c */
int cni_registry_load(struct agent_cni *c, struct store *s);
int cni_registry_add(struct agent_cni *c, struct store *s, const struct cni_endpoint *ep);
void cni_registry_del(struct agent_cni *c, struct store *s, struct cni_endpoint *ep);
struct cni_endpoint *cni_registry_get(struct agent_cni *c, const char *id, const char *ifname);
/* The host device's name for (id, ifname): "lxc" + 12 hex digits of a hash. */
void cni_host_ifname(const char *id, const char *ifname, char *out);

/* conf.c: --write-cni-conf-when-ready */
void cni_conf_tick(struct agent *a);

#endif /* AXON_CNI_H */
