/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's snapshots (see snapshots.h), run by the agent. A snapshot is
 * made in DIR/.tmp-ID and removed through DIR/.del-ID, so a name in DIR
 * says what state its directory is in: ID is whole (catalogued, or about to
 * be), .tmp-ID and .del-ID are garbage whatever they hold. The checksum
 * frames each file as its name, a NUL, its length (8 bytes, big endian)
 * and its bytes, so files cannot trade bytes without it changing; the
 * manifest also records each data file's own size and sha256, which names
 * the file that changed when the checksum no longer matches.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "agent/snapshots.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

#define STATE_FILE "state.mdb"
#define CONFIG_FILE "agent.yaml"
#define MANIFEST_FILE "manifest.json"
#define ENTRY_FILE "snapshot.pb"
#define TMP_PREFIX ".tmp-"
#define DEL_PREFIX ".del-"
#define CONFIG_MAX (1u << 20)   /* an agent.yaml copied, at most */
#define MANIFEST_MAX (8u << 20) /* a manifest read back, at most */
#define ENTRY_MAX (8u << 20)    /* a snapshot.pb read back, at most */
/* Directories of each kind looked at by one snapshots_open(); more is
 * left for the next one. */
#define SCAN_MAX (SNAPSHOTS_KEEP_MAX * 2)
#define RM_DEPTH_MAX 8 /* what we write is flat; deeper is not ours */
#define CHUNK (1u << 20)
#define SHA_LEN 32
#define SHA_HEX 64
#define SHORT_HEX 12 /* digits of a checksum an error shows */
#define WHY_MAX 512
#define PATH_LEN 4096
/* Nothing here follows a symbolic link or leaks into a child. */
#define O_NEW (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define O_DIR (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define O_FILE (O_RDONLY | O_NOFOLLOW | O_CLOEXEC)

struct snapshots {
	store_t *store; /* borrowed */
	int dfd;        /* DIR, open for the *at() calls */
	char *dir;
	char *config_file; /* NULL: none */
	unsigned keep;
	uint64_t keep_ms;
	char **dbs; /* copies of the names store_open() was given */
	unsigned ndbs;
	uint32_t schema;
	unsigned db;
	/* The catalogue, oldest first (created_ms, then id); each entry an
	 * unpacked message owned here, replaced whole when it changes. */
	Shoal__Snapshot **v;
	size_t n;
	/* snapshots_pins(): pointers into v's strings. */
	const char **pins;
	size_t npins;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
to_hex(const uint8_t *md, size_t n, char *hex)
{
	for (size_t i = 0; i < n; i++)
		snprintf(hex + i * 2, 3, "%02x", md[i]);
	hex[n * 2] = '\0';
}

/* -- files ------------------------------------------------------------- */

static int
write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to want bytes; fewer only at the end of the file. */
static ssize_t
read_full(int fd, void *buf, size_t want)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < want) {
		ssize_t r = read(fd, p + got, want - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Writes buf as dfd/name (new, mode 0600) and syncs it. */
static int
write_file(int dfd, const char *name, const void *buf, size_t n)
{
	int fd, r;

	fd = openat(dfd, name, O_NEW, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, n);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/*
 * Reads the whole of dfd/name (opened with flags), at most max bytes, into
 * *ret_buf (the caller owns it; NUL-terminated). -EFBIG: larger than max.
 */
static int
read_file(int dfd, const char *name, int flags, size_t max, uint8_t **ret_buf,
    size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	ssize_t got;
	int fd, r = 0;

	fd = openat(dfd, name, flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	got = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (got < 0) {
		free(buf);
		return (int)got;
	}
	buf[got] = '\0';
	*ret_buf = buf;
	*ret_len = (size_t)got;
	return 0;
}

/* Removes pfd/name and, when it is a directory, what it holds. Symbolic
 * links are removed, never followed. */
static int
rm_tree(int pfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(pfd, name, O_DIR);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP)
			return -errno;
		if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	if (depth >= RM_DEPTH_MAX) {
		close(fd);
		return -ELOOP;
	}
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		int q;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)
			q = rm_tree(dirfd(d), de->d_name, depth + 1);
		else if (unlinkat(dirfd(d), de->d_name, 0) < 0 &&
		    errno != ENOENT)
			q = -errno;
		else
			q = 0;
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_LEN];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int
is_dir_at(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode);
}

/* -- checksums --------------------------------------------------------- */

static EVP_MD_CTX *
md_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	/* OpenSSL fails here only out of memory, as xmalloc would. */
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	return md;
}

