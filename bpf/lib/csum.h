/* SPDX-License-Identifier: Apache-2.0 */
/* Rewriting addresses and ports with their checksums fixed incrementally,
 * the way the kernel's own NAT does it (csum_replace4 on the IPv4 header,
 * inet_proto_csum_replace* on L4), so CHECKSUM_PARTIAL (offloaded) and
 * CHECKSUM_COMPLETE skbs stay right too. Each helper call invalidates packet
 * pointers: callers re-derive them afterwards. */
#ifndef PW_BPF_CSUM_H
#define PW_BPF_CSUM_H

#include "common.h"
#include "l4.h"

#define PW_IP_CSUM_OFF  (sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, check))
#define PW_IP_SADDR_OFF (sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, saddr))
#define PW_IP_DADDR_OFF (sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, daddr))

/* A bpf_csum_diff sum folded into a header's checksum field. */
static __always_inline __u16 pw_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The IPv4 address at addr_off (PW_IP_SADDR_OFF / PW_IP_DADDR_OFF) becomes
 * to; for TCP/UDP the L4 checksum covers it through the pseudo header (a UDP
 * checksum of 0, "none", stays 0). 0 or a negative errno. */
static __always_inline long pw_rewrite_addr(struct __sk_buff *skb, const struct pw_l4 *l4, __u32 addr_off,
					    __be32 from, __be32 to)
{
	long err;

	if (l4->pseudo) {
		err = bpf_l4_csum_replace(skb, l4->csum_off, from, to,
					  BPF_F_PSEUDO_HDR | sizeof(to) | l4->csum_flags);
		if (err)
			return err;
	}
	err = bpf_l3_csum_replace(skb, PW_IP_CSUM_OFF, from, to, sizeof(to));
	if (err)
		return err;
	return bpf_skb_store_bytes(skb, addr_off, &to, sizeof(to), 0);
}

/* The 16-bit port (or ICMP echo id) at port_off becomes to (network order). */
static __always_inline long pw_rewrite_port(struct __sk_buff *skb, const struct pw_l4 *l4, __u32 port_off,
					    __be16 from, __be16 to)
{
	long err;

	err = bpf_l4_csum_replace(skb, l4->csum_off, from, to, sizeof(to) | l4->csum_flags);
	if (err)
		return err;
	return bpf_skb_store_bytes(skb, port_off, &to, sizeof(to), 0);
}

#endif
