/* NetworkPolicy, incremental: the model held object by object, and a flush
 * that recomputes only what the changes since the last one touch
 * (policy.h, docs/policy.md "Incremental computation"). The decisions are
 * pw_policy_compute's, made from the shared pieces in policy.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

#define TRY(x) do { int _r = (x); if (_r) return _r; } while (0)

/* ---------------- a small hash map (bytes -> pointer) ---------------- */

struct hent {
	struct hent *next;
	uint64_t h;
	void *val;
	size_t klen;
	char key[];
};

struct hmap {
	struct hent **b;
	size_t cap, n;
};

static uint64_t mix64(uint64_t h)
{
	/* MurmurHash3's finalizer: every input bit reaches every output bit
	 * (the buckets are taken from the low bits). */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

	/* 8 bytes at a time: texts of pods run to megabytes at 10,000 pods,
	 * hashed at every model load. */
	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = mix64(h ^ w);
	}
	w = 0;
	memcpy(&w, s, n);
	return mix64(h ^ w);
}

static struct hent **hm_slot(const struct hmap *m, const void *k, size_t n, uint64_t h)
{
	struct hent **pp = &m->b[h & (m->cap - 1)];

	while (*pp && ((*pp)->h != h || (*pp)->klen != n || memcmp((*pp)->key, k, n)))
		pp = &(*pp)->next;
	return pp;
}

static void *hm_get(const struct hmap *m, const void *k, size_t n)
{
	struct hent *e;

	if (!m->cap)
		return NULL;
	e = *hm_slot(m, k, n, hash_bytes(k, n));
	return e ? e->val : NULL;
}

static int hm_grow(struct hmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 64;
	struct hent **nb = calloc(nc, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		for (struct hent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			e->next = nb[e->h & (nc - 1)];
			nb[e->h & (nc - 1)] = e;
		}
	free(m->b);
	m->b = nb;
	m->cap = nc;
	return 0;
}

/* Inserts or replaces. */
static int hm_put(struct hmap *m, const void *k, size_t n, void *val)
{
	uint64_t h = hash_bytes(k, n);
	struct hent **pp, *e;

	if (m->n + 1 > m->cap)
		TRY(hm_grow(m));
	pp = hm_slot(m, k, n, h);
	if (*pp) {
		(*pp)->val = val;
		return 0;
	}
	e = malloc(sizeof(*e) + n);
	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->h = h;
	e->val = val;
	e->klen = n;
	memcpy(e->key, k, n);
	*pp = e;
	m->n++;
	return 0;
}

static void *hm_del(struct hmap *m, const void *k, size_t n)
{
	struct hent **pp, *e;
	void *val;

	if (!m->cap)
		return NULL;
	pp = hm_slot(m, k, n, hash_bytes(k, n));
	e = *pp;
	if (!e)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e);
	m->n--;
	return val;
}

