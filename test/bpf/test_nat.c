/* Packet tests of masquerade through BPF_PROG_TEST_RUN: uplink_egress
 * translating pods' TCP, UDP and ICMP echo to the node IP, uplink_ingress
 * translating the replies back and delivering them to the pod, what must
 * never be translated, and the drops. Checksums are recomputed from scratch
 * here to judge the datapath's incremental updates. */
#include "pwt_bpf.h"
#include "pod.skel.h"
#include "host.skel.h"

static struct pod_bpf *pod;
static struct host_bpf *masq, *nomasq;
static int egress_fd, ingress_fd, off_egress_fd, off_ingress_fd, metrics_fd, snat_fd;
static unsigned if_up, if_a, if_b;
static struct pw_endpoint ep_a, ep_b;
static struct pwt_events events;
static uint8_t up_mac[6], router_mac[6];

static const char *node_ip = "192.168.1.11", *outside = "192.168.1.100";

#define SET_CFG(rodata, masquerade) do {                             \
	PWT_NODE1_CFG(rodata);                                        \
	(rodata)->cfg_masquerade = (masquerade);                      \
} while (0)

static struct host_bpf *load_host(const char *pin_root, uint32_t masquerade)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = pin_root);
	struct host_bpf *h = host_bpf__open_opts(&oopts);

	if (!h)
		return NULL;
	SET_CFG(h->rodata, masquerade);
	if (host_bpf__load(h)) {
		host_bpf__destroy(h);
		return NULL;
	}
	return h;
}

static int add_node(const char *ip, uint32_t flags)
{
	struct pw_ip4 key;
	struct pw_node node = { .flags = flags };
	uint32_t a = pwt_ip(ip);

	memcpy(key.addr, &a, 4);
	return bpf_map_update_elem(bpf_map__fd(pod->maps.pw_nodes), &key, &node, BPF_ANY);
}

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	if_up = pwt_veth("pwt-up0", "pwt-up1");
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_b = pwt_veth("pwt-h2", "pwt-p2");
	if (!if_up || !if_a || !if_b)
		return -1;
	oopts.pin_root_path = pin_root;
	pod = pod_bpf__open_opts(&oopts);
	if (!pod)
		return -1;
	SET_CFG(pod->rodata, 1);
	if (pod_bpf__load(pod))
		return -1;
	masq = load_host(pin_root, 1);
	nomasq = load_host(pin_root, 0);
	if (!masq || !nomasq)
		return -1;
	egress_fd = bpf_program__fd(masq->progs.uplink_egress);
	ingress_fd = bpf_program__fd(masq->progs.uplink_ingress);
	off_egress_fd = bpf_program__fd(nomasq->progs.uplink_egress);
	off_ingress_fd = bpf_program__fd(nomasq->progs.uplink_ingress);
	metrics_fd = bpf_map__fd(pod->maps.pw_metrics);
	snat_fd = bpf_map__fd(masq->maps.pw_snat);

	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	pwt_endpoint_init(&ep_b, if_b, "10.244.1.3", 3);
	if (pwt_endpoint_add(bpf_map__fd(pod->maps.pw_endpoints), bpf_map__fd(pod->maps.pw_ep_ifindex), &ep_a) ||
	    pwt_endpoint_add(bpf_map__fd(pod->maps.pw_endpoints), bpf_map__fd(pod->maps.pw_ep_ifindex), &ep_b))
		return -1;
	if (add_node(node_ip, PW_NODE_F_SELF) || add_node("192.168.1.12", 0))
		return -1;
	pwt_mac(up_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x11);
	pwt_mac(router_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01);
	return pwt_events_open(&events, bpf_map__fd(pod->maps.pw_events));
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

enum kind { TCP, UDP, UDP_NOCSUM, ICMP_REQ, ICMP_REPLY };

/* A frame as it leaves through the uplink (the host stack routed it: uplink
 * MAC to the router) or arrives on it; ICMP echo uses sport as the id. */
