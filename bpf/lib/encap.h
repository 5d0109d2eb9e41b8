/* SPDX-License-Identifier: Apache-2.0 */
/* VXLAN send. A pod's packet for another node is encapsulated here, in
 * BPF, and redirected to the uplink (pw_encap_vxlan): the kernel way --
 * redirect into pw_vxlan, vxlan_xmit, a route lookup, iptunnel_xmit and a
 * second pass through the IP output path -- held request/response over
 * VXLAN at 0.88-0.91x native routing, 0.93-0.97x without it
 * (docs/benchmarks.md). What the plain case does not cover still goes the
 * kernel way: the agent's collect-metadata device (pw_vxlan, "external")
 * builds the outer headers from the tunnel key attached to the skb
 * (pw_encap_set_key). */
#ifndef PW_BPF_ENCAP_H
#define PW_BPF_ENCAP_H

#include "common.h"
#include "config.h"
#include "csum.h"
#include "decap.h"
#include "eth.h"
#include "events.h"
#include "fib.h"

#define PW_TUNNEL_TTL 64
#define PW_IP_DF 0x4000
/* udp_flow_src_port's default range (ip_local_port_range): peers' RSS and
 * ECMP spread flows by the outer source port. */
#define PW_ENCAP_SPORT_MIN 32768
#define PW_ENCAP_SPORT_SPAN 28232
/* pw_encap_vxlan's answer when the packet is not the plain case: it is
 * untouched and goes through pw_vxlan. */
#define PW_ENCAP_KERNEL 1

/* What pw_encap_vxlan inserts behind the outer Ethernet header (the
 * frame's own, re-addressed), in front of the inner IPv4 header. */
struct pw_vxlan_encap {
	struct iphdr ip;
	struct pw_udphdr udp;
	struct pw_vxlanhdr vxlan;
	struct ethhdr inner_eth;
};

#define PW_ENCAP_LEN (sizeof(struct iphdr) + sizeof(struct pw_udphdr) + sizeof(struct pw_vxlanhdr) + \
		      sizeof(struct ethhdr))
_Static_assert(__builtin_offsetof(struct pw_vxlan_encap, inner_eth) + sizeof(struct ethhdr) == PW_ENCAP_LEN,
	       "pw_vxlan_encap: the headers back to back");

/* Attach the tunnel key: outer destination node_ip, VNI PW_VXLAN_VNI,
 * outer source our node IP, whatever address the route towards node_ip
 * would prefer: peers accept tunnel packets only from node IPs (tunnel.h).
 * 0 or a negative errno from the helper. */
static __always_inline long pw_encap_set_key(struct __sk_buff *skb, __be32 node_ip)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = bpf_ntohl(node_ip); /* the helper wants host order */
	key.local_ipv4 = bpf_ntohl(cfg_node_ip);
	key.tunnel_id = PW_VXLAN_VNI;
	key.tunnel_ttl = PW_TUNNEL_TTL;
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0);
}

/* The tunnel key already attached to the skb (by pod_ingress before it
 * redirected here), if any: 1 and its remote in *node_ip, else 0. */
static __always_inline int pw_encap_get_key(struct __sk_buff *skb, __be32 *node_ip)
{
	struct bpf_tunnel_key key = {};

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) != 0)
		return 0;
	*node_ip = bpf_htonl(key.remote_ipv4);
	return 1;
}

/* The size of the largest outer packet this skb becomes on the wire: a GSO
 * packet's segments (TCP only: UDP GSO is left to the kernel), else the
 * packet. 0 when it is not the plain case. */
static __always_inline __u32 pw_encap_wire_len(struct __sk_buff *skb, const struct iphdr *iph)
{
	__u32 inner = skb->len - sizeof(struct ethhdr);
	__u8 doff;

	if (skb->gso_segs > 1 || skb->gso_size) {
		if (iph->protocol != IPPROTO_TCP ||
		    bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + iph->ihl * 4 + 12, &doff, 1))
			return 0;
		/* The outer IP length is 16 bits even for the whole GSO packet:
		 * the receiver trims the skb to it. */
		if (inner + PW_ENCAP_LEN > 0xffff)
			return 0;
		inner = skb->gso_size + iph->ihl * 4 + (doff >> 4) * 4;
	}
	return inner + PW_ENCAP_LEN;
}

