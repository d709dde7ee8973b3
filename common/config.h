/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML configuration files (agent.yaml, coordinator.yaml) loaded against a
 * table of known keys. Errors name the file, the line and the key; an
 * unknown key, a wrong type or a value out of range rejects the whole file
 * and leaves the target as it was.
 */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum config_type {
	CONFIG_STRING,   /* char *, heap-owned by the target */
	CONFIG_DURATION, /* uint64_t milliseconds: "500ms", "10s", "5m" */
	CONFIG_UINT,     /* uint64_t in [min, max] */
	CONFIG_LABELS,   /* labels_t: a mapping of label key -> value */
	CONFIG_SIZE,     /* uint64_t bytes: "512Mi", "20Gi", "4096" */
} config_type_t;

typedef struct config_field {
	const char *key;
	config_type_t type;
	size_t offset;     /* of the value in the target struct */
	uint64_t min, max; /* UINT and DURATION bounds; max 0 = none */
	/* STRING: optional check and what it expects, for the error. */
	bool (*valid)(const char *value);
	const char *expect;
} config_field_t;

/*
 * Loads path into target following fields (terminated by a NULL key).
 * On error returns SHOAL_E_CONFIG (or -errno when the file cannot be
 * read) and writes "FILE:LINE: key 'K': what is wrong" into err.
 */
int config_load(const char *path, const config_field_t *fields, void *target,
    char *err, size_t errlen);

/* Frees the CONFIG_STRING and CONFIG_LABELS values fields point at. */
void config_free(const config_field_t *fields, void *target);

/*
 * A reload (SIGHUP): compares running with fresh (both loaded against
 * fields) key by key. A changed key named in live (NULL-terminated) takes
 * fresh's value in running, and running's old value goes to fresh, for
 * config_free(); any other changed key keeps its running value. Returns
 * the changed live keys as a bit mask of their index in fields; the names
 * of both kinds go, comma-separated, into applied and kept (may be
 * truncated; "" when none).
 */
uint64_t config_reload(const config_field_t *fields, const char *const *live,
    void *running, void *fresh, char *applied, size_t appliedlen, char *kept,
    size_t keptlen);
/* The index of key in fields, for config_reload()'s mask; -1 if absent. */
int config_field_index(const config_field_t *fields, const char *key);

#endif
