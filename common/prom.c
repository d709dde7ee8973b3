/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text format writer of the agent's and the coordinator's
 * metrics endpoints. It runs on the daemons' event loops at every scrape,
 * so it formats numbers itself for the common cases (integers) and leaves
 * only fractions to snprintf.
 */
#include "autoconf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "common/util.h"

static void
reserve(prom_t *p, size_t more)
{
	size_t cap;

	if (p->len + more + 1 <= p->cap)
		return;
	cap = p->cap ? p->cap : 4096;
	while (cap < p->len + more + 1)
		cap *= 2;
	p->buf = xrealloc(p->buf, cap);
	p->cap = cap;
}

static void
put(prom_t *p, const char *s, size_t n)
{
	reserve(p, n);
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void
puts_(prom_t *p, const char *s)
{
	put(p, s, strlen(s));
}

static void
put_uint(prom_t *p, uint64_t v)
{
	char tmp[24], *e = tmp + sizeof tmp, *s = e;

	do {
		*--s = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(p, s, (size_t)(e - s));
}

static void
put_double(prom_t *p, double v)
{
	char tmp[40];
	int n;

	if (isnan(v)) {
		puts_(p, "NaN");
		return;
	}
	if (isinf(v)) {
		puts_(p, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers below 2^53 are exact as integers, and cheap. */
	if (v >= 0 && v < 9007199254740992.0 && v == (double)(uint64_t)v) {
		put_uint(p, (uint64_t)v);
		return;
	}
	n = snprintf(tmp, sizeof tmp, "%.15g", v);
	put(p, tmp, (size_t)n);
}

void
prom_reset(prom_t *p)
{
	p->len = 0;
	p->labels = 0;
	p->samples = 0;
	if (p->buf)
		p->buf[0] = '\0';
}

void
prom_free(prom_t *p)
{
	free(p->buf);
	*p = (prom_t){ 0 };
}

/* HELP text escapes \ and newline only. */
void
prom_family(prom_t *p, const char *name, const char *type, const char *help)
{
	puts_(p, "# HELP ");
	puts_(p, name);
	put(p, " ", 1);
	for (const char *c = help; *c; c++) {
		if (*c == '\\')
			put(p, "\\\\", 2);
		else if (*c == '\n')
			put(p, "\\n", 2);
		else
			put(p, c, 1);
	}
	puts_(p, "\n# TYPE ");
	puts_(p, name);
	put(p, " ", 1);
	puts_(p, type);
	put(p, "\n", 1);
}

void
prom_begin(prom_t *p, const char *name)
{
	puts_(p, name);
	p->labels = 0;
}

static void
label_key(prom_t *p, const char *key)
{
	put(p, p->labels++ ? "," : "{", 1);
	puts_(p, key);
	put(p, "=\"", 2);
}

void
prom_label(prom_t *p, const char *key, const char *value)
{
	const char *run = value;

	label_key(p, key);
	for (const char *c = value;; c++) {
		const char *esc = NULL;

		if (*c == '\\')
			esc = "\\\\";
		else if (*c == '"')
			esc = "\\\"";
		else if (*c == '\n')
			esc = "\\n";
		else if (*c)
			continue;
		put(p, run, (size_t)(c - run));
		if (!esc)
			break;
		put(p, esc, 2);
		run = c + 1;
	}
	put(p, "\"", 1);
}

void
prom_label_uint(prom_t *p, const char *key, uint64_t value)
{
	label_key(p, key);
	put_uint(p, value);
	put(p, "\"", 1);
}

static void
end_labels(prom_t *p)
{
	put(p, p->labels ? "} " : " ", p->labels ? 2 : 1);
	p->labels = 0;
	p->samples++;
}

void
prom_value(prom_t *p, double v)
{
	end_labels(p);
	put_double(p, v);
	put(p, "\n", 1);
}

void
prom_value_uint(prom_t *p, uint64_t v)
{
	end_labels(p);
	put_uint(p, v);
	put(p, "\n", 1);
}

void
prom_gauge(prom_t *p, const char *name, double v)
{
	prom_begin(p, name);
	prom_value(p, v);
}

void
prom_count(prom_t *p, const char *name, uint64_t v)
{
	prom_begin(p, name);
	prom_value_uint(p, v);
}

void
prom_histogram(prom_t *p, const char *name, const char *key, const char *value,
    const double *bounds, const uint64_t *counts, size_t nbounds, double sum,
    uint64_t count)
{
	char series[128];
	char le[40];
	uint64_t cum = 0;

	snprintf(series, sizeof series, "%s_bucket", name);
	for (size_t i = 0; i <= nbounds; i++) {
		prom_begin(p, series);
		if (key)
			prom_label(p, key, value);
		if (i < nbounds) {
			snprintf(le, sizeof le, "%g", bounds[i]);
			cum += counts[i];
		} else {
			snprintf(le, sizeof le, "+Inf");
			cum = count;
		}
		prom_label(p, "le", le);
		prom_value_uint(p, cum);
	}
	snprintf(series, sizeof series, "%s_sum", name);
	prom_begin(p, series);
	if (key)
		prom_label(p, key, value);
	prom_value(p, sum);
	snprintf(series, sizeof series, "%s_count", name);
	prom_begin(p, series);
	if (key)
		prom_label(p, key, value);
	prom_value_uint(p, count);
}

void
prom_raw(prom_t *p, const char *s)
{
	puts_(p, s);
}
