/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Attaching the tc programs to devices so they outlive the agent.
 *
 * tcx (BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS) where the kernel has it:
 * the link is pinned at <bpf-root>/links/tc-<ifname>-<ingress|egress>, and a
 * later attach of the same slot updates the pinned link in place
 * (BPF_LINK_UPDATE), so the device is never without a program. Legacy tc
 * otherwise (or when forced, --enable-tcx=false): a clsact qdisc and a
 * direct-action filter at Axon's own priority/handle, recorded in
 * <state-dir>/tc-legacy.json, so that detach removes exactly the filters
 * Axon created and never someone else's.
 *
 * tc_probe_tcx() decides the mode for TC_MODE_AUTO: it tries a tcx attach on
 * @probe_ifindex and detaches it again.
 */
#ifndef AXON_TC_ATTACH_H
#define AXON_TC_ATTACH_H

#include <stdbool.h>

/* The agent's --state-dir default: files that are not BPF objects (the
 * legacy tc record) live here, not in bpffs. */
#define AXON_DEFAULT_STATE_DIR "/var/run/axon"

enum tc_dir { TC_INGRESS, TC_EGRESS };
enum tc_mode { TC_MODE_AUTO, TC_MODE_TCX, TC_MODE_LEGACY };

struct tc_attach_ctx {
	const char *bpf_root;		/* links under <bpf_root>/links */
	const char *state_dir;		/* legacy record file lives here */
	enum tc_mode mode;		/* resolved: TC_MODE_TCX or TC_MODE_LEGACY */
};

struct tc_attachment {
	char ifname[16];
	int ifindex;
	enum tc_dir dir;
	enum tc_mode mode;
	char program[64];
	bool updated;			/* an existing attachment was replaced in place */
};

/* Resolve TC_MODE_AUTO by probing; leaves ctx->mode TCX or LEGACY. */
int tc_probe_tcx(struct tc_attach_ctx *ctx, int probe_ifindex);

/* Attach (or atomically replace) @prog_fd on @ifindex/@dir. Fills @out. */
int tc_attach(struct tc_attach_ctx *ctx, int prog_fd, const char *program, int ifindex,
	      const char *ifname, enum tc_dir dir, struct tc_attachment *out);

/* Remove what Axon attached on @ifname/@dir (a pinned tcx link, or the
 * recorded legacy filter); -ENOENT when Axon attached nothing there. */
int tc_detach(struct tc_attach_ctx *ctx, const char *ifname, enum tc_dir dir);

/* Everything Axon attached (from the pins and the legacy record): fills up
 * to @max, returns the count. Used by status and by cleanup. */
int tc_list(struct tc_attach_ctx *ctx, struct tc_attachment *out, int max);

/* tc_detach() everything tc_list() reports (--flush-on-exit, cleanup: the
 * legacy filters are not pins, so bpffs_flush() cannot see them). Returns the
 * count removed or the first error. */
int tc_detach_all(struct tc_attach_ctx *ctx);

#endif /* AXON_TC_ATTACH_H */
