/* Node config parsing (userspace/lib/config.c): the good example lands in
 * the right fields, every bad input fails with a message naming the field. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pwtest.h"
#include "config.h"

static const char *good =
	"{\n"
	"  \"node\":    {\"name\": \"node1\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\", \"podCIDR\": \"10.244.1.0/24\"},\n"
	"  \"cluster\": {\"podCIDR\": \"10.244.0.0/16\", \"serviceCIDR\": \"10.96.0.0/12\",\n"
	"              \"routing\": \"native\", \"masquerade\": true},\n"
	"  \"peers\":   [{\"name\": \"node2\", \"ip\": \"192.168.1.12\", \"podCIDR\": \"10.244.2.0/24\"},\n"
	"              {\"name\": \"node3\", \"ip\": \"192.168.1.13\", \"podCIDR\": \"10.244.3.0/24\"}],\n"
	"  \"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\",\n"
	"                \"nodePort\": 30080, \"algorithm\": \"random\", \"affinityTimeoutSeconds\": 0,\n"
	"                \"externalTrafficPolicy\": \"Local\", \"healthCheckNodePort\": 32000,\n"
	"                \"backends\": [{\"ip\": \"10.244.1.2\", \"port\": 8080}, {\"ip\": \"10.244.2.2\", \"port\": 8080, \"terminating\": true}]},\n"
	"               {\"name\": \"dns\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"udp\",\n"
	"                \"algorithm\": \"maglev\", \"affinityTimeoutSeconds\": 30, \"internalTrafficPolicy\": \"Local\",\n"
	"                \"backends\": []}]\n"
	"}\n";

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

static void test_good(void)
{
	struct pw_node_config c;
	char err[256] = "";
	int r = pw_config_parse(good, &c, err, sizeof(err));

	PWT_CHECK(r == 0, "good example parses", "returned %d: %s", r, err);
	if (r)
		return;
	PWT_EQ_STR(c.name, "node1", "node.name");
	PWT_EQ_INT(c.ip, IP("192.168.1.11"), "node.ip");
	PWT_EQ_STR(c.uplink, "eth0", "node.uplink");
	PWT_EQ_INT(c.pod_cidr.addr, IP("10.244.1.0"), "node.podCIDR addr");
	PWT_EQ_INT(c.pod_cidr.prefix, 24, "node.podCIDR prefix");
	PWT_EQ_INT(c.cluster_cidr.prefix, 16, "cluster.podCIDR");
	PWT_EQ_INT(c.service_cidr.addr, IP("10.96.0.0"), "cluster.serviceCIDR");
	PWT_EQ_INT(c.routing, PW_ROUTING_NATIVE, "cluster.routing");
	PWT_EXPECT(c.masquerade, "cluster.masquerade");
	PWT_EQ_INT(c.mtu, 0, "node.mtu default 0 (from uplink)");
	PWT_EQ_INT(c.n_peers, 2, "two peers");
	if (c.n_peers == 2) {
		PWT_EQ_STR(c.peers[1].name, "node3", "peers[1].name");
		PWT_EQ_INT(c.peers[1].ip, IP("192.168.1.13"), "peers[1].ip");
		PWT_EQ_INT(c.peers[1].pod_cidr.addr, IP("10.244.3.0"), "peers[1].podCIDR");
	}
	PWT_EQ_INT(c.n_services, 2, "two services");
	if (c.n_services == 2) {
		struct pw_service_config *w = &c.services[0], *d = &c.services[1];

		PWT_EQ_STR(w->name, "web", "services[0].name");
		PWT_EQ_INT(w->vip, IP("10.96.0.10"), "services[0].vip");
		PWT_EQ_INT(w->port, 80, "services[0].port");
		PWT_EQ_INT(w->protocol, IPPROTO_TCP, "services[0].protocol");
		PWT_EQ_INT(w->node_port, 30080, "services[0].nodePort");
		PWT_EXPECT(!w->maglev, "services[0].algorithm random");
		PWT_EXPECT(w->external_local && !w->internal_local, "services[0]: externalTrafficPolicy Local only");
		PWT_EQ_INT(w->health_check_port, 32000, "services[0].healthCheckNodePort");
		PWT_EXPECT(d->internal_local && !d->external_local, "services[1]: internalTrafficPolicy Local only");
		PWT_EQ_INT(w->n_backends, 2, "services[0] two backends");
		if (w->n_backends == 2) {
			PWT_EQ_INT(w->backends[1].ip, IP("10.244.2.2"), "services[0].backends[1].ip");
			PWT_EQ_INT(w->backends[1].port, 8080, "services[0].backends[1].port");
			PWT_EXPECT(w->backends[1].terminating && !w->backends[0].terminating,
				   "services[0].backends[1] terminating, [0] not (the default)");
		}
		PWT_EQ_INT(d->protocol, IPPROTO_UDP, "services[1].protocol udp");
		PWT_EQ_INT(d->node_port, 0, "services[1] no nodePort");
		PWT_EXPECT(d->maglev, "services[1].algorithm maglev");
		PWT_EQ_INT(d->affinity_timeout, 30, "services[1].affinityTimeoutSeconds");
		PWT_EQ_INT(d->n_backends, 0, "services[1] no backends");
	}
	pw_config_free(&c);
	PWT_EXPECT(c.peers == NULL && c.services == NULL && c.n_peers == 0, "free resets");
}

static void test_defaults(void)
{
	const char *minimal =
		"{\"node\": {\"name\": \"n\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\","
		" \"podCIDR\": \"10.244.7.0/24\", \"mtu\": 1400}}";
	struct pw_node_config c;
	char err[256] = "";
	int r = pw_config_parse(minimal, &c, err, sizeof(err));

	PWT_CHECK(r == 0, "minimal config parses", "returned %d: %s", r, err);
	if (r)
		return;
	PWT_EQ_INT(c.cluster_cidr.addr, IP("10.244.0.0"), "default cluster.podCIDR addr");
	PWT_EQ_INT(c.cluster_cidr.prefix, 16, "default cluster.podCIDR prefix");
	PWT_EQ_INT(c.service_cidr.prefix, 12, "default cluster.serviceCIDR");
	PWT_EQ_INT(c.routing, PW_ROUTING_NATIVE, "default routing native");
	PWT_EXPECT(c.masquerade, "default masquerade true");
	PWT_EQ_INT(c.mtu, 1400, "node.mtu");
	PWT_EQ_INT(c.n_peers, 0, "no peers");
	PWT_EQ_INT(c.n_services, 0, "no services");
	pw_config_free(&c);
}

/* Replaces the first occurrence of from in the good example by to. */
static char *mutate(const char *from, const char *to)
{
	const char *at = strstr(good, from);
	size_t n = strlen(good) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);

	if (!at || !out) {
		printf("# bad fixture: %s not in the example\n", from);
		free(out);
		return NULL;
	}
	snprintf(out, n, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
	return out;
}

