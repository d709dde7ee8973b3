/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's service runner: makes the containers on this node match the
 * desired state, following the node-level steps of the architecture page
 * (prepare, start, probe health, switch, keep the previous one), and keeps
 * them healthy afterwards (crashed or unhealthy containers are restarted
 * with backoff). It adopts the containers it owns at start-up, by label,
 * without restarting healthy ones.
 *
 * Every runtime call and probe runs on a worker thread (jobs.h); the runner
 * itself lives on the agent's event loop and keeps at most one job in
 * flight per service.
 */
#ifndef SHOAL_AGENT_RUNNER_H
#define SHOAL_AGENT_RUNNER_H

#include <czmq.h>

#include "agent/artifacts.h"
#include "common/prom.h"
#include "shoal.pb-c.h"

typedef struct runner runner_t;

typedef struct runner_hooks {
	/* Something worth an event in the outbox (kind: dotted name). */
	void (*event)(const char *kind, const char *service,
	    const char *message, void *arg);
	/* The status report changed: send it. */
	void (*status_changed)(void *arg);
	void *arg;
} runner_hooks_t;

/*
 * node_id: the labels this agent's containers carry (several agents may
 * share one runtime); socket: the runtime's API socket; artifacts: the
 * cache the services' artifacts come from (borrowed, outlives the runner).
 */
int runner_new(zloop_t *loop, const char *node_id, const char *socket,
    artifacts_t *artifacts, const runner_hooks_t *hooks, runner_t **ret);

/* Tells the artifact cache what must stay: the artifacts of every revision
 * wanted, running, kept for rollback or prepared ahead. */
void runner_pin_artifacts(runner_t *rn);
/* Artifacts to keep besides those (the snapshots' pins; copied), then
 * runner_pin_artifacts(). */
void runner_set_extra_pins(runner_t *rn, const char *const *sha, size_t n);
/* Stops the workers; containers keep running. */
void runner_destroy(runner_t **rn);

/* The desired state to reach (copied). */
void runner_set_desired(runner_t *rn, const Shoal__DesiredState *ds);

/*
 * Whether a status report would tell the truth: not between reaching the
 * runtime and adopting its containers, when nothing looks like it runs.
 */
int runner_ready(const runner_t *rn);

/*
 * The current status of every service, into rep (seq and generation are
 * the caller's). Borrowed until the next runner call.
 */
void runner_status(runner_t *rn, Shoal__StatusReport *rep);

/* For the daemon's status line: the services wanted here, how many of them
 * are healthy, and whether the container runtime answers. */
void runner_summary(const runner_t *rn, size_t *services, size_t *healthy,
    int *runtime_up);

/* The shoal_service_*, shoal_health_probe_* and shoal_container_*
 * families. */
void runner_render_metrics(runner_t *rn, prom_t *p);

#endif
