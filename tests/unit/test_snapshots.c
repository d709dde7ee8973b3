/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's snapshots: what a snapshot holds and its catalogue entry,
 * reading a record back from its store copy, ids refused, retention by
 * count and by age, corruption found and named (and found again after a
 * reopen), what snapshots_open() clears or catalogues again, and a child
 * killed at random while it writes and snapshots: after each kill the
 * store and every catalogued snapshot must be whole.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/snapshots.h"
#include "common/error.h"
#include "common/store.h"
#include "common/util.h"
#include "tests/tap.h"

enum { DB_META, DB_OUTBOX, DB_DESIRED, DB_SNAPSHOTS };
static const char *const dbs[] = { "meta", "outbox", "desired", "snapshots" };

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CONFIG_TEXT "node_id: n1\ncoordinator: tcp://127.0.0.1:7000\n"
#ifndef CRASH_ROUNDS
#define CRASH_ROUNDS 30
#endif
#define CRASH_KEEP 5

static char root[64];
static char errbuf[512];

static store_t *
open_store(void)
{
	char path[256];
	store_t *st = NULL;

	snprintf(path, sizeof path, "%s/store", root);
	if (store_open(path, dbs, 4, 1, 64ull << 20, &st) < 0)
		return NULL;
	return st;
}

static snapshots_config_t
config(const char *dir, unsigned keep, uint64_t keep_ms, const char *file)
{
	static char path[8][256];
	static unsigned next;
	char *p = path[next++ % 8];

	snprintf(p, sizeof path[0], "%s/%s", root, dir);
	return (snapshots_config_t){
		.dir = p,
		.config_file = file,
		.keep = keep,
		.keep_ms = keep_ms,
		.dbs = dbs,
		.ndbs = 4,
		.schema = 1,
		.catalogue_db = DB_SNAPSHOTS,
	};
}

static snapshots_t *
open_sn(store_t *st, const snapshots_config_t *cfg)
{
	snapshots_t *sn = NULL;

	errbuf[0] = '\0';
	if (snapshots_open(st, cfg, &sn, errbuf, sizeof errbuf) < 0)
		diag("snapshots_open: %s", errbuf);
	return sn;
}

