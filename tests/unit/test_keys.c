/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coordinator/keys.c, the keyring: a new key waits, a token accepts it, a
 * key binds one node and a node one key, a rejected key stays refused,
 * the cap on pending keys (which a token passes), operators' accept,
 * reject and delete, everything across a reopen of the store, the sorted
 * list, and the operators' allow-list file: parsed, refused line by line,
 * read again when it changes.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/store.h"
#include "common/util.h"
#include "coordinator/keys.h"
#include "coordinator/registry.h"
#include "tests/tap.h"

static char root[64];

typedef struct {
	char pub[CURVE_KEY_LEN + 1];
} pubkey_t;

static pubkey_t
new_key(void)
{
	pubkey_t k;
	char sec[CURVE_KEY_LEN + 1];

	if (zmq_curve_keypair(k.pub, sec) != 0)
		abort();
	return k;
}

static int
open_all(store_t **store, keyring_t **kr)
{
	if (store_open(root, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	        1 << 26, store) < 0)
		return -1;
	return keyring_open(*store, kr);
}

static void
close_all(store_t **store, keyring_t **kr)
{
	keyring_close(kr);
	store_close(store);
}

static const char *
state_of(keyring_t *kr, const char *node)
{
	const Shoal__NodeKey *e = keyring_by_node(kr, node);

	return e ? e->state : "(none)";
}

static keyring_verdict_t
enrol(keyring_t *kr, const char *node, const char *key, int token_ok,
    int *ret_r, char *why, size_t whylen)
{
	keyring_verdict_t v = (keyring_verdict_t)-1;
	int r =
	    keyring_enrol(kr, node, key, "10.0.0.9", token_ok, &v, why, whylen);

	if (ret_r)
		*ret_r = r;
	return v;
}

/* Writes text to path; then sets its modification time to sec (0: keep
 * what the write gave it). */
static void
put_file(const char *path, const char *text, time_t sec)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	if (sec) {
		struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };

		utimensat(AT_FDCWD, path, ts, 0);
	}
}

