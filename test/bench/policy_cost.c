/* NetworkPolicy costs (docs/policy.md "Measured"):
 *
 * 1. Userspace: a node with 100 local pods in a cluster of 10,000 pods
 *    (500 label sets in 10 namespaces) and 1,000 policies, N of them
 *    selecting the measured pod: time to load the model into the
 *    incremental computation (userspace/lib/policy_inc.c), flush it and
 *    write the maps from empty (and, for comparison, the from-scratch
 *    pw_policy_compute); then single changes, each timed from the change
 *    to the maps written (p50/p99 over CHANGES changes, back and forth):
 *    a policy's port, through the whole JSON model (what the agent does
 *    with a config) and as one object (what a Kubernetes watch event
 *    gives: that policy's JSON parsed and set); a remote pod's labels, as
 *    one object.
 *    The same through the Kubernetes source's path (what the agent does
 *    with watch events, without the HTTP): API objects parsed and cached
 *    (pw_k8s_upsert), handed over object by object
 *    (pw_k8s_policy_changes -> pw_policy_inc_apply), flushed and written.
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
#include "k8s_model.h"
#include "policy.h"

#define REPEAT   250
#define N_PODS   10000
#define N_LOCAL  100
#define N_APPS   500
#define N_NS     10
#define N_POLS   1000
#define CHANGES  200

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

/* Policy k of the model: N of the 1,000 policies select "measured"
 * (policy k allows app-(k%500) from any namespace on port 1000+k); the
 * others select other pods. chg moves the port by chg. */
static void put_policy(struct buf *b, int k, int n_selecting, int chg)
{
	int port = 1000 + k + chg;

	if (k < n_selecting)
		put(b, "{\"metadata\":{\"namespace\":\"ns-0\",\"name\":\"sel-%d\"},\"spec\":{\"podSelector\":"
		       "{\"matchLabels\":{\"app\":\"measured\"}},\"ingress\":[{\"from\":[{\"namespaceSelector\":{},"
		       "\"podSelector\":{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
		    k, k % N_APPS, port);
	else
		put(b, "{\"metadata\":{\"namespace\":\"ns-%d\",\"name\":\"bg-%d\"},\"spec\":{\"podSelector\":"
		       "{\"matchLabels\":{\"app\":\"app-%d\"}},\"ingress\":[{\"from\":[{\"podSelector\":"
		       "{\"matchLabels\":{\"app\":\"app-%d\"}}}],\"ports\":[{\"port\":%d}]}]}}",
		    k % N_NS, k, k % N_APPS, (k + 1) % N_APPS, port);
}

/* Remote pod i (i >= N_LOCAL); tier "y" instead of "x" when moved. */
static void put_pod(struct buf *b, int i, bool moved)
{
	put(b, "{\"namespace\":\"ns-%d\",\"name\":\"p%d\",\"labels\":{\"app\":\"app-%d\",\"tier\":\"%s\"}", i % N_NS,
	    i, i % N_APPS, moved ? "y" : "x");
	if (i >= N_LOCAL)
		put(b, ",\"ip\":\"10.250.%d.%d\"", i / 250, i % 250 + 1);
	put(b, "}");
}

/* Pod i: namespace ns-(i % 10), app-(i % 500); the first N_LOCAL are this
 * node's (10.244.1.10+), the rest elsewhere (10.250.x.y). Pod "a" (ns-0,
 * app-0) sends, pod "measured" (ns-0, app=measured) receives. chg moves
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
		put(&b, ",");
		put_pod(&b, i, false);
	}
	put(&b, "],\"networkPolicies\":[");
	for (int k = 0; k < N_POLS; k++) {
		if (k)
			put(&b, ",");
		put_policy(&b, k, n_selecting, k == changed ? chg : 0);
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

static struct pw_policy_inc *inc;

/* This thread's CPU time: on a shared machine the wall clock also counts
 * the time other processes had the CPU. */
static double cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The from-scratch computation (what every change cost before the
 * incremental one), for comparison: parse and compute times in ms. */
