/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Services on the coordinator: specs and their revisions, the desired state
 * of every node (which revision of which service it must run) and the
 * status agents report back. All of it lives in the coordinator's LMDB next
 * to the registry and survives a restart.
 *
 * A node's desired state is recomputed whenever a service or the node's
 * labels change; when it differs from what the node has, the node's
 * generation moves on and the caller rings its doorbell (ring_fn).
 */
#ifndef SHOAL_COORD_SERVICES_H
#define SHOAL_COORD_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "common/prom.h"
#include "common/store.h"
#include "coordinator/registry.h"
#include "shoal.pb-c.h"

/* Revisions kept per service (the architecture page's default). */
#define SERVICES_HISTORY 10
/* Services the coordinator accepts. */
#define SERVICES_MAX 1000

typedef struct services services_t;

/* Called for each node whose generation moved. */
typedef void (
    *services_ring_fn)(const char *node_id, uint64_t generation, void *arg);

/* Loads services, desired states and statuses; moves any node generation
 * that lags its stored desired state (a crash between the two writes). */
int services_open(store_t *store, registry_t *reg, services_t **ret);
void services_close(services_t **s);

/* What apply and rollback did. */
typedef struct services_result {
	uint64_t revision; /* the revision the service moves to or runs */
	int changed;       /* a new revision, or a rollback started */
	uint32_t selected; /* nodes the selector picks now */
	/* the rollout started (borrowed until the next services_* call);
	 * NULL: nothing to roll (no node ran another revision) */
	const Shoal__Rollout *rollout;
} services_result_t;

/*
 * Applies a validated spec: a new revision when it differs from the one
 * the service moves to (res->changed), else nothing. Nodes that run an
 * older revision move under a new rollout (a running one is superseded);
 * nodes new to the service get it at once. by: who asked, for the audit
 * log. Every write commits in one transaction, so a failure changes
 * nothing.
 */
int services_apply(services_t *s, const Shoal__ServiceSpec *spec,
    const char *message, const char *by, services_ring_fn ring, void *arg,
    services_result_t *res);

/* A rollout to an older revision (to = 0: the one before the current).
 * SHOAL_E_NOT_FOUND / SHOAL_E_INVALID with err saying why. */
int services_rollback(services_t *s, const char *name, uint64_t to,
    const char *message, const char *by, services_ring_fn ring, void *arg,
    services_result_t *res, char *err, size_t errlen);

/* promote, pause, resume, abort the service's rollout; *ret: the rollout
 * afterwards (borrowed). SHOAL_E_INVALID with *why when it cannot. */
int services_rollout_control(services_t *s, const char *name,
    Shoal__RolloutControl__Action action, const char *by, services_ring_fn ring,
    void *arg, const Shoal__Rollout **ret, const char **why);

/* Moves every active rollout on (the coordinator's timer). */
int services_tick(services_t *s, services_ring_fn ring, void *arg);

/* Removes a service and its history; its nodes are told to remove it. */
int services_delete(services_t *s, const char *name, services_ring_fn ring,
    void *arg);

/* The node's labels may have changed (a Hello): recompute its state. */
int services_node_changed(services_t *s, const char *node_id,
    services_ring_fn ring, void *arg);

/* The node's assignments, borrowed until the next services_* call. */
void services_desired(services_t *s, const char *node_id,
    Shoal__ServiceAssignment ***ret, size_t *ret_n);
/* The operations queued for the node with them; borrowed the same way. */
void services_operations(services_t *s, const char *node_id,
    Shoal__Operation ***ret, size_t *ret_n);

/* An agent's status report; replaces the previous one. Its answers to
 * operations finish them (a restore holds the node to the snapshot's
 * revisions), and the node's new desired state rings. */
int services_report(services_t *s, const char *node_id,
    const Shoal__StatusReport *rep, services_ring_fn ring, void *arg);
/*
 * Queues a snapshot on the request's node, or on every node its selector
 * picks (none: every node), delivered with their desired states; an
 * offline node gets it when it returns. rep->operations: those queued.
 * err says why when it fails (SHOAL_E_NOT_FOUND: no such node).
 */
int services_snapshot_create(services_t *s, const Shoal__SnapshotCreate *req,
    services_ring_fn ring, void *arg, Shoal__ControlReply *rep, char *err,
    size_t errlen);
/*
 * Queues the restore of a snapshot the node reported. Refused (err says
 * why) for an unknown or corrupt snapshot, while a rollout moves one of the
 * node's services, or when the snapshot runs a service or revision the
 * coordinator no longer has.
 */
int services_snapshot_restore(services_t *s, const Shoal__SnapshotRestore *req,
    services_ring_fn ring, void *arg, Shoal__ControlReply *rep, char *err,
    size_t errlen);
/* Every node's snapshots (node_id: one node's, and its operations), as
 * the agents last reported them, with those pending or failed. */
int services_snapshots(services_t *s, const char *node_id,
    Shoal__ControlReply *rep);
/* The seq of the last report stored for the node (0: none). */
uint64_t services_status_seq(services_t *s, const char *node_id);

/* Control replies. Arrays and messages are owned by the caller; free them
 * with services_free_reply(). */
int services_list(services_t *s, Shoal__ControlReply *rep);
int services_status(services_t *s, const char *name, Shoal__ControlReply *rep);
int services_history(services_t *s, const char *name, Shoal__ControlReply *rep);
/* The service's newest rollout. */
int services_rollout(services_t *s, const char *name, Shoal__ControlReply *rep);
/* Adds a copy of ro (NULL: nothing) to the reply. */
void services_reply_rollout(Shoal__ControlReply *rep, const Shoal__Rollout *ro);
/* What applying spec would do, changing nothing: the revision it would
 * make, the current one (rep->revisions), the nodes in waves and what each
 * must pull. */
int services_plan(services_t *s, const Shoal__ServiceSpec *spec,
    Shoal__ControlReply *rep);
void services_free_reply(Shoal__ControlReply *rep);

/* The shoal_services and shoal_rollouts families. */
void services_render_metrics(services_t *s, prom_t *p);
/* For the daemon's status line: services defined, rollouts in progress. */
void services_summary(const services_t *s, size_t *services,
    size_t *rollouts_active);

#endif
