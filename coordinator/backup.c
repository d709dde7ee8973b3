/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backups of the coordinator's store and restores from them; see backup.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "common/wire.h"
#include "common/store.h"
#include "common/util.h"
#include "coordinator/backup.h"
#include "coordinator/registry.h"

/* The sha256 of what fd holds from its start, in hex. */
static int
hash_fd(int fd, char hex[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], out[32];
	unsigned len = 0;
	off_t off = 0;
	ssize_t n;

	if (!md)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += n;
	}
	if (n < 0) {
		int e = errno;

		EVP_MD_CTX_free(md);
		return -e;
	}
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + i * 2, 3, "%02x", out[i]);
	return 0;
}

/* Writes the whole buffer to a new file path (through path.tmp) and
 * syncs it. */
static int
write_small(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.tmp", path);
	size_t n = strlen(text);
	int fd, r = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
out:
	free(tmp);
	return r;
}

static void
sync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int
coordinator_backup(store_t *store, const char *path, uint64_t *ret_bytes,
    char hex[65], char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp-%ld", path, (long)getpid());
	char *sum_path = xasprintf("%s.sha256", path), *line = NULL, *base;
	struct stat sb;
	int fd, r;

	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	r = store_copy_fd(store, fd, true);
	if (r < 0) {
		snprintf(err, errlen, "%s: copying the store: %s", tmp,
		    shoal_strerror(r));
		goto fail;
	}
	if (fsync(fd) < 0 || fstat(fd, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	r = hash_fd(fd, hex);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	base = xstrdup(path);
	line = xasprintf("%s  %s\n", hex, basename(base));
	free(base);
	r = write_small(sum_path, line);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", sum_path, strerror(-r));
		unlink(path);
		goto out;
	}
	sync_dir_of(path);
	*ret_bytes = (uint64_t)sb.st_size;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(line);
	free(sum_path);
	free(tmp);
	return r;
}

/* The checksum FILE.sha256 records for file (its first word). */
static int
read_sum(const char *file, char hex[65], char *err, size_t errlen)
{
	char *sum_path = xasprintf("%s.sha256", file);
	char line[256] = "";
	FILE *f = fopen(sum_path, "re");
	size_t n = 0;
	int r = 0;

	if (!f) {
		r = -errno;
		snprintf(err, errlen,
		    "%s: %s (a backup comes with its checksum file)", sum_path,
		    strerror(errno));
		goto out;
	}
	if (!fgets(line, sizeof line, f))
		line[0] = '\0';
	fclose(f);
	while (n < 64 && strchr("0123456789abcdef", line[n]) && line[n])
		n++;
	if (n != 64 || (line[64] != ' ' && line[64] != '\n' && line[64])) {
		snprintf(err, errlen, "%s: not a sha256 checksum line",
		    sum_path);
		r = SHOAL_E_INVALID;
		goto out;
	}
	memcpy(hex, line, 64);
	hex[64] = '\0';
out:
	free(sum_path);
	return r;
}

static int
decode_one(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	const ProtobufCMessageDescriptor *desc = arg;
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, vlen, val);

	if (!m)
		return SHOAL_E_STORE_CORRUPT;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* Every record of the databases whose values are messages decodes. */
static int
decode_all(store_t *copy)
{
	static const struct {
		unsigned db;
		const ProtobufCMessageDescriptor *desc;
	} dbs[] = {
		{ DB_NODES, &shoal__node__descriptor },
		{ DB_EVENTS, &shoal__stored_event__descriptor },
		{ DB_SERVICES, &shoal__service_record__descriptor },
		{ DB_REVISIONS, &shoal__revision__descriptor },
		{ DB_DESIRED, &shoal__desired_state__descriptor },
		{ DB_STATUS, &shoal__status_report__descriptor },
		{ DB_ROLLOUTS, &shoal__rollout__descriptor },
		{ DB_OPS, &shoal__operation__descriptor },
		{ DB_HOLDS, &shoal__hold__descriptor },
	};
	store_txn_t *txn;
	int r;

	r = store_begin(copy, false, &txn);
	for (size_t i = 0; r == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
		r = store_foreach(txn, dbs[i].db, NULL, 0, decode_one,
		    (void *)dbs[i].desc);
	store_abort(&txn);
	return r;
}

/* Copies src into a new file dst (synced); dst is removed on failure. */
static int
copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in, out, r = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			r = errno ? -errno : -ENOSPC;
			break;
		}
	if (n < 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (close(out) < 0 && r == 0)
		r = -errno;
	close(in);
	if (r < 0)
		unlink(dst);
	return r;
}

int
coordinator_restore(const char *file, const char *state_dir, char *saved,
    size_t savedlen, char *err, size_t errlen)
{
	char want[65], got[65], stamp[32];
	char *data = xasprintf("%s/data.mdb", state_dir);
	char *tmp = xasprintf("%s/data.mdb.restore-tmp", state_dir);
	char *lock = xasprintf("%s/lock.mdb", state_dir), *keep = NULL;
	store_t *copy = NULL;
	uint64_t records = 0;
	time_t now = time(NULL);
	struct tm tm;
	int fd, lock_fd = -1, r;

	saved[0] = '\0';
	r = read_sum(file, want, err, errlen);
	if (r < 0)
		goto out;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		goto out;
	}
	r = hash_fd(fd, got);
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", file, strerror(-r));
		goto out;
	}
	if (strcmp(want, got) != 0) {
		snprintf(err, errlen,
		    "%s: checksum mismatch (%s.sha256 says %.12s..., the file "
		    "is %.12s...): damaged or not this backup",
		    file, file, want, got);
		r = SHOAL_E_STORE_CORRUPT;
		goto out;
	}
	r = store_open_copy(file, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	    &copy);
	if (r == 0 && !store_has_db(copy, DB_NODES)) {
		store_close(&copy);
		snprintf(err, errlen,
		    "%s: not a coordinator store (no node registry in it; an "
		    "agent's snapshot?)",
		    file);
		r = SHOAL_E_INVALID;
		goto out;
	}
	if (r == 0)
		r = store_verify(copy, &records);
	if (r == 0)
		r = decode_all(copy);
	store_close(&copy);
	if (r == SHOAL_E_SCHEMA) {
		snprintf(err, errlen,
		    "%s: not a coordinator store this version reads (schema "
		    "newer than %d, or none)",
		    file, REGISTRY_SCHEMA);
		goto out;
	}
	if (r < 0) {
		snprintf(err, errlen,
		    "%s: not a readable coordinator store: %s", file,
		    shoal_strerror(r));
		goto out;
	}
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", state_dir, strerror(errno));
		goto out;
	}
	r = store_lock(state_dir, &lock_fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", state_dir,
		    r == SHOAL_E_STORE_LOCKED
		        ? "a coordinator is running on it; stop it first"
		        : shoal_strerror(r));
		goto out;
	}
	r = copy_file(file, tmp);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	keep = xasprintf("%s/data.mdb.before-restore-%s", state_dir, stamp);
	/* A second name for the old store, then one rename over it: killed
	 * at any point, the state dir has a whole store. */
	if (link(data, keep) == 0) {
		snprintf(saved, savedlen, "%s", keep);
	} else if (errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", keep, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, data) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", data, strerror(errno));
		if (saved[0])
			unlink(keep);
		saved[0] = '\0';
		unlink(tmp);
		goto out;
	}
	/* The old environment's reader table means nothing to the new one. */
	unlink(lock);
	sync_dir_of(data);
	r = 0;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(keep);
	free(lock);
	free(tmp);
	free(data);
	return r;
}
