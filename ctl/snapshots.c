/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl's snapshot commands (snapshot create, list and restore: queued
 * as operations for the nodes, which carry them out when they next fetch
 * their desired state, at once when online) and backup create (a copy of
 * the coordinator's store, for `shoal-coordinator --restore`).
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/labels.h"
#include "common/util.h"
#include "common/wire.h"
#include "ctl/ctl.h"

#define WAIT_POLL_US 250000
#define WAIT_DEFAULT_MS (5 * 60 * 1000)

typedef struct snap_args {
	const char *node;
	labels_t selector;
	const char *message;
	int wait;
	uint64_t wait_ms;
	int bad;
} snap_args_t;

static int
snap_flag(int ch, const char *val, void *arg)
{
	snap_args_t *a = arg;

	switch (ch) {
	case 'n':
		if (!node_id_valid(val)) {
			fail("--node: '%s' is not a node id", val);
			return -1;
		}
		a->node = val;
		return 0;
	case 's': {
		char *copy = xstrdup(val), *save = NULL;

		for (char *kv = strtok_r(copy, ",", &save); kv;
		     kv = strtok_r(NULL, ",", &save))
			if (labels_parse(&a->selector, kv) < 0) {
				fail("--selector: '%s' is not KEY=VALUE", kv);
				free(copy);
				return -1;
			}
		free(copy);
		return 0;
	}
	case 'm':
		if (strlen(val) > WIRE_MAX_MESSAGE) {
			fail("--message: at most %d bytes", WIRE_MAX_MESSAGE);
			return -1;
		}
		a->message = val;
		return 0;
	case 'w':
		a->wait = 1;
		if (val &&
		    (parse_duration_ms(val, &a->wait_ms) < 0 ||
		        a->wait_ms == 0)) {
			fail("--wait: expected a duration like 2m, got '%s'",
			    val);
			return -1;
		}
		return 0;
	default:
		return -1;
	}
}

static json_t *
snapshot_json(const Shoal__NodeSnapshot *row)
{
	const Shoal__Snapshot *sn = row->snapshot;
	json_t *services = json_object(), *artifacts = json_array();

	for (size_t i = 0; i < sn->n_services; i++)
		json_object_set_new(services, sn->services[i]->service,
		    json_integer((json_int_t)sn->services[i]->revision));
	for (size_t i = 0; i < sn->n_artifacts; i++)
		json_array_append_new(artifacts, json_string(sn->artifacts[i]));
	return json_pack("{s:s,s:s,s:o,s:s,s:o,s:I,s:s,s:s*,s:s*,s:o,s:o}",
	    "id", sn->id, "node", row->node, "created",
	    time_json(sn->created_ms), "message", sn->message, "services",
	    services, "bytes", (json_int_t)sn->bytes, "state", row->state,
	    "reason", row->reason[0] ? row->reason : NULL, "sha256",
	    sn->sha256[0] ? sn->sha256 : NULL, "artifacts", artifacts,
	    "rollout",
	    sn->service[0] ? json_pack("{s:s,s:I}", "service", sn->service,
	                         "id", (json_int_t)sn->rollout)
	                   : json_null());
}

/* The node's snapshots and operations, once. */
static int
list_node(const ctl_t *c, const char *node, Shoal__Envelope **ret)
{
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListSnapshots ls = SHOAL__LIST_SNAPSHOTS__INIT;

	ls.node = (char *)(node ? node : "");
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_SNAPSHOTS;
	req.list_snapshots = &ls;
	return call(c, &req, ret);
}

/* Waits until every operation in ops (of the reply, borrowed) is done or
 * failed, saying each once; 1 when one failed or time ran out. */
static int
wait_ops(const ctl_t *c, const Shoal__ControlReply *queued, uint64_t wait_ms)
{
	size_t n = queued->n_operations, left = n;
	int *done = xcalloc(n + 1, sizeof *done), failed = 0;
	uint64_t deadline = mono_ms() + wait_ms;

	while (left > 0) {
		for (size_t i = 0; i < n; i++) {
			const Shoal__Operation *q = queued->operations[i];
			Shoal__Envelope *rep;
			const Shoal__ControlReply *cr;

			if (done[i] || list_node(c, q->node, &rep) != 0)
				continue;
			cr = rep->control_reply;
			for (size_t k = 0; k < cr->n_operations; k++) {
				const Shoal__Operation *op = cr->operations[k];

				if (strcmp(op->token, q->token) != 0 ||
				    op->state ==
				        SHOAL__OPERATION__STATE__PENDING)
					continue;
				done[i] = 1;
				left--;
				failed |= op->state ==
				    SHOAL__OPERATION__STATE__FAILED;
				if (!c->json)
					printf("%s: %s %s: %s\n", op->node,
					    op->kind ==
					            SHOAL__OPERATION__KIND__SNAPSHOT
					        ? "snapshot"
					        : "restore of",
					    op->snapshot,
					    op->state ==
					            SHOAL__OPERATION__STATE__DONE
					        ? op->result
					        : "FAILED");
				if (!c->json &&
				    op->state ==
				        SHOAL__OPERATION__STATE__FAILED)
					fail("%s: %s", op->node, op->result);
			}
			shoal__envelope__free_unpacked(rep, NULL);
		}
		if (left == 0)
			break;
		if (mono_ms() >= deadline) {
			fail("gave up waiting: %zu of %zu operations still "
			     "pending (an offline node gets its operation when "
			     "it returns)",
			    left, n);
			failed = 1;
			break;
		}
		usleep(WAIT_POLL_US);
	}
	free(done);
	return failed;
}

static int
snapshot_create(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl snapshot create [--node ID | --selector "
	    "K=V[,K=V]...]\n"
	    "                                [--message M] [--wait[=DURATION]] "
	    "[--json]\n"
	    "Snapshot what nodes run: the agent's state (a hot copy of its "
	    "LMDB), its\nconfig, its services' revisions and the artifacts "
	    "they pin. Without --node\nor --selector, every node. The "
	    "snapshot is queued for each node and taken\nwhen it next "
	    "fetches its desired state: at once when online, on its "
	    "return\nwhen offline.\n"
	    "\n"
	    "  -n, --node ID          one node\n"
	    "  -s, --selector LABELS  the nodes carrying all these labels\n"
	    "  -m, --message M        why: kept with the snapshot\n"
	    "  -w, --wait[=DURATION]  wait until taken (default at most 5m)\n";
	static const struct option extra[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "selector", required_argument, NULL, 's' },
		{ "message", required_argument, NULL, 'm' },
		{ "wait", optional_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__SnapshotCreate sc = SHOAL__SNAPSHOT_CREATE__INIT;
	snap_args_t a = { .message = "", .wait_ms = WAIT_DEFAULT_MS };
	Shoal__Label *labels = NULL, **lp = NULL;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	json_t *arr;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, snap_flag, &a);
	if (i < 0) {
		labels_clear(&a.selector);
		return i == -1 ? 0 : EXIT_USAGE;
	}
	if (i < argc || (a.node && a.selector.n)) {
		labels_clear(&a.selector);
		fail(i < argc ? "snapshot create: unexpected '%s'"
		              : "snapshot create: --node or --selector, not "
		                "both%s",
		    i < argc ? argv[i] : "");
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	labels = xcalloc(a.selector.n + 1, sizeof *labels);
	lp = xcalloc(a.selector.n + 1, sizeof *lp);
	for (size_t k = 0; k < a.selector.n; k++) {
		shoal__label__init(&labels[k]);
		labels[k].key = a.selector.v[k].key;
		labels[k].value = a.selector.v[k].value;
		lp[k] = &labels[k];
	}
	sc.node = (char *)(a.node ? a.node : "");
	sc.selector = lp;
	sc.n_selector = a.selector.n;
	sc.message = (char *)a.message;
	sc.requested_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_CREATE;
	req.snapshot_create = &sc;
	r = call(c, &req, &rep);
	free(lp);
	free(labels);
	labels_clear(&a.selector);
	if (r)
		return r;
	cr = rep->control_reply;
	if (!c->json)
		for (size_t k = 0; k < cr->n_operations; k++)
			printf("%s: snapshot %s queued\n",
			    cr->operations[k]->node,
			    cr->operations[k]->snapshot);
	if (a.wait)
		r = wait_ops(c, cr, a.wait_ms);
	if (c->json) {
		arr = json_array();
		for (size_t k = 0; k < cr->n_operations; k++)
			json_array_append_new(arr,
			    json_pack("{s:s,s:s,s:I}", "node",
			        cr->operations[k]->node, "id",
			        cr->operations[k]->snapshot, "operation",
			        (json_int_t)cr->operations[k]->id));
		r |= print_json(arr);
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

static int
snapshot_list(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl snapshot list [--node ID] [--json]\n"
	    "The nodes' snapshots as their agents last reported them, with "
	    "those still\npending (queued for a node that has not taken "
	    "them yet) or failed.\n"
	    "\n"
	    "  -n, --node ID   one node's\n";
	static const struct option extra[] = {
		{ "node", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	snap_args_t a = { .message = "" };
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, snap_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc) {
		fail("snapshot list: unexpected '%s'", argv[i]);
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	r = list_node(c, a.node, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json) {
		json_t *arr = json_array();

		for (size_t k = 0; k < cr->n_snapshots; k++)
			json_array_append_new(arr,
			    snapshot_json(cr->snapshots[k]));
		r = print_json(arr);
	} else if (!cr->n_snapshots) {
		printf("no snapshots\n");
	} else {
		printf("%-16s %-24s %-8s %-24s %9s  %s\n", "NODE", "ID",
		    "STATE", "CREATED", "SIZE", "SERVICES / MESSAGE");
		for (size_t k = 0; k < cr->n_snapshots; k++) {
			const Shoal__NodeSnapshot *row = cr->snapshots[k];
			const Shoal__Snapshot *sn = row->snapshot;
			char when[RFC3339_LEN] = "-", size[32] = "-",
			     what[512] = "";
			size_t used = 0;

			if (sn->created_ms)
				format_rfc3339(sn->created_ms, when);
			if (sn->bytes)
				format_bytes(sn->bytes, size, sizeof size);
			for (size_t s = 0; s < sn->n_services && used < 256;
			     s++)
				used += (size_t)snprintf(what + used,
				    sizeof what - used, "%s%s@%llu",
				    s ? "," : "", sn->services[s]->service,
				    (unsigned long long)sn->services[s]
				        ->revision);
			if (!used && !strcmp(row->state, "ready"))
				used = (size_t)snprintf(what, sizeof what,
				    "(no services)");
			snprintf(what + used, sizeof what - used, "%s%s",
			    used && (sn->message[0] || row->reason[0]) ? "  "
			                                               : "",
			    row->reason[0] ? row->reason : sn->message);
			printf("%-16s %-24s %-8s %-24s %9s  %s\n", row->node,
			    sn->id, row->state, when, size, what);
		}
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

static int
snapshot_restore(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl snapshot restore NODE SNAPSHOT "
	    "[--wait[=DURATION]] [--json]\n"
	    "Bring a node back to a snapshot: the agent checks the "
	    "snapshot's checksum,\nstops the services it does not have and "
	    "runs the revisions it records\n(artifacts fetched and verified "
	    "again if evicted). A corrupt snapshot is\nrefused and nothing "
	    "changes. The node keeps those revisions until the\nservices "
	    "roll out again.\n"
	    "\n"
	    "  -w, --wait[=DURATION]  wait for the agent's answer (default "
	    "at most 5m)\n";
	static const struct option extra[] = {
		{ "wait", optional_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__SnapshotRestore sr = SHOAL__SNAPSHOT_RESTORE__INIT;
	snap_args_t a = { .message = "", .wait_ms = WAIT_DEFAULT_MS };
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, snap_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (argc - i != 2) {
		fail("snapshot restore: expected NODE SNAPSHOT");
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	if (!node_id_valid(argv[i]))
		return usage_error("snapshot restore: '%s' is not a node id",
		    argv[i]);
	if (!snapshot_id_valid(argv[i + 1]))
		return usage_error(
		    "snapshot restore: '%s' is not a snapshot id", argv[i + 1]);
	sr.node = argv[i];
	sr.snapshot = argv[i + 1];
	sr.requested_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_RESTORE;
	req.snapshot_restore = &sr;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (!c->json)
		printf("%s: restore of snapshot %s queued\n", sr.node,
		    sr.snapshot);
	if (a.wait)
		r = wait_ops(c, cr, a.wait_ms);
	if (c->json && cr->n_operations)
		r |= print_json(json_pack("{s:s,s:s,s:I}", "node", sr.node,
		    "snapshot", sr.snapshot, "operation",
		    (json_int_t)cr->operations[0]->id));
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

int
cmd_snapshot(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl snapshot create|list|restore ...\n"
	    "  create [--node ID | --selector LABELS] [--message M] [--wait]\n"
	    "  list [--node ID] [--json]\n"
	    "  restore NODE SNAPSHOT [--wait]\n"
	    "See shoalctl snapshot COMMAND --help.\n";

	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return snapshot_create(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return snapshot_list(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "restore") == 0)
		return snapshot_restore(c, argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	fail("snapshot: expected create, list or restore");
	fputs(help, stderr);
	return EXIT_USAGE;
}

int
cmd_backup(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl backup create FILE [--json]\n"
	    "Have the coordinator write a consistent copy of its whole state "
	    "(registry,\nservices, revisions, rollouts, events, "
	    "operations) to FILE while it runs,\nwith FILE.sha256 beside it. "
	    "FILE is written by the coordinator, on its\nhost; a relative "
	    "path is taken from this directory. Bring it back with\n"
	    "shoal-coordinator --restore FILE.\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__Backup b = SHOAL__BACKUP__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	char path[PATH_MAX], cwd[PATH_MAX], size[32];
	ctl_t quick;
	int i, r;

	if (argc < 2 || strcmp(argv[1], "create") != 0) {
		if (argc >= 2 &&
		    (strcmp(argv[1], "--help") == 0 ||
		        strcmp(argv[1], "-h") == 0)) {
			fputs(help, stdout);
			return 0;
		}
		fail("backup: expected 'create FILE'");
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	i = parse_command_flags(argc - 1, argv + 1, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (argc - 1 - i != 1) {
		fail("backup create: expected FILE");
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	if (argv[1 + i][0] == '/')
		snprintf(path, sizeof path, "%s", argv[1 + i]);
	else if (!getcwd(cwd, sizeof cwd) ||
	    (size_t)snprintf(path, sizeof path, "%s/%s", cwd, argv[1 + i]) >=
	        sizeof path)
		return fail("backup create: cannot make %s absolute",
		    argv[1 + i]);
	b.path = path;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_BACKUP;
	req.backup = &b;
	/* A big store takes a while to copy. */
	quick = *c;
	if (quick.timeout_ms < 120000)
		quick.timeout_ms = 120000;
	r = call(&quick, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	format_bytes(cr->bytes, size, sizeof size);
	if (c->json)
		r = print_json(json_pack("{s:s,s:s+,s:I,s:s}", "file", path,
		    "checksum_file", path, ".sha256", "bytes",
		    (json_int_t)cr->bytes, "sha256", cr->sha256));
	else
		printf("backup written to %s (%s, sha256 %s; checksum in "
		       "%s.sha256)\n",
		    path, size, cr->sha256, path);
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}
