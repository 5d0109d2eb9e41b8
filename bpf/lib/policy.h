/* SPDX-License-Identifier: Apache-2.0 */
/* NetworkPolicy (docs/policy.md): may this packet enter / leave a local pod?
 * A bounded sequence of lookups whatever the number of policies: the pod's
 * enforcement flags (hash), the flow in pw_pol_ct both ways (LRU hash), the
 * peer's identity (LPM), then at most four pw_policy lookups (LPM). */
#ifndef PW_BPF_POLICY_H
#define PW_BPF_POLICY_H

#include "common.h"
#include "config.h"
#include "maps.h"
#include "l4.h"
#include "conntrack.h"

/* No pod on this node is policed (userspace says so; docs/policy.md). */
static __always_inline int pw_pol_gate_open(void)
{
	__u32 zero = 0;
	const __u32 *gate = bpf_map_lookup_elem(&pw_pol_gate, &zero);

	return gate && *gate == PW_POL_GATE_OPEN;
}

static __always_inline const struct pw_pol_ep *pw_pol_ep_get(__be32 pod)
{
	struct pw_ip4 key;

	if (pw_pol_gate_open())
		return NULL;
	__builtin_memcpy(key.addr, &pod, 4);
	return bpf_map_lookup_elem(&pw_pol_ep, &key);
}

/* The node (its address, the pods' gateway) is the host identity; the
 * rest is whatever the longest prefix in pw_pol_ids says, or world. */
static __always_inline __u32 pw_pol_identity(__be32 addr)
{
	struct pw_pol_ids_key key = { .prefixlen = 32 };
	const struct pw_pol_ids_val *v;

	if (addr == cfg_node_ip || addr == cfg_gateway_ip)
		return PW_ID_HOST;
	__builtin_memcpy(key.addr, &addr, 4);
	v = bpf_map_lookup_elem(&pw_pol_ids, &key);
	return v ? v->identity : PW_ID_WORLD;
}

static __always_inline void pw_pol_ct_key_make(struct pw_pol_ct_key *k, __be32 saddr, __be32 daddr, __u16 sport,
					       __u16 dport, __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->saddr, &saddr, 4);
	__builtin_memcpy(k->daddr, &daddr, 4);
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
}

/* A remembered flow that has not been idle too long; refreshed. */
static __always_inline int pw_pol_ct_fresh(struct pw_pol_ct_val *v, __u8 proto, __u64 now)
{
	__u64 timeout = (proto == IPPROTO_TCP ? PW_POL_CT_TCP_S : PW_POL_CT_OTHER_S) * 1000000000ULL;

	if (!v || now - v->last_seen_ns > timeout)
		return 0;
	if (now - v->last_seen_ns > PW_CT_TOUCH_NS)
		v->last_seen_ns = now;
	return 1;
}

/* This pod let this flow before in this direction (fwd), or let the flow
 * this packet answers in the other direction (rev). */
static __always_inline int pw_pol_ct_known(const struct pw_pol_ct_key *fwd, const struct pw_pol_ct_key *rev,
					   __u8 proto, __u64 now)
{
	return pw_pol_ct_fresh(bpf_map_lookup_elem(&pw_pol_ct, fwd), proto, now) ||
	       pw_pol_ct_fresh(bpf_map_lookup_elem(&pw_pol_ct, rev), proto, now);
}

/* One pw_policy lookup: the id of an allowing policy, or 0. */
static __always_inline __u32 pw_policy_match(__be32 pod, __u8 dir, __u8 proto, __u32 identity, __u16 port)
{
	struct pw_policy_key key = {};
	const struct pw_policy_val *v;

	key.prefixlen = PW_POLICY_FIXED_BITS + 16;
	__builtin_memcpy(key.pod, &pod, 4);
	key.dir = dir;
	key.proto = proto;
	key.identity = identity;
	key.port[0] = port >> 8;
	key.port[1] = port & 0xff;
	v = bpf_map_lookup_elem(&pw_policy, &key);
	return v ? (v->policy_id ? v->policy_id : 1) : 0;
}

