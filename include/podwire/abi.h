/* SPDX-License-Identifier: Apache-2.0 */
/* Map keys and values shared by bpf/ and userspace/. The one definition.
 *
 * Addresses are byte arrays so `bpftool map dump` prints them as
 * [10,244,1,2] instead of one opaque decimal; MACs likewise. All multi-byte
 * integers that are not addresses are host byte order unless named *_be. */
#ifndef PODWIRE_ABI_H
#define PODWIRE_ABI_H

#ifdef __bpf__
#include <linux/types.h>
#else
#include <linux/types.h>
#include <assert.h>
#endif

#define PW_ETH_ALEN 6

/* Map names, as pinned under /sys/fs/bpf/podwire/<instance>/. At most 15 chars. */
#define PW_MAP_ENDPOINTS   "pw_endpoints"
#define PW_MAP_EP_BY_IFIDX "pw_ep_ifindex"
#define PW_MAP_METRICS     "pw_metrics"
#define PW_MAP_EVENTS      "pw_events"
#define PW_MAP_SETTINGS    "pw_settings"
#define PW_MAP_PEERS       "pw_peers"
#define PW_MAP_NODES       "pw_nodes"      /* node IPs of this node and its peers: never masqueraded */
#define PW_MAP_SNAT        "pw_snat"       /* masquerade translations, both directions */

/* Service load balancing (architecture §5, §6). */
#define PW_MAP_SERVICES    "pw_services"   /* frontend -> service */
#define PW_MAP_SLOTS       "pw_svc_slots"  /* (service, slot) -> backend id */
#define PW_MAP_BACKENDS    "pw_backends"   /* backend id -> address */
#define PW_MAP_REVNAT      "pw_revnat"     /* service id -> frontend, for replies */
#define PW_MAP_MAGLEV      "pw_maglev"     /* service id -> Maglev table (inner array of backend ids) */
#define PW_MAP_AFFINITY    "pw_affinity"   /* (service, client IP) -> backend, ClientIP affinity */
#define PW_MAP_CT          "pw_ct"         /* conntrack */
#define PW_MAP_BACKEND_PORTS "pw_backend_ports" /* bitmap of every port a backend listens on */
#define PW_MAP_NP_ADDRS    "pw_np_addrs"   /* this node's addresses that serve NodePorts */

/* Programs, pinned under <pin dir>/progs/. */
#define PW_PROG_POD    "pod_ingress"   /* host side of each pod veth, tc ingress */
#define PW_PROG_UPLINK "uplink_ingress" /* node uplink, tc ingress */
#define PW_PROG_UPLINK_EGRESS  "uplink_egress"   /* node uplink, tc egress: masquerade */
#define PW_PROG_OVERLAY        "overlay_ingress" /* VXLAN device, tc ingress: decapsulated traffic to pods */
#define PW_PROG_OVERLAY_EGRESS "overlay_egress"  /* VXLAN device, tc egress: tunnel key for host-originated traffic */

/* The overlay: one collect-metadata VXLAN device per node, created by the agent. */
#define PW_VXLAN_DEV  "pw_vxlan"
#define PW_VXLAN_PORT 8472
#define PW_VXLAN_VNI  1
#define PW_VXLAN_OVERHEAD 50   /* outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 */

/* Masquerade source ports on the node IP. */
#define PW_SNAT_PORT_MIN 32768
#define PW_SNAT_PORT_MAX 60999
#define PW_MAX_SNAT      65536

enum pw_routing_mode {
	PW_MODE_NATIVE = 0,
	PW_MODE_VXLAN  = 1,
};

/* Default map sizes (agent flags override). */
#define PW_MAX_ENDPOINTS 4096
#define PW_MAX_PEERS     1024
#define PW_MAX_NODES     1024   /* pw_nodes: this node and its peers */

struct pw_ip4 {
	__u8 addr[4];
};

