/* Packet tests of NetworkPolicy (bpf/lib/policy.h) in pod_ingress through
 * BPF_PROG_TEST_RUN. The maps are written the way the agent writes them:
 * a JSON model through pw_policy_model_parse, pw_policy_compute and
 * pw_policy_sync (userspace/lib/policy.c), so named ports, endPort and
 * ipBlock go through the real translation. */
#include "pwt_bpf.h"
#include "pod.skel.h"
#include "policy.h"

#define F_SYN 0x02
#define F_ACK 0x10

static struct pod_bpf *skel;
static int prog_fd, metrics_fd;
static unsigned if_a, if_b, if_c;
static struct pw_endpoint ep_a, ep_b, ep_c;
static struct pwt_events events;
static struct pw_policy_fds fds;
static struct pw_policy_state applied;
static struct pw_policy_stats last_stats;

static const struct pw_local_pod local[] = {
	{ .ip = 0x0af40102, .ns = "prod", .name = "client" },   /* A 10.244.1.2 */
	{ .ip = 0x0af40103, .ns = "prod", .name = "web" },      /* B 10.244.1.3 */
	{ .ip = 0x0af40104, .ns = "dev", .name = "other" },     /* C 10.244.1.4 */
};

static const char *pods_json =
	"\"namespaces\":[{\"name\":\"prod\",\"labels\":{\"env\":\"prod\"}},{\"name\":\"dev\"}],"
	"\"pods\":[{\"namespace\":\"prod\",\"name\":\"client\",\"labels\":{\"app\":\"client\"}},"
	"{\"namespace\":\"prod\",\"name\":\"web\",\"labels\":{\"app\":\"web\"},"
	"\"ports\":[{\"name\":\"metrics\",\"containerPort\":9090}]},"
	"{\"namespace\":\"dev\",\"name\":\"other\",\"labels\":{\"app\":\"client\"}},"
	"{\"namespace\":\"prod\",\"name\":\"remote\",\"labels\":{\"app\":\"client\"},\"ip\":\"10.244.2.7\"}]";

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_b = pwt_veth("pwt-h2", "pwt-p2");
	if_c = pwt_veth("pwt-h3", "pwt-p3");
	if (!if_a || !if_b || !if_c)
		return -1;
	oopts.pin_root_path = pin_root;
	skel = pod_bpf__open_opts(&oopts);
	if (!skel)
		return -1;
	PWT_NODE1_CFG(skel->rodata);
	if (pod_bpf__load(skel))
		return -1;
	prog_fd = bpf_program__fd(skel->progs.pod_ingress);
	metrics_fd = bpf_map__fd(skel->maps.pw_metrics);
	fds.ids = bpf_map__fd(skel->maps.pw_pol_ids);
	fds.ep = bpf_map__fd(skel->maps.pw_pol_ep);
	fds.rules = bpf_map__fd(skel->maps.pw_policy);
	fds.gate = bpf_map__fd(skel->maps.pw_pol_gate);
	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	pwt_endpoint_init(&ep_b, if_b, "10.244.1.3", 3);
	pwt_endpoint_init(&ep_c, if_c, "10.244.1.4", 4);
	for (const struct pw_endpoint *e = &ep_a; e; e = e == &ep_a ? &ep_b : e == &ep_b ? &ep_c : NULL)
		if (pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), e))
			return -1;
	struct pw_settings s = { .drop_events = 1 };
	if (pwt_settings_set(bpf_map__fd(skel->maps.pw_settings), &s))
		return -1;
	return pwt_events_open(&events, bpf_map__fd(skel->maps.pw_events));
}

/* Applies the model {pods_json, "networkPolicies": [policies]} incrementally. */
static int apply(const char *policies, bool with_pods)
{
	char json[8192], err[256];
	struct pw_policy_model m;
	struct pw_policy_state next;
	int ret;

	snprintf(json, sizeof(json), "{%s%s\"networkPolicies\":[%s]}", with_pods ? pods_json : "",
		 with_pods ? "," : "", policies);
	ret = pw_policy_model_parse(json, &m, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "model: %s\n", err);
		return ret;
	}
	ret = pw_policy_compute(&m, with_pods ? local : NULL, with_pods ? 3 : 0, &next);
	pw_policy_model_free(&m);
	if (ret)
		return ret;
	memset(&last_stats, 0, sizeof(last_stats));
	ret = pw_policy_sync(&fds, &applied, &next, &last_stats);
	pw_policy_state_free(&applied);
	applied = next;
	return ret;
}

