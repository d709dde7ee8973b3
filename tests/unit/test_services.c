/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's services: revisions on apply (and none for an
 * unchanged spec), node selection by labels, per-node desired state and
 * generations, doorbells, history and its bound, delete, status reports,
 * snapshot and restore operations (and the hold a restore leaves), and all
 * of it across a reopen.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/store.h"
#include "common/util.h"
#include "coordinator/registry.h"
#include "coordinator/services.h"
#include "tests/tap.h"

static char rang[8][64];
static int nrang;

static void
ring(const char *node, uint64_t generation, void *arg)
{
	if (nrang < 8)
		snprintf(rang[nrang++], sizeof rang[0], "%s@%llu", node,
		    (unsigned long long)generation);
}

static int
rung(const char *what)
{
	for (int i = 0; i < nrang; i++)
		if (strcmp(rang[i], what) == 0)
			return 1;
	return 0;
}

static int
open_all(const char *dir, store_t **store, registry_t **reg, services_t **svc)
{
	if (store_open(dir, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	        1 << 24, store) < 0)
		return -1;
	if (registry_open(*store, reg) < 0)
		return -1;
	return services_open(*store, *reg, svc);
}

static void
close_all(store_t **store, registry_t **reg, services_t **svc)
{
	services_close(svc);
	registry_close(reg);
	store_close(store);
}

static void
hello(registry_t *reg, const char *id, const char *role)
{
	Shoal__Hello h = SHOAL__HELLO__INIT;
	Shoal__Label l = SHOAL__LABEL__INIT, *lp[1] = { &l };
	const Shoal__Node *n;

	l.key = "role";
	l.value = (char *)role;
	h.labels = lp;
	h.n_labels = 1;
	h.agent_version = "t";
	h.heartbeat_ms = 1000;
	h.store_id = (char *)id;
	registry_hello(reg, id, &h, &n);
}

/* The revision of service name assigned to node (0: none). */
static uint64_t
assigned(services_t *svc, const char *node, const char *name)
{
	Shoal__ServiceAssignment **a;
	size_t n;

	services_desired(svc, node, &a, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i]->service, name) == 0)
			return a[i]->revision;
	return 0;
}

static uint64_t
generation(registry_t *reg, const char *node)
{
	const Shoal__Node *n = registry_find(reg, node);

	return n ? n->generation : 0;
}

/* The model nodes report, as their agents would, that they prepared what
 * their rollout asks them to prestage; a tick then lets it go on. */
static void
prepared(services_t *svc, registry_t *reg)
{
	static const char *const nodes[] = { "gpu-1", "gpu-2" };
	static uint64_t seq = 1000;

	for (size_t k = 0; k < 2; k++) {
		Shoal__ServiceAssignment **a;
		Shoal__ServiceStatus st[4], *stp[4];
		Shoal__Prestage pre[4];
		Shoal__StatusReport sr = SHOAL__STATUS_REPORT__INIT;
		size_t n;

		services_desired(svc, nodes[k], &a, &n);
		for (size_t i = 0; i < n && i < 4; i++) {
			shoal__service_status__init(&st[i]);
			shoal__prestage__init(&pre[i]);
			st[i].service = a[i]->service;
			st[i].revision = a[i]->revision;
			st[i].state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
			if (a[i]->prestage_revision) {
				pre[i].revision = a[i]->prestage_revision;
				pre[i].state = SHOAL__PRESTAGE__STATE__READY;
				st[i].prestage = &pre[i];
			}
			stp[i] = &st[i];
		}
		sr.seq = ++seq;
		sr.generation = generation(reg, nodes[k]);
		sr.services = stp;
		sr.n_services = n < 4 ? n : 4;
		services_report(svc, nodes[k], &sr, NULL, NULL);
	}
	services_tick(svc, NULL, NULL);
}

/* services_apply() with the results in the shape these tests read. */
static int
apply_spec(services_t *svc, const Shoal__ServiceSpec *spec, const char *msg,
    services_ring_fn ring_fn, void *arg, uint64_t *rev, int *changed,
    uint32_t *selected)
{
	services_result_t res;
	int r = services_apply(svc, spec, msg, "test@host", ring_fn, arg, &res);

	*rev = res.revision;
	*changed = res.changed;
	*selected = res.selected;
	return r;
}

/* -- operations and snapshots -- */

/* How node's agent reports: healthy on what it must run, prepared what it
 * must prestage, with answers to operations and its catalogue. */
static void
agent_report(services_t *svc, registry_t *reg, const char *node,
    Shoal__OperationResult **res, size_t nres, Shoal__Snapshot **snaps,
    size_t nsnaps)
{
	static uint64_t seq = 5000;
	Shoal__ServiceAssignment **a;
	Shoal__ServiceStatus st[4], *stp[4];
	Shoal__Prestage pre[4];
	Shoal__StatusReport sr = SHOAL__STATUS_REPORT__INIT;
	size_t n;

	services_desired(svc, node, &a, &n);
	for (size_t i = 0; i < n && i < 4; i++) {
		shoal__service_status__init(&st[i]);
		shoal__prestage__init(&pre[i]);
		st[i].service = a[i]->service;
		st[i].revision = a[i]->revision;
		st[i].state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
		if (a[i]->prestage_revision) {
			pre[i].revision = a[i]->prestage_revision;
			pre[i].state = SHOAL__PRESTAGE__STATE__READY;
			st[i].prestage = &pre[i];
		}
		stp[i] = &st[i];
	}
	sr.seq = ++seq;
	sr.generation = generation(reg, node);
	sr.services = stp;
	sr.n_services = n < 4 ? n : 4;
	sr.operations = res;
	sr.n_operations = nres;
	sr.snapshots = snaps;
	sr.n_snapshots = nsnaps;
	services_report(svc, node, &sr, NULL, NULL);
}

