/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pacing of apiserver requests (internal to agent/k8s): a token bucket shared
 * by every request of a client, and exponential backoff with full jitter.
 * Pure arithmetic on a caller-supplied clock, so tests drive time.
 */
#ifndef AXON_K8S_RATELIMIT_H
#define AXON_K8S_RATELIMIT_H

#include <stdint.h>

struct k8s_bucket {
	double qps; /* <= 0: unlimited */
	double burst;
	double tokens;
	uint64_t last_ms;
};

void k8s_bucket_init(struct k8s_bucket *b, double qps, int burst, uint64_t now_ms);
/* Take a token: 0 if one was available, else the ms until one will be
 * (nothing is taken then; ask again at that time). */
uint64_t k8s_bucket_take(struct k8s_bucket *b, uint64_t now_ms);

/*
 * Delay before retry number attempt (1 = first retry): uniform in
 * [0, min(max_ms, base_ms * 2^(attempt-1))] ("full jitter"), with rnd a
 * uniformly random 32-bit value. A server's Retry-After (seconds, 0 = none)
 * is a floor, even above max_ms, up to K8S_RETRY_AFTER_MAX_S.
 */
#define K8S_RETRY_AFTER_MAX_S 600
uint64_t k8s_backoff_ms(unsigned int attempt, int base_ms, int max_ms, uint32_t rnd,
			unsigned int retry_after_s);

/* xorshift32: jitter only, not for anything secret. */
uint32_t k8s_rand_next(uint32_t *state);

#endif /* AXON_K8S_RATELIMIT_H */
