/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of the kernel's /proc text files the metrics collector reads:
 * /proc/stat, /proc/meminfo, /proc/loadavg, /proc/pressure/{cpu,memory,io},
 * /proc/diskstats, /proc/net/dev and /proc/self/mounts (mountinfo's older
 * sibling). Each takes the file's bytes (not NUL-terminated, may be
 * truncated or garbage) and fills a caller-owned structure whose arrays have
 * a fixed capacity, so sampling allocates nothing. They return 0, or
 * SHOAL_E_MALFORMED with err naming the line and what was wrong; rows beyond
 * an array's capacity are counted in `dropped`, not an error.
 */
#ifndef SHOAL_AGENT_PROCFS_H
#define SHOAL_AGENT_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* node_exporter's modes, in /proc/stat's column order. */
enum {
	CPU_USER,
	CPU_NICE,
	CPU_SYSTEM,
	CPU_IDLE,
	CPU_IOWAIT,
	CPU_IRQ,
	CPU_SOFTIRQ,
	CPU_STEAL,
	CPU_MODES,
};
extern const char *const procfs_cpu_modes[CPU_MODES]; /* "user", ... */

#define PROCFS_CPUS_MAX 1024

typedef struct procfs_cpu {
	unsigned cpu;              /* N of "cpuN" */
	uint64_t ticks[CPU_MODES]; /* USER_HZ ticks */
} procfs_cpu_t;

typedef struct procfs_stat {
	uint64_t total[CPU_MODES]; /* the "cpu" line */
	procfs_cpu_t cpus[PROCFS_CPUS_MAX];
	size_t ncpus, dropped;
	uint64_t ctxt, intr, btime, processes, procs_running, procs_blocked;
} procfs_stat_t;

#define PROCFS_MEMINFO_MAX 128

typedef struct procfs_meminfo {
	struct {
		char name[48];  /* "MemAvailable", "Active(anon)", ... */
		uint64_t value; /* bytes when the line says kB, else a count */
		int bytes;      /* the line had a kB unit */
	} v[PROCFS_MEMINFO_MAX];
	size_t n, dropped;
} procfs_meminfo_t;

/* Looks a field up by name; 0 and *found = 0 when absent. */
uint64_t procfs_meminfo_get(const procfs_meminfo_t *m, const char *name,
    int *found);

typedef struct procfs_loadavg {
	double load1, load5, load15;
} procfs_loadavg_t;

typedef struct procfs_psi_line {
	int present;
	double avg10, avg60, avg300;
	uint64_t total_us;
} procfs_psi_line_t;

typedef struct procfs_pressure {
	procfs_psi_line_t some, full; /* cpu has no "full" on older kernels */
} procfs_pressure_t;

#define PROCFS_DISKS_MAX 1024

typedef struct procfs_disk {
	char name[64];
	uint64_t reads, reads_merged, sectors_read, read_ms;
	uint64_t writes, writes_merged, sectors_written, write_ms;
	uint64_t io_now, io_ms, io_weighted_ms;
	/* kernel 4.18+; 0 when the line is shorter */
	uint64_t discards, discards_merged, sectors_discarded, discard_ms;
	/* kernel 5.5+ */
	uint64_t flushes, flush_ms;
} procfs_disk_t;

typedef struct procfs_diskstats {
	procfs_disk_t v[PROCFS_DISKS_MAX];
	size_t n, dropped;
} procfs_diskstats_t;

#define PROCFS_NETDEVS_MAX 1024

typedef struct procfs_netdev {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errs, rx_drop, rx_fifo, rx_frame,
	    rx_compressed, rx_multicast;
	uint64_t tx_bytes, tx_packets, tx_errs, tx_drop, tx_fifo, tx_colls,
	    tx_carrier, tx_compressed;
} procfs_netdev_t;

typedef struct procfs_netdevs {
	procfs_netdev_t v[PROCFS_NETDEVS_MAX];
	size_t n, dropped;
} procfs_netdevs_t;

#define PROCFS_MOUNTS_MAX 1024

typedef struct procfs_mount {
	char device[256];     /* octal escapes (\040) decoded */
	char mountpoint[256]; /* decoded */
	char fstype[32];
	int readonly; /* "ro" among the options */
} procfs_mount_t;

typedef struct procfs_mounts {
	procfs_mount_t v[PROCFS_MOUNTS_MAX];
	size_t n, dropped;
} procfs_mounts_t;

int procfs_parse_stat(const char *buf, size_t len, procfs_stat_t *out,
    char *err, size_t errlen);
int procfs_parse_meminfo(const char *buf, size_t len, procfs_meminfo_t *out,
    char *err, size_t errlen);
int procfs_parse_loadavg(const char *buf, size_t len, procfs_loadavg_t *out,
    char *err, size_t errlen);
int procfs_parse_pressure(const char *buf, size_t len, procfs_pressure_t *out,
    char *err, size_t errlen);
int procfs_parse_diskstats(const char *buf, size_t len, procfs_diskstats_t *out,
    char *err, size_t errlen);
int procfs_parse_netdev(const char *buf, size_t len, procfs_netdevs_t *out,
    char *err, size_t errlen);
int procfs_parse_mounts(const char *buf, size_t len, procfs_mounts_t *out,
    char *err, size_t errlen);

#endif