/* pw_endpoints: pod IP -> endpoint; pw_ep_ifindex: host veth ifindex -> endpoint. */
struct pw_endpoint {
	__u32 ifindex;              /* host-side veth */
	__u8  ip[4];                /* pod IP */
	__u8  mac[PW_ETH_ALEN];     /* pod eth0 MAC */
	__u8  host_mac[PW_ETH_ALEN];/* host-side veth MAC: the gateway MAC the pod sees */
	__u16 id;                   /* node-local endpoint id (IPAM offset in the pod CIDR) */
	__u16 flags;                /* PW_EP_F_* */
};

enum pw_endpoint_flags {
	PW_EP_F_NONE = 0,
	PW_EP_F_NO_SOCK_LB = 1,     /* the pod opted out of socket load balancing (CNI_ARGS
	                             * PODWIRE_SOCKET_LB=false): its connect() to a service
	                             * is left alone, the per-packet path translates */
};

/* pw_peers (LPM trie): a peer node's pod CIDR -> that node. */
struct pw_peer_key {
	__u32 prefixlen;            /* LPM trie convention: bits of addr that count */
	__u8  addr[4];
};

struct pw_peer {
	__u8  node_ip[4];
	__u32 flags;
};

/* pw_nodes (hash): node IP -> flags. */
struct pw_node {
	__u32 flags;                /* PW_NODE_F_* */
};
enum pw_node_flags {
	PW_NODE_F_SELF = 1,
};

/* pw_np_addrs (hash): an address of this node's network namespace that
 * serves NodePorts (every address but loopback, or those inside
 * --nodeport-addresses) -> the interface holding it. Kept in step with the
 * kernel's addresses by the agent (npaddr.c). */
#define PW_MAX_NP_ADDRS 256
struct pw_np_addr {
	__u32 ifindex;
};

/* pw_snat (LRU hash): a flow as seen on the wire -> the address/port to
 * rewrite to. Egress key: (pod IP, pod port, remote IP, remote port) ->
 * (node IP, allocated port); ingress key: (remote IP, remote port, node IP,
 * allocated port) -> (pod IP, pod port). ICMP echo uses the identifier as port. */
struct pw_nat_key {
	__u8  saddr[4];
	__u8  daddr[4];
	__u16 sport;                /* host byte order */
	__u16 dport;
	__u8  proto;
	__u8  dir;                  /* pw_dir of the packet this key matches */
	__u16 pad;
};

struct pw_nat_entry {
	__u8  addr[4];              /* rewrite to */
	__u16 port;                 /* host byte order */
	__u16 flags;                /* PW_NAT_F_* (was padding: 0 for masquerade) */
	__u64 last_seen_ns;         /* bpf_ktime_get_ns(): the agent expires idle entries */
};

enum pw_nat_flags {
	PW_NAT_F_NODEPORT = 1,      /* SNAT of a NodePort flow to a remote backend: translated
	                             * back even when the node does not masquerade */
	PW_NAT_F_HOST     = 2,      /* the node's own flow from a port in the masquerade range:
	                             * the port is claimed so no pod flow takes it (moved only
	                             * if a pod flow to the same remote had it first) */
	PW_NAT_F_INBOUND  = 4,      /* egress key of the replies to a flow a remote outside the
	                             * cluster opened to a pod by its address: not translated */
};

/* Default sizes (agent flags override): >= 10,000 services with a NodePort
 * each, >= 100,000 backends, 512k conntrack entries. */
#define PW_MAX_SERVICES   32768     /* frontends: ClusterIP and NodePort each count one */
#define PW_MAX_BACKENDS   131072
#define PW_MAX_SLOTS      262144
#define PW_MAX_CT         524288
#define PW_MAX_AFFINITY   65536
#define PW_MAX_MAGLEV     4096      /* services using Maglev */
#define PW_MAGLEV_M       1021      /* default Maglev table size (a prime) */
#define PW_NODEPORT_MIN   30000
#define PW_NODEPORT_MAX   32767

