/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's event loop and its session with the coordinator.
 *
 * The session is the table in session_table below: three states (idle,
 * waiting for Welcome, online) and five events. Silence is judged on the
 * monotonic clock: when nothing has come from the coordinator for
 * MISSED_REPLIES heartbeats, the agent drops its socket and reconnects
 * after a jittered exponential backoff, so a coordinator restart does not
 * bring every agent back in the same instant. While the coordinator is
 * away the agent keeps its last desired state and queues what it sees in
 * the LMDB outbox.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "agent/agent.h"
#include "agent/gpu.h"
#include "agent/hostinfo.h"
#include "agent/metrics.h"
#include "agent/outbox.h"
#include "agent/runner.h"
#include "agent/snapshots.h"
#include "common/curve.h"
#include "common/error.h"
#include "common/httpd.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/store.h"
#include "common/util.h"
#include "common/wire.h"

#define MISSED_REPLIES 3
#define EVENT_WINDOW 32
/* While saying Hello, a Hello libzmq refused (no connection yet: the
 * DEALER sets ZMQ_IMMEDIATE) is tried again this often. */
#define HELLO_RETRY_MS 100
/* Status changes come in bursts: one report per this interval at most. */
#define STATUS_MS 100
#define STORE_MAP_BYTES (256ULL << 20)
#define AGENT_SCHEMA 1

enum { DB_META, DB_OUTBOX, DB_DESIRED, DB_SNAPSHOTS, DB_OPS };
static const char *const agent_dbs[] = { "meta", "outbox", "desired",
	"snapshots", "operations" };
/* Answers kept for operations, by token: one delivered again (a crash, a
 * lost reply) is answered, not carried out twice. */
#define OPS_ANSWERS_KEPT 200

#define OPT(field) offsetof(agent_options_t, field)
const config_field_t agent_config_fields[] = {
	{ "node_id", CONFIG_STRING, OPT(node_id), 0, 0, node_id_valid,
	    "1-63 of [A-Za-z0-9._-], starting with a letter or digit" },
	{ "labels", CONFIG_LABELS, OPT(labels) },
	{ "coordinator", CONFIG_STRING, OPT(coordinator) },
	{ "doorbell", CONFIG_STRING, OPT(doorbell) },
	{ "coordinator_key", CONFIG_STRING, OPT(coordinator_key) },
	{ "enroll_token", CONFIG_STRING, OPT(enroll_token), 0, 0,
	    curve_token_valid, CURVE_TOKEN_EXPECT },
	{ "state_dir", CONFIG_STRING, OPT(state_dir) },
	{ "heartbeat", CONFIG_DURATION, OPT(heartbeat_ms), 50, 3600 * 1000 },
	{ "runtime_socket", CONFIG_STRING, OPT(runtime_socket) },
	{ "log_level", CONFIG_STRING, OPT(log_level), 0, 0, log_level_valid,
	    LOG_LEVEL_EXPECT },
	{ "artifact_cache_budget", CONFIG_SIZE, OPT(artifact_budget) },
	{ "artifact_downloads", CONFIG_UINT, OPT(artifact_downloads), 1,
	    ARTIFACTS_DOWNLOADS_MAX },
	{ "artifact_stall_timeout", CONFIG_DURATION, OPT(artifact_stall_ms),
	    1000, 3600 * 1000 },
	{ "artifact_attempts", CONFIG_UINT, OPT(artifact_attempts), 1, 100 },
	{ "artifact_ca_file", CONFIG_STRING, OPT(artifact_ca_file) },
	{ "artifact_file_root", CONFIG_STRING, OPT(artifact_file_root) },
	{ "metrics_listen", CONFIG_STRING, OPT(metrics_listen), 0, 0,
	    httpd_listen_valid, HTTPD_LISTEN_EXPECT },
	{ "metrics_interval", CONFIG_DURATION, OPT(metrics_interval_ms), 1000,
	    3600 * 1000 },
	{ "nvml_library", CONFIG_STRING, OPT(nvml_library) },
	{ "snapshot_keep", CONFIG_UINT, OPT(snapshot_keep), 1,
	    SNAPSHOTS_KEEP_MAX },
	{ "snapshot_keep_days", CONFIG_UINT, OPT(snapshot_keep_days), 0, 3650 },
	{ NULL },
};

void
agent_options_defaults(agent_options_t *o)
{
	char host[256] = "";

	*o = (agent_options_t){
		.coordinator = xstrdup("tcp://127.0.0.1:7400"),
		.coordinator_key = xstrdup("/etc/shoal/coordinator.pub"),
		.enroll_token = xstrdup(""),
		.state_dir = xstrdup("/var/lib/shoal-agent"),
		.heartbeat_ms = 5000,
		.runtime_socket = xstrdup("/run/docker.sock"),
		.log_level = xstrdup("info"),
		.artifact_downloads = ARTIFACTS_DOWNLOADS_DEFAULT,
		.artifact_stall_ms = ARTIFACTS_STALL_DEFAULT_MS,
		.artifact_attempts = ARTIFACTS_ATTEMPTS_DEFAULT,
		.metrics_listen = xstrdup("127.0.0.1:9464"),
		.metrics_interval_ms = METRICS_INTERVAL_DEFAULT_MS,
		.nvml_library = xstrdup(GPU_DEFAULT_LIBRARY),
		.snapshot_keep = SNAPSHOTS_KEEP_DEFAULT,
		.snapshot_keep_days = SNAPSHOTS_KEEP_DAYS_DEFAULT,
	};
	/* The node id defaults to the host name, cut at the first dot. */
	if (gethostname(host, sizeof host - 1) == 0)
		host[strcspn(host, ".")] = '\0';
	o->node_id = xstrdup(node_id_valid(host) ? host : "localhost");
}

void
agent_options_free(agent_options_t *o)
{
	config_free(agent_config_fields, o);
	free(o->config_file);
	o->config_file = NULL;
}

char *
agent_default_doorbell(const char *ep)
{
	const char *colon = strrchr(ep, ':');
	uint64_t port;

	if (strncmp(ep, "tcp://", 6) != 0 || !colon || colon < ep + 6 ||
	    parse_uint(colon + 1, 65534, &port) < 0)
		return NULL;
	return xasprintf("%.*s:%llu", (int)(colon - ep), ep,
	    (unsigned long long)port + 1);
}

typedef enum {
	S_IDLE,   /* no socket; a reconnect timer is pending */
	S_HELLO,  /* Hello sent, waiting for Welcome */
	S_ONLINE, /* heartbeating */
	S_COUNT,
} session_state_t;

typedef enum {
	E_CONNECT,   /* the backoff timer fired */
	E_WELCOME,   /* the coordinator accepted our Hello */
	E_TICK,      /* heartbeat interval */
	E_SILENT,    /* nothing from the coordinator for too long */
	E_FORGOTTEN, /* the coordinator does not know us */
	E_COUNT,
} session_event_t;

static const char *const state_names[] = { "idle", "hello", "online" };

struct agent {
	const agent_options_t *opts;
	char *doorbell_ep;
	curve_keys_t curve;                      /* this node's key pair */
	char coordinator_key[CURVE_KEY_LEN + 1]; /* pinned */
	int refusal_code; /* the coordinator's last word on our key */
	int denied;       /* refused: back off at the next tick */
	store_t *store;
	outbox_t *outbox;
	hostinfo_t *host;
	zloop_t *loop;
	zsock_t *dealer; /* NULL while idle */
	zsock_t *sub;
	char store_id[33];
	uint64_t started_ms;
	uint64_t seq;

