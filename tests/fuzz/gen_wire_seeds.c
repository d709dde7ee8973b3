/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes the wire harness's seed corpus: one packed Envelope a file
 * (NAME.pb) for every body the daemons exchange and every control request,
 * and control replies carrying each kind of item, all filled in the way
 * the agent, the coordinator and shoalctl fill them. Every seed must pass
 * wire_unpack(), so the fuzzer starts from frames that reach the deepest
 * checks; the program fails, naming the seed and the rule, otherwise.
 * `make fuzz-seeds` rewrites tests/fuzz/corpus/wire/ with it, and
 * scripts/fuzz.sh adds a fresh set to each run's scratch corpus.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"
#include "common/wire.h"

/* A message of type T from the heap, initialised: free_unpacked() frees
 * what these build, as it frees what the unpacker builds. */
#define NEW(T, init)                         \
	({                                   \
		T *m_ = xmalloc(sizeof *m_); \
		init(m_);                    \
		m_;                          \
	})
#define ARRAY(n) xcalloc((n) + 1, sizeof(void *))
#define S(s) xstrdup(s)

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

/* Every field of the spec format (ARCHITECTURE.md), so a DesiredState or
 * an Apply carries a spec that spec_validate() goes all the way through. */
static const char full_spec[] =
    "service: iris\n"
    "selector: {role: model, gpu: a100}\n"
    "image: registry.example.com/models/iris:2\n"
    "command: [\"/model-server\", \"--port\", \"8080\"]\n"
    "env: {MODEL_PATH: /models/iris.bin, THREADS: \"4\"}\n"
    "port: 8080\n"
    "resources: {memory: 512Mi, cpus: 1.5, gpus: 1}\n"
    "artifacts:\n"
    "  - url: https://models.example.com/iris-v2.bin\n"
    "    sha256: " SHA_A "\n"
    "    size: 4096\n"
    "    path: /models/iris.bin\n"
    "health:\n"
    "  path: /health\n"
    "  expect_status: 200\n"
    "  interval: 2s\n"
    "  timeout: 1s\n"
    "  start_period: 30s\n"
    "  healthy_threshold: 1\n"
    "  unhealthy_threshold: 3\n"
    "update:\n"
    "  strategy: canary\n"
    "  max_parallel: 25%\n"
    "  canary: 1\n"
    "  auto_promote: true\n"
    "  min_healthy_time: 10s\n"
    "  healthy_deadline: 5m\n"
    "  progress_deadline: 10m\n"
    "  max_failures: 1\n"
    "  auto_revert: true\n";

static const char *out_dir;
static int written;

static Shoal__ServiceSpec *
spec(void)
{
	Shoal__ServiceSpec *s = NULL;
	char err[512];

	if (spec_parse("full_spec", full_spec, strlen(full_spec), &s, err,
	        sizeof err) < 0) {
		fprintf(stderr, "gen_wire_seeds: %s\n", err);
		exit(1);
	}
	return s;
}

static Shoal__Label *
label(const char *key, const char *value)
{
	Shoal__Label *l = NEW(Shoal__Label, shoal__label__init);

	l->key = S(key);
	l->value = S(value);
	return l;
}

static Shoal__Facts *
facts(void)
{
	Shoal__Facts *f = NEW(Shoal__Facts, shoal__facts__init);

	f->hostname = S("gpu-01.example");
	f->os = S("Debian GNU/Linux 12 (bookworm)");
	f->kernel = S("6.1.0-18-amd64");
	f->arch = S("x86_64");
	f->cpus = 64;
	f->memory_bytes = 512ULL << 30;
	return f;
}

static Shoal__HostFigures *
figures(void)
{
	Shoal__HostFigures *f =
	    NEW(Shoal__HostFigures, shoal__host_figures__init);

	f->load1 = 3.25;
	f->cpu_percent = 41.5;
	f->memory_available_bytes = 200ULL << 30;
	f->memory_total_bytes = 512ULL << 30;
	f->gpus = 8;
	f->gpu_util_percent = 77.5;
	f->gpu_memory_used_bytes = 300ULL << 30;
	f->gpu_memory_total_bytes = 640ULL << 30;
	return f;
}