static size_t frame(uint8_t *buf, enum kind k, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		    int inbound)
{
	struct pwt_udp_spec s = {
		.src_mac = inbound ? router_mac : up_mac, .dst_mac = inbound ? up_mac : router_mac,
		.saddr = pwt_ip(src), .daddr = pwt_ip(dst), .sport = sport, .dport = dport, .ttl = 63, .payload = 40,
	};
	size_t len;

	switch (k) {
	case TCP:
		return pwt_build_tcp(buf, &s);
	case UDP:
		len = pwt_build_udp(buf, &s);
		pwt_l4_fix_csum(buf);
		return len;
	case UDP_NOCSUM:
		return pwt_build_udp(buf, &s);
	case ICMP_REQ:
		return pwt_build_icmp_echo(buf, &s, 8, sport);
	case ICMP_REPLY:
		return pwt_build_icmp_echo(buf, &s, 0, dport);
	}
	return 0;
}

static int l4_csum_ok(const uint8_t *f)
{
	return pwt_l4_csum(f) == 0;
}

static const char *kind_name(enum kind k)
{
	static const char *names[] = { "tcp", "udp", "udp without checksum", "icmp echo", "icmp echo reply" };
	return names[k];
}

static struct pw_nat_key nat_key(const char *saddr, const char *daddr, uint16_t sport, uint16_t dport,
				 uint8_t proto, uint8_t dir)
{
	struct pw_nat_key key;
	uint32_t s = pwt_ip(saddr), d = pwt_ip(daddr);

	memset(&key, 0, sizeof(key));
	memcpy(key.saddr, &s, 4);
	memcpy(key.daddr, &d, 4);
	key.sport = sport;
	key.dport = dport;
	key.proto = proto;
	key.dir = dir;
	return key;
}

static int nat_lookup(const char *saddr, const char *daddr, uint16_t sport, uint16_t dport, uint8_t proto,
		      uint8_t dir, struct pw_nat_entry *out)
{
	struct pw_nat_key key = nat_key(saddr, daddr, sport, dport, proto, dir);

	return bpf_map_lookup_elem(snat_fd, &key, out);
}

static uint8_t proto_of(enum kind k)
{
	return k == TCP ? IPPROTO_TCP : (k == UDP || k == UDP_NOCSUM) ? IPPROTO_UDP : IPPROTO_ICMP;
}

/* One masqueraded exchange: the pod's packet leaves as node_ip:port, the
 * reply to node_ip:port comes back to the pod. Returns the port. */
