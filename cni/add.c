/* ADD: address, veth pair, pod and host configuration, program attach,
 * endpoint entries. All under the IPAM lock; any failure undoes every step
 * already taken, so an error leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/rtnetlink.h>
#include "podwire/abi.h"
#include "datapath.h"
#include "log.h"
#include "plugin.h"

struct add {
	struct pw_cni *c;
	struct pw_cni_node node;
	struct pw_ipam ipam;
	bool ipam_locked;
	int netns_fd;
	struct pw_nl *host_nl, *pod_nl;
	int mtu;
	/* what the runtime asked for (runtimeConfig, else CNI_ARGS) */
	uint32_t want_ip;             /* 0: any */
	const uint8_t *want_mac;      /* NULL: the kernel's */
	/* what exists so far, for the rollback */
	bool ip_reserved, veth_made, attached, ep_registered, hostports;
	int host_ifindex;
	char pin[PW_PATH_MAX + 32];
	struct pw_attachment a;
};

static int nl_fail(struct add *s, int err, const char *fmt, const char *arg)
{
	char msg[128];

	snprintf(msg, sizeof(msg), fmt, arg);
	return pw_cni_fail(&s->c->err, PW_CNI_E_NETLINK, strerror(-err), "%s", msg);
}

/* Writes a sysctl; a missing knob (IPv6 compiled out) is not an error. */
static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (write(fd, value, strlen(value)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* No IPv6 on either end: the pod must not send router solicitations, DAD
 * or MLD into an IPv4-only datapath, nor the host into the pod. */
static int disable_ipv6(void *ifname)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", (const char *)ifname);
	return write_sysctl(path, "1");
}

static int open_netns(struct add *s)
{
	const char *path = s->c->env.netns;
	int cur;

	s->netns_fd = pw_netns_open(path);
	if (s->netns_fd < 0)
		return pw_cni_fail(&s->c->err, PW_CNI_E_NETNS, strerror(-s->netns_fd),
				   "CNI_NETNS %s is not a usable network namespace", path);
	cur = pw_netns_is_current(s->netns_fd);
	if (cur != 0)
		return pw_cni_fail(&s->c->err, PW_CNI_E_NETNS, cur < 0 ? strerror(-cur) : NULL,
				   "CNI_NETNS %s is the plugin's own network namespace, not a pod's", path);
	return 0;
}

/* The requested address and MAC: runtimeConfig's "ips"/"mac" (the
 * capabilities), else CNI_ARGS IP=/MAC=; both given and different is an
 * error rather than a silent choice. */
static int requested(struct add *s)
{
	const struct pw_cni_conf *conf = &s->c->conf;
	const struct pw_cni_args *args = &s->c->args;
	char a[PW_IP4_STRLEN], b[PW_IP4_STRLEN];

	if (conf->has_rt_ip && args->has_ip && conf->rt_ip != args->ip) {
		pw_ip4_format(conf->rt_ip, a);
		pw_ip4_format(args->ip, b);
		return pw_cni_fail(&s->c->err, PW_CNI_E_CONFIG, NULL,
				   "runtimeConfig.ips asks for %s, CNI_ARGS IP for %s", a, b);
	}
	if (conf->has_rt_mac && args->has_mac && memcmp(conf->rt_mac, args->mac, 6))
		return pw_cni_fail(&s->c->err, PW_CNI_E_CONFIG, NULL,
				   "runtimeConfig.mac and CNI_ARGS MAC ask for different addresses");
	s->want_ip = conf->has_rt_ip ? conf->rt_ip : args->has_ip ? args->ip : 0;
	s->want_mac = conf->has_rt_mac ? conf->rt_mac : args->has_mac ? args->mac : NULL;
	return 0;
}

/* One interface per pod: a second one in the same netns would need a second
 * default route via the same gateway and its own anti-spoofing identity.
 * Refused before anything is made, rather than failing half-way. */
static int refuse_second_ifname(struct add *s)
{
	struct pw_cni *c = s->c;
	struct pw_ipam_entry held;
	char ipbuf[PW_IP4_STRLEN];

	if (pw_ipam_find_container(&s->ipam, c->env.container_id, &held) || !strcmp(held.ifname, c->env.ifname))
		return 0;
	pw_ip4_format(held.ip, ipbuf);
	return pw_cni_fail(&c->err, PW_CNI_E_OTHER_IFNAME, NULL,
			   "container %s is already attached as %s (IP %s): podwire gives a pod one interface, "
			   "%s is refused", c->env.container_id, held.ifname, ipbuf, c->env.ifname);
}

static int reserve_ip(struct add *s)
{
	struct pw_cni *c = s->c;
	char ipbuf[PW_IP4_STRLEN], cidr[PW_CIDR_STRLEN];
	struct pw_ipam_entry owner = { 0 };
	int err;

	/* All fit: pw_cni_env_check and pw_cni_args_parse bounded them. */
	snprintf(owner.container_id, sizeof(owner.container_id), "%s", c->env.container_id);
	snprintf(owner.ifname, sizeof(owner.ifname), "%s", c->env.ifname);
	snprintf(owner.k8s_namespace, sizeof(owner.k8s_namespace), "%s", c->args.k8s_namespace);
	snprintf(owner.k8s_pod_name, sizeof(owner.k8s_pod_name), "%s", c->args.k8s_pod_name);
	owner.ip = s->want_ip;
	err = pw_node_ipam_open(c, &s->node, &s->ipam, true);
	if (!err)
		err = pw_ipam_lock(&s->ipam);
	if (err)
		return pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-err), "cannot open IPAM state in %s",
				   c->paths.ipam_dir);
	s->ipam_locked = true;
	if ((err = refuse_second_ifname(s)))
		return err;
	err = pw_ipam_reserve(&s->ipam, &owner, &s->a.ip);
	if (err == -EEXIST) {
		pw_ip4_format(s->a.ip, ipbuf);
		return pw_cni_fail(&c->err, PW_CNI_E_EXISTS, NULL,
				   "container %s interface %s is already attached (IP %s); DEL it first",
				   c->env.container_id, c->env.ifname, ipbuf);
	}
	if (err == -ENOSPC) {
		pw_cidr_format(&s->node.info.pod_cidr, cidr);
		return pw_cni_fail(&c->err, PW_CNI_E_POOL_EXHAUSTED, NULL,
				   "no free address in the pod CIDR %s of instance %s", cidr, c->paths.instance);
	}
	if (err == -EADDRNOTAVAIL || err == -EADDRINUSE) {
		pw_ip4_format(owner.ip, ipbuf);
		pw_cidr_format(&s->node.info.pod_cidr, cidr);
		return pw_cni_fail(&c->err, PW_CNI_E_IP_UNAVAILABLE, ipbuf,
				   err == -EADDRINUSE ? "requested IP %s is held by another attachment"
				   : "requested IP %s is not a pod address of the pod CIDR %s "
				     "(outside it, or its network, gateway or broadcast address)", ipbuf, cidr);
	}
	if (err)
		return pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-err), "cannot reserve an address");
	s->ip_reserved = true;
	s->a.gateway = s->node.info.gateway;
	return 0;
}

