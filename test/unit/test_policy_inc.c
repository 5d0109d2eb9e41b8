/* Incremental NetworkPolicy computation (userspace/lib/policy_inc.c):
 * random sequences of changes (namespaces, pods, policies, this node's
 * pods) loaded into the engine and flushed; the map contents the flushes
 * add up to must equal pw_policy_compute's from scratch on the same model
 * after every step, and each flush must name as "old" exactly what the
 * maps held. Plus: a flush without changes writes nothing; one policy's
 * port change writes one entry and deletes one; one remote pod's label
 * change rewrites its identity entry and only the rows it affects. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "policy.h"

#define N_NS    4
#define N_PODS  40
#define N_POLS  14
#define N_LOCAL 10

struct gen {
	unsigned seed;
	char ns[N_NS][256];
	char pods[N_PODS][512];
	bool pod_on[N_PODS];
	char pols[N_POLS][1024];
	bool pol_on[N_POLS];
	struct pw_local_pod local[N_LOCAL];
	int n_local;
};

static int rnd(struct gen *g, int n)
{
	return rand_r(&g->seed) % n;
}

static const char *apps[] = { "a", "b", "c", "d" };
static const char *cidrs[] = { "10.0.0.0/8", "10.1.0.0/16", "10.244.0.0/16", "192.168.0.0/16", "10.244.1.0/24" };

static void gen_ns(struct gen *g, int i)
{
	snprintf(g->ns[i], sizeof(g->ns[i]), "{\"name\":\"ns%d\",\"labels\":{\"team\":\"t%d\"%s}}", i, rnd(g, 2),
		 rnd(g, 2) ? ",\"env\":\"prod\"" : "");
}

static void gen_pod(struct gen *g, int i)
{
	char ports[128] = "", ip[48] = "";

	if (rnd(g, 3) == 0)
		snprintf(ports, sizeof(ports), ",\"ports\":[{\"name\":\"http\",\"containerPort\":%d}%s]",
			 rnd(g, 2) ? 80 : 8080, rnd(g, 2) ? ",{\"name\":\"dns\",\"containerPort\":53,\"protocol\":\"UDP\"}" : "");
	if (rnd(g, 5))
		snprintf(ip, sizeof(ip), ",\"ip\":\"10.250.%d.%d\"", i / 100, i % 100 + 1 + rnd(g, 2) * 100);
	snprintf(g->pods[i], sizeof(g->pods[i]),
		 "{\"namespace\":\"ns%d\",\"name\":\"pod%d\",\"labels\":{\"app\":\"%s\"%s}%s%s}", i % N_NS, i,
		 apps[rnd(g, 4)], rnd(g, 2) ? ",\"tier\":\"x\"" : "", ip, ports);
}

static void gen_selector(struct gen *g, char *out, size_t size)
{
	switch (rnd(g, 4)) {
	case 0:
		snprintf(out, size, "{}");
		break;
	case 1:
		snprintf(out, size, "{\"matchLabels\":{\"app\":\"%s\"}}", apps[rnd(g, 4)]);
		break;
	case 2:
		snprintf(out, size, "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"%s\"}]}",
			 rnd(g, 2) ? "Exists" : "DoesNotExist");
		break;
	default:
		snprintf(out, size, "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"%s\",\"values\":[\"%s\",\"%s\"]}]}",
			 rnd(g, 2) ? "In" : "NotIn", apps[rnd(g, 4)], apps[rnd(g, 4)]);
	}
}

static void gen_peer(struct gen *g, char *out, size_t size)
{
	char a[160], b[160];

	gen_selector(g, a, sizeof(a));
	switch (rnd(g, 5)) {
	case 0:
		snprintf(out, size, "{\"podSelector\":%s}", a);
		break;
	case 1:
		snprintf(out, size, "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"t%d\"}}}", rnd(g, 2));
		break;
	case 2:
		gen_selector(g, b, sizeof(b));
		snprintf(out, size, "{\"namespaceSelector\":%s,\"podSelector\":%s}",
			 rnd(g, 2) ? "{}" : "{\"matchLabels\":{\"env\":\"prod\"}}", b);
		break;
	case 3: {
		int c = rnd(g, 3);

		snprintf(out, size, "{\"ipBlock\":{\"cidr\":\"%s\"%s}}", cidrs[c],
			 c == 0 ? ",\"except\":[\"10.1.0.0/16\"]" : c == 2 ? ",\"except\":[\"10.244.1.0/24\"]" : "");
		break;
	}
	default:
		snprintf(out, size, "{\"ipBlock\":{\"cidr\":\"%s\"}}", cidrs[3 + rnd(g, 2)]);
	}
}

static void gen_ports(struct gen *g, char *out, size_t size)
{
	switch (rnd(g, 5)) {
	case 0:
		out[0] = '\0';
		break;
	case 1:
		snprintf(out, size, ",\"ports\":[{\"port\":%d}]", 80 + rnd(g, 3));
		break;
	case 2:
		snprintf(out, size, ",\"ports\":[{\"port\":%d,\"endPort\":%d,\"protocol\":\"UDP\"}]", 1000, 1000 + rnd(g, 600));
		break;
	case 3:
		snprintf(out, size, ",\"ports\":[{\"port\":\"http\"},{\"port\":\"dns\",\"protocol\":\"UDP\"}]");
		break;
	default:
		snprintf(out, size, ",\"ports\":[{\"protocol\":\"UDP\"}]");
	}
}

static void gen_rules(struct gen *g, const char *key, const char *peers_key, char *out, size_t size)
{
	int n = rnd(g, 3);
	size_t len = (size_t)snprintf(out, size, ",\"%s\":[", key);

	for (int r = 0; r < n; r++) {
		char p1[256] = "", p2[256] = "", ports[128];
		int np = rnd(g, 3);

		if (np > 0)
			gen_peer(g, p1, sizeof(p1));
		if (np > 1)
			gen_peer(g, p2, sizeof(p2));
		gen_ports(g, ports, sizeof(ports));
		len += (size_t)snprintf(out + len, size - len, "%s{\"%s\":[%s%s%s]%s}", r ? "," : "", peers_key, p1,
					np > 1 ? "," : "", p2, ports);
	}
	snprintf(out + len, size - len, "]");
}

static void gen_pol(struct gen *g, int i)
{
	char sel[160], in[1024] = "", eg[1024] = "";
	const char *types[] = { "", ",\"policyTypes\":[\"Ingress\"]", ",\"policyTypes\":[\"Egress\"]",
				",\"policyTypes\":[\"Ingress\",\"Egress\"]" };

	gen_selector(g, sel, sizeof(sel));
	if (rnd(g, 4))
		gen_rules(g, "ingress", "from", in, sizeof(in));
	if (rnd(g, 2))
		gen_rules(g, "egress", "to", eg, sizeof(eg));
	snprintf(g->pols[i], sizeof(g->pols[i]),
		 "{\"metadata\":{\"namespace\":\"ns%d\",\"name\":\"pol%d\"},\"spec\":{\"podSelector\":%s%s%s%s}}",
		 i % N_NS, i, sel, types[rnd(g, 4)], in, eg);
}

static void gen_local(struct gen *g)
{
	g->n_local = 0;
	for (int i = 0; i < N_LOCAL; i++) {
		struct pw_local_pod *l = &g->local[g->n_local];

		if (rnd(g, 4) == 0)
			continue;
		l->ip = 0x0af40100u + 10 + (uint32_t)i;
		if (rnd(g, 5) == 0)
			snprintf(l->name, sizeof(l->name), "stray%d", i);   /* not in the model */
		else
			snprintf(l->name, sizeof(l->name), "pod%d", i * 4 + rnd(g, 2) * 4 * N_NS / 4);
		snprintf(l->ns, sizeof(l->ns), "ns%d", i % N_NS);
		if (!strncmp(l->name, "pod", 3))
			snprintf(l->ns, sizeof(l->ns), "ns%d", atoi(l->name + 3) % N_NS);
		g->n_local++;
	}
}

