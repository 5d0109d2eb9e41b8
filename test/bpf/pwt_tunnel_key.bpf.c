// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test only. BPF_PROG_TEST_RUN builds its skb without tunnel metadata, and
 * overlay_ingress trusts a frame only for the sender the kernel's VXLAN
 * receive left in it. This program attaches that metadata (the sender and
 * VNI userspace put in its .bss) and tail-calls the program under test
 * (slot 0 of pwt_next), which then runs on the skb as pw_vxlan would give
 * it. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pwt_next SEC(".maps");

__u32 pwt_sender; /* outer source, host byte order; 0: attach no metadata */
__u32 pwt_vni;

/* Verdicts no podwire program returns: the harness failed, not the test. */
#define PWT_NO_KEY    97
#define PWT_NO_TARGET 98

SEC("tc")
int with_tunnel_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};

	if (pwt_sender) {
		/* Receive metadata holds the sender as the key's source, which
		 * the set helper takes from local_ipv4 (and the get helper
		 * returns as remote_ipv4). */
		key.local_ipv4 = pwt_sender;
		key.tunnel_id = pwt_vni;
		if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0))
			return PWT_NO_KEY;
	}
	bpf_tail_call(skb, &pwt_next, 0);
	return PWT_NO_TARGET;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
