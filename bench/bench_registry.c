/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmarks for the coordinator's hot path, side by side in one run:
 * decoding and validating an agent frame, and recording a heartbeat with
 * its figures written in batches (what the coordinator does) against one
 * LMDB commit per heartbeat (what it would cost without batching).
 * Prints a Markdown table. Run with `make bench`.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/log.h"
#include "common/store.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/registry.h"
#include "coordinator/services.h"

#define NODES 1000
#define HEARTBEATS 20000
/* 1000 nodes beating every 5s give 1000 heartbeats per 5s flush. */
#define FLUSH_EVERY 1000

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
row(const char *what, unsigned long n, double secs)
{
	printf("| %s | %lu | %.0f | %.2f |\n", what, n, (double)n / secs,
	    secs / (double)n * 1e6);
}

static void
bench_wire(void)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT, *out;
	Shoal__Heartbeat hb = SHOAL__HEARTBEAT__INIT;
	Shoal__HostFigures fig = SHOAL__HOST_FIGURES__INIT;
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Facts facts = SHOAL__FACTS__INIT;
	Shoal__Label labels[8], *lp[8];
	char keys[8][16];
	uint8_t *buf;
	size_t n;
	double t;
	const int iters = 200000;

	env.version = SHOAL_PROTOCOL_VERSION;
	env.node_id = "gpu-node-0001";
	fig.load1 = 1.5;
	fig.cpu_percent = 42;
	fig.memory_available_bytes = 1ULL << 34;
	hb.figures = &fig;
	hb.generation = 12;
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	wire_pack(&env, &buf, &n);
	t = now_s();
	for (int i = 0; i < iters; i++) {
		if (wire_unpack(buf, n, &out, NULL) < 0)
			abort();
		shoal__envelope__free_unpacked(out, NULL);
	}
	row("decode + validate a heartbeat frame", iters, now_s() - t);
	free(buf);

	for (int i = 0; i < 8; i++) {
		shoal__label__init(&labels[i]);
		snprintf(keys[i], sizeof keys[i], "label-%d", i);
		labels[i].key = keys[i];
		labels[i].value = "value";
		lp[i] = &labels[i];
	}
	facts.hostname = "gpu-node-0001";
	facts.os = "Debian GNU/Linux 12 (bookworm)";
	hello.labels = lp;
	hello.n_labels = 8;
	hello.facts = &facts;
	hello.heartbeat_ms = 5000;
	hello.agent_version = "0.1.0";
	env.body_case = SHOAL__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	wire_pack(&env, &buf, &n);
	t = now_s();
	for (int i = 0; i < iters; i++) {
		if (wire_unpack(buf, n, &out, NULL) < 0)
			abort();
		shoal__envelope__free_unpacked(out, NULL);
	}
	row("decode + validate a hello with 8 labels", iters, now_s() - t);
	free(buf);
}

static void
bench_heartbeats(const char *dir, int batched)
{
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Heartbeat hb = SHOAL__HEARTBEAT__INIT;
	Shoal__HostFigures fig = SHOAL__HOST_FIGURES__INIT;
	const Shoal__Node *node;
	char path[512], id[32];
	store_t *store;
	registry_t *reg;
	double t;

	snprintf(path, sizeof path, "%s/%s", dir, batched ? "b" : "i");
	if (store_open(path, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	        1ULL << 30, &store) < 0 ||
	    registry_open(store, &reg) < 0)
		abort();
	hello.heartbeat_ms = 5000;
	hello.agent_version = "0.1.0";
	hello.store_id = "s";
	for (int i = 0; i < NODES; i++) {
		snprintf(id, sizeof id, "node-%04d", i);
		registry_hello(reg, id, &hello, &node);
	}
	hb.figures = &fig;
	t = now_s();
	for (int i = 0; i < HEARTBEATS; i++) {
		snprintf(id, sizeof id, "node-%04d", i % NODES);
		fig.load1 = i;
		if (registry_heartbeat(reg, id, &hb, &node) < 0)
			abort();
		if (!batched || (i + 1) % FLUSH_EVERY == 0)
			registry_flush(reg);
	}
	registry_flush(reg);
	row(batched ? "heartbeat, figures written every 1000 (shoal)"
	            : "heartbeat, one LMDB commit each (for comparison)",
	    HEARTBEATS, now_s() - t);
	registry_close(&reg);
	store_close(&store);
}

