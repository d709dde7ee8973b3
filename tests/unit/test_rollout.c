/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rollout engine's state machine, driven by made-up node reports and
 * a made-up clock: waves, canaries and promotion, blue-green staging, the
 * error budget, auto-revert wave by wave, the progress deadline, pause,
 * resume and abort, and a record that survives being packed and unpacked
 * (as a coordinator restart would) mid-way.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/wire.h"
#include "coordinator/rollout.h"
#include "tests/tap.h"

#define NODES_N 4
#define AS(x) SHOAL__SERVICE_STATUS__STATE__##x
#define NS(x) SHOAL__ROLLOUT_NODE__STATE__##x
#define RS(x) SHOAL__ROLLOUT__STATE__##x

/* What each node reports: revision, state; a node the test is silent
 * about reports nothing fresh. */
typedef struct fake {
	uint64_t rev[NODES_N];
	Shoal__ServiceStatus__State state[NODES_N];
	int fresh[NODES_N];
	int selected[NODES_N];
	/* prestaging: ready unless told otherwise */
	Shoal__Prestage__State pre[NODES_N];
	int pre_silent[NODES_N]; /* no prestage report at all */
	uint64_t pre_bytes[NODES_N];
	int notes;
	int max_between; /* most nodes between revisions at once */
} fake_t;

static const char *names[NODES_N] = { "n0", "n1", "n2", "n3" };

static int
index_of(const char *node)
{
	for (int i = 0; i < NODES_N; i++)
		if (strcmp(names[i], node) == 0)
			return i;
	abort();
}

static void
observe(const Shoal__Rollout *ro, const Shoal__RolloutNode *n, rollout_obs_t *o,
    void *arg)
{
	fake_t *f = arg;
	int i = index_of(n->node);

	o->selected = f->selected[i];
	o->fresh = f->fresh[i];
	o->revision = f->rev[i];
	o->state = f->state[i];
	o->reason = "probe said no";
	if (!f->pre_silent[i]) {
		o->prestage_revision = ro->to_revision;
		o->prestage_state = f->pre[i];
		o->prestage_reason = "checksum mismatch";
		o->bytes_done = o->bytes_total = f->pre_bytes[i];
	}
}

static void
note(const Shoal__Rollout *ro, const Shoal__RolloutNode *n, const char *kind,
    const char *message, void *arg)
{
	fake_t *f = arg;
	int between = 0;

	f->notes++;
	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode__State st = ro->nodes[i]->state;

		between += st == NS(STAGING) || st == NS(STAGED) ||
		    st == NS(SWITCHING) || st == NS(SETTLING) ||
		    st == NS(REVERTING);
	}
	if (between > f->max_between)
		f->max_between = between;
}

static fake_t fk;
static const rollout_hooks_t hooks = { observe, note, &fk };

static void
reset(void)
{
	memset(&fk, 0, sizeof fk);
	for (int i = 0; i < NODES_N; i++) {
		fk.rev[i] = 1;
		fk.state[i] = AS(HEALTHY);
		fk.fresh[i] = 1;
		fk.selected[i] = 1;
		fk.pre[i] = SHOAL__PRESTAGE__STATE__READY;
	}
}

static Shoal__Rollout *
new_rollout(Shoal__UpdateStrategy *u)
{
	rollout_member_t m[NODES_N];

	Shoal__Rollout *ro;

	for (int i = 0; i < NODES_N; i++)
		m[i] = (rollout_member_t){ names[i], 1 };
	ro = rollout_new("iris", 1, 1, 2, u, m, NODES_N, 1000);
	/* Every node starts prestaging, with the generation services.c
	 * stamps; the fake reports it prepared unless a test says not. */
	for (size_t i = 0; i < ro->n_nodes; i++)
		ro->nodes[i]->generation = 1;
	return ro;
}

static Shoal__UpdateStrategy
strategy(Shoal__UpdateStrategy__Kind kind)
{
	Shoal__UpdateStrategy u = SHOAL__UPDATE_STRATEGY__INIT;

	u.strategy = kind;
	u.max_parallel = 1;
	u.min_healthy_time_ms = 100;
	u.healthy_deadline_ms = 1000;
	u.progress_deadline_ms = 5000;
	u.auto_revert = 1;
	return u;
}

