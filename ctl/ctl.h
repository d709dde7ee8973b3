/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What shoalctl's command files share: the request/reply call to the
 * coordinator, error and usage reporting, flag parsing and JSON output.
 */
#ifndef SHOAL_CTL_H
#define SHOAL_CTL_H

#include <getopt.h>
#include <stdint.h>

#include <jansson.h>

#include "shoal.pb-c.h"

#define EXIT_USAGE 2

typedef struct ctl {
	const char *control;
	uint64_t timeout_ms;
	int json;
	/* a tcp:// control endpoint: CurveZMQ with these files */
	const char *key_file;             /* --key, SHOAL_KEY */
	const char *coordinator_key_file; /* --coordinator-key, ... */
} ctl_t;

/* Prints "shoalctl: MESSAGE" on stderr; returns 1 (the failure status). */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like fail(), for a command line that cannot be run: exit status 2. */
#define usage_error(...) (fail(__VA_ARGS__), EXIT_USAGE)

/* Sends req and waits for the reply; the caller frees *ret. Returns 0, or
 * 1 after saying why on stderr (a refusal included: call_refused is then
 * set). */
int call(const ctl_t *c, Shoal__ControlRequest *req, Shoal__Envelope **ret);
extern int call_refused;
/* fail() says nothing while set (call_again() retrying). */
extern int fail_quiet;
/* call() that waits out an unreachable coordinator (a restart), for the
 * commands that follow it: --follow, --watch. */
int call_again(const ctl_t *c, Shoal__ControlRequest *req,
    Shoal__Envelope **ret);

/*
 * Parses a command's flags: --json and --help, plus extra (at most five),
 * whose values go to on_extra(ch, optarg, arg). Returns the index of the
 * first operand, -1 when --help was shown, -EXIT_USAGE on a bad flag.
 */
int parse_command_flags(int argc, char **argv, ctl_t *c, const char *help,
    const struct option *extra, int (*on_extra)(int, const char *, void *),
    void *arg);

/* Prints j (consumed) as indented JSON; returns 0 or 1. */
int print_json(json_t *j);
/* Prints j (consumed) as compact JSON on one line (NDJSON), flushed. */
int print_json_line(json_t *j);
/* RFC 3339 string for ms since the epoch, null for 0. */
json_t *time_json(uint64_t ms);
/* "5s ago", "3m ago", ... */
void ago(uint64_t ms, char *buf, size_t size);

/* A command's one operand, the service name, checked: argv[i] into *ret;
 * else the usage status after saying why. */
int service_operand(int argc, char **argv, int i, const char *help,
    const char **ret);

/* The service commands (ctl/services.c). */
int cmd_apply(ctl_t *c, int argc, char **argv);
int cmd_services(ctl_t *c, int argc, char **argv);
int cmd_status(ctl_t *c, int argc, char **argv);
int cmd_history(ctl_t *c, int argc, char **argv);
int cmd_delete(ctl_t *c, int argc, char **argv);

/* The rollout commands (ctl/rollouts.c). */
int cmd_rollout(ctl_t *c, int argc, char **argv);
int cmd_rollback(ctl_t *c, int argc, char **argv);
int cmd_plan(ctl_t *c, int argc, char **argv);
json_t *rollout_json(const Shoal__Rollout *ro);
/* What apply and rollback print about the rollout they started. */
void print_started(const ctl_t *c, const Shoal__ControlReply *cr,
    const char *name);

/* The snapshot and backup commands (ctl/snapshots.c). */
int cmd_snapshot(ctl_t *c, int argc, char **argv);
int cmd_backup(ctl_t *c, int argc, char **argv);

/* The key commands (ctl/keys.c). */
int cmd_keys(ctl_t *c, int argc, char **argv);

/* "user@host": who runs this, for the coordinator's audit log. */
const char *operator_name(void);

#endif
