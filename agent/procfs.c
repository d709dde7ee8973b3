/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of the /proc text files the agent's metrics collector samples on
 * its event loop every few seconds: /proc/stat, meminfo, loadavg,
 * pressure/{cpu,memory,io}, diskstats, net/dev and self/mounts. They read
 * the caller's bytes in place, one pass, never past len, allocate nothing
 * and use no sscanf or strtod: numbers go through a small decimal reader of
 * their own, which is also independent of the locale.
 *
 * Rules all of them share:
 * - Lines end in '\n'; a '\r' right before it is part of the ending (a file
 *   that went through CRLF tools still parses). Blank lines are skipped.
 *   Fields are separated by runs of spaces or tabs. Any other byte, NUL
 *   included, is data, and is garbage where a number is expected.
 * - A last line without '\n' is what a short read leaves. It is used only
 *   if the parser took everything it needed from it without reaching the
 *   end of the buffer, since the byte after a value is what shows that the
 *   value was not cut ("12" may be the start of "1234"). Otherwise it is
 *   dropped, silently, as a cut makes any line look incomplete; but what
 *   no cut can produce (a letter or NUL in a number or a name, a number
 *   above 2^64-1) is an error there as anywhere.
 * - A number must be plain decimal digits that fit in 64 bits; anything
 *   else (a sign, "12x", 2^64) is an error, never saturated: a counter that
 *   does not fit is not a counter the kernel wrote.
 * - An error fails the whole parse: the result is SHOAL_E_MALFORMED with err
 *   "line N: what was wrong" and the output zeroed, so nothing half-parsed
 *   is counted. On success entries up to n are complete, unused bytes
 *   zero; those past n are left as they were, or hold a dropped row (the
 *   structures are up to 140 KiB: clearing them all every sample would
 *   cost more than most parses).
 * - Rows beyond an array's capacity, and rows whose name does not fit its
 *   field (a cut path names a different place), are counted in dropped.
 * - Columns after those a row's format defines are ignored (kernels append
 *   columns); missing ones are an error, except where a format lists them
 *   as optional.
 * - stat, meminfo, loadavg and pressure files always have content, so
 *   finding nothing in them is an error; diskstats, net/dev (past its two
 *   header lines) and mounts may well list nothing, and n = 0 is fine.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/procfs.h"
#include "common/error.h"

const char *const procfs_cpu_modes[CPU_MODES] = { "user", "nice", "system",
	"idle", "iowait", "irq", "softirq", "steal" };

/* One line of the input and a cursor over it. */
struct line {
	const char *p; /* the next byte to look at */
	const char *e; /* the end of the line, before "\n" or "\r\n" */
	unsigned no;   /* 1-based, blank lines counted */
	int last;      /* no '\n' ended it: a short read may have cut it */
	int hit_end;   /* the parser looked at or for something at e */
	int garbage;   /* what failed is wrong however the line ends */
	char *err;
	size_t errlen;
};

/* A run of non-blank bytes of a line: not NUL-terminated. */
struct tok {
	const char *s;
	size_t n;
};

typedef int line_fn(struct line *l, void *ctx);

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
tok_is(const struct tok *t, const char *word)
{
	size_t n = strlen(word);

	return t->n == n && memcmp(t->s, word, n) == 0;
}

/*
 * Copies a name into dst for an error message, '?' for bytes that are not
 * printable ASCII: names come from the input.
 */
static const char *
printable(char *dst, size_t size, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++)
		dst[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
	return dst;
}

