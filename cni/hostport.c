/* hostPort: the CNI portMappings capability served by the datapath (docs/cni.md
 * "hostPort", docs/services.md "hostPort"). Each mapping is a one-backend
 * service of scope PW_SVC_HOSTPORT in the agent's service maps: frontend
 * (hostIP or 0.0.0.0, hostPort, protocol) -> backend (pod IP, containerPort).
 * Its ids are the pod's block above the service reconciler's range (abi.h:
 * PW_HOSTPORT_ID_BASE + endpoint id * PW_HOSTPORT_PER_EP + index), so the
 * reconciler never touches them and DEL finds them from the endpoint id
 * alone. Everything runs under the IPAM lock: the conflict check and the
 * write are one step against every other ADD and DEL of the node. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "cidr.h"
#include "datapath.h"
#include "inspect.h"
#include "log.h"
#include "plugin.h"
#include "services.h"

_Static_assert(PW_CNI_MAX_PORTMAPS == PW_HOSTPORT_PER_EP, "one id block holds a pod's mappings");

struct hp_maps {
	int services, slots, backends, revnat, ports;
};

static void maps_close(struct hp_maps *m)
{
	int *fds[] = { &m->services, &m->slots, &m->backends, &m->revnat, &m->ports };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* 0, or the first map's -errno (-ENOENT: the agent has no service maps). */
static int maps_open(const struct pw_paths *p, struct hp_maps *m, const char **which)
{
	const char *names[] = { PW_MAP_SERVICES, PW_MAP_SLOTS, PW_MAP_BACKENDS, PW_MAP_REVNAT,
				PW_MAP_BACKEND_PORTS };
	int *fds[] = { &m->services, &m->slots, &m->backends, &m->revnat, &m->ports };

	m->services = m->slots = m->backends = m->revnat = m->ports = -1;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		*fds[i] = pw_map_open(p, names[i]);
		if (*fds[i] < 0) {
			int err = *fds[i];

			*which = names[i];
			maps_close(m);
			return err;
		}
	}
	return 0;
}

static uint32_t hp_id(uint16_t ep_id, int index)
{
	return PW_HOSTPORT_ID_BASE + (uint32_t)ep_id * PW_HOSTPORT_PER_EP + (uint32_t)index;
}

static struct pw_svc_key hp_key(uint32_t host_ip, uint16_t port, uint8_t proto)
{
	return pw_svc_key_of(host_ip, port, proto, PW_SVC_HOSTPORT);
}

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

/* Whether hostPort entry id still belongs to a pod of this node: its
 * backend is a registered endpoint whose id owns the block. A mapping of a
 * pod that vanished without DEL (a crash, maps kept over a reboot of the
 * plugin's state) must not hold its port forever. */
static bool owner_alive(const struct hp_maps *m, const struct pw_cni_node *n, uint32_t id)
{
	struct pw_backend b;
	struct pw_endpoint ep;
	struct pw_ip4 key;

	if (id < PW_HOSTPORT_ID_BASE || id >= PW_HOSTPORT_ID_END)
		return true;   /* not a hostPort id: never ours to judge */
	if (bpf_map_lookup_elem(m->backends, &id, &b))
		return false;
	memcpy(key.addr, b.addr, 4);
	if (bpf_map_lookup_elem(n->ep_fd, &key, &ep))
		return false;
	return ep.id == (id - PW_HOSTPORT_ID_BASE) / PW_HOSTPORT_PER_EP;
}

/* The entries of hostPort id (frontend only if it still names id). */
static void remove_id(const struct hp_maps *m, uint32_t id, const struct pw_svc_key *fe)
{
	struct pw_slot_key slot = { .svc_id = id, .slot = 0 };
	struct pw_svc v;

	if (fe && bpf_map_lookup_elem(m->services, fe, &v) == 0 && v.id == id)
		bpf_map_delete_elem(m->services, fe);
	bpf_map_delete_elem(m->revnat, &id);
	bpf_map_delete_elem(m->slots, &slot);
	bpf_map_delete_elem(m->backends, &id);
}

/* Every entry of one hostPort id, found from its revnat entry (the hostIP
 * and hostPort; the protocol is whichever frontend names the id). */
static bool remove_by_id(const struct hp_maps *m, uint32_t id)
{
	struct pw_revnat rn;
	struct pw_backend b;
	struct pw_svc_key fe;
	bool had = false;

	if (bpf_map_lookup_elem(m->revnat, &id, &rn) == 0) {
		had = true;
		fe = hp_key(pw_ip4_from_bytes(rn.addr), rn.port, IPPROTO_TCP);
		remove_id(m, id, &fe);
		fe.proto = IPPROTO_UDP;
		remove_id(m, id, &fe);
	} else if (bpf_map_lookup_elem(m->backends, &id, &b) == 0) {
		had = true;
		remove_id(m, id, NULL);
	}
	return had;
}

