/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Retry delays of the reconcilers: exponential from @base_ms, doubling per
 * failed attempt, capped at @max_ms. One definition, so every reconciler
 * backs off the same way.
 */
#ifndef AXON_BACKOFF_H
#define AXON_BACKOFF_H

#include <stdint.h>

/* The delay before retry number @attempts (1 = after the first failure). */
static inline uint64_t backoff_delay_ms(uint64_t base_ms, uint64_t max_ms, unsigned int attempts)
{
	unsigned int shift = attempts ? attempts - 1 : 0;
	uint64_t delay = base_ms << (shift < 16 ? shift : 16);

	return delay < max_ms ? delay : max_ms;
}

#endif /* AXON_BACKOFF_H */