static uint16_t exchange(enum kind k, const struct pw_endpoint *ep, uint16_t pod_port, const char *remote,
			 uint16_t remote_port)
{
	char n[200], pod_ip[16];
	const char *kn = kind_name(k);
	uint8_t pkt[PWT_MAX_PKT], reply[PWT_MAX_PKT];
	uint32_t node = pwt_ip(node_ip), pod_addr, rem = pwt_ip(remote);
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED), after;
	struct pw_nat_entry e_out, e_in;
	const struct iphdr *iph;
	const struct ethhdr *eth;
	struct pwt_run r;
	uint16_t port;
	size_t len;
	uint8_t proto = proto_of(k);
	uint16_t rport = k == ICMP_REQ ? 0 : remote_port; /* the key's remote port */

	memcpy(&pod_addr, ep->ip, 4);
	inet_ntop(AF_INET, ep->ip, pod_ip, sizeof(pod_ip));
	len = frame(pkt, k, pod_ip, pod_port, remote, remote_port, 0);
	trace(1);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	after = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED);
	iph = pwt_iph(r.out);
	port = pwt_sport(r.out);

	snprintf(n, sizeof(n), "%s out: passed on (TC_ACT_OK), same length", kn);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK && r.out_len == len, n, "err %d retval %d len %u/%zu", r.err,
		  r.retval, r.out_len, len);
	snprintf(n, sizeof(n), "%s out: source = node ip, destination unchanged", kn);
	PWT_EXPECT(iph->saddr == node && iph->daddr == rem && (k == ICMP_REQ || pwt_dport(r.out) == remote_port), n);
	snprintf(n, sizeof(n), "%s out: %s %u in [%d, %d]", kn, k == ICMP_REQ ? "echo id" : "source port", port,
		 PW_SNAT_PORT_MIN, PW_SNAT_PORT_MAX);
	PWT_EXPECT(port >= PW_SNAT_PORT_MIN && port <= PW_SNAT_PORT_MAX, n);
	snprintf(n, sizeof(n), "%s out: ip checksum valid", kn);
	PWT_EQ_INT(pwt_csum(iph, sizeof(*iph)), 0, n);
	if (k == UDP_NOCSUM) {
		PWT_EXPECT(memcmp(r.out + pwt_l4_csum_off(r.out), "\0\0", 2) == 0,
			   "udp without checksum out: checksum stays 0 (none)");
	} else {
		snprintf(n, sizeof(n), "%s out: L4 checksum valid (recomputed)", kn);
		PWT_CHECK(l4_csum_ok(r.out), n, "residue 0x%04x", pwt_l4_csum(r.out));
	}
	snprintf(n, sizeof(n), "%s out: counted masqueraded once", kn);
	PWT_EQ_INT(after.egress.packets - before.egress.packets, 1, n);
	snprintf(n, sizeof(n), "%s out: trace event with the translation", kn);
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].point == PW_TRACE_MASQUERADE &&
		  memcmp(events.ev[0].nat_addr, &node, 4) == 0 && events.ev[0].nat_port == port &&
		  memcmp(events.ev[0].saddr, &pod_addr, 4) == 0,
		  n, "%d events point %d nat_port %u", events.n, events.n ? events.ev[0].point : 0,
		  events.n ? events.ev[0].nat_port : 0);
	snprintf(n, sizeof(n), "%s: both directions in pw_snat", kn);
	PWT_CHECK(nat_lookup(pod_ip, remote, pod_port, rport, proto, PW_DIR_EGRESS, &e_out) == 0 &&
		  nat_lookup(remote, node_ip, rport, port, proto, PW_DIR_INGRESS, &e_in) == 0 &&
		  memcmp(e_out.addr, &node, 4) == 0 && e_out.port == port && memcmp(e_in.addr, &pod_addr, 4) == 0 &&
		  e_in.port == pod_port && e_out.last_seen_ns && e_in.last_seen_ns, n, "%s", "entries missing or wrong");

	/* The reply, to the node IP and the allocated port. */
	len = frame(reply, k == ICMP_REQ ? ICMP_REPLY : k, remote, remote_port, node_ip, port, 1);
	before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	r = pwt_run_prog(ingress_fd, reply, len, if_up);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	iph = pwt_iph(r.out);
	eth = (const struct ethhdr *)r.out;
	snprintf(n, sizeof(n), "%s reply: delivered to the pod (TC_ACT_REDIRECT)", kn);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, n, "err %d retval %d", r.err, r.retval);
	snprintf(n, sizeof(n), "%s reply: destination = pod ip and port, source unchanged", kn);
	PWT_EXPECT(iph->daddr == pod_addr && pwt_dport(r.out) == pod_port && iph->saddr == rem &&
		   (k == ICMP_REQ || pwt_sport(r.out) == remote_port), n);
	snprintf(n, sizeof(n), "%s reply: ip checksum valid, ttl decremented", kn);
	PWT_EXPECT(pwt_csum(iph, sizeof(*iph)) == 0 && iph->ttl == 62, n);
	if (k == UDP_NOCSUM) {
		PWT_EXPECT(memcmp(r.out + pwt_l4_csum_off(r.out), "\0\0", 2) == 0,
			   "udp without checksum reply: checksum stays 0");
	} else {
		snprintf(n, sizeof(n), "%s reply: L4 checksum valid (recomputed)", kn);
		PWT_CHECK(l4_csum_ok(r.out), n, "residue 0x%04x", pwt_l4_csum(r.out));
	}
	snprintf(n, sizeof(n), "%s reply: MACs for the pod", kn);
	PWT_EXPECT(memcmp(eth->h_dest, ep->mac, 6) == 0 && memcmp(eth->h_source, ep->host_mac, 6) == 0, n);
	snprintf(n, sizeof(n), "%s reply: counted forwarded (ingress), trace names the pod and the translation", kn);
	PWT_CHECK(after.ingress.packets == before.ingress.packets + 1 && pwt_events_read(&events) == 1 &&
		  events.ev[0].point == PW_TRACE_TO_POD && events.ev[0].target_ifindex == ep->ifindex &&
		  memcmp(events.ev[0].nat_addr, &pod_addr, 4) == 0 && events.ev[0].nat_port == pod_port, n,
		  "%d events", events.n);
	trace(0);
	return port;
}