static void
test_enrol(keyring_t *kr, pubkey_t *k1)
{
	pubkey_t k2 = new_key(), k3 = new_key(), k4 = new_key(), k5 = new_key();
	const Shoal__NodeKey *e;
	Shoal__NodeKey *got = NULL;
	keyring_verdict_t v;
	char why[512], err[512];
	uint64_t first_seen;
	int r;

	*k1 = new_key();
	is_int(keyring_pending(kr), 0, "an empty keyring has none pending");
	ok(keyring_by_node(kr, "node-1") == NULL &&
	        keyring_by_key(kr, k1->pub) == NULL,
	    "and knows no node or key");
	ok(keyring_by_key(kr, "") == NULL && keyring_by_key(kr, NULL) == NULL,
	    "nor an empty key");

	why[0] = '\0';
	v = enrol(kr, "node-1", k1->pub, 0, &r, why, sizeof why);
	is_int(r, 0, "enrol a new key");
	is_int(v, KEYRING_PENDING, "a new key without a token is pending");
	ok(strstr(why, "shoalctl keys accept node-1") != NULL,
	    "why says how to accept it");
	e = keyring_by_node(kr, "node-1");
	ok(e && strcmp(e->key, k1->pub) == 0 &&
	        strcmp(e->state, "pending") == 0 && e->by[0] == '\0' &&
	        strcmp(e->address, "10.0.0.9") == 0 && e->first_seen_ms > 0,
	    "it is stored pending, with its address and when it came");
	ok(e && keyring_by_key(kr, k1->pub) == e,
	    "and found by its key as the same entry");
	is_int(keyring_pending(kr), 1, "one key pending");
	first_seen = e ? e->first_seen_ms : 0;

	v = enrol(kr, "node-1", k1->pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_PENDING, "the same key again: pending");
	is_int(keyring_pending(kr), 1, "still one pending, not two");
	{
		Shoal__NodeKey **list;
		size_t n;

		keyring_list(kr, NULL, &list, &n);
		is_int(n, 1, "and one entry in the list");
		free(list);
	}

	v = enrol(kr, "node-1", k1->pub, 1, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_ACCEPTED,
	    "with the enrollment token: accepted");
	ok(strstr(why, "enrollment token") != NULL, "why says by the token");
	e = keyring_by_node(kr, "node-1");
	ok(e && strcmp(e->state, "accepted") == 0 &&
	        strcmp(e->by, "enrollment token") == 0,
	    "stored accepted by \"enrollment token\"");
	ok(e && e->first_seen_ms == first_seen,
	    "first_seen is kept when the state changes");
	ok(e && e->updated_ms >= e->first_seen_ms, "updated_ms moves on");
	is_int(keyring_pending(kr), 0, "none pending");

	v = enrol(kr, "node-1", k1->pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_ACCEPTED,
	    "an accepted key without a token: accepted");

	why[0] = '\0';
	v = enrol(kr, "node-2", k1->pub, 1, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_REFUSED,
	    "the same key for another node: refused, token or not");
	ok(strstr(why, "'node-1'") != NULL,
	    "why names the node it is bound to");
	ok(keyring_by_node(kr, "node-2") == NULL, "node-2 is not created");
	ok(strcmp(keyring_by_key(kr, k1->pub)->node, "node-1") == 0,
	    "and the key stays node-1's");

	why[0] = '\0';
	v = enrol(kr, "node-1", k2.pub, 1, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_REFUSED,
	    "another key for a node with a key: refused, token or not");
	ok(strstr(why, "keys delete") != NULL, "why says 'keys delete'");
	ok(keyring_by_key(kr, k2.pub) == NULL, "the other key is not stored");
	ok(strcmp(keyring_by_node(kr, "node-1")->key, k1->pub) == 0,
	    "node-1 keeps its key");

	/* Reject. */
	enrol(kr, "node-3", k3.pub, 0, &r, why, sizeof why);
	is_int(keyring_pending(kr), 1, "node-3 pending");
	r = keyring_control(kr, "node-3", SHOAL__KEY_CONTROL__ACTION__REJECT,
	    NULL, "alice@host", &got, err, sizeof err);
	is_int(r, 0, "keys reject node-3");
	ok(got && strcmp(got->state, "rejected") == 0 &&
	        strcmp(got->by, "alice@host") == 0 &&
	        strcmp(got->key, k3.pub) == 0 &&
	        strcmp(got->node, "node-3") == 0,
	    "returns the entry rejected by alice@host");
	ok(got && got != keyring_by_node(kr, "node-3"),
	    "as a copy the caller owns");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;
	is_str(state_of(kr, "node-3"), "rejected", "node-3 is rejected");
	is_int(keyring_pending(kr), 0, "and no longer pending");
	why[0] = '\0';
	v = enrol(kr, "node-3", k3.pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_REFUSED, "a rejected key: refused");
	ok(strstr(why, "rejected by alice@host") != NULL,
	    "why says who rejected it");
	v = enrol(kr, "node-3", k3.pub, 1, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_REFUSED,
	    "a rejected key with the token: still refused");
	is_str(state_of(kr, "node-3"), "rejected", "and still rejected");

	/* Accept. */
	enrol(kr, "node-4", k4.pub, 0, &r, why, sizeof why);
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__ACCEPT,
	    "", "bob@host", &got, err, sizeof err);
	is_int(r, 0, "keys accept node-4");
	ok(got && strcmp(got->state, "accepted") == 0 &&
	        strcmp(got->by, "bob@host") == 0,
	    "returns the entry accepted by bob@host");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;
	e = keyring_by_node(kr, "node-4");
	ok(e && strcmp(e->state, "accepted") == 0 &&
	        strcmp(e->by, "bob@host") == 0 &&
	        keyring_by_key(kr, k4.pub) == e,
	    "node-4 is accepted, by both indexes");
	is_int(keyring_pending(kr), 0, "none pending");
	v = enrol(kr, "node-4", k4.pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_ACCEPTED, "node-4 may speak");

	/* only_key must be the node's key. */
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__REJECT,
	    k2.pub, "bob@host", &got, err, sizeof err);
	is_int(r, SHOAL_E_INVALID, "reject naming another key: invalid");
	ok(got == NULL && strstr(err, "nothing changed"),
	    "no entry returned, and err says nothing changed");
	is_str(state_of(kr, "node-4"), "accepted", "node-4 still accepted");
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__DELETE,
	    k2.pub, "bob@host", &got, err, sizeof err);
	ok(r == SHOAL_E_INVALID && keyring_by_node(kr, "node-4"),
	    "delete naming another key: invalid, nothing deleted");
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__REJECT,
	    k4.pub, "bob@host", &got, err, sizeof err);
	ok(r == 0 && got && strcmp(got->state, "rejected") == 0,
	    "reject naming the node's own key: done");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;

	r = keyring_control(kr, "node-9", SHOAL__KEY_CONTROL__ACTION__ACCEPT,
	    NULL, "bob@host", &got, err, sizeof err);
	is_int(r, SHOAL_E_NOT_FOUND, "a node without a key: not found");
	ok(got == NULL && strstr(err, "node-9"), "err names the node");

	/* Delete forgets both ways, so the key may enrol again. */
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__DELETE,
	    NULL, "bob@host", &got, err, sizeof err);
	is_int(r, 0, "keys delete node-4");
	ok(got && strcmp(got->node, "node-4") == 0 &&
	        strcmp(got->key, k4.pub) == 0 &&
	        strcmp(got->state, "rejected") == 0,
	    "returns the entry as it was");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;
	ok(keyring_by_node(kr, "node-4") == NULL &&
	        keyring_by_key(kr, k4.pub) == NULL,
	    "gone by node and by key");
	v = enrol(kr, "node-4", k4.pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_PENDING,
	    "the deleted key enrols again, pending");
	is_int(keyring_pending(kr), 1, "one pending");
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__DELETE,
	    NULL, "bob@host", &got, err, sizeof err);
	ok(r == 0 && got && strcmp(got->state, "pending") == 0,
	    "delete a pending key");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;
	is_int(keyring_pending(kr), 0, "none pending after deleting it");
	v = enrol(kr, "node-4", k5.pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_PENDING,
	    "the deleted node enrols with another key");
	ok(keyring_by_key(kr, k4.pub) == NULL,
	    "and its old key stays forgotten");
	r = keyring_control(kr, "node-4", SHOAL__KEY_CONTROL__ACTION__ACCEPT,
	    k5.pub, NULL, &got, err, sizeof err);
	ok(r == 0 && got && strcmp(got->state, "accepted") == 0 &&
	        got->by[0] == '\0',
	    "accept with no operator named: by is empty");
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	got = NULL;
	ok(keyring_by_node(kr, "node-4")->first_seen_ms > 0, "first_seen set");
}

