/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LMDB wrapper shared by the agent and the coordinator. Every MDB_* code is
 * translated to a shoal code in store_err(); values never leave a
 * transaction except as copies or unpacked messages.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/error.h"
#include "common/store.h"
#include "common/util.h"

#define META_DB "shoal.meta"
#define SCHEMA_KEY "schema"
#define LOCK_FILE "shoal.lock"

struct store {
	int lock_fd;
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi *dbi;
	unsigned ndbs;
	uint32_t schema_found;
	int readonly;  /* store_open_copy() */
	bool *missing; /* store_open_copy(): databases the copy lacks */
};

struct store_txn {
	store_t *store;
	MDB_txn *txn;
};

static int
store_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return SHOAL_E_NOT_FOUND;
	case MDB_MAP_FULL:
		return SHOAL_E_STORE_FULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return SHOAL_E_STORE_CORRUPT;
	default:
		return rc > 0 ? -rc : SHOAL_E_STORE;
	}
}

static int
check_schema(store_t *s, uint32_t schema)
{
	store_txn_t *txn;
	uint64_t found;
	int r;

	r = store_begin(s, true, &txn);
	if (r < 0)
		return r;
	r = store_get_u64(txn, UINT32_MAX, SCHEMA_KEY, &found);
	if (r < 0)
		goto fail;
	s->schema_found = (uint32_t)found;
	if (found > schema) {
		r = SHOAL_E_SCHEMA;
		goto fail;
	}
	/* Older layouts are migrated here once there are any. */
	if (found != schema) {
		r = store_put_u64(txn, UINT32_MAX, SCHEMA_KEY, schema);
		if (r < 0)
			goto fail;
	}
	return store_commit(&txn);
fail:
	store_abort(&txn);
	return r;
}

static int
lock_dir(const char *dir, int *ret_fd)
{
	char *path = xasprintf("%s/" LOCK_FILE, dir);
	int fd, r = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? SHOAL_E_STORE_LOCKED : -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int
store_lock(const char *dir, int *ret_fd)
{
	return lock_dir(dir, ret_fd);
}

int
store_open(const char *dir, const char *const *dbs, unsigned ndbs,
    uint32_t schema, uint64_t map_bytes, store_t **ret_store)
{
	store_t *s;
	MDB_txn *txn;
	int rc, r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	s = xcalloc(1, sizeof *s);
	s->dbi = xcalloc(ndbs, sizeof *s->dbi);
	s->ndbs = ndbs;
	s->lock_fd = -1;
	/*
	 * LMDB lets several processes share an environment; two daemons on one
	 * state dir would still fight over it, so the first one keeps it.
	 */
	r = lock_dir(dir, &s->lock_fd);
	if (r < 0) {
		store_close(&s);
		return r;
	}
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, ndbs + 1);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, (size_t)map_bytes);
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
	if (rc != 0)
		goto fail;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		goto fail;
	rc = mdb_dbi_open(txn, META_DB, MDB_CREATE, &s->meta);
	for (unsigned i = 0; rc == 0 && i < ndbs; i++)
		rc = mdb_dbi_open(txn, dbs[i], MDB_CREATE, &s->dbi[i]);
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto fail;
	r = check_schema(s, schema);
	if (r < 0) {
		store_close(&s);
		return r;
	}
	*ret_store = s;
	return 0;
fail:
	r = store_err(rc);
	store_close(&s);
	return r;
}

