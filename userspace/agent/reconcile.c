/* Applying a config to the running node: the one place that turns desired
 * state (struct pw_node_config, from whatever source) into map contents.
 * Each section is synced in full against what the maps hold, so a restart
 * that missed a change while the agent was down still converges. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "services.h"

/* Adds field to ag->restart_pending ("a, b, c"). */
static void note_pending(struct pw_agent *ag, const char *field)
{
	size_t n = strlen(ag->restart_pending);

	snprintf(ag->restart_pending + n, sizeof(ag->restart_pending) - n, "%s%s", n ? ", " : "", field);
}

/* A new uplink must exist for the restart that applies it to succeed
 * (pw_node_check refuses to start without it): say so now, while the
 * running agent still works, rather than at the next restart. */
static void check_new_uplink(struct pw_agent *ag, const struct pw_node_config *old,
			     const struct pw_node_config *new)
{
	if (if_nametoindex(new->uplink)) {
		pw_warn("node.uplink changed (%s -> %s): restart podwired to apply", old->uplink, new->uplink);
		return;
	}
	snprintf(ag->restart_err, sizeof(ag->restart_err),
		 "node.uplink: interface \"%s\" does not exist: the change waits for a restart of podwired, "
		 "and that restart will fail (still running with \"%s\")", new->uplink, old->uplink);
	pw_err("%s", ag->restart_err);
}

/* Baked into the loaded programs (rodata) or into what the CNI plugin was
 * told: only a restart applies them. Reported, never half-applied. */
static void report_restart_fields(struct pw_agent *ag, const struct pw_node_config *old,
				  const struct pw_node_config *new)
{
	char a[PW_CIDR_STRLEN], b[PW_CIDR_STRLEN];

	ag->restart_pending[0] = ag->restart_err[0] = '\0';
	if (strcmp(old->name, new->name)) {
		note_pending(ag, "node.name");
		pw_warn("node.name changed (%s -> %s): restart podwired to apply", old->name, new->name);
	}
	if (old->ip != new->ip) {
		note_pending(ag, "node.ip");
		pw_ip4_format(old->ip, a);
		pw_ip4_format(new->ip, b);
		pw_warn("node.ip changed (%s -> %s): restart podwired to apply", a, b);
	}
	if (strcmp(old->uplink, new->uplink)) {
		note_pending(ag, "node.uplink");
		check_new_uplink(ag, old, new);
	}
	if (memcmp(&old->pod_cidr, &new->pod_cidr, sizeof(old->pod_cidr))) {
		note_pending(ag, "node.podCIDR");
		pw_cidr_format(&old->pod_cidr, a);
		pw_cidr_format(&new->pod_cidr, b);
		pw_warn("node.podCIDR changed (%s -> %s): restart podwired to apply "
			"(pods keep their addresses from the old CIDR until re-created)", a, b);
	}
	if (memcmp(&old->cluster_cidr, &new->cluster_cidr, sizeof(old->cluster_cidr))) {
		note_pending(ag, "cluster.podCIDR");
		pw_cidr_format(&old->cluster_cidr, a);
		pw_cidr_format(&new->cluster_cidr, b);
		pw_warn("cluster.podCIDR changed (%s -> %s): restart podwired to apply", a, b);
	}
	if (old->routing != new->routing) {
		note_pending(ag, "cluster.routing");
		pw_warn("cluster.routing changed: restart podwired to apply");
	}
	if (old->masquerade != new->masquerade) {
		note_pending(ag, "cluster.masquerade");
		pw_warn("cluster.masquerade changed (%s -> %s): restart podwired to apply",
			old->masquerade ? "true" : "false", new->masquerade ? "true" : "false");
	}
	if (old->mtu != new->mtu) {
		note_pending(ag, "node.mtu");
		pw_warn("node.mtu changed: restart podwired to apply (new pods only)");
	}
	if (old->has_pod_device != new->has_pod_device || old->pod_device != new->pod_device) {
		note_pending(ag, "node.podDevice");
		pw_warn("node.podDevice changed: restart podwired to apply (only on a node without pods)");
	}
}

