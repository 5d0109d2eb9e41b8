/* Packet tests of the cross-node paths through BPF_PROG_TEST_RUN: pod_ingress
 * to another node's pod in native routing mode (bpf_fib_lookup against this
 * netns's real FIB and neighbour table, then bpf_redirect /
 * bpf_redirect_neigh) and in VXLAN mode (encapsulated in BPF and redirected
 * to the uplink, or, when the route cannot carry it, tunnel key + redirect
 * into the overlay device), and overlay.bpf.c's two programs on a real collect-md
 * VXLAN device, and the uplink's VXLAN decapsulation (host.bpf.c in VXLAN
 * mode), with who may send tunnel packets (peer nodes only, the cluster's
 * VNI) and what a pod may not send (a node's VXLAN port). Every object is
 * loaded under one pin root, as the agent does. */
#include "pwt_bpf.h"
#include "pwt_tunnel.h"
#include "pod.skel.h"
#include "overlay.skel.h"
#include "host.skel.h"

static struct pod_bpf *native, *vxlan, *vxlan_noif;
static struct overlay_bpf *overlay;
static struct host_bpf *host_vx;
static struct pwt_tunnel_key_bpf *tunnel;
static int native_fd, vxlan_fd, vxlan_noif_fd, ov_in_fd, ov_out_fd, up_vx_fd, metrics_fd;
static unsigned if_a, if_up, if_vx;
static struct pw_endpoint ep_a;
static struct pwt_events events;
static uint8_t up_mac[6], peer_mac[6];

#define SET_CFG(rodata, mode, overlay_ifindex) do {                  \
	PWT_NODE1_CFG(rodata);                                        \
	(rodata)->cfg_routing_mode = (mode);                          \
	(rodata)->cfg_overlay_ifindex = (overlay_ifindex);            \
} while (0)

static struct pod_bpf *load_pod(const char *pin_root, uint32_t mode, unsigned overlay_ifindex)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = pin_root);
	struct pod_bpf *p = pod_bpf__open_opts(&oopts);

	if (!p)
		return NULL;
	SET_CFG(p->rodata, mode, overlay_ifindex);
	if (pod_bpf__load(p)) {
		pod_bpf__destroy(p);
		return NULL;
	}
	return p;
}

static int add_peer(const char *cidr, unsigned prefixlen, const char *node_ip)
{
	struct pw_peer_key key = { .prefixlen = prefixlen };
	struct pw_peer peer;
	uint32_t a = pwt_ip(cidr), n = pwt_ip(node_ip);

	memset(&peer, 0, sizeof(peer));
	memcpy(key.addr, &a, 4);
	memcpy(peer.node_ip, &n, 4);
	return bpf_map_update_elem(bpf_map__fd(native->maps.pw_peers), &key, &peer, BPF_ANY);
}

/* pw_nodes as the agent fills it: this node (PW_NODE_F_SELF) and its peers. */
static int add_node(const char *ip, uint32_t flags)
{
	struct pw_ip4 key;
	struct pw_node node = { .flags = flags };
	uint32_t a = pwt_ip(ip);

	memcpy(key.addr, &a, 4);
	return bpf_map_update_elem(bpf_map__fd(native->maps.pw_nodes), &key, &node, BPF_ANY);
}

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	/* A router: bpf_fib_lookup refuses to forward otherwise. */
	if (system("sysctl -qw net.ipv4.ip_forward=1") != 0)
		return -1;
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_up = pwt_veth("pwt-up0", "pwt-up1");
	if (!if_a || !if_up)
		return -1;
	pwt_mac(up_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x11);
	pwt_mac(peer_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x12);
	/* The LAN as a node sees it: its address, a known neighbour (.12),
	 * an unresolved one (.13), a subnet behind a router (.1), nothing
	 * for 172.31/16 (no default route in this netns). */
	if (system("ip link set pwt-up0 address 52:54:00:00:00:11 && "
		   "ip addr add 192.168.1.11/24 dev pwt-up0 && "
		   "ip neigh replace 192.168.1.12 lladdr 52:54:00:00:00:12 nud permanent dev pwt-up0 && "
		   "ip route add 192.168.50.0/24 via 192.168.1.1 dev pwt-up0 && "
		   "ip route add 192.168.1.14/32 dev pwt-up0 mtu lock 120") != 0)
		return -1;
	if_vx = pwt_vxlan("pwt-vx");
	if (!if_vx)
		return -1;

	native = load_pod(pin_root, PW_MODE_NATIVE, 0);
	vxlan = load_pod(pin_root, PW_MODE_VXLAN, if_vx);
	vxlan_noif = load_pod(pin_root, PW_MODE_VXLAN, 0);
	if (!native || !vxlan || !vxlan_noif)
		return -1;
	oopts.pin_root_path = pin_root;
	overlay = overlay_bpf__open_opts(&oopts);
	if (!overlay)
		return -1;
	SET_CFG(overlay->rodata, PW_MODE_VXLAN, if_vx);
	if (overlay_bpf__load(overlay))
		return -1;
	native_fd = bpf_program__fd(native->progs.pod_ingress);
	vxlan_fd = bpf_program__fd(vxlan->progs.pod_ingress);
	vxlan_noif_fd = bpf_program__fd(vxlan_noif->progs.pod_ingress);
	host_vx = host_bpf__open_opts(&oopts);
	if (!host_vx)
		return -1;
	SET_CFG(host_vx->rodata, PW_MODE_VXLAN, if_vx);
	if (host_bpf__load(host_vx))
		return -1;
	up_vx_fd = bpf_program__fd(host_vx->progs.uplink_ingress);
	ov_in_fd = bpf_program__fd(overlay->progs.overlay_ingress);
	ov_out_fd = bpf_program__fd(overlay->progs.overlay_egress);
	metrics_fd = bpf_map__fd(native->maps.pw_metrics);

	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	if (pwt_endpoint_add(bpf_map__fd(native->maps.pw_endpoints), bpf_map__fd(native->maps.pw_ep_ifindex), &ep_a))
		return -1;
	if (add_peer("10.244.2.0", 24, "192.168.1.12") || add_peer("10.244.3.0", 24, "192.168.1.13") ||
	    add_peer("10.244.4.0", 24, "192.168.50.4") || add_peer("10.244.5.0", 24, "172.31.0.5") ||
	    add_peer("10.244.2.128", 25, "192.168.1.13") || add_peer("10.244.6.0", 24, "192.168.1.14"))
		return -1;
	if (add_node("192.168.1.11", PW_NODE_F_SELF) || add_node("192.168.1.12", 0) || add_node("192.168.1.13", 0) ||
	    add_node("192.168.50.4", 0) || add_node("172.31.0.5", 0) || add_node("192.168.1.14", 0))
		return -1;
	tunnel = pwt_tunnel_open(ov_in_fd);
	if (!tunnel)
		return -1;
	return pwt_events_open(&events, bpf_map__fd(native->maps.pw_events));
}

