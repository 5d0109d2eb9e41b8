/* NetworkPolicy model and translation (userspace/lib/policy.c): parsing
 * with field-naming errors, selector semantics, identities (shared by equal
 * label sets, stable across unrelated changes), endPort blocks, ipBlock
 * except as CIDR identities, named ports, the config file carrying it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "pwtest.h"
#include "config.h"
#include "policy.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const char *model_pods =
	"\"namespaces\":[{\"name\":\"prod\",\"labels\":{\"env\":\"prod\"}},{\"name\":\"dev\",\"labels\":{\"env\":\"dev\"}}],"
	"\"pods\":[{\"namespace\":\"prod\",\"name\":\"web-1\",\"labels\":{\"app\":\"web\",\"tier\":\"fe\"},"
	"\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]},"
	"{\"namespace\":\"prod\",\"name\":\"web-2\",\"labels\":{\"tier\":\"fe\",\"app\":\"web\"},\"ip\":\"10.244.2.9\","
	"\"ports\":[{\"name\":\"http\",\"containerPort\":8081}]},"
	"{\"namespace\":\"prod\",\"name\":\"db\",\"labels\":{\"app\":\"db\"},\"ip\":\"10.244.2.10\"},"
	"{\"namespace\":\"dev\",\"name\":\"web\",\"labels\":{\"app\":\"web\",\"tier\":\"fe\"},\"ip\":\"10.244.3.4\"}]";

static const struct pw_local_pod local[] = {
	{ .ip = IP(10, 244, 1, 2), .ns = "prod", .name = "web-1" },
	{ .ip = IP(10, 244, 1, 3), .ns = "dev", .name = "stray" },   /* not in the model: no labels */
};

static int build(const char *policies, struct pw_policy_model *m, struct pw_policy_state *s, char *err)
{
	char json[8192];
	int ret;

	snprintf(json, sizeof(json), "{%s,\"networkPolicies\":[%s]}", model_pods, policies);
	ret = pw_policy_model_parse(json, m, err, 256);
	if (ret)
		return ret;
	return pw_policy_compute(m, local, 2, s);
}

static uint32_t identity_of(const struct pw_policy_state *s, uint32_t ip)
{
	for (int i = 0; i < s->n_ids; i++)
		if (s->ids[i].k.prefixlen == 32 && pw_ip4_from_bytes(s->ids[i].k.addr) == ip)
			return s->ids[i].v.identity;
	return 0;
}

static uint32_t cidr_identity(const struct pw_policy_state *s, const char *cidr)
{
	struct pw_cidr c;

	pw_cidr_parse(cidr, &c);
	for (int i = 0; i < s->n_ids; i++)
		if (s->ids[i].k.prefixlen == c.prefix && pw_ip4_from_bytes(s->ids[i].k.addr) == c.addr)
			return s->ids[i].v.identity;
	return 0;
}

/* Rules of pod ip in dir for identity, as "proto:port/bits" joined by ' '. */
static void rules_of(const struct pw_policy_state *s, uint32_t ip, uint8_t dir, uint32_t identity, char *out,
		     size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < s->n_rules && off < len; i++) {
		const struct pw_policy_key *k = &s->rules[i].k;

		if (pw_ip4_from_bytes(k->pod) != ip || k->dir != dir || k->identity != identity)
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%u:%u/%u", off ? " " : "", k->proto,
					(unsigned)k->port[0] << 8 | k->port[1], k->prefixlen - PW_POLICY_FIXED_BITS);
	}
}

