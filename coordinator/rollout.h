/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rollout engine: one service moving its nodes from one revision to
 * another under an update strategy (rolling, canary, blue-green), as an
 * explicit state machine over a Shoal__Rollout message. The engine only
 * decides: it reads what the nodes report through a callback and changes
 * the message; services.c derives every node's desired state from it and
 * writes both in one LMDB transaction, so a coordinator restarted at any
 * point resumes from what was written.
 *
 * Node states:
 *
 *   PRESTAGING --reports the new revision prepared------> PENDING
 *              (artifacts verified in its cache, image pulled; it still
 *              runs its old revision; no deadline: the agent detects
 *              stalls)
 *   PRESTAGING --reports the preparation failed---------> FAILED
 *   PENDING   --admitted (rolling, canary)--------------> SWITCHING
 *   PENDING   --admitted (blue-green)-------------------> STAGING
 *   STAGING   --reports STAGED--------------------------> STAGED
 *   STAGED    --every node of the wave staged-----------> SWITCHING
 *   STAGED    --reports FAILED or UNHEALTHY-------------> FAILED
 *   SWITCHING --reports HEALTHY-------------------------> SETTLING
 *   SETTLING  --healthy for min_healthy_time------------> DONE
 *   STAGING, SWITCHING, SETTLING
 *             --reports FAILED or UNHEALTHY, or the
 *               progress_deadline passes----------------> FAILED (back on
 *                                                         its old revision)
 *   SWITCHING, SETTLING, DONE
 *             --revert, max_parallel at a time----------> REVERTING
 *   REVERTING --reports HEALTHY on the old revision
 *               (or FAILED: recorded)-------------------> REVERTED
 *
 * Rollout states:
 *
 *   RUNNING   --a node still PRESTAGING-----------------> no node admitted
 *   RUNNING   --every node of the wave DONE or FAILED---> next wave
 *   RUNNING   --no wave left----------------------------> SUCCEEDED
 *   RUNNING   --canary wave done, not promoted----------> WAITING_PROMOTE
 *                                   (auto_promote: promoted at once;
 *                                   no canary done: stopped as below)
 *   RUNNING, WAITING_PROMOTE
 *             --failures above max_failures-------------> REVERTING
 *                                   (auto_revert false: FAILED)
 *             --promote-------------------------------> RUNNING, promoted
 *             --pause / resume------------------------> no node admitted
 *                                   while paused; those started go on
 *             --abort---------------------------------> REVERTING, then
 *                                   ABORTED
 *   REVERTING --no switched node left-------------------> REVERTED (ABORTED)
 *   any active --a newer rollout of the service---------> SUPERSEDED
 */
#ifndef SHOAL_COORD_ROLLOUT_H
#define SHOAL_COORD_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "shoal.pb-c.h"

/* What a node reports about the service now. */
typedef struct rollout_obs {
	int selected; /* the service's selector still picks the node */
	int fresh;    /* a status report for the step's generation or later */
	uint64_t revision;
	Shoal__ServiceStatus__State state;
	const char *reason;
	/* its preparation ahead of the rollout (prestage_revision 0: none) */
	uint64_t prestage_revision;
	Shoal__Prestage__State prestage_state;
	const char *prestage_reason;
	uint64_t bytes_done, bytes_total;
} rollout_obs_t;

typedef struct rollout_hooks {
	void (*observe)(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
	    rollout_obs_t *obs, void *arg);
	/* A change worth an event: n is NULL for the rollout itself. */
	void (*note)(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
	    const char *kind, const char *message, void *arg);
	void *arg;
} rollout_hooks_t;

/* A node taking part, in wave order. */
typedef struct rollout_member {
	const char *node;
	uint64_t from_revision;
} rollout_member_t;

/*
 * A new rollout of service from revision from to revision to under u for
 * the members (in the order they are to go); owned by the caller, free with
 * shoal__rollout__free_unpacked().
 */
Shoal__Rollout *rollout_new(const char *service, uint64_t id, uint64_t from,
    uint64_t to, const Shoal__UpdateStrategy *u, const rollout_member_t *m,
    size_t n, uint64_t now_ms);

/* Nodes that may be between revisions at once, and the canary count, for
 * n nodes under u (percentages rounded up, at least one). */
uint32_t rollout_parallel(const Shoal__UpdateStrategy *u, size_t n);
uint32_t rollout_canaries(const Shoal__UpdateStrategy *u, size_t n);

/*
 * Moves the rollout on as far as what the nodes report allows. Returns 1
 * when anything changed (write it), else 0. A node whose assignment
 * changed has its generation set to 0: the caller stamps it with the
 * generation its new desired state gets.
 */
int rollout_step(Shoal__Rollout *ro, uint64_t now_ms,
    const rollout_hooks_t *hooks);

/* An operator's request; SHOAL_E_INVALID with why when the state has no
 * such move (why names the state). */
int rollout_control(Shoal__Rollout *ro, Shoal__RolloutControl__Action action,
    uint64_t now_ms, const rollout_hooks_t *hooks, const char **why);

/* A newer rollout takes over: ends this one; its staged nodes go back to
 * their old revision, the others stay where they are. */
void rollout_supersede(Shoal__Rollout *ro, uint64_t now_ms);

/* Read back after a coordinator restart: the time it was down counts
 * neither as no progress nor as healthy time. */
void rollout_restarted(Shoal__Rollout *ro, uint64_t now_ms);

/* Still moving (RUNNING, WAITING_PROMOTE, REVERTING). */
int rollout_active(const Shoal__Rollout *ro);

/* What node n must run: its revision and whether it serves it. */
void rollout_assignment(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    uint64_t *ret_revision, int *ret_active);

/* The revision node n must prepare ahead (artifacts and image, no
 * container), or 0: until it switches, a moving rollout's nodes keep the
 * new revision prepared. */
uint64_t rollout_prestage(const Shoal__Rollout *ro,
    const Shoal__RolloutNode *n);

/* Still waiting for a node to prepare: no node switches yet. */
int rollout_prestaging(const Shoal__Rollout *ro);

/* The revision nodes not in the rollout get once it ended this way. */
uint64_t rollout_settled_revision(const Shoal__Rollout *ro);

Shoal__RolloutNode *rollout_find_node(const Shoal__Rollout *ro,
    const char *node);

#endif