static int vfail(struct line *l, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static int
vfail(struct line *l, const char *fmt, va_list ap)
{
	char msg[192];

	if (l->errlen > 0) {
		vsnprintf(msg, sizeof msg, fmt, ap);
		snprintf(l->err, l->errlen, "line %u: %s", l->no, msg);
	}
	return SHOAL_E_MALFORMED;
}

static int fail(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Says what is wrong with line l in its err; returns SHOAL_E_MALFORMED. On
 * a cut last line this may be the cut's doing, and is then not an error.
 */
static int
fail(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(l, fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * fail() for what no cut can produce (a letter or NUL in a number or a
 * name, a number too big): an error on any line, the last one included.
 */
static int
bad(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int rc;

	l->garbage = 1;
	va_start(ap, fmt);
	rc = vfail(l, fmt, ap);
	va_end(ap);
	return rc;
}

/* For what is wrong with the file as a whole rather than one line. */
static int
fail_file(char *err, size_t errlen, const char *msg)
{
	if (errlen > 0)
		snprintf(err, errlen, "%s", msg);
	return SHOAL_E_MALFORMED;
}

/* Steps over blanks to the next token; 0 when the line has no more. */
static int
next_tok(struct line *l, struct tok *t)
{
	const char *p = l->p, *e = l->e; /* locals: char reads may alias l */
	const char *sp, *tab;
	int n = 0;

	while (p < e && is_blank(*p))
		p++;
	t->s = p;
	while (p < e && !is_blank(*p)) {
		p++;
		/*
		 * Past 16 bytes it is a path or a mount's options, which can
		 * run to kilobytes: memchr finds the end several bytes a cycle
		 * where this loop takes one.
		 */
		if (++n == 16) {
			sp = memchr(p, ' ', (size_t)(e - p));
			if (!sp)
				sp = e;
			tab = memchr(p, '\t', (size_t)(sp - p));
			p = tab ? tab : sp;
			break;
		}
	}
	t->n = (size_t)(p - t->s);
	l->p = p;
	if (p == e)
		l->hit_end = 1;
	return t->n > 0;
}

/* Whether another token starts on the line, without reading it. */
static int
more_toks(struct line *l)
{
	while (l->p < l->e && is_blank(*l->p))
		l->p++;
	if (l->p == l->e) {
		l->hit_end = 1;
		return 0;
	}
	return 1;
}

/* Reads s[0..n) as decimal: 0, -1 when it is not digits, -2 above 2^64-1. */
static int
dec_u64(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > UINT64_MAX / 10 ||
		    (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
			return -2;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/*
 * Reads "12.34" (digits, optionally a '.' and more digits; no sign or
 * exponent) of at most 15 digits: the digits as one integer below 2^53
 * divided by an exact power of ten round once, so the result is the double
 * strtod would give, whatever the locale's decimal point. 0; -1 when s is
 * not such a number; -2 when it is only the start of one ("", "12.").
 */
static int
dec_double(const char *s, size_t n, double *ret)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
		1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	uint64_t m = 0;
	unsigned digits = 0, frac = 0;
	int dot = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && !dot && i > 0) {
			dot = 1;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || ++digits > 15)
			return -1;
		m = m * 10 + (uint64_t)(s[i] - '0');
		frac += (unsigned)dot;
	}
	if (digits == 0 || s[n - 1] == '.')
		return -2;
	*ret = (double)m / pow10[frac];
	return 0;
}

/*
 * Reads the next token as a number: 0, 1 when the line has no more tokens,
 * or SHOAL_E_MALFORMED naming `what` and the 1-based field.
 */
static int
next_u64(struct line *l, uint64_t *v, const char *what, unsigned field)
{
	struct tok t;

	if (!next_tok(l, &t))
		return 1;
	switch (dec_u64(t.s, t.n, v)) {
	case 0:
		return 0;
	case -2:
		return bad(l, "%s: field %u is out of range", what, field);
	default:
		return bad(l, "%s: field %u is not a number", what, field);
	}
}

/* Whether line l's values may be used: see "a last line" at the top. */
static int
usable(const struct line *l)
{
	return !(l->last && l->hit_end);
}

/*
 * Runs fn on each non-blank line of buf. An error stops the parse unless it
 * came from running into the end of a cut last line, which is dropped.
 */
static int
parse_lines(const char *buf, size_t len, char *err, size_t errlen, line_fn *fn,
    void *ctx)
{
	const char *p = buf, *end, *nl;
	struct line l = { .err = err, .errlen = errlen };
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if (len == 0)
		return 0; /* and buf may be NULL */
	end = buf + len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		l.p = p;
		l.e = nl ? nl : end;
		l.last = nl == NULL;
		l.hit_end = l.garbage = 0;
		l.no++;
		p = nl ? nl + 1 : end;
		if (l.e > l.p && l.e[-1] == '\r')
			l.e--;
		while (l.p < l.e && is_blank(*l.p))
			l.p++;
		if (l.p == l.e)
			continue;
		rc = fn(&l, ctx);
		if (rc == 0)
			continue;
		if (l.garbage || usable(&l))
			return rc;
		if (errlen > 0)
			err[0] = '\0';
	}
	return 0;
}

/* /proc/stat */

struct stat_ctx {
	procfs_stat_t *out;
	int have_total;
};

/*
 * A "cpu" or "cpuN" line: at least user, nice, system and idle (2.4), then
 * iowait, irq, softirq (2.6), steal (2.6.11); the guest columns that may
 * follow are in user and nice already, and not read.
 */
static int
stat_cpu(struct line *l, const struct tok *key, uint64_t ticks[CPU_MODES])
{
	char what[32];
	unsigned i;
	int rc;

	printable(what, sizeof what, key->s, key->n);
	for (i = 0; i < CPU_MODES; i++) {
		rc = next_u64(l, &ticks[i], what, i + 1);
		if (rc < 0)
			return rc;
		if (rc > 0)
			break;
	}
	if (i < 4)
		return fail(l, "%s: expected at least 4 numbers", what);
	for (; i < CPU_MODES; i++)
		ticks[i] = 0;
	return 0;
}

static int
stat_line(struct line *l, void *vctx)
{
	struct stat_ctx *ctx = vctx;
	procfs_stat_t *out = ctx->out;
	static const char *const keys[] = { "ctxt", "intr", "btime",
		"processes", "procs_running", "procs_blocked" };
	uint64_t *const dst[] = { &out->ctxt, &out->intr, &out->btime,
		&out->processes, &out->procs_running, &out->procs_blocked };
	uint64_t ticks[CPU_MODES], v;
	struct tok key;
	int rc;

	next_tok(l, &key);
	if (tok_is(&key, "cpu")) {
		if ((rc = stat_cpu(l, &key, ticks)) != 0)
			return rc;
		if (usable(l)) {
			memcpy(out->total, ticks, sizeof ticks);
			ctx->have_total = 1;
		}
		return 0;
	}
	if (key.n > 3 && memcmp(key.s, "cpu", 3) == 0) {
		switch (dec_u64(key.s + 3, key.n - 3, &v)) {
		case -1:
			return 0; /* not "cpuN": a line we do not read */
		case -2:
			return bad(l, "cpu number out of range");
		}
		if (v > UINT_MAX)
			return bad(l, "cpu number out of range");
		if ((rc = stat_cpu(l, &key, ticks)) != 0 || !usable(l))
			return rc;
		if (out->ncpus == PROCFS_CPUS_MAX) {
			out->dropped++;
			return 0;
		}
		out->cpus[out->ncpus].cpu = (unsigned)v;
		memcpy(out->cpus[out->ncpus].ticks, ticks, sizeof ticks);
		out->ncpus++;
		return 0;
	}
	/*
	 * Of intr's numbers (thousands on big machines) only the first, the
	 * total, is read: the rest of the line is skipped by the memchr that
	 * found its end.
	 */
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (!tok_is(&key, keys[i]))
			continue;
		rc = next_u64(l, &v, keys[i], 1);
		if (rc > 0)
			return fail(l, "%s: expected a number", keys[i]);
		if (rc == 0 && usable(l))
			*dst[i] = v;
		return rc;
	}
	return 0; /* softirq, page, swap, disk_io, ...: not read */
}

int
procfs_parse_stat(const char *buf, size_t len, procfs_stat_t *out, char *err,
    size_t errlen)
{
	struct stat_ctx ctx = { .out = out };
	int rc;

	memset(out->total, 0, sizeof out->total);
	out->ncpus = out->dropped = 0;
	out->ctxt = out->intr = out->btime = out->processes = 0;
	out->procs_running = out->procs_blocked = 0;
	rc = parse_lines(buf, len, err, errlen, stat_line, &ctx);
	if (rc == 0 && !ctx.have_total)
		rc = fail_file(err, errlen, "no \"cpu\" line");
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* /proc/meminfo */

/* "Name:   123 kB" or "HugePages_Total:  0" */
static int
meminfo_line(struct line *l, void *vctx)
{
	procfs_meminfo_t *out = vctx;
	const char *colon;
	char what[48];
	struct tok name, unit;
	uint64_t v;
	int rc, bytes = 0;

	colon = memchr(l->p, ':', (size_t)(l->e - l->p));
	if (!colon) {
		l->hit_end = 1;
		return fail(l, "expected \"Name:\"");
	}
	name.s = l->p;
	name.n = (size_t)(colon - l->p);
	if (name.n == 0)
		return fail(l, "bad field name");
	for (size_t i = 0; i < name.n; i++) {
		if (is_blank(name.s[i]) || name.s[i] == '\0')
			return bad(l, "bad field name");
	}
	printable(what, sizeof what, name.s, name.n);
	l->p = colon + 1;
	rc = next_u64(l, &v, what, 1);
	if (rc > 0)
		return fail(l, "%s: expected a number", what);
	if (rc < 0)
		return rc;
	if (next_tok(l, &unit)) {
		if (tok_is(&unit, "k"))
			return fail(l, "%s: unknown unit", what);
		if (!tok_is(&unit, "kB"))
			return bad(l, "%s: unknown unit", what);
		if (v > UINT64_MAX / 1024)
			return bad(l, "%s: out of range", what);
		v *= 1024;
		bytes = 1;
		if (next_tok(l, &unit))
			return bad(l, "%s: unexpected text after the unit",
			    what);
	}
	if (!usable(l))
		return 0;
	if (out->n == PROCFS_MEMINFO_MAX || name.n >= sizeof out->v[0].name) {
		out->dropped++;
		return 0;
	}
	memset(out->v[out->n].name, 0, sizeof out->v[0].name);
	memcpy(out->v[out->n].name, name.s, name.n);
	out->v[out->n].value = v;
	out->v[out->n].bytes = bytes;
	out->n++;
	return 0;
}

int
procfs_parse_meminfo(const char *buf, size_t len, procfs_meminfo_t *out,
    char *err, size_t errlen)
{
	int rc;

	out->n = out->dropped = 0;
	rc = parse_lines(buf, len, err, errlen, meminfo_line, out);
	if (rc == 0 && out->n + out->dropped == 0)
		rc = fail_file(err, errlen, "no fields");
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

uint64_t
procfs_meminfo_get(const procfs_meminfo_t *m, const char *name, int *found)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->v[i].name, name) == 0) {
			if (found)
				*found = 1;
			return m->v[i].value;
		}
	}
	if (found)
		*found = 0;
	return 0;
}