static void test_parse_errors(void)
{
	static const struct {
		const char *json, *want, *name;
	} cases[] = {
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"ingress\":[{\"ports\":[{\"port\":80,"
		  "\"endPort\":70}]}]}}]}", "networkPolicies[0].spec.ingress[0].ports[0].endPort: 70 is below port 80",
		  "endPort below port" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":"
		  "{\"cidr\":\"10.0.0.0/8\",\"except\":[\"11.0.0.0/16\"]}}]}]}}]}",
		  "networkPolicies[0].spec.ingress[0].from[0].ipBlock.except[0]: 11.0.0.0/16 is not strictly inside cidr 10.0.0.0/8",
		  "except outside cidr" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		  "[{\"key\":\"a\",\"operator\":\"Is\"}]}}}]}",
		  "networkPolicies[0].spec.podSelector.matchExpressions[0].operator: \"Is\" is not In, NotIn, Exists or DoesNotExist",
		  "bad operator" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"egress\":[{\"to\":[{\"ipBlock\":"
		  "{\"cidr\":\"10.0.0.0/8\"},\"podSelector\":{}}]}]}}]}",
		  "networkPolicies[0].spec.egress[0].to[0]: ipBlock cannot be combined with podSelector or namespaceSelector",
		  "ipBlock with a selector" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"ingress\":[{\"ports\":[{\"protocol\":"
		  "\"ICMP\"}]}]}}]}", "networkPolicies[0].spec.ingress[0].ports[0].protocol: \"ICMP\" is not TCP, UDP or SCTP",
		  "bad protocol" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{}},{\"metadata\":{\"name\":\"a\","
		  "\"namespace\":\"default\"},\"spec\":{}}]}", "networkPolicies[1]: default/a repeats networkPolicies[0]",
		  "duplicate policy" },
		{ "{\"pods\":[{\"namespace\":\"a\",\"name\":\"b\",\"ip\":\"10.1\"}]}", "pods[0].ip: \"10.1\" is not an IPv4 address",
		  "bad pod ip" },
		{ "{\"networkPolicies\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"ingres\":[]}}]}",
		  "networkPolicies[0].spec.ingres: unknown field", "unknown field" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pw_policy_model m;
		char err[256], n[128];
		int ret = pw_policy_model_parse(cases[i].json, &m, err, sizeof(err));

		snprintf(n, sizeof(n), "parse error names the field: %s", cases[i].name);
		PWT_CHECK(ret == -EINVAL && !strcmp(err, cases[i].want), n, "ret %d err \"%s\"", ret, err);
		pw_policy_model_free(&m);
	}
}

static void test_selectors(void)
{
	struct pw_policy_model m;
	struct pw_label lv[2] = { { "app", "web" }, { "tier", "fe" } };
	struct pw_labels l = { lv, 2 };
	char err[256];
	const char *json =
		"{\"networkPolicies\":["
		"{\"metadata\":{\"name\":\"in\"},\"spec\":{\"podSelector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"db\",\"web\"]}]}}},"
		"{\"metadata\":{\"name\":\"notin\"},\"spec\":{\"podSelector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\",\"values\":[\"web\"]}]}}},"
		"{\"metadata\":{\"name\":\"exists\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"tier\":\"fe\"},\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Exists\"}]}}},"
		"{\"metadata\":{\"name\":\"dne\"},\"spec\":{\"podSelector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"DoesNotExist\"}]}}},"
		"{\"metadata\":{\"name\":\"all\"},\"spec\":{\"podSelector\":{}}},"
		"{\"metadata\":{\"name\":\"other-ns\",\"namespace\":\"kube-system\"},\"spec\":{\"podSelector\":{}}}]}";

	PWT_CHECK(pw_policy_model_parse(json, &m, err, sizeof(err)) == 0 && m.n_pols == 6, "selectors parse", "%s", err);
	if (m.n_pols != 6)
		return;
	PWT_EXPECT(pw_policy_selects(&m.pols[0], "default", &l), "In: app in (db, web) selects app=web");
	PWT_EXPECT(!pw_policy_selects(&m.pols[1], "default", &l), "NotIn: app notin (web) skips app=web");
	PWT_EXPECT(pw_policy_selects(&m.pols[2], "default", &l), "matchLabels and Exists together");
	PWT_EXPECT(!pw_policy_selects(&m.pols[3], "default", &l), "DoesNotExist: tier present -> not selected");
	PWT_EXPECT(pw_policy_selects(&m.pols[4], "default", &l), "empty podSelector selects every pod of its namespace");
	PWT_EXPECT(!pw_policy_selects(&m.pols[5], "default", &l), "a policy never selects pods of another namespace");
	PWT_EXPECT(m.pols[0].ingress && !m.pols[0].egress, "policyTypes default: Ingress only without egress rules");
	PWT_EQ_INT(m.pols[0].id, pw_policy_id("default", "in"), "namespace defaults to \"default\"");
	pw_policy_model_free(&m);
}

