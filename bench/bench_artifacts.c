/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifact download path, side by side in one run: reading and hashing
 * a file (the floor: what verification costs at least), the agent's cache
 * downloading the same file over file:// and over HTTP on loopback (an
 * in-process server thread), and how late a 10 ms timer on the same event
 * loop fires meanwhile (the loop must keep serving heartbeats and probes
 * while weights come in); for comparison, the naive way: one blocking
 * curl_easy_perform() into a file, hashed as it comes, then fsync, which
 * holds a loop for all of its duration.
 *
 * usage: bench_artifacts [MiB]   (default 256)
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "agent/artifacts.h"
#include "common/util.h"

static char root[256], file[512], sha[65];
static size_t size;
static int listen_fd;

/* Serves file to every connection: just enough HTTP for curl. */
static void *
serve(void *arg)
{
	static char buf[1 << 16];
	int fd;

	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		FILE *f = fopen(file, "r");
		char head[256];
		size_t n;

		if (read(fd, buf, sizeof buf) <= 0 || !f) {
			close(fd);
			continue;
		}
		n = (size_t)snprintf(head, sizeof head,
		    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n",
		    size);
		if (write(fd, head, n) != (ssize_t)n)
			goto next;
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			if (write(fd, buf, n) != (ssize_t)n)
				break;
	next:
		fclose(f);
		close(fd);
	}
	return NULL;
}

typedef struct probe {
	artifacts_t *af;
	Shoal__Artifact *a;
	uint64_t last, worst;
	int done;
} probe_t;

static int
tick(zloop_t *loop, int id, void *arg)
{
	probe_t *p = arg;
	uint64_t now = mono_ms();
	artifact_status_t st;

	if (p->last && now - p->last > p->worst)
		p->worst = now - p->last;
	p->last = now;
	artifacts_want(p->af, p->a, "bench", 0, &st);
	if (st.state != ARTIFACT_BUSY) {
		p->done = st.state == ARTIFACT_READY ? 1 : -1;
		return -1;
	}
	return 0;
}

static void
row(const char *what, double secs, uint64_t late)
{
	double mib = (double)size / (1 << 20);

	if (late == UINT64_MAX)
		printf("| %s | %.0f | %.0f | - |\n", what, mib, mib / secs);
	else
		printf("| %s | %.0f | %.0f | %llu |\n", what, mib, mib / secs,
		    (unsigned long long)late);
}

static void
download(zloop_t *loop, const char *what, const char *url, const char *sub)
{
	char *dir = xasprintf("%s/%s", root, sub);
	artifacts_config_t cfg = { .dir = dir,
		.downloads_max = 2,
		.stall_ms = 30000,
		.attempts = 1,
		.file_root = root };
	Shoal__Artifact a = SHOAL__ARTIFACT__INIT;
	artifacts_t *af = NULL;
	char err[256];
	probe_t p = { 0 };
	uint64_t t0;
	int timer;

	if (artifacts_new(loop, &cfg, NULL, &af, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	a.url = (char *)url;
	a.sha256 = sha;
	a.size = size;
	a.path = "/w";
	p.af = af;
	p.a = &a;
	t0 = mono_ms();
	timer = zloop_timer(loop, 10, 0, tick, &p);
	zloop_start(loop);
	zloop_timer_end(loop, timer);
	if (p.done != 1) {
		fprintf(stderr, "%s: the download failed\n", what);
		exit(1);
	}
	/* Lateness: beyond the timer's own 10 ms. */
	row(what, (double)(mono_ms() - t0) / 1000,
	    p.worst > 10 ? p.worst - 10 : 0);
	artifacts_destroy(&af);
	free(dir);
}

typedef struct sink {
	FILE *f;
	EVP_MD_CTX *ctx;
} sink_t;

static size_t
sink_write(char *p, size_t sz, size_t n, void *arg)
{
	sink_t *s = arg;

	EVP_DigestUpdate(s->ctx, p, sz * n);
	return fwrite(p, sz, n, s->f) * sz;
}

/* The naive way: a blocking transfer; a loop running it is stuck until
 * the end, so its lateness is the whole time. */
static void
naive(const char *url)
{
	char *path = xasprintf("%s/naive.bin", root);
	sink_t s = { fopen(path, "w"), EVP_MD_CTX_new() };
	CURL *c = curl_easy_init();
	uint64_t t0 = mono_ms(), took;

	EVP_DigestInit_ex(s.ctx, EVP_sha256(), NULL);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (!s.f || curl_easy_perform(c) != CURLE_OK) {
		fprintf(stderr, "naive download failed\n");
		exit(1);
	}
	fflush(s.f);
	fsync(fileno(s.f));
	fclose(s.f);
	took = mono_ms() - t0;
	row("blocking curl_easy_perform + SHA-256 + fsync (naive)",
	    (double)took / 1000, took);
	curl_easy_cleanup(c);
	EVP_MD_CTX_free(s.ctx);
	free(path);
}

int
main(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	char tmpl[] = "/tmp/shoal-bench-artifacts.XXXXXX", url[600], cmd[600];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx;
	pthread_t th;
	zloop_t *loop;
	struct rusage ru;
	FILE *f;
	uint64_t t0;
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(root, sizeof root, "%s", tmpl);
	snprintf(file, sizeof file, "%s/weights.bin", root);
	size = mib << 20;
	f = fopen(file, "w");
	for (size_t i = 0; f && i < mib; i++) {
		for (size_t k = 0; k < sizeof buf; k++)
			buf[k] = (unsigned char)(random_below(256));
		fwrite(buf, 1, sizeof buf, f);
	}
	if (!f || fclose(f) != 0)
		return 1;

	/* The floor: read and hash, no copy, no network. */
	printf("| path | MiB | MiB/s | worst lateness of a 10 ms loop timer "
	       "(ms) |\n| --- | ---: | ---: | ---: |\n");
	t0 = mono_ms();
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	f = fopen(file, "r");
	for (size_t n; f && (n = fread(buf, 1, sizeof buf, f)) > 0;)
		EVP_DigestUpdate(ctx, buf, n);
	if (f)
		fclose(f);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 32; i++)
		snprintf(sha + i * 2, 3, "%02x", md[i]);
	row("read + SHA-256 only (the floor)", (double)(mono_ms() - t0) / 1000,
	    UINT64_MAX);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	zsys_init();
	zsys_set_logstream(NULL);
	loop = zloop_new();
	snprintf(url, sizeof url, "file://%s", file);
	download(loop, "agent cache, file:// (read in slices on the loop)", url,
	    "c1");

	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(listen_fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    listen(listen_fd, 4) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&sin, &len) < 0)
		return 1;
	pthread_create(&th, NULL, serve, NULL);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/weights.bin",
	    ntohs(sin.sin_port));
	download(loop, "agent cache, http:// on loopback", url, "c2");
	naive(url);

	getrusage(RUSAGE_SELF, &ru);
	printf("\nPeak RSS of the benchmark process: %ld KiB\n", ru.ru_maxrss);
	zloop_destroy(&loop);
	curl_global_cleanup();
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : 1;
}