static void hm_free(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		for (struct hent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

#define HM_EACH(m, e) \
	for (size_t _i = 0; _i < (m)->cap; _i++) \
		for (struct hent *e = (m)->b[_i], *_nx = e ? e->next : NULL; e; e = _nx, _nx = e ? e->next : NULL)

/* Room for need more elements of size in *v (n used of *cap). */
static int grow(void **v, int n, int *cap, size_t size, int need)
{
	int nc;
	void *nv;

	if (n + need <= *cap)
		return 0;
	nc = (n + need) * 2;
	nv = realloc(*v, (size_t)nc * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

/* A growable array of pointers (work lists). */
struct plist {
	void **v;
	int n, cap;
};

static int pl_add(struct plist *l, void *p)
{
	TRY(grow((void **)&l->v, l->n, &l->cap, sizeof(*l->v), 1));
	l->v[l->n++] = p;
	return 0;
}

/* ---------------- the objects ---------------- */

/* A distinct label set (namespace, pod labels, namespace labels). */
struct ident {
	char *canon;
	uint32_t id;
	int refs;
	bool fresh;                 /* created since the last flush */
	char ns[64];
	struct pw_labels labels, ns_labels;   /* copies */
	struct pw_named_port *ports;          /* of its pods, repeated per pod */
	int n_ports, cap_ports;
};

/* A prefix an ipBlock names (cidr or except). */
struct cidr_obj {
	struct pw_cidr c;
	int refs;
	uint32_t id;                /* 0: not handed out yet */
};

/* One key of pw_pol_ids with everything that wants it (the lowest wins). */
struct idrow {
	struct pw_pol_ids_key k;
	uint32_t *vals;
	int n, cap;
	bool written, dirty;
	uint32_t wval;
};

/* A pod of this node (IPAM) and the entries last computed for it. */
struct lpod {
	uint32_t ip;
	char ns[64];
	char name[PW_K8S_NAME_MAX];
	bool present, dirty;
	struct pw_policy_entry *rows;
	int n_rows;
	bool has_ep;
	struct pw_pol_ep_entry ep;
};

/* A pod as identities see it: its address and label set. */
struct member {
	uint32_t ip;
	struct ident *id;
	struct lpod *lp;            /* a local pod: its entries */
};

/* Everything named ns/name: the model's pod, the local pods of that name,
 * and the members they make (the local pods, or else the model pod). */
struct group {
	char ns[64];
	char name[PW_K8S_NAME_MAX];
	struct pw_pod_model *model;
	struct lpod **locals;
	int n_locals, cap_locals;
	struct member *members;
	int n_members;
	bool dirty;
};

struct ipol {
	struct pw_netpol p;
	uint32_t **sets;            /* per peer (ingress rules' peers, then egress'), its identities */
	int *n_sets, *cap_sets;
	int n_slots;
	bool fresh;                 /* sets not computed yet */
	bool egress_named;          /* an egress rule names a port */
};

struct nsobj {
	struct pw_ns_model m;
};

/* Where an element stood in the text last loaded: the next text is first
 * compared element by element at the same index (a sequential memcmp),
 * before a hash lookup of the element's text. */
struct pspan {
	size_t off, len;
	struct elem *el;
};

/* A model element as last loaded from JSON (keyed by its text). */
struct elem {
	char ns[64];
	char name[PW_K8S_NAME_MAX];
	unsigned gen;               /* the load that last saw it */
};

struct pw_policy_inc {
	bool empty_without_policies;
	bool had_policies;          /* at the last flush */
	struct hmap ns;             /* name -> nsobj */
	struct hmap groups;         /* "ns/name" -> group */
	struct hmap locals;         /* ip -> lpod */
	struct hmap idents;         /* canon -> ident */
	struct hmap id_used;        /* identity number -> ident or cidr_obj */
	struct hmap cidrs;          /* pw_cidr -> cidr_obj */
	struct hmap idrows;         /* pw_pol_ids_key -> idrow */
	struct hmap pols;           /* policy id -> ipol */
	struct plist retired;       /* ipol replaced or deleted since the last flush */
	struct plist dirty_groups, dirty_locals, dirty_idrows, dirty_ns;
	bool ports_changed;         /* some identity's named ports changed */
	struct hmap elems[3];       /* per section: element text -> elem (load_json) */
	struct hmap elem_keys[3];   /* per section: object key -> elem */
	unsigned gen;
	char *last_json;            /* the text last loaded whole, NULL if none or failed */
	size_t last_len;
	struct pspan *spans[3];     /* per section: its elements in last_json, in order */
	int n_spans[3];
};

static const struct pw_labels no_labels = { NULL, 0 };

static int group_key(const char *ns, const char *name, char *out, size_t size)
{
	return snprintf(out, size, "%s/%s", ns, name);
}

static struct group *group_get(struct pw_policy_inc *e, const char *ns, const char *name, bool create)
{
	char k[64 + PW_K8S_NAME_MAX + 2];
	int n = group_key(ns, name, k, sizeof(k));
	struct group *g = hm_get(&e->groups, k, (size_t)n);

	if (g || !create)
		return g;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	snprintf(g->ns, sizeof(g->ns), "%s", ns);
	snprintf(g->name, sizeof(g->name), "%s", name);
	if (hm_put(&e->groups, k, (size_t)n, g)) {
		free(g);
		return NULL;
	}
	return g;
}

static int mark_group(struct pw_policy_inc *e, struct group *g)
{
	if (g->dirty)
		return 0;
	g->dirty = true;
	return pl_add(&e->dirty_groups, g);
}

static int mark_local(struct pw_policy_inc *e, struct lpod *lp)
{
	if (lp->dirty)
		return 0;
	lp->dirty = true;
	return pl_add(&e->dirty_locals, lp);
}

static int mark_idrow(struct pw_policy_inc *e, struct idrow *r)
{
	if (r->dirty)
		return 0;
	r->dirty = true;
	return pl_add(&e->dirty_idrows, r);
}

/* ---------------- pw_pol_ids rows ---------------- */

static struct idrow *idrow_get(struct pw_policy_inc *e, uint32_t addr, uint8_t prefix)
{
	struct pw_pol_ids_key k;
	struct idrow *r;

	memset(&k, 0, sizeof(k));
	k.prefixlen = prefix;
	pw_ip4_to_bytes(addr, k.addr);
	r = hm_get(&e->idrows, &k, sizeof(k));
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->k = k;
	if (hm_put(&e->idrows, &k, sizeof(k), r)) {
		free(r);
		return NULL;
	}
	return r;
}

static int idrow_add(struct pw_policy_inc *e, uint32_t addr, uint8_t prefix, uint32_t identity)
{
	struct idrow *r = idrow_get(e, addr, prefix);

	if (!r)
		return -ENOMEM;
	TRY(grow((void **)&r->vals, r->n, &r->cap, sizeof(*r->vals), 1));
	r->vals[r->n++] = identity;
	return mark_idrow(e, r);
}

static int idrow_remove(struct pw_policy_inc *e, uint32_t addr, uint8_t prefix, uint32_t identity)
{
	struct idrow *r = idrow_get(e, addr, prefix);

	if (!r)
		return -ENOMEM;
	for (int i = 0; i < r->n; i++)
		if (r->vals[i] == identity) {
			r->vals[i] = r->vals[--r->n];
			break;
		}
	return mark_idrow(e, r);
}

/* ---------------- identities ---------------- */

static int labels_copy(struct pw_labels *dst, const struct pw_labels *src)
{
	dst->n = src->n;
	dst->v = malloc((size_t)src->n * sizeof(*dst->v) + 1);
	if (!dst->v)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->v, src->v, (size_t)src->n * sizeof(*dst->v));
	return 0;
}

static void ident_destroy(struct pw_policy_inc *e, struct ident *id)
{
	hm_del(&e->idents, id->canon, strlen(id->canon));
	if (id->id)
		hm_del(&e->id_used, &id->id, sizeof(id->id));
	free(id->canon);
	free(id->labels.v);
	free(id->ns_labels.v);
	free(id->ports);
	free(id);
}

/* The first free number from want in [lo, hi], as pw_policy_compute's
 * claim does. */
static uint32_t claim_id(struct pw_policy_inc *e, uint32_t want, uint32_t lo, uint32_t hi)
{
	while (hm_get(&e->id_used, &want, sizeof(want)))
		want = want == hi ? lo : want + 1;
	return want;
}

static struct ident *ident_ref(struct pw_policy_inc *e, const char *ns, const struct pw_labels *labels,
			       const struct pw_labels *ns_labels)
{
	char *canon = pw_policy_canon(ns, labels, ns_labels);
	struct ident *id;

	if (!canon)
		return NULL;
	id = hm_get(&e->idents, canon, strlen(canon));
	if (id) {
		free(canon);
		id->refs++;
		return id;
	}
	id = calloc(1, sizeof(*id));
	if (!id || labels_copy(&id->labels, labels) || labels_copy(&id->ns_labels, ns_labels) ||
	    hm_put(&e->idents, canon, strlen(canon), id)) {
		if (id) {
			free(id->labels.v);
			free(id->ns_labels.v);
		}
		free(id);
		free(canon);
		return NULL;
	}
	id->canon = canon;
	snprintf(id->ns, sizeof(id->ns), "%s", ns);
	id->id = claim_id(e, pw_policy_pod_id_hint(canon), PW_ID_FIRST_POD, PW_ID_FIRST_CIDR - 1);
	if (hm_put(&e->id_used, &id->id, sizeof(id->id), id)) {
		id->id = 0;
		ident_destroy(e, id);
		return NULL;
	}
	id->fresh = true;
	id->refs = 1;
	return id;
}

static int ident_add_ports(struct ident *id, const struct pw_pod_model *pm)
{
	if (!pm || !pm->n_ports)
		return 0;
	TRY(grow((void **)&id->ports, id->n_ports, &id->cap_ports, sizeof(*id->ports), pm->n_ports));
	memcpy(id->ports + id->n_ports, pm->ports, (size_t)pm->n_ports * sizeof(*pm->ports));
	id->n_ports += pm->n_ports;
	return 0;
}

static void ident_remove_ports(struct ident *id, const struct pw_pod_model *pm)
{
	for (int i = 0; pm && i < pm->n_ports; i++)
		for (int j = 0; j < id->n_ports; j++)
			if (!memcmp(&id->ports[j], &pm->ports[i], sizeof(pm->ports[i]))) {
				id->ports[j] = id->ports[--id->n_ports];
				break;
			}
}

/* ---------------- groups: pods by namespace/name ---------------- */

static const struct pw_labels *ns_labels_of(struct pw_policy_inc *e, const char *ns)
{
	struct nsobj *o = hm_get(&e->ns, ns, strlen(ns));

	return o ? &o->m.labels : &no_labels;
}

static const struct pw_labels *group_labels(const struct group *g)
{
	return g->model ? &g->model->labels : &no_labels;
}

/* Takes the group's members out (they were made with g->model): their
 * identities lose a reference (the flush collects those left at none),
 * their addresses and, for local pods, entries are to be recomputed. */
static int group_drop_members(struct pw_policy_inc *e, struct group *g)
{
	for (int i = 0; i < g->n_members; i++) {
		struct member *mb = &g->members[i];

		TRY(idrow_remove(e, mb->ip, 32, mb->id->id));
		if (g->model && g->model->n_ports) {
			ident_remove_ports(mb->id, g->model);
			e->ports_changed = true;
		}
		mb->id->refs--;
		if (mb->lp)
			TRY(mark_local(e, mb->lp));
	}
	free(g->members);
	g->members = NULL;
	g->n_members = 0;
	return 0;
}

/* Something the group's members depend on is about to change: take them
 * out now, while they match what they were made of; the flush rebuilds them. */
static int group_touch(struct pw_policy_inc *e, struct group *g)
{
	if (g->dirty)
		return 0;
	TRY(group_drop_members(e, g));
	return mark_group(e, g);
}

static int group_add_member(struct pw_policy_inc *e, struct group *g, uint32_t ip, struct lpod *lp)
{
	struct member *mb = &g->members[g->n_members];

	mb->id = ident_ref(e, g->ns, group_labels(g), ns_labels_of(e, g->ns));
	if (!mb->id)
		return -ENOMEM;
	g->n_members++;
	mb->ip = ip;
	mb->lp = lp;
	if (g->model && g->model->n_ports) {
		TRY(ident_add_ports(mb->id, g->model));
		e->ports_changed = true;
	}
	TRY(idrow_add(e, ip, 32, mb->id->id));
	return lp ? mark_local(e, lp) : 0;
}

/* The members as the group is now: each local pod, or else the model pod
 * when it has an address (pw_policy_compute's collect_pods). */
static int group_build_members(struct pw_policy_inc *e, struct group *g)
{
	g->members = calloc((size_t)g->n_locals + 1, sizeof(*g->members));
	if (!g->members)
		return -ENOMEM;
	for (int i = 0; i < g->n_locals; i++)
		TRY(group_add_member(e, g, g->locals[i]->ip, g->locals[i]));
	if (!g->n_locals && g->model && g->model->ip)
		TRY(group_add_member(e, g, g->model->ip, NULL));
	return 0;
}

static void group_destroy(struct pw_policy_inc *e, struct group *g)
{
	char k[64 + PW_K8S_NAME_MAX + 2];
	int n = group_key(g->ns, g->name, k, sizeof(k));

	hm_del(&e->groups, k, (size_t)n);
	if (g->model)
		pw_policy_pod_free(g->model);
	free(g->model);
	free(g->locals);
	free(g->members);
	free(g);
}

/* ---------------- model changes ---------------- */

int pw_policy_inc_set_ns(struct pw_policy_inc *e, struct pw_ns_model *ns)
{
	struct nsobj *o = hm_get(&e->ns, ns->name, strlen(ns->name));
	char *copy;

	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || hm_put(&e->ns, ns->name, strlen(ns->name), o)) {
			free(o);
			return -ENOMEM;
		}
	} else {
		pw_policy_ns_free(&o->m);
	}
	o->m = *ns;
	memset(ns, 0, sizeof(*ns));
	copy = strdup(o->m.name);
	return copy ? pl_add(&e->dirty_ns, copy) : -ENOMEM;
}

int pw_policy_inc_del_ns(struct pw_policy_inc *e, const char *name)
{
	struct nsobj *o = hm_del(&e->ns, name, strlen(name));
	char *copy;

	if (!o)
		return -ENOENT;
	copy = strdup(name);
	pw_policy_ns_free(&o->m);
	free(o);
	return copy ? pl_add(&e->dirty_ns, copy) : -ENOMEM;
}

static int group_replace_model(struct pw_policy_inc *e, struct group *g, struct pw_pod_model *pm)
{
	TRY(group_touch(e, g));
	if (g->model) {
		pw_policy_pod_free(g->model);
		free(g->model);
	}
	g->model = pm;
	return 0;
}

int pw_policy_inc_set_pod(struct pw_policy_inc *e, struct pw_pod_model *pod)
{
	struct group *g = group_get(e, pod->ns, pod->name, true);
	struct pw_pod_model *pm = malloc(sizeof(*pm));

	if (!g || !pm) {
		free(pm);
		return -ENOMEM;
	}
	*pm = *pod;
	memset(pod, 0, sizeof(*pod));
	return group_replace_model(e, g, pm);
}

int pw_policy_inc_del_pod(struct pw_policy_inc *e, const char *ns, const char *name)
{
	struct group *g = group_get(e, ns, name, false);

	if (!g || !g->model)
		return -ENOENT;
	return group_replace_model(e, g, NULL);
}

static int group_unlink_local(struct pw_policy_inc *e, struct lpod *lp)
{
	struct group *g = group_get(e, lp->ns, lp->name, false);

	if (!g)
		return 0;
	TRY(group_touch(e, g));
	for (int i = 0; i < g->n_locals; i++)
		if (g->locals[i] == lp) {
			g->locals[i] = g->locals[--g->n_locals];
			break;
		}
	return 0;
}

static int group_link_local(struct pw_policy_inc *e, struct lpod *lp)
{
	struct group *g = group_get(e, lp->ns, lp->name, true);

	if (!g)
		return -ENOMEM;
	TRY(group_touch(e, g));
	TRY(grow((void **)&g->locals, g->n_locals, &g->cap_locals, sizeof(*g->locals), 1));
	g->locals[g->n_locals++] = lp;
	return 0;
}

int pw_policy_inc_set_local(struct pw_policy_inc *e, const struct pw_local_pod *local, int n)
{
	struct hmap now = { 0 };
	int ret = 0;

	for (int i = 0; i < n && !ret; i++)
		if (local[i].ip)
			ret = hm_put(&now, &local[i].ip, sizeof(local[i].ip), (void *)&local[i]);
	/* Gone or renamed. */
	HM_EACH(&e->locals, it) {
		struct lpod *lp = it->val;
		const struct pw_local_pod *l = hm_get(&now, &lp->ip, sizeof(lp->ip));

		if (ret || !lp->present || (l && !strcmp(l->ns, lp->ns) && !strcmp(l->name, lp->name)))
			continue;
		ret = group_unlink_local(e, lp);
		lp->present = false;
		if (!ret)
			ret = mark_local(e, lp);
	}
	/* New (or renamed). */
	for (int i = 0; i < n && !ret; i++) {
		struct lpod *lp;

		if (!local[i].ip || hm_get(&now, &local[i].ip, sizeof(local[i].ip)) != &local[i])
			continue;   /* no address, or a repeated one (the last counts) */
		lp = hm_get(&e->locals, &local[i].ip, sizeof(local[i].ip));
		if (lp && lp->present)
			continue;
		if (!lp) {
			lp = calloc(1, sizeof(*lp));
			if (!lp || hm_put(&e->locals, &local[i].ip, sizeof(local[i].ip), lp)) {
				free(lp);
				ret = -ENOMEM;
				break;
			}
			lp->ip = local[i].ip;
		}
		snprintf(lp->ns, sizeof(lp->ns), "%s", local[i].ns);
		snprintf(lp->name, sizeof(lp->name), "%s", local[i].name);
		lp->present = true;
		ret = group_link_local(e, lp);
		if (!ret)
			ret = mark_local(e, lp);
	}
	hm_free(&now);
	return ret;
}

/* ---------------- policies ---------------- */

static void ipol_destroy(struct ipol *p)
{
	for (int i = 0; i < p->n_slots; i++)
		free(p->sets[i]);
	free(p->sets);
	free(p->n_sets);
	free(p->cap_sets);
	pw_policy_netpol_free(&p->p);
	free(p);
}

static int cidr_ref(struct pw_policy_inc *e, const struct pw_cidr *c, int delta)
{
	struct pw_cidr k;
	struct cidr_obj *o;

	memset(&k, 0, sizeof(k));   /* the key's padding is hashed too */
	k.addr = c->addr;
	k.prefix = c->prefix;
	o = hm_get(&e->cidrs, &k, sizeof(k));

	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || hm_put(&e->cidrs, &k, sizeof(k), o)) {
			free(o);
			return -ENOMEM;
		}
		o->c = k;
	}
	o->refs += delta;
	return 0;
}

