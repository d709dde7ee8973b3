/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's event outbox: sequence numbers, pending windows,
 * acknowledgement, durability across a reopen, and the bound with its
 * overflow note.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/outbox.h"
#include "common/error.h"
#include "common/store.h"
#include "common/wire.h"
#include "tests/tap.h"

enum { DB_META, DB_OUTBOX };
static const char *const dbs[] = { "meta", "outbox" };

typedef struct seen {
	uint64_t seq[64];
	char kind[64][32];
	unsigned n;
} seen_t;

static int
collect(const Shoal__Event *ev, void *arg)
{
	seen_t *s = arg;

	if (s->n < 64) {
		s->seq[s->n] = ev->seq;
		snprintf(s->kind[s->n], sizeof s->kind[0], "%s", ev->kind);
		s->n++;
	}
	return 0;
}

static char last_msg[WIRE_MAX_MESSAGE + 1];

static int
keep_message(const Shoal__Event *ev, void *arg)
{
	snprintf(last_msg, sizeof last_msg, "%s", ev->message);
	return 0;
}

/* Takes one event and refuses the rest, as a send that fails would. */
static int
collect_one(const Shoal__Event *ev, void *arg)
{
	seen_t *s = arg;

	collect(ev, arg);
	return s->n >= 1;
}

static outbox_t *
open_outbox(const char *dir, uint64_t max, store_t **store)
{
	outbox_t *ob = NULL;

	if (store_open(dir, dbs, 2, 1, 1 << 20, store) < 0)
		return NULL;
	if (outbox_open(*store, DB_OUTBOX, DB_META, max, &ob) < 0)
		store_close(store);
	return ob;
}

int
main(void)
{
	char dir[] = "/tmp/shoal-test-outbox.XXXXXX";
	store_t *store = NULL;
	outbox_t *ob;
	seen_t s = { 0 };
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	ob = open_outbox(dir, 100, &store);
	ok(ob != NULL, "outbox opens on a new store");
	is_int(outbox_last_seq(ob), 0, "a new outbox has sequence 0");

	is_int(outbox_push(ob, "a.one", NULL, "first %d", 1), 0, "push 1");
	is_int(outbox_push(ob, "a.two", "svc", "second"), 0, "push 2");
	is_int(outbox_push(ob, "a.three", NULL, "third"), 0, "push 3");
	is_int(outbox_depth(ob), 3, "depth counts pushed events");
	is_int(outbox_last_seq(ob), 3, "sequences count from 1");

	outbox_pending(ob, 0, 10, collect, &s);
	is_int(s.n, 3, "all three are pending");
	ok(s.seq[0] == 1 && s.seq[1] == 2 && s.seq[2] == 3,
	    "pending events come oldest first");
	is_str(s.kind[1], "a.two", "events keep their kind");

	s.n = 0;
	outbox_pending(ob, 1, 1, collect, &s);
	ok(s.n == 1 && s.seq[0] == 2, "a window starts after a sequence");
	s.n = 0;
	is_int(outbox_pending(ob, 0, 10, collect_one, &s), 0,
	    "a callback may stop the walk");
	ok(s.n == 1 && s.seq[0] == 1, "and no event after it is offered");

	is_int(outbox_ack(ob, 2), 0, "ack up to 2");
	is_int(outbox_depth(ob), 1, "acknowledged events leave");
	s.n = 0;
	outbox_pending(ob, 0, 10, collect, &s);
	ok(s.n == 1 && s.seq[0] == 3, "only the unacknowledged one is pending");
	is_int(outbox_ack(ob, 2), 0, "a repeated ack is harmless");
	is_int(outbox_depth(ob), 1, "and changes nothing");

	/* Durable: a reopened outbox has the same queue and sequence. */
	outbox_close(&ob);
	store_close(&store);
	ok(ob == NULL && store == NULL, "close resets the pointers");
	ob = open_outbox(dir, 3, &store);
	ok(ob != NULL, "outbox reopens");
	is_int(outbox_last_seq(ob), 3, "the sequence survives a reopen");
	is_int(outbox_depth(ob), 1, "the queue survives a reopen");

	/* The bound: the oldest give way, and a note follows once there
	 * is room again. */
	outbox_push(ob, "b.4", NULL, "4");
	outbox_push(ob, "b.5", NULL, "5");
	outbox_push(ob, "b.6", NULL, "6");
	is_int(outbox_depth(ob), 3, "the outbox stays within its bound");
	s.n = 0;
	outbox_pending(ob, 0, 10, collect, &s);
	ok(s.n == 3 && s.seq[0] == 4 && s.seq[2] == 6,
	    "the oldest event gave way");
	outbox_ack(ob, 6);
	outbox_push(ob, "b.7", NULL, "7");
	s.n = 0;
	outbox_pending(ob, 0, 10, collect, &s);
	ok(s.n == 2 && strcmp(s.kind[1], "outbox.overflow") == 0,
	    "an overflow note follows once there is room");

	/* Text the coordinator would refuse is cleaned on the way in: a
	 * refused event would hold up every later one. */
	{
		char big[WIRE_MAX_MESSAGE + 8];

		outbox_push(ob, "c.text", NULL, "exit: \x1b[31mred\r");
		outbox_pending(ob, outbox_last_seq(ob) - 1, 1, keep_message,
		    NULL);
		is_str(last_msg, "exit: ?[31mred?",
		    "control characters in a message become '?'");
		memset(big, 'x', sizeof big - 4);
		memcpy(big + WIRE_MAX_MESSAGE - 2, "\xe6\x97\xa5", 3);
		big[WIRE_MAX_MESSAGE + 1] = '\0';
		outbox_push(ob, "c.long", NULL, "%s", big);
		outbox_pending(ob, outbox_last_seq(ob) - 1, 1, keep_message,
		    NULL);
		ok(strlen(last_msg) == WIRE_MAX_MESSAGE - 2,
		    "a long message is cut before a character split at the "
		    "limit");
	}

	outbox_close(&ob);
	store_close(&store);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
