/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service runner (see runner.h). Each desired service has a slot with
 * up to three containers: the active one (serving), a candidate being
 * brought up for the wanted revision, and the previous one, stopped and
 * kept for an instant rollback. Every container carries the spec it was
 * started with, and is probed with that spec's health check.
 *
 * A timer steps every slot in two lanes:
 *   - the active container is watched on its own schedule, always (also
 *     while a candidate comes up or an image is pulled): died or unhealthy
 *     -> restart with backoff;
 *   - the lifecycle: no container of the wanted revision -> revive the
 *     previous one if it is that revision, else prepare (pull) and start a
 *     candidate -> probe until healthy (switch) or failed (candidate
 *     removed, the active one keeps serving); a service no longer wanted
 *     -> its containers removed. An assignment that is not active (a
 *     blue-green rollout staging) stops short of the switch: the healthy
 *     candidate reports STAGED and is still probed, and switches once the
 *     desired state makes the same revision active.
 * A revision whose container failed is not retried until the desired state
 * changes; one whose image could not be prepared is retried with backoff.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "agent/artifacts.h"
#include "agent/docker.h"
#include "agent/jobs.h"
#include "agent/runner.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

#define TICK_MS 200
#define WORKERS 4
/* Pulls take at most this many workers: probes and restarts keep one. */
#define PULLS_MAX (WORKERS - 1)
#define OPEN_RETRY_MS 5000
#define STOP_TIMEOUT_S 10
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
/* Healthy this long after a restart: the next crash starts from the
 * shortest backoff again. */
#define BACKOFF_RESET_MS 60000
#define PREPARE_RETRY_MIN_MS 30000
#define PREPARE_RETRY_MAX_MS (5 * 60 * 1000)
/* A removal the runtime refused (it races a container's own exit). */
#define REMOVE_RETRY_MS 3000
/* Without a health check: how often a running container is looked at. */
#define WATCH_MS 2000
#define HEALTHY_DEADLINE_DEFAULT_MS (5 * 60 * 1000)
/* How often a running container's CPU and memory are read. */
#define STATS_MS 10000
/* How often the runtime is asked whether it answers (shoal_runtime_up). */
#define PING_MS 10000
#define REASON_MAX 512

typedef struct ctr {
	char id[DOCKER_ID_MAX + 1]; /* empty: none */
	uint64_t revision;
	unsigned port;
	Shoal__ServiceSpec *spec; /* owned; NULL: not known (adopted) */
	/* its health watch */
	unsigned ok_streak, fail_streak;
	uint64_t started_mono;
	uint64_t next_probe_mono;
	int probing; /* a probe job in flight */
	int staged;  /* a healthy candidate told not to serve yet */
	/* adopted (spec NULL): the artifacts it mounts, for the pins */
	char (*artifacts)[65];
	unsigned n_artifacts;
	/* its resource use, read every STATS_MS */
	int stating; /* a stats job in flight */
	int have_stats;
	uint64_t next_stats_mono;
	docker_stats_t stats;
} ctr_t;

/* The health-probe latency histogram's upper bounds, in seconds. */
static const double probe_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define PROBE_BUCKETS (sizeof probe_bounds / sizeof probe_bounds[0])

typedef struct slot {
	char name[SERVICE_NAME_MAX + 1];
	Shoal__ServiceAssignment *want; /* owned; NULL: remove the service */
	ctr_t active, cand, prev;
	int busy; /* a lifecycle job in flight */

	/* status */
	Shoal__ServiceStatus__State state;
	uint64_t state_rev;
	char reason[REASON_MAX];
	uint64_t since_ms;
	uint32_t restarts;

	/* HTTP health probes of this service's containers */
	uint64_t probe_buckets[PROBE_BUCKETS];
	uint64_t probes, probes_failed;
	double probe_seconds;

	/* preparation of want: artifacts, then the image */
	int fetching;                     /* artifacts asked for */
	uint64_t bytes_done, bytes_total; /* of want's artifacts */

	/* a revision prepared ahead of a rollout (no container) */
	uint64_t pre_rev; /* 0: none */
	Shoal__ServiceSpec *pre_spec;
	Shoal__Prestage__State pre_state;
	int pre_asked, pre_busy;
	uint64_t pre_done, pre_total, pre_retry_mono, pre_backoff_ms;
	char pre_reason[REASON_MAX];

	uint64_t failed_rev; /* its bring-up failed: wait for a new state */
	int failed_prepare;  /* ... in preparation: retried at retry_mono */
	uint64_t retry_mono;
	uint64_t prepare_backoff_ms;

	/* restarts of the active container */
	int need_restart;
	uint64_t next_restart_mono;
	uint64_t backoff_ms;
	uint64_t healthy_since_mono;
} slot_t;

struct runner {
	zloop_t *loop;
	jobs_t *jobs;
	int timer;
	char *node;
	char *socket;
	runner_hooks_t hooks;
	artifacts_t *artifacts; /* borrowed */

	docker_t *docker; /* NULL until the runtime answered */
	int opening;
	uint64_t next_open_mono;
	char runtime_err[REASON_MAX];
	int listing;
	int adopted; /* the first container list is in */
	unsigned pulling;
	int runtime_up;       /* its last call was answered */
	int stating, pinging; /* a stats or ping job in flight */
	uint64_t next_ping_mono;
	/* containers a removal failed for, tried again at garbage_mono */
	char **garbage;
	size_t ngarbage;
	uint64_t garbage_mono;

	slot_t *v;
	size_t n;
	char **extra_pins; /* runner_set_extra_pins(): the snapshots' */
	size_t nextra;

	/* runner_status() storage */
	Shoal__ServiceStatus *st;
	Shoal__ServiceStatus **stp;
	Shoal__Prestage *pre;
	char (*endpoints)[32];
};

enum job_kind {
	J_OPEN,
	J_LIST,
	J_PREPARE,
	J_PRESTAGE,
	J_START,
	J_PROBE,
	J_RESTART,
	J_REVIVE,
	J_SWITCH,
	J_REMOVE,
	J_STATS,
	J_PING,
};

typedef struct rjob {
	job_t base;
	runner_t *rn;
	enum job_kind kind;
	char service[SERVICE_NAME_MAX + 1];
	uint64_t revision;
	docker_t *docker;
	Shoal__ServiceSpec *spec; /* owned copy */
	char name[192];
	char id[DOCKER_ID_MAX + 1];
	char id2[DOCKER_ID_MAX + 1];
	char **ids; /* J_REMOVE */
	size_t nids;
	char **binds; /* J_START: artifacts, "host:container:ro", NULL-ended */
	/* results */
	int r;
	char err[REASON_MAX];
	unsigned port;
	char state[16];
	int exit_code;
	int probe_ok;
	int probed; /* an HTTP probe was made, taking probe_s */
	double probe_s;
	docker_stats_t stats;
	docker_container_t *list;
	size_t nlist;
} rjob_t;

