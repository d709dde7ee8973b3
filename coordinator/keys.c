/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The keyring (keys.h): entries live in DB_KEYS by node id and in two
 * hashes, by node and by key, for the per-message check. Memory changes
 * only after the store write succeeded.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <czmq.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/keys.h"
#include "coordinator/registry.h"

#define OPERATOR_LINE_MAX 512

typedef struct operator
{
	char key[CURVE_KEY_LEN + 1];
	char name[64];
}
operator_t;

struct keyring {
	store_t *store;
	zhashx_t *by_node; /* node id -> Shoal__NodeKey (owned) */
	zhashx_t *by_key;  /* Z85 key -> the same entry */
	size_t pending;
	/* the operators' allow-list */
	char *ops_path;
	operator_t *ops;
	size_t n_ops;
	struct timespec ops_mtime;
	off_t ops_size;
	int ops_loaded;
	char *ops_error; /* why the file was not taken, until it changes */
};

static void
entry_free(void **item)
{
	if (*item)
		shoal__node_key__free_unpacked(*item, NULL);
	*item = NULL;
}

static Shoal__NodeKey *
entry_copy(const Shoal__NodeKey *k)
{
	return wire_copy(&k->base);
}

static void
index_entry(keyring_t *kr, Shoal__NodeKey *k)
{
	zhashx_update(kr->by_node, k->node, k);
	zhashx_update(kr->by_key, k->key, k);
	if (strcmp(k->state, "pending") == 0)
		kr->pending++;
}

/* Drops k (owned by by_node) from both hashes. */
static void
unindex_entry(keyring_t *kr, const char *node)
{
	Shoal__NodeKey *k = zhashx_lookup(kr->by_node, node);

	if (!k)
		return;
	if (strcmp(k->state, "pending") == 0)
		kr->pending--;
	zhashx_delete(kr->by_key, k->key);
	zhashx_delete(kr->by_node, node);
}

static int
load_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	keyring_t *kr = arg;
	Shoal__NodeKey *k = shoal__node_key__unpack(NULL, vlen, val);

	(void)key;
	(void)klen;
	if (!k)
		return SHOAL_E_STORE_CORRUPT;
	if (!node_id_valid(k->node) || !curve_key_valid(k->key) ||
	    zhashx_lookup(kr->by_key, k->key)) {
		shoal__node_key__free_unpacked(k, NULL);
		return SHOAL_E_STORE_CORRUPT;
	}
	index_entry(kr, k);
	return 0;
}

int
keyring_open(store_t *store, keyring_t **ret)
{
	keyring_t *kr = xcalloc(1, sizeof *kr);
	store_txn_t *txn = NULL;
	int r;

	kr->store = store;
	kr->by_node = zhashx_new();
	kr->by_key = zhashx_new();
	zhashx_set_destructor(kr->by_node, entry_free);
	r = store_begin(store, false, &txn);
	if (r == 0)
		r = store_foreach(txn, DB_KEYS, NULL, 0, load_one, kr);
	store_abort(&txn);
	if (r < 0) {
		keyring_close(&kr);
		return r;
	}
	*ret = kr;
	return 0;
}

void
keyring_close(keyring_t **krp)
{
	keyring_t *kr = *krp;

	if (!kr)
		return;
	zhashx_destroy(&kr->by_key);
	zhashx_destroy(&kr->by_node);
	free(kr->ops_path);
	free(kr->ops);
	free(kr->ops_error);
	free(kr);
	*krp = NULL;
}

const Shoal__NodeKey *
keyring_by_key(keyring_t *kr, const char *key)
{
	return key && key[0] ? zhashx_lookup(kr->by_key, key) : NULL;
}

const Shoal__NodeKey *
keyring_by_node(keyring_t *kr, const char *node)
{
	return zhashx_lookup(kr->by_node, node);
}

size_t
keyring_pending(keyring_t *kr)
{
	return kr->pending;
}

/* Writes k (which replaces node's entry, or is new) and then indexes a
 * copy; k stays the caller's and may borrow from the old entry. */
static int
store_entry(keyring_t *kr, const Shoal__NodeKey *k)
{
	store_txn_t *txn = NULL;
	Shoal__NodeKey *copy;
	int r = store_begin(kr->store, true, &txn);

	if (r == 0)
		r = store_put_msg(txn, DB_KEYS, k->node, strlen(k->node),
		    &k->base);
	if (r == 0)
		r = store_commit(&txn);
	store_abort(&txn);
	if (r < 0)
		return r;
	/* k may borrow the strings of the entry it replaces. */
	copy = entry_copy(k);
	unindex_entry(kr, copy->node);
	index_entry(kr, copy);
	return 0;
}

