/* Kubernetes objects -> compact cache -> node config (k8s_model.h).
 *
 * The cache holds one entry per object, keyed by name ("ns/name" for
 * namespaced kinds) in a binary tree (tsearch), with only the fields the
 * datapath uses. Backends are chosen as kube-proxy chooses them: a
 * Service port's endpoints come from the port of the same name and
 * protocol in each of its EndpointSlices (the slice controller resolved
 * named and numbered targetPorts into those numbers already), only the
 * first address of an endpoint counts, ready endpoints are used, and
 * serving-but-terminating ones only when no ready one is left. */
#include <errno.h>
#include <netinet/in.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "k8s_model.h"
#include "k8s_policy.h"
#include "log.h"
#include "policy.h"

#define NODEPORT_MIN 30000   /* the datapath's NodePort range (config.c) */
#define NODEPORT_MAX 32767

/* Common head of every cache entry: the tree compares keys. */
struct k8s_entry {
	char *key;
	unsigned gen;        /* relist generation that last saw it */
};

struct k8s_node {
	struct k8s_entry e;
	uint32_t ip;                 /* first IPv4 InternalIP, 0 = none */
	struct pw_cidr pod_cidr;
	bool has_cidr;               /* an IPv4 spec.podCIDR(s) */
};

struct svc_port {
	char *name;                  /* "" when unnamed */
	uint16_t port, node_port;
	uint8_t proto;
};

struct k8s_service {
	struct k8s_entry e;
	uint32_t vip;                /* 0: not in the datapath (headless, ExternalName, no IPv4 ClusterIP) */
	uint32_t affinity;           /* seconds, 0 = none */
	bool external_local;         /* externalTrafficPolicy: Local (node ports only) */
	bool internal_local;         /* internalTrafficPolicy: Local */
	uint16_t health_check_port;  /* spec.healthCheckNodePort (external Local only) */
	int n_ports;
	struct svc_port *ports;      /* TCP and UDP only */
};

enum { EP_READY = 1, EP_SERVING = 2, EP_TERMINATING = 4 };

struct slice_ep {
	uint32_t ip;
	uint8_t flags;
};

struct k8s_slice {
	struct k8s_entry e;
	char *service;               /* "ns/name" of kubernetes.io/service-name */
	int n_ports, n_eps;
	struct svc_port *ports;      /* name, port, proto (node_port unused) */
	struct slice_ep *eps;
};

/* A Namespace, Pod or NetworkPolicy: its element of the policy model. */
struct k8s_elem {
	struct k8s_entry e;
	char *json;
	uint32_t id;                 /* NetworkPolicy: pw_policy_id of its namespace/name */
};

struct pw_k8s_model {
	char *node_name;
	struct pw_cidr cluster_cidr, service_cidr;
	void *root[PW_K8S_KINDS];
	int count[PW_K8S_KINDS];
	unsigned gen[PW_K8S_KINDS];
	bool synced[PW_K8S_KINDS];
	long endpoints;
	/* Incremental builds (pw_k8s_build_next): the keys of the Services
	 * whose config may differ from the last build's (a Service or one of
	 * its slices changed), and for each service entry of the last build
	 * the key of its Service (in the order of the entries: key order). */
	void *dirty;                 /* tsearch set of owned keys */
	int n_dirty;
	bool rebuild_all;            /* no last build to start from, or it had conflicts */
	char **built_keys;
	int built_n;
	/* Of the last pw_k8s_build_next: which entries of its prev it took
	 * over (pw_k8s_release frees the others). NULL: none. */
	bool *carried;
	int carried_n;
	unsigned long builds_whole, builds_incremental;
	/* A Namespace, Pod or NetworkPolicy changed since the policy text was
	 * last made (by a build, or by pw_k8s_policy_text when by_object). */
	bool policy_dirty;
	/* The last pw_k8s_build_next took prev's policy_json over. */
	bool policy_carried;
	/* pw_k8s_policy_by_object: the elements go out one by one through
	 * pw_k8s_policy_changes; builds leave the text alone. */
	bool by_object;
	bool policy_fed;             /* the consumer holds what the last changes gave */
	bool policy_refeed;          /* hand everything over again next time */
	void *pdirty;                /* tsearch set of "<kind digit><key>" changed since */
	int n_pdirty;
};

static const char *const kind_names[PW_K8S_KINDS] = {
	"Node", "Service", "EndpointSlice", "Namespace", "Pod", "NetworkPolicy",
};

static bool is_policy_kind(enum pw_k8s_kind kind)
{
	return kind == PW_K8S_NAMESPACE || kind == PW_K8S_POD || kind == PW_K8S_NETPOL;
}

/* ---- names ---- */

