/* The Kubernetes source's NetworkPolicy part (userspace/lib/k8s_policy.c,
 * k8s_model.c): Namespace, Pod and NetworkPolicy objects as the API serves
 * them -> the policy model in pw_node_config.policy_json, which the agent's
 * netpol sync parses. Fixtures are JSON with ' for " (J()). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "config.h"
#include "k8s_model.h"
#include "k8s_policy.h"
#include "log.h"
#include "policy.h"

static cJSON *J(const char *s)
{
	char *t = strdup(s);
	cJSON *o;

	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = cJSON_Parse(t);
	if (!o)
		printf("# bad fixture: %s\n", t);
	free(t);
	return o;
}

static int put(struct pw_k8s_model *m, enum pw_k8s_kind k, const char *json)
{
	cJSON *o = J(json);
	int r = pw_k8s_upsert(m, k, o);

	cJSON_Delete(o);
	return r;
}

static int del(struct pw_k8s_model *m, enum pw_k8s_kind k, const char *json)
{
	cJSON *o = J(json);
	int r = pw_k8s_remove(m, k, o);

	cJSON_Delete(o);
	return r;
}

static struct pw_node_config base;

static struct pw_k8s_model *model(void)
{
	struct pw_k8s_model *m;

	pw_cidr_parse("10.244.0.0/16", &base.cluster_cidr);
	pw_cidr_parse("10.96.0.0/12", &base.service_cidr);
	base.masquerade = true;
	snprintf(base.uplink, sizeof(base.uplink), "eth0");
	m = pw_k8s_model_new("node1", &base.cluster_cidr, &base.service_cidr);
	put(m, PW_K8S_NODE, "{'metadata':{'name':'node1'},'spec':{'podCIDR':'10.244.1.0/24'},"
	    "'status':{'addresses':[{'type':'InternalIP','address':'192.168.1.11'}]}}");
	return m;
}

static int build(struct pw_k8s_model *m, struct pw_node_config *c)
{
	char why[256];
	int r = pw_k8s_build(m, &base, c, why, sizeof(why));

	if (r)
		printf("# build: %d %s\n", r, why);
	return r;
}

/* The policy model of a build (parsed as the agent parses it). */
static int parse_built(const struct pw_node_config *c, struct pw_policy_model *pm)
{
	char err[256];
	int r = pw_policy_model_parse(c->policy_json, pm, err, sizeof(err));

	if (r)
		printf("# policy model: %s\n", err);
	return r;
}

static const struct pw_pod_model *pod(const struct pw_policy_model *pm, const char *ns, const char *name)
{
	for (int i = 0; i < pm->n_pods; i++)
		if (!strcmp(pm->pods[i].ns, ns) && !strcmp(pm->pods[i].name, name))
			return &pm->pods[i];
	return NULL;
}

static const struct pw_netpol *pol(const struct pw_policy_model *pm, const char *ns, const char *name)
{
	for (int i = 0; i < pm->n_pols; i++)
		if (!strcmp(pm->pols[i].ns, ns) && !strcmp(pm->pols[i].name, name))
			return &pm->pols[i];
	return NULL;
}

static const char *label(const struct pw_labels *l, const char *key)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].value;
	return NULL;
}

#define POD_A "{'metadata':{'name':'a','namespace':'x','labels':{'pod':'a','tier':'web'}}," \
	"'spec':{'nodeName':'node2','containers':[{'name':'c','ports':[" \
	"{'name':'http','containerPort':8080,'protocol':'TCP'},{'containerPort':9999}," \
	"{'name':'dns','containerPort':53,'protocol':'UDP'}]},{'name':'d','ports':[{'name':'metrics','containerPort':9100}]}]}," \
	"'status':{'phase':'Running','podIP':'fd00::5','podIPs':[{'ip':'fd00::5'},{'ip':'10.244.2.5'}]," \
	"'conditions':[{'type':'Ready','status':'True'}]}}"
#define NS_X "{'metadata':{'name':'x','labels':{'kubernetes.io/metadata.name':'x','team':'blue'}}}"
#define NP_DENY "{'metadata':{'name':'deny','namespace':'x','uid':'1','resourceVersion':'5'},'spec':{'podSelector':{}}}"

