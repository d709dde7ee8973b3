/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node labels, used by the agent's config and flags and by the coordinator's
 * registry.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/util.h"

int
labels_set(labels_t *l, const char *key, const char *value)
{
	if (!label_key_valid(key) || !label_value_valid(value))
		return -EINVAL;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			free(l->v[i].value);
			l->v[i].value = xstrdup(value);
			return 0;
		}
	}
	if (l->n >= LABELS_MAX)
		return -E2BIG;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n].key = xstrdup(key);
	l->v[l->n].value = xstrdup(value);
	l->n++;
	return 0;
}

int
labels_parse(labels_t *l, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char *key;
	int r;

	if (!eq || eq == kv)
		return -EINVAL;
	key = strndup(kv, (size_t)(eq - kv));
	if (!key)
		abort();
	r = labels_set(l, key, eq + 1);
	free(key);
	return r;
}

const char *
labels_get(const labels_t *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	return NULL;
}

void
labels_clear(labels_t *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
