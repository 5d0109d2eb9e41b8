/* Expiry of conntrack entries (pw_ct).
 *
 * pw_ct is a plain hash (bpf/lib/maps.h): a full table refuses new flows
 * rather than evict established ones, so nothing but this thread ever
 * frees an entry. Every few seconds the whole table is read with batch
 * lookups and an entry goes when its flow has been idle longer than the
 * timeout of its state and protocol (--ct-timeout-*).
 *
 * A flow has two entries (bpf/lib/conntrack.h, lb.h): forward, keyed by the
 * packet as the client sent it (client -> frontend), and reply, keyed by
 * the packet as the backend sends it (backend -> client, or -> the pods'
 * gateway for hairpin flows). The datapath keeps state and last_seen_ns of
 * the two in step, but only refreshes the other half once a second. Each
 * entry is judged by the flow's freshest half (its partner is found in the
 * same dump, its key rebuilt from the entry as the datapath builds it), so
 * both halves expire in the same pass and a flow whose packets go one way
 * only is not cut in half. Before a delete the entry is read again: a
 * packet that refreshed it since the dump keeps it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "cidr.h"
#include "inspect.h"
#include "log.h"
#include "metrics_http.h"

#define GC_INTERVAL_MS_MAX 5000
#define GC_INTERVAL_MS_MIN 500

struct pw_ct_gc {
	pthread_t thread;
	int ct_fd, backends_fd, revnat_fd;   /* our own fds: independent of the skeletons */
	int stop_fd;                         /* eventfd: written to stop the thread */
	__u64 t_tcp, t_syn, t_close, t_udp;  /* timeouts, ns */
	int interval_ms;
	__u8 node_ip[4], gateway[4];         /* NodePort frontend, hairpin client address */
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static double ms_since(__u64 t0)
{
	return (double)(now_ns() - t0) / 1e6;
}

static __u64 timeout_ns(const struct pw_ct_gc *gc, __u8 proto, __u8 state)
{
	if (proto != IPPROTO_TCP)
		return gc->t_udp;
	switch (state) {
	case PW_CT_NEW: return gc->t_syn;
	case PW_CT_ESTABLISHED: return gc->t_tcp;
	default: return gc->t_close;
	}
}

/* ---- an index of the dumped keys (open addressing) ---- */

struct key_index {
	const struct pw_ct_key *keys;
	uint32_t *slot;      /* entry index + 1, 0 = empty */
	size_t mask;
};

static size_t key_hash(const struct pw_ct_key *k)
{
	__u64 a, b;

	memcpy(&a, k, 8);
	memcpy(&b, (const char *)k + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ull;
	a ^= a >> 29;
	a *= 0xbf58476d1ce4e5b9ull;
	return (size_t)(a ^ (a >> 32));
}

static int index_build(struct key_index *ix, const struct pw_ct_key *keys, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2)
		cap *= 2;
	ix->keys = keys;
	ix->mask = cap - 1;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	if (!ix->slot)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t h = key_hash(&keys[i]) & ix->mask;

		while (ix->slot[h])
			h = (h + 1) & ix->mask;
		ix->slot[h] = (uint32_t)i + 1;
	}
	return 0;
}

static long index_find(const struct key_index *ix, const struct pw_ct_key *k)
{
	size_t h = key_hash(k) & ix->mask;

	while (ix->slot[h]) {
		uint32_t i = ix->slot[h] - 1;

		if (memcmp(&ix->keys[i], k, sizeof(*k)) == 0)
			return i;
		h = (h + 1) & ix->mask;
	}
	return -1;
}

/* ---- partners ---- */

/* Small id -> value tables of pw_backends and pw_revnat, dumped per pass. */
struct id_table {
	__u32 *ids;
	void *vals;
	size_t n, vsize;
};

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int id_table_load(struct id_table *t, int fd, size_t vsize)
{
	void *keys = NULL, *vals = NULL;
	size_t n = 0;
	int err;

	memset(t, 0, sizeof(*t));
	t->vsize = vsize;
	if (fd < 0)
		return 0;
	err = pw_inspect_dump(fd, sizeof(__u32), (uint32_t)vsize, &keys, &vals, &n);
	if (err)
		return err;
	/* Sorted copies for bsearch: id followed by its value. */
	t->ids = malloc(n * (sizeof(__u32) + vsize) + 1);
	if (!t->ids) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		char *rec = (char *)t->ids + i * (sizeof(__u32) + vsize);

		memcpy(rec, (char *)keys + i * sizeof(__u32), sizeof(__u32));
		memcpy(rec + sizeof(__u32), (char *)vals + i * vsize, vsize);
	}
	t->n = n;
	qsort(t->ids, n, sizeof(__u32) + vsize, id_cmp);
	free(keys);
	free(vals);
	return 0;
}

