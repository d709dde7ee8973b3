/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Services, revisions, per-node desired state and reported status (see
 * services.h). In memory: the services in name order, each with its current
 * revision unpacked, and a hash of nodes with their desired state and last
 * status report. Changes are made in memory, written in one LMDB
 * transaction, and undone in memory if the commit fails.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/rollout.h"
#include "coordinator/services.h"

/* Room left in a frame for the envelope around a desired state. */
#define DESIRED_MAX (WIRE_MAX_FRAME - 16 * 1024)

typedef struct service {
	Shoal__ServiceRecord *rec; /* owned */
	Shoal__Revision **revs;    /* owned, oldest first: the last is newest */
	size_t nrevs;
	Shoal__Rollout *ro; /* owned: the newest rollout; NULL: none yet */
	int resync; /* a failed write left memory unsure: recompute all */
} service_t;

/* An event a rollout step asked for, written with the step. */
typedef struct note {
	char *node; /* NULL: about the service */
	char *kind;
	char *message;
} note_t;

typedef struct node_state {
	Shoal__DesiredState *desired; /* owned; NULL: nothing assigned yet */
	Shoal__StatusReport *status;  /* owned; NULL: no report yet */
	/* operations: the pending ones and the newest finished, by id */
	Shoal__Operation **ops; /* owned */
	size_t nops;
	uint64_t last_op;  /* the highest id issued */
	Shoal__Hold *hold; /* owned; NULL: not restored */
} node_state_t;

/* An operation added in memory, to be written with the step that made it
 * (or taken back when that write fails). */
typedef struct fresh_op {
	node_state_t *ns;
	char node[NODE_ID_MAX + 1];
	Shoal__Operation *op; /* in ns->ops */
} fresh_op_t;

struct services {
	store_t *store;
	registry_t *reg;
	service_t *v; /* sorted by name */
	size_t n;
	zhashx_t *nodes;       /* node id -> node_state_t */
	rollout_hooks_t hooks; /* observe() and note() on this */
	note_t *notes;         /* what the step in progress noted */
	size_t nnotes;
	fresh_op_t *fresh; /* operations the step in progress queued */
	size_t nfresh;
};

/* A node whose desired state is about to change. */
typedef struct change {
	const char *node;
	uint64_t generation;
	uint8_t *packed; /* DesiredState with the new generation */
	size_t len;
} change_t;

static void
node_state_destroy(void **item)
{
	node_state_t *ns = *item;

	if (!ns)
		return;
	if (ns->desired)
		shoal__desired_state__free_unpacked(ns->desired, NULL);
	if (ns->status)
		shoal__status_report__free_unpacked(ns->status, NULL);
	for (size_t i = 0; i < ns->nops; i++)
		shoal__operation__free_unpacked(ns->ops[i], NULL);
	free(ns->ops);
	if (ns->hold)
		shoal__hold__free_unpacked(ns->hold, NULL);
	free(ns);
	*item = NULL;
}

static node_state_t *
node_state(services_t *s, const char *node_id)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	if (!ns) {
		ns = xcalloc(1, sizeof *ns);
		zhashx_insert(s->nodes, node_id, ns);
	}
	return ns;
}

static service_t *
find_service(services_t *s, const char *name, size_t *ret_index)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].rec->service, name);

		if (c == 0) {
			if (ret_index)
				*ret_index = mid;
			return &s->v[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ret_index)
		*ret_index = lo;
	return NULL;
}

/* Key of a revision: the name, a NUL, the revision big-endian, so one
 * service's revisions sort together and in order. */
static size_t
revision_key(const char *name, uint64_t rev, uint8_t *key)
{
	size_t n = strlen(name);

	memcpy(key, name, n);
	key[n] = '\0';
	store_key_u64(rev, key + n + 1);
	return n + 1 + 8;
}

static void
digest_hex(const ProtobufCMessage *msg, char out[65])
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = xmalloc(n), md[32];
	unsigned mdlen = 0;

	protobuf_c_message_pack(msg, buf);
	if (!EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		abort();
	free(buf);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Whether the node carries every label of sel. */
static int
node_selected(const Shoal__Node *node, Shoal__Label **sel, size_t nsel)
{
	for (size_t i = 0; i < nsel; i++) {
		size_t k;

		for (k = 0; k < node->n_labels; k++)
			if (strcmp(node->labels[k]->key, sel[i]->key) == 0 &&
			    strcmp(node->labels[k]->value, sel[i]->value) == 0)
				break;
		if (k == node->n_labels)
			return 0;
	}
	return 1;
}

static int
selects(const Shoal__ServiceSpec *spec, const Shoal__Node *node)
{
	return node_selected(node, spec->selector, spec->n_selector);
}

static uint64_t
target_of(const service_t *svc)
{
	return svc->rec->target ? svc->rec->target : svc->rec->revision;
}

static const Shoal__Revision *
revision_find(const service_t *svc, uint64_t rev)
{
	for (size_t i = svc->nrevs; i-- > 0;)
		if (svc->revs[i]->revision == rev)
			return svc->revs[i];
	return NULL;
}

/* The revision that decides which nodes the service selects. */
static const Shoal__Revision *
target_revision(const service_t *svc)
{
	const Shoal__Revision *r = revision_find(svc, target_of(svc));

	return r ? r : svc->revs[svc->nrevs - 1];
}

/* What node_id must run of svc: its part in the newest rollout, else the
 * service's target. */
static void
assigned(const service_t *svc, const char *node_id, uint64_t *ret_rev,
    int *ret_active)
{
	const Shoal__RolloutNode *n =
	    svc->ro ? rollout_find_node(svc->ro, node_id) : NULL;

	if (n) {
		rollout_assignment(svc->ro, n, ret_rev, ret_active);
		if (*ret_rev && revision_find(svc, *ret_rev))
			return;
	}
	*ret_rev = target_of(svc);
	*ret_active = 1;
}

/* The hold a restore left on svc for the node, while svc has not changed
 * since (a new revision, target or rollout ends it); NULL: none. */
static const Shoal__HeldService *
held(const node_state_t *ns, const service_t *svc)
{
	if (!ns || !ns->hold)
		return NULL;
	for (size_t i = 0; i < ns->hold->n_services; i++) {
		const Shoal__HeldService *h = ns->hold->services[i];

		if (strcmp(h->service, svc->rec->service) == 0)
			return h->current == svc->rec->revision &&
			        h->target == target_of(svc) &&
			        h->rollout == svc->rec->last_rollout
			    ? h
			    : NULL;
	}
	return NULL;
}

/*
 * The packed desired state node must have now, with generation gen; *ret
 * is owned by the caller. Assignments borrow from the services.
 */
static void
compute(services_t *s, const Shoal__Node *node, uint64_t gen, uint8_t **ret,
    size_t *ret_len)
{
	Shoal__DesiredState ds = SHOAL__DESIRED_STATE__INIT;
	Shoal__ServiceAssignment *a = xcalloc(s->n + 1, sizeof *a);
	Shoal__ServiceAssignment **ap = xcalloc(s->n + 1, sizeof *ap);
	const node_state_t *ns = zhashx_lookup(s->nodes, node->id);
	Shoal__Operation **ops = NULL;
	size_t n = 0, nops = 0;

	for (size_t i = 0; i < s->n; i++) {
		const service_t *svc = &s->v[i];
		const Shoal__Revision *r = target_revision(svc);
		const Shoal__HeldService *h = held(ns, svc);
		uint64_t rev;
		int active;

		/* Restored from a snapshot: its revision, or not the service
		 * at all, until the service changes (a revision gone from the
		 * history since: what the service says). */
		if (h && !h->revision)
			continue;
		if (h && revision_find(svc, h->revision)) {
			const Shoal__Revision *hr =
			    revision_find(svc, h->revision);

			shoal__service_assignment__init(&a[n]);
			a[n].service = hr->service;
			a[n].revision = hr->revision;
			a[n].spec = hr->spec;
			a[n].active = 1;
			ap[n] = &a[n];
			n++;
			continue;
		}
		if (!selects(r->spec, node))
			continue;
		assigned(svc, node->id, &rev, &active);
		r = revision_find(svc, rev) ? revision_find(svc, rev) : r;
		shoal__service_assignment__init(&a[n]);
		a[n].service = r->service;
		a[n].revision = r->revision;
		a[n].spec = r->spec;
		a[n].active = active;
		if (svc->ro && rollout_active(svc->ro)) {
			const Shoal__RolloutNode *rn =
			    rollout_find_node(svc->ro, node->id);
			uint64_t pre = rn ? rollout_prestage(svc->ro, rn) : 0;
			const Shoal__Revision *p = pre && pre != r->revision
			    ? revision_find(svc, pre)
			    : NULL;

			if (p) {
				a[n].prestage_revision = p->revision;
				a[n].prestage_spec = p->spec;
			}
		}
		ap[n] = &a[n];
		n++;
	}
	ds.generation = gen;
	ds.services = ap;
	ds.n_services = n;
	if (ns && ns->nops) {
		ops = xcalloc(ns->nops, sizeof *ops);
		for (size_t i = 0; i < ns->nops; i++)
			if (ns->ops[i]->state ==
			    SHOAL__OPERATION__STATE__PENDING)
				ops[nops++] = ns->ops[i];
	}
	ds.operations = ops;
	ds.n_operations = nops;
	*ret_len = shoal__desired_state__get_packed_size(&ds);
	*ret = xmalloc(*ret_len ? *ret_len : 1);
	shoal__desired_state__pack(&ds, *ret);
	free(ops);
	free(ap);
	free(a);
}

/* Whether the assignments of a differ from those in packed b (the
 * generations aside). */
static int
assignments_differ(const Shoal__DesiredState *cur, const uint8_t *packed,
    size_t len)
{
	Shoal__DesiredState *next =
	    shoal__desired_state__unpack(NULL, len, packed);
	Shoal__DesiredState a, b;
	uint8_t *pa, *pb;
	size_t na, nb;
	int differ;

	if (!next)
		abort(); /* we packed it a moment ago */
	if (!cur) {
		differ = next->n_services > 0 || next->n_operations > 0;
		shoal__desired_state__free_unpacked(next, NULL);
		return differ;
	}
	a = *cur;
	b = *next;
	a.generation = b.generation = 0;
	na = shoal__desired_state__get_packed_size(&a);
	nb = shoal__desired_state__get_packed_size(&b);
	differ = na != nb;
	if (!differ) {
		pa = xmalloc(na + 1);
		pb = xmalloc(nb + 1);
		shoal__desired_state__pack(&a, pa);
		shoal__desired_state__pack(&b, pb);
		differ = memcmp(pa, pb, na) != 0;
		free(pa);
		free(pb);
	}
	shoal__desired_state__free_unpacked(next, NULL);
	return differ;
}

/* Adds node's change to v when its desired state differs from what the
 * services say now. */
static void
change_of(services_t *s, const Shoal__Node *node, change_t *v, size_t *n)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node->id);
	const Shoal__DesiredState *cur = ns ? ns->desired : NULL;
	uint64_t gen = node->generation;
	uint8_t *packed;
	size_t len;

	if (cur && cur->generation > gen)
		gen = cur->generation;
	compute(s, node, gen + 1, &packed, &len);
	if (!assignments_differ(cur, packed, len)) {
		free(packed);
		return;
	}
	v[(*n)++] = (change_t){ .node = node->id,
		.generation = gen + 1,
		.packed = packed,
		.len = len };
}

