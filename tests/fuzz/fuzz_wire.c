/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness of the wire codec (common/wire.c), which sees every
 * frame a peer sends before any daemon code does. Each input is tried as
 * an Envelope through wire_unpack(), as a stored Node record through
 * wire_node_ok(), and as peer text through wire_clean_text(). Beyond "no
 * crash, no leak, no undefined behaviour" it checks what the daemons rely
 * on, and aborts (a finding) when that breaks:
 *  - an envelope wire_unpack() accepted is named, copied and framed, and
 *    packs to a frame wire_unpack() accepts again (a frame relayed or
 *    stored and read back is as good as the first);
 *  - wire_unpack() either succeeds with an envelope or fails with a reason
 *    and leaves *ret_env alone;
 *  - text wire_clean_text() made passes the checks peer strings get, fits
 *    its cap, and a second cleaning changes nothing.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken rule: say which, then abort so libFuzzer keeps the input. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			    "fuzz_wire: %s:%d: check '%s' failed\n", __FILE__, \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* common/ logs at debug at most; keep even that off stderr. */
	log_set_level(-1);
	return 0;
}

static void
names(const Shoal__Envelope *env, int32_t v)
{
	/* The state names take whatever a decoded enum holds. */
	CHECK(wire_body_name(env) != NULL);
	CHECK(wire_service_state_name(v) != NULL);
	CHECK(wire_rollout_state_name(v) != NULL);
	CHECK(wire_rollout_node_state_name(v) != NULL);
	CHECK(wire_strategy_name(v) != NULL);
	CHECK(wire_prestage_state_name(v) != NULL);
}

static void
envelope(const uint8_t *data, size_t size)
{
	Shoal__Envelope *sentinel = (Shoal__Envelope *)&sentinel;
	Shoal__Envelope *env = sentinel, *again = sentinel, *copy;
	const char *why = NULL;
	uint8_t *buf;
	size_t len;
	zframe_t *f;
	int32_t v = 0;
	int r;

	r = wire_unpack(data, size, &env, &why);
	if (r < 0) {
		CHECK(env == sentinel);
		CHECK(why && *why);
		return;
	}
	CHECK(r == 0 && env && env != sentinel);
	memcpy(&v, data, size < sizeof v ? size : sizeof v);
	names(env, v);

	copy = wire_copy(&env->base);
	CHECK(copy && wire_validate(copy, NULL) == 0);
	shoal__envelope__free_unpacked(copy, NULL);

	f = wire_frame(env);
	CHECK(f && zframe_size(f) == shoal__envelope__get_packed_size(env));
	zframe_destroy(&f);

	r = wire_pack(env, &buf, &len);
	/* Unknown fields travel along, so a frame near the cap may grow. */
	if (r == SHOAL_E_FRAME_TOO_BIG) {
		shoal__envelope__free_unpacked(env, NULL);
		return;
	}
	CHECK(r == 0);
	r = wire_unpack(buf, len, &again, &why);
	if (r < 0)
		fprintf(stderr, "fuzz_wire: repacked frame refused: %s (%s)\n",
		    shoal_strerror(r), why ? why : "");
	CHECK(r == 0);
	CHECK(strcmp(wire_body_name(again), wire_body_name(env)) == 0);
	shoal__envelope__free_unpacked(again, NULL);
	free(buf);
	shoal__envelope__free_unpacked(env, NULL);
}

static void
node(const uint8_t *data, size_t size)
{
	Shoal__Node *n = shoal__node__unpack(NULL, size, data);
	const char *why = NULL;
	int r;

	if (!n)
		return;
	r = wire_node_ok(n, &why);
	CHECK(r == 0 || (r == SHOAL_E_INVALID && why && *why));
	CHECK(wire_node_ok(n, NULL) == r);
	shoal__node__free_unpacked(n, NULL);
}

/* Cleans s (a copy) to max and checks it as the receivers would. */
static void
clean(const char *s, size_t max, int free_text)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT;
	Shoal__Error error = SHOAL__ERROR__INIT;
	Shoal__Hello hello = SHOAL__HELLO__INIT;
	const char *why = NULL;
	char *once, *twice;

	once = xstrdup(s);
	wire_clean_text(once, max, free_text);
	CHECK(strlen(once) <= max);
	twice = xstrdup(once);
	wire_clean_text(twice, max, free_text);
	CHECK(strcmp(once, twice) == 0);

	env.version = SHOAL_PROTOCOL_VERSION;
	if (free_text && max <= WIRE_MAX_MESSAGE) {
		error.message = once;
		env.body_case = SHOAL__ENVELOPE__BODY_ERROR;
		env.error = &error;
	} else if (!free_text && max <= WIRE_MAX_STRING) {
		hello.agent_version = once;
		hello.heartbeat_ms = 5000;
		env.node_id = "fuzz";
		env.body_case = SHOAL__ENVELOPE__BODY_HELLO;
		env.hello = &hello;
	}
	if (env.body_case != SHOAL__ENVELOPE__BODY__NOT_SET) {
		if (wire_validate(&env, &why) < 0)
			fprintf(stderr, "fuzz_wire: cleaned text refused: %s\n",
			    why);
		CHECK(wire_validate(&env, NULL) == 0);
	}
	free(twice);
	free(once);
}

static void
text(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	clean(s, WIRE_MAX_STRING, 0);
	clean(s, WIRE_MAX_MESSAGE, 1);
	/* A cap inside the text: the cut lands anywhere in a character. */
	clean(s, size / 2, 0);
	clean(s, size / 3, 1);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	envelope(data, size);
	node(data, size);
	text(data, size);
	return 0;
}
