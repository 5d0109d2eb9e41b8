/* The service reconciler (userspace/lib/services.c) against real BPF maps
 * created here with the key/value sizes and types of include/podwire/abi.h
 * (no BPF object needed; needs root). Maps are fd-only and vanish with the
 * process; the pinned-map test uses its own dir under /sys/fs/bpf. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "pwtest.h"
#include "podwire/abi.h"
#include "cidr.h"
#include "maglev.h"
#include "paths.h"
#include "services.h"

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

/* inner_flags: BPF_F_INNER_MAP lets inner maps differ in size from the template. */
static int create_maps(struct pw_svc_maps *m, uint32_t inner_flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, tmpl_opts, .map_flags = inner_flags);
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	int tmpl;

	m->services = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_services", sizeof(struct pw_svc_key),
				     sizeof(struct pw_svc), 1024, NULL);
	m->slots = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_svc_slots", sizeof(struct pw_slot_key),
				  sizeof(__u32), 4096, NULL);
	m->backends = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_backends", sizeof(__u32),
				     sizeof(struct pw_backend), 4096, NULL);
	m->revnat = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_revnat", sizeof(__u32),
				   sizeof(struct pw_revnat), 1024, NULL);
	m->affinity = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "pw_affinity",
				     sizeof(struct pw_affinity_key), sizeof(struct pw_affinity),
				     1024, NULL);
	m->backend_ports = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_backend_ports", sizeof(__u32),
					  sizeof(__u64), PW_BACKEND_PORT_WORDS, NULL);
	tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_maglev_tmpl", sizeof(__u32), sizeof(__u32),
			      PW_MAGLEV_M, &tmpl_opts);
	outer_opts.inner_map_fd = tmpl;
	m->maglev = bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, "pw_maglev", sizeof(__u32),
				   sizeof(__u32), 256, &outer_opts);
	if (tmpl >= 0)
		close(tmpl);
	return m->services < 0 || m->slots < 0 || m->backends < 0 || m->revnat < 0 ||
	       m->affinity < 0 || m->maglev < 0 || m->backend_ports < 0 ? -1 : 0;
}

static void close_maps(struct pw_svc_maps *m)
{
	int fds[] = { m->services, m->slots, m->backends, m->revnat, m->maglev, m->affinity,
		      m->backend_ports };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int count_entries(int fd, size_t ksz)
{
	uint8_t k[64], next[64];
	int n = 0;
	bool first = true;

	while (bpf_map_get_next_key(fd, first ? NULL : k, next) == 0) {
		memcpy(k, next, ksz);
		first = false;
		n++;
	}
	return n;
}

static bool get_svc(int fd, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope,
		    struct pw_svc *out)
{
	struct pw_svc_key k;

	memset(&k, 0, sizeof(k));
	pw_ip4_to_bytes(addr, k.addr);
	k.port = port;
	k.proto = proto;
	k.scope = scope;
	return bpf_map_lookup_elem(fd, &k, out) == 0;
}

static bool get_slot(int fd, uint32_t svc, uint32_t slot, uint32_t *be)
{
	struct pw_slot_key k = { .svc_id = svc, .slot = slot };

	return bpf_map_lookup_elem(fd, &k, be) == 0;
}

/* The backend id of (ip, port) as found in pw_backends, 0 if absent. */
static uint32_t backend_id(int fd, uint32_t ip, uint16_t port)
{
	uint32_t k, next;
	bool first = true;
	struct pw_backend b;

	while (bpf_map_get_next_key(fd, first ? NULL : &k, &next) == 0) {
		k = next;
		first = false;
		if (bpf_map_lookup_elem(fd, &k, &b) == 0 && pw_ip4_from_bytes(b.addr) == ip &&
		    b.port == port)
			return k;
	}
	return 0;
}

/* Whether slots 0..n-1 of svc hold exactly the set ids[0..n-1] and no slot n exists. */
static bool slots_are(int fd, uint32_t svc, const uint32_t *ids, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
		uint32_t be;
		bool found = false;

		if (!get_slot(fd, svc, j, &be))
			return false;
		for (uint32_t i = 0; i < n; i++)
			found |= ids[i] == be;
		if (!found)
			return false;
		for (uint32_t i = 0; i < j; i++) {
			uint32_t prev;

			if (get_slot(fd, svc, i, &prev) && prev == be)
				return false;   /* listed twice */
		}
	}
	{
		uint32_t be;

		return !get_slot(fd, svc, n, &be);
	}
}

/* Whether any slot of any service names backend id. */
static bool any_slot_names(int fd, uint32_t id)
{
	struct pw_slot_key k, next;
	bool first = true;
	uint32_t be;

	while (bpf_map_get_next_key(fd, first ? NULL : &k, &next) == 0) {
		k = next;
		first = false;
		if (bpf_map_lookup_elem(fd, &k, &be) == 0 && be == id)
			return true;
	}
	return false;
}

/* Read service id's Maglev table; its size in *m. Returns a malloc'd array or NULL. */
static uint32_t *read_maglev(int outer, uint32_t id, uint32_t *m)
{
	uint32_t inner_id, *t = NULL;
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd;

	if (bpf_map_lookup_elem(outer, &id, &inner_id))
		return NULL;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return NULL;
	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len) == 0 && (t = malloc(info.max_entries * 4))) {
		*m = info.max_entries;
		for (uint32_t i = 0; i < *m; i++)
			if (bpf_map_lookup_elem(fd, &i, &t[i])) {
				free(t);
				t = NULL;
				break;
			}
	}
	close(fd);
	return t;
}

/* Table equals pw_maglev_build over the given backends. */
static bool maglev_matches(int outer, uint32_t svc_id, const struct pw_maglev_backend *b, int n,
			   uint32_t want_m)
{
	uint32_t m = 0, *got = read_maglev(outer, svc_id, &m), *want;
	bool ok;

	if (!got)
		return false;
	want = malloc(want_m * 4);
	ok = want && m == want_m && pw_maglev_build(b, n, m, want) == 0 &&
	     memcmp(got, want, m * 4) == 0;
	free(got);
	free(want);
	return ok;
}

/* ---- the scenario: services web (tcp, NodePort, random) and dns (udp, Maglev) ---- */

static struct pw_backend_config web_be[8], dns_be[8];
static struct pw_service_config svcs[3];