/*
 * Applying services to a fleet: every apply of a new revision recomputes
 * the desired state of every node and writes those that changed in one
 * transaction. 1000 nodes, half of them role=a; SERVICES services on them.
 */
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

#define SERVICES 20
#define APPLIES 200

/* The nodes of svc-00's rollout in state st, their ids into ids. */
static size_t
rollout_nodes(services_t *svc, Shoal__RolloutNode__State st, char (*ids)[32],
    uint64_t *to)
{
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	size_t n = 0;

	if (services_rollout(svc, "svc-00", &rep) < 0 || !rep.n_rollouts)
		abort();
	*to = rep.rollouts[0]->to_revision;
	for (size_t i = 0; i < rep.rollouts[0]->n_nodes; i++)
		if (rep.rollouts[0]->nodes[i]->state == st)
			snprintf(ids[n++], 32, "%s",
			    rep.rollouts[0]->nodes[i]->node);
	services_free_reply(&rep);
	return n;
}

/*
 * The rollout engine on the same fleet: svc-00 rolls out to its 500 nodes
 * in waves of 50, while the 19 other services' rollouts (every node at
 * once) wait for nodes that never report. The coordinator ticks every
 * 250 ms: what a tick costs while nothing changed, and what one costs that
 * moves a wave on (its 50 nodes reported healthy: settle, done, the next
 * wave admitted, written with the desired states in one transaction).
 */
static void
bench_rollout(services_t *svc, Shoal__ServiceSpec *spec)
{
	Shoal__UpdateStrategy update = *spec->update;
	Shoal__StatusReport sr = SHOAL__STATUS_REPORT__INIT;
	Shoal__ServiceStatus st = SHOAL__SERVICE_STATUS__INIT,
	                     *stp[1] = { &st };
	static char ids[NODES][32];
	services_result_t res;
	double t, moving = 0;
	unsigned waves = 0;
	uint64_t to;
	size_t n;

	log_set_level(LOG_WARNING); /* a line per node step otherwise */
	update.max_parallel = 50;
	update.max_parallel_percent = 0;
	update.min_healthy_time_ms = 0;
	spec->update = &update;
	snprintf(spec->service, 32, "svc-00");
	snprintf((char *)spec->image, 64, "localhost/model-00:rollout");
	if (services_apply(svc, spec, "", "bench", NULL, NULL, &res) < 0 ||
	    !res.rollout || res.rollout->waves != 10)
		abort();
	t = now_s();
	for (int i = 0; i < APPLIES * 10; i++)
		services_tick(svc, NULL, NULL);
	row("rollout tick, 20 rollouts of 500 nodes under way, no news",
	    APPLIES * 10, now_s() - t);
	st.service = "svc-00";
	st.state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
	sr.generation = 1ULL << 40;
	sr.services = stp;
	sr.n_services = 1;
	while ((n = rollout_nodes(svc, SHOAL__ROLLOUT_NODE__STATE__SWITCHING,
	            ids, &to)) > 0) {
		st.revision = to;
		for (size_t i = 0; i < n; i++) {
			sr.seq++;
			services_report(svc, ids[i], &sr);
		}
		t = now_s();
		services_tick(svc, NULL, NULL); /* switching -> settling */
		services_tick(svc, NULL, NULL); /* done, next wave */
		moving += now_s() - t;
		waves++;
	}
	if (waves != 10)
		abort();
	row("rollout ticks moving a wave of 50 on (two ticks)", waves, moving);
}

