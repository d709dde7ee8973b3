/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GPUs through NVIDIA's NVML, loaded at run time with dlopen() so neither
 * the build nor the package depends on the driver. A thread of its own
 * loads the library, initialises it and samples every device each
 * interval (NVML calls can take milliseconds, the first seconds); the event
 * loop only copies the newest sample. Without the library, or when it does
 * not initialise, the node has no GPUs and everything else carries on.
 */
#ifndef SHOAL_AGENT_GPU_H
#define SHOAL_AGENT_GPU_H

#include <stddef.h>
#include <stdint.h>

#define GPU_MAX 16
#define GPU_DEFAULT_LIBRARY "libnvidia-ml.so.1"

typedef struct gpu_device {
	unsigned index;
	char uuid[96];
	char name[96];         /* "NVIDIA H100 80GB HBM3" */
	char pci_bus_id[32];   /* "00000000:17:00.0"; may be empty */
	unsigned util_percent; /* GPU utilisation, last sample period */
	unsigned mem_util_percent;
	uint64_t mem_total, mem_used, mem_free; /* bytes */
	unsigned temperature_c;
	double power_w;
	double energy_j; /* total since driver load; 0 when not supported */
	uint64_t ecc_sbe_volatile,
	    ecc_dbe_volatile; /* corrected, uncorrected */
	uint64_t ecc_sbe_aggregate, ecc_dbe_aggregate;
	int ecc_supported;
	uint64_t xid_errors; /* Xid events seen since the agent started */
	unsigned long long last_xid; /* the last Xid's code; 0: none */
	/* a metric the device does not support is left 0 and its bit clear */
	unsigned have; /* GPU_HAVE_* */
} gpu_device_t;

enum {
	GPU_HAVE_UTIL = 1 << 0,
	GPU_HAVE_MEM = 1 << 1,
	GPU_HAVE_TEMP = 1 << 2,
	GPU_HAVE_POWER = 1 << 3,
	GPU_HAVE_ENERGY = 1 << 4,
	GPU_HAVE_ECC = 1 << 5,
};

typedef struct gpu_sample {
	/* 0: not tried yet; 1: NVML answered (ndevices may be 0); -1: no
	 * NVML (why says why: "libnvidia-ml.so.1: cannot open shared object
	 * file", "nvmlInit: Driver Not Loaded", ...) */
	int state;
	char why[256];
	char driver_version[80];
	size_t ndevices;
	gpu_device_t devices[GPU_MAX];
	uint64_t sampled_ms; /* wall clock of the sample; 0: none yet */
} gpu_sample_t;

typedef struct gpu gpu_t;

/*
 * Starts the sampling thread. library: a file name dlopen() searches for,
 * or a path (tests point it at a fake); interval_ms: between samples.
 * Never fails for want of NVML: that is a state of the sample.
 */
int gpu_new(const char *library, uint64_t interval_ms, gpu_t **ret);
/* Stops the thread, shuts NVML down and unloads it. */
void gpu_destroy(gpu_t **g);
/* Copies the newest sample. */
void gpu_get(gpu_t *g, gpu_sample_t *out);

#endif
