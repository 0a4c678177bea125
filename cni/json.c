// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Just enough JSON for the plugin (cni.h): escaping out, two shapes in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_add_json_str(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(b, esc, 6);
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_add(b, "\"", 1);
}

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Past the string starting at p (on its opening quote); NULL if unterminated. */
static const char *skip_str(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Past the value starting at p; NULL if malformed. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	do {
		p = ws(p);
		if (*p == '"') {
			p = skip_str(p);
			if (!p)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return NULL;
			p++;
		} else if (*p) {
			p++;	/* number, literal, ':' or ',' inside a container */
		} else {
			return NULL;
		}
	} while (depth > 0);
	return p;
}

/* The value of top-level "key" in the object text: its start, or NULL. */
static const char *top_value(const char *text, const char *key)
{
	const char *p = ws(text);
	size_t klen = strlen(key);

	if (*p++ != '{')
		return NULL;
	for (;;) {
		const char *k, *end;

		p = ws(p);
		if (*p != '"')
			return NULL;
		k = p + 1;
		end = skip_str(p);
		if (!end)
			return NULL;
		p = ws(end);
		if (*p++ != ':')
			return NULL;
		p = ws(p);
		if ((size_t)(end - 1 - k) == klen && !memcmp(k, key, klen))
			return p;
		p = skip_value(p);
		if (!p)
			return NULL;
		p = ws(p);
		if (*p++ != ',')
			return NULL;
	}
}

int json_top_str(const char *text, const char *key, char *out, size_t len)
{
	const char *v = top_value(text, key), *end;

	if (!v || *v != '"')
		return 0;
	end = strchr(v + 1, '"');
	if (!end || memchr(v + 1, '\\', end - v - 1) || (size_t)(end - v - 1) >= len)
		return 0;
	memcpy(out, v + 1, end - v - 1);
	out[end - v - 1] = '\0';
	return 1;
}

static void add_utf8(struct buf *b, unsigned int cp)
{
	char u[3];

	if (cp < 0x80) {
		u[0] = (char)cp;
		buf_add(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 2);
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 3);
	}
}

static int unescape(const char *p, struct buf *out)
{
	if (*p++ != '"')
		return -1;
	for (; *p && *p != '"'; p++) {
		unsigned int cp;
		char c;

		if (*p != '\\') {
			buf_add(out, p, 1);
			continue;
		}
		switch (*++p) {
		case 'n': c = '\n'; break;
		case 't': c = '\t'; break;
		case 'r': c = '\r'; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case '"': case '\\': case '/': c = *p; break;
		case 'u':
			cp = 0;
			for (int i = 1; i <= 4; i++) {
				char h = p[i];

				if (h >= '0' && h <= '9')
					cp = cp * 16 + (h - '0');
				else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
					cp = cp * 16 + ((h | 0x20) - 'a' + 10);
				else
					return -1;	/* also the string's end */
			}
			add_utf8(out, cp);
			p += 4;
			continue;
		default:
			return -1;
		}
		buf_add(out, &c, 1);
	}
	if (!out->s)
		buf_add(out, "", 0);
	return *p == '"' && !out->oom ? 0 : -1;
}

int json_answer(const char *text, int *exit_code, struct buf *out)
{
	const char *e = top_value(text, "exit"), *s = top_value(text, "stdout");

	if (!e || !s || sscanf(e, "%d", exit_code) != 1)
		return -1;
	return unescape(s, out);
}
