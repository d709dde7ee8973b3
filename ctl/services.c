/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl's service commands: apply, services, status, history, delete.
 * A spec is parsed and checked here, before anything is sent, so a broken
 * file is refused with its line and field and the coordinator never sees
 * it; the coordinator checks what it receives again all the same.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"
#include "common/wire.h"
#include "ctl/ctl.h"

int
service_operand(int argc, char **argv, int i, const char *help,
    const char **ret)
{
	if (argc - i != 1) {
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	if (!service_name_valid(argv[i]))
		return usage_error("%s: '%s' is not a service name ([a-z0-9-], "
		                   "at most %d characters)",
		    argv[0], argv[i], SERVICE_NAME_MAX);
	*ret = argv[i];
	return 0;
}

typedef struct apply_args {
	const char *file;
	const char *message;
} apply_args_t;

static int
apply_flag(int ch, const char *v, void *arg)
{
	apply_args_t *a = arg;

	if (ch == 'f')
		a->file = v;
	else if (ch == 'm')
		a->message = v;
	return 0;
}

int
cmd_apply(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl apply -f SPEC [--message M] [--json]\n"
	    "Store the service spec in SPEC as the service's next revision "
	    "and roll it\nout to the nodes its selector picks, under the "
	    "spec's update strategy\n(nodes new to the service get it at "
	    "once). Applying an unchanged spec\nchanges nothing. A broken "
	    "spec is refused with its file, line and field.\n"
	    "\n"
	    "  -f, --file SPEC     the spec (YAML)\n"
	    "  -m, --message M     why: kept in the service's history\n";
	static const struct option extra[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "message", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__Apply ap = SHOAL__APPLY__INIT;
	apply_args_t a = { .message = "" };
	Shoal__ServiceSpec *spec = NULL;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	char err[1024];
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, apply_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("apply: unexpected argument '%s'", argv[i]);
	if (!a.file)
		return usage_error("apply: which spec? give -f SPEC");
	if (strlen(a.message) > WIRE_MAX_MESSAGE)
		return usage_error("apply: --message: at most %d bytes",
		    WIRE_MAX_MESSAGE);
	r = spec_load(a.file, &spec, err, sizeof err);
	if (r < 0)
		return fail("%s", err);
	ap.spec = spec;
	ap.message = (char *)a.message;
	ap.started_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_APPLY;
	req.apply = &ap;
	r = call(c, &req, &rep);
	if (r) {
		spec_free(spec);
		return r;
	}
	cr = rep->control_reply;
	if (c->json) {
		r = print_json(
		    json_pack("{s:s,s:I,s:b,s:i,s:o}", "service", spec->service,
		        "revision", (json_int_t)cr->revision, "changed",
		        cr->changed, "nodes", (int)cr->selected, "rollout",
		        cr->n_rollouts ? rollout_json(cr->rollouts[0])
		                       : json_null()));
	} else if (cr->changed) {
		printf("%s: revision %llu applied; %u node%s selected\n",
		    spec->service, (unsigned long long)cr->revision,
		    cr->selected, cr->selected == 1 ? "" : "s");
		print_started(c, cr, spec->service);
	} else {
		printf("%s: unchanged, still revision %llu (%u node%s "
		       "selected)\n",
		    spec->service, (unsigned long long)cr->revision,
		    cr->selected, cr->selected == 1 ? "" : "s");
	}
	shoal__envelope__free_unpacked(rep, NULL);
	spec_free(spec);
	return r;
}

int
cmd_services(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl services [--json]\n"
	    "List the services: current revision, image, nodes selected and "
	    "how many\nof them are healthy on the current revision.\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListServices ls = SHOAL__LIST_SERVICES__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i < argc)
		return usage_error("services: unexpected argument '%s'",
		    argv[i]);
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_SERVICES;
	req.list_services = &ls;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json) {
		json_t *a = json_array();

		for (size_t k = 0; k < cr->n_services; k++) {
			const Shoal__ServiceInfo *s = cr->services[k];

			json_array_append_new(a,
			    json_pack("{s:s,s:I,s:s,s:i,s:i,s:o}", "service",
			        s->service, "revision", (json_int_t)s->revision,
			        "image", s->image, "nodes", (int)s->nodes,
			        "healthy", (int)s->healthy, "updated",
			        time_json(s->updated_ms)));
		}
		r = print_json(a);
	} else {
		printf("%-24s %8s %-6s %-8s %-10s %s\n", "SERVICE", "REVISION",
		    "NODES", "HEALTHY", "UPDATED", "IMAGE");
		for (size_t k = 0; k < cr->n_services; k++) {
			const Shoal__ServiceInfo *s = cr->services[k];
			char when[32];

			ago(s->updated_ms, when, sizeof when);
			printf("%-24s %8llu %-6u %-8u %-10s %s\n", s->service,
			    (unsigned long long)s->revision, s->nodes,
			    s->healthy, when, s->image);
		}
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

static json_t *
status_json(const Shoal__NodeServiceStatus *row)
{
	const Shoal__ServiceStatus *st = row->status;
	const Shoal__Prestage *p = st->prestage;
	json_t *pre = p ? json_pack("{s:I,s:s,s:I,s:I,s:s*}", "revision",
	                      (json_int_t)p->revision, "state",
	                      wire_prestage_state_name(p->state), "bytes_done",
	                      (json_int_t)p->bytes_done, "bytes_total",
	                      (json_int_t)p->bytes_total, "reason",
	                      p->reason[0] ? p->reason : NULL)
	                : json_null();

	return json_pack("{s:s,s:I,s:s,s:s*,s:s*,s:s*,s:I,s:i,s:o,s:I,s:I,s:o}",
	    "node", row->node, "revision", (json_int_t)st->revision, "state",
	    wire_service_state_name(st->state), "container",
	    st->container[0] ? st->container : NULL, "endpoint",
	    st->endpoint[0] ? st->endpoint : NULL, "reason",
	    st->reason[0] ? st->reason : NULL, "serving_revision",
	    (json_int_t)st->serving_revision, "restarts", (int)st->restarts,
	    "since", time_json(st->since_ms), "bytes_done",
	    (json_int_t)st->bytes_done, "bytes_total",
	    (json_int_t)st->bytes_total, "prestage", pre);
}

int
cmd_status(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl status SERVICE [--json]\n"
	    "The service on each node its selector picks: the revision, "
	    "the state\n(pending, preparing, starting, staged, healthy, "
	    "unhealthy, failed), the\ncontainer, the endpoint of the model "
	    "API and the reason of a failure.\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__GetStatus gs = SHOAL__GET_STATUS__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	gs.service = (char *)name;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_STATUS;
	req.get_status = &gs;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json) {
		json_t *nodes = json_array();

		for (size_t k = 0; k < cr->n_statuses; k++)
			json_array_append_new(nodes,
			    status_json(cr->statuses[k]));
		r = print_json(json_pack("{s:s,s:I,s:o}", "service", name,
		    "revision", (json_int_t)cr->revision, "nodes", nodes));
	} else {
		printf("service %s, revision %llu\n", name,
		    (unsigned long long)cr->revision);
		printf("%-24s %8s %-10s %-14s %-21s %s\n", "NODE", "REVISION",
		    "STATE", "CONTAINER", "ENDPOINT", "REASON");
		for (size_t k = 0; k < cr->n_statuses; k++) {
			const Shoal__ServiceStatus *st =
			    cr->statuses[k]->status;

			char why[600], a[32], b[32];

			snprintf(why, sizeof why, "%s", st->reason);
			if (!why[0] &&
			    st->state ==
			        SHOAL__SERVICE_STATUS__STATE__PREPARING &&
			    st->bytes_total) {
				format_bytes(st->bytes_done, a, sizeof a);
				format_bytes(st->bytes_total, b, sizeof b);
				snprintf(why, sizeof why, "artifacts %s of %s",
				    a, b);
			} else if (!why[0] && st->prestage) {
				format_bytes(st->prestage->bytes_done, a,
				    sizeof a);
				format_bytes(st->prestage->bytes_total, b,
				    sizeof b);
				snprintf(why, sizeof why,
				    "revision %llu prestage %s: %s of %s%s%s",
				    (unsigned long long)st->prestage->revision,
				    wire_prestage_state_name(
				        st->prestage->state),
				    a, b, st->prestage->reason[0] ? ": " : "",
				    st->prestage->reason);
			}
			printf("%-24s %8llu %-10s %-14.12s %-21s %s\n",
			    cr->statuses[k]->node,
			    (unsigned long long)st->revision,
			    wire_service_state_name(st->state),
			    st->container[0] ? st->container : "-",
			    st->endpoint[0] ? st->endpoint : "-", why);
		}
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

typedef struct history_args {
	int rollouts;
} history_args_t;

static int
history_flag(int ch, const char *v, void *arg)
{
	((history_args_t *)arg)->rollouts = ch == 'r';
	return 0;
}

int
cmd_history(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl history SERVICE [--rollouts] [--json]\n"
	    "The service's audit log, newest first: its revisions (when, "
	    "digest, image,\nmessage; * marks the one it runs) and its "
	    "rollouts (who started them,\nwhy, the revisions, the outcome "
	    "and its reason).\n"
	    "\n"
	    "      --rollouts  with --json: the rollouts (else the "
	    "revisions)\n";
	static const struct option extra[] = {
		{ "rollouts", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	history_args_t a = { 0 };
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__GetHistory gh = SHOAL__GET_HISTORY__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, history_flag, &a);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	gh.service = (char *)name;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_GET_HISTORY;
	req.get_history = &gh;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json && a.rollouts) {
		json_t *ro = json_array();

		for (size_t k = 0; k < cr->n_rollouts; k++)
			json_array_append_new(ro,
			    rollout_json(cr->rollouts[k]));
		r = print_json(ro);
	} else if (c->json) {
		json_t *arr = json_array();

		for (size_t k = 0; k < cr->n_revisions; k++) {
			const Shoal__Revision *rv = cr->revisions[k];

			json_array_append_new(arr,
			    json_pack("{s:I,s:o,s:s,s:s,s:s,s:b}", "revision",
			        (json_int_t)rv->revision, "created",
			        time_json(rv->created_ms), "image",
			        rv->spec->image, "message", rv->message,
			        "digest", rv->digest, "current",
			        rv->revision == cr->target));
		}
		r = print_json(arr);
	} else {
		printf("%8s %-24s %-12s %-40s %s\n", "REVISION", "CREATED",
		    "DIGEST", "IMAGE", "MESSAGE");
		for (size_t k = 0; k < cr->n_revisions; k++) {
			const Shoal__Revision *rv = cr->revisions[k];
			char t[RFC3339_LEN];

			format_rfc3339(rv->created_ms, t);
			printf("%7llu%s %-24s %-12.12s %-40s %s\n",
			    (unsigned long long)rv->revision,
			    rv->revision == cr->target ? "*" : " ", t,
			    rv->digest, rv->spec->image, rv->message);
		}
		printf("\n%8s %-24s %-11s %-10s %-22s %s\n", "ROLLOUT",
		    "STARTED", "REVISIONS", "OUTCOME", "BY", "MESSAGE");
		for (size_t k = 0; k < cr->n_rollouts; k++) {
			const Shoal__Rollout *ro = cr->rollouts[k];
			char t[RFC3339_LEN], revs[32];

			format_rfc3339(ro->started_ms, t);
			snprintf(revs, sizeof revs, "%llu -> %llu%s",
			    (unsigned long long)ro->from_revision,
			    (unsigned long long)ro->to_revision,
			    ro->rollback ? "R" : "");
			printf("%8llu %-24s %-11s %-10s %-22s %s%s%s\n",
			    (unsigned long long)ro->id, t, revs,
			    wire_rollout_state_name(ro->state), ro->started_by,
			    ro->message, ro->reason[0] ? " | " : "",
			    ro->reason);
		}
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

int
cmd_delete(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl delete SERVICE\n"
	    "Remove the service and its history; every node stops and "
	    "removes its\ncontainers.\n";
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__DeleteService ds = SHOAL__DELETE_SERVICE__INIT;
	Shoal__Envelope *rep;
	const char *name;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	r = service_operand(argc, argv, i, help, &name);
	if (r)
		return r;
	ds.service = (char *)name;
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_DELETE_SERVICE;
	req.delete_service = &ds;
	r = call(c, &req, &rep);
	if (r)
		return r;
	if (c->json)
		r = print_json(
		    json_pack("{s:s,s:b}", "service", name, "deleted", 1));
	else
		printf("%s: deleted; its nodes remove it\n", name);
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}
