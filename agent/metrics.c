/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host metrics collector (see metrics.h). Its files stay open and are
 * read again from offset 0 each sample (/proc files answer pread with a
 * fresh rendering), into one buffer that grows to the largest file once.
 * The parsers fill fixed tables, so a steady-state sample makes no
 * allocation: an agent sampled for months stays the size it started at.
 *
 * File systems: statvfs(2) of every mount node_exporter would show by
 * default (the same excluded types and mount points), except network and
 * FUSE file systems, whose statvfs blocks while their server hangs, which
 * would stall the loop.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "agent/fsstat.h"
#include "agent/gpu.h"
#include "agent/metrics.h"
#include "agent/procfs.h"
#include "common/log.h"
#include "common/util.h"

/* A /proc file larger than this is not read (mounts of a huge host). */
#define FILE_MAX (4u << 20)

enum {
	F_STAT,
	F_MEMINFO,
	F_LOADAVG,
	F_PSI_CPU,
	F_PSI_MEMORY,
	F_PSI_IO,
	F_DISKSTATS,
	F_NETDEV,
	F_MOUNTS,
	F_COUNT,
};

static const struct {
	const char *path;      /* below proc_root */
	const char *collector; /* node_scrape_collector_success's label */
} files[F_COUNT] = {
	[F_STAT] = { "stat", "cpu" },
	[F_MEMINFO] = { "meminfo", "meminfo" },
	[F_LOADAVG] = { "loadavg", "loadavg" },
	[F_PSI_CPU] = { "pressure/cpu", "pressure" },
	[F_PSI_MEMORY] = { "pressure/memory", "pressure" },
	[F_PSI_IO] = { "pressure/io", "pressure" },
	[F_DISKSTATS] = { "diskstats", "diskstats" },
	[F_NETDEV] = { "net/dev", "netdev" },
	[F_MOUNTS] = { "mounts", "filesystem" },
};

struct metrics {
	zloop_t *loop;
	int timer;
	char *proc;
	char hostname[256];
	double tick_s; /* one USER_HZ tick */
	int fd[F_COUNT];
	int ok[F_COUNT];     /* the last sample parsed */
	int warned[F_COUNT]; /* a parse error was logged */
	int mounts_pollable; /* a /proc mount table: poll() says it changed */
	char *buf;
	size_t cap;

	procfs_stat_t stat;
	procfs_meminfo_t mem;
	procfs_loadavg_t load;
	procfs_pressure_t psi[3]; /* cpu, memory, io */
	procfs_diskstats_t disks;
	unsigned char disk_shown[PROCFS_DISKS_MAX];
	procfs_netdevs_t net;
	procfs_mounts_t mounts;
	const procfs_mount_t *shown[PROCFS_MOUNTS_MAX];
	fsstat_t *fsw; /* statvfs off the loop */
	fsstat_result_t fs[PROCFS_MOUNTS_MAX];
	size_t nfs;
	char hung[sizeof((procfs_mount_t *)0)->mountpoint]; /* logged */

	/* CPU use between the last two samples */
	uint64_t prev_busy, prev_total;
	int have_prev;
	double cpu_percent;

	gpu_t *gpu; /* NULL: GPUs off */
	gpu_sample_t gs;

	uint64_t sample_us;
};

/* Skips the decimal digits at s; NULL when there are none. */
static const char *
digits(const char *s)
{
	const char *p = s;

	while (*p >= '0' && *p <= '9')
		p++;
	return p > s ? p : NULL;
}

/*
 * node_exporter's default device exclusion, by hand (regexec() costs about
 * a microsecond a call, on every sample): ram0, loop3, fd0, and partitions
 * like sda1, vdb2, xvda1 and nvme0n1p2.
 */
static int
disk_shown(const char *n)
{
	static const char *const counted[] = { "ram", "loop", "fd" };
	const char *p;

	for (size_t i = 0; i < ARRAY_SIZE(counted); i++) {
		size_t k = strlen(counted[i]);

		if (strncmp(n, counted[i], k) == 0 && (p = digits(n + k)) &&
		    !*p)
			return 0;
	}
	p = n;
	if (strncmp(p, "xv", 2) == 0)
		p += 2;
	else if (*p == 'h' || *p == 's' || *p == 'v')
		p++;
	else
		p = NULL;
	if (p && p[0] == 'd' && p[1] >= 'a' && p[1] <= 'z' &&
	    (p = digits(p + 2)) && !*p)
		return 0;
	if (strncmp(n, "nvme", 4) == 0 && (p = digits(n + 4)) && *p == 'n' &&
	    (p = digits(p + 1)) && *p == 'p' && (p = digits(p + 1)) && !*p)
		return 0;
	return 1;
}

