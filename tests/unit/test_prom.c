/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/prom.c: the exposition text of families, samples, label escaping,
 * number formatting (integers, fractions, NaN and infinities) and
 * histograms; common/httpd.c's HOST:PORT syntax.
 */
#include "autoconf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/httpd.h"
#include "common/prom.h"
#include "common/util.h"
#include "tests/tap.h"

static void
test_samples(void)
{
	prom_t p = { 0 };

	prom_family(&p, "shoal_x_total", "counter", "A help\nwith \\ in it.");
	is_str(p.buf,
	    "# HELP shoal_x_total A help\\nwith \\\\ in it.\n"
	    "# TYPE shoal_x_total counter\n",
	    "HELP escapes backslash and newline; TYPE follows");
	prom_reset(&p);
	ok(p.len == 0 && p.buf[0] == '\0', "reset empties the text");

	prom_begin(&p, "m");
	prom_label(&p, "a", "x\"y\\z\nw");
	prom_label_uint(&p, "cpu", 12);
	prom_value_uint(&p, 18446744073709551615ULL);
	is_str(p.buf,
	    "m{a=\"x\\\"y\\\\z\\nw\",cpu=\"12\"} 18446744073709551615\n",
	    "label values escape quote, backslash and newline");
	prom_reset(&p);

	prom_begin(&p, "m");
	prom_label(&p, "mountpoint",
	    "/mnt/caf\xc3\xa9/\xff\xfe/\xe2\x82/\xed\xa0\x80/ok");
	prom_value_uint(&p, 1);
	is_str(p.buf,
	    "m{mountpoint=\"/mnt/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd/"
	    "\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd/"
	    "ok\"} 1\n",
	    "label values keep UTF-8, and bytes that are not become U+FFFD");
	prom_reset(&p);

	prom_gauge(&p, "a", 0);
	prom_gauge(&p, "b", 1.5);
	prom_gauge(&p, "c", NAN);
	prom_gauge(&p, "d", INFINITY);
	prom_gauge(&p, "e", -INFINITY);
	prom_gauge(&p, "f", 1e300);
	prom_gauge(&p, "g", -2);
	prom_count(&p, "h", 42);
	is_str(p.buf,
	    "a 0\nb 1.5\nc NaN\nd +Inf\ne -Inf\nf 1e+300\ng -2\nh 42\n",
	    "numbers: integers, fractions, NaN, infinities, exponents");
	is_int(p.samples, 8, "samples are counted");
	prom_reset(&p);

	{
		static const double bounds[] = { 0.01, 0.1, 1 };
		static const uint64_t counts[] = { 2, 0, 3 };

		prom_histogram(&p, "h_seconds", "service", "iris", bounds,
		    counts, 3, 2.25, 6);
		is_str(p.buf,
		    "h_seconds_bucket{service=\"iris\",le=\"0.01\"} 2\n"
		    "h_seconds_bucket{service=\"iris\",le=\"0.1\"} 2\n"
		    "h_seconds_bucket{service=\"iris\",le=\"1\"} 5\n"
		    "h_seconds_bucket{service=\"iris\",le=\"+Inf\"} 6\n"
		    "h_seconds_sum{service=\"iris\"} 2.25\n"
		    "h_seconds_count{service=\"iris\"} 6\n",
		    "a histogram's buckets are cumulative, +Inf is the count");
	}
	prom_reset(&p);
	for (int i = 0; i < 20000; i++)
		prom_count(&p, "a_long_metric_name_to_grow_the_buffer", i);
	ok(p.len == strlen(p.buf) && p.samples == 20000,
	    "the buffer grows as needed");
	prom_free(&p);
	ok(p.buf == NULL && p.len == 0, "free clears it");
}

static void
test_listen(void)
{
	static const struct {
		const char *in, *host;
		unsigned port;
	} good[] = {
		{ "127.0.0.1:9464", "127.0.0.1", 9464 },
		{ "*:9464", "*", 9464 },
		{ "[::1]:80", "::1", 80 },
		{ "localhost:0", "localhost", 0 },
	};
	static const char *const bad[] = { "", "9464", "127.0.0.1", ":9464",
		"127.0.0.1:", "127.0.0.1:65536", "::1:9464", "[::1]9464",
		"host:port", "a:1:2" };
	char host[64];
	unsigned port;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		okf(httpd_parse_listen(good[i].in, host, sizeof host, &port) ==
		            0 &&
		        strcmp(host, good[i].host) == 0 && port == good[i].port,
		    "listen '%s' is %s port %u", good[i].in, good[i].host,
		    good[i].port);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		okf(httpd_parse_listen(bad[i], host, sizeof host, &port) < 0 &&
		        !httpd_listen_valid(bad[i]),
		    "listen '%s' is refused", bad[i]);
	ok(httpd_listen_valid("off"), "off is a valid setting");
}

int
main(void)
{
	test_samples();
	test_listen();
	return done_testing();
}
