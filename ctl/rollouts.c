/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl's rollout commands: rollout status (once, or --watch: a live
 * view on a terminal, a line per change otherwise), rollout promote, pause,
 * resume and abort, rollback, and plan (what an apply would do, changing
 * nothing: the revision diff, the waves, what each node must pull).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"
#include "common/wire.h"
#include "ctl/ctl.h"

#define WATCH_POLL_US 500000

static const char *
rstate(const Shoal__Rollout *ro)
{
	return wire_rollout_state_name(ro->state);
}

/* "3.0 MiB/12.0 MiB" of artifacts a node has prepared; "-": none known. */
static void
prepared_text(const Shoal__RolloutNode *n, char *buf, size_t size)
{
	char a[32], b[32];

	if (!n->bytes_total) {
		snprintf(buf, size, "-");
		return;
	}
	format_bytes(n->bytes_done, a, sizeof a);
	format_bytes(n->bytes_total, b, sizeof b);
	snprintf(buf, size, "%s/%s", a, b);
}

static json_t *
rollout_node_json(const Shoal__Rollout *ro, const Shoal__RolloutNode *n)
{
	return json_pack("{s:s,s:i,s:b,s:I,s:s,s:s,s:s*,s:o,s:I,s:I,s:s*}",
	    "node", n->node, "wave", (int)n->wave + 1, "canary",
	    ro->canaries && n->wave == 0 &&
	        ro->update->strategy == SHOAL__UPDATE_STRATEGY__KIND__CANARY,
	    "from_revision", (json_int_t)n->from_revision, "state",
	    wire_rollout_node_state_name(n->state), "agent_state",
	    wire_service_state_name(n->agent_state), "reason",
	    n->reason[0] ? n->reason : NULL, "since", time_json(n->since_ms),
	    "bytes_done", (json_int_t)n->bytes_done, "bytes_total",
	    (json_int_t)n->bytes_total, "snapshot",
	    n->snapshot[0] ? n->snapshot : NULL);
}

json_t *
rollout_json(const Shoal__Rollout *ro)
{
	json_t *nodes = json_array();

	for (size_t i = 0; i < ro->n_nodes; i++)
		json_array_append_new(nodes,
		    rollout_node_json(ro, ro->nodes[i]));
	return json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:b,s:b,s:b,s:i,s:i,s:i,"
	                 "s:i,s:i,s:s*,s:s,s:s,s:o,s:o,s:o,s:o,s:o}",
	    "service", ro->service, "id", (json_int_t)ro->id, "from_revision",
	    (json_int_t)ro->from_revision, "to_revision",
	    (json_int_t)ro->to_revision, "strategy",
	    wire_strategy_name(ro->update->strategy), "state", rstate(ro),
	    "paused", ro->paused, "promoted", ro->promoted, "rollback",
	    ro->rollback, "wave", (int)ro->wave + 1, "waves", (int)ro->waves,
	    "canaries", (int)ro->canaries, "failures", (int)ro->failures,
	    "max_failures", (int)ro->update->max_failures, "reason",
	    ro->reason[0] ? ro->reason : NULL, "started_by", ro->started_by,
	    "message", ro->message, "started", time_json(ro->started_ms),
	    "updated", time_json(ro->updated_ms), "finished",
	    time_json(ro->finished_ms), "prestaged",
	    time_json(ro->prestaged_ms), "nodes", nodes);
}

/* "rolling, max_parallel 2" */
static void
strategy_text(const Shoal__UpdateStrategy *u, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s, max_parallel %u%s",
	    wire_strategy_name(u->strategy), u->max_parallel,
	    u->max_parallel_percent ? "%" : "");

	if (u->strategy == SHOAL__UPDATE_STRATEGY__KIND__CANARY && n > 0 &&
	    (size_t)n < size)
		snprintf(buf + n, size - n, ", canary %u%s%s", u->canary,
		    u->canary_percent ? "%" : "",
		    u->auto_promote ? ", auto_promote" : "");
}

