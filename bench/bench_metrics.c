/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's collector on this host's real /proc, in process: what one
 * sample costs the loop (every file read and parsed; statvfs runs on its
 * own thread) and one rendering of the node_* families, median of many;
 * then, per file, how much of that is the kernel writing the file (a bare
 * pread) and how much is shoal parsing it; and the allocations a steady
 * state makes (none are expected: RSS before and after).
 *
 * usage: bench_metrics [N]   (default 2000; 2 ms apart)
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/metrics.h"
#include "agent/procfs.h"
#include "common/util.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u64);
	return v[n / 2];
}

static procfs_stat_t st;
static procfs_meminfo_t mi;
static procfs_diskstats_t ds;
static procfs_netdevs_t nd;
static procfs_mounts_t mt;

static int
parse_stat(const char *b, size_t n)
{
	return procfs_parse_stat(b, n, &st, NULL, 0);
}

static int
parse_meminfo(const char *b, size_t n)
{
	return procfs_parse_meminfo(b, n, &mi, NULL, 0);
}

static int
parse_diskstats(const char *b, size_t n)
{
	return procfs_parse_diskstats(b, n, &ds, NULL, 0);
}

static int
parse_netdev(const char *b, size_t n)
{
	return procfs_parse_netdev(b, n, &nd, NULL, 0);
}

static int
parse_mounts(const char *b, size_t n)
{
	return procfs_parse_mounts(b, n, &mt, NULL, 0);
}

/* The kernel's share and ours, per file. */
static void
per_file(unsigned long n)
{
	static const struct {
		const char *path;
		int (*parse)(const char *, size_t);
	} f[] = {
		{ "/proc/stat", parse_stat },
		{ "/proc/meminfo", parse_meminfo },
		{ "/proc/diskstats", parse_diskstats },
		{ "/proc/net/dev", parse_netdev },
		{ "/proc/self/mounts", parse_mounts },
	};
	static char buf[1 << 20];
	uint64_t *tk = xcalloc(n, sizeof *tk), *tp = xcalloc(n, sizeof *tp);

	printf("\n| file | bytes | kernel: reading it, µs (median) | shoal: "
	       "parse µs "
	       "(median) |\n");
	printf("| --- | ---: | ---: | ---: |\n");
	for (size_t k = 0; k < ARRAY_SIZE(f); k++) {
		int fd = open(f[k].path, O_RDONLY | O_CLOEXEC);
		ssize_t len = 0;

		if (fd < 0)
			continue;
		for (unsigned long i = 0; i < n; i++) {
			uint64_t t0 = mono_us();
			ssize_t r;

			/* the whole file: a page or so a read, until 0 */
			len = 0;
			while ((r = pread(fd, buf + len,
			            sizeof buf - (size_t)len, len)) > 0)
				len += r;
			tk[i] = mono_us() - t0;
		}
		close(fd);
		if (len <= 0)
			continue;
		for (unsigned long i = 0; i < n; i++) {
			uint64_t t0 = mono_us();

			if (f[k].parse(buf, (size_t)len) != 0)
				break;
			tp[i] = mono_us() - t0;
		}
		printf("| %s | %zd | %llu | %llu |\n", f[k].path, len,
		    (unsigned long long)median(tk, n),
		    (unsigned long long)median(tp, n));
	}
	free(tk);
	free(tp);
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
		/* The agent samples every few seconds: leave the statvfs
		 * thread time to answer, as it has between two samples. */
		usleep(2000);
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
	printf(
	    "| one sample, the loop's share (shoal collector) | %lu | %llu | "
	    "%llu |\n",
	    n, (unsigned long long)ts[n / 2],
	    (unsigned long long)ts[n * 99 / 100]);
	printf("| render node_* text (%zu samples, %zu bytes) | %lu | %llu | "
	       "%llu |\n",
	    p.samples, p.len, n, (unsigned long long)tr[n / 2],
	    (unsigned long long)tr[n * 99 / 100]);
	printf("\nRSS before the loop %ld KiB, after %lu samples %ld KiB\n",
	    rss0, n, rss1);
	per_file(n);
	prom_free(&p);
	metrics_destroy(&m);
	free(ts);
	free(tr);
	return 0;
}
