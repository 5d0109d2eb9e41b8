/* SPDX-License-Identifier: Apache-2.0 */
/* Masquerade: pods' traffic to outside the cluster leaves with the node IP
 * as its source and a port allocated here; replies to that port are
 * translated back. Both directions of a flow live in pw_snat (see struct
 * pw_nat_key); the agent expires idle entries by last_seen_ns. */
#ifndef PW_BPF_NAT_H
#define PW_BPF_NAT_H

#include "common.h"
#include "config.h"
#include "maps.h"
#include "l4.h"
#include "csum.h"
#include "hash.h"
#include "icmp.h"

#define PW_SNAT_RANGE   (PW_SNAT_PORT_MAX - PW_SNAT_PORT_MIN + 1)
#define PW_SNAT_RETRIES 32
/* last_seen_ns is refreshed at most this often: expiry needs seconds, and
 * not writing it on every packet keeps the entry's cache line shared. */
#define PW_NAT_TOUCH_NS 1000000000ULL

/* Not a packet for this NAT: leave it alone. */
#define PW_NAT_SKIP 1
/* The node's own flow was given another port (pw_snat_host_egress). */
#define PW_NAT_MOVED 2

static __always_inline void pw_nat_touch(struct pw_nat_entry *e, __u64 now)
{
	if (now - e->last_seen_ns > PW_NAT_TOUCH_NS)
		e->last_seen_ns = now;
}

/* Spreads flows over the port range; the same flow asks for the same port
 * first, so a retransmitted first packet after a lost entry likely gets its
 * old port back (hash.h). */
static __always_inline __u32 pw_nat_hash(const struct pw_nat_key *k)
{
	return pw_tuple_hash(pw_ip4_load(k->saddr), pw_ip4_load(k->daddr), k->sport, k->dport, k->proto);
}

/* The egress key of a flow from saddr to daddr with l4's ports. */
static __always_inline void pw_nat_egress_key(struct pw_nat_key *key, __be32 saddr, __be32 daddr,
					      const struct pw_l4 *l4)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->saddr, &saddr, 4);
	__builtin_memcpy(key->daddr, &daddr, 4);
	key->sport = l4->sport;
	key->dport = l4->dport;
	key->proto = l4->proto;
	key->dir = PW_DIR_EGRESS;
}

/* The key replies of the egress flow ekey carry once it is translated to
 * node_ip:port. */
static __always_inline void pw_nat_reverse_key(struct pw_nat_key *rkey, const struct pw_nat_key *ekey,
					       __be32 node_ip, __u16 port)
{
	__builtin_memset(rkey, 0, sizeof(*rkey));
	__builtin_memcpy(rkey->saddr, ekey->daddr, 4);
	__builtin_memcpy(rkey->daddr, &node_ip, 4);
	rkey->sport = ekey->dport;
	rkey->dport = port;
	rkey->proto = ekey->proto;
	rkey->dir = PW_DIR_INGRESS;
}

/* Claim a port for a new egress flow: a port is free when no reply key
 * (remote, remote port, node IP, port) uses it, so one port serves many
 * remotes. The reply entry is inserted with BPF_NOEXIST, which makes the
 * claim atomic against other CPUs. first, if not 0, is tried before the
 * hashed ones. */
static __always_inline int pw_snat_alloc(const struct pw_nat_key *ekey, __be32 node_ip, __u16 flags, __u64 now,
					 __u16 first, __u16 *port)
{
	struct pw_nat_entry rval = { .port = ekey->sport, .flags = flags, .last_seen_ns = now };
	struct pw_nat_key rkey;
	__u32 h = pw_nat_hash(ekey);

	__builtin_memcpy(rval.addr, ekey->saddr, 4);
	pw_nat_reverse_key(&rkey, ekey, node_ip, 0);
	for (int i = 0; i < PW_SNAT_RETRIES; i++) {
		rkey.dport = i == 0 && first ? first : PW_SNAT_PORT_MIN + h % PW_SNAT_RANGE;
		if (bpf_map_update_elem(&pw_snat, &rkey, &rval, BPF_NOEXIST) == 0) {
			*port = rkey.dport;
			return 0;
		}
		h = bpf_get_prandom_u32();
	}
	return PW_DROP_NAT_FAILED;
}

