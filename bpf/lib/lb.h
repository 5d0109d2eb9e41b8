/* SPDX-License-Identifier: Apache-2.0 */
/* Service load balancing: frontend lookup, backend selection (random over
 * the service's slots, Maglev, ClientIP affinity), the DNAT of a client's
 * packet to its backend and the reverse translation of the backend's
 * replies, with conntrack (conntrack.h) pinning each flow to its backend.
 * The maps are written by userspace/lib/services.c (docs/services.md). */
#ifndef PW_BPF_LB_H
#define PW_BPF_LB_H

#include "common.h"
#include "config.h"
#include "maps.h"
#include "eth.h"
#include "ipv4.h"
#include "hash.h"
#include "l4.h"
#include "csum.h"
#include "icmp.h"
#include "nat.h"
#include "conntrack.h"
#include "endpoint.h"
#include "metrics.h"
#include "events.h"

/* Slots tried from the random start before giving up on a service whose
 * backends are all terminating or half-removed: every slot of a service of
 * up to 16 backends, a fair sample of a bigger one. */
#define PW_LB_PROBES    16
#define PW_NSEC_PER_SEC 1000000000ULL

/* pw_lb_forward: translated, carry on towards the (new) destination. */
#define PW_LB_TRANSLATED 0

/* The packet TCP or UDP with its ports parsed (unfragmented): worth a
 * frontend lookup. pw_ipv4_parse left the ports 0 otherwise. */
static __always_inline int pw_lb_candidate(const struct pw_pkt *pkt)
{
	return (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP) && pkt->dport;
}

/* Whether a packet from this source port may be a backend's reply: only
 * then is conntrack worth asking (pw_backend_ports in podwire/abi.h). */
static __always_inline int pw_lb_from_backend_port(__u16 sport)
{
	__u32 word = sport / 64;
	const __u64 *bits = bpf_map_lookup_elem(&pw_backend_ports, &word);

	return bits && (*bits >> (sport % 64)) & 1;
}

static __always_inline const struct pw_svc *pw_svc_lookup(__be32 addr, __u16 port, __u8 proto, __u8 scope)
{
	struct pw_svc_key key;

	__builtin_memcpy(key.addr, &addr, 4);
	key.port = port;
	key.proto = proto;
	key.scope = scope;
	return bpf_map_lookup_elem(&pw_services, &key);
}

/* A pod's hostPort (PW_SVC_HOSTPORT, written by the CNI plugin) on daddr,
 * an address of this node: the mapping on exactly that hostIP, else the
 * wildcard one (hostIP 0.0.0.0). *scope says how its flows are translated
 * back: a given hostIP through pw_revnat like a ClusterIP, the wildcard
 * from the node IP like a NodePort (the client may have used any address). */
static __always_inline const struct pw_svc *pw_hostport_lookup(__be32 daddr, __u16 port, __u8 proto, __u8 *scope)
{
	const struct pw_svc *svc = pw_svc_lookup(daddr, port, proto, PW_SVC_HOSTPORT);

	if (svc) {
		*scope = PW_SVC_CLUSTERIP;
		return svc;
	}
	*scope = PW_SVC_NODEPORT;
	return pw_svc_lookup(0, port, proto, PW_SVC_HOSTPORT);
}

/* A NodePort frontend (0.0.0.0, port, proto) for a packet to addr: the
 * port in the NodePort range and addr one of this node's NodePort
 * addresses (pw_np_addrs), which keeps every other packet to a node
 * address at one compare. */
static __always_inline const struct pw_svc *pw_nodeport_lookup(__be32 addr, __u16 port, __u8 proto)
{
	struct pw_ip4 key;

	if (port < PW_NODEPORT_MIN || port > PW_NODEPORT_MAX)
		return NULL;
	__builtin_memcpy(key.addr, &addr, 4);
	if (!bpf_map_lookup_elem(&pw_np_addrs, &key))
		return NULL;
	return pw_svc_lookup(0, port, proto, PW_SVC_NODEPORT);
}

static __always_inline const struct pw_backend *pw_backend_get(__u32 id)
{
	return bpf_map_lookup_elem(&pw_backends, &id);
}

/* A backend a new flow may go to: it exists and is not terminating. */
static __always_inline int pw_backend_usable(__u32 id)
{
	const struct pw_backend *b = id ? pw_backend_get(id) : NULL;

	return b && b->state == PW_BACKEND_ACTIVE;
}

