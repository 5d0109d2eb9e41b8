// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Program on the node's uplink device. Logic in lib/uplink.h. */
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