/* The translation of egress flow ekey: the existing one, or a new one with
 * a freshly claimed port (first, if not 0, tried first), both entries
 * marked with flags (PW_NAT_F_*). 0 and *xlate filled, or a drop reason. */
static __always_inline int pw_snat_get(const struct pw_nat_key *ekey, __be32 node_ip, __u16 flags, __u16 first,
				       struct pw_nat_entry *xlate)
{
	__u64 now = bpf_ktime_get_ns();
	struct pw_nat_entry *e = bpf_map_lookup_elem(&pw_snat, ekey);
	struct pw_nat_entry eval = { .flags = flags, .last_seen_ns = now };
	struct pw_nat_key rkey;
	__u16 port;
	int err;

	if (e) {
		pw_nat_touch(e, now);
		if (e->flags & PW_NAT_F_INBOUND)
			return PW_NAT_SKIP; /* replies of a flow a remote opened: untranslated */
		*xlate = *e;
		/* The LRU may have dropped the reply direction of a flow whose
		 * replies are rare: put it back, or the next reply is lost. */
		pw_nat_reverse_key(&rkey, ekey, pw_ip4_load(xlate->addr), xlate->port);
		if (!bpf_map_lookup_elem(&pw_snat, &rkey)) {
			struct pw_nat_entry rval = { .port = ekey->sport, .flags = xlate->flags,
						     .last_seen_ns = now };

			__builtin_memcpy(rval.addr, ekey->saddr, 4);
			bpf_map_update_elem(&pw_snat, &rkey, &rval, BPF_NOEXIST);
		}
		return 0;
	}

	err = pw_snat_alloc(ekey, node_ip, flags, now, first, &port);
	if (err)
		return err;
	__builtin_memcpy(eval.addr, &node_ip, 4);
	eval.port = port;
	if (bpf_map_update_elem(&pw_snat, ekey, &eval, BPF_NOEXIST) == 0) {
		*xlate = eval;
		return 0;
	}
	/* Another CPU translated the same flow first: use its port, give ours back. */
	pw_nat_reverse_key(&rkey, ekey, node_ip, port);
	bpf_map_delete_elem(&pw_snat, &rkey);
	e = bpf_map_lookup_elem(&pw_snat, ekey);
	if (!e)
		return PW_DROP_NAT_FAILED;
	*xlate = *e;
	return 0;
}

/* Source -> cfg_node_ip and a port allocated for the flow (ICMP echo: id),
 * both entries marked flags. 0 and *port, or a drop reason. */
static __always_inline int pw_snat_to_node(struct __sk_buff *skb, const struct iphdr *iph, __u16 flags,
					   __u16 *port)
{
	struct pw_nat_entry xlate;
	struct pw_nat_key key;
	struct pw_l4 l4;
	__be32 saddr = iph->saddr;
	__be32 node_ip = cfg_node_ip;
	int err;

	err = pw_l4_parse(skb, iph, &l4);
	if (err)
		return err;
	if (!l4.sport_off)
		return PW_DROP_UNSUPPORTED; /* an ICMP echo reply: pods answer no outside pings */
	pw_nat_egress_key(&key, saddr, iph->daddr, &l4);
	err = pw_snat_get(&key, node_ip, flags, 0, &xlate);
	if (err)
		return err;
	if (pw_rewrite_addr(skb, &l4, PW_IP_SADDR_OFF, saddr, node_ip) ||
	    pw_rewrite_port(skb, &l4, l4.sport_off, bpf_htons(l4.sport), bpf_htons(xlate.port)))
		return PW_DROP_NAT_FAILED;
	*port = xlate.port;
	return 0;
}

/* The egress key of the replies to a flow that arrived from saddr to daddr. */
static __always_inline void pw_nat_reply_egress_key(struct pw_nat_key *key, __be32 saddr, __be32 daddr,
						    const struct pw_l4 *l4)
{
	struct pw_l4 r = *l4;

	r.sport = l4->dport;
	r.dport = l4->sport;
	pw_nat_egress_key(key, daddr, saddr, &r);
}

/* Ingress: a remote outside the cluster opened a flow to one of our pods by
 * its address (a host on a network that routes pod CIDRs: the API server's
 * proxy, a metrics scraper). The pod's replies must leave with its own
 * address, or the remote gets answers from a stranger (the node IP) and the
 * flow never works. The replies' egress key is marked PW_NAT_F_INBOUND, with
 * the pod's own address and port (nothing to rewrite); pw_snat_egress then
 * lets them pass. The agent's SNAT GC expires it like a masquerade entry.
 * TCP and UDP only; a masquerade entry already holding the key is kept. */