static void test_port_blocks(void)
{
	uint16_t start[32];
	uint8_t prefix[32];
	int n = pw_port_blocks(1000, 2000, start, prefix), ok = 1;
	uint32_t next = 1000;

	for (int i = 0; i < n; i++) {
		uint32_t size = 1u << (16 - prefix[i]);

		ok = ok && start[i] == next && start[i] % size == 0;
		next = start[i] + size;
	}
	PWT_CHECK(ok && next == 2001 && n <= 32, "endPort 1000-2000: aligned blocks cover exactly the range",
		  "%d blocks, end %u", n, next);
	n = pw_port_blocks(1, 65535, start, prefix);
	PWT_CHECK(n == 16 && start[0] == 1 && prefix[0] == 16 && start[15] == 32768 && prefix[15] == 1,
		  "endPort 1-65535: 16 blocks", "%d blocks", n);
	n = pw_port_blocks(80, 80, start, prefix);
	PWT_CHECK(n == 1 && start[0] == 80 && prefix[0] == 16, "single port: one /16 block", "%d", n);
}

#define INGRESS_WEB                                                                                       \
	"{\"metadata\":{\"namespace\":\"prod\",\"name\":\"web\"},\"spec\":{\"podSelector\":{\"matchLabels\":"  \
	"{\"app\":\"web\"}},\"ingress\":[{\"from\":[{\"namespaceSelector\":{\"matchLabels\":"                  \
	"{\"kubernetes.io/metadata.name\":\"dev\"}},\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}}},"    \
	"{\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}}},{\"ipBlock\":{\"cidr\":\"192.0.2.0/24\","         \
	"\"except\":[\"192.0.2.128/25\"]}}],\"ports\":[{\"port\":\"http\"},{\"port\":\"nope\"},"              \
	"{\"port\":9000,\"endPort\":9003,\"protocol\":\"UDP\"}]}]}}"

