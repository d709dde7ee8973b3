/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rollout engine (see rollout.h for its two state tables). Everything
 * here works on the message alone: no I/O, no clock of its own, so the
 * unit tests drive it through every transition with made-up reports.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/rollout.h"

#define NS(x) SHOAL__ROLLOUT_NODE__STATE__##x
#define RS(x) SHOAL__ROLLOUT__STATE__##x
#define AS(x) SHOAL__SERVICE_STATUS__STATE__##x

/* Milliseconds from then to now on the wall clock, which may step back
 * (the times are stored, and a restart must read them): never negative. */
static uint64_t
elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static uint32_t
share(uint32_t v, int percent, size_t n)
{
	uint64_t k = percent ? ((uint64_t)n * v + 99) / 100 : v;

	if (k > n)
		k = n;
	return k ? (uint32_t)k : 1;
}

uint32_t
rollout_parallel(const Shoal__UpdateStrategy *u, size_t n)
{
	return share(u->max_parallel ? u->max_parallel : 1,
	    u->max_parallel_percent, n);
}

uint32_t
rollout_canaries(const Shoal__UpdateStrategy *u, size_t n)
{
	if (u->strategy != SHOAL__UPDATE_STRATEGY__KIND__CANARY ||
	    u->canary == 0 || n == 0)
		return 0;
	return share(u->canary, u->canary_percent, n);
}

Shoal__Rollout *
rollout_new(const char *service, uint64_t id, uint64_t from, uint64_t to,
    const Shoal__UpdateStrategy *u, const rollout_member_t *m, size_t n,
    uint64_t now)
{
	Shoal__Rollout ro = SHOAL__ROLLOUT__INIT;
	Shoal__RolloutNode *v = xcalloc(n + 1, sizeof *v);
	Shoal__RolloutNode **vp = xcalloc(n + 1, sizeof *vp);
	int bluegreen = u->strategy == SHOAL__UPDATE_STRATEGY__KIND__BLUE_GREEN;
	uint32_t mp = rollout_parallel(u, n), canaries = rollout_canaries(u, n);
	uint32_t waves = 0;
	Shoal__Rollout *ret;

	for (size_t i = 0; i < n; i++) {
		uint32_t wave;

		if (bluegreen)
			wave = 0; /* every node stages, then all switch */
		else if (i < canaries)
			wave = 0;
		else
			wave = (canaries ? 1 : 0) +
			    (uint32_t)((i - canaries) / mp);
		shoal__rollout_node__init(&v[i]);
		v[i].node = (char *)m[i].node;
		v[i].from_revision = m[i].from_revision;
		v[i].state = NS(PRESTAGING);
		v[i].silent_since_ms = now;
		v[i].wave = wave;
		v[i].since_ms = now;
		vp[i] = &v[i];
		if (wave + 1 > waves)
			waves = wave + 1;
	}
	ro.service = (char *)service;
	ro.id = id;
	ro.from_revision = from;
	ro.to_revision = to;
	ro.update = (Shoal__UpdateStrategy *)u;
	ro.state = RS(RUNNING);
	ro.waves = waves;
	ro.canaries = canaries;
	ro.nodes = vp;
	ro.n_nodes = n;
	ro.started_ms = ro.updated_ms = ro.progress_ms = now;
	ret = wire_copy(&ro.base);
	free(vp);
	free(v);
	return ret;
}

/* Members come in node id order (the registry's), so a node is found by
 * bisection: compute() asks for every node of every service. A record in
 * another order is still searched right, only slower. */
Shoal__RolloutNode *
rollout_find_node(const Shoal__Rollout *ro, const char *node)
{
	size_t lo = 0, hi = ro->n_nodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ro->nodes[mid]->node, node);

		if (c == 0)
			return ro->nodes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < ro->n_nodes; i++)
		if (strcmp(ro->nodes[i]->node, node) == 0)
			return ro->nodes[i];
	return NULL;
}

int
rollout_active(const Shoal__Rollout *ro)
{
	return ro->state == RS(RUNNING) || ro->state == RS(WAITING_PROMOTE) ||
	    ro->state == RS(REVERTING);
}

