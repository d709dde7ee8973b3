/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by every process: allocation, clocks, the duration and size
 * syntax, RFC 3339 formatting and identifier rules.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

static void
oom(size_t n)
{
	fprintf(stderr, "shoal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom(strlen(s) + 1);
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char *p;

	if (vasprintf(&p, fmt, ap) < 0)
		oom(0);
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

static uint64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

uint64_t
mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Parses one unsigned decimal number at *sp, advancing it. */
static int
take_number(const char **sp, uint64_t *ret)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*s)) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		s++;
	}
	*sp = s;
	*ret = v;
	return 0;
}

int
parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "m", 60000 },
		{ "h", 3600000 },
	};
	uint64_t total = 0, v;
	int r;

	if (!s || !*s)
		return -EINVAL;
	r = take_number(&s, &v);
	if (r < 0)
		return r;
	if (!*s) {
		if (v > UINT64_MAX / 1000)
			return -ERANGE;
		*ret_ms = v * 1000;
		return 0;
	}
	for (;;) {
		size_t i, len = 0;

		for (i = 0; i < ARRAY_SIZE(units); i++) {
			len = strlen(units[i].unit);
			if (strncmp(s, units[i].unit, len) == 0 &&
			    !isalpha((unsigned char)s[len]))
				break;
		}
		if (i == ARRAY_SIZE(units))
			return -EINVAL;
		if (v > (UINT64_MAX - total) / units[i].ms)
			return -ERANGE;
		total += v * units[i].ms;
		s += len;
		if (!*s)
			break;
		r = take_number(&s, &v);
		if (r < 0)
			return r;
	}
	*ret_ms = total;
	return 0;
}

int
parse_size_bytes(const char *s, uint64_t *ret_bytes)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
		{ "", 1 },
		{ "k", 1000ULL },
		{ "K", 1000ULL },
		{ "M", 1000000ULL },
		{ "G", 1000000000ULL },
		{ "T", 1000000000000ULL },
		{ "Ki", 1ULL << 10 },
		{ "Mi", 1ULL << 20 },
		{ "Gi", 1ULL << 30 },
		{ "Ti", 1ULL << 40 },
	};
	uint64_t v;
	size_t i;
	int r;

	if (!s)
		return -EINVAL;
	r = take_number(&s, &v);
	if (r < 0)
		return r;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(s, units[i].unit) == 0)
			break;
	if (i == ARRAY_SIZE(units))
		return -EINVAL;
	if (v > UINT64_MAX / units[i].mult)
		return -ERANGE;
	*ret_bytes = v * units[i].mult;
	return 0;
}

int
parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	r = take_number(&s, &v);
	if (r < 0)
		return r;
	if (*s)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

void
format_bytes(uint64_t b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
		"PiB", "EiB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

void
format_rfc3339(uint64_t ms, char buf[RFC3339_LEN])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (unsigned)(ms % 1000));
}

static bool
chars_valid(const char *s, size_t min, size_t max, const char *extra)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n < min || n > max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

bool
node_id_valid(const char *s)
{
	return chars_valid(s, 1, NODE_ID_MAX, "._-") &&
	    isalnum((unsigned char)s[0]);
}

bool
snapshot_id_valid(const char *s)
{
	return chars_valid(s, 1, SNAPSHOT_ID_MAX, "-") &&
	    isalnum((unsigned char)s[0]);
}

bool
service_name_valid(const char *s)
{
	size_t n = s ? strnlen(s, SERVICE_NAME_MAX + 1) : 0;

	if (n == 0 || n > SERVICE_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) ||
		        isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

bool
label_key_valid(const char *s)
{
	return chars_valid(s, 1, LABEL_MAX, "._/-");
}

bool
label_value_valid(const char *s)
{
	return chars_valid(s, 0, LABEL_MAX, "._-");
}

uint32_t
random_below(uint32_t n)
{
	static int seeded;
	unsigned seed;

	if (n == 0)
		return 0;
	if (!seeded) {
		if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
			seed = (unsigned)(mono_ms() ^ (uint64_t)getpid());
		srandom(seed);
		seeded = 1;
	}
	return (uint32_t)((uint64_t)random() * n / ((uint64_t)RAND_MAX + 1));
}
