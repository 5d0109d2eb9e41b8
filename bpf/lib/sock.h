/* SPDX-License-Identifier: Apache-2.0 */
/* Socket load balancing: the cgroup sock_addr hooks translate a service
 * frontend to a backend when the application names it (connect, sendmsg
 * of unconnected UDP), so its packets leave already addressed to the
 * backend: no per-packet NAT, no conntrack entry. The reverse direction is
 * what the application is shown (recvmsg's source, getpeername), from
 * the socket's own storage (pw_sock_conn) for a connect()ed socket and
 * from pw_sock_revnat for unconnected UDP. Same service maps and backend selection as the
 * per-packet path (lb.h). Attached by the agent to the cgroup v2 root,
 * which every network namespace of the machine shares: each program acts
 * only on sockets of this node's namespace (cfg_netns_cookie) and of this
 * node's pods (pw_sock_netns, written by the CNI plugin), so one node's
 * programs never touch another node's sockets. A pod that opted out
 * (PW_EP_F_NO_SOCK_LB) is left to the per-packet path. */
#ifndef PW_BPF_SOCK_H
#define PW_BPF_SOCK_H

#include <linux/errno.h>
#include "common.h"
#include "config.h"
#include "maps.h"
#include "hash.h"
#include "ipv4.h"
#include "lb.h"

/* The node's network namespace (SO_NETNS_COOKIE, set by the agent). 0 (not
 * set) matches no socket: an unconfigured object never translates. */
const volatile __u64 cfg_netns_cookie = 0;

/* Unconnected UDP: (socket cookie, backend) -> the frontend the
 * application asked for, per datagram's destination. LRU: a forgotten
 * entry only shows the backend's address instead. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pw_sock_rev_key);
	__type(value, struct pw_sock_rev);
	__uint(max_entries, PW_MAX_SOCK_REVNAT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_sock_revnat SEC(".maps");

/* A connect()ed socket (TCP, connected UDP) has one peer: its translation
 * lives in the socket's local storage and goes with the socket. Kept in
 * pw_sock_revnat, every connect() would insert into a full LRU once
 * connections outnumber its entries, and the eviction cost 2-3.5 us per
 * connect (measured, BENCH connection-per-request: 0.93x of direct pod to
 * pod; with this storage, no eviction at all). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pw_sock_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_sock_conn SEC(".maps");

/* cgroup sock_addr verdicts: carry on, or fail the system call. */
#define PW_SOCK_ALLOW  1
#define PW_SOCK_REJECT 0

/* What pw_sock_translate did. */
#define PW_SOCK_NOT_SERVICE 0
#define PW_SOCK_TRANSLATED  1
#define PW_SOCK_NO_BACKEND  2

/* Whose socket ctx is. */
#define PW_SOCK_FOREIGN 0   /* another node's, an opted-out pod's, or no one's we know */
#define PW_SOCK_NODE    1   /* this node's own namespace (processes, hostNetwork pods) */
#define PW_SOCK_POD     2   /* a pod of this node */

/* The owner of ctx's socket and, for ours, the client address the backend
 * selection sees (ClientIP affinity): the node's IP or the pod's. */
static __always_inline int pw_sock_owner(struct bpf_sock_addr *ctx, __be32 *client)
{
	const struct pw_sock_netns *pod;
	__u64 netns;

	if (!cfg_netns_cookie)
		return PW_SOCK_FOREIGN;
	netns = bpf_get_netns_cookie(ctx);
	if (netns == cfg_netns_cookie) {
		*client = cfg_node_ip;
		return PW_SOCK_NODE;
	}
	pod = bpf_map_lookup_elem(&pw_sock_netns, &netns);
	if (!pod || (pod->flags & PW_EP_F_NO_SOCK_LB))
		return PW_SOCK_FOREIGN;
	*client = pw_ip4_load(pod->ip);
	return PW_SOCK_POD;
}

/* Loopback: where a NodePort or hostPort also answers a process of the
 * node (besides the node's NodePort addresses, pw_np_addrs). A pod's
 * 127.0.0.1 is the pod itself. */
static __always_inline int pw_sock_loopback(__be32 addr)
{
	return (bpf_ntohl(addr) >> 24) == 127;
}

/* A ClusterIP, a NodePort on one of the node's NodePort addresses (or
 * loopback, for the node's own sockets), or a pod's hostPort: on its very
 * hostIP, or a wildcard one on the node IP (or loopback). */
static __always_inline const struct pw_svc *pw_sock_frontend(__be32 addr, __u16 port, __u8 proto, int owner)
{
	const struct pw_svc *svc = NULL;
	int loopback = pw_sock_loopback(addr);

	if (pw_in_service_cidr(addr)) {
		svc = pw_svc_lookup(addr, port, proto, PW_SVC_CLUSTERIP);
		if (svc)
			return svc;
	}
	if (loopback && owner != PW_SOCK_NODE)
		return NULL;
	if (loopback)
		svc = pw_svc_lookup(0, port, proto, PW_SVC_NODEPORT);
	else
		svc = pw_nodeport_lookup(addr, port, proto);
	if (!svc)
		svc = pw_svc_lookup(addr, port, proto, PW_SVC_HOSTPORT);
	if (!svc && (addr == cfg_node_ip || loopback))
		svc = pw_svc_lookup(0, port, proto, PW_SVC_HOSTPORT);
	return svc;
}