/* Every node the rollout told to serve or stage a revision reports it as
 * the agent would: staged when not active, healthy when active. */
static void
agents_follow(Shoal__Rollout *ro)
{
	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];
		int k = index_of(n->node);
		uint64_t rev;
		int active;

		if (!n->generation)
			n->generation = 1; /* what services.c stamps */
		rollout_assignment(ro, n, &rev, &active);
		fk.rev[k] = rev;
		fk.state[k] = active ? AS(HEALTHY) : AS(STAGED);
	}
}

/* Steps with healthy agents until the rollout ends or waits; returns the
 * number of steps. */
static int
run(Shoal__Rollout *ro, uint64_t *now, int max)
{
	int steps = 0;

	while (steps < max && rollout_active(ro) &&
	    ro->state != RS(WAITING_PROMOTE)) {
		agents_follow(ro);
		rollout_step(ro, *now, &hooks);
		*now += 50;
		steps++;
	}
	return steps;
}

/* Steps with healthy agents until cond holds (at most 1000 steps). */
#define STEP_UNTIL(ro, now, cond)                                          \
	for (int k_ = 0; k_ < 1000 && rollout_active(ro) && !(cond); k_++) \
	run(ro, now, 1)

static int
count_state(const Shoal__Rollout *ro, Shoal__RolloutNode__State st)
{
	int n = 0;

	for (size_t i = 0; i < ro->n_nodes; i++)
		n += ro->nodes[i]->state == st;
	return n;
}