static void test_exchanges(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;
	uint16_t pa, pb, again;

	pa = exchange(TCP, &ep_a, 40000, outside, 80);
	exchange(UDP, &ep_a, 40001, outside, 53);
	exchange(UDP_NOCSUM, &ep_a, 40002, outside, 53);
	exchange(ICMP_REQ, &ep_a, 0x1234, outside, 0);

	/* The same flow again: the same translation. */
	len = frame(pkt, TCP, "10.244.1.2", 40000, outside, 80, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	again = pwt_sport(r.out);
	PWT_CHECK(r.retval == TC_ACT_OK && again == pa, "tcp: the flow's next packet reuses its port",
		  "port %u, first %u", again, pa);
	/* Another pod, same source port, same remote: its own port. */
	pb = exchange(TCP, &ep_b, 40000, outside, 80);
	PWT_CHECK(pb != pa, "tcp: two pods' flows to one remote get distinct ports", "both %u", pa);

	/* The reply direction lost (LRU eviction, agent GC): the next
	 * outbound packet puts it back. */
	{
		struct pw_nat_key key = nat_key(outside, node_ip, 80, pa, IPPROTO_TCP, PW_DIR_INGRESS);
		struct pw_nat_entry e;

		bpf_map_delete_elem(snat_fd, &key);
		pwt_run_prog(egress_fd, pkt, len, if_up);
		PWT_CHECK(bpf_map_lookup_elem(snat_fd, &key, &e) == 0 && e.port == 40000,
			  "tcp: a lost reply entry is restored by the next outbound packet", "%s", "not restored");
	}
}

static void expect_untouched(const char *name, int prog, const uint8_t *pkt, size_t len)
{
	char n[200];
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED), after;
	struct pwt_run r = pwt_run_prog(prog, pkt, len, if_up);

	after = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED);
	snprintf(n, sizeof(n), "%s: passed on untouched, not counted", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK && r.out_len == len && memcmp(r.out, pkt, len) == 0 &&
		  after.egress.packets == before.egress.packets, n, "err %d retval %d", r.err, r.retval);
}

static void test_not_translated(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pwt_run r;
	size_t len;

	len = frame(pkt, TCP, "10.244.1.2", 40100, "192.168.1.12", 10250, 0);
	expect_untouched("pod to a peer node ip", egress_fd, pkt, len);
	len = frame(pkt, TCP, "10.244.1.2", 40100, node_ip, 10250, 0);
	expect_untouched("pod to its own node ip", egress_fd, pkt, len);
	len = frame(pkt, UDP, "10.244.1.2", 40100, "10.244.2.5", 8080, 0);
	expect_untouched("pod to a pod on another node", egress_fd, pkt, len);
	len = frame(pkt, TCP, node_ip, 40100, outside, 80, 0);
	expect_untouched("the node's own traffic", egress_fd, pkt, len);
	len = frame(pkt, TCP, "10.244.2.5", 40100, outside, 80, 0);
	expect_untouched("another node's pod (transit)", egress_fd, pkt, len);
	len = frame(pkt, TCP, "10.244.1.2", 40100, outside, 80, 0);
	expect_untouched("masquerade off: pod to outside", off_egress_fd, pkt, len);
	memset(pkt, 0, 60);
	pkt[12] = 0x86; pkt[13] = 0xdd; pkt[14] = 0x60;
	expect_untouched("ipv6 frame", egress_fd, pkt, 60);

	/* Inbound to the node IP without a matching entry: the stack's. */
	len = frame(pkt, TCP, outside, 80, node_ip, 45000, 1);
	r = pwt_run_prog(ingress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "reply to a port without translation: to the host stack untouched", "retval %d", r.retval);
	/* Masquerade off: a real reply is not translated either. */
	{
		uint8_t out[PWT_MAX_PKT];

		len = frame(pkt, TCP, "10.244.1.2", 40200, outside, 443, 0);
		r = pwt_run_prog(egress_fd, pkt, len, if_up);
		memcpy(out, r.out, r.out_len);
		len = frame(pkt, TCP, outside, 443, node_ip, pwt_sport(out), 1);
		r = pwt_run_prog(off_ingress_fd, pkt, len, if_up);
		PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
			  "masquerade off: uplink_ingress does not translate replies", "retval %d", r.retval);
	}
}

