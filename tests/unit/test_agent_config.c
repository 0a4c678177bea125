// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Flags: defaults, Cilium's syntax, --config-dir, and one-line errors naming the flag. */
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
#include <sys/stat.h>
#include <cmocka.h>

#include "axon/lb.h"
#include "start/cgroup2.h"
#include "config.h"
#include "dp_config.h"

static char errbuf[512];

/* Parse a NULL-terminated list of arguments. */
static int parse(struct agent_config *cfg, ...)
{
	char *argv[64] = { "axon-agent" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, cfg);
	while ((a = va_arg(ap, char *)) && argc < 63)
		argv[argc++] = a;
	va_end(ap);
	errbuf[0] = '\0';
	return agent_config_parse(argc, argv, cfg, errbuf, sizeof(errbuf));
}

static void expect_error(const char *arg, const char *text)
{
	struct agent_config cfg;

	if (parse(&cfg, "--node-name=n1", "--conntrack-gc-max-interval=1h", arg, NULL) != -EINVAL)
		fail_msg("%s: accepted", arg);
	if (!strstr(errbuf, text))
		fail_msg("%s: error \"%s\" does not contain \"%s\"", arg, errbuf, text);
	/* One line. */
	assert_null(strchr(errbuf, '\n'));
}

static void test_defaults(void **state)
{
	struct agent_config cfg;

	(void)state;
	setenv("NODE_NAME", "node-from-env", 1);
	assert_int_equal(parse(&cfg, NULL), 0);
	assert_string_equal(cfg.node_name, "node-from-env");
	assert_true(cfg.enable_tcx);
	assert_true(cfg.bpf_lb_sock);
	assert_false(cfg.enable_bpf_masquerade);
	assert_false(cfg.auto_direct_node_routes);
	assert_false(cfg.has_native_cidr);
	assert_int_equal(cfg.node_port_min, 30000);
	assert_int_equal(cfg.node_port_max, 32767);
	assert_int_equal(cfg.lb_algorithm, LB_ALGO_RANDOM);
	assert_int_equal(cfg.maglev_table_size, 16381);
	assert_int_equal(cfg.ct_timeout_tcp_s, 8000);
	assert_int_equal(cfg.ct_timeout_syn_s, 60);
	assert_int_equal(cfg.ct_timeout_fin_s, 10);
	assert_int_equal(cfg.ct_timeout_any_s, 60);
	assert_int_equal(cfg.ct_gc_interval_ms, 0);
	assert_int_equal(cfg.ct_gc_max_interval_ms, 12u * 3600 * 1000);
	assert_string_equal(cfg.state_dir, "/var/run/axon");
	assert_string_equal(cfg.devices, "");
	assert_int_equal(cfg.policy_map_max, 16384);
	unsetenv("NODE_NAME");
}

static void test_node_name_fallbacks(void **state)
{
	struct agent_config cfg;
	char host[256] = "";

	(void)state;
	setenv("NODE_NAME", "env-node", 1);
	assert_int_equal(parse(&cfg, "--node-name", "flag-node", NULL), 0);
	assert_string_equal(cfg.node_name, "flag-node");
	unsetenv("NODE_NAME");
	assert_int_equal(parse(&cfg, NULL), 0);
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	assert_string_equal(cfg.node_name, host);
	setenv("NODE_NAME", "Bad_Name", 1);
	assert_int_equal(parse(&cfg, NULL), -EINVAL);
	assert_non_null(strstr(errbuf, "--node-name: not given, and NODE_NAME 'Bad_Name'"));
	unsetenv("NODE_NAME");
}

