/* podwired: the node agent. One process per node (network namespace); it
 * loads, pins and attaches the datapath, publishes node.json for the CNI
 * plugin and reconciles node-level state from the config file. */
#ifndef PW_AGENT_H
#define PW_AGENT_H
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "datapath.h"
#include "paths.h"

struct pw_datapath;   /* loader.c: the open skeletons */
struct pw_nl;         /* netlink.h */
struct pw_snat_gc;    /* snat_gc.c */
struct pw_ct_gc;      /* ct_gc.c */
struct pw_services;   /* services.h: the service reconciler */
struct bpf_object;    /* libbpf */

/* Link pins under <pin dir>/links/ besides the uplink's (PW_LINK_UPLINK)
 * and the pods' (their host veth names). */
#define PW_LINK_UPLINK_EGRESS  "uplink_egress"   /* uplink tc egress: masquerade */
#define PW_LINK_OVERLAY        "overlay"         /* pw_vxlan tc ingress */
#define PW_LINK_OVERLAY_EGRESS "overlay_egress"  /* pw_vxlan tc egress */

/* rtm_protocol of the kernel routes the agent makes for peers (`ip route
 * show proto 112`): how it tells its own routes from everyone else's, to
 * remove stale ones after a restart and at uninstall. */
#define PW_RTPROT 112

#define PW_SNAT_TIMEOUT_DEFAULT 120   /* seconds idle before a TCP/UDP masquerade entry expires */
#define PW_SNAT_TIMEOUT_ICMP     30   /* ICMP: at most this */

/* Conntrack timeouts (seconds idle, by state), Cilium's defaults: TCP
 * established 6 h, TCP opening (SYN seen, no answer yet) 60 s, TCP closing
 * or closed (FIN/RST seen) 10 s, UDP (any state) 60 s. */
#define PW_CT_TIMEOUT_TCP       21600
#define PW_CT_TIMEOUT_TCP_SYN   60
#define PW_CT_TIMEOUT_TCP_CLOSE 10
#define PW_CT_TIMEOUT_UDP       60

/* Sizes of the load-balancing maps (--max-services etc.), applied to every
 * object that declares the map before load. 0 = the default from abi.h, or
 * the pinned map's size when one exists (a flag given explicitly must
 * match a pinned map: they cannot be resized in place). */
struct pw_lb_sizes {
	uint32_t services;   /* pw_services (frontends) and pw_revnat */
	uint32_t backends;   /* pw_backends */
	uint32_t slots;      /* pw_svc_slots */
	uint32_t ct;         /* pw_ct */
	uint32_t affinity;   /* pw_affinity */
	uint32_t maglev;     /* pw_maglev: services using Maglev */
	uint32_t maglev_m;   /* Maglev table size (prime); inner maps and cfg_maglev_m */
};

struct pw_ct_timeouts {
	int tcp, tcp_syn, tcp_close, udp;   /* seconds */
};

/* --nodeport-addresses / --nodeport-range: when set, they override
 * cluster.nodePortAddresses / nodePortRange of the config. */
struct pw_nodeport_flags {
	struct pw_cidr cidrs[PW_NODEPORT_CIDRS_MAX];
	int n_cidrs;
	bool cidrs_set, range_set;
	uint16_t range_min, range_max;
};

struct pw_agent {
	struct pw_paths paths;
	const char *config_path;
	struct pw_node_config cfg;     /* the config currently applied */
	enum pw_attach_mode mode;      /* uplink and overlay programs */
	enum pw_attach_mode pod_mode;  /* pod veths: tc unless --pod-attach tcx (see nodeinfo.h); netkit pods: netkit */
	/* Pod devices: --pod-device if given (has_pod_device_flag), else
	 * node.podDevice, else veth; resolved (never auto) at start. */
	enum pw_pod_device pod_device_flag;
	bool has_pod_device_flag;
	enum pw_pod_device pod_device;
	int uplink_ifindex;
	int pod_mtu;
	struct pw_datapath *dp;
	int lock_fd;                   /* flock on <state_dir>/agent.lock: one agent per instance */
	struct pw_nl *nl;              /* rtnetlink in the node's netns (pw_agent_nl), or NULL */
	int overlay_ifindex;           /* pw_vxlan in vxlan mode, else 0 */
	int snat_timeout;              /* --snat-timeout seconds (0 = default) */
	struct pw_snat_gc *snat_gc;    /* the masquerade expiry thread, or NULL */
	struct pw_lb_sizes lb;         /* map sizes as flags gave them (0 = default) */
	struct pw_ct_timeouts ct_timeout;
	struct pw_services *svc;       /* the service reconciler, NULL without service maps */
	struct pw_ct_gc *ct_gc;        /* the conntrack expiry thread, or NULL */
	struct pw_healthcheck *hc;     /* healthCheckNodePort listeners (healthcheck.c), or NULL */
	char svc_err[256];             /* why the last services apply failed, "" if it did not */
	/* The last reload's changes to fields only a restart applies: their
	 * names ("node.uplink, cluster.masquerade"), and why that restart
	 * would fail ("" if it would not). Published in applied.json. */
	char restart_pending[256];
	char restart_err[256];
	int log_level;                 /* enum pw_log_level of --log-level */
	bool socket_lb_off;            /* --socket-lb off: no cgroup hooks (socklb.c) */
	struct pw_nodeport_flags np_flags;
	struct pw_npaddr *npaddr;      /* the NodePort address thread (npaddr.c), or NULL */
	bool np_reserved_applied;      /* the range below was put in ip_local_reserved_ports (or tried) */
	uint16_t np_reserved_min, np_reserved_max;
	struct pw_netpol_state *netpol;/* what the policy maps hold (netpol.c), or NULL */
};