void
rollout_assignment(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    uint64_t *ret_revision, int *ret_active)
{
	*ret_active = 1;
	switch (n->state) {
	case NS(STAGING):
	case NS(STAGED):
		*ret_revision = ro->to_revision;
		*ret_active = 0;
		break;
	case NS(SWITCHING):
	case NS(SETTLING):
	case NS(DONE):
		*ret_revision = ro->to_revision;
		break;
	default: /* PENDING, FAILED, REVERTING, REVERTED */
		*ret_revision = n->from_revision;
		break;
	}
}

uint64_t
rollout_prestage(const Shoal__Rollout *ro, const Shoal__RolloutNode *n)
{
	if (ro->state != RS(RUNNING) && ro->state != RS(WAITING_PROMOTE))
		return 0;
	return n->state == NS(PRESTAGING) || n->state == NS(PENDING)
	    ? ro->to_revision
	    : 0;
}

int
rollout_prestaging(const Shoal__Rollout *ro)
{
	for (size_t i = 0; i < ro->n_nodes; i++)
		if (ro->nodes[i]->state == NS(PRESTAGING))
			return 1;
	return 0;
}

uint64_t
rollout_settled_revision(const Shoal__Rollout *ro)
{
	return ro->state == RS(SUCCEEDED) || rollout_active(ro) ||
	        ro->state == RS(SUPERSEDED)
	    ? ro->to_revision
	    : ro->from_revision;
}

/* -- node transitions --------------------------------------------------- */

