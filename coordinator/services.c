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

#include <czmq.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "coordinator/services.h"

/* Room left in a frame for the envelope around a desired state. */
#define DESIRED_MAX (WIRE_MAX_FRAME - 16 * 1024)

typedef struct service {
	Shoal__ServiceRecord *rec; /* owned */
	Shoal__Revision *cur;      /* owned: the current revision */
} service_t;

typedef struct node_state {
	Shoal__DesiredState *desired; /* owned; NULL: nothing assigned yet */
	Shoal__StatusReport *status;  /* owned; NULL: no report yet */
} node_state_t;

struct services {
	store_t *store;
	registry_t *reg;
	service_t *v; /* sorted by name */
	size_t n;
	zhashx_t *nodes; /* node id -> node_state_t */
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

static int
selects(const Shoal__ServiceSpec *spec, const Shoal__Node *node)
{
	for (size_t i = 0; i < spec->n_selector; i++) {
		int found = 0;

		for (size_t j = 0; j < node->n_labels && !found; j++)
			found = strcmp(spec->selector[i]->key,
			            node->labels[j]->key) == 0 &&
			    strcmp(spec->selector[i]->value,
			        node->labels[j]->value) == 0;
		if (!found)
			return 0;
	}
	return 1;
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
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		const Shoal__Revision *r = s->v[i].cur;

		if (!selects(r->spec, node))
			continue;
		shoal__service_assignment__init(&a[n]);
		a[n].service = r->service;
		a[n].revision = r->revision;
		a[n].spec = r->spec;
		a[n].active = 1;
		ap[n] = &a[n];
		n++;
	}
	ds.generation = gen;
	ds.services = ap;
	ds.n_services = n;
	*ret_len = shoal__desired_state__get_packed_size(&ds);
	*ret = xmalloc(*ret_len ? *ret_len : 1);
	shoal__desired_state__pack(&ds, *ret);
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
		differ = next->n_services > 0;
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
		node_state_t *ns = zhashx_lookup(s->nodes, node->id);
		const Shoal__DesiredState *cur = ns ? ns->desired : NULL;
		uint64_t gen = node->generation;
		uint8_t *packed;
		size_t len;

		if (node_id && strcmp(node->id, node_id) != 0)
			continue;
		if (cur && cur->generation > gen)
			gen = cur->generation;
		compute(s, node, gen + 1, &packed, &len);
		if (!assignments_differ(cur, packed, len)) {
			free(packed);
			continue;
		}
		v[n++] = (change_t){ .node = node->id,
			.generation = gen + 1,
			.packed = packed,
			.len = len };
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
	for (size_t i = 0; r == 0 && i < s->n; i++) {
		uint8_t key[SERVICE_NAME_MAX + 9];
		size_t klen = revision_key(s->v[i].rec->service,
		    s->v[i].rec->revision, key);

		r = store_get_msg(txn, DB_REVISIONS, key, klen,
		    &shoal__revision__descriptor,
		    (ProtobufCMessage **)&s->v[i].cur);
		if (r == SHOAL_E_NOT_FOUND)
			r = SHOAL_E_STORE_CORRUPT;
	}
	if (r == 0)
		r = store_foreach(txn, DB_DESIRED, NULL, 0, load_node,
		    desired_ctx);
	if (r == 0)
		r = store_foreach(txn, DB_STATUS, NULL, 0, load_node,
		    status_ctx);
	store_abort(&txn);
	return r;
}

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
	*ret = s;
	return 0;
}

void
services_close(services_t **sp)
{
	services_t *s = *sp;

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		shoal__service_record__free_unpacked(s->v[i].rec, NULL);
		if (s->v[i].cur)
			shoal__revision__free_unpacked(s->v[i].cur, NULL);
	}
	free(s->v);
	zhashx_destroy(&s->nodes);
	free(s);
	*sp = NULL;
}

/* -- changes ----------------------------------------------------------- */

static Shoal__Revision *
revision_copy(const Shoal__Revision *r)
{
	return wire_copy(&r->base);
}

static Shoal__ServiceRecord *
record_copy(const Shoal__ServiceRecord *r)
{
	return wire_copy(&r->base);
}

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

