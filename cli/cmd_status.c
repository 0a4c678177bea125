// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl status [--verbose | --brief]: the agent's own account of its
 * health. The first line names the agent's version, the second the verdict
 * (status_health.h): OK, or the first problem and what to do. --brief prints
 * only that line. Exit codes (both forms, and -o json): 0 healthy, 1 a
 * module not ok or Kubernetes disconnected, 2 the agent unreachable.
 *
 * The sections this file knows get their own layout. Any other top-level
 * field the agent adds (node, endpoints, ipcache, routes, attachments, ct_gc,
 * ...) is rendered generically as "key: value" lines, so a new field shows
 * up without a CLI change; lists inside them are counted ("12 items") unless
 * --verbose, which prints every element. --verbose adds Cilium's
 * "KubeProxyReplacement Details" section (agent/kpr_status.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_util.h"
#include "status_health.h"

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
		printf("  %-32s %-8s %-9s objects=%-6.0f events=%-6.0f rv=%s%s%s%s%s\n",
		       str(w, "name"),
		       cJSON_IsTrue(cJSON_GetObjectItem(w, "synced")) ? "synced" : "syncing",
		       str(w, "state"), num(w, "objects"), num(w, "events"),
		       str(w, "resource_version"), str(w, "list_mode")[0] ? "  listed by " : "",
		       str(w, "list_mode"), str(w, "last_error")[0] ? "  error: " : "",
		       str(w, "last_error"));
	}
}

/*
 * Policy:           ok   revision 42, realized 42   9 endpoints, 1 enforcing, 0 failed
 *   objects:        2 NetworkPolicy, 1 CiliumNetworkPolicy, 0 CiliumClusterwideNetworkPolicy;
 *                   12 identities, 3 namespaces
 *   not enforced:   CiliumNetworkPolicy default/l7: L7 rules
 *   failed:         x/a (id 3, 0 entries realized): No space left on device
 */
static void policy_text(const cJSON *p)
{
	const cJSON *o;

	if (!p)
		return;
	printf("%-18s%s   revision %.0f, realized %.0f   %.0f endpoints, %.0f enforcing, %.0f "
	       "failed\n", "Policy:", str(p, "health")[0] ? str(p, "health") : "-",
	       num(p, "revision"), num(p, "revision_realized"), num(p, "endpoints"),
	       num(p, "endpoints_enforcing"), num(p, "endpoints_failed"));
	printf("  %-16s%.0f NetworkPolicy, %.0f CiliumNetworkPolicy, %.0f "
	       "CiliumClusterwideNetworkPolicy; %.0f identities, %.0f namespaces\n", "objects:",
	       num(p, "network_policies"), num(p, "cilium_network_policies"),
	       num(p, "cilium_clusterwide_network_policies"), num(p, "identities"),
	       num(p, "namespaces"));
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(p, "unsupported_policies"))
		printf("  %-16s%s %s: %s\n", "not enforced:", str(o, "kind"), str(o, "name"),
		       str(o, "unsupported"));
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(p, "failed_endpoints"))
		printf("  %-16s%s (id %.0f, %.0f entries realized): %s\n", "failed:", str(o, "pod"),
		       num(o, "id"), num(o, "entries"), str(o, "error"));
}

static const char *const known_sections[] = {
	"version", "commit", "started", "healthy", "summary", "kubernetes", "load_balancing",
	"maps", "attach", "modules", "unrealized", "skipped_objects_total", "skipped_objects",
	"policy", "ipam", "kube_proxy_replacement",
};

static bool is_known_section(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_sections); i++)
		if (!strcmp(key, known_sections[i]))
			return true;
	return false;
}

/* "ct_gc" -> "Conntrack GC", else "some_field" -> "Some field". */
static void section_title(const char *key, char *buf, size_t len)
{
	static const struct { const char *key, *title; } titles[] = {
		{ "node", "Node" },		{ "endpoints", "Endpoints" },
		{ "ipcache", "IPCache" },	{ "routes", "Routes" },
		{ "attachments", "Attachments" }, { "ct_gc", "Conntrack GC" },
		{ "big_tcp", "BIG TCP" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(titles); i++) {
		if (!strcmp(key, titles[i].key)) {
			snprintf(buf, len, "%s", titles[i].title);
			return;
		}
	}
	snprintf(buf, len, "%s", key);
	for (char *c = buf; *c; c++)
		if (*c == '_')
			*c = ' ';
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] -= 'a' - 'A';
}

