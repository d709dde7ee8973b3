/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's host and GPU metrics collector. A timer on the agent's loop
 * samples the kernel's own files (CPU time, memory, load, pressure, disk
 * I/O, network, file systems) into preallocated tables: a sample costs
 * microseconds and allocates nothing. GPUs are sampled by gpu.h's thread.
 * Scrapes render the newest sample under node_exporter's names and labels
 * (so stock dashboards work) and the GPUs under DCGM exporter's; heartbeats
 * carry a compact summary of it.
 */
#ifndef SHOAL_AGENT_METRICS_H
#define SHOAL_AGENT_METRICS_H

#include <czmq.h>

#include "common/prom.h"
#include "shoal.pb-c.h"

#define METRICS_INTERVAL_DEFAULT_MS 5000

typedef struct metrics_config {
	const char *proc_root;    /* "/proc"; tests point it at a fixture */
	const char *nvml_library; /* NULL: GPU_DEFAULT_LIBRARY; "off": none */
	const char *hostname;     /* DCGM's Hostname label */
	uint64_t interval_ms;
} metrics_config_t;

typedef struct metrics metrics_t;

/* Samples once before returning, then every interval_ms on loop. */
int metrics_new(zloop_t *loop, const metrics_config_t *cfg, metrics_t **ret);
void metrics_destroy(metrics_t **m);

/* Takes a sample now (the timer calls this). */
void metrics_sample(metrics_t *m);

/* The node_* and DCGM_* families of the newest sample. */
void metrics_render(metrics_t *m, prom_t *out);

/* The heartbeat's summary. CPU use is measured between the last two
 * samples. */
void metrics_figures(metrics_t *m, Shoal__HostFigures *f);

#endif
