/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's artifact cache, driven on a real zloop: file:// downloads
 * verified into the content-addressed cache, a checksum or size mismatch
 * keeping nothing, one download for one sha256, a partial file left by an
 * earlier run resumed, the budget refusing up front and evicting the least
 * recently used unpinned artifact, and https against `openssl s_server`
 * trusting a CA file (skipped without the openssl program).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "agent/artifacts.h"
#include "common/util.h"
#include "tests/tap.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static char root[256];

typedef struct events {
	char kinds[64][32];
	char last[512];
	unsigned n;
} events_t;

static events_t evs;

static void
on_event(const char *kind, const char *service, const char *message, void *arg)
{
	if (evs.n < 64)
		snprintf(evs.kinds[evs.n++], sizeof evs.kinds[0], "%s", kind);
	snprintf(evs.last, sizeof evs.last, "%s", message);
}

static int
saw(const char *kind)
{
	int n = 0;

	for (unsigned i = 0; i < evs.n; i++)
		n += strcmp(evs.kinds[i], kind) == 0;
	return n;
}

static void
sha_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", md[i]);
}

/* Content made of one repeated byte: n bytes of c, and its file. */
static char *
make_file(const char *name, int c, size_t n, char sha[65])
{
	char *buf = xmalloc(n), *path = xasprintf("%s/www/%s", root, name);
	FILE *f = fopen(path, "w");

	memset(buf, c, n);
	if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
		abort();
	sha_hex(buf, n, sha);
	free(buf);
	return path;
}

typedef struct waiter {
	artifacts_t *af;
	Shoal__Artifact *a;
	artifact_status_t st;
	uint64_t deadline;
} waiter_t;

static int
poll_want(zloop_t *loop, int timer_id, void *arg)
{
	waiter_t *w = arg;

	artifacts_want(w->af, w->a, "iris", 0, &w->st);
	return w->st.state != ARTIFACT_BUSY || mono_ms() > w->deadline ? -1 : 0;
}

/* Asks for a (retry: again after a failure) and runs the loop until it is
 * ready or failed, 20 s at most. */
static artifact_status_t
fetch(zloop_t *loop, artifacts_t *af, Shoal__Artifact *a, int retry)
{
	waiter_t w = { af, a, { 0 }, mono_ms() + 20000 };
	int t;

	artifacts_want(af, a, "iris", retry, &w.st);
	if (w.st.state != ARTIFACT_BUSY)
		return w.st;
	t = zloop_timer(loop, 20, 0, poll_want, &w);
	zloop_start(loop);
	zloop_timer_end(loop, t);
	return w.st;
}

static Shoal__Artifact
artifact(const char *url, const char *sha, uint64_t size)
{
	Shoal__Artifact a = SHOAL__ARTIFACT__INIT;

	a.url = (char *)url;
	a.sha256 = (char *)sha;
	a.size = size;
	a.path = "/models/w.bin";
	return a;
}

static int
exists(const char *dir, const char *sha)
{
	char *p = xasprintf("%s/%s/%s", root, dir, sha);
	struct stat sb;
	int r = stat(p, &sb) == 0;

	free(p);
	return r;
}

static artifacts_t *
open_cache(zloop_t *loop, const char *sub, uint64_t budget, const char *ca)
{
	char *dir = xasprintf("%s/%s", root, sub);
	artifacts_config_t cfg = { .dir = dir,
		.budget_bytes = budget,
		.downloads_max = 2,
		.stall_ms = 5000,
		.attempts = 3,
		.ca_file = ca,
		.file_root = root };
	artifacts_hooks_t hooks = { .event = on_event };
	artifacts_t *af = NULL;
	char err[256];

	if (artifacts_new(loop, &cfg, &hooks, &af, err, sizeof err) < 0) {
		diag("%s", err);
		abort();
	}
	free(dir);
	return af;
}

