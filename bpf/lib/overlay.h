/* SPDX-License-Identifier: Apache-2.0 */
/* The collect-metadata VXLAN device (pw_vxlan). Ingress sees decapsulated
 * inner frames from peers; egress sees frames about to be encapsulated. */
#ifndef PW_BPF_OVERLAY_H
#define PW_BPF_OVERLAY_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"
#include "lb.h"
#include "peer.h"
#include "encap.h"
#include "tunnel.h"
#include "metrics.h"
#include "events.h"

#define PW_PACKET_HOST     0
#define PW_PACKET_OTHERHOST 3

/* The inner destination MAC is whatever the sender put there (its own
 * gateway MAC, its pw_vxlan MAC), rarely ours, so the device marked the
 * frame "for another host", which ip_rcv drops, in the pod as in the host.
 * It did arrive over our tunnel for us: make it ours. */
static __always_inline void pw_overlay_claim(struct __sk_buff *skb)
{
	if (skb->pkt_type == PW_PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PW_PACKET_HOST);
}

/* The kernel decapsulated this frame and left what the outer headers said
 * in the tunnel metadata: the sender and the VNI (a collect-metadata device
 * takes every VNI). No metadata, no known sender. 0 or a drop reason. */
static __always_inline int pw_overlay_sender_check(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct bpf_tunnel_key key = {};

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) != 0)
		return PW_DROP_TUNNEL_FOREIGN_SOURCE;
	/* Until the inner header is parsed, a drop event names the sender. */
	pkt->saddr = bpf_htonl(key.remote_ipv4);
	return pw_tunnel_sender_check(pkt->saddr, key.tunnel_id);
}

static __always_inline int pw_overlay_ingress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	const struct pw_endpoint *target;
	struct ethhdr *eth;
	struct iphdr *iph;
	int err;

	/* Every frame, ARP included: none from elsewhere reaches the host. */
	err = pw_overlay_sender_check(skb, pkt);
	if (err)
		return err;
	eth = pw_eth_hdr(skb);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	pw_overlay_claim(skb);
	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	err = pw_tunnel_inner_check(iph->saddr);
	if (err)
		return err;
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;
	target = pw_ep_by_ip(iph->daddr);
	if (target)
		return pw_lb_deliver(skb, pkt, eth, iph, target);
	return TC_ACT_OK;
}

/* Host-originated traffic the agent's kernel routes sent into pw_vxlan
 * needs the tunnel key the pod path sets itself. A frame that has one (from
 * pod_ingress) was counted there and passes untouched. Verdict TC_ACT_OK
 * (on to the encapsulation) or a drop reason; counts what it forwards. */
static __always_inline int pw_overlay_egress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	const struct pw_peer *peer;
	struct ethhdr *eth = pw_eth_hdr(skb);
	struct iphdr *iph;
	__be32 node_ip;
	int err;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK; /* without a key the device drops it: nothing to do */
	if (pw_encap_get_key(skb, &node_ip))
		return TC_ACT_OK;
	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	peer = pw_peer_lookup(iph->daddr);
	if (!peer)
		return PW_DROP_NO_ROUTE;
	node_ip = pw_ip4_load(peer->node_ip);
	if (pw_encap_set_key(skb, node_ip) != 0)
		return PW_DROP_ENCAP_FAILED;
	pkt->nexthop = node_ip;
	pw_metrics_count(PW_METRIC_FORWARDED, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_TO_TUNNEL, skb->ifindex);
	return TC_ACT_OK;
}

#endif
