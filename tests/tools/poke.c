/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poke: a hostile peer for the integration tests. Connects DEALER sockets to
 * the coordinator's agent endpoint and sends what no honest agent sends:
 * random bytes, a wrong protocol version, forged and invalid Hellos, text
 * with control characters, figures that are not numbers, a reply-only
 * message, a message of three frames and, on a socket of its own, a frame
 * above the size cap. Each single frame must be answered with an Error of
 * the expected code; the multi-frame message and the oversized frame must
 * get no answer. It speaks CurveZMQ with a key of its own, which the
 * coordinator has never accepted: it may enrol (pending) but speak for no
 * node, its key binds one node id, a peer without the coordinator's key or
 * without CurveZMQ gets nowhere, and --flood N sends N Hellos with random
 * node ids on its key and N more each from a new key (the pending cap).
 * Prints one line per check and exits 1 if any failed.
 */
#include "autoconf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/wire.h"

static unsigned failures;

static void
report(int good, const char *what)
{
	printf("%s: %s\n", good ? "pass" : "FAIL", what);
	if (!good)
		failures++;
}

static void
send_frame(zsock_t *s, const void *buf, size_t n)
{
	zframe_t *f = zframe_new(buf, n);

	zframe_send(&f, s, 0);
}

static void
send_env(zsock_t *s, Shoal__Envelope *env)
{
	zframe_t *f = wire_frame(env);

	zframe_send(&f, s, 0);
}

/* The code of the Error that came back, 0 for another reply, 1 for none. */
static int
reply_code(zsock_t *s)
{
	zframe_t *f = zframe_recv(s);
	Shoal__Envelope *in = NULL;
	int code;

	if (!f)
		return 1;
	if (wire_unpack(zframe_data(f), zframe_size(f), &in, NULL) < 0)
		code = 0;
	else if (in->body_case == SHOAL__ENVELOPE__BODY_ERROR)
		code = in->error->code;
	else
		code = 0;
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	zframe_destroy(&f);
	return code;
}

static void
expect_error(zsock_t *s, Shoal__Envelope *env, int code, const char *what)
{
	int got;
	char line[256];

	send_env(s, env);
	got = reply_code(s);
	snprintf(line, sizeof line, "%s: refused with '%s'%s", what,
	    shoal_strerror(code),
	    got == code    ? ""
	        : got == 1 ? " (no reply)"
	                   : " (another reply)");
	report(got == code, line);
}

/* A key pair of the peer's own and the coordinator's public key. */
static curve_keys_t keys;
static char server_key[CURVE_KEY_LEN + 1];

static void
new_keys(curve_keys_t *k)
{
	if (zmq_curve_keypair(k->public_key, k->secret_key) != 0)
		abort();
}

/* A DEALER to ep: CurveZMQ with k trusting server (k NULL: plain). */
static zsock_t *
dealer_as(const char *ep, const curve_keys_t *k, const char *server)
{
	zsock_t *s = zsock_new(ZMQ_DEALER);

	if (!s)
		abort();
	zsock_set_linger(s, 0);
	zsock_set_rcvtimeo(s, 5000);
	if (k)
		curve_client(s, k, server);
	if (zsock_connect(s, "%s", ep) < 0) {
		fprintf(stderr, "poke: cannot connect to %s\n", ep);
		exit(2);
	}
	return s;
}

static zsock_t *
dealer(const char *ep)
{
	return dealer_as(ep, &keys, server_key);
}

static void
hello_init(Shoal__Envelope *env, Shoal__Hello *hello, Shoal__Facts *facts,
    const char *node)
{
	shoal__envelope__init(env);
	shoal__hello__init(hello);
	shoal__facts__init(facts);
	env->version = SHOAL_PROTOCOL_VERSION;
	env->node_id = (char *)node;
	env->body_case = SHOAL__ENVELOPE__BODY_HELLO;
	env->hello = hello;
	hello->heartbeat_ms = 1000;
	hello->agent_version = "poke";
	hello->store_id = "x";
	hello->facts = facts;
}

/*
 * poke --list-nodes CONTROL AFTER LIMIT: one raw ListNodes page, printed as
 * "node ID" lines and a "next ID" line, so a test sees the paging itself
 * (shoalctl joins the pages).
 */
static int
list_nodes(const char *ep, const char *after, const char *limit)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT, *in = NULL;
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListNodes ln = SHOAL__LIST_NODES__INIT;
	zsock_t *s = zsock_new(ZMQ_REQ);
	zframe_t *f;
	int r = 1;

	zsock_set_rcvtimeo(s, 5000);
	zsock_set_linger(s, 0);
	if (zsock_connect(s, "%s", ep) < 0)
		return 2;
	ln.after = (char *)after;
	ln.limit = (uint32_t)atoi(limit);
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_NODES;
	req.list_nodes = &ln;
	env.version = SHOAL_PROTOCOL_VERSION;
	env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REQUEST;
	env.control_request = &req;
	send_env(s, &env);
	f = zframe_recv(s);
	if (f && wire_unpack(zframe_data(f), zframe_size(f), &in, NULL) == 0 &&
	    in->body_case == SHOAL__ENVELOPE__BODY_CONTROL_REPLY) {
		for (size_t i = 0; i < in->control_reply->n_nodes; i++)
			printf("node %s\n", in->control_reply->nodes[i]->id);
		printf("next %s\n", in->control_reply->next);
		r = 0;
	}
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	zframe_destroy(&f);
	zsock_destroy(&s);
	return r;
}

