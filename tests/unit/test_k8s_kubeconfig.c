// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection configuration: YAML into cJSON (libyaml: every style, anchors,
 * aliases and merge keys, one document, errors naming the line), kubeconfig
 * files (YAML and JSON; token, tokenFile, CA and client cert data, relative
 * paths, errors) and the in-cluster source.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "k8s/client.h"
#include "k8s/yaml_doc.h"

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
/* "KEY\n" and "CERT\n" */
#define KEY_B64	 "S0VZCg=="
#define CERT_B64 "Q0VSVAo="

static char tmpdir[] = "/tmp/axon-kubeconfig-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static char *yaml_to_json(const char *text, char *err, size_t errlen)
{
	cJSON *j = k8s_yaml_parse(text, strlen(text), err, errlen);
	char *s;

	if (!j)
		return NULL;
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

static void test_yaml(void **state)
{
	static const struct {
		const char *yaml, *json;
	} ok[] = {
	    {"a: b\n", "{\"a\":\"b\"}"},
	    /* Quoted scalars: escapes, and quoted words stay strings. */
	    {"---\n# c\na: 'it''s'   # comment\nb: \"x\\ty\\u00e9\\n\"\nc: 'true'\nd: \"null\"\n"
	     "e: ''\n",
	     "{\"a\":\"it's\",\"b\":\"x\\ty\xc3\xa9\\n\",\"c\":\"true\",\"d\":\"null\","
	     "\"e\":\"\"}"},
	    {"l:\n- a\n- b\nm: {}\nn: []\no:\np: ~\nq: true\nr: False\ns: 10\nt: NULL\n",
	     "{\"l\":[\"a\",\"b\"],\"m\":{},\"n\":[],\"o\":null,\"p\":null,\"q\":true,"
	     "\"r\":false,\"s\":\"10\",\"t\":null}"},
	    {"l:\n  - x: 1\n    y: 2\n  - z\n", "{\"l\":[{\"x\":\"1\",\"y\":\"2\"},\"z\"]}"},
	    {"clusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c1\n"
	     "top: v\n",
	     "{\"clusters\":[{\"cluster\":{\"server\":\"https://10.0.0.1:6443\"},\"name\":\"c1\"}],"
	     "\"top\":\"v\"}"},
	    {"- - a\n  - b\n- c\n", "[[\"a\",\"b\"],\"c\"]"},
	    {"\"quoted key\": x#y\nurl: http://h/#frag\n",
	     "{\"quoted key\":\"x#y\",\"url\":\"http://h/#frag\"}"},
	    {"a:\r\n  b: c\r\n", "{\"a\":{\"b\":\"c\"}}"},
	    /* One document, ended explicitly. */
	    {"--- \na: b\n...\n", "{\"a\":\"b\"}"},
	    /* Flow style. */
	    {"a: {b: [1, 'two', {c: d}], e: {}}\n",
	     "{\"a\":{\"b\":[\"1\",\"two\",{\"c\":\"d\"}],\"e\":{}}}"},
	    {"{clusters: [{name: c1, cluster: {server: 'https://h:6443'}}]}",
	     "{\"clusters\":[{\"name\":\"c1\",\"cluster\":{\"server\":\"https://h:6443\"}}]}"},
	    /* Block scalars and a plain scalar folded over lines. */
	    {"a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: one\n  two\n",
	     "{\"a\":\"line1\\nline2\\n\",\"b\":\"folded text\\n\",\"c\":\"one two\"}"},
	    /* Anchors and aliases: an alias is a copy; anchors may be redefined. */
	    {"base: &b {server: s, tls: true}\nuse: *b\nname: &n x\nagain: *n\n"
	     "n2: &n y\nlast: *n\n",
	     "{\"base\":{\"server\":\"s\",\"tls\":true},\"use\":{\"server\":\"s\",\"tls\":true},"
	     "\"name\":\"x\",\"again\":\"x\",\"n2\":\"y\",\"last\":\"y\"}"},
	    {"k: &k key\n*k : v\n", "{\"k\":\"key\",\"key\":\"v\"}"},
	    /* Merge keys: the mapping's own keys win, then the earlier mappings. */
	    {"d: &d {a: 1, b: 2}\nm:\n  <<: *d\n  b: 3\n",
	     "{\"d\":{\"a\":\"1\",\"b\":\"2\"},\"m\":{\"b\":\"3\",\"a\":\"1\"}}"},
	    {"x: &x {a: 1}\ny: &y {a: 2, c: 3}\nm: {<<: [*x, *y]}\n",
	     "{\"x\":{\"a\":\"1\"},\"y\":{\"a\":\"2\",\"c\":\"3\"},"
	     "\"m\":{\"a\":\"1\",\"c\":\"3\"}}"},
	    {"'<<': literal\n", "{\"<<\":\"literal\"}"},
	    /* YAML's own tags. */
	    {"a: !!str true\nb: !!bool True\nc: !!int 5\nd: !!null ~\ne: !!map {f: g}\n",
	     "{\"a\":\"true\",\"b\":true,\"c\":\"5\",\"d\":null,\"e\":{\"f\":\"g\"}}"},
	};
	static const struct {
		const char *yaml, *err;
	} bad[] = {
	    {"a: b\n\tc: d\n", "line 2, column 1: found a tab character that violates indentation"},
	    {"a:\n  b: c\n d: e\n", "line 3, column 2: did not find expected key (while parsing "
				     "a block mapping at line 1)"},
	    {"a: b: c\n", "line 1, column 5: mapping values are not allowed in this context"},
	    {"a: - b\n", "line 1, column 4: block sequence entries are not allowed"},
	    {"a: \"open\n", "line 2, column 1: found unexpected end of stream (while scanning a "
			     "quoted scalar at line 1)"},
	    {"a: \"\\q\"\n", "line 1, column 5: found unknown escape character"},
	    {"a: [1, 2\n", "line 2, column 1: did not find expected ',' or ']'"},
	    {"a: b\n- c\n", "line 2, column 1: did not find expected key"},
	    {"a: b\na: c\n", "line 2, column 4: duplicate key \"a\""},
	    {"[a, b]: x\n", "line 1, column 1: a mapping key must be a scalar"},
	    {"l: &l [1]\n*l : x\n", "line 2, column 1: a mapping key must be a scalar"},
	    {"a: *x\n", "line 1, column 4: alias *x: no anchor &x before it"},
	    {"a: &x [1, *x]\n", "line 1, column 11: alias *x: no anchor &x before it"},
	    {"a: !custom b\n", "line 1, column 4: tag !custom is not supported here"},
	    {"a: !!set {b: c}\n", "tag tag:yaml.org,2002:set is not supported"},
	    {"a: !!bool yes\n", "tag tag:yaml.org,2002:bool is not supported"},
	    {"<<: 5\n", "line 1, column 5: a merge key (<<) takes a mapping or a list"},
	    {"m: {<<: [1]}\n", "a merge key (<<) takes mappings only"},
	    /* A second document: concatenated files, say. */
	    {"a: b\n---\nc: d\n", "line 2, column 1: a second YAML document: a kubeconfig is one"},
	    {"a: b\n...\n--- \nc: [\n", "line 3, column 1: a second YAML document"},
	    {"a: \"\\0\"\n", "line 1, column 4: NUL character in a scalar"},
	    {"a: \xff\n", "byte 3: invalid leading UTF-8 octet"},
	    {"# only a comment\n\n", "empty document"},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *json = yaml_to_json(ok[i].yaml, err, sizeof(err));

		if (!json)
			fail_msg("case %zu: %s", i, err);
		if (strcmp(json, ok[i].json))
			fail_msg("case %zu: got %s, want %s", i, json, ok[i].json);
		free(json);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *json = yaml_to_json(bad[i].yaml, err, sizeof(err));

		if (json)
			fail_msg("bad case %zu parsed: %s", i, json);
		if (!strstr(err, bad[i].err))
			fail_msg("bad case %zu: got \"%s\", want \"%s\"", i, err, bad[i].err);
	}

	/* Deep nesting is refused, not a stack overflow; so is an alias that
	 * would nest deeper than that. */
	{
		char deep[4096] = "";
		size_t off = 0;

		for (int i = 0; i < 60; i++)
			off += snprintf(deep + off, sizeof(deep) - off, "%*sk:\n", i, "");
		assert_null(yaml_to_json(deep, err, sizeof(err)));
		assert_non_null(strstr(err, "line 33, column 33: nested deeper than 32 levels"));
		off = snprintf(deep, sizeof(deep), "a: &a ");
		for (int i = 0; i < 20; i++)
			off += snprintf(deep + off, sizeof(deep) - off, "[");
		for (int i = 0; i < 20; i++)
			off += snprintf(deep + off, sizeof(deep) - off, "]");
		off += snprintf(deep + off, sizeof(deep) - off,
				"\nb: [[[[[[[[[[[[[*a]]]]]]]]]]]]]\n");
		assert_null(yaml_to_json(deep, err, sizeof(err)));
		assert_non_null(strstr(err, "alias *a: nested deeper than 32 levels"));
	}
	/* Aliases of aliases ("billion laughs") stop at the node budget. */
	{
		char laughs[1024];
		size_t off = snprintf(laughs, sizeof(laughs), "l0: &l0 [x, x, x, x, x]\n");

		/* Each level five aliases of the one before: 5^9 nodes. */
		for (int i = 1; i < 9; i++)
			off += snprintf(laughs + off, sizeof(laughs) - off,
					"l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i - 1,
					i - 1, i - 1, i - 1, i - 1);
		assert_null(yaml_to_json(laughs, err, sizeof(err)));
		assert_non_null(strstr(err, "more than 100000 nodes"));
	}
	/* A NUL byte never reaches the string code. */
	assert_null(k8s_yaml_parse("a: b\0c", 6, err, sizeof(err)));
	assert_string_equal(err, "NUL byte in the file");
}

/* What kubectl writes, plus comments, relative paths and a second context. */
static const char kubectl_yaml[] =
    "apiVersion: v1\n"
    "clusters:\n"
    "- cluster:\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "    server: https://192.0.2.1:6443\n"
    "  name: prod\n"
    "- cluster:\n"
    "    certificate-authority: pki/ca.crt   # relative to this file\n"
    "    server: \"https://[2001:db8::1]:6443\"\n"
    "    insecure-skip-tls-verify: false\n"
    "  name: lab\n"
    "contexts:\n"
    "- context:\n"
    "    cluster: prod\n"
    "    user: admin\n"
    "  name: prod-admin\n"
    "- context:\n"
    "    cluster: lab\n"
    "    namespace: default\n"
    "    user: agent\n"
    "  name: lab-agent\n"
    "current-context: lab-agent\n"
    "kind: Config\n"
    "preferences: {}\n"
    "users:\n"
    "- name: admin\n"
    "  user:\n"
    "    client-certificate-data: " CERT_B64 "\n"
    "    client-key-data: " KEY_B64 "\n"
    "- name: agent\n"
    "  user:\n"
    "    tokenFile: secrets/token\n";

static void test_kubeconfig_yaml(void **state)
{
	struct k8s_client_config cfg;
	char err[512], want[512];
	const char *path;

	(void)state;
	path = write_file("config", kubectl_yaml);
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_servers, 1);
	assert_string_equal(cfg.servers[0], "https://[2001:db8::1]:6443");
	snprintf(want, sizeof(want), "%s/pki/ca.crt", tmpdir);
	assert_string_equal(cfg.ca_file, want);
	snprintf(want, sizeof(want), "%s/secrets/token", tmpdir);
	assert_string_equal(cfg.token_file, want);
	assert_null(cfg.token);
	assert_null(cfg.ca_data);
	assert_false(cfg.insecure);
	/* Defaults filled in. */
	assert_true(cfg.qps == 10);
	assert_int_equal(cfg.burst, 20);
	assert_int_equal(cfg.backoff_base_ms, 1000);
	assert_int_equal(cfg.backoff_max_ms, 120000);
	assert_int_equal(cfg.list_limit, 500);
	assert_int_equal(cfg.watch_timeout_s, 300);
	k8s_config_free(&cfg);

	/* The other context: CA and client cert/key as data, decoded. */
	{
		char text[sizeof(kubectl_yaml) + 8];
		const char *cc = strstr(kubectl_yaml, "current-context: lab-agent");

		snprintf(text, sizeof(text), "%.*scurrent-context: prod-admin%s",
			 (int)(cc - kubectl_yaml), kubectl_yaml,
			 cc + strlen("current-context: lab-agent"));
		path = write_file("config2", text);
	}
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.servers[0], "https://192.0.2.1:6443");
	assert_string_equal(cfg.ca_data, CA_PEM);
	assert_string_equal(cfg.cert_data, "CERT\n");
	assert_string_equal(cfg.key_data, "KEY\n");
	assert_null(cfg.ca_file);
	assert_null(cfg.token_file);
	k8s_config_free(&cfg);
}

