/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl: the operator's CLI. Sends one ControlRequest to the
 * coordinator's control endpoint, waits for the reply (with a timeout) and
 * prints it as a table or, with --json, as JSON. Exit status: 0 on
 * success, 1 when the request failed, 2 for a usage error.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <czmq.h>
#include <jansson.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/util.h"
#include "common/wire.h"
#include "ctl/ctl.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "Usage: shoalctl [--control EP] [--timeout DURATION] COMMAND "
	    "[ARGS]...\n"
	    "Operate a shoal fleet through its coordinator.\n"
	    "\n"
	    "Commands:\n"
	    "  nodes [--json]                  list the nodes\n"
	    "  node show ID [--json]           one node in detail\n"
	    "  top [--sort cpu|memory|gpu] [--json]\n"
	    "                                  nodes by CPU, memory or GPU "
	    "use\n"
	    "  events [--node ID] [--service S] [--limit N] [--follow] "
	    "[--json]\n"
	    "                                  the newest events of agents "
	    "and rollouts\n"
	    "  apply -f SPEC [--message M] [--json]\n"
	    "                                  store a service spec as a new "
	    "revision and\n"
	    "                                  roll it out\n"
	    "  plan -f SPEC [--json]           what apply would do, changing "
	    "nothing\n"
	    "  rollout status SERVICE [--watch] [--json]\n"
	    "                                  a service's rollout, node by "
	    "node\n"
	    "  rollout promote|pause|resume|abort SERVICE\n"
	    "                                  steer it\n"
	    "  rollback SERVICE [--to REV] [--message M]\n"
	    "                                  roll back to an older "
	    "revision\n"
	    "  services [--json]               list the services\n"
	    "  status SERVICE [--json]         a service on each of its nodes\n"
	    "  history SERVICE [--json]        a service's revisions and "
	    "rollouts (the\n"
	    "                                  audit log), newest first\n"
	    "  delete SERVICE                  remove a service from every "
	    "node\n"
	    "  snapshot create [--node ID | --selector LABELS] [--message M] "
	    "[--wait]\n"
	    "                                  snapshot what nodes run\n"
	    "  snapshot list [--node ID] [--json]\n"
	    "                                  the nodes' snapshots\n"
	    "  snapshot restore NODE SNAPSHOT [--wait]\n"
	    "                                  bring a node back to a "
	    "snapshot\n"
	    "  backup create FILE              a copy of the coordinator's "
	    "state, for\n"
	    "                                  shoal-coordinator --restore\n"
	    "  keys list|accept|reject|delete NODE\n"
	    "                                  the nodes' CurveZMQ keys: who "
	    "may join\n"
	    "  keys generate FILE              an operator key pair for a "
	    "tcp:// --control\n"
	    "\n"
	    "Options:\n"
	    "      --control EP        the coordinator's control endpoint "
	    "(default:\n"
	    "                          $SHOAL_CONTROL, else "
	    "ipc:///run/shoal/control.sock)\n"
	    "      --timeout DURATION  how long to wait for a reply (default "
	    "5s)\n"
	    "      --key FILE          this operator's secret key, for a "
	    "tcp:// endpoint\n"
	    "                          (default $SHOAL_KEY; shoalctl keys "
	    "generate)\n"
	    "      --coordinator-key FILE\n"
	    "                          the coordinator's public key, for a "
	    "tcp:// endpoint\n"
	    "                          (default $SHOAL_COORDINATOR_KEY; its "
	    "coordinator.pub)\n"
	    "  -h, --help              show this help; COMMAND --help for a "
	    "command's\n"
	    "  -V, --version           show the version\n");
}

int fail_quiet;
int call_refused;

