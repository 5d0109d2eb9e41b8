/* SPDX-License-Identifier: Apache-2.0 */
/* Traffic leaving a local pod, seen at tc ingress of its host-side veth. */
#ifndef PW_BPF_POD_H
#define PW_BPF_POD_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "arp.h"
#include "endpoint.h"
#include "remote.h"
#include "metrics.h"
#include "events.h"

/* The pod only ever ARPs for its gateway (its routes all go through it);
 * answer with the host-side veth MAC and bounce the reply back. Any other ARP
 * (the pod answering the host, gratuitous ARP) is the host stack's. */
static __always_inline int pw_pod_arp(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
				      const struct pw_endpoint *ep)
{
	struct pw_arp *arp = pw_arp_request_for(skb, eth, cfg_gateway_ip);

	if (!arp)
		return TC_ACT_OK;
	pw_arp_make_reply(eth, arp, ep->host_mac);
	pw_metrics_count(PW_METRIC_ARP_REPLY, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_ARP_REPLY, skb->ifindex);
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int pw_pod_ipv4(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
				       const struct pw_endpoint *ep)
{
	const struct pw_endpoint *target;
	struct iphdr *iph;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	/* Anti-spoofing: a pod speaks only with its own addresses. */
	if (!pw_mac_eq(eth->h_source, ep->mac))
		return PW_DROP_SPOOFED_MAC;
	if (iph->saddr != pw_ip4_load(ep->ip))
		return PW_DROP_SPOOFED_IP;

	target = pw_ep_by_ip(iph->daddr);
	if (target)
		return pw_deliver_local(skb, pkt, eth, iph, target);
	/* Nothing else lives in our pod CIDR: don't let the host stack
	 * bounce it around or ARP for it. The gateway itself is the host's. */
	if (pw_in_pod_cidr(iph->daddr)) {
		if (iph->daddr != cfg_gateway_ip)
			return PW_DROP_UNKNOWN_EP;
		return TC_ACT_OK;
	}
	if (pw_in_cluster_cidr(iph->daddr))
		return pw_to_remote(skb, pkt, eth, iph);
	/* Node IPs and the world: the host stack routes them (and
	 * uplink_egress masquerades what leaves the cluster). */
	return TC_ACT_OK;
}

/* Verdict (TC_ACT_*) or a negative drop reason. */
static __always_inline int pw_pod_egress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	const struct pw_endpoint *ep;
	struct ethhdr *eth;

	ep = pw_ep_by_ifindex(skb->ifindex);
	if (!ep)
		return PW_DROP_UNKNOWN_SOURCE;
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;

	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return pw_pod_ipv4(skb, pkt, eth, ep);
	case bpf_htons(ETH_P_ARP):
		return pw_pod_arp(skb, pkt, eth, ep);
	default:
		return TC_ACT_OK; /* IPv6 and the rest: the host stack's business */
	}
}

#endif
