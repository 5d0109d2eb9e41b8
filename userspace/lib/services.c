/* The service reconciler (docs/services.md).
 *
 * It keeps an in-memory mirror of what it wrote (services by frontend,
 * backends by address and by id, each service's slot array) so an apply is a
 * diff: only elements that change are written. The mirror is rebuilt from the
 * maps at start-up, which is what keeps ids stable across agent restarts.
 *
 * One apply writes in phases so that a BPF program reading concurrently never
 * follows a reference to something missing and never picks a removed backend
 * for a new connection:
 *   0 leftovers of an interrupted apply (found at start-up) are deleted
 *   1 ports of all backends, bits only ever set  (pw_backend_ports);
 *     new backends                              (pw_backends)
 *   2 slot writes: growth beyond the old count, holes, and every tail slot
 *     that still names a removed backend        (pw_svc_slots)
 *   3 reverse NAT of new services; new Maglev tables swapped in whole
 *   4 frontends: deletes, then writes with the new counts (pw_services)
 *   5 slots beyond the new counts, revnat and Maglev of removed services,
 *     affinity entries naming removed backends
 *   6 backends no service references any more (pw_backends) */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "cidr.h"
#include "datapath.h"
#include "maglev.h"
#include "services.h"

/* Service and backend ids live in [1, PW_ID_LIMIT); 0 means none. Above
 * are the CNI plugin's hostPort entries (abi.h): never read, written or
 * deleted here, whatever the desired services say. */
#define PW_ID_LIMIT PW_HOSTPORT_ID_BASE

static bool hostport_id(uint32_t id)
{
	return id >= PW_HOSTPORT_ID_BASE;
}
#define DUMP_CHUNK 4096

/* ---- a small open-addressing hash table: uint64 key -> uint32 value ---- */

struct u64map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	uint32_t cap;   /* power of two */
	uint32_t n;
};

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit reaches every output bit. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof(*m));
}

static int u64map_alloc(struct u64map *m, uint32_t cap)
{
	m->keys = malloc((size_t)cap * sizeof(*m->keys));
	m->vals = malloc((size_t)cap * sizeof(*m->vals));
	m->used = calloc(cap, 1);
	m->cap = cap;
	m->n = 0;
	if (!m->keys || !m->vals || !m->used) {
		u64map_free(m);
		return -ENOMEM;
	}
	return 0;
}

static uint32_t *u64map_get(const struct u64map *m, uint64_t key)
{
	uint32_t mask = m->cap - 1, i;

	if (!m->cap)
		return NULL;
	for (i = (uint32_t)mix64(key) & mask; m->used[i]; i = (i + 1) & mask)
		if (m->keys[i] == key)
			return &m->vals[i];
	return NULL;
}

static void u64map_insert_new(struct u64map *m, uint64_t key, uint32_t val)
{
	uint32_t mask = m->cap - 1, i = (uint32_t)mix64(key) & mask;

	while (m->used[i])
		i = (i + 1) & mask;
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
}

/* Kept at most half full: probes stay short. */
static int u64map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	uint32_t *v = u64map_get(m, key);

	if (v) {
		*v = val;
		return 0;
	}
	if ((m->n + 1) * 2 > m->cap) {
		struct u64map bigger;
		int err = u64map_alloc(&bigger, m->cap ? m->cap * 2 : 64);

		if (err)
			return err;
		for (uint32_t i = 0; i < m->cap; i++)
			if (m->used[i])
				u64map_insert_new(&bigger, m->keys[i], m->vals[i]);
		u64map_free(m);
		*m = bigger;
	}
	u64map_insert_new(m, key, val);
	return 0;
}