static void note(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    const rollout_hooks_t *h, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
note(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    const rollout_hooks_t *h, const char *kind, const char *fmt, ...)
{
	char msg[WIRE_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (h && h->note)
		h->note(ro, n, kind, msg, h->arg);
}

/* Moves n to state st; a move that changes what the node runs asks for a
 * new generation stamp. */
static void
enter(Shoal__Rollout *ro, Shoal__RolloutNode *n, Shoal__RolloutNode__State st,
    uint64_t now, const rollout_hooks_t *h, const char *reason)
{
	uint64_t rev0, rev1, pre0 = rollout_prestage(ro, n);
	int act0, act1;

	rollout_assignment(ro, n, &rev0, &act0);
	n->state = st;
	n->since_ms = now;
	ro->progress_ms = now;
	if (reason)
		wire_set_text(&n->reason, "%s", reason);
	if (st == NS(SWITCHING))
		n->switched = 1;
	rollout_assignment(ro, n, &rev1, &act1);
	if (rev0 != rev1 || act0 != act1 || pre0 != rollout_prestage(ro, n))
		n->generation = 0;
	/* Settling is the wait before done: not worth an event per node;
	 * prestaged nodes are told above, with their bytes. */
	if (st != NS(SETTLING) && st != NS(PENDING))
		note(ro, n, h, "rollout.node", "%s: %s%s%s", n->node,
		    wire_rollout_node_state_name(st), reason ? ": " : "",
		    reason ? reason : "");
}

static int
in_flight(const Shoal__RolloutNode *n)
{
	return n->state == NS(STAGING) || n->state == NS(STAGED) ||
	    n->state == NS(SWITCHING) || n->state == NS(SETTLING);
}

static int
terminal(const Shoal__RolloutNode *n)
{
	return n->state == NS(DONE) || n->state == NS(FAILED) ||
	    n->state == NS(REVERTED);
}

static void
fail_node(Shoal__Rollout *ro, Shoal__RolloutNode *n, uint64_t now,
    const rollout_hooks_t *h, const char *why)
{
	enter(ro, n, NS(FAILED), now, h, why);
	ro->failures++;
}

/* One node against what it reports; 1 when it changed. */
static int
observe_node(Shoal__Rollout *ro, Shoal__RolloutNode *n, uint64_t now,
    const rollout_hooks_t *h, int *ret_preparing)
{
	rollout_obs_t o = { .selected = 1 };
	int changed = 0;
	char why[WIRE_MAX_MESSAGE];

	if (terminal(n))
		return 0;
	if (h && h->observe)
		h->observe(ro, n, &o, h->arg);
	if (!o.selected && !terminal(n)) {
		/* Gone from the service: nothing to revert there either. */
		n->switched = 0;
		enter(ro, n, NS(DONE), now, h, "no longer selected");
		return 1;
	}
	if (n->state == NS(PRESTAGING)) {
		/* Preparing has no deadline, but a node that says nothing
		 * of it (offline, or an agent that does not prestage) has
		 * progress_deadline to start. */
		int heard = o.fresh && n->generation &&
		    o.prestage_revision == ro->to_revision;

		if (heard && n->silent_since_ms) {
			n->silent_since_ms = 0;
			changed = 1;
		} else if (!heard && !n->silent_since_ms) {
			n->silent_since_ms = now;
			changed = 1;
		} else if (!heard &&
		    elapsed(now, n->silent_since_ms) >
		        ro->update->progress_deadline_ms) {
			snprintf(why, sizeof why,
			    "no report of its preparation for %llums "
			    "(progress_deadline): offline, or an agent that "
			    "does not prestage",
			    (unsigned long long)
			        ro->update->progress_deadline_ms);
			fail_node(ro, n, now, h, why);
			return 1;
		}
	}
	if (!o.fresh || n->generation == 0)
		return changed;
	*ret_preparing = in_flight(n) && o.revision == ro->to_revision &&
	    o.state == AS(PREPARING);
	if (o.revision == ro->to_revision && o.state != n->agent_state &&
	    in_flight(n)) {
		n->agent_state = o.state;
		ro->progress_ms = now;
		changed = 1;
	}
	switch (n->state) {
	case NS(PRESTAGING):
		if (o.prestage_revision != ro->to_revision)
			break;
		if (o.prestage_state == SHOAL__PRESTAGE__STATE__READY) {
			enter(ro, n, NS(PENDING), now, h, NULL);
			note(ro, n, h, "rollout.node",
			    "%s: prestaged (%llu bytes of artifacts)", n->node,
			    (unsigned long long)o.bytes_total);
			changed = 1;
		} else if (o.prestage_state == SHOAL__PRESTAGE__STATE__FAILED) {
			snprintf(why, sizeof why, "prestaging failed: %s",
			    o.prestage_reason ? o.prestage_reason : "");
			fail_node(ro, n, now, h, why);
			changed = 1;
		}
		break;
	case NS(STAGING):
		if (o.revision != ro->to_revision)
			break;
		if (o.state == AS(STAGED) || o.state == AS(HEALTHY)) {
			enter(ro, n, NS(STAGED), now, h, NULL);
			changed = 1;
		} else if (o.state == AS(FAILED)) {
			snprintf(why, sizeof why, "staging failed: %s",
			    o.reason ? o.reason : "");
			fail_node(ro, n, now, h, why);
			changed = 1;
		}
		break;
	case NS(STAGED):
		/* Staged and still probed: it may fail before the switch. */
		if (o.revision == ro->to_revision &&
		    (o.state == AS(FAILED) || o.state == AS(UNHEALTHY))) {
			snprintf(why, sizeof why, "failed while staged: %s",
			    o.reason ? o.reason : "");
			fail_node(ro, n, now, h, why);
			changed = 1;
		}
		break;
	case NS(SWITCHING):
		if (o.revision != ro->to_revision)
			break;
		if (o.state == AS(HEALTHY)) {
			enter(ro, n, NS(SETTLING), now, h, NULL);
			n->healthy_since_ms = now;
			changed = 1;
		} else if (o.state == AS(FAILED)) {
			fail_node(ro, n, now, h,
			    o.reason ? o.reason : "failed");
			changed = 1;
		}
		break;
	case NS(SETTLING):
		if (o.revision == ro->to_revision && o.state != AS(HEALTHY)) {
			snprintf(why, sizeof why,
			    "%s within min_healthy_time%s%s",
			    wire_service_state_name(o.state),
			    o.reason && o.reason[0] ? ": " : "",
			    o.reason ? o.reason : "");
			fail_node(ro, n, now, h, why);
			changed = 1;
		} else if (elapsed(now, n->healthy_since_ms) >=
		    ro->update->min_healthy_time_ms) {
			enter(ro, n, NS(DONE), now, h, NULL);
			changed = 1;
		}
		break;
	case NS(REVERTING):
		if (o.revision != n->from_revision)
			break;
		if (o.state == AS(HEALTHY)) {
			enter(ro, n, NS(REVERTED), now, h, NULL);
			changed = 1;
		} else if (o.state == AS(FAILED)) {
			snprintf(why, sizeof why,
			    "revert to revision %llu "
			    "failed: %s",
			    (unsigned long long)n->from_revision,
			    o.reason ? o.reason : "");
			enter(ro, n, NS(REVERTED), now, h, why);
			changed = 1;
		}
		break;
	default:
		break;
	}
	return changed;
}

/* -- rollout transitions ------------------------------------------------ */

static void
finish(Shoal__Rollout *ro, Shoal__Rollout__State st, uint64_t now,
    const rollout_hooks_t *h)
{
	ro->state = st;
	ro->finished_ms = now;
	note(ro, NULL, h, "rollout.finished",
	    "rollout %llu of %s to revision "
	    "%llu %s%s%s",
	    (unsigned long long)ro->id, ro->service,
	    (unsigned long long)ro->to_revision, wire_rollout_state_name(st),
	    ro->reason[0] ? ": " : "", ro->reason);
}

/* Stops moving forward: what never switched goes back at once, what did
 * switch goes back wave by wave. */
static void
stop(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h, int revert,
    const char *why)
{
	wire_set_text(&ro->reason, "%s", why);
	note(ro, NULL, h, "rollout.stopped", "rollout %llu of %s stopped: %s%s",
	    (unsigned long long)ro->id, ro->service, why,
	    revert ? "; reverting" : "");
	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];

		if (n->state == NS(STAGING) || n->state == NS(STAGED))
			enter(ro, n, NS(REVERTED), now, h,
			    "staged only: dropped");
		else if (n->state == NS(PRESTAGING))
			enter(ro, n, NS(REVERTED), now, h,
			    "prestaging only: dropped");
	}
	if (revert)
		ro->state = RS(REVERTING);
	else
		finish(ro, RS(FAILED), now, h);
}

