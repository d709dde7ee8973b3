/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LMDB state store used by the agent and the coordinator: one
 * environment in a directory, a fixed set of named databases chosen by the
 * caller, a schema version, transactions, and typed get/put of protobuf-c
 * messages. MDB_* codes are translated here and nowhere else.
 */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct store store_t;
typedef struct store_txn store_txn_t;

/*
 * Opens (creating it and dir if needed) the environment in dir with the
 * named databases dbs[0..ndbs-1]; later calls name a database by its index.
 * schema: the layout version the caller writes. A store written with a newer
 * schema is refused (SHOAL_E_SCHEMA). map_bytes: the most the file may grow.
 */
int store_open(const char *dir, const char *const *dbs, unsigned ndbs,
    uint32_t schema, uint64_t map_bytes, store_t **ret_store);
void store_close(store_t **store);
/* Takes the lock store_open() takes on dir, for work on a store that is
 * not open (a restore); release by closing *ret_fd. SHOAL_E_STORE_LOCKED:
 * a daemon has it open. */
int store_lock(const char *dir, int *ret_fd);
/*
 * Opens a copy made by store_copy_fd() (one file) read only, leaving it
 * untouched: no lock file, no schema written. A database the copy lacks
 * reads as empty. SHOAL_E_SCHEMA: no schema, or one newer than schema;
 * SHOAL_E_STORE_CORRUPT: not an LMDB file.
 */
int store_open_copy(const char *path, const char *const *dbs, unsigned ndbs,
    uint32_t schema, store_t **ret_store);
/* Whether the store has database db: false for one a copy lacks. */
bool store_has_db(const store_t *store, unsigned db);
/* A consistent copy of the whole environment into fd, taken while
 * writers go on (mdb_env_copyfd2); compact: free pages left out and the
 * pages renumbered (smaller, a little slower). */
int store_copy_fd(store_t *store, int fd, bool compact);
/* Reads every record of every database: a damaged page fails here.
 * *ret_records (may be NULL): how many there are. */
int store_verify(store_t *store, uint64_t *ret_records);
/* The schema version found on disk when the store was opened (0: new). */
uint32_t store_schema_found(const store_t *store);

int store_begin(store_t *store, bool write, store_txn_t **ret_txn);
/* Commits and frees the transaction, whatever the result. */
int store_commit(store_txn_t **txn);
/* Aborts and frees; accepts NULL. */
void store_abort(store_txn_t **txn);

/* Raw values: *ret_val is borrowed until the transaction ends. */
int store_get(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const void **ret_val, size_t *ret_vlen);
int store_put(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const void *val, size_t vlen);
/* Deleting an absent key is not an error. */
int store_del(store_txn_t *txn, unsigned db, const void *key, size_t klen);

/* Protobuf messages. The caller owns *ret_msg and frees it with
 * protobuf_c_message_free_unpacked(). A record that does not decode is
 * SHOAL_E_STORE_CORRUPT. */
int store_get_msg(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret_msg);
int store_put_msg(store_txn_t *txn, unsigned db, const void *key, size_t klen,
    const ProtobufCMessage *msg);

/* A 64-bit counter stored under a string key; absent reads as 0. */
int store_get_u64(store_txn_t *txn, unsigned db, const char *key,
    uint64_t *ret);
int store_put_u64(store_txn_t *txn, unsigned db, const char *key,
    uint64_t value);

/*
 * Calls fn for every record with key >= from (all records when from is
 * NULL), in key order. fn returns 0 to go on, > 0 to stop, < 0 to stop
 * and fail with that code. Keys and values are borrowed for the call.
 */
typedef int (*store_visit_fn)(const void *key, size_t klen, const void *val,
    size_t vlen, void *arg);
int store_foreach(store_txn_t *txn, unsigned db, const void *from,
    size_t fromlen, store_visit_fn fn, void *arg);
/* The same, from the last record backwards. */
int store_foreach_reverse(store_txn_t *txn, unsigned db, store_visit_fn fn,
    void *arg);
int store_count(store_txn_t *txn, unsigned db, uint64_t *ret);

/* Big-endian keys sort numerically in LMDB's default order. */
void store_key_u64(uint64_t v, uint8_t key[8]);
uint64_t store_key_to_u64(const void *key);

#endif