/* A changed restart field keeps its running value in the applied config, so
 * that later diffs are against what actually runs (the warning repeats on
 * each reload while the file and the running node disagree). */
static void keep_restart_fields(const struct pw_node_config *old, struct pw_node_config *new)
{
	memcpy(new->name, old->name, sizeof(new->name));
	new->ip = old->ip;
	memcpy(new->uplink, old->uplink, sizeof(new->uplink));
	new->pod_cidr = old->pod_cidr;
	new->cluster_cidr = old->cluster_cidr;
	new->routing = old->routing;
	new->masquerade = old->masquerade;
	new->mtu = old->mtu;
	new->pod_device = old->pod_device;
	new->has_pod_device = old->has_pod_device;
}

static const struct pw_peer_config *find_peer(const struct pw_node_config *c, const char *name)
{
	for (int i = 0; i < c->n_peers; i++)
		if (strcmp(c->peers[i].name, name) == 0)
			return &c->peers[i];
	return NULL;
}

static void peer_key(const struct pw_cidr *c, struct pw_peer_key *k)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = c->prefix;
	pw_ip4_to_bytes(c->addr, k->addr);
}

/* Deletes every key of fd (ksz bytes, at most 16) that wanted(c, key)
 * rejects. Deleting while iterating restarts a walk (LPM tries do), so
 * keys are collected 64 at a time, then deleted. */
_Static_assert(sizeof(struct pw_peer_key) <= 16 && sizeof(struct pw_ip4) <= 16, "delete_unwanted key buffers");

static void delete_unwanted(int fd, size_t ksz, const struct pw_node_config *c,
			    bool (*wanted)(const struct pw_node_config *c, const void *key))
{
	uint8_t key[16], next[16], stale[64][16];
	int n_stale;
	void *prev;

	do {
		n_stale = 0;
		prev = NULL;
		while (n_stale < 64 && bpf_map_get_next_key(fd, prev, next) == 0) {
			memcpy(key, next, ksz);
			prev = key;
			if (!wanted(c, key))
				memcpy(stale[n_stale++], key, ksz);
		}
		for (int i = 0; i < n_stale; i++)
			bpf_map_delete_elem(fd, stale[i]);
	} while (n_stale == 64);
}

static bool peer_wanted(const struct pw_node_config *c, const void *k)
{
	struct pw_peer_key w;

	for (int i = 0; i < c->n_peers; i++) {
		peer_key(&c->peers[i].pod_cidr, &w);
		if (memcmp(&w, k, sizeof(w)) == 0)
			return true;
	}
	return false;
}

/* pw_peers := new->peers (pod CIDR -> node IP). An entry that is already
 * right is not rewritten: a reload touches only the peers that changed. */
static int sync_peers_map(struct pw_agent *a, const struct pw_node_config *new)
{
	struct pw_peer_key key;
	int fd = pw_loader_map_fd(a, PW_MAP_PEERS), err = 0;

	if (fd < 0)
		return 0;   /* a datapath without peer routing yet */
	for (int i = 0; i < new->n_peers; i++) {
		struct pw_peer val, cur;

		peer_key(&new->peers[i].pod_cidr, &key);
		memset(&val, 0, sizeof(val));
		pw_ip4_to_bytes(new->peers[i].ip, val.node_ip);
		if (bpf_map_lookup_elem(fd, &key, &cur) == 0 && memcmp(&cur, &val, sizeof(val)) == 0)
			continue;
		if (bpf_map_update_elem(fd, &key, &val, BPF_ANY)) {
			err = -errno;
			pw_err("peers: cannot write %s into " PW_MAP_PEERS ": %s",
			       new->peers[i].name, strerror(-err));
		}
	}
	delete_unwanted(fd, sizeof(key), new, peer_wanted);
	return err;
}

/* What pw_nodes should say about ip: PW_NODE_F_SELF for this node, 0 for a
 * peer, -1 when ip is neither. */
