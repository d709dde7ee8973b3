/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/spec.c, service specs: the architecture page's example parses with
 * every field right; absent fields get their defaults; every way a file is
 * refused names "FILE:LINE: field 'F'" and leaves *ret alone; maps given in
 * another order pack to the same bytes; spec_validate() refuses hand-built
 * messages that break a rule. The files for spec_load() are written into a
 * mkdtemp() directory that is removed at the end.
 */
#include "autoconf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"
#include "tests/tap.h"

#define NAME "iris.yaml"
#define BASE "service: iris\nimage: localhost/m:1\n" /* lines 1-2 */
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/* The spec of the architecture page's "user-facing contract", verbatim. */
static const char example[] =
    "service: iris                      # [a-z0-9-], at most 63 characters\n"
    "selector: {role: model}            # all labels must match; absent = "
    "all nodes\n"
    "image: localhost/shoal-example-model:1\n"
    "command: [\"/model-server\", \"--port\", \"8080\"]\n"
    "env: {MODEL_PATH: /models/iris.bin}\n"
    "port: 8080                         # the container port serving the "
    "model API\n"
    "resources: {memory: 512Mi, cpus: 1.5, gpus: 0}\n"
    "artifacts:\n"
    "  - url: https://models.example.com/iris-v2.bin\n"
    "    sha256: " SHA "\n"
    "    path: /models/iris.bin         # mounted read-only in the "
    "container\n"
    "health:\n"
    "  path: /health\n"
    "  expect_status: 200\n"
    "  interval: 2s\n"
    "  timeout: 1s\n"
    "  start_period: 30s                # model loading time, not counted "
    "as failure\n"
    "  healthy_threshold: 1\n"
    "  unhealthy_threshold: 3\n"
    "update:\n"
    "  strategy: rolling                # rolling | canary | blue-green\n"
    "  max_parallel: 1                  # or \"25%\"\n"
    "  canary: 0                        # or \"10%\"\n"
    "  auto_promote: false\n"
    "  min_healthy_time: 10s\n"
    "  healthy_deadline: 5m\n"
    "  progress_deadline: 10m\n"
    "  max_failures: 0\n"
    "  auto_revert: true\n";

static char dir[] = "/tmp/shoal-test-spec.XXXXXX";

/* A sentinel *ret that a refused parse must leave in place. */
static Shoal__ServiceSpec sentinel;

static int
parse(const char *text, Shoal__ServiceSpec **ret, char *err, size_t errlen)
{
	err[0] = '\0';
	return spec_parse(NAME, text, strlen(text), ret, err, errlen);
}

static char *
write_file(const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	return path;
}

/* Packs spec into a fresh buffer; the caller frees it. */
static uint8_t *
pack(const Shoal__ServiceSpec *spec, size_t *ret_len)
{
	uint8_t *buf;

	*ret_len = shoal__service_spec__get_packed_size(spec);
	buf = xmalloc(*ret_len + 1);
	shoal__service_spec__pack(spec, buf);
	return buf;
}

/*
 * Expects text to be refused with an error that starts with prefix, holds
 * needle (when not NULL), fits on one line, and leaves *ret alone.
 */
static void
refused(const char *what, const char *text, const char *prefix,
    const char *needle)
{
	Shoal__ServiceSpec *spec = &sentinel;
	char err[512];
	int r;

	r = parse(text, &spec, err, sizeof err);
	if (r == 0 && spec != &sentinel)
		spec_free(spec);
	okf(r == SHOAL_E_CONFIG, "%s: refused", what);
	if (!okf(strncmp(err, prefix, strlen(prefix)) == 0, "%s: says \"%s\"",
	        what, prefix))
		diag("error: %s", err);
	if (needle &&
	    !okf(strstr(err, needle) != NULL, "%s: says '%s'", what, needle))
		diag("error: %s", err);
	okf(spec == &sentinel && !strchr(err, '\n'),
	    "%s: *ret untouched, one line", what);
}

static void
test_example(void)
{
	Shoal__ServiceSpec *spec = NULL;
	const Shoal__HealthCheck *h;
	const Shoal__UpdateStrategy *u;
	char err[512], *path;
	int r;

	path = write_file("iris.yaml", example, strlen(example));
	r = spec_load(path, &spec, err, sizeof err);
	free(path);
	if (!ok(r == 0 && spec, "the architecture page's example loads"))
		diag("error: %s", err);
	if (!spec)
		return;
	is_str(spec->service, "iris", "service");
	is_int(spec->n_selector, 1, "one selector label");
	is_str(spec->selector[0]->key, "role", "selector key");
	is_str(spec->selector[0]->value, "model", "selector value");
	is_str(spec->image, "localhost/shoal-example-model:1", "image");
	ok(spec->n_command == 3 &&
	        strcmp(spec->command[0], "/model-server") == 0 &&
	        strcmp(spec->command[1], "--port") == 0 &&
	        strcmp(spec->command[2], "8080") == 0,
	    "command, in order");
	ok(spec->n_env == 1 && strcmp(spec->env[0]->name, "MODEL_PATH") == 0 &&
	        strcmp(spec->env[0]->value, "/models/iris.bin") == 0,
	    "env");
	is_int(spec->port, 8080, "port");
	ok(spec->resources, "resources present");
	is_int(spec->resources->memory_bytes, 512ULL << 20, "memory 512Mi");
	ok(spec->resources->cpus == 1.5, "cpus 1.5");
	is_int(spec->resources->gpus, 0, "gpus 0");
	is_int(spec->n_artifacts, 1, "one artifact");
	is_str(spec->artifacts[0]->url,
	    "https://models.example.com/iris-v2.bin", "artifact url");
	is_str(spec->artifacts[0]->sha256, SHA, "artifact sha256");
	is_int(spec->artifacts[0]->size, 0, "artifact size unknown");
	is_str(spec->artifacts[0]->path, "/models/iris.bin", "artifact path");
	h = spec->health;
	ok(h, "health present");
	if (h) {
		is_str(h->path, "/health", "health.path");
		is_int(h->expect_status, 200, "health.expect_status");
		is_int(h->interval_ms, 2000, "health.interval");
		is_int(h->timeout_ms, 1000, "health.timeout");
		is_int(h->start_period_ms, 30000, "health.start_period");
		is_int(h->healthy_threshold, 1, "health.healthy_threshold");
		is_int(h->unhealthy_threshold, 3, "health.unhealthy_threshold");
	}
	u = spec->update;
	ok(u, "update present");
	if (u) {
		is_int(u->strategy, SHOAL__UPDATE_STRATEGY__KIND__ROLLING,
		    "update.strategy");
		ok(u->max_parallel == 1 && !u->max_parallel_percent,
		    "update.max_parallel");
		ok(u->canary == 0 && !u->canary_percent, "update.canary");
		ok(!u->auto_promote, "update.auto_promote");
		is_int(u->min_healthy_time_ms, 10000,
		    "update.min_healthy_time");
		is_int(u->healthy_deadline_ms, 300000,
		    "update.healthy_deadline");
		is_int(u->progress_deadline_ms, 600000,
		    "update.progress_deadline");
		is_int(u->max_failures, 0, "update.max_failures");
		ok(u->auto_revert, "update.auto_revert");
	}
	is_int(spec_validate(spec, NULL), 0, "the parsed example validates");
	spec_free(spec);
	spec_free(NULL);
	ok(1, "spec_free(NULL) is harmless");
}

