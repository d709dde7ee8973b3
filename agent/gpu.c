/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's GPU sampler (see gpu.h). One thread owns everything NVML:
 * it dlopen()s the library, initialises it, lists the devices once,
 * registers them for Xid events and then samples every interval, building
 * each sample in a private buffer and copying it under the mutex for
 * gpu_get(). No other thread ever calls into NVML. The NVML declarations
 * are our own (nvml.h), so nothing here needs the driver to build.
 *
 * When the library does not load or nvmlInit fails, the sample says so
 * (state -1) and the thread tries again every GPU_RETRY_MS (a driver may
 * be installed or loaded after the agent starts): often enough to notice,
 * rarely enough that a GPU-less node does not pay for it. If NVML goes
 * away under us (a device call answers "uninitialized" or "driver not
 * loaded"), the thread shuts NVML down and waits for the same retry.
 */
#include "autoconf.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/gpu.h"
#include "agent/nvml.h"
#include "common/util.h"

/* How long a node without NVML waits before trying to load it again. */
#define GPU_RETRY_MS 60000
/* Xid events taken from the event set at each sample, at most. */
#define GPU_XID_DRAIN 64

typedef nvmlReturn_t (*nvml_void_fn)(void);
typedef const char *(*nvml_error_string_fn)(nvmlReturn_t);
typedef nvmlReturn_t (*nvml_driver_version_fn)(char *, unsigned int);
typedef nvmlReturn_t (*nvml_count_fn)(unsigned int *);
typedef nvmlReturn_t (*nvml_handle_fn)(unsigned int, nvmlDevice_t *);
typedef nvmlReturn_t (*nvml_string_fn)(nvmlDevice_t, char *, unsigned int);
typedef nvmlReturn_t (*nvml_util_fn)(nvmlDevice_t, nvmlUtilization_t *);
typedef nvmlReturn_t (*nvml_memory_fn)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*nvml_temp_fn)(nvmlDevice_t, int, unsigned int *);
typedef nvmlReturn_t (*nvml_uint_fn)(nvmlDevice_t, unsigned int *);
typedef nvmlReturn_t (*nvml_ull_fn)(nvmlDevice_t, unsigned long long *);
typedef nvmlReturn_t (
    *nvml_ecc_fn)(nvmlDevice_t, int, int, unsigned long long *);
typedef nvmlReturn_t (*nvml_set_create_fn)(nvmlEventSet_t *);
typedef nvmlReturn_t (
    *nvml_register_fn)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
typedef nvmlReturn_t (
    *nvml_wait_fn)(nvmlEventSet_t, nvmlEventData_t *, unsigned int);
typedef nvmlReturn_t (*nvml_set_free_fn)(nvmlEventSet_t);

struct nvml_api {
	/* required */
	nvml_void_fn init;
	nvml_void_fn shutdown;
	nvml_count_fn get_count;
	nvml_handle_fn get_handle;
	/* optional: NULL leaves the feature out */
	nvml_error_string_fn error_string;
	nvml_driver_version_fn driver_version;
	nvml_string_fn get_name;
	nvml_string_fn get_uuid;
	nvml_util_fn get_util;
	nvml_memory_fn get_memory;
	nvml_temp_fn get_temperature;
	nvml_uint_fn get_power;
	nvml_ull_fn get_energy;
	nvml_ecc_fn get_ecc;
	nvml_set_create_fn set_create;
	nvml_register_fn register_events;
	nvml_wait_fn set_wait;
	nvml_set_free_fn set_free;
};

/* A private "not supported" bit for the aggregate ECC counters, which a
 * device may refuse while it gives the volatile ones. */
#define SKIP_ECC_AGGREGATE (1u << 31)

struct gpu {
	/* set by gpu_new, read-only after */
	char *library;
	uint64_t interval_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;

	/* guarded by lock */
	int stopping;
	gpu_sample_t latest;

