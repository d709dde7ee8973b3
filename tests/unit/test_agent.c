/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pieces of the agent that need no coordinator: reconnect backoff bounds,
 * the default doorbell endpoint, and the host figures read from a /proc
 * fixture tree.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "agent/hostinfo.h"
#include "agent/metrics.h"
#include "tests/tap.h"

static void
test_backoff(void)
{
	int in_bounds = 1, capped = 1, varies = 0;
	uint64_t first = agent_backoff_ms(3);

	for (unsigned attempt = 0; attempt < 40; attempt++) {
		uint64_t step = (uint64_t)BACKOFF_BASE_MS
		    << (attempt < 16 ? attempt : 16);

		if (step > BACKOFF_MAX_MS)
			step = BACKOFF_MAX_MS;
		for (int i = 0; i < 200; i++) {
			uint64_t d = agent_backoff_ms(attempt);

			if (d < step / 2 || d > step)
				in_bounds = 0;
			if (d > BACKOFF_MAX_MS)
				capped = 0;
			if (attempt == 3 && d != first)
				varies = 1;
		}
	}
	ok(in_bounds, "each delay lies in the upper half of its step");
	ok(capped, "no delay exceeds the cap");
	ok(varies, "delays are jittered");
	ok(agent_backoff_ms(0) <= BACKOFF_BASE_MS, "the first retry is quick");
	ok(agent_backoff_ms(30) >= BACKOFF_MAX_MS / 2, "late retries are slow");
}

static void
test_doorbell(void)
{
	char *d;

	d = agent_default_doorbell("tcp://10.0.0.5:7400");
	is_str(d, "tcp://10.0.0.5:7401", "the doorbell is the next port");
	free(d);
	d = agent_default_doorbell("tcp://[::1]:9000");
	is_str(d, "tcp://[::1]:9001", "IPv6 hosts work");
	free(d);
	ok(agent_default_doorbell("ipc:///run/x.sock") == NULL,
	    "no default for ipc endpoints");
	ok(agent_default_doorbell("tcp://host") == NULL,
	    "no default without a port");
	ok(agent_default_doorbell("tcp://host:65535") == NULL,
	    "no default past the last port");
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void
test_hostinfo(void)
{
	char dir[] = "/tmp/shoal-test-proc.XXXXXX", cmd[128];
	Shoal__HostFigures fig = SHOAL__HOST_FIGURES__INIT;
	Shoal__Facts facts = SHOAL__FACTS__INIT;
	hostinfo_t *h;
	metrics_t *m;
	metrics_config_t mcfg = { .proc_root = dir,
		.nvml_library = "off",
		.interval_ms = 1000 };

	if (!mkdtemp(dir))
		abort();
	write_file(dir, "meminfo",
	    "MemTotal:       16384000 kB\nMemFree:  1000 kB\n"
	    "MemAvailable:    8192000 kB\n");
	write_file(dir, "loadavg", "1.50 0.80 0.30 2/300 12345\n");
	write_file(dir, "stat",
	    "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
	hostinfo_new(dir, &h);
	hostinfo_facts(h, &facts);
	ok(facts.memory_bytes == 16384000ULL * 1024, "MemTotal is a fact");
	ok(facts.cpus > 0 && facts.kernel[0], "cpus and kernel are facts");
	metrics_new(NULL, &mcfg, &m);
	metrics_figures(m, &fig);
	ok(fig.load1 > 1.49 && fig.load1 < 1.51, "load1 from loadavg");
	ok(fig.memory_available_bytes == 8192000ULL * 1024,
	    "MemAvailable from meminfo");
	ok(fig.cpu_percent == 0, "no CPU figure from a single sample");
	/* 300 more jiffies busy out of 400 more in total: 75%. */
	write_file(dir, "stat",
	    "cpu  250 0 250 900 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
	metrics_sample(m);
	metrics_figures(m, &fig);
	ok(fig.cpu_percent > 74.9 && fig.cpu_percent < 75.1,
	    "CPU use since the previous sample");
	write_file(dir, "stat", "garbage\n");
	write_file(dir, "loadavg", "");
	metrics_sample(m);
	metrics_figures(m, &fig);
	ok(fig.cpu_percent == 0 && fig.load1 == 0,
	    "unreadable files give zero, not garbage");
	hostinfo_destroy(&h);
	ok(h == NULL, "destroy clears the pointer");
	metrics_destroy(&m);
	ok(m == NULL, "so does the collector's");
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}

int
main(void)
{
	test_backoff();
	test_doorbell();
	test_hostinfo();
	return done_testing();
}
