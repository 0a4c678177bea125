/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The build's version, for --version, `agentctl version`, status and the
 * axon_build_info metric. Set at build time from scripts/version.sh (a
 * release tag, else the VERSION file) and the commit; only lib/version.c
 * sees the generated header, so a new commit relinks rather than rebuilds.
 */
#ifndef AXON_VERSION_H
#define AXON_VERSION_H

extern const char axon_version[];    /* "0.2.0" */
extern const char axon_git_commit[]; /* "01ecfa5e1b2c", "…-dirty" or "unknown" */

#endif /* AXON_VERSION_H */