/* The pod's device pair: a veth pair, or a netkit pair on a node whose
 * agent chose netkit (node.json podDevice). */
static int make_veth(struct add *s)
{
	bool netkit = s->node.info.pod_device == PW_POD_DEVICE_NETKIT;
	struct pw_cni *c = s->c;
	struct pw_link_info li;
	int err;

	pw_host_ifname(c->env.container_id, c->env.ifname, s->a.host_if);
	snprintf(s->a.pod_if, sizeof(s->a.pod_if), "%s", c->env.ifname);
	err = pw_nl_open(&s->host_nl);
	if (!err)
		err = pw_nl_open_in(s->netns_fd, &s->pod_nl);
	if (err)
		return nl_fail(s, err, "cannot open a netlink socket%s", "");
	if (netkit && s->want_mac)
		return pw_cni_fail(&c->err, PW_CNI_E_CONFIG, NULL,
				   "a MAC address was requested, but this node's pod devices are netkit "
				   "(L3: no MAC addresses)%s", "");
	err = netkit ? pw_nl_netkit_add(s->host_nl, s->a.host_if, s->a.pod_if, s->netns_fd, s->mtu)
		     : pw_nl_veth_add(s->host_nl, s->a.host_if, s->a.pod_if, s->netns_fd, s->mtu, s->want_mac);
	if (err == -EEXIST) {
		if (pw_nl_link_get(s->host_nl, s->a.host_if, &li) == 0)
			return pw_cni_fail(&c->err, PW_CNI_E_EXISTS, NULL,
					   "host interface %s for %s/%s already exists",
					   s->a.host_if, c->env.container_id, c->env.ifname);
		return pw_cni_fail(&c->err, PW_CNI_E_EXISTS, NULL,
				   "interface %s already exists in %s", s->a.pod_if, c->env.netns);
	}
	if (err)
		return nl_fail(s, err, netkit ? "cannot create the netkit pair %s" : "cannot create the veth pair %s",
			       s->a.host_if);
	s->veth_made = true;
	return 0;
}