/* Backward-shift deletion: no tombstones, lookups never slow down. */
static void u64map_del(struct u64map *m, uint64_t key)
{
	uint32_t mask = m->cap - 1, i, j;

	if (!m->cap)
		return;
	for (i = (uint32_t)mix64(key) & mask; m->used[i]; i = (i + 1) & mask)
		if (m->keys[i] == key)
			break;
	if (!m->used[i])
		return;
	m->used[i] = 0;
	m->n--;
	for (j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)mix64(m->keys[j]) & mask;

		/* Move j into the hole if the hole lies on j's probe path. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->used[i] = 1;
			m->used[j] = 0;
			i = j;
		}
	}
}

/* ---- pending map writes, flushed with the batch syscalls ---- */

struct wlist {
	uint8_t *k, *v;
	uint32_t ksz, vsz, n, cap;
};

static void wl_init(struct wlist *w, uint32_t ksz, uint32_t vsz)
{
	memset(w, 0, sizeof(*w));
	w->ksz = ksz;
	w->vsz = vsz;
}

static void wl_free(struct wlist *w)
{
	free(w->k);
	free(w->v);
	w->k = w->v = NULL;
	w->n = w->cap = 0;
}

static int wl_add(struct wlist *w, const void *k, const void *v)
{
	if (w->n == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 256;
		uint8_t *nk = realloc(w->k, (size_t)cap * w->ksz);

		if (!nk)
			return -ENOMEM;
		w->k = nk;
		if (w->vsz) {
			uint8_t *nv = realloc(w->v, (size_t)cap * w->vsz);

			if (!nv)
				return -ENOMEM;
			w->v = nv;
		}
		w->cap = cap;
	}
	memcpy(w->k + (size_t)w->n * w->ksz, k, w->ksz);
	if (w->vsz)
		memcpy(w->v + (size_t)w->n * w->vsz, v, w->vsz);
	w->n++;
	return 0;
}

/* Errors that mean "this kernel or map type has no batch op". */
static bool no_batch(int err)
{
	return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP || err == -524 /* ENOTSUPP */;
}

/* ---- in-memory mirror ---- */

struct svc_rec {
	uint32_t vip;
	uint16_t port;
	uint8_t proto;
	uint8_t algorithm;          /* pw_lb_algorithm */
	uint16_t node_port;
	uint32_t affinity;
	uint32_t id;
	uint32_t *slots;            /* backend ids of slots 0..n-1 */
	uint32_t n, cap;
	uint32_t maglev_m;          /* entries of the installed Maglev table, 0 = none */
	bool maglev_current;        /* installed table matches slots and maglev_m */
	bool dirty;                 /* frontends and revnat to be rewritten */
	bool sig_valid;
	uint64_t sig;               /* of the backend list last applied (fast no-change path) */
	uint32_t seen_gen;
};

struct be_rec {
	uint32_t ip;
	uint16_t port;
	uint32_t id;
	uint32_t refs;              /* slots naming it, over all services */
	uint32_t want_gen, have_gen;
	bool candidate;             /* on the list of possibly unreferenced backends */
};

struct pw_svc_state {
	struct svc_rec *svc;
	uint32_t n_svc, cap_svc;
	struct u64map svc_by_fe;    /* ClusterIP frontend -> index in svc */
	struct u64map svc_by_id;
	struct be_rec *be;
	uint32_t n_be, cap_be;
	struct u64map be_by_addr;
	struct u64map be_by_id;
	uint32_t next_svc_id, next_be_id;
	uint32_t gen;
	uint32_t max_fe, max_be, max_slots, max_maglev;
	uint32_t inner_flags;       /* map_flags the pw_maglev inner template wants */
	bool inner_flags_known;
	bool broken;                /* an apply failed mid-way: reload before the next */
	uint64_t port_bits[PW_BACKEND_PORT_WORDS]; /* what pw_backend_ports holds */
	uint32_t np_gen[2][65536];  /* NodePort (tcp, udp) -> gen of last use: duplicate check */

	/* leftovers found at load, deleted by phase 0 of the next apply */
	struct wlist stale_fe, stale_slots, stale_revnat, stale_maglev;
	/* one apply's writes */
	struct wlist be_upd, slot_upd, revnat_upd, fe_upd, fe_del, slot_del, revnat_del,
		     be_del, maglev_del, maglev_upd;
	uint32_t *maglev_build;     /* svc indices */
	uint32_t n_maglev_build, cap_maglev_build;
	uint64_t *aff_drop;         /* (svc id << 32 | backend id), backend id 0 = all */
	uint32_t n_aff_drop, cap_aff_drop;
	uint32_t *cand;             /* backend indices whose refs reached 0 */
	uint32_t n_cand, cap_cand;
	uint32_t *del_svc;          /* svc indices removed by this apply */
	uint32_t n_del_svc, cap_del_svc;

	/* scratch */
	uint32_t *want, *queue;
	uint8_t *keep;
	uint32_t cap_scratch;
	uint32_t *table, *table2, *mkeys;
	uint32_t table_cap;
	struct pw_maglev_backend *mb;
	uint32_t cap_mb;
};

static int fail(struct pw_services *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct pw_services *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return err;
}

/* Grow *arr (elements of size sz) to hold at least want. */
static int grow(void *arrp, uint32_t *cap, uint32_t want, size_t sz)
{
	void **arr = arrp;
	uint32_t c = *cap ? *cap : 16;
	void *p;

	if (want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	p = realloc(*arr, (size_t)c * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

static int push_u32(uint32_t **arr, uint32_t *n, uint32_t *cap, uint32_t v)
{
	int err = grow(arr, cap, *n + 1, sizeof(**arr));

	if (err)
		return err;
	(*arr)[(*n)++] = v;
	return 0;
}

static uint64_t fe_key(uint32_t vip, uint16_t port, uint8_t proto)
{
	return (uint64_t)vip << 32 | (uint64_t)port << 8 | proto;
}

static uint64_t be_key(uint32_t ip, uint16_t port)
{
	return (uint64_t)ip << 16 | port;
}

struct pw_svc_key pw_svc_key_of(uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope)
{
	struct pw_svc_key k;

	memset(&k, 0, sizeof(k));
	pw_ip4_to_bytes(addr, k.addr);
	k.port = port;
	k.proto = proto;
	k.scope = scope;
	return k;
}

static struct pw_svc svc_value(const struct svc_rec *r)
{
	struct pw_svc v;

	memset(&v, 0, sizeof(v));
	v.id = r->id;
	v.backends = (__u16)r->n;
	v.algorithm = r->algorithm;
	v.affinity_timeout = r->affinity;
	return v;
}

static uint32_t alloc_id(const struct u64map *used, uint32_t *cursor)
{
	/* A rolling cursor, like PIDs: a freed id is not handed out again soon,
	 * so conntrack or affinity entries still naming it find nothing rather
	 * than a stranger. */
	for (uint32_t tries = 0; tries < PW_ID_LIMIT; tries++) {
		uint32_t id = *cursor;

		*cursor = id + 1 >= PW_ID_LIMIT ? 1 : id + 1;
		if (id && !u64map_get(used, id))
			return id;
	}
	return 0;
}

static struct svc_rec *svc_by_id(struct pw_svc_state *st, uint32_t id)
{
	uint32_t *i = u64map_get(&st->svc_by_id, id);

	return i ? &st->svc[*i] : NULL;
}

static int be_index_by_id(const struct pw_svc_state *st, uint32_t id)
{
	uint32_t *i = u64map_get(&st->be_by_id, id);

	return i ? (int)*i : -1;
}

static int add_svc_rec(struct pw_svc_state *st, uint32_t vip, uint16_t port, uint8_t proto,
		       uint32_t id, uint32_t *index)
{
	struct svc_rec *r;
	int err = grow(&st->svc, &st->cap_svc, st->n_svc + 1, sizeof(*st->svc));

	if (err)
		return err;
	r = &st->svc[st->n_svc];
	memset(r, 0, sizeof(*r));
	r->vip = vip;
	r->port = port;
	r->proto = proto;
	r->id = id;
	if ((err = u64map_put(&st->svc_by_fe, fe_key(vip, port, proto), st->n_svc)) ||
	    (err = u64map_put(&st->svc_by_id, id, st->n_svc)))
		return err;
	*index = st->n_svc++;
	return 0;
}

static void remove_svc_rec(struct pw_svc_state *st, uint32_t i)
{
	struct svc_rec *r = &st->svc[i];
	uint32_t last = st->n_svc - 1;

	u64map_del(&st->svc_by_fe, fe_key(r->vip, r->port, r->proto));
	u64map_del(&st->svc_by_id, r->id);
	free(r->slots);
	if (i != last) {
		*r = st->svc[last];
		u64map_put(&st->svc_by_fe, fe_key(r->vip, r->port, r->proto), i);
		u64map_put(&st->svc_by_id, r->id, i);
	}
	st->n_svc--;
}

static int add_be_rec(struct pw_svc_state *st, uint32_t ip, uint16_t port, uint32_t id,
		      bool by_addr, uint32_t *index)
{
	struct be_rec *b;
	int err = grow(&st->be, &st->cap_be, st->n_be + 1, sizeof(*st->be));

	if (err)
		return err;
	b = &st->be[st->n_be];
	memset(b, 0, sizeof(*b));
	b->ip = ip;
	b->port = port;
	b->id = id;
	if ((by_addr && (err = u64map_put(&st->be_by_addr, be_key(ip, port), st->n_be))) ||
	    (err = u64map_put(&st->be_by_id, id, st->n_be)))
		return err;
	*index = st->n_be++;
	return 0;
}

static void remove_be_rec(struct pw_svc_state *st, uint32_t i)
{
	struct be_rec *b = &st->be[i];
	uint32_t last = st->n_be - 1, *a = u64map_get(&st->be_by_addr, be_key(b->ip, b->port));

	if (a && *a == i)
		u64map_del(&st->be_by_addr, be_key(b->ip, b->port));
	u64map_del(&st->be_by_id, b->id);
	if (i != last) {
		*b = st->be[last];
		a = u64map_get(&st->be_by_addr, be_key(b->ip, b->port));
		if (a && *a == last)
			*a = i;
		u64map_put(&st->be_by_id, b->id, i);
	}
	st->n_be--;
}

static int mark_candidate(struct pw_svc_state *st, uint32_t bi)
{
	if (st->be[bi].candidate)
		return 0;
	st->be[bi].candidate = true;
	return push_u32(&st->cand, &st->n_cand, &st->cap_cand, bi);
}

static void state_free(struct pw_svc_state *st)
{
	struct wlist *lists[] = { &st->stale_fe, &st->stale_slots, &st->stale_revnat,
				  &st->stale_maglev, &st->be_upd, &st->slot_upd, &st->revnat_upd,
				  &st->fe_upd, &st->fe_del, &st->slot_del, &st->revnat_del,
				  &st->be_del, &st->maglev_del, &st->maglev_upd };

	if (!st)
		return;
	for (uint32_t i = 0; i < st->n_svc; i++)
		free(st->svc[i].slots);
	free(st->svc);
	free(st->be);
	u64map_free(&st->svc_by_fe);
	u64map_free(&st->svc_by_id);
	u64map_free(&st->be_by_addr);
	u64map_free(&st->be_by_id);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		wl_free(lists[i]);
	free(st->maglev_build);
	free(st->aff_drop);
	free(st->cand);
	free(st->del_svc);
	free(st->want);
	free(st->queue);
	free(st->keep);
	free(st->table);
	free(st->table2);
	free(st->mkeys);
	free(st->mb);
	free(st);
}

static struct pw_svc_state *state_new(void)
{
	struct pw_svc_state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	wl_init(&st->stale_fe, sizeof(struct pw_svc_key), 0);
	wl_init(&st->stale_slots, sizeof(struct pw_slot_key), 0);
	wl_init(&st->stale_revnat, sizeof(__u32), 0);
	wl_init(&st->stale_maglev, sizeof(__u32), 0);
	wl_init(&st->be_upd, sizeof(__u32), sizeof(struct pw_backend));
	wl_init(&st->slot_upd, sizeof(struct pw_slot_key), sizeof(__u32));
	wl_init(&st->revnat_upd, sizeof(__u32), sizeof(struct pw_revnat));
	wl_init(&st->fe_upd, sizeof(struct pw_svc_key), sizeof(struct pw_svc));
	wl_init(&st->fe_del, sizeof(struct pw_svc_key), 0);
	wl_init(&st->slot_del, sizeof(struct pw_slot_key), 0);
	wl_init(&st->revnat_del, sizeof(__u32), 0);
	wl_init(&st->be_del, sizeof(__u32), 0);
	wl_init(&st->maglev_del, sizeof(__u32), 0);
	wl_init(&st->maglev_upd, sizeof(__u32), sizeof(int));
	st->next_svc_id = 1;
	st->next_be_id = 1;
	return st;
}

/* Scratch arrays for one service's diff, n elements each. */
static int scratch_reserve(struct pw_svc_state *st, uint32_t n)
{
	uint32_t c = st->cap_scratch;
	int err = 0;

	if (n <= c)
		return 0;
	if ((err = grow(&st->want, &c, n, sizeof(*st->want))))
		return err;
	c = st->cap_scratch;
	if ((err = grow(&st->queue, &c, n, sizeof(*st->queue))))
		return err;
	c = st->cap_scratch;
	if ((err = grow(&st->keep, &c, n, sizeof(*st->keep))))
		return err;
	st->cap_scratch = c;
	return 0;
}

static int table_reserve(struct pw_svc_state *st, uint32_t m)
{
	uint32_t *t, *t2, *k;

	if (m <= st->table_cap)
		return 0;
	t = realloc(st->table, (size_t)m * sizeof(*t));
	if (t)
		st->table = t;
	t2 = realloc(st->table2, (size_t)m * sizeof(*t2));
	if (t2)
		st->table2 = t2;
	k = realloc(st->mkeys, (size_t)m * sizeof(*k));
	if (k)
		st->mkeys = k;
	if (!t || !t2 || !k)
		return -ENOMEM;
	for (uint32_t i = 0; i < m; i++)
		st->mkeys[i] = i;
	st->table_cap = m;
	return 0;
}

/* ---- reading maps ---- */

typedef int (*dump_cb)(void *ctx, const void *key, const void *val);

/* The same with one bpf() per element, for map types without batch lookup. */
static int dump_slow(void *ctx, int fd, uint32_t ksz, dump_cb cb)
{
	uint8_t k[64], next[64], v[64];
	bool first = true;
	int err;

	while (bpf_map_get_next_key(fd, first ? NULL : k, next) == 0) {
		first = false;
		memcpy(k, next, ksz);
		if (bpf_map_lookup_elem(fd, k, v))
			continue;   /* deleted under us */
		if ((err = cb(ctx, k, v)))
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

/* Every element of a map (key size ksz, value size vsz <= 64), through
 * bpf_map_lookup_batch where the map type has it. */
static int map_dump(void *ctx, int fd, uint32_t ksz, uint32_t vsz, dump_cb cb)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint8_t *keys = malloc((size_t)DUMP_CHUNK * ksz), *vals = malloc((size_t)DUMP_CHUNK * vsz);
	uint64_t in[8], out[8];
	bool first = true;
	int err = 0;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	memset(keys, 0, (size_t)DUMP_CHUNK * ksz);
	for (;;) {
		__u32 count = DUMP_CHUNK;
		int r = bpf_map_lookup_batch(fd, first ? NULL : in, out, keys, vals, &count, &opts);

		if (r && first && no_batch(r)) {
			err = dump_slow(ctx, fd, ksz, cb);
			break;
		}
		if (r && r != -ENOENT) {
			err = r;
			break;
		}
		for (__u32 i = 0; i < count && !err; i++)
			err = cb(ctx, keys + (size_t)i * ksz, vals + (size_t)i * vsz);
		if (err || r == -ENOENT)
			break;
		memcpy(in, out, sizeof(in));
		first = false;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int load_backend(void *ctx, const void *key, const void *val)
{
	struct pw_svc_state *st = ((struct pw_services *)ctx)->st;
	const struct pw_backend *b = val;
	uint32_t id, ip = pw_ip4_from_bytes(b->addr), idx;

	memcpy(&id, key, sizeof(id));
	if (hostport_id(id))
		return 0;
	/* Two ids for one address (never written by us): the second is only
	 * reachable by id and goes away once no slot names it. */
	return add_be_rec(st, ip, b->port, id, !u64map_get(&st->be_by_addr, be_key(ip, b->port)),
			  &idx);
}

struct np_entry {
	struct pw_svc_key key;
	struct pw_svc val;
};

/* NodePort frontends are matched to their services once all are read. */
struct load_ctx {
	struct pw_services *s;
	struct np_entry *np;
	uint32_t n_np, cap_np;
};

/* A service record read back from its frontend entry (ClusterIP, or the
 * NodePort entry of a node-port-only service, whose vip is 0), or -EEXIST
 * when the entry is not one a record can come from (stale). */
static int rec_from_frontend(struct pw_svc_state *st, const struct pw_svc_key *k, const struct pw_svc *v,
			     uint32_t vip, uint32_t *idx)
{
	struct svc_rec *r;
	int err;

	if (!v->id || v->id >= PW_ID_LIMIT || u64map_get(&st->svc_by_id, v->id) ||
	    u64map_get(&st->svc_by_fe, fe_key(vip, k->port, k->proto)))
		return wl_add(&st->stale_fe, k, NULL);
	if ((err = add_svc_rec(st, vip, k->port, k->proto, v->id, idx)))
		return err;
	r = &st->svc[*idx];
	r->algorithm = v->algorithm;
	r->affinity = v->affinity_timeout;
	r->n = r->cap = v->backends;
	if (r->n && !(r->slots = calloc(r->n, sizeof(*r->slots))))
		return -ENOMEM;
	return 0;
}

static int load_frontend(void *ctx, const void *key, const void *val)
{
	struct load_ctx *lc = ctx;
	struct pw_svc_state *st = lc->s->st;
	const struct pw_svc_key *k = key;
	const struct pw_svc *v = val;
	uint32_t vip = pw_ip4_from_bytes(k->addr), idx;
	int err;

	if (k->scope == PW_SVC_HOSTPORT)
		return 0;
	if (k->scope == PW_SVC_NODEPORT) {
		if ((err = grow(&lc->np, &lc->cap_np, lc->n_np + 1, sizeof(*lc->np))))
			return err;
		lc->np[lc->n_np].key = *k;
		lc->np[lc->n_np++].val = *v;
		return 0;
	}
	if (k->scope != PW_SVC_CLUSTERIP || !vip)
		return wl_add(&st->stale_fe, k, NULL);
	return rec_from_frontend(st, k, v, vip, &idx);
}


static int load_slot(void *ctx, const void *key, const void *val)
{
	struct pw_services *s = ctx;
	const struct pw_slot_key *k = key;
	struct svc_rec *r = svc_by_id(s->st, k->svc_id);

	if (hostport_id(k->svc_id))
		return 0;
	if (!r || k->slot >= r->n)
		return wl_add(&s->st->stale_slots, k, NULL);
	memcpy(&r->slots[k->slot], val, sizeof(__u32));
	return 0;
}

static int load_revnat(void *ctx, const void *key, const void *val)
{
	struct pw_services *s = ctx;
	const struct pw_revnat *v = val;
	uint32_t id;
	struct svc_rec *r;

	memcpy(&id, key, sizeof(id));
	if (hostport_id(id))
		return 0;
	r = svc_by_id(s->st, id);
	if (!r)
		return wl_add(&s->st->stale_revnat, key, NULL);
	r->dirty = pw_ip4_from_bytes(v->addr) != r->vip || v->port != r->port;
	return 0;
}

/* Read the Maglev inner map fd into st->table2; its size in *m. */
static int read_inner_fd(struct pw_svc_state *st, int fd, uint32_t *m)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), count;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t out;
	int err = 0;

	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len))
		return -errno;
	st->inner_flags = info.map_flags;
	st->inner_flags_known = true;
	*m = info.max_entries;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != 4 || !pw_is_prime(*m) ||
	    *m > PW_MAGLEV_M_MAX)
		return -EINVAL;
	if ((err = table_reserve(st, *m)))
		return err;
	count = *m;
	err = bpf_map_lookup_batch(fd, NULL, &out, st->mkeys, st->table2, &count, &opts);
	if (err == -ENOENT && count == *m)
		err = 0;
	if (err && no_batch(err)) {
		err = 0;
		for (uint32_t i = 0; i < *m && !err; i++)
			err = bpf_map_lookup_elem(fd, &i, &st->table2[i]) ? -errno : 0;
	}
	/* mkeys may have been overwritten by the batch: restore 0..m-1. */
	for (uint32_t i = 0; i < st->table_cap; i++)
		st->mkeys[i] = i;
	return err;
}

static int read_inner(struct pw_svc_state *st, uint32_t inner_id, uint32_t *m)
{
	int fd = bpf_map_get_fd_by_id(inner_id), err;

	if (fd < 0)
		return -errno;
	err = read_inner_fd(st, fd, m);
	close(fd);
	return err;
}

static int maglev_backends(struct pw_svc_state *st, const struct svc_rec *r)
{
	int err = grow(&st->mb, &st->cap_mb, r->n ? r->n : 1, sizeof(*st->mb));

	if (err)
		return err;
	for (uint32_t j = 0; j < r->n; j++) {
		int bi = be_index_by_id(st, r->slots[j]);

		if (bi < 0)
			return -ENOENT;
		st->mb[j].id = st->be[bi].id;
		st->mb[j].ip = st->be[bi].ip;
		st->mb[j].port = st->be[bi].port;
	}
	return 0;
}

static int load_maglev(void *ctx, const void *key, const void *val)
{
	struct pw_svc_state *st = ((struct pw_services *)ctx)->st;
	uint32_t id, inner_id, m = 0;
	struct svc_rec *r;

	memcpy(&id, key, sizeof(id));
	memcpy(&inner_id, val, sizeof(inner_id));
	if (hostport_id(id))
		return 0;
	r = svc_by_id(st, id);
	if (!r || r->algorithm != PW_LB_MAGLEV)
		return wl_add(&st->stale_maglev, key, NULL);
	r->maglev_m = 1;   /* installed; its size and content checked below */
	if (read_inner(st, inner_id, &m) || !r->n || maglev_backends(st, r))
		return 0;  /* unreadable or stale: rebuilt by the next apply */
	r->maglev_m = m;
	if (pw_maglev_build(st->mb, (int)r->n, m, st->table) == 0)
		r->maglev_current = memcmp(st->table, st->table2, (size_t)m * sizeof(uint32_t)) == 0;
	return 0;
}

static int max_entries(int fd, uint32_t *out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len))
		return -errno;
	*out = info.max_entries;
	return 0;
}

