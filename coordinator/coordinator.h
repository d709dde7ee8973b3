/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator daemon's core: binds the agent ROUTER, the doorbell PUB
 * and the control endpoint, and runs one zloop that answers agents and
 * shoalctl and sweeps liveness. main.c only parses options.
 */
#ifndef SHOAL_COORD_COORDINATOR_H
#define SHOAL_COORD_COORDINATOR_H

#include <stdint.h>

#include "common/config.h"
#include "common/lifecycle.h"

typedef struct coord_options {
	char *state_dir;
	char *listen;  /* agents' ROUTER */
	char *publish; /* doorbell PUB */
	char *control; /* shoalctl */
	uint64_t
	    offline_after_ms; /* 0: missed_heartbeats x the node's interval */
	uint64_t missed_heartbeats;
	char *log_level;
	char *metrics_listen; /* HOST:PORT of /metrics, or "off" */
	char *remote_control; /* CurveZMQ control endpoint, or "off" */
	char *enroll_token;   /* "": none; else accepts an agent's key */
	char *operator_keys;  /* allow-list of operators' keys, or "" */
} coord_options_t;

/* The keys of coordinator.yaml. */
extern const config_field_t coord_config_fields[];

/* Fills in the documented defaults (strings are heap-owned). */
void coord_options_defaults(coord_options_t *o);
void coord_options_free(coord_options_t *o);

typedef struct coordinator coordinator_t;

/* Opens the store and binds every endpoint; errors are logged here. */
int coordinator_new(const coord_options_t *opts, coordinator_t **ret);
/* Says READY=1 to systemd and runs until SIGINT/SIGTERM; reload (may be
 * NULL) runs on SIGHUP. */
int coordinator_run(coordinator_t *c, lifecycle_reload_fn reload, void *arg);
/* After a reload changed the live keys in changed (config_reload()'s
 * mask) in the options coordinator_new() was given: applies them. */
void coordinator_reconfigured(coordinator_t *c, uint64_t changed);
void coordinator_destroy(coordinator_t **c);

#endif
