/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node labels: a small ordered set of key=value pairs with validated
 * characters and a hard cap on their number (LABELS_MAX).
 */
#ifndef SHOAL_LABELS_H
#define SHOAL_LABELS_H

#include <stddef.h>

typedef struct label {
	char *key;
	char *value;
} label_t;

/* Zero-initialise; labels_clear() frees what it holds. */
typedef struct labels {
	size_t n;
	label_t *v;
} labels_t;

/* Sets or replaces key. -EINVAL for a bad key or value, -E2BIG past the cap. */
int labels_set(labels_t *l, const char *key, const char *value);
/* Parses "key=value" and sets it. */
int labels_parse(labels_t *l, const char *kv);
/* Borrowed until the labels change; NULL when absent. */
const char *labels_get(const labels_t *l, const char *key);
void labels_clear(labels_t *l);

#endif
