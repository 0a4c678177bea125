// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * "cni exec": one plugin invocation as the runtime made it, forwarded whole
 * by axon-cni: {"command": "ADD", "env": {"CNI_CONTAINERID": ...}, "stdin":
 * "<network config>"}. Checked here against the spec (so the plugin stays a
 * static forwarder with no JSON library of its own), run by the commands in
 * commands.c, and answered as {"exit": 0|1, "stdout": "<what to print>"}.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "cni.h"

static const char *const versions[] = { "1.0.0", "1.1.0" };

static bool version_supported(const char *v)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(v, versions[i]))
			return true;
	return false;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *env(const cJSON *req, const char *k)
{
	const char *v = str(cJSON_GetObjectItemCaseSensitive(req, "env"), k);

	return v ? v : "";
}

/* The spec's network name: an alphanumeric, then also '_', '.', '-'. */
static bool valid_name(const char *n)
{
	if (!n || !isalnum((unsigned char)n[0]))
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && !strchr("_.-", *n))
			return false;
	return true;
}

static cJSON *answer(int exit_code, cJSON *doc)
{
	cJSON *r = cJSON_CreateObject();
	char *text = doc ? cJSON_Print(doc) : NULL;

	cJSON_AddNumberToObject(r, "exit", exit_code);
	cJSON_AddStringToObject(r, "stdout", text ? text : "");
	cJSON_free(text);
	cJSON_Delete(doc);
	return r;
}

static cJSON *fail(const char *version, int code, const char *msg, const char *details)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "cniVersion", version ? version : "1.1.0");
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "msg", msg);
	if (details && *details)
		cJSON_AddStringToObject(e, "details", details);
	return answer(1, e);
}

/* CNI_ARGS "K=V;K=V": the pod's namespace and name; other keys are the
 * runtime's business (IgnoreUnknown). */
static int args_read(const char *args, cJSON *req)
{
	char buf[1024], *save = NULL;

	if (strlen(args) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", args);
	for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq)
			return -1;
		*eq = '\0';
		if (!strcmp(kv, "K8S_POD_NAMESPACE"))
			cJSON_AddStringToObject(req, "pod_namespace", eq + 1);
		else if (!strcmp(kv, "K8S_POD_NAME"))
			cJSON_AddStringToObject(req, "pod_name", eq + 1);
	}
	return 0;
}

/* The agent-side result as the plugin prints it. */
static cJSON *finish(const char *command, const char *version, cJSON *resp)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(resp, "cni_error");
	const cJSON *result = cJSON_GetObjectItemCaseSensitive(resp, "result");
	cJSON *out = NULL;

	if (cJSON_IsObject(err)) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");

		out = fail(version, cJSON_IsNumber(code) ? code->valueint : CNI_ERR_SETUP,
			   str(err, "msg") ? str(err, "msg") : "axon-agent failed",
			   str(err, "details"));
	} else if (!strcmp(command, "ADD") && cJSON_IsObject(result)) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddStringToObject(doc, "cniVersion", version);
		for (const cJSON *f = result->child; f; f = f->next)
			cJSON_AddItemToObject(doc, f->string, cJSON_Duplicate(f, true));
		out = answer(0, doc);
	} else {
		out = answer(0, NULL);	/* DEL, CHECK, STATUS, GC print nothing */
	}
	cJSON_Delete(resp);
	return out;
}

static cJSON *gc_attachments(const cJSON *conf)
{
	/* 1.1.0's name, and the one libcni also sends. */
	cJSON *a = cJSON_GetObjectItemCaseSensitive(conf, "cni.dev/valid-attachments");

	if (!a)
		a = cJSON_GetObjectItemCaseSensitive(conf, "cni.dev/attachments");
	return cJSON_IsArray(a) ? a : NULL;
}

