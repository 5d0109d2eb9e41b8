/* SPDX-License-Identifier: Apache-2.0 */
/* NetworkPolicy (docs/policy.md): may this packet enter / leave a local pod?
 * A bounded sequence of lookups whatever the number of policies: the pod's
 * enforcement flags (array slot), the flow in pw_pol_ct (one LRU lookup for
 * both directions), and only for a new flow the peer's identity (LPM) and
 * at most four pw_policy lookups (LPM). */
#ifndef PW_BPF_POLICY_H
#define PW_BPF_POLICY_H

#include "common.h"
#include "config.h"
#include "maps.h"
#include "ipv4.h"
#include "l4.h"
#include "conntrack.h"

/* No pod on this node is policed (userspace says so; docs/policy.md). */
static __always_inline int pw_pol_gate_open(void)
{
	__u32 zero = 0;
	const __u32 *gate = bpf_map_lookup_elem(&pw_pol_gate, &zero);

	return gate && *gate == PW_POL_GATE_OPEN;
}

/* The pod's slot (include/podwire/abi.h), if it holds this pod. */
static __always_inline const struct pw_pol_ep *pw_pol_ep_get(__be32 pod)
{
	__u32 slot = bpf_ntohl(pod) & (PW_MAX_POL_EP - 1);
	const struct pw_pol_ep *ep;

	if (pw_pol_gate_open())
		return NULL;
	ep = bpf_map_lookup_elem(&pw_pol_ep, &slot);
	if (!ep || !ep->flags || pw_ip4_load(ep->ip) != pod)
		return NULL;
	return ep;
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

/* The flow's key, the same from both directions, and which end sent this
 * packet: 0 the lower (address, then port), 1 the higher. Any fixed order
 * does: the addresses are compared as stored. */
static __always_inline __u32 pw_pol_ct_key_make(struct pw_pol_ct_key *k, __be32 saddr, __be32 daddr, __u16 sport,
						__u16 dport, __u8 proto)
{
	__u32 sense = saddr > daddr || (saddr == daddr && sport > dport);

	__builtin_memset(k, 0, sizeof(*k));
	if (sense) {
		__builtin_memcpy(k->addr_lo, &daddr, 4);
		__builtin_memcpy(k->addr_hi, &saddr, 4);
		k->port_lo = dport;
		k->port_hi = sport;
	} else {
		__builtin_memcpy(k->addr_lo, &saddr, 4);
		__builtin_memcpy(k->addr_hi, &daddr, 4);
		k->port_lo = sport;
		k->port_hi = dport;
	}
	k->proto = proto;
	return sense;
}

/* A remembered flow that has not been idle too long; refreshed. */
static __always_inline int pw_pol_ct_fresh(struct pw_pol_ct_val *v, __u8 proto, __u64 now)
{
	__u64 timeout = (proto == IPPROTO_TCP ? PW_POL_CT_TCP_S : PW_POL_CT_OTHER_S) * 1000000000ULL;

	if (now - v->last_seen_ns > timeout)
		return 0;
	if (now - v->last_seen_ns > PW_CT_TOUCH_NS)
		v->last_seen_ns = now;
	return 1;
}

/* Remember that the check `mine` let this flow: a bit more in the flow's
 * entry, or a new entry (an idle-expired one starts over). */
static __always_inline void pw_pol_ct_remember(const struct pw_pol_ct_key *key, struct pw_pol_ct_val *e, int live,
					       __u64 mine, __u64 now)
{
	struct pw_pol_ct_val v = { .last_seen_ns = now, .allowed = mine };

	if (live) {
		if (!(e->allowed & mine))
			__sync_fetch_and_or(&e->allowed, mine);
		return;
	}
	if (e) {
		e->allowed = mine;
		e->last_seen_ns = now;
		return;
	}
	/* Another CPU may have just added the flow: then add the bit. */
	if (bpf_map_update_elem(&pw_pol_ct, key, &v, BPF_NOEXIST)) {
		e = bpf_map_lookup_elem(&pw_pol_ct, key);
		if (e)
			__sync_fetch_and_or(&e->allowed, mine);
	}
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

static __always_inline void pw_pol_frag_key_make(struct pw_pol_frag_key *k, const struct iphdr *iph)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->saddr, &iph->saddr, 4);
	__builtin_memcpy(k->daddr, &iph->daddr, 4);
	k->id = iph->id;
	k->proto = iph->protocol;
}

/* A later fragment (offset > 0) of a datagram whose first fragment a check
 * let through: its ports, noted then. 0 when known. */
static __always_inline int pw_pol_frag_ports(const struct iphdr *iph, struct pw_l4 *l4)
{
	struct pw_pol_frag_key k;
	const struct pw_pol_frag_val *v;

	if (!(iph->frag_off & bpf_htons(PW_IP_OFFSET)))
		return -1;
	pw_pol_frag_key_make(&k, iph);
	v = bpf_map_lookup_elem(&pw_pol_frag, &k);
	if (!v)
		return -1;
	l4->proto = iph->protocol;
	l4->sport = v->sport;
	l4->dport = v->dport;
	return 0;
}

