/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/util.c and common/error.c: the duration and size syntax of the
 * user-facing contract, parse_uint's bounds, RFC 3339 formatting, the
 * identifier rules for node ids and labels, random_below() and
 * shoal_strerror().
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "tests/tap.h"

static void
test_durations(void)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} good[] = {
		{ "500ms", 500 },
		{ "10s", 10000 },
		{ "5m", 300000 },
		{ "1h", 3600000 },
		{ "1h30m", 5400000 },
		{ "1m30s", 90000 },
		{ "1s500ms", 1500 },
		{ "3", 3000 },
		{ "0", 0 },
		{ "0s", 0 },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "5124095576030h", 5124095576030ULL * 3600000 },
	};
	static const char *const bad[] = { "", "abc", "10x", "-1", "s", "ms",
		"1.5s", "10 s", " 10s", "10s ", "5ms5", "1m30", "10S", "10mss",
		"+5s" };
	uint64_t v;
	char name[96];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(name, sizeof name, "duration '%s' is %llu ms",
		    good[i].in, (unsigned long long)good[i].ms);
		v = 1;
		if (!ok(parse_duration_ms(good[i].in, &v) == 0 &&
		            v == good[i].ms,
		        name))
			diag("got %llu", (unsigned long long)v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(name, sizeof name, "duration '%s' is -EINVAL", bad[i]);
		v = 7;
		is_int(parse_duration_ms(bad[i], &v), -EINVAL, name);
	}
	v = 7;
	ok(parse_duration_ms("x", &v) < 0 && v == 7,
	    "a refused duration leaves the result alone");
	is_int(parse_duration_ms(NULL, &v), -EINVAL, "a NULL duration");

	/* Overflow in the number itself, in the unit and in the sum. */
	is_int(parse_duration_ms("99999999999999999999s", &v), -ERANGE,
	    "a number above 2^64 is -ERANGE");
	is_int(parse_duration_ms("18446744073709551615s", &v), -ERANGE,
	    "seconds that overflow in milliseconds are -ERANGE");
	is_int(parse_duration_ms("18446744073709552", &v), -ERANGE,
	    "a bare number that overflows in milliseconds is -ERANGE");
	is_int(parse_duration_ms("18446744073709551615ms1ms", &v), -ERANGE,
	    "a sum that overflows is -ERANGE");
	is_int(parse_duration_ms("5124095576031h", &v), -ERANGE,
	    "hours that overflow are -ERANGE");
}

static void
test_sizes(void)
{
	static const struct {
		const char *in;
		uint64_t bytes;
	} good[] = {
		{ "512Mi", 512ULL << 20 },
		{ "2Gi", 2ULL << 30 },
		{ "1G", 1000000000ULL },
		{ "4096", 4096 },
		{ "0", 0 },
		{ "1Ki", 1024 },
		{ "1k", 1000 },
		{ "3Ti", 3ULL << 40 },
		{ "16777215Ti", 16777215ULL << 40 },
	};
	static const char *const bad[] = { "1Q", "", "Gi", "1.5Gi", "1 Gi",
		"-1", "1gi", "1Gib", "1GiB" };
	uint64_t v;
	char name[96];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(name, sizeof name, "size '%s'", good[i].in);
		v = 1;
		if (!ok(parse_size_bytes(good[i].in, &v) == 0 &&
		            v == good[i].bytes,
		        name))
			diag("got %llu", (unsigned long long)v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(name, sizeof name, "size '%s' is -EINVAL", bad[i]);
		is_int(parse_size_bytes(bad[i], &v), -EINVAL, name);
	}
	is_int(parse_size_bytes("16777216Ti", &v), -ERANGE,
	    "a size of 2^64 bytes is -ERANGE");
	is_int(parse_size_bytes(NULL, &v), -EINVAL, "a NULL size");
}

static void
test_uint(void)
{
	uint64_t v;

	ok(parse_uint("42", 100, &v) == 0 && v == 42, "parse_uint");
	ok(parse_uint("100", 100, &v) == 0 && v == 100,
	    "max itself is allowed");
	is_int(parse_uint("101", 100, &v), -ERANGE, "max + 1 is -ERANGE");
	ok(parse_uint("0", 0, &v) == 0 && v == 0, "0 with max 0");
	is_int(parse_uint("1", 0, &v), -ERANGE, "1 with max 0");
	ok(parse_uint("007", 10, &v) == 0 && v == 7, "leading zeros");
	ok(parse_uint("18446744073709551615", UINT64_MAX, &v) == 0 &&
	        v == UINT64_MAX,
	    "2^64 - 1 parses with max UINT64_MAX");
	is_int(parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE,
	    "2^64 is -ERANGE");
	is_int(parse_uint("4x", 100, &v), -EINVAL, "trailing text");
	is_int(parse_uint("", 100, &v), -EINVAL, "an empty string");
	is_int(parse_uint("-1", 100, &v), -EINVAL, "a minus sign");
	is_int(parse_uint("+1", 100, &v), -EINVAL, "a plus sign");
	is_int(parse_uint(" 1", 100, &v), -EINVAL, "leading space");
	v = 9;
	parse_uint("101", 100, &v);
	is_int(v, 9, "a refused number leaves the result alone");
}

static void
test_format_bytes(void)
{
	static const struct {
		uint64_t in;
		const char *out;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 2261570, "2.2 MiB" },
		{ 16ull << 20, "16.0 MiB" },
		{ 64ull << 30, "64.0 GiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		format_bytes(cases[i].in, buf, sizeof buf);
		okf(strcmp(buf, cases[i].out) == 0, "format_bytes: %s (got %s)",
		    cases[i].out, buf);
	}
}