static const void *id_table_get(const struct id_table *t, __u32 id)
{
	const char *rec = t->n ? bsearch(&id, t->ids, t->n, sizeof(__u32) + t->vsize, id_cmp) : NULL;

	return rec ? rec + sizeof(__u32) : NULL;
}

/* The other entry of k's flow, as lb.h builds it. false when it cannot be
 * known (the backend or the service is gone: the flow is dead anyway and
 * each half goes by its own age). */
static bool partner_key(const struct pw_ct_gc *gc, const struct id_table *backends,
			const struct id_table *revnat, const struct pw_ct_key *k,
			const struct pw_ct_entry *e, struct pw_ct_key *p)
{
	memset(p, 0, sizeof(*p));
	p->proto = k->proto;
	if (k->dir == PW_CT_FORWARD) {
		/* reply: backend -> client (hairpin: -> gateway), bport -> cport */
		const struct pw_backend *b = id_table_get(backends, e->backend_id);

		if (!b)
			return false;
		memcpy(p->saddr, b->addr, 4);
		memcpy(p->daddr, (e->flags & PW_CT_F_HAIRPIN) ? gc->gateway : k->saddr, 4);
		p->sport = b->port;
		p->dport = k->sport;
		p->dir = PW_CT_REPLY;
		return true;
	}
	/* forward: client -> frontend (NodePort: node address, node port; else revnat) */
	memcpy(p->saddr, (e->flags & PW_CT_F_HAIRPIN) ? k->saddr : k->daddr, 4);
	p->sport = k->dport;
	if (e->flags & PW_CT_F_NODEPORT) {
		static const __u8 none[4];

		/* the address the client used (entries from before it was kept: the node IP) */
		memcpy(p->daddr, memcmp(e->fe_addr, none, 4) ? e->fe_addr : gc->node_ip, 4);
		p->dport = e->fe_port;
	} else {
		const struct pw_revnat *rn = id_table_get(revnat, e->svc_id);

		if (!rn)
			return false;
		memcpy(p->daddr, rn->addr, 4);
		p->dport = rn->port;
	}
	p->dir = PW_CT_FORWARD;
	return true;
}

/* ---- one pass ---- */

struct pass_stats {
	size_t entries, expired, deleted, refreshed;
};

/* Deletes an expired entry unless a packet refreshed it since the dump. */
static bool delete_if_unchanged(const struct pw_ct_gc *gc, const struct pw_ct_key *k,
				const struct pw_ct_entry *seen)
{
	struct pw_ct_entry now;

	if (bpf_map_lookup_elem(gc->ct_fd, k, &now))
		return false;   /* gone already */
	if (now.last_seen_ns != seen->last_seen_ns || now.state != seen->state)
		return false;
	return bpf_map_delete_elem(gc->ct_fd, k) == 0;
}

static int gc_pass(struct pw_ct_gc *gc, struct pass_stats *st)
{
	struct id_table backends, revnat;
	struct pw_ct_key *keys = NULL;
	struct pw_ct_entry *vals = NULL;
	struct key_index ix = { 0 };
	__u64 now;
	size_t n = 0;
	int err;

	memset(st, 0, sizeof(*st));
	err = pw_inspect_dump(gc->ct_fd, sizeof(*keys), sizeof(*vals), (void **)&keys, (void **)&vals, &n);
	if (err || !n)
		return err;
	st->entries = n;
	if ((err = id_table_load(&backends, gc->backends_fd, sizeof(struct pw_backend))))
		goto out_keys;
	if ((err = id_table_load(&revnat, gc->revnat_fd, sizeof(struct pw_revnat))))
		goto out_backends;
	if ((err = index_build(&ix, keys, n)))
		goto out_revnat;
	now = now_ns();
	for (size_t i = 0; i < n; i++) {
		__u64 deadline = vals[i].last_seen_ns + timeout_ns(gc, keys[i].proto, vals[i].state);
		struct pw_ct_key pk;
		long j;

		if (partner_key(gc, &backends, &revnat, &keys[i], &vals[i], &pk) && (j = index_find(&ix, &pk)) >= 0) {
			__u64 d = vals[j].last_seen_ns + timeout_ns(gc, keys[j].proto, vals[j].state);

			if (d > deadline)
				deadline = d;
		}
		if (deadline >= now)
			continue;
		st->expired++;
		if (delete_if_unchanged(gc, &keys[i], &vals[i]))
			st->deleted++;
		else
			st->refreshed++;
	}
	free(ix.slot);
out_revnat:
	free(revnat.ids);
out_backends:
	free(backends.ids);
out_keys:
	free(keys);
	free(vals);
	return err;
}

