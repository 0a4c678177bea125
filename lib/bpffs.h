/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Making sure the bpffs root exists, and removing everything pinned under it. */
#ifndef AXON_BPFFS_H
#define AXON_BPFFS_H

/* Ensure root is a directory on a bpf filesystem, mounting one if needed
 * (on /sys/fs/bpf when root is below it, else on root itself). */
int bpffs_prepare(const char *root);

/* Detach every pinned link and unpin every map under root, then remove the
 * directories. Only touches what is under root/maps and root/links: those
 * are Axon's own pins. *n_links and *n_maps (optional) count what went. */
int bpffs_flush(const char *root, int *n_links, int *n_maps);
/* The same, leaving root itself in place. */
int bpffs_unpin_all(const char *root, int *n_links, int *n_maps);

#endif /* AXON_BPFFS_H */
