// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* axon-cni: see cni.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cni.h"

#define CNI_STDIN_MAX (60 * 1024)	/* the agent's request limit is 64 KiB */

static const char *const versions[] = { "1.0.0", "1.1.0" };
static const char *const env_names[] = {
	"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH",
};

int cni_fail(const char *version, int code, const char *msg, const char *details)
{
	struct buf b = {};

	buf_adds(&b, "{\n\t\"cniVersion\": ");
	buf_add_json_str(&b, version && *version ? version : CNI_LATEST);
	buf_adds(&b, ",\n\t\"code\": ");
	{
		char n[16];

		snprintf(n, sizeof(n), "%d", code);
		buf_adds(&b, n);
	}
	buf_adds(&b, ",\n\t\"msg\": ");
	buf_add_json_str(&b, msg);
	if (details && *details) {
		buf_adds(&b, ",\n\t\"details\": ");
		buf_add_json_str(&b, details);
	}
	buf_adds(&b, "\n}\n");
	if (b.s)
		fputs(b.s, stdout);
	free(b.s);
	return 1;
}

static int read_stdin(struct buf *b)
{
	char chunk[8192];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		buf_add(b, chunk, n);
		if (b->len > CNI_STDIN_MAX)
			return -1;
	}
	buf_add(b, "", 0);
	return b->oom ? -1 : 0;
}

static int supported(const char *v)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (!strcmp(v, versions[i]))
			return 1;
	return 0;
}

static int cmd_version(const char *in)
{
	char v[32] = "";

	if (!json_top_str(in, "cniVersion", v, sizeof(v)) || !supported(v))
		snprintf(v, sizeof(v), "%s", CNI_LATEST);
	printf("{\n\t\"cniVersion\": \"%s\",\n\t\"supportedVersions\": [", v);
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		printf("%s\"%s\"", i ? ", " : "", versions[i]);
	printf("]\n}\n");
	return 0;
}

static int forward(const char *cmd, const char *in)
{
	char version[32] = "", socket[256] = CNI_DEFAULT_SOCKET;
	struct buf req = {}, ans = {}, out = {};
	int exit_code = 1, err;

	json_top_str(in, "cniVersion", version, sizeof(version));
	json_top_str(in, "agent-socket", socket, sizeof(socket));
	buf_adds(&req, "{\"cmd\":\"cni exec\",\"command\":");
	buf_add_json_str(&req, cmd);
	buf_adds(&req, ",\"env\":{");
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++) {
		const char *v = getenv(env_names[i]);

		buf_adds(&req, i ? "," : "");
		buf_add_json_str(&req, env_names[i]);
		buf_adds(&req, ":");
		buf_add_json_str(&req, v ? v : "");
	}
	buf_adds(&req, "},\"stdin\":");
	buf_add_json_str(&req, in);
	buf_adds(&req, "}\n");
	if (req.oom) {
		exit_code = cni_fail(version, CNI_E_IO, "out of memory", NULL);
		goto out;
	}
	err = agent_call(socket, req.s, &ans);
	if (err) {
		char details[512];

		snprintf(details, sizeof(details), "%s: %s", socket, strerror(-err));
		exit_code = cni_fail(version, strcmp(cmd, "STATUS") ? CNI_E_TRY_AGAIN_LATER
								    : CNI_E_NOT_AVAILABLE,
				     "axon-agent unreachable", details);
		goto out;
	}
	if (json_answer(ans.s, &exit_code, &out)) {
		/* An agent without "cni exec" answers {"error": "unknown command"}. */
		exit_code = cni_fail(version, CNI_E_TRY_AGAIN_LATER,
				     "axon-agent cannot serve CNI requests", ans.s);
		goto out;
	}
	fputs(out.s, stdout);
out:
	free(req.s);
	free(ans.s);
	free(out.s);
	return exit_code;
}

/* axon-cni install DIR: the chart's init container puts the plugin on the
 * node. Copied beside, then renamed: a runtime running the old binary keeps
 * it, the next run gets the new one whole. */
static int install(const char *dir)
{
	char tmp[4096], dst[4096], chunk[65536];
	FILE *in = fopen("/proc/self/exe", "re"), *out = NULL;
	size_t n;
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s/.axon-cni.tmp", dir);
	snprintf(dst, sizeof(dst), "%s/axon-cni", dir);
	if (in)
		out = fopen(tmp, "we");
	if (!in || !out)
		err = errno;
	while (!err && (n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (fwrite(chunk, 1, n, out) != n)
			err = errno;
	if (in && ferror(in) && !err)
		err = EIO;
	if (out && (fclose(out) || chmod(tmp, 0755)) && !err)
		err = errno;
	if (!err && rename(tmp, dst))
		err = errno;
	if (in)
		fclose(in);
	if (err) {
		unlink(tmp);
		fprintf(stderr, "axon-cni: cannot install into %s: %s\n", dir, strerror(err));
		return 1;
	}
	printf("installed %s\n", dst);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = getenv("CNI_COMMAND");
	struct buf in = {};
	int ret;

	/* Runtimes run plugins without arguments. */
	if (argc == 3 && !strcmp(argv[1], "install"))
		return install(argv[2]);

	if (!cmd || !*cmd)
		return cni_fail(NULL, CNI_E_INVALID_ENV, "CNI_COMMAND is required", NULL);
	if (read_stdin(&in))
		return cni_fail(NULL, CNI_E_IO, "cannot read the network configuration",
				"stdin: more than 60 KiB, or out of memory");
	if (!strcmp(cmd, "VERSION"))
		ret = cmd_version(in.s);
	else if (!strcmp(cmd, "ADD") || !strcmp(cmd, "DEL") || !strcmp(cmd, "CHECK") ||
		 !strcmp(cmd, "STATUS") || !strcmp(cmd, "GC"))
		ret = forward(cmd, in.s);
	else
		ret = cni_fail(NULL, CNI_E_INVALID_ENV, "unknown CNI_COMMAND", cmd);
	free(in.s);
	return ret;
}