/* /proc/loadavg */

struct loadavg_ctx {
	procfs_loadavg_t *out;
	int done;
};

/*
 * "0.52 0.58 0.59 2/345 12345": the averages, running/total tasks and the
 * last pid, which need only be there: nothing after it is read, so the line
 * parses even without its '\n'.
 */
static int
loadavg_line(struct line *l, void *vctx)
{
	struct loadavg_ctx *ctx = vctx;
	double avg[3];
	const char *slash;
	struct tok t;
	uint64_t v;

	if (ctx->done)
		return bad(l, "expected one line");
	for (int i = 0; i < 3; i++) {
		if (!next_tok(l, &t))
			return fail(l, "expected 5 fields");
		switch (dec_double(t.s, t.n, &avg[i])) {
		case -1:
			return bad(l, "field %d is not a load average", i + 1);
		case -2:
			return fail(l, "field %d is not a load average", i + 1);
		}
	}
	if (!next_tok(l, &t))
		return fail(l, "expected 5 fields");
	slash = memchr(t.s, '/', t.n);
	if (!slash || dec_u64(t.s, (size_t)(slash - t.s), &v) != 0 ||
	    dec_u64(slash + 1, t.n - (size_t)(slash - t.s) - 1, &v) != 0)
		return fail(l, "field 4 is not running/total");
	if (!more_toks(l))
		return fail(l, "expected 5 fields");
	if (usable(l)) {
		ctx->out->load1 = avg[0];
		ctx->out->load5 = avg[1];
		ctx->out->load15 = avg[2];
		ctx->done = 1;
	}
	return 0;
}

