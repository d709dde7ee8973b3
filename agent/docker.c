/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API client (see docker.h), run on the agent's worker
 * threads: HTTP over a unix socket with libcurl, JSON with jansson. Each
 * call builds its own easy handle, so the threads share one docker_t, and
 * reads the answer into a buffer capped at BODY_MAX; a pull's progress
 * stream is parsed line by line as it arrives instead, since its errors come
 * inside a 200 answer and it may run for many minutes.
 *
 * Codes, translated here once: a 404 from the daemon is SHOAL_E_NOT_FOUND;
 * any other refusal (a status the API does not list as success, an error
 * inside a pull stream) and an answer that is not the JSON expected are
 * SHOAL_E_UNEXPECTED; no daemon at the socket is the connect errno
 * (-ENOENT, -ECONNREFUSED, ...); a call past its deadline, or a pull that
 * stalled, is SHOAL_E_TIMEOUT; an answer cut short is -EIO and one above the
 * cap -EMSGSIZE; a daemon outside the API versions spoken here is
 * SHOAL_E_PROTOCOL; GPUs that the runtime cannot be asked for are -ENOTSUP.
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

/*
 * API versions: 1.41 is the floor (Podman 4's compatible service); 1.47 the
 * newest whose changes were read against what this file sends and reads
 * (none of 1.42-1.47 touches them). Docker 29 serves 1.44 and up only, so
 * the newest must stay at or above that.
 */
#define API_MAJOR 1
#define API_FLOOR_MINOR 41
#define API_NEWEST_MINOR 47
#define BODY_MAX (8u << 20)
#define CALL_TIMEOUT_MS 30000L
/* Resource readings and pings: a slow daemon must not hold a worker long
 * (probes and restarts wait for one). */
#define STATS_TIMEOUT_MS 5000L
#define CONNECT_TIMEOUT_MS 5000L
/* A pull has no deadline, but one that moved no byte this long ends. */
#define PULL_STALL_S 600L
/* Podman's compatible service takes CDI device requests from 5.4 on. */
#define PODMAN_CDI_MAJOR 5
#define PODMAN_CDI_MINOR 4
#define GPU_CDI_ALL "nvidia.com/gpu=all"

struct docker {
	char *socket;
	char version[16]; /* negotiated; empty while docker_open asks */
	int podman;       /* Podman's compatible service, not dockerd */
	unsigned podman_major, podman_minor;
	char podman_version[32];
};

typedef struct buf {
	char *data;
	size_t len, cap;
	int overflow;
	CURL *curl; /* the write callback asks it for the status */
	/* pull: a 200 answer is parsed line by line as it comes */
	int stream;
	docker_progress_fn fn;
	void *fn_arg;
	char *stream_err;
} buf_t;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The reason is one line: a daemon's message may hold newlines. */
static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* "verb object" for errors; a full hex id is shortened as docker does. */
static void
what_of(char *buf, size_t size, const char *verb, const char *obj)
{
	size_t n = strlen(obj);

	if (n == DOCKER_ID_MAX && strspn(obj, "0123456789abcdef") == n)
		n = 12;
	snprintf(buf, size, "%s %.*s", verb, (int)(n > 128 ? 128 : n), obj);
}

/* One line of a pull's progress stream. */
static void
stream_line(buf_t *b, const char *line, size_t len)
{
	json_t *o, *detail, *pd;
	const char *status, *error;
	json_int_t cur, tot;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return;
	o = json_loadb(line, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o); /* not ours to judge: only errors matter */
		return;
	}
	error = json_string_value(json_object_get(o, "error"));
	detail = json_object_get(o, "errorDetail");
	if (!error)
		error = json_string_value(json_object_get(detail, "message"));
	if (json_is_object(detail) && !error)
		error = "the daemon reported an error without a message";
	if (error && !b->stream_err)
		b->stream_err = xstrdup(error);
	status = json_string_value(json_object_get(o, "status"));
	if (!error && status && b->fn) {
		pd = json_object_get(o, "progressDetail");
		cur = json_integer_value(json_object_get(pd, "current"));
		tot = json_integer_value(json_object_get(pd, "total"));
		b->fn(status, cur > 0 ? (uint64_t)cur : 0,
		    tot > 0 ? (uint64_t)tot : 0, b->fn_arg);
	}
	json_decref(o);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	buf_t *b = arg;
	size_t n = size * nmemb, start = 0;
	long status = 0;
	char *nl;

	if (n > BODY_MAX - b->len) {
		b->overflow = 1;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		b->cap = b->cap ? b->cap : 4096;
		while (b->cap < b->len + n + 1)
			b->cap *= 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	if (!b->stream)
		return n;
	/* Only a 200 answer is a stream; a refusal is one JSON object that
	 * failed() reads whole. */
	curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return n;
	/* Complete lines are parsed and dropped; a partial one waits. */
	while ((nl = memchr(b->data + start, '\n', b->len - start))) {
		stream_line(b, b->data + start, (size_t)(nl - b->data) - start);
		start = (size_t)(nl - b->data) + 1;
	}
	if (start) {
		memmove(b->data, b->data + start, b->len - start);
		b->len -= start;
		b->data[b->len] = '\0';
	}
	return n;
}