static int from_scratch(const char *json, double *parse_ms, double *compute_ms, int *n_rules)
{
	struct pw_policy_model m;
	struct pw_policy_state next;
	char err[256];
	double t0 = now_ms(), t1;
	int ret = pw_policy_model_parse(json, &m, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "model: %s\n", err);
		return ret;
	}
	t1 = now_ms();
	ret = pw_policy_compute(&m, local, N_LOCAL + 2, &next);
	*parse_ms = t1 - t0;
	*compute_ms = now_ms() - t1;
	*n_rules = next.n_rules;
	pw_policy_model_free(&m);
	pw_policy_state_free(&next);
	return ret;
}

/* Flush the engine and write what changed; *flush_ms, *sync_ms. */
static int flush_sync(double *flush_ms, double *sync_ms, struct pw_policy_stats *st)
{
	struct pw_policy_state old, new;
	double t0 = now_ms(), t1;
	int ret = pw_policy_inc_flush(inc, &old, &new, NULL);

	if (ret)
		return ret;
	t1 = now_ms();
	memset(st, 0, sizeof(*st));
	ret = pw_policy_sync(&fds, &old, &new, st);
	*flush_ms = t1 - t0;
	*sync_ms = now_ms() - t1;
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	return ret;
}

/* The whole JSON model: load + flush + sync; the times in ms. */
static int apply(const char *json, double *load_ms, double *flush_ms, double *sync_ms, struct pw_policy_stats *st)
{
	char err[256];
	double t0 = now_ms();
	int ret = pw_policy_inc_load_json(inc, json, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "model: %s\n", err);
		return ret;
	}
	*load_ms = now_ms() - t0;
	return flush_sync(flush_ms, sync_ms, st);
}

/* One object from its JSON text, set, flushed and written. */
static int apply_object(enum pw_policy_section sec, const char *text, struct pw_policy_stats *st)
{
	union {
		struct pw_pod_model pod;
		struct pw_netpol pol;
	} o;
	char err[256];
	double f, s;
	int ret = pw_policy_parse_element(sec, text, strlen(text), 0, &o, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "object: %s\n", err);
		return ret;
	}
	if (sec == PW_POL_SEC_PODS) {
		ret = pw_policy_inc_set_pod(inc, &o.pod);
		pw_policy_pod_free(&o.pod);
	} else {
		ret = pw_policy_inc_set_policy(inc, &o.pol);
		pw_policy_netpol_free(&o.pol);
	}
	if (!ret)
		ret = flush_sync(&f, &s, st);
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
	fds.gate = bpf_map__fd(skel->maps.pw_pol_gate);
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

static void report_changes(const char *name, double *ms, double *cpu, int n, unsigned long w, unsigned long d)
{
	qsort(ms, (size_t)n, sizeof(*ms), cmp_dbl);
	qsort(cpu, (size_t)n, sizeof(*cpu), cmp_dbl);
	printf("%-52s %8.2f %8.2f %8.2f %8.2f %8.2f  %5.1f / %.1f\n", name, ms[n / 2], ms[(n * 99 + 99) / 100 - 1],
	       ms[n - 1], cpu[n / 2], cpu[(n * 99 + 99) / 100 - 1], (double)w / n, (double)d / n);
}

/* ---- the Kubernetes source's path ---- */

/* Pod i as the API serves it (trimmed to what the model reads). Local
 * pods are a, measured and p0..p(N_LOCAL-1), as in local[]. */
