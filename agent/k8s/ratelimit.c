// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "k8s/ratelimit.h"

void k8s_bucket_init(struct k8s_bucket *b, double qps, int burst, uint64_t now_ms)
{
	b->qps = qps;
	b->burst = burst > 0 ? burst : 1;
	b->tokens = b->burst;
	b->last_ms = now_ms;
}

uint64_t k8s_bucket_take(struct k8s_bucket *b, uint64_t now_ms)
{
	double wait;

	if (b->qps <= 0)
		return 0;
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->qps / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	wait = (1.0 - b->tokens) * 1000.0 / b->qps;
	/* Round up: waking a millisecond early would only ask again. */
	return (uint64_t)wait + 1;
}

uint64_t k8s_backoff_ms(unsigned int attempt, int base_ms, int max_ms, uint32_t rnd,
			unsigned int retry_after_s)
{
	uint64_t cap = base_ms > 0 ? (uint64_t)base_ms : 1;
	uint64_t max = max_ms > 0 ? (uint64_t)max_ms : cap;
	uint64_t delay, floor_ms;

	for (unsigned int i = 1; i < attempt && cap < max; i++)
		cap *= 2;
	if (cap > max)
		cap = max;
	delay = (uint64_t)rnd * (cap + 1) >> 32;
	/* The server knows its load better than our backoff_max does; only a
	 * wild value is cut. */
	floor_ms = (uint64_t)(retry_after_s < K8S_RETRY_AFTER_MAX_S ? retry_after_s
								    : K8S_RETRY_AFTER_MAX_S) *
		   1000;
	return delay > floor_ms ? delay : floor_ms;
}

uint32_t k8s_rand_next(uint32_t *state)
{
	uint32_t x = *state ? *state : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}
