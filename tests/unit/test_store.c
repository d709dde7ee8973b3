/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/store.c, the LMDB wrapper: raw records, protobuf records (a
 * Shoal__Node with labels and facts), counters, ordered walks forwards and
 * backwards, transactions, persistence across a reopen, the schema version,
 * the one-process lock, corrupt records and a full map. Every store lives
 * in a mkdtemp() directory that is removed at the end.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/store.h"
#include "shoal.pb-c.h"
#include "tests/tap.h"

enum { DB_NODES, DB_EVENTS };
static const char *const dbs[] = { "nodes", "events" };

#define MAP_BYTES (1 << 20)

static char dir[] = "/tmp/shoal-test-store.XXXXXX";

/* What a walk saw: the keys (as u64) and the first byte of each value. */
typedef struct seen {
	unsigned n;
	uint64_t keys[16];
	char vals[16];
	uint64_t stop_at; /* return 1 after this key (0: never) */
	int fail;         /* return this after the first record */
} seen_t;

static int
collect(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	seen_t *s = arg;
	uint64_t key = klen == 8 ? store_key_to_u64(k) : UINT64_MAX;

	if (s->n < 16) {
		s->keys[s->n] = key;
		s->vals[s->n] = vlen ? *(const char *)v : '\0';
	}
	s->n++;
	if (s->fail)
		return s->fail;
	return s->stop_at && key == s->stop_at ? 1 : 0;
}

/* The keys a walk saw, as "10 20 30", for is_str(). */
static const char *
keys_of(const seen_t *s)
{
	static char buf[256];
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < s->n && i < 16; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%llu",
		    i ? " " : "", (unsigned long long)s->keys[i]);
	return buf;
}

static int
put_str(store_t *s, unsigned db, const char *k, const char *v)
{
	store_txn_t *t;
	int r;

	r = store_begin(s, true, &t);
	if (r < 0)
		return r;
	r = store_put(t, db, k, strlen(k), v, strlen(v));
	if (r < 0) {
		store_abort(&t);
		return r;
	}
	return store_commit(&t);
}

/* 1 when k holds v in db, as seen by a new read transaction. */
static int
holds(store_t *s, unsigned db, const char *k, const char *v)
{
	store_txn_t *t;
	const void *val;
	size_t vlen;
	int r;

	if (store_begin(s, false, &t) < 0)
		return 0;
	r = store_get(t, db, k, strlen(k), &val, &vlen);
	r = r == 0 && vlen == strlen(v) && memcmp(val, v, vlen) == 0;
	store_abort(&t);
	return r;
}

static int
absent(store_t *s, unsigned db, const char *k)
{
	store_txn_t *t;
	const void *val;
	size_t vlen;
	int r;

	if (store_begin(s, false, &t) < 0)
		return 0;
	r = store_get(t, db, k, strlen(k), &val, &vlen);
	store_abort(&t);
	return r == SHOAL_E_NOT_FOUND;
}