static int
over_budget(const Shoal__Rollout *ro)
{
	return ro->failures > ro->update->max_failures;
}

/* Admits the nodes of the wave in progress; 1 when any started. */
static int
admit(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h)
{
	int bluegreen =
	    ro->update->strategy == SHOAL__UPDATE_STRATEGY__KIND__BLUE_GREEN;
	int started = 0;

	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];

		if (n->wave != ro->wave || n->state != NS(PENDING))
			continue;
		enter(ro, n, bluegreen ? NS(STAGING) : NS(SWITCHING), now, h,
		    NULL);
		started = 1;
	}
	if (started)
		note(ro, NULL, h, "rollout.wave",
		    "rollout %llu of %s: wave "
		    "%u of %u%s",
		    (unsigned long long)ro->id, ro->service, ro->wave + 1,
		    ro->waves,
		    ro->wave == 0 && ro->canaries ? " (canary)" : "");
	return started;
}

/* The wave in progress: every node done (1), or some still going (0).
 * Blue-green switches every staged node once none is still staging. */
static int
wave_settled(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h,
    int *changed)
{
	int staging = 0, staged = 0, going = 0;

	for (size_t i = 0; i < ro->n_nodes; i++) {
		const Shoal__RolloutNode *n = ro->nodes[i];

		if (n->wave != ro->wave)
			continue;
		staging += n->state == NS(STAGING) || n->state == NS(PENDING);
		staged += n->state == NS(STAGED);
		going += n->state == NS(SWITCHING) || n->state == NS(SETTLING);
	}
	if (staged && !staging) {
		note(ro, NULL, h, "rollout.switch",
		    "rollout %llu of %s: %d staged nodes switch",
		    (unsigned long long)ro->id, ro->service, staged);
		for (size_t i = 0; i < ro->n_nodes; i++)
			if (ro->nodes[i]->state == NS(STAGED))
				enter(ro, ro->nodes[i], NS(SWITCHING), now, h,
				    NULL);
		*changed = 1;
		return 0;
	}
	return !staging && !staged && !going;
}

static int
canary_done(const Shoal__Rollout *ro)
{
	for (size_t i = 0; i < ro->n_nodes; i++)
		if (ro->nodes[i]->wave == 0 && ro->nodes[i]->state == NS(DONE))
			return 1;
	return 0;
}