static void set_state(runner_t *rn, slot_t *s, Shoal__ServiceStatus__State st,
    uint64_t rev, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void emit(runner_t *rn, const char *kind, const char *service,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
emit(runner_t *rn, const char *kind, const char *service, const char *fmt, ...)
{
	char msg[REASON_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rn->hooks.event)
		rn->hooks.event(kind, service, msg, rn->hooks.arg);
}

static void
set_state(runner_t *rn, slot_t *s, Shoal__ServiceStatus__State st, uint64_t rev,
    const char *fmt, ...)
{
	char reason[REASON_MAX] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(reason, sizeof reason, fmt, ap);
		va_end(ap);
		/* Reasons quote daemons and container logs: the coordinator
		 * would refuse the whole report over one escape sequence. */
		wire_clean_text(reason, sizeof reason - 1, 1);
	}
	if (s->state == st && s->state_rev == rev &&
	    strcmp(s->reason, reason) == 0)
		return;
	if (s->state != st || s->state_rev != rev)
		s->since_ms = now_ms();
	s->state = st;
	s->state_rev = rev;
	snprintf(s->reason, sizeof s->reason, "%s", reason);
	if (rn->hooks.status_changed)
		rn->hooks.status_changed(rn->hooks.arg);
}

static Shoal__ServiceSpec *
spec_copy(const Shoal__ServiceSpec *spec)
{
	return spec ? wire_copy(&spec->base) : NULL;
}

static Shoal__ServiceAssignment *
assignment_copy(const Shoal__ServiceAssignment *a)
{
	return wire_copy(&a->base);
}

static void
ctr_clear(ctr_t *c)
{
	if (c->spec)
		shoal__service_spec__free_unpacked(c->spec, NULL);
	free(c->artifacts);
	memset(c, 0, sizeof *c);
}

static void
pre_clear(slot_t *s)
{
	if (s->pre_spec)
		shoal__service_spec__free_unpacked(s->pre_spec, NULL);
	s->pre_spec = NULL;
	s->pre_rev = 0;
	s->pre_asked = 0;
	s->pre_done = s->pre_total = 0;
	s->pre_backoff_ms = 0;
	s->pre_reason[0] = '\0';
	s->pre_state = SHOAL__PRESTAGE__STATE__PREPARING;
}

/* Moves src into dst (whatever dst held is freed); src is left empty. A
 * probe in flight on src answers for an id no slot field holds any more,
 * and is ignored. */
static void
ctr_move(ctr_t *dst, ctr_t *src)
{
	ctr_clear(dst);
	*dst = *src;
	dst->probing = 0;
	memset(src, 0, sizeof *src);
}

static void
watch(ctr_t *c, uint64_t now)
{
	c->ok_streak = c->fail_streak = 0;
	c->started_mono = now;
	c->next_probe_mono = now;
}

static slot_t *
find_slot(runner_t *rn, const char *name)
{
	for (size_t i = 0; i < rn->n; i++)
		if (strcmp(rn->v[i].name, name) == 0)
			return &rn->v[i];
	return NULL;
}

static slot_t *
add_slot(runner_t *rn, const char *name)
{
	slot_t *s;

	rn->v = xrealloc(rn->v, (rn->n + 1) * sizeof *rn->v);
	s = &rn->v[rn->n++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->backoff_ms = BACKOFF_MIN_MS;
	s->prepare_backoff_ms = PREPARE_RETRY_MIN_MS;
	s->since_ms = now_ms();
	return s;
}

static void
drop_slot(runner_t *rn, slot_t *s)
{
	size_t i = (size_t)(s - rn->v);

	if (s->want)
		shoal__service_assignment__free_unpacked(s->want, NULL);
	pre_clear(s);
	ctr_clear(&s->active);
	ctr_clear(&s->cand);
	ctr_clear(&s->prev);
	memmove(&rn->v[i], &rn->v[i + 1], (rn->n - i - 1) * sizeof *rn->v);
	rn->n--;
	if (rn->hooks.status_changed)
		rn->hooks.status_changed(rn->hooks.arg);
}

/* -- jobs (worker threads) --------------------------------------------- */

/* The container's name: unique per node, service and revision, so agents
 * sharing a runtime never collide. */
static void
container_name(const char *node, const char *service, uint64_t rev, char *buf,
    size_t size)
{
	snprintf(buf, size, "shoal-%s-%s-r%llu", node, service,
	    (unsigned long long)rev);
}

static void
run_prepare(rjob_t *j)
{
	int r = docker_image_present(j->docker, j->spec->image, j->err,
	    sizeof j->err);

	if (r == 0)
		r = docker_pull(j->docker, j->spec->image, NULL, NULL, j->err,
		    sizeof j->err);
	j->r = r < 0 ? r : 0;
}

static void
run_start(rjob_t *j)
{
	const Shoal__ServiceSpec *sp = j->spec;
	docker_create_t c = { 0 };
	docker_container_t info;
	char rev[24], err[REASON_MAX];
	const char **env = xcalloc(sp->n_env + 1, sizeof *env);
	const char **cmd = NULL;
	const char *labels[] = { "shoal.managed", "true", "shoal.service",
		sp->service, "shoal.revision", rev, "shoal.node", j->rn->node,
		NULL };
	char **envbuf = xcalloc(sp->n_env + 1, sizeof *envbuf);
	int r;

	snprintf(rev, sizeof rev, "%llu", (unsigned long long)j->revision);
	for (size_t i = 0; i < sp->n_env; i++) {
		envbuf[i] =
		    xasprintf("%s=%s", sp->env[i]->name, sp->env[i]->value);
		env[i] = envbuf[i];
	}
	if (sp->n_command) {
		cmd = xcalloc(sp->n_command + 1, sizeof *cmd);
		for (size_t i = 0; i < sp->n_command; i++)
			cmd[i] = sp->command[i];
	}
	c.name = j->name;
	c.image = sp->image;
	c.cmd = cmd;
	c.env = env;
	c.labels = labels;
	c.port = sp->port;
	c.binds = (const char *const *)j->binds;
	if (sp->resources) {
		c.memory_bytes = sp->resources->memory_bytes;
		c.cpus = sp->resources->cpus;
		c.gpus = sp->resources->gpus;
	}
	/* A container of this name is what a crash in the middle of an
	 * earlier attempt left behind. */
	docker_remove(j->docker, j->name, 1, err, sizeof err);
	r = docker_create(j->docker, &c, j->id, j->err, sizeof j->err);
	if (r == 0)
		r = docker_start(j->docker, j->id, j->err, sizeof j->err);
	if (r == 0)
		r = docker_inspect(j->docker, j->id, &info, j->err,
		    sizeof j->err);
	if (r == 0)
		j->port = info.host_port;
	else if (j->id[0])
		docker_remove(j->docker, j->id, 1, err, sizeof err);
	j->r = r;
	for (size_t i = 0; i < sp->n_env; i++)
		free(envbuf[i]);
	free(envbuf);
	free(env);
	free(cmd);
}

static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

/* One HTTP probe; 1 when the answer had the expected status. */
static int
http_probe(unsigned port, const Shoal__HealthCheck *h, char *err, size_t errlen)
{
	CURL *curl = curl_easy_init();
	char url[512];
	long status = 0;
	CURLcode cc;

	if (!curl)
		abort();
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, h->path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "GET %s: %s", h->path,
		    curl_easy_strerror(cc));
		return 0;
	}
	if (status != (long)h->expect_status) {
		snprintf(err, errlen, "GET %s: status %ld, expected %u",
		    h->path, status, h->expect_status);
		return 0;
	}
	return 1;
}

/* The last line a stopped container wrote, into j->err: usually why. */
static void
last_log_line(rjob_t *j)
{
	char *text = NULL, err[REASON_MAX], *end, *start;

	j->err[0] = '\0';
	if (docker_logs_tail(j->docker, j->id, 5, &text, err, sizeof err) < 0)
		return;
	end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	start = strrchr(text, '\n');
	start = start ? start + 1 : text;
	snprintf(j->err, sizeof j->err, "%s", start);
	free(text);
}

static void
run_probe(rjob_t *j)
{
	docker_container_t info;

	j->r = docker_inspect(j->docker, j->id, &info, j->err, sizeof j->err);
	if (j->r < 0)
		return;
	snprintf(j->state, sizeof j->state, "%s", info.state);
	j->exit_code = info.exit_code;
	j->port = info.host_port;
	if (strcmp(info.state, "running") != 0) {
		last_log_line(j);
		return;
	}
	/* No health check, or an adopted older revision whose spec this
	 * agent never had: running is healthy. */
	if (!j->spec || !j->spec->health) {
		j->probe_ok = 1;
		return;
	}
	if (!info.host_port) {
		snprintf(j->err, sizeof j->err,
		    "container port %u is not published", j->spec->port);
		return;
	}
	{
		uint64_t t0 = mono_us();

		j->probe_ok = http_probe(info.host_port, j->spec->health,
		    j->err, sizeof j->err);
		j->probe_s = (double)(mono_us() - t0) / 1e6;
		j->probed = 1;
	}
}

/* Starts a container again: a restart (stop first) or the revival of the
 * stopped previous revision for a rollback. */
static void
run_restart(rjob_t *j, int stop)
{
	docker_container_t info;
	char err[REASON_MAX];

	if (stop)
		docker_stop(j->docker, j->id, STOP_TIMEOUT_S, err, sizeof err);
	j->r = docker_start(j->docker, j->id, j->err, sizeof j->err);
	if (j->r == 0)
		j->r = docker_inspect(j->docker, j->id, &info, j->err,
		    sizeof j->err);
	if (j->r == 0)
		j->port = info.host_port;
}

