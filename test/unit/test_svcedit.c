/* Service edits of a config's text (userspace/lib/svcedit.c), what
 * `podwirectl service add|del` writes: IP:PORT parsing; an added service
 * lands in the parsed config with every field; the rest of the document
 * (peers, unknown-to-us ordering) stays; a bad service is refused with the
 * parser's message and no output; del removes exactly one. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "config.h"
#include "svcedit.h"

static const char *base =
	"{\n"
	"  \"node\":    {\"name\": \"node1\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\", \"podCIDR\": \"10.244.1.0/24\"},\n"
	"  \"cluster\": {\"podCIDR\": \"10.244.0.0/16\", \"serviceCIDR\": \"10.96.0.0/12\", \"routing\": \"native\"},\n"
	"  \"peers\":   [{\"name\": \"node2\", \"ip\": \"192.168.1.12\", \"podCIDR\": \"10.244.2.0/24\"}],\n"
	"  \"services\": [{\"name\": \"dns\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"udp\",\n"
	"                \"backends\": [{\"ip\": \"10.244.1.3\", \"port\": 53}]}]\n"
	"}\n";

static const char *no_services =
	"{\"node\": {\"name\": \"n\", \"ip\": \"192.168.1.11\", \"uplink\": \"eth0\", \"podCIDR\": \"10.244.1.0/24\"}}";

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

static void test_ip_port(void)
{
	static const char *const bad[] = { "10.0.0.1", "10.0.0.1:", ":80", "10.0.0.1:0", "10.0.0.1:65536",
					   "10.0.0.1:+80", "10.0.0.1: 80", "10.0.0.1:0x50", "10.0.0:80",
					   "10.0.0.256:80", "host:80", "10.0.0.1:80:1", "", "10.0.0.1:99999999999" };
	uint32_t ip = 0;
	uint16_t port = 0;
	int r;

	r = pw_ip_port_parse("10.244.1.2:8080", &ip, &port);
	PWT_CHECK(r == 0 && ip == IP("10.244.1.2") && port == 8080, "ip:port: 10.244.1.2:8080",
		  "r %d ip %08x port %u", r, ip, port);
	r = pw_ip_port_parse("0.0.0.0:65535", &ip, &port);
	PWT_CHECK(r == 0 && ip == 0 && port == 65535, "ip:port: edges 0.0.0.0:65535", "r %d", r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[80];

		snprintf(name, sizeof(name), "ip:port: \"%s\" refused", bad[i]);
		PWT_EQ_INT(pw_ip_port_parse(bad[i], &ip, &port), -EINVAL, name);
	}
	PWT_EQ_INT(pw_ip_port_parse(NULL, &ip, &port), -EINVAL, "ip:port: NULL refused");
}

static const struct pw_svc_backend_edit two[] = { { 0x0af40102, 8080 }, { 0x0af40202, 8080 } };

static struct pw_svc_edit web(void)
{
	return (struct pw_svc_edit){ .name = "web", .vip = "10.96.0.10", .port = 80, .protocol = "tcp",
				     .node_port = 30080, .algorithm = "maglev", .affinity_timeout = 30,
				     .backends = two, .n_backends = 2 };
}

static void test_add(void)
{
	struct pw_svc_edit e = web();
	struct pw_node_config c;
	char err[512] = "", *out = NULL;
	bool replaced = true;
	int r;

	r = pw_svcedit_put(base, &e, false, &out, &replaced, err, sizeof(err));
	PWT_CHECK(r == 0 && out, "add: accepted", "r %d: %s", r, err);
	PWT_EXPECT(!replaced, "add: a new service, not a replacement");
	if (r)
		return;
	r = pw_config_parse(out, &c, err, sizeof(err));
	PWT_CHECK(r == 0, "add: result parses", "%s", err);
	if (r) {
		free(out);
		return;
	}
	PWT_EQ_INT(c.n_services, 2, "add: two services");
	PWT_EQ_STR(c.services[0].name, "dns", "add: the existing service stays first");
	PWT_EQ_STR(c.services[1].name, "web", "add: the new one is appended");
	PWT_CHECK(c.services[1].vip == IP("10.96.0.10") && c.services[1].port == 80 &&
		  c.services[1].protocol == IPPROTO_TCP && c.services[1].node_port == 30080 &&
		  c.services[1].maglev && c.services[1].affinity_timeout == 30,
		  "add: every field lands", "vip %08x port %u proto %u np %u", c.services[1].vip,
		  c.services[1].port, c.services[1].protocol, c.services[1].node_port);
	PWT_CHECK(c.services[1].n_backends == 2 && c.services[1].backends[0].ip == IP("10.244.1.2") &&
		  c.services[1].backends[1].ip == IP("10.244.2.2") && c.services[1].backends[1].port == 8080,
		  "add: backends land in order", "n %d", c.services[1].n_backends);
	PWT_CHECK(c.n_peers == 1 && strcmp(c.peers[0].name, "node2") == 0 && c.ip == IP("192.168.1.11"),
		  "add: node and peers kept", "peers %d", c.n_peers);
	PWT_EXPECT(out[strlen(out) - 1] == '\n', "add: output ends in a newline");
	pw_config_free(&c);

	/* Same name again: refused without --replace, replaced in place with. */
	char *out2 = NULL;

	r = pw_svcedit_put(out, &e, false, &out2, NULL, err, sizeof(err));
	PWT_CHECK(r == -EEXIST && !out2 && strstr(err, "\"web\" exists"), "add: existing name refused",
		  "r %d: %s", r, err);
	e.n_backends = 1;
	e.node_port = -1;
	r = pw_svcedit_put(out, &e, true, &out2, &replaced, err, sizeof(err));
	PWT_CHECK(r == 0 && replaced, "replace: accepted", "r %d: %s", r, err);
	if (r == 0 && pw_config_parse(out2, &c, err, sizeof(err)) == 0) {
		PWT_CHECK(c.n_services == 2 && strcmp(c.services[1].name, "web") == 0 &&
			  c.services[1].n_backends == 1 && c.services[1].node_port == 0,
			  "replace: in place, new backends, nodePort gone", "n %d", c.n_services);
		pw_config_free(&c);
	}
	free(out2);

	/* del */
	r = pw_svcedit_del(out, "dns", &out2, err, sizeof(err));
	PWT_CHECK(r == 0, "del: accepted", "r %d: %s", r, err);
	if (r == 0 && pw_config_parse(out2, &c, err, sizeof(err)) == 0) {
		PWT_CHECK(c.n_services == 1 && strcmp(c.services[0].name, "web") == 0 && c.n_peers == 1,
			  "del: only that service goes", "n %d", c.n_services);
		pw_config_free(&c);
	}
	free(out2);
	out2 = NULL;
	r = pw_svcedit_del(out, "nosuch", &out2, err, sizeof(err));
	PWT_CHECK(r == -ENOENT && !out2 && strstr(err, "nosuch"), "del: unknown name -ENOENT", "r %d", r);
	free(out);
}

