/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/config.c, the YAML config loader: a good file loads every type;
 * every way a file is refused (unknown key, wrong type, value out of range,
 * YAML syntax error, duplicate key, a second document) names the file, the
 * line and the key, and leaves the target exactly as it was; an empty file
 * sets nothing; a missing file is -ENOENT; a reload moves only the live
 * keys and names the rest. The files are written into a
 * mkdtemp() directory that is removed at the end.
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
	uint64_t grace_ms;
	uint64_t count;
	uint64_t big;
	uint64_t budget;
	labels_t labels;
} target_t;

#define F(x) offsetof(target_t, x)
static const config_field_t fields[] = {
	{ "name", CONFIG_STRING, F(name), 0, 0, node_id_valid, "a node id" },
	{ "note", CONFIG_STRING, F(note) },
	{ "interval", CONFIG_DURATION, F(interval_ms), 100, 60000 },
	{ "grace", CONFIG_DURATION, F(grace_ms), 1000, 0 }, /* no maximum */
	{ "count", CONFIG_UINT, F(count), 1, 10 },
	{ "big", CONFIG_UINT, F(big) }, /* any uint64_t */
	{ "budget", CONFIG_SIZE, F(budget) },
	{ "labels", CONFIG_LABELS, F(labels) },
	{ NULL },
};

static char dir[] = "/tmp/shoal-test-config.XXXXXX";
static char path[256];

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
defaults(target_t *t)
{
	memset(t, 0, sizeof *t);
	t->name = xstrdup("default");
	t->interval_ms = 5000;
	t->grace_ms = 2000;
	t->count = 3;
	t->big = 4;
	labels_set(&t->labels, "keep", "me");
}

static int
unchanged(const target_t *t)
{
	return t->name && strcmp(t->name, "default") == 0 && t->note == NULL &&
	    t->interval_ms == 5000 && t->grace_ms == 2000 && t->count == 3 &&
	    t->big == 4 && t->labels.n == 1 &&
	    strcmp(labels_get(&t->labels, "keep"), "me") == 0;
}

/* Loads text into a target holding the defaults. */
static int
load(const char *text, target_t *t, char *err, size_t errlen)
{
	defaults(t);
	write_file(text);
	err[0] = '\0';
	return config_load(path, fields, t, err, errlen);
}

/*
 * Expects text to be refused with an error that names "FILE:LINE:", the key
 * (when not NULL) as "key 'K'" and holds needle (when not NULL), and the
 * target to be left exactly as it was.
 */
static void
refused(const char *text, const char *what, int line, const char *key,
    const char *needle)
{
	char err[512], name[160], want[320];
	target_t t;
	int r;

	r = load(text, &t, err, sizeof err);
	snprintf(name, sizeof name, "%s is refused", what);
	is_int(r, SHOAL_E_CONFIG, name);
	snprintf(want, sizeof want, "%s:%d:", path, line);
	snprintf(name, sizeof name, "%s: the error names file and line %d",
	    what, line);
	if (!ok(strncmp(err, want, strlen(want)) == 0, name))
		diag("error: %s", err);
	if (key) {
		snprintf(want, sizeof want, "key '%s'", key);
		snprintf(name, sizeof name, "%s: the error names %s", what,
		    want);
		if (!ok(strstr(err, want) != NULL, name))
			diag("error: %s", err);
	}
	if (needle) {
		snprintf(name, sizeof name, "%s: the error says '%s'", what,
		    needle);
		if (!ok(strstr(err, needle) != NULL, name))
			diag("error: %s", err);
	}
	snprintf(name, sizeof name, "%s: the target is unchanged", what);
	ok(unchanged(&t), name);
	config_free(fields, &t);
}