static void
test_defaults(void)
{
	Shoal__ServiceSpec *spec = NULL;
	const Shoal__UpdateStrategy *u;
	const Shoal__HealthCheck *h;
	char err[512];
	int r;

	r = parse(BASE, &spec, err, sizeof err);
	if (!ok(r == 0, "service and image alone are a spec"))
		diag("error: %s", err);
	if (!spec)
		return;
	ok(spec->n_selector == 0 && spec->n_command == 0 && spec->n_env == 0 &&
	        spec->n_artifacts == 0 && spec->port == 0,
	    "no selector, command, env, artifacts or port");
	ok(spec->resources && spec->resources->memory_bytes == 0 &&
	        spec->resources->cpus == 0 && spec->resources->gpus == 0,
	    "resources present, no limits");
	ok(spec->health == NULL, "no health section: health is NULL");
	u = spec->update;
	ok(u && u->strategy == SHOAL__UPDATE_STRATEGY__KIND__ROLLING &&
	        u->max_parallel == 1 && !u->max_parallel_percent &&
	        u->canary == 0 && !u->canary_percent && !u->auto_promote &&
	        u->min_healthy_time_ms == 10000 &&
	        u->healthy_deadline_ms == 300000 &&
	        u->progress_deadline_ms == 600000 && u->max_failures == 0 &&
	        u->auto_revert,
	    "no update section: every update default");
	spec_free(spec);

	r = parse(BASE "port: 80\nhealth: {path: /ready}\nupdate: {}\n", &spec,
	    err, sizeof err);
	if (!ok(r == 0, "health with only a path"))
		diag("error: %s", err);
	if (!spec)
		return;
	h = spec->health;
	ok(h && strcmp(h->path, "/ready") == 0 && h->expect_status == 200 &&
	        h->interval_ms == 2000 && h->timeout_ms == 1000 &&
	        h->start_period_ms == 30000 && h->healthy_threshold == 1 &&
	        h->unhealthy_threshold == 3,
	    "every health default");
	ok(spec->update && spec->update->max_parallel == 1 &&
	        spec->update->auto_revert,
	    "an empty update section: every update default");
	spec_free(spec);

	r = parse(BASE
	    "port: 80\nhealth: {path: /h, interval: 300ms, timeout: 1s}"
	    "\n",
	    &spec, err, sizeof err);
	ok(r == 0 && spec->health->interval_ms == 300 &&
	        spec->health->timeout_ms == 1000,
	    "a timeout above the interval is allowed");
	spec_free(spec);
}

static void
test_values(void)
{
	Shoal__ServiceSpec *spec = NULL;
	char err[512];
	int r;

	r = parse(
	    "service: a-1\n"
	    "image: registry.example.com:5000/team/my_model.v2:v1.0-rc1"
	    "@sha256:" SHA "\n"
	    "command: [sh, -c, '']\n"
	    "env: {B: '', A_1: 1.50, _X: true}\n"
	    "resources: {cpus: 0.000000001, memory: 2Gi, gpus: 64}\n"
	    "artifacts:\n"
	    "  - {url: 'file:///srv/a.bin', sha256: '" SHA "', size: 1Ki,"
	    " path: /m/a}\n"
	    "  - url: http://h/b\n"
	    "    sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD"
	    "15D6C15B0F00A08\n"
	    "    path: /m/b\n"
	    "update:\n"
	    "  strategy: canary\n"
	    "  canary: 10%\n"
	    "  max_parallel: 25%\n"
	    "  auto_promote: True\n"
	    "  auto_revert: FALSE\n"
	    "  max_failures: 3\n",
	    &spec, err, sizeof err);
	if (!ok(r == 0, "a spec using every value form parses"))
		diag("error: %s", err);
	if (!spec)
		return;
	ok(spec->n_command == 3 && strcmp(spec->command[2], "") == 0,
	    "an empty quoted command word");
	ok(spec->n_env == 3 && strcmp(spec->env[0]->name, "A_1") == 0 &&
	        strcmp(spec->env[0]->value, "1.50") == 0 &&
	        strcmp(spec->env[1]->value, "") == 0 &&
	        strcmp(spec->env[2]->value, "true") == 0,
	    "env values stay text, as written; env sorted by name");
	ok(spec->resources->cpus == 1e-9 &&
	        spec->resources->memory_bytes == 2ULL << 30 &&
	        spec->resources->gpus == 64,
	    "one nano-CPU, 2Gi, 64 GPUs");
	is_int(spec->artifacts[0]->size, 1024, "artifact size 1Ki");
	is_str(spec->artifacts[1]->sha256, SHA, "sha256 lowercased");
	ok(spec->update->strategy == SHOAL__UPDATE_STRATEGY__KIND__CANARY &&
	        spec->update->canary == 10 && spec->update->canary_percent &&
	        spec->update->max_parallel == 25 &&
	        spec->update->max_parallel_percent &&
	        spec->update->auto_promote && !spec->update->auto_revert &&
	        spec->update->max_failures == 3,
	    "update: canary 10%, max_parallel 25%, booleans, max_failures");
	spec_free(spec);

	r = parse(BASE "update: {canary: 0%}\n", &spec, err, sizeof err);
	ok(r == 0 && spec->update->canary == 0 && !spec->update->canary_percent,
	    "canary 0% is stored as no canary");
	spec_free(spec);

	r = parse("---\n" BASE "...\n", &spec, err, sizeof err);
	ok(r == 0, "document start and end markers are fine");
	spec_free(spec);
}