static void
run_job(job_t *job)
{
	rjob_t *j = (rjob_t *)job;
	char err[REASON_MAX];

	switch (j->kind) {
	case J_OPEN:
		j->r = docker_open(j->rn->socket, &j->docker, j->err,
		    sizeof j->err);
		break;
	case J_LIST:
		j->r = docker_list(j->docker, "shoal.node", j->rn->node,
		    &j->list, &j->nlist, j->err, sizeof j->err);
		break;
	case J_PREPARE:
	case J_PRESTAGE:
		run_prepare(j);
		break;
	case J_START:
		run_start(j);
		break;
	case J_PROBE:
		run_probe(j);
		break;
	case J_RESTART:
		run_restart(j, 1);
		break;
	case J_REVIVE:
		run_restart(j, 0);
		break;
	case J_SWITCH:
		/* id: the old active, stopped and kept; id2: the one before
		 * it, removed. */
		j->r = 0;
		if (j->id[0])
			j->r = docker_stop(j->docker, j->id, STOP_TIMEOUT_S,
			    j->err, sizeof j->err);
		if (j->id2[0])
			docker_remove(j->docker, j->id2, 1, err, sizeof err);
		break;
	case J_STATS:
		j->r = docker_stats(j->docker, j->id, &j->stats, j->err,
		    sizeof j->err);
		break;
	case J_PING:
		j->r = docker_ping(j->docker, j->err, sizeof j->err);
		break;
	case J_REMOVE:
		j->r = 0;
		for (size_t i = 0; i < j->nids; i++) {
			int r = docker_remove(j->docker, j->ids[i], 1, j->err,
			    sizeof j->err);

			if (r < 0)
				j->r = r;
		}
		break;
	}
}

/* -- completions (loop thread) ----------------------------------------- */

static void job_done(job_t *job, void *arg);

/* Whether the runtime answered this job's calls: a connection refused or
 * cut, or no answer in time, is down; a refusal (404, 409) is up. */
static void
note_runtime(runner_t *rn, const rjob_t *j)
{
	if (j->kind == J_OPEN || j->kind == J_PRESTAGE)
		return; /* J_OPEN sets it itself; prestages call no runtime */
	if ((j->r < 0 && j->r > SHOAL_E_BASE) || j->r == SHOAL_E_TIMEOUT)
		rn->runtime_up = 0;
	else
		rn->runtime_up = 1;
}

static void
observe_probe(slot_t *s, const rjob_t *j)
{
	size_t b = 0;

	while (b < PROBE_BUCKETS && j->probe_s > probe_bounds[b])
		b++;
	if (b < PROBE_BUCKETS)
		s->probe_buckets[b]++;
	s->probes++;
	s->probe_seconds += j->probe_s;
	if (!j->probe_ok)
		s->probes_failed++;
}

static void
stats_done(slot_t *s, const rjob_t *j, uint64_t now)
{
	ctr_t *c;

	if (!s)
		return;
	/* The container may have moved (switched out and kept) meanwhile. */
	for (ctr_t *k = &s->active; k <= &s->prev; k++)
		if (strcmp(k->id, j->id) == 0)
			k->stating = 0;
	c = strcmp(s->active.id, j->id) == 0 ? &s->active : NULL;
	if (!c)
		return;
	c->next_stats_mono = now + STATS_MS;
	if (j->r < 0) {
		log_service(LOG_DEBUG, NULL, s->name, c->revision,
		    "service %s: stats of %.12s: %s", s->name, j->id, j->err);
		return;
	}
	c->stats = j->stats;
	c->have_stats = 1;
}

/* A job for slot s (NULL: none); lifecycle jobs mark the slot busy. */
static rjob_t *
new_job(runner_t *rn, enum job_kind kind, slot_t *s)
{
	rjob_t *j = xcalloc(1, sizeof *j);

	j->base.run = run_job;
	j->base.done = job_done;
	j->base.arg = rn;
	j->rn = rn;
	j->kind = kind;
	j->docker = rn->docker;
	if (s) {
		snprintf(j->service, sizeof j->service, "%s", s->name);
		if (s->want) {
			j->revision = s->want->revision;
			j->spec = spec_copy(s->want->spec);
		}
		if (kind != J_PROBE && kind != J_PRESTAGE && kind != J_STATS &&
		    kind != J_PING)
			s->busy = 1;
	}
	return j;
}

/* A probe of c, with the spec c was started with. */
static void
probe(runner_t *rn, slot_t *s, ctr_t *c)
{
	rjob_t *j = new_job(rn, J_PROBE, s);

	if (j->spec)
		shoal__service_spec__free_unpacked(j->spec, NULL);
	j->spec = spec_copy(c->spec);
	j->revision = c->revision;
	snprintf(j->id, sizeof j->id, "%s", c->id);
	c->probing = 1;
	jobs_submit(rn->jobs, &j->base);
}

static void
free_job(rjob_t *j)
{
	if (j->spec)
		shoal__service_spec__free_unpacked(j->spec, NULL);
	for (size_t i = 0; i < j->nids; i++)
		free(j->ids[i]);
	free(j->ids);
	for (size_t i = 0; j->binds && j->binds[i]; i++)
		free(j->binds[i]);
	free(j->binds);
	free(j->list);
	free(j);
}

static uint64_t
healthy_deadline_ms(const Shoal__ServiceSpec *spec)
{
	if (spec && spec->update && spec->update->healthy_deadline_ms)
		return spec->update->healthy_deadline_ms;
	return HEALTHY_DEADLINE_DEFAULT_MS;
}

static uint64_t
probe_interval_ms(const Shoal__ServiceSpec *spec)
{
	return spec && spec->health ? spec->health->interval_ms : WATCH_MS;
}

static void
remove_ids(runner_t *rn, slot_t *s, const char *a, const char *b, const char *c)
{
	const char *ids[] = { a, b, c };
	rjob_t *j = new_job(rn, J_REMOVE, s);

	j->ids = xcalloc(3, sizeof *j->ids);
	for (int i = 0; i < 3; i++)
		if (ids[i] && ids[i][0])
			j->ids[j->nids++] = xstrdup(ids[i]);
	jobs_submit(rn->jobs, &j->base);
}

/* Revision rev could not be brought up; prepare: its image could not be
 * had (retried with backoff) rather than its container failing. */
static void
bring_up_failed(runner_t *rn, slot_t *s, uint64_t rev, int prepare,
    const char *why)
{
	if (s->cand.id[0] && s->cand.revision == rev) {
		char id[DOCKER_ID_MAX + 1];

		snprintf(id, sizeof id, "%s", s->cand.id);
		ctr_clear(&s->cand);
		remove_ids(rn, s, id, NULL, NULL);
	}
	if (!s->want || s->want->revision != rev)
		return; /* the desired state moved on meanwhile */
	set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__FAILED, rev, "%s%s", why,
	    prepare ? " (tried again later)" : "");
	emit(rn, "service.failed", s->name, "revision %llu failed: %s",
	    (unsigned long long)rev, why);
	log_service(LOG_WARNING, NULL, s->name, rev,
	    "service %s revision %llu failed: %s%s", s->name,
	    (unsigned long long)rev, why,
	    s->active.id[0] ? "; the previous revision keeps serving" : "");
	s->failed_rev = rev;
	s->failed_prepare = prepare;
	if (prepare) {
		s->retry_mono = mono_ms() + s->prepare_backoff_ms;
		s->prepare_backoff_ms =
		    s->prepare_backoff_ms * 2 > PREPARE_RETRY_MAX_MS
		    ? PREPARE_RETRY_MAX_MS
		    : s->prepare_backoff_ms * 2;
	}
}