static void test_shared_maps(void)
{
	PWT_EXPECT(pwt_map_id(overlay->maps.pw_peers) == pwt_map_id(native->maps.pw_peers) &&
		   pwt_map_id(overlay->maps.pw_endpoints) == pwt_map_id(native->maps.pw_endpoints) &&
		   pwt_map_id(overlay->maps.pw_metrics) == pwt_map_id(vxlan->maps.pw_metrics) &&
		   pwt_map_id(overlay->maps.pw_nodes) == pwt_map_id(native->maps.pw_nodes) &&
		   pwt_map_id(overlay->maps.pw_snat) == pwt_map_id(native->maps.pw_snat) &&
		   pwt_map_id(overlay->maps.pw_events) == pwt_map_id(vxlan->maps.pw_events) && pwt_map_id(overlay->maps.pw_peers),
		   "overlay and pod objects share every map through the pin root");
}

static void trace(uint32_t on)
{
	struct pw_settings s;

	memset(&s, 0, sizeof(s));
	s.trace_events = on;
	s.drop_events = on;
	pwt_settings_set(bpf_map__fd(native->maps.pw_settings), &s);
	pwt_events_read(&events);
}

static size_t udp_from_a(uint8_t *buf, const char *dst, uint8_t ttl)
{
	struct pwt_udp_spec s = {
		.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac,
		.daddr = pwt_ip(dst), .sport = 40000, .dport = 5201, .ttl = ttl, .payload = 48,
	};

	memcpy(&s.saddr, ep_a.ip, 4);
	return pwt_build_udp(buf, &s);
}

/* The packet left as a router forwards it: same addresses and payload, TTL
 * one less, IPv4 checksum still right. */
static void check_routed(const char *name, const uint8_t *in, size_t len, const struct pwt_run *r)
{
	char n[160];
	const struct iphdr *ip_in = (const struct iphdr *)(in + 14), *ip_out = (const struct iphdr *)(r->out + 14);

	snprintf(n, sizeof(n), "%s: source and destination stay the pod IPs", name);
	PWT_EXPECT(r->out_len == len && ip_out->saddr == ip_in->saddr && ip_out->daddr == ip_in->daddr, n);
	snprintf(n, sizeof(n), "%s: ttl decremented, ip checksum valid", name);
	PWT_CHECK(ip_out->ttl == ip_in->ttl - 1 && pwt_csum(ip_out, sizeof(*ip_out)) == 0, n, "ttl %d -> %d",
		  ip_in->ttl, ip_out->ttl);
	snprintf(n, sizeof(n), "%s: L4 header and payload untouched", name);
	PWT_EXPECT(memcmp(r->out + 34, in + 34, len - 34) == 0, n);
}

/* Runs pkt through prog, expects TC_ACT_REDIRECT with one trace event of
 * `point` naming target_ifindex and nexthop, counted forwarded once. */
static void expect_redirect(const char *name, int prog, const uint8_t *pkt, size_t len, unsigned ifindex,
			    uint8_t point, unsigned target, const char *nexthop, struct pwt_run *r)
{
	char n[160];
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	uint32_t nh = pwt_ip(nexthop);
	const struct pw_event *ev = &events.ev[0];

	trace(1);
	*r = pwt_run_prog(prog, pkt, len, ifindex);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	snprintf(n, sizeof(n), "%s: TC_ACT_REDIRECT", name);
	PWT_CHECK(r->err == 0 && r->retval == TC_ACT_REDIRECT, n, "err %d retval %d", r->err, r->retval);
	snprintf(n, sizeof(n), "%s: counted once as forwarded (egress)", name);
	PWT_CHECK(after.egress.packets == before.egress.packets + 1 && after.egress.bytes == before.egress.bytes + len,
		  n, "packets %llu -> %llu", (unsigned long long)before.egress.packets,
		  (unsigned long long)after.egress.packets);
	snprintf(n, sizeof(n), "%s: trace point %u, target ifindex %u, next hop %s", name, point, target, nexthop);
	PWT_CHECK(pwt_events_read(&events) == 1 && ev->type == PW_EVENT_TRACE && ev->point == point &&
		  ev->target_ifindex == target && memcmp(ev->nexthop, &nh, 4) == 0 && ev->ifindex == ifindex,
		  n, "%d events, point %u target %u next hop %u.%u.%u.%u", events.n, ev->point, ev->target_ifindex,
		  ev->nexthop[0], ev->nexthop[1], ev->nexthop[2], ev->nexthop[3]);
	trace(0);
}

static void expect_verdict(const char *name, int prog, const uint8_t *pkt, size_t len, unsigned ifindex,
			   int verdict, uint32_t slot, int dir)
{
	char n[160];
	struct pw_metric before = pwt_metric(metrics_fd, slot), after;
	struct pwt_run r = pwt_run_prog(prog, pkt, len, ifindex);
	const struct pw_counter *b = dir == PW_DIR_EGRESS ? &before.egress : &before.ingress;
	const struct pw_counter *a = dir == PW_DIR_EGRESS ? &after.egress : &after.ingress;

	after = pwt_metric(metrics_fd, slot);
	snprintf(n, sizeof(n), "%s: verdict %d, counted once at slot %u (%s)", name, verdict, slot,
		 dir == PW_DIR_EGRESS ? "egress" : "ingress");
	PWT_CHECK(r.err == 0 && r.retval == verdict && a->packets == b->packets + 1, n,
		  "err %d retval %d count %llu -> %llu", r.err, r.retval, (unsigned long long)b->packets,
		  (unsigned long long)a->packets);
	if (verdict == TC_ACT_OK) {
		snprintf(n, sizeof(n), "%s: packet unchanged", name);
		PWT_EXPECT(r.out_len == len && memcmp(r.out, pkt, len) == 0, n);
	}
}

