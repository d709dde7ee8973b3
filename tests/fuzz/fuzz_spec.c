/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness of the service spec parser (common/spec.c): each input
 * is a spec file's text, given to spec_parse(), the buffer behind
 * spec_load(). Beyond "no crash, no leak, no undefined behaviour" it checks
 * the parser's promises, and aborts (a finding) when one breaks:
 *  - a refused spec gives SHOAL_E_CONFIG, one line of error naming the
 *    file, and leaves *ret alone; and the parser refused it itself, not
 *    its closing spec_validate() (which would mean the two disagree);
 *  - an accepted spec passes spec_validate() (the coordinator's check of
 *    what arrives), and survives the wire: packed, unpacked and validated
 *    again it packs to the same bytes (the coordinator hashes the packed
 *    spec, so one spec must have one packing).
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/spec.h"
#include "common/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

/* A broken rule: say which, then abort so libFuzzer keeps the input. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			    "fuzz_spec: %s:%d: check '%s' failed\n", __FILE__, \
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

static uint8_t *
pack(const Shoal__ServiceSpec *spec, size_t *ret_len)
{
	size_t n = shoal__service_spec__get_packed_size(spec);
	uint8_t *buf = xmalloc(n + 1);

	CHECK(shoal__service_spec__pack(spec, buf) == n);
	*ret_len = n;
	return buf;
}

static void
accepted(const Shoal__ServiceSpec *spec)
{
	Shoal__ServiceSpec *back;
	const char *why = NULL;
	uint8_t *buf, *again;
	size_t len, len_again;

	if (spec_validate(spec, &why) < 0)
		fprintf(stderr, "fuzz_spec: parsed spec refused: %s\n", why);
	CHECK(spec_validate(spec, NULL) == 0);

	buf = pack(spec, &len);
	back = shoal__service_spec__unpack(NULL, len, buf);
	CHECK(back != NULL);
	if (spec_validate(back, &why) < 0)
		fprintf(stderr, "fuzz_spec: unpacked spec refused: %s\n", why);
	CHECK(spec_validate(back, NULL) == 0);
	again = pack(back, &len_again);
	CHECK(len_again == len && memcmp(again, buf, len) == 0);
	free(again);
	free(buf);
	shoal__service_spec__free_unpacked(back, NULL);
}

/*
 * spec_parse()'s own checks should imply spec_validate()'s; when they do
 * not, its closing call refuses the spec with "NAME:LINE: spec refused:
 * WHY" (a field named so in the file gives "NAME:LINE: field '...").
 */
static bool
validate_refused(const char *err)
{
	const char *p = err + strlen(NAME ":");

	while (*p >= '0' && *p <= '9')
		p++;
	return strncmp(p, ": spec refused: ", 16) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Shoal__ServiceSpec *sentinel = (Shoal__ServiceSpec *)&sentinel;
	Shoal__ServiceSpec *spec = sentinel;
	char err[512];
	int r;

	memset(err, 'x', sizeof err);
	r = spec_parse(NAME, (const char *)data, size, &spec, err, sizeof err);
	if (r < 0) {
		CHECK(r == SHOAL_E_CONFIG);
		CHECK(spec == sentinel);
		CHECK(memchr(err, '\0', sizeof err) != NULL);
		CHECK(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
		CHECK(strchr(err, '\n') == NULL);
		CHECK(!validate_refused(err));
		return 0;
	}
	CHECK(r == 0 && spec && spec != sentinel);
	accepted(spec);
	spec_free(spec);
	return 0;
}
