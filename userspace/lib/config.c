/* Node config (architecture §10): strict JSON parsing with errors that name
 * the field, e.g. `peers[1].podCIDR: "10.244.2.0/24" overlaps peers[0].podCIDR`.
 * Unknown keys are refused too: a misspelt optional key would otherwise
 * silently fall back to its default. */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "config.h"
#include "jsonparse.h"
#include "file.h"
#include "k8sname.h"
#include "nodeinfo.h"
#include "policy.h"

#define PW_NODEPORT_MIN 30000
#define PW_NODEPORT_MAX 32767

/* Each getter: 0 = found and valid, 1 = absent (and !required), -EINVAL. */
static int get_string(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		      bool required, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v || cJSON_IsNull(v))
		return required ? pw_jerr_fail(e, "%s.%s: missing", path, key) : 1;
	if (!cJSON_IsString(v))
		return pw_jerr_fail(e, "%s.%s: expected a string", path, key);
	*out = v->valuestring;
	return 0;
}

static int get_name(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		    bool required, char *out, size_t outlen)
{
	struct pw_json_shown sh;
	const char *s;
	int r = get_string(e, obj, path, key, required, &s);

	if (r)
		return r;
	if (!*s)
		return pw_jerr_fail(e, "%s.%s: must not be empty", path, key);
	if (strlen(s) >= outlen)
		return pw_jerr_fail(e, "%s.%s: \"%s\" is longer than %zu characters", path, key, pw_json_shown(s, &sh), outlen - 1);
	strcpy(out, s);
	return 0;
}

static int get_ip(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		  bool required, uint32_t *out)
{
	struct pw_json_shown sh;
	const char *s;
	int r = get_string(e, obj, path, key, required, &s);

	if (r)
		return r;
	if (pw_ip4_parse(s, out))
		return pw_jerr_fail(e, "%s.%s: \"%s\" is not an IPv4 address", path, key, pw_json_shown(s, &sh));
	return 0;
}

static int get_cidr(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		    bool required, struct pw_cidr *out)
{
	struct pw_json_shown sh;
	const char *s;
	int r = get_string(e, obj, path, key, required, &s);
	const char *slash;
	struct pw_cidr probe;
	uint32_t ip;

	if (r)
		return r;
	if (pw_cidr_parse(s, out) == 0)
		return 0;
	/* Say what is wrong with it, the most common typo first. */
	slash = strchr(s, '/');
	if (slash) {
		char addr[PW_IP4_STRLEN + 1];
		size_t n = (size_t)(slash - s);

		if (n < sizeof(addr)) {
			memcpy(addr, s, n);
			addr[n] = '\0';
			char fixed[64];

			snprintf(fixed, sizeof(fixed), "0.0.0.0%s", slash);
			if (pw_ip4_parse(addr, &ip) == 0 && pw_cidr_parse(fixed, &probe) == 0)
				return pw_jerr_fail(e, "%s.%s: \"%s\" has host bits set", path, key, pw_json_shown(s, &sh));
		}
	}
	return pw_jerr_fail(e, "%s.%s: \"%s\" is not a CIDR (a.b.c.d/n)", path, key, pw_json_shown(s, &sh));
}

static int get_int(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		   bool required, long min, long max, long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (!v || cJSON_IsNull(v))
		return required ? pw_jerr_fail(e, "%s.%s: missing", path, key) : 1;
	if (!cJSON_IsNumber(v))
		return pw_jerr_fail(e, "%s.%s: expected a number", path, key);
	d = v->valuedouble;
	if (!(d >= (double)min && d <= (double)max) || d != (double)(long)d)
		return pw_jerr_fail(e, "%s.%s: %g is not an integer in %ld..%ld", path, key, d, min, max);
	*out = (long)d;
	return 0;
}

static int get_bool(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v || cJSON_IsNull(v))
		return 1;
	if (!cJSON_IsBool(v))
		return pw_jerr_fail(e, "%s.%s: expected true or false", path, key);
	*out = cJSON_IsTrue(v);
	return 0;
}

/* An optional member that must be an object (or array) when present. */
static int get_typed(struct pw_jerr *e, const cJSON *obj, const char *path, const char *key,
		     bool required, bool array, const cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	const char *dot = *path ? "." : "";

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return required ? pw_jerr_fail(e, "%s%s%s: missing", path, dot, key) : 1;
	if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
		return pw_jerr_fail(e, "%s%s%s: expected %s", path, dot, key, array ? "an array" : "an object");
	*out = v;
	return 0;
}

#define TRY(expr) do { int _r = (expr); if (_r < 0) return _r; } while (0)

/* The first key of obj not in allowed (pw_json_check_keys found one). */
static const char *node_foreign_key(const cJSON *obj, const char *const *allowed)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj) {
		const char *const *a;

		for (a = allowed; *a && strcmp(*a, it->string); a++)
			;
		if (!*a)
			return it->string;
	}
	return "?";
}

const char *pw_pod_device_name(enum pw_pod_device d)
{
	return d == PW_POD_DEVICE_NETKIT ? "netkit" : d == PW_POD_DEVICE_AUTO ? "auto" : "veth";
}

int pw_pod_device_parse(const char *s, enum pw_pod_device *d)
{
	if (s && strcmp(s, "veth") == 0)
		*d = PW_POD_DEVICE_VETH;
	else if (s && strcmp(s, "netkit") == 0)
		*d = PW_POD_DEVICE_NETKIT;
	else if (s && strcmp(s, "auto") == 0)
		*d = PW_POD_DEVICE_AUTO;
	else
		return -EINVAL;
	return 0;
}

