/* SPDX-License-Identifier: Apache-2.0 */
/* The node's uplink. Ingress: local pods get their traffic delivered
 * directly (native routing from peers, peers' VXLAN packets decapsulated
 * here (decap.h), and replies to masqueraded flows once translated back);
 * everything else goes to the host stack. Egress:
 * masquerade of pods' traffic leaving the cluster, and the node's own
 * flows kept off the ports masquerade gives out (nat.h). NodePort frontends on
 * the node's NodePort addresses (pw_np_addrs) are load-balanced on ingress
 * (lb.h). */
#ifndef PW_BPF_UPLINK_H
#define PW_BPF_UPLINK_H

#include "common.h"
#include "config.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"
#include "peer.h"
#include "nat.h"
#include "lb.h"
#include "remote.h"
#include "decap.h"
#include "fib.h"
#include "metrics.h"
#include "events.h"

/* To neither a pod (any node's) nor a node: where masquerade applies. */
static __always_inline int pw_outside_cluster(__be32 daddr)
{
	return !pw_in_cluster_cidr(daddr) && !pw_is_node_ip(daddr);
}

/* A reply to a masqueraded flow, now addressed to the pod: deliver it. The
 * rewrite moved the packet under our pointers, so they are derived again. */
static __always_inline int pw_uplink_deliver_reply(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	const struct pw_endpoint *target = pw_ep_by_ip(pkt->nat_addr);
	struct ethhdr *eth;
	struct iphdr *iph;

	if (!target)
		return PW_DROP_UNKNOWN_EP; /* the pod went away since */
	eth = pw_eth_hdr(skb);
	if (!eth)
		return PW_DROP_MALFORMED;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > pw_skb_data_end(skb))
		return PW_DROP_MALFORMED;
	/* The flow may also be a service's (pod -> ClusterIP -> a backend off
	 * the cluster, e.g. the API server behind the `kubernetes` Service):
	 * undo that translation too, with the pod's port now in place. */
	pkt->dport = pkt->nat_port;
	pkt->flags |= PW_PKT_F_REPLY;
	return pw_lb_deliver(skb, pkt, eth, iph, target);
}

/* A NodePort (or hostPort: scope as pw_hostport_lookup set it) client's
 * packet: DNAT to the service's backend. A local one gets it delivered; a
 * remote one gets it from the node IP (SNAT, so the replies come back
 * through here) by the node's routing mode. */
static __always_inline int pw_nodeport(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph,
				       const struct pw_svc *svc, __u8 scope)
{
	const struct pw_endpoint *target;
	struct ethhdr *eth;
	__u8 ct_flags = 0;
	int err;

	err = pw_lb_forward(skb, pkt, iph, svc, scope, 1, &ct_flags);
	if (err != PW_LB_TRANSLATED)
		return err;
	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	if (!(ct_flags & PW_CT_F_SNAT)) {
		target = pw_ep_by_ip(iph->daddr);
		if (!target)
			return PW_DROP_UNKNOWN_EP; /* the local backend pod went away */
		return pw_deliver_local(skb, pkt, eth, iph, target);
	}
	err = pw_snat_nodeport(skb, iph);
	if (err)
		return err;
	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	return pw_to_remote(skb, pkt, eth, iph);
}

/* A remote backend's reply to a NodePort flow, its destination already
 * back at the client (pw_snat): the source back to the node IP and node
 * port (conntrack), then out towards the client by the FIB. */
static __always_inline int pw_nodeport_reply(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	int ret;

	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	ret = pw_lb_reverse(skb, pkt, iph);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return PW_DROP_NAT_FAILED; /* its conntrack entries expired first */
	if (pw_ipv4_reload(skb, &eth, &iph))
		return PW_DROP_MALFORMED;
	if (!pw_ipv4_ttl_ok(iph))
		return PW_DROP_TTL_EXCEEDED;
	return pw_fib_redirect(skb, pkt, eth, iph, iph->daddr);
}