struct bad_case {
	const char *name;
	const char *from, *to;   /* mutation of the good example */
	const char *want;        /* substring the error must contain */
};

static const struct bad_case bad_cases[] = {
	{ "missing node.ip", "\"ip\": \"192.168.1.11\", ", "", "node.ip: missing" },
	{ "missing node", "\"node\":    {\"name\": \"node1\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\", \"podCIDR\": \"10.244.1.0/24\"},", "", "node: missing" },
	{ "missing node.uplink", "\"uplink\": \"eth0\", ", "", "node.uplink: missing" },
	{ "bad node.ip", "\"192.168.1.11\"", "\"192.168.1.300\"", "node.ip: \"192.168.1.300\" is not an IPv4 address" },
	{ "podCIDR host bits", "\"10.244.1.0/24\"", "\"10.244.1.5/24\"", "node.podCIDR: \"10.244.1.5/24\" has host bits set" },
	{ "podCIDR /33", "\"10.244.1.0/24\"", "\"10.244.1.0/33\"", "node.podCIDR: \"10.244.1.0/33\" is not a CIDR" },
	{ "podCIDR wider than /16", "\"10.244.1.0/24\"", "\"10.244.0.0/15\"", "node.podCIDR: /15 is wider than a node's pods can use (at least /16)" },
	{ "podCIDR no prefix", "\"10.244.1.0/24\"", "\"10.244.1\"", "node.podCIDR: \"10.244.1\" is not a CIDR" },
	{ "bad cluster CIDR", "\"10.244.0.0/16\"", "\"10.244.0.0/x\"", "cluster.podCIDR:" },
	{ "podCIDR outside cluster", "\"10.244.1.0/24\"", "\"10.245.1.0/24\"", "node.podCIDR: 10.245.1.0/24 is not inside cluster.podCIDR 10.244.0.0/16" },
	{ "peer outside cluster", "\"10.244.2.0/24\"", "\"10.99.2.0/24\"", "peers[0].podCIDR: 10.99.2.0/24 is not inside cluster.podCIDR" },
	{ "overlapping peers", "\"10.244.3.0/24\"", "\"10.244.2.128/25\"", "peers[1].podCIDR: 10.244.2.128/25 overlaps peers[0].podCIDR" },
	{ "peer overlaps node", "\"10.244.2.0/24\"", "\"10.244.0.0/23\"", "peers[0].podCIDR: 10.244.0.0/23 overlaps node.podCIDR" },
	{ "duplicate peer name", "\"node3\"", "\"node2\"", "peers[1].name: \"node2\" is also peers[0].name" },
	{ "peer missing ip", "\"ip\": \"192.168.1.12\", ", "", "peers[0].ip: missing" },
	{ "unknown routing mode", "\"native\"", "\"bgp\"", "cluster.routing: \"bgp\" is not one of native, vxlan" },
	{ "routing wrong type", "\"native\"", "1", "cluster.routing: expected a string" },
	{ "masquerade wrong type", "\"masquerade\": true", "\"masquerade\": \"yes\"", "cluster.masquerade: expected true or false" },
	{ "node.ip wrong type", "\"ip\": \"192.168.1.11\"", "\"ip\": 3232235787", "node.ip: expected a string" },
	{ "peers wrong type", "\"peers\":   [", "\"peers\": 5, \"peers\": [", "peers: expected an array" },
	{ "node wrong type", "\"node\":    {", "\"node\": \"n\", \"node\": {", "node: expected an object" },
	{ "unknown field", "\"masquerade\": true", "\"masquerade\": true, \"mascarade\": false", "cluster.mascarade: unknown field" },
	{ "port out of range", "\"port\": 80,", "\"port\": 70000,", "services[0].port: 70000 is not an integer in 1..65535" },
	{ "port not integer", "\"port\": 80,", "\"port\": 80.5,", "services[0].port: 80.5 is not an integer" },
	{ "nodePort out of range", "30080", "8080", "services[0].nodePort: 8080 is not an integer in 30000..32767" },
	{ "unknown protocol", "\"protocol\": \"tcp\"", "\"protocol\": \"sctp\"", "services[0].protocol: \"sctp\" is not one of tcp, udp" },
	{ "unknown algorithm", "\"algorithm\": \"random\"", "\"algorithm\": \"rr\"", "services[0].algorithm: \"rr\" is not one of random, maglev" },
	{ "vip outside service CIDR", "\"10.96.0.10\"", "\"10.244.1.10\"", "services[0].vip: 10.244.1.10 is not inside cluster.serviceCIDR" },
	{ "backend bad ip", "\"ip\": \"10.244.1.2\"", "\"ip\": \"10.244.1.2.3\"", "services[0].backends[0].ip:" },
	{ "backend terminating wrong type", "\"terminating\": true", "\"terminating\": 1",
	  "services[0].backends[1].terminating: expected true or false" },
	{ "backend missing port", "\"ip\": \"10.244.2.2\", \"port\": 8080", "\"ip\": \"10.244.2.2\"", "services[0].backends[1].port: missing" },
	{ "duplicate service name", "\"name\": \"dns\"", "\"name\": \"web\"", "services[1].name: \"web\" is also services[0].name" },
	{ "duplicate service frontend", "\"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"udp\"",
	  "\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\"",
	  "services[1]: vip, port and protocol are also those of services[0]" },
	{ "duplicate nodePort", "\"port\": 53, \"protocol\": \"udp\",", "\"port\": 53, \"protocol\": \"tcp\", \"nodePort\": 30080,",
	  "services[1].nodePort: 30080 is also services[0].nodePort" },
	{ "service name with a quote and a newline", "\"name\": \"web\"", "\"name\": \"we\\\"b\\nx\"",
	  "services[0].name: \"we\\\"b\\nx\" is not a valid service name (DNS-1035 label" },
	{ "upper-case service name", "\"name\": \"web\"", "\"name\": \"Web\"",
	  "services[0].name: \"Web\" is not a valid service name (DNS-1035 label" },
	{ "service name starting with a digit", "\"name\": \"dns\"", "\"name\": \"1dns\"",
	  "services[1].name: \"1dns\" is not a valid service name (DNS-1035 label: lower case letters, digits and '-', "
	  "a letter first): must start with a lower case letter" },
	{ "service name namespace/name:port", "\"name\": \"web\"", "\"name\": \"default/web:80\"",
	  "must consist of lower case letters, digits and '-'" },
	{ "unknown source", "\"services\": [{\"name\": \"web\"", "\"source\": \"api\", \"services\": [{\"name\": \"web\"",
	  "source: expected \"file\" or \"kubernetes\"" },
	{ "Kubernetes source: a name without namespace", "\"services\": [{\"name\": \"web\"",
	  "\"source\": \"kubernetes\", \"services\": [{\"name\": \"web\"",
	  "services[0].name: \"web\" is not a Kubernetes source's service name (namespace/name:port/proto): no '/'" },
	{ "Kubernetes source: a quote and a newline", "\"services\": [{\"name\": \"web\"",
	  "\"source\": \"kubernetes\", \"services\": [{\"name\": \"default/we\\\"b\\nx:80/tcp\"",
	  "is not a Kubernetes source's service name (namespace/name:port/proto): only lower case letters" },
	{ "service name ending in '-'", "\"name\": \"web\"", "\"name\": \"web-\"",
	  "must start and end with a lower case letter or digit" },
	{ "unknown traffic policy", "\"externalTrafficPolicy\": \"Local\"", "\"externalTrafficPolicy\": \"local\"",
	  "services[0].externalTrafficPolicy: \"local\" is not one of Cluster, Local" },
	{ "externalTrafficPolicy Local without a nodePort", "\"internalTrafficPolicy\": \"Local\"",
	  "\"externalTrafficPolicy\": \"Local\"",
	  "services[1].externalTrafficPolicy: \"Local\" applies to the node port, and there is no nodePort" },
	{ "healthCheckNodePort without externalTrafficPolicy Local", "\"externalTrafficPolicy\": \"Local\", ", "",
	  "services[0].healthCheckNodePort: only an externalTrafficPolicy \"Local\" service has one" },
	{ "unknown pod device", "\"podCIDR\": \"10.244.1.0/24\"}", "\"podCIDR\": \"10.244.1.0/24\", \"podDevice\": \"macvlan\"}",
	  "node.podDevice: \"macvlan\" is not one of veth, netkit, auto" },
	{ "invalid JSON", "\"masquerade\": true}", "\"masquerade\": true", "invalid JSON at line" },
	{ "trailing junk", "}\n", "}}\n", "invalid JSON" },
	{ "nodePortAddresses not an array", "\"masquerade\": true", "\"masquerade\": true, \"nodePortAddresses\": \"10.0.0.0/8\"",
	  "cluster.nodePortAddresses: expected an array" },
	{ "nodePortAddresses host bits", "\"masquerade\": true", "\"masquerade\": true, \"nodePortAddresses\": [\"192.168.1.0/24\", \"10.1.2.3/8\"]",
	  "cluster.nodePortAddresses[1]: \"10.1.2.3/8\" is not a CIDR" },
	{ "nodePortAddresses not a string", "\"masquerade\": true", "\"masquerade\": true, \"nodePortAddresses\": [8]",
	  "cluster.nodePortAddresses[0]: expected a string" },
	{ "nodePortRange reversed", "\"masquerade\": true", "\"masquerade\": true, \"nodePortRange\": \"32767-30000\"",
	  "cluster.nodePortRange: \"32767-30000\" is not LO-HI" },
	{ "nodePortRange junk", "\"masquerade\": true", "\"masquerade\": true, \"nodePortRange\": \"30000-\"",
	  "cluster.nodePortRange: \"30000-\" is not LO-HI" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char *json = mutate(bc->from, bc->to);
		struct pw_node_config c;
		char err[256] = "", name[128];
		int r;

		snprintf(name, sizeof(name), "rejects %s", bc->name);
		if (!json) {
			PWT_CHECK(0, name, "fixture does not apply");
			continue;
		}
		r = pw_config_parse(json, &c, err, sizeof(err));
		PWT_CHECK(r == -EINVAL && strstr(err, bc->want), name,
			  "returned %d, error \"%s\", want -EINVAL and \"%s\"", r, err, bc->want);
		free(json);
	}
}