int pw_attach_mode_parse(const char *s, enum pw_attach_mode *m)
{
	if (s && strcmp(s, "tcx") == 0)
		*m = PW_ATTACH_TCX;
	else if (s && strcmp(s, "tc") == 0)
		*m = PW_ATTACH_TC;
	else
		return -EINVAL;
	return 0;
}

static int parse_pod_device(struct pw_jerr *e, const cJSON *node, struct pw_node_config *cfg)
{
	const char *dev;
	struct pw_json_shown sh;
	int r = get_string(e, node, "node", "podDevice", false, &dev);

	if (r)
		return r < 0 ? r : 0;
	if (pw_pod_device_parse(dev, &cfg->pod_device))
		return pw_jerr_fail(e, "node.podDevice: \"%s\" is not one of veth, netkit, auto", pw_json_shown(dev, &sh));
	cfg->has_pod_device = true;
	return 0;
}

/* The uplink name, MTU and pod device: shared by both forms of the node section. */
static int parse_node_link(struct pw_jerr *e, const cJSON *node, bool required, struct pw_node_config *cfg)
{
	long mtu = 0;
	int r;

	r = get_name(e, node, "node", "uplink", required, cfg->uplink, sizeof(cfg->uplink));
	if (r < 0)
		return r;
	if (strchr(cfg->uplink, '/')) {
		struct pw_json_shown sh;

		return pw_jerr_fail(e, "node.uplink: \"%s\" is not an interface name", pw_json_shown(cfg->uplink, &sh));
	}
	TRY(get_int(e, node, "node", "mtu", false, 0, 65535, &mtu));
	if (mtu != 0 && mtu < 576)
		return pw_jerr_fail(e, "node.mtu: %ld is below 576", mtu);
	cfg->mtu = (int)mtu;
	return parse_pod_device(e, node, cfg);
}

static int parse_node(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	static const char *const keys[] = { "name", "ip", "uplink", "podCIDR", "mtu", "podDevice", NULL };
	const cJSON *node;

	TRY(get_typed(e, root, "", "node", true, false, &node));
	TRY(pw_json_check_keys(e, node, "node", keys));
	TRY(get_name(e, node, "node", "name", true, cfg->name, sizeof(cfg->name)));
	TRY(get_ip(e, node, "node", "ip", true, &cfg->ip));
	TRY(parse_node_link(e, node, true, cfg));
	TRY(get_cidr(e, node, "node", "podCIDR", true, &cfg->pod_cidr));
	if (cfg->pod_cidr.prefix > 30)
		return pw_jerr_fail(e, "node.podCIDR: /%u leaves no address for pods (at most /30)",
			    cfg->pod_cidr.prefix);
	if (cfg->pod_cidr.prefix < PW_NODE_POD_CIDR_MIN_PREFIX)
		return pw_jerr_fail(e, "node.podCIDR: /%u is wider than a node's pods can use (at least /%u)",
			    cfg->pod_cidr.prefix, PW_NODE_POD_CIDR_MIN_PREFIX);
	return 0;
}

/* Kubernetes mode: the node's name, IP and pod CIDR come from its Node
 * object; the file may only say which uplink and MTU to use. */
static int parse_node_k8s(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	static const char *const keys[] = { "uplink", "mtu", "podDevice", NULL };
	const cJSON *node;
	int r = get_typed(e, root, "", "node", false, false, &node);

	if (r)
		return r < 0 ? r : 0;
	if (pw_json_check_keys(e, node, "node", keys))
		return pw_jerr_fail(e, "node.%s: not allowed in Kubernetes mode (the Node object says it); "
			    "only node.uplink, node.mtu and node.podDevice are", node_foreign_key(node, keys));
	return parse_node_link(e, node, false, cfg);
}

int pw_port_range_parse(const char *s, uint16_t *min, uint16_t *max)
{
	unsigned lo, hi;
	int n = 0;

	if (strcmp(s, "none") == 0) {
		*min = *max = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*s) || *s == '0' || sscanf(s, "%5u-%5u%n", &lo, &hi, &n) != 2 ||
	    s[n] || !strchr(s, '-') || !isdigit((unsigned char)strchr(s, '-')[1]) || strchr(s, '-')[1] == '0' ||
	    lo < 1 || hi > 65535 || lo > hi)
		return -EINVAL;
	*min = (uint16_t)lo;
	*max = (uint16_t)hi;
	return 0;
}

int pw_cidr_list_parse(const char *s, struct pw_cidr *out, int max, int *n, char *err, size_t errlen)
{
	char item[64];
	const char *p = s;

	*n = 0;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errlen, "\"%.*s\" is not a CIDR (a.b.c.d/n)", (int)(len < 40 ? len : 40), p);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (*n == max) {
			snprintf(err, errlen, "more than %d CIDRs", max);
			return -EINVAL;
		}
		if (pw_cidr_parse(item, &out[*n])) {
			snprintf(err, errlen, "\"%s\" is not a CIDR (a.b.c.d/n, host bits zero)", item);
			return -EINVAL;
		}
		(*n)++;
		p += len;
		if (*p == ',' && !*++p) {
			snprintf(err, errlen, "a trailing comma");
			return -EINVAL;
		}
	}
	return 0;
}