static void
test_raw(store_t *s)
{
	store_txn_t *t = NULL;
	const void *val;
	size_t vlen;
	char big[600];

	is_int(put_str(s, DB_NODES, "k1", "v1"), 0, "put and commit");
	ok(holds(s, DB_NODES, "k1", "v1"), "get what was put");
	ok(absent(s, DB_EVENTS, "k1"), "databases are separate");
	ok(absent(s, DB_NODES, "nope"), "a missing key is SHOAL_E_NOT_FOUND");
	is_int(put_str(s, DB_NODES, "k1", "v2"), 0, "put over a record");
	ok(holds(s, DB_NODES, "k1", "v2"), "the new value replaces the old");

	store_begin(s, true, &t);
	is_int(store_put(t, DB_NODES, "bin", 3, "a\0b", 3), 0,
	    "put a value holding a NUL");
	is_int(store_put(t, DB_NODES, "empty", 5, "", 0), 0,
	    "put an empty value");
	ok(store_get(t, DB_NODES, "bin", 3, &val, &vlen) == 0 && vlen == 3 &&
	        memcmp(val, "a\0b", 3) == 0,
	    "a write transaction reads its own writes");
	ok(store_get(t, DB_NODES, "empty", 5, &val, &vlen) == 0 && vlen == 0,
	    "an empty value reads back empty");
	is_int(store_get(t, DB_NODES, "", 0, &val, &vlen), -EINVAL,
	    "get with an empty key is -EINVAL");
	is_int(store_put(t, DB_NODES, "", 0, "v", 1), -EINVAL,
	    "put with an empty key is -EINVAL");
	memset(big, 'k', sizeof big);
	is_int(store_put(t, DB_NODES, big, 512, "v", 1), -EINVAL,
	    "a 512-byte key is -EINVAL");
	is_int(store_put(t, DB_NODES, big, 511, "v", 1), 0,
	    "a 511-byte key is fine");
	is_int(store_commit(&t), 0, "commit");
	ok(t == NULL, "commit clears the pointer");

	store_begin(s, true, &t);
	is_int(store_del(t, DB_NODES, "bin", 3), 0, "delete");
	is_int(store_del(t, DB_NODES, "bin", 3), 0, "deleting again is fine");
	is_int(store_del(t, DB_NODES, "never", 5), 0,
	    "deleting an absent key is fine");
	store_commit(&t);
	ok(absent(s, DB_NODES, "bin"), "a committed delete is gone");
	ok(holds(s, DB_NODES, "k1", "v2"), "and other records stay");
}

static void
test_abort(store_t *s)
{
	store_txn_t *t = NULL;

	store_abort(&t);
	ok(t == NULL, "store_abort accepts a NULL transaction");

	store_begin(s, true, &t);
	store_put(t, DB_NODES, "gone", 4, "x", 1);
	store_del(t, DB_NODES, "k1", 2);
	store_abort(&t);
	ok(t == NULL, "abort clears the pointer");
	ok(absent(s, DB_NODES, "gone"), "an aborted put is discarded");
	ok(holds(s, DB_NODES, "k1", "v2"), "an aborted delete is discarded");

	/* A read transaction sees the store as it was when it began. */
	{
		store_txn_t *rt;
		const void *val;
		size_t vlen;

		store_begin(s, false, &rt);
		put_str(s, DB_NODES, "later", "x");
		is_int(store_get(rt, DB_NODES, "later", 5, &val, &vlen),
		    SHOAL_E_NOT_FOUND,
		    "a read transaction does not see later commits");
		store_abort(&rt);
		ok(holds(s, DB_NODES, "later", "x"), "a new one does");
	}
}

