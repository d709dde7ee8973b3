/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for NVIDIA's libnvidia-ml.so.1, built as a shared object that
 * test_gpu hands to gpu_new() in place of the driver's. It exports the NVML
 * calls agent/gpu.c uses, with their C signatures (agent/nvml.h), and
 * answers them with deterministic figures.
 * nvmlInit_v2 reads the environment and starts afresh, so one process can
 * run case after case even though the dynamic linker keeps the object,
 * and its static state, loaded between them:
 *
 *   FAKE_NVML_GPUS=N         devices (default 2, at most FAKE_MAX)
 *   FAKE_NVML_INIT_ERROR=rc  nvmlInit_v2 returns rc (9: driver not loaded)
 *   FAKE_NVML_XID=a[,b...]   Xid events of those codes pending on device 0
 *   FAKE_NVML_NO_POWER=1     nvmlDeviceGetPowerUsage is not supported
 *   FAKE_NVML_LOST=i         device i's figures answer "GPU is lost"
 *   FAKE_NVML_DIE_AFTER=n    after device 0's n-th utilisation reading
 *                            every device call answers "driver not loaded"
 *
 * Figures for device i after its n-th utilisation reading (each sample
 * reads it first): utilisation (7n + 13i) % 101 %, memory utilisation
 * (3n + i) % 101 %, 80 GiB of memory of which (i + 1) GiB + n MiB used,
 * 40 + i degrees, 250.5 W, (i + 1) * 1000 J + n * 250.5 J of energy,
 * volatile ECC corrected i and uncorrected 0, aggregate corrected
 * 100 + i and uncorrected 1.
 *
 * Test hooks, found with dlsym(): fake_nvml_stats() counts inits,
 * shutdowns, live event sets and calls from a thread other than the one
 * that initialised; fake_nvml_hold(1) makes nvmlInit_v2 wait until
 * fake_nvml_hold(0). One mutex serialises everything.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/nvml.h"

#define FAKE_MAX 32
#define FAKE_XID_MAX 16
#define FAKE_SETS 4
#define FAKE_MAGIC 0x6e766d6cu
#define GIB (1024ULL * 1024 * 1024)
#define MIB (1024ULL * 1024)

#define XID_EVENT NVML_EVENT_TYPE_XID_CRITICAL_ERROR

struct nvmlDevice_st {
	unsigned magic;
	unsigned index;
	unsigned long long polls;
};

struct nvmlEventSet_st {
	unsigned magic;
	int used;
	unsigned long long mask[FAKE_MAX];
};

/* What this object exports: NVML's calls and the test hooks. */
nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t rc);
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index,
    nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d,
    nvmlUtilization_t *u);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor,
    unsigned int *temp);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *milliwatts);
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d,
    unsigned long long *mj);
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int error_type,
    int counter_type, unsigned long long *count);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
    nvmlEventSet_t set);
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
    unsigned int timeoutms);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
void fake_nvml_stats(unsigned *ret_inits, unsigned *ret_shutdowns,
    int *ret_sets, unsigned *ret_foreign);
void fake_nvml_hold(int on);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static int held;

static unsigned refs; /* nvmlInit_v2 minus nvmlShutdown */
static unsigned inits, shutdowns, foreign;
static pthread_t owner;

static unsigned ndev;
static struct nvmlDevice_st devs[FAKE_MAX];
static struct nvmlEventSet_st sets[FAKE_SETS];
static int sets_live;
static unsigned long long xids[FAKE_XID_MAX];
static unsigned nxid;
static int no_power, dead;
static long lost = -1;
static unsigned long long die_after;

static long
env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return dflt;
	v = strtol(s, &end, 10);
	return *end ? dflt : v;
}