/* loader.c */
int pw_loader_start(struct pw_agent *a);
void pw_loader_close(struct pw_agent *a);
int pw_loader_map_fd(struct pw_agent *a, const char *name);
int pw_uninstall(const struct pw_paths *p, const char *config_path);

/* socklb.c: the socket load-balancing programs of obj (NULL: none, e.g.
 * --socket-lb off) on the cgroup v2 root, through links pinned in the
 * instance's links/ dir; an existing link gets the new program in place.
 * Never fatal: without cgroup v2 the per-packet path still works. */
void pw_socklb_attach(struct pw_agent *a, struct bpf_object *obj);
/* Removes pw_sock_netns entries of pods whose endpoint is gone (start-up
 * and every config reload). */
void pw_socklb_sweep(struct pw_agent *a);

/* node.c: the node's kernel settings and what the agent publishes */
int pw_node_check(const struct pw_node_config *cfg, int *uplink_ifindex);
int pw_node_setup(struct pw_agent *a);
int pw_agent_lock(struct pw_agent *a);

/* reconcile.c: apply the difference between two configs. old may be an
 * empty (zeroed) config at start-up: then everything in new is applied and
 * anything left in the maps from before a restart that new does not want is
 * removed. Fields that are baked into the loaded programs (node.*,
 * cluster.podCIDR) cannot change while running; a change is reported and
 * ignored until restart: new gets old's values for them, so new is what
 * actually runs. Returns 0 or -errno. */
int pw_reconcile(struct pw_agent *a, const struct pw_node_config *old,
		 struct pw_node_config *new);

/* overlay.c: the VXLAN device and the agent's netlink handle */
int pw_agent_nl(struct pw_agent *a, struct pw_nl **out);
/* vxlan mode: creates pw_vxlan (or reuses it after a restart), MTU = uplink
 * MTU - PW_VXLAN_OVERHEAD, up; sets a->overlay_ifindex. Before load: the
 * programs need its ifindex. */
int pw_overlay_setup(struct pw_agent *a);
/* native mode: removes a pw_vxlan left by a run in vxlan mode, and its link
 * pins. Nothing to do is success. */
int pw_overlay_remove(const struct pw_paths *p, struct pw_nl *nl);

/* routes.c: the kernel side of peers -- one route per peer pod CIDR
 * (native: via the peer's node IP on the uplink; vxlan: via the peer's
 * gateway on pw_vxlan, onlink, with a permanent neighbour entry), tagged
 * PW_RTPROT. Synced against what the kernel holds: only differences are
 * touched, stale ones (restart, removed peer) removed. */
int pw_routes_sync(struct pw_agent *a, const struct pw_node_config *cfg);
/* --uninstall: every PW_RTPROT route of the netns; the managed neighbour
 * entries on uplink_ifindex of the peers those routes went to and of the
 * peers in cfg (may be NULL). */
void pw_routes_uninstall(struct pw_nl *nl, const struct pw_node_config *cfg, int uplink_ifindex);

/* ct_gc.c: expires pw_ct entries by state and age every few seconds in a
 * thread (both entries of a flow together). */
int pw_ct_gc_start(struct pw_agent *a, int ct_fd);
void pw_ct_gc_stop(struct pw_agent *a);

/* healthcheck.c: answers the healthCheckNodePort of every
 * externalTrafficPolicy Local service in cfg with its local endpoint count. */
struct pw_healthcheck;
void pw_healthcheck_sync(struct pw_agent *a, const struct pw_node_config *cfg);
void pw_healthcheck_stop(struct pw_agent *a);