static void desired_initial(void)
{
	memset(svcs, 0, sizeof(svcs));
	web_be[0] = (struct pw_backend_config){ IP("10.244.1.2"), 8080, false };
	web_be[1] = (struct pw_backend_config){ IP("10.244.2.2"), 8080, false };
	web_be[2] = (struct pw_backend_config){ IP("10.244.3.2"), 8080, false };
	dns_be[0] = (struct pw_backend_config){ IP("10.244.2.2"), 8080, false };  /* shared with web */
	dns_be[1] = (struct pw_backend_config){ IP("10.244.3.7"), 53, false };
	snprintf(svcs[0].name, sizeof(svcs[0].name), "web");
	svcs[0].vip = IP("10.96.0.10");
	svcs[0].port = 80;
	svcs[0].protocol = IPPROTO_TCP;
	svcs[0].node_port = 30080;
	svcs[0].backends = web_be;
	svcs[0].n_backends = 3;
	snprintf(svcs[1].name, sizeof(svcs[1].name), "dns");
	svcs[1].vip = IP("10.96.0.53");
	svcs[1].port = 53;
	svcs[1].protocol = IPPROTO_UDP;
	svcs[1].maglev = true;
	svcs[1].backends = dns_be;
	svcs[1].n_backends = 2;
}

static void test_scenario(uint32_t inner_flags, const char *variant)
{
	struct pw_svc_maps m;
	struct pw_services s, s2;
	struct pw_svc v, np;
	struct pw_revnat rn;
	uint32_t web, dns, b[8], ids[8], id;
	struct pw_maglev_backend mb[2];
	char name[160];
#define N(x) (snprintf(name, sizeof(name), "%s: %s", variant, x), name)

	if (create_maps(&m, inner_flags)) {
		PWT_CHECK(0, N("create maps"), "bpf_map_create: %s", strerror(errno));
		return;
	}
	desired_initial();
	PWT_EQ_INT(pw_services_init(&s, &m, 0), 0, N("init on empty maps"));
	PWT_CHECK(pw_services_apply(&s, svcs, 2) == 0, N("apply web and dns"), "%s", s.err);

	web = pw_services_id(&s, IP("10.96.0.10"), 80, IPPROTO_TCP);
	dns = pw_services_id(&s, IP("10.96.0.53"), 53, IPPROTO_UDP);
	PWT_EXPECT(web && dns && web != dns, N("services get distinct non-zero ids"));
	PWT_EQ_INT(count_entries(m.services, sizeof(struct pw_svc_key)), 3,
		   N("three frontends: web ClusterIP, web NodePort, dns ClusterIP"));
	PWT_EXPECT(get_svc(m.services, IP("10.96.0.10"), 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, &v) &&
		   v.id == web && v.backends == 3 && v.algorithm == PW_LB_RANDOM,
		   N("ClusterIP frontend: id, 3 backends, random"));
	PWT_EXPECT(get_svc(m.services, 0, 30080, IPPROTO_TCP, PW_SVC_NODEPORT, &np) &&
		   memcmp(&np, &v, sizeof(v)) == 0,
		   N("NodePort frontend 0.0.0.0:30080 points to the same service"));
	PWT_EXPECT(get_svc(m.services, IP("10.96.0.53"), 53, IPPROTO_UDP, PW_SVC_CLUSTERIP, &v) &&
		   v.id == dns && v.backends == 2 && v.algorithm == PW_LB_MAGLEV,
		   N("dns frontend: Maglev, 2 backends"));
	for (int i = 0; i < 3; i++)
		b[i] = backend_id(m.backends, web_be[i].ip, web_be[i].port);
	b[3] = backend_id(m.backends, dns_be[1].ip, dns_be[1].port);
	PWT_EQ_INT(count_entries(m.backends, 4), 4, N("4 distinct backends, shared one once"));
	PWT_EXPECT(b[0] && b[1] && b[2] && b[3], N("every backend has an id in pw_backends"));
	PWT_EXPECT(slots_are(m.slots, web, b, 3), N("web slots 0..2 hold its 3 backends"));
	ids[0] = b[1];
	ids[1] = b[3];
	PWT_EXPECT(slots_are(m.slots, dns, ids, 2),
		   N("dns slots hold the shared backend with the same id as in web"));
	PWT_EXPECT(bpf_map_lookup_elem(m.revnat, &web, &rn) == 0 &&
		   pw_ip4_from_bytes(rn.addr) == IP("10.96.0.10") && rn.port == 80,
		   N("revnat web = 10.96.0.10:80"));
	mb[0] = (struct pw_maglev_backend){ b[1], dns_be[0].ip, dns_be[0].port };
	mb[1] = (struct pw_maglev_backend){ b[3], dns_be[1].ip, dns_be[1].port };
	PWT_EXPECT(maglev_matches(m.maglev, dns, mb, 2, PW_MAGLEV_M),
		   N("dns Maglev table: M entries built from its two backends"));
	PWT_EXPECT(bpf_map_lookup_elem(m.maglev, &web, &id) != 0, N("no Maglev table for web"));

	PWT_EQ_INT(pw_services_apply(&s, svcs, 2), 0, N("re-apply unchanged"));
	PWT_EXPECT(s.last.writes == 0 && s.last.deletes == 0 && s.last.maglev_tables == 0,
		   N("unchanged apply writes nothing"));

	/* "Restart": a new reconciler reads the maps back. */
	pw_services_close(&s);
	PWT_CHECK(pw_services_init(&s2, &m, 0) == 0, N("init on populated maps"), "%s", s2.err);
	PWT_EXPECT(pw_services_id(&s2, IP("10.96.0.10"), 80, IPPROTO_TCP) == web &&
		   pw_services_id(&s2, IP("10.96.0.53"), 53, IPPROTO_UDP) == dns,
		   N("service ids survive a restart"));
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("apply after restart"));
	PWT_CHECK(s2.last.writes == 0 && s2.last.deletes == 0 && s2.last.maglev_tables == 0,
		  N("apply after restart writes nothing"), "writes %lu deletes %lu tables %lu",
		  s2.last.writes, s2.last.deletes, s2.last.maglev_tables);
	PWT_EXPECT(backend_id(m.backends, web_be[1].ip, web_be[1].port) == b[1],
		   N("backend ids survive a restart"));

	/* Remove web's first backend: slots compact, its id is gone everywhere. */
	web_be[0] = web_be[2];
	svcs[0].n_backends = 2;
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("remove a backend"));
	ids[0] = b[1];
	ids[1] = b[2];
	PWT_EXPECT(slots_are(m.slots, web, ids, 2), N("web slots compacted to 0..1"));
	PWT_EXPECT(get_svc(m.services, IP("10.96.0.10"), 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, &v) &&
		   v.backends == 2 && get_svc(m.services, 0, 30080, IPPROTO_TCP, PW_SVC_NODEPORT, &np) &&
		   np.backends == 2, N("both frontends count 2 backends"));
	PWT_EXPECT(!any_slot_names(m.slots, b[0]), N("the removed backend is in no slot"));
	PWT_EXPECT(backend_id(m.backends, IP("10.244.1.2"), 8080) == 0,
		   N("the removed, unreferenced backend left pw_backends"));
	printf("# remove one backend: %lu writes, %lu deletes\n", s2.last.writes, s2.last.deletes);
	PWT_EXPECT(s2.last.writes + s2.last.deletes <= 6, N("remove a backend: few writes"));

	/* Add one back. */
	web_be[2] = (struct pw_backend_config){ IP("10.244.1.9"), 8080, false };
	svcs[0].n_backends = 3;
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("add a backend"));
	b[4] = backend_id(m.backends, IP("10.244.1.9"), 8080);
	ids[2] = b[4];
	PWT_EXPECT(b[4] && b[4] != b[0], N("a new backend gets a new id"));
	PWT_EXPECT(slots_are(m.slots, web, ids, 3), N("the new backend takes slot 2"));
	PWT_EQ_INT(s2.last.writes, 4, N("add a backend: 4 writes (backend, slot, 2 frontends)"));

	/* dns loses the shared backend: new Maglev table, the backend stays for web. */
	dns_be[0] = dns_be[1];
	svcs[1].n_backends = 1;
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("remove the shared backend from dns"));
	mb[0] = mb[1];
	PWT_EXPECT(maglev_matches(m.maglev, dns, mb, 1, PW_MAGLEV_M),
		   N("dns Maglev table rebuilt with one backend"));
	PWT_EQ_INT(s2.last.maglev_tables, 1, N("exactly one table rebuilt"));
	PWT_EXPECT(backend_id(m.backends, IP("10.244.2.2"), 8080) == b[1],
		   N("a backend still used by another service keeps its entry and id"));

	/* Move web's NodePort. */
	svcs[0].node_port = 30081;
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("change the NodePort"));
	PWT_EXPECT(!get_svc(m.services, 0, 30080, IPPROTO_TCP, PW_SVC_NODEPORT, &np) &&
		   get_svc(m.services, 0, 30081, IPPROTO_TCP, PW_SVC_NODEPORT, &np) && np.id == web,
		   N("old NodePort frontend gone, new one points to web"));

	/* Delete dns. */
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 1), 0, N("delete dns"));
	PWT_EXPECT(!get_svc(m.services, IP("10.96.0.53"), 53, IPPROTO_UDP, PW_SVC_CLUSTERIP, &v),
		   N("dns frontend deleted"));
	PWT_EXPECT(bpf_map_lookup_elem(m.revnat, &dns, &rn) != 0, N("dns revnat deleted"));
	PWT_EXPECT(bpf_map_lookup_elem(m.maglev, &dns, &id) != 0, N("dns Maglev table deleted"));
	PWT_EXPECT(!get_slot(m.slots, dns, 0, &id), N("dns slots deleted"));
	PWT_EXPECT(backend_id(m.backends, IP("10.244.3.7"), 53) == 0,
		   N("dns-only backend deleted"));
	PWT_EQ_INT(count_entries(m.services, sizeof(struct pw_svc_key)), 2,
		   N("web's two frontends remain"));
	PWT_EQ_INT(pw_services_count(&s2), 1, N("one service left in the mirror"));

	/* A new service must not reuse the deleted id. */
	svcs[1].n_backends = 1;
	svcs[1].vip = IP("10.96.0.54");
	PWT_EQ_INT(pw_services_apply(&s2, svcs, 2), 0, N("add another service"));
	id = pw_services_id(&s2, IP("10.96.0.54"), 53, IPPROTO_UDP);
	PWT_EXPECT(id && id != dns && id != web, N("a new service does not reuse a freed id"));

	/* Everything gone. */
	PWT_EQ_INT(pw_services_apply(&s2, NULL, 0), 0, N("apply no services"));
	PWT_EXPECT(count_entries(m.services, 8) == 0 && count_entries(m.slots, 8) == 0 &&
		   count_entries(m.backends, 4) == 0 && count_entries(m.revnat, 4) == 0 &&
		   count_entries(m.maglev, 4) == 0, N("no services: every map empty"));
	pw_services_close(&s2);
	close_maps(&m);