static long node_flags(const struct pw_node_config *c, const struct pw_ip4 *ip)
{
	struct pw_ip4 w;

	pw_ip4_to_bytes(c->ip, w.addr);
	if (memcmp(&w, ip, sizeof(w)) == 0)
		return PW_NODE_F_SELF;
	for (int i = 0; i < c->n_peers; i++) {
		pw_ip4_to_bytes(c->peers[i].ip, w.addr);
		if (memcmp(&w, ip, sizeof(w)) == 0)
			return 0;
	}
	return -1;
}

static bool node_known(const struct pw_node_config *c, const void *ip)
{
	return node_flags(c, ip) >= 0;
}

static int put_node(int fd, uint32_t ip, __u32 flags)
{
	struct pw_node val = { .flags = flags }, cur;
	struct pw_ip4 key;
	char s[PW_IP4_STRLEN];

	pw_ip4_to_bytes(ip, key.addr);
	if (bpf_map_lookup_elem(fd, &key, &cur) == 0 && cur.flags == val.flags)
		return 0;
	if (bpf_map_update_elem(fd, &key, &val, BPF_ANY) == 0)
		return 0;
	pw_ip4_format(ip, s);
	pw_err("cannot write %s into " PW_MAP_NODES ": %s", s, strerror(errno));
	return -errno;
}

/* pw_nodes := this node's IP (PW_NODE_F_SELF) + every peer's node IP: the
 * addresses masquerading never touches. */
static int sync_nodes_map(struct pw_agent *a, const struct pw_node_config *new)
{
	int fd = pw_loader_map_fd(a, PW_MAP_NODES), err, ret;

	if (fd < 0)
		return 0;   /* a datapath without masquerading yet */
	ret = put_node(fd, new->ip, PW_NODE_F_SELF);
	for (int i = 0; i < new->n_peers; i++)
		if ((err = put_node(fd, new->peers[i].ip, 0)))
			ret = err;
	delete_unwanted(fd, sizeof(struct pw_ip4), new, node_known);
	return ret;
}

static int reconcile_peers(struct pw_agent *a, const struct pw_node_config *old,
			   const struct pw_node_config *new)
{
	char cidr[PW_CIDR_STRLEN], ip[PW_IP4_STRLEN];
	int err, err2, err3;

	for (int i = 0; i < new->n_peers; i++) {
		const struct pw_peer_config *p = &new->peers[i], *o = find_peer(old, p->name);

		pw_cidr_format(&p->pod_cidr, cidr);
		pw_ip4_format(p->ip, ip);
		if (!o)
			pw_info("peer %s: %s via %s", p->name, cidr, ip);
		else if (o->ip != p->ip || memcmp(&o->pod_cidr, &p->pod_cidr, sizeof(o->pod_cidr)))
			pw_info("peer %s changed: %s via %s", p->name, cidr, ip);
	}
	for (int i = 0; i < old->n_peers; i++)
		if (!find_peer(new, old->peers[i].name))
			pw_info("peer %s removed", old->peers[i].name);
	err = sync_peers_map(a, new);
	err2 = sync_nodes_map(a, new);
	err3 = pw_routes_sync(a, new);
	return err ? err : err2 ? err2 : err3;
}

static bool service_equal(const struct pw_service_config *a, const struct pw_service_config *b)
{
	if (a->vip != b->vip || a->port != b->port || a->protocol != b->protocol ||
	    a->node_port != b->node_port || a->maglev != b->maglev ||
	    a->affinity_timeout != b->affinity_timeout || a->n_backends != b->n_backends ||
	    a->external_local != b->external_local || a->internal_local != b->internal_local ||
	    a->health_check_port != b->health_check_port)
		return false;
	for (int i = 0; i < a->n_backends; i++)
		if (a->backends[i].ip != b->backends[i].ip || a->backends[i].port != b->backends[i].port ||
		    a->backends[i].terminating != b->backends[i].terminating)
			return false;
	return true;
}