static void
test_download(zloop_t *loop)
{
	artifacts_t *af = open_cache(loop, "c1", 0, NULL);
	char sha[65], other[65], url[512], bad[600], cmd_buf[512], *path,
	    *cached;
	Shoal__Artifact a, b;
	artifact_status_t st;
	struct stat sb;

	path = make_file("w1", 'a', 100000, sha);
	snprintf(url, sizeof url, "file://%s", path);
	a = artifact(url, sha, 0);
	st = fetch(loop, af, &a, 0);
	is_int(st.state, ARTIFACT_READY, "a file:// artifact downloads");
	is_int((int)st.total, 100000, "... all of its bytes");
	ok(exists("c1/sha256", sha), "into <dir>/sha256/<sha256>");
	cached = xasprintf("%s/c1/sha256/%s", root, sha);
	ok(stat(cached, &sb) == 0 && (sb.st_mode & 0777) == 0444,
	    "... read-only");
	ok(saw("artifact.downloading") == 1 && saw("artifact.verified") == 1,
	    "events tell the download and its verification");
	is_int((int)artifacts_downloaded(af), 100000, "100000 bytes came");
	st = fetch(loop, af, &a, 0);
	ok(st.state == ARTIFACT_READY && artifacts_downloaded(af) == 100000,
	    "wanted again: ready at once, nothing downloaded");

	/* Another url, the same digest: the cache answers. */
	snprintf(bad, sizeof bad, "file://%s/www/nothing-here", root);
	b = artifact(bad, sha, 0);
	st = fetch(loop, af, &b, 0);
	ok(st.state == ARTIFACT_READY && artifacts_downloaded(af) == 100000,
	    "one sha256 is stored once, whatever names it");

	/* A file whose digest is not the one named. */
	free(make_file("w2", 'b', 5000, other));
	free(path);
	path = xasprintf("file://%s/www/w2", root);
	b = artifact(path, ZEROS, 0);
	st = fetch(loop, af, &b, 0);
	is_int(st.state, ARTIFACT_FAILED, "a checksum mismatch fails");
	ok(st.reason &&
	        strstr(st.reason,
	            "checksum mismatch: expected sha256 "
	            "0000000000000000") &&
	        strstr(st.reason, other),
	    "the reason names both digests");
	ok(!exists("c1/sha256", b.sha256) && !exists("c1/partial", b.sha256),
	    "nothing of it is kept");
	st = fetch(loop, af, &b, 0);
	is_int(st.state, ARTIFACT_FAILED, "asked again: still failed");
	evs.n = 0;
	st = fetch(loop, af, &b, 1);
	ok(st.state == ARTIFACT_FAILED && saw("artifact.failed") == 1,
	    "retry: downloaded again, and fails again");

	/* The size in the spec is checked while the bytes come. */
	b = artifact(path, other, 4999);
	st = fetch(loop, af, &b, 0);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "more than the 4999 bytes"),
	    "more bytes than the spec's size fail");
	ok(!exists("c1/partial", other), "... and are not kept");

	/* A missing file fails for good: no retries. */
	evs.n = 0;
	b = artifact(bad, other, 0);
	st = fetch(loop, af, &b, 1);
	ok(st.state == ARTIFACT_FAILED && saw("artifact.retry") == 0,
	    "a missing file fails without retries");
	/* file:// reads only below the file root. */
	b = artifact("file:///etc/passwd", other, 0);
	st = fetch(loop, af, &b, 1);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "/etc/passwd is outside artifact_file_root"),
	    "file:// outside artifact_file_root is refused");
	snprintf(cmd_buf, sizeof cmd_buf, "%s/www/link", root);
	if (symlink("/etc/passwd", cmd_buf) < 0)
		abort();
	snprintf(bad, sizeof bad, "file://%s", cmd_buf);
	b = artifact(bad, other, 0);
	st = fetch(loop, af, &b, 1);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "outside artifact_file_root"),
	    "... also through a symbolic link below it");
	free(path);
	free(cached);
	artifacts_destroy(&af);
	ok(af == NULL, "artifacts_destroy clears the pointer");
}