int
store_open_copy(const char *path, const char *const *dbs, unsigned ndbs,
    uint32_t schema, store_t **ret_store)
{
	store_t *s;
	MDB_txn *txn;
	uint64_t found = 0;
	store_txn_t t;
	int rc, r;

	s = xcalloc(1, sizeof *s);
	s->dbi = xcalloc(ndbs ? ndbs : 1, sizeof *s->dbi);
	s->ndbs = ndbs;
	s->lock_fd = -1;
	s->readonly = 1;
	s->missing = xcalloc(ndbs ? ndbs : 1, sizeof *s->missing);
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, ndbs + 1);
	/* One file, read only, no lock file beside it: the copy is left
	 * exactly as it is. */
	if (rc == 0)
		rc = mdb_env_open(s->env, path,
		    MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		goto fail;
	rc = mdb_dbi_open(txn, META_DB, 0, &s->meta);
	for (unsigned i = 0; rc == 0 && i < ndbs; i++) {
		rc = mdb_dbi_open(txn, dbs[i], 0, &s->dbi[i]);
		if (rc == MDB_NOTFOUND) {
			/* Not written yet when the copy was made: empty. */
			s->missing[i] = true;
			rc = 0;
		}
	}
	if (rc == 0) {
		t = (store_txn_t){ .store = s, .txn = txn };
		r = store_get_u64(&t, UINT32_MAX, SCHEMA_KEY, &found);
		rc = r == 0 ? 0 : MDB_CORRUPTED;
	}
	/* Handles opened in a transaction close when it aborts: commit. */
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc != 0)
		goto fail;
	s->schema_found = (uint32_t)found;
	if (found == 0 || found > schema) {
		store_close(&s);
		return SHOAL_E_SCHEMA;
	}
	*ret_store = s;
	return 0;
fail:
	r = rc == MDB_NOTFOUND ? SHOAL_E_STORE_CORRUPT : store_err(rc);
	store_close(&s);
	return r;
}

bool
store_has_db(const store_t *store, unsigned db)
{
	return db < store->ndbs && !(store->missing && store->missing[db]);
}

int
store_copy_fd(store_t *store, int fd, bool compact)
{
	return store_err(
	    mdb_env_copyfd2(store->env, fd, compact ? MDB_CP_COMPACT : 0));
}

static int
count_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

int
store_verify(store_t *store, uint64_t *ret_records)
{
	store_txn_t *txn;
	uint64_t n = 0;
	int r;

	r = store_begin(store, false, &txn);
	if (r < 0)
		return r;
	r = store_foreach(txn, UINT32_MAX, NULL, 0, count_one, &n);
	for (unsigned i = 0; r == 0 && i < store->ndbs; i++)
		r = store_foreach(txn, i, NULL, 0, count_one, &n);
	store_abort(&txn);
	if (ret_records)
		*ret_records = n;
	return r;
}

void
store_close(store_t **store)
{
	store_t *s = *store;

	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->dbi);
	free(s->missing);
	free(s);
	*store = NULL;
}

uint32_t
store_schema_found(const store_t *store)
{
	return store->schema_found;
}

int
store_begin(store_t *store, bool write, store_txn_t **ret_txn)
{
	store_txn_t *t = xcalloc(1, sizeof *t);
	int rc;

	t->store = store;
	if (write && store->readonly) {
		free(t);
		return -EROFS;
	}
	rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc != 0) {
		free(t);
		return store_err(rc);
	}
	*ret_txn = t;
	return 0;
}

int
store_commit(store_txn_t **txn)
{
	int rc = mdb_txn_commit((*txn)->txn);

	free(*txn);
	*txn = NULL;
	return store_err(rc);
}

void
store_abort(store_txn_t **txn)
{
	if (!*txn)
		return;
	mdb_txn_abort((*txn)->txn);
	free(*txn);
	*txn = NULL;
}

/* UINT32_MAX names the internal meta database. */
static MDB_dbi
dbi_of(store_txn_t *txn, unsigned db)
{
	if (db == UINT32_MAX)
		return txn->store->meta;
	if (db >= txn->store->ndbs)
		abort(); /* a programming error, not input */
	return txn->store->dbi[db];
}

int
store_get(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const void **ret_val, size_t *ret_vlen)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc;

	if (klen == 0 || klen > 511)
		return -EINVAL;
	if (db != UINT32_MAX && txn->store->missing && txn->store->missing[db])
		return SHOAL_E_NOT_FOUND;
	rc = mdb_get(txn->txn, dbi_of(txn, db), &k, &v);
	if (rc != 0)
		return store_err(rc);
	*ret_val = v.mv_data;
	*ret_vlen = v.mv_size;
	return 0;
}