#undef N
}

/* Slot order invariants for a bigger change: survivors keep their slots,
 * holes are filled, nothing beyond the count. */
static bool port_bit(int fd, uint16_t port)
{
	uint32_t w = port / 64;
	uint64_t bits = 0;

	return bpf_map_lookup_elem(fd, &w, &bits) == 0 && (bits >> (port % 64)) & 1;
}

/* pw_backend_ports: the datapath asks conntrack only for packets from a port
 * set here, so a missing bit would leave a service reply untranslated. */
static void test_backend_ports(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	uint64_t bits;
	uint32_t w;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "backend ports: create maps", "%s", strerror(errno));
		return;
	}
	desired_initial();
	PWT_EQ_INT(pw_services_init(&s, &m, 0), 0, "backend ports: init");
	PWT_CHECK(pw_services_apply(&s, svcs, 2) == 0, "backend ports: apply web and dns", "%s", s.err);
	PWT_EXPECT(port_bit(m.backend_ports, 8080) && port_bit(m.backend_ports, 53),
		   "backend ports: the backends' ports 8080 and 53 are set");
	PWT_EXPECT(!port_bit(m.backend_ports, 80) && !port_bit(m.backend_ports, 8081) &&
		   !port_bit(m.backend_ports, 52), "backend ports: frontend port 80 and neighbours are not");
	PWT_CHECK(pw_services_apply(&s, svcs, 0) == 0, "backend ports: remove every service", "%s", s.err);
	PWT_EXPECT(port_bit(m.backend_ports, 8080) && port_bit(m.backend_ports, 53),
		   "backend ports: bits outlive the services (conntrack may pin their flows)");
	pw_services_close(&s);
	/* A bit the previous agent set for a backend gone since then. */
	w = 9999 / 64;
	bits = 1ULL << (9999 % 64);
	PWT_EQ_INT(bpf_map_update_elem(m.backend_ports, &w, &bits, BPF_ANY), 0, "backend ports: set 9999");
	PWT_EQ_INT(pw_services_init(&s, &m, 0), 0, "backend ports: init again (agent restart)");
	PWT_CHECK(pw_services_apply(&s, svcs, 2) == 0, "backend ports: apply after restart", "%s", s.err);
	PWT_EXPECT(port_bit(m.backend_ports, 9999) && port_bit(m.backend_ports, 8080),
		   "backend ports: a restarted agent keeps the bits it finds");
	pw_services_close(&s);
	close_maps(&m);
}