/* A host outside the cluster that routes pod CIDRs (the API server proxying
 * to a pod) opens a flow to a pod's own address: the pod's replies must
 * leave with that address, not be masqueraded; the pod's own flows to the
 * same host still are. */
static void test_inbound_flows(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_nat_entry e;
	uint32_t pod_addr = pwt_ip("10.244.1.2");
	struct pwt_run r;
	size_t len;

	len = frame(pkt, TCP, outside, 51000, "10.244.1.2", 8080, 1);
	r = pwt_run_prog(ingress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->daddr == pod_addr,
		  "inbound: a remote's packet to a pod ip is delivered to the pod", "retval %d", r.retval);
	PWT_CHECK(nat_lookup("10.244.1.2", outside, 8080, 51000, IPPROTO_TCP, PW_DIR_EGRESS, &e) == 0 &&
		  (e.flags & PW_NAT_F_INBOUND) && memcmp(e.addr, &pod_addr, 4) == 0 && e.port == 8080,
		  "inbound: the replies' egress key is marked inbound with the pod's own address",
		  "flags 0x%x port %u", e.flags, e.port);
	len = frame(pkt, TCP, "10.244.1.2", 8080, outside, 51000, 0);
	expect_untouched("inbound: the pod's reply leaves with its own address", egress_fd, pkt, len);
	len = frame(pkt, UDP, outside, 51001, "10.244.1.2", 8081, 1);
	pwt_run_prog(ingress_fd, pkt, len, if_up);
	len = frame(pkt, UDP, "10.244.1.2", 8081, outside, 51001, 0);
	expect_untouched("inbound udp: the pod's reply leaves with its own address", egress_fd, pkt, len);

	/* The pod's own flow to that host, from another port: masqueraded. */
	len = frame(pkt, TCP, "10.244.1.2", 8090, outside, 51000, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && pwt_iph(r.out)->saddr == pwt_ip(node_ip),
		  "inbound: the pod's own flow to the same host is still masqueraded", "retval %d", r.retval);
	/* Masquerade off: nothing is recorded (nothing would be translated). */
	len = frame(pkt, TCP, outside, 51002, "10.244.1.3", 8080, 1);
	pwt_run_prog(off_ingress_fd, pkt, len, if_up);
	PWT_CHECK(nat_lookup("10.244.1.3", outside, 8080, 51002, IPPROTO_TCP, PW_DIR_EGRESS, &e) != 0,
		  "inbound, masquerade off: no entry", "flags 0x%x", e.flags);
}

/* The node's own flows share the kernel's ephemeral range with masquerade:
 * they claim their port, and move only when a pod flow to the same remote
 * had it first. */