static void test_no_policy_no_text(void)
{
	struct pw_k8s_model *m = model();
	struct pw_node_config c;
	struct pw_k8s_counts n;

	PWT_EQ_INT(put(m, PW_K8S_NAMESPACE, NS_X), 1, "namespace cached");
	PWT_EQ_INT(put(m, PW_K8S_POD, POD_A), 1, "pod cached");
	PWT_EQ_INT(build(m, &c), 0, "build without policies");
	PWT_EXPECT(c.policy_json == NULL, "no NetworkPolicy: no policy model (nothing policed)");
	pw_config_free(&c);
	PWT_EQ_INT(put(m, PW_K8S_NETPOL, NP_DENY), 1, "policy cached");
	PWT_EQ_INT(build(m, &c), 0, "build with a policy");
	PWT_EXPECT(c.policy_json != NULL, "a NetworkPolicy: the model is there");
	pw_k8s_counts(m, &n);
	PWT_EQ_INT(n.namespaces * 100 + n.pods * 10 + n.netpols, 111, "counts: 1 namespace, 1 pod, 1 policy");
	pw_config_free(&c);
	PWT_EQ_INT(del(m, PW_K8S_NETPOL, NP_DENY), 1, "policy deleted");
	PWT_EQ_INT(build(m, &c), 0, "build after deletion");
	PWT_EXPECT(c.policy_json == NULL, "last policy deleted: no model again");
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_pods(void)
{
	struct pw_k8s_model *m = model();
	struct pw_policy_model pm;
	struct pw_node_config c;
	const struct pw_pod_model *p;
	char ip[PW_IP4_STRLEN] = "";

	put(m, PW_K8S_NETPOL, NP_DENY);
	put(m, PW_K8S_NAMESPACE, NS_X);
	put(m, PW_K8S_POD, POD_A);
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'pending','namespace':'x','labels':{'pod':'p'}},"
		       "'spec':{'containers':[{'name':'c'}]},'status':{'phase':'Pending'}}"), 1,
		   "a pod without an address yet is cached (a local pod's comes from IPAM)");
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'hn','namespace':'x'},'spec':{'hostNetwork':true},"
		       "'status':{'phase':'Running','podIP':'192.168.1.12'}}"), 0,
		   "a hostNetwork pod is not in the model");
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'done','namespace':'x'},'spec':{},"
		       "'status':{'phase':'Succeeded','podIP':'10.244.2.9'}}"), 0,
		   "a finished pod is not in the model (its address may be another pod's)");
	PWT_EQ_INT(build(m, &c), 0, "build");
	PWT_EQ_INT(parse_built(&c, &pm), 0, "the built model parses as the agent parses it");
	PWT_EQ_INT(pm.n_pods, 2, "two pods in the model");
	p = pod(&pm, "x", "a");
	PWT_EXPECT(p != NULL, "pod x/a there");
	if (p) {
		pw_ip4_format(p->ip, ip);
		PWT_EQ_STR(ip, "10.244.2.5", "pod IP: the first IPv4 of status.podIPs");
		PWT_EQ_STR(label(&p->labels, "tier"), "web", "pod labels");
		PWT_EQ_INT(p->n_ports, 3, "named container ports of every container (an unnamed one left out)");
		PWT_EXPECT(p->n_ports == 3 && !strcmp(p->ports[1].name, "dns") && p->ports[1].port == 53 &&
			   p->ports[1].proto == IPPROTO_UDP && p->ports[2].proto == IPPROTO_TCP,
			   "named ports: name, number, protocol (TCP by default)");
	}
	p = pod(&pm, "x", "pending");
	PWT_EXPECT(p && p->ip == 0, "pod without an address: in the model with none");
	PWT_EQ_INT(pm.n_ns, 1, "namespace in the model");
	PWT_EXPECT(pm.n_ns == 1 && !strcmp(label(&pm.ns[0].labels, "team"), "blue"), "namespace labels");
	pw_policy_model_free(&pm);
	pw_config_free(&c);

	/* What the policy model does not see is no change: status churn. */
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'a','namespace':'x','labels':{'pod':'a','tier':'web'},"
		       "'resourceVersion':'99'},'spec':{'nodeName':'node2','containers':[{'name':'c','ports':["
		       "{'name':'http','containerPort':8080,'protocol':'TCP'},{'containerPort':9999},"
		       "{'name':'dns','containerPort':53,'protocol':'UDP'}]},{'name':'d','ports':[{'name':'metrics',"
		       "'containerPort':9100}]}]},'status':{'phase':'Running','podIPs':[{'ip':'fd00::5'},"
		       "{'ip':'10.244.2.5'}],'conditions':[{'type':'Ready','status':'False'}]}}"), 0,
		   "a pod's status condition changing is no change");
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'a','namespace':'x','labels':{'pod':'a'}},"
		       "'spec':{},'status':{'phase':'Running','podIP':'10.244.2.5'}}"), 1,
		   "a label changing is a change");
	PWT_EQ_INT(put(m, PW_K8S_POD, "{'metadata':{'name':'a','namespace':'x','labels':{'pod':'a'}},"
		       "'spec':{},'status':{'phase':'Succeeded','podIP':'10.244.2.5'}}"), 1,
		   "a pod that finishes leaves the model");
	PWT_EQ_INT(build(m, &c), 0, "build");
	PWT_EQ_INT(parse_built(&c, &pm), 0, "parses");
	PWT_EXPECT(pod(&pm, "x", "a") == NULL, "finished pod gone from the model");
	pw_policy_model_free(&pm);
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_policies(void)
{
	struct pw_k8s_model *m = model();
	struct pw_policy_model pm;
	struct pw_node_config c;
	const struct pw_netpol *p;
	char buf[PW_CIDR_STRLEN];

	put(m, PW_K8S_NETPOL, NP_DENY);
	put(m, PW_K8S_NETPOL, "{'metadata':{'name':'eg','namespace':'x'},'spec':{'podSelector':"
	    "{'matchLabels':{'pod':'a'}},'egress':[{'to':[{'ipBlock':{'cidr':'2001:db8::/64'}}]},"
	    "{'to':[{'ipBlock':{'cidr':'10.0.0.7/8','except':['10.1.0.0/16','fd00::/8']}},{'ipBlock':{'cidr':'fd00::/8'}}],"
	    "'ports':[{'protocol':'TCP','port':1000,'endPort':2000},{'port':'http'}]}]}}");
	put(m, PW_K8S_NETPOL, "{'metadata':{'name':'in','namespace':'y'},'spec':{'podSelector':{'matchExpressions':"
	    "[{'key':'pod','operator':'In','values':['a','b']}]},'policyTypes':['Ingress','Egress'],'ingress':[{'from':"
	    "[{'namespaceSelector':{'matchLabels':{'team':'blue'}},'podSelector':{}},{'podSelector':"
	    "{'matchLabels':{'role':'client'}}}],'ports':[{'protocol':'UDP','port':53},{'protocol':'SCTP','port':9}]}]}}");
	put(m, PW_K8S_NETPOL, "{'metadata':{'name':'only-v6','namespace':'x'},'spec':{'podSelector':{},"
	    "'policyTypes':['Ingress'],'ingress':[{'from':[{'ipBlock':{'cidr':'fd00::/8'}}]}]}}");
	put(m, PW_K8S_NETPOL, "{'metadata':{'name':'bad','namespace':'z'},'spec':{'podSelector':{'matchLabels':"
	    "{'app':'db'}},'ingress':[{'ports':[{'protocol':'ICMP','port':1}]}]}}");
	PWT_EQ_INT(build(m, &c), 0, "build");
	PWT_EQ_INT(parse_built(&c, &pm), 0, "the built model parses");
	PWT_EQ_INT(pm.n_pols, 5, "five policies");

	p = pol(&pm, "x", "deny");
	PWT_EXPECT(p && p->ingress && !p->egress && p->n_in == 0, "no policyTypes, no rules: ingress default deny");
	p = pol(&pm, "x", "eg");
	PWT_EXPECT(p && p->ingress && p->egress, "no policyTypes with egress rules: Ingress and Egress");
	PWT_EQ_INT(p ? p->n_eg : -1, 1, "an egress rule whose peers were all IPv6 is left out (it allows nothing)");
	if (p && p->n_eg == 1) {
		PWT_EQ_INT(p->eg[0].n_peers, 1, "IPv6 ipBlock peers left out, IPv4 ones kept");
		pw_cidr_format(&p->eg[0].peers[0].ipb.cidr, buf);
		PWT_EQ_STR(buf, "10.0.0.0/8", "ipBlock cidr with host bits: cleared, as the API's parsing does");
		PWT_EQ_INT(p->eg[0].peers[0].ipb.n_except, 1, "IPv6 except left out");
		PWT_EXPECT(p->eg[0].n_ports == 2 && p->eg[0].ports[0].end_port == 2000 &&
			   !strcmp(p->eg[0].ports[1].name, "http"), "ports: endPort and a named port kept");
	}
	p = pol(&pm, "y", "in");
	PWT_EXPECT(p && p->ingress && p->egress && p->n_in == 1 && p->n_eg == 0,
		   "explicit policyTypes kept (egress default deny)");
	PWT_EXPECT(p && p->n_in == 1 && p->in[0].n_peers == 2 && p->in[0].peers[0].has_ns && p->in[0].peers[0].has_pod &&
		   !p->in[0].peers[1].has_ns && p->pod_sel.n_expr == 1,
		   "namespaceSelector AND podSelector, a podSelector alone, matchExpressions");
	PWT_EXPECT(p && p->n_in == 1 && p->in[0].n_ports == 2 && p->in[0].ports[0].proto == IPPROTO_UDP &&
		   p->in[0].ports[1].proto == IPPROTO_SCTP, "UDP and SCTP ports");
	p = pol(&pm, "x", "only-v6");
	PWT_EXPECT(p && p->ingress && p->n_in == 0, "a policy of IPv6 peers only: its pods isolated, nothing allowed");
	p = pol(&pm, "z", "bad");
	PWT_EXPECT(p && p->ingress && p->n_in == 0 && p->pod_sel.match.n == 1,
		   "a spec the model refuses: fails closed (same pods selected, nothing allowed)");
	pw_policy_model_free(&pm);
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_elements_alone(void)
{
	char *out = NULL;
	cJSON *o = J("{'metadata':{'name':'np','namespace':'x'},'spec':{'podSelector':{},'ingress':[{'from':"
		     "[{'ipBlock':{'cidr':'10.0.0.0/8','except':['10.0.0.0/8']}}]},{}]}}");
	struct pw_policy_model pm;
	char *text = NULL, err[256];

	PWT_EQ_INT(pw_k8s_netpol_element(o, "x/np", &out), 0, "netpol element");
	if (out && asprintf(&text, "{\"networkPolicies\":[%s]}", out) > 0 &&
	    pw_policy_model_parse(text, &pm, err, sizeof(err)) == 0) {
		PWT_EXPECT(pm.n_pols == 1 && pm.pols[0].n_in == 1 && pm.pols[0].in[0].n_peers == 0,
			   "an ipBlock whose except is its whole cidr matches nothing: its rule goes, the allow-all rule stays");
		pw_policy_model_free(&pm);
	} else {
		PWT_CHECK(0, "netpol element parses", "%s", out ? out : "(null)");
	}
	free(text);
	free(out);
	cJSON_Delete(o);
}

static void test_incremental(void)
{
	struct pw_k8s_model *m = model();
	struct pw_node_config c0, c1, c2;
	char why[256];
	struct pw_policy_model pm;
	struct pw_node_config parsed;
	char *text, err[256];

	put(m, PW_K8S_NETPOL, NP_DENY);
	put(m, PW_K8S_POD, POD_A);
	PWT_EQ_INT(pw_k8s_build_next(m, &base, NULL, &c0, why, sizeof(why)), 0, "first build");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'web','namespace':'x'},'spec':{'type':'ClusterIP',"
	    "'clusterIP':'10.96.0.10','ports':[{'port':80,'protocol':'TCP'}]}}");
	PWT_EQ_INT(pw_k8s_build_next(m, &base, &c0, &c1, why, sizeof(why)), 0, "a Service changed");
	PWT_EXPECT(c1.policy_json && c1.policy_json == c0.policy_json,
		   "a Service change: the policy model taken over, not made again");
	pw_k8s_release(m, &c0);
	put(m, PW_K8S_POD, "{'metadata':{'name':'a','namespace':'x','labels':{'pod':'b'}},'spec':{},"
	    "'status':{'phase':'Running','podIP':'10.244.2.5'}}");
	PWT_EQ_INT(pw_k8s_build_next(m, &base, &c1, &c2, why, sizeof(why)), 0, "a pod's labels changed");
	PWT_EXPECT(c2.policy_json && c2.policy_json != c1.policy_json && strstr(c2.policy_json, "\"pod\":\"b\""),
		   "a label change: the model made again with it");
	pw_k8s_release(m, &c1);

	/* The config published for podwirectl carries the model. */
	text = pw_config_format(&c2);
	memset(&parsed, 0, sizeof(parsed));
	PWT_EQ_INT(text ? pw_config_parse(text, &parsed, err, sizeof(err)) : -1, 0, "the published config parses");
	PWT_EXPECT(parsed.policy_json && pw_policy_model_parse(parsed.policy_json, &pm, err, sizeof(err)) == 0 &&
		   pm.n_pols == 1 && pm.n_pods == 1, "the published config holds the policy model");
	if (parsed.policy_json)
		pw_policy_model_free(&pm);
	pw_config_free(&parsed);
	free(text);
	pw_config_free(&c2);

	/* A relist that no longer has the pod drops it. */
	pw_k8s_relist_begin(m, PW_K8S_POD);
	PWT_EQ_INT(pw_k8s_relist_end(m, PW_K8S_POD), 1, "relist: a pod gone while the watch was down is dropped");
	pw_k8s_model_free(m);
}