	session_state_t state;
	unsigned attempt; /* reconnects since the last Welcome */
	int reconnect_timer;
	int hello_timer;
	int hello_sent;        /* libzmq took the Hello of this attempt */
	uint64_t last_rx_mono; /* last message from the coordinator */

	uint64_t generation;      /* applied and acknowledged */
	uint64_t want_generation; /* the newest we heard of */

	uint64_t acked_seq;  /* outbox: acknowledged by the coordinator */
	uint64_t sent_seq;   /* sent on this connection */
	uint64_t peer_seq;   /* the last event the coordinator said it holds */
	uint64_t rewound_at; /* acked_seq + 1 when a resend rewound to it */
	uint64_t acked_at_last_tick;

	runner_t *runner;
	artifacts_t *artifacts;
	metrics_t *metrics;
	httpd_t *httpd; /* NULL: --metrics-listen off */
	/* the artifact cache's size (a directory scan): at most once per
	 * metrics interval */
	artifacts_usage_t usage;
	uint64_t usage_mono;
	snapshots_t *snaps;
	/* the coordinator's newest desired state (its operations too), and
	 * what the runner works towards: the same services, or a restored
	 * snapshot's while restore_token is still listed */
	Shoal__DesiredState *current;   /* owned; NULL: none yet */
	Shoal__DesiredState *effective; /* owned; NULL: none yet */
	char restore_token[65];
	uint64_t status_seq; /* of the newest status report */
	int status_dirty;    /* a report to build and send */
	uint64_t status_sent_mono;
};

/* Returns 0 when libzmq took the frame, -1 when it was dropped. */
static int
send_env(agent_t *a, Shoal__Envelope *env)
{
	zframe_t *f;

	if (!a->dealer)
		return -1;
	env->version = SHOAL_PROTOCOL_VERSION;
	env->node_id = a->opts->node_id;
	env->seq = ++a->seq;
	f = wire_frame(env);
	/* Non-blocking: with ZMQ_IMMEDIATE a send while no connection is up
	 * fails at once, and the session's timers take care of it. */
	if (zframe_send(&f, a->dealer, ZFRAME_DONTWAIT) < 0) {
		log_debug("%s not sent: %s", wire_body_name(env),
		    zmq_strerror(zmq_errno()));
		zframe_destroy(&f);
		return -1;
	}
	return 0;
}

static void record(agent_t *a, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Queues an event in the outbox; it is sent once online. */
static void
record(agent_t *a, const char *kind, const char *fmt, ...)
{
	char msg[WIRE_MAX_MESSAGE];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r = outbox_push(a->outbox, kind, NULL, "%s", msg);
	if (r < 0)
		log_error("cannot queue event %s: %s", kind, shoal_strerror(r));
}

/* -- outbox ------------------------------------------------------------ */

static int
send_event(const Shoal__Event *ev, void *arg)
{
	agent_t *a = arg;
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Event out = *ev;

	/* The chain the coordinator checks: it stores this event only if it
	 * holds prev_seq, so a frame lost on the way is sent again rather
	 * than skipped. */
	out.prev_seq = a->sent_seq;
	if (a->sent_seq == a->acked_seq && a->peer_seq < a->acked_seq)
		/* The coordinator lost events it once acknowledged (it was
		 * restored from a backup); they are gone from the outbox too,
		 * so go on from what it holds. */
		out.prev_seq = a->peer_seq;
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
	env.event = &out;
	if (send_env(a, &env) < 0)
		return 1; /* stop: the next tick tries again */
	a->sent_seq = ev->seq;
	return 0;
}

static void
flush_events(agent_t *a)
{
	uint64_t inflight;
	int r;

	if (a->state != S_ONLINE)
		return;
	if (a->sent_seq < a->acked_seq)
		a->sent_seq = a->acked_seq;
	inflight = a->sent_seq - a->acked_seq;
	if (inflight >= EVENT_WINDOW)
		return;
	r = outbox_pending(a->outbox, a->sent_seq,
	    (unsigned)(EVENT_WINDOW - inflight), send_event, a);
	if (r < 0)
		log_error("cannot read the outbox: %s", shoal_strerror(r));
}

static void
events_acked(agent_t *a, uint64_t seq)
{
	int r;

	a->peer_seq = seq;
	if (seq <= a->acked_seq)
		return;
	if (seq > outbox_last_seq(a->outbox)) {
		log_warning("coordinator acknowledged event %llu, beyond the "
		            "last one queued (%llu); ignored",
		    (unsigned long long)seq,
		    (unsigned long long)outbox_last_seq(a->outbox));
		return;
	}
	r = outbox_ack(a->outbox, seq);
	if (r < 0) {
		log_error("cannot trim the outbox: %s", shoal_strerror(r));
		return;
	}
	a->acked_seq = seq;
}

/* -- desired state ----------------------------------------------------- */

static void
request_desired_state(agent_t *a)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__DesiredStateRequest req = SHOAL__DESIRED_STATE_REQUEST__INIT;

	if (a->state != S_ONLINE || a->want_generation <= a->generation)
		return;
	req.have_generation = a->generation;
	env.body_case = SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST;
	env.desired_state_request = &req;
	send_env(a, &env);
}

static void
heard_of_generation(agent_t *a, uint64_t generation)
{
	if (generation > a->want_generation)
		a->want_generation = generation;
	request_desired_state(a);
}

/* The desired state's services alone: what the runner is given. */
static Shoal__DesiredState *
services_of(const Shoal__DesiredState *ds)
{
	Shoal__DesiredState copy = *ds;

	copy.operations = NULL;
	copy.n_operations = 0;
	return wire_copy(&copy.base);
}

static int
operation_listed(const Shoal__DesiredState *ds, const char *token)
{
	for (size_t i = 0; ds && i < ds->n_operations; i++)
		if (strcmp(ds->operations[i]->token, token) == 0)
			return 1;
	return 0;
}

/* The answer stored for token; the caller owns *ret. */
static int
answer_of(store_txn_t *txn, const char *token, Shoal__OperationResult **ret)
{
	return store_get_msg(txn, DB_OPS, token, strlen(token),
	    &shoal__operation_result__descriptor, (ProtobufCMessage **)ret);
}

typedef struct oldest_ctx {
	char key[65];
	uint64_t ms;
} oldest_ctx_t;

static int
find_oldest(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	oldest_ctx_t *o = arg;
	Shoal__OperationResult *res =
	    shoal__operation_result__unpack(NULL, vlen, val);

	if ((!res || res->finished_ms < o->ms) && klen < sizeof o->key) {
		memcpy(o->key, key, klen);
		o->key[klen] = '\0';
		o->ms = res ? res->finished_ms : 0;
	}
	if (res)
		shoal__operation_result__free_unpacked(res, NULL);
	return 0;
}

/* Stores res and, for a restore, the state it made (restored, with the
 * restore's token), in one transaction; the oldest answer beyond
 * OPS_ANSWERS_KEPT goes. */
