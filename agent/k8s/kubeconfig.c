// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kubeconfig -> struct k8s_client_config: the current context's cluster and
 * user. JSON files are read with cJSON, YAML ones with libyaml (yaml_doc.h).
 * Credential plugins (exec, auth-provider) and basic auth are not supported
 * and say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s/client.h"
#include "k8s/yaml_doc.h"

#define KUBECONFIG_MAX (4u << 20)

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (st.st_size > KUBECONFIG_MAX) {
		ret = -EFBIG;
		snprintf(err, errlen, "%s: larger than %u bytes", path, KUBECONFIG_MAX);
		goto cleanup;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	while (off < (size_t)st.st_size && (n = read(fd, buf + off, st.st_size - off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto cleanup;
		}
		off += n;
	}
	buf[off] = '\0';
	*out = buf;
	*len = off;
	buf = NULL;
	ret = 0;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 (padding optional, line breaks ignored) into a PEM string. */
static int b64_decode_text(const char *in, char **out)
{
	size_t len = strlen(in), o = 0;
	unsigned int acc = 0;
	int bits = 0, pad = 0;
	char *buf = malloc(len / 4 * 3 + 4);

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		int v;

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad)
			goto bad;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be padding zeros, and at most 2 '='. */
	if (pad > 2 || bits >= 6 || acc)
		goto bad;
	buf[o] = '\0';
	/* The result is handed on as a C string (PEM): no NUL inside. */
	if (memchr(buf, '\0', o) || !o)
		goto bad;
	*out = buf;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

struct kc {
	const char *path;
	char *dir;
	char *err;
	size_t errlen;
};

static int kc_fail(struct kc *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kc_fail(struct kc *k, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(k->err, k->errlen, "kubeconfig %s: %s", k->path, msg);
	return -EINVAL;
}

/* A string field, NULL if absent; wrong type is an error. */
static int kc_string(struct kc *k, const cJSON *obj, const char *what, const char *key,
		     const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsString(it))
		return kc_fail(k, "%s: %s: expected a string", what, key);
	*out = it->valuestring;
	return 0;
}

/* The entry of list (clusters, users, contexts) named name: its inner object. */
static int kc_find(struct kc *k, const cJSON *root, const char *list, const char *inner,
		   const char *name, const cJSON **out)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, list), *it;

	if (!cJSON_IsArray(arr))
		return kc_fail(k, "%s: expected a list", list);
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");

		if (!cJSON_IsString(n) || strcmp(n->valuestring, name))
			continue;
		*out = cJSON_GetObjectItemCaseSensitive(it, inner);
		if (!cJSON_IsObject(*out))
			return kc_fail(k, "%s \"%s\": no %s mapping", list, name, inner);
		return 0;
	}
	return kc_fail(k, "%s: no entry named \"%s\"", list, name);
}