/* cluster.nodePortAddresses (array of CIDRs) and cluster.nodePortRange. */
static int parse_nodeport(struct pw_jerr *e, const cJSON *cl, struct pw_node_config *cfg)
{
	const cJSON *arr, *it;
	const char *range;
	struct pw_json_shown sh;
	int r, i = 0;

	r = get_typed(e, cl, "cluster", "nodePortAddresses", false, true, &arr);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		char path[64];

		if (i == PW_NODEPORT_CIDRS_MAX)
			return pw_jerr_fail(e, "cluster.nodePortAddresses: more than %d CIDRs", PW_NODEPORT_CIDRS_MAX);
		if (!cJSON_IsString(it))
			return pw_jerr_fail(e, "cluster.nodePortAddresses[%d]: expected a string", i);
		snprintf(path, sizeof(path), "cluster.nodePortAddresses[%d]", i);
		if (pw_cidr_parse(it->valuestring, &cfg->nodeport_cidrs[i]))
			return pw_jerr_fail(e, "%s: \"%s\" is not a CIDR (a.b.c.d/n, host bits zero)", path,
				    pw_json_shown(it->valuestring, &sh));
		i++;
	}
	cfg->n_nodeport_cidrs = i;
	r = get_string(e, cl, "cluster", "nodePortRange", false, &range);
	if (r < 0)
		return r;
	if (r == 0 && pw_port_range_parse(range, &cfg->nodeport_range_min, &cfg->nodeport_range_max))
		return pw_jerr_fail(e, "cluster.nodePortRange: \"%s\" is not LO-HI (ports 1..65535, LO <= HI) or none",
			    pw_json_shown(range, &sh));
	return 0;
}

static int parse_cluster(struct pw_jerr *e, const cJSON *root, bool k8s, struct pw_node_config *cfg)
{
	static const char *const keys[] = { "podCIDR", "serviceCIDR", "routing", "masquerade", "nodePortAddresses",
					    "nodePortRange", NULL };
	char a[PW_CIDR_STRLEN], b[PW_CIDR_STRLEN];
	const char *routing;
	struct pw_json_shown sh;
	const cJSON *cl;
	int r;

	pw_cidr_parse("10.244.0.0/16", &cfg->cluster_cidr);
	pw_cidr_parse("10.96.0.0/12", &cfg->service_cidr);
	cfg->routing = PW_ROUTING_NATIVE;
	cfg->masquerade = true;
	pw_port_range_parse(PW_NODEPORT_RANGE_DEFAULT, &cfg->nodeport_range_min, &cfg->nodeport_range_max);
	r = get_typed(e, root, "", "cluster", false, false, &cl);
	if (r < 0)
		return r;
	if (cl) {
		TRY(pw_json_check_keys(e, cl, "cluster", keys));
		TRY(get_cidr(e, cl, "cluster", "podCIDR", false, &cfg->cluster_cidr));
		TRY(get_cidr(e, cl, "cluster", "serviceCIDR", false, &cfg->service_cidr));
		r = get_string(e, cl, "cluster", "routing", false, &routing);
		if (r < 0)
			return r;
		if (r == 0) {
			if (strcmp(routing, "native") == 0)
				cfg->routing = PW_ROUTING_NATIVE;
			else if (strcmp(routing, "vxlan") == 0)
				cfg->routing = PW_ROUTING_VXLAN;
			else
				return pw_jerr_fail(e, "cluster.routing: \"%s\" is not one of native, vxlan", pw_json_shown(routing, &sh));
		}
		TRY(get_bool(e, cl, "cluster", "masquerade", &cfg->masquerade));
		TRY(parse_nodeport(e, cl, cfg));
	}
	pw_cidr_format(&cfg->pod_cidr, a);
	pw_cidr_format(&cfg->cluster_cidr, b);
	if (!k8s && !pw_cidr_within(&cfg->pod_cidr, &cfg->cluster_cidr))
		return pw_jerr_fail(e, "node.podCIDR: %s is not inside cluster.podCIDR %s", a, b);
	if (pw_cidr_overlaps(&cfg->cluster_cidr, &cfg->service_cidr)) {
		pw_cidr_format(&cfg->service_cidr, a);
		return pw_jerr_fail(e, "cluster.serviceCIDR: %s overlaps cluster.podCIDR %s", a, b);
	}
	return 0;
}

static int parse_peer(struct pw_jerr *e, const cJSON *item, const char *path,
		      const struct pw_node_config *cfg, struct pw_peer_config *p)
{
	static const char *const keys[] = { "name", "ip", "podCIDR", NULL };
	char a[PW_CIDR_STRLEN], b[PW_CIDR_STRLEN];

	if (!cJSON_IsObject(item))
		return pw_jerr_fail(e, "%s: expected an object", path);
	TRY(pw_json_check_keys(e, item, path, keys));
	TRY(get_name(e, item, path, "name", true, p->name, sizeof(p->name)));
	TRY(get_ip(e, item, path, "ip", true, &p->ip));
	TRY(get_cidr(e, item, path, "podCIDR", true, &p->pod_cidr));
	pw_cidr_format(&p->pod_cidr, a);
	if (!pw_cidr_within(&p->pod_cidr, &cfg->cluster_cidr)) {
		pw_cidr_format(&cfg->cluster_cidr, b);
		return pw_jerr_fail(e, "%s.podCIDR: %s is not inside cluster.podCIDR %s", path, a, b);
	}
	if (pw_cidr_overlaps(&p->pod_cidr, &cfg->pod_cidr)) {
		pw_cidr_format(&cfg->pod_cidr, b);
		return pw_jerr_fail(e, "%s.podCIDR: %s overlaps node.podCIDR %s", path, a, b);
	}
	if (p->ip == cfg->ip)
		return pw_jerr_fail(e, "%s.ip: is this node's own node.ip", path);
	if (strcmp(p->name, cfg->name) == 0)
		return pw_jerr_fail(e, "%s.name: \"%s\" is this node's own node.name", path, p->name);
	return 0;
}