enum pw_svc_scope {
	PW_SVC_CLUSTERIP = 0,       /* addr = the VIP */
	PW_SVC_NODEPORT  = 1,       /* addr = 0.0.0.0: any IP of this node */
	PW_SVC_HOSTPORT  = 2,       /* a pod's hostPort (CNI portMappings): addr = the hostIP, or
	                             * 0.0.0.0 for any address of this node; one backend */
};

/* hostPort frontends are the CNI plugin's, not the service reconciler's:
 * their service and backend ids live above the reconciler's range, one
 * block of PW_HOSTPORT_PER_EP per endpoint id (id = BASE + ep id * PER_EP
 * + the mapping's index), so the plugin needs no allocator and DEL finds
 * every entry of a pod from its endpoint id (docs/services.md, "hostPort"). */
#define PW_HOSTPORT_ID_BASE (1u << 24)  /* reconciler ids are [1, BASE) */
#define PW_HOSTPORT_PER_EP  128         /* port mappings of one pod, at most */
#define PW_HOSTPORT_ID_END  (PW_HOSTPORT_ID_BASE + 65536u * PW_HOSTPORT_PER_EP)

enum pw_lb_algorithm {
	PW_LB_RANDOM = 0,
	PW_LB_MAGLEV = 1,
};

/* pw_services key: a frontend. */
struct pw_svc_key {
	__u8  addr[4];
	__u16 port;                 /* host byte order */
	__u8  proto;                /* IPPROTO_TCP / IPPROTO_UDP */
	__u8  scope;                /* pw_svc_scope */
};

struct pw_svc {
	__u32 id;                   /* service id: key of pw_svc_slots, pw_revnat, pw_maglev, pw_affinity */
	__u16 backends;             /* active slots 0..backends-1 in pw_svc_slots */
	__u8  algorithm;            /* pw_lb_algorithm */
	__u8  flags;
	__u32 affinity_timeout;     /* seconds; 0 = no ClientIP affinity */
	__u32 pad;
};

struct pw_slot_key {
	__u32 svc_id;
	__u32 slot;
};

struct pw_backend {
	__u8  addr[4];
	__u16 port;                 /* host byte order */
	__u8  state;                /* pw_backend_state */
	__u8  pad;
};

enum pw_backend_state {
	PW_BACKEND_ACTIVE      = 0,
	PW_BACKEND_TERMINATING = 1, /* existing flows keep it, new ones never pick it */
};

/* pw_backend_ports (array of PW_BACKEND_PORT_WORDS __u64): bit (port % 64)
 * of word (port / 64) is set once any backend has listened on that port.
 * Only a packet from such a port can be a reply of a load-balanced flow, so
 * every other packet into a pod skips the conntrack lookup (which, for a
 * new connection, is a cache miss in a table of half a million buckets).
 * The agent sets bits before it writes the backends and never clears them
 * while it runs: a flow conntrack still pins may outlive its backend. */
#define PW_BACKEND_PORT_WORDS (65536 / 64)

struct pw_revnat {
	__u8  addr[4];              /* the frontend the client used */
	__u16 port;
	__u16 pad;
};

struct pw_affinity_key {
	__u32 svc_id;
	__u8  client[4];
};

struct pw_affinity {
	__u32 backend_id;
	__u32 pad;
	__u64 last_used_ns;
};

/* pw_ct (hash, BPF_F_NO_PREALLOC: a full table refuses new flows instead of
 * evicting established ones; the agent deletes expired entries): one entry
 * per direction of a load-balanced flow. Forward key: the packet as the
 * client sent it (client, frontend). Reply key: the packet as the backend
 * sends it (backend, client; hairpin: backend, cfg_gateway_ip). */
struct pw_ct_key {
	__u8  saddr[4];
	__u8  daddr[4];
	__u16 sport;                /* host byte order */
	__u16 dport;
	__u8  proto;
	__u8  dir;                  /* PW_CT_FORWARD (client -> frontend) / PW_CT_REPLY (backend -> client) */
	__u16 pad;
};