static void test_native(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	const struct ethhdr *eth;
	struct pwt_run r;
	size_t len;

	len = udp_from_a(pkt, "10.244.2.5", 64);
	expect_redirect("native, neighbour known", native_fd, pkt, len, if_a, PW_TRACE_TO_PEER, if_up,
			"192.168.1.12", &r);
	check_routed("native, neighbour known", pkt, len, &r);
	eth = (const struct ethhdr *)r.out;
	PWT_EXPECT(memcmp(eth->h_source, up_mac, 6) == 0 && memcmp(eth->h_dest, peer_mac, 6) == 0 &&
		   ntohs(eth->h_proto) == ETH_P_IP,
		   "native, neighbour known: src mac = uplink, dst mac = the peer node's");

	/* No neighbour entry: bpf_redirect_neigh resolves it on the way out;
	 * the MACs are left for it to fill. */
	len = udp_from_a(pkt, "10.244.3.7", 64);
	expect_redirect("native, neighbour unresolved", native_fd, pkt, len, if_a, PW_TRACE_TO_PEER, if_up,
			"192.168.1.13", &r);
	check_routed("native, neighbour unresolved", pkt, len, &r);
	PWT_EXPECT(memcmp(r.out, pkt, 12) == 0, "native, neighbour unresolved: MACs left to bpf_redirect_neigh");

	/* The FIB's next hop, not the node IP, when the peer sits behind a router. */
	len = udp_from_a(pkt, "10.244.4.9", 64);
	expect_redirect("native, peer behind a router", native_fd, pkt, len, if_a, PW_TRACE_TO_PEER, if_up,
			"192.168.1.1", &r);

	/* The longest prefix wins: 10.244.2.128/25 belongs to .13. */
	len = udp_from_a(pkt, "10.244.2.200", 64);
	expect_redirect("native, longest peer prefix wins", native_fd, pkt, len, if_a, PW_TRACE_TO_PEER, if_up,
			"192.168.1.13", &r);

	len = udp_from_a(pkt, "10.244.5.9", 64);
	expect_verdict("native, no route to the peer node", native_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_FIB_FAILED, PW_DIR_EGRESS);
	len = udp_from_a(pkt, "10.244.2.5", 64);
	if (system("sysctl -qw net.ipv4.ip_forward=0") == 0) {
		expect_verdict("native, forwarding disabled", native_fd, pkt, len, if_a, TC_ACT_SHOT,
			       (uint32_t)-PW_DROP_FIB_FAILED, PW_DIR_EGRESS);
		if (system("sysctl -qw net.ipv4.ip_forward=1") != 0)
			PWT_CHECK(0, "re-enable forwarding", "%s", "sysctl failed");
	}
	len = udp_from_a(pkt, "10.244.2.5", 1);
	expect_verdict("native, ttl 1 to a remote pod", native_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_TTL_EXCEEDED, PW_DIR_EGRESS);
	len = udp_from_a(pkt, "8.8.8.8", 64);
	expect_verdict("native, outside the cluster", native_fd, pkt, len, if_a, TC_ACT_OK, PW_METRIC_PASSED,
		       PW_DIR_EGRESS);
}

static void test_no_route(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = udp_from_a(pkt, "10.244.9.9", 64);
	struct pwt_run r;
	uint32_t dst = pwt_ip("10.244.9.9");

	expect_verdict("native, pod cidr no peer owns", native_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_NO_ROUTE, PW_DIR_EGRESS);
	expect_verdict("vxlan, pod cidr no peer owns", vxlan_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_NO_ROUTE, PW_DIR_EGRESS);
	trace(1);
	r = pwt_run_prog(native_fd, pkt, len, if_a);
	PWT_CHECK(r.retval == TC_ACT_SHOT && pwt_events_read(&events) == 1 && events.ev[0].type == PW_EVENT_DROP &&
		  events.ev[0].reason == PW_DROP_NO_ROUTE && memcmp(events.ev[0].daddr, &dst, 4) == 0,
		  "no route: drop event names the reason and the destination", "retval %d, %d events", r.retval,
		  events.n);
	trace(0);
	PWT_EQ_STR(pw_drop_reason_name(PW_DROP_NO_ROUTE), "no-route", "no route: reason name");
}

/* The packet left encapsulated for node_ip: outer headers as a peer's
 * decapsulation (and the kernel's VXLAN) accept them, the inner frame the
 * pod's with the TTL one less. */