/* Two services, three artifacts of which two differ. */
static int
put_desired(store_t *st, uint64_t generation)
{
	Shoal__DesiredState ds = SHOAL__DESIRED_STATE__INIT;
	Shoal__ServiceAssignment a[2] = { SHOAL__SERVICE_ASSIGNMENT__INIT,
		SHOAL__SERVICE_ASSIGNMENT__INIT };
	Shoal__ServiceSpec sp[2] = { SHOAL__SERVICE_SPEC__INIT,
		SHOAL__SERVICE_SPEC__INIT };
	Shoal__Artifact art[3] = { SHOAL__ARTIFACT__INIT, SHOAL__ARTIFACT__INIT,
		SHOAL__ARTIFACT__INIT };
	Shoal__Artifact *llm_arts[2] = { &art[0], &art[1] },
	                *emb_arts[1] = { &art[2] };
	Shoal__ServiceAssignment *ap[2] = { &a[0], &a[1] };
	store_txn_t *txn;
	int r;

	art[0].sha256 = SHA_A;
	art[0].url = "https://models.example/llm.bin";
	art[1].sha256 = SHA_B;
	art[1].url = "https://models.example/tok.json";
	art[2].sha256 = SHA_A;
	art[2].url = "https://models.example/llm.bin";
	sp[0].service = "llm";
	sp[0].image = "registry.example/llm:1";
	sp[0].n_artifacts = 2;
	sp[0].artifacts = llm_arts;
	sp[1].service = "embed";
	sp[1].image = "registry.example/embed:2";
	sp[1].n_artifacts = 1;
	sp[1].artifacts = emb_arts;
	a[0].service = "llm";
	a[0].revision = 3;
	a[0].active = 1;
	a[0].spec = &sp[0];
	a[1].service = "embed";
	a[1].revision = 1;
	a[1].active = 0;
	a[1].spec = &sp[1];
	ds.generation = generation;
	ds.n_services = 2;
	ds.services = ap;
	r = store_begin(st, true, &txn);
	if (r < 0)
		return r;
	r = store_put_msg(txn, DB_DESIRED, "effective", 9, &ds.base);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

static Shoal__DesiredState *
get_desired(store_t *st)
{
	ProtobufCMessage *m = NULL;
	store_txn_t *txn;

	if (store_begin(st, false, &txn) < 0)
		return NULL;
	store_get_msg(txn, DB_DESIRED, "effective", 9,
	    &shoal__desired_state__descriptor, &m);
	store_abort(&txn);
	return (Shoal__DesiredState *)m;
}

static const Shoal__Snapshot *
take(snapshots_t *sn, const char *id, const Shoal__DesiredState *ds, int *rc)
{
	snapshot_input_t in = { .id = id, .message = "test", .desired = ds };
	const Shoal__Snapshot *e = NULL;
	int r;

	errbuf[0] = '\0';
	r = snapshots_take(sn, &in, &e, errbuf, sizeof errbuf);
	if (rc)
		*rc = r;
	else if (r < 0)
		diag("take %s: %s", id, errbuf);
	return r < 0 ? NULL : e;
}

static int
exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static long long
file_size(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = xcalloc(1, 65536);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* XORs the byte at off (negative: from the end) of dir/id/name with x. */
static int
flip(const char *dir, const char *id, const char *name, long long off,
    unsigned char x)
{
	char path[512];
	unsigned char c;
	int fd, r = -1;

	snprintf(path, sizeof path, "%s/%s/%s", dir, id, name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	if (pread(fd, &c, 1, off) == 1) {
		c ^= x;
		r = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return r;
}

static Shoal__Snapshot *
get_record(store_t *st, const char *id)
{
	ProtobufCMessage *m = NULL;
	store_txn_t *txn;

	if (store_begin(st, false, &txn) < 0)
		return NULL;
	store_get_msg(txn, DB_SNAPSHOTS, id, strlen(id),
	    &shoal__snapshot__descriptor, &m);
	store_abort(&txn);
	return (Shoal__Snapshot *)m;
}

static int
del_record(store_t *st, const char *id)
{
	store_txn_t *txn;
	int r;

	r = store_begin(st, true, &txn);
	if (r < 0)
		return r;
	r = store_del(txn, DB_SNAPSHOTS, id, strlen(id));
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

/* Moves every catalogue record's created_ms back by ago ms. */
static int
age_records(store_t *st, const snapshots_t *sn, uint64_t ago)
{
	const Shoal__Snapshot *const *v;
	store_txn_t *txn;
	size_t n;
	int r;

	snapshots_list((snapshots_t *)sn, &v, &n);
	r = store_begin(st, true, &txn);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		Shoal__Snapshot e = *v[i];

		e.created_ms -= ago;
		r = store_put_msg(txn, DB_SNAPSHOTS, e.id, strlen(e.id),
		    &e.base);
	}
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

static int
listed(snapshots_t *sn, const char *id)
{
	return snapshots_find(sn, id) != NULL;
}

static size_t
count(snapshots_t *sn)
{
	const Shoal__Snapshot *const *v;
	size_t n;

	snapshots_list(sn, &v, &n);
	return n;
}

/* Names in dir starting with prefix (NULL: snapshot ids). */
static int
count_names(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (prefix ? strncmp(de->d_name, prefix, strlen(prefix)) == 0
		           : snapshot_id_valid(de->d_name))
			n++;
	}
	closedir(d);
	return n;
}

static void
test_take(store_t *st, const char *conf)
{
	snapshots_config_t cfg = config("snap", 10, 0, conf);
	Shoal__DesiredState *ds = get_desired(st), *back = NULL;
	const Shoal__Snapshot *e, *again;
	const Shoal__Snapshot *const *v;
	const char *const *pins;
	snapshot_input_t in = { 0 };
	Shoal__Snapshot *rec, *pb;
	char path[512], *text, *yaml;
	ProtobufCMessage *m = NULL;
	snapshots_t *sn;
	json_t *man;
	size_t n, npins;
	int r;

	sn = open_sn(st, &cfg);
	ok(sn, "open: a new snapshot directory");
	if (!sn)
		return;
	ok(exists(cfg.dir, "."), "open: DIR created");
	in = (snapshot_input_t){ .id = "s1",
		.message = "before upgrade",
		.desired = ds };
	r = snapshots_take(sn, &in, &e, errbuf, sizeof errbuf);
	is_int(r, 0, "take s1");
	if (r < 0) {
		diag("%s", errbuf);
		return;
	}
	snprintf(path, sizeof path, "%s/s1", cfg.dir);
	ok(exists(cfg.dir, "s1/state.mdb") &&
	        exists(cfg.dir, "s1/agent.yaml") &&
	        exists(cfg.dir, "s1/manifest.json") &&
	        exists(cfg.dir, "s1/snapshot.pb"),
	    "take: state.mdb, agent.yaml, manifest.json, snapshot.pb");
	is_int(count_names(cfg.dir, ".tmp-"), 0, "take: no .tmp- left");
	is_str(e->id, "s1", "entry: id");
	is_str(e->message, "before upgrade", "entry: message");
	is_int(e->generation, 7, "entry: generation");
	is_int(e->state, SHOAL__SNAPSHOT__STATE__READY, "entry: READY");
	ok(e->created_ms > 0 && e->created_ms <= now_ms(), "entry: created_ms");
	is_int(e->n_services, 2, "entry: two services");
	ok(e->n_services == 2 && strcmp(e->services[0]->service, "llm") == 0 &&
	        e->services[0]->revision == 3 && e->services[0]->active &&
	        strcmp(e->services[1]->service, "embed") == 0 &&
	        e->services[1]->revision == 1 && !e->services[1]->active,
	    "entry: service, revision, active of each");
	ok(e->n_artifacts == 2 && strcmp(e->artifacts[0], SHA_A) == 0 &&
	        strcmp(e->artifacts[1], SHA_B) == 0,
	    "entry: artifacts, each once");
	ok(strlen(e->sha256) == 64 &&
	        strspn(e->sha256, "0123456789abcdef") == 64,
	    "entry: sha256 is 64 hex digits");
	is_int(e->bytes,
	    file_size(path, "state.mdb") + file_size(path, "agent.yaml") +
	        file_size(path, "manifest.json"),
	    "entry: bytes are the files' sizes");
	ok(e->service[0] == '\0' && e->rollout == 0, "entry: not automatic");

	rec = get_record(st, "s1");
	ok(rec && strcmp(rec->sha256, e->sha256) == 0 && rec->bytes == e->bytes,
	    "catalogue: the record is in the store");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);
	snprintf(path, sizeof path, "%s/s1/snapshot.pb", cfg.dir);
	text = slurp(path);
	pb = text ? shoal__snapshot__unpack(NULL,
	                (size_t)file_size(cfg.dir, "s1/snapshot.pb"),
	                (const uint8_t *)text)
	          : NULL;
	ok(pb && strcmp(pb->id, "s1") == 0 &&
	        strcmp(pb->sha256, e->sha256) == 0,
	    "snapshot.pb: the entry, checksum included");
	if (pb)
		shoal__snapshot__free_unpacked(pb, NULL);
	free(text);

	snprintf(path, sizeof path, "%s/s1/agent.yaml", cfg.dir);
	yaml = slurp(path);
	is_str(yaml, CONFIG_TEXT, "agent.yaml: a copy of the config file");
	free(yaml);

	snprintf(path, sizeof path, "%s/s1/manifest.json", cfg.dir);
	man = json_load_file(path, 0, NULL);
	ok(man && json_is_string(json_object_get(man, "created")) &&
	        strchr(json_string_value(json_object_get(man, "created")), 'Z'),
	    "manifest: created in RFC 3339 UTC");
	is_str(json_string_value(json_object_get(man, "id")), "s1",
	    "manifest: id");
	is_int(json_integer_value(json_object_get(
	           json_object_get(json_object_get(man, "services"), "llm"),
	           "revision")),
	    3, "manifest: services.llm.revision");
	is_str(json_string_value(json_object_get(
	           json_object_get(json_object_get(man, "services"), "embed"),
	           "image")),
	    "registry.example/embed:2", "manifest: services.embed.image");
	is_int(json_array_size(json_object_get(man, "artifacts")), 2,
	    "manifest: artifacts");
	ok(!json_object_get(man, "service"), "manifest: not automatic");
	json_decref(man);

	r = snapshots_read(sn, "s1", DB_DESIRED, "effective",
	    &shoal__desired_state__descriptor, &m, errbuf, sizeof errbuf);
	is_int(r, 0, "read: effective from the copy");
	back = (Shoal__DesiredState *)m;
	ok(back && back->generation == 7 && back->n_services == 2 &&
	        strcmp(back->services[0]->service, "llm") == 0 &&
	        back->services[0]->spec->n_artifacts == 2,
	    "read: the desired state as it was");
	if (back)
		shoal__desired_state__free_unpacked(back, NULL);
	m = NULL;
	r = snapshots_read(sn, "s1", DB_DESIRED, "nothing",
	    &shoal__desired_state__descriptor, &m, errbuf, sizeof errbuf);
	is_int(r, SHOAL_E_NOT_FOUND, "read: a key the copy lacks");
	r = snapshots_read(sn, "nope", DB_DESIRED, "effective",
	    &shoal__desired_state__descriptor, &m, errbuf, sizeof errbuf);
	is_int(r, SHOAL_E_NOT_FOUND, "read: no such snapshot");
	is_int(snapshots_verify(sn, "nope", errbuf, sizeof errbuf),
	    SHOAL_E_NOT_FOUND, "verify: no such snapshot");
	ok(!snapshots_find(sn, "nope"), "find: no such snapshot");

	/* The same id again: the entry there is, nothing new. */
	{
		uint64_t created = e->created_ms;
		char sha[65];

		snprintf(sha, sizeof sha, "%s", e->sha256);
		in.message = "again";
		r = snapshots_take(sn, &in, &again, errbuf, sizeof errbuf);
		ok(r == 0 && again && again->created_ms == created &&
		        strcmp(again->sha256, sha) == 0 &&
		        strcmp(again->message, "before upgrade") == 0,
		    "take: an id catalogued already gives its entry");
		snapshots_list(sn, &v, &n);
		is_int(n, 1, "take: ... and takes nothing");
		is_int(count_names(cfg.dir, NULL), 1,
		    "take: ... one directory");
	}

	/* Ids that would not name a directory of ours. */
	{
		static const char *const bad[] = { "", "../x", "a/b", ".hidden",
			"-x", "a_b", "a b",
			"0123456789012345678901234567890123456789012345678901"
			"234567890123" };

		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			in.id = bad[i];
			r = snapshots_take(sn, &in, &again, errbuf,
			    sizeof errbuf);
			okf(r == SHOAL_E_INVALID, "take: id '%.20s' refused",
			    bad[i]);
		}
		in.id = NULL;
		r = snapshots_take(sn, &in, &again, errbuf, sizeof errbuf);
		is_int(r, SHOAL_E_INVALID, "take: no id refused");
		is_int(count(sn), 1, "take: refused ids left nothing listed");
		is_int(count_names(cfg.dir, NULL) +
		        count_names(cfg.dir, ".tmp-"),
		    1, "take: ... and nothing on disk");
		in.id = "630123456789012345678901234567890123456789012345678901"
		        "234567890";
		r = snapshots_take(sn, &in, &again, errbuf, sizeof errbuf);
		is_int(r, 0, "take: 63 characters are fine");
	}

	/* Automatic: before a rollout of a service. */
	in = (snapshot_input_t){ .id = "auto-1",
		.message = "rollout",
		.desired = ds,
		.service = "llm",
		.rollout = 4 };
	r = snapshots_take(sn, &in, &e, errbuf, sizeof errbuf);
	ok(r == 0 && strcmp(e->service, "llm") == 0 && e->rollout == 4,
	    "take: automatic, service and rollout recorded");
	snprintf(path, sizeof path, "%s/auto-1/manifest.json", cfg.dir);
	man = json_load_file(path, 0, NULL);
	ok(man && json_is_string(json_object_get(man, "service")) &&
	        json_integer_value(json_object_get(man, "rollout")) == 4,
	    "manifest: service and rollout when automatic");
	json_decref(man);
	in.service = "Not A Service";
	in.id = "auto-2";
	is_int(snapshots_take(sn, &in, &e, errbuf, sizeof errbuf),
	    SHOAL_E_INVALID, "take: a bad service name refused");

	/* No desired state: a snapshot of the store all the same. */
	in = (snapshot_input_t){ .id = "bare" };
	r = snapshots_take(sn, &in, &e, errbuf, sizeof errbuf);
	ok(r == 0 && e->n_services == 0 && e->n_artifacts == 0,
	    "take: without a desired state");

	snapshots_pins(sn, &pins, &npins);
	ok(npins == 2 &&
	        ((strcmp(pins[0], SHA_A) == 0 && strcmp(pins[1], SHA_B) == 0) ||
	            (strcmp(pins[1], SHA_A) == 0 &&
	                strcmp(pins[0], SHA_B) == 0)),
	    "pins: every artifact once");
	snapshots_list(sn, &v, &n);
	r = 1;
	for (size_t i = 1; i < n; i++)
		if (v[i - 1]->created_ms > v[i]->created_ms)
			r = 0;
	ok(n == 4 && r, "list: four, oldest first");

	snapshots_close(&sn);
	ok(!sn, "close: NULL after");
	snapshots_close(&sn);
	shoal__desired_state__free_unpacked(ds, NULL);
}

static void
test_config_missing(store_t *st)
{
	snapshots_config_t cfg =
	    config("noconf", 10, 0, "/nonexistent/shoal/agent.yaml");
	snapshots_t *sn = open_sn(st, &cfg);
	const Shoal__Snapshot *e;
	int r;

	if (!ok(sn, "open: config file not there yet"))
		return;
	e = take(sn, "c1", NULL, &r);
	ok(r < 0 && !e, "take: a config file that cannot be read fails");
	ok(strstr(errbuf, "/nonexistent/shoal/agent.yaml") != NULL,
	    "take: ... and the error names it");
	diag("%s", errbuf);
	ok(count_names(cfg.dir, NULL) == 0 &&
	        count_names(cfg.dir, ".tmp-") == 0,
	    "take: ... and leaves nothing behind");
	is_int(count(sn), 0, "take: ... nor a catalogue entry");
	snapshots_close(&sn);

	cfg = config("noconf", 0, 0, NULL);
	ok(snapshots_open(st, &cfg, &sn, errbuf, sizeof errbuf) ==
	        SHOAL_E_INVALID,
	    "open: keep 0 refused");
	cfg = config("noconf", SNAPSHOTS_KEEP_MAX + 1, 0, NULL);
	ok(snapshots_open(st, &cfg, &sn, errbuf, sizeof errbuf) ==
	        SHOAL_E_INVALID,
	    "open: keep above the maximum refused");
}

static void
test_retention(store_t *st)
{
	snapshots_config_t cfg = config("keep", 3, 0, NULL);
	Shoal__DesiredState *ds = get_desired(st);
	const Shoal__Snapshot *e;
	snapshots_t *sn = open_sn(st, &cfg);
	char id[16];
	Shoal__Snapshot *rec;
	int all = 1;

	if (!ok(sn, "open: retention directory"))
		return;
	for (int i = 1; i <= 6; i++) {
		snprintf(id, sizeof id, "t%d", i);
		if (!take(sn, id, ds, NULL))
			all = 0;
	}
	ok(all, "retention: six taken");
	is_int(count(sn), 3, "retention: keep 3 keeps three");
	ok(listed(sn, "t4") && listed(sn, "t5") && listed(sn, "t6"),
	    "retention: ... the newest three");
	ok(!exists(cfg.dir, "t1") && !exists(cfg.dir, "t3") &&
	        exists(cfg.dir, "t6"),
	    "retention: the others' directories are gone");
	rec = get_record(st, "t2");
	ok(!rec, "retention: ... and their records");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);
	is_int(count_names(cfg.dir, ".del-"), 0, "retention: no .del- left");
	snapshots_close(&sn);

	/* By age: every record ten days old, at most a day kept. */
	cfg = config("keep", 10, 24 * 3600 * 1000ull, NULL);
	sn = open_sn(st, &cfg);
	ok(sn && age_records(st, sn, 10ull * 24 * 3600 * 1000) == 0,
	    "keep_ms: records made ten days old");
	snapshots_close(&sn);
	sn = open_sn(st, &cfg);
	if (!ok(sn, "keep_ms: reopened"))
		goto out;
	is_int(count(sn), 1, "keep_ms: the old ones removed");
	ok(listed(sn, "t6") && exists(cfg.dir, "t6"),
	    "keep_ms: ... but never the newest");
	e = take(sn, "t7", ds, NULL);
	ok(e && listed(sn, "t7") && !listed(sn, "t6") && !exists(cfg.dir, "t6"),
	    "keep_ms: once a newer one is taken, the old newest goes");
	snapshots_close(&sn);

	/* keep 1: the one just taken replaces the one before. */
	cfg = config("keep", 1, 0, NULL);
	sn = open_sn(st, &cfg);
	if (!ok(sn, "keep 1: reopened"))
		goto out;
	ok(take(sn, "t8", ds, NULL) != NULL, "keep 1: t8 taken");
	ok(listed(sn, "t8") && !listed(sn, "t7"), "keep 1: t7 gives way");
	snapshots_close(&sn);
out:
	snapshots_close(&sn);
	shoal__desired_state__free_unpacked(ds, NULL);
}

static int
verify_fails(snapshots_t *sn, const char *id, const char *want1,
    const char *want2, const char *name)
{
	const Shoal__Snapshot *e;
	ProtobufCMessage *m = NULL;
	int r, good;

	errbuf[0] = '\0';
	r = snapshots_verify(sn, id, errbuf, sizeof errbuf);
	e = snapshots_find(sn, id);
	good = r == SHOAL_E_STORE_CORRUPT && strstr(errbuf, id) &&
	    strstr(errbuf, want1) && (!want2 || strstr(errbuf, want2)) && e &&
	    e->state == SHOAL__SNAPSHOT__STATE__CORRUPT &&
	    strstr(e->reason, want1);
	if (!tap_ok(good, __FILE__, __LINE__, name))
		diag("rc %d, err '%s'", r, errbuf);
	r = snapshots_read(sn, id, DB_DESIRED, "effective",
	    &shoal__desired_state__descriptor, &m, errbuf, sizeof errbuf);
	okf(r == SHOAL_E_STORE_CORRUPT && !m, "%s: read refused", name);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return good;
}

static void
test_corrupt(store_t *st, const char *conf)
{
	snapshots_config_t cfg = config("bad", 10, 0, conf);
	Shoal__DesiredState *ds = get_desired(st);
	snapshots_t *sn = open_sn(st, &cfg);
	char path[512], *manifest, *at;
	Shoal__Snapshot *rec;
	const Shoal__Snapshot *e;
	int all = 1, r;

	if (!ok(sn, "open: corruption directory"))
		return;
	for (const char *const *id = (const char *const[]){ "c1", "c2", "c3",
	         "c4", "c5", "good", NULL };
	     *id; id++)
		if (!take(sn, *id, ds, NULL))
			all = 0;
	ok(all, "corrupt: six taken");
	is_int(snapshots_verify(sn, "good", errbuf, sizeof errbuf), 0,
	    "verify: an untouched snapshot");

	ok(flip(cfg.dir, "c1", "state.mdb",
	       file_size(cfg.dir, "c1/state.mdb") / 2, 0x20) == 0,
	    "corrupt: a byte of c1/state.mdb flipped");
	verify_fails(sn, "c1", "state.mdb", "checksum mismatch",
	    "verify: state.mdb flipped");
	rec = get_record(st, "c1");
	ok(rec && rec->state == SHOAL__SNAPSHOT__STATE__CORRUPT &&
	        strstr(rec->reason, "state.mdb"),
	    "verify: CORRUPT written to the catalogue");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);

	ok(flip(cfg.dir, "c2", "manifest.json", 0, 0x01) == 0,
	    "corrupt: the first byte of c2/manifest.json flipped");
	verify_fails(sn, "c2", "manifest.json", "checksum mismatch",
	    "verify: manifest.json no longer JSON");

	/* A change that leaves it JSON: the message's first letter. */
	snprintf(path, sizeof path, "%s/c5/manifest.json", cfg.dir);
	manifest = slurp(path);
	at = manifest ? strstr(manifest, "\"test\"") : NULL;
	ok(at &&
	        flip(cfg.dir, "c5", "manifest.json", at + 1 - manifest, 0x20) ==
	            0,
	    "corrupt: a letter of c5/manifest.json changed");
	free(manifest);
	verify_fails(sn, "c5", "manifest.json",
	    "catalogue sha256:", "verify: manifest.json edited");

	snprintf(path, sizeof path, "%s/c3/agent.yaml", cfg.dir);
	ok(truncate(path, 3) == 0, "corrupt: c3/agent.yaml cut to 3 bytes");
	verify_fails(sn, "c3", "agent.yaml", "short", "verify: agent.yaml cut");

	snprintf(path, sizeof path, "%s/c4/state.mdb", cfg.dir);
	ok(unlink(path) == 0, "corrupt: c4/state.mdb deleted");
	verify_fails(sn, "c4", "state.mdb: No such file or directory", NULL,
	    "verify: state.mdb missing");

	e = snapshots_find(sn, "good");
	ok(e && e->state == SHOAL__SNAPSHOT__STATE__READY,
	    "verify: the others stay READY");
	snapshots_close(&sn);

	/* A reopen keeps them listed and finds them corrupt again, even one
	 * whose record said READY. */
	rec = get_record(st, "c3");
	if (rec) {
		Shoal__Snapshot ready = *rec;
		store_txn_t *txn;

		ready.state = SHOAL__SNAPSHOT__STATE__READY;
		ready.reason = (char *)"";
		if (store_begin(st, true, &txn) == 0) {
			store_put_msg(txn, DB_SNAPSHOTS, "c3", 2, &ready.base);
			store_commit(&txn);
		}
		shoal__snapshot__free_unpacked(rec, NULL);
	}
	sn = open_sn(st, &cfg);
	if (!ok(sn, "reopen: with corrupt snapshots"))
		goto out;
	is_int(count(sn), 6, "reopen: every snapshot still listed");
	r = 1;
	for (const char *const *id =
	         (const char *const[]){ "c1", "c2", "c3", "c4", "c5", NULL };
	     *id; id++) {
		e = snapshots_find(sn, *id);
		if (!e || e->state != SHOAL__SNAPSHOT__STATE__CORRUPT ||
		    !e->reason[0])
			r = 0;
	}
	ok(r, "reopen: the five are CORRUPT again, with reasons");
	e = snapshots_find(sn, "c3");
	ok(e && strstr(e->reason, "agent.yaml"),
	    "reopen: c3's reason names agent.yaml");
	e = snapshots_find(sn, "good");
	ok(e && e->state == SHOAL__SNAPSHOT__STATE__READY,
	    "reopen: good READY");

	/* Undone, c1 is READY again, in the catalogue too. */
	flip(cfg.dir, "c1", "state.mdb", file_size(cfg.dir, "c1/state.mdb") / 2,
	    0x20);
	is_int(snapshots_verify(sn, "c1", errbuf, sizeof errbuf), 0,
	    "verify: c1 restored verifies");
	e = snapshots_find(sn, "c1");
	ok(e && e->state == SHOAL__SNAPSHOT__STATE__READY && !e->reason[0],
	    "verify: ... and is READY again");
	rec = get_record(st, "c1");
	ok(rec && rec->state == SHOAL__SNAPSHOT__STATE__READY,
	    "verify: ... in the catalogue too");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);