static uint32_t fnv1a32(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

void pw_k8s_short_name(const char *name, char out[PW_NAME_MAX])
{
	size_t n = strlen(name);

	if (n < PW_NAME_MAX) {
		memcpy(out, name, n + 1);
		return;
	}
	/* 54 characters of the name, "~", 8 hex digits: 63. */
	snprintf(out, PW_NAME_MAX, "%.*s~%08x", PW_NAME_MAX - 10, name, fnv1a32(name));
}

void pw_k8s_service_name(const char *ns_name, const char *port_name, uint16_t port, uint8_t proto,
			 char out[PW_NAME_MAX])
{
	char full[512];

	if (port_name && *port_name)
		snprintf(full, sizeof(full), "%s:%s/%s", ns_name, port_name, proto == IPPROTO_UDP ? "udp" : "tcp");
	else
		snprintf(full, sizeof(full), "%s:%u/%s", ns_name, port, proto == IPPROTO_UDP ? "udp" : "tcp");
	pw_k8s_short_name(full, out);
}

/* ---- JSON access (lenient: the API server validated the objects) ---- */

static const cJSON *jget(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = jget(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integer in [min, max], else def. */
static long jint(const cJSON *o, const char *key, long min, long max, long def)
{
	const cJSON *v = jget(o, key);

	if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min && v->valuedouble <= (double)max))
		return def;
	return (long)v->valuedouble;
}

/* A condition: absent or null gives def. */
static bool jbool(const cJSON *o, const char *key, bool def)
{
	const cJSON *v = jget(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* IPPROTO_TCP/UDP of a protocol field (absent = TCP), 0 for others (SCTP). */
static uint8_t jproto(const cJSON *o)
{
	const char *p = jstr(o, "protocol");

	if (!p || strcmp(p, "TCP") == 0)
		return IPPROTO_TCP;
	if (strcmp(p, "UDP") == 0)
		return IPPROTO_UDP;
	return 0;
}

/* "ns/name" (namespaced kinds) or "name" of metadata; NULL if no name. */
static char *object_key(enum pw_k8s_kind kind, const cJSON *obj)
{
	const cJSON *md = jget(obj, "metadata");
	const char *name = jstr(md, "name"), *ns = jstr(md, "namespace");
	char *key;

	if (!name || !*name)
		return NULL;
	if (kind == PW_K8S_NODE || kind == PW_K8S_NAMESPACE)
		return strdup(name);
	if (asprintf(&key, "%s/%s", ns ? ns : "", name) < 0)
		return NULL;
	return key;
}

/* ---- parsing into cache entries ---- */

static void node_parse(const cJSON *obj, struct k8s_node *n)
{
	const cJSON *spec = jget(obj, "spec"), *cidrs = jget(spec, "podCIDRs"), *it;
	const char *cidr = jstr(spec, "podCIDR");

	n->has_cidr = cidr && pw_cidr_parse(cidr, &n->pod_cidr) == 0;
	/* Dual-stack nodes may list the IPv6 range first in podCIDR. */
	if (cJSON_IsArray(cidrs)) {
		cJSON_ArrayForEach(it, cidrs) {
			if (n->has_cidr)
				break;
			n->has_cidr = cJSON_IsString(it) && pw_cidr_parse(it->valuestring, &n->pod_cidr) == 0;
		}
	}
	const cJSON *addrs = jget(jget(obj, "status"), "addresses");

	if (!cJSON_IsArray(addrs))
		return;
	cJSON_ArrayForEach(it, addrs) {
		const char *type = jstr(it, "type"), *addr = jstr(it, "address");

		if (type && addr && strcmp(type, "InternalIP") == 0 && pw_ip4_parse(addr, &n->ip) == 0)
			break;
		n->ip = 0;
	}
}

static bool node_equal(const struct k8s_node *a, const struct k8s_node *b)
{
	return a->ip == b->ip && a->has_cidr == b->has_cidr &&
	       (!a->has_cidr || memcmp(&a->pod_cidr, &b->pod_cidr, sizeof(a->pod_cidr)) == 0);
}

static void ports_free(struct svc_port *p, int n)
{
	for (int i = 0; p && i < n; i++)
		free(p[i].name);
	free(p);
}

static bool ports_equal(const struct svc_port *a, int na, const struct svc_port *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (a[i].port != b[i].port || a[i].node_port != b[i].node_port || a[i].proto != b[i].proto ||
		    strcmp(a[i].name, b[i].name))
			return false;
	return true;
}

/* The TCP and UDP ports of a ports array (Service or EndpointSlice); SCTP
 * and ports without a number are left out. -ENOMEM. */
static int ports_parse(const char *what, const char *key, const cJSON *arr, bool service,
		       struct svc_port **out, int *n)
{
	const cJSON *it;

	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return 0;
	*out = calloc((size_t)cJSON_GetArraySize(arr), sizeof(**out));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		struct svc_port *p = &(*out)[*n];
		const char *name = jstr(it, "name");

		p->proto = jproto(it);
		p->port = (uint16_t)jint(it, "port", 1, 65535, 0);
		if (!p->proto || !p->port) {
			pw_debug("%s %s: port %s/%s left out (%s)", what, key, name ? name : "",
				 jstr(it, "protocol") ? jstr(it, "protocol") : "TCP",
				 p->proto ? "no port number" : "only TCP and UDP are served");
			continue;
		}
		if (service)
			p->node_port = (uint16_t)jint(it, "nodePort", 1, 65535, 0);
		p->name = strdup(name ? name : "");
		if (!p->name)
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static int service_parse(const struct pw_k8s_model *m, const cJSON *obj, struct k8s_service *s)
{
	const cJSON *spec = jget(obj, "spec");
	const char *type = jstr(spec, "type"), *ip = jstr(spec, "clusterIP"), *aff = jstr(spec, "sessionAffinity");
	bool node_ports = type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0);
	char scidr[PW_CIDR_STRLEN];
	int ret;

	s->vip = 0;
	if (type && strcmp(type, "ExternalName") == 0) {
		pw_debug("Service %s: ExternalName, not in the datapath", s->e.key);
		return 0;
	}
	if (!ip || !*ip || strcmp(ip, "None") == 0) {
		pw_debug("Service %s: headless, not in the datapath", s->e.key);
		return 0;
	}
	if (pw_ip4_parse(ip, &s->vip)) {
		pw_debug("Service %s: clusterIP %s is not IPv4, not in the datapath", s->e.key, ip);
		s->vip = 0;
		return 0;
	}
	if (!pw_cidr_contains(&m->service_cidr, s->vip)) {
		pw_cidr_format(&m->service_cidr, scidr);
		pw_warn("Service %s: clusterIP %s is outside cluster.serviceCIDR %s: ignored "
			"(does the config file's serviceCIDR match kube-apiserver's --service-cluster-ip-range?)",
			s->e.key, ip, scidr);
		s->vip = 0;
		return 0;
	}
	if (aff && strcmp(aff, "ClientIP") == 0)
		s->affinity = (uint32_t)jint(jget(jget(spec, "sessionAffinityConfig"), "clientIP"),
					     "timeoutSeconds", 1, 86400, PW_K8S_AFFINITY_DEFAULT);
	s->external_local = node_ports && jstr(spec, "externalTrafficPolicy") &&
			    strcmp(jstr(spec, "externalTrafficPolicy"), "Local") == 0;
	s->health_check_port = s->external_local ?
		(uint16_t)jint(spec, "healthCheckNodePort", 0, 65535, 0) : 0;
	s->internal_local = jstr(spec, "internalTrafficPolicy") &&
			    strcmp(jstr(spec, "internalTrafficPolicy"), "Local") == 0;
	ret = ports_parse("Service", s->e.key, jget(spec, "ports"), true, &s->ports, &s->n_ports);
	for (int i = 0; !ret && i < s->n_ports; i++) {
		struct svc_port *p = &s->ports[i];

		if (!node_ports)
			p->node_port = 0;
		if (p->node_port && (p->node_port < NODEPORT_MIN || p->node_port > NODEPORT_MAX)) {
			pw_warn("Service %s: nodePort %u is outside %d-%d, which the datapath serves: "
				"only its ClusterIP is served", s->e.key, p->node_port, NODEPORT_MIN, NODEPORT_MAX);
			p->node_port = 0;
		}
	}
	return ret;
}

static bool service_equal(const struct k8s_service *a, const struct k8s_service *b)
{
	return a->vip == b->vip && a->affinity == b->affinity && a->external_local == b->external_local &&
	       a->internal_local == b->internal_local && a->health_check_port == b->health_check_port &&
	       ports_equal(a->ports, a->n_ports, b->ports, b->n_ports);
}

static void service_free(struct k8s_service *s)
{
	ports_free(s->ports, s->n_ports);
	s->ports = NULL;
	s->n_ports = 0;
}

/* 0; 1 when the slice is of no use (not IPv4, no service label). */
static int slice_parse(const cJSON *obj, struct k8s_slice *s)
{
	const char *af = jstr(obj, "addressType");
	const char *svc = jstr(jget(jget(obj, "metadata"), "labels"), "kubernetes.io/service-name");
	const char *ns = jstr(jget(obj, "metadata"), "namespace");
	const cJSON *eps = jget(obj, "endpoints"), *it;
	int ret;

	if (!af || strcmp(af, "IPv4")) {
		pw_debug("EndpointSlice %s: addressType %s, left out (IPv4 only)", s->e.key, af ? af : "(none)");
		return 1;
	}
	if (!svc || !*svc) {
		pw_debug("EndpointSlice %s: no kubernetes.io/service-name label, left out", s->e.key);
		return 1;
	}
	if (asprintf(&s->service, "%s/%s", ns ? ns : "", svc) < 0) {
		s->service = NULL;
		return -ENOMEM;
	}
	ret = ports_parse("EndpointSlice", s->e.key, jget(obj, "ports"), false, &s->ports, &s->n_ports);
	if (ret)
		return ret;
	if (!cJSON_IsArray(eps) || cJSON_GetArraySize(eps) == 0)
		return 0;
	s->eps = calloc((size_t)cJSON_GetArraySize(eps), sizeof(*s->eps));
	if (!s->eps)
		return -ENOMEM;
	cJSON_ArrayForEach(it, eps) {
		const cJSON *addrs = jget(it, "addresses"), *cond = jget(it, "conditions");
		struct slice_ep *ep = &s->eps[s->n_eps];
		const cJSON *first = cJSON_IsArray(addrs) ? cJSON_GetArrayItem(addrs, 0) : NULL;
		bool ready = jbool(cond, "ready", true);

		/* kube-proxy uses an endpoint's first address only. */
		if (!cJSON_IsString(first) || pw_ip4_parse(first->valuestring, &ep->ip))
			continue;
		ep->flags = (ready ? EP_READY : 0) | (jbool(cond, "serving", ready) ? EP_SERVING : 0) |
			    (jbool(cond, "terminating", false) ? EP_TERMINATING : 0);
		s->n_eps++;
	}
	return 0;
}

static bool slice_equal(const struct k8s_slice *a, const struct k8s_slice *b)
{
	return strcmp(a->service, b->service) == 0 && a->n_eps == b->n_eps &&
	       ports_equal(a->ports, a->n_ports, b->ports, b->n_ports) &&
	       (a->n_eps == 0 || memcmp(a->eps, b->eps, (size_t)a->n_eps * sizeof(*a->eps)) == 0);
}

/* ---- the cache ---- */

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct k8s_entry *)a)->key, ((const struct k8s_entry *)b)->key);
}

