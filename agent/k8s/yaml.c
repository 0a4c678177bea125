// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/yaml.h"

/* Deeper than any kubeconfig; stops a hostile file from exhausting the stack. */
#define YAML_MAX_DEPTH 32

struct yline {
	int no;	    /* 1-based line number */
	int indent; /* columns of leading spaces */
	char *text; /* content, trailing spaces cut */
};

struct yparser {
	struct yline *lines;
	size_t n;
	size_t i; /* next line */
	int depth;
	bool failed;
	char *err;
	size_t errlen;
};

static void *yfail(struct yparser *p, int no, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *yfail(struct yparser *p, int no, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	if (p->failed)
		return NULL;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "line %d: %s", no, msg);
	return NULL;
}

static bool is_seq_item(const char *t)
{
	return t[0] == '-' && (t[1] == ' ' || t[1] == '\0');
}

static char *skip_spaces(char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

/* After a scalar: only spaces and a comment may follow. */
static bool only_comment(const char *s)
{
	while (*s == ' ')
		s++;
	return *s == '\0' || *s == '#';
}

static int put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xc0 | (cp >> 6);
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xe0 | (cp >> 12);
		out[1] = 0x80 | ((cp >> 6) & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | (cp >> 18);
	out[1] = 0x80 | ((cp >> 12) & 0x3f);
	out[2] = 0x80 | ((cp >> 6) & 0x3f);
	out[3] = 0x80 | (cp & 0x3f);
	return 4;
}

static bool hex_value(const char *s, int n, unsigned long *out)
{
	*out = 0;
	for (int i = 0; i < n; i++) {
		char c = s[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		*out = *out * 16 + v;
	}
	return true;
}

/* A quoted scalar starting at s (on the quote); *end is set past the closing quote. */
static char *parse_quoted(struct yparser *p, int no, const char *s, const char **end)
{
	char q = *s++;
	/* Escapes only shrink, except \u to 3 and \U to 4 bytes from 6 and 10. */
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return yfail(p, no, "out of memory");
	for (;;) {
		char c = *s++;

		if (c == '\0') {
			free(out);
			return yfail(p, no,
				     "unterminated quoted string "
				     "(multi-line scalars are not supported)");
		}
		if (c == q) {
			if (q == '\'' && *s == '\'') {
				*o++ = '\'';
				s++;
				continue;
			}
			break;
		}
		if (q == '\'' || c != '\\') {
			*o++ = c;
			continue;
		}
		c = *s++;
		switch (c) {
		case 'n':
			*o++ = '\n';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case '"':
			*o++ = '"';
			break;
		case '/':
			*o++ = '/';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case ' ':
			*o++ = ' ';
			break;
		case 'x':
		case 'u':
		case 'U': {
			int n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			unsigned long cp;

			if (strnlen(s, n) < (size_t)n || !hex_value(s, n, &cp) || cp == 0 ||
			    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				free(out);
				return yfail(p, no, "bad \\%c escape", c);
			}
			o += put_utf8(o, cp);
			s += n;
			break;
		}
		default:
			free(out);
			return yfail(p, no, "unsupported escape \\%c", c ? c : '0');
		}
	}
	*o = '\0';
	*end = s;
	return out;
}

/* A scalar value written after "key: " or "- ". */
static cJSON *parse_scalar(struct yparser *p, int no, char *s)
{
	const char *end;
	cJSON *v;
	char *str, *hash;
	size_t len;

	if (*s == '"' || *s == '\'') {
		str = parse_quoted(p, no, s, &end);
		if (!str)
			return NULL;
		if (!only_comment(end)) {
			free(str);
			return yfail(p, no, "unexpected text after a quoted string");
		}
		v = cJSON_CreateString(str);
		free(str);
		return v ? v : yfail(p, no, "out of memory");
	}
	/* A plain scalar ends at a comment: '#' after a space. */
	for (hash = s; (hash = strchr(hash, '#')); hash++) {
		if (hash > s && hash[-1] == ' ') {
			*hash = '\0';
			break;
		}
	}
	len = strlen(s);
	while (len && s[len - 1] == ' ')
		s[--len] = '\0';
	if (!strcmp(s, "{}"))
		return cJSON_CreateObject();
	if (!strcmp(s, "[]"))
		return cJSON_CreateArray();
	switch (s[0]) {
	case '{':
	case '[':
		return yfail(p, no, "flow collections are not supported");
	case '&':
	case '*':
	case '!':
		return yfail(p, no, "anchors, aliases and tags are not supported");
	case '|':
	case '>':
		return yfail(p, no, "block scalars are not supported");
	case '%':
	case '@':
	case '`':
		return yfail(p, no, "reserved indicator '%c'", s[0]);
	}
	if (is_seq_item(s))
		return yfail(p, no, "a sequence cannot start after a key on the same line");
	if (strstr(s, ": ") || (len && s[len - 1] == ':'))
		return yfail(p, no, "a mapping cannot start after a key on the same line");
	if (!len || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return cJSON_CreateNull();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return cJSON_CreateTrue();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return cJSON_CreateFalse();
	v = cJSON_CreateString(s);
	return v ? v : yfail(p, no, "out of memory");
}

/*
 * "key: rest" -> 1 with *key (allocated) and *rest; 0 when text is not a
 * mapping entry; -1 on error.
 */
static int split_key(struct yparser *p, int no, char *text, char **key, char **rest)
{
	const char *end;
	char *colon;

	if (*text == '"' || *text == '\'') {
		char *k = parse_quoted(p, no, text, &end);

		if (!k)
			return -1;
		colon = skip_spaces((char *)end);
		if (*colon != ':' || (colon[1] != ' ' && colon[1] != '\0')) {
			free(k);
			return 0;
		}
		*key = k;
		*rest = skip_spaces(colon + 1);
		return 1;
	}
	for (colon = text; (colon = strchr(colon, ':')); colon++) {
		if (colon[1] == ' ' || colon[1] == '\0')
			break;
	}
	/* A ':' inside a comment does not make a key. */
	if (!colon || (strstr(text, " #") && strstr(text, " #") < colon))
		return 0;
	if (colon == text) {
		yfail(p, no, "empty key");
		return -1;
	}
	if (strchr("?&*!{}[]|>%@`,", text[0])) {
		yfail(p, no, "unsupported key syntax '%c'", text[0]);
		return -1;
	}
	*key = strndup(text, colon - text);
	if (!*key) {
		yfail(p, no, "out of memory");
		return -1;
	}
	for (size_t n = strlen(*key); n && (*key)[n - 1] == ' ';)
		(*key)[--n] = '\0';
	*rest = skip_spaces(colon + 1);
	return 1;
}

static cJSON *parse_block(struct yparser *p, int indent);

static cJSON *parse_seq(struct yparser *p, int indent)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return yfail(p, p->lines[p->i].no, "out of memory");
	while (p->i < p->n) {
		struct yline *l = &p->lines[p->i];
		cJSON *v;
		char *rest;

		if (l->indent < indent || (l->indent == indent && !is_seq_item(l->text)))
			break;
		if (l->indent > indent) {
			yfail(p, l->no, "unexpected indentation");
			goto fail;
		}
		rest = skip_spaces(l->text + 1);
		if (*rest == '\0' || *rest == '#') {
			p->i++;
			if (p->i < p->n && p->lines[p->i].indent > indent)
				v = parse_block(p, p->lines[p->i].indent);
			else
				v = cJSON_CreateNull();
		} else {
			char *key, *r;
			int kind = is_seq_item(rest) ? 1 : split_key(p, l->no, rest, &key, &r);

			if (kind < 0)
				goto fail;
			if (kind > 0) {
				if (!is_seq_item(rest))
					free(key);
				/* "- key: v" opens a mapping (or "- - x" a sequence)
				 * whose lines sit at the column after the dash. */
				l->indent = indent + (int)(rest - l->text);
				l->text = rest;
				v = parse_block(p, l->indent);
			} else {
				v = parse_scalar(p, l->no, rest);
				p->i++;
			}
		}
		if (!v)
			goto fail;
		cJSON_AddItemToArray(arr, v);
	}
	return arr;
fail:
	cJSON_Delete(arr);
	return NULL;
}

static cJSON *parse_map(struct yparser *p, int indent)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return yfail(p, p->lines[p->i].no, "out of memory");
	while (p->i < p->n) {
		struct yline *l = &p->lines[p->i];
		char *key = NULL, *rest;
		cJSON *v;
		int ret;

		if (l->indent < indent)
			break;
		if (l->indent > indent) {
			yfail(p, l->no,
			      "unexpected indentation (multi-line scalars are not supported)");
			goto fail;
		}
		if (is_seq_item(l->text)) {
			yfail(p, l->no, "a sequence item where a key was expected");
			goto fail;
		}
		ret = split_key(p, l->no, l->text, &key, &rest);
		if (ret <= 0) {
			if (!ret)
				yfail(p, l->no, "expected \"key: value\"");
			goto fail;
		}
		if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
			yfail(p, l->no, "duplicate key \"%.64s\"", key);
			free(key);
			goto fail;
		}
		p->i++;
		if (*rest == '\0' || *rest == '#') {
			struct yline *next = p->i < p->n ? &p->lines[p->i] : NULL;

			if (next && next->indent > indent)
				v = parse_block(p, next->indent);
			else if (next && next->indent == indent && is_seq_item(next->text))
				v = parse_seq(p, indent); /* kubectl's style */
			else
				v = cJSON_CreateNull();
		} else {
			v = parse_scalar(p, l->no, rest);
		}
		if (!v) {
			free(key);
			goto fail;
		}
		cJSON_AddItemToObject(obj, key, v);
		free(key);
	}
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

static cJSON *parse_block(struct yparser *p, int indent)
{
	cJSON *v;

	if (++p->depth > YAML_MAX_DEPTH)
		return yfail(p, p->lines[p->i].no, "nested deeper than %d levels", YAML_MAX_DEPTH);
	if (is_seq_item(p->lines[p->i].text))
		v = parse_seq(p, indent);
	else
		v = parse_map(p, indent);
	p->depth--;
	return v;
}

/* Cut the text into content lines; comments and blank lines dropped. */
static int split_lines(struct yparser *p, char *buf)
{
	size_t cap = 0;
	char *line = buf;
	int no = 0;

	if (!strncmp(line, "\xef\xbb\xbf", 3))
		line += 3;
	while (line) {
		char *nl = strchr(line, '\n');
		char *t = line;
		size_t len;
		int indent = 0;

		no++;
		if (nl)
			*nl = '\0';
		line = nl ? nl + 1 : NULL;
		len = strlen(t);
		while (len && (t[len - 1] == '\r' || t[len - 1] == ' ' || t[len - 1] == '\t'))
			t[--len] = '\0';
		while (t[indent] == ' ')
			indent++;
		if (t[indent] == '\t') {
			char *c = t + indent;

			while (*c == ' ' || *c == '\t')
				c++;
			if (*c && *c != '#') {
				yfail(p, no, "tab in indentation");
				return -1;
			}
			continue;
		}
		if (!t[indent] || t[indent] == '#')
			continue;
		if (!indent && (!strcmp(t, "---") || !strncmp(t, "--- ", 4))) {
			if (p->n) {
				yfail(p, no, "multiple documents are not supported");
				return -1;
			}
			if (!only_comment(t + 3)) {
				yfail(p, no, "content after \"---\" is not supported");
				return -1;
			}
			continue;
		}
		if (!indent && !strcmp(t, "..."))
			break;
		if (p->n == cap) {
			struct yline *nl2;

			cap = cap ? cap * 2 : 64;
			nl2 = realloc(p->lines, cap * sizeof(*p->lines));
			if (!nl2) {
				yfail(p, no, "out of memory");
				return -1;
			}
			p->lines = nl2;
		}
		p->lines[p->n++] = (struct yline){.no = no, .indent = indent, .text = t + indent};
	}
	return 0;
}

cJSON *k8s_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct yparser p = {.err = err, .errlen = errlen};
	cJSON *root = NULL;
	char *buf;

	if (errlen)
		err[0] = '\0';
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "NUL byte in the file");
		return NULL;
	}
	buf = strndup(text, len);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (split_lines(&p, buf))
		goto cleanup;
	if (!p.n) {
		snprintf(err, errlen, "empty document");
		goto cleanup;
	}
	root = parse_block(&p, p.lines[0].indent);
	if (root && p.i < p.n) {
		yfail(&p, p.lines[p.i].no, "unexpected indentation");
		cJSON_Delete(root);
		root = NULL;
	}
cleanup:
	free(p.lines);
	free(buf);
	return root;
}
