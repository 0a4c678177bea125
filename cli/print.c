// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "cli.h"

int cli_print(cJSON *doc, void (*text)(const cJSON *doc))
{
	if (!doc)
		return cli_error("out of memory");
	if (cli.json) {
		char *s = cJSON_Print(doc);

		if (s)
			puts(s);
		free(s);
	} else {
		text(doc);
	}
	cJSON_Delete(doc);
	return 0;
}

static void error_line(const char *msg)
{
	if (cli.json) {
		cJSON *o = cJSON_CreateObject();
		char *s;

		cJSON_AddStringToObject(o, "error", msg);
		s = cJSON_PrintUnformatted(o);
		if (s)
			puts(s);
		free(s);
		cJSON_Delete(o);
	} else {
		fprintf(stderr, "agentctl: %s\n", msg);
	}
}

static int error_exit(int code, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	error_line(msg);
	return code;
}

int cli_error(const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = error_exit(CLI_EXIT_FAIL, fmt, ap);
	va_end(ap);
	return code;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = error_exit(CLI_EXIT_USAGE, fmt, ap);
	va_end(ap);
	return code;
}

struct table {
	int ncols;
	size_t nrows, cap;
	char **cells;		/* nrows * ncols, row-major; row 0 is the header */
	size_t *width;
};

static void table_add(struct table *t, va_list ap)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

		if (!p)
			return;
		t->cells = p;
		t->cap = cap;
	}
	for (int c = 0; c < t->ncols; c++) {
		const char *s = va_arg(ap, const char *);
		char *dup = strdup(s ? s : "");
		size_t w = dup ? strlen(dup) : 0;

		t->cells[t->nrows * t->ncols + c] = dup;
		if (w > t->width[c])
			t->width[c] = w;
	}
	t->nrows++;
}

struct table *table_new(int ncols, ...)
{
	struct table *t = calloc(1, sizeof(*t));
	va_list ap;

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->width) {
		free(t);
		return NULL;
	}
	va_start(ap, ncols);
	table_add(t, ap);
	va_end(ap);
	return t;
}

void table_row(struct table *t, ...)
{
	va_list ap;

	if (!t)
		return;
	va_start(ap, t);
	table_add(t, ap);
	va_end(ap);
}

void table_print(struct table *t)
{
	if (!t)
		return;
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c == t->ncols - 1)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s   ", (int)t->width[c], s ? s : "");
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

double json_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int json_int(const cJSON *o, const char *key)
{
	return (int)json_num(o, key);
}

const char *cli_proto_name(__u8 proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:	return "TCP";
	case IPPROTO_UDP:	return "UDP";
	case IPPROTO_ICMP:	return "ICMP";
	case IPPROTO_SCTP:	return "SCTP";
	default:
		snprintf(buf, len, "%u", proto);
		return buf;
	}
}

char *cli_join_strings(const cJSON *arr, const char *sep, char *buf, size_t len)
{
	const cJSON *s;
	size_t off = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(s, arr) {
		int n;

		if (!cJSON_IsString(s))
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off ? sep : "", s->valuestring);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
	return buf;
}