static void
print_rollout(const Shoal__Rollout *ro)
{
	char how[128], t[RFC3339_LEN];
	uint32_t done = 0;

	for (size_t i = 0; i < ro->n_nodes; i++)
		done += ro->nodes[i]->state == SHOAL__ROLLOUT_NODE__STATE__DONE;
	strategy_text(ro->update, how, sizeof how);
	printf("service %s: rollout %llu%s, revision %llu -> %llu (%s)\n",
	    ro->service, (unsigned long long)ro->id,
	    ro->rollback ? " (rollback)" : "",
	    (unsigned long long)ro->from_revision,
	    (unsigned long long)ro->to_revision, how);
	printf("state %s%s, wave %u of %u, %u of %zu nodes done, %u failed "
	       "(max_failures %u)\n",
	    rstate(ro), ro->paused ? " (paused)" : "", ro->wave + 1, ro->waves,
	    done, ro->n_nodes, ro->failures, ro->update->max_failures);
	format_rfc3339(ro->started_ms, t);
	printf("started %s%s%s%s%s%s\n", t, ro->started_by[0] ? " by " : "",
	    ro->started_by, ro->message[0] ? ": \"" : "", ro->message,
	    ro->message[0] ? "\"" : "");
	if (ro->reason[0])
		printf("reason: %s\n", ro->reason);
	if (ro->state == SHOAL__ROLLOUT__STATE__RUNNING && !ro->prestaged_ms)
		printf("prestaging: every node prepares revision %llu "
		       "(artifacts, image) before the first switches\n",
		    (unsigned long long)ro->to_revision);
	printf("%-5s %-24s %5s %-10s %-10s %-8s %-21s %s\n", "WAVE", "NODE",
	    "FROM", "STATE", "AGENT", "SINCE", "PREPARED", "REASON");
	for (size_t i = 0; i < ro->n_nodes; i++) {
		const Shoal__RolloutNode *n = ro->nodes[i];
		char when[32], wave[16], prep[64];

		ago(n->since_ms, when, sizeof when);
		snprintf(wave, sizeof wave, "%u%s", n->wave + 1,
		    ro->canaries && n->wave == 0 ? "c" : "");
		prepared_text(n, prep, sizeof prep);
		printf("%-5s %-24s %5llu %-10s %-10s %-8s %-21s %s\n", wave,
		    n->node, (unsigned long long)n->from_revision,
		    wire_rollout_node_state_name(n->state),
		    wire_service_state_name(n->agent_state), when, prep,
		    n->reason);
	}
}

/* A one-line progress bar of nodes done, for the live view. */
static void
print_bar(const Shoal__Rollout *ro)
{
	size_t done = 0, width = 40, fill;

	for (size_t i = 0; i < ro->n_nodes; i++) {
		Shoal__RolloutNode__State st = ro->nodes[i]->state;

		done += st == SHOAL__ROLLOUT_NODE__STATE__DONE ||
		    st == SHOAL__ROLLOUT_NODE__STATE__FAILED ||
		    st == SHOAL__ROLLOUT_NODE__STATE__REVERTED;
	}
	fill = ro->n_nodes ? done * width / ro->n_nodes : width;
	printf("[");
	for (size_t i = 0; i < width; i++)
		putchar(i < fill ? '#' : '.');
	printf("] %zu/%zu\n\n", done, ro->n_nodes);
}

/* The service's newest rollout; again: wait out a coordinator restart. */
static int
get_rollout(const ctl_t *c, const char *name, int again, Shoal__Envelope **ret)
{
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__GetRollout gr = SHOAL__GET_ROLLOUT__INIT;

	gr.service = (char *)name;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_ROLLOUT;
	req.get_rollout = &gr;
	return again ? call_again(c, &req, ret) : call(c, &req, ret);
}