static void test_compaction(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_backend_config be[10];
	struct pw_service_config svc;
	uint32_t id, before[10], after[10], kept_ids[6];
	int k = 0;
	bool kept = true;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "compaction: create maps", "%s", strerror(errno));
		return;
	}
	memset(&svc, 0, sizeof(svc));
	svc.vip = IP("10.96.1.1");
	svc.port = 443;
	svc.protocol = IPPROTO_TCP;
	svc.backends = be;
	svc.n_backends = 10;
	for (int i = 0; i < 10; i++)
		be[i] = (struct pw_backend_config){ IP("10.244.1.10") + (uint32_t)i, 443, false };
	pw_services_init(&s, &m, 0);
	PWT_EQ_INT(pw_services_apply(&s, &svc, 1), 0, "compaction: 10 backends");
	id = pw_services_id(&s, svc.vip, 443, IPPROTO_TCP);
	for (int j = 0; j < 10; j++)
		get_slot(m.slots, id, (uint32_t)j, &before[j]);
	/* Drop backends 1, 4, 8, 9 (8 and 9 sit in the tail). */
	for (int i = 0; i < 10; i++)
		if (i != 1 && i != 4 && i != 8 && i != 9)
			be[k++] = (struct pw_backend_config){ IP("10.244.1.10") + (uint32_t)i, 443, false };
	svc.n_backends = k;
	PWT_EQ_INT(pw_services_apply(&s, &svc, 1), 0, "compaction: remove 4 of 10");
	for (int j = 0; j < 6; j++)
		get_slot(m.slots, id, (uint32_t)j, &after[j]);
	for (int j = 0; j < 6; j++)
		if (j != 1 && j != 4)
			kept &= after[j] == before[j];
	PWT_EXPECT(kept, "compaction: surviving backends keep their slots");
	k = 0;
	for (int i = 0; i < 10; i++)
		if (i != 1 && i != 4 && i != 8 && i != 9)
			kept_ids[k++] = before[i];
	PWT_EXPECT(slots_are(m.slots, id, kept_ids, 6), "compaction: slots 0..5 hold the 6 survivors");
	printf("# remove 4 of 10: %lu writes, %lu deletes\n", s.last.writes, s.last.deletes);
	pw_services_close(&s);
	close_maps(&m);
}

static void test_affinity(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_backend_config be[2] = { { IP("10.244.1.2"), 80, false }, { IP("10.244.1.3"), 80, false } };
	struct pw_service_config svc;
	struct pw_affinity_key k1 = { 0 }, k2 = { 0 };
	struct pw_affinity a = { 0 };
	uint32_t id, b0, b1;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "affinity: create maps", "%s", strerror(errno));
		return;
	}
	memset(&svc, 0, sizeof(svc));
	svc.vip = IP("10.96.2.1");
	svc.port = 80;
	svc.protocol = IPPROTO_TCP;
	svc.affinity_timeout = 30;
	svc.backends = be;
	svc.n_backends = 2;
	pw_services_init(&s, &m, 0);
	PWT_EQ_INT(pw_services_apply(&s, &svc, 1), 0, "affinity: apply");
	id = pw_services_id(&s, svc.vip, 80, IPPROTO_TCP);
	b0 = backend_id(m.backends, be[0].ip, 80);
	b1 = backend_id(m.backends, be[1].ip, 80);
	/* What the datapath would have recorded for two clients. */
	k1.svc_id = k2.svc_id = id;
	pw_ip4_to_bytes(IP("10.244.2.5"), k1.client);
	pw_ip4_to_bytes(IP("10.244.2.6"), k2.client);
	a.backend_id = b0;
	bpf_map_update_elem(m.affinity, &k1, &a, BPF_ANY);
	a.backend_id = b1;
	bpf_map_update_elem(m.affinity, &k2, &a, BPF_ANY);
	svc.n_backends = 1;   /* drop be[1] */
	PWT_EQ_INT(pw_services_apply(&s, &svc, 1), 0, "affinity: remove a backend");
	PWT_EXPECT(bpf_map_lookup_elem(m.affinity, &k2, &a) != 0,
		   "affinity: the entry pinned to the removed backend is deleted");
	PWT_EXPECT(bpf_map_lookup_elem(m.affinity, &k1, &a) == 0 && a.backend_id == b0,
		   "affinity: the entry of a surviving backend stays");
	PWT_EQ_INT(pw_services_apply(&s, NULL, 0), 0, "affinity: delete the service");
	PWT_EXPECT(bpf_map_lookup_elem(m.affinity, &k1, &a) != 0,
		   "affinity: a deleted service's entries are deleted");
	pw_services_close(&s);
	close_maps(&m);
}

/* Traffic policies "Local": the node port (ETP) or the ClusterIP (ITP)
 * serves only this node's backends; a service whose two frontends differ
 * becomes two records, and that survives a restart (maps read back). */
