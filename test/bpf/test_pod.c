/* Packet tests of bpf/pod.bpf.c (pod_ingress) through BPF_PROG_TEST_RUN:
 * the real object loaded through its skeleton, maps filled the way the agent
 * and the CNI plugin fill them, real veth ifindexes in a private netns. */
#include "pwt_bpf.h"
#include "pod.skel.h"

static struct pod_bpf *skel;
static int prog_fd, metrics_fd, settings_fd;
static unsigned if_a, if_b, if_stranger;
static struct pw_endpoint ep_a, ep_b;
static struct pwt_events events;

static const char *gw = "10.244.1.1";

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	int err;

	if (!pin_root)
		return -1;
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_b = pwt_veth("pwt-h2", "pwt-p2");
	if_stranger = pwt_veth("pwt-h3", "pwt-p3");
	if (!if_a || !if_b || !if_stranger) {
		fprintf(stderr, "veth setup failed\n");
		return -1;
	}

	oopts.pin_root_path = pin_root;
	skel = pod_bpf__open_opts(&oopts);
	if (!skel)
		return -1;
	PWT_NODE1_CFG(skel->rodata);
	err = pod_bpf__load(skel);
	if (err) {
		fprintf(stderr, "pod_bpf__load: %d\n", err);
		return -1;
	}
	prog_fd = bpf_program__fd(skel->progs.pod_ingress);
	metrics_fd = bpf_map__fd(skel->maps.pw_metrics);
	settings_fd = bpf_map__fd(skel->maps.pw_settings);

	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	pwt_endpoint_init(&ep_b, if_b, "10.244.1.3", 3);
	if (pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_a) ||
	    pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_b))
		return -1;
	return pwt_events_open(&events, bpf_map__fd(skel->maps.pw_events));
}

static void settings(uint32_t drop_events, uint32_t trace_events, const char *trace_addr, uint32_t sample)
{
	struct pw_settings s;
	uint32_t a = trace_addr ? pwt_ip(trace_addr) : 0;

	memset(&s, 0, sizeof(s));
	s.drop_events = drop_events;
	s.trace_events = trace_events;
	memcpy(s.trace_addr, &a, 4);
	s.trace_sample = sample;
	if (pwt_settings_set(settings_fd, &s) != 0)
		PWT_CHECK(0, "settings update", "errno %d", errno);
	pwt_events_read(&events); /* start from an empty ring */
}

/* A UDP packet as pod A would send it to dst. */
static size_t udp_from_a(uint8_t *buf, const char *dst, uint8_t ttl)
{
	struct pwt_udp_spec s = {
		.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac,
		.daddr = pwt_ip(dst), .sport = 40000, .dport = 5353, .ttl = ttl, .payload = 32,
	};

	memcpy(&s.saddr, ep_a.ip, 4);
	return pwt_build_udp(buf, &s);
}

/* Runs pkt from pod A's veth and checks it was dropped for `reason`, counted
 * exactly once (packets and bytes) in the reason's egress slot. */
static void expect_drop(const char *name, const uint8_t *pkt, size_t len, unsigned ifindex, int reason)
{
	char n[160];
	struct pw_metric before = pwt_metric(metrics_fd, (uint32_t)-reason), after;
	struct pwt_run r = pwt_run_prog(prog_fd, pkt, len, ifindex);

	after = pwt_metric(metrics_fd, (uint32_t)-reason);
	snprintf(n, sizeof(n), "%s: dropped (TC_ACT_SHOT)", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_SHOT, n, "err %d retval %d", r.err, r.retval);
	snprintf(n, sizeof(n), "%s: counted once as %s (slot %d egress)", name, pw_drop_reason_name(reason), -reason);
	PWT_CHECK(after.egress.packets == before.egress.packets + 1 &&
		  after.egress.bytes == before.egress.bytes + len &&
		  after.ingress.packets == before.ingress.packets, n,
		  "packets %llu -> %llu, bytes %llu -> %llu (len %zu)",
		  (unsigned long long)before.egress.packets, (unsigned long long)after.egress.packets,
		  (unsigned long long)before.egress.bytes, (unsigned long long)after.egress.bytes, len);
}

