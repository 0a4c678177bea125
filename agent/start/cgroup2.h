/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The cgroup the socket hooks attach to must be a directory of the cgroup v2
 * hierarchy: on a cgroup v1 or hybrid mount, or any other directory, the
 * attach either fails late or hooks nothing. Checked by statfs magic
 * (CGROUP2_SUPER_MAGIC), before the agent loads anything.
 */
#ifndef AXON_AGENT_START_CGROUP2_H
#define AXON_AGENT_START_CGROUP2_H

#include <stddef.h>

/* The default --cgroup-root: /sys/fs/cgroup/unified when it is cgroup v2 (a
 * hybrid host), else /sys/fs/cgroup when it is (a pure v2 host), else NULL. */
const char *cgroup2_default_root(void);

/* 0 when path is a readable directory on cgroup v2; else -errno with one
 * line in err ("/x is on tmpfs, not cgroup v2"). */
int cgroup2_check(const char *path, char *err, size_t errlen);

#endif /* AXON_AGENT_START_CGROUP2_H */