static int load_backend_ports(struct pw_services *s)
{
	for (uint32_t w = 0; w < PW_BACKEND_PORT_WORDS; w++)
		if (bpf_map_lookup_elem(s->fd.backend_ports, &w, &s->st->port_bits[w]))
			return -errno;
	return 0;
}

static int load_state(struct pw_services *s)
{
	struct pw_svc_state *st = s->st;
	struct load_ctx ctx = { .s = s };
	uint32_t max_id = 0;
	int err;

	if ((err = max_entries(s->fd.services, &st->max_fe)) ||
	    (err = max_entries(s->fd.backends, &st->max_be)) ||
	    (err = max_entries(s->fd.slots, &st->max_slots)) ||
	    (err = max_entries(s->fd.maglev, &st->max_maglev)))
		return fail(s, err, "reading map sizes: %s", strerror(-err));
	if ((err = load_backend_ports(s)))
		return fail(s, err, "reading %s: %s", PW_MAP_BACKEND_PORTS, strerror(-err));
	if ((err = map_dump(s, s->fd.backends, sizeof(__u32), sizeof(struct pw_backend), load_backend))) {
		fail(s, err, "reading %s: %s", PW_MAP_BACKENDS, strerror(-err));
		goto out;
	}
	if ((err = map_dump(&ctx, s->fd.services, sizeof(struct pw_svc_key), sizeof(struct pw_svc),
			    load_frontend))) {
		fail(s, err, "reading %s: %s", PW_MAP_SERVICES, strerror(-err));
		goto out;
	}
	for (uint32_t i = 0; i < ctx.n_np; i++) {
		struct svc_rec *r = svc_by_id(st, ctx.np[i].val.id);
		uint32_t idx;

		/* A node-port-only service has no ClusterIP entry: its record
		 * comes from this one (vip 0, port = node port). */
		if (!r && pw_ip4_from_bytes(ctx.np[i].key.addr) == 0) {
			if ((err = rec_from_frontend(st, &ctx.np[i].key, &ctx.np[i].val, 0, &idx)))
				goto out;
			if (!(r = svc_by_id(st, ctx.np[i].val.id)))
				continue;   /* stale, queued for deletion */
		}
		if (!r || r->node_port || ctx.np[i].key.proto != r->proto ||
		    pw_ip4_from_bytes(ctx.np[i].key.addr) != 0) {
			if ((err = wl_add(&st->stale_fe, &ctx.np[i].key, NULL)))
				goto out;
			continue;
		}
		r->node_port = ctx.np[i].key.port;
	}
	if ((err = map_dump(s, s->fd.slots, sizeof(struct pw_slot_key), sizeof(__u32), load_slot))) {
		fail(s, err, "reading %s: %s", PW_MAP_SLOTS, strerror(-err));
		goto out;
	}
	/* Dirty (frontends and revnat rewritten) until its revnat entry is
	 * found and agrees, or when its NodePort entry disagrees. */
	for (uint32_t i = 0; i < st->n_svc; i++)
		st->svc[i].dirty = true;
	if ((err = map_dump(s, s->fd.revnat, sizeof(__u32), sizeof(struct pw_revnat), load_revnat))) {
		fail(s, err, "reading %s: %s", PW_MAP_REVNAT, strerror(-err));
		goto out;
	}
	for (uint32_t i = 0; i < ctx.n_np; i++) {
		struct svc_rec *r = svc_by_id(st, ctx.np[i].val.id);

		if (r && r->node_port == ctx.np[i].key.port && r->proto == ctx.np[i].key.proto &&
		    (ctx.np[i].val.backends != r->n || ctx.np[i].val.algorithm != r->algorithm ||
		     ctx.np[i].val.affinity_timeout != r->affinity))
			r->dirty = true;
	}
	if ((err = map_dump(s, s->fd.maglev, sizeof(__u32), sizeof(__u32), load_maglev))) {
		fail(s, err, "reading %s: %s", PW_MAP_MAGLEV, strerror(-err));
		goto out;
	}
	for (uint32_t i = 0; i < st->n_svc; i++) {
		struct svc_rec *r = &st->svc[i];

		for (uint32_t j = 0; j < r->n; j++) {
			int bi = be_index_by_id(st, r->slots[j]);

			if (bi >= 0)
				st->be[bi].refs++;
		}
		if (r->id > max_id)
			max_id = r->id;
	}
	st->next_svc_id = max_id + 1 < PW_ID_LIMIT ? max_id + 1 : 1;
	max_id = 0;
	for (uint32_t i = 0; i < st->n_be && !err; i++) {
		if (st->be[i].id > max_id)
			max_id = st->be[i].id;
		if (!st->be[i].refs)
			err = mark_candidate(st, i);
	}
	st->next_be_id = max_id + 1 < PW_ID_LIMIT ? max_id + 1 : 1;
out:
	free(ctx.np);
	return err;
}