int
main(int argc, char **argv)
{
	Shoal__Envelope env;
	Shoal__Hello hello;
	Shoal__Facts facts;
	Shoal__Heartbeat hb = SHOAL__HEARTBEAT__INIT;
	Shoal__HostFigures fig = SHOAL__HOST_FIGURES__INIT;
	Shoal__Event ev = SHOAL__EVENT__INIT;
	Shoal__Doorbell bell = SHOAL__DOORBELL__INIT;
	Shoal__DesiredStateRequest dsr = SHOAL__DESIRED_STATE_REQUEST__INIT;
	int flood = 0;
	Shoal__Label lab = SHOAL__LABEL__INIT, *labs[1] = { &lab };
	unsigned errors = 0, others = 0;
	zsock_t *s, *big_s;
	uint8_t *big;
	zmsg_t *m;
	char line[128];

	zsys_init();
	zsys_set_logstream(NULL);
	if (argc == 5 && strcmp(argv[1], "--list-nodes") == 0)
		return list_nodes(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[3], "--flood") == 0)
		flood = atoi(argv[4]);
	else if (argc != 3) {
		fprintf(stderr,
		    "usage: poke ENDPOINT COORDINATOR_PUB [--flood N]\n"
		    "       poke --list-nodes CONTROL AFTER LIMIT\n");
		return 2;
	}
	{
		char err[512];

		if (curve_public_load(argv[2], server_key, err, sizeof err) <
		    0) {
			fprintf(stderr, "poke: %s\n", err);
			return 2;
		}
	}
	new_keys(&keys);
	s = dealer(argv[1]);

	hello_init(&env, &hello, &facts, "poke");
	env.version = 99;
	expect_error(s, &env, SHOAL_E_PROTOCOL, "a wrong protocol version");

	hello_init(&env, &hello, &facts, "../../etc/passwd");
	expect_error(s, &env, SHOAL_E_INVALID,
	    "a Hello with a path for a node id");

	hello_init(&env, &hello, &facts, "poke");
	lab.key = "bad key";
	lab.value = "v";
	hello.labels = labs;
	hello.n_labels = 1;
	expect_error(s, &env, SHOAL_E_INVALID, "a Hello with a bad label");

	hello_init(&env, &hello, &facts, "poke");
	facts.hostname = "evil\033[2Jhost";
	expect_error(s, &env, SHOAL_E_INVALID,
	    "a Hello with an escape sequence in a fact");

	hello_init(&env, &hello, &facts, "poke");
	facts.os = "\xc0\xaf"
	           "etc";
	expect_error(s, &env, SHOAL_E_INVALID, "a Hello with invalid UTF-8");

	hello_init(&env, &hello, &facts, "poke");
	hello.generation = UINT64_MAX;
	expect_error(s, &env, SHOAL_E_INVALID,
	    "a Hello at the last possible generation");

	hello_init(&env, &hello, &facts, "poke");
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	hb.figures = &fig;
	fig.load1 = NAN;
	expect_error(s, &env, SHOAL_E_INVALID, "a heartbeat with a NaN load");

	hello_init(&env, &hello, &facts, "never-registered");
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
	ev.seq = 1;
	ev.kind = "x";
	env.event = &ev;
	expect_error(s, &env, SHOAL_E_DENIED,
	    "an event from a node that never said Hello");

	/* Enrolment: the key asks for node "poke" and waits; it may not
	 * speak for a real node, nor bind a second id. */
	hello_init(&env, &hello, &facts, "poke");
	hello.enroll_token = "not-the-token-0123456789";
	expect_error(s, &env, SHOAL_E_PENDING,
	    "a Hello with a wrong enrollment token: the key waits");
	hello_init(&env, &hello, &facts, "poke-2");
	expect_error(s, &env, SHOAL_E_DENIED,
	    "a second node id for the same key");
	hello_init(&env, &hello, &facts, "node-a");
	env.body_case = SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST;
	env.desired_state_request = &dsr;
	expect_error(s, &env, SHOAL_E_DENIED,
	    "a desired-state request speaking for node-a");
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
	env.event = &ev;
	ev.kind = "forged";
	ev.message = "forged by poke";
	expect_error(s, &env, SHOAL_E_DENIED, "an event speaking for node-a");
	hello_init(&env, &hello, &facts, "poke");
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	fig.load1 = 0;
	hb.figures = &fig;
	expect_error(s, &env, SHOAL_E_PENDING,
	    "a heartbeat from the pending key");
	env.body_case = SHOAL__ENVELOPE__BODY_DOORBELL;
	env.doorbell = &bell;

	env.body_case = SHOAL__ENVELOPE__BODY_DOORBELL;
	env.doorbell = &bell;
	expect_error(s, &env, SHOAL_E_UNEXPECTED,
	    "a doorbell sent to the coordinator");

	/* Three frames: dropped without an answer. The doorbell after it
	 * must get its own answer, not one for the three frames. */
	m = zmsg_new();
	zmsg_addstr(m, "a");
	zmsg_addstr(m, "b");
	zmsg_addstr(m, "c");
	zmsg_send(&m, s);
	expect_error(s, &env, SHOAL_E_UNEXPECTED,
	    "a message of three frames is dropped and the peer still served");

	/* Random bytes: each decodes to garbage or to nothing, and each is
	 * answered with an Error. */
	srandom(42);
	for (int i = 0; i < 200; i++) {
		uint8_t buf[512];
		size_t n = (size_t)random() % sizeof buf;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)random();
		send_frame(s, buf, n);
	}
	for (int i = 0; i < 200; i++) {
		int code = reply_code(s);

		if (code == 1)
			break;
		if (code < 0)
			errors++;
		else
			others++;
	}
	snprintf(line, sizeof line,
	    "200 random frames: %u refused with an Error, %u other replies",
	    errors, others);
	report(errors == 200 && others == 0, line);

	/* Above the cap: libzmq drops the connection before shoal sees the
	 * frame. On its own socket, so the checks above are unaffected. */
	big_s = dealer(argv[1]);
	zsock_set_rcvtimeo(big_s, 1000);
	big = calloc(1, WIRE_MAX_FRAME + 1);
	if (!big)
		abort();
	send_frame(big_s, big, WIRE_MAX_FRAME + 1);
	free(big);
	report(reply_code(big_s) == 1, "a frame above the cap gets no answer");
	zsock_destroy(&big_s);

	/* Without the coordinator's key, or without CurveZMQ: nothing. */
	{
		curve_keys_t other;
		zsock_t *w;

		new_keys(&other);
		w = dealer_as(argv[1], &keys, other.public_key);
		zsock_set_rcvtimeo(w, 1000);
		hello_init(&env, &hello, &facts, "poke");
		send_env(w, &env);
		report(reply_code(w) == 1,
		    "a peer that does not hold the coordinator's key gets no "
		    "answer");
		zsock_destroy(&w);
		w = dealer_as(argv[1], NULL, NULL);
		zsock_set_sndtimeo(w, 1000);
		zsock_set_rcvtimeo(w, 1000);
		send_env(w, &env);
		report(reply_code(w) == 1,
		    "a peer without CurveZMQ gets no answer");
		zsock_destroy(&w);
	}

	if (flood > 0) {
		unsigned denied = 0, pending = 0, capped = 0, other = 0;
		char id[32];

		/* One key, many node ids: all but its own are refused. */
		for (int i = 0; i < flood; i++) {
			snprintf(id, sizeof id, "flood-%08lx", random());
			hello_init(&env, &hello, &facts, id);
			send_env(s, &env);
		}
		for (int i = 0; i < flood; i++) {
			int code = reply_code(s);

			if (code == 1)
				break;
			if (code == SHOAL_E_DENIED)
				denied++;
			else
				other++;
		}
		snprintf(line, sizeof line,
		    "%d Hellos with random node ids on one key: %u refused, "
		    "%u other answers",
		    flood, denied, other);
		report(denied == (unsigned)flood && other == 0, line);
		/* Many keys, one Hello each: pending up to the cap. */
		other = 0;
		for (int i = 0; i < flood; i++) {
			curve_keys_t k;
			zsock_t *w;
			int code;

			new_keys(&k);
			w = dealer_as(argv[1], &k, server_key);
			snprintf(id, sizeof id, "flood-key-%08lx", random());
			hello_init(&env, &hello, &facts, id);
			send_env(w, &env);
			code = reply_code(w);
			if (code == SHOAL_E_PENDING)
				pending++;
			else if (code == SHOAL_E_DENIED)
				capped++;
			else
				other++;
			zsock_destroy(&w);
		}
		printf("flood: %u pending, %u refused at the cap\n", pending,
		    capped);
		snprintf(line, sizeof line,
		    "%d Hellos each from a new key: %u wait, %u refused at "
		    "the cap, %u other answers",
		    flood, pending, capped, other);
		report(other == 0 && pending + capped == (unsigned)flood, line);
	}

	/* And the first socket is still served afterwards. */
	hello_init(&env, &hello, &facts, "poke");
	env.body_case = SHOAL__ENVELOPE__BODY_DOORBELL;
	env.doorbell = &bell;
	expect_error(s, &env, SHOAL_E_UNEXPECTED,
	    "the coordinator still answers after all of it");
	zsock_destroy(&s);
	printf("%u checks failed\n", failures);
	return failures ? 1 : 0;
}
