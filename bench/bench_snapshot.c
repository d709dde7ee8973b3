/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a snapshot costs, side by side in one run, on a store shaped like a
 * busy agent's: an outbox that held N events and was mostly acknowledged
 * (so the file keeps free pages), and a desired state of S services. Rows:
 * the hot copy alone, plain (mdb_env_copyfd2 without compaction) and
 * compacted (what snapshots use); a whole snapshots_take() (the copy, the
 * manifest, the checksum, every fsync: how long the agent's loop is held);
 * snapshots_verify(); and snapshots_read() (verify, open the copy, read
 * the desired state back: the first step of a restore). Medians of R runs.
 *
 * usage: bench_snapshot [EVENTS [SERVICES [RUNS]]]   (default 50000 20 15)
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/snapshots.h"
#include "common/store.h"
#include "common/util.h"

static const char *const dbs[] = { "meta", "outbox", "desired", "snapshots",
	"operations" };

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
median_ms(uint64_t *us, size_t n)
{
	qsort(us, n, sizeof *us, cmp_u64);
	return (double)us[n / 2] / 1000.0;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static Shoal__DesiredState *
desired(unsigned services)
{
	Shoal__DesiredState ds = SHOAL__DESIRED_STATE__INIT, *copy;
	Shoal__ServiceAssignment *a = xcalloc(services, sizeof *a);
	Shoal__ServiceAssignment **ap = xcalloc(services, sizeof *ap);
	Shoal__ServiceSpec *spec = xcalloc(services, sizeof *spec);
	char(*names)[32] = xcalloc(services, sizeof *names);

	for (unsigned i = 0; i < services; i++) {
		shoal__service_spec__init(&spec[i]);
		snprintf(names[i], sizeof names[i], "model-%u", i);
		spec[i].service = names[i];
		spec[i].image = "registry.example/models/server:1.2.3";
		spec[i].port = 8080;
		shoal__service_assignment__init(&a[i]);
		a[i].service = names[i];
		a[i].revision = 3;
		a[i].spec = &spec[i];
		a[i].active = 1;
		ap[i] = &a[i];
	}
	ds.generation = 42;
	ds.services = ap;
	ds.n_services = services;
	{
		size_t len = shoal__desired_state__get_packed_size(&ds);
		uint8_t *buf = xmalloc(len + 1);

		shoal__desired_state__pack(&ds, buf);
		copy = shoal__desired_state__unpack(NULL, len, buf);
		free(buf);
	}
	free(names);
	free(spec);
	free(ap);
	free(a);
	return copy;
}

static uint64_t
copy_once(store_t *st, const char *path, bool compact, uint64_t *bytes)
{
	uint64_t t0 = now_us(), t;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct stat sb;

	if (fd < 0 || store_copy_fd(st, fd, compact) < 0 || fsync(fd) < 0)
		abort();
	t = now_us() - t0;
	fstat(fd, &sb);
	*bytes = (uint64_t)sb.st_size;
	close(fd);
	unlink(path);
	return t;
}

int
main(int argc, char **argv)
{
	unsigned events = argc > 1 ? (unsigned)atoi(argv[1]) : 50000;
	unsigned services = argc > 2 ? (unsigned)atoi(argv[2]) : 20;
	size_t runs = argc > 3 ? (size_t)atoi(argv[3]) : 15;
	char root[] = "/var/tmp/shoal-bench-snap.XXXXXX", *sdir, *cpath;
	uint64_t *plain = xcalloc(runs, 8), *compact = xcalloc(runs, 8),
	         *take = xcalloc(runs, 8), *verify = xcalloc(runs, 8),
	         *readb = xcalloc(runs, 8), pbytes = 0, cbytes = 0, tbytes = 0;
	Shoal__DesiredState *ds = desired(services);
	snapshots_t *sn;
	store_t *st;
	store_txn_t *txn;
	char err[1024], ev[300];
	struct stat sb;
	char *data;

	if (!mkdtemp(root))
		abort();
	data = xasprintf("%s/agent", root);
	if (store_open(data, dbs, 5, 1, 1ULL << 30, &st) < 0)
		abort();
	memset(ev, 'e', sizeof ev);
	/* The outbox filled, then nine in ten acknowledged. */
	for (unsigned i = 0; i < events; i += 1000) {
		store_begin(st, true, &txn);
		for (unsigned k = i; k < i + 1000 && k < events; k++) {
			uint8_t key[8];

			store_key_u64(k + 1, key);
			store_put(txn, 1, key, 8, ev, sizeof ev);
		}
		store_commit(&txn);
	}
	store_begin(st, true, &txn);
	for (unsigned k = 0; k < events - events / 10; k++) {
		uint8_t key[8];

		store_key_u64(k + 1, key);
		store_del(txn, 1, key, 8);
	}
	store_put_msg(txn, 2, "effective", 9, &ds->base);
	store_put_msg(txn, 2, "current", 7, &ds->base);
	store_commit(&txn);
	cpath = xasprintf("%s/copy.mdb", root);
	sdir = xasprintf("%s/agent/snapshots", root);
	{
		snapshots_config_t cfg = { .dir = sdir,
			.keep = 3,
			.dbs = dbs,
			.ndbs = 5,
			.schema = 1,
			.catalogue_db = 3 };

		if (snapshots_open(st, &cfg, &sn, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	for (size_t i = 0; i < runs; i++) {
		char id[32];
		snapshot_input_t in = { .id = id,
			.message = "bench",
			.desired = ds };
		const Shoal__Snapshot *e;
		ProtobufCMessage *m = NULL;
		uint64_t t0;

		plain[i] = copy_once(st, cpath, false, &pbytes);
		compact[i] = copy_once(st, cpath, true, &cbytes);
		snprintf(id, sizeof id, "bench-%zu", i);
		t0 = now_us();
		if (snapshots_take(sn, &in, &e, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		take[i] = now_us() - t0;
		tbytes = e->bytes;
		t0 = now_us();
		if (snapshots_verify(sn, id, err, sizeof err) < 0)
			abort();
		verify[i] = now_us() - t0;
		t0 = now_us();
		if (snapshots_read(sn, id, 2, "effective",
		        &shoal__desired_state__descriptor, &m, err,
		        sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		readb[i] = now_us() - t0;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	stat(xasprintf("%s/data.mdb", data), &sb);
	printf("store: %u events written, %u kept; %u services; data.mdb "
	       "%.1f MiB; %zu runs, medians\n",
	    events, events / 10, services, sb.st_size / 1048576.0, runs);
	printf("%-40s %10s %12s\n", "", "ms", "bytes");
	printf("%-40s %10.2f %12llu\n", "hot copy, plain (mdb_env_copyfd2)",
	    median_ms(plain, runs), (unsigned long long)pbytes);
	printf("%-40s %10.2f %12llu\n", "hot copy, compacted (MDB_CP_COMPACT)",
	    median_ms(compact, runs), (unsigned long long)cbytes);
	printf("%-40s %10.2f %12llu\n", "snapshots_take (whole snapshot)",
	    median_ms(take, runs), (unsigned long long)tbytes);
	printf("%-40s %10.2f\n", "snapshots_verify", median_ms(verify, runs));
	printf("%-40s %10.2f\n", "snapshots_read (restore's first step)",
	    median_ms(readb, runs));
	snapshots_close(&sn);
	store_close(&st);
	{
		char *cmd = xasprintf("rm -rf '%s'", root);

		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", root);
		free(cmd);
	}
	return 0;
}