/* Random: a random slot of 0..n-1; a slot missing (the service shrank
 * between our two lookups) or naming an unusable backend moves on to the
 * next one. 0 when none is found. */
static __always_inline __u32 pw_select_random(__u32 svc_id, __u32 n)
{
	struct pw_slot_key key = { .svc_id = svc_id };
	__u32 start, *id;

	if (!n)
		return 0;
	start = bpf_get_prandom_u32() % n;
	for (__u32 i = 0; i < PW_LB_PROBES; i++) {
		if (i >= n)
			break;
		key.slot = start + i < n ? start + i : start + i - n;
		id = bpf_map_lookup_elem(&pw_svc_slots, &key);
		if (id && pw_backend_usable(*id))
			return *id;
	}
	return 0;
}

/* The flow hash Maglev indexes its table with: the 5-tuple as the client
 * sent it (hash.h). */
static __always_inline __u32 pw_lb_hash(const struct pw_ct_key *k)
{
	return pw_tuple_hash(pw_ip4_load(k->saddr), pw_ip4_load(k->daddr), k->sport, k->dport, k->proto);
}

/* Maglev: entry hash % M of the service's table. 0 when the service has no
 * table (yet), the entry is out of the table or names an unusable backend:
 * the caller falls back to random. */
static __always_inline __u32 pw_select_maglev(__u32 svc_id, __u32 hash)
{
	__u32 m = cfg_maglev_m, idx, *id;
	void *table;

	if (!m)
		return 0;
	table = bpf_map_lookup_elem(&pw_maglev, &svc_id);
	if (!table)
		return 0;
	idx = hash % m;
	id = bpf_map_lookup_elem(table, &idx);
	if (!id || !pw_backend_usable(*id))
		return 0;
	return *id;
}

/* The backend for a new flow from client: the client's pinned one under
 * ClientIP affinity while fresh and usable, else by the service's
 * algorithm (Maglev indexes with hash); a new choice is pinned. 0 = no
 * backend. The per-packet path (pw_lb_select) and the socket path
 * (sock.h) differ only in what they hash and call the client. */
static __always_inline __u32 pw_lb_select_for(__u32 svc_id, __u32 n, __u8 algorithm, __u32 affinity_timeout,
					      __be32 client, __u32 hash, __u64 now)
{
	struct pw_affinity_key akey = { .svc_id = svc_id };
	struct pw_affinity *aff, val = {};
	__u32 id = 0;

	if (affinity_timeout) {
		__builtin_memcpy(akey.client, &client, 4);
		aff = bpf_map_lookup_elem(&pw_affinity, &akey);
		if (aff && now - aff->last_used_ns <= (__u64)affinity_timeout * PW_NSEC_PER_SEC) {
			id = aff->backend_id;
			if (pw_backend_usable(id)) {
				aff->last_used_ns = now;
				return id;
			}
			id = 0;
		}
	}
	if (algorithm == PW_LB_MAGLEV)
		id = pw_select_maglev(svc_id, hash);
	if (!id)
		id = pw_select_random(svc_id, n);
	if (id && affinity_timeout) {
		val.backend_id = id;
		val.last_used_ns = now;
		bpf_map_update_elem(&pw_affinity, &akey, &val, BPF_ANY);
	}
	return id;
}

/* The backend for a new flow (fkey: as the client sent it). */
static __always_inline __u32 pw_lb_select(__u32 svc_id, __u32 n, __u8 algorithm, __u32 affinity_timeout,
					  const struct pw_ct_key *fkey, __u64 now)
{
	return pw_lb_select_for(svc_id, n, algorithm, affinity_timeout, pw_ip4_load(fkey->saddr),
				algorithm == PW_LB_MAGLEV ? pw_lb_hash(fkey) : 0, now);
}

/* The TCP header, without options. */
struct pw_tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8   doff;        /* data offset << 4 */
	__u8   flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

struct pw_rst {
	struct iphdr ip;
	struct pw_tcphdr tcp;
};

struct pw_pseudo_hdr {
	__be32 saddr;
	__be32 daddr;
	__u8   zero;
	__u8   proto;
	__be16 len;
};

/* The answer to a packet for a service without backends (len bytes of
 * IPv4 and above at hdrs) replaces the packet, behind its Ethernet header
 * with the MACs swapped, and goes back the way the packet came: into the
 * pod (pod_ingress) or to the client's next hop (uplink). Counted and
 * reported as the no-backend drop it is: the packet itself is consumed. */