int
fail(const char *fmt, ...)
{
	va_list ap;

	if (fail_quiet)
		return 1;
	fputs("shoalctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* A missing ipc:// socket file means no coordinator, one we may not open
 * means no permission: say so at once rather than time out. */
static int
check_endpoint(const char *ep)
{
	struct stat st;

	if (strncmp(ep, "ipc://", 6) != 0)
		return 0;
	if (stat(ep + 6, &st) < 0 && errno == EACCES)
		return fail("cannot use the control socket %s: %s (only root "
		            "and the shoal group may)",
		    ep + 6, strerror(errno));
	if (stat(ep + 6, &st) < 0)
		return fail("cannot reach the coordinator: %s: %s (is "
		            "shoal-coordinator running? set --control or "
		            "SHOAL_CONTROL)",
		    ep + 6, strerror(errno));
	if (access(ep + 6, R_OK | W_OK) < 0)
		return fail("cannot use the control socket %s: %s (only root "
		            "and the shoal group may)",
		    ep + 6, strerror(errno));
	return 0;
}

/*
 * A tcp:// endpoint is CurveZMQ: this operator's key pair and the
 * coordinator's public key, loaded once. Returns 0 or 1 after saying why.
 */
static int
secure(const ctl_t *c, zsock_t *s)
{
	static curve_keys_t keys;
	static char server[CURVE_KEY_LEN + 1];
	static int loaded;
	char err[512];

	if (strncmp(c->control, "tcp://", 6) != 0)
		return 0;
	if (!loaded) {
		if (!c->key_file || !c->coordinator_key_file)
			return fail("%s is a TCP endpoint: it needs --key FILE "
			            "(this operator's secret key, from "
			            "shoalctl keys generate) and "
			            "--coordinator-key FILE (the coordinator's "
			            "coordinator.pub), or SHOAL_KEY and "
			            "SHOAL_COORDINATOR_KEY",
			    c->control);
		if (curve_keys_load(c->key_file, &keys, err, sizeof err) < 0 ||
		    curve_public_load(c->coordinator_key_file, server, err,
		        sizeof err) < 0)
			return fail("%s", err);
		loaded = 1;
	}
	curve_client(s, &keys, server);
	return 0;
}

/* Waits for a reply on s, or for the monitor to say the handshake failed
 * (then *why says how). */
static zframe_t *
recv_reply(zsock_t *s, zsock_t *mon, uint64_t timeout_ms, const char **why)
{
	zpoller_t *p = zpoller_new(s, mon, NULL);
	uint64_t deadline = mono_ms() + timeout_ms;
	zframe_t *f = NULL;

	*why = NULL;
	while (!f && !*why) {
		uint64_t now = mono_ms();
		void *ready;

		if (now >= deadline)
			break;
		ready = zpoller_wait(p, (int)(deadline - now));
		if (ready == s) {
			f = zframe_recv(s);
		} else if (ready == mon) {
			zmsg_t *ev = zmsg_recv(mon);
			zframe_t *head = ev ? zmsg_first(ev) : NULL;
			uint16_t event = 0;
			uint32_t value = 0;

			if (head && zframe_size(head) == 6) {
				memcpy(&event, zframe_data(head), 2);
				memcpy(&value, zframe_data(head) + 2, 4);
			}
			if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
				*why = value == 400
				    ? "the coordinator refused this operator "
				      "key: it is not on its --operator-keys "
				      "list"
				    : "the coordinator refused this operator "
				      "key";
			else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
			    event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
				*why = "the CurveZMQ handshake failed: is "
				       "--coordinator-key that coordinator's "
				       "coordinator.pub?";
			zmsg_destroy(&ev);
		} else {
			break; /* interrupted or timed out */
		}
	}
	zpoller_destroy(&p);
	return f;
}

/* Sends req and waits for the reply; the caller frees *ret. */
int
call(const ctl_t *c, Shoal__ControlRequest *req, Shoal__Envelope **ret)
{
	Shoal__Envelope env = SHOAL__ENVELOPE__INIT, *in = NULL;
	static unsigned monitors;
	const char *why = NULL;
	char mon_ep[64];
	zsock_t *s, *mon = NULL;
	zframe_t *f;
	int r;

	call_refused = 0;
	if (check_endpoint(c->control))
		return 1;
	s = zsock_new(ZMQ_REQ);
	if (!s)
		return fail("cannot create a socket: %s",
		    zmq_strerror(zmq_errno()));
	zsock_set_linger(s, 0);
	zsock_set_maxmsgsize(s, WIRE_MAX_FRAME);
	zsock_set_rcvtimeo(s, (int)c->timeout_ms);
	zsock_set_sndtimeo(s, (int)c->timeout_ms);
	if (secure(c, s)) {
		r = 1;
		goto out;
	}
	/* Handshake failures, to say why instead of timing out. */
	snprintf(mon_ep, sizeof mon_ep, "inproc://shoalctl-monitor-%u",
	    ++monitors);
	if (zmq_socket_monitor(zsock_resolve(s), mon_ep,
	        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
	            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
		mon = zsock_new(ZMQ_PAIR);
		if (mon && zsock_connect(mon, "%s", mon_ep) < 0)
			zsock_destroy(&mon);
	}
	if (zsock_connect(s, "%s", c->control) < 0) {
		r = fail("cannot connect to %s: %s", c->control,
		    zmq_strerror(zmq_errno()));
		goto out;
	}
	env.version = SHOAL_PROTOCOL_VERSION;
	env.seq = 1;
	env.body_case = SHOAL__ENVELOPE__BODY_CONTROL_REQUEST;
	env.control_request = req;
	f = wire_frame(&env);
	if (zframe_send(&f, s, 0) < 0) {
		zframe_destroy(&f);
		r = fail("cannot send to %s: %s", c->control,
		    zmq_strerror(zmq_errno()));
		goto out;
	}
	f = mon ? recv_reply(s, mon, c->timeout_ms, &why) : zframe_recv(s);
	if (!f) {
		if (why)
			r = fail("%s: %s", c->control, why);
		else
			r = fail("no reply from the coordinator at %s within "
			         "%llums",
			    c->control, (unsigned long long)c->timeout_ms);
		goto out;
	}
	why = NULL;
	r = wire_unpack(zframe_data(f), zframe_size(f), &in, &why);
	zframe_destroy(&f);
	if (r < 0) {
		r = fail("bad reply from %s: %s (%s)", c->control,
		    shoal_strerror(r), why);
		goto out;
	}
	if (in->body_case == SHOAL__ENVELOPE__BODY_ERROR) {
		call_refused = 1;
		r = fail("the coordinator refused the request: %s",
		    in->error->message[0] ? in->error->message
		                          : shoal_strerror(in->error->code));
		goto out;
	}
	if (in->body_case != SHOAL__ENVELOPE__BODY_CONTROL_REPLY) {
		r = fail("unexpected %s from %s", wire_body_name(in),
		    c->control);
		goto out;
	}
	if (in->control_reply->code != 0) {
		call_refused = 1;
		r = fail("%s",
		    in->control_reply->error[0]
		        ? in->control_reply->error
		        : shoal_strerror(in->control_reply->code));
		goto out;
	}
	*ret = in;
	in = NULL;
	r = 0;
out:
	if (in)
		shoal__envelope__free_unpacked(in, NULL);
	if (mon)
		zmq_socket_monitor(zsock_resolve(s), NULL, 0);
	zsock_destroy(&mon);
	zsock_destroy(&s);
	return r;
}

/* -- output ------------------------------------------------------------ */

static const char *
state_name(Shoal__Node__State s)
{
	switch (s) {
	case SHOAL__NODE__STATE__ONLINE:
		return "online";
	case SHOAL__NODE__STATE__OFFLINE:
		return "offline";
	default:
		return "unknown";
	}
}

json_t *
time_json(uint64_t ms)
{
	char buf[RFC3339_LEN];

	if (!ms)
		return json_null();
	format_rfc3339(ms, buf);
	return json_string(buf);
}

static json_t *
node_json(const Shoal__Node *n)
{
	json_t *o = json_object(), *labels = json_object(), *facts;
	const Shoal__Facts *f = n->facts;

	for (size_t i = 0; i < n->n_labels; i++)
		json_object_set_new(labels, n->labels[i]->key,
		    json_string(n->labels[i]->value));
	json_object_set_new(o, "id", json_string(n->id));
	json_object_set_new(o, "state", json_string(state_name(n->state)));
	json_object_set_new(o, "labels", labels);
	json_object_set_new(o, "last_seen", time_json(n->last_seen_ms));
	json_object_set_new(o, "state_since", time_json(n->state_since_ms));
	json_object_set_new(o, "first_seen", time_json(n->first_seen_ms));
	json_object_set_new(o, "agent_version", json_string(n->agent_version));
	facts = json_object();
	if (f) {
		json_object_set_new(facts, "hostname",
		    json_string(f->hostname));
		json_object_set_new(facts, "os", json_string(f->os));
		json_object_set_new(facts, "kernel", json_string(f->kernel));
		json_object_set_new(facts, "arch", json_string(f->arch));
		json_object_set_new(facts, "cpus", json_integer(f->cpus));
		json_object_set_new(facts, "memory_bytes",
		    json_integer((json_int_t)f->memory_bytes));
	}
	json_object_set_new(o, "facts", facts);
	json_object_set_new(o, "heartbeat_ms", json_integer(n->heartbeat_ms));
	json_object_set_new(o, "generation",
	    json_integer((json_int_t)n->generation));
	json_object_set_new(o, "acked_generation",
	    json_integer((json_int_t)n->acked_generation));
	if (n->figures)
		json_object_set_new(o, "figures",
		    json_pack("{s:f,s:f,s:I,s:I,s:i,s:f,s:I,s:I}", "load1",
		        n->figures->load1, "cpu_percent",
		        n->figures->cpu_percent, "memory_available_bytes",
		        (json_int_t)n->figures->memory_available_bytes,
		        "memory_total_bytes",
		        (json_int_t)n->figures->memory_total_bytes, "gpus",
		        (int)n->figures->gpus, "gpu_util_percent",
		        n->figures->gpu_util_percent, "gpu_memory_used_bytes",
		        (json_int_t)n->figures->gpu_memory_used_bytes,
		        "gpu_memory_total_bytes",
		        (json_int_t)n->figures->gpu_memory_total_bytes));
	else
		json_object_set_new(o, "figures", json_null());
	json_object_set_new(o, "outbox_depth",
	    json_integer((json_int_t)n->outbox_depth));
	return o;
}

int
print_json(json_t *j)
{
	int r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);

	json_decref(j);
	if (r < 0)
		return fail("cannot write JSON output");
	fputc('\n', stdout);
	return 0;
}

void
ago(uint64_t ms, char *buf, size_t size)
{
	uint64_t now = now_ms(), d;

	if (!ms) {
		snprintf(buf, size, "never");
		return;
	}
	d = now > ms ? (now - ms) / 1000 : 0;
	if (d < 120)
		snprintf(buf, size, "%llus ago", (unsigned long long)d);
	else if (d < 7200)
		snprintf(buf, size, "%llum ago", (unsigned long long)d / 60);
	else if (d < 172800)
		snprintf(buf, size, "%lluh ago", (unsigned long long)d / 3600);
	else
		snprintf(buf, size, "%llud ago", (unsigned long long)d / 86400);
}

static char *
labels_text(const Shoal__Node *n)
{
	size_t len = 2;
	char *s;

	for (size_t i = 0; i < n->n_labels; i++)
		len +=
		    strlen(n->labels[i]->key) + strlen(n->labels[i]->value) + 2;
	s = xcalloc(1, len);
	for (size_t i = 0; i < n->n_labels; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, n->labels[i]->key);
		strcat(s, "=");
		strcat(s, n->labels[i]->value);
	}
	if (!*s)
		strcpy(s, "-");
	return s;
}

static void
print_node_row(const Shoal__Node *n)
{
	char seen[32], *labels = labels_text(n);

	ago(n->last_seen_ms, seen, sizeof seen);
	printf("%-24s %-8s %-32s %-10s %s\n", n->id, state_name(n->state),
	    labels, seen, n->agent_version[0] ? n->agent_version : "-");
	free(labels);
}

/* -- commands ---------------------------------------------------------- */

int
parse_command_flags(int argc, char **argv, ctl_t *c, const char *help,
    const struct option *extra, int (*on_extra)(int, const char *, void *),
    void *arg)
{
	struct option opts[8] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
	};
	char shorts[16] = "h";
	size_t sl = 1;
	int n = 2, ch;

	/* Each extra option's letter is its short form too (-f SPEC). */
	for (; extra && extra->name && n < 7; extra++) {
		opts[n++] = *extra;
		shorts[sl++] = (char)extra->val;
		if (extra->has_arg == required_argument)
			shorts[sl++] = ':';
	}
	/* 0, not 1: glibc then starts over, and forgets the "+" (stop at
	 * the first operand) that main()'s scan asked for. */
	optind = 0;
	opterr = 0;
	/* Options may follow operands: "node show ID --json". */
	while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			c->json = 1;
			break;
		case 'h':
			fputs(help, stdout);
			return -1;
		case '?':
			if (optopt && strchr(shorts, optopt))
				fail("%s: option '%s' needs a value", argv[0],
				    argv[optind - 1]);
			else
				fail("%s: unknown option '%s'", argv[0],
				    argv[optind - 1]);
			fputs(help, stderr);
			return -EXIT_USAGE;
		default:
			if (!on_extra || on_extra(ch, optarg, arg) < 0)
				return -EXIT_USAGE;
			break;
		}
	}
	return optind;
}

