/* SPDX-License-Identifier: Apache-2.0 */
/* Where a packet's L4 ports and checksum are, for the rewrites of NAT. The
 * ICMP echo identifier plays the querier's port: source port of a request,
 * destination port of a reply; the other port is 0. */
#ifndef PW_BPF_L4_H
#define PW_BPF_L4_H

#include "common.h"
#include "ipv4.h"

#define PW_ICMP_ECHOREPLY 0
#define PW_ICMP_ECHO      8

#define PW_TCP_CSUM_OFF  16
#define PW_UDP_CSUM_OFF  6
#define PW_ICMP_CSUM_OFF 2
#define PW_ICMP_ID_OFF   4

/* Offsets are from skb->data (the Ethernet header). */
struct pw_l4 {
	__u32 off;          /* L4 header */
	__u32 csum_off;     /* L4 checksum field */
	__u32 sport_off;    /* field holding sport (ICMP request: the id) */
	__u32 dport_off;    /* field holding dport (ICMP reply: the id) */
	__u16 sport;        /* host byte order */
	__u16 dport;
	__u8  proto;
	__u8  csum_flags;   /* extra bpf_l4_csum_replace flags (UDP: keep 0 = "no checksum") */
	__u8  pseudo;       /* the checksum covers the IPv4 pseudo header (TCP, UDP) */
	__u8  pad;
};

/* Fill l4 for an unfragmented TCP, UDP or ICMP echo request/reply whose L4
 * header lies inside tot_len (pw_ipv4_parse validated the IPv4 header).
 * 0, or: PW_DROP_FRAGMENT (no ports in this packet), PW_DROP_MALFORMED (L4
 * header cut short), PW_DROP_UNSUPPORTED (another protocol or ICMP type). */
static __always_inline int pw_l4_parse(struct __sk_buff *skb, const struct iphdr *iph, struct pw_l4 *l4)
{
	__u32 hlen = iph->ihl * 4;
	__u32 l4_len = bpf_ntohs(iph->tot_len) - hlen; /* >= 0: pw_ipv4_parse checked */
	__u8 proto = iph->protocol;
	__be16 hdr[4];      /* the first 8 bytes of the L4 header */

	__builtin_memset(l4, 0, sizeof(*l4));
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP)
		return PW_DROP_UNSUPPORTED;
	if (pw_ip4_is_fragment(iph))
		return PW_DROP_FRAGMENT;
	l4->proto = proto;
	l4->off = sizeof(struct ethhdr) + hlen;
	if (l4_len < (proto == IPPROTO_TCP ? 20 : 8))
		return PW_DROP_MALFORMED;
	if (bpf_skb_load_bytes(skb, l4->off, hdr, sizeof(hdr)) != 0)
		return PW_DROP_MALFORMED;

	if (proto == IPPROTO_ICMP) {
		__u8 type = *(__u8 *)hdr;

		l4->csum_off = l4->off + PW_ICMP_CSUM_OFF;
		if (type == PW_ICMP_ECHO) {
			l4->sport_off = l4->off + PW_ICMP_ID_OFF;
			l4->sport = bpf_ntohs(hdr[2]);
		} else if (type == PW_ICMP_ECHOREPLY) {
			l4->dport_off = l4->off + PW_ICMP_ID_OFF;
			l4->dport = bpf_ntohs(hdr[2]);
		} else {
			return PW_DROP_UNSUPPORTED;
		}
		return 0;
	}
	l4->pseudo = 1;
	l4->sport_off = l4->off;
	l4->dport_off = l4->off + 2;
	l4->sport = bpf_ntohs(hdr[0]);
	l4->dport = bpf_ntohs(hdr[1]);
	if (proto == IPPROTO_TCP) {
		l4->csum_off = l4->off + PW_TCP_CSUM_OFF;
	} else {
		l4->csum_off = l4->off + PW_UDP_CSUM_OFF;
		l4->csum_flags = BPF_F_MARK_MANGLED_0;
	}
	return 0;
}

#endif
