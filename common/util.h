/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers every process uses: allocation that aborts on exhaustion,
 * clocks, the duration and size syntax of the user-facing contract
 * ("500ms", "10s", "5m", "1h"; "512Mi", "2Gi"), RFC 3339 timestamps and
 * the identifier rules for node ids and labels.
 */
#ifndef SHOAL_UTIL_H
#define SHOAL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Out of memory is not recoverable in a daemon: these abort. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds: wall clock (for timestamps) and monotonic (for timers). */
uint64_t now_ms(void);
uint64_t mono_ms(void);
uint64_t mono_us(void);

/* "1500ms", "10s", "5m", "1h", "1h30m"; a bare number is seconds. */
int parse_duration_ms(const char *s, uint64_t *ret_ms);
/* "512Mi", "2Gi", "1G", "4096"; a bare number is bytes. */
int parse_size_bytes(const char *s, uint64_t *ret_bytes);
/* Decimal unsigned integer, whole string, at most max. */
int parse_uint(const char *s, uint64_t max, uint64_t *ret);

/* Bytes for people: "512 B", "12.5 MiB", "2.0 GiB" (binary units, one
 * decimal). */
void format_bytes(uint64_t b, char *buf, size_t size);

/* RFC 3339 in UTC with milliseconds: 2026-11-24T02:32:13.120Z. */
#define RFC3339_LEN 64
void format_rfc3339(uint64_t ms, char buf[RFC3339_LEN]);

/* Node ids: 1..63 of [A-Za-z0-9._-], starting with a letter or digit. */
#define NODE_ID_MAX 63
bool node_id_valid(const char *s);
/* A snapshot id names a directory: [A-Za-z0-9][A-Za-z0-9-]*, at most
 * SNAPSHOT_ID_MAX characters. */
#define SNAPSHOT_ID_MAX 63
bool snapshot_id_valid(const char *s);
/* Service names: [a-z0-9-], starting and ending with a letter or digit. */
#define SERVICE_NAME_MAX 63
bool service_name_valid(const char *s);
/* Label keys: 1..63 of [A-Za-z0-9._/-]; values: 0..63 of [A-Za-z0-9._-]. */
#define LABEL_MAX 63
#define LABELS_MAX 64
bool label_key_valid(const char *s);
bool label_value_valid(const char *s);

/* A random number in [0, n) from a per-process seeded generator. */
uint32_t random_below(uint32_t n);

#endif