/* Encapsulate the (TTL-decremented) inner packet for node_ip and redirect
 * it to the uplink. The route to node_ip decides the device, the next hop
 * and the MTU: a packet it cannot carry whole, UDP GSO, or a route the
 * helper cannot answer, is left untouched (PW_ENCAP_KERNEL) for pw_vxlan,
 * which fragments or answers ICMP like the kernel does. Else a verdict or
 * a drop reason. The MTU is bpf_fib_lookup's, a forwarding router's: the
 * device's, a path MTU learned from ICMP, a route's "mtu lock" (a route's
 * unlocked mtu only with net.ipv4.ip_forward_use_pmtu).
 *
 * The outer header: our node IP (peers accept tunnel packets only from
 * node IPs, tunnel.h), DF (the path MTU is the route's, checked here), ID
 * 0 (RFC 6864: DF datagrams are atomic), the inner TOS (RFC 6040: ECN
 * copied), UDP checksum 0 (allowed over IPv4, RFC 7348; the inner packet
 * keeps its own). bpf_skb_adjust_room's ENCAP flags mark the skb as a UDP
 * tunnel with an inner Ethernet header, so GSO segments the inner TCP
 * stream and fixes the outer lengths and IDs per segment; FIXED_GSO keeps
 * the pod's MSS (its MTU left room for the tunnel, and the route check
 * above counted the segments whole), where the helper's default would cut
 * every segment 50 bytes short. */
static __always_inline int pw_encap_vxlan(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					  struct iphdr *iph, __be32 node_ip)
{
	const __u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
			    BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr)) |
			    BPF_F_ADJ_ROOM_FIXED_GSO;
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct pw_vxlan_encap h = {};
	__u32 wire = pw_encap_wire_len(skb, iph);
	__u32 hash;
	long rc;

	if (!wire)
		return PW_ENCAP_KERNEL;
	fib.family = PW_AF_INET;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = cfg_node_ip;
	fib.ipv4_dst = node_ip;
	fib.l4_protocol = IPPROTO_UDP;
	fib.dport = bpf_htons(PW_VXLAN_PORT);
	fib.tot_len = wire;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return PW_ENCAP_KERNEL;

	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tos = iph->tos;
	h.ip.tot_len = bpf_htons(skb->len - sizeof(struct ethhdr) + PW_ENCAP_LEN);
	h.ip.frag_off = bpf_htons(PW_IP_DF);
	h.ip.ttl = PW_TUNNEL_TTL;
	h.ip.protocol = IPPROTO_UDP;
	h.ip.saddr = cfg_node_ip;
	h.ip.daddr = node_ip;
	h.ip.check = pw_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	hash = bpf_get_hash_recalc(skb);
	h.udp.source = bpf_htons(PW_ENCAP_SPORT_MIN + (__u16)(((__u64)hash * PW_ENCAP_SPORT_SPAN) >> 32));
	h.udp.dest = bpf_htons(PW_VXLAN_PORT);
	h.udp.len = bpf_htons(skb->len - sizeof(struct ethhdr) + PW_ENCAP_LEN - sizeof(struct iphdr));
	h.vxlan.flags = bpf_htonl(PW_VXLAN_FLAG_I);
	h.vxlan.vni = bpf_htonl(PW_VXLAN_VNI << 8);
	/* The inner frame keeps the pod's MACs: the receiver rewrites them
	 * (decap.h) or claims the frame (overlay.h). */
	__builtin_memcpy(&h.inner_eth, eth, sizeof(*eth));

	if (bpf_skb_adjust_room(skb, PW_ENCAP_LEN, BPF_ADJ_ROOM_MAC, flags))
		return PW_ENCAP_KERNEL;   /* refused before touching the packet */
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, PW_ENCAP_LEN, 0))
		return PW_DROP_ENCAP_FAILED;

	pw_event_trace(skb, pkt, PW_TRACE_TO_TUNNEL, fib.ifindex);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		eth = pw_eth_hdr(skb);
		if (!eth)
			return PW_DROP_ENCAP_FAILED;
		pw_eth_rewrite(eth, fib.smac, fib.dmac);
		return bpf_redirect(fib.ifindex, 0);
	}
	nh.nh_family = PW_AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

#endif