static void test_traffic_policies(void)
{
	struct pw_cidr local;
	struct pw_backend_config be[4] = { { IP("10.244.1.2"), 80, false }, { IP("10.244.2.2"), 80, false },
					   { IP("10.244.1.3"), 80, false }, { IP("192.168.1.11"), 80, false } };
	struct pw_service_config in[3], *out = NULL;
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_svc cip, np;
	uint32_t node_ip = IP("192.168.1.11"), ids[3];
	int n = 0;

	pw_cidr_parse("10.244.1.0/24", &local);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 3; i++) {
		in[i].vip = IP("10.96.3.1") + (uint32_t)i;
		in[i].port = 80;
		in[i].protocol = IPPROTO_TCP;
		in[i].backends = be;
		in[i].n_backends = 4;
	}
	in[0].node_port = 30080;
	in[0].external_local = true;      /* ETP Local, ITP Cluster: split */
	in[1].internal_local = true;      /* ITP Local, no node port */
	in[2].node_port = 30082;          /* both Cluster: untouched */

	PWT_EQ_INT(pw_services_localize(in, 2 + 1, &local, node_ip, &out, &n), 0, "policies: localize");
	PWT_CHECK(out && n == 4, "policies: the ETP-Local service is split in two, the others kept", "n %d", n);
	if (!out || n != 4)
		return;
	PWT_EXPECT(out[0].vip == in[0].vip && out[0].node_port == 0 && out[0].n_backends == 4,
		   "policies: ETP Local: the ClusterIP keeps every backend, no node port");
	PWT_EXPECT(out[1].vip == 0 && out[1].port == 30080 && out[1].node_port == 30080 && out[1].n_backends == 3 &&
		   out[1].backends[0].ip == be[0].ip && out[1].backends[1].ip == be[2].ip &&
		   out[1].backends[2].ip == node_ip,
		   "policies: ETP Local: the node port alone, with the local pods and the node's own address");
	PWT_EXPECT(out[2].vip == in[1].vip && out[2].n_backends == 3,
		   "policies: ITP Local: the ClusterIP serves only local backends");
	PWT_EXPECT(out[3].vip == in[2].vip && out[3].node_port == 30082 && out[3].n_backends == 4,
		   "policies: Cluster: every backend");

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "policies: create maps", "%s", strerror(errno));
		pw_services_localized_free(out);
		return;
	}
	pw_services_init(&s, &m, 0);
	PWT_EQ_INT(pw_services_apply(&s, out, n), 0, "policies: apply the localized services");
	PWT_EXPECT(get_svc(m.services, in[0].vip, 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, &cip) && cip.backends == 4 &&
		   get_svc(m.services, 0, 30080, IPPROTO_TCP, PW_SVC_NODEPORT, &np) && np.backends == 3 &&
		   np.id != cip.id,
		   "policies: maps: the ClusterIP with 4 backends, the node port its own service with 3");
	ids[0] = backend_id(m.backends, be[0].ip, 80);
	ids[1] = backend_id(m.backends, be[2].ip, 80);
	ids[2] = backend_id(m.backends, node_ip, 80);
	PWT_EXPECT(slots_are(m.slots, np.id, ids, 3), "policies: maps: the node port's slots are the local backends");
	PWT_EXPECT(!get_svc(m.services, 0, 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, &cip),
		   "policies: maps: no ClusterIP entry for the node-port-only service");
	pw_services_close(&s);

	/* An agent restart: the node-port-only service is read back from its
	 * NodePort entry, and the same input writes nothing. */
	pw_services_init(&s, &m, 0);
	PWT_EQ_INT(pw_services_apply(&s, out, n), 0, "policies: apply again after a restart");
	PWT_CHECK(s.last.writes == 0 && s.last.deletes == 0, "policies: after a restart nothing is rewritten",
		  "%lu writes %lu deletes", s.last.writes, s.last.deletes);
	/* Back to Cluster: the split service goes, its node port returns to the ClusterIP's. */
	PWT_EQ_INT(pw_services_apply(&s, in, 3), 0, "policies: back to Cluster");
	PWT_EXPECT(get_svc(m.services, 0, 30080, IPPROTO_TCP, PW_SVC_NODEPORT, &np) &&
		   get_svc(m.services, in[0].vip, 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, &cip) && np.id == cip.id &&
		   np.backends == 4,
		   "policies: back to Cluster: one service, the node port with every backend");
	pw_services_localized_free(out);
	in[0].external_local = in[1].internal_local = false;
	PWT_CHECK(pw_services_localize(in, 3, &local, node_ip, &out, &n) == 0 && !out && n == 3,
		  "policies: without Local policies the services are used as they are", "n %d", n);
	pw_services_close(&s);
	close_maps(&m);
}

/* Terminating backends: kept out while another backend is left, used when
 * they are the last (graceful termination), and with ITP Local among the
 * local ones only. */
static void test_terminating(void)
{
	struct pw_cidr local;
	struct pw_backend_config be[3] = { { IP("10.244.1.2"), 80, true }, { IP("10.244.2.2"), 80, false },
					   { IP("10.244.1.3"), 80, true } };
	struct pw_service_config in[2], *out = NULL;
	int n = 0;

	pw_cidr_parse("10.244.1.0/24", &local);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 2; i++) {
		in[i].vip = IP("10.96.4.1") + (uint32_t)i;
		in[i].port = 80;
		in[i].protocol = IPPROTO_TCP;
		in[i].backends = be;
		in[i].n_backends = 3;
	}
	in[1].internal_local = true;    /* its only local backends are terminating */
	PWT_EQ_INT(pw_services_localize(in, 2, &local, IP("192.168.1.11"), &out, &n), 0, "terminating: localize");
	PWT_CHECK(out && n == 2, "terminating: two services out", "n %d", n);
	if (!out || n != 2)
		return;
	PWT_CHECK(out[0].n_backends == 1 && out[0].backends[0].ip == IP("10.244.2.2"),
		  "terminating: a ready backend left: only it gets new connections", "%d backends", out[0].n_backends);
	PWT_CHECK(out[1].n_backends == 2 && out[1].backends[0].terminating && out[1].backends[1].terminating,
		  "terminating: ITP Local with only terminating local endpoints: those serve",
		  "%d backends", out[1].n_backends);
	pw_services_localized_free(out);
	be[1].terminating = true;
	in[1].internal_local = false;
	PWT_EQ_INT(pw_services_localize(in, 1, &local, IP("192.168.1.11"), &out, &n), 0, "terminating: localize, all terminating");
	PWT_CHECK(out && n == 1 && out[0].n_backends == 3, "terminating: every backend terminating: all of them serve",
		  "%d backends", out ? out[0].n_backends : -1);
	pw_services_localized_free(out);
	be[0].terminating = be[1].terminating = be[2].terminating = false;
	PWT_EQ_INT(pw_services_localize(in, 1, &local, IP("192.168.1.11"), &out, &n), 0, "terminating: none");
	PWT_CHECK(out == NULL, "terminating: no Local policy, nothing terminating: services used as they are", "%p", (void *)out);
}