/*
 * Collects the nodes whose desired state differs from what the services
 * say now (only node_id when not NULL). The caller frees with
 * changes_free().
 */
static change_t *
collect_changes(services_t *s, const char *node_id, size_t *ret_n)
{
	size_t total = registry_count(s->reg), n = 0;
	change_t *v = xcalloc(total + 1, sizeof *v);

	for (size_t i = 0; i < total; i++) {
		const Shoal__Node *node = registry_at(s->reg, i);

		if (!node_id || strcmp(node->id, node_id) == 0)
			change_of(s, node, v, &n);
	}
	*ret_n = n;
	return v;
}

/* The same for the nodes a rollout step moved (their generation is 0 until
 * stamped): nobody else's assignment changed. */
static change_t *
collect_rollout_changes(services_t *s, const Shoal__Rollout *ro, size_t *ret_n)
{
	change_t *v = xcalloc(ro->n_nodes + 1, sizeof *v);
	size_t n = 0;

	for (size_t i = 0; i < ro->n_nodes; i++) {
		const Shoal__RolloutNode *rn = ro->nodes[i];
		const Shoal__Node *node;

		if (rn->generation ||
		    rn->state == SHOAL__ROLLOUT_NODE__STATE__PENDING)
			continue;
		node = registry_find(s->reg, rn->node);
		if (node)
			change_of(s, node, v, &n);
	}
	*ret_n = n;
	return v;
}

/* A node's desired state travels in one frame: refuse what would not. */
static int
desired_fits(const change_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].len > DESIRED_MAX)
			return SHOAL_E_LIMIT;
	return 0;
}

static void
changes_free(change_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].packed);
	free(v);
}

/* A node's new desired state and its new generation commit together. */
static int
put_changes(services_t *s, store_txn_t *txn, const change_t *v, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		r = store_put(txn, DB_DESIRED, v[i].node, strlen(v[i].node),
		    v[i].packed, v[i].len);
		if (r == 0)
			r = registry_write_generation(s->reg, txn, v[i].node,
			    v[i].generation);
	}
	return r;
}

/* After the commit: memory follows, generations move, doorbells ring. */
static void
publish_changes(services_t *s, change_t *v, size_t n, services_ring_fn ring,
    void *arg)
{
	for (size_t i = 0; i < n; i++) {
		node_state_t *ns = node_state(s, v[i].node);
		/* v[i].node is borrowed from the registry; copy it before the
		 * registry replaces the record. */
		char *node = xstrdup(v[i].node);

		if (ns->desired)
			shoal__desired_state__free_unpacked(ns->desired, NULL);
		ns->desired =
		    shoal__desired_state__unpack(NULL, v[i].len, v[i].packed);
		if (!ns->desired)
			abort();
		registry_note_generation(s->reg, node, v[i].generation);
		if (ring)
			ring(node, v[i].generation, arg);
		free(node);
	}
}

/* -- loading ----------------------------------------------------------- */

/* Key of a rollout: the name, a NUL, the id big-endian. */
static size_t
rollout_key(const char *name, uint64_t id, uint8_t *key)
{
	return revision_key(name, id, key);
}

typedef struct prefix_ctx {
	const char *name;
	size_t len;
	uint8_t (*keys)[SERVICE_NAME_MAX + 9];
	size_t n;
	/* collect_revision: the values, unpacked */
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage **msgs;
} prefix_ctx_t;

/* Every key under name's prefix (NUL, 8 bytes) in db, with its value when
 * p->desc is set. */
static int
collect_prefixed(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	prefix_ctx_t *p = arg;

	if (klen != p->len + 9 || memcmp(key, p->name, p->len) != 0 ||
	    ((const uint8_t *)key)[p->len] != '\0')
		return 1;
	if (p->desc) {
		ProtobufCMessage *m =
		    protobuf_c_message_unpack(p->desc, NULL, vlen, val);

		if (!m)
			return SHOAL_E_STORE_CORRUPT;
		p->msgs = xrealloc(p->msgs, (p->n + 1) * sizeof *p->msgs);
		p->msgs[p->n] = m;
	}
	p->keys = xrealloc(p->keys, (p->n + 1) * sizeof *p->keys);
	memcpy(p->keys[p->n++], key, klen);
	return 0;
}

static int
foreach_prefixed(store_txn_t *txn, unsigned db, const char *name,
    prefix_ctx_t *p)
{
	uint8_t from[SERVICE_NAME_MAX + 1];

	p->name = name;
	p->len = strlen(name);
	memcpy(from, name, p->len + 1);
	return store_foreach(txn, db, from, p->len + 1, collect_prefixed, p);
}

static void
prefix_free(prefix_ctx_t *p)
{
	free(p->keys);
	for (size_t i = 0; p->desc && i < p->n; i++)
		protobuf_c_message_free_unpacked(p->msgs[i], NULL);
	free(p->msgs);
}

static int
load_service(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	services_t *s = arg;
	Shoal__ServiceRecord *rec =
	    shoal__service_record__unpack(NULL, vlen, val);

	if (!rec || !service_name_valid(rec->service)) {
		if (rec)
			shoal__service_record__free_unpacked(rec, NULL);
		return SHOAL_E_STORE_CORRUPT;
	}
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	s->v[s->n++] = (service_t){ .rec = rec };
	return 0;
}

static int
load_node(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	void **ctx = arg;
	services_t *s = ctx[0];
	int is_status = ctx[1] != NULL;
	char id[NODE_ID_MAX + 1];
	node_state_t *ns;

	if (klen == 0 || klen > NODE_ID_MAX)
		return SHOAL_E_STORE_CORRUPT;
	memcpy(id, key, klen);
	id[klen] = '\0';
	ns = node_state(s, id);
	if (is_status) {
		ns->status = shoal__status_report__unpack(NULL, vlen, val);
		return ns->status ? 0 : SHOAL_E_STORE_CORRUPT;
	}
	ns->desired = shoal__desired_state__unpack(NULL, vlen, val);
	return ns->desired ? 0 : SHOAL_E_STORE_CORRUPT;
}

/* Key of an operation: the node id, a NUL, the id big-endian. */
static size_t
op_key(const char *node, uint64_t id, uint8_t *key)
{
	size_t n = strlen(node);

	memcpy(key, node, n);
	key[n] = '\0';
	store_key_u64(id, key + n + 1);
	return n + 9;
}

static int
load_op(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	services_t *s = arg;
	const char *k = key;
	size_t n = strnlen(k, klen);
	char id[NODE_ID_MAX + 1];
	Shoal__Operation *op;
	node_state_t *ns;

	if (n == 0 || n > NODE_ID_MAX || klen != n + 9)
		return SHOAL_E_STORE_CORRUPT;
	memcpy(id, k, n);
	id[n] = '\0';
	op = shoal__operation__unpack(NULL, vlen, val);
	if (!op || op->id != store_key_to_u64(k + n + 1)) {
		if (op)
			shoal__operation__free_unpacked(op, NULL);
		return SHOAL_E_STORE_CORRUPT;
	}
	ns = node_state(s, id);
	ns->ops = xrealloc(ns->ops, (ns->nops + 1) * sizeof *ns->ops);
	ns->ops[ns->nops++] = op;
	if (op->id > ns->last_op)
		ns->last_op = op->id;
	return 0;
}

static int
load_hold(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	services_t *s = arg;
	char id[NODE_ID_MAX + 1];
	node_state_t *ns;

	if (klen == 0 || klen > NODE_ID_MAX)
		return SHOAL_E_STORE_CORRUPT;
	memcpy(id, key, klen);
	id[klen] = '\0';
	ns = node_state(s, id);
	ns->hold = shoal__hold__unpack(NULL, vlen, val);
	return ns->hold ? 0 : SHOAL_E_STORE_CORRUPT;
}

/* A service's revisions and newest rollout. */
static int
load_history(store_txn_t *txn, service_t *svc)
{
	prefix_ctx_t p = { .desc = &shoal__revision__descriptor };
	uint8_t key[SERVICE_NAME_MAX + 9];
	size_t klen;
	int r;

	r = foreach_prefixed(txn, DB_REVISIONS, svc->rec->service, &p);
	if (r == 0 &&
	    (p.n == 0 ||
	        !revision_find(&(service_t){ .revs = (Shoal__Revision **)p.msgs,
	                           .nrevs = p.n },
	            svc->rec->revision)))
		r = SHOAL_E_STORE_CORRUPT;
	if (r < 0) {
		prefix_free(&p);
		return r;
	}
	svc->revs = (Shoal__Revision **)p.msgs;
	svc->nrevs = p.n;
	free(p.keys);
	if (!svc->rec->last_rollout)
		return 0;
	klen = rollout_key(svc->rec->service, svc->rec->last_rollout, key);
	r = store_get_msg(txn, DB_ROLLOUTS, key, klen,
	    &shoal__rollout__descriptor, (ProtobufCMessage **)&svc->ro);
	if (r == 0 &&
	    (!svc->ro->update ||
	        strcmp(svc->ro->service, svc->rec->service) != 0))
		r = SHOAL_E_STORE_CORRUPT;
	return r == SHOAL_E_NOT_FOUND ? SHOAL_E_STORE_CORRUPT : r;
}

static int
load(services_t *s)
{
	store_txn_t *txn;
	void *desired_ctx[2] = { s, NULL }, *status_ctx[2] = { s, s };
	int r;

	r = store_begin(s->store, false, &txn);
	if (r < 0)
		return r;
	r = store_foreach(txn, DB_SERVICES, NULL, 0, load_service, s);
	for (size_t i = 0; r == 0 && i < s->n; i++)
		r = load_history(txn, &s->v[i]);
	if (r == 0)
		r = store_foreach(txn, DB_DESIRED, NULL, 0, load_node,
		    desired_ctx);
	if (r == 0)
		r = store_foreach(txn, DB_STATUS, NULL, 0, load_node,
		    status_ctx);
	if (r == 0)
		r = store_foreach(txn, DB_OPS, NULL, 0, load_op, s);
	if (r == 0)
		r = store_foreach(txn, DB_HOLDS, NULL, 0, load_hold, s);
	store_abort(&txn);
	return r;
}