static int
step_forward(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h)
{
	int changed = 0;

	for (;;) {
		if (!wave_settled(ro, now, h, &changed))
			return changed;
		if (ro->wave == 0 && ro->canaries && !ro->promoted) {
			if (!canary_done(ro)) {
				/* Every canary failed within the budget:
				 * nothing shows the revision works. */
				stop(ro, now, h, ro->update->auto_revert,
				    "no canary became healthy");
				return 1;
			}
			if (!ro->update->auto_promote) {
				if (ro->state != RS(WAITING_PROMOTE)) {
					ro->state = RS(WAITING_PROMOTE);
					note(ro, NULL, h, "rollout.waiting",
					    "rollout %llu of %s: canaries "
					    "healthy; waiting for promote",
					    (unsigned long long)ro->id,
					    ro->service);
					changed = 1;
				}
				return changed;
			}
			ro->promoted = 1;
			note(ro, NULL, h, "rollout.promoted",
			    "rollout %llu of %s: canaries healthy for "
			    "min_healthy_time, promoted",
			    (unsigned long long)ro->id, ro->service);
			changed = 1;
		}
		if (ro->wave + 1 >= ro->waves) {
			finish(ro, RS(SUCCEEDED), now, h);
			return 1;
		}
		if (ro->paused)
			return changed;
		ro->wave++;
		changed = 1;
		if (admit(ro, now, h))
			return 1;
	}
}

static int
switched_back_pending(const Shoal__RolloutNode *n)
{
	return n->switched &&
	    (n->state == NS(SWITCHING) || n->state == NS(SETTLING) ||
	        n->state == NS(DONE));
}

/* Nodes caught half-way go back first (they are between revisions
 * already), then the done ones, lowest wave first, so that at most
 * max_parallel nodes are ever between revisions. */
static int
step_revert(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h)
{
	uint32_t mp = rollout_parallel(ro->update, ro->n_nodes), going = 0;
	int changed = 0, left = 0;

	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];

		if (switched_back_pending(n) && n->state != NS(DONE)) {
			enter(ro, n, NS(REVERTING), now, h, NULL);
			changed = 1;
		}
		going += n->state == NS(REVERTING);
	}
	for (uint32_t w = 0; w < ro->waves && going < mp; w++)
		for (size_t i = 0; i < ro->n_nodes && going < mp; i++) {
			Shoal__RolloutNode *n = ro->nodes[i];

			if (n->wave != w || !switched_back_pending(n))
				continue;
			enter(ro, n, NS(REVERTING), now, h, NULL);
			going++;
			changed = 1;
		}
	for (size_t i = 0; i < ro->n_nodes; i++)
		left += ro->nodes[i]->state == NS(REVERTING) ||
		    switched_back_pending(ro->nodes[i]);
	if (!left) {
		finish(ro, ro->abort_requested ? RS(ABORTED) : RS(REVERTED),
		    now, h);
		changed = 1;
	}
	return changed;
}

int
rollout_step(Shoal__Rollout *ro, uint64_t now, const rollout_hooks_t *h)
{
	int changed = 0, flying = 0, preparing = 0;
	char why[256];

	if (!rollout_active(ro))
		return 0;
	for (size_t i = 0; i < ro->n_nodes; i++) {
		int prep = 0;

		changed |= observe_node(ro, ro->nodes[i], now, h, &prep);
		/* Preparation (pulls, downloads) never counts against a
		 * deadline: the agent watches it. Only a node that reports
		 * it now (online) says so. */
		preparing += prep;
	}
	for (size_t i = 0; i < ro->n_nodes; i++) {
		const Shoal__RolloutNode *n = ro->nodes[i];

		flying += in_flight(n) || n->state == NS(REVERTING);
	}
	if (!flying || preparing) {
		ro->progress_ms = now;
	} else if (elapsed(now, ro->progress_ms) >
	    ro->update->progress_deadline_ms) {
		snprintf(why, sizeof why,
		    "no progress for %llums (progress_deadline)",
		    (unsigned long long)ro->update->progress_deadline_ms);
		for (size_t i = 0; i < ro->n_nodes; i++) {
			Shoal__RolloutNode *n = ro->nodes[i];

			if (in_flight(n))
				fail_node(ro, n, now, h, why);
			else if (n->state == NS(REVERTING))
				enter(ro, n, NS(REVERTED), now, h, why);
		}
		changed = 1;
	}
	if (ro->state != RS(REVERTING) && over_budget(ro)) {
		snprintf(why, sizeof why,
		    "%u failed node%s, max_failures is %u", ro->failures,
		    ro->failures == 1 ? "" : "s", ro->update->max_failures);
		stop(ro, now, h, ro->update->auto_revert, why);
		changed = 1;
	}
	if (ro->state == RS(RUNNING) && rollout_prestaging(ro)) {
		/* Every node prepares before the first one switches. */
	} else if (ro->state == RS(RUNNING)) {
		if (!ro->prestaged_ms) {
			ro->prestaged_ms = now;
			ro->progress_ms = now;
			note(ro, NULL, h, "rollout.prestaged",
			    "rollout %llu of %s: every node prepared revision "
			    "%llu in %llums",
			    (unsigned long long)ro->id, ro->service,
			    (unsigned long long)ro->to_revision,
			    (unsigned long long)(now - ro->started_ms));
			changed = 1;
		}
		if (ro->wave == 0 && !ro->paused)
			changed |= admit(ro, now, h);
		changed |= step_forward(ro, now, h);
	} else if (ro->state == RS(WAITING_PROMOTE)) {
		changed |= step_forward(ro, now, h); /* a canary may fail */
	}
	if (ro->state == RS(REVERTING))
		changed |= step_revert(ro, now, h);
	if (changed)
		ro->updated_ms = now;
	return changed;
}

