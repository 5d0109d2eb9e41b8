/* SPDX-License-Identifier: Apache-2.0 */
/* Native routing: a pod's packet to a peer node's pod leaves through the
 * uplink unchanged (source and destination stay pod IPs), addressed at L2 to
 * the next hop towards the peer's node IP, the way
 * `ip route add <peer pod CIDR> via <peer node IP>` would send it, but
 * without the host stack. */
#ifndef PW_BPF_FIB_H
#define PW_BPF_FIB_H

#include "common.h"
#include "eth.h"
#include "ipv4.h"
#include "metrics.h"
#include "events.h"

#define PW_AF_INET 2

/* Route towards node_ip with bpf_fib_lookup: the kernel's own FIB (rules
 * and tables) picks the egress device and the next hop (the node itself on a
 * flat LAN, else the gateway towards it). The lookup is done as if the packet
 * had arrived on skb->ifindex (the pod's host-side veth), so forwarding must
 * be enabled there (net.ipv4.ip_forward=1), as for any router. tot_len stays
 * 0 so the kernel checks the MTU against the skb itself, which is GSO-aware.
 *
 * Neighbour known: MACs rewritten here and bpf_redirect to the device.
 * Neighbour unknown (yet): bpf_redirect_neigh resolves it, exactly as the
 * stack would, and fills the MACs. Too big for the device: the host stack
 * (which has the agent's route for the peer pod CIDR) fragments or sends
 * ICMP "fragmentation needed". Any other failure is a drop. */
static __always_inline int pw_fib_redirect(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth,
					   struct iphdr *iph, __be32 node_ip)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	long rc;

	fib.family = PW_AF_INET;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = node_ip;
	fib.l4_protocol = iph->protocol;   /* multipath hashing, when configured */
	fib.sport = bpf_htons(pkt->sport);
	fib.dport = bpf_htons(pkt->dport);

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return TC_ACT_OK;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return PW_DROP_FIB_FAILED;

	/* fib.ipv4_dst now holds the next hop, fib.ifindex the egress device. */
	pkt->nexthop = fib.ipv4_dst;
	pw_ipv4_dec_ttl(iph);
	pw_metrics_count(PW_METRIC_FORWARDED, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_TO_PEER, fib.ifindex);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		pw_eth_rewrite(eth, fib.smac, fib.dmac);
		return bpf_redirect(fib.ifindex, 0);
	}
	nh.nh_family = PW_AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

#endif