static void
reset(void)
{
	const char *s = getenv("FAKE_NVML_XID");
	long n = env_long("FAKE_NVML_GPUS", 2);

	ndev = n < 0 ? 0 : n > FAKE_MAX ? FAKE_MAX : (unsigned)n;
	memset(devs, 0, sizeof devs);
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		devs[i].magic = FAKE_MAGIC;
		devs[i].index = i;
	}
	/* Event sets are left alone: one still live from the last session
	 * is a leak the tests should see. */
	no_power = env_long("FAKE_NVML_NO_POWER", 0) != 0;
	lost = env_long("FAKE_NVML_LOST", -1);
	die_after = (unsigned long long)env_long("FAKE_NVML_DIE_AFTER", 0);
	dead = 0;
	nxid = 0;
	while (s && *s && nxid < FAKE_XID_MAX) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);

		if (end == s)
			break;
		xids[nxid++] = v;
		s = *end == ',' ? end + 1 : end;
	}
}

/* Takes the lock for an NVML call and notes a caller on a thread other
 * than the one that initialised. */
static void
enter(void)
{
	pthread_mutex_lock(&lock);
	if (refs && !pthread_equal(owner, pthread_self()))
		foreign++;
}

static nvmlReturn_t
leave(nvmlReturn_t rc)
{
	pthread_mutex_unlock(&lock);
	return rc;
}

static int
valid(nvmlDevice_t d)
{
	return d >= devs && d < devs + ndev && d->magic == FAKE_MAGIC;
}

/* The common checks of a device call; NVML_SUCCESS when it may go on. */
static nvmlReturn_t
check(nvmlDevice_t d)
{
	if (!refs)
		return NVML_ERROR_UNINITIALIZED;
	if (dead)
		return NVML_ERROR_DRIVER_NOT_LOADED;
	if (!valid(d))
		return NVML_ERROR_INVALID_ARGUMENT;
	if ((long)d->index == lost)
		return NVML_ERROR_GPU_IS_LOST;
	return NVML_SUCCESS;
}

static nvmlReturn_t
copy_string(char *buf, unsigned int length, const char *s)
{
	if (!buf)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(s) + 1 > length)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(buf, s, strlen(s) + 1);
	return NVML_SUCCESS;
}

nvmlReturn_t
nvmlInit_v2(void)
{
	long err;

	pthread_mutex_lock(&lock);
	while (held)
		pthread_cond_wait(&released, &lock);
	err = env_long("FAKE_NVML_INIT_ERROR", 0);
	if (err)
		return leave((nvmlReturn_t)err);
	if (refs++ == 0) {
		reset();
		owner = pthread_self();
	}
	inits++;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlShutdown(void)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	refs--;
	shutdowns++;
	return leave(NVML_SUCCESS);
}

const char *
nvmlErrorString(nvmlReturn_t rc)
{
	switch (rc) {
	case NVML_SUCCESS:
		return "Success";
	case NVML_ERROR_UNINITIALIZED:
		return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT:
		return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED:
		return "Not Supported";
	case NVML_ERROR_NO_PERMISSION:
		return "Insufficient Permissions";
	case NVML_ERROR_NOT_FOUND:
		return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED:
		return "Driver Not Loaded";
	case NVML_ERROR_TIMEOUT:
		return "Timeout";
	case NVML_ERROR_GPU_IS_LOST:
		return "GPU is lost";
	default:
		return "Unknown Error";
	}
}

nvmlReturn_t
nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	return leave(copy_string(version, length, "999.99.99-fake"));
}

nvmlReturn_t
nvmlDeviceGetCount_v2(unsigned int *count)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!count)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	*count = ndev;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (index >= ndev || !device)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	*device = &devs[index];
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!valid(d))
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	return leave(copy_string(name, length, "NVIDIA Fake H100"));
}

nvmlReturn_t
nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length)
{
	char buf[64];

	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!valid(d))
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	snprintf(buf, sizeof buf, "GPU-fake0000-0000-0000-0000-%012u",
	    d->index);
	return leave(copy_string(uuid, length, buf));
}

