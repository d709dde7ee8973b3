/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LMDB store wrapper: raw and protobuf records, counters, ordered
 * walks, transactions, persistence, the schema version, the one-process
 * lock, corrupt records and a full map.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/store.h"
#include "shoal.pb-c.h"
#include "tests/tap.h"

enum { DB_A, DB_B };
static const char *const dbs[] = { "a", "b" };

static int
sum_keys(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	uint64_t *sum = arg;

	*sum = *sum * 10 + store_key_to_u64(k);
	return 0;
}

static int
stop_at_two(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	uint64_t *sum = arg;

	*sum = *sum * 10 + store_key_to_u64(k);
	return store_key_to_u64(k) == 2 ? 1 : 0;
}

static int
fail_visit(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	return -EIO;
}

static void
put_str(store_t *s, unsigned db, const char *k, const char *v)
{
	store_txn_t *t;

	if (store_begin(s, true, &t) < 0)
		abort();
	store_put(t, db, k, strlen(k), v, strlen(v));
	store_commit(&t);
}

int
main(void)
{
	char dir[] = "/tmp/shoal-test-store.XXXXXX", cmd[128];
	store_t *s = NULL, *s2 = NULL;
	store_txn_t *t;
	const void *val;
	size_t vlen;
	uint64_t n, sum;
	uint8_t key[8];
	ProtobufCMessage *m;
	int r;

	if (!mkdtemp(dir))
		return 1;
	is_int(store_open(dir, dbs, 2, 3, 1 << 20, &s), 0, "open a new store");
	is_int(store_schema_found(s), 0, "a new store has no schema yet");
	is_int(store_open(dir, dbs, 2, 3, 1 << 20, &s2), SHOAL_E_STORE_LOCKED,
	    "a second open of the same dir is refused");

	/* raw records */
	put_str(s, DB_A, "k1", "v1");
	store_begin(s, false, &t);
	ok(store_get(t, DB_A, "k1", 2, &val, &vlen) == 0 && vlen == 2 &&
	        memcmp(val, "v1", 2) == 0,
	    "put then get");
	is_int(store_get(t, DB_B, "k1", 2, &val, &vlen), SHOAL_E_NOT_FOUND,
	    "databases are separate");
	is_int(store_get(t, DB_A, "nope", 4, &val, &vlen), SHOAL_E_NOT_FOUND,
	    "a missing key is SHOAL_E_NOT_FOUND");
	is_int(store_get(t, DB_A, "", 0, &val, &vlen), -EINVAL,
	    "an empty key is refused");
	store_abort(&t);
	ok(t == NULL, "abort clears the pointer");

	store_begin(s, true, &t);
	is_int(store_del(t, DB_A, "k1", 2), 0, "delete");
	is_int(store_del(t, DB_A, "k1", 2), 0, "deleting again is fine");
	store_abort(&t);
	store_begin(s, false, &t);
	is_int(store_get(t, DB_A, "k1", 2, &val, &vlen), 0,
	    "an aborted delete leaves the record");
	store_abort(&t);

	/* protobuf records */
	{
		Shoal__Node node = SHOAL__NODE__INIT;
		Shoal__Facts facts = SHOAL__FACTS__INIT;
		Shoal__Label l = SHOAL__LABEL__INIT, *ls[1] = { &l };
		Shoal__Node *got;

		node.id = "gpu-01";
		node.generation = 42;
		l.key = "gpu";
		l.value = "a100";
		node.labels = ls;
		node.n_labels = 1;
		facts.cpus = 64;
		facts.os = "Debian";
		node.facts = &facts;
		store_begin(s, true, &t);
		is_int(store_put_msg(t, DB_B, "gpu-01", 6, &node.base), 0,
		    "put a message");
		is_int(store_commit(&t), 0, "commit");
		store_begin(s, false, &t);
		r = store_get_msg(t, DB_B, "gpu-01", 6,
		    &shoal__node__descriptor, &m);
		store_abort(&t);
		is_int(r, 0, "get the message");
		got = (Shoal__Node *)m;
		ok(r == 0 && strcmp(got->id, "gpu-01") == 0 &&
		        got->generation == 42 && got->n_labels == 1 &&
		        strcmp(got->labels[0]->value, "a100") == 0 &&
		        got->facts && got->facts->cpus == 64,
		    "the message round-trips");
		if (r == 0)
			protobuf_c_message_free_unpacked(m, NULL);
	}
	put_str(s, DB_B, "junk", "\xff\xff\xff\xff\xff");
	store_begin(s, false, &t);
	is_int(store_get_msg(t, DB_B, "junk", 4, &shoal__node__descriptor, &m),
	    SHOAL_E_STORE_CORRUPT, "a record that does not decode is corrupt");
	store_abort(&t);

	/* counters */
	store_begin(s, true, &t);
	store_get_u64(t, DB_A, "ctr", &n);
	is_int(n, 0, "an absent counter reads 0");
	store_put_u64(t, DB_A, "ctr", 1ULL << 40);
	store_get_u64(t, DB_A, "ctr", &n);
	ok(n == 1ULL << 40, "a counter round-trips");
	is_int(store_get_u64(t, DB_A, "k1", &n), SHOAL_E_STORE_CORRUPT,
	    "a counter of the wrong size is corrupt");
	store_commit(&t);

	/* ordered walks over big-endian keys */
	store_begin(s, true, &t);
	for (uint64_t i = 3; i >= 1; i--) {
		store_key_u64(i, key);
		store_put(t, DB_B + 0, key, 8, "x", 1);
	}
	store_commit(&t);
	store_begin(s, true, &t);
	store_del(t, DB_B, "gpu-01", 6);
	store_del(t, DB_B, "junk", 4);
	store_commit(&t);
	store_begin(s, false, &t);
	sum = 0;
	store_foreach(t, DB_B, NULL, 0, sum_keys, &sum);
	is_int(sum, 123, "foreach walks in key order");
	sum = 0;
	store_key_u64(2, key);
	store_foreach(t, DB_B, key, 8, sum_keys, &sum);
	is_int(sum, 23, "foreach starts at a key");
	sum = 0;
	store_foreach(t, DB_B, NULL, 0, stop_at_two, &sum);
	is_int(sum, 12, "a visitor can stop early");
	is_int(store_foreach(t, DB_B, NULL, 0, fail_visit, NULL), -EIO,
	    "a visitor's error is returned");
	sum = 0;
	store_foreach_reverse(t, DB_B, sum_keys, &sum);
	is_int(sum, 321, "foreach_reverse walks backwards");
	store_count(t, DB_B, &n);
	is_int(n, 3, "count");
	store_abort(&t);
	is_int(store_key_to_u64((uint8_t[8]){ 1, 2, 3, 4, 5, 6, 7, 8 }),
	    0x0102030405060708ULL, "keys are big-endian");

	/* persistence and schema */
	store_close(&s);
	ok(s == NULL, "close clears the pointer");
	is_int(store_open(dir, dbs, 2, 3, 1 << 20, &s), 0, "reopen");
	is_int(store_schema_found(s), 3, "the schema version was recorded");
	store_begin(s, false, &t);
	is_int(store_get(t, DB_A, "k1", 2, &val, &vlen), 0,
	    "records survive a reopen");
	store_abort(&t);
	store_close(&s);
	is_int(store_open(dir, dbs, 2, 2, 1 << 20, &s), SHOAL_E_SCHEMA,
	    "a store from a newer schema is refused");
	ok(s == NULL, "and nothing is returned");

	/* a full map: the write fails cleanly, earlier data stays */
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir %s", dir, dir);
	if (system(cmd) != 0)
		return 1;
	is_int(store_open(dir, dbs, 2, 1, 64 << 10, &s), 0,
	    "open a 64 KiB store");
	put_str(s, DB_A, "first", "kept");
	r = 0;
	for (int i = 0; i < 1000 && r == 0; i++) {
		char k[16], v[512];

		snprintf(k, sizeof k, "k%d", i);
		memset(v, 'v', sizeof v);
		store_begin(s, true, &t);
		r = store_put(t, DB_A, k, strlen(k), v, sizeof v);
		if (r == 0)
			r = store_commit(&t);
		else
			store_abort(&t);
	}
	is_int(r, SHOAL_E_STORE_FULL, "filling the map gives STORE_FULL");
	store_begin(s, false, &t);
	ok(store_get(t, DB_A, "first", 5, &val, &vlen) == 0 && vlen == 4,
	    "data committed before stays readable");
	store_abort(&t);
	store_close(&s);

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
