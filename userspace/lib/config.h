/* The node config model (architecture §10) and its JSON parser. */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include "cidr.h"

#define PW_NAME_MAX 64
#define PW_IFNAME_MAX 16

enum pw_routing { PW_ROUTING_NATIVE = 0, PW_ROUTING_VXLAN = 1 };

struct pw_peer_config {
	char name[PW_NAME_MAX];
	uint32_t ip;
	struct pw_cidr pod_cidr;
};

struct pw_backend_config {
	uint32_t ip;
	uint16_t port;
	/* Terminating (the endpoint is shutting down but still serving): new
	 * connections go to it only when no other backend of the service is
	 * left (pw_services_localize), as kube-proxy does. */
	bool terminating;
};

struct pw_service_config {
	char name[PW_NAME_MAX];
	uint32_t vip;
	uint16_t port;
	uint8_t protocol;        /* IPPROTO_TCP / IPPROTO_UDP */
	uint16_t node_port;      /* 0 = none */
	bool maglev;             /* algorithm: false = random */
	uint32_t affinity_timeout;
	/* Traffic policies "Local": the node port (external) or the ClusterIP
	 * (internal) goes only to this node's backends (pw_services_localize). */
	bool external_local;
	bool internal_local;
	uint16_t health_check_port;  /* externalTrafficPolicy Local: the agent answers here, 0 = none */
	struct pw_backend_config *backends;
	int n_backends;
};

/* NodePort addresses (cluster.nodePortAddresses, agent --nodeport-addresses):
 * at most this many CIDRs. */
#define PW_NODEPORT_CIDRS_MAX 16
/* The NodePort range kept out of the kernel's ephemeral ports by default
 * (cluster.nodePortRange, --nodeport-range). */
#define PW_NODEPORT_RANGE_DEFAULT "30000-32767"

/* Pod devices: a veth pair (the default) or a netkit pair. The agent
 * resolves "auto" at start; node.json publishes the result ("podDevice"). */
enum pw_pod_device { PW_POD_DEVICE_VETH = 0, PW_POD_DEVICE_NETKIT = 1, PW_POD_DEVICE_AUTO = 2 };
const char *pw_pod_device_name(enum pw_pod_device d);     /* "veth" / "netkit" / "auto" */
int pw_pod_device_parse(const char *s, enum pw_pod_device *d);

struct pw_node_config {
	char name[PW_NAME_MAX];
	uint32_t ip;
	char uplink[PW_IFNAME_MAX];
	struct pw_cidr pod_cidr;
	struct pw_cidr cluster_cidr;
	struct pw_cidr service_cidr;
	enum pw_routing routing;
	bool masquerade;
	/* Node addresses serving NodePorts: those inside one of these CIDRs
	 * (kube-proxy's --nodeport-addresses); none = every address of the
	 * node's netns but loopback. */
	struct pw_cidr nodeport_cidrs[PW_NODEPORT_CIDRS_MAX];
	int n_nodeport_cidrs;
	/* Ports reserved in the netns's ip_local_reserved_ports (0, 0 = none). */
	uint16_t nodeport_range_min, nodeport_range_max;
	int mtu;                 /* 0 = derive from the uplink */
	/* node.podDevice: veth, netkit or auto (absent = veth, unless
	 * podwired --pod-device says otherwise). Read at agent start only. */
	enum pw_pod_device pod_device;
	bool has_pod_device;
	struct pw_peer_config *peers;
	int n_peers;
	struct pw_service_config *services;
	int n_services;
	/* Built by the Kubernetes source (k8s_model.c): service names are
	 * "namespace/name:port/proto", not DNS-1035 labels. Written as
	 * "source": "kubernetes" by pw_config_format, so that the file the
	 * agent publishes for podwirectl parses under the same rule. */
	bool from_kubernetes;
	/* NetworkPolicy model (docs/policy.md): the config's "namespaces",
	 * "pods" and "networkPolicies" as one JSON object, validated by
	 * pw_policy_model_parse at parse time; NULL when none is given. Kept
	 * as text so the config stays cheap to copy and compare. */
	char *policy_json;
};

/* Parse a node config. On error returns -EINVAL (or -errno for I/O) and
 * writes a message naming the field, e.g. `node.podCIDR: "10.244.1.5/24" has
 * host bits set`, into err. Defaults: cluster.podCIDR 10.244.0.0/16,
 * serviceCIDR 10.96.0.0/12, routing native, masquerade true. Checks that do
 * not need the running system: CIDRs well formed, node.podCIDR inside
 * cluster.podCIDR, peers' CIDRs inside it and not overlapping each other or
 * the node's. Whether the uplink exists is the agent's check. */
int pw_config_parse(const char *json, struct pw_node_config *cfg, char *err, size_t errlen);
/* The config file of Kubernetes mode (docs/config.md): only what the API
 * does not say -- the cluster section and optionally node.uplink and
 * node.mtu; node.name/ip/podCIDR, peers and services are refused (they
 * come from Nodes, Services and EndpointSlices). The whole text may be "{}".
 * Fills cluster_cidr, service_cidr, routing, masquerade (defaults as above),
 * uplink ("" = the interface holding the node's InternalIP) and mtu. */
int pw_config_parse_k8s(const char *json, struct pw_node_config *cfg, char *err, size_t errlen);
/* Like pw_config_parse on the file's content. err does not repeat the path
 * (callers prefix it): "cannot open: No such file or directory". */
#define PW_CONFIG_MAX (64u << 20)   /* bytes of config JSON read at most */
/* The file at path, whole and NUL-terminated (caller frees), or NULL with
 * *ret = -errno and err set. */
char *pw_config_read(const char *path, size_t *len, int *ret, char *err, size_t errlen);
int pw_config_load(const char *path, struct pw_node_config *cfg, char *err, size_t errlen);
/* FNV-1a 64 of a config file's bytes: identifies one version of the file. */
uint64_t pw_config_digest(const void *buf, size_t len);
/* pw_config_load, and in *digest (if not NULL) the pw_config_digest of exactly
 * the bytes parsed (0 when unreadable): applied.json, how `podwirectl service`
 * knows its edit was taken. */
int pw_config_load_digest(const char *path, struct pw_node_config *cfg, uint64_t *digest, char *err,
			  size_t errlen);
void pw_config_free(struct pw_node_config *cfg);
/* dst := a deep copy of src (its own peers, services and backends). 0, or
 * -ENOMEM with dst empty (pw_config_free-able). */
int pw_config_copy(struct pw_node_config *dst, const struct pw_node_config *src);
/* cfg as config-file JSON (one line, no trailing newline) that
 * pw_config_parse reads back into the same config; malloc'ed, NULL on
 * ENOMEM. The Kubernetes mode publishes what it applies this way. */
char *pw_config_format(const struct pw_node_config *cfg);
/* "LO-HI" (1 <= LO <= HI <= 65535, no leading zeros or blanks) or "none"
 * (0, 0): the NodePort range to reserve. 0 or -EINVAL. */
int pw_port_range_parse(const char *s, uint16_t *min, uint16_t *max);
/* "CIDR[,CIDR...]" (at most PW_NODEPORT_CIDRS_MAX), or "" for none (every
 * address). 0, or -EINVAL with the offending item in err. */
int pw_cidr_list_parse(const char *s, struct pw_cidr *out, int max, int *n, char *err, size_t errlen);
#endif