/* node_exporter's default mount point exclusion: /dev, /proc and /sys and
 * below, and what is below /run/credentials/, /var/lib/docker/ and
 * /var/lib/containers/storage/. */
static int
mountpoint_shown(const char *m)
{
	static const char *const trees[] = { "/dev", "/proc", "/sys" };
	static const char *const below[] = { "/run/credentials/",
		"/var/lib/docker/", "/var/lib/containers/storage/" };

	for (size_t i = 0; i < ARRAY_SIZE(trees); i++) {
		size_t k = strlen(trees[i]);

		if (strncmp(m, trees[i], k) == 0 &&
		    (m[k] == '\0' || m[k] == '/'))
			return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(below); i++) {
		size_t k = strlen(below[i]);

		if (strncmp(m, below[i], k) == 0 && m[k])
			return 0;
	}
	return 1;
}

static const char *const fstype_excluded[] = { "autofs", "binfmt_misc", "bpf",
	"cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
	"fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc",
	"procfs", "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs",
	"sysfs", "tracefs",
	/* may block the loop: see the top of the file */
	"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p",
	"afs", "lustre", "gpfs", "beegfs", "gfs2", "ocfs2", "wekafs",
	"orangefs", "glusterfs" };

static int
fstype_shown(const char *t)
{
	/* fuse, fuseblk, fuse.sshfs, ...: a user-space daemon answers */
	if (strncmp(t, "fuse", 4) == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(fstype_excluded); i++)
		if (strcmp(t, fstype_excluded[i]) == 0)
			return 0;
	return 1;
}

/* The whole file into m->buf; its length, or -1. Until a read returns 0:
 * a /proc file comes a page or so per read, a short read is not its end. */
static ssize_t
read_file(metrics_t *m, int fd)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		if (m->cap - len < 4096) {
			if (m->cap >= FILE_MAX) {
				errno = EFBIG;
				return -1;
			}
			m->cap = m->cap ? m->cap * 2 : 65536;
			m->buf = xrealloc(m->buf, m->cap);
		}
		n = pread(fd, m->buf + len, m->cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
	}
}

static void
parse(metrics_t *m, int f, ssize_t len, const char *err, int r)
{
	m->ok[f] = len >= 0 && r == 0;
	if (m->ok[f] || m->warned[f])
		return;
	/* Once per file: a kernel that writes what we cannot read would
	 * otherwise fill the journal every few seconds. */
	m->warned[f] = 1;
	if (len < 0)
		log_warning("metrics: cannot read %s/%s: %s", m->proc,
		    files[f].path, strerror(errno));
	else
		log_warning("metrics: %s/%s: %s", m->proc, files[f].path, err);
}

/* Asks the statvfs thread for the mounts node_exporter would show, and
 * takes its newest answers (the previous sample's ask). */
static void
sample_filesystems(metrics_t *m)
{
	const char *hung;
	size_t n = 0;

	for (size_t i = 0; i < m->mounts.n; i++) {
		const procfs_mount_t *mt = &m->mounts.v[i];
		int dup = 0;

		if (!fstype_shown(mt->fstype) ||
		    !mountpoint_shown(mt->mountpoint))
			continue;
		/* A mount point mounted over shows its top mount only. */
		for (size_t j = i + 1; j < m->mounts.n && !dup; j++)
			dup = strcmp(m->mounts.v[j].mountpoint,
			          mt->mountpoint) == 0;
		if (!dup)
			m->shown[n++] = mt;
	}
	fsstat_request(m->fsw, m->shown, n);
	m->nfs = fsstat_results(m->fsw, m->fs, ARRAY_SIZE(m->fs), &hung);
	if (hung && strcmp(hung, m->hung) != 0)
		log_warning("metrics: statvfs(%s) has not returned for %ds: "
		            "its file system is reported failing, the others' "
		            "figures stay as they were",
		    hung, FSSTAT_HANG_MS / 1000);
	snprintf(m->hung, sizeof m->hung, "%s", hung ? hung : "");
}

