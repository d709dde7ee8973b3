/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/gpu.c against tests/tools/fake_nvml.c, a fake libnvidia-ml whose
 * absolute path the test environment gives in FAKE_NVML: a library that
 * is not there, devices and their figures, figures that move between
 * samples, an nvmlInit that fails, Xid events, a metric a device does not
 * support, a lost GPU, NVML going away, more GPUs than GPU_MAX, and
 * destruction (NULL, twice, during a long interval). The fake counts inits
 * and shutdowns and notices calls from a second thread, so each case also
 * checks that the sampler cleaned up and kept NVML on its own thread.
 */
#include "autoconf.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/gpu.h"
#include "common/util.h"
#include "tests/tap.h"

#define GIB (1024ULL * 1024 * 1024)
#define MIB (1024ULL * 1024)
#define FAST_MS 50
#define WAIT_MS 10000
#define HAVE_ALL                                                         \
	(GPU_HAVE_UTIL | GPU_HAVE_MEM | GPU_HAVE_TEMP | GPU_HAVE_POWER | \
	    GPU_HAVE_ENERGY | GPU_HAVE_ECC)

typedef void (*stats_fn)(unsigned *, unsigned *, int *, unsigned *);
typedef void (*hold_fn)(int);

static const char *fake;
static stats_fn fake_stats;
static hold_fn fake_hold;

