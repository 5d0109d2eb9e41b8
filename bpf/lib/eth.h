/* SPDX-License-Identifier: Apache-2.0 */
/* Ethernet header access. */
#ifndef PW_BPF_ETH_H
#define PW_BPF_ETH_H

#include "common.h"

/* The Ethernet header, or NULL when the frame is shorter than one. */
static __always_inline struct ethhdr *pw_eth_hdr(struct __sk_buff *skb)
{
	void *data = pw_skb_data(skb);
	void *data_end = pw_skb_data_end(skb);
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return NULL;
	return eth;
}

static __always_inline int pw_mac_eq(const __u8 *a, const __u8 *b)
{
	/* 4 + 2 byte compares: the verifier-friendly form of memcmp(a, b, 6) */
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

static __always_inline void pw_mac_copy(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, PW_ETH_ALEN);
}

/* Rewrite both MACs as a router would: we are the hop the frame leaves from. */
static __always_inline void pw_eth_rewrite(struct ethhdr *eth, const __u8 *src, const __u8 *dst)
{
	pw_mac_copy(eth->h_source, src);
	pw_mac_copy(eth->h_dest, dst);
}

#endif