static void scalar_text(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsString(v))
		snprintf(buf, len, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(buf, len, "%.15g", v->valuedouble);
	else if (cJSON_IsBool(v))
		snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNull(v))
		snprintf(buf, len, "-");
	else
		buf[0] = '\0';
}

static bool all_scalars(const cJSON *v)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, v)
		if (cJSON_IsObject(e) || cJSON_IsArray(e))
			return false;
	return true;
}

/* An object or array of scalars on one line: "k=v k=v" / "a, b". */
static void inline_text(const cJSON *v)
{
	const cJSON *e;
	char buf[512];
	bool first = true;

	cJSON_ArrayForEach(e, v) {
		scalar_text(e, buf, sizeof(buf));
		if (cJSON_IsObject(v))
			printf("%s%s=%s", first ? "" : " ", e->string, buf);
		else
			printf("%s%s", first ? "" : ", ", buf);
		first = false;
	}
}

static void value_text(const char *key, const cJSON *v, int indent)
{
	const cJSON *e;
	char buf[512];

	printf("%*s%s:", indent, "", key);
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
		scalar_text(v, buf, sizeof(buf));
		printf(" %s\n", buf);
		return;
	}
	if (cJSON_IsArray(v) && all_scalars(v)) {
		putchar(' ');
		inline_text(v);
		putchar('\n');
		return;
	}
	if (cJSON_IsArray(v)) {
		if (!verbose) {
			printf(" %d item(s)\n", cJSON_GetArraySize(v));
			return;
		}
		putchar('\n');
		cJSON_ArrayForEach(e, v) {
			printf("%*s- ", indent + 2, "");
			if (cJSON_IsObject(e) && all_scalars(e)) {
				inline_text(e);
				putchar('\n');
			} else {
				scalar_text(e, buf, sizeof(buf));
				printf("%s\n", buf);
				if (cJSON_IsObject(e) || cJSON_IsArray(e)) {
					const cJSON *f;

					cJSON_ArrayForEach(f, e)
						value_text(f->string ? f->string : "-", f,
							   indent + 4);
				}
			}
		}
		return;
	}
	putchar('\n');
	cJSON_ArrayForEach(e, v)
		value_text(e->string, e, indent + 2);
}

static void extra_sections_text(const cJSON *doc)
{
	const cJSON *sec;
	char title[64];

	cJSON_ArrayForEach(sec, doc) {
		if (!sec->string || is_known_section(sec->string))
			continue;
		section_title(sec->string, title, sizeof(title));
		value_text(title, sec, 0);
	}
}

/* The CNI's pod addresses: "12/254 allocated from 10.244.1.0/24"; with
 * --verbose each address and its pod. */
static void ipam_text(const cJSON *ipam)
{
	const cJSON *o;

	if (!cJSON_IsObject(ipam) || !cJSON_GetObjectItem(ipam, "pool"))
		return;
	if (str(ipam, "pool")[0])
		printf("%-18s%.0f/%.0f allocated from %s\n", "IPAM:", num(ipam, "allocated"),
		       num(ipam, "capacity"), str(ipam, "pool"));
	else
		printf("%-18sno pod CIDR for this node yet\n", "IPAM:");
	if (!verbose)
		return;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(ipam, "allocations")) {
		const char *owner = str(o, "owner"), *pod = str(o, "pod");

		if (!strcmp(owner, "router"))
			printf("  %-16s(router)\n", str(o, "ip"));
		else
			printf("  %-16s%s (container %s)\n", str(o, "ip"), pod[0] ? pod : "-", owner);
	}
}

static const char *enabled(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItem(o, key)) ? "Enabled" : "Disabled";
}

/*
 * KubeProxyReplacement Details:, laid out as `cilium status --verbose` does
 * (two tab-aligned blocks: the settings, then the service types).
 */
