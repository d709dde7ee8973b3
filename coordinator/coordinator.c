/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's event loop: agents on a ROUTER, doorbells on a PUB,
 * shoalctl on a control ROUTER, and timers for liveness and for writing
 * heartbeat figures. Every frame is decoded by the wire codec before use;
 * a bad frame is answered with an Error and logged (rate-limited), never
 * trusted.
 */
#include "autoconf.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/httpd.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/store.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/backup.h"
#include "coordinator/coordinator.h"
#include "coordinator/keys.h"
#include "coordinator/registry.h"
#include "coordinator/services.h"

#define SWEEP_MS 250
#define FLUSH_MS 5000
#define STORE_MAP_BYTES (1ULL << 30)
#define EVENTS_DEFAULT_LIMIT 100
/* Messages queued per peer; an honest agent has at most its event window
 * and a few requests in flight. */
#define PEER_HWM 256

#define OPT(field) offsetof(coord_options_t, field)
const config_field_t coord_config_fields[] = {
	{ "state_dir", CONFIG_STRING, OPT(state_dir) },
	{ "listen", CONFIG_STRING, OPT(listen) },
	{ "publish", CONFIG_STRING, OPT(publish) },
	{ "control", CONFIG_STRING, OPT(control) },
	{ "offline_after", CONFIG_DURATION, OPT(offline_after_ms), 0,
	    24ULL * 3600 * 1000 },
	{ "missed_heartbeats", CONFIG_UINT, OPT(missed_heartbeats), 1, 1000 },
	{ "log_level", CONFIG_STRING, OPT(log_level), 0, 0, log_level_valid,
	    LOG_LEVEL_EXPECT },
	{ "metrics_listen", CONFIG_STRING, OPT(metrics_listen), 0, 0,
	    httpd_listen_valid, HTTPD_LISTEN_EXPECT },
	{ "remote_control", CONFIG_STRING, OPT(remote_control) },
	{ "enroll_token", CONFIG_STRING, OPT(enroll_token), 0, 0,
	    curve_token_valid, CURVE_TOKEN_EXPECT },
	{ "operator_keys", CONFIG_STRING, OPT(operator_keys) },
	{ NULL },
};

void
coord_options_defaults(coord_options_t *o)
{
	*o = (coord_options_t){
		.state_dir = xstrdup("/var/lib/shoal-coordinator"),
		.listen = xstrdup("tcp://*:7400"),
		.publish = xstrdup("tcp://*:7401"),
		.control = xstrdup("ipc:///run/shoal/control.sock"),
		.missed_heartbeats = 3,
		.log_level = xstrdup("info"),
		.metrics_listen = xstrdup("127.0.0.1:9465"),
		.remote_control = xstrdup("off"),
		.enroll_token = xstrdup(""),
		.operator_keys = xstrdup(""),
	};
}

void
coord_options_free(coord_options_t *o)
{
	config_free(coord_config_fields, o);
}

/* ZAP domains: which socket a handshake is for. */
#define ZAP_AGENTS "shoal-agents"
#define ZAP_DOORBELLS "shoal-doorbells"
#define ZAP_CONTROL "shoal-control"

struct coordinator {
	const coord_options_t *opts;
	store_t *store;
	registry_t *reg;
	services_t *svc;
	keyring_t *keys;
	curve_keys_t curve; /* the coordinator's key pair */
	curve_zap_t *zap;
	zloop_t *loop;
	uint64_t status_mono; /* of the last status line */
	zsock_t *router;
	zsock_t *pub;
	zsock_t *control;
	zsock_t *remote;   /* --remote-control, or NULL */
	int control_curve; /* --control is a TCP endpoint: CurveZMQ too */
	httpd_t *httpd;    /* NULL: --metrics-listen off */
	uint64_t seq;
	/* rate limit for complaints about bad frames */
	uint64_t bad_window;
	unsigned bad_logged, bad_dropped;
};

/* 1 if one more complaint may be logged now: at most 10 in 10 seconds. */
static int
may_complain(coordinator_t *c)
{
	uint64_t now = mono_ms();

	if (now - c->bad_window > 10000) {
		if (c->bad_dropped)
			log_warning("%u more bad frames or refused peers not "
			            "logged",
			    c->bad_dropped);
		c->bad_window = now;
		c->bad_logged = c->bad_dropped = 0;
	}
	if (c->bad_logged++ < 10)
		return 1;
	c->bad_dropped++;
	return 0;
}

static void
complain(coordinator_t *c, const char *where, int code, const char *why)
{
	if (may_complain(c))
		log_warning("dropped a frame on the %s endpoint: %s (%s)",
		    where, shoal_strerror(code), why ? why : "-");
}

/* A CurveZMQ handshake our ZAP handler refused. */
static void
complain_handshake(coordinator_t *c, const char *where, const char *why)
{
	if (may_complain(c))
		log_warning("refused a connection to the %s endpoint: %s",
		    where, why);
}

/* Sends env back along the routing frames of the request (all frames but
 * the payload, so both DEALER and REQ peers get their envelope). */
static void
reply(coordinator_t *c, zsock_t *sock, zmsg_t *route, Shoal__Envelope *env)
{
	zmsg_t *out = zmsg_dup(route);

	env->version = SHOAL_PROTOCOL_VERSION;
	env->seq = ++c->seq;
	zmsg_append(out, &(zframe_t *){ wire_frame(env) });
	if (zmsg_send(&out, sock) < 0) {
		log_debug("reply not sent: %s", zmq_strerror(zmq_errno()));
		zmsg_destroy(&out);
	}
}

static void
reply_error(coordinator_t *c, zsock_t *sock, zmsg_t *route, int code,
    const char *msg)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Error err = SHOAL__ERROR__INIT;

	err.code = code;
	err.message = (char *)msg;
	env.body_case = SHOAL__ENVELOPE__BODY_ERROR;
	env.error = &err;
	reply(c, sock, route, &env);
}

static void
ring(coordinator_t *c, const char *node_id, uint64_t generation)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Doorbell bell = SHOAL__DOORBELL__INIT;
	zmsg_t *msg = zmsg_new();

	bell.generation = generation;
	env.version = SHOAL_PROTOCOL_VERSION;
	env.node_id = (char *)node_id;
	env.seq = ++c->seq;
	env.body_case = SHOAL__ENVELOPE__BODY_DOORBELL;
	env.doorbell = &bell;
	zmsg_addstr(msg, node_id);
	zmsg_append(msg, &(zframe_t *){ wire_frame(&env) });
	if (!c->pub || zmsg_send(&msg, c->pub) < 0)
		zmsg_destroy(&msg);
}

/*
 * Drops every doorbell subscriber: a key's handshake is checked once, so a
 * node rejected or deleted would otherwise keep its subscription. The
 * accepted ones reconnect at once and are let in again; they miss nothing
 * (doorbells are only hints: heartbeat replies carry the generation).
 */
static void
rebind_doorbells(coordinator_t *c)
{
	char *ep = NULL;
	zsock_t *s;

	if (c->pub) {
		ep = zsock_last_endpoint(c->pub);
		if (ep)
			zsock_unbind(c->pub, "%s", ep);
		zsock_destroy(&c->pub);
		free(ep);
	}
	s = zsock_new(ZMQ_PUB);
	if (!s)
		abort();
	zsock_set_linger(s, 0);
	curve_server(s, &c->curve, ZAP_DOORBELLS);
	zsock_set_maxmsgsize(s, WIRE_MAX_FRAME);
	/* The old listener closes in libzmq's I/O thread, a moment later. */
	for (int i = 0; i < 100; i++) {
		if (zsock_bind(s, "%s", c->opts->publish) >= 0) {
			c->pub = s;
			return;
		}
		zclock_sleep(10);
	}
	log_error("cannot bind the doorbell endpoint %s again: %s; agents "
	          "learn of changes from heartbeat replies until a restart",
	    c->opts->publish, zmq_strerror(zmq_errno()));
	zsock_destroy(&s);
}