static char *model_json(const struct gen *g)
{
	size_t cap = 1 << 16, len = 0;
	char *s = malloc(cap);
	bool first = true;

	len += (size_t)snprintf(s + len, cap - len, "{\"namespaces\":[");
	for (int i = 0; i < N_NS; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", g->ns[i]);
	len += (size_t)snprintf(s + len, cap - len, "],\"pods\":[");
	for (int i = 0; i < N_PODS; i++)
		if (g->pod_on[i]) {
			len += (size_t)snprintf(s + len, cap - len, "%s%s", first ? "" : ",", g->pods[i]);
			first = false;
		}
	len += (size_t)snprintf(s + len, cap - len, "],\"networkPolicies\":[");
	first = true;
	for (int i = 0; i < N_POLS; i++)
		if (g->pol_on[i]) {
			len += (size_t)snprintf(s + len, cap - len, "%s%s", first ? "" : ",", g->pols[i]);
			first = false;
		}
	snprintf(s + len, cap - len, "]}");
	return s;
}

static void random_change(struct gen *g)
{
	int what = rnd(g, 10), i;

	switch (what) {
	case 0:
		gen_ns(g, rnd(g, N_NS));
		break;
	case 1: case 2: case 3:
		i = rnd(g, N_PODS);
		if (g->pod_on[i] && rnd(g, 4) == 0)
			g->pod_on[i] = false;
		else {
			g->pod_on[i] = true;
			gen_pod(g, i);
		}
		break;
	case 4: case 5: case 6: case 7:
		i = rnd(g, N_POLS);
		if (g->pol_on[i] && rnd(g, 4) == 0)
			g->pol_on[i] = false;
		else {
			g->pol_on[i] = true;
			gen_pol(g, i);
		}
		break;
	default:
		gen_local(g);
	}
}

/* ---- the maps as the flushes leave them ---- */

/* Applies a delta to a sorted array: every old entry must be there with
 * that value (else *bad), goes; every new entry is put. Re-sorted. */
static void apply_one(void **arr, int *n, const void *old, int n_old, const void *new, int n_new, size_t size,
		      size_t ksz, int *bad)
{
	char *a = *arr;
	int m = 0;

	for (int i = 0; i < *n; i++) {
		const char *e = a + (size_t)i * size;
		bool gone = false;

		for (int j = 0; j < n_old && !gone; j++)
			if (!memcmp(e, (const char *)old + (size_t)j * size, ksz)) {
				gone = true;
				if (memcmp(e, (const char *)old + (size_t)j * size, size))
					(*bad)++;
			}
		if (!gone)
			memmove(a + (size_t)m++ * size, e, size);
	}
	if (*n - m != n_old)
		(*bad)++;   /* an old entry that was not in the maps */
	a = realloc(a, (size_t)(m + n_new) * size + 1);
	if (n_new)
		memcpy(a + (size_t)m * size, new, (size_t)n_new * size);
	*arr = a;
	*n = m + n_new;
}

static int apply_delta(struct pw_policy_state *maps, const struct pw_policy_state *old,
		       const struct pw_policy_state *new)
{
	int bad = 0;

	apply_one((void **)&maps->ids, &maps->n_ids, old->ids, old->n_ids, new->ids, new->n_ids, sizeof(*maps->ids),
		  sizeof(maps->ids->k), &bad);
	apply_one((void **)&maps->eps, &maps->n_eps, old->eps, old->n_eps, new->eps, new->n_eps, sizeof(*maps->eps),
		  sizeof(maps->eps->k), &bad);
	apply_one((void **)&maps->rules, &maps->n_rules, old->rules, old->n_rules, new->rules, new->n_rules,
		  sizeof(*maps->rules), sizeof(maps->rules->k), &bad);
	pw_policy_state_sort(maps);
	return bad;
}

static bool same_state(const struct pw_policy_state *a, const struct pw_policy_state *b, char *why, size_t size)
{
	if (a->n_ids != b->n_ids || (a->n_ids && memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(*a->ids)))) {
		snprintf(why, size, "identity entries differ (%d vs %d)", a->n_ids, b->n_ids);
		return false;
	}
	if (a->n_eps != b->n_eps || (a->n_eps && memcmp(a->eps, b->eps, (size_t)a->n_eps * sizeof(*a->eps)))) {
		snprintf(why, size, "pod flags differ (%d vs %d)", a->n_eps, b->n_eps);
		return false;
	}
	if (a->n_rules != b->n_rules ||
	    (a->n_rules && memcmp(a->rules, b->rules, (size_t)a->n_rules * sizeof(*a->rules)))) {
		snprintf(why, size, "rule entries differ (%d vs %d)", a->n_rules, b->n_rules);
		return false;
	}
	return true;
}