/* A value far longer than the message buffer: cut, the reason kept. */
static void test_cut_values(void)
{
	static const struct { const char *name, *from, *fmt, *want; } cases[] = {
		{ "long node.name", "\"name\": \"node1\"", "\"name\": \"%s\"", "is longer than 63 characters" },
		{ "long node.uplink", "\"uplink\": \"eth0\"", "\"uplink\": \"%s\"", "is longer than 15 characters" },
		{ "long node.podCIDR", "\"10.244.1.0/24\"", "\"%s\"", "is not a CIDR (a.b.c.d/n)" },
		{ "long node.ip", "\"192.168.1.11\"", "\"%s\"", "is not an IPv4 address" },
		{ "long unknown field", "\"masquerade\": true", "\"masquerade\": true, \"%s\": 1", "...: unknown field" },
		{ "long service name", "\"name\": \"web\"", "\"name\": \"%s\"", "is longer than 63 characters" },
	};
	char big[1001];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char to[1100], err[256] = "", name[96];
		struct pw_node_config c;
		char *json;
		int r;

		snprintf(to, sizeof(to), cases[i].fmt, big);
		json = mutate(cases[i].from, to);
		snprintf(name, sizeof(name), "%s (1000 chars): value cut, reason kept", cases[i].name);
		if (!json) {
			PWT_CHECK(0, name, "fixture does not apply");
			continue;
		}
		r = pw_config_parse(json, &c, err, sizeof(err));
		PWT_CHECK(r == -EINVAL && strstr(err, cases[i].want) && strstr(err, "xxx...") &&
			  strlen(err) < 200, name, "returned %d, error \"%s\", want \"%s\"", r, err, cases[i].want);
		free(json);
	}
}