/* Written by hand: anchors and a merge key share the CA, users in flow style. */
static const char handmade_yaml[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "x-common: &common\n"
    "  certificate-authority-data: " CA_B64 "\n"
    "  insecure-skip-tls-verify: false\n"
    "clusters:\n"
    "- name: a\n"
    "  cluster:\n"
    "    <<: *common\n"
    "    server: https://a.example:6443\n"
    "- name: b\n"
    "  cluster: {<<: *common, server: 'https://b.example:6443'}\n"
    "contexts: [{name: ctx, context: {cluster: b, user: &u agent}}]\n"
    "current-context: ctx\n"
    "users: [{name: *u, user: {token: \"t0k3n\"}}]\n";

static void test_kubeconfig_yaml_handmade(void **state)
{
	struct k8s_client_config cfg;
	char err[512], text[2048];
	const char *path;

	(void)state;
	path = write_file("handmade", handmade_yaml);
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.servers[0], "https://b.example:6443");
	assert_string_equal(cfg.ca_data, CA_PEM);
	assert_string_equal(cfg.token, "t0k3n");
	assert_false(cfg.insecure);
	k8s_config_free(&cfg);

	/* Two files concatenated: refused, naming the file and the line. */
	snprintf(text, sizeof(text), "%s---\n%s", handmade_yaml, handmade_yaml);
	path = write_file("twice", text);
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(text, sizeof(text), "kubeconfig %s: line 16, column 1: a second YAML document",
		 path);
	if (!strstr(err, text))
		fail_msg("got \"%s\"", err);
	assert_null(cfg.servers);
}

