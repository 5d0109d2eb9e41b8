/* SPDX-License-Identifier: Apache-2.0 */
/* ARP for the gateway, answered in BPF: the gateway address exists on no
 * device, so the host stack could not answer for it. */
#ifndef PW_BPF_ARP_H
#define PW_BPF_ARP_H

#include "common.h"
#include "eth.h"

#define PW_ARPHRD_ETHER  1
#define PW_ARPOP_REQUEST 1
#define PW_ARPOP_REPLY   2

/* An Ethernet/IPv4 ARP packet (RFC 826), not in the uapi headers. */
struct pw_arp {
	__be16 hrd;
	__be16 pro;
	__u8   hln;
	__u8   pln;
	__be16 op;
	__u8   sha[PW_ETH_ALEN];
	__u8   spa[4];
	__u8   tha[PW_ETH_ALEN];
	__u8   tpa[4];
} __attribute__((packed));

/* The ARP packet behind eth if it is a complete Ethernet/IPv4 request for
 * target, else NULL. */
static __always_inline struct pw_arp *pw_arp_request_for(struct __sk_buff *skb, struct ethhdr *eth,
							 __be32 target)
{
	void *data_end = pw_skb_data_end(skb);
	struct pw_arp *arp = (void *)(eth + 1);

	if ((void *)(arp + 1) > data_end)
		return NULL;
	if (arp->hrd != bpf_htons(PW_ARPHRD_ETHER) || arp->pro != bpf_htons(ETH_P_IP) ||
	    arp->hln != PW_ETH_ALEN || arp->pln != 4 || arp->op != bpf_htons(PW_ARPOP_REQUEST))
		return NULL;
	if (!target || *(__be32 *)arp->tpa != target)
		return NULL;
	return arp;
}

/* Turn the request into its reply in place: "target is at mac", addressed to
 * the asker. The caller sends it back out the way it came. */
static __always_inline void pw_arp_make_reply(struct ethhdr *eth, struct pw_arp *arp, const __u8 *mac)
{
	__be32 asker_ip = *(__be32 *)arp->spa;
	__be32 target_ip = *(__be32 *)arp->tpa;

	arp->op = bpf_htons(PW_ARPOP_REPLY);
	pw_mac_copy(arp->tha, arp->sha);
	*(__be32 *)arp->tpa = asker_ip;
	pw_mac_copy(arp->sha, mac);
	*(__be32 *)arp->spa = target_ip;

	pw_mac_copy(eth->h_dest, arp->tha);
	pw_mac_copy(eth->h_source, mac);
}

#endif