static Shoal__Event *
event(uint64_t seq)
{
	Shoal__Event *e = NEW(Shoal__Event, shoal__event__init);

	e->seq = seq;
	e->time_ms = 1764000000000ULL + seq;
	e->kind = S("service.healthy");
	e->service = S("iris");
	e->message =
	    S("revision 2 healthy on 127.0.0.1:32768\n\tafter 3 probes");
	e->prev_seq = seq - 1;
	return e;
}

static Shoal__Snapshot *
snapshot(void)
{
	Shoal__Snapshot *sn = NEW(Shoal__Snapshot, shoal__snapshot__init);
	Shoal__SnapshotService *ss =
	    NEW(Shoal__SnapshotService, shoal__snapshot_service__init);

	ss->service = S("iris");
	ss->revision = 2;
	ss->active = 1;
	sn->id = S("20261124-023213-1a2b");
	sn->created_ms = 1764000000000ULL;
	sn->message = S("before rollout 3 of iris");
	sn->services = ARRAY(1);
	sn->services[sn->n_services++] = ss;
	sn->bytes = 1 << 20;
	sn->sha256 = S(SHA_B);
	sn->artifacts = ARRAY(1);
	sn->artifacts[sn->n_artifacts++] = S(SHA_A);
	sn->generation = 4;
	sn->state = SHOAL__SNAPSHOT__STATE__READY;
	sn->service = S("iris");
	sn->rollout = 3;
	return sn;
}

static Shoal__ServiceAssignment *
assignment(void)
{
	Shoal__ServiceAssignment *a =
	    NEW(Shoal__ServiceAssignment, shoal__service_assignment__init);

	a->service = S("iris");
	a->revision = 2;
	a->spec = spec();
	a->active = 1;
	a->prestage_revision = 3;
	a->prestage_spec = spec();
	return a;
}

static Shoal__Operation *
operation(Shoal__Operation__Kind kind)
{
	Shoal__Operation *op = NEW(Shoal__Operation, shoal__operation__init);

	op->id = kind == SHOAL__OPERATION__KIND__RESTORE ? 2 : 1;
	op->token = S(kind == SHOAL__OPERATION__KIND__RESTORE
	        ? "5d41402abc4b2a76b9719d911017c592"
	        : "7d793037a0760186574b0282f2f435e7");
	op->kind = kind;
	op->snapshot = S("20261124-023213-1a2b");
	op->message = S("nightly");
	op->requested_by = S("ops@console");
	op->created_ms = 1764000000000ULL;
	op->state = SHOAL__OPERATION__STATE__PENDING;
	op->node = S("gpu-01");
	if (kind == SHOAL__OPERATION__KIND__SNAPSHOT) {
		op->service = S("iris");
		op->rollout = 3;
		return op;
	}

	Shoal__SnapshotService *ss =
	    NEW(Shoal__SnapshotService, shoal__snapshot_service__init);
	Shoal__HeldService *hs =
	    NEW(Shoal__HeldService, shoal__held_service__init);

	ss->service = S("iris");
	ss->revision = 2;
	ss->active = 1;
	op->services = ARRAY(1);
	op->services[op->n_services++] = ss;
	hs->service = S("iris");
	hs->revision = 2;
	hs->current = 3;
	hs->target = 3;
	hs->rollout = 3;
	op->hold = NEW(Shoal__Hold, shoal__hold__init);
	op->hold->services = ARRAY(1);
	op->hold->services[op->hold->n_services++] = hs;
	op->hold->operation = 2;
	op->hold->snapshot = S("20261124-023213-1a2b");
	return op;
}

static Shoal__ServiceStatus *
status(void)
{
	Shoal__ServiceStatus *st =
	    NEW(Shoal__ServiceStatus, shoal__service_status__init);

	st->service = S("iris");
	st->revision = 2;
	st->state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
	st->container = S("4f2a9c1e7b3d");
	st->endpoint = S("127.0.0.1:32768");
	st->reason = S("");
	st->since_ms = 1764000000000ULL;
	st->restarts = 1;
	st->serving_revision = 2;
	st->bytes_done = 4096;
	st->bytes_total = 4096;
	st->prestage = NEW(Shoal__Prestage, shoal__prestage__init);
	st->prestage->revision = 3;
	st->prestage->state = SHOAL__PRESTAGE__STATE__PREPARING;
	st->prestage->bytes_done = 1024;
	st->prestage->bytes_total = 4096;
	return st;
}