/* An existing mapping at key k, of a pod still alive and not this one:
 * the id holding it, else 0 (a stale one of a vanished pod is removed). */
static uint32_t holder(const struct hp_maps *m, const struct pw_cni_node *n, const struct pw_svc_key *k,
		       uint16_t ep_id)
{
	struct pw_svc v;

	if (bpf_map_lookup_elem(m->services, k, &v))
		return 0;
	if (v.id >= hp_id(ep_id, 0) && v.id < hp_id(ep_id, PW_HOSTPORT_PER_EP))
		return 0;   /* our own block: a leftover of this endpoint id, overwritten */
	if (owner_alive(m, n, v.id))
		return v.id;
	pw_info("hostPort: removing the stale mapping id %u of a pod that is gone", v.id);
	remove_by_id(m, v.id);
	return 0;
}

/* A mapping on every address (wildcard) overlaps every hostIP's on the same
 * port and protocol: their keys differ, so they are found by one scan.
 * *id 0 when none; 0 or -errno (the map unreadable: no guess). */
static int specific_holder(const struct hp_maps *m, const struct pw_cni_node *n, const struct pw_cni_portmap *p,
			   uint16_t ep_id, uint32_t *id, uint32_t *host_ip)
{
	struct pw_svc_key *keys = NULL;
	struct pw_svc *vals = NULL;
	size_t cnt = 0;
	int err;

	*id = 0;
	err = pw_inspect_dump(m->services, sizeof(*keys), sizeof(*vals), (void **)&keys, (void **)&vals, &cnt);
	for (size_t i = 0; i < cnt && !err && !*id; i++) {
		if (keys[i].scope != PW_SVC_HOSTPORT || keys[i].port != p->host_port || keys[i].proto != p->proto ||
		    !pw_ip4_from_bytes(keys[i].addr))
			continue;
		*id = holder(m, n, &keys[i], ep_id);
		*host_ip = pw_ip4_from_bytes(keys[i].addr);
	}
	free(keys);
	free(vals);
	return err;
}

/* The pod IP holding a hostPort id, for the error message. */
static void holder_ip(const struct hp_maps *m, uint32_t id, char buf[PW_IP4_STRLEN])
{
	struct pw_backend b;

	if (bpf_map_lookup_elem(m->backends, &id, &b) == 0)
		pw_ip4_format(pw_ip4_from_bytes(b.addr), buf);
	else
		snprintf(buf, PW_IP4_STRLEN, "?");
}

static int refuse_taken(struct pw_cni *c, const struct hp_maps *m, const struct pw_cni_portmap *p, uint32_t id,
			uint32_t at)
{
	char want[PW_IP4_STRLEN], have[PW_IP4_STRLEN], pod[PW_IP4_STRLEN];

	pw_ip4_format(p->host_ip, want);
	pw_ip4_format(at, have);
	holder_ip(m, id, pod);
	return pw_cni_fail(&c->err, PW_CNI_E_HOSTPORT_TAKEN, NULL,
			   "hostPort %s %s:%u is taken: pod %s holds %s %s:%u", proto_name(p->proto),
			   p->host_ip ? want : "*", p->host_port, pod, proto_name(p->proto), at ? have : "*",
			   p->host_port);
}

/* Mapping p conflicts with another pod's: on the same key, on the wildcard
 * (p has a hostIP) or on any hostIP (p is the wildcard). */
static int check_free(struct pw_cni *c, const struct hp_maps *m, const struct pw_cni_node *n,
		      const struct pw_cni_portmap *p, uint16_t ep_id)
{
	struct pw_svc_key k = hp_key(p->host_ip, p->host_port, p->proto);
	uint32_t id, at = p->host_ip;
	int err;

	if ((id = holder(m, n, &k, ep_id)))
		return refuse_taken(c, m, p, id, at);
	if (p->host_ip) {
		k = hp_key(0, p->host_port, p->proto);
		at = 0;
		id = holder(m, n, &k, ep_id);
	} else if ((err = specific_holder(m, n, p, ep_id, &id, &at))) {
		return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err),
				   "cannot read %s to check hostPort %s %u", PW_MAP_SERVICES, proto_name(p->proto),
				   p->host_port);
	}
	return id ? refuse_taken(c, m, p, id, at) : 0;
}