/* ---- lifecycle ---- */

int pw_services_init(struct pw_services *s, const struct pw_svc_maps *maps, uint32_t maglev_m)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = *maps;
	s->maglev_m = maglev_m ? maglev_m : PW_MAGLEV_M;
	if (!pw_is_prime(s->maglev_m) || s->maglev_m > PW_MAGLEV_M_MAX)
		return fail(s, -EINVAL, "Maglev table size %u is not a prime <= %u", s->maglev_m,
			    PW_MAGLEV_M_MAX);
	s->st = state_new();
	if (!s->st)
		return fail(s, -ENOMEM, "out of memory");
	err = load_state(s);
	if (err) {
		if (!s->err[0])
			fail(s, err, "loading service state: %s", strerror(-err));
		state_free(s->st);
		s->st = NULL;
	}
	return err;
}

static void close_fds(struct pw_svc_maps *m)
{
	int *fds[] = { &m->services, &m->slots, &m->backends, &m->revnat, &m->maglev, &m->affinity,
		       &m->backend_ports };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int pw_services_open(struct pw_services *s, const struct pw_paths *p, uint32_t maglev_m)
{
	struct pw_svc_maps m = { -1, -1, -1, -1, -1, -1, -1 };
	struct { int *fd; const char *name; } want[] = {
		{ &m.services, PW_MAP_SERVICES }, { &m.slots, PW_MAP_SLOTS },
		{ &m.backends, PW_MAP_BACKENDS }, { &m.revnat, PW_MAP_REVNAT },
		{ &m.maglev, PW_MAP_MAGLEV },     { &m.affinity, PW_MAP_AFFINITY },
		{ &m.backend_ports, PW_MAP_BACKEND_PORTS },
	};
	int err;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		*want[i].fd = pw_map_open(p, want[i].name);
		if (*want[i].fd < 0) {
			err = *want[i].fd;
			*want[i].fd = -1;
			close_fds(&m);
			memset(s, 0, sizeof(*s));
			return fail(s, err, "opening %s/%s: %s", p->pin_dir, want[i].name,
				    strerror(-err));
		}
	}
	err = pw_services_init(s, &m, maglev_m);
	if (err) {
		close_fds(&m);
		return err;
	}
	s->own_fds = true;
	return 0;
}

void pw_services_close(struct pw_services *s)
{
	state_free(s->st);
	s->st = NULL;
	if (s->own_fds)
		close_fds(&s->fd);
	s->own_fds = false;
}

/* ---- writing maps ---- */