/* services_ring_fn: a node's desired state changed. */
static void
ring_node(const char *node_id, uint64_t generation, void *arg)
{
	coordinator_t *c = arg;

	log_node(LOG_DEBUG, node_id, "node %s: desired-state generation %llu",
	    node_id, (unsigned long long)generation);
	ring(c, node_id, generation);
}

/* Writes one of the coordinator's own events about node (key changes):
 * the audit log. */
static void audit(coordinator_t *c, const char *node, const char *kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
audit(coordinator_t *c, const char *node, const char *kind, const char *fmt,
    ...)
{
	store_txn_t *txn = NULL;
	va_list ap;
	char *msg;
	int r;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	r = store_begin(c->store, true, &txn);
	if (r == 0)
		r = registry_write_event(c->reg, txn, node, kind, "", msg);
	if (r == 0)
		r = store_commit(&txn);
	store_abort(&txn);
	if (r < 0)
		log_node(LOG_ERR, node, "cannot write the event '%s: %s': %s",
		    kind, msg, shoal_strerror(r));
	free(msg);
}

/*
 * The key check of a Hello: the peer's key (the User-Id our ZAP handler
 * gave its connection) must be accepted for the node it names, or be
 * accepted now by the enrollment token; otherwise it is recorded as
 * pending and the agent is told so. Returns 1 if the Hello may go on.
 */
static int
enrol(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in,
    const char *key, const char *address)
{
	const Shoal__NodeKey *before = keyring_by_node(c->keys, in->node_id);
	int was_accepted = before && strcmp(before->state, "accepted") == 0;
	int known = before != NULL;
	int token_ok = c->opts->enroll_token[0] && in->hello->enroll_token[0] &&
	    curve_token_equal(c->opts->enroll_token, in->hello->enroll_token);
	keyring_verdict_t verdict;
	char why[512] = "";
	int r;

	if (!key[0]) {
		reply_error(c, c->router, route, SHOAL_E_DENIED,
		    "no CurveZMQ key on this connection");
		return 0;
	}
	r = keyring_enrol(c->keys, in->node_id, key, address, token_ok,
	    &verdict, why, sizeof why);
	if (r < 0 && r != SHOAL_E_LIMIT) {
		log_node(LOG_ERR, in->node_id,
		    "cannot record the key of %s: %s", in->node_id,
		    shoal_strerror(r));
		reply_error(c, c->router, route, r, shoal_strerror(r));
		return 0;
	}
	/* A key accepted before may keep a token since rotated: it goes on. */
	if (!token_ok && in->hello->enroll_token[0] &&
	    verdict != KEYRING_ACCEPTED)
		complain(c, "agent", SHOAL_E_DENIED,
		    "a Hello with a wrong enrollment token");
	switch (verdict) {
	case KEYRING_ACCEPTED:
		if (!was_accepted) {
			log_node(LOG_INFO, in->node_id, "node %s: %s",
			    in->node_id, why);
			audit(c, in->node_id, "key.accepted", "%s", why);
		}
		return 1;
	case KEYRING_PENDING:
		if (!known) {
			/* A flood of new keys must not flood the log: the
			 * event log keeps every one (at most the cap). */
			if (may_complain(c))
				log_node(LOG_INFO, in->node_id,
				    "node %s: %s (from %s)", in->node_id, why,
				    address);
			audit(c, in->node_id, "key.pending", "%s (from %s)",
			    why, address);
		}
		reply_error(c, c->router, route, SHOAL_E_PENDING, why);
		return 0;
	case KEYRING_REFUSED:
	default:
		complain(c, "agent", SHOAL_E_DENIED, why);
		reply_error(c, c->router, route, SHOAL_E_DENIED, why);
		return 0;
	}
}

/*
 * Every message but Hello: the key must be accepted, and for the node the
 * message speaks for. Returns 1 if it may be handled; otherwise the peer
 * was told why.
 */
static int
sender_ok(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in,
    const char *key)
{
	const Shoal__NodeKey *k = keyring_by_key(c->keys, key);
	char why[256];

	if (k && strcmp(k->state, "accepted") == 0 &&
	    strcmp(k->node, in->node_id) == 0)
		return 1;
	if (!k || strcmp(k->node, in->node_id) != 0 ||
	    strcmp(k->state, "rejected") == 0) {
		snprintf(why, sizeof why,
		    "%s from a key not accepted for node '%s'",
		    wire_body_name(in), in->node_id);
		complain(c, "agent", SHOAL_E_DENIED, why);
		reply_error(c, c->router, route, SHOAL_E_DENIED,
		    "this connection's key is not accepted for that node: say "
		    "Hello to enrol");
		return 0;
	}
	reply_error(c, c->router, route, SHOAL_E_PENDING,
	    "this node's key waits for 'shoalctl keys accept'");
	return 0;
}

static void
on_hello(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in,
    const char *key, const char *address)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Welcome w = SHOAL__WELCOME__INIT;
	const Shoal__Node *before;
	int was_online, other_store;
	const Shoal__Node *node;
	int r;

	if (!enrol(c, route, in, key, address))
		return;
	before = registry_find(c->reg, in->node_id);
	was_online = before && before->state == SHOAL__NODE__STATE__ONLINE;
	other_store =
	    before && strcmp(before->store_id, in->hello->store_id) != 0;
	/* before is not to be read past this call: the record is replaced. */
	r = registry_hello(c->reg, in->node_id, in->hello, &node);
	if (r == SHOAL_E_LIMIT) {
		complain(c, "agent", r, "registry full: new node refused");
		reply_error(c, c->router, route, r,
		    "the coordinator holds the most nodes it accepts");
		return;
	}
	if (r < 0) {
		log_node(LOG_ERR, in->node_id, "cannot record node: %s",
		    shoal_strerror(r));
		reply_error(c, c->router, route, r, shoal_strerror(r));
		return;
	}
	if (!before)
		log_node(LOG_INFO, node->id, "node %s registered (agent %s)",
		    node->id, node->agent_version);
	else if (!was_online)
		log_node(LOG_INFO, node->id, "node %s online", node->id);
	else if (other_store)
		log_node(LOG_WARNING, node->id,
		    "node %s: Hello from another agent state dir while the "
		    "node was online; are two agents using one node id?",
		    node->id);
	/* Labels may have changed: so may what the node must run. */
	r = services_node_changed(c->svc, node->id, NULL, NULL);
	if (r < 0)
		log_node(LOG_ERR, node->id,
		    "node %s: cannot compute its desired state: %s", node->id,
		    shoal_strerror(r));
	node = registry_find(c->reg, in->node_id);
	w.coordinator_version = PACKAGE_VERSION;
	w.generation = node->generation;
	w.event_seq = node->event_seq;
	env.body_case = SHOAL__ENVELOPE__BODY_WELCOME;
	env.welcome = &w;
	env.node_id = node->id;
	reply(c, c->router, route, &env);
	if (node->generation > node->acked_generation)
		ring(c, node->id, node->generation);
}

static void
on_heartbeat(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__HeartbeatReply hr = SHOAL__HEARTBEAT_REPLY__INIT;
	const Shoal__Node *node = registry_find(c->reg, in->node_id);
	int was_online = node && node->state == SHOAL__NODE__STATE__ONLINE;
	int r;

	r = registry_heartbeat(c->reg, in->node_id, in->heartbeat, &node);
	if (r == 0) {
		hr.known = 1;
		hr.generation = node->generation;
		hr.status_seq = services_status_seq(c->svc, node->id);
		if (!was_online)
			log_node(LOG_INFO, node->id, "node %s online",
			    node->id);
	} else if (r != SHOAL_E_NOT_FOUND) {
		log_node(LOG_ERR, in->node_id, "cannot record heartbeat: %s",
		    shoal_strerror(r));
		reply_error(c, c->router, route, r, shoal_strerror(r));
		return;
	}
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT_REPLY;
	env.heartbeat_reply = &hr;
	env.node_id = in->node_id;
	reply(c, c->router, route, &env);
}