struct idpair {
	uint32_t id;
	int i;
};

static int idpair_cmp(const void *a, const void *b)
{
	const struct idpair *x = a, *y = b;

	return x->id != y->id ? (x->id < y->id ? -1 : 1) : x->i - y->i;
}

/* Two policy names in namespace ns with one policy id (32-bit FNV-1a of
 * "ns/name"), first < second in key order: found by search among 300,000
 * names (birthday bound). false if none. */
static bool find_id_clash(const char *ns, char first[32], char second[32])
{
	enum { N = 300000 };
	struct idpair *v = calloc(N, sizeof(*v));
	char name[32];

	first[0] = second[0] = '\0';
	for (int i = 0; v && i < N; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		v[i] = (struct idpair){ pw_policy_id(ns, name), i };
	}
	if (v)
		qsort(v, N, sizeof(*v), idpair_cmp);
	for (int i = 1; v && i < N && !first[0]; i++)
		if (v[i].id == v[i - 1].id) {
			snprintf(first, 32, "p%d", v[i - 1].i);
			snprintf(second, 32, "p%d", v[i].i);
		}
	free(v);
	if (strcmp(first, second) > 0) {
		char t[32];

		strcpy(t, first);
		strcpy(first, second);
		strcpy(second, t);
	}
	return first[0] != '\0';
}