static void
md_end(EVP_MD_CTX *md, char hex[SHA_HEX + 1])
{
	uint8_t out[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_DigestFinal_ex(md, out, &n);
	to_hex(out, n < SHA_LEN ? n : SHA_LEN, hex);
}

/* One file's frame in the checksum: its name, a NUL, its length. */
static void
frame(EVP_MD_CTX *all, const char *name, uint64_t len)
{
	uint8_t be[8];

	store_key_u64(len, be);
	EVP_DigestUpdate(all, name, strlen(name) + 1);
	EVP_DigestUpdate(all, be, sizeof be);
}

static void
sum_buf(EVP_MD_CTX *all, const char *name, const void *buf, size_t len,
    char own[SHA_HEX + 1])
{
	EVP_MD_CTX *md = md_new();

	frame(all, name, len);
	EVP_DigestUpdate(all, buf, len);
	EVP_DigestUpdate(md, buf, len);
	md_end(md, own);
	EVP_MD_CTX_free(md);
}

/*
 * Feeds dfd/name to all (framed) and to its own sha256 (own). *ret_len: its
 * size. -errno when it cannot be read; SHOAL_E_STORE_CORRUPT when it
 * shrank while being read.
 */
static int
sum_file(EVP_MD_CTX *all, int dfd, const char *name, uint64_t *ret_len,
    char own[SHA_HEX + 1])
{
	struct stat st;
	EVP_MD_CTX *md;
	uint8_t *buf;
	uint64_t left;
	int fd, r = 0;

	fd = openat(dfd, name, O_FILE);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	if (r < 0) {
		close(fd);
		return r;
	}
	md = md_new();
	buf = xmalloc(CHUNK);
	frame(all, name, (uint64_t)st.st_size);
	for (left = (uint64_t)st.st_size; left > 0;) {
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t got = read_full(fd, buf, want);

		if (got < 0) {
			r = (int)got;
			break;
		}
		if ((size_t)got < want) {
			r = SHOAL_E_STORE_CORRUPT;
			break;
		}
		EVP_DigestUpdate(all, buf, want);
		EVP_DigestUpdate(md, buf, want);
		left -= want;
	}
	free(buf);
	close(fd);
	md_end(md, own);
	EVP_MD_CTX_free(md);
	*ret_len = (uint64_t)st.st_size;
	return r;
}

/* -- the catalogue ----------------------------------------------------- */

static int
entry_cmp(const Shoal__Snapshot *a, const Shoal__Snapshot *b)
{
	if (a->created_ms != b->created_ms)
		return a->created_ms < b->created_ms ? -1 : 1;
	return strcmp(a->id, b->id);
}

static ssize_t
find_index(const snapshots_t *sn, const char *id)
{
	for (size_t i = 0; i < sn->n; i++)
		if (strcmp(sn->v[i]->id, id) == 0)
			return (ssize_t)i;
	return -1;
}

/* Takes e into the in-memory catalogue, in order. */
static void
insert_entry(snapshots_t *sn, Shoal__Snapshot *e)
{
	size_t i = sn->n;

	sn->v = xrealloc(sn->v, (sn->n + 1) * sizeof *sn->v);
	while (i > 0 && entry_cmp(sn->v[i - 1], e) > 0) {
		sn->v[i] = sn->v[i - 1];
		i--;
	}
	sn->v[i] = e;
	sn->n++;
}

static void
drop_index(snapshots_t *sn, size_t i)
{
	shoal__snapshot__free_unpacked(sn->v[i], NULL);
	memmove(&sn->v[i], &sn->v[i + 1], (sn->n - i - 1) * sizeof *sn->v);
	sn->n--;
}

static uint8_t *
pack_entry(const Shoal__Snapshot *e, size_t *ret_len)
{
	size_t n = shoal__snapshot__get_packed_size(e);
	uint8_t *buf = xmalloc(n ? n : 1);

	shoal__snapshot__pack(e, buf);
	*ret_len = n;
	return buf;
}

/* Deletes the catalogue records of ids[0..n-1], in one transaction. */
static int
del_records(snapshots_t *sn, char *const *ids, size_t n)
{
	store_txn_t *txn;
	int r;

	if (n == 0)
		return 0;
	r = store_begin(sn->store, true, &txn);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = store_del(txn, sn->db, ids[i], strlen(ids[i]));
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

static int
put_record(snapshots_t *sn, const char *id, const uint8_t *buf, size_t len)
{
	store_txn_t *txn;
	int r;

	r = store_begin(sn->store, true, &txn);
	if (r < 0)
		return r;
	r = store_put(txn, sn->db, id, strlen(id), buf, len);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

/*
 * Sets the state and reason of v[i], in memory and in the catalogue. The
 * entry is replaced, so pointers to the old one die here. The memory copy
 * follows the files even when the catalogue cannot be written.
 */
static int
set_state(snapshots_t *sn, size_t i, Shoal__Snapshot__State state,
    const char *reason)
{
	Shoal__Snapshot tmp = *sn->v[i], *e;
	uint8_t *buf;
	size_t len;
	int r;

	if (tmp.state == state && strcmp(tmp.reason, reason) == 0)
		return 0;
	tmp.state = state;
	tmp.reason = (char *)reason;
	buf = pack_entry(&tmp, &len);
	r = put_record(sn, tmp.id, buf, len);
	e = shoal__snapshot__unpack(NULL, len, buf);
	free(buf);
	if (!e)
		abort(); /* we just packed it: only memory can fail */
	shoal__snapshot__free_unpacked(sn->v[i], NULL);
	sn->v[i] = e;
	return r;
}

typedef struct load_ctx {
	snapshots_t *sn;
	char **bad; /* keys of records that do not decode */
	size_t nbad;
} load_ctx_t;

static int
load_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	load_ctx_t *l = arg;
	Shoal__Snapshot *e;

	e = shoal__snapshot__unpack(NULL, vlen, val);
	if (!e || strlen(e->id) != klen || memcmp(e->id, key, klen) != 0 ||
	    !snapshot_id_valid(e->id) || find_index(l->sn, e->id) >= 0) {
		/* Its directory, if any, is judged by its snapshot.pb. */
		if (e)
			shoal__snapshot__free_unpacked(e, NULL);
		l->bad = xrealloc(l->bad, (l->nbad + 1) * sizeof *l->bad);
		l->bad[l->nbad] = xmalloc(klen + 1);
		memcpy(l->bad[l->nbad], key, klen);
		l->bad[l->nbad][klen] = '\0';
		l->nbad++;
		return 0;
	}
	insert_entry(l->sn, e);
	return 0;
}

static int
load_catalogue(snapshots_t *sn, char *err, size_t errlen)
{
	load_ctx_t l = { .sn = sn };
	store_txn_t *txn;
	int r;

	r = store_begin(sn->store, false, &txn);
	if (r == 0) {
		r = store_foreach(txn, sn->db, NULL, 0, load_one, &l);
		store_abort(&txn);
	}
	if (r == 0)
		r = del_records(sn, l.bad, l.nbad);
	for (size_t i = 0; i < l.nbad; i++)
		free(l.bad[i]);
	free(l.bad);
	if (r < 0)
		seterr(err, errlen, "snapshot catalogue (database %s): %s",
		    sn->dbs[sn->db], shoal_strerror(r));
	return r;
}

/* -- verification ------------------------------------------------------ */

/* What the manifest says of one data file; 0 when it says nothing. */
static int
manifest_file(json_t *man, const char *name, uint64_t *ret_len,
    const char **ret_sha)
{
	json_t *f = json_object_get(json_object_get(man, "files"), name);
	json_t *len = json_object_get(f, "bytes");
	json_t *sha = json_object_get(f, "sha256");

	if (!json_is_integer(len) || !json_is_string(sha))
		return 0;
	*ret_len = (uint64_t)json_integer_value(len);
	*ret_sha = json_string_value(sha);
	return 1;
}

/* Whether agent.yaml is in the checksum: the manifest says so; when it
 * does not parse, it cannot, and then what is there is summed (so that a
 * mismatch blames the manifest). */
static int
want_config(json_t *man, int tfd)
{
	const char *sha;
	uint64_t len;

	if (man)
		return manifest_file(man, CONFIG_FILE, &len, &sha);
	return faccessat(tfd, CONFIG_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * Checks the files in tfd (the directory of e) against e's checksum. 0:
 * they match; SHOAL_E_STORE_CORRUPT with why naming the file otherwise.
 */
static int
check_files(const Shoal__Snapshot *e, int tfd, char *why, size_t whylen)
{
	static const char *const data[] = { STATE_FILE, CONFIG_FILE };
	char own[2][SHA_HEX + 1], man_sha[SHA_HEX + 1], hex[SHA_HEX + 1];
	uint64_t len[2] = { 0, 0 }, total, mlen;
	const char *msha;
	int summed[2] = { 0, 0 };
	EVP_MD_CTX *all = NULL;
	uint8_t *mbuf = NULL;
	size_t mn = 0;
	json_t *man = NULL;
	int r;

	r = read_file(tfd, MANIFEST_FILE, O_FILE, MANIFEST_MAX, &mbuf, &mn);
	if (r < 0) {
		snprintf(why, whylen, MANIFEST_FILE ": %s",
		    r == -EFBIG ? "larger than any manifest"
		                : shoal_strerror(r));
		return SHOAL_E_STORE_CORRUPT;
	}
	man = json_loadb((const char *)mbuf, mn, JSON_REJECT_DUPLICATES, NULL);
	all = md_new();
	for (int i = 0; i < 2; i++) {
		if (i == 1 && !want_config(man, tfd))
			continue;
		r = sum_file(all, tfd, data[i], &len[i], own[i]);
		if (r == SHOAL_E_STORE_CORRUPT) {
			snprintf(why, whylen, "%s: changed while being read",
			    data[i]);
			goto out;
		}
		if (r < 0) {
			snprintf(why, whylen, "%s: %s", data[i],
			    shoal_strerror(r));
			r = SHOAL_E_STORE_CORRUPT;
			goto out;
		}
		summed[i] = 1;
	}
	sum_buf(all, MANIFEST_FILE, mbuf, mn, man_sha);
	md_end(all, hex);
	total = len[0] + len[1] + mn;
	if (strcmp(hex, e->sha256) == 0 && total == e->bytes) {
		r = 0;
		goto out;
	}
	r = SHOAL_E_STORE_CORRUPT;
	/* Which file: the first that differs from what the manifest says of
	 * it; when none does, the manifest itself changed. */
	for (int i = 0; man && i < 2; i++) {
		if (!summed[i] || !manifest_file(man, data[i], &mlen, &msha))
			continue;
		if (len[i] < mlen) {
			snprintf(why, whylen,
			    "%s: short file (%llu of %llu bytes)", data[i],
			    (unsigned long long)len[i],
			    (unsigned long long)mlen);
			goto out;
		}
		if (len[i] != mlen) {
			snprintf(why, whylen, "%s: %llu bytes, %llu expected",
			    data[i], (unsigned long long)len[i],
			    (unsigned long long)mlen);
			goto out;
		}
		if (strcmp(own[i], msha) != 0) {
			snprintf(why, whylen,
			    "%s: checksum mismatch (manifest sha256:%.*s, file "
			    "sha256:%.*s)",
			    data[i], SHORT_HEX, msha, SHORT_HEX, own[i]);
			goto out;
		}
	}
	snprintf(why, whylen,
	    "%s: checksum mismatch (catalogue sha256:%.*s, files sha256:%.*s)",
	    MANIFEST_FILE, SHORT_HEX, e->sha256, SHORT_HEX, hex);
out:
	if (all)
		EVP_MD_CTX_free(all);
	json_decref(man);
	free(mbuf);
	return r;
}

/* Checks v[i]'s files and records the verdict. */
static int
verify_index(snapshots_t *sn, size_t i, char *err, size_t errlen)
{
	char why[WHY_MAX], id[SNAPSHOT_ID_MAX + 1];
	int tfd, r, w;

	snprintf(id, sizeof id, "%s", sn->v[i]->id);
	tfd = openat(sn->dfd, id, O_DIR);
	if (tfd < 0) {
		snprintf(why, sizeof why, "%s/%s: %s", sn->dir, id,
		    strerror(errno));
		r = SHOAL_E_STORE_CORRUPT;
	} else {
		r = check_files(sn->v[i], tfd, why, sizeof why);
		close(tfd);
	}
	w = set_state(sn, i,
	    r == 0 ? SHOAL__SNAPSHOT__STATE__READY
	           : SHOAL__SNAPSHOT__STATE__CORRUPT,
	    r == 0 ? "" : why);
	if (r < 0) {
		seterr(err, errlen, "snapshot %s: %s", id, why);
		return r;
	}
	if (w < 0)
		seterr(err, errlen, "snapshot %s: catalogue: %s", id,
		    shoal_strerror(w));
	return w;
}

/* -- retention --------------------------------------------------------- */

/*
 * Removes what is beyond the newest keep or older than keep_ms, never the
 * newest and never protect. Each goes by rename to .del-ID first, then its
 * record, then its files: a crash in between leaves a .del- directory (or
 * a record without files), both cleared by snapshots_open().
 */
static int
retention(snapshots_t *sn, const char *protect, char *err, size_t errlen)
{
	uint64_t now = now_ms();
	char **ids = NULL, del[sizeof DEL_PREFIX + SNAPSHOT_ID_MAX];
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; i + 1 < sn->n; i++) {
		const Shoal__Snapshot *e = sn->v[i];
		int old = sn->keep_ms && e->created_ms < now &&
		    now - e->created_ms > sn->keep_ms;

		if (protect && strcmp(e->id, protect) == 0)
			continue;
		if (sn->n - 1 - i < sn->keep && !old)
			continue;
		snprintf(del, sizeof del, DEL_PREFIX "%s", e->id);
		rm_tree(sn->dfd, del, 0);
		if (renameat(sn->dfd, e->id, sn->dfd, del) < 0 &&
		    errno != ENOENT) {
			if (r == 0) {
				r = -errno;
				seterr(err, errlen, "snapshot %s: %s/%s: %s",
				    e->id, sn->dir, e->id, strerror(errno));
			}
			continue;
		}
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = xstrdup(e->id);
	}
	if (n == 0)
		return r;
	fsync(sn->dfd);
	if (del_records(sn, ids, n) < 0) {
		/* Still catalogued: put the files back where they were. */
		for (size_t i = 0; i < n; i++) {
			snprintf(del, sizeof del, DEL_PREFIX "%s", ids[i]);
			renameat(sn->dfd, del, sn->dfd, ids[i]);
		}
		if (r == 0) {
			r = SHOAL_E_STORE;
			seterr(err, errlen, "snapshot catalogue: %s",
			    shoal_strerror(r));
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			ssize_t k = find_index(sn, ids[i]);

			if (k >= 0)
				drop_index(sn, (size_t)k);
			snprintf(del, sizeof del, DEL_PREFIX "%s", ids[i]);
			rm_tree(sn->dfd, del, 0);
			log_debug("snapshot %s removed", ids[i]);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return r;
}

/* -- opening ----------------------------------------------------------- */

/*
 * A directory ID without a catalogue record: a crash between its rename
 * and its record. Whole (its snapshot.pb decodes, names it and its files
 * match), it is catalogued; anything else is removed. When the catalogue
 * cannot take it, it stays for the next snapshots_open().
 */
static int
adopt(snapshots_t *sn, const char *id)
{
	char why[WHY_MAX] = "";
	Shoal__Snapshot *e = NULL, tmp;
	uint8_t *buf = NULL, *packed = NULL;
	size_t len = 0;
	int tfd, whole = 0, r = 0;

	tfd = openat(sn->dfd, id, O_DIR);
	if (tfd >= 0 &&
	    read_file(tfd, ENTRY_FILE, O_FILE, ENTRY_MAX, &buf, &len) == 0)
		e = shoal__snapshot__unpack(NULL, len, buf);
	if (e && strcmp(e->id, id) == 0)
		whole = check_files(e, tfd, why, sizeof why) == 0;
	if (whole) {
		tmp = *e;
		tmp.state = SHOAL__SNAPSHOT__STATE__READY;
		tmp.reason = (char *)"";
		packed = pack_entry(&tmp, &len);
		r = put_record(sn, id, packed, len);
	}
	if (e)
		shoal__snapshot__free_unpacked(e, NULL);
	if (tfd >= 0)
		close(tfd);
	free(buf);
	if (whole && r == 0) {
		e = shoal__snapshot__unpack(NULL, len, packed);
		if (!e)
			abort(); /* we just packed it */
		insert_entry(sn, e);
		log_debug("snapshot %s catalogued again", id);
	} else if (!whole) {
		rm_tree(sn->dfd, id, 0);
		log_debug("snapshot %s: not whole (%s), removed", id,
		    why[0] ? why : "no snapshot.pb of its own");
	}
	free(packed);
	return r;
}

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Clears leftovers and catalogues orphans: see adopt(). */
static int
scan_dir(snapshots_t *sn, char *err, size_t errlen)
{
	char *junk[SCAN_MAX], *orphans[SCAN_MAX];
	size_t njunk = 0, norphans = 0;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = dup(sn->dfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		seterr(err, errlen, "snapshots %s: %s", sn->dir, strerror(-r));
		return r;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		const char *name = de->d_name;

		if (has_prefix(name, TMP_PREFIX) ||
		    has_prefix(name, DEL_PREFIX)) {
			if (njunk < SCAN_MAX)
				junk[njunk++] = xstrdup(name);
		} else if (snapshot_id_valid(name) &&
		    find_index(sn, name) < 0 && is_dir_at(sn->dfd, name)) {
			if (norphans < SCAN_MAX)
				orphans[norphans++] = xstrdup(name);
		}
		/* Anything else is not ours: left alone. */
	}
	closedir(d);
	for (size_t i = 0; i < njunk; i++) {
		rm_tree(sn->dfd, junk[i], 0);
		log_debug("snapshots: %s/%s removed", sn->dir, junk[i]);
		free(junk[i]);
	}
	for (size_t i = 0; i < norphans; i++) {
		int q = adopt(sn, orphans[i]);

		if (q < 0 && r == 0) {
			r = q;
			seterr(err, errlen, "snapshot %s: catalogue: %s",
			    orphans[i], shoal_strerror(q));
		}
		free(orphans[i]);
	}
	return r;
}

/* Drops the records whose directory is gone. */
static int
drop_missing(snapshots_t *sn, char *err, size_t errlen)
{
	char **ids = NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < sn->n; i++) {
		if (is_dir_at(sn->dfd, sn->v[i]->id))
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = xstrdup(sn->v[i]->id);
	}
	r = del_records(sn, ids, n);
	for (size_t i = 0; i < n; i++) {
		ssize_t k = find_index(sn, ids[i]);

		if (r == 0 && k >= 0)
			drop_index(sn, (size_t)k);
		free(ids[i]);
	}
	free(ids);
	if (r < 0)
		seterr(err, errlen, "snapshot catalogue: %s",
		    shoal_strerror(r));
	return r;
}

int
snapshots_open(store_t *store, const snapshots_config_t *cfg, snapshots_t **ret,
    char *err, size_t errlen)
{
	snapshots_t *sn;
	int r;

	if (!cfg->dir || !cfg->dir[0] || cfg->catalogue_db >= cfg->ndbs ||
	    !cfg->dbs) {
		seterr(err, errlen, "snapshots: no directory or catalogue");
		return SHOAL_E_INVALID;
	}
	if (cfg->keep < 1 || cfg->keep > SNAPSHOTS_KEEP_MAX) {
		seterr(err, errlen, "snapshots: keep %u: not in 1..%u",
		    cfg->keep, SNAPSHOTS_KEEP_MAX);
		return SHOAL_E_INVALID;
	}
	r = mkdir_p(cfg->dir, 0700);
	if (r < 0) {
		seterr(err, errlen, "snapshots %s: %s", cfg->dir, strerror(-r));
		return r;
	}
	sn = xcalloc(1, sizeof *sn);
	sn->dfd = -1;
	sn->store = store;
	sn->dir = xstrdup(cfg->dir);
	sn->config_file = cfg->config_file ? xstrdup(cfg->config_file) : NULL;
	sn->keep = cfg->keep;
	sn->keep_ms = cfg->keep_ms;
	sn->ndbs = cfg->ndbs;
	sn->dbs = xcalloc(cfg->ndbs, sizeof *sn->dbs);
	for (unsigned i = 0; i < cfg->ndbs; i++)
		sn->dbs[i] = xstrdup(cfg->dbs[i]);
	sn->schema = cfg->schema;
	sn->db = cfg->catalogue_db;
	sn->dfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sn->dfd < 0) {
		r = -errno;
		seterr(err, errlen, "snapshots %s: %s", cfg->dir,
		    strerror(errno));
		goto fail;
	}
	r = load_catalogue(sn, err, errlen);
	if (r == 0)
		r = drop_missing(sn, err, errlen);
	if (r < 0)
		goto fail;
	/* Orphans are verified as they are adopted; the catalogued ones
	 * here, before there are any. */
	for (size_t i = 0; i < sn->n; i++) {
		char why[WHY_MAX];

		r = verify_index(sn, i, why, sizeof why);
		if (r < 0 && r != SHOAL_E_STORE_CORRUPT) {
			seterr(err, errlen, "%s", why);
			goto fail;
		}
	}
	r = scan_dir(sn, err, errlen);
	if (r == 0)
		r = retention(sn, NULL, err, errlen);
	if (r < 0)
		goto fail;
	fsync(sn->dfd);
	*ret = sn;
	return 0;
fail:
	snapshots_close(&sn);
	return r;
}

void
snapshots_close(snapshots_t **snp)
{
	snapshots_t *sn = *snp;

	if (!sn)
		return;
	for (size_t i = 0; i < sn->n; i++)
		shoal__snapshot__free_unpacked(sn->v[i], NULL);
	free(sn->v);
	free(sn->pins);
	for (unsigned i = 0; i < sn->ndbs; i++)
		free(sn->dbs[i]);
	free(sn->dbs);
	if (sn->dfd >= 0)
		close(sn->dfd);
	free(sn->dir);
	free(sn->config_file);
	free(sn);
	*snp = NULL;
}

/* -- taking ------------------------------------------------------------ */

/* jansson refuses strings that are not UTF-8: those go in cleaned. */
static json_t *
jstr(const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *c;

	if (j)
		return j;
	c = xstrdup(s);
	wire_clean_text(c, strlen(c), 1);
	j = json_string(c);
	free(c);
	return j ? j : json_string("");
}

static int
has_str(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* The manifest, for people (pretty JSON, caller owns it). */
static char *
manifest(const Shoal__Snapshot *e, const Shoal__DesiredState *ds,
    const char *config_file, const uint64_t len[2], char own[2][SHA_HEX + 1])
{
	json_t *root = json_object(), *svcs = json_object(),
	       *arts = json_array(), *files = json_object(), *f;
	char when[RFC3339_LEN], *s;

	format_rfc3339(e->created_ms, when);
	json_object_set_new(root, "id", json_string(e->id));
	json_object_set_new(root, "created", json_string(when));
	json_object_set_new(root, "message", jstr(e->message));
	json_object_set_new(root, "generation",
	    json_integer((json_int_t)e->generation));
	for (size_t i = 0; ds && i < ds->n_services; i++) {
		const Shoal__ServiceAssignment *a = ds->services[i];
		json_t *o = json_object();

		json_object_set_new(o, "revision",
		    json_integer((json_int_t)a->revision));
		json_object_set_new(o, "active", json_boolean(a->active));
		json_object_set_new(o, "image",
		    jstr(a->spec ? a->spec->image : ""));
		json_object_set_new(svcs, a->service, o);
	}
	json_object_set_new(root, "services", svcs);
	for (size_t i = 0; i < e->n_artifacts; i++)
		json_array_append_new(arts, json_string(e->artifacts[i]));
	json_object_set_new(root, "artifacts", arts);
	if (e->service[0]) {
		json_object_set_new(root, "service", jstr(e->service));
		json_object_set_new(root, "rollout",
		    json_integer((json_int_t)e->rollout));
	}
	/* What verification compares each data file with. */
	f = json_object();
	json_object_set_new(f, "bytes", json_integer((json_int_t)len[0]));
	json_object_set_new(f, "sha256", json_string(own[0]));
	json_object_set_new(files, STATE_FILE, f);
	if (config_file) {
		f = json_object();
		json_object_set_new(f, "bytes",
		    json_integer((json_int_t)len[1]));
		json_object_set_new(f, "sha256", json_string(own[1]));
		json_object_set_new(f, "source", jstr(config_file));
		json_object_set_new(files, CONFIG_FILE, f);
	}
	json_object_set_new(root, "files", files);
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		abort(); /* out of memory */
	return s;
}

/* Copies the agent's config file into tfd as agent.yaml; its size and
 * sha256 into *ret_len and own. */
static int
copy_config(snapshots_t *sn, int tfd, EVP_MD_CTX *all, uint64_t *ret_len,
    char own[SHA_HEX + 1], const char *tmp, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int r;

	r = read_file(AT_FDCWD, sn->config_file, O_RDONLY | O_CLOEXEC,
	    CONFIG_MAX, &buf, &len);
	if (r < 0) {
		seterr(err, errlen, "config file %s: %s", sn->config_file,
		    r == -EFBIG ? "larger than 1 MiB" : shoal_strerror(r));
		return r;
	}
	r = write_file(tfd, CONFIG_FILE, buf, len);
	if (r < 0)
		seterr(err, errlen, "%s/" CONFIG_FILE ": %s", tmp,
		    shoal_strerror(r));
	else
		sum_buf(all, CONFIG_FILE, buf, len, own);
	free(buf);
	*ret_len = len;
	return r;
}

/* Writes the snapshot's files into tfd; fills e's checksum and size. */
static int
write_files(snapshots_t *sn, int tfd, const char *tmp, Shoal__Snapshot *e,
    const Shoal__DesiredState *ds, char hex[SHA_HEX + 1], char *err,
    size_t errlen)
{
	char own[2][SHA_HEX + 1], man_sha[SHA_HEX + 1];
	uint64_t len[2] = { 0, 0 };
	EVP_MD_CTX *all = md_new();
	uint8_t *pb;
	size_t pblen;
	char *man;
	int fd, r;

	fd = openat(tfd, STATE_FILE, O_NEW, 0600);
	if (fd < 0) {
		r = -errno;
		goto fail_state;
	}
	r = store_copy_fd(sn->store, fd, true);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0)
		r = sum_file(all, tfd, STATE_FILE, &len[0], own[0]);
	if (r < 0)
		goto fail_state;
	if (sn->config_file) {
		r = copy_config(sn, tfd, all, &len[1], own[1], tmp, err,
		    errlen);
		if (r < 0)
			goto out;
	}
	man = manifest(e, ds, sn->config_file, len, own);
	r = write_file(tfd, MANIFEST_FILE, man, strlen(man));
	if (r == 0)
		sum_buf(all, MANIFEST_FILE, man, strlen(man), man_sha);
	e->bytes = len[0] + len[1] + strlen(man);
	free(man);
	if (r < 0) {
		seterr(err, errlen, "%s/" MANIFEST_FILE ": %s", tmp,
		    shoal_strerror(r));
		goto out;
	}
	md_end(all, hex);
	EVP_MD_CTX_free(all);
	all = NULL;
	e->sha256 = hex;
	pb = pack_entry(e, &pblen);
	r = write_file(tfd, ENTRY_FILE, pb, pblen);
	free(pb);
	if (r < 0) {
		seterr(err, errlen, "%s/" ENTRY_FILE ": %s", tmp,
		    shoal_strerror(r));
		goto out;
	}
	if (fsync(tfd) < 0) {
		r = -errno;
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
	}
	goto out;
fail_state:
	seterr(err, errlen, "%s/" STATE_FILE ": %s", tmp, shoal_strerror(r));
out:
	if (all)
		EVP_MD_CTX_free(all);
	return r;
}

int
snapshots_take(snapshots_t *sn, const snapshot_input_t *in,
    const Shoal__Snapshot **ret, char *err, size_t errlen)
{
	const Shoal__DesiredState *ds = in->desired;
	Shoal__Snapshot e = SHOAL__SNAPSHOT__INIT, *own;
	Shoal__SnapshotService *svc = NULL, **svcp = NULL;
	char tmp[PATH_LEN], name[sizeof TMP_PREFIX + SNAPSHOT_ID_MAX];
	char hex[SHA_HEX + 1], msg[WIRE_MAX_MESSAGE + 1], what[PATH_LEN + 64];
	char **arts = NULL;
	size_t narts = 0, n, len;
	uint8_t *buf = NULL;
	int tfd = -1, renamed = 0, r;
	ssize_t k;

	if (!snapshot_id_valid(in->id)) {
		seterr(err, errlen,
		    "snapshot id '%.*s': expected 1 to %d of [A-Za-z0-9-], "
		    "starting with a letter or digit",
		    SNAPSHOT_ID_MAX + 1, in->id ? in->id : "", SNAPSHOT_ID_MAX);
		return SHOAL_E_INVALID;
	}
	if (in->service && in->service[0] && !service_name_valid(in->service)) {
		seterr(err, errlen,
		    "snapshot %s: service '%.*s': not a service name", in->id,
		    SERVICE_NAME_MAX + 1, in->service);
		return SHOAL_E_INVALID;
	}
	k = find_index(sn, in->id);
	if (k >= 0) {
		*ret = sn->v[k];
		return 0;
	}
	snprintf(name, sizeof name, TMP_PREFIX "%s", in->id);
	snprintf(tmp, sizeof tmp, "%s/%s", sn->dir, name);
	if (faccessat(sn->dfd, in->id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		seterr(err, errlen,
		    "snapshot %s: %s/%s exists and is not catalogued", in->id,
		    sn->dir, in->id);
		return -EEXIST;
	}

	/* The entry: what the desired state runs and the artifacts it
	 * pins, each once. */
	n = ds ? ds->n_services : 0;
	svc = xcalloc(n ? n : 1, sizeof *svc);
	svcp = xcalloc(n ? n : 1, sizeof *svcp);
	for (size_t i = 0; i < n; i++) {
		const Shoal__ServiceAssignment *a = ds->services[i];
		const Shoal__ServiceSpec *sp = a->spec;

		shoal__snapshot_service__init(&svc[i]);
		svc[i].service = a->service;
		svc[i].revision = a->revision;
		svc[i].active = a->active;
		svcp[i] = &svc[i];
		for (size_t j = 0; sp && j < sp->n_artifacts; j++) {
			const char *sha = sp->artifacts[j]->sha256;

			if (!sha[0] ||
			    has_str((const char *const *)arts, narts, sha))
				continue;
			arts = xrealloc(arts, (narts + 1) * sizeof *arts);
			arts[narts++] = (char *)sha;
		}
	}
	snprintf(msg, sizeof msg, "%s", in->message ? in->message : "");
	wire_clean_text(msg, WIRE_MAX_MESSAGE, 1);
	e.id = (char *)in->id;
	e.created_ms = now_ms();
	e.message = msg;
	e.n_services = n;
	e.services = svcp;
	e.n_artifacts = narts;
	e.artifacts = arts;
	e.generation = ds ? ds->generation : 0;
	e.service = (char *)(in->service ? in->service : "");
	e.rollout = in->rollout;

	/* A .tmp- of ours is garbage: a failed try would have removed it. */
	rm_tree(sn->dfd, name, 0);
	if (mkdirat(sn->dfd, name, 0700) < 0 ||
	    (tfd = openat(sn->dfd, name, O_DIR)) < 0) {
		r = -errno;
		seterr(err, errlen, "snapshot %s: %s: %s", in->id, tmp,
		    strerror(errno));
		goto fail;
	}
	r = write_files(sn, tfd, tmp, &e, ds, hex, what, sizeof what);
	if (r < 0) {
		seterr(err, errlen, "snapshot %s: %s", in->id, what);
		goto fail;
	}
	if (renameat(sn->dfd, name, sn->dfd, in->id) < 0 ||
	    fsync(sn->dfd) < 0) {
		r = -errno;
		seterr(err, errlen, "snapshot %s: rename %s: %s", in->id, tmp,
		    strerror(errno));
		goto fail;
	}
	renamed = 1;
	buf = pack_entry(&e, &len);
	r = put_record(sn, in->id, buf, len);
	if (r < 0) {
		seterr(err, errlen, "snapshot %s: catalogue: %s", in->id,
		    shoal_strerror(r));
		goto fail;
	}
	own = shoal__snapshot__unpack(NULL, len, buf);
	if (!own)
		abort(); /* we just packed it */
	insert_entry(sn, own);
	log_debug("snapshot %s taken: %llu bytes", in->id,
	    (unsigned long long)e.bytes);
	/* Taken whatever retention does: what it could not remove now goes
	 * the next time. */
	if (retention(sn, in->id, what, sizeof what) < 0)
		log_debug("snapshot retention: %s", what);
	*ret = own;
	r = 0;
	goto out;
fail:
	rm_tree(sn->dfd, renamed ? in->id : name, 0);
	fsync(sn->dfd);
out:
	if (tfd >= 0)
		close(tfd);
	free(buf);
	free(arts);
	free(svcp);
	free(svc);
	return r;
}

/* -- reading ----------------------------------------------------------- */

const Shoal__Snapshot *
snapshots_find(snapshots_t *sn, const char *id)
{
	ssize_t k = id ? find_index(sn, id) : -1;

	return k >= 0 ? sn->v[k] : NULL;
}

int
snapshots_verify(snapshots_t *sn, const char *id, char *err, size_t errlen)
{
	ssize_t k = id ? find_index(sn, id) : -1;

	if (k < 0) {
		seterr(err, errlen, "snapshot %.*s: no such snapshot",
		    SNAPSHOT_ID_MAX + 1, id ? id : "");
		return SHOAL_E_NOT_FOUND;
	}
	return verify_index(sn, (size_t)k, err, errlen);
}

int
snapshots_read(snapshots_t *sn, const char *id, unsigned db, const char *key,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret, char *err,
    size_t errlen)
{
	char path[PATH_LEN];
	store_t *copy;
	store_txn_t *txn;
	int r;

	r = snapshots_verify(sn, id, err, errlen);
	if (r < 0)
		return r;
	if (db >= sn->ndbs || !key || !key[0]) {
		seterr(err, errlen, "snapshot %s: no database %u or no key", id,
		    db);
		return SHOAL_E_INVALID;
	}
	snprintf(path, sizeof path, "%s/%s/" STATE_FILE, sn->dir, id);
	r = store_open_copy(path, (const char *const *)sn->dbs, sn->ndbs,
	    sn->schema, &copy);
	if (r < 0) {
		seterr(err, errlen, "snapshot %s: %s: %s", id, path,
		    shoal_strerror(r));
		return r;
	}
	r = store_begin(copy, false, &txn);
	if (r == 0) {
		r = store_get_msg(txn, db, key, strlen(key), desc, ret);
		store_abort(&txn);
	}
	store_close(&copy);
	if (r == SHOAL_E_NOT_FOUND)
		seterr(err, errlen, "snapshot %s: no record %s in %s", id, key,
		    sn->dbs[db]);
	else if (r < 0)
		seterr(err, errlen, "snapshot %s: %s (%s): %s", id, key,
		    sn->dbs[db], shoal_strerror(r));
	return r;
}

void
snapshots_list(snapshots_t *sn, const Shoal__Snapshot *const **ret,
    size_t *ret_n)
{
	*ret = (const Shoal__Snapshot *const *)sn->v;
	*ret_n = sn->n;
}

void
snapshots_pins(snapshots_t *sn, const char *const **ret, size_t *ret_n)
{
	sn->npins = 0;
	for (size_t i = 0; i < sn->n; i++) {
		const Shoal__Snapshot *e = sn->v[i];

		if (e->state != SHOAL__SNAPSHOT__STATE__READY)
			continue;
		for (size_t j = 0; j < e->n_artifacts; j++) {
			if (has_str(sn->pins, sn->npins, e->artifacts[j]))
				continue;
			sn->pins = xrealloc(sn->pins,
			    (sn->npins + 1) * sizeof *sn->pins);
			sn->pins[sn->npins++] = e->artifacts[j];
		}
	}
	*ret = sn->pins;
	*ret_n = sn->npins;
}
