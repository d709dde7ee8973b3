/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host facts for the agent's Hello, read from /proc, os-release and
 * uname(2) (the heartbeats' figures come from metrics.c). Reads are small and
 * bounded: they run on the event loop.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/hostinfo.h"
#include "common/util.h"
#include "common/wire.h"

struct hostinfo {
	char *proc;
	char hostname[256];
	char os[256];
	char kernel[256];
	char arch[128];
	uint64_t memory_total;
};

/* Reads a small file into buf; returns its length or -errno. */
static ssize_t
read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

static uint64_t
meminfo_kib(const char *proc, const char *field)
{
	char path[4096], buf[8192], *p;
	size_t flen = strlen(field);
	unsigned long long v;

	snprintf(path, sizeof path, "%s/meminfo", proc);
	if (read_small(path, buf, sizeof buf) < 0)
		return 0;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, field, flen) == 0 && p[flen] == ':' &&
		    sscanf(p + flen + 1, "%llu", &v) == 1)
			return (uint64_t)v * 1024;
	}
	return 0;
}

static void
read_os_release(char *out, size_t size)
{
	static const char *const paths[] = { "/etc/os-release",
		"/usr/lib/os-release" };
	char buf[8192], *p, *end;

	snprintf(out, size, "Linux");
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		if (read_small(paths[i], buf, sizeof buf) < 0)
			continue;
		for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
			if (strncmp(p, "PRETTY_NAME=", 12) != 0)
				continue;
			p += 12;
			if (*p == '"')
				p++;
			end = p + strcspn(p, "\"\n");
			snprintf(out, size, "%.*s", (int)(end - p), p);
			return;
		}
	}
}

int
hostinfo_new(const char *proc_root, hostinfo_t **ret)
{
	hostinfo_t *h = xcalloc(1, sizeof *h);
	struct utsname u;

	h->proc = xstrdup(proc_root);
	if (gethostname(h->hostname, sizeof h->hostname - 1) < 0)
		snprintf(h->hostname, sizeof h->hostname, "unknown");
	read_os_release(h->os, sizeof h->os);
	if (uname(&u) == 0) {
		snprintf(h->kernel, sizeof h->kernel, "%s", u.release);
		snprintf(h->arch, sizeof h->arch, "%s", u.machine);
	}
	/* The host may say anything (a CRLF os-release, Latin-1 bytes): a
	 * fact the coordinator refuses would refuse the whole Hello. */
	wire_clean_text(h->hostname, WIRE_MAX_STRING, 0);
	wire_clean_text(h->os, WIRE_MAX_STRING, 0);
	wire_clean_text(h->kernel, WIRE_MAX_STRING, 0);
	wire_clean_text(h->arch, WIRE_MAX_STRING, 0);
	h->memory_total = meminfo_kib(h->proc, "MemTotal");
	*ret = h;
	return 0;
}

void
hostinfo_destroy(hostinfo_t **h)
{
	if (!*h)
		return;
	free((*h)->proc);
	free(*h);
	*h = NULL;
}

void
hostinfo_facts(hostinfo_t *h, Shoal__Facts *facts)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	facts->hostname = h->hostname;
	facts->os = h->os;
	facts->kernel = h->kernel;
	facts->arch = h->arch;
	facts->cpus = cpus > 0 ? (uint32_t)cpus : 0;
	facts->memory_bytes = h->memory_total;
}
