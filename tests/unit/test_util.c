/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The duration and size syntax of the user-facing contract, RFC 3339
 * formatting, identifier rules, labels and shoal_strerror().
 */
#include "autoconf.h"

#include <errno.h>
#include <string.h>

#include "common/error.h"
#include "common/labels.h"
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
		{ "3", 3000 },
		{ "0s", 0 },
	};
	static const char *const bad[] = { "", "abc", "10x", "-1", "s", "1.5s",
		"10 s", "5ms5", "99999999999999999999s" };
	uint64_t v;
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(name, sizeof name, "duration '%s'", good[i].in);
		v = 1;
		ok(parse_duration_ms(good[i].in, &v) == 0 && v == good[i].ms,
		    name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(name, sizeof name, "duration '%s' is refused", bad[i]);
		ok(parse_duration_ms(bad[i], &v) < 0, name);
	}
	ok(parse_duration_ms(NULL, &v) < 0, "a NULL duration is refused");
	is_int(parse_duration_ms("18446744073709551615s", &v), -ERANGE,
	    "an overflowing duration is out of range");
}

static void
test_sizes(void)
{
	uint64_t v;

	ok(parse_size_bytes("512Mi", &v) == 0 && v == 512ULL << 20, "512Mi");
	ok(parse_size_bytes("2Gi", &v) == 0 && v == 2ULL << 30, "2Gi");
	ok(parse_size_bytes("1G", &v) == 0 && v == 1000000000ULL, "1G");
	ok(parse_size_bytes("4096", &v) == 0 && v == 4096, "bare bytes");
	ok(parse_size_bytes("1Q", &v) < 0, "an unknown unit is refused");
	ok(parse_size_bytes("", &v) < 0, "an empty size is refused");
	ok(parse_size_bytes("99999999999Ti", &v) == -ERANGE,
	    "an overflowing size is out of range");
	ok(parse_uint("42", 100, &v) == 0 && v == 42, "parse_uint");
	is_int(parse_uint("101", 100, &v), -ERANGE, "parse_uint upper bound");
	ok(parse_uint("4x", 100, &v) < 0, "parse_uint refuses trailing text");
}

static void
test_time_and_ids(void)
{
	char buf[RFC3339_LEN], id[80];

	format_rfc3339(1795919533120ULL, buf);
	is_str(buf, "2026-11-29T02:32:13.120Z", "RFC 3339 with milliseconds");
	format_rfc3339(0, buf);
	is_str(buf, "1970-01-01T00:00:00.000Z", "the epoch");

	ok(node_id_valid("gpu-01.rack3_a"), "a node id");
	ok(!node_id_valid(""), "an empty node id is refused");
	ok(!node_id_valid("-gpu"), "a node id may not start with '-'");
	ok(!node_id_valid("../etc"), "a node id may not hold a path");
	ok(!node_id_valid("a b"), "a node id may not hold a space");
	memset(id, 'a', sizeof id);
	id[63] = '\0';
	ok(node_id_valid(id), "63 characters are allowed");
	id[63] = 'a';
	id[64] = '\0';
	ok(!node_id_valid(id), "64 characters are not");
	ok(label_key_valid("topology.kubernetes.io/zone"), "a label key");
	ok(!label_key_valid(""), "an empty label key is refused");
	ok(!label_key_valid("a=b"), "'=' in a label key is refused");
	ok(label_value_valid(""), "an empty label value is allowed");
	ok(!label_value_valid("a/b"), "'/' in a label value is refused");

	uint32_t lo = 100, hi = 0;
	for (int i = 0; i < 1000; i++) {
		uint32_t r = random_below(10);

		lo = r < lo ? r : lo;
		hi = r > hi ? r : hi;
	}
	ok(lo == 0 && hi == 9, "random_below covers [0, n)");
	is_int(random_below(0), 0, "random_below(0) is 0");
}

static void
test_labels(void)
{
	labels_t l = { 0 };
	char key[16];
	int r = 0;

	is_int(labels_set(&l, "gpu", "a100"), 0, "set a label");
	is_int(labels_parse(&l, "rack=r3"), 0, "parse k=v");
	is_str(labels_get(&l, "rack"), "r3", "get it back");
	is_int(labels_set(&l, "gpu", "h100"), 0, "replace a label");
	is_str(labels_get(&l, "gpu"), "h100", "the new value wins");
	is_int(l.n, 2, "replacing does not add");
	ok(labels_get(&l, "zone") == NULL, "an absent label is NULL");
	is_int(labels_parse(&l, "=v"), -EINVAL, "'=v' is refused");
	is_int(labels_parse(&l, "k"), -EINVAL, "'k' is refused");
	is_int(labels_parse(&l, "k=v w"), -EINVAL, "a space is refused");
	labels_clear(&l);
	ok(l.n == 0 && l.v == NULL, "clear empties");
	for (int i = 0; i < LABELS_MAX + 1 && r == 0; i++) {
		snprintf(key, sizeof key, "k%d", i);
		r = labels_set(&l, key, "v");
	}
	is_int(r, -E2BIG, "labels are capped");
	is_int(l.n, LABELS_MAX, "at LABELS_MAX");
	labels_clear(&l);
}

int
main(void)
{
	test_durations();
	test_sizes();
	test_time_and_ids();
	test_labels();
	is_str(shoal_strerror(SHOAL_E_STORE_FULL), "state store full",
	    "shoal_strerror names shoal codes");
	is_str(shoal_strerror(-ENOENT), strerror(ENOENT),
	    "shoal_strerror names errno codes");
	ok(shoal_strerror(-999999) != NULL, "never NULL");
	return done_testing();
}