static int reference(const char *json, const struct gen *g, struct pw_policy_state *out, char *err)
{
	struct pw_policy_model m;
	int ret = pw_policy_model_parse(json, &m, err, 256);

	if (ret)
		return ret;
	ret = pw_policy_compute(&m, g->local, g->n_local, out);
	pw_policy_model_free(&m);
	return ret;
}

static void test_random_sequences(void)
{
	int mismatches = 0, errors = 0, bad_old = 0, steps = 0, nonempty = 0;
	char why[256] = "", err[256] = "";

	for (unsigned run = 0; run < 20; run++) {
		struct gen g = { .seed = 1000 + run };
		struct pw_policy_inc *e = pw_policy_inc_new(false);
		struct pw_policy_state maps = { 0 };

		for (int i = 0; i < N_NS; i++)
			gen_ns(&g, i);
		for (int i = 0; i < N_PODS; i++)
			if ((g.pod_on[i] = rnd(&g, 3) != 0))
				gen_pod(&g, i);
		for (int i = 0; i < N_POLS; i++)
			if ((g.pol_on[i] = rnd(&g, 2) != 0))
				gen_pol(&g, i);
		gen_local(&g);
		for (int step = 0; step < 150 && e && !errors; step++) {
			struct pw_policy_state old, new, ref, full;
			int batch = step == 0 ? 0 : 1 + rnd(&g, step % 20 == 19 ? 12 : 2);
			char *json;

			for (int k = 0; k < batch; k++)
				random_change(&g);
			json = model_json(&g);
			if (pw_policy_inc_load_json(e, json, err, sizeof(err)) ||
			    pw_policy_inc_set_local(e, g.local, g.n_local) || pw_policy_inc_flush(e, &old, &new, NULL) ||
			    reference(json, &g, &ref, err)) {
				errors++;
				printf("# run %u step %d: %s\n", run, step, err);
				free(json);
				break;
			}
			bad_old += apply_delta(&maps, &old, &new);
			nonempty += ref.n_rules > 0;
			if (!same_state(&maps, &ref, why, sizeof(why)) && mismatches++ < 3) {
				printf("# run %u step %d: maps after the deltas vs from scratch: %s\n", run, step, why);
				if (getenv("PWT_DEBUG")) {
					printf("%s\n", json);
					for (int i = 0; i < maps.n_rules; i++)
						printf("inc %08x d%d p%d id%u port%02x%02x/%u pol%08x\n", pw_ip4_from_bytes(maps.rules[i].k.pod), maps.rules[i].k.dir, maps.rules[i].k.proto, maps.rules[i].k.identity, maps.rules[i].k.port[0], maps.rules[i].k.port[1], maps.rules[i].k.prefixlen, maps.rules[i].v.policy_id);
					for (int i = 0; i < ref.n_rules; i++)
						printf("ref %08x d%d p%d id%u port%02x%02x/%u pol%08x\n", pw_ip4_from_bytes(ref.rules[i].k.pod), ref.rules[i].k.dir, ref.rules[i].k.proto, ref.rules[i].k.identity, ref.rules[i].k.port[0], ref.rules[i].k.port[1], ref.rules[i].k.prefixlen, ref.rules[i].v.policy_id);
				}
			}
			if (pw_policy_inc_state(e, &full) == 0) {
				if (!same_state(&full, &ref, why, sizeof(why)) && mismatches++ < 3)
					printf("# run %u step %d: engine state vs from scratch: %s\n", run, step, why);
				pw_policy_state_free(&full);
			}
			steps++;
			pw_policy_state_free(&old);
			pw_policy_state_free(&new);
			pw_policy_state_free(&ref);
			free(json);
		}
		pw_policy_state_free(&maps);
		pw_policy_inc_free(e);
	}
	PWT_CHECK(!errors && steps == 20 * 150, "random changes load and compute", "%d errors, %d steps", errors, steps);
	PWT_CHECK(nonempty > steps / 2, "random models police local pods", "%d of %d steps had rule entries", nonempty,
		  steps);
	PWT_CHECK(!mismatches, "incremental maps equal the from-scratch computation", "%d mismatches", mismatches);
	PWT_CHECK(!bad_old, "each flush's old entries are what the maps held", "%d wrong", bad_old);
}