static void test_not_object_and_load(void)
{
	struct pw_node_config c;
	char err[256] = "", path[] = "/tmp/pwt-config-XXXXXX";
	int fd, r;

	r = pw_config_parse("[1, 2]", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "expected a JSON object"), "rejects a top-level array",
		  "returned %d: %s", r, err);
	r = pw_config_parse("", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "invalid JSON"), "rejects an empty document",
		  "returned %d: %s", r, err);

	r = pw_config_load("/nonexistent/pwt-config.json", &c, err, sizeof(err));
	PWT_CHECK(r == -ENOENT && strstr(err, "No such file"), "load of a missing file: -ENOENT",
		  "returned %d: %s", r, err);
	fd = mkstemp(path);
	if (fd < 0) {
		PWT_CHECK(0, "load from a file", "mkstemp failed");
		return;
	}
	r = (int)write(fd, good, strlen(good));
	close(fd);
	r = pw_config_load(path, &c, err, sizeof(err));
	PWT_CHECK(r == 0 && c.n_services == 2, "load from a file", "returned %d: %s", r, err);
	if (r == 0)
		pw_config_free(&c);
	unlink(path);
}

/* A copy is equal and owns everything: freeing the original leaves it whole. */
static void test_copy(void)
{
	struct pw_node_config c, d;
	char err[256] = "", *a, *b;
	int r = pw_config_parse(good, &c, err, sizeof(err));

	PWT_CHECK(r == 0, "copy: good example parses", "returned %d: %s", r, err);
	if (r)
		return;
	r = pw_config_copy(&d, &c);
	PWT_EQ_INT(r, 0, "pw_config_copy");
	if (r) {
		pw_config_free(&c);
		return;
	}
	a = pw_config_format(&c);
	PWT_EXPECT(d.peers != c.peers && d.services != c.services &&
		   d.services[0].backends != c.services[0].backends, "copy has its own arrays");
	pw_config_free(&c);
	b = pw_config_format(&d);
	PWT_CHECK(a && b && strcmp(a, b) == 0, "copy formats as the original", "%s vs %s", a, b);
	PWT_EQ_INT(d.services[0].backends[1].port, 8080, "copy's backend readable after the original is freed");
	free(a);
	free(b);
	pw_config_free(&d);
}