static void
on_desired_state_request(coordinator_t *c, zmsg_t *route,
    const Shoal__Envelope *in)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__DesiredState ds = SHOAL__DESIRED_STATE__INIT;
	const Shoal__Node *node = registry_touch(c->reg, in->node_id);

	if (!node) {
		reply_error(c, c->router, route, SHOAL_E_NOT_FOUND,
		    "unknown node: say Hello first");
		return;
	}
	ds.generation = node->generation;
	services_desired(c->svc, node->id, &ds.services, &ds.n_services);
	services_operations(c->svc, node->id, &ds.operations, &ds.n_operations);
	env.body_case = SHOAL__ENVELOPE__BODY_DESIRED_STATE;
	env.desired_state = &ds;
	env.node_id = in->node_id;
	reply(c, c->router, route, &env);
}

static void
on_ack(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in)
{
	int r = registry_ack(c->reg, in->node_id, in->ack->generation);

	if (r < 0) {
		log_node(LOG_WARNING, in->node_id,
		    "acknowledgement of generation %llu refused: %s",
		    (unsigned long long)in->ack->generation, shoal_strerror(r));
		reply_error(c, c->router, route, r, shoal_strerror(r));
		return;
	}
	registry_touch(c->reg, in->node_id);
	log_node(LOG_DEBUG, in->node_id, "node %s reached generation %llu",
	    in->node_id, (unsigned long long)in->ack->generation);
}

static void
on_status_report(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in)
{
	int r;

	if (!registry_touch(c->reg, in->node_id)) {
		reply_error(c, c->router, route, SHOAL_E_NOT_FOUND,
		    "unknown node: say Hello first");
		return;
	}
	r = services_report(c->svc, in->node_id, in->status_report, ring_node,
	    c);
	if (r < 0) {
		/* The heartbeat reply keeps naming the old seq: it comes
		 * again. */
		log_node(LOG_ERR, in->node_id, "cannot store status: %s",
		    shoal_strerror(r));
		return;
	}
	for (size_t i = 0; i < in->status_report->n_services; i++) {
		const Shoal__ServiceStatus *st = in->status_report->services[i];

		log_service(LOG_DEBUG, in->node_id, st->service, st->revision,
		    "%s r%llu on %s: state %d%s%s", st->service,
		    (unsigned long long)st->revision, in->node_id, st->state,
		    st->reason[0] ? ": " : "", st->reason);
	}
}

static void
on_event(coordinator_t *c, zmsg_t *route, const Shoal__Envelope *in)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__EventAck ack = SHOAL__EVENT_ACK__INIT;
	Shoal__Event *ev = in->event;
	int r;

	/* An agent's event must not pass for one of the coordinator's
	 * (its audit log): those kinds are stored marked as the agent's. */
	if (strncmp(ev->kind, "key.", 4) == 0 ||
	    strncmp(ev->kind, "rollout.", 8) == 0) {
		char *kind =
		    xasprintf("agent.%.*s", WIRE_MAX_STRING - 8, ev->kind);

		free(ev->kind); /* unpacked with the default allocator */
		ev->kind = kind;
	}
	r = registry_event(c->reg, in->node_id, in->event, &ack.seq);
	if (r < 0) {
		/* Not acknowledged: the agent keeps it and sends it again. */
		log_node(LOG_WARNING, in->node_id, "event %llu not stored: %s",
		    (unsigned long long)in->event->seq, shoal_strerror(r));
		reply_error(c, c->router, route, r, shoal_strerror(r));
		return;
	}
	if (r == REGISTRY_EVENT_GAP || r == REGISTRY_EVENT_GAP_TOLD) {
		log_node(LOG_DEBUG, in->node_id,
		    "event %llu refused: %llu is the last one stored",
		    (unsigned long long)in->event->seq,
		    (unsigned long long)ack.seq);
		ack.resend = r == REGISTRY_EVENT_GAP;
	} else {
		log_node(LOG_DEBUG, in->node_id, "event %llu %s: %s",
		    (unsigned long long)in->event->seq, in->event->kind,
		    in->event->message);
	}
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT_ACK;
	env.event_ack = &ack;
	env.node_id = in->node_id;
	reply(c, c->router, route, &env);
}

/* The kinds of message an agent sends the coordinator. */
static int
agent_message(Shoal__Envelope__BodyCase kind)
{
	switch (kind) {
	case SHOAL__ENVELOPE__BODY_HELLO:
	case SHOAL__ENVELOPE__BODY_HEARTBEAT:
	case SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST:
	case SHOAL__ENVELOPE__BODY_ACK:
	case SHOAL__ENVELOPE__BODY_EVENT:
	case SHOAL__ENVELOPE__BODY_STATUS_REPORT:
		return 1;
	default:
		return 0;
	}
}

/* Takes the payload (last frame) off a ROUTER message, leaving the
 * routing frames to reply along. */
static zframe_t *
zmsg_pop_last_frame(zmsg_t *msg)
{
	zframe_t *f = zmsg_last(msg);

	zmsg_remove(msg, f);
	return f;
}

static int
on_agent_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
	coordinator_t *c = arg;
	zmsg_t *msg = zmsg_recv(sock);
	Shoal__Envelope *in = NULL;
	const char *why = NULL, *meta;
	char key[CURVE_KEY_LEN + 1], address[64];
	zframe_t *payload;
	int r;

	if (!msg)
		return 0;
	if (zmsg_size(msg) != 2) {
		complain(c, "agent", SHOAL_E_MALFORMED, "frame count");
		goto out;
	}
	payload = zmsg_pop_last_frame(msg);
	/* What our ZAP handler said of the connection: its key. */
	meta = zframe_meta(payload, "User-Id");
	snprintf(key, sizeof key, "%s",
	    meta && curve_key_valid(meta) ? meta : "");
	meta = zframe_meta(payload, "Peer-Address");
	snprintf(address, sizeof address, "%s", meta ? meta : "");
	r = wire_unpack(zframe_data(payload), zframe_size(payload), &in, &why);
	zframe_destroy(&payload);
	if (r < 0) {
		complain(c, "agent", r, why);
		reply_error(c, sock, msg, r, why);
		goto out;
	}
	/* A message the coordinator takes from agents: then the key must be
	 * allowed to speak for its node. */
	if (in->body_case != SHOAL__ENVELOPE__BODY_HELLO &&
	    agent_message(in->body_case) && !sender_ok(c, msg, in, key))
		goto out;
	switch (in->body_case) {
	case SHOAL__ENVELOPE__BODY_HELLO:
		on_hello(c, msg, in, key, address);
		break;
	case SHOAL__ENVELOPE__BODY_HEARTBEAT:
		on_heartbeat(c, msg, in);
		break;
	case SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST:
		on_desired_state_request(c, msg, in);
		break;
	case SHOAL__ENVELOPE__BODY_ACK:
		on_ack(c, msg, in);
		break;
	case SHOAL__ENVELOPE__BODY_EVENT:
		on_event(c, msg, in);
		break;
	case SHOAL__ENVELOPE__BODY_STATUS_REPORT:
		on_status_report(c, msg, in);
		break;
	default:
		complain(c, "agent", SHOAL_E_UNEXPECTED, wire_body_name(in));
		reply_error(c, sock, msg, SHOAL_E_UNEXPECTED,
		    "not a message for the coordinator");
		break;
	}
out:
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	zmsg_destroy(&msg);
	return 0;
}

/*
 * Control replies are kept under this many bytes of nodes or events, well
 * inside WIRE_MAX_FRAME with the envelope around them.
 */
#define REPLY_BUDGET (WIRE_MAX_FRAME - 64 * 1024)

/* The overhead protobuf adds around each repeated item, at most. */
#define ITEM_OVERHEAD 6

/* One page of nodes in id order, as many as the request and the reply size
 * allow; rep->next names the last one when more remain. */