/* A partial file an earlier run left: hashed, then only the rest comes. */
static void
test_resume(zloop_t *loop)
{
	char sha[65], url[512], *path, *partial;
	artifacts_t *af = open_cache(loop, "c2", 0, NULL);
	Shoal__Artifact a;
	artifact_status_t st;
	FILE *f;
	char *half = xmalloc(60000);

	path = make_file("w3", 'c', 200000, sha);
	memset(half, 'c', 60000);
	partial = xasprintf("%s/c2/partial/%s", root, sha);
	f = fopen(partial, "w");
	if (!f || fwrite(half, 1, 60000, f) != 60000 || fclose(f) != 0)
		abort();
	snprintf(url, sizeof url, "file://%s", path);
	a = artifact(url, sha, 200000);
	evs.n = 0;
	st = fetch(loop, af, &a, 0);
	is_int(st.state, ARTIFACT_READY, "a partial file is resumed");
	is_int((int)artifacts_downloaded(af), 140000,
	    "only the missing 140000 bytes came");
	ok(saw("artifact.resumed") == 1 && strstr(evs.last, "verified"),
	    "the resume is an event, then the verification");
	ok(!exists("c2/partial", sha), "the partial file became the artifact");
	free(half);
	free(path);
	free(partial);
	artifacts_destroy(&af);
}

static void
set_used(const char *sub, const char *sha, time_t when)
{
	char *p = xasprintf("%s/%s/sha256/%s", root, sub, sha);
	struct timespec ts[2] = { { when, 0 }, { when, 0 } };

	utimensat(AT_FDCWD, p, ts, 0);
	free(p);
}

static void
test_budget(zloop_t *loop)
{
	artifacts_t *af = open_cache(loop, "c3", 3000, NULL);
	char sha[5][65], url[5][512], *p;
	Shoal__Artifact a[5];
	artifact_status_t st;
	const char *pins[3];

	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof name, "b%d", i);
		p = make_file(name, 'k' + i, 1000, sha[i]);
		snprintf(url[i], sizeof url[i], "file://%s", p);
		free(p);
		a[i] = artifact(url[i], sha[i], 1000);
	}
	for (int i = 0; i < 3; i++)
		fetch(loop, af, &a[i], 0);
	ok(exists("c3/sha256", sha[0]) && exists("c3/sha256", sha[1]) &&
	        exists("c3/sha256", sha[2]),
	    "three artifacts fill a budget of 3000 bytes");
	/* Oldest use first: 2 (pinned), then 0, then 1. */
	set_used("c3", sha[2], 100);
	set_used("c3", sha[0], 200);
	set_used("c3", sha[1], 300);
	pins[0] = sha[2];
	artifacts_pin(af, pins, 1);
	evs.n = 0;
	st = fetch(loop, af, &a[3], 0);
	is_int(st.state, ARTIFACT_READY, "a fourth fits after an eviction");
	ok(!exists("c3/sha256", sha[0]) && exists("c3/sha256", sha[1]) &&
	        exists("c3/sha256", sha[2]),
	    "the least recently used unpinned one went, the pinned one stayed");
	is_int(saw("artifact.evicted"), 1, "the eviction is an event");

	pins[0] = sha[1];
	pins[1] = sha[2];
	pins[2] = sha[3];
	artifacts_pin(af, pins, 3);
	st = fetch(loop, af, &a[4], 0);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "pinned") &&
	        strstr(st.reason, "artifact_cache_budget"),
	    "all pinned: refused, naming the budget");
	ok(exists("c3/sha256", sha[1]) && exists("c3/sha256", sha[2]) &&
	        exists("c3/sha256", sha[3]),
	    "... and nothing pinned was evicted");

	{
		uint64_t before = artifacts_downloaded(af);

		a[4].size = 4096;
		st = fetch(loop, af, &a[4], 1);
		ok(st.state == ARTIFACT_FAILED && st.reason &&
		        strstr(st.reason,
		            "more than the artifact cache budget"),
		    "larger than the budget: refused up front");
		is_int((int)(artifacts_downloaded(af) - before), 0,
		    "... with no byte downloaded");
	}
	artifacts_destroy(&af);
}

/* A file system too small: refused before a byte comes (root only: a
 * 1 MiB tmpfs). */
