/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A start that fails after the agent began pinning must not leave half a
 * datapath behind on a node that had none, nor take away one that was
 * running: a restarting agent's pins are what keeps traffic flowing.
 *
 * start_record_take(), just before the first pin, notes whether the node is
 * fresh (nothing under <bpf-root>/maps or <bpf-root>/links, no legacy tc
 * filter recorded in --state-dir) and which directories the start is about
 * to create. start_record_undo(), after a failed start and once every fd is
 * closed, removes on a fresh node every link (detaching its program), every
 * pinned map and every recorded legacy filter, and on any node the empty
 * directories the start created. On a node that was not fresh it removes no
 * pin: the previous datapath stays attached and serving.
 */
#ifndef AXON_AGENT_START_UNDO_H
#define AXON_AGENT_START_UNDO_H

#include <stdbool.h>

#include "config.h"

#define START_PATH_MAX 4096

struct start_record {
	bool taken;
	bool fresh;
	/* The highest directory of each path that did not exist; "" when the
	 * path existed already. */
	char bpf_top[START_PATH_MAX];
	char sock_top[START_PATH_MAX];
	char state_top[START_PATH_MAX];
};

void start_record_take(struct start_record *r, const struct agent_config *cfg);
void start_record_undo(const struct start_record *r, const struct agent_config *cfg);

#endif /* AXON_AGENT_START_UNDO_H */
