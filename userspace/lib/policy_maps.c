/* NetworkPolicy: the policy maps as userspace sees them -- read back,
 * synced to a computed state by difference, asked like the datapath asks
 * them (userspace/lib/policy.c computes the state; docs/policy.md). Apart
 * from policy.c so that the model and its translation need no libbpf. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "cidr.h"
#include "inspect.h"
#include "policy.h"

/* Every entry of map fd as key||value records. */
static int dump_map(int fd, size_t ksz, size_t vsz, void **out, int *n_out)
{
	size_t size = ksz + vsz;
	char *buf = NULL, prev[64], key[64];
	bool first = true;
	int n = 0, cap = 0;

	*out = NULL;
	*n_out = 0;
	if (ksz > sizeof(key))
		return -EINVAL;
	while (bpf_map_get_next_key(fd, first ? NULL : prev, key) == 0) {
		first = false;
		memcpy(prev, key, ksz);
		if (n == cap) {
			int nc = cap ? cap * 2 : 64;
			char *nb = realloc(buf, (size_t)nc * size);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = nc;
		}
		memcpy(buf + (size_t)n * size, key, ksz);
		if (bpf_map_lookup_elem(fd, key, buf + (size_t)n * size + ksz) == 0)
			n++;
	}
	*out = buf;
	*n_out = n;
	return 0;
}

/* ---------------- pw_pol_ep: an array of pod slots ---------------- */

/* The slot of a local pod (include/podwire/abi.h, bpf/lib/policy.h). */
static uint32_t pol_ep_slot(const struct pw_ip4 *pod)
{
	return pw_ip4_from_bytes(pod->addr) & (PW_MAX_POL_EP - 1);
}

/* Writes ep (a struct pw_pol_ep) for pod (a struct pw_ip4) into its slot. */
static int pol_ep_put(int fd, const void *pod, const void *ep)
{
	struct pw_pol_ep v = *(const struct pw_pol_ep *)ep;
	uint32_t slot = pol_ep_slot(pod);

	memcpy(v.ip, pod, sizeof(v.ip));
	return bpf_map_update_elem(fd, &slot, &v, BPF_ANY) ? -errno : 0;
}

/* Empties the slot of pod (a struct pw_ip4). */
static int pol_ep_del(int fd, const void *pod)
{
	static const struct pw_pol_ep empty;
	uint32_t slot = pol_ep_slot(pod);

	return bpf_map_update_elem(fd, &slot, &empty, BPF_ANY) ? -errno : 0;
}

/* Every occupied slot, keyed by its pod's address as the state is (the
 * address is the slot's, not part of the state's value). Batch lookups:
 * the 65536 slots in a few system calls. */
static int pol_ep_dump(int fd, struct pw_pol_ep_entry **out, int *n_out)
{
	struct pw_pol_ep_entry *buf = NULL;
	struct pw_pol_ep *vals = NULL;
	uint32_t *slots = NULL;
	size_t n_slots = 0;
	int n = 0, ret;

	*out = NULL;
	*n_out = 0;
	ret = pw_inspect_dump(fd, sizeof(*slots), sizeof(*vals), (void **)&slots, (void **)&vals, &n_slots);
	if (ret)
		return ret;
	for (size_t i = 0; i < n_slots; i++)
		n += vals[i].flags != 0;
	buf = n ? calloc((size_t)n, sizeof(*buf)) : NULL;
	if (n && !buf) {
		ret = -ENOMEM;
		goto out;
	}
	n = 0;
	for (size_t i = 0; i < n_slots; i++) {
		if (!vals[i].flags)
			continue;
		memcpy(buf[n].k.addr, vals[i].ip, sizeof(vals[i].ip));
		buf[n].v = vals[i];
		memset(buf[n].v.ip, 0, sizeof(buf[n].v.ip));
		n++;
	}
	*out = buf;
	*n_out = n;
out:
	free(slots);
	free(vals);
	return ret;
}

int pw_policy_ep_read(int fd, uint32_t pod, struct pw_pol_ep *ep)
{
	struct pw_ip4 k;
	uint32_t slot;

	pw_ip4_to_bytes(pod, k.addr);
	slot = pol_ep_slot(&k);
	if (bpf_map_lookup_elem(fd, &slot, ep))
		return -errno;
	if (!ep->flags || memcmp(ep->ip, k.addr, 4))
		return -ENOENT;
	return 0;
}

long pw_policy_ep_count(int fd)
{
	struct pw_pol_ep_entry *eps;
	int n, ret = pol_ep_dump(fd, &eps, &n);

	if (ret)
		return ret;
	free(eps);
	return n;
}

int pw_policy_state_read(const struct pw_policy_fds *fds, struct pw_policy_state *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = dump_map(fds->ids, sizeof(out->ids->k), sizeof(out->ids->v), (void **)&out->ids, &out->n_ids);
	if (!ret)
		ret = pol_ep_dump(fds->ep, &out->eps, &out->n_eps);
	if (!ret)
		ret = dump_map(fds->rules, sizeof(out->rules->k), sizeof(out->rules->v), (void **)&out->rules,
			       &out->n_rules);
	if (ret) {
		pw_policy_state_free(out);
		return ret;
	}
	pw_policy_state_sort(out);
	return 0;
}