static void
service_free(service_t *svc)
{
	shoal__service_record__free_unpacked(svc->rec, NULL);
	for (size_t i = 0; i < svc->nrevs; i++)
		shoal__revision__free_unpacked(svc->revs[i], NULL);
	free(svc->revs);
	if (svc->ro)
		shoal__rollout__free_unpacked(svc->ro, NULL);
}

static void observe(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    rollout_obs_t *o, void *arg);
static void note(const Shoal__Rollout *ro, const Shoal__RolloutNode *n,
    const char *kind, const char *message, void *arg);

int
services_open(store_t *store, registry_t *reg, services_t **ret)
{
	services_t *s = xcalloc(1, sizeof *s);
	node_state_t *ns;
	int r;

	s->store = store;
	s->reg = reg;
	s->nodes = zhashx_new();
	if (!s->nodes)
		abort();
	zhashx_set_destructor(s->nodes, node_state_destroy);
	s->hooks =
	    (rollout_hooks_t){ .observe = observe, .note = note, .arg = s };
	r = load(s);
	if (r < 0) {
		services_close(&s);
		return r;
	}
	/* A crash between writing a desired state and the node's new
	 * generation leaves the generation behind: move it now. */
	for (ns = zhashx_first(s->nodes); ns; ns = zhashx_next(s->nodes)) {
		const char *id = zhashx_cursor(s->nodes);

		if (ns->desired)
			registry_set_generation(reg, id,
			    ns->desired->generation);
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ro && rollout_active(s->v[i].ro)) {
			rollout_restarted(s->v[i].ro, now_ms());
			log_service(LOG_INFO, NULL, s->v[i].rec->service,
			    s->v[i].ro->to_revision,
			    "service %s: resuming rollout %llu to "
			    "revision %llu (%s)",
			    s->v[i].rec->service,
			    (unsigned long long)s->v[i].ro->id,
			    (unsigned long long)s->v[i].ro->to_revision,
			    wire_rollout_state_name(s->v[i].ro->state));
		}
	*ret = s;
	return 0;
}

static void
notes_clear(services_t *s)
{
	for (size_t i = 0; i < s->nnotes; i++) {
		free(s->notes[i].node);
		free(s->notes[i].kind);
		free(s->notes[i].message);
	}
	free(s->notes);
	s->notes = NULL;
	s->nnotes = 0;
}

void
services_close(services_t **sp)
{
	services_t *s = *sp;

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		service_free(&s->v[i]);
	free(s->v);
	zhashx_destroy(&s->nodes);
	notes_clear(s);
	free(s);
	*sp = NULL;
}

/* -- rollouts: what the engine sees and says --------------------------- */

static const Shoal__ServiceAssignment *assignment_of(const node_state_t *ns,
    const char *name);
static const Shoal__ServiceStatus *status_of(const node_state_t *ns,
    const char *name);

static void
observe(const Shoal__Rollout *ro, const Shoal__RolloutNode *n, rollout_obs_t *o,
    void *arg)
{
	services_t *s = arg;
	service_t *svc = find_service(s, ro->service, NULL);
	const Shoal__Node *node = registry_find(s->reg, n->node);
	node_state_t *ns = zhashx_lookup(s->nodes, n->node);
	const Shoal__ServiceStatus *st = status_of(ns, ro->service);

	o->selected = svc && node && selects(target_revision(svc)->spec, node);
	/* An offline node's last report is history, not news. */
	o->fresh = st && node && ns->status->generation >= n->generation &&
	    node->state == SHOAL__NODE__STATE__ONLINE;
	if (st) {
		o->revision = st->revision;
		o->state = st->state;
		o->reason = st->reason;
		if (st->prestage) {
			o->prestage_revision = st->prestage->revision;
			o->prestage_state = st->prestage->state;
			o->prestage_reason = st->prestage->reason;
			o->bytes_done = st->prestage->bytes_done;
			o->bytes_total = st->prestage->bytes_total;
		} else if (st->revision == ro->to_revision) {
			o->bytes_done = st->bytes_done;
			o->bytes_total = st->bytes_total;
		}
	}
}

static void
note(const Shoal__Rollout *ro, const Shoal__RolloutNode *n, const char *kind,
    const char *message, void *arg)
{
	services_t *s = arg;
	note_t *e;

	s->notes = xrealloc(s->notes, (s->nnotes + 1) * sizeof *s->notes);
	e = &s->notes[s->nnotes++];
	e->node = n ? xstrdup(n->node) : NULL;
	e->kind = xstrdup(kind);
	e->message = xstrdup(message);
	if (n) /* one line a node: the events have them */
		log_service(LOG_DEBUG, n->node, ro->service, ro->to_revision,
		    "service %s: rollout %llu: %s", ro->service,
		    (unsigned long long)ro->id, message);
	else
		log_service(LOG_INFO, NULL, ro->service, ro->to_revision,
		    "service %s: %s", ro->service, message);
}

static void auto_snapshots(services_t *s, Shoal__Rollout *ro);
static int write_fresh(services_t *s, store_txn_t *txn);
static void settle_fresh(services_t *s, int ok);

/* Nodes whose step began get the generation their new state has. */
static void
stamp(services_t *s, Shoal__Rollout *ro, const change_t *ch, size_t nch)
{
	for (size_t i = 0; ro && i < ro->n_nodes; i++) {
		Shoal__RolloutNode *n = ro->nodes[i];
		const Shoal__Node *node;

		if (n->generation ||
		    n->state == SHOAL__ROLLOUT_NODE__STATE__PENDING)
			continue;
		/* The changes come in node id order (the registry's or
		 * the rollout's). */
		for (size_t lo = 0, hi = nch; lo < hi && !n->generation;) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(ch[mid].node, n->node);

			if (c == 0)
				n->generation = ch[mid].generation;
			else if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		node = registry_find(s->reg, n->node);
		if (!n->generation)
			n->generation =
			    node && node->generation ? node->generation : 1;
	}
}

#define ROLLOUTS_KEPT 50

/* The service's record, its newest rollout (and old, superseded by it),
 * the events its step noted. */
static int
write_service(services_t *s, store_txn_t *txn, const service_t *svc,
    const Shoal__Rollout *old)
{
	uint8_t key[SERVICE_NAME_MAX + 9];
	size_t klen;
	int r;

	r = store_put_msg(txn, DB_SERVICES, svc->rec->service,
	    strlen(svc->rec->service), &svc->rec->base);
	if (r == 0 && old) {
		klen = rollout_key(old->service, old->id, key);
		r = store_put_msg(txn, DB_ROLLOUTS, key, klen, &old->base);
	}
	if (r == 0 && svc->ro) {
		klen = rollout_key(svc->ro->service, svc->ro->id, key);
		r = store_put_msg(txn, DB_ROLLOUTS, key, klen, &svc->ro->base);
		if (r == 0 && svc->ro->id > ROLLOUTS_KEPT) {
			klen = rollout_key(svc->ro->service,
			    svc->ro->id - ROLLOUTS_KEPT, key);
			r = store_del(txn, DB_ROLLOUTS, key, klen);
		}
	}
	for (size_t i = 0; r == 0 && i < s->nnotes; i++)
		r = registry_write_event(s->reg, txn, s->notes[i].node,
		    s->notes[i].kind, svc->rec->service, s->notes[i].message);
	return r;
}

/*
 * Writes what a rollout step or command changed for svc in one
 * transaction, with every node's new desired state; then rings. On
 * failure the caller restores memory.
 */
static int
commit_service(services_t *s, service_t *svc, const Shoal__Rollout *old,
    int everyone, services_ring_fn ring, void *arg)
{
	change_t *ch;
	size_t nch;
	store_txn_t *txn = NULL;
	int r;

	auto_snapshots(s, svc->ro);
	ch = everyone || !svc->ro ? collect_changes(s, NULL, &nch)
	                          : collect_rollout_changes(s, svc->ro, &nch);
	stamp(s, svc->ro, ch, nch);
	r = desired_fits(ch, nch);
	if (r == 0)
		r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = write_service(s, txn, svc, old);
	if (r == 0)
		r = write_fresh(s, txn);
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	if (r == 0)
		r = store_commit(&txn);
	else if (txn)
		store_abort(&txn);
	settle_fresh(s, r == 0);
	if (r == 0)
		publish_changes(s, ch, nch, ring, arg);
	changes_free(ch, nch);
	notes_clear(s);
	return r;
}

/* The nodes a rollout of svc to revision to moves: those spec selects that
 * run another revision now, in id order. New nodes are not members: they
 * get the target at once. */
static rollout_member_t *
members(services_t *s, const service_t *svc, const Shoal__ServiceSpec *spec,
    uint64_t to, size_t *ret_n)
{
	size_t total = registry_count(s->reg), n = 0;
	rollout_member_t *m = xcalloc(total + 1, sizeof *m);

	for (size_t i = 0; i < total; i++) {
		const Shoal__Node *node = registry_at(s->reg, i);
		node_state_t *ns = zhashx_lookup(s->nodes, node->id);
		const Shoal__ServiceAssignment *a =
		    assignment_of(ns, svc->rec->service);
		const Shoal__RolloutNode *rn =
		    svc->ro ? rollout_find_node(svc->ro, node->id) : NULL;
		uint64_t from;

		if (!a || !selects(spec, node))
			continue;
		/* Staged only: it still serves what it ran before. */
		from = !a->active && rn ? rn->from_revision : a->revision;
		if (from == to)
			continue;
		m[n++] = (rollout_member_t){ node->id, from };
	}
	*ret_n = n;
	return m;
}

/*
 * Starts a rollout of svc (in memory) to revision rev; the one running is
 * superseded (*ret_old: its new record, owned; *ret_saved: the rollout as
 * it was, to restore on failure). No members: no rollout, rev is the
 * target at once.
 */
static void
start_rollout(services_t *s, service_t *svc, const Shoal__Revision *rev,
    const char *message, const char *by, int rollback, Shoal__Rollout **ret_old,
    Shoal__Rollout **ret_saved)
{
	uint64_t now = now_ms();
	size_t n;
	rollout_member_t *m = members(s, svc, rev->spec, rev->revision, &n);
	uint64_t from = target_of(svc);
	Shoal__Rollout *ro;
	char text[512];

	*ret_saved = svc->ro;
	*ret_old = NULL;
	if (svc->ro && rollout_active(svc->ro)) {
		*ret_old = wire_copy(&svc->ro->base);
		rollout_supersede(*ret_old, now);
		note(*ret_old, NULL, "rollout.finished",
		    "rollout superseded by a newer one", s);
	}
	svc->rec->target = rev->revision;
	if (n == 0) {
		/* Nothing to move: keep the newest rollout record as it was
		 * (its nodes' parts still say what they run). */
		svc->ro = *ret_old
		    ? wire_copy(&(*ret_old)->base)
		    : (*ret_saved ? wire_copy(&(*ret_saved)->base) : NULL);
		free(m);
		return;
	}
	ro = rollout_new(svc->rec->service, svc->rec->last_rollout + 1, from,
	    rev->revision, rev->spec->update, m, n, now);
	free(m);
	ro->rollback = rollback;
	ro->started_by = xstrdup(by ? by : "");
	ro->message = xstrdup(message ? message : "");
	svc->rec->last_rollout = ro->id;
	svc->ro = ro;
	snprintf(text, sizeof text,
	    "rollout %llu %sto revision %llu started (%s, %u node%s in %u "
	    "wave%s)%s%s",
	    (unsigned long long)ro->id, rollback ? "(rollback) " : "",
	    (unsigned long long)ro->to_revision,
	    wire_strategy_name(ro->update->strategy), (unsigned)ro->n_nodes,
	    ro->n_nodes == 1 ? "" : "s", ro->waves, ro->waves == 1 ? "" : "s",
	    by && by[0] ? " by " : "", by ? by : "");
	note(ro, NULL, "rollout.started", text, s);
	rollout_step(ro, now, &s->hooks);
}

