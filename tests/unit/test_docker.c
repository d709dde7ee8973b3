/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Docker Engine API client. Part one talks to a fake daemon on a unix
 * socket in this process: only for faults a real daemon will not produce on
 * demand (an old API version, an error inside a pull stream, garbage, a
 * truncated answer). Part two, when SHOAL_RUNTIME_SOCKET names a real
 * Docker-compatible socket (tests/integration/test_docker.sh starts
 * Podman's), runs a container through its whole life.
 */
#include "autoconf.h"

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

/* Each connection gets the next answer; an answer may come in two writes,
 * apart, to split a stream line across reads. */
typedef struct answer {
	const char *first, *second;
	size_t first_len; /* 0: strlen(first) */
} answer_t;

static int listen_fd = -1;
static answer_t answers[8];
static int nanswers;
static char last_request[4096];
static pthread_t server;

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

static void
write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void *
serve(void *arg)
{
	for (int i = 0; i < nanswers; i++) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			break;
		read_request(fd);
		write_all(fd, answers[i].first,
		    answers[i].first_len ? answers[i].first_len
		                         : strlen(answers[i].first));
		if (answers[i].second) {
			usleep(50000);
			write_all(fd, answers[i].second,
			    strlen(answers[i].second));
		}
		close(fd);
	}
	return NULL;
}

static char sock_path[108];

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

#define JSON_HEAD(status) \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\n"
#define API_VERSION(v)                                                       \
	{                                                                    \
		JSON_HEAD("200 OK")                                          \
		"Content-Length: 21\r\n\r\n{\"ApiVersion\":\"" v "\"}", NULL \
	}

static docker_t *
open_fake(const char *version_answer)
{
	answer_t a[1] = { { version_answer, NULL } };
	docker_t *d = NULL;
	char err[512];

	fake(a, 1);
	docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	return d;
}

static void
test_fake(void)
{
	static const answer_t old[] = { API_VERSION("1.40") };
	static const answer_t newer[] = { API_VERSION("1.99") };
	docker_t *d = NULL;
	docker_container_t info;
	char err[512] = "", id[DOCKER_ID_MAX + 1];
	int r;

	fake(old, 1);
	r = docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	ok(r == SHOAL_E_PROTOCOL && !d, "an API below 1.41 is refused");
	okf(strstr(err, "1.40") && strstr(err, "1.41"),
	    "and the error names both versions: %s", err);

	fake(newer, 1);
	r = docker_open(sock_path, &d, err, sizeof err);
	fake_done();
	ok(r == 0 && d && strcmp(docker_api_version(d), "1.43") == 0,
	    "a newer daemon is spoken to at the newest version we know");
	ok(d && !docker_is_podman(d),
	    "a daemon without a Podman component "
	    "is taken for dockerd");
	docker_close(&d);

	d = open_fake("HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n"
	              "{\"ApiVersion\":\"1.41\"}");
	ok(d && strcmp(docker_api_version(d), "1.41") == 0,
	    "a 1.41 daemon is spoken to at 1.41");
	if (!d)
		return;

	{
		/* A pull whose stream line is split across two writes, with
		 * the error in the middle of a 200 answer. */
		static const answer_t pull[] = {
			{ JSON_HEAD("200 OK") "Connection: close\r\n\r\n"
			                      "{\"status\":\"Pulling\","
			                      "\"progressDetail\":"
			                      "{\"current\":5,\"total\":10}}\n{"
			                      "\"error"
			                      "Detail\":{\"mess",
			    "age\":\"manifest unknown\"},\"error\":\"manifest "
			    "unknown\"}\n{\"status\":\"done\"}\n" },
		};

		fake(pull, 1);
		r = docker_pull(d, "localhost:5000/x/model:1", NULL, NULL, err,
		    sizeof err);
		fake_done();
		ok(r < 0, "an error inside a 200 pull stream fails the pull");
		okf(strstr(err, "manifest unknown") &&
		        strstr(err, "localhost:5000/x/model:1"),
		    "with the daemon's message and the image: %s", err);
		ok(strstr(last_request,
		       "fromImage=localhost%3A5000%2Fx%2Fmodel&tag=1") != NULL,
		    "the registry port stays in the repository, the tag apart");
	}
	{
		static const answer_t nf[] = {
			{ JSON_HEAD(
			      "404 Not Found") "Content-Length: 31\r\n\r\n"
			                       "{\"message\":\"no such "
			                       "container\"}",
			    NULL },
		};

		fake(nf, 1);
		r = docker_inspect(d, "abc", &info, err, sizeof err);
		fake_done();
		ok(r == SHOAL_E_NOT_FOUND,
		    "inspect of a missing container: "
		    "SHOAL_E_NOT_FOUND");
	}
	{
		static const answer_t boom[] = {
			{ JSON_HEAD(
			      "500 Internal Server Error") "Content-Length: "
			                                   "18\r\n\r\n{"
			                                   "\"message\":"
			                                   "\"boom\"}",
			    NULL },
		};
		docker_create_t c = { .name = "x", .image = "localhost/x:1" };

		fake(boom, 1);
		c.gpus = 2;
		r = docker_create(d, &c, id, err, sizeof err);
		fake_done();
		okf(r < 0 && strstr(err, "create x: boom"),
		    "a 500 puts the daemon's message in the error: %s", err);
		ok(strstr(last_request, "\"DeviceRequests\":[{") &&
		        strstr(last_request, "\"Count\":2") &&
		        !strstr(last_request, "nvidia.com/gpu"),
		    "GPUs go to dockerd as a device request for the count");
	}
	{
		static const answer_t garbage[] = {
			{ JSON_HEAD("200 OK") "Content-Length: "
			                      "9\r\n\r\n{[}\"x\x01\xff",
			    NULL },
		};
		docker_container_t *v = NULL;
		size_t n = 0;

		fake(garbage, 1);
		r = docker_list(d, "shoal.node", "n1", &v, &n, err, sizeof err);
		fake_done();
		ok(r < 0 && v == NULL, "garbage instead of JSON is an error");
	}
	{
		static const answer_t cut[] = {
			{ JSON_HEAD(
			      "200 OK") "Content-Length: 500\r\n\r\n{\"Id\":",
			    NULL },
		};

		fake(cut, 1);
		r = docker_inspect(d, "abc", &info, err, sizeof err);
		fake_done();
		ok(r < 0, "a truncated answer is an error");
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
		char *text = NULL;

		fake(logs, 1);
		r = docker_logs_tail(d, "abc", 10, &text, err, sizeof err);
		fake_done();
		ok(r == 0 && text && strcmp(text, "out\nerr\n") == 0,
		    "logs are demultiplexed");
		free(text);
	}
	docker_close(&d);
	close(listen_fd);
	unlink(sock_path);
}

