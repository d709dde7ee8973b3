/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's artifact cache: model weights named by the service specs,
 * downloaded with libcurl's multi interface on the agent's event loop and
 * stored once per node, by content, at <dir>/sha256/<hex>.
 *
 * A download
 *   - checks the size up front (the spec's, else a HEAD request) against
 *     the cache budget and the file system's free space, evicting the least
 *     recently used artifacts that are not pinned, and refuses with a clear
 *     error when it still does not fit;
 *   - writes to <dir>/partial/<hex>, hashing while it streams (SHA-256,
 *     OpenSSL EVP), and resumes an interrupted transfer with a range
 *     request; a server that ignores the range is read again from the
 *     start;
 *   - fails an attempt that gets no byte for stall_ms, and retries
 *     transient failures (connection, stall, HTTP 5xx) with exponential
 *     backoff, attempts times in all;
 *   - enters the cache only once its size and digest match: a mismatch
 *     deletes what was downloaded.
 * Identical artifacts (one sha256, any service) share one download.
 *
 * State machine of a download:
 *
 *   QUEUED  --a download slot free, size unknown--------> HEAD
 *   QUEUED  --a download slot free, size known----------> (reserve) GET
 *   HEAD    --answered (size or not)--------------------> (reserve) GET
 *   (reserve) --does not fit budget or disk------------> FAILED
 *   (reserve) --a partial file left------------------> HASHING --> GET
 *   GET     --all bytes, digest matches-----------------> in the cache
 *   GET     --digest or size mismatch, 4xx, TLS---------> FAILED
 *   GET     --transient error or stall, attempts left---> WAIT --> QUEUED
 *   FAILED  --asked for again with retry----------------> QUEUED
 */
#ifndef SHOAL_AGENT_ARTIFACTS_H
#define SHOAL_AGENT_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "shoal.pb-c.h"

#define ARTIFACTS_DOWNLOADS_DEFAULT 2
#define ARTIFACTS_DOWNLOADS_MAX 16
#define ARTIFACTS_STALL_DEFAULT_MS 30000
#define ARTIFACTS_ATTEMPTS_DEFAULT 5

typedef struct artifacts_config {
	const char *dir;        /* the cache root: <state>/artifacts */
	uint64_t budget_bytes;  /* 0: only the file system's free space */
	unsigned downloads_max; /* at once */
	uint64_t stall_ms;      /* no byte for this long fails an attempt */
	unsigned attempts;      /* per download, resumes included */
	const char *ca_file;    /* https: trust these CAs; NULL: the system's */
	const char *file_root;  /* file:// may read below it; NULL: refused */
} artifacts_config_t;

typedef struct artifacts_hooks {
	/* Worth an event (kind: artifact.*); service: who asked first. */
	void (*event)(const char *kind, const char *service,
	    const char *message, void *arg);
	/* Bytes arrived: progress worth reporting. */
	void (*progress)(void *arg);
	/* About to evict: call artifacts_pin() with what must stay. */
	void (*pins)(void *arg);
	void *arg;
} artifacts_hooks_t;

typedef enum artifact_state {
	ARTIFACT_READY,  /* in the cache, verified */
	ARTIFACT_BUSY,   /* queued or downloading */
	ARTIFACT_FAILED, /* see reason */
} artifact_state_t;

typedef struct artifact_status {
	artifact_state_t state;
	uint64_t done, total; /* bytes; total 0: not known yet */
	const char *reason;   /* FAILED: why; borrowed until the next call */
} artifact_status_t;

typedef struct artifacts artifacts_t;

/* Creates the cache directories under cfg->dir (strings are copied). */
int artifacts_new(zloop_t *loop, const artifacts_config_t *cfg,
    const artifacts_hooks_t *hooks, artifacts_t **ret, char *err,
    size_t errlen);
/* Ends every transfer (partial files stay, to resume). */
void artifacts_destroy(artifacts_t **af);

/*
 * Asks for artifact a on behalf of service: READY when it is in the cache
 * (it then counts as just used), else the download's progress, started
 * here when none runs. retry: a download that failed starts again.
 */
void artifacts_want(artifacts_t *af, const Shoal__Artifact *a,
    const char *service, int retry, artifact_status_t *st);

/* Where the cached artifact with this digest lies. */
void artifacts_path(const artifacts_t *af, const char *sha256, char *buf,
    size_t size);

/* The artifacts never evicted (digests, copied): those of the revisions a
 * node runs, keeps for rollback, or prepares. Replaces the previous set. */
void artifacts_pin(artifacts_t *af, const char *const *sha256, size_t n);

/* Bytes received from servers since the agent started. */
uint64_t artifacts_downloaded(const artifacts_t *af);

typedef struct artifacts_usage {
	uint64_t bytes, files; /* in the cache now (a directory scan) */
	uint64_t budget;       /* 0: none */
	uint64_t downloaded;   /* artifacts_downloaded() */
} artifacts_usage_t;
void artifacts_usage(const artifacts_t *af, artifacts_usage_t *u);

#endif