int
print_json_line(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(j);
	if (!s)
		return fail("cannot format JSON");
	puts(s);
	free(s);
	fflush(stdout);
	return 0;
}

/* Lines for what changed between two views of one rollout. */
static void
print_changes(const Shoal__Rollout *was, const Shoal__Rollout *now)
{
	char t[RFC3339_LEN];

	format_rfc3339(now_ms(), t);
	if (!was || was->id != now->id) {
		printf("%s rollout %llu of %s: revision %llu -> %llu, %s, %u "
		       "wave%s\n",
		    t, (unsigned long long)now->id, now->service,
		    (unsigned long long)now->from_revision,
		    (unsigned long long)now->to_revision, rstate(now),
		    now->waves, now->waves == 1 ? "" : "s");
		was = NULL;
	}
	for (size_t i = 0; i < now->n_nodes; i++) {
		const Shoal__RolloutNode *n = now->nodes[i];
		const Shoal__RolloutNode *o = was && i < was->n_nodes &&
		        strcmp(was->nodes[i]->node, n->node) == 0
		    ? was->nodes[i]
		    : NULL;

		if (o && o->state == n->state &&
		    o->agent_state == n->agent_state &&
		    o->bytes_done == n->bytes_done)
			continue;
		if (!o && n->state == SHOAL__ROLLOUT_NODE__STATE__PENDING)
			continue;
		if (n->state == SHOAL__ROLLOUT_NODE__STATE__PRESTAGING) {
			char prep[64];

			prepared_text(n, prep, sizeof prep);
			printf("%s   wave %u %s: prestaging, %s of artifacts\n",
			    t, n->wave + 1, n->node, prep);
			continue;
		}
		printf("%s   wave %u %s: %s (agent: %s)%s%s\n", t, n->wave + 1,
		    n->node, wire_rollout_node_state_name(n->state),
		    wire_service_state_name(n->agent_state),
		    n->reason[0] ? ": " : "", n->reason);
	}
	if (was &&
	    (was->state != now->state || was->paused != now->paused ||
	        was->wave != now->wave))
		printf("%s rollout %llu: %s%s, wave %u of %u%s%s\n", t,
		    (unsigned long long)now->id, rstate(now),
		    now->paused ? " (paused)" : "", now->wave + 1, now->waves,
		    now->reason[0] ? ": " : "", now->reason);
	fflush(stdout);
}

static int
watch(const ctl_t *c, const char *name)
{
	int tty = isatty(STDOUT_FILENO) && !c->json;
	Shoal__Envelope *prev = NULL, *rep;
	int r = 0, active = 1;

	while (active) {
		const Shoal__Rollout *ro, *was;

		/* The first call says at once if nobody answers. */
		r = get_rollout(c, name, prev != NULL, &rep);
		if (r)
			break;
		if (rep->control_reply->n_rollouts == 0) {
			shoal__envelope__free_unpacked(rep, NULL);
			printf("service %s: no rollout\n", name);
			break;
		}
		ro = rep->control_reply->rollouts[0];
		was = prev ? prev->control_reply->rollouts[0] : NULL;
		active = ro->state == SHOAL__ROLLOUT__STATE__RUNNING ||
		    ro->state == SHOAL__ROLLOUT__STATE__WAITING_PROMOTE ||
		    ro->state == SHOAL__ROLLOUT__STATE__REVERTING;
		if (c->json) {
			/* A rollout that moved has a new updated time. */
			if (!was || was->id != ro->id ||
			    was->updated_ms != ro->updated_ms)
				print_json_line(rollout_json(ro));
		} else if (tty) {
			printf("\033[H\033[J");
			print_bar(ro);
			print_rollout(ro);
			fflush(stdout);
		} else {
			print_changes(was, ro);
		}
		if (!active)
			r = ro->state == SHOAL__ROLLOUT__STATE__SUCCEEDED ? 0
			                                                  : 1;
		if (prev)
			shoal__envelope__free_unpacked(prev, NULL);
		prev = rep;
		if (active)
			usleep(WATCH_POLL_US);
	}
	if (prev)
		shoal__envelope__free_unpacked(prev, NULL);
	return r;
}

