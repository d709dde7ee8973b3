/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness of the config loader (common/config.c). config_load()
 * reads a file by path and has no buffer form, so each input is written to
 * a memfd and loaded through /proc/self/fd/N, twice: against the agent's
 * table and against the coordinator's. The tables live in agent/agent.c
 * and coordinator/coordinator.c with the daemons around them; the copies
 * below repeat their keys, types and bounds (with the real validators)
 * over a target of plain slots, and scripts/fuzz.sh warns when the keys
 * drift apart. Beyond "no crash, no leak, no undefined behaviour" it
 * checks the loader's promises, and aborts (a finding) when one breaks:
 *  - a refused file gives SHOAL_E_CONFIG, an error naming the file, and
 *    leaves the target exactly as it was;
 *  - an accepted file sets only values within the table's bounds, strings
 *    its validators accept and labels that are valid and distinct;
 *  - config_free() releases every value and clears the pointers.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/artifacts.h"
#include "agent/snapshots.h"
#include "common/config.h"
#include "common/curve.h"
#include "common/error.h"
#include "common/httpd.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STRING_MAX 4096 /* common/config.c's CONFIG_STRING_MAX */

/* A broken rule: say which, then abort so libFuzzer keeps the input. */
#define CHECK(cond)                                                    \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr,                                \
			    "fuzz_config: %s:%d: check '%s' failed\n", \
			    __FILE__, __LINE__, #cond);                \
			abort();                                       \
		}                                                      \
	} while (0)

/* Room for either table: one slot a field, by type. */
typedef struct target {
	char *str[16];
	uint64_t num[16];
	labels_t labels[2];
} target_t;

#define STR(i) offsetof(target_t, str[i])
#define NUM(i) offsetof(target_t, num[i])
#define LABELS(i) offsetof(target_t, labels[i])

/* agent/agent.c's agent_config_fields. */
static const config_field_t agent_fields[] = {
	{ "node_id", CONFIG_STRING, STR(0), 0, 0, node_id_valid,
	    "1-63 of [A-Za-z0-9._-], starting with a letter or digit" },
	{ "labels", CONFIG_LABELS, LABELS(0) },
	{ "coordinator", CONFIG_STRING, STR(1) },
	{ "doorbell", CONFIG_STRING, STR(2) },
	{ "coordinator_key", CONFIG_STRING, STR(10) },
	{ "enroll_token", CONFIG_STRING, STR(11), 0, 0, curve_token_valid,
	    CURVE_TOKEN_EXPECT },
	{ "state_dir", CONFIG_STRING, STR(3) },
	{ "heartbeat", CONFIG_DURATION, NUM(0), 50, 3600 * 1000 },
	{ "runtime_socket", CONFIG_STRING, STR(4) },
	{ "log_level", CONFIG_STRING, STR(5), 0, 0, log_level_valid,
	    LOG_LEVEL_EXPECT },
	{ "artifact_cache_budget", CONFIG_SIZE, NUM(1) },
	{ "artifact_downloads", CONFIG_UINT, NUM(2), 1,
	    ARTIFACTS_DOWNLOADS_MAX },
	{ "artifact_stall_timeout", CONFIG_DURATION, NUM(3), 1000,
	    3600 * 1000 },
	{ "artifact_attempts", CONFIG_UINT, NUM(4), 1, 100 },
	{ "artifact_ca_file", CONFIG_STRING, STR(6) },
	{ "artifact_file_root", CONFIG_STRING, STR(7) },
	{ "metrics_listen", CONFIG_STRING, STR(8), 0, 0, httpd_listen_valid,
	    HTTPD_LISTEN_EXPECT },
	{ "metrics_interval", CONFIG_DURATION, NUM(5), 1000, 3600 * 1000 },
	{ "nvml_library", CONFIG_STRING, STR(9) },
	{ "snapshot_keep", CONFIG_UINT, NUM(6), 1, SNAPSHOTS_KEEP_MAX },
	{ "snapshot_keep_days", CONFIG_UINT, NUM(7), 0, 3650 },
	{ NULL },
};