/* node.podDevice: absent leaves the choice to the flag (veth by default);
 * given, it reads back through the formatter, in both config forms. */
static void test_pod_device(void)
{
	const char *nk = "{\"node\": {\"name\": \"n\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\","
			 " \"podCIDR\": \"10.244.7.0/24\", \"podDevice\": \"auto\"}}";
	struct pw_node_config c, d;
	char err[256] = "", *text;
	int r = pw_config_parse(good, &c, err, sizeof(err));

	PWT_CHECK(r == 0 && !c.has_pod_device, "podDevice absent: not set", "r %d has %d", r, c.has_pod_device);
	if (!r)
		pw_config_free(&c);
	r = pw_config_parse(nk, &c, err, sizeof(err));
	PWT_CHECK(r == 0 && c.has_pod_device && c.pod_device == PW_POD_DEVICE_AUTO, "node.podDevice auto parses",
		  "r %d (%s) has %d device %d", r, err, c.has_pod_device, c.pod_device);
	if (r)
		return;
	text = pw_config_format(&c);
	r = text ? pw_config_parse(text, &d, err, sizeof(err)) : -ENOMEM;
	PWT_CHECK(r == 0 && d.has_pod_device && d.pod_device == PW_POD_DEVICE_AUTO,
		  "node.podDevice reads back through pw_config_format", "%d: %s", r, err);
	if (!r)
		pw_config_free(&d);
	free(text);
	pw_config_free(&c);
	r = pw_config_parse_k8s("{\"node\": {\"podDevice\": \"netkit\"}}", &c, err, sizeof(err));
	PWT_CHECK(r == 0 && c.has_pod_device && c.pod_device == PW_POD_DEVICE_NETKIT,
		  "Kubernetes mode: node.podDevice netkit allowed", "%d: %s", r, err);
	if (!r)
		pw_config_free(&c);
}

