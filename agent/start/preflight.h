/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the agent checks before it loads, pins or attaches anything, so that
 * a start with a bad input fails leaving the node as it found it: the cgroup
 * the socket hooks go to is a cgroup v2 directory (cgroup2.h), and every
 * --devices name exists in the agent's network namespace. (Flags are checked
 * by the parser and the apiserver configuration by building the client,
 * both before this.)
 */
#ifndef AXON_AGENT_START_PREFLIGHT_H
#define AXON_AGENT_START_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* 0, or -errno with one line in err naming the flag. */
int agent_preflight(const struct agent_config *cfg, char *err, size_t errlen);

#endif /* AXON_AGENT_START_PREFLIGHT_H */
