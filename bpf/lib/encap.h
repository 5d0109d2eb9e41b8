/* SPDX-License-Identifier: Apache-2.0 */
/* VXLAN: the datapath only chooses the tunnel's remote end; the agent's
 * collect-metadata VXLAN device (pw_vxlan, "external") builds the outer
 * headers from the tunnel key attached to the skb. */
#ifndef PW_BPF_ENCAP_H
#define PW_BPF_ENCAP_H

#include "common.h"
#include "config.h"

#define PW_TUNNEL_TTL 64

/* Attach the tunnel key: outer destination node_ip, VNI PW_VXLAN_VNI,
 * outer source our node IP, whatever address the route towards node_ip
 * would prefer: peers accept tunnel packets only from node IPs (tunnel.h).
 * 0 or a negative errno from the helper. */
static __always_inline long pw_encap_set_key(struct __sk_buff *skb, __be32 node_ip)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = bpf_ntohl(node_ip); /* the helper wants host order */
	key.local_ipv4 = bpf_ntohl(cfg_node_ip);
	key.tunnel_id = PW_VXLAN_VNI;
	key.tunnel_ttl = PW_TUNNEL_TTL;
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0);
}

/* The tunnel key already attached to the skb (by pod_ingress before it
 * redirected here), if any: 1 and its remote in *node_ip, else 0. */
static __always_inline int pw_encap_get_key(struct __sk_buff *skb, __be32 *node_ip)
{
	struct bpf_tunnel_key key = {};

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) != 0)
		return 0;
	*node_ip = bpf_htonl(key.remote_ipv4);
	return 1;
}

#endif
