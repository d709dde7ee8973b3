/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What transport security costs, side by side in one run: the same echo
 * server reached over plain TCP on 127.0.0.1 and over CurveZMQ with
 * shoal's ZAP handler (common/curve.c) admitting the client. Measured for
 * both: DEALER -> ROUTER round trips of a 300-byte frame (a heartbeat) and
 * of a 64 KiB frame (a desired state), median and p99; pipelined
 * throughput with a window of messages in flight; sequential new
 * connections (connect, one echo, close: a flood of new agents); and the
 * server's CPU time.
 *
 * The server runs in a child process, its zloop answering the echo
 * sockets, the ZAP socket and a control pipe, as the coordinator's loop
 * does. Not in a thread of this process: libzmq encrypts and decrypts on
 * the I/O thread of its context, which czmq shares between every socket
 * of a process, so the server thread's own CPU time would miss the
 * encryption and the process's would include the client's. In a process
 * of its own, getrusage(RUSAGE_SELF) is the server's whole cost (loop
 * thread, I/O thread, reaper), and RUSAGE_THREAD in its loop says how
 * much of it the loop itself spends.
 *
 * Every measure runs in ROUNDS blocks, plain and CurveZMQ alternating
 * (which goes first swaps each round), and the samples of the blocks are
 * pooled, so drift on a busy machine falls on both columns alike.
 *
 * usage: bench_curve [SMALL [LARGE [PIPELINED [CONNECTIONS]]]]
 *        (default 20000 2000 100000 300)
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/util.h"

#define SMALL_LEN 300
#define LARGE_LEN (64 * 1024)
#define WINDOW 100
#define ROUNDS 4
#define ZAP_DOMAIN "bench"
#define RCV_TIMEOUT_MS 10000

/* What the server reports on the control pipe. */
typedef struct {
	uint64_t process_us; /* user + system, every thread of the server */
	uint64_t loop_us;    /* user + system, its loop thread only */
	uint64_t zap_curve;  /* ZAP requests answered, CURVE mechanism */
	uint64_t zap_null;   /* ZAP requests answered, NULL mechanism */
} server_cpu_t;

typedef struct {
	const char *name;
	int curve;
	int port;
	zsock_t *sock; /* the long-lived client */
	uint64_t *small, *large, *conn;
	size_t nsmall, nlarge, nconn;
	uint64_t pipe_ns, pipe_msgs;
	uint64_t cpu_small_us, loop_small_us, cpu_large_us, cpu_conn_us;
	uint64_t client_small_us;
	uint64_t zap_curve, zap_null; /* during this side's connections */
} transport_t;

static curve_keys_t server_keys, client_keys;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_curve: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t
rusage_us(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru) < 0)
		die("getrusage: %s", strerror(errno));
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* -- the server (child process) ---------------------------------------- */

typedef struct {
	int ctl;
	uint64_t zap_curve, zap_null;
} server_t;

/* curve_zap_fn: admits every client, counting who asked. */
static int
admit(const char *domain, const char *address, const char *key, char *user_id,
    char *why, size_t whylen, void *arg)
{
	server_t *srv = arg;

	(void)domain, (void)address, (void)why, (void)whylen;
	if (key[0])
		srv->zap_curve++;
	else
		srv->zap_null++;
	snprintf(user_id, CURVE_USER_ID_MAX, "%s", key[0] ? key : "null");
	return 1;
}

static int
on_echo(zloop_t *loop, zsock_t *sock, void *arg)
{
	zmsg_t *msg = zmsg_recv(sock);

	(void)loop, (void)arg;
	if (msg && zmsg_send(&msg, sock) < 0)
		zmsg_destroy(&msg);
	return 0;
}

static int
on_ctl(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
	server_t *srv = arg;
	server_cpu_t cpu;
	char c;

	(void)loop;
	/* End of file: the client is gone, so is the benchmark. */
	if (read(item->fd, &c, 1) != 1 || c != 'c')
		return -1;
	cpu.process_us = rusage_us(RUSAGE_SELF);
	cpu.loop_us = rusage_us(RUSAGE_THREAD);
	cpu.zap_curve = srv->zap_curve;
	cpu.zap_null = srv->zap_null;
	if (write(srv->ctl, &cpu, sizeof cpu) != sizeof cpu)
		return -1;
	return 0;
}

