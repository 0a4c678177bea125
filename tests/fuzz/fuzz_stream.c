// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the watch-stream splitter and event decoder, and the
 * Status parser for error bodies. The first input byte chooses how the rest
 * is cut into fragments, so event boundaries land everywhere.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "k8s/objects.h"
#include "k8s/stream.h"

/* Small, so that the oversize path is reached often. */
#define FUZZ_MAX_EVENT 4096

static int on_line(void *ctx, const char *line, size_t len)
{
	struct k8s_event ev;
	struct k8s_meta m;
	char err[256];

	(void)ctx;
	if (k8s_event_decode(line, len, &ev, err, sizeof(err)))
		return 0;
	if (ev.type != K8S_EV_ERROR && ev.type != K8S_EV_BOOKMARK)
		k8s_meta_from_json(ev.object, &m, err, sizeof(err));
	k8s_event_free(&ev);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct k8s_stream s;
	char reason[64], msg[256];
	size_t step, off;
	int code;

	if (!size)
		return 0;
	step = (data[0] % 64) + 1;
	data++;
	size--;
	k8s_stream_init(&s, FUZZ_MAX_EVENT);
	for (off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;

		if (k8s_stream_feed(&s, (const char *)data + off, n, on_line, NULL)) {
			/* What the client does on an oversize event: drop, resume. */
			k8s_stream_reset(&s);
		}
		/* Vary the fragment size as we go. */
		step = (step * 7 + 3) % 97 + 1;
	}
	k8s_stream_pending(&s);
	k8s_stream_free(&s);
	k8s_status_parse((const char *)data, size, &code, reason, sizeof(reason), msg, sizeof(msg));
	return 0;
}
