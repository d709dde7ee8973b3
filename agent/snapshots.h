/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's snapshots: what a node runs, recorded so that it can be
 * brought back. A snapshot is a directory DIR/ID holding
 *   state.mdb      a compacted hot copy of the agent's LMDB environment
 *   agent.yaml     the agent's config file, when it has one
 *   manifest.json  the services and revisions it records, the artifacts
 *                  they pin, when and why it was taken (for people)
 *   snapshot.pb    its catalogue entry (Snapshot), checksum included
 * The catalogue lives in the agent's LMDB (id -> Snapshot); each entry has
 * a sha256 over the files above but snapshot.pb. Artifact files are not
 * copied: they stay in the cache, pinned while a snapshot lists them.
 *
 * A snapshot is written into DIR/.tmp-ID, synced, renamed into place and
 * only then catalogued, so a crash at any point leaves either no snapshot
 * or a whole one; snapshots_open() clears what a crash left behind.
 */
#ifndef SHOAL_AGENT_SNAPSHOTS_H
#define SHOAL_AGENT_SNAPSHOTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/store.h"
#include "shoal.pb-c.h"

#define SNAPSHOTS_KEEP_DEFAULT 10
#define SNAPSHOTS_KEEP_MAX 100
#define SNAPSHOTS_KEEP_DAYS_DEFAULT 30

typedef struct snapshots snapshots_t;

typedef struct snapshots_config {
	const char *dir;         /* where snapshots live (created) */
	const char *config_file; /* copied into each snapshot; NULL: none */
	unsigned keep;           /* the newest N are kept (1..KEEP_MAX) */
	uint64_t keep_ms;        /* older ones are removed (0: no limit) */
	/* The agent's own store, as store_open() was given it: the copy in a
	 * snapshot is opened with these. */
	const char *const *dbs;
	unsigned ndbs;
	uint32_t schema;
	unsigned catalogue_db; /* index in dbs of the catalogue */
} snapshots_config_t;

/* Snapshot ids are checked with snapshot_id_valid() (common/util.h). */

/*
 * Opens the catalogue in store (borrowed; outlives the snapshots). Removes
 * what an interrupted snapshot or removal left, drops entries whose files
 * are gone, catalogues a whole snapshot a crash left uncatalogued, checks
 * every snapshot's checksum (a mismatch marks it CORRUPT with the reason;
 * it stays listed) and applies retention.
 */
int snapshots_open(store_t *store, const snapshots_config_t *cfg,
    snapshots_t **ret, char *err, size_t errlen);
void snapshots_close(snapshots_t **sn);

typedef struct snapshot_input {
	const char *id;
	const char *message;
	/* What the node runs towards now: its services go in the manifest and
	 * their artifacts are pinned. */
	const Shoal__DesiredState *desired;
	const char *service; /* automatic: before a rollout of this service */
	uint64_t rollout;
} snapshot_input_t;

/*
 * Takes a snapshot, then applies retention (never to the one just taken).
 * An id already catalogued is not taken again: 0, *ret that entry. *ret is
 * borrowed until the next snapshots_* call. On failure nothing is left
 * behind and err says what failed, naming the file.
 */
int snapshots_take(snapshots_t *sn, const snapshot_input_t *in,
    const Shoal__Snapshot **ret, char *err, size_t errlen);

/* The entry of id, or NULL. Borrowed as above. */
const Shoal__Snapshot *snapshots_find(snapshots_t *sn, const char *id);

/*
 * Reads the files of id again and checks them against its checksum.
 * SHOAL_E_NOT_FOUND: no such snapshot; SHOAL_E_STORE_CORRUPT: a file is
 * missing, short, or its bytes differ (the entry is marked CORRUPT and err
 * says which file and how).
 */
int snapshots_verify(snapshots_t *sn, const char *id, char *err, size_t errlen);

/*
 * Verifies id, then reads the message under key in database db of its
 * store copy (opened read only, left untouched). The caller owns *ret.
 */
int snapshots_read(snapshots_t *sn, const char *id, unsigned db,
    const char *key, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **ret, char *err, size_t errlen);

/* The catalogue, oldest first; borrowed as above. */
void snapshots_list(snapshots_t *sn, const Shoal__Snapshot *const **ret,
    size_t *ret_n);

/* The artifacts every snapshot pins (no duplicates); borrowed as above. */
void snapshots_pins(snapshots_t *sn, const char *const **ret, size_t *ret_n);

#endif
