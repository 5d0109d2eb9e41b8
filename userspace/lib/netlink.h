/* A small rtnetlink API (over libnl-route-3) shared by the CNI plugin and the
 * agent: links (veth, vxlan), IPv4 addresses and routes, and running code
 * inside another network namespace. Never execs `ip`.
 *
 * A struct pw_nl is one NETLINK_ROUTE socket. A netlink socket acts on the
 * network namespace it was created in for its whole life, whatever netns the
 * thread later enters, so a caller keeps one handle per netns it works on
 * (pw_nl_open for the current one, pw_nl_open_in for another) instead of
 * switching namespaces around every call.
 *
 * Every function returns 0 or a negative errno (libnl's own error codes are
 * translated), so callers can test -EEXIST, -ENODEV, -ENOENT. */
#ifndef PW_NETLINK_H
#define PW_NETLINK_H
#include <stdbool.h>
#include <stdint.h>
#include "cidr.h"

#define PW_NL_IFNAMSIZ 16

struct pw_nl;

/* Socket in the current netns / in the netns referred to by netns_fd. */
int pw_nl_open(struct pw_nl **out);
int pw_nl_open_in(int netns_fd, struct pw_nl **out);
void pw_nl_close(struct pw_nl *nl);

struct pw_link_info {
	int ifindex;
	char name[PW_NL_IFNAMSIZ];
	uint8_t mac[6];
	int mtu;
	bool up;                 /* IFF_UP (administrative) */
	char kind[16];           /* "veth", "vxlan", "dummy", ... or "" */
};

/* -ENODEV when there is no such link in the socket's netns. */
int pw_nl_link_get(struct pw_nl *nl, const char *name, struct pw_link_info *out);
int pw_nl_link_get_index(struct pw_nl *nl, int ifindex, struct pw_link_info *out);

/* A veth pair: `name` in the socket's netns, `peer_name` created directly in
 * the netns of peer_netns_fd (-1: same netns), both down. mtu 0 = kernel
 * default; peer_mac NULL = a random one from the kernel. -EEXIST if either
 * name is taken (nothing is created then). */
int pw_nl_veth_add(struct pw_nl *nl, const char *name, const char *peer_name,
		   int peer_netns_fd, int mtu, const uint8_t *peer_mac);

/* A netkit pair in L3 mode (no MACs, no ARP), otherwise like
 * pw_nl_veth_add: `name` (the primary) here, `peer_name` in peer_netns_fd,
 * both down. The peer side blackholes until a program is attached to it
 * (BPF_NETKIT_PEER). -EOPNOTSUPP when the kernel has no netkit. */
int pw_nl_netkit_add(struct pw_nl *nl, const char *name, const char *peer_name,
		     int peer_netns_fd, int mtu);
/* Whether this kernel can create netkit devices: creates a pair in the
 * socket's netns and deletes it again. 0 yes, -EOPNOTSUPP no, other
 * -errno when the probe itself failed. */
int pw_nl_netkit_probe(struct pw_nl *nl);

struct pw_vxlan_opts {
	const char *name;
	uint32_t vni;            /* ignored with external */
	uint16_t port;           /* UDP destination port, host order (4789) */
	bool external;           /* collect metadata: BPF sets the tunnel key */
	uint32_t local;          /* source address, host order; 0 = any */
	int link_ifindex;        /* underlay device, 0 = any */
	int mtu;                 /* 0 = kernel default */
};
/* Created down, learning off. -EEXIST if the name is taken. */
int pw_nl_vxlan_add(struct pw_nl *nl, const struct pw_vxlan_opts *o);

int pw_nl_link_set_up(struct pw_nl *nl, int ifindex, bool up);
int pw_nl_link_set_mtu(struct pw_nl *nl, int ifindex, int mtu);
/* Rename (the link must be down). */
int pw_nl_link_set_name(struct pw_nl *nl, int ifindex, const char *name);
/* Move to the netns of netns_fd, renaming on the way when new_name != NULL. */
int pw_nl_link_set_netns(struct pw_nl *nl, int ifindex, int netns_fd, const char *new_name);
/* Delete; a missing link is success (idempotent cleanup). Deleting one end
 * of a veth pair destroys the other end too, wherever it lives. */
int pw_nl_link_del(struct pw_nl *nl, const char *name);
int pw_nl_link_del_index(struct pw_nl *nl, int ifindex);

/* IPv4 address ip/prefix on ifindex (host-order ip). add: -EEXIST if present;
 * del: absent is success; check: 0 present, -ENOENT absent. */
int pw_nl_addr_add(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix);
int pw_nl_addr_del(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix);
int pw_nl_addr_check(struct pw_nl *nl, int ifindex, uint32_t ip, uint8_t prefix);