static int flush_update(struct pw_services *s, int fd, struct wlist *w)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = w->n;
	int err;

	if (!w->n)
		return 0;
	s->last.syscalls++;
	err = bpf_map_update_batch(fd, w->k, w->v, &count, &opts);
	if (err && count == 0 && no_batch(err)) {
		err = 0;
		for (uint32_t i = 0; i < w->n && !err; i++) {
			s->last.syscalls++;
			err = bpf_map_update_elem(fd, w->k + (size_t)i * w->ksz,
						  w->v + (size_t)i * w->vsz, BPF_ANY) ? -errno : 0;
		}
	}
	if (!err)
		s->last.writes += w->n;
	w->n = 0;
	return err;
}

/* Deleting what is already gone is success. */
static int flush_delete(struct pw_services *s, int fd, struct wlist *w)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t done = 0;
	int err = 0;

	while (done < w->n) {
		__u32 count = w->n - done;

		s->last.syscalls++;
		err = bpf_map_delete_batch(fd, w->k + (size_t)done * w->ksz, &count, &opts);
		done += count;
		if (!err)
			break;
		if (err == -ENOENT) {
			done++;         /* the missing key itself */
			err = 0;
			continue;
		}
		if (!no_batch(err) || count)
			break;
		err = 0;
		for (; done < w->n && !err; done++) {
			s->last.syscalls++;
			if (bpf_map_delete_elem(fd, w->k + (size_t)done * w->ksz) && errno != ENOENT)
				err = -errno;
		}
	}
	if (!err)
		s->last.deletes += w->n;
	w->n = 0;
	return err;
}

/* A new inner map holding st->table (m entries): fd or -errno. */
static int build_inner(struct pw_services *s, uint32_t m, uint32_t flags)
{
	struct pw_svc_state *st = s->st;
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = flags);
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = m;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_maglev_in", sizeof(__u32), sizeof(__u32),
				m, &copts);
	int err;

	if (fd < 0)
		return -errno;
	s->last.syscalls += 2;
	err = bpf_map_update_batch(fd, st->mkeys, st->table, &count, &opts);
	if (err && no_batch(err)) {
		err = 0;
		for (uint32_t i = 0; i < m && !err; i++)
			err = bpf_map_update_elem(fd, &i, &st->table[i], BPF_ANY) ? -errno : 0;
	}
	if (err) {
		close(fd);
		return err;
	}
	s->last.maglev_entries += m;
	return fd;
}

static void maglev_installed(struct pw_services *s, struct svc_rec *r)
{
	r->maglev_m = s->maglev_m;
	r->maglev_current = true;
	s->last.maglev_tables++;
}

/* The first table ever written learns which map_flags the pw_maglev inner
 * template wants: BPF_F_INNER_MAP (inner maps may differ in size from the
 * template) is tried first, then none. */
static int install_first_maglev(struct pw_services *s, struct svc_rec *r)
{
	static const uint32_t flags[2] = { BPF_F_INNER_MAP, 0 };
	struct pw_svc_state *st = s->st;
	int err = 0;

	for (int t = 0; t < 2; t++) {
		int fd = build_inner(s, s->maglev_m, flags[t]);

		if (fd < 0)
			return fd;
		s->last.syscalls++;
		err = bpf_map_update_elem(s->fd.maglev, &r->id, &fd, BPF_ANY) ? -errno : 0;
		close(fd);   /* the outer map holds the table now */
		if (!err) {
			st->inner_flags = flags[t];
			st->inner_flags_known = true;
			s->last.writes++;
			maglev_installed(s, r);
			return 0;
		}
		if (err != -EINVAL)
			break;
	}
	return err;
}

/* Rewrite, in service r's installed table, only the entries that differ
 * from st->table (same size). No RCU wait, but a reader may briefly see a
 * mix of old and new entries (each entry is one atomic 4-byte value). */
static int patch_maglev(struct pw_services *s, struct svc_rec *r)
{
	struct pw_svc_state *st = s->st;
	struct wlist w;
	uint32_t inner_id, m = 0;
	int fd, err;

	if (bpf_map_lookup_elem(s->fd.maglev, &r->id, &inner_id))
		return -errno;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return -errno;
	s->last.syscalls += 2;
	err = read_inner_fd(st, fd, &m);
	if (!err && m != s->maglev_m)
		err = -ESTALE;
	wl_init(&w, sizeof(__u32), sizeof(__u32));
	for (uint32_t i = 0; i < m && !err; i++)
		if (st->table[i] != st->table2[i])
			err = wl_add(&w, &i, &st->table[i]);
	if (!err) {
		uint32_t changed = w.n;
		unsigned long writes = s->last.writes;

		err = flush_update(s, fd, &w);
		s->last.writes = writes;   /* counted as Maglev entries, not map elements */
		s->last.maglev_entries += changed;
	}
	if (!err) {
		r->maglev_m = m;
		r->maglev_current = true;
	}
	wl_free(&w);
	close(fd);
	return err;
}

/* Phase 3 for Maglev: build every scheduled table in a new inner map, then
 * swap them all in with one batch update of pw_maglev. The kernel waits for
 * an RCU grace period after a write to a map of maps (so no program still
 * uses the old table when the call returns): one wait per apply, not one
 * per table. With s->maglev_in_place, a table of unchanged size is patched
 * in place instead and no wait happens at all. */
static int install_maglev_tables(struct pw_services *s)
{
	struct pw_svc_state *st = s->st;
	uint32_t i = 0, n_fds;
	int err = 0;

	for (; i < st->n_maglev_build && !err; i++) {
		struct svc_rec *r = &st->svc[st->maglev_build[i]];

		if ((err = table_reserve(st, s->maglev_m)) || (err = maglev_backends(st, r)) ||
		    (err = pw_maglev_build(st->mb, (int)r->n, s->maglev_m, st->table)))
			break;
		if (!st->inner_flags_known) {
			err = install_first_maglev(s, r);
			continue;
		}
		if (s->maglev_in_place && r->maglev_m == s->maglev_m) {
			err = patch_maglev(s, r);
			if (err != -ENOENT && err != -ESTALE)
				continue;   /* done, or a real error; else: replace the table */
		}
		err = build_inner(s, s->maglev_m, st->inner_flags);
		if (err >= 0) {
			int fd = err;

			err = wl_add(&st->maglev_upd, &r->id, &fd);
			if (err)
				close(fd);
		}
	}
	n_fds = st->maglev_upd.n;
	if (!err)
		err = flush_update(s, s->fd.maglev, &st->maglev_upd);
	for (uint32_t j = 0; j < n_fds; j++) {
		int fd;
		uint32_t id;

		memcpy(&fd, st->maglev_upd.v + (size_t)j * sizeof(int), sizeof(fd));
		memcpy(&id, st->maglev_upd.k + (size_t)j * sizeof(id), sizeof(id));
		close(fd);   /* the outer map holds the tables now */
		if (!err)
			maglev_installed(s, svc_by_id(st, id));
	}
	st->maglev_upd.n = 0;
	st->n_maglev_build = 0;
	return err;
}

/* Drop affinity entries of removed services (backend id 0) or naming a
 * backend removed from their service. One pass over pw_affinity, only when
 * something asks for it. */
struct aff_ctx {
	struct u64map set;
	struct wlist del;
};

static int pick_affinity(void *ctx, const void *key, const void *val)
{
	struct aff_ctx *a = ctx;
	const struct pw_affinity_key *k = key;
	const struct pw_affinity *v = val;

	if (u64map_get(&a->set, (uint64_t)k->svc_id << 32) ||
	    u64map_get(&a->set, (uint64_t)k->svc_id << 32 | v->backend_id))
		return wl_add(&a->del, k, NULL);
	return 0;
}

static int drop_affinity(struct pw_services *s)
{
	struct pw_svc_state *st = s->st;
	struct aff_ctx a = { 0 };
	int err = 0;

	if (!st->n_aff_drop || s->fd.affinity < 0)
		goto out;
	wl_init(&a.del, sizeof(struct pw_affinity_key), 0);
	for (uint32_t i = 0; i < st->n_aff_drop && !err; i++)
		err = u64map_put(&a.set, st->aff_drop[i], 1);
	if (!err)
		err = map_dump(&a, s->fd.affinity, sizeof(struct pw_affinity_key),
			       sizeof(struct pw_affinity), pick_affinity);
	if (!err)
		err = flush_delete(s, s->fd.affinity, &a.del);
	wl_free(&a.del);
	u64map_free(&a.set);
out:
	st->n_aff_drop = 0;
	return err;
}