static const char *
errno_text(int e, char *buf, size_t size)
{
	return strerror_r(e, buf, size); /* the GNU one: returns the text */
}

/*
 * One request. path starts with "/" and is escaped by the caller; it goes
 * under the negotiated version once there is one. timeout_ms 0: no
 * deadline, a stall limit instead. Returns the HTTP status (> 0), or a
 * negative code with err set as "what: reason". The body is in *out
 * (caller frees out->data).
 */
static long
request(docker_t *d, const char *method, const char *path, const char *body,
    long timeout_ms, buf_t *out, const char *what, char *err, size_t errlen)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char cerr[CURL_ERROR_SIZE] = "", ebuf[128];
	char *url;
	long status = 0, os_errno = 0;
	CURLcode cc;

	if (!curl)
		abort(); /* out of memory */
	url = d->version[0]
	    ? xasprintf("http://localhost/v%s%s", d->version, path)
	    : xasprintf("http://localhost%s", path);
	out->curl = curl;
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	if (timeout_ms > 0) {
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	} else {
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, PULL_STALL_S);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	/* No "Expect: 100-continue" round trip for a larger create body. */
	hdr = curl_slist_append(hdr, "Expect:");
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else if (cc == CURLE_COULDNT_CONNECT)
		curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	out->curl = NULL;
	free(url);
	if (out->overflow) {
		set_err(err, errlen, "%s: the answer is above %u bytes", what,
		    BODY_MAX);
		return -EMSGSIZE;
	}
	switch (cc) {
	case CURLE_OK:
		return status;
	case CURLE_COULDNT_CONNECT:
		if (!os_errno)
			os_errno = ECONNREFUSED;
		set_err(err, errlen, "%s: cannot connect to %s: %s", what,
		    d->socket, errno_text((int)os_errno, ebuf, sizeof ebuf));
		return -os_errno;
	case CURLE_OPERATION_TIMEDOUT:
		set_err(err, errlen, "%s: %s", what,
		    timeout_ms > 0 ? "no answer in time" : "stalled");
		return SHOAL_E_TIMEOUT;
	default:
		set_err(err, errlen, "%s: %s", what,
		    cerr[0] ? cerr : curl_easy_strerror(cc));
		return cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR ||
		        cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING
		    ? -EIO
		    : SHOAL_E_UNEXPECTED;
	}
}

/* A refusal: the daemon's {"message": ...} into err. */
static int
failed(long status, const buf_t *b, const char *what, char *err, size_t errlen)
{
	json_t *o = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(o, "message"));

	if (msg && *msg)
		set_err(err, errlen, "%s: %s", what, msg);
	else
		set_err(err, errlen, "%s: HTTP status %ld from the daemon",
		    what, status);
	json_decref(o);
	return status == 404 ? SHOAL_E_NOT_FOUND : SHOAL_E_UNEXPECTED;
}

