/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's node registry: every node that ever said Hello, its
 * labels, facts, liveness, desired-state generation and the events it sent.
 * Records live in memory for reading and are written through to LMDB, so
 * the registry survives a coordinator restart. Liveness is judged on the
 * monotonic clock: a node goes offline when it has been silent for longer
 * than its allowance (see registry_sweep()).
 */
#ifndef SHOAL_COORD_REGISTRY_H
#define SHOAL_COORD_REGISTRY_H

#include <stdint.h>

#include "common/store.h"
#include "shoal.pb-c.h"

typedef struct registry registry_t;

/* The coordinator's databases, opened together (the registry's and those
 * of services.c); their indexes below. */
extern const char *const registry_dbs[];
extern const unsigned registry_ndbs;
enum {
	DB_NODES,
	DB_EVENTS,
	DB_META,
	DB_SERVICES,  /* name -> ServiceRecord */
	DB_REVISIONS, /* name, NUL, revision (big-endian) -> Revision */
	DB_DESIRED,   /* node id -> DesiredState */
	DB_STATUS,    /* node id -> StatusReport */
	DB_ROLLOUTS,  /* name, NUL, rollout id (big-endian) -> Rollout */
	DB_OPS,       /* node id, NUL, operation id (big-endian) -> Operation */
	DB_HOLDS,     /* node id -> Hold (a restore's) */
	DB_KEYS,      /* node id -> NodeKey (its CurveZMQ key) */
};
#define REGISTRY_SCHEMA 1
/* Hello from a new node beyond this many is refused with SHOAL_E_LIMIT: a
 * peer inventing node ids must not grow the registry without bound. */
#define REGISTRY_MAX_NODES 10000

/* Loads every node from store (borrowed; must outlive the registry). */
int registry_open(store_t *store, registry_t **ret_reg);
void registry_close(registry_t **reg);
/* Lowers (or raises) the REGISTRY_MAX_NODES cap; nodes held stay. */
void registry_set_max_nodes(registry_t *reg, size_t max);

/*
 * A Hello from node_id. Creates or updates the record (labels, facts,
 * version), marks it online and persists it. *ret_node is borrowed until
 * the next registry call. A new store_id (the agent lost its state dir)
 * restarts the node's event sequence. SHOAL_E_LIMIT: a new node while the
 * registry is full.
 */
int registry_hello(registry_t *reg, const char *node_id,
    const Shoal__Hello *hello, const Shoal__Node **ret_node);

/* A heartbeat: updates figures and liveness. SHOAL_E_NOT_FOUND when the
 * node never said Hello (it must say Hello again). */
int registry_heartbeat(registry_t *reg, const char *node_id,
    const Shoal__Heartbeat *hb, const Shoal__Node **ret_node);

/* Any other message from a known node counts as a sign of life. */
const Shoal__Node *registry_touch(registry_t *reg, const char *node_id);

/* Moves the node's desired-state generation up to generation (never
 * down), written at once. */
int registry_set_generation(registry_t *reg, const char *node_id,
    uint64_t generation);

/*
 * The same in two halves, for a caller that writes other records in the
 * same transaction: the write (memory unchanged), then, once the
 * transaction committed, the record in memory.
 */
int registry_write_generation(registry_t *reg, store_txn_t *txn,
    const char *node_id, uint64_t generation);
void registry_note_generation(registry_t *reg, const char *node_id,
    uint64_t generation);

/* The agent acknowledged generation. */
int registry_ack(registry_t *reg, const char *node_id, uint64_t generation);

/*
 * An event from node_id. Stores it when it follows the last one stored from
 * this node (ev->prev_seq at or below the node's event_seq) and returns 0;
 * returns 0 without storing when it was stored already (seq at or below
 * event_seq); returns REGISTRY_EVENT_GAP without storing when events before
 * it never arrived, and the agent must send again from *ret_ack_seq + 1;
 * REGISTRY_EVENT_GAP_TOLD for the same hole again (the agent was told).
 * *ret_ack_seq is what to acknowledge: the highest sequence stored.
 */
#define REGISTRY_EVENT_GAP 1
#define REGISTRY_EVENT_GAP_TOLD 2
int registry_event(registry_t *reg, const char *node_id, const Shoal__Event *ev,
    uint64_t *ret_ack_seq);

/*
 * Marks online nodes offline when silent for longer than offline_after_ms,
 * or, when that is 0, for more than missed heartbeats of the node's own
 * interval. Calls fn for each node whose state changed.
 */
typedef void (*registry_change_fn)(const Shoal__Node *node, void *arg);
int registry_sweep(registry_t *reg, uint64_t offline_after_ms, uint64_t missed,
    registry_change_fn fn, void *arg);

/* Writes the figures and last_seen times heartbeats left in memory. */
int registry_flush(registry_t *reg);

/* Borrowed until the next registry call; NULL when unknown. */
const Shoal__Node *registry_find(registry_t *reg, const char *node_id);
/* Nodes in id order; borrowed as above. */
size_t registry_count(registry_t *reg);
const Shoal__Node *registry_at(registry_t *reg, size_t i);
/* The index of the first node whose id sorts after id (for paging). */
size_t registry_index_after(registry_t *reg, const char *id);

/*
 * The newest limit events (of node_id, or of every node when NULL; of
 * service, or of all when NULL), oldest first; with after > 0, the oldest
 * limit events whose gseq is above after. The caller owns the array and each
 * message (free with registry_events_free()).
 */
int registry_events(registry_t *reg, const char *node_id, const char *service,
    uint64_t after, size_t limit, Shoal__StoredEvent ***ret_events,
    size_t *ret_n);

/* An event of the coordinator's own (a rollout's step), written in txn;
 * node_id: the node it is about, or NULL for the service. */
int registry_write_event(registry_t *reg, store_txn_t *txn, const char *node_id,
    const char *kind, const char *service, const char *message);
void registry_events_free(Shoal__StoredEvent **events, size_t n);

#endif