static void
switch_to_candidate(runner_t *rn, slot_t *s)
{
	rjob_t *j = new_job(rn, J_SWITCH, s);

	snprintf(j->id, sizeof j->id, "%s", s->active.id);
	snprintf(j->id2, sizeof j->id2, "%s", s->prev.id);
	if (s->active.id[0])
		ctr_move(&s->prev, &s->active);
	else
		ctr_clear(&s->prev);
	ctr_move(&s->active, &s->cand);
	s->active.staged = 0;
	watch(&s->active, mono_ms());
	s->active.next_probe_mono =
	    mono_ms() + probe_interval_ms(s->active.spec);
	s->healthy_since_mono = mono_ms();
	s->backoff_ms = BACKOFF_MIN_MS;
	s->need_restart = 0;
	set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__HEALTHY,
	    s->active.revision, NULL);
	emit(rn, "service.healthy", s->name,
	    "revision %llu healthy at 127.0.0.1:%u",
	    (unsigned long long)s->active.revision, s->active.port);
	log_service(LOG_INFO, NULL, s->name, s->active.revision,
	    "service %s revision %llu healthy at 127.0.0.1:%u", s->name,
	    (unsigned long long)s->active.revision, s->active.port);
	jobs_submit(rn->jobs, &j->base);
}

static void
probe_candidate(runner_t *rn, slot_t *s, rjob_t *j, uint64_t now)
{
	const Shoal__ServiceSpec *spec = s->cand.spec;
	const Shoal__HealthCheck *h = spec ? spec->health : NULL;
	char why[REASON_MAX + 64];

	if (j->r < 0) {
		bring_up_failed(rn, s, s->cand.revision, 0, j->err);
		return;
	}
	if (j->port)
		s->cand.port = j->port;
	if (strcmp(j->state, "running") != 0) {
		snprintf(why, sizeof why, "container %s (exit code %d)%s%s",
		    j->state, j->exit_code, j->err[0] ? ": " : "", j->err);
		bring_up_failed(rn, s, s->cand.revision, 0, why);
		return;
	}
	if (j->probe_ok) {
		s->cand.fail_streak = 0;
		if (++s->cand.ok_streak < (h ? h->healthy_threshold : 1))
			return;
		if (s->want && s->want->revision == s->cand.revision &&
		    !s->want->active) {
			/* Staged: healthy beside the serving one until the
			 * desired state says switch. */
			if (!s->cand.staged) {
				s->cand.staged = 1;
				set_state(rn, s,
				    SHOAL__SERVICE_STATUS__STATE__STAGED,
				    s->cand.revision, NULL);
				emit(rn, "service.staged", s->name,
				    "revision %llu staged (healthy, not "
				    "serving) at 127.0.0.1:%u",
				    (unsigned long long)s->cand.revision,
				    s->cand.port);
			}
			return;
		}
		switch_to_candidate(rn, s);
		return;
	}
	s->cand.ok_streak = 0;
	if (h && now - s->cand.started_mono >= h->start_period_ms &&
	    ++s->cand.fail_streak >= h->unhealthy_threshold) {
		snprintf(why, sizeof why,
		    "health check failed %u times in a row: %s",
		    s->cand.fail_streak, j->err);
		bring_up_failed(rn, s, s->cand.revision, 0, why);
		return;
	}
	if (s->cand.staged)
		return; /* it was healthy: the deadline is met */
	if (now - s->cand.started_mono > healthy_deadline_ms(spec)) {
		snprintf(why, sizeof why,
		    "not healthy within %llums (healthy_deadline): %s",
		    (unsigned long long)healthy_deadline_ms(spec), j->err);
		bring_up_failed(rn, s, s->cand.revision, 0, why);
	}
}

static int
is_current(const slot_t *s)
{
	return s->want && s->active.revision == s->want->revision;
}

/* The active container is gone (removed from outside): start over. */
static void
active_gone(runner_t *rn, slot_t *s)
{
	emit(rn, "container.died", s->name,
	    "revision %llu: container %.12s is gone",
	    (unsigned long long)s->active.revision, s->active.id);
	log_service(LOG_WARNING, NULL, s->name, s->active.revision,
	    "service %s: container %.12s is gone", s->name, s->active.id);
	if (is_current(s)) {
		s->failed_rev = 0;
		set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__PENDING,
		    s->want->revision, "container removed from outside");
	}
	ctr_clear(&s->active);
	s->need_restart = 0;
}

static void
schedule_restart(runner_t *rn, slot_t *s, const char *why, uint64_t now)
{
	if (s->healthy_since_mono &&
	    now - s->healthy_since_mono > BACKOFF_RESET_MS)
		s->backoff_ms = BACKOFF_MIN_MS;
	s->need_restart = 1;
	s->next_restart_mono = now + s->backoff_ms;
	if (is_current(s))
		set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__UNHEALTHY,
		    s->active.revision, "%s; restarting in %llus", why,
		    (unsigned long long)(s->backoff_ms / 1000));
	emit(rn, "container.died", s->name, "revision %llu: %s",
	    (unsigned long long)s->active.revision, why);
	log_service(LOG_WARNING, NULL, s->name, s->active.revision,
	    "service %s: %s; restarting in %llums", s->name, why,
	    (unsigned long long)s->backoff_ms);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : s->backoff_ms * 2;
	s->healthy_since_mono = 0;
}

static void
probe_active(runner_t *rn, slot_t *s, rjob_t *j, uint64_t now)
{
	const Shoal__HealthCheck *h =
	    s->active.spec ? s->active.spec->health : NULL;
	char why[REASON_MAX + 64];

	if (j->r == SHOAL_E_NOT_FOUND) {
		active_gone(rn, s);
		return;
	}
	if (j->r < 0)
		return; /* the runtime is busy or away: look again later */
	if (j->port)
		s->active.port = j->port;
	if (strcmp(j->state, "running") != 0) {
		snprintf(why, sizeof why, "container %s (exit code %d)%s%s",
		    j->state, j->exit_code, j->err[0] ? ": " : "", j->err);
		schedule_restart(rn, s, why, now);
		return;
	}
	if (j->probe_ok) {
		s->active.fail_streak = 0;
		if (is_current(s) &&
		    s->state != SHOAL__SERVICE_STATUS__STATE__HEALTHY) {
			s->healthy_since_mono = now;
			set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__HEALTHY,
			    s->active.revision, NULL);
			emit(rn, "service.healthy", s->name,
			    "revision %llu healthy at 127.0.0.1:%u",
			    (unsigned long long)s->active.revision,
			    s->active.port);
		}
		return;
	}
	if (!h || now - s->active.started_mono < h->start_period_ms)
		return;
	if (++s->active.fail_streak >= h->unhealthy_threshold) {
		snprintf(why, sizeof why,
		    "health check failed %u times in a row: %s",
		    s->active.fail_streak, j->err);
		s->active.fail_streak = 0;
		schedule_restart(rn, s, why, now);
	}
}

static void
garbage_add(char ***v, size_t *n, const char *id)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = xstrdup(id);
}

static ctr_t
ctr_of(const docker_container_t *c)
{
	ctr_t ctr = { .revision = c->revision, .port = c->host_port };

	snprintf(ctr.id, sizeof ctr.id, "%s", c->id);
	if (c->n_artifacts) {
		ctr.artifacts = xcalloc(c->n_artifacts, sizeof *ctr.artifacts);
		memcpy(ctr.artifacts, c->artifacts,
		    c->n_artifacts * sizeof *ctr.artifacts);
		ctr.n_artifacts = c->n_artifacts;
	}
	return ctr;
}

/*
 * The first list of this node's containers. Per wanted service: the
 * newest running older revision keeps serving as the active container; a
 * running container of the wanted revision becomes the candidate when such
 * an older one serves, else the active one (restarted if stopped); the
 * newest stopped older revision is kept as the previous one. Everything
 * else, and every container of a service not wanted, is removed.
 */