static size_t tcp_frame(uint8_t *buf, const struct pw_endpoint *from, const char *dst, uint16_t sport,
			uint16_t dport, uint8_t flags)
{
	char src[16];
	struct pwt_udp_spec s = {
		.src_mac = from->mac, .dst_mac = from->host_mac, .daddr = pwt_ip(dst),
		.sport = sport, .dport = dport, .ttl = 64,
	};
	size_t len;

	inet_ntop(AF_INET, from->ip, src, sizeof(src));
	s.saddr = pwt_ip(src);
	len = pwt_build_tcp(buf, &s);
	buf[14 + 20 + 13] = flags;
	pwt_l4_fix_csum(buf);
	return len;
}

static size_t udp_frame(uint8_t *buf, const struct pw_endpoint *from, const char *dst, uint16_t dport)
{
	char src[16];
	struct pwt_udp_spec s = {
		.src_mac = from->mac, .dst_mac = from->host_mac, .daddr = pwt_ip(dst),
		.sport = 41000, .dport = dport, .ttl = 64, .payload = 8,
	};

	inet_ntop(AF_INET, from->ip, src, sizeof(src));
	s.saddr = pwt_ip(src);
	return pwt_build_udp(buf, &s);
}

/* Runs the frame from the sender's veth; expect: TC_ACT_REDIRECT into a
 * pod, TC_ACT_OK to the host stack, or TC_ACT_SHOT as policy-denied
 * (counted once, the drop event naming want_policy). */
static void expect(const char *name, const uint8_t *pkt, size_t len, unsigned ifindex, int verdict,
		   uint32_t want_policy)
{
	struct pw_metric before = pwt_metric(metrics_fd, (uint32_t)-PW_DROP_POLICY), after;
	struct pwt_run r;
	char n[200];

	pwt_events_read(&events);
	r = pwt_run_prog(prog_fd, pkt, len, ifindex);
	after = pwt_metric(metrics_fd, (uint32_t)-PW_DROP_POLICY);
	pwt_events_read(&events);
	if (verdict != TC_ACT_SHOT) {
		snprintf(n, sizeof(n), "%s: %s", name, verdict == TC_ACT_OK ? "passed to the stack" : "delivered");
		PWT_CHECK(r.err == 0 && r.retval == verdict && after.egress.packets == before.egress.packets, n,
			  "err %d retval %d, policy drops %llu -> %llu", r.err, r.retval,
			  (unsigned long long)before.egress.packets, (unsigned long long)after.egress.packets);
		return;
	}
	snprintf(n, sizeof(n), "%s: dropped as policy-denied, counted once", name);
	PWT_CHECK(r.err == 0 && r.retval == TC_ACT_SHOT && after.egress.packets == before.egress.packets + 1, n,
		  "err %d retval %d, policy drops %llu -> %llu", r.err, r.retval,
		  (unsigned long long)before.egress.packets, (unsigned long long)after.egress.packets);
	snprintf(n, sizeof(n), "%s: drop event with reason -10 and policy id %08x", name, want_policy);
	PWT_CHECK(events.n == 1 && events.ev[0].reason == PW_DROP_POLICY && events.ev[0].policy_id == want_policy, n,
		  "%d events, reason %d, policy %08x", events.n, events.n ? events.ev[0].reason : 0,
		  events.n ? events.ev[0].policy_id : 0);
}

#define WEB_ALLOW                                                                                          \
	"{\"metadata\":{\"namespace\":\"prod\",\"name\":\"web-allow\"},\"spec\":{"                          \
	"\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"policyTypes\":[\"Ingress\"],"                \
	"\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}}}],"                \
	"\"ports\":[{\"port\":80},{\"port\":\"metrics\"},{\"port\":8000,\"endPort\":8100},"                 \
	"{\"protocol\":\"UDP\",\"port\":53}]}]}}"
#define WEB_NO_EGRESS                                                                                      \
	"{\"metadata\":{\"namespace\":\"prod\",\"name\":\"web-no-egress\"},\"spec\":{"                      \
	"\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"policyTypes\":[\"Egress\"]}}"
#define PROD_DENY                                                                                          \
	"{\"metadata\":{\"namespace\":\"prod\",\"name\":\"prod-deny\"},\"spec\":{\"podSelector\":{}}}"
