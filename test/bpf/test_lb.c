/* Packet tests of service load balancing through BPF_PROG_TEST_RUN:
 * ClusterIP DNAT from pod_ingress to local and remote backends and the
 * reverse translation of the replies (TCP and UDP, checksums recomputed from
 * scratch here), the no-backend RST, Maglev, conntrack reuse, terminating
 * and removed backends, ClientIP affinity, hairpin, a full conntrack table
 * NodePort on uplink_ingress to a local and a remote backend, and a
 * ClusterIP whose backend is off the cluster, masqueraded on the way out;
 * hostPort frontends (hostIP, wildcard, protocol) from the uplink and pods.
 * The service maps are filled directly, as userspace/lib/services.c would. */
#include "pwt_bpf.h"
#include "pwt_tunnel.h"
#include "pod.skel.h"
#include "host.skel.h"
#include "overlay.skel.h"

/* A tiny conntrack table (the same size on every object: they share it), so
 * the full-table case is reachable; sections flush it when they need room. */
#define CT_SIZE 32

static struct pod_bpf *pod;
static struct host_bpf *host;
static struct host_bpf *masq; /* the uplink of a node with masquerade on */
static struct overlay_bpf *overlay;
static struct pwt_tunnel_key_bpf *tunnel; /* overlay_ingress with a peer's tunnel metadata */
static int pod_fd, up_fd, masq_up_fd, masq_out_fd, ov_fd, metrics_fd, svc_fd, slots_fd, be_fd, revnat_fd, maglev_fd, aff_fd, ct_fd, snat_fd,
	   ports_fd, np_fd;
static unsigned if_a, if_b, if_up, if_vx;
static struct pw_endpoint ep_a, ep_b;
static struct pwt_events events;
static uint8_t up_mac[6], peer_mac[6], client_mac[6];

static const char *node_ip = "192.168.1.11", *client_ip = "192.168.1.100", *gw_ip = "10.244.1.1";
static const char *a_ip = "10.244.1.2", *b_ip = "10.244.1.3", *r_ip = "10.244.2.5";

#define SET_CFG(rodata) do {                                         \
	PWT_NODE1_CFG(rodata);                                        \
	(rodata)->cfg_routing_mode = PW_MODE_NATIVE;                  \
	(rodata)->cfg_masquerade = 0;                                 \
} while (0)

/* An address of the node serving NodePorts (pw_np_addrs), as the agent
 * lists them; on = false takes it out. */
static int np_addr(const char *ip, bool on)
{
	uint32_t a = pwt_ip(ip);
	struct pw_np_addr v = { .ifindex = if_up };

	return on ? bpf_map_update_elem(np_fd, &a, &v, BPF_ANY) : bpf_map_delete_elem(np_fd, &a);
}

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	struct pw_peer_key pk = { .prefixlen = 24 };
	struct pw_peer peer;
	uint32_t a;

	if (!pin_root)
		return -1;
	if (system("sysctl -qw net.ipv4.ip_forward=1") != 0)
		return -1;
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_b = pwt_veth("pwt-h2", "pwt-p2");
	if_up = pwt_veth("pwt-up0", "pwt-up1");
	if (!if_a || !if_b || !if_up)
		return -1;
	pwt_mac(up_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x11);
	pwt_mac(peer_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x12);
	pwt_mac(client_mac, 0x52, 0x54, 0x00, 0x00, 0x01, 0x00);
	/* The LAN: this node .11, its peer .12 and an outside client .100. */
	if (system("ip link set pwt-up0 address 52:54:00:00:00:11 && "
		   "ip addr add 192.168.1.11/24 dev pwt-up0 && "
		   "ip neigh replace 192.168.1.12 lladdr 52:54:00:00:00:12 nud permanent dev pwt-up0 && "
		   "ip neigh replace 192.168.1.100 lladdr 52:54:00:00:01:00 nud permanent dev pwt-up0") != 0)
		return -1;

	if_vx = pwt_vxlan("pwt-vx");
	if (!if_vx)
		return -1;

	oopts.pin_root_path = pin_root;
	pod = pod_bpf__open_opts(&oopts);
	host = host_bpf__open_opts(&oopts);
	overlay = overlay_bpf__open_opts(&oopts);
	masq = host_bpf__open_opts(&oopts);
	if (!pod || !host || !overlay || !masq)
		return -1;
	SET_CFG(pod->rodata);
	SET_CFG(host->rodata);
	SET_CFG(overlay->rodata);
	SET_CFG(masq->rodata);
	masq->rodata->cfg_masquerade = 1;
	if (bpf_map__set_max_entries(pod->maps.pw_ct, CT_SIZE) || bpf_map__set_max_entries(host->maps.pw_ct, CT_SIZE) ||
	    bpf_map__set_max_entries(overlay->maps.pw_ct, CT_SIZE) || bpf_map__set_max_entries(masq->maps.pw_ct, CT_SIZE))
		return -1;
	if (pod_bpf__load(pod) || host_bpf__load(host) || overlay_bpf__load(overlay) || host_bpf__load(masq))
		return -1;
	pod_fd = bpf_program__fd(pod->progs.pod_ingress);
	up_fd = bpf_program__fd(host->progs.uplink_ingress);
	masq_up_fd = bpf_program__fd(masq->progs.uplink_ingress);
	masq_out_fd = bpf_program__fd(masq->progs.uplink_egress);
	ov_fd = bpf_program__fd(overlay->progs.overlay_ingress);
	metrics_fd = bpf_map__fd(pod->maps.pw_metrics);
	svc_fd = bpf_map__fd(pod->maps.pw_services);
	slots_fd = bpf_map__fd(pod->maps.pw_svc_slots);
	be_fd = bpf_map__fd(pod->maps.pw_backends);
	revnat_fd = bpf_map__fd(pod->maps.pw_revnat);
	maglev_fd = bpf_map__fd(pod->maps.pw_maglev);
	aff_fd = bpf_map__fd(pod->maps.pw_affinity);
	ct_fd = bpf_map__fd(pod->maps.pw_ct);
	ports_fd = bpf_map__fd(pod->maps.pw_backend_ports);
	snat_fd = bpf_map__fd(pod->maps.pw_snat);
	np_fd = bpf_map__fd(pod->maps.pw_np_addrs);
	if (np_addr(node_ip, true))
		return -1;

	pwt_endpoint_init(&ep_a, if_a, a_ip, 2);
	pwt_endpoint_init(&ep_b, if_b, b_ip, 3);
	if (pwt_endpoint_add(bpf_map__fd(pod->maps.pw_endpoints), bpf_map__fd(pod->maps.pw_ep_ifindex), &ep_a) ||
	    pwt_endpoint_add(bpf_map__fd(pod->maps.pw_endpoints), bpf_map__fd(pod->maps.pw_ep_ifindex), &ep_b))
		return -1;
	memset(&peer, 0, sizeof(peer));
	a = pwt_ip("10.244.2.0");
	memcpy(pk.addr, &a, 4);
	a = pwt_ip("192.168.1.12");
	memcpy(peer.node_ip, &a, 4);
	if (bpf_map_update_elem(bpf_map__fd(pod->maps.pw_peers), &pk, &peer, BPF_ANY))
		return -1;
	{
		struct pw_node node = { 0 };

		if (bpf_map_update_elem(bpf_map__fd(pod->maps.pw_nodes), peer.node_ip, &node, BPF_ANY))
			return -1;
	}
	tunnel = pwt_tunnel_open(ov_fd);
	if (!tunnel)
		return -1;
	return pwt_events_open(&events, bpf_map__fd(pod->maps.pw_events));
}

/* ---------- the service maps, as the reconciler writes them ---------- */

/* The reconciler sets a backend's port bit before writing the backend. */
static int set_port_bit(uint16_t port, bool on)
{
	uint32_t w = port / 64;
	uint64_t bits = 0;

	if (bpf_map_lookup_elem(ports_fd, &w, &bits))
		return -1;
	bits = on ? bits | 1ULL << (port % 64) : bits & ~(1ULL << (port % 64));
	return bpf_map_update_elem(ports_fd, &w, &bits, BPF_ANY);
}

static int add_backend(uint32_t id, const char *ip, uint16_t port, uint8_t state)
{
	struct pw_backend b;
	uint32_t a = pwt_ip(ip);

	if (set_port_bit(port, true))
		return -1;
	memset(&b, 0, sizeof(b));
	memcpy(b.addr, &a, 4);
	b.port = port;
	b.state = state;
	return bpf_map_update_elem(be_fd, &id, &b, BPF_ANY);
}

static int set_slot(uint32_t svc, uint32_t slot, uint32_t backend)
{
	struct pw_slot_key k = { .svc_id = svc, .slot = slot };

	return bpf_map_update_elem(slots_fd, &k, &backend, BPF_ANY);
}

static int set_frontend(const char *addr, uint16_t port, uint8_t proto, uint8_t scope, uint32_t id, uint16_t n,
			uint8_t algorithm, uint32_t affinity)
{
	struct pw_svc_key k;
	struct pw_svc v;
	uint32_t a = addr ? pwt_ip(addr) : 0;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	memcpy(k.addr, &a, 4);
	k.port = port;
	k.proto = proto;
	k.scope = scope;
	v.id = id;
	v.backends = n;
	v.algorithm = algorithm;
	v.affinity_timeout = affinity;
	return bpf_map_update_elem(svc_fd, &k, &v, BPF_ANY);
}

/* A ClusterIP service (+ NodePort if node_port) with backends ids[0..n-1]. */
static int add_service(uint32_t id, const char *vip, uint16_t port, uint8_t proto, uint16_t node_port,
		       uint8_t algorithm, uint32_t affinity, const uint32_t *ids, uint16_t n)
{
	struct pw_revnat rn;
	uint32_t a = pwt_ip(vip);

	for (uint16_t i = 0; i < n; i++)
		if (set_slot(id, i, ids[i]))
			return -1;
	memset(&rn, 0, sizeof(rn));
	memcpy(rn.addr, &a, 4);
	rn.port = port;
	if (bpf_map_update_elem(revnat_fd, &id, &rn, BPF_ANY))
		return -1;
	if (set_frontend(vip, port, proto, PW_SVC_CLUSTERIP, id, n, algorithm, affinity))
		return -1;
	if (node_port && set_frontend(NULL, node_port, proto, PW_SVC_NODEPORT, id, n, algorithm, affinity))
		return -1;
	return 0;
}

