/* SPDX-License-Identifier: Apache-2.0 */
/* The node/peer table: which node owns a pod address, which addresses are
 * nodes. Both filled by the agent from the node config's peers. */
#ifndef PW_BPF_PEER_H
#define PW_BPF_PEER_H

#include "common.h"
#include "config.h"
#include "maps.h"

/* The peer whose pod CIDR holds addr (longest prefix), or NULL. */
static __always_inline const struct pw_peer *pw_peer_lookup(__be32 addr)
{
	struct pw_peer_key key = { .prefixlen = 32 };

	__builtin_memcpy(key.addr, &addr, 4);
	return bpf_map_lookup_elem(&pw_peers, &key);
}

/* This node or a peer node: traffic to it is cluster-internal. The own
 * address counts even before the agent wrote it into pw_nodes. */
static __always_inline int pw_is_node_ip(__be32 addr)
{
	struct pw_ip4 key;

	if (addr == cfg_node_ip)
		return 1;
	__builtin_memcpy(key.addr, &addr, 4);
	return bpf_map_lookup_elem(&pw_nodes, &key) != NULL;
}

/* One of the other nodes of the cluster: the only senders of tunnel
 * packets. This node's own address never comes in from the wire. */
static __always_inline int pw_is_peer_node(__be32 addr)
{
	const struct pw_node *node;
	struct pw_ip4 key;

	if (addr == cfg_node_ip)
		return 0;
	__builtin_memcpy(key.addr, &addr, 4);
	node = bpf_map_lookup_elem(&pw_nodes, &key);
	return node && !(node->flags & PW_NODE_F_SELF);
}

#endif
