/* Per-packet cost of pod_ingress, and of its counters and events, measured
 * with BPF_PROG_TEST_RUN (`repeat`): the kernel runs the real program on the
 * same skb in a loop and reports the mean time per run.
 *
 * Cases (ns/packet, median over many calls):
 *   trivial         a two-instruction program: the test-run harness itself
 *   counter         trivial + one pw_metrics_count(): the counter alone
 *   fwd gate closed local delivery, events off, pw_pol_gate closed: both
 *                   pods' pw_pol_ep lookups (what a node with some policed
 *                   pod pays for unpoliced pods)
 *   fwd off         local delivery to another pod, events off, the gate open
 *                   (the default: the agent opens it while no pod is policed)
 *   fwd listener    same, drop events on (a monitor runs): must cost the same,
 *                   forwarded packets never touch the ring buffer
 *   fwd trace       same, trace events on: one ring buffer record per packet
 *   drop off        spoofed source IP dropped, events off: counter only
 *   drop listener   same, drop events on: counter + one ring buffer record
 *
 * The loop reuses one skb, and local delivery rewrites it (TTL - 1, source
 * MAC := the target's host_mac): so each call runs `repeat` = 250 times on a
 * TTL-255 packet, the packet is rebuilt for every call, and pod a's MAC is
 * b's host_mac, so the rewritten frame still passes a's anti-spoofing check. Records are drained between calls (untimed),
 * as a reader would, so the ring never fills (a full ring is cheaper).
 *
 * Runs in a private netns + mount namespace with its own bpffs (like the BPF
 * packet tests), so it touches nothing of the host. Needs root.
 *   make BUILD=build-d build-d/test/bench/bpf_cost && build-d/test/bench/bpf_cost [calls] */
#include "pwt_bpf.h"
#include "pod.skel.h"

#define REPEAT 250

static struct pod_bpf *skel;
static int settings_fd;
static struct ring_buffer *rb;
static unsigned if_a, if_b;
static struct pw_endpoint ep_a, ep_b;
static long long drained;

static int drain_cb(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	drained++;
	return 0;
}

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	if_a = pwt_veth("pwt-h1", "pwt-p1");
	if_b = pwt_veth("pwt-h2", "pwt-p2");
	if (!if_a || !if_b)
		return -1;
	oopts.pin_root_path = pin_root;
	skel = pod_bpf__open_opts(&oopts);
	if (!skel)
		return -1;
	PWT_NODE1_CFG(skel->rodata);
	if (pod_bpf__load(skel))
		return -1;
	settings_fd = bpf_map__fd(skel->maps.pw_settings);
	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	pwt_endpoint_init(&ep_b, if_b, "10.244.1.3", 3);
	/* Delivery rewrites the frame's source MAC to b's host_mac; the next
	 * run of the loop must still pass a's anti-spoofing check. */
	memcpy(ep_a.mac, ep_b.host_mac, 6);
	if (pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_a) ||
	    pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_b))
		return -1;
	rb = ring_buffer__new(bpf_map__fd(skel->maps.pw_events), drain_cb, NULL, NULL);
	return rb ? 0 : -1;
}

/* return TC_ACT_OK (0): what the harness costs with no program work. */
static int load_trivial(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "pw_trivial", "GPL", insns, 2, NULL);
}

/* The trivial program plus exactly what pw_metrics_count() does: look a slot
 * of the per-CPU pw_metrics up and add to its packets and bytes. The
 * difference to the trivial one is the cost of the counter alone. */
static int load_counter_only(int metrics_fd)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .off = -4, .imm = 0 },   /* key = 0 */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -4 },
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = metrics_fd },
		{ 0 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
		{ .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = BPF_REG_0, .off = 6, .imm = 0 },
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_0, .off = 0 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = 1 },
		{ .code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1, .off = 0 },
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_0, .off = 8 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = 64 },
		{ .code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1, .off = 8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "pw_counter", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), NULL);
}

static void set_gate(uint32_t state)
{
	uint32_t zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.pw_pol_gate), &zero, &state, BPF_ANY))
		fprintf(stderr, "warning: cannot write pw_pol_gate\n");
}

static void set_events(uint32_t drops, uint32_t traces)
{
	struct pw_settings s;

	memset(&s, 0, sizeof(s));
	s.drop_events = drops;
	s.trace_events = traces;
	if (pwt_settings_set(settings_fd, &s))
		fprintf(stderr, "warning: cannot write pw_settings\n");
}

