// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl: look inside a node's Axon datapath. */
#include <getopt.h>
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
	{ "status", "[--verbose]", "agent health: Kubernetes, watches, maps, attach points",
	  cmd_status },
	{ "bpf lb list", "[--revnat]", "service frontends and their backends (pinned maps)",
	  cmd_bpf_lb_list },
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
	{ "monitor", "[--type drop|trace]", "stream drop/trace events until Ctrl-C (one reader "
	  "at a time)", cmd_monitor },
	{ "map list", "", "Axon's pinned maps with size and fill", cmd_map_list },
	{ "version", "", "agentctl's version and the running agent's", cmd_version },
	{ "cleanup", "[--force]", "detach every program (tcx links and recorded legacy tc filters) and remove every map",
	  cmd_cleanup },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: agentctl [--bpf-root DIR] [--socket PATH] [--state-dir DIR] [-o json|table] "
		   "COMMAND\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  %-34s %s\n", left, commands[i].help);
	}
	fprintf(f, "\nOptions:\n"
		   "  --bpf-root DIR   bpffs directory the agent pins under (default %s)\n"
		   "  --socket PATH    the agent's API socket (default %s)\n"
		   "  --state-dir DIR  the agent's state directory, where legacy tc filters are\n"
		   "                   recorded (default %s)\n"
		   "  -o FORMAT        table (default) or json\n"
		   "\nThe bpf commands and monitor read the pinned maps, so they work while the\n"
		   "agent is down. monitor: the events ring buffer has one read position, so two\n"
		   "monitors on a node split the events between them; run one at a time.\n",
		AXON_DEFAULT_BPF_ROOT, AXON_DEFAULT_SOCKET, AXON_DEFAULT_STATE_DIR);
}

/* Match the longest command whose words start argv; returns words used. */
static const struct cli_cmd *find_command(int argc, char **argv, int *used)
{
	const struct cli_cmd *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char buf[64], *save, *w;
		int words = 0;
		bool match = true;

		snprintf(buf, sizeof(buf), "%s", commands[i].name);
		for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			if (words >= argc || strcmp(argv[words], w)) {
				match = false;
				break;
			}
			words++;
		}
		if (match && words > best_words) {
			best = &commands[i];
			best_words = words;
		}
	}
	*used = best_words;
	return best;
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

	/* Global options come before the command; "+" stops at the first word. */
	while ((opt = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':	cli.bpf_root = optarg; break;
		case 's':	cli.socket_path = optarg; break;
		case 'S':	cli.state_dir = optarg; break;
		case 'o':
			if (!strcmp(optarg, "json"))
				cli.json = true;
			else if (strcmp(optarg, "table") && strcmp(optarg, "text"))
				return cli_error("-o takes json or table, not '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("agentctl %s (commit %s)\n", axon_version, axon_git_commit);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return 2;
	}
	cmd = find_command(argc, argv, &used);
	if (!cmd)
		return cli_error("unknown command '%s'; run 'agentctl --help' for the list", argv[0]);
	cli.command = cmd->name;
	/* The command's own argv: argv[0] is its name, as getopt expects. */
	return cmd->run(argc - used + 1, argv + used - 1);
}
