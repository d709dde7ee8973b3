/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoal-agent: option parsing and start-up. Flags override the config
 * file, which overrides the defaults; --label flags add to or replace the
 * file's labels key by key.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <czmq.h>

#include "agent/agent.h"
#include "agent/artifacts.h"
#include "agent/gpu.h"
#include "common/httpd.h"
#include "common/cli.h"
#include "common/curve.h"
#include "common/error.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/util.h"

#define PROG "shoal-agent"
#define DEFAULT_CONFIG "/etc/shoal/agent.yaml"

enum {
	OPT_STATE_DIR = 256,
	OPT_NODE_ID,
	OPT_LABEL,
	OPT_COORDINATOR,
	OPT_DOORBELL,
	OPT_COORDINATOR_KEY,
	OPT_ENROLL_TOKEN,
	OPT_PRINT_KEY,
	OPT_HEARTBEAT,
	OPT_RUNTIME_SOCKET,
	OPT_LOG_LEVEL,
	OPT_ARTIFACT_BUDGET,
	OPT_ARTIFACT_DOWNLOADS,
	OPT_ARTIFACT_STALL,
	OPT_ARTIFACT_ATTEMPTS,
	OPT_ARTIFACT_CA_FILE,
	OPT_ARTIFACT_FILE_ROOT,
	OPT_METRICS_LISTEN,
	OPT_METRICS_INTERVAL,
	OPT_NVML_LIBRARY,
};

static const struct option options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "node-id", required_argument, NULL, OPT_NODE_ID },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "coordinator", required_argument, NULL, OPT_COORDINATOR },
	{ "doorbell", required_argument, NULL, OPT_DOORBELL },
	{ "coordinator-key", required_argument, NULL, OPT_COORDINATOR_KEY },
	{ "enroll-token", required_argument, NULL, OPT_ENROLL_TOKEN },
	{ "print-key", no_argument, NULL, OPT_PRINT_KEY },
	{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
	{ "runtime-socket", required_argument, NULL, OPT_RUNTIME_SOCKET },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "artifact-cache-budget", required_argument, NULL,
	    OPT_ARTIFACT_BUDGET },
	{ "artifact-downloads", required_argument, NULL,
	    OPT_ARTIFACT_DOWNLOADS },
	{ "artifact-stall-timeout", required_argument, NULL,
	    OPT_ARTIFACT_STALL },
	{ "artifact-attempts", required_argument, NULL, OPT_ARTIFACT_ATTEMPTS },
	{ "artifact-ca-file", required_argument, NULL, OPT_ARTIFACT_CA_FILE },
	{ "artifact-file-root", required_argument, NULL,
	    OPT_ARTIFACT_FILE_ROOT },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "metrics-interval", required_argument, NULL, OPT_METRICS_INTERVAL },
	{ "nvml-library", required_argument, NULL, OPT_NVML_LIBRARY },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "Usage: shoal-agent [OPTION]...\n"
	    "Run this node's model containers as the shoal coordinator "
	    "directs.\n"
	    "\n"
	    "  -c, --config FILE          config file (default " DEFAULT_CONFIG
	    ", if present)\n"
	    "      --state-dir DIR        LMDB state (default "
	    "/var/lib/shoal-agent)\n"
	    "      --node-id ID           this node's id (default: the host "
	    "name)\n"
	    "      --label K=V            a node label; may be repeated\n"
	    "      --coordinator EP       the coordinator (default "
	    "tcp://127.0.0.1:7400)\n"
	    "      --doorbell EP          its doorbells (default: the "
	    "coordinator's port + 1)\n"
	    "      --coordinator-key FILE the coordinator's public key, "
	    "pinned (its\n"
	    "                             STATE_DIR/coordinator.pub; default\n"
	    "                             /etc/shoal/coordinator.pub)\n"
	    "      --enroll-token TOKEN   the coordinator's enrollment token: "
	    "this\n"
	    "                             node's key is accepted at once\n"
	    "      --print-key            print this node's public key "
	    "(made on first\n"
	    "                             use in STATE_DIR/agent.key) and "
	    "exit\n"
	    "      --heartbeat DURATION   heartbeat interval (default 5s)\n"
	    "      --runtime-socket PATH  the Docker Engine API socket of "
	    "dockerd or\n"
	    "                             Podman (default /run/docker.sock)\n"
	    "      --log-level LEVEL      error, warning, notice, info or "
	    "debug\n"
	    "                             (default info)\n"
	    "\n"
	    "Model artifacts (cached in STATE_DIR/artifacts/sha256):\n"
	    "      --artifact-cache-budget SIZE\n"
	    "                             disk the cache may use, e.g. 200Gi "
	    "(default:\n"
	    "                             the file system's free space)\n"
	    "      --artifact-downloads N at once (default 2, at most 16)\n"
	    "      --artifact-stall-timeout DURATION\n"
	    "                             no data this long fails an attempt "
	    "(default 30s)\n"
	    "      --artifact-attempts N  tries per download, resumed where it "
	    "stopped\n"
	    "                             (default 5)\n"
	    "      --artifact-ca-file FILE\n"
	    "                             CA certificates for https "
	    "(default: the system's)\n"
	    "      --artifact-file-root DIR\n"
	    "                             file:// artifacts may be read "
	    "below DIR\n"
	    "                             (default: none, file:// is "
	    "refused)\n"
	    "\n"
	    "Metrics (Prometheus text format at http://HOST:PORT/metrics):\n"
	    "      --metrics-listen HOST:PORT|off\n"
	    "                             where to serve them (default "
	    "127.0.0.1:9464)\n"
	    "      --metrics-interval DURATION\n"
	    "                             how often the host is sampled "
	    "(default 5s)\n"
	    "      --nvml-library PATH|off\n"
	    "                             NVIDIA's NVML, loaded for the GPU "
	    "metrics\n"
	    "                             (default " GPU_DEFAULT_LIBRARY
	    "; without it: no GPUs)\n"
	    "\n"
	    "  -h, --help                 show this help\n"
	    "  -V, --version              show the version\n"
	    "\n"
	    "EP is a ZeroMQ endpoint (tcp://HOST:PORT); DURATION is 500ms, "
	    "10s, 5m, 1h.\n");
}

