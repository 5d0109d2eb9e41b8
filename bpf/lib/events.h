/* SPDX-License-Identifier: Apache-2.0 */
/* Drop and trace events into the pw_events ring buffer. Off by default:
 * unless pw_settings says someone listens, the cost is one array lookup,
 * never a ring buffer reservation. */
#ifndef PW_BPF_EVENTS_H
#define PW_BPF_EVENTS_H

#include "common.h"
#include "maps.h"

static __always_inline const struct pw_settings *pw_settings_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pw_settings, &zero);
}

static __always_inline void pw_event_emit(const struct __sk_buff *skb, const struct pw_pkt *pkt, __u8 type,
					  __u8 point, __s32 reason, __u32 target_ifindex)
{
	struct pw_event *ev = bpf_ringbuf_reserve(&pw_events, sizeof(*ev), 0);

	if (!ev)
		return; /* reader too slow: losing an event beats stalling packets */
	ev->ts_ns = bpf_ktime_get_ns();
	ev->type = type;
	ev->dir = pkt->dir;
	ev->proto = pkt->proto;
	ev->point = point;
	ev->reason = reason;
	ev->ifindex = pkt->ifindex;
	ev->target_ifindex = target_ifindex;
	__builtin_memcpy(ev->saddr, &pkt->saddr, 4);
	__builtin_memcpy(ev->daddr, &pkt->daddr, 4);
	ev->sport = pkt->sport;
	ev->dport = pkt->dport;
	ev->len = skb->len;
	__builtin_memcpy(ev->nexthop, &pkt->nexthop, 4);
	__builtin_memcpy(ev->nat_addr, &pkt->nat_addr, 4);
	ev->nat_port = pkt->nat_port;
	ev->pad = 0;
	ev->policy_id = pkt->policy_id;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void pw_event_drop(const struct __sk_buff *skb, const struct pw_pkt *pkt, int reason)
{
	const struct pw_settings *s = pw_settings_get();

	if (!s || !s->drop_events)
		return;
	pw_event_emit(skb, pkt, PW_EVENT_DROP, 0, reason, 0);
}

/* A trace is emitted when tracing is on, the packet matches the address
 * filter (source or destination, 0.0.0.0 = any) and it wins the 1-in-N draw. */
static __always_inline void pw_event_trace(const struct __sk_buff *skb, const struct pw_pkt *pkt, __u8 point,
					   __u32 target_ifindex)
{
	const struct pw_settings *s = pw_settings_get();
	__be32 filter;
	__u32 sample;

	if (!s || !s->trace_events)
		return;
	filter = *(const __be32 *)s->trace_addr;
	if (filter && filter != pkt->saddr && filter != pkt->daddr)
		return;
	sample = s->trace_sample;
	if (sample > 1 && bpf_get_prandom_u32() % sample)
		return;
	pw_event_emit(skb, pkt, PW_EVENT_TRACE, point, 0, target_ifindex);
}

#endif