static void test_id_clash(void)
{
	/* Two names with one policy id would make the model refuse every
	 * policy: the later in key order goes. */
	struct pw_k8s_model *m = model();
	struct pw_node_config c;
	struct pw_policy_model pm;
	char json[256], first[32], second[32];

	PWT_EXPECT(find_id_clash("ns", first, second), "two policy names with one id found");
	snprintf(json, sizeof(json), "{'metadata':{'name':'%s','namespace':'ns'},'spec':{'podSelector':{}}}", first);
	put(m, PW_K8S_NETPOL, json);
	snprintf(json, sizeof(json), "{'metadata':{'name':'%s','namespace':'ns'},'spec':{'podSelector':{}}}", second);
	put(m, PW_K8S_NETPOL, json);
	put(m, PW_K8S_NETPOL, NP_DENY);
	PWT_EQ_INT(build(m, &c), 0, "build with a policy id clash");
	PWT_EXPECT(parse_built(&c, &pm) == 0 && pm.n_pols == 2 && pol(&pm, "ns", first) && pol(&pm, "x", "deny"),
		   "id clash: the first in key order and the other policies stay, the model parses");
	printf("# clash: ns/%s and ns/%s\n", first, second);
	pw_policy_model_free(&pm);
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

/* ---- object by object (the agent's way) against the whole text ---- */

struct rng {
	unsigned long long s;
};

static int rnd(struct rng *r, int n)
{
	r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int)((r->s >> 33) % (unsigned long long)n);
}

