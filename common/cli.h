/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line plumbing shared by the daemons: the first pass over the
 * arguments (-c FILE, --help, --version), loading the config file before
 * the flags override it, and the error lines for bad flag values.
 */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "common/config.h"

#define CLI_SHORT_OPTIONS "c:hV"
/* The daemons' exit status when their configuration cannot work (a refused
 * config file, a key file that is missing): sysexits.h's EX_CONFIG. The
 * units do not restart on it (RestartPreventExitStatus=): a restart would
 * meet the same file. */
#define CLI_EXIT_CONFIG 78
#define CLI_CONTINUE (-1)

/*
 * Finds -c FILE and answers --help (usage to stdout) and --version.
 * Returns CLI_CONTINUE, or the exit status to leave with: 0 after help or
 * version, 2 for a usage error (usage to stderr).
 */
int cli_first_pass(const char *prog, int argc, char **argv,
    const struct option *options, void (*usage)(FILE *),
    const char **ret_config);

/*
 * Loads config into target; with config NULL, loads default_path when it
 * exists. Prints "PROG: FILE:LINE: ..." and returns -1 on a refusal.
 */
int cli_load_config(const char *prog, const char *config,
    const char *default_path, const config_field_t *fields, void *target);

/* What a reload (SIGHUP) needs to read a daemon's options again as main()
 * did: the same arguments, file and table, and the options' type as
 * callbacks. */
typedef struct cli_reload {
	const char *prog;
	int argc;
	char **argv;
	const char *config; /* -c FILE; NULL: default_path when it exists */
	const char *default_path;
	const config_field_t *fields;
	const char *const *live; /* the keys a reload applies */
	size_t size;             /* of the options struct */
	void (*defaults)(void *opts);
	void (*free)(void *opts);
	int (*apply_flags)(int argc, char **argv, void *opts);
} cli_reload_t;

/*
 * Reads the defaults, the file and the flags into fresh options and moves
 * the live keys that changed into running (config_reload()). Logs what was
 * applied and what waits for a restart, or why the file was refused, in
 * which case running stays as it was. Returns config_reload()'s mask (0
 * when nothing applied).
 */
uint64_t cli_reload(const cli_reload_t *r, void *running);

/* Replaces a heap-owned string option. */
void cli_set_string(char **dst, const char *value);

/* Prints "PROG: FLAG: expected EXPECT, got 'VALUE'"; returns -EINVAL. */
int cli_bad_value(const char *prog, const char *flag, const char *value,
    const char *expect);

#endif
