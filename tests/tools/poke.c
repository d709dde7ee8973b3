/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poke: a hostile peer for the integration tests. Connects a DEALER to a
 * shoal endpoint and sends frames no honest agent sends: random bytes, an
 * oversized frame, a wrong protocol version, too many frames, a Hello with
 * a bad node id, an event for an unknown node. It prints how many replies
 * came back; the test then checks the daemon still serves.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "common/wire.h"

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

int
main(int argc, char **argv)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	Shoal__Event ev = SHOAL__EVENT__INIT;
	Shoal__Label lab = SHOAL__LABEL__INIT, *labs[1] = { &lab };
	unsigned replies = 0, sent = 0;
	zsock_t *s;
	uint8_t *big;
	zmsg_t *m;

	if (argc != 2) {
		fprintf(stderr, "usage: poke ENDPOINT\n");
		return 2;
	}
	zsys_init();
	zsys_set_logstream(NULL);
	s = zsock_new(ZMQ_DEALER);
	zsock_set_linger(s, 1000);
	zsock_set_rcvtimeo(s, 500);
	if (zsock_connect(s, "%s", argv[1]) < 0) {
		fprintf(stderr, "poke: cannot connect to %s\n", argv[1]);
		return 1;
	}
	srandom(42);
	/* random bytes of random sizes */
	for (int i = 0; i < 200; i++, sent++) {
		uint8_t buf[512];
		size_t n = (size_t)random() % sizeof buf;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)random();
		send_frame(s, buf, n);
	}
	/* a frame above the cap */
	big = calloc(1, WIRE_MAX_FRAME + 1);
	send_frame(s, big, WIRE_MAX_FRAME + 1);
	free(big);
	sent++;
	/* three frames in one message */
	m = zmsg_new();
	zmsg_addstr(m, "a");
	zmsg_addstr(m, "b");
	zmsg_addstr(m, "c");
	zmsg_send(&m, s);
	sent++;
	/* a wrong protocol version */
	env.version = 99;
	env.node_id = "poke";
	env.body_case = SHOAL__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &(Shoal__Heartbeat)SHOAL__HEARTBEAT__INIT;
	send_env(s, &env);
	sent++;
	/* a Hello with a node id the coordinator must refuse */
	env.version = SHOAL_PROTOCOL_VERSION;
	env.node_id = "../../etc/passwd";
	env.body_case = SHOAL__ENVELOPE__BODY_HELLO;
	hello.heartbeat_ms = 1000;
	hello.agent_version = "poke";
	hello.store_id = "x";
	env.hello = &hello;
	send_env(s, &env);
	sent++;
	/* a Hello with a bad label */
	env.node_id = "poke";
	lab.key = "bad key";
	lab.value = "v";
	hello.labels = labs;
	hello.n_labels = 1;
	send_env(s, &env);
	sent++;
	/* an event from a node that never said Hello */
	env.node_id = "never-registered";
	env.body_case = SHOAL__ENVELOPE__BODY_EVENT;
	ev.seq = 1;
	ev.kind = "x";
	ev.service = "";
	ev.message = "";
	env.event = &ev;
	send_env(s, &env);
	sent++;
	/* a reply-only message sent the wrong way */
	env.body_case = SHOAL__ENVELOPE__BODY_DOORBELL;
	env.doorbell = &(Shoal__Doorbell)SHOAL__DOORBELL__INIT;
	send_env(s, &env);
	sent++;

	for (;;) {
		zframe_t *f = zframe_recv(s);

		if (!f)
			break;
		replies++;
		zframe_destroy(&f);
	}
	printf("sent %u, replies %u\n", sent, replies);
	zsock_destroy(&s);
	return 0;
}
