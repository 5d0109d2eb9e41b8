/* What the CNI plugin is told: the CNI_* environment and the network config
 * on stdin. Pure parsing and validation (no system access), so that
 * test/unit/test_cniconf.c can cover every good and bad input. */
#ifndef PW_CNI_CONF_H
#define PW_CNI_CONF_H
#include <stdbool.h>
#include <stdint.h>
#include "log.h"

/* Spec versions this plugin speaks, oldest first. */
enum pw_cni_version {
	PW_CNI_V_NONE = 0,      /* not given (VERSION without stdin) */
	PW_CNI_V_0_4_0,
	PW_CNI_V_1_0_0,
	PW_CNI_V_1_1_0,
};
#define PW_CNI_V_LATEST PW_CNI_V_1_1_0
#define PW_CNI_SUPPORTED_JSON "[\"0.4.0\", \"1.0.0\", \"1.1.0\"]"

/* Spec error codes (SPEC.md "Error codes") and podwire's own (>= 100;
 * docs/cni.md lists them). */
enum pw_cni_code {
	PW_CNI_OK                = 0,
	PW_CNI_E_VERSION         = 1,   /* incompatible CNI version */
	PW_CNI_E_UNSUPPORTED     = 2,   /* unsupported field in network config */
	PW_CNI_E_UNKNOWN_CTR     = 3,   /* container unknown or does not exist */
	PW_CNI_E_ENV             = 4,   /* invalid necessary environment variables */
	PW_CNI_E_IO              = 5,   /* I/O failure */
	PW_CNI_E_DECODE          = 6,   /* failed to decode content */
	PW_CNI_E_CONFIG          = 7,   /* invalid network config */
	PW_CNI_E_TRY_AGAIN       = 11,  /* try again later */
	PW_CNI_E_NOT_AVAILABLE   = 50,  /* STATUS: plugin cannot serve ADD */
	PW_CNI_E_NOT_AVAILABLE_DISRUPTED = 51,
	PW_CNI_E_AGENT           = 100, /* node agent not running (node.json / pins absent) */
	PW_CNI_E_POOL_EXHAUSTED  = 101, /* no free address in the node pod CIDR */
	PW_CNI_E_EXISTS          = 102, /* (container, ifname) already attached */
	PW_CNI_E_NETLINK         = 103, /* creating/configuring interfaces, addresses, routes */
	PW_CNI_E_DATAPATH        = 104, /* attaching the program / endpoint map update */
	PW_CNI_E_NETNS           = 105, /* CNI_NETNS unusable (e.g. the plugin's own netns) */
	PW_CNI_E_CHECK           = 106, /* CHECK: attachment missing or not as set up */
	PW_CNI_E_IPAM            = 107, /* IPAM state unreadable/unwritable */
	PW_CNI_E_IP_UNAVAILABLE  = 108, /* requested IP outside the pod CIDR, reserved, or taken */
	PW_CNI_E_OTHER_IFNAME    = 109, /* the container is attached already, under another ifname */
	PW_CNI_E_HOSTPORT_TAKEN  = 110, /* a hostPort mapping another pod holds (same hostIP, port, protocol) */
};

struct pw_cni_err {
	int code;
	char msg[256];
	char details[512];
};