static int
save_answer(agent_t *a, const Shoal__OperationResult *res,
    const Shoal__DesiredState *restored)
{
	oldest_ctx_t o = { "", UINT64_MAX };
	store_txn_t *txn;
	uint64_t n = 0;
	int r;

	r = store_begin(a->store, true, &txn);
	if (r < 0)
		return r;
	r = store_put_msg(txn, DB_OPS, res->token, strlen(res->token),
	    &res->base);
	if (r == 0 && restored)
		r = store_put_msg(txn, DB_DESIRED, "effective", 9,
		    &restored->base);
	if (r == 0 && restored)
		r = store_put(txn, DB_META, "restore_token", 13, res->token,
		    strlen(res->token));
	if (r == 0)
		r = store_count(txn, DB_OPS, &n);
	if (r == 0 && n > OPS_ANSWERS_KEPT)
		r = store_foreach(txn, DB_OPS, NULL, 0, find_oldest, &o);
	if (r == 0 && o.key[0])
		r = store_del(txn, DB_OPS, o.key, strlen(o.key));
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

static void
snapshots_changed(agent_t *a)
{
	const char *const *pins = NULL;
	size_t n = 0;

	if (a->snaps)
		snapshots_pins(a->snaps, &pins, &n);
	runner_set_extra_pins(a->runner, pins, n);
	a->status_dirty = 1;
}

/* "iris 3, tok 1" for the services of ds. */
static void
describe_services(const Shoal__DesiredState *ds, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; ds && i < ds->n_services && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s %llu",
		    i ? ", " : "", ds->services[i]->service,
		    (unsigned long long)ds->services[i]->revision);
	if (!out[0])
		snprintf(out, len, "no services");
}

static void
take_snapshot(agent_t *a, const Shoal__Operation *op,
    Shoal__OperationResult *res, char *text, size_t len)
{
	Shoal__DesiredState none = SHOAL__DESIRED_STATE__INIT;
	snapshot_input_t in = {
		.id = op->snapshot,
		.message = op->message,
		.desired = a->effective ? a->effective : &none,
		.service = op->service,
		.rollout = op->rollout,
	};
	const Shoal__Snapshot *sn;
	char err[1024] = "snapshots are off: they could not be opened at start",
	     what[512];
	int r = a->snaps ? snapshots_take(a->snaps, &in, &sn, err, sizeof err)
	                 : SHOAL_E_STORE;

	if (r < 0) {
		snprintf(text, len, "cannot take snapshot %s: %s", op->snapshot,
		    err);
		return;
	}
	res->ok = 1;
	describe_services(in.desired, what, sizeof what);
	snprintf(text, len, "taken: %s, %llu bytes", what,
	    (unsigned long long)sn->bytes);
	snapshots_changed(a);
}

/* What a snapshot's store copy says the runner worked towards, into
 * *ret (owned by the caller) for the caller to put in place once its
 * answer is stored; NULL and why in text when it cannot be restored. */
static void
restore_snapshot(agent_t *a, const Shoal__Operation *op,
    const Shoal__DesiredState *ds, Shoal__OperationResult *res, char *text,
    size_t len, Shoal__DesiredState **ret)
{
	ProtobufCMessage *m = NULL;
	Shoal__DesiredState *back;
	char err[1024], what[512], gone[512] = "";
	size_t used = 0;
	int r;

	*ret = NULL;
	if (!a->snaps || !snapshots_find(a->snaps, op->snapshot)) {
		snprintf(text, len, "no snapshot %s on this node%s",
		    op->snapshot,
		    a->snaps ? ""
		             : " (snapshots could not be opened at start)");
		return;
	}
	r = snapshots_read(a->snaps, op->snapshot, DB_DESIRED, "effective",
	    &shoal__desired_state__descriptor, &m, err, sizeof err);
	if (r == SHOAL_E_NOT_FOUND)
		/* Taken by an agent that kept only the coordinator's
		 * state. */
		r = snapshots_read(a->snaps, op->snapshot, DB_DESIRED,
		    "current", &shoal__desired_state__descriptor, &m, err,
		    sizeof err);
	if (r == SHOAL_E_NOT_FOUND) {
		/* Taken before anything was ever assigned: nothing runs. */
		m = wire_copy(
		    &(Shoal__DesiredState)SHOAL__DESIRED_STATE__INIT.base);
		r = 0;
	}
	if (r < 0) {
		snprintf(text, len, "refused: %s", err);
		snapshots_changed(a);
		return;
	}
	back = (Shoal__DesiredState *)m;
	/* What it ran, serving, and nothing prepared ahead of a rollout. */
	for (size_t i = 0; i < back->n_services; i++) {
		Shoal__ServiceAssignment *sa = back->services[i];

		sa->active = 1;
		sa->prestage_revision = 0;
		if (sa->prestage_spec)
			shoal__service_spec__free_unpacked(sa->prestage_spec,
			    NULL);
		sa->prestage_spec = NULL;
	}
	for (size_t i = 0; i < back->n_operations; i++)
		shoal__operation__free_unpacked(back->operations[i], NULL);
	free(back->operations);
	back->operations = NULL;
	back->n_operations = 0;
	back->generation = ds->generation;
	for (size_t i = 0; a->effective && i < a->effective->n_services; i++) {
		const char *name = a->effective->services[i]->service;
		int kept = 0;

		for (size_t k = 0; k < back->n_services && !kept; k++)
			kept = strcmp(back->services[k]->service, name) == 0;
		if (!kept && used < sizeof gone)
			used += (size_t)snprintf(gone + used,
			    sizeof gone - used, "%s%s", used ? ", " : "", name);
	}
	res->restored = xcalloc(back->n_services + 1, sizeof *res->restored);
	for (size_t i = 0; i < back->n_services; i++) {
		Shoal__ServiceAssignment *sa = xcalloc(1, sizeof *sa);

		shoal__service_assignment__init(sa);
		sa->service = back->services[i]->service;
		sa->revision = back->services[i]->revision;
		sa->active = 1;
		res->restored[i] = sa;
	}
	res->n_restored = back->n_services;
	res->ok = 1;
	res->restore = 1;
	describe_services(back, what, sizeof what);
	snprintf(text, len, "restored: %s%s%s", what,
	    gone[0] ? "; stopped: " : "", gone);
	*ret = back;
}

/* Carries out the operations ds lists that have no answer yet, in order,
 * each answer stored as it is made. */
static void
run_operations(agent_t *a, const Shoal__DesiredState *ds)
{
	for (size_t i = 0; i < ds->n_operations; i++) {
		const Shoal__Operation *op = ds->operations[i];
		Shoal__OperationResult res = SHOAL__OPERATION_RESULT__INIT;
		Shoal__OperationResult *old = NULL;
		char text[WIRE_MAX_MESSAGE - 256];
		Shoal__DesiredState *restored = NULL;
		store_txn_t *txn;
		int r;

		if (store_begin(a->store, false, &txn) == 0) {
			r = answer_of(txn, op->token, &old);
			store_abort(&txn);
			if (r == 0) {
				shoal__operation_result__free_unpacked(old,
				    NULL);
				continue; /* answered before */
			}
		}
		text[0] = '\0';
		if (op->kind == SHOAL__OPERATION__KIND__SNAPSHOT)
			take_snapshot(a, op, &res, text, sizeof text);
		else
			restore_snapshot(a, op, ds, &res, text, sizeof text,
			    &restored);
		wire_clean_text(text, sizeof text - 1, 1);
		res.token = op->token;
		res.result = text;
		res.finished_ms = now_ms();
		r = save_answer(a, &res, restored);
		if (r < 0) {
			/* Nothing changes: asked again (the generation is not
			 * acknowledged either), it is carried out again. */
			log_error("operation %llu (snapshot %s): cannot store "
			          "its answer: %s",
			    (unsigned long long)op->id, op->snapshot,
			    shoal_strerror(r));
			if (restored)
				shoal__desired_state__free_unpacked(restored,
				    NULL);
			for (size_t k = 0; k < res.n_restored; k++)
				free(res.restored[k]);
			free(res.restored);
			continue;
		}
		if (restored) {
			if (a->effective)
				shoal__desired_state__free_unpacked(
				    a->effective, NULL);
			a->effective = restored;
			snprintf(a->restore_token, sizeof a->restore_token,
			    "%s", op->token);
		}
		if (res.ok)
			log_info("%s %s: %s",
			    op->kind == SHOAL__OPERATION__KIND__SNAPSHOT
			        ? "snapshot"
			        : "restore of snapshot",
			    op->snapshot, text);
		else
			log_warning("%s %s failed: %s",
			    op->kind == SHOAL__OPERATION__KIND__SNAPSHOT
			        ? "snapshot"
			        : "restore of snapshot",
			    op->snapshot, text);
		record(a,
		    op->kind == SHOAL__OPERATION__KIND__SNAPSHOT
		        ? (res.ok ? "snapshot.taken" : "snapshot.failed")
		        : (res.ok ? "snapshot.restored" : "restore.failed"),
		    "snapshot %s: %s", op->snapshot, text);
		for (size_t k = 0; k < res.n_restored; k++)
			free(res.restored[k]);
		free(res.restored);
		a->status_dirty = 1;
	}
}

