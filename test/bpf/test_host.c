/* Packet tests of bpf/host.bpf.c (uplink_ingress) through BPF_PROG_TEST_RUN,
 * loaded next to pod.bpf.o under one pin root the way the agent does it, so
 * the two objects share their maps by pin name. */
#include "pwt_bpf.h"
#include "pod.skel.h"
#include "host.skel.h"

static struct pod_bpf *pod;
static struct host_bpf *host;
static int prog_fd, metrics_fd;
static unsigned if_uplink, if_pod;
static struct pw_endpoint ep;
static struct pwt_events events;
static uint8_t peer_mac[6], uplink_mac[6];


static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	if_uplink = pwt_veth("pwt-up0", "pwt-up1");
	if_pod = pwt_veth("pwt-h1", "pwt-p1");
	if (!if_uplink || !if_pod)
		return -1;

	oopts.pin_root_path = pin_root;
	pod = pod_bpf__open_opts(&oopts);
	if (!pod)
		return -1;
	PWT_NODE1_CFG(pod->rodata);
	if (pod_bpf__load(pod))
		return -1;
	host = host_bpf__open_opts(&oopts);
	if (!host)
		return -1;
	PWT_NODE1_CFG(host->rodata);
	if (host_bpf__load(host))
		return -1;
	prog_fd = bpf_program__fd(host->progs.uplink_ingress);
	metrics_fd = bpf_map__fd(host->maps.pw_metrics);

	pwt_endpoint_init(&ep, if_pod, "10.244.1.2", 2);
	pwt_mac(peer_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x12);
	pwt_mac(uplink_mac, 0x52, 0x54, 0x00, 0x00, 0x00, 0x11);
	/* Written through the pod object's maps, read by the host program. */
	if (pwt_endpoint_add(bpf_map__fd(pod->maps.pw_endpoints), bpf_map__fd(pod->maps.pw_ep_ifindex), &ep))
		return -1;
	return pwt_events_open(&events, bpf_map__fd(host->maps.pw_events));
}

static void test_shared_maps(void)
{
	PWT_EXPECT(pwt_map_id(pod->maps.pw_endpoints) == pwt_map_id(host->maps.pw_endpoints) &&
		   pwt_map_id(pod->maps.pw_ep_ifindex) == pwt_map_id(host->maps.pw_ep_ifindex) &&
		   pwt_map_id(pod->maps.pw_metrics) == pwt_map_id(host->maps.pw_metrics) &&
		   pwt_map_id(pod->maps.pw_settings) == pwt_map_id(host->maps.pw_settings) &&
		   pwt_map_id(pod->maps.pw_events) == pwt_map_id(host->maps.pw_events) &&
		   pwt_map_id(pod->maps.pw_peers) == pwt_map_id(host->maps.pw_peers) &&
		   pwt_map_id(host->maps.pw_endpoints) != 0,
		   "pod and host objects share every map through the pin root");
}

static size_t udp_from_peer(uint8_t *buf, const char *src, const char *dst, uint8_t ttl)
{
	struct pwt_udp_spec s = {
		.src_mac = peer_mac, .dst_mac = uplink_mac,
		.saddr = pwt_ip(src), .daddr = pwt_ip(dst), .sport = 33000, .dport = 8080, .ttl = ttl, .payload = 64,
	};

	return pwt_build_udp(buf, &s);
}

static void set_trace(uint32_t on)
{
	struct pw_settings s;

	memset(&s, 0, sizeof(s));
	s.trace_events = on;
	s.drop_events = on;
	pwt_settings_set(bpf_map__fd(host->maps.pw_settings), &s);
	pwt_events_read(&events);
}

static void test_to_local_pod(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = udp_from_peer(pkt, "10.244.2.7", "10.244.1.2", 63);
	struct pw_metric before = pwt_metric(metrics_fd, PW_METRIC_FORWARDED), after;
	const struct ethhdr *eth;
	const struct iphdr *iph;
	struct pwt_run r;

	set_trace(1);
	r = pwt_run_prog(prog_fd, pkt, len, if_uplink);
	after = pwt_metric(metrics_fd, PW_METRIC_FORWARDED);
	eth = (const struct ethhdr *)r.out;
	iph = (const struct iphdr *)(eth + 1);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_REDIRECT, "uplink to local pod: TC_ACT_REDIRECT",
		  "err %d retval %d", r.err, r.retval);
	PWT_EXPECT(memcmp(eth->h_source, ep.host_mac, 6) == 0 && memcmp(eth->h_dest, ep.mac, 6) == 0,
		   "uplink to local pod: MACs rewritten for the pod");
	PWT_EQ_INT(iph->ttl, 62, "uplink to local pod: ttl decremented");
	PWT_EQ_INT(pwt_csum(iph, sizeof(*iph)), 0, "uplink to local pod: ip checksum valid");
	PWT_EXPECT(memcmp(r.out + 34, pkt + 34, len - 34) == 0, "uplink to local pod: payload untouched");
	PWT_EQ_INT(after.ingress.packets - before.ingress.packets, 1, "uplink to local pod: forwarded, ingress direction");
	PWT_EQ_INT(after.egress.packets - before.egress.packets, 0, "uplink to local pod: nothing counted as egress");
	PWT_CHECK(pwt_events_read(&events) == 1 && events.ev[0].point == PW_TRACE_TO_POD &&
		  events.ev[0].target_ifindex == if_pod && events.ev[0].ifindex == if_uplink &&
		  events.ev[0].dir == PW_DIR_INGRESS,
		  "uplink to local pod: trace names the pod's veth as target", "%d events target %u",
		  events.n, events.n ? events.ev[0].target_ifindex : 0);
	set_trace(0);
}