static int
chunk_flag(int ch, const char *v, void *arg)
{
	uint64_t *chunk = arg;

	if (parse_uint(v, WIRE_MAX_ITEMS, chunk) < 0 || *chunk == 0)
		return -fail("nodes: --chunk-size: expected 1 to %d, got '%s'",
		    WIRE_MAX_ITEMS, v);
	return 0;
}

/* Calls fn for every node, asking for chunk per page (0: as many as fit);
 * the fleet may take several replies. 0, or a failure already reported. */
static int
each_node(ctl_t *c, uint32_t chunk, void (*fn)(const Shoal__Node *, void *),
    void *arg)
{
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListNodes ln = SHOAL__LIST_NODES__INIT;
	Shoal__Envelope *rep;
	char *after = NULL;
	int r;

	ln.limit = chunk;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_NODES;
	req.list_nodes = &ln;
	for (;;) {
		const Shoal__ControlReply *cr;

		r = call(c, &req, &rep);
		if (r)
			break;
		cr = rep->control_reply;
		for (size_t k = 0; k < cr->n_nodes; k++)
			fn(cr->nodes[k], arg);
		if (cr->next[0] && cr->n_nodes &&
		    (strcmp(cr->next, cr->nodes[cr->n_nodes - 1]->id) != 0 ||
		        (after && strcmp(cr->next, after) <= 0))) {
			/* A page that does not move forward would never end. */
			r = fail(
			    "the coordinator sent a page of nodes that does "
			    "not advance (next '%s')",
			    cr->next);
			shoal__envelope__free_unpacked(rep, NULL);
			break;
		}
		free(after);
		after = cr->next[0] && cr->n_nodes ? xstrdup(cr->next) : NULL;
		shoal__envelope__free_unpacked(rep, NULL);
		if (!after)
			break;
		ln.after = after;
	}
	free(after);
	return r;
}