static void test_translation(void)
{
	struct pw_policy_model m;
	struct pw_policy_state s, s2;
	char err[256] = "", got[512];
	uint32_t web1, web2, dbid, devweb, stray, cidr_in, cidr_ex;

	PWT_CHECK(build("", &m, &s, err) == 0, "model without policies computes", "%s", err);
	web1 = identity_of(&s, IP(10, 244, 1, 2));
	web2 = identity_of(&s, IP(10, 244, 2, 9));
	dbid = identity_of(&s, IP(10, 244, 2, 10));
	devweb = identity_of(&s, IP(10, 244, 3, 4));
	stray = identity_of(&s, IP(10, 244, 1, 3));
	PWT_CHECK(web1 && web1 == web2, "same labels in the same namespace (any order): one identity", "%u %u", web1, web2);
	PWT_CHECK(devweb && devweb != web1, "same labels in another namespace: another identity", "%u %u", devweb, web1);
	PWT_CHECK(stray >= PW_ID_FIRST_POD && stray < PW_ID_FIRST_CIDR && stray != dbid,
		  "a local pod the model lacks still gets an identity", "%u", stray);
	PWT_EQ_INT(s.n_eps + s.n_rules, 0, "no policy: nothing policed, no rules");
	pw_policy_state_free(&s);
	pw_policy_model_free(&m);

	PWT_CHECK(build(INGRESS_WEB, &m, &s, err) == 0, "policy with pod, namespace and ipBlock peers computes", "%s",
		  err);
	PWT_EQ_INT(identity_of(&s, IP(10, 244, 1, 2)), web1, "identities are stable when policies change");
	cidr_in = cidr_identity(&s, "192.0.2.0/24");
	cidr_ex = cidr_identity(&s, "192.0.2.128/25");
	PWT_CHECK(cidr_in >= PW_ID_FIRST_CIDR && cidr_ex >= PW_ID_FIRST_CIDR && cidr_in != cidr_ex,
		  "ipBlock cidr and except each get a CIDR identity", "%u %u", cidr_in, cidr_ex);
	PWT_CHECK(s.n_eps == 1 && pw_ip4_from_bytes(s.eps[0].k.addr) == IP(10, 244, 1, 2) &&
			  s.eps[0].v.flags == PW_POL_F_INGRESS && s.eps[0].v.ingress_policy == pw_policy_id("prod", "web"),
		  "only the selected local pod is policed, ingress only, its one policy named", "%d eps", s.n_eps);
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, devweb, got, sizeof(got));
	PWT_EQ_STR(got, "17:9000/14 6:8080/16", "namespaceSelector+podSelector peer: named port on the pod, endPort as one /14");
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, dbid, got, sizeof(got));
	PWT_EQ_STR(got, "17:9000/14 6:8080/16", "podSelector peer (same namespace)");
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, web1, got, sizeof(got));
	PWT_EQ_STR(got, "", "prod's app=web pods are not in dev: no entry");
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, cidr_in, got, sizeof(got));
	PWT_EQ_STR(got, "17:9000/14 6:8080/16", "ipBlock cidr identity allowed");
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, cidr_ex, got, sizeof(got));
	PWT_EQ_STR(got, "", "ipBlock except identity not allowed");
	PWT_EQ_INT(s.n_rules, 6, "6 entries in all (an unresolvable named port adds none)");
	pw_policy_state_free(&s);
	pw_policy_model_free(&m);

	/* Egress named port: resolved on the peer pods (web-2 has http=8081). */
	PWT_CHECK(build("{\"metadata\":{\"namespace\":\"dev\",\"name\":\"eg\"},\"spec\":{\"podSelector\":{},"
			"\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"namespaceSelector\":{\"matchLabels\":"
			"{\"env\":\"prod\"}}}],\"ports\":[{\"port\":\"http\"}]}]}}", &m, &s, err) == 0,
		  "egress policy computes", "%s", err);
	rules_of(&s, IP(10, 244, 1, 3), PW_DIR_EGRESS, web1, got, sizeof(got));
	PWT_EQ_STR(got, "6:8080/16 6:8081/16", "egress named port: every number the peer identity's pods give it");
	rules_of(&s, IP(10, 244, 1, 3), PW_DIR_EGRESS, dbid, got, sizeof(got));
	PWT_EQ_STR(got, "", "egress named port: a peer without that port gets nothing");
	PWT_CHECK(s.n_eps == 1 && s.eps[0].v.flags == PW_POL_F_EGRESS, "dev's stray pod policed for egress only",
		  "%d", s.n_eps);

	/* Incremental: the same model computes the same state (nothing to write). */
	{
		struct pw_policy_model m2;

		PWT_CHECK(build("{\"metadata\":{\"namespace\":\"dev\",\"name\":\"eg\"},\"spec\":{\"podSelector\":{},"
				"\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"namespaceSelector\":{\"matchLabels\":"
				"{\"env\":\"prod\"}}}],\"ports\":[{\"port\":\"http\"}]}]}}", &m2, &s2, err) == 0 &&
				  s2.n_rules == s.n_rules && s2.n_ids == s.n_ids &&
				  !memcmp(s2.rules, s.rules, sizeof(*s.rules) * (size_t)s.n_rules) &&
				  !memcmp(s2.ids, s.ids, sizeof(*s.ids) * (size_t)s.n_ids),
			  "recomputing the same model gives byte-identical sorted state", "%d/%d rules", s2.n_rules,
			  s.n_rules);
		pw_policy_state_free(&s2);
		pw_policy_model_free(&m2);
	}
	pw_policy_state_free(&s);
	pw_policy_model_free(&m);
}

/* One policy selecting several local pods: each gets the same entries
 * (the rule peers' identities are computed once and reused). */
