/* SPDX-License-Identifier: Apache-2.0 */
/* ICMP errors (destination unreachable, time exceeded) quote the packet
 * they are about. A NAT that rewrote that packet must rewrite the quote the
 * same way back, or the sender's socket never matches the error: path MTU
 * discovery stalls, a UDP client waits for its timeout instead of hearing
 * "port unreachable". */
#ifndef PW_BPF_ICMP_H
#define PW_BPF_ICMP_H

#include "common.h"
#include "ipv4.h"
#include "l4.h"
#include "csum.h"

#define PW_ICMP_DEST_UNREACH  3
#define PW_ICMP_TIME_EXCEEDED 11

/* The first 8 bytes of an ICMP message. */
struct pw_icmp_head {
	__u8    type;
	__u8    code;
	__sum16 csum;
	__be32  rest;
};

/* What an ICMP error quotes, as offsets from skb->data. Ports are host byte
 * order; for a quoted ICMP echo request sport is its id and dport 0. */
struct pw_icmp_quote {
	__u32  csum_off;            /* the ICMP checksum */
	__u32  ip_off;              /* the quoted IPv4 header (ihl 5) */
	__u32  sport_off, dport_off;/* the quoted ports (echo: id at sport_off, dport_off 0) */
	__be32 saddr, daddr;
	__u16  sport, dport;
	__u8   proto;
};

/* q filled from an unfragmented ICMP error quoting an unfragmented TCP,
 * UDP or ICMP echo request packet with a plain 20-byte header. 0, or -1
 * for anything else (the packet is then not ours to translate). */
static __always_inline int pw_icmp_error_quote(struct __sk_buff *skb, const struct iphdr *iph,
					       struct pw_icmp_quote *q)
{
	__u32 icmp_off = sizeof(struct ethhdr) + iph->ihl * 4;
	struct pw_icmp_head icmp;
	struct iphdr inner;
	__be16 l4[4];

	if (iph->protocol != IPPROTO_ICMP || pw_ip4_is_fragment(iph) ||
	    bpf_skb_load_bytes(skb, icmp_off, &icmp, sizeof(icmp)))
		return -1;
	if (icmp.type != PW_ICMP_DEST_UNREACH && icmp.type != PW_ICMP_TIME_EXCEEDED)
		return -1;
	__builtin_memset(q, 0, sizeof(*q));
	q->csum_off = icmp_off + PW_ICMP_CSUM_OFF;
	q->ip_off = icmp_off + sizeof(icmp);
	if (bpf_skb_load_bytes(skb, q->ip_off, &inner, sizeof(inner)) ||
	    inner.version != 4 || inner.ihl != 5 || pw_ip4_is_fragment(&inner) ||
	    bpf_skb_load_bytes(skb, q->ip_off + sizeof(inner), l4, sizeof(l4)))
		return -1;
	q->saddr = inner.saddr;
	q->daddr = inner.daddr;
	q->proto = inner.protocol;
	if (inner.protocol == IPPROTO_TCP || inner.protocol == IPPROTO_UDP) {
		q->sport_off = q->ip_off + sizeof(inner);
		q->dport_off = q->sport_off + 2;
		q->sport = bpf_ntohs(l4[0]);
		q->dport = bpf_ntohs(l4[1]);
		return 0;
	}
	if (inner.protocol == IPPROTO_ICMP && *(__u8 *)l4 == PW_ICMP_ECHO) {
		q->sport_off = q->ip_off + sizeof(inner) + PW_ICMP_ID_OFF;
		q->sport = bpf_ntohs(l4[2]);
		return 0;
	}
	return -1;
}

/* In the quote, the address at addr_field (offsetof saddr or daddr in
 * struct iphdr) from -> to, and the port at port_off from -> to (skipped
 * when port_off is 0 or the port does not change). The quoted IPv4
 * checksum follows the address; the ICMP checksum, which covers the whole
 * quote, follows both. The quoted L4 checksum is left alone: it is of a
 * segment cut short, and no stack checks it. 0 or a negative errno. */
static __always_inline long pw_icmp_quote_rewrite(struct __sk_buff *skb, const struct pw_icmp_quote *q,
						  __u32 addr_field, __be32 from, __be32 to, __u32 port_off,
						  __u16 from_port, __u16 to_port)
{
	__u32 check_off = q->ip_off + __builtin_offsetof(struct iphdr, check);
	__be16 old_check, new_check, fp = bpf_htons(from_port), tp = bpf_htons(to_port);
	long err;

	if (from != to) {
		if ((err = bpf_skb_load_bytes(skb, check_off, &old_check, 2)) ||
		    (err = bpf_l3_csum_replace(skb, check_off, from, to, 4)) ||
		    (err = bpf_skb_load_bytes(skb, check_off, &new_check, 2)) ||
		    (err = bpf_l4_csum_replace(skb, q->csum_off, old_check, new_check, 2)) ||
		    (err = bpf_l4_csum_replace(skb, q->csum_off, from, to, 4)) ||
		    (err = bpf_skb_store_bytes(skb, q->ip_off + addr_field, &to, 4, 0)))
			return err;
	}
	if (port_off && fp != tp) {
		if ((err = bpf_l4_csum_replace(skb, q->csum_off, fp, tp, 2)) ||
		    (err = bpf_skb_store_bytes(skb, port_off, &tp, 2, 0)))
			return err;
	}
	return 0;
}

/* The outer IPv4 address at addr_off (PW_IP_SADDR_OFF / PW_IP_DADDR_OFF)
 * of an ICMP message: ICMP's checksum has no pseudo header, so only the
 * IPv4 checksum follows. */
static __always_inline long pw_icmp_outer_rewrite(struct __sk_buff *skb, __u32 addr_off, __be32 from, __be32 to)
{
	long err = bpf_l3_csum_replace(skb, PW_IP_CSUM_OFF, from, to, 4);

	return err ? err : bpf_skb_store_bytes(skb, addr_off, &to, 4, 0);
}

#endif