/* A pod's hostPort on the node IP, after every reply the node expects
 * (masquerade, the node's own flows): a hostPort inside the ephemeral
 * range must not take the replies of a flow that happens to use it. */
static __always_inline int pw_uplink_hostport(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph)
{
	const struct pw_svc *svc;
	__u8 scope;

	if (!pw_lb_candidate(pkt))
		return TC_ACT_OK;
	svc = pw_hostport_lookup(iph->daddr, pkt->dport, pkt->proto, &scope);
	if (!svc)
		return TC_ACT_OK;
	return pw_nodeport(skb, pkt, iph, svc, scope);
}

/* To the node IP: a peer's VXLAN packet for a local pod (decap.h), a
 * NodePort frontend, a reply to a flow this node SNATed (masquerade, or
 * NodePort to a remote backend), a pod's hostPort, or the host's own. */
static __always_inline int pw_uplink_to_node(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph)
{
	const struct pw_endpoint *target;
	const struct pw_svc *svc;
	__u16 nat_flags = 0;
	int err;

	if (cfg_routing_mode == PW_MODE_VXLAN && pkt->proto == IPPROTO_UDP && pkt->dport == PW_VXLAN_PORT) {
		err = pw_vxlan_outer_check(skb, iph);
		if (err)
			return err;
		target = pw_vxlan_local_target(skb, iph);
		if (target)
			return pw_vxlan_decap(skb, pkt, target);
	}
	if (pw_lb_candidate(pkt)) {
		svc = pw_nodeport_lookup(iph->daddr, pkt->dport, pkt->proto);
		if (svc)
			return pw_nodeport(skb, pkt, iph, svc, PW_SVC_NODEPORT);
	}
	if (pkt->proto == IPPROTO_ICMP) {
		err = pw_snat_rev_icmp_error(skb, pkt, iph, &nat_flags);
		if (err != PW_NAT_SKIP) {
			if (err)
				return err;
			if (nat_flags & PW_NAT_F_HOST)
				return TC_ACT_OK;
			if (nat_flags & PW_NAT_F_NODEPORT)
				return pw_nodeport_reply(skb, pkt);
			return pw_uplink_deliver_reply(skb, pkt);
		}
	}
	err = pw_snat_rev_ingress(skb, pkt, iph, &nat_flags);
	if (err == PW_NAT_SKIP)
		return pw_uplink_hostport(skb, pkt, iph);
	if (err)
		return err;
	if (nat_flags & PW_NAT_F_HOST)
		return TC_ACT_OK; /* a reply to the node's own flow, its port restored */
	if (nat_flags & PW_NAT_F_NODEPORT)
		return pw_nodeport_reply(skb, pkt);
	return pw_uplink_deliver_reply(skb, pkt);
}

/* To neither the node IP nor a local pod: another address of the node may
 * serve NodePorts (pw_np_addrs); the rest is the host stack's. */
static __always_inline int pw_uplink_to_other(struct __sk_buff *skb, struct pw_pkt *pkt, struct iphdr *iph)
{
	const struct pw_svc *svc;

	if (!pw_lb_candidate(pkt))
		return TC_ACT_OK;
	svc = pw_nodeport_lookup(iph->daddr, pkt->dport, pkt->proto);
	return svc ? pw_nodeport(skb, pkt, iph, svc, PW_SVC_NODEPORT) : TC_ACT_OK;
}

static __always_inline int pw_uplink_ipv4(struct __sk_buff *skb, struct pw_pkt *pkt, struct ethhdr *eth)
{
	const struct pw_endpoint *target;
	struct iphdr *iph;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	/* Our pods send through their veths, never in from the wire. */
	if (pw_in_pod_cidr(iph->saddr))
		return PW_DROP_FORGED_POD_SOURCE;
	if (iph->daddr == cfg_node_ip)
		return pw_uplink_to_node(skb, pkt, iph);
	target = pw_ep_by_ip(iph->daddr);
	if (!target)
		return pw_uplink_to_other(skb, pkt, iph);
	/* In VXLAN mode every peer's pod reaches ours through the tunnel: a
	 * pod source outside it is forged. (In native routing the node
	 * network is trusted with peers' pod addresses: docs/datapath.md.) */
	if (cfg_routing_mode == PW_MODE_VXLAN && pw_in_cluster_cidr(iph->saddr))
		return PW_DROP_FORGED_POD_SOURCE;
	if (cfg_masquerade && pw_outside_cluster(iph->saddr))
		pw_snat_note_inbound(skb, iph);
	return pw_lb_deliver(skb, pkt, eth, iph, target);
}

