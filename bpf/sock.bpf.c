// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket load balancing on the cgroup v2 root. Logic in lib/sock.h. */
#include "lib/common.h"
#include "lib/sock.h"

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return pw_sock_forward(ctx, 1);
}

/* Unconnected UDP: every datagram is translated on its own. */
SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return pw_sock_forward(ctx, 0);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return pw_sock_reverse(ctx);
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	return pw_sock_reverse(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
