/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A strict reader for the subset of YAML that kubeconfig files use, into a
 * cJSON tree (internal to agent/k8s).
 *
 * Supported: one document (an optional leading "---"), block mappings and
 * block sequences (including kubectl's "key:\n- item" at the key's indent),
 * plain, 'single' and "double" quoted one-line scalars, empty {} and [],
 * comments. Plain true/false become booleans, null/~/empty become null,
 * everything else is a string (numbers too: kubeconfig has none we read).
 *
 * Anything else (anchors, aliases, tags, block scalars, flow collections
 * with content, multi-line scalars, tabs for indentation, duplicate keys)
 * is an error naming the line, never a guess.
 */
#ifndef AXON_K8S_YAML_H
#define AXON_K8S_YAML_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Returns the tree, or NULL with err ("line 7: ...") filled. */
cJSON *k8s_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

#endif /* AXON_K8S_YAML_H */
