/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging sink shared by the daemons: stderr lines, or the journal with
 * structured fields when systemd connected stderr to it.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "common/log.h"
#include "common/util.h"

static const char *log_ident = "shoal";
static int log_max = LOG_INFO;
static int log_journal;
static char log_node_id[64];

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it gave us; only
 * when stderr still is that stream do we know the journal is listening.
 */
static int
stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(2, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_open(const char *ident, int level)
{
	log_ident = ident;
	log_max = level;
	log_journal = stderr_is_journal();
}

void
log_set_level(int level)
{
	log_max = level;
}

void
log_set_node(const char *node)
{
	snprintf(log_node_id, sizeof log_node_id, "%s", node ? node : "");
}

int
log_level_from_name(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{ "error", LOG_ERR },
		{ "warning", LOG_WARNING },
		{ "notice", LOG_NOTICE },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

bool
log_level_valid(const char *name)
{
	return log_level_from_name(name) >= 0;
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void
log_full(int level, const char *node, const char *service,
    unsigned long long revision, const char *fmt, ...)
{
	char msg[2048], ctx[200] = "";
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_journal) {
		char *f[6];
		struct iovec iov[6];
		int n = 0;

		f[n++] = xasprintf("MESSAGE=%s", msg);
		f[n++] = xasprintf("PRIORITY=%d", level);
		f[n++] = xasprintf("SYSLOG_IDENTIFIER=%s", log_ident);
		if (!node && log_node_id[0])
			node = log_node_id;
		if (node)
			f[n++] = xasprintf("SHOAL_NODE=%s", node);
		if (service)
			f[n++] = xasprintf("SHOAL_SERVICE=%s", service);
		if (service && revision)
			f[n++] = xasprintf("SHOAL_REVISION=%llu", revision);
		for (int i = 0; i < n; i++)
			iov[i] = (struct iovec){ f[i], strlen(f[i]) };
		sd_journal_sendv(iov, n);
		for (int i = 0; i < n; i++)
			free(f[i]);
		return;
	}

	char ts[RFC3339_LEN];
	size_t k = 0;

	/* stderr: the node only where the line names one (an agent's own id
	 * on each of its lines would say nothing there). */
	format_rfc3339(now_ms(), ts);
	if (node)
		k += (size_t)snprintf(ctx + k, sizeof ctx - k, "node=%s", node);
	if (service && k < sizeof ctx)
		k += (size_t)snprintf(ctx + k, sizeof ctx - k, "%sservice=%s",
		    k ? " " : "", service);
	if (service && revision && k < sizeof ctx)
		k += (size_t)snprintf(ctx + k, sizeof ctx - k, " revision=%llu",
		    revision);
	fprintf(stderr, "%s %s[%d] %s: %s%s%s%s\n", ts, log_ident,
	    (int)getpid(), level_name(level), k ? "[" : "", ctx, k ? "] " : "",
	    msg);
}
