/* SPDX-License-Identifier: Apache-2.0 */
/* Names and explanations of enum pw_drop_reason (include/podwire/drop.h).
 * docs/drop-reasons.md is the same table for humans; keep them in step. */
#include <podwire/drop.h>
#include <stddef.h>

struct reason_desc {
	const char *name;
	const char *text;
};

/* Indexed by -reason. */
static const struct reason_desc reasons[PW_DROP_REASON_COUNT] = {
	[-PW_DROP_MALFORMED]       = {"malformed", "truncated or malformed L2/L3/L4 header"},
	[-PW_DROP_SPOOFED_IP]      = {"spoofed-source-ip", "pod sent with a source IP that is not its own"},
	[-PW_DROP_SPOOFED_MAC]     = {"spoofed-source-mac", "pod sent with a source MAC that is not its own"},
	[-PW_DROP_UNKNOWN_EP]      = {"unknown-endpoint", "destination in this node's pod CIDR but no such pod"},
	[-PW_DROP_NO_ROUTE]        = {"no-route", "destination in the cluster CIDR but no node owns its pod CIDR"},
	[-PW_DROP_NO_BACKEND]      = {"no-backend", "service frontend without backends"},
	[-PW_DROP_CT_FULL]         = {"ct-full", "conntrack table full, new flow refused"},
	[-PW_DROP_UNSUPPORTED]     = {"unsupported", "protocol the datapath does not handle on this path"},
	[-PW_DROP_TTL_EXCEEDED]    = {"ttl-exceeded", "TTL would reach zero on forwarding"},
	[-PW_DROP_POLICY]          = {"policy-denied", "denied by NetworkPolicy"},
	[-PW_DROP_UNKNOWN_SOURCE]  = {"unknown-source", "packet on a pod veth that is not a registered endpoint"},
	[-PW_DROP_FIB_FAILED]      = {"fib-failed", "FIB lookup towards a peer node failed"},
	[-PW_DROP_ENCAP_FAILED]    = {"encap-failed", "could not set the tunnel key or redirect to the overlay"},
	[-PW_DROP_NAT_FAILED]      = {"nat-failed", "no free port or the NAT rewrite failed"},
	[-PW_DROP_ARP_UNSUPPORTED] = {"arp-unsupported", "ARP that is neither a request for the gateway nor a reply"},
	[-PW_DROP_FRAGMENT]        = {"fragment", "IP fragment the datapath cannot attribute to a flow"},
	[-PW_DROP_TUNNEL_FOREIGN_SOURCE] = {"tunnel-foreign-source",
					    "tunnel packet whose outer source is not a peer node"},
	[-PW_DROP_TUNNEL_BAD_VNI]  = {"tunnel-bad-vni", "tunnel packet with another VNI than the cluster's"},
	[-PW_DROP_POD_TO_TUNNEL]   = {"pod-to-tunnel-port", "pod sent UDP to a node's VXLAN port"},
	[-PW_DROP_FORGED_POD_SOURCE] = {"forged-pod-source",
					"from the node network with a pod source address it cannot carry"},
};

/* Accepts the reason (-N) or its pw_metrics slot (N), so callers walking
 * the metrics map need no sign juggling. NULL when unknown. */
static const struct reason_desc *reason_lookup(int reason)
{
	int idx = reason < 0 ? -reason : reason;

	if (idx <= 0 || idx >= PW_DROP_REASON_COUNT || !reasons[idx].name)
		return NULL;
	return &reasons[idx];
}

const char *pw_drop_reason_name(int reason)
{
	const struct reason_desc *d = reason_lookup(reason);

	return d ? d->name : "unknown";
}

const char *pw_drop_reason_text(int reason)
{
	const struct reason_desc *d = reason_lookup(reason);

	return d ? d->text : "unknown drop reason";
}
