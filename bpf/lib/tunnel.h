/* SPDX-License-Identifier: Apache-2.0 */
/* Who may put packets into this node's pods through the tunnel. A tunnel
 * packet is only as trustworthy as its sender: the anti-spoofing of its
 * inner packet happened on the sender's node, so the sender must be one of
 * the cluster's nodes. A pod (its packets to a node IP on the VXLAN port
 * are plain UDP) or any other host of the node network could otherwise
 * wrap any inner packet, any source address, for any pod. Checked on both
 * receive paths: the uplink's BPF decapsulation (outer header) and
 * pw_vxlan's ingress (the tunnel metadata the kernel left). The trust model
 * is in docs/datapath.md "Trust". */
#ifndef PW_BPF_TUNNEL_H
#define PW_BPF_TUNNEL_H

#include "common.h"
#include "config.h"
#include "peer.h"

/* outer_saddr: the tunnel's remote end; vni as in the VXLAN header (24
 * bits, host order). 0 or a drop reason. One pw_nodes lookup. */
static __always_inline int pw_tunnel_sender_check(__be32 outer_saddr, __u32 vni)
{
	if (!pw_is_peer_node(outer_saddr))
		return PW_DROP_TUNNEL_FOREIGN_SOURCE;
	if (vni != PW_VXLAN_VNI)
		return PW_DROP_TUNNEL_BAD_VNI;
	return 0;
}

/* The inner packet of a peer's tunnel packet never comes from one of our
 * own pods: they send from here, never through a peer. */
static __always_inline int pw_tunnel_inner_check(__be32 inner_saddr)
{
	return pw_in_pod_cidr(inner_saddr) ? PW_DROP_FORGED_POD_SOURCE : 0;
}

#endif