/* Frames whose L3 header is cut short: newer kernels refuse to build the
 * test skb at all (-EINVAL from BPF_PROG_TEST_RUN), older ones (6.1) hand
 * it to the program, which must drop it as `reason`. Either is fine; a
 * crash, a pass or another verdict is not. */
static void expect_drop_or_refused(const char *name, const uint8_t *pkt, size_t len, unsigned ifindex, int reason)
{
	char n[160];
	struct pwt_run r = pwt_run_prog(prog_fd, pkt, len, ifindex);

	if (r.err == -EINVAL) {
		snprintf(n, sizeof(n), "%s: refused by this kernel's test run, no crash", name);
		PWT_CHECK(1, n, "%s", "");
		return;
	}
	expect_drop(name, pkt, len, ifindex, reason);
}

static void expect_pass(const char *name, const uint8_t *pkt, size_t len, unsigned ifindex)
{
	char n[160];
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_PASSED), after;
	struct pwt_run r = pwt_run_prog(prog_fd, pkt, len, ifindex);

	after = pwt_metric(metrics_fd, PW_METRIC_PASSED);
	snprintf(n, sizeof(n), "%s: to the host stack (TC_ACT_OK), unchanged, counted as passed", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK && r.out_len == len && memcmp(r.out, pkt, len) == 0 &&
		  after.egress.packets == before.egress.packets + 1, n,
		  "err %d retval %d out_len %u/%zu passed %llu -> %llu", r.err, r.retval, r.out_len, len,
		  (unsigned long long)before.egress.packets, (unsigned long long)after.egress.packets);
}

static void test_arp_gateway(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	uint32_t a_ip, gw_ip = pwt_ip(gw);
	size_t len;
	struct pwt_run r;
	struct pw_metric before, after;
	const struct ethhdr *eth;
	const struct pwt_arp *arp;

	memcpy(&a_ip, ep_a.ip, 4);
	len = pwt_build_arp_request(pkt, ep_a.mac, a_ip, gw_ip);
	settings(0, 1, NULL, 0);
	before = pwt_metric(metrics_fd, PW_METRIC_ARP_REPLY);
	r = pwt_run_prog(prog_fd, pkt, len, if_a);
	after = pwt_metric(metrics_fd, PW_METRIC_ARP_REPLY);
	eth = (const struct ethhdr *)r.out;
	arp = (const struct pwt_arp *)(eth + 1);

	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, "arp gateway: TC_ACT_REDIRECT",
		  "err %d retval %d", r.err, r.retval);
	PWT_EQ_INT(r.out_len, len, "arp gateway: reply has the request's length");
	PWT_EXPECT(ntohs(arp->op) == 2, "arp gateway: opcode reply");
	PWT_EXPECT(ntohs(arp->hrd) == 1 && ntohs(arp->pro) == ETH_P_IP && arp->hln == 6 && arp->pln == 4,
		   "arp gateway: hardware/protocol fields kept");
	PWT_EXPECT(memcmp(arp->sha, ep_a.host_mac, 6) == 0, "arp gateway: sha = host veth mac");
	PWT_EXPECT(memcmp(arp->spa, &gw_ip, 4) == 0, "arp gateway: spa = gateway ip");
	PWT_EXPECT(memcmp(arp->tha, ep_a.mac, 6) == 0, "arp gateway: tha = pod mac");
	PWT_EXPECT(memcmp(arp->tpa, &a_ip, 4) == 0, "arp gateway: tpa = pod ip");
	PWT_EXPECT(memcmp(eth->h_dest, ep_a.mac, 6) == 0 && memcmp(eth->h_source, ep_a.host_mac, 6) == 0 &&
		   ntohs(eth->h_proto) == ETH_P_ARP, "arp gateway: ethernet dst = pod, src = host veth");
	PWT_EQ_INT(after.egress.packets - before.egress.packets, 1, "arp gateway: counted as arp reply");
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].type == PW_EVENT_TRACE &&
		  events.ev[0].point == PW_TRACE_ARP_REPLY && events.ev[0].target_ifindex == if_a,
		  "arp gateway: trace says sent back out the same veth", "%d events, first point %d target %u",
		  events.n, events.n ? events.ev[0].point : -1, events.n ? events.ev[0].target_ifindex : 0);
	settings(0, 0, NULL, 0);

	/* ARP for anything else (here: the other pod) is the host stack's. */
	len = pwt_build_arp_request(pkt, ep_a.mac, a_ip, pwt_ip("10.244.1.3"));
	expect_pass("arp for a non-gateway ip", pkt, len, if_a);
	/* A reply from the pod (answering the host's request) too. */
	len = pwt_build_arp_request(pkt, ep_a.mac, a_ip, gw_ip);
	((struct pwt_arp *)(pkt + sizeof(struct ethhdr)))->op = htons(2);
	expect_pass("arp reply from the pod", pkt, len, if_a);
	/* A request cut short must not be answered from bytes past the end. */
	len = pwt_build_arp_request(pkt, ep_a.mac, a_ip, gw_ip);
	expect_pass("truncated arp request", pkt, len - 4, if_a);
}

