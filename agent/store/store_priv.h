/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Between the store's files: nodes.c, policy.c and pods.c free their tables for store_destroy(). */
#ifndef AXON_STORE_PRIV_H
#define AXON_STORE_PRIV_H

#include "store.h"

void store_nodes_destroy(struct store *s);
void store_policy_destroy(struct store *s);
void store_pods_destroy(struct store *s);

#endif /* AXON_STORE_PRIV_H */