/* ---- what single changes write ---- */

static const char *small_model =
	"{\"namespaces\":[{\"name\":\"ns0\"}],\"pods\":["
	"{\"namespace\":\"ns0\",\"name\":\"web\",\"labels\":{\"app\":\"web\"}},"
	"{\"namespace\":\"ns0\",\"name\":\"cli\",\"labels\":{\"app\":\"cli\"},\"ip\":\"10.250.0.2\"},"
	"{\"namespace\":\"ns0\",\"name\":\"other\",\"labels\":{\"app\":\"other\"},\"ip\":\"10.250.0.3\"}],"
	"\"networkPolicies\":[{\"metadata\":{\"namespace\":\"ns0\",\"name\":\"p\"},\"spec\":{\"podSelector\":"
	"{\"matchLabels\":{\"app\":\"web\"}},\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"cli\"}}}],"
	"\"ports\":[{\"port\":%d}]}]}}]}";

static void count_diff(const void *o, int no, const void *n, int nn, size_t size, size_t ksz,
		       struct pw_policy_stats *st)
{
	for (int j = 0; j < nn; j++) {
		bool same = false;

		for (int i = 0; i < no && !same; i++)
			same = !memcmp((const char *)o + (size_t)i * size, (const char *)n + (size_t)j * size, size);
		st->writes += !same;
	}
	for (int i = 0; i < no; i++) {
		bool kept = false;

		for (int j = 0; j < nn && !kept; j++)
			kept = !memcmp((const char *)o + (size_t)i * size, (const char *)n + (size_t)j * size, ksz);
		st->deletes += !kept;
	}
}

