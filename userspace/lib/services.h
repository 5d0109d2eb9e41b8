/* The service reconciler: writes the desired services (the config model,
 * config.h) into the datapath's load-balancing maps (include/podwire/abi.h,
 * "Service load balancing") and keeps them in step, writing only what
 * changed. Shared by podwired (writes) and podwirectl (reads the same state).
 * Semantics, ids, slot and update ordering: docs/services.md. */
#ifndef PW_SERVICES_H
#define PW_SERVICES_H
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "podwire/abi.h"
#include "paths.h"

/* File descriptors of the maps the reconciler writes. */
struct pw_svc_maps {
	int services;   /* pw_services:  HASH struct pw_svc_key -> struct pw_svc */
	int slots;      /* pw_svc_slots: HASH struct pw_slot_key -> __u32 backend id */
	int backends;   /* pw_backends:  HASH __u32 backend id -> struct pw_backend */
	int revnat;     /* pw_revnat:    HASH __u32 service id -> struct pw_revnat */
	int maglev;     /* pw_maglev:    HASH_OF_MAPS __u32 service id -> ARRAY[M] of __u32 */
	int affinity;   /* pw_affinity:  LRU_HASH struct pw_affinity_key -> struct pw_affinity */
	int backend_ports; /* pw_backend_ports: ARRAY __u32 word -> __u64 port bits */
};

/* What one pw_services_apply (or the start-up load) did, in map elements. */
struct pw_svc_stats {
	unsigned long writes;          /* elements created or updated, Maglev inner maps excluded */
	unsigned long deletes;         /* elements deleted */
	unsigned long maglev_tables;   /* inner maps built and swapped in */
	unsigned long maglev_entries;  /* entries written into those inner maps */
	unsigned long syscalls;        /* bpf() calls spent writing */
};

struct pw_svc_state;   /* in-memory mirror of the maps, services.c */

struct pw_services {
	struct pw_svc_maps fd;
	bool own_fds;                /* pw_services_open: close them in pw_services_close */
	uint32_t maglev_m;           /* Maglev table size (prime) for tables built from now on */
	/* false (default): a changed Maglev table is built in a new inner map
	 * and swapped in atomically (costs one kernel RCU grace period per
	 * apply, several ms). true: a table of unchanged size is patched in
	 * place, only its changed entries written (no wait; a reader may see a
	 * mix of old and new entries for the few microseconds of the write). */
	bool maglev_in_place;
	struct pw_svc_stats last;    /* of the last pw_services_apply */
	char err[256];               /* why the last call failed */
	struct pw_svc_state *st;
};

/* Start a reconciler on already open maps (not owned: the caller closes
 * them after pw_services_close). Reads the maps back so that service and
 * backend ids survive an agent restart and the first apply writes only the
 * difference; leftovers of an interrupted apply are deleted by the first
 * apply. maglev_m 0 means PW_MAGLEV_M. 0 or -errno (s->err says why). */
int pw_services_init(struct pw_services *s, const struct pw_svc_maps *maps, uint32_t maglev_m);
/* pw_services_init on the maps pinned under p->pin_dir (PW_MAP_SERVICES,
 * PW_MAP_SLOTS, PW_MAP_BACKENDS, PW_MAP_REVNAT, PW_MAP_MAGLEV,
 * PW_MAP_AFFINITY, PW_MAP_BACKEND_PORTS), opened with pw_map_open and owned. */
int pw_services_open(struct pw_services *s, const struct pw_paths *p, uint32_t maglev_m);
void pw_services_close(struct pw_services *s);

/* Make the maps hold exactly svcs[0..n-1] (services not listed are removed).
 * Checks the whole input first (protocol, duplicate frontends, Maglev
 * backends <= M, map capacities) and writes nothing if it is refused with
 * -EINVAL / -E2BIG. On a map error mid-way returns -errno; the next call
 * re-reads the maps and converges. s->last counts what was written. */
int pw_services_apply(struct pw_services *s, const struct pw_service_config *svcs, int n);

/* Traffic policies "Local" (externalTrafficPolicy, internalTrafficPolicy):
 * each node's datapath serves a service through its own maps, so "only this
 * node's backends" is a per-node backend list. Writes into *out the services
 * as the maps of the node with pod CIDR local_pods and address node_ip must
 * hold them: a service whose ClusterIP and node port want different
 * backend sets becomes two, the ClusterIP one (node_port 0) and a
 * node-port-only one (vip 0, port = node_port). A backend is local when it
 * is in local_pods or is node_ip (a hostNetwork backend). Terminating
 * backends are kept only where no other is left (graceful termination).
 * *out is NULL (use svcs as they are) when no service has a Local policy
 * or a terminating backend; else free it
 * with pw_services_localized_free. 0 or -ENOMEM. */
int pw_services_localize(const struct pw_service_config *svcs, int n, const struct pw_cidr *local_pods,
			 uint32_t node_ip, struct pw_service_config **out, int *n_out);
void pw_services_localized_free(struct pw_service_config *out);
/* Whether backend b is this node's: in local_pods, or node_ip itself. */
bool pw_services_backend_local(const struct pw_backend_config *b, const struct pw_cidr *local_pods, uint32_t node_ip);

/* The pw_services key of a frontend (addr host byte order; 0 = any address
 * of the node), padding zeroed. Also the CNI plugin's, for hostPort. */
struct pw_svc_key pw_svc_key_of(uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope);

/* Read side (podwirectl, tests): the installed services as the reconciler
 * knows them. */
struct pw_svc_view {
	uint32_t id;
	uint32_t vip;                /* host byte order */
	uint16_t port;
	uint8_t proto;
	uint16_t node_port;          /* 0 = none */
	bool maglev;
	uint32_t affinity_timeout;
	uint32_t n_backends;
	const uint32_t *backend_ids; /* slots 0..n_backends-1 */
};
int pw_services_count(const struct pw_services *s);
/* The i-th service (0 <= i < count), in no particular order. */
int pw_services_get(const struct pw_services *s, int i, struct pw_svc_view *out);
/* A backend's address by id: 0 or -ENOENT. */
int pw_services_backend(const struct pw_services *s, uint32_t id, uint32_t *ip, uint16_t *port);
/* The id of service (vip, port, proto), 0 if none. */
uint32_t pw_services_id(const struct pw_services *s, uint32_t vip, uint16_t port, uint8_t proto);
#endif
