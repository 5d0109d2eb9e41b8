/* SPDX-License-Identifier: Apache-2.0 */
/* Traffic arriving on the node's uplink, at tc ingress. Today: local pods get
 * it delivered directly, everything else goes to the host stack. Native
 * routing, VXLAN decap and NodePort hook in where marked. */
#ifndef PW_BPF_UPLINK_H
#define PW_BPF_UPLINK_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"

static __always_inline int pw_uplink_ipv4(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth)
{
	const struct pw_endpoint *target;
	struct iphdr *iph;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	/* (later: NodePort on cfg_node_ip, before the endpoint lookup) */
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

#endif
