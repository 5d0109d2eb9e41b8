// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The benchmark's "tc-bare" reference: the least any tc datapath on veth must
 * do to move a packet between two pods (rewrite the MACs, bpf_redirect_peer),
 * with no lookups at all. The bench compiles it with the two pods' ifindexes
 * and MACs as constants, so the figure is the ceiling of the veth + tc
 * mechanism itself, beside which podwire's own cost can be read. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* A_IF, B_IF: host-side ifindexes; A_MAC, B_MAC: the pods' MACs; HA_MAC,
 * HB_MAC: the host-side MACs (each pod's gateway). */
static const unsigned char a_mac[ETH_ALEN] = { A_MAC }, b_mac[ETH_ALEN] = { B_MAC };
static const unsigned char ha_mac[ETH_ALEN] = { HA_MAC }, hb_mac[ETH_ALEN] = { HB_MAC };

SEC("tc")
int bare_redirect(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int to_b = skb->ifindex == A_IF;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, to_b ? b_mac : a_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, to_b ? hb_mac : ha_mac, ETH_ALEN);
	return bpf_redirect_peer(to_b ? B_IF : A_IF, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
