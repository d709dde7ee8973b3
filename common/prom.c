/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text format writer of the agent's and the coordinator's
 * metrics endpoints. It runs on the daemons' event loops at every scrape,
 * so it formats numbers itself for the common cases (integers) and leaves
 * only fractions to snprintf.
 */
#include "autoconf.h"

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

/* The length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* Escapes \, " and newline, and replaces bytes that are not UTF-8 (a
 * mount point may be any bytes) with U+FFFD: Prometheus refuses a whole
 * scrape over one invalid label value. */
void
prom_label(prom_t *p, const char *key, const char *value)
{
	const unsigned char *c = (const unsigned char *)value;
	const unsigned char *run = c;

	label_key(p, key);
	for (;; c++) {
		const char *esc = NULL;
		size_t n;

		if (*c == '\\')
			esc = "\\\\";
		else if (*c == '"')
			esc = "\\\"";
		else if (*c == '\n')
			esc = "\\n";
		else if (*c >= 0x80 && (n = utf8_len(c)) > 0) {
			c += n - 1;
			continue;
		} else if (*c >= 0x80)
			esc = "\xef\xbf\xbd";
		else if (*c)
			continue;
		put(p, (const char *)run, (size_t)(c - run));
		if (!esc)
			break;
		put(p, esc, strlen(esc));
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

/* When this process started, in unixtime: boot time plus its start in
 * ticks after boot (proc(5)). Read once. */
static double
start_time(double hz, uint64_t start_ticks)
{
	static double t;
	char line[256];
	FILE *f;

	if (t > 0)
		return t;
	f = fopen("/proc/stat", "re");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long btime;

		if (sscanf(line, "btime %llu", &btime) == 1) {
			t = (double)btime + (double)start_ticks / hz;
			break;
		}
	}
	if (f)
		fclose(f);
	return t;
}

void
prom_process(prom_t *p, const char *program)
{
	char buf[1024], *s;
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long rss = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	size_t n = 0, fds = 0;
	struct rlimit rl;
	struct mallinfo2 mi = mallinfo2();
	FILE *f = fopen("/proc/self/stat", "re");
	DIR *d;

	prom_family(p, "shoal_build_info", "gauge",
	    "The shoal program serving these metrics, and its version.");
	prom_begin(p, "shoal_build_info");
	prom_label(p, "version", PACKAGE_VERSION);
	prom_label(p, "program", program);
	prom_value_uint(p, 1);
	if (f) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	/* After the command name, which may hold spaces and parentheses. */
	s = strrchr(buf, ')');
	if (!s ||
	    sscanf(s + 2,
	        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	        "%llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
	        &utime, &stime, &start, &vsize, &rss) != 5)
		return;
	if (hz <= 0)
		hz = 100;
	if ((d = opendir("/proc/self/fd"))) {
		while (readdir(d))
			fds++;
		closedir(d);
		fds = fds > 3 ? fds - 3 : 0; /* ., .. and this one */
	}
	prom_family(p, "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.");
	prom_gauge(p, "process_cpu_seconds_total",
	    (double)(utime + stime) / hz);
	prom_family(p, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.");
	prom_count(p, "process_resident_memory_bytes",
	    (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page);
	prom_family(p, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes.");
	prom_count(p, "process_virtual_memory_bytes", vsize);
	prom_family(p, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	prom_gauge(p, "process_start_time_seconds", start_time(hz, start));
	prom_family(p, "process_open_fds", "gauge",
	    "Number of open file descriptors.");
	prom_count(p, "process_open_fds", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		prom_family(p, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.");
		prom_count(p, "process_max_fds", (uint64_t)rl.rlim_cur);
	}
	prom_family(p, "shoal_heap_in_use_bytes", "gauge",
	    "malloc()ed bytes in use (glibc's mallinfo2; 0 under another "
	    "allocator): what grows if memory leaks, unlike RSS, which also "
	    "moves with fragmentation and shared pages.");
	prom_count(p, "shoal_heap_in_use_bytes",
	    (uint64_t)(mi.uordblks + mi.hblkhd));
}