static void test_spoofing(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->saddr = pwt_ip("10.244.1.99");
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), sizeof(struct iphdr));
	expect_drop("spoofed source ip", pkt, len, if_a, PW_DROP_SPOOFED_IP);
	/* B's address sent from A's veth is spoofing too, even though it is a pod. */
	memcpy(&pwt_iph(pkt)->saddr, ep_b.ip, 4);
	expect_drop("source ip of another pod", pkt, len, if_a, PW_DROP_SPOOFED_IP);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pkt[ETH_ALEN + 5] ^= 0x01; /* h_source, last byte */
	expect_drop("spoofed source mac", pkt, len, if_a, PW_DROP_SPOOFED_MAC);
}

static void check_forwarded(const char *name, const uint8_t *in, size_t len, const struct pwt_run *r,
			    const struct pw_endpoint *target)
{
	char n[160];
	const struct ethhdr *eth = (const struct ethhdr *)r->out;
	const struct iphdr *ip_in = (const struct iphdr *)(in + sizeof(*eth));
	const struct iphdr *ip_out = (const struct iphdr *)(r->out + sizeof(*eth));
	struct iphdr tmp;

	snprintf(n, sizeof(n), "%s: TC_ACT_REDIRECT", name);
	PWT_CHECK(r->err == 0 && r->retval == TC_ACT_REDIRECT, n, "err %d retval %d", r->err, r->retval);
	snprintf(n, sizeof(n), "%s: same length out", name);
	PWT_EQ_INT(r->out_len, len, n);
	snprintf(n, sizeof(n), "%s: src mac = target's host veth, dst mac = target pod", name);
	PWT_EXPECT(memcmp(eth->h_source, target->host_mac, 6) == 0 && memcmp(eth->h_dest, target->mac, 6) == 0, n);
	snprintf(n, sizeof(n), "%s: ttl decremented", name);
	PWT_EQ_INT(ip_out->ttl, ip_in->ttl - 1, n);
	snprintf(n, sizeof(n), "%s: ip checksum valid after rewrite", name);
	PWT_EQ_INT(pwt_csum(ip_out, sizeof(*ip_out)), 0, n);
	snprintf(n, sizeof(n), "%s: ip checksum equals a full recompute", name);
	tmp = *ip_out;
	tmp.check = 0;
	PWT_EQ_INT(ntohs(pwt_csum(&tmp, sizeof(tmp))), ntohs(ip_out->check), n);
	snprintf(n, sizeof(n), "%s: rest of the packet untouched", name);
	tmp = *ip_out;
	tmp.ttl = ip_in->ttl;
	tmp.check = ip_in->check;
	PWT_EXPECT(memcmp(&tmp, ip_in, sizeof(tmp)) == 0 &&
		   memcmp(r->out + sizeof(*eth) + sizeof(tmp), in + sizeof(*eth) + sizeof(tmp),
			  len - sizeof(*eth) - sizeof(tmp)) == 0, n);
}