/* An IPv4 unicast route. Use RT_SCOPE_* / RTPROT_* from <linux/rtnetlink.h>. */
struct pw_route {
	struct pw_cidr dst;      /* 0.0.0.0/0 for the default route */
	uint32_t gw;             /* host order; 0 = directly connected */
	int oif;                 /* 0 = let the kernel pick (needs gw) */
	uint8_t scope;           /* RT_SCOPE_UNIVERSE (0) or RT_SCOPE_LINK */
	uint8_t protocol;        /* 0 = RTPROT_BOOT, like `ip route add` */
	uint32_t table;          /* 0 = main */
	uint32_t metric;         /* priority */
};
/* add: -EEXIST if present; replace: add or overwrite; del: absent is
 * success; check: 0 when a route with this dst/prefix exists in the table
 * and, where set in r, the same gateway and output interface; else -ENOENT. */
int pw_nl_route_add(struct pw_nl *nl, const struct pw_route *r);
int pw_nl_route_replace(struct pw_nl *nl, const struct pw_route *r);
int pw_nl_route_del(struct pw_nl *nl, const struct pw_route *r);
int pw_nl_route_check(struct pw_nl *nl, const struct pw_route *r);

/* open(path) of a netns file (/proc/PID/ns/net, /run/netns/NAME): fd or -errno;
 * -EINVAL when path is not a network namespace. */
int pw_netns_open(const char *path);
/* 1 when netns_fd is the calling thread's current netns, 0 if not, -errno. */
int pw_netns_is_current(int netns_fd);
/* Run fn(arg) with the calling thread inside netns_fd, then switch back. The
 * original netns is restored on every path; if that ever fails the process
 * aborts rather than carry on in the wrong namespace. Returns fn's value, or
 * -errno if entering failed (fn not called). */
int pw_netns_run(int netns_fd, int (*fn)(void *arg), void *arg);
/* The cookie (SO_NETNS_COOKIE) of netns_fd, or of the calling thread's
 * netns when netns_fd < 0: what the socket programs' bpf_get_netns_cookie
 * says for sockets there. 0 or -errno. */
int pw_netns_cookie(int netns_fd, uint64_t *cookie);
/* ---- peer routes and neighbour entries (the agent's cross-node set-up) ---- */

/* Route attributes pw_route does not carry. */
struct pw_route_opts {
	uint32_t prefsrc;        /* host order; 0 = the kernel picks the source */
	bool onlink;             /* RTNH_F_ONLINK: gw need not be on a subnet of oif */
};
/* Like pw_nl_route_replace, with the extra attributes of o (may be NULL). */
int pw_nl_route_replace_opts(struct pw_nl *nl, const struct pw_route *r,
			     const struct pw_route_opts *o);
/* Every IPv4 unicast route of `table` (0 = main) whose protocol is
 * `protocol`: *out is a malloc'd array of *n routes (gw and oif of the
 * first nexthop), freed by the caller (NULL when *n == 0). */
int pw_nl_route_list(struct pw_nl *nl, uint32_t table, uint8_t protocol,
		     struct pw_route **out, int *n);

struct pw_neigh {
	int ifindex;
	uint32_t ip;             /* host order */
	uint8_t mac[6];
	bool has_mac;
	uint16_t state;          /* NUD_* from <linux/neighbour.h> */
};
/* A permanent IPv4 neighbour entry ip -> mac on ifindex, created or
 * overwritten. */
int pw_nl_neigh_replace(struct pw_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6]);
/* A kernel-managed entry (NTF_EXT_MANAGED, kernel >= 5.16): the kernel
 * resolves ip on ifindex now and keeps it resolved, so the first packet a
 * BPF program sends there finds a neighbour. -EINVAL/-EOPNOTSUPP on older
 * kernels. */
int pw_nl_neigh_managed(struct pw_nl *nl, int ifindex, uint32_t ip);
/* Delete the IPv4 entry for ip on ifindex; absent is success. */
int pw_nl_neigh_del(struct pw_nl *nl, int ifindex, uint32_t ip);
/* Every IPv4 neighbour entry on ifindex: *out malloc'd, *n entries. */
int pw_nl_neigh_list(struct pw_nl *nl, int ifindex, struct pw_neigh **out, int *n);

/* An IPv4 address of the netns. */
struct pw_addr {
	int ifindex;
	uint32_t ip;             /* host order */
	uint8_t prefix;
};
/* Every IPv4 address of nl's netns (every interface, loopback too):
 * *out malloc'd, *n entries. */
int pw_nl_addr_list(struct pw_nl *nl, struct pw_addr **out, int *n);
/* A non-blocking NETLINK_ROUTE socket of the current netns that hears every
 * IPv4 address added or removed (RTMGRP_IPV4_IFADDR): poll it, then
 * pw_nl_addr_watch_drain. The fd, or -errno. */
int pw_nl_addr_watch_open(void);
/* Reads everything pending on a watch fd: 1 if anything changed (or the
 * kernel dropped events: re-read the list either way), 0 if nothing, or
 * -errno. */
int pw_nl_addr_watch_drain(int fd);
#endif