static int parse_peers(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	const cJSON *arr, *item;
	int r, i = 0;

	r = get_typed(e, root, "", "peers", false, true, &arr);
	if (r)
		return r < 0 ? r : 0;
	cfg->peers = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->peers));
	if (!cfg->peers)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		struct pw_peer_config *p = &cfg->peers[i];
		char path[32], a[PW_CIDR_STRLEN];

		snprintf(path, sizeof(path), "peers[%d]", i);
		TRY(parse_peer(e, item, path, cfg, p));
		cfg->n_peers = ++i;
		for (int j = 0; j < i - 1; j++) {
			const struct pw_peer_config *q = &cfg->peers[j];

			pw_cidr_format(&p->pod_cidr, a);
			if (pw_cidr_overlaps(&p->pod_cidr, &q->pod_cidr))
				return pw_jerr_fail(e, "%s.podCIDR: %s overlaps peers[%d].podCIDR", path, a, j);
			if (strcmp(p->name, q->name) == 0)
				return pw_jerr_fail(e, "%s.name: \"%s\" is also peers[%d].name", path, p->name, j);
			if (p->ip == q->ip)
				return pw_jerr_fail(e, "%s.ip: is also peers[%d].ip", path, j);
		}
	}
	return 0;
}

static int parse_backends(struct pw_jerr *e, const cJSON *svc, const char *spath,
			  struct pw_service_config *s)
{
	static const char *const keys[] = { "ip", "port", "terminating", NULL };
	const cJSON *arr, *item;
	char path[64];
	int r, i = 0;

	r = get_typed(e, svc, spath, "backends", false, true, &arr);
	if (r)
		return r < 0 ? r : 0;
	s->backends = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*s->backends));
	if (!s->backends)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		struct pw_backend_config *b = &s->backends[i];
		long port;

		snprintf(path, sizeof(path), "%s.backends[%d]", spath, i);
		if (!cJSON_IsObject(item))
			return pw_jerr_fail(e, "%s: expected an object", path);
		TRY(pw_json_check_keys(e, item, path, keys));
		TRY(get_ip(e, item, path, "ip", true, &b->ip));
		TRY(get_int(e, item, path, "port", true, 1, 65535, &port));
		TRY(get_bool(e, item, path, "terminating", &b->terminating));
		b->port = (uint16_t)port;
		s->n_backends = ++i;
		for (int j = 0; j < i - 1; j++)
			if (s->backends[j].ip == b->ip && s->backends[j].port == b->port)
				return pw_jerr_fail(e, "%s: duplicate of %s.backends[%d]", path, spath, j);
	}
	return 0;
}

/* Duplicate names, frontends and node ports among services. Sorting an index
 * keeps this O(n log n): a node with 10,000 services re-parses its config on
 * every change, and a pairwise check cost 160 ms there. */
enum svc_key { SVC_BY_NAME, SVC_BY_FRONTEND, SVC_BY_NODEPORT };

static int svc_compare(const void *a, const void *b, void *arg)
{
	const struct pw_node_config *cfg = ((const void **)arg)[0];
	enum svc_key key = *(const enum svc_key *)((const void **)arg)[1];
	const struct pw_service_config *x = &cfg->services[*(const int *)a];
	const struct pw_service_config *y = &cfg->services[*(const int *)b];
	int c = 0;

	switch (key) {
	case SVC_BY_NAME:
		c = strcmp(x->name, y->name);
		break;
	case SVC_BY_FRONTEND:
		c = x->vip != y->vip ? (x->vip < y->vip ? -1 : 1) : x->port != y->port ? x->port - y->port
		    : x->protocol - y->protocol;
		break;
	case SVC_BY_NODEPORT:
		c = x->node_port != y->node_port ? x->node_port - y->node_port : x->protocol - y->protocol;
		break;
	}
	/* Ties by position, so the later of two duplicates is the one reported. */
	return c ? c : *(const int *)a - *(const int *)b;
}

static bool svc_same(const struct pw_service_config *x, const struct pw_service_config *y, enum svc_key key)
{
	switch (key) {
	case SVC_BY_NAME:
		return strcmp(x->name, y->name) == 0;
	case SVC_BY_FRONTEND:
		return x->vip == y->vip && x->port == y->port && x->protocol == y->protocol;
	case SVC_BY_NODEPORT:
		return x->node_port && x->node_port == y->node_port && x->protocol == y->protocol;
	}
	return false;
}

static int check_service_duplicates(struct pw_jerr *e, const struct pw_node_config *cfg)
{
	int n = cfg->n_services, *idx, ret = 0;

	if (n < 2)
		return 0;
	idx = malloc((size_t)n * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (enum svc_key key = SVC_BY_NAME; key <= SVC_BY_NODEPORT && !ret; key++) {
		const void *arg[2] = { cfg, &key };
		int first = n;   /* the earliest later-duplicate position found */
		int other = 0;

		for (int i = 0; i < n; i++)
			idx[i] = i;
		qsort_r(idx, (size_t)n, sizeof(*idx), svc_compare, arg);
		for (int i = 1; i < n; i++)
			if (svc_same(&cfg->services[idx[i - 1]], &cfg->services[idx[i]], key) && idx[i] < first) {
				first = idx[i];
				other = idx[i - 1];
			}
		if (first == n)
			continue;
		const struct pw_service_config *s = &cfg->services[first];
		if (key == SVC_BY_NAME)
			ret = pw_jerr_fail(e, "services[%d].name: \"%s\" is also services[%d].name", first, s->name, other);
		else if (key == SVC_BY_FRONTEND)
			ret = pw_jerr_fail(e, "services[%d]: vip, port and protocol are also those of services[%d]", first, other);
		else
			ret = pw_jerr_fail(e, "services[%d].nodePort: %u is also services[%d].nodePort", first, s->node_port, other);
	}
	free(idx);
	return ret;
}

/* The names k8s_model.c gives: lower-case letters, digits and "-./:~" (a
 * namespace, a name, a port name or number, a protocol, and a hash suffix
 * when cut), with the "/" that tells them from a DNS-1035 label. NULL when
 * valid, else why not. */
static const char *kubernetes_service_name_why(const char *name)
{
	if (!strchr(name, '/'))
		return "no '/' between namespace and name";
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("-./:~", *c)))
			return "only lower case letters, digits and '-', '.', '/', ':', '~' are allowed";
	return NULL;
}

