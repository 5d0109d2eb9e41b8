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

#endif