static void expect_uplink(const char *name, const uint8_t *pkt, size_t len, int verdict, uint32_t slot)
{
	char n[160];
	struct pw_metric before = pwt_metric(metrics_fd, slot), after;
	struct pwt_run r = pwt_run_prog(prog_fd, pkt, len, if_uplink);

	after = pwt_metric(metrics_fd, slot);
	snprintf(n, sizeof(n), "%s: verdict %d, counted at slot %u ingress", name, verdict, slot);
	PWT_CHECK(r.err == 0 && r.retval == verdict && after.ingress.packets == before.ingress.packets + 1, n,
		  "err %d retval %d count %llu -> %llu", r.err, r.retval,
		  (unsigned long long)before.ingress.packets, (unsigned long long)after.ingress.packets);
	if (verdict == TC_ACT_OK) {
		snprintf(n, sizeof(n), "%s: packet unchanged", name);
		PWT_EXPECT(r.out_len == len && memcmp(r.out, pkt, len) == 0, n);
	}
}

static void test_others(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	len = udp_from_peer(pkt, "192.168.1.12", "192.168.1.11", 64);
	expect_uplink("to the node ip", pkt, len, TC_ACT_OK, PW_METRIC_PASSED);
	len = udp_from_peer(pkt, "192.168.1.12", "10.244.1.9", 64);
	expect_uplink("to a pod cidr address without endpoint", pkt, len, TC_ACT_OK, PW_METRIC_PASSED);
	len = pwt_build_arp_request(pkt, peer_mac, pwt_ip("192.168.1.12"), pwt_ip("192.168.1.11"));
	expect_uplink("arp on the uplink", pkt, len, TC_ACT_OK, PW_METRIC_PASSED);
	len = udp_from_peer(pkt, "10.244.2.7", "10.244.1.2", 1);
	expect_uplink("ttl 1 to a local pod", pkt, len, TC_ACT_SHOT, (uint32_t)-PW_DROP_TTL_EXCEEDED);
	len = udp_from_peer(pkt, "10.244.2.7", "10.244.1.2", 64);
	pwt_iph(pkt)->tot_len = htons(1400);
	expect_uplink("ipv4 total length > packet", pkt, len, TC_ACT_SHOT, (uint32_t)-PW_DROP_MALFORMED);
	memset(pkt, 0, 60);
	pkt[12] = 0x86; pkt[13] = 0xdd;
	pkt[14] = 0x60;
	expect_uplink("ipv6 frame", pkt, 60, TC_ACT_OK, PW_METRIC_PASSED);
	/* Any ifindex is fine for the uplink program: it has no endpoint to find. */
	len = udp_from_peer(pkt, "192.168.1.12", "192.168.1.11", 64);
	{
		struct pwt_run r = pwt_run_prog(prog_fd, pkt, len, 1);
		PWT_CHECK(r.err == 0 && r.retval == TC_ACT_OK, "uplink program on lo: passed", "err %d retval %d",
			  r.err, r.retval);
	}
}

/* Native routing: our own pods never send in from the wire, whatever the
 * destination; a peer's pod CIDR is trusted to the node network (see
 * docs/datapath.md "Trust"), so the peer's pods keep reaching ours. */
static void test_forged_pod_source(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	len = udp_from_peer(pkt, "10.244.1.3", "10.244.1.2", 64);
	expect_uplink("one of our own pods as source, to a local pod", pkt, len, TC_ACT_SHOT,
		      (uint32_t)-PW_DROP_FORGED_POD_SOURCE);
	len = udp_from_peer(pkt, "10.244.1.2", "10.244.1.2", 64);
	expect_uplink("the target pod itself as source", pkt, len, TC_ACT_SHOT, (uint32_t)-PW_DROP_FORGED_POD_SOURCE);
	len = udp_from_peer(pkt, "10.244.1.1", "192.168.1.11", 64);
	expect_uplink("our pods' gateway as source, to the node ip", pkt, len, TC_ACT_SHOT,
		      (uint32_t)-PW_DROP_FORGED_POD_SOURCE);
	len = udp_from_peer(pkt, "10.244.2.7", "10.244.1.2", 64);
	expect_uplink("native: a peer's pod to a local pod is delivered", pkt, len, TC_ACT_REDIRECT,
		      PW_METRIC_FORWARDED);
	len = udp_from_peer(pkt, "10.244.2.7", "192.168.1.11", 64);
	expect_uplink("native: a peer's pod to the node ip goes to the stack", pkt, len, TC_ACT_OK, PW_METRIC_PASSED);
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "uplink_ingress: sandbox and load", "setup failed: %s", strerror(errno));
		return pwt_done();
	}
	test_shared_maps();
	test_to_local_pod();
	test_others();
	test_forged_pod_source();
	pwt_events_close(&events);
	host_bpf__destroy(host);
	pod_bpf__destroy(pod);
	return pwt_done();
}