static __always_inline void pw_snat_note_inbound(struct __sk_buff *skb, const struct iphdr *iph)
{
	struct pw_nat_entry *e, val = { .flags = PW_NAT_F_INBOUND };
	struct pw_nat_key key;
	struct pw_l4 l4;
	__u64 now;

	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return;
	if (pw_l4_parse(skb, iph, &l4))
		return;
	pw_nat_reply_egress_key(&key, iph->saddr, iph->daddr, &l4);
	now = bpf_ktime_get_ns();
	e = bpf_map_lookup_elem(&pw_snat, &key);
	if (e) {
		pw_nat_touch(e, now);
		return;
	}
	__builtin_memcpy(val.addr, &iph->daddr, 4);
	val.port = l4.dport;
	val.last_seen_ns = now;
	bpf_map_update_elem(&pw_snat, &key, &val, BPF_NOEXIST);
}

/* Egress masquerade; the caller decided the packet must be masqueraded.
 * The translation goes into pkt for the events. 0, or a drop reason. */
static __always_inline int pw_snat_egress(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph)
{
	__u16 port;
	int err = pw_snat_to_node(skb, iph, 0, &port);

	if (err == PW_NAT_SKIP)
		return PW_NAT_SKIP; /* a reply of an inbound flow: its own address */
	if (err)
		return err;
	pkt->nat_addr = cfg_node_ip;
	pkt->nat_port = port;
	return 0;
}

/* A NodePort flow to a remote backend (already DNATed: iph holds the
 * backend as destination): source -> cfg_node_ip and an allocated port, so
 * the backend's replies come back through this node. Same allocation and
 * entries as masquerade, marked PW_NAT_F_NODEPORT; pkt keeps the backend
 * the DNAT chose for the events. 0 or a drop reason. */
static __always_inline int pw_snat_nodeport(struct __sk_buff *skb, const struct iphdr *iph)
{
	__u16 port;

	int err = pw_snat_to_node(skb, iph, PW_NAT_F_NODEPORT, &port);

	return err == PW_NAT_SKIP ? PW_DROP_NAT_FAILED : err; /* (a client is never one of our pods) */
}

/* The node's own packet to outside the cluster. The kernel picks its
 * ephemeral ports from the same range as masquerade, and knows nothing of
 * our claims: a flow of the node from a port in the range claims that port
 * towards its remote, so no pod flow is given it later. When a pod flow to
 * the same remote holds it already, the node's flow is moved to a free port
 * like a pod's (its replies are translated back), rather than have two
 * flows share one tuple. 0 (untouched: outside the range, or kept its
 * port), PW_NAT_MOVED (the new port in pkt->nat_port), or a drop reason. */
static __always_inline int pw_snat_host_egress(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph)
{
	struct pw_nat_entry xlate;
	struct pw_nat_key key;
	struct pw_l4 l4;
	__be32 node_ip = cfg_node_ip;
	int err;

	if (pw_l4_parse(skb, iph, &l4) || !l4.sport_off)
		return 0;
	if (l4.sport < PW_SNAT_PORT_MIN || l4.sport > PW_SNAT_PORT_MAX)
		return 0;
	pw_nat_egress_key(&key, node_ip, iph->daddr, &l4);

	err = pw_snat_get(&key, node_ip, PW_NAT_F_HOST, l4.sport, &xlate);
	if (err)
		return err;
	if (xlate.port == l4.sport)
		return 0;
	if (pw_rewrite_port(skb, &l4, l4.sport_off, bpf_htons(l4.sport), bpf_htons(xlate.port)))
		return PW_DROP_NAT_FAILED;
	pkt->nat_addr = node_ip;
	pkt->nat_port = xlate.port;
	return PW_NAT_MOVED;
}

/* Ingress, an ICMP error (destination unreachable, among them "fragmentation
 * needed", or time exceeded) to cfg_node_ip about a flow this node
 * masqueraded: it goes back to the pod with the quoted packet as the pod
 * sent it (source address and port), or path MTU discovery and traceroute
 * of pods to the outside would never see their answers. Same results as
 * pw_snat_rev_ingress. A NodePort flow's (SNATed to a remote backend) is
 * translated back to the client here (always, like its replies), and on to
 * its frontend by pw_lb_reverse. */