nvmlReturn_t
nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (!u)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	d->polls++;
	u->gpu = (unsigned)((d->polls * 7 + d->index * 13) % 101);
	u->memory = (unsigned)((d->polls * 3 + d->index) % 101);
	if (die_after && d->index == 0 && d->polls >= die_after)
		dead = 1; /* this answer is the last */
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (!m)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	m->total = 80 * GIB;
	m->used = (d->index + 1) * GIB + d->polls * MIB;
	if (m->used > m->total)
		m->used = m->total;
	m->free = m->total - m->used;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *temp)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (sensor != 0 || !temp)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	*temp = 40 + d->index;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *milliwatts)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (no_power)
		return leave(NVML_ERROR_NOT_SUPPORTED);
	if (!milliwatts)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	*milliwatts = 250500;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (!mj)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	*mj = (d->index + 1) * 1000000ULL + d->polls * 250500ULL;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int error_type, int counter_type,
    unsigned long long *count)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (error_type < 0 || error_type > 1 || counter_type < 0 ||
	    counter_type > 1 || !count)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	if (counter_type == 0)
		*count = error_type == 0 ? d->index : 0;
	else
		*count = error_type == 0 ? 100 + d->index : 1;
	return leave(NVML_SUCCESS);
}

static int
valid_set(nvmlEventSet_t s)
{
	return s >= sets && s < sets + FAKE_SETS && s->magic == FAKE_MAGIC &&
	    s->used;
}

nvmlReturn_t
nvmlEventSetCreate(nvmlEventSet_t *set)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!set)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	for (unsigned i = 0; i < FAKE_SETS; i++) {
		if (sets[i].used)
			continue;
		memset(&sets[i], 0, sizeof sets[i]);
		sets[i].magic = FAKE_MAGIC;
		sets[i].used = 1;
		sets_live++;
		*set = &sets[i];
		return leave(NVML_SUCCESS);
	}
	return leave(NVML_ERROR_UNKNOWN);
}

nvmlReturn_t
nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
    nvmlEventSet_t set)
{
	nvmlReturn_t rc;

	enter();
	if ((rc = check(d)) != NVML_SUCCESS)
		return leave(rc);
	if (!valid_set(set))
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	if (types & ~XID_EVENT)
		return leave(NVML_ERROR_NOT_SUPPORTED);
	set->mask[d->index] |= types;
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
    unsigned int timeoutms)
{
	(void)timeoutms; /* nothing arrives later: never waits */
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!valid_set(set) || !data)
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	if (!nxid || !(set->mask[0] & XID_EVENT))
		return leave(NVML_ERROR_TIMEOUT);
	memset(data, 0, sizeof *data);
	data->device = &devs[0];
	data->eventType = XID_EVENT;
	data->eventData = xids[0];
	memmove(xids, xids + 1, --nxid * sizeof xids[0]);
	return leave(NVML_SUCCESS);
}

nvmlReturn_t
nvmlEventSetFree(nvmlEventSet_t set)
{
	enter();
	if (!refs)
		return leave(NVML_ERROR_UNINITIALIZED);
	if (!valid_set(set))
		return leave(NVML_ERROR_INVALID_ARGUMENT);
	set->used = 0;
	sets_live--;
	return leave(NVML_SUCCESS);
}

/* Test hooks. */
void
fake_nvml_stats(unsigned *ret_inits, unsigned *ret_shutdowns, int *ret_sets,
    unsigned *ret_foreign)
{
	pthread_mutex_lock(&lock);
	*ret_inits = inits;
	*ret_shutdowns = shutdowns;
	*ret_sets = sets_live;
	*ret_foreign = foreign;
	pthread_mutex_unlock(&lock);
}

void
fake_nvml_hold(int on)
{
	pthread_mutex_lock(&lock);
	held = on;
	if (!on)
		pthread_cond_broadcast(&released);
	pthread_mutex_unlock(&lock);
}
