/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * agentctl's shared pieces: global options, the command table entry, the
 * printer and the agent API client.
 *
 * Every command builds its result as a cJSON document; the printer emits it
 * as JSON (-o json) or hands it to the command's text renderer, so the two
 * forms can never disagree. Errors are one line, JSON in JSON mode.
 */
#ifndef AXON_CLI_H
#define AXON_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

struct cli_opts {
	const char *command;	/* the command being run, e.g. "bpf ct list" */
	const char *bpf_root;
	const char *socket_path;
	const char *state_dir;		/* legacy tc filter record (agent's --state-dir) */
	bool json;
};

extern struct cli_opts cli;

struct cli_cmd {
	const char *name;		/* "bpf lb list" */
	const char *args;		/* usage of the command's own flags */
	const char *help;
	int (*run)(int argc, char **argv);
};

/* Print doc in the chosen form; text() renders it for people. Frees doc. */
int cli_print(cJSON *doc, void (*text)(const cJSON *doc));
/* Exit codes (documented in agentctl --help). */
#define CLI_EXIT_OK		0
#define CLI_EXIT_FAIL		1	/* an error; status: a module not ok */
#define CLI_EXIT_USAGE		2	/* bad usage; also: the agent cannot be reached */
#define CLI_EXIT_UNREACHABLE	2

/* One-line error (JSON in JSON mode); returns 1 for use as exit code. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for bad usage; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Ask the agent; returns the response or NULL with *err set (-errno). */
cJSON *cli_agent_request(const char *cmd, int *err);
/* "Agent unreachable at PATH: is axon-agent running?" (or the reason, for
 * another errno than "not there") into buf. */
const char *cli_unreachable_msg(int err, char *buf, size_t len);
/* Ask the agent for cmd and take the array it answers under key: NULL with
 * the error printed and *exit_code set (CLI_EXIT_UNREACHABLE, or
 * CLI_EXIT_FAIL when the agent answered an error). */
cJSON *cli_agent_list(const char *cmd, const char *key, int *exit_code);
/* A whole list command: no flags but -o, the agent's list under key, text
 * renders it. Returns the exit code. */
int cli_agent_list_command(int argc, char **argv, const char *cmd, const char *key,
			   void (*text)(const cJSON *doc));

/* Simple aligned table for text output. */
struct table;
struct table *table_new(int ncols, ...);
void table_row(struct table *t, ...);
void table_print(struct table *t);

/* Fields of a result document for text renderers: "" / 0 when absent. */
const char *json_str(const cJSON *o, const char *key);
double json_num(const cJSON *o, const char *key);
int json_int(const cJSON *o, const char *key);

/* "TCP", "UDP", "ICMP", else the protocol number, into buf. */
/* The strings of array arr joined with sep into buf ("" when none). */
char *cli_join_strings(const cJSON *arr, const char *sep, char *buf, size_t len);
const char *cli_proto_name(__u8 proto, char *buf, size_t len);

int cmd_status(int argc, char **argv);
int cmd_bpf_lb_list(int argc, char **argv);
int cmd_bpf_lb_affinity_list(int argc, char **argv);
int cmd_map_list(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);
int cmd_bpf_ct_list(int argc, char **argv);
int cmd_bpf_ct_flush(int argc, char **argv);
int cmd_bpf_nat_list(int argc, char **argv);
int cmd_bpf_nat_flush(int argc, char **argv);
int cmd_bpf_ipcache_list(int argc, char **argv);
int cmd_bpf_endpoint_list(int argc, char **argv);
int cmd_bpf_metrics_list(int argc, char **argv);
int cmd_bpf_policy_get(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_service_list(int argc, char **argv);
int cmd_node_list(int argc, char **argv);
int cmd_policy_selectors(int argc, char **argv);
int cmd_endpoint_list(int argc, char **argv);
int cmd_config_view(int argc, char **argv);

#endif /* AXON_CLI_H */