static void
test_images(void)
{
	static const char *const good[] = {
		"localhost/m:1",
		"localhost:5000/m:1",
		"docker.io/library/ubuntu:22.04",
		"Registry.Example.com/team/model:v1.0-rc_1",
		"10.0.0.1:5000/a/b/c:latest",
		"ghcr.io/org/my__model/x-y.z---w:1",
		"quay.io/m@sha256:" SHA,
		"quay.io/m:2@sha256:" SHA,
	};
	static const char *const bad[] = {
		"ubuntu",
		"ubuntu:22.04",
		"library/ubuntu:1",
		"registry:abc/m:1",
		"-registry.io/m:1",
		"registry.io/m",
		"registry.io/m:",
		"registry.io/m:-x",
		"registry.io/m:a/b",
		"registry.io/M:1",
		"registry.io/team/Model:1",
		"registry.io/m/:1",
		"registry.io//m:1",
		"registry.io/-m:1",
		"registry.io/m.:1",
		"registry.io/m..n:1",
		"registry.io/m___n:1",
		"registry.io/m@sha256:" SHA "0",
		"registry.io/m@sha512:" SHA,
		"registry.io/m@SHA256:" SHA,
		"registry.io/m:1\tx",
		"",
	};
	Shoal__ServiceSpec *spec;
	char text[512], err[512];
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		spec = NULL;
		snprintf(text, sizeof text, "service: a\nimage: \"%s\"\n",
		    good[i]);
		r = parse(text, &spec, err, sizeof err);
		if (!okf(r == 0 && strcmp(spec->image, good[i]) == 0,
		        "image '%s' is fully qualified", good[i]))
			diag("error: %s", err);
		spec_free(spec);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		spec = &sentinel;
		snprintf(text, sizeof text, "service: a\nimage: \"%s\"\n",
		    bad[i]);
		r = parse(text, &spec, err, sizeof err);
		if (!okf(r == SHOAL_E_CONFIG && spec == &sentinel &&
		            strncmp(err, NAME ":2: field 'image': ", 27) == 0,
		        "image '%s' is refused", bad[i]))
			diag("error: %s", err);
	}
}

/* Maps in another order (and other YAML spelling) pack to the same bytes. */
static void
test_canonical(void)
{
	Shoal__ServiceSpec *a = NULL, *b = NULL, *c = NULL;
	uint8_t *pa, *pb, *pc;
	size_t na, nb, nc;
	char err[512];

	parse("service: iris\n"
	      "image: localhost/m:1\n"
	      "selector: {role: model, gpu: a100, zone: eu}\n"
	      "env: {Z: 1, A: 2, M: 3}\n"
	      "command: [a, b]\n",
	    &a, err, sizeof err);
	parse("env:\n"
	      "  M: '3'\n"
	      "  Z: \"1\"\n"
	      "  A: 2\n"
	      "command: [a, b]\n"
	      "selector:\n"
	      "  zone: eu\n"
	      "  role: model\n"
	      "  gpu: a100\n"
	      "image: localhost/m:1\n"
	      "service: iris\n"
	      "resources: {}\n"
	      "update: {}\n",
	    &b, err, sizeof err);
	parse("service: iris\n"
	      "image: localhost/m:1\n"
	      "selector: {role: model, gpu: a100, zone: eu}\n"
	      "env: {Z: 1, A: 2, M: 3}\n"
	      "command: [b, a]\n",
	    &c, err, sizeof err);
	if (!ok(a && b && c, "three orderings parse"))
		goto out;
	ok(strcmp(a->selector[0]->key, "gpu") == 0 &&
	        strcmp(a->selector[2]->key, "zone") == 0,
	    "selector sorted by name");
	ok(strcmp(a->env[0]->name, "A") == 0 &&
	        strcmp(a->env[2]->name, "Z") == 0,
	    "env sorted by name");
	pa = pack(a, &na);
	pb = pack(b, &nb);
	pc = pack(c, &nc);
	ok(na == nb && memcmp(pa, pb, na) == 0,
	    "reordered maps, field order, quoting and empty sections pack "
	    "alike");
	ok(na != nc || memcmp(pa, pc, na) != 0,
	    "a reordered command packs differently");
	free(pa);
	free(pb);
	free(pc);
out:
	spec_free(a);
	spec_free(b);
	spec_free(c);
}