static int rules_cidr_ref(struct pw_policy_inc *e, const struct pw_pol_rule *r, int n, int delta)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < r[i].n_peers; j++) {
			const struct pw_ipblock *b = &r[i].peers[j].ipb;

			if (!r[i].peers[j].is_ipblock)
				continue;
			TRY(cidr_ref(e, &b->cidr, delta));
			for (int k = 0; k < b->n_except; k++)
				TRY(cidr_ref(e, &b->except[k], delta));
		}
	return 0;
}

static int pol_cidr_ref(struct pw_policy_inc *e, const struct pw_netpol *p, int delta)
{
	TRY(rules_cidr_ref(e, p->in, p->n_in, delta));
	return rules_cidr_ref(e, p->eg, p->n_eg, delta);
}

static int slots_of(const struct pw_netpol *p)
{
	int n = 0;

	for (int i = 0; i < p->n_in; i++)
		n += p->in[i].n_peers;
	for (int i = 0; i < p->n_eg; i++)
		n += p->eg[i].n_peers;
	return n;
}

static bool any_named(const struct pw_pol_rule *r, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < r[i].n_ports; j++)
			if (r[i].ports[j].name[0])
				return true;
	return false;
}

static int retire(struct pw_policy_inc *e, uint32_t id)
{
	struct ipol *old = hm_del(&e->pols, &id, sizeof(id));

	if (!old)
		return 0;
	TRY(pol_cidr_ref(e, &old->p, -1));
	return pl_add(&e->retired, old);
}