static void check_encapsulated(const char *name, const uint8_t *in, size_t len, const struct pwt_run *r,
			       const char *node_ip)
{
	const struct iphdr *outer = (const struct iphdr *)(r->out + 14);
	const struct udphdr *udp = (const struct udphdr *)(r->out + 34);
	const uint32_t *vx = (const uint32_t *)(r->out + 42);
	const uint8_t *inner = r->out + 50;
	const struct iphdr *ip_in = (const struct iphdr *)(in + 14), *ip_inner = (const struct iphdr *)(inner + 14);
	char n[160];

	snprintf(n, sizeof(n), "%s: 50 bytes of VXLAN in front of the pod's frame", name);
	PWT_CHECK(r->out_len == len + 50, n, "%zu -> %u bytes", len, r->out_len);
	if (r->out_len != len + 50)
		return;
	snprintf(n, sizeof(n), "%s: outer IPv4 from our node IP to %s, UDP, DF, ttl 64, checksum valid", name,
		 node_ip);
	PWT_CHECK(outer->version == 4 && outer->ihl == 5 && outer->saddr == pwt_ip("192.168.1.11") &&
			  outer->daddr == pwt_ip(node_ip) && outer->protocol == IPPROTO_UDP &&
			  ntohs(outer->frag_off) == 0x4000 && outer->ttl == 64 &&
			  ntohs(outer->tot_len) == len - 14 + 50 && pwt_csum(outer, 20) == 0,
		  n, "proto %u frag_off %#x ttl %u tot_len %u", outer->protocol, ntohs(outer->frag_off), outer->ttl,
		  ntohs(outer->tot_len));
	snprintf(n, sizeof(n), "%s: UDP to %d from an ephemeral port, length right, checksum 0", name, PW_VXLAN_PORT);
	PWT_CHECK(ntohs(udp->dest) == PW_VXLAN_PORT && ntohs(udp->source) >= 32768 && ntohs(udp->source) < 61000 &&
			  ntohs(udp->len) == len - 14 + 30 && udp->check == 0,
		  n, "sport %u dport %u len %u check %#x", ntohs(udp->source), ntohs(udp->dest), ntohs(udp->len),
		  udp->check);
	snprintf(n, sizeof(n), "%s: VXLAN header: flags I, the cluster's VNI", name);
	PWT_CHECK(ntohl(vx[0]) == 0x08000000 && ntohl(vx[1]) == PW_VXLAN_VNI << 8, n, "flags %#x vni %#x",
		  ntohl(vx[0]), ntohl(vx[1]));
	snprintf(n, sizeof(n), "%s: the inner frame is the pod's, ttl one less, checksum valid", name);
	PWT_CHECK(memcmp(inner, in, 14) == 0 && ip_inner->saddr == ip_in->saddr && ip_inner->daddr == ip_in->daddr &&
			  ip_inner->ttl == ip_in->ttl - 1 && pwt_csum(ip_inner, 20) == 0 &&
			  memcmp(inner + 34, in + 34, len - 34) == 0,
		  n, "ttl %u -> %u", ip_in->ttl, ip_inner->ttl);
}

static void test_vxlan(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	const struct ethhdr *eth;
	struct pwt_run r;
	size_t len;

	len = udp_from_a(pkt, "10.244.2.5", 64);
	expect_redirect("vxlan, to a peer's pod", vxlan_fd, pkt, len, if_a, PW_TRACE_TO_TUNNEL, if_up,
			"192.168.1.12", &r);
	check_encapsulated("vxlan, to a peer's pod", pkt, len, &r, "192.168.1.12");
	eth = (const struct ethhdr *)r.out;
	PWT_EXPECT(memcmp(eth->h_source, up_mac, 6) == 0 && memcmp(eth->h_dest, peer_mac, 6) == 0 &&
		   ntohs(eth->h_proto) == ETH_P_IP,
		   "vxlan, to a peer's pod: outer src mac = uplink, dst mac = the peer node's");
	/* The outer source port follows the inner flow (the peer's RSS and
	 * ECMP spread flows by it): the same flow keeps it, 8 flows do not all
	 * share one (the flow hash's seed is random per boot). */
	{
		uint16_t first = ntohs(((const struct udphdr *)(r.out + 34))->source), again, other;
		int distinct = 0;

		r = pwt_run_prog(vxlan_fd, pkt, len, if_a);
		again = ntohs(((const struct udphdr *)(r.out + 34))->source);
		for (int i = 1; i <= 8; i++) {
			pkt[14 + 20 + 1] = (uint8_t)i;   /* another inner source port */
			pwt_l4_fix_csum(pkt);
			r = pwt_run_prog(vxlan_fd, pkt, len, if_a);
			other = ntohs(((const struct udphdr *)(r.out + 34))->source);
			distinct += r.retval == TC_ACT_REDIRECT && other != first;
		}
		PWT_CHECK(again == first && distinct > 0, "vxlan: the outer source port follows the inner flow",
			  "first %u again %u, %d of 8 other flows differ", first, again, distinct);
	}

	len = udp_from_a(pkt, "10.244.3.7", 64);
	expect_redirect("vxlan, peer node's neighbour unresolved", vxlan_fd, pkt, len, if_a, PW_TRACE_TO_TUNNEL, if_up,
			"192.168.1.13", &r);
	check_encapsulated("vxlan, peer node's neighbour unresolved", pkt, len, &r, "192.168.1.13");
	PWT_EXPECT(memcmp(r.out, pkt, 12) == 0, "vxlan, neighbour unresolved: outer MACs left to bpf_redirect_neigh");

	/* The tunnel's remote is the node IP even behind a router. */
	len = udp_from_a(pkt, "10.244.4.9", 64);
	expect_redirect("vxlan, peer behind a router", vxlan_fd, pkt, len, if_a, PW_TRACE_TO_TUNNEL, if_up,
			"192.168.50.4", &r);
	check_encapsulated("vxlan, peer behind a router", pkt, len, &r, "192.168.50.4");

	/* What the route cannot carry encapsulated goes to pw_vxlan, which
	 * fragments or answers ICMP as the kernel does: the route to .14 has
	 * MTU 120, 76 + 50 bytes do not fit, 68 + 50 do. */
	len = udp_from_a(pkt, "10.244.6.1", 64);
	expect_redirect("vxlan, too big for the route once encapsulated: to pw_vxlan", vxlan_fd, pkt, len, if_a,
			PW_TRACE_TO_TUNNEL, if_vx, "192.168.1.14", &r);
	check_routed("vxlan, too big for the route once encapsulated: to pw_vxlan", pkt, len, &r);
	{
		struct pwt_udp_spec sp = {
			.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac, .daddr = pwt_ip("10.244.6.1"),
			.sport = 40000, .dport = 5201, .ttl = 64, .payload = 40,
		};

		memcpy(&sp.saddr, ep_a.ip, 4);
		len = pwt_build_udp(pkt, &sp);
		expect_redirect("vxlan, exactly the route's MTU once encapsulated", vxlan_fd, pkt, len, if_a,
				PW_TRACE_TO_TUNNEL, if_up, "192.168.1.14", &r);
		check_encapsulated("vxlan, exactly the route's MTU once encapsulated", pkt, len, &r, "192.168.1.14");
	}
	/* No route to the node: pw_vxlan's business (and the kernel's error). */
	len = udp_from_a(pkt, "10.244.5.9", 64);
	expect_redirect("vxlan, no route to the peer node: to pw_vxlan", vxlan_fd, pkt, len, if_a, PW_TRACE_TO_TUNNEL,
			if_vx, "172.31.0.5", &r);
	check_routed("vxlan, no route to the peer node: to pw_vxlan", pkt, len, &r);

	len = udp_from_a(pkt, "10.244.2.5", 64);
	expect_verdict("vxlan, no overlay device configured", vxlan_noif_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_ENCAP_FAILED, PW_DIR_EGRESS);
	len = udp_from_a(pkt, "10.244.2.5", 1);
	expect_verdict("vxlan, ttl 1", vxlan_fd, pkt, len, if_a, TC_ACT_SHOT, (uint32_t)-PW_DROP_TTL_EXCEEDED,
		       PW_DIR_EGRESS);
	len = udp_from_a(pkt, "8.8.8.8", 64);
	expect_verdict("vxlan, outside the cluster", vxlan_fd, pkt, len, if_a, TC_ACT_OK, PW_METRIC_PASSED,
		       PW_DIR_EGRESS);
}

