/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envelope pack/unpack with the frame size cap and field validation, used by
 * the agent, the coordinator and shoalctl on every frame they receive.
 */
#include "autoconf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/spec.h"
#include "common/util.h"
#include "common/wire.h"

int
wire_pack(const Shoal__Envelope *env, uint8_t **ret_buf, size_t *ret_len)
{
	size_t n = shoal__envelope__get_packed_size(env);
	uint8_t *buf;

	if (n > WIRE_MAX_FRAME)
		return SHOAL_E_FRAME_TOO_BIG;
	buf = xmalloc(n);
	shoal__envelope__pack(env, buf);
	*ret_buf = buf;
	*ret_len = n;
	return 0;
}

void *
wire_copy(const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = xmalloc(n + 1);
	ProtobufCMessage *copy;

	protobuf_c_message_pack(msg, buf);
	copy = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
	free(buf);
	if (!copy)
		abort(); /* it was packed a moment ago */
	return copy;
}

zframe_t *
wire_frame(const Shoal__Envelope *env)
{
	size_t n = shoal__envelope__get_packed_size(env);
	zframe_t *f = zframe_new(NULL, n);

	if (!f)
		abort();
	shoal__envelope__pack(env, zframe_data(f));
	return f;
}

/*
 * The length of the character at p (left bytes remain) when it is
 * well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF) and not a control character (newline and tab pass where free
 * text allows them); 0 otherwise. Peer strings end up in logs and
 * terminals.
 */
static size_t
char_ok(const unsigned char *p, size_t left, int free_text)
{
	unsigned c = p[0], need, cp;

	if (c < 0x80) {
		if ((c < 0x20 || c == 0x7f) &&
		    !(free_text && (c == '\n' || c == '\t')))
			return 0;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left <= need)
		return 0; /* cut short */
	for (unsigned k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	/* C1 controls (U+0080..U+009F) steer terminals too. */
	if (cp < 0xa0)
		return 0;
	return need + 1;
}

static int
text_ok(const char *s, size_t max, int free_text)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len, n;

	if (!s || (len = strnlen(s, max + 1)) > max)
		return 0;
	for (size_t i = 0; i < len; i += n)
		if (!(n = char_ok(p + i, len - i, free_text)))
			return 0;
	return 1;
}

void
wire_clean_text(char *s, size_t max, int free_text)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strnlen(s, max + 1), n;

	if (len > max) {
		/* Cut at a character boundary: back over continuation
		 * bytes. */
		len = max;
		while (len > 0 && (p[len] & 0xc0) == 0x80)
			len--;
		p[len] = '\0';
	}
	for (size_t i = 0; i < len; i += n)
		if (!(n = char_ok(p + i, len - i, free_text))) {
			p[i] = '?';
			n = 1;
		}
}