/* -- changes ----------------------------------------------------------- */

static uint32_t
count_selected(services_t *s, const Shoal__ServiceSpec *spec)
{
	uint32_t n = 0;

	for (size_t i = 0; i < registry_count(s->reg); i++)
		n += selects(spec, registry_at(s->reg, i)) ? 1 : 0;
	return n;
}

/* Revision numbers are never reused, even across a delete: an agent that
 * was away during the delete must not take a new revision 1 for the old
 * one it still runs. DB_META remembers the last number of a deleted
 * service. */
static void
tombstone_key(const char *name, char *key, size_t size)
{
	snprintf(key, size, "lastrev/%s", name);
}

static uint64_t
last_revision(services_t *s, const char *name)
{
	char key[SERVICE_NAME_MAX + 16];
	store_txn_t *txn;
	uint64_t v = 0;

	tombstone_key(name, key, sizeof key);
	if (store_begin(s->store, false, &txn) == 0) {
		store_get_u64(txn, DB_META, key, &v);
		store_abort(&txn);
	}
	return v;
}

/* Whether a revision is still needed: the target, or one a node of the
 * newest rollout runs or moves to. */
static int
revision_pinned(const service_t *svc, uint64_t rev)
{
	if (rev == target_of(svc) || rev == svc->rec->revision)
		return 1;
	if (!svc->ro)
		return 0;
	if (rev == svc->ro->to_revision || rev == svc->ro->from_revision)
		return 1;
	for (size_t i = 0; i < svc->ro->n_nodes; i++)
		if (svc->ro->nodes[i]->from_revision == rev)
			return 1;
	return 0;
}

/* Deletes (in txn) the revisions beyond the history kept that nothing
 * pins; *ret_n of them, the oldest first, go from memory after the commit. */
static int
prune(service_t *svc, store_txn_t *txn, size_t *ret_n)
{
	uint8_t key[SERVICE_NAME_MAX + 9];
	size_t excess =
	    svc->nrevs > SERVICES_HISTORY ? svc->nrevs - SERVICES_HISTORY : 0;
	int r = 0;

	*ret_n = 0;
	for (size_t i = 0; i < excess && r == 0; i++) {
		if (revision_pinned(svc, svc->revs[i]->revision))
			break; /* keep the order simple: the oldest go first */
		r = store_del(txn, DB_REVISIONS, key,
		    revision_key(svc->rec->service, svc->revs[i]->revision,
		        key));
		++*ret_n;
	}
	return r;
}

int
services_apply(services_t *s, const Shoal__ServiceSpec *spec,
    const char *message, const char *by, services_ring_fn ring, void *arg,
    services_result_t *res)
{
	Shoal__Revision rev = SHOAL__REVISION__INIT;
	Shoal__ServiceRecord rec = SHOAL__SERVICE_RECORD__INIT;
	Shoal__Rollout *old = NULL, *saved = NULL;
	service_t *svc, keep = { 0 };
	uint8_t key[SERVICE_NAME_MAX + 9];
	char digest[65];
	change_t *ch = NULL;
	size_t i, nch = 0, klen, pruned = 0;
	store_txn_t *txn = NULL;
	uint64_t now = now_ms();
	int r, added = 0;

	memset(res, 0, sizeof *res);
	digest_hex(&spec->base, digest);
	svc = find_service(s, spec->service, &i);
	if (svc && strcmp(target_revision(svc)->digest, digest) == 0) {
		res->revision = target_of(svc);
		res->selected = count_selected(s, spec);
		res->rollout = svc->ro;
		return 0;
	}
	if (!svc && s->n >= SERVICES_MAX)
		return SHOAL_E_LIMIT;

	rev.service = spec->service;
	rev.revision =
	    svc ? svc->rec->revision + 1 : last_revision(s, spec->service) + 1;
	rev.spec = (Shoal__ServiceSpec *)spec;
	rev.created_ms = now;
	rev.message = (char *)(message ? message : "");
	rev.digest = digest;
	rec.service = spec->service;
	rec.revision = rev.revision;
	rec.target = rev.revision;
	rec.created_ms = svc ? svc->rec->created_ms : now;
	rec.updated_ms = now;

	/* In memory first, so the new desired states can be computed; undone
	 * below if the transaction fails. */
	if (svc) {
		keep = *svc;
		rec.last_rollout = svc->rec->last_rollout;
		rec.target = target_of(svc);
	} else {
		s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
		s->n++;
		svc = &s->v[i];
		memset(svc, 0, sizeof *svc);
		added = 1;
	}
	svc->rec = wire_copy(&rec.base);
	svc->revs = xcalloc(keep.nrevs + 1, sizeof *svc->revs);
	if (keep.nrevs)
		memcpy(svc->revs, keep.revs, keep.nrevs * sizeof *svc->revs);
	svc->revs[keep.nrevs] = wire_copy(&rev.base);
	svc->nrevs = keep.nrevs + 1;
	svc->ro = keep.ro;
	start_rollout(s, svc, svc->revs[svc->nrevs - 1], message, by, 0, &old,
	    &saved);
	auto_snapshots(s, svc->ro);
	ch = collect_changes(s, NULL, &nch);
	stamp(s, svc->ro, ch, nch);

	r = desired_fits(ch, nch);
	if (r == 0)
		r = store_begin(s->store, true, &txn);
	if (r == 0) {
		klen = revision_key(spec->service, rev.revision, key);
		r = store_put_msg(txn, DB_REVISIONS, key, klen, &rev.base);
	}
	if (r == 0)
		r = prune(svc, txn, &pruned);
	if (r == 0)
		r = write_service(s, txn, svc, old);
	if (r == 0)
		r = write_fresh(s, txn);
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	if (r == 0)
		r = store_commit(&txn);
	else if (txn)
		store_abort(&txn);
	settle_fresh(s, r == 0);
	notes_clear(s);
	if (old)
		shoal__rollout__free_unpacked(old, NULL);

	if (r < 0) {
		shoal__service_record__free_unpacked(svc->rec, NULL);
		shoal__revision__free_unpacked(svc->revs[svc->nrevs - 1], NULL);
		free(svc->revs);
		if (svc->ro && svc->ro != saved)
			shoal__rollout__free_unpacked(svc->ro, NULL);
		if (added) {
			memmove(&s->v[i], &s->v[i + 1],
			    (s->n - i - 1) * sizeof *s->v);
			s->n--;
		} else {
			*svc = keep;
		}
		changes_free(ch, nch);
		return r;
	}
	if (!added) {
		shoal__service_record__free_unpacked(keep.rec, NULL);
		free(keep.revs);
	}
	if (saved && saved != svc->ro)
		shoal__rollout__free_unpacked(saved, NULL);
	for (size_t k = 0; k < pruned; k++)
		shoal__revision__free_unpacked(svc->revs[k], NULL);
	memmove(svc->revs, svc->revs + pruned,
	    (svc->nrevs - pruned) * sizeof *svc->revs);
	svc->nrevs -= pruned;
	publish_changes(s, ch, nch, ring, arg);
	changes_free(ch, nch);
	res->revision = rev.revision;
	res->changed = 1;
	res->selected = count_selected(s, spec);
	res->rollout = svc->ro && svc->ro->to_revision == rev.revision &&
	        rollout_active(svc->ro)
	    ? svc->ro
	    : NULL;
	return 0;
}

/* Runs fn on svc's rollout in memory, then writes the result; on failure
 * everything is as before. */
static int
change_rollout(services_t *s, service_t *svc, Shoal__Rollout *old,
    Shoal__Rollout *saved, uint64_t saved_target, uint64_t saved_last,
    services_ring_fn ring, void *arg)
{
	int r;

	/* A rollout that ended just now settles the target; a superseded
	 * record (kept when a newer move had no node to take) does not. */
	if (svc->ro && !rollout_active(svc->ro) &&
	    svc->ro->state != SHOAL__ROLLOUT__STATE__SUPERSEDED)
		svc->rec->target = rollout_settled_revision(svc->ro);
	svc->rec->updated_ms = now_ms();
	/* A new target is what nodes outside the rollout get: recompute
	 * them all; else only the nodes the step moved. */
	r = commit_service(s, svc, old,
	    svc->rec->target != saved_target || old || !saved || !svc->ro ||
	        saved->id != svc->ro->id || saved->state != svc->ro->state,
	    ring, arg);
	if (old)
		shoal__rollout__free_unpacked(old, NULL);
	if (r < 0) {
		if (svc->ro && svc->ro != saved)
			shoal__rollout__free_unpacked(svc->ro, NULL);
		svc->ro = saved;
		svc->rec->target = saved_target;
		svc->rec->last_rollout = saved_last;
		return r;
	}
	if (saved && saved != svc->ro)
		shoal__rollout__free_unpacked(saved, NULL);
	return 0;
}