static cJSON *run(struct agent *a, const char *command, const cJSON *req, const cJSON *conf)
{
	const char *v = str(conf, "cniVersion"), *type = str(conf, "type");
	bool attach = !strcmp(command, "ADD") || !strcmp(command, "DEL") ||
		      !strcmp(command, "CHECK");
	cJSON *sub = cJSON_CreateObject(), *resp;
	char cmd[16];

	if (!valid_name(str(conf, "name"))) {
		resp = fail(v, CNI_ERR_INVALID_CONFIG, "network configuration needs a valid name",
			    NULL);
		goto out;
	}
	if (!type || strcmp(type, "axon-cni")) {
		resp = fail(v, CNI_ERR_INVALID_CONFIG, "network configuration is not of type "
			    "axon-cni", type);
		goto out;
	}
	/* Pod addresses come from this node's pod CIDR: another IPAM would
	 * give addresses the datapath does not route. */
	if (cJSON_GetObjectItemCaseSensitive(conf, "ipam")) {
		resp = fail(v, 2, "unsupported field: ipam",
			    "axon-cni allocates pod addresses itself (this node's pod CIDR)");
		goto out;
	}
	/* axon-cni creates the pod's interface: it comes first in its list. */
	if (!strcmp(command, "ADD") && cJSON_GetObjectItemCaseSensitive(conf, "prevResult")) {
		resp = fail(v, CNI_ERR_INVALID_CONFIG, "axon-cni must be the first plugin of its "
			    "list", "ADD was given a prevResult");
		goto out;
	}
	if (attach) {
		if (!*env(req, "CNI_CONTAINERID")) {
			resp = fail(v, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID is required", NULL);
			goto out;
		}
		if (!*env(req, "CNI_IFNAME")) {
			resp = fail(v, CNI_ERR_INVALID_ENV, "CNI_IFNAME is required", NULL);
			goto out;
		}
		/* DEL may come after the namespace is gone: it needs none. */
		if (!*env(req, "CNI_NETNS") && strcmp(command, "DEL")) {
			resp = fail(v, CNI_ERR_INVALID_ENV, "CNI_NETNS is required", NULL);
			goto out;
		}
		if (args_read(env(req, "CNI_ARGS"), sub)) {
			resp = fail(v, CNI_ERR_INVALID_ENV, "CNI_ARGS: each argument must be "
				    "KEY=VALUE", env(req, "CNI_ARGS"));
			goto out;
		}
		/* CHECK compares the address ADD gave (the runtime's cached result). */
		if (!strcmp(command, "CHECK")) {
			const cJSON *prev = cJSON_GetObjectItemCaseSensitive(conf, "prevResult");
			const cJSON *ips = cJSON_GetObjectItemCaseSensitive(prev, "ips");
			const char *addr = str(cJSON_GetArrayItem(ips, 0), "address");

			if (addr)
				cJSON_AddStringToObject(sub, "prev_address", addr);
		}
		cJSON_AddStringToObject(sub, "container_id", env(req, "CNI_CONTAINERID"));
		cJSON_AddStringToObject(sub, "netns", env(req, "CNI_NETNS"));
		cJSON_AddStringToObject(sub, "ifname", env(req, "CNI_IFNAME"));
	}
	if (!strcmp(command, "GC")) {
		cJSON *att = gc_attachments(conf);

		if (!att) {
			resp = fail(v, CNI_ERR_INVALID_CONFIG, "GC needs cni.dev/valid-attachments",
				    NULL);
			goto out;
		}
		cJSON_AddItemToObject(sub, "attachments", cJSON_Duplicate(att, true));
	}
	snprintf(cmd, sizeof(cmd), "%s", command);
	for (char *c = cmd; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	resp = finish(command, v, agent_cni_handle(a, cmd, sub));
out:
	cJSON_Delete(sub);
	return resp;
}

cJSON *cni_exec(struct agent *a, const cJSON *req)
{
	const char *command = str(req, "command"), *in = str(req, "stdin"), *v;
	cJSON *conf, *resp;

	if (!command || (strcmp(command, "ADD") && strcmp(command, "DEL") &&
			 strcmp(command, "CHECK") && strcmp(command, "STATUS") &&
			 strcmp(command, "GC")))
		return fail(NULL, CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND", command);
	conf = cJSON_Parse(in ? in : "");
	if (!cJSON_IsObject(conf)) {
		cJSON_Delete(conf);
		return fail(NULL, CNI_ERR_DECODE, "cannot decode the network configuration",
			    "stdin is not a JSON object");
	}
	v = str(conf, "cniVersion");
	if (!v)
		resp = fail(NULL, CNI_ERR_INVALID_CONFIG, "network configuration without "
			    "cniVersion", NULL);
	else if (!version_supported(v))
		resp = fail(NULL, 1, "incompatible CNI version",
			    "axon-cni supports cniVersion 1.0.0 and 1.1.0");
	else
		resp = run(a, command, req, conf);
	cJSON_Delete(conf);
	return resp;
}
