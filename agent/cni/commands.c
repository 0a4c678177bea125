// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The plugin's commands (cni.h): each one request, answered when done. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "agent.h"
#include "cni.h"
#include "lb/reconcile.h"
#include "log.h"
#include "veth.h"

static cJSON *cni_error(int code, const char *msg, const char *details)
{
	cJSON *r = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(r, "cni_error");

	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "msg", msg);
	if (details && *details)
		cJSON_AddStringToObject(e, "details", details);
	return r;
}

static cJSON *cni_ok(cJSON *result)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddItemToObject(r, "result", result ? result : cJSON_CreateObject());
	return r;
}

static const char *req_str(const cJSON *req, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* The spec's container id: alphanumerics, then also '_', '.', '-'. */
static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n >= IPAM_OWNER_MAX || !isalnum((unsigned char)id[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i]))
			return false;
	return true;
}

static bool valid_ifname(const char *n)
{
	size_t len = strlen(n);

	if (!len || len >= IFNAMSIZ || !strcmp(n, ".") || !strcmp(n, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (n[i] == '/' || n[i] == ':' || isspace((unsigned char)n[i]))
			return false;
	return true;
}

const char *agent_cni_not_ready(struct agent *a)
{
	const char *st = a->dpx.state;

	if (!a->dpx.tc_loaded || (strcmp(st, "ready") && strcmp(st, "degraded")))
		return st[0] ? st : "the datapath is not programmed yet";
	if (!a->cni.ipam.pool.len)
		return "this node's Node has no IPv4 pod CIDR (spec.podCIDRs)";
	return NULL;
}

/* Into *devices_ns and *sync_ns (when given) the time each part took. */
static void realize_timed(struct agent *a, uint64_t *devices_ns, uint64_t *sync_ns)
{
	uint64_t next = UINT64_MAX, t0 = agent_mono_ns(), t1;

	/* The device and route notifications are queued by now: read them, so
	 * the reconciler finds the new pod's device. */
	agent_datapath_netdev_event(a);
	t1 = agent_mono_ns();
	agent_datapath_sync(a, lb_now_ms(), &next);
	if (devices_ns)
		*devices_ns = t1 - t0;
	if (sync_ns)
		*sync_ns = agent_mono_ns() - t1;
}

static void realize(struct agent *a)
{
	realize_timed(a, NULL, NULL);
}

static const char *attach_state(struct agent *a, int ifindex)
{
	for (int dir = TC_INGRESS; dir <= TC_EGRESS; dir++) {
		char key[32];

		snprintf(key, sizeof(key), "%d/%d", ifindex, dir);
		if (!ht_get(&a->dpx.attached, key, strlen(key)))
			return a->dpx.attach_error[0] ? a->dpx.attach_error
						      : "programs not attached";
	}
	return NULL;
}

/* Whether the endpoints map holds ip on ifindex and its programs are attached. */
static const char *realized(struct agent *a, __be32 ip, int ifindex)
{
	const struct ep_local *l = ht_get(&a->dpx.ep.endpoints, &ip, sizeof(ip));

	if (!l || (int)l->info.ifindex != ifindex)
		return "endpoints map entry not written";
	return attach_state(a, ifindex);
}

/* ep's programs detached (and forgotten), its veth deleted. */
static void teardown(struct agent *a, const struct cni_endpoint *ep)
{
	struct agent_dp *d = &a->dpx;
	int ifindex = if_nametoindex(ep->host_if);
	int err;

	for (int dir = TC_INGRESS; dir <= TC_EGRESS; dir++) {
		char key[32];

		snprintf(key, sizeof(key), "%d/%d", ifindex, dir);
		if (ifindex)
			free(ht_del(&d->attached, key, strlen(key)));
		tc_detach(&d->tc, ep->host_if, dir);
	}
	err = veth_delete(ep->host_if);
	if (err)
		pr_warn("cannot delete pod device", "dev=%s error=\"%s\"", ep->host_if,
			strerror(-err));
}

void cni_release(struct agent *a, struct cni_endpoint *ep)
{
	__be32 ip = ep->ip;

	teardown(a, ep);
	pr_info("CNI endpoint released", "container=%s ifname=%s pod=%s ip=%s dev=%s", ep->id,
		ep->ifname, ep->pod, inet_ntoa((struct in_addr){ ip }), ep->host_if);
	cni_registry_del(&a->cni, &a->store, ep);
	ipam_release(&a->cni.ipam, ip);
}

static cJSON *add_result(const struct cni_endpoint *ep, const struct veth_info *vi)
{
	cJSON *r = cJSON_CreateObject(), *ifs, *i, *ips, *routes;
	char mac[18], ip[INET_ADDRSTRLEN + 3];

	ifs = cJSON_AddArrayToObject(r, "interfaces");
	i = cJSON_CreateObject();
	cJSON_AddStringToObject(i, "name", ep->host_if);
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", vi->host_mac[0],
		 vi->host_mac[1], vi->host_mac[2], vi->host_mac[3], vi->host_mac[4],
		 vi->host_mac[5]);
	cJSON_AddStringToObject(i, "mac", mac);
	cJSON_AddItemToArray(ifs, i);
	i = cJSON_CreateObject();
	cJSON_AddStringToObject(i, "name", ep->ifname);
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", vi->pod_mac[0],
		 vi->pod_mac[1], vi->pod_mac[2], vi->pod_mac[3], vi->pod_mac[4], vi->pod_mac[5]);
	cJSON_AddStringToObject(i, "mac", mac);
	cJSON_AddStringToObject(i, "sandbox", ep->netns);
	cJSON_AddItemToArray(ifs, i);
	ips = cJSON_AddArrayToObject(r, "ips");
	i = cJSON_CreateObject();
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	strcat(ip, "/32");
	cJSON_AddStringToObject(i, "address", ip);
	cJSON_AddStringToObject(i, "gateway", CNI_GATEWAY);
	cJSON_AddNumberToObject(i, "interface", 1);
	cJSON_AddItemToArray(ips, i);
	routes = cJSON_AddArrayToObject(r, "routes");
	i = cJSON_CreateObject();
	cJSON_AddStringToObject(i, "dst", "0.0.0.0/0");
	cJSON_AddStringToObject(i, "gw", CNI_GATEWAY);
	cJSON_AddItemToArray(routes, i);
	cJSON_AddObjectToObject(r, "dns");
	return r;
}

