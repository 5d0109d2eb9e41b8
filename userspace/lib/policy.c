/* NetworkPolicy model, translation and incremental map writes
 * (docs/policy.md). */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "jsonparse.h"
#include "policy.h"

/* ---------------- parsing ---------------- */

/* A field's path for messages ("networkPolicies[0].spec.ingress[1]"); a
 * path longer than the buffer is cut, which only shortens a message. */
static void __attribute__((format(printf, 3, 4))) sub(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

#define TRY(x) do { int _r = (x); if (_r) return _r; } while (0)

static int get_str(struct pw_jerr *e, const cJSON *o, const char *path, const char *key, char *out, size_t size,
		   bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v)) {
		if (required)
			return pw_jerr_fail(e, "%s.%s: missing", path, key);
		return 0;
	}
	if (!cJSON_IsString(v))
		return pw_jerr_fail(e, "%s.%s: expected a string", path, key);
	if (strlen(v->valuestring) >= size)
		return pw_jerr_fail(e, "%s.%s: longer than %zu characters", path, key, size - 1);
	if (required && !v->valuestring[0])
		return pw_jerr_fail(e, "%s.%s: empty", path, key);
	strcpy(out, v->valuestring);
	return 0;
}

/* A JSON array (or absent/null: *n = 0) of objects; calloc'ed elements. */
static int get_array(struct pw_jerr *e, const cJSON *o, const char *path, const char *key, const cJSON **arr,
		     int *n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*arr = NULL;
	*n = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v))
		return pw_jerr_fail(e, "%s.%s: expected an array", path, key);
	*arr = v;
	*n = cJSON_GetArraySize(v);
	return 0;
}

static int parse_labels(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_labels *l)
{
	const cJSON *it;
	int n = 0;

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v))
		return pw_jerr_fail(e, "%s: expected an object of label: value", path);
	l->n = cJSON_GetArraySize(v);
	l->v = calloc((size_t)l->n + 1, sizeof(*l->v));
	if (!l->v)
		return -ENOMEM;
	cJSON_ArrayForEach(it, v) {
		if (!it->string[0] || strlen(it->string) >= PW_LABEL_KEY_MAX)
			return pw_jerr_fail(e, "%s: label key \"%.64s\" empty or too long", path, it->string);
		if (!cJSON_IsString(it))
			return pw_jerr_fail(e, "%s.%.64s: expected a string value", path, it->string);
		if (strlen(it->valuestring) >= PW_LABEL_VAL_MAX)
			return pw_jerr_fail(e, "%s.%.64s: value longer than 63 characters", path, it->string);
		strcpy(l->v[n].key, it->string);
		strcpy(l->v[n].value, it->valuestring);
		n++;
	}
	return 0;
}

static int parse_expr(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_sel_expr *x)
{
	static const char *const keys[] = { "key", "operator", "values", NULL };
	char op[32] = "";
	const cJSON *vals, *it;
	int n = 0;

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(get_str(e, v, path, "key", x->key, sizeof(x->key), true));
	TRY(get_str(e, v, path, "operator", op, sizeof(op), true));
	if (!strcmp(op, "In"))
		x->op = PW_SEL_IN;
	else if (!strcmp(op, "NotIn"))
		x->op = PW_SEL_NOT_IN;
	else if (!strcmp(op, "Exists"))
		x->op = PW_SEL_EXISTS;
	else if (!strcmp(op, "DoesNotExist"))
		x->op = PW_SEL_DOES_NOT_EXIST;
	else
		return pw_jerr_fail(e, "%s.operator: \"%s\" is not In, NotIn, Exists or DoesNotExist", path, op);
	vals = cJSON_GetObjectItemCaseSensitive(v, "values");
	if (vals && !cJSON_IsNull(vals) && !cJSON_IsArray(vals))
		return pw_jerr_fail(e, "%s.values: expected an array of strings", path);
	x->n_values = vals && cJSON_IsArray(vals) ? cJSON_GetArraySize(vals) : 0;
	if ((x->op == PW_SEL_IN || x->op == PW_SEL_NOT_IN) && !x->n_values)
		return pw_jerr_fail(e, "%s.values: must be non-empty for %s", path, op);
	if ((x->op == PW_SEL_EXISTS || x->op == PW_SEL_DOES_NOT_EXIST) && x->n_values)
		return pw_jerr_fail(e, "%s.values: must be empty for %s", path, op);
	x->values = calloc((size_t)x->n_values + 1, sizeof(*x->values));
	if (!x->values)
		return -ENOMEM;
	cJSON_ArrayForEach(it, vals) {
		if (!cJSON_IsString(it) || strlen(it->valuestring) >= PW_LABEL_VAL_MAX)
			return pw_jerr_fail(e, "%s.values[%d]: expected a label value (string of at most 63)", path, n);
		strcpy(x->values[n++], it->valuestring);
	}
	return 0;
}

static int parse_selector(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_selector *s)
{
	static const char *const keys[] = { "matchLabels", "matchExpressions", NULL };
	const cJSON *exprs, *it;
	char p[256];
	int n = 0;

	TRY(pw_json_check_keys(e, v, path, keys));
	sub(p, sizeof(p), "%s.matchLabels", path);
	TRY(parse_labels(e, cJSON_GetObjectItemCaseSensitive(v, "matchLabels"), p, &s->match));
	TRY(get_array(e, v, path, "matchExpressions", &exprs, &s->n_expr));
	s->expr = calloc((size_t)s->n_expr + 1, sizeof(*s->expr));
	if (!s->expr)
		return -ENOMEM;
	cJSON_ArrayForEach(it, exprs) {
		sub(p, sizeof(p), "%s.matchExpressions[%d]", path, n);
		TRY(parse_expr(e, it, p, &s->expr[n++]));
	}
	return 0;
}

