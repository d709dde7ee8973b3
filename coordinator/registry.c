/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node registry of the coordinator (see registry.h). In memory every record
 * is an unpacked Shoal__Node kept in a sorted array; an update builds the
 * next record from the current one, round-trips it through the codec so
 * that ownership stays uniform, and writes it to LMDB. State changes are
 * written at once; heartbeat figures and last_seen are written in batches
 * by registry_sweep(), so a large fleet does not cost one fsync per
 * heartbeat.
 */
#include "autoconf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/registry.h"

const char *const registry_dbs[] = { "nodes", "events", "meta", "services",
	"revisions", "desired", "status", "rollouts", "operations", "holds",
	"keys" };
const unsigned registry_ndbs = ARRAY_SIZE(registry_dbs);

#define EVENTS_MAX 100000
#define EVENTS_NEXT_KEY "events.next"

typedef struct entry {
	Shoal__Node *rec;
	uint64_t contact_mono; /* last message, monotonic ms */
	uint64_t gap_told; /* event_seq + 1 when a resend was asked for it */
	int dirty;         /* figures/last_seen not yet written */
} entry_t;

struct registry {
	store_t *store;
	entry_t *v;
	size_t n;
	size_t max_nodes;
};

/* Binary search; returns the index where id is or would be. */
static size_t
find_index(const registry_t *reg, const char *id, int *found)
{
	size_t lo = 0, hi = reg->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(reg->v[mid].rec->id, id);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static entry_t *
find(registry_t *reg, const char *id)
{
	int found;
	size_t i = find_index(reg, id, &found);

	return found ? &reg->v[i] : NULL;
}

/* A deep, owned copy of a record. */
static Shoal__Node *
node_copy(const Shoal__Node *msg)
{
	return wire_copy(&msg->base);
}

static int
write_node(registry_t *reg, store_txn_t *txn, const Shoal__Node *rec)
{
	return store_put_msg(txn, DB_NODES, rec->id, strlen(rec->id),
	    &rec->base);
}

/* Writes one record in a transaction of its own. */
static int
persist(registry_t *reg, const Shoal__Node *rec)
{
	store_txn_t *txn;
	int r;

	r = store_begin(reg->store, true, &txn);
	if (r < 0)
		return r;
	r = write_node(reg, txn, rec);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

/* Replaces e's record with a copy of next; writes it unless deferred. */
static int
entry_update(registry_t *reg, entry_t *e, const Shoal__Node *next, int defer)
{
	Shoal__Node *copy = node_copy(next);
	int r;

	if (!defer) {
		r = persist(reg, copy);
		if (r < 0) {
			shoal__node__free_unpacked(copy, NULL);
			return r;
		}
	}
	shoal__node__free_unpacked(e->rec, NULL);
	e->rec = copy;
	e->dirty = defer;
	return 0;
}

/*
 * A record stored before today's checks on peer fields may not pass them,
 * and a control reply holding it would be refused by shoalctl: clean it in
 * memory (the next write stores the clean one).
 */
static void
clean_record(Shoal__Node *rec)
{
	const char *why;
	Shoal__HostFigures *f = rec->figures;

	if (wire_node_ok(rec, &why) == 0)
		return;
	log_warning("node %s: stored record fails a check (%s); cleaned",
	    rec->id, why);
	wire_clean_text(rec->agent_version, WIRE_MAX_STRING, 0);
	wire_clean_text(rec->store_id, WIRE_MAX_STRING, 0);
	if (rec->facts) {
		wire_clean_text(rec->facts->hostname, WIRE_MAX_STRING, 0);
		wire_clean_text(rec->facts->os, WIRE_MAX_STRING, 0);
		wire_clean_text(rec->facts->kernel, WIRE_MAX_STRING, 0);
		wire_clean_text(rec->facts->arch, WIRE_MAX_STRING, 0);
	}
	if (f && (!isfinite(f->load1) || f->load1 < 0))
		f->load1 = 0;
	if (f &&
	    (!isfinite(f->cpu_percent) || f->cpu_percent < 0 ||
	        f->cpu_percent > 100))
		f->cpu_percent = 0;
}

static int
load_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	registry_t *reg = arg;
	Shoal__Node *rec = shoal__node__unpack(NULL, vlen, val);

	if (!rec || !node_id_valid(rec->id) || strlen(rec->id) != klen ||
	    memcmp(rec->id, key, klen) != 0) {
		if (rec)
			shoal__node__free_unpacked(rec, NULL);
		return SHOAL_E_STORE_CORRUPT;
	}
	clean_record(rec);
	reg->v = xrealloc(reg->v, (reg->n + 1) * sizeof *reg->v);
	/* LMDB hands keys over in order, so the array stays sorted. */
	reg->v[reg->n++] = (entry_t){ .rec = rec, .contact_mono = mono_ms() };
	return 0;
}

int
registry_open(store_t *store, registry_t **ret_reg)
{
	registry_t *reg = xcalloc(1, sizeof *reg);
	store_txn_t *txn;
	int r;

	reg->max_nodes = REGISTRY_MAX_NODES;
	reg->store = store;
	r = store_begin(store, false, &txn);
	if (r < 0)
		goto fail;
	/*
	 * Silence is measured from now for every loaded node: the coordinator
	 * was not listening while it was down, so that time proves nothing.
	 */
	r = store_foreach(txn, DB_NODES, NULL, 0, load_one, reg);
	store_abort(&txn);
	if (r < 0)
		goto fail;
	*ret_reg = reg;
	return 0;
fail:
	registry_close(&reg);
	return r;
}

void
registry_close(registry_t **reg)
{
	registry_t *r = *reg;

	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		shoal__node__free_unpacked(r->v[i].rec, NULL);
	free(r->v);
	free(r);
	*reg = NULL;
}

static void
set_state(Shoal__Node *next, const Shoal__Node *cur, Shoal__Node__State st,
    uint64_t now)
{
	next->state = st;
	if (!cur || cur->state != st)
		next->state_since_ms = now;
}

int
registry_hello(registry_t *reg, const char *node_id, const Shoal__Hello *hello,
    const Shoal__Node **ret_node)
{
	Shoal__Node next = SHOAL__NODE__INIT;
	uint64_t now = now_ms();
	entry_t *e = find(reg, node_id);
	int r;

	if (e) {
		next = *e->rec;
	} else if (reg->n >= reg->max_nodes) {
		return SHOAL_E_LIMIT;
	} else {
		next.id = (char *)node_id;
		next.first_seen_ms = now;
		/* Generation 1 is the empty desired state every node starts
		 * from; the agent fetches and acknowledges it. */
		next.generation = 1;
	}
	set_state(&next, e ? e->rec : NULL, SHOAL__NODE__STATE__ONLINE, now);
	next.labels = hello->labels;
	next.n_labels = hello->n_labels;
	next.facts = hello->facts;
	next.agent_version = hello->agent_version;
	next.heartbeat_ms = hello->heartbeat_ms;
	next.last_seen_ms = now;
	next.acked_generation = hello->generation;
	if (hello->generation > next.generation) {
		/* The agent has applied a generation this registry never
		 * issued (the coordinator was restored from a backup): move
		 * past it so the agent fetches and reconciles to our state. */
		next.generation = hello->generation + 1;
	}
	if (!e || strcmp(e->rec->store_id, hello->store_id) != 0) {
		/* A new agent store numbers its events from 1 again. */
		next.store_id = hello->store_id;
		next.event_seq = 0;
	}

	if (!e) {
		Shoal__Node *rec = node_copy(&next);
		int found;
		size_t i = find_index(reg, node_id, &found);

		r = persist(reg, rec);
		if (r < 0) {
			shoal__node__free_unpacked(rec, NULL);
			return r;
		}
		reg->v = xrealloc(reg->v, (reg->n + 1) * sizeof *reg->v);
		memmove(&reg->v[i + 1], &reg->v[i],
		    (reg->n - i) * sizeof *reg->v);
		reg->n++;
		e = &reg->v[i];
		*e = (entry_t){ .rec = rec };
	} else {
		r = entry_update(reg, e, &next, 0);
		if (r < 0)
			return r;
	}
	e->contact_mono = mono_ms();
	*ret_node = e->rec;
	return 0;
}

int
registry_heartbeat(registry_t *reg, const char *node_id,
    const Shoal__Heartbeat *hb, const Shoal__Node **ret_node)
{
	entry_t *e = find(reg, node_id);
	Shoal__Node next;
	uint64_t now = now_ms();
	int defer, r;

	if (!e)
		return SHOAL_E_NOT_FOUND;
	next = *e->rec;
	next.figures = hb->figures;
	next.last_seen_ms = now;
	next.outbox_depth = hb->outbox_depth;
	next.acked_generation = hb->generation;
	/* Coming back online is a state change: write it now. */
	defer = e->rec->state == SHOAL__NODE__STATE__ONLINE;
	if (hb->generation > next.generation) {
		/* As in registry_hello(): never leave an agent ahead. */
		next.generation = hb->generation + 1;
		defer = 0;
	}
	set_state(&next, e->rec, SHOAL__NODE__STATE__ONLINE, now);
	r = entry_update(reg, e, &next, defer);
	if (r < 0)
		return r;
	e->contact_mono = mono_ms();
	*ret_node = e->rec;
	return 0;
}

const Shoal__Node *
registry_touch(registry_t *reg, const char *node_id)
{
	entry_t *e = find(reg, node_id);

	if (!e)
		return NULL;
	e->contact_mono = mono_ms();
	return e->rec;
}

int
registry_ack(registry_t *reg, const char *node_id, uint64_t generation)
{
	entry_t *e = find(reg, node_id);
	Shoal__Node next;

	if (!e)
		return SHOAL_E_NOT_FOUND;
	if (generation > e->rec->generation)
		return SHOAL_E_INVALID; /* acknowledging what it never got */
	next = *e->rec;
	next.acked_generation = generation;
	return entry_update(reg, e, &next, 0);
}

/* Stores se under the next global sequence, the oldest event going once
 * EVENTS_MAX are kept. */
static int
put_event(store_txn_t *txn, Shoal__StoredEvent *se)
{
	uint64_t gseq, count;
	uint8_t key[8];
	int r;

	r = store_get_u64(txn, DB_META, EVENTS_NEXT_KEY, &gseq);
	if (r == 0) {
		store_key_u64(++gseq, key);
		r = store_put_msg(txn, DB_EVENTS, key, sizeof key, &se->base);
	}
	if (r == 0)
		r = store_put_u64(txn, DB_META, EVENTS_NEXT_KEY, gseq);
	if (r == 0)
		r = store_count(txn, DB_EVENTS, &count);
	if (r == 0 && count > EVENTS_MAX && gseq > EVENTS_MAX) {
		store_key_u64(gseq - EVENTS_MAX, key);
		r = store_del(txn, DB_EVENTS, key, sizeof key);
	}
	return r;
}

int
registry_write_event(registry_t *reg, store_txn_t *txn, const char *node_id,
    const char *kind, const char *service, const char *message)
{
	Shoal__StoredEvent se = SHOAL__STORED_EVENT__INIT;
	Shoal__Event ev = SHOAL__EVENT__INIT;
	uint64_t now = now_ms();

	(void)reg;
	ev.seq = 1; /* not an agent's: the coordinator's events have no chain */
	ev.time_ms = now;
	ev.kind = (char *)kind;
	ev.service = (char *)service;
	ev.message = (char *)message;
	se.node = (char *)(node_id ? node_id : "");
	se.event = &ev;
	se.received_ms = now;
	se.coordinator = 1;
	return put_event(txn, &se);
}

int
registry_event(registry_t *reg, const char *node_id, const Shoal__Event *ev,
    uint64_t *ret_ack_seq)
{
	Shoal__StoredEvent se = SHOAL__STORED_EVENT__INIT;
	entry_t *e = find(reg, node_id);
	Shoal__Node next;
	store_txn_t *txn;
	Shoal__Node *copy;
	int r;

	if (!e)
		return SHOAL_E_NOT_FOUND;
	*ret_ack_seq = e->rec->event_seq;
	if (ev->seq <= e->rec->event_seq)
		return 0; /* a resend: ack again */
	if (ev->prev_seq > e->rec->event_seq) {
		/* One before it was lost. Ask for a resend once per hole:
		 * the rest of the agent's window is refused quietly, or each
		 * frame of it would set off a resend of its own. */
		if (e->gap_told == e->rec->event_seq + 1)
			return REGISTRY_EVENT_GAP_TOLD;
		e->gap_told = e->rec->event_seq + 1;
		return REGISTRY_EVENT_GAP;
	}
	se.node = (char *)node_id;
	se.event = (Shoal__Event *)ev;
	se.received_ms = now_ms();
	next = *e->rec;
	next.event_seq = ev->seq;
	copy = node_copy(&next);

	/* The event and the node's new event_seq commit together: an ack is
	 * only ever sent for what is on disk. */
	r = store_begin(reg->store, true, &txn);
	if (r < 0)
		goto fail;
	r = put_event(txn, &se);
	if (r == 0)
		r = write_node(reg, txn, copy);
	if (r < 0) {
		store_abort(&txn);
		goto fail;
	}
	r = store_commit(&txn);
	if (r < 0)
		goto fail;
	shoal__node__free_unpacked(e->rec, NULL);
	e->rec = copy;
	e->contact_mono = mono_ms();
	*ret_ack_seq = ev->seq;
	return 0;
fail:
	shoal__node__free_unpacked(copy, NULL);
	return r;
}

int
registry_flush(registry_t *reg)
{
	store_txn_t *txn;
	int r, any = 0;

	for (size_t i = 0; i < reg->n; i++)
		any |= reg->v[i].dirty;
	if (!any)
		return 0;
	r = store_begin(reg->store, true, &txn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < reg->n && r == 0; i++)
		if (reg->v[i].dirty)
			r = write_node(reg, txn, reg->v[i].rec);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	r = store_commit(&txn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < reg->n; i++)
		reg->v[i].dirty = 0;
	return 0;
}

int
registry_sweep(registry_t *reg, uint64_t offline_after_ms, uint64_t missed,
    registry_change_fn fn, void *arg)
{
	uint64_t mono = mono_ms(), now = now_ms();
	int r;

	for (size_t i = 0; i < reg->n; i++) {
		entry_t *e = &reg->v[i];
		uint64_t limit = offline_after_ms;
		Shoal__Node next;

		if (e->rec->state != SHOAL__NODE__STATE__ONLINE)
			continue;
		if (!limit)
			limit = missed *
			    (e->rec->heartbeat_ms ? e->rec->heartbeat_ms
			                          : 5000);
		if (mono - e->contact_mono <= limit)
			continue;
		next = *e->rec;
		set_state(&next, e->rec, SHOAL__NODE__STATE__OFFLINE, now);
		r = entry_update(reg, e, &next, 0);
		if (r < 0)
			return r;
		if (fn)
			fn(e->rec, arg);
	}
	return 0;
}

const Shoal__Node *
registry_find(registry_t *reg, const char *node_id)
{
	entry_t *e = find(reg, node_id);

	return e ? e->rec : NULL;
}

size_t
registry_count(registry_t *reg)
{
	return reg->n;
}

void
registry_set_max_nodes(registry_t *reg, size_t max)
{
	reg->max_nodes = max;
}

int
registry_set_generation(registry_t *reg, const char *node_id,
    uint64_t generation)
{
	entry_t *e = find(reg, node_id);
	Shoal__Node next;

	if (!e)
		return SHOAL_E_NOT_FOUND;
	if (generation <= e->rec->generation)
		return 0;
	next = *e->rec;
	next.generation = generation;
	return entry_update(reg, e, &next, 0);
}

int
registry_write_generation(registry_t *reg, store_txn_t *txn,
    const char *node_id, uint64_t generation)
{
	entry_t *e = find(reg, node_id);
	Shoal__Node next;

	if (!e)
		return SHOAL_E_NOT_FOUND;
	if (generation <= e->rec->generation)
		return 0;
	next = *e->rec;
	next.generation = generation;
	return write_node(reg, txn, &next);
}

void
registry_note_generation(registry_t *reg, const char *node_id,
    uint64_t generation)
{
	entry_t *e = find(reg, node_id);
	Shoal__Node next;

	if (!e || generation <= e->rec->generation)
		return;
	next = *e->rec;
	next.generation = generation;
	/* Written already (registry_write_generation); deferred, a later
	 * flush only writes the same again. */
	entry_update(reg, e, &next, 1);
}

size_t
registry_index_after(registry_t *reg, const char *id)
{
	int found;
	size_t i = find_index(reg, id, &found);

	return found ? i + 1 : i;
}

const Shoal__Node *
registry_at(registry_t *reg, size_t i)
{
	return i < reg->n ? reg->v[i].rec : NULL;
}

typedef struct collect {
	const char *node;
	const char *service;
	size_t limit, n;
	Shoal__StoredEvent **v;
} collect_t;

static int
collect_one(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	collect_t *c = arg;
	Shoal__StoredEvent *se = shoal__stored_event__unpack(NULL, vlen, val);

	if (!se || !se->event || klen != 8) {
		if (se)
			shoal__stored_event__free_unpacked(se, NULL);
		return SHOAL_E_STORE_CORRUPT;
	}
	if ((c->node && strcmp(se->node, c->node) != 0) ||
	    (c->service && strcmp(se->event->service, c->service) != 0)) {
		shoal__stored_event__free_unpacked(se, NULL);
		return 0;
	}
	se->gseq = store_key_to_u64(key);
	/* Stored before the checks on event text existed, perhaps. */
	wire_clean_text(se->event->kind, 64, 0);
	wire_clean_text(se->event->service, WIRE_MAX_STRING, 0);
	wire_clean_text(se->event->message, WIRE_MAX_MESSAGE, 1);
	c->v[c->n++] = se;
	return c->n == c->limit ? 1 : 0;
}

int
registry_events(registry_t *reg, const char *node_id, const char *service,
    uint64_t after, size_t limit, Shoal__StoredEvent ***ret_events,
    size_t *ret_n)
{
	collect_t c = { .node = node_id, .service = service, .limit = limit };
	store_txn_t *txn;
	uint8_t from[8];
	int r;

	if (limit == 0) {
		*ret_events = NULL;
		*ret_n = 0;
		return 0;
	}
	c.v = xcalloc(limit, sizeof *c.v);
	r = store_begin(reg->store, false, &txn);
	if (r < 0) {
		free(c.v);
		return r;
	}
	if (after) {
		/* The oldest after the given one, in order. */
		store_key_u64(after + 1, from);
		r = store_foreach(txn, DB_EVENTS, from, sizeof from,
		    collect_one, &c);
		store_abort(&txn);
		if (r < 0) {
			registry_events_free(c.v, c.n);
			return r;
		}
		*ret_events = c.v;
		*ret_n = c.n;
		return 0;
	}
	r = store_foreach_reverse(txn, DB_EVENTS, collect_one, &c);
	store_abort(&txn);
	if (r < 0) {
		registry_events_free(c.v, c.n);
		return r;
	}
	/* Newest first from the cursor; callers want oldest first. */
	for (size_t i = 0; i < c.n / 2; i++) {
		Shoal__StoredEvent *t = c.v[i];

		c.v[i] = c.v[c.n - 1 - i];
		c.v[c.n - 1 - i] = t;
	}
	*ret_events = c.v;
	*ret_n = c.n;
	return 0;
}

void
registry_events_free(Shoal__StoredEvent **events, size_t n)
{
	for (size_t i = 0; i < n; i++)
		shoal__stored_event__free_unpacked(events[i], NULL);
	free(events);
}