static void test_kubeconfig_json_and_token(void **state)
{
	struct k8s_client_config cfg;
	char err[512], want[512];
	const char *path;

	(void)state;
	path = write_file(
	    "config.json",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"c\","
	    "\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":\"http://127.0.0.1:8080\","
	    "\"insecure-skip-tls-verify\":true}}],"
	    "\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"k\",\"user\":\"u\"}}],"
	    "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"abc.def\","
	    "\"client-certificate\":\"/etc/pki/c.pem\",\"client-key\":\"k.pem\"}}]}");
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.servers[0], "http://127.0.0.1:8080");
	assert_true(cfg.insecure);
	assert_string_equal(cfg.token, "abc.def");
	assert_string_equal(cfg.cert_file, "/etc/pki/c.pem");
	snprintf(want, sizeof(want), "%s/k.pem", tmpdir);
	assert_string_equal(cfg.key_file, want);
	k8s_config_free(&cfg);

	/* A context without a user is fine: anonymous. */
	path = write_file("anon", "current-context: c\n"
				  "contexts:\n- name: c\n  context:\n    cluster: k\n"
				  "clusters:\n- name: k\n  cluster:\n    server: https://h:1\n");
	assert_int_equal(k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err)), 0);
	assert_null(cfg.token);
	assert_null(cfg.token_file);
	k8s_config_free(&cfg);
}