static void
list_nodes(coordinator_t *c, const Shoal__ListNodes *ln,
    Shoal__ControlReply *rep)
{
	size_t first =
	    ln->after[0] ? registry_index_after(c->reg, ln->after) : 0;
	size_t total = registry_count(c->reg), n = 0, bytes = 0;
	size_t limit = ln->limit ? ln->limit : WIRE_MAX_ITEMS;
	const Shoal__Node **nodes;

	nodes = xcalloc(total - first + 1, sizeof *nodes);
	for (size_t i = first; i < total && n < limit; i++) {
		const Shoal__Node *node = registry_at(c->reg, i);
		size_t sz = shoal__node__get_packed_size(node) + ITEM_OVERHEAD;

		if (n > 0 && bytes + sz > REPLY_BUDGET)
			break;
		bytes += sz;
		nodes[n++] = node;
	}
	rep->nodes = (Shoal__Node **)nodes;
	rep->n_nodes = n;
	if (first + n < total && n > 0)
		rep->next = xstrdup(nodes[n - 1]->id);
}

/* Keeps the newest of events (oldest first) that fit in one reply, or
 * the oldest when following (the rest comes with the next page). */
static void
fit_events(Shoal__StoredEvent **events, size_t n, int oldest,
    Shoal__ControlReply *rep)
{
	size_t bytes = 0, keep = 0;

	while (keep < n) {
		size_t sz = shoal__stored_event__get_packed_size(
		                oldest ? events[keep] : events[n - 1 - keep]) +
		    ITEM_OVERHEAD;

		if (bytes + sz > REPLY_BUDGET)
			break;
		bytes += sz;
		keep++;
	}
	rep->events = oldest ? events : events + (n - keep);
	rep->n_events = keep;
	rep->truncated = keep < n;
}

static void
no_service(Shoal__ControlReply *rep, int r, const char *name)
{
	rep->code = r;
	if (r == SHOAL_E_NOT_FOUND)
		rep->error = xasprintf("no service '%s'", name);
	else
		rep->error =
		    xasprintf("service '%s': %s", name, shoal_strerror(r));
}

static void
refused(Shoal__ControlReply *rep, int r, const char *what, const char *name,
    const char *why)
{
	rep->code = r;
	if (r == SHOAL_E_NOT_FOUND && !why)
		rep->error = xasprintf("no service '%s'", name);
	else
		rep->error = xasprintf("%s '%s': %s", what, name,
		    why ? why : shoal_strerror(r));
}

/* The audit log's actor: what shoalctl says of its user (user@host) and
 * what the coordinator knows of the connection. Caller frees. */
static char *
actor(const char *claim, const char *who)
{
	/* The verified part first, whole; the claim is cut so the record
	 * stays within the wire's string cap (readers check it). */
	int room = WIRE_MAX_STRING - 1 - (int)strlen(who) - 5;

	if (!claim[0] || room <= 0)
		return xasprintf("%.*s", WIRE_MAX_STRING - 1, who);
	return xasprintf("%s, as %.*s", who, room, claim);
}

static void
apply(coordinator_t *c, const Shoal__Apply *a, const char *who,
    Shoal__ControlReply *rep)
{
	services_result_t res;
	char *by = actor(a->started_by, who);
	int r;

	r = services_apply(c->svc, a->spec, a->message, by, ring_node, c, &res);
	free(by);
	if (r == SHOAL_E_LIMIT) {
		rep->code = r;
		rep->error = xasprintf("cannot apply service '%s': the "
		                       "coordinator holds %d services at most, "
		                       "and a node's desired state must fit in "
		                       "one %d-byte frame",
		    a->spec->service, SERVICES_MAX, WIRE_MAX_FRAME);
		return;
	}
	if (r < 0) {
		refused(rep, r, "cannot apply service", a->spec->service, NULL);
		return;
	}
	if (res.changed)
		log_service(LOG_INFO, NULL, a->spec->service, res.revision,
		    "service %s: revision %llu applied to %u nodes%s%s",
		    a->spec->service, (unsigned long long)res.revision,
		    res.selected, a->message[0] ? ": " : "", a->message);
	rep->revision = res.revision;
	rep->changed = res.changed;
	rep->selected = res.selected;
	if (res.changed)
		services_reply_rollout(rep, res.rollout);
}

static void
rollback(coordinator_t *c, const Shoal__Rollback *rb, const char *who,
    Shoal__ControlReply *rep)
{
	services_result_t res;
	char err[256] = "", *by = actor(rb->started_by, who);
	int r;

	r = services_rollback(c->svc, rb->service, rb->to_revision, rb->message,
	    by, ring_node, c, &res, err, sizeof err);
	if (r < 0) {
		refused(rep, r, "cannot roll back service", rb->service,
		    err[0] ? err : NULL);
		free(by);
		return;
	}
	log_service(LOG_INFO, NULL, rb->service, res.revision,
	    "service %s: rollback to revision %llu by %s", rb->service,
	    (unsigned long long)res.revision, by);
	free(by);
	rep->revision = res.revision;
	rep->changed = 1;
	rep->selected = res.selected;
	services_reply_rollout(rep, res.rollout);
}

static void
rollout_control(coordinator_t *c, const Shoal__RolloutControl *rc,
    const char *who, Shoal__ControlReply *rep)
{
	const Shoal__Rollout *ro = NULL;
	const char *why = NULL;
	char *by = actor(rc->started_by, who);
	int r;

	r = services_rollout_control(c->svc, rc->service, rc->action, by,
	    ring_node, c, &ro, &why);
	free(by);
	if (r < 0) {
		refused(rep, r, "rollout of service", rc->service, why);
		return;
	}
	services_reply_rollout(rep, ro);
}

static void
snapshot_create(coordinator_t *c, const Shoal__SnapshotCreate *req,
    const char *who, Shoal__ControlReply *rep)
{
	Shoal__SnapshotCreate as = *req;
	char err[512] = "";
	int r;

	as.requested_by = actor(req->requested_by, who);
	r = services_snapshot_create(c->svc, &as, ring_node, c, rep, err,
	    sizeof err);
	if (r < 0) {
		rep->code = r;
		rep->error = xasprintf("cannot take a snapshot: %s", err);
	}
	for (size_t i = 0; r == 0 && i < rep->n_operations; i++)
		log_node(LOG_INFO, rep->operations[i]->node,
		    "node %s: snapshot %s queued by %s",
		    rep->operations[i]->node, rep->operations[i]->snapshot,
		    as.requested_by);
	free(as.requested_by);
}

static void
snapshot_restore(coordinator_t *c, const Shoal__SnapshotRestore *req,
    const char *who, Shoal__ControlReply *rep)
{
	Shoal__SnapshotRestore as = *req;
	char err[512] = "";
	int r;

	as.requested_by = actor(req->requested_by, who);
	r = services_snapshot_restore(c->svc, &as, ring_node, c, rep, err,
	    sizeof err);
	if (r < 0) {
		rep->code = r;
		rep->error = xasprintf("cannot restore: %s", err);
	} else {
		log_node(LOG_INFO, req->node,
		    "node %s: restore of snapshot %s queued by %s", req->node,
		    req->snapshot, as.requested_by);
	}
	free(as.requested_by);
}

/* shoalctl keys list: the entries are the keyring's, borrowed until the
 * reply is sent (rep->keys itself is freed by the caller). */
static void
list_keys(coordinator_t *c, const Shoal__ListKeys *lk, Shoal__ControlReply *rep)
{
	keyring_list(c->keys, lk->node, &rep->keys, &rep->n_keys);
	if (lk->node[0] && rep->n_keys == 0) {
		rep->code = SHOAL_E_NOT_FOUND;
		rep->error =
		    xasprintf("node '%s' has no key: it has not asked to enrol",
		        lk->node);
	}
}

/* shoalctl keys accept|reject|delete: *ret_key is the entry as it now is
 * (the caller frees it). */