int
services_rollback(services_t *s, const char *name, uint64_t to,
    const char *message, const char *by, services_ring_fn ring, void *arg,
    services_result_t *res, char *err, size_t errlen)
{
	service_t *svc = find_service(s, name, NULL);
	Shoal__Rollout *old = NULL, *saved = NULL;
	const Shoal__Revision *rev;
	uint64_t target, last;
	int r;

	memset(res, 0, sizeof *res);
	if (!svc)
		return SHOAL_E_NOT_FOUND;
	target = target_of(svc);
	last = svc->rec->last_rollout;
	if (!to) {
		/* The previous revision: what the last finished move left. */
		if (svc->ro && svc->ro->to_revision == target &&
		    svc->ro->from_revision && svc->ro->from_revision != target)
			to = svc->ro->from_revision;
		for (size_t i = svc->nrevs; !to && i-- > 0;)
			if (svc->revs[i]->revision < target)
				to = svc->revs[i]->revision;
		if (!to) {
			snprintf(err, errlen,
			    "service '%s' has no revision "
			    "before %llu to roll back to",
			    name, (unsigned long long)target);
			return SHOAL_E_INVALID;
		}
	}
	rev = revision_find(svc, to);
	if (!rev) {
		snprintf(err, errlen,
		    "service '%s' keeps no revision %llu "
		    "(history keeps the newest %d)",
		    name, (unsigned long long)to, SERVICES_HISTORY);
		return SHOAL_E_NOT_FOUND;
	}
	if (to == target && !(svc->ro && rollout_active(svc->ro))) {
		snprintf(err, errlen, "service '%s' already runs revision %llu",
		    name, (unsigned long long)to);
		return SHOAL_E_INVALID;
	}
	start_rollout(s, svc, rev, message, by, 1, &old, &saved);
	r = change_rollout(s, svc, old, saved, target, last, ring, arg);
	if (r < 0)
		return r;
	res->revision = to;
	res->changed = 1;
	res->selected = count_selected(s, rev->spec);
	res->rollout =
	    svc->ro && svc->ro->to_revision == to && rollout_active(svc->ro)
	    ? svc->ro
	    : NULL;
	return 0;
}

int
services_rollout_control(services_t *s, const char *name,
    Shoal__RolloutControl__Action action, const char *by, services_ring_fn ring,
    void *arg, const Shoal__Rollout **ret, const char **why)
{
	service_t *svc = find_service(s, name, NULL);
	Shoal__Rollout *saved;
	int r;

	*why = NULL;
	if (!svc)
		return SHOAL_E_NOT_FOUND;
	if (!svc->ro) {
		*why = "the service has had no rollout";
		return SHOAL_E_INVALID;
	}
	saved = svc->ro;
	svc->ro = wire_copy(&saved->base);
	r = rollout_control(svc->ro, action, now_ms(), &s->hooks, why);
	if (r == 0 && by && by[0]) {
		/* Who did it goes with the note the control made. */
		for (size_t i = 0; i < s->nnotes; i++)
			if (strcmp(s->notes[i].kind, "rollout.control") == 0) {
				char *m = xasprintf("%s by %s",
				    s->notes[i].message, by);

				free(s->notes[i].message);
				s->notes[i].message = m;
			}
	}
	if (r < 0) {
		shoal__rollout__free_unpacked(svc->ro, NULL);
		svc->ro = saved;
		notes_clear(s);
		return r;
	}
	r = change_rollout(s, svc, NULL, saved, svc->rec->target,
	    svc->rec->last_rollout, ring, arg);
	*ret = svc->ro;
	return r;
}

/* The rollout as last written: what memory goes back to when writing a
 * step failed. */
static Shoal__Rollout *
reload_rollout(services_t *s, const service_t *svc)
{
	uint8_t key[SERVICE_NAME_MAX + 9];
	ProtobufCMessage *m = NULL;
	store_txn_t *txn;
	size_t klen = rollout_key(svc->rec->service, svc->ro->id, key);

	if (store_begin(s->store, false, &txn) < 0)
		return NULL;
	if (store_get_msg(txn, DB_ROLLOUTS, key, klen,
	        &shoal__rollout__descriptor, &m) < 0)
		m = NULL;
	store_abort(&txn);
	return (Shoal__Rollout *)m;
}

int
services_tick(services_t *s, services_ring_fn ring, void *arg)
{
	uint64_t now = now_ms();
	int ret = 0;

	for (size_t i = 0; i < s->n; i++) {
		service_t *svc = &s->v[i];
		uint64_t target = svc->rec->target;
		Shoal__Rollout *back;
		Shoal__Rollout__State was;
		int r;

		if (!svc->ro || !rollout_active(svc->ro))
			continue;
		was = svc->ro->state;
		/* Most ticks change nothing: no copy is made for them. */
		if (!rollout_step(svc->ro, now, &s->hooks)) {
			notes_clear(s);
			continue;
		}
		if (!rollout_active(svc->ro))
			svc->rec->target = rollout_settled_revision(svc->ro);
		svc->rec->updated_ms = now;
		/* A rollout that stops moving forward asks nobody to
		 * prestage any more: every node's state is recomputed. */
		r = commit_service(s, svc, NULL,
		    svc->rec->target != target || svc->resync ||
		        svc->ro->state != was,
		    ring, arg);
		if (r == 0) {
			svc->resync = 0;
			continue;
		}
		/* Back to what is on disk; the step comes again next tick. */
		log_service(LOG_ERR, NULL, svc->rec->service,
		    svc->ro->to_revision,
		    "service %s: cannot write rollout %llu: %s",
		    svc->rec->service, (unsigned long long)svc->ro->id,
		    shoal_strerror(r));
		svc->rec->target = target;
		back = reload_rollout(s, svc);
		if (back) {
			shoal__rollout__free_unpacked(svc->ro, NULL);
			svc->ro = back;
		} else {
			/* The stepped record stays, stamped: the next
			 * write recomputes every node. */
			svc->resync = 1;
		}
		ret = r;
	}
	return ret;
}

int
services_delete(services_t *s, const char *name, services_ring_fn ring,
    void *arg)
{
	prefix_ctx_t p = { 0 }, q = { 0 };
	service_t *svc, saved;
	change_t *ch;
	size_t i, nch;
	store_txn_t *txn;
	int r;

	svc = find_service(s, name, &i);
	if (!svc)
		return SHOAL_E_NOT_FOUND;
	saved = *svc;
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
	s->n--;
	ch = collect_changes(s, NULL, &nch);

	r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = foreach_prefixed(txn, DB_REVISIONS, name, &p);
	for (size_t k = 0; r == 0 && k < p.n; k++)
		r = store_del(txn, DB_REVISIONS, p.keys[k], p.len + 9);
	if (r == 0)
		r = foreach_prefixed(txn, DB_ROLLOUTS, name, &q);
	for (size_t k = 0; r == 0 && k < q.n; k++)
		r = store_del(txn, DB_ROLLOUTS, q.keys[k], q.len + 9);
	if (r == 0)
		r = store_del(txn, DB_SERVICES, name, strlen(name));
	if (r == 0) {
		char key[SERVICE_NAME_MAX + 16];

		tombstone_key(name, key, sizeof key);
		r = store_put_u64(txn, DB_META, key, saved.rec->revision);
	}
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	if (r == 0)
		r = store_commit(&txn);
	else
		store_abort(&txn);
	prefix_free(&p);
	prefix_free(&q);
	if (r < 0) {
		s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
		s->v[i] = saved;
		s->n++;
		changes_free(ch, nch);
		return r;
	}
	service_free(&saved);
	publish_changes(s, ch, nch, ring, arg);
	changes_free(ch, nch);
	return 0;
}

int
services_node_changed(services_t *s, const char *node_id, services_ring_fn ring,
    void *arg)
{
	change_t *ch;
	size_t nch;
	store_txn_t *txn;
	int r;

	ch = collect_changes(s, node_id, &nch);
	if (nch == 0) {
		changes_free(ch, nch);
		return 0;
	}
	r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	if (r == 0)
		r = store_commit(&txn);
	else
		store_abort(&txn);
	if (r == 0)
		publish_changes(s, ch, nch, ring, arg);
	changes_free(ch, nch);
	return r;
}

void
services_operations(services_t *s, const char *node_id, Shoal__Operation ***ret,
    size_t *ret_n)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	*ret = ns && ns->desired ? ns->desired->operations : NULL;
	*ret_n = ns && ns->desired ? ns->desired->n_operations : 0;
}

void
services_desired(services_t *s, const char *node_id,
    Shoal__ServiceAssignment ***ret, size_t *ret_n)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	*ret = ns && ns->desired ? ns->desired->services : NULL;
	*ret_n = ns && ns->desired ? ns->desired->n_services : 0;
}

static int take_results(services_t *s, const char *node_id,
    const Shoal__StatusReport *rep, services_ring_fn ring, void *arg);

int
services_report(services_t *s, const char *node_id,
    const Shoal__StatusReport *rep, services_ring_fn ring, void *arg)
{
	size_t n = shoal__status_report__get_packed_size(rep);
	uint8_t *buf = xmalloc(n + 1);
	node_state_t *ns;
	store_txn_t *txn;
	int r;

	shoal__status_report__pack(rep, buf);
	r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = store_put(txn, DB_STATUS, node_id, strlen(node_id), buf, n);
	if (r == 0)
		r = store_commit(&txn);
	else
		store_abort(&txn);
	if (r == 0) {
		ns = node_state(s, node_id);
		if (ns->status)
			shoal__status_report__free_unpacked(ns->status, NULL);
		ns->status = shoal__status_report__unpack(NULL, n, buf);
		if (!ns->status)
			abort();
	}
	free(buf);
	if (r == 0 && rep->n_operations) {
		r = take_results(s, node_id, rep, ring, arg);
		/* Not recorded: the agent sends this report again when the
		 * heartbeat reply names an older one. */
		if (r < 0)
			node_state(s, node_id)->status->seq = 0;
	}
	return r;
}

uint64_t
services_status_seq(services_t *s, const char *node_id)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	return ns && ns->status ? ns->status->seq : 0;
}

/* -- operations and snapshots ------------------------------------------ */

/* Operations waiting for one node at most: a node that never comes back
 * must not grow its desired state without bound. */
#define OPS_PENDING_MAX 16
/* Finished operations kept per node, for `snapshot list`. */
#define OPS_KEPT 50

static size_t
ops_pending(const node_state_t *ns)
{
	size_t n = 0;

	for (size_t i = 0; ns && i < ns->nops; i++)
		n += ns->ops[i]->state == SHOAL__OPERATION__STATE__PENDING;
	return n;
}

/*
 * Queues an operation for node in memory (written by write_fresh() with
 * the step that made it, taken back by settle_fresh() when that fails).
 * from: the snapshot a restore brings back; NULL for a new snapshot, whose
 * id is made here from the time and the operation's id.
 */