static const struct {
	const char *what, *text, *prefix, *needle;
} cases[] = {
	/* Unknown fields, with the valid ones. */
	{ "unknown top-level field", BASE "imgae: x\n",
	    NAME ":3: field 'imgae': unknown field",
	    "valid here: service, selector, image, command, env, port, "
	    "resources, artifacts, health, update" },
	{ "unknown health field",
	    BASE "port: 80\nhealth:\n  path: /h\n  intervall: 2s\n",
	    NAME ":6: field 'health.intervall': unknown field", "interval" },
	{ "unknown artifact field",
	    BASE "artifacts:\n  - {url: http://h/a, sha256: " SHA
	         ", path: /a}\n  - {url: http://h/b, sha: x, path: /b}\n",
	    NAME ":5: field 'artifacts[1].sha': unknown field",
	    "url, sha256, size, path" },
	/* Wrong types. */
	{ "env as a list", BASE "env: [A, B]\n",
	    NAME ":3: field 'env': expected a mapping", "got a list" },
	{ "command as a string", BASE "command: /bin/x\n",
	    NAME ":3: field 'command': expected a list of strings",
	    "got a single value" },
	{ "a command word as a mapping", BASE "command: [a, {b: c}]\n",
	    NAME ":3: field 'command[1]': expected a string", "a mapping" },
	{ "health as a list", BASE "port: 80\nhealth: [/h]\n",
	    NAME ":4: field 'health': expected a mapping", NULL },
	{ "health with nothing", BASE "port: 80\nhealth:\n",
	    NAME ":4: field 'health': expected a mapping", "got nothing" },
	{ "service as a mapping", "service: {a: b}\nimage: localhost/m:1\n",
	    NAME ":1: field 'service': expected a string", NULL },
	{ "image with nothing", "service: iris\nimage: ~\n",
	    NAME ":2: field 'image': expected a string", "got nothing" },
	{ "an env value with nothing", BASE "env:\n  A:\n",
	    NAME ":4: field 'env.A': expected a string", "''" },
	{ "a list at the top", "- service: iris\n",
	    NAME ":1: expected a mapping of fields", "got a list" },
	{ "a scalar at the top", "iris\n", NAME ":1: expected a mapping",
	    NULL },
	{ "artifacts as a mapping", BASE "artifacts: {url: x}\n",
	    NAME ":3: field 'artifacts': expected a list", NULL },
	{ "an artifact as a string", BASE "artifacts: [http://h/a]\n",
	    NAME ":3: field 'artifacts[0]': expected a mapping", NULL },
	/* Missing required fields. */
	{ "no service", "# spec\n\nimage: localhost/m:1\nport: 1\n",
	    NAME ":3: field 'service': missing", NULL },
	{ "no image", "service: iris\n", NAME ":1: field 'image': missing",
	    NULL },
	{ "no health.path", BASE "port: 80\nhealth:\n  interval: 2s\n",
	    NAME ":4: field 'health.path': missing", NULL },
	{ "no artifact sha256",
	    BASE "artifacts:\n  - url: http://h/a\n    path: /a\n",
	    NAME ":4: field 'artifacts[0].sha256': missing", NULL },
	{ "health without port", BASE "health: {path: /h}\n",
	    NAME ":3: field 'health': a health check needs 'port'", NULL },
	/* Duplicate keys. */
	{ "service twice", BASE "service: other\n",
	    NAME ":3: field 'service': given twice (first on line 1)", NULL },
	{ "an env name twice", BASE "env:\n  A: 1\n  B: 2\n  A: 3\n",
	    NAME ":6: field 'env.A': given twice (first on line 4)", NULL },
	{ "a selector label twice", BASE "selector: {a: b, a: c}\n",
	    NAME ":3: field 'selector.a': given twice", NULL },
	{ "a health field twice",
	    BASE "port: 80\nhealth:\n  path: /a\n  path: /b\n",
	    NAME ":6: field 'health.path': given twice", NULL },
	/* YAML itself. */
	{ "an unclosed flow mapping", BASE "env: {A: 1\n",
	    NAME ":4:1: YAML syntax error: ", NULL },
	{ "bad indentation", BASE "health:\n  path: /h\n interval: 2s\n",
	    NAME ":5:", "YAML syntax error" },
	{ "a tab for indentation", BASE "env:\n\tA: 1\n",
	    NAME ":4:", "YAML syntax error" },
	{ "an undefined alias", BASE "command: [*nope]\n",
	    NAME ":3:", "YAML syntax error" },
	{ "a second document", BASE "---\nservice: other\n",
	    NAME ":3: a second YAML document", NULL },
	{ "a trailing empty document", BASE "---\n",
	    NAME ":3: a second YAML document", NULL },
	{ "an empty file", "", NAME ":1: the spec is empty", NULL },
	{ "comments only", "# nothing\n\n", NAME ":1: the spec is empty",
	    NULL },
	{ "an empty document", "---\n", NAME ":1: the spec is empty", NULL },
	{ "a NUL in a string", BASE "env: {A: \"x\\0y\"}\n",
	    NAME ":3: field 'env.A': contains a NUL character", NULL },
	{ "a newline in a bad value",
	    "service: \"a\\nb\"\nimage: localhost/m:1\n",
	    NAME ":1: field 'service': 'a?b' is not a service name", NULL },
	/* Bad values, top level. */
	{ "service with uppercase", "service: Iris\nimage: localhost/m:1\n",
	    NAME ":1: field 'service': 'Iris' is not a service name", NULL },
	{ "service ending in '-'", "service: iris-\nimage: localhost/m:1\n",
	    NAME ":1: field 'service':", NULL },
	{ "service of 64 characters",
	    "service: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa\nimage: localhost/m:1\n",
	    NAME ":1: field 'service':", NULL },
	{ "an image without registry", "service: iris\nimage: ubuntu:22.04\n",
	    NAME ":2: field 'image': 'ubuntu:22.04' is not a fully qualified "
	         "image",
	    "registry host" },
	{ "an image with a Hub user",
	    "service: iris\nimage: library/ubuntu:1\n",
	    NAME ":2: field 'image':", "registry host" },
	{ "an image without a tag", "service: iris\nimage: localhost/m\n",
	    NAME ":2: field 'image':", "neither a tag" },
	{ "an image with uppercase",
	    "service: iris\nimage: localhost/Model:1\n",
	    NAME ":2: field 'image':", "uppercase" },
	{ "an image with a space", "service: iris\nimage: 'localhost/m :1'\n",
	    NAME ":2: field 'image':", "space" },
	{ "an image with a short digest",
	    "service: iris\nimage: localhost/m@sha256:abc\n",
	    NAME ":2: field 'image':", "digest" },
	{ "an image with an empty path part",
	    "service: iris\nimage: localhost//m:1\n",
	    NAME ":2: field 'image':", "repository path" },
	{ "port 0", BASE "port: 0\n",
	    NAME ":3: field 'port': expected a whole number from 1 to 65535, "
	         "got '0'",
	    NULL },
	{ "port 65536", BASE "port: 65536\n", NAME ":3: field 'port':", NULL },
	{ "port -1", BASE "port: -1\n", NAME ":3: field 'port':", NULL },
	{ "a bad selector name", BASE "selector: {'a b': c}\n",
	    NAME ":3: field 'selector.a b': 'a b' is not a label name", NULL },
	{ "a bad selector value", BASE "selector: {a: 'b/c'}\n",
	    NAME ":3: field 'selector.a': 'b/c' is not a label value", NULL },
	{ "a bad env name", BASE "env: {1A: x}\n",
	    NAME ":3: field 'env.1A': '1A' is not a variable name", NULL },
	{ "an env name with '-'", BASE "env: {A-B: x}\n",
	    NAME ":3: field 'env.A-B':", NULL },
	/* resources */
	{ "memory in words", BASE "resources: {memory: lots}\n",
	    NAME ":3: field 'resources.memory': expected a size like 512Mi",
	    "got 'lots'" },
	{ "cpus 0", BASE "resources: {cpus: 0}\n",
	    NAME ":3: field 'resources.cpus': expected a number of CPUs",
	    NULL },
	{ "cpus 1025", BASE "resources: {cpus: 1025}\n",
	    NAME ":3: field 'resources.cpus':", NULL },
	{ "cpus 1024.5", BASE "resources: {cpus: 1024.5}\n",
	    NAME ":3: field 'resources.cpus':", NULL },
	{ "cpus 1.5.5", BASE "resources: {cpus: 1.5.5}\n",
	    NAME ":3: field 'resources.cpus':", NULL },
	{ "cpus 1e3", BASE "resources: {cpus: 1e3}\n",
	    NAME ":3: field 'resources.cpus':", NULL },
	{ "cpus with ten decimals", BASE "resources: {cpus: 0.0000000001}\n",
	    NAME ":3: field 'resources.cpus':", "decimal places" },
	{ "gpus 65", BASE "resources: {gpus: 65}\n",
	    NAME ":3: field 'resources.gpus': expected a whole number from 0 "
	         "to 64",
	    NULL },
	{ "an unknown resource", BASE "resources: {disk: 1Gi}\n",
	    NAME ":3: field 'resources.disk': unknown field",
	    "memory, cpus, gpus" },
	/* artifacts */
	{ "a short sha256",
	    BASE "artifacts:\n"
	         "  - {url: http://h/a, sha256: " SHA ", path: /a}\n"
	         "  - url: http://h/b\n"
	         "    path: /b\n"
	         "    sha256: 9f86d0\n",
	    NAME ":7: field 'artifacts[1].sha256': expected 64 hex digits",
	    "got '9f86d0'" },
	{ "a sha256 with a non-hex digit",
	    BASE
	    "artifacts: [{url: http://h/a, path: /a, sha256: "
	    "g f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a"
	    "08}]\n",
	    NAME ":3: field 'artifacts[0].sha256':", NULL },
	{ "an ftp url",
	    BASE "artifacts: [{url: 'ftp://h/a', sha256: " SHA ", path: /a}]\n",
	    NAME ":3: field 'artifacts[0].url':", "https://" },
	{ "a url without host",
	    BASE "artifacts: [{url: 'https:///a', sha256: " SHA
	         ", path: /a}]\n",
	    NAME ":3: field 'artifacts[0].url':", "no host" },
	{ "a relative path",
	    BASE "artifacts: [{url: http://h/a, sha256: " SHA
	         ", path: models/a}]\n",
	    NAME ":3: field 'artifacts[0].path':", "absolute" },
	{ "a path with '..'",
	    BASE "artifacts: [{url: http://h/a, sha256: " SHA
	         ", path: /m/../etc/a}]\n",
	    NAME ":3: field 'artifacts[0].path':", "'..'" },
	{ "a path ending in '/'",
	    BASE "artifacts: [{url: http://h/a, sha256: " SHA ", path: /m/}]\n",
	    NAME ":3: field 'artifacts[0].path':", NULL },
	{ "two artifacts on one path",
	    BASE "artifacts:\n"
	         "  - {url: http://h/a, sha256: " SHA ", path: /m/a}\n"
	         "  - url: http://h/b\n"
	         "    sha256: " SHA "\n"
	         "    path: /m/a\n",
	    NAME ":7: field 'artifacts[1].path': '/m/a' is also the path of "
	         "artifacts[0]",
	    NULL },
	{ "an artifact inside another",
	    BASE "artifacts:\n"
	         "  - {url: http://h/a, sha256: " SHA ", path: /m/a/b}\n"
	         "  - {url: http://h/b, sha256: " SHA ", path: /m/a}\n",
	    NAME ":5: field 'artifacts[1].path':", "inside" },
	{ "an artifact size in words",
	    BASE "artifacts: [{url: http://h/a, sha256: " SHA
	         ", path: /a, size: big}]\n",
	    NAME ":3: field 'artifacts[0].size': expected a size", NULL },
	/* health */
	{ "the architecture page's bad interval",
	    BASE "port: 80\n# probe\nhealth:\n  path: /h\n  interval: soon\n",
	    NAME ":7: field 'health.interval': expected a duration like 2s, "
	         "got 'soon'",
	    NULL },
	{ "an interval of 10ms",
	    BASE "port: 80\nhealth: {path: /h, interval: 10ms}\n",
	    NAME ":4: field 'health.interval': '10ms' is out of range", NULL },
	{ "a timeout of 0", BASE "port: 80\nhealth: {path: /h, timeout: 0s}\n",
	    NAME ":4: field 'health.timeout':", "out of range" },
	{ "a path without '/'", BASE "port: 80\nhealth: {path: health}\n",
	    NAME ":4: field 'health.path': 'health': it must start with '/'",
	    NULL },
	{ "expect_status 99",
	    BASE "port: 80\nhealth: {path: /h, expect_status: 99}\n",
	    NAME ":4: field 'health.expect_status': expected a whole number "
	         "from 100 to 599",
	    NULL },
	{ "healthy_threshold 0",
	    BASE "port: 80\nhealth: {path: /h, healthy_threshold: 0}\n",
	    NAME ":4: field 'health.healthy_threshold':", NULL },
	{ "unhealthy_threshold 0",
	    BASE "port: 80\nhealth: {path: /h, unhealthy_threshold: 0}\n",
	    NAME ":4: field 'health.unhealthy_threshold':", NULL },
	/* update */
	{ "an unknown strategy", BASE "update:\n  strategy: big-bang\n",
	    NAME ":4: field 'update.strategy': expected rolling, canary or "
	         "blue-green, got 'big-bang'",
	    NULL },
	{ "max_parallel 0", BASE "update: {max_parallel: 0}\n",
	    NAME ":3: field 'update.max_parallel':", NULL },
	{ "max_parallel 150%", BASE "update: {max_parallel: 150%}\n",
	    NAME ":3: field 'update.max_parallel': expected a percentage",
	    NULL },
	{ "max_parallel 0%", BASE "update: {max_parallel: 0%}\n",
	    NAME ":3: field 'update.max_parallel':", NULL },
	{ "max_parallel of 10001 nodes", BASE "update: {max_parallel: 10001}\n",
	    NAME ":3: field 'update.max_parallel':", NULL },
	{ "a canary count with rolling", BASE "update: {canary: 1}\n",
	    NAME ":3: field 'update.canary': applies only to strategy 'canary'",
	    NULL },
	{ "strategy canary without canaries",
	    BASE "update:\n  strategy: canary\n",
	    NAME ":4: field 'update.canary': strategy 'canary' needs", NULL },
	{ "auto_promote with blue-green",
	    BASE "update: {strategy: blue-green, auto_promote: true}\n",
	    NAME ":3: field 'update.auto_promote': applies only", NULL },
	{ "auto_promote yes", BASE "update: {auto_promote: yes}\n",
	    NAME ":3: field 'update.auto_promote': expected true or false, got "
	         "'yes'",
	    NULL },
	{ "healthy_deadline below min_healthy_time",
	    BASE "update:\n  min_healthy_time: 1m\n  healthy_deadline: 30s\n",
	    NAME ":5: field 'update.healthy_deadline': must be longer than "
	         "update.min_healthy_time (1m)",
	    NULL },
	{ "progress_deadline below healthy_deadline",
	    BASE "update: {progress_deadline: 1m}\n",
	    NAME ":3: field 'update.progress_deadline': must be at least "
	         "update.healthy_deadline (5m)",
	    NULL },
	{ "max_failures in words", BASE "update: {max_failures: some}\n",
	    NAME ":3: field 'update.max_failures':", NULL },
	{ "a duration past the cap",
	    BASE "update: {progress_deadline: 1000h}\n",
	    NAME
	    ":3: field 'update.progress_deadline': '1000h' is out of range",
	    NULL },
};