static int
serve(int ctl)
{
	server_t srv = { .ctl = ctl };
	zloop_t *loop = zloop_new();
	zsock_t *plain, *curve;
	curve_zap_t *zap = NULL;
	zmq_pollitem_t item = { NULL, ctl, ZMQ_POLLIN, 0 };
	int ports[2], r;

	/* The handler first: a CURVE server bound before it admits all. */
	r = curve_zap_new(loop, admit, &srv, &zap);
	if (r < 0)
		die("curve_zap_new: %s", zmq_strerror(-r));
	plain = zsock_new(ZMQ_ROUTER);
	curve = zsock_new(ZMQ_ROUTER);
	if (!plain || !curve)
		die("cannot create the server sockets");
	curve_server(curve, &server_keys, ZAP_DOMAIN);
	zsock_set_linger(plain, 0);
	zsock_set_linger(curve, 0);
	ports[0] = zsock_bind(plain, "tcp://127.0.0.1:*");
	ports[1] = zsock_bind(curve, "tcp://127.0.0.1:*");
	if (ports[0] < 0 || ports[1] < 0)
		die("cannot bind on 127.0.0.1: %s", zmq_strerror(zmq_errno()));
	zloop_reader(loop, plain, on_echo, NULL);
	zloop_reader(loop, curve, on_echo, NULL);
	zloop_poller(loop, &item, on_ctl, &srv);
	if (write(ctl, ports, sizeof ports) != sizeof ports)
		die("cannot tell the client the ports");
	zloop_start(loop);
	/* The handler ends its reader on the loop: before the loop goes. */
	curve_zap_destroy(&zap);
	zloop_destroy(&loop);
	zsock_destroy(&plain);
	zsock_destroy(&curve);
	return 0;
}

/* -- the client (this process) ----------------------------------------- */

static server_cpu_t
server_cpu(int ctl)
{
	server_cpu_t cpu;

	if (write(ctl, "c", 1) != 1 ||
	    read(ctl, &cpu, sizeof cpu) != sizeof cpu)
		die("the server does not answer on its control pipe");
	return cpu;
}

static zsock_t *
dealer(const transport_t *t)
{
	zsock_t *s = zsock_new(ZMQ_DEALER);

	if (!s)
		die("cannot create a DEALER");
	if (t->curve)
		curve_client(s, &client_keys, server_keys.public_key);
	zsock_set_linger(s, 0);
	zsock_set_rcvtimeo(s, RCV_TIMEOUT_MS);
	if (zsock_connect(s, "tcp://127.0.0.1:%d", t->port) < 0)
		die("cannot connect to port %d", t->port);
	return s;
}

static void
send_frame(void *h, const uint8_t *buf, size_t len)
{
	if (zmq_send(h, buf, len, 0) != (int)len)
		die("send: %s", zmq_strerror(zmq_errno()));
}

static void
recv_frame(void *h, uint8_t *buf, size_t len, const char *what)
{
	int n = zmq_recv(h, buf, len + 1, 0);

	if (n != (int)len)
		die("%s: %s", what,
		    n < 0 ? zmq_strerror(zmq_errno()) : "echo of another size");
}

/* One round trip; returns its nanoseconds. */
static uint64_t
round_trip(void *h, const uint8_t *out, uint8_t *in, size_t len,
    const char *what)
{
	uint64_t t0 = now_ns();

	send_frame(h, out, len);
	recv_frame(h, in, len, what);
	return now_ns() - t0;
}

static void
latency_block(transport_t *t, int ctl, const uint8_t *out, uint8_t *in,
    size_t len, size_t n)
{
	void *h = zsock_resolve(t->sock);
	server_cpu_t a = server_cpu(ctl), b;
	uint64_t c0 = rusage_us(RUSAGE_SELF);
	uint64_t *dst =
	    len == SMALL_LEN ? t->small + t->nsmall : t->large + t->nlarge;

	for (size_t i = 0; i < n; i++)
		dst[i] = round_trip(h, out, in, len, t->name);
	b = server_cpu(ctl);
	if (len == SMALL_LEN) {
		t->client_small_us += rusage_us(RUSAGE_SELF) - c0;
		t->cpu_small_us += b.process_us - a.process_us;
		t->loop_small_us += b.loop_us - a.loop_us;
		t->nsmall += n;
	} else {
		t->cpu_large_us += b.process_us - a.process_us;
		t->nlarge += n;
	}
}

/* n messages, at most WINDOW of them in flight. */
static void
pipeline_block(transport_t *t, const uint8_t *out, uint8_t *in, size_t n)
{
	void *h = zsock_resolve(t->sock);
	size_t sent = 0, got = 0;
	uint64_t t0 = now_ns();

	while (sent < n && sent < WINDOW) {
		send_frame(h, out, SMALL_LEN);
		sent++;
	}
	while (got < n) {
		recv_frame(h, in, SMALL_LEN, t->name);
		got++;
		if (sent < n) {
			send_frame(h, out, SMALL_LEN);
			sent++;
		}
	}
	t->pipe_ns += now_ns() - t0;
	t->pipe_msgs += n;
}