static void
adopt(runner_t *rn, rjob_t *j)
{
	char **garbage = NULL;
	size_t ng = 0;
	uint64_t now = mono_ms();

	for (size_t i = 0; i < rn->n; i++) {
		slot_t *s = &rn->v[i];
		const docker_container_t *wanted = NULL, *older = NULL,
		                         *stopped = NULL;

		if (!s->want)
			continue;
		for (size_t k = 0; k < j->nlist; k++) {
			const docker_container_t *c = &j->list[k];
			int running = strcmp(c->state, "running") == 0;

			if (strcmp(c->service, s->name) != 0)
				continue;
			if (c->revision == s->want->revision) {
				wanted = c;
			} else if (running) {
				if (older && older->revision > c->revision) {
					garbage_add(&garbage, &ng, c->id);
				} else {
					if (older)
						garbage_add(&garbage, &ng,
						    older->id);
					older = c;
				}
			} else {
				if (stopped &&
				    stopped->revision > c->revision) {
					garbage_add(&garbage, &ng, c->id);
				} else {
					if (stopped)
						garbage_add(&garbage, &ng,
						    stopped->id);
					stopped = c;
				}
			}
		}
		if (older) {
			s->active = ctr_of(older);
			watch(&s->active, now);
		}
		if (wanted && strcmp(wanted->state, "running") == 0) {
			/* Staged only (a blue-green rollout): it does not
			 * serve, even with nothing older running. */
			ctr_t *c =
			    older || !s->want->active ? &s->cand : &s->active;

			*c = ctr_of(wanted);
			c->spec = spec_copy(s->want->spec);
			watch(c, now);
		} else if (wanted && !older && s->want->active) {
			s->active = ctr_of(wanted);
			s->active.spec = spec_copy(s->want->spec);
			watch(&s->active, now);
			s->need_restart = 1;
			s->next_restart_mono = now;
		} else if (wanted) {
			/* Stopped, with an older one serving (or staged
			 * only): bring it up again from the start. */
			garbage_add(&garbage, &ng, wanted->id);
		}
		if (stopped)
			s->prev = ctr_of(stopped);
		if (s->active.id[0] || s->cand.id[0]) {
			const ctr_t *c = s->cand.id[0] ? &s->cand : &s->active;

			log_service(LOG_INFO, NULL, s->name, c->revision,
			    "service %s: adopted container %.12s "
			    "(revision %llu)%s",
			    s->name, c->id, (unsigned long long)c->revision,
			    older && s->cand.id[0] ? " as the candidate" : "");
			set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__STARTING,
			    s->want->revision,
			    "adopted after an agent restart");
		}
	}
	for (size_t k = 0; k < j->nlist; k++) {
		slot_t *s = find_slot(rn, j->list[k].service);

		if (!s || !s->want)
			garbage_add(&garbage, &ng, j->list[k].id);
	}
	if (ng) {
		rjob_t *rj = new_job(rn, J_REMOVE, NULL);

		rj->ids = garbage;
		rj->nids = ng;
		jobs_submit(rn->jobs, &rj->base);
	}
	rn->adopted = 1;
}

static void
start_candidate(runner_t *rn, slot_t *s, uint64_t rev)
{
	rjob_t *sj = new_job(rn, J_START, s);
	const Shoal__ServiceSpec *sp = sj->spec;

	container_name(rn->node, s->name, rev, sj->name, sizeof sj->name);
	/* Every artifact read-only where the spec says, from the cache. */
	sj->binds = xcalloc(sp->n_artifacts + 1, sizeof *sj->binds);
	for (size_t i = 0; i < sp->n_artifacts; i++) {
		char path[PATH_MAX];

		artifacts_path(rn->artifacts, sp->artifacts[i]->sha256, path,
		    sizeof path);
		sj->binds[i] =
		    xasprintf("%s:%s:ro", path, sp->artifacts[i]->path);
	}
	set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__STARTING, rev, NULL);
	jobs_submit(rn->jobs, &sj->base);
}

/*
 * Asks for every artifact of spec: ARTIFACT_READY when all are in the
 * cache, FAILED with why naming the artifact, else BUSY. *done and *total
 * add up their bytes (an artifact of unknown size counts what came).
 */
static artifact_state_t
fetch_all(runner_t *rn, const char *service, const Shoal__ServiceSpec *spec,
    int retry, uint64_t *done, uint64_t *total, char *why, size_t whylen)
{
	artifact_state_t all = ARTIFACT_READY;

	*done = *total = 0;
	for (size_t i = 0; spec && i < spec->n_artifacts; i++) {
		const Shoal__Artifact *a = spec->artifacts[i];
		artifact_status_t st;

		artifacts_want(rn->artifacts, a, service, retry, &st);
		/* A server's size can be smaller than what came: never
		 * report more done than in all. */
		*done += st.total && st.done > st.total ? st.total : st.done;
		*total += st.total ? st.total : st.done;
		if (st.state == ARTIFACT_FAILED && all != ARTIFACT_FAILED) {
			all = ARTIFACT_FAILED;
			snprintf(why, whylen, "artifact %s: %s", a->path,
			    st.reason ? st.reason : "failed");
		} else if (st.state == ARTIFACT_BUSY && all == ARTIFACT_READY) {
			all = ARTIFACT_BUSY;
		}
	}
	return all;
}

static void
pre_fail(runner_t *rn, slot_t *s, const char *why)
{
	snprintf(s->pre_reason, sizeof s->pre_reason, "%s", why);
	wire_clean_text(s->pre_reason, sizeof s->pre_reason - 1, 1);
	s->pre_state = SHOAL__PRESTAGE__STATE__FAILED;
	s->pre_asked = 0;
	/* The coordinator stops asking once the rollout has it; until
	 * then, tries again ever more rarely. */
	if (s->pre_backoff_ms < PREPARE_RETRY_MIN_MS)
		s->pre_backoff_ms = PREPARE_RETRY_MIN_MS;
	s->pre_retry_mono = mono_ms() + s->pre_backoff_ms;
	s->pre_backoff_ms = s->pre_backoff_ms * 2 > PREPARE_RETRY_MAX_MS
	    ? PREPARE_RETRY_MAX_MS
	    : s->pre_backoff_ms * 2;
	emit(rn, "service.prestage_failed", s->name,
	    "revision %llu cannot be prepared: %s",
	    (unsigned long long)s->pre_rev, why);
	log_service(LOG_WARNING, NULL, s->name, s->pre_rev,
	    "service %s: revision %llu cannot be prepared: %s", s->name,
	    (unsigned long long)s->pre_rev, why);
	if (rn->hooks.status_changed)
		rn->hooks.status_changed(rn->hooks.arg);
}

static void
prestage_done(runner_t *rn, slot_t *s, rjob_t *j)
{
	rn->pulling--;
	if (!s)
		return;
	s->pre_busy = 0;
	if (s->pre_rev != j->revision)
		return; /* the desired state moved on meanwhile */
	if (j->r < 0) {
		pre_fail(rn, s, j->err);
		return;
	}
	s->pre_state = SHOAL__PRESTAGE__STATE__READY;
	emit(rn, "service.prestaged", s->name,
	    "revision %llu prepared: %zu artifacts (%llu bytes) and image %s",
	    (unsigned long long)s->pre_rev, s->pre_spec->n_artifacts,
	    (unsigned long long)s->pre_done, s->pre_spec->image);
	log_service(LOG_INFO, NULL, s->name, s->pre_rev,
	    "service %s: revision %llu prepared ahead of its rollout", s->name,
	    (unsigned long long)s->pre_rev);
	if (rn->hooks.status_changed)
		rn->hooks.status_changed(rn->hooks.arg);
}

/* A revision to prepare ahead of a rollout: its artifacts, then its
 * image; no container. Runs beside the lifecycle, which it never holds. */
static void
step_prestage(runner_t *rn, slot_t *s, uint64_t now)
{
	char why[REASON_MAX];
	uint64_t done, total;
	artifact_state_t st;
	rjob_t *j;
	int retry = !s->pre_asked;

	if (!s->pre_rev || s->pre_busy ||
	    s->pre_state == SHOAL__PRESTAGE__STATE__READY)
		return;
	if (s->pre_state == SHOAL__PRESTAGE__STATE__FAILED &&
	    now < s->pre_retry_mono)
		return;
	if (s->pre_state == SHOAL__PRESTAGE__STATE__FAILED) {
		s->pre_state = SHOAL__PRESTAGE__STATE__PREPARING;
		s->pre_reason[0] = '\0';
		retry = 1;
		if (rn->hooks.status_changed)
			rn->hooks.status_changed(rn->hooks.arg);
	}
	s->pre_asked = 1;
	st = fetch_all(rn, s->name, s->pre_spec, retry, &done, &total, why,
	    sizeof why);
	if (done != s->pre_done || total != s->pre_total) {
		s->pre_done = done;
		s->pre_total = total;
		if (rn->hooks.status_changed)
			rn->hooks.status_changed(rn->hooks.arg);
	}
	if (st == ARTIFACT_FAILED) {
		pre_fail(rn, s, why);
		return;
	}
	if (st == ARTIFACT_BUSY || rn->pulling >= PULLS_MAX)
		return;
	rn->pulling++;
	j = new_job(rn, J_PRESTAGE, s);
	if (j->spec)
		shoal__service_spec__free_unpacked(j->spec, NULL);
	j->spec = spec_copy(s->pre_spec);
	j->revision = s->pre_rev;
	s->pre_busy = 1;
	jobs_submit(rn->jobs, &j->base);
}