/* Sets err and returns code (convenient as `return pw_cni_fail(...)`). */
int pw_cni_fail(struct pw_cni_err *err, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

enum pw_cni_cmd { PW_CNI_ADD, PW_CNI_DEL, PW_CNI_CHECK, PW_CNI_VERSION, PW_CNI_STATUS, PW_CNI_GC };

/* The CNI_* variables (NULL when unset). */
struct pw_cni_env {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
};

/* CNI_COMMAND -> cmd; code 4 when missing or unknown. */
int pw_cni_cmd_parse(const char *s, enum pw_cni_cmd *cmd, struct pw_cni_err *err);
/* The variables cmd needs are present and well formed (code 4 naming them).
 * ADD/CHECK need CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS; DEL the first two
 * (its netns may be gone); VERSION/STATUS/GC none. */
int pw_cni_env_check(enum pw_cni_cmd cmd, const struct pw_cni_env *env, struct pw_cni_err *err);

/* What this plugin takes from CNI_ARGS ("K=V;K=V", the CNI conventions'
 * args). The pod's Kubernetes namespace and name, as containerd and CRI-O
 * send them; "" when absent (an empty value counts as absent). */
struct pw_cni_args {
	char k8s_namespace[64];       /* K8S_POD_NAMESPACE: DNS-1123 label */
	char k8s_pod_name[254];       /* K8S_POD_NAME: DNS-1123 subdomain */
	/* IP=, MAC= (podman --ip / --mac-address): what the user asked for */
	bool has_ip;
	uint32_t ip;
	bool has_mac;
	uint8_t mac[6];
	/* PODWIRE_SOCKET_LB=false: the pod opts out of socket load balancing
	 * (its service traffic takes the per-packet path); "true" is the default. */
	bool no_sock_lb;
};

/* Parses CNI_ARGS (NULL or "" = nothing). Keys it does not know are
 * ignored, with or without IgnoreUnknown; a pair without '=', a name that
 * Kubernetes would not accept, an IP= that is not an IPv4 address or a MAC=
 * that is not a unicast MAC is code 4 naming the key and the rule. */
int pw_cni_args_parse(const char *args, struct pw_cni_args *out, struct pw_cni_err *err);

/* "0.4.0" -> PW_CNI_V_0_4_0 ...; PW_CNI_V_NONE for anything else. */
enum pw_cni_version pw_cni_version_parse(const char *s);
const char *pw_cni_version_name(enum pw_cni_version v);

struct pw_cni_attachment {
	char container_id[256];
	char ifname[16];
};

/* One runtimeConfig "portMappings" entry: the pod's hostPort. */
struct pw_cni_portmap {
	uint32_t host_ip;             /* 0: every address of the node */
	uint16_t host_port;
	uint16_t container_port;
	uint8_t proto;                /* IPPROTO_TCP / IPPROTO_UDP */
};
/* Mappings of one pod, at most (PW_HOSTPORT_PER_EP in abi.h). */
#define PW_CNI_MAX_PORTMAPS 128

struct pw_cni_conf {
	enum pw_cni_version version;
	char name[128];
	char instance[64];            /* default "default" */
	int mtu;                      /* 0: the node's pod MTU */
	char log_file[256];           /* "" = no log */
	enum pw_log_level log_level;  /* default info */
	/* GC: cni.dev/valid-attachments (has_valid_attachments false if absent) */
	bool has_valid_attachments;
	struct pw_cni_attachment *valid_attachments;
	int n_valid_attachments;
	/* CHECK/DEL: the first IPv4 address of prevResult, when one was sent */
	bool has_prev_ip;
	uint32_t prev_ip;
	uint8_t prev_prefix;
	/* ADD: runtimeConfig "ips" (its one IPv4 address) and "mac", the CNI
	 * conventions' capabilities */
	bool has_rt_ip;
	uint32_t rt_ip;
	bool has_rt_mac;
	uint8_t rt_mac[6];
	/* ADD: runtimeConfig "portMappings" (the portMappings capability),
	 * checked one by one and against each other */
	struct pw_cni_portmap portmaps[PW_CNI_MAX_PORTMAPS];
	int n_portmaps;
	/* What was wrong with runtimeConfig (code 0 if nothing): only ADD
	 * refuses it, so that DEL and GC of what a bad ADD left still run. */
	struct pw_cni_err rt_err;
};

/* "aa:bb:cc:dd:ee:ff" (hex, either case) -> mac: 0, -EINVAL when malformed,
 * -EADDRNOTAVAIL when not a unicast address (multicast bit, all zero). */
int pw_cni_mac_parse(const char *s, uint8_t mac[6]);

/* Parse the network config. Returns 0 or the CNI error code with err set:
 * 6 not JSON / not an object, 7 a missing or ill-typed key, 1 a cniVersion
 * this plugin does not speak. On error nothing needs freeing. */
int pw_cni_conf_parse(const char *json, struct pw_cni_conf *conf, struct pw_cni_err *err);
void pw_cni_conf_free(struct pw_cni_conf *conf);
/* Whether (container_id, ifname) is listed in cni.dev/valid-attachments. */
bool pw_cni_conf_attachment_valid(const struct pw_cni_conf *conf, const char *container_id,
				  const char *ifname);
#endif