/* The state of the service's newest rollout (-1: none). */
static int
rollout_state(services_t *svc, const char *name)
{
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	int st = -1;

	if (services_rollout(svc, name, &rep) == 0 && rep.n_rollouts)
		st = rep.rollouts[0]->state;
	services_free_reply(&rep);
	return st;
}

/* Moves the service's rollout to its end: gpu-1 and gpu-2 report (gpu-1
 * with its catalogue) and the coordinator ticks. */
static int
settle(services_t *svc, registry_t *reg, const char *name,
    Shoal__Snapshot **snaps, size_t nsnaps)
{
	for (int i = 0; i < 20; i++) {
		int st = rollout_state(svc, name);

		if (st != SHOAL__ROLLOUT__STATE__RUNNING &&
		    st != SHOAL__ROLLOUT__STATE__WAITING_PROMOTE)
			return st;
		agent_report(svc, reg, "gpu-1", NULL, 0, snaps, nsnaps);
		agent_report(svc, reg, "gpu-2", NULL, 0, NULL, 0);
		services_tick(svc, NULL, NULL);
	}
	return rollout_state(svc, name);
}

/* The node's operation with this token (NULL: not listed), borrowed. */
static const Shoal__Operation *
listed_op(services_t *svc, const char *node, const char *token)
{
	Shoal__Operation **ops;
	size_t n;

	services_operations(svc, node, &ops, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(ops[i]->token, token) == 0)
			return ops[i];
	return NULL;
}

static size_t
listed_ops(services_t *svc, const char *node)
{
	Shoal__Operation **ops;
	size_t n;

	services_operations(svc, node, &ops, &n);
	return n;
}

/* The state services_snapshots() gives the node's snapshot id, in buf
 * ("": no row); the row's reason in why when not NULL. */
static const char *
snapshot_row(services_t *svc, const char *node, const char *id, char *buf,
    size_t size, char *why, size_t whylen)
{
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;

	buf[0] = '\0';
	if (why)
		why[0] = '\0';
	services_snapshots(svc, node, &rep);
	for (size_t i = 0; i < rep.n_snapshots; i++)
		if (strcmp(rep.snapshots[i]->node, node) == 0 &&
		    strcmp(rep.snapshots[i]->snapshot->id, id) == 0) {
			snprintf(buf, size, "%s", rep.snapshots[i]->state);
			if (why)
				snprintf(why, whylen, "%s",
				    rep.snapshots[i]->reason);
		}
	services_free_reply(&rep);
	return buf;
}

/* Rows services_snapshots() gives the node in state. */
static size_t
snapshot_rows(services_t *svc, const char *node, const char *state)
{
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	size_t n = 0;

	services_snapshots(svc, node, &rep);
	for (size_t i = 0; i < rep.n_snapshots; i++)
		n += strcmp(rep.snapshots[i]->node, node) == 0 &&
		    strcmp(rep.snapshots[i]->state, state) == 0;
	services_free_reply(&rep);
	return n;
}

/* Queues a snapshot on one node; its token and snapshot id are copied out
 * (token or id NULL: not wanted). */
static int
snap_node(services_t *svc, const char *node, char *token, char *id, char *err,
    size_t errlen)
{
	Shoal__SnapshotCreate req = SHOAL__SNAPSHOT_CREATE__INIT;
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	int r;

	req.node = (char *)node;
	req.message = "by hand";
	req.requested_by = "ops@host";
	r = services_snapshot_create(svc, &req, ring, NULL, &rep, err, errlen);
	if (r == 0 && rep.n_operations == 1) {
		if (token)
			snprintf(token, 65, "%s", rep.operations[0]->token);
		if (id)
			snprintf(id, SNAPSHOT_ID_MAX + 1, "%s",
			    rep.operations[0]->snapshot);
	}
	services_free_reply(&rep);
	return r;
}

static int
restore(services_t *svc, const char *node, const char *id,
    Shoal__ControlReply *rep, char *err, size_t errlen)
{
	Shoal__SnapshotRestore req = SHOAL__SNAPSHOT_RESTORE__INIT;

	err[0] = '\0';
	req.node = (char *)node;
	req.snapshot = (char *)id;
	req.requested_by = "ops@host";
	return services_snapshot_restore(svc, &req, ring, NULL, rep, err,
	    errlen);
}

/* The rollout node of ro for node (NULL: not a member). */
static const Shoal__RolloutNode *
member(const Shoal__Rollout *ro, const char *node)
{
	for (size_t i = 0; ro && i < ro->n_nodes; i++)
		if (strcmp(ro->nodes[i]->node, node) == 0)
			return ro->nodes[i];
	return NULL;
}

/* The answered operation with token among those services_snapshots()
 * gives the node: its state and result copied out; 0: not there. */
static int
finished_op(services_t *svc, const char *node, const char *token,
    Shoal__Operation__State *state, char *result, size_t size)
{
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	int found = 0;

	services_snapshots(svc, node, &rep);
	for (size_t i = 0; i < rep.n_operations && !found; i++)
		if (strcmp(rep.operations[i]->token, token) == 0) {
			found = 1;
			*state = rep.operations[i]->state;
			snprintf(result, size, "%s", rep.operations[i]->result);
		}
	services_free_reply(&rep);
	return found;
}