static __always_inline int pw_lb_answer_back(struct __sk_buff *skb, struct pw_pkt *pkt, const void *hdrs, __u32 len)
{
	struct ethhdr *eth;
	__u8 mac[PW_ETH_ALEN];

	if (bpf_skb_change_tail(skb, sizeof(struct ethhdr) + len, 0) ||
	    bpf_skb_store_bytes(skb, sizeof(struct ethhdr), hdrs, len, BPF_F_RECOMPUTE_CSUM))
		return PW_DROP_NO_BACKEND;
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;
	pw_mac_copy(mac, eth->h_source);
	pw_mac_copy(eth->h_source, eth->h_dest);
	pw_mac_copy(eth->h_dest, mac);

	pw_metrics_count(-PW_DROP_NO_BACKEND, pkt->dir, skb->len);
	pw_event_drop(skb, pkt, PW_DROP_NO_BACKEND);
	return bpf_redirect(skb->ifindex, 0);
}

/* A TCP SYN for a service without backends: answered like kube-proxy's
 * REJECT, with a RST|ACK from the frontend (RFC 793: seq 0, ack = the
 * SYN's seq + its length), built in place (options and payload cut off,
 * checksums computed from scratch) and sent back (pw_lb_answer_back). */
static __always_inline int pw_lb_reject(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
					const struct pw_l4 *l4)
{
	struct pw_tcphdr in;
	struct pw_rst h = {};
	struct pw_pseudo_hdr ph = {};
	__u32 hlen, seg_len;
	__s64 sum;

	if (iph->ihl != 5)
		return PW_DROP_NO_BACKEND; /* IP options: not worth a RST */
	if (bpf_skb_load_bytes(skb, l4->off, &in, sizeof(in)) != 0)
		return PW_DROP_NO_BACKEND;
	hlen = (in.doff >> 4) * 4;
	if (hlen < sizeof(in) || hlen > bpf_ntohs(iph->tot_len) - sizeof(*iph))
		return PW_DROP_MALFORMED;
	seg_len = bpf_ntohs(iph->tot_len) - sizeof(*iph) - hlen;
	seg_len += (in.flags & PW_TCP_SYN) ? 1 : 0;
	seg_len += (in.flags & PW_TCP_FIN) ? 1 : 0;

	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tot_len = bpf_htons(sizeof(h));
	h.ip.frag_off = bpf_htons(0x4000); /* DF */
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_TCP;
	h.ip.saddr = iph->daddr;
	h.ip.daddr = iph->saddr;
	h.ip.check = pw_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	h.tcp.source = in.dest;
	h.tcp.dest = in.source;
	h.tcp.ack_seq = bpf_htonl(bpf_ntohl(in.seq) + seg_len);
	h.tcp.doff = 5 << 4;
	h.tcp.flags = PW_TCP_RST | PW_TCP_ACK;
	ph.saddr = h.ip.saddr;
	ph.daddr = h.ip.daddr;
	ph.proto = IPPROTO_TCP;
	ph.len = bpf_htons(sizeof(h.tcp));
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.tcp, sizeof(h.tcp), (__wsum)sum);
	h.tcp.check = pw_csum_fold(sum);

	return pw_lb_answer_back(skb, pkt, &h, sizeof(h));
}

/* An ICMP "port unreachable" as a router would send it. */
struct pw_unreach {
	struct iphdr ip;
	struct pw_icmp_head icmp;
	struct iphdr quoted_ip;
	__u8 quoted_l4[8];
};

/* A UDP datagram for a service without backends: answered like kube-proxy's
 * REJECT, with an ICMP port unreachable from the frontend quoting the
 * datagram, so the client's socket fails at once (ECONNREFUSED) instead of
 * waiting for its timeout. Built like pw_lb_reject's RST, sent back the
 * same way. */
static __always_inline int pw_lb_unreachable(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
					     const struct pw_l4 *l4)
{
	struct pw_unreach h = {};

	if (iph->ihl != 5 ||
	    bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &h.quoted_ip, sizeof(h.quoted_ip)) ||
	    bpf_skb_load_bytes(skb, l4->off, h.quoted_l4, sizeof(h.quoted_l4)))
		return PW_DROP_NO_BACKEND;
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tot_len = bpf_htons(sizeof(h));
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_ICMP;
	h.ip.saddr = iph->daddr;
	h.ip.daddr = iph->saddr;
	h.ip.check = pw_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	h.icmp.type = PW_ICMP_DEST_UNREACH;
	h.icmp.code = 3; /* port unreachable */
	h.icmp.csum = pw_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.icmp,
						 sizeof(h) - __builtin_offsetof(struct pw_unreach, icmp), 0));

	return pw_lb_answer_back(skb, pkt, &h, sizeof(h));
}