/* The services are spliced into the text one by one: none, or several,
 * still read back as the same config. */
static void test_format_services(void)
{
	struct pw_node_config c, d;
	char err[256] = "", *text;
	int n, r = pw_config_parse(good, &c, err, sizeof(err));

	if (r)
		return;
	n = c.n_services;
	c.n_services = 0;
	text = pw_config_format(&c);
	c.n_services = n;
	r = text ? pw_config_parse(text, &d, err, sizeof(err)) : -ENOMEM;
	PWT_CHECK(r == 0, "formatted without services parses", "%d: %s (%s)", r, err, text ? text : "NULL");
	if (!r) {
		PWT_EQ_INT(d.n_services, 0, "no services read back");
		PWT_EQ_INT(d.n_peers, 2, "peers read back beside an empty services list");
		pw_config_free(&d);
	}
	free(text);
	text = pw_config_format(&c);
	r = text ? pw_config_parse(text, &d, err, sizeof(err)) : -ENOMEM;
	PWT_CHECK(r == 0, "formatted with two services parses", "%d: %s", r, err);
	if (!r) {
		PWT_EQ_INT(d.n_services, 2, "two services read back");
		PWT_EQ_STR(d.services[1].name, "dns", "second service's name read back");
		PWT_EQ_INT(d.services[0].n_backends, 2, "first service's backends read back");
		PWT_EXPECT(d.services[0].n_backends == 2 && d.services[0].backends[1].terminating &&
			   !d.services[0].backends[0].terminating, "a terminating backend reads back as terminating");
		pw_config_free(&d);
	}
	free(text);
	pw_config_free(&c);
}

/* cluster.nodePortAddresses / nodePortRange: defaults, values, the round
 * trip through pw_config_format, and the shared flag parsers. */