enum pw_ct_dir { PW_CT_FORWARD = 0, PW_CT_REPLY = 1 };

enum pw_ct_state {
	PW_CT_NEW         = 0,      /* SYN seen (or first UDP packet) */
	PW_CT_ESTABLISHED = 1,
	PW_CT_CLOSING     = 2,      /* FIN seen */
	PW_CT_CLOSED      = 3,      /* RST seen, or both FINs */
};

struct pw_ct_entry {
	__u64 last_seen_ns;         /* bpf_ktime_get_ns(): the agent expires by state timeout */
	__u32 svc_id;               /* -> pw_revnat for replies */
	__u32 backend_id;
	__u8  state;                /* pw_ct_state, the same in both entries of a flow */
	__u8  tcp_flags;            /* TCP flags seen so far in this entry's direction */
	__u16 fe_port;              /* NodePort flows: the node port (host order), else 0 */
	__u8  flags;                /* PW_CT_F_* */
	__u8  pad;
	__u16 pad2;
	__u8  fe_addr[4];           /* NodePort flows: the node address the client used, else 0 */
	__u32 pad3;
};

enum pw_ct_flags {
	PW_CT_F_NODEPORT = 1,       /* frontend = fe_addr:fe_port (not pw_revnat) */
	PW_CT_F_HAIRPIN  = 2,       /* client == backend: its source is cfg_gateway_ip towards the pod */
	PW_CT_F_SNAT     = 4,       /* NodePort to a remote backend: source also SNATed (pw_snat) */
};

/* pw_metrics (per-CPU array): slot = -reason for drops, or a pw_metric_slot. */
struct pw_counter {
	__u64 packets;
	__u64 bytes;
};

struct pw_metric {
	struct pw_counter egress;   /* leaving a local pod */
	struct pw_counter ingress;  /* arriving from the uplink, overlay or host */
};

enum pw_dir {
	PW_DIR_EGRESS  = 0,
	PW_DIR_INGRESS = 1,
};

/* pw_settings (array, one entry): runtime switches flipped by podwirectl. */
struct pw_settings {
	__u32 drop_events;          /* non-zero: emit a pw_event for every drop */
	__u32 trace_events;         /* non-zero: emit a pw_event for forwarded packets too */
	__u8  trace_addr[4];        /* 0.0.0.0 = all; else only packets from/to this IP */
	__u32 trace_sample;         /* emit 1 in N trace events (0 or 1 = all) */
};

/* pw_events (ring buffer) records. */
enum pw_event_type {
	PW_EVENT_DROP  = 1,
	PW_EVENT_TRACE = 2,
};

enum pw_trace_point {
	PW_TRACE_TO_POD   = 1,      /* redirected into a local pod */
	PW_TRACE_TO_STACK = 2,      /* handed to the host stack */
	PW_TRACE_TO_PEER  = 3,      /* sent to a peer node (native routing) */
	PW_TRACE_TO_TUNNEL= 4,      /* sent into the overlay */
	PW_TRACE_ARP_REPLY= 5,      /* ARP reply for the gateway sent back */
	PW_TRACE_MASQUERADE = 6,    /* source rewritten to the node IP, on to the uplink */
};

struct pw_event {
	__u64 ts_ns;                /* bpf_ktime_get_ns() */
	__u8  type;                 /* pw_event_type */
	__u8  dir;                  /* pw_dir */
	__u8  proto;                /* IP protocol, 0 if not IP */
	__u8  point;                /* pw_trace_point for traces, 0 for drops */
	__s32 reason;               /* pw_drop_reason for drops, 0 for traces */
	__u32 ifindex;              /* where the packet was seen */
	__u32 target_ifindex;       /* where it was redirected to (traces), else 0 */
	__u8  saddr[4];
	__u8  daddr[4];
	__u16 sport;                /* host byte order; 0 when not TCP/UDP */
	__u16 dport;
	__u32 len;                  /* skb->len */
	__u8  nexthop[4];           /* TO_PEER: the FIB next hop (the peer's node IP, or the
	                             * gateway towards it); TO_TUNNEL: the peer's node IP (the
	                             * tunnel's remote); else 0.0.0.0 */
	__u8  nat_addr[4];          /* MASQUERADE: the new source (node IP); TO_POD after a
	                             * reverse translation: the new destination (pod IP); else 0 */
	__u16 nat_port;             /* host byte order, with nat_addr: the new port (ICMP: echo id) */
	__u16 pad;
	__u32 policy_id;            /* policy-denied drops: the policy that selected the pod
	                             * (docs/policy.md), 0 = several (default deny); else 0 */
};

