// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * k8s_dump: run informers against an apiserver and print one line per
 * callback, for end-to-end tests of the k8s client and for poking at a
 * cluster by hand.
 *
 *   UPSERT ns/name rv=N        (cluster-scoped objects: UPSERT name rv=N)
 *   DELETE ns/name
 *   SYNCED informer
 *   INVALID ns/name error=...  (--parse: the object parser refused it)
 *   STATUS informer state=... synced=0|1 objects=N lists=N list_mode=watch-list|paginated|-
 *          events=N errors=N rv=RV
 *          last_error="..."    (--status: on SIGUSR1 and at exit)
 *   CLIENT server=URL connected=0|1 version=V
 *
 * Logs go to stderr. Exit 0 on SIGINT/SIGTERM, --exit-after-sync or
 * --timeout; 3 when --timeout expired before --exit-after-sync was met.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "k8s/client.h"
#include "k8s/objects.h"
#include "k8s/policy_objects.h"

#define MAX_INFORMERS 32

struct dump {
	const char *name;
	const char *path;
	bool parse;
	bool synced;
};

static volatile sig_atomic_t stop, want_status;
static struct k8s_client *client;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_status = 1;
	else
		stop = 1;
	if (client)
		k8s_client_wakeup(client);
}

static const char *ns_name(char *buf, size_t len, const char *ns, const char *name)
{
	if (ns && *ns)
		snprintf(buf, len, "%s/%s", ns, name);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}

/* Run the parser that matches the resource, so tests see what the agent would. */
static int parse_object(const struct dump *d, const cJSON *obj, char *err, size_t errlen)
{
	const char *kind = strrchr(d->path, '/') + 1;
	int ret = 0;

	if (!strcmp(kind, "services")) {
		struct k8s_service o;

		ret = k8s_service_from_json(obj, &o, err, errlen);
		k8s_service_free(&o);
	} else if (!strcmp(kind, "endpointslices")) {
		struct k8s_endpointslice o;

		ret = k8s_endpointslice_from_json(obj, &o, err, errlen);
		k8s_endpointslice_free(&o);
	} else if (!strcmp(kind, "ciliumendpointslices")) {
		struct k8s_cilium_endpointslice o;

		ret = k8s_cilium_endpointslice_from_json(obj, &o, err, errlen);
		k8s_cilium_endpointslice_free(&o);
	} else if (!strcmp(kind, "nodes")) {
		struct k8s_node o;

		ret = k8s_node_from_json(obj, &o, err, errlen);
		k8s_node_free(&o);
	} else if (!strcmp(kind, "networkpolicies") || !strcmp(kind, "ciliumnetworkpolicies") ||
		   !strcmp(kind, "ciliumclusterwidenetworkpolicies")) {
		struct policy o;

		ret = !strcmp(kind, "networkpolicies")
			  ? k8s_network_policy_from_json(obj, &o, err, errlen)
			  : k8s_cilium_policy_from_json(
				obj, !strcmp(kind, "ciliumclusterwidenetworkpolicies"), &o, err, errlen);
		policy_free(&o);
	} else if (!strcmp(kind, "ciliumidentities")) {
		struct k8s_identity o;

		ret = k8s_identity_from_json(obj, &o, err, errlen);
		k8s_identity_free(&o);
	} else if (!strcmp(kind, "namespaces")) {
		struct k8s_namespace o;

		ret = k8s_namespace_from_json(obj, &o, err, errlen);
		k8s_namespace_free(&o);
	}
	return ret;
}

static int on_upsert(void *ctx, const cJSON *obj)
{
	struct dump *d = ctx;
	char key[K8S_NS_MAX + K8S_NAME_MAX], err[256];
	struct k8s_meta m;

	if (k8s_meta_from_json(obj, &m, err, sizeof(err))) {
		printf("INVALID ? error=\"%s\"\n", err);
		fflush(stdout);
		return -EINVAL;
	}
	ns_name(key, sizeof(key), m.namespace, m.name);
	if (d->parse && parse_object(d, obj, err, sizeof(err))) {
		printf("INVALID %s error=\"%s\"\n", key, err);
		fflush(stdout);
		return -EINVAL;
	}
	printf("UPSERT %s rv=%s\n", key, m.resource_version);
	fflush(stdout);
	return 0;
}

static int on_delete(void *ctx, const char *ns, const char *name)
{
	char key[K8S_NS_MAX + K8S_NAME_MAX];

	(void)ctx;
	printf("DELETE %s\n", ns_name(key, sizeof(key), ns, name));
	fflush(stdout);
	return 0;
}

