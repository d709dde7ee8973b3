/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoal-coordinator: option parsing and start-up. Flags override the
 * config file, which overrides the defaults.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "common/cli.h"
#include "common/curve.h"
#include "common/error.h"
#include "common/httpd.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/util.h"
#include "coordinator/backup.h"
#include "coordinator/coordinator.h"

#define PROG "shoal-coordinator"
#define DEFAULT_CONFIG "/etc/shoal/coordinator.yaml"

enum {
	OPT_STATE_DIR = 256,
	OPT_LISTEN,
	OPT_PUBLISH,
	OPT_CONTROL,
	OPT_OFFLINE_AFTER,
	OPT_MISSED,
	OPT_LOG_LEVEL,
	OPT_METRICS_LISTEN,
	OPT_RESTORE,
	OPT_REMOTE_CONTROL,
	OPT_ENROLL_TOKEN,
	OPT_OPERATOR_KEYS,
};

/* --restore FILE: start from a backup (shoalctl backup create). */
static const char *restore_file;

static const struct option options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "publish", required_argument, NULL, OPT_PUBLISH },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "offline-after", required_argument, NULL, OPT_OFFLINE_AFTER },
	{ "missed-heartbeats", required_argument, NULL, OPT_MISSED },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "remote-control", required_argument, NULL, OPT_REMOTE_CONTROL },
	{ "enroll-token", required_argument, NULL, OPT_ENROLL_TOKEN },
	{ "operator-keys", required_argument, NULL, OPT_OPERATOR_KEYS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "Usage: shoal-coordinator [OPTION]...\n"
	    "Hold the fleet's node registry and desired state; answer agents "
	    "and shoalctl.\n"
	    "\n"
	    "  -c, --config FILE            config file "
	    "(default " DEFAULT_CONFIG ", if present)\n"
	    "      --state-dir DIR          LMDB state (default "
	    "/var/lib/shoal-coordinator)\n"
	    "      --listen EP              agents' endpoint (default "
	    "tcp://*:7400)\n"
	    "      --publish EP             doorbell endpoint (default "
	    "tcp://*:7401)\n"
	    "      --control EP             shoalctl's endpoint (default\n"
	    "                               ipc:///run/shoal/control.sock)\n"
	    "      --offline-after DURATION mark a silent node offline after "
	    "this long\n"
	    "                               (default: missed heartbeats x its "
	    "interval)\n"
	    "      --missed-heartbeats N    heartbeats a node may miss "
	    "(default "
	    "3)\n"
	    "      --log-level LEVEL        error, warning, notice, info or "
	    "debug\n"
	    "                               (default info)\n"
	    "      --metrics-listen HOST:PORT|off\n"
	    "                               the fleet's Prometheus metrics at "
	    "/metrics\n"
	    "                               (default 127.0.0.1:9465)\n"
	    "      --remote-control EP|off  a TCP control endpoint for "
	    "operators' keys\n"
	    "                               (CurveZMQ; default off)\n"
	    "      --operator-keys FILE     the operators allowed on it: "
	    "lines of\n"
	    "                               \"KEY NAME\" (shoalctl keys "
	    "generate)\n"
	    "      --enroll-token TOKEN     accept the key of an agent that "
	    "presents\n"
	    "                               TOKEN (default: every key waits "
	    "for\n"
	    "                               shoalctl keys accept)\n"
	    "      --restore FILE           first replace the state with a "
	    "backup taken by\n"
	    "                               shoalctl backup create (checked "
	    "first; the\n"
	    "                               replaced store is kept beside "
	    "it), then run\n"
	    "  -h, --help                   show this help\n"
	    "  -V, --version                show the version\n"
	    "\n"
	    "EP is a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH); DURATION "
	    "is 500ms, 10s, 5m, 1h.\n"
	    "Agents and doorbells use CurveZMQ: the coordinator keeps its key "
	    "pair in\n"
	    "STATE_DIR/coordinator.key and writes the public half to\n"
	    "STATE_DIR/coordinator.pub, which agents pin with "
	    "--coordinator-key.\n");
}