	/* the sampling thread's alone */
	void *dl;
	struct nvml_api api;
	int up;            /* nvmlInit succeeded and no nvmlShutdown since */
	nvmlReturn_t gone; /* NVML stopped answering during a sample */
	nvmlEventSet_t events;
	unsigned ndev;
	nvmlDevice_t dev[GPU_MAX];
	gpu_device_t info[GPU_MAX]; /* what does not change: index, names */
	unsigned skip[GPU_MAX];     /* GPU_HAVE_* it said it does not do */
	int dead[GPU_MAX];          /* lost, or no handle: not asked again */
	uint64_t xid_errors[GPU_MAX];
	unsigned long long last_xid[GPU_MAX];
	gpu_sample_t work;
};

static void
error_text(gpu_t *g, nvmlReturn_t rc, char *buf, size_t size)
{
	const char *s = g->api.error_string ? g->api.error_string(rc) : NULL;

	if (s)
		snprintf(buf, size, "%s", s);
	else
		snprintf(buf, size, "error %d", rc);
}

/* Makes the work sample a state -1 one that says why. */
static void __attribute__((format(printf, 2, 3)))
fail(gpu_t *g, const char *fmt, ...)
{
	gpu_sample_t *s = &g->work;
	va_list ap;

	memset(s, 0, sizeof *s);
	s->state = -1;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof s->why, fmt, ap);
	va_end(ap);
	s->sampled_ms = now_ms();
}