static void
key_control(coordinator_t *c, const Shoal__KeyControl *kc, const char *who,
    Shoal__ControlReply *rep, Shoal__NodeKey **ret_key)
{
	static const char *const verbs[] = { "accepted", "rejected",
		"deleted" };
	static const char *const kinds[] = { "key.accepted", "key.rejected",
		"key.deleted" };
	char err[512], shortkey[9], *by = actor(kc->requested_by, who);
	int r;

	r = keyring_control(c->keys, kc->node, kc->action, kc->key, by, ret_key,
	    err, sizeof err);
	if (r < 0) {
		rep->code = r;
		rep->error = xstrdup(err);
		free(by);
		return;
	}
	curve_key_short((*ret_key)->key, shortkey);
	log_node(LOG_INFO, kc->node, "node %s: key %s %s by %s", kc->node,
	    shortkey, verbs[kc->action], by);
	audit(c, kc->node, kinds[kc->action], "key %s %s by %s", shortkey,
	    verbs[kc->action], by);
	if (kc->action != SHOAL__KEY_CONTROL__ACTION__ACCEPT)
		rebind_doorbells(c);
	free(by);
	rep->keys = xcalloc(1, sizeof *rep->keys);
	rep->keys[0] = *ret_key;
	rep->n_keys = 1;
}

/* A consistent copy of the whole store, written beside the path first and
 * renamed into place, with its checksum in path.sha256. */
static void
backup(coordinator_t *c, const Shoal__Backup *req, Shoal__ControlReply *rep)
{
	char err[512] = "", hex[65], *dir = NULL, *state = NULL, *copy;
	uint64_t bytes = 0;
	int r;

	/* Never over the live store, nor anything else in the state dir. */
	copy = xstrdup(req->path);
	dir = realpath(dirname(copy), NULL);
	free(copy);
	state = realpath(c->opts->state_dir, NULL);
	if (dir && state &&
	    (strcmp(dir, state) == 0 ||
	        (strncmp(dir, state, strlen(state)) == 0 &&
	            dir[strlen(state)] == '/'))) {
		free(dir);
		free(state);
		rep->code = SHOAL_E_INVALID;
		rep->error = xasprintf("cannot write the backup: %s is in the "
		                       "coordinator's state dir %s; choose "
		                       "another place",
		    req->path, c->opts->state_dir);
		return;
	}
	free(dir);
	free(state);
	r = coordinator_backup(c->store, req->path, &bytes, hex, err,
	    sizeof err);
	if (r < 0) {
		rep->code = r;
		rep->error = xasprintf("cannot write the backup: %s", err);
		log_error("backup to %s failed: %s", req->path, err);
		return;
	}
	rep->bytes = bytes;
	rep->sha256 = xstrdup(hex);
	log_info("backup written to %s (%llu bytes, sha256 %.12s)", req->path,
	    (unsigned long long)bytes, hex);
}