static int flush_json(struct pw_policy_inc *e, const char *json, struct pw_policy_stats *st,
		      struct pw_policy_inc_stats *ist)
{
	struct pw_policy_state old, new;
	int ret = pw_policy_inc_load_json(e, json, NULL, 0);

	if (!ret)
		ret = pw_policy_inc_flush(e, &old, &new, ist);
	if (ret)
		return ret;
	/* Count as pw_policy_sync would: new entries absent from old or
	 * different there, old keys absent from new. */
	memset(st, 0, sizeof(*st));
	count_diff(old.ids, old.n_ids, new.ids, new.n_ids, sizeof(*old.ids), sizeof(old.ids->k), st);
	count_diff(old.eps, old.n_eps, new.eps, new.n_eps, sizeof(*old.eps), sizeof(old.eps->k), st);
	count_diff(old.rules, old.n_rules, new.rules, new.n_rules, sizeof(*old.rules), sizeof(old.rules->k), st);
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	return 0;
}

static void test_single_changes(void)
{
	static const struct pw_local_pod local[] = { { .ip = 0x0af40102, .ns = "ns0", .name = "web" } };
	struct pw_policy_inc *e = pw_policy_inc_new(true);
	struct pw_policy_inc_stats ist;
	struct pw_policy_stats st;
	char json[2048];

	snprintf(json, sizeof(json), small_model, 80);
	PWT_CHECK(e && pw_policy_inc_set_local(e, local, 1) == 0 && flush_json(e, json, &st, &ist) == 0 &&
			  st.writes == 3 + 1 + 1,
		  "first flush writes 3 identities, 1 pod flag, 1 rule", "%lu writes", st.writes);
	PWT_CHECK(flush_json(e, json, &st, &ist) == 0 && st.writes == 0 && st.deletes == 0 && ist.pods_recomputed == 0,
		  "the same model again writes nothing", "%lu writes %lu deletes, %d pods", st.writes, st.deletes,
		  ist.pods_recomputed);
	snprintf(json, sizeof(json), small_model, 81);
	PWT_CHECK(flush_json(e, json, &st, &ist) == 0 && st.writes == 1 && st.deletes == 1 &&
			  ist.pods_recomputed == 1 && ist.identities_changed == 0,
		  "a policy's port change: 1 write, 1 delete, 1 pod recomputed", "%lu writes %lu deletes, %d pods, %d ids",
		  st.writes, st.deletes, ist.pods_recomputed, ist.identities_changed);
	/* "other" takes the label "cli": its identity goes (it had its own
	 * label set), it joins cli's; the rule names that identity already. */
	{
		char *p = strstr(json, "\"app\":\"other\"");

		memcpy(p, "\"app\":\"cli\"  ", 13);
	}
	PWT_CHECK(flush_json(e, json, &st, &ist) == 0 && st.writes == 1 && st.deletes == 0 &&
			  ist.identities_changed == 1 && ist.pods_recomputed == 0,
		  "a remote pod's label change: its identity entry only", "%lu writes %lu deletes, %d pods, %d ids",
		  st.writes, st.deletes, ist.pods_recomputed, ist.identities_changed);
	PWT_CHECK(flush_json(e, "{\"namespaces\":[],\"pods\":[],\"networkPolicies\":[]}", &st, &ist) == 0 &&
			  st.writes == 0 && st.deletes == 5,
		  "everything deleted: nothing written, 3 identities, the flag and the rule deleted", "%lu writes %lu deletes", st.writes, st.deletes);
	{
		struct pw_policy_state s;

		PWT_CHECK(pw_policy_inc_state(e, &s) == 0 && !s.n_ids && !s.n_eps && !s.n_rules,
			  "without policies the maps are empty", "%d ids %d eps %d rules", s.n_ids, s.n_eps, s.n_rules);
		pw_policy_state_free(&s);
	}
	pw_policy_inc_free(e);
}

