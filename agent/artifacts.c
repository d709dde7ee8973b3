/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifact cache and its downloads (see artifacts.h). libcurl's multi
 * interface runs on the agent's zloop: curl names the sockets it waits on
 * (a zloop poller each) and the timeout it wants (a one-shot zloop timer);
 * a pump timer starts queued downloads, hashes resumed partial files a
 * chunk at a time and watches for stalls. Nothing here blocks on the
 * network; file writes are local and short.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "agent/artifacts.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

#define PUMP_MS 250
#define CHUNK (1u << 20) /* bytes read at once from a local file */
/* Local work (hashing a partial file, copying from file://) runs in
 * slices of this many ms, a ms apart, so the loop keeps serving. */
#define WORK_SLICE_MS 8
/* Written data is handed to the disk every this many bytes: the final
 * fsync then finds little left to write. */
#define WRITEBACK_BYTES (8u << 20)
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
#define CONNECT_TIMEOUT_S 30
/* Slower than this for four stall timeouts is a stall too. */
#define LOW_SPEED_BYTES 1024
/* Free space a download leaves on the file system, at most. */
#define FREE_RESERVE (64ull << 20)
/* Partial files nobody resumed for this long are removed at start-up. */
#define PARTIAL_MAX_AGE_S (24 * 3600)
#define REASON_MAX 512
#define SHA_HEX 64

typedef enum dl_state {
	D_QUEUED,
	D_HEAD,
	D_HASHING,
	D_GET,
	D_COPY, /* file://: read in slices on the loop, not by curl */
	D_SYNC, /* verified; a thread syncs it and moves it in */
	D_WAIT,
	D_FAILED,
} dl_state_t;

typedef struct dl {
	struct artifacts *af;
	char sha[SHA_HEX + 1];
	char *url;
	char service[SERVICE_NAME_MAX + 1];
	uint64_t size;  /* the spec's; 0: not given */
	uint64_t total; /* size, else what HEAD said; 0: unknown */
	uint64_t cap;   /* total unknown: the most that fits */
	int head_done;
	dl_state_t st;
	CURL *easy;
	char curl_err[CURL_ERROR_SIZE];
	int fd;
	int src;          /* D_COPY: the local file read */
	uint64_t flushed; /* bytes handed to the disk (writeback) */
	pthread_t syncer; /* D_SYNC */
	int sync_running; /* syncer not joined yet */
	int synced;       /* set by the syncer when done (atomic) */
	int sync_err;
	const char *sync_what;
	EVP_MD_CTX *md;
	uint64_t have;   /* bytes in the partial file */
	uint64_t hashed; /* bytes of it fed to md (HASHING: fewer) */
	unsigned attempt;
	uint64_t retry_mono, last_byte_mono, started_mono;
	unsigned quarter;        /* progress events sent (25% each) */
	char reason[REASON_MAX]; /* why this attempt failed */
	int permanent;           /* ... and why no retry helps */
} dl_t;

typedef struct sock {
	curl_socket_t fd;
	int events; /* ZMQ_POLLIN | ZMQ_POLLOUT as registered */
} sock_t;

struct artifacts {
	zloop_t *loop;
	CURLM *multi;
	int timer; /* curl's timeout, -1: none */
	int pump;
	int work; /* the local work timer, -1: none */
	int efd;  /* eventfd: a sync thread finished */
	char *dir, *cache_dir, *partial_dir;
	char *ca_file;
	char *file_root; /* resolved; NULL: file:// refused */
	uint64_t budget;
	unsigned downloads_max, attempts;
	uint64_t stall_ms;
	artifacts_hooks_t hooks;
	dl_t **v;
	size_t n;
	char **pins;
	size_t npins;
	uint64_t downloaded;
	char reason[REASON_MAX]; /* artifacts_want()'s borrowed reason */
};

