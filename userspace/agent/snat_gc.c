/* Expiry of idle masquerade translations (pw_snat).
 *
 * The datapath stamps every entry it uses with bpf_ktime_get_ns() (its
 * CLOCK_MONOTONIC); the map is an LRU, so it never fills up, but a port
 * allocated to a finished flow should come free long before the LRU evicts
 * it, and a stale reverse entry must not deliver a later stranger's packets
 * into a pod. A thread walks the map every few seconds and deletes entries
 * idle for longer than the timeout. The two entries of one flow (egress:
 * pod side -> node IP/port; ingress: remote -> pod) expire together, when
 * both are idle: a flow whose packets only go one way stays intact. */
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
#include "log.h"

#define GC_INTERVAL_MS_MAX 5000

struct pw_snat_gc {
	pthread_t thread;
	int map_fd;          /* our own dup: independent of the skeleton's lifetime */
	int stop_fd;         /* eventfd: written to stop the thread */
	__u64 timeout_ns;    /* TCP/UDP */
	__u64 icmp_timeout_ns;
	int interval_ms;
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* The other entry of the same flow. Egress key (pod, remote, pod port,
 * remote port) -> (node IP, allocated port); ingress key (remote, node IP,
 * remote port, allocated port) -> (pod, pod port): each one's key and value
 * give the other's key. */
static void partner_key(const struct pw_nat_key *k, const struct pw_nat_entry *e, struct pw_nat_key *p)
{
	memset(p, 0, sizeof(*p));
	p->proto = k->proto;
	if (k->dir == PW_DIR_EGRESS) {
		memcpy(p->saddr, k->daddr, sizeof(p->saddr));
		memcpy(p->daddr, e->addr, sizeof(p->daddr));
		p->sport = k->dport;
		p->dport = e->port;
		p->dir = PW_DIR_INGRESS;
	} else {
		memcpy(p->saddr, e->addr, sizeof(p->saddr));
		memcpy(p->daddr, k->saddr, sizeof(p->daddr));
		p->sport = e->port;
		p->dport = k->sport;
		p->dir = PW_DIR_EGRESS;
	}
}

struct victims {
	struct pw_nat_key *keys;
	size_t n, cap;
};

static int victims_add(struct victims *v, const struct pw_nat_key *k)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		struct pw_nat_key *g = realloc(v->keys, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		v->keys = g;
		v->cap = cap;
	}
	v->keys[v->n++] = *k;
	return 0;
}

static bool idle(const struct pw_snat_gc *gc, __u8 proto, __u64 last_seen, __u64 now)
{
	__u64 t = proto == IPPROTO_ICMP ? gc->icmp_timeout_ns : gc->timeout_ns;

	return last_seen + t < now;
}

/* One pass. Keys are collected first and deleted afterwards: deleting the
 * current key of a hash walk restarts it from the beginning. */
static int gc_pass(struct pw_snat_gc *gc)
{
	struct pw_nat_key key, next, pkey;
	struct pw_nat_entry val, pval;
	struct victims v = { 0 };
	__u64 now = now_ns();
	void *prev = NULL;
	size_t deleted = 0;
	int err = 0;

	while (bpf_map_get_next_key(gc->map_fd, prev, &next) == 0) {
		__u64 last;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(gc->map_fd, &key, &val))
			continue;   /* evicted meanwhile */
		/* A flow is as fresh as its fresher direction; each entry decides
		 * for itself with the same age, so both go in the same pass. An
		 * entry without partner (evicted, or a convention this does not
		 * know) goes by its own age. */
		last = val.last_seen_ns;
		partner_key(&key, &val, &pkey);
		if (bpf_map_lookup_elem(gc->map_fd, &pkey, &pval) == 0 && pval.last_seen_ns > last)
			last = pval.last_seen_ns;
		if (idle(gc, key.proto, last, now) && (err = victims_add(&v, &key)))
			break;
	}
	for (size_t i = 0; i < v.n; i++)
		if (bpf_map_delete_elem(gc->map_fd, &v.keys[i]) == 0)
			deleted++;
	free(v.keys);
	if (deleted)
		pw_debug("masquerade: expired %zu idle " PW_MAP_SNAT " entr%s", deleted,
			 deleted == 1 ? "y" : "ies");
	return err;
}

static void *gc_thread(void *arg)
{
	struct pw_snat_gc *gc = arg;
	struct pollfd pfd = { .fd = gc->stop_fd, .events = POLLIN };

	for (;;) {
		int r = poll(&pfd, 1, gc->interval_ms);

		if (r > 0 || (r < 0 && errno != EINTR))
			break;
		if (r == 0 && gc_pass(gc) == -ENOMEM)
			pw_warn("masquerade expiry: out of memory, retrying later");
	}
	return NULL;
}

int pw_snat_gc_start(struct pw_agent *a, int map_fd)
{
	struct pw_snat_gc *gc;
	int secs = a->snat_timeout > 0 ? a->snat_timeout : PW_SNAT_TIMEOUT_DEFAULT;
	int err;

	gc = calloc(1, sizeof(*gc));
	if (!gc)
		return -ENOMEM;
	gc->timeout_ns = (__u64)secs * 1000000000ull;
	gc->icmp_timeout_ns = (__u64)(secs < PW_SNAT_TIMEOUT_ICMP ? secs : PW_SNAT_TIMEOUT_ICMP) *
			      1000000000ull;
	/* Often enough that an entry outlives its timeout by at most half. */
	gc->interval_ms = secs * 1000 / 2 < GC_INTERVAL_MS_MAX ? secs * 1000 / 2 : GC_INTERVAL_MS_MAX;
	if (gc->interval_ms < 500)
		gc->interval_ms = 500;
	gc->map_fd = dup(map_fd);
	gc->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (gc->map_fd < 0 || gc->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = -pthread_create(&gc->thread, NULL, gc_thread, gc);
	if (err)
		goto fail;
	a->snat_gc = gc;
	pw_debug("masquerade: idle entries expire after %d s (ICMP %d s)", secs,
		 secs < PW_SNAT_TIMEOUT_ICMP ? secs : PW_SNAT_TIMEOUT_ICMP);
	return 0;
fail:
	if (gc->map_fd >= 0)
		close(gc->map_fd);
	if (gc->stop_fd >= 0)
		close(gc->stop_fd);
	free(gc);
	return err;
}

void pw_snat_gc_stop(struct pw_agent *a)
{
	struct pw_snat_gc *gc = a->snat_gc;
	__u64 one = 1;

	if (!gc)
		return;
	if (write(gc->stop_fd, &one, sizeof(one)) != sizeof(one))
		pw_warn("cannot stop the masquerade expiry thread cleanly");
	else
		pthread_join(gc->thread, NULL);
	close(gc->map_fd);
	close(gc->stop_fd);
	free(gc);
	a->snat_gc = NULL;
}
