/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's backup and disaster recovery. A backup is one file: a
 * consistent, compacted copy of the coordinator's LMDB taken while it runs
 * (an LMDB environment in one file, so mdb_stat and mdb_dump read it),
 * with FILE.sha256 beside it in sha256sum's format. Restoring checks the
 * checksum and every record before it touches the state dir.
 */
#ifndef SHOAL_COORD_BACKUP_H
#define SHOAL_COORD_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "common/store.h"

/*
 * Writes the backup of store to path (absolute), through path.tmp-PID
 * renamed into place, then path.sha256. *ret_bytes and hex: its size and
 * checksum. On failure nothing is left at path and err names the file.
 */
int coordinator_backup(store_t *store, const char *path, uint64_t *ret_bytes,
    char hex[65], char *err, size_t errlen);

/*
 * Replaces the store in state_dir (which no coordinator may hold) with the
 * backup in file, after checking file.sha256, that it is a coordinator
 * store of a schema this build reads, and that every record reads back.
 * The store it replaces is kept as data.mdb.before-restore-TIME (its path
 * in saved; empty when there was none). On any failure the state dir is as
 * it was and err says why.
 */
int coordinator_restore(const char *file, const char *state_dir, char *saved,
    size_t savedlen, char *err, size_t errlen);

#endif
