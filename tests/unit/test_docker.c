/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API client. Part one talks to a fake daemon on a unix
 * socket in this process: only for what a real daemon will not produce on
 * demand (API versions other than the one installed, an error inside a pull
 * stream, garbage, a truncated or oversized answer, dockerd's and other
 * Podman versions' shapes). Part two, when SHOAL_RUNTIME_SOCKET names a real
 * Docker-compatible socket (tests/integration/test_docker.sh starts
 * Podman's), runs a container through its whole life.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/docker.h"
#include "common/error.h"
#include "tests/tap.h"

/* -- the fake daemon --------------------------------------------------- */

/* Each connection gets the next answer: first, then, after a pause, second
 * (to split a stream line across reads), then filler bytes of 'x'. */
typedef struct answer {
	const char *first, *second;
	size_t first_len; /* 0: strlen(first) */
	size_t filler;
} answer_t;

#define MAX_ANSWERS 8

static int listen_fd = -1;
static answer_t answers[MAX_ANSWERS];
static int nanswers;
static char last_request[8192];
static pthread_t server;
static char sock_path[108];

static void
read_request(int fd)
{
	size_t n = 0;
	ssize_t r;

	last_request[0] = '\0';
	while (n < sizeof last_request - 1) {
		r = read(fd, last_request + n, sizeof last_request - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		last_request[n] = '\0';
		if (strstr(last_request, "\r\n\r\n")) {
			const char *cl =
			    strstr(last_request, "Content-Length: ");
			const char *end = strstr(last_request, "\r\n\r\n") + 4;
			size_t want = cl ? (size_t)atol(cl + 16) : 0;

			if (n - (size_t)(end - last_request) >= want)
				break;
		}
	}
}

/* MSG_NOSIGNAL: a client that hangs up early must not kill the test. */
static void
write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void *
serve(void *arg)
{
	static char filler[65536];

	(void)arg;
	memset(filler, 'x', sizeof filler);
	for (int i = 0; i < nanswers; i++) {
		const answer_t *a = &answers[i];
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			break;
		read_request(fd);
		write_all(fd, a->first,
		    a->first_len ? a->first_len : strlen(a->first));
		if (a->second) {
			usleep(50000);
			write_all(fd, a->second, strlen(a->second));
		}
		for (size_t left = a->filler; left;) {
			size_t n = left < sizeof filler ? left : sizeof filler;

			write_all(fd, filler, n);
			left -= n;
		}
		close(fd);
	}
	return NULL;
}

/* Starts the fake daemon with these answers, in order. */
static void
fake(const answer_t *v, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (listen_fd < 0) {
		snprintf(sock_path, sizeof sock_path, "/tmp/shoal-fake-%d.sock",
		    (int)getpid());
		unlink(sock_path);
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
		listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
		    listen(listen_fd, 8) < 0)
			abort();
	}
	memcpy(answers, v, (size_t)n * sizeof *v);
	nanswers = n;
	pthread_create(&server, NULL, serve, NULL);
}

static void
fake_done(void)
{
	pthread_join(server, NULL);
}

/* An HTTP answer with this status and JSON body; slot picks one of a few
 * buffers so that several answers can be queued at once. */
static const char *
http(int slot, const char *status, const char *body)
{
	static char bufs[MAX_ANSWERS][4096];

	snprintf(bufs[slot], sizeof bufs[slot],
	    "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s",
	    status, strlen(body), body);
	return bufs[slot];
}

/* Opens a client on the fake daemon, which answers /version with body. */
static docker_t *
open_fake(const char *version_body)
{
	answer_t a[1] = { { http(0, "200 OK", version_body), NULL, 0, 0 } };
	docker_t *d = NULL;
	char err[512];

	fake(a, 1);
	if (docker_open(sock_path, &d, err, sizeof err) < 0)
		diag("open: %s", err);
	fake_done();
	return d;
}

/* One call's single answer. */
#define ANSWER(status, body)                                             \
	do {                                                             \
		answer_t a_[1] = { { .first = http(1, status, body) } }; \
		fake(a_, 1);                                             \
	} while (0)

static void
test_versions(void)
{
	docker_t *d = NULL;
	char err[512] = "";
	int r;

	ANSWER("200 OK", "{\"ApiVersion\":\"1.40\"}");
	r = docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	ok(r == SHOAL_E_PROTOCOL && !d, "an API below 1.41 is refused");
	okf(strstr(err, "1.40") && strstr(err, "1.41"),
	    "and the error names both versions: %s", err);

	d = open_fake("{\"ApiVersion\":\"1.99\",\"MinAPIVersion\":\"1.24\"}");
	is_str(d ? docker_api_version(d) : NULL, "1.47",
	    "a newer daemon is spoken to at the newest version we know");
	ok(d && !docker_is_podman(d),
	    "a daemon without a Podman component is taken for dockerd");
	docker_close(&d);
	docker_close(&d);

	d = open_fake("{\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.44\"}");
	is_str(d ? docker_api_version(d) : NULL, "1.47",
	    "Docker 29 (1.44 to 1.52) is spoken to at 1.47");
	docker_close(&d);

	ANSWER("200 OK",
	    "{\"ApiVersion\":\"1.60\",\"MinAPIVersion\":\"1.50\"}");
	r = docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	okf(r == SHOAL_E_PROTOCOL && !d && strstr(err, "1.50"),
	    "a daemon that dropped every version we speak is refused: %s", err);

	ANSWER("200 OK", "{\"Version\":\"x\"}");
	r = docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	okf(r < 0 && !d && strstr(err, "API version"),
	    "a /version without ApiVersion is refused: %s", err);

	r = docker_open("/tmp/shoal-no-such-dir/docker.sock", &d, err,
	    sizeof err);
	okf(r == -ENOENT && !d && strstr(err, "/tmp/shoal-no-such-dir"),
	    "no socket: -ENOENT, and the error names it: %s", err);
}

static int progress_n;
static char progress_first[64];
static uint64_t progress_cur, progress_tot;

static void
on_progress(const char *status, uint64_t current, uint64_t total, void *arg)
{
	(void)arg;
	if (progress_n++ == 0)
		snprintf(progress_first, sizeof progress_first, "%s", status);
	if (total) {
		progress_cur = current;
		progress_tot = total;
	}
}

static void
test_pull(docker_t *d)
{
	char err[512] = "";
	int r;

	{
		/* A line split across two writes, with the error in the
		 * middle of a 200 answer. */
		static const answer_t pull[] = {
			{ "HTTP/1.1 200 OK\r\nContent-Type: application/json"
			  "\r\nConnection: close\r\n\r\n"
			  "{\"status\":\"Pulling\",\"progressDetail\":"
			  "{\"current\":5,\"total\":10}}\n"
			  "{\"errorDetail\":{\"mess",
			    "age\":\"manifest unknown\"},\"error\":\"manifest "
			    "unknown\"}\n{\"status\":\"done\"}\n" },
		};

		progress_n = 0;
		fake(pull, 1);
		r = docker_pull(d, "localhost:5000/x/model:1", on_progress,
		    NULL, err, sizeof err);
		fake_done();
		ok(r < 0, "an error inside a 200 pull stream fails the pull");
		okf(strstr(err, "manifest unknown") &&
		        strstr(err, "localhost:5000/x/model:1"),
		    "with the daemon's message and the image: %s", err);
		ok(strstr(last_request,
		       "POST /v1.41/images/create?"
		       "fromImage=localhost%3A5000%2Fx%2F"
		       "model&tag=1 ") != NULL,
		    "the registry port stays in the repository, the tag apart");
		ok(progress_n >= 1 && strcmp(progress_first, "Pulling") == 0 &&
		        progress_cur == 5 && progress_tot == 10,
		    "progress before the error is reported with its bytes");
	}
	{
		/* Lines cut anywhere, the last without its newline. */
		static const answer_t pull[] = {
			{ "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
			  "{\"status\":\"Pulling from x\",\"id\":\"1\"}\r\n"
			  "{\"status\":\"Downloading\",\"progressDetail\":{"
			  "\"curr",
			    "ent\":300,\"total\":1000},\"id\":\"a\"}\n\n"
			    "{\"status\":\"Downloaded newer image\"}" },
		};

		progress_n = 0;
		progress_cur = progress_tot = 0;
		fake(pull, 1);
		r = docker_pull(d, "localhost/x@sha256:abcd", on_progress, NULL,
		    err, sizeof err);
		fake_done();
		is_int(r, 0, "a pull stream without an error succeeds");
		ok(progress_n == 3 && progress_cur == 300 &&
		        progress_tot == 1000,
		    "each progress object is reported, lines cut anywhere");
		ok(strstr(last_request,
		       "fromImage=localhost%2Fx&tag=sha256%3Aabcd ") != NULL,
		    "a digest goes where the tag would");
	}

	ANSWER("404 Not Found",
	    "{\"message\":\"pull access denied for localhost/y\"}\n");
	r = docker_pull(d, "localhost/y:2", NULL, NULL, err, sizeof err);
	fake_done();
	okf(r == SHOAL_E_NOT_FOUND &&
	        strstr(err, "pull localhost/y:2: pull access denied"),
	    "a pull refused outright keeps the daemon's message: %s", err);
}

static void
test_containers(docker_t *d)
{
	docker_container_t info;
	char err[512] = "", id[DOCKER_ID_MAX + 1];
	int r;

	ANSWER("404 Not Found", "{\"message\":\"no such container\"}");
	r = docker_inspect(d, "a b/c", &info, err, sizeof err);
	fake_done();
	is_int(r, SHOAL_E_NOT_FOUND, "inspect of a missing container");
	ok(strstr(last_request, "GET /v1.41/containers/a%20b%2Fc/json "),
	    "names are escaped in the path");

	ANSWER("200 OK",
	    "{\"Id\":\"0123abc\",\"Name\":\"/shoal-n-s-r3\","
	    "\"State\":{\"Status\":\"exited\",\"ExitCode\":3,"
	    "\"StartedAt\":\"2026-11-24T08:30:21.778828725Z\"},"
	    "\"Config\":{\"Image\":\"localhost/m:1\",\"Labels\":{"
	    "\"shoal.service\":\"s\",\"shoal.revision\":\"3\","
	    "\"shoal.node\":\"n\"}},\"NetworkSettings\":{\"Ports\":{"
	    "\"9000/tcp\":null,\"8080/tcp\":[{\"HostIp\":\"127.0.0.1\","
	    "\"HostPort\":\"41234\"}]}}}");
	r = docker_inspect(d, "0123abc", &info, err, sizeof err);
	fake_done();
	ok(r == 0 && strcmp(info.id, "0123abc") == 0 &&
	        strcmp(info.name, "shoal-n-s-r3") == 0 &&
	        strcmp(info.image, "localhost/m:1") == 0 &&
	        strcmp(info.state, "exited") == 0 && info.exit_code == 3,
	    "inspect: id, name without '/', image, state, exit code");
	ok(r == 0 && info.host_port == 41234 && info.revision == 3 &&
	        strcmp(info.service, "s") == 0 && strcmp(info.node, "n") == 0,
	    "inspect: the published port (not an unbound one), the labels");
	is_int(info.started_ms, 1795509021778ULL,
	    "inspect: StartedAt in ms since the epoch");

	ANSWER("200 OK",
	    "{\"Id\":\"1\",\"State\":{\"Status\":\"created\","
	    "\"StartedAt\":\"0001-01-01T00:00:00Z\"}}");
	r = docker_inspect(d, "1", &info, err, sizeof err);
	fake_done();
	ok(r == 0 && info.started_ms == 0 && info.host_port == 0,
	    "a container never started: started_ms 0");

	{
		const char *cmd[] = { "serve", "--port", "8080", NULL };
		const char *env[] = { "A=1", NULL };
		const char *labels[] = { "shoal.service", "s", NULL };
		const char *binds[] = { "/srv/m:/models:ro", NULL };
		docker_create_t c = { .name = "shoal-n-s-r3",
			.image = "localhost/m:1",
			.cmd = cmd,
			.env = env,
			.labels = labels,
			.port = 8080,
			.memory_bytes = 1 << 30,
			.cpus = 0.5,
			.gpus = 2,
			.binds = binds };

		ANSWER("201 Created", "{\"Id\":\"abc123\",\"Warnings\":[]}");
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		ok(r == 0 && strcmp(id, "abc123") == 0,
		    "create gives the container's id");
		ok(strstr(last_request,
		       "POST /v1.41/containers/create?name=shoal-n-s-r3 ") &&
		        strstr(last_request, "\"Cmd\":[\"serve\",\"--port\"") &&
		        strstr(last_request, "\"Env\":[\"A=1\"]") &&
		        strstr(last_request,
		            "\"Labels\":{\"shoal.service\":"
		            "\"s\"}") &&
		        strstr(last_request,
		            "\"ExposedPorts\":{\"8080/tcp\":{}}"),
		    "create sends the command, env, labels and exposed port");
		ok(strstr(last_request,
		       "\"PortBindings\":{\"8080/tcp\":[{\"HostIp\":"
		       "\"127.0.0.1\",\"HostPort\":\"\"}]}") &&
		        strstr(last_request, "\"Memory\":1073741824") &&
		        strstr(last_request, "\"NanoCpus\":500000000") &&
		        strstr(last_request,
		            "\"Mounts\":[{\"Type\":\"bind\",\"Source\":"
		            "\"/srv/m\",\"Target\":\"/models\",\"ReadOnly\":"
		            "true}]") &&
		        !strstr(last_request, "\"Binds\""),
		    "on loopback at a port the runtime picks, with limits and "
		    "read-only bind mounts (Mounts: a missing source fails)");
		ok(strstr(last_request, "\"DeviceRequests\":[{") &&
		        strstr(last_request, "\"Count\":2") &&
		        strstr(last_request, "[[\"gpu\"]]") &&
		        !strstr(last_request, "nvidia.com/gpu"),
		    "GPUs go to dockerd as a device request for the count");

		c.gpus = 0;
		ANSWER("500 Internal Server Error", "{\"message\":\"boom\"}");
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		okf(r == SHOAL_E_UNEXPECTED &&
		        strcmp(err, "create shoal-n-s-r3: boom") == 0,
		    "a 500 puts the daemon's message in the error: %s", err);

		ANSWER("409 Conflict", "");
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		okf(r < 0 && strstr(err, "409"),
		    "a refusal without a message names the status: %s", err);

		ANSWER("201 Created", "{\"Warnings\":[]}");
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		okf(r < 0 && !id[0],
		    "a create answered without an id fails: %s", err);
	}

	ANSWER("304 Not Modified", "");
	is_int(docker_start(d, "abc", err, sizeof err), 0,
	    "start of a running container (304) succeeds");
	fake_done();
	ANSWER("304 Not Modified", "");
	is_int(docker_stop(d, "abc", 5, err, sizeof err), 0,
	    "stop of a stopped container (304) succeeds");
	fake_done();
	ok(strstr(last_request, "POST /v1.41/containers/abc/stop?t=5 ") != NULL,
	    "stop passes its timeout");
	ANSWER("404 Not Found", "{\"message\":\"no such container\"}");
	is_int(docker_remove(d, "abc", 1, err, sizeof err), 0,
	    "removing a container already gone succeeds");
	fake_done();
	ok(strstr(last_request, "DELETE /v1.41/containers/abc?force=1&v=1 ") !=
	        NULL,
	    "remove forces and takes anonymous volumes along");
}

static void
test_list(docker_t *d)
{
	docker_container_t *v = NULL;
	char err[512] = "";
	size_t n = 0;
	int r;

	ANSWER("200 OK",
	    "[{\"Id\":\"aaa\",\"Names\":[\"/shoal-n-s-r1\"],"
	    "\"Image\":\"localhost/m:1\",\"State\":\"running\","
	    "\"Status\":\"Up 3 minutes\",\"Ports\":[{\"PrivatePort\":8080,"
	    "\"PublicPort\":41000,\"Type\":\"tcp\"}],\"Labels\":{"
	    "\"shoal.service\":\"s\",\"shoal.revision\":\"1\","
	    "\"shoal.node\":\"n1\"},\"Mounts\":[{\"Type\":\"bind\","
	    "\"Source\":\"/var/lib/shoal-agent/artifacts/sha256/"
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""
	    ","
	    "\"Destination\":\"/models/w\"},{\"Source\":\"/etc/hosts\"},"
	    "{\"Source\":\"/x/sha256/short\"}]},"
	    "{\"Names\":[\"/no-id\"]},"
	    "{\"Id\":\"bbb\",\"Names\":[\"/shoal-n-s-r2\"],"
	    "\"State\":\"exited\",\"Status\":\"Exited (137) 2 seconds ago\","
	    "\"Ports\":[],\"Labels\":{\"shoal.revision\":\"2\"}}]");
	r = docker_list(d, "shoal.node", "n1", &v, &n, err, sizeof err);
	fake_done();
	ok(r == 0 && n == 2, "list: the containers with an id");
	ok(strstr(last_request,
	       "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B"
	       "%22shoal.node%3Dn1%22%5D%7D ") != NULL,
	    "list asks for all containers with the label, escaped");
	ok(n == 2 && strcmp(v[0].id, "aaa") == 0 &&
	        strcmp(v[0].name, "shoal-n-s-r1") == 0 &&
	        strcmp(v[0].state, "running") == 0 && v[0].host_port == 41000 &&
	        v[0].revision == 1 && strcmp(v[0].service, "s") == 0 &&
	        strcmp(v[0].node, "n1") == 0,
	    "list: name, state, public port and labels of the list shape");
	ok(n == 2 && strcmp(v[1].state, "exited") == 0 &&
	        v[1].exit_code == 137 && v[1].host_port == 0 &&
	        v[1].revision == 2,
	    "list: the exit code from Status");
	ok(n == 2 && v[0].n_artifacts == 1 &&
	        strcmp(v[0].artifacts[0],
	            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	            "2b0b822cd15d6c15b0f00a08") == 0 &&
	        v[1].n_artifacts == 0,
	    "list: the artifact digests its bind mounts name, nothing else");
	free(v);

	v = NULL;
	ANSWER("200 OK", "{[}\"x\x01\xff");
	r = docker_list(d, "shoal.node", "n1", &v, &n, err, sizeof err);
	fake_done();
	okf(r == SHOAL_E_UNEXPECTED && v == NULL,
	    "garbage instead of JSON is an error: %s", err);

	ANSWER("200 OK", "{\"not\":\"a list\"}");
	r = docker_list(d, "shoal.node", "n1", &v, &n, err, sizeof err);
	fake_done();
	ok(r < 0 && v == NULL, "JSON of the wrong shape is an error");
}

static void
test_faults(docker_t *d)
{
	docker_container_t info;
	char err[512] = "", *text = NULL;
	int r;

	{
		static const answer_t cut[] = {
			{ "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"
			  "{\"Id\":" },
		};

		fake(cut, 1);
		r = docker_inspect(d, "abc", &info, err, sizeof err);
		fake_done();
		okf(r == -EIO && strstr(err, "inspect abc"),
		    "a truncated answer is -EIO: %s", err);
	}
	{
		static const answer_t big[] = {
			{ "HTTP/1.1 200 OK\r\nContent-Length: 8388609\r\n\r\n",
			    NULL, 0, 8388609 },
		};

		fake(big, 1);
		r = docker_logs_tail(d, "abc", 10, &text, err, sizeof err);
		fake_done();
		okf(r == -EMSGSIZE && text == NULL,
		    "an answer above 8 MiB is refused: %s", err);
	}
	{
		/* Logs of a non-TTY container: frames of stdout and stderr. */
		static const answer_t logs[] = {
			{ "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n"
			  "\x01\x00\x00\x00\x00\x00\x00\x04out\n"
			  "\x02\x00\x00\x00\x00\x00\x00\x04"
			  "err\n",
			    NULL, 39 + 24 },
		};

		fake(logs, 1);
		r = docker_logs_tail(d, "abc", 10, &text, err, sizeof err);
		fake_done();
		ok(r == 0 && text && strcmp(text, "out\nerr\n") == 0,
		    "logs are demultiplexed");
		ok(strstr(last_request,
		       "/containers/abc/logs?stdout=1&stderr=1"
		       "&tail=10 ") != NULL,
		    "logs ask for both streams' tail");
		free(text);
		text = NULL;
	}
	ANSWER("200 OK", "plain tty output\n");
	r = docker_logs_tail(d, "abc", 10, &text, err, sizeof err);
	fake_done();
	is_str(r == 0 ? text : NULL, "plain tty output\n",
	    "a TTY's logs pass through");
	free(text);
}

static void
test_podman_gpus(void)
{
	const char *v43 = "{\"ApiVersion\":\"1.41\",\"Components\":[{\"Name\":"
	                  "\"Podman Engine\",\"Version\":\"4.3.1\"}]}";
	const char *v54 = "{\"ApiVersion\":\"1.41\",\"Components\":[{\"Name\":"
	                  "\"Podman Engine\",\"Version\":\"5.4.0\"}]}";
	docker_create_t c = { .name = "g",
		.image = "localhost/m:1",
		.gpus = 1 };
	char err[512] = "", id[DOCKER_ID_MAX + 1];
	docker_t *d;
	int r;

	d = open_fake(v43);
	ok(d && docker_is_podman(d), "a Podman component means Podman");
	if (d) {
		/* Refused before any request: the fake is not listening. */
		r = docker_create(d, &c, id, err, sizeof err);
		okf(r == -ENOTSUP && strstr(err, "create g") &&
		        strstr(err, "5.4") && strstr(err, "4.3.1"),
		    "GPUs on Podman 4.3.1 are refused, not dropped: %s", err);
	}
	docker_close(&d);

	d = open_fake(v54);
	if (d) {
		ANSWER("201 Created", "{\"Id\":\"abc\"}");
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		ok(r == 0 &&
		        strstr(last_request,
		            "\"DeviceRequests\":[{\"Driver\":"
		            "\"cdi\",\"DeviceIDs\":["
		            "\"nvidia.com/gpu=all\"]}]") &&
		        !strstr(last_request, "\"Count\""),
		    "Podman 5.4 gets a CDI device request for all GPUs");
	} else {
		ok(0, "Podman 5.4 gets a CDI device request for all GPUs");
	}
	docker_close(&d);
}

static void
test_fake(void)
{
	docker_t *d;

	test_versions();
	d = open_fake("{\"ApiVersion\":\"1.41\"}");
	is_str(d ? docker_api_version(d) : NULL, "1.41",
	    "a 1.41 daemon is spoken to at 1.41");
	if (d) {
		test_pull(d);
		test_containers(d);
		test_list(d);
		test_faults(d);
	}
	docker_close(&d);
	test_podman_gpus();
	close(listen_fd);
	unlink(sock_path);
}

/* -- a real daemon ----------------------------------------------------- */

static void
test_real(const char *socket, const char *image, const char *node)
{
	const char *cmd[] = { "/bin/sh", "-c",
		"echo hello-from-shoal; echo to-stderr >&2; mkdir -p /www; "
		"echo ok > /www/health; exec httpd -f -p 8080 -h /www",
		NULL };
	const char *labels[] = { "shoal.managed", "true", "shoal.service",
		"t-svc", "shoal.revision", "7", "shoal.node", node, NULL };
	const char *env[] = { "A=1", NULL };
	docker_create_t c = { .image = image,
		.cmd = cmd,
		.env = env,
		.labels = labels,
		.port = 8080,
		.memory_bytes = 64 << 20,
		.cpus = 0.5 };
	char name[64], id[DOCKER_ID_MAX + 1] = "", err[512] = "";
	docker_container_t info, *v = NULL;
	docker_t *d = NULL;
	size_t n = 0;
	char *text = NULL;
	int r, found = 0;

	snprintf(name, sizeof name, "shoal-test-docker-%d", (int)getpid());
	c.name = name;
	r = docker_open(socket, &d, err, sizeof err);
	okf(r == 0, "open the real daemon at %s %s", socket, r ? err : "");
	if (r < 0)
		return;
	okf(strcmp(docker_api_version(d), DOCKER_API_FLOOR) >= 0,
	    "negotiated API %s (at least 1.41)", docker_api_version(d));
	ok(docker_is_podman(d), "Podman's service is recognised as Podman");
	is_int(docker_image_present(d, image, err, sizeof err), 1,
	    "the test image is present");
	is_int(docker_image_present(d, "localhost/shoal-no-such:1", err,
	           sizeof err),
	    0, "a missing image is not");
	r = docker_pull(d, "localhost/shoal-no-such:1", NULL, NULL, err,
	    sizeof err);
	okf(r < 0 && strstr(err, "pull localhost/shoal-no-such:1: "),
	    "pulling a missing image fails and says which: %.90s", err);

	docker_remove(d, name, 1, err, sizeof err); /* an earlier run's */
	r = docker_create(d, &c, id, err, sizeof err);
	okf(r == 0 && id[0], "create %s %s", name, r ? err : "");
	r = docker_start(d, id, err, sizeof err);
	okf(r == 0, "start %s", r ? err : "");
	r = docker_inspect(d, id, &info, err, sizeof err);
	ok(r == 0 && strcmp(info.state, "running") == 0 && info.host_port > 0 &&
	        strcmp(info.name, name) == 0 && strcmp(info.id, id) == 0 &&
	        strcmp(info.image, image) == 0,
	    "inspect: running, with a published port, its name and image");
	ok(r == 0 && strcmp(info.service, "t-svc") == 0 && info.revision == 7 &&
	        strcmp(info.node, node) == 0 && info.started_ms > 0,
	    "inspect: the shoal labels and the start time");
	r = docker_list(d, "shoal.node", node, &v, &n, err, sizeof err);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(v[i].id, id) == 0 && v[i].revision == 7 &&
		    v[i].host_port == info.host_port &&
		    strcmp(v[i].state, "running") == 0 &&
		    strcmp(v[i].name, name) == 0)
			found = 1;
	ok(found && n == 1,
	    "list by label finds it alone, with its port and revision");
	free(v);
	for (int i = 0; i < 50; i++) {
		free(text);
		text = NULL;
		if (docker_logs_tail(d, id, 20, &text, err, sizeof err) == 0 &&
		    strstr(text, "to-stderr"))
			break;
		usleep(100000);
	}
	ok(text && strstr(text, "hello-from-shoal\n") &&
	        strstr(text, "to-stderr\n"),
	    "the logs tail shows stdout and stderr, demultiplexed");
	free(text);
	is_int(docker_start(d, id, err, sizeof err), 0,
	    "starting a running container is not an error");
	r = docker_stop(d, id, 2, err, sizeof err);
	okf(r == 0, "stop %s", r ? err : "");
	r = docker_inspect(d, id, &info, err, sizeof err);
	ok(r == 0 && strcmp(info.state, "running") != 0, "stopped");
	is_int(docker_stop(d, id, 2, err, sizeof err), 0,
	    "stopping it again is not an error");
	is_int(docker_remove(d, id, 1, err, sizeof err), 0, "remove");
	is_int(docker_inspect(d, id, &info, err, sizeof err), SHOAL_E_NOT_FOUND,
	    "a removed container is not found");
	is_int(docker_remove(d, id, 1, err, sizeof err), 0,
	    "removing it again is not an error");

	/* Podman before 5.4 cannot take GPUs through this API. */
	c.gpus = 1;
	r = docker_create(d, &c, id, err, sizeof err);
	if (r == -ENOTSUP) {
		okf(strstr(err, "Podman") != NULL,
		    "GPUs are refused with a reason: %s", err);
	} else {
		if (r == 0)
			docker_remove(d, id, 1, err, sizeof err);
		ok(1, "GPUs on this Podman # SKIP it takes CDI requests");
	}
	docker_remove(d, name, 1, err, sizeof err); /* whatever failed */
	docker_close(&d);
}

int
main(void)
{
	const char *socket = getenv("SHOAL_RUNTIME_SOCKET");
	const char *image = getenv("SHOAL_TEST_IMAGE");
	const char *node = getenv("SHOAL_TEST_NODE");
	char own[64];

	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_fake();
	if (!node || !*node) {
		snprintf(own, sizeof own, "t-node-%d", (int)getpid());
		node = own;
	}
	if (socket && *socket && image && *image)
		test_real(socket, image, node);
	else
		diag(
		    "SHOAL_RUNTIME_SOCKET and SHOAL_TEST_IMAGE not set: no "
		    "real daemon (tests/integration/test_docker.sh sets them)");
	curl_global_cleanup();
	return done_testing();
}