/* overlay_ingress as pw_vxlan runs it on a genuine peer's packet. */
static int from_peer(void)
{
	return pwt_tunnel_from(tunnel, "192.168.1.12", PW_VXLAN_VNI);
}

static void test_overlay_ingress(void)
{
	uint8_t pkt[PWT_MAX_PKT], other_mac[6];
	struct pwt_udp_spec s = {
		.src_mac = peer_mac, .dst_mac = other_mac,
		.saddr = pwt_ip("10.244.2.7"), .daddr = pwt_ip("10.244.1.2"), .sport = 5201, .dport = 40000,
		.ttl = 63, .payload = 48,
	};
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	const struct ethhdr *eth;
	struct pwt_run r;
	size_t len;

	/* Addressed to some other MAC (the sender's pw_vxlan), as it arrives. */
	pwt_mac(other_mac, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
	len = pwt_build_udp(pkt, &s);
	trace(1);
	r = pwt_run_prog(pwt_tunnel_from(tunnel, "192.168.1.12", PW_VXLAN_VNI), pkt, len, if_vx);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	eth = (const struct ethhdr *)r.out;
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, "overlay ingress to a local pod: TC_ACT_REDIRECT",
		  "err %d retval %d", r.err, r.retval);
	PWT_EXPECT(memcmp(eth->h_source, ep_a.host_mac, 6) == 0 && memcmp(eth->h_dest, ep_a.mac, 6) == 0,
		   "overlay ingress to a local pod: MACs rewritten for the pod");
	PWT_EQ_INT(pwt_iph(r.out)->ttl, 62, "overlay ingress to a local pod: ttl decremented");
	PWT_EQ_INT(pwt_csum(pwt_iph(r.out), 20), 0, "overlay ingress to a local pod: ip checksum valid");
	PWT_EQ_INT(after.ingress.packets - before.ingress.packets, 1,
		   "overlay ingress to a local pod: counted forwarded, ingress");
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].point == PW_TRACE_TO_POD &&
		  events.ev[0].target_ifindex == if_a && events.ev[0].ifindex == if_vx &&
		  events.ev[0].dir == PW_DIR_INGRESS,
		  "overlay ingress to a local pod: trace names the pod's veth", "%d events", events.n);
	trace(0);

	s.daddr = pwt_ip("10.244.1.99");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("overlay ingress, no such pod", from_peer(), pkt, len, if_vx, TC_ACT_OK, PW_METRIC_PASSED,
		       PW_DIR_INGRESS);
	s.daddr = pwt_ip("10.244.1.2");
	len = pwt_build_udp(pkt, &s);
	pwt_iph(pkt)->tot_len = htons(1400);
	expect_verdict("overlay ingress, total length > packet", from_peer(), pkt, len, if_vx, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_MALFORMED, PW_DIR_INGRESS);
	len = pwt_build_arp_request(pkt, peer_mac, pwt_ip("10.244.2.1"), pwt_ip("10.244.1.1"));
	expect_verdict("overlay ingress, arp", from_peer(), pkt, len, if_vx, TC_ACT_OK, PW_METRIC_PASSED,
		       PW_DIR_INGRESS);
}

static void test_overlay_egress(void)
{
	uint8_t pkt[PWT_MAX_PKT], vx_mac[6];
	struct pwt_udp_spec s = {
		.src_mac = up_mac, .dst_mac = vx_mac,
		.saddr = pwt_ip("192.168.1.11"), .daddr = pwt_ip("10.244.2.5"), .sport = 33000, .dport = 80,
		.ttl = 64, .payload = 20,
	};
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	struct pwt_run r;
	size_t len;
	uint32_t nh = pwt_ip("192.168.1.12");

	pwt_mac(vx_mac, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
	len = pwt_build_udp(pkt, &s);
	trace(1);
	r = pwt_run_prog(ov_out_fd, pkt, len, if_vx);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK && r.out_len == len && memcmp(r.out, pkt, len) == 0,
		  "overlay egress, host to a peer's pod: on to the encapsulation, unchanged", "err %d retval %d",
		  r.err, r.retval);
	PWT_EQ_INT(after.egress.packets - before.egress.packets, 1,
		   "overlay egress, host to a peer's pod: counted forwarded, egress");
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].point == PW_TRACE_TO_TUNNEL &&
		  memcmp(events.ev[0].nexthop, &nh, 4) == 0 && events.ev[0].target_ifindex == if_vx,
		  "overlay egress, host to a peer's pod: tunnel key for the peer's node IP", "%d events", events.n);
	trace(0);

	s.daddr = pwt_ip("10.244.9.9");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("overlay egress, pod cidr no peer owns", ov_out_fd, pkt, len, if_vx, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_NO_ROUTE, PW_DIR_EGRESS);
	len = pwt_build_arp_request(pkt, up_mac, pwt_ip("192.168.1.11"), pwt_ip("10.244.2.5"));
	r = pwt_run_prog(ov_out_fd, pkt, len, if_vx);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK, "overlay egress, arp: left alone", "err %d retval %d", r.err,
		  r.retval);
}

