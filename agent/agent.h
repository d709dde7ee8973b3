/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent daemon's core: its LMDB store, the session with the
 * coordinator (Hello, heartbeats, reconnects with jittered exponential
 * backoff), the doorbell subscription, desired-state fetch and
 * acknowledgement, and the event outbox. main.c only parses options.
 */
#ifndef SHOAL_AGENT_AGENT_H
#define SHOAL_AGENT_AGENT_H

#include <stdint.h>

#include "common/config.h"
#include "common/lifecycle.h"
#include "common/labels.h"

typedef struct agent_options {
	char *node_id;
	labels_t labels;
	char *coordinator;     /* the coordinator's ROUTER */
	char *doorbell;        /* its PUB; NULL: derived from coordinator */
	char *coordinator_key; /* its public key file (CurveZMQ), pinned */
	char *enroll_token;    /* "": none; else accepts this node's key */
	char *state_dir;
	uint64_t heartbeat_ms;
	char *runtime_socket; /* Docker Engine API (dockerd or Podman) */
	char *log_level;
	/* the artifact cache, <state_dir>/artifacts */
	uint64_t artifact_budget; /* bytes; 0: the disk's free space only */
	uint64_t artifact_downloads;
	uint64_t artifact_stall_ms;
	uint64_t artifact_attempts;
	char *artifact_ca_file;   /* NULL: the system's CA store */
	char *artifact_file_root; /* file:// reads below it; NULL: refused */
	/* metrics */
	char *metrics_listen; /* HOST:PORT of /metrics, or "off" */
	uint64_t metrics_interval_ms;
	char *nvml_library; /* dlopen()ed for the GPUs; "off": none */
	/* snapshots, <state_dir>/snapshots: retention */
	uint64_t snapshot_keep;
	uint64_t snapshot_keep_days; /* 0: no age limit */
	char *config_file; /* the file the options came from (NULL: none) */
} agent_options_t;

extern const config_field_t agent_config_fields[];

/* Fills in the documented defaults (strings are heap-owned). */
void agent_options_defaults(agent_options_t *o);
void agent_options_free(agent_options_t *o);

/* tcp://HOST:PORT -> tcp://HOST:PORT+1, the default doorbell endpoint.
 * Caller owns the result; NULL when ep is not tcp:// with a port. */
char *agent_default_doorbell(const char *ep);

/* The delay before reconnect attempt number attempt (0 first): from half
 * to all of 500ms x 2^attempt, capped at 30s. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
uint64_t agent_backoff_ms(unsigned attempt);

typedef struct agent agent_t;

/* Opens the store and connects; errors are logged here. */
int agent_new(const agent_options_t *opts, agent_t **ret);
/* Says READY=1 to systemd and runs until SIGINT/SIGTERM; reload (may be
 * NULL) runs on SIGHUP. */
int agent_run(agent_t *a, lifecycle_reload_fn reload, void *arg);
/* After a reload changed the live keys in changed (config_reload()'s
 * mask) in the options agent_new() was given: applies them. */
void agent_reconfigured(agent_t *a, uint64_t changed);
void agent_destroy(agent_t **a);

#endif