#define CLIENT_EGRESS                                                                                      \
	"{\"metadata\":{\"namespace\":\"prod\",\"name\":\"client-egress\"},\"spec\":{"                      \
	"\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}},\"policyTypes\":[\"Egress\"],"              \
	"\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"203.0.113.0/24\",\"except\":[\"203.0.113.128/25\"]}}," \
	"{\"namespaceSelector\":{\"matchLabels\":{\"env\":\"prod\"}},"                                      \
	"\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}}}]}]}}"

static uint32_t gate(void)
{
	uint32_t zero = 0, v = 99;

	bpf_map_lookup_elem(fds.gate, &zero, &v);
	return v;
}

/* Turns a UDP frame into a fragment of datagram id: the first (MF, offset
 * 0, the UDP header in it) or a later one (offset 1480, last), whose
 * "UDP header" bytes are payload. */
static void make_fragment(uint8_t *frame, uint16_t id, bool first)
{
	struct iphdr *iph = (struct iphdr *)(frame + sizeof(struct ethhdr));

	iph->id = htons(id);
	iph->frag_off = htons(first ? 0x2000 : 1480 / 8);
	iph->check = 0;
	iph->check = pwt_csum(iph, sizeof(*iph));
}

/* The pw_pol_ep slot of 10.244.1.3 (B): its address's low 16 bits. */
#define SLOT_B 0x0103u

/* B default-deny ingress, written straight into its pw_pol_ep slot (no
 * rules); owner is the address the slot names (B's, or another's). */
static int ep_b_policed_as(bool on, const char *owner)
{
	struct pw_pol_ep v = { 0 };
	uint32_t slot = SLOT_B;

	if (on) {
		uint32_t ip = pwt_ip(owner);   /* network order, as stored */

		v.flags = PW_POL_F_INGRESS;
		memcpy(v.ip, &ip, 4);
	}
	return bpf_map_update_elem(fds.ep, &slot, &v, BPF_ANY);
}

static int ep_b_policed(bool on)
{
	return ep_b_policed_as(on, "10.244.1.3");
}

/* The pw_pol_ct entries of the flow (a:ap <-> b:bp, TCP) in either order:
 * how many, and the allowed bits as seen from a (bit (sense * 2 + dir),
 * sense 0 = packets from a). */
