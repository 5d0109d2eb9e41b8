/* The Kubernetes source's translation (userspace/lib/k8s_model.c): Node,
 * Service and EndpointSlice objects as the API serves them -> the node
 * config the reconciler applies. Fixtures are JSON with ' for " (J()). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "config.h"
#include "k8s_model.h"
#include "log.h"

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

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

/* Applies one fixture; returns what upsert/remove said. */
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
	pw_cidr_parse("10.244.0.0/16", &base.cluster_cidr);
	pw_cidr_parse("10.96.0.0/12", &base.service_cidr);
	base.masquerade = true;
	snprintf(base.uplink, sizeof(base.uplink), "eth0");
	return pw_k8s_model_new("node1", &base.cluster_cidr, &base.service_cidr);
}

#define NODE(name, cidr, ip) \
	"{'metadata':{'name':'" name "'},'spec':{'podCIDR':'" cidr "','podCIDRs':['" cidr "']}," \
	"'status':{'addresses':[{'type':'Hostname','address':'" name "'},{'type':'InternalIP','address':'" ip "'}]}}"

/* A model holding node1 (this node) so that builds succeed. */
static struct pw_k8s_model *model_with_node(void)
{
	struct pw_k8s_model *m = model();

	put(m, PW_K8S_NODE, NODE("node1", "10.244.1.0/24", "192.168.1.11"));
	return m;
}

static const struct pw_service_config *svc(const struct pw_node_config *c, const char *name)
{
	for (int i = 0; i < c->n_services; i++)
		if (strcmp(c->services[i].name, name) == 0)
			return &c->services[i];
	return NULL;
}

/* "ip:port,ip:port" of a service's backends, "" if none, "(absent)". */
static const char *backends(const struct pw_node_config *c, const char *name)
{
	static char buf[512];
	const struct pw_service_config *s = svc(c, name);
	size_t n = 0;

	if (!s)
		return "(absent)";
	buf[0] = '\0';
	for (int i = 0; i < s->n_backends; i++) {
		char ip[PW_IP4_STRLEN];

		pw_ip4_format(s->backends[i].ip, ip);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s:%u", i ? "," : "", ip, s->backends[i].port);
	}
	return buf;
}

static int build(struct pw_k8s_model *m, struct pw_node_config *c)
{
	char why[256];
	int r = pw_k8s_build(m, &base, c, why, sizeof(why));

	if (r)
		printf("# build: %d %s\n", r, why);
	return r;
}