static void test_refusals(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_backend_config be[8];
	struct pw_service_config svc[2];

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "refusals: create maps", "%s", strerror(errno));
		return;
	}
	PWT_EQ_INT(pw_services_init(&s, &m, 1020), -EINVAL, "a non-prime Maglev size is refused");
	PWT_EQ_INT(pw_services_init(&s, &m, 7), 0, "Maglev size 7 accepted");
	memset(svc, 0, sizeof(svc));
	for (int i = 0; i < 8; i++)
		be[i] = (struct pw_backend_config){ IP("10.244.1.2") + (uint32_t)i, 80, false };
	for (int i = 0; i < 2; i++) {
		svc[i].vip = IP("10.96.0.10");
		svc[i].port = 80;
		svc[i].protocol = IPPROTO_TCP;
		svc[i].backends = be;
		svc[i].n_backends = 2;
	}
	PWT_EQ_INT(pw_services_apply(&s, svc, 2), -EINVAL, "duplicate frontend refused");
	printf("# %s\n", s.err);
	PWT_EQ_INT(count_entries(m.services, 8) + count_entries(m.backends, 4), 0,
		   "a refused apply wrote nothing");
	svc[1].vip = IP("10.96.0.11");
	svc[0].node_port = svc[1].node_port = 30001;
	PWT_EQ_INT(pw_services_apply(&s, svc, 2), -EINVAL, "duplicate NodePort refused");
	svc[1].node_port = 0;
	svc[1].protocol = 1;
	PWT_EQ_INT(pw_services_apply(&s, svc, 2), -EINVAL, "protocol other than tcp/udp refused");
	svc[1].protocol = IPPROTO_UDP;
	svc[1].maglev = true;
	svc[1].n_backends = 8;
	PWT_EQ_INT(pw_services_apply(&s, svc, 2), -EINVAL, "more Maglev backends than M refused");
	printf("# %s\n", s.err);
	svc[1].n_backends = 7;
	PWT_CHECK(pw_services_apply(&s, svc, 2) == 0, "M = 7 with 7 backends", "%s", s.err);
	{
		uint32_t mm = 0, *t = read_maglev(m.maglev, pw_services_id(&s, svc[1].vip, 80, IPPROTO_UDP), &mm);

		PWT_EQ_INT(mm, 7, "an inner map of the configured size M = 7");
		free(t);
	}
	pw_services_close(&s);
	/* A restart with another M rebuilds the tables at the new size. */
	PWT_EQ_INT(pw_services_init(&s, &m, 11), 0, "restart with M = 11");
	PWT_EQ_INT(pw_services_apply(&s, svc, 2), 0, "apply with M = 11");
	PWT_EQ_INT(s.last.maglev_tables, 1, "the table is rebuilt for the new M");
	pw_services_close(&s);
	close_maps(&m);
}

/* Leftovers of an interrupted apply are cleaned up by the first apply. */
static void test_leftovers(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_backend_config be[1] = { { IP("10.244.1.2"), 80, false } };
	struct pw_service_config svc;
	struct pw_slot_key sk;
	struct pw_revnat rn = { { 10, 96, 9, 9 }, 9, 0 };
	struct pw_backend ob = { { 10, 244, 9, 9 }, 9, 0, 0 };
	uint32_t id, v = 777, orphan = 4242, obid = 999;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "leftovers: create maps", "%s", strerror(errno));
		return;
	}
	memset(&svc, 0, sizeof(svc));
	svc.vip = IP("10.96.3.1");
	svc.port = 80;
	svc.protocol = IPPROTO_TCP;
	svc.backends = be;
	svc.n_backends = 1;
	pw_services_init(&s, &m, 0);
	pw_services_apply(&s, &svc, 1);
	id = pw_services_id(&s, svc.vip, 80, IPPROTO_TCP);
	pw_services_close(&s);
	sk.svc_id = id;
	sk.slot = 5;   /* beyond the count */
	bpf_map_update_elem(m.slots, &sk, &v, BPF_ANY);
	bpf_map_update_elem(m.revnat, &orphan, &rn, BPF_ANY);
	bpf_map_update_elem(m.backends, &obid, &ob, BPF_ANY);
	pw_services_init(&s, &m, 0);
	PWT_EQ_INT(pw_services_apply(&s, &svc, 1), 0, "leftovers: first apply after restart");
	PWT_EXPECT(bpf_map_lookup_elem(m.slots, &sk, &v) != 0, "leftovers: slot beyond the count deleted");
	PWT_EXPECT(bpf_map_lookup_elem(m.revnat, &orphan, &rn) != 0, "leftovers: orphan revnat deleted");
	PWT_EXPECT(bpf_map_lookup_elem(m.backends, &obid, &ob) != 0,
		   "leftovers: unreferenced backend deleted");
	PWT_EXPECT(pw_services_id(&s, svc.vip, 80, IPPROTO_TCP) == id, "leftovers: id kept");
	pw_services_close(&s);
	close_maps(&m);
}

/* The CNI plugin's hostPort entries (ids from PW_HOSTPORT_ID_BASE, scope
 * PW_SVC_HOSTPORT) share the maps: the reconciler neither counts nor
 * deletes them, at start-up or on any apply (even of no service at all),
 * and keeps the port bit the plugin set. */
