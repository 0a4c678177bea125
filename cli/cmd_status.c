// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl status [--verbose]: the agent's own account of its health. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_util.h"

static bool verbose;

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void kubernetes_text(const cJSON *k)
{
	const cJSON *w;

	printf("%-18s%s   %s (%s)   last event %s\n", "Kubernetes:",
	       cJSON_IsTrue(cJSON_GetObjectItem(k, "connected")) ? "Ok" : "Disconnected",
	       str(k, "server"), str(k, "version")[0] ? str(k, "version") : "version unknown",
	       str(k, "last_event")[0] ? str(k, "last_event") : "never");
	printf("%-18s\n", "Watches:");
	cJSON_ArrayForEach(w, cJSON_GetObjectItem(k, "watches")) {
		printf("  %-16s%-8s %-9s objects=%-6.0f events=%-6.0f rv=%s%s%s\n", str(w, "name"),
		       cJSON_IsTrue(cJSON_GetObjectItem(w, "synced")) ? "synced" : "syncing",
		       str(w, "state"), num(w, "objects"), num(w, "events"),
		       str(w, "resource_version"), str(w, "last_error")[0] ? "  error: " : "",
		       str(w, "last_error"));
	}
}

static void status_text(const cJSON *doc)
{
	const cJSON *lb = cJSON_GetObjectItem(doc, "load_balancing"), *o;
	const cJSON *unrealized = cJSON_GetObjectItem(doc, "unrealized");

	kubernetes_text(cJSON_GetObjectItem(doc, "kubernetes"));
	printf("%-18s%.0f services, %.0f frontends, %.0f backends (%.0f endpoints in %.0f "
	       "slices)\n", "Load balancing:", num(lb, "services"), num(lb, "frontends"),
	       num(lb, "backends"), num(lb, "endpoints"), num(lb, "endpoint_slices"));
	printf("%-18s\n", "Maps:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "maps")) {
		if (cJSON_GetObjectItem(o, "entries"))
			printf("  %-16s%8.0f/%-8.0f (%.1f%%)\n", str(o, "name"), num(o, "entries"),
			       num(o, "max_entries"), num(o, "fill_percent"));
		else
			printf("  %-16s%8s/%-8.0f\n", str(o, "name"), "-", num(o, "max_entries"));
	}
	printf("%-18s\n", "Attach points:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "attach"))
		printf("  %-22s%-20s%s\n", str(o, "hook"), str(o, "program"), str(o, "target"));
	printf("%-18s\n", "Modules:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "modules"))
		printf("  %-16s%-9s %s\n", str(o, "name"), str(o, "health"), str(o, "message"));
	if (!verbose) {
		if (cJSON_GetArraySize(unrealized))
			printf("%d object(s) not realized; run 'agentctl status --verbose'\n",
			       cJSON_GetArraySize(unrealized));
		return;
	}
	printf("%-18s%d\n", "Not realized:", cJSON_GetArraySize(unrealized));
	cJSON_ArrayForEach(o, unrealized)
		printf("  service %s: %s (attempts %.0f)\n", str(o, "service"), str(o, "error"),
		       num(o, "attempts"));
	printf("%-18s%.0f\n", "Skipped objects:", num(doc, "skipped_objects_total"));
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "skipped_objects"))
		printf("  %s %s: %s\n", str(o, "kind"), str(o, "name"), str(o, "error"));
}

int cmd_status(int argc, char **argv)
{
	static const char *const names[] = { "--verbose" };
	cJSON *doc, *e;
	int err = cmd_flags(argc, argv, names, &verbose, 1);

	if (err)
		return err;
	doc = cli_agent_request("status", &err);
	if (!doc)
		return cli_error("cannot reach the agent at %s: %s (is axon-agent running?)",
				 cli.socket_path, strerror(-err));
	e = cJSON_GetObjectItem(doc, "error");
	if (cJSON_IsString(e)) {
		err = cli_error("agent: %s", e->valuestring);
		cJSON_Delete(doc);
		return err;
	}
	return cli_print(doc, status_text);
}