static void
pin_spec(const Shoal__ServiceSpec *spec, const char ***v, size_t *n)
{
	for (size_t i = 0; spec && i < spec->n_artifacts; i++) {
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = spec->artifacts[i]->sha256;
	}
}

/* A container's artifacts: its spec's, or (adopted, no spec) those its
 * mounts named when it was listed. */
static void
pin_ctr(const ctr_t *c, const char ***v, size_t *n)
{
	pin_spec(c->spec, v, n);
	for (unsigned i = 0; i < c->n_artifacts; i++) {
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = c->artifacts[i];
	}
}

void
runner_pin_artifacts(runner_t *rn)
{
	const char **v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < rn->n; i++) {
		const slot_t *s = &rn->v[i];

		if (s->want)
			pin_spec(s->want->spec, &v, &n);
		pin_spec(s->pre_spec, &v, &n);
		pin_ctr(&s->active, &v, &n);
		pin_ctr(&s->cand, &v, &n);
		pin_ctr(&s->prev, &v, &n);
	}
	for (size_t i = 0; i < rn->nextra; i++) {
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = rn->extra_pins[i];
	}
	artifacts_pin(rn->artifacts, v, n);
	free(v);
}

void
runner_set_extra_pins(runner_t *rn, const char *const *sha, size_t n)
{
	for (size_t i = 0; i < rn->nextra; i++)
		free(rn->extra_pins[i]);
	free(rn->extra_pins);
	rn->extra_pins = n ? xcalloc(n, sizeof *rn->extra_pins) : NULL;
	for (size_t i = 0; i < n; i++)
		rn->extra_pins[i] = xstrdup(sha[i]);
	rn->nextra = n;
	runner_pin_artifacts(rn);
}

static void
job_done(job_t *job, void *arg)
{
	runner_t *rn = arg;
	rjob_t *j = (rjob_t *)job;
	slot_t *s = j->service[0] ? find_slot(rn, j->service) : NULL;
	uint64_t now = mono_ms();
	int wanted = s && s->want && s->want->revision == j->revision;

	if (job->cancelled)
		goto out;
	if (j->kind == J_PRESTAGE) {
		prestage_done(rn, s, j);
		goto out;
	}
	note_runtime(rn, j);
	if (j->kind == J_STATS) {
		rn->stating = 0;
		stats_done(s, j, now);
		goto out;
	}
	if (j->kind == J_PING) {
		rn->pinging = 0;
		goto out;
	}
	if (s && j->kind == J_PROBE && j->probed)
		observe_probe(s, j);
	if (s && j->kind != J_PROBE)
		s->busy = 0;
	switch (j->kind) {
	case J_OPEN:
		rn->opening = 0;
		if (j->r < 0) {
			snprintf(rn->runtime_err, sizeof rn->runtime_err, "%s",
			    j->err);
			rn->next_open_mono = now + OPEN_RETRY_MS;
			log_warning("container runtime at %s: %s (trying again "
			            "in %ds)",
			    rn->socket, j->err, OPEN_RETRY_MS / 1000);
			break;
		}
		rn->docker = j->docker;
		rn->runtime_up = 1;
		rn->runtime_err[0] = '\0';
		log_info("container runtime at %s: API %s", rn->socket,
		    docker_api_version(rn->docker));
		break;
	case J_LIST:
		rn->listing = 0;
		if (j->r < 0) {
			log_warning("cannot list containers: %s", j->err);
			break;
		}
		adopt(rn, j);
		break;
	case J_PREPARE:
		rn->pulling--;
		if (!wanted)
			break; /* the desired state moved on meanwhile */
		if (j->r < 0)
			bring_up_failed(rn, s, j->revision, 1, j->err);
		else
			start_candidate(rn, s, j->revision);
		break;
	case J_START:
	case J_REVIVE:
		if (j->r < 0) {
			if (j->kind == J_REVIVE && s) {
				/* The kept container is unusable: start
				 * from the image instead. */
				log_service(LOG_WARNING, NULL, s->name,
				    j->revision,
				    "service %s: cannot start the kept "
				    "revision %llu: %s",
				    s->name, (unsigned long long)j->revision,
				    j->err);
				ctr_clear(&s->prev);
				remove_ids(rn, s, j->id, NULL, NULL);
			} else if (wanted) {
				bring_up_failed(rn, s, j->revision, 0, j->err);
			}
			break;
		}
		if (!wanted) {
			/* Started for a state that is gone: remove it. */
			remove_ids(rn, s, j->id, NULL, NULL);
			break;
		}
		if (j->kind == J_REVIVE)
			ctr_move(&s->cand, &s->prev);
		snprintf(s->cand.id, sizeof s->cand.id, "%s", j->id);
		s->cand.revision = j->revision;
		s->cand.port = j->port;
		if (s->cand.spec)
			shoal__service_spec__free_unpacked(s->cand.spec, NULL);
		s->cand.spec = spec_copy(j->spec);
		watch(&s->cand, now);
		emit(rn, "service.started", s->name,
		    "revision %llu %s container %.12s",
		    (unsigned long long)j->revision,
		    j->kind == J_REVIVE ? "back in its kept" : "started as",
		    j->id);
		break;
	case J_PROBE:
		if (!s)
			break;
		if (s->cand.id[0] && strcmp(s->cand.id, j->id) == 0) {
			s->cand.probing = 0;
			s->cand.next_probe_mono =
			    now + probe_interval_ms(s->cand.spec);
			probe_candidate(rn, s, j, now);
		} else if (s->active.id[0] &&
		    strcmp(s->active.id, j->id) == 0) {
			s->active.probing = 0;
			s->active.next_probe_mono =
			    now + probe_interval_ms(s->active.spec);
			probe_active(rn, s, j, now);
		}
		break;
	case J_RESTART:
		if (!s || strcmp(s->active.id, j->id) != 0)
			break;
		if (j->r == SHOAL_E_NOT_FOUND) {
			active_gone(rn, s);
			break;
		}
		if (j->r < 0) {
			schedule_restart(rn, s, j->err, now);
			break;
		}
		s->need_restart = 0;
		s->restarts++;
		s->active.port = j->port;
		watch(&s->active, now);
		if (is_current(s))
			set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__STARTING,
			    s->active.revision, "restarted");
		emit(rn, "container.restarted", s->name,
		    "revision %llu restarted (%u restarts)",
		    (unsigned long long)s->active.revision, s->restarts);
		break;
	case J_PRESTAGE:
		break; /* prestage_done() */
	case J_SWITCH:
		if (j->r < 0)
			log_service(LOG_WARNING, NULL, j->service, 0,
			    "service %s: cannot stop the previous "
			    "container: %s",
			    j->service, j->err);
		break;
	case J_REMOVE:
		if (j->r < 0) {
			/* Removing what is gone already is no error: every
			 * id goes again, later. */
			log_warning(
			    "cannot remove containers: %s (trying again "
			    "in %ds)",
			    j->err, REMOVE_RETRY_MS / 1000);
			for (size_t i = 0; i < j->nids; i++)
				garbage_add(&rn->garbage, &rn->ngarbage,
				    j->ids[i]);
			rn->garbage_mono = now + REMOVE_RETRY_MS;
		}
		if (s && !s->want && !s->active.id[0] && !s->cand.id[0] &&
		    !s->prev.id[0]) {
			emit(rn, "service.removed", s->name,
			    "service removed from this node");
			drop_slot(rn, s);
		}
		break;
	case J_STATS:
	case J_PING:
		break; /* handled above */
	}
out:
	if ((j->kind == J_PREPARE || j->kind == J_PRESTAGE) && job->cancelled)
		rn->pulling--;
	free_job(j);
}

/* -- stepping (loop thread) -------------------------------------------- */

