// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* struct k8s_client_config: defaults, copies, and the in-cluster source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s/internal.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

void k8s_config_defaults(struct k8s_client_config *cfg)
{
	if (!cfg->qps)
		cfg->qps = 10;
	if (!cfg->burst)
		cfg->burst = 20;
	if (!cfg->backoff_base_ms)
		cfg->backoff_base_ms = 1000;
	if (!cfg->backoff_max_ms)
		cfg->backoff_max_ms = 120000;
	if (!cfg->list_limit)
		cfg->list_limit = 500;
	if (!cfg->watch_timeout_s)
		cfg->watch_timeout_s = 300;
}

void k8s_config_free(struct k8s_client_config *cfg)
{
	for (size_t i = 0; i < cfg->n_servers; i++)
		free(cfg->servers[i]);
	free(cfg->servers);
	free(cfg->ca_file);
	free(cfg->ca_data);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->cert_data);
	free(cfg->key_data);
	memset(cfg, 0, sizeof(*cfg));
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int k8s_config_copy(struct k8s_client_config *dst, const struct k8s_client_config *src)
{
	struct k8s_client_config c = {
	    .insecure = src->insecure,
	    .qps = src->qps,
	    .burst = src->burst,
	    .backoff_base_ms = src->backoff_base_ms,
	    .backoff_max_ms = src->backoff_max_ms,
	    .list_limit = src->list_limit,
	    .watch_timeout_s = src->watch_timeout_s,
	    .no_watch_list = src->no_watch_list,
	};

	if (dup_str(&c.ca_file, src->ca_file) || dup_str(&c.ca_data, src->ca_data) ||
	    dup_str(&c.token, src->token) || dup_str(&c.token_file, src->token_file) ||
	    dup_str(&c.cert_file, src->cert_file) || dup_str(&c.key_file, src->key_file) ||
	    dup_str(&c.cert_data, src->cert_data) || dup_str(&c.key_data, src->key_data))
		goto nomem;
	if (src->n_servers) {
		c.servers = calloc(src->n_servers, sizeof(*c.servers));
		if (!c.servers)
			goto nomem;
		for (size_t i = 0; i < src->n_servers; i++) {
			if (dup_str(&c.servers[i], src->servers[i]))
				goto nomem;
			c.n_servers = i + 1;
		}
	}
	*dst = c;
	return 0;
nomem:
	k8s_config_free(&c);
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}

int k8s_config_service_account(const char *dir, struct k8s_client_config *cfg, char *err,
			       size_t errlen)
{
	char *token = NULL, *ca = NULL;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!dir)
		dir = SA_DIR;
	if (asprintf(&token, "%s/token", dir) < 0 || asprintf(&ca, "%s/ca.crt", dir) < 0) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	if (access(token, R_OK) || access(ca, R_OK)) {
		ret = -errno;
		snprintf(err, errlen, "service account: %s: %s", access(token, R_OK) ? token : ca,
			 strerror(-ret));
		goto cleanup;
	}
	/* The projected token rotates: read it from the file, not once. */
	cfg->token_file = token;
	cfg->ca_file = ca;
	k8s_config_defaults(cfg);
	return 0;
cleanup:
	free(token);
	free(ca);
	return ret;
}

int k8s_config_in_cluster(const char *dir, struct k8s_client_config *cfg, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *server = NULL;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen,
			 "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
			 "(not running in a pod? use a kubeconfig or --k8s-api-server-urls)");
		return -ENOENT;
	}
	ret = k8s_config_service_account(dir, cfg, err, errlen);
	if (ret)
		return ret;
	cfg->servers = calloc(1, sizeof(*cfg->servers));
	/* An IPv6 service host needs brackets in a URL. */
	if (!cfg->servers ||
	    asprintf(&server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) <
		    0) {
		snprintf(err, errlen, "out of memory");
		k8s_config_free(cfg);
		return -ENOMEM;
	}
	cfg->servers[0] = server;
	cfg->n_servers = 1;
	return 0;
}