static void
control_request(coordinator_t *c, const Shoal__ControlRequest *req,
    const char *who, Shoal__ControlReply *rep, Shoal__StoredEvent ***events,
    size_t *nevents, Shoal__NodeKey **key)
{
	const Shoal__Node **nodes;
	size_t n;
	int r;

	switch (req->req_case) {
	case SHOAL__CONTROL_REQUEST__REQ_LIST_NODES:
		list_nodes(c, req->list_nodes, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_APPLY:
		apply(c, req->apply, who, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_SERVICES:
		services_list(c->svc, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_GET_STATUS:
		r = services_status(c->svc, req->get_status->service, rep);
		if (r < 0)
			no_service(rep, r, req->get_status->service);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_GET_HISTORY:
		r = services_history(c->svc, req->get_history->service, rep);
		if (r < 0)
			no_service(rep, r, req->get_history->service);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_GET_ROLLOUT:
		r = services_rollout(c->svc, req->get_rollout->service, rep);
		if (r < 0)
			no_service(rep, r, req->get_rollout->service);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_ROLLOUT_CONTROL:
		rollout_control(c, req->rollout_control, who, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_ROLLBACK:
		rollback(c, req->rollback, who, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_PLAN:
		r = services_plan(c->svc, req->plan->spec, rep);
		if (r < 0)
			refused(rep, r, "cannot plan service",
			    req->plan->spec->service, NULL);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_DELETE_SERVICE:
		r = services_delete(c->svc, req->delete_service->service,
		    ring_node, c);
		if (r < 0)
			no_service(rep, r, req->delete_service->service);
		else
			log_service(LOG_INFO, NULL,
			    req->delete_service->service, 0,
			    "service %s deleted by %s",
			    req->delete_service->service, who);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_KEYS:
		list_keys(c, req->list_keys, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_KEY_CONTROL:
		key_control(c, req->key_control, who, rep, key);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_CREATE:
		snapshot_create(c, req->snapshot_create, who, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_RESTORE:
		snapshot_restore(c, req->snapshot_restore, who, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_SNAPSHOTS:
		r = services_snapshots(c->svc,
		    req->list_snapshots->node[0] ? req->list_snapshots->node
		                                 : NULL,
		    rep);
		if (r < 0) {
			rep->code = r;
			rep->error = xasprintf("no node '%s' is registered",
			    req->list_snapshots->node);
		}
		break;
	case SHOAL__CONTROL_REQUEST__REQ_BACKUP:
		/* It writes a file wherever it is told, as the coordinator's
		 * user: for the local socket's root and shoal group only. */
		if (strcmp(who, "local") != 0) {
			rep->code = SHOAL_E_DENIED;
			rep->error = xstrdup(
			    "backup create writes a file on the coordinator's "
			    "host: only on its local control socket");
			break;
		}
		backup(c, req->backup, rep);
		break;
	case SHOAL__CONTROL_REQUEST__REQ_GET_NODE:
		nodes = xcalloc(1, sizeof *nodes);
		nodes[0] = registry_find(c->reg, req->get_node->id);
		rep->nodes = (Shoal__Node **)nodes;
		if (nodes[0]) {
			rep->n_nodes = 1;
		} else {
			rep->code = SHOAL_E_NOT_FOUND;
			rep->error = xasprintf("no node '%s' is registered",
			    req->get_node->id);
		}
		break;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_EVENTS:
		n = req->list_events->limit ? req->list_events->limit
		                            : EVENTS_DEFAULT_LIMIT;
		r = registry_events(c->reg,
		    req->list_events->node[0] ? req->list_events->node : NULL,
		    req->list_events->service[0] ? req->list_events->service
		                                 : NULL,
		    req->list_events->after, n, events, nevents);
		if (r < 0) {
			rep->code = r;
			rep->error = xasprintf("cannot read events: %s",
			    shoal_strerror(r));
			break;
		}
		fit_events(*events, *nevents, req->list_events->after != 0,
		    rep);
		break;
	default:
		rep->code = SHOAL_E_INVALID;
		rep->error = xstrdup("unknown request");
		break;
	}
}

/*
 * Who sent a control request: on a CurveZMQ endpoint the operator our ZAP
 * handler admitted (its User-Id); on the local socket "local", which only
 * root and the shoal group can open. Returns 0 if a CurveZMQ connection
 * carries no operator (it cannot: ZAP refused it).
 */
static int
control_identity(coordinator_t *c, zsock_t *sock, const char *user_id,
    char *who, size_t len)
{
	char name[64], err[512], shortkey[9];

	if (sock == c->control && !c->control_curve) {
		snprintf(who, len, "local");
		return 1;
	}
	/* The handshake admitted the key; the allow-list may have lost it
	 * since, and a connection outlives an edit: ask again. */
	if (!curve_key_valid(user_id) ||
	    !keyring_operator(c->keys, user_id, name, sizeof name, err,
	        sizeof err))
		return 0;
	snprintf(who, len, "operator %s, key %s", name,
	    curve_key_short(user_id, shortkey));
	return 1;
}

static int
on_control_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
	coordinator_t *c = arg;
	zmsg_t *msg = zmsg_recv(sock);
	Shoal__Envelope *in = NULL, env = SHOAL__ENVELOPE__INIT;
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	Shoal__StoredEvent **events = NULL;
	Shoal__NodeKey *key = NULL;
	size_t nevents = 0;
	const char *why = NULL, *meta;
	char *error, payload_user[CURVE_USER_ID_MAX],
	    who[CURVE_USER_ID_MAX + 32];
	zframe_t *payload;
	int r;

	if (!msg)
		return 0;
	if (zmsg_size(msg) < 2) {
		complain(c, "control", SHOAL_E_MALFORMED, "frame count");
		goto out;
	}
	payload = zmsg_pop_last_frame(msg);
	meta = zframe_meta(payload, "User-Id");
	snprintf(payload_user, sizeof payload_user, "%s", meta ? meta : "");
	r = wire_unpack(zframe_data(payload), zframe_size(payload), &in, &why);
	zframe_destroy(&payload);
	if (r == 0 && in->body_case != SHOAL__ENVELOPE__BODY_CONTROL_REQUEST) {
		r = SHOAL_E_UNEXPECTED;
		why = wire_body_name(in);
	}
	if (r < 0) {
		complain(c, "control", r, why);
		reply_error(c, sock, msg, r, why);
		goto out;
	}
	if (!control_identity(c, sock, payload_user, who, sizeof who)) {
		complain(c, "control", SHOAL_E_DENIED,
		    "a key not on the operator allow-list (any more)");
		reply_error(c, sock, msg, SHOAL_E_DENIED,
		    "this connection's key is not on the operator allow-list");
		goto out;
	}
	rep.error = NULL; /* control_request() sets it only on failure */
	control_request(c, in->control_request, who, &rep, &events, &nevents,
	    &key);
	error = rep.error;
	if (!rep.error)
		rep.error = (char *)"";
	env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REPLY;
	env.control_reply = &rep;
	if (shoal__envelope__get_packed_size(&env) > WIRE_MAX_FRAME) {
		reply_error(c, sock, msg, SHOAL_E_FRAME_TOO_BIG,
		    "reply too large: ask for less");
	} else {
		reply(c, sock, msg, &env);
	}
	free(rep.nodes);
	services_free_reply(&rep);
	if (rep.next[0])
		free(rep.next); /* list_nodes() allocates it when set */
	if (rep.sha256[0])
		free(rep.sha256); /* backup() allocates it */
	free(error);
	registry_events_free(events, nevents);
	free(rep.keys); /* the entries are the keyring's, or key */
	if (key)
		shoal__node_key__free_unpacked(key, NULL);
out:
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	zmsg_destroy(&msg);
	return 0;
}

static void
on_offline(const Shoal__Node *node, void *arg)
{
	log_node(LOG_WARNING, node->id,
	    "node %s offline: no heartbeat since %llums ago", node->id,
	    (unsigned long long)(now_ms() - node->last_seen_ms));
}

/* systemd's STATUS= line, at most once a second (it walks the nodes). */
static void
update_status(coordinator_t *c)
{
	size_t n = registry_count(c->reg), online = 0, services, active;
	uint64_t now = mono_ms();

	if (c->status_mono && now - c->status_mono < 1000)
		return;
	c->status_mono = now;
	for (size_t i = 0; i < n; i++)
		online +=
		    registry_at(c->reg, i)->state == SHOAL__NODE__STATE__ONLINE;
	services_summary(c->svc, &services, &active);
	lifecycle_status("serving %zu node%s (%zu online), %zu service%s, "
	                 "%zu rollout%s in progress; %zu key%s pending",
	    n, n == 1 ? "" : "s", online, services, services == 1 ? "" : "s",
	    active, active == 1 ? "" : "s", keyring_pending(c->keys),
	    keyring_pending(c->keys) == 1 ? "" : "s");
}

static int
on_sweep(zloop_t *loop, int timer_id, void *arg)
{
	coordinator_t *c = arg;
	int r;

	r = registry_sweep(c->reg, c->opts->offline_after_ms,
	    c->opts->missed_heartbeats, on_offline, c);
	if (r < 0)
		log_error("liveness sweep failed: %s", shoal_strerror(r));
	/* Rollouts move on what the agents reported since. */
	services_tick(c->svc, ring_node, c);
	update_status(c);
	return 0;
}

static int
on_flush(zloop_t *loop, int timer_id, void *arg)
{
	coordinator_t *c = arg;
	int r = registry_flush(c->reg);

	if (r < 0)
		log_error("cannot write node figures: %s", shoal_strerror(r));
	return 0;
}

/* ipc:// endpoints need their directory; create it like systemd's
 * RuntimeDirectory= would. */
static int
prepare_ipc(const char *ep)
{
	char *dir, *slash;
	int r = 0;

	if (strncmp(ep, "ipc://", 6) != 0)
		return 0;
	dir = xstrdup(ep + 6);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -errno;
	}
	free(dir);
	return r;
}

/* curve_zap_fn: who may complete a CurveZMQ handshake on which socket. */
static int
zap_decide(const char *domain, const char *address, const char *key,
    char *user_id, char *why, size_t whylen, void *arg)
{
	coordinator_t *c = arg;
	const Shoal__NodeKey *k = keyring_by_key(c->keys, key);
	char name[64], err[512], shortkey[9];

	curve_key_short(key, shortkey);
	if (!key[0]) {
		snprintf(why, whylen, "no CurveZMQ key");
		return 0;
	}
	if (strcmp(domain, ZAP_AGENTS) == 0) {
		/* Unknown keys come in to enrol: their Hello is all they
		 * may send. */
		if (k && strcmp(k->state, "rejected") == 0) {
			snprintf(why, whylen, "key %s of node '%s' is rejected",
			    shortkey, k->node);
			complain_handshake(c, "agent", why);
			return 0;
		}
		snprintf(user_id, CURVE_USER_ID_MAX, "%s", key);
		return 1;
	}
	if (strcmp(domain, ZAP_DOORBELLS) == 0) {
		if (!k || strcmp(k->state, "accepted") != 0) {
			snprintf(why, whylen,
			    "key %s is not an accepted node's", shortkey);
			return 0;
		}
		snprintf(user_id, CURVE_USER_ID_MAX, "%s", key);
		return 1;
	}
	if (strcmp(domain, ZAP_CONTROL) == 0) {
		int ok = keyring_operator(c->keys, key, name, sizeof name, err,
		    sizeof err);

		if (err[0])
			log_error("%s: the TCP control endpoint admits nobody "
			          "until it is fixed",
			    err);
		if (!ok) {
			snprintf(why, whylen,
			    "key %s from %s is not on the operator allow-list",
			    shortkey, address);
			complain_handshake(c, "control", why);
			return 0;
		}
		snprintf(user_id, CURVE_USER_ID_MAX, "%s", key);
		return 1;
	}
	snprintf(why, whylen, "unknown ZAP domain '%s'", domain);
	return 0;
}

/* The local control socket: root and the shoal group only. */
static int
restrict_ipc(const char *ep)
{
	const char *path = ep + 6;
	struct group *g = getgrnam("shoal");

	if (chmod(path, 0660) < 0)
		return -errno;
	/* Only root may hand a file to a group it is not in; a coordinator
	 * run as an ordinary user (the tests) keeps its own group. */
	if (g && geteuid() == 0 && chown(path, (uid_t)-1, g->gr_gid) < 0)
		return -errno;
	return 0;
}

/* domain: the ZAP domain of a CurveZMQ server socket, or NULL for none. */
static int
bind_socket(coordinator_t *c, zsock_t **ret, int type, const char *what,
    const char *ep, const char *domain)
{
	zsock_t *s = zsock_new(type);
	int local_control = !domain && strncmp(ep, "ipc://", 6) == 0;
	mode_t mask = 0;
	int r;

	if (!s)
		return -ENOMEM;
	if (domain)
		curve_server(s, &c->curve, domain);
	zsock_set_linger(s, 0);
	/*
	 * libzmq drops a peer that sends a frame above the cap before it is
	 * buffered, and queues at most PEER_HWM messages per peer. Both
	 * bound frames, not messages: a peer may still send one message of
	 * endless parts, which libzmq buffers until the last one. CurveZMQ
	 * does not close that: an unknown key may connect to enrol, so any
	 * peer that can reach the port still can, once per connection.
	 * Firewall the agent port to the fleet's hosts.
	 */
	zsock_set_maxmsgsize(s, WIRE_MAX_FRAME);
	zsock_set_rcvhwm(s, PEER_HWM);
	r = prepare_ipc(ep);
	if (r < 0) {
		log_error(
		    "cannot create the directory for the %s endpoint %s: %s",
		    what, ep, shoal_strerror(r));
		zsock_destroy(&s);
		return r;
	}
	/* No moment in which others could connect: the socket is created
	 * without their permissions, then given to the shoal group. */
	if (local_control)
		mask = umask(0117);
	r = zsock_bind(s, "%s", ep) < 0 ? -zmq_errno() : 0;
	if (local_control)
		umask(mask);
	if (r < 0) {
		log_error("cannot bind the %s endpoint %s: %s", what, ep,
		    zmq_strerror(-r));
		zsock_destroy(&s);
		return r;
	}
	if (local_control) {
		r = restrict_ipc(ep);
		if (r < 0) {
			log_error(
			    "cannot restrict the %s socket %s to root and "
			    "the shoal group: %s",
			    what, ep + 6, shoal_strerror(r));
			zsock_destroy(&s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

/* A gauge per node from its last heartbeat's figures. */
static void
node_family(coordinator_t *c, prom_t *p, const char *name, const char *help,
    double (*get)(const Shoal__Node *n))
{
	prom_family(p, name, "gauge", help);
	for (size_t i = 0; i < registry_count(c->reg); i++) {
		const Shoal__Node *n = registry_at(c->reg, i);

		if (!n->figures)
			continue;
		prom_begin(p, name);
		prom_label(p, "node", n->id);
		prom_value(p, get(n));
	}
}

static double
fig_cpu(const Shoal__Node *n)
{
	return n->figures->cpu_percent / 100;
}

static double
fig_load1(const Shoal__Node *n)
{
	return n->figures->load1;
}

static double
fig_mem_avail(const Shoal__Node *n)
{
	return (double)n->figures->memory_available_bytes;
}

static double
fig_mem_total(const Shoal__Node *n)
{
	return (double)(n->figures->memory_total_bytes
	        ? n->figures->memory_total_bytes
	        : n->facts ? n->facts->memory_bytes
	                   : 0);
}

static double
fig_gpus(const Shoal__Node *n)
{
	return n->figures->gpus;
}

static double
fig_gpu(const Shoal__Node *n)
{
	return n->figures->gpu_util_percent / 100;
}

static double
fig_gpu_used(const Shoal__Node *n)
{
	return (double)n->figures->gpu_memory_used_bytes;
}

static double
fig_gpu_total(const Shoal__Node *n)
{
	return (double)n->figures->gpu_memory_total_bytes;
}

/* GET /metrics: the fleet as the coordinator sees it. */
static int
on_metrics(const char *path, prom_t *p, void *arg)
{
	coordinator_t *c = arg;
	size_t online = 0, n = registry_count(c->reg);

	if (strcmp(path, "/metrics") != 0)
		return 404;
	for (size_t i = 0; i < n; i++)
		online +=
		    registry_at(c->reg, i)->state == SHOAL__NODE__STATE__ONLINE;
	prom_family(p, "shoal_nodes", "gauge", "Nodes known, by state.");
	prom_begin(p, "shoal_nodes");
	prom_label(p, "state", "online");
	prom_value_uint(p, online);
	prom_begin(p, "shoal_nodes");
	prom_label(p, "state", "offline");
	prom_value_uint(p, n - online);
	services_render_metrics(c->svc, p);

	prom_family(p, "shoal_node_up", "gauge",
	    "1 while a node is online (heartbeating).");
	for (size_t i = 0; i < n; i++) {
		const Shoal__Node *node = registry_at(c->reg, i);

		prom_begin(p, "shoal_node_up");
		prom_label(p, "node", node->id);
		prom_value_uint(p, node->state == SHOAL__NODE__STATE__ONLINE);
	}
	prom_family(p, "shoal_node_last_seen_timestamp_seconds", "gauge",
	    "When a node was last heard from, in unixtime.");
	for (size_t i = 0; i < n; i++) {
		const Shoal__Node *node = registry_at(c->reg, i);

		prom_begin(p, "shoal_node_last_seen_timestamp_seconds");
		prom_label(p, "node", node->id);
		prom_value(p, (double)node->last_seen_ms / 1000);
	}
	prom_family(p, "shoal_node_outbox_depth", "gauge",
	    "Events a node's agent holds that the coordinator has not "
	    "acknowledged.");
	for (size_t i = 0; i < n; i++) {
		const Shoal__Node *node = registry_at(c->reg, i);

		prom_begin(p, "shoal_node_outbox_depth");
		prom_label(p, "node", node->id);
		prom_value_uint(p, node->outbox_depth);
	}
	node_family(c, p, "shoal_node_cpu_usage_ratio",
	    "A node's CPU use between its last two samples (0 to 1).", fig_cpu);
	node_family(c, p, "shoal_node_load1", "A node's 1m load average.",
	    fig_load1);
	node_family(c, p, "shoal_node_memory_available_bytes",
	    "A node's available memory.", fig_mem_avail);
	node_family(c, p, "shoal_node_memory_total_bytes", "A node's memory.",
	    fig_mem_total);
	node_family(c, p, "shoal_node_gpus", "GPUs NVML reports on a node.",
	    fig_gpus);
	node_family(c, p, "shoal_node_gpu_usage_ratio",
	    "A node's mean GPU utilisation (0 to 1).", fig_gpu);
	node_family(c, p, "shoal_node_gpu_memory_used_bytes",
	    "GPU memory in use on a node, all its GPUs.", fig_gpu_used);
	node_family(c, p, "shoal_node_gpu_memory_total_bytes",
	    "GPU memory on a node, all its GPUs.", fig_gpu_total);
	prom_process(p, "shoal-coordinator");
	return 200;
}

#define META_CURVE_PUBLIC "curve.public"
#define META_CURVE_SECRET "curve.secret"

/*
 * The coordinator's key pair. It is kept in the store as well as in
 * STATE_DIR/coordinator.key, so that a backup carries it: a coordinator
 * restored from one (on a new host, say) keeps the key every agent pinned.
 * The store's copy wins; the files are written from it when they are
 * missing or say another key. A store without one (the first start) takes
 * the files' pair, or a new one.
 */
static int
load_own_keys(coordinator_t *c)
{
	char *secret = xasprintf("%s/coordinator.key", c->opts->state_dir);
	char *public = xasprintf("%s/coordinator.pub", c->opts->state_dir);
	curve_keys_t stored = { { 0 } }, files;
	store_txn_t *txn = NULL;
	const void *pv = NULL, *sv = NULL;
	size_t pn = 0, sn = 0;
	char err[512];
	int r, have = 0;

	r = store_begin(c->store, false, &txn);
	if (r == 0 &&
	    store_get(txn, DB_META, META_CURVE_PUBLIC,
	        strlen(META_CURVE_PUBLIC), &pv, &pn) == 0 &&
	    store_get(txn, DB_META, META_CURVE_SECRET,
	        strlen(META_CURVE_SECRET), &sv, &sn) == 0 &&
	    pn == CURVE_KEY_LEN && sn == CURVE_KEY_LEN) {
		memcpy(stored.public_key, pv, CURVE_KEY_LEN);
		memcpy(stored.secret_key, sv, CURVE_KEY_LEN);
		have = curve_keys_check(&stored) == 0;
	}
	store_abort(&txn);
	if (have) {
		if (curve_keys_load(secret, &files, err, sizeof err) < 0 ||
		    strcmp(files.public_key, stored.public_key) != 0) {
			if (access(secret, F_OK) == 0)
				log_warning(
				    "%s does not hold the key in the "
				    "state store (restored from a "
				    "backup?): rewritten from the store",
				    secret);
			r = curve_keys_save(secret, public, &stored, err,
			    sizeof err);
		} else {
			/* coordinator.pub is rewritten if it drifted. */
			r = curve_keys_load_or_create(secret, public, &files,
			    err, sizeof err);
		}
		c->curve = stored;
	} else {
		r = curve_keys_load_or_create(secret, public, &c->curve, err,
		    sizeof err);
		if (r == 0) {
			r = store_begin(c->store, true, &txn);
			if (r == 0)
				r = store_put(txn, DB_META, META_CURVE_PUBLIC,
				    strlen(META_CURVE_PUBLIC),
				    c->curve.public_key, CURVE_KEY_LEN);
			if (r == 0)
				r = store_put(txn, DB_META, META_CURVE_SECRET,
				    strlen(META_CURVE_SECRET),
				    c->curve.secret_key, CURVE_KEY_LEN);
			if (r == 0)
				r = store_commit(&txn);
			store_abort(&txn);
			if (r < 0)
				snprintf(err, sizeof err,
				    "cannot keep the key pair in the state "
				    "store: %s",
				    shoal_strerror(r));
		}
	}
	if (r < 0)
		log_error("%s", err);
	explicit_bzero(&stored, sizeof stored);
	explicit_bzero(&files, sizeof files);
	free(secret);
	free(public);
	return r;
}

int
coordinator_new(const coord_options_t *opts, coordinator_t **ret)
{
	coordinator_t *c = xcalloc(1, sizeof *c);
	int r;

	c->opts = opts;
	r = store_open(opts->state_dir, registry_dbs, registry_ndbs,
	    REGISTRY_SCHEMA, STORE_MAP_BYTES, &c->store);
	if (r < 0) {
		log_error("cannot open the state store in %s: %s",
		    opts->state_dir, shoal_strerror(r));
		goto fail;
	}
	r = registry_open(c->store, &c->reg);
	if (r < 0) {
		log_error("cannot load the node registry from %s: %s",
		    opts->state_dir, shoal_strerror(r));
		goto fail;
	}
	r = services_open(c->store, c->reg, &c->svc);
	if (r < 0) {
		log_error("cannot load services from %s: %s", opts->state_dir,
		    shoal_strerror(r));
		goto fail;
	}
	r = keyring_open(c->store, &c->keys);
	if (r < 0) {
		log_error("cannot load the node keys from %s: %s",
		    opts->state_dir, shoal_strerror(r));
		goto fail;
	}
	keyring_set_operators_file(c->keys, opts->operator_keys);
	r = load_own_keys(c);
	if (r < 0)
		goto fail;
	c->loop = zloop_new();
	/* Before any CurveZMQ socket: without a ZAP handler libzmq lets
	 * every handshake through. */
	r = curve_zap_new(c->loop, zap_decide, c, &c->zap);
	if (r < 0) {
		log_error("cannot start the ZAP handler: %s", zmq_strerror(-r));
		goto fail;
	}
	c->control_curve = strncmp(opts->control, "tcp://", 6) == 0;
	r = bind_socket(c, &c->router, ZMQ_ROUTER, "agent", opts->listen,
	    ZAP_AGENTS);
	if (r == 0)
		r = bind_socket(c, &c->pub, ZMQ_PUB, "doorbell", opts->publish,
		    ZAP_DOORBELLS);
	if (r == 0)
		r = bind_socket(c, &c->control, ZMQ_ROUTER, "control",
		    opts->control, c->control_curve ? ZAP_CONTROL : NULL);
	if (r == 0 && strcmp(opts->remote_control, "off") != 0)
		r = bind_socket(c, &c->remote, ZMQ_ROUTER, "remote control",
		    opts->remote_control, ZAP_CONTROL);
	if (r < 0)
		goto fail;

	zloop_reader(c->loop, c->router, on_agent_readable, c);
	zloop_reader(c->loop, c->control, on_control_readable, c);
	if (c->remote)
		zloop_reader(c->loop, c->remote, on_control_readable, c);
	zloop_timer(c->loop, SWEEP_MS, 0, on_sweep, c);
	zloop_timer(c->loop, FLUSH_MS, 0, on_flush, c);
	if (strcmp(opts->metrics_listen, "off") != 0) {
		char err[512];

		r = httpd_new(c->loop, opts->metrics_listen, on_metrics, c,
		    &c->httpd, err, sizeof err);
		if (r < 0) {
			log_error("%s (--metrics-listen, or off)", err);
			goto fail;
		}
	}
	{
		char where[300];

		httpd_describe(c->httpd, opts->metrics_listen, where,
		    sizeof where);
		log_info(
		    "coordinator %s: %zu nodes known; agents on %s, doorbells "
		    "on %s, control on %s%s%s, metrics %s",
		    PACKAGE_VERSION, registry_count(c->reg), opts->listen,
		    opts->publish, opts->control, c->remote ? " and " : "",
		    c->remote ? opts->remote_control : "", where);
		log_info("CurveZMQ key %s (%s/coordinator.pub); %zu keys wait "
		         "for acceptance%s",
		    c->curve.public_key, opts->state_dir,
		    keyring_pending(c->keys),
		    opts->enroll_token[0] ? "; the enrollment token accepts "
		                            "agents"
		                          : "");
		if (c->remote && !opts->operator_keys[0])
			log_warning("--remote-control without --operator-keys: "
			            "no operator can use it");
	}
	*ret = c;
	return 0;
fail:
	coordinator_destroy(&c);
	return r;
}

int
coordinator_run(coordinator_t *c, lifecycle_reload_fn reload, void *arg)
{
	lifecycle_t *lc;
	int r = lifecycle_new(c->loop, reload, arg, &lc);

	if (r < 0) {
		log_error("cannot read signals: %s", strerror(-r));
		return r;
	}
	/* coordinator_new() opened the store and bound every endpoint. */
	update_status(c);
	lifecycle_ready(lc);
	zloop_start(c->loop);
	lifecycle_destroy(&lc);
	log_info("shutting down");
	return 0;
}

void
coordinator_reconfigured(coordinator_t *c, uint64_t changed)
{
	int ops = config_field_index(coord_config_fields, "operator_keys");

	log_set_level(log_level_from_name(c->opts->log_level));
	if (changed & (1ULL << ops))
		keyring_set_operators_file(c->keys, c->opts->operator_keys);
	/* enroll_token, offline_after and missed_heartbeats are read from
	 * the options where they are used. */
	if (c->remote && !c->opts->operator_keys[0])
		log_warning("--remote-control without --operator-keys: no "
		            "operator can use it");
}

void
coordinator_destroy(coordinator_t **cp)
{
	coordinator_t *c = *cp;
	int r;

	if (!c)
		return;
	if (c->reg) {
		r = registry_flush(c->reg);
		if (r < 0)
			log_error("cannot write node figures: %s",
			    shoal_strerror(r));
	}
	httpd_destroy(&c->httpd);
	curve_zap_destroy(&c->zap);
	zloop_destroy(&c->loop);
	zsock_destroy(&c->router);
	zsock_destroy(&c->pub);
	zsock_destroy(&c->remote);
	if (c->control) {
		zsock_destroy(&c->control);
		/* A stale socket file would make shoalctl wait for a reply
		 * instead of saying at once that nobody listens. */
		if (strncmp(c->opts->control, "ipc://", 6) == 0)
			unlink(c->opts->control + 6);
	}
	services_close(&c->svc);
	keyring_close(&c->keys);
	explicit_bzero(&c->curve, sizeof c->curve);
	registry_close(&c->reg);
	store_close(&c->store);
	free(c);
	*cp = NULL;
}
