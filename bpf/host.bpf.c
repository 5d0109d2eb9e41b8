// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Programs on the node's uplink device. Logic in lib/uplink.h. */
#include "lib/common.h"
#include "lib/drop.h"
#include "lib/uplink.h"

SEC("tc")
int uplink_ingress(struct __sk_buff *skb)
{
	struct pw_pkt pkt;

	pw_pkt_init(&pkt, skb, PW_DIR_INGRESS);
	return pw_verdict(skb, &pkt, pw_uplink_ingress(skb, &pkt));
}

/* Attached (tc egress of the uplink) only when the node masquerades. Not
 * through pw_verdict: a packet passing here was already counted when it
 * left its pod, so only drops and translations are counted. */
SEC("tc")
int uplink_egress(struct __sk_buff *skb)
{
	struct pw_pkt pkt;
	int ret;

	pw_pkt_init(&pkt, skb, PW_DIR_EGRESS);
	ret = pw_uplink_egress(skb, &pkt);
	return ret < 0 ? pw_drop(skb, &pkt, ret) : ret;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
