// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The apiserver client's flags: --k8s-api-server-urls, QPS/burst, backoff,
 * list limit, --k8s-prefer-service-address; the client config they produce
 * (agent/k8s_setup.c) and the preferred-server switch of the client.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "agent.h"
#include "log.h"

static char errbuf[512];

static int parse(struct agent_config *cfg, ...)
{
	char *argv[64] = { "axon-agent", "--node-name=n1" };
	int argc = 2;
	va_list ap;
	char *a;

	va_start(ap, cfg);
	while ((a = va_arg(ap, char *)) && argc < 63)
		argv[argc++] = a;
	va_end(ap);
	errbuf[0] = '\0';
	return agent_config_parse(argc, argv, cfg, errbuf, sizeof(errbuf));
}

static void expect_error(const char *arg, const char *arg2, const char *text)
{
	struct agent_config cfg;

	if (parse(&cfg, arg, arg2, NULL) != -EINVAL)
		fail_msg("%s %s: accepted", arg, arg2 ? arg2 : "");
	if (!strstr(errbuf, text))
		fail_msg("%s: error \"%s\" does not contain \"%s\"", arg, errbuf, text);
	assert_null(strchr(errbuf, '\n'));
}

static void test_defaults(void **state)
{
	struct agent_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, NULL), 0);
	assert_null(cfg.k8s_server_urls);
	assert_false(cfg.k8s_prefer_service);
	assert_true(cfg.k8s_qps == 10.0);
	assert_int_equal(cfg.k8s_burst, 20);
	assert_int_equal(cfg.k8s_backoff_base_ms, 1000);
	assert_int_equal(cfg.k8s_backoff_max_ms, 120000);
	assert_int_equal(cfg.k8s_list_limit, 500);
}

static void test_all_flags(void **state)
{
	struct agent_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "--k8s-api-server-urls=https://10.0.0.1:6443,http://b:8080",
			       "--k8s-prefer-service-address", "--k8s-client-qps=2.5",
			       "--k8s-client-burst=7", "--k8s-backoff-base=250ms",
			       "--k8s-backoff-max=1m30s", "--k8s-list-limit=3", NULL),
			 0);
	assert_string_equal(cfg.k8s_server_urls, "https://10.0.0.1:6443,http://b:8080");
	assert_true(cfg.k8s_prefer_service);
	assert_true(cfg.k8s_qps == 2.5);
	assert_int_equal(cfg.k8s_burst, 7);
	assert_int_equal(cfg.k8s_backoff_base_ms, 250);
	assert_int_equal(cfg.k8s_backoff_max_ms, 90000);
	assert_int_equal(cfg.k8s_list_limit, 3);
	assert_int_equal(parse(&cfg, "--k8s-prefer-service-address=false", NULL), 0);
	assert_false(cfg.k8s_prefer_service);
}