static void
test_messages(store_t *s)
{
	Shoal__Node node = SHOAL__NODE__INIT, *got;
	Shoal__Facts facts = SHOAL__FACTS__INIT;
	Shoal__Label l1 = SHOAL__LABEL__INIT, l2 = SHOAL__LABEL__INIT;
	Shoal__Label *ls[2] = { &l1, &l2 };
	ProtobufCMessage *m = NULL;
	store_txn_t *t;
	int r;

	node.id = "gpu-01";
	node.state = SHOAL__NODE__STATE__ONLINE;
	node.generation = 42;
	node.last_seen_ms = 1795919533120ULL;
	l1.key = "gpu";
	l1.value = "a100";
	l2.key = "rack";
	l2.value = "r3";
	node.labels = ls;
	node.n_labels = 2;
	facts.hostname = "gpu-01.example";
	facts.cpus = 64;
	facts.memory_bytes = 512ULL << 30;
	facts.os = "Debian GNU/Linux 12";
	node.facts = &facts;

	store_begin(s, true, &t);
	is_int(store_put_msg(t, DB_NODES, "gpu-01", 6, &node.base), 0,
	    "put a message");
	is_int(store_put_msg(t, DB_NODES, "", 0, &node.base), -EINVAL,
	    "put a message under an empty key is -EINVAL");
	is_int(store_commit(&t), 0, "commit it");

	store_begin(s, false, &t);
	r = store_get_msg(t, DB_NODES, "gpu-01", 6, &shoal__node__descriptor,
	    &m);
	store_abort(&t);
	is_int(r, 0, "get the message back");
	got = (Shoal__Node *)m;
	if (r == 0) {
		is_str(got->id, "gpu-01", "its id");
		is_int(got->state, SHOAL__NODE__STATE__ONLINE, "its state");
		ok(got->generation == 42 &&
		        got->last_seen_ms == 1795919533120ULL,
		    "its numbers");
		ok(got->n_labels == 2 &&
		        strcmp(got->labels[0]->key, "gpu") == 0 &&
		        strcmp(got->labels[1]->value, "r3") == 0,
		    "its labels");
		ok(got->facts && got->facts->cpus == 64 &&
		        got->facts->memory_bytes == 512ULL << 30 &&
		        strcmp(got->facts->os, "Debian GNU/Linux 12") == 0,
		    "its facts");
		ok(got->figures == NULL, "an absent submessage stays absent");
		protobuf_c_message_free_unpacked(m, NULL);
	}

	m = NULL;
	store_begin(s, false, &t);
	is_int(store_get_msg(t, DB_NODES, "gpu-02", 6, &shoal__node__descriptor,
	           &m),
	    SHOAL_E_NOT_FOUND, "get_msg of a missing key is SHOAL_E_NOT_FOUND");
	ok(m == NULL, "and writes no result");
	store_abort(&t);

	/* Field 1 as a length-delimited record running past the end. */
	put_str(s, DB_NODES, "junk", "\x0a\xff\xff\xff\x0f");
	store_begin(s, false, &t);
	is_int(
	    store_get_msg(t, DB_NODES, "junk", 4, &shoal__node__descriptor, &m),
	    SHOAL_E_STORE_CORRUPT, "a record that does not decode is corrupt");
	ok(m == NULL, "and writes no result");
	store_abort(&t);
}

static void
test_counters(store_t *s)
{
	store_txn_t *t;
	uint64_t n = 99;

	store_begin(s, true, &t);
	is_int(store_get_u64(t, DB_NODES, "ctr", &n), 0,
	    "reading an absent counter succeeds");
	is_int(n, 0, "an absent counter reads 0");
	is_int(store_put_u64(t, DB_NODES, "ctr", 1ULL << 40), 0, "put_u64");
	store_get_u64(t, DB_NODES, "ctr", &n);
	ok(n == 1ULL << 40, "a counter round-trips");
	store_put_u64(t, DB_NODES, "max", UINT64_MAX);
	store_get_u64(t, DB_NODES, "max", &n);
	ok(n == UINT64_MAX, "2^64 - 1 round-trips");
	is_int(store_get_u64(t, DB_NODES, "k1", &n), SHOAL_E_STORE_CORRUPT,
	    "a counter of the wrong size is corrupt");
	store_commit(&t);

	store_begin(s, false, &t);
	n = 0;
	store_get_u64(t, DB_NODES, "ctr", &n);
	store_abort(&t);
	ok(n == 1ULL << 40, "a committed counter persists");
}