/* --print-key: print this node's public key and exit. */
static int print_key;

/* The second pass: flags override what the config file set. */
static int
apply_flags(int argc, char **argv, agent_options_t *o)
{
	int ch, r;

	while ((ch = getopt_long(argc, argv, CLI_SHORT_OPTIONS, options,
	            NULL)) != -1) {
		switch (ch) {
		case OPT_STATE_DIR:
			cli_set_string(&o->state_dir, optarg);
			break;
		case OPT_NODE_ID:
			if (!node_id_valid(optarg))
				return cli_bad_value(PROG, "--node-id", optarg,
				    "1-63 of [A-Za-z0-9._-], starting with a "
				    "letter or digit");
			cli_set_string(&o->node_id, optarg);
			break;
		case OPT_LABEL:
			r = labels_parse(&o->labels, optarg);
			if (r == -E2BIG)
				return cli_bad_value(PROG, "--label", optarg,
				    "at most 64 labels");
			if (r < 0)
				return cli_bad_value(PROG, "--label", optarg,
				    "KEY=VALUE (keys [A-Za-z0-9._/-], values "
				    "[A-Za-z0-9._-], at most 63 each)");
			break;
		case OPT_COORDINATOR:
			cli_set_string(&o->coordinator, optarg);
			break;
		case OPT_DOORBELL:
			cli_set_string(&o->doorbell, optarg);
			break;
		case OPT_COORDINATOR_KEY:
			cli_set_string(&o->coordinator_key, optarg);
			break;
		case OPT_ENROLL_TOKEN:
			if (!curve_token_valid(optarg))
				return cli_bad_value(PROG, "--enroll-token",
				    optarg, CURVE_TOKEN_EXPECT);
			cli_set_string(&o->enroll_token, optarg);
			break;
		case OPT_PRINT_KEY:
			print_key = 1;
			break;
		case OPT_HEARTBEAT:
			if (parse_duration_ms(optarg, &o->heartbeat_ms) < 0 ||
			    o->heartbeat_ms < 50 ||
			    o->heartbeat_ms > 3600 * 1000)
				return cli_bad_value(PROG, "--heartbeat",
				    optarg, "a duration from 50ms to 1h");
			break;
		case OPT_RUNTIME_SOCKET:
			cli_set_string(&o->runtime_socket, optarg);
			break;
		case OPT_ARTIFACT_BUDGET:
			if (parse_size_bytes(optarg, &o->artifact_budget) < 0)
				return cli_bad_value(PROG,
				    "--artifact-cache-budget", optarg,
				    "a size like 512Mi, 200Gi or 4096 (bytes)");
			break;
		case OPT_ARTIFACT_DOWNLOADS:
			if (parse_uint(optarg, ARTIFACTS_DOWNLOADS_MAX,
			        &o->artifact_downloads) < 0 ||
			    o->artifact_downloads < 1)
				return cli_bad_value(PROG,
				    "--artifact-downloads", optarg,
				    "a number from 1 to 16");
			break;
		case OPT_ARTIFACT_STALL:
			if (parse_duration_ms(optarg, &o->artifact_stall_ms) <
			        0 ||
			    o->artifact_stall_ms < 1000 ||
			    o->artifact_stall_ms > 3600 * 1000)
				return cli_bad_value(PROG,
				    "--artifact-stall-timeout", optarg,
				    "a duration from 1s to 1h");
			break;
		case OPT_ARTIFACT_ATTEMPTS:
			if (parse_uint(optarg, 100, &o->artifact_attempts) <
			        0 ||
			    o->artifact_attempts < 1)
				return cli_bad_value(PROG,
				    "--artifact-attempts", optarg,
				    "a number from 1 to 100");
			break;
		case OPT_ARTIFACT_CA_FILE:
			cli_set_string(&o->artifact_ca_file, optarg);
			break;
		case OPT_ARTIFACT_FILE_ROOT:
			cli_set_string(&o->artifact_file_root, optarg);
			break;
		case OPT_METRICS_LISTEN:
			if (!httpd_listen_valid(optarg))
				return cli_bad_value(PROG, "--metrics-listen",
				    optarg, HTTPD_LISTEN_EXPECT);
			cli_set_string(&o->metrics_listen, optarg);
			break;
		case OPT_METRICS_INTERVAL:
			if (parse_duration_ms(optarg, &o->metrics_interval_ms) <
			        0 ||
			    o->metrics_interval_ms < 1000 ||
			    o->metrics_interval_ms > 3600 * 1000)
				return cli_bad_value(PROG, "--metrics-interval",
				    optarg, "a duration from 1s to 1h");
			break;
		case OPT_NVML_LIBRARY:
			cli_set_string(&o->nvml_library, optarg);
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
	agent_options_defaults(o);
}

static void
free_options(void *o)
{
	agent_options_free(o);
}

static int
flags(int argc, char **argv, void *o)
{
	return apply_flags(argc, argv, o);
}

/* The keys a reload applies; the others wait for a restart. */
static const char *const live_keys[] = { "log_level", "labels", "enroll_token",
	NULL };

static cli_reload_t reloading = {
	.prog = PROG,
	.default_path = DEFAULT_CONFIG,
	.fields = agent_config_fields,
	.live = live_keys,
	.size = sizeof(agent_options_t),
	.defaults = defaults,
	.free = free_options,
	.apply_flags = flags,
};

/* The daemon the reloaded options are applied to. */
static agent_t *running;

/* SIGHUP: the defaults, the file and the flags again, as at start-up. */
static void
reload(void *arg)
{
	agent_options_t *opts = arg;

	agent_reconfigured(running, cli_reload(&reloading, opts));
}

int
main(int argc, char **argv)
{
	agent_options_t opts;
	agent_t *a = NULL;
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
	agent_options_defaults(&opts);
	if (cli_load_config(PROG, config, DEFAULT_CONFIG, agent_config_fields,
	        &opts) < 0) {
		agent_options_free(&opts);
		return CLI_EXIT_CONFIG;
	}
	if (apply_flags(argc, argv, &opts) < 0) {
		agent_options_free(&opts);
		return 2;
	}
	/* Snapshots keep a copy of it (of a file: not of -c /dev/null). */
	{
		const char *cf = config ? config : DEFAULT_CONFIG;
		struct stat sb;

		if (stat(cf, &sb) == 0 && S_ISREG(sb.st_mode))
			opts.config_file = xstrdup(cf);
	}

	log_open(PROG, log_level_from_name(opts.log_level));
	if (print_key) {
		char *secret = xasprintf("%s/agent.key", opts.state_dir);
		char *public = xasprintf("%s/agent.pub", opts.state_dir);
		curve_keys_t keys;
		char err[512];

		if (mkdir(opts.state_dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, sizeof err, "cannot create %s: %s",
			    opts.state_dir, strerror(errno));
			r = -1;
		} else {
			r = curve_keys_load_or_create(secret, public, &keys,
			    err, sizeof err);
		}
		if (r == 0)
			printf("%s\n", keys.public_key);
		else
			fprintf(stderr, "%s: %s\n", PROG, err);
		free(secret);
		free(public);
		agent_options_free(&opts);
		return r == 0 ? 0 : 1;
	}
	/* Before any thread: the runtime client and probes use libcurl. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_error("cannot initialise libcurl");
		agent_options_free(&opts);
		return 1;
	}
	zsys_init();
	zsys_set_logstream(NULL);
	lifecycle_status("starting: opening %s", opts.state_dir);
	r = agent_new(&opts, &a);
	if (r == 0) {
		reloading.argc = argc;
		reloading.argv = argv;
		reloading.config = config;
		running = a;
		r = agent_run(a, reload, &opts);
		agent_destroy(&a);
	}
	agent_options_free(&opts);
	curl_global_cleanup();
	if (r == SHOAL_E_CONFIG)
		return CLI_EXIT_CONFIG;
	return r < 0 ? 1 : 0;
}