static int parse_proto(struct pw_jerr *e, const cJSON *v, const char *path, uint8_t *proto)
{
	char s[16] = "TCP";

	TRY(get_str(e, v, path, "protocol", s, sizeof(s), false));
	if (!strcmp(s, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*proto = IPPROTO_SCTP;
	else
		return pw_jerr_fail(e, "%s.protocol: \"%s\" is not TCP, UDP or SCTP", path, s);
	return 0;
}

static int parse_port(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_pol_port *pp)
{
	static const char *const keys[] = { "port", "endPort", "protocol", NULL };
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(v, "port");
	const cJSON *end = cJSON_GetObjectItemCaseSensitive(v, "endPort");

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(parse_proto(e, v, path, &pp->proto));
	if (port && cJSON_IsString(port)) {
		if (!port->valuestring[0] || strlen(port->valuestring) > 15)
			return pw_jerr_fail(e, "%s.port: a port name has 1 to 15 characters", path);
		strcpy(pp->name, port->valuestring);
	} else if (port && cJSON_IsNumber(port)) {
		if (port->valuedouble < 1 || port->valuedouble > 65535 || port->valuedouble != (int)port->valuedouble)
			return pw_jerr_fail(e, "%s.port: %g is not a port (1-65535)", path, port->valuedouble);
		pp->port = (uint16_t)port->valueint;
	} else if (port && !cJSON_IsNull(port)) {
		return pw_jerr_fail(e, "%s.port: expected a number or a port name", path);
	}
	if (end && !cJSON_IsNull(end)) {
		if (!cJSON_IsNumber(end) || end->valuedouble < 1 || end->valuedouble > 65535 ||
		    end->valuedouble != (int)end->valuedouble)
			return pw_jerr_fail(e, "%s.endPort: expected a port (1-65535)", path);
		if (!pp->port)
			return pw_jerr_fail(e, "%s.endPort: needs a numeric port", path);
		if (end->valueint < pp->port)
			return pw_jerr_fail(e, "%s.endPort: %d is below port %u", path, end->valueint, pp->port);
		pp->end_port = (uint16_t)end->valueint;
	}
	return 0;
}

static int parse_ipblock(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_ipblock *b)
{
	static const char *const keys[] = { "cidr", "except", NULL };
	char s[32] = "", p[256];
	const cJSON *exc, *it;
	int n = 0;

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(get_str(e, v, path, "cidr", s, sizeof(s), true));
	if (pw_cidr_parse(s, &b->cidr))
		return pw_jerr_fail(e, "%s.cidr: \"%s\" is not an IPv4 CIDR (podwire is IPv4-only)", path, s);
	TRY(get_array(e, v, path, "except", &exc, &b->n_except));
	b->except = calloc((size_t)b->n_except + 1, sizeof(*b->except));
	if (!b->except)
		return -ENOMEM;
	cJSON_ArrayForEach(it, exc) {
		sub(p, sizeof(p), "%s.except[%d]", path, n);
		if (!cJSON_IsString(it) || pw_cidr_parse(it->valuestring, &b->except[n]))
			return pw_jerr_fail(e, "%s: expected an IPv4 CIDR", p);
		if (!pw_cidr_within(&b->except[n], &b->cidr) || b->except[n].prefix == b->cidr.prefix)
			return pw_jerr_fail(e, "%s: %s is not strictly inside cidr %s", p, it->valuestring, s);
		n++;
	}
	return 0;
}

static int parse_peer(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_pol_peer *peer)
{
	static const char *const keys[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	const cJSON *pod = cJSON_GetObjectItemCaseSensitive(v, "podSelector");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(v, "namespaceSelector");
	const cJSON *ipb = cJSON_GetObjectItemCaseSensitive(v, "ipBlock");
	char p[256];

	TRY(pw_json_check_keys(e, v, path, keys));
	peer->has_pod = pod && !cJSON_IsNull(pod);
	peer->has_ns = ns && !cJSON_IsNull(ns);
	peer->is_ipblock = ipb && !cJSON_IsNull(ipb);
	if (peer->is_ipblock && (peer->has_pod || peer->has_ns))
		return pw_jerr_fail(e, "%s: ipBlock cannot be combined with podSelector or namespaceSelector", path);
	if (!peer->is_ipblock && !peer->has_pod && !peer->has_ns)
		return pw_jerr_fail(e, "%s: needs podSelector, namespaceSelector or ipBlock", path);
	if (peer->is_ipblock) {
		sub(p, sizeof(p), "%s.ipBlock", path);
		return parse_ipblock(e, ipb, p, &peer->ipb);
	}
	if (peer->has_pod) {
		sub(p, sizeof(p), "%s.podSelector", path);
		TRY(parse_selector(e, pod, p, &peer->pod));
	}
	if (peer->has_ns) {
		sub(p, sizeof(p), "%s.namespaceSelector", path);
		TRY(parse_selector(e, ns, p, &peer->ns));
	}
	return 0;
}

static int parse_rule(struct pw_jerr *e, const cJSON *v, const char *path, const char *peers_key,
		      struct pw_pol_rule *r)
{
	const char *const keys[] = { peers_key, "ports", NULL };
	const cJSON *peers, *ports, *it;
	char p[256];
	int n = 0;

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(get_array(e, v, path, peers_key, &peers, &r->n_peers));
	TRY(get_array(e, v, path, "ports", &ports, &r->n_ports));
	r->peers = calloc((size_t)r->n_peers + 1, sizeof(*r->peers));
	r->ports = calloc((size_t)r->n_ports + 1, sizeof(*r->ports));
	if (!r->peers || !r->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(it, peers) {
		sub(p, sizeof(p), "%s.%s[%d]", path, peers_key, n);
		TRY(parse_peer(e, it, p, &r->peers[n++]));
	}
	n = 0;
	cJSON_ArrayForEach(it, ports) {
		sub(p, sizeof(p), "%s.ports[%d]", path, n);
		TRY(parse_port(e, it, p, &r->ports[n++]));
	}
	return 0;
}

static int parse_rules(struct pw_jerr *e, const cJSON *spec, const char *path, const char *key,
		       const char *peers_key, struct pw_pol_rule **out, int *n_out)
{
	const cJSON *arr, *it;
	char p[256];
	int n = 0;

	TRY(get_array(e, spec, path, key, &arr, n_out));
	*out = calloc((size_t)*n_out + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		sub(p, sizeof(p), "%s.%s[%d]", path, key, n);
		TRY(parse_rule(e, it, p, peers_key, &(*out)[n++]));
	}
	return 0;
}

static int parse_policy_types(struct pw_jerr *e, const cJSON *spec, const char *path, struct pw_netpol *np)
{
	const cJSON *types = cJSON_GetObjectItemCaseSensitive(spec, "policyTypes"), *it;

	if (!types || cJSON_IsNull(types) || (cJSON_IsArray(types) && !cJSON_GetArraySize(types))) {
		/* The API's default: Ingress always, Egress when there are egress rules. */
		np->ingress = true;
		np->egress = np->n_eg > 0;
		return 0;
	}
	if (!cJSON_IsArray(types))
		return pw_jerr_fail(e, "%s.policyTypes: expected an array", path);
	cJSON_ArrayForEach(it, types) {
		if (cJSON_IsString(it) && !strcmp(it->valuestring, "Ingress"))
			np->ingress = true;
		else if (cJSON_IsString(it) && !strcmp(it->valuestring, "Egress"))
			np->egress = true;
		else
			return pw_jerr_fail(e, "%s.policyTypes: expected \"Ingress\" or \"Egress\"", path);
	}
	return 0;
}

static int parse_netpol(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_netpol *np)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const meta_keys[] = { "name", "namespace", "labels", "annotations", "uid",
						 "resourceVersion", "generation", "creationTimestamp", NULL };
	static const char *const spec_keys[] = { "podSelector", "policyTypes", "ingress", "egress", NULL };
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(v, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(v, "spec");
	const cJSON *sel;
	char p[256];

	TRY(pw_json_check_keys(e, v, path, keys));
	sub(p, sizeof(p), "%s.metadata", path);
	if (!meta)
		return pw_jerr_fail(e, "%s: missing", p);
	TRY(pw_json_check_keys(e, meta, p, meta_keys));
	TRY(get_str(e, meta, p, "name", np->name, sizeof(np->name), true));
	strcpy(np->ns, "default");
	TRY(get_str(e, meta, p, "namespace", np->ns, sizeof(np->ns), false));
	np->id = pw_policy_id(np->ns, np->name);
	sub(p, sizeof(p), "%s.spec", path);
	if (!spec)
		return pw_jerr_fail(e, "%s: missing", p);
	TRY(pw_json_check_keys(e, spec, p, spec_keys));
	sel = cJSON_GetObjectItemCaseSensitive(spec, "podSelector");
	if (sel && !cJSON_IsNull(sel)) {
		char sp[256];

		sub(sp, sizeof(sp), "%s.podSelector", p);
		TRY(parse_selector(e, sel, sp, &np->pod_sel));
	}
	TRY(parse_rules(e, spec, p, "ingress", "from", &np->in, &np->n_in));
	TRY(parse_rules(e, spec, p, "egress", "to", &np->eg, &np->n_eg));
	return parse_policy_types(e, spec, p, np);
}

static int parse_named_ports(struct pw_jerr *e, const cJSON *pod, const char *path, struct pw_pod_model *pm)
{
	static const char *const keys[] = { "name", "containerPort", "protocol", NULL };
	const cJSON *arr, *it;
	char p[256];
	int n = 0;

	TRY(get_array(e, pod, path, "ports", &arr, &pm->n_ports));
	pm->ports = calloc((size_t)pm->n_ports + 1, sizeof(*pm->ports));
	if (!pm->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		struct pw_named_port *np = &pm->ports[n];
		const cJSON *cp = cJSON_GetObjectItemCaseSensitive(it, "containerPort");

		sub(p, sizeof(p), "%s.ports[%d]", path, n++);
		TRY(pw_json_check_keys(e, it, p, keys));
		TRY(get_str(e, it, p, "name", np->name, sizeof(np->name), false));
		if (!cJSON_IsNumber(cp) || cp->valuedouble < 1 || cp->valuedouble > 65535)
			return pw_jerr_fail(e, "%s.containerPort: expected a port (1-65535)", p);
		np->port = (uint16_t)cp->valueint;
		TRY(parse_proto(e, it, p, &np->proto));
	}
	return 0;
}

static int parse_pod(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_pod_model *pm)
{
	static const char *const keys[] = { "namespace", "name", "labels", "ip", "ports", NULL };
	char ip[32] = "", p[256];

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(get_str(e, v, path, "namespace", pm->ns, sizeof(pm->ns), true));
	TRY(get_str(e, v, path, "name", pm->name, sizeof(pm->name), true));
	TRY(get_str(e, v, path, "ip", ip, sizeof(ip), false));
	if (ip[0] && pw_ip4_parse(ip, &pm->ip))
		return pw_jerr_fail(e, "%s.ip: \"%s\" is not an IPv4 address", path, ip);
	sub(p, sizeof(p), "%s.labels", path);
	TRY(parse_labels(e, cJSON_GetObjectItemCaseSensitive(v, "labels"), p, &pm->labels));
	return parse_named_ports(e, v, path, pm);
}

static int parse_ns(struct pw_jerr *e, const cJSON *v, const char *path, struct pw_ns_model *nm)
{
	static const char *const keys[] = { "name", "labels", NULL };
	char p[256];

	TRY(pw_json_check_keys(e, v, path, keys));
	TRY(get_str(e, v, path, "name", nm->name, sizeof(nm->name), true));
	sub(p, sizeof(p), "%s.labels", path);
	return parse_labels(e, cJSON_GetObjectItemCaseSensitive(v, "labels"), p, &nm->labels);
}

static int pod_name_cmp(const void *a, const void *b)
{
	const struct pw_pod_model *x = *(const struct pw_pod_model *const *)a;
	const struct pw_pod_model *y = *(const struct pw_pod_model *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* A pod is one object per namespace/name, as in the API (sorted: 10,000
 * pods are checked in O(n log n)). */
static int check_pods_unique(struct pw_jerr *e, const struct pw_policy_model *m)
{
	const struct pw_pod_model **v = calloc((size_t)m->n_pods + 1, sizeof(*v));
	int ret = 0;

	if (!v)
		return -ENOMEM;
	for (int i = 0; i < m->n_pods; i++)
		v[i] = &m->pods[i];
	qsort(v, (size_t)m->n_pods, sizeof(*v), pod_name_cmp);
	for (int i = 1; i < m->n_pods && !ret; i++)
		if (!pod_name_cmp(&v[i - 1], &v[i]))
			ret = pw_jerr_fail(e, "pods[%d]: %s/%s repeats pods[%d]", (int)(v[i] - m->pods), v[i]->ns, v[i]->name,
				   (int)(v[i - 1] - m->pods));
	free(v);
	return ret;
}

static int check_unique(struct pw_jerr *e, const struct pw_policy_model *m)
{
	TRY(check_pods_unique(e, m));
	for (int i = 0; i < m->n_pols; i++)
		for (int j = 0; j < i; j++)
			if (m->pols[i].id == m->pols[j].id)
				return pw_jerr_fail(e, "networkPolicies[%d]: %s/%s %s networkPolicies[%d]", i, m->pols[i].ns,
					    m->pols[i].name,
					    strcmp(m->pols[i].ns, m->pols[j].ns) || strcmp(m->pols[i].name, m->pols[j].name)
						    ? "has the same policy id as"
						    : "repeats",
					    j);
	for (int i = 0; i < m->n_ns; i++)
		for (int j = 0; j < i; j++)
			if (!strcmp(m->ns[i].name, m->ns[j].name))
				return pw_jerr_fail(e, "namespaces[%d]: %s repeats namespaces[%d]", i, m->ns[i].name, j);
	return 0;
}

static int parse_model(struct pw_jerr *e, const cJSON *root, struct pw_policy_model *m)
{
	const cJSON *arr, *it;
	char p[64];
	int n;

	TRY(get_array(e, root, "config", "namespaces", &arr, &m->n_ns));
	m->ns = calloc((size_t)m->n_ns + 1, sizeof(*m->ns));
	if (!m->ns)
		return -ENOMEM;
	n = 0;
	cJSON_ArrayForEach(it, arr) {
		sub(p, sizeof(p), "namespaces[%d]", n);
		TRY(parse_ns(e, it, p, &m->ns[n++]));
	}
	TRY(get_array(e, root, "config", "pods", &arr, &m->n_pods));
	m->pods = calloc((size_t)m->n_pods + 1, sizeof(*m->pods));
	if (!m->pods)
		return -ENOMEM;
	n = 0;
	cJSON_ArrayForEach(it, arr) {
		sub(p, sizeof(p), "pods[%d]", n);
		TRY(parse_pod(e, it, p, &m->pods[n++]));
	}
	TRY(get_array(e, root, "config", "networkPolicies", &arr, &m->n_pols));
	m->pols = calloc((size_t)m->n_pols + 1, sizeof(*m->pols));
	if (!m->pols)
		return -ENOMEM;
	n = 0;
	cJSON_ArrayForEach(it, arr) {
		sub(p, sizeof(p), "networkPolicies[%d]", n);
		TRY(parse_netpol(e, it, p, &m->pols[n++]));
	}
	return check_unique(e, m);
}

int pw_policy_model_parse(const char *json, struct pw_policy_model *m, char *err, size_t errlen)
{
	struct pw_jerr e = { err, errlen };
	cJSON *root;
	int ret;

	memset(m, 0, sizeof(*m));
	if (err && errlen)
		err[0] = '\0';
	if (!json)
		return 0;
	root = cJSON_Parse(json);
	if (!root)
		return pw_jerr_fail(&e, "policy model: invalid JSON");
	ret = cJSON_IsObject(root) ? parse_model(&e, root, m) : pw_jerr_fail(&e, "policy model: expected an object");
	cJSON_Delete(root);
	if (ret == -ENOMEM)
		pw_jerr_fail(&e, "policy model: out of memory");
	if (ret)
		pw_policy_model_free(m);
	return ret;
}

static void selector_free(struct pw_selector *s)
{
	for (int i = 0; s->expr && i < s->n_expr; i++)
		free(s->expr[i].values);
	free(s->expr);
	free(s->match.v);
}

static void rules_free(struct pw_pol_rule *r, int n)
{
	for (int i = 0; r && i < n; i++) {
		for (int j = 0; r[i].peers && j < r[i].n_peers; j++) {
			selector_free(&r[i].peers[j].pod);
			selector_free(&r[i].peers[j].ns);
			free(r[i].peers[j].ipb.except);
		}
		free(r[i].peers);
		free(r[i].ports);
	}
	free(r);
}

void pw_policy_ns_free(struct pw_ns_model *ns)
{
	free(ns->labels.v);
	memset(ns, 0, sizeof(*ns));
}

void pw_policy_pod_free(struct pw_pod_model *pod)
{
	free(pod->labels.v);
	free(pod->ports);
	memset(pod, 0, sizeof(*pod));
}

void pw_policy_netpol_free(struct pw_netpol *p)
{
	selector_free(&p->pod_sel);
	rules_free(p->in, p->n_in);
	rules_free(p->eg, p->n_eg);
	memset(p, 0, sizeof(*p));
}

/* One element of a section, alone (the incremental path parses only the
 * elements whose text changed); the path in messages is the model's. */
int pw_policy_parse_element(enum pw_policy_section sec, const char *text, size_t len, int index, void *out,
			    char *err, size_t errlen)
{
	static const char *const names[] = { "namespaces", "pods", "networkPolicies" };
	struct pw_jerr e = { err, errlen };
	cJSON *v = cJSON_ParseWithLength(text, len);
	char path[64];
	int ret;

	if (err && errlen)
		err[0] = '\0';
	sub(path, sizeof(path), "%s[%d]", names[sec], index);
	if (!v)
		return pw_jerr_fail(&e, "%s: invalid JSON", path);
	if (sec == PW_POL_SEC_NS) {
		memset(out, 0, sizeof(struct pw_ns_model));
		ret = parse_ns(&e, v, path, out);
		if (ret)
			pw_policy_ns_free(out);
	} else if (sec == PW_POL_SEC_PODS) {
		memset(out, 0, sizeof(struct pw_pod_model));
		ret = parse_pod(&e, v, path, out);
		if (ret)
			pw_policy_pod_free(out);
	} else {
		memset(out, 0, sizeof(struct pw_netpol));
		ret = parse_netpol(&e, v, path, out);
		if (ret)
			pw_policy_netpol_free(out);
	}
	cJSON_Delete(v);
	if (ret == -ENOMEM)
		pw_jerr_fail(&e, "%s: out of memory", path);
	return ret;
}

void pw_policy_model_free(struct pw_policy_model *m)
{
	for (int i = 0; m->ns && i < m->n_ns; i++)
		pw_policy_ns_free(&m->ns[i]);
	for (int i = 0; m->pods && i < m->n_pods; i++)
		pw_policy_pod_free(&m->pods[i]);
	for (int i = 0; m->pols && i < m->n_pols; i++)
		pw_policy_netpol_free(&m->pols[i]);
	free(m->ns);
	free(m->pods);
	free(m->pols);
	memset(m, 0, sizeof(*m));
}

const struct pw_netpol *pw_policy_find_id(const struct pw_policy_model *m, uint32_t id)
{
	for (int i = 0; i < m->n_pols; i++)
		if (m->pols[i].id == id)
			return &m->pols[i];
	return NULL;
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

uint32_t pw_policy_id(const char *ns, const char *name)
{
	uint32_t h = fnv1a(fnv1a(fnv1a(2166136261u, ns), "/"), name);

	return h ? h : 1;
}

/* ---------------- selectors ---------------- */

/* Namespaces carry kubernetes.io/metadata.name = their name, as the API
 * server sets it: ns_name non-NULL adds it. */
static const char *label_get(const struct pw_labels *l, const char *ns_name, const char *key)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].value;
	if (ns_name && !strcmp(key, "kubernetes.io/metadata.name"))
		return ns_name;
	return NULL;
}

bool pw_selector_matches_ns(const struct pw_selector *s, const struct pw_labels *l, const char *ns_name)
{
	for (int i = 0; i < s->match.n; i++) {
		const char *v = label_get(l, ns_name, s->match.v[i].key);

		if (!v || strcmp(v, s->match.v[i].value))
			return false;
	}
	for (int i = 0; i < s->n_expr; i++) {
		const struct pw_sel_expr *x = &s->expr[i];
		const char *v = label_get(l, ns_name, x->key);
		bool in = false;

		for (int j = 0; v && j < x->n_values; j++)
			in = in || !strcmp(v, x->values[j]);
		if ((x->op == PW_SEL_IN && !in) || (x->op == PW_SEL_NOT_IN && in) ||
		    (x->op == PW_SEL_EXISTS && !v) || (x->op == PW_SEL_DOES_NOT_EXIST && v))
			return false;
	}
	return true;
}

bool pw_selector_matches(const struct pw_selector *s, const struct pw_labels *l)
{
	return pw_selector_matches_ns(s, l, NULL);
}

bool pw_policy_selects(const struct pw_netpol *p, const char *ns, const struct pw_labels *labels)
{
	return !strcmp(p->ns, ns) && pw_selector_matches(&p->pod_sel, labels);
}

int pw_port_blocks(uint16_t lo, uint16_t hi, uint16_t start[32], uint8_t prefix[32])
{
	uint32_t a = lo, b = hi;
	int n = 0;

	while (a <= b && n < 32) {
		uint32_t size = 1;
		uint8_t bits = 16;

		while (size < 65536 && a % (size * 2) == 0 && a + size * 2 - 1 <= b) {
			size *= 2;
			bits--;
		}
		start[n] = (uint16_t)a;
		prefix[n++] = bits;
		a += size;
	}
	return n;
}

/* ---------------- translation ---------------- */

/* A pod as the translation sees it: the model's, or a local one IPAM knows. */
struct wpod {
	const char *ns, *name;
	const struct pw_labels *labels;
	const struct pw_labels *ns_labels;
	const struct pw_pod_model *model;   /* NULL: local pod absent from the model */
	uint32_t ip;
	uint32_t identity;
	bool local;
	char *canon;                        /* the identity's label set, as text */
};

struct growbuf {
	char *s;
	size_t len, cap;
};

static bool gb_add(struct growbuf *g, const char *s)
{
	size_t n = strlen(s);

	if (g->len + n + 1 > g->cap) {
		size_t c = (g->len + n + 1) * 2;
		char *ns = realloc(g->s, c);

		if (!ns)
			return false;
		g->s = ns;
		g->cap = c;
	}
	memcpy(g->s + g->len, s, n + 1);
	g->len += n;
	return true;
}

static int label_cmp(const void *a, const void *b)
{
	const struct pw_label *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

static bool gb_labels(struct growbuf *g, const struct pw_labels *l)
{
	struct pw_label *s = NULL;
	bool ok = true;

	if (l->n) {
		s = malloc((size_t)l->n * sizeof(*s));
		if (!s)
			return false;
		memcpy(s, l->v, (size_t)l->n * sizeof(*s));
		qsort(s, (size_t)l->n, sizeof(*s), label_cmp);
	}
	for (int i = 0; ok && i < l->n; i++)
		ok = gb_add(g, s[i].key) && gb_add(g, "=") && gb_add(g, s[i].value) && gb_add(g, "\n");
	free(s);
	return ok;
}

/* namespace, pod labels, namespace labels: what every selector decides on. */
char *pw_policy_canon(const char *ns, const struct pw_labels *labels, const struct pw_labels *ns_labels)
{
	struct growbuf g = { 0 };

	if (!gb_add(&g, ns) || !gb_add(&g, "\x01") || !gb_labels(&g, labels) || !gb_add(&g, "\x01") ||
	    !gb_labels(&g, ns_labels)) {
		free(g.s);
		return NULL;
	}
	return g.s;
}

static char *canon_of(const struct wpod *p)
{
	return pw_policy_canon(p->ns, p->labels, p->ns_labels);
}

uint32_t pw_policy_pod_id_hint(const char *canon)
{
	return PW_ID_FIRST_POD + fnv1a(2166136261u, canon) % (PW_ID_FIRST_CIDR - PW_ID_FIRST_POD);
}

uint32_t pw_policy_cidr_id_hint(const struct pw_cidr *c)
{
	char text[PW_CIDR_STRLEN];

	pw_cidr_format(c, text);
	return PW_ID_FIRST_CIDR + fnv1a(2166136261u, text) % (0xffffffffu - PW_ID_FIRST_CIDR);
}

/* Open-addressing set of identities handed out: a label set keeps the
 * number its hash gives unless another took it first (then the next free). */
struct idset {
	uint32_t *v;
	size_t cap;
};

static bool idset_init(struct idset *s, size_t n)
{
	s->cap = 64;
	while (s->cap < n * 2 + 2)
		s->cap *= 2;
	s->v = calloc(s->cap, sizeof(*s->v));
	return s->v != NULL;
}

/* Claims the first free id from want in [lo, hi]; returns it. */
static uint32_t idset_claim(struct idset *s, uint32_t want, uint32_t lo, uint32_t hi)
{
	for (;;) {
		size_t i = (want * 2654435761u) & (s->cap - 1);

		while (s->v[i] && s->v[i] != want)
			i = (i + 1) & (s->cap - 1);
		if (!s->v[i]) {
			s->v[i] = want;
			return want;
		}
		want = want == hi ? lo : want + 1;
	}
}

static const struct pw_ns_model *find_ns(const struct pw_policy_model *m, const char *name)
{
	for (int i = 0; i < m->n_ns; i++)
		if (!strcmp(m->ns[i].name, name))
			return &m->ns[i];
	return NULL;
}

static const struct pw_labels no_labels = { NULL, 0 };

struct ident {
	uint32_t id;
	const struct wpod *rep;    /* a pod with this label set */
};

struct cidr_ident {
	struct pw_cidr c;
	uint32_t id;
};

/* A rule peer's identities: the same for every pod its policy selects. */
struct peer_cache {
	const struct pw_pol_peer *peer;   /* NULL: a free slot */
	uint32_t *ids;
	int n;
};

struct xlate {
	const struct pw_policy_model *m;
	struct wpod *pods;
	int n_pods;
	struct ident *ids;
	int n_ids;
	struct cidr_ident *cidrs;
	int n_cidrs;
	struct pw_policy_state *out;
	int cap_rules, cap_ids;
	struct peer_cache *peers;   /* each rule peer's identities, computed once */
	size_t peers_cap;           /* a power of two, over twice the peers */
	uint32_t *idbuf;            /* room for every identity */
};

static int wpod_canon_cmp(const void *a, const void *b)
{
	const struct wpod *x = a, *y = b;
	int c = strcmp(x->canon, y->canon);

	return c ? c : (x->ip > y->ip) - (x->ip < y->ip);
}

/* Model pods with an address, and the local pods (IPAM's address wins). */
static int wpod_name_cmp(const void *a, const void *b)
{
	const struct wpod *x = *(const struct wpod *const *)a, *y = *(const struct wpod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* The first of the local pods named like pm (by namespace/name; several
 * when IPAM holds reservations of two sandboxes of one pod), or NULL: a
 * binary search in byname, the local pods sorted by name. */
static struct wpod **local_named(struct wpod **byname, int n, const struct pw_pod_model *pm)
{
	struct wpod key = { .ns = pm->ns, .name = pm->name }, *kp = &key;
	struct wpod **hit = n ? bsearch(&kp, byname, (size_t)n, sizeof(*byname), wpod_name_cmp) : NULL;

	while (hit && hit > byname && !wpod_name_cmp(&hit[-1], &kp))
		hit--;
	return hit;
}

/* Model pods with an address, and the local pods (IPAM's address wins;
 * the model gives a local pod its labels and ports by namespace/name). */
static int collect_pods(struct xlate *x, const struct pw_local_pod *local, int n_local)
{
	const struct pw_policy_model *m = x->m;
	struct wpod **byname;
	int n_byname = 0;

	x->pods = calloc((size_t)(m->n_pods + n_local) + 1, sizeof(*x->pods));
	byname = calloc((size_t)n_local + 1, sizeof(*byname));
	if (!x->pods || !byname) {
		free(byname);
		return -ENOMEM;
	}
	for (int i = 0; i < n_local; i++) {
		const struct pw_ns_model *ns = find_ns(m, local[i].ns);
		struct wpod *p;

		if (!local[i].ip)
			continue;
		p = &x->pods[x->n_pods++];
		p->ns = local[i].ns;
		p->name = local[i].name;
		p->labels = &no_labels;
		p->ns_labels = ns ? &ns->labels : &no_labels;
		p->ip = local[i].ip;
		p->local = true;
		byname[n_byname++] = p;
	}
	qsort(byname, (size_t)n_byname, sizeof(*byname), wpod_name_cmp);
	for (int i = 0; i < m->n_pods; i++) {
		const struct pw_pod_model *pm = &m->pods[i];
		const struct pw_ns_model *ns;
		struct wpod **hit = local_named(byname, n_byname, pm), *p;

		if (hit) {
			/* Every local pod of that name takes the model's labels and ports. */
			for (; hit < byname + n_byname && !strcmp((*hit)->ns, pm->ns) && !strcmp((*hit)->name, pm->name);
			     hit++) {
				(*hit)->model = pm;
				(*hit)->labels = &pm->labels;
			}
			continue;
		}
		if (!pm->ip)
			continue;
		ns = find_ns(m, pm->ns);
		p = &x->pods[x->n_pods++];
		p->ns = pm->ns;
		p->name = pm->name;
		p->model = pm;
		p->labels = &pm->labels;
		p->ns_labels = ns ? &ns->labels : &no_labels;
		p->ip = pm->ip;
	}
	free(byname);
	for (int i = 0; i < x->n_pods; i++) {
		x->pods[i].canon = canon_of(&x->pods[i]);
		if (!x->pods[i].canon)
			return -ENOMEM;
	}
	return 0;
}

/* One identity per distinct label set, numbered by its hash (stable across
 * recomputations, so a change elsewhere rewrites none of them). */
static int assign_pod_identities(struct xlate *x, struct idset *used)
{
	qsort(x->pods, (size_t)x->n_pods, sizeof(*x->pods), wpod_canon_cmp);
	x->ids = calloc((size_t)x->n_pods + 1, sizeof(*x->ids));
	if (!x->ids)
		return -ENOMEM;
	for (int i = 0; i < x->n_pods; i++) {
		struct wpod *p = &x->pods[i];

		if (i && !strcmp(p->canon, x->pods[i - 1].canon)) {
			p->identity = x->pods[i - 1].identity;
			continue;
		}
		p->identity = idset_claim(used, pw_policy_pod_id_hint(p->canon), PW_ID_FIRST_POD, PW_ID_FIRST_CIDR - 1);
		x->ids[x->n_ids].id = p->identity;
		x->ids[x->n_ids++].rep = p;
	}
	return 0;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct cidr_ident *x = a, *y = b;

	if (x->c.addr != y->c.addr)
		return x->c.addr < y->c.addr ? -1 : 1;
	return (x->c.prefix > y->c.prefix) - (x->c.prefix < y->c.prefix);
}

static int add_cidr(struct xlate *x, const struct pw_cidr *c, int *cap)
{
	if (x->n_cidrs == *cap) {
		int nc = *cap ? *cap * 2 : 16;
		struct cidr_ident *n = realloc(x->cidrs, (size_t)nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		x->cidrs = n;
		*cap = nc;
	}
	x->cidrs[x->n_cidrs].c = *c;
	x->cidrs[x->n_cidrs++].id = 0;
	return 0;
}

static int collect_rule_cidrs(struct xlate *x, const struct pw_pol_rule *r, int n, int *cap)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < r[i].n_peers; j++) {
			const struct pw_pol_peer *pe = &r[i].peers[j];

			if (!pe->is_ipblock)
				continue;
			TRY(add_cidr(x, &pe->ipb.cidr, cap));
			for (int k = 0; k < pe->ipb.n_except; k++)
				TRY(add_cidr(x, &pe->ipb.except[k], cap));
		}
	return 0;
}

/* Every prefix an ipBlock names (cidr or except) is one CIDR identity. */
static int assign_cidr_identities(struct xlate *x, struct idset *used)
{
	int cap = 0, n = 0;

	for (int i = 0; i < x->m->n_pols; i++) {
		TRY(collect_rule_cidrs(x, x->m->pols[i].in, x->m->pols[i].n_in, &cap));
		TRY(collect_rule_cidrs(x, x->m->pols[i].eg, x->m->pols[i].n_eg, &cap));
	}
	if (!x->n_cidrs)
		return 0;
	qsort(x->cidrs, (size_t)x->n_cidrs, sizeof(*x->cidrs), cidr_cmp);
	for (int i = 0; i < x->n_cidrs; i++) {
		if (n && !cidr_cmp(&x->cidrs[i], &x->cidrs[n - 1]))
			continue;
		x->cidrs[n] = x->cidrs[i];
		x->cidrs[n].id = idset_claim(used, pw_policy_cidr_id_hint(&x->cidrs[n].c), PW_ID_FIRST_CIDR, 0xfffffffeu);
		n++;
	}
	x->n_cidrs = n;
	return 0;
}

static int push_id(struct xlate *x, uint32_t addr, uint8_t prefix, uint32_t identity)
{
	struct pw_policy_state *o = x->out;
	struct pw_pol_ids_entry *e;

	if (o->n_ids == x->cap_ids) {
		int nc = x->cap_ids ? x->cap_ids * 2 : 64;
		struct pw_pol_ids_entry *n = realloc(o->ids, (size_t)nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->ids = n;
		x->cap_ids = nc;
	}
	e = &o->ids[o->n_ids++];
	memset(e, 0, sizeof(*e));
	e->k.prefixlen = prefix;
	pw_ip4_to_bytes(addr, e->k.addr);
	e->v.identity = identity;
	return 0;
}

static int push_rule(struct xlate *x, uint32_t pod, uint8_t dir, uint8_t proto, uint32_t identity,
		     uint16_t port, uint8_t port_prefix, uint32_t policy_id)
{
	struct pw_policy_state *o = x->out;
	struct pw_policy_entry *e;

	if (o->n_rules == x->cap_rules) {
		int nc = x->cap_rules ? x->cap_rules * 2 : 256;
		struct pw_policy_entry *n = realloc(o->rules, (size_t)nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->rules = n;
		x->cap_rules = nc;
	}
	e = &o->rules[o->n_rules++];
	memset(e, 0, sizeof(*e));
	e->k.prefixlen = PW_POLICY_FIXED_BITS + port_prefix;
	pw_ip4_to_bytes(pod, e->k.pod);
	e->k.dir = dir;
	e->k.proto = proto;
	e->k.identity = identity;
	if (port_prefix) {
		uint16_t masked = (uint16_t)(port & (0xffffu << (16 - port_prefix)));

		e->k.port[0] = (uint8_t)(masked >> 8);
		e->k.port[1] = (uint8_t)masked;
	}
	e->v.policy_id = policy_id;
	return 0;
}

/* Identities a peer stands for, into ids (at most x->n_ids + x->n_cidrs). */
static int peer_identities(const struct xlate *x, const struct pw_netpol *p, const struct pw_pol_peer *pe,
			   uint32_t *ids)
{
	int n = 0;

	if (pe->is_ipblock) {
		for (int i = 0; i < x->n_cidrs; i++) {
			bool out = !pw_cidr_within(&x->cidrs[i].c, &pe->ipb.cidr);

			for (int k = 0; !out && k < pe->ipb.n_except; k++)
				out = pw_cidr_within(&x->cidrs[i].c, &pe->ipb.except[k]);
			if (!out)
				ids[n++] = x->cidrs[i].id;
		}
		return n;
	}
	for (int i = 0; i < x->n_ids; i++) {
		const struct wpod *r = x->ids[i].rep;

		if (!pe->has_ns && strcmp(r->ns, p->ns))
			continue;
		if (pe->has_ns && !pw_selector_matches_ns(&pe->ns, r->ns_labels, r->ns))
			continue;
		if (pe->has_pod && !pw_selector_matches(&pe->pod, r->labels))
			continue;
		ids[n++] = x->ids[i].id;
	}
	return n;
}

/* The numbers a named port has on the pods of an identity (egress) or on
 * one pod (ingress: rep = that pod, identity 0). Calls emit per number. */
static int resolve_named(const struct xlate *x, const struct pw_pol_port *pp, const struct wpod *only,
			 uint32_t identity, uint16_t *nums, int max)
{
	int n = 0;

	for (int i = 0; i < x->n_pods && n < max; i++) {
		const struct wpod *w = only ? only : &x->pods[i];

		if (!only && w->identity != identity)
			continue;
		for (int k = 0; w->model && k < w->model->n_ports && n < max; k++) {
			const struct pw_named_port *np = &w->model->ports[k];
			bool seen = false;

			if (strcmp(np->name, pp->name) || np->proto != pp->proto)
				continue;
			for (int j = 0; j < n; j++)
				seen = seen || nums[j] == np->port;
			if (!seen)
				nums[n++] = np->port;
		}
		if (only)
			break;
	}
	return n;
}

struct rule_ctx {
	struct xlate *x;
	const struct wpod *pod;     /* the local pod */
	const struct pw_netpol *pol;
	uint8_t dir;
};

static int emit_port(struct rule_ctx *c, uint32_t identity, const struct pw_pol_port *pp)
{
	uint16_t start[32];
	uint8_t prefix[32];
	uint32_t pod = c->pod->ip;
	int n;

	if (!pp->port)
		return push_rule(c->x, pod, c->dir, pp->proto, identity, 0, 0, c->pol->id);
	n = pw_port_blocks(pp->port, pp->end_port ? pp->end_port : pp->port, start, prefix);
	for (int i = 0; i < n; i++)
		TRY(push_rule(c->x, pod, c->dir, pp->proto, identity, start[i], prefix[i], c->pol->id));
	return 0;
}

/* A named port: resolved on the local pod for ingress, on the peer's pods
 * for egress (for "any peer": on every identity that has it). */
static int emit_named(struct rule_ctx *c, uint32_t identity, const struct pw_pol_port *pp)
{
	struct pw_pol_port num = *pp;
	uint16_t nums[16];
	int n;

	num.name[0] = '\0';
	if (c->dir == PW_DIR_INGRESS) {
		n = resolve_named(c->x, pp, c->pod, 0, nums, 16);
		for (int i = 0; i < n; i++) {
			num.port = nums[i];
			TRY(emit_port(c, identity, &num));
		}
		return 0;
	}
	if (identity == PW_ID_ANY) {
		for (int k = 0; k < c->x->n_ids; k++)
			TRY(emit_named(c, c->x->ids[k].id, pp));
		return 0;
	}
	n = resolve_named(c->x, pp, NULL, identity, nums, 16);
	for (int i = 0; i < n; i++) {
		num.port = nums[i];
		TRY(emit_port(c, identity, &num));
	}
	return 0;
}

static int emit_identity(struct rule_ctx *c, const struct pw_pol_rule *r, uint32_t identity)
{
	if (!r->n_ports)
		return push_rule(c->x, c->pod->ip, c->dir, 0, identity, 0, 0, c->pol->id);
	for (int i = 0; i < r->n_ports; i++) {
		if (r->ports[i].name[0])
			TRY(emit_named(c, identity, &r->ports[i]));
		else
			TRY(emit_port(c, identity, &r->ports[i]));
	}
	return 0;
}

/* pe's identities, computed at its first use (into x->idbuf) and kept. */
static int peer_ids_cached(struct xlate *x, const struct pw_netpol *pol, const struct pw_pol_peer *pe,
			   const uint32_t **ids, int *n)
{
	size_t i = ((uintptr_t)pe >> 4) * 2654435761u & (x->peers_cap - 1);
	struct peer_cache *e;

	while (x->peers[i].peer && x->peers[i].peer != pe)
		i = (i + 1) & (x->peers_cap - 1);
	e = &x->peers[i];
	if (!e->peer) {
		int k = peer_identities(x, pol, pe, x->idbuf);

		e->ids = malloc((size_t)k * sizeof(*e->ids) + 1);
		if (!e->ids)
			return -ENOMEM;
		memcpy(e->ids, x->idbuf, (size_t)k * sizeof(*e->ids));
		e->n = k;
		e->peer = pe;
	}
	*ids = e->ids;
	*n = e->n;
	return 0;
}

static int emit_rules(struct rule_ctx *c, const struct pw_pol_rule *rules, int n)
{
	for (int i = 0; i < n; i++) {
		const struct pw_pol_rule *r = &rules[i];

		if (!r->n_peers) {
			TRY(emit_identity(c, r, PW_ID_ANY));
			continue;
		}
		for (int j = 0; j < r->n_peers; j++) {
			const uint32_t *ids;
			int k;

			TRY(peer_ids_cached(c->x, c->pol, &r->peers[j], &ids, &k));
			for (int l = 0; l < k; l++)
				TRY(emit_identity(c, r, ids[l]));
		}
	}
	return 0;
}

/* One policy id per direction when exactly one policy selects the pod. */
static void note_selector(uint32_t *slot, int *count, uint32_t id)
{
	*slot = (*count)++ ? 0 : id;
}

static int emit_local_pod(struct xlate *x, const struct wpod *p, int *cap_eps)
{
	struct pw_pol_ep ep = { 0 };
	int n_in = 0, n_eg = 0;
	struct pw_policy_state *o = x->out;

	for (int i = 0; i < x->m->n_pols; i++) {
		const struct pw_netpol *pol = &x->m->pols[i];
		struct rule_ctx c = { x, p, pol, 0 };

		if (!pw_policy_selects(pol, p->ns, p->labels))
			continue;
		if (pol->ingress) {
			ep.flags |= PW_POL_F_INGRESS;
			note_selector(&ep.ingress_policy, &n_in, pol->id);
			c.dir = PW_DIR_INGRESS;
			TRY(emit_rules(&c, pol->in, pol->n_in));
		}
		if (pol->egress) {
			ep.flags |= PW_POL_F_EGRESS;
			note_selector(&ep.egress_policy, &n_eg, pol->id);
			c.dir = PW_DIR_EGRESS;
			TRY(emit_rules(&c, pol->eg, pol->n_eg));
		}
	}
	if (!ep.flags)
		return 0;
	if (o->n_eps == *cap_eps) {
		int nc = *cap_eps ? *cap_eps * 2 : 16;
		struct pw_pol_ep_entry *n = realloc(o->eps, (size_t)nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->eps = n;
		*cap_eps = nc;
	}
	memset(&o->eps[o->n_eps], 0, sizeof(o->eps[0]));
	pw_ip4_to_bytes(p->ip, o->eps[o->n_eps].k.addr);
	o->eps[o->n_eps++].v = ep;
	return 0;
}

/* Equal keys: the lower identity first, so a pod's /32 (pod identities are
 * below every CIDR identity) wins over an ipBlock /32 naming its address. */
static int ids_cmp(const void *a, const void *b)
{
	const struct pw_pol_ids_entry *x = a, *y = b;
	int c = memcmp(&x->k, &y->k, sizeof(x->k));

	return c ? c : (x->v.identity > y->v.identity) - (x->v.identity < y->v.identity);
}

static int ep_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct pw_pol_ep_entry *)a)->k, &((const struct pw_pol_ep_entry *)b)->k,
		      sizeof(struct pw_ip4));
}

/* Equal keys (several policies allow the same thing): the lowest policy id
 * first, so the one written does not depend on the order of computation. */
static int rule_cmp(const void *a, const void *b)
{
	const struct pw_policy_entry *x = a, *y = b;
	int c = memcmp(&x->k, &y->k, sizeof(x->k));

	return c ? c : (x->v.policy_id > y->v.policy_id) - (x->v.policy_id < y->v.policy_id);
}

/* Sort by key and keep the first of equal keys (array of `size` entries
 * whose key is their first ksz bytes). Returns the new count. */
static int sort_unique(void *arr, int n, size_t size, size_t ksz, int (*cmp)(const void *, const void *))
{
	char *a = arr;
	int m = 0;

	if (n <= 0)
		return 0;
	qsort(a, (size_t)n, size, cmp);
	for (int i = 0; i < n; i++) {
		if (m && !memcmp(a + (size_t)(m - 1) * size, a + (size_t)i * size, ksz))
			continue;
		if (m != i)
			memcpy(a + (size_t)m * size, a + (size_t)i * size, size);
		m++;
	}
	return m;
}

int pw_policy_rows_sort(struct pw_policy_entry *rows, int n)
{
	return sort_unique(rows, n, sizeof(*rows), sizeof(rows->k), rule_cmp);
}

int pw_policy_ids_sort(struct pw_pol_ids_entry *ids, int n)
{
	return sort_unique(ids, n, sizeof(*ids), sizeof(ids->k), ids_cmp);
}

void pw_policy_state_sort(struct pw_policy_state *s)
{
	s->n_ids = sort_unique(s->ids, s->n_ids, sizeof(*s->ids), sizeof(s->ids->k), ids_cmp);
	s->n_eps = sort_unique(s->eps, s->n_eps, sizeof(*s->eps), sizeof(s->eps->k), ep_cmp);
	s->n_rules = sort_unique(s->rules, s->n_rules, sizeof(*s->rules), sizeof(s->rules->k), rule_cmp);
}

static size_t count_peers(const struct pw_policy_model *m)
{
	size_t n = 0;

	for (int i = 0; i < m->n_pols; i++) {
		for (int j = 0; j < m->pols[i].n_in; j++)
			n += (size_t)m->pols[i].in[j].n_peers;
		for (int j = 0; j < m->pols[i].n_eg; j++)
			n += (size_t)m->pols[i].eg[j].n_peers;
	}
	return n;
}

static int translate(struct xlate *x, const struct pw_local_pod *local, int n_local)
{
	struct idset used = { 0 };
	int cap_eps = 0, ret;

	x->peers_cap = 16;
	while (x->peers_cap < count_peers(x->m) * 2 + 2)
		x->peers_cap *= 2;
	x->peers = calloc(x->peers_cap, sizeof(*x->peers));
	ret = x->peers ? collect_pods(x, local, n_local) : -ENOMEM;
	if (!ret && !idset_init(&used, (size_t)x->n_pods + 64))
		ret = -ENOMEM;
	if (!ret)
		ret = assign_pod_identities(x, &used);
	if (!ret)
		ret = assign_cidr_identities(x, &used);
	if (!ret && !(x->idbuf = calloc((size_t)(x->n_ids + x->n_cidrs) + 1, sizeof(*x->idbuf))))
		ret = -ENOMEM;
	for (int i = 0; !ret && i < x->n_pods; i++)
		ret = push_id(x, x->pods[i].ip, 32, x->pods[i].identity);
	for (int i = 0; !ret && i < x->n_cidrs; i++)
		ret = push_id(x, x->cidrs[i].c.addr, x->cidrs[i].c.prefix, x->cidrs[i].id);
	for (int i = 0; !ret && i < x->n_pods; i++)
		if (x->pods[i].local)
			ret = emit_local_pod(x, &x->pods[i], &cap_eps);
	free(used.v);
	return ret;
}

int pw_policy_compute(const struct pw_policy_model *m, const struct pw_local_pod *local, int n_local,
		      struct pw_policy_state *out)
{
	struct xlate x = { .m = m, .out = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = translate(&x, local, n_local);
	for (int i = 0; x.pods && i < x.n_pods; i++)
		free(x.pods[i].canon);
	free(x.pods);
	free(x.ids);
	free(x.cidrs);
	free(x.idbuf);
	for (size_t i = 0; x.peers && i < x.peers_cap; i++)
		free(x.peers[i].ids);
	free(x.peers);
	if (ret) {
		pw_policy_state_free(out);
		return ret;
	}
	pw_policy_state_sort(out);
	return 0;
}

void pw_policy_state_free(struct pw_policy_state *s)
{
	free(s->ids);
	free(s->eps);
	free(s->rules);
	memset(s, 0, sizeof(*s));
}