static void entry_free_kind(enum pw_k8s_kind kind, struct k8s_entry *e)
{
	if (!e)
		return;
	if (kind == PW_K8S_SERVICE) {
		service_free((struct k8s_service *)e);
	} else if (kind == PW_K8S_SLICE) {
		struct k8s_slice *s = (struct k8s_slice *)e;

		free(s->service);
		ports_free(s->ports, s->n_ports);
		free(s->eps);
	} else if (is_policy_kind(kind)) {
		free(((struct k8s_elem *)e)->json);
	}
	free(e->key);
	free(e);
}

static void free_node_entry(void *e) { entry_free_kind(PW_K8S_NODE, e); }
static void free_service_entry(void *e) { entry_free_kind(PW_K8S_SERVICE, e); }
static void free_slice_entry(void *e) { entry_free_kind(PW_K8S_SLICE, e); }
static void free_elem_entry(void *e) { entry_free_kind(PW_K8S_POD, e); }
static void (*const entry_free_fn[PW_K8S_KINDS])(void *) = {
	free_node_entry, free_service_entry, free_slice_entry, free_elem_entry, free_elem_entry, free_elem_entry,
};

static int key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The Service of key needs building again. Without memory for the note,
 * everything does. */
static void mark_dirty(struct pw_k8s_model *m, const char *key)
{
	char *k, **slot;

	if (!key || m->rebuild_all || tfind(key, &m->dirty, key_cmp))
		return;
	k = strdup(key);
	slot = k ? tsearch(k, &m->dirty, key_cmp) : NULL;
	if (!slot || *slot != k) {
		free(k);
		m->rebuild_all = true;
		return;
	}
	m->n_dirty++;
}

/* A policy element changed. The consumer of pw_k8s_policy_changes needs
 * its key only once it holds the others (policy_fed); without memory for
 * the note it gets everything again. */
static void mark_policy(struct pw_k8s_model *m, enum pw_k8s_kind kind, const char *key)
{
	size_t len = strlen(key);
	char *k, **slot;

	m->policy_dirty = true;
	if (!m->by_object || !m->policy_fed || m->policy_refeed)
		return;
	k = malloc(len + 2);
	if (k) {
		k[0] = (char)('0' + kind);
		memcpy(k + 1, key, len + 1);
	}
	slot = k ? tsearch(k, &m->pdirty, key_cmp) : NULL;
	if (!slot)
		m->policy_refeed = true;
	if (!slot || *slot != k)
		free(k);
	else
		m->n_pdirty++;
}

static void clear_policy_dirty(struct pw_k8s_model *m)
{
	tdestroy(m->pdirty, free);
	m->pdirty = NULL;
	m->n_pdirty = 0;
}

/* The Services whose config an entry of kind can change. */
static void mark_entry(struct pw_k8s_model *m, enum pw_k8s_kind kind, const struct k8s_entry *e)
{
	if (kind == PW_K8S_SERVICE)
		mark_dirty(m, e->key);
	else if (kind == PW_K8S_SLICE)
		mark_dirty(m, ((const struct k8s_slice *)e)->service);
	else if (is_policy_kind(kind))
		mark_policy(m, kind, e->key);
}

static void clear_dirty(struct pw_k8s_model *m)
{
	tdestroy(m->dirty, free);
	m->dirty = NULL;
	m->n_dirty = 0;
}

struct pw_k8s_model *pw_k8s_model_new(const char *node_name, const struct pw_cidr *cluster_cidr,
				      const struct pw_cidr *service_cidr)
{
	struct pw_k8s_model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->node_name = strdup(node_name ? node_name : "");
	if (!m->node_name) {
		free(m);
		return NULL;
	}
	m->cluster_cidr = *cluster_cidr;
	m->service_cidr = *service_cidr;
	m->rebuild_all = true;
	return m;
}

static void keys_free(char **keys, int n)
{
	for (int i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

void pw_k8s_model_free(struct pw_k8s_model *m)
{
	if (!m)
		return;
	for (int k = 0; k < PW_K8S_KINDS; k++)
		tdestroy(m->root[k], entry_free_fn[k]);
	clear_dirty(m);
	clear_policy_dirty(m);
	keys_free(m->built_keys, m->built_n);
	free(m->carried);
	free(m->node_name);
	free(m);
}

static long slice_eps(enum pw_k8s_kind kind, const struct k8s_entry *e)
{
	return kind == PW_K8S_SLICE && e ? ((const struct k8s_slice *)e)->n_eps : 0;
}

/* Removes the entry of key; 1 if there was one. */
static int cache_delete(struct pw_k8s_model *m, enum pw_k8s_kind kind, char *key)
{
	struct k8s_entry probe = { .key = key }, **slot = tfind(&probe, &m->root[kind], entry_cmp), *old;

	if (!slot)
		return 0;
	old = *slot;
	tdelete(&probe, &m->root[kind], entry_cmp);
	m->count[kind]--;
	m->endpoints -= slice_eps(kind, old);
	mark_entry(m, kind, old);
	entry_free_kind(kind, old);
	return 1;
}

/* Puts e (owned) in place of the entry of its key. 1 if that changed what
 * the cache says, 0 if the same was there (e freed), -ENOMEM. */
static int cache_put(struct pw_k8s_model *m, enum pw_k8s_kind kind, struct k8s_entry *e)
{
	struct k8s_entry **slot = tfind(e, &m->root[kind], entry_cmp), *old;
	bool same;

	e->gen = m->gen[kind];
	if (!slot) {
		if (!tsearch(e, &m->root[kind], entry_cmp)) {
			entry_free_kind(kind, e);
			return -ENOMEM;
		}
		m->count[kind]++;
		m->endpoints += slice_eps(kind, e);
		mark_entry(m, kind, e);
		return 1;
	}
	old = *slot;
	same = kind == PW_K8S_NODE ? node_equal((void *)old, (void *)e) :
	       kind == PW_K8S_SERVICE ? service_equal((void *)old, (void *)e) :
	       kind == PW_K8S_SLICE ? slice_equal((void *)old, (void *)e) :
	       strcmp(((struct k8s_elem *)old)->json, ((struct k8s_elem *)e)->json) == 0;
	if (same) {
		old->gen = e->gen;
		entry_free_kind(kind, e);
		return 0;
	}
	m->endpoints += slice_eps(kind, e) - slice_eps(kind, old);
	*slot = e;   /* same key: the tree's order holds */
	mark_entry(m, kind, old);   /* a slice may have moved to another Service */
	mark_entry(m, kind, e);
	entry_free_kind(kind, old);
	return 1;
}

static const size_t entry_size[PW_K8S_KINDS] = {
	sizeof(struct k8s_node), sizeof(struct k8s_service), sizeof(struct k8s_slice),
	sizeof(struct k8s_elem), sizeof(struct k8s_elem), sizeof(struct k8s_elem),
};

/* A Namespace, Pod or NetworkPolicy into its element; 1: not in the model. */
static int elem_parse(enum pw_k8s_kind kind, const cJSON *obj, struct k8s_elem *el)
{
	const char *slash = strchr(el->e.key, '/');
	char ns[64];

	if (kind == PW_K8S_NAMESPACE)
		return pw_k8s_namespace_element(obj, el->e.key, &el->json);
	if (kind == PW_K8S_POD)
		return pw_k8s_pod_element(obj, el->e.key, &el->json);
	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - el->e.key) : 0, el->e.key);
	el->id = pw_policy_id(ns, slash ? slash + 1 : el->e.key);
	return pw_k8s_netpol_element(obj, el->e.key, &el->json);
}

/* A Node whose podCIDR cannot be a peer's is worth one warning per change. */
static void node_check(const struct pw_k8s_model *m, const struct k8s_node *n)
{
	char a[PW_CIDR_STRLEN], b[PW_CIDR_STRLEN];

	if (n->has_cidr && !pw_cidr_within(&n->pod_cidr, &m->cluster_cidr)) {
		pw_cidr_format(&n->pod_cidr, a);
		pw_cidr_format(&m->cluster_cidr, b);
		pw_warn("Node %s: spec.podCIDR %s is outside cluster.podCIDR %s: not routed "
			"(does the config file's podCIDR match kube-controller-manager's --cluster-cidr?)",
			n->e.key, a, b);
	}
}

