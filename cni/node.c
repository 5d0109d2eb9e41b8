/* The node's agent-published state as the plugin sees it, host veth naming
 * and the teardown shared by DEL and GC. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "podwire/abi.h"
#include "datapath.h"
#include "log.h"
#include "plugin.h"

static void node_reset(struct pw_cni_node *n)
{
	memset(n, 0, sizeof(*n));
	n->prog_fd = n->ep_fd = n->ep_ifidx_fd = n->sock_netns_fd = -1;
}

void pw_node_close(struct pw_cni_node *n)
{
	if (n->prog_fd >= 0)
		close(n->prog_fd);
	if (n->ep_fd >= 0)
		close(n->ep_fd);
	if (n->ep_ifidx_fd >= 0)
		close(n->ep_ifidx_fd);
	if (n->sock_netns_fd >= 0)
		close(n->sock_netns_fd);
	node_reset(n);
}

void pw_cni_release(struct pw_cni_node *n, struct pw_nl *host_nl, struct pw_nl *pod_nl, int netns_fd)
{
	pw_nl_close(pod_nl);
	pw_nl_close(host_nl);
	if (netns_fd >= 0)
		close(netns_fd);
	pw_node_close(n);
}

/* The agent is "not running" for us when what it publishes is absent; any
 * other failure to open a pin is a datapath error. */
static int pin_missing(struct pw_cni *c, int fd, const char *dir, const char *name, int unavail_code)
{
	if (fd == -ENOENT)
		return pw_cni_fail(&c->err, unavail_code, NULL,
				   "podwire agent for instance %s is not running: %s/%s not found",
				   c->paths.instance, dir, name);
	return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, NULL, "cannot open %s/%s: %s",
			   dir, name, strerror(-fd));
}

int pw_node_open(struct pw_cni *c, struct pw_cni_node *n, bool need_prog, int unavail_code)
{
	char why[512];
	int err;

	node_reset(n);
	err = pw_nodeinfo_read(c->paths.node_file, &n->info, why, sizeof(why));
	if (err == -ENOENT)
		return pw_cni_fail(&c->err, unavail_code, NULL,
				   "podwire agent for instance %s is not running: %s not found",
				   c->paths.instance, c->paths.node_file);
	if (err)
		return pw_cni_fail(&c->err, unavail_code, why, "cannot read the node facts of instance %s",
				   c->paths.instance);
	n->have_info = true;
	if (need_prog) {
		n->prog_fd = pw_prog_open(&c->paths, PW_PROG_POD);
		if (n->prog_fd < 0)
			goto prog;
	}
	n->ep_fd = pw_map_open(&c->paths, PW_MAP_ENDPOINTS);
	if (n->ep_fd < 0) {
		err = pin_missing(c, n->ep_fd, c->paths.pin_dir, PW_MAP_ENDPOINTS, unavail_code);
		goto fail;
	}
	n->ep_ifidx_fd = pw_map_open(&c->paths, PW_MAP_EP_BY_IFIDX);
	if (n->ep_ifidx_fd < 0) {
		err = pin_missing(c, n->ep_ifidx_fd, c->paths.pin_dir, PW_MAP_EP_BY_IFIDX, unavail_code);
		goto fail;
	}
	n->sock_netns_fd = pw_map_open(&c->paths, PW_MAP_SOCK_NETNS);
	return 0;
prog:
	err = pin_missing(c, n->prog_fd, c->paths.prog_dir, PW_PROG_POD, unavail_code);
fail:
	pw_node_close(n);
	return err;
}

void pw_node_open_partial(struct pw_cni *c, struct pw_cni_node *n)
{
	char why[512];

	node_reset(n);
	n->have_info = pw_nodeinfo_read(c->paths.node_file, &n->info, why, sizeof(why)) == 0;
	n->ep_fd = pw_map_open(&c->paths, PW_MAP_ENDPOINTS);
	n->ep_ifidx_fd = pw_map_open(&c->paths, PW_MAP_EP_BY_IFIDX);
	n->sock_netns_fd = pw_map_open(&c->paths, PW_MAP_SOCK_NETNS);
	if (!n->have_info || n->ep_fd < 0 || n->ep_ifidx_fd < 0)
		pw_info("instance %s: agent state incomplete (node.json %s, endpoint maps %s); cleaning what is there",
			c->paths.instance, n->have_info ? "ok" : "absent",
			n->ep_fd >= 0 && n->ep_ifidx_fd >= 0 ? "ok" : "absent");
}