static void test_nodes(void)
{
	struct pw_k8s_model *m = model();
	struct pw_node_config c;
	char why[256];
	int r;

	r = pw_k8s_build(m, &base, &c, why, sizeof(why));
	PWT_EQ_INT(r, -EAGAIN, "build waits for this node's Node");
	PWT_EXPECT(strstr(why, "node1") != NULL, "why names the node");
	put(m, PW_K8S_NODE, "{'metadata':{'name':'node1'},'spec':{},'status':{'addresses':"
	    "[{'type':'InternalIP','address':'192.168.1.11'}]}}");
	r = pw_k8s_build(m, &base, &c, why, sizeof(why));
	PWT_EQ_INT(r, -EAGAIN, "build waits for spec.podCIDR");
	PWT_EXPECT(strstr(why, "spec.podCIDR") && strstr(why, "--allocate-node-cidrs"),
		   "why says spec.podCIDR and --allocate-node-cidrs");
	PWT_EQ_INT(put(m, PW_K8S_NODE, NODE("node1", "10.244.1.0/24", "192.168.1.11")), 1, "podCIDR arriving is a change");
	PWT_EQ_INT(put(m, PW_K8S_NODE, NODE("node1", "10.244.1.0/24", "192.168.1.11")), 0, "same Node again is no change");
	put(m, PW_K8S_NODE, NODE("node2", "10.244.2.0/24", "192.168.1.12"));
	put(m, PW_K8S_NODE, NODE("node3", "10.244.3.0/24", "192.168.1.13"));
	put(m, PW_K8S_NODE, "{'metadata':{'name':'node4'},'spec':{},'status':{'addresses':"
	    "[{'type':'InternalIP','address':'192.168.1.14'}]}}");
	put(m, PW_K8S_NODE, NODE("node5", "10.1.5.0/24", "192.168.1.15"));   /* outside the cluster CIDR */
	put(m, PW_K8S_NODE, "{'metadata':{'name':'node6'},'spec':{'podCIDR':'10.244.6.0/24'},'status':{'addresses':"
	    "[{'type':'InternalIP','address':'fd00::6'},{'type':'ExternalIP','address':'1.2.3.4'}]}}");
	r = build(m, &c);
	PWT_EQ_INT(r, 0, "build with podCIDR and InternalIP");
	PWT_EQ_STR(c.name, "node1", "node name");
	PWT_EQ_INT(c.ip, IP("192.168.1.11"), "node ip from InternalIP");
	PWT_EQ_INT(c.pod_cidr.addr, IP("10.244.1.0"), "pod CIDR from spec.podCIDR");
	PWT_EQ_INT(c.pod_cidr.prefix, 24, "pod CIDR prefix");
	PWT_EQ_STR(c.uplink, "eth0", "uplink from the config file");
	PWT_EQ_INT(c.n_peers, 2, "peers: node2 and node3 (node4 no podCIDR, node5 outside, node6 no IPv4 InternalIP)");
	if (c.n_peers == 2) {
		PWT_EQ_STR(c.peers[0].name, "node2", "peer 0 name");
		PWT_EQ_INT(c.peers[0].ip, IP("192.168.1.12"), "peer 0 ip");
		PWT_EQ_INT(c.peers[1].pod_cidr.addr, IP("10.244.3.0"), "peer 1 pod CIDR");
	}
	pw_config_free(&c);

	PWT_EQ_INT(del(m, PW_K8S_NODE, "{'metadata':{'name':'node3'}}"), 1, "Node deleted");
	PWT_EQ_INT(del(m, PW_K8S_NODE, "{'metadata':{'name':'node3'}}"), 0, "deleting it again changes nothing");
	put(m, PW_K8S_NODE, NODE("node7", "10.244.7.0/24", "192.168.1.17"));
	build(m, &c);
	PWT_EQ_INT(c.n_peers, 2, "node3 gone, node7 added");
	PWT_EXPECT(c.n_peers == 2 && strcmp(c.peers[1].name, "node7") == 0, "node7 is a peer");
	pw_config_free(&c);

	put(m, PW_K8S_NODE, NODE("node1", "10.9.1.0/24", "192.168.1.11"));
	r = pw_k8s_build(m, &base, &c, why, sizeof(why));
	PWT_EQ_INT(r, -EINVAL, "own podCIDR outside cluster.podCIDR refused");
	PWT_EXPECT(strstr(why, "--cluster-cidr") != NULL, "why points at --cluster-cidr");
	/* Wider than /16: two pods would share a pw_pol_ep slot. */
	put(m, PW_K8S_NODE, NODE("node1", "10.244.0.0/15", "192.168.1.11"));
	r = pw_k8s_build(m, &base, &c, why, sizeof(why));
	PWT_CHECK(r == -EINVAL && strstr(why, "at least /16") && strstr(why, "--node-cidr-mask-size"),
		  "own podCIDR wider than /16 refused, naming --node-cidr-mask-size", "%d %s", r, why);
	pw_k8s_model_free(m);
}

#define SLICE(name, svc, ports, eps) \
	"{'metadata':{'name':'" name "','namespace':'default','labels':{'kubernetes.io/service-name':'" svc "'}}," \
	"'addressType':'IPv4','ports':[" ports "],'endpoints':[" eps "]}"
#define EP(ip) "{'addresses':['" ip "'],'conditions':{'ready':true,'serving':true,'terminating':false}}"