#define OBJ_NS   3
#define OBJ_PODS 12
#define OBJ_POLS 6

/* Object i of kind: random labels, ports and rules; its namespace is
 * fixed (ns<i % OBJ_NS>; the clashing policies' is ns0). meta_only: just
 * its metadata (for a deletion). */
static void object(struct rng *r, enum pw_k8s_kind kind, int i, const char clash[2][32], bool meta_only, char *out,
		   size_t size)
{
	char meta[128];

	if (kind == PW_K8S_NAMESPACE)
		snprintf(meta, sizeof(meta), "'metadata':{'name':'ns%d','labels':{'team':'t%d'}}", i,
			 meta_only ? 0 : rnd(r, 2));
	else if (kind == PW_K8S_POD)
		snprintf(meta, sizeof(meta), "'metadata':{'name':'p%d','namespace':'ns%d','labels':{'app':'a%d'}}", i,
			 i % OBJ_NS, meta_only ? 0 : rnd(r, 4));
	else if (i >= OBJ_POLS - 2)   /* the last two are the clashing names */
		snprintf(meta, sizeof(meta), "'metadata':{'name':'%s','namespace':'ns0'}", clash[i - (OBJ_POLS - 2)]);
	else
		snprintf(meta, sizeof(meta), "'metadata':{'name':'n%d','namespace':'ns%d'}", i, i % OBJ_NS);
	if (meta_only || kind == PW_K8S_NAMESPACE)
		snprintf(out, size, "{%s}", meta);
	else if (kind == PW_K8S_POD)
		snprintf(out, size, "{%s,'spec':{'nodeName':'node%d','containers':[{'name':'c','ports':[{'name':'http',"
			 "'containerPort':%d}]}]},'status':{'phase':'Running','podIP':'10.244.%d.%d'}}",
			 meta, i % 2 + 1, 80 + rnd(r, 2), i % 2 + 1, i + 2);
	else
		snprintf(out, size, "{%s,'spec':{'podSelector':{'matchLabels':{'app':'a%d'}},'ingress':[{'from':[{%s"
			 "'podSelector':{'matchLabels':{'app':'a%d'}}}],'ports':[{'port':%s}]}]%s}}",
			 meta, rnd(r, 4), rnd(r, 2) ? "'namespaceSelector':{'matchLabels':{'team':'t1'}}," : "",
			 rnd(r, 4), rnd(r, 2) ? "'http'" : "81",
			 rnd(r, 3) ? "" : ",'egress':[{'to':[{'ipBlock':{'cidr':'10.244.0.0/16','except':['10.244.2.0/24']}}]}]");
}

