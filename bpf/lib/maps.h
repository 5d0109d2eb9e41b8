/* SPDX-License-Identifier: Apache-2.0 */
/* Every map of the datapath. Every object includes this one file, so their
 * definitions are identical and libbpf's pin-by-name reuse (under the pin
 * root the agent passes, /sys/fs/bpf/podwire/<instance>/) makes pod.bpf.o,
 * host.bpf.o and overlay.bpf.o share one set of maps. Layouts live in
 * include/podwire/abi.h; sizes are defaults the agent may change with
 * bpf_map__set_max_entries (on every object alike, or the reuse fails). */
#ifndef PW_BPF_MAPS_H
#define PW_BPF_MAPS_H

#include "common.h"

#define PW_EVENTS_BYTES (256 * 1024)

/* pod IP -> endpoint: "is this destination a pod on this node?" */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_ip4);
	__type(value, struct pw_endpoint);
	__uint(max_entries, PW_MAX_ENDPOINTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_endpoints SEC(".maps");

/* host-side veth ifindex -> endpoint: "which pod sent this?" */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pw_endpoint);
	__uint(max_entries, PW_MAX_ENDPOINTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_ep_ifindex SEC(".maps");

/* pod network namespace cookie -> pod: whose sockets the socket programs
 * (sock.h) translate besides the node's. Declared here, not in sock.h, so
 * that it exists whenever the datapath does: the CNI plugin writes it even
 * while socket load balancing is off, and a later agent with it on finds
 * every pod. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct pw_sock_netns);
	__uint(max_entries, PW_MAX_ENDPOINTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_sock_netns SEC(".maps");

/* slot (drop reason -N at N, or pw_metric_slot) -> per-direction counters */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct pw_metric);
	__uint(max_entries, PW_METRIC_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_metrics SEC(".maps");

/* runtime switches (events on/off, trace filter) written by podwirectl */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pw_settings);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_settings SEC(".maps");

/* struct pw_event records for `podwirectl monitor` */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PW_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_events SEC(".maps");

/* peer node pod CIDR -> peer node (filled by the agent; used by routing) */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pw_peer_key);
	__type(value, struct pw_peer);
	__uint(max_entries, PW_MAX_PEERS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_peers SEC(".maps");

/* node IP -> flags: this node and its peers. Never masqueraded towards. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_ip4);
	__type(value, struct pw_node);
	__uint(max_entries, PW_MAX_NODES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_nodes SEC(".maps");

/* this node's addresses that serve NodePorts -> their interface (written
 * by the agent from the kernel's address list, see struct pw_np_addr) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_ip4);
	__type(value, struct pw_np_addr);
	__uint(max_entries, PW_MAX_NP_ADDRS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_np_addrs SEC(".maps");

/* masquerade translations, one entry per direction of a flow (see
 * struct pw_nat_key). LRU: a full table forgets the idlest flows instead of
 * refusing new ones; the agent also expires entries by last_seen_ns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pw_nat_key);
	__type(value, struct pw_nat_entry);
	__uint(max_entries, PW_MAX_SNAT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_snat SEC(".maps");

/* ---- Service load balancing (written by userspace/lib/services.c, see
 * docs/services.md; read here by lb.h) ---- */

/* frontend (VIP or 0.0.0.0 for NodePort, port, proto, scope) -> service */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_svc_key);
	__type(value, struct pw_svc);
	__uint(max_entries, PW_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_services SEC(".maps");

/* (service id, slot 0..backends-1) -> backend id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_slot_key);
	__type(value, __u32);
	__uint(max_entries, PW_MAX_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_svc_slots SEC(".maps");

/* backend id -> address, port, state */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pw_backend);
	__uint(max_entries, PW_MAX_BACKENDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_backends SEC(".maps");

/* service id -> the ClusterIP frontend replies must come from */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pw_revnat);
	__uint(max_entries, PW_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_revnat SEC(".maps");

/* The inner map template of pw_maglev: one table of backend ids per Maglev
 * service. BPF_F_INNER_MAP lets the agent's tables have another size than
 * the template (the Maglev M it builds with, cfg_maglev_m here). */
struct pw_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, PW_MAGLEV_M);
	__uint(map_flags, BPF_F_INNER_MAP);
};

/* service id -> its Maglev table (built in userspace, swapped in whole) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, PW_MAX_MAGLEV);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct pw_maglev_inner);
} pw_maglev SEC(".maps");

/* (service id, client IP) -> backend: ClientIP session affinity. LRU: a
 * forgotten pin only costs the client its stickiness. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pw_affinity_key);
	__type(value, struct pw_affinity);
	__uint(max_entries, PW_MAX_AFFINITY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_affinity SEC(".maps");

/* Ports any backend listens on (include/podwire/abi.h): 8 KB, always in
 * cache, so asking it costs less than the conntrack lookup it saves. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PW_BACKEND_PORT_WORDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_backend_ports SEC(".maps");

/* Conntrack of load-balanced flows, both directions (struct pw_ct_key).
 * A plain hash, not an LRU: when it is full a new flow is refused
 * (PW_DROP_CT_FULL) and established flows keep their entries, where an
 * LRU would silently evict some established flow to make room. Not
 * preallocated: memory follows the flows. The agent deletes expired
 * entries (state + last_seen_ns). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pw_ct_key);
	__type(value, struct pw_ct_entry);
	__uint(max_entries, PW_MAX_CT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_ct SEC(".maps");

/* ---- NetworkPolicy (written by userspace/lib/policy.c, read by policy.h;
 * docs/policy.md) ---- */

/* pod IP /32 of every pod in the cluster, every ipBlock prefix -> identity */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pw_pol_ids_key);
	__type(value, struct pw_pol_ids_val);
	__uint(max_entries, PW_MAX_POL_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_pol_ids SEC(".maps");

/* a local pod's slot (its address's low PW_POL_EP_SLOT_BITS) -> default
 * deny per direction (an empty slot, or another pod's: not policed) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pw_pol_ep);
	__uint(max_entries, PW_MAX_POL_EP);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_pol_ep SEC(".maps");

/* PW_POL_GATE_OPEN while pw_pol_ep is empty (pw_policy_sync keeps it):
 * an array lookup the verifier inlines, instead of a hash lookup per
 * packet and direction on a node that polices no pod. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_pol_gate SEC(".maps");

/* (local pod, dir, proto, peer identity, port prefix) -> allowing policy */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pw_policy_key);
	__type(value, struct pw_policy_val);
	__uint(max_entries, PW_MAX_POLICY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_policy SEC(".maps");

/* Flows a policy check allowed (either end policed). LRU: lookups keep
 * busy flows; an evicted idle flow is simply checked again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pw_pol_ct_key);
	__type(value, struct pw_pol_ct_val);
	__uint(max_entries, PW_MAX_POL_CT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_pol_ct SEC(".maps");

/* The ports of fragmented datagrams to or from a policed pod, noted by the
 * first fragment's check for the later fragments (which carry none). LRU:
 * a datagram's fragments follow each other within moments. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pw_pol_frag_key);
	__type(value, struct pw_pol_frag_val);
	__uint(max_entries, PW_MAX_POL_FRAG);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pw_pol_frag SEC(".maps");

#endif
