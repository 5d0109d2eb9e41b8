/* The podwire CNI plugin: per-pod wiring (architecture §7, docs/cni.md).
 * main.c parses the invocation and dispatches to one file per verb; the
 * pieces the verbs share (the node's agent-published facts and pins, host
 * veth naming, endpoint map entries, teardown) are declared here. */
#ifndef PW_CNI_PLUGIN_H
#define PW_CNI_PLUGIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "conf.h"
#include "ipam.h"
#include "netlink.h"
#include "nodeinfo.h"
#include "paths.h"

/* One invocation. */
struct pw_cni {
	enum pw_cni_cmd cmd;
	struct pw_cni_env env;
	struct pw_cni_args args;  /* CNI_ARGS, parsed for ADD only */
	struct pw_cni_conf conf;
	struct pw_paths paths;
	struct pw_cni_err err;
	cJSON *out;               /* printed on success; NULL = no output */
};

/* The node as its agent published it: node.json and the pinned program/maps.
 * Absent pieces are -1 / have_info false. */
/* Named pw_cni_node: struct pw_node is the pw_nodes map value in abi.h. */
struct pw_cni_node {
	bool have_info;
	struct pw_nodeinfo info;
	int prog_fd;              /* <prog_dir>/pod_ingress */
	int ep_fd;                /* pw_endpoints: pod IP -> endpoint */
	int ep_ifidx_fd;          /* pw_ep_ifindex: host ifindex -> endpoint */
	int sock_netns_fd;        /* pw_sock_netns: pod netns cookie -> pod; -1 with an agent
	                           * older than the map (its pods then use the per-packet path) */
};

/* All of it, or an error (code 100, or `unavail_code` for STATUS) naming
 * the first missing piece. need_prog: also the pod program. */
int pw_node_open(struct pw_cni *c, struct pw_cni_node *n, bool need_prog, int unavail_code);
/* Whatever is there (DEL/GC clean up even when the agent is gone). */
void pw_node_open_partial(struct pw_cni *c, struct pw_cni_node *n);
void pw_node_close(struct pw_cni_node *n);
/* What a verb that entered the pod holds, released: both netlink sockets
 * (NULL allowed), the pod netns fd (-1 allowed) and the node. */
void pw_cni_release(struct pw_cni_node *n, struct pw_nl *host_nl, struct pw_nl *pod_nl, int netns_fd);
/* IPAM state of the instance. create (ADD): allocating from the node's pod
 * CIDR, directories made if needed. Otherwise (DEL/GC/CHECK/STATUS): over
 * 0.0.0.0/0, so reservations are found even without node.json or after the
 * pod CIDR changed; -ENOENT when no IPAM state exists at all. */
int pw_node_ipam_open(struct pw_cni *c, const struct pw_cni_node *n, struct pw_ipam *ipam, bool create);

/* Host-side veth name: "pw" + 12 hex digits of FNV-1a-64("containerID/ifname"),
 * stable so DEL finds it without state. */
#define PW_HOST_IFNAME_LEN 15
void pw_host_ifname(const char *container_id, const char *ifname, char out[PW_HOST_IFNAME_LEN + 1]);
/* The tcx link pin of a host veth: pw_link_pin_path() in paths.h. */

/* Endpoint map entries (endpoint.c). */
int pw_ep_register(const struct pw_cni_node *n, uint32_t ip, int host_ifindex,
		   const uint8_t pod_mac[6], const uint8_t host_mac[6], uint16_t id, uint16_t flags);
/* The pod's network namespace (cookie) in pw_sock_netns, with the
 * endpoint's flags: from now on the socket programs know the pod's sockets.
 * 0 (nothing done) without the map. */
int pw_ep_register_netns(const struct pw_cni_node *n, uint64_t netns_cookie, uint32_t ip, int host_ifindex,
			 uint16_t flags);
/* Removes the entries of ip and/or host_ifindex (0 = unknown); entries of
 * pw_ep_ifindex that point at ip are found by scanning when the ifindex is
 * unknown (the veth is already gone), those of pw_sock_netns always (the
 * pod's netns may be gone, so its cookie is unknown). Missing entries are fine. */
void pw_ep_forget(const struct pw_cni_node *n, uint32_t ip, int host_ifindex);
/* 0 when pw_endpoints[ip] and pw_ep_ifindex[host_ifindex] both exist and
 * agree with each other; -ENOENT / -ESTALE otherwise. */
int pw_ep_lookup(const struct pw_cni_node *n, uint32_t ip, int host_ifindex);

/* The endpoint id ADD gave the attachment of ip / host_ifindex (0 =
 * unknown), from pw_ep_ifindex or pw_endpoints: 0 or -ENOENT. */
int pw_ep_id(const struct pw_cni_node *n, uint32_t ip, int host_ifindex, uint16_t *id);

/* hostPort (hostport.c): runtimeConfig.portMappings of c->conf written into
 * the service maps for the pod at pod_ip with endpoint id ep_id, after
 * checking every mapping against other pods' (code 110 when one is taken).
 * 0 or the CNI error code; on error nothing of it is left. */
int pw_hostport_add(struct pw_cni *c, const struct pw_cni_node *n, uint32_t pod_ip, uint16_t ep_id);
/* Every mapping of endpoint id ep_id removed; none is fine. */
void pw_hostport_remove(const struct pw_cni *c, uint16_t ep_id);

/* DEL of one attachment (shared with GC): endpoint entries, link pin, host
 * veth (and with it the pod end), reservation. ipam must be locked (or NULL
 * when no IPAM state exists). Missing pieces are success. */
int pw_teardown(struct pw_cni *c, const struct pw_cni_node *n, struct pw_ipam *ipam,
		struct pw_nl *host_nl, const char *container_id, const char *ifname);

/* Verbs: 0 on success (c->out set if there is something to print), else the
 * CNI error code with c->err filled in. */
int pw_cmd_add(struct pw_cni *c);
int pw_cmd_del(struct pw_cni *c);
int pw_cmd_check(struct pw_cni *c);
int pw_cmd_status(struct pw_cni *c);
int pw_cmd_gc(struct pw_cni *c);

/* JSON documents (result.c). */
struct pw_attachment {
	char host_if[16];
	uint8_t host_mac[6];
	char pod_if[16];
	uint8_t pod_mac[6];
	const char *sandbox;
	uint32_t ip;
	uint32_t gateway;
	int mtu;
};
cJSON *pw_result_json(enum pw_cni_version v, const struct pw_attachment *a);
cJSON *pw_version_json(enum pw_cni_version v);
cJSON *pw_error_json(enum pw_cni_version v, const struct pw_cni_err *err);
void pw_mac_format(const uint8_t mac[6], char out[18]);
#endif