static void on_synced(void *ctx)
{
	struct dump *d = ctx;

	d->synced = true;
	printf("SYNCED %s\n", d->name);
	fflush(stdout);
}

static const struct k8s_informer_ops ops = {
    .on_upsert = on_upsert,
    .on_delete = on_delete,
    .on_synced = on_synced,
};

static void print_status(struct k8s_client *c)
{
	struct k8s_informer *infs[MAX_INFORMERS];
	size_t n = k8s_client_informers(c, infs, MAX_INFORMERS);

	printf("CLIENT server=%s connected=%d version=%s\n", k8s_client_server(c),
	       k8s_client_connected(c), k8s_client_version(c)[0] ? k8s_client_version(c) : "-");
	for (size_t i = 0; i < n && i < MAX_INFORMERS; i++) {
		struct k8s_informer_status st;

		k8s_informer_status(infs[i], &st);
		printf("STATUS %s state=%s synced=%d objects=%zu lists=%lu list_mode=%s events=%lu "
		       "errors=%lu rv=%s last_error=\"%s\"\n",
		       st.name, k8s_informer_state_name(st.state), st.synced, st.objects, st.lists,
		       !st.lists ? "-" : st.list_streamed ? "watch-list" : "paginated",
		       st.events, st.errors, st.resource_version[0] ? st.resource_version : "-",
		       st.last_error);
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: k8s_dump [--kubeconfig F | --in-cluster DIR] [--server URL]... [--token T]\n"
	    "                [--token-file F] [--ca F] [--insecure] [--selector S] [--parse]\n"
	    "                [--exit-after-sync] [--timeout SEC] [--status] [--qps N] [--burst N]\n"
	    "                [--limit N] [--watch-timeout SEC] [--backoff-base MS]\n"
	    "                [--backoff-max MS] [--no-watch-list] [-v] RESOURCE_PATH...\n"
	    "e.g.  k8s_dump --server http://127.0.0.1:8080 /api/v1/services\n");
}

enum {
	OPT_KUBECONFIG = 256,
	OPT_IN_CLUSTER,
	OPT_SERVER,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
	OPT_CA,
	OPT_INSECURE,
	OPT_SELECTOR,
	OPT_PARSE,
	OPT_EXIT_AFTER_SYNC,
	OPT_TIMEOUT,
	OPT_STATUS,
	OPT_QPS,
	OPT_BURST,
	OPT_LIMIT,
	OPT_WATCH_TIMEOUT,
	OPT_BACKOFF_BASE,
	OPT_BACKOFF_MAX,
	OPT_NO_WATCH_LIST,
};

static const struct option long_opts[] = {
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"in-cluster", required_argument, NULL, OPT_IN_CLUSTER},
    {"server", required_argument, NULL, OPT_SERVER},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"ca", required_argument, NULL, OPT_CA},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"selector", required_argument, NULL, OPT_SELECTOR},
    {"parse", no_argument, NULL, OPT_PARSE},
    {"exit-after-sync", no_argument, NULL, OPT_EXIT_AFTER_SYNC},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"status", no_argument, NULL, OPT_STATUS},
    {"qps", required_argument, NULL, OPT_QPS},
    {"burst", required_argument, NULL, OPT_BURST},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT},
    {"backoff-base", required_argument, NULL, OPT_BACKOFF_BASE},
    {"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
    {"no-watch-list", no_argument, NULL, OPT_NO_WATCH_LIST},
    {"help", no_argument, NULL, 'h'},
    {},
};