static bool states_equal(const struct pw_policy_state *a, const struct pw_policy_state *b)
{
	return a->n_ids == b->n_ids && a->n_eps == b->n_eps && a->n_rules == b->n_rules &&
	       (!a->n_ids || !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(*a->ids))) &&
	       (!a->n_eps || !memcmp(a->eps, b->eps, (size_t)a->n_eps * sizeof(*a->eps))) &&
	       (!a->n_rules || !memcmp(a->rules, b->rules, (size_t)a->n_rules * sizeof(*a->rules)));
}

/* What an engine wants after a flush with these local pods. */
static int wanted(struct pw_policy_inc *e, const struct pw_local_pod *local, int n, struct pw_policy_state *out)
{
	struct pw_policy_state old, new;
	struct pw_policy_inc_stats st;
	int ret = pw_policy_inc_set_local(e, local, n);

	if (!ret)
		ret = pw_policy_inc_flush(e, &old, &new, &st);
	if (ret)
		return ret;
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	return pw_policy_inc_state(e, out);
}

static int feed(struct pw_policy_inc **e, const struct pw_policy_change *c, int n, bool reset)
{
	char err[512] = "";
	int r;

	if (reset) {
		pw_policy_inc_free(*e);
		*e = pw_policy_inc_new(true);
	}
	r = *e ? pw_policy_inc_apply(*e, c, n, err, sizeof(err)) : n ? -ESTALE : 0;   /* nothing held, nothing to change */
	if (r)
		printf("# apply: %d %s\n", r, err);
	return r;
}

