/* SPDX-License-Identifier: Apache-2.0 */
/* VXLAN receive in BPF: a peer's tunnel packet for one of our pods is
 * decapsulated on the uplink's tc ingress and delivered straight into the
 * pod, as native routing delivers it. The kernel way costs the UDP socket
 * lookup, vxlan_rcv, a second softirq pass through pw_vxlan's gro_cells and
 * a second program (overlay_ingress); on small request/response traffic
 * that was most of the gap to native routing.
 *
 * Only the plain case is taken: our VNI, flags exactly "VNI valid", an
 * inner IPv4 packet for a local endpoint, outer headers without options,
 * fragments, trailers or a CE mark, all in the linear part. Anything
 * else is left to pw_vxlan unchanged, so the kernel keeps doing what it
 * did: ECN propagation, traffic for the host itself.
 *
 * GSO tunnel packets (a whole TCP send of up to 64 KiB, encapsulated once:
 * a peer's pw_vxlan over veth, or a NIC's GRO of tunnel packets) are the
 * bulk of any transfer and are taken too: the kernel path costs each one an
 * IP receive, a UDP socket lookup, vxlan_rcv, a second NAPI pass and a
 * second program. bpf_skb_adjust_room only shrinks TCP GSO packets (it
 * refuses UDP GSO untouched, which then goes to pw_vxlan); it leaves the
 * UDP-tunnel bit in gso_type, which only the UDP segmentation code reads,
 * never the TCP one the inner packet now meets.
 *
 * Every packet to the VXLAN port is first checked for its sender
 * (pw_vxlan_outer_check, tunnel.h): only a peer node, with our VNI. The
 * inner packet's source was checked (anti-spoofing) on that node; from
 * anyone else it would be whatever they wrote. */
#ifndef PW_BPF_DECAP_H
#define PW_BPF_DECAP_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"
#include "lb.h"
#include "tunnel.h"

#define PW_VXLAN_FLAG_I 0x08000000 /* RFC 7348: the VNI field is valid */
#define PW_IP_ECN_MASK  0x03
#define PW_IP_ECN_CE    0x03

struct pw_udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
};

struct pw_vxlanhdr {
	__be32 flags;
	__be32 vni; /* VNI in the upper 24 bits */
};

/* Everything the tunnel put in front of the inner IPv4 header, removed in
 * one bpf_skb_adjust_room call behind the outer Ethernet header, which
 * stays (with EtherType IPv4, as the inner frame's) and is rewritten for the
 * pod on delivery. */
#define PW_DECAP_LEN (sizeof(struct iphdr) + sizeof(struct pw_udphdr) + sizeof(struct pw_vxlanhdr) + \
		      sizeof(struct ethhdr))

/* iph: the outer header of an unfragmented UDP packet to the node's VXLAN
 * port, parsed (pw_ipv4_parse). 0 when its sender may tunnel to us, else
 * the drop reason. The VNI is read here when the header is in the linear
 * data; when it is not, the kernel takes the packet and overlay_ingress
 * checks the VNI in the tunnel metadata. */
static __always_inline int pw_vxlan_outer_check(struct __sk_buff *skb, struct iphdr *iph)
{
	void *data_end = pw_skb_data_end(skb);
	struct pw_vxlanhdr *vxh = (void *)iph + iph->ihl * 4 + sizeof(struct pw_udphdr);

	if ((void *)(vxh + 1) > data_end)
		return pw_is_peer_node(iph->saddr) ? 0 : PW_DROP_TUNNEL_FOREIGN_SOURCE;
	return pw_tunnel_sender_check(iph->saddr, bpf_ntohl(vxh->vni) >> 8);
}

/* iph: the outer header, parsed (pw_ipv4_parse) and addressed to the node,
 * UDP to PW_VXLAN_PORT. The local endpoint the inner packet is for when
 * this is a tunnel packet pw_vxlan_decap takes, else NULL (the packet goes
 * on as before). No helper calls: the caller's packet pointers stay valid
 * whatever the answer. */
static __always_inline const struct pw_endpoint *pw_vxlan_local_target(struct __sk_buff *skb, struct iphdr *iph)
{
	void *data_end = pw_skb_data_end(skb);
	struct pw_vxlanhdr *vxh;
	struct ethhdr *eth;
	struct iphdr *inner;

	if (iph->ihl != 5 || pw_ip4_is_fragment(iph) ||
	    bpf_ntohs(iph->tot_len) != skb->len - sizeof(struct ethhdr))
		return NULL;
	/* CE on the outer header must reach the inner one (RFC 6040): the
	 * kernel's INET_ECN_decapsulate does that, rarely needed. */
	if ((iph->tos & PW_IP_ECN_MASK) == PW_IP_ECN_CE)
		return NULL;
	vxh = (void *)(iph + 1) + sizeof(struct pw_udphdr);
	eth = (void *)(vxh + 1);
	inner = (void *)(eth + 1);
	if ((void *)(inner + 1) > data_end)
		return NULL; /* headers not linear: rare, the kernel pulls them */
	if (vxh->flags != bpf_htonl(PW_VXLAN_FLAG_I) || vxh->vni != bpf_htonl(PW_VXLAN_VNI << 8))
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	/* Not a local pod (the host's, or gone): overlay_ingress decides. */
	return pw_ep_by_ip(inner->daddr);
}

/* Strip the tunnel and deliver the inner packet to target (found by
 * pw_vxlan_local_target) like native routing does. Verdict or drop reason. */
static __always_inline int pw_vxlan_decap(struct __sk_buff *skb, struct pw_pkt *pkt,
					  const struct pw_endpoint *target)
{
	struct ethhdr *eth;
	struct iphdr *inner;
	int err;

	/* Outer and inner are both IPv4, so skb->protocol stays right without
	 * BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (which 6.1 lacks). FIXED_GSO: a GSO
	 * packet keeps the MSS its sender cut it for (the pod MTU already
	 * left room for the tunnel); growing it by the 50 bytes removed would
	 * make segments too big for the pod's link if it ever forwarded them.
	 * Checksum state is reset (no NO_CSUM_RESET): a NIC's "verified"
	 * may have meant the outer UDP checksum only. The helper fails before
	 * touching the packet (UDP GSO among others): on to pw_vxlan with it. */
	if (bpf_skb_adjust_room(skb, -(__s32)PW_DECAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_OK;

	/* From here on pkt describes the inner packet (events, conntrack). */
	pkt->sport = 0;
	pkt->dport = 0;
	inner = pw_ipv4_parse(skb, pkt, &err);
	if (!inner)
		return err;
	err = pw_tunnel_inner_check(inner->saddr);
	if (err)
		return err;
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;
	return pw_lb_deliver(skb, pkt, eth, inner, target);
}

#endif
