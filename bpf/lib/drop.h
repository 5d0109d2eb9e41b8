/* SPDX-License-Identifier: Apache-2.0 */
/* The single exit for every drop and the entry points' verdict. Handlers
 * return a TC_ACT_* verdict (>= 0) or a negative enum pw_drop_reason; only
 * pw_verdict turns a reason into TC_ACT_SHOT, so no drop goes uncounted. */
#ifndef PW_BPF_DROP_H
#define PW_BPF_DROP_H

#include "common.h"
#include "metrics.h"
#include "events.h"

static __always_inline int pw_drop(struct __sk_buff *skb, const struct pw_pkt *pkt, int reason)
{
	__u32 slot = -reason;

	if (slot >= PW_DROP_REASON_COUNT)
		slot = -PW_DROP_UNSUPPORTED; /* a bug, but still a counted drop */
	pw_metrics_count(slot, pkt->dir, skb->len);
	pw_event_drop(skb, pkt, reason);
	return TC_ACT_SHOT;
}

/* Count what goes to the host stack; redirects were counted where they were
 * decided (they know whether it was forwarding or an ARP reply). */
static __always_inline int pw_verdict(struct __sk_buff *skb, const struct pw_pkt *pkt, int ret)
{
	if (ret < 0)
		return pw_drop(skb, pkt, ret);
	if (ret == TC_ACT_OK) {
		pw_metrics_count(PW_METRIC_PASSED, pkt->dir, skb->len);
		pw_event_trace(skb, pkt, PW_TRACE_TO_STACK, 0);
	}
	return ret;
}

#endif