static void
test_full_disk(zloop_t *loop)
{
	char cmd[600], sha[65], url[512], *p;
	artifacts_t *af;
	Shoal__Artifact a;
	artifact_status_t st;

	snprintf(cmd, sizeof cmd,
	    "mkdir -p %s/small && mount -t tmpfs -o size=1m tmpfs %s/small "
	    "2>/dev/null",
	    root, root);
	if (geteuid() != 0 || system(cmd) != 0) {
		diag("skipping the full disk: cannot mount a tmpfs");
		return;
	}
	p = make_file("big.bin", 'z', 3 << 20, sha);
	snprintf(url, sizeof url, "file://%s", p);
	free(p);
	af = open_cache(loop, "small/cache", 0, NULL);
	a = artifact(url, sha, 0);
	st = fetch(loop, af, &a, 0);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "needs 3.0 MiB, only") &&
	        strstr(st.reason, "free on the file system"),
	    "more than the disk holds: refused up front, naming the sizes");
	diag("%s", st.reason ? st.reason : "");
	is_int((int)artifacts_downloaded(af), 0, "... before any byte came");
	ok(!exists("small/cache/partial", sha), "... and nothing was written");
	artifacts_destroy(&af);
	snprintf(cmd, sizeof cmd, "umount %s/small", root);
	if (system(cmd) != 0)
		diag("cannot unmount %s/small", root);
}

/* https against openssl s_server, trusting its certificate by CA file. */
static void
test_https(zloop_t *loop)
{
	char cmd[2048], cert[512], url[512], sha[65], *p;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	artifacts_t *af, *plain;
	Shoal__Artifact a;
	artifact_status_t st;
	int s, port, up = 0;
	pid_t pid;

	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		diag("skipping https: no openssl program");
		return;
	}
	snprintf(cert, sizeof cert, "%s/tls/cert.pem", root);
	snprintf(cmd, sizeof cmd,
	    "mkdir -p %s/tls && cd %s/tls && openssl req -x509 -newkey "
	    "rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
	    "subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem "
	    ">/dev/null 2>&1",
	    root, root);
	if (system(cmd) != 0) {
		diag("skipping https: cannot make a certificate");
		return;
	}
	/* A port the kernel picks, handed to s_server. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) < 0)
		abort();
	port = ntohs(sin.sin_port);
	close(s);
	p = make_file("tls.bin", 't', 30000, sha);
	free(p);
	pid = fork();
	if (pid == 0) {
		char dir[512], accept[32], key[512];
		int null = open("/dev/null", O_WRONLY);

		snprintf(dir, sizeof dir, "%s/www", root);
		snprintf(key, sizeof key, "%s/tls/key.pem", root);
		snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
		dup2(null, 1);
		dup2(null, 2);
		if (chdir(dir) < 0)
			_exit(127);
		execlp("openssl", "openssl", "s_server", "-quiet", "-WWW",
		    "-accept", accept, "-cert", cert, "-key", key,
		    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !up; i++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		up = connect(s, (struct sockaddr *)&sin, sizeof sin) == 0;
		close(s);
		if (!up)
			usleep(50000);
	}
	okf(up, "openssl s_server serves https on 127.0.0.1:%d", port);
	snprintf(url, sizeof url, "https://127.0.0.1:%d/tls.bin", port);
	a = artifact(url, sha, 30000);

	plain = open_cache(loop, "c4", 0, NULL);
	st = fetch(loop, plain, &a, 0);
	ok(st.state == ARTIFACT_FAILED && st.reason &&
	        strstr(st.reason, "certificate"),
	    "a certificate the system does not trust fails");
	diag("%s", st.reason ? st.reason : "");
	ok(!exists("c4/sha256", sha), "... and nothing is cached");
	artifacts_destroy(&plain);

	af = open_cache(loop, "c5", 0, cert);
	st = fetch(loop, af, &a, 0);
	is_int(st.state, ARTIFACT_READY, "trusted through artifact_ca_file");
	ok(exists("c5/sha256", sha), "... verified into the cache");
	artifacts_destroy(&af);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int
main(void)
{
	char tmpl[] = "/tmp/shoal-artifacts.XXXXXX", cmd[512];
	zloop_t *loop;

	if (!mkdtemp(tmpl))
		abort();
	snprintf(root, sizeof root, "%s", tmpl);
	snprintf(cmd, sizeof cmd, "%s/www", root);
	mkdir(cmd, 0755);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	zsys_init();
	zsys_set_logstream(NULL);
	loop = zloop_new();

	test_download(loop);
	test_resume(loop);
	test_budget(loop);
	test_full_disk(loop);
	test_https(loop);

	zloop_destroy(&loop);
	curl_global_cleanup();
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd) != 0)
		diag("cannot remove %s", root);
	return done_testing();
}