int pw_policy_inc_set_policy(struct pw_policy_inc *e, struct pw_netpol *np)
{
	struct ipol *p = calloc(1, sizeof(*p));
	int n;

	if (!p)
		return -ENOMEM;
	p->p = *np;
	memset(np, 0, sizeof(*np));
	n = p->n_slots = slots_of(&p->p);
	p->sets = calloc((size_t)n + 1, sizeof(*p->sets));
	p->n_sets = calloc((size_t)n + 1, sizeof(*p->n_sets));
	p->cap_sets = calloc((size_t)n + 1, sizeof(*p->cap_sets));
	if (!p->sets || !p->n_sets || !p->cap_sets || retire(e, p->p.id) ||
	    hm_put(&e->pols, &p->p.id, sizeof(p->p.id), p)) {
		p->n_slots = 0;
		ipol_destroy(p);
		return -ENOMEM;
	}
	p->fresh = true;
	p->egress_named = any_named(p->p.eg, p->p.n_eg);
	return pol_cidr_ref(e, &p->p, 1);
}

int pw_policy_inc_del_policy(struct pw_policy_inc *e, const char *ns, const char *name)
{
	uint32_t id = pw_policy_id(ns, name);
	struct ipol *p = hm_get(&e->pols, &id, sizeof(id));

	if (!p || strcmp(p->p.ns, ns) || strcmp(p->p.name, name))
		return -ENOENT;
	return retire(e, id);
}

int pw_policy_inc_n_policies(const struct pw_policy_inc *e)
{
	return (int)e->pols.n;
}

/* ---------------- peers -> identities ---------------- */

static bool peer_has_ident(const struct pw_netpol *p, const struct pw_pol_peer *pe, const struct ident *id)
{
	if (pe->is_ipblock)
		return false;
	if (!pe->has_ns && strcmp(id->ns, p->ns))
		return false;
	if (pe->has_ns && !pw_selector_matches_ns(&pe->ns, &id->ns_labels, id->ns))
		return false;
	return !pe->has_pod || pw_selector_matches(&pe->pod, &id->labels);
}

static bool peer_has_cidr(const struct pw_pol_peer *pe, const struct pw_cidr *c)
{
	if (!pe->is_ipblock || !pw_cidr_within(c, &pe->ipb.cidr))
		return false;
	for (int k = 0; k < pe->ipb.n_except; k++)
		if (pw_cidr_within(c, &pe->ipb.except[k]))
			return false;
	return true;
}

static int set_add(struct ipol *p, int slot, uint32_t id)
{
	TRY(grow((void **)&p->sets[slot], p->n_sets[slot], &p->cap_sets[slot], sizeof(*p->sets[slot]), 1));
	p->sets[slot][p->n_sets[slot]++] = id;
	return 0;
}

static bool set_remove(struct ipol *p, int slot, uint32_t id)
{
	for (int i = 0; i < p->n_sets[slot]; i++)
		if (p->sets[slot][i] == id) {
			p->sets[slot][i] = p->sets[slot][--p->n_sets[slot]];
			return true;
		}
	return false;
}

static const struct pw_pol_peer *slot_peer(const struct pw_netpol *p, int slot)
{
	for (int i = 0; i < p->n_in; i++) {
		if (slot < p->in[i].n_peers)
			return &p->in[i].peers[slot];
		slot -= p->in[i].n_peers;
	}
	for (int i = 0; i < p->n_eg; i++) {
		if (slot < p->eg[i].n_peers)
			return &p->eg[i].peers[slot];
		slot -= p->eg[i].n_peers;
	}
	return NULL;
}

/* Every slot from all identities and prefixes there are. */
static int pol_compute_sets(struct pw_policy_inc *e, struct ipol *p)
{
	for (int s = 0; s < p->n_slots; s++) {
		const struct pw_pol_peer *pe = slot_peer(&p->p, s);

		p->n_sets[s] = 0;
		if (pe->is_ipblock) {
			HM_EACH(&e->cidrs, it) {
				struct cidr_obj *c = it->val;

				if (c->id && peer_has_cidr(pe, &c->c))
					TRY(set_add(p, s, c->id));
			}
			continue;
		}
		HM_EACH(&e->idents, it) {
			if (peer_has_ident(&p->p, pe, it->val))
				TRY(set_add(p, s, ((struct ident *)it->val)->id));
		}
	}
	p->fresh = false;
	return 0;
}

/* The identities and prefixes that appeared and went: *changed if a set did. */
static int pol_update_sets(struct ipol *p, const struct plist *born, const uint32_t *gone, int n_gone,
			   const struct plist *cborn, bool *changed)
{
	for (int s = 0; s < p->n_slots; s++) {
		const struct pw_pol_peer *pe = slot_peer(&p->p, s);

		for (int i = 0; i < n_gone; i++)
			*changed |= set_remove(p, s, gone[i]);
		for (int i = 0; !pe->is_ipblock && i < born->n; i++)
			if (peer_has_ident(&p->p, pe, born->v[i])) {
				TRY(set_add(p, s, ((struct ident *)born->v[i])->id));
				*changed = true;
			}
		for (int i = 0; pe->is_ipblock && i < cborn->n; i++)
			if (peer_has_cidr(pe, &((struct cidr_obj *)cborn->v[i])->c)) {
				TRY(set_add(p, s, ((struct cidr_obj *)cborn->v[i])->id));
				*changed = true;
			}
	}
	return 0;
}

/* ---------------- a local pod's entries ---------------- */

struct rows {
	struct pw_policy_entry *v;
	int n, cap;
};

struct emit {
	struct pw_policy_inc *e;
	struct rows *out;
	const struct lpod *lp;
	const struct pw_pod_model *model;   /* the local pod's (named ports), or NULL */
	const struct pw_netpol *pol;
	uint8_t dir;
};

static int push_row(struct emit *c, uint8_t proto, uint32_t identity, uint16_t port, uint8_t port_prefix)
{
	struct pw_policy_entry *r;

	TRY(grow((void **)&c->out->v, c->out->n, &c->out->cap, sizeof(*c->out->v), 1));
	r = &c->out->v[c->out->n++];
	memset(r, 0, sizeof(*r));
	r->k.prefixlen = PW_POLICY_FIXED_BITS + port_prefix;
	pw_ip4_to_bytes(c->lp->ip, r->k.pod);
	r->k.dir = c->dir;
	r->k.proto = proto;
	r->k.identity = identity;
	if (port_prefix) {
		uint16_t masked = (uint16_t)(port & (0xffffu << (16 - port_prefix)));

		r->k.port[0] = (uint8_t)(masked >> 8);
		r->k.port[1] = (uint8_t)masked;
	}
	r->v.policy_id = c->pol->id;
	return 0;
}

static int emit_port(struct emit *c, uint32_t identity, uint8_t proto, uint16_t port, uint16_t end_port)
{
	uint16_t start[32];
	uint8_t prefix[32];
	int n;

	if (!port)
		return push_row(c, proto, identity, 0, 0);
	n = pw_port_blocks(port, end_port ? end_port : port, start, prefix);
	for (int i = 0; i < n; i++)
		TRY(push_row(c, proto, identity, start[i], prefix[i]));
	return 0;
}

/* Distinct numbers of a name among ports (at most 16, as pw_policy_compute). */
static int resolve(const struct pw_named_port *ports, int n_ports, const struct pw_pol_port *pp, uint16_t *nums)
{
	int n = 0;

	for (int k = 0; k < n_ports && n < 16; k++) {
		bool seen = false;

		if (strcmp(ports[k].name, pp->name) || ports[k].proto != pp->proto)
			continue;
		for (int j = 0; j < n; j++)
			seen = seen || nums[j] == ports[k].port;
		if (!seen)
			nums[n++] = ports[k].port;
	}
	return n;
}