static void test_host_ports(void)
{
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT];
	uint32_t node = pwt_ip(node_ip), pod_addr;
	struct pw_nat_entry e_out, e_in, pod_rev = { .port = 41000 };
	struct pw_nat_key k;
	struct pw_metric before, after;
	struct pwt_run r;
	uint16_t moved;
	size_t len;

	/* Free port: kept, and claimed in both directions. */
	len = frame(pkt, TCP, node_ip, 45000, outside, 443, 0);
	expect_untouched("node's own flow from a free port in the range", egress_fd, pkt, len);
	PWT_CHECK(nat_lookup(node_ip, outside, 45000, 443, IPPROTO_TCP, PW_DIR_EGRESS, &e_out) == 0 &&
		  nat_lookup(outside, node_ip, 443, 45000, IPPROTO_TCP, PW_DIR_INGRESS, &e_in) == 0 &&
		  e_out.port == 45000 && e_in.port == 45000 && (e_in.flags & PW_NAT_F_HOST) &&
		  memcmp(e_in.addr, &node, 4) == 0, "node's own flow: its port claimed (PW_NAT_F_HOST)",
		  "%s", "entries missing or wrong");
	len = frame(pkt, TCP, outside, 443, node_ip, 45000, 1);
	r = pwt_run_prog(ingress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, pkt, len) == 0,
		  "reply to the node's own flow: to the host stack untouched", "retval %d", r.retval);

	/* Ports outside the range, and remotes inside the cluster: not ours. */
	len = frame(pkt, TCP, node_ip, 22, outside, 5555, 0);
	expect_untouched("node's own flow from port 22", egress_fd, pkt, len);
	PWT_EXPECT(nat_lookup(node_ip, outside, 22, 5555, IPPROTO_TCP, PW_DIR_EGRESS, &e_out) != 0,
		   "node's own flow from port 22: no entry");
	len = frame(pkt, TCP, node_ip, 45001, "192.168.1.12", 10250, 0);
	expect_untouched("node's own flow to a peer node", egress_fd, pkt, len);
	PWT_EXPECT(nat_lookup(node_ip, "192.168.1.12", 45001, 10250, IPPROTO_TCP, PW_DIR_EGRESS, &e_out) != 0,
		   "node's own flow to a peer node: no entry");

	/* A pod's masqueraded flow to outside:443 holds node port 46000. */
	k = nat_key(outside, node_ip, 443, 46000, IPPROTO_TCP, PW_DIR_INGRESS);
	pod_addr = pwt_ip("10.244.1.2");
	memcpy(pod_rev.addr, &pod_addr, 4);
	if (bpf_map_update_elem(snat_fd, &k, &pod_rev, BPF_NOEXIST)) {
		PWT_CHECK(0, "node's own flow: plant a pod's claim", "%s", strerror(errno));
		return;
	}
	before = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED);
	len = frame(pkt, TCP, node_ip, 46000, outside, 443, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	after = pwt_metric(metrics_fd, PW_METRIC_MASQUERADED);
	moved = pwt_sport(r.out);
	PWT_CHECK(r.retval == TC_ACT_OK && moved != 46000 && moved >= PW_SNAT_PORT_MIN &&
		  moved <= PW_SNAT_PORT_MAX && pwt_iph(r.out)->saddr == node && l4_csum_ok(r.out) &&
		  after.egress.packets == before.egress.packets + 1,
		  "node's own flow on a port a pod flow holds: moved to a free one, counted", "retval %d port %u",
		  r.retval, moved);
	memcpy(out, r.out, r.out_len);
	len = frame(pkt, TCP, outside, 443, node_ip, moved, 1);
	r = pwt_run_prog(ingress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && pwt_dport(r.out) == 46000 && pwt_iph(r.out)->daddr == node &&
		  l4_csum_ok(r.out), "reply to the moved flow: its port restored, to the host stack",
		  "retval %d dport %u", r.retval, pwt_dport(r.out));
	len = frame(pkt, TCP, outside, 443, node_ip, 46000, 1);
	r = pwt_run_prog(ingress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->daddr == pod_addr && pwt_dport(r.out) == 41000,
		  "reply to the pod's flow on that port: still the pod's", "retval %d", r.retval);
	bpf_map_delete_elem(snat_fd, &k);
}

/* An ICMP error from the LAN's router to the node about a packet that left. */
static size_t icmp_error(uint8_t *buf, uint8_t type, uint8_t code, const uint8_t *quoted)
{
	return pwt_build_icmp_error(buf, router_mac, up_mac, pwt_ip("192.168.1.1"), pwt_ip(node_ip), type, code,
				    quoted);
}

/* Path MTU discovery and traceroute from pods to the outside: the errors
 * about masqueraded flows reach the pod, quoting what the pod sent. */