static void test_local_delivery(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = udp_from_a(pkt, "10.244.1.3", 64);
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	struct pwt_run r;
	const struct pw_event *ev = &events.ev[0];
	uint32_t a_ip, b_ip;

	settings(0, 1, NULL, 0);
	r = pwt_run_prog(prog_fd, pkt, len, if_a);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	check_forwarded("pod to pod", pkt, len, &r, &ep_b);
	PWT_EQ_INT(after.egress.packets - before.egress.packets, 1, "pod to pod: counted as forwarded");
	PWT_EQ_INT(after.egress.bytes - before.egress.bytes, len, "pod to pod: forwarded bytes = frame length");

	memcpy(&a_ip, ep_a.ip, 4);
	memcpy(&b_ip, ep_b.ip, 4);
	PWT_EQ_INT(pwt_events_read(&events), 1, "pod to pod: one trace event");
	PWT_CHECK(events.n >= 1 && ev->type == PW_EVENT_TRACE && ev->point == PW_TRACE_TO_POD &&
		  ev->target_ifindex == if_b && ev->ifindex == if_a, "pod to pod: redirect target = pod B's veth",
		  "type %d point %d target %u (want %u) ifindex %u", ev->type, ev->point, ev->target_ifindex,
		  if_b, ev->ifindex);
	PWT_EXPECT(events.n >= 1 && memcmp(ev->saddr, &a_ip, 4) == 0 && memcmp(ev->daddr, &b_ip, 4) == 0 &&
		   ev->proto == IPPROTO_UDP && ev->sport == 40000 && ev->dport == 5353 &&
		   ev->dir == PW_DIR_EGRESS && ev->len == len && ev->reason == 0,
		   "pod to pod: trace carries the 5-tuple");

	/* The trace filter: an unrelated address silences it, the target's
	 * address (as destination) lets it through. */
	settings(0, 1, "10.244.1.77", 0);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 0, "trace filter: other address, no event");
	settings(0, 1, "10.244.1.3", 0);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 1, "trace filter: destination matches, event");
	settings(0, 1, "10.244.1.2", 0);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 1, "trace filter: source matches, event");
	/* 1 in 2^32-1: ten packets practically never produce a sample. */
	settings(0, 1, NULL, 0xffffffffu);
	for (int i = 0; i < 10; i++)
		pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 0, "trace sampling: 1 in 2^32-1, ten packets, no event");
	settings(0, 1, NULL, 1);
	for (int i = 0; i < 3; i++)
		pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 3, "trace sampling: 1 in 1, every packet");
	settings(0, 0, NULL, 0);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 0, "trace off: no event");

	/* Ethernet padding (tot_len < frame) is normal for short packets. */
	{
		struct pwt_udp_spec s = {
			.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac,
			.daddr = pwt_ip("10.244.1.3"), .sport = 1, .dport = 2, .ttl = 2, .payload = 0,
		};
		memcpy(&s.saddr, ep_a.ip, 4);
		len = pwt_build_udp(pkt, &s);
		memset(pkt + len, 0, 60 - len);
		r = pwt_run_prog(prog_fd, pkt, 60, if_a);
		check_forwarded("padded 60-byte frame, ttl 2", pkt, 60, &r, &ep_b);
	}
	/* B answering A goes the other way. */
	{
		struct pwt_udp_spec s = {
			.src_mac = ep_b.mac, .dst_mac = ep_b.host_mac,
			.daddr = a_ip, .saddr = b_ip, .sport = 5353, .dport = 40000, .ttl = 255, .payload = 100,
		};
		len = pwt_build_udp(pkt, &s);
		r = pwt_run_prog(prog_fd, pkt, len, if_b);
		check_forwarded("reply from pod B, ttl 255", pkt, len, &r, &ep_a);
	}
}

static void test_destinations(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	len = udp_from_a(pkt, "10.244.1.50", 64);
	expect_drop("unknown endpoint in pod cidr", pkt, len, if_a, PW_DROP_UNKNOWN_EP);
	len = udp_from_a(pkt, "10.244.1.255", 64);
	expect_drop("pod cidr broadcast address", pkt, len, if_a, PW_DROP_UNKNOWN_EP);
	len = udp_from_a(pkt, gw, 64);
	expect_pass("to the gateway", pkt, len, if_a);
	/* No peers configured here (test_remote.c has them): a cluster
	 * address outside our pod CIDR has no owner and must not leak. */
	len = udp_from_a(pkt, "10.244.2.5", 64);
	expect_drop("to another node's pod cidr, no peer owns it", pkt, len, if_a, PW_DROP_NO_ROUTE);
	len = udp_from_a(pkt, "8.8.8.8", 64);
	expect_pass("to outside the cluster", pkt, len, if_a);
	len = udp_from_a(pkt, "192.168.1.12", 64);
	expect_pass("to a node ip", pkt, len, if_a);

	len = udp_from_a(pkt, "10.244.1.3", 1);
	expect_drop("ttl 1 to a local pod", pkt, len, if_a, PW_DROP_TTL_EXCEEDED);
	len = udp_from_a(pkt, "10.244.1.3", 0);
	expect_drop("ttl 0 to a local pod", pkt, len, if_a, PW_DROP_TTL_EXCEEDED);
}