/* snat_gc.c: expires idle pw_snat entries every few seconds in a thread. */
int pw_snat_gc_start(struct pw_agent *a, int map_fd);
void pw_snat_gc_stop(struct pw_agent *a);

/* main.c: everything after the node's config (a->cfg) is known -- checks
 * the uplink, takes the instance lock (if not held yet), loads and attaches
 * the datapath, publishes node.json and applies a->cfg from scratch.
 * 0 or -errno (nothing to run on); *applied is pw_reconcile's result. */
int pw_agent_start_datapath(struct pw_agent *a, int *applied);

/* cniconf.c: <dir>/10-podwire.conflist (cniVersion 1.0.0, one podwire
 * plugin for this instance), written atomically; its path is recorded in
 * <state_dir>/cni-conflist so that --uninstall removes it (only if it is
 * still the file this instance wrote). */
#define PW_CNI_CONFLIST_NAME "10-podwire.conflist"
#define PW_CNI_CONF_DIR_DEFAULT "/etc/cni/net.d"
#define PW_CNI_BIN_DIR_DEFAULT "/opt/cni/bin"  /* where chained plugins (portmap) are looked for */
int pw_cni_conflist_write(const struct pw_paths *p, const char *dir);
void pw_cni_conflist_remove(const struct pw_paths *p);

/* k8s.c: Kubernetes mode (docs/kubernetes.md, "The agent's Kubernetes
 * source"): informers on Nodes, Services and EndpointSlices feed a cache;
 * the main loop rebuilds the desired config from it and reconciles. */
#define PW_KUBECONFIG_INCLUSTER "incluster"
struct pw_k8s_flags {
	const char *kubeconfig;     /* a kubeconfig file, or PW_KUBECONFIG_INCLUSTER */
	const char *node_name;      /* this node's Node object */
	const char *cni_conf_dir;   /* where the conflist goes */
	int metrics_port;
};
/* Runs until SIGTERM/SIGINT on sig_fd: 0, or -errno when the agent could
 * not start (bad config file or kubeconfig, datapath failure). The caller
 * closes the datapath (pw_loader_close) and a->cfg afterwards. */
int pw_k8s_main(struct pw_agent *a, const struct pw_k8s_flags *f, int sig_fd);

/* npaddr.c: pw_np_addrs kept equal to the node's addresses that serve
 * NodePorts (a thread follows the kernel's address changes), and the
 * NodePort range reserved in the netns's ip_local_reserved_ports, both
 * from cfg and the flags. Called on every reconcile. 0 or -errno. */
struct pw_npaddr;
int pw_nodeport_sync(struct pw_agent *a, const struct pw_node_config *cfg);
void pw_npaddr_stop(struct pw_agent *a);
/* --uninstall: takes the ports this instance reserved out of the sysctl. */
int pw_reserved_ports_release(const struct pw_paths *paths);
/* netpol.c: NetworkPolicy -- cfg's policy model and this node's pods (from
 * IPAM) into the policy maps, only the difference to what they hold. Cheap
 * when nothing changed (a digest), so the main loop calls it whenever the
 * IPAM dir changes (pw_netpol_pods_fd, inotify) and at least every
 * PW_NETPOL_POLL_MS (PW_NETPOL_POLL_SLOW_MS once the dir is watched), to
 * follow pods the CNI plugin adds and deletes. 0 or -errno (a bad model, a
 * map write failing). */
struct pw_netpol_state;
#define PW_NETPOL_POLL_MS 500
#define PW_NETPOL_POLL_SLOW_MS 5000
int pw_netpol_sync(struct pw_agent *a, const struct pw_node_config *cfg);
/* Kubernetes mode: the policy model object by object (pw_k8s_policy_changes;
 * reset: start from an empty model). From the first call on, the config's
 * policy_json is ignored; the next pw_netpol_sync computes and writes.
 * 0, -ESTALE (changes to a model this agent no longer holds) or -ENOMEM:
 * then pw_netpol_wants_all is true until a reset feed. */
struct pw_policy_change;
int pw_netpol_feed(struct pw_agent *a, const struct pw_policy_change *changes, int n, bool reset);
bool pw_netpol_wants_all(const struct pw_agent *a);
/* inotify fd on the IPAM dir to poll (-1: not yet), and its drain. */
int pw_netpol_pods_fd(struct pw_agent *a);
void pw_netpol_pods_drain(struct pw_agent *a);
void pw_netpol_close(struct pw_agent *a);

/* watch.c: inotify on the config file's directory. */
int pw_watch_open(const char *config_path);
/* Drains pending events; true when one concerned the config file. */
bool pw_watch_changed(int fd, const char *config_path);
#endif
