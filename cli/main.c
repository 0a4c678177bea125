// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl: look inside a node's Axon datapath. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "axon/maps.h"
#include "api/server.h"
#include "cli.h"
#include "datapath/tc_attach.h"
#include "version.h"

struct cli_opts cli = {
	.bpf_root = AXON_DEFAULT_BPF_ROOT,
	.socket_path = AXON_DEFAULT_SOCKET,
	.state_dir = AXON_DEFAULT_STATE_DIR,
};

static const struct cli_cmd commands[] = {
	{ "status", "[--verbose|--brief]", "agent health: Kubernetes, watches, maps, attach "
	  "points; --brief: one line, OK or the first problem", cmd_status },
	{ "bpf lb list", "[--revnat]", "service frontends and their backends (pinned maps)",
	  cmd_bpf_lb_list },
	{ "bpf lb affinity list", "", "sessionAffinity entries: client IP or netns, "
	  "service, backend, age", cmd_bpf_lb_affinity_list },
	{ "bpf ct list", "[global]", "conntrack entries, Cilium's layout (pinned maps)",
	  cmd_bpf_ct_list },
	{ "bpf ct flush", "[global]", "delete every conntrack entry and NAT pair",
	  cmd_bpf_ct_flush },
	{ "bpf nat list", "", "source-NAT entries (masquerade, NodePort SNAT)", cmd_bpf_nat_list },
	{ "bpf nat flush", "", "delete every NAT entry", cmd_bpf_nat_flush },
	{ "bpf ipcache list", "", "IP prefix -> identity and hosting node", cmd_bpf_ipcache_list },
	{ "bpf endpoint list", "", "local pods: address, device, MACs, identity",
	  cmd_bpf_endpoint_list },
	{ "bpf metrics list", "", "verdicts by reason and direction, summed over CPUs",
	  cmd_bpf_metrics_list },
	{ "bpf policy get", "<id>|--all [--numeric]", "endpoint <id>'s network policy entries, "
	  "Cilium's layout (pinned maps; labels from the agent unless --numeric)",
	  cmd_bpf_policy_get },
	{ "monitor", "[--type drop|trace|policy-verdict]", "stream drop/trace/policy-verdict "
	  "events until Ctrl-C (one reader at a time)", cmd_monitor },
	{ "map list", "", "Axon's pinned maps with size and fill", cmd_map_list },
	{ "service list", "", "Service frontends, their backends and whether the maps hold them "
	  "(agent)", cmd_service_list },
	{ "policy selectors", "", "each selector the policies use and the identities it selects "
	  "(agent)", cmd_policy_selectors },
	{ "endpoint list", "", "local endpoints: policy id, pod, identity, ingress/egress "
	  "enforcement, entries, error (agent)", cmd_endpoint_list },
	{ "node list", "", "Nodes the agent knows: address, pod CIDRs, route to them (agent)",
	  cmd_node_list },
	{ "config view", "", "every agent setting, its value and source: flag, config-dir, "
	  "default (agent)", cmd_config_view },
	{ "version", "", "agentctl's version and the running agent's", cmd_version },
	{ "cleanup", "[--force]", "detach every program (tcx links and recorded legacy tc filters) and remove every map",
	  cmd_cleanup },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: agentctl [--bpf-root DIR] [--socket PATH] [--state-dir DIR] [-o json|table] "
		   "COMMAND\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  %-34s %s\n", left, commands[i].help);
	}
	fprintf(f, "\nOptions:\n"
		   "  --bpf-root DIR   bpffs directory the agent pins under (default %s)\n"
		   "  --socket PATH    the agent's API socket (default %s)\n"
		   "  --state-dir DIR  the agent's state directory, where legacy tc filters are\n"
		   "                   recorded (default %s)\n"
		   "  -o FORMAT        table (default) or json, before or after the command\n"
		   "\nExit status:\n"
		   "  0  success; for status: every module ok and Kubernetes connected\n"
		   "  1  an error; for status: a module not ok, or Kubernetes disconnected\n"
		   "  2  the agent cannot be reached (commands marked (agent), and status);\n"
		   "     or bad usage: an unknown option or command, a group word alone (bpf)\n"
		   "Errors are one line on stderr; with -o json, {\"error\": \"...\"} on stdout.\n"
		   "status --brief prints one line: OK, or the first problem and what to do.\n"
		   "\nThe bpf commands and monitor read the pinned maps, so they work while the\n"
		   "agent is down. monitor: the events ring buffer has one read position, so two\n"
		   "monitors on a node split the events between them; run one at a time.\n",
		AXON_DEFAULT_BPF_ROOT, AXON_DEFAULT_SOCKET, AXON_DEFAULT_STATE_DIR);
}

/* Words of a command name into w[] (at most max); returns how many. */
static int name_words(const char *name, char w[][24], int max)
{
	int n = 0;

	while (*name && n < max) {
		size_t len = strcspn(name, " ");

		snprintf(w[n++], sizeof(w[0]), "%.*s", (int)len, name);
		name += len + (name[len] == ' ');
	}
	return n;
}