/* A file path from the kubeconfig: relative ones are relative to its directory. */
static int kc_path(struct kc *k, const char *p, char **out)
{
	if (!*p)
		return kc_fail(k, "empty file path");
	if (p[0] == '/')
		*out = strdup(p);
	else if (asprintf(out, "%s/%s", k->dir, p) < 0)
		*out = NULL;
	if (!*out) {
		snprintf(k->err, k->errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int kc_data(struct kc *k, const char *what, const char *b64, char **out)
{
	int ret = b64_decode_text(b64, out);

	if (ret == -EINVAL)
		return kc_fail(k, "%s: not valid base64 of PEM text", what);
	if (ret)
		snprintf(k->err, k->errlen, "out of memory");
	return ret;
}

static int kc_cluster(struct kc *k, const cJSON *cl, const char *name,
		      struct k8s_client_config *cfg)
{
	const char *server, *ca, *ca_data;
	const cJSON *insecure;
	char what[300];
	int ret;

	snprintf(what, sizeof(what), "cluster \"%.200s\"", name);
	if (kc_string(k, cl, what, "server", &server) ||
	    kc_string(k, cl, what, "certificate-authority", &ca) ||
	    kc_string(k, cl, what, "certificate-authority-data", &ca_data))
		return -EINVAL;
	if (!server || (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)))
		return kc_fail(k, "%s: server: %s", what,
			       server ? "not an http(s):// URL" : "missing");
	insecure = cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify");
	if (insecure && !cJSON_IsNull(insecure) && !cJSON_IsBool(insecure))
		return kc_fail(k, "%s: insecure-skip-tls-verify: expected true or false", what);
	cfg->insecure = cJSON_IsTrue(insecure);
	cfg->servers = calloc(1, sizeof(*cfg->servers));
	if (!cfg->servers || !(cfg->servers[0] = strdup(server))) {
		snprintf(k->err, k->errlen, "out of memory");
		return -ENOMEM;
	}
	cfg->n_servers = 1;
	if (ca && (ret = kc_path(k, ca, &cfg->ca_file)))
		return ret;
	if (ca_data && (ret = kc_data(k, "certificate-authority-data", ca_data, &cfg->ca_data)))
		return ret;
	return 0;
}

static int kc_user(struct kc *k, const cJSON *u, const char *name, struct k8s_client_config *cfg)
{
	static const char *const unsupported[] = {"exec", "auth-provider", "username", "password",
						  "as",	  "impersonate"};
	const char *token, *token_file, *cert, *key, *cert_data, *key_data;
	char what[300];
	int ret;

	snprintf(what, sizeof(what), "user \"%.200s\"", name);
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (cJSON_GetObjectItemCaseSensitive(u, unsupported[i]))
			return kc_fail(k,
				       "%s: \"%s\" is not supported (use a token, tokenFile or "
				       "a client certificate)",
				       what, unsupported[i]);
	}
	if (kc_string(k, u, what, "token", &token) ||
	    kc_string(k, u, what, "tokenFile", &token_file) ||
	    kc_string(k, u, what, "client-certificate", &cert) ||
	    kc_string(k, u, what, "client-key", &key) ||
	    kc_string(k, u, what, "client-certificate-data", &cert_data) ||
	    kc_string(k, u, what, "client-key-data", &key_data))
		return -EINVAL;
	if (token && strpbrk(token, "\r\n"))
		return kc_fail(k, "%s: token: line break inside", what);
	if (token && !(cfg->token = strdup(token))) {
		snprintf(k->err, k->errlen, "out of memory");
		return -ENOMEM;
	}
	if (token_file && (ret = kc_path(k, token_file, &cfg->token_file)))
		return ret;
	if (cert && (ret = kc_path(k, cert, &cfg->cert_file)))
		return ret;
	if (key && (ret = kc_path(k, key, &cfg->key_file)))
		return ret;
	if (cert_data && (ret = kc_data(k, "client-certificate-data", cert_data, &cfg->cert_data)))
		return ret;
	if (key_data && (ret = kc_data(k, "client-key-data", key_data, &cfg->key_data)))
		return ret;
	if (!!(cert || cert_data) != !!(key || key_data))
		return kc_fail(
		    k, "%s: a client certificate needs its key (and the other way round)", what);
	return 0;
}

int k8s_config_from_kubeconfig(const char *path, struct k8s_client_config *cfg, char *err,
			       size_t errlen)
{
	struct kc k = {.path = path, .err = err, .errlen = errlen};
	const char *current, *cluster_name, *user_name;
	const cJSON *ctx, *cl, *u;
	char yerr[256], *text = NULL, *copy = NULL;
	cJSON *root = NULL;
	size_t len = 0;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ret = read_file(path, &text, &len, err, errlen);
	if (ret)
		return ret;
	copy = strdup(path);
	k.dir = copy ? dirname(copy) : NULL;
	if (!k.dir) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	/* JSON is YAML too, but cJSON reads it exactly. */
	root = cJSON_ParseWithLength(text, len);
	if (!root) {
		root = k8s_yaml_parse(text, len, yerr, sizeof(yerr));
		if (!root) {
			ret = kc_fail(&k, "%s", yerr);
			goto cleanup;
		}
	}
	ret = -EINVAL;
	if (!cJSON_IsObject(root)) {
		kc_fail(&k, "expected a mapping at the top");
		goto cleanup;
	}
	if (kc_string(&k, root, "top level", "current-context", &current))
		goto cleanup;
	if (!current || !*current) {
		kc_fail(&k, "current-context is not set");
		goto cleanup;
	}
	if (kc_find(&k, root, "contexts", "context", current, &ctx) ||
	    kc_string(&k, ctx, "context", "cluster", &cluster_name) ||
	    kc_string(&k, ctx, "context", "user", &user_name))
		goto cleanup;
	if (!cluster_name) {
		kc_fail(&k, "context \"%.200s\": no cluster", current);
		goto cleanup;
	}
	if (kc_find(&k, root, "clusters", "cluster", cluster_name, &cl))
		goto cleanup;
	ret = kc_cluster(&k, cl, cluster_name, cfg);
	if (ret)
		goto cleanup;
	/* A context without a user talks to the server anonymously. */
	if (user_name && *user_name) {
		ret = kc_find(&k, root, "users", "user", user_name, &u);
		if (!ret)
			ret = kc_user(&k, u, user_name, cfg);
		if (ret)
			goto cleanup;
	}
	k8s_config_defaults(cfg);
	ret = 0;
cleanup:
	if (ret)
		k8s_config_free(cfg);
	cJSON_Delete(root);
	free(copy);
	free(text);
	return ret;
}