/* ---- Socket load balancing (bpf/sock.bpf.c, docs/datapath.md) ----
 * The cgroup programs translate at connect()/sendmsg() time; what the
 * application must see instead of the backend (recvmsg, getpeername) is
 * remembered per socket: (socket cookie, backend) -> frontend. */
#define PW_MAP_SOCK_REVNAT "pw_sock_revnat"
#define PW_MAX_SOCK_REVNAT 65536
#define PW_PROG_SOCK_CONNECT4     "sock_connect4"     /* cgroup/connect4 */
#define PW_PROG_SOCK_SENDMSG4     "sock_sendmsg4"     /* cgroup/sendmsg4 */
#define PW_PROG_SOCK_RECVMSG4     "sock_recvmsg4"     /* cgroup/recvmsg4 */
#define PW_PROG_SOCK_GETPEERNAME4 "sock_getpeername4" /* cgroup/getpeername4 */

struct pw_sock_rev_key {
	__u64 cookie;               /* bpf_get_socket_cookie of the client's socket */
	__u8  addr[4];              /* the backend it was sent to */
	__u16 port;                 /* host order, like every port in these maps */
	__u16 pad;
};

struct pw_sock_rev {
	__u8  addr[4];              /* the frontend the application asked for */
	__u16 port;
	__u16 pad;
};

/* pw_sock_conn (socket local storage): a connect()ed socket's translation,
 * freed with the socket. */
struct pw_sock_conn {
	__u8  backend[4];           /* what the socket is connected to */
	__u16 backend_port;         /* host order */
	__u16 pad;
	struct pw_sock_rev frontend;
};

/* pw_sock_netns (hash): the network namespace cookie (SO_NETNS_COOKIE) of
 * each pod of this node -> the pod. The socket programs translate for a
 * namespace listed here (unless PW_EP_F_NO_SOCK_LB) besides the node's own.
 * Written by the CNI plugin with the endpoint, removed on DEL; the agent
 * removes entries whose endpoint is gone. Cookies are never reused, so a
 * stale entry matches no socket; it only takes room. */
#define PW_MAP_SOCK_NETNS "pw_sock_netns"

struct pw_sock_netns {
	__u8  ip[4];                /* the pod's IP: the client for ClientIP affinity */
	__u32 ifindex;              /* its host veth: with ip, which pw_endpoints entry it goes with */
	__u16 flags;                /* the endpoint's PW_EP_F_* */
	__u16 pad;
	__u32 pad2;
};


/* ---- NetworkPolicy (docs/policy.md, bpf/lib/policy.h) ---- */
#define PW_MAP_POL_IDS "pw_pol_ids"   /* LPM: pod IP /32 or ipBlock prefix -> identity */
#define PW_MAP_POL_EP  "pw_pol_ep"    /* array: local pod's slot -> enforcement per direction */
#define PW_MAP_POLICY  "pw_policy"    /* LPM: (pod, dir, proto, peer identity, port prefix) -> policy */
#define PW_MAP_POL_CT  "pw_pol_ct"    /* LRU: flows a policy check allowed */
#define PW_MAP_POL_GATE "pw_pol_gate" /* array, one entry: PW_POL_GATE_OPEN while pw_pol_ep is empty */
#define PW_MAP_POL_FRAG "pw_pol_frag" /* LRU: a fragmented datagram -> its ports, from its first fragment */
#define PW_MAX_POL_IDS    65536
/* pw_pol_ep is an array indexed by a local pod address's low 16 bits: an
 * inlined array lookup where a hash lookup cost ~35 ns a packet (docs/
 * policy.md). Unique per pod because a node's pod CIDR is at most a /16
 * (config.c, k8s_model.c refuse wider). */