static int want_affinity_drop(struct pw_svc_state *st, uint32_t svc_id, uint32_t be_id)
{
	int err = grow(&st->aff_drop, &st->cap_aff_drop, st->n_aff_drop + 1, sizeof(*st->aff_drop));

	if (err)
		return err;
	st->aff_drop[st->n_aff_drop++] = (uint64_t)svc_id << 32 | be_id;
	return 0;
}

/* ---- planning ---- */

static uint64_t backends_sig(const struct pw_service_config *d)
{
	uint64_t h = mix64((uint64_t)d->n_backends + 0x9e3779b97f4a7c15ULL);

	for (int i = 0; i < d->n_backends; i++)
		h = mix64(h ^ be_key(d->backends[i].ip, d->backends[i].port)) + (uint64_t)i;
	return h;
}

/* The backend record for (ip, port), created (with a new id, queued for
 * pw_backends) if needed. Index, or -errno. */
static int backend_get(struct pw_svc_state *st, uint32_t ip, uint16_t port)
{
	uint32_t *i = u64map_get(&st->be_by_addr, be_key(ip, port)), idx, id;
	struct pw_backend v;
	int err;

	if (i)
		return (int)*i;
	id = alloc_id(&st->be_by_id, &st->next_be_id);
	if (!id)
		return -ENOSPC;
	if ((err = add_be_rec(st, ip, port, id, true, &idx)))
		return err;
	memset(&v, 0, sizeof(v));
	pw_ip4_to_bytes(ip, v.addr);
	v.port = port;
	v.state = PW_BACKEND_ACTIVE;
	if ((err = wl_add(&st->be_upd, &id, &v)))
		return err;
	return (int)idx;
}

static int queue_slot(struct wlist *w, uint32_t svc_id, uint32_t slot, const uint32_t *be_id)
{
	struct pw_slot_key k = { .svc_id = svc_id, .slot = slot };

	return wl_add(w, &k, be_id);
}

/* Diff service ri's slots against the desired backends d (see the phase
 * list at the top). *changed: the set of backends changed. */
static int diff_slots(struct pw_services *s, uint32_t ri, const struct pw_service_config *d,
		      bool affinity, bool *changed)
{
	struct pw_svc_state *st = s->st;
	uint32_t G = ++st->gen, nw = 0, nq = 0, old_n = st->svc[ri].n, new_n, q = 0;
	uint32_t n_added = 0, n_removed = 0, *old, *new;
	int err;

	if ((err = scratch_reserve(st, (uint32_t)d->n_backends + old_n + 1)))
		return err;
	for (int i = 0; i < d->n_backends; i++) {
		int bi = backend_get(st, d->backends[i].ip, d->backends[i].port);

		if (bi < 0)
			return bi;
		if (st->be[bi].want_gen == G)
			continue;   /* listed twice */
		st->be[bi].want_gen = G;
		st->want[nw++] = (uint32_t)bi;
	}
	old = st->svc[ri].slots;
	for (uint32_t j = 0; j < old_n; j++) {
		int bi = be_index_by_id(st, old[j]);

		st->keep[j] = bi >= 0 && st->be[bi].want_gen == G && st->be[bi].have_gen != G;
		if (st->keep[j]) {
			st->be[bi].have_gen = G;
			continue;
		}
		n_removed++;
		if (bi < 0)
			continue;
		if (affinity && (err = want_affinity_drop(st, st->svc[ri].id, old[j])))
			return err;
		if (--st->be[bi].refs == 0 && (err = mark_candidate(st, (uint32_t)bi)))
			return err;
	}
	for (uint32_t i = 0; i < nw; i++) {
		struct be_rec *b = &st->be[st->want[i]];

		if (b->have_gen == G)
			continue;
		b->refs++;
		n_added++;
		st->queue[nq++] = b->id;
	}
	*changed = n_added || n_removed;
	if (!*changed)
		return 0;
	new_n = nw;
	/* Survivors beyond the new count move into holes after the new backends. */
	for (uint32_t j = new_n; j < old_n; j++)
		if (st->keep[j])
			st->queue[nq++] = old[j];
	new = malloc((size_t)(new_n ? new_n : 1) * sizeof(*new));
	if (!new)
		return -ENOMEM;
	for (uint32_t j = 0; j < new_n; j++) {
		new[j] = j < old_n && st->keep[j] ? old[j] : st->queue[q++];
		if ((j >= old_n || new[j] != old[j]) &&
		    (err = queue_slot(&st->slot_upd, st->svc[ri].id, j, &new[j])))
			goto fail;
	}
	for (uint32_t j = new_n; j < old_n; j++) {
		/* Until the count drops, a tail slot may still be picked: make it
		 * name a live backend rather than the removed one. */
		if (new_n && !st->keep[j] &&
		    (err = queue_slot(&st->slot_upd, st->svc[ri].id, j, &new[0])))
			goto fail;
		if ((err = queue_slot(&st->slot_del, st->svc[ri].id, j, NULL)))
			goto fail;
	}
	free(old);
	st->svc[ri].slots = new;
	st->svc[ri].n = st->svc[ri].cap = new_n;
	return 0;
fail:
	free(new);
	return err;
}

static int queue_frontends(struct pw_svc_state *st, const struct svc_rec *r)
{
	struct pw_svc v = svc_value(r);
	struct pw_svc_key k = pw_svc_key_of(r->vip, r->port, r->proto, PW_SVC_CLUSTERIP);
	int err = r->vip ? wl_add(&st->fe_upd, &k, &v) : 0;   /* vip 0: a node port only */

	if (!err && r->node_port) {
		k = pw_svc_key_of(0, r->node_port, r->proto, PW_SVC_NODEPORT);
		err = wl_add(&st->fe_upd, &k, &v);
	}
	return err;
}

static int queue_revnat(struct pw_svc_state *st, const struct svc_rec *r)
{
	struct pw_revnat v;

	memset(&v, 0, sizeof(v));
	pw_ip4_to_bytes(r->vip, v.addr);
	v.port = r->port;
	return wl_add(&st->revnat_upd, &r->id, &v);
}

static int plan_service(struct pw_services *s, int existing, const struct pw_service_config *d,
			uint64_t sig)
{
	struct pw_svc_state *st = s->st;
	uint8_t alg = d->maglev ? PW_LB_MAGLEV : PW_LB_RANDOM;
	uint32_t ri, old_n;
	struct svc_rec *r;
	bool set_changed = false, fe_write;
	int err;

	if (existing < 0) {
		uint32_t id = alloc_id(&st->svc_by_id, &st->next_svc_id);

		if (!id)
			return fail(s, -ENOSPC, "no free service id");
		if ((err = add_svc_rec(st, d->vip, d->port, d->protocol, id, &ri)))
			return err;
		st->svc[ri].algorithm = alg;
		st->svc[ri].dirty = true;
	} else {
		ri = (uint32_t)existing;
	}
	old_n = st->svc[ri].n;
	if (!st->svc[ri].sig_valid || st->svc[ri].sig != sig) {
		bool aff = st->svc[ri].affinity || d->affinity_timeout;

		if ((err = diff_slots(s, ri, d, aff, &set_changed)))
			return err;
	}
	r = &st->svc[ri];   /* diff_slots may have moved the array */
	r->sig = sig;
	r->sig_valid = true;

	fe_write = r->dirty || r->n != old_n || r->algorithm != alg ||
		   r->affinity != d->affinity_timeout || r->node_port != d->node_port;
	if (r->node_port && r->node_port != d->node_port) {
		struct pw_svc_key k = pw_svc_key_of(0, r->node_port, r->proto, PW_SVC_NODEPORT);

		if ((err = wl_add(&st->fe_del, &k, NULL)))
			return err;
	}
	if (r->dirty && (err = queue_revnat(st, r)))
		return err;
	if (alg == PW_LB_MAGLEV && r->n &&
	    (set_changed || !r->maglev_current || r->maglev_m != s->maglev_m)) {
		if ((err = push_u32(&st->maglev_build, &st->n_maglev_build, &st->cap_maglev_build, ri)))
			return err;
	} else if ((alg != PW_LB_MAGLEV || !r->n) && r->maglev_m) {
		if ((err = wl_add(&st->maglev_del, &r->id, NULL)))
			return err;
		r->maglev_m = 0;
		r->maglev_current = false;
	}
	r->algorithm = alg;
	r->affinity = d->affinity_timeout;
	r->node_port = d->node_port;
	r->dirty = false;
	if (fe_write)
		return queue_frontends(st, r);
	return 0;
}