static void test_hostport_entries_kept(void)
{
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_backend_config be[1] = { { IP("10.244.1.2"), 80, false } };
	struct pw_service_config svc;
	uint32_t id = PW_HOSTPORT_ID_BASE + 7 * PW_HOSTPORT_PER_EP, got, w = 8443 / 64;
	struct pw_svc_key k = { { 127, 0, 0, 1 }, 8080, IPPROTO_TCP, PW_SVC_HOSTPORT };
	struct pw_svc v = { .id = id, .backends = 1 };
	struct pw_slot_key sk = { .svc_id = id, .slot = 0 };
	struct pw_revnat rn = { { 127, 0, 0, 1 }, 8080, 0 };
	struct pw_backend b = { { 10, 244, 1, 9 }, 8443, 0, 0 }, bgot;
	uint64_t bits;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "hostport entries: create maps", "%s", strerror(errno));
		return;
	}
	memset(&svc, 0, sizeof(svc));
	svc.vip = IP("10.96.3.1");
	svc.port = 80;
	svc.protocol = IPPROTO_TCP;
	svc.node_port = 30080;
	svc.backends = be;
	svc.n_backends = 1;
	PWT_EQ_INT(pw_services_init(&s, &m, 0), 0, "hostport entries: init");
	PWT_CHECK(pw_services_apply(&s, &svc, 1) == 0, "hostport entries: apply one service", "%s", s.err);
	/* The plugin writes a pod's hostPort while the agent runs. */
	bits = 0;
	bpf_map_lookup_elem(m.backend_ports, &w, &bits);
	bits |= 1ULL << (8443 % 64);
	PWT_CHECK(bpf_map_update_elem(m.backend_ports, &w, &bits, BPF_ANY) == 0 &&
		  bpf_map_update_elem(m.backends, &id, &b, BPF_ANY) == 0 &&
		  bpf_map_update_elem(m.slots, &sk, &id, BPF_ANY) == 0 &&
		  bpf_map_update_elem(m.revnat, &id, &rn, BPF_ANY) == 0 &&
		  bpf_map_update_elem(m.services, &k, &v, BPF_ANY) == 0, "hostport entries: written as the plugin does",
		  "%s", strerror(errno));
	/* A change that rewrites the port word of 8443 (8447: same word). */
	be[0].port = 8447;
	PWT_CHECK(pw_services_apply(&s, &svc, 1) == 0, "hostport entries: apply a changed service", "%s", s.err);
	PWT_CHECK(pw_services_apply(&s, &svc, 0) == 0, "hostport entries: apply no service", "%s", s.err);
	pw_services_close(&s);
	PWT_EQ_INT(pw_services_init(&s, &m, 0), 0, "hostport entries: init again (agent restart)");
	PWT_EQ_INT(pw_services_count(&s), 0, "hostport entries: not services of the reconciler");
	PWT_CHECK(pw_services_apply(&s, &svc, 1) == 0 && pw_services_apply(&s, &svc, 0) == 0,
		  "hostport entries: apply after restart", "%s", s.err);
	pw_services_close(&s);
	PWT_EXPECT(bpf_map_lookup_elem(m.services, &k, &v) == 0 && v.id == id, "hostport entries: frontend kept");
	PWT_EXPECT(bpf_map_lookup_elem(m.slots, &sk, &got) == 0 && got == id, "hostport entries: slot kept");
	PWT_EXPECT(bpf_map_lookup_elem(m.revnat, &id, &rn) == 0, "hostport entries: revnat kept");
	PWT_EXPECT(bpf_map_lookup_elem(m.backends, &id, &bgot) == 0 && bgot.port == 8443,
		   "hostport entries: backend kept");
	PWT_EXPECT(port_bit(m.backend_ports, 8443) && port_bit(m.backend_ports, 8447),
		   "hostport entries: the plugin's port bit survives the reconciler's write of its word");
	PWT_EQ_INT(count_entries(m.services, sizeof(struct pw_svc_key)), 1,
		   "hostport entries: the reconciler's own frontends all gone");
	close_maps(&m);
}