static void
step(runner_t *rn, slot_t *s, uint64_t now)
{
	char why[REASON_MAX];
	uint64_t done, total;
	artifact_state_t st;
	int retry = 0;
	rjob_t *j;

	if (!s->want) {
		if (s->busy || s->active.probing || s->cand.probing)
			return;
		if (s->active.id[0] || s->cand.id[0] || s->prev.id[0]) {
			remove_ids(rn, s, s->active.id, s->cand.id, s->prev.id);
			ctr_clear(&s->active);
			ctr_clear(&s->cand);
			ctr_clear(&s->prev);
		} else {
			drop_slot(rn, s);
		}
		return;
	}
	/* The active container is watched whatever the lifecycle does. */
	if (s->active.id[0] && !s->active.probing && !s->need_restart &&
	    now >= s->active.next_probe_mono)
		probe(rn, s, &s->active);
	/* One stats job at a time, and none while the pool is nearly full:
	 * probes and restarts come first. */
	if (s->active.id[0] && !s->active.stating && !rn->stating &&
	    now >= s->active.next_stats_mono &&
	    jobs_pending(rn->jobs) < WORKERS - 1) {
		j = new_job(rn, J_STATS, s);
		snprintf(j->id, sizeof j->id, "%s", s->active.id);
		s->active.stating = 1;
		rn->stating = 1;
		jobs_submit(rn->jobs, &j->base);
	}
	step_prestage(rn, s, now);
	if (s->busy)
		return;
	if (s->cand.id[0] && s->cand.revision != s->want->revision) {
		/* A newer desired state arrived while it came up. */
		if (!s->cand.probing) {
			char id[DOCKER_ID_MAX + 1];

			snprintf(id, sizeof id, "%s", s->cand.id);
			ctr_clear(&s->cand);
			remove_ids(rn, s, id, NULL, NULL);
		}
		return;
	}
	if (s->active.id[0] && s->need_restart && !s->active.probing) {
		if (now < s->next_restart_mono)
			return;
		j = new_job(rn, J_RESTART, s);
		snprintf(j->id, sizeof j->id, "%s", s->active.id);
		jobs_submit(rn->jobs, &j->base);
		return;
	}
	if (s->cand.id[0]) {
		if (s->cand.staged && s->want->active && !s->cand.probing) {
			switch_to_candidate(rn, s);
			return;
		}
		if (!s->cand.probing && now >= s->cand.next_probe_mono)
			probe(rn, s, &s->cand);
		return;
	}
	if (is_current(s))
		return;
	if (s->failed_rev == s->want->revision) {
		if (!s->failed_prepare || now < s->retry_mono)
			return;
		s->failed_rev = 0; /* the image may be there now */
	}
	if (s->prev.id[0] && s->prev.revision == s->want->revision) {
		/* A rollback to the kept revision: no pull, no create. */
		set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__STARTING,
		    s->want->revision, "starting the kept container");
		j = new_job(rn, J_REVIVE, s);
		snprintf(j->id, sizeof j->id, "%s", s->prev.id);
		jobs_submit(rn->jobs, &j->base);
		return;
	}
	/* Staging preparation: time spent here never counts against the
	 * health deadline, which starts when the container does. */
	if (!s->fetching) {
		s->fetching = 1;
		retry = 1;
		set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__PREPARING,
		    s->want->revision, NULL);
	}
	st = fetch_all(rn, s->name, s->want->spec, retry, &done, &total, why,
	    sizeof why);
	if (done != s->bytes_done || total != s->bytes_total) {
		s->bytes_done = done;
		s->bytes_total = total;
		if (rn->hooks.status_changed)
			rn->hooks.status_changed(rn->hooks.arg);
	}
	if (st == ARTIFACT_FAILED) {
		s->fetching = 0;
		bring_up_failed(rn, s, s->want->revision, 1, why);
		return;
	}
	if (st == ARTIFACT_BUSY || rn->pulling >= PULLS_MAX)
		return;
	s->fetching = 0;
	rn->pulling++;
	j = new_job(rn, J_PREPARE, s);
	jobs_submit(rn->jobs, &j->base);
}

static int
on_tick(zloop_t *loop, int timer_id, void *arg)
{
	runner_t *rn = arg;
	uint64_t now = mono_ms();

	if (!rn->docker) {
		if (!rn->opening && now >= rn->next_open_mono) {
			rjob_t *j = new_job(rn, J_OPEN, NULL);

			rn->opening = 1;
			jobs_submit(rn->jobs, &j->base);
		}
		return 0;
	}
	if (!rn->adopted) {
		if (!rn->listing) {
			rjob_t *j = new_job(rn, J_LIST, NULL);

			rn->listing = 1;
			jobs_submit(rn->jobs, &j->base);
		}
		return 0;
	}
	if (!rn->pinging && now >= rn->next_ping_mono) {
		rjob_t *j = new_job(rn, J_PING, NULL);

		rn->pinging = 1;
		rn->next_ping_mono = now + PING_MS;
		jobs_submit(rn->jobs, &j->base);
	}
	if (rn->ngarbage && now >= rn->garbage_mono) {
		rjob_t *j = new_job(rn, J_REMOVE, NULL);

		j->ids = rn->garbage;
		j->nids = rn->ngarbage;
		rn->garbage = NULL;
		rn->ngarbage = 0;
		jobs_submit(rn->jobs, &j->base);
	}
	/* Backwards: step() may drop the slot it is given. */
	for (size_t i = rn->n; i-- > 0;)
		step(rn, &rn->v[i], now);
	return 0;
}

/* -- interface --------------------------------------------------------- */

int
runner_new(zloop_t *loop, const char *node_id, const char *socket,
    artifacts_t *artifacts, const runner_hooks_t *hooks, runner_t **ret)
{
	runner_t *rn = xcalloc(1, sizeof *rn);
	int r;

	rn->loop = loop;
	rn->artifacts = artifacts;
	rn->node = xstrdup(node_id);
	rn->socket = xstrdup(socket);
	rn->hooks = *hooks;
	snprintf(rn->runtime_err, sizeof rn->runtime_err,
	    "waiting for the container runtime at %s", socket);
	r = jobs_new(loop, WORKERS, &rn->jobs);
	if (r < 0) {
		free(rn->node);
		free(rn->socket);
		free(rn);
		return r;
	}
	rn->timer = zloop_timer(loop, TICK_MS, 0, on_tick, rn);
	*ret = rn;
	return 0;
}

void
runner_destroy(runner_t **rnp)
{
	runner_t *rn = *rnp;

	if (!rn)
		return;
	zloop_timer_end(rn->loop, rn->timer);
	/* Completions find no hooks to call any more. */
	rn->hooks = (runner_hooks_t){ 0 };
	jobs_destroy(&rn->jobs);
	docker_close(&rn->docker);
	for (size_t i = 0; i < rn->n; i++) {
		slot_t *s = &rn->v[i];

		if (s->want)
			shoal__service_assignment__free_unpacked(s->want, NULL);
		pre_clear(s);
		ctr_clear(&s->active);
		ctr_clear(&s->cand);
		ctr_clear(&s->prev);
	}
	for (size_t i = 0; i < rn->ngarbage; i++)
		free(rn->garbage[i]);
	free(rn->garbage);
	for (size_t i = 0; i < rn->nextra; i++)
		free(rn->extra_pins[i]);
	free(rn->extra_pins);
	free(rn->v);
	free(rn->st);
	free(rn->stp);
	free(rn->pre);
	free(rn->endpoints);
	free(rn->node);
	free(rn->socket);
	free(rn);
	*rnp = NULL;
}