static void test_icmp_errors(void)
{
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT], err[PWT_MAX_PKT];
	uint32_t pod_addr, node = pwt_ip(node_ip);
	struct pwt_run r;
	size_t len;

	memcpy(&pod_addr, ep_a.ip, 4);
	len = frame(pkt, TCP, "10.244.1.2", 40500, outside, 443, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	memcpy(out, r.out, r.out_len);
	len = icmp_error(err, 3, 4, out);
	r = pwt_run_prog(ingress_fd, err, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->daddr == pod_addr &&
		  memcmp(r.out, ep_a.mac, 6) == 0, "frag-needed about a masqueraded tcp flow: delivered to the pod",
		  "retval %d", r.retval);
	PWT_CHECK(pwt_quoted_iph(r.out)->saddr == pod_addr && pwt_quoted_u16(r.out, 0) == 40500 &&
		  pwt_quoted_iph(r.out)->daddr == pwt_ip(outside) && pwt_quoted_u16(r.out, 2) == 443,
		  "frag-needed: the quoted packet is the pod's own again (address and port)", "quoted port %u",
		  pwt_quoted_u16(r.out, 0));
	PWT_CHECK(pwt_csum(pwt_iph(r.out), sizeof(struct iphdr)) == 0 && pwt_l4_csum(r.out) == 0 &&
		  pwt_csum(pwt_quoted_iph(r.out), sizeof(struct iphdr)) == 0 && pwt_iph(r.out)->ttl == 62,
		  "frag-needed: outer, ICMP and quoted header checksums valid, ttl decremented", "icmp residue 0x%04x",
		  pwt_l4_csum(r.out));
	PWT_EXPECT(((uint8_t *)(pwt_iph(r.out) + 1))[6] == (1400 >> 8) && ((uint8_t *)(pwt_iph(r.out) + 1))[7] == (1400 & 0xff),
		   "frag-needed: the next-hop MTU is kept");

	/* traceroute-style: time exceeded about a ping. */
	len = frame(pkt, ICMP_REQ, "10.244.1.2", 0x4321, outside, 0, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	memcpy(out, r.out, r.out_len);
	len = icmp_error(err, 11, 0, out);
	r = pwt_run_prog(ingress_fd, err, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_REDIRECT && pwt_iph(r.out)->daddr == pod_addr &&
		  pwt_quoted_iph(r.out)->saddr == pod_addr && pwt_quoted_u16(r.out, 4) == 0x4321 && pwt_l4_csum(r.out) == 0,
		  "time exceeded about a masqueraded ping: to the pod, quoting its echo id", "retval %d id 0x%x",
		  r.retval, pwt_quoted_u16(r.out, 4));

	/* Not about one of our flows, or about the node's own: the stack's. */
	len = frame(pkt, TCP, node_ip, 50123, outside, 8443, 0);
	len = icmp_error(err, 3, 4, pkt);
	r = pwt_run_prog(ingress_fd, err, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, err, len) == 0,
		  "ICMP error about no flow of ours: to the host stack untouched", "retval %d", r.retval);
	len = frame(pkt, TCP, node_ip, 45000, outside, 443, 0);
	pwt_run_prog(egress_fd, pkt, len, if_up); /* the node's own flow claims 45000 */
	len = icmp_error(err, 3, 4, pkt);
	r = pwt_run_prog(ingress_fd, err, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && memcmp(r.out, err, len) == 0 && pwt_iph(r.out)->daddr == node,
		  "ICMP error about the node's own flow: to the host stack untouched", "retval %d", r.retval);
}

static void expect_drop(const char *name, int prog, const uint8_t *pkt, size_t len, int reason, int dir)
{
	char n[200];
	struct pw_metric before = pwt_metric(metrics_fd, (uint32_t)-reason), after;
	struct pwt_run r = pwt_run_prog(prog, pkt, len, if_up);
	const struct pw_counter *b = dir == PW_DIR_EGRESS ? &before.egress : &before.ingress;
	const struct pw_counter *a = dir == PW_DIR_EGRESS ? &after.egress : &after.ingress;

	after = pwt_metric(metrics_fd, (uint32_t)-reason);
	snprintf(n, sizeof(n), "%s: dropped, counted once as %s", name, pw_drop_reason_name(reason));
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_SHOT && a->packets == b->packets + 1, n,
		  "err %d retval %d count %llu -> %llu", r.err, r.retval, (unsigned long long)b->packets,
		  (unsigned long long)a->packets);
}