static Shoal__Node *
node(const char *id)
{
	Shoal__Node *n = NEW(Shoal__Node, shoal__node__init);

	n->id = S(id);
	n->state = SHOAL__NODE__STATE__ONLINE;
	n->labels = ARRAY(2);
	n->labels[n->n_labels++] = label("gpu", "a100");
	n->labels[n->n_labels++] = label("topology.io/zone", "eu-1");
	n->facts = facts();
	n->agent_version = S("0.1.0");
	n->first_seen_ms = 1764000000000ULL;
	n->last_seen_ms = 1764000005000ULL;
	n->heartbeat_ms = 5000;
	n->generation = 4;
	n->acked_generation = 4;
	n->figures = figures();
	n->store_id = S("c0ffee");
	n->event_seq = 17;
	n->outbox_depth = 2;
	n->state_since_ms = 1764000000000ULL;
	return n;
}

static Shoal__Rollout *
rollout(void)
{
	Shoal__Rollout *ro = NEW(Shoal__Rollout, shoal__rollout__init);
	Shoal__RolloutNode *rn =
	    NEW(Shoal__RolloutNode, shoal__rollout_node__init);
	Shoal__ServiceSpec *s = spec();

	ro->service = S("iris");
	ro->id = 3;
	ro->from_revision = 2;
	ro->to_revision = 3;
	ro->update = s->update; /* moved: the spec gives its update up */
	s->update = NULL;
	spec_free(s);
	ro->state = SHOAL__ROLLOUT__STATE__WAITING_PROMOTE;
	ro->wave = 1;
	ro->waves = 4;
	ro->canaries = 1;
	ro->reason = S("");
	ro->started_by = S("ops@console");
	ro->message = S("new weights");
	ro->started_ms = 1764000000000ULL;
	ro->updated_ms = 1764000060000ULL;
	ro->progress_ms = 1764000060000ULL;
	rn->node = S("gpu-01");
	rn->from_revision = 2;
	rn->state = SHOAL__ROLLOUT_NODE__STATE__SETTLING;
	rn->reason = S("");
	rn->since_ms = 1764000030000ULL;
	rn->healthy_since_ms = 1764000040000ULL;
	rn->generation = 5;
	rn->agent_state = SHOAL__SERVICE_STATUS__STATE__HEALTHY;
	rn->switched = 1;
	rn->bytes_done = 4096;
	rn->bytes_total = 4096;
	rn->snapshot = S("20261124-023213-1a2b");
	ro->nodes = ARRAY(1);
	ro->nodes[ro->n_nodes++] = rn;
	return ro;
}

static Shoal__Envelope *
envelope(const char *node_id, Shoal__Envelope__BodyCase body)
{
	Shoal__Envelope *env = NEW(Shoal__Envelope, shoal__envelope__init);

	env->version = SHOAL_PROTOCOL_VERSION;
	if (node_id)
		env->node_id = S(node_id);
	env->seq = 42;
	env->body_case = body;
	return env;
}