static void put_api_pod(struct buf *b, const char *ns, const char *name, const char *app, const char *tier,
			uint32_t ip)
{
	put(b, "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"labels\":{\"app\":\"%s\"", ns, name, app);
	if (tier)
		put(b, ",\"tier\":\"%s\"", tier);
	put(b, "}},\"spec\":{\"nodeName\":\"n\",\"containers\":[{\"name\":\"c\"}]},\"status\":{\"phase\":\"Running\","
	       "\"podIPs\":[{\"ip\":\"%u.%u.%u.%u\"}]}}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void api_pod(struct buf *b, int i, bool moved)
{
	char ns[16], name[16], app[16];

	snprintf(ns, sizeof(ns), "ns-%d", i % N_NS);
	snprintf(name, sizeof(name), "p%d", i);
	snprintf(app, sizeof(app), "app-%d", i % N_APPS);
	put_api_pod(b, ns, name, app, moved ? "y" : "x",
		    i < N_LOCAL ? 0x0af4010a + (uint32_t)i : (10u << 24) | (250u << 16) | (uint32_t)(i / 250) << 8 | (uint32_t)(i % 250 + 1));
}

/* One API object, as an informer hands it over: parsed and cached. */
static int upsert(struct pw_k8s_model *m, enum pw_k8s_kind kind, const char *text)
{
	cJSON *o = cJSON_Parse(text);
	int ret = o ? pw_k8s_upsert(m, kind, o) : -EINVAL;

	cJSON_Delete(o);
	return ret < 0 ? ret : 0;
}

static int k8s_objects(struct pw_k8s_model *m, int n_sel)
{
	struct buf b = { malloc(4096), 0, 4096 };
	int ret = 0;

	for (int i = 0; i < N_NS && !ret; i++) {
		b.len = 0;
		put(&b, "{\"metadata\":{\"name\":\"ns-%d\",\"labels\":{\"team\":\"t%d\"}}}", i, i % 3);
		ret = upsert(m, PW_K8S_NAMESPACE, b.s);
	}
	b.len = 0;
	put_api_pod(&b, "ns-0", "a", "app-0", NULL, 0x0af40102);
	ret = ret ? ret : upsert(m, PW_K8S_POD, b.s);
	b.len = 0;
	put_api_pod(&b, "ns-0", "measured", "measured", NULL, 0x0af40103);
	ret = ret ? ret : upsert(m, PW_K8S_POD, b.s);
	for (int i = 0; i < N_PODS - 2 && !ret; i++) {
		b.len = 0;
		api_pod(&b, i, false);
		ret = upsert(m, PW_K8S_POD, b.s);
	}
	for (int k = 0; k < N_POLS && !ret; k++) {
		b.len = 0;
		put_policy(&b, k, n_sel, 0);
		ret = upsert(m, PW_K8S_NETPOL, b.s);
	}
	free(b.s);
	return ret;
}

/* What the agent does after a watch event: the model's changes into the
 * engine, flushed, written (a reset diffs against what the maps hold). */
static int k8s_apply(struct pw_k8s_model *m, struct pw_policy_inc **e, double *take_ms, double *flush_ms,
		     double *sync_ms, struct pw_policy_stats *st)
{
	struct pw_policy_change *c;
	struct pw_policy_state old, new, have;
	bool reset;
	char err[512];
	double t0 = now_ms(), t1;
	int n, ret = pw_k8s_policy_changes(m, &c, &n, &reset);

	if (ret)
		return ret;
	if (reset) {
		pw_policy_inc_free(*e);
		*e = pw_policy_inc_new(true);
	}
	ret = *e ? pw_policy_inc_apply(*e, c, n, err, sizeof(err)) : -ENOMEM;
	pw_policy_changes_free(c, n);
	if (ret) {
		fprintf(stderr, "apply: %s\n", err);
		return ret;
	}
	ret = pw_policy_inc_set_local(*e, local, N_LOCAL + 2);   /* the agent's IPAM pods, every time */
	t1 = now_ms();
	*take_ms = t1 - t0;
	if (!ret)
		ret = pw_policy_inc_flush(*e, &old, &new, NULL);
	if (ret)
		return ret;
	*flush_ms = now_ms() - t1;
	t1 = now_ms();
	memset(st, 0, sizeof(*st));
	if (reset) {
		pw_policy_state_free(&old);
		ret = pw_policy_state_read(&fds, &have);
		old = have;
		if (ret)
			memset(&old, 0, sizeof(old));
	}
	if (!ret)
		ret = pw_policy_sync(&fds, &old, &new, st);
	*sync_ms = now_ms() - t1;
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	return ret;
}

/* CHANGES changes of one kind, back and forth (the model ends as it
 * began): a policy's port through the whole JSON model (kind 0), as one
 * model object (1), as an API object through the Kubernetes model m and
 * its engine *e (3); a remote pod's labels as one model object (2), as an
 * API object (4). */
static int changes(int n_sel, int kind, struct pw_k8s_model *m, struct pw_policy_inc **e)
{
	static const char *const what[] = {
		"policy port changed, whole JSON model", "policy port changed, one object",
		"remote pod's labels changed, one object", "API: policy port changed", "API: remote pod's labels changed",
	};
	static double ms[CHANGES], cpu[CHANGES];
	struct pw_policy_stats st;
	unsigned long w = 0, d = 0;
	int changed = n_sel ? n_sel / 2 : 500, pod = N_LOCAL + 7;
	char name[96];

	for (int k = 0; k < CHANGES; k++) {
		int chg = k % 2 ? 0 : 7;
		struct buf b = { malloc(4096), 0, 4096 };
		double l, f, s, t0 = now_ms(), c0 = cpu_ms();
		int ret;

		if (kind == 0) {
			char *json = model(n_sel, changed, chg);

			t0 = now_ms();   /* the text is the input: making it is not the change's cost */
			c0 = cpu_ms();
			ret = apply(json, &l, &f, &s, &st);
			free(json);
		} else if (kind == 1 || kind == 3) {
			put_policy(&b, changed, n_sel, chg);
			ret = kind == 1 ? apply_object(PW_POL_SEC_POLS, b.s, &st) : upsert(m, PW_K8S_NETPOL, b.s);
		} else {
			if (kind == 2)
				put_pod(&b, pod, chg != 0);
			else
				api_pod(&b, pod, chg != 0);
			ret = kind == 2 ? apply_object(PW_POL_SEC_PODS, b.s, &st) : upsert(m, PW_K8S_POD, b.s);
		}
		if (!ret && kind >= 3)
			ret = k8s_apply(m, e, &l, &f, &s, &st);
		ms[k] = now_ms() - t0;
		cpu[k] = cpu_ms() - c0;
		free(b.s);
		if (ret)
			return ret;
		w += st.writes;
		d += st.deletes;
	}
	snprintf(name, sizeof(name), "%s (%d selecting)", what[kind], n_sel);
	report_changes(name, ms, cpu, CHANGES, w, d);
	return 0;
}

/* The agent's own path for N = 0 and 1,000, each from empty maps. */
static int k8s_section(void)
{
	static const int ns[] = { 0, 1000 };
	struct pw_policy_state have, none = { 0 };
	struct pw_policy_stats st;
	double t, f, s;

	printf("\n%-52s %9s %9s %9s %9s %8s %8s\n", "Kubernetes source: first apply from empty maps", "take ms",
	       "flush ms", "sync ms", "cpu ms", "writes", "deletes");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct pw_cidr cluster = { 0x0a000000, 8 }, svc = { 0x0a600000, 12 };
		struct pw_k8s_model *m = pw_k8s_model_new("n", &cluster, &svc);
		struct pw_policy_inc *e = NULL;
		double c0, obj_ms;
		char name[96];
		int ret;

		/* Empty the maps (the earlier sections filled them). */
		if (!m || pw_policy_state_read(&fds, &have) || pw_policy_sync(&fds, &have, &none, &st))
			return 1;
		pw_policy_state_free(&have);
		pw_k8s_policy_by_object(m);
		obj_ms = now_ms();
		ret = k8s_objects(m, ns[i]);
		obj_ms = now_ms() - obj_ms;
		c0 = cpu_ms();
		if (!ret)
			ret = k8s_apply(m, &e, &t, &f, &s, &st);
		c0 = cpu_ms() - c0;
		if (ret)
			return 1;
		snprintf(name, sizeof(name), "%d selecting (the %d API objects cached in %.0f ms)", ns[i],
			 N_NS + N_PODS + N_POLS, obj_ms);
		printf("%-52s %9.1f %9.1f %9.1f %9.1f %8lu %8lu\n", name, t, f, s, c0, st.writes, st.deletes);
		printf("  %-50s %8s %8s %8s %8s %8s  %s\n", "then one watch event, to the maps written", "p50 ms", "p99 ms",
		       "max ms", "cpu p50", "cpu p99", "writes / deletes");
		if (changes(ns[i], 3, m, &e) || changes(ns[i], 4, m, &e))
			return 1;
		pw_policy_inc_free(e);
		pw_k8s_model_free(m);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const int ns[] = { 0, 100, 1000 };
	int calls = argc > 1 ? atoi(argv[1]) : 2000;
	struct pw_policy_stats st;
	double l, f, s, p, c;
	int n_rules;

	inc = pw_policy_inc_new(true);
	if (calls < 1 || !inc || setup() || pw_policy_inc_set_local(inc, local, N_LOCAL + 2)) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	printf("NetworkPolicy costs: %d pods (%d on this node, %d label sets, %d namespaces), %d policies\n", N_PODS,
	       N_LOCAL + 2, N_APPS, N_NS, N_POLS);
	{
		double la[3] = { 0 };

		if (getloadavg(la, 3) == 3)
			printf("load average at the start: %.2f %.2f %.2f (ms: wall clock; cpu: this thread's CPU time)\n\n",
			       la[0], la[1], la[2]);
	}
	printf("%-52s %9s %9s %9s %9s %8s %8s\n", "apply the whole model (incremental engine)", "load ms", "flush ms",
	       "sync ms", "cpu ms", "writes", "deletes");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char *json = model(ns[i], -1, 0), name[96];
		double c0 = cpu_ms();

		if (apply(json, &l, &f, &s, &st))
			return 1;
		c0 = cpu_ms() - c0;
		snprintf(name, sizeof(name), "%s, %d selecting the pod", i ? "then" : "empty maps", ns[i]);
		printf("%-52s %9.1f %9.1f %9.1f %9.1f %8lu %8lu\n", name, l, f, s, c0, st.writes, st.deletes);
		if (from_scratch(json, &p, &c, &n_rules))
			return 1;
		printf("%-52s %9.1f %9.1f %9s %8d rule entries\n", "  from scratch (parse, pw_policy_compute)", p, c, "",
		       n_rules);
		free(json);
	}
	printf("\n%-52s %8s %8s %8s %8s %8s  %s\n", "one change, to the maps written", "p50 ms", "p99 ms", "max ms",
	       "cpu p50", "cpu p99", "writes / deletes");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char *json = model(ns[i], -1, 0);

		if (apply(json, &l, &f, &s, &st))
			return 1;
		free(json);
		for (int kind = 0; kind < 3; kind++)
			if (changes(ns[i], kind, NULL, NULL))
				return 1;
	}
	printf("\n");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char *json = model(ns[i], -1, 0), name[96];

		/* The model as measured, for the datapath numbers. */
		if (apply(json, &l, &f, &s, &st))
			return 1;
		free(json);
		if (!ns[i]) {
			printf("%-52s %9.0f ns/packet\n", "datapath, pod not policed (0 selecting)",
			       measure(999, TC_ACT_REDIRECT, calls));
		} else {
			snprintf(name, sizeof(name), "datapath, %d selecting: denied", ns[i]);
			printf("%-52s %9.0f ns/packet\n", name, measure(999, TC_ACT_SHOT, calls));
			snprintf(name, sizeof(name), "datapath, %d selecting: established", ns[i]);
			printf("%-52s %9.0f ns/packet\n", name, measure(1000, TC_ACT_REDIRECT, calls));
		}
	}
	if (k8s_section())
		return 1;
	pw_policy_inc_free(inc);
	pod_bpf__destroy(skel);
	return 0;
}