/* The second pass: flags override what the config file set. */
static int
apply_flags(int argc, char **argv, coord_options_t *o)
{
	int ch;

	while ((ch = getopt_long(argc, argv, CLI_SHORT_OPTIONS, options,
	            NULL)) != -1) {
		switch (ch) {
		case OPT_STATE_DIR:
			cli_set_string(&o->state_dir, optarg);
			break;
		case OPT_LISTEN:
			cli_set_string(&o->listen, optarg);
			break;
		case OPT_PUBLISH:
			cli_set_string(&o->publish, optarg);
			break;
		case OPT_CONTROL:
			cli_set_string(&o->control, optarg);
			break;
		case OPT_REMOTE_CONTROL:
			cli_set_string(&o->remote_control, optarg);
			break;
		case OPT_ENROLL_TOKEN:
			if (!curve_token_valid(optarg))
				return cli_bad_value(PROG, "--enroll-token",
				    optarg, CURVE_TOKEN_EXPECT);
			cli_set_string(&o->enroll_token, optarg);
			break;
		case OPT_OPERATOR_KEYS:
			cli_set_string(&o->operator_keys, optarg);
			break;
		case OPT_OFFLINE_AFTER:
			if (parse_duration_ms(optarg, &o->offline_after_ms) < 0)
				return cli_bad_value(PROG, "--offline-after",
				    optarg, "a duration like 15s");
			break;
		case OPT_MISSED:
			if (parse_uint(optarg, 1000, &o->missed_heartbeats) <
			        0 ||
			    o->missed_heartbeats == 0)
				return cli_bad_value(PROG,
				    "--missed-heartbeats", optarg,
				    "a number from 1 to 1000");
			break;
		case OPT_METRICS_LISTEN:
			if (!httpd_listen_valid(optarg))
				return cli_bad_value(PROG, "--metrics-listen",
				    optarg, HTTPD_LISTEN_EXPECT);
			cli_set_string(&o->metrics_listen, optarg);
			break;
		case OPT_RESTORE:
			restore_file = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (!log_level_valid(optarg))
				return cli_bad_value(PROG, "--log-level",
				    optarg, LOG_LEVEL_EXPECT);
			cli_set_string(&o->log_level, optarg);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* The options as cli_reload() sees them. */
static void
defaults(void *o)
{
	coord_options_defaults(o);
}

static void
free_options(void *o)
{
	coord_options_free(o);
}

static int
flags(int argc, char **argv, void *o)
{
	return apply_flags(argc, argv, o);
}

/* The keys a reload applies; the others wait for a restart. */
static const char *const live_keys[] = { "log_level", "enroll_token",
	"operator_keys", "offline_after", "missed_heartbeats", NULL };

static cli_reload_t reloading = {
	.prog = PROG,
	.default_path = DEFAULT_CONFIG,
	.fields = coord_config_fields,
	.live = live_keys,
	.size = sizeof(coord_options_t),
	.defaults = defaults,
	.free = free_options,
	.apply_flags = flags,
};

/* The daemon the reloaded options are applied to. */
static coordinator_t *running;

/* SIGHUP: the defaults, the file and the flags again, as at start-up. */
static void
reload(void *arg)
{
	coord_options_t *opts = arg;

	coordinator_reconfigured(running, cli_reload(&reloading, opts));
}

int
main(int argc, char **argv)
{
	coord_options_t opts;
	coordinator_t *c = NULL;
	const char *config;
	int r;

	/* Before any thread exists, so every thread inherits the mask. */
	r = lifecycle_block_signals();
	if (r < 0) {
		fprintf(stderr, PROG ": cannot block signals: %s\n",
		    strerror(-r));
		return 1;
	}
	r = cli_first_pass(PROG, argc, argv, options, usage, &config);
	if (r != CLI_CONTINUE)
		return r;
	coord_options_defaults(&opts);
	if (cli_load_config(PROG, config, DEFAULT_CONFIG, coord_config_fields,
	        &opts) < 0) {
		coord_options_free(&opts);
		return CLI_EXIT_CONFIG;
	}
	if (apply_flags(argc, argv, &opts) < 0) {
		coord_options_free(&opts);
		return 2;
	}

	log_open(PROG, log_level_from_name(opts.log_level));
	if (restore_file) {
		char err[1024], saved[PATH_MAX + 64];

		if (coordinator_restore(restore_file, opts.state_dir, saved,
		        sizeof saved, err, sizeof err) < 0) {
			fprintf(stderr, PROG ": cannot restore from %s: %s\n",
			    restore_file, err);
			coord_options_free(&opts);
			return 1;
		}
		log_warning("state in %s restored from the backup %s%s%s",
		    opts.state_dir, restore_file,
		    saved[0] ? "; the store it replaced is kept as " : "",
		    saved);
	}
	zsys_init();
	zsys_set_logstream(NULL);
	lifecycle_status("starting: opening %s", opts.state_dir);
	r = coordinator_new(&opts, &c);
	if (r == 0) {
		reloading.argc = argc;
		reloading.argv = argv;
		reloading.config = config;
		running = c;
		r = coordinator_run(c, reload, &opts);
		coordinator_destroy(&c);
	}
	coord_options_free(&opts);
	return r < 0 ? 1 : 0;
}