static void
test_rolling(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;
	uint64_t now = 1000;

	reset();
	ro = new_rollout(&u);
	is_int(ro->waves, 4, "rolling, max_parallel 1: four waves");
	rollout_step(ro, now, &hooks);
	is_int(count_state(ro, NS(SWITCHING)), 1, "the first wave starts");
	ok(ro->nodes[0]->generation == 0,
	    "a node that must run another revision asks for a generation");
	run(ro, &now, 500);
	is_int(ro->state, RS(SUCCEEDED), "the rollout succeeds");
	is_int(count_state(ro, NS(DONE)), 4, "every node done");
	is_int(fk.max_between, 1, "never more than one node between revisions");
	ok(rollout_settled_revision(ro) == 2, "new nodes get revision 2 now");
	shoal__rollout__free_unpacked(ro, NULL);

	reset();
	u.max_parallel = 50;
	u.max_parallel_percent = 1;
	ro = new_rollout(&u);
	is_int(ro->waves, 2, "max_parallel 50%: two waves of two");
	run(ro, &now, 500);
	ok(ro->state == RS(SUCCEEDED) && fk.max_between == 2,
	    "and never more than two between revisions");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_min_healthy_time(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;

	reset();
	ro = new_rollout(&u);
	rollout_step(ro, 1000, &hooks);
	agents_follow(ro);
	rollout_step(ro, 1010, &hooks);
	is_int(ro->nodes[0]->state, NS(SETTLING),
	    "healthy: settling for min_healthy_time");
	rollout_step(ro, 1050, &hooks);
	is_int(ro->nodes[0]->state, NS(SETTLING), "not done before it passed");
	fk.state[0] = AS(UNHEALTHY);
	rollout_step(ro, 1060, &hooks);
	is_int(ro->nodes[0]->state, NS(FAILED),
	    "unhealthy while settling: failed");
	ok(strstr(ro->nodes[0]->reason, "unhealthy within min_healthy_time"),
	    "the reason says so");
	is_int(ro->state, RS(REVERTED),
	    "max_failures 0: stopped; nothing else switched, so reverted at "
	    "once");
	is_int(count_state(ro, NS(PENDING)), 3, "the others never started");
	ok(rollout_settled_revision(ro) == 1, "new nodes get revision 1");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_stale_reports(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;

	reset();
	ro = new_rollout(&u);
	rollout_step(ro, 1000, &hooks);
	ro->nodes[0]->generation = 7;
	fk.rev[0] = 2;
	fk.state[0] = AS(FAILED); /* from an earlier try */
	fk.fresh[0] = 0;
	rollout_step(ro, 1010, &hooks);
	is_int(ro->nodes[0]->state, NS(SWITCHING),
	    "a report older than the step's generation is ignored");
	fk.fresh[0] = 1;
	fk.state[0] = AS(FAILED);
	rollout_step(ro, 1020, &hooks);
	is_int(ro->nodes[0]->state, NS(FAILED), "a fresh failure counts");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_budget_and_revert(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;
	uint64_t now = 1000;

	/* One failure allowed: the rollout goes on past it. */
	reset();
	u.max_failures = 1;
	ro = new_rollout(&u);
	STEP_UNTIL(ro, &now, ro->nodes[1]->state == NS(SWITCHING));
	fk.rev[1] = 2;
	fk.state[1] = AS(FAILED);
	ro->nodes[1]->generation = 1;
	rollout_step(ro, now, &hooks);
	is_int(ro->failures, 1, "one failure counted");
	is_int(ro->state, RS(RUNNING), "within max_failures: still running");
	{
		uint64_t rev;
		int active;

		rollout_assignment(ro, ro->nodes[1], &rev, &active);
		ok(rev == 1 && active, "the failed node is back on revision 1");
	}
	run(ro, &now, 500);
	ok(ro->state == RS(SUCCEEDED) && count_state(ro, NS(DONE)) == 3,
	    "it succeeds with the other three done");
	shoal__rollout__free_unpacked(ro, NULL);

	/* Over budget after two nodes switched: they go back one at a time. */
	reset();
	u.max_failures = 0;
	ro = new_rollout(&u);
	STEP_UNTIL(ro, &now, ro->nodes[2]->state == NS(SWITCHING));
	ro->nodes[2]->generation = 1;
	fk.rev[2] = 2;
	fk.state[2] = AS(FAILED);
	rollout_step(ro, now, &hooks);
	is_int(ro->state, RS(REVERTING), "over budget: reverting");
	is_int(count_state(ro, NS(REVERTING)), 1,
	    "one switched node goes back at a time");
	ok(ro->nodes[0]->state == NS(REVERTING), "the lowest wave first");
	fk.max_between = 0;
	run(ro, &now, 500);
	is_int(ro->state, RS(REVERTED), "the revert ends");
	is_int(count_state(ro, NS(REVERTED)), 2,
	    "both switched nodes reverted");
	is_int(fk.max_between, 1, "never two reverting at once");
	is_int(ro->nodes[3]->state, NS(PENDING), "the last node never moved");
	shoal__rollout__free_unpacked(ro, NULL);

	/* auto_revert false: stop, leave the switched nodes. */
	reset();
	u.auto_revert = 0;
	ro = new_rollout(&u);
	STEP_UNTIL(ro, &now, ro->nodes[1]->state == NS(SWITCHING));
	ro->nodes[1]->generation = 1;
	fk.rev[1] = 2;
	fk.state[1] = AS(FAILED);
	rollout_step(ro, now, &hooks);
	is_int(ro->state, RS(FAILED), "auto_revert false: failed, stopped");
	is_int(ro->nodes[0]->state, NS(DONE), "the done node stays");
	ok(!rollout_active(ro) && rollout_step(ro, now + 1000, &hooks) == 0,
	    "a stopped rollout no longer moves");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_canary(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__CANARY);
	Shoal__Rollout *ro;
	const char *why;
	uint64_t now = 1000;

	reset();
	u.canary = 1;
	u.max_parallel = 2;
	ro = new_rollout(&u);
	ok(ro->canaries == 1 && ro->waves == 3,
	    "canary 1, max_parallel 2: the canary, then two waves of two");
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__RESUME, now,
	           &hooks, &why),
	    SHOAL_E_INVALID, "resume when not paused is refused");
	run(ro, &now, 500);
	is_int(ro->state, RS(WAITING_PROMOTE),
	    "the canary done: waiting for a promote");
	ok(count_state(ro, NS(DONE)) == 1 && count_state(ro, NS(PENDING)) == 3,
	    "only the canary moved");
	now += 10000;
	rollout_step(ro, now, &hooks);
	is_int(ro->state, RS(WAITING_PROMOTE),
	    "it waits, however long (no progress deadline while waiting)");
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE, now,
	           &hooks, &why),
	    0, "promote");
	is_int(count_state(ro, NS(SWITCHING)), 2, "the next wave starts");
	run(ro, &now, 500);
	is_int(ro->state, RS(SUCCEEDED), "and the rollout succeeds");
	shoal__rollout__free_unpacked(ro, NULL);

	reset();
	u.auto_promote = 1;
	u.canary = 25;
	u.canary_percent = 1;
	ro = new_rollout(&u);
	is_int(ro->canaries, 1, "canary 25% of four: one");
	run(ro, &now, 500);
	is_int(ro->state, RS(SUCCEEDED), "auto_promote: no wait");
	ok(ro->promoted, "it was promoted");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_blue_green(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__BLUE_GREEN);
	Shoal__Rollout *ro;
	uint64_t now = 1000, rev;
	int active;

	reset();
	ro = new_rollout(&u);
	is_int(ro->waves, 1, "blue-green: one wave");
	rollout_step(ro, now, &hooks);
	is_int(count_state(ro, NS(STAGING)), 4, "every node stages at once");
	rollout_assignment(ro, ro->nodes[0], &rev, &active);
	ok(rev == 2 && !active, "staging: revision 2, not serving");
	/* Three staged, one still coming up: nobody switches. */
	agents_follow(ro);
	fk.state[3] = AS(STARTING);
	rollout_step(ro, now + 10, &hooks);
	ok(count_state(ro, NS(STAGED)) == 3 &&
	        count_state(ro, NS(SWITCHING)) == 0,
	    "three staged, the fourth not yet: nothing switches");
	fk.state[3] = AS(STAGED);
	rollout_step(ro, now + 20, &hooks);
	is_int(count_state(ro, NS(SWITCHING)), 4,
	    "all staged: all switch together");
	now += 30;
	run(ro, &now, 500);
	is_int(ro->state, RS(SUCCEEDED), "the rollout succeeds");
	shoal__rollout__free_unpacked(ro, NULL);

	/* A staging failure: nothing had switched, everything goes back. */
	reset();
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	agents_follow(ro);
	fk.state[2] = AS(FAILED);
	rollout_step(ro, now + 10, &hooks);
	rollout_step(ro, now + 20, &hooks);
	is_int(ro->state, RS(REVERTED), "a node fails staging: reverted");
	ok(count_state(ro, NS(SWITCHING)) == 0 &&
	        count_state(ro, NS(REVERTING)) == 0,
	    "no node ever switched");
	rollout_assignment(ro, ro->nodes[0], &rev, &active);
	ok(rev == 1 && active, "the staged ones are dropped: revision 1");
	shoal__rollout__free_unpacked(ro, NULL);
}

