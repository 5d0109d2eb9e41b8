/* Built-in IPAM: one reservation file per address under <state>/ipam/ (tmpfs,
 * so nothing survives a reboot), serialised by an flock on <ipam>/lock.
 * The network, gateway (.1) and broadcast addresses are never handed out.
 * Allocation continues after the last address handed out (round robin), so
 * an IP just released is not immediately reused. */
#ifndef PW_IPAM_H
#define PW_IPAM_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "cidr.h"

struct pw_ipam {
	char dir[256];
	struct pw_cidr pool;
	int lock_fd;     /* held between pw_ipam_lock and pw_ipam_unlock */
};

/* One reservation: who holds ip. The pod's Kubernetes namespace and name
 * are what the runtime passed in CNI_ARGS ("" when it passed none); they
 * are kept for podwirectl endpoints, not used by IPAM itself. */
struct pw_ipam_entry {
	uint32_t ip;
	char container_id[256];
	char ifname[16];
	char k8s_namespace[64];
	char k8s_pod_name[254];
};

int pw_ipam_open(struct pw_ipam *ipam, const char *dir, const struct pw_cidr *pool);
/* Exclusive lock around a whole ADD/DEL/GC so the allocation and everything
 * it protects are one step for concurrent plugin runs. */
int pw_ipam_lock(struct pw_ipam *ipam);
void pw_ipam_unlock(struct pw_ipam *ipam);
/* Reserve an address for owner->(container_id, ifname), recording owner's
 * namespace and pod name with it. owner->ip 0: the next free address;
 * else exactly that one: -EADDRNOTAVAIL when it is not a pod address of the
 * pool (outside it, or its network, gateway or broadcast address),
 * -EADDRINUSE when another attachment holds it. -EEXIST if the pair already
 * has one (*ip set to it), -ENOSPC when the pool is exhausted, -EINVAL for
 * names that cannot be stored (empty, newline, too long). Must be locked. */
int pw_ipam_reserve(struct pw_ipam *ipam, const struct pw_ipam_entry *owner, uint32_t *ip);
/* pw_ipam_reserve for an owner known only by (container_id, ifname). */
int pw_ipam_allocate(struct pw_ipam *ipam, const char *container_id, const char *ifname, uint32_t *ip);
/* A reservation of container_id under any ifname: 0 and *out set, or -ENOENT. */
int pw_ipam_find_container(struct pw_ipam *ipam, const char *container_id, struct pw_ipam_entry *out);
/* Address held by (container_id, ifname): 0 and *ip set, or -ENOENT. */
int pw_ipam_find(struct pw_ipam *ipam, const char *container_id, const char *ifname, uint32_t *ip);
/* Release the reservation of (container_id, ifname); 0 also when there was none. */
int pw_ipam_release(struct pw_ipam *ipam, const char *container_id, const char *ifname);
/* Seconds a reservation that cannot be read, or a temporary file, is left
 * alone: a writer not holding the lock may be between its steps. */
#define PW_IPAM_STALE_S 10
/* Removes what dead writers left (GC; must be locked): reservations that are
 * empty or garbled and older than PW_IPAM_STALE_S, and temporary files
 * (<name>.tmp.<pid>) whose process is gone or that are older than that.
 * Returns how many files went, or -errno. Allocation removes a stale
 * reservation it meets by itself. */
int pw_ipam_sweep(struct pw_ipam *ipam);
/* All reservations; *out malloc'd, caller frees. Returns count or -errno. */
int pw_ipam_list(struct pw_ipam *ipam, struct pw_ipam_entry **out);
void pw_ipam_close(struct pw_ipam *ipam);
#endif