static void test_by_object(void)
{
	char clash[2][32], json[1024], why[256], err[256];
	struct pw_local_pod local[OBJ_PODS / 2];
	int mismatches = 0, failures = 0, steps = 0, resets = 0, policed = 0, changes = 0, with_text = 0;

	PWT_EXPECT(find_id_clash("ns0", clash[0], clash[1]), "two policy names with one id found in ns0");
	for (int i = 0; i < OBJ_PODS / 2; i++) {
		/* Pods p0, p2, ... are this node's (node1, 10.244.1.x). */
		int p = 2 * i;

		local[i].ip = (10u << 24) | (244u << 16) | (1u << 8) | (unsigned)(p + 2);
		snprintf(local[i].ns, sizeof(local[i].ns), "ns%d", p % OBJ_NS);
		snprintf(local[i].name, sizeof(local[i].name), "p%d", p);
	}
	for (unsigned run = 0; run < 30; run++) {
		struct rng r = { 77 + run };
		struct pw_k8s_model *m = model();
		struct pw_policy_inc *fed = NULL;
		struct pw_node_config c0;

		pw_k8s_policy_by_object(m);
		for (int step = 0; step < 60; step++) {
			struct pw_policy_change *ch;
			struct pw_policy_inc *whole = pw_policy_inc_new(true);
			struct pw_policy_state a = { 0 }, b = { 0 };
			bool reset;
			char *text = NULL;
			int n, batch = 1 + rnd(&r, 4);

			for (int k = 0; k < batch; k++) {
				enum pw_k8s_kind kind = rnd(&r, 3) == 0 ? PW_K8S_NAMESPACE : rnd(&r, 2) ? PW_K8S_POD : PW_K8S_NETPOL;
				int i = rnd(&r, kind == PW_K8S_NAMESPACE ? OBJ_NS : kind == PW_K8S_POD ? OBJ_PODS : OBJ_POLS);
				bool gone = rnd(&r, 4) == 0;

				object(&r, kind, i, clash, gone, json, sizeof(json));
				if (gone)
					del(m, kind, json);
				else
					put(m, kind, json);
			}
			if (pw_k8s_policy_changes(m, &ch, &n, &reset) || feed(&fed, ch, n, reset)) {
				failures++;
				pw_policy_changes_free(ch, n);
				break;
			}
			resets += reset;
			changes += n;
			pw_policy_changes_free(ch, n);
			if (pw_k8s_policy_text(m, &text) || !whole ||
			    pw_policy_inc_load_json(whole, text, err, sizeof(err)) ||
			    (fed ? wanted(fed, local, OBJ_PODS / 2, &a) : 0) || wanted(whole, local, OBJ_PODS / 2, &b)) {
				printf("# run %u step %d: %s\n", run, step, err);
				failures++;
			} else if (!states_equal(&a, &b)) {
				if (mismatches++ < 3)
					printf("# run %u step %d: by object %d/%d/%d entries, whole text %d/%d/%d\n", run, step,
					       a.n_ids, a.n_eps, a.n_rules, b.n_ids, b.n_eps, b.n_rules);
			}
			policed += b.n_eps > 0;
			steps++;
			free(text);
			pw_policy_state_free(&a);
			pw_policy_state_free(&b);
			pw_policy_inc_free(whole);
		}
		put(m, PW_K8S_NETPOL, NP_DENY);
		if (pw_k8s_build_next(m, &base, NULL, &c0, why, sizeof(why)) || c0.policy_json)
			with_text++;
		pw_config_free(&c0);
		pw_policy_inc_free(fed);
		pw_k8s_model_free(m);
	}
	printf("# by object: %d steps, %d changes handed over, %d resets, %d steps with a policed pod\n", steps, changes,
	       resets, policed);
	PWT_EQ_INT(with_text, 0, "by object: a build with a policy makes no policy text (it is made for publishing)");
	PWT_EQ_INT(failures, 0, "by object: every step's changes taken and computed");
	PWT_EQ_INT(mismatches, 0, "by object: the engine fed object by object wants what the whole text gives");
	PWT_EXPECT(steps == 30 * 60 && policed > steps / 4 && resets > 30,
		   "by object: the sequences policed pods, dropped and brought back every policy");
}

int main(void)
{
	pw_log_init("test_k8s_policy", PW_LOG_ERROR, stderr);
	test_no_policy_no_text();
	test_pods();
	test_policies();
	test_elements_alone();
	test_incremental();
	test_id_clash();
	test_by_object();
	return pwt_done();
}
