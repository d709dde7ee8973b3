/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's durable event outbox (see outbox.h). Keys are big-endian
 * sequence numbers, so LMDB's order is the order events happened in.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/outbox.h"
#include "common/error.h"
#include "common/util.h"
#include "common/wire.h"

#define SEQ_KEY "outbox.seq"

struct outbox {
	store_t *store;
	unsigned db, meta;
	uint64_t last_seq;
	uint64_t depth;
	uint64_t max;
	uint64_t overflowed; /* dropped and not yet reported */
};

int
outbox_open(store_t *store, unsigned db, unsigned meta, uint64_t max,
    outbox_t **ret)
{
	outbox_t *ob = xcalloc(1, sizeof *ob);
	store_txn_t *txn;
	int r;

	ob->store = store;
	ob->db = db;
	ob->meta = meta;
	ob->max = max ? max : 1;
	r = store_begin(store, false, &txn);
	if (r < 0)
		goto fail;
	r = store_get_u64(txn, meta, SEQ_KEY, &ob->last_seq);
	if (r == 0)
		r = store_count(txn, db, &ob->depth);
	store_abort(&txn);
	if (r < 0)
		goto fail;
	*ret = ob;
	return 0;
fail:
	free(ob);
	return r;
}

void
outbox_close(outbox_t **ob)
{
	free(*ob);
	*ob = NULL;
}

static int
drop_oldest(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	uint64_t *first = arg;

	*first = store_key_to_u64(key);
	return 1;
}

static int
append(outbox_t *ob, const char *kind, const char *service, const char *msg)
{
	Shoal__Event ev = SHOAL__EVENT__INIT;
	store_txn_t *txn;
	uint8_t key[8];
	uint64_t first = 0;
	int r;

	ev.seq = ob->last_seq + 1;
	ev.time_ms = now_ms();
	ev.kind = (char *)kind;
	ev.service = (char *)(service ? service : "");
	ev.message = (char *)msg;
	store_key_u64(ev.seq, key);

	r = store_begin(ob->store, true, &txn);
	if (r < 0)
		return r;
	r = store_put_msg(txn, ob->db, key, sizeof key, &ev.base);
	if (r == 0)
		r = store_put_u64(txn, ob->meta, SEQ_KEY, ev.seq);
	if (r == 0 && ob->depth + 1 > ob->max) {
		r = store_foreach(txn, ob->db, NULL, 0, drop_oldest, &first);
		if (r == 0) {
			store_key_u64(first, key);
			r = store_del(txn, ob->db, key, sizeof key);
		}
	}
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	r = store_commit(&txn);
	if (r < 0)
		return r;
	ob->last_seq = ev.seq;
	if (ob->depth + 1 > ob->max)
		ob->overflowed++;
	else
		ob->depth++;
	return 0;
}

int
outbox_push(outbox_t *ob, const char *kind, const char *service,
    const char *fmt, ...)
{
	char msg[WIRE_MAX_MESSAGE + 8]; /* cut below, at a character */
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages carry what containers and hosts say: an event the
	 * coordinator would refuse would block every later one. */
	wire_clean_text(msg, WIRE_MAX_MESSAGE, 1);
	r = append(ob, kind, service, msg);
	if (r == 0 && ob->overflowed && ob->depth < ob->max) {
		char note[128];

		snprintf(note, sizeof note,
		    "%llu older events were dropped: the outbox holds at most "
		    "%llu",
		    (unsigned long long)ob->overflowed,
		    (unsigned long long)ob->max);
		if (append(ob, "outbox.overflow", NULL, note) == 0)
			ob->overflowed = 0;
	}
	return r;
}

typedef struct ack_ctx {
	uint64_t upto;
	uint64_t n;
	uint8_t (*keys)[8];
} ack_ctx_t;

static int
collect_acked(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	ack_ctx_t *a = arg;
	uint64_t seq = store_key_to_u64(key);

	if (seq > a->upto)
		return 1;
	a->keys = xrealloc(a->keys, (a->n + 1) * sizeof *a->keys);
	store_key_u64(seq, a->keys[a->n++]);
	return 0;
}

int
outbox_ack(outbox_t *ob, uint64_t seq)
{
	ack_ctx_t a = { .upto = seq };
	store_txn_t *txn;
	int r;

	r = store_begin(ob->store, true, &txn);
	if (r < 0)
		return r;
	/* Collect first: deleting under a live cursor walk is not allowed
	 * by our foreach. */
	r = store_foreach(txn, ob->db, NULL, 0, collect_acked, &a);
	for (uint64_t i = 0; r == 0 && i < a.n; i++)
		r = store_del(txn, ob->db, a.keys[i], 8);
	free(a.keys);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	r = store_commit(&txn);
	if (r == 0)
		ob->depth -= a.n < ob->depth ? a.n : ob->depth;
	return r;
}

typedef struct pending_ctx {
	unsigned max, n;
	outbox_send_fn fn;
	void *arg;
} pending_ctx_t;

static int
visit_pending(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	pending_ctx_t *p = arg;
	Shoal__Event *ev = shoal__event__unpack(NULL, vlen, val);
	int r;

	if (!ev)
		return SHOAL_E_STORE_CORRUPT;
	r = p->fn(ev, p->arg);
	shoal__event__free_unpacked(ev, NULL);
	if (r != 0)
		return 1;
	return ++p->n >= p->max ? 1 : 0;
}

int
outbox_pending(outbox_t *ob, uint64_t after, unsigned max, outbox_send_fn fn,
    void *arg)
{
	pending_ctx_t p = { .max = max, .fn = fn, .arg = arg };
	store_txn_t *txn;
	uint8_t key[8];
	int r;

	if (max == 0)
		return 0;
	store_key_u64(after + 1, key);
	r = store_begin(ob->store, false, &txn);
	if (r < 0)
		return r;
	r = store_foreach(txn, ob->db, key, sizeof key, visit_pending, &p);
	store_abort(&txn);
	return r;
}

uint64_t
outbox_depth(const outbox_t *ob)
{
	return ob->depth;
}

uint64_t
outbox_last_seq(const outbox_t *ob)
{
	return ob->last_seq;
}