/* Exact peer before any peer, this protocol before any protocol; the
 * first hit allows. A protocol-less entry (rule without ports) has the
 * port /0, so port 0 finds it. */
static __always_inline int pw_policy_allows(__be32 pod, __u8 dir, __u8 proto, __u32 identity, __u16 port)
{
	if (pw_policy_match(pod, dir, proto, identity, port) || pw_policy_match(pod, dir, proto, PW_ID_ANY, port))
		return 1;
	return pw_policy_match(pod, dir, 0, identity, 0) || pw_policy_match(pod, dir, 0, PW_ID_ANY, 0);
}

/* ICMP errors (unreachable, fragmentation needed, time exceeded) answer a
 * flow; they are not flows of their own. */
static __always_inline int pw_pol_icmp_error(struct __sk_buff *skb, const struct iphdr *iph)
{
	__u8 type;

	if (iph->protocol != IPPROTO_ICMP)
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + iph->ihl * 4, &type, 1))
		return 0;
	return type == 3 || type == 11 || type == 12;
}

/* The verdict for a packet entering (dir PW_DIR_INGRESS, pod = daddr) or
 * leaving (PW_DIR_EGRESS, pod = saddr) a local pod: 0 to go on, or
 * PW_DROP_POLICY with pkt->policy_id naming the selecting policy. iph must
 * be valid (the caller reloaded it after any rewrite). */
static __always_inline int pw_policy_check(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
					   __u8 dir)
{
	__be32 pod = dir == PW_DIR_INGRESS ? iph->daddr : iph->saddr;
	__be32 peer = dir == PW_DIR_INGRESS ? iph->saddr : iph->daddr;
	struct pw_pol_ct_key fwd, rev;
	struct pw_pol_ct_val now;
	const struct pw_pol_ep *ep;
	struct pw_l4 l4;
	__u32 enforce;
	__u8 proto = iph->protocol;

	ep = pw_pol_ep_get(pod);
	if (!ep)
		return 0;
	if (pkt->flags & PW_PKT_F_REPLY)
		return 0;
	enforce = ep->flags & (dir == PW_DIR_INGRESS ? PW_POL_F_INGRESS : PW_POL_F_EGRESS);
	if (pw_l4_parse(skb, iph, &l4)) {
		/* No ports: fragments, ICMP errors, SCTP and the rest. Only
		 * port-less rules can allow them; nothing is remembered. */
		if (!enforce || pw_pol_icmp_error(skb, iph))
			return 0;
		if (pw_pol_identity(peer) == PW_ID_HOST)
			return 0;
		if (pw_policy_allows(pod, dir, 0, pw_pol_identity(peer), 0))
			return 0;
		goto deny;
	}
	pw_pol_ct_key_make(&fwd, iph->saddr, iph->daddr, l4.sport, l4.dport, proto, dir);
	pw_pol_ct_key_make(&rev, iph->daddr, iph->saddr, l4.dport, l4.sport, proto,
			   dir == PW_DIR_INGRESS ? PW_DIR_EGRESS : PW_DIR_INGRESS);
	now.last_seen_ns = bpf_ktime_get_ns();
	/* A SYN opens a connection: always checked against the policies as
	 * they are now, whatever an earlier flow of the same tuple was let. */
	if (!pw_tcp_is_syn(pw_tcp_flags(skb, &l4)) && pw_pol_ct_known(&fwd, &rev, proto, now.last_seen_ns))
		return 0;
	if (enforce) {
		__u32 identity = pw_pol_identity(peer);

		/* The peer's port is the destination's: ingress allows by the
		 * pod's own port, egress by the port it connects to. */
		if (identity != PW_ID_HOST && !pw_policy_allows(pod, dir, proto, identity, l4.dport))
			goto deny;
	}
	/* Allowed, and this pod is policed in some direction: remember the
	 * flow so its replies pass whichever direction is enforced. */
	bpf_map_update_elem(&pw_pol_ct, &fwd, &now, BPF_ANY);
	return 0;
deny:
	pkt->policy_id = dir == PW_DIR_INGRESS ? ep->ingress_policy : ep->egress_policy;
	return PW_DROP_POLICY;
}

#endif
