/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One YAML document, parsed with libyaml, as the cJSON tree that
 * kubeconfig.c reads (internal to agent/k8s).
 *
 * All of YAML that libyaml reads: block and flow collections, every scalar
 * style (plain, quoted, literal, folded), anchors and aliases (an alias is a
 * copy of the anchored node), merge keys ("<<: *base", the explicit keys
 * winning), comments, "---" and "...". Scalars follow YAML 1.2's core schema
 * where kubeconfig needs it: plain true/false (any case form the schema
 * allows) are booleans, plain null/~/empty are null, everything else is a
 * string (numbers too: kubeconfig has none it reads, and "10" stays "10");
 * a quoted or block scalar is always a string, and so is one tagged !!str.
 *
 * Refused, with the line (and column) where the problem is, never a guess:
 * what libyaml cannot parse; a second document in the stream (a kubeconfig
 * is one; concatenated files would otherwise silently use the first);
 * duplicate keys; a key that is not a scalar; an alias to an anchor not
 * defined before it (so no alias can refer to the node it is inside); tags
 * other than YAML's own; nesting deeper than 32 levels; aliases that expand
 * to more than 100000 nodes ("billion laughs"); a NUL byte; no document.
 */
#ifndef AXON_K8S_YAML_DOC_H
#define AXON_K8S_YAML_DOC_H

#include <stddef.h>
#include <cjson/cJSON.h>

#define K8S_YAML_MAX_DEPTH 32
#define K8S_YAML_MAX_NODES 100000

/* Returns the tree, or NULL with err ("line 7, column 3: ...") filled. */
cJSON *k8s_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

#endif /* AXON_K8S_YAML_DOC_H */