static int map_put(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int map_del(int fd, const void *k)
{
	return bpf_map_delete_elem(fd, k) && errno != ENOENT ? -errno : 0;
}

/* How entries of a map are written and removed: by key, or (pw_pol_ep) in
 * the key's slot. */
struct map_ops {
	int (*put)(int fd, const void *k, const void *v);
	int (*del)(int fd, const void *k);
};

static const struct map_ops by_key = { map_put, map_del }, by_slot = { pol_ep_put, pol_ep_del };

/* One pass over two sorted arrays: writes (want_writes) new entries absent
 * from old or different there, or deletes (!want_writes) old entries absent
 * from new. */
static int diff_apply(int fd, const struct map_ops *ops, const char *olda, int on, const char *newa, int nn,
		      size_t ksz, size_t size, bool want_writes, struct pw_policy_stats *st)
{
	int i = 0, j = 0, first = 0, err;

	while (i < on || j < nn) {
		int c = i >= on ? 1 : j >= nn ? -1 : memcmp(olda + (size_t)i * size, newa + (size_t)j * size, ksz);
		const char *o = olda + (size_t)i * size, *n = newa + (size_t)j * size;

		if (c < 0) {
			if (!want_writes) {
				if ((err = ops->del(fd, o)) && !first)
					first = err;
				st->deletes++;
			}
			i++;
		} else if (c > 0 || memcmp(o + ksz, n + ksz, size - ksz)) {
			if (want_writes) {
				if ((err = ops->put(fd, n, n + ksz)) && !first)
					first = err;
				st->writes++;
			}
			if (c == 0)
				i++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	return first;
}

static int gate_set(int fd, uint32_t state)
{
	uint32_t zero = 0;

	if (fd < 0)
		return 0;
	return bpf_map_update_elem(fd, &zero, &state, BPF_ANY) ? -errno : 0;
}

int pw_policy_sync(const struct pw_policy_fds *fds, const struct pw_policy_state *old,
		   const struct pw_policy_state *new, struct pw_policy_stats *st)
{
	static const struct pw_policy_state empty;
	struct pw_policy_stats dummy = { 0 };
	int r[6], ret;

	if (!old)
		old = &empty;
	if (!st)
		st = &dummy;
	/* The datapath skips pw_pol_ep while the gate is open: closed before
	 * any pod's entry is written, so no policed pod is ever skipped. */
	if (new->n_eps && (ret = gate_set(fds->gate, PW_POL_GATE_LOOK)))
		return ret;
#define DIFF(fd, ops, f, w) diff_apply(fd, ops, (const char *)old->f, old->n_##f, (const char *)new->f, \
				       new->n_##f, sizeof(new->f->k), sizeof(*new->f), w, st)
	r[0] = DIFF(fds->ids, &by_key, ids, true);
	r[1] = DIFF(fds->rules, &by_key, rules, true);
	r[2] = DIFF(fds->ep, &by_slot, eps, false);
	r[3] = DIFF(fds->ep, &by_slot, eps, true);
	r[4] = DIFF(fds->rules, &by_key, rules, false);
	r[5] = DIFF(fds->ids, &by_key, ids, false);
#undef DIFF
	for (int i = 0; i < 6; i++)
		if (r[i])
			return r[i];
	/* Opened only once every pod's entry is gone (a failed delete above
	 * keeps it closed, fail safe). */
	return new->n_eps ? 0 : gate_set(fds->gate, PW_POL_GATE_OPEN);
}

/* ---------------- asking the maps ---------------- */

static uint32_t map_identity(int fd, uint32_t addr, uint32_t node_ip, uint32_t gateway)
{
	struct pw_pol_ids_key k = { .prefixlen = 32 };
	struct pw_pol_ids_val v;

	if (addr == node_ip || addr == gateway)
		return PW_ID_HOST;
	pw_ip4_to_bytes(addr, k.addr);
	return bpf_map_lookup_elem(fd, &k, &v) == 0 ? v.identity : PW_ID_WORLD;
}

static uint32_t map_match(int fd, uint32_t pod, uint8_t dir, uint8_t proto, uint32_t identity, uint16_t port)
{
	struct pw_policy_key k;
	struct pw_policy_val v;

	memset(&k, 0, sizeof(k));
	k.prefixlen = PW_POLICY_FIXED_BITS + 16;
	pw_ip4_to_bytes(pod, k.pod);
	k.dir = dir;
	k.proto = proto;
	k.identity = identity;
	k.port[0] = (uint8_t)(port >> 8);
	k.port[1] = (uint8_t)port;
	if (bpf_map_lookup_elem(fd, &k, &v))
		return 0;
	return v.policy_id ? v.policy_id : 1;
}

int pw_policy_map_check(const struct pw_policy_fds *fds, uint32_t pod, uint32_t peer, uint32_t node_ip,
			uint32_t gateway, uint8_t dir, uint8_t proto, uint16_t port, struct pw_policy_verdict *v)
{
	struct pw_pol_ep ep;
	uint32_t id;
	int ret;

	memset(v, 0, sizeof(*v));
	v->allowed = true;
	v->peer_identity = map_identity(fds->ids, peer, node_ip, gateway);
	ret = pw_policy_ep_read(fds->ep, pod, &ep);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	v->policed = ep.flags & (dir == PW_DIR_INGRESS ? PW_POL_F_INGRESS : PW_POL_F_EGRESS);
	if (!v->policed || v->peer_identity == PW_ID_HOST)
		return 0;
	/* The datapath's order (bpf/lib/policy.h pw_policy_allows). */
	id = map_match(fds->rules, pod, dir, proto, v->peer_identity, port);
	if (!id)
		id = map_match(fds->rules, pod, dir, proto, PW_ID_ANY, port);
	if (!id)
		id = map_match(fds->rules, pod, dir, 0, v->peer_identity, 0);
	if (!id)
		id = map_match(fds->rules, pod, dir, 0, PW_ID_ANY, 0);
	v->allowed = id != 0;
	v->policy_id = id ? id : dir == PW_DIR_INGRESS ? ep.ingress_policy : ep.egress_policy;
	return 0;
}
