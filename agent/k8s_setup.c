// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The apiserver client from the agent's flags: where to connect (kubeconfig
 * or in-cluster, then --k8s-api-server or --k8s-api-server-urls), how hard
 * to push (QPS, burst, backoff, LIST page size), and
 * --k8s-prefer-service-address, which moves the client to the
 * default/kubernetes Service's ClusterIP once the Service watch has seen it.
 *
 * Why the watch and not KUBERNETES_SERVICE_HOST: Axon replaces kube-proxy, so
 * its chart points that variable at the apiserver itself; the ClusterIP is
 * only reachable once a datapath (Axon's socket LB in the agent's cgroup, or
 * kube-proxy) serves it, and the watch is where the agent learns it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "agent.h"
#include "log.h"

/* Replace cfg's servers with a copy of each URL of a comma list. */
static int set_servers(struct k8s_client_config *kc, const char *list)
{
	size_t n = 1;
	char **servers;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	servers = calloc(n, sizeof(*servers));
	if (!servers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(list, ",");

		servers[i] = strndup(list, len);
		if (!servers[i]) {
			while (i--)
				free(servers[i]);
			free(servers);
			return -ENOMEM;
		}
		list += len + (list[len] == ',');
	}
	for (size_t i = 0; i < kc->n_servers; i++)
		free(kc->servers[i]);
	free(kc->servers);
	kc->servers = servers;
	kc->n_servers = n;
	return 0;
}

int agent_k8s_client_config_sa(const struct agent_config *cfg, const char *sa_dir,
			       struct k8s_client_config *kc, char *err, size_t errlen)
{
	int ret;

	memset(kc, 0, sizeof(*kc));
	if (cfg->kubeconfig) {
		ret = k8s_config_from_kubeconfig(cfg->kubeconfig, kc, err, errlen);
	} else if (cfg->k8s_server_urls || cfg->k8s_server) {
		/* The servers are the flag's: only the credentials come from
		 * the pod, so KUBERNETES_SERVICE_HOST (which a kube-proxy-free
		 * cluster may not even set usefully) is not needed. */
		ret = k8s_config_service_account(sa_dir, kc, err, errlen);
		if (ret) {
			char why[256];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "%s (without --kubeconfig, the token and CA for "
				 "--k8s-api-server%s come from the pod's service account)", why,
				 cfg->k8s_server_urls ? "-urls" : "");
		}
	} else {
		ret = k8s_config_in_cluster(sa_dir, kc, err, errlen);
	}
	if (ret)
		return ret;
	ret = 0;
	if (cfg->k8s_server_urls)
		ret = set_servers(kc, cfg->k8s_server_urls);
	else if (cfg->k8s_server)
		ret = set_servers(kc, cfg->k8s_server);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		k8s_config_free(kc);
		return ret;
	}
	kc->qps = cfg->k8s_qps;
	kc->burst = cfg->k8s_burst;
	kc->backoff_base_ms = cfg->k8s_backoff_base_ms;
	kc->backoff_max_ms = cfg->k8s_backoff_max_ms;
	kc->list_limit = cfg->k8s_list_limit;
	kc->no_watch_list = !cfg->k8s_watch_list;
	/* The flag can only turn verification off on top of a kubeconfig, never
	 * back on: a kubeconfig that asks for insecure stays insecure (and both
	 * are logged by the client). */
	if (cfg->k8s_insecure)
		kc->insecure = true;
	k8s_config_defaults(kc);
	return 0;
}

int agent_k8s_client_config(const struct agent_config *cfg, struct k8s_client_config *kc,
			    char *err, size_t errlen)
{
	return agent_k8s_client_config_sa(cfg, NULL, kc, err, errlen);
}

int agent_k8s_client_create(struct agent *a)
{
	const struct agent_config *c = &a->cfg;
	struct k8s_client_config kc;
	char err[512] = "";
	int ret;

	ret = agent_k8s_client_config(c, &kc, err, sizeof(err));
	if (ret) {
		pr_err("no apiserver configuration", "source=%s error=\"%s\"",
		       c->kubeconfig ? c->kubeconfig
		       : c->k8s_server_urls || c->k8s_server ? "flags+service-account"
		       : "in-cluster", err);
		return ret;
	}
	a->k8s = k8s_client_new(&kc, err, sizeof(err));
	k8s_config_free(&kc);
	if (!a->k8s) {
		pr_err("cannot create apiserver client", "error=\"%s\"", err);
		return -EINVAL;
	}
	return 0;
}

int agent_k8s_service_url(const struct k8s_service *svc, const char *scheme_of, char *url,
			  size_t len)
{
	const struct k8s_service_port *port = NULL;
	char ip[INET_ADDRSTRLEN];

	if (strcmp(svc->meta.namespace, "default") || strcmp(svc->meta.name, "kubernetes") ||
	    svc->headless || !svc->n_cluster_ips)
		return -ENOENT;
	/* The apiserver names its port "https"; else the first TCP port. */
	for (size_t i = 0; i < svc->n_ports; i++) {
		const struct k8s_service_port *p = &svc->ports[i];

		if (p->proto != IPPROTO_TCP)
			continue;
		if (!strcmp(p->name, "https")) {
			port = p;
			break;
		}
		if (!port)
			port = p;
	}
	if (!port)
		return -ENOENT;
	inet_ntop(AF_INET, &svc->cluster_ips[0], ip, sizeof(ip));
	/* Same scheme as the configured servers: a real apiserver's certificate
	 * names the Service's ClusterIP, so the same CA verifies it. */
	snprintf(url, len, "%s://%s:%u", strncmp(scheme_of, "http://", 7) ? "https" : "http", ip,
		 port->port);
	return 0;
}

void agent_k8s_service_seen(struct agent *a, const struct k8s_service *svc)
{
	const char *const *servers;
	char url[64];
	size_t n;
	int ret;

	if (!a->cfg.k8s_prefer_service || !a->k8s)
		return;
	servers = k8s_client_servers(a->k8s, &n);
	if (agent_k8s_service_url(svc, servers[0], url, sizeof(url)))
		return;
	ret = k8s_client_prefer_server(a->k8s, url);
	if (ret)
		pr_warn("cannot prefer the kubernetes Service", "url=%s error=\"%s\"", url,
			strerror(-ret));
}

/* status: every apiserver URL in the order they are tried (the preferred
 * Service address last, as it is appended once known). */
void agent_status_servers(cJSON *k, const struct k8s_client *c)
{
	cJSON *arr = cJSON_AddArrayToObject(k, "servers");
	const char *const *servers;
	size_t n;

	servers = k8s_client_servers(c, &n);
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(servers[i]));
}