static void test_malformed(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;
	struct pwt_run r;

	/* Shorter than an Ethernet header: the kernel itself refuses to build
	 * such an skb for BPF_PROG_TEST_RUN (bpf_test_init: EINVAL). */
	len = udp_from_a(pkt, "10.244.1.3", 64);
	r = pwt_run_prog(prog_fd, pkt, 10, if_a);
	PWT_CHECK(r.err == -EINVAL, "10-byte frame: refused by the kernel's test run, no crash",
		  "err %d retval %d", r.err, r.retval);

	expect_drop_or_refused("ethernet header only (IPv4 type)", pkt, 14, if_a, PW_DROP_MALFORMED);
	expect_drop_or_refused("ipv4 header cut at 19 bytes", pkt, 14 + 19, if_a, PW_DROP_MALFORMED);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->ihl = 4;
	expect_drop("ipv4 ihl < 5", pkt, len, if_a, PW_DROP_MALFORMED);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->ihl = 15; /* 60-byte header, packet has 20 + 8 + 32 */
	pwt_iph(pkt)->tot_len = htons(60);
	expect_drop("ipv4 ihl beyond total length", pkt, 14 + 40, if_a, PW_DROP_MALFORMED);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->tot_len = htons((uint16_t)(len - 14 + 1));
	expect_drop("ipv4 total length > packet", pkt, len, if_a, PW_DROP_MALFORMED);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->tot_len = htons(19);
	expect_drop("ipv4 total length < header", pkt, len, if_a, PW_DROP_MALFORMED);

	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->version = 6;
	expect_drop("ipv4 ethertype with version 6", pkt, len, if_a, PW_DROP_MALFORMED);

	/* A UDP header cut off: IPv4 itself is fine, ports are best effort. */
	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_iph(pkt)->tot_len = htons(22);
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), sizeof(struct iphdr));
	r = pwt_run_prog(prog_fd, pkt, 14 + 22, if_a);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, "truncated udp header: still forwarded",
		  "err %d retval %d", r.err, r.retval);

	/* Not IPv4, not ARP: host stack, including a bare Ethernet header. */
	memset(pkt, 0, sizeof(pkt));
	memcpy(pkt, ep_a.host_mac, 6);
	memcpy(pkt + 6, ep_a.mac, 6);
	pkt[12] = 0x86; pkt[13] = 0xdd; /* IPv6 */
	pkt[14] = 0x60;
	expect_pass("ipv6 frame", pkt, 14 + 40 + 8, if_a);
	r = pwt_run_prog(prog_fd, pkt, 14, if_a);
	PWT_CHECK(r.err == -EINVAL || (r.err == 0 && r.retval == TC_ACT_OK), "ipv6 ethernet header only: passed or refused",
		  "err %d retval %d", r.err, r.retval);
	pkt[12] = 0x88; pkt[13] = 0xcc; /* LLDP */
	expect_pass("lldp frame", pkt, 60, if_a);
	pkt[12] = 0x08; pkt[13] = 0x06; /* ARP */
	expect_pass("arp ethernet header only", pkt, 14, if_a);
}

static void test_unknown_source(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = udp_from_a(pkt, "10.244.1.3", 64);

	expect_drop("packet on an unregistered veth", pkt, len, if_stranger, PW_DROP_UNKNOWN_SOURCE);
	len = pwt_build_arp_request(pkt, ep_a.mac, pwt_ip("10.244.1.2"), pwt_ip(gw));
	expect_drop("arp on an unregistered veth", pkt, len, if_stranger, PW_DROP_UNKNOWN_SOURCE);
}