static void test_shared_policy(void)
{
	static const struct pw_local_pod two[] = {
		{ .ip = IP(10, 244, 1, 2), .ns = "prod", .name = "web-1" },
		{ .ip = IP(10, 244, 1, 5), .ns = "prod", .name = "db" },
	};
	struct pw_policy_model m;
	struct pw_policy_state s;
	char json[4096], err[256] = "", a[256], b[256];
	uint32_t devweb;

	snprintf(json, sizeof(json), "{%s,\"networkPolicies\":[{\"metadata\":{\"namespace\":\"prod\",\"name\":\"all\"},"
		 "\"spec\":{\"podSelector\":{},\"ingress\":[{\"from\":[{\"namespaceSelector\":{\"matchLabels\":"
		 "{\"env\":\"dev\"}}}],\"ports\":[{\"port\":443}]}]}}]}", model_pods);
	PWT_CHECK(pw_policy_model_parse(json, &m, err, sizeof(err)) == 0 && pw_policy_compute(&m, two, 2, &s) == 0,
		  "policy selecting two local pods computes", "%s", err);
	devweb = identity_of(&s, IP(10, 244, 3, 4));
	rules_of(&s, IP(10, 244, 1, 2), PW_DIR_INGRESS, devweb, a, sizeof(a));
	rules_of(&s, IP(10, 244, 1, 5), PW_DIR_INGRESS, devweb, b, sizeof(b));
	PWT_CHECK(!strcmp(a, "6:443/16") && !strcmp(a, b) && s.n_eps == 2 && s.n_rules == 2,
		  "both selected pods get the namespaceSelector peer's entry", "\"%s\" \"%s\" eps %d rules %d", a, b,
		  s.n_eps, s.n_rules);
	pw_policy_state_free(&s);
	pw_policy_model_free(&m);
}

static void test_config(void)
{
	struct pw_node_config cfg, copy;
	char err[512];
	const char *good = "{\"node\":{\"name\":\"n1\",\"ip\":\"192.168.1.11\",\"uplink\":\"eth0\","
			   "\"podCIDR\":\"10.244.1.0/24\"},\"namespaces\":[{\"name\":\"prod\"}],"
			   "\"networkPolicies\":[{\"metadata\":{\"name\":\"x\",\"namespace\":\"prod\"},\"spec\":{}}]}";
	const char *bad = "{\"node\":{\"name\":\"n1\",\"ip\":\"192.168.1.11\",\"uplink\":\"eth0\","
			  "\"podCIDR\":\"10.244.1.0/24\"},\"networkPolicies\":[{\"metadata\":{\"name\":\"x\"},"
			  "\"spec\":{\"egress\":[{\"ports\":[{\"port\":0}]}]}}]}";

	PWT_CHECK(pw_config_parse(good, &cfg, err, sizeof(err)) == 0 && cfg.policy_json &&
			  strstr(cfg.policy_json, "\"networkPolicies\"") && strstr(cfg.policy_json, "\"namespaces\""),
		  "config file carries namespaces and networkPolicies", "%s", err);
	PWT_CHECK(pw_config_copy(&copy, &cfg) == 0 && copy.policy_json && copy.policy_json != cfg.policy_json &&
			  !strcmp(copy.policy_json, cfg.policy_json),
		  "pw_config_copy copies the policy model", "%s", "shared or missing");
	pw_config_free(&copy);
	pw_config_free(&cfg);
	PWT_CHECK(pw_config_parse(bad, &cfg, err, sizeof(err)) == -EINVAL &&
			  !strcmp(err, "networkPolicies[0].spec.egress[0].ports[0].port: 0 is not a port (1-65535)"),
		  "a bad policy makes the config bad, naming the field", "err \"%s\"", err);
	PWT_CHECK(pw_config_parse("{\"node\":{\"name\":\"n1\",\"ip\":\"192.168.1.11\",\"uplink\":\"eth0\","
				  "\"podCIDR\":\"10.244.1.0/24\"}}", &cfg, err, sizeof(err)) == 0 && !cfg.policy_json,
		  "no policy sections: no model", "%s", err);
	pw_config_free(&cfg);
}

int main(void)
{
	test_parse_errors();
	test_selectors();
	test_port_blocks();
	test_translation();
	test_shared_policy();
	test_config();
	return pwt_done();
}