/* The reply key of a flow: the packet as the backend sends it, to the
 * client (hairpin: to the gateway address the client-backend was shown). */
static __always_inline void pw_lb_reply_key(struct pw_ct_key *rkey, __be32 baddr, __u16 bport, __be32 client,
					    __u16 cport, __u8 proto, __u8 flags)
{
	pw_ct_key_make(rkey, baddr, (flags & PW_CT_F_HAIRPIN) ? cfg_gateway_ip : client, bport, cport, proto,
		       PW_CT_REPLY);
}

/* A packet to frontend svc (scope PW_SVC_CLUSTERIP or PW_SVC_NODEPORT):
 * its flow's backend from conntrack, or a new choice with new conntrack
 * entries; then DNAT to the backend (hairpin: also the source to
 * cfg_gateway_ip). snat_remote: a new NodePort flow to a backend on another
 * node is marked PW_CT_F_SNAT (an outside client, whose replies must come
 * back through this node; a local pod client's come back anyway).
 * PW_LB_TRANSLATED (0: carry on towards the backend; *ct_flags says how,
 * the SNAT itself is left to the caller), a verdict (> 0: a RST went back)
 * or a drop reason. */
static __always_inline int pw_lb_forward(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
					 const struct pw_svc *svc, __u8 scope, int snat_remote, __u8 *ct_flags)
{
	__u32 svc_id = svc->id, n = svc->backends, affinity = svc->affinity_timeout;
	__u8 algorithm = svc->algorithm;
	__be32 saddr = iph->saddr, daddr = iph->daddr, baddr;
	struct pw_ct_key fkey, rkey;
	struct pw_ct_entry *e, val = {};
	const struct pw_backend *b = NULL;
	__u64 now = bpf_ktime_get_ns();
	struct pw_l4 l4;
	int replace = 0, err;
	__u16 bport;
	__u8 f, flags;
	__u32 id;

	err = pw_l4_parse(skb, iph, &l4);
	if (err)
		return err;
	f = pw_tcp_flags(skb, &l4);
	pw_ct_key_make(&fkey, saddr, daddr, l4.sport, l4.dport, l4.proto, PW_CT_FORWARD);

	e = bpf_map_lookup_elem(&pw_ct, &fkey);
	if (e) {
		/* A new connection on a closed flow's tuple chooses again; so
		 * does a flow whose backend left every service. A terminating
		 * backend keeps its flows. */
		if (pw_tcp_is_syn(f) && e->state >= PW_CT_CLOSING)
			replace = 1;
		else if (!(b = pw_backend_get(e->backend_id)))
			replace = 1;
	}
	if (e && b) {
		baddr = pw_ip4_load(b->addr);
		bport = b->port;
		flags = e->flags;
		if (pw_ct_account(e, f, l4.proto, PW_CT_FORWARD, now)) {
			pw_lb_reply_key(&rkey, baddr, bport, saddr, l4.sport, l4.proto, flags);
			pw_ct_sync(e, &rkey, now);
		}
	} else {
		id = pw_lb_select(svc_id, n, algorithm, affinity, &fkey, now);
		b = id ? pw_backend_get(id) : NULL;
		if (!b) {
			if (pw_tcp_is_syn(f))
				return pw_lb_reject(skb, pkt, iph, &l4);
			if (l4.proto == IPPROTO_UDP)
				return pw_lb_unreachable(skb, pkt, iph, &l4);
			return PW_DROP_NO_BACKEND;
		}
		baddr = pw_ip4_load(b->addr);
		bport = b->port;
		flags = baddr == saddr ? PW_CT_F_HAIRPIN : 0;
		if (scope == PW_SVC_NODEPORT) {
			flags |= PW_CT_F_NODEPORT;
			if (snat_remote && !pw_ep_by_ip(baddr))
				flags |= PW_CT_F_SNAT;
		}
		val.last_seen_ns = now;
		val.svc_id = svc_id;
		val.backend_id = id;
		val.state = PW_CT_NEW;
		val.tcp_flags = f;
		val.fe_port = scope == PW_SVC_NODEPORT ? l4.dport : 0;
		if (scope == PW_SVC_NODEPORT)
			__builtin_memcpy(val.fe_addr, &daddr, 4);
		val.flags = flags;
		pw_lb_reply_key(&rkey, baddr, bport, saddr, l4.sport, l4.proto, flags);
		err = pw_ct_create(&fkey, &rkey, &val, replace);
		if (err < 0)
			return err;
		if (err > 0) {
			/* Another CPU created the flow first: follow its choice. */
			b = pw_backend_get(val.backend_id);
			if (!b)
				return PW_DROP_NO_BACKEND;
			baddr = pw_ip4_load(b->addr);
			bport = b->port;
			flags = val.flags;
		}
	}

	if (baddr != daddr && pw_rewrite_addr(skb, &l4, PW_IP_DADDR_OFF, daddr, baddr))
		return PW_DROP_NAT_FAILED;
	if (bport != l4.dport && pw_rewrite_port(skb, &l4, l4.dport_off, bpf_htons(l4.dport), bpf_htons(bport)))
		return PW_DROP_NAT_FAILED;
	if ((flags & PW_CT_F_HAIRPIN) && pw_rewrite_addr(skb, &l4, PW_IP_SADDR_OFF, saddr, cfg_gateway_ip))
		return PW_DROP_NAT_FAILED;
	pkt->nat_addr = baddr;
	pkt->nat_port = bport;
	*ct_flags = flags;
	return PW_LB_TRANSLATED;
}