static void
test_refused(void)
{
	char *text, *p;
	int i;

	for (size_t k = 0; k < ARRAY_SIZE(cases); k++)
		refused(cases[k].what, cases[k].text, cases[k].prefix,
		    cases[k].needle);

	/* Caps on counts: one past each. */
	text = xmalloc(128 * 1024);
	p = text + sprintf(text, BASE "command:\n");
	for (i = 0; i <= SPEC_COMMAND_MAX; i++)
		p += sprintf(p, "  - w%d\n", i);
	refused("65 command words", text,
	    NAME ":3: field 'command': more than 64", NULL);
	p = text + sprintf(text, BASE "env:\n");
	for (i = 0; i <= SPEC_ENV_MAX; i++)
		p += sprintf(p, "  V%d: x\n", i);
	refused("129 env variables", text,
	    NAME ":3: field 'env': more than 128", NULL);
	p = text + sprintf(text, BASE "selector:\n");
	for (i = 0; i <= LABELS_MAX; i++)
		p += sprintf(p, "  l%d: x\n", i);
	refused("65 selector labels", text,
	    NAME ":3: field 'selector': more than 64", NULL);
	p = text + sprintf(text, BASE "artifacts:\n");
	for (i = 0; i <= SPEC_ARTIFACTS_MAX; i++)
		p += sprintf(p,
		    "  - {url: http://h/a, sha256: " SHA ", path: /a%d}\n", i);
	refused("17 artifacts", text,
	    NAME ":3: field 'artifacts': more than 16", NULL);

	/* Every string fits, but the whole does not. */
	p = text + sprintf(text, BASE "command:\n");
	for (i = 0; i < 20; i++) {
		p += sprintf(p, "  - ");
		memset(p, 'x', 4000);
		p += 4000;
		p += sprintf(p, "\n");
	}
	refused("a spec above 64 KiB packed", text,
	    NAME ":1: the spec is too large", NULL);
	free(text);
}

