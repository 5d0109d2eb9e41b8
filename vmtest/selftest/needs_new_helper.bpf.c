// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runner self-test, never part of the product: a tc program that calls
 * bpf_cgrp_storage_get (helper #210) on a BPF_MAP_TYPE_CGRP_STORAGE map.
 * Both arrived in Linux 6.2 (helper #209, bpf_user_ringbuf_drain, is the
 * last one 6.1 knows), and the helper is offered to every program type
 * through bpf_base_func_proto, so tc programs may call it. The object must
 * therefore fail to load on the 6.1 kernel of the matrix and load on 6.12:
 * if it loads on both (or on neither), the matrix is not booting the kernels
 * it claims to, and vmtest/run.sh fails. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} pwvm_cgrp_seen SEC(".maps");

SEC("tc")
int needs_new_helper(struct __sk_buff *skb __attribute__((unused)))
{
	/* The cgroup argument may be NULL since 6.4 (ARG_PTR_TO_BTF_ID_OR_NULL);
	 * a tc program has no trusted cgroup pointer without kfuncs, and NULL
	 * keeps the test about the helper alone. The helper then returns NULL. */
	__u64 *seen = bpf_cgrp_storage_get(&pwvm_cgrp_seen, NULL, 0, 0);

	if (seen)
		(*seen)++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