static unsigned long us(uint64_t ns)
{
	return (unsigned long)(ns / 1000);
}

static cJSON *cmd_add(struct agent *a, const cJSON *req)
{
	const char *id = req_str(req, "container_id"), *ifname = req_str(req, "ifname");
	const char *netns = req_str(req, "netns"), *why;
	const char *pns = req_str(req, "pod_namespace"), *pname = req_str(req, "pod_name");
	struct cni_endpoint ep = {}, *old;
	struct veth_info vi;
	char err[320] = "";
	unsigned int mtu = 0;
	uint64_t t0 = agent_mono_ns(), t_ipam, t_veth, t_record, t_devices = 0, t_sync = 0;
	struct stat st;
	int ret;

	if (!valid_id(id))
		return cni_error(CNI_ERR_INVALID_ENV, "invalid CNI_CONTAINERID", id);
	if (!valid_ifname(ifname))
		return cni_error(CNI_ERR_INVALID_ENV, "invalid CNI_IFNAME", ifname);
	if (!*netns)
		return cni_error(CNI_ERR_INVALID_ENV, "CNI_NETNS is required for ADD", NULL);
	if (stat(netns, &st))
		return cni_error(CNI_ERR_INVALID_ENV, "CNI_NETNS names no network namespace",
				 netns);
	why = agent_cni_not_ready(a);
	if (why)
		return cni_error(CNI_ERR_TRY_AGAIN_LATER, "axon-agent is not ready to add pods",
				 why);
	/* A repeated ADD: rebuilt, with the address it already holds. */
	old = cni_registry_get(&a->cni, id, ifname);
	if (old) {
		teardown(a, old);
		cni_registry_del(&a->cni, &a->store, old);
	}
	snprintf(ep.id, sizeof(ep.id), "%s", id);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", ifname);
	snprintf(ep.netns, sizeof(ep.netns), "%s", netns);
	if (*pns && *pname)
		snprintf(ep.pod, sizeof(ep.pod), "%s/%s", pns, pname);
	cni_host_ifname(id, ifname, ep.host_if);
	t_ipam = agent_mono_ns();
	ret = ipam_allocate(&a->cni.ipam, id, ifname, ep.pod, &ep.ip, err, sizeof(err));
	if (ret == -ENOSPC)
		return cni_error(CNI_ERR_IPAM_EXHAUSTED, err, NULL);
	if (ret == -EAGAIN)
		return cni_error(CNI_ERR_TRY_AGAIN_LATER, "axon-agent is not ready to add pods",
				 err);
	if (ret)
		return cni_error(CNI_ERR_SETUP, "IPAM failed", err);
	t_ipam = agent_mono_ns() - t_ipam;
	t_veth = agent_mono_ns();
	/* The native device's, as its last change left it (no netlink read). */
	if (a->dpx.n_native > 0)
		mtu = a->dpx.native[0].mtu;
	ret = veth_create(&(struct veth_spec){ .netns = netns, .ifname = ifname,
					       .host_if = ep.host_if, .ip = ep.ip, .mtu = mtu },
			  &vi, err, sizeof(err));
	if (ret) {
		ipam_release(&a->cni.ipam, ep.ip);
		return cni_error(CNI_ERR_SETUP, "cannot set up the pod's interface", err);
	}
	t_veth = agent_mono_ns() - t_veth;
	t_record = agent_mono_ns();
	ret = cni_registry_add(&a->cni, &a->store, &ep);
	t_record = agent_mono_ns() - t_record;
	if (ret) {
		veth_delete(ep.host_if);
		ipam_release(&a->cni.ipam, ep.ip);
		snprintf(err, sizeof(err), "%s", strerror(-ret));
		return cni_error(CNI_ERR_SETUP, "cannot record the endpoint", err);
	}
	realize_timed(a, &t_devices, &t_sync);
	why = realized(a, ep.ip, vi.host_ifindex);
	if (why) {
		snprintf(err, sizeof(err), "%s", why);
		cni_release(a, cni_registry_get(&a->cni, id, ifname));
		realize(a);
		return cni_error(CNI_ERR_SETUP, "the datapath did not take the endpoint", err);
	}
	a->cni.adds++;
	/* Where the time went, step by step (docs/cni.md, Performance). */
	pr_info("CNI endpoint added",
		"container=%s ifname=%s pod=%s ip=%s dev=%s mtu=%u ms=%.1f ipam_us=%lu veth_us=%lu "
		"sockets_us=%lu create_us=%lu host_us=%lu pod_us=%lu route_us=%lu record_us=%lu "
		"devices_us=%lu sync_us=%lu",
		id, ifname, ep.pod, inet_ntoa((struct in_addr){ ep.ip }), ep.host_if, mtu,
		(agent_mono_ns() - t0) / 1e6, us(t_ipam), us(t_veth),
		us(vi.step_ns[VETH_STEP_SOCKETS]), us(vi.step_ns[VETH_STEP_CREATE]),
		us(vi.step_ns[VETH_STEP_HOST]), us(vi.step_ns[VETH_STEP_POD]),
		us(vi.step_ns[VETH_STEP_ROUTE]), us(t_record), us(t_devices), us(t_sync));
	return cni_ok(add_result(&ep, &vi));
}