static int replace(char **dst, const char *src)
{
	free(*dst);
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
	struct k8s_client_config cfg = {}, over = {};
	const char *kubeconfig = NULL, *in_cluster = NULL, *selector = NULL;
	char *servers[8];
	size_t n_servers = 0;
	struct dump dumps[MAX_INFORMERS] = {};
	bool exit_after_sync = false, status = false, parse = false;
	double timeout_s = 0;
	struct timespec start, now;
	char err[512];
	int opt, ret = 1, n;

	while ((opt = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_KUBECONFIG:
			kubeconfig = optarg;
			break;
		case OPT_IN_CLUSTER:
			in_cluster = optarg;
			break;
		case OPT_SERVER:
			if (n_servers == 8) {
				fprintf(stderr, "k8s_dump: at most 8 --server\n");
				return 1;
			}
			servers[n_servers++] = optarg;
			break;
		case OPT_TOKEN:
			over.token = optarg;
			break;
		case OPT_TOKEN_FILE:
			over.token_file = optarg;
			break;
		case OPT_CA:
			over.ca_file = optarg;
			break;
		case OPT_INSECURE:
			over.insecure = true;
			break;
		case OPT_SELECTOR:
			selector = optarg;
			break;
		case OPT_PARSE:
			parse = true;
			break;
		case OPT_EXIT_AFTER_SYNC:
			exit_after_sync = true;
			break;
		case OPT_TIMEOUT:
			timeout_s = atof(optarg);
			break;
		case OPT_STATUS:
			status = true;
			break;
		case OPT_QPS:
			over.qps = atof(optarg);
			break;
		case OPT_BURST:
			over.burst = atoi(optarg);
			break;
		case OPT_LIMIT:
			over.list_limit = atoi(optarg);
			break;
		case OPT_NO_WATCH_LIST:
			over.no_watch_list = true;
			break;
		case OPT_WATCH_TIMEOUT:
			over.watch_timeout_s = atoi(optarg);
			break;
		case OPT_BACKOFF_BASE:
			over.backoff_base_ms = atoi(optarg);
			break;
		case OPT_BACKOFF_MAX:
			over.backoff_max_ms = atoi(optarg);
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	n = argc - optind;
	if (n <= 0 || n > MAX_INFORMERS) {
		usage(stderr);
		return 1;
	}

	if (kubeconfig)
		ret = k8s_config_from_kubeconfig(kubeconfig, &cfg, err, sizeof(err));
	else if (in_cluster || !n_servers)
		ret = k8s_config_in_cluster(in_cluster, &cfg, err, sizeof(err));
	else
		ret = 0;
	if (ret) {
		fprintf(stderr, "k8s_dump: %s\n", err);
		return 1;
	}
	if (n_servers) {
		for (size_t i = 0; i < cfg.n_servers; i++)
			free(cfg.servers[i]);
		free(cfg.servers);
		cfg.servers = calloc(n_servers, sizeof(char *));
		cfg.n_servers = 0;
		for (size_t i = 0; cfg.servers && i < n_servers; i++) {
			cfg.servers[i] = strdup(servers[i]);
			cfg.n_servers += cfg.servers[i] != NULL;
		}
	}
	if ((over.token && replace(&cfg.token, over.token)) ||
	    (over.token_file && replace(&cfg.token_file, over.token_file)) ||
	    (over.ca_file && replace(&cfg.ca_file, over.ca_file))) {
		fprintf(stderr, "k8s_dump: out of memory\n");
		goto cleanup;
	}
	cfg.insecure |= over.insecure;
	cfg.no_watch_list |= over.no_watch_list;
	cfg.qps = over.qps ? over.qps : cfg.qps;
	cfg.burst = over.burst ? over.burst : cfg.burst;
	cfg.list_limit = over.list_limit ? over.list_limit : cfg.list_limit;
	cfg.watch_timeout_s = over.watch_timeout_s ? over.watch_timeout_s : cfg.watch_timeout_s;
	cfg.backoff_base_ms = over.backoff_base_ms ? over.backoff_base_ms : cfg.backoff_base_ms;
	cfg.backoff_max_ms = over.backoff_max_ms ? over.backoff_max_ms : cfg.backoff_max_ms;

	ret = 1;
	client = k8s_client_new(&cfg, err, sizeof(err));
	if (!client) {
		fprintf(stderr, "k8s_dump: %s\n", err);
		goto cleanup;
	}
	for (int i = 0; i < n; i++) {
		struct dump *d = &dumps[i];
		const char *slash;

		d->path = argv[optind + i];
		slash = strrchr(d->path, '/');
		d->name = slash ? slash + 1 : d->path;
		d->parse = parse;
		if (!k8s_informer_add(client, d->name, d->path, selector, &ops, d)) {
			fprintf(stderr, "k8s_dump: %s: not an API path\n", d->path);
			goto cleanup;
		}
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGPIPE, SIG_IGN);
	clock_gettime(CLOCK_MONOTONIC, &start);
	ret = 0;
	while (!stop) {
		bool all = true;

		if (k8s_client_run_once(client, NULL, 0, 200)) {
			ret = 1;
			break;
		}
		if (want_status) {
			want_status = 0;
			print_status(client);
		}
		for (int i = 0; i < n; i++)
			all &= dumps[i].synced;
		if (exit_after_sync && all)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout_s > 0 &&
		    (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >=
			timeout_s) {
			ret = exit_after_sync ? 3 : 0;
			break;
		}
	}
	if (status)
		print_status(client);
cleanup:
	k8s_client_free(client);
	client = NULL;
	k8s_config_free(&cfg);
	return ret;
}