/* pw_services_open on maps pinned by name under a private bpffs dir. */
static void test_open_pinned(void)
{
	char root[128], dir[PW_PATH_MAX], path[PW_PATH_MAX + 32];
	const char *names[] = { PW_MAP_SERVICES, PW_MAP_SLOTS, PW_MAP_BACKENDS, PW_MAP_REVNAT,
				PW_MAP_MAGLEV, PW_MAP_AFFINITY, PW_MAP_BACKEND_PORTS };
	struct pw_svc_maps m;
	struct pw_services s;
	struct pw_paths p;
	int fds[7];
	int err;

	snprintf(root, sizeof(root), "/sys/fs/bpf/pwt-svc-%d", getpid());
	setenv("PODWIRE_BPFFS_ROOT", root, 1);
	pw_paths_init(&p, "t");
	snprintf(dir, sizeof(dir), "%s", p.pin_dir);
	if (create_maps(&m, BPF_F_INNER_MAP) || pw_mkdirs(dir, 0700)) {
		PWT_CHECK(0, "open: set up pins", "%s", strerror(errno));
		return;
	}
	err = pw_services_open(&s, &p, 0);
	PWT_EXPECT(err < 0 && strstr(s.err, PW_MAP_SERVICES), "open: a missing map is named in the error");
	fds[0] = m.services; fds[1] = m.slots; fds[2] = m.backends;
	fds[3] = m.revnat; fds[4] = m.maglev; fds[5] = m.affinity; fds[6] = m.backend_ports;
	for (int i = 0; i < 7; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		bpf_obj_pin(fds[i], path);
	}
	err = pw_services_open(&s, &p, 0);
	PWT_CHECK(err == 0, "open: pinned maps opened by name", "%s", s.err);
	if (!err) {
		desired_initial();
		PWT_EQ_INT(pw_services_apply(&s, svcs, 2), 0, "open: apply through pinned maps");
		PWT_EQ_INT(count_entries(m.services, 8), 3, "open: writes reach the pinned maps");
		pw_services_close(&s);
	}
	for (int i = 0; i < 7; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	rmdir(root);
	close_maps(&m);
}


/* ---- randomized: random configs in a row (with restarts), after each
 * apply the maps must hold exactly what the config says ---- */

#define RS_SVCS 24
#define RS_ADDRS 40
#define RS_M 31

static uint32_t rs_state = 12345;

static uint32_t rs_rand(void)
{
	rs_state = rs_state * 1103515245u + 12345u;
	return rs_state >> 8;
}

/* Everything the maps hold matches svcs[0..n-1]; why in msg if not. */
static bool maps_match(const struct pw_svc_maps *m, const struct pw_service_config *svcs, int n,
		       uint32_t mm, char *msg, size_t len)
{
	int fes = 0, slots = 0, maglevs = 0, distinct = 0;
	uint32_t seen[RS_ADDRS] = { 0 };

	for (int i = 0; i < n; i++) {
		const struct pw_service_config *d = &svcs[i];
		struct pw_svc v, np;
		uint32_t ids[RS_ADDRS];
		struct pw_maglev_backend mb[RS_ADDRS];
		struct pw_revnat rn;

		if (!get_svc(m->services, d->vip, d->port, d->protocol, PW_SVC_CLUSTERIP, &v) ||
		    v.backends != d->n_backends || v.algorithm != (d->maglev ? PW_LB_MAGLEV : PW_LB_RANDOM) ||
		    v.affinity_timeout != d->affinity_timeout)
			return snprintf(msg, len, "svc %d: frontend missing or wrong", i), false;
		fes++;
		if (d->node_port) {
			if (!get_svc(m->services, 0, d->node_port, d->protocol, PW_SVC_NODEPORT, &np) ||
			    memcmp(&np, &v, sizeof(v)))
				return snprintf(msg, len, "svc %d: NodePort frontend", i), false;
			fes++;
		}
		if (bpf_map_lookup_elem(m->revnat, &v.id, &rn) || pw_ip4_from_bytes(rn.addr) != d->vip ||
		    rn.port != d->port)
			return snprintf(msg, len, "svc %d: revnat", i), false;
		for (int j = 0; j < d->n_backends; j++) {
			int a = (int)(d->backends[j].ip - IP("10.244.7.0"));

			ids[j] = backend_id(m->backends, d->backends[j].ip, d->backends[j].port);
			if (!ids[j])
				return snprintf(msg, len, "svc %d: backend %d missing", i, j), false;
			if (seen[a] && seen[a] != ids[j])
				return snprintf(msg, len, "backend %d has two ids", a), false;
			if (!seen[a])
				distinct++;
			seen[a] = ids[j];
			mb[j] = (struct pw_maglev_backend){ ids[j], d->backends[j].ip, d->backends[j].port };
		}
		if (!slots_are(m->slots, v.id, ids, (uint32_t)d->n_backends))
			return snprintf(msg, len, "svc %d: slots", i), false;
		slots += d->n_backends;
		if (d->maglev && d->n_backends) {
			if (!maglev_matches(m->maglev, v.id, mb, d->n_backends, mm))
				return snprintf(msg, len, "svc %d: Maglev table", i), false;
			maglevs++;
		}
	}
	if (count_entries(m->services, 8) != fes || count_entries(m->slots, 8) != slots ||
	    count_entries(m->backends, 4) != distinct || count_entries(m->revnat, 4) != n ||
	    count_entries(m->maglev, 4) != maglevs)
		return snprintf(msg, len, "extra entries: fe %d/%d slots %d/%d be %d/%d revnat %d/%d maglev %d/%d",
				count_entries(m->services, 8), fes, count_entries(m->slots, 8), slots,
				count_entries(m->backends, 4), distinct, count_entries(m->revnat, 4), n,
				count_entries(m->maglev, 4), maglevs), false;
	return true;
}

static void test_random_sequence(bool in_place)
{
	static struct pw_backend_config pool[RS_SVCS][RS_ADDRS];
	struct pw_service_config all[RS_SVCS], cur[RS_SVCS];
	bool present[RS_SVCS] = { false };
	struct pw_svc_maps m;
	struct pw_services s;
	char msg[320] = "", name[96];
	int round, failed_round = -1, restarts = 0;

	if (create_maps(&m, BPF_F_INNER_MAP)) {
		PWT_CHECK(0, "random: create maps", "%s", strerror(errno));
		return;
	}
	memset(all, 0, sizeof(all));
	for (int i = 0; i < RS_SVCS; i++) {
		all[i].vip = IP("10.96.5.0") + (uint32_t)i;
		all[i].port = 80;
		all[i].protocol = i % 3 ? IPPROTO_TCP : IPPROTO_UDP;
		all[i].backends = pool[i];
	}
	pw_services_init(&s, &m, RS_M);
	s.maglev_in_place = in_place;
	for (round = 0; round < 300 && failed_round < 0; round++) {
		int n = 0, changes = 1 + (int)(rs_rand() % 4);

		for (int c = 0; c < changes; c++) {
			int i = (int)(rs_rand() % RS_SVCS);
			struct pw_service_config *d = &all[i];

			switch (rs_rand() % 6) {
			case 0:
				present[i] = !present[i];
				break;
			case 1:
				d->maglev = !d->maglev;
				break;
			case 2:   /* NodePorts from a small range: they move between services */
				d->node_port = rs_rand() % 3 ? 0 : (uint16_t)(30000 + rs_rand() % 6);
				for (int j = 0; j < RS_SVCS; j++)
					if (j != i && all[j].node_port == d->node_port)
						all[j].node_port = 0;
				break;
			case 3:
				d->affinity_timeout = rs_rand() % 2 ? 0 : 10800;
				break;
			default: { /* a fresh random subset of the address pool, in random order */
				int k = (int)(rs_rand() % 13);
				bool used[RS_ADDRS] = { false };

				d->n_backends = 0;
				while (d->n_backends < k) {
					int a = (int)(rs_rand() % RS_ADDRS);

					if (used[a])
						continue;
					used[a] = true;
					pool[i][d->n_backends++] = (struct pw_backend_config){
						IP("10.244.7.0") + (uint32_t)a, 8080, false };
				}
			}
			}
		}
		for (int i = 0; i < RS_SVCS; i++)
			if (present[i])
				cur[n++] = all[i];
		if (round % 37 == 36) {
			pw_services_close(&s);
			pw_services_init(&s, &m, RS_M);
			s.maglev_in_place = in_place;
			restarts++;
		}
		if (pw_services_apply(&s, cur, n)) {
			snprintf(msg, sizeof(msg), "apply: %s", s.err);
			failed_round = round;
		} else if (!maps_match(&m, cur, n, RS_M, msg, sizeof(msg))) {
			failed_round = round;
		}
	}
	snprintf(name, sizeof(name), "random: 300 rounds of changes (%d restarts%s), maps always exact",
		 restarts, in_place ? ", Maglev in place" : "");
	PWT_CHECK(failed_round < 0, name, "round %d: %s", failed_round, msg);
	pw_services_close(&s);
	close_maps(&m);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("not ok - test_services needs root (bpf_map_create)\n");
		return 1;
	}
	test_scenario(BPF_F_INNER_MAP, "inner template BPF_F_INNER_MAP");
	test_scenario(0, "inner template fixed size");
	test_backend_ports();
	test_compaction();
	test_affinity();
	test_traffic_policies();
	test_terminating();
	test_refusals();
	test_leftovers();
	test_hostport_entries_kept();
	test_open_pinned();
	test_random_sequence(false);
	test_random_sequence(true);
	return pwt_done();
}