static void
test_load(void)
{
	Shoal__ServiceSpec *spec = &sentinel;
	char err[512], *path, *big;
	int r;

	path = xasprintf("%s/missing.yaml", dir);
	r = spec_load(path, &spec, err, sizeof err);
	is_int(r, -ENOENT, "a missing file is -ENOENT");
	ok(strncmp(err, path, strlen(path)) == 0, "and the error names it");
	free(path);
	r = spec_load(dir, &spec, err, sizeof err);
	is_int(r, -EISDIR, "a directory is -EISDIR");

	big = xmalloc(1024 * 1024 + 2);
	memset(big, '#', 1024 * 1024 + 1);
	big[0] = '\n';
	path = write_file("big.yaml", big, 1024 * 1024 + 1);
	r = spec_load(path, &spec, err, sizeof err);
	is_int(r, SHOAL_E_CONFIG, "a file above 1 MiB is refused");
	ok(strstr(err, "big.yaml:1: the file is larger") != NULL,
	    "and the error says so");
	free(path);
	free(big);
	ok(spec == &sentinel, "*ret untouched by failed loads");

	path = write_file("bad.yaml", BASE "port: x\n", strlen(BASE) + 8);
	r = spec_load(path, &spec, err, sizeof err);
	is_int(r, SHOAL_E_CONFIG, "a bad file is SHOAL_E_CONFIG");
	ok(strstr(err, "/bad.yaml:3: field 'port':") != NULL,
	    "spec_load names the file by its path");
	free(path);

	r = spec_parse(NAME, BASE, strlen(BASE), &spec, NULL, 0);
	ok(r == 0 && spec != &sentinel, "spec_parse takes no error buffer");
	spec_free(spec);
	spec = &sentinel;
	r = spec_parse(NAME, "port: x\n", 8, &spec, NULL, 0);
	ok(r == SHOAL_E_CONFIG && spec == &sentinel,
	    "and still refuses without one");
}

