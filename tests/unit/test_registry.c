/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's node registry: registration from Hello, heartbeats,
 * liveness sweeps, event de-duplication, acknowledgements and persistence
 * across a reopen.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/store.h"
#include "coordinator/registry.h"
#include "tests/tap.h"

static registry_t *
open_registry(const char *dir, store_t **store)
{
	registry_t *reg = NULL;

	if (store_open(dir, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	        1 << 22, store) < 0)
		return NULL;
	if (registry_open(*store, &reg) < 0)
		store_close(store);
	return reg;
}

static int changes;

static void
count_change(const Shoal__Node *n, void *arg)
{
	changes++;
}

static Shoal__Event
event(uint64_t seq, const char *kind)
{
	Shoal__Event ev = SHOAL__EVENT__INIT;

	ev.seq = seq;
	ev.kind = (char *)kind;
	return ev;
}

/* An event as a current agent sends it: naming the one before. */
static Shoal__Event
chained(uint64_t prev, uint64_t seq, const char *kind)
{
	Shoal__Event ev = event(seq, kind);

	ev.prev_seq = prev;
	return ev;
}

int
main(void)
{
	char dir[] = "/tmp/shoal-test-registry.XXXXXX";
	store_t *store = NULL;
	registry_t *reg;
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Heartbeat hb = SHOAL__HEARTBEAT__INIT;
	Shoal__Label l1 = SHOAL__LABEL__INIT, *labels[1] = { &l1 };
	Shoal__StoredEvent **evs;
	Shoal__Event ev;
	const Shoal__Node *n;
	uint64_t ack;
	size_t nev;
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	reg = open_registry(dir, &store);
	ok(reg != NULL, "registry opens on a new store");
	is_int(registry_count(reg), 0, "a new registry is empty");

	l1.key = "gpu";
	l1.value = "a100";
	hello.labels = labels;
	hello.n_labels = 1;
	hello.agent_version = "9.9";
	hello.heartbeat_ms = 1000;
	hello.store_id = "store-1";
	is_int(registry_hello(reg, "node-b", &hello, &n), 0, "hello node-b");
	is_int(registry_hello(reg, "node-a", &hello, &n), 0, "hello node-a");
	is_int(registry_count(reg), 2, "two nodes registered");
	is_str(registry_at(reg, 0)->id, "node-a", "nodes are kept in id order");
	n = registry_find(reg, "node-b");
	ok(n && n->state == SHOAL__NODE__STATE__ONLINE, "a new node is online");
	ok(n && n->n_labels == 1 && strcmp(n->labels[0]->value, "a100") == 0,
	    "labels are recorded");
	ok(n && n->generation == 1, "a new node starts at generation 1");
	ok(registry_find(reg, "node-z") == NULL, "unknown nodes are not found");

	is_int(registry_heartbeat(reg, "node-z", &hb, &n), SHOAL_E_NOT_FOUND,
	    "a heartbeat from an unknown node asks for Hello");
	hb.outbox_depth = 7;
	is_int(registry_heartbeat(reg, "node-a", &hb, &n), 0, "heartbeat");
	is_int(n->outbox_depth, 7, "heartbeat figures are recorded");

	is_int(registry_ack(reg, "node-a", 1), 0, "ack generation 1");
	hello.generation = 1;
	registry_hello(reg, "node-a", &hello, &n);
	ok(n->generation == 1 && n->acked_generation == 1,
	    "a Hello at the registry's generation leaves it alone");
	hello.generation = 0;
	is_int(registry_ack(reg, "node-a", 5), SHOAL_E_INVALID,
	    "acknowledging a generation never sent is refused");

	/* An agent ahead of the registry (a coordinator restored from an
	 * older backup) is given a newer generation to fetch. */
	hello.generation = 5;
	registry_hello(reg, "node-b", &hello, &n);
	ok(n->generation == 6 && n->acked_generation == 5,
	    "an agent ahead of the registry gets a newer generation");
	hello.generation = 0;

	/* Events: stored once, acknowledged cumulatively. */
	ev = event(1, "k.one");
	is_int(registry_event(reg, "node-a", &ev, &ack), 0, "event 1");
	is_int(ack, 1, "event 1 acknowledged");
	ev = event(2, "k.two");
	registry_event(reg, "node-a", &ev, &ack);
	ev = event(1, "k.one");
	is_int(registry_event(reg, "node-a", &ev, &ack), 0, "a resent event");
	is_int(ack, 2, "a resend is acknowledged up to the newest");
	registry_events(reg, "node-a", NULL, 0, 100, &evs, &nev);
	is_int(nev, 2, "a resent event is stored once");
	ok(nev == 2 && evs[0]->event->seq == 1 && evs[1]->event->seq == 2,
	    "events come oldest first");
	registry_events_free(evs, nev);
	ev = event(1, "k.one");
	is_int(registry_event(reg, "node-q", &ev, &ack), SHOAL_E_NOT_FOUND,
	    "events from unknown nodes are refused");

	/* A new agent store restarts the sequence. */
	hello.store_id = "store-2";
	registry_hello(reg, "node-a", &hello, &n);
	is_int(n->event_seq, 0, "a new store_id restarts the event sequence");
	ev = event(1, "k.again");
	registry_event(reg, "node-a", &ev, &ack);
	registry_events(reg, "node-a", NULL, 0, 1, &evs, &nev);
	ok(nev == 1 && strcmp(evs[0]->event->kind, "k.again") == 0,
	    "event 1 of the new store is kept, newest first by limit");
	registry_events_free(evs, nev);

	/* The chain: an event whose predecessor never arrived is refused
	 * until the agent sends again from the gap. */
	ev = chained(2, 3, "k.three");
	is_int(registry_event(reg, "node-a", &ev, &ack), REGISTRY_EVENT_GAP,
	    "an event after a gap is refused");
	is_int(ack, 1, "the acknowledgement names the last one stored");
	ev = chained(3, 4, "k.four");
	is_int(registry_event(reg, "node-a", &ev, &ack),
	    REGISTRY_EVENT_GAP_TOLD,
	    "the rest of the window is refused without a second resend");
	registry_events(reg, "node-a", NULL, 0, 100, &evs, &nev);
	is_int(nev, 3, "nothing after the gap is stored (two of store-1, one)");
	registry_events_free(evs, nev);
	ev = chained(1, 2, "k.two");
	is_int(registry_event(reg, "node-a", &ev, &ack), 0, "the gap, resent");
	ev = chained(2, 3, "k.three");
	registry_event(reg, "node-a", &ev, &ack);
	is_int(ack, 3, "then the rest follows");
	/* Events the agent's own outbox dropped leave a gap it declares. */
	ev = chained(3, 9, "outbox.overflow");
	is_int(registry_event(reg, "node-a", &ev, &ack), 0,
	    "a gap the agent declares is accepted");
	is_int(ack, 9, "and acknowledged");

	registry_events(reg, NULL, NULL, 0, 100, &evs, &nev);
	is_int(nev, 6, "all events without a node filter");
	registry_events_free(evs, nev);

	/* A heartbeat from an agent ahead of the registry moves it on. */
	hb.generation = 9;
	registry_heartbeat(reg, "node-a", &hb, &n);
	ok(n->generation == 10 && n->acked_generation == 9,
	    "a heartbeat ahead of the registry moves the generation past it");
	hb.generation = 0;

	/* Liveness: silence beyond the allowance marks offline. */
	changes = 0;
	registry_sweep(reg, 0, 3, count_change, NULL);
	is_int(changes, 0, "recent nodes stay online");
	usleep(20000);
	registry_sweep(reg, 10, 3, count_change, NULL);
	is_int(changes, 2, "silent nodes go offline");
	n = registry_find(reg, "node-a");
	ok(n->state == SHOAL__NODE__STATE__OFFLINE, "the state says offline");
	registry_heartbeat(reg, "node-a", &hb, &n);
	ok(n->state == SHOAL__NODE__STATE__ONLINE,
	    "a heartbeat brings it back");
	hb.outbox_depth = 11; /* online already: kept in memory */
	registry_heartbeat(reg, "node-a", &hb, &n);
	is_int(registry_flush(reg), 0, "flush writes deferred figures");

	/* The cap on nodes: new ids are refused, known ones still heard. */
	registry_set_max_nodes(reg, 3);
	is_int(registry_hello(reg, "node-c", &hello, &n), 0, "a third node");
	is_int(registry_hello(reg, "node-d", &hello, &n), SHOAL_E_LIMIT,
	    "a fourth is refused at a cap of three");
	ok(registry_find(reg, "node-d") == NULL, "and not recorded");
	is_int(registry_hello(reg, "node-c", &hello, &n), 0,
	    "a known node is still heard at the cap");
	is_int(registry_index_after(reg, "node-a"), 1,
	    "paging: the index after an id");
	is_int(registry_index_after(reg, "node-bb"), 2,
	    "paging: the index after an id that is not there");
	is_int(registry_index_after(reg, "node-z"), 3,
	    "paging: past the last id");

	/* Persistence. */
	registry_close(&reg);
	store_close(&store);
	reg = open_registry(dir, &store);
	ok(reg != NULL, "registry reopens");
	is_int(registry_count(reg), 3, "nodes survive a reopen");
	n = registry_find(reg, "node-a");
	ok(n && n->state == SHOAL__NODE__STATE__ONLINE,
	    "state survives a reopen");
	ok(n && n->outbox_depth == 11,
	    "figures a flush wrote survive a reopen");
	ok(n && n->generation == 10 && n->event_seq == 9,
	    "generation and event sequence survive a reopen");
	n = registry_find(reg, "node-b");
	ok(n && n->state == SHOAL__NODE__STATE__OFFLINE,
	    "offline nodes stay offline");
	ok(n && n->n_labels == 1, "labels survive a reopen");

	registry_close(&reg);
	store_close(&store);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