static void
test_deadline_pause_abort(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro, *copy;
	const char *why;
	uint64_t now = 1000;

	/* A node that never reports: the progress deadline fails it. */
	reset();
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	ro->nodes[0]->generation = 1;
	fk.state[0] = AS(PREPARING);
	fk.rev[0] = 2;
	rollout_step(ro, now + 4000, &hooks);
	rollout_step(ro, now + 4000 + 2 * u.progress_deadline_ms, &hooks);
	is_int(ro->nodes[0]->state, NS(SWITCHING),
	    "a node preparing (pulling) is never past the deadline");
	fk.state[0] = AS(STARTING);
	now += 4000 + 2 * u.progress_deadline_ms;
	rollout_step(ro, now + 10, &hooks);
	rollout_step(ro, now + 4000, &hooks);
	is_int(ro->nodes[0]->state, NS(SWITCHING), "within the deadline");
	rollout_step(ro, now + 10 + u.progress_deadline_ms + 1, &hooks);
	is_int(ro->nodes[0]->state, NS(FAILED),
	    "no progress for progress_deadline: failed");
	ok(strstr(ro->nodes[0]->reason, "progress_deadline"),
	    "the reason names the deadline");
	shoal__rollout__free_unpacked(ro, NULL);

	/* Pause: the node started finishes, no other starts. */
	reset();
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__PAUSE, now,
	           &hooks, &why),
	    0, "pause");
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__PAUSE, now,
	           &hooks, &why),
	    SHOAL_E_INVALID, "pausing twice is refused");
	for (int i = 0; i < 20; i++) {
		agents_follow(ro);
		rollout_step(ro, now += 50, &hooks);
	}
	ok(count_state(ro, NS(DONE)) == 1 && count_state(ro, NS(PENDING)) == 3,
	    "paused: the first node finished, no other started");

	/* Packed and unpacked, as a coordinator restart reads it. */
	copy = wire_copy(&ro->base);
	shoal__rollout__free_unpacked(ro, NULL);
	ro = copy;
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__RESUME, now,
	           &hooks, &why),
	    0, "resume (after a round trip through the codec)");
	is_int(count_state(ro, NS(SWITCHING)), 1, "the next wave starts");
	agents_follow(ro);
	rollout_step(ro, now += 50, &hooks);
	rollout_step(ro, now += 200, &hooks);
	is_int(count_state(ro, NS(DONE)), 2, "two nodes done");
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__ABORT, now,
	           &hooks, &why),
	    0, "abort");
	is_int(ro->state, RS(REVERTING), "aborting reverts");
	fk.max_between = 0;
	run(ro, &now, 500);
	is_int(ro->state, RS(ABORTED), "and ends aborted");
	is_int(count_state(ro, NS(REVERTED)), 3,
	    "the two done nodes and the one half-way reverted");
	is_int(fk.max_between, 1, "one at a time");
	is_int(rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE, now,
	           &hooks, &why),
	    SHOAL_E_INVALID, "an ended rollout takes no command");
	shoal__rollout__free_unpacked(ro, NULL);

	/* A node leaving the selector does not hold the rollout up. */
	reset();
	ro = new_rollout(&u);
	fk.selected[1] = 0;
	run(ro, &now, 500);
	ok(ro->state == RS(SUCCEEDED) &&
	        strcmp(ro->nodes[1]->reason, "no longer selected") == 0,
	    "a node no longer selected is done with a reason");
	rollout_supersede(ro, now);
	is_int(ro->state, RS(SUCCEEDED), "an ended rollout is not superseded");
	shoal__rollout__free_unpacked(ro, NULL);
	ok(fk.notes > 0, "the steps were noted for the event stream");
}