int
services_apply(services_t *s, const Shoal__ServiceSpec *spec,
    const char *message, services_ring_fn ring, void *arg,
    uint64_t *ret_revision, int *ret_changed, uint32_t *ret_selected)
{
	Shoal__Revision rev = SHOAL__REVISION__INIT;
	Shoal__ServiceRecord rec = SHOAL__SERVICE_RECORD__INIT;
	service_t *svc, saved = { 0 };
	uint8_t key[SERVICE_NAME_MAX + 9];
	char digest[65];
	change_t *ch = NULL;
	size_t i, nch = 0, klen;
	store_txn_t *txn = NULL;
	uint64_t now = now_ms();
	int r, added = 0;

	digest_hex(&spec->base, digest);
	svc = find_service(s, spec->service, &i);
	if (svc && strcmp(svc->cur->digest, digest) == 0) {
		*ret_revision = svc->cur->revision;
		*ret_changed = 0;
		*ret_selected = count_selected(s, spec);
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
	rec.created_ms = svc ? svc->rec->created_ms : now;
	rec.updated_ms = now;

	/* In memory first, so the new desired states can be computed; undone
	 * below if the transaction fails. */
	if (svc) {
		saved = *svc;
	} else {
		s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
		s->n++;
		svc = &s->v[i];
		added = 1;
	}
	svc->rec = record_copy(&rec);
	svc->cur = revision_copy(&rev);
	ch = collect_changes(s, NULL, &nch);

	r = desired_fits(ch, nch);
	if (r == 0)
		r = store_begin(s->store, true, &txn);
	if (r == 0) {
		klen = revision_key(spec->service, rev.revision, key);
		r = store_put_msg(txn, DB_REVISIONS, key, klen, &rev.base);
	}
	if (r == 0 && rev.revision > SERVICES_HISTORY) {
		klen = revision_key(spec->service,
		    rev.revision - SERVICES_HISTORY, key);
		r = store_del(txn, DB_REVISIONS, key, klen);
	}
	if (r == 0)
		r = store_put_msg(txn, DB_SERVICES, spec->service,
		    strlen(spec->service), &rec.base);
	if (r == 0)
		r = put_changes(s, txn, ch, nch);
	if (r == 0)
		r = store_commit(&txn);
	else if (txn)
		store_abort(&txn);

	if (r < 0) {
		shoal__service_record__free_unpacked(svc->rec, NULL);
		shoal__revision__free_unpacked(svc->cur, NULL);
		if (added) {
			memmove(&s->v[i], &s->v[i + 1],
			    (s->n - i - 1) * sizeof *s->v);
			s->n--;
		} else {
			*svc = saved;
		}
		changes_free(ch, nch);
		return r;
	}
	if (!added) {
		shoal__service_record__free_unpacked(saved.rec, NULL);
		shoal__revision__free_unpacked(saved.cur, NULL);
	}
	publish_changes(s, ch, nch, ring, arg);
	changes_free(ch, nch);
	*ret_revision = rev.revision;
	*ret_changed = 1;
	*ret_selected = count_selected(s, spec);
	return 0;
}

typedef struct prefix_ctx {
	const char *name;
	size_t len;
	uint8_t (*keys)[SERVICE_NAME_MAX + 9];
	size_t n;
} prefix_ctx_t;

static int
collect_revision_keys(const void *key, size_t klen, const void *val,
    size_t vlen, void *arg)
{
	prefix_ctx_t *p = arg;

	if (klen != p->len + 9 || memcmp(key, p->name, p->len) != 0 ||
	    ((const uint8_t *)key)[p->len] != '\0')
		return 1;
	p->keys = xrealloc(p->keys, (p->n + 1) * sizeof *p->keys);
	memcpy(p->keys[p->n++], key, klen);
	return 0;
}

int
services_delete(services_t *s, const char *name, services_ring_fn ring,
    void *arg)
{
	prefix_ctx_t p = { .name = name, .len = strlen(name) };
	uint8_t from[SERVICE_NAME_MAX + 1];
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

	memcpy(from, name, p.len + 1);
	r = store_begin(s->store, true, &txn);
	if (r == 0)
		r = store_foreach(txn, DB_REVISIONS, from, p.len + 1,
		    collect_revision_keys, &p);
	for (size_t k = 0; r == 0 && k < p.n; k++)
		r = store_del(txn, DB_REVISIONS, p.keys[k], p.len + 9);
	if (r == 0)
		r = store_del(txn, DB_SERVICES, name, p.len);
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
	free(p.keys);
	if (r < 0) {
		s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
		s->v[i] = saved;
		s->n++;
		changes_free(ch, nch);
		return r;
	}
	shoal__service_record__free_unpacked(saved.rec, NULL);
	shoal__revision__free_unpacked(saved.cur, NULL);
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
services_desired(services_t *s, const char *node_id,
    Shoal__ServiceAssignment ***ret, size_t *ret_n)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	*ret = ns && ns->desired ? ns->desired->services : NULL;
	*ret_n = ns && ns->desired ? ns->desired->n_services : 0;
}

int
services_report(services_t *s, const char *node_id,
    const Shoal__StatusReport *rep)
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
	return r;
}

uint64_t
services_status_seq(services_t *s, const char *node_id)
{
	node_state_t *ns = zhashx_lookup(s->nodes, node_id);

	return ns && ns->status ? ns->status->seq : 0;
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
		const Shoal__Revision *cur = s->v[i].cur;
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
	rep->revision = svc->cur->revision;
	return 0;
}

typedef struct history_ctx {
	const char *name;
	size_t len;
	Shoal__Revision **v;
	size_t n;
	int r;
} history_ctx_t;

static int
collect_revision(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg)
{
	history_ctx_t *h = arg;
	Shoal__Revision *r;

	if (klen != h->len + 9 || memcmp(key, h->name, h->len) != 0 ||
	    ((const uint8_t *)key)[h->len] != '\0')
		return 1;
	r = shoal__revision__unpack(NULL, vlen, val);
	if (!r)
		return SHOAL_E_STORE_CORRUPT;
	h->v = xrealloc(h->v, (h->n + 1) * sizeof *h->v);
	h->v[h->n++] = r;
	return 0;
}

int
services_history(services_t *s, const char *name, Shoal__ControlReply *rep)
{
	history_ctx_t h = { .name = name, .len = strlen(name) };
	uint8_t from[SERVICE_NAME_MAX + 1];
	store_txn_t *txn;
	int r;

	if (!find_service(s, name, NULL))
		return SHOAL_E_NOT_FOUND;
	memcpy(from, name, h.len + 1);
	r = store_begin(s->store, false, &txn);
	if (r < 0)
		return r;
	r = store_foreach(txn, DB_REVISIONS, from, h.len + 1, collect_revision,
	    &h);
	store_abort(&txn);
	/* Newest first. */
	for (size_t i = 0; i < h.n / 2; i++) {
		Shoal__Revision *t = h.v[i];

		h.v[i] = h.v[h.n - 1 - i];
		h.v[h.n - 1 - i] = t;
	}
	rep->revisions = h.v;
	rep->n_revisions = h.n;
	return r;
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
	rep->services = NULL;
	rep->statuses = NULL;
	rep->revisions = NULL;
	rep->n_services = rep->n_statuses = rep->n_revisions = 0;
}