void
runner_set_desired(runner_t *rn, const Shoal__DesiredState *ds)
{
	/* Services no longer wanted. */
	for (size_t i = 0; i < rn->n; i++) {
		slot_t *s = &rn->v[i];
		int wanted = 0;

		for (size_t k = 0; k < ds->n_services && !wanted; k++)
			wanted = strcmp(ds->services[k]->service, s->name) == 0;
		if (!wanted && s->want) {
			shoal__service_assignment__free_unpacked(s->want, NULL);
			s->want = NULL;
			pre_clear(s);
			log_service(LOG_INFO, NULL, s->name, 0,
			    "service %s: no longer wanted here", s->name);
		}
	}
	for (size_t k = 0; k < ds->n_services; k++) {
		const Shoal__ServiceAssignment *a = ds->services[k];
		slot_t *s = find_slot(rn, a->service);

		if (!s)
			s = add_slot(rn, a->service);
		if (a->prestage_revision != s->pre_rev) {
			pre_clear(s);
			if (a->prestage_revision) {
				s->pre_rev = a->prestage_revision;
				s->pre_spec = spec_copy(a->prestage_spec);
				log_service(LOG_INFO, NULL, s->name, s->pre_rev,
				    "service %s: revision %llu to prepare "
				    "ahead of its rollout",
				    s->name, (unsigned long long)s->pre_rev);
			}
		}
		if (s->want && s->want->revision == a->revision) {
			if (s->want->active != a->active) {
				/* Staged -> serving (or back): same
				 * revision, same containers. */
				s->want->active = a->active;
				log_service(LOG_INFO, NULL, s->name,
				    a->revision,
				    "service %s: revision %llu to %s", s->name,
				    (unsigned long long)a->revision,
				    a->active ? "serve" : "stay staged");
			}
			continue;
		}
		if (s->want)
			shoal__service_assignment__free_unpacked(s->want, NULL);
		s->want = assignment_copy(a);
		s->failed_rev = 0;
		s->fetching = 0;
		s->bytes_done = s->bytes_total = 0;
		s->prepare_backoff_ms = PREPARE_RETRY_MIN_MS;
		log_service(LOG_INFO, NULL, s->name, a->revision,
		    "service %s: revision %llu wanted", s->name,
		    (unsigned long long)a->revision);
		if (!s->active.id[0] || s->active.revision != a->revision)
			set_state(rn, s, SHOAL__SERVICE_STATUS__STATE__PENDING,
			    a->revision, "%s",
			    rn->docker ? "" : rn->runtime_err);
	}
}

int
runner_ready(const runner_t *rn)
{
	return rn->adopted || !rn->docker;
}

void
runner_summary(const runner_t *rn, size_t *services, size_t *healthy,
    int *runtime_up)
{
	*services = *healthy = 0;
	for (size_t i = 0; i < rn->n; i++) {
		if (!rn->v[i].want)
			continue;
		(*services)++;
		if (rn->v[i].state == SHOAL__SERVICE_STATUS__STATE__HEALTHY)
			(*healthy)++;
	}
	*runtime_up = rn->docker && rn->runtime_up;
}

void
runner_status(runner_t *rn, Shoal__StatusReport *rep)
{
	size_t n = 0;

	free(rn->st);
	free(rn->stp);
	free(rn->pre);
	free(rn->endpoints);
	rn->pre = xcalloc(rn->n + 1, sizeof *rn->pre);
	rn->st = xcalloc(rn->n + 1, sizeof *rn->st);
	rn->stp = xcalloc(rn->n + 1, sizeof *rn->stp);
	rn->endpoints = xcalloc(rn->n + 1, sizeof *rn->endpoints);
	for (size_t i = 0; i < rn->n; i++) {
		slot_t *s = &rn->v[i];
		Shoal__ServiceStatus *st = &rn->st[n];
		const ctr_t *shown = s->cand.id[0] ? &s->cand : &s->active;

		if (!s->want)
			continue; /* being removed */
		shoal__service_status__init(st);
		st->service = s->name;
		st->revision = s->want->revision;
		st->state = s->state;
		st->container = (char *)shown->id;
		if (s->active.id[0] && s->active.port) {
			snprintf(rn->endpoints[n], sizeof rn->endpoints[n],
			    "127.0.0.1:%u", s->active.port);
			st->endpoint = rn->endpoints[n];
		}
		st->reason = s->reason;
		if (!s->reason[0] && !rn->docker)
			st->reason = rn->runtime_err;
		st->since_ms = s->since_ms;
		st->restarts = s->restarts;
		st->bytes_done = s->bytes_done;
		st->bytes_total = s->bytes_total;
		if (s->pre_rev) {
			Shoal__Prestage *p = &rn->pre[n];

			shoal__prestage__init(p);
			p->revision = s->pre_rev;
			p->state = s->pre_state;
			p->bytes_done = s->pre_done;
			p->bytes_total = s->pre_total;
			p->reason = s->pre_reason;
			st->prestage = p;
		}
		if (s->active.id[0] &&
		    (s->state == SHOAL__SERVICE_STATUS__STATE__HEALTHY ||
		        s->active.revision != s->want->revision))
			st->serving_revision = s->active.revision;
		rn->stp[n++] = st;
	}
	rep->services = rn->stp;
	rep->n_services = n;
}

void
runner_render_metrics(runner_t *rn, prom_t *p)
{
	static const Shoal__ServiceStatus__State states[] = {
		SHOAL__SERVICE_STATUS__STATE__PENDING,
		SHOAL__SERVICE_STATUS__STATE__PREPARING,
		SHOAL__SERVICE_STATUS__STATE__STARTING,
		SHOAL__SERVICE_STATUS__STATE__STAGED,
		SHOAL__SERVICE_STATUS__STATE__HEALTHY,
		SHOAL__SERVICE_STATUS__STATE__UNHEALTHY,
		SHOAL__SERVICE_STATUS__STATE__FAILED,
	};

	prom_family(p, "shoal_runtime_up", "gauge",
	    "1 when the container runtime's API answers.");
	prom_gauge(p, "shoal_runtime_up", rn->docker && rn->runtime_up);
	prom_family(p, "shoal_service_state", "gauge",
	    "1 for the state each service is in on this node.");
	for (size_t i = 0; i < rn->n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
			if (!rn->v[i].want)
				continue;
			prom_begin(p, "shoal_service_state");
			prom_label(p, "service", rn->v[i].name);
			prom_label(p, "state",
			    wire_service_state_name(states[k]));
			prom_value_uint(p, rn->v[i].state == states[k]);
		}
	prom_family(p, "shoal_service_revision", "gauge",
	    "The revision each service's state is about.");
	for (size_t i = 0; i < rn->n; i++) {
		if (!rn->v[i].want)
			continue;
		prom_begin(p, "shoal_service_revision");
		prom_label(p, "service", rn->v[i].name);
		prom_value_uint(p, rn->v[i].state_rev);
	}
	prom_family(p, "shoal_service_restarts_total", "counter",
	    "Restarts of each service's container since the agent started.");
	for (size_t i = 0; i < rn->n; i++) {
		prom_begin(p, "shoal_service_restarts_total");
		prom_label(p, "service", rn->v[i].name);
		prom_value_uint(p, rn->v[i].restarts);
	}
	prom_family(p, "shoal_health_probe_duration_seconds", "histogram",
	    "How long each HTTP health probe took, failed ones included.");
	for (size_t i = 0; i < rn->n; i++) {
		const slot_t *s = &rn->v[i];

		prom_histogram(p, "shoal_health_probe_duration_seconds",
		    "service", s->name, probe_bounds, s->probe_buckets,
		    PROBE_BUCKETS, s->probe_seconds, s->probes);
	}
	prom_family(p, "shoal_health_probe_failures_total", "counter",
	    "HTTP health probes that did not get the expected answer.");
	for (size_t i = 0; i < rn->n; i++) {
		prom_begin(p, "shoal_health_probe_failures_total");
		prom_label(p, "service", rn->v[i].name);
		prom_value_uint(p, rn->v[i].probes_failed);
	}
	prom_family(p, "shoal_container_cpu_seconds_total", "counter",
	    "CPU time used by each service's serving container, as the "
	    "runtime reports it.");
	for (size_t i = 0; i < rn->n; i++) {
		const ctr_t *c = &rn->v[i].active;

		if (!c->id[0] || !c->have_stats)
			continue;
		prom_begin(p, "shoal_container_cpu_seconds_total");
		prom_label(p, "service", rn->v[i].name);
		prom_label_uint(p, "revision", c->revision);
		prom_value(p, (double)c->stats.cpu_ns / 1e9);
	}
	prom_family(p, "shoal_container_memory_bytes", "gauge",
	    "Memory in use by each service's serving container.");
	for (size_t i = 0; i < rn->n; i++) {
		const ctr_t *c = &rn->v[i].active;

		if (!c->id[0] || !c->have_stats)
			continue;
		prom_begin(p, "shoal_container_memory_bytes");
		prom_label(p, "service", rn->v[i].name);
		prom_label_uint(p, "revision", c->revision);
		prom_value_uint(p, c->stats.memory_bytes);
	}
}
