// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libyaml's events, built into a cJSON tree as they come: a stack of the
 * collections being filled, the anchors defined so far, and counts that keep
 * aliases from expanding without bound.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "k8s/yaml_doc.h"

struct anchor {
	char *name;
	cJSON *node;  /* in the tree, or a merge key's value in b->detached */
	size_t nodes; /* its size, counted once */
	int height;   /* collections nested in it, itself included; 0: a scalar */
};

struct frame {
	cJSON *node;	/* the mapping or sequence being filled */
	char *anchor;	/* defined when the collection ends */
	char *key;	/* mapping: the key waiting for its value */
	bool merge;	/* that key is the merge key "<<" */
	cJSON **merges; /* mapping: its merge keys' values (in b->detached) */
	size_t n_merges;
	size_t first_node; /* b->nodes before it: its size at the end */
	int height;	   /* the highest child's height so far */
};

struct builder {
	cJSON *root;
	cJSON *detached; /* merge keys' values: merged, not in the tree */
	struct frame stack[K8S_YAML_MAX_DEPTH];
	int depth;
	struct anchor *anchors;
	size_t n_anchors;
	size_t nodes;
	bool failed;
	char *err;
	size_t errlen;
};

static void fail_at(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_at(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (b->failed)
		return;
	b->failed = true;
	if (m)
		n = snprintf(b->err, b->errlen, "line %zu, column %zu: ", m->line + 1,
			     m->column + 1);
	va_start(ap, fmt);
	vsnprintf(b->err + (n < b->errlen ? n : b->errlen), n < b->errlen ? b->errlen - n : 0, fmt,
		  ap);
	va_end(ap);
}

static size_t count_nodes(const cJSON *n)
{
	size_t c = 1;

	for (const cJSON *ch = n->child; ch; ch = ch->next)
		c += count_nodes(ch);
	return c;
}

static bool add_nodes(struct builder *b, size_t n, const yaml_mark_t *m)
{
	b->nodes += n;
	if (b->nodes <= K8S_YAML_MAX_NODES)
		return true;
	fail_at(b, m, "more than %d nodes (aliases expanding without bound?)", K8S_YAML_MAX_NODES);
	return false;
}

static struct anchor *find_anchor(struct builder *b, const char *name)
{
	/* The latest definition of a name wins. */
	for (size_t i = b->n_anchors; i > 0; i--)
		if (!strcmp(b->anchors[i - 1].name, name))
			return &b->anchors[i - 1];
	return NULL;
}

static void define_anchor(struct builder *b, const char *name, cJSON *node, size_t nodes,
			  int height, const yaml_mark_t *m)
{
	struct anchor *a;

	if (!name)
		return;
	a = realloc(b->anchors, (b->n_anchors + 1) * sizeof(*a));
	if (!a) {
		fail_at(b, m, "out of memory");
		return;
	}
	b->anchors = a;
	a = &b->anchors[b->n_anchors];
	a->name = strdup(name);
	if (!a->name) {
		fail_at(b, m, "out of memory");
		return;
	}
	a->node = node;
	a->nodes = nodes;
	a->height = height;
	b->n_anchors++;
}

/* A value for the top of the stack (or the root). Takes v. */
static void place(struct builder *b, cJSON *v, int height, const yaml_mark_t *m)
{
	struct frame *f = b->depth ? &b->stack[b->depth - 1] : NULL;

	if (!f) {
		b->root = v;
		return;
	}
	if (height + 1 > f->height)
		f->height = height + 1;
	if (cJSON_IsArray(f->node)) {
		cJSON_AddItemToArray(f->node, v);
		return;
	}
	if (f->merge) {
		/* Checked when merged: a collection is still empty here. */
		cJSON **mv = realloc(f->merges, (f->n_merges + 1) * sizeof(*mv));

		cJSON_AddItemToArray(b->detached, v);
		if (mv)
			f->merges = mv;
		if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
			fail_at(b, m, "a merge key (<<) takes a mapping or a list of mappings");
		else if (!mv)
			fail_at(b, m, "out of memory");
		else
			f->merges[f->n_merges++] = v;
	} else if (cJSON_GetObjectItemCaseSensitive(f->node, f->key)) {
		fail_at(b, m, "duplicate key \"%.100s\"", f->key);
		cJSON_Delete(v);
	} else {
		cJSON_AddItemToObject(f->node, f->key, v);
	}
	free(f->key);
	f->key = NULL;
	f->merge = false;
}

/* A mapping waiting for a key takes a scalar's text as one. */
static bool wants_key(struct builder *b)
{
	return b->depth && cJSON_IsObject(b->stack[b->depth - 1].node) &&
	       !b->stack[b->depth - 1].key;
}

static void set_key(struct builder *b, const char *key, bool merge, const yaml_mark_t *m)
{
	struct frame *f = &b->stack[b->depth - 1];

	f->key = strdup(key);
	f->merge = merge;
	if (!f->key)
		fail_at(b, m, "out of memory");
}

static bool is_one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(v, *set))
			return true;
	return false;
}

