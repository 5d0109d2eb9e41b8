/* SPDX-License-Identifier: Apache-2.0 */
/* The node's uplink. Ingress: local pods get their traffic delivered
 * directly (native routing from peers, and replies to masqueraded flows
 * once translated back); everything else goes to the host stack. Egress:
 * masquerade of pods' traffic leaving the cluster. (NodePort hooks in on
 * ingress, before the endpoint lookup.) */
#ifndef PW_BPF_UPLINK_H
#define PW_BPF_UPLINK_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"
#include "peer.h"
#include "nat.h"
#include "metrics.h"
#include "events.h"

/* A reply to a masqueraded flow, now addressed to the pod: deliver it. The
 * rewrite moved the packet under our pointers, so they are derived again. */
static __always_inline int pw_uplink_deliver_reply(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	const struct pw_endpoint *target = pw_ep_by_ip(pkt->nat_addr);
	struct ethhdr *eth;
	struct iphdr *iph;

	if (!target)
		return PW_DROP_UNKNOWN_EP; /* the pod went away since */
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > (void *)(long)skb->data_end)
		return PW_DROP_MALFORMED;
	return pw_deliver_local(skb, pkt, eth, iph, target);
}

static __always_inline int pw_uplink_ipv4(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth)
{
	const struct pw_endpoint *target;
	struct iphdr *iph;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	/* (later: NodePort on cfg_node_ip, before the endpoint lookup) */
	if (cfg_masquerade && iph->daddr == cfg_node_ip) {
		err = pw_snat_rev_ingress(skb, pkt, iph);
		if (err == 0)
			return pw_uplink_deliver_reply(skb, pkt);
		if (err != PW_NAT_SKIP)
			return err;
		return TC_ACT_OK;
	}
	target = pw_ep_by_ip(iph->daddr);
	if (target)
		return pw_deliver_local(skb, pkt, eth, iph, target);
	return TC_ACT_OK;
}

/* Verdict (TC_ACT_*) or a negative drop reason. */
static __always_inline int pw_uplink_ingress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct ethhdr *eth = pw_eth_hdr(skb);

	if (!eth)
		return TC_ACT_OK; /* not ours to judge: the stack drops runts itself */
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return pw_uplink_ipv4(skb, pkt, eth);
	return TC_ACT_OK;
}

/* Leaving the cluster: from one of our pods, to neither a pod (any node's)
 * nor a node. Only the source address is looked at before the decision, so
 * the node's own traffic pays one compare. */
static __always_inline int pw_needs_masquerade(const struct iphdr *iph)
{
	return pw_in_pod_cidr(iph->saddr) && !pw_in_cluster_cidr(iph->daddr) && !pw_is_node_ip(iph->daddr);
}

/* uplink_egress: PW_METRIC_MASQUERADED and TC_ACT_OK when translated,
 * TC_ACT_OK untouched when not ours, or a drop reason. Nothing else is
 * counted: pod_ingress already counted these packets on their way in. */
static __always_inline int pw_uplink_egress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	int err;

	if (!cfg_masquerade)
		return TC_ACT_OK;
	eth = pw_eth_hdr(skb);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > (void *)(long)skb->data_end || !pw_in_pod_cidr(iph->saddr))
		return TC_ACT_OK;

	/* One of our pods' packets: now it must hold up. */
	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	if (!pw_needs_masquerade(iph))
		return TC_ACT_OK;
	err = pw_snat_egress(skb, pkt, iph);
	if (err)
		return err;
	pw_metrics_count(PW_METRIC_MASQUERADED, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_MASQUERADE, skb->ifindex);
	return TC_ACT_OK;
}

#endif