static int emit_named(struct emit *c, uint32_t identity, const struct pw_pol_port *pp)
{
	uint16_t nums[16];
	int n;

	if (c->dir == PW_DIR_INGRESS) {
		n = c->model ? resolve(c->model->ports, c->model->n_ports, pp, nums) : 0;
	} else if (identity == PW_ID_ANY) {
		HM_EACH(&c->e->idents, it)
			TRY(emit_named(c, ((struct ident *)it->val)->id, pp));
		return 0;
	} else {
		const struct ident *id = hm_get(&c->e->id_used, &identity, sizeof(identity));

		/* A CIDR identity has no pods, so no named ports. */
		n = identity < PW_ID_FIRST_CIDR && id ? resolve(id->ports, id->n_ports, pp, nums) : 0;
	}
	for (int i = 0; i < n; i++)
		TRY(emit_port(c, identity, pp->proto, nums[i], 0));
	return 0;
}

static int emit_identity(struct emit *c, const struct pw_pol_rule *r, uint32_t identity)
{
	if (!r->n_ports)
		return push_row(c, 0, identity, 0, 0);
	for (int i = 0; i < r->n_ports; i++) {
		const struct pw_pol_port *pp = &r->ports[i];

		TRY(pp->name[0] ? emit_named(c, identity, pp) : emit_port(c, identity, pp->proto, pp->port, pp->end_port));
	}
	return 0;
}

static int emit_rules(struct emit *c, const struct ipol *p, const struct pw_pol_rule *rules, int n, int slot)
{
	for (int i = 0; i < n; i++) {
		const struct pw_pol_rule *r = &rules[i];

		if (!r->n_peers)
			TRY(emit_identity(c, r, PW_ID_ANY));
		for (int j = 0; j < r->n_peers; j++, slot++)
			for (int k = 0; k < p->n_sets[slot]; k++)
				TRY(emit_identity(c, r, p->sets[slot][k]));
	}
	return 0;
}

static void note_selector(uint32_t *slot, int *count, uint32_t id)
{
	*slot = (*count)++ ? 0 : id;
}

/* The local pod's entries now: rows (sorted, unique) and its flags. */
static int compute_local(struct pw_policy_inc *e, const struct lpod *lp, struct rows *out, struct pw_pol_ep *ep)
{
	struct group *g = group_get(e, lp->ns, lp->name, false);
	const struct pw_pod_model *model = g ? g->model : NULL;
	const struct pw_labels *labels = model ? &model->labels : &no_labels;
	struct emit c = { e, out, lp, model, NULL, 0 };
	int n_in = 0, n_eg = 0;

	memset(ep, 0, sizeof(*ep));
	HM_EACH(&e->pols, it) {
		const struct ipol *p = it->val;
		int in_slots = 0;

		if (!pw_policy_selects(&p->p, lp->ns, labels))
			continue;
		c.pol = &p->p;
		for (int i = 0; i < p->p.n_in; i++)
			in_slots += p->p.in[i].n_peers;
		if (p->p.ingress) {
			ep->flags |= PW_POL_F_INGRESS;
			note_selector(&ep->ingress_policy, &n_in, p->p.id);
			c.dir = PW_DIR_INGRESS;
			TRY(emit_rules(&c, p, p->p.in, p->p.n_in, 0));
		}
		if (p->p.egress) {
			ep->flags |= PW_POL_F_EGRESS;
			note_selector(&ep->egress_policy, &n_eg, p->p.id);
			c.dir = PW_DIR_EGRESS;
			TRY(emit_rules(&c, p, p->p.eg, p->p.n_eg, in_slots));
		}
	}
	out->n = pw_policy_rows_sort(out->v, out->n);
	return 0;
}

/* ---------------- flush ---------------- */

struct delta {
	struct pw_policy_state *old, *new;
	int cap[6];
};

static int flush_local(struct pw_policy_inc *e, struct lpod *lp, struct delta *d)
{
	struct rows now = { 0 };
	struct pw_pol_ep ep = { 0 };
	int ret = 0;

	lp->dirty = false;
	if (lp->present)
		ret = compute_local(e, lp, &now, &ep);
	if (!ret)
		ret = grow((void **)&d->old->rules, d->old->n_rules, &d->cap[0], sizeof(*now.v), lp->n_rows);
	if (!ret)
		ret = grow((void **)&d->new->rules, d->new->n_rules, &d->cap[1], sizeof(*now.v), now.n);
	if (!ret)
		ret = grow((void **)&d->old->eps, d->old->n_eps, &d->cap[2], sizeof(lp->ep), 1);
	if (!ret)
		ret = grow((void **)&d->new->eps, d->new->n_eps, &d->cap[3], sizeof(lp->ep), 1);
	if (ret) {
		free(now.v);
		return ret;
	}
	if (lp->n_rows)
		memcpy(d->old->rules + d->old->n_rules, lp->rows, (size_t)lp->n_rows * sizeof(*lp->rows));
	d->old->n_rules += lp->n_rows;
	if (now.n)
		memcpy(d->new->rules + d->new->n_rules, now.v, (size_t)now.n * sizeof(*now.v));
	d->new->n_rules += now.n;
	if (lp->has_ep)
		d->old->eps[d->old->n_eps++] = lp->ep;
	free(lp->rows);
	lp->rows = now.v;
	lp->n_rows = now.n;
	lp->has_ep = ep.flags != 0;
	memset(&lp->ep, 0, sizeof(lp->ep));
	pw_ip4_to_bytes(lp->ip, lp->ep.k.addr);
	lp->ep.v = ep;
	if (lp->has_ep)
		d->new->eps[d->new->n_eps++] = lp->ep;
	if (!lp->present && !lp->n_rows) {
		hm_del(&e->locals, &lp->ip, sizeof(lp->ip));
		free(lp->rows);
		free(lp);
	}
	return 0;
}

static int flush_idrow(struct pw_policy_inc *e, struct idrow *r, struct delta *d)
{
	bool want = r->n > 0 && !(e->empty_without_policies && !e->pols.n);
	uint32_t v = 0;

	r->dirty = false;
	for (int i = 0; i < r->n; i++)
		if (!i || r->vals[i] < v)
			v = r->vals[i];
	if (want != r->written || (want && v != r->wval)) {
		TRY(grow((void **)&d->old->ids, d->old->n_ids, &d->cap[4], sizeof(*d->old->ids), 1));
		TRY(grow((void **)&d->new->ids, d->new->n_ids, &d->cap[5], sizeof(*d->new->ids), 1));
		if (r->written) {
			memset(&d->old->ids[d->old->n_ids], 0, sizeof(d->old->ids[0]));
			d->old->ids[d->old->n_ids].k = r->k;
			d->old->ids[d->old->n_ids++].v.identity = r->wval;
		}
		if (want) {
			memset(&d->new->ids[d->new->n_ids], 0, sizeof(d->new->ids[0]));
			d->new->ids[d->new->n_ids].k = r->k;
			d->new->ids[d->new->n_ids++].v.identity = v;
		}
		r->written = want;
		r->wval = v;
	}
	if (!r->n && !r->written) {
		hm_del(&e->idrows, &r->k, sizeof(r->k));
		free(r->vals);
		free(r);
	}
	return 0;
}

/* Namespaces whose labels changed: every pod of theirs has another label set. */
static int flush_namespaces(struct pw_policy_inc *e)
{
	int ret = 0;

	for (int i = 0; i < e->dirty_ns.n && !ret; i++) {
		HM_EACH(&e->groups, it) {
			struct group *g = it->val;

			if (!ret && !g->dirty && !strcmp(g->ns, e->dirty_ns.v[i]))
				ret = group_touch(e, g);
		}
	}
	for (int i = 0; i < e->dirty_ns.n; i++)
		free(e->dirty_ns.v[i]);
	e->dirty_ns.n = 0;
	return ret;
}