typedef struct name_args {
	const char *file;
	const char *message;
	uint64_t to;
	int watch;
} name_args_t;

static int
rollout_flag(int ch, const char *v, void *arg)
{
	name_args_t *a = arg;

	if (ch == 'w')
		a->watch = 1;
	else if (ch == 'm')
		a->message = v;
	else if (ch == 'f')
		a->file = v;
	else if (ch == 't' &&
	    (parse_uint(v, UINT64_MAX / 2, &a->to) < 0 || a->to == 0))
		return -fail("rollback: --to: expected a revision number, got "
		             "'%s'",
		    v);
	return 0;
}

static int
rollout_status(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl rollout status SERVICE [--watch] [--json]\n"
	    "The service's newest rollout: its revisions and strategy, the "
	    "wave in\nprogress, each node's state and the reason of every "
	    "failed node.\n"
	    "\n"
	    "  -w, --watch   follow it until it ends: a live view on a "
	    "terminal, a\n"
	    "                line per change otherwise (one JSON object per "
	    "line\n"
	    "                with --json); exits 0 when it succeeded, 1 "
	    "otherwise\n"
	    "      --json    the rollout as one JSON object on one line\n";
	static const struct option extra[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	name_args_t a = { 0 };
	Shoal__Envelope *rep;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, rollout_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	if (a.watch)
		return watch(c, name);
	r = get_rollout(c, name, 0, &rep);
	if (r)
		return r;
	if (rep->control_reply->n_rollouts == 0) {
		if (c->json)
			r = print_json_line(json_null());
		else
			printf("service %s: no rollout yet (revision %llu was "
			       "its first)\n",
			    name,
			    (unsigned long long)rep->control_reply->target);
	} else if (c->json) {
		r = print_json_line(
		    rollout_json(rep->control_reply->rollouts[0]));
	} else {
		print_rollout(rep->control_reply->rollouts[0]);
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

static int
rollout_action(ctl_t *c, int argc, char **argv,
    Shoal__RolloutControl__Action action)
{
	static const char help[] =
	    "Usage: shoalctl rollout promote|pause|resume|abort SERVICE "
	    "[--json]\n"
	    "  promote  the canaries are good: go on with the other waves\n"
	    "  pause    start no further node (those started go on)\n"
	    "  resume   go on after a pause\n"
	    "  abort    stop, and move the nodes already switched back, wave "
	    "by wave\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__RolloutControl rc = SHOAL__ROLLOUT_CONTROL__INIT;
	Shoal__Envelope *rep;
	const Shoal__Rollout *ro;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	rc.service = (char *)name;
	rc.action = action;
	rc.started_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_ROLLOUT_CONTROL;
	req.rollout_control = &rc;
	r = call(c, &req, &rep);
	if (r)
		return r;
	ro = rep->control_reply->n_rollouts ? rep->control_reply->rollouts[0]
	                                    : NULL;
	if (c->json)
		r = print_json_line(ro ? rollout_json(ro) : json_null());
	else if (ro)
		printf("%s: rollout %llu %s%s\n", name,
		    (unsigned long long)ro->id, rstate(ro),
		    ro->paused ? " (paused)" : "");
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

int
cmd_rollout(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl rollout status SERVICE [--watch] [--json]\n"
	    "       shoalctl rollout promote|pause|resume|abort SERVICE\n"
	    "Follow and steer a service's rollout (COMMAND --help for "
	    "each).\n";
	static const struct {
		const char *name;
		Shoal__RolloutControl__Action action;
	} actions[] = {
		{ "promote", SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE },
		{ "pause", SHOAL__ROLLOUT_CONTROL__ACTION__PAUSE },
		{ "resume", SHOAL__ROLLOUT_CONTROL__ACTION__RESUME },
		{ "abort", SHOAL__ROLLOUT_CONTROL__ACTION__ABORT },
	};

	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return rollout_status(c, argc - 1, argv + 1);
	for (size_t i = 0; argc >= 2 && i < ARRAY_SIZE(actions); i++)
		if (strcmp(argv[1], actions[i].name) == 0)
			return rollout_action(c, argc - 1, argv + 1,
			    actions[i].action);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	if (argc >= 2)
		fail("rollout: unknown command '%s'", argv[1]);
	else
		fail("rollout: which command?");
	fputs(help, stderr);
	return EXIT_USAGE;
}

/* What apply and rollback say about the rollout they started. */
void
print_started(const ctl_t *c, const Shoal__ControlReply *cr, const char *name)
{
	const Shoal__Rollout *ro = cr->n_rollouts ? cr->rollouts[0] : NULL;
	char how[128];

	if (c->json || !ro)
		return;
	strategy_text(ro->update, how, sizeof how);
	printf("%s: rollout %llu from revision %llu to %llu started (%s): %zu "
	       "node%s in %u wave%s; follow it with 'shoalctl rollout status "
	       "%s --watch'\n",
	    name, (unsigned long long)ro->id,
	    (unsigned long long)ro->from_revision,
	    (unsigned long long)ro->to_revision, how, ro->n_nodes,
	    ro->n_nodes == 1 ? "" : "s", ro->waves, ro->waves == 1 ? "" : "s",
	    name);
}

int
cmd_rollback(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl rollback SERVICE [--to REV] [--message M] "
	    "[--json]\n"
	    "Roll the service back to an older revision (default: the one "
	    "before the\ncurrent) as an ordinary rollout under that "
	    "revision's strategy. A node that\nstill keeps that revision's "
	    "container (the one it ran just before) starts it\nagain: no "
	    "pull, no new container.\n"
	    "\n"
	    "  -t, --to REV        the revision to go back to\n"
	    "  -m, --message M     why: kept in the audit log\n";
	static const struct option extra[] = {
		{ "to", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__Rollback rb = SHOAL__ROLLBACK__INIT;
	name_args_t a = { .message = "" };
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, rollout_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	if (strlen(a.message) > WIRE_MAX_MESSAGE)
		return usage_error("rollback: --message: at most %d bytes",
		    WIRE_MAX_MESSAGE);
	rb.service = (char *)name;
	rb.to_revision = a.to;
	rb.message = (char *)a.message;
	rb.started_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_ROLLBACK;
	req.rollback = &rb;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json)
		r = print_json(json_pack("{s:s,s:I,s:o}", "service", name,
		    "revision", (json_int_t)cr->revision, "rollout",
		    cr->n_rollouts ? rollout_json(cr->rollouts[0])
		                   : json_null()));
	else if (!cr->n_rollouts)
		printf("%s: back to revision %llu (no node to move)\n", name,
		    (unsigned long long)cr->revision);
	else
		print_started(c, cr, name);
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

/* -- plan: the revision diff ------------------------------------------- */

typedef struct flat {
	char **k, **v;
	size_t n;
} flat_t;

static void
flat_add(flat_t *f, const char *k, const char *v)
{
	f->k = xrealloc(f->k, (f->n + 1) * sizeof *f->k);
	f->v = xrealloc(f->v, (f->n + 1) * sizeof *f->v);
	f->k[f->n] = xstrdup(k);
	f->v[f->n++] = xstrdup(v);
}

static void
flat_free(flat_t *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->k[i]);
		free(f->v[i]);
	}
	free(f->k);
	free(f->v);
}

static void flatten(flat_t *f, const char *prefix, const ProtobufCMessage *m);

/* One value of field fd at p, as text (a message is flattened below). */
static void
flatten_value(flat_t *f, const char *key, const ProtobufCFieldDescriptor *fd,
    const void *p)
{
	char buf[64];

	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING:
		flat_add(f, key, *(char *const *)p);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		flat_add(f, key,
		    *(const protobuf_c_boolean *)p ? "true" : "false");
		return;
	case PROTOBUF_C_TYPE_UINT32:
		snprintf(buf, sizeof buf, "%u", *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
		snprintf(buf, sizeof buf, "%llu",
		    (unsigned long long)*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		snprintf(buf, sizeof buf, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(fd->descriptor,
		        *(const int *)p);

		snprintf(buf, sizeof buf, "%s", ev ? ev->name : "?");
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)p)
			flatten(f, key, *(ProtobufCMessage *const *)p);
		return;
	default:
		snprintf(buf, sizeof buf, "(binary)");
		break;
	}
	flat_add(f, key, buf);
}

static size_t
type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* Every scalar of m as "path = value", in field order (lists by index,
 * env and selector by name). */
static void
flatten(flat_t *f, const char *prefix, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m + fd->offset;
		char key[256];

		snprintf(key, sizeof key, "%s%s%s", prefix,
		    prefix[0] ? "." : "", fd->name);
		if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
			flatten_value(f, key, fd, base);
			continue;
		}
		size_t n =
		    *(const size_t *)((const char *)m + fd->quantifier_offset);
		const char *arr = *(char *const *)base;

		for (size_t k = 0; k < n; k++) {
			const void *p = arr + k * type_size(fd->type);
			char sub[300];

			/* Labels and env vars by name: a reordered list is
			 * not a change worth showing as one per line. */
			if (fd->type == PROTOBUF_C_TYPE_MESSAGE &&
			    (strcmp(fd->name, "env") == 0 ||
			        strcmp(fd->name, "selector") == 0)) {
				const ProtobufCMessage *item =
				    *(ProtobufCMessage *const *)p;
				const char *const *kv =
				    (const char *const *)((const char *)item +
				        item->descriptor->fields[0].offset);
				const char *const *vv =
				    (const char *const *)((const char *)item +
				        item->descriptor->fields[1].offset);

				snprintf(sub, sizeof sub, "%s.%s", key, *kv);
				flat_add(f, sub, *vv);
				continue;
			}
			snprintf(sub, sizeof sub, "%s[%zu]", key, k);
			flatten_value(f, sub, fd, p);
		}
	}
}

static const char *
flat_get(const flat_t *f, const char *k)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->k[i], k) == 0)
			return f->v[i];
	return NULL;
}