/* Reply packets are only reverse-translated from ports some backend
 * listens on (pw_backend_ports): the containerPort's bit is set first, as
 * the reconciler does, and never cleared. */
static int set_port_bit(const struct hp_maps *m, uint16_t port)
{
	uint32_t w = port / 64;
	uint64_t bits;

	if (bpf_map_lookup_elem(m->ports, &w, &bits))
		return -errno;
	if (bits & (1ULL << (port % 64)))
		return 0;
	bits |= 1ULL << (port % 64);
	return bpf_map_update_elem(m->ports, &w, &bits, BPF_ANY) ? -errno : 0;
}

/* Backend, slot and revnat before the frontend: the frontend is what
 * makes the datapath use the rest. */
static int write_one(const struct hp_maps *m, const struct pw_cni_portmap *p, uint32_t pod_ip, uint32_t id)
{
	struct pw_slot_key slot = { .svc_id = id, .slot = 0 };
	struct pw_svc_key k = hp_key(p->host_ip, p->host_port, p->proto);
	struct pw_backend b;
	struct pw_revnat rn;
	struct pw_svc v;
	int err;

	memset(&b, 0, sizeof(b));
	memset(&rn, 0, sizeof(rn));
	memset(&v, 0, sizeof(v));
	pw_ip4_to_bytes(pod_ip, b.addr);
	b.port = p->container_port;
	b.state = PW_BACKEND_ACTIVE;
	pw_ip4_to_bytes(p->host_ip, rn.addr);
	rn.port = p->host_port;
	v.id = id;
	v.backends = 1;
	v.algorithm = PW_LB_RANDOM;
	if ((err = set_port_bit(m, p->container_port)))
		return err;
	if (bpf_map_update_elem(m->backends, &id, &b, BPF_ANY) || bpf_map_update_elem(m->slots, &slot, &id, BPF_ANY) ||
	    bpf_map_update_elem(m->revnat, &id, &rn, BPF_ANY) || bpf_map_update_elem(m->services, &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

/* Newest index first, and only when index 0 is there: ADD writes index 0
 * (its backend first) before any other, so a block without it is empty,
 * even after a plugin killed half-way through an ADD or a DEL. Most pods
 * have no hostPort: their DEL costs two lookups. */
static void remove_block(const struct hp_maps *m, uint16_t ep_id)
{
	uint32_t id0 = hp_id(ep_id, 0);
	struct pw_backend b;
	struct pw_revnat rn;
	int n = 0;

	if (bpf_map_lookup_elem(m->backends, &id0, &b) && bpf_map_lookup_elem(m->revnat, &id0, &rn))
		return;
	for (int i = PW_HOSTPORT_PER_EP - 1; i >= 0; i--)
		n += remove_by_id(m, hp_id(ep_id, i));
	if (n)
		pw_info("hostPort: removed %d mapping(s) of endpoint %u", n, ep_id);
}

int pw_hostport_add(struct pw_cni *c, const struct pw_cni_node *n, uint32_t pod_ip, uint16_t ep_id)
{
	const struct pw_cni_conf *conf = &c->conf;
	const char *which = "";
	struct hp_maps m;
	int err, code = 0;

	if (!conf->n_portmaps)
		return 0;
	err = maps_open(&c->paths, &m, &which);
	if (err)
		return pw_cni_fail(&c->err, err == -ENOENT ? PW_CNI_E_AGENT : PW_CNI_E_DATAPATH, strerror(-err),
				   "hostPort needs the service map %s/%s", c->paths.pin_dir, which);
	remove_block(&m, ep_id);   /* what a killed plugin may have left of this endpoint id */
	for (int i = 0; i < conf->n_portmaps && !code; i++)
		code = check_free(c, &m, n, &conf->portmaps[i], ep_id);
	for (int i = 0; i < conf->n_portmaps && !code; i++) {
		const struct pw_cni_portmap *p = &conf->portmaps[i];

		err = write_one(&m, p, pod_ip, hp_id(ep_id, i));
		if (err)
			code = pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err),
					   "cannot write hostPort %s %u into the service maps", proto_name(p->proto),
					   p->host_port);
	}
	if (code)
		remove_block(&m, ep_id);
	else
		pw_info("hostPort: %d mapping(s) for endpoint %u", conf->n_portmaps, ep_id);
	maps_close(&m);
	return code;
}

void pw_hostport_remove(const struct pw_cni *c, uint16_t ep_id)
{
	const char *which = "";
	struct hp_maps m;

	if (maps_open(&c->paths, &m, &which))
		return;   /* no service maps: nothing of ours can be there */
	remove_block(&m, ep_id);
	maps_close(&m);
}