static void
test_good(void)
{
	char err[512];
	target_t t;
	int r;

	r = load("# a comment\n"
	         "name: gpu-01\n"
	         "note: \"quoted: text\"\n"
	         "interval: 1m\n"
	         "grace: 1h30m\n"
	         "count: 10\n"
	         "big: 18446744073709551615\n"
	         "budget: 20Gi\n"
	         "labels:\n"
	         "  gpu: a100\n"
	         "  topology.io/zone: eu-1\n"
	         "  empty: \"\"\n",
	    &t, err, sizeof err);
	if (!ok(r == 0, "a good file loads"))
		diag("error: %s", err);
	is_str(t.name, "gpu-01", "string");
	is_str(t.note, "quoted: text", "quoted string");
	is_int(t.interval_ms, 60000, "duration at its maximum");
	is_int(t.grace_ms, 5400000, "duration without a maximum");
	is_int(t.count, 10, "uint at its maximum");
	ok(t.big == UINT64_MAX, "uint without bounds takes 2^64 - 1");
	ok(t.budget == 20ull << 30, "a size: 20Gi in bytes");
	is_int(t.labels.n, 3, "labels replace the defaults");
	ok(labels_get(&t.labels, "keep") == NULL, "the default label is gone");
	is_str(labels_get(&t.labels, "topology.io/zone"), "eu-1",
	    "a label value");
	is_str(labels_get(&t.labels, "empty"), "", "an empty label value");
	config_free(fields, &t);
	ok(t.name == NULL && t.note == NULL && t.labels.n == 0 &&
	        t.labels.v == NULL,
	    "config_free frees and clears strings and labels");
	config_free(fields, &t);
	ok(t.name == NULL, "config_free twice is harmless");

	r = load("interval: 100ms\ncount: 1\n", &t, err, sizeof err);
	ok(r == 0 && t.interval_ms == 100 && t.count == 1,
	    "the minimums themselves are allowed");
	ok(strcmp(t.name, "default") == 0 && t.grace_ms == 2000 && t.big == 4 &&
	        strcmp(labels_get(&t.labels, "keep"), "me") == 0,
	    "keys the file does not name keep their defaults");
	config_free(fields, &t);

	is_int(load("", &t, err, sizeof err), 0, "an empty file loads");
	ok(unchanged(&t), "and sets nothing");
	config_free(fields, &t);
	is_int(load("# nothing here\n\n", &t, err, sizeof err), 0,
	    "a file of comments loads");
	ok(unchanged(&t), "and sets nothing");
	config_free(fields, &t);
	is_int(load("name: gpu-01\n...\n", &t, err, sizeof err), 0,
	    "a document end marker is fine");
	is_str(t.name, "gpu-01", "and the document is read");
	config_free(fields, &t);
	is_int(load("labels: {}\n", &t, err, sizeof err), 0,
	    "an empty label mapping loads");
	is_int(t.labels.n, 0, "and empties the labels");
	config_free(fields, &t);
}