static void kpr_text(const cJSON *k)
{
	const cJSON *sock = cJSON_GetObjectItem(k, "socket_lb"), *dev, *term;
	const cJSON *sel = cJSON_GetObjectItem(k, "backend_selection");
	const cJSON *svc = cJSON_GetObjectItem(k, "services"), *topo;
	char devices[1024] = "", buf[128];
	size_t off = 0;

	if (!k)
		return;
	cJSON_ArrayForEach(dev, cJSON_GetObjectItem(k, "devices")) {
		int n = snprintf(devices + off, sizeof(devices) - off, "%s%s   %s%s",
				 off ? ", " : "", str(dev, "name"), str(dev, "ipv4"),
				 cJSON_IsTrue(cJSON_GetObjectItem(dev, "direct_routing"))
				     ? " (Direct Routing)" : "");

		if (n < 0 || (size_t)n >= sizeof(devices) - off)
			break;
		off += n;
	}
	printf("KubeProxyReplacement Details:\n");
	printf("  %-24s%s\n", "Status:", str(k, "status"));
	printf("  %-24s%s\n", "Socket LB:", enabled(sock, "enabled"));
	printf("  %-24s%s\n", "Socket LB Tracing:", enabled(sock, "tracing"));
	printf("  %-24s%s\n", "Socket LB Coverage:", str(sock, "coverage"));
	term = cJSON_GetObjectItem(sock, "termination");
	if (cJSON_IsTrue(cJSON_GetObjectItem(term, "enabled")))
		snprintf(buf, sizeof(buf), "Enabled (%s%.0f sockets)",
			 strcmp(str(term, "mode"), "sock_diag") ? "" : "sock_diag, ",
			 num(term, "sockets_destroyed"));
	else
		snprintf(buf, sizeof(buf), "Disabled (%s)", str(term, "reason"));
	printf("  %-24s%s\n", "Socket LB Termination:", buf);
	if (devices[0])
		printf("  %-24s%s\n", "Devices:", devices);
	printf("  %-24s%s\n", "Mode:", str(k, "mode"));
	if (cJSON_GetObjectItem(sel, "table_size"))
		snprintf(buf, sizeof(buf), "%s (Table Size: %.0f)", str(sel, "algorithm"),
			 num(sel, "table_size"));
	else
		snprintf(buf, sizeof(buf), "%s", str(sel, "algorithm"));
	printf("  %-24s%s\n", "Backend Selection:", buf);
	printf("  %-24s%s\n", "Session Affinity:", enabled(k, "session_affinity"));
	printf("  %-24s%s\n", "Graceful Termination:", enabled(k, "graceful_termination"));
	printf("  %-24s%s\n", "NAT46/64 Support:", enabled(k, "nat46_64"));
	printf("  %-24s%s\n", "XDP Acceleration:", str(k, "xdp_acceleration"));
	printf("  %-24sEnabled (%d service(s))\n", "Health Check NodePort:",
	       cJSON_GetArraySize(cJSON_GetObjectItem(k, "health_check_node_ports")));
	printf("  %-24sEnabled (%.0f service(s))\n", "Source Ranges:",
	       num(k, "source_range_services"));
	topo = cJSON_GetObjectItem(k, "topology_aware_hints");
	if (topo) {
		/* Without a zone label the hints are not followed (all endpoints). */
		snprintf(buf, sizeof(buf), "Enabled (%.0f service(s), zone %s)",
			 num(topo, "services"), str(topo, "zone")[0] ? str(topo, "zone") : "unset");
		printf("  %-24s%s\n", "Topology Aware Hints:", buf);
	}
	printf("  %-24s%s\n", "Kube-proxy Healthz:",
	       str(k, "healthz_bind_address")[0] ? str(k, "healthz_bind_address") : "Disabled");
	printf("  Services:\n");
	printf("  %-18s%s\n", "- ClusterIP:", enabled(svc, "cluster_ip"));
	if (cJSON_IsTrue(cJSON_GetObjectItem(svc, "node_port")))
		snprintf(buf, sizeof(buf), "Enabled (Range: %.0f-%.0f)", num(svc, "node_port_min"),
			 num(svc, "node_port_max"));
	else
		snprintf(buf, sizeof(buf), "Disabled");
	printf("  %-18s%s\n", "- NodePort:", buf);
	printf("  %-18s%s\n", "- LoadBalancer:", enabled(svc, "load_balancer"));
	printf("  %-18s%s\n", "- externalIPs:", enabled(svc, "external_ips"));
	printf("  %-18s%s\n", "- HostPort:", enabled(svc, "host_port"));
}