int
procfs_parse_loadavg(const char *buf, size_t len, procfs_loadavg_t *out,
    char *err, size_t errlen)
{
	struct loadavg_ctx ctx = { .out = out };
	int rc;

	memset(out, 0, sizeof *out);
	rc = parse_lines(buf, len, err, errlen, loadavg_line, &ctx);
	if (rc == 0 && !ctx.done)
		rc = fail_file(err, errlen, "no load averages");
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* /proc/pressure/{cpu,memory,io} */

/*
 * "some avg10=0.00 avg60=0.00 avg300=0.00 total=0", the same for "full".
 * The four keys may come in any order and must all be there; keys a later
 * kernel might add are skipped.
 */
static int
pressure_line(struct line *l, void *vctx)
{
	procfs_pressure_t *out = vctx;
	static const char *const avgs[] = { "avg10", "avg60", "avg300" };
	procfs_psi_line_t psi = { .present = 1 };
	double *const avg[] = { &psi.avg10, &psi.avg60, &psi.avg300 };
	procfs_psi_line_t *dst;
	const char *eq;
	struct tok t, key, val;
	unsigned seen = 0;

	next_tok(l, &t);
	if (tok_is(&t, "some"))
		dst = &out->some;
	else if (tok_is(&t, "full"))
		dst = &out->full;
	else
		return fail(l, "expected \"some\" or \"full\"");
	while (next_tok(l, &t)) {
		eq = memchr(t.s, '=', t.n);
		if (!eq)
			return fail(l, "expected key=value");
		key.s = t.s;
		key.n = (size_t)(eq - t.s);
		val.s = eq + 1;
		val.n = t.n - key.n - 1;
		if (tok_is(&key, "total")) {
			if (val.n == 0)
				return fail(l, "total is not a number");
			if (dec_u64(val.s, val.n, &psi.total_us) != 0)
				return bad(l,
				    "total is not a number below 2^64");
			seen |= 1u << 3;
			continue;
		}
		for (unsigned i = 0; i < 3; i++) {
			if (!tok_is(&key, avgs[i]))
				continue;
			switch (dec_double(val.s, val.n, avg[i])) {
			case -1:
				return bad(l, "%s is not a number", avgs[i]);
			case -2:
				return fail(l, "%s is not a number", avgs[i]);
			}
			seen |= 1u << i;
		}
	}
	if (seen != 0xf)
		return fail(l, "expected avg10, avg60, avg300 and total");
	if (usable(l))
		*dst = psi;
	return 0;
}

int
procfs_parse_pressure(const char *buf, size_t len, procfs_pressure_t *out,
    char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	rc = parse_lines(buf, len, err, errlen, pressure_line, out);
	if (rc == 0 && !out->some.present && !out->full.present)
		rc = fail_file(err, errlen, "no \"some\" or \"full\" line");
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* /proc/diskstats */

/*
 * "major minor name" and 11 numbers, 15 from 4.18 (discards), 17 from 5.5
 * (flushes). Every number is read, to count them, so the last line parses
 * only with its '\n'. A group the line has only part of is left at 0.
 */
static int
diskstats_line(struct line *l, void *vctx)
{
	procfs_diskstats_t *out = vctx;
	uint64_t f[17], v;
	char what[64];
	struct tok name;
	procfs_disk_t *d;
	unsigned n;
	int rc;

	for (unsigned i = 0; i < 2; i++) {
		rc = next_u64(l, &v, "diskstats", i + 1);
		if (rc > 0)
			return fail(l, "expected major minor name");
		if (rc < 0)
			return rc;
	}
	if (!next_tok(l, &name))
		return fail(l, "expected major minor name");
	if (memchr(name.s, '\0', name.n))
		return bad(l, "NUL in the device name");
	printable(what, sizeof what, name.s, name.n);
	for (n = 0;; n++) {
		rc = next_u64(l, n < 17 ? &f[n] : &v, what, n + 4);
		if (rc < 0)
			return rc;
		if (rc > 0)
			break;
	}
	if (n < 11)
		return fail(l, "%s: expected at least 11 numbers", what);
	if (!usable(l))
		return 0;
	if (out->n == PROCFS_DISKS_MAX || name.n >= sizeof out->v[0].name) {
		out->dropped++;
		return 0;
	}
	d = &out->v[out->n++];
	memset(d, 0, sizeof *d);
	memcpy(d->name, name.s, name.n);
	d->reads = f[0];
	d->reads_merged = f[1];
	d->sectors_read = f[2];
	d->read_ms = f[3];
	d->writes = f[4];
	d->writes_merged = f[5];
	d->sectors_written = f[6];
	d->write_ms = f[7];
	d->io_now = f[8];
	d->io_ms = f[9];
	d->io_weighted_ms = f[10];
	if (n >= 15) {
		d->discards = f[11];
		d->discards_merged = f[12];
		d->sectors_discarded = f[13];
		d->discard_ms = f[14];
	}
	if (n >= 17) {
		d->flushes = f[15];
		d->flush_ms = f[16];
	}
	return 0;
}

int
procfs_parse_diskstats(const char *buf, size_t len, procfs_diskstats_t *out,
    char *err, size_t errlen)
{
	int rc;

	out->n = out->dropped = 0;
	rc = parse_lines(buf, len, err, errlen, diskstats_line, out);
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* /proc/net/dev */

/*
 * Two header lines (each with a '|'), then "  eth0: " and 16 numbers, 8
 * receive then 8 transmit. The name ends at the first ':' (names cannot
 * hold one); old kernels put the first number right after it ("eth0:123").
 */
static int
netdev_line(struct line *l, void *vctx)
{
	procfs_netdevs_t *out = vctx;
	uint64_t f[16];
	const char *colon;
	char what[32];
	struct tok name;
	procfs_netdev_t *d;
	int rc;

	if (l->no <= 2) {
		if (memchr(l->p, '\0', (size_t)(l->e - l->p)))
			return bad(l, "NUL in the net/dev header");
		if (!memchr(l->p, '|', (size_t)(l->e - l->p))) {
			l->hit_end = 1;
			return fail(l, "expected the net/dev header");
		}
		return 0;
	}
	colon = memchr(l->p, ':', (size_t)(l->e - l->p));
	if (!colon) {
		l->hit_end = 1;
		return fail(l, "expected \"name:\"");
	}
	name.s = l->p;
	name.n = (size_t)(colon - l->p);
	for (size_t i = 0; i < name.n; i++) {
		if (is_blank(name.s[i]) || name.s[i] == '\0')
			return bad(l, "bad interface name");
	}
	if (name.n == 0)
		return fail(l, "bad interface name");
	printable(what, sizeof what, name.s, name.n);
	l->p = colon + 1;
	for (unsigned i = 0; i < 16; i++) {
		rc = next_u64(l, &f[i], what, i + 1);
		if (rc > 0)
			return fail(l, "%s: expected 16 numbers", what);
		if (rc < 0)
			return rc;
	}
	if (!usable(l))
		return 0;
	if (out->n == PROCFS_NETDEVS_MAX || name.n >= sizeof out->v[0].name) {
		out->dropped++;
		return 0;
	}
	d = &out->v[out->n++];
	memset(d, 0, sizeof *d);
	memcpy(d->name, name.s, name.n);
	d->rx_bytes = f[0];
	d->rx_packets = f[1];
	d->rx_errs = f[2];
	d->rx_drop = f[3];
	d->rx_fifo = f[4];
	d->rx_frame = f[5];
	d->rx_compressed = f[6];
	d->rx_multicast = f[7];
	d->tx_bytes = f[8];
	d->tx_packets = f[9];
	d->tx_errs = f[10];
	d->tx_drop = f[11];
	d->tx_fifo = f[12];
	d->tx_colls = f[13];
	d->tx_carrier = f[14];
	d->tx_compressed = f[15];
	return 0;
}

int
procfs_parse_netdev(const char *buf, size_t len, procfs_netdevs_t *out,
    char *err, size_t errlen)
{
	int rc;

	out->n = out->dropped = 0;
	rc = parse_lines(buf, len, err, errlen, netdev_line, out);
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* /proc/self/mounts */

static int
is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/*
 * Copies t into dst decoding the kernel's escapes: a backslash and three
 * octal digits up to \377 (it writes \040, \011, \012 and \134). Any other
 * backslash is copied as it is, and so is \000, which would end the string
 * early. -1 when the result does not fit dst.
 */
static int
unescape(const struct tok *t, char *dst, size_t size)
{
	const char *s = t->s, *end = t->s + t->n, *bs;
	size_t o = 0, run;

	while (s < end) {
		/* copy up to the next backslash in one go */
		bs = memchr(s, '\\', (size_t)(end - s));
		run = (size_t)((bs ? bs : end) - s);
		if (run >= size - o)
			return -1;
		memcpy(dst + o, s, run);
		o += run;
		s += run;
		if (!bs)
			break;
		if (end - s > 3 && s[1] >= '0' && s[1] <= '3' &&
		    is_octal(s[2]) && is_octal(s[3]) &&
		    (s[1] != '0' || s[2] != '0' || s[3] != '0')) {
			dst[o++] = (char)((s[1] - '0') << 6 |
			    (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			dst[o++] = *s++;
		}
		if (o >= size)
			return -1;
	}
	dst[o] = '\0';
	return 0;
}

/* Whether the comma-separated options hold "ro" itself. */
static int
has_ro(const struct tok *opts)
{
	const char *s = opts->s, *end = opts->s + opts->n, *comma;

	while (s < end) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (!comma)
			comma = end;
		if (comma - s == 2 && s[0] == 'r' && s[1] == 'o')
			return 1;
		s = comma + 1;
	}
	return 0;
}

/*
 * "device mountpoint fstype options dump pass". dump and pass (always
 * "0 0") need only be there, and are not read.
 */
static int
mounts_line(struct line *l, void *vctx)
{
	procfs_mounts_t *out = vctx;
	procfs_mount_t *m;
	struct tok f[5];

	for (int i = 0; i < 5; i++) {
		if (!next_tok(l, &f[i]))
			return fail(l, "expected 6 fields");
		if (memchr(f[i].s, '\0', f[i].n))
			return bad(l, "NUL in field %d", i + 1);
	}
	if (!more_toks(l))
		return fail(l, "expected 6 fields");
	if (!usable(l))
		return 0;
	if (out->n == PROCFS_MOUNTS_MAX) {
		out->dropped++;
		return 0;
	}
	/* v[n] is scratch until n counts it */
	m = &out->v[out->n];
	memset(m, 0, sizeof *m);
	if (unescape(&f[0], m->device, sizeof m->device) != 0 ||
	    unescape(&f[1], m->mountpoint, sizeof m->mountpoint) != 0 ||
	    unescape(&f[2], m->fstype, sizeof m->fstype) != 0) {
		out->dropped++;
		return 0;
	}
	m->readonly = has_ro(&f[3]);
	out->n++;
	return 0;
}

int
procfs_parse_mounts(const char *buf, size_t len, procfs_mounts_t *out,
    char *err, size_t errlen)
{
	int rc;

	out->n = out->dropped = 0;
	rc = parse_lines(buf, len, err, errlen, mounts_line, out);
	if (rc != 0)
		memset(out, 0, sizeof *out);
	return rc;
}
