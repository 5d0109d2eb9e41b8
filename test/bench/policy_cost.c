/* NetworkPolicy costs (docs/policy.md "Measured"):
 *
 * 1. Userspace: a node with 100 local pods in a cluster of 10,000 pods
 *    (500 label sets in 10 namespaces) and 1,000 policies, N of them
 *    selecting the measured pod: time to parse, compute and write the maps
 *    from empty; then one policy changed (its port), recomputed and synced
 *    (p50/p99 over 21 changes, with the map writes it took).
 * 2. Datapath: pod_ingress per-packet cost (BPF_PROG_TEST_RUN, median of
 *    many calls x 250 repeats) for a packet from a local pod to the
 *    measured pod: N = 0 (the pod is not policed: one pw_pol_ep miss),
 *    N = 100 and 1,000: a denied packet (the full lookup sequence: pod
 *    flags, two conntrack, identity, four policy lookups, then the drop)
 *    and a packet of an allowed, established flow (conntrack hit). The
 *    constant-lookup design says these do not grow with N.
 *
 * Runs in a private netns + mount namespace with its own bpffs (as the BPF
 * tests). Needs root. build/test/bench/policy_cost [calls] */
#include <time.h>
#include "pwt_bpf.h"
#include "pod.skel.h"
#include "policy.h"

#define REPEAT   250
#define N_PODS   10000
#define N_LOCAL  100
#define N_APPS   500
#define N_NS     10
#define N_POLS   1000

static struct pod_bpf *skel;
static unsigned if_a, if_l;
static struct pw_endpoint ep_a, ep_l;
static struct pw_policy_fds fds;
static struct pw_local_pod local[N_LOCAL + 2];

struct buf {
	char *s;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && b->len + (size_t)n < b->cap)
			break;
		b->cap = b->cap * 2 + (size_t)n + 1;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	b->len += (size_t)n;
}

/* Pod i: namespace ns-(i % 10), app-(i % 500); the first N_LOCAL are this
 * node's (10.244.1.10+), the rest elsewhere (10.250.x.y). Pod "a" (ns-0,
 * app-0) sends, pod "measured" (ns-0, app=measured) receives. N of the
 * 1,000 policies select "measured" (policy k allows app-(k%500) from any
 * namespace on port 1000+k); the others select other pods. chg moves
 * policy `changed`'s port by chg. */
static char *model(int n_selecting, int changed, int chg)
{
	struct buf b = { malloc(1 << 20), 0, 1 << 20 };

	put(&b, "{\"namespaces\":[");
	for (int i = 0; i < N_NS; i++)
		put(&b, "%s{\"name\":\"ns-%d\",\"labels\":{\"team\":\"t%d\"}}", i ? "," : "", i, i % 3);
	put(&b, "],\"pods\":[{\"namespace\":\"ns-0\",\"name\":\"a\",\"labels\":{\"app\":\"app-0\"}},"
		"{\"namespace\":\"ns-0\",\"name\":\"measured\",\"labels\":{\"app\":\"measured\"}}");
	for (int i = 0; i < N_PODS - 2; i++) {
		put(&b, ",{\"namespace\":\"ns-%d\",\"name\":\"p%d\",\"labels\":{\"app\":\"app-%d\",\"tier\":\"x\"}",
		    i % N_NS, i, i % N_APPS);
		if (i >= N_LOCAL)
			put(&b, ",\"ip\":\"10.250.%d.%d\"", i / 250, i % 250 + 1);
		put(&b, "}");
	}
	put(&b, "],\"networkPolicies\":[");
	for (int k = 0; k < N_POLS; k++) {
		int port = 1000 + k + (k == changed ? chg : 0);

		if (k < n_selecting)
			put(&b, "%s{\"metadata\":{\"namespace\":\"ns-0\",\"name\":\"sel-%d\"},\"spec\":{\"podSelector\":"
				"{\"matchLabels\":{\"app\":\"measured\"}},\"ingress\":[{\"from\":[{\"namespaceSelector\":{},"
				"\"podSelector\":{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
			    k ? "," : "", k, k % N_APPS, port);
		else
			put(&b, "%s{\"metadata\":{\"namespace\":\"ns-%d\",\"name\":\"bg-%d\"},\"spec\":{\"podSelector\":"
				"{\"matchLabels\":{\"app\":\"app-%d\"}},\"ingress\":[{\"from\":[{\"podSelector\":"
				"{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
			    k ? "," : "", k % N_NS, k, k % N_APPS, (k + 1) % N_APPS, port);
	}
	put(&b, "]}");
	return b.s;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Parse + compute + sync against *applied; the times in ms. */
static int apply(const char *json, struct pw_policy_state *applied, double *parse_ms, double *compute_ms,
		 double *sync_ms, struct pw_policy_stats *st)
{
	struct pw_policy_model m;
	struct pw_policy_state next;
	char err[256];
	double t0 = now_ms(), t1, t2;
	int ret = pw_policy_model_parse(json, &m, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "model: %s\n", err);
		return ret;
	}
	t1 = now_ms();
	ret = pw_policy_compute(&m, local, N_LOCAL + 2, &next);
	pw_policy_model_free(&m);
	if (ret)
		return ret;
	t2 = now_ms();
	memset(st, 0, sizeof(*st));
	ret = pw_policy_sync(&fds, applied, &next, st);
	*parse_ms = t1 - t0;
	*compute_ms = t2 - t1;
	*sync_ms = now_ms() - t2;
	pw_policy_state_free(applied);
	*applied = next;
	return ret;
}