static void
test_rfc3339(void)
{
	char buf[RFC3339_LEN];

	format_rfc3339(1795919533120ULL, buf);
	is_str(buf, "2026-11-29T02:32:13.120Z", "RFC 3339 with milliseconds");
	format_rfc3339(0, buf);
	is_str(buf, "1970-01-01T00:00:00.000Z", "the epoch");
	format_rfc3339(1000000000005ULL, buf);
	is_str(buf, "2001-09-09T01:46:40.005Z", "milliseconds are zero-padded");
	format_rfc3339(951782400999ULL, buf);
	is_str(buf, "2000-02-29T00:00:00.999Z", "a leap day");
}

/* A string of n copies of c, in buf (at least n + 1 bytes). */
static const char *
repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void
test_ids(void)
{
	char s[80];

	ok(node_id_valid("gpu-01.rack3_a"), "a node id");
	ok(node_id_valid("7"), "a one-digit node id");
	ok(node_id_valid("A"), "a one-letter node id");
	ok(!node_id_valid(""), "an empty node id is refused");
	ok(!node_id_valid(NULL), "a NULL node id is refused");
	ok(!node_id_valid("-gpu"), "a node id may not start with '-'");
	ok(!node_id_valid(".gpu"), "a node id may not start with '.'");
	ok(!node_id_valid("_gpu"), "a node id may not start with '_'");
	ok(!node_id_valid("../etc"), "a node id may not hold a path");
	ok(!node_id_valid("a/b"), "a node id may not hold '/'");
	ok(!node_id_valid("a b"), "a node id may not hold a space");
	ok(!node_id_valid("gpu\n"), "a node id may not hold a newline");
	ok(!node_id_valid("gp\xc3\xbc"), "a node id is ASCII only");
	ok(node_id_valid(repeat(s, 'a', NODE_ID_MAX)),
	    "a node id of 63 characters");
	ok(!node_id_valid(repeat(s, 'a', NODE_ID_MAX + 1)),
	    "a node id of 64 characters is refused");

	ok(label_key_valid("topology.kubernetes.io/zone"), "a label key");
	ok(label_key_valid("-x"), "a label key may start with '-'");
	ok(!label_key_valid(""), "an empty label key is refused");
	ok(!label_key_valid(NULL), "a NULL label key is refused");
	ok(!label_key_valid("a=b"), "'=' in a label key is refused");
	ok(!label_key_valid("a b"), "a space in a label key is refused");
	ok(!label_key_valid("a:b"), "':' in a label key is refused");
	ok(label_key_valid(repeat(s, 'k', LABEL_MAX)),
	    "a label key of 63 characters");
	ok(!label_key_valid(repeat(s, 'k', LABEL_MAX + 1)),
	    "a label key of 64 characters is refused");

	ok(label_value_valid("a100_x-1.2"), "a label value");
	ok(label_value_valid(""), "an empty label value is allowed");
	ok(!label_value_valid(NULL), "a NULL label value is refused");
	ok(!label_value_valid("a/b"), "'/' in a label value is refused");
	ok(!label_value_valid("a=b"), "'=' in a label value is refused");
	ok(!label_value_valid("a\tb"), "a tab in a label value is refused");
	ok(label_value_valid(repeat(s, 'v', LABEL_MAX)),
	    "a label value of 63 characters");
	ok(!label_value_valid(repeat(s, 'v', LABEL_MAX + 1)),
	    "a label value of 64 characters is refused");
}

static void
test_random(void)
{
	unsigned seen[10] = { 0 };
	uint32_t r, above = 0, ones = 0;

	for (int i = 0; i < 2000; i++) {
		r = random_below(10);
		if (r >= 10)
			above++;
		else
			seen[r]++;
	}
	is_int(above, 0, "random_below(10) stays below 10");
	r = 0;
	for (int i = 0; i < 10; i++)
		r += seen[i] > 0;
	is_int(r, 10, "and gives every value in [0, 10)");
	for (int i = 0; i < 100; i++)
		ones += random_below(1);
	is_int(ones, 0, "random_below(1) is always 0");
	is_int(random_below(0), 0, "random_below(0) is 0");
	above = 0;
	for (int i = 0; i < 1000; i++)
		above += random_below(UINT32_MAX) == UINT32_MAX;
	is_int(above, 0, "random_below(UINT32_MAX) stays below it");
}

static void
test_strerror(void)
{
	is_str(shoal_strerror(SHOAL_E_STORE_FULL), "state store full",
	    "shoal_strerror names shoal codes");
	is_str(shoal_strerror(-ENOENT), strerror(ENOENT),
	    "shoal_strerror names errno codes");
	is_str(shoal_strerror(0), "success", "shoal_strerror(0)");
	for (int c = SHOAL_E_BASE; c >= SHOAL_E_LAST; c--) {
		const char *s = shoal_strerror(c);

		if (!s || !*s) {
			ok(0, "every shoal code has a name");
			diag("code %d has none", c);
			return;
		}
	}
	ok(1, "every shoal code has a name");
	ok(shoal_strerror(-999999) != NULL, "an unknown code is not NULL");
	ok(shoal_strerror(SHOAL_E_LAST - 1) != NULL,
	    "the code after the last is not NULL");
}

int
main(void)
{
	test_durations();
	test_sizes();
	test_uint();
	test_format_bytes();
	test_rfc3339();
	test_ids();
	test_random();
	test_strerror();
	return done_testing();
}