static void test_errors_name_the_flag(void **state)
{
	(void)state;
	expect_error("--k8s-api-server-urls=", NULL, "--k8s-api-server-urls: must not be empty");
	expect_error("--k8s-api-server-urls=https://a,,https://b", NULL,
		     "--k8s-api-server-urls: 'https://a,,https://b': empty URL");
	expect_error("--k8s-api-server-urls=https://a,", NULL,
		     "--k8s-api-server-urls: 'https://a,': trailing comma");
	expect_error("--k8s-api-server-urls=https://a,ftp://b", NULL,
		     "--k8s-api-server-urls: 'ftp://b' is not an http(s):// URL");
	expect_error("--k8s-api-server-urls=https://", NULL,
		     "--k8s-api-server-urls: 'https://' is not an http(s):// URL");
	expect_error("--k8s-api-server-urls=http://1,http://2,http://3,http://4,http://5,"
		     "http://6,http://7,http://8,http://9", NULL,
		     "--k8s-api-server-urls: at most 8 URLs");
	expect_error("--k8s-api-server-urls=https://a", "--k8s-api-server=https://b",
		     "--k8s-api-server-urls: not together with --k8s-api-server");
	expect_error("--k8s-client-qps=0", NULL, "--k8s-client-qps: '0' is not a number in");
	expect_error("--k8s-client-qps=-1", NULL, "--k8s-client-qps: '-1' is not a number");
	expect_error("--k8s-client-qps=inf", NULL, "--k8s-client-qps: 'inf' is not a number");
	expect_error("--k8s-client-qps=nan", NULL, "--k8s-client-qps: 'nan' is not a number");
	expect_error("--k8s-client-qps=0x10", NULL, "--k8s-client-qps: '0x10' is not a number");
	expect_error("--k8s-client-qps=5qps", NULL, "--k8s-client-qps: '5qps' is not a number");
	expect_error("--k8s-client-burst=0", NULL, "--k8s-client-burst: '0' is not a number >= 1");
	expect_error("--k8s-client-burst=100001", NULL, "--k8s-client-burst: '100001' is above");
	expect_error("--k8s-backoff-base=1", NULL, "--k8s-backoff-base: '1' is not a duration");
	expect_error("--k8s-backoff-base=5ms", NULL,
		     "--k8s-backoff-base: '5ms' must be between 10ms and 1h");
	expect_error("--k8s-backoff-max=2h", NULL,
		     "--k8s-backoff-max: '2h' must be between 10ms and 1h");
	expect_error("--k8s-backoff-base=10s", "--k8s-backoff-max=5s",
		     "--k8s-backoff-base: 10000ms is above --k8s-backoff-max (5000ms)");
	expect_error("--k8s-list-limit=0", NULL, "--k8s-list-limit: '0' is not a number >= 1");
	expect_error("--k8s-list-limit=500000", NULL, "--k8s-list-limit: '500000' is above");
	expect_error("--k8s-prefer-service-address=yes", NULL,
		     "--k8s-prefer-service-address: 'yes' is not true or false");
	/* URL syntax, as libcurl will parse it for every request. */
	expect_error("--k8s-api-server-urls=https://a:1,https://[::1", NULL,
		     "--k8s-api-server-urls: 'https://[::1' is not a valid URL: Bad IPv6 address");
	expect_error("--k8s-api-server-urls=https://a:99999", NULL,
		     "--k8s-api-server-urls: 'https://a:99999' is not a valid URL: Port number");
	expect_error("--k8s-api-server=http://a b", NULL,
		     "--k8s-api-server: 'http://a b' is not a valid URL");
	expect_error("--k8s-api-server=ftp://a", NULL,
		     "--k8s-api-server: 'ftp://a' is not an http(s):// URL");
}

static const char *write_kubeconfig(char *dir)
{
	static char path[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
	      "    server: https://kubeconfig.example:6443\n  name: c\n"
	      "contexts:\n- context:\n    cluster: c\n    user: u\n  name: x\n"
	      "current-context: x\nusers:\n- name: u\n  user:\n    token: t\n", f);
	fclose(f);
	return path;
}