int pw_k8s_upsert(struct pw_k8s_model *m, enum pw_k8s_kind kind, const cJSON *obj)
{
	char *key = object_key(kind, obj);
	struct k8s_entry *e;
	int ret = 0;

	if (!key)
		return -EINVAL;
	e = calloc(1, entry_size[kind]);
	if (!e) {
		free(key);
		return -ENOMEM;
	}
	e->key = key;
	if (kind == PW_K8S_NODE) {
		node_parse(obj, (struct k8s_node *)e);
	} else if (kind == PW_K8S_SERVICE) {
		ret = service_parse(m, obj, (struct k8s_service *)e);
	} else {
		ret = kind == PW_K8S_SLICE ? slice_parse(obj, (struct k8s_slice *)e) :
		      elem_parse(kind, obj, (struct k8s_elem *)e);
		if (ret == 1) {
			ret = cache_delete(m, kind, key);
			entry_free_kind(kind, e);
			return ret;
		}
	}
	if (ret) {
		entry_free_kind(kind, e);
		return ret;
	}
	ret = cache_put(m, kind, e);
	if (ret == 1 && kind == PW_K8S_NODE)
		node_check(m, (struct k8s_node *)e);
	return ret;
}

int pw_k8s_remove(struct pw_k8s_model *m, enum pw_k8s_kind kind, const cJSON *obj)
{
	char *key = object_key(kind, obj);
	int ret;

	if (!key)
		return -EINVAL;
	ret = cache_delete(m, kind, key);
	free(key);
	return ret;
}

/* Every entry of a tree in key order: an array of n pointers (caller frees;
 * NULL when empty or on ENOMEM, told apart by *n). */
struct collect {
	const struct k8s_entry **out;
	int n;
};

static void collect_one(const void *nodep, VISIT which, void *closure)
{
	struct collect *c = closure;

	if (which == postorder || which == leaf)
		c->out[c->n++] = *(const struct k8s_entry *const *)nodep;
}

static const struct k8s_entry **collect(const struct pw_k8s_model *m, enum pw_k8s_kind kind, int *n)
{
	struct collect c = { .out = calloc((size_t)m->count[kind] + 1, sizeof(*c.out)) };

	*n = 0;
	if (!c.out)
		return NULL;
	twalk_r(m->root[kind], collect_one, &c);
	*n = c.n;
	return c.out;
}

void pw_k8s_relist_begin(struct pw_k8s_model *m, enum pw_k8s_kind kind)
{
	m->gen[kind]++;
}

int pw_k8s_relist_end(struct pw_k8s_model *m, enum pw_k8s_kind kind)
{
	const struct k8s_entry **all;
	char **stale;
	int n, n_stale = 0;

	m->synced[kind] = true;
	all = collect(m, kind, &n);
	stale = calloc((size_t)n + 1, sizeof(*stale));
	if (!all || !stale) {
		free(all);
		free(stale);
		return 0;   /* dropped next relist */
	}
	for (int i = 0; i < n; i++)
		if (all[i]->gen != m->gen[kind] && (stale[n_stale] = strdup(all[i]->key)))
			n_stale++;
	free(all);
	for (int i = 0; i < n_stale; i++) {
		pw_debug("%s %s: gone from the relist, removed", kind_names[kind], stale[i]);
		cache_delete(m, kind, stale[i]);
		free(stale[i]);
	}
	free(stale);
	return n_stale;
}

bool pw_k8s_synced(const struct pw_k8s_model *m, enum pw_k8s_kind kind)
{
	return m->synced[kind];
}

void pw_k8s_counts(const struct pw_k8s_model *m, struct pw_k8s_counts *out)
{
	out->nodes = m->count[PW_K8S_NODE];
	out->services = m->count[PW_K8S_SERVICE];
	out->slices = m->count[PW_K8S_SLICE];
	out->namespaces = m->count[PW_K8S_NAMESPACE];
	out->pods = m->count[PW_K8S_POD];
	out->netpols = m->count[PW_K8S_NETPOL];
	out->endpoints = m->endpoints;
	out->builds_whole = m->builds_whole;
	out->builds_incremental = m->builds_incremental;
}

/* ---- building the node config ---- */