/* The fields that differ between old (may be NULL) and new specs. */
static json_t *
spec_diff(const Shoal__ServiceSpec *old, const Shoal__ServiceSpec *new)
{
	flat_t a = { 0 }, b = { 0 };
	json_t *changes = json_array();

	if (old)
		flatten(&a, "", &old->base);
	flatten(&b, "", &new->base);
	for (size_t i = 0; i < b.n; i++) {
		const char *was = flat_get(&a, b.k[i]);

		if (!was || strcmp(was, b.v[i]) != 0)
			json_array_append_new(changes,
			    json_pack("{s:s,s:s*,s:s}", "field", b.k[i], "from",
			        was, "to", b.v[i]));
	}
	for (size_t i = 0; i < a.n; i++)
		if (!flat_get(&b, a.k[i]))
			json_array_append_new(changes,
			    json_pack("{s:s,s:s,s:n}", "field", a.k[i], "from",
			        a.v[i], "to"));
	flat_free(&a);
	flat_free(&b);
	return changes;
}

int
cmd_plan(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl plan -f SPEC [--json]\n"
	    "What 'shoalctl apply -f SPEC' would do, changing nothing: the "
	    "revision it\nwould make and how it differs from the current "
	    "one, the nodes of each\nwave of the rollout, and the image each "
	    "node must pull.\n"
	    "\n"
	    "  -f, --file SPEC     the spec (YAML)\n";
	static const struct option extra[] = {
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__Plan pl = SHOAL__PLAN__INIT;
	name_args_t a = { 0 };
	Shoal__ServiceSpec *spec = NULL;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const Shoal__Rollout *ro;
	json_t *changes, *waves;
	char err[1024], how[128];
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, rollout_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("plan: unexpected argument '%s'", argv[i]);
	if (!a.file)
		return usage_error("plan: which spec? give -f SPEC");
	r = spec_load(a.file, &spec, err, sizeof err);
	if (r < 0)
		return fail("%s", err);
	pl.spec = spec;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_PLAN;
	req.plan = &pl;
	r = call(c, &req, &rep);
	if (r) {
		spec_free(spec);
		return r;
	}
	cr = rep->control_reply;
	ro = cr->n_rollouts ? cr->rollouts[0] : NULL;
	changes = cr->changed
	    ? spec_diff(cr->n_revisions ? cr->revisions[0]->spec : NULL, spec)
	    : json_array();
	waves = json_array();
	for (size_t k = 0; k < cr->n_plan; k++) {
		const Shoal__PlanNode *pn = cr->plan[k];

		while (json_array_size(waves) <= pn->wave)
			json_array_append_new(waves, json_array());
		json_array_append_new(json_array_get(waves, pn->wave),
		    json_pack("{s:s,s:I,s:s*,s:b}", "node", pn->node,
		        "from_revision", (json_int_t)pn->from_revision, "pull",
		        pn->pull[0] ? pn->pull : NULL, "canary", pn->canary));
	}
	if (c->json) {
		r = print_json(json_pack("{s:s,s:b,s:I,s:o,s:s,s:o,s:o}",
		    "service", spec->service, "changed", cr->changed,
		    "revision", (json_int_t)cr->revision, "current",
		    cr->target ? json_integer((json_int_t)cr->target)
		               : json_null(),
		    "strategy", wire_strategy_name(spec->update->strategy),
		    "changes", changes, "waves", waves));
	} else if (!cr->changed) {
		printf("%s: unchanged, still revision %llu: apply would do "
		       "nothing\n",
		    spec->service, (unsigned long long)cr->target);
		json_decref(changes);
		json_decref(waves);
	} else {
		size_t idx;
		json_t *ch;

		strategy_text(spec->update, how, sizeof how);
		if (cr->target)
			printf("%s: revision %llu would replace revision %llu "
			       "(%s)\n",
			    spec->service, (unsigned long long)cr->revision,
			    (unsigned long long)cr->target, how);
		else
			printf("%s: new service, revision %llu\n",
			    spec->service, (unsigned long long)cr->revision);
		printf("changes:\n");
		json_array_foreach(changes, idx, ch)
		{
			const char *from =
			    json_string_value(json_object_get(ch, "from"));
			const char *to =
			    json_string_value(json_object_get(ch, "to"));

			printf("  %-32s %s -> %s\n",
			    json_string_value(json_object_get(ch, "field")),
			    from ? from : "(none)", to ? to : "(none)");
		}
		printf("%-5s %-24s %5s %s\n", "WAVE", "NODE", "FROM", "PULL");
		for (size_t k = 0; k < cr->n_plan; k++) {
			const Shoal__PlanNode *pn = cr->plan[k];
			char from[24] = "new";

			if (pn->from_revision)
				snprintf(from, sizeof from, "%llu",
				    (unsigned long long)pn->from_revision);
			printf("%-5u %-24s %5s %s%s\n", pn->wave + 1, pn->node,
			    from, pn->pull[0] ? pn->pull : "-",
			    pn->canary ? " (canary)" : "");
		}
		if (ro && !cr->n_plan)
			printf("(no node selected)\n");
		json_decref(changes);
		json_decref(waves);
	}
	shoal__envelope__free_unpacked(rep, NULL);
	spec_free(spec);
	return r;
}