/* Whatever the driver wrote: terminated, and plain ASCII for the wire. */
static void
tidy(char *s, size_t size)
{
	s[size - 1] = '\0';
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* Resolves the entry points; 0, or -1 with the work sample failed. */
static int
resolve(gpu_t *g)
{
	struct nvml_api *a = &g->api;

	memset(a, 0, sizeof *a);
	/* dlsym() returns void *; POSIX guarantees it converts to a function
	 * pointer, the casts below say so to the compiler. */
#define REQUIRE(field, name)                                 \
	do {                                                 \
		dlerror();                                   \
		*(void **)&a->field = dlsym(g->dl, name);    \
		if (!a->field) {                             \
			const char *e_ = dlerror();          \
			fail(g, "%s", e_ ? e_ : "no " name); \
			return -1;                           \
		}                                            \
	} while (0)
#define OPTIONAL(field, name) (*(void **)&a->field = dlsym(g->dl, name))
	REQUIRE(init, "nvmlInit_v2");
	REQUIRE(shutdown, "nvmlShutdown");
	REQUIRE(get_count, "nvmlDeviceGetCount_v2");
	REQUIRE(get_handle, "nvmlDeviceGetHandleByIndex_v2");
	OPTIONAL(error_string, "nvmlErrorString");
	OPTIONAL(driver_version, "nvmlSystemGetDriverVersion");
	OPTIONAL(get_name, "nvmlDeviceGetName");
	OPTIONAL(get_uuid, "nvmlDeviceGetUUID");
	OPTIONAL(get_util, "nvmlDeviceGetUtilizationRates");
	OPTIONAL(get_memory, "nvmlDeviceGetMemoryInfo");
	OPTIONAL(get_temperature, "nvmlDeviceGetTemperature");
	OPTIONAL(get_power, "nvmlDeviceGetPowerUsage");
	OPTIONAL(get_energy, "nvmlDeviceGetTotalEnergyConsumption");
	OPTIONAL(get_ecc, "nvmlDeviceGetTotalEccErrors");
	OPTIONAL(set_create, "nvmlEventSetCreate");
	OPTIONAL(register_events, "nvmlDeviceRegisterEvents");
	OPTIONAL(set_wait, "nvmlEventSetWait_v2");
	OPTIONAL(set_free, "nvmlEventSetFree");
#undef REQUIRE
#undef OPTIONAL
	return 0;
}

/* nvmlShutdown and everything that belonged to that session. */
static void
nvml_stop(gpu_t *g)
{
	if (!g->up)
		return;
	if (g->events && g->api.set_free)
		g->api.set_free(g->events);
	g->events = NULL;
	g->api.shutdown();
	g->up = 0;
	g->ndev = 0;
}

/* Creates the event set and registers every device for Xid errors; a
 * driver or device without events just goes without. */
static void
xid_start(gpu_t *g)
{
	struct nvml_api *a = &g->api;
	unsigned registered = 0;

	if (!a->set_create || !a->register_events || !a->set_wait ||
	    !a->set_free || a->set_create(&g->events) != NVML_SUCCESS) {
		g->events = NULL;
		return;
	}
	for (unsigned i = 0; i < g->ndev; i++)
		if (!g->dead[i] &&
		    a->register_events(g->dev[i],
		        NVML_EVENT_TYPE_XID_CRITICAL_ERROR,
		        g->events) == NVML_SUCCESS)
			registered++;
	if (!registered) {
		a->set_free(g->events);
		g->events = NULL;
	}
}

/* Loads the library if need be, initialises NVML and lists the devices.
 * Leaves g->up set on success, the work sample failed otherwise. */
static void
nvml_start(gpu_t *g)
{
	struct nvml_api *a = &g->api;
	unsigned count = 0;
	nvmlReturn_t rc;
	char err[128];

	if (!g->dl) {
		dlerror();
		g->dl = dlopen(g->library, RTLD_NOW | RTLD_LOCAL);
		if (!g->dl) {
			const char *e = dlerror();

			fail(g, "%s", e ? e : g->library);
			return;
		}
		if (resolve(g) < 0) {
			dlclose(g->dl);
			g->dl = NULL;
			return;
		}
	}
	/* The library stays loaded across failed inits: loading it again
	 * would not change what it finds. */
	rc = a->init();
	if (rc != NVML_SUCCESS) {
		error_text(g, rc, err, sizeof err);
		fail(g, "nvmlInit: %s", err);
		return;
	}
	g->up = 1;
	g->gone = NVML_SUCCESS;
	rc = a->get_count(&count);
	if (rc != NVML_SUCCESS) {
		error_text(g, rc, err, sizeof err);
		fail(g, "nvmlDeviceGetCount: %s", err);
		nvml_stop(g);
		return;
	}

	memset(&g->work, 0, sizeof g->work);
	if (a->driver_version &&
	    a->driver_version(g->work.driver_version,
	        sizeof g->work.driver_version) == NVML_SUCCESS)
		tidy(g->work.driver_version, sizeof g->work.driver_version);
	else
		g->work.driver_version[0] = '\0';

	/* NVML's device list is fixed from nvmlInit to nvmlShutdown. */
	g->ndev = count < GPU_MAX ? count : GPU_MAX;
	for (unsigned i = 0; i < g->ndev; i++) {
		gpu_device_t *d = &g->info[i];

		memset(d, 0, sizeof *d);
		d->index = i;
		g->skip[i] = 0;
		g->dead[i] = a->get_handle(i, &g->dev[i]) != NVML_SUCCESS;
		if (g->dead[i]) {
			g->dev[i] = NULL;
			continue;
		}
		if (a->get_name &&
		    a->get_name(g->dev[i], d->name, sizeof d->name) ==
		        NVML_SUCCESS)
			tidy(d->name, sizeof d->name);
		else
			d->name[0] = '\0';
		if (a->get_uuid &&
		    a->get_uuid(g->dev[i], d->uuid, sizeof d->uuid) ==
		        NVML_SUCCESS)
			tidy(d->uuid, sizeof d->uuid);
		else
			d->uuid[0] = '\0';
		/* pci_bus_id stays empty: nvmlDeviceGetPciInfo_v3 fills a
		 * struct whose layout we would have to guess. */
	}
	xid_start(g);
}

/* Notes what a failed call says about the device or about NVML; 1 when
 * the call succeeded. */
static int
answered(gpu_t *g, unsigned i, unsigned bit, nvmlReturn_t rc)
{
	switch (rc) {
	case NVML_SUCCESS:
		return 1;
	case NVML_ERROR_NOT_SUPPORTED:
		g->skip[i] |= bit;
		break;
	case NVML_ERROR_GPU_IS_LOST:
		g->dead[i] = 1;
		break;
	case NVML_ERROR_UNINITIALIZED:
	case NVML_ERROR_DRIVER_NOT_LOADED:
		g->gone = rc;
		break;
	default: /* no permission, timeout, ...: try again next time */
		break;
	}
	return 0;
}

/* Whether to ask device i for the metric: NVML has the call, the device
 * is alive and has not said it does not do it. */
static int
ask(gpu_t *g, unsigned i, unsigned bit, const void *fn)
{
	return fn && !g->dead[i] && !(g->skip[i] & bit) && !g->gone;
}

static void
sample_device(gpu_t *g, unsigned i, gpu_device_t *d)
{
	struct nvml_api *a = &g->api;
	nvmlDevice_t dev = g->dev[i];
	nvmlUtilization_t u;
	nvmlMemory_t m;
	unsigned int t, mw;
	unsigned long long mj, c[4];

	if (ask(g, i, GPU_HAVE_UTIL, a->get_util) &&
	    answered(g, i, GPU_HAVE_UTIL, a->get_util(dev, &u))) {
		d->util_percent = u.gpu;
		d->mem_util_percent = u.memory;
		d->have |= GPU_HAVE_UTIL;
	}
	if (ask(g, i, GPU_HAVE_MEM, a->get_memory) &&
	    answered(g, i, GPU_HAVE_MEM, a->get_memory(dev, &m))) {
		d->mem_total = m.total;
		d->mem_used = m.used;
		d->mem_free = m.free;
		d->have |= GPU_HAVE_MEM;
	}
	if (ask(g, i, GPU_HAVE_TEMP, a->get_temperature) &&
	    answered(g, i, GPU_HAVE_TEMP,
	        a->get_temperature(dev, NVML_TEMPERATURE_GPU, &t))) {
		d->temperature_c = t;
		d->have |= GPU_HAVE_TEMP;
	}
	if (ask(g, i, GPU_HAVE_POWER, a->get_power) &&
	    answered(g, i, GPU_HAVE_POWER, a->get_power(dev, &mw))) {
		d->power_w = mw / 1000.0;
		d->have |= GPU_HAVE_POWER;
	}
	if (ask(g, i, GPU_HAVE_ENERGY, a->get_energy) &&
	    answered(g, i, GPU_HAVE_ENERGY, a->get_energy(dev, &mj))) {
		d->energy_j = mj / 1000.0;
		d->have |= GPU_HAVE_ENERGY;
	}
	/* ECC counts when the volatile pair answers (a device with ECC
	 * turned off answers neither); the aggregate pair is a bonus. */
	if (ask(g, i, GPU_HAVE_ECC, a->get_ecc) &&
	    answered(g, i, GPU_HAVE_ECC,
	        a->get_ecc(dev, NVML_MEMORY_ERROR_TYPE_CORRECTED,
	            NVML_VOLATILE_ECC, &c[0])) &&
	    answered(g, i, GPU_HAVE_ECC,
	        a->get_ecc(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
	            NVML_VOLATILE_ECC, &c[1]))) {
		d->ecc_sbe_volatile = c[0];
		d->ecc_dbe_volatile = c[1];
		d->ecc_supported = 1;
		d->have |= GPU_HAVE_ECC;
		if (ask(g, i, SKIP_ECC_AGGREGATE, a->get_ecc) &&
		    answered(g, i, SKIP_ECC_AGGREGATE,
		        a->get_ecc(dev, NVML_MEMORY_ERROR_TYPE_CORRECTED,
		            NVML_AGGREGATE_ECC, &c[2])) &&
		    answered(g, i, SKIP_ECC_AGGREGATE,
		        a->get_ecc(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
		            NVML_AGGREGATE_ECC, &c[3]))) {
			d->ecc_sbe_aggregate = c[2];
			d->ecc_dbe_aggregate = c[3];
		}
	}
}

/* Takes the Xid events pending, a bounded number so a storm of them
 * cannot hold the sample up. */
static void
xid_drain(gpu_t *g)
{
	nvmlEventData_t ev;

	if (!g->events)
		return;
	for (int n = 0; n < GPU_XID_DRAIN; n++) {
		memset(&ev, 0, sizeof ev);
		if (g->api.set_wait(g->events, &ev, 0) != NVML_SUCCESS)
			break; /* NVML_ERROR_TIMEOUT: none left */
		if (!(ev.eventType & NVML_EVENT_TYPE_XID_CRITICAL_ERROR))
			continue;
		/* A lost device's events still count: Xid 79 is the one
		 * that says it fell off the bus. */
		for (unsigned i = 0; i < g->ndev; i++) {
			if (g->dev[i] && g->dev[i] == ev.device) {
				g->xid_errors[i]++;
				g->last_xid[i] = ev.eventData;
				break;
			}
		}
	}
}

static void
sample(gpu_t *g)
{
	gpu_sample_t *s = &g->work;
	char err[128];

	xid_drain(g);
	s->state = 1;
	s->why[0] = '\0';
	s->ndevices = g->ndev;
	for (unsigned i = 0; i < g->ndev; i++) {
		gpu_device_t *d = &s->devices[i];

		/* A lost GPU stays listed under its name, with no figures:
		 * the node still has it, it just does not work. */
		*d = g->info[i];
		d->xid_errors = g->xid_errors[i];
		d->last_xid = g->last_xid[i];
		sample_device(g, i, d);
		if (g->dead[i]) { /* lost during this sample */
			*d = g->info[i];
			d->xid_errors = g->xid_errors[i];
			d->last_xid = g->last_xid[i];
		}
	}
	if (g->gone) {
		error_text(g, g->gone, err, sizeof err);
		fail(g, "NVML: %s", err);
		nvml_stop(g);
		return;
	}
	s->sampled_ms = now_ms();
}

static void
deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
sampler(void *arg)
{
	gpu_t *g = arg;
	struct timespec ts;
	uint64_t wait;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		pthread_mutex_unlock(&g->lock);
		if (!g->up)
			nvml_start(g);
		if (g->up)
			sample(g);
		/* nvml_start or sample may have failed: either way the work
		 * sample says what happened. */
		wait = g->up ? g->interval_ms : GPU_RETRY_MS;
		pthread_mutex_lock(&g->lock);
		g->latest = g->work;
		deadline(&ts, wait);
		while (!g->stopping &&
		    pthread_cond_timedwait(&g->wake, &g->lock, &ts) !=
		        ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&g->lock);
	nvml_stop(g);
	if (g->dl)
		dlclose(g->dl);
	g->dl = NULL;
	return NULL;
}

int
gpu_new(const char *library, uint64_t interval_ms, gpu_t **ret)
{
	pthread_condattr_t attr;
	gpu_t *g;
	int rc;

	if (interval_ms == 0)
		return -EINVAL;
	g = xcalloc(1, sizeof *g);
	g->library = xstrdup(library ? library : GPU_DEFAULT_LIBRARY);
	g->interval_ms = interval_ms;
	pthread_mutex_init(&g->lock, NULL);
	/* Monotonic, so a wall clock step neither stalls nor rushes the
	 * samples. */
	if ((rc = pthread_condattr_init(&attr)) != 0)
		goto fail_lock;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&g->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		goto fail_lock;
	if ((rc = pthread_create(&g->thread, NULL, sampler, g)) != 0)
		goto fail_cond;
	*ret = g;
	return 0;

fail_cond:
	pthread_cond_destroy(&g->wake);
fail_lock:
	pthread_mutex_destroy(&g->lock);
	free(g->library);
	free(g);
	return -rc;
}

void
gpu_destroy(gpu_t **gp)
{
	gpu_t *g = gp ? *gp : NULL;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	/* Prompt unless the thread is inside NVML, which we cannot
	 * interrupt (nvmlInit may take seconds). */
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g->library);
	free(g);
	*gp = NULL;
}

void
gpu_get(gpu_t *g, gpu_sample_t *out)
{
	pthread_mutex_lock(&g->lock);
	*out = g->latest;
	pthread_mutex_unlock(&g->lock);
}
