/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statvfs(2) of the node's file systems on a thread of its own, for the
 * metrics collector: a file system whose server hangs (NFS, a FUSE daemon,
 * a dying disk) blocks statvfs, which must never block the agent's event
 * loop. The loop hands over the mounts to look at each sample and takes the
 * newest answers; a statvfs that has not returned for FSSTAT_HANG_MS marks
 * its mount as failing and leaves the older answers of the rest in place.
 */
#ifndef SHOAL_AGENT_FSSTAT_H
#define SHOAL_AGENT_FSSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "agent/procfs.h"

#define FSSTAT_HANG_MS 5000

typedef struct fsstat_result {
	procfs_mount_t mount;
	uint64_t size, free, avail, files, files_free; /* bytes, inodes */
	int error; /* statvfs failed, or has not returned for FSSTAT_HANG_MS */
} fsstat_result_t;

typedef struct fsstat fsstat_t;

int fsstat_new(fsstat_t **ret);
/* Stops the thread; one stuck in statvfs is left behind (detached), with
 * the little it holds, rather than hang the agent's exit. */
void fsstat_destroy(fsstat_t **f);

/* Asks for a statvfs of these mounts (copied), unless the thread is still
 * answering the last ask. */
void fsstat_request(fsstat_t *f, const procfs_mount_t *const *v, size_t n);

/* Waits up to ms for the thread to answer the last ask (at start-up, so the
 * first scrape has file systems). */
void fsstat_wait(fsstat_t *f, uint64_t ms);

/*
 * The newest answers, at most cap, into out; returns how many. *hung is
 * set to the mount point of a statvfs that has not returned for
 * FSSTAT_HANG_MS (NULL: none); it lives until the next call.
 */
size_t fsstat_results(fsstat_t *f, fsstat_result_t *out, size_t cap,
    const char **hung);

#endif
