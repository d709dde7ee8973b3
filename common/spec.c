/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service specs: shoalctl parses the YAML file an operator applies into a
 * Shoal__ServiceSpec, and the coordinator checks every spec that arrives
 * with spec_validate(). The file is read with libyaml's document API; each
 * section is checked against its list of fields, converted straight into
 * the protobuf message (allocated the way protobuf-c's own unpacker does,
 * so one free_unpacked() releases a half-built message too) and, once
 * complete, run through spec_validate() as well, so the file and the wire
 * obey one set of rules. Maps (selector, env) are sorted by name: the
 * coordinator hashes the packed spec, and reordering a map must not look
 * like a new revision.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"

/*
 * Hard caps on what a file or a peer controls. Every string fits in
 * SPEC_STRING_MAX, and the packed spec in SPEC_PACKED_MAX so that a node's
 * desired state, which carries several specs, stays far below the 1 MiB
 * frame cap.
 */
#define SPEC_FILE_MAX (1024 * 1024) /* bytes of YAML */
#define SPEC_PACKED_MAX (64 * 1024)
#define SPEC_STRING_MAX 4096
#define IMAGE_MAX 512      /* whole reference */
#define IMAGE_NAME_MAX 255 /* registry host and repository path */
#define IMAGE_TAG_MAX 128
#define ENV_NAME_MAX 255
#define NODES_MAX 10000 /* the coordinator's node cap */
#define CPUS_MAX 1024
#define CPUS_DECIMALS 9 /* the runtime counts nano-CPUs */
#define GPUS_MAX 64
#define MEMORY_MAX (1ULL << 50) /* 1 PiB */
#define DURATION_MAX (7ULL * 24 * 3600 * 1000)
#define INTERVAL_MIN 100 /* ms: the agent probes every container */
#define THRESHOLD_MAX 100
#define FIELD_MAX 128 /* a dotted field path in a message */
#define SHOWN_MAX 60  /* bytes of a bad value quoted back */

/* Defaults of the architecture page's "Rollouts" and spec example. */
#define HEALTH_STATUS 200
#define HEALTH_INTERVAL_MS 2000
#define HEALTH_TIMEOUT_MS 1000
#define HEALTH_START_PERIOD_MS 30000
#define HEALTH_HEALTHY 1
#define HEALTH_UNHEALTHY 3
#define UPDATE_MAX_PARALLEL 1
#define UPDATE_MIN_HEALTHY_MS 10000
#define UPDATE_HEALTHY_DEADLINE_MS (5 * 60000)
#define UPDATE_PROGRESS_DEADLINE_MS (10 * 60000)

static const char *const strategy_names[] = {
	[SHOAL__UPDATE_STRATEGY__KIND__ROLLING] = "rolling",
	[SHOAL__UPDATE_STRATEGY__KIND__CANARY] = "canary",
	[SHOAL__UPDATE_STRATEGY__KIND__BLUE_GREEN] = "blue-green",
};

/* -- rules shared by the parser and spec_validate() ---------------------- */

static bool
lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Not NULL and at most max bytes. */
static bool
str_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

/* Printable ASCII, no space: what goes into URLs and image references. */
static bool
has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

