/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire codec: round trips, and every kind of bad frame refused with an
 * error and a reason, never a crash: oversized, garbage, truncated, wrong
 * version, missing body, and fields that break their rules.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "common/wire.h"
#include "tests/tap.h"

static Shoal__Label lab1 = SHOAL__LABEL__INIT, lab2 = SHOAL__LABEL__INIT;
static Shoal__Label *hello_labels[2] = { &lab1, &lab2 };
static Shoal__Facts facts = SHOAL__FACTS__INIT;
static Shoal__Hello hello = SHOAL__HELLO__INIT;

static void
make_hello(Shoal__Envelope *env)
{
	shoal__envelope__init(env);
	lab1.key = "gpu";
	lab1.value = "a100";
	lab2.key = "rack";
	lab2.value = "r3";
	facts.hostname = "gpu-01";
	facts.cpus = 64;
	hello.agent_version = "0.1.0";
	hello.labels = hello_labels;
	hello.n_labels = 2;
	hello.facts = &facts;
	hello.heartbeat_ms = 5000;
	hello.store_id = "abc";
	env->version = SHOAL_PROTOCOL_VERSION;
	env->node_id = "gpu-01";
	env->body_case = SHOAL__ENVELOPE__BODY_HELLO;
	env->hello = &hello;
}

/* Packs env and expects wire_unpack to refuse it with code. */
static void
refused(Shoal__Envelope *env, int code, const char *name)
{
	Shoal__Envelope *out = NULL;
	const char *why = NULL;
	uint8_t *buf;
	size_t n;
	int r;

	n = shoal__envelope__get_packed_size(env);
	buf = xmalloc(n);
	shoal__envelope__pack(env, buf);
	r = wire_unpack(buf, n, &out, &why);
	free(buf);
	if (!ok(r == code && out == NULL && why && *why, name))
		diag("got %d (%s), want %d", r, why ? why : "no reason", code);
	if (r == 0)
		shoal__envelope__free_unpacked(out, NULL);
}

static void
test_roundtrips(void)
{
	Shoal__Envelope env, *out;
	Shoal__Event ev = SHOAL__EVENT__INIT;
	Shoal__ControlRequest cr = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__GetNode gn = SHOAL__GET_NODE__INIT;
	Shoal__ControlReply rep = SHOAL__CONTROL_REPLY__INIT;
	Shoal__Node node = SHOAL__NODE__INIT, *nodes[1] = { &node };
	uint8_t *buf;
	size_t n;
	zframe_t *f;

	make_hello(&env);
	is_int(wire_pack(&env, &buf, &n), 0, "pack a hello");
	is_int(wire_unpack(buf, n, &out, NULL), 0, "unpack it");
	free(buf);
	ok(strcmp(out->node_id, "gpu-01") == 0 &&
	        out->body_case == SHOAL__ENVELOPE__BODY_HELLO &&
	        out->hello->n_labels == 2 &&
	        strcmp(out->hello->labels[1]->value, "r3") == 0 &&
	        out->hello->facts->cpus == 64,
	    "the hello round-trips");
	is_str(wire_body_name(out), "hello", "wire_body_name");
	shoal__envelope__free_unpacked(out, NULL);

	f = wire_frame(&env);
	ok(wire_unpack(zframe_data(f), zframe_size(f), &out, NULL) == 0 &&
	        out->hello->heartbeat_ms == 5000,
	    "wire_frame carries the same envelope");
	shoal__envelope__free_unpacked(out, NULL);
	zframe_destroy(&f);

	ev.seq = 7;
	ev.kind = "agent.started";
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
	env.event = &ev;
	f = wire_frame(&env);
	ok(wire_unpack(zframe_data(f), zframe_size(f), &out, NULL) == 0 &&
	        out->event->seq == 7,
	    "an event round-trips");
	shoal__envelope__free_unpacked(out, NULL);
	zframe_destroy(&f);

	gn.id = "gpu-01";
	cr.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_NODE;
	cr.get_node = &gn;
	env.node_id = "";
	env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REQUEST;
	env.control_request = &cr;
	f = wire_frame(&env);
	ok(wire_unpack(zframe_data(f), zframe_size(f), &out, NULL) == 0 &&
	        strcmp(out->control_request->get_node->id, "gpu-01") == 0,
	    "a control request round-trips");
	shoal__envelope__free_unpacked(out, NULL);
	zframe_destroy(&f);

	node.id = "gpu-01";
	node.state = SHOAL__NODE__STATE__ONLINE;
	rep.nodes = nodes;
	rep.n_nodes = 1;
	env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REPLY;
	env.control_reply = &rep;
	f = wire_frame(&env);
	ok(wire_unpack(zframe_data(f), zframe_size(f), &out, NULL) == 0 &&
	        out->control_reply->n_nodes == 1 &&
	        out->control_reply->nodes[0]->state ==
	            SHOAL__NODE__STATE__ONLINE,
	    "a control reply round-trips");
	shoal__envelope__free_unpacked(out, NULL);
	zframe_destroy(&f);
}