/* A peer's VXLAN packet as it reaches our uplink: outer Ethernet to the
 * uplink MAC, outer IPv4 192.168.1.12 -> our node IP, UDP to the VXLAN port
 * (checksum 0, as Linux sends it), VXLAN header with flags and VNI, then the
 * inner frame (*inner, *inner_len) for inner_dst. Returns the frame length. */
static size_t vxlan_frame(uint8_t *buf, const char *inner_dst, uint32_t vni, uint8_t **inner, size_t *inner_len)
{
	uint8_t vx_mac[6];
	struct pwt_udp_spec outer = {
		.src_mac = peer_mac, .dst_mac = up_mac,
		.saddr = pwt_ip("192.168.1.12"), .daddr = pwt_ip("192.168.1.11"), .sport = 51234,
		.dport = PW_VXLAN_PORT, .ttl = 64,
	};
	struct pwt_udp_spec in = {
		.src_mac = peer_mac, .dst_mac = vx_mac,
		.saddr = pwt_ip("10.244.2.7"), .daddr = pwt_ip(inner_dst), .sport = 5201, .dport = 40000,
		.ttl = 63, .payload = 48,
	};
	uint8_t *vxh;
	size_t ilen;
	uint8_t frame[PWT_MAX_PKT];

	pwt_mac(vx_mac, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55); /* the sender's pw_vxlan */
	ilen = pwt_build_udp(frame, &in);
	pwt_l4_fix_csum(frame);
	outer.payload = (uint16_t)(8 + ilen);
	pwt_build_udp(buf, &outer);
	memcpy(buf + 50, frame, ilen);
	memset(buf + 40, 0, 2); /* UDP checksum: none */
	vxh = buf + 42;
	memset(vxh, 0, 8);
	vxh[0] = 0x08; /* I: the VNI is valid */
	vxh[4] = (uint8_t)(vni >> 16);
	vxh[5] = (uint8_t)(vni >> 8);
	vxh[6] = (uint8_t)vni;
	*inner = buf + 50;
	*inner_len = ilen;
	return 50 + ilen;
}

static void test_uplink_decap(void)
{
	uint8_t pkt[PWT_MAX_PKT], *inner;
	size_t len, ilen;
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	const struct ethhdr *eth;
	const struct iphdr *ip_in, *ip_out;
	struct pwt_run r;

	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	trace(1);
	r = pwt_run_prog(up_vx_fd, pkt, len, if_up);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, "uplink decap to a local pod: TC_ACT_REDIRECT",
		  "err %d retval %d", r.err, r.retval);
	PWT_CHECK(r.out_len == ilen, "uplink decap to a local pod: outer IP, UDP, VXLAN, inner Ethernet removed",
		  "out %u, inner frame %zu", r.out_len, ilen);
	eth = (const struct ethhdr *)r.out;
	PWT_EXPECT(memcmp(eth->h_source, ep_a.host_mac, 6) == 0 && memcmp(eth->h_dest, ep_a.mac, 6) == 0 &&
		   ntohs(eth->h_proto) == ETH_P_IP,
		   "uplink decap to a local pod: MACs rewritten for the pod, EtherType IPv4");
	ip_in = (const struct iphdr *)(inner + 14);
	ip_out = pwt_iph(r.out);
	PWT_EXPECT(ip_out->saddr == ip_in->saddr && ip_out->daddr == ip_in->daddr && ip_out->tot_len == ip_in->tot_len,
		   "uplink decap to a local pod: inner addresses and length");
	PWT_EQ_INT(ip_out->ttl, 62, "uplink decap to a local pod: inner ttl decremented");
	PWT_EQ_INT(pwt_csum(ip_out, 20), 0, "uplink decap to a local pod: inner ip checksum valid");
	PWT_EXPECT(r.out_len == ilen && memcmp(r.out + 34, inner + 34, ilen - 34) == 0,
		   "uplink decap to a local pod: L4 header and payload untouched");
	PWT_EQ_INT(pwt_l4_csum(r.out), 0, "uplink decap to a local pod: inner UDP checksum still valid");
	PWT_EQ_INT(after.ingress.packets - before.ingress.packets, 1,
		   "uplink decap to a local pod: counted forwarded, ingress");
	PWT_EQ_INT(after.ingress.bytes - before.ingress.bytes, ilen,
		   "uplink decap to a local pod: counted with the inner frame's length");
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].point == PW_TRACE_TO_POD &&
		  events.ev[0].target_ifindex == if_a && events.ev[0].ifindex == if_up &&
		  events.ev[0].dir == PW_DIR_INGRESS && memcmp(events.ev[0].daddr, &ip_in->daddr, 4) == 0 &&
		  memcmp(events.ev[0].saddr, &ip_in->saddr, 4) == 0 && events.ev[0].dport == 40000,
		  "uplink decap to a local pod: trace names the pod's veth and the inner packet", "%d events",
		  events.n);
	trace(0);

	/* Not a local pod: pw_vxlan and overlay_ingress decide, as before. */
	len = vxlan_frame(pkt, "10.244.1.99", PW_VXLAN_VNI, &inner, &ilen);
	expect_verdict("uplink decap, inner destination not local", up_vx_fd, pkt, len, if_up, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_INGRESS);
	len = vxlan_frame(pkt, "10.244.2.5", PW_VXLAN_VNI, &inner, &ilen);
	expect_verdict("uplink decap, inner destination a peer's pod", up_vx_fd, pkt, len, if_up, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_INGRESS);
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	pkt[15] |= 0x03; /* outer CE: the kernel carries it to the inner header */
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_verdict("uplink decap, outer CE mark", up_vx_fd, pkt, len, if_up, TC_ACT_OK, PW_METRIC_PASSED,
		       PW_DIR_INGRESS);
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	pwt_iph(pkt)->daddr = pwt_ip("192.168.1.99");
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_verdict("uplink decap, outer destination not this node", up_vx_fd, pkt, len, if_up, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_INGRESS);
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	pwt_iph(inner)->tot_len = htons(1400);
	expect_verdict("uplink decap, inner total length > packet", up_vx_fd, pkt, len, if_up, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_MALFORMED, PW_DIR_INGRESS);
}