/* An allowed first fragment (MF, offset 0): note its ports for the rest. */
static __always_inline void pw_pol_frag_note(const struct iphdr *iph, const struct pw_l4 *l4)
{
	struct pw_pol_frag_val v = { .sport = l4->sport, .dport = l4->dport };
	struct pw_pol_frag_key k;

	if ((iph->frag_off & bpf_htons(PW_IP_MF | PW_IP_OFFSET)) != bpf_htons(PW_IP_MF))
		return;
	pw_pol_frag_key_make(&k, iph);
	bpf_map_update_elem(&pw_pol_frag, &k, &v, BPF_ANY);
}

/* The ports and TCP flags of a packet with ports (pw_l4 conventions),
 * straight from the linear data when the header is there (the common case:
 * no helper call; a first fragment has them too), those its first fragment
 * noted for a later fragment, else through pw_l4_parse. 0, or
 * pw_l4_parse's error. */
static __always_inline int pw_pol_ports(struct __sk_buff *skb, const struct iphdr *iph, struct pw_l4 *l4,
					__u8 *tcp_flags)
{
	void *data_end = pw_skb_data_end(skb);
	__u32 hlen = iph->ihl * 4;
	const __u8 *h = (const void *)iph + hlen;
	__u8 proto = iph->protocol;
	int err;

	if (!pw_pol_frag_ports(iph, l4))
		return 0;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !(iph->frag_off & bpf_htons(PW_IP_OFFSET)) &&
	    (void *)(h + PW_TCP_FLAGS_OFF + 1) <= data_end &&
	    bpf_ntohs(iph->tot_len) >= hlen + (proto == IPPROTO_TCP ? 20 : 8)) {
		l4->proto = proto;
		l4->sport = ((__u16)h[0] << 8) | h[1];
		l4->dport = ((__u16)h[2] << 8) | h[3];
		*tcp_flags = proto == IPPROTO_TCP ? h[PW_TCP_FLAGS_OFF] : 0;
		return 0;
	}
	err = pw_l4_parse(skb, iph, l4);
	if (!err)
		*tcp_flags = pw_tcp_flags(skb, l4);
	return err;
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
	const struct pw_pol_ep *ep;
	struct pw_pol_ct_key key;
	struct pw_pol_ct_val *e;
	struct pw_l4 l4 = {};
	__u32 enforce, sense;
	__u64 mine;
	__u8 proto = iph->protocol;
	__u8 tcp_flags = 0;
	int live, syn;
	__u64 now;

	ep = pw_pol_ep_get(pod);
	if (!ep)
		return 0;
	if (pkt->flags & PW_PKT_F_REPLY)
		return 0;
	enforce = ep->flags & (dir == PW_DIR_INGRESS ? PW_POL_F_INGRESS : PW_POL_F_EGRESS);
	if (pw_pol_ports(skb, iph, &l4, &tcp_flags)) {
		/* No ports: a later fragment whose first one was not let
		 * through here, ICMP errors, SCTP and the rest. Only port-less
		 * rules can allow them; nothing is remembered. */
		__u32 identity;

		if (!enforce || pw_pol_icmp_error(skb, iph))
			return 0;
		identity = pw_pol_identity(peer);
		if (identity == PW_ID_HOST || pw_policy_allows(pod, dir, 0, identity, 0))
			return 0;
		goto deny;
	}
	sense = pw_pol_ct_key_make(&key, iph->saddr, iph->daddr, l4.sport, l4.dport, proto);
	/* This pod's check let this direction before, or this packet answers
	 * a flow the same pod's check let the other way. */
	mine = PW_POL_CT_BIT(sense, dir);
	e = bpf_map_lookup_elem(&pw_pol_ct, &key);
	/* The coarse clock (the last tick): an idle timeout of seconds needs
	 * no more, and it costs a fraction of bpf_ktime_get_ns here. */
	now = bpf_ktime_get_coarse_ns();
	live = e && pw_pol_ct_fresh(e, proto, now);
	syn = pw_tcp_is_syn(tcp_flags);
	/* A SYN opens a connection: always checked against the policies as
	 * they are now, whatever an earlier flow of the same tuple was let. */
	if (live && !syn && (e->allowed & (mine | PW_POL_CT_BIT(!sense, !dir)))) {
		pw_pol_frag_note(iph, &l4);
		return 0;
	}
	if (enforce) {
		__u32 identity = pw_pol_identity(peer);

		/* The peer's port is the destination's: ingress allows by the
		 * pod's own port, egress by the port it connects to. */
		if (identity != PW_ID_HOST && !pw_policy_allows(pod, dir, proto, identity, l4.dport)) {
			/* A new connection refused: the old one's pass goes. */
			if (live && (e->allowed & mine))
				__sync_fetch_and_and(&e->allowed, ~mine);
			goto deny;
		}
	}
	/* Allowed, and this pod is policed in some direction: remember the
	 * flow so its replies pass whichever direction is enforced. */
	pw_pol_ct_remember(&key, e, live, mine, now);
	pw_pol_frag_note(iph, &l4);
	return 0;
deny:
	pkt->policy_id = dir == PW_DIR_INGRESS ? ep->ingress_policy : ep->egress_policy;
	return PW_DROP_POLICY;
}

#endif