static void
test_refused(void)
{
	char text[12000];
	int n;

	refused("name: gpu-01\nheartbeet: 5s\n", "an unknown key", 2,
	    "heartbeet", "unknown setting");
	refused("name: x\ninterval: fast\n", "a duration 'fast'", 2, "interval",
	    "'fast'");
	refused("interval: 61\n", "a bare duration above its maximum", 1,
	    "interval", "out of range");
	refused("interval: 99ms\n", "a duration below its minimum", 1,
	    "interval", "out of range");
	refused("interval: 60001ms\n", "a duration above its maximum", 1,
	    "interval", "out of range");
	refused("grace: 999ms\n", "a duration below a minimum with no maximum",
	    1, "grace", "below the minimum of 1000ms");
	refused("interval: -5s\n", "a negative duration", 1, "interval", NULL);
	refused("\n\ncount: abc\n", "a uint 'abc'", 3, "count", "'abc'");
	refused("count: 11\n", "a uint above its maximum", 1, "count",
	    "from 1 to 10");
	refused("count: 0\n", "a uint below its minimum", 1, "count", NULL);
	refused("count: -1\n", "a negative uint", 1, "count", NULL);
	refused("count: 2.5\n", "a fractional uint", 1, "count", NULL);
	refused("big: 18446744073709551616\n", "a uint above 2^64 - 1", 1,
	    "big", NULL);
	refused("budget: lots\n", "a size 'lots'", 1, "budget",
	    "expected a size like 512Mi");
	refused("budget: -1Gi\n", "a negative size", 1, "budget", NULL);
	refused("labels: [a, b]\n", "labels given as a list", 1, "labels",
	    "mapping");
	refused("labels: gpu=a100\n", "labels given as a string", 1, "labels",
	    "mapping");
	refused("labels:\n  gpu: [a, b]\n", "a label value that is a list", 2,
	    "labels", NULL);
	refused("labels:\n  ok: v\n  bad key: v\n", "a bad label name", 3,
	    "labels", "bad key");
	refused("labels:\n  k: a/b\n", "a bad label value", 2, "labels", NULL);
	refused("labels:\n  k: a\n  k: b\n", "a label given twice", 3, "labels",
	    "given twice");
	refused("name: {a: b}\n", "a mapping where a string goes", 1, "name",
	    "mapping");
	refused("count:\n  - 1\n", "a list where a uint goes", 2, "count",
	    "list");
	refused("interval: {s: 5}\n", "a mapping where a duration goes", 1,
	    "interval", "mapping");
	refused("name: -bad\n", "a string failing its check", 1, "name",
	    "expected a node id");
	refused("name: \"\"\n", "an empty string failing its check", 1, "name",
	    "expected a node id");
	refused("name:\n", "a key without a value", 1, "name", "has no value");
	refused("count: 1\ncount: 2\n", "a duplicate key", 2, "count",
	    "given twice");
	refused("- a\n- b\n", "a list at the top", 1, NULL, "mapping");
	refused("just text\n", "a scalar at the top", 1, NULL, "mapping");
	refused("[a]: 1\n", "a key that is not a string", 1, NULL, NULL);
	refused("name: [unclosed\n", "a YAML syntax error", 2, NULL,
	    "YAML syntax error");
	refused("name: a\n\tcount: 2\n", "a tab in indentation", 2, NULL,
	    "YAML syntax error");
	refused("name: gpu-01\n---\nbogus: 1\n", "a second YAML document", 3,
	    NULL, "second YAML document");
	refused("name: gpu-01\n---\nbogus: [\n", "a syntax error after '---'",
	    4, NULL, "YAML syntax error");
	/* A good key before a bad one must not have been applied. */
	refused("count: 9\nname: gpu-02\nbogus: 1\n",
	    "a file bad only at its end", 3, "bogus", NULL);

	n = snprintf(text, sizeof text, "note: ");
	memset(text + n, 'x', 10000);
	strcpy(text + n + 10000, "\n");
	refused(text, "a 10000-character string", 1, "note", "longer than");

	n = snprintf(text, sizeof text, "labels:\n");
	for (int i = 0; i <= LABELS_MAX; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "  k%d: v\n",
		    i);
	refused(text, "more than LABELS_MAX labels", LABELS_MAX + 2, "labels",
	    "more than 64 labels");
}

static void
test_files(void)
{
	char err[512], missing[300], small[16 + 8];
	target_t t;
	int r;

	defaults(&t);
	snprintf(missing, sizeof missing, "%s/missing.yaml", dir);
	r = config_load(missing, fields, &t, err, sizeof err);
	is_int(r, -ENOENT, "a missing file is -ENOENT");
	ok(strstr(err, missing) != NULL, "and the error names its path");
	ok(unchanged(&t), "and the target is unchanged");

	r = config_load(dir, fields, &t, err, sizeof err);
	ok(r < 0, "a directory is refused");
	ok(strstr(err, dir) != NULL, "and the error names it");
	ok(unchanged(&t), "and the target is unchanged");
	config_free(fields, &t);

	/* The error is cut to errlen, not written past it. */
	memset(small, '#', sizeof small);
	defaults(&t);
	write_file("bogus: 1\n");
	r = config_load(path, fields, &t, small, 16);
	is_int(r, SHOAL_E_CONFIG, "a refusal with a 16-byte error buffer");
	ok(strlen(small) == 15 && strncmp(small, path, 15) == 0,
	    "the error is cut to fit");
	ok(memcmp(small + 16, "########", 8) == 0,
	    "nothing is written past errlen");
	config_free(fields, &t);
}