static int setup(void)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);

	if (!pin_root)
		return -1;
	if_a = pwt_veth("pwb-h1", "pwb-p1");
	if_l = pwt_veth("pwb-h2", "pwb-p2");
	if (!if_a || !if_l)
		return -1;
	oopts.pin_root_path = pin_root;
	skel = pod_bpf__open_opts(&oopts);
	if (!skel)
		return -1;
	PWT_NODE1_CFG(skel->rodata);
	if (pod_bpf__load(skel))
		return -1;
	fds.ids = bpf_map__fd(skel->maps.pw_pol_ids);
	fds.ep = bpf_map__fd(skel->maps.pw_pol_ep);
	fds.rules = bpf_map__fd(skel->maps.pw_policy);
	pwt_endpoint_init(&ep_a, if_a, "10.244.1.2", 2);
	pwt_endpoint_init(&ep_l, if_l, "10.244.1.3", 3);
	/* Delivery rewrites the source MAC to l's host_mac: make that a's own
	 * MAC, so the repeated (rewritten) skb still passes anti-spoofing. */
	memcpy(ep_a.mac, ep_l.host_mac, 6);
	if (pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_a) ||
	    pwt_endpoint_add(bpf_map__fd(skel->maps.pw_endpoints), bpf_map__fd(skel->maps.pw_ep_ifindex), &ep_l))
		return -1;
	local[0] = (struct pw_local_pod){ .ip = 0x0af40102, .ns = "ns-0", .name = "a" };
	local[1] = (struct pw_local_pod){ .ip = 0x0af40103, .ns = "ns-0", .name = "measured" };
	for (int i = 0; i < N_LOCAL; i++) {
		local[i + 2].ip = 0x0af4010a + (uint32_t)i;
		snprintf(local[i + 2].ns, sizeof(local[i + 2].ns), "ns-%d", i % N_NS);
		snprintf(local[i + 2].name, sizeof(local[i + 2].name), "p%d", i);
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median ns per run of a TCP packet a -> measured:dport (sport fixed). */
static double measure(uint16_t dport, int expect_ret, int calls)
{
	uint32_t *d = calloc((size_t)calls, sizeof(*d));
	uint8_t pkt[PWT_MAX_PKT], out[PWT_MAX_PKT];
	struct __sk_buff ctx;
	double med;

	if (!d)
		return -1;
	for (int i = 0; i < calls; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts);
		struct pwt_udp_spec s = {
			.src_mac = ep_a.mac, .dst_mac = ep_a.host_mac, .saddr = pwt_ip("10.244.1.2"),
			.daddr = pwt_ip("10.244.1.3"), .sport = 40000, .dport = dport, .ttl = 255,
		};
		size_t len = pwt_build_tcp(pkt, &s);

		memset(&ctx, 0, sizeof(ctx));
		ctx.ifindex = if_a;
		opts.data_in = pkt;
		opts.data_size_in = (uint32_t)len;
		opts.data_out = out;
		opts.data_size_out = sizeof(out);
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
		opts.repeat = REPEAT;
		if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.pod_ingress), &opts) ||
		    (int)opts.retval != expect_ret) {
			fprintf(stderr, "test run: errno %d retval %d, expected %d\n", errno, (int)opts.retval, expect_ret);
			free(d);
			return -1;
		}
		d[i] = opts.duration;
	}
	qsort(d, (size_t)calls, sizeof(*d), cmp_u32);
	med = d[calls / 2];
	free(d);
	return med;
}

