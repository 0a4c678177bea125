// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"

void expo_init(struct expo *e)
{
	memset(e, 0, sizeof(*e));
}

void expo_free(struct expo *e)
{
	free(e->buf);
	expo_init(e);
}

static void put(struct expo *e, const char *s, size_t n)
{
	if (e->err)
		return;
	if (e->len + n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap : 4096;
		char *b;

		while (cap < e->len + n + 1)
			cap *= 2;
		b = realloc(e->buf, cap);
		if (!b) {
			e->err = -ENOMEM;
			return;
		}
		e->buf = b;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void puts_(struct expo *e, const char *s)
{
	put(e, s, strlen(s));
}

/* in_label: also escape '"' (label values); HELP escapes only \ and newline. */
static void put_escaped(struct expo *e, const char *s, int in_label)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(e, "\\\\", 2);
		else if (*s == '\n')
			put(e, "\\n", 2);
		else if (*s == '"' && in_label)
			put(e, "\\\"", 2);
		else
			put(e, s, 1);
	}
}

void expo_family(struct expo *e, const char *name, const char *type, const char *help)
{
	puts_(e, "# HELP ");
	puts_(e, name);
	put(e, " ", 1);
	put_escaped(e, help, 0);
	puts_(e, "\n# TYPE ");
	puts_(e, name);
	put(e, " ", 1);
	puts_(e, type);
	put(e, "\n", 1);
}

static void put_value(struct expo *e, double v)
{
	char buf[40];

	if (isnan(v))
		snprintf(buf, sizeof(buf), "NaN");
	else if (isinf(v))
		snprintf(buf, sizeof(buf), v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)	/* 2^53: exact */
		snprintf(buf, sizeof(buf), "%.0f", v);
	else
		snprintf(buf, sizeof(buf), "%.17g", v);
	puts_(e, buf);
}

void expo_sample(struct expo *e, const char *name, const struct expo_label *labels,
		 size_t n_labels, double value)
{
	puts_(e, name);
	if (n_labels) {
		put(e, "{", 1);
		for (size_t i = 0; i < n_labels; i++) {
			if (i)
				put(e, ",", 1);
			puts_(e, labels[i].name);
			put(e, "=\"", 2);
			put_escaped(e, labels[i].value ? labels[i].value : "", 1);
			put(e, "\"", 1);
		}
		put(e, "}", 1);
	}
	put(e, " ", 1);
	put_value(e, value);
	put(e, "\n", 1);
}