/* Checks env as a receiver would, writes it as NAME.pb and frees it. */
static void
emit(const char *name, Shoal__Envelope *env)
{
	Shoal__Envelope *back = NULL;
	const char *why = "";
	char path[4096];
	uint8_t *buf;
	size_t len;
	FILE *f;
	int r;

	r = wire_pack(env, &buf, &len);
	if (r == 0)
		r = wire_unpack(buf, len, &back, &why);
	if (r < 0) {
		fprintf(stderr, "gen_wire_seeds: seed %s refused: %s (%s)\n",
		    name, shoal_strerror(r), why);
		exit(1);
	}
	shoal__envelope__free_unpacked(back, NULL);
	snprintf(path, sizeof path, "%s/%s.pb", out_dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "gen_wire_seeds: %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	free(buf);
	shoal__envelope__free_unpacked(env, NULL);
	written++;
}

/* -- the agent's and the coordinator's session ------------------------- */

static void
session_seeds(void)
{
	Shoal__Envelope *env;

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_HELLO);
	env->hello = NEW(Shoal__Hello, shoal__hello__init);
	env->hello->agent_version = S("0.1.0");
	env->hello->labels = ARRAY(2);
	env->hello->labels[env->hello->n_labels++] = label("gpu", "a100");
	env->hello->labels[env->hello->n_labels++] = label("rack", "r3");
	env->hello->facts = facts();
	env->hello->heartbeat_ms = 5000;
	env->hello->generation = 3;
	env->hello->store_id = S("c0ffee");
	env->hello->started_ms = 1764000000000ULL;
	emit("hello", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_WELCOME);
	env->welcome = NEW(Shoal__Welcome, shoal__welcome__init);
	env->welcome->coordinator_version = S("0.1.0");
	env->welcome->generation = 4;
	env->welcome->event_seq = 17;
	emit("welcome", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_HEARTBEAT);
	env->heartbeat = NEW(Shoal__Heartbeat, shoal__heartbeat__init);
	env->heartbeat->figures = figures();
	env->heartbeat->generation = 4;
	env->heartbeat->outbox_depth = 2;
	env->heartbeat->status_seq = 9;
	emit("heartbeat", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_HEARTBEAT_REPLY);
	env->heartbeat_reply =
	    NEW(Shoal__HeartbeatReply, shoal__heartbeat_reply__init);
	env->heartbeat_reply->known = 1;
	env->heartbeat_reply->generation = 4;
	env->heartbeat_reply->status_seq = 9;
	emit("heartbeat_reply", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST);
	env->desired_state_request =
	    NEW(Shoal__DesiredStateRequest, shoal__desired_state_request__init);
	env->desired_state_request->have_generation = 3;
	emit("desired_state_request", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_DESIRED_STATE);
	env->desired_state =
	    NEW(Shoal__DesiredState, shoal__desired_state__init);
	env->desired_state->generation = 4;
	env->desired_state->services = ARRAY(1);
	env->desired_state->services[env->desired_state->n_services++] =
	    assignment();
	env->desired_state->operations = ARRAY(2);
	env->desired_state->operations[env->desired_state->n_operations++] =
	    operation(SHOAL__OPERATION__KIND__SNAPSHOT);
	env->desired_state->operations[env->desired_state->n_operations++] =
	    operation(SHOAL__OPERATION__KIND__RESTORE);
	emit("desired_state", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_ACK);
	env->ack = NEW(Shoal__Ack, shoal__ack__init);
	env->ack->generation = 4;
	emit("ack", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_EVENT);
	env->event = event(18);
	emit("event", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_EVENT_ACK);
	env->event_ack = NEW(Shoal__EventAck, shoal__event_ack__init);
	env->event_ack->seq = 18;
	env->event_ack->resend = 1;
	emit("event_ack", env);

	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_DOORBELL);
	env->doorbell = NEW(Shoal__Doorbell, shoal__doorbell__init);
	env->doorbell->generation = 5;
	emit("doorbell", env);

	env = envelope(NULL, SHOAL__ENVELOPE__BODY_ERROR);
	env->error = NEW(Shoal__Error, shoal__error__init);
	env->error->code = SHOAL_E_INVALID;
	env->error->message = S("hello.heartbeat_ms: out of range");
	emit("error", env);

	Shoal__OperationResult *res =
	    NEW(Shoal__OperationResult, shoal__operation_result__init);

	res->token = S("5d41402abc4b2a76b9719d911017c592");
	res->ok = 1;
	res->result = S("restored iris revision 2");
	res->finished_ms = 1764000090000ULL;
	res->restored = ARRAY(1);
	res->restored[res->n_restored++] = assignment();
	res->restore = 1;
	env = envelope("gpu-01", SHOAL__ENVELOPE__BODY_STATUS_REPORT);
	env->status_report =
	    NEW(Shoal__StatusReport, shoal__status_report__init);
	env->status_report->seq = 9;
	env->status_report->generation = 4;
	env->status_report->services = ARRAY(1);
	env->status_report->services[env->status_report->n_services++] =
	    status();
	env->status_report->operations = ARRAY(1);
	env->status_report->operations[env->status_report->n_operations++] =
	    res;
	env->status_report->snapshots = ARRAY(1);
	env->status_report->snapshots[env->status_report->n_snapshots++] =
	    snapshot();
	emit("status_report", env);
}

/* -- shoalctl's requests ----------------------------------------------- */

static Shoal__Envelope *
request(Shoal__ControlRequest__ReqCase req)
{
	Shoal__Envelope *env =
	    envelope(NULL, SHOAL__ENVELOPE__BODY_CONTROL_REQUEST);

	env->control_request =
	    NEW(Shoal__ControlRequest, shoal__control_request__init);
	env->control_request->req_case = req;
	return env;
}