static void test_target_ports(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;

	/* named targetPort: the slice controller resolved "web" to 8080 under the port's name */
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'named','namespace':'default'},'spec':{'type':'ClusterIP',"
	    "'clusterIP':'10.96.0.10','ports':[{'name':'http','port':80,'protocol':'TCP','targetPort':'web'}]}}");
	put(m, PW_K8S_SLICE, SLICE("named-abc", "named", "{'name':'http','port':8080,'protocol':'TCP'}",
				   EP("10.244.1.5") "," EP("10.244.2.5")));
	/* numbered targetPort, unnamed port */
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'num','namespace':'default'},'spec':{'clusterIP':'10.96.0.11',"
	    "'ports':[{'port':80,'protocol':'TCP','targetPort':9376}]}}");
	put(m, PW_K8S_SLICE, SLICE("num-x", "num", "{'name':'','port':9376,'protocol':'TCP'}", EP("10.244.3.7")));
	build(m, &c);
	PWT_EQ_INT(c.n_services, 2, "two services");
	PWT_EQ_STR(backends(&c, "default/named:http/tcp"), "10.244.1.5:8080,10.244.2.5:8080",
		   "named targetPort: backends on the slice's port of that name");
	PWT_EQ_STR(backends(&c, "default/num:80/tcp"), "10.244.3.7:9376", "numbered targetPort, unnamed port");
	if (svc(&c, "default/named:http/tcp")) {
		const struct pw_service_config *s = svc(&c, "default/named:http/tcp");

		PWT_EQ_INT(s->vip, IP("10.96.0.10"), "vip from clusterIP");
		PWT_EQ_INT(s->port, 80, "frontend port is the service port");
		PWT_EQ_INT(s->protocol, IPPROTO_TCP, "tcp");
		PWT_EQ_INT(s->node_port, 0, "ClusterIP: no nodePort");
		PWT_EQ_INT(s->affinity_timeout, 0, "no affinity");
	}
	pw_config_free(&c);
	/* a slice port whose name matches no service port gives no backends */
	put(m, PW_K8S_SLICE, SLICE("named-abc", "named", "{'name':'other','port':8080,'protocol':'TCP'}", EP("10.244.1.5")));
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/named:http/tcp"), "", "slice port of another name: no backends");
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_multiport_protocols(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;

	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'multi','namespace':'shop'},'spec':{'clusterIP':'10.96.1.1',"
	    "'ports':[{'name':'http','port':80,'targetPort':8080},{'name':'metrics','port':9090,'targetPort':'prom'}]}}");
	put(m, PW_K8S_SLICE, "{'metadata':{'name':'multi-1','namespace':'shop','labels':{'kubernetes.io/service-name':'multi'}},"
	    "'addressType':'IPv4','ports':[{'name':'metrics','port':9100,'protocol':'TCP'},{'name':'http','port':8080,'protocol':'TCP'}],"
	    "'endpoints':[" EP("10.244.2.9") "]}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'kube-dns','namespace':'kube-system'},'spec':{'clusterIP':'10.96.0.10',"
	    "'ports':[{'name':'dns','port':53,'protocol':'UDP','targetPort':53},"
	    "{'name':'dns-tcp','port':53,'protocol':'TCP','targetPort':53},"
	    "{'name':'sctp','port':53,'protocol':'SCTP','targetPort':53}]}}");
	put(m, PW_K8S_SLICE, "{'metadata':{'name':'kube-dns-1','namespace':'kube-system','labels':{'kubernetes.io/service-name':'kube-dns'}},"
	    "'addressType':'IPv4','ports':[{'name':'dns','port':53,'protocol':'UDP'},{'name':'dns-tcp','port':53,'protocol':'TCP'},"
	    "{'name':'sctp','port':53,'protocol':'SCTP'}],'endpoints':[" EP("10.244.1.3") "]}");
	build(m, &c);
	PWT_EQ_INT(c.n_services, 4, "multi-port: 2 frontends; TCP+UDP on 53: 2; SCTP left out");
	PWT_EQ_STR(backends(&c, "shop/multi:http/tcp"), "10.244.2.9:8080", "multi-port: http");
	PWT_EQ_STR(backends(&c, "shop/multi:metrics/tcp"), "10.244.2.9:9100", "multi-port: metrics by name");
	PWT_EQ_STR(backends(&c, "kube-system/kube-dns:dns/udp"), "10.244.1.3:53", "UDP port");
	PWT_EQ_STR(backends(&c, "kube-system/kube-dns:dns-tcp/tcp"), "10.244.1.3:53", "same port on TCP");
	PWT_EQ_STR(backends(&c, "kube-system/kube-dns:sctp/tcp"), "(absent)", "SCTP not served");
	if (svc(&c, "kube-system/kube-dns:dns/udp"))
		PWT_EQ_INT(svc(&c, "kube-system/kube-dns:dns/udp")->protocol, IPPROTO_UDP, "UDP protocol");
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_affinity_nodeport_types(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;

	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'sticky','namespace':'a'},'spec':{'clusterIP':'10.96.2.1',"
	    "'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':300}},'ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'sticky-default','namespace':'a'},'spec':{'clusterIP':'10.96.2.2',"
	    "'sessionAffinity':'ClientIP','ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'np','namespace':'a'},'spec':{'type':'NodePort','clusterIP':'10.96.2.3',"
	    "'ports':[{'port':80,'nodePort':30080},{'name':'u','port':81,'protocol':'UDP','nodePort':30081}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'lb','namespace':'a'},'spec':{'type':'LoadBalancer','clusterIP':'10.96.2.4',"
	    "'ports':[{'port':443,'nodePort':30443}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'cip','namespace':'a'},'spec':{'type':'ClusterIP','clusterIP':'10.96.2.5',"
	    "'ports':[{'port':80,'nodePort':30085}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'headless','namespace':'a'},'spec':{'clusterIP':'None','ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'ext','namespace':'a'},'spec':{'type':'ExternalName',"
	    "'externalName':'example.com','ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'outside','namespace':'a'},'spec':{'clusterIP':'10.200.0.1','ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'v6','namespace':'a'},'spec':{'clusterIP':'fd00::1','ports':[{'port':80}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'wide','namespace':'a'},'spec':{'type':'NodePort','clusterIP':'10.96.2.6',"
	    "'ports':[{'port':80,'nodePort':8080}]}}");
	build(m, &c);
	PWT_EQ_INT(c.n_services, 7, "headless, ExternalName, outside serviceCIDR and IPv6 ClusterIP left out");
	PWT_EXPECT(svc(&c, "a/sticky:80/tcp") && svc(&c, "a/sticky:80/tcp")->affinity_timeout == 300,
		   "ClientIP affinity with timeoutSeconds 300");
	PWT_EXPECT(svc(&c, "a/sticky-default:80/tcp") &&
		   svc(&c, "a/sticky-default:80/tcp")->affinity_timeout == PW_K8S_AFFINITY_DEFAULT,
		   "ClientIP affinity without config: 10800 s");
	PWT_EXPECT(svc(&c, "a/np:80/tcp") && svc(&c, "a/np:80/tcp")->node_port == 30080, "NodePort tcp");
	PWT_EXPECT(svc(&c, "a/np:u/udp") && svc(&c, "a/np:u/udp")->node_port == 30081, "NodePort udp");
	PWT_EXPECT(svc(&c, "a/lb:443/tcp") && svc(&c, "a/lb:443/tcp")->node_port == 30443, "LoadBalancer's NodePort");
	PWT_EXPECT(!svc(&c, "a/np:80/tcp")->external_local && !svc(&c, "a/np:80/tcp")->internal_local,
		   "traffic policies default to Cluster");
	PWT_EXPECT(svc(&c, "a/cip:80/tcp") && svc(&c, "a/cip:80/tcp")->node_port == 0, "ClusterIP type: no nodePort");
	PWT_EXPECT(svc(&c, "a/wide:80/tcp") && svc(&c, "a/wide:80/tcp")->node_port == 0,
		   "nodePort outside 30000-32767: ClusterIP only");
	PWT_EXPECT(!svc(&c, "a/headless:80/tcp") && !svc(&c, "a/ext:80/tcp") && !svc(&c, "a/outside:80/tcp"),
		   "headless/ExternalName/outside absent");
	pw_config_free(&c);
	PWT_EQ_INT(put(m, PW_K8S_SERVICE, "{'metadata':{'name':'headless','namespace':'a'},'spec':{'clusterIP':'None',"
		       "'ports':[{'port':81}]}}"), 0, "changing a headless service is no change to the datapath");
	pw_k8s_model_free(m);
}

