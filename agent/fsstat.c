/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file system statistics thread (see fsstat.h). The loop and the
 * thread share one structure under a mutex: the mounts asked for (with a
 * generation, so an ask is answered once), the answers, and which statvfs
 * is running since when. statvfs itself runs unlocked.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "agent/fsstat.h"
#include "common/util.h"

struct fsstat {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, exited;

	/* asked by the loop */
	procfs_mount_t *ask;
	size_t nask;
	uint64_t ask_gen;

	/* answered by the thread */
	fsstat_result_t *res;
	size_t nres;
	uint64_t done_gen;

	/* the statvfs in progress: 0 when none */
	uint64_t busy_since;
	char busy_path[sizeof((procfs_mount_t *)0)->mountpoint];
	char hung[sizeof((procfs_mount_t *)0)->mountpoint];
};

static void
stat_one(fsstat_result_t *r)
{
	struct statvfs sv;

	if (statvfs(r->mount.mountpoint, &sv) < 0) {
		r->error = 1;
		return;
	}
	r->size = (uint64_t)sv.f_blocks * sv.f_frsize;
	r->free = (uint64_t)sv.f_bfree * sv.f_frsize;
	r->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	r->files = sv.f_files;
	r->files_free = sv.f_ffree;
}

static void *
run(void *arg)
{
	fsstat_t *f = arg;
	fsstat_result_t *work = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		size_t n;
		uint64_t gen;

		while (!f->stop && f->ask_gen == f->done_gen)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop)
			break;
		n = f->nask;
		gen = f->ask_gen;
		if (n > cap) {
			work = xrealloc(work, n * sizeof *work);
			cap = n;
		}
		for (size_t i = 0; i < n; i++) {
			memset(&work[i], 0, sizeof work[i]);
			work[i].mount = f->ask[i];
		}
		for (size_t i = 0; i < n && !f->stop; i++) {
			f->busy_since = mono_ms();
			memcpy(f->busy_path, work[i].mount.mountpoint,
			    sizeof f->busy_path);
			pthread_mutex_unlock(&f->mu);
			stat_one(&work[i]);
			pthread_mutex_lock(&f->mu);
			f->busy_since = 0;
		}
		if (f->stop)
			break;
		/* Publish: swap the work array in. */
		{
			fsstat_result_t *old = f->res;
			size_t oldcap = f->nres;

			f->res = work;
			f->nres = n;
			work = old;
			cap = old ? oldcap : 0;
			/* a capacity at least as large as its count */
		}
		f->done_gen = gen;
		pthread_cond_broadcast(&f->cv); /* fsstat_wait() */
	}
	f->exited = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	free(work);
	return NULL;
}

int
fsstat_new(fsstat_t **ret)
{
	fsstat_t *f = xcalloc(1, sizeof *f);
	pthread_condattr_t ca;
	int r;

	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&f->thread, NULL, run, f);
	if (r != 0) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return -r;
	}
	*ret = f;
	return 0;
}

void
fsstat_destroy(fsstat_t **fp)
{
	fsstat_t *f = *fp;
	struct timespec until;
	int exited;

	if (!f)
		return;
	*fp = NULL;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv);
	while (!f->exited &&
	    pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT)
		;
	exited = f->exited;
	pthread_mutex_unlock(&f->mu);
	if (!exited) {
		/* Stuck in statvfs: it may never come back. Leave it what it
		 * uses; the process is going away. */
		pthread_detach(f->thread);
		return;
	}
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->ask);
	free(f->res);
	free(f);
}

void
fsstat_request(fsstat_t *f, const procfs_mount_t *const *v, size_t n)
{
	pthread_mutex_lock(&f->mu);
	/* While the thread works on the last ask its array stays: the new
	 * one replaces it only when the thread is idle or between asks. */
	if (f->ask_gen != f->done_gen) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	f->ask = xrealloc(f->ask, (n ? n : 1) * sizeof *f->ask);
	for (size_t i = 0; i < n; i++)
		f->ask[i] = *v[i];
	f->nask = n;
	f->ask_gen++;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void
fsstat_wait(fsstat_t *f, uint64_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&f->mu);
	while (f->done_gen != f->ask_gen && !f->exited &&
	    pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->mu);
}

size_t
fsstat_results(fsstat_t *f, fsstat_result_t *out, size_t cap, const char **hung)
{
	size_t n;

	*hung = NULL;
	pthread_mutex_lock(&f->mu);
	n = f->nres < cap ? f->nres : cap;
	if (n) /* f->res is NULL before the first answer */
		memcpy(out, f->res, n * sizeof *out);
	if (f->busy_since && mono_ms() - f->busy_since >= FSSTAT_HANG_MS) {
		memcpy(f->hung, f->busy_path, sizeof f->hung);
		*hung = f->hung;
		for (size_t i = 0; i < n; i++)
			if (strcmp(out[i].mount.mountpoint, f->hung) == 0)
				out[i].error = 1;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}