static void *gc_thread(void *arg)
{
	struct pw_ct_gc *gc = arg;
	struct pollfd pfd = { .fd = gc->stop_fd, .events = POLLIN };

	for (;;) {
		struct pass_stats st;
		int r = poll(&pfd, 1, gc->interval_ms), err;
		__u64 t0;

		if (r > 0 || (r < 0 && errno != EINTR))
			break;
		if (r < 0)
			continue;
		t0 = now_ns();
		err = gc_pass(gc, &st);
		if (err) {
			pw_warn("conntrack expiry: %s, retrying in %d ms", strerror(-err), gc->interval_ms);
			continue;
		}
		if (st.deleted)
			pw_metrics_ct_gc_deleted(st.deleted);
		if (st.entries)
			pw_debug("conntrack expiry: %zu entries read, %zu expired, %zu deleted, %zu refreshed "
				 "meanwhile, in %.2f ms", st.entries, st.expired, st.deleted, st.refreshed, ms_since(t0));
	}
	return NULL;
}

int pw_ct_gc_start(struct pw_agent *a, int ct_fd)
{
	const struct pw_ct_timeouts *t = &a->ct_timeout;
	int shortest = t->tcp, err;
	struct pw_ct_gc *gc;

	gc = calloc(1, sizeof(*gc));
	if (!gc)
		return -ENOMEM;
	gc->ct_fd = gc->backends_fd = gc->revnat_fd = gc->stop_fd = -1;
	gc->t_tcp = (__u64)t->tcp * 1000000000ull;
	gc->t_syn = (__u64)t->tcp_syn * 1000000000ull;
	gc->t_close = (__u64)t->tcp_close * 1000000000ull;
	gc->t_udp = (__u64)t->udp * 1000000000ull;
	if (t->tcp_syn < shortest)
		shortest = t->tcp_syn;
	if (t->tcp_close < shortest)
		shortest = t->tcp_close;
	if (t->udp < shortest)
		shortest = t->udp;
	/* Often enough that an entry outlives its timeout by at most half of
	 * the shortest one; each pass reads the whole table, so not too often. */
	gc->interval_ms = shortest * 1000 / 2;
	if (gc->interval_ms > GC_INTERVAL_MS_MAX)
		gc->interval_ms = GC_INTERVAL_MS_MAX;
	if (gc->interval_ms < GC_INTERVAL_MS_MIN)
		gc->interval_ms = GC_INTERVAL_MS_MIN;
	pw_ip4_to_bytes(a->cfg.ip, gc->node_ip);
	pw_ip4_to_bytes(pw_cidr_gateway(&a->cfg.pod_cidr), gc->gateway);
	gc->ct_fd = dup(ct_fd);
	gc->backends_fd = pw_loader_map_fd(a, PW_MAP_BACKENDS);
	gc->revnat_fd = pw_loader_map_fd(a, PW_MAP_REVNAT);
	gc->backends_fd = gc->backends_fd >= 0 ? dup(gc->backends_fd) : -1;
	gc->revnat_fd = gc->revnat_fd >= 0 ? dup(gc->revnat_fd) : -1;
	gc->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (gc->ct_fd < 0 || gc->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = -pthread_create(&gc->thread, NULL, gc_thread, gc);
	if (err)
		goto fail;
	a->ct_gc = gc;
	pw_info("conntrack: entries expire after idle TCP established %d s, SYN %d s, closing %d s, "
		"UDP %d s (checked every %d ms)", t->tcp, t->tcp_syn, t->tcp_close, t->udp, gc->interval_ms);
	return 0;
fail:
	if (gc->ct_fd >= 0)
		close(gc->ct_fd);
	if (gc->backends_fd >= 0)
		close(gc->backends_fd);
	if (gc->revnat_fd >= 0)
		close(gc->revnat_fd);
	if (gc->stop_fd >= 0)
		close(gc->stop_fd);
	free(gc);
	return err;
}

void pw_ct_gc_stop(struct pw_agent *a)
{
	struct pw_ct_gc *gc = a->ct_gc;
	__u64 one = 1;

	if (!gc)
		return;
	if (write(gc->stop_fd, &one, sizeof(one)) != sizeof(one))
		pw_warn("cannot stop the conntrack expiry thread cleanly");
	else
		pthread_join(gc->thread, NULL);
	close(gc->ct_fd);
	if (gc->backends_fd >= 0)
		close(gc->backends_fd);
	if (gc->revnat_fd >= 0)
		close(gc->revnat_fd);
	close(gc->stop_fd);
	free(gc);
	a->ct_gc = NULL;
}