static void test_all_flags(void **state)
{
	struct agent_config cfg;
	char cidr[INET_ADDRSTRLEN];

	(void)state;
	assert_int_equal(parse(&cfg, "--node-name=n1", "--devices=eth0,eth1", "--enable-tcx=false",
			       "--bpf-lb-sock=false", "--enable-bpf-masquerade",
			       "--ipv4-native-routing-cidr=10.0.0.0/8",
			       "--node-port-range=20000-20100", "--auto-direct-node-routes=true",
			       "--bpf-lb-algorithm=maglev", "--bpf-lb-maglev-table-size=16381",
			       "--conntrack-gc-interval=30s", "--conntrack-gc-max-interval=5m",
			       "--bpf-ct-timeout-regular-tcp=2h13m20s",
			       "--bpf-ct-timeout-regular-tcp-syn=1m",
			       "--bpf-ct-timeout-regular-tcp-fin=5s",
			       "--bpf-ct-timeout-regular-any=90s", "--state-dir=/tmp/x",
			       "--bpf-policy-map-max=256", NULL),
			 0);
	assert_int_equal(cfg.policy_map_max, 256);
	assert_string_equal(cfg.node_name, "n1");
	assert_string_equal(cfg.devices, "eth0,eth1");
	assert_false(cfg.enable_tcx);
	assert_false(cfg.bpf_lb_sock);
	assert_true(cfg.enable_bpf_masquerade);
	assert_true(cfg.has_native_cidr);
	inet_ntop(AF_INET, &cfg.native_cidr.addr, cidr, sizeof(cidr));
	assert_string_equal(cidr, "10.0.0.0");
	assert_int_equal(cfg.native_cidr.len, 8);
	assert_int_equal(cfg.node_port_min, 20000);
	assert_int_equal(cfg.node_port_max, 20100);
	assert_true(cfg.auto_direct_node_routes);
	assert_int_equal(cfg.lb_algorithm, LB_ALGO_MAGLEV);
	assert_int_equal(cfg.ct_gc_interval_ms, 30000);
	assert_int_equal(cfg.ct_gc_max_interval_ms, 300000);
	assert_int_equal(cfg.ct_timeout_tcp_s, 8000);
	assert_int_equal(cfg.ct_timeout_syn_s, 60);
	assert_int_equal(cfg.ct_timeout_fin_s, 5);
	assert_int_equal(cfg.ct_timeout_any_s, 90);
	assert_string_equal(cfg.state_dir, "/tmp/x");
}

static void test_errors_name_the_flag(void **state)
{
	(void)state;
	expect_error("--node-port-range=40000-30000",
		     "--node-port-range: '40000-30000': the first port must not be above");
	expect_error("--node-port-range=30000", "--node-port-range: '30000' is not MIN-MAX");
	expect_error("--node-port-range=0-70000", "--node-port-range: '0-70000': ports must be");
	expect_error("--bpf-lb-maglev-table-size=65521",
		     "--bpf-lb-maglev-table-size: '65521' is not supported");
	expect_error("--bpf-lb-algorithm=hash", "--bpf-lb-algorithm: 'hash' is not random or maglev");
	expect_error("--ipv4-native-routing-cidr=10.0.0.1/8",
		     "--ipv4-native-routing-cidr: '10.0.0.1/8' has host bits set");
	expect_error("--ipv4-native-routing-cidr=fd00::/8",
		     "--ipv4-native-routing-cidr: 'fd00::/8' is not an IPv4 CIDR");
	expect_error("--enable-tcx=maybe", "--enable-tcx: 'maybe' is not true or false");
	expect_error("--bpf-lb-sock=yes", "--bpf-lb-sock: 'yes' is not true or false");
	expect_error("--bpf-ct-timeout-regular-tcp=forever",
		     "--bpf-ct-timeout-regular-tcp: 'forever' is not a duration");
	expect_error("--bpf-ct-timeout-regular-tcp-fin=1500ms",
		     "--bpf-ct-timeout-regular-tcp-fin: '1500ms' must be whole seconds");
	expect_error("--bpf-ct-timeout-regular-any=0s",
		     "--bpf-ct-timeout-regular-any: '0s' must be whole seconds");
	expect_error("--conntrack-gc-interval=500ms",
		     "--conntrack-gc-interval: '500ms' must be 0 or between 1s and 168h");
	expect_error("--conntrack-gc-interval=2h",
		     "--conntrack-gc-interval: 7200000ms is above --conntrack-gc-max-interval");
	expect_error("--bpf-ct-timeout-regular-tcp-syn=9000s",
		     "--bpf-ct-timeout-regular-tcp-syn: 9000s is above");
	expect_error("--devices=eth0,,eth1", "--devices: 'eth0,,eth1'");
	expect_error("--devices=averyveryverylongname0", "--devices:");
	expect_error("--bpf-lb-map-max=abc", "--bpf-lb-map-max: 'abc' is not a number");
	expect_error("--bpf-policy-map-max=255", "--bpf-policy-map-max: 255 must be in 256..65536");
	expect_error("--bpf-policy-map-max=65537",
		     "--bpf-policy-map-max: 65537 must be in 256..65536");
	expect_error("--bpf-policy-map-max=many", "--bpf-policy-map-max: 'many' is not a number");
	expect_error("--no-such-flag", "--no-such-flag: unknown option");
	expect_error("--state-dir=", "--state-dir: must not be empty");
}

