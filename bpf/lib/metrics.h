/* SPDX-License-Identifier: Apache-2.0 */
/* Per-CPU packet/byte counters per outcome slot and direction. */
#ifndef PW_BPF_METRICS_H
#define PW_BPF_METRICS_H

#include "common.h"
#include "maps.h"

/* slot: a pw_metric_slot, or -reason for a drop. bytes: skb->len, the frame
 * including its Ethernet header. Per-CPU, so plain increments suffice. */
static __always_inline void pw_metrics_count(__u32 slot, __u8 dir, __u32 bytes)
{
	struct pw_metric *m = bpf_map_lookup_elem(&pw_metrics, &slot);
	struct pw_counter *c;

	if (!m)
		return;
	c = dir == PW_DIR_INGRESS ? &m->ingress : &m->egress;
	c->packets++;
	c->bytes += bytes;
}

#endif