static int plan_removal(struct pw_services *s, uint32_t ri)
{
	struct pw_svc_state *st = s->st;
	struct svc_rec *r = &st->svc[ri];
	struct pw_svc_key k = pw_svc_key_of(r->vip, r->port, r->proto, PW_SVC_CLUSTERIP);
	int err;

	if (r->vip && (err = wl_add(&st->fe_del, &k, NULL)))
		return err;
	if (r->node_port) {
		k = pw_svc_key_of(0, r->node_port, r->proto, PW_SVC_NODEPORT);
		if ((err = wl_add(&st->fe_del, &k, NULL)))
			return err;
	}
	for (uint32_t j = 0; j < r->n; j++) {
		int bi = be_index_by_id(st, r->slots[j]);

		if ((err = queue_slot(&st->slot_del, r->id, j, NULL)))
			return err;
		if (bi >= 0 && --st->be[bi].refs == 0 && (err = mark_candidate(st, (uint32_t)bi)))
			return err;
	}
	if ((err = wl_add(&st->revnat_del, &r->id, NULL)))
		return err;
	if (r->maglev_m && (err = wl_add(&st->maglev_del, &r->id, NULL)))
		return err;
	if (r->affinity && (err = want_affinity_drop(st, r->id, 0)))
		return err;
	return push_u32(&st->del_svc, &st->n_del_svc, &st->cap_del_svc, ri);
}

/* ---- validation: refuse bad input before anything is written ---- */

static int validate(struct pw_services *s, const struct pw_service_config *svcs, int n,
		    int *idx, uint64_t *sigs)
{
	struct pw_svc_state *st = s->st;
	struct u64map fresh = { 0 };
	uint64_t slots = 0;
	uint32_t fes = 0, maglevs = 0, G = ++st->gen;
	char vip[PW_IP4_STRLEN];
	int err = 0;

	for (int i = 0; i < n && !err; i++) {
		const struct pw_service_config *d = &svcs[i];
		const char *name = d->name[0] ? d->name : "(unnamed)";
		uint32_t *ri;
		int p = d->protocol == IPPROTO_TCP ? 0 : 1;

		if (d->protocol != IPPROTO_TCP && d->protocol != IPPROTO_UDP) {
			pw_ip4_format(d->vip, vip);
			err = fail(s, -EINVAL, "service %s (%s:%u): protocol %u is not tcp or udp",
				   name, vip, d->port, d->protocol);
		}
		else if (!d->port)
			err = fail(s, -EINVAL, "service %s: port 0", name);
		else if (!d->vip && d->node_port != d->port)
			err = fail(s, -EINVAL, "service %s: a node-port-only service (vip 0) must have "
				   "port = nodePort (%u != %u)", name, d->port, d->node_port);
		else if (d->n_backends < 0 || d->n_backends > 0xffff || (d->n_backends && !d->backends))
			err = fail(s, -EINVAL, "service %s: %d backends (at most 65535)", name,
				   d->n_backends);
		else if (d->maglev && (uint32_t)d->n_backends > s->maglev_m)
			err = fail(s, -EINVAL, "service %s: %d backends exceed the Maglev table size %u",
				   name, d->n_backends, s->maglev_m);
		if (err)
			break;
		ri = u64map_get(&st->svc_by_fe, fe_key(d->vip, d->port, d->protocol));
		if (ri) {
			if (st->svc[*ri].seen_gen == G)
				err = -EEXIST;
			st->svc[*ri].seen_gen = G;
			idx[i] = (int)*ri;
		} else {
			if (u64map_get(&fresh, fe_key(d->vip, d->port, d->protocol)))
				err = -EEXIST;
			else
				err = u64map_put(&fresh, fe_key(d->vip, d->port, d->protocol), 1);
			idx[i] = -1;
		}
		if (err == -EEXIST) {
			pw_ip4_format(d->vip, vip);
			err = fail(s, -EINVAL, "service %s: frontend %s:%u/%s listed twice", name,
				   vip, d->port, p ? "udp" : "tcp");
			break;
		}
		if (d->node_port) {
			if (d->vip)
				fes++;
			if (st->np_gen[p][d->node_port] == G) {
				err = fail(s, -EINVAL, "service %s: nodePort %u/%s listed twice",
					   name, d->node_port, p ? "udp" : "tcp");
				break;
			}
			st->np_gen[p][d->node_port] = G;
		}
		fes++;
		slots += (uint64_t)d->n_backends;
		maglevs += d->maglev && d->n_backends;
		sigs[i] = backends_sig(d);
	}
	u64map_free(&fresh);
	if (err)
		return err;
	if (fes > st->max_fe)
		return fail(s, -E2BIG, "%u frontends do not fit %s (%u entries)", fes,
			    PW_MAP_SERVICES, st->max_fe);
	if (slots > st->max_slots)
		return fail(s, -E2BIG, "%llu backend slots do not fit %s (%u entries)",
			    (unsigned long long)slots, PW_MAP_SLOTS, st->max_slots);
	if (maglevs > st->max_maglev)
		return fail(s, -E2BIG, "%u Maglev services do not fit %s (%u entries)", maglevs,
			    PW_MAP_MAGLEV, st->max_maglev);
	if (slots > st->max_be) {
		/* Distinct backends may still fit: count them. */
		struct u64map distinct = { 0 };

		for (int i = 0; i < n && !err; i++)
			for (int j = 0; j < svcs[i].n_backends && !err; j++)
				err = u64map_put(&distinct, be_key(svcs[i].backends[j].ip,
								   svcs[i].backends[j].port), 1);
		if (!err && distinct.n > st->max_be)
			err = fail(s, -E2BIG, "%u backends do not fit %s (%u entries)", distinct.n,
				   PW_MAP_BACKENDS, st->max_be);
		u64map_free(&distinct);
	}
	return err;
}

/* ---- apply ---- */

/* Set the port bit of every backend (datapath: pw_lb_from_backend_port).
 * Bits are never cleared: conntrack may still pin a flow to a backend no
 * service lists any more, and its replies must still be translated. A word
 * is read again before it is written: the CNI plugin sets the bits of
 * hostPort backends behind our back. */
static int write_backend_ports(struct pw_services *s)
{
	struct pw_svc_state *st = s->st;
	uint64_t want[PW_BACKEND_PORT_WORDS];

	memcpy(want, st->port_bits, sizeof(want));
	for (uint32_t i = 0; i < st->n_be; i++)
		want[st->be[i].port / 64] |= 1ULL << (st->be[i].port % 64);
	for (uint32_t w = 0; w < PW_BACKEND_PORT_WORDS; w++) {
		if (want[w] == st->port_bits[w])
			continue;
		s->last.syscalls += 2;
		if (bpf_map_lookup_elem(s->fd.backend_ports, &w, &st->port_bits[w]))
			return -errno;
		want[w] |= st->port_bits[w];
		if (bpf_map_update_elem(s->fd.backend_ports, &w, &want[w], BPF_ANY))
			return -errno;
		st->port_bits[w] = want[w];
		s->last.writes++;
	}
	return 0;
}

static int write_phases(struct pw_services *s)
{
	struct pw_svc_state *st = s->st;
	int err;

#define STEP(call, what) do { if ((err = (call))) \
	return fail(s, err, "%s: %s", what, strerror(-err)); } while (0)
	/* 0: leftovers of an interrupted apply, found at start-up */
	STEP(flush_delete(s, s->fd.services, &st->stale_fe), "deleting stale frontends");
	STEP(flush_delete(s, s->fd.slots, &st->stale_slots), "deleting stale slots");
	STEP(flush_delete(s, s->fd.revnat, &st->stale_revnat), "deleting stale revnat");
	STEP(flush_delete(s, s->fd.maglev, &st->stale_maglev), "deleting stale Maglev tables");
	/* 1-3: everything a frontend will point to */
	STEP(write_backend_ports(s), "writing " PW_MAP_BACKEND_PORTS);
	STEP(flush_update(s, s->fd.backends, &st->be_upd), "writing " PW_MAP_BACKENDS);
	STEP(flush_update(s, s->fd.slots, &st->slot_upd), "writing " PW_MAP_SLOTS);
	STEP(flush_update(s, s->fd.revnat, &st->revnat_upd), "writing " PW_MAP_REVNAT);
	STEP(install_maglev_tables(s), "installing Maglev tables");
	/* 4: frontends switch over (deletes first: a NodePort may move between services) */
	STEP(flush_delete(s, s->fd.services, &st->fe_del), "deleting frontends");
	STEP(flush_update(s, s->fd.services, &st->fe_upd), "writing " PW_MAP_SERVICES);
	/* 5: what no frontend points to any more */
	STEP(flush_delete(s, s->fd.slots, &st->slot_del), "deleting slots");
	STEP(flush_delete(s, s->fd.revnat, &st->revnat_del), "deleting revnat");
	STEP(flush_delete(s, s->fd.maglev, &st->maglev_del), "deleting Maglev tables");
	STEP(drop_affinity(s), "deleting affinity entries");
	/* 6: backends no service names */
	for (uint32_t i = 0; i < st->n_cand; i++) {
		struct be_rec *b = &st->be[st->cand[i]];

		if (!b->refs)
			STEP(wl_add(&st->be_del, &b->id, NULL), "planning backend deletes");
	}
	STEP(flush_delete(s, s->fd.backends, &st->be_del), "deleting " PW_MAP_BACKENDS);
