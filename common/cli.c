/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line plumbing for shoal-agent and shoal-coordinator (see cli.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/log.h"
#include "common/util.h"

int
cli_first_pass(const char *prog, int argc, char **argv,
    const struct option *options, void (*usage)(FILE *),
    const char **ret_config)
{
	int ch;

	*ret_config = NULL;
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, CLI_SHORT_OPTIONS, options,
	            NULL)) != -1) {
		switch (ch) {
		case 'c':
			*ret_config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", prog, PACKAGE_VERSION);
			return 0;
		case '?':
			usage(stderr);
			return 2;
		default:
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
		    argv[optind]);
		return 2;
	}
	/* The second pass, over the flags that override the file, has
	 * already had its say about unknown options. */
	optind = 1;
	opterr = 0;
	return CLI_CONTINUE;
}

int
cli_load_config(const char *prog, const char *config, const char *default_path,
    const config_field_t *fields, void *target)
{
	char err[1024];

	if (!config && access(default_path, F_OK) == 0)
		config = default_path;
	if (!config)
		return 0;
	if (config_load(config, fields, target, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return -1;
	}
	return 0;
}

void
cli_set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

int
cli_bad_value(const char *prog, const char *flag, const char *value,
    const char *expect)
{
	fprintf(stderr, "%s: %s: expected %s, got '%s'\n", prog, flag, expect,
	    value);
	return -EINVAL;
}

uint64_t
cli_reload(const cli_reload_t *r, void *running)
{
	const char *cf = r->config;
	void *fresh = xcalloc(1, r->size);
	char err[1024], applied[512], kept[512];
	uint64_t changed = 0;

	if (!cf && access(r->default_path, F_OK) == 0)
		cf = r->default_path;
	r->defaults(fresh);
	if (cf && config_load(cf, r->fields, fresh, err, sizeof err) < 0) {
		log_error("reload: %s; the running configuration is kept", err);
		goto done;
	}
	optind = 0; /* glibc: scan from the start, state reset */
	opterr = 0;
	if (r->apply_flags(r->argc, r->argv, fresh) < 0) {
		log_error("reload: the flags were refused; the running "
		          "configuration is kept");
		goto done;
	}
	changed = config_reload(r->fields, r->live, running, fresh, applied,
	    sizeof applied, kept, sizeof kept);
	if (applied[0])
		log_info("reload: %s applied from %s", applied,
		    cf ? cf : "the flags");
	if (kept[0])
		log_warning("reload: %s changed, which takes a restart of %s "
		            "(the running values are kept)",
		    kept, r->prog);
	if (!applied[0] && !kept[0])
		log_info("reload: nothing changed%s%s", cf ? " in " : "",
		    cf ? cf : "");
done:
	r->free(fresh);
	free(fresh);
	return changed;
}