static Shoal__Operation *
queue_op(services_t *s, const char *node, Shoal__Operation__Kind kind,
    const Shoal__Snapshot *from, const char *message, const char *by,
    const char *service, uint64_t rollout)
{
	node_state_t *ns = node_state(s, node);
	Shoal__Operation op = SHOAL__OPERATION__INIT, *copy;
	uint64_t now = now_ms();
	char token[33], id[SNAPSHOT_ID_MAX + 1], stamp_s[32];
	time_t t = (time_t)(now / 1000);
	struct tm tm;

	for (size_t i = 0; i < 32; i++)
		token[i] = "0123456789abcdef"[random_below(16)];
	token[32] = '\0';
	op.id = ns->last_op + 1;
	op.token = token;
	op.kind = kind;
	if (from) {
		op.snapshot = from->id;
		op.services = from->services;
		op.n_services = from->n_services;
	} else {
		gmtime_r(&t, &tm);
		strftime(stamp_s, sizeof stamp_s, "%Y%m%dT%H%M%SZ", &tm);
		snprintf(id, sizeof id, "%s-%llu", stamp_s,
		    (unsigned long long)op.id);
		op.snapshot = id;
	}
	op.message = (char *)(message ? message : "");
	op.requested_by = (char *)(by ? by : "");
	op.created_ms = now;
	op.state = SHOAL__OPERATION__STATE__PENDING;
	op.service = (char *)(service ? service : "");
	op.rollout = rollout;
	op.node = (char *)node;
	copy = wire_copy(&op.base);
	ns->ops = xrealloc(ns->ops, (ns->nops + 1) * sizeof *ns->ops);
	ns->ops[ns->nops++] = copy;
	ns->last_op = op.id;
	s->fresh = xrealloc(s->fresh, (s->nfresh + 1) * sizeof *s->fresh);
	s->fresh[s->nfresh].ns = ns;
	snprintf(s->fresh[s->nfresh].node, sizeof s->fresh[0].node, "%s", node);
	s->fresh[s->nfresh++].op = copy;
	return copy;
}

static int
write_op(store_txn_t *txn, const char *node, const Shoal__Operation *op)
{
	uint8_t key[NODE_ID_MAX + 9];

	return store_put_msg(txn, DB_OPS, key, op_key(node, op->id, key),
	    &op->base);
}

static int
write_fresh(services_t *s, store_txn_t *txn)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < s->nfresh; i++)
		r = write_op(txn, s->fresh[i].node, s->fresh[i].op);
	return r;
}

/* After the write: kept (ok), or taken back out of memory. */
static void
settle_fresh(services_t *s, int ok)
{
	for (size_t i = s->nfresh; !ok && i-- > 0;) {
		node_state_t *ns = s->fresh[i].ns;

		/* Queued last, so the last of its node. */
		shoal__operation__free_unpacked(ns->ops[--ns->nops], NULL);
		ns->last_op--;
	}
	free(s->fresh);
	s->fresh = NULL;
	s->nfresh = 0;
}

/*
 * A snapshot of every node a rollout's step begins on, before the rollout
 * moves it: queued with the node's new desired state, which the agent
 * carries out before it applies anything of that state. Recorded in the
 * rollout (its node's snapshot) and in the events.
 */
static void
auto_snapshots(services_t *s, Shoal__Rollout *ro)
{
	for (size_t i = 0; ro && rollout_active(ro) && i < ro->n_nodes; i++) {
		Shoal__RolloutNode *rn = ro->nodes[i];
		const Shoal__Operation *op;
		char msg[256];

		if (rn->generation || rn->snapshot[0] || !rn->from_revision ||
		    (rn->state != SHOAL__ROLLOUT_NODE__STATE__PRESTAGING &&
		        rn->state != SHOAL__ROLLOUT_NODE__STATE__STAGING &&
		        rn->state != SHOAL__ROLLOUT_NODE__STATE__SWITCHING))
			continue;
		if (ops_pending(zhashx_lookup(s->nodes, rn->node)) >=
		    OPS_PENDING_MAX) {
			snprintf(msg, sizeof msg,
			    "no snapshot before rollout %llu: %d operations "
			    "already wait for the node",
			    (unsigned long long)ro->id, OPS_PENDING_MAX);
			note(ro, rn, "rollout.snapshot", msg, s);
			continue;
		}
		snprintf(msg, sizeof msg,
		    "before rollout %llu of %s (revision %llu to %llu)",
		    (unsigned long long)ro->id, ro->service,
		    (unsigned long long)rn->from_revision,
		    (unsigned long long)ro->to_revision);
		op = queue_op(s, rn->node, SHOAL__OPERATION__KIND__SNAPSHOT,
		    NULL, msg, "rollout", ro->service, ro->id);
		wire_set_text(&rn->snapshot, "%s", op->snapshot);
		snprintf(msg, sizeof msg,
		    "snapshot %s queued before rollout %llu", op->snapshot,
		    (unsigned long long)ro->id);
		note(ro, rn, "rollout.snapshot", msg, s);
	}
}

/* Writes the node's desired state (every node's: NULL) if it changed, the
 * operations queued and what else fn writes, in one transaction; then
 * rings. */
static int
commit_node(services_t *s, const char *node_id,
    int (*fn)(services_t *, store_txn_t *, void *), void *arg,
    services_ring_fn ring, void *ring_arg)
{
	size_t nch = 0;
	change_t *ch = collect_changes(s, node_id, &nch);
	store_txn_t *txn = NULL;
	int r;

	r = desired_fits(ch, nch);
	if (r == 0)
		r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = write_fresh(s, txn);
	if (r == 0 && fn)
		r = fn(s, txn, arg);
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	for (size_t i = 0; r == 0 && i < s->nnotes; i++)
		r = registry_write_event(s->reg, txn, s->notes[i].node,
		    s->notes[i].kind, "", s->notes[i].message);
	if (r == 0)
		r = store_commit(&txn);
	else if (txn)
		store_abort(&txn);
	settle_fresh(s, r == 0);
	if (r == 0)
		publish_changes(s, ch, nch, ring, ring_arg);
	changes_free(ch, nch);
	notes_clear(s);
	return r;
}

static void
reply_op(Shoal__ControlReply *rep, const Shoal__Operation *op)
{
	rep->operations = xrealloc(rep->operations,
	    (rep->n_operations + 1) * sizeof *rep->operations);
	rep->operations[rep->n_operations++] = wire_copy(&op->base);
}

int
services_snapshot_create(services_t *s, const Shoal__SnapshotCreate *req,
    services_ring_fn ring, void *arg, Shoal__ControlReply *rep, char *err,
    size_t errlen)
{
	size_t total = registry_count(s->reg), full = 0;
	const char *full_node = NULL;
	int r;

	for (size_t i = 0; i < total; i++) {
		const Shoal__Node *node = registry_at(s->reg, i);

		if (req->node[0]
		        ? strcmp(node->id, req->node) != 0
		        : !node_selected(node, req->selector, req->n_selector))
			continue;
		if (ops_pending(zhashx_lookup(s->nodes, node->id)) >=
		    OPS_PENDING_MAX) {
			/* A node long gone must not stop the fleet's
			 * snapshots: it is left out, and said so. */
			full++;
			full_node = full_node ? full_node : node->id;
			log_node(LOG_WARNING, node->id,
			    "node %s: no snapshot queued: %d operations "
			    "already wait for it",
			    node->id, OPS_PENDING_MAX);
			continue;
		}
		reply_op(rep,
		    queue_op(s, node->id, SHOAL__OPERATION__KIND__SNAPSHOT,
		        NULL, req->message, req->requested_by, NULL, 0));
	}
	if (s->nfresh == 0) {
		if (full)
			snprintf(err, errlen,
			    "node %s%s: %d operations already wait for it; "
			    "nothing was queued",
			    full_node, full > 1 ? " and others" : "",
			    OPS_PENDING_MAX);
		else if (req->node[0])
			snprintf(err, errlen, "no node '%s' is registered",
			    req->node);
		else
			snprintf(err, errlen,
			    "no registered node matches "
			    "the selector");
		return full ? SHOAL_E_LIMIT : SHOAL_E_NOT_FOUND;
	}
	/* Every node's state and every operation in one transaction. */
	r = commit_node(s, NULL, NULL, NULL, ring, arg);
	if (r < 0) {
		for (size_t i = 0; i < rep->n_operations; i++)
			shoal__operation__free_unpacked(rep->operations[i],
			    NULL);
		rep->n_operations = 0;
		snprintf(err, errlen, "cannot queue the snapshots: %s",
		    shoal_strerror(r));
	}
	return r;
}

/* The node's catalogue entry for id, as it last reported; NULL: none. */
static const Shoal__Snapshot *
reported_snapshot(const node_state_t *ns, const char *id)
{
	for (size_t i = 0; ns && ns->status && i < ns->status->n_snapshots; i++)
		if (strcmp(ns->status->snapshots[i]->id, id) == 0)
			return ns->status->snapshots[i];
	return NULL;
}

static Shoal__Hold *hold_from(services_t *s, const Shoal__Operation *op);

int
services_snapshot_restore(services_t *s, const Shoal__SnapshotRestore *req,
    services_ring_fn ring, void *arg, Shoal__ControlReply *rep, char *err,
    size_t errlen)
{
	const Shoal__Node *node = registry_find(s->reg, req->node);
	node_state_t *ns = zhashx_lookup(s->nodes, req->node);
	const Shoal__Snapshot *sn;
	const Shoal__Operation *op;
	int r;

	if (!node) {
		snprintf(err, errlen, "no node '%s' is registered", req->node);
		return SHOAL_E_NOT_FOUND;
	}
	sn = reported_snapshot(ns, req->snapshot);
	if (!sn) {
		snprintf(err, errlen,
		    "node %s has no snapshot '%s' (as it last reported; see "
		    "shoalctl snapshot list --node %s)",
		    req->node, req->snapshot, req->node);
		return SHOAL_E_NOT_FOUND;
	}
	if (sn->state != SHOAL__SNAPSHOT__STATE__READY) {
		snprintf(err, errlen, "snapshot %s on node %s is corrupt: %s",
		    sn->id, req->node, sn->reason);
		return SHOAL_E_INVALID;
	}
	for (size_t i = 0; ns && i < ns->nops; i++)
		if (ns->ops[i]->state == SHOAL__OPERATION__STATE__PENDING &&
		    ns->ops[i]->kind == SHOAL__OPERATION__KIND__RESTORE) {
			snprintf(err, errlen,
			    "node %s: restore of snapshot %s is still pending",
			    req->node, ns->ops[i]->snapshot);
			return SHOAL_E_INVALID;
		}
	if (ops_pending(ns) >= OPS_PENDING_MAX) {
		snprintf(err, errlen,
		    "node %s: %d operations already wait for it", req->node,
		    OPS_PENDING_MAX);
		return SHOAL_E_LIMIT;
	}
	for (size_t i = 0; i < sn->n_services; i++) {
		const service_t *svc =
		    find_service(s, sn->services[i]->service, NULL);

		if (!sn->services[i]->active) {
			snprintf(err, errlen,
			    "snapshot %s was taken while %s revision %llu was "
			    "staged, not serving: restoring it would switch to "
			    "a revision that never served there",
			    sn->id, sn->services[i]->service,
			    (unsigned long long)sn->services[i]->revision);
			return SHOAL_E_INVALID;
		}

		if (!svc) {
			snprintf(err, errlen,
			    "snapshot %s runs service %s, which the "
			    "coordinator no longer has",
			    sn->id, sn->services[i]->service);
			return SHOAL_E_INVALID;
		}
		if (!revision_find(svc, sn->services[i]->revision)) {
			snprintf(err, errlen,
			    "snapshot %s runs %s revision %llu, no longer in "
			    "the coordinator's history (it keeps %d)",
			    sn->id, svc->rec->service,
			    (unsigned long long)sn->services[i]->revision,
			    SERVICES_HISTORY);
			return SHOAL_E_INVALID;
		}
	}
	/* A rollout moving one of the node's services would fight the
	 * restore: let it finish, or abort it, first. */
	for (size_t i = 0; i < s->n; i++) {
		const service_t *svc = &s->v[i];

		if (svc->ro && rollout_active(svc->ro) &&
		    rollout_find_node(svc->ro, req->node)) {
			snprintf(err, errlen,
			    "service %s has rollout %llu running on node %s; "
			    "wait for it or abort it first",
			    svc->rec->service, (unsigned long long)svc->ro->id,
			    req->node);
			return SHOAL_E_INVALID;
		}
	}
	op = queue_op(s, req->node, SHOAL__OPERATION__KIND__RESTORE, sn, "",
	    req->requested_by, NULL, 0);
	/* The services as they are now: what changes before the node
	 * answers ends the hold on it. */
	((Shoal__Operation *)op)->hold = hold_from(s, op);
	reply_op(rep, op);
	r = commit_node(s, req->node, NULL, NULL, ring, arg);
	if (r < 0)
		snprintf(err, errlen, "cannot queue the restore: %s",
		    shoal_strerror(r));
	return r;
}