/* Rewrites an IPv4 address of the header at iph (offset 12: source, 16:
 * destination) and its checksum. */
static void set_addr(struct iphdr *iph, size_t off, const char *ip)
{
	uint32_t a = pwt_ip(ip);

	memcpy((uint8_t *)iph + off, &a, 4);
	iph->check = 0;
	iph->check = pwt_csum(iph, 20);
}

/* Dropped, counted once at the reason's slot (ingress), and the drop event
 * names the reason and source src. */
static void expect_tunnel_drop(const char *name, int prog, const uint8_t *pkt, size_t len, unsigned ifindex,
			       int reason, const char *src)
{
	char n[200];
	uint32_t want = pwt_ip(src);

	trace(1);
	expect_verdict(name, prog, pkt, len, ifindex, TC_ACT_SHOT, (uint32_t)-reason, PW_DIR_INGRESS);
	snprintf(n, sizeof(n), "%s: drop event %s, source %s", name, pw_drop_reason_name(reason), src);
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].type == PW_EVENT_DROP &&
		  events.ev[0].reason == reason && memcmp(events.ev[0].saddr, &want, 4) == 0, n,
		  "%d events, reason %d, source %u.%u.%u.%u", events.n, events.ev[0].reason, events.ev[0].saddr[0],
		  events.ev[0].saddr[1], events.ev[0].saddr[2], events.ev[0].saddr[3]);
	trace(0);
}

/* pw_vxlan's ingress: only a peer node (pw_nodes, not this node) with our
 * VNI may put frames in; the kernel accepts any sender and, on a
 * collect-metadata device, any VNI. */
static void test_overlay_trust(void)
{
	uint8_t pkt[PWT_MAX_PKT], other_mac[6];
	struct pwt_udp_spec s = {
		.src_mac = peer_mac, .dst_mac = other_mac,
		.saddr = pwt_ip("10.244.2.7"), .daddr = pwt_ip("10.244.1.2"), .sport = 5201, .dport = 40000,
		.ttl = 63, .payload = 48,
	};
	size_t len;

	pwt_mac(other_mac, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
	len = pwt_build_udp(pkt, &s);
	expect_tunnel_drop("overlay ingress from a LAN host that is not a node", pwt_tunnel_from(tunnel, "192.168.1.100", 1),
			   pkt, len, if_vx, PW_DROP_TUNNEL_FOREIGN_SOURCE, "192.168.1.100");
	expect_tunnel_drop("overlay ingress from a pod (its UDP to a node address)",
			   pwt_tunnel_from(tunnel, "10.244.1.2", 1), pkt, len, if_vx, PW_DROP_TUNNEL_FOREIGN_SOURCE,
			   "10.244.1.2");
	expect_tunnel_drop("overlay ingress from this node's own address", pwt_tunnel_from(tunnel, "192.168.1.11", 1),
			   pkt, len, if_vx, PW_DROP_TUNNEL_FOREIGN_SOURCE, "192.168.1.11");
	expect_verdict("overlay ingress without tunnel metadata", pwt_tunnel_from(tunnel, NULL, 0), pkt, len, if_vx,
		       TC_ACT_SHOT, (uint32_t)-PW_DROP_TUNNEL_FOREIGN_SOURCE, PW_DIR_INGRESS);
	expect_tunnel_drop("overlay ingress from a peer node, another VNI", pwt_tunnel_from(tunnel, "192.168.1.12", 42),
			   pkt, len, if_vx, PW_DROP_TUNNEL_BAD_VNI, "192.168.1.12");
	expect_verdict("overlay ingress from a peer node behind a router", pwt_tunnel_from(tunnel, "192.168.50.4", 1),
		       pkt, len, if_vx, TC_ACT_REDIRECT, PW_METRIC_FORWARDED, PW_DIR_INGRESS);
	len = pwt_build_arp_request(pkt, peer_mac, pwt_ip("10.244.2.1"), pwt_ip("10.244.1.1"));
	expect_tunnel_drop("overlay ingress, arp from a host that is not a node",
			   pwt_tunnel_from(tunnel, "192.168.1.100", 1), pkt, len, if_vx, PW_DROP_TUNNEL_FOREIGN_SOURCE,
			   "192.168.1.100");
	/* From a real peer, but "from" one of our own pods: they never
	 * come back to us through a peer. */
	s.saddr = pwt_ip("10.244.1.3");
	len = pwt_build_udp(pkt, &s);
	expect_tunnel_drop("overlay ingress from a peer node, inner source one of our pods", from_peer(), pkt, len,
			   if_vx, PW_DROP_FORGED_POD_SOURCE, "10.244.1.3");
}

/* The same rules on the uplink, where the BPF decapsulation reads them from
 * the outer headers; and no packet to the VXLAN port from a non-node is
 * left for the kernel's path either. */
static void test_uplink_tunnel_trust(void)
{
	uint8_t pkt[PWT_MAX_PKT], *inner;
	size_t len, ilen;

	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(pkt), 12, "192.168.1.100");
	expect_tunnel_drop("uplink, VXLAN from a LAN host that is not a node", up_vx_fd, pkt, len, if_up,
			   PW_DROP_TUNNEL_FOREIGN_SOURCE, "192.168.1.100");
	len = vxlan_frame(pkt, "10.244.9.9", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(pkt), 12, "192.168.1.100");
	expect_tunnel_drop("uplink, VXLAN from a non-node, inner destination not local", up_vx_fd, pkt, len, if_up,
			   PW_DROP_TUNNEL_FOREIGN_SOURCE, "192.168.1.100");
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(pkt), 12, "10.244.2.7");
	expect_tunnel_drop("uplink, VXLAN from a peer's pod", up_vx_fd, pkt, len, if_up, PW_DROP_TUNNEL_FOREIGN_SOURCE,
			   "10.244.2.7");
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(pkt), 12, "192.168.1.11");
	expect_tunnel_drop("uplink, VXLAN from this node's own address", up_vx_fd, pkt, len, if_up,
			   PW_DROP_TUNNEL_FOREIGN_SOURCE, "192.168.1.11");
	len = vxlan_frame(pkt, "10.244.1.2", 42, &inner, &ilen);
	expect_tunnel_drop("uplink, VXLAN from a peer node, another VNI", up_vx_fd, pkt, len, if_up,
			   PW_DROP_TUNNEL_BAD_VNI, "192.168.1.12");
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(inner), 12, "10.244.1.3");
	expect_tunnel_drop("uplink decap from a peer node, inner source one of our pods", up_vx_fd, pkt, len, if_up,
			   PW_DROP_FORGED_POD_SOURCE, "10.244.1.3");
	len = vxlan_frame(pkt, "10.244.1.2", PW_VXLAN_VNI, &inner, &ilen);
	set_addr(pwt_iph(pkt), 12, "192.168.1.13");
	expect_verdict("uplink, VXLAN from another peer node still decapsulated", up_vx_fd, pkt, len, if_up,
		       TC_ACT_REDIRECT, PW_METRIC_FORWARDED, PW_DIR_INGRESS);
}