/* A TCP ClusterIP service with one active backend, as most cases need. */
static bool one_backend_service(uint32_t svc_id, const char *vip, uint16_t port, uint32_t be_id,
				const char *be_ip, uint16_t be_port, const char *what)
{
	uint32_t be[] = { be_id };

	if (add_backend(be_id, be_ip, be_port, PW_BACKEND_ACTIVE) ||
	    add_service(svc_id, vip, port, IPPROTO_TCP, 0, PW_LB_RANDOM, 0, be, 1)) {
		PWT_CHECK(0, what, "maps not filled: %s", strerror(errno));
		return false;
	}
	return true;
}

static void ct_flush(void)
{
	struct pw_ct_key k, next;

	while (bpf_map_get_next_key(ct_fd, NULL, &next) == 0) {
		k = next;
		if (bpf_map_delete_elem(ct_fd, &k) != 0)
			break;
	}
}

static int ct_count(void)
{
	struct pw_ct_key k, next;
	int n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(ct_fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static int ct_get(const char *s, uint16_t sport, const char *d, uint16_t dport, uint8_t proto, uint8_t dir,
		  struct pw_ct_entry *out)
{
	struct pw_ct_key k;
	uint32_t sa = pwt_ip(s), da = pwt_ip(d);

	memset(&k, 0, sizeof(k));
	memcpy(k.saddr, &sa, 4);
	memcpy(k.daddr, &da, 4);
	k.sport = sport;
	k.dport = dport;
	k.proto = proto;
	k.dir = dir;
	return bpf_map_lookup_elem(ct_fd, &k, out);
}

/* ---------- packets ---------- */

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static size_t tcp_frame(uint8_t *buf, const uint8_t *smac, const uint8_t *dmac, const char *src, uint16_t sport,
			const char *dst, uint16_t dport, uint8_t flags, uint16_t payload)
{
	struct pwt_udp_spec s = {
		.src_mac = smac, .dst_mac = dmac, .saddr = pwt_ip(src), .daddr = pwt_ip(dst),
		.sport = sport, .dport = dport, .ttl = 64, .payload = payload,
	};
	size_t len = pwt_build_tcp(buf, &s);

	buf[14 + 20 + 13] = flags;
	pwt_l4_fix_csum(buf);
	return len;
}

static size_t udp_frame(uint8_t *buf, const uint8_t *smac, const uint8_t *dmac, const char *src, uint16_t sport,
			const char *dst, uint16_t dport, int with_csum)
{
	struct pwt_udp_spec s = {
		.src_mac = smac, .dst_mac = dmac, .saddr = pwt_ip(src), .daddr = pwt_ip(dst),
		.sport = sport, .dport = dport, .ttl = 64, .payload = 32,
	};
	size_t len = pwt_build_udp(buf, &s);

	if (with_csum)
		pwt_l4_fix_csum(buf);
	return len;
}

/* From pod A (or B) to dst, as the pod sends it (to its gateway MAC). */
static size_t tcp_from(const struct pw_endpoint *ep, uint8_t *buf, uint16_t sport, const char *dst, uint16_t dport,
		       uint8_t flags)
{
	char src[16];

	inet_ntop(AF_INET, ep->ip, src, sizeof(src));
	return tcp_frame(buf, ep->mac, ep->host_mac, src, sport, dst, dport, flags, 0);
}

static void trace(uint32_t on)
{
	struct pw_settings s;

	memset(&s, 0, sizeof(s));
	s.trace_events = on;
	s.drop_events = on;
	pwt_settings_set(bpf_map__fd(pod->maps.pw_settings), &s);
	pwt_events_read(&events);
}

static uint32_t ip_of(const uint8_t *f, int dst)
{
	const struct iphdr *iph = pwt_iph((uint8_t *)f);

	return dst ? iph->daddr : iph->saddr;
}

/* The packet's addresses and ports are these, and both checksums verify
 * from scratch (UDP without checksum: still 0). */
static void expect_tuple(const char *name, const struct pwt_run *r, const char *src, uint16_t sport,
			 const char *dst, uint16_t dport)
{
	char n[200];
	const struct iphdr *iph = pwt_iph((uint8_t *)r->out);
	int udp_none = iph->protocol == IPPROTO_UDP && memcmp(r->out + pwt_l4_csum_off(r->out), "\0\0", 2) == 0;

	snprintf(n, sizeof(n), "%s: %s:%u -> %s:%u", name, src, sport, dst, dport);
	PWT_CHECK(r->out_len > 34 && ip_of(r->out, 0) == pwt_ip(src) && ip_of(r->out, 1) == pwt_ip(dst) &&
		  pwt_sport(r->out) == sport && pwt_dport(r->out) == dport, n, "got %08x:%u -> %08x:%u",
		  ntohl(ip_of(r->out, 0)), pwt_sport(r->out), ntohl(ip_of(r->out, 1)), pwt_dport(r->out));
	snprintf(n, sizeof(n), "%s: ip checksum valid", name);
	PWT_EQ_INT(pwt_csum(iph, sizeof(*iph)), 0, n);
	if (!udp_none) {
		snprintf(n, sizeof(n), "%s: L4 checksum valid (recomputed)", name);
		PWT_CHECK(pwt_l4_csum(r->out) == 0, n, "residue 0x%04x", pwt_l4_csum(r->out));
	}
}

/* Verdict REDIRECT and the first trace event names point and target. */
static void expect_redirect(const char *name, const struct pwt_run *r, uint8_t point, unsigned target)
{
	char n[200];
	int got = pwt_events_read(&events);
	int found = 0;

	for (int i = 0; i < got; i++)
		if (events.ev[i].type == PW_EVENT_TRACE && events.ev[i].point == point &&
		    events.ev[i].target_ifindex == target)
			found = 1;
	snprintf(n, sizeof(n), "%s: redirected (trace point %u, target %u)", name, point, target);
	PWT_CHECK(r->err == 0 && r->retval == TC_ACT_REDIRECT && found, n, "err %d retval %d, %d events", r->err,
		  r->retval, got);
}

static struct pwt_run run(int prog, const uint8_t *pkt, size_t len, unsigned ifindex)
{
	trace(1);
	return pwt_run_prog(prog, pkt, len, ifindex);
}

/* Which backend port a translated packet went to (backends differ by port). */
static uint16_t backend_port_of(int prog, unsigned ifindex, const uint8_t *pkt, size_t len)
{
	struct pwt_run r = pwt_run_prog(prog, pkt, len, ifindex);

	if (r.err || r.retval != TC_ACT_REDIRECT)
		return 0;
	return pwt_dport(r.out);
}

/* ---------- ClusterIP ---------- */

/* Conntrack is asked only for packets from a port some backend listens on:
 * with the bit cleared, a reply that conntrack would translate goes through
 * as sent, which shows the lookup really is skipped; set again, it is
 * translated. */
static void test_reply_needs_backend_port(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;

	if (!one_backend_service(40, "10.96.0.40", 443, 41, b_ip, 7443, "backend port: maps filled"))
		return;
	len = tcp_from(&ep_a, pkt, 40200, "10.96.0.40", 443, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("backend port: syn DNAT", &r, a_ip, 40200, b_ip, 7443);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 7443, a_ip, 40200, F_SYN | F_ACK, 0);
	if (set_port_bit(7443, false)) {
		PWT_CHECK(0, "backend port: clear bit", "%s", strerror(errno));
		return;
	}
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("backend port: bit clear, conntrack not asked, reply as sent", &r, b_ip, 7443, a_ip, 40200);
	set_port_bit(7443, true);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("backend port: bit set, reply translated", &r, "10.96.0.40", 443, a_ip, 40200);
}

/* Only the service CIDR holds ClusterIPs (the agent refuses others), so
 * the datapath looks nothing else up: a frontend planted at a pod's own
 * address is ignored and pod-to-pod traffic reaches the pod unchanged. */
static void test_frontend_outside_service_cidr(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;

	if (!one_backend_service(30, b_ip, 80, 31, b_ip, 8080, "outside service CIDR: maps filled"))
		return;
	len = tcp_from(&ep_a, pkt, 40100, b_ip, 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("outside service CIDR: delivered to the pod", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("outside service CIDR: not translated", &r, a_ip, 40100, b_ip, 80);
}

static void test_clusterip_local(void)
{
	uint32_t tcp_be[] = { 21 }, udp_be[] = { 22 };
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry fe, re;
	struct pwt_run r;
	size_t len;

	if (add_backend(21, b_ip, 8080, PW_BACKEND_ACTIVE) || add_backend(22, b_ip, 5353, PW_BACKEND_ACTIVE) ||
	    add_service(1, "10.96.0.11", 80, IPPROTO_TCP, 0, PW_LB_RANDOM, 0, tcp_be, 1) ||
	    add_service(2, "10.96.0.11", 53, IPPROTO_UDP, 0, PW_LB_RANDOM, 0, udp_be, 1)) {
		PWT_CHECK(0, "clusterip: maps filled", "%s", strerror(errno));
		return;
	}

	/* TCP SYN, A -> VIP:80 -> B:8080 on this node. */
	len = tcp_from(&ep_a, pkt, 40000, "10.96.0.11", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("clusterip tcp syn", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("clusterip tcp syn: DNAT", &r, a_ip, 40000, b_ip, 8080);
	PWT_CHECK(memcmp(r.out, ep_b.mac, 6) == 0 && memcmp(r.out + 6, ep_b.host_mac, 6) == 0 &&
		  pwt_iph(r.out)->ttl == 63, "clusterip tcp syn: routed into B (MACs, ttl)", "ttl %u",
		  pwt_iph(r.out)->ttl);
	PWT_CHECK(events.n > 0 && events.ev[0].nat_addr[3] == 3 && events.ev[0].nat_port == 8080,
		  "clusterip tcp syn: trace event carries the backend", "nat_port %u", events.n ? events.ev[0].nat_port : 0);
	PWT_CHECK(ct_get(a_ip, 40000, "10.96.0.11", 80, IPPROTO_TCP, PW_CT_FORWARD, &fe) == 0 &&
		  ct_get(b_ip, 8080, a_ip, 40000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 && fe.backend_id == 21 &&
		  fe.svc_id == 1 && re.svc_id == 1 && fe.state == PW_CT_NEW && (fe.tcp_flags & F_SYN) &&
		  fe.last_seen_ns && re.last_seen_ns && fe.flags == 0,
		  "clusterip tcp syn: forward and reply conntrack entries", "%s", "missing or wrong");

	/* SYN-ACK from B, delivered to A from the VIP. */
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 40000, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("clusterip tcp syn-ack", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("clusterip tcp syn-ack: reverse NAT", &r, "10.96.0.11", 80, a_ip, 40000);
	PWT_CHECK(ct_get(a_ip, 40000, "10.96.0.11", 80, IPPROTO_TCP, PW_CT_FORWARD, &fe) == 0 &&
		  ct_get(b_ip, 8080, a_ip, 40000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  fe.state == PW_CT_ESTABLISHED && re.state == PW_CT_ESTABLISHED && (re.tcp_flags & F_SYN),
		  "clusterip tcp: established in both entries after the syn-ack", "state %u/%u", fe.state, re.state);

	/* Data with payload both ways. */
	len = tcp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 40000, "10.96.0.11", 80, F_ACK, 40);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("clusterip tcp data: DNAT", &r, a_ip, 40000, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 40000, F_ACK, 60);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("clusterip tcp data reply: reverse NAT", &r, "10.96.0.11", 80, a_ip, 40000);

	/* FIN from the client, FIN from the backend: closed. RST: closed. */
	len = tcp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 40000, "10.96.0.11", 80, F_FIN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(ct_get(b_ip, 8080, a_ip, 40000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 && re.state == PW_CT_CLOSING,
		  "clusterip tcp: first fin -> closing (both entries)", "state %u", re.state);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 40000, F_FIN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("clusterip tcp fin reply: reverse NAT", &r, "10.96.0.11", 80, a_ip, 40000);
	PWT_CHECK(ct_get(a_ip, 40000, "10.96.0.11", 80, IPPROTO_TCP, PW_CT_FORWARD, &fe) == 0 &&
		  ct_get(b_ip, 8080, a_ip, 40000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  fe.state == PW_CT_CLOSED && re.state == PW_CT_CLOSED,
		  "clusterip tcp: both fins -> closed (both entries)", "state %u/%u", fe.state, re.state);

	len = tcp_from(&ep_a, pkt, 40001, "10.96.0.11", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 40001, F_RST | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("clusterip tcp rst reply: reverse NAT", &r, "10.96.0.11", 80, a_ip, 40001);
	PWT_CHECK(ct_get(a_ip, 40001, "10.96.0.11", 80, IPPROTO_TCP, PW_CT_FORWARD, &fe) == 0 &&
		  fe.state == PW_CT_CLOSED, "clusterip tcp: rst -> closed", "state %u", fe.state);

	/* UDP with a checksum, then without one. */
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 41000, "10.96.0.11", 53, 1);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("clusterip udp", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("clusterip udp: DNAT", &r, a_ip, 41000, b_ip, 5353);
	PWT_CHECK(ct_get(a_ip, 41000, "10.96.0.11", 53, IPPROTO_UDP, PW_CT_FORWARD, &fe) == 0 && fe.state == PW_CT_NEW,
		  "clusterip udp: conntrack new", "state %u", fe.state);
	len = udp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 5353, a_ip, 41000, 1);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("clusterip udp reply", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("clusterip udp reply: reverse NAT", &r, "10.96.0.11", 53, a_ip, 41000);
	PWT_CHECK(ct_get(a_ip, 41000, "10.96.0.11", 53, IPPROTO_UDP, PW_CT_FORWARD, &fe) == 0 &&
		  fe.state == PW_CT_ESTABLISHED, "clusterip udp: established after the reply", "state %u", fe.state);

	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 41001, "10.96.0.11", 53, 0);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("clusterip udp without checksum: DNAT", &r, a_ip, 41001, b_ip, 5353);
	PWT_EXPECT(memcmp(r.out + pwt_l4_csum_off(r.out), "\0\0", 2) == 0,
		   "clusterip udp without checksum: stays 0 (none)");

	/* Not a frontend (other port): untouched by the LB, B gets it as sent. */
	len = tcp_from(&ep_a, pkt, 40002, b_ip, 8080, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("pod to pod, no service: untranslated", &r, a_ip, 40002, b_ip, 8080);
}

/* ICMP errors about a ClusterIP flow reach the client as if the frontend
 * had sent them: a UDP client then hears "port unreachable" at once instead
 * of waiting for its timeout. */
static void test_clusterip_icmp_error(void)
{
	uint32_t be[] = { 45 }, vip = pwt_ip("10.96.0.45"), router = pwt_ip("192.168.1.1");
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT], err[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;

	if (add_backend(45, b_ip, 5353, PW_BACKEND_ACTIVE) ||
	    add_service(45, "10.96.0.45", 53, IPPROTO_UDP, 0, PW_LB_RANDOM, 0, be, 1)) {
		PWT_CHECK(0, "icmp error: maps filled", "%s", strerror(errno));
		return;
	}
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 41500, "10.96.0.45", 53, 1);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("icmp error: udp DNAT to the backend", &r, a_ip, 41500, b_ip, 5353);
	memcpy(out, r.out, r.out_len);

	/* The backend has no socket on 5353: its kernel answers. */
	len = pwt_build_icmp_error(err, ep_b.mac, ep_b.host_mac, pwt_ip(b_ip), pwt_ip(a_ip), 3, 3, out);
	r = run(pod_fd, err, len, if_b);
	expect_redirect("port unreachable from the backend", &r, PW_TRACE_TO_POD, if_a);
	PWT_CHECK(pwt_iph(r.out)->saddr == vip && pwt_quoted_iph(r.out)->daddr == vip &&
		  pwt_quoted_u16(r.out, 2) == 53 && pwt_quoted_iph(r.out)->saddr == pwt_ip(a_ip) &&
		  pwt_quoted_u16(r.out, 0) == 41500,
		  "port unreachable: from the frontend, quoting the client's own packet to it", "quoted dport %u",
		  pwt_quoted_u16(r.out, 2));
	PWT_CHECK(pwt_csum(pwt_iph(r.out), sizeof(struct iphdr)) == 0 && pwt_l4_csum(r.out) == 0 &&
		  pwt_csum(pwt_quoted_iph(r.out), sizeof(struct iphdr)) == 0,
		  "port unreachable: outer, ICMP and quoted header checksums valid", "icmp residue 0x%04x",
		  pwt_l4_csum(r.out));

	/* From a router on the way, arriving on the uplink: the quote is
	 * translated, the router stays the source. */
	len = pwt_build_icmp_error(err, peer_mac, up_mac, router, pwt_ip(a_ip), 11, 0, out);
	r = run(up_fd, err, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->saddr == router &&
		  pwt_quoted_iph(r.out)->daddr == vip && pwt_l4_csum(r.out) == 0,
		  "time exceeded from a router: quote translated, source kept", "retval %d", r.retval);

	/* Not about a service flow: delivered as it is. */
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 41501, b_ip, 5353, 1);
	len = pwt_build_icmp_error(err, ep_b.mac, ep_b.host_mac, pwt_ip(b_ip), pwt_ip(a_ip), 3, 3, pkt);
	r = run(pod_fd, err, len, if_b);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->saddr == pwt_ip(b_ip) &&
		  pwt_quoted_iph(r.out)->daddr == pwt_ip(b_ip) && pwt_l4_csum(r.out) == 0,
		  "port unreachable about plain pod-to-pod traffic: untouched", "retval %d", r.retval);
}

static void test_clusterip_remote(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;

	if (!one_backend_service(3, "10.96.0.12", 80, 23, r_ip, 8080, "clusterip remote: maps filled"))
		return;
	len = tcp_from(&ep_a, pkt, 40100, "10.96.0.12", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("clusterip, backend on a peer node", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("clusterip, backend on a peer node: DNAT, client IP kept", &r, a_ip, 40100, r_ip, 8080);
	PWT_EXPECT(memcmp(r.out, peer_mac, 6) == 0 && memcmp(r.out + 6, up_mac, 6) == 0,
		   "clusterip, backend on a peer node: out the uplink to the peer's MAC");

	/* The peer's reply arrives on the uplink (native routing). */
	len = tcp_frame(pkt, peer_mac, up_mac, r_ip, 8080, a_ip, 40100, F_SYN | F_ACK, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("reply from the remote backend", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("reply from the remote backend: reverse NAT on the client's node", &r, "10.96.0.12", 80, a_ip,
		     40100);
	/* The same reply through the overlay (VXLAN mode), decapsulated. */
	len = tcp_frame(pkt, peer_mac, up_mac, r_ip, 8080, a_ip, 40100, F_ACK, 10);
	r = run(pwt_tunnel_from(tunnel, "192.168.1.12", PW_VXLAN_VNI), pkt, len, if_vx);
	expect_redirect("reply from the remote backend over the overlay", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("reply from the remote backend over the overlay: reverse NAT", &r, "10.96.0.12", 80, a_ip,
		     40100);
}

/* A ClusterIP whose backend is off the cluster (the `kubernetes` Service
 * in front of an API server outside the pod network): the pod's packet is
 * DNATed to the backend, left to the host stack, masqueraded on the uplink;
 * the backend's reply comes back to the node IP and must reach the pod from
 * the ClusterIP, both translations undone. */
static void test_clusterip_off_cluster(void)
{
	const char *vip = "10.96.0.1", *api = "192.168.1.50";
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry re;
	struct pwt_run r;
	uint16_t node_port;
	size_t len;

	if (!one_backend_service(50, vip, 443, 51, api, 6443, "off-cluster backend: maps filled"))
		return;
	len = tcp_from(&ep_a, pkt, 40700, vip, 443, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK, "off-cluster backend: syn left to the host stack (TC_ACT_OK)",
		  "err %d retval %d", r.err, r.retval);
	expect_tuple("off-cluster backend: syn DNAT", &r, a_ip, 40700, api, 6443);
	PWT_CHECK(ct_get(api, 6443, a_ip, 40700, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 && re.svc_id == 50,
		  "off-cluster backend: reply conntrack entry for the service", "%s", "missing or wrong");

	/* The host routed it out of the uplink: masquerade. */
	memcpy(pkt, r.out, r.out_len);
	len = r.out_len;
	memcpy(pkt, client_mac, 6);
	memcpy(pkt + 6, up_mac, 6);
	r = pwt_run_prog(masq_out_fd, pkt, len, if_up);
	node_port = pwt_sport(r.out);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK && node_port >= PW_SNAT_PORT_MIN && node_port <= PW_SNAT_PORT_MAX,
		  "off-cluster backend: syn masqueraded on the uplink", "err %d retval %d port %u", r.err, r.retval,
		  node_port);
	expect_tuple("off-cluster backend: syn leaves from the node", &r, node_ip, node_port, api, 6443);

	/* The backend's SYN-ACK to the node IP and the masquerade port. */
	len = tcp_frame(pkt, client_mac, up_mac, api, 6443, node_ip, node_port, F_SYN | F_ACK, 0);
	r = run(masq_up_fd, pkt, len, if_up);
	expect_redirect("off-cluster backend: reply delivered to the pod", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("off-cluster backend: reply from the ClusterIP to the pod", &r, vip, 443, a_ip, 40700);
	PWT_EXPECT(memcmp(r.out, ep_a.mac, 6) == 0 && memcmp(r.out + 6, ep_a.host_mac, 6) == 0,
		   "off-cluster backend: reply MACs for the pod");
	ct_flush();
}

static void expect_no_backend_drop(const char *name, int prog, unsigned ifindex, const uint8_t *pkt, size_t len,
				   int dir)
{
	char n[200];
	struct pw_metric before = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND), after;
	struct pwt_run r = run(prog, pkt, len, ifindex);
	uint64_t b = dir == PW_DIR_EGRESS ? before.egress.packets : before.ingress.packets, a;

	after = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND);
	a = dir == PW_DIR_EGRESS ? after.egress.packets : after.ingress.packets;
	snprintf(n, sizeof(n), "%s: dropped, counted once as no-backend, drop event", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_SHOT && a == b + 1 && pwt_events_read(&events) == 1 &&
		  events.ev[0].reason == PW_DROP_NO_BACKEND, n, "retval %d count %llu -> %llu", r.retval,
		  (unsigned long long)b, (unsigned long long)a);
}

/* The RST answering a SYN (seq 0x11000022 as pwt_build_tcp sets it). */
static void expect_rst(const char *name, int prog, unsigned ifindex, const uint8_t *pkt, size_t len, int dir,
		       const char *vip, uint16_t vport, const char *client, uint16_t cport, uint32_t ack)
{
	char n[200];
	struct pw_metric before = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND), after;
	struct pwt_run r = run(prog, pkt, len, ifindex);
	const uint8_t *tcp = r.out + 34;
	uint64_t b = dir == PW_DIR_EGRESS ? before.egress.packets : before.ingress.packets, a;
	uint32_t seq, ackv;

	after = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND);
	a = dir == PW_DIR_EGRESS ? after.egress.packets : after.ingress.packets;
	snprintf(n, sizeof(n), "%s: RST sent back where the SYN came from", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT && r.out_len == 54, n, "err %d retval %d len %u", r.err,
		  r.retval, r.out_len);
	if (r.out_len != 54)
		return;
	expect_tuple(name, &r, vip, vport, client, cport);
	memcpy(&seq, tcp + 4, 4);
	memcpy(&ackv, tcp + 8, 4);
	snprintf(n, sizeof(n), "%s: RST|ACK, seq 0, ack = syn seq + 1, no options", name);
	PWT_CHECK(tcp[13] == (F_RST | F_ACK) && seq == 0 && ntohl(ackv) == ack && tcp[12] == 0x50 &&
		  ntohs(pwt_iph(r.out)->tot_len) == 40, n, "flags %02x seq %u ack %08x doff %02x", tcp[13], ntohl(seq),
		  ntohl(ackv), tcp[12]);
	snprintf(n, sizeof(n), "%s: MACs swapped", name);
	PWT_EXPECT(memcmp(r.out, pkt + 6, 6) == 0 && memcmp(r.out + 6, pkt, 6) == 0, n);
	snprintf(n, sizeof(n), "%s: counted once as no-backend, drop event", name);
	PWT_CHECK(a == b + 1 && pwt_events_read(&events) == 1 && events.ev[0].type == PW_EVENT_DROP &&
		  events.ev[0].reason == PW_DROP_NO_BACKEND, n, "count %llu -> %llu, %d events",
		  (unsigned long long)b, (unsigned long long)a, events.n);
}

/* The ICMP port unreachable answering a UDP datagram: from the frontend,
 * quoting the datagram's IP header and first 8 bytes. */
static void expect_unreachable(const char *name, int prog, unsigned ifindex, const uint8_t *pkt, size_t len,
			       int dir, const char *frontend)
{
	char n[200];
	struct pw_metric before = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND), after;
	struct pwt_run r = run(prog, pkt, len, ifindex);
	const struct iphdr *in = (const struct iphdr *)(pkt + 14);
	uint64_t b = dir == PW_DIR_EGRESS ? before.egress.packets : before.ingress.packets, a;

	after = pwt_metric(metrics_fd, -PW_DROP_NO_BACKEND);
	a = dir == PW_DIR_EGRESS ? after.egress.packets : after.ingress.packets;
	snprintf(n, sizeof(n), "%s: ICMP sent back where the datagram came from", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT && r.out_len == 70, n, "err %d retval %d len %u", r.err,
		  r.retval, r.out_len);
	if (r.out_len != 70)
		return;
	snprintf(n, sizeof(n), "%s: port unreachable from %s to the client, checksums valid", name, frontend);
	PWT_CHECK(pwt_iph(r.out)->protocol == IPPROTO_ICMP && r.out[34] == 3 && r.out[35] == 3 &&
		  pwt_iph(r.out)->saddr == pwt_ip(frontend) && pwt_iph(r.out)->daddr == in->saddr &&
		  pwt_csum(pwt_iph(r.out), 20) == 0 && pwt_l4_csum(r.out) == 0, n, "type %u code %u residue 0x%04x",
		  r.out[34], r.out[35], pwt_l4_csum(r.out));
	snprintf(n, sizeof(n), "%s: quotes the datagram (IP header and 8 bytes)", name);
	PWT_EXPECT(memcmp(r.out + 42, pkt + 14, 28) == 0, n);
	snprintf(n, sizeof(n), "%s: MACs swapped, counted once as no-backend, drop event", name);
	PWT_CHECK(memcmp(r.out, pkt + 6, 6) == 0 && memcmp(r.out + 6, pkt, 6) == 0 && a == b + 1 &&
		  pwt_events_read(&events) == 1 && events.ev[0].reason == PW_DROP_NO_BACKEND, n,
		  "count %llu -> %llu", (unsigned long long)b, (unsigned long long)a);
}

static void test_no_backend(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	if (add_service(4, "10.96.0.13", 80, IPPROTO_TCP, 30013, PW_LB_RANDOM, 0, NULL, 0) ||
	    add_service(5, "10.96.0.13", 53, IPPROTO_UDP, 30053, PW_LB_RANDOM, 0, NULL, 0)) {
		PWT_CHECK(0, "no backend: maps filled", "%s", strerror(errno));
		return;
	}
	len = tcp_from(&ep_a, pkt, 40200, "10.96.0.13", 80, F_SYN);
	expect_rst("no backend, tcp syn", pod_fd, if_a, pkt, len, PW_DIR_EGRESS, "10.96.0.13", 80, a_ip, 40200,
		   0x11000022 + 1);
	/* A SYN with options (12 bytes) and 4 bytes of data (TFO): ack covers both. */
	len = tcp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 40201, "10.96.0.13", 80, F_SYN, 16);
	pkt[14 + 20 + 12] = 8 << 4;
	pwt_l4_fix_csum(pkt);
	expect_rst("no backend, tcp syn with options and data", pod_fd, if_a, pkt, len, PW_DIR_EGRESS, "10.96.0.13",
		   80, a_ip, 40201, 0x11000022 + 1 + 4);
	len = tcp_from(&ep_a, pkt, 40202, "10.96.0.13", 80, F_ACK);
	expect_no_backend_drop("no backend, tcp ack", pod_fd, if_a, pkt, len, PW_DIR_EGRESS);
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 40203, "10.96.0.13", 53, 1);
	expect_unreachable("no backend, udp", pod_fd, if_a, pkt, len, PW_DIR_EGRESS, "10.96.0.13");
	len = udp_frame(pkt, client_mac, up_mac, client_ip, 33001, node_ip, 30053, 1);
	expect_unreachable("no backend, nodeport udp", up_fd, if_up, pkt, len, PW_DIR_INGRESS, node_ip);
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 33000, node_ip, 30013, F_SYN, 0);
	expect_rst("no backend, nodeport tcp syn", up_fd, if_up, pkt, len, PW_DIR_INGRESS, node_ip, 30013, client_ip,
		   33000, 0x11000022 + 1);
	PWT_EXPECT(ct_get(a_ip, 40200, "10.96.0.13", 80, IPPROTO_TCP, PW_CT_FORWARD, &(struct pw_ct_entry){ 0 }) != 0,
		   "no backend: no conntrack entry left behind");
}

/* ---------- selection ---------- */

static int make_maglev_table(uint32_t svc, const uint32_t *ids, int n)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_INNER_MAP);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pwt_maglev", 4, 4, PW_MAGLEV_M, &o);
	int err = 0;

	if (fd < 0)
		return -1;
	for (uint32_t i = 0; i < PW_MAGLEV_M && !err; i++)
		err = bpf_map_update_elem(fd, &i, &ids[i % (uint32_t)n], BPF_ANY);
	if (!err)
		err = bpf_map_update_elem(maglev_fd, &svc, &fd, BPF_ANY);
	close(fd);
	return err;
}

static void test_maglev(void)
{
	uint32_t ids[] = { 31, 32, 33 }, only32[] = { 32 }, ghost[] = { 99 };
	uint8_t pkt[PWT_MAX_PKT];
	int same = 1, seen[3] = { 0 }, spread;
	uint16_t first = 0, p;
	size_t len;

	if (add_backend(31, b_ip, 9001, PW_BACKEND_ACTIVE) || add_backend(32, b_ip, 9002, PW_BACKEND_ACTIVE) ||
	    add_backend(33, b_ip, 9003, PW_BACKEND_ACTIVE) ||
	    add_service(6, "10.96.0.20", 80, IPPROTO_TCP, 0, PW_LB_MAGLEV, 0, ids, 3) ||
	    make_maglev_table(6, ids, 3)) {
		PWT_CHECK(0, "maglev: maps filled", "%s", strerror(errno));
		return;
	}
	/* The same 5-tuple, conntrack forgotten each time: the table decides. */
	len = tcp_from(&ep_a, pkt, 42000, "10.96.0.20", 80, F_SYN);
	for (int i = 0; i < 20; i++) {
		ct_flush();
		p = backend_port_of(pod_fd, if_a, pkt, len);
		if (i == 0)
			first = p;
		same &= p == first && p >= 9001 && p <= 9003;
	}
	PWT_CHECK(same, "maglev: the same 5-tuple picks the same backend every time (20 runs, no conntrack)",
		  "first %u", first);
	for (int i = 0; i < 60; i++) {
		ct_flush();
		len = tcp_from(&ep_a, pkt, (uint16_t)(43000 + i), "10.96.0.20", 80, F_SYN);
		p = backend_port_of(pod_fd, if_a, pkt, len);
		if (p >= 9001 && p <= 9003)
			seen[p - 9001]++;
	}
	spread = seen[0] && seen[1] && seen[2];
	PWT_CHECK(spread && seen[0] + seen[1] + seen[2] == 60, "maglev: different tuples spread over all backends",
		  "%d/%d/%d", seen[0], seen[1], seen[2]);

	/* The table, not the slots, decides: a table naming only 32. */
	if (make_maglev_table(6, only32, 1) == 0) {
		same = 1;
		for (int i = 0; i < 20; i++) {
			ct_flush();
			len = tcp_from(&ep_a, pkt, (uint16_t)(44000 + i), "10.96.0.20", 80, F_SYN);
			same &= backend_port_of(pod_fd, if_a, pkt, len) == 9002;
		}
		PWT_CHECK(same, "maglev: the backend comes from the service's table", "%s", "another backend seen");
	}
	/* A table naming a backend that does not exist: random over the slots. */
	if (make_maglev_table(6, ghost, 1) == 0) {
		ct_flush();
		len = tcp_from(&ep_a, pkt, 45000, "10.96.0.20", 80, F_SYN);
		p = backend_port_of(pod_fd, if_a, pkt, len);
		PWT_CHECK(p >= 9001 && p <= 9003, "maglev: stale table entry falls back to the slots", "port %u", p);
	}
	ct_flush();
}

static void test_ct_reuse_and_lifecycle(void)
{
	uint32_t one[] = { 41 }, two[] = { 41, 42 };
	uint8_t pkt[PWT_MAX_PKT];
	int all42 = 1, spread[2] = { 0 };
	uint16_t p;
	size_t len;

	ct_flush();
	if (add_backend(41, b_ip, 7001, PW_BACKEND_ACTIVE) || add_backend(42, b_ip, 7002, PW_BACKEND_ACTIVE) ||
	    add_service(7, "10.96.0.30", 80, IPPROTO_TCP, 0, PW_LB_RANDOM, 0, one, 1)) {
		PWT_CHECK(0, "ct reuse: maps filled", "%s", strerror(errno));
		return;
	}
	len = tcp_from(&ep_a, pkt, 46000, "10.96.0.30", 80, F_SYN);
	PWT_EQ_INT(backend_port_of(pod_fd, if_a, pkt, len), 7001, "ct reuse: first packet to the only backend");
	/* The service now has only 42 in slot 0. */
	set_slot(7, 0, 42);
	len = tcp_from(&ep_a, pkt, 46000, "10.96.0.30", 80, F_ACK);
	PWT_EQ_INT(backend_port_of(pod_fd, if_a, pkt, len), 7001,
		   "ct reuse: second packet of the flow keeps its backend after the slots changed");
	len = tcp_from(&ep_a, pkt, 46001, "10.96.0.30", 80, F_SYN);
	PWT_EQ_INT(backend_port_of(pod_fd, if_a, pkt, len), 7002, "ct reuse: a new flow follows the new slots");

	/* Two slots, 41 terminating: new flows never pick it, its flow stays. */
	add_service(7, "10.96.0.30", 80, IPPROTO_TCP, 0, PW_LB_RANDOM, 0, two, 2);
	add_backend(41, b_ip, 7001, PW_BACKEND_TERMINATING);
	for (int i = 0; i < 24; i++) {
		len = tcp_from(&ep_a, pkt, (uint16_t)(46100 + i), "10.96.0.30", 80, F_SYN);
		all42 &= backend_port_of(pod_fd, if_a, pkt, len) == 7002;
		if (i % 6 == 5)
			ct_flush();
	}
	PWT_CHECK(all42, "terminating backend: never chosen for new flows (24 flows)", "%s", "41 was chosen");
	len = tcp_from(&ep_a, pkt, 46000, "10.96.0.30", 80, F_SYN);
	ct_flush();
	backend_port_of(pod_fd, if_a, pkt, len); /* flow 46000 -> 42 now; pin it to 41 by hand: */
	{
		struct pw_ct_key k;
		struct pw_ct_entry e;
		uint32_t sa = pwt_ip(a_ip), da = pwt_ip("10.96.0.30");

		memset(&k, 0, sizeof(k));
		memcpy(k.saddr, &sa, 4);
		memcpy(k.daddr, &da, 4);
		k.sport = 46000;
		k.dport = 80;
		k.proto = IPPROTO_TCP;
		k.dir = PW_CT_FORWARD;
		if (bpf_map_lookup_elem(ct_fd, &k, &e) == 0) {
			e.backend_id = 41;
			e.state = PW_CT_ESTABLISHED;
			bpf_map_update_elem(ct_fd, &k, &e, BPF_EXIST);
		}
	}
	len = tcp_from(&ep_a, pkt, 46000, "10.96.0.30", 80, F_ACK);
	PWT_EQ_INT(backend_port_of(pod_fd, if_a, pkt, len), 7001,
		   "terminating backend: its established flow keeps it");
	/* 41 removed from every service (its backend entry deleted): the flow
	 * moves to a live backend instead of going nowhere. */
	bpf_map_delete_elem(be_fd, &(uint32_t){ 41 });
	set_slot(7, 0, 42);
	set_slot(7, 1, 42);
	PWT_EQ_INT(backend_port_of(pod_fd, if_a, pkt, len), 7002,
		   "removed backend: its flow is re-balanced to a live one");

	/* Random spreads (no affinity). */
	add_backend(41, b_ip, 7001, PW_BACKEND_ACTIVE);
	set_slot(7, 0, 41);
	for (int i = 0; i < 40; i++) {
		if (i % 12 == 0)
			ct_flush();
		len = tcp_from(&ep_a, pkt, (uint16_t)(47000 + i), "10.96.0.30", 80, F_SYN);
		p = backend_port_of(pod_fd, if_a, pkt, len);
		if (p == 7001 || p == 7002)
			spread[p - 7001]++;
	}
	PWT_CHECK(spread[0] && spread[1] && spread[0] + spread[1] == 40,
		  "random: new flows spread over both backends (40 flows)", "%d/%d", spread[0], spread[1]);
	ct_flush();
}

static void test_affinity(void)
{
	uint32_t ids[] = { 51, 52, 53 };
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_affinity_key ak;
	struct pw_affinity av;
	uint32_t a = pwt_ip(a_ip);
	uint16_t first = 0, p;
	int same = 1;
	size_t len;

	ct_flush();
	if (add_backend(51, b_ip, 7101, PW_BACKEND_ACTIVE) || add_backend(52, b_ip, 7102, PW_BACKEND_ACTIVE) ||
	    add_backend(53, b_ip, 7103, PW_BACKEND_ACTIVE) ||
	    add_service(8, "10.96.0.40", 80, IPPROTO_TCP, 0, PW_LB_RANDOM, 60, ids, 3)) {
		PWT_CHECK(0, "affinity: maps filled", "%s", strerror(errno));
		return;
	}
	for (int i = 0; i < 30; i++) {
		if (i % 12 == 0)
			ct_flush();
		len = tcp_from(&ep_a, pkt, (uint16_t)(48000 + i), "10.96.0.40", 80, F_SYN);
		p = backend_port_of(pod_fd, if_a, pkt, len);
		if (i == 0)
			first = p;
		same &= p == first && p;
	}
	PWT_CHECK(same, "affinity: 30 connections of one client pinned to one backend", "first %u", first);
	memset(&ak, 0, sizeof(ak));
	ak.svc_id = 8;
	memcpy(ak.client, &a, 4);
	PWT_CHECK(bpf_map_lookup_elem(aff_fd, &ak, &av) == 0 && av.backend_id == 50u + (first - 7100u) &&
		  av.last_used_ns, "affinity: pw_affinity entry names the backend", "backend %u", av.backend_id);

	/* The pinned backend starts terminating: the client moves, re-pinned. */
	add_backend(av.backend_id, b_ip, first, PW_BACKEND_TERMINATING);
	ct_flush();
	len = tcp_from(&ep_a, pkt, 48100, "10.96.0.40", 80, F_SYN);
	p = backend_port_of(pod_fd, if_a, pkt, len);
	PWT_CHECK(p && p != first && bpf_map_lookup_elem(aff_fd, &ak, &av) == 0 && av.backend_id == 50u + (p - 7100u),
		  "affinity: a terminating pinned backend is replaced and the client re-pinned", "port %u", p);
	add_backend(50 + (first - 7100), b_ip, first, PW_BACKEND_ACTIVE);

	/* An expired pin is not honoured: pin to 53 long ago, 20 new flows
	 * (with the pin refreshed by the first) land on one backend, fresh. */
	av.backend_id = 53;
	av.last_used_ns = 1;
	bpf_map_update_elem(aff_fd, &ak, &av, BPF_ANY);
	ct_flush();
	len = tcp_from(&ep_a, pkt, 48200, "10.96.0.40", 80, F_SYN);
	p = backend_port_of(pod_fd, if_a, pkt, len);
	PWT_CHECK(p && bpf_map_lookup_elem(aff_fd, &ak, &av) == 0 && av.last_used_ns > 1 &&
		  av.backend_id == 50u + (p - 7100u), "affinity: an expired pin is replaced by a fresh choice",
		  "port %u", p);
	ct_flush();
}

static void test_hairpin(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry re;
	struct pwt_run r;
	size_t len;

	ct_flush();
	if (!one_backend_service(9, "10.96.0.50", 80, 61, a_ip, 8080, "hairpin: maps filled"))
		return;
	len = tcp_from(&ep_a, pkt, 45500, "10.96.0.50", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("hairpin syn", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("hairpin syn: DNAT to itself, source the gateway", &r, gw_ip, 45500, a_ip, 8080);
	PWT_CHECK(ct_get(a_ip, 8080, gw_ip, 45500, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 && (re.flags & PW_CT_F_HAIRPIN),
		  "hairpin: reply entry keyed on the gateway, flagged", "%s", "missing");
	/* The pod answers the gateway; it gets the answer from the VIP. */
	len = tcp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 8080, gw_ip, 45500, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("hairpin syn-ack", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("hairpin syn-ack: from the VIP to the client", &r, "10.96.0.50", 80, a_ip, 45500);
	/* Anything else to the gateway stays the host's. */
	len = tcp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 8081, gw_ip, 45500, F_ACK, 0);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0, "to the gateway, not hairpin: host stack",
		  "retval %d", r.retval);
	ct_flush();
}

static void test_ct_full(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_metric before, after;
	struct pwt_run r;
	size_t len;
	int flows = 0;

	ct_flush();
	/* Service 1 (10.96.0.11:80 -> B:8080) from test_clusterip_local. */
	for (int i = 0; i < CT_SIZE; i++) {
		len = tcp_from(&ep_a, pkt, (uint16_t)(50000 + i), "10.96.0.11", 80, F_SYN);
		r = pwt_run_prog(pod_fd, pkt, len, if_a);
		if (r.retval != TC_ACT_REDIRECT)
			break;
		flows++;
	}
	PWT_CHECK(flows == CT_SIZE / 2 && ct_count() == CT_SIZE, "ct full: the table takes CT_SIZE/2 flows",
		  "%d flows, %d entries", flows, ct_count());
	before = pwt_metric(metrics_fd, -PW_DROP_CT_FULL);
	len = tcp_from(&ep_a, pkt, 51000, "10.96.0.11", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	after = pwt_metric(metrics_fd, -PW_DROP_CT_FULL);
	PWT_CHECK(r.retval == TC_ACT_SHOT && after.egress.packets == before.egress.packets + 1 &&
		  pwt_events_read(&events) == 1 && events.ev[0].reason == PW_DROP_CT_FULL,
		  "ct full: a new flow is dropped, counted once as ct-full, drop event", "retval %d count %llu -> %llu",
		  r.retval, (unsigned long long)before.egress.packets, (unsigned long long)after.egress.packets);
	PWT_EQ_INT(ct_count(), CT_SIZE, "ct full: no half flow left behind");
	/* Established flows keep working both ways. */
	len = tcp_from(&ep_a, pkt, 50000, "10.96.0.11", 80, F_ACK);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT, "ct full: an established flow is still translated", "retval %d",
		  r.retval);
	expect_tuple("ct full: established flow", &r, a_ip, 50000, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 50003, F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("ct full: established flow's reply", &r, "10.96.0.11", 80, a_ip, 50003);
	ct_flush();
	len = tcp_from(&ep_a, pkt, 51000, "10.96.0.11", 80, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT, "ct full: room again once entries expire", "retval %d", r.retval);
	ct_flush();
}

/* ---------- NodePort ---------- */

static void test_nodeport(void)
{
	uint32_t local[] = { 71 }, remote[] = { 72 };
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry re;
	struct pwt_run r;
	uint16_t snat_port;
	size_t len;

	ct_flush();
	if (add_backend(71, b_ip, 8080, PW_BACKEND_ACTIVE) || add_backend(72, r_ip, 8081, PW_BACKEND_ACTIVE) ||
	    add_service(10, "10.96.0.60", 80, IPPROTO_TCP, 30080, PW_LB_RANDOM, 0, local, 1) ||
	    add_service(11, "10.96.0.61", 80, IPPROTO_TCP, 30081, PW_LB_RANDOM, 0, remote, 1)) {
		PWT_CHECK(0, "nodeport: maps filled", "%s", strerror(errno));
		return;
	}
	/* Local backend. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 33333, node_ip, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("nodeport, local backend", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("nodeport, local backend: DNAT, client IP kept", &r, client_ip, 33333, b_ip, 8080);
	PWT_CHECK(ct_get(b_ip, 8080, client_ip, 33333, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  (re.flags & PW_CT_F_NODEPORT) && !(re.flags & PW_CT_F_SNAT) && re.fe_port == 30080,
		  "nodeport, local backend: reply entry with the node port", "flags %u fe_port %u", re.flags, re.fe_port);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, client_ip, 33333, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("nodeport, local backend's reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport, local backend's reply: from the node IP and node port", &r, node_ip, 30080, client_ip,
		     33333);
	PWT_EXPECT(memcmp(r.out, client_mac, 6) == 0 && memcmp(r.out + 6, up_mac, 6) == 0,
		   "nodeport, local backend's reply: out the uplink to the client's MAC");

	/* Remote backend: DNAT + SNAT to the node IP, out to the peer. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 33334, node_ip, 30081, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("nodeport, remote backend", &r, PW_TRACE_TO_PEER, if_up);
	snat_port = pwt_sport(r.out);
	PWT_CHECK(snat_port >= PW_SNAT_PORT_MIN && snat_port <= PW_SNAT_PORT_MAX,
		  "nodeport, remote backend: source port allocated in the SNAT range", "port %u", snat_port);
	expect_tuple("nodeport, remote backend: DNAT + SNAT to the node IP", &r, node_ip, snat_port, r_ip, 8081);
	PWT_EXPECT(memcmp(r.out, peer_mac, 6) == 0, "nodeport, remote backend: to the peer's MAC");
	PWT_CHECK(ct_get(r_ip, 8081, client_ip, 33334, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  (re.flags & PW_CT_F_SNAT) && re.fe_port == 30081, "nodeport, remote backend: conntrack flagged SNAT",
		  "flags %u", re.flags);
	/* Second packet: same translation. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 33334, node_ip, 30081, F_ACK, 20);
	r = run(up_fd, pkt, len, if_up);
	expect_tuple("nodeport, remote backend, next packet: same translation", &r, node_ip, snat_port, r_ip, 8081);
	/* The backend's reply comes back to the node IP (masquerade off here). */
	len = tcp_frame(pkt, peer_mac, up_mac, r_ip, 8081, node_ip, snat_port, F_SYN | F_ACK, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("nodeport, remote backend's reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport, remote backend's reply: back to the client from the node port", &r, node_ip, 30081,
		     client_ip, 33334);
	PWT_EXPECT(memcmp(r.out, client_mac, 6) == 0, "nodeport, remote backend's reply: to the client's MAC");

	/* UDP NodePort to the local backend, there and back. */
	{
		uint32_t ub[] = { 73 };

		add_backend(73, b_ip, 5353, PW_BACKEND_ACTIVE);
		add_service(12, "10.96.0.62", 53, IPPROTO_UDP, 30053, PW_LB_RANDOM, 0, ub, 1);
		len = udp_frame(pkt, client_mac, up_mac, client_ip, 33335, node_ip, 30053, 1);
		r = run(up_fd, pkt, len, if_up);
		expect_tuple("nodeport udp: DNAT", &r, client_ip, 33335, b_ip, 5353);
		len = udp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 5353, client_ip, 33335, 1);
		r = run(pod_fd, pkt, len, if_b);
		expect_tuple("nodeport udp reply", &r, node_ip, 30053, client_ip, 33335);
	}
	/* A pod of another node as the NodePort client (it reached our node
	 * IP through its host): the local backend's reply goes back to it
	 * from the node port. */
	len = tcp_frame(pkt, peer_mac, up_mac, "10.244.2.9", 34000, node_ip, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_tuple("nodeport from another node's pod: DNAT", &r, "10.244.2.9", 34000, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, "10.244.2.9", 34000, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("nodeport from another node's pod: reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport from another node's pod: reply from the node port", &r, node_ip, 30080, "10.244.2.9",
		     34000);
	/* A local pod as the NodePort client: load-balanced in pod_ingress. */
	len = tcp_from(&ep_a, pkt, 34001, node_ip, 30080, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("nodeport from a local pod", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("nodeport from a local pod: DNAT", &r, a_ip, 34001, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 34001, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("nodeport from a local pod: reply", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("nodeport from a local pod: reply from the node port", &r, node_ip, 30080, a_ip, 34001);
	len = tcp_from(&ep_a, pkt, 34002, node_ip, 30081, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("nodeport from a local pod, remote backend", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport from a local pod, remote backend: DNAT only (no SNAT)", &r, a_ip, 34002, r_ip, 8081);

	/* The node's own traffic to another port is the host's. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 33336, node_ip, 22, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0, "node ip, not a node port: host stack",
		  "retval %d", r.retval);
	ct_flush();
}

/* ---------- hostPort (PW_SVC_HOSTPORT, written by the CNI plugin) ---------- */

/* A hostPort mapping as cni/hostport.c writes it: id in the plugin's block
 * above the reconciler's range, one backend, revnat = (hostIP, hostPort). */
static int add_hostport(uint32_t index, const char *host_ip, uint16_t host_port, uint8_t proto, const char *pod_ip,
			uint16_t container_port)
{
	uint32_t id = PW_HOSTPORT_ID_BASE + 5 * PW_HOSTPORT_PER_EP + index, a = host_ip ? pwt_ip(host_ip) : 0;
	struct pw_revnat rn;

	memset(&rn, 0, sizeof(rn));
	memcpy(rn.addr, &a, 4);
	rn.port = host_port;
	if (add_backend(id, pod_ip, container_port, PW_BACKEND_ACTIVE) || set_slot(id, 0, id) ||
	    bpf_map_update_elem(revnat_fd, &id, &rn, BPF_ANY))
		return -1;
	return set_frontend(host_ip, host_port, proto, PW_SVC_HOSTPORT, id, 1, PW_LB_RANDOM, 0);
}

static void test_hostport(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry re;
	struct pwt_run r;
	size_t len;

	ct_flush();
	/* The conformance case: one hostPort on two hostIPs (loopback and the
	 * node IP) and on two protocols, each to another pod. */
	if (add_hostport(0, node_ip, 8080, IPPROTO_TCP, b_ip, 80) ||
	    add_hostport(1, "127.0.0.1", 8080, IPPROTO_TCP, a_ip, 81) ||
	    add_hostport(2, node_ip, 8080, IPPROTO_UDP, a_ip, 5300) ||
	    add_hostport(3, NULL, 9090, IPPROTO_TCP, b_ip, 90) ||
	    add_hostport(4, "192.168.1.50", 7070, IPPROTO_TCP, b_ip, 70)) {
		PWT_CHECK(0, "hostport: maps filled", "%s", strerror(errno));
		return;
	}
	/* From the fabric to hostIP = node IP. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35000, node_ip, 8080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("hostport tcp node IP, from the uplink", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("hostport tcp node IP, from the uplink: DNAT to the pod, client IP kept", &r, client_ip, 35000,
		     b_ip, 80);
	PWT_CHECK(ct_get(b_ip, 80, client_ip, 35000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  !(re.flags & (PW_CT_F_NODEPORT | PW_CT_F_SNAT)),
		  "hostport tcp node IP: reply entry translated through revnat (hostIP given)", "flags %u", re.flags);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 80, client_ip, 35000, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("hostport tcp node IP: reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("hostport tcp node IP: reply from hostIP:hostPort", &r, node_ip, 8080, client_ip, 35000);

	/* Same hostIP and port, UDP: the other pod. */
	len = udp_frame(pkt, client_mac, up_mac, client_ip, 35001, node_ip, 8080, 1);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("hostport udp node IP, same port as tcp", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("hostport udp node IP: DNAT to the udp mapping's pod", &r, client_ip, 35001, a_ip, 5300);
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 5300, client_ip, 35001, 1);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("hostport udp: reply from hostIP:hostPort", &r, node_ip, 8080, client_ip, 35001);

	/* Wildcard hostIP: any address of the node, translated back from the node IP. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35002, node_ip, 9090, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("hostport wildcard, from the uplink", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("hostport wildcard: DNAT", &r, client_ip, 35002, b_ip, 90);
	PWT_CHECK(ct_get(b_ip, 90, client_ip, 35002, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  (re.flags & PW_CT_F_NODEPORT) && re.fe_port == 9090,
		  "hostport wildcard: reply entry from the node IP and the hostPort", "flags %u fe_port %u", re.flags,
		  re.fe_port);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 90, client_ip, 35002, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("hostport wildcard: reply from node IP:hostPort", &r, node_ip, 9090, client_ip, 35002);

	/* Another node's pod, over the fabric, to the wildcard. */
	len = tcp_frame(pkt, peer_mac, up_mac, "10.244.2.9", 35003, node_ip, 9090, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_tuple("hostport from another node's pod: DNAT", &r, "10.244.2.9", 35003, b_ip, 90);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 90, "10.244.2.9", 35003, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("hostport from another node's pod: reply to the peer", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("hostport from another node's pod: reply from node IP:hostPort", &r, node_ip, 9090, "10.244.2.9",
		     35003);

	/* A local pod to the node IP's hostPort: load-balanced in pod_ingress. */
	len = tcp_from(&ep_a, pkt, 35004, node_ip, 8080, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_redirect("hostport from a local pod", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("hostport from a local pod: DNAT", &r, a_ip, 35004, b_ip, 80);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 80, a_ip, 35004, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("hostport from a local pod: reply", &r, PW_TRACE_TO_POD, if_a);
	expect_tuple("hostport from a local pod: reply from hostIP:hostPort", &r, node_ip, 8080, a_ip, 35004);

	/* Not a mapping of this address / port: the host's. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35005, node_ip, 7070, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "hostport on another hostIP: the node IP's port is the host's", "retval %d", r.retval);
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35006, node_ip, 8082, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0, "no hostport on this port: host stack",
		  "retval %d", r.retval);
	len = udp_frame(pkt, client_mac, up_mac, client_ip, 35007, node_ip, 9090, 1);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "hostport wildcard is tcp only: udp to its port is the host's", "retval %d", r.retval);

	/* A hostPort inside the masquerade range (the conformance test's
	 * 54323) on a node that masquerades: the pod's reply leaves from the
	 * node IP and that port, and must not be claimed as the node's own
	 * flow, or the client's next packet would go to the host stack. */
	if (add_hostport(5, node_ip, 54323, IPPROTO_TCP, b_ip, 8080)) {
		PWT_CHECK(0, "hostport in the masquerade range: maps filled", "%s", strerror(errno));
		return;
	}
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35010, node_ip, 54323, F_SYN, 0);
	r = run(masq_up_fd, pkt, len, if_up);
	expect_tuple("hostport 54323, masquerading node: DNAT", &r, client_ip, 35010, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, client_ip, 35010, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("hostport 54323: reply from node IP:54323", &r, node_ip, 54323, client_ip, 35010);
	{
		struct pwt_run out = pwt_run_prog(masq_out_fd, r.out, r.out_len, if_up);
		struct pw_nat_key nk;
		struct pw_nat_entry ne;
		uint32_t c = pwt_ip(client_ip), n = pwt_ip(node_ip);

		PWT_CHECK(out.retval == TC_ACT_OK && out.out_len == r.out_len && memcmp(out.out, r.out, r.out_len) == 0,
			  "hostport 54323: the reply leaves the uplink untouched", "retval %d", out.retval);
		memset(&nk, 0, sizeof(nk));
		memcpy(nk.saddr, &c, 4);
		memcpy(nk.daddr, &n, 4);
		nk.sport = 35010;
		nk.dport = 54323;
		nk.proto = IPPROTO_TCP;
		nk.dir = PW_DIR_INGRESS;
		PWT_CHECK(bpf_map_lookup_elem(snat_fd, &nk, &ne) != 0,
			  "hostport 54323: the reply is not claimed as a flow of the node's own", "flags %u", ne.flags);
	}
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35010, node_ip, 54323, F_ACK, 0);
	r = run(masq_up_fd, pkt, len, if_up);
	expect_redirect("hostport 54323: the client's next packet", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("hostport 54323: the client's next packet goes to the pod too", &r, client_ip, 35010, b_ip, 8080);
}

/* ---------- NodePort on the node's other addresses ---------- */

/* Uses services 10 (30080 -> B:8080, local) and 11 (30081 -> 10.244.2.5:8081,
 * remote) of test_nodeport. */
static void test_nodeport_addresses(void)
{
	const char *second = "192.168.1.21", *outside = "192.168.1.22";
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_ct_entry re;
	struct pwt_run r;
	uint16_t snat_port;
	size_t len;

	ct_flush();
	if (np_addr(second, true)) {
		PWT_CHECK(0, "nodeport addresses: map filled", "%s", strerror(errno));
		return;
	}
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35000, second, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("nodeport on a second address, local backend", &r, PW_TRACE_TO_POD, if_b);
	expect_tuple("nodeport on a second address: DNAT", &r, client_ip, 35000, b_ip, 8080);
	PWT_CHECK(ct_get(b_ip, 8080, client_ip, 35000, IPPROTO_TCP, PW_CT_REPLY, &re) == 0 &&
		  memcmp(re.fe_addr, &(uint32_t){ pwt_ip(second) }, 4) == 0 && re.fe_port == 30080,
		  "nodeport on a second address: conntrack keeps the address the client used", "fe_port %u",
		  re.fe_port);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, client_ip, 35000, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_redirect("nodeport on a second address: reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport on a second address: reply from that address, not the node IP", &r, second, 30080,
		     client_ip, 35000);

	/* Remote backend: SNAT to the node IP as ever, reply from the second address. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35001, second, 30081, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	snat_port = pwt_sport(r.out);
	expect_tuple("nodeport on a second address, remote backend: DNAT + SNAT", &r, node_ip, snat_port, r_ip, 8081);
	len = tcp_frame(pkt, peer_mac, up_mac, r_ip, 8081, node_ip, snat_port, F_SYN | F_ACK, 0);
	r = run(up_fd, pkt, len, if_up);
	expect_redirect("nodeport on a second address, remote backend's reply", &r, PW_TRACE_TO_PEER, if_up);
	expect_tuple("nodeport on a second address, remote backend's reply: from the second address", &r, second,
		     30081, client_ip, 35001);

	/* A local pod through the second address. */
	len = tcp_from(&ep_a, pkt, 35002, second, 30080, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("nodeport on a second address from a local pod: DNAT", &r, a_ip, 35002, b_ip, 8080);
	len = tcp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 8080, a_ip, 35002, F_SYN | F_ACK, 0);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("nodeport on a second address from a local pod: reply", &r, second, 30080, a_ip, 35002);

	/* Not a NodePort address: the host's, from the wire and from a pod. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35003, outside, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "nodeport on an address outside pw_np_addrs: host stack, untouched", "retval %d", r.retval);
	len = tcp_from(&ep_a, pkt, 35004, outside, 30080, F_SYN);
	r = run(pod_fd, pkt, len, if_a);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "nodeport on an address outside pw_np_addrs from a pod: host stack, untouched", "retval %d", r.retval);

	/* The node IP itself serves only while listed (--nodeport-addresses may leave it out). */
	np_addr(node_ip, false);
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35005, node_ip, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "nodeport on the node IP once it is out of pw_np_addrs: host stack", "retval %d", r.retval);
	np_addr(node_ip, true);
	/* An address removed at runtime stops serving. */
	np_addr(second, false);
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 35006, second, 30080, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "nodeport on a second address after its removal: host stack", "retval %d", r.retval);
	ct_flush();
}

/* ---------- ICMP errors about NodePort and hairpin flows ---------- */

/* The error's outer and quoted headers: addresses and ports, and every
 * checksum (outer IPv4, ICMP, quoted IPv4) valid. */
static void expect_icmp(const char *name, const struct pwt_run *r, const char *src, const char *dst,
			const char *q_src, uint16_t q_sport, const char *q_dst, uint16_t q_dport)
{
	uint8_t *f = (uint8_t *)r->out;
	char n[240];

	snprintf(n, sizeof(n), "%s: %s -> %s quoting %s:%u -> %s:%u", name, src, dst, q_src, q_sport, q_dst, q_dport);
	PWT_CHECK(r->out_len >= 70 && pwt_iph(f)->saddr == pwt_ip(src) && pwt_iph(f)->daddr == pwt_ip(dst) &&
		  pwt_quoted_iph(f)->saddr == pwt_ip(q_src) && pwt_quoted_u16(f, 0) == q_sport &&
		  pwt_quoted_iph(f)->daddr == pwt_ip(q_dst) && pwt_quoted_u16(f, 2) == q_dport, n,
		  "got %08x -> %08x quoting %08x:%u -> %08x:%u", ntohl(pwt_iph(f)->saddr), ntohl(pwt_iph(f)->daddr),
		  ntohl(pwt_quoted_iph(f)->saddr), pwt_quoted_u16(f, 0), ntohl(pwt_quoted_iph(f)->daddr),
		  pwt_quoted_u16(f, 2));
	snprintf(n, sizeof(n), "%s: outer, ICMP and quoted header checksums valid", name);
	PWT_CHECK(pwt_csum(pwt_iph(f), sizeof(struct iphdr)) == 0 && pwt_l4_csum(f) == 0 &&
		  pwt_csum(pwt_quoted_iph(f), sizeof(struct iphdr)) == 0, n, "icmp residue 0x%04x", pwt_l4_csum(f));
}

static void test_nodeport_icmp_error(void)
{
	const char *second = "192.168.1.21";
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT], err[PWT_MAX_PKT];
	struct pwt_run r;
	uint16_t snat_port;
	size_t len;

	ct_flush();
	if (np_addr(second, true)) {
		PWT_CHECK(0, "nodeport icmp: map filled", "%s", strerror(errno));
		return;
	}
	/* UDP NodePort (service 12: 30053 -> B:5353) on the second address;
	 * B does not listen: its kernel answers port unreachable. */
	len = udp_frame(pkt, client_mac, up_mac, client_ip, 36000, second, 30053, 1);
	r = run(up_fd, pkt, len, if_up);
	expect_tuple("nodeport icmp: udp DNAT", &r, client_ip, 36000, b_ip, 5353);
	memcpy(out, r.out, r.out_len);
	len = pwt_build_icmp_error(err, ep_b.mac, ep_b.host_mac, pwt_ip(b_ip), pwt_ip(client_ip), 3, 3, out);
	r = run(pod_fd, err, len, if_b);
	expect_redirect("nodeport port unreachable from a local backend", &r, PW_TRACE_TO_PEER, if_up);
	expect_icmp("nodeport port unreachable from a local backend", &r, second, client_ip, client_ip, 36000, second,
		    30053);

	/* TCP NodePort to the remote backend (service 11), then "fragmentation
	 * needed" from the backend towards the node IP it saw. */
	len = tcp_frame(pkt, client_mac, up_mac, client_ip, 36001, second, 30081, F_SYN, 0);
	r = run(up_fd, pkt, len, if_up);
	snat_port = pwt_sport(r.out);
	expect_tuple("nodeport icmp: remote backend, DNAT + SNAT", &r, node_ip, snat_port, r_ip, 8081);
	memcpy(out, r.out, r.out_len);
	len = pwt_build_icmp_error(err, peer_mac, up_mac, pwt_ip(r_ip), pwt_ip(node_ip), 3, 4, out);
	r = run(up_fd, err, len, if_up);
	expect_redirect("nodeport frag-needed from a remote backend", &r, PW_TRACE_TO_PEER, if_up);
	expect_icmp("nodeport frag-needed from a remote backend", &r, second, client_ip, client_ip, 36001, second,
		    30081);
	PWT_CHECK(r.out_len > 42 && r.out[14 + 20 + 6] == (1400 >> 8) && r.out[14 + 20 + 7] == (1400 & 0xff),
		  "nodeport frag-needed: the next-hop MTU is kept", "%s", "changed");
	/* The same from a router between the nodes: its source stays. */
	len = pwt_build_icmp_error(err, peer_mac, up_mac, pwt_ip("192.168.1.1"), pwt_ip(node_ip), 11, 0, out);
	r = run(up_fd, err, len, if_up);
	expect_icmp("nodeport time exceeded from a router", &r, "192.168.1.1", client_ip, client_ip, 36001, second,
		    30081);
	np_addr(second, false);
	ct_flush();
}

static void test_hairpin_icmp_error(void)
{
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT], err[PWT_MAX_PKT];
	uint32_t be[] = { 62 };
	struct pwt_run r;
	size_t len;

	ct_flush();
	if (add_backend(62, a_ip, 5354, PW_BACKEND_ACTIVE) ||
	    add_service(13, "10.96.0.51", 53, IPPROTO_UDP, 0, PW_LB_RANDOM, 0, be, 1)) {
		PWT_CHECK(0, "hairpin icmp: maps filled", "%s", strerror(errno));
		return;
	}
	len = udp_frame(pkt, ep_a.mac, ep_a.host_mac, a_ip, 46000, "10.96.0.51", 53, 1);
	r = run(pod_fd, pkt, len, if_a);
	expect_tuple("hairpin icmp: udp to itself, source the gateway", &r, gw_ip, 46000, a_ip, 5354);
	memcpy(out, r.out, r.out_len);
	/* The pod does not listen on 5354: its kernel answers the gateway. */
	len = pwt_build_icmp_error(err, ep_a.mac, ep_a.host_mac, pwt_ip(a_ip), pwt_ip(gw_ip), 3, 3, out);
	r = run(pod_fd, err, len, if_a);
	expect_redirect("hairpin port unreachable", &r, PW_TRACE_TO_POD, if_a);
	expect_icmp("hairpin port unreachable: from the VIP to the pod", &r, "10.96.0.51", a_ip, a_ip, 46000,
		    "10.96.0.51", 53);

	/* A NodePort hairpin (service 12's node port, B reaching itself). */
	len = udp_frame(pkt, ep_b.mac, ep_b.host_mac, b_ip, 46001, node_ip, 30053, 1);
	r = run(pod_fd, pkt, len, if_b);
	expect_tuple("hairpin icmp: nodeport to itself", &r, gw_ip, 46001, b_ip, 5353);
	memcpy(out, r.out, r.out_len);
	len = pwt_build_icmp_error(err, ep_b.mac, ep_b.host_mac, pwt_ip(b_ip), pwt_ip(gw_ip), 3, 3, out);
	r = run(pod_fd, err, len, if_b);
	expect_redirect("nodeport hairpin port unreachable", &r, PW_TRACE_TO_POD, if_b);
	expect_icmp("nodeport hairpin port unreachable: from the node port", &r, node_ip, b_ip, b_ip, 46001, node_ip,
		    30053);
	ct_flush();
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "lb: sandbox and load", "setup failed: %s", strerror(errno));
		return pwt_done();
	}
	test_frontend_outside_service_cidr();
	test_reply_needs_backend_port();
	test_clusterip_local();
	test_clusterip_remote();
	test_clusterip_off_cluster();
	test_clusterip_icmp_error();
	test_no_backend();
	test_maglev();
	test_ct_reuse_and_lifecycle();
	test_affinity();
	test_hairpin();
	test_ct_full();
	test_nodeport();
	test_hostport();
	test_nodeport_addresses();
	test_nodeport_icmp_error();
	test_hairpin_icmp_error();
	pwt_events_close(&events);
	pwt_tunnel_key_bpf__destroy(tunnel);
	overlay_bpf__destroy(overlay);
	host_bpf__destroy(masq);
	host_bpf__destroy(host);
	pod_bpf__destroy(pod);
	return pwt_done();
}