/* A restore the node carried out: it runs the snapshot's revisions, and
 * every other service not at all, until those services change. */
static Shoal__Hold *
hold_from(services_t *s, const Shoal__Operation *op)
{
	Shoal__Hold hold = SHOAL__HOLD__INIT, *copy;
	Shoal__HeldService *h = xcalloc(s->n + 1, sizeof *h);
	Shoal__HeldService **hp = xcalloc(s->n + 1, sizeof *hp);

	for (size_t i = 0; i < s->n; i++) {
		const service_t *svc = &s->v[i];

		shoal__held_service__init(&h[i]);
		h[i].service = svc->rec->service;
		for (size_t k = 0; k < op->n_services; k++)
			if (strcmp(op->services[k]->service,
			        svc->rec->service) == 0)
				h[i].revision = op->services[k]->revision;
		h[i].current = svc->rec->revision;
		h[i].target = target_of(svc);
		h[i].rollout = svc->rec->last_rollout;
		hp[i] = &h[i];
	}
	hold.services = hp;
	hold.n_services = s->n;
	hold.operation = op->id;
	hold.snapshot = op->snapshot;
	copy = wire_copy(&hold.base);
	free(hp);
	free(h);
	return copy;
}

typedef struct finish_ctx {
	const char *node;
	Shoal__Operation *op;
	Shoal__Hold *hold; /* a restore's: written too */
	uint64_t trim;     /* the finished operation to forget (0: none) */
} finish_ctx_t;

static int
write_finished(services_t *s, store_txn_t *txn, void *arg)
{
	finish_ctx_t *f = arg;
	uint8_t key[NODE_ID_MAX + 9];
	int r = write_op(txn, f->node, f->op);

	if (r == 0 && f->hold)
		r = store_put_msg(txn, DB_HOLDS, f->node, strlen(f->node),
		    &f->hold->base);
	if (r == 0 && f->trim)
		r = store_del(txn, DB_OPS, key, op_key(f->node, f->trim, key));
	return r;
}

/* The agent answered op (still pending): finished, written with the
 * node's new desired state (no longer listing it). */
static int
finish_op(services_t *s, const char *node_id, node_state_t *ns,
    Shoal__Operation *op, const Shoal__OperationResult *res,
    services_ring_fn ring, void *arg)
{
	Shoal__Operation before = *op;
	Shoal__Hold *old_hold = ns->hold;
	finish_ctx_t f = { .node = node_id, .op = op };
	const char *kind;
	char msg[WIRE_MAX_MESSAGE];
	size_t finished = 0;
	int r;

	op->state = res->ok ? SHOAL__OPERATION__STATE__DONE
	                    : SHOAL__OPERATION__STATE__FAILED;
	op->finished_ms = res->finished_ms ? res->finished_ms : now_ms();
	op->result = (char *)res->result;
	if (res->ok && op->kind == SHOAL__OPERATION__KIND__RESTORE) {
		f.hold =
		    op->hold ? wire_copy(&op->hold->base) : hold_from(s, op);
		ns->hold = f.hold;
	}
	for (size_t i = 0; i < ns->nops; i++)
		finished +=
		    ns->ops[i]->state != SHOAL__OPERATION__STATE__PENDING;
	if (finished > OPS_KEPT)
		for (size_t i = 0; i < ns->nops && !f.trim; i++)
			if (ns->ops[i]->state !=
			    SHOAL__OPERATION__STATE__PENDING)
				f.trim = ns->ops[i]->id;
	if (op->kind == SHOAL__OPERATION__KIND__SNAPSHOT)
		kind = res->ok ? "snapshot.taken" : "snapshot.failed";
	else
		kind = res->ok ? "snapshot.restored" : "restore.failed";
	snprintf(msg, sizeof msg, "snapshot %s: %s", op->snapshot, res->result);
	s->notes = xrealloc(s->notes, (s->nnotes + 1) * sizeof *s->notes);
	s->notes[s->nnotes++] = (note_t){ .node = xstrdup(node_id),
		.kind = xstrdup(kind),
		.message = xstrdup(msg) };
	r = commit_node(s, node_id, write_finished, &f, ring, arg);
	if (r < 0) {
		/* As before: the agent answers again with its next report. */
		*op = before;
		ns->hold = old_hold;
		if (f.hold)
			shoal__hold__free_unpacked(f.hold, NULL);
		return r;
	}
	op->result = xstrdup(res->result);
	if (before.result && before.result != protobuf_c_empty_string)
		free(before.result);
	if (f.hold && old_hold)
		shoal__hold__free_unpacked(old_hold, NULL);
	log_node(res->ok ? LOG_INFO : LOG_WARNING, node_id, "node %s: %s %s",
	    node_id, kind, msg);
	for (size_t i = 0; f.trim && i < ns->nops; i++)
		if (ns->ops[i]->id == f.trim) {
			shoal__operation__free_unpacked(ns->ops[i], NULL);
			memmove(&ns->ops[i], &ns->ops[i + 1],
			    (ns->nops - i - 1) * sizeof *ns->ops);
			ns->nops--;
			break;
		}
	return 0;
}

/* The answers in a status report to operations still pending. */
static int
take_results(services_t *s, const char *node_id, const Shoal__StatusReport *rep,
    services_ring_fn ring, void *arg)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);
	int ret = 0;

	for (size_t i = 0; ns && i < rep->n_operations; i++) {
		const Shoal__OperationResult *res = rep->operations[i];

		for (size_t k = 0; k < ns->nops; k++) {
			Shoal__Operation *op = ns->ops[k];
			int r;

			if (op->state != SHOAL__OPERATION__STATE__PENDING ||
			    strcmp(op->token, res->token) != 0)
				continue;
			r = finish_op(s, node_id, ns, op, res, ring, arg);
			if (r < 0) {
				log_node(LOG_ERR, node_id,
				    "node %s: cannot record the answer to "
				    "operation %llu: %s",
				    node_id, (unsigned long long)op->id,
				    shoal_strerror(r));
				ret = r;
			}
			break;
		}
	}
	return ret;
}

static void
add_snapshot_row(Shoal__ControlReply *rep, const char *node,
    const Shoal__Snapshot *sn, const char *state, const char *reason)
{
	Shoal__NodeSnapshot row = SHOAL__NODE_SNAPSHOT__INIT;

	row.node = (char *)node;
	row.snapshot = (Shoal__Snapshot *)sn;
	row.state = (char *)state;
	row.reason = (char *)(reason ? reason : "");
	rep->snapshots = xrealloc(rep->snapshots,
	    (rep->n_snapshots + 1) * sizeof *rep->snapshots);
	rep->snapshots[rep->n_snapshots++] = wire_copy(&row.base);
}

int
services_snapshots(services_t *s, const char *node_id, Shoal__ControlReply *rep)
{
	size_t total = registry_count(s->reg);
	int found = 0;

	for (size_t i = 0; i < total; i++) {
		const Shoal__Node *node = registry_at(s->reg, i);
		const node_state_t *ns = zhashx_lookup(s->nodes, node->id);

		if (node_id && strcmp(node->id, node_id) != 0)
			continue;
		found = 1;
		for (size_t k = 0;
		     ns && ns->status && k < ns->status->n_snapshots; k++) {
			const Shoal__Snapshot *sn = ns->status->snapshots[k];

			add_snapshot_row(rep, node->id, sn,
			    sn->state == SHOAL__SNAPSHOT__STATE__READY
			        ? "ready"
			        : "corrupt",
			    sn->reason);
		}
		for (size_t k = 0; ns && k < ns->nops; k++) {
			const Shoal__Operation *op = ns->ops[k];
			Shoal__Snapshot sn = SHOAL__SNAPSHOT__INIT;

			if (node_id)
				reply_op(rep, op);
			if (op->kind != SHOAL__OPERATION__KIND__SNAPSHOT ||
			    op->state == SHOAL__OPERATION__STATE__DONE ||
			    reported_snapshot(ns, op->snapshot))
				continue;
			sn.id = op->snapshot;
			sn.created_ms = op->created_ms;
			sn.message = op->message;
			sn.service = op->service;
			sn.rollout = op->rollout;
			add_snapshot_row(rep, node->id, &sn,
			    op->state == SHOAL__OPERATION__STATE__PENDING
			        ? "pending"
			        : "failed",
			    op->result);
		}
	}
	return node_id && !found ? SHOAL_E_NOT_FOUND : 0;
}

/* -- control replies --------------------------------------------------- */

static const Shoal__ServiceAssignment *
assignment_of(const node_state_t *ns, const char *name)
{
	if (!ns || !ns->desired)
		return NULL;
	for (size_t i = 0; i < ns->desired->n_services; i++)
		if (strcmp(ns->desired->services[i]->service, name) == 0)
			return ns->desired->services[i];
	return NULL;
}

static const Shoal__ServiceStatus *
status_of(const node_state_t *ns, const char *name)
{
	if (!ns || !ns->status)
		return NULL;
	for (size_t i = 0; i < ns->status->n_services; i++)
		if (strcmp(ns->status->services[i]->service, name) == 0)
			return ns->status->services[i];
	return NULL;
}