/* The hand-built message for spec_validate(): good until a test breaks it. */
typedef struct built {
	Shoal__ServiceSpec spec;
	Shoal__UpdateStrategy update;
	Shoal__Resources resources;
	Shoal__HealthCheck health;
	Shoal__Artifact art[2], *arts[2];
	Shoal__EnvVar ev[SPEC_ENV_MAX + 1], *evs[SPEC_ENV_MAX + 1];
	Shoal__Label lab[2], *labs[2];
	char *cmd[2];
	char names[SPEC_ENV_MAX + 1][8];
} built_t;

static void
build(built_t *b)
{
	static const Shoal__ServiceSpec spec = SHOAL__SERVICE_SPEC__INIT;
	static const Shoal__UpdateStrategy update =
	    SHOAL__UPDATE_STRATEGY__INIT;
	static const Shoal__Resources resources = SHOAL__RESOURCES__INIT;
	static const Shoal__HealthCheck health = SHOAL__HEALTH_CHECK__INIT;
	static const Shoal__Artifact art = SHOAL__ARTIFACT__INIT;
	static const Shoal__EnvVar ev = SHOAL__ENV_VAR__INIT;
	static const Shoal__Label lab = SHOAL__LABEL__INIT;

	memset(b, 0, sizeof *b);
	b->spec = spec;
	b->spec.service = "iris";
	b->spec.image = "docker.io/library/model:1";
	b->spec.port = 8080;
	b->cmd[0] = "/srv";
	b->cmd[1] = "--fast";
	b->spec.command = b->cmd;
	b->spec.n_command = 2;
	for (int i = 0; i <= SPEC_ENV_MAX; i++) {
		snprintf(b->names[i], sizeof b->names[i], "V%03d", i);
		b->ev[i] = ev;
		b->ev[i].name = b->names[i];
		b->ev[i].value = "x";
		b->evs[i] = &b->ev[i];
	}
	b->spec.env = b->evs;
	b->spec.n_env = 2;
	for (int i = 0; i < 2; i++) {
		b->lab[i] = lab;
		b->lab[i].key = i ? "role" : "gpu";
		b->lab[i].value = i ? "model" : "a100";
		b->labs[i] = &b->lab[i];
		b->art[i] = art;
		b->art[i].url = "https://h/a";
		b->art[i].sha256 = SHA;
		b->art[i].path = i ? "/m/b" : "/m/a";
		b->arts[i] = &b->art[i];
	}
	b->spec.selector = b->labs;
	b->spec.n_selector = 2;
	b->spec.artifacts = b->arts;
	b->spec.n_artifacts = 2;
	b->resources = resources;
	b->resources.cpus = 2;
	b->spec.resources = &b->resources;
	b->health = health;
	b->health.path = "/health";
	b->health.expect_status = 200;
	b->health.interval_ms = 2000;
	b->health.timeout_ms = 1000;
	b->health.healthy_threshold = 1;
	b->health.unhealthy_threshold = 3;
	b->spec.health = &b->health;
	b->update = update;
	b->update.max_parallel = 1;
	b->update.min_healthy_time_ms = 10000;
	b->update.healthy_deadline_ms = 300000;
	b->update.progress_deadline_ms = 600000;
	b->update.auto_revert = 1;
	b->spec.update = &b->update;
}

/* Expects b's spec to be refused with a reason that starts with field. */
static void
invalid(built_t *b, const char *what, const char *field)
{
	const char *why = NULL;
	int r = spec_validate(&b->spec, &why);

	okf(r == SHOAL_E_INVALID, "validate: %s is refused", what);
	if (!okf(why && strncmp(why, field, strlen(field)) == 0,
	        "validate: %s names '%s'", what, field))
		diag("why: %s", why ? why : "(null)");
	build(b);
}

