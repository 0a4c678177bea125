/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every Axon BPF program starts from: kernel types (vmlinux.h), libbpf's
 * helper declarations, the shared contract in include/axon, and the few
 * constants vmlinux.h cannot carry (errno values are macros, not BTF types).
 *
 * Every other header in bpf/lib includes this one first, so each header can be
 * included on its own.
 */
#ifndef AXON_BPF_COMMON_H
#define AXON_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include <axon/types.h>
#include <axon/lb.h>
#include <axon/maps.h>
#include <axon/reasons.h>

/* errno values handed to bpf_set_retval(); the uapi numbers on every arch we build for. */
#define ENOMEM	     12
#define ECONNREFUSED 111

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/* cgroup sock_addr and sock verdicts: 1 lets the syscall go on, 0 fails it
 * (with -EPERM unless the program set another error with bpf_set_retval). */
#define SYS_PROCEED 1
#define SYS_REJECT  0

#endif /* AXON_BPF_COMMON_H */
