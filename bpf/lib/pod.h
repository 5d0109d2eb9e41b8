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
#include "peer.h"
#include "fib.h"
#include "lb.h"
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

/* To the gateway address: a pod answering a hairpin flow (it reached
 * itself through a service and was shown the gateway as the client) gets
 * its reply translated and delivered back to itself; the rest is the
 * host's. */
static __always_inline int pw_pod_to_gateway(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph)
{
	const struct pw_endpoint *target;
	struct ethhdr *eth;
	int ret = pw_lb_reverse(skb, pkt, iph);

	if (ret <= 0)
		return ret ? ret : TC_ACT_OK;
	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	target = pw_ep_by_ip(iph->daddr);
	if (!target)
		return PW_DROP_UNKNOWN_EP;
	return pw_deliver_local(skb, pkt, eth, iph, target);
}

/* To outside the cluster: a backend's reply to a NodePort client leaves
 * from the node IP and node port, routed by the FIB straight out (the host
 * stack would take a packet from its own address for a spoof). The rest is
 * the host stack's (and uplink_egress masquerades it). */
static __always_inline int pw_pod_to_outside(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph)
{
	struct ethhdr *eth;
	int ret = pw_lb_reverse(skb, pkt, iph);

	if (ret <= 0)
		return ret ? ret : TC_ACT_OK;
	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	if (!pw_ipv4_ttl_ok(iph))
		return PW_DROP_TTL_EXCEEDED;
	return pw_fib_redirect(skb, pkt, eth, iph, iph->daddr);
}

/* A pod's UDP to a node's VXLAN port (VXLAN mode): the nodes' tunnel
 * carries only what a node's datapath checked, and a pod that could write
 * into it could send into any pod with any source. Peers drop what does not
 * come from a node; this also covers the pod whose packet some host rule
 * would SNAT to a node IP. A first fragment counts: it has the ports, and
 * the rest cannot be reassembled without it. */
static __always_inline int pw_pod_to_tunnel_port(struct __sk_buff *skb, struct iphdr *iph)
{
	void *data_end = pw_skb_data_end(skb);
	__be16 *ports;

	if (cfg_routing_mode != PW_MODE_VXLAN || iph->protocol != IPPROTO_UDP ||
	    (iph->frag_off & bpf_htons(PW_IP_OFFSET)))
		return 0;
	ports = (void *)iph + iph->ihl * 4;
	if ((void *)(ports + 2) > data_end)
		return 0;
	return ports[1] == bpf_htons(PW_VXLAN_PORT) && pw_is_node_ip(iph->daddr);
}

static __always_inline int pw_pod_ipv4(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
				       const struct pw_endpoint *ep)
{
	const struct pw_endpoint *target;
	const struct pw_svc *svc = NULL;
	struct iphdr *iph;
	__u8 ct_flags = 0;
	int translated = 0;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	/* Anti-spoofing: a pod speaks only with its own addresses. */
	if (!pw_mac_eq(eth->h_source, ep->mac))
		return PW_DROP_SPOOFED_MAC;
	if (iph->saddr != pw_ip4_load(ep->ip))
		return PW_DROP_SPOOFED_IP;

	/* A service (its ClusterIP, or a node port on one of this node's
	 * NodePort addresses, or a pod's hostPort on this node's IP): DNAT to
	 * a backend, then on as if the pod had sent it there. */
	if (pw_lb_candidate(pkt)) {
		__u8 scope = PW_SVC_CLUSTERIP;

		if (pw_in_service_cidr(iph->daddr))
			svc = pw_svc_lookup(iph->daddr, pkt->dport, pkt->proto, PW_SVC_CLUSTERIP);
		if (!svc) {
			scope = PW_SVC_NODEPORT;
			svc = pw_nodeport_lookup(iph->daddr, pkt->dport, pkt->proto);
			if (!svc && iph->daddr == cfg_node_ip)
				svc = pw_hostport_lookup(iph->daddr, pkt->dport, pkt->proto, &scope);
		}
		if (svc) {
			err = pw_lb_forward(skb, pkt, iph, svc, scope, 0, &ct_flags);
			if (err != PW_LB_TRANSLATED)
				return err;
			if (pw_ipv4_reload(skb, &eth, &iph))
				return PW_DROP_MALFORMED;
			translated = 1;
		}
	}

	/* After the DNAT: a service's backend may be a node's VXLAN port too. */
	if (pw_pod_to_tunnel_port(skb, iph))
		return PW_DROP_POD_TO_TUNNEL;
	/* After the DNAT too: the policy sees the backend, not the ClusterIP. */
	err = pw_policy_check(skb, pkt, iph, PW_DIR_EGRESS);
	if (err)
		return err;

	target = pw_ep_by_ip(iph->daddr);
	if (target) {
		/* A translated packet goes to a backend: never a reply. */
		if (translated)
			return pw_deliver_local(skb, pkt, eth, iph, target);
		return pw_lb_deliver(skb, pkt, eth, iph, target);
	}
	/* Nothing else lives in our pod CIDR: don't let the host stack
	 * bounce it around or ARP for it. The gateway itself is the host's. */
	if (pw_in_pod_cidr(iph->daddr)) {
		if (iph->daddr != cfg_gateway_ip)
			return PW_DROP_UNKNOWN_EP;
		return translated ? TC_ACT_OK : pw_pod_to_gateway(skb, pkt, iph);
	}
	if (pw_in_cluster_cidr(iph->daddr)) {
		/* A backend's reply to a NodePort client that is another
		 * node's pod leaves from the node port here. */
		if (!translated) {
			err = pw_lb_reverse(skb, pkt, iph);
			if (err < 0)
				return err;
			if (err > 0 && pw_ipv4_reload(skb, &eth, &iph))
				return PW_DROP_MALFORMED;
		}
		return pw_to_remote(skb, pkt, eth, iph);
	}
	/* Node IPs and the world: the host stack routes them (and
	 * uplink_egress masquerades what leaves the cluster). */
	if (translated)
		return TC_ACT_OK;
	return pw_pod_to_outside(skb, pkt, iph);
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
