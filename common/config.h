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

#endif