static int
save_desired_state(agent_t *a, const Shoal__DesiredState *ds,
    const Shoal__DesiredState *effective, const char *token)
{
	store_txn_t *txn;
	int r;

	r = store_begin(a->store, true, &txn);
	if (r < 0)
		return r;
	r = store_put_msg(txn, DB_DESIRED, "current", 7, &ds->base);
	if (r == 0)
		r = store_put_msg(txn, DB_DESIRED, "effective", 9,
		    &effective->base);
	if (r == 0)
		r = store_put(txn, DB_META, "restore_token", 13, token,
		    strlen(token));
	if (r == 0)
		r = store_put_u64(txn, DB_META, "generation", ds->generation);
	if (r < 0) {
		store_abort(&txn);
		return r;
	}
	return store_commit(&txn);
}

static void
on_desired_state(agent_t *a, const Shoal__DesiredState *ds)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Ack ack = SHOAL__ACK__INIT;
	Shoal__DesiredState *effective;
	int keep, r;

	if (ds->generation <= a->generation)
		return; /* stale: an answer to an older request */
	/* Operations first: a snapshot records the state before this one. */
	run_operations(a, ds);
	keep = a->restore_token[0] && a->effective &&
	    operation_listed(ds, a->restore_token);
	/* The coordinator has not taken a restore's answer yet: the restored
	 * state stands. Otherwise the coordinator's. */
	effective = keep ? wire_copy(&a->effective->base) : services_of(ds);
	effective->generation = ds->generation;
	r = save_desired_state(a, ds, effective, keep ? a->restore_token : "");
	if (r < 0) {
		/* Not acknowledged, nothing changed: the next heartbeat asks
		 * again. */
		log_error("cannot save desired state %llu: %s",
		    (unsigned long long)ds->generation, shoal_strerror(r));
		shoal__desired_state__free_unpacked(effective, NULL);
		return;
	}
	if (!keep)
		a->restore_token[0] = '\0';
	if (a->effective)
		shoal__desired_state__free_unpacked(a->effective, NULL);
	a->effective = effective;
	if (a->current)
		shoal__desired_state__free_unpacked(a->current, NULL);
	a->current = wire_copy(&ds->base);
	/* Saved is reached: the runner works towards it from here, and
	 * status reports tell how far it got. */
	a->generation = ds->generation;
	runner_set_desired(a->runner, a->effective);
	a->status_dirty = 1;
	log_info("reached desired-state generation %llu",
	    (unsigned long long)a->generation);
	record(a, "desired.applied", "reached generation %llu",
	    (unsigned long long)a->generation);
	flush_events(a);
	ack.generation = a->generation;
	env.body_case = SHOAL__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	send_env(a, &env);
}

/* -- service status ---------------------------------------------------- */

static void
send_status(agent_t *a)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__StatusReport rep = SHOAL__STATUS_REPORT__INIT;
	Shoal__OperationResult **answers = NULL;
	const Shoal__Snapshot *const *snaps = NULL;
	size_t nanswers = 0, nsnaps = 0;
	store_txn_t *txn;

	/* Numbered from the clock, so a restarted agent never repeats a
	 * number the coordinator holds. */
	a->status_seq =
	    a->status_seq + 1 > now_ms() ? a->status_seq + 1 : now_ms();
	rep.seq = a->status_seq;
	rep.generation = a->generation;
	runner_status(a->runner, &rep);
	/* The answers to the operations still listed, until the coordinator
	 * stops listing them; and the catalogue. */
	if (a->current && a->current->n_operations &&
	    store_begin(a->store, false, &txn) == 0) {
		answers = xcalloc(a->current->n_operations, sizeof *answers);
		for (size_t i = 0; i < a->current->n_operations; i++)
			if (answer_of(txn, a->current->operations[i]->token,
			        &answers[nanswers]) == 0)
				nanswers++;
		store_abort(&txn);
	}
	rep.operations = answers;
	rep.n_operations = nanswers;
	if (a->snaps)
		snapshots_list(a->snaps, &snaps, &nsnaps);
	rep.snapshots = (Shoal__Snapshot **)snaps;
	rep.n_snapshots = nsnaps;
	env.body_case = SHOAL__ENVELOPE__BODY_STATUS_REPORT;
	env.status_report = &rep;
	if (send_env(a, &env) == 0)
		a->status_dirty = 0;
	a->status_sent_mono = mono_ms();
	for (size_t i = 0; i < nanswers; i++)
		shoal__operation_result__free_unpacked(answers[i], NULL);
	free(answers);
}

static void update_status(agent_t *a);

static int
on_status_timer(zloop_t *loop, int timer_id, void *arg)
{
	agent_t *a = arg;

	if (a->status_dirty && a->state == S_ONLINE && runner_ready(a->runner))
		send_status(a);
	update_status(a);
	return 0;
}

static void
runner_event(const char *kind, const char *service, const char *message,
    void *arg)
{
	agent_t *a = arg;
	int r = outbox_push(a->outbox, kind, service, "%s", message);

	if (r < 0)
		log_error("cannot queue event %s: %s", kind, shoal_strerror(r));
	flush_events(a);
}

static void
runner_status_changed(void *arg)
{
	agent_t *a = arg;

	a->status_dirty = 1;
}

static void
artifacts_progress(void *arg)
{
	agent_t *a = arg;

	a->status_dirty = 1;
}

static void
artifacts_pins(void *arg)
{
	agent_t *a = arg;

	if (a->runner)
		runner_pin_artifacts(a->runner);
}

/* The desired state saved before a restart, and what the runner worked
 * towards (a restored snapshot's, while its restore stands): the runner
 * adopts what runs and reconciles to it while the coordinator may still
 * be away. */