static int configure_pod(struct add *s)
{
	struct pw_route to_gw = { .dst = { s->a.gateway, 32 }, .scope = RT_SCOPE_LINK };
	struct pw_route dflt = { .dst = { 0, 0 }, .gw = s->a.gateway };
	struct pw_link_info pod, lo;
	int err;

	if ((err = pw_nl_link_get(s->pod_nl, s->a.pod_if, &pod)))
		return nl_fail(s, err, "pod interface %s vanished", s->a.pod_if);
	memcpy(s->a.pod_mac, pod.mac, sizeof(pod.mac));
	if ((err = pw_netns_run(s->netns_fd, disable_ipv6, s->a.pod_if)))
		return nl_fail(s, err, "cannot disable IPv6 on pod interface %s", s->a.pod_if);
	if ((err = pw_nl_link_get(s->pod_nl, "lo", &lo)) || (err = pw_nl_link_set_up(s->pod_nl, lo.ifindex, true)))
		return nl_fail(s, err, "cannot bring up lo in the pod%s", "");
	if ((err = pw_nl_addr_add(s->pod_nl, pod.ifindex, s->a.ip, 32)))
		return nl_fail(s, err, "cannot add the address to %s", s->a.pod_if);
	if ((err = pw_nl_link_set_up(s->pod_nl, pod.ifindex, true)))
		return nl_fail(s, err, "cannot bring up %s", s->a.pod_if);
	to_gw.oif = dflt.oif = pod.ifindex;
	if ((err = pw_nl_route_add(s->pod_nl, &to_gw)))
		return nl_fail(s, err, "cannot add the gateway route in the pod%s", "");
	if ((err = pw_nl_route_add(s->pod_nl, &dflt)))
		return nl_fail(s, err, "cannot add the default route in the pod%s", "");
	return 0;
}

static int configure_host(struct add *s)
{
	struct pw_route to_pod = { .dst = { s->a.ip, 32 }, .scope = RT_SCOPE_LINK };
	struct pw_link_info host;
	int err;

	if ((err = pw_nl_link_get(s->host_nl, s->a.host_if, &host)))
		return nl_fail(s, err, "host interface %s vanished", s->a.host_if);
	s->host_ifindex = host.ifindex;
	memcpy(s->a.host_mac, host.mac, sizeof(host.mac));
	if ((err = disable_ipv6(s->a.host_if)))
		return nl_fail(s, err, "cannot disable IPv6 on %s", s->a.host_if);
	if ((err = pw_nl_link_set_up(s->host_nl, host.ifindex, true)))
		return nl_fail(s, err, "cannot bring up %s", s->a.host_if);
	/* Host-stack traffic to the pod (and the agent's probes) goes straight
	 * out of this veth. */
	to_pod.oif = host.ifindex;
	if ((err = pw_nl_route_replace(s->host_nl, &to_pod)))
		return nl_fail(s, err, "cannot add the host route to the pod via %s", s->a.host_if);
	return 0;
}