#define PW_POL_EP_SLOT_BITS 16
#define PW_MAX_POL_EP       (1u << PW_POL_EP_SLOT_BITS)
#define PW_NODE_POD_CIDR_MIN_PREFIX (32 - PW_POL_EP_SLOT_BITS)
#define PW_MAX_POLICY     262144
#define PW_MAX_POL_CT     262144
#define PW_MAX_POL_FRAG   16384

enum pw_identity_reserved {
	PW_ID_ANY        = 0,          /* policy keys: any peer */
	PW_ID_HOST       = 1,          /* this node */
	PW_ID_WORLD      = 2,          /* no pod, no ipBlock prefix */
	PW_ID_FIRST_POD  = 256,
	PW_ID_FIRST_CIDR = 0x01000000,
};

/* pw_pol_gate's value. Zero (a new map) means "look in pw_pol_ep": the
 * datapath skips the policy lookups only when userspace has said no pod is
 * policed, never because the gate is missing or unwritten. */
enum pw_pol_gate_state {
	PW_POL_GATE_LOOK = 0,
	PW_POL_GATE_OPEN = 1,          /* pw_pol_ep is empty: nothing to check */
};

struct pw_pol_ids_key {
	__u32 prefixlen;
	__u8  addr[4];
};

struct pw_pol_ids_val {
	__u32 identity;
	__u32 pad;
};

enum pw_pol_ep_flags {
	PW_POL_F_INGRESS = 1,          /* default deny ingress: some policy selects the pod for ingress */
	PW_POL_F_EGRESS  = 2,
};

/* A slot of pw_pol_ep; all zero = no policed pod there. */
struct pw_pol_ep {
	__u32 flags;                   /* PW_POL_F_* */
	__u32 ingress_policy;          /* the one policy selecting it for ingress, 0 = several */
	__u32 egress_policy;
	__u8  ip[4];                   /* the pod owning the slot (the datapath compares it) */
};

/* LPM key: everything up to port is matched exactly (prefixlen >=
 * PW_POLICY_FIXED_BITS), the port by prefix (endPort ranges). */
struct pw_policy_key {
	__u32 prefixlen;
	__u8  pod[4];                  /* the local pod */
	__u8  dir;                     /* pw_dir: PW_DIR_INGRESS (to the pod) / PW_DIR_EGRESS */
	__u8  proto;                   /* IPPROTO_*, 0 = any protocol (then port /0) */
	__u16 pad;
	__u32 identity;                /* peer identity, PW_ID_ANY = any peer */
	__u8  port[2];                 /* big endian: a prefix of it is a port block */
	__u8  pad2[2];
};
#define PW_POLICY_FIXED_BITS 96      /* pod .. identity */

struct pw_policy_val {
	__u32 policy_id;               /* a policy allowing it (FNV-1a of "namespace/name") */
	__u32 pad;
};

/* pw_pol_ct: one entry per flow, found from either direction: the key
 * holds the flow's two ends in a fixed order (the lower address, then the
 * lower port, first), and the value says which checks let which
 * direction through. Both pods of a same-node flow are checked, so the
 * bits keep one pod's check from ever answering the other's. */
struct pw_pol_ct_key {
	__u8  addr_lo[4];              /* the lower end (address, then port) */
	__u8  addr_hi[4];
	__u16 port_lo;                 /* host order; ICMP echo: the id as in pw_l4 */
	__u16 port_hi;
	__u8  proto;
	__u8  pad[3];
};

/* Bit (sense * 2 + dir) of pw_pol_ct_val.allowed: sense 0 = a packet from
 * the lower end, 1 = from the higher end; dir = pw_dir of the check (whose
 * pod: the source's for egress, the destination's for ingress). */