#define EPC(ip, cond) "{'addresses':['" ip "'],'conditions':{" cond "}}"

static void test_ready_terminating(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;

	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{'clusterIP':'10.96.3.1',"
	    "'ports':[{'name':'http','port':80}]}}");
	put(m, PW_K8S_SLICE, SLICE("web-1", "web", "{'name':'http','port':8080}",
				   EPC("10.244.1.1", "'ready':true") ","
				   EPC("10.244.1.2", "") ","   /* ready nil: ready */
				   EPC("10.244.1.3", "'ready':false,'serving':true,'terminating':true") ","
				   EPC("10.244.1.4", "'ready':false,'serving':false,'terminating':true") ","
				   EPC("10.244.1.5", "'ready':false")));
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:http/tcp"), "10.244.1.1:8080,10.244.1.2:8080",
		   "ready endpoints only (ready nil counts as ready)");
	pw_config_free(&c);
	put(m, PW_K8S_SLICE, SLICE("web-1", "web", "{'name':'http','port':8080}",
				   EPC("10.244.1.3", "'ready':false,'serving':true,'terminating':true") ","
				   EPC("10.244.1.4", "'ready':false,'serving':false,'terminating':true") ","
				   EPC("10.244.1.5", "'ready':false")));
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:http/tcp"), "10.244.1.3:8080",
		   "no ready endpoint left: serving terminating ones");
	pw_config_free(&c);
	put(m, PW_K8S_SLICE, SLICE("web-2", "web", "{'name':'http','port':8080}", EP("10.244.2.1")));
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:http/tcp"), "10.244.2.1:8080",
		   "a ready endpoint in another slice wins over terminating ones");
	pw_config_free(&c);
	put(m, PW_K8S_SLICE, SLICE("web-1", "web", "{'name':'http','port':8080}", EPC("10.244.1.5", "'ready':false")));
	del(m, PW_K8S_SLICE, "{'metadata':{'name':'web-2','namespace':'default'}}");
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:http/tcp"), "", "nothing ready or serving: service without backends");
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_slices(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;
	struct pw_k8s_counts n;

	/* a slice first, its service later (watches are not ordered across resources) */
	PWT_EQ_INT(put(m, PW_K8S_SLICE, SLICE("web-a", "web", "{'name':'','port':8080}",
					      EP("10.244.2.2") "," EP("10.244.1.1"))), 1, "slice of an unknown service cached");
	put(m, PW_K8S_SLICE, SLICE("web-b", "web", "{'name':'','port':8080}", EP("10.244.3.3") "," EP("10.244.1.1")));
	put(m, PW_K8S_SLICE, SLICE("ghost-a", "ghost", "{'name':'','port':80}", EP("10.244.9.9")));
	put(m, PW_K8S_SLICE, "{'metadata':{'name':'web-v6','namespace':'default','labels':{'kubernetes.io/service-name':'web'}},"
	    "'addressType':'IPv6','ports':[{'name':'','port':8080}],'endpoints':[{'addresses':['fd00::1']}]}");
	put(m, PW_K8S_SLICE, "{'metadata':{'name':'nolabel','namespace':'default'},"
	    "'addressType':'IPv4','ports':[{'name':'','port':8080}],'endpoints':[" EP("10.244.7.7") "]}");
	pw_k8s_counts(m, &n);
	PWT_EQ_INT(n.slices, 3, "IPv6 slice and slice without service label not cached");
	PWT_EQ_INT(n.endpoints, 5, "endpoints counted");
	build(m, &c);
	PWT_EQ_INT(c.n_services, 0, "slices of unknown services make no service");
	pw_config_free(&c);
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{'clusterIP':'10.96.4.1',"
	    "'ports':[{'port':80,'targetPort':8080}]}}");
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:80/tcp"), "10.244.1.1:8080,10.244.2.2:8080,10.244.3.3:8080",
		   "several slices, sorted, an endpoint in two slices once");
	pw_config_free(&c);
	/* an IPv4 slice turned into something else is removed */
	PWT_EQ_INT(put(m, PW_K8S_SLICE, "{'metadata':{'name':'web-b','namespace':'default','labels':"
		       "{'kubernetes.io/service-name':'web'}},'addressType':'FQDN','endpoints':[]}"), 1,
		   "slice no longer IPv4: dropped");
	build(m, &c);
	PWT_EQ_STR(backends(&c, "default/web:80/tcp"), "10.244.1.1:8080,10.244.2.2:8080", "its endpoints gone");
	pw_config_free(&c);
	PWT_EQ_INT(put(m, PW_K8S_SLICE, SLICE("web-a", "web", "{'name':'','port':8080}", EP("10.244.2.2") "," EP("10.244.1.1"))),
		   0, "same slice again: no change");
	PWT_EQ_INT(put(m, PW_K8S_SLICE, SLICE("web-a", "web", "{'name':'','port':8080}", EP("10.244.2.2"))),
		   1, "an endpoint less: a change");

	/* relist: what is not listed again is gone */
	pw_k8s_relist_begin(m, PW_K8S_SLICE);
	put(m, PW_K8S_SLICE, SLICE("web-a", "web", "{'name':'','port':8080}", EP("10.244.2.2")));
	PWT_EQ_INT(pw_k8s_relist_end(m, PW_K8S_SLICE), 1, "relist dropped the ghost slice");
	PWT_EXPECT(pw_k8s_synced(m, PW_K8S_SLICE), "synced after a list");
	PWT_EXPECT(!pw_k8s_synced(m, PW_K8S_SERVICE), "services not synced without a list");
	pw_k8s_counts(m, &n);
	PWT_EQ_INT(n.slices, 1, "one slice left");

	/* deletion */
	PWT_EQ_INT(del(m, PW_K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'}}"), 1, "Service deleted");
	build(m, &c);
	PWT_EQ_INT(c.n_services, 0, "its frontends gone");
	pw_config_free(&c);
	PWT_EQ_INT(del(m, PW_K8S_SLICE, "{'metadata':{'name':'web-a','namespace':'default'}}"), 1, "slice deleted");
	pw_k8s_counts(m, &n);
	PWT_EQ_INT(n.endpoints, 0, "no endpoints left");
	PWT_EQ_INT(put(m, PW_K8S_SERVICE, "{'metadata':{}}"), -EINVAL, "object without a name refused");
	pw_k8s_model_free(m);
}

static void test_names_conflicts(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c;
	char a[PW_NAME_MAX], b[PW_NAME_MAX];
	const char *ns = "a-namespace-with-a-rather-long-name/and-a-service-with-a-long-name-too";

	pw_k8s_service_name("default/web", "http", 80, IPPROTO_TCP, a);
	PWT_EQ_STR(a, "default/web:http/tcp", "named port");
	pw_k8s_service_name("default/web", "", 53, IPPROTO_UDP, a);
	PWT_EQ_STR(a, "default/web:53/udp", "unnamed port: its number");
	pw_k8s_service_name(ns, "metrics", 9090, IPPROTO_TCP, a);
	pw_k8s_service_name(ns, "metrics", 9090, IPPROTO_UDP, b);
	PWT_EQ_INT(strlen(a), PW_NAME_MAX - 1, "long name cut to 63");
	PWT_EXPECT(strncmp(a, ns, 40) == 0 && strchr(a, '~'), "cut name keeps its start, hash after ~");
	PWT_EXPECT(strcmp(a, b) != 0, "two long names differing at the end stay distinct");

	/* two services claiming one ClusterIP:port (a reused IP whose old owner's deletion is late) */
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'old','namespace':'x'},'spec':{'type':'NodePort','clusterIP':'10.96.5.1',"
	    "'ports':[{'port':80,'nodePort':30001}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'new','namespace':'x'},'spec':{'type':'NodePort','clusterIP':'10.96.5.1',"
	    "'ports':[{'port':80,'nodePort':30002}]}}");
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'np2','namespace':'x'},'spec':{'type':'NodePort','clusterIP':'10.96.5.2',"
	    "'ports':[{'port':80,'nodePort':30002}]}}");
	build(m, &c);
	PWT_EQ_INT(c.n_services, 2, "duplicate frontend left out");
	PWT_EXPECT(svc(&c, "x/new:80/tcp") && !svc(&c, "x/old:80/tcp"), "the earlier name keeps the frontend");
	PWT_EXPECT(svc(&c, "x/np2:80/tcp") && svc(&c, "x/np2:80/tcp")->node_port == 0,
		   "duplicate nodePort: the later keeps its ClusterIP only");
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