/* find_service starting at *hint (wrapping around), which it moves past
 * the match: two configs listing services in the same order (the
 * Kubernetes source's are sorted by name) are compared in linear time
 * rather than quadratic -- 10,000 services cost 100 ms otherwise. */
static const struct pw_service_config *find_service_near(const struct pw_node_config *c, const char *name,
							 int *hint)
{
	for (int k = 0; k < c->n_services; k++) {
		int i = (*hint + k) % c->n_services;

		if (strcmp(c->services[i].name, name) == 0) {
			*hint = i + 1;
			return &c->services[i];
		}
	}
	return NULL;
}

static void log_service_diff(const struct pw_node_config *old, const struct pw_node_config *new)
{
	char vip[PW_IP4_STRLEN];
	int hint = 0;

	for (int i = 0; i < new->n_services; i++) {
		const struct pw_service_config *s = &new->services[i], *o = find_service_near(old, s->name, &hint);

		if (o && service_equal(o, s))
			continue;
		pw_ip4_format(s->vip, vip);
		pw_debug("service %s%s: %s:%u/%s, %d backend(s)", s->name, o ? " changed" : "", vip, s->port,
			 s->protocol == 17 ? "udp" : "tcp", s->n_backends);
	}
	hint = 0;
	for (int i = 0; i < old->n_services; i++)
		if (!find_service_near(new, old->services[i].name, &hint))
			pw_debug("service %s removed", old->services[i].name);
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The services as this node's maps hold them: traffic policies "Local"
 * keep only this node's backends (pw_services_localize). */
static int apply_localized(struct pw_agent *a, const struct pw_node_config *new)
{
	struct pw_service_config *local;
	int n, err;

	err = pw_services_localize(new->services, new->n_services, &new->pod_cidr, new->ip, &local, &n);
	if (err)
		return err;
	err = pw_services_apply(a->svc, local ? local : new->services, n);
	pw_services_localized_free(local);
	return err;
}

/* The service maps := new->services. The reconciler keeps its own mirror
 * of the maps and writes only the difference (docs/services.md), so this
 * is cheap when little changed; one line per apply says what it cost. */
static int reconcile_services(struct pw_agent *a, const struct pw_node_config *old,
			      const struct pw_node_config *new)
{
	static bool warned;
	struct timespec t0;
	long backends = 0;
	int err;

	a->svc_err[0] = '\0';
	if (pw_log_enabled(PW_LOG_DEBUG))
		log_service_diff(old, new);   /* O(services): only when printed */
	if (!a->svc) {
		if (new->n_services && !warned) {
			pw_warn("%d service(s) in the config are not applied: this datapath has no service maps",
				new->n_services);
			warned = true;
		}
		return 0;
	}
	for (int i = 0; i < new->n_services; i++)
		backends += new->services[i].n_backends;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = apply_localized(a, new);
	pw_healthcheck_sync(a, new);
	if (err) {
		snprintf(a->svc_err, sizeof(a->svc_err), "%s", a->svc->err[0] ? a->svc->err : strerror(-err));
		pw_err("services: %s (%.2f ms; the maps keep what they had where nothing was written)",
		       a->svc_err, elapsed_ms(&t0));
		return err;
	}
	pw_info("services: applied %d service(s), %ld backend(s) in %.2f ms: %lu write(s), %lu delete(s), "
		"%lu Maglev table(s), %lu syscall(s)", new->n_services, backends, elapsed_ms(&t0),
		a->svc->last.writes, a->svc->last.deletes, a->svc->last.maglev_tables, a->svc->last.syscalls);
	return 0;
}

int pw_reconcile(struct pw_agent *a, const struct pw_node_config *old,
		 struct pw_node_config *new)
{
	int err, err2, err3, err4;

	if (old->name[0]) {
		report_restart_fields(a, old, new);
		keep_restart_fields(old, new);
	}
	err = reconcile_peers(a, old, new);
	err2 = reconcile_services(a, old, new);
	err3 = pw_nodeport_sync(a, new);
	err4 = pw_netpol_sync(a, new);
	return err ? err : err2 ? err2 : err3 ? err3 : err4;
}
