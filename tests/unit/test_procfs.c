/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/procfs.c: the /proc parsers against files captured from a Linux 6.18
 * machine (tests/unit/data/proc/) and hand-written ones for older kernels
 * and odd corners; then every prefix of every file (what a short read
 * leaves), random and mutated bytes, NULs, numbers past 2^64, 100 KB lines,
 * CRLF endings and more rows than the arrays hold. The fixtures are found
 * under $SHOAL_SRCDIR, "." when it is unset.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procfs.h"
#include "common/error.h"
#include "common/util.h"
#include "tests/tap.h"

/* Big: static, and one of each, with a copy of a whole file's parse. */
static procfs_stat_t st, st_full;
static procfs_meminfo_t mi, mi_full;
static procfs_loadavg_t la, la_full;
static procfs_pressure_t ps, ps_full;
static procfs_diskstats_t ds, ds_full;
static procfs_netdevs_t nd, nd_full;
static procfs_mounts_t mt, mt_full;
static char err[256];

static char *
load(const char *name, size_t *len)
{
	const char *dir = getenv("SHOAL_SRCDIR");
	char path[4096];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/tests/unit/data/proc/%s",
	    dir && *dir ? dir : ".", name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(1);
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		printf("Bail out! %s: short read\n", path);
		exit(1);
	}
	fclose(f);
	buf[n] = '\0'; /* for the tests' strstr; the parsers get n */
	*len = (size_t)n;
	return buf;
}

/* The same text with "\r\n" line endings; caller frees. */
static char *
crlf(const char *s, size_t len, size_t *ret_len)
{
	char *out = malloc(2 * len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			out[o++] = '\r';
		out[o++] = s[i];
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

/* Appends to a growing test buffer. */
struct sbuf {
	char *s;
	size_t n, cap;
};

static void
sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->n + n + 1 > b->cap) {
		b->cap = 2 * (b->n + n + 1);
		b->s = realloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, n + 1);
	b->n += n;
}

static void sb_addf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_addf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	sb_add(b, tmp);
}

#define S(lit) (lit), sizeof(lit) - 1

/*
 * The parsers behind one interface for the robustness tests: parse into the
 * static result, check what must hold whatever the input, save a whole
 * file's parse, and check a prefix's parse against it.
 */
struct parser {
	const char *name;
	int (*parse)(const char *buf, size_t len, char *err, size_t errlen);
	int (*sane)(int rc);
	void (*save)(void);
	/* a prefix's parse against the whole file's; lines: '\n's in it */
	int (*agrees)(size_t lines);
};

static int
p_stat(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_stat(b, n, &st, e, el);
}

static int
sane_stat(int rc)
{
	static const uint64_t zero[CPU_MODES];

	if (rc != 0)
		return st.ncpus == 0 && st.dropped == 0 && st.ctxt == 0 &&
		    st.intr == 0 && memcmp(st.total, zero, sizeof zero) == 0;
	return st.ncpus <= PROCFS_CPUS_MAX;
}

static void
save_stat(void)
{
	st_full = st;
}

static int
same_or_0(uint64_t got, uint64_t full)
{
	return got == 0 || got == full;
}

static int
agrees_stat(size_t lines)
{
	(void)lines;
	if (memcmp(st.total, st_full.total, sizeof st.total) != 0 ||
	    st.ncpus > st_full.ncpus)
		return 0;
	for (size_t i = 0; i < st.ncpus; i++) {
		if (st.cpus[i].cpu != st_full.cpus[i].cpu ||
		    memcmp(st.cpus[i].ticks, st_full.cpus[i].ticks,
		        sizeof st.cpus[i].ticks) != 0)
			return 0;
	}
	return same_or_0(st.ctxt, st_full.ctxt) &&
	    same_or_0(st.intr, st_full.intr) &&
	    same_or_0(st.btime, st_full.btime) &&
	    same_or_0(st.processes, st_full.processes) &&
	    same_or_0(st.procs_running, st_full.procs_running) &&
	    same_or_0(st.procs_blocked, st_full.procs_blocked);
}

static int
p_meminfo(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_meminfo(b, n, &mi, e, el);
}

static int
sane_meminfo(int rc)
{
	if (rc != 0)
		return mi.n == 0 && mi.dropped == 0;
	return mi.n <= PROCFS_MEMINFO_MAX;
}

static void
save_meminfo(void)
{
	mi_full = mi;
}

static int
agrees_meminfo(size_t lines)
{
	if (mi.n > mi_full.n || mi.n < lines || mi.n > lines + 1)
		return 0;
	for (size_t i = 0; i < mi.n; i++) {
		if (strcmp(mi.v[i].name, mi_full.v[i].name) != 0 ||
		    mi.v[i].value != mi_full.v[i].value ||
		    mi.v[i].bytes != mi_full.v[i].bytes)
			return 0;
	}
	return 1;
}

static int
p_loadavg(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_loadavg(b, n, &la, e, el);
}

static int
sane_loadavg(int rc)
{
	return rc == 0 || (la.load1 == 0 && la.load5 == 0 && la.load15 == 0);
}

static void
save_loadavg(void)
{
	la_full = la;
}

static int
agrees_loadavg(size_t lines)
{
	(void)lines;
	return la.load1 == la_full.load1 && la.load5 == la_full.load5 &&
	    la.load15 == la_full.load15;
}

static int
p_pressure(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_pressure(b, n, &ps, e, el);
}

static int
sane_pressure(int rc)
{
	return rc == 0 || (!ps.some.present && !ps.full.present);
}

static void
save_pressure(void)
{
	ps_full = ps;
}

static int
psi_same(const procfs_psi_line_t *a, const procfs_psi_line_t *b)
{
	return !a->present ||
	    (b->present && a->avg10 == b->avg10 && a->avg60 == b->avg60 &&
	        a->avg300 == b->avg300 && a->total_us == b->total_us);
}

static int
agrees_pressure(size_t lines)
{
	(void)lines;
	return psi_same(&ps.some, &ps_full.some) &&
	    psi_same(&ps.full, &ps_full.full);
}

static int
p_diskstats(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_diskstats(b, n, &ds, e, el);
}

static int
sane_diskstats(int rc)
{
	if (rc != 0)
		return ds.n == 0 && ds.dropped == 0;
	return ds.n <= PROCFS_DISKS_MAX;
}

static void
save_diskstats(void)
{
	ds_full = ds;
}