int
store_put(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };

	if (klen == 0 || klen > 511)
		return -EINVAL;
	return store_err(mdb_put(txn->txn, dbi_of(txn, db), &k, &v, 0));
}

int
store_del(store_txn_t *txn, unsigned db, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };
	int rc;

	if (klen == 0 || klen > 511)
		return -EINVAL;
	rc = mdb_del(txn->txn, dbi_of(txn, db), &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int
store_get_msg(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret_msg)
{
	const void *val;
	size_t vlen;
	ProtobufCMessage *m;
	int r;

	r = store_get(txn, db, key, klen, &val, &vlen);
	if (r < 0)
		return r;
	m = protobuf_c_message_unpack(desc, NULL, vlen, val);
	if (!m)
		return SHOAL_E_STORE_CORRUPT;
	*ret_msg = m;
	return 0;
}

int
store_put_msg(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	MDB_val k = { klen, (void *)key }, v = { n, NULL };
	int rc;

	if (klen == 0 || klen > 511)
		return -EINVAL;
	/* Pack straight into the page LMDB reserves: no bounce buffer. */
	rc = mdb_put(txn->txn, dbi_of(txn, db), &k, &v, MDB_RESERVE);
	if (rc != 0)
		return store_err(rc);
	protobuf_c_message_pack(msg, v.mv_data);
	return 0;
}

int
store_get_u64(store_txn_t *txn, unsigned db, const char *key, uint64_t *ret)
{
	const void *val;
	size_t vlen;
	int r;

	r = store_get(txn, db, key, strlen(key), &val, &vlen);
	if (r == SHOAL_E_NOT_FOUND) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return r;
	if (vlen != 8)
		return SHOAL_E_STORE_CORRUPT;
	*ret = store_key_to_u64(val);
	return 0;
}

int
store_put_u64(store_txn_t *txn, unsigned db, const char *key, uint64_t value)
{
	uint8_t buf[8];

	store_key_u64(value, buf);
	return store_put(txn, db, key, strlen(key), buf, sizeof buf);
}

static int
visit(store_txn_t *txn, unsigned db, const void *from, size_t fromlen,
    bool reverse, store_visit_fn fn, void *arg)
{
	MDB_cursor *cur;
	MDB_val k = { fromlen, (void *)from }, v;
	MDB_cursor_op op;
	int rc, r = 0;

	if (db != UINT32_MAX && txn->store->missing && txn->store->missing[db])
		return 0;
	rc = mdb_cursor_open(txn->txn, dbi_of(txn, db), &cur);
	if (rc != 0)
		return store_err(rc);
	if (reverse)
		op = MDB_LAST;
	else
		op = from ? MDB_SET_RANGE : MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		r = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg);
		if (r != 0)
			break;
		op = reverse ? MDB_PREV : MDB_NEXT;
	}
	mdb_cursor_close(cur);
	if (r < 0)
		return r;
	if (r == 0 && rc != MDB_NOTFOUND)
		return store_err(rc);
	return 0;
}

int
store_foreach(store_txn_t *txn, unsigned db, const void *from, size_t fromlen,
    store_visit_fn fn, void *arg)
{
	return visit(txn, db, from, fromlen, false, fn, arg);
}

int
store_foreach_reverse(store_txn_t *txn, unsigned db, store_visit_fn fn,
    void *arg)
{
	return visit(txn, db, NULL, 0, true, fn, arg);
}

int
store_count(store_txn_t *txn, unsigned db, uint64_t *ret)
{
	MDB_stat st;
	int rc;

	if (db != UINT32_MAX && txn->store->missing &&
	    txn->store->missing[db]) {
		*ret = 0;
		return 0;
	}
	rc = mdb_stat(txn->txn, dbi_of(txn, db), &st);
	if (rc != 0)
		return store_err(rc);
	*ret = st.ms_entries;
	return 0;
}

void
store_key_u64(uint64_t v, uint8_t key[8])
{
	for (int i = 7; i >= 0; i--) {
		key[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

uint64_t
store_key_to_u64(const void *key)
{
	const uint8_t *p = key;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