/*
 * Whether the mount table is to be read again. It is the largest file
 * here (tens of KiB on a container host, a dozen reads), and it changes
 * only with a mount or an unmount, which the kernel signals on the open
 * file as a priority event (proc(5)). A fixture file is not /proc: read.
 */
static int
mounts_changed(metrics_t *m)
{
	struct pollfd pfd = { .fd = m->fd[F_MOUNTS], .events = POLLPRI };

	if (!m->mounts_pollable || !m->ok[F_MOUNTS])
		return 1;
	return poll(&pfd, 1, 0) != 0;
}

void
metrics_sample(metrics_t *m)
{
	char err[256] = "";
	uint64_t t0 = mono_us(), busy, total;
	ssize_t n;
	int r;

#define PARSE(f, fn, out)                                                     \
	do {                                                                  \
		if (m->fd[f] < 0)                                             \
			break;                                                \
		n = read_file(m, m->fd[f]);                                   \
		r = n < 0 ? -1 : fn(m->buf, (size_t)n, out, err, sizeof err); \
		parse(m, f, n, err, r);                                       \
	} while (0)
	PARSE(F_STAT, procfs_parse_stat, &m->stat);
	PARSE(F_MEMINFO, procfs_parse_meminfo, &m->mem);
	PARSE(F_LOADAVG, procfs_parse_loadavg, &m->load);
	PARSE(F_PSI_CPU, procfs_parse_pressure, &m->psi[0]);
	PARSE(F_PSI_MEMORY, procfs_parse_pressure, &m->psi[1]);
	PARSE(F_PSI_IO, procfs_parse_pressure, &m->psi[2]);
	PARSE(F_DISKSTATS, procfs_parse_diskstats, &m->disks);
	PARSE(F_NETDEV, procfs_parse_netdev, &m->net);
	if (mounts_changed(m))
		PARSE(F_MOUNTS, procfs_parse_mounts, &m->mounts);
#undef PARSE

	if (m->ok[F_DISKSTATS])
		for (size_t i = 0; i < m->disks.n; i++)
			m->disk_shown[i] =
			    (unsigned char)disk_shown(m->disks.v[i].name);
	if (m->ok[F_MOUNTS])
		sample_filesystems(m);

	if (m->ok[F_STAT]) {
		const uint64_t *c = m->stat.total;

		total = 0;
		for (int i = 0; i < CPU_MODES; i++)
			total += c[i];
		busy = total - c[CPU_IDLE] - c[CPU_IOWAIT];
		m->cpu_percent = 0;
		if (m->have_prev && total > m->prev_total &&
		    busy >= m->prev_busy)
			m->cpu_percent = 100.0 * (double)(busy - m->prev_busy) /
			    (double)(total - m->prev_total);
		/* iowait may run backwards (proc(5)): never above 100. */
		if (m->cpu_percent > 100)
			m->cpu_percent = 100;
		m->prev_busy = busy;
		m->prev_total = total;
		m->have_prev = 1;
	} else {
		m->cpu_percent = 0;
		m->have_prev = 0;
	}
	if (m->gpu)
		gpu_get(m->gpu, &m->gs);

	m->sample_us = mono_us() - t0;
}

static int
on_timer(zloop_t *loop, int timer_id, void *arg)
{
	(void)loop;
	(void)timer_id;
	metrics_sample(arg);
	return 0;
}