static cJSON *cmd_del(struct agent *a, const cJSON *req)
{
	const char *id = req_str(req, "container_id"), *ifname = req_str(req, "ifname");
	struct cni_endpoint *ep;
	__be32 ip;

	if (!valid_id(id))
		return cni_error(CNI_ERR_INVALID_ENV, "invalid CNI_CONTAINERID", id);
	if (!valid_ifname(ifname))
		return cni_error(CNI_ERR_INVALID_ENV, "invalid CNI_IFNAME", ifname);
	ep = cni_registry_get(&a->cni, id, ifname);
	if (ep) {
		cni_release(a, ep);
		realize(a);
		a->cni.dels++;
	}
	/* An address whose ADD failed half-way (or never registered). */
	ip = ipam_lookup(&a->cni.ipam, id, ifname);
	if (ip)
		ipam_release(&a->cni.ipam, ip);
	return cni_ok(NULL);
}

static cJSON *cmd_check(struct agent *a, const cJSON *req)
{
	const char *id = req_str(req, "container_id"), *ifname = req_str(req, "ifname");
	const char *netns = req_str(req, "netns"), *prev = req_str(req, "prev_address");
	struct cni_endpoint *ep = cni_registry_get(&a->cni, id, ifname);
	char err[320] = "";
	const char *why;

	if (!ep)
		return cni_error(3, "container unknown to axon-agent", id);
	if (*netns && strcmp(netns, ep->netns))
		return cni_error(CNI_ERR_CHECK, "CNI_NETNS differs from the one added", ep->netns);
	if (*prev) {
		char want[INET_ADDRSTRLEN + 3];

		inet_ntop(AF_INET, &ep->ip, want, INET_ADDRSTRLEN);
		strcat(want, "/32");
		if (strcmp(prev, want))
			return cni_error(CNI_ERR_CHECK, "prevResult's address is not the pod's", want);
	}
	if (veth_check(&(struct veth_spec){ .netns = ep->netns, .ifname = ep->ifname,
					    .host_if = ep->host_if, .ip = ep->ip },
		       err, sizeof(err)))
		return cni_error(CNI_ERR_CHECK, "the pod's network is not as added", err);
	if (ipam_lookup(&a->cni.ipam, id, ifname) != ep->ip)
		return cni_error(CNI_ERR_CHECK, "the pod's address is not allocated to it", NULL);
	why = realized(a, ep->ip, if_nametoindex(ep->host_if));
	if (why)
		return cni_error(CNI_ERR_CHECK, "the datapath does not hold the endpoint", why);
	return cni_ok(NULL);
}

