/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's event outbox in LMDB: every event gets the next sequence
 * number and stays on disk until the coordinator acknowledges it, so
 * nothing the agent saw is lost while the coordinator is away or the agent
 * restarts. Bounded (OUTBOX_MAX by default): past the bound the oldest
 * events give way, and an "outbox.overflow" event says how many once there
 * is room again.
 */
#ifndef SHOAL_AGENT_OUTBOX_H
#define SHOAL_AGENT_OUTBOX_H

#include <stdint.h>

#include "common/store.h"
#include "shoal.pb-c.h"

#define OUTBOX_MAX 100000

typedef struct outbox outbox_t;

/* db: the outbox database; meta: where the sequence counter lives. Both
 * borrowed from store, which must outlive the outbox. max: the bound. */
int outbox_open(store_t *store, unsigned db, unsigned meta, uint64_t max,
    outbox_t **ret);
void outbox_close(outbox_t **ob);

/* Appends an event (kind: dotted name; service may be NULL). */
int outbox_push(outbox_t *ob, const char *kind, const char *service,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Drops every event up to and including seq. */
int outbox_ack(outbox_t *ob, uint64_t seq);

/*
 * Calls fn for up to max pending events with seq > after, oldest first,
 * until fn returns non-zero. The event is borrowed for the call.
 */
typedef int (*outbox_send_fn)(const Shoal__Event *ev, void *arg);
int outbox_pending(outbox_t *ob, uint64_t after, unsigned max,
    outbox_send_fn fn, void *arg);

uint64_t outbox_depth(const outbox_t *ob);
/* The sequence the last pushed event got (0: none yet). */
uint64_t outbox_last_seq(const outbox_t *ob);

#endif