static void
test_cap(keyring_t *kr)
{
	keyring_verdict_t v;
	char node[32], why[512], err[512];
	pubkey_t k;
	Shoal__NodeKey *got = NULL;
	size_t failures = 0;
	int r;

	is_int(keyring_pending(kr), 0, "the cap test starts with none pending");
	for (int i = 0; i < KEYRING_PENDING_MAX; i++) {
		snprintf(node, sizeof node, "cap-%04d", i);
		k = new_key();
		v = enrol(kr, node, k.pub, 0, &r, why, sizeof why);
		failures += r != 0 || v != KEYRING_PENDING;
	}
	is_int(failures, 0, "KEYRING_PENDING_MAX new keys are pending");
	is_int(keyring_pending(kr), KEYRING_PENDING_MAX, "the keyring is full");

	k = new_key();
	why[0] = '\0';
	v = enrol(kr, "cap-over", k.pub, 0, &r, why, sizeof why);
	is_int(r, SHOAL_E_LIMIT, "one more new key: SHOAL_E_LIMIT");
	is_int(v, KEYRING_REFUSED, "refused");
	ok(strstr(why, "cap-over") != NULL, "why names the node");
	ok(keyring_by_node(kr, "cap-over") == NULL &&
	        keyring_by_key(kr, k.pub) == NULL,
	    "and it is not stored");
	is_int(keyring_pending(kr), KEYRING_PENDING_MAX, "still full");

	v = enrol(kr, "cap-0007", keyring_by_node(kr, "cap-0007")->key, 0, &r,
	    why, sizeof why);
	ok(r == 0 && v == KEYRING_PENDING,
	    "a key already pending asks again: pending, not refused");

	v = enrol(kr, "cap-token", k.pub, 1, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_ACCEPTED,
	    "a new key with the token enrols although the keyring is full");
	is_str(state_of(kr, "cap-token"), "accepted", "and is accepted");

	r = keyring_control(kr, "cap-0000", SHOAL__KEY_CONTROL__ACTION__ACCEPT,
	    NULL, "ops", &got, err, sizeof err);
	if (got)
		shoal__node_key__free_unpacked(got, NULL);
	is_int(keyring_pending(kr), KEYRING_PENDING_MAX - 1,
	    "accepting one frees a place");
	k = new_key();
	v = enrol(kr, "cap-over", k.pub, 0, &r, why, sizeof why);
	ok(r == 0 && v == KEYRING_PENDING, "and the next new key waits");
	is_int(keyring_pending(kr), KEYRING_PENDING_MAX, "full again");
}

