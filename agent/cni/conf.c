// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * --write-cni-conf-when-ready PATH: the runtime (kubelet via containerd or
 * CRI-O) starts pods on a node only once a network config is in its CNI
 * config dir, so writing it when the agent is ready (/healthz) and can add
 * pods (this Node has a pod CIDR), and not before, keeps pods off a node
 * whose datapath cannot take them yet. Written atomically
 * (a temporary file in the same directory, renamed), rewritten only when
 * its content would change; left in place on shutdown, so a restarting
 * agent does not stop pods from being created on a node whose datapath
 * keeps running (ADDs get "try again later" meanwhile).
 *
 * cniVersion 1.0.0: what the runtimes and the reference plugins one may
 * chain after axon-cni (portmap, bandwidth) all read. axon-cni alone: a
 * chained plugin missing from the node's CNI bin dir would fail every ADD.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cni.h"
#include "log.h"
#include "pin.h"

static char *conflist(struct agent *a)
{
	cJSON *o = cJSON_CreateObject(), *plugins, *p;
	char *text;

	cJSON_AddStringToObject(o, "cniVersion", "1.0.0");
	cJSON_AddStringToObject(o, "name", "axon");
	plugins = cJSON_AddArrayToObject(o, "plugins");
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "type", "axon-cni");
	cJSON_AddStringToObject(p, "agent-socket", a->cfg.socket_path);
	cJSON_AddItemToArray(plugins, p);
	text = cJSON_Print(o);
	cJSON_Delete(o);
	return text;
}

static bool same_content(const char *path, const char *text)
{
	size_t len = strlen(text), n;
	char *buf = malloc(len + 2);
	FILE *f = fopen(path, "re");
	bool same = false;

	if (f && buf) {
		n = fread(buf, 1, len + 1, f);
		same = n == len && !memcmp(buf, text, len);
	}
	if (f)
		fclose(f);
	free(buf);
	return same;
}

static int write_atomic(const char *path, const char *text)
{
	char tmp[4096], dir[4096];
	FILE *f;
	int err = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	err = mkdir_p(dirname(dir));
	if (err)
		return err;
	/* Not *.conflist: the runtime never reads it half-written. */
	snprintf(tmp, sizeof(tmp), "%s.axon-tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

void cni_conf_tick(struct agent *a)
{
	struct agent_cni *c = &a->cni;
	const char *path = a->cfg.write_cni_conf;
	char *text;
	int err;

	if (!path || !*path || c->conf_written || !a->health.ready || agent_cni_not_ready(a))
		return;
	text = conflist(a);
	if (!text)
		return;
	err = same_content(path, text) ? 0 : write_atomic(path, text);
	free(text);
	if (err) {
		if (!c->conf_error[0])
			pr_warn("cannot write the CNI configuration", "path=%s error=\"%s\"", path,
				strerror(-err));
		snprintf(c->conf_error, sizeof(c->conf_error), "%s: %s", path, strerror(-err));
		return;
	}
	c->conf_error[0] = '\0';
	c->conf_written = true;
	pr_info("CNI configuration written: the node takes pods", "path=%s", path);
}