static int
agrees_diskstats(size_t lines)
{
	/* every line ends in a number, so a cut last line is never used */
	return ds.n == lines &&
	    memcmp(ds.v, ds_full.v, ds.n * sizeof ds.v[0]) == 0;
}

static int
p_netdev(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_netdev(b, n, &nd, e, el);
}

static int
sane_netdev(int rc)
{
	if (rc != 0)
		return nd.n == 0 && nd.dropped == 0;
	return nd.n <= PROCFS_NETDEVS_MAX;
}

static void
save_netdev(void)
{
	nd_full = nd;
}

static int
agrees_netdev(size_t lines)
{
	size_t rows = lines > 2 ? lines - 2 : 0;

	return nd.n == rows &&
	    memcmp(nd.v, nd_full.v, nd.n * sizeof nd.v[0]) == 0;
}

static int
p_mounts(const char *b, size_t n, char *e, size_t el)
{
	return procfs_parse_mounts(b, n, &mt, e, el);
}

static int
sane_mounts(int rc)
{
	if (rc != 0)
		return mt.n == 0 && mt.dropped == 0;
	return mt.n <= PROCFS_MOUNTS_MAX;
}

static void
save_mounts(void)
{
	mt_full = mt;
}

static int
agrees_mounts(size_t lines)
{
	/* a cut line whose pass field has begun is whole, and used */
	if (mt.n < lines || mt.n > lines + 1)
		return 0;
	return memcmp(mt.v, mt_full.v, mt.n * sizeof mt.v[0]) == 0;
}

static const struct parser P_STAT = { "stat", p_stat, sane_stat, save_stat,
	agrees_stat };
static const struct parser P_MEMINFO = { "meminfo", p_meminfo, sane_meminfo,
	save_meminfo, agrees_meminfo };
static const struct parser P_LOADAVG = { "loadavg", p_loadavg, sane_loadavg,
	save_loadavg, agrees_loadavg };
static const struct parser P_PRESSURE = { "pressure", p_pressure, sane_pressure,
	save_pressure, agrees_pressure };
static const struct parser P_DISKSTATS = { "diskstats", p_diskstats,
	sane_diskstats, save_diskstats, agrees_diskstats };
static const struct parser P_NETDEV = { "net/dev", p_netdev, sane_netdev,
	save_netdev, agrees_netdev };
static const struct parser P_MOUNTS = { "mounts", p_mounts, sane_mounts,
	save_mounts, agrees_mounts };

static const struct parser *const parsers[] = { &P_STAT, &P_MEMINFO, &P_LOADAVG,
	&P_PRESSURE, &P_DISKSTATS, &P_NETDEV, &P_MOUNTS };

/* Whether a parse's result is 0, or SHOAL_E_MALFORMED with a message. */
static int
clean(int rc, const char *e)
{
	return rc == 0 || (rc == SHOAL_E_MALFORMED && e[0] != '\0');
}

/*
 * Parses buf[0..len) from a copy of exactly len bytes, so that ASan or
 * valgrind catches a read past the end.
 */
static int
parse_exact(const struct parser *p, const char *buf, size_t len)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, buf, len);
	memset(err, 'x', sizeof err - 1);
	err[sizeof err - 1] = '\0';
	rc = p->parse(copy, len, err, sizeof err);
	free(copy);
	return rc;
}

static void
test_prefixes(const char *file, const struct parser *p)
{
	size_t len, lines = 0, failed = 0, parsed = 0;
	char *buf = load(file, &len);
	int rc;

	rc = parse_exact(p, buf, len);
	if (!ok(rc == 0, file))
		diag("%s", err);
	p->save();
	for (size_t k = 0; k <= len; k++) {
		if (k > 0 && buf[k - 1] == '\n')
			lines++;
		rc = parse_exact(p, buf, k);
		if (!clean(rc, err) || !p->sane(rc) ||
		    (rc == 0 && !p->agrees(lines))) {
			if (failed++ < 3)
				diag("%s: prefix of %zu bytes: rc %d, %s", file,
				    k, rc, err);
		}
		parsed += rc == 0;
	}
	okf(failed == 0,
	    "%s: all %zu prefixes parse to a part of the whole or fail "
	    "cleanly (%zu parsed)",
	    file, len + 1, parsed);
	free(buf);
}