#undef STEP
	return 0;
}

/* Drop the records of removed services and unreferenced backends; highest
 * index first, as removal moves the last record into the hole. */
static int cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void forget_removed(struct pw_svc_state *st)
{
	uint32_t k = 0;

	if (st->n_del_svc)
		qsort(st->del_svc, st->n_del_svc, sizeof(*st->del_svc), cmp_desc);
	for (uint32_t i = 0; i < st->n_del_svc; i++)
		remove_svc_rec(st, st->del_svc[i]);
	st->n_del_svc = 0;
	for (uint32_t i = 0; i < st->n_cand; i++) {
		st->be[st->cand[i]].candidate = false;
		if (!st->be[st->cand[i]].refs)
			st->cand[k++] = st->cand[i];
	}
	if (k)
		qsort(st->cand, k, sizeof(*st->cand), cmp_desc);
	for (uint32_t i = 0; i < k; i++)
		remove_be_rec(st, st->cand[i]);
	st->n_cand = 0;
}

static void reset_pending(struct pw_svc_state *st)
{
	struct wlist *lists[] = { &st->be_upd, &st->slot_upd, &st->revnat_upd, &st->fe_upd,
				  &st->fe_del, &st->slot_del, &st->revnat_del, &st->be_del,
				  &st->maglev_del };

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		lists[i]->n = 0;
	st->n_maglev_build = st->n_aff_drop = st->n_del_svc = 0;
}

static int reload(struct pw_services *s)
{
	int err;

	state_free(s->st);
	s->st = state_new();
	if (!s->st)
		return fail(s, -ENOMEM, "out of memory");
	err = load_state(s);
	if (err)
		s->st->broken = true;   /* try again next time */
	return err;
}

int pw_services_apply(struct pw_services *s, const struct pw_service_config *svcs, int n)
{
	struct pw_svc_state *st;
	int *idx = NULL, err;
	uint64_t *sigs = NULL;
	uint32_t G;

	memset(&s->last, 0, sizeof(s->last));
	s->err[0] = '\0';
	if (n < 0 || (n && !svcs))
		return fail(s, -EINVAL, "bad service list");
	if ((!s->st || s->st->broken) && (err = reload(s)))
		return err;
	st = s->st;
	idx = malloc((size_t)(n ? n : 1) * sizeof(*idx));
	sigs = malloc((size_t)(n ? n : 1) * sizeof(*sigs));
	if (!idx || !sigs) {
		err = fail(s, -ENOMEM, "out of memory");
		goto out;
	}
	if ((err = validate(s, svcs, n, idx, sigs)))
		goto out;
	/* From here the mirror changes ahead of the maps: any failure means
	 * re-reading the maps before the next apply. */
	G = st->gen;
	for (int i = 0; i < n && !err; i++) {
		err = plan_service(s, idx[i], &svcs[i], sigs[i]);
		/* plan_service bumps gen for its diff; seen marks use G. */
		if (!err)
			st->svc[idx[i] >= 0 ? (uint32_t)idx[i] : st->n_svc - 1].seen_gen = G;
	}
	for (uint32_t i = 0; i < st->n_svc && !err; i++)
		if (st->svc[i].seen_gen != G)
			err = plan_removal(s, i);
	if (!err)
		err = write_phases(s);
	if (err) {
		if (!s->err[0])
			fail(s, err, "planning services: %s", strerror(-err));
		reset_pending(st);
		st->broken = true;
		goto out;
	}
	forget_removed(st);
out:
	free(idx);
	free(sigs);
	return err;
}

/* ---- traffic policies ---- */

bool pw_services_backend_local(const struct pw_backend_config *b, const struct pw_cidr *local_pods, uint32_t node_ip)
{
	return pw_cidr_contains(local_pods, b->ip) || b->ip == node_ip;
}

/* d's backends, or only its local ones, copied to *pool (advanced): those
 * not terminating, or, when none of them is left, the terminating ones
 * (graceful termination: a terminating endpoint gets new connections only
 * when it is the last). */
static void copy_backends(const struct pw_service_config *d, bool local_only, const struct pw_cidr *local_pods,
			  uint32_t node_ip, struct pw_backend_config **pool, struct pw_service_config *o)
{
	o->backends = *pool;
	o->n_backends = 0;
	for (int pass = 0; pass < 2 && o->n_backends == 0; pass++)
		for (int j = 0; j < d->n_backends; j++)
			if (d->backends[j].terminating == (pass == 1) &&
			    (!local_only || pw_services_backend_local(&d->backends[j], local_pods, node_ip)))
				o->backends[o->n_backends++] = d->backends[j];
	*pool += o->n_backends;
}

static bool any_terminating(const struct pw_service_config *d)
{
	for (int j = 0; j < d->n_backends; j++)
		if (d->backends[j].terminating)
			return true;
	return false;
}

int pw_services_localize(const struct pw_service_config *svcs, int n, const struct pw_cidr *local_pods,
			 uint32_t node_ip, struct pw_service_config **out, int *n_out)
{
	struct pw_backend_config *pool;
	struct pw_service_config *o;
	size_t total = 0, k = 0;
	bool any = false;

	*out = NULL;
	*n_out = n;
	for (int i = 0; i < n; i++) {
		any |= svcs[i].external_local || svcs[i].internal_local || any_terminating(&svcs[i]);
		total += (size_t)svcs[i].n_backends * 2;
	}
	if (!any)
		return 0;
	/* One block: up to 2n services, then their backend lists. */
	o = calloc(1, (size_t)n * 2 * sizeof(*o) + total * sizeof(*pool) + 1);
	if (!o)
		return -ENOMEM;
	pool = (struct pw_backend_config *)(o + (size_t)n * 2);
	for (int i = 0; i < n; i++) {
		const struct pw_service_config *d = &svcs[i];
		bool split = d->node_port && d->external_local != d->internal_local;

		o[k] = *d;
		/* The ClusterIP (and, unsplit, the node port with the same policy). */
		copy_backends(d, d->internal_local, local_pods, node_ip, &pool, &o[k]);
		if (split) {
			o[k].node_port = 0;
			k++;
			o[k] = *d;
			o[k].vip = 0;
			o[k].port = d->node_port;
			copy_backends(d, d->external_local, local_pods, node_ip, &pool, &o[k]);
		}
		k++;
	}
	*out = o;
	*n_out = (int)k;
	return 0;
}

void pw_services_localized_free(struct pw_service_config *out)
{
	free(out);
}

/* ---- read side ---- */

int pw_services_count(const struct pw_services *s)
{
	return s->st ? (int)s->st->n_svc : 0;
}

int pw_services_get(const struct pw_services *s, int i, struct pw_svc_view *out)
{
	const struct svc_rec *r;

	if (!s->st || i < 0 || (uint32_t)i >= s->st->n_svc)
		return -ENOENT;
	r = &s->st->svc[i];
	memset(out, 0, sizeof(*out));
	out->id = r->id;
	out->vip = r->vip;
	out->port = r->port;
	out->proto = r->proto;
	out->node_port = r->node_port;
	out->maglev = r->algorithm == PW_LB_MAGLEV;
	out->affinity_timeout = r->affinity;
	out->n_backends = r->n;
	out->backend_ids = r->slots;
	return 0;
}

int pw_services_backend(const struct pw_services *s, uint32_t id, uint32_t *ip, uint16_t *port)
{
	int bi = s->st ? be_index_by_id(s->st, id) : -1;

	if (bi < 0)
		return -ENOENT;
	*ip = s->st->be[bi].ip;
	*port = s->st->be[bi].port;
	return 0;
}

uint32_t pw_services_id(const struct pw_services *s, uint32_t vip, uint16_t port, uint8_t proto)
{
	uint32_t *i = s->st ? u64map_get(&s->st->svc_by_fe, fe_key(vip, port, proto)) : NULL;

	return i ? s->st->svc[*i].id : 0;
}
