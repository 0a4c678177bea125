// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for agentctl monitor's packet summary (cli/pkt_summary.c):
 * the capture bytes come from packets the datapath dropped, often for being
 * malformed. The first input byte picks the size of the output buffer, so
 * cutting the summary short is exercised too; the rest is the capture, at most
 * EVENT_CAPTURE_LEN bytes as in a real event.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "axon/events.h"
#include "pkt_summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_summary p;
	size_t buflen, cap;
	char *buf;
	__u8 *copy;

	if (size < 1)
		return 0;
	buflen = data[0];
	cap = size - 1 > EVENT_CAPTURE_LEN ? EVENT_CAPTURE_LEN : size - 1;
	/* Exact-size heap copies so ASan sees any read or write past either end. */
	copy = malloc(cap ? cap : 1);
	buf = malloc(buflen ? buflen : 1);
	if (!copy || !buf)
		goto out;
	memcpy(copy, data + 1, cap);
	pkt_summarize(copy, cap, &p, buf, buflen);
	if (buflen && strnlen(buf, buflen) == buflen)
		abort();	/* the summary must always be terminated */
out:
	free(copy);
	free(buf);
	return 0;
}