static void
node_listed(const Shoal__Node *n, void *arg)
{
	json_t *all = arg;

	if (all)
		json_array_append_new(all, node_json(n));
	else
		print_node_row(n);
}

static int
cmd_nodes(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl nodes [--json] [--chunk-size N]\n"
	    "List every node the coordinator knows: id, state, labels, last "
	    "heartbeat,\nagent version. --json prints an array of node "
	    "objects.\n"
	    "\n"
	    "  --chunk-size N  ask for N nodes per request (default: as many "
	    "as fit in\n"
	    "                  one reply); a large fleet is fetched in "
	    "pages either way\n";
	static const struct option extra[] = {
		{ "chunk-size", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *all = NULL;
	uint64_t chunk = 0;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, chunk_flag, &chunk);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("nodes: unexpected argument '%s'", argv[i]);
	if (c->json)
		all = json_array();
	else
		printf("%-24s %-8s %-32s %-10s %s\n", "ID", "STATE", "LABELS",
		    "LAST SEEN", "VERSION");
	r = each_node(c, (uint32_t)chunk, node_listed, all);
	if (all && r == 0)
		return print_json(all);
	json_decref(all);
	return r;
}

/* -- top ----------------------------------------------------------------- */

typedef struct top_row {
	char id[WIRE_MAX_STRING + 1];
	int online, have;
	double cpu, load1, gpu;
	uint64_t mem_total, mem_avail, gpu_used, gpu_total;
	uint32_t cpus, gpus;
} top_row_t;

typedef struct top_rows {
	top_row_t *v;
	size_t n;
	int by; /* 'c'pu, 'm'emory, 'g'pu */
} top_rows_t;

static double
mem_used_ratio(const top_row_t *r)
{
	return r->mem_total && r->mem_avail <= r->mem_total
	    ? (double)(r->mem_total - r->mem_avail) / (double)r->mem_total
	    : 0;
}

static void
top_listed(const Shoal__Node *n, void *arg)
{
	top_rows_t *t = arg;
	top_row_t *r;

	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	r = &t->v[t->n++];
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", n->id);
	r->online = n->state == SHOAL__NODE__STATE__ONLINE;
	if (n->facts) {
		r->cpus = n->facts->cpus;
		r->mem_total = n->facts->memory_bytes;
	}
	if (n->figures) {
		const Shoal__HostFigures *f = n->figures;

		r->have = 1;
		r->cpu = f->cpu_percent;
		r->load1 = f->load1;
		r->mem_avail = f->memory_available_bytes;
		if (f->memory_total_bytes)
			r->mem_total = f->memory_total_bytes;
		r->gpus = f->gpus;
		r->gpu = f->gpu_util_percent;
		r->gpu_used = f->gpu_memory_used_bytes;
		r->gpu_total = f->gpu_memory_total_bytes;
	}
}

static double
top_key(const top_row_t *r, int by)
{
	if (!r->online || !r->have)
		return -1; /* last: nothing current to sort by */
	return by == 'm' ? mem_used_ratio(r) : by == 'g' ? r->gpu : r->cpu;
}

static int top_by; /* qsort() has no argument for it */

static int
top_cmp(const void *a, const void *b)
{
	const top_row_t *x = a, *y = b;
	double kx = top_key(x, top_by), ky = top_key(y, top_by);

	if (kx != ky)
		return kx < ky ? 1 : -1; /* busiest first */
	return strcmp(x->id, y->id);
}

static json_t *
top_json(const top_row_t *r)
{
	static const char *const keys[] = { "cpu_percent", "cpus", "load1",
		"memory_total_bytes", "memory_available_bytes",
		"memory_used_percent", "gpus", "gpu_util_percent",
		"gpu_memory_used_bytes", "gpu_memory_total_bytes" };
	json_t *o = json_pack("{s:s,s:s}", "node", r->id, "state",
	    r->online ? "online" : "offline");
	json_t *v[ARRAY_SIZE(keys)];

	/* The same keys with or without a heartbeat: null when none came. */
	v[0] = json_real(r->cpu);
	v[1] = json_integer(r->cpus);
	v[2] = json_real(r->load1);
	v[3] = json_integer((json_int_t)r->mem_total);
	v[4] = json_integer((json_int_t)r->mem_avail);
	v[5] = json_real(100 * mem_used_ratio(r));
	v[6] = json_integer(r->gpus);
	v[7] = json_real(r->gpu);
	v[8] = json_integer((json_int_t)r->gpu_used);
	v[9] = json_integer((json_int_t)r->gpu_total);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!r->have) {
			json_decref(v[i]);
			v[i] = json_null();
		}
		json_object_set_new(o, keys[i], v[i]);
	}
	return o;
}