static void
test_stat(void)
{
	static const uint64_t total[CPU_MODES] = { 837543, 0, 599454, 1836943,
		46009, 0, 18956, 0 };
	struct sbuf b = { 0 };
	size_t len, clen;
	char *buf, *cr;
	int rc;

	is_str(procfs_cpu_modes[CPU_IOWAIT], "iowait", "mode names");
	is_str(procfs_cpu_modes[CPU_STEAL], "steal", "mode names end in steal");

	buf = load("stat", &len);
	rc = procfs_parse_stat(buf, len, &st, err, sizeof err);
	is_int(rc, 0, "stat parses");
	ok(memcmp(st.total, total, sizeof total) == 0, "stat: the cpu line");
	is_int(st.ncpus, 2, "stat: 2 cpus");
	is_int(st.cpus[1].cpu, 1, "stat: cpu1");
	is_int(st.cpus[1].ticks[CPU_SYSTEM], 306990, "stat: cpu1 system");
	is_int(st.cpus[0].ticks[CPU_SOFTIRQ], 5946, "stat: cpu0 softirq");
	is_int(st.intr, 21847716, "stat: intr's total");
	is_int(st.ctxt, 41032806, "stat: ctxt");
	is_int(st.btime, 1796149918, "stat: btime");
	is_int(st.processes, 807906, "stat: processes");
	is_int(st.procs_running, 3, "stat: procs_running");
	is_int(st.dropped, 0, "stat: nothing dropped");
	st_full = st;
	cr = crlf(buf, len, &clen);
	rc = procfs_parse_stat(cr, clen, &st, err, sizeof err);
	ok(rc == 0 && memcmp(st.total, total, sizeof total) == 0 &&
	        st.ncpus == 2 &&
	        memcmp(st.cpus, st_full.cpus, 2 * sizeof st.cpus[0]) == 0 &&
	        st.ctxt == st_full.ctxt && st.intr == st_full.intr,
	    "stat: CRLF line endings parse the same");
	free(cr);
	free(buf);

	buf = load("stat-old", &len);
	rc = procfs_parse_stat(buf, len, &st, err, sizeof err);
	ok(rc == 0 && st.total[CPU_IDLE] == 22625563 &&
	        st.total[CPU_SOFTIRQ] == 456 && st.total[CPU_STEAL] == 0,
	    "stat-old: 7 columns, steal 0");
	ok(st.ncpus == 2 && st.cpus[0].ticks[CPU_IRQ] == 127 &&
	        st.cpus[1].ticks[CPU_SOFTIRQ] == 18,
	    "stat-old: the cpus");
	ok(st.intr == 114930548 && st.ctxt == 1990473 &&
	        st.btime == 1062191376 && st.procs_running == 1,
	    "stat-old: the counters");
	free(buf);

	buf = load("stat-2.4", &len);
	rc = procfs_parse_stat(buf, len, &st, err, sizeof err);
	ok(rc == 0 && st.total[CPU_SYSTEM] == 2076 &&
	        st.total[CPU_IDLE] == 244690 && st.total[CPU_IOWAIT] == 0 &&
	        st.ncpus == 1 && st.intr == 258573 && st.ctxt == 61832 &&
	        st.processes == 851 && st.procs_running == 0,
	    "stat-2.4: 4 columns; page, swap and disk_io lines skipped");
	free(buf);

	rc = procfs_parse_stat(S("cpu  1 2 3\n"), &st, err, sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "stat: 3 numbers are too few");
	is_str(err, "line 1: cpu: expected at least 4 numbers",
	    "stat: the message names the line");
	rc = procfs_parse_stat(S("cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 x 4\n"),
	    &st, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && st.ncpus == 0,
	    "stat: a letter for a number fails the parse, zeroed");
	is_str(err, "line 3: cpu1: field 3 is not a number",
	    "stat: which line and field");
	rc = procfs_parse_stat(S("intr 5\nctxt 6\n"), &st, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && strcmp(err, "no \"cpu\" line") == 0,
	    "stat: no cpu line is an error");
	rc = procfs_parse_stat("", 0, &st, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && err[0], "stat: empty is an error");
	rc = procfs_parse_stat(S("cpu  1 2 3 4\nctxt\n"), &st, err, sizeof err);
	is_str(err, "line 2: ctxt: expected a number", "stat: ctxt alone");
	rc = procfs_parse_stat(S("cpu\t1\t2\t3\t4\ncpufreq x\n"), &st, err,
	    sizeof err);
	ok(rc == 0 && st.total[CPU_IDLE] == 4,
	    "stat: tabs separate; an unknown cpu... line is skipped");

	rc = procfs_parse_stat(S("cpu  18446744073709551615 0 0 0\n"), &st, err,
	    sizeof err);
	ok(rc == 0 && st.total[CPU_USER] == UINT64_MAX, "stat: 2^64-1 fits");
	rc = procfs_parse_stat(S("cpu  18446744073709551616 0 0 0\n"), &st, err,
	    sizeof err);
	ok(rc == SHOAL_E_MALFORMED &&
	        strcmp(err, "line 1: cpu: field 1 is out of range") == 0,
	    "stat: 2^64 is an error, not saturated");
	rc = procfs_parse_stat(S("cpu  99999999999999999999999 0 0 0\n"), &st,
	    err, sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "stat: 23 digits are an error");
	rc = procfs_parse_stat(S("cpu  1 2 3 4\ncpu4294967296 1 2 3 4\n"), &st,
	    err, sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "stat: a cpu number past 2^32");
	rc = procfs_parse_stat(S("cpu  1 2 3 4\ncpu0 -1 2 3 4\n"), &st, err,
	    sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "stat: a sign is not a number");

	/* a cut last line */
	rc = procfs_parse_stat(S("cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8"),
	    &st, err, sizeof err);
	ok(rc == 0 && st.ncpus == 0 && err[0] == '\0',
	    "stat: a cut last line ending in steal is dropped");
	rc =
	    procfs_parse_stat(S("cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8 9"),
	        &st, err, sizeof err);
	ok(rc == 0 && st.ncpus == 1 && st.cpus[0].ticks[CPU_STEAL] == 8,
	    "stat: one cut in the guest columns is used");
	rc = procfs_parse_stat(S("cpu  1 2 3 4 5 6 7 "), &st, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED,
	    "stat: a cut after 7 numbers could have had 8: dropped");
	rc =
	    procfs_parse_stat(S("cpu  1 2 3 4\nctxt 12"), &st, err, sizeof err);
	ok(rc == 0 && st.ctxt == 0, "stat: a cut ctxt is dropped");
	rc = procfs_parse_stat(S("cpu  1 2 3 4\ncpu0 1 x 3 4"), &st, err,
	    sizeof err);
	ok(rc == SHOAL_E_MALFORMED && strstr(err, "line 2: "),
	    "stat: garbage on a cut line is still garbage");

	/* intr with 100 KB of per-irq numbers, whole and cut */
	sb_add(&b, "cpu  1 2 3 4\nintr 987654321");
	for (int i = 0; i < 50000; i++)
		sb_add(&b, " 0");
	len = b.n;
	sb_add(&b, "\nctxt 42\nsoftirq 1 2 3\n");
	rc = procfs_parse_stat(b.s, b.n, &st, err, sizeof err);
	ok(rc == 0 && st.intr == 987654321 && st.ctxt == 42,
	    "stat: a 100 KB intr line");
	rc = procfs_parse_stat(b.s, len, &st, err, sizeof err);
	ok(rc == 0 && st.intr == 987654321,
	    "stat: a 100 KB intr line cut short keeps its total");
	free(b.s);

	/* more cpus than the array holds */
	b = (struct sbuf){ 0 };
	sb_add(&b, "cpu  1 2 3 4\n");
	for (int i = 0; i < PROCFS_CPUS_MAX + 76; i++)
		sb_addf(&b, "cpu%d %d 0 0 0 0 0 0 0 0 0\n", i, i);
	rc = procfs_parse_stat(b.s, b.n, &st, err, sizeof err);
	ok(rc == 0 && st.ncpus == PROCFS_CPUS_MAX && st.dropped == 76 &&
	        st.cpus[1023].cpu == 1023 &&
	        st.cpus[1023].ticks[CPU_USER] == 1023,
	    "stat: 1100 cpus: 1024 kept, 76 dropped");
	free(b.s);

	rc = procfs_parse_stat(S("x"), &st, NULL, 0);
	is_int(rc, SHOAL_E_MALFORMED, "stat: errlen 0 and no err buffer");
	rc = procfs_parse_stat(S("cpu 1\n"), &st, err, 8);
	ok(rc == SHOAL_E_MALFORMED && strcmp(err, "line 1:") == 0,
	    "stat: a small err buffer is cut, terminated");
}