/* Verdict (TC_ACT_*) or a negative drop reason. */
static __always_inline int pw_uplink_ingress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct ethhdr *eth = pw_eth_hdr(skb);

	if (!eth)
		return TC_ACT_OK; /* not ours to judge: the stack drops runts itself */
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return pw_uplink_ipv4(skb, pkt, eth);
	return TC_ACT_OK;
}

/* The node's own packet (source = node IP): its port claimed or moved
 * (pw_snat_host_egress). A packet that does not parse is the stack's
 * business, never ours to drop. */
/* A local pod's reply to a load-balanced flow whose frontend is the node IP
 * (a hostPort, redirected here by pod_ingress) leaves from the frontend's
 * port: no flow of the node's own, even when that port lies in the
 * masquerade range, as a hostPort may (the conformance test's 54323 does).
 * Claimed as one, the client's next packets would go to the host stack.
 * Conntrack holds the flow's forward entry. */
static __always_inline int pw_uplink_lb_reply(const struct pw_pkt *pkt, const struct iphdr *iph)
{
	struct pw_ct_key fkey;

	if (!pw_lb_candidate(pkt) || pkt->sport < PW_SNAT_PORT_MIN || pkt->sport > PW_SNAT_PORT_MAX)
		return 0;
	pw_ct_key_make(&fkey, iph->daddr, iph->saddr, pkt->dport, pkt->sport, pkt->proto, PW_CT_FORWARD);
	return bpf_map_lookup_elem(&pw_ct, &fkey) != NULL;
}

static __always_inline int pw_uplink_host_egress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct iphdr *iph;
	int err;

	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph || !pw_outside_cluster(iph->daddr) || pw_uplink_lb_reply(pkt, iph))
		return TC_ACT_OK;
	err = pw_snat_host_egress(skb, pkt, iph);
	if (err < 0)
		return err;
	if (err == PW_NAT_MOVED) {
		pw_metrics_count(PW_METRIC_MASQUERADED, pkt->dir, skb->len);
		pw_event_trace(skb, pkt, PW_TRACE_MASQUERADE, skb->ifindex);
	}
	return TC_ACT_OK;
}

/* uplink_egress: PW_METRIC_MASQUERADED and TC_ACT_OK when translated,
 * TC_ACT_OK untouched when not ours, or a drop reason. Nothing else is
 * counted: pod_ingress already counted these packets on their way in. */
static __always_inline int pw_uplink_egress(struct __sk_buff *skb, struct pw_pkt *pkt)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	int err;

	if (!cfg_masquerade)
		return TC_ACT_OK;
	eth = pw_eth_hdr(skb);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > pw_skb_data_end(skb))
		return TC_ACT_OK;
	if (iph->saddr == cfg_node_ip)
		return pw_uplink_host_egress(skb, pkt);
	if (!pw_in_pod_cidr(iph->saddr))
		return TC_ACT_OK;

	/* One of our pods' packets: now it must hold up. */
	iph = pw_ipv4_parse(skb, pkt, &err);
	if (!iph)
		return err;
	if (!pw_outside_cluster(iph->daddr))
		return TC_ACT_OK;
	err = pw_snat_egress(skb, pkt, iph);
	if (err == PW_NAT_SKIP)
		return TC_ACT_OK;
	if (err)
		return err;
	pw_metrics_count(PW_METRIC_MASQUERADED, pkt->dir, skb->len);
	pw_event_trace(skb, pkt, PW_TRACE_MASQUERADE, skb->ifindex);
	return TC_ACT_OK;
}

#endif