/*
 * Snapshots and restores as operations: queued on a node (by id or
 * selector) with its desired state, answered in its status reports, the
 * catalogue and list, a restore's refusals and the hold it leaves until the
 * service changes, the pending cap, the snapshot a rollout takes before it
 * moves a node, and all of it across a reopen.
 */
static void
test_operations(void)
{
	char dir[] = "/tmp/shoal-test-ops.XXXXXX", cmd[128], err[512];
	char tok1[65], tok2[65], tok3[65], tok_r[65], tok_c[65];
	char result[256], why[256];
	char snap1[SNAPSHOT_ID_MAX + 1], snap2[SNAPSHOT_ID_MAX + 1],
	    auto1[SNAPSHOT_ID_MAX + 1], state[16];
	store_t *store = NULL;
	registry_t *reg = NULL;
	services_t *svc = NULL;
	Shoal__ServiceSpec iris = SHOAL__SERVICE_SPEC__INIT, embed;
	Shoal__UpdateStrategy update = SHOAL__UPDATE_STRATEGY__INIT;
	Shoal__Label sel = SHOAL__LABEL__INIT, *selp[1] = { &sel };
	Shoal__Label web = SHOAL__LABEL__INIT, *webp[1] = { &web };
	Shoal__SnapshotCreate req = SHOAL__SNAPSHOT_CREATE__INIT;
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	Shoal__SnapshotService iris1 = SHOAL__SNAPSHOT_SERVICE__INIT,
	                       *iris1p[1] = { &iris1 };
	Shoal__SnapshotService gone = SHOAL__SNAPSHOT_SERVICE__INIT,
	                       *gonep[1] = { &gone };
	Shoal__Snapshot sn1 = SHOAL__SNAPSHOT__INIT,
	                broken = SHOAL__SNAPSHOT__INIT,
	                ghost = SHOAL__SNAPSHOT__INIT;
	Shoal__Snapshot *cat[3] = { &sn1, &broken, &ghost };
	Shoal__OperationResult res = SHOAL__OPERATION_RESULT__INIT,
	                       *resp[1] = { &res };
	Shoal__Operation__State ost;
	const Shoal__Operation *op;
	const Shoal__RolloutNode *rn;
	services_result_t sres;
	uint64_t g, g2, ro_id, max_id = 0;
	size_t pending, nops;
	int r;

	if (!mkdtemp(dir)) {
		ok(0, "operations: a temporary directory");
		return;
	}
	ok(open_all(dir, &store, &reg, &svc) == 0, "operations: services open");
	hello(reg, "cpu-1", "web");
	hello(reg, "gpu-1", "model");
	hello(reg, "gpu-2", "model");
	hello(reg, "web-2", "web");
	sel.key = "role";
	sel.value = "model";
	update.max_parallel = 100;
	update.max_parallel_percent = 1;
	update.healthy_deadline_ms = 60000;
	update.progress_deadline_ms = 60000;
	update.auto_revert = 1;
	iris.service = "iris";
	iris.selector = selp;
	iris.n_selector = 1;
	iris.image = "localhost/model:1";
	iris.port = 8080;
	iris.update = &update;
	embed = iris;
	embed.service = "embed";
	embed.image = "localhost/embed:1";
	services_apply(svc, &iris, "v1", "test@host", NULL, NULL, &sres);
	services_apply(svc, &embed, "v1", "test@host", NULL, NULL, &sres);
	ok(assigned(svc, "gpu-1", "iris") == 1 &&
	        assigned(svc, "gpu-1", "embed") == 1 &&
	        assigned(svc, "gpu-2", "iris") == 1,
	    "operations: the model nodes run iris 1 and embed 1");

	/* 1. A snapshot of one node, by id. */
	nrang = 0;
	g = generation(reg, "gpu-1");
	req.node = "gpu-1";
	req.message = "before the upgrade";
	req.requested_by = "ops@host";
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    0, "snapshot create on gpu-1");
	ok(rep.n_operations == 1 &&
	        rep.operations[0]->kind == SHOAL__OPERATION__KIND__SNAPSHOT &&
	        rep.operations[0]->state == SHOAL__OPERATION__STATE__PENDING &&
	        strcmp(rep.operations[0]->node, "gpu-1") == 0 &&
	        strcmp(rep.operations[0]->requested_by, "ops@host") == 0 &&
	        strcmp(rep.operations[0]->message, "before the upgrade") == 0,
	    "one pending SNAPSHOT operation for gpu-1 in the reply");
	ok(rep.n_operations == 1 &&
	        snapshot_id_valid(rep.operations[0]->snapshot) &&
	        rep.operations[0]->token[0] && rep.operations[0]->id == 1,
	    "operation 1, with a token and a valid snapshot id");
	snprintf(tok1, sizeof tok1, "%s",
	    rep.n_operations ? rep.operations[0]->token : "");
	snprintf(snap1, sizeof snap1, "%s",
	    rep.n_operations ? rep.operations[0]->snapshot : "");
	services_free_reply(&rep);
	is_int(generation(reg, "gpu-1"), g + 1, "gpu-1's generation moved");
	ok(nrang == 1 && strncmp(rang[0], "gpu-1@", 6) == 0,
	    "gpu-1 alone was rung");
	op = listed_op(svc, "gpu-1", tok1);
	ok(op && listed_ops(svc, "gpu-1") == 1 &&
	        strcmp(op->snapshot, snap1) == 0,
	    "gpu-1's desired state lists the operation");
	is_int(listed_ops(svc, "gpu-2"), 0, "gpu-2's lists none");
	is_str(snapshot_row(svc, "gpu-1", snap1, state, sizeof state, NULL, 0),
	    "pending", "snapshot list: gpu-1's snapshot is pending");

	req.node = "gpu-9";
	err[0] = '\0';
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    SHOAL_E_NOT_FOUND, "snapshot create on an unknown node: not found");
	ok(strstr(err, "gpu-9") && rep.n_operations == 0,
	    "err names the node; nothing queued");
	services_free_reply(&rep);

	req.node = "";
	web.key = "role";
	web.value = "web";
	req.selector = webp;
	req.n_selector = 1;
	nrang = 0;
	g = generation(reg, "cpu-1");
	g2 = generation(reg, "gpu-1");
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    0, "snapshot create by selector role=web");
	ok(rep.n_operations == 2 &&
	        strcmp(rep.operations[0]->node, "cpu-1") == 0 &&
	        strcmp(rep.operations[1]->node, "web-2") == 0,
	    "queued on cpu-1 and web-2, the nodes it picks");
	services_free_reply(&rep);
	ok(listed_ops(svc, "gpu-1") == 1 && listed_ops(svc, "gpu-2") == 0 &&
	        generation(reg, "gpu-1") == g2,
	    "the model nodes get nothing");
	is_int(snapshot_rows(svc, "cpu-1", "pending"), 1,
	    "cpu-1's snapshot is listed pending");
	/* cpu-1 runs no service and has no desired state yet: the operation
	 * alone makes one (assignments_differ() once saw only services). */
	ok(listed_ops(svc, "cpu-1") == 1 && generation(reg, "cpu-1") == g + 1,
	    "cpu-1, which runs no service, gets it in its desired state");
	ok(nrang == 2, "cpu-1 and web-2 were rung");
	services_node_changed(svc, "cpu-1", NULL, NULL);
	is_int(listed_ops(svc, "cpu-1"), 1,
	    "cpu-1 has it in its desired state after a Hello");

	web.value = "nope";
	err[0] = '\0';
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    SHOAL_E_NOT_FOUND, "a selector no node matches: not found");
	ok(err[0] && rep.n_operations == 0 && listed_ops(svc, "gpu-1") == 1 &&
	        snapshot_rows(svc, "cpu-1", "pending") == 1,
	    "with a reason; nothing queued");
	services_free_reply(&rep);
	req.selector = NULL;
	req.n_selector = 0;

	/* 2. The agent's answers. */
	iris1.service = "iris";
	iris1.revision = 1;
	iris1.active = 1;
	sn1.id = snap1;
	sn1.message = "before the upgrade";
	sn1.services = iris1p;
	sn1.n_services = 1;
	sn1.state = SHOAL__SNAPSHOT__STATE__READY;
	broken.id = "broken-1";
	broken.state = SHOAL__SNAPSHOT__STATE__CORRUPT;
	broken.reason = "sha256 mismatch";
	gone.service = "ghost";
	gone.revision = 1;
	gone.active = 1;
	ghost.id = "ghost-1";
	ghost.services = gonep;
	ghost.n_services = 1;
	ghost.state = SHOAL__SNAPSHOT__STATE__READY;
	res.token = tok1;
	res.ok = 1;
	res.result = "taken";
	g = generation(reg, "gpu-1");
	agent_report(svc, reg, "gpu-1", resp, 1, cat, 3);
	ok(!listed_op(svc, "gpu-1", tok1) && listed_ops(svc, "gpu-1") == 0,
	    "an answered operation leaves gpu-1's desired state");
	is_int(generation(reg, "gpu-1"), g + 1,
	    "gpu-1's generation moved with it");
	is_str(snapshot_row(svc, "gpu-1", snap1, state, sizeof state, NULL, 0),
	    "ready", "the snapshot gpu-1 reported is ready");
	is_str(snapshot_row(svc, "gpu-1", "broken-1", state, sizeof state, why,
	           sizeof why),
	    "corrupt", "a corrupt one in its catalogue is listed corrupt");
	is_str(why, "sha256 mismatch", "with the agent's reason");
	ok(finished_op(svc, "gpu-1", tok1, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__DONE &&
	        strcmp(result, "taken") == 0,
	    "the operation is done, with the agent's result");

	is_int(snap_node(svc, "gpu-1", tok2, snap2, err, sizeof err), 0,
	    "a second snapshot on gpu-1");
	res.token = tok2;
	res.ok = 0;
	res.result = "no space left on device";
	agent_report(svc, reg, "gpu-1", resp, 1, cat, 3);
	is_str(snapshot_row(svc, "gpu-1", snap2, state, sizeof state, why,
	           sizeof why),
	    "failed", "a failed answer: the snapshot is listed failed");
	is_str(why, "no space left on device", "with its reason");
	ok(!listed_op(svc, "gpu-1", tok2) &&
	        finished_op(svc, "gpu-1", tok2, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__FAILED,
	    "the operation failed and is no longer queued");

	is_int(snap_node(svc, "gpu-1", tok3, NULL, err, sizeof err), 0,
	    "a third snapshot on gpu-1");
	g = generation(reg, "gpu-1");
	res.token = "00000000000000000000000000000000";
	res.ok = 1;
	res.result = "taken";
	agent_report(svc, reg, "gpu-1", resp, 1, cat, 3);
	ok(listed_op(svc, "gpu-1", tok3) && listed_ops(svc, "gpu-1") == 1 &&
	        generation(reg, "gpu-1") == g &&
	        snapshot_rows(svc, "gpu-1", "pending") == 1,
	    "an answer with an unknown token changes nothing");
	res.token = tok1;
	agent_report(svc, reg, "gpu-1", resp, 1, cat, 3);
	ok(listed_ops(svc, "gpu-1") == 1 && generation(reg, "gpu-1") == g &&
	        finished_op(svc, "gpu-1", tok1, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__DONE,
	    "an answer repeated for a finished operation changes nothing");

	/* 3. Restores refused. */
	is_int(restore(svc, "gpu-1", "nope-1", &rep, err, sizeof err),
	    SHOAL_E_NOT_FOUND,
	    "restore of a snapshot gpu-1 never reported: not found");
	ok(strstr(err, "nope-1") && rep.n_operations == 0,
	    "err names it; nothing queued");
	is_int(restore(svc, "gpu-2", snap1, &rep, err, sizeof err),
	    SHOAL_E_NOT_FOUND,
	    "restore of gpu-1's snapshot on gpu-2: not found");
	is_int(restore(svc, "gpu-9", snap1, &rep, err, sizeof err),
	    SHOAL_E_NOT_FOUND, "restore on an unknown node: not found");
	is_int(restore(svc, "gpu-1", "broken-1", &rep, err, sizeof err),
	    SHOAL_E_INVALID, "restore of a corrupt snapshot: invalid");
	ok(strstr(err, "corrupt") && strstr(err, "sha256 mismatch"),
	    "err says it is corrupt and why");
	is_int(restore(svc, "gpu-1", "ghost-1", &rep, err, sizeof err),
	    SHOAL_E_INVALID,
	    "restore of a snapshot running a service the coordinator lacks");
	ok(strstr(err, "ghost") != NULL, "err names the service");
	ok(rep.n_operations == 0 && listed_ops(svc, "gpu-1") == 1,
	    "no refused restore queued anything");
	services_free_reply(&rep);

	/* 5. A new revision starts a rollout, which snapshots each node
	 * before its first step. */
	iris.image = "localhost/model:2";
	r = services_apply(svc, &iris, "v2", "test@host", ring, NULL, &sres);
	ok(r == 0 && sres.changed && sres.revision == 2 && sres.rollout,
	    "iris revision 2 starts a rollout");
	rn = member(sres.rollout, "gpu-1");
	ro_id = sres.rollout ? sres.rollout->id : 0;
	snprintf(auto1, sizeof auto1, "%s", rn ? rn->snapshot : "");
	ok(rn && snapshot_id_valid(auto1),
	    "the rollout's node gpu-1 records a snapshot id");
	rn = member(sres.rollout, "gpu-2");
	ok(rn && snapshot_id_valid(rn->snapshot), "and so does its node gpu-2");
	{
		Shoal__Operation **ops;
		size_t n, found = 0;

		services_operations(svc, "gpu-1", &ops, &n);
		for (size_t i = 0; i < n; i++)
			if (strcmp(ops[i]->snapshot, auto1) == 0) {
				found++;
				ok(ops[i]->kind ==
				            SHOAL__OPERATION__KIND__SNAPSHOT &&
				        strcmp(ops[i]->requested_by,
				            "rollout") == 0 &&
				        strcmp(ops[i]->service, "iris") == 0 &&
				        ops[i]->rollout == ro_id && ro_id,
				    "gpu-1's automatic snapshot: requested by "
				    "the rollout, naming iris and the rollout");
			}
		is_int(found, 1,
		    "gpu-1's desired state lists the rollout's snapshot");
		services_operations(svc, "gpu-2", &ops, &n);
		ok(n == 1 && strcmp(ops[0]->requested_by, "rollout") == 0 &&
		        ops[0]->rollout == ro_id,
		    "gpu-2's lists its own");
	}
	is_str(snapshot_row(svc, "gpu-1", auto1, state, sizeof state, NULL, 0),
	    "pending", "the automatic snapshot is listed pending");
	ok(snapshot_rows(svc, "cpu-1", "pending") == 1 &&
	        snapshot_rows(svc, "web-2", "pending") == 1,
	    "cpu-1 and web-2, outside the rollout, get no automatic snapshot");

	is_int(restore(svc, "gpu-1", snap1, &rep, err, sizeof err),
	    SHOAL_E_INVALID, "restore while iris's rollout runs on gpu-1");
	ok(strstr(err, "iris") != NULL && rep.n_operations == 0,
	    "err names the service; nothing queued");
	services_free_reply(&rep);
	is_int(settle(svc, reg, "iris", cat, 3),
	    SHOAL__ROLLOUT__STATE__SUCCEEDED,
	    "the rollout to revision 2 succeeds");
	ok(assigned(svc, "gpu-1", "iris") == 2 &&
	        assigned(svc, "gpu-2", "iris") == 2,
	    "gpu-1 and gpu-2 run iris 2");

	/* 3. A restore accepted and answered. */
	nrang = 0;
	g = generation(reg, "gpu-1");
	is_int(restore(svc, "gpu-1", snap1, &rep, err, sizeof err), 0,
	    "restore of a ready snapshot on gpu-1");
	ok(rep.n_operations == 1 &&
	        rep.operations[0]->kind == SHOAL__OPERATION__KIND__RESTORE &&
	        strcmp(rep.operations[0]->snapshot, snap1) == 0 &&
	        rep.operations[0]->n_services == 1 &&
	        rep.operations[0]->services[0]->revision == 1,
	    "a RESTORE operation of it, with what it holds");
	snprintf(tok_r, sizeof tok_r, "%s",
	    rep.n_operations ? rep.operations[0]->token : "");
	services_free_reply(&rep);
	op = listed_op(svc, "gpu-1", tok_r);
	ok(op && op->kind == SHOAL__OPERATION__KIND__RESTORE,
	    "gpu-1's desired state lists the restore");
	ok(generation(reg, "gpu-1") == g + 1 && nrang == 1,
	    "gpu-1's generation moved and it was rung");
	is_int(restore(svc, "gpu-1", snap1, &rep, err, sizeof err),
	    SHOAL_E_INVALID, "a second restore while one is pending");
	services_free_reply(&rep);
	is_int(assigned(svc, "gpu-1", "iris"), 2,
	    "until the agent answers, gpu-1 keeps iris 2");

	res.token = tok_r;
	res.ok = 1;
	res.restore = 1;
	res.result = "restored";
	agent_report(svc, reg, "gpu-1", resp, 1, cat, 3);
	ok(!listed_op(svc, "gpu-1", tok_r) &&
	        finished_op(svc, "gpu-1", tok_r, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__DONE,
	    "the answered restore is done and no longer queued");
	is_int(assigned(svc, "gpu-1", "iris"), 1,
	    "gpu-1 is held to the snapshot's iris 1 (the service is at 2)");
	is_int(assigned(svc, "gpu-1", "embed"), 0,
	    "and not given embed, which the snapshot lacks");
	ok(assigned(svc, "gpu-2", "iris") == 2 &&
	        assigned(svc, "gpu-2", "embed") == 1,
	    "gpu-2 is unaffected");
	agent_report(svc, reg, "gpu-1", NULL, 0, cat, 3);
	services_tick(svc, NULL, NULL);
	services_node_changed(svc, "gpu-1", NULL, NULL);
	ok(assigned(svc, "gpu-1", "iris") == 1 &&
	        assigned(svc, "gpu-1", "embed") == 0,
	    "the hold stays through reports, ticks and a recompute");

	/* 4. At most 16 pending operations per node. */
	for (int i = 0; i < 15; i++)
		if (snap_node(svc, "web-2", NULL, NULL, err, sizeof err) < 0)
			break;
	is_int(snapshot_rows(svc, "web-2", "pending"), 16,
	    "16 snapshots pending on web-2");
	err[0] = '\0';
	req.node = "web-2";
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    SHOAL_E_LIMIT, "the 17th on web-2: limit");
	ok(err[0] && rep.n_operations == 0 &&
	        snapshot_rows(svc, "web-2", "pending") == 16,
	    "with a reason; nothing queued");
	services_free_reply(&rep);
	pending = listed_ops(svc, "gpu-1");
	req.node = "";
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    0, "a snapshot of every node while web-2 is full: queued");
	ok(rep.n_operations == 3 && listed_ops(svc, "gpu-1") == pending + 1 &&
	        snapshot_rows(svc, "cpu-1", "pending") == 2 &&
	        snapshot_rows(svc, "web-2", "pending") == 16,
	    "on every node but the full one, which is left out");
	services_free_reply(&rep);
	pending++;

	/* Finished operations kept per node: the newest 50. */
	for (int i = 0; i < 51; i++) {
		char tok[65];

		if (snap_node(svc, "cpu-1", tok, NULL, err, sizeof err) < 0)
			break;
		if (i == 0)
			snprintf(tok_c, sizeof tok_c, "%s", tok);
		res.token = tok;
		res.ok = 1;
		res.restore = 0;
		res.result = "taken";
		agent_report(svc, reg, "cpu-1", resp, 1, NULL, 0);
	}
	services_snapshots(svc, "cpu-1", &rep);
	is_int(rep.n_operations, 52,
	    "cpu-1 keeps its two pending snapshots and the newest 50 "
	    "finished");
	services_free_reply(&rep);
	ok(!finished_op(svc, "cpu-1", tok_c, &ost, result, sizeof result),
	    "the oldest finished one is forgotten");

	/* 6. Across a reopen. */
	services_snapshots(svc, "gpu-1", &rep);
	nops = rep.n_operations;
	for (size_t i = 0; i < rep.n_operations; i++)
		if (rep.operations[i]->id > max_id)
			max_id = rep.operations[i]->id;
	services_free_reply(&rep);
	close_all(&store, &reg, &svc);
	ok(open_all(dir, &store, &reg, &svc) == 0, "operations: reopen");
	ok(listed_ops(svc, "gpu-1") == pending && listed_op(svc, "gpu-1", tok3),
	    "gpu-1's pending operations survive");
	is_int(snapshot_rows(svc, "web-2", "pending"), 16,
	    "web-2's 16 pending snapshots survive");
	services_snapshots(svc, "gpu-1", &rep);
	is_int(rep.n_operations, nops, "gpu-1's operations survive");
	services_free_reply(&rep);
	services_snapshots(svc, "cpu-1", &rep);
	is_int(rep.n_operations, 52,
	    "cpu-1's 52 survive, the forgotten one not written back");
	services_free_reply(&rep);
	ok(finished_op(svc, "gpu-1", tok1, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__DONE &&
	        strcmp(result, "taken") == 0 &&
	        finished_op(svc, "gpu-1", tok2, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__FAILED &&
	        strcmp(result, "no space left on device") == 0 &&
	        finished_op(svc, "gpu-1", tok_r, &ost, result, sizeof result) &&
	        ost == SHOAL__OPERATION__STATE__DONE,
	    "finished operations survive, with their results");
	is_str(snapshot_row(svc, "gpu-1", snap2, state, sizeof state, NULL, 0),
	    "failed", "the failed snapshot is still listed failed");
	req.node = "web-2";
	is_int(services_snapshot_create(svc, &req, ring, NULL, &rep, err,
	           sizeof err),
	    SHOAL_E_LIMIT, "the cap holds after a reopen");
	services_free_reply(&rep);
	services_node_changed(svc, "gpu-1", NULL, NULL);
	ok(assigned(svc, "gpu-1", "iris") == 1 &&
	        assigned(svc, "gpu-1", "embed") == 0,
	    "the hold survives a reopen");
	req.node = "gpu-1";
	services_snapshot_create(svc, &req, ring, NULL, &rep, err, sizeof err);
	ok(rep.n_operations == 1 && rep.operations[0]->id == max_id + 1,
	    "operation ids go on after a reopen");
	services_free_reply(&rep);
	ok(assigned(svc, "gpu-1", "iris") == 1 &&
	        assigned(svc, "gpu-1", "embed") == 0,
	    "and the hold stays when that recomputes every node");

	/* 3. A new revision ends the hold on that service only. */
	iris.image = "localhost/model:3";
	r = services_apply(svc, &iris, "v3", "test@host", ring, NULL, &sres);
	ok(r == 0 && sres.changed && sres.revision == 3 && sres.rollout,
	    "iris revision 3 starts a rollout");
	rn = member(sres.rollout, "gpu-1");
	ok(rn && rn->from_revision == 1 && rn->snapshot[0],
	    "gpu-1 joins it from the held revision 1, snapshotted first");
	rn = member(sres.rollout, "gpu-2");
	ok(rn && rn->from_revision == 2, "gpu-2 joins it from revision 2");
	{
		Shoal__ServiceAssignment **a;
		size_t n, k;

		services_desired(svc, "gpu-1", &a, &n);
		for (k = 0; k < n && strcmp(a[k]->service, "iris") != 0; k++)
			;
		ok(k < n && a[k]->revision == 1 && a[k]->prestage_revision == 3,
		    "gpu-1 runs iris 1 and prepares revision 3");
	}
	is_int(settle(svc, reg, "iris", cat, 3),
	    SHOAL__ROLLOUT__STATE__SUCCEEDED,
	    "the rollout to revision 3 succeeds");
	is_int(assigned(svc, "gpu-1", "iris"), 3,
	    "the hold on iris has ended: gpu-1 runs revision 3");
	is_int(assigned(svc, "gpu-1", "embed"), 0,
	    "embed, unchanged, is still held off gpu-1");
	embed.image = "localhost/embed:2";
	services_apply(svc, &embed, "v2", "test@host", ring, NULL, &sres);
	is_int(assigned(svc, "gpu-1", "embed"), 2,
	    "a new embed revision ends that hold too: gpu-1 gets it at once");

	close_all(&store, &reg, &svc);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}

int
main(void)
{
	char dir[] = "/tmp/shoal-test-services.XXXXXX", cmd[128];
	store_t *store = NULL;
	registry_t *reg = NULL;
	services_t *svc = NULL;
	Shoal__ServiceSpec spec = SHOAL__SERVICE_SPEC__INIT;
	Shoal__UpdateStrategy update = SHOAL__UPDATE_STRATEGY__INIT;
	Shoal__Label sel = SHOAL__LABEL__INIT, *selp[1] = { &sel };
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	Shoal__StatusReport sr = SHOAL__STATUS_REPORT__INIT;
	Shoal__ServiceStatus st = SHOAL__SERVICE_STATUS__INIT,
	                     *stp[1] = { &st };
	uint64_t rev, g;
	uint32_t selected;
	int changed;

	if (!mkdtemp(dir))
		return 1;
	ok(open_all(dir, &store, &reg, &svc) == 0, "services open");
	hello(reg, "gpu-1", "model");
	hello(reg, "gpu-2", "model");
	hello(reg, "cpu-1", "web");
	for (int i = 0; i < 3; i++)
		services_node_changed(svc, registry_at(reg, i)->id, ring, NULL);
	is_int(nrang, 0, "no services: nothing to ring");

	sel.key = "role";
	sel.value = "model";
	spec.service = "iris";
	spec.selector = selp;
	spec.n_selector = 1;
	spec.image = "localhost/model:1";
	spec.port = 8080;
	/* Every node at once: these tests are about desired states, not
	 * waves (test_rollout covers those). */
	update.max_parallel = 100;
	update.max_parallel_percent = 1;
	update.healthy_deadline_ms = 60000;
	update.progress_deadline_ms = 60000;
	update.auto_revert = 1;
	spec.update = &update;
	g = generation(reg, "gpu-1");
	is_int(apply_spec(svc, &spec, "first", ring, NULL, &rev, &changed,
	           &selected),
	    0, "apply a new service");
	ok(rev == 1 && changed && selected == 2,
	    "revision 1, two nodes selected");
	is_int(assigned(svc, "gpu-1", "iris"), 1, "gpu-1 must run revision 1");
	is_int(assigned(svc, "cpu-1", "iris"), 0,
	    "cpu-1 is not selected by role=model");
	is_int(generation(reg, "gpu-1"), g + 1, "gpu-1's generation moved");
	ok(nrang == 2 && rung("gpu-1@2") && rung("gpu-2@2"),
	    "the two selected nodes were rung");

	nrang = 0;
	is_int(apply_spec(svc, &spec, "again", ring, NULL, &rev, &changed,
	           &selected),
	    0, "apply the same spec");
	ok(rev == 1 && !changed && nrang == 0,
	    "an unchanged spec makes no revision and rings nobody");

	spec.image = "localhost/model:2";
	apply_spec(svc, &spec, "v2", ring, NULL, &rev, &changed, &selected);
	ok(rev == 2 && changed, "a changed spec makes revision 2");
	{
		Shoal__ServiceAssignment **a;
		size_t n;

		services_desired(svc, "gpu-2", &a, &n);
		ok(n == 1 && a[0]->revision == 1 && a[0]->active &&
		        a[0]->prestage_revision == 2 && a[0]->prestage_spec,
		    "gpu-2 keeps serving revision 1 and prepares revision 2");
	}
	prepared(svc, reg);
	is_int(assigned(svc, "gpu-2", "iris"), 2,
	    "once both prepared it, gpu-2 must run revision 2");

	/* History: the newest SERVICES_HISTORY revisions, newest first. */
	for (int i = 3; i <= SERVICES_HISTORY + 3; i++) {
		char image[64];

		snprintf(image, sizeof image, "localhost/model:%d", i);
		spec.image = image;
		apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed,
		    &selected);
		prepared(svc, reg);
	}
	spec.image = "localhost/model:2";
	is_int(rev, SERVICES_HISTORY + 3, "revisions count on");
	is_int(services_history(svc, "iris", &rep), 0, "history");
	ok(rep.n_revisions == SERVICES_HISTORY &&
	        rep.revisions[0]->revision == SERVICES_HISTORY + 3 &&
	        rep.revisions[SERVICES_HISTORY - 1]->revision == 4,
	    "history keeps the newest revisions, newest first");
	ok(rep.n_revisions && strlen(rep.revisions[0]->digest) == 64,
	    "each revision carries the spec's digest");
	services_free_reply(&rep);
	is_int(services_history(svc, "nope", &rep), SHOAL_E_NOT_FOUND,
	    "history of an unknown service");

	/* A node whose labels change is moved in or out. */
	nrang = 0;
	hello(reg, "cpu-1", "model");
	services_node_changed(svc, "cpu-1", ring, NULL);
	is_int(assigned(svc, "cpu-1", "iris"), rev,
	    "a node relabelled into the selector gets the service");
	ok(nrang == 1, "and is rung");

	/* Status reports and the services list. */
	st.service = "iris";
	st.revision = rev;
	st.state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
	st.endpoint = "127.0.0.1:40000";
	sr.seq = 77;
	sr.services = stp;
	sr.n_services = 1;
	is_int(services_report(svc, "gpu-1", &sr, NULL, NULL), 0,
	    "a status report");
	is_int(services_status_seq(svc, "gpu-1"), 77,
	    "its seq is what heartbeat replies name");
	services_list(svc, &rep);
	ok(rep.n_services == 1 && rep.services[0]->nodes == 3 &&
	        rep.services[0]->healthy == 1,
	    "services: three nodes selected, one healthy");
	services_free_reply(&rep);
	is_int(services_status(svc, "iris", &rep), 0, "status of iris");
	ok(rep.n_statuses == 3, "one row per selected node");
	for (size_t i = 0; i < rep.n_statuses; i++) {
		const Shoal__NodeServiceStatus *row = rep.statuses[i];

		if (strcmp(row->node, "gpu-1") == 0)
			ok(row->status->state ==
			            SHOAL__SERVICE_STATUS__STATE__HEALTHY &&
			        strcmp(row->status->endpoint,
			            "127.0.0.1:40000") == 0,
			    "gpu-1 shows what it reported");
		if (strcmp(row->node, "cpu-1") == 0)
			ok(row->status->state ==
			            SHOAL__SERVICE_STATUS__STATE__PENDING &&
			        row->status->revision == rev,
			    "cpu-1 has not reported: pending, at the wanted "
			    "revision");
	}
	services_free_reply(&rep);

	/* Everything survives a reopen. */
	close_all(&store, &reg, &svc);
	ok(open_all(dir, &store, &reg, &svc) == 0, "services reopen");
	is_int(assigned(svc, "gpu-2", "iris"), rev,
	    "desired state survives a reopen");
	is_int(services_status_seq(svc, "gpu-1"), 77,
	    "status survives a reopen");
	services_list(svc, &rep);
	ok(rep.n_services == 1 && rep.services[0]->revision == rev,
	    "the service and its revision survive a reopen");
	services_free_reply(&rep);
	spec.image = "localhost/model:13";
	apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed, &selected);
	ok(!changed, "the digest survives too: the same spec is a no-op");

	/* Delete. */
	nrang = 0;
	g = generation(reg, "gpu-1");
	is_int(services_delete(svc, "iris", ring, NULL), 0, "delete");
	is_int(assigned(svc, "gpu-1", "iris"), 0,
	    "a deleted service is nobody's desired state");
	ok(generation(reg, "gpu-1") == g + 1 && nrang == 3,
	    "its nodes move on and are rung");
	is_int(services_delete(svc, "iris", ring, NULL), SHOAL_E_NOT_FOUND,
	    "deleting it again: not found");
	services_list(svc, &rep);
	is_int(rep.n_services, 0, "no services left");
	services_free_reply(&rep);
	spec.image = "localhost/model:1";
	apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed, &selected);
	is_int(rev, SERVICES_HISTORY + 4,
	    "a service applied after delete goes on from its last revision");

	close_all(&store, &reg, &svc);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);

	test_operations();
	return done_testing();
}