static int
meminfo_row(const char *name)
{
	for (size_t i = 0; i < mi.n; i++) {
		if (strcmp(mi.v[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static void
test_meminfo(void)
{
	struct sbuf b = { 0 };
	size_t len, clen;
	char *buf, *cr, name[80];
	int rc, found = 7, i;
	uint64_t v;

	buf = load("meminfo", &len);
	rc = procfs_parse_meminfo(buf, len, &mi, err, sizeof err);
	ok(rc == 0 && mi.n == 53 && mi.dropped == 0, "meminfo: 53 fields");
	v = procfs_meminfo_get(&mi, "MemTotal", &found);
	ok(v == 24683548ULL * 1024 && found == 1, "meminfo: MemTotal bytes");
	is_int(procfs_meminfo_get(&mi, "Active(anon)", NULL), 1724 * 1024,
	    "meminfo: a name with parentheses");
	is_int(procfs_meminfo_get(&mi, "VmallocTotal", NULL),
	    34359738367ULL * 1024, "meminfo: VmallocTotal");
	is_int(procfs_meminfo_get(&mi, "DirectMap2M", NULL), 25131008ULL * 1024,
	    "meminfo: the last line");
	i = meminfo_row("HugePages_Total");
	ok(i >= 0 && mi.v[i].value == 0 && mi.v[i].bytes == 0,
	    "meminfo: HugePages_Total is a count");
	i = meminfo_row("MemFree");
	ok(i >= 0 && mi.v[i].bytes == 1, "meminfo: kB is bytes");
	found = 7;
	v = procfs_meminfo_get(&mi, "MemTota", &found);
	ok(v == 0 && found == 0, "meminfo: lookups are by the exact name");
	mi_full = mi;
	cr = crlf(buf, len, &clen);
	rc = procfs_parse_meminfo(cr, clen, &mi, err, sizeof err);
	ok(rc == 0 && mi.n == mi_full.n &&
	        memcmp(mi.v, mi_full.v, mi.n * sizeof mi.v[0]) == 0,
	    "meminfo: CRLF parses the same");
	free(cr);
	free(buf);

	rc = procfs_parse_meminfo(S("MemTotal: 1 kB\nMemFree: abc kB\n"), &mi,
	    err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && mi.n == 0,
	    "meminfo: garbage fails the parse, zeroed");
	is_str(err, "line 2: MemFree: field 1 is not a number",
	    "meminfo: the message");
	rc = procfs_parse_meminfo(S("MemTotal: 12 MB\n"), &mi, err, sizeof err);
	is_str(err, "line 1: MemTotal: unknown unit", "meminfo: MB");
	rc = procfs_parse_meminfo(S("MemTotal 12 kB\n"), &mi, err, sizeof err);
	is_str(err, "line 1: expected \"Name:\"", "meminfo: no colon");
	rc =
	    procfs_parse_meminfo(S("MemTotal: 1 kB 2\n"), &mi, err, sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "meminfo: text after the unit");
	rc = procfs_parse_meminfo(S("Big: 18014398509481983 kB\n"), &mi, err,
	    sizeof err);
	ok(rc == 0 && mi.v[0].value == 18014398509481983ULL * 1024,
	    "meminfo: the largest kB");
	rc = procfs_parse_meminfo(S("Big: 18014398509481984 kB\n"), &mi, err,
	    sizeof err);
	ok(rc == SHOAL_E_MALFORMED && strstr(err, "out of range"),
	    "meminfo: kB past 2^64 bytes is an error");
	rc = procfs_parse_meminfo("", 0, &mi, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && err[0], "meminfo: empty is an error");
	rc = procfs_parse_meminfo(S("A: 1\n\n \t\nB: x\n"), &mi, err,
	    sizeof err);
	is_str(err, "line 4: B: field 1 is not a number",
	    "meminfo: blank lines are skipped and counted");
	rc = procfs_parse_meminfo(S("MemTotal: 1 kB\nMemFree: 12"), &mi, err,
	    sizeof err);
	ok(rc == 0 && mi.n == 1 &&
	        !procfs_meminfo_get(&mi, "MemFree", &found) && !found,
	    "meminfo: a cut last line is dropped");
	rc = procfs_parse_meminfo(S("MemTotal: 1 kB\nMemFree: 12 k"), &mi, err,
	    sizeof err);
	ok(rc == 0 && mi.n == 1, "meminfo: a cut unit is dropped");

	for (int j = 0; j < PROCFS_MEMINFO_MAX + 72; j++)
		sb_addf(&b, "Field%d: %d kB\n", j, j);
	rc = procfs_parse_meminfo(b.s, b.n, &mi, err, sizeof err);
	ok(rc == 0 && mi.n == PROCFS_MEMINFO_MAX && mi.dropped == 72 &&
	        procfs_meminfo_get(&mi, "Field127", NULL) == 127 * 1024,
	    "meminfo: 200 fields: 128 kept, 72 dropped");
	free(b.s);
	memset(name, 'N', 60);
	name[60] = '\0';
	b = (struct sbuf){ 0 };
	sb_addf(&b, "MemTotal: 5 kB\n%s: 1 kB\nMemFree: 6 kB\n", name);
	rc = procfs_parse_meminfo(b.s, b.n, &mi, err, sizeof err);
	ok(rc == 0 && mi.n == 2 && mi.dropped == 1 &&
	        procfs_meminfo_get(&mi, "MemFree", NULL) == 6 * 1024,
	    "meminfo: a name too long for the row is dropped, not cut");
	free(b.s);
	b = (struct sbuf){ 0 };
	name[47] = '\0';
	sb_addf(&b, "%s: 1\n", name);
	name[47] = 'N';
	name[48] = '\0';
	sb_addf(&b, "%s: 2\n", name);
	rc = procfs_parse_meminfo(b.s, b.n, &mi, err, sizeof err);
	ok(rc == 0 && mi.n == 1 && mi.dropped == 1 &&
	        strlen(mi.v[0].name) == 47 && mi.v[0].value == 1,
	    "meminfo: 47 bytes of name fit, 48 do not");
	free(b.s);
}

static void
test_loadavg(void)
{
	size_t len;
	char *buf;
	int rc;

	buf = load("loadavg", &len);
	rc = procfs_parse_loadavg(buf, len, &la, err, sizeof err);
	ok(rc == 0 && la.load1 == 2.46 && la.load5 == 2.09 && la.load15 == 2.10,
	    "loadavg: 2.46 2.09 2.10");
	rc = procfs_parse_loadavg(buf, len - 1, &la, err, sizeof err);
	ok(rc == 0 && la.load1 == 2.46, "loadavg: without its newline");
	free(buf);

	rc = procfs_parse_loadavg(S("12345.678 0.00 100.5 1/1 1\r\n"), &la, err,
	    sizeof err);
	ok(rc == 0 && la.load1 == 12345.678 && la.load5 == 0 &&
	        la.load15 == 100.5,
	    "loadavg: values as strtod reads them; CRLF");
	rc = procfs_parse_loadavg(S("0.52 0.58 0.5"), &la, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && la.load1 == 0,
	    "loadavg: a cut line is no load average");
	rc = procfs_parse_loadavg(S("0.52 0.58\n"), &la, err, sizeof err);
	is_str(err, "line 1: expected 5 fields", "loadavg: too few fields");
	rc = procfs_parse_loadavg(S("0.52 abc 0.59 2/345 12345\n"), &la, err,
	    sizeof err);
	is_str(err, "line 1: field 2 is not a load average",
	    "loadavg: garbage");
	rc = procfs_parse_loadavg(S("0,52 0,58 0,59 2/345 12345\n"), &la, err,
	    sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "loadavg: a decimal comma");
	rc = procfs_parse_loadavg(S("1e3 0.58 0.59 2/345 12345\n"), &la, err,
	    sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "loadavg: no exponents");
	rc = procfs_parse_loadavg(S("1.0 0.58 0.59 2-345 12345\n"), &la, err,
	    sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "loadavg: field 4 is running/total");
	rc = procfs_parse_loadavg(
	    S("1.0 0.58 0.59 2/345 12345\n1.0 0.58 0.59 2/345 12345\n"), &la,
	    err, sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "loadavg: two lines");
	rc = procfs_parse_loadavg(S("1.0 0.58 0.59 2/345 12345\nx"), &la, err,
	    sizeof err);
	is_int(rc, SHOAL_E_MALFORMED, "loadavg: a second line, even cut");
	rc = procfs_parse_loadavg("", 0, &la, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && err[0], "loadavg: empty is an error");
}

static void
test_pressure(void)
{
	size_t len;
	char *buf;
	int rc;

	buf = load("pressure-cpu", &len);
	rc = procfs_parse_pressure(buf, len, &ps, err, sizeof err);
	ok(rc == 0 && ps.some.present && ps.some.avg10 == 29.20 &&
	        ps.some.avg60 == 15.51 && ps.some.avg300 == 18.54 &&
	        ps.some.total_us == 2425058089ULL,
	    "pressure-cpu: some");
	ok(ps.full.present && ps.full.avg10 == 0 && ps.full.total_us == 0,
	    "pressure-cpu: full");
	free(buf);
	buf = load("pressure-io", &len);
	rc = procfs_parse_pressure(buf, len, &ps, err, sizeof err);
	ok(rc == 0 && ps.some.avg10 == 0.07 && ps.some.avg60 == 0.09 &&
	        ps.some.avg300 == 0.36 && ps.some.total_us == 348090468 &&
	        ps.full.present && ps.full.total_us == 259304241,
	    "pressure-io");
	free(buf);
	buf = load("pressure-memory", &len);
	rc = procfs_parse_pressure(buf, len, &ps, err, sizeof err);
	ok(rc == 0 && ps.some.present && ps.full.present &&
	        ps.some.total_us == 0 && ps.full.avg300 == 0,
	    "pressure-memory: all zero");
	free(buf);
	buf = load("pressure-cpu-some", &len);
	rc = procfs_parse_pressure(buf, len, &ps, err, sizeof err);
	ok(rc == 0 && ps.some.present && !ps.full.present &&
	        ps.some.avg10 == 1.53 && ps.some.avg300 == 0.30 &&
	        ps.some.total_us == 14267921,
	    "pressure-cpu-some: no full line before 5.13");
	free(buf);

	rc = procfs_parse_pressure(
	    S("full total=5 avg300=3.00 avg60=2.00 avg10=1.25 new=9\n"), &ps,
	    err, sizeof err);
	ok(rc == 0 && !ps.some.present && ps.full.present &&
	        ps.full.total_us == 5 && ps.full.avg10 == 1.25 &&
	        ps.full.avg300 == 3,
	    "pressure: keys in any order, unknown ones skipped");
	rc =
	    procfs_parse_pressure(S("some avg10=1.00\n"), &ps, err, sizeof err);
	is_str(err, "line 1: expected avg10, avg60, avg300 and total",
	    "pressure: missing keys");
	rc = procfs_parse_pressure(
	    S("some avg10=x avg60=0.00 avg300=0.00 total=0\n"), &ps, err,
	    sizeof err);
	is_str(err, "line 1: avg10 is not a number", "pressure: garbage");
	rc = procfs_parse_pressure(S("bogus 1 2\n"), &ps, err, sizeof err);
	is_str(err, "line 1: expected \"some\" or \"full\"",
	    "pressure: an unknown line");
	rc = procfs_parse_pressure(
	    S("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"
	      "full avg10=0.00 avg60"),
	    &ps, err, sizeof err);
	ok(rc == 0 && ps.some.present && ps.some.total_us == 1 &&
	        !ps.full.present,
	    "pressure: a cut full line is absent");
	rc = procfs_parse_pressure("", 0, &ps, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && err[0], "pressure: empty is an error");
}

static void
test_diskstats(void)
{
	struct sbuf b = { 0 };
	char name[80];
	size_t len;
	char *buf;
	int rc;

	buf = load("diskstats", &len);
	rc = procfs_parse_diskstats(buf, len, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 10 && ds.dropped == 0, "diskstats: 10 disks");
	is_str(ds.v[8].name, "vda", "diskstats: vda");
	ok(ds.v[8].reads == 344437 && ds.v[8].reads_merged == 26620 &&
	        ds.v[8].sectors_written == 80444656 &&
	        ds.v[8].io_weighted_ms == 1838243,
	    "diskstats: vda's first 11");
	ok(ds.v[8].discards == 135700 && ds.v[8].discard_ms == 29881 &&
	        ds.v[8].flushes == 1889865 && ds.v[8].flush_ms == 404019,
	    "diskstats: vda's discards and flushes");
	is_str(ds.v[9].name, "zram0", "diskstats: the last row");
	free(buf);

	buf = load("diskstats-mixed", &len);
	rc = procfs_parse_diskstats(buf, len, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 4, "diskstats-mixed: 4 rows");
	ok(strcmp(ds.v[0].name, "sda") == 0 &&
	        ds.v[0].io_weighted_ms == 19202 && ds.v[0].discards == 0 &&
	        ds.v[0].flush_ms == 0,
	    "diskstats-mixed: 11 numbers");
	ok(strcmp(ds.v[1].name, "sda1") == 0 && ds.v[1].discards == 5 &&
	        ds.v[1].discard_ms == 7 && ds.v[1].flushes == 0,
	    "diskstats-mixed: 15 numbers");
	ok(ds.v[2].io_now == 3 && ds.v[2].sectors_discarded == 8901234 &&
	        ds.v[2].flushes == 45678 && ds.v[2].flush_ms == 9012,
	    "diskstats-mixed: 17 numbers");
	ok(strcmp(ds.v[3].name, "dm-0") == 0 && ds.v[3].flush_ms == 27,
	    "diskstats-mixed: columns past 17 are skipped");
	free(buf);

	rc = procfs_parse_diskstats(S("   8       0 sda 1 2 3\n"), &ds, err,
	    sizeof err);
	is_str(err, "line 1: sda: expected at least 11 numbers",
	    "diskstats: too few numbers");
	rc = procfs_parse_diskstats(
	    S("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 1 sda1 1 2 3 4 5 6 7 8 9 "
	      "10 1x\n"),
	    &ds, err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && ds.n == 0, "diskstats: garbage, zeroed");
	is_str(err, "line 2: sda1: field 14 is not a number",
	    "diskstats: which field");
	rc = procfs_parse_diskstats(S("8 0\n"), &ds, err, sizeof err);
	is_str(err, "line 1: expected major minor name", "diskstats: no name");
	rc = procfs_parse_diskstats("", 0, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 0, "diskstats: empty is no disks");
	rc = procfs_parse_diskstats(
	    S("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 1 sda1 1 2 3 4 5 6 7 8 9 "
	      "10 11 12 13 14 15 16 17"),
	    &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 1,
	    "diskstats: a cut last line is dropped (it may have had more)");

	for (int i = 0; i < PROCFS_DISKS_MAX + 44; i++)
		sb_addf(&b, " 8 %d sd%d %d 0 0 0 0 0 0 0 0 0 0\n", i, i, i);
	rc = procfs_parse_diskstats(b.s, b.n, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == PROCFS_DISKS_MAX && ds.dropped == 44 &&
	        strcmp(ds.v[255].name, "sd255") == 0 && ds.v[255].reads == 255,
	    "diskstats: 44 disks over the table's size are dropped");
	free(b.s);
	memset(name, 'd', 70);
	name[70] = '\0';
	b = (struct sbuf){ 0 };
	sb_addf(&b, "8 0 %s 1 2 3 4 5 6 7 8 9 10 11\n", name);
	rc = procfs_parse_diskstats(b.s, b.n, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 0 && ds.dropped == 1,
	    "diskstats: a name too long is dropped");
	free(b.s);
	b = (struct sbuf){ 0 };
	name[63] = '\0';
	sb_addf(&b, "8 0 %s 1 2 3 4 5 6 7 8 9 10 11\n", name);
	name[63] = 'd';
	name[64] = '\0';
	sb_addf(&b, "8 1 %s 1 2 3 4 5 6 7 8 9 10 11\n", name);
	rc = procfs_parse_diskstats(b.s, b.n, &ds, err, sizeof err);
	ok(rc == 0 && ds.n == 1 && ds.dropped == 1 &&
	        strlen(ds.v[0].name) == 63 && ds.v[0].reads == 1,
	    "diskstats: 63 bytes of name fit, 64 do not");
	free(b.s);
}

static const procfs_netdev_t *
netdev(const char *name)
{
	for (size_t i = 0; i < nd.n; i++) {
		if (strcmp(nd.v[i].name, name) == 0)
			return &nd.v[i];
	}
	return NULL;
}

#define NETDEV_HEAD                                                          \
	"Inter-|   Receive                                                |" \
	"  Transmit\n"                                                       \
	" face |bytes    packets errs drop fifo frame compressed multicast|" \
	"bytes    packets errs drop fifo colls carrier compressed\n"

static void
test_netdev(void)
{
	const procfs_netdev_t *d;
	struct sbuf b = { 0 };
	size_t len, clen;
	char *buf, *cr;
	int rc;

	buf = load("net-dev", &len);
	rc = procfs_parse_netdev(buf, len, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 58 && nd.dropped == 0, "net-dev: 58 interfaces");
	d = netdev("lo");
	ok(d && d->rx_bytes == 3098929157ULL && d->rx_packets == 733590 &&
	        d->tx_bytes == 3098929157ULL && d->tx_compressed == 0,
	    "net-dev: lo");
	d = netdev("eth0");
	ok(d && d->rx_bytes == 63317470 && d->rx_packets == 2358 &&
	        d->tx_bytes == 138543 && d->tx_packets == 1858,
	    "net-dev: eth0");
	d = netdev("podman0");
	ok(d && d->rx_multicast == 17426 && d->tx_packets == 399313,
	    "net-dev: podman0, no blank before it");
	ok(strcmp(nd.v[57].name, "veth46") == 0 && nd.v[57].tx_packets == 2,
	    "net-dev: the last row");
	nd_full = nd;
	cr = crlf(buf, len, &clen);
	rc = procfs_parse_netdev(cr, clen, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 58 &&
	        memcmp(nd.v, nd_full.v, nd.n * sizeof nd.v[0]) == 0,
	    "net-dev: CRLF parses the same");
	free(cr);
	free(buf);

	buf = load("net-dev-old", &len);
	rc = procfs_parse_netdev(buf, len, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 5, "net-dev-old: 5 interfaces");
	d = netdev("eth0");
	ok(d && d->rx_bytes == 3459732542ULL && d->rx_packets == 2858364 &&
	        d->rx_errs == 1 && d->rx_frame == 4 &&
	        d->rx_multicast == 1042 && d->tx_bytes == 123456789 &&
	        d->tx_colls == 9 && d->tx_carrier == 10 &&
	        d->tx_compressed == 11,
	    "net-dev-old: \"eth0:3459732542\", no blank after the colon");
	d = netdev("eth1");
	ok(d && d->rx_bytes == 123 && d->rx_packets == 4 && d->tx_bytes == 11 &&
	        d->tx_compressed == 18,
	    "net-dev-old: \"eth1:123\"");
	d = netdev("eth0.100");
	ok(d && d->tx_bytes == 594 && d->tx_packets == 7,
	    "net-dev-old: a VLAN's dotted name");
	ok(netdev("br-lan") && netdev("br-lan")->rx_packets == 50,
	    "net-dev-old: a dashed name");
	free(buf);

	rc = procfs_parse_netdev(
	    S("  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"), &nd, err,
	    sizeof err);
	is_str(err, "line 1: expected the net/dev header",
	    "net/dev: no header");
	rc = procfs_parse_netdev(
	    S(NETDEV_HEAD "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"), &nd,
	    err, sizeof err);
	is_str(err, "line 3: eth0: expected 16 numbers", "net/dev: 15 numbers");
	rc = procfs_parse_netdev(S(NETDEV_HEAD "  eth0 1 2 3\n"), &nd, err,
	    sizeof err);
	is_str(err, "line 3: expected \"name:\"", "net/dev: no colon");
	rc = procfs_parse_netdev(
	    S(NETDEV_HEAD "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n"),
	    &nd, err, sizeof err);
	is_str(err, "line 3: eth0: field 16 is not a number",
	    "net/dev: garbage");
	rc = procfs_parse_netdev("", 0, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 0, "net/dev: empty is no interfaces");
	rc = procfs_parse_netdev(S(NETDEV_HEAD), &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 0, "net/dev: headers only");

	sb_add(&b, NETDEV_HEAD);
	for (int i = 0; i < PROCFS_NETDEVS_MAX + 44; i++)
		sb_addf(&b, "veth%d: %d 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", i, i);
	rc = procfs_parse_netdev(b.s, b.n, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == PROCFS_NETDEVS_MAX && nd.dropped == 44 &&
	        nd.v[255].rx_bytes == 255,
	    "net/dev: 44 interfaces over the table's size are dropped");
	free(b.s);
	b = (struct sbuf){ 0 };
	sb_add(&b, NETDEV_HEAD);
	sb_add(&b,
	    "abcdefghijklmnopqrstuvwxyz01234: 1 2 3 4 5 6 7 8 9 10 11 "
	    "12 13 14 15 16\n");
	sb_add(&b,
	    "abcdefghijklmnopqrstuvwxyz012345: 1 2 3 4 5 6 7 8 9 10 11 "
	    "12 13 14 15 16\n");
	rc = procfs_parse_netdev(b.s, b.n, &nd, err, sizeof err);
	ok(rc == 0 && nd.n == 1 && nd.dropped == 1 &&
	        strlen(nd.v[0].name) == 31 && nd.v[0].rx_bytes == 1,
	    "net/dev: 31 bytes of name fit, 32 do not");
	free(b.s);
}

static void
test_mounts(void)
{
	struct sbuf b = { 0 };
	size_t len, clen, ro = 0;
	char *buf, *cr, path[320];
	int rc;

	buf = load("mounts", &len);
	rc = procfs_parse_mounts(buf, len, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 26 && mt.dropped == 0, "mounts: 26 mounts");
	ok(strcmp(mt.v[0].device, "proc") == 0 &&
	        strcmp(mt.v[0].mountpoint, "/proc") == 0 &&
	        strcmp(mt.v[0].fstype, "proc") == 0,
	    "mounts: /proc");
	ok(strcmp(mt.v[5].device, "/dev/vda") == 0 &&
	        strcmp(mt.v[5].mountpoint, "/") == 0 &&
	        strcmp(mt.v[5].fstype, "ext4") == 0,
	    "mounts: /");
	ok(strcmp(mt.v[23].device, "overlay") == 0 &&
	        strncmp(mt.v[23].mountpoint,
	            "/var/lib/containers/storage/overlay/21b7d3d5c366",
	            48) == 0 &&
	        strcmp(mt.v[23].fstype, "overlay") == 0,
	    "mounts: an overlay with 400 bytes of options");
	for (size_t i = 0; i < mt.n; i++)
		ro += (size_t)mt.v[i].readonly;
	is_int(ro, 0, "mounts: all read-write");
	mt_full = mt;
	cr = crlf(buf, len, &clen);
	rc = procfs_parse_mounts(cr, clen, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 26 &&
	        memcmp(mt.v, mt_full.v, mt.n * sizeof mt.v[0]) == 0,
	    "mounts: CRLF parses the same");
	free(cr);
	free(buf);

	buf = load("mounts-escapes", &len);
	rc = procfs_parse_mounts(buf, len, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 6, "mounts-escapes: 6 mounts");
	ok(!mt.v[0].readonly, "mounts-escapes: errors=remount-ro is not ro");
	ok(strcmp(mt.v[1].mountpoint, "/media/My Disk") == 0 &&
	        mt.v[1].readonly,
	    "mounts-escapes: \\040; ro first");
	is_str(mt.v[2].device, "//server/share name",
	    "mounts-escapes: a device with a space");
	is_str(mt.v[2].mountpoint, "/mnt/with\ttab\nnewline\\backslash",
	    "mounts-escapes: \\011 \\012 \\134");
	ok(strcmp(mt.v[3].mountpoint, "/run/not ro") == 0 && !mt.v[3].readonly,
	    "mounts-escapes: rox and noro are not ro");
	ok(strcmp(mt.v[4].fstype, "iso9660") == 0 && mt.v[4].readonly,
	    "mounts-escapes: ro last");
	ok(strcmp(mt.v[5].mountpoint, "/mnt/back\\slash\\777\\000") == 0 &&
	        mt.v[5].readonly,
	    "mounts-escapes: other backslashes stay as they are");
	free(buf);

	rc = procfs_parse_mounts(S("a b c\n"), &mt, err, sizeof err);
	is_str(err, "line 1: expected 6 fields", "mounts: too few fields");
	rc = procfs_parse_mounts(S("a /b c rw 0 0\nd /e\0 f rw 0 0\n"), &mt,
	    err, sizeof err);
	ok(rc == SHOAL_E_MALFORMED && mt.n == 0 &&
	        strcmp(err, "line 2: NUL in field 2") == 0,
	    "mounts: a NUL is garbage");
	rc = procfs_parse_mounts("", 0, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 0, "mounts: empty is no mounts");
	rc = procfs_parse_mounts(S("a /b c ro 0 0"), &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 1 && mt.v[0].readonly,
	    "mounts: a last line without its newline, whole");
	rc = procfs_parse_mounts(S("a /b c ro 0"), &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 0, "mounts: a cut last line is dropped");

	path[0] = '/';
	memset(path + 1, 'p', 299);
	path[300] = '\0';
	sb_addf(&b, "a /x t rw 0 0\nb %s t rw 0 0\nc /y t ro 0 0\n", path);
	rc = procfs_parse_mounts(b.s, b.n, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 2 && mt.dropped == 1 &&
	        strcmp(mt.v[1].device, "c") == 0,
	    "mounts: a mount point too long is dropped, not cut");
	free(b.s);
	/* 255 bytes fit with the NUL, 256 do not; 252 and an escape fit */
	path[255] = '\0';
	b = (struct sbuf){ 0 };
	sb_addf(&b, "a %s t rw 0 0\n", path);
	path[255] = 'p';
	path[256] = '\0';
	sb_addf(&b, "b %s t rw 0 0\n", path);
	memcpy(path + 252, "\\040", 5); /* 253 decoded */
	sb_addf(&b, "c %s t rw 0 0\n", path);
	memcpy(path + 252, "ppp\\040", 8); /* 256 decoded */
	sb_addf(&b, "d %s t rw 0 0\n", path);
	rc = procfs_parse_mounts(b.s, b.n, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == 2 && mt.dropped == 2 &&
	        strlen(mt.v[0].mountpoint) == 255 &&
	        strcmp(mt.v[0].fstype, "t") == 0 &&
	        strlen(mt.v[1].mountpoint) == 253 &&
	        mt.v[1].mountpoint[252] == ' ' &&
	        strcmp(mt.v[1].device, "c") == 0,
	    "mounts: 255 bytes fit, 256 do not, escapes counted decoded");
	free(b.s);
	b = (struct sbuf){ 0 };
	for (int i = 0; i < PROCFS_MOUNTS_MAX + 44; i++)
		sb_addf(&b, "tmpfs /m/%d tmpfs rw 0 0\n", i);
	rc = procfs_parse_mounts(b.s, b.n, &mt, err, sizeof err);
	ok(rc == 0 && mt.n == PROCFS_MOUNTS_MAX && mt.dropped == 44 &&
	        strcmp(mt.v[255].mountpoint, "/m/255") == 0,
	    "mounts: 44 mounts over the table's size are dropped");
	free(b.s);
}

/* xorshift64, fixed seed: the same bytes every run */
static uint64_t
rnd(void)
{
	static uint64_t x = 0x5eed5eed5eed5eedULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void
test_robustness(void)
{
	static const struct {
		const char *file;
		const struct parser *p;
	} files[] = {
		{ "stat", &P_STAT },
		{ "stat-old", &P_STAT },
		{ "stat-2.4", &P_STAT },
		{ "meminfo", &P_MEMINFO },
		{ "loadavg", &P_LOADAVG },
		{ "pressure-cpu", &P_PRESSURE },
		{ "pressure-memory", &P_PRESSURE },
		{ "pressure-io", &P_PRESSURE },
		{ "pressure-cpu-some", &P_PRESSURE },
		{ "diskstats", &P_DISKSTATS },
		{ "diskstats-mixed", &P_DISKSTATS },
		{ "net-dev", &P_NETDEV },
		{ "net-dev-old", &P_NETDEV },
		{ "mounts", &P_MOUNTS },
		{ "mounts-escapes", &P_MOUNTS },
	};
	static const char alphabet[] =
	    "0123456789 \n\t:|./=\\-,kBxsomefulcpuavg"
	    "\r\0";
	char *buf = malloc(4096), nuls[4097];
	size_t failed, len;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		test_prefixes(files[i].file, files[i].p);

	/* random bytes, half of them from /proc's alphabet */
	for (size_t i = 0; i < ARRAY_SIZE(parsers); i++) {
		failed = 0;
		for (int round = 0; round < 2000; round++) {
			len = rnd() % 4096;
			for (size_t j = 0; j < len; j++)
				buf[j] = round & 1
				    ? (char)rnd()
				    : alphabet[rnd() % (sizeof alphabet - 1)];
			rc = parse_exact(parsers[i], buf, len);
			failed += !clean(rc, err) || !parsers[i]->sane(rc);
		}
		okf(failed == 0,
		    "%s: 2000 random buffers parse or fail cleanly",
		    parsers[i]->name);
	}

	/* the fixtures with a few bytes changed */
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *orig = load(files[i].file, &len), *m = malloc(len + 1);

		failed = 0;
		for (int round = 0; round < 300; round++) {
			memcpy(m, orig, len);
			for (int k = 0; k < 1 + round % 4 && len > 0; k++)
				m[rnd() % len] = round & 1
				    ? (char)rnd()
				    : alphabet[rnd() % (sizeof alphabet - 1)];
			rc = parse_exact(files[i].p, m, len);
			failed += !clean(rc, err) || !files[i].p->sane(rc);
		}
		okf(failed == 0, "%s: 300 mutations parse or fail cleanly",
		    files[i].file);
		free(m);
		free(orig);
	}

	failed = 0;
	for (size_t i = 0; i < ARRAY_SIZE(parsers); i++) {
		rc = parsers[i]->parse(NULL, 0, err, sizeof err);
		failed += !clean(rc, err) || !parsers[i]->sane(rc);
	}
	ok(failed == 0, "every parser takes (NULL, 0)");

	/* NULs are garbage to every parser, with or without a newline */
	memset(nuls, 0, sizeof nuls);
	for (size_t i = 0; i < ARRAY_SIZE(parsers); i++) {
		int a = parse_exact(parsers[i], nuls, 4096);
		int ea = err[0] != '\0';
		int b;

		nuls[4096] = '\n';
		b = parse_exact(parsers[i], nuls, 4097);
		nuls[4096] = '\0';
		okf(a == SHOAL_E_MALFORMED && ea && b == SHOAL_E_MALFORMED &&
		        err[0] && parsers[i]->sane(b),
		    "%s: 4 KB of NULs are an error", parsers[i]->name);
	}
	free(buf);
}

int
main(void)
{
	test_stat();
	test_meminfo();
	test_loadavg();
	test_pressure();
	test_diskstats();
	test_netdev();
	test_mounts();
	test_robustness();
	return done_testing();
}