int
keyring_enrol(keyring_t *kr, const char *node, const char *key,
    const char *address, int token_ok, keyring_verdict_t *ret_verdict,
    char *why, size_t whylen)
{
	const Shoal__NodeKey *e = keyring_by_node(kr, node);
	const Shoal__NodeKey *k = keyring_by_key(kr, key);
	Shoal__NodeKey nk = SHOAL__NODE_KEY__INIT;
	char a[9], b[9];
	int r, takeover;

	if (k && strcmp(k->node, node) != 0) {
		snprintf(why, whylen,
		    "key %s is bound to node '%s' (%s), not to '%s'",
		    curve_key_short(key, a), k->node, k->state, node);
		*ret_verdict = KEYRING_REFUSED;
		return 0;
	}
	/* A pending binding proves nothing: anyone may have asked for the
	 * id first. The token does prove something, and takes it over. */
	takeover = e && strcmp(e->key, key) != 0 && token_ok &&
	    strcmp(e->state, "pending") == 0;

	if (takeover)
		e = NULL; /* store_entry() replaces it, both indexes too */
	if (e && strcmp(e->key, key) != 0) {
		snprintf(why, whylen,
		    "node '%s' is bound to another key (%s, %s), not to %s: "
		    "'shoalctl keys delete %s' forgets it",
		    node, curve_key_short(e->key, a), e->state,
		    curve_key_short(key, b), node);
		*ret_verdict = KEYRING_REFUSED;
		return 0;
	}
	if (e && strcmp(e->state, "accepted") == 0) {
		*ret_verdict = KEYRING_ACCEPTED;
		snprintf(why, whylen, "key %s accepted",
		    curve_key_short(key, a));
		return 0;
	}
	if (e && strcmp(e->state, "rejected") == 0) {
		snprintf(why, whylen, "key %s of node '%s' was rejected by %s",
		    curve_key_short(key, a), node,
		    e->by[0] ? e->by : "an operator");
		*ret_verdict = KEYRING_REFUSED;
		return 0;
	}
	if (e && !token_ok) {
		*ret_verdict = KEYRING_PENDING;
		snprintf(why, whylen,
		    "key %s of node '%s' waits for 'shoalctl keys accept %s'",
		    curve_key_short(key, a), node, node);
		return 0;
	}
	if (!e && !token_ok && kr->pending >= KEYRING_PENDING_MAX) {
		snprintf(why, whylen,
		    "%zu keys already wait for an operator: node '%s' refused "
		    "(accept or delete pending keys first)",
		    kr->pending, node);
		*ret_verdict = KEYRING_REFUSED;
		return SHOAL_E_LIMIT;
	}
	nk.node = (char *)node;
	nk.key = (char *)key;
	nk.state = (char *)(token_ok ? "accepted" : "pending");
	nk.first_seen_ms = e ? e->first_seen_ms : now_ms();
	nk.updated_ms = now_ms();
	nk.by = (char *)(token_ok ? "enrollment token" : "");
	nk.address = (char *)(address ? address : "");
	r = store_entry(kr, &nk);
	if (r < 0)
		return r;
	if (token_ok) {
		*ret_verdict = KEYRING_ACCEPTED;
		snprintf(why, whylen,
		    "key %s of node '%s' accepted with the enrollment token",
		    curve_key_short(key, a), node);
	} else {
		*ret_verdict = KEYRING_PENDING;
		snprintf(why, whylen,
		    "key %s of node '%s' is new: it waits for 'shoalctl keys "
		    "accept %s'",
		    curve_key_short(key, a), node, node);
	}
	return 0;
}

int
keyring_control(keyring_t *kr, const char *node,
    Shoal__KeyControl__Action action, const char *only_key, const char *by,
    Shoal__NodeKey **ret_key, char *err, size_t errlen)
{
	const Shoal__NodeKey *e = keyring_by_node(kr, node);
	Shoal__NodeKey nk;
	store_txn_t *txn = NULL;
	char a[9];
	int r;

	if (!e) {
		snprintf(err, errlen,
		    "node '%s' has no key: it has not asked to enrol", node);
		return SHOAL_E_NOT_FOUND;
	}
	if (only_key && only_key[0] && strcmp(only_key, e->key) != 0) {
		snprintf(err, errlen,
		    "node '%s' holds key %s (%s), not the key given: nothing "
		    "changed",
		    node, curve_key_short(e->key, a), e->state);
		return SHOAL_E_INVALID;
	}
	if (action == SHOAL__KEY_CONTROL__ACTION__DELETE) {
		r = store_begin(kr->store, true, &txn);
		if (r == 0)
			r = store_del(txn, DB_KEYS, node, strlen(node));
		if (r == 0)
			r = store_commit(&txn);
		store_abort(&txn);
		if (r < 0) {
			snprintf(err, errlen, "cannot delete the key: %s",
			    shoal_strerror(r));
			return r;
		}
		*ret_key = entry_copy(e);
		unindex_entry(kr, node);
		return 0;
	}
	nk = *e;
	nk.state =
	    (char *)(action == SHOAL__KEY_CONTROL__ACTION__ACCEPT ? "accepted"
	                                                          : "rejected");
	nk.by = (char *)(by ? by : "");
	nk.updated_ms = now_ms();
	*ret_key = entry_copy(&nk);
	r = store_entry(kr, &nk);
	if (r < 0) {
		shoal__node_key__free_unpacked(*ret_key, NULL);
		*ret_key = NULL;
		snprintf(err, errlen, "cannot store the key: %s",
		    shoal_strerror(r));
		return r;
	}
	return 0;
}

