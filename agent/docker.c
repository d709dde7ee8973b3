/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API client (see docker.h): HTTP over a unix socket with
 * libcurl, JSON with jansson. Each call builds its own easy handle, so the
 * agent's worker threads share one docker_t. Responses are read into a
 * capped buffer; a pull's progress stream is split into lines as it
 * arrives, since its errors come inside a 200 response.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/docker.h"
#include "common/error.h"
#include "common/util.h"

/* The newest API version this client is written against. */
#define API_NEWEST_MAJOR 1
#define API_NEWEST_MINOR 43
#define API_FLOOR_MINOR 41
#define BODY_MAX (8u << 20)
#define CALL_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 5000

struct docker {
	char *socket;
	char version[16];
	int podman; /* Podman's compatible service, not dockerd */
};

typedef struct buf {
	char *data;
	size_t len;
	int overflow;
	/* pull: the stream is parsed line by line as it comes */
	int stream;
	docker_progress_fn fn;
	void *fn_arg;
	char *stream_err;
} buf_t;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* One line of a pull's progress stream. */
static void
stream_line(buf_t *b, const char *line, size_t len)
{
	json_error_t je;
	json_t *o = json_loadb(line, len, 0, &je), *detail;
	const char *status, *error;

	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	error = json_string_value(json_object_get(o, "error"));
	detail = json_object_get(o, "errorDetail");
	if (!error && json_is_object(detail))
		error = json_string_value(json_object_get(detail, "message"));
	if (error && !b->stream_err)
		b->stream_err = xstrdup(error);
	status = json_string_value(json_object_get(o, "status"));
	if (status && b->fn) {
		json_t *pd = json_object_get(o, "progressDetail");
		json_int_t cur =
		    json_integer_value(json_object_get(pd, "current"));
		json_int_t tot =
		    json_integer_value(json_object_get(pd, "total"));

		b->fn(status, cur > 0 ? (uint64_t)cur : 0,
		    tot > 0 ? (uint64_t)tot : 0, b->fn_arg);
	}
	json_decref(o);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	buf_t *b = arg;
	size_t n = size * nmemb;
	char *nl;

	if (b->len + n > BODY_MAX) {
		b->overflow = 1;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	if (!b->stream)
		return n;
	/* Complete lines are parsed and dropped; a partial one waits. */
	while ((nl = memchr(b->data, '\n', b->len))) {
		size_t line = (size_t)(nl - b->data);

		stream_line(b, b->data, line);
		memmove(b->data, nl + 1, b->len - line - 1);
		b->len -= line + 1;
		b->data[b->len] = '\0';
	}
	return n;
}

/*
 * One request. path starts with "/" and is used as is (callers escape);
 * versioned: prefix the negotiated version. Returns the HTTP status (> 0)
 * or a negative code with err set; the body is in *out (caller frees).
 */
static long
request(docker_t *d, const char *method, const char *path, int versioned,
    const char *json_body, long timeout_ms, buf_t *out, char *err,
    size_t errlen)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char url[2048];
	long status = 0;
	CURLcode cc;

	if (!curl)
		abort();
	if (versioned)
		snprintf(url, sizeof url, "http://localhost/v%s%s", d->version,
		    path);
	else
		snprintf(url, sizeof url, "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)CONNECT_TIMEOUT_MS);
	if (timeout_ms > 0) {
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	} else {
		/* A pull has no deadline, but a stalled one ends. */
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 300L);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	if (json_body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	if (out->overflow) {
		set_err(err, errlen, "%s %s: response above %u bytes", method,
		    path, BODY_MAX);
		return -EMSGSIZE;
	}
	if (cc != CURLE_OK) {
		set_err(err, errlen, "%s %s via %s: %s", method, path,
		    d->socket, curl_easy_strerror(cc));
		return cc == CURLE_OPERATION_TIMEDOUT ? SHOAL_E_TIMEOUT
		                                      : -ECONNREFUSED;
	}
	return status;
}

/* The daemon's {"message": ...} of a failed call, into err. */
static int
failed(long status, const buf_t *b, const char *what, char *err, size_t errlen)
{
	json_t *o = b->data ? json_loads(b->data, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(o, "message"));

	set_err(err, errlen, "%s: %s", what,
	    msg          ? msg
	        : b->len ? "unexpected answer"
	                 : "no answer");
	if (!msg && b->len && status)
		set_err(err, errlen, "%s: HTTP status %ld", what, status);
	json_decref(o);
	return status == 404 ? SHOAL_E_NOT_FOUND : SHOAL_E_UNEXPECTED;
}

static char *
escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *copy;

	if (!e)
		abort();
	copy = xstrdup(e);
	curl_free(e);
	return copy;
}

/* -- version ----------------------------------------------------------- */

static int
parse_version(const char *s, unsigned *major, unsigned *minor)
{
	return s && sscanf(s, "%u.%u", major, minor) == 2 ? 0 : -1;
}

int
docker_open(const char *socket_path, docker_t **ret, char *err, size_t errlen)
{
	docker_t *d = xcalloc(1, sizeof *d);
	buf_t b = { 0 };
	json_t *o = NULL;
	unsigned major, minor;
	long st;
	int r;

	d->socket = xstrdup(socket_path);
	st = request(d, "GET", "/version", 0, NULL, CALL_TIMEOUT_MS, &b, err,
	    errlen);
	if (st < 0) {
		r = (int)st;
		goto fail;
	}
	if (st != 200) {
		r = failed(st, &b, "GET /version", err, errlen);
		goto fail;
	}
	o = json_loads(b.data ? b.data : "", 0, NULL);
	if (parse_version(json_string_value(json_object_get(o, "ApiVersion")),
	        &major, &minor) < 0) {
		set_err(err, errlen, "%s: /version names no ApiVersion",
		    socket_path);
		r = SHOAL_E_UNEXPECTED;
		goto fail;
	}
	if (major != 1 || minor < API_FLOOR_MINOR) {
		set_err(err, errlen,
		    "%s speaks API %u.%u; shoal needs %s or newer", socket_path,
		    major, minor, DOCKER_API_FLOOR);
		r = SHOAL_E_PROTOCOL;
		goto fail;
	}
	if (minor > API_NEWEST_MINOR)
		minor = API_NEWEST_MINOR;
	{
		json_t *comp;
		size_t i;

		json_array_foreach(json_object_get(o, "Components"), i, comp)
		{
			const char *name =
			    json_string_value(json_object_get(comp, "Name"));

			if (name && strstr(name, "Podman"))
				d->podman = 1;
		}
	}
	snprintf(d->version, sizeof d->version, "%u.%u", API_NEWEST_MAJOR,
	    minor);
	json_decref(o);
	free(b.data);
	*ret = d;
	return 0;
fail:
	json_decref(o);
	free(b.data);
	free(d->socket);
	free(d);
	return r;
}

void
docker_close(docker_t **d)
{
	if (!*d)
		return;
	free((*d)->socket);
	free(*d);
	*d = NULL;
}

int
docker_is_podman(const docker_t *d)
{
	return d->podman;
}

const char *
docker_api_version(const docker_t *d)
{
	return d->version;
}

/* -- images ------------------------------------------------------------ */

int
docker_image_present(docker_t *d, const char *image, char *err, size_t errlen)
{
	char *e = escape(image), path[1024], what[512];
	buf_t b = { 0 };
	long st;
	int r;

	snprintf(path, sizeof path, "/images/%s/json", e);
	st = request(d, "GET", path, 1, NULL, CALL_TIMEOUT_MS, &b, err, errlen);
	if (st == 200)
		r = 1;
	else if (st == 404)
		r = 0;
	else if (st < 0)
		r = (int)st;
	else {
		snprintf(what, sizeof what, "inspect image %s", image);
		r = failed(st, &b, what, err, errlen);
	}
	free(e);
	free(b.data);
	return r;
}

/* Splits image into repository and tag (or digest): the tag is after the
 * last ':' that follows the last '/', so registry ports stay put. */
static void
split_image(const char *image, char **repo, char **tag)
{
	const char *at = strchr(image, '@');
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');

	if (at) {
		*repo = xasprintf("%.*s", (int)(at - image), image);
		*tag = xstrdup(at + 1);
	} else if (colon) {
		*repo = xasprintf("%.*s", (int)(colon - image), image);
		*tag = xstrdup(colon + 1);
	} else {
		*repo = xstrdup(image);
		*tag = xstrdup("latest");
	}
}

int
docker_pull(docker_t *d, const char *image, docker_progress_fn fn, void *arg,
    char *err, size_t errlen)
{
	char *repo, *tag, *er, *et, *path;
	buf_t b = { .stream = 1, .fn = fn, .fn_arg = arg };
	char what[512];
	long st;
	int r = 0;

	split_image(image, &repo, &tag);
	er = escape(repo);
	et = escape(tag);
	path = xasprintf("/images/create?fromImage=%s&tag=%s", er, et);
	snprintf(what, sizeof what, "pull %s", image);
	st = request(d, "POST", path, 1, NULL, 0, &b, err, errlen);
	if (st < 0) {
		r = (int)st;
	} else if (st != 200) {
		b.stream = 0;
		r = failed(st, &b, what, err, errlen);
	} else {
		if (b.len)
			stream_line(&b, b.data, b.len); /* no final newline */
		if (b.stream_err) {
			set_err(err, errlen, "%s: %s", what, b.stream_err);
			r = SHOAL_E_NOT_FOUND;
		}
	}
	free(b.stream_err);
	free(b.data);
	free(path);
	free(er);
	free(et);
	free(repo);
	free(tag);
	return r;
}

/* -- containers -------------------------------------------------------- */

static json_t *
string_array(const char *const *v)
{
	json_t *a = json_array();

	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

int
docker_create(docker_t *d, const docker_create_t *c, char *id, char *err,
    size_t errlen)
{
	json_t *body = json_object(), *host = json_object(), *labels;
	char *text, *name = escape(c->name), path[512], what[256], port[32];
	buf_t b = { 0 };
	json_t *o = NULL;
	const char *got;
	long st;
	int r;

	id[0] = '\0';
	json_object_set_new(body, "Image", json_string(c->image));
	if (c->cmd)
		json_object_set_new(body, "Cmd", string_array(c->cmd));
	json_object_set_new(body, "Env", string_array(c->env));
	labels = json_object();
	for (const char *const *l = c->labels; l && l[0] && l[1]; l += 2)
		json_object_set_new(labels, l[0], json_string(l[1]));
	json_object_set_new(body, "Labels", labels);
	if (c->port) {
		snprintf(port, sizeof port, "%u/tcp", c->port);
		json_object_set_new(body, "ExposedPorts",
		    json_pack("{s:{}}", port));
		/* Loopback only, at a port the runtime picks. */
		json_object_set_new(host, "PortBindings",
		    json_pack("{s:[{s:s,s:s}]}", port, "HostIp", "127.0.0.1",
		        "HostPort", ""));
	}
	if (c->memory_bytes)
		json_object_set_new(host, "Memory",
		    json_integer((json_int_t)c->memory_bytes));
	if (c->cpus > 0)
		json_object_set_new(host, "NanoCpus",
		    json_integer((json_int_t)(c->cpus * 1e9)));
	if (c->binds)
		json_object_set_new(host, "Binds", string_array(c->binds));
	if (c->gpus && d->podman) {
		/* Podman takes GPUs as CDI devices (nvidia-ctk generates the
		 * spec); it has no count, so a node gives a service all of
		 * them. */
		json_object_set_new(host, "Devices",
		    json_pack("[{s:s,s:s,s:s}]", "PathOnHost",
		        "nvidia.com/gpu=all", "PathInContainer", "",
		        "CgroupPermissions", "rwm"));
	} else if (c->gpus) {
		/* dockerd: a device request for N GPUs, served by the NVIDIA
		 * container runtime hook. */
		json_object_set_new(host, "DeviceRequests",
		    json_pack("[{s:s,s:i,s:[[s]]}]", "Driver", "", "Count",
		        (int)c->gpus, "Capabilities", "gpu"));
	}
	json_object_set_new(body, "HostConfig", host);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		abort();

	snprintf(path, sizeof path, "/containers/create?name=%s", name);
	snprintf(what, sizeof what, "create %s", c->name);
	st =
	    request(d, "POST", path, 1, text, CALL_TIMEOUT_MS, &b, err, errlen);
	if (st < 0) {
		r = (int)st;
	} else if (st != 201 && st != 200) {
		r = failed(st, &b, what, err, errlen);
	} else {
		o = json_loads(b.data ? b.data : "", 0, NULL);
		got = json_string_value(json_object_get(o, "Id"));
		if (got && strlen(got) <= DOCKER_ID_MAX) {
			strcpy(id, got);
			r = 0;
		} else {
			set_err(err, errlen,
			    "%s: no container id in the answer", what);
			r = SHOAL_E_UNEXPECTED;
		}
	}
	json_decref(o);
	free(b.data);
	free(text);
	free(name);
	return r;
}

/* A POST or DELETE on /containers/{id}{suffix}; ok2 is another status
 * that means success. */
static int
container_call(docker_t *d, const char *method, const char *id,
    const char *suffix, long ok2, long timeout_ms, const char *verb, char *err,
    size_t errlen)
{
	char *e = escape(id), path[512], what[256];
	buf_t b = { 0 };
	long st;
	int r = 0;

	snprintf(path, sizeof path, "/containers/%s%s", e, suffix);
	snprintf(what, sizeof what, "%s %.12s", verb, id);
	st = request(d, method, path, 1, NULL, timeout_ms, &b, err, errlen);
	if (st < 0)
		r = (int)st;
	else if (st != 204 && st != 200 && st != ok2)
		r = failed(st, &b, what, err, errlen);
	free(b.data);
	free(e);
	return r;
}

int
docker_start(docker_t *d, const char *id, char *err, size_t errlen)
{
	/* 304: already running. */
	return container_call(d, "POST", id, "/start", 304, CALL_TIMEOUT_MS,
	    "start", err, errlen);
}

int
docker_stop(docker_t *d, const char *id, unsigned timeout_s, char *err,
    size_t errlen)
{
	char suffix[32];

	snprintf(suffix, sizeof suffix, "/stop?t=%u", timeout_s);
	return container_call(d, "POST", id, suffix, 304,
	    (long)timeout_s * 1000 + CALL_TIMEOUT_MS, "stop", err, errlen);
}

int
docker_remove(docker_t *d, const char *id, int force, char *err, size_t errlen)
{
	int r = container_call(d, "DELETE", id, force ? "?force=1&v=1" : "?v=1",
	    0, CALL_TIMEOUT_MS, "remove", err, errlen);

	return r == SHOAL_E_NOT_FOUND ? 0 : r; /* gone already */
}

/* "2026-11-24T07:01:02.123456789Z" -> ms; 0 for the zero time. */
static uint64_t
parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *rest;
	uint64_t ms = 0;

	if (!s || strncmp(s, "0001-", 5) == 0)
		return 0;
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return 0;
	if (*rest == '.') {
		int digits = 0;

		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			if (digits++ < 3)
				ms = ms * 10 + (uint64_t)(*rest - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	return (uint64_t)timegm(&tm) * 1000 + ms;
}

static void
copy_str(char *dst, size_t size, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, size, "%s", s ? s : "");
}

static void
fill_labels(docker_container_t *c, json_t *labels)
{
	const char *rev;

	copy_str(c->service, sizeof c->service,
	    json_object_get(labels, "shoal.service"));
	copy_str(c->node, sizeof c->node,
	    json_object_get(labels, "shoal.node"));
	rev = json_string_value(json_object_get(labels, "shoal.revision"));
	c->revision = rev ? strtoull(rev, NULL, 10) : 0;
}

/* The first published host port in inspect's NetworkSettings.Ports. */
static unsigned
inspect_port(json_t *ports)
{
	const char *key;
	json_t *v;

	json_object_foreach(ports, key, v)
	{
		json_t *first = json_array_get(v, 0);
		const char *p =
		    json_string_value(json_object_get(first, "HostPort"));

		if (p && atoi(p) > 0)
			return (unsigned)atoi(p);
	}
	return 0;
}

int
docker_inspect(docker_t *d, const char *id, docker_container_t *out, char *err,
    size_t errlen)
{
	char *e = escape(id), path[512], what[256];
	json_t *o = NULL, *state, *config;
	buf_t b = { 0 };
	const char *name;
	long st;
	int r = 0;

	memset(out, 0, sizeof *out);
	snprintf(path, sizeof path, "/containers/%s/json", e);
	snprintf(what, sizeof what, "inspect %.12s", id);
	st = request(d, "GET", path, 1, NULL, CALL_TIMEOUT_MS, &b, err, errlen);
	if (st < 0) {
		r = (int)st;
		goto out;
	}
	if (st != 200) {
		r = failed(st, &b, what, err, errlen);
		goto out;
	}
	o = json_loads(b.data ? b.data : "", 0, NULL);
	if (!json_is_object(o)) {
		set_err(err, errlen, "%s: the answer is not JSON", what);
		r = SHOAL_E_UNEXPECTED;
		goto out;
	}
	copy_str(out->id, sizeof out->id, json_object_get(o, "Id"));
	name = json_string_value(json_object_get(o, "Name"));
	snprintf(out->name, sizeof out->name, "%s",
	    name ? name + (name[0] == '/') : "");
	state = json_object_get(o, "State");
	copy_str(out->state, sizeof out->state,
	    json_object_get(state, "Status"));
	out->exit_code =
	    (int)json_integer_value(json_object_get(state, "ExitCode"));
	out->started_ms =
	    parse_time(json_string_value(json_object_get(state, "StartedAt")));
	config = json_object_get(o, "Config");
	copy_str(out->image, sizeof out->image,
	    json_object_get(config, "Image"));
	fill_labels(out, json_object_get(config, "Labels"));
	out->host_port = inspect_port(
	    json_object_get(json_object_get(o, "NetworkSettings"), "Ports"));
out:
	json_decref(o);
	free(b.data);
	free(e);
	return r;
}

int
docker_list(docker_t *d, const char *label_key, const char *label_value,
    docker_container_t **ret, size_t *ret_n, char *err, size_t errlen)
{
	json_t *filter, *o = NULL, *item;
	char *ftext, *fe, *path, label[256];
	docker_container_t *v = NULL;
	buf_t b = { 0 };
	size_t n = 0, i;
	long st;
	int r = 0;

	snprintf(label, sizeof label, "%s=%s", label_key, label_value);
	filter = json_pack("{s:[s]}", "label", label);
	ftext = json_dumps(filter, JSON_COMPACT);
	json_decref(filter);
	fe = escape(ftext);
	path = xasprintf("/containers/json?all=1&filters=%s", fe);
	st = request(d, "GET", path, 1, NULL, CALL_TIMEOUT_MS, &b, err, errlen);
	if (st < 0) {
		r = (int)st;
		goto out;
	}
	if (st != 200) {
		r = failed(st, &b, "list containers", err, errlen);
		goto out;
	}
	o = json_loads(b.data ? b.data : "", 0, NULL);
	if (!json_is_array(o)) {
		set_err(err, errlen,
		    "list containers: the answer is not a "
		    "JSON array");
		r = SHOAL_E_UNEXPECTED;
		goto out;
	}
	v = xcalloc(json_array_size(o) + 1, sizeof *v);
	json_array_foreach(o, i, item)
	{
		docker_container_t *c = &v[n];
		json_t *names = json_object_get(item, "Names"), *p;
		const char *name = json_string_value(json_array_get(names, 0));
		size_t k;

		copy_str(c->id, sizeof c->id, json_object_get(item, "Id"));
		if (!c->id[0])
			continue;
		snprintf(c->name, sizeof c->name, "%s",
		    name ? name + (name[0] == '/') : "");
		copy_str(c->image, sizeof c->image,
		    json_object_get(item, "Image"));
		copy_str(c->state, sizeof c->state,
		    json_object_get(item, "State"));
		fill_labels(c, json_object_get(item, "Labels"));
		json_array_foreach(json_object_get(item, "Ports"), k, p)
		{
			json_int_t pub = json_integer_value(
			    json_object_get(p, "PublicPort"));

			if (pub > 0 && pub < 65536) {
				c->host_port = (unsigned)pub;
				break;
			}
		}
		n++;
	}
out:
	if (r == 0) {
		*ret = v;
		*ret_n = n;
	} else {
		free(v);
	}
	json_decref(o);
	free(b.data);
	free(path);
	free(fe);
	free(ftext);
	return r;
}

/* Non-TTY logs come in frames: a byte for the stream, three zero bytes, a
 * big-endian length, then the payload. */
static char *
demux(const char *data, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0;

	while (i + 8 <= len && (data[i] == 1 || data[i] == 2) &&
	    data[i + 1] == 0 && data[i + 2] == 0 && data[i + 3] == 0) {
		const unsigned char *h = (const unsigned char *)data + i;
		size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
		    (size_t)h[6] << 8 | h[7];

		i += 8;
		if (n > len - i)
			n = len - i;
		memcpy(out + o, data + i, n);
		o += n;
		i += n;
	}
	if (i < len) { /* not framed (a TTY), or the rest of a cut frame */
		memcpy(out + o, data + i, len - i);
		o += len - i;
	}
	out[o] = '\0';
	return out;
}

int
docker_logs_tail(docker_t *d, const char *id, unsigned lines, char **ret,
    char *err, size_t errlen)
{
	char *e = escape(id), path[512], what[256];
	buf_t b = { 0 };
	long st;
	int r = 0;

	snprintf(path, sizeof path,
	    "/containers/%s/logs?stdout=1&stderr=1&tail=%u", e, lines);
	snprintf(what, sizeof what, "logs of %.12s", id);
	st = request(d, "GET", path, 1, NULL, CALL_TIMEOUT_MS, &b, err, errlen);
	if (st < 0)
		r = (int)st;
	else if (st != 200)
		r = failed(st, &b, what, err, errlen);
	else
		*ret = demux(b.data ? b.data : "", b.len);
	free(b.data);
	free(e);
	return r;
}