/* The built config is one pw_config_parse accepts, and pw_config_format
 * writes it so (the agent publishes it for podwirectl). */
static void test_format_roundtrip(void)
{
	struct pw_k8s_model *m = model_with_node();
	struct pw_node_config c, back;
	char err[256] = "";
	char *text;
	int r;

	put(m, PW_K8S_NODE, NODE("node2", "10.244.2.0/24", "192.168.1.12"));
	put(m, PW_K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{'type':'NodePort',"
	    "'externalTrafficPolicy':'Local','internalTrafficPolicy':'Local',"
	    "'clusterIP':'10.96.3.1','sessionAffinity':'ClientIP','ports':[{'name':'http','port':80,'nodePort':30080},"
	    "{'name':'q','port':81,'protocol':'UDP'}]}}");
	put(m, PW_K8S_SLICE, SLICE("web-1", "web", "{'name':'http','port':8080},{'name':'q','port':81,'protocol':'UDP'}",
				   EP("10.244.1.1") "," EP("10.244.2.1")));
	build(m, &c);
	text = pw_config_format(&c);
	PWT_EXPECT(text != NULL, "pw_config_format");
	r = text ? pw_config_parse(text, &back, err, sizeof(err)) : -1;
	PWT_CHECK(r == 0, "formatted config parses", "%d %s", r, err);
	if (r == 0) {
		PWT_EQ_STR(back.name, c.name, "round trip: node name");
		PWT_EQ_INT(back.n_peers, 1, "round trip: peers");
		PWT_EQ_INT(back.n_services, 2, "round trip: services");
		PWT_EQ_STR(backends(&back, "default/web:http/tcp"), "10.244.1.1:8080,10.244.2.1:8080", "round trip: backends");
		PWT_EXPECT(svc(&back, "default/web:http/tcp") && svc(&back, "default/web:http/tcp")->node_port == 30080 &&
			   svc(&back, "default/web:http/tcp")->affinity_timeout == PW_K8S_AFFINITY_DEFAULT,
			   "round trip: nodePort and affinity");
		PWT_EXPECT(svc(&back, "default/web:q/udp") && svc(&back, "default/web:q/udp")->protocol == IPPROTO_UDP,
			   "round trip: udp");
		PWT_EXPECT(svc(&back, "default/web:http/tcp")->external_local &&
			   svc(&back, "default/web:http/tcp")->internal_local,
			   "round trip: externalTrafficPolicy and internalTrafficPolicy Local");
		PWT_EXPECT(svc(&back, "default/web:q/udp") && !svc(&back, "default/web:q/udp")->external_local &&
			   svc(&back, "default/web:q/udp")->internal_local,
			   "round trip: a port without nodePort has no external policy, keeps the internal one");
		pw_config_free(&back);
	}
	free(text);
	pw_config_free(&c);
	pw_k8s_model_free(m);
}

static void test_config_k8s(void)
{
	struct pw_node_config c;
	char err[256];
	int r;

	r = pw_config_parse_k8s("{}", &c, err, sizeof(err));
	PWT_EQ_INT(r, 0, "empty Kubernetes-mode config: defaults");
	PWT_EQ_INT(c.service_cidr.addr, IP("10.96.0.0"), "default serviceCIDR");
	PWT_EQ_STR(c.uplink, "", "no uplink: found from the InternalIP");
	pw_config_free(&c);
	r = pw_config_parse_k8s("{\"cluster\": {\"podCIDR\": \"10.10.0.0/16\", \"routing\": \"vxlan\", "
				"\"masquerade\": false}, \"node\": {\"uplink\": \"eth1\", \"mtu\": 1400}}", &c, err, sizeof(err));
	PWT_CHECK(r == 0, "cluster section and node.uplink/mtu", "%d %s", r, err);
	PWT_EQ_INT(c.routing, PW_ROUTING_VXLAN, "routing");
	PWT_EQ_STR(c.uplink, "eth1", "uplink");
	PWT_EQ_INT(c.mtu, 1400, "mtu");
	pw_config_free(&c);
	r = pw_config_parse_k8s("{\"node\": {\"name\": \"n1\"}}", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "node.name") && strstr(err, "Kubernetes mode"),
		  "node.name refused in Kubernetes mode", "%d %s", r, err);
	r = pw_config_parse_k8s("{\"services\": []}", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "services"), "services refused in Kubernetes mode", "%d %s", r, err);
	r = pw_config_parse_k8s("{\"cluster\": {\"routing\": \"bgp\"}}", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "cluster.routing"), "bad routing named", "%d %s", r, err);
	r = pw_config_parse("{\"cluster\": {}}", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "node"), "JSON-file mode still needs the node section", "%d %s", r, err);
}