int
metrics_new(zloop_t *loop, const metrics_config_t *cfg, metrics_t **ret)
{
	metrics_t *m = xcalloc(1, sizeof *m);
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t interval =
	    cfg->interval_ms ? cfg->interval_ms : METRICS_INTERVAL_DEFAULT_MS;

	m->loop = loop;
	m->proc = xstrdup(cfg->proc_root);
	snprintf(m->hostname, sizeof m->hostname, "%s",
	    cfg->hostname ? cfg->hostname : "");
	m->tick_s = 1.0 / (double)(hz > 0 ? hz : 100);
	for (int f = 0; f < F_COUNT; f++) {
		char *path = xasprintf("%s/%s", m->proc, files[f].path);

		/* Pressure files are missing on kernels without PSI: those
		 * families are left out, as node_exporter does. */
		m->fd[f] = open(path, O_RDONLY | O_CLOEXEC);
		if (m->fd[f] < 0 && errno != ENOENT)
			log_warning("metrics: cannot open %s: %s", path,
			    strerror(errno));
		free(path);
	}
	{
		struct statfs sf;

		m->mounts_pollable = m->fd[F_MOUNTS] >= 0 &&
		    fstatfs(m->fd[F_MOUNTS], &sf) == 0 &&
		    sf.f_type == PROC_SUPER_MAGIC;
	}
	if (fsstat_new(&m->fsw) < 0)
		abort(); /* no thread: out of resources at start-up */
	if (!cfg->nvml_library || strcmp(cfg->nvml_library, "off") != 0)
		gpu_new(cfg->nvml_library ? cfg->nvml_library
		                          : GPU_DEFAULT_LIBRARY,
		    interval, &m->gpu);
	metrics_sample(m);
	/* The first scrape should have the file systems. */
	fsstat_wait(m->fsw, 500);
	if (m->ok[F_MOUNTS])
		m->nfs = fsstat_results(m->fsw, m->fs, ARRAY_SIZE(m->fs),
		    &(const char *){ NULL });
	m->timer =
	    loop ? zloop_timer(loop, (size_t)interval, 0, on_timer, m) : -1;
	*ret = m;
	return 0;
}

void
metrics_destroy(metrics_t **mp)
{
	metrics_t *m = *mp;

	if (!m)
		return;
	if (m->timer >= 0)
		zloop_timer_end(m->loop, m->timer);
	gpu_destroy(&m->gpu);
	fsstat_destroy(&m->fsw);
	for (int f = 0; f < F_COUNT; f++)
		if (m->fd[f] >= 0)
			close(m->fd[f]);
	free(m->buf);
	free(m->proc);
	free(m);
	*mp = NULL;
}

void
metrics_figures(metrics_t *m, Shoal__HostFigures *f)
{
	uint64_t used = 0, total = 0;
	double util = 0;
	int found;

	f->load1 =
	    m->ok[F_LOADAVG] && isfinite(m->load.load1) && m->load.load1 >= 0
	    ? m->load.load1
	    : 0;
	f->cpu_percent = m->cpu_percent;
	f->memory_available_bytes =
	    procfs_meminfo_get(&m->mem, "MemAvailable", &found);
	f->memory_total_bytes = procfs_meminfo_get(&m->mem, "MemTotal", &found);
	if (m->gs.state > 0) {
		for (size_t i = 0; i < m->gs.ndevices; i++) {
			used += m->gs.devices[i].mem_used;
			total += m->gs.devices[i].mem_total;
			/* a driver's nonsense must not cost the heartbeat,
			 * which the coordinator checks */
			util += m->gs.devices[i].util_percent > 100
			    ? 100
			    : m->gs.devices[i].util_percent;
		}
		f->gpus = (uint32_t)m->gs.ndevices;
		f->gpu_util_percent =
		    m->gs.ndevices ? util / (double)m->gs.ndevices : 0;
		f->gpu_memory_used_bytes = used;
		f->gpu_memory_total_bytes = total;
	}
}

/* -- rendering ---------------------------------------------------------- */

static void
render_cpu(metrics_t *m, prom_t *p)
{
	const procfs_stat_t *s = &m->stat;

	prom_family(p, "node_cpu_seconds_total", "counter",
	    "Seconds the CPUs spent in each mode.");
	for (size_t i = 0; i < s->ncpus; i++)
		for (int mode = 0; mode < CPU_MODES; mode++) {
			prom_begin(p, "node_cpu_seconds_total");
			prom_label_uint(p, "cpu", s->cpus[i].cpu);
			prom_label(p, "mode", procfs_cpu_modes[mode]);
			prom_value(p,
			    (double)s->cpus[i].ticks[mode] * m->tick_s);
		}
	prom_family(p, "node_context_switches_total", "counter",
	    "Total number of context switches.");
	prom_count(p, "node_context_switches_total", s->ctxt);
	prom_family(p, "node_intr_total", "counter",
	    "Total number of interrupts serviced.");
	prom_count(p, "node_intr_total", s->intr);
	prom_family(p, "node_forks_total", "counter", "Total number of forks.");
	prom_count(p, "node_forks_total", s->processes);
	prom_family(p, "node_boot_time_seconds", "gauge",
	    "Node boot time, in unixtime.");
	prom_count(p, "node_boot_time_seconds", s->btime);
	prom_family(p, "node_procs_running", "gauge",
	    "Number of processes in runnable state.");
	prom_count(p, "node_procs_running", s->procs_running);
	prom_family(p, "node_procs_blocked", "gauge",
	    "Number of processes blocked waiting for I/O to complete.");
	prom_count(p, "node_procs_blocked", s->procs_blocked);
}