/* How many leading words of argv a command's name starts with, at most. */
static int matching_words(const struct cli_cmd *c, int argc, char **argv, int *name_len)
{
	char w[8][24];
	int n = name_words(c->name, w, 8), m = 0;

	while (m < n && m < argc && !strcmp(argv[m], w[m]))
		m++;
	*name_len = n;
	return m;
}

/* The command whose every word starts argv (the longest); *used = its words. */
static const struct cli_cmd *find_command(int argc, char **argv, int *used)
{
	const struct cli_cmd *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int len, m = matching_words(&commands[i], argc, argv, &len);

		if (m == len && m > best_words) {
			best = &commands[i];
			best_words = m;
		}
	}
	*used = best_words;
	return best;
}

/* The words of argv that are a group (the start of some command's name). */
static int group_words(int argc, char **argv)
{
	int best = 0;

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int len, m = matching_words(&commands[i], argc, argv, &len);

		if (m < len && m > best)
			best = m;
	}
	return best;
}

/* The commands of group argv[0..words), or the distinct words that may
 * follow it ("lb, ct, nat, ..."), joined into buf. */
static void group_list(int words, char **argv, bool next_words, char *buf, size_t len)
{
	const char *seen[ARRAY_SIZE(commands)];
	size_t off = 0, n_seen = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const char *item = commands[i].name;
		bool dup = false;
		int n, m;

		m = matching_words(&commands[i], words, argv, &n);
		if (m != words || n <= words)
			continue;
		if (next_words) {
			/* The word after the group's. */
			for (int k = 0; k < words; k++)
				item += strcspn(item, " ") + 1;
			for (size_t j = 0; j < n_seen; j++)
				dup = dup || !strncmp(seen[j], item, strcspn(item, " ") + 1);
			if (dup)
				continue;	/* bpf ct list, bpf ct flush: "ct" once */
			seen[n_seen++] = item;
		}
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%.*s", off ? ", " : "",
				(int)(next_words ? strcspn(item, " ") : strlen(item)), item);
	}
}

/* `agentctl bpf`: the group's commands, and exit 2 (a command is missing). */
static int group_usage(int words, char **argv)
{
	char group[128] = "", list[1024];
	size_t off = 0;

	for (int i = 0; i < words; i++)
		off += snprintf(group + off, sizeof(group) - off, "%s%s", i ? " " : "", argv[i]);
	if (cli.json) {
		group_list(words, argv, false, list, sizeof(list));
		return cli_usage_error("'%s' needs a command: %s", group, list);
	}
	fprintf(stderr, "Usage: agentctl %s COMMAND\n\nCommands:\n", group);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int n, m = matching_words(&commands[i], words, argv, &n);
		char left[64];

		if (m != words || n <= words)
			continue;
		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(stderr, "  %-34s %s\n", left, commands[i].help);
	}
	return CLI_EXIT_USAGE;
}

static int unknown_command(int argc, char **argv)
{
	char list[512], group[128] = "";
	size_t off = 0;
	int words;

	/* Only the words count: `agentctl bpf -o json` is the group alone. */
	for (words = 0; words < argc && argv[words][0] != '-';)
		words++;
	argc = words;
	words = group_words(argc, argv);

	if (!words)
		return cli_usage_error("unknown command '%s'; run 'agentctl --help' for the list",
				       argv[0]);
	if (words == argc)
		return group_usage(words, argv);
	for (int i = 0; i < words; i++)
		off += snprintf(group + off, sizeof(group) - off, "%s%s", i ? " " : "", argv[i]);
	group_list(words, argv, true, list, sizeof(list));
	return cli_usage_error("unknown command '%s %s': '%s' takes %s", group, argv[words], group,
			       list);
}

/* -o json anywhere (before or after the command, or after a bad option)
 * decides the form of every error, the first included. */
static bool json_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc &&
		    !strcmp(argv[i + 1], "json"))
			return true;
		if (!strcmp(a, "-ojson") || !strcmp(a, "--output=json"))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bpf-root", required_argument, NULL, 'b' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const struct cli_cmd *cmd;
	int opt, used;

	cli.json = json_requested(argc, argv);
	/* Global options come before the command ("+" stops at the first
	 * word); ":" first: a missing value is told apart, and getopt prints
	 * nothing itself (opterr 0): every error goes through cli_error. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':	cli.bpf_root = optarg; break;
		case 's':	cli.socket_path = optarg; break;
		case 'S':	cli.state_dir = optarg; break;
		case 'o':
			if (!strcmp(optarg, "json"))
				cli.json = true;
			else if (strcmp(optarg, "table") && strcmp(optarg, "text"))
				return cli_usage_error("-o takes json or table, not '%s'", optarg);
			else
				cli.json = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("agentctl %s (commit %s)\n", axon_version, axon_git_commit);
			return 0;
		case ':':
			return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return cli_usage_error("unknown option '-%c'; run 'agentctl --help'",
						       optopt);
			return cli_usage_error("unknown option '%s'; run 'agentctl --help'",
					       argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		if (cli.json)
			return cli_usage_error("no command given; run 'agentctl --help'");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = find_command(argc, argv, &used);
	if (!cmd)
		return unknown_command(argc, argv);
	cli.command = cmd->name;
	/* The command's own argv: argv[0] is its name, as getopt expects. */
	return cmd->run(argc - used + 1, argv + used - 1);
}
