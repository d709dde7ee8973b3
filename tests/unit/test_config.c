/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The YAML config loader: a good file, and every way a file is refused
 * (unknown key, wrong type, bad value, syntax error, duplicate) with the
 * file, line and key named and the target left exactly as it was.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/util.h"
#include "tests/tap.h"

typedef struct target {
	char *name;
	char *note;
	uint64_t interval_ms;
	uint64_t count;
	labels_t labels;
} target_t;

#define F(x) offsetof(target_t, x)
static const config_field_t fields[] = {
	{ "name", CONFIG_STRING, F(name), 0, 0, node_id_valid, "a node id" },
	{ "note", CONFIG_STRING, F(note) },
	{ "interval", CONFIG_DURATION, F(interval_ms), 100, 60000 },
	{ "count", CONFIG_UINT, F(count), 1, 10 },
	{ "labels", CONFIG_LABELS, F(labels) },
	{ NULL },
};

static char dir[] = "/tmp/shoal-test-config.XXXXXX";
static char path[256];

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void
defaults(target_t *t)
{
	memset(t, 0, sizeof *t);
	t->name = xstrdup("default");
	t->interval_ms = 5000;
	t->count = 3;
	labels_set(&t->labels, "keep", "me");
}

static int
unchanged(const target_t *t)
{
	return strcmp(t->name, "default") == 0 && t->note == NULL &&
	    t->interval_ms == 5000 && t->count == 3 && t->labels.n == 1 &&
	    strcmp(labels_get(&t->labels, "keep"), "me") == 0;
}

/* Loads text; expects a refusal whose message holds every needle. */
static void
refused(const char *text, const char *what, const char *needle1,
    const char *needle2)
{
	char err[512] = "", name[160], where[300];
	target_t t;
	int r;

	defaults(&t);
	write_file(text);
	r = config_load(path, fields, &t, err, sizeof err);
	snprintf(name, sizeof name, "%s is refused", what);
	is_int(r, SHOAL_E_CONFIG, name);
	snprintf(where, sizeof where, "%s:%s", path, needle1);
	snprintf(name, sizeof name, "%s: the error names file and line", what);
	if (!ok(strstr(err, where) != NULL, name))
		diag("error: %s", err);
	if (needle2) {
		snprintf(name, sizeof name, "%s: the error names '%s'", what,
		    needle2);
		if (!ok(strstr(err, needle2) != NULL, name))
			diag("error: %s", err);
	}
	snprintf(name, sizeof name, "%s: the target is unchanged", what);
	ok(unchanged(&t), name);
	config_free(fields, &t);
}

int
main(void)
{
	char err[512];
	target_t t;
	int r;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof path, "%s/test.yaml", dir);

	defaults(&t);
	write_file("# a comment\n"
	           "name: gpu-01\n"
	           "note: \"quoted: text\"\n"
	           "interval: 1500ms\n"
	           "count: 7\n"
	           "labels:\n"
	           "  gpu: a100\n"
	           "  rack: r3\n");
	r = config_load(path, fields, &t, err, sizeof err);
	if (!ok(r == 0, "a good file loads"))
		diag("error: %s", err);
	is_str(t.name, "gpu-01", "string");
	is_str(t.note, "quoted: text", "quoted string");
	is_int(t.interval_ms, 1500, "duration");
	is_int(t.count, 7, "uint");
	is_int(t.labels.n, 2, "labels replace the defaults");
	is_str(labels_get(&t.labels, "rack"), "r3", "label value");
	config_free(fields, &t);
	ok(t.name == NULL && t.labels.n == 0, "config_free frees and clears");

	defaults(&t);
	write_file("");
	is_int(config_load(path, fields, &t, err, sizeof err), 0,
	    "an empty file loads");
	ok(unchanged(&t), "and sets nothing");
	config_free(fields, &t);

	defaults(&t);
	write_file("count: 5\n");
	config_load(path, fields, &t, err, sizeof err);
	ok(t.count == 5 && strcmp(t.name, "default") == 0,
	    "keys the file does not name keep their defaults");
	config_free(fields, &t);

	refused("name: gpu-01\nheartbeet: 5s\n", "an unknown key",
	    "2:", "key 'heartbeet': unknown setting");
	refused("name: x\ninterval: fast\n", "a bad duration",
	    "2:", "key 'interval'");
	refused("interval: 10ms\n", "a duration below its minimum",
	    "1:", "key 'interval'");
	refused("interval: 2m\n", "a duration above its maximum",
	    "1:", "out of range");
	refused("\n\ncount: abc\n", "a non-numeric uint", "3:", "key 'count'");
	refused("count: 11\n", "a uint above its maximum", "1:", "key 'count'");
	refused("count: 0\n", "a uint below its minimum", "1:", "key 'count'");
	refused("labels: [a, b]\n", "labels given as a list",
	    "1:", "key 'labels'");
	refused("labels:\n  bad key: v\n", "a bad label name",
	    "2:", "key 'labels'");
	refused("name: {a: b}\n", "a mapping for a string", "1:", "key 'name'");
	refused("name: -bad\n", "a string failing its check",
	    "1:", "expected a node id");
	refused("name:\n", "a key without a value", "1:", "has no value");
	refused("count: 1\ncount: 2\n", "a duplicate key", "2:", "given twice");
	refused("- a\n- b\n", "a list at the top", "1:", "mapping");
	refused("name: [unclosed\n", "a YAML syntax error",
	    "2:", "YAML syntax error");
	/* A good key after a bad one must not have been applied. */
	refused("count: 9\nname: gpu-02\nbogus: 1\n",
	    "a file bad only at its end", "3:", "bogus");

	defaults(&t);
	snprintf(path, sizeof path, "%s/missing.yaml", dir);
	r = config_load(path, fields, &t, err, sizeof err);
	is_int(r, -ENOENT, "a missing file is -ENOENT");
	ok(strstr(err, "missing.yaml") != NULL, "and the error names it");
	config_free(fields, &t);

	snprintf(path, sizeof path, "rm -rf %s", dir);
	if (system(path) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
