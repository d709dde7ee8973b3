/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's services: revisions on apply (and none for an
 * unchanged spec), node selection by labels, per-node desired state and
 * generations, doorbells, history and its bound, delete, status reports,
 * and all of it across a reopen.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/store.h"
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
	is_int(services_report(svc, "gpu-1", &sr, NULL, NULL), 0, "a status report");
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
	return done_testing();
}