static bool same_backends(const struct pw_service_config *x, const struct pw_service_config *y)
{
	for (int i = 0; i < x->n_backends; i++)
		if (x->backends[i].ip != y->backends[i].ip || x->backends[i].port != y->backends[i].port)
			return false;
	return true;
}

/* Two configs hold the same services in the same order. */
static bool same_services(const struct pw_node_config *a, const struct pw_node_config *b, char *diff, size_t len)
{
	if (a->n_services != b->n_services || a->n_peers != b->n_peers) {
		snprintf(diff, len, "%d/%d services, %d/%d peers", a->n_services, b->n_services, a->n_peers,
			 b->n_peers);
		return false;
	}
	for (int i = 0; i < a->n_services; i++) {
		const struct pw_service_config *x = &a->services[i], *y = &b->services[i];

		if (strcmp(x->name, y->name) || x->vip != y->vip || x->port != y->port || x->protocol != y->protocol ||
		    x->node_port != y->node_port || x->affinity_timeout != y->affinity_timeout ||
		    x->n_backends != y->n_backends || !same_backends(x, y)) {
			snprintf(diff, len, "entry %d: %s / %s: vip %x/%x port %u/%u np %u/%u aff %u/%u backends %d/%d",
				 i, x->name, y->name, x->vip, y->vip, x->port, y->port, x->node_port, y->node_port,
				 x->affinity_timeout, y->affinity_timeout, x->n_backends, y->n_backends);
			return false;
		}
	}
	return true;
}