/* node_exporter's meminfo names: "Active(anon)" -> node_memory_Active_anon,
 * with _bytes for the fields given in kB. */
static void
render_meminfo(metrics_t *m, prom_t *p)
{
	char name[96], help[128];

	for (size_t i = 0; i < m->mem.n; i++) {
		const char *src = m->mem.v[i].name;
		size_t k = (size_t)snprintf(name, sizeof name, "node_memory_");

		for (; *src && k + 8 < sizeof name; src++) {
			if (*src == '(' || *src == ')') {
				if (src[1] && src[1] != ')')
					name[k++] = '_';
				continue;
			}
			name[k++] = (*src >= 'a' && *src <= 'z') ||
			        (*src >= 'A' && *src <= 'Z') ||
			        (*src >= '0' && *src <= '9')
			    ? *src
			    : '_';
		}
		name[k] = '\0';
		if (m->mem.v[i].bytes)
			strcat(name, "_bytes");
		snprintf(help, sizeof help, "Memory information field %s.",
		    name + 12);
		prom_family(p, name, "gauge", help);
		prom_count(p, name, m->mem.v[i].value);
	}
}

static void
render_load(metrics_t *m, prom_t *p)
{
	prom_family(p, "node_load1", "gauge", "1m load average.");
	prom_gauge(p, "node_load1", m->load.load1);
	prom_family(p, "node_load5", "gauge", "5m load average.");
	prom_gauge(p, "node_load5", m->load.load5);
	prom_family(p, "node_load15", "gauge", "15m load average.");
	prom_gauge(p, "node_load15", m->load.load15);
}