static void
request_seeds(void)
{
	Shoal__ControlRequest *c;
	Shoal__Envelope *env;

	env = request(SHOAL__CONTROL_REQUEST__REQ_LIST_NODES);
	c = env->control_request;
	c->list_nodes = NEW(Shoal__ListNodes, shoal__list_nodes__init);
	c->list_nodes->after = S("gpu-01");
	c->list_nodes->limit = 500;
	emit("ctl_list_nodes", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_GET_NODE);
	c = env->control_request;
	c->get_node = NEW(Shoal__GetNode, shoal__get_node__init);
	c->get_node->id = S("gpu-01");
	emit("ctl_get_node", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_LIST_EVENTS);
	c = env->control_request;
	c->list_events = NEW(Shoal__ListEvents, shoal__list_events__init);
	c->list_events->node = S("gpu-01");
	c->list_events->limit = 100;
	c->list_events->after = 17;
	c->list_events->service = S("iris");
	emit("ctl_list_events", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_APPLY);
	c = env->control_request;
	c->apply = NEW(Shoal__Apply, shoal__apply__init);
	c->apply->spec = spec();
	c->apply->message = S("new weights");
	c->apply->started_by = S("ops@console");
	emit("ctl_apply", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_PLAN);
	c = env->control_request;
	c->plan = NEW(Shoal__Plan, shoal__plan__init);
	c->plan->spec = spec();
	emit("ctl_plan", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_LIST_SERVICES);
	c = env->control_request;
	c->list_services = NEW(Shoal__ListServices, shoal__list_services__init);
	emit("ctl_list_services", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_GET_STATUS);
	c = env->control_request;
	c->get_status = NEW(Shoal__GetStatus, shoal__get_status__init);
	c->get_status->service = S("iris");
	emit("ctl_get_status", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_GET_HISTORY);
	c = env->control_request;
	c->get_history = NEW(Shoal__GetHistory, shoal__get_history__init);
	c->get_history->service = S("iris");
	emit("ctl_get_history", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_DELETE_SERVICE);
	c = env->control_request;
	c->delete_service =
	    NEW(Shoal__DeleteService, shoal__delete_service__init);
	c->delete_service->service = S("iris");
	emit("ctl_delete_service", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_GET_ROLLOUT);
	c = env->control_request;
	c->get_rollout = NEW(Shoal__GetRollout, shoal__get_rollout__init);
	c->get_rollout->service = S("iris");
	emit("ctl_get_rollout", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_ROLLOUT_CONTROL);
	c = env->control_request;
	c->rollout_control =
	    NEW(Shoal__RolloutControl, shoal__rollout_control__init);
	c->rollout_control->service = S("iris");
	c->rollout_control->action = SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE;
	c->rollout_control->started_by = S("ops@console");
	emit("ctl_rollout_control", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_ROLLBACK);
	c = env->control_request;
	c->rollback = NEW(Shoal__Rollback, shoal__rollback__init);
	c->rollback->service = S("iris");
	c->rollback->to_revision = 1;
	c->rollback->message = S("bad weights");
	c->rollback->started_by = S("ops@console");
	emit("ctl_rollback", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_CREATE);
	c = env->control_request;
	c->snapshot_create =
	    NEW(Shoal__SnapshotCreate, shoal__snapshot_create__init);
	c->snapshot_create->selector = ARRAY(1);
	c->snapshot_create->selector[c->snapshot_create->n_selector++] =
	    label("role", "model");
	c->snapshot_create->message = S("nightly");
	c->snapshot_create->requested_by = S("ops@console");
	emit("ctl_snapshot_create", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_LIST_SNAPSHOTS);
	c = env->control_request;
	c->list_snapshots =
	    NEW(Shoal__ListSnapshots, shoal__list_snapshots__init);
	c->list_snapshots->node = S("gpu-01");
	emit("ctl_list_snapshots", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_RESTORE);
	c = env->control_request;
	c->snapshot_restore =
	    NEW(Shoal__SnapshotRestore, shoal__snapshot_restore__init);
	c->snapshot_restore->node = S("gpu-01");
	c->snapshot_restore->snapshot = S("20261124-023213-1a2b");
	c->snapshot_restore->requested_by = S("ops@console");
	emit("ctl_snapshot_restore", env);

	env = request(SHOAL__CONTROL_REQUEST__REQ_BACKUP);
	c = env->control_request;
	c->backup = NEW(Shoal__Backup, shoal__backup__init);
	c->backup->path = S("/var/backups/shoal/coordinator.mdb");
	emit("ctl_backup", env);
}