/* The answer as a JSON value of the type wanted, or NULL with err set. */
static json_t *
answer_json(const buf_t *b, json_type type, const char *what, char *err,
    size_t errlen)
{
	json_t *o = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;

	if (!o || json_typeof(o) != type) {
		set_err(err, errlen, "%s: the answer is not the JSON expected",
		    what);
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *
escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *copy;

	if (!e)
		abort(); /* out of memory */
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

static void
find_podman(docker_t *d, json_t *components)
{
	json_t *comp;
	size_t i;

	json_array_foreach(components, i, comp)
	{
		const char *name =
		    json_string_value(json_object_get(comp, "Name"));
		const char *v =
		    json_string_value(json_object_get(comp, "Version"));

		if (!name || !strstr(name, "Podman"))
			continue;
		d->podman = 1;
		snprintf(d->podman_version, sizeof d->podman_version, "%s",
		    v ? v : "?");
		parse_version(v, &d->podman_major, &d->podman_minor);
	}
}

int
docker_open(const char *socket_path, docker_t **ret, char *err, size_t errlen)
{
	docker_t *d = xcalloc(1, sizeof *d);
	buf_t b = { 0 };
	json_t *o = NULL;
	const char *api, *min_api;
	unsigned major, minor, min_major, min_minor;
	long st;
	int r;

	d->socket = xstrdup(socket_path);
	st = request(d, "GET", "/version", NULL, CALL_TIMEOUT_MS, &b,
	    "GET /version", err, errlen);
	if (st < 0) {
		r = (int)st;
		goto fail;
	}
	if (st != 200) {
		r = failed(st, &b, "GET /version", err, errlen);
		goto fail;
	}
	o = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	api = json_string_value(json_object_get(o, "ApiVersion"));
	if (parse_version(api, &major, &minor) < 0) {
		set_err(err, errlen, "%s: /version names no API version",
		    socket_path);
		r = SHOAL_E_UNEXPECTED;
		goto fail;
	}
	if (major != API_MAJOR || minor < API_FLOOR_MINOR) {
		set_err(err, errlen,
		    "%s speaks Docker API %s; shoal needs %s or newer",
		    socket_path, api, DOCKER_API_FLOOR);
		r = SHOAL_E_PROTOCOL;
		goto fail;
	}
	if (minor > API_NEWEST_MINOR)
		minor = API_NEWEST_MINOR;
	/* A daemon may have dropped old versions (Docker 29: below 1.44). */
	min_api = json_string_value(json_object_get(o, "MinAPIVersion"));
	if (parse_version(min_api, &min_major, &min_minor) == 0 &&
	    (min_major > API_MAJOR ||
	        (min_major == API_MAJOR && min_minor > minor))) {
		set_err(err, errlen,
		    "%s serves Docker API %s to %s only; shoal speaks %s to "
		    "%d.%d",
		    socket_path, min_api, api, DOCKER_API_FLOOR, API_MAJOR,
		    API_NEWEST_MINOR);
		r = SHOAL_E_PROTOCOL;
		goto fail;
	}
	find_podman(d, json_object_get(o, "Components"));
	snprintf(d->version, sizeof d->version, "%d.%u", API_MAJOR, minor);
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
	char *e = escape(image), *path = xasprintf("/images/%s/json", e);
	char what[256];
	buf_t b = { 0 };
	long st;
	int r;

	what_of(what, sizeof what, "inspect image", image);
	st = request(d, "GET", path, NULL, CALL_TIMEOUT_MS, &b, what, err,
	    errlen);
	if (st == 200)
		r = 1;
	else if (st == 404)
		r = 0;
	else if (st < 0)
		r = (int)st;
	else
		r = failed(st, &b, what, err, errlen);
	free(path);
	free(e);
	free(b.data);
	return r;
}

/*
 * Splits an image into the repository and the tag or digest that
 * /images/create takes apart. The tag is after the last ':' behind the last
 * '/', so a registry's port stays in the repository; a digest wins over a
 * tag (name:tag@digest pulls the digest).
 */
static void
split_image(const char *image, char **repo, char **tag)
{
	const char *at = strchr(image, '@');
	size_t n = at ? (size_t)(at - image) : strlen(image);
	const char *slash = memrchr(image, '/', n);
	const char *from = slash ? slash : image;
	const char *colon = memchr(from, ':', n - (size_t)(from - image));

	if (at)
		*tag = xstrdup(at + 1);
	else
		*tag = xstrdup(colon ? colon + 1 : "latest");
	if (colon)
		n = (size_t)(colon - image);
	*repo = xasprintf("%.*s", (int)n, image);
}

int
docker_pull(docker_t *d, const char *image, docker_progress_fn fn, void *arg,
    char *err, size_t errlen)
{
	buf_t b = { .stream = 1, .fn = fn, .fn_arg = arg };
	char *repo, *tag, *er, *et, *path, what[256];
	long st;
	int r = 0;

	split_image(image, &repo, &tag);
	er = escape(repo);
	et = escape(tag);
	path = xasprintf("/images/create?fromImage=%s&tag=%s", er, et);
	what_of(what, sizeof what, "pull", image);
	st = request(d, "POST", path, NULL, 0, &b, what, err, errlen);
	if (st < 0) {
		r = (int)st;
	} else if (st != 200) {
		r = failed(st, &b, what, err, errlen);
	} else {
		stream_line(&b, b.data, b.len); /* a last line without \n */
		if (b.stream_err) {
			set_err(err, errlen, "%s: %s", what, b.stream_err);
			r = SHOAL_E_UNEXPECTED;
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

/*
 * GPUs. dockerd: a device request for the count, served by the NVIDIA
 * container toolkit. Podman attaches GPUs as CDI devices ("nvidia.com/gpu=
 * all", from the spec nvidia-ctk generates) and has no count. Through its
 * compatible API before 5.4 it cannot: it accepts and ignores device
 * requests, and a CDI name in HostConfig.Devices comes out as
 * "nvidia.com/gpu=all::rwm" (unresolvable) or is stat'ed as a path (tried
 * on 4.3.1 with a CDI spec the CLI resolves). From 5.4 it takes a device
 * request with the "cdi" driver and the device names.
 */
static int
add_gpus(docker_t *d, const docker_create_t *c, json_t *host, const char *what,
    char *err, size_t errlen)
{
	if (!d->podman) {
		json_object_set_new(host, "DeviceRequests",
		    json_pack("[{s:s,s:I,s:[[s]]}]", "Driver", "", "Count",
		        (json_int_t)c->gpus, "Capabilities", "gpu"));
		return 0;
	}
	if (d->podman_major > PODMAN_CDI_MAJOR ||
	    (d->podman_major == PODMAN_CDI_MAJOR &&
	        d->podman_minor >= PODMAN_CDI_MINOR)) {
		json_object_set_new(host, "DeviceRequests",
		    json_pack("[{s:s,s:[s]}]", "Driver", "cdi", "DeviceIDs",
		        GPU_CDI_ALL));
		return 0;
	}
	set_err(err, errlen,
	    "%s: GPUs through Podman's Docker API need Podman %d.%d or newer "
	    "(this is %s)",
	    what, PODMAN_CDI_MAJOR, PODMAN_CDI_MINOR, d->podman_version);
	return -ENOTSUP;
}

int
docker_create(docker_t *d, const docker_create_t *c, char *id, char *err,
    size_t errlen)
{
	json_t *body = json_object(), *host = json_object(), *labels;
	char *text = NULL, *name = escape(c->name), *path = NULL;
	char what[256], port[32];
	buf_t b = { 0 };
	json_t *o = NULL;
	const char *got;
	long st;
	int r;

	id[0] = '\0';
	what_of(what, sizeof what, "create", c->name);
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
		    json_integer((json_int_t)(c->cpus * 1e9 + 0.5)));
	if (c->binds) {
		/* Mounts, not Binds: a missing source is an error instead of
		 * an empty directory the runtime creates. */
		json_t *mounts = json_array();

		for (size_t i = 0; c->binds[i]; i++) {
			const char *spec = c->binds[i],
			           *colon = strchr(spec, ':');
			const char *last = strrchr(spec, ':');
			char *src, *dst;

			if (!colon)
				continue;
			src = xasprintf("%.*s", (int)(colon - spec), spec);
			dst = last > colon
			    ? xasprintf("%.*s", (int)(last - colon - 1),
			          colon + 1)
			    : xstrdup(colon + 1);
			json_array_append_new(mounts,
			    json_pack("{s:s,s:s,s:s,s:b}", "Type", "bind",
			        "Source", src, "Target", dst, "ReadOnly",
			        last > colon && strcmp(last, ":ro") == 0));
			free(src);
			free(dst);
		}
		json_object_set_new(host, "Mounts", mounts);
	}
	if (c->gpus && (r = add_gpus(d, c, host, what, err, errlen)) < 0) {
		json_decref(host);
		goto out;
	}
	json_object_set_new(body, "HostConfig", host);
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		abort(); /* out of memory: every value above is valid */

	path = xasprintf("/containers/create?name=%s", name);
	st = request(d, "POST", path, text, CALL_TIMEOUT_MS, &b, what, err,
	    errlen);
	if (st < 0) {
		r = (int)st;
	} else if (st != 201 && st != 200) {
		r = failed(st, &b, what, err, errlen);
	} else if (!(o = answer_json(&b, JSON_OBJECT, what, err, errlen))) {
		r = SHOAL_E_UNEXPECTED;
	} else {
		got = json_string_value(json_object_get(o, "Id"));
		if (got && *got && strlen(got) <= DOCKER_ID_MAX) {
			strcpy(id, got);
			r = 0;
		} else {
			set_err(err, errlen,
			    "%s: no container id in the answer", what);
			r = SHOAL_E_UNEXPECTED;
		}
	}
out:
	json_decref(body);
	json_decref(o);
	free(b.data);
	free(text);
	free(path);
	free(name);
	return r;
}

/* A POST or DELETE on /containers/{id}{suffix} without an answer body to
 * read; ok2 is another status that means success (0: none). */
static int
container_call(docker_t *d, const char *method, const char *id,
    const char *suffix, long ok2, long timeout_ms, const char *verb, char *err,
    size_t errlen)
{
	char *e = escape(id), *path = xasprintf("/containers/%s%s", e, suffix);
	char what[256];
	buf_t b = { 0 };
	long st;
	int r = 0;

	what_of(what, sizeof what, verb, id);
	st = request(d, method, path, NULL, timeout_ms, &b, what, err, errlen);
	if (st < 0)
		r = (int)st;
	else if (st != 204 && st != 200 && st != ok2)
		r = failed(st, &b, what, err, errlen);
	free(b.data);
	free(path);
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
	/* 304: already stopped. The daemon waits timeout_s before SIGKILL,
	 * so the call gets that long and the usual time on top. */
	return container_call(d, "POST", id, suffix, 304,
	    (long)timeout_s * 1000 + CALL_TIMEOUT_MS, "stop", err, errlen);
}

int
docker_remove(docker_t *d, const char *id, int force, char *err, size_t errlen)
{
	int r = container_call(d, "DELETE", id, force ? "?force=1&v=1" : "?v=1",
	    0, CALL_TIMEOUT_MS, "remove", err, errlen);

	if (r == SHOAL_E_NOT_FOUND) { /* gone already */
		if (err && errlen)
			err[0] = '\0';
		r = 0;
	}
	return r;
}

/* "2026-11-24T07:01:02.123456789Z" (or with +hh:mm) -> ms since the epoch;
 * 0 for the zero time ("0001-01-01T00:00:00Z") or what does not parse. */
static uint64_t
parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *rest;
	uint64_t ms = 0;
	int64_t t, off = 0;
	int digits = 0, hh, mm;

	if (!s || strncmp(s, "0001-", 5) == 0)
		return 0;
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return 0;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			if (digits++ < 3)
				ms = ms * 10 + (uint64_t)(*rest - '0');
	for (; digits < 3; digits++)
		ms *= 10;
	if ((*rest == '+' || *rest == '-') &&
	    sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2)
		off = (*rest == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
	t = (int64_t)timegm(&tm) - off;
	return t > 0 ? (uint64_t)t * 1000 + ms : 0;
}

static void
copy_str(char *dst, size_t size, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, size, "%s", s ? s : "");
}

/* Docker names start with '/'. */
static void
copy_name(char *dst, size_t size, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, size, "%s", s ? s + (s[0] == '/') : "");
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

static unsigned
port_number(long long p)
{
	return p > 0 && p < 65536 ? (unsigned)p : 0;
}

/* The published host port in inspect's NetworkSettings.Ports: a create
 * publishes one port, the others an image exposes are bound to null. */
static unsigned
inspect_port(json_t *ports)
{
	const char *key;
	json_t *v, *bind;
	size_t i;

	json_object_foreach(ports, key, v)
	{
		json_array_foreach(v, i, bind)
		{
			const char *p = json_string_value(
			    json_object_get(bind, "HostPort"));
			unsigned n = p ? port_number(atoll(p)) : 0;

			if (n)
				return n;
		}
	}
	return 0;
}

/* GET path, expecting 200 and a JSON object: 0 with *ret (the caller's
 * to json_decref), or the error, said in err. */
static int
get_object(docker_t *d, const char *path, long timeout_ms, const char *what,
    json_t **ret, char *err, size_t errlen)
{
	buf_t b = { 0 };
	long st =
	    request(d, "GET", path, NULL, timeout_ms, &b, what, err, errlen);
	int r = 0;

	*ret = NULL;
	if (st < 0)
		r = (int)st;
	else if (st != 200)
		r = failed(st, &b, what, err, errlen);
	else if (!(*ret = answer_json(&b, JSON_OBJECT, what, err, errlen)))
		r = SHOAL_E_UNEXPECTED;
	free(b.data);
	return r;
}

int
docker_inspect(docker_t *d, const char *id, docker_container_t *out, char *err,
    size_t errlen)
{
	char *e = escape(id), *path = xasprintf("/containers/%s/json", e);
	json_t *o = NULL, *state, *config;
	char what[256];
	int r;

	memset(out, 0, sizeof *out);
	what_of(what, sizeof what, "inspect", id);
	r = get_object(d, path, CALL_TIMEOUT_MS, what, &o, err, errlen);
	if (r < 0)
		goto out;
	copy_str(out->id, sizeof out->id, json_object_get(o, "Id"));
	copy_name(out->name, sizeof out->name, json_object_get(o, "Name"));
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
	free(path);
	free(e);
	return r;
}

int
docker_ping(docker_t *d, char *err, size_t errlen)
{
	buf_t b = { 0 };
	long st = request(d, "GET", "/_ping", NULL, STATS_TIMEOUT_MS, &b,
	    "GET /_ping", err, errlen);
	int r = st < 0  ? (int)st
	    : st == 200 ? 0
	                : failed(st, &b, "GET /_ping", err, errlen);

	free(b.data);
	return r;
}

/* A count the daemon gives: 0 when absent, not a number or negative. */
static uint64_t
json_u64(const json_t *v)
{
	json_int_t i = json_integer_value(v);

	return i > 0 ? (uint64_t)i : 0;
}

int
docker_stats(docker_t *d, const char *id, docker_stats_t *out, char *err,
    size_t errlen)
{
	char *e = escape(id);
	/* one-shot: dockerd otherwise waits a second for a second reading
	 * to fill precpu_stats, which a counter does not need. */
	char *path =
	    xasprintf("/containers/%s/stats?stream=false&one-shot=true", e);
	json_t *o = NULL, *mem;
	char what[256];
	int r;

	memset(out, 0, sizeof *out);
	what_of(what, sizeof what, "stats", id);
	r = get_object(d, path, STATS_TIMEOUT_MS, what, &o, err, errlen);
	if (r < 0)
		goto out;
	out->cpu_ns = json_u64(json_object_get(
	    json_object_get(json_object_get(o, "cpu_stats"), "cpu_usage"),
	    "total_usage"));
	mem = json_object_get(o, "memory_stats");
	out->memory_bytes = json_u64(json_object_get(mem, "usage"));
	/* As the docker CLI counts it: less the page cache the kernel may
	 * reclaim at once (a model's mmap()ed weights, mostly); cgroup v2
	 * names it inactive_file, v1 total_inactive_file. */
	{
		json_t *st2 = json_object_get(mem, "stats");
		json_t *inactive = json_object_get(st2, "inactive_file");
		uint64_t cache = json_u64(inactive
		        ? inactive
		        : json_object_get(st2, "total_inactive_file"));

		if (cache < out->memory_bytes)
			out->memory_bytes -= cache;
	}
	out->memory_limit = json_u64(json_object_get(mem, "limit"));
out:
	json_decref(o);
	free(path);
	free(e);
	return r;
}

/* One container of GET /containers/json, whose shape differs from
 * inspect's: State is the status word, the exit code is only in the
 * "Exited (3) 2 minutes ago" of Status, ports are a list. */
static int
list_item(docker_container_t *c, json_t *item)
{
	const char *status = json_string_value(json_object_get(item, "Status"));
	json_t *p;
	size_t k;

	copy_str(c->id, sizeof c->id, json_object_get(item, "Id"));
	if (!c->id[0])
		return -1;
	copy_name(c->name, sizeof c->name,
	    json_array_get(json_object_get(item, "Names"), 0));
	copy_str(c->image, sizeof c->image, json_object_get(item, "Image"));
	copy_str(c->state, sizeof c->state, json_object_get(item, "State"));
	if (status && sscanf(status, "Exited (%d)", &c->exit_code) != 1)
		c->exit_code = 0;
	fill_labels(c, json_object_get(item, "Labels"));
	json_array_foreach(json_object_get(item, "Mounts"), k, p)
	{
		const char *src =
		    json_string_value(json_object_get(p, "Source"));
		const char *base = src ? strrchr(src, '/') : NULL;

		if (!base || base - src < 7 ||
		    strncmp(base - 7, "/sha256", 7) != 0 ||
		    strspn(base + 1, "0123456789abcdef") != 64 || base[65] ||
		    c->n_artifacts >= DOCKER_ARTIFACTS_MAX)
			continue;
		memcpy(c->artifacts[c->n_artifacts++], base + 1, 65);
	}
	json_array_foreach(json_object_get(item, "Ports"), k, p)
	{
		c->host_port = port_number(
		    json_integer_value(json_object_get(p, "PublicPort")));
		if (c->host_port)
			break;
	}
	return 0;
}

int
docker_list(docker_t *d, const char *label_key, const char *label_value,
    docker_container_t **ret, size_t *ret_n, char *err, size_t errlen)
{
	json_t *filter, *o = NULL, *item;
	char *label, *ftext, *fe, *path;
	docker_container_t *v = NULL;
	buf_t b = { 0 };
	size_t n = 0, i;
	long st;
	int r = 0;

	label = xasprintf("%s=%s", label_key, label_value);
	filter = json_pack("{s:[s]}", "label", label);
	ftext = json_dumps(filter, JSON_COMPACT);
	if (!ftext)
		abort(); /* out of memory */
	json_decref(filter);
	fe = escape(ftext);
	path = xasprintf("/containers/json?all=1&filters=%s", fe);
	st = request(d, "GET", path, NULL, CALL_TIMEOUT_MS, &b,
	    "list containers", err, errlen);
	if (st < 0) {
		r = (int)st;
		goto out;
	}
	if (st != 200) {
		r = failed(st, &b, "list containers", err, errlen);
		goto out;
	}
	if (!(o = answer_json(&b, JSON_ARRAY, "list containers", err,
	          errlen))) {
		r = SHOAL_E_UNEXPECTED;
		goto out;
	}
	v = xcalloc(json_array_size(o) + 1, sizeof *v);
	json_array_foreach(o, i, item)
	{
		if (list_item(&v[n], item) == 0)
			n++;
		else
			memset(&v[n], 0, sizeof v[n]);
	}
	*ret = v;
	*ret_n = n;
out:
	json_decref(o);
	free(b.data);
	free(path);
	free(fe);
	free(ftext);
	free(label);
	return r;
}

/* Logs of a container without a TTY come in frames: a byte naming the
 * stream (0 stdin, 1 stdout, 2 stderr), three zero bytes, a big-endian
 * length, then the payload. A TTY's come as they are. */
static char *
demux(const char *data, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0;

	while (i + 8 <= len && (unsigned char)data[i] <= 2 &&
	    data[i + 1] == 0 && data[i + 2] == 0 && data[i + 3] == 0) {
		const unsigned char *h = (const unsigned char *)data + i;
		size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
		    (size_t)h[6] << 8 | h[7];

		i += 8;
		if (n > len - i)
			n = len - i; /* a frame cut by the cap */
		memcpy(out + o, data + i, n);
		o += n;
		i += n;
	}
	if (i < len) { /* not framed, or what follows is not */
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
	char *e = escape(id), *path, what[256];
	buf_t b = { 0 };
	long st;
	int r = 0;

	path = xasprintf("/containers/%s/logs?stdout=1&stderr=1&tail=%u", e,
	    lines);
	what_of(what, sizeof what, "logs of", id);
	st = request(d, "GET", path, NULL, CALL_TIMEOUT_MS, &b, what, err,
	    errlen);
	if (st < 0)
		r = (int)st;
	else if (st != 200)
		r = failed(st, &b, what, err, errlen);
	else
		*ret = demux(b.data ? b.data : "", b.len);
	free(b.data);
	free(path);
	free(e);
	return r;
}