static size_t build(uint8_t *buf, const char *saddr)
{
	struct pwt_udp_spec spec = {
		.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac,
		.saddr = pwt_ip(saddr), .daddr = pwt_ip("10.244.1.3"),
		.sport = 40000, .dport = 80, .ttl = 255, .payload = 18,   /* a 64-byte frame */
	};

	return pwt_build_udp(buf, &spec);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Median over `calls` test runs of the mean ns per run; expect_ret checks
 * the program did take the path the case is about. */
static double measure(int prog_fd, const char *saddr, int expect_ret, int calls)
{
	uint32_t *d = calloc((size_t)calls, sizeof(*d));
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT];
	struct __sk_buff ctx;
	double med;

	if (!d)
		return -1;
	for (int i = 0; i < calls; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts);
		size_t len = build(pkt, saddr);

		memset(&ctx, 0, sizeof(ctx));
		ctx.ifindex = if_a;
		opts.data_in = pkt;
		opts.data_size_in = (uint32_t)len;
		opts.data_out = out;
		opts.data_size_out = sizeof(out);
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
		opts.repeat = REPEAT;
		if (bpf_prog_test_run_opts(prog_fd, &opts) || (expect_ret >= 0 && (int)opts.retval != expect_ret)) {
			fprintf(stderr, "test run failed (errno %d, retval %d, expected %d)\n", errno,
				(int)opts.retval, expect_ret);
			free(d);
			return -1;
		}
		d[i] = opts.duration;
		ring_buffer__consume(rb);
	}
	qsort(d, (size_t)calls, sizeof(*d), cmp_u32);
	med = d[calls / 2];
	free(d);
	return med;
}

int main(int argc, char **argv)
{
	int calls = argc > 1 ? atoi(argv[1]) : 2000, prog, trivial, counter;
	struct pw_metric slot0;
	double t_triv, t_counter, fwd_closed, fwd_off, fwd_listen, fwd_trace, drop_off, drop_listen;
	long long ev_before;

	if (calls < 10)
		calls = 10;
	if (setup()) {
		fprintf(stderr, "bpf_cost: setup failed (root? BPF enabled?)\n");
		return 1;
	}
	prog = bpf_program__fd(skel->progs.pod_ingress);
	trivial = load_trivial();
	if (trivial < 0) {
		fprintf(stderr, "bpf_cost: cannot load the trivial program\n");
		return 1;
	}
	counter = load_counter_only(bpf_map__fd(skel->maps.pw_metrics));
	if (counter < 0) {
		fprintf(stderr, "bpf_cost: cannot load the counter program: %s\n", strerror(errno));
		return 1;
	}
	t_triv = measure(trivial, "10.244.1.2", TC_ACT_OK, calls);
	t_counter = measure(counter, "10.244.1.2", TC_ACT_OK, calls);
	slot0 = pwt_metric(bpf_map__fd(skel->maps.pw_metrics), 0);
	if (slot0.egress.packets != (uint64_t)calls * REPEAT)
		fprintf(stderr, "bpf_cost: the counter program counted %llu, expected %llu\n",
			(unsigned long long)slot0.egress.packets, (unsigned long long)calls * REPEAT);
	set_events(0, 0);
	set_gate(PW_POL_GATE_LOOK);
	fwd_closed = measure(prog, "10.244.1.2", TC_ACT_REDIRECT, calls);
	set_gate(PW_POL_GATE_OPEN);
	fwd_off = measure(prog, "10.244.1.2", TC_ACT_REDIRECT, calls);
	drop_off = measure(prog, "10.244.1.200", TC_ACT_SHOT, calls);
	set_events(1, 0);
	ev_before = drained;
	fwd_listen = measure(prog, "10.244.1.2", TC_ACT_REDIRECT, calls);
	if (drained != ev_before)
		fprintf(stderr, "bpf_cost: forwarded packets produced drop events?\n");
	drop_listen = measure(prog, "10.244.1.200", TC_ACT_SHOT, calls);
	set_events(1, 1);
	fwd_trace = measure(prog, "10.244.1.2", TC_ACT_REDIRECT, calls);
	set_events(0, 0);
	if (t_triv < 0 || t_counter < 0 || fwd_closed < 0 || fwd_off < 0 || fwd_listen < 0 || fwd_trace < 0 || drop_off < 0 || drop_listen < 0)
		return 1;

	printf("pod_ingress per-packet cost, BPF_PROG_TEST_RUN, median of %d calls x %d repeats, 64-byte UDP\n",
	       calls, REPEAT);
	printf("%-44s %8s %10s\n", "case", "ns/pkt", "vs trivial");
	printf("%-44s %8.1f %10s\n", "trivial program (harness)", t_triv, "-");
	printf("%-44s %8.1f %+10.1f\n", "trivial + one pw_metrics count (the counter)", t_counter, t_counter - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "local delivery, policy gate closed", fwd_closed, fwd_closed - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "local delivery, events off (default)", fwd_off, fwd_off - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "local delivery, drop events on (listener)", fwd_listen, fwd_listen - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "local delivery, trace events on", fwd_trace, fwd_trace - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "drop spoofed-source-ip, events off", drop_off, drop_off - t_triv);
	printf("%-44s %8.1f %+10.1f\n", "drop spoofed-source-ip, drop events on", drop_listen, drop_listen - t_triv);
	printf("events drained: %lld\n", drained);
	ring_buffer__free(rb);
	close(trivial);
	close(counter);
	pod_bpf__destroy(skel);
	return 0;
}