static void
test_walks(store_t *s)
{
	store_txn_t *t;
	seen_t seen;
	uint8_t key[8];
	uint64_t n = 99;

	store_begin(s, false, &t);
	memset(&seen, 0, sizeof seen);
	is_int(store_foreach(t, DB_EVENTS, NULL, 0, collect, &seen), 0,
	    "walking an empty database succeeds");
	is_int(seen.n, 0, "and visits nothing");
	is_int(store_foreach_reverse(t, DB_EVENTS, collect, &seen), 0,
	    "so does walking it backwards");
	is_int(seen.n, 0, "visiting nothing");
	store_count(t, DB_EVENTS, &n);
	is_int(n, 0, "an empty database counts 0");
	store_abort(&t);

	/* Inserted out of order; big-endian keys sort numerically. */
	store_begin(s, true, &t);
	for (uint64_t i = 5; i >= 1; i--) {
		char v = (char)('0' + i);

		store_key_u64(i * 10, key);
		store_put(t, DB_EVENTS, key, 8, &v, 1);
	}
	store_key_u64(1ULL << 32, key);
	store_put(t, DB_EVENTS, key, 8, "B", 1);
	store_commit(&t);

	store_begin(s, false, &t);
	memset(&seen, 0, sizeof seen);
	is_int(store_foreach(t, DB_EVENTS, NULL, 0, collect, &seen), 0,
	    "foreach succeeds");
	is_str(keys_of(&seen), "10 20 30 40 50 4294967296",
	    "foreach walks in key order");
	ok(memcmp(seen.vals, "12345B", 6) == 0, "with each key's value");

	memset(&seen, 0, sizeof seen);
	store_key_u64(30, key);
	store_foreach(t, DB_EVENTS, key, 8, collect, &seen);
	is_str(keys_of(&seen), "30 40 50 4294967296", "foreach from a key");
	memset(&seen, 0, sizeof seen);
	store_key_u64(25, key);
	store_foreach(t, DB_EVENTS, key, 8, collect, &seen);
	is_str(keys_of(&seen), "30 40 50 4294967296",
	    "foreach from an absent key starts at the next one");
	memset(&seen, 0, sizeof seen);
	store_key_u64(UINT64_MAX, key);
	is_int(store_foreach(t, DB_EVENTS, key, 8, collect, &seen), 0,
	    "foreach from past the end succeeds");
	is_int(seen.n, 0, "and visits nothing");

	memset(&seen, 0, sizeof seen);
	seen.stop_at = 20;
	is_int(store_foreach(t, DB_EVENTS, NULL, 0, collect, &seen), 0,
	    "a visitor that stops gives 0");
	is_str(keys_of(&seen), "10 20", "and nothing after it is visited");

	memset(&seen, 0, sizeof seen);
	seen.fail = -EIO;
	is_int(store_foreach(t, DB_EVENTS, NULL, 0, collect, &seen), -EIO,
	    "a visitor's error is returned");
	is_int(seen.n, 1, "and stops the walk");
	memset(&seen, 0, sizeof seen);
	seen.fail = SHOAL_E_INVALID;
	is_int(store_foreach_reverse(t, DB_EVENTS, collect, &seen),
	    SHOAL_E_INVALID, "and from a reverse walk too");

	memset(&seen, 0, sizeof seen);
	is_int(store_foreach_reverse(t, DB_EVENTS, collect, &seen), 0,
	    "foreach_reverse succeeds");
	is_str(keys_of(&seen), "4294967296 50 40 30 20 10",
	    "foreach_reverse walks backwards");
	memset(&seen, 0, sizeof seen);
	seen.stop_at = 40;
	store_foreach_reverse(t, DB_EVENTS, collect, &seen);
	is_str(keys_of(&seen), "4294967296 50 40",
	    "a reverse walk can stop early");

	is_int(store_count(t, DB_EVENTS, &n), 0, "store_count succeeds");
	is_int(n, 6, "and counts the records");
	store_abort(&t);

	store_key_u64(0x0102030405060708ULL, key);
	ok(memcmp(key, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) == 0,
	    "store_key_u64 is big-endian");
	ok(store_key_to_u64(key) == 0x0102030405060708ULL,
	    "store_key_to_u64 reads it back");
}

