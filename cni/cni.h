/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * axon-cni: the CNI plugin (spec 1.0.0 and 1.1.0). The runtime runs it once
 * per operation with CNI_* in the environment and the network config on
 * stdin. It forwards both, whole, to the agent over its API socket as one
 * request ("cni exec": agent/cni/exec.c checks them against the spec and
 * does the work) and prints what the agent answers: {"exit", "stdout"}.
 *
 * The plugin is copied onto nodes whose libraries are not the image's, so it
 * is linked statically and carries no JSON library: it only escapes strings
 * into the request and reads the one fixed-shape answer back (json.c). What
 * it decides alone: VERSION, an unknown CNI_COMMAND, and an agent it cannot
 * reach (11 "try again later"; 50 "not available" for STATUS).
 *
 * The network config's "agent-socket" names the socket (default
 * /var/run/axon/agent.sock).
 */
#ifndef AXON_CNI_PLUGIN_H
#define AXON_CNI_PLUGIN_H

#include <stddef.h>

#define CNI_DEFAULT_SOCKET	"/var/run/axon/agent.sock"
#define CNI_LATEST		"1.1.0"

#define CNI_E_INVALID_ENV	4
#define CNI_E_IO		5
#define CNI_E_TRY_AGAIN_LATER	11
#define CNI_E_NOT_AVAILABLE	50

/* A growing string. */
struct buf {
	char *s;
	size_t len, cap;
	int oom;
};

void buf_add(struct buf *b, const char *s, size_t n);
void buf_adds(struct buf *b, const char *s);
/* s as a JSON string, quotes included. */
void buf_add_json_str(struct buf *b, const char *s);

/* The string value of "key" at the top level of the JSON object text, as
 * the runtime wrote it (no escapes in the versions and paths it is used
 * for); 0 when absent or not a plain string. */
int json_top_str(const char *text, const char *key, char *out, size_t len);
/* The agent's answer {"exit": N, "stdout": "..."}: 0, or -1 if malformed. */
int json_answer(const char *text, int *exit_code, struct buf *out);

/* The error document, printed; returns the exit status (1). */
int cni_fail(const char *version, int code, const char *msg, const char *details);

/* One request line to the agent at path, its answer into out. 0 or -errno. */
int agent_call(const char *path, const char *req, struct buf *out);

#endif /* AXON_CNI_PLUGIN_H */