/* The frontend a flow's client used: the node address and node port of a
 * NodePort flow (kept in its conntrack entry), the service's ClusterIP
 * (pw_revnat) otherwise. 0, or -1 when the service was removed: its flows
 * end here. */
static __always_inline int pw_lb_frontend(const struct pw_ct_entry *e, __be32 *fe_addr, __u16 *fe_port)
{
	const struct pw_revnat *rn;
	__u32 svc_id;

	if (e->flags & PW_CT_F_NODEPORT) {
		*fe_addr = pw_ip4_load(e->fe_addr);
		*fe_port = e->fe_port;
		return 0;
	}
	svc_id = e->svc_id;
	rn = bpf_map_lookup_elem(&pw_revnat, &svc_id);
	if (!rn)
		return -1;
	*fe_addr = pw_ip4_load(rn->addr);
	*fe_port = rn->port;
	return 0;
}

/* An ICMP error about a load-balanced flow, on its way to the client. The
 * client sent to the frontend, but the quote names the backend, and so
 * does the error's source when the backend itself answers (UDP "port
 * unreachable"). Both go back to the frontend (ClusterIP, or the node
 * address and port of a NodePort flow), as conntrack's NAT of related
 * packets does under kube-proxy; otherwise the client's socket never
 * matches the error and waits for its timeout. A hairpin flow's client saw
 * the gateway address as its own: the quote's source and the error's
 * destination go back to the client too. 1 (translated: packet pointers
 * are invalid), 0 (not about such a flow) or a drop reason. */
static __always_inline int pw_lb_reverse_icmp_error(struct __sk_buff *skb, struct pw_pkt *pkt,
						    const struct iphdr *iph)
{
	__be32 outer_src = iph->saddr, outer_dst = iph->daddr, backend, fe_addr, client;
	const struct pw_ct_entry *e;
	struct pw_icmp_quote q;
	struct pw_ct_key rkey;
	__u16 fe_port;
	__u8 flags;

	if (pw_icmp_error_quote(skb, iph, &q) || q.proto == IPPROTO_ICMP)
		return 0;
	/* The quoted packet went client -> backend: that flow's reply key
	 * (hairpin: the quote's source is already the gateway, as the key). */
	pw_ct_key_make(&rkey, q.daddr, q.saddr, q.dport, q.sport, q.proto, PW_CT_REPLY);
	e = bpf_map_lookup_elem(&pw_ct, &rkey);
	if (!e)
		return 0;
	flags = e->flags;
	if (pw_lb_frontend(e, &fe_addr, &fe_port))
		return 0;
	backend = q.daddr;
	client = (flags & PW_CT_F_HAIRPIN) ? backend : q.saddr;
	if (pw_icmp_quote_rewrite(skb, &q, __builtin_offsetof(struct iphdr, daddr), backend, fe_addr, q.dport_off,
				  q.dport, fe_port))
		return PW_DROP_NAT_FAILED;
	if ((flags & PW_CT_F_HAIRPIN) &&
	    pw_icmp_quote_rewrite(skb, &q, __builtin_offsetof(struct iphdr, saddr), q.saddr, client, 0, 0, 0))
		return PW_DROP_NAT_FAILED;
	if (outer_src == backend && pw_icmp_outer_rewrite(skb, PW_IP_SADDR_OFF, backend, fe_addr))
		return PW_DROP_NAT_FAILED;
	if ((flags & PW_CT_F_HAIRPIN) && outer_dst != client &&
	    pw_icmp_outer_rewrite(skb, PW_IP_DADDR_OFF, outer_dst, client))
		return PW_DROP_NAT_FAILED;
	pkt->nat_addr = fe_addr;
	pkt->nat_port = fe_port;
	return 1;
}