static void
top_print(const top_row_t *r)
{
	char used[16], total[16], gused[16], gtotal[16];

	if (!r->have) {
		printf("%-24s %-8s %s\n", r->id,
		    r->online ? "online" : "offline", "(no heartbeat yet)");
		return;
	}
	format_bytes(r->mem_total -
	        (r->mem_avail <= r->mem_total ? r->mem_avail : r->mem_total),
	    used, sizeof used);
	format_bytes(r->mem_total, total, sizeof total);
	printf("%-24s %-8s %5.1f%% %6.2f %5.1f%% %9s/%-9s", r->id,
	    r->online ? "online" : "offline", r->cpu, r->load1,
	    100 * mem_used_ratio(r), used, total);
	if (r->gpus) {
		format_bytes(r->gpu_used, gused, sizeof gused);
		format_bytes(r->gpu_total, gtotal, sizeof gtotal);
		printf(" %4u %5.1f%% %9s/%s\n", r->gpus, r->gpu, gused, gtotal);
	} else {
		printf(" %4s\n", "-");
	}
}

static int
top_flag(int ch, const char *arg, void *out)
{
	int *by = out;

	if (ch != 's')
		return 0;
	if (strcmp(arg, "cpu") == 0 || strcmp(arg, "memory") == 0 ||
	    strcmp(arg, "gpu") == 0) {
		*by = arg[0];
		return 0;
	}
	return -fail("top: --sort: expected cpu, memory or gpu, not '%s'", arg);
}