static void
render_pressure(metrics_t *m, prom_t *p)
{
	static const struct {
		int file, psi, full;
		const char *name, *help;
	} v[] = {
		{ F_PSI_CPU, 0, 0, "node_pressure_cpu_waiting_seconds_total",
		    "Total time in seconds that processes have waited for "
		    "CPU time" },
		{ F_PSI_MEMORY, 1, 0,
		    "node_pressure_memory_waiting_seconds_total",
		    "Total time in seconds that processes have waited for "
		    "memory" },
		{ F_PSI_MEMORY, 1, 1,
		    "node_pressure_memory_stalled_seconds_total",
		    "Total time in seconds no process could make progress "
		    "due to memory congestion" },
		{ F_PSI_IO, 2, 0, "node_pressure_io_waiting_seconds_total",
		    "Total time in seconds that processes have waited due "
		    "to IO congestion" },
		{ F_PSI_IO, 2, 1, "node_pressure_io_stalled_seconds_total",
		    "Total time in seconds no process could make progress "
		    "due to IO congestion" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		const procfs_psi_line_t *l =
		    v[i].full ? &m->psi[v[i].psi].full : &m->psi[v[i].psi].some;

		if (!m->ok[v[i].file] || !l->present)
			continue;
		prom_family(p, v[i].name, "counter", v[i].help);
		prom_gauge(p, v[i].name, (double)l->total_us / 1e6);
	}
}

/* A per-device counter family: the field at offset off of every shown
 * row, times scale. */
typedef struct column {
	const char *name, *type, *help;
	size_t off;
	double scale;
} column_t;

#define DISK(field) offsetof(procfs_disk_t, field)
static const column_t disk_columns[] = {
	{ "node_disk_reads_completed_total", "counter",
	    "The total number of reads completed successfully.", DISK(reads),
	    1 },
	{ "node_disk_reads_merged_total", "counter",
	    "The total number of reads merged.", DISK(reads_merged), 1 },
	{ "node_disk_read_bytes_total", "counter",
	    "The total number of bytes read successfully.", DISK(sectors_read),
	    512 },
	{ "node_disk_read_time_seconds_total", "counter",
	    "The total number of seconds spent by all reads.", DISK(read_ms),
	    0.001 },
	{ "node_disk_writes_completed_total", "counter",
	    "The total number of writes completed successfully.", DISK(writes),
	    1 },
	{ "node_disk_writes_merged_total", "counter",
	    "The number of writes merged.", DISK(writes_merged), 1 },
	{ "node_disk_written_bytes_total", "counter",
	    "The total number of bytes written successfully.",
	    DISK(sectors_written), 512 },
	{ "node_disk_write_time_seconds_total", "counter",
	    "This is the total number of seconds spent by all writes.",
	    DISK(write_ms), 0.001 },
	{ "node_disk_io_now", "gauge",
	    "The number of I/Os currently in progress.", DISK(io_now), 1 },
	{ "node_disk_io_time_seconds_total", "counter",
	    "Total seconds spent doing I/Os.", DISK(io_ms), 0.001 },
	{ "node_disk_io_time_weighted_seconds_total", "counter",
	    "The weighted # of seconds spent doing I/Os.", DISK(io_weighted_ms),
	    0.001 },
	{ "node_disk_discards_completed_total", "counter",
	    "The total number of discards completed successfully.",
	    DISK(discards), 1 },
	{ "node_disk_discards_merged_total", "counter",
	    "The total number of discards merged.", DISK(discards_merged), 1 },
	{ "node_disk_discarded_sectors_total", "counter",
	    "The total number of sectors discarded successfully.",
	    DISK(sectors_discarded), 1 },
	{ "node_disk_discard_time_seconds_total", "counter",
	    "This is the total number of seconds spent by all discards.",
	    DISK(discard_ms), 0.001 },
	{ "node_disk_flush_requests_total", "counter",
	    "The total number of flush requests completed successfully",
	    DISK(flushes), 1 },
	{ "node_disk_flush_requests_time_seconds_total", "counter",
	    "This is the total number of seconds spent by all flush "
	    "requests.",
	    DISK(flush_ms), 0.001 },
};

#define NET(field) offsetof(procfs_netdev_t, field)
#define NETCOL(dir, what, field)                                              \
	{                                                                     \
		"node_network_" dir "_" what "_total", "counter",             \
		    "Network device statistic " dir "_" what ".", NET(field), \
		    1                                                         \
	}
static const column_t net_columns[] = {
	NETCOL("receive", "bytes", rx_bytes),
	NETCOL("receive", "packets", rx_packets),
	NETCOL("receive", "errs", rx_errs),
	NETCOL("receive", "drop", rx_drop),
	NETCOL("receive", "fifo", rx_fifo),
	NETCOL("receive", "frame", rx_frame),
	NETCOL("receive", "compressed", rx_compressed),
	NETCOL("receive", "multicast", rx_multicast),
	NETCOL("transmit", "bytes", tx_bytes),
	NETCOL("transmit", "packets", tx_packets),
	NETCOL("transmit", "errs", tx_errs),
	NETCOL("transmit", "drop", tx_drop),
	NETCOL("transmit", "fifo", tx_fifo),
	NETCOL("transmit", "colls", tx_colls),
	NETCOL("transmit", "carrier", tx_carrier),
	NETCOL("transmit", "compressed", tx_compressed),
};

static void
render_table(prom_t *p, const column_t *cols, size_t ncols, const void *rows,
    size_t row_size, size_t nrows, const unsigned char *shown)
{
	for (size_t c = 0; c < ncols; c++) {
		prom_family(p, cols[c].name, cols[c].type, cols[c].help);
		for (size_t i = 0; i < nrows; i++) {
			const char *row = (const char *)rows + i * row_size;
			uint64_t v;

			if (shown && !shown[i])
				continue;
			memcpy(&v, row + cols[c].off, sizeof v);
			prom_begin(p, cols[c].name);
			/* name is the first member of both row types */
			prom_label(p, "device", row);
			if (cols[c].scale == 1)
				prom_value_uint(p, v);
			else
				prom_value(p, (double)v * cols[c].scale);
		}
	}
}

static void
render_filesystems(metrics_t *m, prom_t *p)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} cols[] = {
		{ "node_filesystem_size_bytes", "Filesystem size in bytes.",
		    offsetof(fsstat_result_t, size) },
		{ "node_filesystem_free_bytes",
		    "Filesystem free space in bytes.",
		    offsetof(fsstat_result_t, free) },
		{ "node_filesystem_avail_bytes",
		    "Filesystem space available to non-root users in bytes.",
		    offsetof(fsstat_result_t, avail) },
		{ "node_filesystem_files", "Filesystem total file nodes.",
		    offsetof(fsstat_result_t, files) },
		{ "node_filesystem_files_free",
		    "Filesystem total free file nodes.",
		    offsetof(fsstat_result_t, files_free) },
		{ "node_filesystem_readonly", "Filesystem read-only status.",
		    0 },
		{ "node_filesystem_device_error",
		    "Whether an error occurred while getting statistics for "
		    "the given device.",
		    0 },
	};
	const size_t nsizes = ARRAY_SIZE(cols) - 2;

	for (size_t c = 0; c < ARRAY_SIZE(cols); c++) {
		prom_family(p, cols[c].name, "gauge", cols[c].help);
		for (size_t i = 0; i < m->nfs; i++) {
			const fsstat_result_t *fs = &m->fs[i];
			uint64_t v;

			if (c < nsizes && fs->error)
				continue;
			if (c < nsizes)
				memcpy(&v, (const char *)fs + cols[c].off,
				    sizeof v);
			else if (c == nsizes)
				v = (uint64_t)fs->mount.readonly;
			else
				v = (uint64_t)fs->error;
			prom_begin(p, cols[c].name);
			prom_label(p, "device", fs->mount.device);
			prom_label(p, "fstype", fs->mount.fstype);
			prom_label(p, "mountpoint", fs->mount.mountpoint);
			prom_value_uint(p, v);
		}
	}
}

