/* SPDX-License-Identifier: Apache-2.0 */
/* The one flow hash of the datapath: the 5-tuple mixed with fixed
 * constants only (murmur3's finalizer), so every node computes the same
 * value for a flow: Maglev sends it to the same backend everywhere, and
 * masquerade asks for the same port first when a flow's entry was lost. */
#ifndef PW_BPF_HASH_H
#define PW_BPF_HASH_H

#include "common.h"

static __always_inline __u32 pw_tuple_hash(__be32 saddr, __be32 daddr, __u16 sport, __u16 dport, __u8 proto)
{
	__u32 h = saddr * 0x9e3779b1u ^ daddr;

	h ^= ((__u32)sport << 16 | dport) * 0xcc9e2d51u + proto;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

#endif