int main(int argc, char **argv)
{
	static const int ns[] = { 0, 100, 1000 };
	int calls = argc > 1 ? atoi(argv[1]) : 2000;
	struct pw_policy_state applied = { 0 };
	struct pw_policy_stats st;
	double p, c, s;

	if (calls < 1 || setup()) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	printf("NetworkPolicy costs: %d pods (%d on this node, %d label sets, %d namespaces), %d policies\n\n", N_PODS,
	       N_LOCAL + 2, N_APPS, N_NS, N_POLS);
	printf("%-44s %10s %10s %10s %8s %8s\n", "apply", "parse ms", "compute ms", "sync ms", "writes", "deletes");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char *json = model(ns[i], -1, 0), name[64];
		double ch[21];
		unsigned long w = 0, dl = 0;

		if (apply(json, &applied, &p, &c, &s, &st))
			return 1;
		snprintf(name, sizeof(name), "%s, %d selecting the pod", i ? "then" : "empty maps", ns[i]);
		printf("%-44s %10.1f %10.1f %10.1f %8lu %8lu\n", name, p, c, s, st.writes, st.deletes);
		free(json);
		/* One policy changes its port, 21 times (back and forth). */
		for (int k = 0; k < 21; k++) {
			json = model(ns[i], ns[i] ? ns[i] / 2 : 500, k % 2 ? 0 : 7);
			if (apply(json, &applied, &p, &c, &s, &st))
				return 1;
			ch[k] = p + c + s;
			w += st.writes;
			dl += st.deletes;
			free(json);
		}
		qsort(ch, 21, sizeof(ch[0]), cmp_dbl);
		snprintf(name, sizeof(name), "one policy changed (%d selecting): p50/p99", ns[i]);
		printf("%-44s %10.1f %10.1f %10s %8.1f %8.1f  (ms total; writes/deletes per change)\n", name, ch[10],
		       ch[20], "", (double)w / 21, (double)dl / 21);
		/* Back to the plain model for the datapath numbers. */
		json = model(ns[i], -1, 0);
		if (apply(json, &applied, &p, &c, &s, &st))
			return 1;
		free(json);
		if (!ns[i]) {
			printf("%-44s %10.0f ns/packet\n", "datapath, pod not policed (0 selecting)",
			       measure(999, TC_ACT_REDIRECT, calls));
		} else {
			snprintf(name, sizeof(name), "datapath, %d selecting: denied", ns[i]);
			printf("%-44s %10.0f ns/packet\n", name, measure(999, TC_ACT_SHOT, calls));
			snprintf(name, sizeof(name), "datapath, %d selecting: established", ns[i]);
			printf("%-44s %10.0f ns/packet\n", name, measure(1000, TC_ACT_REDIRECT, calls));
		}
		printf("\n");
	}
	pw_policy_state_free(&applied);
	pod_bpf__destroy(skel);
	return 0;
}