int
services_list(services_t *s, Shoal__ControlReply *rep)
{
	Shoal__ServiceInfo **v = xcalloc(s->n + 1, sizeof *v);

	for (size_t i = 0; i < s->n; i++) {
		const Shoal__Revision *cur = target_revision(&s->v[i]);
		Shoal__ServiceInfo *info = xcalloc(1, sizeof *info);

		shoal__service_info__init(info);
		info->service = cur->service;
		info->revision = cur->revision;
		info->image = cur->spec->image;
		info->updated_ms = s->v[i].rec->updated_ms;
		for (size_t k = 0; k < registry_count(s->reg); k++) {
			const Shoal__Node *node = registry_at(s->reg, k);
			node_state_t *ns = zhashx_lookup(s->nodes, node->id);
			const Shoal__ServiceStatus *st;

			if (!assignment_of(ns, cur->service))
				continue;
			info->nodes++;
			st = status_of(ns, cur->service);
			if (st && st->revision == cur->revision &&
			    st->state == SHOAL__SERVICE_STATUS__STATE__HEALTHY)
				info->healthy++;
		}
		v[i] = info;
	}
	rep->services = v;
	rep->n_services = s->n;
	return 0;
}

/* A status row and, when the node has not reported on the service yet, the
 * pending status it is shown with: freed together. */
typedef struct status_row {
	Shoal__NodeServiceStatus row;
	Shoal__ServiceStatus pending;
} status_row_t;

int
services_status(services_t *s, const char *name, Shoal__ControlReply *rep)
{
	service_t *svc = find_service(s, name, NULL);
	size_t total = registry_count(s->reg), n = 0;
	Shoal__NodeServiceStatus **v;

	if (!svc)
		return SHOAL_E_NOT_FOUND;
	v = xcalloc(total + 1, sizeof *v);
	for (size_t k = 0; k < total; k++) {
		const Shoal__Node *node = registry_at(s->reg, k);
		node_state_t *ns = zhashx_lookup(s->nodes, node->id);
		const Shoal__ServiceAssignment *a = assignment_of(ns, name);
		const Shoal__ServiceStatus *st = status_of(ns, name);
		status_row_t *row;

		if (!a)
			continue;
		row = xcalloc(1, sizeof *row);
		shoal__node_service_status__init(&row->row);
		row->row.node = node->id;
		if (st) {
			row->row.status = (Shoal__ServiceStatus *)st;
		} else {
			shoal__service_status__init(&row->pending);
			row->pending.service = a->service;
			row->pending.revision = a->revision;
			row->pending.state =
			    SHOAL__SERVICE_STATUS__STATE__PENDING;
			row->row.status = &row->pending;
		}
		v[n++] = &row->row;
	}
	rep->statuses = v;
	rep->n_statuses = n;
	rep->revision = target_of(svc);
	rep->target = target_of(svc);
	return 0;
}

static void
add_rollout(Shoal__ControlReply *rep, const Shoal__Rollout *ro)
{
	rep->rollouts = xrealloc(rep->rollouts,
	    (rep->n_rollouts + 1) * sizeof *rep->rollouts);
	rep->rollouts[rep->n_rollouts++] = wire_copy(&ro->base);
}

int
services_rollout(services_t *s, const char *name, Shoal__ControlReply *rep)
{
	service_t *svc = find_service(s, name, NULL);

	if (!svc)
		return SHOAL_E_NOT_FOUND;
	rep->revision = svc->rec->revision;
	rep->target = target_of(svc);
	if (svc->ro) {
		Shoal__Rollout *ro;

		add_rollout(rep, svc->ro);
		/* What each node has prepared, as it last said (kept out of
		 * the record: it changes with every report). */
		ro = rep->rollouts[rep->n_rollouts - 1];
		for (size_t i = 0; rollout_active(ro) && i < ro->n_nodes; i++) {
			rollout_obs_t o = { 0 };

			observe(ro, ro->nodes[i], &o, s);
			ro->nodes[i]->bytes_done = o.bytes_done;
			ro->nodes[i]->bytes_total = o.bytes_total;
		}
	}
	return 0;
}

void
services_reply_rollout(Shoal__ControlReply *rep, const Shoal__Rollout *ro)
{
	if (ro)
		add_rollout(rep, ro);
}

int
services_history(services_t *s, const char *name, Shoal__ControlReply *rep)
{
	prefix_ctx_t p = { .desc = &shoal__revision__descriptor };
	prefix_ctx_t q = { .desc = &shoal__rollout__descriptor };
	service_t *svc = find_service(s, name, NULL);
	store_txn_t *txn;
	int r;

	if (!svc)
		return SHOAL_E_NOT_FOUND;
	r = store_begin(s->store, false, &txn);
	if (r < 0)
		return r;
	r = foreach_prefixed(txn, DB_REVISIONS, name, &p);
	if (r == 0)
		r = foreach_prefixed(txn, DB_ROLLOUTS, name, &q);
	store_abort(&txn);
	/* Newest first. */
	rep->revisions = xcalloc(p.n + 1, sizeof *rep->revisions);
	for (size_t i = 0; i < p.n; i++)
		rep->revisions[i] = (Shoal__Revision *)p.msgs[p.n - 1 - i];
	rep->n_revisions = p.n;
	rep->rollouts = xcalloc(q.n + 1, sizeof *rep->rollouts);
	for (size_t i = 0; i < q.n; i++)
		rep->rollouts[i] = (Shoal__Rollout *)q.msgs[q.n - 1 - i];
	rep->n_rollouts = q.n;
	free(p.keys);
	free(p.msgs);
	free(q.keys);
	free(q.msgs);
	rep->revision = svc->rec->revision;
	rep->target = target_of(svc);
	return r;
}

int
services_plan(services_t *s, const Shoal__ServiceSpec *spec,
    Shoal__ControlReply *rep)
{
	service_t *svc = find_service(s, spec->service, NULL);
	size_t total = registry_count(s->reg), n = 0, np = 0;
	rollout_member_t *m = NULL;
	Shoal__Rollout *ro = NULL;
	char digest[65];
	uint64_t to;

	digest_hex(&spec->base, digest);
	if (svc && strcmp(target_revision(svc)->digest, digest) == 0) {
		rep->revision = rep->target = target_of(svc);
		return 0;
	}
	to = svc ? svc->rec->revision + 1 : last_revision(s, spec->service) + 1;
	rep->revision = to;
	rep->changed = 1;
	rep->selected = count_selected(s, spec);
	if (svc) {
		rep->target = target_of(svc);
		rep->revisions = xcalloc(1, sizeof *rep->revisions);
		rep->revisions[0] = wire_copy(&target_revision(svc)->base);
		rep->n_revisions = 1;
		m = members(s, svc, spec, to, &n);
	}
	ro = rollout_new(spec->service, 0, rep->target, to, spec->update, m, n,
	    now_ms());
	rep->plan = xcalloc(total + 1, sizeof *rep->plan);
	for (size_t k = 0; k < total; k++) {
		const Shoal__Node *node = registry_at(s->reg, k);
		const Shoal__RolloutNode *rn = rollout_find_node(ro, node->id);
		const Shoal__Revision *from =
		    rn && svc ? revision_find(svc, rn->from_revision) : NULL;
		node_state_t *ns = zhashx_lookup(s->nodes, node->id);
		Shoal__PlanNode *pn;

		if (!selects(spec, node))
			continue;
		if (!rn && svc && assignment_of(ns, spec->service))
			continue; /* runs it already */
		pn = xcalloc(1, sizeof *pn);
		shoal__plan_node__init(pn);
		pn->node = xstrdup(node->id);
		pn->wave = rn ? rn->wave : 0;
		pn->from_revision = rn ? rn->from_revision : 0;
		pn->canary = rn && ro->canaries && rn->wave == 0;
		pn->pull =
		    xstrdup(from && strcmp(from->spec->image, spec->image) == 0
		            ? ""
		            : spec->image);
		rep->plan[np++] = pn;
	}
	rep->n_plan = np;
	add_rollout(rep, ro);
	shoal__rollout__free_unpacked(ro, NULL);
	free(m);
	return 0;
}

void
services_free_reply(Shoal__ControlReply *rep)
{
	for (size_t i = 0; i < rep->n_services; i++)
		free(rep->services[i]);
	free(rep->services);
	for (size_t i = 0; i < rep->n_statuses; i++)
		free(rep->statuses[i]); /* the status_row_t it starts */
	free(rep->statuses);
	for (size_t i = 0; i < rep->n_revisions; i++)
		shoal__revision__free_unpacked(rep->revisions[i], NULL);
	free(rep->revisions);
	for (size_t i = 0; i < rep->n_rollouts; i++)
		shoal__rollout__free_unpacked(rep->rollouts[i], NULL);
	free(rep->rollouts);
	for (size_t i = 0; i < rep->n_plan; i++) {
		free(rep->plan[i]->node);
		free(rep->plan[i]->pull);
		free(rep->plan[i]);
	}
	free(rep->plan);
	for (size_t i = 0; i < rep->n_operations; i++)
		shoal__operation__free_unpacked(rep->operations[i], NULL);
	free(rep->operations);
	for (size_t i = 0; i < rep->n_snapshots; i++)
		shoal__node_snapshot__free_unpacked(rep->snapshots[i], NULL);
	free(rep->snapshots);
	rep->operations = NULL;
	rep->snapshots = NULL;
	rep->n_operations = rep->n_snapshots = 0;
	rep->services = NULL;
	rep->statuses = NULL;
	rep->revisions = NULL;
	rep->rollouts = NULL;
	rep->plan = NULL;
	rep->n_services = rep->n_statuses = rep->n_revisions = 0;
	rep->n_rollouts = rep->n_plan = 0;
}

void
services_summary(const services_t *s, size_t *services, size_t *rollouts_active)
{
	*services = s->n;
	*rollouts_active = 0;
	for (size_t i = 0; i < s->n; i++)
		*rollouts_active += s->v[i].ro && rollout_active(s->v[i].ro);
}

void
services_render_metrics(services_t *s, prom_t *p)
{
	uint64_t by_state[SHOAL__ROLLOUT__STATE__SUPERSEDED + 1] = { 0 };
	uint64_t active = 0;

	prom_family(p, "shoal_services", "gauge", "Services defined.");
	prom_count(p, "shoal_services", s->n);
	for (size_t i = 0; i < s->n; i++) {
		const Shoal__Rollout *ro = s->v[i].ro;

		if (!ro)
			continue;
		if ((size_t)ro->state < ARRAY_SIZE(by_state))
			by_state[ro->state]++;
		active += rollout_active(ro) != 0;
	}
	prom_family(p, "shoal_rollouts", "gauge",
	    "Services by the state of their newest rollout.");
	for (size_t k = 0; k < ARRAY_SIZE(by_state); k++) {
		prom_begin(p, "shoal_rollouts");
		prom_label(p, "state",
		    wire_rollout_state_name((Shoal__Rollout__State)k));
		prom_value_uint(p, by_state[k]);
	}
	prom_family(p, "shoal_rollouts_active", "gauge",
	    "Rollouts in progress (running, waiting for a promote, or "
	    "reverting).");
	prom_count(p, "shoal_rollouts_active", active);
}