static __always_inline int pw_snat_rev_icmp_error(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
						  __u16 *flags)
{
	__be32 node_ip = iph->daddr, pod_ip;
	struct pw_icmp_quote q;
	struct pw_nat_entry *e;
	struct pw_nat_key key = {};
	__u16 pod_port;

	if (pw_icmp_error_quote(skb, iph, &q) || q.saddr != cfg_node_ip)
		return PW_NAT_SKIP;
	/* The reply key of the quoted flow (node IP:port -> remote). */
	__builtin_memcpy(key.saddr, &q.daddr, 4);
	__builtin_memcpy(key.daddr, &q.saddr, 4);
	key.sport = q.dport;
	key.dport = q.sport;
	key.proto = q.proto;
	key.dir = PW_DIR_INGRESS;
	e = bpf_map_lookup_elem(&pw_snat, &key);
	if (!e)
		return PW_NAT_SKIP;
	*flags = e->flags;
	if (!cfg_masquerade && !(e->flags & PW_NAT_F_NODEPORT))
		return PW_NAT_SKIP;
	pod_ip = pw_ip4_load(e->addr);
	pod_port = e->port;
	pkt->nat_addr = pod_ip;
	pkt->nat_port = pod_port;
	if (pod_ip == node_ip && pod_port == q.sport)
		return 0; /* the node's own flow on the port it chose */
	if (pw_icmp_quote_rewrite(skb, &q, __builtin_offsetof(struct iphdr, saddr), node_ip, pod_ip, q.sport_off,
				  q.sport, pod_port) ||
	    pw_icmp_outer_rewrite(skb, PW_IP_DADDR_OFF, node_ip, pod_ip))
		return PW_DROP_NAT_FAILED;
	return 0;
}

/* Ingress, a packet to cfg_node_ip: if it answers a masqueraded flow (only
 * when the node masquerades) or a NodePort flow SNATed to a remote backend
 * (always), its destination goes back to the pod's (client's) address and
 * port. 0 (translated: the new destination is in pkt->nat_addr/nat_port,
 * the entry's flags in *flags), PW_NAT_SKIP (not a reply of ours: the host
 * stack's), or a drop reason. */
static __always_inline int pw_snat_rev_ingress(struct __sk_buff *skb, struct pw_pkt *pkt, const struct iphdr *iph,
					       __u16 *flags)
{
	struct pw_nat_entry *e;
	struct pw_nat_key key = {};
	struct pw_l4 l4;
	__be32 daddr = iph->daddr, pod_ip;
	__u16 pod_port;

	if (pw_l4_parse(skb, iph, &l4) || !l4.dport_off)
		return PW_NAT_SKIP;
	/* Every port this node allocates is in the range: the rest (the
	 * overlay's own UDP port, the host's services) skip the lookup. */
	if (l4.dport < PW_SNAT_PORT_MIN || l4.dport > PW_SNAT_PORT_MAX)
		return PW_NAT_SKIP;
	__builtin_memcpy(key.saddr, &iph->saddr, 4);
	__builtin_memcpy(key.daddr, &daddr, 4);
	key.sport = l4.sport;
	key.dport = l4.dport;
	key.proto = l4.proto;
	key.dir = PW_DIR_INGRESS;
	e = bpf_map_lookup_elem(&pw_snat, &key);
	if (!e)
		return PW_NAT_SKIP;
	*flags = e->flags;
	if (!cfg_masquerade && !(e->flags & PW_NAT_F_NODEPORT))
		return PW_NAT_SKIP;
	pw_nat_touch(e, bpf_ktime_get_ns());
	pod_ip = pw_ip4_load(e->addr);
	pod_port = e->port;
	pkt->nat_addr = pod_ip;
	pkt->nat_port = pod_port;
	if (pod_ip == daddr && pod_port == l4.dport)
		return 0; /* the node's own flow on the port it chose */

	if (pw_rewrite_addr(skb, &l4, PW_IP_DADDR_OFF, daddr, pod_ip) ||
	    pw_rewrite_port(skb, &l4, l4.dport_off, bpf_htons(l4.dport), bpf_htons(pod_port)))
		return PW_DROP_NAT_FAILED;
	return 0;
}

#endif