/* -- the coordinator's replies ----------------------------------------- */

static Shoal__Envelope *
reply(void)
{
	Shoal__Envelope *env =
	    envelope(NULL, SHOAL__ENVELOPE__BODY_CONTROL_REPLY);

	env->control_reply =
	    NEW(Shoal__ControlReply, shoal__control_reply__init);
	return env;
}

static void
reply_seeds(void)
{
	Shoal__ControlReply *c;
	Shoal__Envelope *env;

	env = reply();
	c = env->control_reply;
	c->nodes = ARRAY(2);
	c->nodes[c->n_nodes++] = node("gpu-01");
	c->nodes[c->n_nodes++] = node("gpu-02");
	c->next = S("gpu-02");
	emit("reply_nodes", env);

	Shoal__StoredEvent *se =
	    NEW(Shoal__StoredEvent, shoal__stored_event__init);

	se->node = S("gpu-01");
	se->event = event(18);
	se->received_ms = 1764000000100ULL;
	se->gseq = 1234;
	env = reply();
	c = env->control_reply;
	c->events = ARRAY(2);
	c->events[c->n_events++] = se;
	se = NEW(Shoal__StoredEvent, shoal__stored_event__init);
	se->event = event(1);
	se->gseq = 1235;
	se->coordinator = 1;
	c->events[c->n_events++] = se;
	c->truncated = 1;
	emit("reply_events", env);

	Shoal__ServiceInfo *si =
	    NEW(Shoal__ServiceInfo, shoal__service_info__init);
	Shoal__NodeServiceStatus *ns =
	    NEW(Shoal__NodeServiceStatus, shoal__node_service_status__init);

	si->service = S("iris");
	si->revision = 2;
	si->image = S("registry.example.com/models/iris:2");
	si->nodes = 4;
	si->healthy = 3;
	si->updated_ms = 1764000000000ULL;
	ns->node = S("gpu-01");
	ns->status = status();
	env = reply();
	c = env->control_reply;
	c->services = ARRAY(1);
	c->services[c->n_services++] = si;
	c->statuses = ARRAY(1);
	c->statuses[c->n_statuses++] = ns;
	c->revision = 2;
	c->target = 2;
	emit("reply_status", env);

	Shoal__Revision *rev = NEW(Shoal__Revision, shoal__revision__init);

	rev->service = S("iris");
	rev->revision = 2;
	rev->spec = spec();
	rev->created_ms = 1764000000000ULL;
	rev->message = S("new weights");
	rev->digest = S(SHA_B);
	env = reply();
	c = env->control_reply;
	c->revisions = ARRAY(1);
	c->revisions[c->n_revisions++] = rev;
	c->rollouts = ARRAY(1);
	c->rollouts[c->n_rollouts++] = rollout();
	c->revision = 3;
	c->changed = 1;
	c->selected = 4;
	emit("reply_history", env);

	Shoal__PlanNode *pn = NEW(Shoal__PlanNode, shoal__plan_node__init);

	pn->node = S("gpu-01");
	pn->wave = 0;
	pn->from_revision = 2;
	pn->pull = S("registry.example.com/models/iris:2");
	pn->canary = 1;
	env = reply();
	c = env->control_reply;
	c->plan = ARRAY(1);
	c->plan[c->n_plan++] = pn;
	emit("reply_plan", env);

	Shoal__NodeSnapshot *nsn =
	    NEW(Shoal__NodeSnapshot, shoal__node_snapshot__init);

	nsn->node = S("gpu-01");
	nsn->snapshot = snapshot();
	nsn->state = S("ready");
	env = reply();
	c = env->control_reply;
	c->operations = ARRAY(1);
	c->operations[c->n_operations++] =
	    operation(SHOAL__OPERATION__KIND__RESTORE);
	c->snapshots = ARRAY(1);
	c->snapshots[c->n_snapshots++] = nsn;
	emit("reply_snapshots", env);

	env = reply();
	c = env->control_reply;
	c->bytes = 1 << 20;
	c->sha256 = S(SHA_B);
	emit("reply_backup", env);

	env = reply();
	c = env->control_reply;
	c->code = SHOAL_E_NOT_FOUND;
	c->error = S("no such service: iris");
	emit("reply_error", env);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_wire_seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	session_seeds();
	request_seeds();
	reply_seeds();
	printf("gen_wire_seeds: %d seeds in %s\n", written, out_dir);
	return 0;
}