static void
test_list(keyring_t *kr)
{
	Shoal__NodeKey **list;
	size_t n, total, unsorted = 0;

	keyring_list(kr, NULL, &list, &n);
	total = n;
	/* node-1, node-3, node-4, KEYRING_PENDING_MAX cap-NNNN, cap-over
	 * and cap-token */
	is_int(n, 3 + KEYRING_PENDING_MAX + 2, "keyring_list: every entry");
	for (size_t i = 1; i < n; i++)
		unsorted += strcmp(list[i - 1]->node, list[i]->node) >= 0;
	is_int(unsorted, 0, "in node order");
	ok(n && strcmp(list[0]->node, "cap-0000") == 0 &&
	        strcmp(list[n - 1]->node, "node-4") == 0,
	    "from cap-0000 to node-4");
	free(list);

	keyring_list(kr, "node-3", &list, &n);
	ok(n == 1 && strcmp(list[0]->node, "node-3") == 0 &&
	        strcmp(list[0]->state, "rejected") == 0,
	    "keyring_list of node-3: its entry alone");
	free(list);
	keyring_list(kr, "node-77", &list, &n);
	is_int(n, 0, "of an unknown node: none");
	free(list);
	keyring_list(kr, "", &list, &n);
	is_int(n, total, "of \"\": every entry");
	free(list);
}

/* Everything written before a reopen, as it was. */
static void
test_reopen(store_t **store, keyring_t **kr, const char *k1)
{
	Shoal__NodeKey *before[3] = { NULL, NULL, NULL };
	static const char *const nodes[] = { "node-1", "node-3", "cap-0005" };
	size_t pending = keyring_pending(*kr), same = 0;

	for (size_t i = 0; i < 3; i++) {
		const Shoal__NodeKey *e = keyring_by_node(*kr, nodes[i]);
		size_t len = e ? shoal__node_key__get_packed_size(e) : 0;
		uint8_t *buf = xmalloc(len + 1);

		if (e) {
			shoal__node_key__pack(e, buf);
			before[i] = shoal__node_key__unpack(NULL, len, buf);
		}
		free(buf);
	}
	close_all(store, kr);
	ok(*kr == NULL && *store == NULL, "keyring and store closed");
	is_int(open_all(store, kr), 0, "reopened");
	if (!*kr)
		return;
	is_int(keyring_pending(*kr), pending, "the pending count survives");
	for (size_t i = 0; i < 3; i++) {
		const Shoal__NodeKey *e = keyring_by_node(*kr, nodes[i]);

		if (before[i] && e && strcmp(e->key, before[i]->key) == 0 &&
		    strcmp(e->state, before[i]->state) == 0 &&
		    strcmp(e->by, before[i]->by) == 0 &&
		    strcmp(e->address, before[i]->address) == 0 &&
		    e->first_seen_ms == before[i]->first_seen_ms &&
		    e->updated_ms == before[i]->updated_ms &&
		    keyring_by_key(*kr, e->key) == e)
			same++;
		else
			diag("%s differs after the reopen", nodes[i]);
		if (before[i])
			shoal__node_key__free_unpacked(before[i], NULL);
	}
	is_int(same, 3,
	    "accepted, rejected and pending entries survive with by and "
	    "times");
	is_str(state_of(*kr, "node-1"), "accepted", "node-1 is accepted");
	is_str(keyring_by_node(*kr, "node-1")->by, "enrollment token",
	    "by the enrollment token");
	is_str(state_of(*kr, "node-3"), "rejected", "node-3 is rejected");
	is_str(keyring_by_node(*kr, "node-3")->by, "alice@host",
	    "by alice@host");
	ok(keyring_by_key(*kr, k1) &&
	        strcmp(keyring_by_key(*kr, k1)->node, "node-1") == 0,
	    "node-1's key is found by key after the reopen");
	{
		keyring_verdict_t v;
		char why[512];
		int r;

		v = enrol(*kr, "node-2", k1, 1, &r, why, sizeof why);
		ok(r == 0 && v == KEYRING_REFUSED,
		    "and is still bound to node-1 only");
	}
}

