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
#include <cjson/cJSON.h>

struct cli_opts {
	const char *bpf_root;
	const char *socket_path;
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
/* One-line error (JSON in JSON mode); returns 1 for use as exit code. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Ask the agent; returns the response or NULL with *err set (-errno). */
cJSON *cli_agent_request(const char *cmd, int *err);

/* Simple aligned table for text output. */
struct table;
struct table *table_new(int ncols, ...);
void table_row(struct table *t, ...);
void table_print(struct table *t);

int cmd_status(int argc, char **argv);
int cmd_bpf_lb_list(int argc, char **argv);
int cmd_map_list(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);

#endif /* AXON_CLI_H */