void
wire_set_text(char **field, const char *fmt, ...)
{
	char buf[WIRE_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	wire_clean_text(buf, sizeof buf - 1, 1);
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = xstrdup(buf);
}

static int
str_ok(const char *s, size_t max)
{
	return text_ok(s, max, 0);
}

static int
msg_ok(const char *s, size_t max)
{
	return text_ok(s, max, 1);
}

/* A figure a peer reports: finite and not negative. */
static int
figure_ok(double v)
{
	return isfinite(v) && v >= 0;
}

static int
labels_ok(Shoal__Label **v, size_t n, const char **ret_why)
{
	REQUIRE(n <= LABELS_MAX, "labels: too many");
	for (size_t i = 0; i < n; i++) {
		REQUIRE(v[i], "labels: empty entry");
		REQUIRE(label_key_valid(v[i]->key), "labels: key");
		REQUIRE(label_value_valid(v[i]->value), "labels: value");
		for (size_t j = 0; j < i; j++)
			REQUIRE(strcmp(v[i]->key, v[j]->key) != 0,
			    "labels: duplicate key");
	}
	return 0;
}

static int
facts_ok(const Shoal__Facts *f, const char **ret_why)
{
	if (!f)
		return 0;
	REQUIRE(str_ok(f->hostname, WIRE_MAX_STRING), "facts.hostname");
	REQUIRE(str_ok(f->os, WIRE_MAX_STRING), "facts.os");
	REQUIRE(str_ok(f->kernel, WIRE_MAX_STRING), "facts.kernel");
	REQUIRE(str_ok(f->arch, WIRE_MAX_STRING), "facts.arch");
	return 0;
}

static int
event_ok(const Shoal__Event *e, const char **ret_why)
{
	REQUIRE(e, "event: missing");
	REQUIRE(e->seq > 0, "event.seq: must start at 1");
	REQUIRE(str_ok(e->kind, 64) && e->kind[0], "event.kind");
	REQUIRE(str_ok(e->service, WIRE_MAX_STRING), "event.service");
	REQUIRE(msg_ok(e->message, WIRE_MAX_MESSAGE), "event.message");
	REQUIRE(e->prev_seq < e->seq, "event.prev_seq: must precede seq");
	return 0;
}

static int
figures_ok(const Shoal__HostFigures *f, const char **ret_why)
{
	if (!f)
		return 0;
	REQUIRE(figure_ok(f->load1), "figures.load1");
	REQUIRE(figure_ok(f->cpu_percent) && f->cpu_percent <= 100,
	    "figures.cpu_percent");
	REQUIRE(figure_ok(f->gpu_util_percent) && f->gpu_util_percent <= 100,
	    "figures.gpu_util_percent");
	REQUIRE(f->gpus <= 1024, "figures.gpus: at most 1024");
	return 0;
}

static int
node_ok(const Shoal__Node *n, const char **ret_why)
{
	int r;

	REQUIRE(n, "node: missing");
	REQUIRE(node_id_valid(n->id), "node.id");
	REQUIRE(str_ok(n->agent_version, WIRE_MAX_STRING),
	    "node.agent_version");
	REQUIRE(str_ok(n->store_id, WIRE_MAX_STRING), "node.store_id");
	r = labels_ok(n->labels, n->n_labels, ret_why);
	if (r < 0)
		return r;
	r = figures_ok(n->figures, ret_why);
	if (r < 0)
		return r;
	return facts_ok(n->facts, ret_why);
}

static int
spec_ok(const Shoal__ServiceSpec *spec, const char *service,
    const char **ret_why)
{
	REQUIRE(spec, "spec: missing");
	if (spec_validate(spec, ret_why) < 0)
		return SHOAL_E_INVALID;
	REQUIRE(!service || strcmp(spec->service, service) == 0,
	    "spec.service: differs from the service it is for");
	return 0;
}

static int
status_ok(const Shoal__ServiceStatus *st, const char **ret_why)
{
	REQUIRE(st, "status: missing");
	REQUIRE(service_name_valid(st->service), "status.service");
	REQUIRE(st->state >= SHOAL__SERVICE_STATUS__STATE__PENDING &&
	        st->state <= SHOAL__SERVICE_STATUS__STATE__FAILED,
	    "status.state");
	REQUIRE(str_ok(st->container, WIRE_MAX_STRING), "status.container");
	REQUIRE(str_ok(st->endpoint, WIRE_MAX_STRING), "status.endpoint");
	REQUIRE(msg_ok(st->reason, WIRE_MAX_MESSAGE), "status.reason");
	REQUIRE(st->bytes_done <= st->bytes_total || !st->bytes_total,
	    "status.bytes_done: more than bytes_total");
	if (st->prestage) {
		REQUIRE(st->prestage->revision > 0, "status.prestage.revision");
		REQUIRE(st->prestage->state >=
		            SHOAL__PRESTAGE__STATE__PREPARING &&
		        st->prestage->state <= SHOAL__PRESTAGE__STATE__FAILED,
		    "status.prestage.state");
		REQUIRE(msg_ok(st->prestage->reason, WIRE_MAX_MESSAGE),
		    "status.prestage.reason");
	}
	return 0;
}

static int
snapshot_ok(const Shoal__Snapshot *sn, const char **ret_why)
{
	REQUIRE(sn && snapshot_id_valid(sn->id), "snapshot.id");
	REQUIRE(msg_ok(sn->message, WIRE_MAX_MESSAGE), "snapshot.message");
	REQUIRE(sn->n_services <= WIRE_MAX_SERVICES,
	    "snapshot.services: too many");
	for (size_t i = 0; i < sn->n_services; i++)
		REQUIRE(sn->services[i] &&
		        service_name_valid(sn->services[i]->service),
		    "snapshot.services.service");
	REQUIRE(str_ok(sn->sha256, 64), "snapshot.sha256");
	REQUIRE(sn->n_artifacts <= WIRE_MAX_ITEMS,
	    "snapshot.artifacts: too many");
	for (size_t i = 0; i < sn->n_artifacts; i++)
		REQUIRE(str_ok(sn->artifacts[i], 64), "snapshot.artifacts");
	REQUIRE(sn->state >= SHOAL__SNAPSHOT__STATE__READY &&
	        sn->state <= SHOAL__SNAPSHOT__STATE__CORRUPT,
	    "snapshot.state");
	REQUIRE(msg_ok(sn->reason, WIRE_MAX_MESSAGE), "snapshot.reason");
	REQUIRE(!sn->service[0] || service_name_valid(sn->service),
	    "snapshot.service");
	return 0;
}

static int
operation_ok(const Shoal__Operation *op, const char **ret_why)
{
	REQUIRE(op, "operation: missing");
	REQUIRE(op->id > 0, "operation.id");
	REQUIRE(str_ok(op->token, 64) && op->token[0], "operation.token");
	REQUIRE(op->kind >= SHOAL__OPERATION__KIND__SNAPSHOT &&
	        op->kind <= SHOAL__OPERATION__KIND__RESTORE,
	    "operation.kind");
	REQUIRE(op->state >= SHOAL__OPERATION__STATE__PENDING &&
	        op->state <= SHOAL__OPERATION__STATE__FAILED,
	    "operation.state");
	REQUIRE(snapshot_id_valid(op->snapshot), "operation.snapshot");
	REQUIRE(msg_ok(op->message, WIRE_MAX_MESSAGE) &&
	        msg_ok(op->result, WIRE_MAX_MESSAGE) &&
	        str_ok(op->requested_by, WIRE_MAX_STRING),
	    "operation: text");
	REQUIRE(!op->service[0] || service_name_valid(op->service),
	    "operation.service");
	REQUIRE(!op->node[0] || node_id_valid(op->node), "operation.node");
	REQUIRE(op->n_services <= WIRE_MAX_SERVICES,
	    "operation.services: too many");
	for (size_t i = 0; i < op->n_services; i++)
		REQUIRE(op->services[i] &&
		        service_name_valid(op->services[i]->service),
		    "operation.services.service");
	if (op->hold) {
		REQUIRE(op->hold->n_services <= WIRE_MAX_SERVICES,
		    "operation.hold.services: too many");
		for (size_t i = 0; i < op->hold->n_services; i++)
			REQUIRE(op->hold->services[i] &&
			        service_name_valid(
			            op->hold->services[i]->service),
			    "operation.hold.services.service");
	}
	return 0;
}

static int
status_report_ok(const Shoal__StatusReport *rep, const char **ret_why)
{
	int r;

	REQUIRE(rep, "status_report: missing");
	REQUIRE(rep->n_services <= WIRE_MAX_SERVICES,
	    "status_report.services: too many");
	for (size_t i = 0; i < rep->n_services; i++) {
		r = status_ok(rep->services[i], ret_why);
		if (r < 0)
			return r;
	}
	REQUIRE(rep->n_operations <= WIRE_MAX_OPERATIONS,
	    "status_report.operations: too many");
	for (size_t i = 0; i < rep->n_operations; i++) {
		const Shoal__OperationResult *o = rep->operations[i];

		REQUIRE(o && str_ok(o->token, 64) && o->token[0],
		    "status_report.operations.token");
		REQUIRE(msg_ok(o->result, WIRE_MAX_MESSAGE),
		    "status_report.operations.result");
		REQUIRE(o->n_restored <= WIRE_MAX_SERVICES,
		    "status_report.operations.restored: too many");
		for (size_t j = 0; j < o->n_restored; j++)
			REQUIRE(o->restored[j] &&
			        service_name_valid(o->restored[j]->service),
			    "status_report.operations.restored.service");
	}
	REQUIRE(rep->n_snapshots <= WIRE_MAX_SNAPSHOTS,
	    "status_report.snapshots: too many");
	for (size_t i = 0; i < rep->n_snapshots; i++) {
		r = snapshot_ok(rep->snapshots[i], ret_why);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
desired_state_ok(const Shoal__DesiredState *ds, const char **ret_why)
{
	int r;

	REQUIRE(ds, "desired_state: missing");
	REQUIRE(ds->n_services <= WIRE_MAX_SERVICES,
	    "desired_state.services: too many");
	for (size_t i = 0; i < ds->n_services; i++) {
		const Shoal__ServiceAssignment *a = ds->services[i];

		REQUIRE(a, "desired_state.services: empty entry");
		REQUIRE(service_name_valid(a->service),
		    "desired_state.services.service");
		REQUIRE(a->revision > 0, "desired_state.services.revision");
		r = spec_ok(a->spec, a->service, ret_why);
		if (r < 0)
			return r;
		if (a->prestage_revision) {
			REQUIRE(a->prestage_revision != a->revision,
			    "desired_state.services.prestage_revision: the "
			    "revision it runs");
			r = spec_ok(a->prestage_spec, a->service, ret_why);
			if (r < 0)
				return r;
		}
		for (size_t j = 0; j < i; j++)
			REQUIRE(strcmp(ds->services[j]->service, a->service) !=
			        0,
			    "desired_state.services: a service twice");
	}
	REQUIRE(ds->n_operations <= WIRE_MAX_OPERATIONS,
	    "desired_state.operations: too many");
	for (size_t i = 0; i < ds->n_operations; i++) {
		r = operation_ok(ds->operations[i], ret_why);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
control_request_ok(const Shoal__ControlRequest *c, const char **ret_why)
{
	REQUIRE(c, "control_request: missing");
	switch (c->req_case) {
	case SHOAL__CONTROL_REQUEST__REQ_LIST_NODES:
		REQUIRE(!c->list_nodes->after[0] ||
		        node_id_valid(c->list_nodes->after),
		    "list_nodes.after");
		REQUIRE(c->list_nodes->limit <= WIRE_MAX_ITEMS,
		    "list_nodes.limit");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_GET_NODE:
		REQUIRE(node_id_valid(c->get_node->id), "get_node.id");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_EVENTS:
		REQUIRE(!c->list_events->node[0] ||
		        node_id_valid(c->list_events->node),
		    "list_events.node");
		REQUIRE(c->list_events->limit <= WIRE_MAX_ITEMS,
		    "list_events.limit");
		REQUIRE(!c->list_events->service[0] ||
		        service_name_valid(c->list_events->service),
		    "list_events.service");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_APPLY:
		REQUIRE(msg_ok(c->apply->message, WIRE_MAX_MESSAGE),
		    "apply.message");
		REQUIRE(str_ok(c->apply->started_by, WIRE_MAX_STRING),
		    "apply.started_by");
		return spec_ok(c->apply->spec, NULL, ret_why);
	case SHOAL__CONTROL_REQUEST__REQ_PLAN:
		return spec_ok(c->plan->spec, NULL, ret_why);
	case SHOAL__CONTROL_REQUEST__REQ_GET_ROLLOUT:
		REQUIRE(service_name_valid(c->get_rollout->service),
		    "get_rollout.service");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_ROLLOUT_CONTROL:
		REQUIRE(service_name_valid(c->rollout_control->service),
		    "rollout_control.service");
		REQUIRE(c->rollout_control->action >=
		            SHOAL__ROLLOUT_CONTROL__ACTION__PROMOTE &&
		        c->rollout_control->action <=
		            SHOAL__ROLLOUT_CONTROL__ACTION__ABORT,
		    "rollout_control.action");
		REQUIRE(str_ok(c->rollout_control->started_by, WIRE_MAX_STRING),
		    "rollout_control.started_by");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_ROLLBACK:
		REQUIRE(service_name_valid(c->rollback->service),
		    "rollback.service");
		REQUIRE(msg_ok(c->rollback->message, WIRE_MAX_MESSAGE),
		    "rollback.message");
		REQUIRE(str_ok(c->rollback->started_by, WIRE_MAX_STRING),
		    "rollback.started_by");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_SERVICES:
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_GET_STATUS:
		REQUIRE(service_name_valid(c->get_status->service),
		    "get_status.service");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_GET_HISTORY:
		REQUIRE(service_name_valid(c->get_history->service),
		    "get_history.service");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_DELETE_SERVICE:
		REQUIRE(service_name_valid(c->delete_service->service),
		    "delete_service.service");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_CREATE:
		REQUIRE(!c->snapshot_create->node[0] ||
		        node_id_valid(c->snapshot_create->node),
		    "snapshot_create.node");
		REQUIRE(msg_ok(c->snapshot_create->message, WIRE_MAX_MESSAGE),
		    "snapshot_create.message");
		REQUIRE(
		    str_ok(c->snapshot_create->requested_by, WIRE_MAX_STRING),
		    "snapshot_create.requested_by");
		return labels_ok(c->snapshot_create->selector,
		    c->snapshot_create->n_selector, ret_why);
	case SHOAL__CONTROL_REQUEST__REQ_LIST_SNAPSHOTS:
		REQUIRE(!c->list_snapshots->node[0] ||
		        node_id_valid(c->list_snapshots->node),
		    "list_snapshots.node");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_SNAPSHOT_RESTORE:
		REQUIRE(node_id_valid(c->snapshot_restore->node),
		    "snapshot_restore.node");
		REQUIRE(snapshot_id_valid(c->snapshot_restore->snapshot),
		    "snapshot_restore.snapshot");
		REQUIRE(
		    str_ok(c->snapshot_restore->requested_by, WIRE_MAX_STRING),
		    "snapshot_restore.requested_by");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_BACKUP:
		REQUIRE(str_ok(c->backup->path, WIRE_MAX_STRING) &&
		        c->backup->path[0] == '/',
		    "backup.path: an absolute path");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_LIST_KEYS:
		REQUIRE(!c->list_keys->node[0] ||
		        node_id_valid(c->list_keys->node),
		    "list_keys.node");
		return 0;
	case SHOAL__CONTROL_REQUEST__REQ_KEY_CONTROL:
		REQUIRE(node_id_valid(c->key_control->node),
		    "key_control.node");
		REQUIRE(c->key_control->action >=
		            SHOAL__KEY_CONTROL__ACTION__ACCEPT &&
		        c->key_control->action <=
		            SHOAL__KEY_CONTROL__ACTION__DELETE,
		    "key_control.action");
		REQUIRE(!c->key_control->key[0] ||
		        (strlen(c->key_control->key) == 40 &&
		            str_ok(c->key_control->key, 64)),
		    "key_control.key: a 40-character Z85 key");
		REQUIRE(str_ok(c->key_control->requested_by, WIRE_MAX_STRING),
		    "key_control.requested_by");
		return 0;
	default:
		*ret_why = "control_request: unknown request";
		return SHOAL_E_INVALID;
	}
}

static int
rollout_ok(const Shoal__Rollout *ro, const char **ret_why)
{
	REQUIRE(ro, "rollout: missing");
	REQUIRE(service_name_valid(ro->service), "rollout.service");
	REQUIRE(ro->update, "rollout.update: missing");
	REQUIRE(ro->state >= SHOAL__ROLLOUT__STATE__RUNNING &&
	        ro->state <= SHOAL__ROLLOUT__STATE__SUPERSEDED,
	    "rollout.state");
	REQUIRE(msg_ok(ro->reason, WIRE_MAX_MESSAGE) &&
	        msg_ok(ro->message, WIRE_MAX_MESSAGE) &&
	        str_ok(ro->started_by, WIRE_MAX_STRING),
	    "rollout: text");
	REQUIRE(ro->n_nodes <= WIRE_MAX_ITEMS, "rollout.nodes: too many");
	for (size_t i = 0; i < ro->n_nodes; i++) {
		const Shoal__RolloutNode *n = ro->nodes[i];

		REQUIRE(n && node_id_valid(n->node), "rollout.nodes.node");
		REQUIRE(n->state >= SHOAL__ROLLOUT_NODE__STATE__PENDING &&
		        n->state <= SHOAL__ROLLOUT_NODE__STATE__PRESTAGING,
		    "rollout.nodes.state");
		REQUIRE(msg_ok(n->reason, WIRE_MAX_MESSAGE),
		    "rollout.nodes.reason");
		REQUIRE(!n->snapshot[0] || snapshot_id_valid(n->snapshot),
		    "rollout.nodes.snapshot");
	}
	return 0;
}

static int
control_reply_ok(const Shoal__ControlReply *c, const char **ret_why)
{
	int r;

	REQUIRE(c, "control_reply: missing");
	REQUIRE(msg_ok(c->error, WIRE_MAX_MESSAGE), "control_reply.error");
	REQUIRE(!c->next[0] || node_id_valid(c->next), "control_reply.next");
	REQUIRE(c->n_nodes <= WIRE_MAX_ITEMS, "control_reply.nodes: too many");
	REQUIRE(c->n_events <= WIRE_MAX_ITEMS,
	    "control_reply.events: too many");
	for (size_t i = 0; i < c->n_nodes; i++) {
		r = node_ok(c->nodes[i], ret_why);
		if (r < 0)
			return r;
	}
	REQUIRE(c->n_services <= WIRE_MAX_ITEMS &&
	        c->n_statuses <= WIRE_MAX_ITEMS &&
	        c->n_revisions <= WIRE_MAX_ITEMS,
	    "control_reply: too many items");
	for (size_t i = 0; i < c->n_services; i++) {
		REQUIRE(c->services[i] &&
		        service_name_valid(c->services[i]->service),
		    "control_reply.services.service");
		REQUIRE(str_ok(c->services[i]->image, WIRE_MAX_STRING),
		    "control_reply.services.image");
	}
	for (size_t i = 0; i < c->n_statuses; i++) {
		REQUIRE(c->statuses[i] && node_id_valid(c->statuses[i]->node),
		    "control_reply.statuses.node");
		r = status_ok(c->statuses[i]->status, ret_why);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_revisions; i++) {
		const Shoal__Revision *rev = c->revisions[i];

		REQUIRE(rev && service_name_valid(rev->service),
		    "control_reply.revisions.service");
		REQUIRE(msg_ok(rev->message, WIRE_MAX_MESSAGE) &&
		        str_ok(rev->digest, 64),
		    "control_reply.revisions");
		r = spec_ok(rev->spec, rev->service, ret_why);
		if (r < 0)
			return r;
	}
	REQUIRE(c->n_rollouts <= WIRE_MAX_ITEMS && c->n_plan <= WIRE_MAX_ITEMS,
	    "control_reply: too many items");
	for (size_t i = 0; i < c->n_rollouts; i++) {
		r = rollout_ok(c->rollouts[i], ret_why);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_plan; i++) {
		REQUIRE(c->plan[i] && node_id_valid(c->plan[i]->node),
		    "control_reply.plan.node");
		REQUIRE(str_ok(c->plan[i]->pull, WIRE_MAX_STRING),
		    "control_reply.plan.pull");
	}
	REQUIRE(c->n_operations <= WIRE_MAX_ITEMS &&
	        c->n_snapshots <= WIRE_MAX_ITEMS,
	    "control_reply: too many items");
	for (size_t i = 0; i < c->n_operations; i++) {
		r = operation_ok(c->operations[i], ret_why);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_snapshots; i++) {
		const Shoal__NodeSnapshot *ns = c->snapshots[i];

		REQUIRE(ns && node_id_valid(ns->node),
		    "control_reply.snapshots.node");
		REQUIRE(str_ok(ns->state, 16) &&
		        msg_ok(ns->reason, WIRE_MAX_MESSAGE),
		    "control_reply.snapshots.state");
		r = snapshot_ok(ns->snapshot, ret_why);
		if (r < 0)
			return r;
	}
	REQUIRE(str_ok(c->sha256, 64), "control_reply.sha256");
	REQUIRE(c->n_keys <= WIRE_MAX_ITEMS, "control_reply.keys: too many");
	for (size_t i = 0; i < c->n_keys; i++) {
		const Shoal__NodeKey *k = c->keys[i];

		REQUIRE(k && node_id_valid(k->node) && str_ok(k->key, 64) &&
		        str_ok(k->state, 16) &&
		        str_ok(k->by, WIRE_MAX_STRING) &&
		        str_ok(k->address, WIRE_MAX_STRING),
		    "control_reply.keys");
	}
	for (size_t i = 0; i < c->n_events; i++) {
		REQUIRE(c->events[i], "control_reply.events: empty entry");
		/* Empty: the coordinator's own event about a service. */
		REQUIRE(!c->events[i]->node[0] ||
		        node_id_valid(c->events[i]->node),
		    "event.node");
		r = event_ok(c->events[i]->event, ret_why);
		if (r < 0)
			return r;
	}
	return 0;
}

int
wire_node_ok(const Shoal__Node *n, const char **ret_why)
{
	const char *why_unused;

	return node_ok(n, ret_why ? ret_why : &why_unused);
}

int
wire_validate(const Shoal__Envelope *env, const char **ret_why)
{
	const char *why_unused;
	int r;

	if (!ret_why)
		ret_why = &why_unused;
	if (env->version != SHOAL_PROTOCOL_VERSION) {
		*ret_why = "version";
		return SHOAL_E_PROTOCOL;
	}
	REQUIRE(!env->node_id[0] || node_id_valid(env->node_id), "node_id");

	switch (env->body_case) {
	case SHOAL__ENVELOPE__BODY_HELLO:
		REQUIRE(node_id_valid(env->node_id), "node_id: required");
		REQUIRE(str_ok(env->hello->agent_version, WIRE_MAX_STRING),
		    "hello.agent_version");
		REQUIRE(str_ok(env->hello->store_id, WIRE_MAX_STRING),
		    "hello.store_id");
		REQUIRE(str_ok(env->hello->enroll_token, WIRE_MAX_STRING),
		    "hello.enroll_token");
		REQUIRE(env->hello->generation < UINT64_MAX,
		    "hello.generation");
		REQUIRE(env->hello->heartbeat_ms >= 10 &&
		        env->hello->heartbeat_ms <= 3600 * 1000,
		    "hello.heartbeat_ms");
		r = labels_ok(env->hello->labels, env->hello->n_labels,
		    ret_why);
		if (r < 0)
			return r;
		return facts_ok(env->hello->facts, ret_why);
	case SHOAL__ENVELOPE__BODY_HEARTBEAT:
		REQUIRE(node_id_valid(env->node_id), "node_id: required");
		REQUIRE(env->heartbeat->generation < UINT64_MAX,
		    "heartbeat.generation");
		return figures_ok(env->heartbeat->figures, ret_why);
	case SHOAL__ENVELOPE__BODY_DESIRED_STATE_REQUEST:
	case SHOAL__ENVELOPE__BODY_ACK:
		REQUIRE(node_id_valid(env->node_id), "node_id: required");
		return 0;
	case SHOAL__ENVELOPE__BODY_EVENT:
		REQUIRE(node_id_valid(env->node_id), "node_id: required");
		return event_ok(env->event, ret_why);
	case SHOAL__ENVELOPE__BODY_WELCOME:
		REQUIRE(
		    str_ok(env->welcome->coordinator_version, WIRE_MAX_STRING),
		    "welcome.coordinator_version");
		return 0;
	case SHOAL__ENVELOPE__BODY_STATUS_REPORT:
		REQUIRE(node_id_valid(env->node_id), "node_id: required");
		return status_report_ok(env->status_report, ret_why);
	case SHOAL__ENVELOPE__BODY_DESIRED_STATE:
		return desired_state_ok(env->desired_state, ret_why);
	case SHOAL__ENVELOPE__BODY_HEARTBEAT_REPLY:
	case SHOAL__ENVELOPE__BODY_EVENT_ACK:
	case SHOAL__ENVELOPE__BODY_DOORBELL:
		return 0;
	case SHOAL__ENVELOPE__BODY_ERROR:
		REQUIRE(msg_ok(env->error->message, WIRE_MAX_MESSAGE),
		    "error.message");
		return 0;
	case SHOAL__ENVELOPE__BODY_CONTROL_REQUEST:
		return control_request_ok(env->control_request, ret_why);
	case SHOAL__ENVELOPE__BODY_CONTROL_REPLY:
		return control_reply_ok(env->control_reply, ret_why);
	default:
		*ret_why = "body: missing or unknown";
		return SHOAL_E_INVALID;
	}
}

/*
 * protobuf-c 1.4 accepts field number 0 written as a long varint tag
 * (80 00) and keeps it as an unknown field, but packs it short and then
 * refuses its own output: a message that passed here would abort whoever
 * copies or stores it (wire_copy, a stored report read back). Whatever we
 * accept must decode again once re-encoded, unknown fields and all.
 */
static bool
survives_repacking(const Shoal__Envelope *env)
{
	size_t n = shoal__envelope__get_packed_size(env);
	uint8_t *buf = xmalloc(n ? n : 1);
	Shoal__Envelope *again;

	shoal__envelope__pack(env, buf);
	again = shoal__envelope__unpack(NULL, n, buf);
	free(buf);
	if (!again)
		return false;
	shoal__envelope__free_unpacked(again, NULL);
	return true;
}

int
wire_unpack(const void *buf, size_t len, Shoal__Envelope **ret_env,
    const char **ret_why)
{
	const char *why_unused;
	Shoal__Envelope *env;
	int r;

	if (!ret_why)
		ret_why = &why_unused;
	if (len > WIRE_MAX_FRAME) {
		*ret_why = "frame size";
		return SHOAL_E_FRAME_TOO_BIG;
	}
	env = shoal__envelope__unpack(NULL, len, buf);
	if (!env) {
		*ret_why = "protobuf decoding";
		return SHOAL_E_MALFORMED;
	}
	r = wire_validate(env, ret_why);
	if (r == 0 && !survives_repacking(env)) {
		*ret_why = "protobuf decoding: does not decode once re-encoded";
		r = SHOAL_E_MALFORMED;
	}
	if (r < 0) {
		shoal__envelope__free_unpacked(env, NULL);
		return r;
	}
	*ret_env = env;
	return 0;
}

const char *
wire_body_name(const Shoal__Envelope *env)
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field(
	    &shoal__envelope__descriptor, (unsigned)env->body_case);
	return f ? f->name : "none";
}

/* -- state names ------------------------------------------------------- */

#define NAME_OF(table, i)                                                  \
	((size_t)(i) < sizeof table / sizeof *table && table[i] ? table[i] \
	                                                        : "unknown")

const char *
wire_service_state_name(Shoal__ServiceStatus__State s)
{
	static const char *const names[] = { "pending", "preparing", "starting",
		"staged", "healthy", "unhealthy", "failed" };

	return NAME_OF(names, s);
}

const char *
wire_rollout_state_name(Shoal__Rollout__State s)
{
	static const char *const names[] = { "running", "waiting-promote",
		"reverting", "succeeded", "failed", "reverted", "aborted",
		"superseded" };

	return NAME_OF(names, s);
}

const char *
wire_rollout_node_state_name(Shoal__RolloutNode__State s)
{
	static const char *const names[] = { "pending", "staging", "staged",
		"switching", "settling", "done", "failed", "reverting",
		"reverted", "prestaging" };

	return NAME_OF(names, s);
}

const char *
wire_prestage_state_name(Shoal__Prestage__State s)
{
	static const char *const names[] = { "preparing", "ready", "failed" };

	return NAME_OF(names, s);
}

const char *
wire_strategy_name(Shoal__UpdateStrategy__Kind k)
{
	static const char *const names[] = { "rolling", "canary",
		"blue-green" };

	return NAME_OF(names, k);
}
