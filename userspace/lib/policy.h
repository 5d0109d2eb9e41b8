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

/* Pieces of the translation that the incremental computation
 * (policy_inc.c) shares with pw_policy_compute, so both decide alike. */
bool pw_selector_matches_ns(const struct pw_selector *s, const struct pw_labels *l, const char *ns_name);
/* The text an identity stands for (malloc'ed; NULL on ENOMEM). */
char *pw_policy_canon(const char *ns, const struct pw_labels *labels, const struct pw_labels *ns_labels);
/* The number an identity asks for first (the next free one if taken). */
uint32_t pw_policy_pod_id_hint(const char *canon);
uint32_t pw_policy_cidr_id_hint(const struct pw_cidr *c);
/* Sort + drop repeated keys, as pw_policy_state_sort; the new count. */
int pw_policy_rows_sort(struct pw_policy_entry *rows, int n);
int pw_policy_ids_sort(struct pw_pol_ids_entry *ids, int n);

enum pw_policy_section { PW_POL_SEC_NS, PW_POL_SEC_PODS, PW_POL_SEC_POLS };
/* One element of "namespaces", "pods" or "networkPolicies" (its JSON text)
 * into a struct pw_ns_model / pw_pod_model / pw_netpol at out; errors name
 * "<section>[index]". */
int pw_policy_parse_element(enum pw_policy_section sec, const char *text, size_t len, int index, void *out,
			    char *err, size_t errlen);
void pw_policy_ns_free(struct pw_ns_model *ns);
void pw_policy_pod_free(struct pw_pod_model *pod);
void pw_policy_netpol_free(struct pw_netpol *p);

/* ---- policy_inc.c: incremental computation (docs/policy.md) ----
 * Holds the model object by object and what was last handed out for the
 * maps; a change marks what it touches, and pw_policy_inc_flush computes
 * only that: the pods a changed policy selects (before and after), the
 * identities whose label set appeared or went, the rule peers those change.
 * pw_policy_compute on the same model gives the same maps (the unit test
 * checks it on random change sequences). */
struct pw_policy_inc;

/* empty_without_policies: with no policy at all, want the maps empty (the
 * agent's choice: a node without policies writes nothing). NULL on ENOMEM. */
struct pw_policy_inc *pw_policy_inc_new(bool empty_without_policies);
void pw_policy_inc_free(struct pw_policy_inc *e);

/* Object changes, computed at the next flush. set_* takes the object over
 * (*obj is zeroed; the caller frees it as usual, which frees nothing) and
 * replaces the one of the same namespace/name. 0, -ENOMEM, -ENOENT (del of
 * an unknown object). */
int pw_policy_inc_set_ns(struct pw_policy_inc *e, struct pw_ns_model *ns);
int pw_policy_inc_del_ns(struct pw_policy_inc *e, const char *name);
int pw_policy_inc_set_pod(struct pw_policy_inc *e, struct pw_pod_model *pod);
int pw_policy_inc_del_pod(struct pw_policy_inc *e, const char *ns, const char *name);
int pw_policy_inc_set_policy(struct pw_policy_inc *e, struct pw_netpol *p);
int pw_policy_inc_del_policy(struct pw_policy_inc *e, const char *ns, const char *name);
/* This node's pods, all of them (the difference is taken here). */
int pw_policy_inc_set_local(struct pw_policy_inc *e, const struct pw_local_pod *local, int n);
/* A whole model as pw_policy_model_parse takes it: each element whose text
 * is not the same as at the last load is parsed and set, each element gone
 * deleted (the same whole text again costs one comparison). On error
 * (message in err) nothing changes. Objects changed by the set and del calls between
 * loads are not reconciled with the text: use one way per engine. */
int pw_policy_inc_load_json(struct pw_policy_inc *e, const char *json, char *err, size_t errlen);

/* The other way in, object by object (the Kubernetes source: a watch event
 * costs what it touches, not a scan of every element): one element of
 * the model as its text, or gone. */
struct pw_policy_change {
	enum pw_policy_section sec;
	char *key;               /* "name" (a namespace) or "namespace/name" */
	char *json;              /* the element; NULL: gone */
};
/* Sets (parsed from its text) or deletes each element in turn; deleting
 * one the engine does not hold is no error. An element the parser refuses
 * keeps the one before (its message in err, the rest still applied). 0,
 * -EINVAL (an element refused) or -ENOMEM (then the engine is unusable:
 * free it and start again from the whole model). */
int pw_policy_inc_apply(struct pw_policy_inc *e, const struct pw_policy_change *c, int n, char *err, size_t errlen);
void pw_policy_changes_free(struct pw_policy_change *c, int n);

struct pw_policy_inc_stats {
	int pods_recomputed;     /* local pods whose entries were recomputed */
	int identities_changed;  /* identities that appeared or went */
	int policies_recomputed; /* policies whose peers were (re)computed */
};
/* Computes the changes since the last flush: *old = the entries of every
 * key they touch as the last flush left them, *new = as wanted now (both
 * sorted, for pw_policy_sync(fds, old, new)). 0 or -ENOMEM (then the
 * engine is unusable: free it and start again from the model). */
int pw_policy_inc_flush(struct pw_policy_inc *e, struct pw_policy_state *old, struct pw_policy_state *new,
			struct pw_policy_inc_stats *st);
/* Everything wanted as of the last flush (sorted). */
int pw_policy_inc_state(const struct pw_policy_inc *e, struct pw_policy_state *out);
int pw_policy_inc_n_policies(const struct pw_policy_inc *e);

/* ---- policy_maps.c: the pinned maps (libbpf) ---- */

/* gate: pw_pol_gate, or -1 where nothing writes (a reader). */
struct pw_policy_fds { int ids, ep, rules, gate; };

struct pw_policy_stats { unsigned long writes, deletes; };

/* Reads what the pinned maps hold (sorted), e.g. after a restart. */
int pw_policy_state_read(const struct pw_policy_fds *fds, struct pw_policy_state *out);
/* Writes new's entries that old lacks or has otherwise, deletes old's that
 * new lacks: allow entries before a pod's default deny, the deny before
 * its allow entries go. The gate is closed before the first pod is
 * policed and opened once none is. 0 or the first -errno (the rest is
 * still tried). */
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

/* pw_pol_ep (an array of pod slots, include/podwire/abi.h): the entry of
 * pod (host order) in ep, 0 or -ENOENT (not policed); the number of
 * policed pods, or -errno. */
int pw_policy_ep_read(int fd, uint32_t pod, struct pw_pol_ep *ep);
long pw_policy_ep_count(int fd);
#endif