static int
load_desired(agent_t *a)
{
	ProtobufCMessage *cur = NULL, *eff = NULL;
	store_txn_t *txn;
	const void *val;
	size_t vlen = 0;
	int r;

	r = store_begin(a->store, false, &txn);
	if (r < 0)
		return r;
	r = store_get_msg(txn, DB_DESIRED, "current", 7,
	    &shoal__desired_state__descriptor, &cur);
	if (r == 0 &&
	    store_get_msg(txn, DB_DESIRED, "effective", 9,
	        &shoal__desired_state__descriptor, &eff) < 0)
		eff = NULL;
	if (r == 0 &&
	    store_get(txn, DB_META, "restore_token", 13, &val, &vlen) == 0 &&
	    vlen < sizeof a->restore_token) {
		memcpy(a->restore_token, val, vlen);
		a->restore_token[vlen] = '\0';
	}
	store_abort(&txn);
	if (r == SHOAL_E_NOT_FOUND)
		return 0;
	if (r < 0)
		return r;
	a->current = (Shoal__DesiredState *)cur;
	if (eff) {
		a->effective = (Shoal__DesiredState *)eff;
	} else {
		/* A store from before snapshots: the state a snapshot's copy
		 * is read for, written now. The restore token is left to the
		 * next desired state to judge. */
		a->effective = services_of(a->current);
		if (store_begin(a->store, true, &txn) == 0) {
			if (store_put_msg(txn, DB_DESIRED, "effective", 9,
			        &a->effective->base) == 0)
				store_commit(&txn);
			else
				store_abort(&txn);
		}
	}
	runner_set_desired(a->runner, a->effective);
	return 0;
}

/* -- session actions --------------------------------------------------- */

static int on_dealer_readable(zloop_t *loop, zsock_t *sock, void *arg);
static void fire(agent_t *a, session_event_t ev);

/* systemd's STATUS= line: the session, then the services. */
static void
update_status(agent_t *a)
{
	size_t n = 0, healthy = 0;
	int up = 0;
	char session[400];

	if (a->runner)
		runner_summary(a->runner, &n, &healthy, &up);
	switch (a->state) {
	case S_ONLINE:
		snprintf(session, sizeof session,
		    "online at %s, generation %llu", a->opts->coordinator,
		    (unsigned long long)a->generation);
		break;
	case S_HELLO:
		snprintf(session, sizeof session, "%s %s (attempt %u)",
		    a->refusal_code == SHOAL_E_PENDING
		        ? "waiting for key acceptance at"
		        : "saying hello to",
		    a->opts->coordinator, a->attempt + 1);
		break;
	default:
		snprintf(session, sizeof session,
		    "coordinator %s unreachable, retrying (attempt %u)",
		    a->opts->coordinator, a->attempt);
		break;
	}
	lifecycle_status("%s; %zu service%s, %zu healthy%s", session, n,
	    n == 1 ? "" : "s", healthy,
	    up || !a->runner ? "" : "; container runtime unreachable");
}

static int
on_reconnect_timer(zloop_t *loop, int timer_id, void *arg)
{
	agent_t *a = arg;

	a->reconnect_timer = -1;
	fire(a, E_CONNECT);
	return 0;
}

static int
send_hello(agent_t *a)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Facts facts = SHOAL__FACTS__INIT;
	Shoal__Label *labels = xcalloc(a->opts->labels.n + 1, sizeof *labels);
	Shoal__Label **lp = xcalloc(a->opts->labels.n + 1, sizeof *lp);
	int r;

	for (size_t i = 0; i < a->opts->labels.n; i++) {
		shoal__label__init(&labels[i]);
		labels[i].key = a->opts->labels.v[i].key;
		labels[i].value = a->opts->labels.v[i].value;
		lp[i] = &labels[i];
	}
	hostinfo_facts(a->host, &facts);
	hello.agent_version = PACKAGE_VERSION;
	hello.labels = lp;
	hello.n_labels = a->opts->labels.n;
	hello.facts = &facts;
	hello.heartbeat_ms = (uint32_t)a->opts->heartbeat_ms;
	hello.generation = a->generation;
	hello.store_id = a->store_id;
	hello.started_ms = a->started_ms;
	hello.enroll_token = a->opts->enroll_token;
	env.body_case = SHOAL__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	r = send_env(a, &env);
	free(lp);
	free(labels);
	return r;
}

static int
on_hello_timer(zloop_t *loop, int timer_id, void *arg)
{
	agent_t *a = arg;

	if (a->state != S_HELLO) {
		zloop_timer_end(loop, timer_id);
		a->hello_timer = -1;
	} else if (!a->hello_sent) {
		a->hello_sent = send_hello(a) == 0;
	}
	return 0;
}

/* Says Hello now and, until libzmq takes it, every HELLO_RETRY_MS: the
 * connection comes up in the background, usually a moment later. */
static void
start_hello(agent_t *a)
{
	a->hello_sent = send_hello(a) == 0;
	if (a->hello_timer < 0)
		a->hello_timer =
		    zloop_timer(a->loop, HELLO_RETRY_MS, 0, on_hello_timer, a);
}

static void
act_connect(agent_t *a)
{
	zsock_t *s = zsock_new(ZMQ_DEALER);

	if (!s)
		abort();
	zsock_set_linger(s, 0);
	curve_client(s, &a->curve, a->coordinator_key);
	zsock_set_maxmsgsize(s, WIRE_MAX_FRAME);
	zsock_set_immediate(s, 1);
	zsock_set_sndhwm(s, 1000);
	/* libzmq retries the TCP connection while we wait for Welcome; our
	 * jittered backoff takes over when the session falls silent. */
	zsock_set_reconnect_ivl(s, BACKOFF_BASE_MS);
	zsock_set_reconnect_ivl_max(s, BACKOFF_MAX_MS);
	if (zsock_connect(s, "%s", a->opts->coordinator) < 0) {
		log_error("cannot connect to %s: %s", a->opts->coordinator,
		    zmq_strerror(zmq_errno()));
		zsock_destroy(&s);
		return;
	}
	a->dealer = s;
	zloop_reader(a->loop, a->dealer, on_dealer_readable, a);
	a->last_rx_mono = mono_ms();
	a->sent_seq = a->acked_seq;
	start_hello(a);
}

static void
act_hello_again(agent_t *a)
{
	start_hello(a);
}

static int on_doorbell(zloop_t *loop, zsock_t *sock, void *arg);

/*
 * (Re)creates the doorbell subscription. The coordinator lets only
 * accepted keys subscribe, and libzmq does not retry a handshake the
 * other side refused: an agent accepted after waiting subscribes again.
 */
static int
subscribe(agent_t *a)
{
	zsock_t *s = zsock_new(ZMQ_SUB);

	if (!s)
		return -ENOMEM;
	zsock_set_linger(s, 0);
	curve_client(s, &a->curve, a->coordinator_key);
	zsock_set_maxmsgsize(s, WIRE_MAX_FRAME);
	zsock_set_reconnect_ivl(s, BACKOFF_BASE_MS);
	zsock_set_reconnect_ivl_max(s, BACKOFF_MAX_MS);
	zsock_set_subscribe(s, a->opts->node_id);
	zsock_set_subscribe(s, "*");
	if (zsock_connect(s, "%s", a->doorbell_ep) < 0) {
		log_error("cannot connect to the doorbell endpoint %s: %s",
		    a->doorbell_ep, zmq_strerror(zmq_errno()));
		zsock_destroy(&s);
		return -EINVAL;
	}
	if (a->sub) {
		zloop_reader_end(a->loop, a->sub);
		zsock_destroy(&a->sub);
	}
	a->sub = s;
	zloop_reader(a->loop, a->sub, on_doorbell, a);
	return 0;
}

static void
act_welcomed(agent_t *a)
{
	/* Every session: a subscription made while the key was unknown
	 * (accepted just now by the token, say) was refused for good. */
	if (subscribe(a) < 0)
		log_warning("no doorbells until the next session: heartbeats "
		            "carry the generation meanwhile");
	a->refusal_code = 0;
	log_info("connected to the coordinator at %s", a->opts->coordinator);
	record(a, "coordinator.connected", "connected to %s",
	    a->opts->coordinator);
	a->attempt = 0;
}

