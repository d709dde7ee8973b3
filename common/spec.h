/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service specs: the YAML file an operator applies (the schema is in the
 * architecture page's "user-facing contract"), parsed into a
 * Shoal__ServiceSpec with every default filled in. shoalctl parses the file;
 * the coordinator checks what arrives with spec_validate(), so a spec built
 * by hand on the wire meets the same rules.
 */
#ifndef SHOAL_SPEC_H
#define SHOAL_SPEC_H

#include <stddef.h>

#include "shoal.pb-c.h"

#define SPEC_NAME_MAX 63
#define SPEC_COMMAND_MAX 64 /* command words */
#define SPEC_ENV_MAX 128    /* environment variables */
#define SPEC_ARTIFACTS_MAX 16

/*
 * Parses the spec file at path. On success *ret is an owned message (free
 * with spec_free()). On failure returns SHOAL_E_CONFIG (or -errno when the
 * file cannot be read) and writes to err one line naming the file, the line
 * and the field: "iris.yaml:7: field 'health.interval': expected a
 * duration like 2s, got 'soon'".
 */
int spec_load(const char *path, Shoal__ServiceSpec **ret, char *err,
    size_t errlen);

/* The same from a buffer; name stands for the file in messages. */
int spec_parse(const char *name, const char *text, size_t len,
    Shoal__ServiceSpec **ret, char *err, size_t errlen);

/*
 * The rules every spec obeys, checked on a decoded message: name, image
 * (fully qualified: registry host, path, tag or digest), sizes, ranges.
 * Returns 0 or SHOAL_E_INVALID with *ret_why naming the field.
 */
int spec_validate(const Shoal__ServiceSpec *spec, const char **ret_why);

void spec_free(Shoal__ServiceSpec *spec);

#endif