static void
bench_apply(const char *dir)
{
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Label role = SHOAL__LABEL__INIT, *rolep[1] = { &role };
	Shoal__ServiceSpec spec = SHOAL__SERVICE_SPEC__INIT;
	Shoal__UpdateStrategy update = SHOAL__UPDATE_STRATEGY__INIT;
	Shoal__Label sel = SHOAL__LABEL__INIT, *selp[1] = { &sel };
	const Shoal__Node *node;
	char path[512], id[32], name[32], image[64];
	uint64_t rev;
	uint32_t selected;
	int changed;
	store_t *store;
	registry_t *reg;
	services_t *svc;
	double t;

	snprintf(path, sizeof path, "%s/s", dir);
	if (store_open(path, registry_dbs, registry_ndbs, REGISTRY_SCHEMA,
	        1ULL << 32, &store) < 0 ||
	    registry_open(store, &reg) < 0 ||
	    services_open(store, reg, &svc) < 0)
		abort();
	hello.heartbeat_ms = 5000;
	hello.agent_version = "0.1.0";
	hello.store_id = "s";
	hello.labels = rolep;
	hello.n_labels = 1;
	role.key = sel.key = "role";
	for (int i = 0; i < NODES; i++) {
		snprintf(id, sizeof id, "node-%04d", i);
		role.value = i % 2 ? "a" : "b";
		registry_hello(reg, id, &hello, &node);
	}
	sel.value = "a";
	spec.selector = selp;
	spec.n_selector = 1;
	spec.port = 8080;
	/* Every node at once: these tests are about desired states, not
	 * waves (test_rollout covers those). */
	update.max_parallel = 100;
	update.max_parallel_percent = 1;
	update.healthy_deadline_ms = 60000;
	update.progress_deadline_ms = 60000;
	update.auto_revert = 1;
	spec.update = &update;
	spec.image = image;
	spec.service = name;
	for (int i = 0; i < SERVICES; i++) {
		snprintf(name, sizeof name, "svc-%02d", i);
		snprintf(image, sizeof image, "localhost/model-%02d:0", i);
		apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed,
		    &selected);
	}
	t = now_s();
	for (int i = 0; i < APPLIES; i++) {
		snprintf(name, sizeof name, "svc-%02d", i % SERVICES);
		snprintf(image, sizeof image, "localhost/model-%02d:%d",
		    i % SERVICES, i + 1);
		if (apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed,
		        &selected) < 0 ||
		    !changed)
			abort();
	}
	row("apply a new revision (500 of 1000 nodes, 20 services)", APPLIES,
	    now_s() - t);
	t = now_s();
	for (int i = 0; i < APPLIES * 10; i++) {
		apply_spec(svc, &spec, "", NULL, NULL, &rev, &changed,
		    &selected);
		if (changed)
			abort();
	}
	row("apply an unchanged spec (no-op)", APPLIES * 10, now_s() - t);
	t = now_s();
	for (int i = 0; i < APPLIES * 10; i++) {
		snprintf(id, sizeof id, "node-%04d", (i * 7) % NODES);
		services_node_changed(svc, id, NULL, NULL);
	}
	row("recompute one node's desired state (a Hello)", APPLIES * 10,
	    now_s() - t);
	bench_rollout(svc, &spec);
	services_close(&svc);
	registry_close(&reg);
	store_close(&store);
}

int
main(int argc, char **argv)
{
	char dir[] = "bench-state.XXXXXX", cmd[64];
	struct rusage ru;

	if (!mkdtemp(dir))
		return 1;
	printf("| operation | count | per second | microseconds each |\n");
	printf("| --- | ---: | ---: | ---: |\n");
	bench_wire();
	bench_heartbeats(dir, 1);
	bench_heartbeats(dir, 0);
	bench_apply(dir);
	getrusage(RUSAGE_SELF, &ru);
	printf("\nPeak RSS of the benchmark process (%d nodes): %ld KiB\n",
	    NODES, ru.ru_maxrss);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