static void
act_heartbeat(agent_t *a)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Heartbeat hb = SHOAL__HEARTBEAT__INIT;
	Shoal__HostFigures fig = SHOAL__HOST_FIGURES__INIT;

	metrics_figures(a->metrics, &fig);
	hb.figures = &fig;
	hb.generation = a->generation;
	hb.outbox_depth = outbox_depth(a->outbox);
	hb.status_seq = a->status_seq;
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	send_env(a, &env);

	/* No acknowledgement since the last tick: send the window again. */
	if (a->sent_seq > a->acked_seq && a->acked_seq == a->acked_at_last_tick)
		a->sent_seq = a->acked_seq;
	a->acked_at_last_tick = a->acked_seq;
	flush_events(a);
	request_desired_state(a);
}

uint64_t
agent_backoff_ms(unsigned attempt)
{
	uint64_t delay = BACKOFF_MAX_MS;

	/* Equal jitter: half the exponential delay, plus a random half, so
	 * agents that lost the coordinator together do not return together
	 * yet none returns sooner than half its step. */
	if (attempt < 16 &&
	    ((uint64_t)BACKOFF_BASE_MS << attempt) < BACKOFF_MAX_MS)
		delay = (uint64_t)BACKOFF_BASE_MS << attempt;
	return delay / 2 + random_below((uint32_t)(delay / 2 + 1));
}

static void
act_disconnect(agent_t *a)
{
	uint64_t jittered;

	if (a->dealer) {
		zloop_reader_end(a->loop, a->dealer);
		zsock_destroy(&a->dealer);
	}
	if (a->state == S_HELLO && !a->refusal_code &&
	    (a->attempt == 0 || a->attempt % 10 == 9))
		log_warning("no answer from the coordinator at %s (attempt "
		            "%u): is it running, and is %s its key? (it "
		            "refuses a rejected node's key without a word)",
		    a->opts->coordinator, a->attempt + 1,
		    a->opts->coordinator_key);
	if (a->state == S_ONLINE) {
		log_warning("lost the coordinator at %s: no reply for %llums",
		    a->opts->coordinator,
		    (unsigned long long)(mono_ms() - a->last_rx_mono));
		record(a, "coordinator.lost", "no reply from %s",
		    a->opts->coordinator);
	}
	jittered = agent_backoff_ms(a->attempt);
	a->attempt++;
	log_debug("reconnecting in %llums (attempt %u)",
	    (unsigned long long)jittered, a->attempt);
	a->reconnect_timer =
	    zloop_timer(a->loop, (size_t)jittered, 1, on_reconnect_timer, a);
}

typedef void (*action_fn)(agent_t *a);

static const struct transition {
	action_fn act;
	session_state_t next;
} session_table[S_COUNT][E_COUNT] = {
	/* state      event          action            next state */
	[S_IDLE][E_CONNECT] = { act_connect, S_HELLO },
	[S_IDLE][E_WELCOME] = { NULL, S_IDLE },
	[S_IDLE][E_TICK] = { NULL, S_IDLE },
	[S_IDLE][E_SILENT] = { NULL, S_IDLE },
	[S_IDLE][E_FORGOTTEN] = { NULL, S_IDLE },
	[S_HELLO][E_CONNECT] = { NULL, S_HELLO },
	[S_HELLO][E_WELCOME] = { act_welcomed, S_ONLINE },
	[S_HELLO][E_TICK] = { act_hello_again, S_HELLO },
	[S_HELLO][E_SILENT] = { act_disconnect, S_IDLE },
	[S_HELLO][E_FORGOTTEN] = { act_hello_again, S_HELLO },
	[S_ONLINE][E_CONNECT] = { NULL, S_ONLINE },
	[S_ONLINE][E_WELCOME] = { NULL, S_ONLINE },
	[S_ONLINE][E_TICK] = { act_heartbeat, S_ONLINE },
	[S_ONLINE][E_SILENT] = { act_disconnect, S_IDLE },
	[S_ONLINE][E_FORGOTTEN] = { act_hello_again, S_HELLO },
};

static void
fire(agent_t *a, session_event_t ev)
{
	const struct transition *t = &session_table[a->state][ev];
	session_state_t from = a->state;

	if (t->act)
		t->act(a);
	a->state = t->next;
	if (from != a->state)
		log_debug("session %s -> %s", state_names[from],
		    state_names[a->state]);
	if (from != S_ONLINE && a->state == S_ONLINE) {
		flush_events(a);
		request_desired_state(a);
		a->status_dirty = 1;
	}
	update_status(a);
}

/* -- handlers ---------------------------------------------------------- */

static int
on_tick(zloop_t *loop, int timer_id, void *arg)
{
	agent_t *a = arg;
	uint64_t silence = MISSED_REPLIES * a->opts->heartbeat_ms;

	if (a->state == S_HELLO && a->denied) {
		a->denied = 0;
		fire(a, E_SILENT);
	} else if (a->state != S_IDLE && mono_ms() - a->last_rx_mono > silence)
		fire(a, E_SILENT);
	else
		fire(a, E_TICK);
	return 0;
}

/*
 * The coordinator does not (or no longer) accept this node's key: pending,
 * rejected, deleted, or bound to another node. Said once per change; an
 * online session goes back to saying Hello, which is how a key enrols
 * again.
 */
static void
key_refused(agent_t *a, int code, const char *why)
{
	if (a->refusal_code != code) {
		a->refusal_code = code;
		if (code == SHOAL_E_PENDING)
			log_info("waiting for the coordinator to accept this "
			         "node's key %s: %s",
			    a->curve.public_key, why);
		else
			log_error("the coordinator refuses this node's key "
			          "%s: %s",
			    a->curve.public_key, why);
	}
	if (a->state == S_ONLINE)
		fire(a, E_FORGOTTEN);
	else if (a->state == S_HELLO && code == SHOAL_E_DENIED)
		/* Saying Hello again at every tick changes nothing: at the
		 * next tick (not here, inside the socket's own handler) go
		 * away and come back with the backoff, through a new
		 * handshake, which the coordinator refuses if the key is
		 * rejected. */
		a->denied = 1;
}

static void
on_message(agent_t *a, const Shoal__Envelope *in)
{
	switch (in->body_case) {
	case SHOAL__ENVELOPE__BODY_WELCOME:
		events_acked(a, in->welcome->event_seq);
		if (in->welcome->generation > a->want_generation)
			a->want_generation = in->welcome->generation;
		fire(a, E_WELCOME);
		break;
	case SHOAL__ENVELOPE__BODY_HEARTBEAT_REPLY:
		if (!in->heartbeat_reply->known) {
			log_info("the coordinator does not know this node; "
			         "saying Hello again");
			fire(a, E_FORGOTTEN);
			break;
		}
		heard_of_generation(a, in->heartbeat_reply->generation);
		if (in->heartbeat_reply->status_seq != a->status_seq)
			a->status_dirty = 1; /* lost on the way: again */
		break;
	case SHOAL__ENVELOPE__BODY_DESIRED_STATE:
		on_desired_state(a, in->desired_state);
		break;
	case SHOAL__ENVELOPE__BODY_EVENT_ACK:
		events_acked(a, in->event_ack->seq);
		if (in->event_ack->resend && a->sent_seq > a->acked_seq &&
		    a->rewound_at != a->acked_seq + 1) {
			/* Something after the acknowledged event never
			 * arrived: send again from there. */
			log_debug(
			    "coordinator asks for events after %llu again",
			    (unsigned long long)a->acked_seq);
			a->sent_seq = a->acked_seq;
			/* Once per acknowledged point: a second request for
			 * the same hole waits for the heartbeat tick. */
			a->rewound_at = a->acked_seq + 1;
		}
		flush_events(a);
		break;
	case SHOAL__ENVELOPE__BODY_ERROR:
		if (in->error->code == SHOAL_E_PENDING ||
		    in->error->code == SHOAL_E_DENIED) {
			key_refused(a, in->error->code, in->error->message);
			break;
		}
		log_warning("the coordinator refused a message: %s (%s)",
		    shoal_strerror(in->error->code), in->error->message);
		break;
	default:
		log_warning("unexpected %s from the coordinator; ignored",
		    wire_body_name(in));
		break;
	}
}