/* DCGM exporter's names, units and labels. */
static void
render_gpus(metrics_t *m, prom_t *p)
{
	const gpu_sample_t *g = &m->gs;
	static const struct {
		const char *name, *type, *help;
		unsigned have;
	} f[] = {
		{ "DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).",
		    GPU_HAVE_UTIL },
		{ "DCGM_FI_DEV_MEM_COPY_UTIL", "gauge",
		    "Memory utilization (in %).", GPU_HAVE_UTIL },
		{ "DCGM_FI_DEV_FB_FREE", "gauge",
		    "Framebuffer memory free (in MiB).", GPU_HAVE_MEM },
		{ "DCGM_FI_DEV_FB_USED", "gauge",
		    "Framebuffer memory used (in MiB).", GPU_HAVE_MEM },
		{ "DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).",
		    GPU_HAVE_TEMP },
		{ "DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).",
		    GPU_HAVE_POWER },
		{ "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
		    "Total energy consumption since boot (in mJ).",
		    GPU_HAVE_ENERGY },
		{ "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter",
		    "Total number of single-bit volatile ECC errors.",
		    GPU_HAVE_ECC },
		{ "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter",
		    "Total number of double-bit volatile ECC errors.",
		    GPU_HAVE_ECC },
		{ "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "counter",
		    "Total number of single-bit persistent ECC errors.",
		    GPU_HAVE_ECC },
		{ "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "counter",
		    "Total number of double-bit persistent ECC errors.",
		    GPU_HAVE_ECC },
		{ "DCGM_FI_DEV_XID_ERRORS", "gauge",
		    "Value of the last XID error encountered.", ~0u },
	};

	prom_family(p, "shoal_gpu_nvml_up", "gauge",
	    "1 when NVML answered the GPU collector (0: no NVIDIA driver or "
	    "library, or it failed).");
	prom_gauge(p, "shoal_gpu_nvml_up", g->state > 0);
	prom_family(p, "shoal_gpu_devices", "gauge",
	    "GPUs NVML reports on this node.");
	prom_count(p, "shoal_gpu_devices", g->state > 0 ? g->ndevices : 0);
	if (g->state <= 0 || g->ndevices == 0)
		return;
	for (size_t k = 0; k < ARRAY_SIZE(f); k++) {
		int any = 0;

		for (size_t i = 0; i < g->ndevices; i++) {
			const gpu_device_t *d = &g->devices[i];
			char dev[24];
			double v;

			if (f[k].have != ~0u && !(d->have & f[k].have))
				continue;
			if (!any++)
				prom_family(p, f[k].name, f[k].type, f[k].help);
			switch (k) {
			case 0:
				v = d->util_percent;
				break;
			case 1:
				v = d->mem_util_percent;
				break;
			case 2:
				v = (double)(d->mem_free >> 20);
				break;
			case 3:
				v = (double)(d->mem_used >> 20);
				break;
			case 4:
				v = d->temperature_c;
				break;
			case 5:
				v = d->power_w;
				break;
			case 6:
				v = d->energy_j * 1000;
				break;
			case 7:
				v = (double)d->ecc_sbe_volatile;
				break;
			case 8:
				v = (double)d->ecc_dbe_volatile;
				break;
			case 9:
				v = (double)d->ecc_sbe_aggregate;
				break;
			case 10:
				v = (double)d->ecc_dbe_aggregate;
				break;
			default:
				v = (double)d->last_xid;
				break;
			}
			snprintf(dev, sizeof dev, "nvidia%u", d->index);
			prom_begin(p, f[k].name);
			prom_label_uint(p, "gpu", d->index);
			prom_label(p, "UUID", d->uuid);
			prom_label(p, "device", dev);
			prom_label(p, "modelName", d->name);
			prom_label(p, "Hostname", m->hostname);
			prom_value(p, v);
		}
	}
	prom_family(p, "shoal_gpu_xid_errors_total", "counter",
	    "Xid errors NVML reported since the agent started.");
	for (size_t i = 0; i < g->ndevices; i++) {
		prom_begin(p, "shoal_gpu_xid_errors_total");
		prom_label_uint(p, "gpu", g->devices[i].index);
		prom_label(p, "UUID", g->devices[i].uuid);
		prom_value_uint(p, g->devices[i].xid_errors);
	}
}