static int
by_node_id(const void *a, const void *b)
{
	const Shoal__NodeKey *const *x = a, *const *y = b;

	return strcmp((*x)->node, (*y)->node);
}

void
keyring_list(keyring_t *kr, const char *node, Shoal__NodeKey ***ret,
    size_t *ret_n)
{
	size_t n = 0, cap = zhashx_size(kr->by_node);
	Shoal__NodeKey **v = xcalloc(cap ? cap : 1, sizeof *v);

	for (Shoal__NodeKey *k = zhashx_first(kr->by_node); k;
	     k = zhashx_next(kr->by_node))
		if (!node || !node[0] || strcmp(k->node, node) == 0)
			v[n++] = k;
	qsort(v, n, sizeof *v, by_node_id);
	*ret = v;
	*ret_n = n;
}

/* -- operators ---------------------------------------------------------- */

void
keyring_set_operators_file(keyring_t *kr, const char *path)
{
	free(kr->ops_path);
	kr->ops_path = path && path[0] ? xstrdup(path) : NULL;
	kr->ops_loaded = 0;
}

/* Reads the allow-list into ops; on failure sets err and returns < 0. */
static int
read_operators(const char *path, operator_t **ret, size_t *ret_n, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[OPERATOR_LINE_MAX];
	operator_t *ops = NULL;
	size_t n = 0, lineno = 0;

	if (!f) {
		snprintf(err, errlen,
		    "cannot read the operator keys file %s: %s", path,
		    strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof line, f)) {
		char *p = line, *key, *name, *end;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%zu: line too long", path,
			    lineno);
			goto fail;
		}
		p += strspn(p, " \t");
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		key = p;
		p += strcspn(p, " \t\r\n");
		if (*p)
			*p++ = '\0';
		p += strspn(p, " \t");
		name = p;
		end = name + strcspn(name, "\r\n");
		while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		if (!curve_key_valid(key)) {
			snprintf(err, errlen,
			    "%s:%zu: '%.48s' is not a 40-character Z85 public "
			    "key",
			    path, lineno, key);
			goto fail;
		}
		if (!name[0] || strlen(name) >= sizeof ops->name ||
		    strspn(name,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
		        "UVWXYZ0123456789._@-") != strlen(name)) {
			snprintf(err, errlen,
			    "%s:%zu: the key needs a name after it "
			    "([A-Za-z0-9._@-], "
			    "at most 63 characters)",
			    path, lineno);
			goto fail;
		}
		if (n == KEYRING_OPERATORS_MAX) {
			snprintf(err, errlen, "%s: more than %d operator keys",
			    path, KEYRING_OPERATORS_MAX);
			goto fail;
		}
		ops = xrealloc(ops, (n + 1) * sizeof *ops);
		snprintf(ops[n].key, sizeof ops[n].key, "%s", key);
		snprintf(ops[n].name, sizeof ops[n].name, "%s", name);
		n++;
	}
	fclose(f);
	*ret = ops;
	*ret_n = n;
	return 0;
fail:
	fclose(f);
	free(ops);
	return SHOAL_E_CONFIG;
}

int
keyring_operator(keyring_t *kr, const char *key, char *name, size_t namelen,
    char *err, size_t errlen)
{
	struct stat st;

	err[0] = '\0';
	if (!kr->ops_path)
		return 0;
	if (stat(kr->ops_path, &st) < 0) {
		memset(&st, 0, sizeof st);
		st.st_size = -1;
	}
	if (!kr->ops_loaded || st.st_size != kr->ops_size ||
	    st.st_mtim.tv_sec != kr->ops_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != kr->ops_mtime.tv_nsec) {
		operator_t *ops = NULL;
		size_t n = 0;

		free(kr->ops);
		kr->ops = NULL;
		kr->n_ops = 0;
		free(kr->ops_error);
		kr->ops_error = NULL;
		if (read_operators(kr->ops_path, &ops, &n, err, errlen) < 0) {
			kr->ops_error = xstrdup(err);
		} else {
			kr->ops = ops;
			kr->n_ops = n;
		}
		kr->ops_loaded = 1;
		kr->ops_size = st.st_size;
		kr->ops_mtime = st.st_mtim;
	}
	for (size_t i = 0; i < kr->n_ops; i++) {
		if (strcmp(kr->ops[i].key, key) == 0) {
			snprintf(name, namelen, "%s", kr->ops[i].name);
			return 1;
		}
	}
	return 0;
}