/* n new connections, one after the other: each a new DEALER that sends one
 * heartbeat, waits for its echo and is closed. */
static void
connect_block(transport_t *t, int ctl, const uint8_t *out, uint8_t *in,
    size_t n)
{
	server_cpu_t a = server_cpu(ctl), b;

	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		zsock_t *s = dealer(t);

		send_frame(zsock_resolve(s), out, SMALL_LEN);
		recv_frame(zsock_resolve(s), in, SMALL_LEN, t->name);
		zsock_destroy(&s);
		t->conn[t->nconn++] = now_ns() - t0;
	}
	b = server_cpu(ctl);
	t->cpu_conn_us += b.process_us - a.process_us;
	t->zap_curve += b.zap_curve - a.zap_curve;
	t->zap_null += b.zap_null - a.zap_null;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-th quantile (0.5, 0.99) of n samples, sorted in place. */
static double
quantile(uint64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	qsort(v, n, sizeof *v, cmp_u64);
	return (double)v[i < n ? i : n - 1];
}

static void
row(const char *what, double plain, double curve, int decimals)
{
	char a[32], b[32];

	snprintf(a, sizeof a, "%.*f", decimals, plain);
	snprintf(b, sizeof b, "%.*f", decimals, curve);
	printf("| %s | %s | %s | %.2f |\n", what, a, b,
	    plain > 0 ? curve / plain : 0.0);
}

static void
cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			colon += 1 + strspn(colon + 1, " \t");
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(buf, len, "%s", colon);
			break;
		}
	}
	fclose(f);
}

static size_t
arg(int argc, char **argv, int i, size_t dflt)
{
	long v = argc > i ? atol(argv[i]) : (long)dflt;

	if (v < ROUNDS)
		die("usage: bench_curve [SMALL [LARGE [PIPELINED "
		    "[CONNECTIONS]]]] (each at least %d)",
		    ROUNDS);
	return (size_t)v / ROUNDS * ROUNDS;
}

