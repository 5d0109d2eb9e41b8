/* SPDX-License-Identifier: Apache-2.0 */
/* Includes and the per-packet context every bpf/lib header works on. */
#ifndef PW_BPF_COMMON_H
#define PW_BPF_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <podwire/abi.h>
#include <podwire/drop.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* What the parsers learned about the packet so far. Drop and trace events
 * report from here, so a drop early in parsing still carries what is known
 * (zeros for the rest). Addresses stay in network byte order, ports are
 * host byte order as in struct pw_event. */
struct pw_pkt {
	__u32 ifindex;         /* device the program runs on */
	__u8  dir;             /* enum pw_dir, fixed per entry point */
	__u8  proto;           /* IP protocol, 0 until the IPv4 header is parsed */
	__u16 flags;           /* PW_PKT_F_* */
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
	/* What the path decided, for the events: next hop towards a peer
	 * node, and the address/port a NAT rewrote the packet to. */
	__be32 nexthop;
	__be32 nat_addr;
	__u16 nat_port;
	__u16 pad2;
	__u32 policy_id;       /* policy-denied: the policy that selected the pod, 0 = several */
};

enum pw_pkt_flags {
	PW_PKT_F_REPLY = 1,    /* reverse-translated (service or masquerade reply): a reply by construction */
};

static __always_inline void pw_pkt_init(struct pw_pkt *pkt, const struct __sk_buff *skb, __u8 dir)
{
	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->ifindex = skb->ifindex;
	pkt->dir = dir;
}

/* skb->data and skb->data_end, loaded from the context at each call. Left
 * to itself clang may keep &skb->data_end as a pointer of its own (ctx +
 * 80) across a long function and load through it later, which the
 * verifier refuses ("dereference of modified ctx ptr"). */
static __always_inline void *pw_skb_data(const struct __sk_buff *skb)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data)));
	return p;
}

static __always_inline void *pw_skb_data_end(const struct __sk_buff *skb)
{
	void *p;

	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(p) : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data_end)));
	return p;
}

#endif