static void test_kubeconfig_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"clusters: []\n", "current-context is not set"},
	    {"current-context: x\ncontexts: []\n", "contexts: no entry named \"x\""},
	    {"current-context: x\n", "contexts: expected a list"},
	    {"current-context: x\ncontexts:\n- name: x\n", "contexts \"x\": no context mapping"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n"
	     "clusters:\n- name: k\n  cluster:\n    certificate-authority-data: " CA_B64 "\n",
	     "cluster \"k\": server: missing"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n"
	     "clusters:\n- name: k\n  cluster:\n    server: ftp://h\n",
	     "cluster \"k\": server: not an http(s):// URL"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\n"
	     "    certificate-authority-data: '@@notbase64'\n",
	     "certificate-authority-data: not valid base64"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\n"
	     "    insecure-skip-tls-verify: 'yes'\n",
	     "insecure-skip-tls-verify: expected true or false"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n    user: u\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\n"
	     "users:\n- name: u\n  user:\n    exec:\n      command: aws\n",
	     "user \"u\": \"exec\" is not supported"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n    user: u\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\n"
	     "users:\n- name: u\n  user:\n    client-certificate-data: " CERT_B64 "\n",
	     "a client certificate needs its key"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n    user: u\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\n"
	     "users:\n- name: u\n  user:\n    token: true\n",
	     "user \"u\": token: expected a string"},
	    {"current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: k\n    user: "
	     "nobody\n"
	     "clusters:\n- name: k\n  cluster:\n    server: https://h\nusers: []\n",
	     "users: no entry named \"nobody\""},
	    {"current-context: x\n  bad: indent\n",
	     "line 2, column 6: mapping values are not allowed in this context"},
	    {"- a\n- b\n", "expected a mapping at the top"},
	};
	struct k8s_client_config cfg;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = write_file("bad", bad[i].text);
		int ret = k8s_config_from_kubeconfig(path, &cfg, err, sizeof(err));

		if (ret != -EINVAL)
			fail_msg("case %zu: ret %d (%s)", i, ret, ret ? err : "parsed");
		if (!strstr(err, bad[i].err))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].err);
		/* The error names the file. */
		assert_non_null(strstr(err, "kubeconfig "));
		/* Nothing left allocated: cfg is zeroed. */
		assert_null(cfg.servers);
		assert_null(cfg.ca_data);
	}
	assert_int_equal(
	    k8s_config_from_kubeconfig("/nonexistent/kubeconfig", &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/kubeconfig: No such file"));
}

static void test_in_cluster(void **state)
{
	struct k8s_client_config cfg;
	char err[512], want[512];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_int_equal(k8s_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	/* No service account files yet. */
	assert_int_equal(k8s_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/token"));

	write_file("token", "tok\n");
	write_file("ca.crt", CA_PEM);
	assert_int_equal(k8s_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.servers[0], "https://10.96.0.1:443");
	snprintf(want, sizeof(want), "%s/token", tmpdir);
	assert_string_equal(cfg.token_file, want);
	snprintf(want, sizeof(want), "%s/ca.crt", tmpdir);
	assert_string_equal(cfg.ca_file, want);
	assert_int_equal(cfg.list_limit, 500);
	k8s_config_free(&cfg);

	/* An IPv6 service address is bracketed. */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	assert_int_equal(k8s_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.servers[0], "https://[fd00:10:96::1]:443");
	k8s_config_free(&cfg);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_defaults_keep_set_values(void **state)
{
	struct k8s_client_config cfg = {.qps = 2.5, .burst = 3, .list_limit = 7};

	(void)state;
	k8s_config_defaults(&cfg);
	assert_true(cfg.qps == 2.5);
	assert_int_equal(cfg.burst, 3);
	assert_int_equal(cfg.list_limit, 7);
	assert_int_equal(cfg.watch_timeout_s, 300);
	k8s_config_free(&cfg);
	/* Freeing twice (zeroed) is safe. */
	k8s_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_yaml),
	    cmocka_unit_test(test_kubeconfig_yaml),
	    cmocka_unit_test(test_kubeconfig_yaml_handmade),
	    cmocka_unit_test(test_kubeconfig_json_and_token),
	    cmocka_unit_test(test_kubeconfig_errors),
	    cmocka_unit_test(test_in_cluster),
	    cmocka_unit_test(test_defaults_keep_set_values),
	};

	return cmocka_run_group_tests_name("k8s_kubeconfig", tests, setup, teardown);
}
