/* The Kubernetes source's translation, as pure functions: Node, Service and
 * EndpointSlice objects (JSON, as the API serves them) are parsed into a
 * compact cache (no JSON kept: a node with 10,000 Services and 20,000
 * endpoints stays small), and the cache is turned into the node config
 * model (config.h) that the reconciler applies. No I/O, no threads: the
 * agent (userspace/agent/k8s.c) feeds it from its informers under a lock.
 * What is read from where: docs/kubernetes.md, "The agent's Kubernetes
 * source". */
#ifndef PW_K8S_MODEL_H
#define PW_K8S_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "config.h"
#include "policy.h"

/* Namespaces, Pods and NetworkPolicies feed the policy model
 * (pw_node_config.policy_json, docs/policy.md) through k8s_policy.h. */
enum pw_k8s_kind {
	PW_K8S_NODE = 0, PW_K8S_SERVICE, PW_K8S_SLICE, PW_K8S_NAMESPACE, PW_K8S_POD, PW_K8S_NETPOL, PW_K8S_KINDS
};

/* kube-proxy's default for sessionAffinityConfig.clientIP.timeoutSeconds. */
#define PW_K8S_AFFINITY_DEFAULT 10800

struct pw_k8s_model;

/* node_name: this node's Node object. The CIDRs judge what the API says:
 * a ClusterIP outside service_cidr is left out with a warning, as is a
 * peer whose podCIDR lies outside cluster_cidr. NULL on ENOMEM. */
struct pw_k8s_model *pw_k8s_model_new(const char *node_name, const struct pw_cidr *cluster_cidr,
				      const struct pw_cidr *service_cidr);
void pw_k8s_model_free(struct pw_k8s_model *m);

/* An object listed, ADDED or MODIFIED. 1 when the cache changed in a way
 * that can change the built config, 0 when not (a Node's heartbeat, an
 * object that is not in the datapath before and after), -EINVAL when the
 * object has no metadata.name (ignored). An object the datapath does not
 * use (an IPv6 EndpointSlice, a slice of no Service) replaces what the
 * cache held under its name: it may have been usable before. */
int pw_k8s_upsert(struct pw_k8s_model *m, enum pw_k8s_kind kind, const cJSON *obj);
/* An object DELETED: 1 if the cache held it, 0 if not, -EINVAL. */
int pw_k8s_remove(struct pw_k8s_model *m, enum pw_k8s_kind kind, const cJSON *obj);
/* A (re)list of kind: everything not upserted between begin and end is
 * dropped at end (it was deleted while the watch was down). relist_end
 * returns how many entries it dropped and marks kind synced. */
void pw_k8s_relist_begin(struct pw_k8s_model *m, enum pw_k8s_kind kind);
int pw_k8s_relist_end(struct pw_k8s_model *m, enum pw_k8s_kind kind);
/* True once a list of kind has completed. */
bool pw_k8s_synced(const struct pw_k8s_model *m, enum pw_k8s_kind kind);

struct pw_k8s_counts {
	int nodes, services, slices;
	int namespaces, pods, netpols;   /* in the policy model (hostNetwork and finished pods are not) */
	long endpoints;   /* IPv4 endpoints in the cached slices */
	unsigned long builds_whole, builds_incremental;   /* successful builds of each kind */
};
void pw_k8s_counts(const struct pw_k8s_model *m, struct pw_k8s_counts *out);

/* The desired node config from the cache. base gives what the API does not
 * say (cluster_cidr, service_cidr, routing, masquerade, uplink, mtu: from
 * pw_config_parse_k8s); out gets them, this node's name, InternalIP and
 * podCIDR, a peer for every other Node with an IPv4 podCIDR and
 * InternalIP, and a service per (ClusterIP, port, protocol) with its
 * backends (sorted, unique); policy_json holds the Namespaces, Pods and
 * NetworkPolicies in key order (NULL while there is no NetworkPolicy:
 * then nothing is policed and the text is not worth making). out satisfies what pw_config_parse checks.
 * 0; -EAGAIN when this node's Node, podCIDR or InternalIP is not there yet,
 * -EINVAL when its podCIDR cannot be used (both: why says what, for the
 * log); -ENOMEM. out is empty (pw_config_free-able) on error. */
int pw_k8s_build(struct pw_k8s_model *m, const struct pw_node_config *base,
		 struct pw_node_config *out, char *why, size_t whylen);
/* The same config, built from prev (what the model's last build gave, as
 * the caller holds it): only the Services changed since then (a Service or
 * one of its EndpointSlices upserted or removed) are built again; the
 * other entries are prev's, in the same key order. A whole build instead
 * when there is no prev, many Services changed, or an entry conflicts
 * (pw_k8s_build settles conflicts). policy_json is made again only when a
 * Namespace, Pod or NetworkPolicy changed, else it is prev's. On success
 * out shares backend lists (and maybe policy_json) with prev: free prev with pw_k8s_release, and before the next build.
 * On error prev is untouched and still the caller's whole. */
int pw_k8s_build_next(struct pw_k8s_model *m, const struct pw_node_config *base,
		      const struct pw_node_config *prev, struct pw_node_config *out, char *why, size_t whylen);
/* Frees prev, the config a successful pw_k8s_build_next started from,
 * except what it handed over to the new one. */
void pw_k8s_release(struct pw_k8s_model *m, struct pw_node_config *prev);

/* The policy model object by object (the agent: each change costs what it
 * touches, not a scan of 10,000 elements). After pw_k8s_policy_by_object,
 * builds leave policy_json alone (pw_k8s_build gives none, build_next
 * carries prev's) and the elements go out through pw_k8s_policy_changes. */
void pw_k8s_policy_by_object(struct pw_k8s_model *m);

/* What changed in the policy model since the last call. *reset: start
 * from an empty model before applying *out (which then holds every
 * element: the first time, after pw_k8s_policy_refeed, and when the first
 * NetworkPolicy comes; with none left, *reset and nothing else: nothing
 * is policed), for pw_policy_inc_apply. A NetworkPolicy's key stands for its policy id: a change
 * gives the policy that holds the id now (see the id clash in
 * pw_k8s_build), or the key gone when none does. 0 or -ENOMEM (then
 * everything is handed over next time). */
int pw_k8s_policy_changes(struct pw_k8s_model *m, struct pw_policy_change **out, int *n, bool *reset);
/* The consumer lost what it held: hand everything over next time. */
void pw_k8s_policy_refeed(struct pw_k8s_model *m);
/* The whole text (as pw_k8s_build's policy_json; for publishing) and
 * whether it changed since it was last made. */
int pw_k8s_policy_text(struct pw_k8s_model *m, char **out);
bool pw_k8s_policy_text_stale(const struct pw_k8s_model *m);

/* pw_service_config.name of one port of a Service:
 * "namespace/name:port/proto", port being the port's name, or its number
 * when unnamed, e.g. "kube-system/kube-dns:dns-tcp/tcp",
 * "default/web:80/tcp". Longer than PW_NAME_MAX - 1 characters: cut, with
 * "~" and 8 hex digits of a hash of the whole name appended (unique and
 * still readable in `podwirectl services`). */
void pw_k8s_service_name(const char *ns_name, const char *port_name, uint16_t port, uint8_t proto,
			 char out[PW_NAME_MAX]);
/* A Node name as a peer name: itself, or cut with a hash as above. */
void pw_k8s_short_name(const char *name, char out[PW_NAME_MAX]);
#endif
