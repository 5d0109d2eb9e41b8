/* SPDX-License-Identifier: Apache-2.0 */
/* Verdict and drop-reason codes shared by the datapath and userspace.
 *
 * Every drop in bpf/ returns one of these negative codes; the entry point
 * counts it in pw_metrics at slot -code and, when someone listens, emits a
 * drop event. Numbers are ABI: podwirectl, dashboards and docs/drop-reasons.md
 * name them, so a reason is never renumbered, only added. */
#ifndef PODWIRE_DROP_H
#define PODWIRE_DROP_H

enum pw_drop_reason {
	PW_DROP_MALFORMED       = -1,  /* truncated or malformed L2/L3/L4 header */
	PW_DROP_SPOOFED_IP      = -2,  /* pod sent with a source IP that is not its own */
	PW_DROP_SPOOFED_MAC     = -3,  /* pod sent with a source MAC that is not its own */
	PW_DROP_UNKNOWN_EP      = -4,  /* destination in this node's pod CIDR but no such pod */
	PW_DROP_NO_ROUTE        = -5,  /* destination in the cluster CIDR, no node owns its pod CIDR */
	PW_DROP_NO_BACKEND      = -6,  /* service frontend without backends */
	PW_DROP_CT_FULL         = -7,  /* conntrack table full, new flow refused */
	PW_DROP_UNSUPPORTED     = -8,  /* protocol the datapath does not handle on this path */
	PW_DROP_TTL_EXCEEDED    = -9,  /* TTL would reach zero on forwarding */
	PW_DROP_POLICY          = -10, /* denied by NetworkPolicy (docs/policy.md) */
	PW_DROP_UNKNOWN_SOURCE  = -11, /* packet on a pod veth that is not a registered endpoint */
	PW_DROP_FIB_FAILED      = -12, /* FIB lookup towards a peer node failed */
	PW_DROP_ENCAP_FAILED    = -13, /* could not set the tunnel key / redirect to the overlay */
	PW_DROP_NAT_FAILED      = -14, /* no free port or rewrite failed */
	PW_DROP_ARP_UNSUPPORTED = -15, /* ARP that is neither a request for the gateway nor a reply */
	PW_DROP_FRAGMENT        = -16, /* IP fragment the datapath cannot attribute to a flow */
	PW_DROP_TUNNEL_FOREIGN_SOURCE = -17, /* tunnel packet whose outer source is not a peer node */
	PW_DROP_TUNNEL_BAD_VNI  = -18, /* tunnel packet from a peer node with another VNI than the cluster's */
	PW_DROP_POD_TO_TUNNEL   = -19, /* pod sent UDP to a node's VXLAN port */
	PW_DROP_FORGED_POD_SOURCE = -20, /* from the node network with a pod source it cannot carry */
	PW_DROP_REASON_COUNT    = 21,  /* one past the highest |reason| */
};

/* pw_metrics slots: a drop reason -N is counted at slot N; these are the
 * non-drop outcomes, kept above every reason. */
enum pw_metric_slot {
	PW_METRIC_FORWARDED = 0,   /* redirected by the datapath (to a pod, peer, tunnel) */
	PW_METRIC_PASSED    = 48,  /* handed to the host stack */
	PW_METRIC_ARP_REPLY = 49,  /* ARP reply for the gateway answered in BPF */
	PW_METRIC_MASQUERADED = 50,/* source rewritten to the node IP by uplink_egress: a note
	                            * on packets pod_ingress already counted as passed, not
	                            * an outcome of its own */
	PW_METRIC_MAX       = 64,
};

#ifndef __bpf__
/* Name and one-line explanation of a reason, for podwirectl, metrics and logs.
 * Defined in userspace/lib/reasons.c. */
const char *pw_drop_reason_name(int reason);
const char *pw_drop_reason_text(int reason);
#endif

#endif