static int flow_entries(const char *a, uint16_t ap, const char *b, uint16_t bp, uint64_t *bits)
{
	struct pw_pol_ct_key k, next;
	struct pw_pol_ct_val v;
	uint32_t ia = pwt_ip(a), ib = pwt_ip(b);   /* network order, as stored */
	int fd = bpf_map__fd(skel->maps.pw_pol_ct), n = 0;
	bool first = true;

	*bits = 0;
	while (bpf_map_get_next_key(fd, first ? NULL : &k, &next) == 0) {
		first = false;
		k = next;
		if (k.proto != IPPROTO_TCP || bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (!memcmp(k.addr_lo, &ia, 4) && k.port_lo == ap && !memcmp(k.addr_hi, &ib, 4) && k.port_hi == bp) {
			*bits = v.allowed;
			n++;
		} else if (!memcmp(k.addr_lo, &ib, 4) && k.port_lo == bp && !memcmp(k.addr_hi, &ia, 4) && k.port_hi == ap) {
			/* stored from b's side: swap the senses */
			*bits = (v.allowed & 3) << 2 | (v.allowed >> 2 & 3);
			n++;
		}
	}
	return n;
}

/* pw_pol_gate: an unwritten gate means "look" (a policed pod is never
 * skipped before the agent has said anything), an open gate skips
 * pw_pol_ep altogether, and pw_policy_sync keeps it in step. */
static void test_gate(void)
{
	uint32_t zero = 0, open = PW_POL_GATE_OPEN;
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = tcp_frame(pkt, &ep_a, "10.244.1.3", 39000, 81, F_SYN);

	PWT_CHECK(gate() == PW_POL_GATE_LOOK && ep_b_policed(true) == 0, "gate: a new map is closed",
		  "gate %u", gate());
	expect("gate closed: B's entry is looked up (A -> B denied)", pkt, len, if_a, TC_ACT_SHOT, 0);
	PWT_CHECK(bpf_map_update_elem(fds.gate, &zero, &open, BPF_ANY) == 0, "gate: opened by hand", "%s", "");
	expect("gate open: pw_pol_ep is not read (A -> B passes)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	PWT_CHECK(ep_b_policed(false) == 0, "gate: B's entry removed", "%s", "");
}

/* pw_pol_ep is an array of slots by the address's low 16 bits: a slot
 * polices only the pod it names. */
static void test_slot_owner(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len = tcp_frame(pkt, &ep_a, "10.244.1.3", 39100, 81, F_SYN);

	uint32_t zero = 0, look = PW_POL_GATE_LOOK;

	PWT_CHECK(bpf_map_update_elem(fds.gate, &zero, &look, BPF_ANY) == 0 &&
		  ep_b_policed_as(true, "10.245.1.3") == 0, "slot: gate closed, B's slot names 10.245.1.3", "%s", "");
	expect("slot: another address's entry in B's slot does not police B", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	PWT_CHECK(ep_b_policed(true) == 0, "slot: B's slot names B", "%s", "");
	expect("slot: B's own entry polices B (A -> B denied)", pkt, len, if_a, TC_ACT_SHOT, 0);
	PWT_CHECK(ep_b_policed(false) == 0, "slot: cleared", "%s", "");
	expect("slot: a cleared slot polices nothing", pkt, len, if_a, TC_ACT_REDIRECT, 0);
}

static void test_no_policy(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	PWT_CHECK(apply("", true) == 0 && applied.n_eps == 0 && applied.n_rules == 0 && applied.n_ids == 4,
		  "no policy: only the 4 pod identities written", "eps %d rules %d ids %d", applied.n_eps,
		  applied.n_rules, applied.n_ids);
	PWT_CHECK(gate() == PW_POL_GATE_OPEN, "no policy: the gate is open", "gate %u", gate());
	len = tcp_frame(pkt, &ep_c, "10.244.1.3", 40000, 81, F_SYN);
	expect("no policy: C -> B tcp/81", pkt, len, if_c, TC_ACT_REDIRECT, 0);
}

static void test_ingress(void)
{
	uint32_t id = pw_policy_id("prod", "web-allow");
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	PWT_CHECK(apply(WEB_ALLOW, true) == 0 && applied.n_eps == 1 && gate() == PW_POL_GATE_LOOK,
		  "web-allow applied: B policed, the gate closed", "eps %d gate %u", applied.n_eps, gate());
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40001, 80, F_SYN);
	expect("allow: A (app=client) -> B tcp/80", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40002, 81, F_SYN);
	expect("deny: A -> B tcp/81 (port not allowed)", pkt, len, if_a, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_c, "10.244.1.3", 40003, 80, F_SYN);
	expect("deny: C (app=client, other namespace) -> B tcp/80", pkt, len, if_c, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40004, 9090, F_SYN);
	expect("named port: A -> B tcp/9090 (\"metrics\" on B)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_c, "10.244.1.3", 40005, 9090, F_SYN);
	expect("named port: C -> B tcp/9090 denied", pkt, len, if_c, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40006, 8000, F_SYN);
	expect("endPort: A -> B tcp/8000 (first)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40007, 8057, F_SYN);
	expect("endPort: A -> B tcp/8057 (inside)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40008, 8100, F_SYN);
	expect("endPort: A -> B tcp/8100 (last)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40009, 8101, F_SYN);
	expect("endPort: A -> B tcp/8101 (one past) denied", pkt, len, if_a, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 40010, 7999, F_SYN);
	expect("endPort: A -> B tcp/7999 (one before) denied", pkt, len, if_a, TC_ACT_SHOT, id);
	len = udp_frame(pkt, &ep_a, "10.244.1.3", 53);
	expect("udp: A -> B udp/53 allowed", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = udp_frame(pkt, &ep_a, "10.244.1.3", 80);
	expect("udp: A -> B udp/80 denied (rule is tcp)", pkt, len, if_a, TC_ACT_SHOT, id);
	/* A datagram larger than the MTU: its later fragments carry no
	 * ports, and go as its first fragment went. */
	len = udp_frame(pkt, &ep_a, "10.244.1.3", 53);
	make_fragment(pkt, 0x4242, true);
	expect("fragments: A -> B udp/53 first fragment allowed", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	make_fragment(pkt, 0x4242, false);
	expect("fragments: its later fragment goes as the first did (allowed)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	make_fragment(pkt, 0x4343, false);
	expect("fragments: a later fragment of a datagram never seen is denied (no ports)", pkt, len, if_a,
	       TC_ACT_SHOT, id);
	len = udp_frame(pkt, &ep_a, "10.244.1.3", 80);
	make_fragment(pkt, 0x4444, true);
	expect("fragments: A -> B udp/80 first fragment denied", pkt, len, if_a, TC_ACT_SHOT, id);
	make_fragment(pkt, 0x4444, false);
	expect("fragments: and its later fragment too", pkt, len, if_a, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 12345, 22, F_SYN);
	expect("ingress only: B -> A not policed", pkt, len, if_b, TC_ACT_REDIRECT, 0);
}

/* Both ends on this node and both policed: the source's check (which lets
 * its own egress) must not let the destination's ingress. */
static void test_both_policed(void)
{
	uint8_t pkt[PWT_MAX_PKT];
	uint64_t bits;
	size_t len;
	int n;

	PWT_CHECK(apply(WEB_ALLOW "," PROD_DENY, true) == 0, "prod default-deny ingress added: A policed too", "%s", "");
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 47000, 81, F_SYN);
	expect("both policed: A -> B tcp/81 denied by B's ingress", pkt, len, if_a, TC_ACT_SHOT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 47001, 80, F_SYN);
	expect("both policed: A -> B tcp/80 allowed", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	n = flow_entries("10.244.1.2", 47001, "10.244.1.3", 80, &bits);
	PWT_CHECK(n == 1 && bits == (PW_POL_CT_BIT(0, PW_DIR_EGRESS) | PW_POL_CT_BIT(0, PW_DIR_INGRESS)),
		  "both policed: one pw_pol_ct entry for the flow, let by A's egress and B's ingress check",
		  "%d entries, bits %#llx", n, (unsigned long long)bits);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 80, 47001, F_SYN | F_ACK);
	expect("both policed: B -> A SYN-ACK passes A's default-deny ingress", pkt, len, if_b, TC_ACT_REDIRECT, 0);
	n = flow_entries("10.244.1.2", 47001, "10.244.1.3", 80, &bits);
	PWT_CHECK(n == 1 && bits == (PW_POL_CT_BIT(0, PW_DIR_EGRESS) | PW_POL_CT_BIT(0, PW_DIR_INGRESS)),
		  "both policed: the reply found the same entry and added nothing", "%d entries, bits %#llx", n,
		  (unsigned long long)bits);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 47002, 80, F_SYN);
	expect("both policed: B -> A new connection denied by A's ingress", pkt, len, if_b, TC_ACT_SHOT,
	       pw_policy_id("prod", "prod-deny"));
}

/* A policy change: the established flow goes on (its tuple is remembered),
 * a new connection (SYN) on the same tuple is checked again and denied. */
static void test_change_established(void)
{
	uint32_t id = pw_policy_id("prod", "web-allow");
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	PWT_CHECK(apply(WEB_ALLOW, true) == 0, "change: web-allow applied", "%s", "");
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 48000, 80, F_SYN);
	expect("change: A -> B tcp/80 SYN allowed", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	PWT_CHECK(apply(WEB_NO_EGRESS ",{\"metadata\":{\"namespace\":\"prod\",\"name\":\"web-allow\"},"
			"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}}}}", true) == 0,
		  "change: web-allow now allows nothing", "%s", "");
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 48000, 80, F_ACK);
	expect("change: the established flow goes on (A -> B ack)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 80, 48000, F_ACK);
	expect("change: its replies too, despite B's new default-deny egress", pkt, len, if_b, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 48000, 80, F_SYN);
	expect("change: a new SYN on the same tuple is checked again: denied", pkt, len, if_a, TC_ACT_SHOT, id);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 48000, 80, F_ACK);
	expect("change: after the refused SYN the tuple's old pass is gone (A -> B ack denied)", pkt, len, if_a,
	       TC_ACT_SHOT, id);
}

static void test_replies(void)
{
	uint32_t eg = pw_policy_id("prod", "web-no-egress");
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	PWT_CHECK(apply(WEB_ALLOW "," WEB_NO_EGRESS, true) == 0, "web-no-egress applied", "%s", "");
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 45000, 80, F_SYN);
	expect("replies: A -> B tcp/80 SYN allowed", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 80, 45000, F_SYN | F_ACK);
	expect("replies: B -> A SYN-ACK passes B's default-deny egress", pkt, len, if_b, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 80, 45000, F_ACK);
	expect("replies: B -> A data passes", pkt, len, if_b, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_b, "10.244.1.2", 45001, 80, F_SYN);
	expect("replies: B -> A new connection denied (egress)", pkt, len, if_b, TC_ACT_SHOT, eg);
	len = tcp_frame(pkt, &ep_b, "10.244.1.1", 45002, 22, F_SYN);
	expect("host: B -> gateway allowed despite default-deny egress", pkt, len, if_b, TC_ACT_OK, 0);
}

static void test_ipblock(void)
{
	uint32_t eg = pw_policy_id("prod", "client-egress");
	uint8_t pkt[PWT_MAX_PKT];
	size_t len;

	PWT_CHECK(apply(WEB_ALLOW "," CLIENT_EGRESS, true) == 0, "client-egress applied", "%s", "");
	len = udp_frame(pkt, &ep_a, "203.0.113.5", 5000);
	expect("ipBlock: A -> 203.0.113.5 (in cidr) to the stack", pkt, len, if_a, TC_ACT_OK, 0);
	len = udp_frame(pkt, &ep_a, "203.0.113.127", 5000);
	expect("ipBlock: A -> 203.0.113.127 (last before except)", pkt, len, if_a, TC_ACT_OK, 0);
	len = udp_frame(pkt, &ep_a, "203.0.113.200", 5000);
	expect("ipBlock except: A -> 203.0.113.200 denied", pkt, len, if_a, TC_ACT_SHOT, eg);
	len = udp_frame(pkt, &ep_a, "198.51.100.1", 5000);
	expect("ipBlock: A -> 198.51.100.1 (outside cidr) denied", pkt, len, if_a, TC_ACT_SHOT, eg);
	len = tcp_frame(pkt, &ep_a, "10.244.1.3", 46000, 80, F_SYN);
	expect("namespaceSelector+podSelector: A -> B tcp/80 allowed (A egress, B ingress)", pkt, len, if_a, TC_ACT_REDIRECT, 0);
	len = tcp_frame(pkt, &ep_a, "10.244.1.4", 46001, 80, F_SYN);
	expect("namespaceSelector: A -> C (dev, no env=prod) denied", pkt, len, if_a, TC_ACT_SHOT, eg);
}

static void test_incremental(void)
{
	struct pw_policy_state read;

	PWT_CHECK(apply(WEB_ALLOW "," CLIENT_EGRESS "," WEB_NO_EGRESS, true) == 0 && last_stats.deletes == 0 &&
			  last_stats.writes == 1,
		  "incremental: one added deny-all egress policy writes 1 entry (B's flags)", "writes %lu deletes %lu",
		  last_stats.writes, last_stats.deletes);
	PWT_CHECK(pw_policy_state_read(&fds, &read) == 0 && read.n_ids == applied.n_ids &&
			  read.n_eps == applied.n_eps && read.n_rules == applied.n_rules &&
			  !memcmp(read.rules, applied.rules, sizeof(*read.rules) * (size_t)read.n_rules),
		  "incremental: the maps read back equal what was computed", "ids %d/%d eps %d/%d rules %d/%d",
		  read.n_ids, applied.n_ids, read.n_eps, applied.n_eps, read.n_rules, applied.n_rules);
	pw_policy_state_free(&read);
	PWT_CHECK(apply("", false) == 0, "incremental: everything deleted", "%s", "");
	PWT_CHECK(pw_policy_state_read(&fds, &read) == 0 && read.n_ids == 0 && read.n_eps == 0 && read.n_rules == 0 &&
			  gate() == PW_POL_GATE_OPEN,
		  "incremental: nothing left in pw_pol_ids, pw_pol_ep, pw_policy; the gate open again",
		  "ids %d eps %d rules %d gate %u", read.n_ids, read.n_eps, read.n_rules, gate());
	pw_policy_state_free(&read);
}

int main(void)
{
	if (setup() != 0) {
		PWT_CHECK(0, "policy: sandbox and load", "setup failed");
		return pwt_done();
	}
	test_gate();
	test_slot_owner();
	test_no_policy();
	test_ingress();
	test_both_policed();
	test_change_established();
	test_replies();
	test_ipblock();
	test_incremental();
	pw_policy_state_free(&applied);
	pwt_events_close(&events);
	pod_bpf__destroy(skel);
	return pwt_done();
}