int
main(int argc, char **argv)
{
	size_t nsmall = arg(argc, argv, 1, 20000);
	size_t nlarge = arg(argc, argv, 2, 2000);
	size_t npipe = arg(argc, argv, 3, 100000);
	size_t nconn = arg(argc, argv, 4, 300);
	transport_t sides[2] = { { .name = "plain TCP" },
		{ .name = "CurveZMQ", .curve = 1 } };
	uint8_t *out = xmalloc(LARGE_LEN), *in = xmalloc(LARGE_LEN + 1);
	int sp[2], ports[2], major, minor, patch, status;
	char model[128];
	pid_t pid;

	/* Keys before the fork, so both sides know them; the child must
	 * fork before this process starts czmq (its context and threads do
	 * not survive a fork). */
	if (zmq_curve_keypair(server_keys.public_key, server_keys.secret_key) !=
	        0 ||
	    zmq_curve_keypair(client_keys.public_key, client_keys.secret_key) !=
	        0)
		die("this libzmq has no CurveZMQ");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sp[0]);
		exit(serve(sp[1]));
	}
	close(sp[1]);
	if (read(sp[0], ports, sizeof ports) != sizeof ports)
		die("the server did not start");

	for (size_t i = 0; i < LARGE_LEN; i++)
		out[i] = (uint8_t)(i * 131 + 7);
	for (int s = 0; s < 2; s++) {
		transport_t *t = &sides[s];

		t->port = ports[s];
		t->sock = dealer(t);
		t->small = xcalloc(nsmall, sizeof *t->small);
		t->large = xcalloc(nlarge, sizeof *t->large);
		t->conn = xcalloc(nconn, sizeof *t->conn);
		/* Warm-up: the handshake, buffers, caches, the CPU clock. */
		for (int i = 0; i < 2000; i++)
			round_trip(zsock_resolve(t->sock), out, in, SMALL_LEN,
			    t->name);
		for (int i = 0; i < 100; i++)
			round_trip(zsock_resolve(t->sock), out, in, LARGE_LEN,
			    t->name);
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 2; k++)
			latency_block(&sides[(r + k) % 2], sp[0], out, in,
			    SMALL_LEN, nsmall / ROUNDS);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 2; k++)
			latency_block(&sides[(r + k) % 2], sp[0], out, in,
			    LARGE_LEN, nlarge / ROUNDS);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 2; k++)
			pipeline_block(&sides[(r + k) % 2], out, in,
			    npipe / ROUNDS);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 2; k++)
			connect_block(&sides[(r + k) % 2], sp[0], out, in,
			    nconn / ROUNDS);

	zmq_version(&major, &minor, &patch);
	cpu_model(model, sizeof model);
	printf("machine: %ld cores (nproc), %s; libzmq %d.%d.%d, czmq "
	       "%d.%d.%d\n",
	    sysconf(_SC_NPROCESSORS_ONLN), model, major, minor, patch,
	    CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
	printf("%zu round trips of %d bytes, %zu of %d bytes, %zu pipelined "
	       "(%d in flight), %zu new connections, each in %d blocks "
	       "alternating plain and CurveZMQ\n",
	    nsmall, SMALL_LEN, nlarge, LARGE_LEN, npipe, WINDOW, nconn, ROUNDS);
	printf("server CPU: getrusage of the server process (all its "
	       "threads; libzmq encrypts on its I/O thread); loop thread: "
	       "RUSAGE_THREAD\n");
	printf("ZAP requests during the new connections: plain %llu "
	       "(NULL), CurveZMQ %llu (CURVE)\n\n",
	    (unsigned long long)(sides[0].zap_null + sides[0].zap_curve),
	    (unsigned long long)(sides[1].zap_curve + sides[1].zap_null));
	printf("| measure | plain TCP | CurveZMQ | CurveZMQ / plain |\n");
	printf("| --- | ---: | ---: | ---: |\n");
	{
		transport_t *p = &sides[0], *c = &sides[1];
		double pconn = 0, cconn = 0;

		for (size_t i = 0; i < p->nconn; i++)
			pconn += (double)p->conn[i];
		for (size_t i = 0; i < c->nconn; i++)
			cconn += (double)c->conn[i];
		row("300 B round trip, median (µs)",
		    quantile(p->small, p->nsmall, 0.5) / 1e3,
		    quantile(c->small, c->nsmall, 0.5) / 1e3, 1);
		row("300 B round trip, p99 (µs)",
		    quantile(p->small, p->nsmall, 0.99) / 1e3,
		    quantile(c->small, c->nsmall, 0.99) / 1e3, 1);
		row("64 KiB round trip, median (µs)",
		    quantile(p->large, p->nlarge, 0.5) / 1e3,
		    quantile(c->large, c->nlarge, 0.5) / 1e3, 1);
		row("64 KiB round trip, p99 (µs)",
		    quantile(p->large, p->nlarge, 0.99) / 1e3,
		    quantile(c->large, c->nlarge, 0.99) / 1e3, 1);
		row("300 B messages per second, 100 in flight",
		    (double)p->pipe_msgs * 1e9 / (double)p->pipe_ns,
		    (double)c->pipe_msgs * 1e9 / (double)c->pipe_ns, 0);
		row("new connections per second (connect, one echo, close)",
		    (double)p->nconn * 1e9 / pconn,
		    (double)c->nconn * 1e9 / cconn, 0);
		row("new connection, median (ms)",
		    quantile(p->conn, p->nconn, 0.5) / 1e6,
		    quantile(c->conn, c->nconn, 0.5) / 1e6, 2);
		row("server CPU per 10,000 300 B round trips (ms)",
		    (double)p->cpu_small_us * 10.0 / (double)p->nsmall,
		    (double)c->cpu_small_us * 10.0 / (double)c->nsmall, 0);
		row("- of which its loop thread (ms)",
		    (double)p->loop_small_us * 10.0 / (double)p->nsmall,
		    (double)c->loop_small_us * 10.0 / (double)c->nsmall, 0);
		row("server CPU per 1,000 64 KiB round trips (ms)",
		    (double)p->cpu_large_us / (double)p->nlarge,
		    (double)c->cpu_large_us / (double)c->nlarge, 0);
		row("server CPU per new connection (µs)",
		    (double)p->cpu_conn_us / (double)p->nconn,
		    (double)c->cpu_conn_us / (double)c->nconn, 0);
		row("client CPU per 10,000 300 B round trips (ms)",
		    (double)p->client_small_us * 10.0 / (double)p->nsmall,
		    (double)c->client_small_us * 10.0 / (double)c->nsmall, 0);
	}
	if (write(sp[0], "q", 1) != 1 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("the server did not end cleanly (wait status %#x)", status);
	for (int s = 0; s < 2; s++) {
		zsock_destroy(&sides[s].sock);
		free(sides[s].small);
		free(sides[s].large);
		free(sides[s].conn);
	}
	free(out);
	free(in);
	return 0;
}
