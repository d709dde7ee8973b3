/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML configuration loader shared by the agent and the coordinator. The
 * file is parsed with libyaml's document API, every key is checked against
 * the caller's table and converted into a staging area; only when the whole
 * file is good are the values moved into the target, so a rejected file
 * changes nothing.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/config.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/util.h"

#define CONFIG_STRING_MAX 4096

typedef struct staged {
	bool set;
	char *str;
	uint64_t num;
	labels_t labels;
} staged_t;

static int
fail(char *err, size_t errlen, const char *path, const yaml_node_t *node,
    const char *key, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (key)
		snprintf(err, errlen, "%s:%zu: key '%s': %s", path,
		    node ? node->start_mark.line + 1 : 0, key, what);
	else
		snprintf(err, errlen, "%s:%zu: %s", path,
		    node ? node->start_mark.line + 1 : 0, what);
	return SHOAL_E_CONFIG;
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int
stage_labels(yaml_document_t *doc, yaml_node_t *val, staged_t *st,
    const char *path, const char *key, char *err, size_t errlen)
{
	yaml_node_pair_t *p;

	if (val->type != YAML_MAPPING_NODE)
		return fail(err, errlen, path, val, key,
		    "expected a mapping of label names to values");
	for (p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		int r;

		if (!k || !v || k->type != YAML_SCALAR_NODE ||
		    v->type != YAML_SCALAR_NODE)
			return fail(err, errlen, path, k ? k : val, key,
			    "label names and values must be plain strings");
		if (labels_get(&st->labels, scalar(k)))
			return fail(err, errlen, path, k, key,
			    "label '%s' given twice", scalar(k));
		r = labels_set(&st->labels, scalar(k), scalar(v));
		if (r == -E2BIG)
			return fail(err, errlen, path, k, key,
			    "more than %d labels", LABELS_MAX);
		if (r < 0)
			return fail(err, errlen, path, k, key,
			    "label '%s: %s': names are 1-%d of "
			    "[A-Za-z0-9._/-], "
			    "values 0-%d of [A-Za-z0-9._-]",
			    scalar(k), scalar(v), LABEL_MAX, LABEL_MAX);
	}
	return 0;
}

static int
stage(yaml_document_t *doc, const config_field_t *f, yaml_node_t *val,
    staged_t *st, const char *path, char *err, size_t errlen)
{
	const char *s;
	int r;

	if (f->type == CONFIG_LABELS)
		return stage_labels(doc, val, st, path, f->key, err, errlen);
	if (val->type != YAML_SCALAR_NODE)
		return fail(err, errlen, path, val, f->key,
		    "expected a single value, not a %s",
		    val->type == YAML_MAPPING_NODE ? "mapping" : "list");
	s = scalar(val);
	if (!*s && val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return fail(err, errlen, path, val, f->key, "has no value");

	switch (f->type) {
	case CONFIG_STRING:
		if (strlen(s) > CONFIG_STRING_MAX)
			return fail(err, errlen, path, val, f->key,
			    "longer than %d characters", CONFIG_STRING_MAX);
		if (f->valid && !f->valid(s))
			return fail(err, errlen, path, val, f->key,
			    "expected %s, got '%s'", f->expect, s);
		st->str = xstrdup(s);
		break;
	case CONFIG_DURATION:
		r = parse_duration_ms(s, &st->num);
		if (r < 0)
			return fail(err, errlen, path, val, f->key,
			    "expected a duration like 500ms, 10s, 5m or 1h, "
			    "got '%s'",
			    s);
		if (!f->max && st->num < f->min)
			return fail(err, errlen, path, val, f->key,
			    "'%s' is below the minimum of %llums", s,
			    (unsigned long long)f->min);
		if (st->num < f->min || (f->max && st->num > f->max))
			return fail(err, errlen, path, val, f->key,
			    "'%s' is out of range (%llums to %llums)", s,
			    (unsigned long long)f->min,
			    (unsigned long long)f->max);
		break;
	case CONFIG_UINT:
		r = parse_uint(s, f->max ? f->max : UINT64_MAX, &st->num);
		if (r < 0 || st->num < f->min)
			return fail(err, errlen, path, val, f->key,
			    "expected a whole number from %llu to %llu, got "
			    "'%s'",
			    (unsigned long long)f->min,
			    (unsigned long long)(f->max ? f->max : UINT64_MAX),
			    s);
		break;
	case CONFIG_SIZE:
		r = parse_size_bytes(s, &st->num);
		if (r < 0 || st->num < f->min || (f->max && st->num > f->max))
			return fail(err, errlen, path, val, f->key,
			    "expected a size like 512Mi, 20Gi or 4096 (bytes), "
			    "got '%s'",
			    s);
		break;
	case CONFIG_LABELS:
		break;
	}
	return 0;
}

static void
staged_free(staged_t *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(st[i].str);
		labels_clear(&st[i].labels);
	}
	free(st);
}

static void
commit(const config_field_t *fields, staged_t *st, void *target)
{
	for (size_t i = 0; fields[i].key; i++) {
		char *p = (char *)target + fields[i].offset;

		if (!st[i].set)
			continue;
		switch (fields[i].type) {
		case CONFIG_STRING:
			free(*(char **)p);
			*(char **)p = st[i].str;
			st[i].str = NULL;
			break;
		case CONFIG_DURATION:
		case CONFIG_UINT:
		case CONFIG_SIZE:
			*(uint64_t *)p = st[i].num;
			break;
		case CONFIG_LABELS:
			labels_clear((labels_t *)p);
			*(labels_t *)p = st[i].labels;
			st[i].labels = (labels_t){ 0 };
			break;
		}
	}
}

static int
walk(yaml_document_t *doc, const config_field_t *fields, staged_t *st,
    const char *path, char *err, size_t errlen)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_node_pair_t *p;

	if (!root)
		return 0; /* an empty file sets nothing */
	if (root->type != YAML_MAPPING_NODE)
		return fail(err, errlen, path, root, NULL,
		    "expected a mapping of settings (key: value)");
	for (p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		size_t i;
		int r;

		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return fail(err, errlen, path, k ? k : root, NULL,
			    "setting names must be plain strings");
		for (i = 0; fields[i].key; i++)
			if (strcmp(fields[i].key, scalar(k)) == 0)
				break;
		if (!fields[i].key)
			return fail(err, errlen, path, k, scalar(k),
			    "unknown setting");
		if (st[i].set)
			return fail(err, errlen, path, k, scalar(k),
			    "given twice");
		r = stage(doc, &fields[i], v, &st[i], path, err, errlen);
		if (r < 0)
			return r;
		st[i].set = true;
	}
	return 0;
}