static void status_text(const cJSON *doc)
{
	const cJSON *lb = cJSON_GetObjectItem(doc, "load_balancing"), *o;
	const cJSON *unrealized = cJSON_GetObjectItem(doc, "unrealized");
	char health[1024];

	printf("%-18saxon-agent %s (commit %s), started %s\n", "Agent:",
	       str(doc, "version")[0] ? str(doc, "version") : "(version unknown)",
	       str(doc, "commit")[0] ? str(doc, "commit") : "unknown",
	       str(doc, "started")[0] ? str(doc, "started") : "-");
	status_health(doc, health, sizeof(health));
	printf("%-18s%s\n", "Health:", health);
	kubernetes_text(cJSON_GetObjectItem(doc, "kubernetes"));
	printf("%-18s%.0f services, %.0f frontends, %.0f backends (%.0f endpoints in %.0f "
	       "slices)\n", "Load balancing:", num(lb, "services"), num(lb, "frontends"),
	       num(lb, "backends"), num(lb, "endpoints"), num(lb, "endpoint_slices"));
	ipam_text(cJSON_GetObjectItem(doc, "ipam"));
	printf("%-18s\n", "Maps:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "maps")) {
		char fill[32] = "", resized[64] = "";

		if (cJSON_GetObjectItem(o, "entries"))
			snprintf(fill, sizeof(fill), " (%.1f%%)", num(o, "fill_percent"));
		/* The flags ask for another size than the pinned map has. */
		if (cJSON_GetObjectItem(o, "configured_max_entries") &&
		    num(o, "configured_max_entries") != num(o, "max_entries"))
			snprintf(resized, sizeof(resized), "  configured %.0f (pinned map kept)",
				 num(o, "configured_max_entries"));
		if (cJSON_GetObjectItem(o, "entries"))
			printf("  %-16s%8.0f/%-8.0f%s%s\n", str(o, "name"), num(o, "entries"),
			       num(o, "max_entries"), fill, resized);
		else
			printf("  %-16s%8s/%-8.0f%s\n", str(o, "name"), "-", num(o, "max_entries"),
			       resized);
	}
	printf("%-18s\n", "Attach points:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "attach"))
		printf("  %-22s%-20s%s\n", str(o, "hook"), str(o, "program"), str(o, "target"));
	printf("%-18s\n", "Modules:");
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "modules"))
		printf("  %-21s %-9s %s\n", str(o, "name"), str(o, "health"), str(o, "message"));
	policy_text(cJSON_GetObjectItem(doc, "policy"));
	extra_sections_text(doc);
	if (!verbose) {
		if (cJSON_GetArraySize(unrealized))
			printf("%d object(s) not realized; run 'agentctl status --verbose'\n",
			       cJSON_GetArraySize(unrealized));
		return;
	}
	kpr_text(cJSON_GetObjectItem(doc, "kube_proxy_replacement"));
	printf("%-18s%d\n", "Not realized:", cJSON_GetArraySize(unrealized));
	cJSON_ArrayForEach(o, unrealized)
		printf("  service %s: %s (attempts %.0f)\n", str(o, "service"), str(o, "error"),
		       num(o, "attempts"));
	printf("%-18s%.0f\n", "Skipped objects:", num(doc, "skipped_objects_total"));
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "skipped_objects"))
		printf("  %s %s: %s\n", str(o, "kind"), str(o, "name"), str(o, "error"));
}

static void brief_text(const cJSON *doc)
{
	printf("%s\n", json_str(doc, "summary"));
}

int cmd_status(int argc, char **argv)
{
	static const char *const names[] = { "--verbose", "--brief" };
	bool found[2] = { false, false };
	char line[1024];
	cJSON *doc, *e;
	bool healthy;
	int ret, err = cmd_flags(argc, argv, names, found, 2);

	if (err)
		return err;
	verbose = found[0];
	if (verbose && found[1])
		return cli_usage_error("status: --verbose and --brief exclude each other");
	doc = cli_agent_request("status", &err);
	if (!doc) {
		cli_unreachable_msg(err, line, sizeof(line));
		/* The brief form's one line is its answer, unreachable or not. */
		if (found[1] && !cli.json)
			printf("%s\n", line);
		else
			cli_error("%s", line);
		return CLI_EXIT_UNREACHABLE;
	}
	e = cJSON_GetObjectItem(doc, "error");
	if (cJSON_IsString(e)) {
		err = cli_error("agent: %s", e->valuestring);
		cJSON_Delete(doc);
		return err;
	}
	healthy = status_health(doc, line, sizeof(line));
	ret = healthy ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (found[1]) {
		cJSON *brief = cJSON_CreateObject();

		cJSON_AddBoolToObject(brief, "healthy", healthy);
		cJSON_AddStringToObject(brief, "summary", line);
		cJSON_AddStringToObject(brief, "version", str(doc, "version"));
		cJSON_Delete(doc);
		cli_print(brief, brief_text);
		return ret;
	}
	/* The verdict in the document too, so scripts need not redo it. */
	cJSON_AddBoolToObject(doc, "healthy", healthy);
	cJSON_AddStringToObject(doc, "summary", line);
	cli_print(doc, status_text);
	return ret;
}