/* "Cluster" (the default) or "Local", as Kubernetes spells them. */
static int get_traffic_policy(struct pw_jerr *e, const cJSON *item, const char *path, const char *key,
			      bool *local)
{
	const char *v = "Cluster";
	struct pw_json_shown sh;

	TRY(get_string(e, item, path, key, false, &v));
	if (strcmp(v, "Cluster") && strcmp(v, "Local"))
		return pw_jerr_fail(e, "%s.%s: \"%s\" is not one of Cluster, Local", path, key, pw_json_shown(v, &sh));
	*local = strcmp(v, "Local") == 0;
	return 0;
}

static int parse_service(struct pw_jerr *e, const cJSON *item, const char *path,
			 const struct pw_node_config *cfg, struct pw_service_config *s)
{
	static const char *const keys[] = { "name", "vip", "port", "protocol", "nodePort",
					    "algorithm", "affinityTimeoutSeconds", "externalTrafficPolicy",
					    "internalTrafficPolicy", "healthCheckNodePort", "backends", NULL };
	const char *proto = "tcp", *algo = "random", *why;
	long port, node_port = 0, affinity = 0, hc_port = 0;
	char vip[PW_IP4_STRLEN], scidr[PW_CIDR_STRLEN];
	struct pw_json_shown sh;

	if (!cJSON_IsObject(item))
		return pw_jerr_fail(e, "%s: expected an object", path);
	TRY(pw_json_check_keys(e, item, path, keys));
	TRY(get_name(e, item, path, "name", true, s->name, sizeof(s->name)));
	/* Kubernetes' rule for service names, here in the file's parser so that
	 * every way into the file (podwirectl service add, an editor, a tool)
	 * meets it. Configs built in code do not come through here. */
	if (cfg->from_kubernetes) {
		if ((why = kubernetes_service_name_why(s->name)))
			return pw_jerr_fail(e, "%s.name: \"%s\" is not a Kubernetes source's service name "
				    "(namespace/name:port/proto): %s", path, pw_json_shown(s->name, &sh), why);
	} else if ((why = pw_k8s_dns1035_label(s->name))) {
		return pw_jerr_fail(e, "%s.name: \"%s\" is not a valid service name (DNS-1035 label: lower case "
			    "letters, digits and '-', a letter first): %s", path, pw_json_shown(s->name, &sh), why);
	}
	TRY(get_ip(e, item, path, "vip", true, &s->vip));
	if (!pw_cidr_contains(&cfg->service_cidr, s->vip)) {
		pw_ip4_format(s->vip, vip);
		pw_cidr_format(&cfg->service_cidr, scidr);
		return pw_jerr_fail(e, "%s.vip: %s is not inside cluster.serviceCIDR %s", path, vip, scidr);
	}
	TRY(get_int(e, item, path, "port", true, 1, 65535, &port));
	s->port = (uint16_t)port;
	TRY(get_string(e, item, path, "protocol", false, &proto));
	if (strcmp(proto, "tcp") == 0)
		s->protocol = IPPROTO_TCP;
	else if (strcmp(proto, "udp") == 0)
		s->protocol = IPPROTO_UDP;
	else
		return pw_jerr_fail(e, "%s.protocol: \"%s\" is not one of tcp, udp", path, pw_json_shown(proto, &sh));
	TRY(get_int(e, item, path, "nodePort", false, PW_NODEPORT_MIN, PW_NODEPORT_MAX, &node_port));
	s->node_port = (uint16_t)node_port;
	TRY(get_string(e, item, path, "algorithm", false, &algo));
	if (strcmp(algo, "random") == 0)
		s->maglev = false;
	else if (strcmp(algo, "maglev") == 0)
		s->maglev = true;
	else
		return pw_jerr_fail(e, "%s.algorithm: \"%s\" is not one of random, maglev", path, pw_json_shown(algo, &sh));
	TRY(get_int(e, item, path, "affinityTimeoutSeconds", false, 0, 86400, &affinity));
	s->affinity_timeout = (uint32_t)affinity;
	TRY(get_traffic_policy(e, item, path, "externalTrafficPolicy", &s->external_local));
	TRY(get_traffic_policy(e, item, path, "internalTrafficPolicy", &s->internal_local));
	if (s->external_local && !s->node_port)
		return pw_jerr_fail(e, "%s.externalTrafficPolicy: \"Local\" applies to the node port, and there is "
			    "no nodePort", path);
	TRY(get_int(e, item, path, "healthCheckNodePort", false, 1, 65535, &hc_port));
	if (hc_port && !s->external_local)
		return pw_jerr_fail(e, "%s.healthCheckNodePort: only an externalTrafficPolicy \"Local\" service has one", path);
	s->health_check_port = (uint16_t)hc_port;
	return parse_backends(e, item, path, s);
}