/* A packet from a backend to its client (a pw_ct reply entry matches it):
 * the source goes back to the frontend the client used (pw_lb_frontend:
 * pw_revnat, or the node address and node port of NodePort flows);
 * hairpin: the destination back from the gateway address to the client. 0 (not a reply: untouched), 1
 * (translated: packet pointers are invalid; the frontend is in
 * pkt->nat_addr/nat_port) or a drop reason. */
static __always_inline int pw_lb_reverse(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph)
{
	__be32 saddr = iph->saddr, daddr = iph->daddr, fe_addr, client;
	struct pw_ct_key rkey, fkey;
	struct pw_ct_entry *e;
	struct pw_l4 l4;
	__u16 fe_port;
	__u64 now;
	__u8 flags;

	if (iph->protocol == IPPROTO_ICMP)
		return pw_lb_reverse_icmp_error(skb, pkt, iph);
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return 0;
	if (pw_l4_parse(skb, iph, &l4))
		return 0;
	if (!pw_lb_from_backend_port(l4.sport))
		return 0;
	pw_ct_key_make(&rkey, saddr, daddr, l4.sport, l4.dport, l4.proto, PW_CT_REPLY);
	e = bpf_map_lookup_elem(&pw_ct, &rkey);
	if (!e)
		return 0;
	flags = e->flags;
	if (pw_lb_frontend(e, &fe_addr, &fe_port))
		return 0; /* service removed: its flows end here */
	client = (flags & PW_CT_F_HAIRPIN) ? saddr : daddr;
	now = bpf_ktime_get_ns();
	if (pw_ct_account(e, pw_tcp_flags(skb, &l4), l4.proto, PW_CT_REPLY, now)) {
		pw_ct_key_make(&fkey, client, fe_addr, l4.dport, fe_port, l4.proto, PW_CT_FORWARD);
		pw_ct_sync(e, &fkey, now);
	}

	if ((flags & PW_CT_F_HAIRPIN) && pw_rewrite_addr(skb, &l4, PW_IP_DADDR_OFF, daddr, client))
		return PW_DROP_NAT_FAILED;
	if (fe_addr != saddr && pw_rewrite_addr(skb, &l4, PW_IP_SADDR_OFF, saddr, fe_addr))
		return PW_DROP_NAT_FAILED;
	if (fe_port != l4.sport && pw_rewrite_port(skb, &l4, l4.sport_off, bpf_htons(l4.sport), bpf_htons(fe_port)))
		return PW_DROP_NAT_FAILED;
	pkt->nat_addr = fe_addr;
	pkt->nat_port = fe_port;
	pkt->flags |= PW_PKT_F_REPLY;
	return 1;
}

/* Delivery into a local pod for every path that ends there: replies from
 * service backends are reverse-translated first. */
static __always_inline int pw_lb_deliver(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					 struct iphdr *iph, const struct pw_endpoint *target)
{
	struct pw_ct_key rkey;
	int ret;

	/* Most packets for a pod are no service reply: rule that out by the
	 * source port, then by conntrack with the ports the parser already
	 * read, before re-reading the L4 header. */
	if (pw_lb_candidate(pkt)) {
		if (!pw_lb_from_backend_port(pkt->sport))
			return pw_deliver_local(skb, pkt, eth, iph, target);
		pw_ct_key_make(&rkey, iph->saddr, iph->daddr, pkt->sport, pkt->dport, pkt->proto, PW_CT_REPLY);
		if (!bpf_map_lookup_elem(&pw_ct, &rkey))
			return pw_deliver_local(skb, pkt, eth, iph, target);
	}
	ret = pw_lb_reverse(skb, pkt, iph);
	if (ret < 0)
		return ret;
	if (ret > 0 && pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	return pw_deliver_local(skb, pkt, eth, iph, target);
}

#endif
