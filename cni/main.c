// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* axon-cni: see cni.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

#define CNI_STDIN_MAX (1 << 20)
#define CNI_LATEST "1.1.0"

static void print(cJSON *doc)
{
	char *text = cJSON_Print(doc);

	if (text) {
		fputs(text, stdout);
		fputc('\n', stdout);
	}
	free(text);
}

int cni_fail(const char *version, int code, const char *msg, const char *details)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "cniVersion", version ? version : CNI_LATEST);
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "msg", msg);
	if (details && *details)
		cJSON_AddStringToObject(e, "details", details);
	print(e);
	cJSON_Delete(e);
	return 1;
}

static char *read_stdin(void)
{
	size_t len = 0, cap = 8192;
	char *buf = malloc(cap);

	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, stdin);

		len += n;
		if (n == 0 || len >= CNI_STDIN_MAX)
			break;
		if (cap - len < 2) {
			char *p = realloc(buf, cap * 2);

			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int cmd_version(const char *text)
{
	static const char *const versions[] = CNI_SUPPORTED_VERSIONS;
	cJSON *in = cJSON_Parse(text), *out = cJSON_CreateObject(), *arr;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "cniVersion");

	cJSON_AddStringToObject(out, "cniVersion",
				cJSON_IsString(v) && cni_version_supported(v->valuestring)
					? v->valuestring
					: CNI_LATEST);
	arr = cJSON_AddArrayToObject(out, "supportedVersions");
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(versions[i]));
	print(out);
	cJSON_Delete(out);
	cJSON_Delete(in);
	return 0;
}

/* The attachments the runtime still holds: 1.1.0's "cni.dev/valid-attachments",
 * or the "cni.dev/attachments" libcni also sends. */
static cJSON *gc_attachments(const struct cni_call *c)
{
	cJSON *a = cJSON_GetObjectItemCaseSensitive(c->conf, "cni.dev/valid-attachments");

	if (!a)
		a = cJSON_GetObjectItemCaseSensitive(c->conf, "cni.dev/attachments");
	return cJSON_IsArray(a) ? a : NULL;
}

static int build_request(struct cni_call *c, cJSON *req)
{
	char cmd[16] = "cni ";

	for (size_t i = 0; c->command[i] && i < 10; i++)
		cmd[4 + i] = (char)(c->command[i] | 0x20);	/* ADD -> add */
	cJSON_AddStringToObject(req, "cmd", cmd);
	if (!strcmp(c->command, "GC")) {
		cJSON *a = gc_attachments(c);

		if (!a)
			return cni_fail(c->version, CNI_E_INVALID_CONFIG,
					"GC needs cni.dev/valid-attachments", NULL);
		cJSON_AddItemReferenceToObject(req, "attachments", a);
		return 0;
	}
	if (!strcmp(c->command, "STATUS"))
		return 0;
	cJSON_AddStringToObject(req, "container_id", c->container_id);
	cJSON_AddStringToObject(req, "netns", c->netns);
	cJSON_AddStringToObject(req, "ifname", c->ifname);
	cJSON_AddStringToObject(req, "pod_namespace", c->pod_namespace);
	cJSON_AddStringToObject(req, "pod_name", c->pod_name);
	return 0;
}

static int run(struct cni_call *c, const char *text)
{
	cJSON *req = NULL, *resp = NULL;
	const cJSON *err, *result;
	int ret;

	ret = cni_conf_read(c, text);
	if (!ret)
		ret = cni_env_read(c);
	/* axon-cni creates the pod's interface: it comes first in a chain. */
	if (!ret && !strcmp(c->command, "ADD") &&
	    cJSON_GetObjectItemCaseSensitive(c->conf, "prevResult"))
		ret = cni_fail(c->version, CNI_E_INVALID_CONFIG,
			       "axon-cni must be the first plugin of its list",
			       "ADD was given a prevResult");
	if (ret)
		return ret;
	req = cJSON_CreateObject();
	ret = build_request(c, req);
	if (!ret)
		ret = cni_agent_call(c, req, &resp);
	if (ret)
		goto out;
	err = cJSON_GetObjectItemCaseSensitive(resp, "cni_error");
	result = cJSON_GetObjectItemCaseSensitive(resp, "result");
	if (cJSON_IsObject(err)) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "msg");
		const cJSON *det = cJSON_GetObjectItemCaseSensitive(err, "details");

		ret = cni_fail(c->version, cJSON_IsNumber(code) ? code->valueint : CNI_E_IO,
			       cJSON_IsString(msg) ? msg->valuestring : "axon-agent failed",
			       cJSON_IsString(det) ? det->valuestring : NULL);
	} else if (!cJSON_IsObject(result)) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");

		/* An agent without the CNI commands answers "unknown command". */
		ret = cni_fail(c->version, CNI_E_TRY_AGAIN_LATER, "axon-agent cannot serve CNI",
			       cJSON_IsString(e) ? e->valuestring : "no result");
	} else if (!strcmp(c->command, "ADD")) {
		cJSON *out = cJSON_CreateObject();

		cJSON_AddStringToObject(out, "cniVersion", c->version);
		for (const cJSON *f = result->child; f; f = f->next)
			cJSON_AddItemReferenceToObject(out, f->string, (cJSON *)f);
		print(out);
		cJSON_Delete(out);
	}
out:
	cJSON_Delete(resp);
	cJSON_Delete(req);
	return ret;
}

int main(void)
{
	struct cni_call c = {};
	const char *cmd = getenv("CNI_COMMAND");
	char *text;
	int ret;

	if (!cmd || !*cmd)
		return cni_fail(NULL, CNI_E_INVALID_ENV, "CNI_COMMAND is required", NULL);
	text = read_stdin();
	if (!text)
		return cni_fail(NULL, CNI_E_IO, "cannot read stdin", NULL);
	c.command = cmd;
	if (!strcmp(cmd, "VERSION")) {
		ret = cmd_version(text);
	} else if (!strcmp(cmd, "ADD") || !strcmp(cmd, "DEL") || !strcmp(cmd, "CHECK") ||
		   !strcmp(cmd, "STATUS") || !strcmp(cmd, "GC")) {
		ret = run(&c, text);
	} else {
		ret = cni_fail(NULL, CNI_E_INVALID_ENV, "unknown CNI_COMMAND", cmd);
	}
	cJSON_Delete(c.conf);
	free(text);
	return ret;
}