/* One random change: a Service (re)defined, made headless, or deleted; a
 * slice's endpoints changed, moved to another Service, or deleted. A
 * ClusterIP of a small pool makes two Services collide now and then. */
static void random_change(struct pw_k8s_model *m1, struct pw_k8s_model *m2, unsigned *seed, int n_svc)
{
	char json[1024];
	int svc = rand_r(seed) % n_svc, op = rand_r(seed) % 7, owner = rand_r(seed) % n_svc;
	enum pw_k8s_kind kind = op < 3 ? PW_K8S_SERVICE : PW_K8S_SLICE;
	bool remove = op == 2 || op == 6;

	if (kind == PW_K8S_SERVICE)
		snprintf(json, sizeof(json),
			 "{'metadata':{'name':'s%d','namespace':'ns'},'spec':{'type':'NodePort','clusterIP':'%s',"
			 "'ports':[{'name':'a','port':%d,'protocol':'TCP','nodePort':%d},"
			 "{'name':'b','port':53,'protocol':'UDP'}]}}",
			 svc, op == 1 ? "None" : "", 80 + rand_r(seed) % 3, 30000 + rand_r(seed) % (n_svc * 40));
	else
		snprintf(json, sizeof(json),
			 "{'metadata':{'name':'s%d-x','namespace':'ns','labels':{'kubernetes.io/service-name':'s%d'}},"
			 "'addressType':'IPv4','ports':[{'name':'a','port':8080,'protocol':'TCP'},"
			 "{'name':'b','port':5353,'protocol':'UDP'}],'endpoints':[{'addresses':['10.244.1.%d']},"
			 "{'addresses':['10.244.2.%d'],'conditions':{'ready':%s}}]}",
			 svc, op == 5 ? owner : svc, 1 + rand_r(seed) % 200, 1 + rand_r(seed) % 200,
			 rand_r(seed) % 2 ? "true" : "false");
	if (kind == PW_K8S_SERVICE && op != 1) {
		/* a ClusterIP from a pool of 6 n_svc: collisions happen */
		char ip[32], *at = strstr(json, "'clusterIP':''");

		snprintf(ip, sizeof(ip), "10.96.%d.%d", 0, 1 + rand_r(seed) % (n_svc * 6));
		if (at) {
			char tail[1024];

			snprintf(tail, sizeof(tail), "%s", at + strlen("'clusterIP':''"));
			snprintf(at, sizeof(json) - (size_t)(at - json), "'clusterIP':'%s'%s", ip, tail);
		}
	}
	if (remove) {
		del(m1, kind, json);
		del(m2, kind, json);
	} else {
		put(m1, kind, json);
		put(m2, kind, json);
	}
}