static void test_drops(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	len = frame(pkt, TCP, "10.244.1.2", 40300, outside, 80, 0);
	pwt_iph(pkt)->tot_len = htons(20 + 12); /* TCP header cut at 12 bytes */
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_drop("tcp header cut short", egress_fd, pkt, len, PW_DROP_MALFORMED, PW_DIR_EGRESS);
	len = frame(pkt, UDP, "10.244.1.2", 40300, outside, 53, 0);
	pwt_iph(pkt)->tot_len = htons(20 + 6);
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_drop("udp header cut short", egress_fd, pkt, len, PW_DROP_MALFORMED, PW_DIR_EGRESS);
	len = frame(pkt, UDP, "10.244.1.2", 40300, outside, 53, 0);
	pwt_iph(pkt)->frag_off = htons(0x2000); /* MF: a first fragment */
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_drop("fragment to outside", egress_fd, pkt, len, PW_DROP_FRAGMENT, PW_DIR_EGRESS);
	len = frame(pkt, UDP, "10.244.1.2", 40300, outside, 53, 0);
	pwt_iph(pkt)->protocol = 47; /* GRE */
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), 20);
	expect_drop("gre to outside", egress_fd, pkt, len, PW_DROP_UNSUPPORTED, PW_DIR_EGRESS);
	len = frame(pkt, ICMP_REQ, "10.244.1.2", 7, outside, 0, 0);
	pkt[34] = 3; /* destination unreachable */
	pwt_l4_fix_csum(pkt);
	expect_drop("icmp error to outside", egress_fd, pkt, len, PW_DROP_UNSUPPORTED, PW_DIR_EGRESS);
	len = frame(pkt, TCP, "10.244.1.2", 40300, outside, 80, 0);
	pwt_iph(pkt)->tot_len = htons(1400);
	expect_drop("pod packet with total length > frame", egress_fd, pkt, len, PW_DROP_MALFORMED, PW_DIR_EGRESS);

	/* A translation whose pod is gone. */
	{
		struct pw_nat_key key = nat_key(outside, node_ip, 80, 50000, IPPROTO_TCP, PW_DIR_INGRESS);
		struct pw_nat_entry e;
		uint32_t gone = pwt_ip("10.244.1.77");

		memset(&e, 0, sizeof(e));
		memcpy(e.addr, &gone, 4);
		e.port = 1234;
		bpf_map_update_elem(snat_fd, &key, &e, BPF_ANY);
		len = frame(pkt, TCP, outside, 80, node_ip, 50000, 1);
		expect_drop("reply for a pod that is gone", ingress_fd, pkt, len, PW_DROP_UNKNOWN_EP, PW_DIR_INGRESS);
		bpf_map_delete_elem(snat_fd, &key);
	}
}

/* Every port towards one remote (address, port, protocol) taken: a new flow
 * there cannot be translated; other remotes still can. */
static void test_exhaustion(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	struct pw_nat_key key = nat_key("192.168.1.200", node_ip, 443, 0, IPPROTO_TCP, PW_DIR_INGRESS);
	struct pw_nat_entry e;
	uint32_t pod_ip = pwt_ip("10.244.1.3");
	int filled = 0;
	size_t len;
	struct pwt_run r;

	memset(&e, 0, sizeof(e));
	memcpy(e.addr, &pod_ip, 4);
	e.port = 1;
	for (unsigned p = PW_SNAT_PORT_MIN; p <= PW_SNAT_PORT_MAX; p++) {
		key.dport = (uint16_t)p;
		filled += bpf_map_update_elem(snat_fd, &key, &e, BPF_ANY) == 0;
	}
	PWT_EQ_INT(filled, PW_SNAT_PORT_MAX - PW_SNAT_PORT_MIN + 1, "exhaustion: every port towards one remote taken");
	len = frame(pkt, TCP, "10.244.1.2", 41000, "192.168.1.200", 443, 0);
	expect_drop("exhaustion: new flow to that remote", egress_fd, pkt, len, PW_DROP_NAT_FAILED, PW_DIR_EGRESS);
	len = frame(pkt, TCP, "10.244.1.2", 41000, "192.168.1.200", 80, 0);
	r = pwt_run_prog(egress_fd, pkt, len, if_up);
	PWT_CHECK(r.retval == TC_ACT_OK && pwt_iph(r.out)->saddr == pwt_ip(node_ip),
		  "exhaustion: the same remote on another port still translated", "retval %d", r.retval);
	for (unsigned p = PW_SNAT_PORT_MIN; p <= PW_SNAT_PORT_MAX; p++) {
		key.dport = (uint16_t)p;
		bpf_map_delete_elem(snat_fd, &key);
	}
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "masquerade: sandbox and load", "setup failed: %s", strerror(errno));
		return pwt_done();
	}
	test_exchanges();
	test_not_translated();
	test_inbound_flows();
	test_host_ports();
	test_icmp_errors();
	test_drops();
	test_exhaustion();
	pwt_events_close(&events);
	host_bpf__destroy(nomasq);
	host_bpf__destroy(masq);
	pod_bpf__destroy(pod);
	return pwt_done();
}