/* The attachments the runtime still holds: "id/ifname" keys. */
static int gc_valid(const cJSON *req, struct htable *valid)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(req, "attachments"), *att;
	int err = ht_init(valid);

	if (err)
		return err;
	if (!cJSON_IsArray(list))
		return -EINVAL;
	cJSON_ArrayForEach(att, list) {
		const char *id = req_str(att, "containerID"), *ifn = req_str(att, "ifname");
		char key[IPAM_OWNER_MAX + IFNAMSIZ + 1];
		int n = snprintf(key, sizeof(key), "%s/%s", id, ifn);

		if (!*id || !*ifn)
			return -EINVAL;
		if (ht_put(valid, key, n, (void *)1, NULL))
			return -ENOMEM;
	}
	return 0;
}

static cJSON *cmd_gc(struct agent *a, const cJSON *req)
{
	struct htable valid = {};
	struct ipam_alloc *al = NULL;
	size_t n = 0, released = 0;
	int err = gc_valid(req, &valid);

	if (err) {
		ht_destroy(&valid);
		return cni_error(CNI_ERR_INVALID_CONFIG,
				 "cni.dev/attachments must list {containerID, ifname} objects",
				 NULL);
	}
	for (struct ht_entry *e = ht_first(&a->cni.eps); e;) {
		struct cni_endpoint *ep = e->value;

		char key[IPAM_OWNER_MAX + IFNAMSIZ + 1];
		int kl = snprintf(key, sizeof(key), "%s/%s", ep->id, ep->ifname);

		/* Next first: release() removes ep from the table. */
		e = ht_next(&a->cni.eps, e);
		if (ht_get(&valid, key, kl))
			continue;
		cni_release(a, ep);
		released++;
	}
	/* Allocations without an endpoint, not held by the runtime either. */
	if (!ipam_list(&a->cni.ipam, &al, &n)) {
		for (size_t i = 0; i < n; i++) {
			char key[IPAM_OWNER_MAX + IFNAMSIZ + 1];
			int kl = snprintf(key, sizeof(key), "%s/%s", al[i].owner, al[i].ifname);

			if (!strcmp(al[i].owner, IPAM_ROUTER_OWNER) || ht_get(&valid, key, kl) ||
			    cni_registry_get(&a->cni, al[i].owner, al[i].ifname))
				continue;
			ipam_release(&a->cni.ipam, al[i].ip);
			released++;
		}
		free(al);
	}
	ht_destroy(&valid);
	if (released) {
		realize(a);
		pr_info("CNI GC released attachments the runtime no longer holds", "count=%zu",
			released);
	}
	return cni_ok(NULL);
}

static cJSON *cmd_status(struct agent *a)
{
	char reason[HEALTH_REASON_MAX];
	const char *why;

	if (!agent_ready(a, reason, sizeof(reason)))
		return cni_error(CNI_ERR_NOT_AVAILABLE, "axon-agent is not ready", reason);
	why = agent_cni_not_ready(a);
	if (why)
		return cni_error(CNI_ERR_NOT_AVAILABLE, "axon-agent cannot add pods", why);
	return cni_ok(NULL);
}

cJSON *agent_cni_handle(struct agent *a, const char *cmd, const cJSON *req)
{
	if (!strcmp(cmd, "exec"))
		return cni_exec(a, req);
	if (!a->cni.inited)
		return cni_error(CNI_ERR_TRY_AGAIN_LATER, "axon-agent's CNI state is not loaded",
				 a->cni.conf_error);
	if (!strcmp(cmd, "add"))
		return cmd_add(a, req);
	if (!strcmp(cmd, "del"))
		return cmd_del(a, req);
	if (!strcmp(cmd, "check"))
		return cmd_check(a, req);
	if (!strcmp(cmd, "gc"))
		return cmd_gc(a, req);
	if (!strcmp(cmd, "status"))
		return cmd_status(a);
	return NULL;
}
