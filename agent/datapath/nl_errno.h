/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libnl-3 reports its own error codes (NLE_*, negative); the agent returns
 * negative errno everywhere, so every libnl call site converts once, here.
 */
#ifndef AXON_DATAPATH_NL_ERRNO_H
#define AXON_DATAPATH_NL_ERRNO_H

/* -errno for libnl's @nlerr (a negative NLE_* code); -EIO for the rest. */
int nl_errno(int nlerr);

#endif /* AXON_DATAPATH_NL_ERRNO_H */
