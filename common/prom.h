/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format (version 0.0.4), written into a
 * growing buffer that is kept between scrapes so rendering allocates only
 * while the output grows. A family is its # HELP and # TYPE lines; a sample
 * is written as prom_begin(), any prom_label()s, then one prom_value*().
 * Names are the caller's to get right; label values are escaped here.
 */
#ifndef SHOAL_COMMON_PROM_H
#define SHOAL_COMMON_PROM_H

#include <stddef.h>
#include <stdint.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct prom {
	char *buf; /* NUL-terminated */
	size_t len, cap;
	unsigned labels; /* of the sample being written */
	size_t samples;  /* sample lines since prom_reset() */
} prom_t;

/* Empties p, keeping its buffer (a zeroed prom_t is empty too). */
void prom_reset(prom_t *p);
void prom_free(prom_t *p);

/* type: "counter", "gauge", "histogram" or "untyped". */
void prom_family(prom_t *p, const char *name, const char *type,
    const char *help);

void prom_begin(prom_t *p, const char *name);
/* value: any bytes up to its NUL; \, " and newline are escaped. */
void prom_label(prom_t *p, const char *key, const char *value);
void prom_label_uint(prom_t *p, const char *key, uint64_t value);
void prom_value(prom_t *p, double v); /* NaN, +Inf, -Inf as Prometheus */
void prom_value_uint(prom_t *p, uint64_t v);

/* A whole unlabelled sample. */
void prom_gauge(prom_t *p, const char *name, double v);
void prom_count(prom_t *p, const char *name, uint64_t v);

/*
 * A histogram's samples (name_bucket, _sum, _count), with an optional label
 * (key NULL: none). counts[i] holds the observations <= bounds[i] that are
 * above bounds[i - 1], not cumulated; the +Inf bucket is count.
 */
void prom_histogram(prom_t *p, const char *name, const char *key,
    const char *value, const double *bounds, const uint64_t *counts,
    size_t nbounds, double sum, uint64_t count);

/* shoal_build_info{version,program}, the standard process_* families (CPU,
 * resident and virtual memory, start time, file descriptors) of this
 * process, from /proc/self, and shoal_heap_in_use_bytes. */
void prom_process(prom_t *p, const char *program);

/* Appends raw text (a comment, say). */
void prom_raw(prom_t *p, const char *s);

#endif
