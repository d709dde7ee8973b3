/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's collector on this host's real /proc, in process: what one
 * sample (every file read and parsed, every file system's statvfs) and one
 * rendering of the node_* families cost, median of many, and the allocations
 * a steady state makes (none are expected: RSS before and after).
 *
 * usage: bench_metrics [N]   (default 2000)
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"
#include "common/util.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

int
main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	metrics_config_t cfg = { .proc_root = "/proc",
		.nvml_library = "off",
		.hostname = "bench",
		.interval_ms = 1000 };
	uint64_t *ts, *tr;
	metrics_t *m;
	prom_t p = { 0 };
	long rss0, rss1;

	if (n < 10)
		n = 10;
	ts = xcalloc(n, sizeof *ts);
	tr = xcalloc(n, sizeof *tr);
	metrics_new(NULL, &cfg, &m);
	metrics_render(m, &p);
	rss0 = rss_kib();
	for (unsigned long i = 0; i < n; i++) {
		uint64_t t0 = mono_us();

		metrics_sample(m);
		ts[i] = mono_us() - t0;
		t0 = mono_us();
		prom_reset(&p);
		metrics_render(m, &p);
		tr[i] = mono_us() - t0;
	}
	rss1 = rss_kib();
	qsort(ts, n, sizeof *ts, cmp_u64);
	qsort(tr, n, sizeof *tr, cmp_u64);
	printf("| operation | count | median µs | p99 µs |\n");
	printf("| --- | ---: | ---: | ---: |\n");
	printf("| sample /proc + statvfs (shoal collector) | %lu | %llu | "
	       "%llu |\n",
	    n, (unsigned long long)ts[n / 2],
	    (unsigned long long)ts[n * 99 / 100]);
	printf("| render node_* text (%zu samples, %zu bytes) | %lu | %llu | "
	       "%llu |\n",
	    p.samples, p.len, n, (unsigned long long)tr[n / 2],
	    (unsigned long long)tr[n * 99 / 100]);
	printf("\nRSS before the loop %ld KiB, after %lu samples %ld KiB\n",
	    rss0, n, rss1);
	prom_free(&p);
	metrics_destroy(&m);
	free(ts);
	free(tr);
	return 0;
}