/* What a review of the engine found, each a scenario. */
static void
test_corners(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;
	const char *why;
	uint64_t now = 1000, rev;
	int active;

	/* A done node leaves the selector, then the rollout reverts: the
	 * revert must end, not bounce the node between states. */
	reset();
	ro = new_rollout(&u);
	STEP_UNTIL(ro, &now, ro->nodes[1]->state == NS(SWITCHING));
	fk.selected[0] = 0;
	rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__ABORT, now, &hooks,
	    &why);
	run(ro, &now, 200);
	is_int(ro->state, RS(ABORTED),
	    "a revert with a node gone from the selector ends");
	shoal__rollout__free_unpacked(ro, NULL);

	/* Every canary fails, within max_failures: no promote. */
	reset();
	u = strategy(SHOAL__UPDATE_STRATEGY__KIND__CANARY);
	u.canary = 1;
	u.auto_promote = 1;
	u.max_failures = 1;
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	ro->nodes[0]->generation = 1;
	fk.rev[0] = 2;
	fk.state[0] = AS(FAILED);
	rollout_step(ro, now += 10, &hooks);
	rollout_step(ro, now += 10, &hooks);
	ok(ro->state == RS(REVERTED) && !ro->promoted &&
	        strstr(ro->reason, "no canary"),
	    "no canary healthy: stopped, not promoted");
	shoal__rollout__free_unpacked(ro, NULL);

	/* Blue-green: a node failing after it staged counts before the
	 * switch. */
	reset();
	u = strategy(SHOAL__UPDATE_STRATEGY__KIND__BLUE_GREEN);
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	agents_follow(ro);
	fk.state[3] = AS(STARTING);
	rollout_step(ro, now += 10, &hooks);
	fk.state[0] = AS(UNHEALTHY);
	rollout_step(ro, now += 10, &hooks);
	ok(ro->nodes[0]->state == NS(FAILED) &&
	        count_state(ro, NS(SWITCHING)) == 0,
	    "a staged node that turns unhealthy fails; nothing switched");
	shoal__rollout__free_unpacked(ro, NULL);

	/* Superseded while staged: the staged nodes go back. */
	reset();
	ro = new_rollout(&u);
	rollout_step(ro, now, &hooks);
	rollout_supersede(ro, now);
	rollout_assignment(ro, ro->nodes[0], &rev, &active);
	ok(ro->state == RS(SUPERSEDED) && rev == 1 && active,
	    "superseded while staging: back on revision 1");
	shoal__rollout__free_unpacked(ro, NULL);

	/* The wall clock steps back: no deadline fires, no node fails. */
	reset();
	u = strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	ro = new_rollout(&u);
	rollout_step(ro, 100000, &hooks);
	ro->nodes[0]->generation = 1;
	fk.rev[0] = 2;
	fk.state[0] = AS(STARTING);
	rollout_step(ro, 50000, &hooks);
	is_int(ro->failures, 0, "a clock stepped back fails nobody");
	/* A node that went away while preparing: its old report is not
	 * fresh, and the deadline applies. */
	fk.state[0] = AS(PREPARING);
	fk.fresh[0] = 0;
	rollout_step(ro, 100000 + u.progress_deadline_ms + 1, &hooks);
	is_int(ro->nodes[0]->state, NS(FAILED),
	    "an offline node's old 'preparing' does not hold the deadline off");
	/* After a restart, the time down is neither progress lost nor
	 * healthy time. */
	shoal__rollout__free_unpacked(ro, NULL);
	reset();
	ro = new_rollout(&u);
	rollout_step(ro, 1000, &hooks);
	ro->nodes[0]->generation = 1;
	fk.rev[0] = 2;
	fk.state[0] = AS(STARTING);
	rollout_restarted(ro, 1000 + u.progress_deadline_ms * 3);
	rollout_step(ro, 1000 + u.progress_deadline_ms * 3 + 10, &hooks);
	is_int(ro->nodes[0]->state, NS(SWITCHING),
	    "a restart after a long stop does not fail the nodes in flight");
	shoal__rollout__free_unpacked(ro, NULL);
}

