/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fixed-width kernel types for headers shared by BPF programs and userspace.
 *
 * BPF programs get __u32/__be16/... from vmlinux.h, which they include first;
 * userspace gets them from <linux/types.h>. Every other header in include/axon
 * includes this one and nothing else from the system.
 */
#ifndef AXON_TYPES_H
#define AXON_TYPES_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#endif /* AXON_TYPES_H */