static int parse_services(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	const cJSON *arr, *item;
	int r, i = 0;

	r = get_typed(e, root, "", "services", false, true, &arr);
	if (r)
		return r < 0 ? r : 0;
	cfg->services = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->services));
	if (!cfg->services)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		struct pw_service_config *s = &cfg->services[i];
		char path[32];

		snprintf(path, sizeof(path), "services[%d]", i);
		/* Counted before parsing so pw_config_free frees its backends on error. */
		cfg->n_services = i + 1;
		TRY(parse_service(e, item, path, cfg, s));
		i++;
	}
	return check_service_duplicates(e, cfg);
}

static int parse_k8s_sections(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	TRY(parse_node_k8s(e, root, cfg));
	return parse_cluster(e, root, true, cfg);
}

/* Line and column of a cJSON error position, for "invalid JSON at line 3, column 7". */
static void json_error_position(const char *json, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = json; p && at && p < at && *p; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* "source": "file" (the default: written by hand or by podwirectl) or
 * "kubernetes" (the config the agent built from the API and publishes). */
static int parse_source(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "source");

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || (strcmp(v->valuestring, "file") && strcmp(v->valuestring, "kubernetes")))
		return pw_jerr_fail(e, "source: expected \"file\" or \"kubernetes\"");
	cfg->from_kubernetes = strcmp(v->valuestring, "kubernetes") == 0;
	return 0;
}

/* namespaces, pods, networkPolicies: checked now (a bad policy is a bad
 * config, reported with its field), kept as one JSON text for the agent. */
static int parse_policy_sections(struct pw_jerr *e, const cJSON *root, struct pw_node_config *cfg)
{
	static const char *const keys[] = { "namespaces", "pods", "networkPolicies" };
	struct pw_policy_model m;
	cJSON *o = NULL;
	int ret;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);

		if (!v)
			continue;
		if (!o && !(o = cJSON_CreateObject()))
			return -ENOMEM;
		if (!cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 1))) {
			cJSON_Delete(o);
			return -ENOMEM;
		}
	}
	if (!o)
		return 0;
	cfg->policy_json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!cfg->policy_json)
		return -ENOMEM;
	ret = pw_policy_model_parse(cfg->policy_json, &m, e->buf, e->len);
	pw_policy_model_free(&m);
	return ret;
}

static int parse_root(const char *json, bool k8s, struct pw_node_config *cfg, char *err, size_t errlen)
{
	static const char *const keys[] = { "node", "cluster", "peers", "services", "source",
					    "namespaces", "pods", "networkPolicies", NULL };
	static const char *const k8s_keys[] = { "node", "cluster", NULL };
	struct pw_jerr e = { err, errlen };
	const char *end = NULL;
	cJSON *root;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	if (!json)
		return pw_jerr_fail(&e, "config: empty");
	root = cJSON_ParseWithOpts(json, &end, 1);
	if (!root) {
		int line, col;

		json_error_position(json, end ? end : cJSON_GetErrorPtr(), &line, &col);
		return pw_jerr_fail(&e, "invalid JSON at line %d, column %d", line, col);
	}
	if (!cJSON_IsObject(root))
		ret = pw_jerr_fail(&e, "config: expected a JSON object at the top level");
	else if (k8s && pw_json_check_keys(&e, root, "config", k8s_keys))
		ret = pw_jerr_fail(&e, "config.%s: not allowed in Kubernetes mode (the API says it); only node "
			   "(uplink, mtu) and cluster are", node_foreign_key(root, k8s_keys));
	else if (k8s)
		ret = parse_k8s_sections(&e, root, cfg);
	else if (!(ret = pw_json_check_keys(&e, root, "config", keys)) &&
		 !(ret = parse_source(&e, root, cfg)) &&
		 !(ret = parse_node(&e, root, cfg)) &&
		 !(ret = parse_cluster(&e, root, false, cfg)) &&
		 !(ret = parse_peers(&e, root, cfg)) &&
		 !(ret = parse_services(&e, root, cfg)))
		ret = parse_policy_sections(&e, root, cfg);
	cJSON_Delete(root);
	if (ret == -ENOMEM)
		pw_jerr_fail(&e, "config: out of memory");
	if (ret)
		pw_config_free(cfg);
	return ret;
}

int pw_config_parse(const char *json, struct pw_node_config *cfg, char *err, size_t errlen)
{
	return parse_root(json, false, cfg, err, errlen);
}

int pw_config_parse_k8s(const char *json, struct pw_node_config *cfg, char *err, size_t errlen)
{
	return parse_root(json, true, cfg, err, errlen);
}

char *pw_config_read(const char *path, size_t *len, int *ret, char *err, size_t errlen)
{
	char *buf = pw_file_read(path, PW_CONFIG_MAX, len, ret);

	if (!buf && err && errlen) {
		if (*ret == -EFBIG)
			snprintf(err, errlen, "larger than %u MiB", PW_CONFIG_MAX >> 20);
		else
			snprintf(err, errlen, "cannot read: %s", strerror(-*ret));
	}
	return buf;
}

