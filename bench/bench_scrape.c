/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Prometheus-like scraper for the metrics benchmarks: GETs URL N times
 * over one kept-alive connection (as Prometheus does), asks for the
 * uncompressed text (Prometheus asks for gzip; node_exporter then spends
 * extra CPU compressing, shoal serves plain text either way, so plain text
 * for both keeps the comparison about collecting and rendering), and prints
 * the latency distribution, the size of the last answer and its number of
 * samples (lines that are not comments).
 *
 * usage: bench_scrape URL [N] [INTERVAL_MS]
 * prints: url n median_us p90_us p99_us max_us bytes samples
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/util.h"

typedef struct body {
	char *data;
	size_t len, cap;
} body_t;

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	body_t *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t
count_samples(const body_t *b)
{
	size_t n = 0;

	for (const char *p = b->data; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (*p != '#' && *p != '\n')
			n++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

int
main(int argc, char **argv)
{
	const char *url;
	unsigned long n = 1000, interval_ms = 0;
	uint64_t *lat;
	body_t b = { 0 };
	CURL *curl;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: bench_scrape URL [N] [INTERVAL_MS]\n");
		return 2;
	}
	url = argv[1];
	if (argc > 2)
		n = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		interval_ms = strtoul(argv[3], NULL, 10);
	if (n == 0)
		n = 1;
	lat = xcalloc(n, sizeof *lat);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	for (unsigned long i = 0; i < n; i++) {
		uint64_t t0 = mono_us();
		long status = 0;
		CURLcode cc;

		b.len = 0;
		cc = curl_easy_perform(curl);
		lat[i] = mono_us() - t0;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK || status != 200) {
			fprintf(stderr, "bench_scrape: %s: %s (status %ld)\n",
			    url, curl_easy_strerror(cc), status);
			return 1;
		}
		if (interval_ms)
			usleep((useconds_t)interval_ms * 1000);
	}
	qsort(lat, n, sizeof *lat, cmp_u64);
	printf("%s %lu %llu %llu %llu %llu %zu %zu\n", url, n,
	    (unsigned long long)lat[n / 2], (unsigned long long)lat[n * 9 / 10],
	    (unsigned long long)lat[n * 99 / 100],
	    (unsigned long long)lat[n - 1], b.len, count_samples(&b));
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	free(b.data);
	free(lat);
	return 0;
}
