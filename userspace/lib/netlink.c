/* rtnetlink over libnl-route-3: see netlink.h. Link creation and link
 * attribute changes are built as raw RTM_NEWLINK/RTM_SETLINK messages (the
 * libnl veth object's reference counting changed between releases, and a
 * raw message says exactly what the kernel gets); addresses and routes use
 * libnl's route objects. */
#include "netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>

#ifndef IFF_UP
#define IFF_UP 0x1
#endif

struct pw_nl {
	struct nl_sock *sk;
};

/* libnl folds kernel errnos into its own NLE_* codes; give callers errnos
 * back (the reverse of libnl's nl_syserr2nlerr for the codes that matter). */
static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0:                return 0;
	case NLE_EXIST:        return -EEXIST;
	case NLE_NODEV:        return -ENODEV;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NOADDR:       return -EADDRNOTAVAIL;
	case NLE_BUSY:         return -EBUSY;
	case NLE_PERM:         return -EPERM;
	case NLE_NOACCESS:     return -EACCES;
	case NLE_INVAL:        return -EINVAL;
	case NLE_RANGE:        return -ERANGE;
	case NLE_NOMEM:        return -ENOMEM;
	case NLE_AGAIN:        return -EAGAIN;
	case NLE_INTR:         return -EINTR;
	case NLE_OPNOTSUPP:    return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_MSGSIZE:      return -EMSGSIZE;
	default:               return -EIO;
	}
}

/* ---- sockets and namespaces ---------------------------------------------- */

int pw_nl_open(struct pw_nl **out)
{
	struct pw_nl *nl = calloc(1, sizeof(*nl));
	int err;

	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	err = nl_connect(nl->sk, NETLINK_ROUTE);
	if (err < 0) {
		nl_socket_free(nl->sk);
		free(nl);
		return nle_to_errno(err);
	}
	*out = nl;
	return 0;
}

static int open_in_cb(void *arg)
{
	return pw_nl_open(arg);
}

int pw_nl_open_in(int netns_fd, struct pw_nl **out)
{
	return pw_netns_run(netns_fd, open_in_cb, out);
}

void pw_nl_close(struct pw_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);   /* closes the socket */
	free(nl);
}