static int attach_datapath(struct add *s)
{
	struct pw_cni *c = s->c;
	uint16_t id = (uint16_t)(s->a.ip - s->node.info.pod_cidr.addr);
	uint16_t flags = c->args.no_sock_lb ? PW_EP_F_NO_SOCK_LB : PW_EP_F_NONE;
	uint64_t cookie;
	int err;

	if ((err = pw_link_pin_path(&c->paths, s->a.host_if, s->pin, sizeof(s->pin))) ||
	    (s->node.info.pod_attach != PW_ATTACH_TC && (err = pw_mkdirs(c->paths.link_dir, 0700))))
		return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err), "cannot prepare %s", c->paths.link_dir);
	err = pw_attach_ingress(s->node.info.pod_attach, s->node.prog_fd, s->host_ifindex, s->pin);
	if (err)
		return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err),
				   "cannot attach %s to %s (%s)", PW_PROG_POD, s->a.host_if,
				   pw_attach_mode_name(s->node.info.pod_attach));
	s->attached = true;
	err = pw_ep_register(&s->node, s->a.ip, s->host_ifindex, s->a.pod_mac, s->a.host_mac, id, flags);
	if (err)
		return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err),
				   "cannot add the endpoint to %s/%s", PW_MAP_ENDPOINTS, PW_MAP_EP_BY_IFIDX);
	s->ep_registered = true;
	/* hostPort last: its frontends send traffic to a pod that is wired. */
	if ((err = pw_hostport_add(c, &s->node, s->a.ip, id)))
		return err;
	s->hostports = c->conf.n_portmaps > 0;
	/* Last: the pod's connect() is load-balanced at the socket only once
	 * everything its translated packets need is in place. */
	err = pw_netns_cookie(s->netns_fd, &cookie);
	if (!err)
		err = pw_ep_register_netns(&s->node, cookie, s->a.ip, s->host_ifindex, flags);
	if (err)
		return pw_cni_fail(&c->err, PW_CNI_E_DATAPATH, strerror(-err),
				   "cannot add the pod's network namespace to %s", PW_MAP_SOCK_NETNS);
	return 0;
}

/* Undo, newest first. Best effort: the first error is what gets reported. */
static void rollback(struct add *s)
{
	struct pw_cni *c = s->c;
	int err;

	if (s->hostports)
		pw_hostport_remove(c, (uint16_t)(s->a.ip - s->node.info.pod_cidr.addr));
	if (s->ep_registered)
		pw_ep_forget(&s->node, s->a.ip, s->host_ifindex);
	if (s->attached && (err = pw_detach_ingress(s->node.info.pod_attach, s->host_ifindex, s->pin)))
		pw_warn("rollback: detach %s: %s", s->a.host_if, strerror(-err));
	if (s->veth_made && (err = pw_nl_link_del(s->host_nl, s->a.host_if)))
		pw_warn("rollback: delete %s: %s", s->a.host_if, strerror(-err));
	if (s->ip_reserved && (err = pw_ipam_release(&s->ipam, c->env.container_id, c->env.ifname)))
		pw_warn("rollback: release address: %s", strerror(-err));
}

int pw_cmd_add(struct pw_cni *c)
{
	struct add s = { .c = c, .netns_fd = -1 };
	char ipbuf[PW_IP4_STRLEN];
	int code;

	code = pw_node_open(c, &s.node, true, PW_CNI_E_AGENT);
	if (code)
		return code;
	s.mtu = c->conf.mtu ? c->conf.mtu : s.node.info.mtu;
	if (!(code = requested(&s)) && !(code = open_netns(&s)) && !(code = reserve_ip(&s)) &&
	    !(code = make_veth(&s)) && !(code = configure_pod(&s)) && !(code = configure_host(&s)) && !(code = attach_datapath(&s))) {
		s.a.sandbox = c->env.netns;
		s.a.mtu = s.mtu;
		c->out = pw_result_json(c->conf.version, &s.a);
		if (!c->out)
			code = pw_cni_fail(&c->err, PW_CNI_E_IO, NULL, "out of memory building the result");
	}
	if (code)
		rollback(&s);
	pw_ip4_format(s.a.ip, ipbuf);
	if (!code)
		pw_info("ADD %s/%s: %s on %s (ifindex %d)", c->env.container_id, c->env.ifname, ipbuf,
			s.a.host_if, s.host_ifindex);
	if (s.ipam_locked)
		pw_ipam_unlock(&s.ipam);
	pw_cni_release(&s.node, s.host_nl, s.pod_nl, s.netns_fd);
	return code;
}