/* Builds from the previous build, after each batch of random changes, are
 * the whole build of the same objects (a twin model fed the same). */
static void test_incremental_builds(void)
{
	struct pw_k8s_model *inc = model_with_node(), *whole = model_with_node();
	struct pw_node_config cur, next, ref;
	struct pw_k8s_counts counts;
	unsigned seed = 12345;
	const int n_svc = 40;
	int mismatches = 0, errors = 0;
	char why[256], diff[256] = "";

	for (int i = 0; i < n_svc * 3; i++)
		random_change(inc, whole, &seed, n_svc);
	if (pw_k8s_build_next(inc, &base, NULL, &cur, why, sizeof(why)))
		errors++;
	for (int round = 0; round < 3000 && !errors; round++) {
		int batch = 1 + rand_r(&seed) % (round % 50 == 49 ? 100 : 3);

		for (int k = 0; k < batch; k++)
			random_change(inc, whole, &seed, n_svc);
		if (pw_k8s_build_next(inc, &base, &cur, &next, why, sizeof(why)) ||
		    pw_k8s_build(whole, &base, &ref, why, sizeof(why))) {
			errors++;
			break;
		}
		if (!same_services(&next, &ref, diff, sizeof(diff)) && mismatches++ == 0)
			printf("# round %d: %s\n", round, diff);
		pw_k8s_release(inc, &cur);
		pw_config_free(&ref);
		cur = next;
	}
	pw_k8s_counts(inc, &counts);
	PWT_EQ_INT(errors, 0, "incremental: every build succeeds");
	PWT_EQ_INT(mismatches, 0, "incremental: 3000 builds from the previous one equal whole builds");
	PWT_CHECK(counts.builds_incremental > 1500, "incremental: most builds are incremental",
		  "%lu incremental, %lu whole", counts.builds_incremental, counts.builds_whole);
	PWT_CHECK(counts.builds_whole > 10, "incremental: conflicts and big batches build whole",
		  "%lu whole", counts.builds_whole);
	pw_k8s_release(inc, &cur);
	pw_k8s_model_free(inc);
	pw_k8s_model_free(whole);
}

int main(void)
{
	pw_log_init("test_k8s_model", PW_LOG_ERROR, stderr);
	test_nodes();
	test_target_ports();
	test_multiport_protocols();
	test_affinity_nodeport_types();
	test_ready_terminating();
	test_slices();
	test_names_conflicts();
	test_format_roundtrip();
	test_config_k8s();
	test_incremental_builds();
	return pwt_done();
}