static void test_load_errors(void)
{
	static const struct pw_local_pod local[] = { { .ip = 0x0af40102, .ns = "ns0", .name = "web" } };
	struct pw_policy_inc *e = pw_policy_inc_new(false);
	struct pw_policy_state old, new, s;
	char json[2048], err[256];
	int ret;

	snprintf(json, sizeof(json), small_model, 80);
	PWT_CHECK(pw_policy_inc_set_local(e, local, 1) == 0 && pw_policy_inc_load_json(e, json, err, sizeof(err)) == 0 &&
			  pw_policy_inc_flush(e, &old, &new, NULL) == 0,
		  "load a model", "%s", err);
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	ret = pw_policy_inc_load_json(e, "{\"pods\":[{\"namespace\":\"ns0\",\"name\":\"x\",\"ip\":\"300.1.1.1\"}]}", err,
				      sizeof(err));
	PWT_CHECK(ret == -EINVAL && strstr(err, "pods[0].ip"), "a bad element is refused, naming its field", "%d %s",
		  ret, err);
	ret = pw_policy_inc_load_json(e,
				      "{\"pods\":[{\"namespace\":\"a\",\"name\":\"x\"},{\"namespace\":\"a\",\"name\":\"x\"}]}",
				      err, sizeof(err));
	PWT_CHECK(ret == -EINVAL && strstr(err, "a/x"), "a repeated pod is refused", "%d %s", ret, err);
	ret = pw_policy_inc_load_json(e, "{\"pods\":[{\"namespace\":\"a\"", err, sizeof(err));
	PWT_CHECK(ret == -EINVAL && err[0], "truncated JSON is refused", "%d %s", ret, err);
	/* Nothing changed: the flush has nothing to do, the state is the model's. */
	PWT_CHECK(pw_policy_inc_flush(e, &old, &new, NULL) == 0 && !old.n_rules && !new.n_rules && !new.n_ids &&
			  pw_policy_inc_state(e, &s) == 0 && s.n_rules == 1 && s.n_ids == 3,
		  "refused loads change nothing", "%d/%d rules, %d ids; state %d rules %d ids", old.n_rules, new.n_rules,
		  new.n_ids, s.n_rules, s.n_ids);
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	pw_policy_state_free(&s);
	pw_policy_inc_free(e);
}

int main(void)
{
	test_single_changes();
	test_load_errors();
	test_random_sequences();
	return pwt_done();
}