/* Unencapsulated on the uplink in VXLAN mode: a pod source is forged (peers'
 * pods come through the tunnel, ours never from the wire); other hosts may
 * still reach pods and the node, and peers' pods the node. */
static void test_uplink_pod_sources_vxlan(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_udp_spec s = {
		.src_mac = peer_mac, .dst_mac = up_mac,
		.saddr = pwt_ip("10.244.2.7"), .daddr = pwt_ip("10.244.1.2"), .sport = 5201, .dport = 40000,
		.ttl = 63, .payload = 48,
	};
	size_t len = pwt_build_udp(pkt, &s);

	expect_tunnel_drop("vxlan uplink, a peer's pod source outside the tunnel", up_vx_fd, pkt, len, if_up,
			   PW_DROP_FORGED_POD_SOURCE, "10.244.2.7");
	s.saddr = pwt_ip("10.244.1.3");
	len = pwt_build_udp(pkt, &s);
	expect_tunnel_drop("vxlan uplink, one of our own pods as source", up_vx_fd, pkt, len, if_up,
			   PW_DROP_FORGED_POD_SOURCE, "10.244.1.3");
	s.saddr = pwt_ip("192.168.1.100");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan uplink, a LAN host to a pod is delivered", up_vx_fd, pkt, len, if_up, TC_ACT_REDIRECT,
		       PW_METRIC_FORWARDED, PW_DIR_INGRESS);
	s.saddr = pwt_ip("10.244.2.7");
	s.daddr = pwt_ip("192.168.1.11");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan uplink, a peer's pod to this node's IP goes to the stack", up_vx_fd, pkt, len, if_up,
		       TC_ACT_OK, PW_METRIC_PASSED, PW_DIR_INGRESS);
}

/* A pod's UDP to port 8472 of pod a's node or a peer node is a tunnel
 * packet it built itself: dropped at the pod in VXLAN mode. */
static void test_pod_to_tunnel_port(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_udp_spec s = {
		.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac,
		.daddr = pwt_ip("192.168.1.11"), .sport = 40000, .dport = PW_VXLAN_PORT, .ttl = 64, .payload = 64,
	};
	size_t len;

	memcpy(&s.saddr, ep_a.ip, 4);
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan pod to its own node's VXLAN port", vxlan_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_POD_TO_TUNNEL, PW_DIR_EGRESS);
	s.daddr = pwt_ip("192.168.1.12");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan pod to a peer node's VXLAN port", vxlan_fd, pkt, len, if_a, TC_ACT_SHOT,
		       (uint32_t)-PW_DROP_POD_TO_TUNNEL, PW_DIR_EGRESS);
	pwt_iph(pkt)->frag_off = htons(0x2000); /* MF: a first fragment still has the ports */
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_verdict("vxlan pod to a peer node's VXLAN port, first fragment", vxlan_fd, pkt, len, if_a,
		       TC_ACT_SHOT, (uint32_t)-PW_DROP_POD_TO_TUNNEL, PW_DIR_EGRESS);
	s.dport = PW_VXLAN_PORT + 1;
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan pod to another port of a peer node", vxlan_fd, pkt, len, if_a, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_EGRESS);
	s.dport = PW_VXLAN_PORT;
	s.daddr = pwt_ip("192.168.1.100");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan pod to port 8472 of a host that is not a node", vxlan_fd, pkt, len, if_a, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_EGRESS);
	s.daddr = pwt_ip("10.244.2.5");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("vxlan pod to port 8472 of a peer's pod (its own overlay)", vxlan_fd, pkt, len, if_a,
		       TC_ACT_REDIRECT, PW_METRIC_FORWARDED, PW_DIR_EGRESS);
	s.daddr = pwt_ip("192.168.1.12");
	len = pwt_build_udp(pkt, &s);
	expect_verdict("native pod to a peer node's port 8472 (no tunnel)", native_fd, pkt, len, if_a, TC_ACT_OK,
		       PW_METRIC_PASSED, PW_DIR_EGRESS);
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "remote paths: sandbox and load", "setup failed: %s", strerror(errno));
		return pwt_done();
	}
	test_shared_maps();
	test_native();
	test_no_route();
	test_vxlan();
	test_overlay_ingress();
	test_overlay_egress();
	test_uplink_decap();
	test_overlay_trust();
	test_uplink_tunnel_trust();
	test_uplink_pod_sources_vxlan();
	test_pod_to_tunnel_port();
	pwt_events_close(&events);
	pwt_tunnel_key_bpf__destroy(tunnel);
	host_bpf__destroy(host_vx);
	overlay_bpf__destroy(overlay);
	pod_bpf__destroy(vxlan_noif);
	pod_bpf__destroy(vxlan);
	pod_bpf__destroy(native);
	return pwt_done();
}
