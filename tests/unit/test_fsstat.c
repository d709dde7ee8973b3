/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/fsstat.c: statvfs of the mounts asked for, on its thread; answers
 * for a mount that exists and one that does not; a new ask replaces the
 * last; destroy. (A statvfs that hangs needs a file system that hangs,
 * which a unit test cannot make; the code path is the same wait.)
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "agent/fsstat.h"
#include "common/util.h"
#include "tests/tap.h"

static procfs_mount_t
mount_of(const char *path)
{
	procfs_mount_t m = { 0 };

	snprintf(m.device, sizeof m.device, "dev-%s", path);
	snprintf(m.mountpoint, sizeof m.mountpoint, "%s", path);
	snprintf(m.fstype, sizeof m.fstype, "test");
	return m;
}

int
main(void)
{
	procfs_mount_t root = mount_of("/"), gone = mount_of("/no/such/dir");
	const procfs_mount_t *ask[] = { &root, &gone };
	fsstat_result_t res[4];
	const char *hung = "x";
	fsstat_t *f = NULL;
	size_t n;

	ok(fsstat_new(&f) == 0 && f, "the thread starts");
	n = fsstat_results(f, res, 4, &hung);
	ok(n == 0 && hung == NULL, "no answers before an ask");
	fsstat_request(f, ask, 2);
	fsstat_wait(f, 10000);
	n = fsstat_results(f, res, 4, &hung);
	is_int(n, 2, "both mounts answered");
	ok(n == 2 && strcmp(res[0].mount.mountpoint, "/") == 0 &&
	        !res[0].error && res[0].size > 0 &&
	        res[0].avail <= res[0].size && res[0].files > 0,
	    "/ has a size, available space and inodes");
	ok(n == 2 && strcmp(res[0].mount.device, "dev-/") == 0,
	    "... and keeps its mount's device");
	ok(n == 2 && res[1].error && res[1].size == 0,
	    "a mount point that is not there is an error");
	ok(hung == NULL, "nothing hangs");
	n = fsstat_results(f, res, 1, &hung);
	is_int(n, 1, "answers stop at the caller's capacity");

	fsstat_request(f, ask + 1, 1);
	fsstat_wait(f, 10000);
	n = fsstat_results(f, res, 4, &hung);
	ok(n == 1 && res[0].error, "a new ask replaces the last");
	fsstat_request(f, NULL, 0);
	fsstat_wait(f, 10000);
	is_int(fsstat_results(f, res, 4, &hung), 0, "an empty ask");

	fsstat_destroy(&f);
	ok(f == NULL, "destroy clears the pointer");
	fsstat_destroy(&f);
	ok(1, "... and takes NULL");
	return done_testing();
}