/* -- a real daemon ----------------------------------------------------- */

static void
test_real(const char *socket, const char *image)
{
	const char *cmd[] = { "/bin/sh", "-c",
		"echo hello-from-shoal; mkdir -p /www; echo ok > /www/health; "
		"exec httpd -f -p 8080 -h /www",
		NULL };
	const char *labels[] = { "shoal.managed", "true", "shoal.service",
		"t-svc", "shoal.revision", "7", "shoal.node", "t-node", NULL };
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
	okf(strcmp(docker_api_version(d), "1.41") >= 0,
	    "negotiated API %s (at least 1.41)", docker_api_version(d));
	ok(docker_is_podman(d), "Podman's service is recognised as Podman");
	is_int(docker_image_present(d, image, err, sizeof err), 1,
	    "the test image is present");
	is_int(docker_image_present(d, "localhost/shoal-no-such:1", err,
	           sizeof err),
	    0, "a missing image is not");
	r = docker_pull(d, "localhost/shoal-no-such:1", NULL, NULL, err,
	    sizeof err);
	okf(r < 0 && strstr(err, "shoal-no-such"),
	    "pulling a missing image fails and says which: %.80s", err);

	r = docker_create(d, &c, id, err, sizeof err);
	okf(r == 0 && id[0], "create %s %s", name, r ? err : "");
	r = docker_start(d, id, err, sizeof err);
	okf(r == 0, "start %s", r ? err : "");
	r = docker_inspect(d, id, &info, err, sizeof err);
	ok(r == 0 && strcmp(info.state, "running") == 0 && info.host_port > 0 &&
	        strcmp(info.name, name) == 0,
	    "inspect: running, with a published port and its name");
	ok(r == 0 && strcmp(info.service, "t-svc") == 0 && info.revision == 7 &&
	        strcmp(info.node, "t-node") == 0 && info.started_ms > 0,
	    "inspect: the shoal labels and the start time");
	r = docker_list(d, "shoal.node", "t-node", &v, &n, err, sizeof err);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(v[i].id, id) == 0 && v[i].revision == 7 &&
		    v[i].host_port == info.host_port)
			found = 1;
	ok(found, "list by label finds it, with its port and revision");
	free(v);
	for (int i = 0; i < 50; i++) {
		free(text);
		text = NULL;
		if (docker_logs_tail(d, id, 20, &text, err, sizeof err) == 0 &&
		    strstr(text, "hello-from-shoal"))
			break;
		usleep(100000);
	}
	ok(text && strstr(text, "hello-from-shoal"),
	    "the logs tail shows what the container printed");
	free(text);
	is_int(docker_start(d, id, err, sizeof err), 0,
	    "starting a running container is not an error");
	r = docker_stop(d, id, 2, err, sizeof err);
	okf(r == 0, "stop %s", r ? err : "");
	docker_inspect(d, id, &info, err, sizeof err);
	ok(strcmp(info.state, "running") != 0, "stopped");
	is_int(docker_remove(d, id, 1, err, sizeof err), 0, "remove");
	is_int(docker_inspect(d, id, &info, err, sizeof err), SHOAL_E_NOT_FOUND,
	    "a removed container is not found");
	is_int(docker_remove(d, id, 1, err, sizeof err), 0,
	    "removing it again is not an error");
	docker_close(&d);
}

int
main(void)
{
	const char *socket = getenv("SHOAL_RUNTIME_SOCKET");
	const char *image = getenv("SHOAL_TEST_IMAGE");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_fake();
	if (socket && *socket && image && *image)
		test_real(socket, image);
	else
		diag(
		    "SHOAL_RUNTIME_SOCKET and SHOAL_TEST_IMAGE not set: no "
		    "real daemon (tests/integration/test_docker.sh sets them)");
	curl_global_cleanup();
	return done_testing();
}