static void emit(artifacts_t *af, const dl_t *d, const char *kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
emit(artifacts_t *af, const dl_t *d, const char *kind, const char *fmt, ...)
{
	char msg[REASON_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	wire_clean_text(msg, sizeof msg - 1, 1);
	if (af->hooks.event)
		af->hooks.event(kind, d->service, msg, af->hooks.arg);
}

static void set_reason(dl_t *d, int permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_reason(dl_t *d, int permanent, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof d->reason, fmt, ap);
	va_end(ap);
	d->permanent = permanent;
}

/* -- the cache on disk ------------------------------------------------- */

void
artifacts_path(const artifacts_t *af, const char *sha, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", af->cache_dir, sha);
}

static void
partial_path(const artifacts_t *af, const char *sha, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", af->partial_dir, sha);
}

static int
pinned(const artifacts_t *af, const char *sha)
{
	for (size_t i = 0; i < af->npins; i++)
		if (strcmp(af->pins[i], sha) == 0)
			return 1;
	return 0;
}

static dl_t *
find_dl(const artifacts_t *af, const char *sha)
{
	for (size_t i = 0; i < af->n; i++)
		if (strcmp(af->v[i]->sha, sha) == 0)
			return af->v[i];
	return NULL;
}

static int
is_hex_name(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == SHA_HEX && s[n] == '\0';
}

typedef struct entry {
	char sha[SHA_HEX + 1];
	uint64_t bytes;
	uint64_t used; /* mtime in ns: when it was last wanted */
} entry_t;

/* The cached artifacts; *ret owned by the caller. Returns their bytes. */
static uint64_t
scan_cache(const artifacts_t *af, entry_t **ret, size_t *ret_n)
{
	DIR *dir = opendir(af->cache_dir);
	struct dirent *de;
	entry_t *v = NULL;
	size_t n = 0;
	uint64_t total = 0;

	while (dir && (de = readdir(dir))) {
		struct stat sb;

		if (!is_hex_name(de->d_name) ||
		    fstatat(dirfd(dir), de->d_name, &sb, 0) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		v = xrealloc(v, (n + 1) * sizeof *v);
		memcpy(v[n].sha, de->d_name,
		    SHA_HEX + 1); /* checked: 64 + NUL */
		v[n].bytes = (uint64_t)sb.st_size;
		v[n].used = (uint64_t)sb.st_mtim.tv_sec * 1000000000u +
		    (uint64_t)sb.st_mtim.tv_nsec;
		total += v[n].bytes;
		n++;
	}
	if (dir)
		closedir(dir);
	*ret = v;
	*ret_n = n;
	return total;
}

/* What the downloads other than d hold or were promised: for the budget,
 * a running one's whole size, any other's partial file; for the free
 * space, the bytes still to come. */
static void
promised(const artifacts_t *af, const dl_t *d, uint64_t *ret_budget,
    uint64_t *ret_disk)
{
	*ret_budget = *ret_disk = 0;
	for (size_t i = 0; i < af->n; i++) {
		const dl_t *o = af->v[i];
		uint64_t whole = o->total > o->have ? o->total : o->have;

		if (o == d)
			continue;
		if (o->st == D_GET || o->st == D_HASHING || o->st == D_COPY) {
			*ret_budget += whole;
			*ret_disk += whole - o->have;
		} else {
			/* Waiting or failed: what its partial file holds
			 * (a sync thread's file is whole already). */
			*ret_budget += o->have;
		}
	}
}

static uint64_t
free_bytes(const artifacts_t *af, uint64_t *ret_reserve)
{
	struct statvfs vfs;
	uint64_t size;

	if (statvfs(af->dir, &vfs) < 0) {
		*ret_reserve = 0;
		return UINT64_MAX;
	}
	size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	*ret_reserve = size / 20 < FREE_RESERVE ? size / 20 : FREE_RESERVE;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static int
by_use(const void *a, const void *b)
{
	const entry_t *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/*
 * Makes room for the bytes d still needs: within the budget and the free
 * space, evicting unpinned artifacts oldest use first. 0, or -1 with
 * d->reason set.
 */
static int
reserve(artifacts_t *af, dl_t *d)
{
	uint64_t need = d->total > d->have ? d->total - d->have : 0;
	uint64_t whole = d->total > d->have ? d->total : d->have;
	uint64_t used, avail, keep, other, other_disk, evictable = 0;
	uint64_t budget_over = 0, disk_over = 0, freed = 0;
	entry_t *v;
	size_t n;
	char a[32], b[32], c[32];

	if (af->budget && d->total > af->budget) {
		format_bytes(d->total, a, sizeof a);
		format_bytes(af->budget, b, sizeof b);
		set_reason(d, 1,
		    "sha256:%.12s is %s, more than the artifact cache budget "
		    "of %s (artifact_cache_budget)",
		    d->sha, a, b);
		return -1;
	}
	if (af->hooks.pins)
		af->hooks.pins(af->hooks.arg);
	promised(af, d, &other, &other_disk);
	used = scan_cache(af, &v, &n);
	avail = free_bytes(af, &keep);
	if (n)
		qsort(v, n, sizeof *v, by_use);
	for (size_t i = 0; i < n; i++)
		if (!pinned(af, v[i].sha) && strcmp(v[i].sha, d->sha) != 0)
			evictable += v[i].bytes;
	if (af->budget && used + other + whole > af->budget)
		budget_over = used + other + whole - af->budget;
	if (avail < need + other_disk + keep)
		disk_over = need + other_disk + keep - avail;
	/* Evict only when that makes it fit: a download that cannot fit
	 * anyway leaves the cache as it is. */
	if (budget_over > evictable) {
		format_bytes(need, a, sizeof a);
		format_bytes(used + other - evictable, b, sizeof b);
		format_bytes(af->budget, c, sizeof c);
		set_reason(d, 0,
		    "sha256:%.12s needs %s more, but the artifact cache "
		    "holds %s of pinned or downloading artifacts with a "
		    "budget of %s (artifact_cache_budget)",
		    d->sha, a, b, c);
		free(v);
		return -1;
	}
	if (disk_over > evictable) {
		format_bytes(need, a, sizeof a);
		format_bytes(avail + evictable, b, sizeof b);
		set_reason(d, 0,
		    "sha256:%.12s needs %s, only %s free on the file system "
		    "of %s",
		    d->sha, a, b, af->dir);
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n && (freed < budget_over || freed < disk_over);
	     i++) {
		char path[PATH_MAX];

		if (pinned(af, v[i].sha) || strcmp(v[i].sha, d->sha) == 0)
			continue;
		artifacts_path(af, v[i].sha, path, sizeof path);
		if (unlink(path) < 0)
			continue;
		freed += v[i].bytes;
		format_bytes(v[i].bytes, a, sizeof a);
		emit(af, d, "artifact.evicted",
		    "sha256:%.12s (%s, the least recently used) evicted to "
		    "make room for sha256:%.12s",
		    v[i].sha, a, d->sha);
		log_info("artifact sha256:%.12s evicted (%s)", v[i].sha, a);
	}
	free(v);
	/* Without a size: what fits is the most it may write. */
	d->cap = 0;
	if (!d->total) {
		uint64_t room = avail + freed > other_disk + keep
		    ? avail + freed - other_disk - keep
		    : 0;

		if (af->budget) {
			uint64_t left = af->budget > used - freed + other
			    ? af->budget - (used - freed + other)
			    : 0;

			room = left < room ? left : room;
		}
		d->cap = room ? room : 1;
	}
	return 0;
}

/* -- curl and the loop ------------------------------------------------- */

static void check_done(artifacts_t *af);
static void work_kick(artifacts_t *af);
static void verify(artifacts_t *af, dl_t *d);

static int
on_socket_ready(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	artifacts_t *af = arg;
	int flags = 0, running;

	if (item->revents & ZMQ_POLLIN)
		flags |= CURL_CSELECT_IN;
	if (item->revents & ZMQ_POLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (item->revents & ZMQ_POLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(af->multi, item->fd, flags, &running);
	check_done(af);
	return 0;
}

static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	artifacts_t *af = userp;
	sock_t *sk = socketp;
	zmq_pollitem_t item = { .socket = NULL, .fd = s };

	if (what == CURL_POLL_REMOVE) {
		if (sk) {
			zloop_poller_end(af->loop, &item);
			curl_multi_assign(af->multi, s, NULL);
			free(sk);
		}
		return 0;
	}
	item.events = (what & CURL_POLL_IN ? ZMQ_POLLIN : 0) |
	    (what & CURL_POLL_OUT ? ZMQ_POLLOUT : 0);
	if (sk && sk->events == item.events)
		return 0;
	if (sk) {
		zloop_poller_end(af->loop, &item);
	} else {
		sk = xcalloc(1, sizeof *sk);
		sk->fd = s;
		curl_multi_assign(af->multi, s, sk);
	}
	sk->events = item.events;
	if (zloop_poller(af->loop, &item, on_socket_ready, af) < 0)
		return -1;
	zloop_poller_set_tolerant(af->loop, &item);
	return 0;
}

static int
on_curl_timer(zloop_t *loop, int timer_id, void *arg)
{
	artifacts_t *af = arg;
	int running;

	af->timer = -1; /* one-shot: gone now */
	curl_multi_socket_action(af->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(af);
	return 0;
}

static int
on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
	artifacts_t *af = userp;

	if (af->timer >= 0) {
		zloop_timer_end(af->loop, af->timer);
		af->timer = -1;
	}
	if (timeout_ms >= 0)
		af->timer = zloop_timer(af->loop,
		    timeout_ms > 0 ? (size_t)timeout_ms : 1, 1, on_curl_timer,
		    af);
	return 0;
}

/* -- one download ------------------------------------------------------ */

static void
end_transfer(artifacts_t *af, dl_t *d)
{
	if (d->easy) {
		curl_multi_remove_handle(af->multi, d->easy);
		curl_easy_cleanup(d->easy);
		d->easy = NULL;
	}
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
	if (d->src >= 0) {
		close(d->src);
		d->src = -1;
	}
}

static void
remove_partial(artifacts_t *af, dl_t *d)
{
	char path[PATH_MAX];

	partial_path(af, d->sha, path, sizeof path);
	unlink(path);
	d->have = d->hashed = 0;
	if (d->md)
		EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
}

static int
is_http(const dl_t *d)
{
	return strncmp(d->url, "http://", 7) == 0 ||
	    strncmp(d->url, "https://", 8) == 0;
}

static int
is_file(const dl_t *d)
{
	return strncmp(d->url, "file://", 7) == 0;
}

/*
 * The local path of a file:// url, resolved, when it lies under the
 * configured file root (a spec must not read the agent's own files);
 * else NULL and why. The caller frees.
 */
static char *
local_path(const artifacts_t *af, const dl_t *d, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *host = NULL, *path = NULL, *real = NULL;
	size_t rootlen = af->file_root ? strlen(af->file_root) : 0;

	if (!u)
		abort();
	if (!af->file_root) {
		snprintf(why, whylen,
		    "file:// artifacts are off on this node (set "
		    "artifact_file_root)");
	} else if (curl_url_set(u, CURLUPART_URL, d->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) !=
	        CURLUE_OK) {
		snprintf(why, whylen, "%s: not a file url", d->url);
	} else if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    host[0] && strcmp(host, "localhost") != 0) {
		snprintf(why, whylen, "%s: names another host", d->url);
	} else if (!(real = realpath(path, NULL))) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
	} else if (strncmp(real, af->file_root, rootlen) != 0 ||
	    (real[rootlen] != '/' && af->file_root[rootlen - 1] != '/')) {
		snprintf(why, whylen, "%s is outside artifact_file_root %s",
		    real, af->file_root);
		free(real);
		real = NULL;
	}
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return real;
}

/* Bytes of the artifact: into the partial file and the digest. 0, or -1
 * with d->reason set. */
static int
take(dl_t *d, const char *ptr, size_t n)
{
	size_t off = 0;

	if (d->total && d->have + n > d->total) {
		set_reason(d, 1, "more than the %llu bytes it should have",
		    (unsigned long long)d->total);
		return -1;
	}
	if (!d->total && d->cap && d->have + n > d->cap) {
		char a[32];

		format_bytes(d->cap, a, sizeof a);
		set_reason(d, 1,
		    "no size given and more than the %s that fit in the "
		    "cache budget and the free space; give the artifact a size",
		    a);
		return -1;
	}
	while (off < n) {
		ssize_t w = write(d->fd, ptr + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			/* A full disk is not retried into: what was
			 * written goes (see on_data's callers). */
			set_reason(d, 1, "cannot write: %s", strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	EVP_DigestUpdate(d->md, ptr, n);
	d->have += n;
	d->hashed = d->have;
	d->af->downloaded += n;
	d->last_byte_mono = mono_ms();
	if (d->have - d->flushed >= WRITEBACK_BYTES) {
		/* Starts writing it out, without waiting. */
		sync_file_range(d->fd, (off_t)d->flushed,
		    (off_t)(d->have - d->flushed), SYNC_FILE_RANGE_WRITE);
		d->flushed = d->have;
	}
	return 0;
}

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;

	return take(arg, ptr, n) < 0 ? 0 : n;
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

static CURL *
new_easy(artifacts_t *af, dl_t *d)
{
	CURL *c = curl_easy_init();

	if (!c)
		abort();
	curl_easy_setopt(c, CURLOPT_URL, d->url);
	curl_easy_setopt(c, CURLOPT_PRIVATE, d);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	/* A trickle holds a download slot as surely as a stall. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
	    (long)(af->stall_ms / 1000 * 4 > 8 ? af->stall_ms / 1000 * 4 : 8));
	curl_easy_setopt(c, CURLOPT_USERAGENT, "shoal-agent/" PACKAGE_VERSION);
	if (af->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, af->ca_file);
	d->curl_err[0] = '\0';
	d->reason[0] = '\0';
	d->started_mono = d->last_byte_mono = mono_ms();
	return c;
}

static void
fail(artifacts_t *af, dl_t *d)
{
	d->st = D_FAILED;
	emit(af, d, "artifact.failed", "sha256:%.12s from %s: %s", d->sha,
	    d->url, d->reason);
	log_warning("artifact sha256:%.12s from %s: %s", d->sha, d->url,
	    d->reason);
}

/* This attempt failed (d->reason): again later, or for good. */
static void
attempt_failed(artifacts_t *af, dl_t *d)
{
	uint64_t wait = RETRY_MIN_MS;

	end_transfer(af, d);
	if (d->permanent || d->attempt + 1 >= af->attempts) {
		if (!d->permanent && af->attempts > 1) {
			size_t len = strlen(d->reason);

			snprintf(d->reason + len, sizeof d->reason - len,
			    " (after %u attempts)", d->attempt + 1);
		}
		fail(af, d);
		return;
	}
	for (unsigned i = 0; i < d->attempt && wait < RETRY_MAX_MS; i++)
		wait *= 2;
	if (wait > RETRY_MAX_MS)
		wait = RETRY_MAX_MS;
	d->attempt++;
	d->st = D_WAIT;
	d->retry_mono = mono_ms() + wait;
	emit(af, d, "artifact.retry",
	    "sha256:%.12s: %s; attempt %u of %u in %llus, from byte %llu",
	    d->sha, d->reason, d->attempt + 1, af->attempts,
	    (unsigned long long)(wait / 1000), (unsigned long long)d->have);
	log_warning("artifact sha256:%.12s: %s; trying again in %llums", d->sha,
	    d->reason, (unsigned long long)wait);
}

static void
start_head(artifacts_t *af, dl_t *d)
{
	d->easy = new_easy(af, d);
	curl_easy_setopt(d->easy, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard);
	d->st = D_HEAD;
	curl_multi_add_handle(af->multi, d->easy);
}

/* All bytes already there (a crash between the last byte and the move
 * into the cache): nothing to fetch, only to check. */
static int
complete(const dl_t *d)
{
	return d->total && d->have == d->total;
}

static void
start_get(artifacts_t *af, dl_t *d)
{
	char a[32];

	/* Bytes go after what the partial file holds (and hashed): a
	 * resumed transfer continues there, a fresh one starts at 0. */
	if (ftruncate(d->fd, (off_t)d->have) < 0 ||
	    lseek(d->fd, (off_t)d->have, SEEK_SET) < 0) {
		set_reason(d, 0, "partial file of sha256:%.12s: %s", d->sha,
		    strerror(errno));
		attempt_failed(af, d);
		return;
	}
	d->flushed = d->have;
	if (complete(d)) {
		verify(af, d);
		return;
	}
	if (is_file(d)) {
		char why[REASON_MAX];
		char *path = local_path(af, d, why, sizeof why);
		struct stat sb;

		d->src =
		    path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		if (d->src < 0 || fstat(d->src, &sb) < 0 ||
		    !S_ISREG(sb.st_mode)) {
			if (path)
				snprintf(why, sizeof why, "cannot read %s: %s",
				    path,
				    d->src < 0 ? strerror(errno)
				               : "not a regular file");
			set_reason(d, 1, "%s", why);
			free(path);
			attempt_failed(af, d);
			return;
		}
		free(path);
		d->st = D_COPY;
		d->started_mono = d->last_byte_mono = mono_ms();
		work_kick(af);
	} else {
		d->easy = new_easy(af, d);
		curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, d);
		if (d->have)
			curl_easy_setopt(d->easy, CURLOPT_RESUME_FROM_LARGE,
			    (curl_off_t)d->have);
		d->st = D_GET;
	}
	/* Progress events count from where this transfer starts. */
	d->quarter = d->total ? (unsigned)(d->have * 4 / d->total) : 0;
	format_bytes(d->total, a, sizeof a);
	if (d->have)
		emit(af, d, "artifact.resumed",
		    "sha256:%.12s from %s: resuming at byte %llu of %s", d->sha,
		    d->url, (unsigned long long)d->have,
		    d->total ? a : "an unknown size");
	else if (d->attempt == 0)
		emit(af, d, "artifact.downloading", "sha256:%.12s from %s: %s",
		    d->sha, d->url, d->total ? a : "size unknown");
	if (d->easy)
		curl_multi_add_handle(af->multi, d->easy);
}

/* Opens the partial file; what it holds is hashed before the transfer
 * resumes after it. */
static int
open_partial(artifacts_t *af, dl_t *d)
{
	char path[PATH_MAX];
	struct stat sb;

	partial_path(af, d->sha, path, sizeof path);
	d->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->fd < 0 || fstat(d->fd, &sb) < 0) {
		set_reason(d, 0, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (d->total && (uint64_t)sb.st_size > d->total) {
		d->have = d->hashed = 0;
		if (ftruncate(d->fd, 0) < 0) {
			set_reason(d, 0, "%s: %s", path, strerror(errno));
			return -1;
		}
		sb.st_size = 0;
	}
	if ((uint64_t)sb.st_size == d->have && d->hashed == d->have && d->have)
		return 0; /* hashed already, in this process */
	EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
	d->have = d->hashed = 0;
	if (sb.st_size > 0)
		d->have = (uint64_t)sb.st_size; /* to hash first */
	return 0;
}

/* QUEUED or WAIT -> a transfer (or FAILED). */
static void
begin(artifacts_t *af, dl_t *d)
{
	if (!d->head_done && !d->size && is_http(d)) {
		start_head(af, d);
		return;
	}
	if (!d->head_done && !d->size && is_file(d)) {
		/* What HEAD is to http: the size, for the checks. */
		char why[REASON_MAX];
		char *path = local_path(af, d, why, sizeof why);
		struct stat sb;

		if (!path) {
			set_reason(d, 1, "%s", why);
			fail(af, d);
			return;
		}
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			d->total = (uint64_t)sb.st_size;
		free(path);
		d->head_done = 1;
	}
	if (reserve(af, d) < 0) {
		fail(af, d);
		return;
	}
	if (d->fd < 0 && open_partial(af, d) < 0) {
		attempt_failed(af, d);
		return;
	}
	if (d->hashed < d->have) {
		d->st = D_HASHING;
		work_kick(af);
		return;
	}
	start_get(af, d);
}

static unsigned char chunk[CHUNK];

/* One chunk of a partial file left by an earlier run into the digest;
 * all of it hashed: the transfer resumes after it. */
static void
hash_step(artifacts_t *af, dl_t *d)
{
	uint64_t want = d->have - d->hashed;
	ssize_t r = pread(d->fd, chunk, want < CHUNK ? (size_t)want : CHUNK,
	    (off_t)d->hashed);

	if (r < 0 && errno == EINTR)
		return;
	if (r <= 0) {
		/* Shorter than it was: keep what was read. */
		d->have = d->hashed;
		if (ftruncate(d->fd, (off_t)d->have) < 0)
			remove_partial(af, d);
	} else {
		EVP_DigestUpdate(d->md, chunk, (size_t)r);
		d->hashed += (uint64_t)r;
	}
	if (d->hashed >= d->have) {
		d->hashed = d->have;
		start_get(af, d);
	}
}

/* One chunk of a file:// artifact; at its end, the verification. */
static void
copy_step(artifacts_t *af, dl_t *d)
{
	ssize_t r = pread(d->src, chunk, CHUNK, (off_t)d->have);

	if (r < 0 && errno == EINTR)
		return;
	if (r < 0) {
		set_reason(d, 0, "cannot read %s: %s", d->url, strerror(errno));
		attempt_failed(af, d);
	} else if (r == 0) {
		verify(af, d);
	} else if (take(d, (const char *)chunk, (size_t)r) < 0) {
		if (d->permanent)
			remove_partial(af, d);
		attempt_failed(af, d);
	}
}

/* Local work in slices: a few ms of hashing and copying, then the loop
 * serves everything else for a ms. */
static int
on_work(zloop_t *loop, int timer_id, void *arg)
{
	artifacts_t *af = arg;
	uint64_t until = mono_ms() + WORK_SLICE_MS;
	int busy = 1;

	af->work = -1; /* one-shot: gone now */
	while (busy && mono_ms() < until) {
		busy = 0;
		/* Backwards: a verified entry is dropped. */
		for (size_t i = af->n; i-- > 0;) {
			dl_t *d = af->v[i];

			if (d->st == D_HASHING) {
				hash_step(af, d);
				busy = 1;
			} else if (d->st == D_COPY) {
				copy_step(af, d);
				busy = 1;
			}
		}
	}
	/* A one-shot timer a slice: a repeating one would have to end
	 * itself, which zloop does not allow from its own handler once
	 * the loop has been stopped and started again. */
	if (busy)
		work_kick(af);
	if (af->hooks.progress)
		af->hooks.progress(af->hooks.arg);
	return 0;
}

static void
work_kick(artifacts_t *af)
{
	if (af->work < 0)
		af->work = zloop_timer(af->loop, 1, 1, on_work, af);
}

static void
drop_dl(artifacts_t *af, dl_t *d)
{
	for (size_t i = 0; i < af->n; i++) {
		if (af->v[i] != d)
			continue;
		if (d->sync_running)
			pthread_join(d->syncer, NULL);
		d->sync_running = 0;
		end_transfer(af, d);
		EVP_MD_CTX_free(d->md);
		free(d->url);
		free(d);
		memmove(&af->v[i], &af->v[i + 1],
		    (af->n - i - 1) * sizeof *af->v);
		af->n--;
		return;
	}
}

/* On its own thread: the verified file to the disk, then into the cache
 * by rename, and the directory entry to the disk. */
static void *
run_sync(void *arg)
{
	dl_t *d = arg;
	artifacts_t *af = d->af;
	char from[PATH_MAX], to[PATH_MAX];
	uint64_t one = 1;
	int dfd;

	d->sync_err = 0;
	partial_path(af, d->sha, from, sizeof from);
	artifacts_path(af, d->sha, to, sizeof to);
	if (fsync(d->fd) < 0) {
		d->sync_err = errno;
		d->sync_what = "sync the file";
	} else if (fchmod(d->fd, 0444) < 0) {
		d->sync_err = errno;
		d->sync_what = "make it read-only";
	} else if (rename(from, to) < 0) {
		d->sync_err = errno;
		d->sync_what = "move it into the cache";
	} else if ((dfd = open(af->cache_dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	__atomic_store_n(&d->synced, 1, __ATOMIC_RELEASE);
	if (write(af->efd, &one, sizeof one) < 0) {
		/* The counter is full: the loop wakes anyway. */
	}
	return NULL;
}

/* Every byte is in: into the cache when size and digest match. */
static void
verify(artifacts_t *af, dl_t *d)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[SHA_HEX + 1];

	EVP_DigestFinal_ex(d->md, md, &mdlen);
	for (unsigned i = 0; i < mdlen && i * 2 < SHA_HEX; i++)
		snprintf(hex + i * 2, 3, "%02x", md[i]);
	hex[SHA_HEX] = '\0';
	if (d->size && d->have != d->size) {
		set_reason(d, 1, "got %llu bytes, the spec says %llu",
		    (unsigned long long)d->have, (unsigned long long)d->size);
	} else if (strcmp(hex, d->sha) != 0) {
		set_reason(d, 1,
		    "checksum mismatch: expected sha256 %s, got %s (%llu "
		    "bytes)",
		    d->sha, hex, (unsigned long long)d->have);
	} else {
		/* Right: to the disk and into the cache, on a thread of its
		 * own (an fsync of gigabytes takes seconds). */
		if (d->src >= 0) {
			close(d->src);
			d->src = -1;
		}
		if (d->easy) {
			curl_multi_remove_handle(af->multi, d->easy);
			curl_easy_cleanup(d->easy);
			d->easy = NULL;
		}
		d->st = D_SYNC;
		__atomic_store_n(&d->synced, 0, __ATOMIC_RELEASE);
		if (pthread_create(&d->syncer, NULL, run_sync, d) != 0)
			abort();
		d->sync_running = 1;
		return;
	}
	/* Nothing of a wrong file is kept: the next try starts afresh. */
	end_transfer(af, d);
	remove_partial(af, d);
	if (d->permanent)
		fail(af, d);
	else
		attempt_failed(af, d);
}

/* A sync thread finished: the artifact is in the cache, or why not. */
static int
on_synced(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	artifacts_t *af = arg;
	uint64_t count;
	char a[32];

	if (read(af->efd, &count, sizeof count) < 0 && errno != EAGAIN)
		log_warning("artifact cache: eventfd: %s", strerror(errno));
	for (size_t i = af->n; i-- > 0;) {
		dl_t *d = af->v[i];

		if (d->st != D_SYNC ||
		    !__atomic_load_n(&d->synced, __ATOMIC_ACQUIRE))
			continue;
		pthread_join(d->syncer, NULL);
		d->sync_running = 0;
		if (d->sync_err) {
			set_reason(d, 0, "cannot %s: %s", d->sync_what,
			    strerror(d->sync_err));
			end_transfer(af, d);
			remove_partial(af, d);
			attempt_failed(af, d);
			continue;
		}
		format_bytes(d->have, a, sizeof a);
		emit(af, d, "artifact.verified",
		    "sha256:%.12s from %s: %s verified in %llums", d->sha,
		    d->url, a,
		    (unsigned long long)(mono_ms() - d->started_mono));
		log_info("artifact sha256:%.12s: %s from %s verified", d->sha,
		    a, d->url);
		drop_dl(af, d);
	}
	if (af->hooks.progress)
		af->hooks.progress(af->hooks.arg);
	return 0;
}

static int
transient(CURLcode cc, long code)
{
	switch (cc) {
	case CURLE_HTTP_RETURNED_ERROR:
		return code >= 500 || code == 408 || code == 429;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static void
transfer_done(artifacts_t *af, dl_t *d, CURLcode cc)
{
	long code = 0;
	curl_off_t len = -1;

	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
	if (d->st == D_HEAD) {
		/* No size from HEAD (or no HEAD at all): the download goes
		 * on without the check up front, within the budget. */
		if (cc == CURLE_OK &&
		    curl_easy_getinfo(d->easy,
		        CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
		    len > 0)
			d->total = (uint64_t)len;
		end_transfer(af, d);
		d->head_done = 1;
		/* A server that does not answer HEAD may still serve the
		 * GET, which decides. */
		if (cc != CURLE_OK)
			log_debug("artifact sha256:%.12s: HEAD %s: %s", d->sha,
			    d->url,
			    d->curl_err[0] ? d->curl_err
			                   : curl_easy_strerror(cc));
		begin(af, d);
		return;
	}
	if (cc == CURLE_OK) {
		verify(af, d);
		return;
	}
	if (cc == CURLE_WRITE_ERROR && d->reason[0]) {
		/* on_data() said why. */
	} else if (cc == CURLE_RANGE_ERROR || cc == CURLE_BAD_DOWNLOAD_RESUME ||
	    (cc == CURLE_HTTP_RETURNED_ERROR && code == 416)) {
		/* The server cannot continue where the partial file ends:
		 * from the start, next attempt. */
		set_reason(d, 0, "cannot resume at byte %llu: %s",
		    (unsigned long long)d->have,
		    d->curl_err[0] ? d->curl_err : curl_easy_strerror(cc));
		end_transfer(af, d);
		remove_partial(af, d);
	} else if (cc == CURLE_HTTP_RETURNED_ERROR) {
		set_reason(d, !transient(cc, code), "HTTP %ld", code);
	} else {
		set_reason(d, !transient(cc, code), "%s",
		    d->curl_err[0] ? d->curl_err : curl_easy_strerror(cc));
	}
	if (d->permanent && cc == CURLE_WRITE_ERROR)
		remove_partial(af, d);
	attempt_failed(af, d);
}

static void
check_done(artifacts_t *af)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(af->multi, &left))) {
		dl_t *d = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &d);
		if (d && d->easy == m->easy_handle)
			transfer_done(af, d, m->data.result);
	}
	if (af->hooks.progress)
		af->hooks.progress(af->hooks.arg);
}

static unsigned
transfers(const artifacts_t *af)
{
	unsigned n = 0;

	for (size_t i = 0; i < af->n; i++)
		n += af->v[i]->st == D_HEAD || af->v[i]->st == D_GET ||
		    af->v[i]->st == D_HASHING || af->v[i]->st == D_COPY ||
		    af->v[i]->st == D_SYNC;
	return n;
}

/* Progress events, a quarter at a time, and the stall watch. */
static void
watch_transfer(artifacts_t *af, dl_t *d, uint64_t now)
{
	if ((d->st == D_GET || d->st == D_COPY) && d->total) {
		unsigned q = (unsigned)(d->have * 4 / d->total);
		char a[32], b[32];

		if (q > d->quarter && q < 4) {
			d->quarter = q;
			format_bytes(d->have, a, sizeof a);
			format_bytes(d->total, b, sizeof b);
			emit(af, d, "artifact.progress",
			    "sha256:%.12s: %s of %s (%u%%)", d->sha, a, b,
			    q * 25);
		}
	}
	if ((d->st == D_GET || d->st == D_HEAD || d->st == D_COPY) &&
	    now - d->last_byte_mono >= af->stall_ms) {
		set_reason(d, 0, "stalled: no data for %llums from %s",
		    (unsigned long long)af->stall_ms, d->url);
		emit(af, d, "artifact.stalled", "sha256:%.12s: %s at byte %llu",
		    d->sha, d->reason, (unsigned long long)d->have);
		if (d->st == D_HEAD)
			d->head_done = 1; /* then try without the size */
		attempt_failed(af, d);
	}
}

static int
on_pump(zloop_t *loop, int timer_id, void *arg)
{
	artifacts_t *af = arg;
	uint64_t now = mono_ms();

	/* Indexes: begin() and the watch may drop an entry (verified). */
	for (size_t i = af->n; i-- > 0;) {
		dl_t *d = af->v[i];

		watch_transfer(af, d, now);
	}
	for (size_t i = 0; i < af->n && transfers(af) < af->downloads_max;
	     i++) {
		dl_t *d = af->v[i];

		if (d->st == D_QUEUED ||
		    (d->st == D_WAIT && now >= d->retry_mono))
			begin(af, d);
	}
	return 0;
}

/* -- interface --------------------------------------------------------- */

static int
mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Partial files nobody came back for in a day. */
static void
sweep_partials(const artifacts_t *af)
{
	DIR *dir = opendir(af->partial_dir);
	struct dirent *de;
	time_t now = time(NULL);

	while (dir && (de = readdir(dir))) {
		struct stat sb;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(dir), de->d_name, &sb, 0) < 0)
			continue;
		if (!is_hex_name(de->d_name) ||
		    now - sb.st_mtime > PARTIAL_MAX_AGE_S)
			unlinkat(dirfd(dir), de->d_name, 0);
	}
	if (dir)
		closedir(dir);
}

int
artifacts_new(zloop_t *loop, const artifacts_config_t *cfg,
    const artifacts_hooks_t *hooks, artifacts_t **ret, char *err, size_t errlen)
{
	artifacts_t *af = xcalloc(1, sizeof *af);
	int r;

	af->loop = loop;
	af->timer = af->work = af->efd = -1;
	af->dir = xstrdup(cfg->dir);
	af->cache_dir = xasprintf("%s/sha256", cfg->dir);
	af->partial_dir = xasprintf("%s/partial", cfg->dir);
	af->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	if (cfg->file_root && cfg->file_root[0]) {
		af->file_root = realpath(cfg->file_root, NULL);
		if (!af->file_root) {
			r = -errno;
			snprintf(err, errlen, "artifact_file_root %s: %s",
			    cfg->file_root, strerror(errno));
			artifacts_destroy(&af);
			return r;
		}
	}
	af->budget = cfg->budget_bytes;
	af->downloads_max = cfg->downloads_max ? cfg->downloads_max
	                                       : ARTIFACTS_DOWNLOADS_DEFAULT;
	af->attempts = cfg->attempts ? cfg->attempts : 1;
	af->stall_ms =
	    cfg->stall_ms ? cfg->stall_ms : ARTIFACTS_STALL_DEFAULT_MS;
	if (hooks)
		af->hooks = *hooks;
	if ((r = mkdir_p(af->cache_dir)) < 0 ||
	    (r = mkdir_p(af->partial_dir)) < 0) {
		snprintf(err, errlen, "artifact cache %s: %s", af->dir,
		    strerror(-r));
		artifacts_destroy(&af);
		return r;
	}
	sweep_partials(af);
	af->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (af->efd < 0) {
		r = -errno;
		snprintf(err, errlen, "artifact cache: eventfd: %s",
		    strerror(errno));
		artifacts_destroy(&af);
		return r;
	}
	{
		zmq_pollitem_t item = { .fd = af->efd, .events = ZMQ_POLLIN };

		zloop_poller(loop, &item, on_synced, af);
	}
	af->multi = curl_multi_init();
	if (!af->multi)
		abort();
	curl_multi_setopt(af->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(af->multi, CURLMOPT_SOCKETDATA, af);
	curl_multi_setopt(af->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
	curl_multi_setopt(af->multi, CURLMOPT_TIMERDATA, af);
	af->pump = zloop_timer(loop, PUMP_MS, 0, on_pump, af);
	*ret = af;
	return 0;
}

void
artifacts_destroy(artifacts_t **afp)
{
	artifacts_t *af = *afp;

	if (!af)
		return;
	while (af->n)
		drop_dl(af, af->v[af->n - 1]);
	if (af->multi)
		curl_multi_cleanup(af->multi);
	if (af->timer >= 0)
		zloop_timer_end(af->loop, af->timer);
	if (af->pump)
		zloop_timer_end(af->loop, af->pump);
	if (af->work >= 0)
		zloop_timer_end(af->loop, af->work);
	if (af->efd >= 0) {
		zmq_pollitem_t item = { .fd = af->efd };

		zloop_poller_end(af->loop, &item);
		close(af->efd);
	}
	for (size_t i = 0; i < af->npins; i++)
		free(af->pins[i]);
	free(af->pins);
	free(af->v);
	free(af->dir);
	free(af->cache_dir);
	free(af->partial_dir);
	free(af->ca_file);
	free(af->file_root);
	free(af);
	*afp = NULL;
}

void
artifacts_want(artifacts_t *af, const Shoal__Artifact *a, const char *service,
    int retry, artifact_status_t *st)
{
	char path[PATH_MAX];
	struct stat sb;
	dl_t *d;

	memset(st, 0, sizeof *st);
	d = find_dl(af, a->sha256);
	if (d && d->st == D_SYNC) {
		/* Renamed into the cache by its thread perhaps, but not ready
		 * before the loop has seen it verified: the event comes first,
		 * then the answer. */
		st->state = ARTIFACT_BUSY;
		st->done = d->have;
		st->total = d->total;
		return;
	}
	artifacts_path(af, a->sha256, path, sizeof path);
	if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		/* Not ours (a runtime made a directory of a missing bind
		 * source): it would block the move into the cache. */
		if (rmdir(path) < 0)
			unlink(path);
	}
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* Wanted now: the last to be evicted. */
		utimensat(AT_FDCWD, path, NULL, 0);
		st->state = ARTIFACT_READY;
		st->done = st->total = (uint64_t)sb.st_size;
		return;
	}
	d = find_dl(af, a->sha256);
	if (!d) {
		d = xcalloc(1, sizeof *d);
		d->af = af;
		snprintf(d->sha, sizeof d->sha, "%s", a->sha256);
		d->url = xstrdup(a->url);
		snprintf(d->service, sizeof d->service, "%s", service);
		d->size = d->total = a->size;
		d->fd = d->src = -1;
		d->md = EVP_MD_CTX_new();
		if (!d->md)
			abort();
		EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
		af->v = xrealloc(af->v, (af->n + 1) * sizeof *af->v);
		af->v[af->n++] = d;
	} else if (d->st == D_FAILED && retry) {
		d->st = D_QUEUED;
		d->attempt = 0;
		d->quarter = 0;
		d->head_done = 0;
		d->reason[0] = '\0';
		d->permanent = 0;
		free(d->url);
		d->url = xstrdup(a->url);
		d->size = d->total = a->size;
	}
	st->done = d->have;
	st->total = d->total;
	if (d->st == D_FAILED) {
		st->state = ARTIFACT_FAILED;
		snprintf(af->reason, sizeof af->reason, "%s", d->reason);
		st->reason = af->reason;
	} else {
		st->state = ARTIFACT_BUSY;
	}
}

void
artifacts_pin(artifacts_t *af, const char *const *sha, size_t n)
{
	for (size_t i = 0; i < af->npins; i++)
		free(af->pins[i]);
	af->pins = xrealloc(af->pins, (n ? n : 1) * sizeof *af->pins);
	for (size_t i = 0; i < n; i++)
		af->pins[i] = xstrdup(sha[i]);
	af->npins = n;
}

uint64_t
artifacts_downloaded(const artifacts_t *af)
{
	return af->downloaded;
}

void
artifacts_usage(const artifacts_t *af, artifacts_usage_t *u)
{
	entry_t *v;
	size_t n;

	u->bytes = scan_cache(af, &v, &n);
	u->files = n;
	u->budget = af->budget;
	u->downloaded = af->downloaded;
	free(v);
}
