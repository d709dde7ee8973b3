/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/labels.c: setting, replacing and reading labels, "key=value"
 * parsing, the character rules, the LABELS_MAX cap and labels_clear(). A
 * refused call must leave the set as it was.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/labels.h"
#include "common/util.h"
#include "tests/tap.h"

static void
test_set_get(void)
{
	labels_t l = { 0 };

	ok(labels_get(&l, "gpu") == NULL, "an empty set has no labels");
	is_int(labels_set(&l, "gpu", "a100"), 0, "set a label");
	is_int(labels_set(&l, "rack", "r3"), 0, "set another");
	is_int(l.n, 2, "two labels");
	is_str(labels_get(&l, "gpu"), "a100", "get the first");
	is_str(labels_get(&l, "rack"), "r3", "get the second");
	is_str(l.v[0].key, "gpu", "labels keep the order they were set in");
	is_int(labels_set(&l, "gpu", "h100"), 0, "replace a label");
	is_str(labels_get(&l, "gpu"), "h100", "the new value wins");
	is_int(l.n, 2, "replacing does not add");
	is_str(l.v[0].key, "gpu", "replacing keeps the position");
	ok(labels_get(&l, "zone") == NULL, "an absent label is NULL");
	ok(labels_get(&l, "GPU") == NULL, "keys are case-sensitive");
	is_int(labels_set(&l, "zone", ""), 0, "an empty value is allowed");
	is_str(labels_get(&l, "zone"), "", "and reads back empty");
	labels_clear(&l);
	ok(l.n == 0 && l.v == NULL, "labels_clear empties the set");
	labels_clear(&l);
	ok(l.n == 0 && l.v == NULL, "clearing an empty set is fine");
	is_int(labels_set(&l, "gpu", "a100"), 0, "a cleared set is usable");
	labels_clear(&l);
}

static void
test_refused(void)
{
	static const struct {
		const char *key, *value, *name;
	} bad[] = {
		{ "", "v", "an empty key" },
		{ "a b", "v", "a space in a key" },
		{ "a=b", "v", "'=' in a key" },
		{ "k\xc3\xa9", "v", "a non-ASCII key" },
		{ "k", "a/b", "'/' in a value" },
		{ "k", "a b", "a space in a value" },
		{ "k", "a\nb", "a newline in a value" },
	};
	labels_t l = { 0 };
	char name[96], big[80];

	labels_set(&l, "keep", "me");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(name, sizeof name, "%s is -EINVAL", bad[i].name);
		is_int(labels_set(&l, bad[i].key, bad[i].value), -EINVAL, name);
	}
	memset(big, 'k', LABEL_MAX + 1);
	big[LABEL_MAX + 1] = '\0';
	is_int(labels_set(&l, big, "v"), -EINVAL, "a 64-character key");
	is_int(labels_set(&l, "k", big), -EINVAL, "a 64-character value");
	big[LABEL_MAX] = '\0';
	is_int(labels_set(&l, big, big), 0, "63 characters for both");
	is_int(labels_set(&l, "keep", "a/b"), -EINVAL,
	    "a bad value for an existing key");
	is_int(l.n, 2, "refused labels are not added");
	is_str(labels_get(&l, "keep"), "me", "nor do they replace");
	labels_clear(&l);
}

static void
test_parse(void)
{
	static const char *const bad[] = { "=v", "k", "", "=", "k=v w", "k=a=b",
		"k v=x", "k=a/b" };
	labels_t l = { 0 };
	char name[96];

	is_int(labels_parse(&l, "rack=r3"), 0, "parse k=v");
	is_str(labels_get(&l, "rack"), "r3", "the parsed value");
	is_int(labels_parse(&l, "topology.io/zone=eu-1"), 0,
	    "parse a key with '/'");
	is_str(labels_get(&l, "topology.io/zone"), "eu-1", "its value");
	is_int(labels_parse(&l, "empty="), 0, "parse k= (empty value)");
	is_str(labels_get(&l, "empty"), "", "the empty value");
	is_int(labels_parse(&l, "rack=r4"), 0, "parse replaces");
	is_str(labels_get(&l, "rack"), "r4", "the replaced value");
	is_int(l.n, 3, "three labels");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(name, sizeof name, "'%s' is -EINVAL", bad[i]);
		is_int(labels_parse(&l, bad[i]), -EINVAL, name);
	}
	is_int(l.n, 3, "refused parses add nothing");
	labels_clear(&l);
}

static void
test_cap(void)
{
	labels_t l = { 0 };
	char key[16];
	int r = 0, i;

	for (i = 0; i < LABELS_MAX && r == 0; i++) {
		snprintf(key, sizeof key, "k%d", i);
		r = labels_set(&l, key, "v");
	}
	is_int(r, 0, "LABELS_MAX labels can be set");
	is_int(l.n, LABELS_MAX, "and are all there");
	is_int(labels_set(&l, "one-more", "v"), -E2BIG, "one more is -E2BIG");
	is_int(labels_parse(&l, "one-more=v"), -E2BIG,
	    "one more by parsing is -E2BIG");
	is_int(l.n, LABELS_MAX, "the set stays at LABELS_MAX");
	ok(labels_get(&l, "one-more") == NULL, "and does not hold it");
	is_int(labels_set(&l, "k0", "new"), 0, "a full set still replaces");
	is_str(labels_get(&l, "k0"), "new", "the replaced value");
	is_str(labels_get(&l, "k63"), "v", "the last label is intact");
	labels_clear(&l);
	is_int(labels_set(&l, "one-more", "v"), 0,
	    "after labels_clear there is room again");
	labels_clear(&l);
}

int
main(void)
{
	test_set_get();
	test_refused();
	test_parse();
	test_cap();
	return done_testing();
}