void
metrics_render(metrics_t *m, prom_t *p)
{
	static const int collectors[] = { F_STAT, F_MEMINFO, F_LOADAVG,
		F_PSI_CPU, F_DISKSTATS, F_NETDEV, F_MOUNTS };

	if (m->ok[F_STAT])
		render_cpu(m, p);
	if (m->ok[F_MEMINFO])
		render_meminfo(m, p);
	if (m->ok[F_LOADAVG])
		render_load(m, p);
	render_pressure(m, p);
	if (m->ok[F_DISKSTATS])
		render_table(p, disk_columns, ARRAY_SIZE(disk_columns),
		    m->disks.v, sizeof m->disks.v[0], m->disks.n,
		    m->disk_shown);
	if (m->ok[F_NETDEV])
		render_table(p, net_columns, ARRAY_SIZE(net_columns), m->net.v,
		    sizeof m->net.v[0], m->net.n, NULL);
	if (m->ok[F_MOUNTS])
		render_filesystems(m, p);
	render_gpus(m, p);

	prom_family(p, "node_scrape_collector_success", "gauge",
	    "node_exporter: Whether a collector succeeded.");
	for (size_t i = 0; i < ARRAY_SIZE(collectors); i++) {
		int f = collectors[i];

		int ok = m->ok[f];

		/* no pressure files at all: no pressure collector */
		if (m->fd[f] < 0)
			continue;
		if (f == F_PSI_CPU)
			ok = (m->fd[F_PSI_CPU] < 0 || m->ok[F_PSI_CPU]) &&
			    (m->fd[F_PSI_MEMORY] < 0 || m->ok[F_PSI_MEMORY]) &&
			    (m->fd[F_PSI_IO] < 0 || m->ok[F_PSI_IO]);
		prom_begin(p, "node_scrape_collector_success");
		prom_label(p, "collector", files[f].collector);
		prom_value_uint(p, (uint64_t)ok);
	}
	prom_family(p, "shoal_metrics_rows_dropped", "gauge",
	    "Rows of a /proc file beyond what the collector keeps (CPUs, "
	    "fields, disks, interfaces, mounts): not shown.");
	{
		const struct {
			const char *file;
			size_t n;
		} d[] = {
			{ "stat", m->stat.dropped },
			{ "meminfo", m->mem.dropped },
			{ "diskstats", m->disks.dropped },
			{ "net/dev", m->net.dropped },
			{ "mounts", m->mounts.dropped },
		};

		for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
			prom_begin(p, "shoal_metrics_rows_dropped");
			prom_label(p, "file", d[i].file);
			prom_value_uint(p, d[i].n);
		}
	}
	prom_family(p, "shoal_metrics_sample_duration_seconds", "gauge",
	    "What the last sample of the host's /proc files cost.");
	prom_gauge(p, "shoal_metrics_sample_duration_seconds",
	    (double)m->sample_us / 1e6);
}