/* config_reload(): live keys move over, the others stay, both are named. */
static void
test_reload(void)
{
	static const char *const live[] = { "note", "count", "labels", NULL };
	char err[512], applied[128], kept[128], tiny[8];
	target_t run, fresh;
	uint64_t mask;

	defaults(&run);
	write_file("name: alpha\nnote: first\ncount: 2\ninterval: 1s\n"
	           "labels: {rack: r1}\n");
	is_int(config_load(path, fields, &run, err, sizeof err), 0,
	    "reload: the running configuration loads");

	defaults(&fresh);
	write_file("name: beta\nnote: second\ncount: 2\ninterval: 2s\n"
	           "labels: {rack: r2}\n");
	is_int(config_load(path, fields, &fresh, err, sizeof err), 0,
	    "and the fresh one");
	mask = config_reload(fields, live, &run, &fresh, applied,
	    sizeof applied, kept, sizeof kept);
	is_str(run.note, "second", "a changed live string takes the new value");
	is_str(labels_get(&run.labels, "rack"), "r2",
	    "changed live labels take the new value");
	is_str(run.name, "alpha",
	    "a changed key that is not live keeps its value");
	is_int(run.interval_ms, 1000,
	    "a changed duration that is not live too");
	is_int(run.count, 2, "an unchanged live key stays");
	is_str(fresh.note, "first",
	    "the old live value goes to fresh, to free");
	is_str(applied, "note, labels", "applied names the live keys changed");
	is_str(kept, "name, interval", "kept names the others");
	okf(mask ==
	        (1ULL << config_field_index(fields, "note") |
	            1ULL << config_field_index(fields, "labels")),
	    "the mask has the bits of note and labels (%llx)",
	    (unsigned long long)mask);
	is_int(config_field_index(fields, "nope"), -1,
	    "config_field_index of an unknown key is -1");
	config_free(fields, &fresh);

	/* Nothing changed: nothing named, nothing moved. */
	defaults(&fresh);
	write_file("name: alpha\nnote: second\ncount: 2\ninterval: 1s\n"
	           "labels: {rack: r2}\n");
	is_int(config_load(path, fields, &fresh, err, sizeof err), 0,
	    "an equal configuration loads");
	mask = config_reload(fields, live, &run, &fresh, applied,
	    sizeof applied, kept, sizeof kept);
	ok(mask == 0 && !applied[0] && !kept[0], "equal: no key is named");
	config_free(fields, &fresh);

	/* The names are cut to their buffers. */
	defaults(&fresh);
	write_file("name: gamma\nnote: third\ncount: 3\ninterval: 3s\n");
	is_int(config_load(path, fields, &fresh, err, sizeof err), 0,
	    "a third configuration loads");
	mask = config_reload(fields, live, &run, &fresh, tiny, sizeof tiny,
	    kept, sizeof kept);
	ok(strlen(tiny) < sizeof tiny, "applied is cut to its buffer");
	is_int(run.count, 3, "and the values still move");
	ok(labels_get(&run.labels, "rack") == NULL,
	    "labels the file no longer has are gone");
	config_free(fields, &fresh);
	config_free(fields, &run);
}

int
main(void)
{
	char cmd[300];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/test.yaml", dir);
	test_good();
	test_refused();
	test_files();
	test_reload();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
