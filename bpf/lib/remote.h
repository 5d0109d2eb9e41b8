/* SPDX-License-Identifier: Apache-2.0 */
/* A pod's packet for another node's pod: find the owner in pw_peers and send
 * it there the node's way (cfg_routing_mode): native routing or VXLAN. */
#ifndef PW_BPF_REMOTE_H
#define PW_BPF_REMOTE_H

#include "common.h"
#include "config.h"
#include "ipv4.h"
#include "peer.h"
#include "fib.h"
#include "encap.h"
#include "metrics.h"
#include "events.h"

/* Into the overlay: encapsulated here and straight to the uplink when it
 * can be (encap.h), else with a tunnel key out through pw_vxlan's egress,
 * which encapsulates. The inner packet is routed like a native one (TTL);
 * its MACs do not matter, the receiver rewrites them. */
static __always_inline int pw_tunnel_redirect(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					      struct iphdr *iph, __be32 node_ip)
{
	__u32 overlay = cfg_overlay_ifindex;
	int ret;

	if (!overlay)
		return PW_DROP_ENCAP_FAILED;
	pkt->nexthop = node_ip;   /* the tunnel's remote end, whatever the route's next hop */
	pw_ipv4_dec_ttl(iph);
	pw_metrics_count(PW_METRIC_FORWARDED, pkt->dir, skb->len);
	ret = pw_encap_vxlan(skb, pkt, eth, iph, node_ip);
	if (ret != PW_ENCAP_KERNEL)
		return ret;
	if (pw_encap_set_key(skb, node_ip) != 0)
		return PW_DROP_ENCAP_FAILED;
	pw_event_trace(skb, pkt, PW_TRACE_TO_TUNNEL, overlay);
	return bpf_redirect(overlay, 0);
}

/* daddr is in the cluster CIDR but not this node's pod CIDR. A CIDR no peer
 * owns is dropped here: the default route would only leak it to the LAN. */
static __always_inline int pw_to_remote(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					struct iphdr *iph)
{
	const struct pw_peer *peer = pw_peer_lookup(iph->daddr);
	__be32 node_ip;

	if (!peer)
		return PW_DROP_NO_ROUTE;
	node_ip = pw_ip4_load(peer->node_ip);
	if (!pw_ipv4_ttl_ok(iph))
		return PW_DROP_TTL_EXCEEDED;
	if (cfg_routing_mode == PW_MODE_VXLAN)
		return pw_tunnel_redirect(skb, pkt, eth, iph, node_ip);
	return pw_fib_redirect(skb, pkt, eth, iph, node_ip);
}

#endif