int pw_netns_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int type;

	if (fd < 0)
		return -errno;
	/* A stale bind mount leaves a plain empty file behind: refuse it
	 * rather than let setns fail later with a less useful error. */
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int pw_netns_is_current(int netns_fd)
{
	struct stat a, b;

	if (fstat(netns_fd, &a) < 0 || stat("/proc/thread-self/ns/net", &b) < 0)
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int pw_netns_run(int netns_fd, int (*fn)(void *arg), void *arg)
{
	int self, ret;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		ret = -errno;
		close(self);
		return ret;
	}
	ret = fn(arg);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Carrying on would configure the wrong namespace. */
		fprintf(stderr, "podwire: cannot return to the original netns: %s\n", strerror(errno));
		abort();
	}
	close(self);
	return ret;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static int current_netns_cookie(void *cookie)
{
	socklen_t len = sizeof(uint64_t);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

int pw_netns_cookie(int netns_fd, uint64_t *cookie)
{
	return netns_fd < 0 ? current_netns_cookie(cookie) : pw_netns_run(netns_fd, current_netns_cookie, cookie);
}

/* ---- links --------------------------------------------------------------- */

static struct nl_msg *link_msg(int type, int flags, int ifindex)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct nl_msg *msg = nlmsg_alloc_simple(type, flags);

	if (msg && nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* Sends msg (always consumed) and waits for the kernel's ack. */
static int send_sync(struct pw_nl *nl, struct nl_msg *msg)
{
	return nle_to_errno(nl_send_sync(nl->sk, msg));
}

static void fill_link_info(struct rtnl_link *link, struct pw_link_info *out)
{
	struct nl_addr *a = rtnl_link_get_addr(link);
	const char *name = rtnl_link_get_name(link);
	const char *kind = rtnl_link_get_type(link);

	memset(out, 0, sizeof(*out));
	out->ifindex = rtnl_link_get_ifindex(link);
	snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
	snprintf(out->kind, sizeof(out->kind), "%s", kind ? kind : "");
	if (a && nl_addr_get_len(a) == sizeof(out->mac))
		memcpy(out->mac, nl_addr_get_binary_addr(a), sizeof(out->mac));
	out->mtu = (int)rtnl_link_get_mtu(link);
	out->up = rtnl_link_get_flags(link) & IFF_UP;
}

static int link_get(struct pw_nl *nl, int ifindex, const char *name, struct pw_link_info *out)
{
	struct rtnl_link *link = NULL;
	int err;

	err = nle_to_errno(rtnl_link_get_kernel(nl->sk, ifindex, name, &link));
	if (err == -ENOENT)
		err = -ENODEV;
	if (err < 0)
		return err;
	fill_link_info(link, out);
	rtnl_link_put(link);
	return 0;
}

int pw_nl_link_get(struct pw_nl *nl, const char *name, struct pw_link_info *out)
{
	if (!name || !*name || strlen(name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	return link_get(nl, 0, name, out);
}

int pw_nl_link_get_index(struct pw_nl *nl, int ifindex, struct pw_link_info *out)
{
	if (ifindex <= 0)
		return -EINVAL;
	return link_get(nl, ifindex, NULL, out);
}

/* The kinds of device pair podwire makes: what differs between them is the
 * kind, the attribute the peer is nested in and the kind's own settings
 * before it. */
struct pair_kind {
	const char *kind;
	int peer_attr;           /* VETH_INFO_PEER / IFLA_NETKIT_PEER_INFO */
	int (*put_data)(struct nl_msg *msg);   /* kind attributes before the peer, or NULL */
};

/* One RTM_NEWLINK for the pair: name here, peer_name created directly in
 * the netns of peer_netns_fd (its own ifinfomsg + attributes in the peer
 * nest), so its name only has to be free there. */
static int pair_add(struct pw_nl *nl, const struct pair_kind *k, const char *name, const char *peer_name,
		    int peer_netns_fd, int mtu, const uint8_t *peer_mac)
{
	struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
	struct nlattr *linkinfo, *data, *peer;
	struct nl_msg *msg;

	if (strlen(name) >= PW_NL_IFNAMSIZ || strlen(peer_name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	msg = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, IFLA_IFNAME, name) < 0 ||
	    (mtu > 0 && nla_put_u32(msg, IFLA_MTU, mtu) < 0))
		goto too_big;
	if (!(linkinfo = nla_nest_start(msg, IFLA_LINKINFO)) ||
	    nla_put_string(msg, IFLA_INFO_KIND, k->kind) < 0 ||
	    !(data = nla_nest_start(msg, IFLA_INFO_DATA)) ||
	    (k->put_data && k->put_data(msg) < 0) ||
	    !(peer = nla_nest_start(msg, k->peer_attr)))
		goto too_big;
	if (nlmsg_append(msg, &peer_ifi, sizeof(peer_ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, peer_name) < 0 ||
	    (mtu > 0 && nla_put_u32(msg, IFLA_MTU, mtu) < 0) ||
	    (peer_mac && nla_put(msg, IFLA_ADDRESS, 6, peer_mac) < 0) ||
	    (peer_netns_fd >= 0 && nla_put_u32(msg, IFLA_NET_NS_FD, peer_netns_fd) < 0))
		goto too_big;
	nla_nest_end(msg, peer);
	nla_nest_end(msg, data);
	nla_nest_end(msg, linkinfo);
	return send_sync(nl, msg);
too_big:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

int pw_nl_veth_add(struct pw_nl *nl, const char *name, const char *peer_name,
		   int peer_netns_fd, int mtu, const uint8_t *peer_mac)
{
	static const struct pair_kind veth = { "veth", VETH_INFO_PEER, NULL };

	return pair_add(nl, &veth, name, peer_name, peer_netns_fd, mtu, peer_mac);
}

/* L3 mode: no ARP and no MAC addresses, the pod routes everything to its
 * gateway anyway. The peer's (the pod's end) default policy is blackhole:
 * until a program is attached to the peer side, nothing the pod sends gets
 * anywhere (a pod that starts before its anti-spoofing program is in place
 * cannot send with any source). The primary forwards, so the host can reach
 * the pod with no program on that side. Once a program is attached its
 * verdict decides and the policy is not consulted. */
static int netkit_data(struct nl_msg *msg)
{
	if (nla_put_u32(msg, IFLA_NETKIT_MODE, NETKIT_L3) < 0 ||
	    nla_put_u32(msg, IFLA_NETKIT_POLICY, NETKIT_PASS) < 0 ||
	    nla_put_u32(msg, IFLA_NETKIT_PEER_POLICY, NETKIT_DROP) < 0)
		return -EMSGSIZE;
	return 0;
}

int pw_nl_netkit_add(struct pw_nl *nl, const char *name, const char *peer_name,
		     int peer_netns_fd, int mtu)
{
	static const struct pair_kind netkit = { "netkit", IFLA_NETKIT_PEER_INFO, netkit_data };

	/* No MAC for the peer: netkit refuses one in L3 mode. */
	return pair_add(nl, &netkit, name, peer_name, peer_netns_fd, mtu, NULL);
}

int pw_nl_netkit_probe(struct pw_nl *nl)
{
	char a[PW_NL_IFNAMSIZ], b[PW_NL_IFNAMSIZ];
	int err;

	/* Names of our own: two agents probing at once (one per node netns
	 * on a test machine) each work in their own netns anyway. */
	snprintf(a, sizeof(a), "pwnkp%ua", (unsigned)getpid() % 1000000u);
	snprintf(b, sizeof(b), "pwnkp%ub", (unsigned)getpid() % 1000000u);
	err = pw_nl_netkit_add(nl, a, b, -1, 0);
	if (err == -EEXIST) {
		/* Left by a probe that died half-way: remove and retry once. */
		pw_nl_link_del(nl, a);
		err = pw_nl_netkit_add(nl, a, b, -1, 0);
	}
	if (err)
		return err;
	return pw_nl_link_del(nl, a);   /* the peer goes with it */
}

int pw_nl_vxlan_add(struct pw_nl *nl, const struct pw_vxlan_opts *o)
{
	struct nlattr *linkinfo, *data;
	struct nl_msg *msg;

	if (!o->name || strlen(o->name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	msg = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, IFLA_IFNAME, o->name) < 0 ||
	    (o->mtu > 0 && nla_put_u32(msg, IFLA_MTU, o->mtu) < 0) ||
	    !(linkinfo = nla_nest_start(msg, IFLA_LINKINFO)) ||
	    nla_put_string(msg, IFLA_INFO_KIND, "vxlan") < 0 ||
	    !(data = nla_nest_start(msg, IFLA_INFO_DATA)))
		goto too_big;
	if (o->external) {
		if (nla_put_u8(msg, IFLA_VXLAN_COLLECT_METADATA, 1) < 0)
			goto too_big;
	} else if (nla_put_u32(msg, IFLA_VXLAN_ID, o->vni) < 0) {
		goto too_big;
	}
	if (nla_put_u16(msg, IFLA_VXLAN_PORT, htons(o->port)) < 0 ||
	    nla_put_u8(msg, IFLA_VXLAN_LEARNING, 0) < 0 ||
	    (o->local && nla_put_u32(msg, IFLA_VXLAN_LOCAL, htonl(o->local)) < 0) ||
	    (o->link_ifindex > 0 && nla_put_u32(msg, IFLA_VXLAN_LINK, o->link_ifindex) < 0))
		goto too_big;
	nla_nest_end(msg, data);
	nla_nest_end(msg, linkinfo);
	return send_sync(nl, msg);
too_big:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

int pw_nl_link_set_up(struct pw_nl *nl, int ifindex, bool up)
{
	struct nl_msg *msg = link_msg(RTM_SETLINK, 0, ifindex);
	struct ifinfomsg *ifi;

	if (!msg)
		return -ENOMEM;
	ifi = nlmsg_data(nlmsg_hdr(msg));
	ifi->ifi_flags = up ? IFF_UP : 0;
	ifi->ifi_change = IFF_UP;
	return send_sync(nl, msg);
}

int pw_nl_link_set_mtu(struct pw_nl *nl, int ifindex, int mtu)
{
	struct nl_msg *msg = link_msg(RTM_SETLINK, 0, ifindex);

	if (!msg)
		return -ENOMEM;
	if (nla_put_u32(msg, IFLA_MTU, mtu) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return send_sync(nl, msg);
}

int pw_nl_link_set_name(struct pw_nl *nl, int ifindex, const char *name)
{
	struct nl_msg *msg;

	if (strlen(name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	msg = link_msg(RTM_SETLINK, 0, ifindex);
	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, IFLA_IFNAME, name) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return send_sync(nl, msg);
}

int pw_nl_link_set_netns(struct pw_nl *nl, int ifindex, int netns_fd, const char *new_name)
{
	struct nl_msg *msg;

	if (new_name && strlen(new_name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	msg = link_msg(RTM_SETLINK, 0, ifindex);
	if (!msg)
		return -ENOMEM;
	if (nla_put_u32(msg, IFLA_NET_NS_FD, netns_fd) < 0 ||
	    (new_name && nla_put_string(msg, IFLA_IFNAME, new_name) < 0)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return send_sync(nl, msg);
}

static int link_del(struct pw_nl *nl, int ifindex, const char *name)
{
	struct nl_msg *msg = link_msg(RTM_DELLINK, 0, ifindex);
	int err;

	if (!msg)
		return -ENOMEM;
	if (name && nla_put_string(msg, IFLA_IFNAME, name) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	err = send_sync(nl, msg);
	return err == -ENODEV || err == -ENOENT ? 0 : err;
}

int pw_nl_link_del(struct pw_nl *nl, const char *name)
{
	if (!name || !*name || strlen(name) >= PW_NL_IFNAMSIZ)
		return -EINVAL;
	return link_del(nl, 0, name);
}

int pw_nl_link_del_index(struct pw_nl *nl, int ifindex)
{
	if (ifindex <= 0)
		return -EINVAL;
	return link_del(nl, ifindex, NULL);
}

/* ---- addresses ------------------------------------------------------------ */

static struct nl_addr *ip4_addr(uint32_t ip, uint8_t prefix)
{
	uint32_t be = htonl(ip);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, sizeof(be));

	if (a)
		nl_addr_set_prefixlen(a, prefix);
	return a;
}

static bool addr_is(struct nl_addr *a, uint32_t ip)
{
	uint32_t be;

	if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != sizeof(be))
		return false;
	memcpy(&be, nl_addr_get_binary_addr(a), sizeof(be));
	return ntohl(be) == ip;
}

static struct rtnl_addr *addr_obj(int ifindex, uint32_t ip, uint8_t prefix)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = ip4_addr(ip, prefix);

	if (!a || !local || rtnl_addr_set_local(a, local) < 0) {
		if (a)
			rtnl_addr_put(a);
		nl_addr_put(local);
		return NULL;
	}
	nl_addr_put(local);        /* the rtnl_addr holds its own reference */
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	rtnl_addr_set_prefixlen(a, prefix);
	return a;
}

int pw_nl_addr_add(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix)
{
	struct rtnl_addr *a = addr_obj(ifindex, ip, prefix);
	int err;

	if (!a)
		return -ENOMEM;
	err = nle_to_errno(rtnl_addr_add(nl->sk, a, NLM_F_EXCL));
	rtnl_addr_put(a);
	return err;
}

int pw_nl_addr_del(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix)
{
	struct rtnl_addr *a = addr_obj(ifindex, ip, prefix);
	int err;

	if (!a)
		return -ENOMEM;
	err = nle_to_errno(rtnl_addr_delete(nl->sk, a, 0));
	rtnl_addr_put(a);
	return err == -EADDRNOTAVAIL || err == -ENODEV || err == -ENOENT ? 0 : err;
}

int pw_nl_addr_check(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	int err, found = 0;

	err = nle_to_errno(rtnl_addr_alloc_cache(nl->sk, &cache));
	if (err < 0)
		return err;
	for (o = nl_cache_get_first(cache); o && !found; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;

		found = rtnl_addr_get_family(a) == AF_INET &&
			rtnl_addr_get_ifindex(a) == ifindex &&
			rtnl_addr_get_prefixlen(a) == prefix &&
			addr_is(rtnl_addr_get_local(a), ip);
	}
	nl_cache_free(cache);
	return found ? 0 : -ENOENT;
}

/* ---- routes --------------------------------------------------------------- */

static struct rtnl_route *route_obj(const struct pw_route *r, bool for_delete)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct nl_addr *dst = ip4_addr(r->dst.addr, r->dst.prefix);
	struct nl_addr *gw = NULL;

	if (!rt || !dst)
		goto fail;
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, r->table ? r->table : RT_TABLE_MAIN);
	rtnl_route_set_type(rt, RTN_UNICAST);
	if (rtnl_route_set_dst(rt, dst) < 0)
		goto fail;
	if (for_delete) {
		/* Match the route whatever scope/protocol it was added with. */
		rtnl_route_set_scope(rt, RT_SCOPE_NOWHERE);
		rtnl_route_set_protocol(rt, 0);
	} else {
		rtnl_route_set_scope(rt, r->scope);
		rtnl_route_set_protocol(rt, r->protocol ? r->protocol : RTPROT_BOOT);
	}
	if (r->metric)
		rtnl_route_set_priority(rt, r->metric);
	if (r->gw || r->oif) {
		struct rtnl_nexthop *nh = rtnl_route_nh_alloc();

		if (!nh)
			goto fail;
		if (r->oif)
			rtnl_route_nh_set_ifindex(nh, r->oif);
		if (r->gw) {
			gw = ip4_addr(r->gw, 32);
			if (!gw) {
				rtnl_route_nh_free(nh);
				goto fail;
			}
			rtnl_route_nh_set_gateway(nh, gw);
			nl_addr_put(gw);
		}
		rtnl_route_add_nexthop(rt, nh);   /* route owns nh now */
	}
	nl_addr_put(dst);
	return rt;
fail:
	nl_addr_put(dst);
	if (rt)
		rtnl_route_put(rt);
	return NULL;
}

static int route_send(struct pw_nl *nl, const struct pw_route *r, int flags)
{
	struct rtnl_route *rt = route_obj(r, false);
	int err;

	if (!rt)
		return -ENOMEM;
	err = nle_to_errno(rtnl_route_add(nl->sk, rt, flags));
	rtnl_route_put(rt);
	return err;
}

int pw_nl_route_add(struct pw_nl *nl, const struct pw_route *r)
{
	return route_send(nl, r, NLM_F_EXCL);
}

int pw_nl_route_replace(struct pw_nl *nl, const struct pw_route *r)
{
	return route_send(nl, r, NLM_F_REPLACE);
}

int pw_nl_route_del(struct pw_nl *nl, const struct pw_route *r)
{
	struct rtnl_route *rt = route_obj(r, true);
	int err;

	if (!rt)
		return -ENOMEM;
	err = nle_to_errno(rtnl_route_delete(nl->sk, rt, 0));
	rtnl_route_put(rt);
	/* ESRCH (no such route) arrives as NLE_OBJ_NOTFOUND; a gone device as ENODEV. */
	return err == -ENOENT || err == -ENODEV ? 0 : err;
}

static bool route_matches(struct rtnl_route *rt, const struct pw_route *r)
{
	struct nl_addr *dst = rtnl_route_get_dst(rt);
	int i, n;

	if (rtnl_route_get_family(rt) != AF_INET ||
	    rtnl_route_get_type(rt) != RTN_UNICAST ||
	    rtnl_route_get_table(rt) != (r->table ? r->table : RT_TABLE_MAIN))
		return false;
	/* The kernel omits RTA_DST for the default route. */
	if ((dst ? (int)nl_addr_get_prefixlen(dst) : 0) != r->dst.prefix)
		return false;
	if (r->dst.prefix && !addr_is(dst, r->dst.addr))
		return false;
	if (!r->gw && !r->oif)
		return true;
	n = rtnl_route_get_nnexthops(rt);
	for (i = 0; i < n; i++) {
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, i);

		if ((!r->oif || rtnl_route_nh_get_ifindex(nh) == r->oif) &&
		    (!r->gw || addr_is(rtnl_route_nh_get_gateway(nh), r->gw)))
			return true;
	}
	return false;
}

int pw_nl_route_check(struct pw_nl *nl, const struct pw_route *r)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	int err, found = 0;

	err = nle_to_errno(rtnl_route_alloc_cache(nl->sk, AF_INET, 0, &cache));
	if (err < 0)
		return err;
	for (o = nl_cache_get_first(cache); o && !found; o = nl_cache_get_next(o))
		found = route_matches((struct rtnl_route *)o, r);
	nl_cache_free(cache);
	return found ? 0 : -ENOENT;
}

/* ---- peer routes and neighbour entries ------------------------------------ */

#include <linux/neighbour.h>
#include <netlink/route/neighbour.h>

int pw_nl_route_replace_opts(struct pw_nl *nl, const struct pw_route *r,
			     const struct pw_route_opts *o)
{
	struct rtnl_route *rt = route_obj(r, false);
	struct nl_addr *src = NULL;
	int err;

	if (!rt)
		return -ENOMEM;
	if (o && o->prefsrc) {
		src = ip4_addr(o->prefsrc, 32);
		if (!src || rtnl_route_set_pref_src(rt, src) < 0) {
			nl_addr_put(src);
			rtnl_route_put(rt);
			return -ENOMEM;
		}
		nl_addr_put(src);
	}
	if (o && o->onlink) {
		struct rtnl_nexthop *nh = rtnl_route_get_nnexthops(rt) ? rtnl_route_nexthop_n(rt, 0) : NULL;

		if (!nh) {
			rtnl_route_put(rt);
			return -EINVAL;   /* onlink needs a nexthop */
		}
		rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
	}
	err = nle_to_errno(rtnl_route_add(nl->sk, rt, NLM_F_REPLACE));
	rtnl_route_put(rt);
	return err;
}

static uint32_t addr_ip4(struct nl_addr *a)
{
	uint32_t be = 0;

	if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == sizeof(be))
		memcpy(&be, nl_addr_get_binary_addr(a), sizeof(be));
	return ntohl(be);
}


/* Doubles a malloc'd array of elem-sized entries (16 to start). 0 or -ENOMEM,
 * leaving *v as it was. */
static int grow_array(void **v, int *cap, size_t elem)
{
	int n = *cap ? *cap * 2 : 16;
	void *g = realloc(*v, (size_t)n * elem);

	if (!g)
		return -ENOMEM;
	*v = g;
	*cap = n;
	return 0;
}

int pw_nl_route_list(struct pw_nl *nl, uint32_t table, uint8_t protocol,
		     struct pw_route **out, int *n)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	struct pw_route *v = NULL;
	int err, count = 0, cap = 0;

	*out = NULL;
	*n = 0;
	err = nle_to_errno(rtnl_route_alloc_cache(nl->sk, AF_INET, 0, &cache));
	if (err < 0)
		return err;
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(rt);
		struct pw_route *r;

		if (rtnl_route_get_family(rt) != AF_INET || rtnl_route_get_type(rt) != RTN_UNICAST ||
		    rtnl_route_get_table(rt) != (table ? table : RT_TABLE_MAIN) ||
		    rtnl_route_get_protocol(rt) != protocol)
			continue;
		if (count == cap && grow_array((void **)&v, &cap, sizeof(*v))) {
			free(v);
			nl_cache_free(cache);
			return -ENOMEM;
		}
		r = &v[count++];
		memset(r, 0, sizeof(*r));
		r->dst.addr = addr_ip4(dst);
		r->dst.prefix = dst ? (uint8_t)nl_addr_get_prefixlen(dst) : 0;
		r->scope = (uint8_t)rtnl_route_get_scope(rt);
		r->protocol = protocol;
		r->table = rtnl_route_get_table(rt);
		r->metric = rtnl_route_get_priority(rt);
		if (rtnl_route_get_nnexthops(rt) > 0) {
			struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, 0);

			r->oif = rtnl_route_nh_get_ifindex(nh);
			r->gw = addr_ip4(rtnl_route_nh_get_gateway(nh));
		}
	}
	nl_cache_free(cache);
	*out = v;
	*n = count;
	return 0;
}

/* RTM_NEWNEIGH / RTM_DELNEIGH for an IPv4 entry, raw like the link messages. */
static struct nl_msg *neigh_msg(int type, int flags, int ifindex, uint32_t ip, uint16_t state)
{
	struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = ifindex, .ndm_state = state };
	struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
	uint32_t be = htonl(ip);

	if (!msg)
		return NULL;
	if (nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, NDA_DST, sizeof(be), &be) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

int pw_nl_neigh_replace(struct pw_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	struct nl_msg *msg;

	if (ifindex <= 0)
		return -EINVAL;
	msg = neigh_msg(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ip, NUD_PERMANENT);
	if (!msg)
		return -ENOMEM;
	if (nla_put(msg, NDA_LLADDR, 6, mac) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return send_sync(nl, msg);
}

int pw_nl_neigh_managed(struct pw_nl *nl, int ifindex, uint32_t ip)
{
	struct nl_msg *msg;

	if (ifindex <= 0)
		return -EINVAL;
	/* No lladdr, state NONE: the kernel starts resolution itself. */
	msg = neigh_msg(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ip, NUD_NONE);
	if (!msg)
		return -ENOMEM;
	if (nla_put_u32(msg, NDA_FLAGS_EXT, NTF_EXT_MANAGED) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return send_sync(nl, msg);
}

int pw_nl_neigh_del(struct pw_nl *nl, int ifindex, uint32_t ip)
{
	struct nl_msg *msg;
	int err;

	if (ifindex <= 0)
		return -EINVAL;
	msg = neigh_msg(RTM_DELNEIGH, 0, ifindex, ip, 0);
	if (!msg)
		return -ENOMEM;
	err = send_sync(nl, msg);
	return err == -ENOENT || err == -ENODEV ? 0 : err;
}

int pw_nl_neigh_list(struct pw_nl *nl, int ifindex, struct pw_neigh **out, int *n)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	struct pw_neigh *v = NULL;
	int err, count = 0, cap = 0;

	*out = NULL;
	*n = 0;
	err = nle_to_errno(rtnl_neigh_alloc_cache(nl->sk, &cache));
	if (err < 0)
		return err;
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_neigh *ne = (struct rtnl_neigh *)o;
		struct nl_addr *ll = rtnl_neigh_get_lladdr(ne);
		struct pw_neigh *e;

		if (rtnl_neigh_get_family(ne) != AF_INET || rtnl_neigh_get_ifindex(ne) != ifindex)
			continue;
		if (count == cap && grow_array((void **)&v, &cap, sizeof(*v))) {
			free(v);
			nl_cache_free(cache);
			return -ENOMEM;
		}
		e = &v[count++];
		memset(e, 0, sizeof(*e));
		e->ifindex = ifindex;
		e->ip = addr_ip4(rtnl_neigh_get_dst(ne));
		e->state = (uint16_t)rtnl_neigh_get_state(ne);
		if (ll && nl_addr_get_len(ll) == sizeof(e->mac)) {
			memcpy(e->mac, nl_addr_get_binary_addr(ll), sizeof(e->mac));
			e->has_mac = true;
		}
	}
	nl_cache_free(cache);
	*out = v;
	*n = count;
	return 0;
}

/* ---- the netns's addresses and their changes ------------------------------ */

int pw_nl_addr_list(struct pw_nl *nl, struct pw_addr **out, int *n)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	struct pw_addr *v = NULL;
	int err, count = 0, cap = 0;

	*out = NULL;
	*n = 0;
	err = nle_to_errno(rtnl_addr_alloc_cache(nl->sk, &cache));
	if (err < 0)
		return err;
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;

		if (rtnl_addr_get_family(a) != AF_INET)
			continue;
		if (count == cap && grow_array((void **)&v, &cap, sizeof(*v))) {
			free(v);
			nl_cache_free(cache);
			return -ENOMEM;
		}
		v[count].ifindex = rtnl_addr_get_ifindex(a);
		v[count].ip = addr_ip4(rtnl_addr_get_local(a));
		v[count].prefix = (uint8_t)rtnl_addr_get_prefixlen(a);
		count++;
	}
	nl_cache_free(cache);
	*out = v;
	*n = count;
	return 0;
}

int pw_nl_addr_watch_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int pw_nl_addr_watch_drain(int fd)
{
	char buf[8192];
	int got = 0;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r > 0) {
			got = 1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		/* ENOBUFS: the kernel dropped events for us; a full re-read
		 * is what the caller does anyway. */
		if (r < 0 && errno == ENOBUFS) {
			got = 1;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		return got;
	}
}
