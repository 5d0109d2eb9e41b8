/* SPDX-License-Identifier: Apache-2.0 */
/* Endpoint (local pod) lookups and delivery into a local pod, shared by
 * every path that ends at a pod on this node. */
#ifndef PW_BPF_ENDPOINT_H
#define PW_BPF_ENDPOINT_H

#include "common.h"
#include "config.h"
#include "maps.h"
#include "eth.h"
#include "ipv4.h"
#include "metrics.h"
#include "events.h"
#include "policy.h"

static __always_inline const struct pw_endpoint *pw_ep_by_ifindex(__u32 ifindex)
{
	return bpf_map_lookup_elem(&pw_ep_ifindex, &ifindex);
}

static __always_inline const struct pw_endpoint *pw_ep_by_ip(__be32 addr)
{
	struct pw_ip4 key;

	__builtin_memcpy(key.addr, &addr, 4);
	return bpf_map_lookup_elem(&pw_endpoints, &key);
}

/* Route the packet into the target pod as one hop: TTL, MACs as if it left
 * the gateway (source = the target's host-side veth, which is the gateway
 * MAC the pod knows), then straight into the pod's netns with
 * bpf_redirect_peer, skipping a second pass through the host-side veth.
 * At the netkit hook (a netkit pod's own transmit) bpf_redirect_peer is
 * refused (it needs tc ingress): the packet goes out of the target's
 * primary device instead, whose transmit hands it to the pod (netkit L3
 * frames carry an Ethernet header with zero MACs, which the rewrite keeps
 * as the target's zero MACs). From tc ingress (uplink, overlay)
 * bpf_redirect_peer into a netkit primary works as into a veth.
 * The pod's ingress policy is checked first. Returns the verdict or a drop
 * reason. */
static __always_inline int pw_deliver_local(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					    struct iphdr *iph, const struct pw_endpoint *target)
{
	__u32 target_ifindex = target->ifindex;
	int err;

	/* Every path into a pod ends here, after any service translation:
	 * the backend pod's ingress policy decides. */
	err = pw_policy_check(skb, pkt, iph, PW_DIR_INGRESS);
	if (err)
		return err;
	if (!pw_ipv4_ttl_ok(iph))
		return PW_DROP_TTL_EXCEEDED;
	pw_ipv4_dec_ttl(iph);
	pw_eth_rewrite(eth, target->host_mac, target->mac);

	pw_metrics_count(PW_METRIC_FORWARDED, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_TO_POD, target_ifindex);
	if (cfg_netkit_hook)
		return bpf_redirect(target_ifindex, 0);
	return bpf_redirect_peer(target_ifindex, 0);
}

#endif