static void test_drop_events(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = udp_from_a(pkt, "10.244.1.3", 64);
	uint32_t spoofed = pwt_ip("10.244.1.99"), b_ip;
	const struct pw_event *ev = &events.ev[0];
	struct pwt_run r;

	memcpy(&b_ip, ep_b.ip, 4);
	pwt_iph(pkt)->saddr = spoofed;
	pwt_iph(pkt)->check = 0;
	pwt_iph(pkt)->check = pwt_csum(pwt_iph(pkt), sizeof(struct iphdr));

	settings(1, 0, NULL, 0);
	r = pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(r.retval, TC_ACT_SHOT, "drop events on: still dropped");
	PWT_EQ_INT(pwt_events_read(&events), 1, "drop events on: one event");
	PWT_CHECK(events.n >= 1 && ev->type == PW_EVENT_DROP && ev->reason == PW_DROP_SPOOFED_IP &&
		  ev->point == 0 && ev->dir == PW_DIR_EGRESS && ev->ifindex == if_a && ev->target_ifindex == 0,
		  "drop event: type, reason spoofed-source-ip, direction, ifindex",
		  "type %d reason %d dir %d ifindex %u", ev->type, ev->reason, ev->dir, ev->ifindex);
	PWT_EXPECT(events.n >= 1 && memcmp(ev->saddr, &spoofed, 4) == 0 && memcmp(ev->daddr, &b_ip, 4) == 0 &&
		   ev->proto == IPPROTO_UDP && ev->sport == 40000 && ev->dport == 5353 && ev->len == len &&
		   ev->ts_ns != 0, "drop event: 5-tuple, length, timestamp");

	/* An unknown source is dropped before any parsing: the event says so
	 * with what is known (where) and zeros for the rest. */
	r = pwt_run_prog(prog_fd, pkt, len, if_stranger);
	PWT_CHECK(pwt_events_read(&events) == 1 && ev->reason == PW_DROP_UNKNOWN_SOURCE && ev->ifindex == if_stranger,
		  "drop event: unknown source reported", "%d events reason %d", events.n, events.n ? ev->reason : 0);

	/* Forwarded packets are not drops: no event without tracing. */
	len = udp_from_a(pkt, "10.244.1.3", 64);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 0, "drop events on, trace off: forwarded packet, no event");

	settings(0, 0, NULL, 0);
	pwt_iph(pkt)->saddr = spoofed;
	r = pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(r.retval, TC_ACT_SHOT, "drop events off: still dropped");
	PWT_EQ_INT(pwt_events_read(&events), 0, "drop events off: no event");
	settings(0, 1, NULL, 0);
	pwt_run_prog(prog_fd, pkt, len, if_a);
	PWT_EQ_INT(pwt_events_read(&events), 0, "drop events off, trace on: a drop is no trace");
	settings(0, 0, NULL, 0);
}

static void test_reason_names(void)
{
	for (int r = -1; r > -PW_DROP_REASON_COUNT; r--)
		if (strcmp(pw_drop_reason_name(r), "unknown") == 0)
			PWT_CHECK(0, "every drop reason has a name", "reason %d has none", r);
	PWT_EQ_STR(pw_drop_reason_name(PW_DROP_SPOOFED_IP), "spoofed-source-ip", "reason name of spoofed ip");
	PWT_EQ_STR(pw_drop_reason_name(-PW_DROP_REASON_COUNT), "unknown", "reason name out of range");
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "pod_ingress: sandbox and load", "setup failed");
		return pwt_done();
	}
	{
		char path[200];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", pwt_pin_root, PW_MAP_ENDPOINTS);
		PWT_CHECK(stat(path, &st) == 0, "pod_ingress: loaded, maps pinned by name under the pin root",
			  "%s: %s", path, strerror(errno));
	}
	test_arp_gateway();
	test_spoofing();
	test_local_delivery();
	test_destinations();
	test_malformed();
	test_unknown_source();
	test_drop_events();
	test_reason_names();
	pwt_events_close(&events);
	pod_bpf__destroy(skel);
	return pwt_done();
}