static void
test_operators(keyring_t *kr)
{
	char *path = xasprintf("%s/operators", root);
	char *missing = xasprintf("%s/no-operators", root);
	char name[64], err[512], *text;
	pubkey_t a = new_key(), b = new_key(), c = new_key(), d = new_key();
	time_t t = 1700000000;

	snprintf(err, sizeof err, "stale");
	is_int(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err),
	    0, "no operators file: nobody is an operator");
	is_str(err, "", "and no error");
	keyring_set_operators_file(kr, NULL);
	snprintf(err, sizeof err, "stale");
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            0 &&
	        err[0] == '\0',
	    "a NULL path: 0 and no error");

	text = xasprintf("# shoal operators\n"
	                 "%s alice\n"
	                 "\n"
	                 "   %s\tbob@host.example  \n"
	                 "\t# an indented comment\n"
	                 "%s carol.ops-1\r\n",
	    a.pub, b.pub, c.pub);
	put_file(path, text, t);
	free(text);
	keyring_set_operators_file(kr, path);
	name[0] = '\0';
	is_int(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err),
	    1, "alice's key is an operator's");
	is_str(name, "alice", "named alice");
	is_str(err, "", "the file has no error");
	ok(keyring_operator(kr, b.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strcmp(name, "bob@host.example") == 0,
	    "an indented line with a tab and trailing blanks: "
	    "bob@host.example");
	ok(keyring_operator(kr, c.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strcmp(name, "carol.ops-1") == 0,
	    "a CRLF line: carol.ops-1");
	is_int(keyring_operator(kr, d.pub, name, sizeof name, err, sizeof err),
	    0, "another key is not an operator's");
	is_int(keyring_operator(kr, "", name, sizeof name, err, sizeof err), 0,
	    "nor is an empty key");

	/* Same size, a new modification time: read again. */
	text = xasprintf("# shoal operators\n"
	                 "%s alina\n"
	                 "\n"
	                 "   %s\tbob@host.example  \n"
	                 "\t# an indented comment\n"
	                 "%s carol.ops-1\r\n",
	    a.pub, b.pub, d.pub);
	put_file(path, text, ++t);
	free(text);
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strcmp(name, "alina") == 0,
	    "an edit of the same size with a new mtime is read again");
	is_int(keyring_operator(kr, c.pub, name, sizeof name, err, sizeof err),
	    0, "carol's key, edited out, is no longer an operator's");
	is_int(keyring_operator(kr, d.pub, name, sizeof name, err, sizeof err),
	    1, "the key that replaced it is");

	/* Same size and the same mtime: the list read before stands (the
	 * file is not read at every message). */
	text = xasprintf("# shoal operators\n"
	                 "%s alice\n"
	                 "\n"
	                 "   %s\tbob@host.example  \n"
	                 "\t# an indented comment\n"
	                 "%s carol.ops-1\r\n",
	    a.pub, b.pub, d.pub);
	put_file(path, text, t);
	free(text);
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strcmp(name, "alina") == 0,
	    "an edit that changes neither size nor mtime is not seen");

	/* Another size, the same mtime: read again. */
	text = xasprintf("%s dave\n", c.pub);
	put_file(path, text, t);
	free(text);
	ok(keyring_operator(kr, c.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strcmp(name, "dave") == 0,
	    "a rewrite of another size is read again");
	is_int(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err),
	    0, "and alice's key, gone from it, is refused");

	/* Line 3 of each file is bad: b's key (when with_key) then rest. */
	static const struct {
		int with_key;
		const char *rest, *name;
	} bad[] = {
		{ 0, "notakey eve\n", "a bad key" },
		{ 1, "x eve\n", "a key of 41 characters" },
		{ 1, "\n", "a key without a name" },
		{ 1, "   \n", "a key and only blanks" },
		{ 1, " ev e\n", "a name with a space" },
		{ 1, " ev!e\n", "a name with '!'" },
		{ 1, " ev/e\n", "a name with '/'" },
		{ 1,
		    " 0123456789012345678901234567890123456789012345678901"
		    "234567890123\n",
		    "a name of 64 characters" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char want[600];

		text = xasprintf("# operators\n%s alice\n%s%s", a.pub,
		    bad[i].with_key ? b.pub : "", bad[i].rest);
		put_file(path, text, ++t);
		free(text);
		err[0] = '\0';
		snprintf(want, sizeof want, "%s:3:", path);
		okf(keyring_operator(kr, a.pub, name, sizeof name, err,
		        sizeof err) == 0,
		    "%s: the whole list is refused (alice too)", bad[i].name);
		okf(strstr(err, want) != NULL,
		    "%s: err names the file and line 3", bad[i].name);
		if (!strstr(err, want))
			diag("err: %s", err);
	}
	/* A name of 63 characters is fine. */
	text = xasprintf("%s 012345678901234567890123456789012345678901234567"
	                 "890123456789012\n",
	    b.pub);
	put_file(path, text, ++t);
	free(text);
	ok(keyring_operator(kr, b.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        strlen(name) == 63,
	    "a name of 63 characters is taken whole");
	text = xasprintf("%s ev!e\n", b.pub);
	put_file(path, text, ++t);
	free(text);
	keyring_operator(kr, b.pub, name, sizeof name, err, sizeof err);
	err[0] = '\0';
	is_int(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err),
	    0, "asked again, the bad file still admits nobody");
	is_str(err, "", "and says so only once");
	{
		char line[1024];

		memset(line, 'x', sizeof line - 2);
		line[sizeof line - 2] = '\n';
		line[sizeof line - 1] = '\0';
		text = xasprintf("%s alice\n%s", a.pub, line);
		put_file(path, text, ++t);
		free(text);
		err[0] = '\0';
		ok(keyring_operator(kr, a.pub, name, sizeof name, err,
		       sizeof err) == 0 &&
		        strstr(err, "line too long"),
		    "a line too long refuses the file");
	}

	/* Put right, it is read again. */
	text = xasprintf("%s alice\n", a.pub);
	put_file(path, text, ++t);
	free(text);
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            1 &&
	        err[0] == '\0',
	    "the file put right is read again");

	/* Removed, or never there. */
	unlink(path);
	err[0] = '\0';
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            0 &&
	        strstr(err, "cannot read") && strstr(err, path),
	    "a removed file admits nobody and err says it cannot be read");
	keyring_set_operators_file(kr, missing);
	err[0] = '\0';
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            0 &&
	        strstr(err, "cannot read") && strstr(err, missing),
	    "a missing file: 0, and err names it");
	keyring_set_operators_file(kr, NULL);
	snprintf(err, sizeof err, "stale");
	ok(keyring_operator(kr, a.pub, name, sizeof name, err, sizeof err) ==
	            0 &&
	        err[0] == '\0',
	    "set back to NULL: 0 and no error");

	free(path);
	free(missing);
}