static int fail_why(char *why, size_t len, int err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_why(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return err;
}

static int build_self(const struct pw_k8s_model *m, struct pw_node_config *out, char *why, size_t len)
{
	struct k8s_entry probe = { .key = m->node_name }, **slot = tfind(&probe, &m->root[PW_K8S_NODE], entry_cmp);
	const struct k8s_node *n = slot ? (const struct k8s_node *)*slot : NULL;
	char a[PW_CIDR_STRLEN], b[PW_CIDR_STRLEN];

	if (!n)
		return fail_why(why, len, -EAGAIN, "waiting for Node %s to be registered "
				"(--node-name must be the name its kubelet registers)", m->node_name);
	if (!n->has_cidr)
		return fail_why(why, len, -EAGAIN, "waiting for node %s's spec.podCIDR "
				"(is kube-controller-manager running with --allocate-node-cidrs?)", m->node_name);
	if (!n->ip)
		return fail_why(why, len, -EAGAIN, "waiting for node %s's InternalIP in status.addresses",
				m->node_name);
	pw_cidr_format(&n->pod_cidr, a);
	if (n->pod_cidr.prefix > 30)
		return fail_why(why, len, -EINVAL, "node %s's spec.podCIDR %s leaves no address for pods "
				"(at most /30: kube-controller-manager's --node-cidr-mask-size)", m->node_name, a);
	if (n->pod_cidr.prefix < PW_NODE_POD_CIDR_MIN_PREFIX)
		return fail_why(why, len, -EINVAL, "node %s's spec.podCIDR %s is wider than a node's pods can use "
				"(at least /%u: kube-controller-manager's --node-cidr-mask-size)", m->node_name, a,
				PW_NODE_POD_CIDR_MIN_PREFIX);
	if (!pw_cidr_within(&n->pod_cidr, &out->cluster_cidr)) {
		pw_cidr_format(&out->cluster_cidr, b);
		return fail_why(why, len, -EINVAL, "node %s's spec.podCIDR %s is outside cluster.podCIDR %s "
				"(make the config file's cluster.podCIDR kube-controller-manager's --cluster-cidr)",
				m->node_name, a, b);
	}
	pw_k8s_short_name(n->e.key, out->name);
	out->ip = n->ip;
	out->pod_cidr = n->pod_cidr;
	return 0;
}

/* Every other Node with an IPv4 podCIDR and InternalIP, in name order;
 * podCIDRs the reconciler could not route (outside the cluster CIDR,
 * overlapping this node's or an earlier peer's) are left out. */
static int build_peers(const struct pw_k8s_model *m, struct pw_node_config *out)
{
	int n;
	const struct k8s_entry **all = collect(m, PW_K8S_NODE, &n);

	if (!all)
		return -ENOMEM;
	out->peers = calloc((size_t)n + 1, sizeof(*out->peers));
	if (!out->peers) {
		free(all);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		const struct k8s_node *nd = (const struct k8s_node *)all[i];
		struct pw_peer_config *p = &out->peers[out->n_peers];
		bool usable = nd->has_cidr && nd->ip && nd->ip != out->ip &&
			      strcmp(nd->e.key, m->node_name) &&
			      pw_cidr_within(&nd->pod_cidr, &out->cluster_cidr) &&
			      !pw_cidr_overlaps(&nd->pod_cidr, &out->pod_cidr);

		for (int j = 0; usable && j < out->n_peers; j++)
			if (pw_cidr_overlaps(&nd->pod_cidr, &out->peers[j].pod_cidr) || out->peers[j].ip == nd->ip) {
				pw_warn("Node %s: podCIDR or InternalIP also that of node %s: not routed",
					nd->e.key, out->peers[j].name);
				usable = false;
			}
		if (!usable)
			continue;
		pw_k8s_short_name(nd->e.key, p->name);
		p->ip = nd->ip;
		p->pod_cidr = nd->pod_cidr;
		out->n_peers++;
	}
	free(all);
	return 0;
}

static int backend_cmp(const void *a, const void *b)
{
	const struct pw_backend_config *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return (int)x->port - (int)y->port;
}

/* The slices of one service: a range of the slices sorted by service. */
struct slice_range {
	const struct k8s_slice *const *first;
	int n;
};

static int slice_by_service_cmp(const void *a, const void *b)
{
	const struct k8s_slice *x = *(const struct k8s_slice *const *)a, *y = *(const struct k8s_slice *const *)b;
	int c = strcmp(x->service, y->service);

	return c ? c : strcmp(x->e.key, y->e.key);
}

/* The slices of each service, by one walk of both sorted lists (services
 * in key order, slices by service): a binary search per service cost half
 * of a 10,000-service build in strcmp. ranges[i] is svcs[i]'s. */
static void slice_ranges(const struct k8s_entry **svcs, int n_svc, const struct k8s_slice **sorted, int n_sl,
			 struct slice_range *ranges)
{
	int j = 0;

	for (int i = 0; i < n_svc; i++) {
		const char *key = svcs[i]->key;
		int n = 0;

		while (j < n_sl && strcmp(sorted[j]->service, key) < 0)
			j++;
		while (j + n < n_sl && strcmp(sorted[j + n]->service, key) == 0)
			n++;
		ranges[i] = (struct slice_range){ .first = (const struct k8s_slice *const *)&sorted[j], .n = n };
		j += n;
	}
}

/* Backends of one service port: ready endpoints of every slice port of the
 * same name and protocol, or, when none is ready, the serving terminating
 * ones; sorted, duplicates (an endpoint in two slices) once. buf has room
 * for every endpoint of the range. Returns the count. */
static int port_backends(struct slice_range r, const struct svc_port *sp, struct pw_backend_config *buf)
{
	int n = 0;

	for (int pass = 0; pass < 2 && n == 0; pass++) {
		for (int i = 0; i < r.n; i++) {
			const struct k8s_slice *s = r.first[i];
			uint16_t port = 0;

			for (int j = 0; j < s->n_ports && !port; j++)
				if (s->ports[j].proto == sp->proto && strcmp(s->ports[j].name, sp->name) == 0)
					port = s->ports[j].port;
			for (int j = 0; port && j < s->n_eps; j++) {
				const struct slice_ep *ep = &s->eps[j];

				if (pass == 0 ? (ep->flags & EP_READY) :
				    (ep->flags & (EP_SERVING | EP_TERMINATING)) == (EP_SERVING | EP_TERMINATING))
					buf[n++] = (struct pw_backend_config){ .ip = ep->ip, .port = port };
			}
		}
	}
	qsort(buf, (size_t)n, sizeof(*buf), backend_cmp);
	int u = 0;

	for (int i = 0; i < n; i++)
		if (u == 0 || backend_cmp(&buf[u - 1], &buf[i]))
			buf[u++] = buf[i];
	return u;
}

static int service_port_config(const struct k8s_service *s, const struct svc_port *sp, struct slice_range r,
			       struct pw_backend_config *buf, struct pw_service_config *out)
{
	int n = port_backends(r, sp, buf);

	pw_k8s_service_name(s->e.key, sp->name, sp->port, sp->proto, out->name);
	out->vip = s->vip;
	out->port = sp->port;
	out->protocol = sp->proto;
	out->node_port = sp->node_port;
	out->affinity_timeout = s->affinity;
	out->external_local = s->external_local && sp->node_port;
	out->internal_local = s->internal_local;
	out->health_check_port = out->external_local ? s->health_check_port : 0;
	out->maglev = false;
	if (n == 0)
		return 0;
	out->backends = malloc((size_t)n * sizeof(*out->backends));
	if (!out->backends)
		return -ENOMEM;
	memcpy(out->backends, buf, (size_t)n * sizeof(*buf));
	out->n_backends = n;
	return 0;
}

/* Frontends or node ports that two services claim (for a moment, while
 * the API hands a ClusterIP from a deleted Service to a new one and the
 * deletion has not arrived yet) would make the service reconciler refuse
 * every change: the later in name order loses, with a warning. */
static int frontend_cmp(const void *a, const void *b)
{
	const struct pw_service_config *x = *(const struct pw_service_config *const *)a;
	const struct pw_service_config *y = *(const struct pw_service_config *const *)b;

	if (x->vip != y->vip)
		return x->vip < y->vip ? -1 : 1;
	if (x->port != y->port)
		return (int)x->port - (int)y->port;
	if (x->protocol != y->protocol)
		return (int)x->protocol - (int)y->protocol;
	return strcmp(x->name, y->name);
}

static int nodeport_cmp(const void *a, const void *b)
{
	const struct pw_service_config *x = *(const struct pw_service_config *const *)a;
	const struct pw_service_config *y = *(const struct pw_service_config *const *)b;

	if (x->node_port != y->node_port)
		return (int)x->node_port - (int)y->node_port;
	if (x->protocol != y->protocol)
		return (int)x->protocol - (int)y->protocol;
	return strcmp(x->name, y->name);
}

static bool same_nodeport(const struct pw_service_config *x, const struct pw_service_config *y)
{
	return x->node_port && x->node_port == y->node_port && x->protocol == y->protocol;
}

static bool same_frontend(const struct pw_service_config *x, const struct pw_service_config *y)
{
	return x->vip == y->vip && x->port == y->port && x->protocol == y->protocol;
}

static int name_cmp(const void *a, const void *b)
{
	const struct pw_service_config *x = *(const struct pw_service_config *const *)a;
	const struct pw_service_config *y = *(const struct pw_service_config *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x < y ? -1 : x > y);
}

static bool same_name(const struct pw_service_config *x, const struct pw_service_config *y)
{
	return strcmp(x->name, y->name) == 0;
}

/* Sorted by cmp, every entry that is same() as the last one kept is
 * handed to lose(). Returns how many were. */
static int drop_pass(struct pw_service_config **idx, int n, int (*cmp)(const void *, const void *),
		      bool (*same)(const struct pw_service_config *, const struct pw_service_config *),
		      void (*lose)(struct pw_service_config *s, const struct pw_service_config *kept))
{
	struct pw_service_config *kept = NULL;
	int lost = 0;

	qsort(idx, (size_t)n, sizeof(*idx), cmp);
	for (int i = 0; i < n; i++) {
		if (!idx[i]->vip)
			continue;   /* already left out */
		if (kept && same(idx[i], kept)) {
			lose(idx[i], kept);
			lost++;
		} else {
			kept = idx[i];
		}
	}
	return lost;
}

static void lose_nodeport(struct pw_service_config *s, const struct pw_service_config *kept)
{
	pw_warn("service %s: nodePort %u is also that of %s: only its ClusterIP is served",
		s->name, s->node_port, kept->name);
	s->node_port = 0;
	s->external_local = false;   /* a policy of the node port, which is gone */
	s->health_check_port = 0;
}

/* Marked with VIP 0 (no service has it), compacted by drop_conflicts. */
static void lose_frontend(struct pw_service_config *s, const struct pw_service_config *kept)
{
	pw_warn("service %s: its frontend is also that of %s: left out", s->name, kept->name);
	s->vip = 0;
}

static void lose_name(struct pw_service_config *s, const struct pw_service_config *kept)
{
	(void)kept;
	pw_warn("service %s: two ports of one Service give this name: the second left out", s->name);
	s->vip = 0;
}

/* Leaves out what conflicts (keys[i] is services[i]'s Service, compacted
 * alongside). Returns how many entries lost something, or -ENOMEM. */
static int drop_conflicts(struct pw_node_config *out, const char **keys)
{
	struct pw_service_config **idx = calloc((size_t)out->n_services + 1, sizeof(*idx));
	int n = 0, lost;

	if (!idx)
		return -ENOMEM;
	for (int i = 0; i < out->n_services; i++)
		idx[i] = &out->services[i];
	lost = drop_pass(idx, out->n_services, name_cmp, same_name, lose_name);
	lost += drop_pass(idx, out->n_services, frontend_cmp, same_frontend, lose_frontend);
	lost += drop_pass(idx, out->n_services, nodeport_cmp, same_nodeport, lose_nodeport);
	free(idx);
	for (int i = 0; i < out->n_services; i++) {
		if (out->services[i].vip) {
			keys[n] = keys[i];
			out->services[n++] = out->services[i];
			continue;
		}
		free(out->services[i].backends);
	}
	out->n_services = n;
	return lost;
}

/* The service entries of one Service (none when it is not in the
 * datapath), appended at out->services[out->n_services], each with its
 * key in keys. buf has room for every endpoint of r. */
static int service_entries(const struct k8s_service *s, struct slice_range r, struct pw_backend_config *buf,
			   struct pw_node_config *out, const char **keys)
{
	int ret = 0;

	if (!s->vip)
		return 0;
	for (int j = 0; j < s->n_ports && !ret; j++) {
		keys[out->n_services] = s->e.key;
		ret = service_port_config(s, &s->ports[j], r, buf, &out->services[out->n_services]);
		out->n_services++;   /* counted even on error: pw_config_free frees it */
	}
	return ret;
}

static long range_eps(struct slice_range r)
{
	long eps = 0;

	for (int j = 0; j < r.n; j++)
		eps += r.first[j]->n_eps;
	return eps;
}

/* The model's record of the build the caller now holds: the key of each
 * entry's Service (owned: cache entries may go before the next build). */
static void set_built_keys(struct pw_k8s_model *m, char **keys, int n)
{
	keys_free(m->built_keys, m->built_n);
	m->built_keys = keys;
	m->built_n = n;
}

static int remember_keys(struct pw_k8s_model *m, const char **keys, int n)
{
	char **own = calloc((size_t)n + 1, sizeof(*own));

	for (int i = 0; own && i < n; i++)
		if (!(own[i] = strdup(keys[i]))) {
			keys_free(own, i);
			own = NULL;
		}
	if (!own)
		return -ENOMEM;
	set_built_keys(m, own, n);
	return 0;
}

static int build_services(struct pw_k8s_model *m, struct pw_node_config *out)
{
	int n_svc, n_sl, n_ports = 0, max_eps = 0, ret = 0;
	const struct k8s_entry **svcs = collect(m, PW_K8S_SERVICE, &n_svc);
	const struct k8s_entry **slices = collect(m, PW_K8S_SLICE, &n_sl);
	struct slice_range *ranges = calloc((size_t)n_svc + 1, sizeof(*ranges));
	struct pw_backend_config *buf = NULL;
	const char **keys = NULL;

	if (!svcs || !slices || !ranges) {
		ret = -ENOMEM;
		goto out;
	}
	qsort(slices, (size_t)n_sl, sizeof(*slices), slice_by_service_cmp);
	slice_ranges(svcs, n_svc, (const struct k8s_slice **)slices, n_sl, ranges);
	for (int i = 0; i < n_svc; i++) {
		const struct k8s_service *s = (const struct k8s_service *)svcs[i];

		if (!s->vip)
			continue;
		n_ports += s->n_ports;
		if (range_eps(ranges[i]) > max_eps)
			max_eps = (int)range_eps(ranges[i]);
	}
	out->services = calloc((size_t)n_ports + 1, sizeof(*out->services));
	keys = calloc((size_t)n_ports + 1, sizeof(*keys));
	buf = malloc(((size_t)max_eps + 1) * sizeof(*buf));
	if (!out->services || !keys || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n_svc && !ret; i++)
		ret = service_entries((const struct k8s_service *)svcs[i], ranges[i], buf, out, keys);
	if (!ret)
		ret = drop_conflicts(out, keys);
	if (ret >= 0) {
		/* Entries that lost a conflict come back only by a whole build. */
		m->rebuild_all = ret > 0;
		ret = remember_keys(m, keys, out->n_services);
	}
out:
	free(keys);
	free(buf);
	free(ranges);
	free(svcs);
	free(slices);
	return ret;
}

/* What the API does not say, from base; this node and its peers (few:
 * every build makes them whole). */
static int build_nodes(const struct pw_k8s_model *m, const struct pw_node_config *base,
		       struct pw_node_config *out, char *why, size_t whylen)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->from_kubernetes = true;
	if (why && whylen)
		why[0] = '\0';
	memcpy(out->uplink, base->uplink, sizeof(out->uplink));
	out->cluster_cidr = base->cluster_cidr;
	out->service_cidr = base->service_cidr;
	out->routing = base->routing;
	out->masquerade = base->masquerade;
	memcpy(out->nodeport_cidrs, base->nodeport_cidrs, sizeof(out->nodeport_cidrs));
	out->n_nodeport_cidrs = base->n_nodeport_cidrs;
	out->nodeport_range_min = base->nodeport_range_min;
	out->nodeport_range_max = base->nodeport_range_max;
	out->mtu = base->mtu;
	out->pod_device = base->pod_device;
	out->has_pod_device = base->has_pod_device;
	ret = build_self(m, out, why, whylen);
	return ret ? ret : build_peers(m, out);
}