out:
	snapshots_close(&sn);
	shoal__desired_state__free_unpacked(ds, NULL);
}

static void
test_recover(store_t *st)
{
	snapshots_config_t cfg = config("rec", 10, 0, NULL);
	Shoal__DesiredState *ds = get_desired(st);
	snapshots_t *sn = open_sn(st, &cfg);
	Shoal__Snapshot *rec;
	char path[512], cmd[2048];
	const Shoal__Snapshot *e;

	if (!ok(sn, "open: recovery directory"))
		return;
	ok(take(sn, "o1", ds, NULL) && take(sn, "o2", ds, NULL) &&
	        take(sn, "o3", ds, NULL) && take(sn, "o6", ds, NULL),
	    "recover: four taken");
	snapshots_close(&sn);

	/* Uncatalogued and its files changed since: not whole. */
	is_int(del_record(st, "o6"), 0, "recover: o6's record deleted");
	snprintf(cmd, sizeof cmd, "echo x >> '%s/o6/manifest.json'", cfg.dir);
	ok(system(cmd) == 0, "recover: o6's manifest changed");

	/* A crash after the rename, before the record: o1 uncatalogued. */
	is_int(del_record(st, "o1"), 0, "recover: o1's record deleted");
	/* Removed by hand: o2 has a record and no files. */
	snprintf(cmd, sizeof cmd, "rm -rf '%s/o2'", cfg.dir);
	ok(system(cmd) == 0, "recover: o2's directory deleted");
	/* What a crash leaves in the middle of a take or a removal. */
	snprintf(path, sizeof path, "%s/.tmp-o4", cfg.dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/.tmp-o4/state.mdb", cfg.dir);
	write_text(path, "half");
	snprintf(path, sizeof path, "%s/.del-o0/sub/deeper", cfg.dir);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && echo x > '%s/f'", path,
	    path);
	ok(system(cmd) == 0, "recover: .tmp-o4 and .del-o0 made");
	/* Directories with a snapshot's name that are not whole ones. */
	snprintf(path, sizeof path, "%s/junk1", cfg.dir);
	mkdir(path, 0700);
	snprintf(cmd, sizeof cmd, "cp -r '%s/o3' '%s/junk2'", cfg.dir, cfg.dir);
	ok(system(cmd) == 0, "recover: junk1 (empty), junk2 (o3's files)");
	snprintf(cmd, sizeof cmd,
	    "cp -r '%s/o3' '%s/o5' && "
	    "printf x > '%s/o5/snapshot.pb'",
	    cfg.dir, cfg.dir, cfg.dir);
	ok(system(cmd) == 0,
	    "recover: o5 with a snapshot.pb that does not "
	    "decode");
	/* Not ours: left alone. */
	snprintf(path, sizeof path, "%s/notes.txt", cfg.dir);
	write_text(path, "mine\n");
	snprintf(path, sizeof path, "%s/lost+found", cfg.dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/plain", cfg.dir);
	write_text(path, "a file with an id's name\n");

	sn = open_sn(st, &cfg);
	if (!ok(sn, "recover: reopened"))
		goto out;
	e = snapshots_find(sn, "o1");
	ok(e && e->state == SHOAL__SNAPSHOT__STATE__READY,
	    "recover: o1 catalogued again");
	rec = get_record(st, "o1");
	ok(rec && e && strcmp(rec->sha256, e->sha256) == 0,
	    "recover: ... its record written back");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);
	ok(!snapshots_find(sn, "o2"), "recover: o2 dropped");
	rec = get_record(st, "o2");
	ok(!rec, "recover: ... and its record");
	if (rec)
		shoal__snapshot__free_unpacked(rec, NULL);
	ok(snapshots_find(sn, "o3"), "recover: o3 kept");
	is_int(count(sn), 2, "recover: two listed");
	is_int(count_names(cfg.dir, ".tmp-") + count_names(cfg.dir, ".del-"), 0,
	    "recover: .tmp- and .del- removed");
	ok(!exists(cfg.dir, "junk1") && !exists(cfg.dir, "junk2") &&
	        !exists(cfg.dir, "o5") && !exists(cfg.dir, "o6") &&
	        !snapshots_find(sn, "o6"),
	    "recover: directories that are not whole snapshots removed");
	ok(exists(cfg.dir, "notes.txt") && exists(cfg.dir, "lost+found") &&
	        exists(cfg.dir, "plain"),
	    "recover: unrelated files left alone");
	{
		ProtobufCMessage *m = NULL;

		is_int(snapshots_read(sn, "o1", DB_DESIRED, "effective",
		           &shoal__desired_state__descriptor, &m, errbuf,
		           sizeof errbuf),
		    0, "recover: o1 reads back");
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
out:
	snapshots_close(&sn);
	shoal__desired_state__free_unpacked(ds, NULL);
}

/* -- killed at random --------------------------------------------------- */

static uint32_t rng = 20261124;

static uint32_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* Writes and snapshots until killed; a byte on ready once the first
 * snapshot is taken. */
static void __attribute__((noreturn)) crash_child(unsigned round, int ready)
{
	snapshots_config_t cfg = config("crash", CRASH_KEEP, 0, NULL);
	Shoal__DesiredState *ds;
	snapshots_t *sn;
	store_t *st = open_store();
	char id[32], key[8], val[700];

	if (!st)
		_exit(2);
	if (snapshots_open(st, &cfg, &sn, errbuf, sizeof errbuf) < 0)
		_exit(3);
	/* Nobody may be reading: the parent's clock may have started at the
	 * fork. */
	signal(SIGPIPE, SIG_IGN);
	ds = get_desired(st);
	for (unsigned i = 0; i < 1000; i++) {
		store_txn_t *txn;
		int r;

		if (store_begin(st, true, &txn) < 0)
			_exit(4);
		for (unsigned k = 0; k < 8; k++) {
			snprintf(key, sizeof key, "k%u", k);
			memset(val, 'a' + (int)((i + k) % 26), sizeof val);
			if (store_put(txn, DB_DESIRED, key, strlen(key), val,
			        sizeof val - (i % 100)) < 0)
				_exit(5);
		}
		if (store_commit(&txn) < 0)
			_exit(6);
		snprintf(id, sizeof id, "r%03u-%04u", round, i);
		if (!take(sn, id, ds, &r))
			_exit(7);
		if (i == 0 && write(ready, "", 1) < 0 && errno != EPIPE)
			_exit(8);
	}
	_exit(0);
}

static void
test_crash(void)
{
	snapshots_config_t cfg = config("crash", CRASH_KEEP, 0, NULL);
	int child_ok = 1, open_ok = 1, verify_ok = 1, sn_ok = 1, ready = 1,
	    read_ok = 1, clean = 1, bounded = 1, kept = 1, killed = 0,
	    taken = 0;
	unsigned most = 0;

	for (unsigned round = 0; round < CRASH_ROUNDS; round++) {
		const Shoal__Snapshot *const *v;
		Shoal__DesiredState *ds;
		ProtobufCMessage *m = NULL;
		snapshots_t *sn = NULL;
		store_t *st;
		size_t n;
		int status, pfd[2];
		char c;
		pid_t pid;

		fflush(stdout);
		if (pipe(pfd) < 0) {
			child_ok = 0;
			break;
		}
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			crash_child(round, pfd[1]);
		}
		close(pfd[1]);
		if (pid < 0) {
			close(pfd[0]);
			child_ok = 0;
			break;
		}
		/* Every other round the clock starts once the child has taken
		 * a snapshot, so that the kill lands among snapshots, not in
		 * start-up, however slow the machine. */
		if (round % 2 == 0)
			while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
				;
		close(pfd[0]);
		usleep((5 + next_rand() % 56) * 1000);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			killed++;
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			diag("round %u: child status %d", round, status);
			child_ok = 0;
		}

		st = open_store();
		if (!st) {
			diag("round %u: store_open failed", round);
			open_ok = 0;
			continue;
		}
		if (store_verify(st, NULL) < 0) {
			diag("round %u: store_verify failed", round);
			verify_ok = 0;
		}
		sn = open_sn(st, &cfg);
		if (!sn) {
			diag("round %u: snapshots_open failed", round);
			sn_ok = 0;
			store_close(&st);
			continue;
		}
		snapshots_list(sn, &v, &n);
		taken += (int)n;
		if (n > CRASH_KEEP)
			bounded = 0;
		if (round % 2 == 0 && n == 0) {
			diag("round %u: no snapshot left", round);
			kept = 0;
		}
		for (size_t i = 0; i < n; i++) {
			if (v[i]->state != SHOAL__SNAPSHOT__STATE__READY) {
				diag("round %u: %s: %s", round, v[i]->id,
				    v[i]->reason);
				ready = 0;
			}
		}
		if (n > 0) {
			const char *id = v[n - 1]->id;
			unsigned r_, i_;

			if (sscanf(id, "r%u-%u", &r_, &i_) == 2 &&
			    r_ == round && i_ + 1 > most)
				most = i_ + 1;

			if (snapshots_read(sn, id, DB_DESIRED, "effective",
			        &shoal__desired_state__descriptor, &m, errbuf,
			        sizeof errbuf) < 0) {
				diag("round %u: read %s: %s", round, id,
				    errbuf);
				read_ok = 0;
			}
			ds = (Shoal__DesiredState *)m;
			if (ds && ds->generation != 7)
				read_ok = 0;
			if (ds)
				shoal__desired_state__free_unpacked(ds, NULL);
		}
		if (count_names(cfg.dir, ".tmp-") != 0 ||
		    count_names(cfg.dir, ".del-") != 0 ||
		    count_names(cfg.dir, NULL) != (int)n) {
			diag("round %u: leftovers in %s", round, cfg.dir);
			clean = 0;
		}
		snapshots_close(&sn);
		store_close(&st);
	}
	diag("crash: %d of %d children killed, %d snapshots listed after, "
	     "at most %u taken in a round",
	    killed, CRASH_ROUNDS, taken, most);
	ok(child_ok, "crash: the child wrote and snapshotted without error");
	ok(open_ok, "crash: store_open after every kill");
	ok(verify_ok, "crash: store_verify after every kill");
	ok(sn_ok, "crash: snapshots_open after every kill");
	ok(ready, "crash: every catalogued snapshot READY after open");
	ok(read_ok, "crash: the newest one reads back");
	ok(clean, "crash: no .tmp-, .del- or uncatalogued directories");
	ok(bounded, "crash: retention holds");
	ok(kept, "crash: a snapshot taken before the kill is still there");
}

int
main(void)
{
	char path[256], cmd[300];
	store_t *st;

	snprintf(root, sizeof root, "/tmp/shoal-test-snapshots.XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	st = open_store();
	ok(st, "store opened");
	if (!st)
		return done_testing();
	is_int(put_desired(st, 7), 0, "desired state written");
	snprintf(path, sizeof path, "%s/agent.yaml", root);
	write_text(path, CONFIG_TEXT);

	test_take(st, path);
	test_config_missing(st);
	test_retention(st);
	test_corrupt(st, path);
	test_recover(st);
	store_close(&st);
	test_crash();

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}