static int
cmd_top(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl top [--sort cpu|memory|gpu] [--json]\n"
	    "The fleet's nodes, busiest first, from their latest heartbeats: "
	    "CPU use,\nload, memory in use, GPUs, their mean utilisation and "
	    "memory. Offline\nnodes come last. --json prints an array of "
	    "objects.\n"
	    "\n"
	    "  --sort KEY  cpu (default), memory or gpu\n";
	static const struct option extra[] = {
		{ "sort", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	top_rows_t t = { .by = 'c' };
	json_t *all;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, top_flag, &t.by);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("top: unexpected argument '%s'", argv[i]);
	r = each_node(c, 0, top_listed, &t);
	if (r) {
		free(t.v);
		return r;
	}
	top_by = t.by;
	if (t.n)
		qsort(t.v, t.n, sizeof *t.v, top_cmp);
	if (c->json) {
		all = json_array();
		for (size_t k = 0; k < t.n; k++)
			json_array_append_new(all, top_json(&t.v[k]));
		free(t.v);
		return print_json(all);
	}
	printf("%-24s %-8s %6s %6s %6s %19s %4s %6s %s\n", "NODE", "STATE",
	    "CPU", "LOAD", "MEM", "USED/TOTAL", "GPUS", "GPU", "GPU MEM");
	for (size_t k = 0; k < t.n; k++)
		top_print(&t.v[k]);
	free(t.v);
	return 0;
}

static int
cmd_node_show(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl node show ID [--json]\n"
	    "Show one node: state, labels, facts, last figures, desired-state "
	    "generation.\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__GetNode gn = SHOAL__GET_NODE__INIT;
	Shoal__Envelope *rep;
	char t[RFC3339_LEN], seen[32];
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (argc - i != 1) {
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	if (!node_id_valid(argv[i]))
		return usage_error("node show: '%s' is not a valid node id",
		    argv[i]);
	gn.id = argv[i];
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_NODE;
	req.get_node = &gn;
	r = call(c, &req, &rep);
	if (r)
		return r;
	const Shoal__Node *n = rep->control_reply->nodes[0];

	if (rep->control_reply->n_nodes != 1) {
		r = fail("the coordinator answered with %zu nodes",
		    rep->control_reply->n_nodes);
	} else if (c->json) {
		r = print_json(node_json(n));
	} else {
		char *labels = labels_text(n);

		ago(n->last_seen_ms, seen, sizeof seen);
		format_rfc3339(n->last_seen_ms, t);
		printf("id:            %s\n", n->id);
		printf("state:         %s\n", state_name(n->state));
		printf("labels:        %s\n", labels);
		printf("last seen:     %s (%s)\n", t, seen);
		printf("agent version: %s\n", n->agent_version);
		if (n->facts) {
			printf("hostname:      %s\n", n->facts->hostname);
			printf("os:            %s\n", n->facts->os);
			printf("kernel:        %s %s\n", n->facts->kernel,
			    n->facts->arch);
			printf("cpus:          %u\n", n->facts->cpus);
			printf("memory:        %.1f GiB\n",
			    (double)n->facts->memory_bytes / (1 << 30));
		}
		if (n->figures)
			printf("load:          %.2f, cpu %.1f%%, %.1f GiB "
			       "available\n",
			    n->figures->load1, n->figures->cpu_percent,
			    (double)n->figures->memory_available_bytes /
			        (1 << 30));
		if (n->figures && n->figures->gpus)
			printf(
			    "gpus:          %u, %.1f%% busy, %.1f of %.1f GiB "
			    "in use\n",
			    n->figures->gpus, n->figures->gpu_util_percent,
			    (double)n->figures->gpu_memory_used_bytes /
			        (1 << 30),
			    (double)n->figures->gpu_memory_total_bytes /
			        (1 << 30));
		printf("generation:    %llu desired, %llu reached\n",
		    (unsigned long long)n->generation,
		    (unsigned long long)n->acked_generation);
		printf("heartbeat:     every %ums\n", n->heartbeat_ms);
		free(labels);
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

typedef struct events_args {
	const char *node;
	const char *service;
	uint64_t limit;
	int follow;
} events_args_t;

static int
events_flag(int ch, const char *v, void *arg)
{
	events_args_t *e = arg;

	if (ch == 'n') {
		if (!node_id_valid(v))
			return -fail("events: --node: '%s' is not a valid node "
			             "id",
			    v);
		e->node = v;
	} else if (ch == 's') {
		if (!service_name_valid(v))
			return -fail("events: --service: '%s' is not a service "
			             "name",
			    v);
		e->service = v;
	} else if (ch == 'f') {
		e->follow = 1;
	} else if (ch == 'l') {
		if (parse_uint(v, WIRE_MAX_ITEMS, &e->limit) < 0 ||
		    e->limit == 0)
			return -fail("events: --limit: expected 1 to %d, got "
			             "'%s'",
			    WIRE_MAX_ITEMS, v);
	}
	return 0;
}

static json_t *
event_json(const Shoal__StoredEvent *se)
{
	const Shoal__Event *e = se->event;

	return json_pack("{s:s*,s:o,s:I,s:s,s:o,s:s,s:s,s:s}", "node",
	    se->node[0] ? se->node : NULL, "seq",
	    se->coordinator ? json_null() : json_integer((json_int_t)e->seq),
	    "gseq", (json_int_t)se->gseq, "source",
	    se->coordinator ? "coordinator" : "agent", "time",
	    time_json(e->time_ms), "kind", e->kind, "service", e->service,
	    "message", e->message);
}

static void
print_event_row(const Shoal__StoredEvent *se)
{
	const Shoal__Event *e = se->event;
	char t[RFC3339_LEN], seq[24];

	format_rfc3339(e->time_ms, t);
	if (se->coordinator)
		snprintf(seq, sizeof seq, "-");
	else
		snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
	printf("%-24s %-16s %6s %-22s %-12s %s\n", t,
	    se->node[0] ? se->node : "(coordinator)", seq, e->kind,
	    e->service[0] ? e->service : "-", e->message);
}

/*
 * call() for a command that follows the coordinator over time: when it
 * cannot be reached (restarted, say), say so once and try again every
 * second instead of giving up; it says when it is back.
 */
int
call_again(const ctl_t *c, Shoal__ControlRequest *req, Shoal__Envelope **ret)
{
	int r, lost = 0;

	while ((r = call(c, req, ret)) != 0) {
		/* A refusal is an answer: only an unreachable coordinator
		 * is waited for. */
		if (call_refused)
			break;
		if (!lost) {
			fprintf(stderr,
			    "shoalctl: waiting for the "
			    "coordinator at %s\n",
			    c->control);
			fail_quiet = lost = 1;
		}
		sleep(1);
	}
	fail_quiet = 0;
	if (lost && r == 0)
		fprintf(stderr, "shoalctl: the coordinator answers again\n");
	return r;
}

/* --follow: new events as they come, a JSON object per line with --json,
 * until interrupted. */
static int
follow_events(ctl_t *c, Shoal__ListEvents *le, uint64_t after)
{
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__Envelope *rep;
	int r;

	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_EVENTS;
	req.list_events = le;
	for (;;) {
		/* after 0 asks for the newest: none was there yet. */
		le->after = after;
		r = call_again(c, &req, &rep);
		if (r)
			return r;
		const Shoal__ControlReply *cr = rep->control_reply;

		for (size_t k = 0; k < cr->n_events; k++) {
			const Shoal__StoredEvent *se = cr->events[k];

			if (se->gseq <= after)
				continue;
			after = se->gseq;
			if (c->json) {
				print_json_line(event_json(se));
			} else {
				print_event_row(se);
			}
		}
		fflush(stdout);
		shoal__envelope__free_unpacked(rep, NULL);
		usleep(300000);
	}
}

static int
cmd_events(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl events [--node ID] [--service S] [--limit N] "
	    "[--follow] [--json]\n"
	    "The newest events (default 100), oldest first: what agents "
	    "reported and\nthe coordinator's rollout steps.\n"
	    "\n"
	    "  -n, --node ID       only this node's\n"
	    "  -s, --service S     only this service's\n"
	    "  -l, --limit N       at most N\n"
	    "  -f, --follow        then print new ones as they come, until "
	    "interrupted\n"
	    "                      (with --json: one JSON object per line); "
	    "a coordinator\n"
	    "                      restart is waited out\n";
	static const struct option extra[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "service", required_argument, NULL, 's' },
		{ "follow", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListEvents le = SHOAL__LIST_EVENTS__INIT;
	events_args_t ea = { .node = "", .service = "" };
	Shoal__Envelope *rep;
	uint64_t last = 0;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, events_flag, &ea);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("events: unexpected argument '%s'", argv[i]);
	le.node = (char *)ea.node;
	le.service = (char *)ea.service;
	le.limit = (uint32_t)ea.limit;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_EVENTS;
	req.list_events = &le;
	r = call(c, &req, &rep);
	if (r)
		return r;
	const Shoal__ControlReply *cr = rep->control_reply;

	if (cr->truncated)
		fprintf(stderr,
		    "shoalctl: only the newest %zu events fit in "
		    "one reply; ask for fewer with --limit\n",
		    cr->n_events);
	if (cr->n_events)
		last = cr->events[cr->n_events - 1]->gseq;
	if (c->json && ea.follow) {
		/* NDJSON: the newest first, then what follows. */
		for (size_t k = 0; k < cr->n_events; k++)
			print_json_line(event_json(cr->events[k]));
	} else if (c->json) {
		json_t *a = json_array();

		for (size_t k = 0; k < cr->n_events; k++)
			json_array_append_new(a, event_json(cr->events[k]));
		r = print_json(a);
	} else {
		printf("%-24s %-16s %6s %-22s %-12s %s\n", "TIME", "NODE",
		    "SEQ", "KIND", "SERVICE", "MESSAGE");
		for (size_t k = 0; k < cr->n_events; k++)
			print_event_row(cr->events[k]);
	}
	fflush(stdout);
	shoal__envelope__free_unpacked(rep, NULL);
	if (r || !ea.follow)
		return r;
	le.limit = 0;
	return follow_events(c, &le, last);
}

static int
cmd_node(ctl_t *c, int argc, char **argv)
{
	static const char help[] = "Usage: shoalctl node show ID [--json]\n";

	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return cmd_node_show(c, argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	fail("node: expected 'show ID'");
	fputs(help, stderr);
	return EXIT_USAGE;
}

static const struct command {
	const char *name;
	int (*run)(ctl_t *c, int argc, char **argv);
} commands[] = {
	{ "nodes", cmd_nodes },
	{ "node", cmd_node },
	{ "events", cmd_events },
	{ "apply", cmd_apply },
	{ "services", cmd_services },
	{ "status", cmd_status },
	{ "history", cmd_history },
	{ "delete", cmd_delete },
	{ "plan", cmd_plan },
	{ "rollout", cmd_rollout },
	{ "rollback", cmd_rollback },
	{ "top", cmd_top },
	{ "snapshot", cmd_snapshot },
	{ "backup", cmd_backup },
	{ "keys", cmd_keys },
};

const char *
operator_name(void)
{
	static char name[WIRE_MAX_STRING];
	const struct passwd *pw = getpwuid(geteuid());
	char host[128] = "";

	if (name[0])
		return name;
	gethostname(host, sizeof host - 1);
	if (pw)
		snprintf(name, sizeof name, "%s@%s", pw->pw_name, host);
	else
		snprintf(name, sizeof name, "uid %u@%s", (unsigned)geteuid(),
		    host);
	wire_clean_text(name, sizeof name - 1, 0);
	return name;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "key", required_argument, NULL, 'K' },
		{ "coordinator-key", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	ctl_t c = {
		.control = getenv("SHOAL_CONTROL"),
		.timeout_ms = 5000,
		.key_file = getenv("SHOAL_KEY"),
		.coordinator_key_file = getenv("SHOAL_COORDINATOR_KEY"),
	};
	int ch, r;

	if (!c.control || !*c.control)
		c.control = "ipc:///run/shoal/control.sock";
	/* '+': stop at the command; its flags are its own. */
	while ((ch = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
		switch (ch) {
		case 'C':
			c.control = optarg;
			break;
		case 'K':
			c.key_file = optarg;
			break;
		case 'P':
			c.coordinator_key_file = optarg;
			break;
		case 'T':
			if (parse_duration_ms(optarg, &c.timeout_ms) < 0 ||
			    c.timeout_ms == 0 || c.timeout_ms > 3600000) {
				fail("--timeout: expected a duration like 5s, "
				     "got '%s'",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("shoalctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	zsys_init();
	zsys_set_logstream(NULL);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			r = commands[i].run(&c, argc - optind, argv + optind);
			zsys_shutdown();
			return r;
		}
	}
	fail("unknown command '%s' (see shoalctl --help)", argv[optind]);
	return EXIT_USAGE;
}