int
rollout_control(Shoal__Rollout *ro, Shoal__RolloutControl__Action action,
    uint64_t now, const rollout_hooks_t *h, const char **why)
{
	const char *by = "";

	if (!rollout_active(ro)) {
		*why = "the rollout has ended";
		return SHOAL_E_INVALID;
	}
	switch (action) {
	case SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE:
		if (ro->state == RS(REVERTING) || !ro->canaries ||
		    ro->promoted) {
			*why = ro->canaries ? "nothing waits for a promote"
			                    : "the rollout has no canaries";
			return SHOAL_E_INVALID;
		}
		ro->promoted = 1;
		if (ro->state == RS(WAITING_PROMOTE))
			ro->state = RS(RUNNING);
		by = "promoted";
		break;
	case SHOAL__ROLLOUT_CONTROL__ACTION__PAUSE:
		if (ro->state == RS(REVERTING) || ro->paused) {
			*why = ro->paused ? "already paused"
			                  : "a revert is not paused";
			return SHOAL_E_INVALID;
		}
		ro->paused = 1;
		by = "paused";
		break;
	case SHOAL__ROLLOUT_CONTROL__ACTION__RESUME:
		if (!ro->paused) {
			*why = "not paused";
			return SHOAL_E_INVALID;
		}
		ro->paused = 0;
		by = "resumed";
		break;
	case SHOAL__ROLLOUT_CONTROL__ACTION__ABORT:
		if (ro->state == RS(REVERTING)) {
			*why = "already reverting";
			return SHOAL_E_INVALID;
		}
		ro->abort_requested = 1;
		ro->paused = 0;
		stop(ro, now, h, 1, "aborted by an operator");
		by = "aborted";
		break;
	default:
		*why = "unknown action";
		return SHOAL_E_INVALID;
	}
	note(ro, NULL, h, "rollout.control", "rollout %llu of %s %s",
	    (unsigned long long)ro->id, ro->service, by);
	ro->updated_ms = now;
	rollout_step(ro, now, h);
	return 0;
}

void
rollout_supersede(Shoal__Rollout *ro, uint64_t now)
{
	if (!rollout_active(ro))
		return;
	/* Staged only: a node the newer rollout does not take goes back to
	 * what it serves. */
	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];

		if (n->state == NS(STAGING) || n->state == NS(STAGED) ||
		    n->state == NS(PRESTAGING))
			enter(ro, n, NS(REVERTED), now, NULL,
			    "staged only: superseded");
	}
	wire_set_text(&ro->reason, "superseded by a newer rollout");
	ro->state = RS(SUPERSEDED);
	ro->finished_ms = ro->updated_ms = now;
}

void
rollout_restarted(Shoal__Rollout *ro, uint64_t now)
{
	if (!rollout_active(ro))
		return;
	ro->progress_ms = now;
	for (size_t i = 0; i < ro->n_nodes; i++) {
		if (ro->nodes[i]->state == NS(SETTLING))
			ro->nodes[i]->healthy_since_ms = now;
		if (ro->nodes[i]->state == NS(PRESTAGING) &&
		    ro->nodes[i]->silent_since_ms)
			ro->nodes[i]->silent_since_ms = now;
	}
}
