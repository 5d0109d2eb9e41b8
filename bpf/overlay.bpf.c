// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Programs on the node's VXLAN device (pw_vxlan, collect-metadata), attached
 * in VXLAN mode only. Logic in lib/overlay.h. */
#include "lib/common.h"
#include "lib/drop.h"
#include "lib/overlay.h"

/* tc ingress: decapsulated traffic from peers. */
SEC("tc")
int overlay_ingress(struct __sk_buff *skb)
{
	struct pw_pkt pkt;

	pw_pkt_init(&pkt, skb, PW_DIR_INGRESS);
	return pw_verdict(skb, &pkt, pw_overlay_ingress(skb, &pkt));
}

/* tc egress: the tunnel key for host-originated traffic. Not through
 * pw_verdict: passing on to the encapsulation is not "to the host stack". */
SEC("tc")
int overlay_egress(struct __sk_buff *skb)
{
	struct pw_pkt pkt;
	int ret;

	pw_pkt_init(&pkt, skb, PW_DIR_EGRESS);
	ret = pw_overlay_egress(skb, &pkt);
	return ret < 0 ? pw_drop(skb, &pkt, ret) : ret;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