/* Rebuilds the dirty groups' members; collects identities that appeared
 * (born) and numbers that went (gone). */
static int flush_groups(struct pw_policy_inc *e, struct plist *born, uint32_t **gone, int *n_gone)
{
	int ret = 0;

	for (int i = 0; i < e->dirty_groups.n && !ret; i++) {
		struct group *g = e->dirty_groups.v[i];

		g->dirty = false;
		if (!g->model && !g->n_locals) {
			group_destroy(e, g);
			continue;
		}
		ret = group_build_members(e, g);
	}
	e->dirty_groups.n = 0;
	if (ret)
		return ret;
	*gone = calloc(e->idents.n + 1, sizeof(**gone));
	if (!*gone)
		return -ENOMEM;
	HM_EACH(&e->idents, it) {
		struct ident *id = it->val;

		if (id->refs > 0 && id->fresh) {
			id->fresh = false;
			TRY(pl_add(born, id));
		} else if (id->refs <= 0) {
			if (!id->fresh)
				(*gone)[(*n_gone)++] = id->id;
			ident_destroy(e, id);
		}
	}
	return 0;
}

/* Prefixes that ipBlocks began or stopped naming. */
static int flush_cidrs(struct pw_policy_inc *e, struct plist *cborn, uint32_t **gone, int *n_gone)
{
	int n = (int)e->cidrs.n;
	uint32_t *g;

	g = realloc(*gone, (size_t)(*n_gone + n + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	*gone = g;
	HM_EACH(&e->cidrs, it) {
		struct cidr_obj *c = it->val;

		if (c->refs > 0 && !c->id) {
			c->id = claim_id(e, pw_policy_cidr_id_hint(&c->c), PW_ID_FIRST_CIDR, 0xfffffffeu);
			TRY(hm_put(&e->id_used, &c->id, sizeof(c->id), c));
			TRY(idrow_add(e, c->c.addr, c->c.prefix, c->id));
			TRY(pl_add(cborn, c));
		} else if (c->refs <= 0) {
			if (c->id) {
				g[(*n_gone)++] = c->id;
				TRY(idrow_remove(e, c->c.addr, c->c.prefix, c->id));
				hm_del(&e->id_used, &c->id, sizeof(c->id));
			}
			hm_del(&e->cidrs, &c->c, sizeof(c->c));
			free(c);
		}
	}
	return 0;
}

/* Every present local pod the policy selects: its entries change. */
static int mark_selected(struct pw_policy_inc *e, const struct pw_netpol *p)
{
	HM_EACH(&e->locals, it) {
		struct lpod *lp = it->val;
		struct group *g;

		if (lp->dirty || !lp->present || strcmp(lp->ns, p->ns))
			continue;
		g = group_get(e, lp->ns, lp->name, false);
		if (pw_policy_selects(p, lp->ns, g && g->model ? &g->model->labels : &no_labels))
			TRY(mark_local(e, lp));
	}
	return 0;
}

static int flush_policies(struct pw_policy_inc *e, const struct plist *born, const uint32_t *gone, int n_gone,
			  const struct plist *cborn, struct pw_policy_inc_stats *st)
{
	bool ids_moved = born->n || n_gone || cborn->n;

	for (int i = 0; i < e->retired.n; i++) {
		TRY(mark_selected(e, &((struct ipol *)e->retired.v[i])->p));
		ipol_destroy(e->retired.v[i]);
	}
	e->retired.n = 0;
	HM_EACH(&e->pols, it) {
		struct ipol *p = it->val;
		bool changed = p->fresh || (e->ports_changed && p->egress_named);

		if (p->fresh) {
			TRY(pol_compute_sets(e, p));
			st->policies_recomputed++;
		} else if (ids_moved) {
			TRY(pol_update_sets(p, born, gone, n_gone, cborn, &changed));
		}
		if (changed)
			TRY(mark_selected(e, &p->p));
	}
	e->ports_changed = false;
	return 0;
}

int pw_policy_inc_flush(struct pw_policy_inc *e, struct pw_policy_state *old, struct pw_policy_state *new,
			struct pw_policy_inc_stats *st)
{
	struct pw_policy_inc_stats dummy;
	struct plist born = { 0 }, cborn = { 0 };
	struct delta d = { old, new, { 0 } };
	uint32_t *gone = NULL;
	int n_gone = 0, ret;
	bool has_pols;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	memset(old, 0, sizeof(*old));
	memset(new, 0, sizeof(*new));
	ret = flush_namespaces(e);
	if (!ret)
		ret = flush_groups(e, &born, &gone, &n_gone);
	if (!ret)
		ret = flush_cidrs(e, &cborn, &gone, &n_gone);
	st->identities_changed = born.n + n_gone;
	if (!ret)
		ret = flush_policies(e, &born, gone, n_gone, &cborn, st);
	has_pols = e->pols.n > 0;
	if (!ret && e->empty_without_policies && has_pols != e->had_policies) {
		/* The first policy or the last: every identity entry flips. */
		HM_EACH(&e->idrows, it)
			if (!ret)
				ret = mark_idrow(e, it->val);
	}
	e->had_policies = has_pols;
	for (int i = 0; !ret && i < e->dirty_locals.n; i++) {
		ret = flush_local(e, e->dirty_locals.v[i], &d);
		st->pods_recomputed++;
	}
	e->dirty_locals.n = 0;
	for (int i = 0; !ret && i < e->dirty_idrows.n; i++)
		ret = flush_idrow(e, e->dirty_idrows.v[i], &d);
	e->dirty_idrows.n = 0;
	free(born.v);
	free(cborn.v);
	free(gone);
	if (ret) {
		pw_policy_state_free(old);
		pw_policy_state_free(new);
		return ret;
	}
	pw_policy_state_sort(old);
	pw_policy_state_sort(new);
	return 0;
}

int pw_policy_inc_state(const struct pw_policy_inc *e, struct pw_policy_state *out)
{
	int n_rules = 0, n_eps = 0, n_ids = 0;

	memset(out, 0, sizeof(*out));
	HM_EACH(&e->locals, it) {
		const struct lpod *lp = it->val;

		n_rules += lp->n_rows;
		n_eps += lp->has_ep;
	}
	out->rules = malloc((size_t)n_rules * sizeof(*out->rules) + 1);
	out->eps = malloc((size_t)n_eps * sizeof(*out->eps) + 1);
	out->ids = malloc(e->idrows.n * sizeof(*out->ids) + 1);
	if (!out->rules || !out->eps || !out->ids) {
		pw_policy_state_free(out);
		return -ENOMEM;
	}
	HM_EACH(&e->locals, it) {
		const struct lpod *lp = it->val;

		if (lp->n_rows)
			memcpy(out->rules + out->n_rules, lp->rows, (size_t)lp->n_rows * sizeof(*lp->rows));
		out->n_rules += lp->n_rows;
		if (lp->has_ep)
			out->eps[out->n_eps++] = lp->ep;
	}
	HM_EACH(&e->idrows, it) {
		const struct idrow *r = it->val;

		if (!r->written)
			continue;
		memset(&out->ids[n_ids], 0, sizeof(out->ids[n_ids]));
		out->ids[n_ids].k = r->k;
		out->ids[n_ids++].v.identity = r->wval;
	}
	out->n_ids = n_ids;
	pw_policy_state_sort(out);
	return 0;
}

/* ---------------- a whole model, by element ---------------- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* Past the JSON value at i (strings and nesting followed, not checked:
 * cJSON checks each element that is parsed), or 0 when it never ends. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
	int depth = 0;

	if (i >= n)
		return 0;
	do {
		if (s[i] == '"') {
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (i >= n)
				return 0;
		} else if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if (s[i] == '}' || s[i] == ']') {
			if (--depth < 0)
				return 0;
		} else if (!depth) {
			while (i + 1 < n && !strchr(",]} \t\r\n", s[i + 1]))
				i++;
		}
		i++;
	} while (depth && i < n);
	return depth ? 0 : i;
}

struct staged {
	enum pw_policy_section sec;
	int index;
	const char *text;
	size_t len;
	union {
		struct pw_ns_model ns;
		struct pw_pod_model pod;
		struct pw_netpol pol;
	} o;
	bool parsed;
};

struct load {
	struct pw_policy_inc *e;
	struct staged *v;
	int n, cap;
	char *err;
	size_t errlen;
	const char *old;            /* the text loaded last time, or NULL */
	struct pspan *spans[3];     /* this text's elements */
	int n_spans[3], cap_spans[3];
};

static int load_fail(struct load *l, const char *msg)
{
	if (l->err && l->errlen)
		snprintf(l->err, l->errlen, "policy model: %s", msg);
	return -EINVAL;
}

/* One array: elements seen before are marked, the others staged. */
static int load_array(struct load *l, enum pw_policy_section sec, const char *s, size_t i, size_t n)
{
	int index = 0;

	if (s[i] == 'n' && !strncmp(s + i, "null", 4))
		return 0;
	if (s[i] != '[')
		return load_fail(l, "namespaces, pods and networkPolicies must be arrays");
	i = skip_ws(s, i + 1, n);
	while (i < n && s[i] != ']') {
		size_t end = skip_value(s, i, n);
		struct elem *el;

		const struct pspan *ps = index < l->e->n_spans[sec] ? &l->e->spans[sec][index] : NULL;

		if (!end)
			return load_fail(l, "invalid JSON");
		if (l->old && ps && ps->len == end - i && !memcmp(l->old + ps->off, s + i, ps->len))
			el = ps->el;
		else
			el = hm_get(&l->e->elems[sec], s + i, end - i);
		TRY(grow((void **)&l->spans[sec], l->n_spans[sec], &l->cap_spans[sec], sizeof(*l->spans[sec]), 1));
		l->spans[sec][l->n_spans[sec]++] = (struct pspan){ i, end - i, el };
		if (el) {
			el->gen = l->e->gen;
		} else {
			if (l->n == l->cap) {
				int nc = l->cap ? l->cap * 2 : 16;
				struct staged *nv = realloc(l->v, (size_t)nc * sizeof(*nv));

				if (!nv)
					return -ENOMEM;
				l->v = nv;
				l->cap = nc;
			}
			memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
			l->v[l->n].sec = sec;
			l->v[l->n].index = index;
			l->v[l->n].text = s + i;
			l->v[l->n++].len = end - i;
		}
		index++;
		i = skip_ws(s, end, n);
		if (i < n && s[i] == ',')
			i = skip_ws(s, i + 1, n);
		else if (i >= n || s[i] != ']')
			return load_fail(l, "invalid JSON");
	}
	return i < n ? 0 : load_fail(l, "invalid JSON");
}

static int load_scan(struct load *l, const char *s)
{
	static const char *const keys[] = { "\"namespaces\"", "\"pods\"", "\"networkPolicies\"" };
	size_t n = strlen(s), i = skip_ws(s, 0, n);

	if (i >= n || s[i] != '{')
		return load_fail(l, "expected an object");
	i = skip_ws(s, i + 1, n);
	while (i < n && s[i] != '}') {
		size_t kend = skip_value(s, i, n), vend;
		int sec = -1;

		if (!kend || s[i] != '"')
			return load_fail(l, "invalid JSON");
		for (int k = 0; k < 3; k++)
			if (kend - i == strlen(keys[k]) && !memcmp(s + i, keys[k], kend - i))
				sec = k;
		i = skip_ws(s, kend, n);
		if (i >= n || s[i] != ':')
			return load_fail(l, "invalid JSON");
		i = skip_ws(s, i + 1, n);
		vend = skip_value(s, i, n);
		if (!vend)
			return load_fail(l, "invalid JSON");
		if (sec >= 0)
			TRY(load_array(l, (enum pw_policy_section)sec, s, i, n));
		i = skip_ws(s, vend, n);
		if (i < n && s[i] == ',')
			i = skip_ws(s, i + 1, n);
		else if (i >= n || s[i] != '}')
			return load_fail(l, "invalid JSON");
	}
	return i < n ? 0 : load_fail(l, "invalid JSON");
}

static void staged_names(const struct staged *st, const char **ns, const char **name)
{
	*ns = st->sec == PW_POL_SEC_NS ? "" : st->sec == PW_POL_SEC_PODS ? st->o.pod.ns : st->o.pol.ns;
	*name = st->sec == PW_POL_SEC_NS ? st->o.ns.name : st->sec == PW_POL_SEC_PODS ? st->o.pod.name : st->o.pol.name;
}

/* An object's key in its section: namespace/name, or the policy's id (two
 * names with one id cannot both be reported). */
static size_t object_key(const struct staged *st, char *out, size_t size)
{
	const char *ns, *name;

	staged_names(st, &ns, &name);
	if (st->sec == PW_POL_SEC_POLS)
		return (size_t)snprintf(out, size, "%08x", st->o.pol.id);
	return (size_t)snprintf(out, size, "%s/%s", ns, name);
}

/* Parses the staged elements; a key used twice (by two new elements, or a
 * new one and one kept) is refused as pw_policy_model_parse refuses it. */
static int load_parse(struct load *l)
{
	struct hmap seen = { 0 };
	int ret = 0;

	for (int i = 0; i < l->n && !ret; i++) {
		struct staged *st = &l->v[i];
		char k[64 + PW_K8S_NAME_MAX + 2], msg[400];
		size_t kn;
		struct elem *old;

		ret = pw_policy_parse_element(st->sec, st->text, st->len, st->index, &st->o, l->err, l->errlen);
		if (ret)
			break;
		st->parsed = true;
		kn = object_key(st, k, sizeof(k));
		old = hm_get(&l->e->elem_keys[st->sec], k, kn);
		if (hm_get(&seen, k, kn) || (old && old->gen == l->e->gen)) {
			const char *ns, *name;

			staged_names(st, &ns, &name);
			snprintf(msg, sizeof(msg), "%s[%d]: %s%s%s is there twice (or shares its policy id)",
				 st->sec == PW_POL_SEC_NS ? "namespaces" : st->sec == PW_POL_SEC_PODS ? "pods" : "networkPolicies",
				 st->index, ns, ns[0] ? "/" : "", name);
			ret = load_fail(l, msg);
			break;
		}
		ret = hm_put(&seen, k, kn, st);
	}
	hm_free(&seen);
	return ret;
}

static void staged_free(struct load *l)
{
	for (int i = 0; i < l->n; i++) {
		struct staged *st = &l->v[i];

		if (!st->parsed)
			continue;
		if (st->sec == PW_POL_SEC_NS)
			pw_policy_ns_free(&st->o.ns);
		else if (st->sec == PW_POL_SEC_PODS)
			pw_policy_pod_free(&st->o.pod);
		else
			pw_policy_netpol_free(&st->o.pol);
	}
	free(l->v);
}

/* Elements not seen by this load: their objects go. */
static int load_delete_unseen(struct pw_policy_inc *e)
{
	int ret = 0;

	for (int sec = 0; sec < 3; sec++) {
		HM_EACH(&e->elems[sec], it) {
			struct elem *el = it->val;
			char k[64 + PW_K8S_NAME_MAX + 2];
			int kn;

			if (el->gen == e->gen)
				continue;
			if (sec == PW_POL_SEC_NS)
				ret = ret ? ret : pw_policy_inc_del_ns(e, el->name);
			else if (sec == PW_POL_SEC_PODS)
				ret = ret ? ret : pw_policy_inc_del_pod(e, el->ns, el->name);
			else
				ret = ret ? ret : pw_policy_inc_del_policy(e, el->ns, el->name);
			kn = sec == PW_POL_SEC_POLS ? snprintf(k, sizeof(k), "%08x", pw_policy_id(el->ns, el->name))
						    : snprintf(k, sizeof(k), "%s/%s", sec == PW_POL_SEC_NS ? "" : el->ns,
							       el->name);
			hm_del(&e->elem_keys[sec], k, (size_t)kn);
			hm_del(&e->elems[sec], it->key, it->klen);
			free(el);
		}
	}
	return ret;
}

static int load_commit(struct load *l)
{
	struct pw_policy_inc *e = l->e;

	TRY(load_delete_unseen(e));
	for (int i = 0; i < l->n; i++) {
		struct staged *st = &l->v[i];
		struct elem *el = calloc(1, sizeof(*el));
		const char *ns, *name;
		char k[64 + PW_K8S_NAME_MAX + 2];
		size_t kn = object_key(st, k, sizeof(k));

		if (!el)
			return -ENOMEM;
		staged_names(st, &ns, &name);
		snprintf(el->ns, sizeof(el->ns), "%s", ns);
		snprintf(el->name, sizeof(el->name), "%s", name);
		el->gen = e->gen;
		if (hm_put(&e->elems[st->sec], st->text, st->len, el) || hm_put(&e->elem_keys[st->sec], k, kn, el)) {
			hm_del(&e->elems[st->sec], st->text, st->len);
			free(el);
			return -ENOMEM;
		}
		l->spans[st->sec][st->index].el = el;
		if (st->sec == PW_POL_SEC_NS)
			TRY(pw_policy_inc_set_ns(e, &st->o.ns));
		else if (st->sec == PW_POL_SEC_PODS)
			TRY(pw_policy_inc_set_pod(e, &st->o.pod));
		else
			TRY(pw_policy_inc_set_policy(e, &st->o.pol));
	}
	return 0;
}

int pw_policy_inc_load_json(struct pw_policy_inc *e, const char *json, char *err, size_t errlen)
{
	struct load l = { .e = e, .err = err, .errlen = errlen };
	int ret;

	size_t len = json ? strlen(json) : 0;

	if (err && errlen)
		err[0] = '\0';
	/* The same text as last time (the agent loads at every reconcile and
	 * tick): nothing to look at. */
	if (json && e->last_json && len == e->last_len && !memcmp(json, e->last_json, len))
		return 0;
	l.old = e->last_json;
	e->last_json = NULL;
	e->gen++;
	ret = json ? load_scan(&l, json) : 0;
	if (!ret)
		ret = load_parse(&l);
	if (!ret)
		ret = load_commit(&l);
	if (ret == -ENOMEM)
		load_fail(&l, "out of memory");
	staged_free(&l);
	free((char *)l.old);
	if (!ret && json && (e->last_json = malloc(len + 1))) {
		memcpy(e->last_json, json, len + 1);
		e->last_len = len;
	}
	/* The spans point into the text kept: without it (an error, no text),
	 * none are kept and the next load looks every element up by hash. */
	for (int k = 0; k < 3; k++) {
		free(e->spans[k]);
		e->spans[k] = e->last_json ? l.spans[k] : NULL;
		e->n_spans[k] = e->last_json ? l.n_spans[k] : 0;
		if (!e->last_json)
			free(l.spans[k]);
	}
	return ret;
}

/* ---------------- lifetime ---------------- */

struct pw_policy_inc *pw_policy_inc_new(bool empty_without_policies)
{
	struct pw_policy_inc *e = calloc(1, sizeof(*e));

	if (e)
		e->empty_without_policies = empty_without_policies;
	return e;
}

void pw_policy_inc_free(struct pw_policy_inc *e)
{
	if (!e)
		return;
	HM_EACH(&e->groups, it) {
		struct group *g = it->val;

		if (g->model)
			pw_policy_pod_free(g->model);
		free(g->model);
		free(g->locals);
		free(g->members);
		free(g);
	}
	HM_EACH(&e->locals, it) {
		free(((struct lpod *)it->val)->rows);
		free(it->val);
	}
	HM_EACH(&e->idents, it) {
		struct ident *id = it->val;

		free(id->canon);
		free(id->labels.v);
		free(id->ns_labels.v);
		free(id->ports);
		free(id);
	}
	HM_EACH(&e->cidrs, it)
		free(it->val);
	HM_EACH(&e->idrows, it) {
		free(((struct idrow *)it->val)->vals);
		free(it->val);
	}
	HM_EACH(&e->pols, it)
		ipol_destroy(it->val);
	HM_EACH(&e->ns, it) {
		pw_policy_ns_free(&((struct nsobj *)it->val)->m);
		free(it->val);
	}
	for (int i = 0; i < 3; i++)
		HM_EACH(&e->elems[i], it)
			free(it->val);
	for (int i = 0; i < e->retired.n; i++)
		ipol_destroy(e->retired.v[i]);
	for (int i = 0; i < e->dirty_ns.n; i++)
		free(e->dirty_ns.v[i]);
	hm_free(&e->groups);
	hm_free(&e->locals);
	hm_free(&e->idents);
	hm_free(&e->id_used);
	hm_free(&e->cidrs);
	hm_free(&e->idrows);
	hm_free(&e->pols);
	hm_free(&e->ns);
	for (int i = 0; i < 3; i++) {
		hm_free(&e->elems[i]);
		hm_free(&e->elem_keys[i]);
	}
	free(e->last_json);
	for (int i = 0; i < 3; i++)
		free(e->spans[i]);
	free(e->retired.v);
	free(e->dirty_groups.v);
	free(e->dirty_locals.v);
	free(e->dirty_idrows.v);
	free(e->dirty_ns.v);
	free(e);
}

/* ---------------- object by object ---------------- */

static int apply_one(struct pw_policy_inc *e, const struct pw_policy_change *c, char *err, size_t errlen)
{
	union { struct pw_ns_model ns; struct pw_pod_model pod; struct pw_netpol pol; } obj;
	const char *slash = strchr(c->key, '/');
	char ns[256], why[512];
	int ret;

	if (!c->json) {
		snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - c->key) : 0, c->key);
		ret = c->sec == PW_POL_SEC_NS ? pw_policy_inc_del_ns(e, c->key) :
		      c->sec == PW_POL_SEC_PODS ? pw_policy_inc_del_pod(e, ns, slash ? slash + 1 : c->key) :
		      pw_policy_inc_del_policy(e, ns, slash ? slash + 1 : c->key);
		return ret == -ENOENT ? 0 : ret;
	}
	memset(&obj, 0, sizeof(obj));
	ret = pw_policy_parse_element(c->sec, c->json, strlen(c->json), 0, &obj, why, sizeof(why));
	if (ret) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s: kept as it was", c->key, why);
		return ret;
	}
	ret = c->sec == PW_POL_SEC_NS ? pw_policy_inc_set_ns(e, &obj.ns) :
	      c->sec == PW_POL_SEC_PODS ? pw_policy_inc_set_pod(e, &obj.pod) : pw_policy_inc_set_policy(e, &obj.pol);
	if (c->sec == PW_POL_SEC_NS)
		pw_policy_ns_free(&obj.ns);
	else if (c->sec == PW_POL_SEC_PODS)
		pw_policy_pod_free(&obj.pod);
	else
		pw_policy_netpol_free(&obj.pol);
	return ret;
}

int pw_policy_inc_apply(struct pw_policy_inc *e, const struct pw_policy_change *c, int n, char *err, size_t errlen)
{
	int ret = 0;

	for (int i = 0; i < n; i++) {
		int r = apply_one(e, &c[i], ret ? NULL : err, errlen);

		if (r == -ENOMEM)
			return r;
		if (r && !ret)
			ret = r;
	}
	return ret;
}

void pw_policy_changes_free(struct pw_policy_change *c, int n)
{
	for (int i = 0; c && i < n; i++) {
		free(c[i].key);
		free(c[i].json);
	}
	free(c);
}