int pw_node_ipam_open(struct pw_cni *c, const struct pw_cni_node *n, struct pw_ipam *ipam, bool create)
{
	/* Lookups and releases over every address: without node.json, or after
	 * the node's pod CIDR changed, DEL/GC must still see reservations. */
	struct pw_cidr any = { 0, 0 };

	if (!create && access(c->paths.ipam_dir, F_OK) < 0)
		return -ENOENT;
	return pw_ipam_open(ipam, c->paths.ipam_dir, create && n->have_info ? &n->info.pod_cidr : &any);
}

void pw_host_ifname(const char *container_id, const char *ifname, char out[PW_HOST_IFNAME_LEN + 1])
{
	uint64_t h = 0xcbf29ce484222325ULL;           /* FNV-1a 64 offset basis */
	const char *parts[] = { container_id, "/", ifname };

	for (size_t i = 0; i < 3; i++)
		for (const unsigned char *s = (const unsigned char *)parts[i]; *s; s++) {
			h ^= *s;
			h *= 0x100000001b3ULL;        /* FNV 64 prime */
		}
	snprintf(out, PW_HOST_IFNAME_LEN + 1, "pw%012llx", (unsigned long long)(h & 0xffffffffffffULL));
}

int pw_teardown(struct pw_cni *c, const struct pw_cni_node *n, struct pw_ipam *ipam,
		struct pw_nl *host_nl, const char *container_id, const char *ifname)
{
	char host_if[PW_HOST_IFNAME_LEN + 1], pin[PW_PATH_MAX + 32], ipbuf[PW_IP4_STRLEN] = "none";
	struct pw_link_info host = { 0 };
	uint32_t ip = 0;
	uint16_t ep_id;
	int err;

	pw_host_ifname(container_id, ifname, host_if);
	if (ipam && pw_ipam_find(ipam, container_id, ifname, &ip) == 0)
		pw_ip4_format(ip, ipbuf);
	err = pw_nl_link_get(host_nl, host_if, &host);
	if (err && err != -ENODEV)
		return pw_cni_fail(&c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot look up %s", host_if);
	pw_info("teardown %s/%s: ip %s, host veth %s %s", container_id, ifname, ipbuf, host_if,
		err ? "absent" : "present");

	/* Map entries first, so nothing is steered at an interface being
	 * deleted: hostPort frontends, then the endpoint they are found by. */
	if (pw_ep_id(n, ip, err ? 0 : host.ifindex, &ep_id) == 0)
		pw_hostport_remove(c, ep_id);
	pw_ep_forget(n, ip, err ? 0 : host.ifindex);
	/* The pod end, the host /32 route and the tc filter or tcx attachment
	 * go with the host end. Deleting it before detaching matters for speed:
	 * an explicit tcx detach waits for RCU grace periods, the device
	 * teardown does that anyway. */
	if (!err) {
		err = pw_nl_link_del(host_nl, host_if);
		if (err)
			return pw_cni_fail(&c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot delete %s", host_if);
	}
	/* A tcx link pin outlives its device: remove it. Without node.json the
	 * mode is unknown; the tc variant also removes the pin, so it covers
	 * both (ifindex 0: the filter, if any, died with the device). */
	if (pw_link_pin_path(&c->paths, host_if, pin, sizeof(pin)) == 0) {
		enum pw_attach_mode mode = n->have_info ? n->info.pod_attach : PW_ATTACH_TC;
		int derr = pw_detach_ingress(mode, 0, pin);

		if (derr)
			pw_warn("detach %s: %s", host_if, strerror(-derr));
	}
	if (ipam) {
		err = pw_ipam_release(ipam, container_id, ifname);
		if (err)
			return pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-err),
					   "cannot release the address of %s/%s", container_id, ifname);
	}
	return 0;
}