/* The token takes a node id over from a pending key of another (anyone
 * may ask for an id first), never from an accepted or rejected one. */
static void
test_takeover(keyring_t *kr)
{
	pubkey_t squatter = new_key(), real = new_key(), third = new_key();
	const Shoal__NodeKey *e;
	Shoal__NodeKey *copy;
	size_t before;
	char why[512];
	int r;

	is_int(enrol(kr, "taken", squatter.pub, 0, &r, why, sizeof why),
	    KEYRING_PENDING, "a squatter's key asks for node 'taken'");
	before = keyring_pending(kr);
	is_int(enrol(kr, "taken", real.pub, 0, &r, why, sizeof why),
	    KEYRING_REFUSED, "without the token another key is refused");
	is_int(enrol(kr, "taken", real.pub, 1, &r, why, sizeof why),
	    KEYRING_ACCEPTED, "with the token it takes the pending id over");
	e = keyring_by_node(kr, "taken");
	ok(e && strcmp(e->key, real.pub) == 0, "  the node is bound to it");
	ok(!keyring_by_key(kr, squatter.pub), "  the squatter's key is gone");
	is_int((long long)keyring_pending(kr), (long long)before - 1,
	    "  one fewer key waits");
	is_int(enrol(kr, "taken", third.pub, 1, &r, why, sizeof why),
	    KEYRING_REFUSED, "an accepted id is not taken over, token or not");
	/* Leave the keyring as it was for the tests after. */
	if (keyring_control(kr, "taken", SHOAL__KEY_CONTROL__ACTION__DELETE,
	        NULL, "test", &copy, why, sizeof why) == 0)
		shoal__node_key__free_unpacked(copy, NULL);
}

int
main(void)
{
	store_t *store = NULL;
	keyring_t *kr = NULL;
	pubkey_t k1;
	char cmd[128];

	zsys_init();
	zsys_set_logstream(NULL);
	snprintf(root, sizeof root, "/tmp/shoal-test-keys.XXXXXX");
	if (!mkdtemp(root))
		return 1;
	is_int(open_all(&store, &kr), 0, "the keyring opens on a new store");
	if (!kr)
		return done_testing();
	test_enrol(kr, &k1);
	test_takeover(kr);
	test_cap(kr);
	test_list(kr);
	test_reopen(&store, &kr, k1.pub);
	if (kr)
		test_operators(kr);
	close_all(&store, &kr);

	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}