/* The way back for recvmsg/getpeername: in the socket's storage when it is
 * connecting (connect4), else (or should the storage not be allocated) in
 * pw_sock_revnat. */
static __always_inline void pw_sock_remember(struct bpf_sock_addr *ctx, int connecting, __u64 cookie,
					     __be32 baddr, __u16 bport, __be32 addr, __u16 port)
{
	struct pw_sock_rev_key key = {};
	struct pw_sock_rev rev = {};
	struct pw_sock_conn *conn = NULL;

	if (connecting)
		conn = bpf_sk_storage_get(&pw_sock_conn, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (conn) {
		__builtin_memcpy(conn->backend, &baddr, 4);
		conn->backend_port = bport;
		__builtin_memcpy(conn->frontend.addr, &addr, 4);
		conn->frontend.port = port;
		return;
	}
	key.cookie = cookie;
	__builtin_memcpy(key.addr, &baddr, 4);
	key.port = bport;
	__builtin_memcpy(rev.addr, &addr, 4);
	rev.port = port;
	bpf_map_update_elem(&pw_sock_revnat, &key, &rev, BPF_ANY);
}

/* The application's destination in ctx, if a frontend, becomes a backend
 * chosen as the per-packet path would (the client is the node or the pod; Maglev
 * hashes the socket, so one socket keeps its backend per service), and
 * the way back is remembered for recvmsg/getpeername. */
static __always_inline int pw_sock_translate(struct bpf_sock_addr *ctx, int owner, __be32 client, int connecting)
{
	__be32 addr = ctx->user_ip4, baddr;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 proto = (__u8)ctx->protocol;
	const struct pw_backend *b;
	const struct pw_svc *svc;
	__u64 cookie;
	__u32 id;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return PW_SOCK_NOT_SERVICE;
	svc = pw_sock_frontend(addr, port, proto, owner);
	if (!svc)
		return PW_SOCK_NOT_SERVICE;
	cookie = bpf_get_socket_cookie(ctx);
	id = pw_lb_select_for(svc->id, svc->backends, svc->algorithm, svc->affinity_timeout, client,
			      pw_tuple_hash((__u32)cookie, (__u32)(cookie >> 32), 0, 0, proto), bpf_ktime_get_ns());
	b = id ? pw_backend_get(id) : NULL;
	if (!b)
		return PW_SOCK_NO_BACKEND;
	baddr = pw_ip4_load(b->addr);
	pw_sock_remember(ctx, connecting, cookie, baddr, b->port, addr, port);
	ctx->user_ip4 = baddr;
	ctx->user_port = bpf_htons(b->port);
	return PW_SOCK_TRANSLATED;
}

/* connect() and sendmsg() to a frontend. A service without a usable
 * backend fails the call with ECONNREFUSED, as kube-proxy's REJECT makes
 * it fail (bpf_set_retval; without it the kernel would say EPERM). */
static __always_inline int pw_sock_forward(struct bpf_sock_addr *ctx, int connecting)
{
	__be32 client = 0;
	int owner = pw_sock_owner(ctx, &client);

	if (owner == PW_SOCK_FOREIGN)
		return PW_SOCK_ALLOW;
	if (pw_sock_translate(ctx, owner, client, connecting) == PW_SOCK_NO_BACKEND) {
		bpf_set_retval(-ECONNREFUSED);
		return PW_SOCK_REJECT;
	}
	return PW_SOCK_ALLOW;
}

/* recvmsg()'s source and getpeername()'s peer: the backend a translated
 * socket talks to is shown as the frontend the application asked for. */
static __always_inline int pw_sock_reverse(struct bpf_sock_addr *ctx)
{
	struct pw_sock_rev_key key = {};
	const struct pw_sock_rev *rev;
	const struct pw_sock_conn *conn;
	__be32 addr = ctx->user_ip4, client;

	if (pw_sock_owner(ctx, &client) == PW_SOCK_FOREIGN)
		return PW_SOCK_ALLOW;
	conn = bpf_sk_storage_get(&pw_sock_conn, ctx->sk, NULL, 0);
	if (conn && pw_ip4_load(conn->backend) == addr && conn->backend_port == bpf_ntohs((__u16)ctx->user_port)) {
		ctx->user_ip4 = pw_ip4_load(conn->frontend.addr);
		ctx->user_port = bpf_htons(conn->frontend.port);
		return PW_SOCK_ALLOW;
	}
	key.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(key.addr, &addr, 4);
	key.port = bpf_ntohs((__u16)ctx->user_port);
	rev = bpf_map_lookup_elem(&pw_sock_revnat, &key);
	if (rev) {
		ctx->user_ip4 = pw_ip4_load(rev->addr);
		ctx->user_port = bpf_htons(rev->port);
	}
	return PW_SOCK_ALLOW;
}

#endif