static void
test_reopen(const char *path)
{
	store_t *s = NULL;

	is_int(store_open(path, dbs, 2, 3, MAP_BYTES, &s), 0, "reopen");
	is_int(store_schema_found(s), 3, "the schema version was recorded");
	ok(holds(s, DB_NODES, "k1", "v2"), "records survive a reopen");
	ok(absent(s, DB_NODES, "gone"), "aborted writes stay gone");
	store_close(&s);
	ok(s == NULL, "close clears the pointer");
	store_close(&s);
	ok(1, "closing NULL is harmless");

	s = NULL;
	is_int(store_open(path, dbs, 2, 2, MAP_BYTES, &s), SHOAL_E_SCHEMA,
	    "a store written with a newer schema is refused");
	ok(s == NULL, "and nothing is returned");

	is_int(store_open(path, dbs, 2, 4, MAP_BYTES, &s), 0,
	    "a newer shoal opens an older store");
	is_int(store_schema_found(s), 3,
	    "store_schema_found reports the version that was on disk");
	ok(holds(s, DB_NODES, "k1", "v2"), "with its records");
	store_close(&s);
	is_int(store_open(path, dbs, 2, 3, MAP_BYTES, &s), SHOAL_E_SCHEMA,
	    "the older shoal is refused once the newer one wrote the store");
	is_int(store_open(path, dbs, 2, 4, MAP_BYTES, &s), 0,
	    "the newer one opens it again");
	is_int(store_schema_found(s), 4, "and finds its own version");
	store_close(&s);
}

static void
test_full(const char *path)
{
	store_t *s = NULL;
	store_txn_t *t;
	char k[16], v[512];
	uint64_t n = 0;
	int r = 0, i, kept = 1;

	is_int(store_open(path, dbs, 2, 1, 64 << 10, &s), 0,
	    "open a 64 KiB store");
	is_int(put_str(s, DB_NODES, "first", "kept"), 0, "write a record");
	memset(v, 'v', sizeof v);
	for (i = 0; i < 10000 && r == 0; i++) {
		snprintf(k, sizeof k, "k%d", i);
		r = store_begin(s, true, &t);
		if (r < 0)
			break;
		r = store_put(t, DB_NODES, k, strlen(k), v, sizeof v);
		if (r == 0)
			r = store_commit(&t);
		else
			store_abort(&t);
	}
	is_int(r, SHOAL_E_STORE_FULL, "filling the map gives STORE_FULL");
	if (!ok(i > 1, "after some records went in"))
		diag("STORE_FULL after %d records", i);
	/* Records k0 .. k(i-2) were committed; k(i-1) was not. */
	ok(holds(s, DB_NODES, "first", "kept"),
	    "a record from before stays readable");
	store_begin(s, false, &t);
	for (int j = 0; j < i - 1; j++) {
		const void *val;
		size_t vlen;

		snprintf(k, sizeof k, "k%d", j);
		if (store_get(t, DB_NODES, k, strlen(k), &val, &vlen) != 0 ||
		    vlen != sizeof v || memcmp(val, v, vlen) != 0)
			kept = 0;
	}
	store_count(t, DB_NODES, &n);
	store_abort(&t);
	ok(kept, "every committed record is intact");
	snprintf(k, sizeof k, "k%d", i - 1);
	ok(absent(s, DB_NODES, k), "the refused one is not there");
	is_int(n, i, "the count is what was committed");
	store_close(&s);

	is_int(store_open(path, dbs, 2, 1, 64 << 10, &s), 0,
	    "a full store reopens");
	ok(holds(s, DB_NODES, "first", "kept"), "with its records");
	store_close(&s);
	is_int(store_open(path, dbs, 2, 1, MAP_BYTES, &s), 0,
	    "and reopens with a bigger map");
	is_int(put_str(s, DB_NODES, "more", "room"), 0,
	    "which takes writes again");
	store_close(&s);
}

int
main(void)
{
	char path[300], cmd[320];
	store_t *s = NULL, *s2 = NULL;
	struct stat st;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/state", dir);
	is_int(store_open(path, dbs, 2, 3, MAP_BYTES, &s), 0,
	    "open a new store");
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode),
	    "store_open creates its directory");
	is_int(store_schema_found(s), 0, "a new store has no schema yet");
	is_int(store_open(path, dbs, 2, 3, MAP_BYTES, &s2),
	    SHOAL_E_STORE_LOCKED, "a second open of the same dir is refused");
	ok(s2 == NULL, "and returns nothing");

	test_raw(s);
	test_abort(s);
	test_messages(s);
	test_counters(s);
	test_walks(s);
	store_close(&s);
	test_reopen(path);

	snprintf(path, sizeof path, "%s/full", dir);
	test_full(path);

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