static void
test_validate(void)
{
	built_t *b = xmalloc(sizeof *b);
	char *big = xmalloc(SPEC_COMMAND_MAX * 4096 + 1);
	char *words[SPEC_COMMAND_MAX];
	const char *why = "unset";

	build(b);
	is_int(spec_validate(&b->spec, &why), 0, "validate: a good spec");
	b->spec.health = NULL;
	b->spec.port = 0;
	b->spec.resources = NULL;
	b->spec.n_command = b->spec.n_env = b->spec.n_artifacts = 0;
	b->spec.n_selector = 0;
	is_int(spec_validate(&b->spec, NULL), 0,
	    "validate: a minimal spec, no ret_why");
	build(b);
	is_int(spec_validate(NULL, &why), SHOAL_E_INVALID,
	    "validate: NULL is refused");

	b->spec.service = "Iris";
	invalid(b, "a bad name", "service");
	b->spec.service = NULL;
	invalid(b, "no name", "service");
	b->spec.service = "";
	invalid(b, "an empty name", "service");
	b->spec.image = "ubuntu:22.04";
	invalid(b, "an unqualified image", "image");
	b->spec.image = "localhost/m";
	invalid(b, "an image without tag", "image");
	b->spec.image = NULL;
	invalid(b, "no image", "image");
	b->spec.port = 0;
	invalid(b, "port 0 with a health check", "health");
	b->spec.port = 65536;
	invalid(b, "port 65536", "port");
	b->art[1].sha256 = SHA "0";
	invalid(b, "a sha256 of 65 digits", "artifacts[].sha256");
	b->art[1].sha256 =
	    "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D"
	    "6C15B0F00A08";
	invalid(b, "an uppercase sha256", "artifacts[].sha256");
	b->art[1].path = "/m/a";
	invalid(b, "two artifacts on one path", "artifacts[].path");
	b->art[1].path = "/m/a/x";
	invalid(b, "an artifact inside another", "artifacts[].path");
	b->art[0].url = "gopher://h/a";
	invalid(b, "a gopher url", "artifacts[].url");
	b->arts[1] = NULL;
	invalid(b, "a NULL artifact", "artifacts");
	b->spec.n_artifacts = SPEC_ARTIFACTS_MAX + 1;
	invalid(b, "17 artifacts", "artifacts");
	b->spec.n_env = SPEC_ENV_MAX + 1;
	invalid(b, "129 env variables", "env");
	b->spec.n_env = SPEC_ENV_MAX;
	is_int(spec_validate(&b->spec, &why), 0, "validate: 128 env variables");
	build(b);
	b->evs[0] = &b->ev[1];
	b->evs[1] = &b->ev[0];
	invalid(b, "env out of order", "env");
	b->evs[1] = &b->ev[0];
	invalid(b, "an env name twice", "env");
	b->ev[0].name = "1X";
	invalid(b, "a bad env name", "env");
	b->ev[0].value = NULL;
	invalid(b, "a NULL env value", "env");
	b->spec.env = NULL;
	invalid(b, "env entries missing", "env");
	b->labs[0] = &b->lab[1];
	b->labs[1] = &b->lab[0];
	invalid(b, "selector out of order", "selector");
	b->lab[0].value = "a b";
	invalid(b, "a bad label value", "selector");
	b->cmd[1] = NULL;
	invalid(b, "a NULL command word", "command");
	b->spec.n_command = SPEC_COMMAND_MAX + 1;
	invalid(b, "65 command words", "command");
	b->resources.cpus = NAN;
	invalid(b, "cpus NaN", "resources.cpus");
	b->resources.cpus = -1;
	invalid(b, "cpus -1", "resources.cpus");
	b->resources.gpus = 65;
	invalid(b, "65 gpus", "resources.gpus");
	b->health.path = "health";
	invalid(b, "a health path without '/'", "health.path");
	b->health.expect_status = 600;
	invalid(b, "expect_status 600", "health.expect_status");
	b->health.timeout_ms = 0;
	invalid(b, "a timeout of 0", "health.timeout");
	b->health.interval_ms = 0;
	invalid(b, "interval 0", "health.interval");
	b->health.healthy_threshold = 0;
	invalid(b, "healthy_threshold 0", "health.healthy_threshold");
	b->spec.update = NULL;
	invalid(b, "no update", "update");
	b->update.strategy = (Shoal__UpdateStrategy__Kind)7;
	invalid(b, "strategy 7", "update.strategy");
	b->update.strategy = (Shoal__UpdateStrategy__Kind)-1;
	invalid(b, "strategy -1", "update.strategy");
	b->update.max_parallel = 0;
	invalid(b, "max_parallel 0", "update.max_parallel");
	b->update.max_parallel = 101;
	b->update.max_parallel_percent = 1;
	invalid(b, "max_parallel 101%", "update.max_parallel");
	b->update.canary = 2;
	invalid(b, "canaries with rolling", "update.canary");
	b->update.strategy = SHOAL__UPDATE_STRATEGY__KIND__CANARY;
	invalid(b, "strategy canary without canaries", "update.canary");
	b->update.auto_promote = 1;
	invalid(b, "auto_promote with rolling", "update.auto_promote");
	b->update.healthy_deadline_ms = 10000;
	invalid(b, "healthy_deadline at min_healthy_time",
	    "update.healthy_deadline");
	b->update.progress_deadline_ms = 1000;
	invalid(b, "progress_deadline below healthy_deadline",
	    "update.progress_deadline");

	memset(big, 'x', SPEC_COMMAND_MAX * 4096);
	for (int i = 0; i < SPEC_COMMAND_MAX; i++) {
		words[i] = big + (size_t)i * 4096;
		big[(size_t)i * 4096 + 4095] = '\0';
	}
	b->spec.command = words;
	b->spec.n_command = SPEC_COMMAND_MAX;
	invalid(b, "a spec above 64 KiB packed", "spec");

	free(big);
	free(b);
}

int
main(void)
{
	static const char *const files[] = { "iris.yaml", "big.yaml",
		"bad.yaml" };

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_example();
	test_defaults();
	test_values();
	test_images();
	test_canonical();
	test_refused();
	test_load();
	test_validate();
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *path = xasprintf("%s/%s", dir, files[i]);

		unlink(path);
		free(path);
	}
	if (rmdir(dir) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