static int
on_dealer_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
	agent_t *a = arg;
	zmsg_t *msg = zmsg_recv(sock);
	Shoal__Envelope *in;
	const char *why = NULL;
	zframe_t *f;
	int r;

	if (!msg)
		return 0;
	f = zmsg_first(msg);
	if (zmsg_size(msg) != 1) {
		log_warning("dropped a message of %zu frames from the "
		            "coordinator",
		    zmsg_size(msg));
		zmsg_destroy(&msg);
		return 0;
	}
	r = wire_unpack(zframe_data(f), zframe_size(f), &in, &why);
	zmsg_destroy(&msg);
	if (r < 0) {
		log_warning("dropped a frame from the coordinator: %s (%s)",
		    shoal_strerror(r), why);
		return 0;
	}
	a->last_rx_mono = mono_ms();
	on_message(a, in);
	shoal__envelope__free_unpacked(in, NULL);
	return 0;
}

static int
on_doorbell(zloop_t *loop, zsock_t *sock, void *arg)
{
	agent_t *a = arg;
	zmsg_t *msg = zmsg_recv(sock);
	Shoal__Envelope *in = NULL;
	char *topic = NULL;
	zframe_t *f;
	int r;

	if (!msg)
		return 0;
	if (zmsg_size(msg) != 2)
		goto out;
	topic = zmsg_popstr(msg);
	/* Subscriptions match prefixes: "node1" also hears "node10". */
	if (!topic ||
	    (strcmp(topic, a->opts->node_id) != 0 && strcmp(topic, "*") != 0))
		goto out;
	f = zmsg_first(msg);
	r = wire_unpack(zframe_data(f), zframe_size(f), &in, NULL);
	if (r < 0 || in->body_case != SHOAL__ENVELOPE__BODY_DOORBELL) {
		log_warning("dropped a bad doorbell: %s", shoal_strerror(r));
		goto out;
	}
	log_debug("doorbell: generation %llu",
	    (unsigned long long)in->doorbell->generation);
	heard_of_generation(a, in->doorbell->generation);
out:
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	free(topic);
	zmsg_destroy(&msg);
	return 0;
}

/* -- life cycle -------------------------------------------------------- */

static int
load_identity(agent_t *a)
{
	store_txn_t *txn;
	const void *val;
	size_t vlen;
	int r;

	r = store_begin(a->store, true, &txn);
	if (r < 0)
		return r;
	r = store_get_u64(txn, DB_META, "generation", &a->generation);
	if (r < 0)
		goto fail;
	r = store_get(txn, DB_META, "store_id", 8, &val, &vlen);
	if (r == 0 && vlen == 32) {
		memcpy(a->store_id, val, 32);
	} else if (r == SHOAL_E_NOT_FOUND) {
		/* A new state dir: its events are numbered from 1. */
		for (int i = 0; i < 32; i++)
			a->store_id[i] = "0123456789abcdef"[random_below(16)];
		r = store_put(txn, DB_META, "store_id", 8, a->store_id, 32);
		if (r < 0)
			goto fail;
	} else {
		r = r < 0 ? r : SHOAL_E_STORE_CORRUPT;
		goto fail;
	}
	a->store_id[32] = '\0';
	return store_commit(&txn);
fail:
	store_abort(&txn);
	return r;
}

/* GET /metrics: the host's, the GPUs' and the agent's own. */
static int
on_metrics(const char *path, prom_t *p, void *arg)
{
	agent_t *a = arg;
	const artifacts_usage_t *u = &a->usage;

	if (strcmp(path, "/metrics") != 0)
		return 404;
	if (!a->usage_mono ||
	    mono_ms() - a->usage_mono >= a->opts->metrics_interval_ms) {
		artifacts_usage(a->artifacts, &a->usage);
		a->usage_mono = mono_ms();
	}
	metrics_render(a->metrics, p);
	prom_family(p, "shoal_coordinator_connected", "gauge",
	    "1 while the agent's session with the coordinator is up.");
	prom_gauge(p, "shoal_coordinator_connected", a->state == S_ONLINE);
	prom_family(p, "shoal_desired_generation", "gauge",
	    "The desired-state generation the agent has applied.");
	prom_count(p, "shoal_desired_generation", a->generation);
	prom_family(p, "shoal_outbox_depth", "gauge",
	    "Events queued in the agent's outbox, not yet acknowledged by "
	    "the coordinator.");
	prom_count(p, "shoal_outbox_depth", outbox_depth(a->outbox));
	prom_family(p, "shoal_artifact_cache_bytes", "gauge",
	    "Bytes of model artifacts in the node's cache.");
	prom_count(p, "shoal_artifact_cache_bytes", u->bytes);
	prom_family(p, "shoal_artifact_cache_files", "gauge",
	    "Model artifacts in the node's cache.");
	prom_count(p, "shoal_artifact_cache_files", u->files);
	prom_family(p, "shoal_artifact_cache_budget_bytes", "gauge",
	    "The artifact cache's budget (0: the disk's free space).");
	prom_count(p, "shoal_artifact_cache_budget_bytes", u->budget);
	prom_family(p, "shoal_artifact_downloaded_bytes_total", "counter",
	    "Artifact bytes received from servers since the agent started.");
	prom_count(p, "shoal_artifact_downloaded_bytes_total", u->downloaded);
	runner_render_metrics(a->runner, p);
	prom_process(p, "shoal-agent");
	return 200;
}

