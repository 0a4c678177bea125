/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where Axon's pinned objects live under the bpffs root, and opening them.
 * Shared by the agent (which pins) and agentctl (which reads while the agent
 * may be down).
 */
#ifndef AXON_PIN_H
#define AXON_PIN_H

#include <stddef.h>

/* "<root>/maps/<name>" or "<root>/links/<name>" into buf. -ENAMETOOLONG if it
 * does not fit. */
int pin_map_path(char *buf, size_t len, const char *root, const char *name);
int pin_link_path(char *buf, size_t len, const char *root, const char *name);

/* Open a pinned map read-write; returns an fd or -errno (-ENOENT: not pinned,
 * i.e. the agent never ran with this root or it was cleaned up). */
int pin_map_open(const char *root, const char *name);

/* mkdir -p with mode 0700 for each missing component. */
int mkdir_p(const char *path);

#endif /* AXON_PIN_H */