static const char *const yaml_true[] = {"true", "True", "TRUE", NULL};
static const char *const yaml_false[] = {"false", "False", "FALSE", NULL};
static const char *const yaml_null[] = {"null", "Null", "NULL", "~", "", NULL};

static cJSON *scalar_value(struct builder *b, const yaml_event_t *e)
{
	const char *v = (const char *)e->data.scalar.value, *tag = (const char *)e->data.scalar.tag;
	bool plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (memchr(v, '\0', e->data.scalar.length)) {
		fail_at(b, &e->start_mark, "NUL character in a scalar");
		return NULL;
	}
	if (tag && strcmp(tag, "!")) {
		/* Numbers stay text: kubeconfig reads none. */
		if (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, YAML_INT_TAG) ||
		    !strcmp(tag, YAML_FLOAT_TAG))
			return cJSON_CreateString(v);
		if (!strcmp(tag, YAML_BOOL_TAG) &&
		    (is_one_of(v, yaml_true) || is_one_of(v, yaml_false)))
			return cJSON_CreateBool(is_one_of(v, yaml_true));
		if (!strcmp(tag, YAML_NULL_TAG) && is_one_of(v, yaml_null))
			return cJSON_CreateNull();
		fail_at(b, &e->start_mark, "tag %.100s is not supported here", tag);
		return NULL;
	}
	/* Quoted, block, or "!"-tagged: a string, whatever it says. */
	if (!plain || tag)
		return cJSON_CreateString(v);
	if (is_one_of(v, yaml_true))
		return cJSON_CreateTrue();
	if (is_one_of(v, yaml_false))
		return cJSON_CreateFalse();
	if (is_one_of(v, yaml_null))
		return cJSON_CreateNull();
	return cJSON_CreateString(v);
}

static void on_scalar(struct builder *b, const yaml_event_t *e)
{
	cJSON *v;

	if (!add_nodes(b, 1, &e->start_mark))
		return;
	if (wants_key(b)) {
		if (memchr(e->data.scalar.value, '\0', e->data.scalar.length)) {
			fail_at(b, &e->start_mark, "NUL character in a key");
			return;
		}
		set_key(b, (const char *)e->data.scalar.value,
			e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    !strcmp((const char *)e->data.scalar.value, "<<"),
			&e->start_mark);
		return;
	}
	v = scalar_value(b, e);
	if (!v) {
		if (!b->failed)
			fail_at(b, &e->start_mark, "out of memory");
		return;
	}
	place(b, v, 0, &e->start_mark);
	define_anchor(b, (const char *)e->data.scalar.anchor, v, 1, 0, &e->start_mark);
}

static void on_alias(struct builder *b, const yaml_event_t *e)
{
	const char *name = (const char *)e->data.alias.anchor;
	struct anchor *a = find_anchor(b, name);
	cJSON *v;

	if (!a) {
		/* Also an alias inside the node it names: defined at its end. */
		fail_at(b, &e->start_mark, "alias *%.100s: no anchor &%.100s before it", name,
			name);
		return;
	}
	if (wants_key(b)) {
		if (!cJSON_IsString(a->node)) {
			fail_at(b, &e->start_mark, "a mapping key must be a scalar");
			return;
		}
		set_key(b, a->node->valuestring, false, &e->start_mark);
		return;
	}
	if (b->depth + a->height > K8S_YAML_MAX_DEPTH) {
		fail_at(b, &e->start_mark, "alias *%.100s: nested deeper than %d levels", name,
			K8S_YAML_MAX_DEPTH);
		return;
	}
	if (!add_nodes(b, a->nodes, &e->start_mark))
		return;
	v = cJSON_Duplicate(a->node, true);
	if (!v) {
		fail_at(b, &e->start_mark, "out of memory");
		return;
	}
	place(b, v, a->height, &e->start_mark);
}

static bool collection_tag(const char *tag, const char *own)
{
	return !tag || !strcmp(tag, "!") || !strcmp(tag, own);
}

