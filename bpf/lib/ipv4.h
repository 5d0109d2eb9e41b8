/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 header validation and the forwarding rewrite (TTL). */
#ifndef PW_BPF_IPV4_H
#define PW_BPF_IPV4_H

#include "common.h"

#define PW_IP_MF     0x2000
#define PW_IP_OFFSET 0x1fff

static __always_inline __be32 pw_ip4_load(const __u8 *a)
{
	return *(const __be32 *)a;
}

static __always_inline int pw_ip4_is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(PW_IP_MF | PW_IP_OFFSET)) != 0;
}

/* The IPv4 header behind an Ethernet header, checked the way ip_rcv checks
 * it (version, ihl >= 5, header and total length inside the frame), so later
 * code can trust tot_len and ihl. Fills pkt's addresses, protocol and, for an
 * unfragmented TCP/UDP packet, ports. NULL and PW_DROP_MALFORMED in *err
 * when the header does not hold up. */
static __always_inline struct iphdr *pw_ipv4_parse(struct __sk_buff *skb, struct pw_pkt *pkt, int *err)
{
	void *data = pw_skb_data(skb);
	void *data_end = pw_skb_data_end(skb);
	struct iphdr *iph = data + sizeof(struct ethhdr);
	__u32 hlen, tot_len;

	*err = PW_DROP_MALFORMED;
	if ((void *)(iph + 1) > data_end)
		return NULL;
	if (iph->version != 4 || iph->ihl < 5)
		return NULL;
	hlen = iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	/* skb->len, not data_end: a non-linear skb still holds all of tot_len */
	if (tot_len < hlen || tot_len > skb->len - sizeof(struct ethhdr))
		return NULL;
	if ((void *)iph + hlen > data_end)
		return NULL;

	pkt->proto = iph->protocol;
	pkt->saddr = iph->saddr;
	pkt->daddr = iph->daddr;

	/* Ports are only for events and, later, service lookup: best effort. */
	if ((iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP) &&
	    !pw_ip4_is_fragment(iph)) {
		__be16 *ports = (void *)iph + hlen;

		if ((void *)(ports + 2) <= data_end) {
			pkt->sport = bpf_ntohs(ports[0]);
			pkt->dport = bpf_ntohs(ports[1]);
		}
	}
	*err = 0;
	return iph;
}

/* TTL <= 1 cannot be forwarded: one more hop would make it zero. */
static __always_inline int pw_ipv4_ttl_ok(const struct iphdr *iph)
{
	return iph->ttl > 1;
}

/* Decrement TTL and patch the checksum incrementally (RFC 1624), the same
 * arithmetic as the kernel's ip_decrease_ttl: TTL is the high byte of its
 * 16-bit word, so the word drops by 0x0100 and the one's-complement sum
 * rises by as much. */
static __always_inline void pw_ipv4_dec_ttl(struct iphdr *iph)
{
	__u32 check = (__u32)iph->check;

	check += (__u32)bpf_htons(0x0100);
	iph->check = (__sum16)(check + (check >= 0xFFFF));
	iph->ttl--;
}

/* The Ethernet and IPv4 headers again, after a helper (a NAT rewrite) moved
 * the packet under the old pointers. pw_ipv4_parse validated the header
 * before and rewrites never change its length. 0 or PW_DROP_MALFORMED. */
static __always_inline int pw_ipv4_reload(struct __sk_buff *skb, struct ethhdr **eth, struct iphdr **iph)
{
	void *data = pw_skb_data(skb);
	void *data_end = pw_skb_data_end(skb);

	*eth = data;
	*iph = data + sizeof(struct ethhdr);
	if ((void *)(*iph + 1) > data_end)
		return PW_DROP_MALFORMED;
	return 0;
}

#endif