static void expect_refused(struct pw_svc_edit e, const char *name, const char *msg)
{
	char err[512] = "", *out = NULL;
	int r = pw_svcedit_put(base, &e, false, &out, NULL, err, sizeof(err));

	PWT_CHECK(r == -EINVAL && !out && strstr(err, msg), name, "r %d, err \"%s\", want \"%s\"", r, err, msg);
	free(out);
}

static void test_refused(void)
{
	struct pw_svc_edit e;

	e = web(); e.vip = "10.96.0.300";
	expect_refused(e, "refused: invalid VIP", "services[1].vip");
	e = web(); e.vip = "10.1.0.10";
	expect_refused(e, "refused: VIP outside serviceCIDR", "is not inside cluster.serviceCIDR 10.96.0.0/12");
	e = web(); e.node_port = 80;
	expect_refused(e, "refused: nodePort out of range", "services[1].nodePort");
	e = web(); e.port = 0;
	expect_refused(e, "refused: port 0", "services[1].port");
	e = web(); e.protocol = "sctp";
	expect_refused(e, "refused: protocol", "\"sctp\" is not one of tcp, udp");
	e = web(); e.algorithm = "roundrobin";
	expect_refused(e, "refused: algorithm", "is not one of random, maglev");
	e = web(); e.vip = "10.96.0.53"; e.port = 53; e.protocol = "udp";
	expect_refused(e, "refused: frontend of another service", "vip, port and protocol are also those of services[0]");
	e = web(); e.name = "";
	expect_refused(e, "refused: empty name", "services[1].name: must not be empty");

	/* A broken file is reported as such, not blamed on the service. */
	char err[512] = "", *out = NULL;
	int r = pw_svcedit_put("{\"node\": 1}", &e, false, &out, NULL, err, sizeof(err));

	PWT_CHECK(r == -EINVAL && strstr(err, "the config is invalid as it is"), "refused: broken config named",
		  "r %d: %s", r, err);
}

static void test_no_services_key(void)
{
	struct pw_svc_edit e = web();
	struct pw_node_config c;
	char err[512] = "", *out = NULL;
	int r;

	e.node_port = -1;
	e.algorithm = NULL;
	e.protocol = NULL;
	e.affinity_timeout = -1;
	r = pw_svcedit_put(no_services, &e, false, &out, NULL, err, sizeof(err));
	PWT_CHECK(r == 0, "add to a config without services", "r %d: %s", r, err);
	if (r == 0 && pw_config_parse(out, &c, err, sizeof(err)) == 0) {
		PWT_CHECK(c.n_services == 1 && c.services[0].protocol == IPPROTO_TCP && !c.services[0].maglev &&
			  c.services[0].node_port == 0, "defaults apply to left-out fields", "n %d", c.n_services);
		pw_config_free(&c);
	}
	free(out);
}

int main(void)
{
	test_ip_port();
	test_add();
	test_refused();
	test_no_services_key();
	return pwt_done();
}