static void test_client_config(void **state)
{
	char dir[] = "/tmp/axon-k8sflags-XXXXXX", arg[300], cmd[300];
	const char *kc_path = write_kubeconfig(dir);
	struct k8s_client_config kc;
	struct agent_config cfg;

	(void)state;
	snprintf(arg, sizeof(arg), "--kubeconfig=%s", kc_path);
	/* The kubeconfig's server, and the flags' tuning. */
	assert_int_equal(parse(&cfg, arg, "--k8s-client-qps=3", "--k8s-client-burst=4",
			       "--k8s-backoff-base=100ms", "--k8s-backoff-max=2s",
			       "--k8s-list-limit=2", NULL), 0);
	assert_int_equal(agent_k8s_client_config(&cfg, &kc, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(kc.n_servers, 1);
	assert_string_equal(kc.servers[0], "https://kubeconfig.example:6443");
	assert_true(kc.qps == 3.0);
	assert_int_equal(kc.burst, 4);
	assert_int_equal(kc.backoff_base_ms, 100);
	assert_int_equal(kc.backoff_max_ms, 2000);
	assert_int_equal(kc.list_limit, 2);
	assert_string_equal(kc.token, "t");
	k8s_config_free(&kc);

	/* --k8s-api-server: one URL instead of the kubeconfig's. */
	assert_int_equal(parse(&cfg, arg, "--k8s-api-server=http://one:1", NULL), 0);
	assert_int_equal(agent_k8s_client_config(&cfg, &kc, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(kc.n_servers, 1);
	assert_string_equal(kc.servers[0], "http://one:1");
	assert_int_equal(kc.list_limit, 500);
	k8s_config_free(&kc);

	/* --k8s-api-server-urls: all of them, in order. */
	assert_int_equal(parse(&cfg, arg, "--k8s-api-server-urls=https://a:1,https://b:2,http://c:3",
			       NULL), 0);
	assert_int_equal(agent_k8s_client_config(&cfg, &kc, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(kc.n_servers, 3);
	assert_string_equal(kc.servers[0], "https://a:1");
	assert_string_equal(kc.servers[1], "https://b:2");
	assert_string_equal(kc.servers[2], "http://c:3");
	assert_string_equal(kc.token, "t");
	k8s_config_free(&kc);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* --k8s-api-server-urls without a kubeconfig: the servers from the flag, the
 * token and CA from the service account, KUBERNETES_SERVICE_HOST unset. */
static void test_flag_servers_in_cluster(void **state)
{
	char dir[] = "/tmp/axon-k8ssa-XXXXXX", want[300], cmd[300];
	struct k8s_client_config kc;
	struct agent_config cfg;
	struct k8s_client *c;

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_non_null(mkdtemp(dir));

	/* No files yet: the error says where the credentials were looked for. */
	assert_int_equal(parse(&cfg, "--k8s-api-server-urls=https://10.0.0.1:6443", NULL), 0);
	assert_int_equal(agent_k8s_client_config_sa(&cfg, dir, &kc, errbuf, sizeof(errbuf)),
			 -ENOENT);
	snprintf(want, sizeof(want), "service account: %s/token: No such file or directory", dir);
	assert_non_null(strstr(errbuf, want));
	assert_non_null(strstr(errbuf, "--k8s-api-server-urls come from the pod's service account"));

	write_file(dir, "token", "sa-token\n");
	write_file(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\n");
	assert_int_equal(parse(&cfg, "--k8s-api-server-urls=https://10.0.0.1:6443,https://b:6443",
			       "--k8s-client-qps=4", NULL), 0);
	assert_int_equal(agent_k8s_client_config_sa(&cfg, dir, &kc, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(kc.n_servers, 2);
	assert_string_equal(kc.servers[0], "https://10.0.0.1:6443");
	assert_string_equal(kc.servers[1], "https://b:6443");
	snprintf(want, sizeof(want), "%s/token", dir);
	assert_string_equal(kc.token_file, want);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	assert_string_equal(kc.ca_file, want);
	assert_null(kc.token);
	assert_true(kc.qps == 4.0);
	/* The client takes it: the token is read from the file. */
	c = k8s_client_new(&kc, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(k8s_client_server(c), "https://10.0.0.1:6443");
	k8s_client_free(c);
	k8s_config_free(&kc);

	/* --k8s-api-server: the same, one URL. */
	assert_int_equal(parse(&cfg, "--k8s-api-server=https://one:443", NULL), 0);
	assert_int_equal(agent_k8s_client_config_sa(&cfg, dir, &kc, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(kc.n_servers, 1);
	assert_string_equal(kc.servers[0], "https://one:443");
	snprintf(want, sizeof(want), "%s/token", dir);
	assert_string_equal(kc.token_file, want);
	k8s_config_free(&kc);

	/* Neither flag nor kubeconfig: in-cluster needs the environment. */
	assert_int_equal(parse(&cfg, NULL), 0);
	assert_int_equal(agent_k8s_client_config_sa(&cfg, dir, &kc, errbuf, sizeof(errbuf)),
			 -ENOENT);
	assert_non_null(strstr(errbuf, "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(agent_k8s_client_config_sa(&cfg, dir, &kc, errbuf, sizeof(errbuf)), 0);
	assert_string_equal(kc.servers[0], "https://10.96.0.1:443");
	k8s_config_free(&kc);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_service_url(void **state)
{
	struct k8s_service_port ports[] = {
		{ .name = "dns", .proto = IPPROTO_UDP, .port = 53 },
		{ .name = "metrics", .proto = IPPROTO_TCP, .port = 8080 },
		{ .name = "https", .proto = IPPROTO_TCP, .port = 443 },
	};
	__be32 ip = htonl(0x0a600001);
	struct k8s_service svc = {
		.meta = { .namespace = "default", .name = "kubernetes" },
		.cluster_ips = &ip, .n_cluster_ips = 1, .ports = ports, .n_ports = 3,
	};
	char url[64];

	(void)state;
	assert_int_equal(agent_k8s_service_url(&svc, "https://x:6443", url, sizeof(url)), 0);
	assert_string_equal(url, "https://10.96.0.1:443");
	assert_int_equal(agent_k8s_service_url(&svc, "http://x:8080", url, sizeof(url)), 0);
	assert_string_equal(url, "http://10.96.0.1:443");
	/* No port named https: the first TCP port. */
	svc.n_ports = 2;
	assert_int_equal(agent_k8s_service_url(&svc, "https://x", url, sizeof(url)), 0);
	assert_string_equal(url, "https://10.96.0.1:8080");
	svc.n_ports = 1;
	assert_int_equal(agent_k8s_service_url(&svc, "https://x", url, sizeof(url)), -ENOENT);
	svc.n_ports = 3;
	svc.headless = true;
	assert_int_equal(agent_k8s_service_url(&svc, "https://x", url, sizeof(url)), -ENOENT);
	svc.headless = false;
	svc.meta.namespace = "kube-system";
	assert_int_equal(agent_k8s_service_url(&svc, "https://x", url, sizeof(url)), -ENOENT);
}

static void test_prefer_server(void **state)
{
	char *urls[] = { "http://127.0.0.1:1", "http://127.0.0.1:2/" };
	struct k8s_client_config cfg = { .servers = urls, .n_servers = 2 };
	const char *const *servers;
	struct k8s_client *c;
	size_t n;

	(void)state;
	c = k8s_client_new(&cfg, errbuf, sizeof(errbuf));
	assert_non_null(c);
	assert_string_equal(k8s_client_server(c), "http://127.0.0.1:1");
	assert_int_equal(k8s_client_prefer_server(c, "ftp://x"), -EINVAL);
	assert_int_equal(k8s_client_prefer_server(c, NULL), -EINVAL);
	assert_int_equal(k8s_client_prefer_server(c, "http://10.96.0.1:443/"), 0);
	assert_string_equal(k8s_client_server(c), "http://10.96.0.1:443");
	servers = k8s_client_servers(c, &n);
	assert_int_equal(n, 3);
	assert_string_equal(servers[0], "http://127.0.0.1:1");
	assert_string_equal(servers[1], "http://127.0.0.1:2");
	assert_string_equal(servers[2], "http://10.96.0.1:443");
	/* The same address again (a relist) is no change; a new one replaces it. */
	assert_int_equal(k8s_client_prefer_server(c, "http://10.96.0.1:443"), 0);
	assert_int_equal(k8s_client_prefer_server(c, "http://10.96.0.2:443"), 0);
	servers = k8s_client_servers(c, &n);
	assert_int_equal(n, 3);
	assert_string_equal(servers[2], "http://10.96.0.2:443");
	assert_string_equal(k8s_client_server(c), "http://10.96.0.2:443");
	k8s_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test(test_errors_name_the_flag),
		cmocka_unit_test(test_client_config),
		cmocka_unit_test(test_flag_servers_in_cluster),
		cmocka_unit_test(test_service_url),
		cmocka_unit_test(test_prefer_server),
	};

	if (!getenv("AXON_TEST_VERBOSE"))
		log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests_name("agent_k8s_flags", tests, NULL, NULL);
}
