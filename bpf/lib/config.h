/* SPDX-License-Identifier: Apache-2.0 */
/* Per-node constants. The agent sets them through the skeleton's rodata
 * (skel->rodata->cfg_*) before load, so the verifier sees them as known
 * values and prunes the branches a node does not use. The names are an
 * interface with userspace. All IPv4 values are __be32 exactly as they
 * appear in packets (masks too), so `addr & mask` works without swapping.
 * A zero mask means "not configured": nothing matches it. */
#ifndef PW_BPF_CONFIG_H
#define PW_BPF_CONFIG_H

#include "common.h"

const volatile __be32 cfg_gateway_ip   = 0; /* the pods' gateway, first address of the pod CIDR */
const volatile __be32 cfg_node_ip      = 0; /* the node's uplink address */
const volatile __be32 cfg_pod_cidr     = 0; /* this node's pod CIDR, network address */
const volatile __be32 cfg_pod_mask     = 0;
const volatile __be32 cfg_cluster_cidr = 0; /* all nodes' pod CIDRs together */
const volatile __be32 cfg_cluster_mask = 0;
const volatile __be32 cfg_service_cidr = 0; /* ClusterIPs live here; mask 0 = unknown: look every address up */
const volatile __be32 cfg_service_mask = 0;
/* Cross-node paths. Host byte order: these are not packet fields. */
const volatile __u32 cfg_routing_mode    = 0; /* enum pw_routing_mode: PW_MODE_NATIVE or PW_MODE_VXLAN */
const volatile __u32 cfg_overlay_ifindex = 0; /* the pw_vxlan device (VXLAN mode), 0 in native mode */
const volatile __u32 cfg_masquerade      = 0; /* non-zero: SNAT pods' traffic to outside the cluster */
/* Entries of the Maglev tables the agent builds (its Maglev M, a prime): the
 * BPF side cannot read an inner map's size, so the agent says it. */
const volatile __u32 cfg_maglev_m        = PW_MAGLEV_M;
/* Non-zero in the pod object of a node whose pods have netkit devices: its
 * program runs at the netkit hook (the pod's transmit), where
 * bpf_redirect_peer is refused. Zero in every other object (tc hooks). */
const volatile __u32 cfg_netkit_hook     = 0;

static __always_inline int pw_in_pod_cidr(__be32 addr)
{
	return cfg_pod_mask && (addr & cfg_pod_mask) == cfg_pod_cidr;
}

/* Whether addr may be a ClusterIP: pod-to-pod traffic then skips the
 * frontend lookup (the agent only accepts VIPs inside the service CIDR). */
static __always_inline int pw_in_service_cidr(__be32 addr)
{
	return (addr & cfg_service_mask) == cfg_service_cidr;
}

static __always_inline int pw_in_cluster_cidr(__be32 addr)
{
	return cfg_cluster_mask && (addr & cfg_cluster_mask) == cfg_cluster_cidr;
}

#endif