static void
test_bad_frames(void)
{
	Shoal__Envelope env, *out = NULL;
	const char *why = NULL;
	uint8_t *buf, *big;
	size_t n;
	unsigned crashed_not = 0, refused_n = 0;

	big = xcalloc(1, WIRE_MAX_FRAME + 1);
	is_int(wire_unpack(big, WIRE_MAX_FRAME + 1, &out, &why),
	    SHOAL_E_FRAME_TOO_BIG, "a frame above the cap is refused");
	ok(out == NULL && why && *why, "with a reason and no result");
	free(big);
	is_int(wire_unpack("", 0, &out, &why), SHOAL_E_PROTOCOL,
	    "an empty frame carries no protocol version");

	/* Random bytes: refused or (rarely) valid, never a crash. */
	srandom(1);
	for (int i = 0; i < 5000; i++) {
		uint8_t junk[300];
		size_t len = (size_t)random() % sizeof junk;

		for (size_t k = 0; k < len; k++)
			junk[k] = (uint8_t)random();
		out = NULL;
		if (wire_unpack(junk, len, &out, NULL) < 0)
			refused_n++;
		else
			shoal__envelope__free_unpacked(out, NULL);
		crashed_not++;
	}
	is_int(crashed_not, 5000, "5000 random frames decode without a crash");
	ok(refused_n > 4900, "and nearly all are refused");

	/* Every truncation of a valid hello. */
	make_hello(&env);
	wire_pack(&env, &buf, &n);
	refused_n = 0;
	for (size_t len = 0; len < n; len++) {
		out = NULL;
		if (wire_unpack(buf, len, &out, NULL) < 0)
			refused_n++;
		else
			shoal__envelope__free_unpacked(out, NULL);
	}
	free(buf);
	ok(refused_n == n, "every truncation of a hello is refused");

	make_hello(&env);
	env.version = 99;
	refused(&env, SHOAL_E_PROTOCOL, "a wrong protocol version");
	make_hello(&env);
	env.body_case = SHOAL__ENVELOPE__BODY__NOT_SET;
	refused(&env, SHOAL_E_INVALID, "an envelope without a body");
	make_hello(&env);
	env.node_id = "";
	refused(&env, SHOAL_E_INVALID, "a hello without a node id");
	make_hello(&env);
	env.node_id = "../etc/passwd";
	refused(&env, SHOAL_E_INVALID, "a node id with a path");
	{
		char id[65];

		memset(id, 'a', 64);
		id[64] = '\0';
		make_hello(&env);
		env.node_id = id;
		refused(&env, SHOAL_E_INVALID, "a 64-character node id");
	}
	make_hello(&env);
	lab1.key = "bad key";
	refused(&env, SHOAL_E_INVALID, "an invalid label key");
	make_hello(&env);
	lab2.key = "gpu";
	refused(&env, SHOAL_E_INVALID, "duplicate label keys");
	{
		Shoal__Label many[LABELS_MAX + 1], *mp[LABELS_MAX + 1];
		char keys[LABELS_MAX + 1][8];

		for (int i = 0; i <= LABELS_MAX; i++) {
			shoal__label__init(&many[i]);
			snprintf(keys[i], sizeof keys[i], "k%d", i);
			many[i].key = keys[i];
			many[i].value = "v";
			mp[i] = &many[i];
		}
		make_hello(&env);
		hello.labels = mp;
		hello.n_labels = LABELS_MAX + 1;
		refused(&env, SHOAL_E_INVALID, "too many labels");
	}
	make_hello(&env);
	hello.heartbeat_ms = 0;
	refused(&env, SHOAL_E_INVALID, "a zero heartbeat interval");
	{
		char *longtext = xcalloc(1, WIRE_MAX_STRING + 2);

		memset(longtext, 'x', WIRE_MAX_STRING + 1);
		make_hello(&env);
		facts.os = longtext;
		refused(&env, SHOAL_E_INVALID, "an over-long fact");
		facts.os = (char *)protobuf_c_empty_string;
		free(longtext);
	}
	{
		Shoal__Event ev = SHOAL__EVENT__INIT;
		char *msg = xcalloc(1, WIRE_MAX_MESSAGE + 2);

		make_hello(&env);
		env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
		env.event = &ev;
		ev.kind = "k";
		refused(&env, SHOAL_E_INVALID, "an event with sequence 0");
		ev.seq = 1;
		ev.kind = "";
		refused(&env, SHOAL_E_INVALID, "an event without a kind");
		ev.kind = "k";
		memset(msg, 'm', WIRE_MAX_MESSAGE + 1);
		ev.message = msg;
		refused(&env, SHOAL_E_INVALID, "an over-long event message");
		free(msg);
	}
	{
		Shoal__ControlRequest cr = SHOAL__CONTROL_REQUEST__INIT;
		Shoal__GetNode gn = SHOAL__GET_NODE__INIT;

		make_hello(&env);
		gn.id = "no such/node";
		cr.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_NODE;
		cr.get_node = &gn;
		env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REQUEST;
		env.control_request = &cr;
		refused(&env, SHOAL_E_INVALID,
		    "a control request for a bad id");
		cr.req_case = SHOAL__CONTROL_REQUEST__REQ__NOT_SET;
		refused(&env, SHOAL_E_INVALID, "an empty control request");
	}
	is_int(wire_pack(&env, &buf, &n), 0, "pack works on any envelope");
	free(buf);
}

int
main(void)
{
	test_roundtrips();
	test_bad_frames();
	return done_testing();
}
