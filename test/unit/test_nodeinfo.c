/* node.json (userspace/lib/nodeinfo.c), the agent's hand-off to the CNI
 * plugin: the pod device kind and the pod attach mode round-trip, files of
 * older agents (no podDevice) read as veth, and a file whose podDevice and
 * podAttach disagree is refused rather than half-believed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pwtest.h"
#include "nodeinfo.h"

static char dir[] = "/tmp/pw-test-nodeinfo-XXXXXX";
static char path[sizeof(dir) + 16];

static void write_text(const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void base(struct pw_nodeinfo *ni)
{
	memset(ni, 0, sizeof(*ni));
	snprintf(ni->node, sizeof(ni->node), "node1");
	pw_cidr_parse("10.244.1.0/24", &ni->pod_cidr);
	ni->gateway = pw_cidr_gateway(&ni->pod_cidr);
	ni->mtu = 1500;
	ni->attach = PW_ATTACH_TCX;
}

static void test_roundtrip(void)
{
	struct pw_nodeinfo ni, got;
	char err[256];
	int r;

	base(&ni);
	ni.pod_attach = PW_ATTACH_NETKIT;
	ni.pod_device = PW_POD_DEVICE_NETKIT;
	r = pw_nodeinfo_write(path, &ni);
	PWT_EQ_INT(r, 0, "netkit node.json written");
	r = pw_nodeinfo_read(path, &got, err, sizeof(err));
	PWT_CHECK(r == 0, "netkit node.json reads back", "%d: %s", r, err);
	PWT_EQ_INT(got.pod_device, PW_POD_DEVICE_NETKIT, "podDevice netkit read back");
	PWT_EQ_INT(got.pod_attach, PW_ATTACH_NETKIT, "podAttach netkit read back");
	PWT_EQ_INT(got.attach, PW_ATTACH_TCX, "the uplink's attach mode is its own");

	base(&ni);
	ni.pod_attach = PW_ATTACH_TC;
	r = pw_nodeinfo_write(path, &ni);
	r = r ? r : pw_nodeinfo_read(path, &got, err, sizeof(err));
	PWT_CHECK(r == 0 && got.pod_device == PW_POD_DEVICE_VETH && got.pod_attach == PW_ATTACH_TC,
		  "veth node.json reads back as veth + tc", "%d: %s", r, err);
}

static void test_older_agent(void)
{
	struct pw_nodeinfo got;
	char err[256];
	int r;

	write_text("{\"node\": \"n\", \"podCIDR\": \"10.244.1.0/24\", \"gateway\": \"10.244.1.1\","
		   " \"mtu\": 1500, \"attach\": \"tcx\", \"podAttach\": \"tc\"}");
	r = pw_nodeinfo_read(path, &got, err, sizeof(err));
	PWT_CHECK(r == 0 && got.pod_device == PW_POD_DEVICE_VETH, "node.json without podDevice: veth",
		  "%d: %s, device %d", r, err, got.pod_device);
}

static void test_refused(void)
{
	static const struct { const char *name, *fields, *want; } cases[] = {
		{ "podAttach netkit without podDevice netkit", "\"podAttach\": \"netkit\", \"podDevice\": \"veth\"",
		  "podAttach netkit goes with podDevice netkit" },
		{ "podDevice netkit with podAttach tc", "\"podAttach\": \"tc\", \"podDevice\": \"netkit\"",
		  "podAttach netkit goes with podDevice netkit" },
		{ "podDevice auto (the agent publishes what it chose)", "\"podAttach\": \"tc\", \"podDevice\": \"auto\"",
		  "podDevice: not veth/netkit" },
		{ "uplink attach netkit", "\"podAttach\": \"tc\", \"attach\": \"netkit\"", "attach: missing or not tcx/tc" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pw_nodeinfo got;
		char text[512], err[256] = "", name[160];
		int r;

		snprintf(text, sizeof(text), "{\"node\": \"n\", \"podCIDR\": \"10.244.1.0/24\", \"gateway\": \"10.244.1.1\","
			 " \"mtu\": 1500, %s%s}", cases[i].fields, strstr(cases[i].fields, "\"attach\"") ? "" : ", \"attach\": \"tcx\"");
		write_text(text);
		r = pw_nodeinfo_read(path, &got, err, sizeof(err));
		snprintf(name, sizeof(name), "refuses %s", cases[i].name);
		PWT_CHECK(r == -EINVAL && strstr(err, cases[i].want), name, "returned %d, error \"%s\", want \"%s\"",
			  r, err, cases[i].want);
	}
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/node.json", dir);
	test_roundtrip();
	test_older_agent();
	test_refused();
	unlink(path);
	rmdir(dir);
	return pwt_done();
}