static void test_nodeport_fields(void)
{
	char *json = mutate("\"masquerade\": true", "\"masquerade\": true, \"nodePortAddresses\": "
			    "[\"192.168.1.0/24\", \"10.9.0.0/16\"], \"nodePortRange\": \"31000-31999\"");
	struct pw_node_config c, d;
	struct pw_cidr cidrs[PW_NODEPORT_CIDRS_MAX];
	char err[256] = "", *text = NULL;
	uint16_t lo = 1, hi = 1;
	int n = -1, r;

	r = json ? pw_config_parse(good, &c, err, sizeof(err)) : -1;
	PWT_CHECK(r == 0 && c.n_nodeport_cidrs == 0 && c.nodeport_range_min == 30000 && c.nodeport_range_max == 32767,
		  "nodePort defaults: every address, range 30000-32767", "%d %s", r, err);
	if (r == 0)
		pw_config_free(&c);
	r = json ? pw_config_parse(json, &c, err, sizeof(err)) : -1;
	PWT_CHECK(r == 0 && c.n_nodeport_cidrs == 2 && c.nodeport_cidrs[1].addr == IP("10.9.0.0") &&
		  c.nodeport_cidrs[1].prefix == 16 && c.nodeport_range_min == 31000 && c.nodeport_range_max == 31999,
		  "nodePortAddresses and nodePortRange parse", "%d %s", r, err);
	if (r == 0) {
		text = pw_config_format(&c);
		r = text ? pw_config_parse(text, &d, err, sizeof(err)) : -1;
		PWT_CHECK(r == 0 && d.n_nodeport_cidrs == 2 && d.nodeport_cidrs[0].addr == IP("192.168.1.0") &&
			  d.nodeport_range_min == 31000 && d.nodeport_range_max == 31999,
			  "nodePort fields survive pw_config_format", "%d %s (%s)", r, err, text ? text : "NULL");
		if (r == 0)
			pw_config_free(&d);
		free(text);
		pw_config_free(&c);
	}
	free(json);

	PWT_EXPECT(pw_port_range_parse("none", &lo, &hi) == 0 && lo == 0 && hi == 0, "range \"none\"");
	PWT_EXPECT(pw_port_range_parse("80-80", &lo, &hi) == 0 && lo == 80 && hi == 80, "range of one port");
	PWT_EXPECT(pw_port_range_parse("0-10", &lo, &hi) == -EINVAL, "range from port 0 refused");
	PWT_EXPECT(pw_port_range_parse("1-65536", &lo, &hi) == -EINVAL, "range beyond 65535 refused");
	PWT_EXPECT(pw_port_range_parse("030000-32767", &lo, &hi) == -EINVAL, "range with a leading zero refused");
	PWT_EXPECT(pw_port_range_parse("30000", &lo, &hi) == -EINVAL, "range without HI refused");
	PWT_EXPECT(pw_cidr_list_parse("192.168.1.0/24,10.0.0.0/8", cidrs, PW_NODEPORT_CIDRS_MAX, &n, err,
				      sizeof(err)) == 0 && n == 2 && cidrs[1].prefix == 8, "CIDR list of two");
	PWT_EXPECT(pw_cidr_list_parse("", cidrs, PW_NODEPORT_CIDRS_MAX, &n, err, sizeof(err)) == 0 && n == 0,
		   "empty CIDR list: every address");
	r = pw_cidr_list_parse("192.168.1.0/24,10.0.0.1/8", cidrs, PW_NODEPORT_CIDRS_MAX, &n, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "\"10.0.0.1/8\" is not a CIDR"), "CIDR list: the bad item named",
		  "%d %s", r, err);
	r = pw_cidr_list_parse("10.0.0.0/8,", cidrs, PW_NODEPORT_CIDRS_MAX, &n, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "trailing comma"), "CIDR list: trailing comma refused", "%d %s", r, err);
	r = pw_cidr_list_parse("10.0.0.0/8,,10.1.0.0/16", cidrs, PW_NODEPORT_CIDRS_MAX, &n, err, sizeof(err));
	PWT_CHECK(r == -EINVAL, "CIDR list: empty item refused", "%d %s", r, err);
}

int main(void)
{
	test_good();
	test_copy();
	test_format_services();
	test_defaults();
	test_pod_device();
	test_bad();
	test_cut_values();
	test_not_object_and_load();
	test_nodeport_fields();
	return pwt_done();
}
