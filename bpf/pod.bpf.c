// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Programs on the host side of every pod veth (one object per node, shared by
 * all pods: the endpoint is found by ingress ifindex). Logic in lib/pod.h. */
#include "lib/common.h"
#include "lib/drop.h"
#include "lib/pod.h"

SEC("tc")
int pod_ingress(struct __sk_buff *skb)
{
	struct pw_pkt pkt;

	pw_pkt_init(&pkt, skb, PW_DIR_EGRESS);
	return pw_verdict(skb, &pkt, pw_pod_egress(skb, &pkt));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