/* Every node prepares the new revision before the first one switches; a
 * node that cannot prepare fails without switching, and prestaging time
 * never runs into progress_deadline. */
static void
test_prestage(void)
{
	Shoal__UpdateStrategy u =
	    strategy(SHOAL__UPDATE_STRATEGY__KIND__ROLLING);
	Shoal__Rollout *ro;
	uint64_t now = 1000, rev;
	int active;

	reset();
	ro = new_rollout(&u);
	is_int(count_state(ro, NS(PRESTAGING)), NODES_N,
	    "a new rollout starts with every node prestaging");
	rollout_assignment(ro, ro->nodes[0], &rev, &active);
	ok(rev == 1 && active, "a prestaging node still serves its revision");
	is_int((int)rollout_prestage(ro, ro->nodes[0]), 2,
	    "... and prepares the new one");
	fk.pre[3] = SHOAL__PRESTAGE__STATE__PREPARING;
	fk.pre_bytes[3] = 4096;
	rollout_step(ro, now, &hooks);
	is_int(count_state(ro, NS(PENDING)), 3, "three nodes prestaged");
	is_int(count_state(ro, NS(SWITCHING)), 0,
	    "none switches while one still prepares");
	ok(rollout_prestaging(ro), "the rollout says it prestages");
	/* Ten progress deadlines of downloading: no failure. */
	for (int i = 0; i < 10; i++) {
		now += u.progress_deadline_ms;
		rollout_step(ro, now, &hooks);
	}
	is_int(count_state(ro, NS(PRESTAGING)), 1,
	    "prestaging time never counts against progress_deadline");
	is_int((int)ro->failures, 0, "... no failure");
	fk.pre[3] = SHOAL__PRESTAGE__STATE__READY;
	rollout_step(ro, now, &hooks);
	is_int(count_state(ro, NS(SWITCHING)), 1,
	    "once every node prepared, the first wave starts");
	ok(ro->prestaged_ms == now, "the end of prestaging is recorded");
	is_int((int)rollout_prestage(ro, ro->nodes[0]), 0,
	    "a switching node prepares nothing ahead any more");
	is_int((int)rollout_prestage(ro, ro->nodes[1]), 2,
	    "a pending node keeps the new revision prepared");
	run(ro, &now, 500);
	is_int(ro->state, RS(SUCCEEDED), "the rollout succeeds");
	is_int((int)rollout_prestage(ro, ro->nodes[1]), 0,
	    "an ended rollout prepares nothing");
	shoal__rollout__free_unpacked(ro, NULL);

	/* A node whose artifact fails its checksum: nothing switches. */
	reset();
	ro = new_rollout(&u);
	fk.pre[2] = SHOAL__PRESTAGE__STATE__FAILED;
	rollout_step(ro, now, &hooks);
	is_int(ro->nodes[2]->state, NS(FAILED),
	    "a failed preparation fails the node");
	ok(strstr(ro->nodes[2]->reason,
	       "prestaging failed: checksum mismatch") != NULL,
	    "the reason is the agent's");
	ok(!rollout_active(ro) && ro->state == RS(REVERTED),
	    "max_failures 0: the rollout stops before any switch");
	is_int(count_state(ro, NS(SWITCHING)) + count_state(ro, NS(DONE)), 0,
	    "no node switched");
	{
		size_t on1 = 0;

		for (size_t i = 0; i < ro->n_nodes; i++) {
			rollout_assignment(ro, ro->nodes[i], &rev, &active);
			on1 += rev == 1 && active;
		}
		is_int((int)on1, NODES_N,
		    "every node keeps serving revision 1");
	}
	is_int((int)rollout_settled_revision(ro), 1,
	    "the service settles on revision 1");
	shoal__rollout__free_unpacked(ro, NULL);

	/* A report without prestage (an old report) moves nothing. */
	reset();
	now = 1000; /* the time new_rollout() starts it */
	ro = new_rollout(&u);
	fk.pre_silent[1] = 1;
	rollout_step(ro, now, &hooks);
	is_int(ro->nodes[1]->state, NS(PRESTAGING),
	    "a node that never said it prepared stays prestaging");
	rollout_step(ro, now + u.progress_deadline_ms, &hooks);
	is_int(ro->nodes[1]->state, NS(PRESTAGING),
	    "... for progress_deadline");
	rollout_step(ro, now + u.progress_deadline_ms + 1, &hooks);
	ok(ro->nodes[1]->state == NS(FAILED) &&
	        strstr(ro->nodes[1]->reason, "no report of its preparation"),
	    "then it fails: offline, or an agent that does not prestage");
	shoal__rollout__free_unpacked(ro, NULL);

	/* A node failing its preparation asks for a new desired state:
	 * it stops preparing. */
	reset();
	u.max_failures = 1;
	ro = new_rollout(&u);
	u.max_failures = 0;
	fk.pre[0] = SHOAL__PRESTAGE__STATE__FAILED;
	rollout_step(ro, now, &hooks);
	ok(ro->nodes[0]->state == NS(FAILED) && ro->nodes[0]->generation == 0 &&
	        rollout_prestage(ro, ro->nodes[0]) == 0 &&
	        ro->state == RS(RUNNING),
	    "a failed preparation drops the prestage (a new generation) while "
	    "the rollout goes on");
	shoal__rollout__free_unpacked(ro, NULL);

	reset();
	now = 1000; /* the time new_rollout() starts it */
	ro = new_rollout(&u);
	fk.pre_silent[1] = 1;
	rollout_step(ro, now, &hooks);
	{
		const char *why = NULL;

		rollout_control(ro, SHOAL__ROLLOUT_CONTROL__ACTION__ABORT, now,
		    &hooks, &why);
	}
	is_int(ro->nodes[1]->state, NS(REVERTED),
	    "abort drops the prestaging node");
	is_int(ro->state, RS(ABORTED), "and the rollout is aborted at once");
	shoal__rollout__free_unpacked(ro, NULL);
}

int
main(void)
{
	test_rolling();
	test_min_healthy_time();
	test_stale_reports();
	test_budget_and_revert();
	test_canary();
	test_blue_green();
	test_deadline_pause_abort();
	test_corners();
	test_prestage();
	return done_testing();
}