static bool
name_ok(const char *s)
{
	size_t n;

	if (!str_ok(s, SPEC_NAME_MAX) || !(n = strlen(s)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return lower_alnum(s[0]) && lower_alnum(s[n - 1]);
}

static bool
env_name_ok(const char *s)
{
	if (!str_ok(s, ENV_NAME_MAX) ||
	    !(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!isascii((unsigned char)*s) ||
		    !(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static bool
hex_ok(const char *s, size_t n, bool lower_only)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		        (!lower_only && c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static bool
sha256_ok(const char *s)
{
	return str_ok(s, 64) && strlen(s) == 64 && hex_ok(s, 64, true);
}

static const char no_registry[] =
    "it does not start with a registry host (a name with a '.', a host:port "
    "or localhost), like docker.io/library/NAME:TAG";

/*
 * A registry host: a DNS name or address with an optional :port. It is what
 * makes an image reference fully qualified, so it must look like a host
 * and not like a Docker Hub user: a '.', a port or "localhost".
 */
static const char *
host_problem(const char *s, size_t n)
{
	size_t i, port = 0;

	for (i = 0; i < n && s[i] != ':'; i++)
		if (!isascii((unsigned char)s[i]) ||
		    !(isalnum((unsigned char)s[i]) || s[i] == '.' ||
		        s[i] == '-'))
			return "the registry host has characters other than "
			       "letters, digits, '.' and '-'";
	if (i < n) {
		port = n - i - 1;
		if (port < 1 || port > 5)
			return "the registry port is not a number";
		for (size_t k = i + 1; k < n; k++)
			if (!isdigit((unsigned char)s[k]))
				return "the registry port is not a number";
	}
	if (i == 0 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[i - 1]))
		return "the registry host must start and end with a letter or "
		       "digit";
	if (!port && !memchr(s, '.', i) &&
	    !(i == 9 && strncmp(s, "localhost", 9) == 0))
		return no_registry;
	return NULL;
}

/* Docker's grammar: [a-z0-9]+ joined by '.', '_', '__' or runs of '-'. */
static bool
component_ok(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		if (i >= n || !lower_alnum(s[i]))
			return false;
		while (i < n && lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
	}
}

/*
 * Fully qualified: HOST/PATH[:TAG][@sha256:DIGEST] with at least a tag or a
 * digest, so that every node pulls the same thing from the same place.
 * NULL when s is good, else what is wrong.
 */
static const char *
image_problem(const char *s)
{
	const char *end, *slash, *colon = NULL, *p;
	size_t len;
	bool digest = false;

	if (!s || !*s)
		return "it is empty";
	len = strnlen(s, IMAGE_MAX + 1);
	if (len > IMAGE_MAX)
		return "it is longer than 512 characters";
	if (has_space_or_control(s))
		return "it contains a space or a control character";
	end = s + len;
	p = strchr(s, '@');
	if (p) {
		if (strncmp(p + 1, "sha256:", 7) != 0 || strlen(p + 8) != 64 ||
		    !hex_ok(p + 8, 64, true))
			return "the digest must be @sha256: and 64 lowercase "
			       "hex digits";
		digest = true;
		end = p;
	}
	slash = memchr(s, '/', (size_t)(end - s));
	if (!slash)
		return no_registry;
	if ((p = host_problem(s, (size_t)(slash - s))))
		return p;
	/* The tag follows the last ':' after the first '/'. */
	for (p = slash; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon) {
		size_t n = (size_t)(end - colon - 1);

		if (n < 1 || n > IMAGE_TAG_MAX ||
		    !(isalnum((unsigned char)colon[1]) || colon[1] == '_'))
			return "the tag must be 1-128 of [A-Za-z0-9_.-], not "
			       "starting with '.' or '-'";
		for (p = colon + 1; p < end; p++)
			if (!isascii((unsigned char)*p) ||
			    !(isalnum((unsigned char)*p) || *p == '_' ||
			        *p == '.' || *p == '-'))
				return "the tag must be 1-128 of "
				       "[A-Za-z0-9_.-], not starting with "
				       "'.' or '-'";
		end = colon;
	}
	if (!colon && !digest)
		return "it has neither a tag (:1) nor a digest (@sha256:...)";
	if ((size_t)(end - s) > IMAGE_NAME_MAX)
		return "the registry host and repository path are longer "
		       "than 255 characters";
	for (p = slash + 1; p < end; p++)
		if (*p >= 'A' && *p <= 'Z')
			return "the repository path has uppercase letters";
	for (p = slash + 1;;) {
		const char *next = memchr(p, '/', (size_t)(end - p));
		const char *stop = next ? next : end;

		if (!component_ok(p, (size_t)(stop - p)))
			return "the repository path must be lowercase letters "
			       "and digits joined by '.', '_', '__' or '-', "
			       "in parts separated by '/'";
		if (!next)
			break;
		p = next + 1;
	}
	return NULL;
}

/* Where the container sees an artifact: a clean absolute path. */
static const char *
artifact_path_problem(const char *s)
{
	const char *p;

	if (!s || s[0] != '/' || !s[1])
		return "it must be an absolute path to a file, like "
		       "/models/model.bin";
	if (!str_ok(s, SPEC_STRING_MAX))
		return "it is longer than 4096 characters";
	for (p = s; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return "it contains a control character";
	/* The runtime's bind syntax uses ':' as its separator. */
	if (strchr(s, ':'))
		return "it contains ':'";
	for (p = s; *p;) {
		const char *c = p + 1, *next = strchr(c, '/');
		size_t n = next ? (size_t)(next - c) : strlen(c);

		if (n == 0)
			return "it has an empty part ('//' or a trailing '/')";
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "it has a '.' or '..' part";
		p = c + n;
	}
	return NULL;
}

static const char *
url_problem(const char *s)
{
	static const char *const schemes[] = { "https://", "http://",
		"file://" };
	const char *rest = NULL;
	size_t i;

	if (!str_ok(s, SPEC_STRING_MAX))
		return "it is longer than 4096 characters";
	for (i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t n = strlen(schemes[i]);

		if (strncmp(s, schemes[i], n) == 0) {
			rest = s + n;
			break;
		}
	}
	if (!rest)
		return "expected an https://, http:// or file:// URL";
	if (has_space_or_control(s))
		return "it contains a space or a control character";
	if (i == 2)
		return rest[0] == '/' && rest[1]
		    ? NULL
		    : "a file:// URL needs an absolute path: file:///PATH";
	if (!*rest || strchr("/?#", *rest))
		return "the URL has no host";
	return NULL;
}

/* The HTTP path the agent probes: it goes into a URL as it is. */
static const char *
probe_path_problem(const char *s)
{
	if (!s || s[0] != '/')
		return "it must start with '/'";
	if (!str_ok(s, SPEC_STRING_MAX))
		return "it is longer than 4096 characters";
	if (has_space_or_control(s))
		return "it contains a space or a control character";
	return NULL;
}

/* -- spec_validate() -------------------------------------------------- */

static int
selector_ok(const Shoal__ServiceSpec *s, const char **ret_why)
{
	REQUIRE(s->n_selector <= LABELS_MAX, "selector: more than 64 labels");
	REQUIRE(!s->n_selector || s->selector, "selector: missing");
	for (size_t i = 0; i < s->n_selector; i++) {
		const Shoal__Label *l = s->selector[i];

		REQUIRE(l, "selector: empty entry");
		REQUIRE(label_key_valid(l->key), "selector: label name");
		REQUIRE(label_value_valid(l->value), "selector: label value");
		REQUIRE(i == 0 || strcmp(s->selector[i - 1]->key, l->key) < 0,
		    "selector: not sorted by name, or a name given twice");
	}
	return 0;
}

static int
env_ok(const Shoal__ServiceSpec *s, const char **ret_why)
{
	REQUIRE(s->n_env <= SPEC_ENV_MAX, "env: more than 128 variables");
	REQUIRE(!s->n_env || s->env, "env: missing");
	for (size_t i = 0; i < s->n_env; i++) {
		const Shoal__EnvVar *e = s->env[i];

		REQUIRE(e, "env: empty entry");
		REQUIRE(env_name_ok(e->name), "env: name");
		REQUIRE(str_ok(e->value, SPEC_STRING_MAX), "env: value");
		REQUIRE(i == 0 || strcmp(s->env[i - 1]->name, e->name) < 0,
		    "env: not sorted by name, or a name given twice");
	}
	return 0;
}

static int
artifacts_ok(const Shoal__ServiceSpec *s, const char **ret_why)
{
	REQUIRE(s->n_artifacts <= SPEC_ARTIFACTS_MAX,
	    "artifacts: more than 16");
	REQUIRE(!s->n_artifacts || s->artifacts, "artifacts: missing");
	for (size_t i = 0; i < s->n_artifacts; i++) {
		const Shoal__Artifact *a = s->artifacts[i];

		REQUIRE(a, "artifacts: empty entry");
		REQUIRE(!url_problem(a->url), "artifacts[].url");
		REQUIRE(sha256_ok(a->sha256),
		    "artifacts[].sha256: not 64 lowercase hex digits");
		REQUIRE(!artifact_path_problem(a->path), "artifacts[].path");
	}
	/* Paths are checked above, so they are strings. */
	for (size_t i = 0; i < s->n_artifacts; i++) {
		for (size_t j = 0; j < i; j++) {
			const char *a = s->artifacts[i]->path;
			const char *b = s->artifacts[j]->path;
			size_t na = strlen(a), nb = strlen(b);
			size_t n = na < nb ? na : nb;

			REQUIRE(strcmp(a, b) != 0,
			    "artifacts[].path: used twice");
			REQUIRE(!(strncmp(a, b, n) == 0 &&
			            (na > nb ? a : b)[n] == '/'),
			    "artifacts[].path: one lies inside another");
		}
	}
	return 0;
}

static int
health_ok(const Shoal__ServiceSpec *s, const char **ret_why)
{
	const Shoal__HealthCheck *h = s->health;

	if (!h)
		return 0;
	REQUIRE(s->port, "health: needs port");
	REQUIRE(!probe_path_problem(h->path), "health.path");
	REQUIRE(h->expect_status >= 100 && h->expect_status <= 599,
	    "health.expect_status: not 100-599");
	REQUIRE(h->interval_ms >= INTERVAL_MIN &&
	        h->interval_ms <= DURATION_MAX,
	    "health.interval: out of range");
	REQUIRE(h->timeout_ms >= 1 && h->timeout_ms <= DURATION_MAX,
	    "health.timeout: out of range");
	REQUIRE(h->start_period_ms <= DURATION_MAX,
	    "health.start_period: out of range");
	REQUIRE(h->healthy_threshold >= 1 &&
	        h->healthy_threshold <= THRESHOLD_MAX,
	    "health.healthy_threshold: not 1-100");
	REQUIRE(h->unhealthy_threshold >= 1 &&
	        h->unhealthy_threshold <= THRESHOLD_MAX,
	    "health.unhealthy_threshold: not 1-100");
	return 0;
}

static int
update_ok(const Shoal__UpdateStrategy *u, const char **ret_why)
{
	bool canary;

	REQUIRE(u, "update: missing");
	canary = u->strategy == SHOAL__UPDATE_STRATEGY__KIND__CANARY;
	REQUIRE((int)u->strategy >= 0 &&
	        (size_t)u->strategy < ARRAY_SIZE(strategy_names),
	    "update.strategy: unknown");
	REQUIRE(u->max_parallel >= 1 &&
	        u->max_parallel <= (u->max_parallel_percent ? 100 : NODES_MAX),
	    "update.max_parallel: out of range");
	REQUIRE(u->canary <= (u->canary_percent ? 100 : NODES_MAX) &&
	        (!u->canary_percent || u->canary >= 1),
	    "update.canary: out of range");
	REQUIRE(!canary || u->canary >= 1,
	    "update.canary: strategy canary needs at least one");
	REQUIRE(canary || u->canary == 0,
	    "update.canary: only for strategy canary");
	REQUIRE(canary || !u->auto_promote,
	    "update.auto_promote: only for strategy canary");
	REQUIRE(u->min_healthy_time_ms <= DURATION_MAX,
	    "update.min_healthy_time: out of range");
	REQUIRE(u->healthy_deadline_ms > u->min_healthy_time_ms &&
	        u->healthy_deadline_ms <= DURATION_MAX,
	    "update.healthy_deadline: not above min_healthy_time");
	REQUIRE(u->progress_deadline_ms >= u->healthy_deadline_ms &&
	        u->progress_deadline_ms <= DURATION_MAX,
	    "update.progress_deadline: below healthy_deadline");
	REQUIRE(u->max_failures <= NODES_MAX, "update.max_failures: too many");
	return 0;
}

int
spec_validate(const Shoal__ServiceSpec *s, const char **ret_why)
{
	const char *why_unused;
	int r;

	if (!ret_why)
		ret_why = &why_unused;
	REQUIRE(s, "spec: missing");
	REQUIRE(name_ok(s->service),
	    "service: not 1-63 of [a-z0-9-] starting and ending with a "
	    "letter or digit");
	r = selector_ok(s, ret_why);
	if (r < 0)
		return r;
	REQUIRE(!image_problem(s->image),
	    "image: not fully qualified (registry host, path, tag or "
	    "digest)");
	REQUIRE(s->n_command <= SPEC_COMMAND_MAX,
	    "command: more than 64 words");
	REQUIRE(!s->n_command || s->command, "command: missing");
	for (size_t i = 0; i < s->n_command; i++)
		REQUIRE(str_ok(s->command[i], SPEC_STRING_MAX),
		    "command: word missing or too long");
	r = env_ok(s, ret_why);
	if (r < 0)
		return r;
	REQUIRE(s->port <= 65535, "port: not 1-65535");
	if (s->resources) {
		const Shoal__Resources *res = s->resources;

		/* 0 means no limit; the parser only writes 0 when absent. */
		REQUIRE(isfinite(res->cpus) && res->cpus >= 0 &&
		        res->cpus <= CPUS_MAX,
		    "resources.cpus: not 0-1024");
		REQUIRE(res->memory_bytes <= MEMORY_MAX,
		    "resources.memory: above 1Pi");
		REQUIRE(res->gpus <= GPUS_MAX, "resources.gpus: not 0-64");
	}
	r = artifacts_ok(s, ret_why);
	if (r < 0)
		return r;
	r = health_ok(s, ret_why);
	if (r < 0)
		return r;
	REQUIRE(s->update, "update: missing");
	r = update_ok(s->update, ret_why);
	if (r < 0)
		return r;
	/* Last: packing walks every string and array checked above. */
	REQUIRE(shoal__service_spec__get_packed_size(s) <= SPEC_PACKED_MAX,
	    "spec: packs to more than 64 KiB");
	return 0;
}

void
spec_free(Shoal__ServiceSpec *spec)
{
	if (spec)
		shoal__service_spec__free_unpacked(spec, NULL);
}

/* -- the YAML parser ------------------------------------------------------ */

typedef struct parser {
	yaml_document_t *doc;
	const char *name; /* the file, in messages */
	char *err;
	size_t errlen;
} parser_t;

/* One known field of a mapping and, once read, where it was given. */
typedef struct field {
	const char *name;
	yaml_node_t *key;
	yaml_node_t *val;
} field_t;

static int fail(parser_t *p, const yaml_node_t *at, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * "FILE:LINE: field 'F': what". Values quoted back may hold newlines or
 * escapes from double-quoted YAML; the message stays on one line.
 */
static int
fail(parser_t *p, const yaml_node_t *at, const char *field, const char *fmt,
    ...)
{
	char what[1024];
	size_t line = at ? at->start_mark.line + 1 : 1;
	va_list ap;

	if (!p->err || !p->errlen)
		return SHOAL_E_CONFIG;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (field)
		snprintf(p->err, p->errlen, "%s:%zu: field '%s': %s", p->name,
		    line, field, what);
	else
		snprintf(p->err, p->errlen, "%s:%zu: %s", p->name, line, what);
	for (char *c = p->err; *c; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			*c = '?';
	return SHOAL_E_CONFIG;
}

/* A bad value as quoted back: cut at SHOWN_MAX on a character boundary. */
static const char *
shown(const char *s, char buf[SHOWN_MAX + 4])
{
	size_t n = strlen(s);

	if (n <= SHOWN_MAX)
		return s;
	n = SHOWN_MAX;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

static const char *
join(char buf[FIELD_MAX], const char *parent, const char *name)
{
	char shortened[SHOWN_MAX + 4];

	name = shown(name, shortened);
	if (parent && *parent)
		snprintf(buf, FIELD_MAX, "%s.%s", parent, name);
	else
		snprintf(buf, FIELD_MAX, "%s", name);
	return buf;
}

static const char *
value(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* YAML's null: an empty plain scalar, ~ or null. */
static bool
is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		if (strcmp(value(n), nulls[i]) == 0)
			return true;
	return false;
}

static const char *
kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return is_null(n) ? "nothing" : "a single value";
	}
}

static yaml_node_t *
node(parser_t *p, int index)
{
	yaml_node_t *n = yaml_document_get_node(p->doc, index);

	/* libyaml only hands out documents whose indexes resolve. */
	if (!n)
		abort();
	return n;
}

/* The text of a scalar, or an error saying what was expected instead. */
static int
text(parser_t *p, const yaml_node_t *v, const char *field, const char *expect,
    size_t max, const char **ret)
{
	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return fail(p, v, field, "expected %s, got %s", expect,
		    kind(v));
	/* "\0" in a double-quoted scalar would cut the C string short. */
	if (strlen(value(v)) != v->data.scalar.length)
		return fail(p, v, field, "contains a NUL character");
	if (v->data.scalar.length > max)
		return fail(p, v, field, "longer than %zu bytes", max);
	*ret = value(v);
	return 0;
}

static int
expect_mapping(parser_t *p, const yaml_node_t *at, const yaml_node_t *v,
    const char *field, const char *what)
{
	if (v->type != YAML_MAPPING_NODE)
		return fail(p, at, field, "expected a mapping of %s, got %s",
		    what, kind(v));
	return 0;
}

static size_t
pairs_count(const yaml_node_t *map)
{
	return (size_t)(map->data.mapping.pairs.top -
	    map->data.mapping.pairs.start);
}

/*
 * Reads a mapping against its known fields: an unknown field or one given
 * twice is refused; f[i].key and f[i].val are set for those present.
 */
static int
read_fields(parser_t *p, const yaml_node_t *at, yaml_node_t *map,
    const char *section, field_t *f, size_t n)
{
	char fp[FIELD_MAX];
	yaml_node_pair_t *pair;
	int r;

	r = expect_mapping(p, at, map, section && *section ? section : NULL,
	    "fields");
	if (r < 0)
		return r;
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node(p, pair->key);
		const char *name;
		char valid[256] = "";
		size_t i;

		r = text(p, k, section && *section ? section : NULL,
		    "field names", FIELD_MAX, &name);
		if (r < 0)
			return r;
		for (i = 0; i < n; i++)
			if (strcmp(f[i].name, name) == 0)
				break;
		if (i < n && f[i].key)
			return fail(p, k, join(fp, section, name),
			    "given twice (first on line %zu)",
			    f[i].key->start_mark.line + 1);
		if (i < n) {
			f[i].key = k;
			f[i].val = node(p, pair->value);
			continue;
		}
		for (i = 0; i < n; i++) {
			strcat(valid, i ? ", " : "");
			strcat(valid, f[i].name);
		}
		return fail(p, k, join(fp, section, name),
		    "unknown field; valid here: %s", valid);
	}
	return 0;
}

/* Where a rule between two fields failed: a if given, else b, else the
 * section. */
static const yaml_node_t *
blame(const field_t *a, const field_t *b, const yaml_node_t *section)
{
	if (a && a->val)
		return a->val;
	if (b && b->val)
		return b->val;
	return section;
}

static const char *
fmt_ms(uint64_t ms, char buf[32])
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, 32, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, 32, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, 32, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, 32, "%llums", (unsigned long long)ms);
	return buf;
}

static int
get_string(parser_t *p, const field_t *f, const char *field, size_t max,
    char **ret)
{
	const char *s;
	int r;

	r = text(p, f->val, field, "a string", max, &s);
	if (r < 0)
		return r;
	if (*ret != protobuf_c_empty_string)
		free(*ret);
	*ret = xstrdup(s);
	return 0;
}

static int
get_uint(parser_t *p, const field_t *f, const char *field, uint64_t min,
    uint64_t max, uint64_t *ret)
{
	char expect[96], b[SHOWN_MAX + 4];
	const char *s;
	int r;

	snprintf(expect, sizeof expect, "a whole number from %llu to %llu",
	    (unsigned long long)min, (unsigned long long)max);
	r = text(p, f->val, field, expect, SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	if (parse_uint(s, max, ret) < 0 || *ret < min)
		return fail(p, f->val, field, "expected %s, got '%s'", expect,
		    shown(s, b));
	return 0;
}

static int
get_u32(parser_t *p, const field_t *f, const char *field, uint32_t min,
    uint32_t max, uint32_t *ret)
{
	uint64_t v;
	int r;

	r = get_uint(p, f, field, min, max, &v);
	if (r == 0)
		*ret = (uint32_t)v;
	return r;
}

static int
get_duration(parser_t *p, const field_t *f, const char *field, uint64_t min,
    uint64_t *ret)
{
	char b[SHOWN_MAX + 4], lo[32], hi[32];
	const char *s, *expect = "a duration like 2s";
	uint64_t ms;
	int r;

	r = text(p, f->val, field, expect, SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	r = parse_duration_ms(s, &ms);
	if (r == -EINVAL)
		return fail(p, f->val, field, "expected %s, got '%s'", expect,
		    shown(s, b));
	if (r < 0 || ms < min || ms > DURATION_MAX)
		return fail(p, f->val, field, "'%s' is out of range (%s to %s)",
		    s, fmt_ms(min, lo), fmt_ms(DURATION_MAX, hi));
	*ret = ms;
	return 0;
}

static int
get_bool(parser_t *p, const field_t *f, const char *field,
    protobuf_c_boolean *ret)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	char b[SHOWN_MAX + 4];
	const char *s;
	int r;

	r = text(p, f->val, field, "true or false", SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*ret = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*ret = 0;
			return 0;
		}
	}
	return fail(p, f->val, field, "expected true or false, got '%s'",
	    shown(s, b));
}

static int
get_size(parser_t *p, const field_t *f, const char *field, uint64_t *ret)
{
	const char *s, *expect = "a size like 512Mi or 2Gi";
	char b[SHOWN_MAX + 4];
	int r;

	r = text(p, f->val, field, expect, SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	r = parse_size_bytes(s, ret);
	if (r == -EINVAL)
		return fail(p, f->val, field, "expected %s, got '%s'", expect,
		    shown(s, b));
	if (r < 0 || *ret > MEMORY_MAX)
		return fail(p, f->val, field, "'%s' is above 1Pi", s);
	return 0;
}

/* "3" (nodes, min..NODES_MAX) or "25%" (min..100 percent, at least 1). */
static int
get_nodes(parser_t *p, const field_t *f, const char *field, uint32_t min,
    uint32_t *ret, protobuf_c_boolean *ret_percent)
{
	char expect[128], b[SHOWN_MAX + 4], num[SHOWN_MAX + 1];
	const char *s;
	uint64_t v;
	size_t n;
	int r;

	snprintf(expect, sizeof expect,
	    "a number of nodes from %u to %u or a percentage like 25%%", min,
	    NODES_MAX);
	r = text(p, f->val, field, expect, SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	n = strlen(s);
	if (n > 1 && s[n - 1] == '%') {
		bool good = n - 1 <= SHOWN_MAX;

		if (good) {
			memcpy(num, s, n - 1);
			num[n - 1] = '\0';
			good = parse_uint(num, 100, &v) == 0 && v >= min;
		}
		if (!good)
			return fail(p, f->val, field,
			    "expected a percentage from %u%% to 100%%, got "
			    "'%s'",
			    min, shown(s, b));
		/* 0% is no canary at all: store it as the count 0. */
		*ret = (uint32_t)v;
		*ret_percent = v > 0;
		return 0;
	}
	if (parse_uint(s, NODES_MAX, &v) < 0 || v < min)
		return fail(p, f->val, field, "expected %s, got '%s'", expect,
		    shown(s, b));
	*ret = (uint32_t)v;
	*ret_percent = 0;
	return 0;
}

/*
 * A decimal like 1.5, counted in nano-CPUs so the value is exact to the
 * runtime's resolution and does not depend on the locale's strtod().
 */
static int
get_cpus(parser_t *p, const field_t *f, const char *field, double *ret)
{
	const char *s, *c,
	    *expect = "a number of CPUs like 1.5 "
	              "(above 0, at most 1024)";
	char b[SHOWN_MAX + 4];
	uint64_t whole = 0, nano = 0, scale = 1000000000;
	int r;

	r = text(p, f->val, field, expect, SPEC_STRING_MAX, &s);
	if (r < 0)
		return r;
	for (c = s; isdigit((unsigned char)*c) && whole <= CPUS_MAX; c++)
		whole = whole * 10 + (uint64_t)(*c - '0');
	if (c == s)
		goto bad;
	if (*c == '.') {
		const char *frac = ++c;

		for (; isdigit((unsigned char)*c); c++) {
			if (c - frac >= CPUS_DECIMALS)
				return fail(p, f->val, field,
				    "'%s' has more than %d decimal places",
				    shown(s, b), CPUS_DECIMALS);
			scale /= 10;
			nano += (uint64_t)(*c - '0') * scale;
		}
		if (c == frac)
			goto bad;
	}
	if (*c)
		goto bad;
	nano += whole * 1000000000;
	if (nano == 0 || nano > (uint64_t)CPUS_MAX * 1000000000)
		goto bad;
	*ret = (double)nano / 1e9;
	return 0;
bad:
	return fail(p, f->val, field, "expected %s, got '%s'", expect,
	    shown(s, b));
}

static int
cmp_label(const void *a, const void *b)
{
	return strcmp((*(Shoal__Label *const *)a)->key,
	    (*(Shoal__Label *const *)b)->key);
}

static int
cmp_env(const void *a, const void *b)
{
	return strcmp((*(Shoal__EnvVar *const *)a)->name,
	    (*(Shoal__EnvVar *const *)b)->name);
}

/* The first key of map before pair named like pair's key, or NULL. */
static const yaml_node_t *
earlier_key(parser_t *p, const yaml_node_t *map, const yaml_node_pair_t *pair)
{
	const char *name = value(node(p, pair->key));

	for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair;
	     q++) {
		const yaml_node_t *k = node(p, q->key);

		if (strcmp(value(k), name) == 0)
			return k;
	}
	return NULL;
}

static int
read_selector(parser_t *p, const field_t *f, Shoal__ServiceSpec *spec)
{
	char fp[FIELD_MAX], b[SHOWN_MAX + 4];
	yaml_node_t *map = f->val;
	yaml_node_pair_t *pair;
	int r;

	r = expect_mapping(p, f->key, map, "selector", "label names to values");
	if (r < 0)
		return r;
	if (pairs_count(map) > LABELS_MAX)
		return fail(p, f->key, "selector", "more than %d labels",
		    LABELS_MAX);
	spec->selector = xcalloc(pairs_count(map) + 1, sizeof(void *));
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node(p, pair->key), *v = node(p, pair->value);
		const yaml_node_t *first;
		const char *key, *val;
		Shoal__Label *l;

		r = text(p, k, "selector", "label names", SPEC_STRING_MAX,
		    &key);
		if (r < 0)
			return r;
		join(fp, "selector", key);
		if ((first = earlier_key(p, map, pair)))
			return fail(p, k, fp, "given twice (first on line %zu)",
			    first->start_mark.line + 1);
		if (!label_key_valid(key))
			return fail(p, k, fp,
			    "'%s' is not a label name (1-%d of "
			    "[A-Za-z0-9._/-])",
			    shown(key, b), LABEL_MAX);
		r = text(p, v, fp, "a label value (write '' for an empty one)",
		    SPEC_STRING_MAX, &val);
		if (r < 0)
			return r;
		if (!label_value_valid(val))
			return fail(p, v, fp,
			    "'%s' is not a label value (0-%d of "
			    "[A-Za-z0-9._-])",
			    shown(val, b), LABEL_MAX);
		l = xmalloc(sizeof *l);
		shoal__label__init(l);
		l->key = xstrdup(key);
		l->value = xstrdup(val);
		spec->selector[spec->n_selector++] = l;
	}
	qsort(spec->selector, spec->n_selector, sizeof *spec->selector,
	    cmp_label);
	return 0;
}

static int
read_command(parser_t *p, const field_t *f, Shoal__ServiceSpec *spec)
{
	yaml_node_t *seq = f->val;
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(p, f->key, "command",
		    "expected a list of strings, got %s", kind(seq));
	n = (size_t)(seq->data.sequence.items.top -
	    seq->data.sequence.items.start);
	if (n > SPEC_COMMAND_MAX)
		return fail(p, f->key, "command", "more than %d words",
		    SPEC_COMMAND_MAX);
	spec->command = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(p, seq->data.sequence.items.start[i]);
		char fp[FIELD_MAX];
		const char *s;
		int r;

		snprintf(fp, sizeof fp, "command[%zu]", i);
		r = text(p, item, fp, "a string (write '' for an empty one)",
		    SPEC_STRING_MAX, &s);
		if (r < 0)
			return r;
		spec->command[spec->n_command++] = xstrdup(s);
	}
	return 0;
}

static int
read_env(parser_t *p, const field_t *f, Shoal__ServiceSpec *spec)
{
	char fp[FIELD_MAX], b[SHOWN_MAX + 4];
	yaml_node_t *map = f->val;
	yaml_node_pair_t *pair;
	int r;

	r = expect_mapping(p, f->key, map, "env", "variable names to values");
	if (r < 0)
		return r;
	if (pairs_count(map) > SPEC_ENV_MAX)
		return fail(p, f->key, "env", "more than %d variables",
		    SPEC_ENV_MAX);
	spec->env = xcalloc(pairs_count(map) + 1, sizeof(void *));
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node(p, pair->key), *v = node(p, pair->value);
		const yaml_node_t *first;
		const char *name, *val;
		Shoal__EnvVar *e;

		r = text(p, k, "env", "variable names", SPEC_STRING_MAX, &name);
		if (r < 0)
			return r;
		join(fp, "env", name);
		if ((first = earlier_key(p, map, pair)))
			return fail(p, k, fp, "given twice (first on line %zu)",
			    first->start_mark.line + 1);
		if (!env_name_ok(name))
			return fail(p, k, fp,
			    "'%s' is not a variable name ([A-Za-z_] then "
			    "[A-Za-z0-9_])",
			    shown(name, b));
		r = text(p, v, fp, "a string (write '' for an empty one)",
		    SPEC_STRING_MAX, &val);
		if (r < 0)
			return r;
		e = xmalloc(sizeof *e);
		shoal__env_var__init(e);
		e->name = xstrdup(name);
		e->value = xstrdup(val);
		spec->env[spec->n_env++] = e;
	}
	qsort(spec->env, spec->n_env, sizeof *spec->env, cmp_env);
	return 0;
}

static int
read_resources(parser_t *p, const field_t *sec, Shoal__Resources *res)
{
	field_t f[] = { { "memory" }, { "cpus" }, { "gpus" } };
	uint32_t gpus = 0;
	int r;

	r = read_fields(p, sec->key, sec->val, "resources", f, ARRAY_SIZE(f));
	if (r < 0)
		return r;
	if (f[0].val &&
	    (r = get_size(p, &f[0], "resources.memory", &res->memory_bytes)))
		return r;
	if (f[1].val && (r = get_cpus(p, &f[1], "resources.cpus", &res->cpus)))
		return r;
	if (f[2].val &&
	    (r = get_u32(p, &f[2], "resources.gpus", 0, GPUS_MAX, &gpus)))
		return r;
	res->gpus = gpus;
	return 0;
}

/* *ret_at: the path's node, for the checks across artifacts. */
static int
read_artifact(parser_t *p, yaml_node_t *item, const char *section,
    Shoal__Artifact *a, const yaml_node_t **ret_at)
{
	enum { URL, SHA256, SIZE, PATH };
	field_t f[] = { { "url" }, { "sha256" }, { "size" }, { "path" } };
	char fp[FIELD_MAX], b[SHOWN_MAX + 4];
	const char *why;
	int r;

	r = read_fields(p, item, item, section, f, ARRAY_SIZE(f));
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (i != SIZE && !f[i].val)
			return fail(p, item, join(fp, section, f[i].name),
			    "missing; every artifact has a url, a sha256 "
			    "and a path");

	join(fp, section, "url");
	r = get_string(p, &f[URL], fp, SPEC_STRING_MAX, &a->url);
	if (r < 0)
		return r;
	if ((why = url_problem(a->url)))
		return fail(p, f[URL].val, fp, "'%s': %s", shown(a->url, b),
		    why);

	join(fp, section, "sha256");
	r = get_string(p, &f[SHA256], fp, SPEC_STRING_MAX, &a->sha256);
	if (r < 0)
		return r;
	if (strlen(a->sha256) != 64 || !hex_ok(a->sha256, 64, false))
		return fail(p, f[SHA256].val, fp,
		    "expected 64 hex digits (a SHA-256), got '%s'",
		    shown(a->sha256, b));
	for (char *c = a->sha256; *c; c++)
		*c = (char)tolower((unsigned char)*c);

	if (f[SIZE].val &&
	    (r = get_size(p, &f[SIZE], join(fp, section, "size"), &a->size)))
		return r;

	join(fp, section, "path");
	r = get_string(p, &f[PATH], fp, SPEC_STRING_MAX, &a->path);
	if (r < 0)
		return r;
	if ((why = artifact_path_problem(a->path)))
		return fail(p, f[PATH].val, fp, "'%s': %s", shown(a->path, b),
		    why);
	*ret_at = f[PATH].val;
	return 0;
}

static int
read_artifacts(parser_t *p, const field_t *f, Shoal__ServiceSpec *spec)
{
	yaml_node_t *seq = f->val;
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(p, f->key, "artifacts",
		    "expected a list of artifacts (url, sha256, path), got %s",
		    kind(seq));
	n = (size_t)(seq->data.sequence.items.top -
	    seq->data.sequence.items.start);
	if (n > SPEC_ARTIFACTS_MAX)
		return fail(p, f->key, "artifacts", "more than %d artifacts",
		    SPEC_ARTIFACTS_MAX);
	spec->artifacts = xcalloc(n + 1, sizeof(void *));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(p, seq->data.sequence.items.start[i]);
		char fp[FIELD_MAX], b[SHOWN_MAX + 4];
		Shoal__Artifact *a = xmalloc(sizeof *a);
		const yaml_node_t *at = item;
		int r;

		shoal__artifact__init(a);
		spec->artifacts[spec->n_artifacts++] = a;
		snprintf(fp, sizeof fp, "artifacts[%zu]", i);
		r = read_artifact(p, item, fp, a, &at);
		if (r < 0)
			return r;
		/* Two artifacts cannot be mounted at or inside one path. */
		strcat(fp, ".path");
		for (size_t j = 0; j < i; j++) {
			const char *other = spec->artifacts[j]->path;
			size_t na = strlen(a->path), no = strlen(other);

			if (strcmp(a->path, other) == 0)
				return fail(p, at, fp,
				    "'%s' is also the path of artifacts[%zu]",
				    shown(a->path, b), j);
			if (strncmp(a->path, other, na < no ? na : no) == 0 &&
			    (na < no ? other[na] : a->path[no]) == '/')
				return fail(p, at, fp,
				    "'%s' and artifacts[%zu].path lie one "
				    "inside the other",
				    shown(a->path, b), j);
		}
	}
	return 0;
}

static int
read_health(parser_t *p, const field_t *sec, const Shoal__ServiceSpec *spec,
    Shoal__HealthCheck *h)
{
	enum { PATH, STATUS, INTERVAL, TIMEOUT, START, HEALTHY, UNHEALTHY };
	field_t f[] = { { "path" }, { "expect_status" }, { "interval" },
		{ "timeout" }, { "start_period" }, { "healthy_threshold" },
		{ "unhealthy_threshold" } };
	char b[SHOWN_MAX + 4];
	const char *why;
	int r;

	r = read_fields(p, sec->key, sec->val, "health", f, ARRAY_SIZE(f));
	if (r < 0)
		return r;
	if (!spec->port)
		return fail(p, sec->key, "health",
		    "a health check needs 'port', the container port it "
		    "probes");
	if (!f[PATH].val)
		return fail(p, sec->key, "health.path",
		    "missing; name the HTTP path to probe, like /health");
	r = get_string(p, &f[PATH], "health.path", SPEC_STRING_MAX, &h->path);
	if (r < 0)
		return r;
	if ((why = probe_path_problem(h->path)))
		return fail(p, f[PATH].val, "health.path", "'%s': %s",
		    shown(h->path, b), why);

	h->expect_status = HEALTH_STATUS;
	h->interval_ms = HEALTH_INTERVAL_MS;
	h->start_period_ms = HEALTH_START_PERIOD_MS;
	h->healthy_threshold = HEALTH_HEALTHY;
	h->unhealthy_threshold = HEALTH_UNHEALTHY;
	if (f[STATUS].val &&
	    (r = get_u32(p, &f[STATUS], "health.expect_status", 100, 599,
	         &h->expect_status)))
		return r;
	if (f[INTERVAL].val &&
	    (r = get_duration(p, &f[INTERVAL], "health.interval", INTERVAL_MIN,
	         &h->interval_ms)))
		return r;
	/*
	 * The timeout may exceed the interval: the agent schedules a probe
	 * only once the previous one has ended, so a long timeout spaces
	 * probes out rather than stacking them.
	 */
	h->timeout_ms = HEALTH_TIMEOUT_MS;
	if (f[TIMEOUT].val &&
	    (r = get_duration(p, &f[TIMEOUT], "health.timeout", 1,
	         &h->timeout_ms)))
		return r;
	if (f[START].val &&
	    (r = get_duration(p, &f[START], "health.start_period", 0,
	         &h->start_period_ms)))
		return r;
	if (f[HEALTHY].val &&
	    (r = get_u32(p, &f[HEALTHY], "health.healthy_threshold", 1,
	         THRESHOLD_MAX, &h->healthy_threshold)))
		return r;
	if (f[UNHEALTHY].val &&
	    (r = get_u32(p, &f[UNHEALTHY], "health.unhealthy_threshold", 1,
	         THRESHOLD_MAX, &h->unhealthy_threshold)))
		return r;
	return 0;
}

static void
update_defaults(Shoal__UpdateStrategy *u)
{
	u->strategy = SHOAL__UPDATE_STRATEGY__KIND__ROLLING;
	u->max_parallel = UPDATE_MAX_PARALLEL;
	u->min_healthy_time_ms = UPDATE_MIN_HEALTHY_MS;
	u->healthy_deadline_ms = UPDATE_HEALTHY_DEADLINE_MS;
	u->progress_deadline_ms = UPDATE_PROGRESS_DEADLINE_MS;
	u->auto_revert = 1;
}

static int
read_update(parser_t *p, const field_t *sec, Shoal__UpdateStrategy *u)
{
	enum {
		STRATEGY,
		PARALLEL,
		CANARY,
		PROMOTE,
		MIN_HEALTHY,
		HEALTHY_DL,
		PROGRESS_DL,
		FAILURES,
		REVERT
	};
	field_t f[] = { { "strategy" }, { "max_parallel" }, { "canary" },
		{ "auto_promote" }, { "min_healthy_time" },
		{ "healthy_deadline" }, { "progress_deadline" },
		{ "max_failures" }, { "auto_revert" } };
	char b[SHOWN_MAX + 4], d[32];
	bool canary;
	uint32_t failures = 0;
	const char *s;
	size_t k;
	int r;

	r = read_fields(p, sec->key, sec->val, "update", f, ARRAY_SIZE(f));
	if (r < 0)
		return r;
	if (f[STRATEGY].val) {
		r = text(p, f[STRATEGY].val, "update.strategy",
		    "rolling, canary or blue-green", SPEC_STRING_MAX, &s);
		if (r < 0)
			return r;
		for (k = 0; k < ARRAY_SIZE(strategy_names); k++)
			if (strcmp(s, strategy_names[k]) == 0)
				break;
		if (k == ARRAY_SIZE(strategy_names))
			return fail(p, f[STRATEGY].val, "update.strategy",
			    "expected rolling, canary or blue-green, got "
			    "'%s'",
			    shown(s, b));
		u->strategy = (Shoal__UpdateStrategy__Kind)k;
	}
	if (f[PARALLEL].val &&
	    (r = get_nodes(p, &f[PARALLEL], "update.max_parallel", 1,
	         &u->max_parallel, &u->max_parallel_percent)))
		return r;
	if (f[CANARY].val &&
	    (r = get_nodes(p, &f[CANARY], "update.canary", 0, &u->canary,
	         &u->canary_percent)))
		return r;
	if (f[PROMOTE].val &&
	    (r = get_bool(p, &f[PROMOTE], "update.auto_promote",
	         &u->auto_promote)))
		return r;
	if (f[MIN_HEALTHY].val &&
	    (r = get_duration(p, &f[MIN_HEALTHY], "update.min_healthy_time", 0,
	         &u->min_healthy_time_ms)))
		return r;
	if (f[HEALTHY_DL].val &&
	    (r = get_duration(p, &f[HEALTHY_DL], "update.healthy_deadline", 1,
	         &u->healthy_deadline_ms)))
		return r;
	if (f[PROGRESS_DL].val &&
	    (r = get_duration(p, &f[PROGRESS_DL], "update.progress_deadline", 1,
	         &u->progress_deadline_ms)))
		return r;
	if (f[FAILURES].val &&
	    (r = get_u32(p, &f[FAILURES], "update.max_failures", 0, NODES_MAX,
	         &failures)))
		return r;
	u->max_failures = failures;
	if (f[REVERT].val &&
	    (r = get_bool(p, &f[REVERT], "update.auto_revert",
	         &u->auto_revert)))
		return r;

	/* Knobs that would be silently ignored are refused instead. */
	canary = u->strategy == SHOAL__UPDATE_STRATEGY__KIND__CANARY;
	if (canary && u->canary == 0)
		return fail(p, blame(&f[CANARY], &f[STRATEGY], sec->key),
		    "update.canary",
		    "strategy 'canary' needs at least one canary node (a "
		    "count or a percentage)");
	if (!canary && u->canary)
		return fail(p, f[CANARY].val, "update.canary",
		    "applies only to strategy 'canary', not '%s'",
		    strategy_names[u->strategy]);
	if (!canary && u->auto_promote)
		return fail(p, f[PROMOTE].val, "update.auto_promote",
		    "applies only to strategy 'canary', not '%s'",
		    strategy_names[u->strategy]);
	if (u->healthy_deadline_ms <= u->min_healthy_time_ms)
		return fail(p, blame(&f[HEALTHY_DL], &f[MIN_HEALTHY], sec->key),
		    "update.healthy_deadline",
		    "must be longer than update.min_healthy_time (%s)",
		    fmt_ms(u->min_healthy_time_ms, d));
	if (u->progress_deadline_ms < u->healthy_deadline_ms)
		return fail(p, blame(&f[PROGRESS_DL], &f[HEALTHY_DL], sec->key),
		    "update.progress_deadline",
		    "must be at least update.healthy_deadline (%s)",
		    fmt_ms(u->healthy_deadline_ms, d));
	return 0;
}

static int
read_spec(parser_t *p, yaml_node_t *root, Shoal__ServiceSpec *spec)
{
	enum {
		SERVICE,
		SELECTOR,
		IMAGE,
		COMMAND,
		ENV,
		PORT,
		RESOURCES,
		ARTIFACTS,
		HEALTH,
		UPDATE
	};
	field_t f[] = { { "service" }, { "selector" }, { "image" },
		{ "command" }, { "env" }, { "port" }, { "resources" },
		{ "artifacts" }, { "health" }, { "update" } };
	char b[SHOWN_MAX + 4];
	const char *why;
	uint32_t port = 0;
	int r;

	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, NULL,
		    "expected a mapping of fields (service: NAME, image: "
		    "IMAGE, ...), got %s",
		    kind(root));
	r = read_fields(p, root, root, "", f, ARRAY_SIZE(f));
	if (r < 0)
		return r;
	if (!f[SERVICE].val)
		return fail(p, root, "service",
		    "missing; every spec names its service");
	if (!f[IMAGE].val)
		return fail(p, root, "image",
		    "missing; every spec names a fully qualified image");

	r = get_string(p, &f[SERVICE], "service", SPEC_STRING_MAX,
	    &spec->service);
	if (r < 0)
		return r;
	if (!name_ok(spec->service))
		return fail(p, f[SERVICE].val, "service",
		    "'%s' is not a service name: 1-%d of [a-z0-9-], starting "
		    "and ending with a letter or digit",
		    shown(spec->service, b), SPEC_NAME_MAX);
	if (f[SELECTOR].val && (r = read_selector(p, &f[SELECTOR], spec)))
		return r;
	r = get_string(p, &f[IMAGE], "image", SPEC_STRING_MAX, &spec->image);
	if (r < 0)
		return r;
	if ((why = image_problem(spec->image)))
		return fail(p, f[IMAGE].val, "image",
		    "'%s' is not a fully qualified image: %s",
		    shown(spec->image, b), why);
	if (f[COMMAND].val && (r = read_command(p, &f[COMMAND], spec)))
		return r;
	if (f[ENV].val && (r = read_env(p, &f[ENV], spec)))
		return r;
	if (f[PORT].val && (r = get_u32(p, &f[PORT], "port", 1, 65535, &port)))
		return r;
	spec->port = port;

	/* Always present, so `resources: {}` and no resources pack alike. */
	spec->resources = xmalloc(sizeof *spec->resources);
	shoal__resources__init(spec->resources);
	if (f[RESOURCES].val &&
	    (r = read_resources(p, &f[RESOURCES], spec->resources)))
		return r;
	if (f[ARTIFACTS].val && (r = read_artifacts(p, &f[ARTIFACTS], spec)))
		return r;
	if (f[HEALTH].val) {
		spec->health = xmalloc(sizeof *spec->health);
		shoal__health_check__init(spec->health);
		r = read_health(p, &f[HEALTH], spec, spec->health);
		if (r < 0)
			return r;
	}
	spec->update = xmalloc(sizeof *spec->update);
	shoal__update_strategy__init(spec->update);
	update_defaults(spec->update);
	if (f[UPDATE].val && (r = read_update(p, &f[UPDATE], spec->update)))
		return r;
	return 0;
}

static int
syntax_error(parser_t *p, const yaml_parser_t *yp)
{
	snprintf(p->err, p->errlen, "%s:%zu:%zu: YAML syntax error: %s",
	    p->name, yp->problem_mark.line + 1, yp->problem_mark.column + 1,
	    yp->problem ? yp->problem : "unreadable");
	return SHOAL_E_CONFIG;
}

/*
 * yaml_parser_load() stops after the first document; loading once more
 * reads to the end of the stream, so a second document (even an empty one
 * after a "---") is refused rather than silently ignored.
 */
static int
only_document(parser_t *p, yaml_parser_t *yp)
{
	yaml_document_t extra;
	yaml_node_t *root;
	int r = 0;

	if (!yaml_parser_load(yp, &extra))
		return syntax_error(p, yp);
	root = yaml_document_get_root_node(&extra);
	if (root) {
		/* Blame its "---", not the first line of its content. */
		yaml_node_t start = { .start_mark = extra.start_mark };

		r = fail(p, &start, NULL,
		    "a second YAML document; a spec file holds one service");
	}
	yaml_document_delete(&extra);
	return r;
}

int
spec_parse(const char *name, const char *text, size_t len,
    Shoal__ServiceSpec **ret, char *err, size_t errlen)
{
	char scratch[1];
	parser_t p = { .name = name ? name : "spec",
		.err = err,
		.errlen = errlen };
	Shoal__ServiceSpec *spec = NULL;
	yaml_parser_t yp;
	yaml_document_t doc;
	yaml_node_t *root;
	const char *why;
	size_t packed;
	int r;

	if (!p.err || !p.errlen) {
		p.err = scratch;
		p.errlen = sizeof scratch;
	}
	if (len > SPEC_FILE_MAX)
		return fail(&p, NULL, NULL,
		    "the file is larger than %d bytes; a spec is much smaller",
		    SPEC_FILE_MAX);
	if (!yaml_parser_initialize(&yp))
		abort();
	yaml_parser_set_input_string(&yp,
	    (const unsigned char *)(text ? text : ""), text ? len : 0);
	if (!yaml_parser_load(&yp, &doc)) {
		r = syntax_error(&p, &yp);
		goto out_parser;
	}
	p.doc = &doc;
	r = only_document(&p, &yp);
	if (r < 0)
		goto out_doc;
	root = yaml_document_get_root_node(&doc);
	if (!root || is_null(root)) {
		r = fail(&p, NULL, NULL,
		    "the spec is empty; it needs at least service and image");
		goto out_doc;
	}
	spec = xmalloc(sizeof *spec);
	shoal__service_spec__init(spec);
	r = read_spec(&p, root, spec);
	if (r < 0)
		goto out_spec;
	packed = shoal__service_spec__get_packed_size(spec);
	if (packed > SPEC_PACKED_MAX) {
		r = fail(&p, root, NULL,
		    "the spec is too large: it packs to %zu bytes, above the "
		    "limit of %d",
		    packed, SPEC_PACKED_MAX);
		goto out_spec;
	}
	/* The parser's checks should imply these; a miss is a bug here. */
	r = spec_validate(spec, &why);
	if (r < 0) {
		r = fail(&p, root, NULL, "spec refused: %s", why);
		goto out_spec;
	}
	*ret = spec;
	spec = NULL;
out_spec:
	spec_free(spec);
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&yp);
	return r;
}

int
spec_load(const char *path, Shoal__ServiceSpec **ret, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	FILE *f;
	int r;

	f = fopen(path, "r");
	if (!f) {
		r = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	/* One byte past the cap tells spec_parse() the file is too big. */
	buf = xmalloc(SPEC_FILE_MAX + 1);
	n = fread(buf, 1, SPEC_FILE_MAX + 1, f);
	if (ferror(f)) {
		r = errno ? -errno : -EIO;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
	} else {
		r = spec_parse(path, buf, n, ret, err, errlen);
	}
	free(buf);
	fclose(f);
	return r;
}