uint64_t pw_config_digest(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int pw_config_load_digest(const char *path, struct pw_node_config *cfg, uint64_t *digest, char *err,
			  size_t errlen)
{
	size_t len = 0;
	int ret;
	char *buf = pw_config_read(path, &len, &ret, err, errlen);

	memset(cfg, 0, sizeof(*cfg));
	if (digest)
		*digest = buf ? pw_config_digest(buf, len) : 0;
	if (!buf)
		return ret;
	ret = pw_config_parse(buf, cfg, err, errlen);
	free(buf);
	return ret;
}

int pw_config_load(const char *path, struct pw_node_config *cfg, char *err, size_t errlen)
{
	return pw_config_load_digest(path, cfg, NULL, err, errlen);
}

void pw_config_free(struct pw_node_config *cfg)
{
	for (int i = 0; cfg->services && i < cfg->n_services; i++)
		free(cfg->services[i].backends);
	free(cfg->services);
	free(cfg->peers);
	free(cfg->policy_json);
	cfg->policy_json = NULL;
	cfg->services = NULL;
	cfg->peers = NULL;
	cfg->n_services = 0;
	cfg->n_peers = 0;
}

static void *dup_array(const void *src, int n, size_t size)
{
	void *d;

	if (!src || n <= 0)
		return NULL;
	d = malloc((size_t)n * size);
	if (d)
		memcpy(d, src, (size_t)n * size);
	return d;
}

int pw_config_copy(struct pw_node_config *dst, const struct pw_node_config *src)
{
	*dst = *src;
	dst->peers = dup_array(src->peers, src->n_peers, sizeof(*src->peers));
	dst->services = dup_array(src->services, src->n_services, sizeof(*src->services));
	dst->policy_json = src->policy_json ? strdup(src->policy_json) : NULL;
	if ((src->n_peers > 0 && !dst->peers) || (src->n_services > 0 && !dst->services) ||
	    (src->policy_json && !dst->policy_json)) {
		free(dst->peers);
		free(dst->services);
		free(dst->policy_json);
		dst->peers = NULL;
		dst->services = NULL;
		dst->policy_json = NULL;
		dst->n_peers = dst->n_services = 0;
		return -ENOMEM;
	}
	for (int i = 0; i < dst->n_services; i++) {
		struct pw_service_config *s = &dst->services[i];

		s->backends = dup_array(src->services[i].backends, s->n_backends, sizeof(*s->backends));
		if (s->n_backends > 0 && !s->backends) {
			/* The rest still point at src's: cut them off before freeing. */
			for (int j = i; j < dst->n_services; j++)
				dst->services[j].backends = NULL;
			pw_config_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ---- the other way: config -> JSON text ---- */

static cJSON *format_node(const struct pw_node_config *cfg)
{
	char ip[PW_IP4_STRLEN], cidr[PW_CIDR_STRLEN];
	cJSON *o = cJSON_CreateObject();

	pw_ip4_format(cfg->ip, ip);
	pw_cidr_format(&cfg->pod_cidr, cidr);
	if (o && cJSON_AddStringToObject(o, "name", cfg->name) && cJSON_AddStringToObject(o, "ip", ip) &&
	    cJSON_AddStringToObject(o, "uplink", cfg->uplink) && cJSON_AddStringToObject(o, "podCIDR", cidr) &&
	    (!cfg->mtu || cJSON_AddNumberToObject(o, "mtu", cfg->mtu)) &&
	    (!cfg->has_pod_device || cJSON_AddStringToObject(o, "podDevice", pw_pod_device_name(cfg->pod_device))))
		return o;
	cJSON_Delete(o);
	return NULL;
}

static bool format_nodeport(cJSON *o, const struct pw_node_config *cfg)
{
	char cidr[PW_CIDR_STRLEN], range[16] = "none";
	cJSON *arr;

	if (cfg->nodeport_range_max)
		snprintf(range, sizeof(range), "%u-%u", cfg->nodeport_range_min, cfg->nodeport_range_max);
	if (!cJSON_AddStringToObject(o, "nodePortRange", range))
		return false;
	if (!cfg->n_nodeport_cidrs)
		return true;
	arr = cJSON_AddArrayToObject(o, "nodePortAddresses");
	for (int i = 0; arr && i < cfg->n_nodeport_cidrs; i++) {
		pw_cidr_format(&cfg->nodeport_cidrs[i], cidr);
		if (!cJSON_AddItemToArray(arr, cJSON_CreateString(cidr)))
			return false;
	}
	return arr != NULL;
}

static cJSON *format_cluster(const struct pw_node_config *cfg)
{
	char pods[PW_CIDR_STRLEN], svcs[PW_CIDR_STRLEN];
	cJSON *o = cJSON_CreateObject();

	pw_cidr_format(&cfg->cluster_cidr, pods);
	pw_cidr_format(&cfg->service_cidr, svcs);
	if (o && cJSON_AddStringToObject(o, "podCIDR", pods) && cJSON_AddStringToObject(o, "serviceCIDR", svcs) &&
	    cJSON_AddStringToObject(o, "routing", cfg->routing == PW_ROUTING_VXLAN ? "vxlan" : "native") &&
	    cJSON_AddBoolToObject(o, "masquerade", cfg->masquerade) && format_nodeport(o, cfg))
		return o;
	cJSON_Delete(o);
	return NULL;
}

static cJSON *format_peer(const struct pw_peer_config *p)
{
	char ip[PW_IP4_STRLEN], cidr[PW_CIDR_STRLEN];
	cJSON *o = cJSON_CreateObject();

	pw_ip4_format(p->ip, ip);
	pw_cidr_format(&p->pod_cidr, cidr);
	if (o && cJSON_AddStringToObject(o, "name", p->name) && cJSON_AddStringToObject(o, "ip", ip) &&
	    cJSON_AddStringToObject(o, "podCIDR", cidr))
		return o;
	cJSON_Delete(o);
	return NULL;
}

static cJSON *format_backends(const struct pw_service_config *s)
{
	cJSON *arr = cJSON_CreateArray();
	char ip[PW_IP4_STRLEN];

	for (int i = 0; arr && i < s->n_backends; i++) {
		cJSON *b = cJSON_CreateObject();

		pw_ip4_format(s->backends[i].ip, ip);
		if (!b || !cJSON_AddStringToObject(b, "ip", ip) ||
		    !cJSON_AddNumberToObject(b, "port", s->backends[i].port) ||
		    (s->backends[i].terminating && !cJSON_AddTrueToObject(b, "terminating")) ||
		    !cJSON_AddItemToArray(arr, b)) {
			cJSON_Delete(b);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

static cJSON *format_service(const struct pw_service_config *s)
{
	char vip[PW_IP4_STRLEN];
	cJSON *o = cJSON_CreateObject(), *b = format_backends(s);

	pw_ip4_format(s->vip, vip);
	if (o && b && cJSON_AddStringToObject(o, "name", s->name) && cJSON_AddStringToObject(o, "vip", vip) &&
	    cJSON_AddNumberToObject(o, "port", s->port) &&
	    cJSON_AddStringToObject(o, "protocol", s->protocol == IPPROTO_UDP ? "udp" : "tcp") &&
	    (!s->node_port || cJSON_AddNumberToObject(o, "nodePort", s->node_port)) &&
	    cJSON_AddStringToObject(o, "algorithm", s->maglev ? "maglev" : "random") &&
	    cJSON_AddNumberToObject(o, "affinityTimeoutSeconds", s->affinity_timeout) &&
	    (!s->external_local || cJSON_AddStringToObject(o, "externalTrafficPolicy", "Local")) &&
	    (!s->internal_local || cJSON_AddStringToObject(o, "internalTrafficPolicy", "Local")) &&
	    (!s->health_check_port || cJSON_AddNumberToObject(o, "healthCheckNodePort", s->health_check_port)) &&
	    cJSON_AddItemToObject(o, "backends", b))
		return o;
	cJSON_Delete(b);
	cJSON_Delete(o);
	return NULL;
}

/* Adds item under key of o, or deletes item: false when not added. */
static bool add_or_drop(cJSON *o, const char *key, cJSON *item)
{
	if (item && cJSON_AddItemToObject(o, key, item))
		return true;
	cJSON_Delete(item);
	return false;
}

/* Appends "," (after the first) and one service's JSON to the buffer. */
static bool append_service(char **buf, size_t *len, size_t *cap, const struct pw_service_config *s, bool first)
{
	cJSON *o = format_service(s);
	char *t = o ? cJSON_PrintUnformatted(o) : NULL;
	size_t n = t ? strlen(t) : 0;
	bool ok = t != NULL;

	cJSON_Delete(o);
	if (ok && *len + n + 4 > *cap) {
		size_t c = *cap * 2 > *len + n + 4 ? *cap * 2 : *len + n + 4;
		char *nb = realloc(*buf, c);

		ok = nb != NULL;
		if (ok) {
			*buf = nb;
			*cap = c;
		}
	}
	if (ok) {
		if (!first)
			(*buf)[(*len)++] = ',';
		memcpy(*buf + *len, t, n);
		*len += n;
	}
	free(t);
	return ok;
}

/* The services are printed one at a time into the text: a cJSON tree of
 * 10,000 services would take about 16 MB for a moment, five times the
 * agent's whole Kubernetes cache. */
char *pw_config_format(const struct pw_node_config *cfg)
{
	cJSON *root = cJSON_CreateObject(), *peers = cJSON_CreateArray();
	bool ok = root && (!cfg->from_kubernetes || cJSON_AddStringToObject(root, "source", "kubernetes")) &&
		  add_or_drop(root, "node", format_node(cfg)) &&
		  add_or_drop(root, "cluster", format_cluster(cfg));
	char *text = NULL;
	size_t len, cap;

	for (int i = 0; ok && peers && i < cfg->n_peers; i++)
		ok = cJSON_AddItemToArray(peers, format_peer(&cfg->peers[i]));
	if (ok) {   /* add_or_drop takes the array either way */
		ok = add_or_drop(root, "peers", peers);
		peers = NULL;
	}
	/* "services" last and empty: its "[]}" ends the text, the services go in between. */
	ok = ok && add_or_drop(root, "services", cJSON_CreateArray());
	if (ok)
		text = cJSON_PrintUnformatted(root);
	cJSON_Delete(peers);
	cJSON_Delete(root);
	if (!text)
		return NULL;
	len = strlen(text);
	if (len < 3 || strcmp(text + len - 3, "[]}") != 0) {
		free(text);
		return NULL;
	}
	len -= 2;   /* keep the "[" */
	cap = len + 3;
	for (int i = 0; i < cfg->n_services; i++) {
		if (!append_service(&text, &len, &cap, &cfg->services[i], i == 0)) {
			free(text);
			return NULL;
		}
	}
	/* The policy model (an object's text) goes in as the root's own
	 * namespaces/pods/networkPolicies, as the config file has them. */
	size_t pol = cfg->policy_json && cfg->policy_json[0] == '{' && cfg->policy_json[1] != '}' ?
		     strlen(cfg->policy_json) : 0;

	if (len + pol + 3 > cap) {
		char *nb = realloc(text, len + pol + 3);

		if (!nb) {
			free(text);
			return NULL;
		}
		text = nb;
	}
	if (pol) {
		memcpy(text + len, "],", 2);
		memcpy(text + len + 2, cfg->policy_json + 1, pol);   /* its "}" ends the text */
		return text;
	}
	memcpy(text + len, "]}", 3);
	return text;
}