int
agent_new(const agent_options_t *opts, agent_t **ret)
{
	agent_t *a = xcalloc(1, sizeof *a);
	int r;

	a->opts = opts;
	log_set_node(opts->node_id);
	a->reconnect_timer = -1;
	a->hello_timer = -1;
	a->started_ms = now_ms();
	a->doorbell_ep = opts->doorbell
	    ? xstrdup(opts->doorbell)
	    : agent_default_doorbell(opts->coordinator);
	if (!a->doorbell_ep) {
		log_error("no doorbell endpoint: give --doorbell when the "
		          "coordinator endpoint %s is not tcp://HOST:PORT",
		    opts->coordinator);
		r = -EINVAL;
		goto fail;
	}
	r = store_open(opts->state_dir, agent_dbs, ARRAY_SIZE(agent_dbs),
	    AGENT_SCHEMA, STORE_MAP_BYTES, &a->store);
	if (r < 0) {
		log_error("cannot open the state store in %s: %s",
		    opts->state_dir, shoal_strerror(r));
		goto fail;
	}
	r = load_identity(a);
	if (r == 0)
		r = outbox_open(a->store, DB_OUTBOX, DB_META, OUTBOX_MAX,
		    &a->outbox);
	if (r < 0) {
		log_error("cannot read the state store in %s: %s",
		    opts->state_dir, shoal_strerror(r));
		goto fail;
	}
	hostinfo_new("/proc", &a->host);

	{
		char *secret = xasprintf("%s/agent.key", opts->state_dir);
		char *public = xasprintf("%s/agent.pub", opts->state_dir);
		char err[512];

		r = curve_keys_load_or_create(secret, public, &a->curve, err,
		    sizeof err);
		if (r == 0)
			log_info("node %s: CurveZMQ key %s (%s)", opts->node_id,
			    a->curve.public_key, public);
		else
			log_error("%s", err);
		free(secret);
		free(public);
		if (r == 0) {
			r = curve_public_load(opts->coordinator_key,
			    a->coordinator_key, err, sizeof err);
			if (r < 0) {
				log_error("%s: --coordinator-key names the "
				          "coordinator's public key, which it "
				          "writes to its state dir as "
				          "coordinator.pub",
				    err);
				r = SHOAL_E_CONFIG; /* exit 78: no restart */
			}
		}
		if (r < 0)
			goto fail;
	}
	a->loop = zloop_new();
	r = subscribe(a);
	if (r < 0)
		goto fail;
	zloop_timer(a->loop, (size_t)opts->heartbeat_ms, 0, on_tick, a);
	zloop_timer(a->loop, STATUS_MS, 0, on_status_timer, a);
	{
		Shoal__Facts facts = SHOAL__FACTS__INIT;
		metrics_config_t mcfg = {
			.proc_root = "/proc",
			.nvml_library = opts->nvml_library,
			.interval_ms = opts->metrics_interval_ms,
		};

		hostinfo_facts(a->host, &facts);
		mcfg.hostname = facts.hostname;
		metrics_new(a->loop, &mcfg, &a->metrics);
	}
	if (strcmp(opts->metrics_listen, "off") != 0) {
		char err[512];

		r = httpd_new(a->loop, opts->metrics_listen, on_metrics, a,
		    &a->httpd, err, sizeof err);
		if (r < 0) {
			log_error("%s (--metrics-listen, or off)", err);
			goto fail;
		}
	}
	{
		char *dir = xasprintf("%s/artifacts", opts->state_dir);
		char err[512];
		artifacts_config_t cfg = {
			.dir = dir,
			.budget_bytes = opts->artifact_budget,
			.downloads_max = (unsigned)opts->artifact_downloads,
			.stall_ms = opts->artifact_stall_ms,
			.attempts = (unsigned)opts->artifact_attempts,
			.ca_file = opts->artifact_ca_file,
			.file_root = opts->artifact_file_root,
		};
		artifacts_hooks_t ahooks = {
			.event = runner_event,
			.progress = artifacts_progress,
			.pins = artifacts_pins,
			.arg = a,
		};
		runner_hooks_t hooks = {
			.event = runner_event,
			.status_changed = runner_status_changed,
			.arg = a,
		};

		r = artifacts_new(a->loop, &cfg, &ahooks, &a->artifacts, err,
		    sizeof err);
		free(dir);
		if (r < 0) {
			log_error("%s", err);
			goto fail;
		}
		r = runner_new(a->loop, opts->node_id, opts->runtime_socket,
		    a->artifacts, &hooks, &a->runner);
	}
	if (r == 0) {
		char *dir = xasprintf("%s/snapshots", opts->state_dir);
		char err[1024];
		snapshots_config_t scfg = {
			.dir = dir,
			.config_file = opts->config_file,
			.keep = (unsigned)opts->snapshot_keep,
			.keep_ms = opts->snapshot_keep_days * 24 * 3600 * 1000,
			.dbs = agent_dbs,
			.ndbs = ARRAY_SIZE(agent_dbs),
			.schema = AGENT_SCHEMA,
			.catalogue_db = DB_SNAPSHOTS,
		};

		r = snapshots_open(a->store, &scfg, &a->snaps, err, sizeof err);
		free(dir);
		if (r < 0) {
			/* The services matter more: they run, snapshots are
			 * refused with the reason. */
			log_error(
			    "cannot open the snapshots (snapshots are off "
			    "until a restart): %s",
			    err);
			a->snaps = NULL;
			r = 0;
		}
		if (a->snaps) {
			const Shoal__Snapshot *const *v;
			size_t n, bad = 0;

			snapshots_list(a->snaps, &v, &n);
			for (size_t i = 0; i < n; i++)
				if (v[i]->state !=
				    SHOAL__SNAPSHOT__STATE__READY) {
					bad++;
					log_warning(
					    "snapshot %s is corrupt: %s",
					    v[i]->id, v[i]->reason);
				}
			log_info("%zu snapshots (%zu corrupt)", n, bad);
		}
		snapshots_changed(a);
	}
	if (r == 0)
		r = load_desired(a);
	if (r < 0) {
		log_error("cannot start the service runner: %s",
		    shoal_strerror(r));
		goto fail;
	}

	fire(a, E_CONNECT);
	if (!a->dealer) {
		r = -EINVAL; /* act_connect() said why */
		goto fail;
	}
	record(a, "agent.started", "shoal-agent %s started", PACKAGE_VERSION);
	{
		char where[300];

		httpd_describe(a->httpd, opts->metrics_listen, where,
		    sizeof where);
		log_info(
		    "agent %s (node %s, generation %llu, %llu events queued): "
		    "coordinator %s, doorbell %s, container runtime %s, "
		    "metrics %s",
		    PACKAGE_VERSION, opts->node_id,
		    (unsigned long long)a->generation,
		    (unsigned long long)outbox_depth(a->outbox),
		    opts->coordinator, a->doorbell_ep, opts->runtime_socket,
		    where);
	}
	*ret = a;
	return 0;
fail:
	agent_destroy(&a);
	return r;
}

int
agent_run(agent_t *a, lifecycle_reload_fn reload, void *arg)
{
	lifecycle_t *lc;
	int r = lifecycle_new(a->loop, reload, arg, &lc);

	if (r < 0) {
		log_error("cannot read signals: %s", strerror(-r));
		return r;
	}
	/* agent_new() opened the store, bound the metrics endpoint and
	 * started connecting: ready. */
	update_status(a);
	lifecycle_ready(lc);
	zloop_start(a->loop);
	lifecycle_destroy(&lc);
	log_info("shutting down");
	return 0;
}

void
agent_reconfigured(agent_t *a, uint64_t changed)
{
	int labels = config_field_index(agent_config_fields, "labels");
	int token = config_field_index(agent_config_fields, "enroll_token");

	log_set_level(log_level_from_name(a->opts->log_level));
	/* The coordinator learns labels (and reads a token) from a Hello:
	 * say one again, as after a restart. */
	if ((changed & (1ULL << labels | 1ULL << token)) &&
	    a->state == S_ONLINE) {
		log_info("saying hello again with the new %s",
		    changed & (1ULL << labels) ? "labels" : "enrollment token");
		fire(a, E_FORGOTTEN);
	}
}

void
agent_destroy(agent_t **ap)
{
	agent_t *a = *ap;

	if (!a)
		return;
	httpd_destroy(&a->httpd);
	runner_destroy(&a->runner);
	snapshots_close(&a->snaps);
	if (a->current)
		shoal__desired_state__free_unpacked(a->current, NULL);
	if (a->effective)
		shoal__desired_state__free_unpacked(a->effective, NULL);
	artifacts_destroy(&a->artifacts);
	metrics_destroy(&a->metrics);
	zloop_destroy(&a->loop);
	zsock_destroy(&a->dealer);
	zsock_destroy(&a->sub);
	hostinfo_destroy(&a->host);
	outbox_close(&a->outbox);
	store_close(&a->store);
	free(a->doorbell_ep);
	free(a);
	*ap = NULL;
}