static int
syntax_error(char *err, size_t errlen, const char *path,
    const yaml_parser_t *parser)
{
	snprintf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s", path,
	    parser->problem_mark.line + 1, parser->problem_mark.column + 1,
	    parser->problem ? parser->problem : "unreadable");
	return SHOAL_E_CONFIG;
}

/*
 * yaml_parser_load() stops at the end of the first document, so whatever
 * follows a "---" would go unread: its keys unchecked, even its syntax.
 * Loading once more reads to the end of the stream and refuses the rest.
 */
static int
only_document(yaml_parser_t *parser, const char *path, char *err, size_t errlen)
{
	yaml_document_t extra;
	yaml_node_t *root;
	int r = 0;

	if (!yaml_parser_load(parser, &extra))
		return syntax_error(err, errlen, path, parser);
	root = yaml_document_get_root_node(&extra);
	if (root)
		r = fail(err, errlen, path, root, NULL,
		    "a second YAML document; keep every setting in one");
	yaml_document_delete(&extra);
	return r;
}

int
config_load(const char *path, const config_field_t *fields, void *target,
    char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	staged_t *st = NULL;
	size_t n = 0;
	FILE *f;
	int r;

	f = fopen(path, "r");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		r = syntax_error(err, errlen, path, &parser);
		goto out_parser;
	}
	r = only_document(&parser, path, err, errlen);
	if (r < 0)
		goto out_doc;
	while (fields[n].key)
		n++;
	st = xcalloc(n + 1, sizeof *st);
	r = walk(&doc, fields, st, path, err, errlen);
	if (r == 0)
		commit(fields, st, target);
	staged_free(st, n + 1);
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	fclose(f);
	return r;
}

void
config_free(const config_field_t *fields, void *target)
{
	for (size_t i = 0; fields[i].key; i++) {
		char *p = (char *)target + fields[i].offset;

		if (fields[i].type == CONFIG_STRING) {
			free(*(char **)p);
			*(char **)p = NULL;
		} else if (fields[i].type == CONFIG_LABELS) {
			labels_clear((labels_t *)p);
		}
	}
}

static bool
labels_equal(const labels_t *a, const labels_t *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *v = labels_get(b, a->v[i].key);

		if (!v || strcmp(v, a->v[i].value) != 0)
			return false;
	}
	return true;
}

static bool
field_equal(const config_field_t *f, const void *a, const void *b)
{
	const char *pa = (const char *)a + f->offset;
	const char *pb = (const char *)b + f->offset;

	switch (f->type) {
	case CONFIG_STRING: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;

		return strcmp(sa ? sa : "", sb ? sb : "") == 0;
	}
	case CONFIG_LABELS:
		return labels_equal((const labels_t *)pa, (const labels_t *)pb);
	case CONFIG_DURATION:
	case CONFIG_UINT:
	case CONFIG_SIZE:
		return *(const uint64_t *)pa == *(const uint64_t *)pb;
	}
	return true;
}

static void
field_swap(const config_field_t *f, void *a, void *b)
{
	char *pa = (char *)a + f->offset, *pb = (char *)b + f->offset;
	char tmp[sizeof(labels_t) > sizeof(uint64_t) ? sizeof(labels_t)
	                                             : sizeof(uint64_t)];
	size_t size = f->type == CONFIG_STRING ? sizeof(char *)
	    : f->type == CONFIG_LABELS         ? sizeof(labels_t)
	                                       : sizeof(uint64_t);

	memcpy(tmp, pa, size);
	memcpy(pa, pb, size);
	memcpy(pb, tmp, size);
}

static void
append_key(char *buf, size_t len, const char *key)
{
	size_t k = strlen(buf);

	if (len && k < len - 1)
		snprintf(buf + k, len - k, "%s%s", k ? ", " : "", key);
}

int
config_field_index(const config_field_t *fields, const char *key)
{
	for (int i = 0; fields[i].key; i++)
		if (strcmp(fields[i].key, key) == 0)
			return i;
	return -1;
}

uint64_t
config_reload(const config_field_t *fields, const char *const *live,
    void *running, void *fresh, char *applied, size_t appliedlen, char *kept,
    size_t keptlen)
{
	uint64_t mask = 0;

	if (appliedlen)
		applied[0] = '\0';
	if (keptlen)
		kept[0] = '\0';
	for (size_t i = 0; fields[i].key; i++) {
		const config_field_t *f = &fields[i];
		bool is_live = false;

		if (field_equal(f, running, fresh))
			continue;
		for (size_t k = 0; live && live[k]; k++)
			if (strcmp(live[k], f->key) == 0)
				is_live = true;
		if (!is_live) {
			append_key(kept, keptlen, f->key);
			continue;
		}
		field_swap(f, running, fresh);
		if (i < 64)
			mask |= 1ULL << i;
		append_key(applied, appliedlen, f->key);
	}
	return mask;
}
