/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVIDIA's NVML C API, as far as shoal uses it: return codes, constants and
 * the structures passed by pointer, written from NVIDIA's published API so
 * that nothing needs nvml.h or the driver to build. agent/gpu.c calls it
 * through dlsym(); tests/tools/fake_nvml.c implements it for the tests.
 * The device and event set handles are opaque pointers here; the fake
 * defines their structures.
 */
#ifndef SHOAL_AGENT_NVML_H
#define SHOAL_AGENT_NVML_H

typedef int nvmlReturn_t;
enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NO_PERMISSION = 4,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_DRIVER_NOT_LOADED = 9,
	NVML_ERROR_TIMEOUT = 10,
	NVML_ERROR_GPU_IS_LOST = 15,
	NVML_ERROR_UNKNOWN = 999,
};
enum { NVML_TEMPERATURE_GPU = 0 };
enum {
	NVML_MEMORY_ERROR_TYPE_CORRECTED = 0,
	NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1,
};
enum { NVML_VOLATILE_ECC = 0, NVML_AGGREGATE_ECC = 1 };
#define NVML_EVENT_TYPE_XID_CRITICAL_ERROR 0x0000000000000008ULL

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;
typedef struct {
	unsigned int gpu;
	unsigned int memory;
} nvmlUtilization_t;
typedef struct {
	unsigned long long total;
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_t;
typedef struct {
	nvmlDevice_t device;
	unsigned long long eventType;
	unsigned long long eventData; /* the Xid */
	unsigned int gpuInstanceId;
	unsigned int computeInstanceId;
} nvmlEventData_t;

#endif