/* ---- the policy model ---- */

struct textbuf {
	char *p;
	size_t len, cap;
	bool nomem;
};

static void tb_add(struct textbuf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void tb_puts(struct textbuf *b, const char *s)
{
	tb_add(b, s, strlen(s));
}

struct id_index {
	uint32_t id;
	int i;
};

static int id_index_cmp(const void *a, const void *b)
{
	const struct id_index *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->i - y->i;
}

/* Two NetworkPolicies whose names hash to one policy id would make the
 * model refuse every policy: the later in key order is left out. skip[i]
 * is set for those. -ENOMEM. */
static int skip_id_clashes(const struct k8s_entry **pols, int n, bool *skip)
{
	struct id_index *ix = calloc((size_t)n + 1, sizeof(*ix));

	if (!ix)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		ix[i] = (struct id_index){ ((const struct k8s_elem *)pols[i])->id, i };
	qsort(ix, (size_t)n, sizeof(*ix), id_index_cmp);
	for (int i = 1; i < n; i++)
		if (ix[i].id == ix[i - 1].id) {
			skip[ix[i].i] = true;
			pw_warn("NetworkPolicy %s: its policy id %08x is also that of %s: left out (rename one)",
				pols[ix[i].i]->key, ix[i].id, pols[ix[i - 1].i]->key);
		}
	free(ix);
	return 0;
}

/* "name":[elem,elem,...] of kind's entries, in key order. */
static int policy_section(const struct pw_k8s_model *m, enum pw_k8s_kind kind, const char *name,
			  struct textbuf *b)
{
	int n;
	const struct k8s_entry **all = collect(m, kind, &n);
	bool *skip = all ? calloc((size_t)n + 1, sizeof(*skip)) : NULL;
	bool first = true;

	if (!all || !skip || (kind == PW_K8S_NETPOL && skip_id_clashes(all, n, skip))) {
		free(all);
		free(skip);
		return -ENOMEM;
	}
	tb_puts(b, "\"");
	tb_puts(b, name);
	tb_puts(b, "\":[");
	for (int i = 0; i < n; i++) {
		if (skip[i])
			continue;
		if (!first)
			tb_puts(b, ",");
		tb_puts(b, ((const struct k8s_elem *)all[i])->json);
		first = false;
	}
	tb_puts(b, "]");
	free(all);
	free(skip);
	return b->nomem ? -ENOMEM : 0;
}

/* The policy model's text, NULL (in *out) without any NetworkPolicy. */
static int build_policy(const struct pw_k8s_model *m, char **out)
{
	struct textbuf b = { 0 };
	int ret;

	*out = NULL;
	if (!m->count[PW_K8S_NETPOL])
		return 0;
	tb_puts(&b, "{");
	ret = policy_section(m, PW_K8S_NAMESPACE, "namespaces", &b);
	tb_puts(&b, ",");
	if (!ret)
		ret = policy_section(m, PW_K8S_POD, "pods", &b);
	tb_puts(&b, ",");
	if (!ret)
		ret = policy_section(m, PW_K8S_NETPOL, "networkPolicies", &b);
	tb_puts(&b, "}");
	if (ret || b.nomem) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return 0;
}

/* A build the caller now holds whole: nothing is pending, nothing shared. */
static void build_done(struct pw_k8s_model *m)
{
	clear_dirty(m);
	m->policy_dirty = m->by_object;   /* by_object: out has no text, pw_k8s_policy_text makes it */
	m->policy_carried = false;
	free(m->carried);
	m->carried = NULL;
	m->carried_n = 0;
}

int pw_k8s_build(struct pw_k8s_model *m, const struct pw_node_config *base,
		 struct pw_node_config *out, char *why, size_t whylen)
{
	int ret = build_nodes(m, base, out, why, whylen);

	if (!ret)
		ret = build_services(m, out);
	if (!ret && !m->by_object)
		ret = build_policy(m, &out->policy_json);
	if (ret == -ENOMEM)
		fail_why(why, whylen, ret, "out of memory");
	if (ret) {
		pw_config_free(out);
		return ret;
	}
	build_done(m);
	m->builds_whole++;
	return 0;
}

/* ---- incremental builds ---- */

/* Most changes touch one Service; past this many, a whole build costs
 * about what checking each rebuilt entry against all others would. */
#define INCREMENTAL_MAX_SERVICES 64

struct changed {
	const char **keys;                   /* dirty keys, in key order */
	int n_keys;
	const struct k8s_entry **svcs;       /* the ones still in the cache */
	int n_svcs;
	struct slice_range *ranges;          /* svcs[i]'s slices */
	const struct k8s_entry **slices;     /* of dirty Services, by service */
	struct pw_service_config *fresh;     /* their entries, in key order */
	const char **fresh_keys;
	int n_fresh;
};

static void changed_free(struct changed *c)
{
	for (int i = 0; c->fresh && i < c->n_fresh; i++)
		free(c->fresh[i].backends);
	free(c->fresh);
	free(c->fresh_keys);
	free(c->keys);
	free(c->svcs);
	free(c->ranges);
	free(c->slices);
}

static void collect_key(const void *nodep, VISIT which, void *closure)
{
	struct changed *c = closure;

	if (which == postorder || which == leaf)
		c->keys[c->n_keys++] = *(const char *const *)nodep;
}

/* The dirty Services still in the cache and their slices (one walk of
 * every slice: cheaper than an index kept up to date on every event). */
static int find_changed(const struct pw_k8s_model *m, struct changed *c)
{
	int n_sl, n_sel = 0;
	const struct k8s_entry **all = collect(m, PW_K8S_SLICE, &n_sl);

	c->keys = calloc((size_t)m->n_dirty + 1, sizeof(*c->keys));
	c->svcs = calloc((size_t)m->n_dirty + 1, sizeof(*c->svcs));
	c->ranges = calloc((size_t)m->n_dirty + 1, sizeof(*c->ranges));
	c->slices = calloc((size_t)n_sl + 1, sizeof(*c->slices));
	if (!all || !c->keys || !c->svcs || !c->ranges || !c->slices) {
		free(all);
		return -ENOMEM;
	}
	twalk_r(m->dirty, collect_key, c);
	for (int i = 0; i < c->n_keys; i++) {
		struct k8s_entry probe = { .key = (char *)c->keys[i] };
		struct k8s_entry **slot = tfind(&probe, &m->root[PW_K8S_SERVICE], entry_cmp);

		if (slot)
			c->svcs[c->n_svcs++] = *slot;
	}
	for (int i = 0; i < n_sl; i++)
		if (tfind(((const struct k8s_slice *)all[i])->service, &m->dirty, key_cmp))
			c->slices[n_sel++] = all[i];
	free(all);
	qsort(c->slices, (size_t)n_sel, sizeof(*c->slices), slice_by_service_cmp);
	slice_ranges(c->svcs, c->n_svcs, (const struct k8s_slice **)c->slices, n_sel, c->ranges);
	return 0;
}

/* The entries of the changed Services, into c->fresh. */
static int build_fresh(struct changed *c)
{
	struct pw_node_config tmp = { 0 };
	struct pw_backend_config *buf;
	int n_ports = 0, max_eps = 0, ret = 0;

	for (int i = 0; i < c->n_svcs; i++) {
		const struct k8s_service *s = (const struct k8s_service *)c->svcs[i];

		n_ports += s->vip ? s->n_ports : 0;
		if (range_eps(c->ranges[i]) > max_eps)
			max_eps = (int)range_eps(c->ranges[i]);
	}
	tmp.services = calloc((size_t)n_ports + 1, sizeof(*tmp.services));
	c->fresh_keys = calloc((size_t)n_ports + 1, sizeof(*c->fresh_keys));
	buf = malloc(((size_t)max_eps + 1) * sizeof(*buf));
	if (!tmp.services || !c->fresh_keys || !buf)
		ret = -ENOMEM;
	for (int i = 0; i < c->n_svcs && !ret; i++)
		ret = service_entries((const struct k8s_service *)c->svcs[i], c->ranges[i], buf, &tmp, c->fresh_keys);
	free(buf);
	c->fresh = tmp.services;
	c->n_fresh = tmp.n_services;
	return ret;
}

static bool entries_conflict(const struct pw_service_config *x, const struct pw_service_config *y)
{
	return same_frontend(x, y) || same_nodeport(x, y) || same_name(x, y);
}

/* True when a fresh entry conflicts with another entry of out: the whole
 * build settles who wins, as it always has. */
static bool fresh_conflicts(const struct pw_node_config *out, const bool *is_fresh)
{
	for (int i = 0; i < out->n_services; i++) {
		if (!is_fresh[i])
			continue;
		for (int j = 0; j < out->n_services; j++)
			if (j != i && entries_conflict(&out->services[i], &out->services[j]))
				return true;
	}
	return false;
}

/* out->services := prev's entries of unchanged Services (shallow: their
 * backend lists stay prev's until pw_k8s_release) merged in key order
 * with the fresh ones. 1 when a whole build is needed after all. */
static int merge_into(struct pw_k8s_model *m, const struct pw_node_config *prev, struct changed *c,
		      struct pw_node_config *out)
{
	size_t cap = (size_t)prev->n_services + (size_t)c->n_fresh + 1;
	bool *carried = calloc((size_t)prev->n_services + 1, sizeof(*carried)), *is_fresh = calloc(cap, sizeof(bool));
	char **keys = calloc(cap, sizeof(*keys));
	int i = 0, j = 0, n = 0, ret = 0;

	out->services = calloc(cap, sizeof(*out->services));
	if (!carried || !is_fresh || !keys || !out->services) {
		ret = -ENOMEM;
		goto out;
	}
	while (i < prev->n_services || j < c->n_fresh) {
		if (i < prev->n_services && tfind(m->built_keys[i], &m->dirty, key_cmp)) {
			i++;   /* of a changed Service: replaced by its fresh entries */
			continue;
		}
		if (j < c->n_fresh && (i == prev->n_services || strcmp(c->fresh_keys[j], m->built_keys[i]) < 0)) {
			is_fresh[n] = true;
			keys[n] = strdup(c->fresh_keys[j]);
			if (!keys[n]) {
				ret = -ENOMEM;
				goto out;
			}
			out->services[n++] = c->fresh[j++];
			continue;
		}
		keys[n] = m->built_keys[i];   /* taken over at commit */
		carried[i] = true;
		out->services[n++] = prev->services[i++];
	}
	out->n_services = n;
	if (fresh_conflicts(out, is_fresh)) {
		ret = 1;
		goto out;
	}
	/* Commit: nothing below fails. */
	for (int k = 0; k < prev->n_services; k++)
		if (!carried[k])
			free(m->built_keys[k]);
	free(m->built_keys);
	m->built_keys = keys;
	m->built_n = n;
	keys = NULL;
	free(m->carried);
	m->carried = carried;
	m->carried_n = prev->n_services;
	carried = NULL;
	free(c->fresh);   /* the entries (and their backends) are out's now */
	c->fresh = NULL;
	c->n_fresh = 0;
	clear_dirty(m);
out:
	if (keys)
		for (int k = 0; k < n; k++)
			if (is_fresh[k])
				free(keys[k]);
	if (ret) {
		free(out->services);   /* shallow: the backends are prev's and c's */
		out->services = NULL;
		out->n_services = 0;
	}
	free(keys);
	free(carried);
	free(is_fresh);
	return ret;
}

int pw_k8s_build_next(struct pw_k8s_model *m, const struct pw_node_config *base,
		      const struct pw_node_config *prev, struct pw_node_config *out, char *why, size_t whylen)
{
	struct changed c = { 0 };
	char *policy = NULL;
	int ret;

	if (!prev || m->rebuild_all || m->n_dirty > INCREMENTAL_MAX_SERVICES || prev->n_services != m->built_n)
		return pw_k8s_build(m, base, out, why, whylen);
	ret = build_nodes(m, base, out, why, whylen);
	if (ret) {
		pw_config_free(out);
		return ret;
	}
	/* Before the services are merged: nothing may fail after that. */
	ret = m->policy_dirty && !m->by_object ? build_policy(m, &policy) : 0;
	if (!ret)
		ret = find_changed(m, &c);
	if (!ret)
		ret = build_fresh(&c);
	if (!ret)
		ret = merge_into(m, prev, &c, out);
	changed_free(&c);
	if (ret == 0) {
		if (m->policy_dirty && !m->by_object) {
			out->policy_json = policy;
			m->policy_dirty = false;
		} else {
			out->policy_json = prev->policy_json;
			m->policy_carried = true;
		}
		m->builds_incremental++;
		return 0;
	}
	free(policy);
	pw_config_free(out);   /* peers only: merge_into left no services */
	if (ret == 1)
		pw_debug("kubernetes: a changed Service conflicts with another: building all");
	return pw_k8s_build(m, base, out, why, whylen);
}

void pw_k8s_release(struct pw_k8s_model *m, struct pw_node_config *prev)
{
	if (m->carried && m->carried_n == prev->n_services)
		for (int i = 0; i < prev->n_services; i++)
			if (m->carried[i]) {
				prev->services[i].backends = NULL;   /* the next build's now */
				prev->services[i].n_backends = 0;
			}
	free(m->carried);
	m->carried = NULL;
	m->carried_n = 0;
	if (m->policy_carried)
		prev->policy_json = NULL;   /* the next build's now */
	m->policy_carried = false;
	pw_config_free(prev);
}

/* ---- the policy model object by object ---- */

void pw_k8s_policy_by_object(struct pw_k8s_model *m)
{
	m->by_object = true;
	m->policy_dirty = true;
}

void pw_k8s_policy_refeed(struct pw_k8s_model *m)
{
	m->policy_refeed = true;
	clear_policy_dirty(m);
}

bool pw_k8s_policy_text_stale(const struct pw_k8s_model *m)
{
	return m->policy_dirty;
}

int pw_k8s_policy_text(struct pw_k8s_model *m, char **out)
{
	int ret = build_policy(m, out);

	if (!ret)
		m->policy_dirty = false;
	return ret;
}

struct changes {
	struct pw_policy_change *v;
	int n, cap;
};

static enum pw_policy_section section_of(enum pw_k8s_kind kind)
{
	return kind == PW_K8S_NAMESPACE ? PW_POL_SEC_NS : kind == PW_K8S_POD ? PW_POL_SEC_PODS : PW_POL_SEC_POLS;
}

static int change_add(struct changes *c, enum pw_k8s_kind kind, const char *key, const char *json)
{
	struct pw_policy_change *ch;

	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 64;
		void *v = realloc(c->v, (size_t)cap * sizeof(*c->v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	ch = &c->v[c->n];
	ch->sec = section_of(kind);
	ch->key = strdup(key);
	ch->json = json ? strdup(json) : NULL;
	if (!ch->key || (json && !ch->json)) {
		free(ch->key);
		free(ch->json);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

/* Every element of the model, as pw_k8s_build would join them. */
static int changes_all(const struct pw_k8s_model *m, struct changes *c)
{
	static const enum pw_k8s_kind kinds[] = { PW_K8S_NAMESPACE, PW_K8S_POD, PW_K8S_NETPOL };
	int ret = 0;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && !ret; k++) {
		int n;
		const struct k8s_entry **all = collect(m, kinds[k], &n);
		bool *skip = all ? calloc((size_t)n + 1, sizeof(*skip)) : NULL;

		ret = !all || !skip ? -ENOMEM : kinds[k] == PW_K8S_NETPOL ? skip_id_clashes(all, n, skip) : 0;
		for (int i = 0; i < n && !ret; i++)
			if (!skip[i])
				ret = change_add(c, kinds[k], all[i]->key, ((const struct k8s_elem *)all[i])->json);
		free(all);
		free(skip);
	}
	return ret;
}

struct key_list {
	const char **v;
	int n;
};

static void key_list_one(const void *nodep, VISIT which, void *closure)
{
	struct key_list *l = closure;

	if (which == postorder || which == leaf)
		l->v[l->n++] = *(const char *const *)nodep;
}

static const struct k8s_elem *elem_find(const struct pw_k8s_model *m, enum pw_k8s_kind kind, const char *key)
{
	struct k8s_entry probe = { .key = (char *)key }, *const *slot = tfind(&probe, &m->root[kind], entry_cmp);

	return slot ? (const struct k8s_elem *)*slot : NULL;
}

/* The NetworkPolicy that holds policy id `id` in the model: the first in
 * key order of those with that id (as skip_id_clashes keeps), or NULL.
 * pols: every NetworkPolicy in key order, ix: their ids sorted. */
static const struct k8s_elem *id_holder(const struct k8s_entry **pols, const struct id_index *ix, int n, uint32_t id)
{
	int lo = 0, hi = n;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (ix[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ix[lo].id == id ? (const struct k8s_elem *)pols[ix[lo].i] : NULL;
}

static uint32_t key_policy_id(const char *key)
{
	const char *slash = strchr(key, '/');
	char ns[256];

	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - key) : 0, key);
	return pw_policy_id(ns, slash ? slash + 1 : key);
}

/* The elements whose keys changed since the last hand-over: each as it
 * is now, or gone. A NetworkPolicy stands for its policy id: whichever
 * policy now holds the id is handed over (it replaces the one before in
 * the consumer, which keys policies by id), or the id's going. */
static int changes_dirty(const struct pw_k8s_model *m, struct changes *c)
{
	struct key_list keys = { .v = calloc((size_t)m->n_pdirty + 1, sizeof(*keys.v)) };
	const struct k8s_entry **pols = NULL;
	struct id_index *ix = NULL;
	int n_pols = 0, ret = 0;

	if (!keys.v)
		return -ENOMEM;
	twalk_r(m->pdirty, key_list_one, &keys);
	for (int i = 0; i < keys.n && !ret; i++) {
		enum pw_k8s_kind kind = (enum pw_k8s_kind)(keys.v[i][0] - '0');
		const char *key = keys.v[i] + 1;
		const struct k8s_elem *el;

		if (kind == PW_K8S_NETPOL && !pols) {
			pols = collect(m, PW_K8S_NETPOL, &n_pols);
			ix = pols ? calloc((size_t)n_pols + 1, sizeof(*ix)) : NULL;
			if (!ix) {
				ret = -ENOMEM;
				break;
			}
			for (int j = 0; j < n_pols; j++)
				ix[j] = (struct id_index){ ((const struct k8s_elem *)pols[j])->id, j };
			qsort(ix, (size_t)n_pols, sizeof(*ix), id_index_cmp);
		}
		el = kind == PW_K8S_NETPOL ? id_holder(pols, ix, n_pols, key_policy_id(key)) : elem_find(m, kind, key);
		ret = el ? change_add(c, kind, el->e.key, el->json) : change_add(c, kind, key, NULL);
	}
	free(keys.v);
	free(pols);
	free(ix);
	return ret;
}

int pw_k8s_policy_changes(struct pw_k8s_model *m, struct pw_policy_change **out, int *n, bool *reset)
{
	struct changes c = { 0 };
	int ret = 0;

	*out = NULL;
	*n = 0;
	*reset = false;
	if (!m->count[PW_K8S_NETPOL]) {
		/* Nothing is policed: the consumer drops what it holds, and is
		 * handed everything when a policy comes. */
		*reset = m->policy_fed;
		m->policy_fed = false;
		m->policy_refeed = false;
		clear_policy_dirty(m);
		return 0;
	}
	if (!m->policy_fed || m->policy_refeed) {
		*reset = true;
		ret = changes_all(m, &c);
	} else {
		ret = changes_dirty(m, &c);
	}
	if (ret) {
		pw_policy_changes_free(c.v, c.n);
		*reset = false;
		pw_k8s_policy_refeed(m);
		return ret;
	}
	clear_policy_dirty(m);
	m->policy_fed = true;
	m->policy_refeed = false;
	*out = c.v;
	*n = c.n;
	return 0;
}