static void test_durations(void **state)
{
	__u64 ms;

	(void)state;
	assert_int_equal(parse_duration_ms("1h30m", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("1m5s", &ms), 0);
	assert_int_equal(ms, 65000);
	assert_int_equal(parse_duration_ms("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(parse_duration_ms("10", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("-5s", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("5x", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("", &ms), -EINVAL);
}

static void write_file(const char *dir, const char *name, const char *value)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(value, f);
	fclose(f);
}

static void test_config_dir(void **state)
{
	char dir[] = "/tmp/axon-cfg-XXXXXX", arg[64];
	struct agent_config cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "node-name", "cm-node\n");
	write_file(dir, "enable-tcx", "false\n");
	write_file(dir, "auto-direct-node-routes", "true\n");
	write_file(dir, "node-port-range", "31000-31100\n");
	write_file(dir, "ipv4-native-routing-cidr", "");	/* unset in the chart */
	write_file(dir, "bpf-lb-algorithm", "maglev");
	snprintf(arg, sizeof(arg), "--config-dir=%s", dir);
	/* The command line wins over the directory. */
	assert_int_equal(parse(&cfg, arg, "--bpf-lb-algorithm=random", NULL), 0);
	assert_string_equal(cfg.node_name, "cm-node");
	assert_false(cfg.enable_tcx);
	assert_true(cfg.auto_direct_node_routes);
	assert_int_equal(cfg.node_port_min, 31000);
	assert_int_equal(cfg.node_port_max, 31100);
	assert_false(cfg.has_native_cidr);
	assert_int_equal(cfg.lb_algorithm, LB_ALGO_RANDOM);

	/* Every key the chart's ConfigMap sets, at the chart's defaults. */
	write_file(dir, "state-dir", "/var/run/axon");
	write_file(dir, "devices", "");
	write_file(dir, "bpf-lb-sock", "true");
	write_file(dir, "enable-bpf-masquerade", "false");
	write_file(dir, "bpf-lb-maglev-table-size", "16381");
	write_file(dir, "conntrack-gc-interval", "0s");
	write_file(dir, "conntrack-gc-max-interval", "12h");
	write_file(dir, "bpf-ct-timeout-regular-tcp", "8000s");
	write_file(dir, "bpf-ct-timeout-regular-tcp-syn", "60s");
	write_file(dir, "bpf-ct-timeout-regular-tcp-fin", "10s");
	write_file(dir, "bpf-ct-timeout-regular-any", "60s");
	write_file(dir, "flush-on-exit", "false");
	write_file(dir, "debug", "false");
	assert_int_equal(parse(&cfg, arg, NULL), 0);
	assert_true(cfg.bpf_lb_sock);
	assert_false(cfg.enable_bpf_masquerade);
	assert_false(cfg.flush_on_exit);
	assert_int_equal(cfg.ct_timeout_tcp_s, 8000);

	write_file(dir, "bpf-lb-maglev-table-size", "1021");
	assert_int_equal(parse(&cfg, arg, NULL), -EINVAL);
	assert_non_null(strstr(errbuf, "--bpf-lb-maglev-table-size: '1021' is not supported"));
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static const struct agent_setting *setting(const struct agent_setting *v, int n,
					   const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	fail_msg("setting %s not listed", name);
	return NULL;
}

static void expect_setting(const struct agent_setting *v, int n, const char *name,
			   const char *value, const char *source)
{
	const struct agent_setting *st = setting(v, n, name);

	if (strcmp(st->value, value) || strcmp(agent_config_source_name(st->source), source))
		fail_msg("%s: %s (%s), want %s (%s)", name, st->value,
			 agent_config_source_name(st->source), value, source);
}

/* agentctl config view: every option of the table, its effective value, and
 * whether the command line, the --config-dir or the default gave it. */
static void test_settings_and_sources(void **state)
{
	char dir[] = "/tmp/axon-cfgsrc-XXXXXX", arg[64], cmd[128];
	struct agent_setting v[AGENT_OPTIONS_MAX];
	struct agent_config cfg;
	int n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "debug", "true\n");
	write_file(dir, "node-port-range", "31000-31100\n");
	write_file(dir, "reconcile-interval", "90s");
	write_file(dir, "bpf-lb-algorithm", "maglev");
	snprintf(arg, sizeof(arg), "--config-dir=%s", dir);
	assert_int_equal(parse(&cfg, "--node-name=n1", arg, "--bpf-lb-algorithm=random",
			       "--state-dir", "/run/s", "--map-dynamic-size-ratio=0.5",
			       "--bpf-lb-service-map-max=1000", NULL), 0);
	n = agent_config_settings(&cfg, v, AGENT_OPTIONS_MAX);
	assert_true(n > 40);
	for (int i = 0; i < n; i++) {
		if (!v[i].known)
			fail_msg("--%s: in the options table, but config.c cannot show its value "
				 "(add it to option_value())", v[i].name);
		if (i)
			assert_true(strcmp(v[i - 1].name, v[i].name) < 0);	/* sorted, once */
		assert_string_not_equal(v[i].name, "help");
		assert_string_not_equal(v[i].name, "version");
		assert_string_not_equal(v[i].name, "map-dynamic-size-ratio");	/* an alias */
	}
	/* The directory's, unless the command line says otherwise. */
	expect_setting(v, n, "debug", "true", "config-dir");
	expect_setting(v, n, "node-port-range", "31000-31100", "config-dir");
	expect_setting(v, n, "reconcile-interval", "1m30s", "config-dir");
	expect_setting(v, n, "bpf-lb-algorithm", "random", "flag");
	/* --flag VALUE, an alias, a map size, the directory itself. */
	expect_setting(v, n, "state-dir", "/run/s", "flag");
	expect_setting(v, n, "bpf-map-dynamic-size-ratio", "0.5", "flag");
	expect_setting(v, n, "bpf-lb-service-map-max", "1000", "flag");
	expect_setting(v, n, "config-dir", dir, "flag");
	expect_setting(v, n, "node-name", "n1", "flag");
	/* Untouched: the defaults, as the flags would write them. */
	expect_setting(v, n, "enable-tcx", "true", "default");
	expect_setting(v, n, "bpf-root", "/sys/fs/bpf/axon", "default");
	expect_setting(v, n, "conntrack-gc-max-interval", "12h", "default");
	expect_setting(v, n, "conntrack-gc-interval", "0s", "default");
	expect_setting(v, n, "bpf-ct-timeout-regular-tcp", "8000s", "default");
	expect_setting(v, n, "bpf-lb-map-max", "65536", "default");
	expect_setting(v, n, "bpf-lb-rev-nat-map-max", "65536", "default");
	expect_setting(v, n, "k8s-client-qps", "10", "default");
	expect_setting(v, n, "k8s-backoff-base", "1s", "default");
	expect_setting(v, n, "ipv4-native-routing-cidr", "", "default");
	expect_setting(v, n, "kubeconfig", "", "default");

	/* A second parse starts from scratch: nothing carried over. */
	assert_int_equal(parse(&cfg, "--node-name=n1", "--ipv4-native-routing-cidr=10.0.0.0/8",
			       NULL), 0);
	n = agent_config_settings(&cfg, v, AGENT_OPTIONS_MAX);
	expect_setting(v, n, "debug", "false", "default");
	expect_setting(v, n, "ipv4-native-routing-cidr", "10.0.0.0/8", "flag");
	expect_setting(v, n, "config-dir", "", "default");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The default --cgroup-root is a cgroup v2 directory; other directories are
 * refused with a reason naming the path. */
static void test_cgroup_root(void **state)
{
	const char *root = cgroup2_default_root();
	struct agent_config cfg;
	char err[256];

	(void)state;
	/* This machine has cgroup v2 (the tests attach to it). */
	assert_non_null(root);
	assert_int_equal(cgroup2_check(root, err, sizeof(err)), 0);
	assert_int_equal(parse(&cfg, "--node-name=n1", NULL), 0);
	assert_string_equal(cfg.cgroup_root, root);

	assert_int_equal(cgroup2_check("/proc", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/proc is on proc, not cgroup v2");
	assert_int_equal(cgroup2_check("/nonexistent-cgroup", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent-cgroup: No such file or directory");
	assert_int_equal(cgroup2_check("/proc/self/status", err, sizeof(err)), -ENOTDIR);
}

static void test_datapath_config_from_flags(void **state)
{
	struct datapath_config a, b;
	struct agent_config cfg;
	__be32 ip = htonl(0xc0a8010a);

	(void)state;
	assert_int_equal(parse(&cfg, "--node-name=n1", NULL), 0);
	datapath_config_build(&cfg, ip, &a);
	assert_int_equal(a.node_ip, ip);
	assert_int_equal(a.flags, CFG_SOCK_LB | CFG_NODE_PORT | CFG_HOST_ROUTING);
	assert_int_equal(a.native_cidr_len, 0);
	assert_int_equal(a.node_port_min, 30000);
	assert_int_equal(a.node_port_max, 32767);
	/* Masquerade ports never overlap the NodePort range. */
	assert_int_equal(a.nat_port_min, 32768);
	assert_int_equal(a.nat_port_max, 65535);
	assert_int_equal(a.ct_lifetime_tcp, 8000);
	assert_int_equal(a.ct_lifetime_syn, 60);
	assert_int_equal(a.ct_lifetime_close, 10);
	assert_int_equal(a.ct_lifetime_any, 60);

	assert_int_equal(parse(&cfg, "--node-name=n1", "--bpf-lb-sock=false",
			       "--enable-bpf-masquerade", "--ipv4-native-routing-cidr=10.0.0.0/8",
			       "--node-port-range=40000-40100", "--bpf-ct-timeout-regular-any=2m",
			       NULL), 0);
	datapath_config_build(&cfg, ip, &b);
	assert_int_equal(b.flags, CFG_MASQUERADE | CFG_NODE_PORT | CFG_HOST_ROUTING);
	assert_int_equal(b.native_cidr, htonl(0x0a000000));
	assert_int_equal(b.native_cidr_len, 8);
	assert_int_equal(b.nat_port_min, 40101);
	assert_int_equal(b.ct_lifetime_any, 120);
	assert_false(datapath_config_equal(&a, &b));
	datapath_config_build(&cfg, ip, &a);
	assert_true(datapath_config_equal(&a, &b));
	/* A new node address is a new config: the programs are reloaded. */
	datapath_config_build(&cfg, htonl(0xc0a8010b), &a);
	assert_false(datapath_config_equal(&a, &b));
}


static void test_reconcile_interval(void **state)
{
	struct agent_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "--node-name=n1", NULL), 0);
	assert_int_equal(cfg.reconcile_interval_ms, 5 * 60 * 1000);
	assert_int_equal(parse(&cfg, "--node-name=n1", "--reconcile-interval=2s", NULL), 0);
	assert_int_equal(cfg.reconcile_interval_ms, 2000);
	assert_int_equal(parse(&cfg, "--node-name=n1", "--reconcile-interval=0", NULL), 0);
	assert_int_equal(cfg.reconcile_interval_ms, 0);
	expect_error("--reconcile-interval=100ms",
		     "--reconcile-interval: '100ms' must be 0 or between 1s and 168h");
	expect_error("--reconcile-interval=often",
		     "--reconcile-interval: 'often' is not a duration");
}

static void test_health_flags(void **state)
{
	struct agent_config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "--node-name=n1", NULL), 0);
	assert_int_equal(cfg.health_port, 9879);
	assert_string_equal(cfg.not_ready_taint_key, "node.axon.io/agent-not-ready");
	assert_int_equal(parse(&cfg, "--node-name=n1", "--agent-health-port=0",
			       "--agent-not-ready-taint-key=", NULL), 0);
	assert_int_equal(cfg.health_port, 0);
	assert_string_equal(cfg.not_ready_taint_key, "");
	assert_int_equal(parse(&cfg, "--node-name=n1", "--agent-health-port", "19879",
			       "--agent-not-ready-taint-key", "NotReady_1", NULL), 0);
	assert_int_equal(cfg.health_port, 19879);
	assert_string_equal(cfg.not_ready_taint_key, "NotReady_1");
	expect_error("--agent-health-port=65536", "--agent-health-port: '65536' is not a port");
	expect_error("--agent-health-port=-1", "--agent-health-port: '-1' is not a number");
	expect_error("--agent-not-ready-taint-key=/x",
		     "--agent-not-ready-taint-key: '/x': the prefix before '/' must be a DNS");
	expect_error("--agent-not-ready-taint-key=Example.com/x",
		     "--agent-not-ready-taint-key: 'Example.com/x': the prefix before '/'");
	expect_error("--agent-not-ready-taint-key=a/b/c", "the prefix before '/' must be a DNS");
	expect_error("--agent-not-ready-taint-key=example.com/",
		     "'example.com/': the name must be 1..63 characters");
	expect_error("--agent-not-ready-taint-key=-x", "'-x': the name must be alphanumerics");
	expect_error("--agent-not-ready-taint-key=a b", "'a b': the name must be alphanumerics");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconcile_interval),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_node_name_fallbacks),
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test(test_errors_name_the_flag),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_config_dir),
		cmocka_unit_test(test_settings_and_sources),
		cmocka_unit_test(test_cgroup_root),
		cmocka_unit_test(test_datapath_config_from_flags),
		cmocka_unit_test(test_health_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
