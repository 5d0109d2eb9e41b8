/* NetworkPolicy: the model (namespaces, pods, networking.k8s.io/v1
 * policies), its translation into the datapath's maps (identities, per-pod
 * enforcement, per-pod allow entries) and the incremental write of those
 * maps. docs/policy.md says why it is shaped this way. */
#ifndef PW_POLICY_H
#define PW_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "podwire/abi.h"
#include "cidr.h"

#define PW_LABEL_KEY_MAX 320   /* prefix (253) + '/' + name (63) */
#define PW_LABEL_VAL_MAX 64
#define PW_K8S_NAME_MAX  254

struct pw_label {
	char key[PW_LABEL_KEY_MAX];
	char value[PW_LABEL_VAL_MAX];
};

struct pw_labels {
	struct pw_label *v;
	int n;
};

enum pw_sel_op { PW_SEL_IN, PW_SEL_NOT_IN, PW_SEL_EXISTS, PW_SEL_DOES_NOT_EXIST };

struct pw_sel_expr {
	char key[PW_LABEL_KEY_MAX];
	enum pw_sel_op op;
	char (*values)[PW_LABEL_VAL_MAX];
	int n_values;
};

/* A LabelSelector; an empty one ({}) selects everything. */
struct pw_selector {
	struct pw_labels match;
	struct pw_sel_expr *expr;
	int n_expr;
};

struct pw_ipblock {
	struct pw_cidr cidr;
	struct pw_cidr *except;
	int n_except;
};

/* One element of from/to: podSelector and/or namespaceSelector, or ipBlock. */
struct pw_pol_peer {
	bool has_pod, has_ns, is_ipblock;
	struct pw_selector pod, ns;
	struct pw_ipblock ipb;
};

/* One element of ports. port 0 and name "" = every port of proto. */
struct pw_pol_port {
	uint8_t proto;           /* IPPROTO_TCP (default), IPPROTO_UDP, IPPROTO_SCTP */
	uint16_t port;
	uint16_t end_port;       /* 0 = just port */
	char name[16];           /* a named port (IANA_SVC_NAME), resolved per pod */
};

/* An ingress or egress rule: no peers = every peer, no ports = every port. */
struct pw_pol_rule {
	struct pw_pol_peer *peers;
	int n_peers;
	struct pw_pol_port *ports;
	int n_ports;
};

struct pw_netpol {
	char ns[64];
	char name[PW_K8S_NAME_MAX];
	uint32_t id;             /* pw_policy_id(ns, name) */
	struct pw_selector pod_sel;
	bool ingress, egress;    /* policyTypes (the API's defaults applied) */
	struct pw_pol_rule *in, *eg;
	int n_in, n_eg;
};

struct pw_named_port {
	char name[16];
	uint16_t port;
	uint8_t proto;
};

struct pw_pod_model {
	char ns[64];
	char name[PW_K8S_NAME_MAX];
	struct pw_labels labels;
	uint32_t ip;             /* host order, 0 = none given (a local pod's comes from IPAM) */
	struct pw_named_port *ports;
	int n_ports;
};

struct pw_ns_model {
	char name[64];
	struct pw_labels labels;
};

struct pw_policy_model {
	struct pw_ns_model *ns;
	int n_ns;
	struct pw_pod_model *pods;
	int n_pods;
	struct pw_netpol *pols;
	int n_pols;
};

/* A pod on this node, as IPAM recorded it (CNI_ARGS K8S_POD_NAMESPACE/NAME). */
struct pw_local_pod {
	uint32_t ip;             /* host order */
	char ns[64];
	char name[PW_K8S_NAME_MAX];
};

/* Parses {"namespaces": [...], "pods": [...], "networkPolicies": [...]}
 * (each optional; docs/config.md). -EINVAL with a message naming the field
 * in err, -ENOMEM. json NULL = an empty model. */
int pw_policy_model_parse(const char *json, struct pw_policy_model *m, char *err, size_t errlen);
void pw_policy_model_free(struct pw_policy_model *m);
const struct pw_netpol *pw_policy_find_id(const struct pw_policy_model *m, uint32_t id);

/* FNV-1a of "ns/name", never 0: the id the datapath reports. */
uint32_t pw_policy_id(const char *ns, const char *name);

/* Label selector semantics (matchLabels AND every expression). */
bool pw_selector_matches(const struct pw_selector *s, const struct pw_labels *l);
/* Whether policy p selects the pod (same namespace, podSelector). */
bool pw_policy_selects(const struct pw_netpol *p, const char *ns, const struct pw_labels *labels);

/* Splits [lo, hi] into aligned power-of-two blocks: start[i] with
 * prefix[i] significant bits of 16. Returns the count (<= 32). */
int pw_port_blocks(uint16_t lo, uint16_t hi, uint16_t start[32], uint8_t prefix[32]);

struct pw_pol_ids_entry { struct pw_pol_ids_key k; struct pw_pol_ids_val v; };
struct pw_pol_ep_entry { struct pw_ip4 k; struct pw_pol_ep v; };
struct pw_policy_entry { struct pw_policy_key k; struct pw_policy_val v; };

/* The desired (or written) contents of the three policy maps, each sorted by key. */
struct pw_policy_state {
	struct pw_pol_ids_entry *ids;
	int n_ids;
	struct pw_pol_ep_entry *eps;
	int n_eps;
	struct pw_policy_entry *rules;
	int n_rules;
};

/* The maps for model m with the pods of this node. 0 or -ENOMEM. */
int pw_policy_compute(const struct pw_policy_model *m, const struct pw_local_pod *local, int n_local,
		      struct pw_policy_state *out);
void pw_policy_state_free(struct pw_policy_state *s);
/* Sorts each array by key and drops repeated keys (the first stays). */
void pw_policy_state_sort(struct pw_policy_state *s);

/* ---- policy_maps.c: the pinned maps (libbpf) ---- */

struct pw_policy_fds { int ids, ep, rules; };

struct pw_policy_stats { unsigned long writes, deletes; };

/* Reads what the pinned maps hold (sorted), e.g. after a restart. */
int pw_policy_state_read(const struct pw_policy_fds *fds, struct pw_policy_state *out);
/* Writes new's entries that old lacks or has otherwise, deletes old's that
 * new lacks: allow entries before a pod's default deny, the deny before
 * its allow entries go. 0 or the first -errno (the rest is still tried). */
int pw_policy_sync(const struct pw_policy_fds *fds, const struct pw_policy_state *old,
		   const struct pw_policy_state *new, struct pw_policy_stats *st);

/* The datapath's decision, asked of the maps: 1 allowed, 0 denied. *policy:
 * the allowing policy, or the selecting one when denied (0 = several or none). */
struct pw_policy_verdict {
	bool policed;            /* the pod enforces this direction */
	bool allowed;
	uint32_t policy_id;
	uint32_t peer_identity;
};
int pw_policy_map_check(const struct pw_policy_fds *fds, uint32_t pod, uint32_t peer, uint32_t node_ip,
			uint32_t gateway, uint8_t dir, uint8_t proto, uint16_t port, struct pw_policy_verdict *v);
#endif