/* Clears the fake's knobs and sets one (name NULL: none). */
static void
knob(const char *name, const char *value)
{
	static const char *const all[] = { "FAKE_NVML_GPUS",
		"FAKE_NVML_INIT_ERROR", "FAKE_NVML_XID", "FAKE_NVML_NO_POWER",
		"FAKE_NVML_LOST", "FAKE_NVML_DIE_AFTER" };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		unsetenv(all[i]);
	if (name)
		setenv(name, value, 1);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

typedef int (*until_fn)(const gpu_sample_t *s, uint64_t arg);

static int
known(const gpu_sample_t *s, uint64_t arg)
{
	(void)arg;
	return s->state != 0;
}

static int
failed(const gpu_sample_t *s, uint64_t arg)
{
	(void)arg;
	return s->state == -1;
}

/* A sample of a working NVML taken after arg (a sampled_ms). */
static int
newer(const gpu_sample_t *s, uint64_t arg)
{
	return s->state == 1 && s->sampled_ms > arg;
}

/* Polls gpu_get until done() holds or WAIT_MS pass; 1 when it held. The
 * bound is a safety net, not a timing assertion. */
static int
wait_for(gpu_t *g, gpu_sample_t *s, until_fn done, uint64_t arg)
{
	for (int waited = 0; waited < WAIT_MS; waited += 10) {
		gpu_get(g, s);
		if (done(s, arg))
			return 1;
		sleep_ms(10);
	}
	gpu_get(g, s);
	return done(s, arg);
}

/* Destroys g and checks the sampler shut NVML down, freed its event set
 * and never called NVML from another thread. */
static void
destroy_clean(gpu_t **g, const char *what)
{
	unsigned inits, shutdowns, foreign;
	int sets;

	gpu_destroy(g);
	ok(*g == NULL, "gpu_destroy clears the pointer");
	fake_stats(&inits, &shutdowns, &sets, &foreign);
	okf(inits == shutdowns, "%s: every nvmlInit has its nvmlShutdown",
	    what);
	if (inits != shutdowns)
		diag("%u inits, %u shutdowns", inits, shutdowns);
	is_int(sets, 0, "no event set left");
	is_int(foreign, 0, "NVML called from the sampling thread only");
}

static void
test_missing(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	is_int(gpu_new("/nonexistent/libnvidia-ml-missing.so.1", FAST_MS, &g),
	    0, "gpu_new does not fail for want of a library");
	ok(wait_for(g, &s, known, 0), "a missing library is reported");
	is_int(s.state, -1, "no library: state -1");
	ok(strstr(s.why, "libnvidia-ml-missing.so.1") != NULL,
	    "why names the library");
	diag("why: %s", s.why);
	is_int(s.ndevices, 0, "no library: no devices");
	ok(s.sampled_ms > 0, "the attempt has a time");
	gpu_destroy(&g);
	ok(g == NULL, "gpu_destroy clears the pointer");
}

static void
check_device(const gpu_sample_t *s, unsigned i)
{
	const gpu_device_t *d = &s->devices[i];
	char uuid[96];

	snprintf(uuid, sizeof uuid, "GPU-fake0000-0000-0000-0000-%012u", i);
	is_int(d->index, i, "device index");
	is_str(d->name, "NVIDIA Fake H100", "device name");
	is_str(d->uuid, uuid, "device UUID");
	is_str(d->pci_bus_id, "", "no PCI bus id");
	is_int(d->have, HAVE_ALL, "every metric present");
	ok(d->util_percent <= 100, "utilisation is a percentage");
	ok(d->mem_util_percent <= 100, "memory utilisation is a percentage");
	is_int(d->mem_total, 80 * GIB, "80 GiB of memory");
	ok(d->mem_used > (i + 1) * GIB && d->mem_used < (i + 2) * GIB,
	    "memory used as the fake has it");
	is_int(d->mem_used + d->mem_free, d->mem_total, "used + free = total");
	is_int(d->temperature_c, 40 + i, "temperature");
	ok(d->power_w == 250.5, "power 250500 mW is 250.5 W");
	ok(d->energy_j > (i + 1) * 1000.0, "energy in joules");
	ok(d->ecc_supported, "ECC supported");
	is_int(d->ecc_sbe_volatile, i, "volatile corrected ECC");
	is_int(d->ecc_dbe_volatile, 0, "volatile uncorrected ECC");
	is_int(d->ecc_sbe_aggregate, 100 + i, "aggregate corrected ECC");
	is_int(d->ecc_dbe_aggregate, 1, "aggregate uncorrected ECC");
	is_int(d->xid_errors, 0, "no Xid");
	is_int(d->last_xid, 0, "no last Xid");
}

static void
test_devices(void)
{
	gpu_sample_t s, t;
	gpu_t *g = NULL;

	knob(NULL, NULL);
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new on the fake");
	ok(wait_for(g, &s, known, 0), "the fake answers");
	is_int(s.state, 1, "the fake: state 1");
	is_str(s.why, "", "no why when NVML works");
	is_str(s.driver_version, "999.99.99-fake", "driver version");
	is_int(s.ndevices, 2, "two devices by default");
	ok(s.sampled_ms > 0, "the sample has a time");
	for (unsigned i = 0; i < s.ndevices && i < 2; i++)
		check_device(&s, i);

	ok(wait_for(g, &t, newer, s.sampled_ms), "a later sample comes");
	is_int(t.ndevices, 2, "still two devices");
	for (unsigned i = 0; i < t.ndevices && i < 2; i++) {
		const gpu_device_t *a = &s.devices[i], *b = &t.devices[i];

		okf(a->util_percent != b->util_percent,
		    "device %u: utilisation moves", i);
		okf(b->mem_used > a->mem_used, "device %u: memory use grows",
		    i);
		okf(b->energy_j > a->energy_j, "device %u: energy grows", i);
		okf(b->temperature_c == a->temperature_c,
		    "device %u: temperature steady", i);
	}
	destroy_clean(&g, "two devices");
}

static void
test_not_yet(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	/* The fake's nvmlInit waits until released, so the state before
	 * the first sample can be seen without racing the thread. */
	knob(NULL, NULL);
	fake_hold(1);
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new with nvmlInit held");
	gpu_get(g, &s);
	is_int(s.state, 0, "before the first sample: state 0");
	is_int(s.sampled_ms, 0, "before the first sample: no time");
	is_int(s.ndevices, 0, "before the first sample: no devices");
	fake_hold(0);
	ok(wait_for(g, &s, known, 0), "released, it samples");
	is_int(s.state, 1, "then state 1");
	destroy_clean(&g, "held init");
}

static void
test_init_error(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	knob("FAKE_NVML_INIT_ERROR", "9");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new, nvmlInit failing");
	ok(wait_for(g, &s, known, 0), "the failure is reported");
	is_int(s.state, -1, "nvmlInit failed: state -1");
	ok(strstr(s.why, "Driver") != NULL, "why mentions the driver");
	is_str(s.why, "nvmlInit: Driver Not Loaded", "why in full");
	is_int(s.ndevices, 0, "no devices");
	destroy_clean(&g, "init error");
}

static void
test_xid(const char *codes, uint64_t count, unsigned long long last)
{
	gpu_sample_t s, t;
	gpu_t *g = NULL;

	knob("FAKE_NVML_XID", codes);
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new with Xids pending");
	ok(wait_for(g, &s, known, 0), "sampled");
	is_int(s.state, 1, "state 1");
	okf(s.ndevices == 2 && s.devices[0].xid_errors == count,
	    "Xid %s: device 0 counts %llu", codes, (unsigned long long)count);
	is_int(s.devices[0].last_xid, last, "device 0's last Xid");
	is_int(s.devices[1].xid_errors, 0, "device 1 has none");
	is_int(s.devices[1].last_xid, 0, "device 1 has no last Xid");
	ok(wait_for(g, &t, newer, s.sampled_ms), "a later sample");
	is_int(t.devices[0].xid_errors, count, "the count stays");
	is_int(t.devices[0].last_xid, last, "and the last Xid");
	is_int(t.devices[0].have, HAVE_ALL, "figures as usual");
	destroy_clean(&g, "Xid");
}

static void
test_no_power(void)
{
	gpu_sample_t s, t;
	gpu_t *g = NULL;

	knob("FAKE_NVML_NO_POWER", "1");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new without power");
	ok(wait_for(g, &s, known, 0) && s.state == 1, "sampled");
	ok(wait_for(g, &t, newer, s.sampled_ms), "and again");
	is_int(t.ndevices, 2, "two devices");
	for (unsigned i = 0; i < t.ndevices && i < 2; i++) {
		const gpu_device_t *d = &t.devices[i];

		okf(!(d->have & GPU_HAVE_POWER), "device %u: no power bit", i);
		okf(d->power_w == 0, "device %u: power left 0", i);
		is_int(d->have, HAVE_ALL & ~GPU_HAVE_POWER,
		    "the other metrics present");
		is_int(d->temperature_c, 40 + i, "temperature still read");
	}
	destroy_clean(&g, "no power");
}

static void
test_lost(void)
{
	gpu_sample_t s, t;
	gpu_t *g = NULL;

	knob("FAKE_NVML_LOST", "1");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new with GPU 1 lost");
	ok(wait_for(g, &s, known, 0), "sampled");
	ok(wait_for(g, &t, newer, s.sampled_ms), "and again");
	is_int(t.state, 1, "a lost GPU does not fail the sample");
	is_int(t.ndevices, 2, "the lost GPU stays listed");
	is_int(t.devices[0].have, HAVE_ALL, "GPU 0 as usual");
	is_int(t.devices[1].have, 0, "GPU 1 has no figures");
	is_str(t.devices[1].uuid, "GPU-fake0000-0000-0000-0000-000000000001",
	    "GPU 1 keeps its UUID");
	is_int(t.devices[1].mem_total, 0, "GPU 1's figures are 0");
	destroy_clean(&g, "lost GPU");
}

static void
test_gone(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	knob("FAKE_NVML_DIE_AFTER", "2");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new, driver to vanish");
	ok(wait_for(g, &s, failed, 0), "NVML going away is reported");
	is_int(s.state, -1, "state -1");
	ok(strstr(s.why, "Driver Not Loaded") != NULL, "why says so");
	diag("why: %s", s.why);
	is_int(s.ndevices, 0, "no devices");
	destroy_clean(&g, "driver gone");
}

static void
test_counts(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	knob("FAKE_NVML_GPUS", "20");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new with 20 GPUs");
	ok(wait_for(g, &s, known, 0) && s.state == 1, "sampled");
	is_int(s.ndevices, GPU_MAX, "at most GPU_MAX devices");
	is_int(s.devices[GPU_MAX - 1].index, GPU_MAX - 1, "the last index");
	is_int(s.devices[GPU_MAX - 1].temperature_c, 40 + GPU_MAX - 1,
	    "the last one sampled");
	destroy_clean(&g, "20 GPUs");

	knob("FAKE_NVML_GPUS", "0");
	is_int(gpu_new(fake, FAST_MS, &g), 0, "gpu_new with no GPUs");
	ok(wait_for(g, &s, known, 0), "sampled");
	is_int(s.state, 1, "NVML without devices: state 1");
	is_int(s.ndevices, 0, "no devices");
	destroy_clean(&g, "no GPUs");
}

static void
test_destroy(void)
{
	gpu_sample_t s;
	gpu_t *g = NULL;

	gpu_destroy(&g);
	ok(g == NULL, "gpu_destroy of a NULL pointer");
	gpu_destroy(NULL);
	ok(1, "gpu_destroy(NULL)");

	g = (gpu_t *)&s; /* must stay untouched */
	is_int(gpu_new(fake, 0, &g), -EINVAL, "a 0 ms interval is refused");
	ok(g == (gpu_t *)&s, "a refused gpu_new leaves *ret alone");
	g = NULL;

	/* An hour between samples: destroy must wake the thread, not wait
	 * for the hour. */
	knob(NULL, NULL);
	is_int(gpu_new(fake, 3600000, &g), 0, "gpu_new, one sample an hour");
	ok(wait_for(g, &s, known, 0) && s.state == 1, "the first sample");
	destroy_clean(&g, "hourly");
	gpu_destroy(&g);
	ok(g == NULL, "a second gpu_destroy is harmless");
}

int
main(void)
{
	void *dl;

	fake = getenv("FAKE_NVML");
	if (!fake || fake[0] != '/') {
		printf("Bail out! FAKE_NVML must be the absolute path of the "
		       "fake libnvidia-ml (tests/tools/fake_nvml.c)\n");
		return 1;
	}
	/* The same object gpu.c will load: its hooks see the same state. */
	dl = dlopen(fake, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		printf("Bail out! %s\n", dlerror());
		return 1;
	}
	*(void **)&fake_stats = dlsym(dl, "fake_nvml_stats");
	*(void **)&fake_hold = dlsym(dl, "fake_nvml_hold");
	if (!fake_stats || !fake_hold) {
		printf("Bail out! %s has no fake_nvml_* hooks\n", fake);
		return 1;
	}

	test_missing();
	test_devices();
	test_not_yet();
	test_init_error();
	test_xid("79", 1, 79);
	test_xid("31,79", 2, 79);
	test_no_power();
	test_lost();
	test_gone();
	test_counts();
	test_destroy();
	knob(NULL, NULL);
	dlclose(dl);
	return done_testing();
}
