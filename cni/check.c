/* CHECK: the attachment still is what ADD made: the reservation, the pod
 * interface with its address and routes, the host veth with its /32 route,
 * and the endpoint entries. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/rtnetlink.h>
#include "plugin.h"

struct check {
	struct pw_cni *c;
	struct pw_cni_node node;
	int netns_fd;
	struct pw_nl *host_nl, *pod_nl;
	uint32_t ip;
	char ipbuf[PW_IP4_STRLEN];
};

static int broken(struct check *s, const char *what, int err)
{
	return pw_cni_fail(&s->c->err, PW_CNI_E_CHECK, err ? strerror(-err) : NULL,
			   "CHECK %s/%s: %s", s->c->env.container_id, s->c->env.ifname, what);
}

static int check_reservation(struct check *s)
{
	struct pw_ipam ipam;
	int err;

	err = pw_node_ipam_open(s->c, &s->node, &ipam, false);
	if (!err)
		err = pw_ipam_find(&ipam, s->c->env.container_id, s->c->env.ifname, &s->ip);
	if (err)
		return broken(s, "no IP reservation", err == -ENOENT ? 0 : err);
	pw_ip4_format(s->ip, s->ipbuf);
	if (s->c->conf.has_prev_ip && s->c->conf.prev_ip != s->ip)
		return broken(s, "prevResult address differs from the reservation", 0);
	return 0;
}

static int check_pod(struct check *s)
{
	struct pw_route to_gw = { .dst = { s->node.info.gateway, 32 } };
	struct pw_route dflt = { .dst = { 0, 0 }, .gw = s->node.info.gateway };
	struct pw_link_info pod;
	int err;

	s->netns_fd = pw_netns_open(s->c->env.netns);
	if (s->netns_fd < 0)
		return pw_cni_fail(&s->c->err, PW_CNI_E_NETNS, strerror(-s->netns_fd),
				   "CNI_NETNS %s is not a usable network namespace", s->c->env.netns);
	if ((err = pw_nl_open_in(s->netns_fd, &s->pod_nl)))
		return pw_cni_fail(&s->c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot open a netlink socket");
	if ((err = pw_nl_link_get(s->pod_nl, s->c->env.ifname, &pod)))
		return broken(s, "pod interface missing", err);
	if (!pod.up)
		return broken(s, "pod interface is down", 0);
	if ((err = pw_nl_addr_check(s->pod_nl, pod.ifindex, s->ip, 32)))
		return broken(s, "pod address missing", err == -ENOENT ? 0 : err);
	to_gw.oif = dflt.oif = pod.ifindex;
	if ((err = pw_nl_route_check(s->pod_nl, &to_gw)))
		return broken(s, "pod route to the gateway missing", err == -ENOENT ? 0 : err);
	if ((err = pw_nl_route_check(s->pod_nl, &dflt)))
		return broken(s, "pod default route missing", err == -ENOENT ? 0 : err);
	return 0;
}

static int check_host(struct check *s)
{
	struct pw_route to_pod = { .dst = { s->ip, 32 } };
	char host_if[PW_HOST_IFNAME_LEN + 1];
	struct pw_link_info host;
	int err;

	pw_host_ifname(s->c->env.container_id, s->c->env.ifname, host_if);
	if ((err = pw_nl_open(&s->host_nl)))
		return pw_cni_fail(&s->c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot open a netlink socket");
	if ((err = pw_nl_link_get(s->host_nl, host_if, &host)))
		return broken(s, "host veth missing", err);
	if (!host.up)
		return broken(s, "host veth is down", 0);
	if (strcmp(host.kind, pw_pod_device_name(s->node.info.pod_device)))
		return broken(s, s->node.info.pod_device == PW_POD_DEVICE_NETKIT ?
			      "host device is not netkit, the node's pod device kind" :
			      "host device is not a veth, the node's pod device kind", 0);
	to_pod.oif = host.ifindex;
	if ((err = pw_nl_route_check(s->host_nl, &to_pod)))
		return broken(s, "host route to the pod missing", err == -ENOENT ? 0 : err);
	if ((err = pw_ep_lookup(&s->node, s->ip, host.ifindex)))
		return broken(s, err == -ESTALE ? "endpoint map entries disagree" : "endpoint map entry missing", 0);
	return 0;
}

int pw_cmd_check(struct pw_cni *c)
{
	struct check s = { .c = c, .netns_fd = -1 };
	int code;

	code = pw_node_open(c, &s.node, false, PW_CNI_E_AGENT);
	if (!code && !(code = check_reservation(&s)) && !(code = check_pod(&s)))
		code = check_host(&s);
	pw_cni_release(&s.node, s.host_nl, s.pod_nl, s.netns_fd);
	return code;
}