#define PW_POL_CT_BIT(sense, dir) (1ull << ((sense) * 2 + (dir)))

struct pw_pol_ct_val {
	__u64 last_seen_ns;            /* bpf_ktime_get_coarse_ns(), refreshed at most once a second */
	__u64 allowed;                 /* PW_POL_CT_BIT()s of the checks that let it (64 bits:
	                                * atomic OR without -mcpu=v3) */
};

/* pw_pol_frag: a datagram is known by (source, destination, protocol, IP
 * id), the key the receiver reassembles it by (RFC 791); its first fragment
 * carries the ports, the later ones do not. */
struct pw_pol_frag_key {
	__u8  saddr[4];
	__u8  daddr[4];
	__be16 id;
	__u8  proto;
	__u8  pad;
};

struct pw_pol_frag_val {
	__u16 sport;                   /* host order, as in pw_l4 */
	__u16 dport;
};

/* Idle time after which a remembered flow no longer lets packets through
 * (it is checked against the policies again): TCP as conntrack's
 * established timeout, the rest as its UDP timeout. A TCP SYN is always
 * checked, so a closed connection's entry never lets a new one in. */
#define PW_POL_CT_TCP_S   21600
#define PW_POL_CT_OTHER_S 60

#ifndef __bpf__
static_assert(sizeof(struct pw_policy_key) == 20, "pw_policy_key layout");
static_assert(sizeof(struct pw_pol_ct_key) == 16, "pw_pol_ct_key layout");
static_assert(sizeof(struct pw_pol_ep) == 16, "pw_pol_ep layout");
static_assert(sizeof(struct pw_pol_ct_val) == 16, "pw_pol_ct_val layout");
static_assert(sizeof(struct pw_pol_frag_key) == 12, "pw_pol_frag_key layout");
static_assert(sizeof(struct pw_ip4) == 4, "pw_ip4 layout");
static_assert(sizeof(struct pw_endpoint) == 24, "pw_endpoint layout");
static_assert(sizeof(struct pw_peer_key) == 8, "pw_peer_key layout");
static_assert(sizeof(struct pw_peer) == 8, "pw_peer layout");
static_assert(sizeof(struct pw_metric) == 32, "pw_metric layout");
static_assert(sizeof(struct pw_settings) == 16, "pw_settings layout");
static_assert(sizeof(struct pw_event) == 56, "pw_event layout");
static_assert(sizeof(struct pw_nat_key) == 16, "pw_nat_key layout");
static_assert(sizeof(struct pw_nat_entry) == 16, "pw_nat_entry layout");
static_assert(sizeof(struct pw_node) == 4, "pw_node layout");
static_assert(sizeof(struct pw_svc_key) == 8, "pw_svc_key layout");
static_assert(sizeof(struct pw_svc) == 16, "pw_svc layout");
static_assert(sizeof(struct pw_slot_key) == 8, "pw_slot_key layout");
static_assert(sizeof(struct pw_backend) == 8, "pw_backend layout");
static_assert(sizeof(struct pw_revnat) == 8, "pw_revnat layout");
static_assert(sizeof(struct pw_affinity_key) == 8, "pw_affinity_key layout");
static_assert(sizeof(struct pw_affinity) == 16, "pw_affinity layout");
static_assert(sizeof(struct pw_ct_key) == 16, "pw_ct_key layout");
static_assert(sizeof(struct pw_ct_entry) == 32, "pw_ct_entry layout");
static_assert(sizeof(struct pw_np_addr) == 4, "pw_np_addr layout");
static_assert(sizeof(struct pw_sock_netns) == 16, "pw_sock_netns layout");
static_assert(sizeof(struct pw_sock_conn) == 16, "pw_sock_conn layout");
#else
_Static_assert(sizeof(struct pw_endpoint) == 24, "pw_endpoint layout");
_Static_assert(sizeof(struct pw_event) == 56, "pw_event layout");
#endif

#endif