static void on_start(struct builder *b, const yaml_event_t *e, bool mapping)
{
	const char *tag =
	    (const char *)(mapping ? e->data.mapping_start.tag : e->data.sequence_start.tag);
	const char *anchor =
	    (const char *)(mapping ? e->data.mapping_start.anchor : e->data.sequence_start.anchor);
	struct frame *f;
	cJSON *v;

	if (wants_key(b)) {
		fail_at(b, &e->start_mark, "a mapping key must be a scalar");
		return;
	}
	if (!collection_tag(tag, mapping ? YAML_MAP_TAG : YAML_SEQ_TAG)) {
		fail_at(b, &e->start_mark, "tag %.100s is not supported here", tag);
		return;
	}
	if (b->depth == K8S_YAML_MAX_DEPTH) {
		fail_at(b, &e->start_mark, "nested deeper than %d levels", K8S_YAML_MAX_DEPTH);
		return;
	}
	if (!add_nodes(b, 1, &e->start_mark))
		return;
	v = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
	if (!v) {
		fail_at(b, &e->start_mark, "out of memory");
		return;
	}
	f = &b->stack[b->depth];
	*f = (struct frame){.node = v, .first_node = b->nodes - 1};
	if (anchor && !(f->anchor = strdup(anchor))) {
		free(f->anchor);
		cJSON_Delete(v);
		fail_at(b, &e->start_mark, "out of memory");
		return;
	}
	/* Into its parent now (it takes the parent's key); filled in place. */
	place(b, v, 0, &e->start_mark);
	b->depth++;
}

static void merge_from(struct builder *b, struct frame *f, const cJSON *src, const yaml_mark_t *m)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, src)
	{
		cJSON *copy;

		if (b->failed || cJSON_GetObjectItemCaseSensitive(f->node, item->string))
			continue;
		if (!add_nodes(b, count_nodes(item), m))
			return;
		copy = cJSON_Duplicate(item, true);
		if (!copy) {
			fail_at(b, m, "out of memory");
			return;
		}
		cJSON_AddItemToObject(f->node, item->string, copy);
	}
}

/* Keys of the merge keys' mappings that the mapping does not have itself;
 * of several mappings, the earlier ones win. */
static void apply_merges(struct builder *b, struct frame *f, const yaml_mark_t *m)
{
	const cJSON *src;

	for (size_t i = 0; i < f->n_merges && !b->failed; i++) {
		const cJSON *ref = f->merges[i];

		if (cJSON_IsObject(ref)) {
			merge_from(b, f, ref, m);
			continue;
		}
		cJSON_ArrayForEach(src, ref)
		{
			if (!cJSON_IsObject(src)) {
				fail_at(b, m, "a merge key (<<) takes mappings only");
				return;
			}
			merge_from(b, f, src, m);
		}
	}
}

static void frame_free(struct frame *f)
{
	free(f->anchor);
	free(f->key);
	free(f->merges); /* the values are b->detached's */
	f->anchor = f->key = NULL;
	f->merges = NULL;
	f->n_merges = 0;
}

static void on_end(struct builder *b, const yaml_event_t *e)
{
	struct frame *f = &b->stack[--b->depth];
	int height = f->height ? f->height : 1;

	if (f->n_merges)
		apply_merges(b, f, &e->start_mark);
	if (!b->failed)
		define_anchor(b, f->anchor, f->node, b->nodes - f->first_node, height,
			      &e->start_mark);
	if (b->depth && height + 1 > b->stack[b->depth - 1].height)
		b->stack[b->depth - 1].height = height + 1;
	frame_free(f);
}

static void parser_error(struct builder *b, const yaml_parser_t *p)
{
	char ctx[160] = "";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		fail_at(b, NULL, "out of memory");
		return;
	case YAML_READER_ERROR:
		fail_at(b, NULL, "byte %zu: %s", p->problem_offset,
			p->problem ? p->problem : "unreadable");
		return;
	default:
		if (p->context)
			snprintf(ctx, sizeof(ctx), " (%s at line %zu)", p->context,
				 p->context_mark.line + 1);
		fail_at(b, &p->problem_mark, "%s%s", p->problem ? p->problem : "not YAML", ctx);
	}
}

cJSON *k8s_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct builder b = {.err = err, .errlen = errlen};
	int documents = 0;
	yaml_parser_t p;
	bool done = false;

	if (errlen)
		err[0] = '\0';
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "NUL byte in the file");
		return NULL;
	}
	b.detached = cJSON_CreateArray();
	if (!b.detached || !yaml_parser_initialize(&p)) {
		cJSON_Delete(b.detached);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !b.failed) {
		yaml_event_t e;

		if (!yaml_parser_parse(&p, &e)) {
			parser_error(&b, &p);
			break;
		}
		switch (e.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (documents++)
				fail_at(&b, &e.start_mark,
					"a second YAML document: a kubeconfig "
					"is one document");
			break;
		case YAML_SCALAR_EVENT:
			on_scalar(&b, &e);
			break;
		case YAML_ALIAS_EVENT:
			on_alias(&b, &e);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			on_start(&b, &e, e.type == YAML_MAPPING_START_EVENT);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			on_end(&b, &e);
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default: /* stream start, document end */
			break;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	if (!b.failed && !documents)
		fail_at(&b, NULL, "empty document");
	while (b.depth)
		frame_free(&b.stack[--b.depth]);
	for (size_t i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	cJSON_Delete(b.detached);
	if (b.failed) {
		cJSON_Delete(b.root);
		return NULL;
	}
	return b.root;
}
