/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client for the Docker Engine API over a unix socket (dockerd, or
 * Podman's compatible service), spoken with libcurl and jansson. Every call
 * blocks: the agent runs them on its worker threads, never on the event
 * loop. A docker_t is read-only after docker_open(), so threads share it;
 * each call uses its own curl handle.
 *
 * Errors: calls return 0 or a negative code (-errno, or SHOAL_E_*) and write
 * a one-line reason to err, taken from the daemon's "message" when it gave
 * one ("pull localhost/x:1: manifest unknown").
 */
#ifndef SHOAL_AGENT_DOCKER_H
#define SHOAL_AGENT_DOCKER_H

#include <stddef.h>
#include <stdint.h>

#define DOCKER_API_FLOOR "1.41"
#define DOCKER_ID_MAX 64 /* hex container id */
#define DOCKER_ARTIFACTS_MAX 16

typedef struct docker docker_t;

/* What to create. Strings are borrowed for the call. */
typedef struct docker_create {
	const char *name;
	const char *image;
	const char *const *cmd;    /* NULL-terminated; NULL: the image's */
	const char *const *env;    /* "NAME=value", NULL-terminated */
	const char *const *labels; /* key, value, key, value, ..., NULL */
	unsigned port;             /* container TCP port published on 127.0.0.1
	                              at a port the runtime picks; 0: none */
	uint64_t memory_bytes;     /* 0: no limit */
	double cpus;               /* 0: no limit */
	unsigned gpus;             /* GPUs: a device request for this many
	                              (dockerd), all as CDI devices (Podman) */
	const char *const *binds;  /* "host:container:ro", NULL-terminated:
	                              bind mounts whose source must exist */
} docker_create_t;

/* What inspect and list report of a container. */
typedef struct docker_container {
	char id[DOCKER_ID_MAX + 1];
	char name[128];
	char image[256];
	char state[16]; /* created, running, exited, ... */
	int exit_code;
	unsigned host_port;  /* the published port of docker_create_t.port */
	char service[64];    /* label shoal.service */
	uint64_t revision;   /* label shoal.revision */
	char node[64];       /* label shoal.node */
	uint64_t started_ms; /* State.StartedAt; 0: never */
	/* list only: the digests of the artifacts it mounts (bind sources
	 * named .../sha256/<64 hex>) */
	char artifacts[DOCKER_ARTIFACTS_MAX][65];
	unsigned n_artifacts;
} docker_container_t;

/*
 * Connects to the API at socket_path and negotiates the version: GET
 * /version, then the highest version both speak, refusing a daemon below
 * DOCKER_API_FLOOR.
 */
int docker_open(const char *socket_path, docker_t **ret, char *err,
    size_t errlen);
void docker_close(docker_t **d);
/* "1.41", ... as negotiated. */
const char *docker_api_version(const docker_t *d);
/* 1 when /version named a Podman engine: GPUs then go as CDI devices,
 * to dockerd as device requests. */
int docker_is_podman(const docker_t *d);

/* 1 when the image is present locally, 0 when not. */
int docker_image_present(docker_t *d, const char *image, char *err,
    size_t errlen);

/* Pull progress: status line, bytes done and total of the current layer
 * (0 when the daemon does not say). */
typedef void (*docker_progress_fn)(const char *status, uint64_t current,
    uint64_t total, void *arg);
/* Pulls a fully qualified image; an error inside the progress stream fails
 * the call with that message. */
int docker_pull(docker_t *d, const char *image, docker_progress_fn fn,
    void *arg, char *err, size_t errlen);

/* Creates a container; its id goes to id (DOCKER_ID_MAX + 1 bytes). */
int docker_create(docker_t *d, const docker_create_t *c, char *id, char *err,
    size_t errlen);
int docker_start(docker_t *d, const char *id, char *err, size_t errlen);
/* Stops with SIGTERM, then SIGKILL after timeout_s. */
int docker_stop(docker_t *d, const char *id, unsigned timeout_s, char *err,
    size_t errlen);
/* Removes (force: even when running). A container already gone is not an
 * error. */
int docker_remove(docker_t *d, const char *id, int force, char *err,
    size_t errlen);
/* SHOAL_E_NOT_FOUND when there is no such container. */
int docker_inspect(docker_t *d, const char *id, docker_container_t *out,
    char *err, size_t errlen);
/* One reading of a running container's resource use (GET
 * /containers/ID/stats, not streamed). */
typedef struct docker_stats {
	uint64_t cpu_ns;       /* CPU time used since it started */
	uint64_t memory_bytes; /* in use, less the inactive page cache */
	uint64_t memory_limit; /* 0: none reported */
} docker_stats_t;
int docker_stats(docker_t *d, const char *id, docker_stats_t *out, char *err,
    size_t errlen);
/* GET /_ping: whether the daemon answers (5 s at most). */
int docker_ping(docker_t *d, char *err, size_t errlen);
/* Every container (running or not) with label key=value; the caller frees
 * *ret with free(). */
int docker_list(docker_t *d, const char *label_key, const char *label_value,
    docker_container_t **ret, size_t *ret_n, char *err, size_t errlen);
/* The last lines of stdout and stderr, demultiplexed; the caller frees. */
int docker_logs_tail(docker_t *d, const char *id, unsigned lines, char **ret,
    char *err, size_t errlen);

#endif