/* coordinator/coordinator.c's coord_config_fields. */
static const config_field_t coord_fields[] = {
	{ "state_dir", CONFIG_STRING, STR(0) },
	{ "listen", CONFIG_STRING, STR(1) },
	{ "publish", CONFIG_STRING, STR(2) },
	{ "control", CONFIG_STRING, STR(3) },
	{ "offline_after", CONFIG_DURATION, NUM(0), 0, 24ULL * 3600 * 1000 },
	{ "missed_heartbeats", CONFIG_UINT, NUM(1), 1, 1000 },
	{ "log_level", CONFIG_STRING, STR(4), 0, 0, log_level_valid,
	    LOG_LEVEL_EXPECT },
	{ "metrics_listen", CONFIG_STRING, STR(5), 0, 0, httpd_listen_valid,
	    HTTPD_LISTEN_EXPECT },
	{ "remote_control", CONFIG_STRING, STR(6) },
	{ "enroll_token", CONFIG_STRING, STR(7), 0, 0, curve_token_valid,
	    CURVE_TOKEN_EXPECT },
	{ "operator_keys", CONFIG_STRING, STR(8) },
	{ NULL },
};

/* A number's value until the file sets one. Only a size (no maximum)
 * could be set to it, and any size passes the checks. */
#define UNSET UINT64_C(0x5eed5eed5eed5eed)

static int fd = -1;
static char path[64];
static target_t untouched;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* common/ logs at debug at most; keep even that off stderr. */
	log_set_level(-1);
	fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0) {
		perror("fuzz_config: memfd_create");
		exit(1);
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	for (size_t i = 0; i < ARRAY_SIZE(untouched.num); i++)
		untouched.num[i] = UNSET;
	return 0;
}

static void
check_labels(const labels_t *l)
{
	CHECK(l->n <= LABELS_MAX);
	for (size_t i = 0; i < l->n; i++) {
		CHECK(label_key_valid(l->v[i].key));
		CHECK(label_value_valid(l->v[i].value));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(l->v[i].key, l->v[j].key) != 0);
	}
}

/* Every value an accepted file set obeys its field's rules. */
static void
check_values(const config_field_t *fields, const target_t *t)
{
	for (const config_field_t *f = fields; f->key; f++) {
		const char *p = (const char *)t + f->offset;
		const char *s;
		uint64_t v;

		switch (f->type) {
		case CONFIG_STRING:
			s = *(char *const *)p;
			if (!s)
				break;
			CHECK(strlen(s) <= STRING_MAX);
			CHECK(!f->valid || f->valid(s));
			break;
		case CONFIG_DURATION:
		case CONFIG_SIZE:
		case CONFIG_UINT:
			v = *(const uint64_t *)p;
			if (v == UNSET)
				break;
			CHECK(v >= f->min);
			CHECK(!f->max || v <= f->max);
			break;
		case CONFIG_LABELS:
			check_labels((const labels_t *)p);
			break;
		}
	}
}

static void
load(const config_field_t *fields)
{
	target_t t = untouched;
	char err[1024];
	int r;

	memset(err, 'x', sizeof err);
	r = config_load(path, fields, &t, err, sizeof err);
	if (r < 0) {
		CHECK(r == SHOAL_E_CONFIG);
		CHECK(memcmp(&t, &untouched, sizeof t) == 0);
		CHECK(memchr(err, '\0', sizeof err) != NULL);
		CHECK(strncmp(err, path, strlen(path)) == 0);
		return;
	}
	CHECK(r == 0);
	check_values(fields, &t);
	config_free(fields, &t);
	for (size_t i = 0; i < ARRAY_SIZE(t.str); i++)
		CHECK(t.str[i] == NULL);
	for (size_t i = 0; i < ARRAY_SIZE(t.labels); i++)
		CHECK(t.labels[i].n == 0 && t.labels[i].v == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror("fuzz_config: memfd");
		abort();
	}
	load(agent_fields);
	load(coord_fields);
	return 0;
}
